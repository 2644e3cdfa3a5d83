/* fuzz-query: the CLI's --query (a JMESPath subset) and --output text (cli/sg_query.h).
 *
 * An input is EXPRESSION NUL DOCUMENT: the bytes up to the first NUL are the expression, the
 * rest is parsed as JSON (no NUL: the whole input is the expression, evaluated against null).
 * The expression is evaluated with sg_query_eval; the result, and the document itself, are
 * printed with sg_query_print_text to /dev/null.
 *
 * Besides the sanitizers, the harness aborts on broken contracts (FUZZ_CHECK): a return other
 * than 0, -EINVAL or -ENOMEM; *ret not NULL exactly on success; an error reason that is empty
 * or not one line; a document changed by the evaluation ("Never modifies root"); a print error
 * other than -ELOOP for a document nested too deeply. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sg_query.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                   \
        do {                                                                    \
                if (!(cond)) {                                                  \
                        fprintf(stderr, "fuzz-query: contract broken: " __VA_ARGS__); \
                        fputc('\n', stderr);                                    \
                        abort();                                                \
                }                                                               \
        } while (0)

static FILE *devnull;

static void freep(void *p) { free(*(void **) p); }
static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        devnull = fopen("/dev/null", "we");
        if (!devnull) {
                perror("fuzz-query: /dev/null");
                exit(1);
        }
        return 0;
}

static void print(const cJSON *v) {
        int r = sg_query_print_text(devnull, v);
        FUZZ_CHECK(r == 0 || r == -ELOOP, "sg_query_print_text returned %d", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nul = memchr(data, '\0', size);
        size_t elen = nul ? (size_t) (nul - data) : size;
        __attribute__((cleanup(freep))) char *expr = malloc(elen + 1);
        __attribute__((cleanup(freep))) char *before = NULL;
        __attribute__((cleanup(freep))) char *after = NULL;
        __attribute__((cleanup(cjson_deletep))) cJSON *root = NULL;
        __attribute__((cleanup(cjson_deletep))) cJSON *result = NULL;
        char why[256];

        if (!expr)
                return 0;
        memcpy(expr, data, elen);
        expr[elen] = '\0';
        if (nul) {
                root = cJSON_ParseWithLength((const char *) nul + 1, size - elen - 1);
                before = root ? cJSON_PrintUnformatted(root) : NULL;
        }

        /* A sentinel, so that a result pointer left alone on failure is seen. */
        result = (cJSON *) &result;
        int r = sg_query_eval(root, expr, &result, why, sizeof(why));
        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "sg_query_eval returned %d", r);
        FUZZ_CHECK((r == 0) == (result != NULL), "sg_query_eval returned %d with result %p", r, (void *) result);
        if (r < 0) {
                size_t n = strnlen(why, sizeof(why));
                FUZZ_CHECK(n > 0 && n < sizeof(why) && !strchr(why, '\n'), "the error reason is not one line: '%s'", why);
        } else {
                print(result);
        }
        if (root) {
                after = cJSON_PrintUnformatted(root);
                FUZZ_CHECK((before == NULL) == (after == NULL) && (!before || strcmp(before, after) == 0),
                           "sg_query_eval changed its document: '%.200s' became '%.200s'", before ? before : "(none)",
                           after ? after : "(none)");
                print(root);
        }
        return 0;
}
