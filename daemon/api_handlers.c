/* The API's endpoints (DESIGN §10). Policy changes are worked out by api_route_change()
 * (checked with the same parsers the store loader uses, without I/O), written atomically into
 * the policy store, and the store is reloaded before the response: the change is durable,
 * applies to the next decision, and survives a restart. Each change is also an audit line. */
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
#define HTTP_NO_CONTENT 204
#define HTTP_NOT_FOUND 404
#define HTTP_CONFLICT 409

static gate *G(req *r) { return api_req_gate(r); }

/* ---- small helpers ------------------------------------------------------------------ */

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
        api_decisions_filter want;
        api_problem p;
        if (api_route_decisions_filter(fn, outcome, lim, &want, &p) < 0)
                return api_send_problem(r, &p);
        cJSON *j = cJSON_CreateObject(), *arr = j ? cJSON_AddArrayToObject(j, "Decisions") : NULL;
        if (!arr) {
                cJSON_Delete(j);
                return MHD_NO;
        }
        uint64_t n = 0;
        for (size_t i = 0; i < g->recent_count && n < want.limit; i++) {
                const cJSON *rec = g->recent[(g->recent_next + GATE_RECENT - 1 - i) % GATE_RECENT];
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(rec, "function");
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(rec, "outcome");
                if (want.function && !(cJSON_IsString(f) && strcmp(f->valuestring, want.function) == 0))
                        continue;
                if (want.outcome && !(cJSON_IsString(o) && strcmp(o->valuestring, want.outcome) == 0))
                        continue;
                cJSON_AddItemToArray(arr, cJSON_Duplicate(rec, true));
                n++;
        }
        return api_send_json(r, HTTP_OK, j);
}

/* ---- functions -------------------------------------------------------------------- */

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

/* The function a path names, or NULL once the refusal is sent. */
static const sg_function *find_function(req *r, const char *name) {
        const sg_function *f = NULL;
        api_problem p;
        if (api_route_find_function(S(r), name, &f, &p) < 0)
                api_send_problem(r, &p);
        return f;
}

static enum MHD_Result get_function(req *r) {
        const sg_function *f = find_function(r, r->m.args[0]);
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
        const sg_function *f = find_function(r, r->m.args[0]);
        if (!f)
                return MHD_YES;
        char file[80];
        snprintf(file, sizeof(file), "%s.json", f->name);
        return remove_doc(r, "functions", file, "delete-function", r->m.args[0]);
}

static enum MHD_Result get_function_csc(req *r) {
        const sg_function *f = find_function(r, r->m.args[0]);
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
        const sg_function *f = find_function(r, r->m.args[0]);
        if (!f)
                return MHD_YES;
        char file[80];
        cJSON *doc = api_route_function_doc(f->name, NULL, cJSON_GetObjectItemCaseSensitive(f->doc, "Layers"));
        snprintf(file, sizeof(file), "%s.json", f->name);
        enum MHD_Result ret =
                doc ? commit(r, "functions", file, doc, HTTP_NO_CONTENT, NULL, "delete-function-code-signing-config", f->name) : MHD_NO;
        cJSON_Delete(doc);
        return ret;
}

/* ---- code signing configs ------------------------------------------------------------ */

/* The code signing config a path names, or NULL once the refusal is sent. */
static const sg_csc *find_csc(req *r, const char *arg) {
        const sg_csc *c = NULL;
        api_problem p;
        if (api_route_find_csc(S(r), arg, &c, &p) < 0)
                api_send_problem(r, &p);
        return c;
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
        const sg_csc *c = find_csc(r, r->m.args[0]);
        if (!c)
                return MHD_YES;
        cJSON *j = cJSON_CreateObject();
        if (j)
                cJSON_AddItemToObject(j, "CodeSigningConfig", cJSON_Duplicate(c->doc, true));
        return api_send_json(r, HTTP_OK, j);
}

static enum MHD_Result delete_csc(req *r) {
        const sg_csc *c = find_csc(r, r->m.args[0]);
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

/* ---- rollback ------------------------------------------------------------------------ */

/* Re-decides a retained release under the policy of now: its package digest and signature
 * block were kept beside it at promotion (package.json, signature.dsse). */
static enum MHD_Result rollback(req *r) {
        gate *g = G(r);
        const sg_function *f = find_function(r, r->m.args[0]);
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

/* ---- policy changes with a JSON body -------------------------------------------------- */

static int new_csc_id(char id[22]) {
        unsigned char rnd[9];
        char hex[19];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return -EIO;
        sg_hex_encode(rnd, sizeof(rnd), hex);
        snprintf(id, 22, "csc-%.17s", hex);
        return 0;
}

/* create-function, put-function-code-signing-config, create/update-code-signing-config,
 * put-signing-profile and both revocations: api_route_change() says what to write and what to
 * answer, this writes it. */
static enum MHD_Result change(req *r) {
        char id[22];
        bool have_id = r->m.route->endpoint == API_EP_CREATE_CSC && new_csc_id(id) == 0;
        api_change_ctx ctx = {.now = sg_time_now(), .new_csc_id = have_id ? id : NULL};
        api_change c;
        api_problem p;
        int k = api_route_change(S(r), &r->m, r->json, r->json_len, &ctx, &c, &p);
        if (k == -EINVAL)
                return api_send_problem(r, &p);
        if (k < 0)
                return MHD_NO;
        enum MHD_Result ret = c.unchanged ? api_send_json(r, c.status, SG_TAKE_PTR(c.answer))
                                          : commit(r, c.subdir, c.file, c.doc, c.status, SG_TAKE_PTR(c.answer), c.action,
                                                   c.target);
        api_change_done(&c);
        return ret;
}

/* ---- the table --------------------------------------------------------------------- */

_Static_assert(API_DECISIONS_MAX == GATE_RECENT, "GET /v1/decisions may ask for every recent decision the gate keeps");

/* In api_endpoint order; the package endpoints are api.c's. */
static enum MHD_Result (*const handlers[API_EP_MAX_])(req *r) = {
        [API_EP_CREATE_FUNCTION] = change,
        [API_EP_LIST_FUNCTIONS] = list_functions,
        [API_EP_GET_FUNCTION] = get_function,
        [API_EP_DELETE_FUNCTION] = delete_function,
        [API_EP_PUT_FUNCTION_CSC] = change,
        [API_EP_GET_FUNCTION_CSC] = get_function_csc,
        [API_EP_DELETE_FUNCTION_CSC] = delete_function_csc,
        [API_EP_ROLLBACK] = rollback,
        [API_EP_CREATE_CSC] = change,
        [API_EP_LIST_CSCS] = list_cscs,
        [API_EP_GET_CSC] = get_csc,
        [API_EP_UPDATE_CSC] = change,
        [API_EP_DELETE_CSC] = delete_csc,
        [API_EP_PUT_PROFILE] = change,
        [API_EP_LIST_PROFILES] = list_profiles,
        [API_EP_REVOKE_PROFILE] = change,
        [API_EP_REVOKE_SIGNATURE] = change,
        [API_EP_DECISIONS] = decisions,
        [API_EP_HEALTH] = health,
        [API_EP_METRICS] = metrics,
};

enum MHD_Result api_handle(req *r) {
        enum MHD_Result (*h)(req *) = handlers[r->m.route->endpoint];
        return h ? h(r) : MHD_NO;
}
