/* Unit tests for audit/sg_journal.c: the journald fields of a decision record (DESIGN §9), and one
 * round trip through the real journald when its socket exists.
 *
 * sg_journal_fields() is pure, so most tests compare its output, field by field and in order, with
 * the list DESIGN §9 and sg_journal.h give. The round trip sends an event with a field no one else
 * uses and reads it back with sd-journal; with no journald socket it is skipped, saying why (start
 * one with: mkdir -p /run/systemd/journal && /lib/systemd/systemd-journald &).
 *
 * Run one test alone with: unit-audit-test-journal TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <systemd/sd-journal.h>

#include "sg_common.h"
#include "sg_journal.h"

#define SHA "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
#define ID "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

/* DESIGN §9 records, as sg_decision_record() and sg_audit_append() make them. */
static const char promoted_json[] =
        "{\"seq\":42,\"time\":\"2025-01-02T03:04:05Z\",\"decisionId\":\"" ID "\",\"kind\":\"function\","
        "\"function\":\"thumbnail\",\"source\":\"inbox\",\"peer\":{\"uid\":1001,\"gid\":1001,\"pid\":4242},"
        "\"package\":{\"name\":\"thumbnail.zip\",\"size\":1234,\"sha384\":\"" SHA "\"},"
        "\"signature\":{\"profileName\":\"prod_signer\",\"profileVersion\":\"abcdefghij\","
        "\"jobId\":\"11111111-2222-4333-8444-555555555555\",\"signedAt\":\"2025-01-01T00:00:00Z\","
        "\"expiresAt\":\"2036-04-01T00:00:00Z\"},\"codeSigningConfig\":\"csc-0123456789abcdef0\",\"policy\":\"Enforce\","
        "\"outcome\":\"promoted\",\"reasons\":[],\"message\":\"thumbnail: promoted, signed by prod_signer/abcdefghij.\","
        "\"release\":\"20250102T030405Z-0a1b2c3d4e5f\",\"prev\":\"" SHA "\"}";

static const char warned_json[] =
        "{\"time\":\"2025-01-02T03:04:05Z\",\"decisionId\":\"" ID "\",\"kind\":\"layer\","
        "\"function\":\"deps\",\"source\":\"api\",\"peer\":{\"uid\":0,\"gid\":0,\"pid\":1},"
        "\"package\":{\"name\":\"deps.layer.zip\",\"size\":1,\"sha384\":\"" SHA "\"},"
        "\"signature\":{\"profileName\":\"other\",\"profileVersion\":\"zzzzzzzzzz\","
        "\"jobId\":\"11111111-2222-4333-8444-555555555555\",\"signedAt\":\"2020-01-01T00:00:00Z\","
        "\"expiresAt\":\"2021-01-01T00:00:00Z\"},\"codeSigningConfig\":\"csc-0123456789abcdef0\",\"policy\":\"Warn\","
        "\"outcome\":\"promoted-with-warnings\",\"reasons\":[\"UNTRUSTED_PUBLISHER\",\"EXPIRED\"],"
        "\"message\":\"deps: promoted with warnings.\",\"release\":\"20250102T030405Z-0a1b2c3d4e5f\"}";

static const char rejected_json[] =
        "{\"time\":\"2025-01-02T03:04:05Z\",\"decisionId\":\"" ID "\",\"kind\":\"function\","
        "\"function\":\"thumbnail\",\"source\":\"inbox\",\"peer\":null,"
        "\"package\":{\"name\":\"thumbnail.zip\",\"size\":9,\"sha384\":\"" SHA "\"},"
        "\"signature\":null,\"codeSigningConfig\":null,\"policy\":null,"
        "\"outcome\":\"rejected\",\"reasons\":[\"UNSIGNED\"],\"message\":\"thumbnail: rejected, the package is not signed.\","
        "\"release\":null}";

static cJSON *parse(const char *s) {
        cJSON *j = cJSON_Parse(s);
        if (!j)
                fail_msg("test record is not JSON near: %.40s", cJSON_GetErrorPtr());
        return j;
}

/* The fields must be exactly want (NULL-terminated), in that order; on a mismatch both lists print. */
static void assert_fields(const cJSON *rec, const char *const *want) {
        struct iovec iov[SG_JOURNAL_DECISION_FIELDS_MAX];
        char *buf = NULL;
        size_t n = 0, nw = 0;

        int r = sg_journal_fields(rec, iov, SG_ELEMENTSOF(iov), &n, &buf);
        if (r < 0)
                fail_msg("sg_journal_fields: %s", strerror(-r));
        while (want[nw])
                nw++;
        bool same = n == nw;
        for (size_t i = 0; same && i < n; i++)
                same = iov[i].iov_len == strlen(want[i]) && memcmp(iov[i].iov_base, want[i], iov[i].iov_len) == 0;
        if (!same) {
                print_error("fields (%zu):\n", n);
                for (size_t i = 0; i < n; i++)
                        print_error("  %.*s\n", (int) iov[i].iov_len, (const char *) iov[i].iov_base);
                print_error("want (%zu):\n", nw);
                for (size_t i = 0; i < nw; i++)
                        print_error("  %s\n", want[i]);
                free(buf);
                fail();
        }
        free(buf);
}

static void promoted_record_gives_every_field_at_priority_6(void **state) {
        (void) state;
        cJSON *rec = parse(promoted_json);
        const char *const want[] = {
                "MESSAGE=thumbnail: promoted, signed by prod_signer/abcdefghij.",
                "PRIORITY=6",
                "MESSAGE_ID=" SG_MESSAGE_PROMOTED,
                "SYSLOG_IDENTIFIER=signgated",
                "SIGNGATE_DECISION_ID=" ID,
                "SIGNGATE_FUNCTION=thumbnail",
                "SIGNGATE_KIND=function",
                "SIGNGATE_OUTCOME=promoted",
                "SIGNGATE_REASONS=",
                "SIGNGATE_SHA384=" SHA,
                "SIGNGATE_PROFILE=prod_signer",
                "SIGNGATE_PROFILE_VERSION=abcdefghij",
                "SIGNGATE_JOB_ID=11111111-2222-4333-8444-555555555555",
                "SIGNGATE_CSC=csc-0123456789abcdef0",
                "SIGNGATE_SOURCE=inbox",
                "SIGNGATE_PEER_UID=1001",
                "SIGNGATE_RELEASE=20250102T030405Z-0a1b2c3d4e5f",
                "SIGNGATE_SEQ=42",
                NULL,
        };
        assert_fields(rec, want);
        cJSON_Delete(rec);
}

static void warned_record_gives_priority_4_and_comma_separated_reasons(void **state) {
        (void) state;
        cJSON *rec = parse(warned_json);
        const char *const want[] = {
                "MESSAGE=deps: promoted with warnings.",
                "PRIORITY=4",
                "MESSAGE_ID=" SG_MESSAGE_WARNED,
                "SYSLOG_IDENTIFIER=signgated",
                "SIGNGATE_DECISION_ID=" ID,
                "SIGNGATE_FUNCTION=deps",
                "SIGNGATE_KIND=layer",
                "SIGNGATE_OUTCOME=promoted-with-warnings",
                "SIGNGATE_REASONS=UNTRUSTED_PUBLISHER,EXPIRED",
                "SIGNGATE_SHA384=" SHA,
                "SIGNGATE_PROFILE=other",
                "SIGNGATE_PROFILE_VERSION=zzzzzzzzzz",
                "SIGNGATE_JOB_ID=11111111-2222-4333-8444-555555555555",
                "SIGNGATE_CSC=csc-0123456789abcdef0",
                "SIGNGATE_SOURCE=api",
                "SIGNGATE_PEER_UID=0",
                "SIGNGATE_RELEASE=20250102T030405Z-0a1b2c3d4e5f",
                NULL,
        };
        assert_fields(rec, want);
        cJSON_Delete(rec);
}

static void rejected_record_omits_signature_csc_peer_and_release(void **state) {
        (void) state;
        cJSON *rec = parse(rejected_json);
        const char *const want[] = {
                "MESSAGE=thumbnail: rejected, the package is not signed.",
                "PRIORITY=3",
                "MESSAGE_ID=" SG_MESSAGE_REJECTED,
                "SYSLOG_IDENTIFIER=signgated",
                "SIGNGATE_DECISION_ID=" ID,
                "SIGNGATE_FUNCTION=thumbnail",
                "SIGNGATE_KIND=function",
                "SIGNGATE_OUTCOME=rejected",
                "SIGNGATE_REASONS=UNSIGNED",
                "SIGNGATE_SHA384=" SHA,
                "SIGNGATE_SOURCE=inbox",
                NULL,
        };
        assert_fields(rec, want);

        /* Absent keys count as null, and "kind" and "seq" appear only when present. */
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "peer");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "signature");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "release");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "codeSigningConfig");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "kind");
        cJSON_DeleteItemFromObjectCaseSensitive(rec, "reasons");
        const char *const fewer[] = {
                "MESSAGE=thumbnail: rejected, the package is not signed.",
                "PRIORITY=3",
                "MESSAGE_ID=" SG_MESSAGE_REJECTED,
                "SYSLOG_IDENTIFIER=signgated",
                "SIGNGATE_DECISION_ID=" ID,
                "SIGNGATE_FUNCTION=thumbnail",
                "SIGNGATE_OUTCOME=rejected",
                "SIGNGATE_REASONS=",
                "SIGNGATE_SHA384=" SHA,
                "SIGNGATE_SOURCE=inbox",
                NULL,
        };
        assert_fields(rec, fewer);
        cJSON_Delete(rec);
}

static void drop_that_is_no_package_omits_function_and_digest(void **state) {
        (void) state;
        /* A FIFO dropped as "bad name": no function, no digest. */
        cJSON *rec = parse(rejected_json);
        cJSON_ReplaceItemInObjectCaseSensitive(rec, "function", cJSON_CreateNull());
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "package"), "sha384",
                                               cJSON_CreateNull());
        cJSON_ReplaceItemInObjectCaseSensitive(rec, "reasons", parse("[\"MALFORMED\"]"));
        const char *const want[] = {
                "MESSAGE=thumbnail: rejected, the package is not signed.",
                "PRIORITY=3",
                "MESSAGE_ID=" SG_MESSAGE_REJECTED,
                "SYSLOG_IDENTIFIER=signgated",
                "SIGNGATE_DECISION_ID=" ID,
                "SIGNGATE_KIND=function",
                "SIGNGATE_OUTCOME=rejected",
                "SIGNGATE_REASONS=MALFORMED",
                "SIGNGATE_SOURCE=inbox",
                NULL,
        };
        assert_fields(rec, want);
        cJSON_ReplaceItemInObjectCaseSensitive(rec, "package", cJSON_CreateNull());
        assert_fields(rec, want);
        cJSON_Delete(rec);
}

static void priorities_and_message_ids_follow_outcome(void **state) {
        (void) state;
        static const struct {
                const char *outcome, *priority, *message_id;
        } rows[] = {
                {"promoted", "PRIORITY=6", "MESSAGE_ID=" SG_MESSAGE_PROMOTED},
                {"promoted-with-warnings", "PRIORITY=4", "MESSAGE_ID=" SG_MESSAGE_WARNED},
                {"rejected", "PRIORITY=3", "MESSAGE_ID=" SG_MESSAGE_REJECTED},
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(rows); i++) {
                cJSON *rec = parse(rejected_json);
                struct iovec iov[SG_JOURNAL_DECISION_FIELDS_MAX];
                char *buf = NULL;
                size_t n = 0;

                cJSON_ReplaceItemInObjectCaseSensitive(rec, "outcome", cJSON_CreateString(rows[i].outcome));
                assert_int_equal(sg_journal_fields(rec, iov, SG_ELEMENTSOF(iov), &n, &buf), 0);
                assert_true(n > 2);
                assert_string_equal((const char *) iov[1].iov_base, rows[i].priority);
                assert_string_equal((const char *) iov[2].iov_base, rows[i].message_id);
                /* syslog's numbers, which journalctl -p uses. */
                assert_int_equal(iov[1].iov_len, strlen(rows[i].priority));
                free(buf);
                cJSON_Delete(rec);
        }
        assert_int_equal(LOG_INFO, 6);
        assert_int_equal(LOG_WARNING, 4);
        assert_int_equal(LOG_ERR, 3);
}

static void too_few_iovecs_is_e2big_and_leaves_outputs(void **state) {
        (void) state;
        cJSON *rec = parse(promoted_json);
        struct iovec iov[SG_JOURNAL_DECISION_FIELDS_MAX];
        char *buf = (char *) "untouched";
        size_t n = 77;

        assert_int_equal(sg_journal_fields(rec, iov, SG_JOURNAL_DECISION_FIELDS_MAX - 1, &n, &buf), -E2BIG);
        assert_int_equal(n, 77);
        assert_string_equal(buf, "untouched");
        assert_int_equal(sg_journal_fields(rec, iov, SG_JOURNAL_DECISION_FIELDS_MAX, &n, &buf), 0);
        assert_int_equal(n, SG_JOURNAL_DECISION_FIELDS_MAX);
        free(buf);
        cJSON_Delete(rec);
}

static void malformed_records_are_einval(void **state) {
        (void) state;
        static const struct {
                const char *key, *value_json; /* NULL value: delete the key */
        } rows[] = {
                {"outcome", "\"accepted\""},
                {"outcome", NULL},
                {"message", NULL},
                {"message", "7"},
                {"decisionId", NULL},
                {"function", "3"},
                {"source", NULL},
                {"package", "[]"},
                {"package", "{\"sha384\":1}"},
                {"reasons", "[\"UNSIGNED\",3]"},
                {"reasons", "\"UNSIGNED\""},
                {"peer", "{\"uid\":-1}"},
                {"peer", "{\"uid\":1.5}"},
                {"peer", "{\"gid\":1}"},
                {"signature", "{\"profileName\":\"p\"}"},
                {"signature", "\"yes\""},
                {"codeSigningConfig", "5"},
                {"release", "false"},
                {"seq", "0"},
                {"seq", "\"1\""},
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(rows); i++) {
                cJSON *rec = parse(rejected_json);
                struct iovec iov[SG_JOURNAL_DECISION_FIELDS_MAX];
                char *buf = NULL;
                size_t n = 0;

                cJSON_DeleteItemFromObjectCaseSensitive(rec, rows[i].key);
                if (rows[i].value_json)
                        cJSON_AddItemToObject(rec, rows[i].key, parse(rows[i].value_json));
                int r = sg_journal_fields(rec, iov, SG_ELEMENTSOF(iov), &n, &buf);
                if (r != -EINVAL)
                        fail_msg("%s=%s: got %d, want -EINVAL", rows[i].key, rows[i].value_json ? rows[i].value_json : "(absent)", r);
                cJSON_Delete(rec);
        }
        struct iovec iov[1];
        char *buf = NULL;
        size_t n = 0;
        cJSON *arr = parse("[]");
        assert_int_equal(sg_journal_fields(arr, iov, 1, &n, &buf), -EINVAL);
        cJSON_Delete(arr);
}

static void send_event_refuses_bad_arguments_before_sending(void **state) {
        (void) state;
        const char *const no_equals[] = {"SIGNGATE_X", NULL};
        const char *const empty_key[] = {"=x", NULL};
        const char *many[SG_JOURNAL_EXTRA_MAX + 2];

        for (size_t i = 0; i < SG_JOURNAL_EXTRA_MAX + 1; i++)
                many[i] = "SIGNGATE_X=1";
        many[SG_JOURNAL_EXTRA_MAX + 1] = NULL;
        assert_int_equal(sg_journal_send_event(8, NULL, NULL, "x"), -EINVAL);
        assert_int_equal(sg_journal_send_event(-1, NULL, NULL, "x"), -EINVAL);
        assert_int_equal(sg_journal_send_event(6, "not-an-id", NULL, "x"), -EINVAL);
        assert_int_equal(sg_journal_send_event(6, "9C444B10F5004E57AFB59EE4FB12D679", NULL, "x"), -EINVAL);
        assert_int_equal(sg_journal_send_event(6, NULL, no_equals, "x"), -EINVAL);
        assert_int_equal(sg_journal_send_event(6, NULL, empty_key, "x"), -EINVAL);
        assert_int_equal(sg_journal_send_event(6, NULL, many, "x"), -E2BIG);
}

/* Reads the value of field (without "FIELD=") of the current entry into out. */
static void entry_field(sd_journal *j, const char *field, char *out, size_t len) {
        const void *d = NULL;
        size_t l = 0;
        int r = sd_journal_get_data(j, field, &d, &l);
        if (r < 0)
                fail_msg("entry has no %s: %s", field, strerror(-r));
        size_t skip = strlen(field) + 1;
        assert_true(l >= skip);
        snprintf(out, len, "%.*s", (int) (l - skip), (const char *) d + skip);
}

static void event_reaches_real_journald(void **state) {
        (void) state;
        char token[37], match[64], v[256];
        sd_journal *j = NULL;

        if (!sg_journal_available()) {
                print_message("SKIP: no journald socket at /run/systemd/journal/socket (start one with: "
                              "mkdir -p /run/systemd/journal && /lib/systemd/systemd-journald &)\n");
                skip();
        }
        assert_int_equal(sg_uuid_new(token), 0);
        snprintf(match, sizeof(match), "SIGNGATE_TEST_TOKEN=%s", token);
        const char *const extra[] = {match, "SIGNGATE_FUNCTION=journal_test", NULL};
        /* A MESSAGE_ID of its own (the token without dashes), so that a gate test looking for the
         * daemon's real start-up message never finds this one. */
        char mid[33];
        size_t k = 0;
        for (const char *c = token; *c; c++)
                if (*c != '-')
                        mid[k++] = *c;
        mid[k] = '\0';
        assert_int_equal(k, 32);

        int r = sg_journal_send_event(LOG_NOTICE, mid, extra, "signgate unit test %s", token);
        if (r == -ECONNREFUSED) {
                print_message("SKIP: the journald socket exists but nobody listens on it\n");
                skip();
        }
        assert_int_equal(r, 0);

        assert_int_equal(sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY), 0);
        assert_int_equal(sd_journal_add_match(j, match, 0), 0);
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        bool found = false;
        for (;;) {
                r = sd_journal_next(j);
                assert_true(r >= 0);
                if (r > 0) {
                        found = true;
                        break;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec >= 5)
                        break;
                /* journald writes asynchronously: wait for the journal files to change. */
                assert_true(sd_journal_wait(j, 500 * 1000) >= 0);
        }
        if (!found) {
                sd_journal_close(j);
                fail_msg("no journal entry with %s after 5 s", match);
        }
        char want[128];
        snprintf(want, sizeof(want), "signgate unit test %s", token);
        entry_field(j, "MESSAGE", v, sizeof(v));
        assert_string_equal(v, want);
        entry_field(j, "PRIORITY", v, sizeof(v));
        assert_string_equal(v, "5");
        entry_field(j, "MESSAGE_ID", v, sizeof(v));
        assert_string_equal(v, mid);
        entry_field(j, "SYSLOG_IDENTIFIER", v, sizeof(v));
        assert_string_equal(v, "signgated");
        entry_field(j, "SIGNGATE_FUNCTION", v, sizeof(v));
        assert_string_equal(v, "journal_test");
        sd_journal_close(j);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(promoted_record_gives_every_field_at_priority_6),
                cmocka_unit_test(warned_record_gives_priority_4_and_comma_separated_reasons),
                cmocka_unit_test(rejected_record_omits_signature_csc_peer_and_release),
                cmocka_unit_test(drop_that_is_no_package_omits_function_and_digest),
                cmocka_unit_test(priorities_and_message_ids_follow_outcome),
                cmocka_unit_test(too_few_iovecs_is_e2big_and_leaves_outputs),
                cmocka_unit_test(malformed_records_are_einval),
                cmocka_unit_test(send_event_refuses_bad_arguments_before_sending),
                cmocka_unit_test(event_reaches_real_journald),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
