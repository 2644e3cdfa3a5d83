/* Unit tests for sg_audit_read() (audit/sg_audit.h): visiting the records from a seq on, across
 * rotated files, as the daemon's journald relay does to replay what journald missed.
 *
 * Each test works in a fresh mkdtemp() directory (under $SIGNGATE_TEST_TMP, else /tmp) that the
 * teardown removes. What a read visited is compared with what was appended: seqs and the
 * "decisionId" each record was given ("d-<n>" for the n-th append).
 *
 * Run one test alone with: unit-audit-test-read TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sg_audit.h"
#include "sg_common.h"
#include "sg_test.h"

#define NAME "audit.jsonl"
/* Every record(n, 0) line is 200 to 206 bytes: a limit of 700 holds exactly 3 per file. */
#define SMALL_FILE 700
#define MAX_SEEN 4096

typedef sg_test_tmpdir fixture;

static int setup_tmp(void **state) { return sg_test_tmpdir_setup(state, "sg-audit-read"); }
static int teardown_tmp(void **state) { return sg_test_tmpdir_teardown(state); }

/* ------------------------------------------------------------------------------------------ */
/* Helpers.                                                                                    */

/* A decision-like record "d-<n>", padded with pad bytes so tests can make long lines. */
static cJSON *record(unsigned n, size_t pad) {
        char id[32];
        cJSON *j = cJSON_CreateObject();

        snprintf(id, sizeof(id), "d-%u", n);
        assert_non_null(j);
        assert_non_null(cJSON_AddStringToObject(j, "time", "2025-01-02T03:04:05Z"));
        assert_non_null(cJSON_AddStringToObject(j, "decisionId", id));
        assert_non_null(cJSON_AddStringToObject(j, "function", "fn"));
        assert_non_null(cJSON_AddStringToObject(j, "outcome", "promoted"));
        assert_non_null(cJSON_AddStringToObject(j, "message", "Package promoted."));
        if (pad > 0) {
                char *p = malloc(pad + 1);
                assert_non_null(p);
                memset(p, 'x', pad);
                p[pad] = '\0';
                assert_non_null(cJSON_AddStringToObject(j, "pad", p));
                free(p);
        }
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

/* Appends records first … first+count-1 (record n padded by pad_of(n), or not at all). */
static void append_n(sg_audit *a, unsigned first, unsigned count, size_t (*pad_of)(unsigned)) {
        for (unsigned i = first; i < first + count; i++) {
                cJSON *j = record(i, pad_of ? pad_of(i) : 0);
                uint64_t seq = 0;
                assert_int_equal(sg_audit_append(a, j, &seq), 0);
                assert_int_equal(seq, i);
                cJSON_Delete(j);
        }
}

/* The same, a hundred records to a write and an fdatasync: for files of thousands of lines. */
static void append_batched(sg_audit *a, unsigned first, unsigned count, size_t (*pad_of)(unsigned)) {
        cJSON *recs[100];

        for (unsigned i = first; i < first + count;) {
                size_t n = 0;
                uint64_t seq = 0;
                for (; n < SG_ELEMENTSOF(recs) && i < first + count; n++, i++)
                        recs[n] = record(i, pad_of(i));
                assert_int_equal(sg_audit_append_many(a, recs, n, &seq), 0);
                assert_int_equal(seq, i - n);
                for (size_t k = 0; k < n; k++)
                        cJSON_Delete(recs[k]);
        }
}

/* What a read visited. stop_after > 0 makes the callback stop the read with stop_value once it
 * has seen that many records. */
typedef struct {
        uint64_t seqs[MAX_SEEN];
        size_t n;
        size_t stop_after;
        int stop_value;
} seen;

static int collect(uint64_t seq, const cJSON *record, void *userdata) {
        seen *s = userdata;
        char id[32];

        /* The record handed over is the parsed line: its seq and its own id agree. */
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(record, "decisionId");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(record, "seq");
        snprintf(id, sizeof(id), "d-%" PRIu64, seq);
        assert_true(cJSON_IsString(d));
        assert_string_equal(d->valuestring, id);
        assert_true(cJSON_IsNumber(q));
        assert_int_equal((uint64_t) q->valuedouble, seq);
        assert_true(s->n < MAX_SEEN);
        s->seqs[s->n++] = seq;
        if (s->stop_after > 0 && s->n == s->stop_after)
                return s->stop_value;
        return 0;
}

static int read_ok(sg_audit *a, uint64_t from, seen *s) {
        sg_error err = {0};
        int r = sg_audit_read(a, from, collect, s, &err);
        if (r < 0)
                fail_msg("sg_audit_read from %" PRIu64 ": %s (%s)", from, strerror(-r), err.msg);
        return r;
}

/* The visit was exactly first, first+1, …, last. */
static void assert_visited_run(const seen *s, uint64_t first, uint64_t last) {
        if (s->n != last - first + 1)
                fail_msg("visited %zu records (first %" PRIu64 "), want %" PRIu64 "–%" PRIu64, s->n,
                         s->n ? s->seqs[0] : 0, first, last);
        for (size_t i = 0; i < s->n; i++)
                if (s->seqs[i] != first + i)
                        fail_msg("visit %zu was seq %" PRIu64 ", want %" PRIu64, i, s->seqs[i], first + i);
}

static bool exists(fixture *f, const char *name) { return faccessat(f->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0; }

/* ------------------------------------------------------------------------------------------ */
/* One file.                                                                                   */

static void read_visits_every_record_from_the_given_seq_in_order(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        static const struct {
                uint64_t from, first;
        } cases[] = {{0, 1}, {1, 1}, {2, 2}, {7, 7}, {19, 19}, {20, 20}};

        append_n(a, 1, 20, NULL);
        for (size_t i = 0; i < SG_ELEMENTSOF(cases); i++) {
                seen s = {0};
                assert_int_equal(read_ok(a, cases[i].from, &s), 0);
                assert_visited_run(&s, cases[i].first, 20);
        }
        sg_audit_free(a);
}

static void read_from_the_next_seq_visits_nothing(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        seen s = {0};

        assert_int_equal(read_ok(a, 1, &s), 0); /* an empty chain */
        assert_int_equal(s.n, 0);
        append_n(a, 1, 5, NULL);
        assert_int_equal(read_ok(a, 6, &s), 0);
        assert_int_equal(read_ok(a, SG_AUDIT_SEQ_MAX, &s), 0);
        assert_int_equal(s.n, 0);
        sg_audit_free(a);
}

static void read_ignores_lines_added_after_the_last_append(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        static const char extra[] = "{\"seq\":6,\"decisionId\":\"d-6\",\"prev\":\"x\"}\n";
        seen s = {0};

        append_n(a, 1, 5, NULL);
        int fd = openat(f->dirfd, NAME, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(sg_write_all(fd, extra, strlen(extra)), 0);
        close(fd);
        assert_int_equal(read_ok(a, 1, &s), 0);
        assert_visited_run(&s, 1, 5);
        sg_audit_free(a);
}

/* Mostly short lines, and now and then one longer than the probe window and the read chunk, so
 * the binary search meets lines that cross every boundary it reads to. */
static size_t mixed_pad(unsigned n) {
        if (n % 97 == 0)
                return 150u * 1024u;
        return (n * 7919u) % 3000u;
}

static void read_finds_a_seq_deep_in_a_large_file(void **state) {
        fixture *f = *state;
        const unsigned count = 3000;
        sg_audit *a = open_ok(f, 0, 0);
        struct stat st;

        append_batched(a, 1, count, mixed_pad);
        assert_int_equal(fstatat(f->dirfd, NAME, &st, 0), 0);
        assert_true(st.st_size > 8 * 1024 * 1024); /* many probes deep */
        for (uint64_t from = 1; from <= count; from += from < 10 || from > count - 10 ? 1 : 37) {
                seen s = {.stop_after = 1, .stop_value = 1};
                assert_int_equal(read_ok(a, from, &s), 1);
                if (s.n != 1 || s.seqs[0] != from)
                        fail_msg("a read from %" PRIu64 " began at %" PRIu64, from, s.n ? s.seqs[0] : 0);
        }
        /* Around the long lines too. */
        for (uint64_t from = 96; from <= 99; from++) {
                seen s = {0};
                assert_int_equal(read_ok(a, from, &s), 0);
                assert_visited_run(&s, from, count);
        }
        sg_audit_free(a);
}

static void read_returns_the_callbacks_stop_value_or_error(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, 0, 0);
        seen stop = {.stop_after = 3, .stop_value = 5}, fail = {.stop_after = 2, .stop_value = -ECANCELED};
        sg_error err = {0};

        append_n(a, 1, 10, NULL);
        assert_int_equal(read_ok(a, 4, &stop), 5);
        assert_visited_run(&stop, 4, 6);
        assert_int_equal(sg_audit_read(a, 4, collect, &fail, &err), -ECANCELED);
        assert_visited_run(&fail, 4, 5);
        assert_int_equal(sg_audit_read(a, 1, NULL, NULL, &err), -EINVAL);
        sg_audit_free(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Rotated files.                                                                              */

static void read_continues_across_rotated_files(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 5);

        append_n(a, 1, 14, NULL); /* .4: 1–3, .3: 4–6, .2: 7–9, .1: 10–12, NAME: 13–14 */
        assert_true(exists(f, NAME ".4"));
        for (uint64_t from = 1; from <= 14; from++) {
                seen s = {0};
                assert_int_equal(read_ok(a, from, &s), 0);
                assert_visited_run(&s, from, 14);
        }
        sg_audit_free(a);
}

static void read_starts_at_the_oldest_kept_record_when_from_seq_was_rotated_away(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 2);
        seen s = {0};

        append_n(a, 1, 20, NULL); /* .2: 13–15, .1: 16–18, NAME: 19–20 */
        assert_false(exists(f, NAME ".3"));
        assert_int_equal(read_ok(a, 1, &s), 0);
        assert_visited_run(&s, 13, 20);
        sg_audit_free(a);
}

static void read_with_keep_zero_reads_the_current_file(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 0);
        seen s = {0};

        append_n(a, 1, 10, NULL); /* NAME: 10 */
        assert_int_equal(read_ok(a, 2, &s), 0);
        assert_visited_run(&s, 10, 10);
        sg_audit_free(a);
}

static void read_steps_over_a_removed_rotated_file(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 5);
        seen s = {0};

        append_n(a, 1, 14, NULL);
        assert_int_equal(unlinkat(f->dirfd, NAME ".2", 0), 0); /* 7–9 */
        assert_int_equal(read_ok(a, 2, &s), 0);
        assert_int_equal(s.n, 10);
        static const uint64_t want[] = {2, 3, 4, 5, 6, 10, 11, 12, 13, 14};
        for (size_t i = 0; i < SG_ELEMENTSOF(want); i++)
                assert_int_equal(s.seqs[i], want[i]);
        sg_audit_free(a);
}

static void read_covers_the_rotated_files_when_the_current_file_is_empty(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 3);
        seen s = {0};

        append_n(a, 1, 7, NULL); /* .2: 1–3, .1: 4–6, NAME: 7 */
        sg_audit_free(a);
        /* A crash between the rotation and the new file's first line leaves NAME empty. */
        int fd = openat(f->dirfd, NAME, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        close(fd);
        a = open_ok(f, SMALL_FILE, 3);
        assert_int_equal(sg_audit_next_seq(a), 7);
        assert_int_equal(read_ok(a, 2, &s), 0);
        assert_visited_run(&s, 2, 6);
        sg_audit_free(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Damage.                                                                                     */

static void read_reports_a_damaged_line_with_its_file_and_offset(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 3);
        sg_error err = {0};
        seen s = {0};
        char line1[1024];

        append_n(a, 1, 8, NULL); /* .2: 1–3, .1: 4–6, NAME: 7–8 */
        /* The second line of NAME.1 (seq 5) starts right after the first one. */
        int fd = openat(f->dirfd, NAME ".1", O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t k = pread(fd, line1, sizeof(line1), 0);
        assert_true(k > 0);
        char *nl = memchr(line1, '\n', (size_t) k);
        assert_non_null(nl);
        off_t second = (off_t) (nl - line1) + 1;
        assert_int_equal(pwrite(fd, "X", 1, second), 1);
        close(fd);

        assert_int_equal(sg_audit_read(a, 2, collect, &s, &err), -EBADMSG);
        assert_visited_run(&s, 2, 4); /* everything before the damage */
        char want[64];
        snprintf(want, sizeof(want), NAME ".1: byte %lld: ", (long long) second);
        if (strncmp(err.msg, want, strlen(want)) != 0)
                fail_msg("error \"%s\", want it to start with \"%s\"", err.msg, want);
        sg_audit_free(a);
}

static void read_reports_rotated_files_out_of_order(void **state) {
        fixture *f = *state;
        sg_audit *a = open_ok(f, SMALL_FILE, 5);
        sg_error err = {0};
        seen s = {0};

        append_n(a, 1, 14, NULL); /* .4: 1–3, .3: 4–6, .2: 7–9, .1: 10–12, NAME: 13–14 */
        assert_int_equal(renameat(f->dirfd, NAME ".3", f->dirfd, "swap"), 0);
        assert_int_equal(renameat(f->dirfd, NAME ".2", f->dirfd, NAME ".3"), 0);
        assert_int_equal(renameat(f->dirfd, "swap", f->dirfd, NAME ".2"), 0);
        assert_int_equal(sg_audit_read(a, 1, collect, &s, &err), -EBADMSG);
        assert_non_null(strstr(err.msg, "seq 4 does not follow seq 9"));
        sg_audit_free(a);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_tmp, teardown_tmp)
                T(read_visits_every_record_from_the_given_seq_in_order),
                T(read_from_the_next_seq_visits_nothing),
                T(read_ignores_lines_added_after_the_last_append),
                T(read_finds_a_seq_deep_in_a_large_file),
                T(read_returns_the_callbacks_stop_value_or_error),
                T(read_continues_across_rotated_files),
                T(read_starts_at_the_oldest_kept_record_when_from_seq_was_rotated_away),
                T(read_with_keep_zero_reads_the_current_file),
                T(read_steps_over_a_removed_rotated_file),
                T(read_covers_the_rotated_files_when_the_current_file_is_empty),
                T(read_reports_a_damaged_line_with_its_file_and_offset),
                T(read_reports_rotated_files_out_of_order),
#undef T
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
