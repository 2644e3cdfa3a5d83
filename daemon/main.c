/* signgated — the gate (DESIGN §1, §7, §8).
 *
 *   signgated [--root DIR] [--foreground] [--check-config] [--version]
 *
 * Start-up order matters for crash safety: the watch on the inbox is set before the inbox is
 * scanned (nothing arriving meanwhile is missed), staging leftovers and half-made releases are
 * removed before any job runs, and READY=1 is sent only once the scan has queued everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "gate.h"
#include "sg_journal.h"
#include "sg_version.h"

void gate_log(gate *g, int priority, const char *message_id, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (g->journal)
                (void) sg_journal_send_event(priority, message_id, NULL, "%s", msg);
        if (g->foreground || !g->journal)
                fprintf(stderr, "signgated: %s\n", msg);
}

store_ref *gate_store_ref(gate *g) {
        g->store->refs++;
        return g->store;
}

void gate_store_unref(store_ref *r) {
        if (r && --r->refs == 0) {
                sg_store_free(r->store);
                free(r);
        }
}

/* The directories of DESIGN §7, created with their modes when missing (existing ones are the
 * admin's and keep theirs). */
static int make_dirs(gate *g) {
        static const struct {
                const char *path;
                mode_t mode;
        } dirs[] = {
                {"etc/signgate", 0755},
                {"var/lib/signgate", 0755},
                {"var/lib/signgate/policy", 0755},
                {"var/lib/signgate/staging", 0700},
                {"var/lib/signgate/runtime", 0755},
                {"var/lib/signgate/runtime/functions", 0755},
                {"var/lib/signgate/runtime/layers", 0755},
                {"var/spool/signgate", 0755},
                {"var/spool/signgate/inbox", 01770},
                {"var/spool/signgate/rejected", 0750},
                {"var/log/signgate", 0750},
                {"run/signgate", 0755},
        };
        for (size_t i = 0; i < SG_ELEMENTSOF(dirs); i++) {
                char path[PATH_MAX];
                struct stat st;
                if (snprintf(path, sizeof(path), "%s/%s", g->root, dirs[i].path) >= (int) sizeof(path))
                        return -ENAMETOOLONG;
                if (stat(path, &st) == 0)
                        continue;
                int r = sg_mkdir_p(path, 0755);
                if (r < 0) {
                        fprintf(stderr, "signgated: cannot create %s: %s\n", path, strerror(-r));
                        return r;
                }
                if (chmod(path, dirs[i].mode) < 0)
                        return -errno;
        }
        /* The inbox belongs to the deployers' group when the settings name one. */
        if (g->settings.socket_group[0]) {
                struct group *gr = getgrnam(g->settings.socket_group);
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/var/spool/signgate/inbox", g->root);
                if (gr && chown(path, (uid_t) -1, gr->gr_gid) < 0)
                        fprintf(stderr, "signgated: cannot give %s to group %s: %s\n", path, gr->gr_name, strerror(errno));
        }
        return 0;
}

static int open_dir(gate *g, const char *rel, int *ret) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", g->root, rel) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                fprintf(stderr, "signgated: cannot open %s: %s\n", path, strerror(errno));
                return r;
        }
        *ret = fd;
        return 0;
}

static int load_settings(const char *root, sg_settings *s, bool quiet_missing) {
        char path[PATH_MAX];
        sg_error err = {0};
        snprintf(path, sizeof(path), "%s/etc/signgate/signgated.json", root);
        int r = sg_settings_load(path, s, &err);
        if (r == -ENOENT) {
                if (!quiet_missing)
                        fprintf(stderr, "signgated: %s: not present; using the built-in defaults\n", path);
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "signgated: %s: %s\n", path, r == -EINVAL ? err.msg : strerror(-r));
                return r;
        }
        return 0;
}

static int load_store(const char *root, sg_store **ret, char *why, size_t why_len) {
        char path[PATH_MAX];
        sg_error err = {0};
        snprintf(path, sizeof(path), "%s/var/lib/signgate/policy", root);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                if (snprintf(why, why_len, "%s: %s", path, strerror(e)) >= (int) why_len)
                        why[why_len - 1] = '\0';
                return -e;
        }
        int r = sg_store_load(fd, ret, &err);
        close(fd);
        if (r < 0 && snprintf(why, why_len, "%s/%s", path, r == -EINVAL ? err.msg : strerror(-r)) >= (int) why_len)
                why[why_len - 1] = '\0'; /* a shortened message still names the file first */
        return r;
}

int gate_reload_policy(gate *g, char *why, size_t why_len) {
        sg_store *s = NULL;
        int r = load_store(g->root, &s, why, why_len);
        if (r < 0)
                return r;
        store_ref *ref = calloc(1, sizeof(*ref));
        if (!ref) {
                sg_store_free(s);
                snprintf(why, why_len, "out of memory");
                return -ENOMEM;
        }
        ref->store = s;
        ref->refs = 1;
        gate_store_unref(g->store); /* jobs still running keep the old one alive */
        g->store = ref;
        return 0;
}

void gate_remember(gate *g, const cJSON *record) {
        cJSON *copy = cJSON_Duplicate(record, true);
        if (!copy)
                return;
        cJSON_Delete(g->recent[g->recent_next]);
        g->recent[g->recent_next] = copy;
        g->recent_next = (g->recent_next + 1) % GATE_RECENT;
        if (g->recent_count < GATE_RECENT)
                g->recent_count++;
}

/* Seeds the recent-decisions ring from the tail of the audit file, so a restart does not
 * forget what GET /v1/decisions shows. */
static void remember_from_audit(gate *g) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/var/log/signgate/audit.jsonl", g->root) >= (int) sizeof(path))
                return;
        FILE *f = fopen(path, "re");
        if (!f)
                return;
        if (fseeko(f, 0, SEEK_END) == 0 && ftello(f) > 4 * 1024 * 1024) {
                (void) fseeko(f, -4 * 1024 * 1024, SEEK_END);
                int c;
                while ((c = fgetc(f)) != EOF && c != '\n') /* skip the partial first line */
                        ;
        } else
                rewind(f);
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
                cJSON *j = cJSON_Parse(line);
                if (j && cJSON_GetObjectItemCaseSensitive(j, "decisionId"))
                        gate_remember(g, j);
                cJSON_Delete(j);
        }
        free(line);
        fclose(f);
}

void gate_audit_event(gate *g, cJSON *event, int priority, const char *message_id, const char *const *fields,
                      const char *message) {
        uint64_t seq = 0;
        int r = -ENOMEM;
        if (event) {
                uv_mutex_lock(&g->audit_lock);
                r = sg_audit_append(g->audit, event, &seq);
                uv_mutex_unlock(&g->audit_lock);
        }
        if (r < 0)
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot append an event to the audit file: %s", strerror(-r));
        if (g->journal)
                (void) sg_journal_send_event(priority, message_id, fields, "%s", message);
        if (g->foreground || !g->journal)
                fprintf(stderr, "signgated: %s\n", message);
        cJSON_Delete(event);
}

static void on_hup(uv_signal_t *h, int signo) {
        gate *g = h->data;
        char why[1024];
        (void) signo;
        (void) sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the policy store\nMONOTONIC_USEC=%llu",
                          (unsigned long long) (uv_hrtime() / 1000));
        if (gate_reload_policy(g, why, sizeof(why)) < 0)
                gate_log(g, LOG_ERR, SG_MESSAGE_POLICY_BAD, "policy reload failed, keeping the previous policy: %s", why);
        else
                gate_log(g, LOG_INFO, NULL, "policy reloaded: %zu profiles, %zu code signing configs, %zu functions, %zu revocations",
                         g->store->store->n_profiles, g->store->store->n_cscs, g->store->store->n_functions,
                         g->store->store->n_revocations);
        (void) sd_notify(0, "READY=1\nSTATUS=serving");
}

static void close_all(uv_handle_t *h, void *arg) {
        (void) arg;
        if (!uv_is_closing(h))
                uv_close(h, NULL);
}

static void on_term(uv_signal_t *h, int signo) {
        gate *g = h->data;
        if (g->stopping)
                return;
        g->stopping = true;
        (void) sd_notify(0, "STOPPING=1\nSTATUS=draining in-flight jobs");
        gate_log(g, LOG_INFO, NULL, "%s: finishing %u in-flight job(s), then exiting", signo == SIGINT ? "SIGINT" : "SIGTERM",
                 g->running);
        gate_inbox_stop(g);
        api_stop(g);
}

static void on_tick(uv_timer_t *t) {
        gate *g = t->data;
        if (g->stopping) {
                /* Drained (jobs, and the hooks they started, which their timeouts bound):
                 * claimed jobs not yet started stay in the inbox for the next start. */
                if (g->running == 0 && g->commits_pending == 0 && g->hooks == 0 && api_idle(g)) {
                        api_free(g);
                        uv_walk(g->loop, close_all, NULL);
                }
                return;
        }
        gate_pipeline_tick(g);
}

static void on_watchdog(uv_timer_t *t) {
        (void) t;
        (void) sd_notify(0, "WATCHDOG=1");
}

static const char usage[] =
        "usage: signgated [--root DIR] [--foreground] [--check-config] [--version]\n"
        "  --root DIR       every path of the layout under DIR (default /)\n"
        "  --foreground     stay in the foreground and log decisions to stderr too\n"
        "  --check-config   validate etc/signgate/signgated.json and the policy store, then exit\n";

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"root", required_argument, NULL, 'r'},       {"foreground", no_argument, NULL, 'f'},
                {"check-config", no_argument, NULL, 'c'},     {"version", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},             {0},
        };
        static gate gs;
        gate *g = &gs;
        bool check = false;
        const char *root = "/";
        int c, r;
        char why[1024];

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        root = optarg;
                        break;
                case 'f':
                        g->foreground = true;
                        break;
                case 'c':
                        check = true;
                        break;
                case 'v':
                        printf("signgated %s\n", SG_VERSION);
                        return 0;
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                default:
                        fputs(usage, stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                fputs(usage, stderr);
                return 2;
        }
        if (!realpath(root, g->root)) {
                fprintf(stderr, "signgated: --root %s: %s\n", root, strerror(errno));
                return 1;
        }
        if (strcmp(g->root, "/") == 0)
                g->root[0] = '\0'; /* paths are built as ROOT + "/var/…" */
        if (load_settings(g->root, &g->settings, check) < 0)
                return 1;
        if (check) {
                sg_store *s = NULL;
                if (load_store(g->root, &s, why, sizeof(why)) < 0 && strstr(why, "No such file") == NULL) {
                        fprintf(stderr, "signgated: %s\n", why);
                        return 1;
                }
                sg_store_free(s);
                printf("signgated: configuration OK\n");
                return 0;
        }
        if (!g->foreground && daemon(0, 0) < 0) {
                fprintf(stderr, "signgated: cannot detach: %s\n", strerror(errno));
                return 1;
        }
        umask(022);
        g->inbox_fd = g->staging_fd = g->rejected_fd = g->lib_fd = g->firstseen_fd = g->inotify_fd = g->policy_fd = -1;
        g->journal = g->settings.journal && sg_journal_available();
        if (g->settings.journal && !g->journal)
                fprintf(stderr, "signgated: no journald socket; decisions are recorded in the audit file and on stderr only\n");
        if ((r = make_dirs(g)) < 0)
                return 1;
        if ((r = open_dir(g, "var/spool/signgate/inbox", &g->inbox_fd)) < 0 ||
            (r = open_dir(g, "var/lib/signgate/staging", &g->staging_fd)) < 0 ||
            (r = open_dir(g, "var/spool/signgate/rejected", &g->rejected_fd)) < 0 ||
            (r = open_dir(g, "var/lib/signgate", &g->lib_fd)) < 0 ||
            (r = open_dir(g, "var/lib/signgate/policy", &g->policy_fd)) < 0)
                return 1;

        sg_store *s = NULL;
        if (load_store(g->root, &s, why, sizeof(why)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_POLICY_BAD, "cannot load the policy store: %s", why);
                return 1;
        }
        g->store = calloc(1, sizeof(*g->store));
        if (!g->store)
                return 1;
        g->store->store = s;
        g->store->refs = 1;

        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/var/log/signgate", g->root);
        int logfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (uv_mutex_init(&g->audit_lock) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot create the audit lock");
                return 1;
        }
        sg_audit_options ao = {.rotate_bytes = g->settings.audit_rotate_bytes, .keep_files = g->settings.audit_keep};
        sg_error err = {0};
        if (logfd < 0 || (r = sg_audit_open(logfd, "audit.jsonl", &ao, &g->audit, &err)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot open the audit file in %s: %s", path,
                         logfd < 0 ? strerror(errno) : (err.msg[0] ? err.msg : strerror(-r)));
                return 1;
        }
        close(logfd);
        if (sg_audit_repaired_bytes(g->audit) > 0)
                gate_log(g, LOG_WARNING, NULL, "cut %llu bytes of a torn last audit line (a crash mid-write); "
                         "its decision was never acknowledged and is made again",
                         (unsigned long long) sg_audit_repaired_bytes(g->audit));
        snprintf(path, sizeof(path), "%s/var/lib/signgate/runtime", g->root);
        if ((r = sg_dir_adapter_new(path, g->settings.retain_releases, &g->adapter)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot open the runtime directory %s: %s", path, strerror(-r));
                return 1;
        }
        /* Crash recovery: half-made releases and staging copies of the last run go. The inbox
         * still holds every package not yet recorded. */
        if ((r = g->adapter->ops->recover(g->adapter)) < 0)
                gate_log(g, LOG_WARNING, NULL, "could not remove every half-made release: %s", strerror(-r));
        gate_reconcile_releases(g);
        (void) sg_remove_tree(g->lib_fd, "staging");
        if (mkdirat(g->lib_fd, "staging", 0700) < 0 && errno != EEXIST)
                return 1;
        close(g->staging_fd);
        if ((r = open_dir(g, "var/lib/signgate/staging", &g->staging_fd)) < 0)
                return 1;
        if ((r = firstseen_load(g)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot load the first-seen log: %s", strerror(-r));
                return 1;
        }

        /* The thread pool: GATE_WORKERS verifying at once, plus headroom for libuv's own fs work. */
        char pool[16];
        snprintf(pool, sizeof(pool), "%d", GATE_WORKERS + 2);
        setenv("UV_THREADPOOL_SIZE", pool, 0);
        g->loop = uv_default_loop();
        uv_signal_init(g->loop, &g->sig_hup);
        uv_signal_init(g->loop, &g->sig_term);
        uv_signal_init(g->loop, &g->sig_int);
        g->sig_hup.data = g->sig_term.data = g->sig_int.data = g;
        uv_signal_start(&g->sig_hup, on_hup, SIGHUP);
        uv_signal_start(&g->sig_term, on_term, SIGTERM);
        uv_signal_start(&g->sig_int, on_term, SIGINT);
        uv_timer_init(g->loop, &g->tick);
        g->tick.data = g;
        gate_journal_relay_init(g);
        uv_timer_start(&g->tick, on_tick, 250, 250);
        uint64_t wd_usec = 0;
        if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
                uv_timer_init(g->loop, &g->watchdog);
                uv_timer_start(&g->watchdog, on_watchdog, wd_usec / 2000, wd_usec / 2000);
        }
        if ((r = gate_inbox_start(g)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot watch the inbox: %s", strerror(-r));
                return 1;
        }
        g->started = sg_time_now();
        remember_from_audit(g);
        if ((r = api_start(g)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot serve the API: %s", strerror(-r));
                return 1;
        }
        if ((r = gate_inbox_scan(g, true)) < 0) {
                gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot scan the inbox: %s", strerror(-r));
                return 1;
        }
        gate_log(g, LOG_INFO, SG_MESSAGE_STARTED, "signgated %s serving %s: %zu package(s) queued from the inbox",
                 SG_VERSION, g->root[0] ? g->root : "/", g->queued);
        (void) sd_notify(0, "READY=1\nSTATUS=serving");

        uv_run(g->loop, UV_RUN_DEFAULT);

        /* The relay's timer closed with every other handle (close_all); decisions journald has
         * not had yet get one last attempt here, after the last decision of the drain. */
        gate_journal_relay_finish(g);
        gate_log(g, LOG_INFO, SG_MESSAGE_STOPPED, "signgated stopped after %llu decision(s)", (unsigned long long) g->decisions);
        while (g->queues) {
                fqueue *q = g->queues;
                g->queues = q->next;
                for (job *j = q->head, *next; j; j = next) {
                        next = j->next;
                        cJSON_Delete(j->record);
                        if (j->store)
                                gate_store_unref(j->store);
                        free(j);
                }
                free(q);
        }
        uv_loop_close(g->loop);
        gate_store_unref(g->store);
        sg_audit_free(g->audit);
        uv_mutex_destroy(&g->audit_lock);
        g->adapter->ops->free(g->adapter);
        firstseen_free(g);
        close(g->inotify_fd);
        close(g->inbox_fd);
        close(g->staging_fd);
        close(g->rejected_fd);
        close(g->lib_fd);
        close(g->policy_fd);
        for (size_t i = 0; i < GATE_RECENT; i++)
                cJSON_Delete(g->recent[i]);
        return 0;
}
