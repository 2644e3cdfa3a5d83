/* The API's endpoints (DESIGN §10). Policy changes are validated with the same parsers the
 * store loader uses, written atomically into the policy store, and the store is reloaded
 * before the response: the change is durable, applies to the next decision, and survives a
 * restart. Each change is also an audit line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "api.h"
#include "sg_journal.h"
#include "sg_signature.h"
#include "sg_version.h"

#define HTTP_OK 200
#define HTTP_CREATED 201
#define HTTP_NO_CONTENT 204
#define HTTP_BAD 400
#define HTTP_NOT_FOUND 404
#define HTTP_CONFLICT 409

static gate *G(req *r) { return api_req_gate(r); }

/* ---- small helpers ------------------------------------------------------------------ */

#define bad(r, ...) api_error((r), HTTP_BAD, "InvalidParameterValueException", __VA_ARGS__)

/* Parses the JSON body: an object whose keys are all in `allowed`. NULL after an error was sent. */
static cJSON *body_object(req *r, const char *const *allowed, size_t n, bool required) {
        if (!r->json || r->json_len == 0) {
                if (!required)
                        return cJSON_CreateObject();
                api_error(r, HTTP_BAD, "InvalidRequestContentException", "%s %s needs a JSON body", r->method, r->path);
                return NULL;
        }
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(r->json, r->json_len, &end, false);
        while (j && end < r->json + r->json_len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
                end++;
        if (!j || end != r->json + r->json_len || !cJSON_IsObject(j)) {
                cJSON_Delete(j);
                api_error(r, HTTP_BAD, "InvalidRequestContentException", "the body is not a JSON object");
                return NULL;
        }
        for (const cJSON *c = j->child; c; c = c->next) {
                bool ok = false;
                for (size_t i = 0; i < n && !ok; i++)
                        ok = strcmp(c->string, allowed[i]) == 0;
                for (const cJSON *d = c->next; d && ok; d = d->next)
                        ok = strcmp(c->string, d->string) != 0;
                if (!ok) {
                        api_error(r, HTTP_BAD, "InvalidParameterValueException", "unknown or repeated field '%.64s'", c->string);
                        cJSON_Delete(j);
                        return NULL;
                }
        }
        return j;
}

static cJSON *peer_json(const req *r) {
        cJSON *p = cJSON_CreateObject();
        if (p) {
                cJSON_AddNumberToObject(p, "uid", r->cred.uid);
                cJSON_AddNumberToObject(p, "gid", r->cred.gid);
                cJSON_AddNumberToObject(p, "pid", r->cred.pid);
        }
        return p;
}

static void policy_event(req *r, const char *action, const char *target) {
        char t[SG_TIME_LEN + 1] = "", msg[512];
        (void) sg_time_format(sg_time_now(), t);
        cJSON *ev = cJSON_CreateObject();
        if (ev) {
                cJSON_AddStringToObject(ev, "time", t);
                cJSON_AddStringToObject(ev, "event", "policy");
                cJSON_AddStringToObject(ev, "action", action);
                cJSON_AddStringToObject(ev, "target", target);
                cJSON_AddItemToObject(ev, "peer", peer_json(r));
        }
        snprintf(msg, sizeof(msg), "policy change by uid %u: %s %s", (unsigned) r->cred.uid, action, target);
        char f_uid[48], f_action[96];
        snprintf(f_uid, sizeof(f_uid), "SIGNGATE_PEER_UID=%u", (unsigned) r->cred.uid);
        snprintf(f_action, sizeof(f_action), "SIGNGATE_POLICY_ACTION=%s", action);
        const char *const fields[] = {f_uid, f_action, NULL};
        gate_audit_event(G(r), ev, LOG_NOTICE, NULL, fields, msg);
}

/* Writes doc as subdir/file, reloads the store, answers status with body (or an error). */
static enum MHD_Result commit(req *r, const char *subdir, const char *file, const cJSON *doc, unsigned status,
                              cJSON *body, const char *action, const char *target_in) {
        gate *g = G(r);
        char why[1024], target[256];
        /* The target may point into the store the reload below frees. */
        snprintf(target, sizeof(target), "%s", target_in);
        int k = doc ? sg_store_write(g->policy_fd, subdir, file, doc) : 0;
        if (k < 0) {
                cJSON_Delete(body);
                return api_error(r, 500, "ServiceException", "cannot write %s/%s: %s", subdir, file, strerror(-k));
        }
        if (gate_reload_policy(g, why, sizeof(why)) < 0) {
                cJSON_Delete(body);
                return api_error(r, 500, "ServiceException", "the policy store no longer loads: %s", why);
        }
        policy_event(r, action, target);
        return status == HTTP_NO_CONTENT ? api_send_json(r, status, NULL) : api_send_json(r, status, body);
}

static enum MHD_Result remove_doc(req *r, const char *subdir, const char *file, const char *action, const char *target) {
        gate *g = G(r);
        int dfd = openat(g->policy_fd, subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0 || unlinkat(dfd, file, 0) < 0 || sg_fsync_dir(dfd) < 0) {
                int e = errno;
                if (dfd >= 0)
                        close(dfd);
                return api_error(r, 500, "ServiceException", "cannot remove %s/%s: %s", subdir, file, strerror(e));
        }
        close(dfd);
        return commit(r, subdir, file, NULL, HTTP_NO_CONTENT, NULL, action, target);
}

static const sg_store *S(req *r) { return G(r)->store->store; }

/* ---- read-only endpoints -------------------------------------------------------------- */

static enum MHD_Result health(req *r) {
        gate *g = G(r);
        cJSON *j = cJSON_CreateObject();
        if (!j)
                return MHD_NO;
        cJSON_AddStringToObject(j, "Status", g->stopping ? "stopping" : "ok");
        cJSON_AddStringToObject(j, "Version", SG_VERSION);
        cJSON_AddNumberToObject(j, "Queued", (double) g->queued);
        cJSON_AddNumberToObject(j, "InFlight", g->running);
        cJSON_AddNumberToObject(j, "Decisions", (double) g->decisions);
        cJSON_AddNumberToObject(j, "UptimeSeconds", (double) (sg_time_now() - g->started));
        return api_send_json(r, HTTP_OK, j);
}

typedef struct {
        char *buf;
        size_t len, cap;
} text;

static void tprintf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(text *t, const char *fmt, ...) {
        va_list ap;
        for (;;) {
                va_start(ap, fmt);
                int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0)
                        return;
                if (t->buf && (size_t) n < t->cap - t->len) {
                        t->len += (size_t) n;
                        return;
                }
                size_t cap = (t->cap + (size_t) n + 1) * 2;
                char *b = realloc(t->buf, cap);
                if (!b)
                        return;
                t->buf = b;
                t->cap = cap;
        }
}

static void histogram(text *t, const char *name, const char *help, const uint64_t *buckets, double sum, uint64_t count) {
        tprintf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
        uint64_t cum = 0;
        for (size_t i = 0; i < GATE_HIST_BUCKETS; i++) {
                cum += buckets[i];
                tprintf(t, "%s_bucket{le=\"%g\"} %llu\n", name, gate_hist_bound(i), (unsigned long long) cum);
        }
        cum += buckets[GATE_HIST_BUCKETS];
        tprintf(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long) cum, name, sum,
                name, (unsigned long long) count);
}

static enum MHD_Result metrics(req *r) {
        gate *g = G(r);
        const gate_metrics *m = &g->metrics;
        text t = {0};
        tprintf(&t, "# HELP signgate_decisions_total Decisions by outcome and reason (reason \"none\" for a clean promotion).\n"
                    "# TYPE signgate_decisions_total counter\n");
        for (int o = 0; o < 3; o++)
                for (int k = SG_REASON_MALFORMED; k <= SG_REASON_MAX_; k++)
                        if (m->decisions[o][k])
                                tprintf(&t, "signgate_decisions_total{outcome=\"%s\",reason=\"%s\"} %llu\n",
                                        sg_outcome_name((sg_outcome) o), k == SG_REASON_MAX_ ? "none" : sg_reason_name((sg_reason) k),
                                        (unsigned long long) m->decisions[o][k]);
        histogram(&t, "signgate_verify_seconds", "Time to copy, verify, extract and decide one package.", m->verify_buckets,
                  m->verify_sum, m->verify_count);
        histogram(&t, "signgate_promote_seconds", "Time to make a release durable and current.", m->promote_buckets,
                  m->promote_sum, m->promote_count);
        tprintf(&t, "# HELP signgate_inbox_queue_depth Packages claimed and not yet decided.\n"
                    "# TYPE signgate_inbox_queue_depth gauge\nsigngate_inbox_queue_depth %zu\n"
                    "# HELP signgate_uploads_in_flight API uploads being received or decided.\n"
                    "# TYPE signgate_uploads_in_flight gauge\nsigngate_uploads_in_flight %u\n"
                    "# HELP signgate_authorization_denied_total API requests denied by role.\n"
                    "# TYPE signgate_authorization_denied_total counter\nsigngate_authorization_denied_total %llu\n"
                    "# HELP signgate_build_info The running version.\n"
                    "# TYPE signgate_build_info gauge\nsigngate_build_info{version=\"%s\"} 1\n",
                g->queued, api_uploads_in_flight(g), (unsigned long long) m->denied, SG_VERSION);
        struct MHD_Response *resp = MHD_create_response_from_buffer(t.len, t.buf ? t.buf : (char *) "", MHD_RESPMEM_MUST_COPY);
        free(t.buf);
        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
        enum MHD_Result ok = MHD_queue_response(r->conn, HTTP_OK, resp);
        MHD_destroy_response(resp);
        r->responded = true;
        return ok;
}

static enum MHD_Result decisions(req *r) {
        gate *g = G(r);
        const char *fn = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "function");
        const char *outcome = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "outcome");
        const char *lim = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
        uint64_t limit = 50;
        if (fn && !sg_name_valid(fn))
                return bad(r, "function '%.80s' must match [A-Za-z0-9_-]{1,64}", fn);
        if (lim && sg_parse_u64(lim, 1, GATE_RECENT, &limit) < 0)
                return bad(r, "limit '%.32s' must be a number from 1 to 1000", lim);
        if (outcome && strcmp(outcome, "promoted") != 0 && strcmp(outcome, "promoted-with-warnings") != 0 &&
            strcmp(outcome, "rejected") != 0)
                return bad(r, "outcome '%.32s' must be promoted, promoted-with-warnings or rejected", outcome);
        cJSON *j = cJSON_CreateObject(), *arr = j ? cJSON_AddArrayToObject(j, "Decisions") : NULL;
        if (!arr) {
                cJSON_Delete(j);
                return MHD_NO;
        }
        uint64_t n = 0;
        for (size_t i = 0; i < g->recent_count && n < limit; i++) {
                const cJSON *rec = g->recent[(g->recent_next + GATE_RECENT - 1 - i) % GATE_RECENT];
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(rec, "function");
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(rec, "outcome");
                if (fn && !(cJSON_IsString(f) && strcmp(f->valuestring, fn) == 0))
                        continue;
                if (outcome && !(cJSON_IsString(o) && strcmp(o->valuestring, outcome) == 0))
                        continue;
                cJSON_AddItemToArray(arr, cJSON_Duplicate(rec, true));
                n++;
        }
        return api_send_json(r, HTTP_OK, j);
}

/* ---- functions -------------------------------------------------------------------- */

static cJSON *function_doc(const char *name, const char *csc_id, const cJSON *layers) {
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

static enum MHD_Result check_csc_arn(req *r, const cJSON *arn, char id[22]) {
        id[0] = '\0';
        if (!arn || cJSON_IsNull(arn))
                return MHD_YES;
        if (!cJSON_IsString(arn) || sg_csc_arn_id(arn->valuestring, id) < 0) {
                bad(r, "'%.120s' is not a code signing config ARN", cJSON_IsString(arn) ? arn->valuestring : "(not a string)");
                return MHD_NO;
        }
        if (!sg_store_find_csc(S(r), id)) {
                api_error(r, HTTP_NOT_FOUND, "ResourceNotFoundException", "code signing config %s does not exist", id);
                return MHD_NO;
        }
        return MHD_YES;
}

static enum MHD_Result create_function(req *r) {
        static const char *const keys[] = {"FunctionName", "CodeSigningConfigArn", "Layers", "Runtime", "Role", "Handler",
                                           "Description"};
        cJSON *b = body_object(r, keys, SG_ELEMENTSOF(keys), true);
        if (!b)
                return MHD_YES;
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "FunctionName");
        char id[22];
        enum MHD_Result ret;
        sg_function f;
        sg_error err = {0};
        if (!cJSON_IsString(name) || !sg_name_valid(name->valuestring))
                ret = bad(r, "FunctionName '%.80s' must match [A-Za-z0-9_-]{1,64}", cJSON_IsString(name) ? name->valuestring : "");
        else if (sg_store_find_function(S(r), name->valuestring))
                ret = api_error(r, HTTP_CONFLICT, "ResourceConflictException", "function %s already exists", name->valuestring);
        else if (check_csc_arn(r, cJSON_GetObjectItemCaseSensitive(b, "CodeSigningConfigArn"), id) == MHD_NO)
                ret = MHD_YES;
        else {
                cJSON *doc = function_doc(name->valuestring, id, cJSON_GetObjectItemCaseSensitive(b, "Layers"));
                if (doc && sg_function_from_json(doc, &f, &err) < 0) {
                        ret = bad(r, "%s", err.msg);
                } else if (!doc)
                        ret = MHD_NO;
                else {
                        cJSON_Delete(f.doc);
                        char file[80];
                        snprintf(file, sizeof(file), "%s.json", name->valuestring);
                        ret = commit(r, "functions", file, doc, HTTP_CREATED, cJSON_Duplicate(doc, true), "create-function",
                                     name->valuestring);
                }
                cJSON_Delete(doc);
        }
        cJSON_Delete(b);
        return ret;
}

static enum MHD_Result list_functions(req *r) {
        cJSON *j = cJSON_CreateObject(), *arr = j ? cJSON_AddArrayToObject(j, "Functions") : NULL;
        if (!arr) {
                cJSON_Delete(j);
                return MHD_NO;
        }
        for (size_t i = 0; i < S(r)->n_functions; i++)
                cJSON_AddItemToArray(arr, cJSON_Duplicate(S(r)->functions[i].doc, true));
        return api_send_json(r, HTTP_OK, j);
}

static const sg_function *find_function(req *r, const char *name) {
        if (!sg_name_valid(name)) {
                bad(r, "'%.80s' is not a valid function name", name);
                return NULL;
        }
        const sg_function *f = sg_store_find_function(S(r), name);
        if (!f)
                api_error(r, HTTP_NOT_FOUND, "ResourceNotFoundException", "function %s does not exist", name);
        return f;
}

static enum MHD_Result get_function(req *r) {
        const sg_function *f = find_function(r, r->args[0]);
        if (!f)
                return MHD_YES;
        cJSON *j = cJSON_Duplicate(f->doc, true);
        char release[SG_RELEASE_MAX];
        unsigned char digest[SG_DIGEST_LEN];
        gate *g = G(r);
        if (j && g->adapter->ops->current(g->adapter, f->name, release, digest) == 0)
                cJSON_AddStringToObject(j, "CurrentRelease", release);
        else if (j)
                cJSON_AddNullToObject(j, "CurrentRelease");
        return api_send_json(r, HTTP_OK, j);
}

static enum MHD_Result delete_function(req *r) {
        const sg_function *f = find_function(r, r->args[0]);
        if (!f)
                return MHD_YES;
        char file[80];
        snprintf(file, sizeof(file), "%s.json", f->name);
        return remove_doc(r, "functions", file, "delete-function", r->args[0]);
}

static enum MHD_Result put_function_csc(req *r) {
        static const char *const keys[] = {"CodeSigningConfigArn"};
        const sg_function *f = find_function(r, r->args[0]);
        if (!f)
                return MHD_YES;
        cJSON *b = body_object(r, keys, 1, true);
        if (!b)
                return MHD_YES;
        char id[22], file[80];
        const cJSON *arn = cJSON_GetObjectItemCaseSensitive(b, "CodeSigningConfigArn");
        enum MHD_Result ret;
        if (!cJSON_IsString(arn))
                ret = bad(r, "%s", "CodeSigningConfigArn is required");
        else if (check_csc_arn(r, arn, id) == MHD_NO)
                ret = MHD_YES;
        else {
                cJSON *doc = function_doc(f->name, id, cJSON_GetObjectItemCaseSensitive(f->doc, "Layers"));
                cJSON *out = cJSON_CreateObject();
                char full[128];
                sg_csc_arn(id, full, sizeof(full));
                if (out) {
                        cJSON_AddStringToObject(out, "CodeSigningConfigArn", full);
                        cJSON_AddStringToObject(out, "FunctionName", f->name);
                }
                snprintf(file, sizeof(file), "%s.json", f->name);
                ret = doc ? commit(r, "functions", file, doc, HTTP_OK, out, "put-function-code-signing-config", f->name) : MHD_NO;
                cJSON_Delete(doc);
        }
        cJSON_Delete(b);
        return ret;
}

static enum MHD_Result get_function_csc(req *r) {
        const sg_function *f = find_function(r, r->args[0]);
        if (!f)
                return MHD_YES;
        cJSON *j = cJSON_CreateObject();
        char arn[128] = "";
        if (!j)
                return MHD_NO;
        if (f->csc_id[0])
                sg_csc_arn(f->csc_id, arn, sizeof(arn));
        cJSON_AddStringToObject(j, "CodeSigningConfigArn", arn);
        cJSON_AddStringToObject(j, "FunctionName", f->name);
        return api_send_json(r, HTTP_OK, j);
}

static enum MHD_Result delete_function_csc(req *r) {
        const sg_function *f = find_function(r, r->args[0]);
        if (!f)
                return MHD_YES;
        char file[80];
        cJSON *doc = function_doc(f->name, NULL, cJSON_GetObjectItemCaseSensitive(f->doc, "Layers"));
        snprintf(file, sizeof(file), "%s.json", f->name);
        enum MHD_Result ret =
                doc ? commit(r, "functions", file, doc, HTTP_NO_CONTENT, NULL, "delete-function-code-signing-config", f->name) : MHD_NO;
        cJSON_Delete(doc);
        return ret;
}

/* ---- code signing configs ------------------------------------------------------------ */

static const sg_csc *find_csc(req *r, const char *arg) {
        char id[22];
        if (sg_csc_arn_id(arg, id) < 0) {
                bad(r, "'%.120s' is not a code signing config id or ARN", arg);
                return NULL;
        }
        const sg_csc *c = sg_store_find_csc(S(r), id);
        if (!c)
                api_error(r, HTTP_NOT_FOUND, "ResourceNotFoundException", "code signing config %s does not exist", id);
        return c;
}

static cJSON *wrap_csc(const cJSON *doc) {
        cJSON *j = cJSON_CreateObject();
        if (j)
                cJSON_AddItemToObject(j, "CodeSigningConfig", cJSON_Duplicate(doc, true));
        return j;
}

/* Builds and validates a CSC document from a request body over an optional existing one. */
static cJSON *csc_from_body(req *r, const char *id, const cJSON *old, const cJSON *b) {
        char arn[128], t[SG_TIME_LEN + 1] = "";
        cJSON *doc = cJSON_CreateObject();
        sg_csc parsed;
        sg_error err = {0};
        if (!doc)
                return NULL;
        sg_csc_arn(id, arn, sizeof(arn));
        (void) sg_time_format(sg_time_now(), t);
        const char *keys[] = {"Description", "AllowedPublishers", "CodeSigningPolicies"};
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
        if (sg_csc_from_json(doc, &parsed, &err) < 0) {
                cJSON_Delete(doc);
                bad(r, "%s", err.msg);
                return NULL;
        }
        cJSON_Delete(parsed.doc);
        return doc;
}

static enum MHD_Result create_csc(req *r) {
        static const char *const keys[] = {"Description", "AllowedPublishers", "CodeSigningPolicies", "Tags"};
        cJSON *b = body_object(r, keys, SG_ELEMENTSOF(keys), true);
        if (!b)
                return MHD_YES;
        unsigned char rnd[9];
        char hex[19], id[22], file[40];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
                cJSON_Delete(b);
                return api_error(r, 500, "ServiceException", "no randomness for a new id");
        }
        sg_hex_encode(rnd, sizeof(rnd), hex);
        snprintf(id, sizeof(id), "csc-%.17s", hex);
        cJSON *doc = csc_from_body(r, id, NULL, b);
        cJSON_Delete(b);
        if (!doc)
                return r->responded ? MHD_YES : MHD_NO;
        snprintf(file, sizeof(file), "%s.json", id);
        enum MHD_Result ret = commit(r, "code-signing-configs", file, doc, HTTP_CREATED, wrap_csc(doc),
                                     "create-code-signing-config", id);
        cJSON_Delete(doc);
        return ret;
}

static enum MHD_Result list_cscs(req *r) {
        cJSON *j = cJSON_CreateObject(), *arr = j ? cJSON_AddArrayToObject(j, "CodeSigningConfigs") : NULL;
        if (!arr) {
                cJSON_Delete(j);
                return MHD_NO;
        }
        for (size_t i = 0; i < S(r)->n_cscs; i++)
                cJSON_AddItemToArray(arr, cJSON_Duplicate(S(r)->cscs[i].doc, true));
        return api_send_json(r, HTTP_OK, j);
}

static enum MHD_Result get_csc(req *r) {
        const sg_csc *c = find_csc(r, r->args[0]);
        return c ? api_send_json(r, HTTP_OK, wrap_csc(c->doc)) : MHD_YES;
}

static enum MHD_Result update_csc(req *r) {
        static const char *const keys[] = {"Description", "AllowedPublishers", "CodeSigningPolicies"};
        const sg_csc *c = find_csc(r, r->args[0]);
        if (!c)
                return MHD_YES;
        cJSON *b = body_object(r, keys, SG_ELEMENTSOF(keys), true);
        if (!b)
                return MHD_YES;
        char id[22], file[40];
        snprintf(id, sizeof(id), "%s", c->id);
        cJSON *doc = csc_from_body(r, id, c->doc, b);
        cJSON_Delete(b);
        if (!doc)
                return r->responded ? MHD_YES : MHD_NO;
        snprintf(file, sizeof(file), "%s.json", id);
        enum MHD_Result ret = commit(r, "code-signing-configs", file, doc, HTTP_OK, wrap_csc(doc), "update-code-signing-config", id);
        cJSON_Delete(doc);
        return ret;
}

static enum MHD_Result delete_csc(req *r) {
        const sg_csc *c = find_csc(r, r->args[0]);
        if (!c)
                return MHD_YES;
        for (size_t i = 0; i < S(r)->n_functions; i++)
                if (strcmp(S(r)->functions[i].csc_id, c->id) == 0)
                        return api_error(r, HTTP_CONFLICT, "ResourceConflictException",
                                         "code signing config %s is bound to function %s", c->id, S(r)->functions[i].name);
        char id[22], file[40];
        snprintf(id, sizeof(id), "%s", c->id);
        snprintf(file, sizeof(file), "%s.json", id);
        return remove_doc(r, "code-signing-configs", file, "delete-code-signing-config", id);
}

/* ---- signing profiles and revocations ----------------------------------------------- */

static enum MHD_Result put_profile(req *r) {
        static const char *const keys[] = {"profileName", "profileVersion", "platformId", "signatureValidityPeriod",
                                           "publicKey", "profileVersionArn", "status", "tags", "createdAt", "arn"};
        cJSON *b = body_object(r, keys, SG_ELEMENTSOF(keys), true);
        if (!b)
                return MHD_YES;
        sg_profile p;
        sg_error err = {0};
        enum MHD_Result ret;
        if (sg_profile_from_json(b, &p, &err) < 0) {
                cJSON_Delete(b);
                return bad(r, "%s", err.msg);
        }
        char file[96];
        snprintf(file, sizeof(file), "%s@%s.json", p.name, p.version);
        const sg_profile *old = sg_store_find_profile(S(r), p.name, p.version);
        if (strcmp(p.name, r->args[0]) != 0)
                ret = bad(r, "the document's profileName is not %s", r->args[0]);
        else if (old && cJSON_Compare(old->doc, b, true))
                ret = api_send_json(r, HTTP_OK, cJSON_Duplicate(b, true));
        else if (old)
                /* A registered version is never replaced: its key is its identity, and a status
                 * change is a revocation (POST …/revoke), not an edit. */
                ret = api_error(r, HTTP_CONFLICT, "ResourceConflictException",
                                "profile %s/%s is already registered with another document", p.name, p.version);
        else
                ret = commit(r, "signing-profiles", file, b, HTTP_CREATED, cJSON_Duplicate(b, true), "put-signing-profile", file);
        sg_profile_done(&p);
        cJSON_Delete(b);
        return ret;
}

static enum MHD_Result list_profiles(req *r) {
        cJSON *j = cJSON_CreateObject(), *arr = j ? cJSON_AddArrayToObject(j, "Profiles") : NULL;
        if (!arr) {
                cJSON_Delete(j);
                return MHD_NO;
        }
        for (size_t i = 0; i < S(r)->n_profiles; i++)
                cJSON_AddItemToArray(arr, cJSON_Duplicate(S(r)->profiles[i].doc, true));
        return api_send_json(r, HTTP_OK, j);
}

static enum MHD_Result revoke_profile(req *r) {
        static const char *const keys[] = {"profileVersion", "effectiveTime", "reason"};
        cJSON *b = body_object(r, keys, SG_ELEMENTSOF(keys), true);
        if (!b)
                return MHD_YES;
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(b, "profileVersion");
        const cJSON *eff = cJSON_GetObjectItemCaseSensitive(b, "effectiveTime");
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(b, "reason");
        int64_t t = sg_time_now();
        enum MHD_Result ret = MHD_YES;
        if (!sg_profile_name_valid(r->args[0]) || !cJSON_IsString(ver) || !sg_profile_version_valid(ver->valuestring))
                ret = bad(r, "%s", "a profile name and a profileVersion (10 base32 characters) are required");
        else if (eff && (!cJSON_IsString(eff) || sg_time_parse(eff->valuestring, &t) < 0))
                ret = bad(r, "%s", "effectiveTime must be an RFC 3339 time");
        else if (t > sg_time_now())
                ret = bad(r, "%s", "a revocation cannot take effect in the future");
        else if (why && !cJSON_IsString(why))
                ret = bad(r, "%s", "reason must be a string");
        else if (!sg_store_find_profile(S(r), r->args[0], ver->valuestring))
                ret = api_error(r, HTTP_NOT_FOUND, "ResourceNotFoundException",
                                "signing profile %s version %s is not registered at this gate", r->args[0], ver->valuestring);
        if (r->responded) {
                cJSON_Delete(b);
                return ret;
        }
        /* Revocations are permanent and may only move earlier (DESIGN §5). */
        for (size_t i = 0; i < S(r)->n_revocations; i++) {
                const sg_revocation *v = &S(r)->revocations[i];
                if (v->type == SG_REVOKE_PROFILE && strcmp(v->profile_name, r->args[0]) == 0 &&
                    strcmp(v->profile_version, ver->valuestring) == 0 && v->effective_time <= t) {
                        cJSON_Delete(b);
                        return api_error(r, HTTP_CONFLICT, "ResourceConflictException",
                                         "profile %s/%s is already revoked from an earlier or equal time; it can only move earlier",
                                         v->profile_name, v->profile_version);
                }
        }
        char ts[SG_TIME_LEN + 1], file[96];
        (void) sg_time_format(t, ts);
        cJSON *doc = cJSON_CreateObject();
        if (doc) {
                cJSON_AddStringToObject(doc, "type", "profile");
                cJSON_AddStringToObject(doc, "profileName", r->args[0]);
                cJSON_AddStringToObject(doc, "profileVersion", ver->valuestring);
                cJSON_AddStringToObject(doc, "effectiveTime", ts);
                cJSON_AddStringToObject(doc, "reason", cJSON_IsString(why) ? why->valuestring : "");
        }
        snprintf(file, sizeof(file), "profile-%.64s@%.10s.json", r->args[0], ver->valuestring); /* both validated */
        ret = doc ? commit(r, "revocations", file, doc, HTTP_OK, cJSON_Duplicate(doc, true), "revoke-signing-profile", file) : MHD_NO;
        cJSON_Delete(doc);
        cJSON_Delete(b);
        return ret;
}

static enum MHD_Result revoke_signature(req *r) {
        static const char *const keys[] = {"reason", "jobOwner"};
        cJSON *b = body_object(r, keys, SG_ELEMENTSOF(keys), false);
        if (!b)
                return MHD_YES;
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(b, "reason");
        if (!sg_uuid_valid(r->args[0]) || (why && !cJSON_IsString(why))) {
                cJSON_Delete(b);
                return bad(r, "'%.64s' is not a signing job id (a lowercase UUID), or reason is not a string", r->args[0]);
        }
        char file[96];
        snprintf(file, sizeof(file), "signature-%.36s.json", r->args[0]); /* a validated UUID */
        cJSON *doc = cJSON_CreateObject();
        if (doc) {
                cJSON_AddStringToObject(doc, "type", "signature");
                cJSON_AddStringToObject(doc, "jobId", r->args[0]);
                cJSON_AddStringToObject(doc, "reason", cJSON_IsString(why) ? why->valuestring : "");
        }
        enum MHD_Result ret =
                doc ? commit(r, "revocations", file, doc, HTTP_OK, cJSON_Duplicate(doc, true), "revoke-signature", r->args[0]) : MHD_NO;
        cJSON_Delete(doc);
        cJSON_Delete(b);
        return ret;
}

/* ---- rollback ------------------------------------------------------------------------ */

/* Re-decides a retained release under the policy of now: its package digest and signature
 * block were kept beside it at promotion (package.json, signature.dsse). */
static enum MHD_Result rollback(req *r) {
        gate *g = G(r);
        const sg_function *f = find_function(r, r->args[0]);
        if (!f)
                return MHD_YES;
        for (const fqueue *q = g->queues; q; q = q->next)
                if (q->kind == SG_KIND_FUNCTION && strcmp(q->name, f->name) == 0 && (q->running || q->head))
                        return api_error(r, HTTP_CONFLICT, "ResourceConflictException",
                                         "a deployment of %s is in progress; roll back once it is decided", f->name);
        char cur[SG_RELEASE_MAX] = "", prev[SG_RELEASE_MAX];
        unsigned char digest[SG_DIGEST_LEN];
        (void) g->adapter->ops->current(g->adapter, f->name, cur, digest);
        int k = g->adapter->ops->previous(g->adapter, f->name, prev);
        if (k < 0)
                return api_error(r, HTTP_NOT_FOUND, "ResourceNotFoundException", "function %s has no earlier retained release", f->name);
        sg_release_facts rf;
        if ((k = g->adapter->ops->facts(g->adapter, f->name, prev, &rf)) < 0)
                return api_error(r, 500, "ServiceException", "cannot read release %s: %s", prev, strerror(-k));
        sg_envelope env = {0};
        sg_facts facts = {.digest = rf.digest, .canonical_size = rf.canonical_size, .platform_id = SG_PLATFORM_LAMBDA,
                          .has_block = rf.block != NULL};
        bool have_env = rf.block && sg_envelope_parse(rf.block, rf.block_len, &env, &facts.envelope_error) == 0;
        facts.envelope = have_env ? &env : NULL;
        int64_t now = sg_time_now();
        sg_decide_ctx ctx = {.function = f->name, .binding = f, .store = S(r), .unbound_allow = g->settings.unbound_allow,
                             .now = now, .first_seen = firstseen_get(g, rf.digest, now)};
        sg_decision d;
        sg_decide(&facts, &ctx, &d);
        if (have_env)
                sg_envelope_done(&env);
        free(rf.block);
        cJSON *reasons = cJSON_CreateArray();
        for (size_t i = 0; reasons && i < d.n_reasons; i++)
                cJSON_AddItemToArray(reasons, cJSON_CreateString(sg_reason_name(d.reasons[i])));
        if (d.outcome == SG_OUTCOME_REJECTED) {
                cJSON *e = cJSON_CreateObject();
                if (e) {
                        cJSON_AddStringToObject(e, "Type", "User");
                        cJSON_AddStringToObject(e, "Code", "ResourceConflictException");
                        cJSON_AddStringToObject(e, "Message", d.message);
                        cJSON_AddStringToObject(e, "Release", prev);
                        cJSON_AddItemToObject(e, "Reasons", reasons);
                }
                return api_send_json(r, HTTP_CONFLICT, e);
        }
        sg_promotion p;
        if ((k = g->adapter->ops->rollback(g->adapter, f->name, &p)) < 0) {
                cJSON_Delete(reasons);
                return api_error(r, 500, "ServiceException", "cannot roll back %s: %s", f->name, strerror(-k));
        }
        cJSON *j = cJSON_CreateObject();
        if (j) {
                cJSON_AddStringToObject(j, "FunctionName", f->name);
                cJSON_AddStringToObject(j, "Release", p.release);
                cJSON_AddStringToObject(j, "PreviousRelease", cur);
                cJSON_AddStringToObject(j, "Outcome", sg_outcome_name(d.outcome));
                cJSON_AddItemToObject(j, "Reasons", reasons);
        }
        char target[160];
        snprintf(target, sizeof(target), "%s %s -> %s", f->name, cur, p.release);
        policy_event(r, "rollback", target);
        return api_send_json(r, HTTP_OK, j);
}

/* ---- the table --------------------------------------------------------------------- */

#define R_READ API_ROLE_READER
#define R_DEPLOY API_ROLE_DEPLOYER
#define R_ADMIN API_ROLE_ADMIN

const api_route api_routes[] = {
        {"PUT", "/v1/functions/{}/code", R_DEPLOY, API_BODY_PACKAGE, SG_KIND_FUNCTION, NULL},
        {"POST", "/v1/layers/{}/versions", R_DEPLOY, API_BODY_PACKAGE, SG_KIND_LAYER, NULL},
        {"POST", "/v1/functions", R_ADMIN, API_BODY_JSON, 0, create_function},
        {"GET", "/v1/functions", R_READ, API_BODY_NONE, 0, list_functions},
        {"GET", "/v1/functions/{}", R_READ, API_BODY_NONE, 0, get_function},
        {"DELETE", "/v1/functions/{}", R_ADMIN, API_BODY_NONE, 0, delete_function},
        {"PUT", "/v1/functions/{}/code-signing-config", R_ADMIN, API_BODY_JSON, 0, put_function_csc},
        {"GET", "/v1/functions/{}/code-signing-config", R_READ, API_BODY_NONE, 0, get_function_csc},
        {"DELETE", "/v1/functions/{}/code-signing-config", R_ADMIN, API_BODY_NONE, 0, delete_function_csc},
        {"POST", "/v1/functions/{}/rollback", R_ADMIN, API_BODY_NONE, 0, rollback},
        {"POST", "/v1/code-signing-configs", R_ADMIN, API_BODY_JSON, 0, create_csc},
        {"GET", "/v1/code-signing-configs", R_READ, API_BODY_NONE, 0, list_cscs},
        {"GET", "/v1/code-signing-configs/{}", R_READ, API_BODY_NONE, 0, get_csc},
        {"PUT", "/v1/code-signing-configs/{}", R_ADMIN, API_BODY_JSON, 0, update_csc},
        {"DELETE", "/v1/code-signing-configs/{}", R_ADMIN, API_BODY_NONE, 0, delete_csc},
        {"PUT", "/v1/signing-profiles/{}", R_ADMIN, API_BODY_JSON, 0, put_profile},
        {"GET", "/v1/signing-profiles", R_READ, API_BODY_NONE, 0, list_profiles},
        {"POST", "/v1/signing-profiles/{}/revoke", R_ADMIN, API_BODY_JSON, 0, revoke_profile},
        {"POST", "/v1/signatures/{}/revoke", R_ADMIN, API_BODY_JSON, 0, revoke_signature},
        {"GET", "/v1/decisions", R_READ, API_BODY_NONE, 0, decisions},
        {"GET", "/v1/health", API_ROLE_NONE, API_BODY_NONE, 0, health},
        {"GET", "/metrics", API_ROLE_NONE, API_BODY_NONE, 0, metrics},
        {NULL, NULL, 0, 0, 0, NULL},
};
