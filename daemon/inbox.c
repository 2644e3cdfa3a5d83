/* The inbox watcher (DESIGN §7, §8).
 *
 * inotify (IN_CLOSE_WRITE | IN_MOVED_TO) sits in the libuv loop under a uv_poll_t: libuv's own
 * fs_event does not report close-after-write, and a writer's close (or its rename into the
 * inbox) is the only moment a package is known to be complete.
 *
 * An entry is claimed before anything else happens to it: renamed to
 *   .claimed.ARRIVAL_NS.DECISION_ID.NAME
 * in the inbox itself. The claim fixes the decision id for the entry's whole life (a crash
 * and restart resume the same decision, and the audit file tells whether it was already
 * recorded), keeps its arrival order across restarts, and takes it out of the watcher's view
 * (names starting with '.' are ignored). The entry is removed only after its decision record
 * is in the audit file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <systemd/sd-journal.h>

#include "gate.h"
#include "sg_journal.h"

typedef enum { NAME_IGNORED, NAME_OK, NAME_BAD } name_class;

/* DESIGN §7: F.zip or F@ANYTHING.zip for functions, L.layer.zip or L@ANYTHING.layer.zip for
 * layers; names starting with '.' or ending in .tmp or .part are writers' and are ignored. */
static name_class classify(const char *n, sg_kind *kind, char name[65]) {
        size_t len = strlen(n);
        if (n[0] == '.' || (len >= 4 && strcmp(n + len - 4, ".tmp") == 0) || (len >= 5 && strcmp(n + len - 5, ".part") == 0))
                return NAME_IGNORED;
        if (len > GATE_INBOX_NAME_MAX)
                return NAME_BAD;
        size_t stem;
        if (len > 10 && strcmp(n + len - 10, ".layer.zip") == 0) {
                *kind = SG_KIND_LAYER;
                stem = len - 10;
        } else if (len > 4 && strcmp(n + len - 4, ".zip") == 0) {
                *kind = SG_KIND_FUNCTION;
                stem = len - 4;
        } else
                return NAME_BAD;
        const char *at = memchr(n, '@', stem);
        size_t flen = at ? (size_t) (at - n) : stem;
        if (flen == 0 || flen > 64 || (at && (size_t) (at - n) + 1 == stem))
                return NAME_BAD;
        memcpy(name, n, flen);
        name[flen] = '\0';
        return sg_name_valid(name) ? NAME_OK : NAME_BAD;
}

static const char *type_word(mode_t m) {
        if (S_ISLNK(m))
                return "a symlink";
        if (S_ISDIR(m))
                return "a directory";
        if (S_ISFIFO(m))
                return "a FIFO";
        if (S_ISSOCK(m))
                return "a socket";
        if (S_ISCHR(m) || S_ISBLK(m))
                return "a device";
        return "not a regular file";
}

/* True while some process still holds the file open for writing. A read lease cannot be
 * taken then (the kernel refuses it with EAGAIN); without CAP_LEASE on another user's file
 * the test is unavailable and the close/rename event is trusted alone. */
static bool still_being_written(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return false;
        bool busy = false;
        if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0)
                (void) fcntl(fd, F_SETLEASE, F_UNLCK);
        else
                busy = errno == EAGAIN;
        close(fd);
        return busy;
}

/* Fills the job from an lstat of its (claimed) entry: owner, and whether it can be read at all. */
static void inspect_entry(job *j, const struct stat *st) {
        j->uid = st->st_uid;
        j->gid = st->st_gid;
        j->is_dir = S_ISDIR(st->st_mode);
        j->size = S_ISREG(st->st_mode) ? (uint64_t) st->st_size : 0;
        if (!S_ISREG(st->st_mode)) {
                j->pre_reason = SG_REASON_MALFORMED;
                snprintf(j->pre_msg, sizeof(j->pre_msg), "the inbox entry is %s, not a regular file; it was not opened",
                         type_word(st->st_mode));
        } else if (st->st_nlink > 1) {
                /* A hard link could name a file its dropper may not read; it is never read. */
                j->pre_reason = SG_REASON_MALFORMED;
                snprintf(j->pre_msg, sizeof(j->pre_msg),
                         "the inbox entry is a hard link (%ju links); it was not opened", (uintmax_t) st->st_nlink);
        }
        if (!j->has_name && j->pre_reason == SG_REASON_NONE) {
                j->pre_reason = SG_REASON_MALFORMED;
                snprintf(j->pre_msg, sizeof(j->pre_msg),
                         "the inbox name does not name a function (F.zip, F@ANY.zip) or a layer (L.layer.zip); it was not opened");
        }
}

/* Claims a fresh inbox entry and queues its job. Returns false when it is left for later. */
static bool claim(gate *g, const char *n, const struct stat *st) {
        sg_kind kind = SG_KIND_FUNCTION;
        char name[65] = "";
        name_class c = classify(n, &kind, name);
        if (c == NAME_IGNORED)
                return true;
        if (S_ISREG(st->st_mode) && still_being_written(g->inbox_fd, n))
                return true; /* its writer's close will bring it back */
        uint64_t arrival = (uint64_t) st->st_ctim.tv_sec * 1000000000ull + (uint64_t) st->st_ctim.tv_nsec;
        job *j = gate_job_new(g, c == NAME_BAD ? (strlen(n) > GATE_INBOX_NAME_MAX ? "(name too long)" : n) : n, arrival, NULL);
        if (!j)
                return false;
        j->kind = kind;
        j->has_name = c == NAME_OK;
        snprintf(j->name, sizeof(j->name), "%s", name);
        snprintf(j->claimed, sizeof(j->claimed), GATE_CLAIM_PREFIX "%020" PRIu64 ".%s.%s", arrival, j->id,
                 strlen(n) > GATE_INBOX_NAME_MAX ? "long" : n);
        if (renameat2(g->inbox_fd, n, g->inbox_fd, j->claimed, RENAME_NOREPLACE) < 0) {
                if (errno != ENOENT)
                        gate_log(g, LOG_ERR, SG_MESSAGE_INTERNAL, "cannot claim inbox entry %s: %s; it stays in the inbox", n,
                                 strerror(errno));
                free(j);
                return errno == ENOENT;
        }
        inspect_entry(j, st);
        gate_enqueue(g, j);
        return true;
}

static void on_inotify(uv_poll_t *h, int status, int events) {
        gate *g = h->data;
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool rescan = false;

        if (status < 0 || !(events & UV_READABLE))
                return;
        for (;;) {
                ssize_t n = read(g->inotify_fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                for (char *p = buf; p < buf + n;) {
                        struct inotify_event *ev = (struct inotify_event *) p;
                        p += sizeof(*ev) + ev->len;
                        if (ev->mask & IN_Q_OVERFLOW) {
                                rescan = true;
                                continue;
                        }
                        if (!ev->len || g->stopping)
                                continue;
                        /* While older entries wait unclaimed, a newer one must not overtake them. */
                        if (g->backlog || g->queued >= GATE_QUEUE_LIMIT) {
                                g->backlog = true;
                                continue;
                        }
                        struct stat st;
                        if (fstatat(g->inbox_fd, ev->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue; /* gone already (claimed by a rescan, or removed) */
                        /* A regular file's creation is the start of its writing, not its end:
                         * it is taken on close or rename. A hard link arrives whole by creation. */
                        if ((ev->mask & IN_CREATE) && S_ISREG(st.st_mode) && st.st_nlink == 1)
                                continue;
                        if (!claim(g, ev->name, &st))
                                g->backlog = true;
                }
        }
        if (rescan && !g->stopping) {
                gate_log(g, LOG_WARNING, NULL, "inotify queue overflowed; rescanning the inbox");
                (void) gate_inbox_scan(g, false);
        }
        gate_dispatch(g);
}

int gate_inbox_start(gate *g) {
        g->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (g->inotify_fd < 0)
                return -errno;
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/var/spool/signgate/inbox", g->root) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        /* Directories and symlinks arrive by rename or creation; IN_CREATE reports those, whose
         * creation is their whole arrival (a FIFO or a socket has no close-after-write). */
        if (inotify_add_watch(g->inotify_fd, path, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
                return -errno;
        int r = uv_poll_init(g->loop, &g->inotify_poll, g->inotify_fd);
        if (r < 0)
                return r;
        g->inotify_poll.data = g;
        return uv_poll_start(&g->inotify_poll, UV_READABLE, on_inotify);
}

void gate_inbox_stop(gate *g) {
        if (uv_is_active((uv_handle_t *) &g->inotify_poll))
                uv_poll_stop(&g->inotify_poll);
}

typedef struct {
        char name[NAME_MAX + 1];
        uint64_t arrival;
        bool claimed;
        char id[37];
        char original[NAME_MAX + 1];
        struct stat st;
} entry;

static int cmp_entries(const void *x, const void *y) {
        const entry *a = x, *b = y;
        if (a->arrival != b->arrival)
                return a->arrival < b->arrival ? -1 : 1;
        return strcmp(a->name, b->name);
}

/* ".claimed.ARRIVAL.ID.NAME" → its parts. */
static bool parse_claimed(const char *n, entry *e) {
        const char *p = n + strlen(GATE_CLAIM_PREFIX);
        char *end = NULL;
        if (strncmp(n, GATE_CLAIM_PREFIX, strlen(GATE_CLAIM_PREFIX)) != 0)
                return false;
        errno = 0;
        unsigned long long a = strtoull(p, &end, 10);
        if (errno || end == p || *end != '.' || strlen(end + 1) < 38 || end[37] != '.')
                return false;
        memcpy(e->id, end + 1, 36);
        e->id[36] = '\0';
        if (!sg_uuid_valid(e->id))
                return false;
        e->arrival = a;
        snprintf(e->original, sizeof(e->original), "%s", end + 38);
        return true;
}

int gate_inbox_scan(gate *g, bool startup) {
        DIR *d = NULL;
        int opened = sg_opendirat(g->inbox_fd, ".", &d);
        if (opened < 0)
                return opened;
        entry *list = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                entry e = {0};
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(e.name, sizeof(e.name), "%s", de->d_name);
                e.claimed = parse_claimed(e.name, &e);
                if (e.claimed && !startup)
                        continue; /* this run's own claims are already queued */
                if (fstatat(g->inbox_fd, e.name, &e.st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!e.claimed) {
                        sg_kind k;
                        char nm[65];
                        if (classify(e.name, &k, nm) == NAME_IGNORED)
                                continue;
                        e.arrival = (uint64_t) e.st.st_ctim.tv_sec * 1000000000ull + (uint64_t) e.st.st_ctim.tv_nsec;
                }
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        entry *bigger = realloc(list, cap * sizeof(*list));
                        if (!bigger) {
                                free(list);
                                closedir(d);
                                return -ENOMEM;
                        }
                        list = bigger;
                }
                list[n++] = e;
        }
        closedir(d);
        if (n > 1) /* qsort(NULL, 0, …) is undefined behaviour */
                qsort(list, n, sizeof(*list), cmp_entries);

        g->backlog = false;
        for (size_t i = 0; i < n; i++) {
                entry *e = &list[i];
                if (e->claimed) {
                        /* Left by a previous run. Recorded already (the crash came between the
                         * audit append and the removal)? Then only the removal is left to do. */
                        uv_mutex_lock(&g->audit_lock);
                        bool recorded = sg_audit_find_decision(g->audit, e->id, GATE_AUDIT_LOOKBACK, NULL) == 0;
                        uv_mutex_unlock(&g->audit_lock);
                        if (recorded) {
                                (void) (S_ISDIR(e->st.st_mode) ? sg_remove_tree(g->inbox_fd, e->name)
                                                               : unlinkat(g->inbox_fd, e->name, 0));
                                continue;
                        }
                        job *j = gate_job_new(g, e->original, e->arrival, e->id);
                        if (!j)
                                return -ENOMEM;
                        sg_kind k = SG_KIND_FUNCTION;
                        j->has_name = classify(e->original, &k, j->name) == NAME_OK;
                        j->kind = k;
                        snprintf(j->claimed, sizeof(j->claimed), "%s", e->name);
                        inspect_entry(j, &e->st);
                        gate_enqueue(g, j);
                        continue;
                }
                if (g->backlog || g->queued >= GATE_QUEUE_LIMIT) {
                        g->backlog = true;
                        continue;
                }
                if (!claim(g, e->name, &e->st))
                        g->backlog = true;
        }
        free(list);
        gate_dispatch(g);
        return 0;
}
