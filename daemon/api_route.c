/* The API's routing and JSON bodies, without I/O (api_route.h is the contract).
 *
 * Every message a client can receive from here is written once, in this file; the tests in
 * tests/unit/daemon/test-api-route.c pin them, and tests/fuzz/fuzz-api.c feeds this module
 * requests of every shape. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api_route.h"

#define HTTP_BAD 400
#define HTTP_NOT_FOUND 404
#define HTTP_METHOD_NOT_ALLOWED 405
#define HTTP_CONFLICT 409
#define HTTP_OK 200
#define HTTP_CREATED 201
#define HTTP_SERVER_ERROR 500

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

static int problem_set(api_problem *p, unsigned status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int problem_set(api_problem *p, unsigned status, const char *code, const char *fmt, ...) {
        va_list ap;
        p->status = status;
        p->code = code;
        va_start(ap, fmt);
        /* A message quotes what the client sent, so it may be cut at API_MESSAGE_MAX. */
        (void) vsnprintf(p->message, sizeof(p->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

#define bad(p, ...) problem_set((p), HTTP_BAD, "InvalidParameterValueException", __VA_ARGS__)

/* ---- the table ------------------------------------------------------------------------ */

#define KEYS(k) k, SG_ELEMENTSOF(k)
#define NO_KEYS NULL, 0

static const char *const create_function_keys[] = {"FunctionName", "CodeSigningConfigArn", "Layers", "Runtime",
                                                   "Role", "Handler", "Description"};
static const char *const function_csc_keys[] = {"CodeSigningConfigArn"};
static const char *const create_csc_keys[] = {"Description", "AllowedPublishers", "CodeSigningPolicies", "Tags"};
static const char *const update_csc_keys[] = {"Description", "AllowedPublishers", "CodeSigningPolicies"};
static const char *const profile_keys[] = {"profileName", "profileVersion", "platformId", "signatureValidityPeriod",
                                           "publicKey", "profileVersionArn", "status", "tags", "createdAt", "arn"};
static const char *const revoke_profile_keys[] = {"profileVersion", "effectiveTime", "reason"};
static const char *const revoke_signature_keys[] = {"reason", "jobOwner"};

#define R_ANY API_ROLE_NONE
#define R_READ API_ROLE_READER
#define R_DEPLOY API_ROLE_DEPLOYER
#define R_ADMIN API_ROLE_ADMIN

const api_route api_routes[] = {
        {"PUT", "/v1/functions/{}/code", R_DEPLOY, API_BODY_PACKAGE, API_EP_PUT_FUNCTION_CODE, NO_KEYS, false},
        {"POST", "/v1/layers/{}/versions", R_DEPLOY, API_BODY_PACKAGE, API_EP_PUBLISH_LAYER_VERSION, NO_KEYS, false},
        {"POST", "/v1/functions", R_ADMIN, API_BODY_JSON, API_EP_CREATE_FUNCTION, KEYS(create_function_keys), true},
        {"GET", "/v1/functions", R_READ, API_BODY_NONE, API_EP_LIST_FUNCTIONS, NO_KEYS, false},
        {"GET", "/v1/functions/{}", R_READ, API_BODY_NONE, API_EP_GET_FUNCTION, NO_KEYS, false},
        {"DELETE", "/v1/functions/{}", R_ADMIN, API_BODY_NONE, API_EP_DELETE_FUNCTION, NO_KEYS, false},
        {"PUT", "/v1/functions/{}/code-signing-config", R_ADMIN, API_BODY_JSON, API_EP_PUT_FUNCTION_CSC,
         KEYS(function_csc_keys), true},
        {"GET", "/v1/functions/{}/code-signing-config", R_READ, API_BODY_NONE, API_EP_GET_FUNCTION_CSC, NO_KEYS, false},
        {"DELETE", "/v1/functions/{}/code-signing-config", R_ADMIN, API_BODY_NONE, API_EP_DELETE_FUNCTION_CSC, NO_KEYS,
         false},
        {"POST", "/v1/functions/{}/rollback", R_ADMIN, API_BODY_NONE, API_EP_ROLLBACK, NO_KEYS, false},
        {"POST", "/v1/code-signing-configs", R_ADMIN, API_BODY_JSON, API_EP_CREATE_CSC, KEYS(create_csc_keys), true},
        {"GET", "/v1/code-signing-configs", R_READ, API_BODY_NONE, API_EP_LIST_CSCS, NO_KEYS, false},
        {"GET", "/v1/code-signing-configs/{}", R_READ, API_BODY_NONE, API_EP_GET_CSC, NO_KEYS, false},
        {"PUT", "/v1/code-signing-configs/{}", R_ADMIN, API_BODY_JSON, API_EP_UPDATE_CSC, KEYS(update_csc_keys), true},
        {"DELETE", "/v1/code-signing-configs/{}", R_ADMIN, API_BODY_NONE, API_EP_DELETE_CSC, NO_KEYS, false},
        {"PUT", "/v1/signing-profiles/{}", R_ADMIN, API_BODY_JSON, API_EP_PUT_PROFILE, KEYS(profile_keys), true},
        {"GET", "/v1/signing-profiles", R_READ, API_BODY_NONE, API_EP_LIST_PROFILES, NO_KEYS, false},
        {"POST", "/v1/signing-profiles/{}/revoke", R_ADMIN, API_BODY_JSON, API_EP_REVOKE_PROFILE,
         KEYS(revoke_profile_keys), true},
        /* As AWS's RevokeSignature, whose body only carries an optional reason. */
        {"POST", "/v1/signatures/{}/revoke", R_ADMIN, API_BODY_JSON, API_EP_REVOKE_SIGNATURE,
         KEYS(revoke_signature_keys), false},
        {"GET", "/v1/decisions", R_READ, API_BODY_NONE, API_EP_DECISIONS, NO_KEYS, false},
        {"GET", "/v1/health", R_ANY, API_BODY_NONE, API_EP_HEALTH, NO_KEYS, false},
        {"GET", "/metrics", R_ANY, API_BODY_NONE, API_EP_METRICS, NO_KEYS, false},
        {NULL, NULL, 0, 0, 0, NULL, 0, false},
};

/* ---- routing -------------------------------------------------------------------------- */

typedef struct {
        size_t n;
        const char *at[API_SEGS_MAX];
        size_t len[API_SEGS_MAX];
} segments;

/* Splits a path into its segments (pointers into path). false for a path that is not "/"
 * and at most API_SEGS_MAX non-empty segments of fewer than API_SEG_MAX bytes, each ended by
 * one slash or the end: "//", an over-long segment or a seventh one make the path unknown. */
static bool split(const char *path, segments *ret) {
        ret->n = 0;
        if (path[0] != '/')
                return false;
        for (const char *p = path + 1; *p;) {
                size_t len = strcspn(p, "/");
                if (len == 0 || len >= API_SEG_MAX || ret->n == API_SEGS_MAX)
                        return false;
                ret->at[ret->n] = p;
                ret->len[ret->n] = len;
                ret->n++;
                p += len + (p[len] == '/');
        }
        return true;
}

/* Whether path's segments fit pattern's; then the {} segments are copied into args. */
static bool fits(const segments *path, const segments *pattern, char args[API_ARGS_MAX][API_SEG_MAX]) {
        size_t na = 0;
        if (path->n != pattern->n)
                return false;
        for (size_t i = 0; i < path->n; i++) {
                bool capture = pattern->len[i] == 2 && memcmp(pattern->at[i], "{}", 2) == 0;
                if (!capture && (pattern->len[i] != path->len[i] || memcmp(pattern->at[i], path->at[i], path->len[i]) != 0))
                        return false;
        }
        for (size_t i = 0; i < path->n; i++)
                if (pattern->len[i] == 2 && memcmp(pattern->at[i], "{}", 2) == 0 && na < API_ARGS_MAX) {
                        memcpy(args[na], path->at[i], path->len[i]);
                        args[na++][path->len[i]] = '\0';
                }
        return true;
}

int api_route_match(const char *method, const char *path, api_match *ret, api_problem *problem) {
        memset(ret, 0, sizeof(*ret));
        snprintf(ret->method, sizeof(ret->method), "%s", method);
        if (snprintf(ret->path, sizeof(ret->path), "%s", path) >= (int) sizeof(ret->path)) {
                /* Not quoted: the message would only repeat a cut-off path. */
                problem_set(problem, HTTP_NOT_FOUND, "ResourceNotFoundException", "no such resource");
                return -ENAMETOOLONG;
        }
        segments seg;
        bool known = false;
        if (split(path, &seg))
                for (const api_route *rt = api_routes; rt->method; rt++) {
                        segments pseg;
                        if (!split(rt->pattern, &pseg) || !fits(&seg, &pseg, ret->args))
                                continue;
                        known = true;
                        if (strcmp(rt->method, method) == 0) {
                                ret->route = rt;
                                return 0;
                        }
                }
        if (known) {
                problem_set(problem, HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowedException", "%s is not allowed on %s",
                            ret->method, ret->path);
                return -EOPNOTSUPP;
        }
        problem_set(problem, HTTP_NOT_FOUND, "ResourceNotFoundException", "no such resource: %s", ret->path);
        return -ENOENT;
}

int api_route_check_upload(const api_match *m, api_problem *problem) {
        if (!sg_name_valid(m->args[0]))
                return bad(problem, "'%s' is not a valid name: [A-Za-z0-9_-]{1,64}", m->args[0]);
        return 0;
}

/* ---- bodies ---------------------------------------------------------------------------- */

int api_route_body(const api_match *m, const char *json, size_t len, cJSON **ret, api_problem *problem) {
        const api_route *rt = m->route;
        if (len == 0) {
                if (rt->body_required)
                        return problem_set(problem, HTTP_BAD, "InvalidRequestContentException", "%s %s needs a JSON body",
                                           m->method, m->path);
                cJSON *empty = cJSON_CreateObject();
                if (!empty)
                        return -ENOMEM;
                *ret = empty;
                return 0;
        }
        const char *end = NULL;
        _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLengthOpts(json, len, &end, false);
        while (j && end && end < json + len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
                end++;
        if (!j || end != json + len || !cJSON_IsObject(j))
                return problem_set(problem, HTTP_BAD, "InvalidRequestContentException", "the body is not a JSON object");
        /* Quadratic in the number of fields; a 64 KiB body has at most ~11,000 of them ("":0,). */
        for (const cJSON *c = j->child; c; c = c->next) {
                bool ok = false;
                for (size_t i = 0; i < rt->n_keys && !ok; i++)
                        ok = strcmp(c->string, rt->keys[i]) == 0;
                for (const cJSON *d = c->next; d && ok; d = d->next)
                        ok = strcmp(c->string, d->string) != 0;
                if (!ok)
                        return bad(problem, "unknown or repeated field '%.64s'", c->string);
        }
        *ret = SG_TAKE_PTR(j);
        return 0;
}

/* ---- path arguments -------------------------------------------------------------------- */

int api_route_find_function(const sg_store *s, const char *name, const sg_function **ret, api_problem *problem) {
        if (!sg_name_valid(name))
                return bad(problem, "'%.80s' is not a valid function name", name);
        const sg_function *f = sg_store_find_function(s, name);
        if (!f)
                return problem_set(problem, HTTP_NOT_FOUND, "ResourceNotFoundException", "function %s does not exist", name);
        *ret = f;
        return 0;
}

int api_route_find_csc(const sg_store *s, const char *arg, const sg_csc **ret, api_problem *problem) {
        char id[22];
        if (sg_csc_arn_id(arg, id) < 0)
                return bad(problem, "'%.120s' is not a code signing config id or ARN", arg);
        const sg_csc *c = sg_store_find_csc(s, id);
        if (!c)
                return problem_set(problem, HTTP_NOT_FOUND, "ResourceNotFoundException", "code signing config %s does not exist",
                                   id);
        *ret = c;
        return 0;
}

int api_route_decisions_filter(const char *function, const char *outcome, const char *limit, api_decisions_filter *ret,
                               api_problem *problem) {
        uint64_t n = API_DECISIONS_DEFAULT;
        if (function && !sg_name_valid(function))
                return bad(problem, "function '%.80s' must match [A-Za-z0-9_-]{1,64}", function);
        if (limit && sg_parse_u64(limit, 1, API_DECISIONS_MAX, &n) < 0)
                return bad(problem, "limit '%.32s' must be a number from 1 to %d", limit, API_DECISIONS_MAX);
        if (outcome && strcmp(outcome, "promoted") != 0 && strcmp(outcome, "promoted-with-warnings") != 0 &&
            strcmp(outcome, "rejected") != 0)
                return bad(problem, "outcome '%.32s' must be promoted, promoted-with-warnings or rejected", outcome);
        *ret = (api_decisions_filter) {.function = function, .outcome = outcome, .limit = n};
        return 0;
}

/* ---- documents ------------------------------------------------------------------------ */

void api_change_done(api_change *c) {
        if (!c)
                return;
        cJSON_Delete(c->doc);
        cJSON_Delete(c->answer);
        c->doc = c->answer = NULL;
}

static int change_new(api_change *c, bool unchanged, const char *subdir, cJSON *doc, unsigned status, cJSON *answer,
                      const char *action, const char *target) {
        *c = (api_change) {.unchanged = unchanged, .subdir = subdir, .doc = doc, .status = status, .answer = answer,
                           .action = action};
        snprintf(c->target, sizeof(c->target), "%s", target);
        return 0;
}

cJSON *api_route_function_doc(const char *name, const char *csc_id, const cJSON *layers) {
        char arn[128];
        cJSON *j = cJSON_CreateObject();
        if (!j)
                return NULL;
        cJSON_AddStringToObject(j, "FunctionName", name);
        if (csc_id && csc_id[0]) {
                sg_csc_arn(csc_id, arn, sizeof(arn));
                cJSON_AddStringToObject(j, "CodeSigningConfigArn", arn);
        } else
                cJSON_AddNullToObject(j, "CodeSigningConfigArn");
        cJSON_AddItemToObject(j, "Layers", layers ? cJSON_Duplicate(layers, true) : cJSON_CreateArray());
        return j;
}

/* A body's CodeSigningConfigArn: absent or null binds none (id ""), else it must name a
 * config the store has. */
static int check_csc_arn(const sg_store *s, const cJSON *arn, char id[22], api_problem *problem) {
        id[0] = '\0';
        if (!arn || cJSON_IsNull(arn))
                return 0;
        if (!cJSON_IsString(arn) || sg_csc_arn_id(arn->valuestring, id) < 0) {
                id[0] = '\0';
                return bad(problem, "'%.120s' is not a code signing config ARN", cJSON_IsString(arn) ? arn->valuestring : "(not a string)");
        }
        if (!sg_store_find_csc(s, id))
                return problem_set(problem, HTTP_NOT_FOUND, "ResourceNotFoundException", "code signing config %s does not exist", id);
        return 0;
}

/* The document is one the store loader accepts: the API never writes a store that no longer
 * loads. */
static int check_function_doc(const cJSON *doc, api_problem *problem) {
        sg_function f;
        sg_error err = {0};
        int k = sg_function_from_json(doc, &f, &err);
        if (k == -EINVAL)
                return bad(problem, "%s", err.msg);
        if (k < 0)
                return k;
        cJSON_Delete(f.doc);
        return 0;
}

static int create_function(const sg_store *s, const cJSON *b, api_change *ret, api_problem *problem) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "FunctionName");
        char id[22];
        int k;
        if (!cJSON_IsString(name) || !sg_name_valid(name->valuestring))
                return bad(problem, "FunctionName '%.80s' must match [A-Za-z0-9_-]{1,64}", cJSON_IsString(name) ? name->valuestring : "");
        if (sg_store_find_function(s, name->valuestring))
                return problem_set(problem, HTTP_CONFLICT, "ResourceConflictException", "function %s already exists",
                                   name->valuestring);
        if ((k = check_csc_arn(s, cJSON_GetObjectItemCaseSensitive(b, "CodeSigningConfigArn"), id, problem)) < 0)
                return k;
        _cleanup_(cjson_deletep) cJSON *doc = api_route_function_doc(name->valuestring, id, cJSON_GetObjectItemCaseSensitive(b, "Layers"));
        if (!doc)
                return -ENOMEM;
        if ((k = check_function_doc(doc, problem)) < 0)
                return k;
        cJSON *answer = cJSON_Duplicate(doc, true);
        if (!answer)
                return -ENOMEM;
        change_new(ret, false, "functions", SG_TAKE_PTR(doc), HTTP_CREATED, answer, "create-function", name->valuestring);
        snprintf(ret->file, sizeof(ret->file), "%s.json", name->valuestring); /* a valid name: 64 bytes at most */
        return 0;
}

static int put_function_csc(const sg_store *s, const api_match *m, const char *json, size_t len, api_change *ret,
                            api_problem *problem) {
        const sg_function *f;
        _cleanup_(cjson_deletep) cJSON *b = NULL;
        char id[22], full[128];
        int k;
        if ((k = api_route_find_function(s, m->args[0], &f, problem)) < 0 || (k = api_route_body(m, json, len, &b, problem)) < 0)
                return k;
        const cJSON *arn = cJSON_GetObjectItemCaseSensitive(b, "CodeSigningConfigArn");
        if (!cJSON_IsString(arn))
                return bad(problem, "%s", "CodeSigningConfigArn is required");
        if ((k = check_csc_arn(s, arn, id, problem)) < 0)
                return k;
        _cleanup_(cjson_deletep) cJSON *doc = api_route_function_doc(f->name, id, cJSON_GetObjectItemCaseSensitive(f->doc, "Layers"));
        _cleanup_(cjson_deletep) cJSON *answer = cJSON_CreateObject();
        if (!doc || !answer)
                return -ENOMEM;
        if ((k = check_function_doc(doc, problem)) < 0)
                return k;
        sg_csc_arn(id, full, sizeof(full));
        cJSON_AddStringToObject(answer, "CodeSigningConfigArn", full);
        cJSON_AddStringToObject(answer, "FunctionName", f->name);
        change_new(ret, false, "functions", SG_TAKE_PTR(doc), HTTP_OK, SG_TAKE_PTR(answer), "put-function-code-signing-config",
                   f->name);
        snprintf(ret->file, sizeof(ret->file), "%s.json", f->name);
        return 0;
}

static cJSON *wrap_csc(const cJSON *doc) {
        cJSON *j = cJSON_CreateObject();
        if (j && !cJSON_AddItemToObject(j, "CodeSigningConfig", cJSON_Duplicate(doc, true))) {
                cJSON_Delete(j);
                return NULL;
        }
        return j;
}

/* A code signing config document from a body over an optional existing one: the body's
 * fields replace the old ones, the rest is kept or defaulted. */
static int csc_change(const char *id, const cJSON *old, const cJSON *b, int64_t now, unsigned status, const char *action,
                      api_change *ret, api_problem *problem) {
        static const char *const keys[] = {"Description", "AllowedPublishers", "CodeSigningPolicies"};
        char arn[128], t[SG_TIME_LEN + 1] = "";
        sg_csc parsed;
        sg_error err = {0};
        _cleanup_(cjson_deletep) cJSON *doc = cJSON_CreateObject();
        if (!doc)
                return -ENOMEM;
        sg_csc_arn(id, arn, sizeof(arn));
        (void) sg_time_format(now, t);
        cJSON_AddStringToObject(doc, "CodeSigningConfigId", id);
        cJSON_AddStringToObject(doc, "CodeSigningConfigArn", arn);
        for (size_t i = 0; i < SG_ELEMENTSOF(keys); i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, keys[i]);
                if (!v && old)
                        v = cJSON_GetObjectItemCaseSensitive(old, keys[i]);
                if (v)
                        cJSON_AddItemToObject(doc, keys[i], cJSON_Duplicate(v, true));
        }
        if (!cJSON_GetObjectItemCaseSensitive(doc, "Description"))
                cJSON_AddStringToObject(doc, "Description", "");
        if (!cJSON_GetObjectItemCaseSensitive(doc, "CodeSigningPolicies")) {
                cJSON *p = cJSON_AddObjectToObject(doc, "CodeSigningPolicies");
                if (p)
                        cJSON_AddStringToObject(p, "UntrustedArtifactOnDeployment", "Enforce");
        }
        cJSON_AddStringToObject(doc, "LastModified", t);
        int k = sg_csc_from_json(doc, &parsed, &err);
        if (k == -EINVAL)
                return bad(problem, "%s", err.msg);
        if (k < 0)
                return k;
        cJSON_Delete(parsed.doc);
        cJSON *answer = wrap_csc(doc);
        if (!answer)
                return -ENOMEM;
        change_new(ret, false, "code-signing-configs", SG_TAKE_PTR(doc), status, answer, action, id);
        snprintf(ret->file, sizeof(ret->file), "%s.json", id);
        return 0;
}

static int create_csc(const cJSON *b, const api_change_ctx *ctx, api_change *ret, api_problem *problem) {
        if (!ctx->new_csc_id)
                return problem_set(problem, HTTP_SERVER_ERROR, "ServiceException", "no randomness for a new id");
        char id[22];
        snprintf(id, sizeof(id), "%s", ctx->new_csc_id);
        return csc_change(id, NULL, b, ctx->now, HTTP_CREATED, "create-code-signing-config", ret, problem);
}

static int update_csc(const sg_store *s, const api_match *m, const char *json, size_t len, const api_change_ctx *ctx,
                      api_change *ret, api_problem *problem) {
        const sg_csc *c;
        _cleanup_(cjson_deletep) cJSON *b = NULL;
        int k;
        if ((k = api_route_find_csc(s, m->args[0], &c, problem)) < 0 || (k = api_route_body(m, json, len, &b, problem)) < 0)
                return k;
        return csc_change(c->id, c->doc, b, ctx->now, HTTP_OK, "update-code-signing-config", ret, problem);
}

static int put_profile(const sg_store *s, const api_match *m, const cJSON *b, api_change *ret, api_problem *problem) {
        sg_profile p;
        sg_error err = {0};
        char file[96];
        int k = sg_profile_from_json(b, &p, &err);
        if (k == -EINVAL)
                return bad(problem, "%s", err.msg);
        if (k < 0)
                return k;
        snprintf(file, sizeof(file), "%s@%s.json", p.name, p.version);
        const sg_profile *old = sg_store_find_profile(s, p.name, p.version);
        cJSON *doc = NULL, *answer = NULL;
        if (strcmp(p.name, m->args[0]) != 0)
                k = bad(problem, "the document's profileName is not %s", m->args[0]);
        else if (old && !cJSON_Compare(old->doc, b, true))
                /* A registered version is never replaced: its key is its identity, and a status
                 * change is a revocation (POST …/revoke), not an edit. */
                k = problem_set(problem, HTTP_CONFLICT, "ResourceConflictException",
                                "profile %s/%s is already registered with another document", p.name, p.version);
        else if (!(answer = cJSON_Duplicate(b, true)) || (!old && !(doc = cJSON_Duplicate(b, true)))) {
                cJSON_Delete(answer);
                k = -ENOMEM;
        } else
                k = change_new(ret, old != NULL, "signing-profiles", doc, old ? HTTP_OK : HTTP_CREATED, answer,
                               "put-signing-profile", file);
        if (k == 0)
                snprintf(ret->file, sizeof(ret->file), "%s", file);
        sg_profile_done(&p);
        return k;
}

/* The revocation document is one the store loader accepts (a reason of at most 1024 bytes). */
static int revocation_change(cJSON *doc, const char *file, const char *action, const char *target, api_change *ret,
                             api_problem *problem) {
        _cleanup_(cjson_deletep) cJSON *owned = doc;
        sg_revocation v;
        sg_error err = {0};
        if (!owned)
                return -ENOMEM;
        int k = sg_revocation_from_json(owned, &v, &err);
        if (k == -EINVAL)
                return bad(problem, "%s", err.msg);
        if (k < 0)
                return k;
        cJSON_Delete(v.doc);
        cJSON *answer = cJSON_Duplicate(owned, true);
        if (!answer)
                return -ENOMEM;
        change_new(ret, false, "revocations", SG_TAKE_PTR(owned), HTTP_OK, answer, action, target);
        snprintf(ret->file, sizeof(ret->file), "%s", file);
        return 0;
}

static int revoke_profile(const sg_store *s, const api_match *m, const cJSON *b, int64_t now, api_change *ret,
                          api_problem *problem) {
        const char *name = m->args[0];
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(b, "profileVersion");
        const cJSON *eff = cJSON_GetObjectItemCaseSensitive(b, "effectiveTime");
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(b, "reason");
        int64_t t = now;
        if (!sg_profile_name_valid(name) || !cJSON_IsString(ver) || !sg_profile_version_valid(ver->valuestring))
                return bad(problem, "%s", "a profile name and a profileVersion (10 base32 characters) are required");
        if (eff && (!cJSON_IsString(eff) || sg_time_parse(eff->valuestring, &t) < 0))
                return bad(problem, "%s", "effectiveTime must be an RFC 3339 time");
        if (t > now)
                return bad(problem, "%s", "a revocation cannot take effect in the future");
        if (why && !cJSON_IsString(why))
                return bad(problem, "%s", "reason must be a string");
        if (!sg_store_find_profile(s, name, ver->valuestring))
                return problem_set(problem, HTTP_NOT_FOUND, "ResourceNotFoundException",
                                   "signing profile %s version %s is not registered at this gate", name, ver->valuestring);
        /* Revocations are permanent and may only move earlier (DESIGN §5). */
        for (size_t i = 0; i < s->n_revocations; i++) {
                const sg_revocation *v = &s->revocations[i];
                if (v->type == SG_REVOKE_PROFILE && strcmp(v->profile_name, name) == 0 &&
                    strcmp(v->profile_version, ver->valuestring) == 0 && v->effective_time <= t)
                        return problem_set(problem, HTTP_CONFLICT, "ResourceConflictException",
                                           "profile %s/%s is already revoked from an earlier or equal time; it can only move earlier",
                                           v->profile_name, v->profile_version);
        }
        char ts[SG_TIME_LEN + 1] = "", file[96];
        (void) sg_time_format(t, ts);
        cJSON *doc = cJSON_CreateObject();
        if (doc) {
                cJSON_AddStringToObject(doc, "type", "profile");
                cJSON_AddStringToObject(doc, "profileName", name);
                cJSON_AddStringToObject(doc, "profileVersion", ver->valuestring);
                cJSON_AddStringToObject(doc, "effectiveTime", ts);
                cJSON_AddStringToObject(doc, "reason", cJSON_IsString(why) ? why->valuestring : "");
        }
        snprintf(file, sizeof(file), "profile-%.64s@%.10s.json", name, ver->valuestring); /* both validated */
        return revocation_change(doc, file, "revoke-signing-profile", file, ret, problem);
}

static int revoke_signature(const api_match *m, const cJSON *b, api_change *ret, api_problem *problem) {
        const char *job = m->args[0];
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(b, "reason");
        if (!sg_uuid_valid(job) || (why && !cJSON_IsString(why)))
                return bad(problem, "'%.64s' is not a signing job id (a lowercase UUID), or reason is not a string", job);
        char file[96];
        snprintf(file, sizeof(file), "signature-%.36s.json", job); /* a validated UUID */
        cJSON *doc = cJSON_CreateObject();
        if (doc) {
                cJSON_AddStringToObject(doc, "type", "signature");
                cJSON_AddStringToObject(doc, "jobId", job);
                cJSON_AddStringToObject(doc, "reason", cJSON_IsString(why) ? why->valuestring : "");
        }
        return revocation_change(doc, file, "revoke-signature", job, ret, problem);
}

int api_route_change(const sg_store *s, const api_match *m, const char *json, size_t len, const api_change_ctx *ctx,
                     api_change *ret, api_problem *problem) {
        if (!m->route || m->route->body != API_BODY_JSON)
                return -EOPNOTSUPP;
        /* These two check their path argument before the body. */
        if (m->route->endpoint == API_EP_PUT_FUNCTION_CSC)
                return put_function_csc(s, m, json, len, ret, problem);
        if (m->route->endpoint == API_EP_UPDATE_CSC)
                return update_csc(s, m, json, len, ctx, ret, problem);

        _cleanup_(cjson_deletep) cJSON *b = NULL;
        int k = api_route_body(m, json, len, &b, problem);
        if (k < 0)
                return k;
        switch (m->route->endpoint) {
        case API_EP_CREATE_FUNCTION:
                return create_function(s, b, ret, problem);
        case API_EP_CREATE_CSC:
                return create_csc(b, ctx, ret, problem);
        case API_EP_PUT_PROFILE:
                return put_profile(s, m, b, ret, problem);
        case API_EP_REVOKE_PROFILE:
                return revoke_profile(s, m, b, ctx->now, ret, problem);
        case API_EP_REVOKE_SIGNATURE:
                return revoke_signature(m, b, ret, problem);
        default:
                return -EOPNOTSUPP;
        }
}
