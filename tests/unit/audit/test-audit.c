/* Unit tests for audit/sg_audit.c: the hash-chained audit file (DESIGN §12).
 *
 * Each test works in a fresh mkdtemp() directory (under $SIGNGATE_TEST_TMP, else /tmp) that the
 * teardown removes. Hashes are recomputed here with OpenSSL's streaming EVP interface, not with the
 * module's helpers, so a wrong "prev" cannot be agreed on by both sides.
 *
 * Run one test alone with: unit-audit-test-audit TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sg_audit.h"
#include "sg_common.h"
#include "sg_test.h"

#define NAME "audit.jsonl"
#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* ------------------------------------------------------------------------------------------ */
/* Fixture: a temp directory.                                                                  */

typedef sg_test_tmpdir fixture;

static int setup_tmp(void **state) { return sg_test_tmpdir_setup(state, "sg-audit"); }
static int teardown_tmp(void **state) { return sg_test_tmpdir_teardown(state); }

/* ------------------------------------------------------------------------------------------ */
/* Helpers.                                                                                    */

static void sha256_hex(const char *p, size_t n, char out[65]) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;

        assert_non_null(c);
        assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
        assert_int_equal(EVP_DigestUpdate(c, p, n), 1);
        assert_int_equal(EVP_DigestFinal_ex(c, md, &len), 1);
        EVP_MD_CTX_free(c);
        assert_int_equal(len, 32);
        for (unsigned i = 0; i < len; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
}

/* A decision-like record; ids are "d-<n>" so tests can find them. */
static cJSON *record(unsigned n) {
        char id[32];
        cJSON *j = cJSON_CreateObject();

        snprintf(id, sizeof(id), "d-%u", n);
        assert_non_null(j);
        assert_non_null(cJSON_AddStringToObject(j, "time", "2025-01-02T03:04:05Z"));
        assert_non_null(cJSON_AddStringToObject(j, "decisionId", id));
        assert_non_null(cJSON_AddStringToObject(j, "function", "fn"));
        assert_non_null(cJSON_AddStringToObject(j, "outcome", "promoted"));
        assert_non_null(cJSON_AddStringToObject(j, "message", "Package promoted."));
        return j;
}

static sg_audit *open_ok(fixture *f, uint64_t rotate_bytes, unsigned keep) {
        sg_audit_options o = {.rotate_bytes = rotate_bytes, .keep_files = keep};
        sg_error err = {0};
        sg_audit *a = NULL;

        int r = sg_audit_open(f->dirfd, NAME, &o, &a, &err);
        if (r < 0)
                fail_msg("sg_audit_open: %s (%s)", strerror(-r), err.msg);
        return a;
}

/* Appends records first … first+count-1 and checks each got the expected seq. */
static void append_n(sg_audit *a, unsigned first, unsigned count) {
        for (unsigned i = first; i < first + count; i++) {
                cJSON *j = record(i);
                uint64_t seq = 0, want = sg_audit_next_seq(a);
                assert_int_equal(sg_audit_append(a, j, &seq), 0);
                assert_int_equal(seq, want);
                cJSON_Delete(j);
        }
}

static char *read_all(fixture *f, const char *name, size_t *ret_len) {
        char *s = NULL;
        size_t len = 0;
        int r = sg_read_file(f->dirfd, name, 64u << 20, &s, &len);
        if (r < 0)
                fail_msg("read %s: %s", name, strerror(-r));
        if (ret_len)
                *ret_len = len;
        return s;
}

static void write_all(fixture *f, const char *name, const char *s, size_t len) {
        int fd = openat(f->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        assert_true(fd >= 0);
        assert_int_equal(sg_write_all(fd, s, len), 0);
        close(fd);
}

static bool exists(fixture *f, const char *name) { return faccessat(f->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0; }

static uint64_t file_size(fixture *f, const char *name) {
        struct stat st;
        assert_int_equal(fstatat(f->dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        return (uint64_t) st.st_size;
}

/* Splits s into lines (without '\n'), in place. Returns the count; a last piece without '\n'
 * is not counted. */
static size_t split_lines(char *s, size_t len, char **lines, size_t max) {
        size_t n = 0;
        char *p = s, *end = s + len;
        while (p < end && n < max) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                if (!nl)
                        break;
                *nl = '\0';
                lines[n++] = p;
                p = nl + 1;
        }
        return n;
}

/* The last line of a file and its SHA-256. */
static void last_line_hash(fixture *f, const char *name, char out[65]) {
        size_t len;
        char *s = read_all(f, name, &len), *lines[4096];
        size_t n = split_lines(s, len, lines, 4096);
        assert_true(n > 0);
        sha256_hex(lines[n - 1], strlen(lines[n - 1]), out);
        free(s);
}

static cJSON *parse_line(const char *line) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
                fail_msg("not JSON: %s", line);
        return j;
}

static uint64_t seq_of(const char *line) {
        cJSON *j = parse_line(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "seq");
        assert_true(cJSON_IsNumber(s));
        uint64_t v = (uint64_t) s->valuedouble;
        cJSON_Delete(j);
        return v;
}

static const char *prev_of(const char *line, char out[65]) {
        cJSON *j = parse_line(line);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prev");
        assert_true(cJSON_IsString(p));
        assert_int_equal(strlen(p->valuestring), 64);
        memcpy(out, p->valuestring, 65);
        cJSON_Delete(j);
        return out;
}

/* Runs sg_audit_verify on files of the fixture directory. */
static int verify(fixture *f, const char *const *names, size_t n, sg_audit_summary *sum, sg_error *err) {
        char **paths = calloc(n, sizeof(*paths));
        assert_non_null(paths);
        for (size_t i = 0; i < n; i++)
                assert_true(asprintf(&paths[i], "%s/%s", f->dir, names[i]) > 0);
        int r = sg_audit_verify((const char *const *) paths, n, sum, err);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return r;
}

/* Verification must fail with -EBADMSG and a message starting "DIR/name:line: ". */
static void assert_verify_fails_at(fixture *f, const char *const *names, size_t n, const char *name, unsigned line) {
        sg_error err = {0};
        sg_audit_summary sum;
        char want[PATH_MAX + 32];

        int r = verify(f, names, n, &sum, &err);
        if (r != -EBADMSG)
                fail_msg("verify returned %d (%s), want -EBADMSG; msg: %s", r, strerror(-r), err.msg);
        snprintf(want, sizeof(want), "%s/%s:%u: ", f->dir, name, line);
        if (strncmp(err.msg, want, strlen(want)) != 0)
                fail_msg("error is \"%s\", want it to start with \"%s\"", err.msg, want);
}

static void assert_verify_ok(fixture *f, const char *const *names, size_t n, sg_audit_summary *sum) {
        sg_error err = {0};
        int r = verify(f, names, n, sum, &err);
        if (r != 0)
                fail_msg("verify: %s (%s)", strerror(-r), err.msg);
}

/* Writes a chain of count records to NAME through the module (no rotation) and returns its text. */
static char *make_chain(fixture *f, unsigned count, size_t *ret_len) {
        sg_audit *a = open_ok(f, 0, 0);
        append_n(a, 1, count);
        sg_audit_free(a);
        return read_all(f, NAME, ret_len);
}

/* ------------------------------------------------------------------------------------------ */
/* Opening and appending.                                                                      */

static void open_creates_file_0640_and_starts_chain_at_seq_1(void **state) {
        fixture *f = *state;
        mode_t old = umask(0077); /* the file mode must not depend on the umask */
        sg_audit *a = open_ok(f, 0, 0);
        umask(old);

        struct stat st;
        assert_int_equal(fstatat(f->dirfd, NAME, &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(sg_audit_next_seq(a), 1);
        assert_string_equal(sg_audit_prev(a), ZEROS);
        sg_audit_free(a);
}

static void append_puts_seq_first_and_prev_last_on_one_line(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        cJSON *j = record(1);
        uint64_t seq = 0;

        assert_int_equal(sg_audit_append(a, j, &seq), 0);
        assert_int_equal(seq, 1);
        /* The caller's object now carries the keys too (the daemon returns it as the API body). */
        assert_string_equal(j->child->string, "seq");
        cJSON *last = j->child;
        while (last->next)
                last = last->next;
        assert_string_equal(last->string, "prev");
        cJSON_Delete(j);
        sg_audit_free(a);

        size_t len;
        char *s = read_all(f, NAME, &len);
        assert_true(len > 0);
        assert_int_equal(s[len - 1], '\n');
        assert_ptr_equal(memchr(s, '\n', len), s + len - 1);
        assert_string_equal(s, "{\"seq\":1,\"time\":\"2025-01-02T03:04:05Z\",\"decisionId\":\"d-1\",\"function\":\"fn\","
                               "\"outcome\":\"promoted\",\"message\":\"Package promoted.\",\"prev\":\"" ZEROS "\"}\n");
        free(s);
}

static void prev_is_sha256_of_previous_line(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 5, &len), *lines[8], h[65], p[65];

        assert_int_equal(split_lines(s, len, lines, 8), 5);
        assert_string_equal(prev_of(lines[0], p), ZEROS);
        for (size_t i = 1; i < 5; i++) {
                sha256_hex(lines[i - 1], strlen(lines[i - 1]), h);
                assert_string_equal(prev_of(lines[i], p), h);
                assert_int_equal(seq_of(lines[i]), i + 1);
        }
        free(s);
}

static void reopen_continues_seq_and_prev(void **state) {
        fixture *f = *state;
        char h[65], p[65];
        sg_audit *a = open_ok(f, 0, 0);
        append_n(a, 1, 3);
        sg_audit_free(a);

        last_line_hash(f, NAME, h);
        a = open_ok(f, 0, 0);
        assert_int_equal(sg_audit_next_seq(a), 4);
        assert_string_equal(sg_audit_prev(a), h);
        append_n(a, 4, 2);
        sg_audit_free(a);

        size_t len;
        char *s = read_all(f, NAME, &len), *lines[8];
        assert_int_equal(split_lines(s, len, lines, 8), 5);
        assert_int_equal(seq_of(lines[3]), 4);
        assert_string_equal(prev_of(lines[3], p), h);
        free(s);

        const char *names[] = {NAME};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 1, &sum);
        assert_int_equal(sum.records, 5);
        assert_int_equal(sum.last_seq, 5);
}

static void append_replaces_callers_seq_and_prev(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        cJSON *j = record(1);
        uint64_t seq = 0;

        assert_non_null(cJSON_AddNumberToObject(j, "seq", 77));
        assert_non_null(cJSON_AddStringToObject(j, "prev", "forged"));
        assert_int_equal(sg_audit_append(a, j, &seq), 0);
        assert_int_equal(seq, 1);
        assert_int_equal(cJSON_GetArraySize(j), 7);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "prev")->valuestring, ZEROS);
        cJSON_Delete(j);
        sg_audit_free(a);
}

static void open_refuses_symlink(void **state) {
        fixture *f = *state;
        sg_audit *a = NULL;
        sg_error err = {0};

        assert_int_equal(symlinkat("/etc/passwd", f->dirfd, NAME), 0);
        assert_int_equal(sg_audit_open(f->dirfd, NAME, NULL, &a, &err), -ELOOP);
        assert_null(a);
        assert_non_null(strstr(err.msg, NAME));
}

static void second_writer_is_refused_while_first_holds_file(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0), *b = NULL;
        sg_error err = {0};

        assert_int_equal(sg_audit_open(f->dirfd, NAME, NULL, &b, &err), -EBUSY);
        sg_audit_free(a);
        b = open_ok(f, 0, 0);
        sg_audit_free(b);
}

static void open_cuts_a_torn_last_line_and_continues_the_chain(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 3, &len);
        sg_audit *a = NULL;
        sg_error err = {0};

        /* A crash in the middle of the fourth write: part of a line, no '\n'. It was never
         * fsynced or acknowledged, so open cuts it and the chain goes on from line 3. */
        write_all(f, NAME, s, len);
        int fd = openat(f->dirfd, NAME, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(sg_write_all(fd, "{\"seq\":4,\"time\":\"20", 20), 0);
        close(fd);
        assert_int_equal(sg_audit_open(f->dirfd, NAME, NULL, &a, &err), 0);
        assert_int_equal(sg_audit_repaired_bytes(a), 20);
        assert_int_equal(sg_audit_next_seq(a), 4);
        struct stat st;
        assert_int_equal(fstatat(f->dirfd, NAME, &st, 0), 0);
        assert_int_equal((size_t) st.st_size, len);
        sg_audit_free(a);

        /* Cut so that the torn line is the whole of a valid-looking record without '\n': that
         * record was never durable either, so it goes too and the chain continues from line 2. */
        write_all(f, NAME, s, len - 1);
        assert_int_equal(sg_audit_open(f->dirfd, NAME, NULL, &a, &err), 0);
        assert_true(sg_audit_repaired_bytes(a) > 0);
        assert_int_equal(sg_audit_next_seq(a), 3);
        sg_audit_free(a);
        free(s);
}

static void open_refuses_last_line_without_integer_seq(void **state) {
        fixture *f = *state;
        static const char *bad[] = {
                "{\"a\":1}\n",
                "{\"seq\":\"1\"}\n",
                "{\"seq\":1.5}\n",
                "{\"seq\":0}\n",
                "[1]\n",
                "{\"seq\":1} trailing\n",
                "\n",
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(bad); i++) {
                sg_audit *a = NULL;
                sg_error err = {0};
                write_all(f, NAME, bad[i], strlen(bad[i]));
                int r = sg_audit_open(f->dirfd, NAME, NULL, &a, &err);
                if (r != -EBADMSG)
                        fail_msg("line %s: open returned %d, want -EBADMSG", bad[i], r);
                assert_null(a);
                assert_int_equal(strncmp(err.msg, NAME ":1: ", strlen(NAME ":1: ")), 0);
        }
}

static void failed_write_leaves_no_torn_line_and_state_unchanged(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        append_n(a, 1, 2);
        uint64_t before = file_size(f, NAME);
        char prev[65];
        snprintf(prev, sizeof(prev), "%s", sg_audit_prev(a));

        /* RLIMIT_FSIZE lets the write put 10 bytes of the line in the file and then fail with
         * EFBIG: a short write, as a full disk would make. */
        struct rlimit old, lim;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = (rlim_t) before + 10;
        void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        cJSON *j = record(3);
        uint64_t seq = 0;
        int r = sg_audit_append(a, j, &seq);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, old_handler);

        assert_int_equal(r, -EFBIG);
        assert_int_equal(file_size(f, NAME), before);
        assert_int_equal(sg_audit_next_seq(a), 3);
        assert_string_equal(sg_audit_prev(a), prev);
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "seq"));
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "prev"));

        assert_int_equal(sg_audit_append(a, j, &seq), 0);
        assert_int_equal(seq, 3);
        cJSON_Delete(j);
        sg_audit_free(a);
        const char *names[] = {NAME};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 1, &sum);
        assert_int_equal(sum.records, 3);
}

static void append_refuses_line_over_1_mib(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        cJSON *j = record(1);
        char *big = malloc(SG_AUDIT_LINE_MAX);
        uint64_t seq = 0;

        assert_non_null(big);
        memset(big, 'x', SG_AUDIT_LINE_MAX - 1);
        big[SG_AUDIT_LINE_MAX - 1] = '\0';
        assert_non_null(cJSON_AddStringToObject(j, "blob", big));
        free(big);
        assert_int_equal(sg_audit_append(a, j, &seq), -EMSGSIZE);
        assert_null(cJSON_GetObjectItemCaseSensitive(j, "seq"));
        assert_int_equal(file_size(f, NAME), 0);
        assert_int_equal(sg_audit_next_seq(a), 1);
        cJSON_Delete(j);
        sg_audit_free(a);
}

static void append_many_writes_one_chain(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        cJSON *recs[6];
        uint64_t first = 0;

        append_n(a, 1, 2);
        for (unsigned i = 0; i < 6; i++)
                recs[i] = record(10 + i);
        assert_int_equal(sg_audit_append_many(a, recs, 6, &first), 0);
        assert_int_equal(first, 3);
        for (unsigned i = 0; i < 6; i++) {
                assert_int_equal(cJSON_GetObjectItemCaseSensitive(recs[i], "seq")->valuedouble, 3 + i);
                cJSON_Delete(recs[i]);
        }
        assert_int_equal(sg_audit_next_seq(a), 9);
        sg_audit_free(a);

        size_t len;
        char *s = read_all(f, NAME, &len), *lines[16], h[65], p[65];
        assert_int_equal(split_lines(s, len, lines, 16), 8);
        for (size_t i = 1; i < 8; i++) {
                sha256_hex(lines[i - 1], strlen(lines[i - 1]), h);
                assert_string_equal(prev_of(lines[i], p), h);
        }
        free(s);
        const char *names[] = {NAME};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 1, &sum);
        assert_int_equal(sum.records, 8);
}

static void append_many_of_nothing_changes_nothing(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        uint64_t first = 99;
        assert_int_equal(sg_audit_append_many(a, NULL, 0, &first), 0);
        assert_int_equal(first, 99);
        assert_int_equal(sg_audit_next_seq(a), 1);
        sg_audit_free(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Rotation.                                                                                   */

/* Every record() line is 200 to 206 bytes: a limit of 700 holds exactly 3 per file. */
#define SMALL_FILE 700

static void rotation_keeps_chain_across_files_and_at_most_keep_files(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 3);
        char h[65], p[65];

        append_n(a, 1, 30);
        sg_audit_free(a);

        assert_true(exists(f, NAME ".1") && exists(f, NAME ".2") && exists(f, NAME ".3"));
        assert_false(exists(f, NAME ".4"));
        const char *names[] = {NAME, NAME ".1", NAME ".2", NAME ".3"};
        for (size_t i = 0; i < 4; i++)
                assert_true(file_size(f, names[i]) <= SMALL_FILE);

        /* Each file's first line chains to the last line of the file rotated before it. */
        for (size_t i = 0; i < 3; i++) {
                size_t len;
                char *s = read_all(f, names[i], &len), *lines[16];
                assert_true(split_lines(s, len, lines, 16) > 0);
                last_line_hash(f, names[i + 1], h);
                assert_string_equal(prev_of(lines[0], p), h);
                free(s);
        }
        sg_audit_summary sum;
        assert_verify_ok(f, names, 4, &sum);
        assert_int_equal(sum.files, 4);
        assert_int_equal(sum.last_seq, 30);
        assert_int_equal(sum.records, sum.last_seq - sum.first_seq + 1);
        assert_true(sum.first_seq > 1);
        assert_true(sum.chained_from_earlier);

        /* The chain goes on after a reopen. */
        a = open_ok(f, SMALL_FILE, 3);
        assert_int_equal(sg_audit_next_seq(a), 31);
        append_n(a, 31, 4);
        sg_audit_free(a);
        assert_false(exists(f, NAME ".4"));
        assert_verify_ok(f, names, 4, &sum);
        assert_int_equal(sum.last_seq, 34);
}

static void rotation_over_a_gap_moves_only_the_newer_files(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 5);

        append_n(a, 1, 11); /* .3: 1–3, .2: 4–6, .1: 7–9, NAME: 10–11 */
        assert_true(exists(f, NAME ".3"));
        assert_int_equal(unlinkat(f->dirfd, NAME ".2", 0), 0);
        append_n(a, 12, 2); /* 12 fills NAME, 13 rotates */
        sg_audit_free(a);

        /* NAME.1 and NAME.2 moved up into the gap; NAME.3 (seq 1–3) stayed where it was. */
        assert_false(exists(f, NAME ".4"));
        size_t len;
        char *s = read_all(f, NAME ".3", &len), *lines[4];
        assert_int_equal(split_lines(s, len, lines, 4), 3);
        assert_int_equal(seq_of(lines[0]), 1);
        free(s);
        const char *recent[] = {NAME, NAME ".1", NAME ".2"};
        sg_audit_summary sum;
        assert_verify_ok(f, recent, 3, &sum);
        assert_int_equal(sum.first_seq, 7);
        assert_int_equal(sum.last_seq, 13);
        /* The lost file shows as a hole in the chain. */
        const char *all[] = {NAME, NAME ".1", NAME ".2", NAME ".3"};
        assert_verify_fails_at(f, all, 4, NAME ".2", 1);
}

static void rotation_with_keep_zero_leaves_only_current_file(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 0);

        append_n(a, 1, 10);
        assert_false(exists(f, NAME ".1"));
        sg_audit_free(a);
        const char *names[] = {NAME};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 1, &sum);
        assert_int_equal(sum.last_seq, 10);
        assert_true(sum.chained_from_earlier);
}

static void append_many_across_rotation_keeps_one_chain(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 5);
        cJSON *recs[7];
        uint64_t first = 0;

        for (unsigned i = 0; i < 7; i++)
                recs[i] = record(i + 1);
        assert_int_equal(sg_audit_append_many(a, recs, 7, &first), 0);
        assert_int_equal(first, 1);
        for (unsigned i = 0; i < 7; i++)
                cJSON_Delete(recs[i]);
        sg_audit_free(a);

        assert_true(exists(f, NAME ".1") && exists(f, NAME ".2"));
        const char *names[] = {NAME ".2", NAME, NAME ".1"};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 3, &sum);
        assert_int_equal(sum.first_seq, 1);
        assert_int_equal(sum.last_seq, 7);
        assert_false(sum.chained_from_earlier);
}

static void empty_current_file_continues_from_name_1(void **state) {
        fixture *f = *state;
        char h[65], p[65];
        sg_audit *a = open_ok(f, 0, 0);
        append_n(a, 1, 4);
        sg_audit_free(a);

        /* What a crash right after the rotation's rename leaves, with and without the new file. */
        last_line_hash(f, NAME, h);
        assert_int_equal(renameat(f->dirfd, NAME, f->dirfd, NAME ".1"), 0);
        a = open_ok(f, 0, 0);
        assert_int_equal(sg_audit_next_seq(a), 5);
        assert_string_equal(sg_audit_prev(a), h);
        append_n(a, 5, 1);
        sg_audit_free(a);

        size_t len;
        char *s = read_all(f, NAME, &len), *lines[4];
        assert_int_equal(split_lines(s, len, lines, 4), 1);
        assert_int_equal(seq_of(lines[0]), 5);
        assert_string_equal(prev_of(lines[0], p), h);
        free(s);
        const char *names[] = {NAME, NAME ".1"};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 2, &sum);
        assert_int_equal(sum.records, 5);
        assert_false(sum.chained_from_earlier);
}

/* ------------------------------------------------------------------------------------------ */
/* Verification.                                                                               */

static void verify_passes_on_good_chain_given_in_shuffled_order(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 9);
        append_n(a, 1, 14);
        sg_audit_free(a);

        const char *names[] = {NAME ".2", NAME, NAME ".4", NAME ".1", NAME ".3"};
        sg_audit_summary sum;
        assert_false(exists(f, NAME ".5"));
        assert_verify_ok(f, names, 5, &sum);
        assert_int_equal(sum.files, 5);
        assert_int_equal(sum.records, 14);
        assert_int_equal(sum.first_seq, 1);
        assert_int_equal(sum.last_seq, 14);
        assert_false(sum.chained_from_earlier);
}

static void verify_reports_edited_byte(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 6, &len);
        const char *names[] = {NAME};

        /* The function name of line 3: still valid JSON, so the next line's "prev" gives it away. */
        char *third = s;
        for (int i = 0; i < 2; i++)
                third = strchr(third, '\n') + 1;
        char *fn = strstr(third, "\"fn\"");
        assert_non_null(fn);
        fn[1] = 'g';
        write_all(f, NAME, s, len);
        assert_verify_fails_at(f, names, 1, NAME, 4);

        /* The same edit in the last line is out of the chain's reach, but one that breaks its
         * JSON is not. */
        fn[1] = 'f';
        char *brace = s + len - 2;
        assert_int_equal(*brace, '}');
        *brace = ']';
        write_all(f, NAME, s, len);
        assert_verify_fails_at(f, names, 1, NAME, 6);
        free(s);
}

static void verify_reports_deleted_line(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 6, &len);
        const char *names[] = {NAME};

        char *l3 = s;
        for (int i = 0; i < 2; i++)
                l3 = strchr(l3, '\n') + 1;
        char *l4 = strchr(l3, '\n') + 1;
        memmove(l3, l4, (size_t) (s + len - l4));
        write_all(f, NAME, s, len - (size_t) (l4 - l3));
        assert_verify_fails_at(f, names, 1, NAME, 3);
        free(s);
}

static void verify_reports_swapped_pair(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 6, &len), *lines[8];
        const char *names[] = {NAME};

        assert_int_equal(split_lines(s, len, lines, 8), 6);
        char *out = NULL;
        size_t olen = 0;
        FILE *m = open_memstream(&out, &olen);
        assert_non_null(m);
        const int order[] = {0, 1, 3, 2, 4, 5};
        for (int i = 0; i < 6; i++)
                fprintf(m, "%s\n", lines[order[i]]);
        fclose(m);
        write_all(f, NAME, out, olen);
        assert_verify_fails_at(f, names, 1, NAME, 3);
        free(out);
        free(s);
}

static void verify_reports_line_with_wrong_seq(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 6, &len);
        const char *names[] = {NAME};

        char *seq5 = strstr(s, "{\"seq\":5,");
        assert_non_null(seq5);
        seq5[7] = '7';
        write_all(f, NAME, s, len);
        assert_verify_fails_at(f, names, 1, NAME, 5);
        sg_error err = {0};
        sg_audit_summary sum;
        assert_int_equal(verify(f, names, 1, &sum, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "seq 7, expected 5"));
        free(s);
}

static void verify_reports_truncated_last_line(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 4, &len);
        const char *names[] = {NAME};

        write_all(f, NAME, s, len - 30);
        assert_verify_fails_at(f, names, 1, NAME, 4);
        /* Only the '\n' missing is a truncation too. */
        write_all(f, NAME, s, len - 1);
        assert_verify_fails_at(f, names, 1, NAME, 4);
        free(s);
}

static void verify_reports_nonzero_prev_on_seq_1(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 2, &len);
        const char *names[] = {NAME};

        char *z = strstr(s, ZEROS);
        assert_non_null(z);
        z[0] = '1';
        write_all(f, NAME, s, len);
        assert_verify_fails_at(f, names, 1, NAME, 1);
        free(s);
}

static void verify_reports_missing_middle_file(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 5);
        append_n(a, 1, 8);
        sg_audit_free(a);

        const char *names[] = {NAME, NAME ".2"};
        assert_verify_fails_at(f, names, 2, NAME, 1);
}

static void verify_reports_line_over_1_mib(void **state) {
        fixture *f = *state;
        size_t len;
        char *s = make_chain(f, 2, &len);
        const char *names[] = {NAME};
        size_t big = SG_AUDIT_LINE_MAX + 10;
        char *t = malloc(len + big);

        assert_non_null(t);
        memcpy(t, s, len);
        memset(t + len, 'x', big - 1);
        t[len + big - 1] = '\n';
        write_all(f, NAME, t, len + big);
        assert_verify_fails_at(f, names, 1, NAME, 3);
        free(t);
        free(s);
}

static void verify_counts_empty_file_without_records(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        sg_audit_free(a);
        const char *names[] = {NAME};
        sg_audit_summary sum;
        assert_verify_ok(f, names, 1, &sum);
        assert_int_equal(sum.files, 1);
        assert_int_equal(sum.records, 0);
        assert_int_equal(sum.first_seq, 0);
        assert_int_equal(sum.last_seq, 0);
}

static void verify_reports_missing_file_as_io_error(void **state) {
        fixture *f = *state;
        const char *names[] = {"nope.jsonl"};
        sg_error err = {0};
        sg_audit_summary sum;
        assert_int_equal(verify(f, names, 1, &sum, &err), -ENOENT);
        assert_non_null(strstr(err.msg, "nope.jsonl"));
}

/* ------------------------------------------------------------------------------------------ */
/* Finding a decision.                                                                         */

static void find_decision_finds_recent_id(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        cJSON *got = NULL;

        append_n(a, 1, 20);
        assert_int_equal(sg_audit_find_decision(a, "d-18", 4096, &got), 0);
        assert_non_null(got);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(got, "decisionId")->valuestring, "d-18");
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(got, "seq")->valuedouble, 18);
        cJSON_Delete(got);
        assert_int_equal(sg_audit_find_decision(a, "d-20", 4096, NULL), 0);
        sg_audit_free(a);
}

static void find_decision_returns_enoent_for_absent_id(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        cJSON *got = NULL;

        assert_int_equal(sg_audit_find_decision(a, "d-1", 4096, &got), -ENOENT);
        append_n(a, 1, 5);
        assert_int_equal(sg_audit_find_decision(a, "d-99", 1 << 20, &got), -ENOENT);
        /* A prefix of a recorded id is not that id. */
        assert_int_equal(sg_audit_find_decision(a, "d-", 1 << 20, &got), -ENOENT);
        assert_null(got);
        sg_audit_free(a);
}

static void find_decision_looks_only_at_last_max_bytes(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);

        append_n(a, 1, 20);
        /* About two lines' worth: d-1 is far out of reach, d-20 inside. */
        assert_int_equal(sg_audit_find_decision(a, "d-1", 400, NULL), -ENOENT);
        assert_int_equal(sg_audit_find_decision(a, "d-20", 400, NULL), 0);
        sg_audit_free(a);
}

static void find_decision_searches_name_1_after_rotation(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 2);
        cJSON *got = NULL;

        append_n(a, 1, 4); /* 1–3 in NAME.1, 4 in NAME */
        assert_true(exists(f, NAME ".1"));
        assert_int_equal(sg_audit_find_decision(a, "d-2", 4096, &got), 0);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(got, "seq")->valuedouble, 2);
        cJSON_Delete(got);
        sg_audit_free(a);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_tmp, teardown_tmp)
                T(open_creates_file_0640_and_starts_chain_at_seq_1),
                T(append_puts_seq_first_and_prev_last_on_one_line),
                T(prev_is_sha256_of_previous_line),
                T(reopen_continues_seq_and_prev),
                T(append_replaces_callers_seq_and_prev),
                T(open_refuses_symlink),
                T(second_writer_is_refused_while_first_holds_file),
                T(open_cuts_a_torn_last_line_and_continues_the_chain),
                T(open_refuses_last_line_without_integer_seq),
                T(failed_write_leaves_no_torn_line_and_state_unchanged),
                T(append_refuses_line_over_1_mib),
                T(append_many_writes_one_chain),
                T(append_many_of_nothing_changes_nothing),
                T(rotation_keeps_chain_across_files_and_at_most_keep_files),
                T(rotation_over_a_gap_moves_only_the_newer_files),
                T(rotation_with_keep_zero_leaves_only_current_file),
                T(append_many_across_rotation_keeps_one_chain),
                T(empty_current_file_continues_from_name_1),
                T(verify_passes_on_good_chain_given_in_shuffled_order),
                T(verify_reports_edited_byte),
                T(verify_reports_deleted_line),
                T(verify_reports_swapped_pair),
                T(verify_reports_line_with_wrong_seq),
                T(verify_reports_truncated_last_line),
                T(verify_reports_nonzero_prev_on_seq_1),
                T(verify_reports_missing_middle_file),
                T(verify_reports_line_over_1_mib),
                T(verify_counts_empty_file_without_records),
                T(verify_reports_missing_file_as_io_error),
                T(find_decision_finds_recent_id),
                T(find_decision_returns_enoent_for_absent_id),
                T(find_decision_looks_only_at_last_max_bytes),
                T(find_decision_searches_name_1_after_rotation),
#undef T
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
