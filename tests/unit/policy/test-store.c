/* Unit tests for policy/sg_store.c: loading the policy store from disk (DESIGN §7), atomic
 * writes, ARN parsing and the first-seen log.
 *
 * Each test builds its own store below a fresh mkdtemp() directory (under $SIGNGATE_TEST_TMP,
 * else /tmp) and removes it afterwards. A failing load must return -EINVAL with an error that
 * names the offending file relative to the store, e.g. "functions/f1.json".
 *
 * Run one test alone with: unit-policy-test-store TEST_NAME (a cmocka filter pattern). */
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

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sg_common.h"
#include "sg_signature.h"
#include "sg_store.h"
#include "sg_test.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

#define CSC_ID "csc-0123456789abcdef0"
#define CSC_AWS_ARN "arn:aws:lambda:us-east-1:111111111111:code-signing-config:" CSC_ID
#define JOB_REVOKED "0b9d3f4e-5a6c-4d7e-8f90-a1b2c3d4e5f6"

/* Compares two times and, on failure, prints both as RFC 3339 (cmocka would print hex). */
#define assert_time_equal(got, want)                              \
        do {                                                      \
                if (!time_equal_or_print((got), (want), #got))    \
                        fail();                                   \
        } while (0)
static bool time_equal_or_print(int64_t got, int64_t want, const char *what) {
        char g[SG_TIME_LEN + 1] = "?", w[SG_TIME_LEN + 1] = "?";
        if (got == want)
                return true;
        (void) sg_time_format(got, g);
        (void) sg_time_format(want, w);
        print_error("ERROR: %s is %s (%lld), want %s (%lld)\n", what, g, (long long) got, w, (long long) want);
        return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Files.                                                                                     */

/* Writes text to rel (a path below dirfd whose one directory level is created if needed). */
static void write_rel(int dirfd, const char *rel, const char *text) {
        char sub[PATH_MAX];
        const char *slash = strchr(rel, '/');
        if (slash) {
                snprintf(sub, sizeof(sub), "%.*s", (int) (slash - rel), rel);
                if (mkdirat(dirfd, sub, 0755) < 0 && errno != EEXIST)
                        fail_msg("mkdir %s: %s", sub, strerror(errno));
        }
        int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                fail_msg("open %s: %s", rel, strerror(errno));
        assert_int_equal(sg_write_all(fd, text, strlen(text)), 0);
        assert_int_equal(close(fd), 0);
}

static void write_json(int dirfd, const char *rel, const cJSON *doc) {
        char *text = cJSON_Print(doc);
        assert_non_null(text);
        write_rel(dirfd, rel, text);
        free(text);
}

/* ------------------------------------------------------------------------------------------ */
/* Fixture: a temp directory holding a valid store with every document kind.                  */

struct fixture {
        char *dir;
        int dirfd;
        EVP_PKEY *key, *key2;
        char version[11], version2[11];
        char profile_file[128], profile2_file[128];
};

/* The public profile document, shaped as profile_doc() in cli/signer.c writes it. */
static cJSON *profile_document(const char *name, EVP_PKEY *key, const char *claimed_version) {
        char version[11], arn[SG_PROFILE_ARN_MAX + 1];
        char *pem = NULL;
        cJSON *j = cJSON_CreateObject(), *vp;

        assert_non_null(j);
        assert_int_equal(sg_key_profile_version(key, version), 0);
        if (claimed_version)
                snprintf(version, sizeof(version), "%s", claimed_version);
        assert_int_equal(sg_key_public_pem(key, &pem), 0);
        snprintf(arn, sizeof(arn), "%s/%s", name, version);
        assert_non_null(cJSON_AddStringToObject(j, "profileName", name));
        assert_non_null(cJSON_AddStringToObject(j, "profileVersion", version));
        assert_non_null(cJSON_AddStringToObject(j, "profileVersionArn", arn));
        assert_non_null(cJSON_AddStringToObject(j, "platformId", SG_PLATFORM_LAMBDA));
        assert_non_null(vp = cJSON_AddObjectToObject(j, "signatureValidityPeriod"));
        assert_non_null(cJSON_AddNumberToObject(vp, "value", 135));
        assert_non_null(cJSON_AddStringToObject(vp, "type", "MONTHS"));
        assert_non_null(cJSON_AddStringToObject(j, "publicKey", pem));
        assert_non_null(cJSON_AddStringToObject(j, "status", "Active"));
        cJSON *tags = cJSON_AddObjectToObject(j, "tags");
        assert_non_null(tags);
        assert_non_null(cJSON_AddStringToObject(tags, "team", "payments"));
        assert_non_null(cJSON_AddStringToObject(j, "createdAt", "2024-01-01T00:00:00Z"));
        free(pem);
        return j;
}

/* A CSC allowing the fixture's two profiles; publishers_json replaces the list when not NULL. */
static char *csc_text(const struct fixture *fx, const char *publishers_json) {
        char *text = NULL;
        char list[512];
        snprintf(list, sizeof(list),
                 "[\"arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/%s\","
                 "\"OtherProfile/%s\"]",
                 fx->version, fx->version2);
        int n = asprintf(&text,
                         "{\"CodeSigningConfigId\":\"%s\",\"CodeSigningConfigArn\":\"%s\",\"Description\":\"prod\","
                         "\"AllowedPublishers\":{\"SigningProfileVersionArns\":%s},"
                         "\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Enforce\"},"
                         "\"LastModified\":\"2024-05-01T12:00:00Z\"}\n",
                         CSC_ID, CSC_AWS_ARN, publishers_json ? publishers_json : list);
        assert_true(n > 0);
        return text;
}

static void write_valid_store(struct fixture *fx) {
        char text[512];
        cJSON *doc;

        doc = profile_document("LambdaProductionProfile", fx->key, NULL);
        write_json(fx->dirfd, fx->profile_file, doc);
        cJSON_Delete(doc);
        doc = profile_document("OtherProfile", fx->key2, NULL);
        write_json(fx->dirfd, fx->profile2_file, doc);
        cJSON_Delete(doc);

        char *csc = csc_text(fx, NULL);
        write_rel(fx->dirfd, "code-signing-configs/" CSC_ID ".json", csc);
        free(csc);

        write_rel(fx->dirfd, "functions/f1.json",
                  "{\"FunctionName\":\"f1\",\"CodeSigningConfigArn\":\"" CSC_AWS_ARN "\",\"Layers\":[\"shared\"]}\n");
        write_rel(fx->dirfd, "functions/f2.json", "{\"FunctionName\":\"f2\",\"CodeSigningConfigArn\":null}");

        snprintf(text, sizeof(text),
                 "{\"type\":\"profile\",\"profileName\":\"OtherProfile\",\"profileVersion\":\"%s\","
                 "\"effectiveTime\":\"2024-05-20T00:00:00Z\",\"reason\":\"key stolen\"}",
                 fx->version2);
        write_rel(fx->dirfd, "revocations/r1.json", text);
        write_rel(fx->dirfd, "revocations/r2.json", "{\"type\":\"signature\",\"jobId\":\"" JOB_REVOKED "\"}");
}

static int setup(void **state) {
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        fx->dirfd = -1;
        int r = sg_test_tmpdir_create("sg-store", &fx->dir, &fx->dirfd);
        if (r < 0) {
                free(fx);
                fail_msg("cannot make a temp directory: %s", strerror(-r));
        }
        assert_int_equal(sg_key_generate(&fx->key), 0);
        assert_int_equal(sg_key_generate(&fx->key2), 0);
        assert_int_equal(sg_key_profile_version(fx->key, fx->version), 0);
        assert_int_equal(sg_key_profile_version(fx->key2, fx->version2), 0);
        snprintf(fx->profile_file, sizeof(fx->profile_file), "signing-profiles/LambdaProductionProfile@%s.json",
                 fx->version);
        snprintf(fx->profile2_file, sizeof(fx->profile2_file), "signing-profiles/OtherProfile@%s.json", fx->version2);
        *state = fx;
        return 0;
}

static int setup_with_store(void **state) {
        setup(state);
        write_valid_store(*state);
        return 0;
}

static int teardown(void **state) {
        struct fixture *fx = *state;
        if (!fx)
                return 0;
        int r = sg_test_tmpdir_remove(fx->dir, fx->dirfd);
        EVP_PKEY_free(fx->key);
        EVP_PKEY_free(fx->key2);
        free(fx);
        return r;
}

/* Loads the store and expects -EINVAL with a message containing each given fragment. */
static void assert_load_fails_naming(const struct fixture *fx, const char *fragment, const char *fragment2) {
        sg_store *s = NULL;
        sg_error err = {0};
        int r = sg_store_load(fx->dirfd, &s, &err);
        if (r == 0) {
                sg_store_free(s);
                fail_msg("the store loaded; expected -EINVAL naming %s", fragment);
        }
        assert_int_equal(r, -EINVAL);
        assert_null(s);
        assert_string_equal(sg_reason_name(err.reason), "MALFORMED");
        if (!strstr(err.msg, fragment))
                fail_msg("error '%s' does not name '%s'", err.msg, fragment);
        if (fragment2 && !strstr(err.msg, fragment2))
                fail_msg("error '%s' does not mention '%s'", err.msg, fragment2);
}

static sg_store *load_ok(const struct fixture *fx) {
        sg_store *s = NULL;
        sg_error err = {0};
        int r = sg_store_load(fx->dirfd, &s, &err);
        if (r < 0)
                fail_msg("sg_store_load failed with %d: %s", r, err.msg);
        assert_non_null(s);
        return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading a valid store.                                                                      */

static void loads_valid_store_with_every_document_kind(void **state) {
        struct fixture *fx = *state;
        sg_store *s = load_ok(fx);
        char want[SG_PROFILE_ARN_MAX + 1];

        assert_int_equal(s->n_profiles, 2);
        assert_int_equal(s->n_cscs, 1);
        assert_int_equal(s->n_functions, 2);
        assert_int_equal(s->n_revocations, 2);

        const sg_profile *p = sg_store_find_profile(s, "LambdaProductionProfile", fx->version);
        assert_non_null(p);
        assert_string_equal(p->platform_id, SG_PLATFORM_LAMBDA);
        assert_int_equal(p->validity_value, 135);
        assert_int_equal(p->validity_unit, SG_PERIOD_MONTHS);
        assert_non_null(p->key);
        assert_non_null(sg_store_find_profile(s, "OtherProfile", fx->version2));
        assert_null(sg_store_find_profile(s, "OtherProfile", fx->version));

        const sg_csc *c = sg_store_find_csc(s, CSC_ID);
        assert_non_null(c);
        assert_string_equal(c->description, "prod");
        assert_int_equal(c->policy, SG_POLICY_ENFORCE);
        assert_int_equal(c->n_publishers, 2);
        snprintf(want, sizeof(want), "LambdaProductionProfile/%s", fx->version);
        assert_string_equal(c->publishers[0], want);
        snprintf(want, sizeof(want), "OtherProfile/%s", fx->version2);
        assert_string_equal(c->publishers[1], want);

        const sg_function *f1 = sg_store_find_function(s, "f1"), *f2 = sg_store_find_function(s, "f2");
        assert_non_null(f1);
        assert_non_null(f2);
        assert_string_equal(f1->csc_id, CSC_ID);
        assert_string_equal(f2->csc_id, "");
        assert_null(sg_store_find_function(s, "f3"));

        bool saw_profile = false, saw_signature = false;
        for (size_t i = 0; i < s->n_revocations; i++) {
                const sg_revocation *v = &s->revocations[i];
                if (v->type == SG_REVOKE_PROFILE) {
                        int64_t t;
                        assert_int_equal(sg_time_parse("2024-05-20T00:00:00Z", &t), 0);
                        assert_string_equal(v->profile_name, "OtherProfile");
                        assert_string_equal(v->profile_version, fx->version2);
                        assert_time_equal(v->effective_time, t);
                        saw_profile = true;
                } else {
                        assert_string_equal(v->job_id, JOB_REVOKED);
                        saw_signature = true;
                }
        }
        assert_true(saw_profile && saw_signature);
        sg_store_free(s);
}

static void loads_empty_directory_as_empty_store(void **state) {
        struct fixture *fx = *state;
        sg_store *s = load_ok(fx);
        assert_int_equal(s->n_profiles + s->n_cscs + s->n_functions + s->n_revocations, 0);
        sg_store_free(s);
}

static void skips_writers_temp_and_hidden_files(void **state) {
        struct fixture *fx = *state;
        write_rel(fx->dirfd, "functions/.x.json.tmp", "{ half a docu");
        write_rel(fx->dirfd, "functions/.hidden", "not json at all");
        write_rel(fx->dirfd, "functions/f9.json.tmp", "{\"FunctionName\":");
        write_rel(fx->dirfd, "code-signing-configs/." CSC_ID ".json.0a1b2c3d4e5f.tmp", "[");
        write_rel(fx->dirfd, "signing-profiles/.editor-swap", "\x01\x02");
        write_rel(fx->dirfd, "revocations/.r3.json", "{\"type\":\"nonsense\"}");

        sg_store *s = load_ok(fx);
        assert_int_equal(s->n_profiles, 2);
        assert_int_equal(s->n_cscs, 1);
        assert_int_equal(s->n_functions, 2);
        assert_int_equal(s->n_revocations, 2);
        sg_store_free(s);
}

static void loads_csc_with_exactly_20_publishers(void **state) {
        struct fixture *fx = *state;
        char list[4096];
        size_t n = 0;

        n += (size_t) snprintf(list + n, sizeof(list) - n, "[\"LambdaProductionProfile/%s\"", fx->version);
        for (int i = 1; i < SG_CSC_MAX_PUBLISHERS; i++)
                n += (size_t) snprintf(list + n, sizeof(list) - n, ",\"Profile%02d/aaaaaaaa%c%c\"", i, 'a' + i / 8,
                                       'a' + i % 8);
        n += (size_t) snprintf(list + n, sizeof(list) - n, "]");
        assert_true(n < sizeof(list));
        char *csc = csc_text(fx, list);
        write_rel(fx->dirfd, "code-signing-configs/" CSC_ID ".json", csc);
        free(csc);

        sg_store *s = load_ok(fx);
        const sg_csc *c = sg_store_find_csc(s, CSC_ID);
        assert_non_null(c);
        assert_int_equal(c->n_publishers, SG_CSC_MAX_PUBLISHERS);
        assert_string_equal(c->publishers[19], "Profile19/aaaaaaaacd");
        sg_store_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Bad stores: one table row per bad file, each added to an otherwise valid store.             */

struct bad_row {
        const char *name;
        const char *path;    /* the file written (relative to the store) */
        const char *content; /* NULL: built by make() */
        void (*make)(struct fixture *fx);
        const char *names;   /* a fragment the error must contain (the file) */
        const char *also;    /* and a second one (the problem), or NULL */
};

static void make_profile_with_other_keys_version(struct fixture *fx) {
        /* The document claims key2's version but carries key's public key, under the file name of
         * the version it claims: only the version check can catch it. */
        char rel[128];
        cJSON *doc = profile_document("LambdaProductionProfile", fx->key, fx->version2);
        snprintf(rel, sizeof(rel), "signing-profiles/LambdaProductionProfile@%s.json", fx->version2);
        write_json(fx->dirfd, rel, doc);
        cJSON_Delete(doc);
}

static void make_profile_in_wrong_file(struct fixture *fx) {
        cJSON *doc = profile_document("LambdaProductionProfile", fx->key, NULL);
        write_json(fx->dirfd, "signing-profiles/Impostor@aaaaaaaaaa.json", doc);
        cJSON_Delete(doc);
}

static void make_csc_with_21_publishers(struct fixture *fx) {
        char list[4096];
        size_t n = 0;
        n += (size_t) snprintf(list + n, sizeof(list) - n, "[\"LambdaProductionProfile/%s\"", fx->version);
        for (int i = 1; i <= SG_CSC_MAX_PUBLISHERS; i++)
                n += (size_t) snprintf(list + n, sizeof(list) - n, ",\"Profile%02d/aaaaaaaa%c%c\"", i, 'a' + i / 8,
                                       'a' + i % 8);
        n += (size_t) snprintf(list + n, sizeof(list) - n, "]");
        assert_true(n < sizeof(list));
        char *csc = csc_text(fx, list);
        write_rel(fx->dirfd, "code-signing-configs/" CSC_ID ".json", csc);
        free(csc);
}

static void make_csc_with_wrong_description_type(struct fixture *fx) {
        char *csc = csc_text(fx, NULL);
        char *d = strstr(csc, "\"prod\"");
        assert_non_null(d);
        memcpy(d, "123456", 6); /* "Description":123456 */
        write_rel(fx->dirfd, "code-signing-configs/" CSC_ID ".json", csc);
        free(csc);
}

static void make_symlinked_document(struct fixture *fx) {
        write_rel(fx->dirfd, "elsewhere.json", "{\"FunctionName\":\"f3\"}");
        if (symlinkat("../elsewhere.json", fx->dirfd, "functions/f3.json") < 0)
                fail_msg("symlink: %s", strerror(errno));
}

static void make_directory_named_like_document(struct fixture *fx) {
        if (mkdirat(fx->dirfd, "functions/f3.json", 0755) < 0)
                fail_msg("mkdir: %s", strerror(errno));
}

static const struct bad_row bad_rows[] = {
        {"rejects_invalid_json_naming_the_file", "functions/f1.json", "{\"FunctionName\": \"f1\"", NULL,
         "functions/f1.json", "JSON"},
        {"rejects_trailing_bytes_after_json_naming_the_file", "functions/f1.json", "{\"FunctionName\":\"f1\"} {}", NULL,
         "functions/f1.json", "JSON"},
        {"rejects_empty_file_naming_the_file", "revocations/r1.json", "", NULL, "revocations/r1.json", NULL},
        {"rejects_non_object_document_naming_the_file", "revocations/r1.json", "[]", NULL, "revocations/r1.json", NULL},
        {"rejects_unknown_field_naming_the_file_and_field", "functions/f1.json",
         "{\"FunctionName\":\"f1\",\"Runtime\":\"python3.12\"}", NULL, "functions/f1.json", "Runtime"},
        {"rejects_duplicate_field_naming_the_file", "functions/f1.json", "{\"FunctionName\":\"f1\",\"FunctionName\":\"f1\"}",
         NULL, "functions/f1.json", "FunctionName"},
        {"rejects_missing_required_field_naming_the_file", "functions/f1.json", "{\"Layers\":[]}", NULL,
         "functions/f1.json", "FunctionName"},
        {"rejects_wrong_type_in_function_naming_the_file", "functions/f1.json",
         "{\"FunctionName\":\"f1\",\"Layers\":\"shared\"}", NULL, "functions/f1.json", "Layers"},
        {"rejects_wrong_type_in_csc_naming_the_file", "code-signing-configs/" CSC_ID ".json", NULL,
         make_csc_with_wrong_description_type, "code-signing-configs/" CSC_ID ".json", "Description"},
        {"rejects_wrong_type_in_revocation_naming_the_file", "revocations/r2.json",
         "{\"type\":\"profile\",\"profileName\":\"OtherProfile\",\"profileVersion\":\"aaaaaaaaaa\",\"effectiveTime\":5}",
         NULL, "revocations/r2.json", "effectiveTime"},
        {"rejects_unknown_revocation_type_naming_the_file", "revocations/r2.json",
         "{\"type\":\"everything\",\"jobId\":\"" JOB_REVOKED "\"}", NULL, "revocations/r2.json", NULL},
        {"rejects_profile_whose_version_is_not_its_keys_naming_the_file", NULL, NULL,
         make_profile_with_other_keys_version, "signing-profiles/LambdaProductionProfile@", "publicKey"},
        {"rejects_profile_in_wrong_file_name", NULL, NULL, make_profile_in_wrong_file,
         "signing-profiles/Impostor@aaaaaaaaaa.json", "signing-profiles/LambdaProductionProfile@"},
        {"rejects_function_in_wrong_file_name", "functions/f3.json", "{\"FunctionName\":\"f1\"}", NULL,
         "functions/f3.json", "functions/f1.json"},
        {"rejects_csc_in_wrong_file_name", "code-signing-configs/csc-00000000000000000.json", NULL, NULL,
         "code-signing-configs/csc-00000000000000000.json", "code-signing-configs/" CSC_ID ".json"},
        {"rejects_function_bound_to_missing_csc_naming_the_file", "functions/f3.json",
         "{\"FunctionName\":\"f3\",\"CodeSigningConfigArn\":\"csc-00000000000000001\"}", NULL, "functions/f3.json",
         "csc-00000000000000001"},
        {"rejects_csc_with_21_publishers_naming_the_file", NULL, NULL, make_csc_with_21_publishers,
         "code-signing-configs/" CSC_ID ".json", "20"},
        {"rejects_non_json_file_in_functions", "functions/README.txt", "notes\n", NULL, "functions/README.txt", NULL},
        {"rejects_valid_document_under_non_json_name", "revocations/r3.txt",
         "{\"type\":\"signature\",\"jobId\":\"" JOB_REVOKED "\"}", NULL, "revocations/r3.txt", NULL},
        {"rejects_non_json_file_in_signing_profiles", "signing-profiles/key.pem", "-----BEGIN PUBLIC KEY-----\n", NULL,
         "signing-profiles/key.pem", NULL},
        {"rejects_symlinked_document_naming_the_file", NULL, NULL, make_symlinked_document, "functions/f3.json", NULL},
        {"rejects_directory_named_like_a_document", NULL, NULL, make_directory_named_like_document,
         "functions/f3.json", NULL},
};

/* The bad-row tests get their row through a fixture that remembers it. */
struct bad_fixture {
        struct fixture *fx;
        const struct bad_row *row;
};

static int setup_bad(void **state) {
        const struct bad_row *row = *state;
        struct bad_fixture *bf = calloc(1, sizeof(*bf));
        assert_non_null(bf);
        bf->row = row;
        setup_with_store((void **) &bf->fx);
        *state = bf;
        return 0;
}

static int teardown_bad(void **state) {
        struct bad_fixture *bf = *state;
        teardown((void **) &bf->fx);
        free(bf);
        return 0;
}

static void bad_row_fails_naming_the_file(void **state) {
        struct bad_fixture *bf = *state;
        const struct bad_row *row = bf->row;

        if (row->make)
                row->make(bf->fx);
        else if (row->content)
                write_rel(bf->fx->dirfd, row->path, row->content);
        else {
                /* The valid CSC document, under another CSC's file name. */
                char *csc = csc_text(bf->fx, NULL);
                write_rel(bf->fx->dirfd, row->path, csc);
                free(csc);
        }
        assert_load_fails_naming(bf->fx, row->names, row->also);
}

/* ------------------------------------------------------------------------------------------ */
/* sg_store_write.                                                                              */

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

static void list_dir(int dirfd, const char *sub, char *out, size_t len) {
        int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        DIR *d = fdopendir(fd);
        assert_non_null(d);
        struct dirent *de;
        size_t o = 0;
        char names[16][256];
        size_t n = 0;
        out[0] = '\0';
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 && n < 16)
                        snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
        closedir(d);
        qsort(names, n, sizeof(names[0]), compare_names);
        for (size_t i = 0; i < n; i++)
                o += (size_t) snprintf(out + o, len - o, "%s%s", i ? " " : "", names[i]);
}

static void write_leaves_no_temp_file_and_reloads(void **state) {
        struct fixture *fx = *state;
        char listing[1024];
        struct stat st;

        cJSON *f1 = cJSON_Parse("{\"FunctionName\":\"f1\",\"CodeSigningConfigArn\":null,\"Layers\":[]}");
        assert_non_null(f1);
        assert_int_equal(sg_store_write(fx->dirfd, "functions", "f1.json", f1), 0);
        cJSON_Delete(f1);

        list_dir(fx->dirfd, "functions", listing, sizeof(listing));
        assert_string_equal(listing, "f1.json");
        assert_int_equal(fstatat(fx->dirfd, "functions/f1.json", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);

        char *text = NULL;
        size_t len = 0;
        assert_int_equal(sg_read_file(fx->dirfd, "functions/f1.json", 4096, &text, &len), 0);
        assert_true(len > 0);
        assert_int_equal(text[len - 1], '\n');
        free(text);

        sg_store *s = load_ok(fx);
        assert_int_equal(s->n_functions, 1);
        assert_non_null(sg_store_find_function(s, "f1"));
        sg_store_free(s);
}

static void write_replaces_document_and_reload_sees_new_content(void **state) {
        struct fixture *fx = *state;
        char listing[1024];

        /* The whole valid store written through sg_store_write, then f2 rebound to the CSC. */
        cJSON *doc = profile_document("LambdaProductionProfile", fx->key, NULL);
        assert_int_equal(sg_store_write(fx->dirfd, "signing-profiles", fx->profile_file + strlen("signing-profiles/"), doc),
                         0);
        cJSON_Delete(doc);
        char *csc = csc_text(fx, NULL);
        doc = cJSON_Parse(csc);
        free(csc);
        assert_non_null(doc);
        assert_int_equal(sg_store_write(fx->dirfd, "code-signing-configs", CSC_ID ".json", doc), 0);
        cJSON_Delete(doc);
        doc = cJSON_Parse("{\"FunctionName\":\"f2\",\"CodeSigningConfigArn\":null}");
        assert_int_equal(sg_store_write(fx->dirfd, "functions", "f2.json", doc), 0);
        cJSON_Delete(doc);

        sg_store *s = load_ok(fx);
        assert_string_equal(sg_store_find_function(s, "f2")->csc_id, "");
        sg_store_free(s);

        doc = cJSON_Parse("{\"FunctionName\":\"f2\",\"CodeSigningConfigArn\":\"" CSC_AWS_ARN "\"}");
        assert_int_equal(sg_store_write(fx->dirfd, "functions", "f2.json", doc), 0);
        cJSON_Delete(doc);

        list_dir(fx->dirfd, "functions", listing, sizeof(listing));
        assert_string_equal(listing, "f2.json");
        list_dir(fx->dirfd, "code-signing-configs", listing, sizeof(listing));
        assert_string_equal(listing, CSC_ID ".json");
        s = load_ok(fx);
        assert_int_equal(s->n_profiles, 1);
        assert_int_equal(s->n_cscs, 1);
        assert_string_equal(sg_store_find_function(s, "f2")->csc_id, CSC_ID);
        sg_store_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* ARNs.                                                                                        */

static void profile_arn_canonical_accepts_seed_style_arns(void **state) {
        static const struct {
                const char *in, *want;
        } ok[] = {
                {"arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/abc234defg",
                 "LambdaProductionProfile/abc234defg"},
                {"LambdaProductionProfile/abc234defg", "LambdaProductionProfile/abc234defg"},
                {"arn:aws:signer:eu-west-1:222222222222:/signing-profiles/P_1/aaaaaaaaaa", "P_1/aaaaaaaaaa"},
                {"arn:signgate:signer:local:000000000000:/signing-profiles/ab/2345672345", "ab/2345672345"},
                {"arn:aws:signer:us-east-1:111111111111:/signing-profiles/"
                 "A234567890123456789012345678901234567890123456789012345678901234/zzzzzzzzzz",
                 "A234567890123456789012345678901234567890123456789012345678901234/zzzzzzzzzz"},
        };
        (void) state;
        for (size_t i = 0; i < N_ROWS(ok); i++) {
                char got[SG_PROFILE_ARN_MAX + 1] = "";
                int r = sg_profile_arn_canonical(ok[i].in, got);
                if (r != 0)
                        fail_msg("'%s' was rejected with %d", ok[i].in, r);
                if (strcmp(got, ok[i].want) != 0)
                        fail_msg("'%s' gave '%s', want '%s'", ok[i].in, got, ok[i].want);
        }
}

static void profile_arn_canonical_rejects_malformed_arns(void **state) {
        static const char *const bad[] = {
                "",
                "LambdaProductionProfile",
                "LambdaProductionProfile/",
                "/abc234defg",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/abc123defg", /* '1' is not base32 */
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/ABC234DEFG",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/abc234def",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/abc234defgh",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/LambdaProductionProfile/abc234defg/extra",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles//abc234defg",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/Lambda-Prod/abc234defg",
                "arn:aws:signer:us-east-1:111111111111:/signing-profiles/P/abc234defg",
                "arn:aws:signer:us-east-1:111111111111:/profiles/LambdaProductionProfile/abc234defg",
                ("arn:aws:signer:us-east-1:111111111111:/signing-profiles/"
                 "A2345678901234567890123456789012345678901234567890123456789012345/zzzzzzzzzz"), /* 65-char name */
                "Lambda Prod/abc234defg",
                "LambdaProductionProfile/abc234defg ",
                "LambdaProductionProfile@abc234defg",
        };
        (void) state;
        for (size_t i = 0; i < N_ROWS(bad); i++) {
                char got[SG_PROFILE_ARN_MAX + 1] = "unchanged";
                int r = sg_profile_arn_canonical(bad[i], got);
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d ('%s'), want -EINVAL", bad[i], r, got);
                assert_string_equal(got, "unchanged");
        }
        assert_int_equal(sg_profile_arn_canonical(NULL, (char[SG_PROFILE_ARN_MAX + 1]){0}), -EINVAL);
}

static void csc_arn_id_accepts_lambda_arns_and_bare_ids(void **state) {
        static const char *const ok[] = {
                "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-0123456789abcdef0",
                "csc-0123456789abcdef0",
                "arn:aws-us-gov:lambda:us-gov-west-1:111111111111:code-signing-config:csc-0123456789abcdef0",
        };
        char arn[256], got[22];
        (void) state;
        for (size_t i = 0; i < N_ROWS(ok); i++) {
                memset(got, 0, sizeof(got));
                int r = sg_csc_arn_id(ok[i], got);
                if (r != 0)
                        fail_msg("'%s' was rejected with %d", ok[i], r);
                assert_string_equal(got, "csc-0123456789abcdef0");
        }
        /* The ARN signgate itself writes reads back as its id. */
        sg_csc_arn("csc-fedcba98765432100", arn, sizeof(arn));
        assert_int_equal(sg_csc_arn_id(arn, got), 0);
        assert_string_equal(got, "csc-fedcba98765432100");
}

static void csc_arn_id_rejects_malformed_arns(void **state) {
        static const char *const bad[] = {
                "",
                "csc-",
                "csc-0123456789abcdef",   /* 16 hex */
                "csc-0123456789abcdef01", /* 18 hex */
                "csc-0123456789ABCDEF0",
                "csc-0123456789abcdefg",
                "0123456789abcdef0",
                "CSC-0123456789abcdef0",
                "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-abc123",
                "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-0123456789abcdef0:1",
                "arn:aws:lambda:us-east-1:111111111111:function:csc-0123456789abcdef0",
                "arn:aws:lambda:us-east-1:111111111111:code-signing-config:",
                " csc-0123456789abcdef0",
        };
        (void) state;
        for (size_t i = 0; i < N_ROWS(bad); i++) {
                char got[22] = "unchanged";
                int r = sg_csc_arn_id(bad[i], got);
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d ('%s'), want -EINVAL", bad[i], r, got);
                assert_string_equal(got, "unchanged");
        }
        char got[22];
        assert_int_equal(sg_csc_arn_id(NULL, got), -EINVAL);
}

/* ------------------------------------------------------------------------------------------ */
/* First-seen log.                                                                              */

static void digest_of(unsigned char seed, unsigned char out[SG_DIGEST_LEN], char hex[SG_DIGEST_HEX_LEN + 1]) {
        for (size_t i = 0; i < SG_DIGEST_LEN; i++)
                out[i] = (unsigned char) (seed + i * 13);
        sg_hex_encode(out, SG_DIGEST_LEN, hex);
}

static void firstseen_returns_earliest_time_for_digest(void **state) {
        struct fixture *fx = *state;
        unsigned char d[SG_DIGEST_LEN], other[SG_DIGEST_LEN];
        char hd[SG_DIGEST_HEX_LEN + 1], ho[SG_DIGEST_HEX_LEN + 1], log[2048];
        int64_t got = 0, want;

        digest_of(1, d, hd);
        digest_of(2, other, ho);
        snprintf(log, sizeof(log),
                 "%s 2024-03-01T00:00:00Z\n"
                 "%s 2023-01-01T00:00:00Z\n" /* another digest, earlier */
                 "%s 2024-02-01T10:20:30Z\n" /* the earliest for d, not first in the file */
                 "%s 2024-05-01T00:00:00Z\n",
                 hd, ho, hd, hd);
        write_rel(fx->dirfd, "first-seen.log", log);
        assert_int_equal(sg_firstseen_find(fx->dirfd, "first-seen.log", d, &got), 0);
        assert_int_equal(sg_time_parse("2024-02-01T10:20:30Z", &want), 0);
        assert_time_equal(got, want);
}

static void firstseen_returns_enoent_for_absent_digest(void **state) {
        struct fixture *fx = *state;
        unsigned char d[SG_DIGEST_LEN], other[SG_DIGEST_LEN];
        char hd[SG_DIGEST_HEX_LEN + 1], ho[SG_DIGEST_HEX_LEN + 1], log[512];
        int64_t got = 12345;

        digest_of(1, d, hd);
        digest_of(2, other, ho);
        snprintf(log, sizeof(log), "%s 2024-03-01T00:00:00Z\n", ho);
        write_rel(fx->dirfd, "first-seen.log", log);
        assert_int_equal(sg_firstseen_find(fx->dirfd, "first-seen.log", d, &got), -ENOENT);
        assert_int_equal(got, 12345);
}

static void firstseen_returns_enoent_without_log(void **state) {
        struct fixture *fx = *state;
        unsigned char d[SG_DIGEST_LEN];
        char hd[SG_DIGEST_HEX_LEN + 1];
        int64_t got = 12345;

        digest_of(1, d, hd);
        assert_int_equal(sg_firstseen_find(fx->dirfd, "first-seen.log", d, &got), -ENOENT);
        assert_int_equal(got, 12345);
}

static void firstseen_skips_malformed_lines(void **state) {
        struct fixture *fx = *state;
        unsigned char d[SG_DIGEST_LEN];
        char hd[SG_DIGEST_HEX_LEN + 1], upper[SG_DIGEST_HEX_LEN + 1], log[4096];
        int64_t got = 0, want;

        digest_of(1, d, hd);
        for (size_t i = 0; i <= SG_DIGEST_HEX_LEN; i++)
                upper[i] = (char) (hd[i] >= 'a' && hd[i] <= 'f' ? hd[i] - 'a' + 'A' : hd[i]);
        /* Every line but one is malformed and names an earlier time than the good one. */
        snprintf(log, sizeof(log),
                 "garbage\n"
                 "\n"
                 "%s 2001-01-01T00:00:00Z\n"    /* uppercase hex */
                 "%s\t2002-01-01T00:00:00Z\n"   /* tab separator */
                 "%s  2003-01-01T00:00:00Z\n"   /* two spaces */
                 "%s 2004-13-01T00:00:00Z\n"    /* month 13 */
                 "%s 2005-01-01T00:00:00Zjunk\n" /* trailing junk */
                 "%s 2006-01-01\n"              /* date only */
                 "%.95s 2007-01-01T00:00:00Z\n" /* truncated digest */
                 "%s 2024-04-01T00:00:00Z\n",  /* the one good line */
                 upper, hd, hd, hd, hd, hd, hd, hd);
        write_rel(fx->dirfd, "first-seen.log", log);
        assert_int_equal(sg_firstseen_find(fx->dirfd, "first-seen.log", d, &got), 0);
        assert_int_equal(sg_time_parse("2024-04-01T00:00:00Z", &want), 0);
        assert_time_equal(got, want);
}

static void firstseen_skips_overlong_line_whose_tail_looks_like_a_record(void **state) {
        struct fixture *fx = *state;
        unsigned char d[SG_DIGEST_LEN];
        char hd[SG_DIGEST_HEX_LEN + 1], log[4096];
        int64_t got = 0, want;

        digest_of(1, d, hd);
        /* One malformed line of 255 'x' followed by what would be a record: it is still one line
         * (no newline before the digest), so the record inside it must not count. */
        snprintf(log, sizeof(log), "%255s%s 2001-01-01T00:00:00Z\n%s 2024-04-01T00:00:00Z\n", "", hd, hd);
        memset(log, 'x', 255);
        write_rel(fx->dirfd, "first-seen.log", log);
        assert_int_equal(sg_firstseen_find(fx->dirfd, "first-seen.log", d, &got), 0);
        assert_int_equal(sg_time_parse("2024-04-01T00:00:00Z", &want), 0);
        assert_time_equal(got, want);
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                CMUnitTestFunction fn;
                CMFixtureFunction setup;
        } plain[] = {
                {"loads_valid_store_with_every_document_kind", loads_valid_store_with_every_document_kind, setup_with_store},
                {"loads_empty_directory_as_empty_store", loads_empty_directory_as_empty_store, setup},
                {"skips_writers_temp_and_hidden_files", skips_writers_temp_and_hidden_files, setup_with_store},
                {"loads_csc_with_exactly_20_publishers", loads_csc_with_exactly_20_publishers, setup_with_store},
                {"write_leaves_no_temp_file_and_reloads", write_leaves_no_temp_file_and_reloads, setup},
                {"write_replaces_document_and_reload_sees_new_content", write_replaces_document_and_reload_sees_new_content,
                 setup},
                {"profile_arn_canonical_accepts_seed_style_arns", profile_arn_canonical_accepts_seed_style_arns, setup},
                {"profile_arn_canonical_rejects_malformed_arns", profile_arn_canonical_rejects_malformed_arns, setup},
                {"csc_arn_id_accepts_lambda_arns_and_bare_ids", csc_arn_id_accepts_lambda_arns_and_bare_ids, setup},
                {"csc_arn_id_rejects_malformed_arns", csc_arn_id_rejects_malformed_arns, setup},
                {"firstseen_returns_earliest_time_for_digest", firstseen_returns_earliest_time_for_digest, setup},
                {"firstseen_returns_enoent_for_absent_digest", firstseen_returns_enoent_for_absent_digest, setup},
                {"firstseen_returns_enoent_without_log", firstseen_returns_enoent_without_log, setup},
                {"firstseen_skips_malformed_lines", firstseen_skips_malformed_lines, setup},
                {"firstseen_skips_overlong_line_whose_tail_looks_like_a_record",
                 firstseen_skips_overlong_line_whose_tail_looks_like_a_record, setup},
        };
        struct CMUnitTest tests[N_ROWS(plain) + N_ROWS(bad_rows)];
        size_t n = 0;

        for (size_t i = 0; i < N_ROWS(plain); i++)
                tests[n++] = (struct CMUnitTest){plain[i].name, plain[i].fn, plain[i].setup, teardown, NULL};
        for (size_t i = 0; i < N_ROWS(bad_rows); i++)
                tests[n++] = (struct CMUnitTest){bad_rows[i].name, bad_row_fails_naming_the_file, setup_bad, teardown_bad,
                                                 (void *) &bad_rows[i]};
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests_name("sg_store", tests, NULL, NULL);
}
