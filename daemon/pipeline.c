/* The job pipeline (DESIGN §8).
 *
 *   loop:   claim → enqueue on the function's queue → dispatch (one job per function at a time,
 *           GATE_WORKERS at once)
 *   worker: open the claimed entry O_NOFOLLOW|O_NONBLOCK, copy it into a private staging file,
 *           then ONE pass over that copy verifies it and extracts it into a hidden stage
 *           directory; decide; promote (or discard the stage and file the package in
 *           rejected/) — all on the copy, never on the inbox entry
 *   commit: the records of the jobs decided meanwhile are appended to the audit file together,
 *           one write and one fdatasync (group commit, in the thread pool)
 *   loop:   send each record to journald, remove the inbox entry (or answer the client), run
 *           the post-promotion hook
 *
 * An I/O failure (INTERNAL) leaves the claimed entry in place and blocks its function's queue
 * for a back-off, after which the same job (same decision id) runs again: nothing is lost, and
 * nothing newer for that function overtakes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "gate.h"
#include "sg_journal.h"

#define COPY_CHUNK (1u << 20)

static uint64_t now_ms(gate *g) { return uv_now(g->loop); }

static double mono_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

job *gate_job_new(gate *g, const char *inbox_name, uint64_t arrival_ns, const char *id) {
        job *j = calloc(1, sizeof(*j));
        if (!j)
                return NULL;
        j->g = g;
        j->arrival_ns = arrival_ns;
        snprintf(j->inbox_name, sizeof(j->inbox_name), "%s", inbox_name);
        if (id)
                snprintf(j->id, sizeof(j->id), "%s", id);
        else if (sg_uuid_new(j->id) < 0) {
                free(j);
                return NULL;
        }
        return j;
}

static fqueue *queue_for(gate *g, const job *j) {
        /* Jobs without a function name (bad names, stray entries) share one queue. */
        const char *name = j->has_name ? j->name : "";
        sg_kind kind = j->has_name ? j->kind : SG_KIND_FUNCTION;
        for (fqueue *q = g->queues; q; q = q->next)
                if (q->kind == kind && strcmp(q->name, name) == 0)
                        return q;
        fqueue *q = calloc(1, sizeof(*q));
        if (!q)
                return NULL;
        q->kind = kind;
        snprintf(q->name, sizeof(q->name), "%s", name);
        q->next = g->queues;
        g->queues = q;
        return q;
}

void gate_enqueue(gate *g, job *j) {
        fqueue *q = queue_for(g, j);
        if (!q) {
                /* Out of memory: leave the claimed entry; the next start-up resumes it. */
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "out of memory queueing %s; it stays in the inbox", j->inbox_name);
                free(j);
                return;
        }
        j->q = q;
        if (q->tail)
                q->tail->next = j;
        else
                q->head = j;
        q->tail = j;
        g->queued++;
}

static void job_free(job *j) {
        if (!j)
                return;
        cJSON_Delete(j->record);
        if (j->store)
                gate_store_unref(j->store);
        free(j);
}

/* ---- worker side ------------------------------------------------------------------------ */

static void fail(job *j, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(job *j, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        j->err = err < 0 ? err : -EIO;
        (void) vsnprintf(j->err_msg, sizeof(j->err_msg), fmt, ap);
        va_end(ap);
}

/* Copies src into a new private file; -EFBIG past limit. */
static int copy_into(int src, int dst, uint64_t limit, uint64_t *ret_size) {
        uint64_t total = 0;
        for (;;) {
                ssize_t n = copy_file_range(src, NULL, dst, NULL, COPY_CHUNK, 0);
                if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
                        char buf[65536];
                        n = read(src, buf, sizeof(buf));
                        if (n > 0 && sg_write_all(dst, buf, (size_t) n) < 0)
                                return -errno;
                }
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                total += (uint64_t) n;
                if (total > limit)
                        return -EFBIG;
        }
        *ret_size = total;
        return 0;
}

/* Moves the staged copy to rejected/F/ID.zip and writes ID.json beside it. */
static int file_rejection(job *j) {
        gate *g = j->g;
        const char *dir = j->has_name ? j->name : "_";
        char zip[64], json[64];
        int r;
        if (mkdirat(g->rejected_fd, dir, 0750) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(g->rejected_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        snprintf(zip, sizeof(zip), "%s.zip", j->id);
        snprintf(json, sizeof(json), "%s.json", j->id);
        r = 0;
        if (j->reject_from_inbox) {
                /* Never read, so never copied: the spool's own rename files it (the inbox and
                 * rejected/ share the spool's filesystem). */
                if (j->staging[0])
                        (void) unlinkat(g->staging_fd, j->staging, 0);
                j->staging[0] = '\0';
                if (renameat(g->inbox_fd, j->claimed, fd, zip) < 0)
                        r = -errno;
        } else if (j->staging[0] && renameat(g->staging_fd, j->staging, fd, zip) < 0) {
                r = -errno;
                if (r == -EXDEV) {
                        /* staging and the spool on different filesystems: copy, then drop staging. */
                        int in = openat(g->staging_fd, j->staging, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        int out = openat(fd, zip, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
                        uint64_t size;
                        r = in < 0 || out < 0 ? -errno : copy_into(in, out, UINT64_MAX, &size);
                        if (r == 0 && fsync(out) < 0)
                                r = -errno;
                        if (in >= 0)
                                close(in);
                        if (out >= 0)
                                close(out);
                }
        }
        if (r == 0) {
                j->staging[0] = '\0';
                /* Readable by the gate's group (its admins), as the audit file is. */
                if (fchmodat(fd, zip, 0640, 0) < 0)
                        r = -errno;
        }
        char *text = r == 0 ? cJSON_Print(j->record) : NULL;
        if (r == 0)
                r = text ? sg_write_file_atomic(fd, json, text, strlen(text), 0640) : -ENOMEM;
        free(text);
        close(fd);
        return r;
}

/* Decides a layer: against the CSC of every function that uses it; the worst outcome wins.
 * A layer no function uses is unbound (unboundFunctions decides). */
static void decide_layer(const sg_facts *facts, sg_decide_ctx *ctx, const char *layer, sg_decision *d) {
        bool any = false;
        sg_decision worst = {0};
        for (size_t i = 0; i < ctx->store->n_functions; i++) {
                const sg_function *f = &ctx->store->functions[i];
                const cJSON *layers = cJSON_GetObjectItemCaseSensitive(f->doc, "Layers");
                bool uses = false;
                for (const cJSON *l = layers ? layers->child : NULL; l && !uses; l = l->next)
                        uses = cJSON_IsString(l) && strcmp(l->valuestring, layer) == 0;
                if (!uses)
                        continue;
                sg_decision one;
                ctx->binding = f;
                sg_decide(facts, ctx, &one);
                if (!any || one.outcome > worst.outcome)
                        worst = one;
                any = true;
        }
        if (!any) {
                ctx->binding = NULL;
                sg_decide(facts, ctx, &worst);
        }
        *d = worst;
}

/* Worker threads yield to the loop thread: under a burst every core is busy verifying, and the
 * loop still answers health checks and API clients promptly. Linux applies nice per thread. */
static void worker_lower_priority(void) {
        static _Thread_local bool done;
        if (!done) {
                (void) setpriority(PRIO_PROCESS, (id_t) gettid(), GATE_WORKER_NICE);
                done = true;
        }
}

static void job_work(uv_work_t *w) {
        worker_lower_priority();
        job *j = w->data;
        gate *g = j->g;
        const sg_limits *lim = &g->settings.limits;
        sg_facts facts = {0};
        sg_envelope env = {0};
        bool have_env = false;
        sg_package *pkg = NULL;
        sg_stage *stage = NULL;
        sg_decision d = {0};
        unsigned char whole[SG_DIGEST_LEN] = {0};
        uint64_t size = 0;
        int src = -1, copy = -1, r;
        int64_t now = sg_time_now();

        double t0 = mono_seconds();
        if (j->pre_reason != SG_REASON_NONE) {
                sg_error_set(&facts.package_error, j->pre_reason, "%s", j->pre_msg);
                size = j->size;
                goto decided;
        }
        if (j->from_api) {
                /* The upload streamed into its own private staging file: nothing to copy. */
                copy = openat(g->staging_fd, j->staging, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                struct stat st;
                if (copy < 0 || fstat(copy, &st) < 0) {
                        fail(j, -errno, "cannot open the uploaded package: %s", strerror(errno));
                        goto out;
                }
                size = (uint64_t) st.st_size;
                goto verify;
        }
        src = openat(g->inbox_fd, j->claimed, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (src < 0) {
                fail(j, -errno, "cannot open %s: %s", j->claimed, strerror(errno));
                goto out;
        }
        struct stat before, after;
        if (fstat(src, &before) < 0) {
                fail(j, -errno, "cannot stat %s: %s", j->claimed, strerror(errno));
                goto out;
        }
        if (!S_ISREG(before.st_mode) || before.st_nlink > 1) {
                /* Swapped after the claim's lstat: judged without reading, like any such entry. */
                sg_error_set(&facts.package_error, SG_REASON_MALFORMED, "the inbox entry is not a single regular file; it was not read");
                goto decided;
        }
        size = (uint64_t) before.st_size;
        if (size > lim->package_bytes) {
                sg_error_set(&facts.package_error, SG_REASON_LIMIT_EXCEEDED, "the package is %llu bytes, over the limit of %llu",
                             (unsigned long long) size, (unsigned long long) lim->package_bytes);
                j->reject_from_inbox = true;
                goto decided;
        }
        snprintf(j->staging, sizeof(j->staging), "%s.zip", j->id);
        (void) unlinkat(g->staging_fd, j->staging, 0); /* a retry's leftover */
        copy = openat(g->staging_fd, j->staging, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (copy < 0) {
                j->staging[0] = '\0';
                fail(j, -errno, "cannot create the staging copy: %s", strerror(errno));
                goto out;
        }
        r = copy_into(src, copy, lim->package_bytes, &size);
        if (r == -EFBIG) {
                sg_error_set(&facts.package_error, SG_REASON_LIMIT_EXCEEDED, "the package grew past the limit of %llu bytes",
                             (unsigned long long) lim->package_bytes);
                j->reject_from_inbox = true;
                close(copy);
                copy = -1;
                goto decided;
        }
        if (r < 0) {
                fail(j, r, "cannot copy the package into staging: %s", strerror(-r));
                goto out;
        }
        if (fstat(src, &after) < 0 || after.st_size != before.st_size ||
            after.st_mtim.tv_nsec != before.st_mtim.tv_nsec || after.st_mtim.tv_sec != before.st_mtim.tv_sec) {
                /* A writer is still at it: judging now would judge a partial file. */
                fail(j, -EAGAIN, "the package changed while it was copied; retrying");
                goto out;
        }
        close(src);
        src = -1;

verify:
        if (j->has_name && (r = g->adapter->ops->stage(g->adapter, j->kind, j->name, j->id, &stage)) < 0) {
                fail(j, r, "cannot create a staging release for %s: %s", j->name, strerror(-r));
                goto out;
        }
        r = sg_package_inspect(copy, lim, stage ? sg_stage_sink(stage) : NULL, &pkg, &facts.package_error);
        if (r < 0 && r != -EINVAL) {
                fail(j, r, "cannot verify and extract the package: %s", strerror(-r));
                goto out;
        }
        facts.platform_id = SG_PLATFORM_LAMBDA;
        if (pkg) {
                facts.digest = pkg->digest;
                facts.canonical_size = pkg->canonical_size;
                facts.has_block = pkg->comment_len > 0;
                if (facts.has_block)
                        have_env = sg_envelope_parse(pkg->comment, pkg->comment_len, &env, &facts.envelope_error) == 0;
                facts.envelope = have_env ? &env : NULL;
        }

decided:;
        double t1 = mono_seconds();
        j->verify_seconds = t1 - t0;
        const unsigned char *record_digest = facts.digest;
        if (!record_digest && copy >= 0 && sg_file_sha384(copy, whole, NULL) == 0)
                record_digest = whole;
        sg_decide_ctx ctx = {
                .function = j->has_name ? j->name : j->inbox_name,
                .store = j->store->store,
                .unbound_allow = g->settings.unbound_allow,
                .now = now,
                .first_seen = facts.digest ? firstseen_get(g, facts.digest, now) : now,
        };
        if (j->kind == SG_KIND_LAYER && j->has_name)
                decide_layer(&facts, &ctx, j->name, &d);
        else {
                ctx.binding = j->has_name ? sg_store_find_function(ctx.store, j->name) : NULL;
                sg_decide(&facts, &ctx, &d);
        }
        sg_record_info info = {
                .time = now,
                .decision_id = j->id,
                .kind = sg_kind_name(j->kind),
                .function = j->has_name ? j->name : NULL,
                .source = j->from_api ? "api" : "inbox",
                .has_peer = true,
                .uid = j->uid,
                .gid = j->gid,
                .pid = j->pid,
                .package_name = j->inbox_name,
                .package_size = size,
                .package_sha384 = record_digest ? record_digest : whole,
        };
        j->record = sg_decision_record(&d, &facts, &info);
        if (!j->record) {
                fail(j, -ENOMEM, "out of memory building the decision record");
                goto out;
        }
        if (!record_digest)
                cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j->record, "package"), "sha384",
                                                       cJSON_CreateNull());
        j->outcome = d.outcome;

        if (d.outcome != SG_OUTCOME_REJECTED && (!pkg || !facts.digest)) {
                /* decide() only approves a package it has facts for; a decision that says
                 * otherwise is a bug, and nothing is promoted on it. */
                fail(j, -EPROTO, "approved without package facts; not promoted");
                goto out;
        }
        if (d.outcome != SG_OUTCOME_REJECTED) {
                char cur[SG_RELEASE_MAX];
                unsigned char cur_digest[SG_DIGEST_LEN];
                if (j->kind == SG_KIND_FUNCTION &&
                    g->adapter->ops->current(g->adapter, j->name, cur, cur_digest) == 0 &&
                    memcmp(cur_digest, facts.digest, SG_DIGEST_LEN) == 0) {
                        /* Identical to what is live (a re-drop, or a crash after the swap but
                         * before the record): recorded, not promoted twice. */
                        cJSON_ReplaceItemInObjectCaseSensitive(j->record, "release", cJSON_CreateString(cur));
                        goto out;
                }
                /* The private copy has served its purpose (a promotion never files it): dropped
                 * now, before the promotion's syncfs, its dirty pages are never written out. */
                if (copy >= 0) {
                        close(copy);
                        copy = -1;
                }
                if (j->staging[0]) {
                        (void) unlinkat(g->staging_fd, j->staging, 0);
                        j->staging[0] = '\0';
                }
                r = sg_stage_keep_facts(stage, facts.digest, facts.canonical_size,
                                        facts.has_block ? pkg->comment : NULL, facts.has_block ? pkg->comment_len : 0);
                if (r < 0) {
                        fail(j, r, "cannot keep the package facts with the release: %s", strerror(-r));
                        goto out;
                }
                char release[SG_RELEASE_MAX];
                sg_release_name(now, facts.digest, release);
                cJSON_ReplaceItemInObjectCaseSensitive(j->record, "release", cJSON_CreateString(release));
                r = g->adapter->ops->promote(g->adapter, stage, facts.digest, now, j->record, &j->promotion);
                if (r < 0) {
                        fail(j, r, "cannot promote release %s of %s: %s", release, j->name, strerror(-r));
                        goto out;
                }
                cJSON_ReplaceItemInObjectCaseSensitive(j->record, "release", cJSON_CreateString(j->promotion.release));
                j->promoted_new = true;
                j->promote_seconds = mono_seconds() - t1;
                if (j->kind == SG_KIND_FUNCTION && (r = g->adapter->ops->prune(g->adapter, j->name)) < 0)
                        j->err_msg[0] = '\0'; /* pruning is housekeeping: the next promotion retries it */
        } else if (j->pre_reason == SG_REASON_NONE && j->has_name && (j->staging[0] || j->reject_from_inbox) &&
                   (r = file_rejection(j)) < 0) {
                fail(j, r, "cannot file the rejected package in rejected/: %s", strerror(-r));
                goto out;
        }
out:
        if (stage)
                g->adapter->ops->discard(g->adapter, stage); /* frees it; a promoted stage is gone already */
        if (have_env)
                sg_envelope_done(&env);
        sg_package_free(pkg);
        if (src >= 0)
                close(src);
        if (copy >= 0)
                close(copy);
}

/* ---- loop side --------------------------------------------------------------------------- */

typedef struct {
        uv_process_t proc;
        uv_timer_t timer;
        gate *g;
        char function[65], release[SG_RELEASE_MAX];
        int closing;
} hook_run;

static void on_hook_closed(uv_handle_t *h) {
        hook_run *run = h->data;
        if (++run->closing == 2) {
                run->g->hooks--;
                free(run);
        }
}

static void on_hook_exit(uv_process_t *p, int64_t status, int signo) {
        hook_run *run = p->data;
        if (status != 0 || signo != 0)
                gate_log(run->g, LOG_WARNING, NULL, "post-promotion hook for %s release %s failed (%s %d); the promotion stands",
                         run->function, run->release, signo ? "signal" : "exit status", signo ? signo : (int) status);
        uv_timer_stop(&run->timer);
        uv_close((uv_handle_t *) &run->proc, on_hook_closed);
        uv_close((uv_handle_t *) &run->timer, on_hook_closed);
}

static void on_hook_timeout(uv_timer_t *t) {
        hook_run *run = t->data;
        gate_log(run->g, LOG_WARNING, NULL, "post-promotion hook for %s release %s timed out; killing it", run->function,
                 run->release);
        (void) uv_process_kill(&run->proc, SIGKILL);
}

extern char **environ;

/* Runs the configured command (no shell) with the promotion in its environment. */
static void run_hook(gate *g, const job *j) {
        if (g->settings.hook_argc == 0)
                return;
        char *args[SG_HOOK_MAX_ARGS + 1];
        for (size_t i = 0; i < g->settings.hook_argc; i++)
                args[i] = g->settings.hook_argv[i];
        args[g->settings.hook_argc] = NULL;
        size_t n_env = 0;
        while (environ[n_env])
                n_env++;
        char **env = calloc(n_env + 6, sizeof(char *));
        char vars[5][4200];
        hook_run *run = calloc(1, sizeof(*run));
        if (!env || !run) {
                free(env);
                free(run);
                gate_log(g, LOG_ERR, NULL, "out of memory starting the post-promotion hook");
                return;
        }
        size_t k = 0;
        for (size_t i = 0; i < n_env; i++)
                if (strncmp(environ[i], "SIGNGATE_", 9) != 0 && strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
                        env[k++] = environ[i];
        snprintf(vars[0], sizeof(vars[0]), "SIGNGATE_FUNCTION=%s", j->name);
        snprintf(vars[1], sizeof(vars[1]), "SIGNGATE_RELEASE=%s", j->promotion.release);
        snprintf(vars[2], sizeof(vars[2]), "SIGNGATE_RELEASE_PATH=%s", j->promotion.path);
        snprintf(vars[3], sizeof(vars[3]), "SIGNGATE_DECISION_ID=%s", j->id);
        snprintf(vars[4], sizeof(vars[4]), "SIGNGATE_KIND=%s", sg_kind_name(j->kind));
        for (int i = 0; i < 5; i++)
                env[k++] = vars[i];
        env[k] = NULL;
        uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 2},
                                         {.flags = UV_INHERIT_FD, .data.fd = 2}};
        uv_process_options_t o = {
                .exit_cb = on_hook_exit,
                .file = args[0],
                .args = args,
                .env = env,
                .stdio_count = 3,
                .stdio = stdio,
        };
        run->g = g;
        snprintf(run->function, sizeof(run->function), "%s", j->name);
        snprintf(run->release, sizeof(run->release), "%s", j->promotion.release);
        run->proc.data = run->timer.data = run;
        g->hooks++; /* a stop waits for it: it is bounded by its own timeout */
        int r = uv_spawn(g->loop, &run->proc, &o);
        free(env);
        if (r < 0) {
                gate_log(g, LOG_WARNING, NULL, "cannot start the post-promotion hook %s: %s; the promotion stands", args[0],
                         uv_strerror(r));
                /* libuv: a failed spawn's handle must still be closed. */
                run->closing = 1;
                uv_close((uv_handle_t *) &run->proc, on_hook_closed);
                return;
        }
        uv_timer_init(g->loop, &run->timer);
        uv_timer_start(&run->timer, on_hook_timeout, (uint64_t) g->settings.hook_timeout * 1000, 0);
}

static int remove_inbox_entry(gate *g, const job *j) {
        int r = j->is_dir ? sg_remove_tree(g->inbox_fd, j->claimed)
                          : (unlinkat(g->inbox_fd, j->claimed, 0) < 0 && errno != ENOENT ? -errno : 0);
        return r;
}

static const double hist_bounds[GATE_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};

static void observe(uint64_t *buckets, double *sum, uint64_t *count, double v) {
        size_t i = 0;
        while (i < GATE_HIST_BUCKETS && v > hist_bounds[i])
                i++;
        buckets[i]++;
        *sum += v;
        (*count)++;
}

double gate_hist_bound(size_t i) { return hist_bounds[i]; }

static void account(gate *g, const job *j) {
        gate_metrics *m = &g->metrics;
        const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(j->record, "reasons");
        unsigned o = (unsigned) j->outcome;
        if (o > 2)
                o = 2;
        if (!reasons || !reasons->child)
                m->decisions[o][SG_REASON_MAX_]++;
        for (const cJSON *r = reasons ? reasons->child : NULL; r; r = r->next)
                if (cJSON_IsString(r))
                        m->decisions[o][sg_reason_from_name(r->valuestring)]++;
        observe(m->verify_buckets, &m->verify_sum, &m->verify_count, j->verify_seconds);
        if (j->promoted_new)
                observe(m->promote_buckets, &m->promote_sum, &m->promote_count, j->promote_seconds);
}

void gate_unpromote(gate *g, const char *function, const char *decision_id) {
        int r = g->adapter->ops->unpromote(g->adapter, function, decision_id);
        if (r < 0)
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot undo the unrecorded promotion of %s (decision %s): %s",
                         function, decision_id, strerror(-r));
}

static bool audit_has(void *ctx, const char *decision_id) {
        gate *g = ctx;
        uv_mutex_lock(&g->audit_lock);
        bool found = sg_audit_find_decision(g->audit, decision_id, GATE_AUDIT_LOOKBACK, NULL) == 0;
        uv_mutex_unlock(&g->audit_lock);
        return found;
}

void gate_reconcile_releases(gate *g) {
        int r = g->adapter->ops->reconcile(g->adapter, audit_has, g);
        if (r < 0)
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot reconcile pending promotions: %s", strerror(-r));
}

/* Takes the finished head job off its queue. It must happen before anything that can re-enter
 * the loop's code (an API client's answer runs MHD, which may queue and dispatch new uploads):
 * a job still at the head of an idle queue would be dispatched a second time. */
static void job_pop(gate *g, job *j) {
        fqueue *q = j->q;
        q->head = j->next;
        if (!q->head)
                q->tail = NULL;
        j->next = NULL;
        g->queued--;
}

static void job_end(gate *g, job *j, uint64_t seq);
static void commit_start(gate *g);

/* Group commit: the records of the jobs that finished while the previous batch was being
 * written go to the audit file together, with one write and one fdatasync, in the thread pool.
 * Each job's function queue stays busy until its record is durable, so per-function order and
 * the pending-marker rules are those of one job at a time; other functions carry on. */
static void commit_work(uv_work_t *w) {
        gate *g = w->data;
        size_t n = 0;
        for (job *j = g->committing; j; j = j->commit_next)
                n++;
        cJSON **records = malloc(n * sizeof(*records));
        if (!records) {
                g->commit_err = -ENOMEM;
                return;
        }
        n = 0;
        for (job *j = g->committing; j; j = j->commit_next)
                records[n++] = j->record;
        uv_mutex_lock(&g->audit_lock);
        g->commit_err = sg_audit_append_many(g->audit, records, n, NULL);
        uv_mutex_unlock(&g->audit_lock);
        free(records);
}

static void commit_done(uv_work_t *w, int status) {
        gate *g = w->data;
        job *batch = g->committing;
        g->committing = NULL;
        if (status == UV_ECANCELED)
                g->commit_err = -ECANCELED;
        while (batch) {
                job *j = batch;
                batch = j->commit_next;
                j->commit_next = NULL;
                g->commits_pending--;
                /* Written are exactly the records that carry their seq (sg_audit_append_many). */
                const cJSON *s = cJSON_GetObjectItemCaseSensitive(j->record, "seq");
                uint64_t seq = cJSON_IsNumber(s) ? (uint64_t) s->valuedouble : 0;
                if (seq == 0) {
                        int r = g->commit_err < 0 ? g->commit_err : -EIO;
                        fail(j, r, "cannot append the decision to the audit file: %s", strerror(-r));
                        /* No release may stay live without the record that approved it: the swap
                         * is undone and the release removed (an inbox drop is decided again). */
                        if (j->promoted_new && j->kind == SG_KIND_FUNCTION)
                                gate_unpromote(g, j->name, j->id);
                }
                job_end(g, j, seq);
        }
        commit_start(g);
        gate_dispatch(g);
}

static void commit_start(gate *g) {
        if (g->committing || !g->commit_head)
                return;
        g->committing = g->commit_head;
        g->commit_head = g->commit_tail = NULL;
        g->commit_err = 0;
        g->commit_work.data = g;
        int r = uv_queue_work(g->loop, &g->commit_work, commit_work, commit_done);
        if (r < 0) {
                /* Cannot happen with a valid loop and callback; the jobs fail and are retried. */
                g->commit_err = -EAGAIN;
                commit_done(&g->commit_work, 0);
        }
}

static void job_done(uv_work_t *w, int status) {
        job *j = w->data;
        gate *g = j->g;

        g->running--;
        if (status == UV_ECANCELED)
                j->err = -ECANCELED;
        if (j->err == 0) {
                /* Decided: its record joins the next batch; the worker is free for another
                 * function meanwhile. */
                if (g->commit_tail)
                        g->commit_tail->commit_next = j;
                else
                        g->commit_head = j;
                g->commit_tail = j;
                g->commits_pending++;
                commit_start(g);
                gate_dispatch(g);
                return;
        }
        job_end(g, j, 0);
        gate_dispatch(g);
}

/* The rest of a job, on the loop: a failure is retried (or answered, for an upload); a durable
 * record (seq) lets the package leave the inbox and the client learn its decision. */
static void job_end(gate *g, job *j, uint64_t seq) {
        fqueue *q = j->q;

        q->running = false;
        if (j->err < 0 && j->from_api) {
                /* The client still holds its package: it gets a 500 and may send it again. */
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "INTERNAL: upload for %s: %s", j->name, j->err_msg);
                if (j->kind == SG_KIND_FUNCTION && !j->promoted_new)
                        gate_unpromote(g, j->name, j->id); /* a release made before the failure, if any */
                if (j->staging[0])
                        (void) unlinkat(g->staging_fd, j->staging, 0);
                j->staging[0] = '\0';
                cJSON_Delete(j->record);
                j->record = NULL;
                job_pop(g, j);
                if (j->on_decided)
                        j->on_decided(j, j->ctx);
                job_free(j);
                return;
        }
        if (j->err < 0) {
                /* INTERNAL: the claimed entry stays; the same job runs again after a back-off. */
                if (j->staging[0])
                        (void) unlinkat(g->staging_fd, j->staging, 0);
                j->staging[0] = '\0';
                cJSON_Delete(j->record);
                j->record = NULL;
                j->promoted_new = false;
                /* The retry decides under the policy of its time, not of the first try's. */
                gate_store_unref(j->store);
                j->store = NULL;
                q->failures++;
                uint64_t delay = GATE_RETRY_MIN_MS << (q->failures < 8 ? q->failures - 1 : 7);
                q->blocked_until_ms = now_ms(g) + (delay > GATE_RETRY_MAX_MS ? GATE_RETRY_MAX_MS : delay);
                if (j->err != -EAGAIN && j->err != -ECANCELED)
                        gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "INTERNAL: %s: %s; the package stays in the inbox and is retried",
                                 j->inbox_name, j->err_msg);
                j->err = 0;
                j->err_msg[0] = '\0';
                return;
        }
        q->failures = 0;
        if (j->promoted_new && j->kind == SG_KIND_FUNCTION)
                (void) g->adapter->ops->settle(g->adapter, j->name, j->id);
        g->decisions++;
        j->seq = seq;
        account(g, j);
        gate_remember(g, j->record);
        if (g->journal)
                gate_journal_relay_decision(g, j->record, seq);
        if (g->foreground || !g->journal) {
                const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j->record, "message");
                fprintf(stderr, "signgated: [%llu] %s %s: %s\n", (unsigned long long) seq, j->id,
                        sg_outcome_name(j->outcome), cJSON_IsString(msg) ? msg->valuestring : "");
        }
        /* The record is durable: only now may the package leave the inbox, or the client learn
         * its decision. */
        job_pop(g, j);
        if (j->from_api) {
                if (j->on_decided)
                        j->on_decided(j, j->ctx);
        } else {
                int r = remove_inbox_entry(g, j);
                if (r < 0)
                        gate_log(g, LOG_ERR, NULL, "cannot remove %s from the inbox after its decision: %s", j->claimed,
                                 strerror(-r));
        }
        if (j->staging[0])
                (void) unlinkat(g->staging_fd, j->staging, 0);
        if (j->promoted_new)
                run_hook(g, j);
        job_free(j);
        if (g->backlog && !g->stopping && g->queued < GATE_QUEUE_LIMIT / 2)
                (void) gate_inbox_scan(g, false);
}

void gate_dispatch(gate *g) {
        uint64_t now = now_ms(g);
        for (fqueue *q = g->queues; q && g->running < GATE_WORKERS; q = q->next) {
                if (q->running || !q->head || q->blocked_until_ms > now)
                        continue;
                /* A stop lets API uploads finish (their clients wait); inbox jobs wait for the next start. */
                if (g->stopping && !q->head->from_api)
                        continue;
                job *j = q->head;
                if (!j->store)
                        j->store = gate_store_ref(g);
                j->work.data = j;
                int r = uv_queue_work(g->loop, &j->work, job_work, job_done);
                if (r < 0) {
                        gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot queue work: %s", uv_strerror(r));
                        return;
                }
                q->running = true;
                g->running++;
        }
}

/* Every second: queues whose back-off has passed run again. */
void gate_pipeline_tick(gate *g) { gate_dispatch(g); }
