/* The API: HTTP/1.1 + JSON over a unix socket (DESIGN §10), served by libmicrohttpd from
 * the libuv loop.
 *
 * MHD runs without threads of its own: its epoll fd sits under a uv_poll_t and its timeout
 * under a uv_timer_t, and every MHD_run() happens on the loop thread. A package body streams
 * into a private staging file as it arrives (never buffered whole); once complete, the
 * connection is suspended, the package joins its function's queue like an inbox drop, and
 * the connection is resumed with the decision once the record is durable. JSON bodies are
 * capped at API_JSON_MAX. The peer is read with SO_PEERCRED on the connection's fd. Which
 * route a request takes, and what its JSON body may say, is api_route.c's (no I/O there). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "api.h"
#include "gate.h"
#include "sg_journal.h"

#define API_HEADER_MEMORY (8 * 1024)
#define API_CONNECTIONS 64
#define API_IDLE_TIMEOUT 30

struct api {
        gate *g;
        struct MHD_Daemon *mhd;
        int listen_fd;
        char socket_path[PATH_MAX]; /* empty when socket-activated (systemd owns the file) */
        uv_poll_t poll;
        uv_timer_t timer;
        bool started, closing;
        unsigned uploads;           /* package bodies being received or waiting for a decision */
        unsigned suspended;
};

static void api_run(api *a);

/* ---- responses ----------------------------------------------------------------------- */

static enum MHD_Result send_text(req *r, unsigned status, const char *type, const char *text, size_t len,
                                 const char *error_type) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *) text, MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return MHD_NO;
        (void) MHD_add_response_header(resp, "Content-Type", type);
        if (error_type)
                (void) MHD_add_response_header(resp, "X-Amzn-ErrorType", error_type);
        enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        r->responded = true;
        return ok;
}

enum MHD_Result api_send_json(req *r, unsigned status, cJSON *body) {
        if (status == MHD_HTTP_NO_CONTENT) {
                cJSON_Delete(body);
                return send_text(r, status, "application/json", "", 0, NULL);
        }
        char *text = body ? cJSON_PrintUnformatted(body) : NULL;
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(body, "Code");
        enum MHD_Result ok = text ? send_text(r, status, "application/json", text, strlen(text),
                                              status >= 400 && cJSON_IsString(code) ? code->valuestring : NULL)
                                  : send_text(r, 500, "application/json", "{}", 2, NULL);
        free(text);
        cJSON_Delete(body);
        return ok;
}

static cJSON *api_error_body(unsigned status, const char *code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
static cJSON *api_error_body(unsigned status, const char *code, const char *fmt, va_list ap) {
        char msg[1024];
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        /* Messages quote what the client sent: bytes that are not printable ASCII become '?' so
         * the answer stays valid JSON (cJSON copies bytes, it does not check UTF-8). */
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
        cJSON *j = cJSON_CreateObject();
        if (j) {
                cJSON_AddStringToObject(j, "Type", status >= 500 ? "Service" : "User");
                cJSON_AddStringToObject(j, "Code", code);
                cJSON_AddStringToObject(j, "Message", msg);
        }
        return j;
}

enum MHD_Result api_error(req *r, unsigned status, const char *code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        cJSON *j = api_error_body(status, code, fmt, ap);
        va_end(ap);
        return api_send_json(r, status, j);
}

enum MHD_Result api_send_problem(req *r, const api_problem *p) { return api_error(r, p->status, p->code, "%s", p->message); }

/* ---- authorization ------------------------------------------------------------------- */

static bool listed(const char (*names)[64], size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(names[i], name) == 0)
                        return true;
        return false;
}

/* The peer's role: admin ⊇ deployer ⊇ reader. uid 0 is admin (DESIGN §10). */
static int peer_role(gate *g, const struct ucred *c) {
        if (c->uid == 0)
                return API_ROLE_ADMIN;
        char buf[4096], user[64] = "";
        struct passwd pw, *pwp = NULL;
        gid_t groups[256];
        int ngroups = 0;
        if (getpwuid_r(c->uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp) {
                snprintf(user, sizeof(user), "%s", pw.pw_name);
                ngroups = (int) SG_ELEMENTSOF(groups);
                if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ngroups) < 0)
                        ngroups = 0;
        }
        if (ngroups < (int) SG_ELEMENTSOF(groups))
                groups[ngroups++] = c->gid;
        for (int role = SG_ROLE_ADMIN; role < SG_ROLE_MAX_; role++) {
                const sg_role_members *m = &g->settings.roles[role];
                bool match = user[0] && listed(m->users, m->n_users, user);
                for (int i = 0; i < ngroups && !match; i++) {
                        struct group gr, *grp = NULL;
                        if (getgrgid_r(groups[i], &gr, buf, sizeof(buf), &grp) == 0 && grp)
                                match = listed(m->groups, m->n_groups, gr.gr_name);
                }
                if (match)
                        return role == SG_ROLE_ADMIN ? API_ROLE_ADMIN : role == SG_ROLE_DEPLOYER ? API_ROLE_DEPLOYER
                                                                                                 : API_ROLE_READER;
        }
        return API_ROLE_NONE;
}

static const char *role_word(int role) {
        return role == API_ROLE_ADMIN ? "admin" : role == API_ROLE_DEPLOYER ? "deployer" : "reader";
}

static enum MHD_Result deny(req *r, int needed) {
        gate *g = r->a->g;
        char t[SG_TIME_LEN + 1] = "";
        (void) sg_time_format(sg_time_now(), t);
        cJSON *ev = cJSON_CreateObject(), *peer;
        if (ev) {
                cJSON_AddStringToObject(ev, "time", t);
                cJSON_AddStringToObject(ev, "event", "denied");
                if ((peer = cJSON_AddObjectToObject(ev, "peer"))) {
                        cJSON_AddNumberToObject(peer, "uid", r->cred.uid);
                        cJSON_AddNumberToObject(peer, "gid", r->cred.gid);
                        cJSON_AddNumberToObject(peer, "pid", r->cred.pid);
                }
                cJSON_AddStringToObject(ev, "method", r->m.method);
                cJSON_AddStringToObject(ev, "path", r->m.path);
                cJSON_AddStringToObject(ev, "required", role_word(needed));
        }
        char msg[1400];
        if (snprintf(msg, sizeof(msg), "API access denied: uid %u gid %u pid %d may not %s %s (needs the %s role)",
                     (unsigned) r->cred.uid, (unsigned) r->cred.gid, (int) r->cred.pid, r->m.method, r->m.path,
                     role_word(needed)) >= (int) sizeof(msg))
                msg[sizeof(msg) - 1] = '\0';
        g->metrics.denied++;
        char f_uid[48], f_gid[48], f_pid[48], f_path[1100];
        snprintf(f_uid, sizeof(f_uid), "SIGNGATE_PEER_UID=%u", (unsigned) r->cred.uid);
        snprintf(f_gid, sizeof(f_gid), "SIGNGATE_PEER_GID=%u", (unsigned) r->cred.gid);
        snprintf(f_pid, sizeof(f_pid), "SIGNGATE_PEER_PID=%d", (int) r->cred.pid);
        snprintf(f_path, sizeof(f_path), "SIGNGATE_REQUEST=%.15s %.1023s", r->m.method, r->m.path);
        const char *const fields[] = {f_uid, f_gid, f_pid, f_path, "SIGNGATE_OUTCOME=denied", NULL};
        gate_audit_event(g, ev, LOG_WARNING, SG_MESSAGE_DENIED, fields, msg);
        return api_error(r, MHD_HTTP_FORBIDDEN, "AccessDeniedException", "uid %u may not %s %s: the %s role is required",
                         (unsigned) r->cred.uid, r->m.method, r->m.path, role_word(needed));
}

/* ---- package uploads ------------------------------------------------------------------ */

static void on_upload_decided(job *j, void *ctx) {
        req *r = ctx;
        r->job = NULL;
        r->decided = true;
        r->decision_err = j->err;
        if (j->record)
                r->record = cJSON_Duplicate(j->record, true);
        r->outcome = j->outcome;
        /* The request may have been torn down (the client went away): then only the record remains. */
        if (r->conn && r->suspended) {
                r->suspended = false;
                r->a->suspended--;
                MHD_resume_connection(r->conn);
                api_run(r->a);
        } else if (r->orphan)
                api_req_free(r);
}

static enum MHD_Result answer_decision(req *r) {
        if (r->decision_err < 0 || !r->record)
                return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "ServiceException",
                                 "the gate could not decide the package (an I/O failure at the gate; see its journal); send it again");
        cJSON *rec = SG_TAKE_PTR(r->record);
        if (r->outcome != SG_OUTCOME_REJECTED)
                return api_send_json(r, MHD_HTTP_OK, rec);
        const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(rec, "reasons");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(rec, "message");
        bool integrity = false;
        for (const cJSON *x = reasons ? reasons->child : NULL; x; x = x->next)
                integrity |= cJSON_IsString(x) && strcmp(x->valuestring, "INTEGRITY") == 0;
        cJSON *body = cJSON_CreateObject();
        if (!body) {
                cJSON_Delete(rec);
                return MHD_NO;
        }
        cJSON_AddStringToObject(body, "Type", "User");
        cJSON_AddStringToObject(body, "Code", integrity ? "InvalidCodeSignatureException" : "CodeVerificationFailedException");
        cJSON_AddStringToObject(body, "Message", cJSON_IsString(msg) ? msg->valuestring : "rejected");
        cJSON_AddItemToObject(body, "Decision", rec);
        return api_send_json(r, MHD_HTTP_FORBIDDEN, body);
}

/* The body is complete: hand the staged package to the pipeline and wait. */
static enum MHD_Result submit_upload(req *r) {
        gate *g = r->a->g;
        if (r->write_error) {
                if (r->fd >= 0)
                        close(r->fd);
                r->fd = -1;
                (void) unlinkat(g->staging_fd, r->staging, 0);
                r->staging[0] = '\0';
                return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "ServiceException",
                                 "cannot stage the upload: %s; the package was not decided, send it again",
                                 strerror(r->write_error));
        }
        if (r->too_large)
                return api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "RequestTooLargeException",
                                 "the package is over the limit of %llu bytes", (unsigned long long) g->settings.limits.package_bytes);
        if (close(r->fd) < 0) {
                r->fd = -1;
                return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "ServiceException", "cannot store the upload: %s",
                                 strerror(errno));
        }
        r->fd = -1;
        /* args[0] passed sg_name_valid(): at most 64 bytes, so the name always fits. */
        char name[GATE_INBOX_NAME_MAX + 1];
        if (snprintf(name, sizeof(name), "%.64s%s", r->m.args[0], r->kind == SG_KIND_LAYER ? ".layer.zip" : ".zip") >=
            (int) sizeof(name))
                return api_error(r, MHD_HTTP_BAD_REQUEST, "InvalidParameterValueException", "name too long");
        job *j = gate_job_new(g, name, uv_hrtime(), r->id);
        if (!j)
                return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "ServiceException", "out of memory");
        j->from_api = true;
        j->kind = r->kind;
        j->has_name = true;
        snprintf(j->name, sizeof(j->name), "%.64s", r->m.args[0]);
        snprintf(j->staging, sizeof(j->staging), "%s", r->staging);
        r->staging[0] = '\0'; /* the job owns the staging file now */
        j->uid = r->cred.uid;
        j->gid = r->cred.gid;
        j->pid = r->cred.pid;
        j->size = r->received;
        j->on_decided = on_upload_decided;
        j->ctx = r;
        r->job = j;
        gate_enqueue(g, j);
        r->suspended = true;
        r->a->suspended++;
        MHD_suspend_connection(r->conn);
        gate_dispatch(g);
        return MHD_YES;
}

static enum MHD_Result count_lengths(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
        req *r = cls;
        (void) kind;
        if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
                return MHD_YES;
        if (r->seen_length[0] && strcmp(r->seen_length, value) != 0)
                r->conflicting_length = true;
        snprintf(r->seen_length, sizeof(r->seen_length), "%.31s", value);
        return MHD_YES;
}

static enum MHD_Result begin(api *a, struct MHD_Connection *conn, const char *url, const char *method, void **con_cls) {
        gate *g = a->g;
        req *r = calloc(1, sizeof(*r));
        if (!r)
                return MHD_NO;
        *con_cls = r;
        r->a = a;
        r->conn = conn;
        r->fd = -1;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        socklen_t len = sizeof(r->cred);
        r->cred.uid = (uid_t) -1;
        r->cred.gid = (gid_t) -1;
        if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &r->cred, &len) < 0)
                r->no_cred = true;
        /* Two Content-Length headers that disagree are a request smuggling classic: refused. */
        (void) MHD_get_connection_values(conn, MHD_HEADER_KIND, count_lengths, r);
        if (api_route_match(method, url, &r->m, &r->refusal) < 0)
                return MHD_YES;
        const api_route *rt = r->m.route;
        if (rt->role != API_ROLE_NONE && (r->no_cred || peer_role(g, &r->cred) < rt->role)) {
                r->denied = true;
                return MHD_YES;
        }
        if (rt->body == API_BODY_PACKAGE) {
                if (api_route_check_upload(&r->m, &r->refusal) < 0) {
                        r->bad_name = true;
                        return MHD_YES;
                }
                r->kind = rt->endpoint == API_EP_PUBLISH_LAYER_VERSION ? SG_KIND_LAYER : SG_KIND_FUNCTION;
                const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                uint64_t declared;
                if (cl && sg_parse_u64(cl, 0, UINT64_MAX, &declared) == 0 && declared > g->settings.limits.package_bytes) {
                        r->too_large = true; /* answered before the body is read */
                        return MHD_YES;
                }
                if (sg_uuid_new(r->id) < 0)
                        return MHD_NO;
                snprintf(r->staging, sizeof(r->staging), "api-%s.zip", r->id);
                r->fd = openat(g->staging_fd, r->staging, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (r->fd < 0) {
                        r->staging[0] = '\0';
                        r->io_error = errno;
                        return MHD_YES;
                }
                a->uploads++;
                r->counted_upload = true;
        }
        return MHD_YES;
}

/* Answers a request that is refused before its body: on the first call, where MHD lets a
 * response be queued without reading the body (it then closes the connection). Returns
 * MHD_YES with r->responded false when the request goes on. */
static enum MHD_Result early_answer(req *r) {
        gate *g = r->a->g;
        if (!r->m.route)
                return api_send_problem(r, &r->refusal); /* 404 or 405 */
        if (r->denied)
                return deny(r, r->m.route->role);
        if (r->bad_name)
                return api_send_problem(r, &r->refusal);
        if (r->io_error)
                return api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "ServiceException", "cannot stage the upload: %s",
                                 strerror(r->io_error));
        if (r->m.route->body == API_BODY_PACKAGE && r->too_large && !r->counted_upload)
                return api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "RequestTooLargeException",
                                 "the package is over the limit of %llu bytes", (unsigned long long) g->settings.limits.package_bytes);
        if (r->conflicting_length)
                return api_error(r, MHD_HTTP_BAD_REQUEST, "InvalidRequestContentException",
                                 "the request has conflicting Content-Length headers");
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
        api *a = cls;
        gate *g = a->g;
        req *r = *con_cls;
        (void) version;

        if (!r) {
                enum MHD_Result ok = begin(a, conn, url, method, con_cls);
                r = *con_cls;
                return ok == MHD_YES && r ? early_answer(r) : ok;
        }
        if (r->responded)
                return MHD_YES;
        if (r->decided)
                return answer_decision(r);

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (r->m.route->body == API_BODY_NONE) {
                        r->unexpected_body = true;
                        return MHD_YES;
                }
                if (r->m.route->body == API_BODY_PACKAGE) {
                        if (r->too_large || r->received + n > g->settings.limits.package_bytes) {
                                r->too_large = true; /* keep reading, stop storing: a clean 413 at the end */
                                return MHD_YES;
                        }
                        /* The loop thread only appends to the page cache here; the worker hashes.
                         * A failed write (a full disk) is answered once the body is in: MHD cannot
                         * send a response in the middle of a request body. */
                        if (r->fd >= 0 && !r->write_error && sg_write_all(r->fd, upload_data, n) < 0)
                                r->write_error = errno ? errno : EIO;
                        r->received += n;
                        return MHD_YES;
                }
                if (r->json_len + n > API_JSON_MAX) {
                        r->too_large = true;
                        return MHD_YES;
                }
                char *bigger = realloc(r->json, r->json_len + n + 1);
                if (!bigger)
                        return MHD_NO;
                r->json = bigger;
                memcpy(r->json + r->json_len, upload_data, n);
                r->json_len += n;
                r->json[r->json_len] = '\0';
                return MHD_YES;
        }
        /* The whole request is in. */
        if (r->m.route->body == API_BODY_PACKAGE)
                return submit_upload(r);
        if (r->too_large)
                return api_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "RequestTooLargeException", "a JSON body is limited to %d bytes",
                                 API_JSON_MAX);
        if (r->unexpected_body)
                return api_error(r, MHD_HTTP_BAD_REQUEST, "InvalidRequestContentException", "%s %s takes no body", r->m.method,
                                 r->m.path);
        return api_handle(r);
}

gate *api_req_gate(const req *r) { return r->a->g; }

unsigned api_uploads_in_flight(gate *g) { return g->api ? g->api->uploads : 0; }

void api_req_free(req *r) {
        if (!r)
                return;
        if (r->fd >= 0)
                close(r->fd);
        if (r->staging[0])
                (void) unlinkat(r->a->g->staging_fd, r->staging, 0);
        if (r->counted_upload)
                r->a->uploads--;
        free(r->json);
        cJSON_Delete(r->record);
        free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
        req *r = *con_cls;
        (void) cls;
        (void) conn;
        (void) toe;
        if (!r)
                return;
        *con_cls = NULL;
        r->conn = NULL;
        if (r->job) {
                /* The client left while its package was being decided: the decision is still
                 * recorded; the request goes when the job reports back. */
                r->orphan = true;
                return;
        }
        api_req_free(r);
}

/* ---- the loop glue ------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void api_run(api *a) {
        if (!a->mhd)
                return;
        (void) MHD_run(a->mhd);
        MHD_UNSIGNED_LONG_LONG ms = 0;
        if (MHD_get_timeout(a->mhd, &ms) == MHD_YES)
                uv_timer_start(&a->timer, on_timer, ms, 0);
        else
                uv_timer_stop(&a->timer);
}

static void on_timer(uv_timer_t *t) { api_run(t->data); }

static void on_readable(uv_poll_t *p, int status, int events) {
        (void) status;
        (void) events;
        api_run(p->data);
}

static int open_socket(api *a) {
        gate *g = a->g;
        int n = sd_listen_fds(1);
        if (n > 1) {
                gate_log(g, LOG_ERR, NULL, "socket activation passed %d sockets; signgated takes exactly one", n);
                return -EINVAL;
        }
        if (n == 1) {
                a->listen_fd = SD_LISTEN_FDS_START;
                return 0;
        }
        if (snprintf(a->socket_path, sizeof(a->socket_path), "%s%s", g->root, g->settings.socket_path) >=
            (int) sizeof(struct sockaddr_un) - 2)
                return -ENAMETOOLONG;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, a->socket_path, strlen(a->socket_path) + 1);
        struct stat st;
        /* A stale socket from a previous run is replaced; any other file there is not ours. */
        if (lstat(a->socket_path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                (void) unlink(a->socket_path);
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        mode_t old = umask(0177); /* never briefly wider than the mode asked for */
        int r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0 || chmod(a->socket_path, g->settings.socket_mode) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (g->settings.socket_group[0]) {
                struct group *gr = getgrnam(g->settings.socket_group);
                if (!gr || chown(a->socket_path, (uid_t) -1, gr->gr_gid) < 0)
                        gate_log(g, LOG_WARNING, NULL, "cannot give the API socket to group %s", g->settings.socket_group);
        }
        if (listen(fd, 128) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        a->listen_fd = fd;
        return 0;
}

int api_start(gate *g) {
        api *a = calloc(1, sizeof(*a));
        int r;
        if (!a)
                return -ENOMEM;
        a->g = g;
        a->listen_fd = -1;
        g->api = a;
        if ((r = open_socket(a)) < 0)
                return r;
        a->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
                                  MHD_OPTION_LISTEN_SOCKET, (MHD_socket) a->listen_fd,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) API_HEADER_MEMORY,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned) API_CONNECTIONS,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) API_IDLE_TIMEOUT,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
        if (!a->mhd)
                return -EIO;
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        if ((r = uv_poll_init(g->loop, &a->poll, info->epoll_fd)) < 0)
                return r;
        uv_timer_init(g->loop, &a->timer);
        a->poll.data = a->timer.data = a;
        a->started = true;
        if ((r = uv_poll_start(&a->poll, UV_READABLE, on_readable)) < 0)
                return r;
        api_run(a);
        return 0;
}

void api_stop(gate *g) {
        api *a = g->api;
        if (!a || !a->mhd || a->closing)
                return;
        /* No new connections; the ones in flight finish (an upload gets its decision). */
        a->closing = true;
        MHD_socket s = MHD_quiesce_daemon(a->mhd);
        (void) s;
}

bool api_idle(gate *g) {
        api *a = g->api;
        return !a || (a->suspended == 0 && a->uploads == 0);
}

void api_free(gate *g) {
        api *a = g->api;
        if (!a)
                return;
        if (a->mhd)
                MHD_stop_daemon(a->mhd);
        a->mhd = NULL;
        if (a->listen_fd >= 0)
                close(a->listen_fd);
        if (a->socket_path[0])
                (void) unlink(a->socket_path);
        if (a->started) {
                uv_poll_stop(&a->poll);
                uv_timer_stop(&a->timer);
        }
        /* The handles are closed by the loop's final walk; a lives as long as the process. */
}
