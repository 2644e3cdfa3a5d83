/* fuzz-api: one API request (DESIGN §10), taken apart the way signgated takes it apart.
 *
 * Input framing: "METHOD PATH[?QUERY]\n\nBODY". The request line ends at the first LF; one
 * blank line after it is skipped; everything after that is the body. Like libmicrohttpd, the
 * harness percent-decodes the path and the query arguments and hands them on as C strings
 * (a %00 ends them). The body is kept NUL-terminated, as api.c collects it.
 *
 * What runs (daemon/api_route.c, nothing that does I/O): api_route_match; for a package route
 * api_route_check_upload; for a JSON route api_route_body and api_route_change against a
 * fixed store; for the other routes with a path argument api_route_find_function or
 * api_route_find_csc; for GET /v1/decisions api_route_decisions_filter on the query.
 *
 * The store, built once through the document parsers the gate uses: profile FuzzProfile with
 * FUZZ_PUBLIC_KEY (a public key made for this harness only; make-seeds.py reads it from this
 * file, so seeds can name its version and re-register it), a code signing config allowing it,
 * functions bound to it and to none, and a revocation of the profile from 2029.
 *
 * Besides the sanitizers, the harness aborts on broken contracts (FUZZ_CHECK): a return value
 * api_route.h does not document, a refusal without status, Code or Message, a match that does
 * not match again when its arguments are put back into its pattern, a body accepted with a
 * field its route does not allow, and above all a change the store could not load again: its
 * document, printed as sg_store_write prints it and read back, must pass the loader's parser
 * under the file name the loader expects, and a function's code signing config must exist. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "api_route.h"
#include "sg_common.h"
#include "sg_store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                  \
        do {                                                                   \
                if (!(cond)) {                                                 \
                        fprintf(stderr, "fuzz-api: contract broken: " __VA_ARGS__); \
                        fputc('\n', stderr);                                   \
                        abort();                                               \
                }                                                              \
        } while (0)

/* A fixed clock keeps every run of one input identical: 2030-01-01T00:00:00Z. */
#define FIXED_NOW ((int64_t) 1893456000)
#define NEW_CSC_ID "csc-00000000000000a91"
#define PROFILE_NAME "FuzzProfile"
#define FUZZ_PUBLIC_KEY                                                       \
        "-----BEGIN PUBLIC KEY-----\n"                                        \
        "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE7MFhx4Epv3+EiTIXUIzDeoh2AJLEHjYV\n"  \
        "qqGI+smPg85LZcHjwfFkxJa8srZZwas/h0SLSTK4wQ4ysq0xdD3MCArfXZBj8q6U\n"  \
        "E3AVEse11wjh2BybonXKPZV7nXzc8YCW\n"                                  \
        "-----END PUBLIC KEY-----\n"
#define PROFILE_VERSION "e4lwfzxcpe" /* base32(SHA-256(SPKI DER)) of FUZZ_PUBLIC_KEY, checked at start-up */
#define CSC_ID "csc-0000000000000f0a1"

static sg_store *fuzz_store;

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

static void die(const char *what) {
        fprintf(stderr, "fuzz-api: setup failed: %s\n", what);
        exit(1);
}

/* ---- the store -------------------------------------------------------------------------- */

static void build_store(void) {
        sg_error err = {0};
        fuzz_store = sg_store_new();
        if (!fuzz_store)
                die("out of memory");

        _cleanup_(cjson_deletep) cJSON *pdoc = cJSON_CreateObject();
        cJSON *vp;
        sg_profile p;
        if (!pdoc || !cJSON_AddStringToObject(pdoc, "profileName", PROFILE_NAME) ||
            !cJSON_AddStringToObject(pdoc, "profileVersion", PROFILE_VERSION) ||
            !cJSON_AddStringToObject(pdoc, "platformId", "AWSLambda-SHA384-ECDSA") ||
            !(vp = cJSON_AddObjectToObject(pdoc, "signatureValidityPeriod")) || !cJSON_AddNumberToObject(vp, "value", 135) ||
            !cJSON_AddStringToObject(vp, "type", "MONTHS") || !cJSON_AddStringToObject(pdoc, "publicKey", FUZZ_PUBLIC_KEY))
                die("out of memory");
        if (sg_profile_from_json(pdoc, &p, &err) < 0)
                die(err.msg); /* also when PROFILE_VERSION is not FUZZ_PUBLIC_KEY's */
        if (sg_store_add_profile(fuzz_store, &p) < 0)
                die("out of memory");

        static const char csc[] = "{\"CodeSigningConfigId\":\"" CSC_ID "\",\"Description\":\"fuzz\","
                                  "\"AllowedPublishers\":{\"SigningProfileVersionArns\":[\"" PROFILE_NAME "/" PROFILE_VERSION "\"]},"
                                  "\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Enforce\"},"
                                  "\"LastModified\":\"2029-01-01T00:00:00Z\"}";
        _cleanup_(cjson_deletep) cJSON *cdoc = cJSON_Parse(csc);
        sg_csc c;
        if (!cdoc || sg_csc_from_json(cdoc, &c, &err) < 0 || sg_store_add_csc(fuzz_store, &c) < 0)
                die(err.msg[0] ? err.msg : "code signing config");

        static const char *const functions[] = {
                "{\"FunctionName\":\"fn-bound\",\"CodeSigningConfigArn\":"
                "\"arn:signgate:lambda:local:000000000000:code-signing-config:" CSC_ID "\",\"Layers\":[\"shared-lib\"]}",
                "{\"FunctionName\":\"fn-unbound\",\"CodeSigningConfigArn\":null,\"Layers\":[]}",
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(functions); i++) {
                _cleanup_(cjson_deletep) cJSON *fdoc = cJSON_Parse(functions[i]);
                sg_function f;
                if (!fdoc || sg_function_from_json(fdoc, &f, &err) < 0 || sg_store_add_function(fuzz_store, &f) < 0)
                        die(err.msg[0] ? err.msg : "function");
        }

        /* sg_store has no adder for revocations (only the loader makes them): the array is
         * filled the way sg_store_free releases it. */
        _cleanup_(cjson_deletep) cJSON *rdoc =
                cJSON_Parse("{\"type\":\"profile\",\"profileName\":\"" PROFILE_NAME "\",\"profileVersion\":\"" PROFILE_VERSION
                            "\",\"effectiveTime\":\"2029-06-01T00:00:00Z\",\"reason\":\"fuzz\"}");
        if (!rdoc || !(fuzz_store->revocations = calloc(1, sizeof(*fuzz_store->revocations))) ||
            sg_revocation_from_json(rdoc, &fuzz_store->revocations[0], &err) < 0)
                die(err.msg[0] ? err.msg : "revocation");
        fuzz_store->n_revocations = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        build_store();
        return 0;
}

/* ---- framing ------------------------------------------------------------------------------ */

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A NUL-terminated copy of n bytes, "%HH" decoded when decode is set (a bad escape stays as
 * it is, as MHD leaves it). */
static char *copy(const char *s, size_t n, bool decode) {
        char *out = malloc(n + 1), *o = out;
        if (!out)
                die("out of memory");
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (decode && s[i] == '%' && n - i > 2 && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
                        *o++ = (char) (hi * 16 + lo);
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        return out;
}

/* The first value of key in a query "k=v&k=v" (MHD_lookup_connection_value's answer), or NULL. */
static char *query_arg(const char *query, size_t len, const char *key) {
        size_t klen = strlen(key);
        for (size_t at = 0; query && at <= len;) {
                const char *amp = memchr(query + at, '&', len - at);
                size_t end = amp ? (size_t) (amp - query) : len;
                const char *eq = memchr(query + at, '=', end - at);
                size_t kend = eq ? (size_t) (eq - query) : end;
                if (kend - at == klen && memcmp(query + at, key, klen) == 0)
                        return eq ? copy(eq + 1, end - kend - 1, true) : copy("", 0, false);
                at = end + 1;
        }
        return NULL;
}

/* ---- contracts ---------------------------------------------------------------------------- */

static void check_problem(const char *what, int r, const api_problem *p) {
        FUZZ_CHECK(r == -EINVAL || r == -ENOENT || r == -EOPNOTSUPP || r == -ENAMETOOLONG, "%s returned %d", what, r);
        FUZZ_CHECK(p->status >= 400 && p->status <= 599 && p->code && p->code[0], "%s refused with status %u and no Code", what,
                   p->status);
        FUZZ_CHECK(memchr(p->message, '\0', sizeof(p->message)) && p->message[0], "%s refused without a message", what);
}

static bool key_allowed(const api_route *rt, const char *k) {
        for (size_t i = 0; i < rt->n_keys; i++)
                if (strcmp(rt->keys[i], k) == 0)
                        return true;
        return false;
}

static void check_match(const char *method, const char *path, int r, const api_match *m, const api_problem *p) {
        FUZZ_CHECK(memchr(m->method, '\0', sizeof(m->method)) && memchr(m->path, '\0', sizeof(m->path)),
                   "the match's method or path is not a string");
        if (r < 0) {
                check_problem("api_route_match", r, p);
                FUZZ_CHECK(!m->route, "a refused request has a route");
                FUZZ_CHECK(r != -ENAMETOOLONG || strlen(path) >= API_PATH_MAX, "a path of %zu bytes is too long", strlen(path));
                FUZZ_CHECK((r == -EOPNOTSUPP) == (p->status == 405), "405 and -EOPNOTSUPP go together");
                return;
        }
        FUZZ_CHECK(r == 0 && m->route && strcmp(m->route->method, method) == 0, "%s matched a %s route", method,
                   m->route ? m->route->method : "(no)");
        FUZZ_CHECK(strlen(path) < API_PATH_MAX, "a path of %zu bytes matched", strlen(path));
        FUZZ_CHECK(m->route >= api_routes && m->route < api_routes + API_EP_MAX_ && (ptrdiff_t) m->route->endpoint == m->route - api_routes,
                   "a route outside the table, or the table out of api_endpoint order");

        /* The arguments put back into the pattern must give the same route and arguments. */
        char again[API_PATH_MAX];
        size_t len = 0, na = 0;
        for (const char *q = m->route->pattern; *q;) {
                const char *arg = NULL;
                if (strncmp(q, "{}", 2) == 0) {
                        FUZZ_CHECK(na < API_ARGS_MAX, "a pattern with more than %d arguments", API_ARGS_MAX);
                        arg = m->args[na++];
                        FUZZ_CHECK(arg[0] && strlen(arg) < API_SEG_MAX && !strchr(arg, '/'), "argument '%.200s' is not one segment",
                                   arg);
                }
                size_t n = arg ? strlen(arg) : 1;
                FUZZ_CHECK(len + n < sizeof(again), "a matched path rebuilt is over %zu bytes", sizeof(again));
                memcpy(again + len, arg ? arg : q, n);
                len += n;
                q += arg ? 2 : 1;
        }
        again[len] = '\0';
        api_match m2;
        api_problem p2;
        FUZZ_CHECK(api_route_match(method, again, &m2, &p2) == 0 && m2.route == m->route &&
                           memcmp(m2.args, m->args, sizeof(m->args)) == 0,
                   "%s %.200s matched, %.200s rebuilt from its arguments did not match the same way", method, path, again);
}

/* What sg_store_write puts on disk for doc, parsed back as sg_store_load parses it. */
static cJSON *stored(const cJSON *doc) {
        _cleanup_(sg_freep) char *text = cJSON_Print(doc);
        FUZZ_CHECK(text, "cJSON_Print failed");
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(text, strlen(text), &end, false);
        FUZZ_CHECK(j && end == text + strlen(text), "a stored document is not JSON: %.200s", text);
        return j;
}

/* The change must leave a store that loads: the loader's parser, its file name, its references. */
static void check_change(const api_match *m, const api_change *c) {
        FUZZ_CHECK(c->status == 200 || c->status == 201, "a change answered %u", c->status);
        FUZZ_CHECK(c->answer, "a change without an answer");
        if (c->unchanged) {
                FUZZ_CHECK(m->route->endpoint == API_EP_PUT_PROFILE && !c->doc && c->status == 200,
                           "only re-registering the same profile changes nothing");
                return;
        }
        FUZZ_CHECK(c->doc && c->subdir && c->action && c->target[0], "a change without a document, place or action");
        size_t n = strlen(c->file);
        FUZZ_CHECK(n > 5 && n < sizeof(c->file) - 1 && strcmp(c->file + n - 5, ".json") == 0 && !strchr(c->file, '/') &&
                           c->file[0] != '.',
                   "'%s' is not a policy store file name", c->file);

        _cleanup_(cjson_deletep) cJSON *back = stored(c->doc);
        sg_error err = {0};
        char want[128] = "";
        if (strcmp(c->subdir, "signing-profiles") == 0) {
                sg_profile p;
                FUZZ_CHECK(sg_profile_from_json(back, &p, &err) == 0, "a written profile does not load: %s", err.msg);
                snprintf(want, sizeof(want), "%s@%s.json", p.name, p.version);
                sg_profile_done(&p);
        } else if (strcmp(c->subdir, "code-signing-configs") == 0) {
                sg_csc k;
                FUZZ_CHECK(sg_csc_from_json(back, &k, &err) == 0, "a written code signing config does not load: %s", err.msg);
                snprintf(want, sizeof(want), "%s.json", k.id);
                FUZZ_CHECK(m->route->endpoint != API_EP_CREATE_CSC || strcmp(k.id, NEW_CSC_ID) == 0,
                           "a new config did not get the id it was given");
                cJSON_Delete(k.doc);
        } else if (strcmp(c->subdir, "functions") == 0) {
                sg_function f;
                FUZZ_CHECK(sg_function_from_json(back, &f, &err) == 0, "a written function does not load: %s", err.msg);
                snprintf(want, sizeof(want), "%s.json", f.name);
                FUZZ_CHECK(!f.csc_id[0] || sg_store_find_csc(fuzz_store, f.csc_id),
                           "function %s is bound to %s, which the store does not have", f.name, f.csc_id);
                cJSON_Delete(f.doc);
        } else {
                FUZZ_CHECK(strcmp(c->subdir, "revocations") == 0, "a change to %s/", c->subdir);
                sg_revocation v;
                FUZZ_CHECK(sg_revocation_from_json(back, &v, &err) == 0, "a written revocation does not load: %s", err.msg);
                FUZZ_CHECK(v.type == SG_REVOKE_SIGNATURE || v.effective_time <= FIXED_NOW, "a revocation from the future");
                cJSON_Delete(v.doc);
        }
        FUZZ_CHECK(!want[0] || strcmp(want, c->file) == 0, "%s/%s would hold the document of %s", c->subdir, c->file, want);
}

static void json_route(const api_match *m, const char *body, size_t len) {
        api_problem p;
        if (len > API_JSON_MAX)
                return; /* api.c answers 413 without reading further */

        _cleanup_(cjson_deletep) cJSON *b = NULL;
        int r = api_route_body(m, body, len, &b, &p);
        if (r < 0)
                check_problem("api_route_body", r, &p);
        else {
                FUZZ_CHECK(r == 0 && cJSON_IsObject(b), "api_route_body accepted something other than an object");
                for (const cJSON *k = b->child; k; k = k->next) {
                        FUZZ_CHECK(key_allowed(m->route, k->string), "field '%.64s' passed the body check of %s %s", k->string,
                                   m->route->method, m->route->pattern);
                        for (const cJSON *d = k->next; d; d = d->next)
                                FUZZ_CHECK(strcmp(k->string, d->string) != 0, "field '%.64s' passed twice", k->string);
                }
                FUZZ_CHECK(len > 0 || !m->route->body_required, "an empty body passed where one is required");
        }

        api_change c;
        api_change_ctx ctx = {.now = FIXED_NOW, .new_csc_id = NEW_CSC_ID};
        r = api_route_change(fuzz_store, m, body, len, &ctx, &c, &p);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL, "api_route_change returned %d", r);
                check_problem("api_route_change", r, &p);
                FUZZ_CHECK(p.status == 400 || p.status == 404 || p.status == 409, "api_route_change refused with %u", p.status);
        } else {
                FUZZ_CHECK(r == 0 && b, "a change from a body the body check refused");
                check_change(m, &c);
                api_change_done(&c);
        }

        /* Without randomness a new config is a 500, and only once its body is known good. */
        if (m->route->endpoint == API_EP_CREATE_CSC) {
                ctx.new_csc_id = NULL;
                r = api_route_change(fuzz_store, m, body, len, &ctx, &c, &p);
                FUZZ_CHECK(r == -EINVAL, "a config was created without an id");
                FUZZ_CHECK((p.status == 500) == (b != NULL), "no randomness answered %u for a %s body", p.status,
                           b ? "good" : "bad");
        }
}

static void other_route(const api_match *m, const char *query, size_t qlen) {
        api_problem p;
        int r;
        switch (m->route->endpoint) {
        case API_EP_PUT_FUNCTION_CODE:
        case API_EP_PUBLISH_LAYER_VERSION:
                if ((r = api_route_check_upload(m, &p)) < 0)
                        check_problem("api_route_check_upload", r, &p);
                else
                        FUZZ_CHECK(sg_name_valid(m->args[0]), "upload name '%.200s' passed", m->args[0]);
                break;
        case API_EP_GET_FUNCTION:
        case API_EP_DELETE_FUNCTION:
        case API_EP_GET_FUNCTION_CSC:
        case API_EP_DELETE_FUNCTION_CSC:
        case API_EP_ROLLBACK: {
                const sg_function *f = NULL;
                if ((r = api_route_find_function(fuzz_store, m->args[0], &f, &p)) < 0)
                        check_problem("api_route_find_function", r, &p);
                else
                        FUZZ_CHECK(f && strcmp(f->name, m->args[0]) == 0, "found another function than %.200s", m->args[0]);
                break;
        }
        case API_EP_GET_CSC:
        case API_EP_DELETE_CSC: {
                const sg_csc *c = NULL;
                char id[22];
                if ((r = api_route_find_csc(fuzz_store, m->args[0], &c, &p)) < 0)
                        check_problem("api_route_find_csc", r, &p);
                else
                        FUZZ_CHECK(c && sg_csc_arn_id(m->args[0], id) == 0 && strcmp(c->id, id) == 0, "found another config");
                break;
        }
        case API_EP_DECISIONS: {
                _cleanup_(sg_freep) char *fn = query_arg(query, qlen, "function");
                _cleanup_(sg_freep) char *outcome = query_arg(query, qlen, "outcome");
                _cleanup_(sg_freep) char *limit = query_arg(query, qlen, "limit");
                api_decisions_filter want;
                if ((r = api_route_decisions_filter(fn, outcome, limit, &want, &p)) < 0)
                        check_problem("api_route_decisions_filter", r, &p);
                else
                        FUZZ_CHECK(want.limit >= 1 && want.limit <= API_DECISIONS_MAX && (!want.function || sg_name_valid(want.function)) &&
                                           (!want.outcome || strcmp(want.outcome, "promoted") == 0 ||
                                            strcmp(want.outcome, "promoted-with-warnings") == 0 || strcmp(want.outcome, "rejected") == 0),
                                   "a decisions filter out of range passed");
                break;
        }
        default:
                break;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *in = (const char *) data;
        const char *lf = memchr(in, '\n', size);
        size_t line = lf ? (size_t) (lf - in) : size;
        size_t body_at = lf ? line + 1 : size;
        if (body_at < size && in[body_at] == '\n')
                body_at++;

        const char *sp = memchr(in, ' ', line);
        size_t mlen = sp ? (size_t) (sp - in) : line;
        const char *target = sp ? sp + 1 : in + line;
        size_t tlen = line - (size_t) (target - in);
        const char *qm = memchr(target, '?', tlen);
        size_t plen = qm ? (size_t) (qm - target) : tlen;

        _cleanup_(sg_freep) char *method = copy(in, mlen, false);
        _cleanup_(sg_freep) char *path = copy(target, plen, true);
        _cleanup_(sg_freep) char *body = copy(in + body_at, size - body_at, false);

        api_match m;
        api_problem p;
        int r = api_route_match(method, path, &m, &p);
        check_match(method, path, r, &m, &p);
        if (r < 0)
                return 0;
        if (m.route->body == API_BODY_JSON)
                json_route(&m, body, size - body_at);
        else
                other_route(&m, qm ? qm + 1 : NULL, qm ? tlen - plen - 1 : 0);
        return 0;
}
