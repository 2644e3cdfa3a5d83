/* fuzz-policy-docs: the documents of the policy store (DESIGN §7) and signgated.json.
 *
 * Each input is parsed as the store loader parses a file (cJSON, trailing whitespace allowed)
 * and handed to all four document parsers, sg_profile_from_json, sg_csc_from_json,
 * sg_function_from_json and sg_revocation_from_json, so one corpus serves all of them; the raw
 * bytes also go through sg_settings_parse.
 *
 * Besides the sanitizers, the harness aborts on broken contracts (FUZZ_CHECK): a refusal other
 * than -EINVAL with reason MALFORMED and a message, and a document that a parser accepts but
 * does not accept again once stored (printed with cJSON_Print, as sg_store_write does, and read
 * back): the gate would then write a store it cannot load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sg_common.h"
#include "sg_settings.h"
#include "sg_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                       \
        do {                                                                        \
                if (!(cond)) {                                                      \
                        fprintf(stderr, "fuzz-policy-docs: contract broken: " __VA_ARGS__); \
                        fputc('\n', stderr);                                        \
                        abort();                                                    \
                }                                                                   \
        } while (0)

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

/* The store loader's reading of a document file: JSON, then nothing but whitespace. */
static cJSON *parse_doc(const char *text, size_t len) {
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
        while (j && end && end < text + len && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r'))
                end++;
        if (j && end != text + len) {
                cJSON_Delete(j);
                return NULL;
        }
        return j;
}

/* What sg_store_write would put on disk for doc, parsed back as sg_store_load would. */
static cJSON *stored(const cJSON *doc) {
        _cleanup_(sg_freep) char *text = cJSON_Print(doc);
        FUZZ_CHECK(text, "cJSON_Print failed");
        cJSON *j = parse_doc(text, strlen(text));
        FUZZ_CHECK(j, "a stored document is not JSON: %.200s", text);
        return j;
}

static void check_refusal(const char *what, int r, const sg_error *err) {
        FUZZ_CHECK(r == -EINVAL && err->reason == SG_REASON_MALFORMED && err->msg[0],
                   "%s refused a document with %d, reason %s", what, r, sg_reason_name(err->reason));
}

static void profile(const cJSON *j) {
        sg_profile p, again;
        sg_error err = {0};
        int r = sg_profile_from_json(j, &p, &err);
        if (r < 0) {
                check_refusal("sg_profile_from_json", r, &err);
                return;
        }
        _cleanup_(cjson_deletep) cJSON *back = stored(p.doc);
        r = sg_profile_from_json(back, &again, &err);
        FUZZ_CHECK(r == 0, "a stored profile does not load again: %s", err.msg);
        FUZZ_CHECK(strcmp(p.name, again.name) == 0 && strcmp(p.version, again.version) == 0 &&
                           strcmp(p.platform_id, again.platform_id) == 0 && p.validity_value == again.validity_value &&
                           p.validity_unit == again.validity_unit && p.created_at == again.created_at &&
                           EVP_PKEY_eq(p.key, again.key) == 1,
                   "profile %s/%s reads differently once stored", p.name, p.version);
        sg_profile_done(&again);
        sg_profile_done(&p);
}

static void csc(const cJSON *j) {
        sg_csc c, again;
        sg_error err = {0};
        int r = sg_csc_from_json(j, &c, &err);
        if (r < 0) {
                check_refusal("sg_csc_from_json", r, &err);
                return;
        }
        _cleanup_(cjson_deletep) cJSON *back = stored(c.doc);
        r = sg_csc_from_json(back, &again, &err);
        FUZZ_CHECK(r == 0, "a stored code signing config does not load again: %s", err.msg);
        bool same = strcmp(c.id, again.id) == 0 && strcmp(c.description, again.description) == 0 &&
                    c.n_publishers == again.n_publishers && c.policy == again.policy &&
                    c.last_modified == again.last_modified;
        for (size_t i = 0; same && i < c.n_publishers; i++)
                same = strcmp(c.publishers[i], again.publishers[i]) == 0;
        FUZZ_CHECK(same, "code signing config %s reads differently once stored", c.id);
        cJSON_Delete(again.doc);
        cJSON_Delete(c.doc);
}

static void function(const cJSON *j) {
        sg_function f, again;
        sg_error err = {0};
        int r = sg_function_from_json(j, &f, &err);
        if (r < 0) {
                check_refusal("sg_function_from_json", r, &err);
                return;
        }
        _cleanup_(cjson_deletep) cJSON *back = stored(f.doc);
        r = sg_function_from_json(back, &again, &err);
        FUZZ_CHECK(r == 0, "a stored function does not load again: %s", err.msg);
        FUZZ_CHECK(strcmp(f.name, again.name) == 0 && strcmp(f.csc_id, again.csc_id) == 0,
                   "function %s reads differently once stored", f.name);
        cJSON_Delete(again.doc);
        cJSON_Delete(f.doc);
}

static void revocation(const cJSON *j) {
        sg_revocation v, again;
        sg_error err = {0};
        int r = sg_revocation_from_json(j, &v, &err);
        if (r < 0) {
                check_refusal("sg_revocation_from_json", r, &err);
                return;
        }
        _cleanup_(cjson_deletep) cJSON *back = stored(v.doc);
        r = sg_revocation_from_json(back, &again, &err);
        FUZZ_CHECK(r == 0, "a stored revocation does not load again: %s", err.msg);
        FUZZ_CHECK(v.type == again.type && strcmp(v.profile_name, again.profile_name) == 0 &&
                           strcmp(v.profile_version, again.profile_version) == 0 &&
                           v.effective_time == again.effective_time && strcmp(v.job_id, again.job_id) == 0,
                   "a revocation reads differently once stored");
        cJSON_Delete(again.doc);
        cJSON_Delete(v.doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *text = (const char *) data;

        _cleanup_(cjson_deletep) cJSON *j = parse_doc(text, size);
        if (j) {
                profile(j);
                csc(j);
                function(j);
                revocation(j);
        }

        /* sg_settings is large (hook arguments, role members): keep it off the stack. */
        _cleanup_(sg_freep) sg_settings *s = malloc(sizeof(*s));
        sg_error err = {0};
        if (!s)
                return 0;
        int r = sg_settings_parse(text, size, s, &err);
        if (r < 0)
                check_refusal("sg_settings_parse", r, &err);
        else
                FUZZ_CHECK(s->limits.entries >= 1 && s->limits.package_bytes >= 22 && s->socket_path[0] == '/' &&
                                   (s->hook_argc == 0 || s->hook_argv[0][0] == '/') && (s->socket_mode & 0600) == 0600,
                           "settings parsed out of their documented ranges");
        return 0;
}
