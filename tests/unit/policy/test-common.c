/* Unit tests for policy/sg_common.c: checked conversions, names, RFC 3339 times and validity
 * periods, the strict encoders and decoders, and the file helpers.
 *
 * Expected values come from the RFCs (RFC 4648 test vectors, RFC 3339 examples) or are worked
 * out by hand in the comments; none is produced by the code under test.
 *
 * Run one test alone with: unit-policy-test-common TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_common.h"
#include "sg_test.h"

/* ---- fixture: one private temp directory per test ---- */

typedef sg_test_tmpdir fixture;

static int setup_tmp(void **state) { return sg_test_tmpdir_setup(state, "sg-common"); }
static int teardown_tmp(void **state) { return sg_test_tmpdir_teardown(state); }

/* Fails unless dir holds exactly the one entry `only` (besides . and ..). */
static void assert_dir_holds_only(const char *dir, const char *only) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (strcmp(de->d_name, only) != 0)
                        fail_msg("unexpected file '%s' left in %s", de->d_name, dir);
                n++;
        }
        closedir(d);
        assert_int_equal(n, 1);
}

static int64_t parse_or_fail(const char *s) {
        int64_t t = 0;
        int r = sg_time_parse(s, &t);
        if (r != 0)
                fail_msg("sg_time_parse(\"%s\") = %d, want 0", s, r);
        return t;
}

/* ---- sg_parse_u64 ---- */

static void test_parse_u64_accepts_whole_decimal_strings(void **state) {
        (void) state;
        uint64_t v = 7;

        assert_int_equal(sg_parse_u64("0", 0, UINT64_MAX, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(sg_parse_u64("1234567890", 0, UINT64_MAX, &v), 0);
        assert_int_equal(v, 1234567890);
        assert_int_equal(sg_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(sg_parse_u64("10", 10, 10, &v), 0);
        assert_int_equal(v, 10);
}

static void test_parse_u64_rejects_overflow_with_erange(void **state) {
        (void) state;
        uint64_t v = 42;

        assert_int_equal(sg_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        assert_int_equal(sg_parse_u64("99999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
        assert_int_equal(sg_parse_u64("184467440737095516150", 0, UINT64_MAX, &v), -ERANGE);
        assert_int_equal(v, 42);
}

static void test_parse_u64_rejects_values_outside_range(void **state) {
        (void) state;
        uint64_t v = 42;

        assert_int_equal(sg_parse_u64("9", 10, 20, &v), -ERANGE);
        assert_int_equal(sg_parse_u64("21", 10, 20, &v), -ERANGE);
        assert_int_equal(sg_parse_u64("0", 1, 5, &v), -ERANGE);
        assert_int_equal(v, 42);
}

static void test_parse_u64_rejects_junk_with_einval(void **state) {
        (void) state;
        static const char *const junk[] = {"", " 1", "1 ", "+1", "-1", "1.0", "0x10", "12a", "1e3", "\xd9\xa1"};
        uint64_t v = 42;

        for (size_t i = 0; i < SG_ELEMENTSOF(junk); i++) {
                int r = sg_parse_u64(junk[i], 0, UINT64_MAX, &v);
                if (r != -EINVAL)
                        fail_msg("sg_parse_u64(\"%s\") = %d, want %d", junk[i], r, -EINVAL);
        }
        assert_int_equal(sg_parse_u64(NULL, 0, UINT64_MAX, &v), -EINVAL);
        assert_int_equal(v, 42);
}

/* ---- names ---- */

struct name_row {
        const char *s;
        bool ok;
};

static void check_names(bool (*fn)(const char *), const char *fn_name, const struct name_row *rows, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fn(rows[i].s) != rows[i].ok)
                        fail_msg("%s(\"%s\") = %d, want %d", fn_name, rows[i].s ? rows[i].s : "(null)", !rows[i].ok,
                                 rows[i].ok);
}

#define S64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_x"

static void test_function_names_follow_lambda_rules(void **state) {
        (void) state;
        static const struct name_row rows[] = {
                {"a", true},          {"my-func_1", true}, {S64, true},   {S64 "y", false},
                {"", false},          {"a.b", false},      {"a b", false}, {"a/b", false},
                {"caf\xc3\xa9", false}, {"a\nb", false},   {NULL, false},
        };
        assert_int_equal(strlen(S64), 64);
        check_names(sg_name_valid, "sg_name_valid", rows, SG_ELEMENTSOF(rows));
}

static void test_profile_names_allow_only_alnum_and_underscore_2_to_64(void **state) {
        (void) state;
        static const struct name_row rows[] = {
                {"ab", true},   {"My_Profile_1", true}, {S64, true},    {S64 "y", false},
                {"a", false},   {"", false},            {"a-b", false}, {"a.b", false},
                {NULL, false},
        };
        check_names(sg_profile_name_valid, "sg_profile_name_valid", rows, SG_ELEMENTSOF(rows));
}

static void test_profile_versions_are_ten_lowercase_base32_chars(void **state) {
        (void) state;
        static const struct name_row rows[] = {
                {"abcdefgh23", true}, {"zzzzzzzz77", true},  {"ABCDEFGH23", false}, {"abcdefgh18", false},
                {"abcdefgh2", false}, {"abcdefgh234", false}, {"abcdefgh2=", false}, {"", false},
                {NULL, false},
        };
        check_names(sg_profile_version_valid, "sg_profile_version_valid", rows, SG_ELEMENTSOF(rows));
}

static void test_uuid_valid_accepts_only_lowercase_canonical_form(void **state) {
        (void) state;
        static const struct name_row rows[] = {
                {"123e4567-e89b-42d3-a456-426614174000", true},
                {"123E4567-E89B-42D3-A456-426614174000", false},
                {"123e4567e89b42d3a456426614174000", false},
                {"123e4567-e89b-42d3-a456-42661417400", false},
                {"123e4567-e89b-42d3-a456-4266141740000", false},
                {"123e4567-e89b-42d3-a456_426614174000", false},
                {"123e4567-e89b-42d3-a456-42661417400g", false},
                {"{23e4567-e89b-42d3-a456-42661417400}", false},
                {"", false},
                {NULL, false},
        };
        check_names(sg_uuid_valid, "sg_uuid_valid", rows, SG_ELEMENTSOF(rows));
}

static void test_uuid_new_gives_distinct_valid_version_4_uuids(void **state) {
        (void) state;
        char prev[37] = "";

        for (int i = 0; i < 64; i++) {
                char u[37];
                memset(u, 'X', sizeof(u));
                assert_int_equal(sg_uuid_new(u), 0);
                assert_int_equal(strlen(u), 36);
                if (!sg_uuid_valid(u))
                        fail_msg("sg_uuid_new gave invalid '%s'", u);
                assert_int_equal(u[14], '4');
                if (!strchr("89ab", u[19]))
                        fail_msg("'%s' lacks the RFC 4122 variant (char 19 is '%c')", u, u[19]);
                assert_string_not_equal(u, prev);
                memcpy(prev, u, sizeof(prev));
        }
}

static void test_csc_ids_are_csc_dash_17_lowercase_hex(void **state) {
        (void) state;
        static const struct name_row rows[] = {
                {"csc-0123456789abcdef0", true},  {"csc-0123456789abcdef", false},
                {"csc-0123456789abcdef01", false}, {"csc-0123456789ABCDEF0", false},
                {"CSC-0123456789abcdef0", false},  {"csc_0123456789abcdef0", false},
                {"csc-0123456789abcdefg", false},  {"", false},
                {NULL, false},
        };
        check_names(sg_csc_id_valid, "sg_csc_id_valid", rows, SG_ELEMENTSOF(rows));
}

static void test_reason_names_round_trip_with_design_spelling(void **state) {
        (void) state;
        static const char *const names[] = {"MALFORMED", "LIMIT_EXCEEDED", "UNSAFE_CONTENT", "INTEGRITY",
                                            "UNKNOWN_FUNCTION", "UNSIGNED", "UNTRUSTED_PUBLISHER", "EXPIRED",
                                            "NOT_YET_VALID", "REVOKED", "INTERNAL"};
        for (size_t i = 0; i < SG_ELEMENTSOF(names); i++) {
                sg_reason r = sg_reason_from_name(names[i]);
                assert_int_equal(r, (int) (SG_REASON_MALFORMED + i));
                assert_string_equal(sg_reason_name(r), names[i]);
        }
        assert_int_equal(sg_reason_from_name("malformed"), SG_REASON_NONE);
        assert_true(sg_reason_overridable(SG_REASON_UNSIGNED));
        assert_true(sg_reason_overridable(SG_REASON_REVOKED));
        assert_false(sg_reason_overridable(SG_REASON_INTEGRITY));
        assert_false(sg_reason_overridable(SG_REASON_UNSAFE_CONTENT));
}

/* ---- time ---- */

static void test_time_format_gives_rfc3339_utc(void **state) {
        (void) state;
        static const struct {
                int64_t t;
                const char *s;
        } rows[] = {
                {0, "1970-01-01T00:00:00Z"},
                {-1, "1969-12-31T23:59:59Z"},
                {951782400, "2000-02-29T00:00:00Z"},
                {1709210096, "2024-02-29T12:34:56Z"},
                {253402300799, "9999-12-31T23:59:59Z"},
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(rows); i++) {
                char buf[SG_TIME_LEN + 1];
                assert_int_equal(sg_time_format(rows[i].t, buf), 0);
                assert_string_equal(buf, rows[i].s);
        }
}

static void test_time_format_rejects_years_past_9999(void **state) {
        (void) state;
        char buf[SG_TIME_LEN + 1];
        int r = sg_time_format(253402300800, buf);
        if (r >= 0)
                fail_msg("sg_time_format(year 10000) = %d (\"%.20s\"), want an error", r, buf);
}

static void test_time_parse_round_trips_formatted_times(void **state) {
        (void) state;
        static const int64_t ts[] = {0, 1, 86399, 951782400, 1709210096, 4102444800, 253402300799};
        for (size_t i = 0; i < SG_ELEMENTSOF(ts); i++) {
                char buf[SG_TIME_LEN + 1];
                assert_int_equal(sg_time_format(ts[i], buf), 0);
                assert_int_equal(parse_or_fail(buf), ts[i]);
        }
}

static void test_time_parse_applies_offsets(void **state) {
        (void) state;
        int64_t base = parse_or_fail("2024-01-01T00:00:00Z");

        assert_int_equal(base, 1704067200);
        assert_int_equal(parse_or_fail("2024-01-01T05:30:00+05:30"), base);
        assert_int_equal(parse_or_fail("2023-12-31T16:00:00-08:00"), base);
        assert_int_equal(parse_or_fail("2024-01-01T00:00:00+00:00"), base);
        assert_int_equal(parse_or_fail("2024-01-01T00:00:00-00:00"), base);
        /* An offset can move the instant across a date and a year. */
        assert_int_equal(parse_or_fail("2024-01-01T00:00:00+01:00"), base - 3600);
}

static void test_time_parse_drops_fractions(void **state) {
        (void) state;
        int64_t base = parse_or_fail("2024-01-01T00:00:00Z");

        assert_int_equal(parse_or_fail("2024-01-01T00:00:00.5Z"), base);
        assert_int_equal(parse_or_fail("2024-01-01T00:00:00.999999999Z"), base);
        assert_int_equal(parse_or_fail("2024-01-01T02:00:00.123+02:00"), base);
}

static void test_time_parse_knows_leap_years(void **state) {
        (void) state;
        int64_t t = 0;

        assert_int_equal(parse_or_fail("2024-02-29T00:00:00Z"), 1709164800);
        assert_int_equal(parse_or_fail("2000-02-29T00:00:00Z"), 951782400);
        assert_int_equal(sg_time_parse("2023-02-29T00:00:00Z", &t), -EINVAL);
        assert_int_equal(sg_time_parse("1900-02-29T00:00:00Z", &t), -EINVAL);
        assert_int_equal(sg_time_parse("2100-02-29T00:00:00Z", &t), -EINVAL);
        /* Feb 28 and Mar 1 of a leap year are two days apart. */
        assert_int_equal(parse_or_fail("2024-03-01T00:00:00Z") - parse_or_fail("2024-02-28T00:00:00Z"), 2 * 86400);
}

static void test_time_parse_rejects_invalid_text(void **state) {
        (void) state;
        static const char *const bad[] = {
                "2024-02-30T00:00:00Z", "2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z",
                "2024-01-00T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z",
                "2024-01-01T00:00:00",  "2024-01-01 00:00:00Z", "2024-1-01T00:00:00Z",  "2024-01-01T00:00:00.Z",
                "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+01:60",
                "2024-01-01T00:00:00ZZ", "2024-01-01T00:00:00Z ", "2024/01/01T00:00:00Z", "x024-01-01T00:00:00Z",
                "", "2024-01-01",
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(bad); i++) {
                int64_t t = 42;
                int r = sg_time_parse(bad[i], &t);
                if (r != -EINVAL)
                        fail_msg("sg_time_parse(\"%s\") = %d, want %d", bad[i], r, -EINVAL);
                assert_int_equal(t, 42);
        }
}

static int64_t add_period(const char *from, uint32_t v, sg_period_unit u) {
        int64_t t = 0;
        assert_int_equal(sg_time_add_period(parse_or_fail(from), v, u, &t), 0);
        return t;
}

static void test_add_month_clamps_to_last_day_of_month(void **state) {
        (void) state;
        assert_int_equal(add_period("2023-01-31T10:00:00Z", 1, SG_PERIOD_MONTHS), parse_or_fail("2023-02-28T10:00:00Z"));
        assert_int_equal(add_period("2024-01-31T10:00:00Z", 1, SG_PERIOD_MONTHS), parse_or_fail("2024-02-29T10:00:00Z"));
        assert_int_equal(add_period("2024-03-31T00:00:00Z", 1, SG_PERIOD_MONTHS), parse_or_fail("2024-04-30T00:00:00Z"));
        assert_int_equal(add_period("2023-12-31T23:59:59Z", 2, SG_PERIOD_MONTHS), parse_or_fail("2024-02-29T23:59:59Z"));
        assert_int_equal(add_period("2024-01-15T00:00:00Z", 12, SG_PERIOD_MONTHS), parse_or_fail("2025-01-15T00:00:00Z"));
}

static void test_add_135_months_lands_eleven_years_three_months_later(void **state) {
        (void) state;
        assert_int_equal(add_period("2024-01-15T12:34:56Z", 135, SG_PERIOD_MONTHS),
                         parse_or_fail("2035-04-15T12:34:56Z"));
        assert_int_equal(add_period("2024-11-30T00:00:00Z", 135, SG_PERIOD_MONTHS),
                         parse_or_fail("2036-02-29T00:00:00Z"));
}

static void test_add_years_clamps_feb_29(void **state) {
        (void) state;
        assert_int_equal(add_period("2024-02-29T08:00:00Z", 1, SG_PERIOD_YEARS), parse_or_fail("2025-02-28T08:00:00Z"));
        assert_int_equal(add_period("2024-02-29T08:00:00Z", 4, SG_PERIOD_YEARS), parse_or_fail("2028-02-29T08:00:00Z"));
        assert_int_equal(add_period("2020-06-01T00:00:00Z", 11, SG_PERIOD_YEARS), parse_or_fail("2031-06-01T00:00:00Z"));
}

static void test_add_days_adds_whole_days(void **state) {
        (void) state;
        assert_int_equal(add_period("2024-02-28T12:00:00Z", 1, SG_PERIOD_DAYS), parse_or_fail("2024-02-29T12:00:00Z"));
        assert_int_equal(add_period("2024-02-28T12:00:00Z", 2, SG_PERIOD_DAYS), parse_or_fail("2024-03-01T12:00:00Z"));
        assert_int_equal(add_period("2023-12-31T00:00:00Z", 366, SG_PERIOD_DAYS), parse_or_fail("2024-12-31T00:00:00Z"));
}

static void test_period_valid_caps_at_135_months(void **state) {
        (void) state;
        assert_true(sg_period_valid(1, SG_PERIOD_MONTHS));
        assert_true(sg_period_valid(135, SG_PERIOD_MONTHS));
        assert_false(sg_period_valid(136, SG_PERIOD_MONTHS));
        assert_false(sg_period_valid(0, SG_PERIOD_MONTHS));
        assert_true(sg_period_valid(11, SG_PERIOD_YEARS));
        assert_false(sg_period_valid(12, SG_PERIOD_YEARS));
        assert_false(sg_period_valid(0, SG_PERIOD_YEARS));
        assert_true(sg_period_valid(1, SG_PERIOD_DAYS));
        assert_true(sg_period_valid(4000, SG_PERIOD_DAYS));
        assert_false(sg_period_valid(4200, SG_PERIOD_DAYS));
        assert_false(sg_period_valid(0, SG_PERIOD_DAYS));
        assert_false(sg_period_valid(UINT32_MAX, SG_PERIOD_DAYS));
}

static void test_period_unit_names_round_trip(void **state) {
        (void) state;
        static const sg_period_unit units[] = {SG_PERIOD_DAYS, SG_PERIOD_MONTHS, SG_PERIOD_YEARS};
        for (size_t i = 0; i < SG_ELEMENTSOF(units); i++) {
                sg_period_unit u = (sg_period_unit) 99;
                assert_int_equal(sg_period_unit_from_name(sg_period_unit_name(units[i]), &u), 0);
                assert_int_equal(u, units[i]);
        }
        sg_period_unit u = SG_PERIOD_DAYS;
        assert_int_equal(sg_period_unit_from_name("months", &u), -EINVAL);
        assert_int_equal(sg_period_unit_from_name("WEEKS", &u), -EINVAL);
        assert_int_equal(sg_period_unit_from_name(NULL, &u), -EINVAL);
}

/* ---- encodings ---- */

static void test_hex_encodes_lowercase_and_decodes_exactly(void **state) {
        (void) state;
        static const unsigned char in[] = {0x00, 0xff, 0x10, 0xab, 0x7f};
        char out[2 * sizeof(in) + 1];
        unsigned char back[sizeof(in)];

        sg_hex_encode(in, sizeof(in), out);
        assert_string_equal(out, "00ff10ab7f");
        assert_int_equal(sg_hex_decode("00ff10ab7f", back, sizeof(back)), 0);
        assert_memory_equal(back, in, sizeof(in));
}

static void test_hex_decode_rejects_uppercase_wrong_length_and_junk(void **state) {
        (void) state;
        unsigned char out[3];
        assert_int_equal(sg_hex_decode("00FF10", out, 3), -EINVAL);
        assert_int_equal(sg_hex_decode("00ff1", out, 3), -EINVAL);
        assert_int_equal(sg_hex_decode("00ff1000", out, 3), -EINVAL);
        assert_int_equal(sg_hex_decode("00fg10", out, 3), -EINVAL);
        assert_int_equal(sg_hex_decode("00 f10", out, 3), -EINVAL);
        assert_int_equal(sg_hex_decode(NULL, out, 3), -EINVAL);
}

/* RFC 4648 section 10. */
static const char *const rfc4648_in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};

static void test_base64_matches_rfc4648_vectors(void **state) {
        (void) state;
        static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        for (size_t i = 0; i < SG_ELEMENTSOF(want); i++) {
                char *enc = sg_base64_encode((const unsigned char *) rfc4648_in[i], strlen(rfc4648_in[i]));
                assert_non_null(enc);
                assert_string_equal(enc, want[i]);
                free(enc);

                unsigned char *dec = NULL;
                size_t dec_len = 99;
                assert_int_equal(sg_base64_decode(want[i], strlen(want[i]), &dec, &dec_len), 0);
                assert_int_equal(dec_len, strlen(rfc4648_in[i]));
                assert_memory_equal(dec, rfc4648_in[i], dec_len);
                free(dec);
        }
}

static void test_base64_decode_round_trips_all_byte_values(void **state) {
        (void) state;
        unsigned char in[256];
        for (int i = 0; i < 256; i++)
                in[i] = (unsigned char) i;
        for (size_t n = 253; n <= 256; n++) {
                char *enc = sg_base64_encode(in, n);
                unsigned char *dec = NULL;
                size_t dec_len = 0;
                assert_non_null(enc);
                assert_int_equal(sg_base64_decode(enc, strlen(enc), &dec, &dec_len), 0);
                assert_int_equal(dec_len, n);
                assert_memory_equal(dec, in, n);
                free(enc);
                free(dec);
        }
}

static void test_base64_decode_rejects_non_canonical_text(void **state) {
        (void) state;
        static const char *const bad[] = {
                "Zg=",       /* length not a multiple of 4 */
                "Zg",        /* padding missing */
                "Zh==",      /* non-zero bits under the padding */
                "Zm9=",      /* non-zero bits under the padding */
                "Zm8",       /* padding missing */
                "Z===",      /* too much padding */
                "====",      /* only padding */
                "Z=9v",      /* padding inside */
                "Zg==Zm9v",  /* padding before the end */
                "Zm 9",      /* whitespace */
                "Zm9v\n",    /* trailing newline */
                " Zm9v",     /* leading space */
                "Zm9v====",  /* a whole group of padding */
                "Zm-_",      /* URL-safe alphabet */
                "Zm9v\x80\x80\x80\x80",
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(bad); i++) {
                unsigned char *dec = (unsigned char *) "untouched";
                size_t dec_len = 42;
                int r = sg_base64_decode(bad[i], strlen(bad[i]), &dec, &dec_len);
                if (r != -EINVAL)
                        fail_msg("sg_base64_decode(\"%s\") = %d, want %d", bad[i], r, -EINVAL);
                assert_int_equal(dec_len, 42);
        }
}

static void test_base64_decode_rejects_embedded_nul(void **state) {
        (void) state;
        static const char text[8] = {'Z', 'm', '9', 'v', 'Z', '\0', '9', 'v'};
        unsigned char *dec = NULL;
        size_t dec_len = 42;
        assert_int_equal(sg_base64_decode(text, sizeof(text), &dec, &dec_len), -EINVAL);
        assert_int_equal(dec_len, 42);
}

static void test_base32_matches_rfc4648_vectors_in_lowercase(void **state) {
        (void) state;
        static const char *const want[] = {"", "my", "mzxq", "mzxw6", "mzxw6yq", "mzxw6ytb", "mzxw6ytboi"};
        for (size_t i = 0; i < SG_ELEMENTSOF(want); i++) {
                char out[32];
                memset(out, 'X', sizeof(out));
                sg_base32_encode_lower((const unsigned char *) rfc4648_in[i], strlen(rfc4648_in[i]), out);
                assert_string_equal(out, want[i]);
        }
}

static void test_base32_of_sha256_sized_input_is_52_chars(void **state) {
        (void) state;
        unsigned char in[32];
        char out[(8 * 32 + 4) / 5 + 1];
        memset(in, 0xff, sizeof(in));
        sg_base32_encode_lower(in, sizeof(in), out);
        /* 256 bits = 51 full groups of 5 and one bit, padded with zeros: "7"*51 + "q". */
        assert_int_equal(strlen(out), 52);
        assert_int_equal(strspn(out, "7"), 51);
        assert_int_equal(out[51], 'q');
}

/* ---- files ---- */

static void test_write_file_atomic_writes_content_and_exact_mode(void **state) {
        fixture *f = *state;
        struct stat st;
        char *buf = NULL;
        size_t len = 0;

        mode_t old = umask(077);
        int r = sg_write_file_atomic(f->dirfd, "policy.json", "{\"a\":1}", 7, 0644);
        umask(old);
        assert_int_equal(r, 0);
        assert_int_equal(fstatat(f->dirfd, "policy.json", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(sg_read_file(f->dirfd, "policy.json", 1024, &buf, &len), 0);
        assert_int_equal(len, 7);
        assert_string_equal(buf, "{\"a\":1}");
        free(buf);
        assert_dir_holds_only(f->dir, "policy.json");
}

static void test_write_file_atomic_replaces_and_leaves_no_temp(void **state) {
        fixture *f = *state;
        struct stat st;
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(sg_write_file_atomic(f->dirfd, "f", "old content", 11, 0600), 0);
        assert_int_equal(sg_write_file_atomic(f->dirfd, "f", "new", 3, 0640), 0);
        assert_int_equal(sg_read_file(f->dirfd, "f", 1024, &buf, &len), 0);
        assert_int_equal(len, 3);
        assert_string_equal(buf, "new");
        free(buf);
        assert_int_equal(fstatat(f->dirfd, "f", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_dir_holds_only(f->dir, "f");
}

static void test_write_file_atomic_writes_empty_file(void **state) {
        fixture *f = *state;
        struct stat st;
        assert_int_equal(sg_write_file_atomic(f->dirfd, "empty", "", 0, 0600), 0);
        assert_int_equal(fstatat(f->dirfd, "empty", &st, 0), 0);
        assert_int_equal(st.st_size, 0);
        assert_dir_holds_only(f->dir, "empty");
}

static void test_read_file_returns_nul_terminated_content(void **state) {
        fixture *f = *state;
        char *buf = NULL;
        size_t len = 0;
        static const char content[] = "line one\nline two\n";

        assert_int_equal(sg_write_file_atomic(f->dirfd, "r", content, sizeof(content) - 1, 0644), 0);
        assert_int_equal(sg_read_file(f->dirfd, "r", sizeof(content) - 1, &buf, &len), 0);
        assert_int_equal(len, sizeof(content) - 1);
        assert_memory_equal(buf, content, sizeof(content)); /* with the NUL */
        free(buf);
}

static void test_read_file_rejects_file_over_max_with_efbig(void **state) {
        fixture *f = *state;
        char *buf = (char *) "untouched";
        size_t len = 42;

        assert_int_equal(sg_write_file_atomic(f->dirfd, "big", "0123456789", 10, 0644), 0);
        assert_int_equal(sg_read_file(f->dirfd, "big", 9, &buf, &len), -EFBIG);
        assert_int_equal(len, 42);
        assert_string_equal(buf, "untouched");
        assert_int_equal(sg_read_file(f->dirfd, "big", 0, &buf, &len), -EFBIG);
}

static void test_read_file_refuses_symlink(void **state) {
        fixture *f = *state;
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(sg_write_file_atomic(f->dirfd, "target", "secret", 6, 0644), 0);
        assert_int_equal(symlinkat("target", f->dirfd, "link"), 0);
        int r = sg_read_file(f->dirfd, "link", 1024, &buf, &len);
        assert_true(r < 0);
        assert_int_equal(r, -ELOOP);
        assert_null(buf);
}

static void test_read_file_refuses_directory_and_fifo(void **state) {
        fixture *f = *state;
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(mkdirat(f->dirfd, "d", 0755), 0);
        assert_int_equal(sg_read_file(f->dirfd, "d", 1024, &buf, &len), -EINVAL);
        assert_int_equal(mkfifoat(f->dirfd, "fifo", 0644), 0);
        assert_int_equal(sg_read_file(f->dirfd, "fifo", 1024, &buf, &len), -EINVAL);
        assert_null(buf);
}

static void test_read_file_reports_missing_file_as_enoent(void **state) {
        fixture *f = *state;
        char *buf = NULL;
        size_t len = 0;
        assert_int_equal(sg_read_file(f->dirfd, "nope", 1024, &buf, &len), -ENOENT);
}

static void test_mkdir_p_creates_every_component_with_mode(void **state) {
        fixture *f = *state;
        char *path = NULL, *mid = NULL;
        struct stat st;

        assert_true(asprintf(&path, "%s/a/b/c", f->dir) > 0);
        assert_true(asprintf(&mid, "%s/a/b", f->dir) > 0);
        mode_t old = umask(022);
        int r = sg_mkdir_p(path, 0750);
        umask(old);
        assert_int_equal(r, 0);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
        assert_int_equal(stat(mid, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0750);
        free(path);
        free(mid);
}

static void test_mkdir_p_leaves_existing_directories_as_they_are(void **state) {
        fixture *f = *state;
        char *path = NULL, *trail = NULL;
        struct stat st;

        assert_int_equal(mkdirat(f->dirfd, "x", 0700), 0);
        assert_int_equal(fchmodat(f->dirfd, "x", 0711, 0), 0);
        assert_true(asprintf(&path, "%s/x/y", f->dir) > 0);
        assert_true(asprintf(&trail, "%s/x/y/", f->dir) > 0);
        assert_int_equal(sg_mkdir_p(path, 0755), 0);
        assert_int_equal(sg_mkdir_p(path, 0755), 0);
        assert_int_equal(sg_mkdir_p(trail, 0755), 0);
        assert_int_equal(fstatat(f->dirfd, "x", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0711);
        free(path);
        free(trail);
}

static void test_mkdir_p_fails_with_enotdir_through_a_file(void **state) {
        fixture *f = *state;
        char *path = NULL, *file = NULL;

        assert_int_equal(sg_write_file_atomic(f->dirfd, "file", "x", 1, 0644), 0);
        assert_true(asprintf(&path, "%s/file/sub", f->dir) > 0);
        assert_true(asprintf(&file, "%s/file", f->dir) > 0);
        assert_int_equal(sg_mkdir_p(path, 0755), -ENOTDIR);
        assert_int_equal(sg_mkdir_p(file, 0755), -ENOTDIR);
        free(path);
        free(file);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_u64_accepts_whole_decimal_strings),
                cmocka_unit_test(test_parse_u64_rejects_overflow_with_erange),
                cmocka_unit_test(test_parse_u64_rejects_values_outside_range),
                cmocka_unit_test(test_parse_u64_rejects_junk_with_einval),
                cmocka_unit_test(test_function_names_follow_lambda_rules),
                cmocka_unit_test(test_profile_names_allow_only_alnum_and_underscore_2_to_64),
                cmocka_unit_test(test_profile_versions_are_ten_lowercase_base32_chars),
                cmocka_unit_test(test_uuid_valid_accepts_only_lowercase_canonical_form),
                cmocka_unit_test(test_uuid_new_gives_distinct_valid_version_4_uuids),
                cmocka_unit_test(test_csc_ids_are_csc_dash_17_lowercase_hex),
                cmocka_unit_test(test_reason_names_round_trip_with_design_spelling),
                cmocka_unit_test(test_time_format_gives_rfc3339_utc),
                cmocka_unit_test(test_time_format_rejects_years_past_9999),
                cmocka_unit_test(test_time_parse_round_trips_formatted_times),
                cmocka_unit_test(test_time_parse_applies_offsets),
                cmocka_unit_test(test_time_parse_drops_fractions),
                cmocka_unit_test(test_time_parse_knows_leap_years),
                cmocka_unit_test(test_time_parse_rejects_invalid_text),
                cmocka_unit_test(test_add_month_clamps_to_last_day_of_month),
                cmocka_unit_test(test_add_135_months_lands_eleven_years_three_months_later),
                cmocka_unit_test(test_add_years_clamps_feb_29),
                cmocka_unit_test(test_add_days_adds_whole_days),
                cmocka_unit_test(test_period_valid_caps_at_135_months),
                cmocka_unit_test(test_period_unit_names_round_trip),
                cmocka_unit_test(test_hex_encodes_lowercase_and_decodes_exactly),
                cmocka_unit_test(test_hex_decode_rejects_uppercase_wrong_length_and_junk),
                cmocka_unit_test(test_base64_matches_rfc4648_vectors),
                cmocka_unit_test(test_base64_decode_round_trips_all_byte_values),
                cmocka_unit_test(test_base64_decode_rejects_non_canonical_text),
                cmocka_unit_test(test_base64_decode_rejects_embedded_nul),
                cmocka_unit_test(test_base32_matches_rfc4648_vectors_in_lowercase),
                cmocka_unit_test(test_base32_of_sha256_sized_input_is_52_chars),
                cmocka_unit_test_setup_teardown(test_write_file_atomic_writes_content_and_exact_mode, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_write_file_atomic_replaces_and_leaves_no_temp, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_write_file_atomic_writes_empty_file, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_read_file_returns_nul_terminated_content, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_read_file_rejects_file_over_max_with_efbig, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_read_file_refuses_symlink, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_read_file_refuses_directory_and_fifo, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_read_file_reports_missing_file_as_enoent, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_mkdir_p_creates_every_component_with_mode, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_mkdir_p_leaves_existing_directories_as_they_are, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_mkdir_p_fails_with_enotdir_through_a_file, setup_tmp, teardown_tmp),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
