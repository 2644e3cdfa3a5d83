/* Unit tests for daemon/api_route.c: which route a method and path take (DESIGN §10), what a
 * JSON body may hold, and which policy store document each policy-changing body becomes.
 *
 * Every refusal is checked whole: return value, HTTP status, error Code and Message, as a
 * client receives them. Expected documents are written out by hand from DESIGN §7.
 *
 * The store the conversions run against is built once (group setup) through the store's own
 * parsers: profile UnitProfile (a key generated at start-up), code signing config CSC_ID
 * allowing it, function fn-bound bound to it with layer "lib", function fn-free bound to
 * none, and a revocation of UnitProfile from 2024-01-01. The clock is NOW.
 *
 * Run one test alone with: unit-daemon-test-api-route TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "api_route.h"
#include "sg_common.h"
#include "sg_signature.h"
#include "sg_store.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

#define NOW ((int64_t) 1767225600) /* 2026-01-01T00:00:00Z */
#define NOW_TEXT "2026-01-01T00:00:00Z"
#define PROFILE "UnitProfile"
#define CSC_ID "csc-0123456789abcdef0"
#define CSC_ARN "arn:signgate:lambda:local:000000000000:code-signing-config:" CSC_ID
#define NEW_ID "csc-00000000000000b07"
#define JOB "0b9d3f4e-5a6c-4d7e-8f90-a1b2c3d4e5f6"

static sg_store *store;
static char version[11];
static char *profile_text; /* the profile document the store holds, unformatted */

/* ---- the store ---------------------------------------------------------------------- */

static cJSON *parse_or_fail(const char *text) {
        cJSON *j = cJSON_Parse(text);
        if (!j)
                fail_msg("not JSON: %s", text);
        return j;
}

static int build_store(void **state) {
        (void) state;
        EVP_PKEY *key = NULL;
        char *pem = NULL, text[1024];
        sg_error err = {0};
        sg_profile p;
        sg_csc c;
        sg_function f;

        if (sg_key_generate(&key) < 0 || sg_key_profile_version(key, version) < 0 || sg_key_public_pem(key, &pem) < 0)
                return -1;
        EVP_PKEY_free(key);
        cJSON *doc = cJSON_CreateObject(), *vp;
        cJSON_AddStringToObject(doc, "profileName", PROFILE);
        cJSON_AddStringToObject(doc, "profileVersion", version);
        cJSON_AddStringToObject(doc, "platformId", "Lambda-SHA384-ECDSA");
        vp = cJSON_AddObjectToObject(doc, "signatureValidityPeriod");
        cJSON_AddNumberToObject(vp, "value", 5);
        cJSON_AddStringToObject(vp, "type", "YEARS");
        cJSON_AddStringToObject(doc, "publicKey", pem);
        free(pem);
        profile_text = cJSON_PrintUnformatted(doc);
        store = sg_store_new();
        if (!profile_text || !store || sg_profile_from_json(doc, &p, &err) < 0 || sg_store_add_profile(store, &p) < 0)
                return -1;
        cJSON_Delete(doc);

        snprintf(text, sizeof(text),
                 "{\"CodeSigningConfigId\":\"%s\",\"Description\":\"unit\",\"AllowedPublishers\":"
                 "{\"SigningProfileVersionArns\":[\"%s/%s\"]},\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Enforce\"},"
                 "\"LastModified\":\"2025-01-01T00:00:00Z\"}",
                 CSC_ID, PROFILE, version);
        doc = cJSON_Parse(text);
        if (!doc || sg_csc_from_json(doc, &c, &err) < 0 || sg_store_add_csc(store, &c) < 0)
                return -1;
        cJSON_Delete(doc);

        const char *functions[] = {"{\"FunctionName\":\"fn-bound\",\"CodeSigningConfigArn\":\"" CSC_ARN "\",\"Layers\":[\"lib\"]}",
                                   "{\"FunctionName\":\"fn-free\",\"CodeSigningConfigArn\":null,\"Layers\":[]}"};
        for (size_t i = 0; i < N_ROWS(functions); i++) {
                doc = cJSON_Parse(functions[i]);
                if (!doc || sg_function_from_json(doc, &f, &err) < 0 || sg_store_add_function(store, &f) < 0)
                        return -1;
                cJSON_Delete(doc);
        }

        /* Only the loader makes revocations: fill the array the way sg_store_free frees it. */
        snprintf(text, sizeof(text),
                 "{\"type\":\"profile\",\"profileName\":\"%s\",\"profileVersion\":\"%s\","
                 "\"effectiveTime\":\"2024-01-01T00:00:00Z\",\"reason\":\"unit\"}",
                 PROFILE, version);
        doc = cJSON_Parse(text);
        store->revocations = calloc(1, sizeof(*store->revocations));
        if (!doc || !store->revocations || sg_revocation_from_json(doc, &store->revocations[0], &err) < 0)
                return -1;
        store->n_revocations = 1;
        cJSON_Delete(doc);
        return 0;
}

static int free_store(void **state) {
        (void) state;
        sg_store_free(store);
        cJSON_free(profile_text);
        return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Fails unless the call returned want_r and filled the refusal a client would receive. */
static void assert_refused(int r, const api_problem *p, int want_r, unsigned status, const char *code, const char *message) {
        if (r != want_r)
                fail_msg("returned %d, want %d (%u %s \"%s\")", r, want_r, status, code, message);
        if (p->status != status || strcmp(p->code, code) != 0 || strcmp(p->message, message) != 0)
                fail_msg("got  %u %s \"%s\"\n      want %u %s \"%s\"", p->status, p->code, p->message, status, code, message);
}

static api_match match_or_fail(const char *method, const char *path) {
        api_match m;
        api_problem p;
        int r = api_route_match(method, path, &m, &p);
        if (r != 0)
                fail_msg("%s %s: %d %u \"%s\", want a route", method, path, r, p.status, p.message);
        return m;
}

/* Fails unless j prints (unformatted) exactly as want. */
static void assert_json(const cJSON *j, const char *want) {
        char *got = cJSON_PrintUnformatted(j);
        assert_non_null(got);
        if (strcmp(got, want) != 0)
                fail_msg("got  %s\n      want %s", got, want);
        cJSON_free(got);
}

/* Runs api_route_change for METHOD PATH with body text (NULL: none). */
static int change(const char *method, const char *path, const char *body, const char *new_id, api_change *c, api_problem *p) {
        api_match m = match_or_fail(method, path);
        api_change_ctx ctx = {.now = NOW, .new_csc_id = new_id};
        return api_route_change(store, &m, body, body ? strlen(body) : 0, &ctx, c, p);
}

static void change_or_fail(const char *method, const char *path, const char *body, api_change *c) {
        api_problem p;
        int r = change(method, path, body, NEW_ID, c, &p);
        if (r != 0)
                fail_msg("%s %s %s: %d %u \"%s\", want a change", method, path, body ? body : "", r, p.status, p.message);
}

static void assert_change(const api_change *c, const char *subdir, const char *file, unsigned status, const char *action,
                          const char *target) {
        assert_false(c->unchanged);
        assert_string_equal(c->subdir, subdir);
        assert_string_equal(c->file, file);
        assert_int_equal(c->status, status);
        assert_string_equal(c->action, action);
        assert_string_equal(c->target, target);
}

/* ---- routing ---------------------------------------------------------------------------- */

static void every_route_matches_its_method_and_path_and_captures_its_argument(void **state) {
        (void) state;
        static const struct {
                const char *method, *path;
                api_endpoint ep;
                const char *arg;
        } rows[] = {
                {"PUT", "/v1/functions/my-function/code", API_EP_PUT_FUNCTION_CODE, "my-function"},
                {"POST", "/v1/layers/shared_lib/versions", API_EP_PUBLISH_LAYER_VERSION, "shared_lib"},
                {"POST", "/v1/functions", API_EP_CREATE_FUNCTION, ""},
                {"GET", "/v1/functions", API_EP_LIST_FUNCTIONS, ""},
                {"GET", "/v1/functions/F", API_EP_GET_FUNCTION, "F"},
                {"DELETE", "/v1/functions/F", API_EP_DELETE_FUNCTION, "F"},
                {"PUT", "/v1/functions/F/code-signing-config", API_EP_PUT_FUNCTION_CSC, "F"},
                {"GET", "/v1/functions/F/code-signing-config", API_EP_GET_FUNCTION_CSC, "F"},
                {"DELETE", "/v1/functions/F/code-signing-config", API_EP_DELETE_FUNCTION_CSC, "F"},
                {"POST", "/v1/functions/F/rollback", API_EP_ROLLBACK, "F"},
                {"POST", "/v1/code-signing-configs", API_EP_CREATE_CSC, ""},
                {"GET", "/v1/code-signing-configs", API_EP_LIST_CSCS, ""},
                {"GET", "/v1/code-signing-configs/" CSC_ID, API_EP_GET_CSC, CSC_ID},
                {"PUT", "/v1/code-signing-configs/" CSC_ARN, API_EP_UPDATE_CSC, CSC_ARN},
                {"DELETE", "/v1/code-signing-configs/" CSC_ID, API_EP_DELETE_CSC, CSC_ID},
                {"PUT", "/v1/signing-profiles/" PROFILE, API_EP_PUT_PROFILE, PROFILE},
                {"GET", "/v1/signing-profiles", API_EP_LIST_PROFILES, ""},
                {"POST", "/v1/signing-profiles/" PROFILE "/revoke", API_EP_REVOKE_PROFILE, PROFILE},
                {"POST", "/v1/signatures/" JOB "/revoke", API_EP_REVOKE_SIGNATURE, JOB},
                {"GET", "/v1/decisions", API_EP_DECISIONS, ""},
                {"GET", "/v1/health", API_EP_HEALTH, ""},
                {"GET", "/metrics", API_EP_METRICS, ""},
        };
        assert_int_equal(N_ROWS(rows), API_EP_MAX_); /* DESIGN §10 has one row per endpoint */
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                api_match m = match_or_fail(rows[i].method, rows[i].path);
                if (m.route->endpoint != rows[i].ep || strcmp(m.args[0], rows[i].arg) != 0)
                        fail_msg("%s %s: endpoint %d argument '%s', want %d '%s'", rows[i].method, rows[i].path, m.route->endpoint,
                                 m.args[0], rows[i].ep, rows[i].arg);
                assert_string_equal(m.method, rows[i].method);
                assert_string_equal(m.path, rows[i].path);
                assert_ptr_equal(m.route, &api_routes[rows[i].ep]);
        }
        assert_null(api_routes[API_EP_MAX_].method);
}

static void every_route_states_its_role_and_body(void **state) {
        (void) state;
        static const struct {
                api_endpoint ep;
                int role;
                api_body body;
                bool required;
        } rows[] = {
                {API_EP_PUT_FUNCTION_CODE, API_ROLE_DEPLOYER, API_BODY_PACKAGE, false},
                {API_EP_PUBLISH_LAYER_VERSION, API_ROLE_DEPLOYER, API_BODY_PACKAGE, false},
                {API_EP_CREATE_FUNCTION, API_ROLE_ADMIN, API_BODY_JSON, true},
                {API_EP_LIST_FUNCTIONS, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_GET_FUNCTION, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_DELETE_FUNCTION, API_ROLE_ADMIN, API_BODY_NONE, false},
                {API_EP_PUT_FUNCTION_CSC, API_ROLE_ADMIN, API_BODY_JSON, true},
                {API_EP_GET_FUNCTION_CSC, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_DELETE_FUNCTION_CSC, API_ROLE_ADMIN, API_BODY_NONE, false},
                {API_EP_ROLLBACK, API_ROLE_ADMIN, API_BODY_NONE, false},
                {API_EP_CREATE_CSC, API_ROLE_ADMIN, API_BODY_JSON, true},
                {API_EP_LIST_CSCS, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_GET_CSC, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_UPDATE_CSC, API_ROLE_ADMIN, API_BODY_JSON, true},
                {API_EP_DELETE_CSC, API_ROLE_ADMIN, API_BODY_NONE, false},
                {API_EP_PUT_PROFILE, API_ROLE_ADMIN, API_BODY_JSON, true},
                {API_EP_LIST_PROFILES, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_REVOKE_PROFILE, API_ROLE_ADMIN, API_BODY_JSON, true},
                {API_EP_REVOKE_SIGNATURE, API_ROLE_ADMIN, API_BODY_JSON, false},
                {API_EP_DECISIONS, API_ROLE_READER, API_BODY_NONE, false},
                {API_EP_HEALTH, API_ROLE_NONE, API_BODY_NONE, false},
                {API_EP_METRICS, API_ROLE_NONE, API_BODY_NONE, false},
        };
        assert_int_equal(N_ROWS(rows), API_EP_MAX_);
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                const api_route *rt = &api_routes[rows[i].ep];
                if (rt->role != rows[i].role || rt->body != rows[i].body || rt->body_required != rows[i].required)
                        fail_msg("%s %s: role %d body %d required %d, want %d %d %d", rt->method, rt->pattern, rt->role, rt->body,
                                 rt->body_required, rows[i].role, rows[i].body, rows[i].required);
                assert_true((rt->body == API_BODY_JSON) == (rt->n_keys > 0));
        }
}

static void known_path_with_another_method_is_405(void **state) {
        (void) state;
        static const struct {
                const char *path, *allowed;
        } rows[] = {
                {"/v1/functions/f/code", " PUT "},
                {"/v1/layers/l/versions", " POST "},
                {"/v1/functions", " GET POST "},
                {"/v1/functions/f", " GET DELETE "},
                {"/v1/functions/f/code-signing-config", " GET PUT DELETE "},
                {"/v1/functions/f/rollback", " POST "},
                {"/v1/code-signing-configs", " GET POST "},
                {"/v1/code-signing-configs/c", " GET PUT DELETE "},
                {"/v1/signing-profiles/p", " PUT "},
                {"/v1/signing-profiles", " GET "},
                {"/v1/signing-profiles/p/revoke", " POST "},
                {"/v1/signatures/j/revoke", " POST "},
                {"/v1/decisions", " GET "},
                {"/v1/health", " GET "},
                {"/metrics", " GET "},
        };
        static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"};
        for (size_t i = 0; i < N_ROWS(rows); i++)
                for (size_t k = 0; k < N_ROWS(methods); k++) {
                        char spaced[16], msg[128];
                        api_match m;
                        api_problem p;
                        snprintf(spaced, sizeof(spaced), " %s ", methods[k]);
                        int r = api_route_match(methods[k], rows[i].path, &m, &p);
                        if (strstr(rows[i].allowed, spaced)) {
                                if (r != 0)
                                        fail_msg("%s %s: %d, want a route", methods[k], rows[i].path, r);
                                continue;
                        }
                        snprintf(msg, sizeof(msg), "%s is not allowed on %s", methods[k], rows[i].path);
                        assert_refused(r, &p, -EOPNOTSUPP, 405, "MethodNotAllowedException", msg);
                        assert_null(m.route);
                }
}

static void unknown_paths_are_404_naming_the_path(void **state) {
        (void) state;
        static const char *const rows[] = {
                "/", "", "v1/functions", "/v1", "/v2/functions", "/V1/functions", "/v1/Functions", "/v1/nothing-here",
                "/v1/functions/f/code/extra", "/v1//functions", "//v1/functions", "/v1/functions//", "/v1/functions/f//code",
                "/v1/functions?x=1", "/metrics/x", "/v1/health/x", "/v1/functions/f/code-signing-configs",
                "/a/b/c/d/e/f/g", "/v1/signatures/revoke",
        };
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                char msg[256];
                api_match m;
                api_problem p;
                int r = api_route_match("GET", rows[i], &m, &p);
                snprintf(msg, sizeof(msg), "no such resource: %s", rows[i]);
                assert_refused(r, &p, -ENOENT, 404, "ResourceNotFoundException", msg);
                assert_null(m.route);
        }
}

static void one_trailing_slash_takes_the_same_route_and_two_do_not(void **state) {
        (void) state;
        api_match m = match_or_fail("GET", "/v1/functions/");
        assert_int_equal(m.route->endpoint, API_EP_LIST_FUNCTIONS);
        m = match_or_fail("GET", "/v1/functions/f/");
        assert_int_equal(m.route->endpoint, API_EP_GET_FUNCTION);
        assert_string_equal(m.args[0], "f");
        api_problem p;
        assert_refused(api_route_match("GET", "/v1/functions/f//", &m, &p), &p, -ENOENT, 404, "ResourceNotFoundException",
                       "no such resource: /v1/functions/f//");
}

static void segment_of_191_bytes_is_an_argument_and_192_bytes_is_unknown(void **state) {
        (void) state;
        char path[512], seg[API_SEG_MAX + 1], msg[600];
        memset(seg, 'a', API_SEG_MAX - 1);
        seg[API_SEG_MAX - 1] = '\0';
        snprintf(path, sizeof(path), "/v1/functions/%s", seg);
        api_match m = match_or_fail("GET", path);
        assert_int_equal(strlen(m.args[0]), API_SEG_MAX - 1);
        assert_string_equal(m.args[0], seg);
        /* A valid route, an invalid name: the endpoint says so, not the router. */
        const sg_function *f;
        api_problem p;
        snprintf(msg, sizeof(msg), "'%.80s' is not a valid function name", seg);
        assert_refused(api_route_find_function(store, m.args[0], &f, &p), &p, -EINVAL, 400, "InvalidParameterValueException",
                       msg);

        memset(seg, 'a', API_SEG_MAX);
        seg[API_SEG_MAX] = '\0';
        snprintf(path, sizeof(path), "/v1/functions/%s/code", seg);
        snprintf(msg, sizeof(msg), "no such resource: %s", path);
        assert_refused(api_route_match("PUT", path, &m, &p), &p, -ENOENT, 404, "ResourceNotFoundException", msg);
}

static void path_of_1023_bytes_is_quoted_and_1024_bytes_is_404_without_it(void **state) {
        (void) state;
        char path[API_PATH_MAX + 2], msg[API_MESSAGE_MAX];
        api_match m;
        api_problem p;
        /* A slash every 170 bytes: no route has these segments, and the message quotes them all. */
        for (size_t i = 0; i < API_PATH_MAX - 1; i++)
                path[i] = i % 170 == 0 ? '/' : 's';
        path[API_PATH_MAX - 1] = '\0';
        assert_int_equal(strlen(path), 1023);
        snprintf(msg, sizeof(msg), "no such resource: %s", path);
        assert_refused(api_route_match("GET", path, &m, &p), &p, -ENOENT, 404, "ResourceNotFoundException", msg);
        assert_string_equal(m.path, path);

        path[API_PATH_MAX - 1] = 's';
        path[API_PATH_MAX] = '\0';
        assert_refused(api_route_match("GET", path, &m, &p), &p, -ENAMETOOLONG, 404, "ResourceNotFoundException",
                       "no such resource");
        assert_int_equal(strlen(m.path), API_PATH_MAX - 1); /* cut, still a string */
}

static void methods_are_exact_and_quoted_up_to_15_bytes(void **state) {
        (void) state;
        api_match m;
        api_problem p;
        assert_refused(api_route_match("get", "/v1/health", &m, &p), &p, -EOPNOTSUPP, 405, "MethodNotAllowedException",
                       "get is not allowed on /v1/health");
        assert_refused(api_route_match("GETS", "/v1/health", &m, &p), &p, -EOPNOTSUPP, 405, "MethodNotAllowedException",
                       "GETS is not allowed on /v1/health");
        assert_refused(api_route_match("", "/v1/health", &m, &p), &p, -EOPNOTSUPP, 405, "MethodNotAllowedException",
                       " is not allowed on /v1/health");
        assert_refused(api_route_match("VERYLONGMETHODNAMEXYZ", "/v1/functions", &m, &p), &p, -EOPNOTSUPP, 405,
                       "MethodNotAllowedException", "VERYLONGMETHODN is not allowed on /v1/functions");
        assert_string_equal(m.method, "VERYLONGMETHODN");
}

static void percent_signs_and_odd_bytes_in_arguments_are_captured_verbatim(void **state) {
        (void) state;
        static const char *const args[] = {"%2e%2e", "..", ".", "a b", "caf\xc3\xa9", "\x01\x7f\xff", "{}", "a?b", "a%00b",
                                           "a\\b", "\"quoted\""};
        for (size_t i = 0; i < N_ROWS(args); i++) {
                char path[256], msg[256];
                snprintf(path, sizeof(path), "/v1/functions/%s/code", args[i]);
                api_match m = match_or_fail("PUT", path);
                assert_int_equal(m.route->endpoint, API_EP_PUT_FUNCTION_CODE);
                assert_string_equal(m.args[0], args[i]);
                api_problem p;
                snprintf(msg, sizeof(msg), "'%s' is not a valid name: [A-Za-z0-9_-]{1,64}", args[i]);
                assert_refused(api_route_check_upload(&m, &p), &p, -EINVAL, 400, "InvalidParameterValueException", msg);
        }
}

static void upload_names_follow_the_function_name_rule(void **state) {
        (void) state;
        char name[80], path[128], msg[160];
        api_problem p;
        api_match m = match_or_fail("POST", "/v1/layers/Shared_lib-2/versions");
        assert_int_equal(api_route_check_upload(&m, &p), 0);
        memset(name, 'n', 64);
        name[64] = '\0';
        snprintf(path, sizeof(path), "/v1/functions/%s/code", name);
        m = match_or_fail("PUT", path);
        assert_int_equal(api_route_check_upload(&m, &p), 0);
        name[64] = 'n';
        name[65] = '\0';
        snprintf(path, sizeof(path), "/v1/functions/%s/code", name);
        m = match_or_fail("PUT", path);
        snprintf(msg, sizeof(msg), "'%s' is not a valid name: [A-Za-z0-9_-]{1,64}", name);
        assert_refused(api_route_check_upload(&m, &p), &p, -EINVAL, 400, "InvalidParameterValueException", msg);
}

/* ---- bodies ---------------------------------------------------------------------------- */

static void body_takes_an_object_of_allowed_fields_and_trailing_whitespace(void **state) {
        (void) state;
        static const char body[] = "{\"CodeSigningConfigArn\":null} \n\t\r";
        api_match m = match_or_fail("PUT", "/v1/functions/f/code-signing-config");
        api_problem p;
        cJSON *b = NULL;
        assert_int_equal(api_route_body(&m, body, strlen(body), &b, &p), 0);
        assert_json(b, "{\"CodeSigningConfigArn\":null}");
        cJSON_Delete(b);

        m = match_or_fail("POST", "/v1/functions");
        static const char all[] = "{\"FunctionName\":\"f\",\"CodeSigningConfigArn\":null,\"Layers\":[],\"Runtime\":\"r\","
                                  "\"Role\":\"r\",\"Handler\":\"h\",\"Description\":\"d\"}";
        assert_int_equal(api_route_body(&m, all, strlen(all), &b, &p), 0);
        assert_int_equal(cJSON_GetArraySize(b), 7);
        cJSON_Delete(b);
}

static void empty_body_is_refused_where_required_and_reads_as_empty_object_elsewhere(void **state) {
        (void) state;
        api_problem p;
        cJSON *b = NULL;
        api_match m = match_or_fail("POST", "/v1/functions");
        assert_refused(api_route_body(&m, "", 0, &b, &p), &p, -EINVAL, 400, "InvalidRequestContentException",
                       "POST /v1/functions needs a JSON body");
        assert_null(b);
        m = match_or_fail("POST", "/v1/signatures/" JOB "/revoke");
        assert_int_equal(api_route_body(&m, "", 0, &b, &p), 0);
        assert_json(b, "{}");
        cJSON_Delete(b);
}

static void non_objects_and_trailing_bytes_are_refused(void **state) {
        (void) state;
        static const struct {
                const char *text;
                size_t len; /* 0: strlen */
        } rows[] = {
                {" ", 0},       {"[]", 0},   {"[{}]", 0},   {"1", 0},      {"null", 0},     {"true", 0},  {"\"{}\"", 0},
                {"{", 0},       {"}", 0},    {"{\"a\":}", 0}, {"{\"a\"}", 0}, {"{}}", 0},     {"{} x", 0},  {"{}{}", 0},
                {"{},", 0},     {"{}\v", 0}, {"{}\f", 0},   {"{}\0", 3},   {"{}\0 ", 4},    {"{'a':1}", 0}, {"{a:1}", 0},
                {"{\"a\":1,}", 0}, {"\xff{}", 0},
        };
        api_match m = match_or_fail("POST", "/v1/code-signing-configs");
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                api_problem p;
                cJSON *b = NULL;
                size_t len = rows[i].len ? rows[i].len : strlen(rows[i].text);
                int r = api_route_body(&m, rows[i].text, len, &b, &p);
                if (r != -EINVAL || p.status != 400 || strcmp(p.message, "the body is not a JSON object") != 0)
                        fail_msg("row %zu (%s): %d %u \"%s\", want a 400 'not a JSON object'", i, rows[i].text, r, p.status, r ? p.message : "");
                assert_string_equal(p.code, "InvalidRequestContentException");
                assert_null(b);
        }
}

static void unknown_and_repeated_fields_are_refused_naming_the_field(void **state) {
        (void) state;
        char long_key[200], msg[128];
        memset(long_key, 'k', 100);
        snprintf(long_key + 100, sizeof(long_key) - 100, "\":1}");
        char body_long[256];
        snprintf(body_long, sizeof(body_long), "{\"%s", long_key);
        snprintf(msg, sizeof(msg), "unknown or repeated field '%.64s'", long_key);
        static const struct {
                const char *method, *path, *body, *field;
        } rows[] = {
                {"POST", "/v1/functions", "{\"FunctionName\":\"f\",\"MemorySize\":128}", "MemorySize"},
                {"POST", "/v1/functions", "{\"FunctionName\":\"f\",\"FunctionName\":\"g\"}", "FunctionName"},
                {"POST", "/v1/functions", "{\"functionname\":\"f\"}", "functionname"},
                {"POST", "/v1/functions", "{\"\":1}", ""},
                {"PUT", "/v1/functions/fn-bound/code-signing-config", "{\"Layers\":[]}", "Layers"},
                {"POST", "/v1/code-signing-configs", "{\"Description\":\"a\",\"Tags\":{},\"Description\":\"b\"}", "Description"},
                {"PUT", "/v1/code-signing-configs/" CSC_ID, "{\"Tags\":{}}", "Tags"},
                {"POST", "/v1/signatures/" JOB "/revoke", "{\"reason\":\"a\",\"reason\":\"a\"}", "reason"},
                {"POST", "/v1/signing-profiles/" PROFILE "/revoke", "{\"profileVersion\":\"x\",\"Reason\":\"r\"}", "Reason"},
                {"PUT", "/v1/signing-profiles/" PROFILE, "{\"profileName\":\"x\",\"privateKey\":\"k\"}", "privateKey"},
        };
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                char want[128];
                api_problem p;
                cJSON *b = NULL;
                api_match m = match_or_fail(rows[i].method, rows[i].path);
                snprintf(want, sizeof(want), "unknown or repeated field '%s'", rows[i].field);
                assert_refused(api_route_body(&m, rows[i].body, strlen(rows[i].body), &b, &p), &p, -EINVAL, 400,
                               "InvalidParameterValueException", want);
                assert_null(b);
        }
        api_match m = match_or_fail("POST", "/v1/functions");
        api_problem p;
        cJSON *b = NULL;
        assert_refused(api_route_body(&m, body_long, strlen(body_long), &b, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", msg);
}

/* ---- functions ------------------------------------------------------------------------ */

static void create_function_writes_the_function_document(void **state) {
        (void) state;
        api_change c;
        change_or_fail("POST", "/v1/functions",
                       "{\"FunctionName\":\"new-fn\",\"CodeSigningConfigArn\":\"arn:aws:lambda:us-east-1:1:code-signing-config:" CSC_ID
                       "\",\"Layers\":[\"lib\"],\"Runtime\":\"python3.12\"}",
                       &c);
        assert_change(&c, "functions", "new-fn.json", 201, "create-function", "new-fn");
        static const char want[] = "{\"FunctionName\":\"new-fn\",\"CodeSigningConfigArn\":\"" CSC_ARN "\",\"Layers\":[\"lib\"]}";
        assert_json(c.doc, want);
        assert_json(c.answer, want);
        api_change_done(&c);

        change_or_fail("POST", "/v1/functions", "{\"FunctionName\":\"plain\"}", &c);
        assert_json(c.doc, "{\"FunctionName\":\"plain\",\"CodeSigningConfigArn\":null,\"Layers\":[]}");
        api_change_done(&c);
}

static void create_function_refusals_say_why(void **state) {
        (void) state;
        static const struct {
                const char *body;
                unsigned status;
                const char *code, *message;
        } rows[] = {
                {"{\"FunctionName\":\"fn-bound\"}", 409, "ResourceConflictException", "function fn-bound already exists"},
                {"{\"FunctionName\":\"a.b\"}", 400, "InvalidParameterValueException", "FunctionName 'a.b' must match [A-Za-z0-9_-]{1,64}"},
                {"{\"FunctionName\":7}", 400, "InvalidParameterValueException", "FunctionName '' must match [A-Za-z0-9_-]{1,64}"},
                {"{\"Layers\":[]}", 400, "InvalidParameterValueException", "FunctionName '' must match [A-Za-z0-9_-]{1,64}"},
                {"{\"FunctionName\":\"f\",\"CodeSigningConfigArn\":\"junk\"}", 400, "InvalidParameterValueException",
                 "'junk' is not a code signing config ARN"},
                {"{\"FunctionName\":\"f\",\"CodeSigningConfigArn\":5}", 400, "InvalidParameterValueException",
                 "'(not a string)' is not a code signing config ARN"},
                {"{\"FunctionName\":\"f\",\"CodeSigningConfigArn\":\"csc-00000000000000000\"}", 404, "ResourceNotFoundException",
                 "code signing config csc-00000000000000000 does not exist"},
                {"{\"FunctionName\":\"f\",\"Layers\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}", 400, "InvalidParameterValueException",
                 "Layers must be an array of at most 5 layer names"},
                {"{\"FunctionName\":\"f\",\"Layers\":\"lib\"}", 400, "InvalidParameterValueException",
                 "Layers must be an array of at most 5 layer names"},
        };
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                api_change c;
                api_problem p;
                assert_refused(change("POST", "/v1/functions", rows[i].body, NEW_ID, &c, &p), &p, -EINVAL, rows[i].status,
                               rows[i].code, rows[i].message);
        }
}

static void put_function_csc_checks_the_function_before_the_body(void **state) {
        (void) state;
        api_change c;
        api_problem p;
        assert_refused(change("PUT", "/v1/functions/nope/code-signing-config", "junk", NEW_ID, &c, &p), &p, -EINVAL, 404,
                       "ResourceNotFoundException", "function nope does not exist");
        assert_refused(change("PUT", "/v1/functions/no.pe/code-signing-config", "junk", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "'no.pe' is not a valid function name");
        assert_refused(change("PUT", "/v1/functions/fn-free/code-signing-config", "junk", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidRequestContentException", "the body is not a JSON object");
        assert_refused(change("PUT", "/v1/functions/fn-free/code-signing-config", "{}", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "CodeSigningConfigArn is required");
        assert_refused(change("PUT", "/v1/functions/fn-free/code-signing-config", "{\"CodeSigningConfigArn\":null}", NEW_ID, &c, &p),
                       &p, -EINVAL, 400, "InvalidParameterValueException", "CodeSigningConfigArn is required");
}

static void put_function_csc_binds_and_keeps_the_layers(void **state) {
        (void) state;
        api_change c;
        change_or_fail("PUT", "/v1/functions/fn-bound/code-signing-config", "{\"CodeSigningConfigArn\":\"" CSC_ID "\"}", &c);
        assert_change(&c, "functions", "fn-bound.json", 200, "put-function-code-signing-config", "fn-bound");
        assert_json(c.doc, "{\"FunctionName\":\"fn-bound\",\"CodeSigningConfigArn\":\"" CSC_ARN "\",\"Layers\":[\"lib\"]}");
        assert_json(c.answer, "{\"CodeSigningConfigArn\":\"" CSC_ARN "\",\"FunctionName\":\"fn-bound\"}");
        api_change_done(&c);
}

/* ---- code signing configs ------------------------------------------------------------ */

static void create_csc_fills_the_defaults_and_takes_the_given_id(void **state) {
        (void) state;
        api_change c;
        char body[256], want[1024];
        snprintf(body, sizeof(body), "{\"AllowedPublishers\":{\"SigningProfileVersionArns\":[\"%s/%s\"]},\"Tags\":{\"a\":\"b\"}}",
                 PROFILE, version);
        change_or_fail("POST", "/v1/code-signing-configs", body, &c);
        assert_change(&c, "code-signing-configs", NEW_ID ".json", 201, "create-code-signing-config", NEW_ID);
        snprintf(want, sizeof(want),
                 "{\"CodeSigningConfigId\":\"" NEW_ID "\",\"CodeSigningConfigArn\":"
                 "\"arn:signgate:lambda:local:000000000000:code-signing-config:" NEW_ID "\","
                 "\"AllowedPublishers\":{\"SigningProfileVersionArns\":[\"%s/%s\"]},\"Description\":\"\","
                 "\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Enforce\"},\"LastModified\":\"" NOW_TEXT "\"}",
                 PROFILE, version);
        assert_json(c.doc, want);
        assert_json(cJSON_GetObjectItemCaseSensitive(c.answer, "CodeSigningConfig"), want);
        api_change_done(&c);
}

static void create_csc_without_randomness_is_500_only_for_a_good_body(void **state) {
        (void) state;
        api_change c;
        api_problem p;
        assert_refused(change("POST", "/v1/code-signing-configs", "[]", NULL, &c, &p), &p, -EINVAL, 400,
                       "InvalidRequestContentException", "the body is not a JSON object");
        assert_refused(change("POST", "/v1/code-signing-configs", "{\"Description\":\"d\"}", NULL, &c, &p), &p, -EINVAL, 500,
                       "ServiceException", "no randomness for a new id");
        /* With an id, the same body is refused for what it lacks. */
        assert_refused(change("POST", "/v1/code-signing-configs", "{\"Description\":\"d\"}", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "the code signing config lacks the field 'AllowedPublishers'");
}

static void update_csc_keeps_what_the_body_leaves_out(void **state) {
        (void) state;
        api_change c;
        char want[1024];
        change_or_fail("PUT", "/v1/code-signing-configs/" CSC_ARN, "{\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Warn\"}}",
                       &c);
        assert_change(&c, "code-signing-configs", CSC_ID ".json", 200, "update-code-signing-config", CSC_ID);
        snprintf(want, sizeof(want),
                 "{\"CodeSigningConfigId\":\"" CSC_ID "\",\"CodeSigningConfigArn\":\"" CSC_ARN "\",\"Description\":\"unit\","
                 "\"AllowedPublishers\":{\"SigningProfileVersionArns\":[\"%s/%s\"]},"
                 "\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Warn\"},\"LastModified\":\"" NOW_TEXT "\"}",
                 PROFILE, version);
        assert_json(c.doc, want);
        api_change_done(&c);

        api_problem p;
        assert_refused(change("PUT", "/v1/code-signing-configs/csc-00000000000000000", "junk", NEW_ID, &c, &p), &p, -EINVAL, 404,
                       "ResourceNotFoundException", "code signing config csc-00000000000000000 does not exist");
        assert_refused(change("PUT", "/v1/code-signing-configs/CSC-X", "{}", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "'CSC-X' is not a code signing config id or ARN");
        assert_refused(change("PUT", "/v1/code-signing-configs/" CSC_ID, "{\"Description\":7}", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "Description must be a string of at most 256 bytes");
}

static void find_csc_takes_an_id_or_an_arn(void **state) {
        (void) state;
        const sg_csc *c = NULL;
        api_problem p;
        assert_int_equal(api_route_find_csc(store, CSC_ID, &c, &p), 0);
        assert_string_equal(c->id, CSC_ID);
        c = NULL;
        assert_int_equal(api_route_find_csc(store, "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:" CSC_ID, &c, &p), 0);
        assert_non_null(c);
        assert_refused(api_route_find_csc(store, "arn:aws:lambda:x:code-signing-config:" CSC_ID "0", &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException",
                       "'arn:aws:lambda:x:code-signing-config:" CSC_ID "0' is not a code signing config id or ARN");
}

/* ---- signing profiles and revocations ---------------------------------------------------- */

static void put_profile_registers_a_version_once(void **state) {
        (void) state;
        api_change c;
        api_problem p;
        /* The document the store holds, again: nothing to write, the same answer. */
        change_or_fail("PUT", "/v1/signing-profiles/" PROFILE, profile_text, &c);
        assert_true(c.unchanged);
        assert_null(c.doc);
        assert_int_equal(c.status, 200);
        assert_json(c.answer, profile_text);
        api_change_done(&c);

        /* The same key under another name is another profile. */
        cJSON *other = parse_or_fail(profile_text);
        cJSON_ReplaceItemInObjectCaseSensitive(other, "profileName", cJSON_CreateString("Other_Profile"));
        char *text = cJSON_PrintUnformatted(other), file[96], msg[160];
        change_or_fail("PUT", "/v1/signing-profiles/Other_Profile", text, &c);
        snprintf(file, sizeof(file), "Other_Profile@%s.json", version);
        assert_change(&c, "signing-profiles", file, 201, "put-signing-profile", file);
        assert_json(c.doc, text);
        assert_json(c.answer, text);
        api_change_done(&c);
        assert_refused(change("PUT", "/v1/signing-profiles/Wrong", text, NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "the document's profileName is not Wrong");
        cJSON_free(text);

        /* A registered version with anything changed is a conflict. */
        cJSON_ReplaceItemInObjectCaseSensitive(other, "profileName", cJSON_CreateString(PROFILE));
        cJSON_AddItemToObject(other, "tags", cJSON_CreateObject());
        text = cJSON_PrintUnformatted(other);
        snprintf(msg, sizeof(msg), "profile %s/%s is already registered with another document", PROFILE, version);
        assert_refused(change("PUT", "/v1/signing-profiles/" PROFILE, text, NEW_ID, &c, &p), &p, -EINVAL, 409,
                       "ResourceConflictException", msg);
        cJSON_free(text);
        cJSON_Delete(other);

        assert_refused(change("PUT", "/v1/signing-profiles/" PROFILE, "{\"profileName\":\"" PROFILE "\"}", NEW_ID, &c, &p), &p,
                       -EINVAL, 400, "InvalidParameterValueException", "the signing profile lacks the field 'profileVersion'");
}

static void revoke_profile_takes_an_earlier_time_and_refuses_a_later_one(void **state) {
        (void) state;
        api_change c;
        api_problem p;
        char body[256], file[96], want[512], msg[256];

        /* 2023-06-01T00:00:00+02:00 is before the store's 2024-01-01 revocation: it moves it earlier. */
        snprintf(body, sizeof(body), "{\"profileVersion\":\"%s\",\"effectiveTime\":\"2023-06-01T00:00:00+02:00\"}", version);
        change_or_fail("POST", "/v1/signing-profiles/" PROFILE "/revoke", body, &c);
        snprintf(file, sizeof(file), "profile-%s@%s.json", PROFILE, version);
        assert_change(&c, "revocations", file, 200, "revoke-signing-profile", file);
        snprintf(want, sizeof(want),
                 "{\"type\":\"profile\",\"profileName\":\"%s\",\"profileVersion\":\"%s\",\"effectiveTime\":\"2023-05-31T22:00:00Z\","
                 "\"reason\":\"\"}",
                 PROFILE, version);
        assert_json(c.doc, want);
        assert_json(c.answer, want);
        api_change_done(&c);

        /* The store's own time again does not move it either. */
        snprintf(body, sizeof(body), "{\"profileVersion\":\"%s\",\"effectiveTime\":\"2024-01-01T00:00:00Z\"}", version);
        snprintf(msg, sizeof(msg),
                 "profile %s/%s is already revoked from an earlier or equal time; it can only move earlier", PROFILE, version);
        assert_refused(change("POST", "/v1/signing-profiles/" PROFILE "/revoke", body, NEW_ID, &c, &p), &p, -EINVAL, 409,
                       "ResourceConflictException", msg);

        /* Without a time it takes effect now, which is later than the store's. */
        snprintf(body, sizeof(body), "{\"profileVersion\":\"%s\",\"reason\":\"Key compromise\"}", version);
        assert_refused(change("POST", "/v1/signing-profiles/" PROFILE "/revoke", body, NEW_ID, &c, &p), &p, -EINVAL, 409,
                       "ResourceConflictException", msg);
}

static void revoke_profile_refusals_say_why(void **state) {
        (void) state;
        char rows[6][160], msg[160];
        snprintf(rows[0], sizeof(rows[0]), "{\"profileVersion\":\"%s\",\"effectiveTime\":\"2026-01-01T00:00:01Z\"}", version);
        snprintf(rows[1], sizeof(rows[1]), "{\"profileVersion\":\"%s\",\"effectiveTime\":\"yesterday\"}", version);
        snprintf(rows[2], sizeof(rows[2]), "{\"profileVersion\":\"%s\",\"effectiveTime\":20230101}", version);
        snprintf(rows[3], sizeof(rows[3]), "{\"profileVersion\":\"%s\",\"effectiveTime\":\"2020-01-01T00:00:00Z\",\"reason\":1}", version);
        snprintf(rows[4], sizeof(rows[4]), "{\"profileVersion\":\"aaaaaaaaaa\",\"effectiveTime\":\"2020-01-01T00:00:00Z\"}");
        snprintf(rows[5], sizeof(rows[5]), "{\"profileVersion\":\"%.9s\"}", version);
        static const struct {
                unsigned status;
                const char *message;
        } want[] = {
                {400, "a revocation cannot take effect in the future"},
                {400, "effectiveTime must be an RFC 3339 time"},
                {400, "effectiveTime must be an RFC 3339 time"},
                {400, "reason must be a string"},
                {404, "signing profile " PROFILE " version aaaaaaaaaa is not registered at this gate"},
                {400, "a profile name and a profileVersion (10 base32 characters) are required"},
        };
        for (size_t i = 0; i < N_ROWS(want); i++) {
                api_change c;
                api_problem p;
                assert_refused(change("POST", "/v1/signing-profiles/" PROFILE "/revoke", rows[i], NEW_ID, &c, &p), &p, -EINVAL,
                               want[i].status, want[i].status == 404 ? "ResourceNotFoundException" : "InvalidParameterValueException",
                               want[i].message);
        }
        api_change c;
        api_problem p;
        snprintf(msg, sizeof(msg), "{\"profileVersion\":\"%s\"}", version);
        assert_refused(change("POST", "/v1/signing-profiles/x/revoke", msg, NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException", "a profile name and a profileVersion (10 base32 characters) are required");
}

static void revoke_signature_takes_an_optional_reason(void **state) {
        (void) state;
        api_change c;
        api_problem p;
        change_or_fail("POST", "/v1/signatures/" JOB "/revoke", NULL, &c);
        assert_change(&c, "revocations", "signature-" JOB ".json", 200, "revoke-signature", JOB);
        assert_json(c.doc, "{\"type\":\"signature\",\"jobId\":\"" JOB "\",\"reason\":\"\"}");
        api_change_done(&c);
        change_or_fail("POST", "/v1/signatures/" JOB "/revoke", "{\"reason\":\"leaked\",\"jobOwner\":\"111111111111\"}", &c);
        assert_json(c.answer, "{\"type\":\"signature\",\"jobId\":\"" JOB "\",\"reason\":\"leaked\"}");
        api_change_done(&c);

        assert_refused(change("POST", "/v1/signatures/0B9D3F4E-5A6C-4D7E-8F90-A1B2C3D4E5F6/revoke", NULL, NEW_ID, &c, &p), &p, -EINVAL,
                       400, "InvalidParameterValueException",
                       "'0B9D3F4E-5A6C-4D7E-8F90-A1B2C3D4E5F6' is not a signing job id (a lowercase UUID), or reason is not a string");
        assert_refused(change("POST", "/v1/signatures/" JOB "/revoke", "{\"reason\":false}", NEW_ID, &c, &p), &p, -EINVAL, 400,
                       "InvalidParameterValueException",
                       "'" JOB "' is not a signing job id (a lowercase UUID), or reason is not a string");
}

/* Found by fuzz-api: a reason over 1024 bytes was written, and the store then no longer
 * loaded (the gate answered 500 and kept the bad file). Now the loader's own rule refuses it
 * before anything is written; 1024 bytes still pass. */
static void revocation_reason_over_1024_bytes_is_refused_before_it_is_written(void **state) {
        (void) state;
        char reason[1026], body[1200];
        memset(reason, 'r', sizeof(reason) - 1);
        for (size_t len = 1024; len <= 1025; len++) {
                reason[len] = '\0';
                for (int kind = 0; kind < 2; kind++) {
                        api_change c;
                        api_problem p;
                        if (kind == 0)
                                snprintf(body, sizeof(body), "{\"profileVersion\":\"%s\",\"effectiveTime\":\"2020-01-01T00:00:00Z\",\"reason\":\"%s\"}",
                                         version, reason);
                        else
                                snprintf(body, sizeof(body), "{\"reason\":\"%s\"}", reason);
                        int r = change("POST", kind == 0 ? "/v1/signing-profiles/" PROFILE "/revoke" : "/v1/signatures/" JOB "/revoke",
                                       body, NEW_ID, &c, &p);
                        if (len == 1024) {
                                if (r != 0)
                                        fail_msg("a reason of 1024 bytes: %d \"%s\"", r, p.message);
                                api_change_done(&c);
                        } else
                                assert_refused(r, &p, -EINVAL, 400, "InvalidParameterValueException",
                                               "reason must be a string of at most 1024 bytes");
                }
                reason[len] = 'r';
        }
}

static void change_refuses_routes_without_a_json_body(void **state) {
        (void) state;
        static const char *const rows[][2] = {{"GET", "/v1/functions"}, {"PUT", "/v1/functions/f/code"}, {"DELETE", "/v1/functions/f"}};
        for (size_t i = 0; i < N_ROWS(rows); i++) {
                api_change c;
                api_problem p;
                assert_int_equal(change(rows[i][0], rows[i][1], "{}", NEW_ID, &c, &p), -EOPNOTSUPP);
        }
}

/* ---- GET /v1/decisions ---------------------------------------------------------------- */

static void decisions_filter_checks_each_argument(void **state) {
        (void) state;
        api_decisions_filter f;
        api_problem p;
        assert_int_equal(api_route_decisions_filter(NULL, NULL, NULL, &f, &p), 0);
        assert_null(f.function);
        assert_null(f.outcome);
        assert_int_equal(f.limit, 50);
        assert_int_equal(api_route_decisions_filter("fn-bound", "promoted-with-warnings", "1000", &f, &p), 0);
        assert_string_equal(f.function, "fn-bound");
        assert_string_equal(f.outcome, "promoted-with-warnings");
        assert_int_equal(f.limit, 1000);
        assert_int_equal(api_route_decisions_filter(NULL, "rejected", "1", &f, &p), 0);
        assert_int_equal(f.limit, 1);

        static const struct {
                const char *function, *outcome, *limit, *message;
        } rows[] = {
                {NULL, NULL, "0", "limit '0' must be a number from 1 to 1000"},
                {NULL, NULL, "1001", "limit '1001' must be a number from 1 to 1000"},
                {NULL, NULL, "", "limit '' must be a number from 1 to 1000"},
                {NULL, NULL, "10x", "limit '10x' must be a number from 1 to 1000"},
                {NULL, NULL, "-1", "limit '-1' must be a number from 1 to 1000"},
                {NULL, "Promoted", NULL, "outcome 'Promoted' must be promoted, promoted-with-warnings or rejected"},
                {NULL, "", NULL, "outcome '' must be promoted, promoted-with-warnings or rejected"},
                {"a.b", NULL, NULL, "function 'a.b' must match [A-Za-z0-9_-]{1,64}"},
                {"", NULL, NULL, "function '' must match [A-Za-z0-9_-]{1,64}"},
                /* The function is checked first, then the limit, then the outcome. */
                {"a.b", "x", "0", "function 'a.b' must match [A-Za-z0-9_-]{1,64}"},
                {NULL, "x", "0", "limit '0' must be a number from 1 to 1000"},
        };
        for (size_t i = 0; i < N_ROWS(rows); i++)
                assert_refused(api_route_decisions_filter(rows[i].function, rows[i].outcome, rows[i].limit, &f, &p), &p, -EINVAL, 400,
                               "InvalidParameterValueException", rows[i].message);
}

int main(int argc, char **argv) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(every_route_matches_its_method_and_path_and_captures_its_argument),
                cmocka_unit_test(every_route_states_its_role_and_body),
                cmocka_unit_test(known_path_with_another_method_is_405),
                cmocka_unit_test(unknown_paths_are_404_naming_the_path),
                cmocka_unit_test(one_trailing_slash_takes_the_same_route_and_two_do_not),
                cmocka_unit_test(segment_of_191_bytes_is_an_argument_and_192_bytes_is_unknown),
                cmocka_unit_test(path_of_1023_bytes_is_quoted_and_1024_bytes_is_404_without_it),
                cmocka_unit_test(methods_are_exact_and_quoted_up_to_15_bytes),
                cmocka_unit_test(percent_signs_and_odd_bytes_in_arguments_are_captured_verbatim),
                cmocka_unit_test(upload_names_follow_the_function_name_rule),
                cmocka_unit_test(body_takes_an_object_of_allowed_fields_and_trailing_whitespace),
                cmocka_unit_test(empty_body_is_refused_where_required_and_reads_as_empty_object_elsewhere),
                cmocka_unit_test(non_objects_and_trailing_bytes_are_refused),
                cmocka_unit_test(unknown_and_repeated_fields_are_refused_naming_the_field),
                cmocka_unit_test(create_function_writes_the_function_document),
                cmocka_unit_test(create_function_refusals_say_why),
                cmocka_unit_test(put_function_csc_checks_the_function_before_the_body),
                cmocka_unit_test(put_function_csc_binds_and_keeps_the_layers),
                cmocka_unit_test(create_csc_fills_the_defaults_and_takes_the_given_id),
                cmocka_unit_test(create_csc_without_randomness_is_500_only_for_a_good_body),
                cmocka_unit_test(update_csc_keeps_what_the_body_leaves_out),
                cmocka_unit_test(find_csc_takes_an_id_or_an_arn),
                cmocka_unit_test(put_profile_registers_a_version_once),
                cmocka_unit_test(revoke_profile_takes_an_earlier_time_and_refuses_a_later_one),
                cmocka_unit_test(revoke_profile_refusals_say_why),
                cmocka_unit_test(revoke_signature_takes_an_optional_reason),
                cmocka_unit_test(revocation_reason_over_1024_bytes_is_refused_before_it_is_written),
                cmocka_unit_test(change_refuses_routes_without_a_json_body),
                cmocka_unit_test(decisions_filter_checks_each_argument),
        };
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests_name("api_route", tests, build_store, free_store);
}
