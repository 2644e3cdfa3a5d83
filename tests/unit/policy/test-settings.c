/* Unit tests for policy/sg_settings.c: signgated.json (DESIGN §7) over built-in defaults.
 *
 * Every error must name the key it is about, as "KEY: problem" ("limits.entries: must be an
 * integer from 1 to 1000000"), so `signgated --check-config` can point at it; a failed parse
 * leaves the caller's settings untouched.
 *
 * Run one test alone with: unit-policy-test-settings TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_common.h"
#include "sg_package.h"
#include "sg_settings.h"
#include "sg_test.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

static void parse_ok(const char *text, sg_settings *s) {
        sg_error err = {0};
        int r = sg_settings_parse(text, strlen(text), s, &err);
        if (r != 0)
                fail_msg("'%s' failed with %d: %s", text, r, err.msg);
}

static void assert_defaults(const sg_settings *s) {
        assert_false(s->unbound_allow);
        assert_int_equal(s->limits.package_bytes, SG_LIMIT_PACKAGE_BYTES);
        assert_int_equal(s->limits.package_bytes, 256ull * 1024 * 1024);
        assert_int_equal(s->limits.inflated_bytes, 262144000ull);
        assert_int_equal(s->limits.entries, 100000);
        assert_int_equal(s->limits.name_bytes, 1024);
        assert_int_equal(s->limits.depth, 64);
        assert_int_equal(s->retain_releases, 5);
        for (int r = 0; r < SG_ROLE_MAX_; r++) {
                assert_int_equal(s->roles[r].n_users, 0);
                assert_int_equal(s->roles[r].n_groups, 0);
        }
        assert_string_equal(s->socket_path, "/run/signgate/api.sock");
        assert_string_equal(s->socket_group, "");
        assert_int_equal(s->socket_mode, 0660);
        assert_true(s->journal);
}

static void empty_object_gives_defaults(void **state) {
        sg_settings s;
        (void) state;
        memset(&s, 0xab, sizeof(s));
        parse_ok("{}", &s);
        assert_defaults(&s);
}

static void settings_default_matches_design(void **state) {
        sg_settings s;
        (void) state;
        memset(&s, 0xab, sizeof(s));
        sg_settings_default(&s);
        assert_defaults(&s);
}

static void parses_every_key(void **state) {
        static const char text[] =
                "{\"unboundFunctions\":\"allow\","
                " \"limits\":{\"packageBytes\":1048576,\"inflatedBytes\":2097152,\"entries\":500,\"nameBytes\":200,"
                "\"depth\":8},"
                " \"retainReleases\":3,"
                " \"roles\":{\"admin\":{\"users\":[\"root\",\"alice\"],\"groups\":[\"wheel\"]},"
                "            \"deployer\":{\"users\":[\"ci\"],\"groups\":[\"deploy\",\"release\"]},"
                "            \"reader\":{\"groups\":[\"audit\"]}},"
                " \"socket\":{\"path\":\"/run/gate/api.sock\",\"group\":\"signgate\",\"mode\":\"0600\"},"
                " \"journal\":false}";
        sg_settings s;
        (void) state;
        parse_ok(text, &s);
        assert_true(s.unbound_allow);
        assert_int_equal(s.limits.package_bytes, 1048576);
        assert_int_equal(s.limits.inflated_bytes, 2097152);
        assert_int_equal(s.limits.entries, 500);
        assert_int_equal(s.limits.name_bytes, 200);
        assert_int_equal(s.limits.depth, 8);
        assert_int_equal(s.retain_releases, 3);

        const sg_role_members *admin = &s.roles[SG_ROLE_ADMIN], *dep = &s.roles[SG_ROLE_DEPLOYER],
                              *reader = &s.roles[SG_ROLE_READER];
        assert_int_equal(admin->n_users, 2);
        assert_string_equal(admin->users[0], "root");
        assert_string_equal(admin->users[1], "alice");
        assert_int_equal(admin->n_groups, 1);
        assert_string_equal(admin->groups[0], "wheel");
        assert_int_equal(dep->n_users, 1);
        assert_string_equal(dep->users[0], "ci");
        assert_int_equal(dep->n_groups, 2);
        assert_string_equal(dep->groups[1], "release");
        assert_int_equal(reader->n_users, 0);
        assert_int_equal(reader->n_groups, 1);
        assert_string_equal(reader->groups[0], "audit");

        assert_string_equal(s.socket_path, "/run/gate/api.sock");
        assert_string_equal(s.socket_group, "signgate");
        assert_int_equal(s.socket_mode, 0600);
        assert_false(s.journal);
}

static void keys_left_out_keep_their_defaults(void **state) {
        sg_settings s;
        (void) state;
        parse_ok("{\"limits\":{\"depth\":3},\"socket\":{\"group\":\"gate\"}}", &s);
        assert_int_equal(s.limits.depth, 3);
        assert_int_equal(s.limits.entries, 100000);
        assert_int_equal(s.limits.package_bytes, SG_LIMIT_PACKAGE_BYTES);
        assert_string_equal(s.socket_group, "gate");
        assert_string_equal(s.socket_path, SG_DEFAULT_SOCKET);
        assert_int_equal(s.socket_mode, 0660);
        assert_false(s.unbound_allow);
        assert_true(s.journal);
        assert_int_equal(s.retain_releases, SG_DEFAULT_RETAIN_RELEASES);
}

static void accepts_limits_at_their_bounds(void **state) {
        static const struct {
                const char *text;
                size_t offset; /* of the uint32_t or uint64_t field in sg_limits */
                bool wide;
                uint64_t want;
        } ok[] = {
                {"{\"limits\":{\"entries\":1}}", offsetof(sg_limits, entries), false, 1},
                {"{\"limits\":{\"entries\":1000000}}", offsetof(sg_limits, entries), false, 1000000},
                {"{\"limits\":{\"nameBytes\":4096}}", offsetof(sg_limits, name_bytes), false, 4096},
                {"{\"limits\":{\"depth\":1}}", offsetof(sg_limits, depth), false, 1},
                {"{\"limits\":{\"depth\":1024}}", offsetof(sg_limits, depth), false, 1024},
                {"{\"limits\":{\"packageBytes\":22}}", offsetof(sg_limits, package_bytes), true, 22},
                {"{\"limits\":{\"packageBytes\":1099511627776}}", offsetof(sg_limits, package_bytes), true, 1ull << 40},
                {"{\"limits\":{\"inflatedBytes\":0}}", offsetof(sg_limits, inflated_bytes), true, 0},
        };
        (void) state;
        for (size_t i = 0; i < N_ROWS(ok); i++) {
                sg_settings s;
                parse_ok(ok[i].text, &s);
                const char *base = (const char *) &s.limits + ok[i].offset;
                uint64_t got;
                if (ok[i].wide)
                        memcpy(&got, base, sizeof(got));
                else {
                        uint32_t v;
                        memcpy(&v, base, sizeof(v));
                        got = v;
                }
                if (got != ok[i].want)
                        fail_msg("'%s' gave %llu, want %llu", ok[i].text, (unsigned long long) got,
                                 (unsigned long long) ok[i].want);
        }
}

static void accepts_socket_modes_that_keep_owner_rw(void **state) {
        static const struct {
                const char *mode;
                unsigned want;
        } ok[] = {{"0600", 0600}, {"0660", 0660}, {"0666", 0666}, {"660", 0660}, {"0770", 0770}};
        (void) state;
        for (size_t i = 0; i < N_ROWS(ok); i++) {
                char text[128];
                sg_settings s;
                snprintf(text, sizeof(text), "{\"socket\":{\"mode\":\"%s\"}}", ok[i].mode);
                parse_ok(text, &s);
                if (s.socket_mode != ok[i].want)
                        fail_msg("mode \"%s\" gave %#o, want %#o", ok[i].mode, s.socket_mode, ok[i].want);
        }
}

/* ------------------------------------------------------------------------------------------ */
/* Errors: one table row per bad document; the message must start with "KEY:".                */

struct error_row {
        const char *name;
        const char *text;
        const char *key;
};

static const struct error_row error_rows[] = {
        {"rejects_unknown_top_level_key_naming_it", "{\"unboundFunction\":\"allow\"}", "unboundFunction"},
        {"rejects_unbound_functions_of_wrong_type_naming_it", "{\"unboundFunctions\":true}", "unboundFunctions"},
        {"rejects_unbound_functions_other_than_reject_or_allow", "{\"unboundFunctions\":\"warn\"}", "unboundFunctions"},
        {"rejects_limits_of_wrong_type_naming_it", "{\"limits\":[1]}", "limits"},
        {"rejects_unknown_limit_naming_it", "{\"limits\":{\"files\":10}}", "limits.files"},
        {"rejects_zero_entries_limit_naming_it", "{\"limits\":{\"entries\":0}}", "limits.entries"},
        {"rejects_entries_limit_over_range_naming_it", "{\"limits\":{\"entries\":1000001}}", "limits.entries"},
        {"rejects_fractional_depth_naming_it", "{\"limits\":{\"depth\":1.5}}", "limits.depth"},
        {"rejects_depth_over_range_naming_it", "{\"limits\":{\"depth\":1025}}", "limits.depth"},
        {"rejects_name_bytes_over_range_naming_it", "{\"limits\":{\"nameBytes\":4097}}", "limits.nameBytes"},
        {"rejects_package_bytes_as_string_naming_it", "{\"limits\":{\"packageBytes\":\"1048576\"}}", "limits.packageBytes"},
        {"rejects_package_bytes_below_smallest_zip_naming_it", "{\"limits\":{\"packageBytes\":21}}", "limits.packageBytes"},
        {"rejects_negative_inflated_bytes_naming_it", "{\"limits\":{\"inflatedBytes\":-1}}", "limits.inflatedBytes"},
        {"rejects_zero_retain_releases_naming_it", "{\"retainReleases\":0}", "retainReleases"},
        {"rejects_retain_releases_of_wrong_type_naming_it", "{\"retainReleases\":\"5\"}", "retainReleases"},
        {"rejects_journal_of_wrong_type_naming_it", "{\"journal\":\"yes\"}", "journal"},
        {"rejects_socket_of_wrong_type_naming_it", "{\"socket\":\"/run/x.sock\"}", "socket"},
        {"rejects_unknown_socket_key_naming_it", "{\"socket\":{\"owner\":\"root\"}}", "socket.owner"},
        {"rejects_relative_socket_path_naming_it", "{\"socket\":{\"path\":\"run/api.sock\"}}", "socket.path"},
        {"rejects_socket_path_too_long_for_sun_path_naming_it",
         "{\"socket\":{\"path\":\"/run/signgate/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"}}",
         "socket.path"},
        {"rejects_socket_group_of_wrong_type_naming_it", "{\"socket\":{\"group\":1000}}", "socket.group"},
        {"rejects_empty_socket_group_naming_it", "{\"socket\":{\"group\":\"\"}}", "socket.group"},
        {"rejects_socket_mode_as_number_naming_it", "{\"socket\":{\"mode\":660}}", "socket.mode"},
        {"rejects_non_octal_socket_mode_naming_it", "{\"socket\":{\"mode\":\"0689\"}}", "socket.mode"},
        {"rejects_socket_mode_without_owner_rw_naming_it", "{\"socket\":{\"mode\":\"0440\"}}", "socket.mode"},
        {"rejects_socket_mode_with_special_bits_naming_it", "{\"socket\":{\"mode\":\"04660\"}}", "socket.mode"},
        {"rejects_empty_socket_mode_naming_it", "{\"socket\":{\"mode\":\"\"}}", "socket.mode"},
        {"rejects_roles_of_wrong_type_naming_it", "{\"roles\":[\"admin\"]}", "roles"},
        {"rejects_unknown_role_naming_it", "{\"roles\":{\"operator\":{\"users\":[\"bob\"]}}}", "roles.operator"},
        {"rejects_role_of_wrong_type_naming_it", "{\"roles\":{\"admin\":[\"alice\"]}}", "roles.admin"},
        {"rejects_unknown_role_member_key_naming_it", "{\"roles\":{\"reader\":{\"uids\":[0]}}}", "roles.reader.uids"},
        {"rejects_role_users_of_wrong_type_naming_it", "{\"roles\":{\"admin\":{\"users\":\"alice\"}}}", "roles.admin.users"},
        {"rejects_role_member_that_is_not_a_name_naming_it", "{\"roles\":{\"deployer\":{\"groups\":[1000]}}}",
         "roles.deployer.groups"},
        {"rejects_empty_role_member_naming_it", "{\"roles\":{\"deployer\":{\"users\":[\"\"]}}}", "roles.deployer.users"},
};

static void error_row_fails_naming_the_key(void **state) {
        const struct error_row *row = *state;
        sg_settings s, before;
        sg_error err = {0};

        memset(&s, 0x5c, sizeof(s));
        memcpy(&before, &s, sizeof(s));
        int r = sg_settings_parse(row->text, strlen(row->text), &s, &err);
        if (r != -EINVAL)
                fail_msg("'%s' gave %d, want -EINVAL", row->text, r);
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "%s:", row->key);
        if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
                fail_msg("error '%s' for '%s' does not start with '%s'", err.msg, row->text, prefix);
        /* The caller's settings are written only on success. */
        assert_memory_equal(&s, &before, sizeof(s));
}

static void rejects_role_with_more_than_64_members(void **state) {
        char text[2048];
        size_t n = 0;
        sg_settings s;
        sg_error err = {0};
        (void) state;

        n += (size_t) snprintf(text + n, sizeof(text) - n, "{\"roles\":{\"reader\":{\"users\":[");
        for (int i = 0; i <= SG_ROLE_MAX_MEMBERS; i++)
                n += (size_t) snprintf(text + n, sizeof(text) - n, "%s\"u%d\"", i ? "," : "", i);
        n += (size_t) snprintf(text + n, sizeof(text) - n, "]}}}");
        assert_true(n < sizeof(text));
        assert_int_equal(sg_settings_parse(text, n, &s, &err), -EINVAL);
        if (strncmp(err.msg, "roles.reader.users:", strlen("roles.reader.users:")) != 0)
                fail_msg("error '%s' does not start with 'roles.reader.users:'", err.msg);
}

static void rejects_invalid_json_and_non_object(void **state) {
        static const char *const bad[] = {"", "{", "{\"journal\":true", "[]", "\"journal\"", "null"};
        (void) state;
        for (size_t i = 0; i < N_ROWS(bad); i++) {
                sg_settings s;
                sg_error err = {0};
                int r = sg_settings_parse(bad[i], strlen(bad[i]), &s, &err);
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d, want -EINVAL", bad[i], r);
                if (!err.msg[0])
                        fail_msg("'%s' was rejected without a message", bad[i]);
        }
}

static void rejects_trailing_bytes_after_settings_object(void **state) {
        /* A second object would be silently ignored: an operator's change that never applies. */
        static const char text[] = "{\"unboundFunctions\":\"reject\"}\n{\"unboundFunctions\":\"allow\"}\n";
        sg_settings s;
        sg_error err = {0};
        (void) state;
        memset(&s, 0, sizeof(s));
        int r = sg_settings_parse(text, strlen(text), &s, &err);
        if (r != -EINVAL)
                fail_msg("a document with a second object after the first gave %d (unboundFunctions %s), want -EINVAL", r,
                         s.unbound_allow ? "allow" : "reject");
}

static void accepts_trailing_whitespace_after_settings_object(void **state) {
        sg_settings s;
        (void) state;
        parse_ok("{\"journal\":false}\n\n  \t\n", &s);
        assert_false(s.journal);
}

/* ------------------------------------------------------------------------------------------ */
/* sg_settings_load.                                                                            */

/* The state of these tests is the path of a fresh temp directory. */
static int setup_tmpdir(void **state) {
        char *dir = NULL;
        int r = sg_test_tmpdir_create("sg-settings", &dir, NULL);
        if (r < 0)
                fail_msg("cannot make a temp directory: %s", strerror(-r));
        *state = dir;
        return 0;
}

static int teardown_tmpdir(void **state) {
        return sg_test_tmpdir_remove(*state, -1);
}

static void write_text(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                fail_msg("open %s: %s", path, strerror(errno));
        assert_int_equal(sg_write_all(fd, text, strlen(text)), 0);
        assert_int_equal(close(fd), 0);
}

static void load_of_missing_file_returns_enoent_with_defaults(void **state) {
        const char *dir = *state;
        char path[PATH_MAX];
        sg_settings s;
        sg_error err = {0};

        snprintf(path, sizeof(path), "%s/signgated.json", dir);
        memset(&s, 0xab, sizeof(s));
        assert_int_equal(sg_settings_load(path, &s, &err), -ENOENT);
        assert_defaults(&s);
}

static void load_reads_settings_file(void **state) {
        const char *dir = *state;
        char path[PATH_MAX];
        sg_settings s;
        sg_error err = {0};

        snprintf(path, sizeof(path), "%s/signgated.json", dir);
        write_text(path, "{\n  \"unboundFunctions\": \"allow\",\n  \"retainReleases\": 9\n}\n");
        int r = sg_settings_load(path, &s, &err);
        if (r != 0)
                fail_msg("load failed with %d: %s", r, err.msg);
        assert_true(s.unbound_allow);
        assert_int_equal(s.retain_releases, 9);
        assert_int_equal(s.limits.entries, SG_LIMIT_ENTRIES);
}

static void load_of_bad_file_names_the_key(void **state) {
        const char *dir = *state;
        char path[PATH_MAX];
        sg_settings s;
        sg_error err = {0};

        snprintf(path, sizeof(path), "%s/signgated.json", dir);
        write_text(path, "{\"limits\":{\"entries\":0}}\n");
        assert_int_equal(sg_settings_load(path, &s, &err), -EINVAL);
        if (strncmp(err.msg, "limits.entries:", strlen("limits.entries:")) != 0)
                fail_msg("error '%s' does not start with 'limits.entries:'", err.msg);
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                CMUnitTestFunction fn;
                CMFixtureFunction setup, teardown;
        } plain[] = {
                {"empty_object_gives_defaults", empty_object_gives_defaults, NULL, NULL},
                {"settings_default_matches_design", settings_default_matches_design, NULL, NULL},
                {"parses_every_key", parses_every_key, NULL, NULL},
                {"keys_left_out_keep_their_defaults", keys_left_out_keep_their_defaults, NULL, NULL},
                {"accepts_limits_at_their_bounds", accepts_limits_at_their_bounds, NULL, NULL},
                {"accepts_socket_modes_that_keep_owner_rw", accepts_socket_modes_that_keep_owner_rw, NULL, NULL},
                {"rejects_role_with_more_than_64_members", rejects_role_with_more_than_64_members, NULL, NULL},
                {"rejects_invalid_json_and_non_object", rejects_invalid_json_and_non_object, NULL, NULL},
                {"rejects_trailing_bytes_after_settings_object", rejects_trailing_bytes_after_settings_object, NULL, NULL},
                {"accepts_trailing_whitespace_after_settings_object", accepts_trailing_whitespace_after_settings_object, NULL,
                 NULL},
                {"load_of_missing_file_returns_enoent_with_defaults", load_of_missing_file_returns_enoent_with_defaults,
                 setup_tmpdir, teardown_tmpdir},
                {"load_reads_settings_file", load_reads_settings_file, setup_tmpdir, teardown_tmpdir},
                {"load_of_bad_file_names_the_key", load_of_bad_file_names_the_key, setup_tmpdir, teardown_tmpdir},
        };
        struct CMUnitTest tests[N_ROWS(plain) + N_ROWS(error_rows)];
        size_t n = 0;

        for (size_t i = 0; i < N_ROWS(plain); i++)
                tests[n++] = (struct CMUnitTest){plain[i].name, plain[i].fn, plain[i].setup, plain[i].teardown, NULL};
        for (size_t i = 0; i < N_ROWS(error_rows); i++)
                tests[n++] = (struct CMUnitTest){error_rows[i].name, error_row_fails_naming_the_key, NULL, NULL,
                                                 (void *) &error_rows[i]};
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests_name("sg_settings", tests, NULL, NULL);
}
