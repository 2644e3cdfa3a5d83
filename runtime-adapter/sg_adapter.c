/* The directory adapter. See sg_adapter.h for the layout and the contract. */
#include "sg_adapter.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STAGE_PREFIX ".stage-"
#define CURRENT_TMP ".current.tmp"
#define PENDING_PREFIX ".pending-"

const char *sg_kind_name(sg_kind k) { return k == SG_KIND_LAYER ? "layer" : "function"; }

typedef struct {
        sg_adapter base;
        char root[PATH_MAX];
        int root_fd;
        unsigned retain;
} dir_adapter;

struct sg_stage {
        dir_adapter *a;
        sg_kind kind;
        char name[65];
        char stage_name[96];     /* ".stage-TAG" */
        int parent_fd;           /* functions/F/releases or layers/L */
        int stage_fd;            /* the .stage-TAG directory */
        int content_fd;          /* task/ or opt/ */
        /* The directory of the previous entry, kept open: archives list files grouped by
         * directory, so most entries need no walk at all. */
        char *cached_dir;
        size_t cached_len;
        int cached_fd;
        int file_fd;             /* the file being written */
        sg_package_sink sink;
};

/* One path component beneath dirfd, never through a symlink. openat2 where the kernel has
 * it; a single O_NOFOLLOW component is the same guarantee on older kernels. */
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC | O_NOFOLLOW),
                .mode = (flags & O_CREAT) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS)
                fd = openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
        return fd < 0 ? -errno : (int) fd;
}

static int mkdir_beneath(int dirfd, const char *name, int *ret_fd) {
        if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        if (fchmod(fd, 0755) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int sg_remove_tree(int parent, const char *name) {
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        DIR *d = NULL;
        int r = sg_opendirat(parent, name, &d);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int k = sg_remove_tree(dirfd(d), de->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

void sg_release_name(int64_t now, const unsigned char digest[SG_DIGEST_LEN], char out[SG_RELEASE_MAX]) {
        char t[SG_TIME_LEN + 1] = "19700101T000000Z", hex[SG_DIGEST_HEX_LEN + 1];
        char compact[32];
        size_t o = 0;
        (void) sg_time_format(now, t);
        for (const char *p = t; *p && o < sizeof(compact) - 1; p++)
                if (*p != '-' && *p != ':')
                        compact[o++] = *p;
        compact[o] = '\0';
        sg_hex_encode(digest, SG_DIGEST_LEN, hex);
        snprintf(out, SG_RELEASE_MAX, "%s-%.12s", compact, hex);
}

/* Opens (creating) ROOT/functions/F/releases or ROOT/layers/L. */
static int open_parent(dir_adapter *a, sg_kind kind, const char *name, bool create, int *ret_fd) {
        const char *top = kind == SG_KIND_LAYER ? "layers" : "functions";
        int fd = -1, next = -1, r;
        if (!sg_name_valid(name))
                return -EINVAL;
        if ((r = create ? mkdir_beneath(a->root_fd, top, &fd) : (fd = open_beneath(a->root_fd, top, O_RDONLY | O_DIRECTORY, 0))) < 0)
                return r;
        r = create ? mkdir_beneath(fd, name, &next) : ((next = open_beneath(fd, name, O_RDONLY | O_DIRECTORY, 0)) < 0 ? next : 0);
        close(fd);
        if (r < 0)
                return r;
        if (kind == SG_KIND_LAYER) {
                *ret_fd = next;
                return 0;
        }
        fd = next;
        r = create ? mkdir_beneath(fd, "releases", &next)
                   : ((next = open_beneath(fd, "releases", O_RDONLY | O_DIRECTORY, 0)) < 0 ? next : 0);
        close(fd);
        if (r < 0)
                return r;
        *ret_fd = next;
        return 0;
}

/* The directory of `path` (len bytes, no trailing slash) beneath the content root, created. */
static int stage_dir(sg_stage *s, const char *path, size_t len, int *ret_fd) {
        if (len == 0) {
                *ret_fd = s->content_fd;
                return 0;
        }
        if (s->cached_dir && s->cached_len == len && memcmp(s->cached_dir, path, len) == 0) {
                *ret_fd = s->cached_fd;
                return 0;
        }
        int cur = s->content_fd, r = 0;
        char comp[NAME_MAX + 1];
        for (size_t start = 0; start < len;) {
                const char *slash = memchr(path + start, '/', len - start);
                size_t clen = (slash ? (size_t) (slash - path) : len) - start;
                if (clen == 0 || clen > NAME_MAX) {
                        r = -EINVAL;
                        break;
                }
                memcpy(comp, path + start, clen);
                comp[clen] = '\0';
                int next;
                r = mkdir_beneath(cur, comp, &next);
                if (cur != s->content_fd)
                        close(cur);
                if (r < 0)
                        return r;
                cur = next;
                start += clen + 1;
        }
        if (r < 0) {
                if (cur != s->content_fd)
                        close(cur);
                return r;
        }
        if (s->cached_dir)
                close(s->cached_fd);
        free(s->cached_dir);
        s->cached_dir = strndup(path, len);
        s->cached_len = len;
        s->cached_fd = cur;
        if (!s->cached_dir) {
                close(cur);
                return -ENOMEM;
        }
        *ret_fd = cur;
        return 0;
}

/* Splits an entry name into its directory and its last component. */
static int entry_parent(sg_stage *s, const sg_entry *e, int *ret_fd, const char **ret_base) {
        const char *slash = memrchr(e->name, '/', e->name_len);
        *ret_base = slash ? slash + 1 : e->name;
        if (strlen(*ret_base) > NAME_MAX)
                return -ENAMETOOLONG;
        return stage_dir(s, e->name, slash ? (size_t) (slash - e->name) : 0, ret_fd);
}

static int on_begin(void *ud, const sg_entry *e) {
        sg_stage *s = ud;
        int parent, r;
        const char *base;

        if (e->type == SG_ENTRY_DIR) {
                int fd;
                if ((r = stage_dir(s, e->name, e->name_len, &fd)) < 0)
                        return r;
                return 0;
        }
        if ((r = entry_parent(s, e, &parent, &base)) < 0)
                return r;
        /* 0600 while it is written; its real mode once it is complete. */
        int fd = open_beneath(parent, base, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
                return fd;
        s->file_fd = fd;
        return 0;
}

static int on_data(void *ud, const sg_entry *e, const void *buf, size_t n) {
        sg_stage *s = ud;
        (void) e;
        return s->file_fd >= 0 ? sg_write_all(s->file_fd, buf, n) : -EBADF;
}

/* Files at least this big have their writeback started as soon as they are complete. */
#define EARLY_WRITEBACK_BYTES (256u * 1024)

static int on_end(void *ud, const sg_entry *e) {
        sg_stage *s = ud;
        if (e->type == SG_ENTRY_DIR || s->file_fd < 0)
                return 0;
        int r = fchmod(s->file_fd, e->mode & 0755) < 0 ? -errno : 0;
        /* Start writing a big file back now, while the next entries inflate: the promotion's
         * syncfs then waits for little. Asynchronous, and only a hint (no error matters). */
        if (r == 0 && e->usize >= EARLY_WRITEBACK_BYTES)
                (void) sync_file_range(s->file_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        if (close(s->file_fd) < 0 && r == 0)
                r = -errno;
        s->file_fd = -1;
        return r;
}

static int on_symlink(void *ud, const sg_entry *e) {
        sg_stage *s = ud;
        int parent, r;
        const char *base;
        if ((r = entry_parent(s, e, &parent, &base)) < 0)
                return r;
        return symlinkat(e->link_target, parent, base) < 0 ? -errno : 0;
}

/* A second receiver for the same stage, used by another thread: it shares the stage's
 * directories (read-only fds) and has its own directory cache and file being written. The
 * directories both create are made with mkdirat, which either lane may win. */
static void *lane_new(void *ud) {
        sg_stage *s = ud, *l = malloc(sizeof(*l));
        if (!l)
                return NULL;
        *l = *s;
        l->cached_dir = NULL;
        l->cached_len = 0;
        l->cached_fd = -1;
        l->file_fd = -1;
        return l;
}

static int lane_done(void *ud, void *lane) {
        sg_stage *l = lane;
        int r = 0;
        (void) ud;
        if (l->file_fd >= 0) {
                close(l->file_fd);
                r = -EIO; /* a file left half written: the pass failed */
        }
        if (l->cached_dir)
                close(l->cached_fd);
        free(l->cached_dir);
        free(l);
        return r;
}

const sg_package_sink *sg_stage_sink(sg_stage *s) { return &s->sink; }

/* Writes a new file in a directory nobody else sees yet (a stage, a function's directory for
 * its marker): no temp name and no fsync of its own. The promotion's one syncfs makes it
 * durable together with everything else it wrote. An existing name is replaced (a retry's
 * leftover), never followed. */
static int put_file(int dirfd, const char *name, const void *buf, size_t len, mode_t mode) {
        (void) unlinkat(dirfd, name, 0);
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        int r = sg_write_all(fd, buf, len);
        if (r == 0 && fchmod(fd, mode) < 0) /* the umask must not narrow or widen the mode */
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(dirfd, name, 0);
        return r;
}

int sg_stage_keep_facts(sg_stage *s, const unsigned char digest[SG_DIGEST_LEN], uint64_t canonical_size,
                        const char *block, size_t block_len) {
        char hex[SG_DIGEST_HEX_LEN + 1], text[256];
        sg_hex_encode(digest, SG_DIGEST_LEN, hex);
        int n = snprintf(text, sizeof(text), "{\"sha384\":\"%s\",\"canonicalSize\":%llu}\n", hex,
                         (unsigned long long) canonical_size);
        int r = put_file(s->stage_fd, "package.json", text, (size_t) n, 0644);
        if (r == 0 && block && block_len > 0)
                r = put_file(s->stage_fd, "signature.dsse", block, block_len, 0644);
        return r;
}

static void stage_close_fds(sg_stage *s) {
        if (s->file_fd >= 0)
                close(s->file_fd);
        if (s->cached_dir)
                close(s->cached_fd);
        free(s->cached_dir);
        s->cached_dir = NULL;
        if (s->content_fd >= 0)
                close(s->content_fd);
        if (s->stage_fd >= 0)
                close(s->stage_fd);
        s->file_fd = s->content_fd = s->stage_fd = -1;
}

static void dir_discard(sg_adapter *base, sg_stage *s) {
        (void) base;
        if (!s)
                return;
        stage_close_fds(s);
        if (s->parent_fd >= 0) {
                (void) sg_remove_tree(s->parent_fd, s->stage_name);
                close(s->parent_fd);
        }
        free(s);
}

static int dir_stage(sg_adapter *base, sg_kind kind, const char *name, const char *tag, sg_stage **ret) {
        dir_adapter *a = (dir_adapter *) base;
        sg_stage *s = calloc(1, sizeof(*s));
        int r;
        if (!s)
                return -ENOMEM;
        s->a = a;
        s->kind = kind;
        s->parent_fd = s->stage_fd = s->content_fd = s->file_fd = -1;
        snprintf(s->name, sizeof(s->name), "%s", name);
        if (snprintf(s->stage_name, sizeof(s->stage_name), STAGE_PREFIX "%s", tag) >= (int) sizeof(s->stage_name)) {
                free(s);
                return -ENAMETOOLONG;
        }
        if ((r = open_parent(a, kind, name, true, &s->parent_fd)) < 0)
                goto fail;
        (void) sg_remove_tree(s->parent_fd, s->stage_name); /* a retry's leftovers */
        if ((r = mkdir_beneath(s->parent_fd, s->stage_name, &s->stage_fd)) < 0 ||
            (r = mkdir_beneath(s->stage_fd, kind == SG_KIND_LAYER ? "opt" : "task", &s->content_fd)) < 0)
                goto fail;
        s->sink = (sg_package_sink){
                .userdata = s,
                .on_entry_begin = on_begin,
                .on_entry_data = on_data,
                .on_entry_end = on_end,
                .on_symlink = on_symlink,
                .lane_new = lane_new,
                .lane_done = lane_done,
        };
        *ret = s;
        return 0;
fail:
        dir_discard(base, s);
        return r;
}

/* Releases of a function (or versions of a layer), oldest first. A release name's time has
 * one-second resolution and then the digest, so two promotions within a second would sort by
 * digest: the order is the release directory's mtime instead (set, in nanoseconds, when
 * release.json is written into it just before it is renamed into place; nothing changes a
 * release afterwards), with the name breaking ties. */
typedef struct {
        char (*names)[SG_RELEASE_MAX];
        size_t n;
} release_list;

typedef struct {
        char name[SG_RELEASE_MAX];
        struct timespec mtime;
} release_item;

static int cmp_items(const void *x, const void *y) {
        const release_item *a = x, *b = y;
        if (a->mtime.tv_sec != b->mtime.tv_sec)
                return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
        if (a->mtime.tv_nsec != b->mtime.tv_nsec)
                return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
        return strcmp(a->name, b->name);
}

static int list_releases(int releases_fd, release_list *ret) {
        DIR *d = NULL;
        int opened = sg_opendirat(releases_fd, ".", &d);
        if (opened < 0)
                return opened;
        release_item *items = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || strlen(de->d_name) >= SG_RELEASE_MAX ||
                    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        void *p = realloc(items, cap * sizeof(*items));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        items = p;
                }
                snprintf(items[n].name, SG_RELEASE_MAX, "%s", de->d_name);
                items[n++].mtime = st.st_mtim;
        }
        closedir(d);
        release_list l = {0};
        if (r == 0 && n > 0 && !(l.names = calloc(n, sizeof(*l.names))))
                r = -ENOMEM;
        if (r < 0) {
                free(items);
                return r;
        }
        if (n > 1) /* qsort(NULL, 0, …) is undefined behaviour */
                qsort(items, n, sizeof(*items), cmp_items);
        for (size_t i = 0; i < n; i++)
                memcpy(l.names[i], items[i].name, SG_RELEASE_MAX);
        l.n = n;
        free(items);
        *ret = l;
        return 0;
}

/* Points F/current at releases/RELEASE: a new symlink, renamed over the old one, then the
 * directory fsynced. A runtime reading current/task/ sees the old tree or the new one. */
static int swap_current(int function_fd, const char *release) {
        char target[SG_RELEASE_MAX + 16];
        snprintf(target, sizeof(target), "releases/%s", release);
        (void) unlinkat(function_fd, CURRENT_TMP, 0);
        if (symlinkat(target, function_fd, CURRENT_TMP) < 0)
                return -errno;
        if (renameat(function_fd, CURRENT_TMP, function_fd, "current") < 0) {
                int r = -errno;
                (void) unlinkat(function_fd, CURRENT_TMP, 0);
                return r;
        }
        return sg_fsync_dir(function_fd);
}

static int open_function_dir(dir_adapter *a, const char *function, int *ret_fd) {
        int fns = open_beneath(a->root_fd, "functions", O_RDONLY | O_DIRECTORY, 0);
        if (fns < 0)
                return fns;
        int fd = open_beneath(fns, function, O_RDONLY | O_DIRECTORY, 0);
        close(fns);
        if (fd < 0)
                return fd;
        *ret_fd = fd;
        return 0;
}

static int write_record(int dirfd, const cJSON *record) {
        char *text = record ? cJSON_Print(record) : NULL;
        if (!record)
                return 0;
        if (!text)
                return -ENOMEM;
        int r = put_file(dirfd, "release.json", text, strlen(text), 0644);
        free(text);
        return r;
}

static int promote_layer(dir_adapter *a, sg_stage *s, const cJSON *record, sg_promotion *ret) {
        release_list l = {0};
        int r;
        if ((r = write_record(s->stage_fd, record)) < 0)
                return r;
        if ((r = list_releases(s->parent_fd, &l)) < 0)
                return r;
        uint64_t max = 0;
        for (size_t i = 0; i < l.n; i++) {
                uint64_t v;
                if (sg_parse_u64(l.names[i], 1, UINT32_MAX, &v) == 0 && v > max)
                        max = v;
        }
        free(l.names);
        snprintf(ret->release, sizeof(ret->release), "%llu", (unsigned long long) max + 1);
        if (renameat2(s->parent_fd, s->stage_name, s->parent_fd, ret->release, RENAME_NOREPLACE) < 0)
                return -errno;
        if (snprintf(ret->path, sizeof(ret->path), "%s/layers/%s/%s", a->root, s->name, ret->release) >=
            (int) sizeof(ret->path))
                return -ENAMETOOLONG;
        /* One syncfs for the tree, its record and its name: a flush per file would cost a disk
         * flush per entry. The version is visible from here on, so only once it is durable. */
        return syncfs(s->parent_fd) < 0 ? -errno : 0;
}

/* A release of this digest already made by this very decision: a crash came after the
 * release was renamed into place and before current was swapped (or the record written), and
 * the retry (same decision id, DESIGN §8) must finish that promotion, not make a second one. */
static bool find_own_release(int releases_fd, const unsigned char digest[SG_DIGEST_LEN], const cJSON *record,
                             char out[SG_RELEASE_MAX]) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(record, "decisionId");
        char hex[SG_DIGEST_HEX_LEN + 1], tail[16];
        release_list l = {0};
        bool found = false;
        if (!cJSON_IsString(id) || list_releases(releases_fd, &l) < 0)
                return false;
        sg_hex_encode(digest, SG_DIGEST_LEN, hex);
        snprintf(tail, sizeof(tail), "-%.12s", hex);
        for (size_t i = 0; i < l.n && !found; i++) {
                const char *dash = strrchr(l.names[i], '-');
                if (!dash || strncmp(dash, tail, strlen(tail)) != 0)
                        continue;
                int dfd = openat(releases_fd, l.names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                char *text = NULL;
                if (dfd >= 0 && sg_read_file(dfd, "release.json", 1 << 20, &text, NULL) == 0) {
                        cJSON *j = cJSON_Parse(text);
                        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(j, "decisionId");
                        if (cJSON_IsString(rid) && strcmp(rid->valuestring, id->valuestring) == 0) {
                                snprintf(out, SG_RELEASE_MAX, "%s", l.names[i]);
                                found = true;
                        }
                        cJSON_Delete(j);
                }
                free(text);
                if (dfd >= 0)
                        close(dfd);
        }
        free(l.names);
        return found;
}

/* Renames the stage to its release name (ret->release), with its record. Not durable yet:
 * the caller's syncfs makes it so, before anything points at it. */
static int install_release(sg_stage *s, const unsigned char digest[SG_DIGEST_LEN], int64_t now, const cJSON *record,
                           sg_promotion *ret) {
        int r;
        if ((r = write_record(s->stage_fd, record)) < 0)
                return r;
        sg_release_name(now, digest, ret->release);
        size_t base_len = strlen(ret->release);
        for (int i = 1; renameat2(s->parent_fd, s->stage_name, s->parent_fd, ret->release, RENAME_NOREPLACE) < 0; i++) {
                /* Two different promotions of one digest within a second (a rollforward after
                 * a rollback, say): keep both, distinctly named. */
                if (errno != EEXIST || i > 99)
                        return -errno;
                snprintf(ret->release + base_len, SG_RELEASE_MAX - base_len, ".%d", i);
        }
        return 0;
}

static int dir_promote(sg_adapter *base, sg_stage *s, const unsigned char digest[SG_DIGEST_LEN], int64_t now,
                       const cJSON *record, sg_promotion *ret) {
        dir_adapter *a = (dir_adapter *) base;
        int r, fn = -1;

        stage_close_fds(s);
        s->stage_fd = openat(s->parent_fd, s->stage_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (s->stage_fd < 0)
                return -errno;
        if (s->kind == SG_KIND_LAYER)
                return promote_layer(a, s, record, ret);
        /* The decision is marked pending before its release exists, and both are made durable
         * by one syncfs before current may point at the release: a live release without a
         * durable record always has its marker (see reconcile). A crash before that syncfs can
         * at worst leave a release nothing points at, which the next prune removes. */
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(record, "decisionId");
        char marker[64];
        if (!cJSON_IsString(id) || !sg_uuid_valid(id->valuestring))
                return -EINVAL;
        snprintf(marker, sizeof(marker), PENDING_PREFIX "%s", id->valuestring);
        if ((r = open_function_dir(a, s->name, &fn)) < 0)
                return r;
        if ((r = put_file(fn, marker, "", 0, 0644)) < 0) {
                close(fn);
                return r;
        }
        if (find_own_release(s->parent_fd, digest, record, ret->release))
                (void) sg_remove_tree(s->parent_fd, s->stage_name);
        else if ((r = install_release(s, digest, now, record, ret)) < 0) {
                close(fn);
                return r;
        }
        /* One flush for the marker, the tree, its record and its name: an fsync per file would
         * cost a disk flush per entry. */
        r = syncfs(fn) < 0 ? -errno : swap_current(fn, ret->release);
        close(fn);
        if (r == 0 && snprintf(ret->path, sizeof(ret->path), "%s/functions/%s/releases/%s", a->root, s->name,
                               ret->release) >= (int) sizeof(ret->path))
                r = -ENAMETOOLONG;
        return r;
}

static int read_current(int fn, char release[SG_RELEASE_MAX]) {
        char link[SG_RELEASE_MAX + 16];
        ssize_t n = readlinkat(fn, "current", link, sizeof(link) - 1);
        if (n < 0)
                return -errno;
        link[n] = '\0';
        if (strncmp(link, "releases/", 9) != 0 || strchr(link + 9, '/') || strlen(link + 9) >= SG_RELEASE_MAX)
                return -EINVAL;
        snprintf(release, SG_RELEASE_MAX, "%s", link + 9);
        return 0;
}

static int dir_current(sg_adapter *base, const char *function, char release[SG_RELEASE_MAX],
                       unsigned char digest[SG_DIGEST_LEN]) {
        dir_adapter *a = (dir_adapter *) base;
        int fn = -1, r;
        char path[SG_RELEASE_MAX + 32];
        if ((r = open_function_dir(a, function, &fn)) < 0)
                return r;
        r = read_current(fn, release);
        if (r == 0) {
                char *text = NULL;
                snprintf(path, sizeof(path), "releases/%s/release.json", release);
                int rel = openat(fn, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int dfd = rel < 0 ? -1 : openat(rel, release, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = dfd < 0 ? -errno : sg_read_file(dfd, "release.json", 1 << 20, &text, NULL);
                if (rel >= 0)
                        close(rel);
                if (dfd >= 0)
                        close(dfd);
                cJSON *j = r == 0 ? cJSON_Parse(text) : NULL;
                const cJSON *sha = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "package"), "sha384");
                if (r == 0)
                        r = cJSON_IsString(sha) && sg_hex_decode(sha->valuestring, digest, SG_DIGEST_LEN) == 0 ? 0 : -EINVAL;
                cJSON_Delete(j);
                free(text);
        }
        close(fn);
        return r;
}

static int dir_prune(sg_adapter *base, const char *function) {
        dir_adapter *a = (dir_adapter *) base;
        int fn = -1, rel = -1, r;
        char cur[SG_RELEASE_MAX] = "";
        release_list l = {0};
        if ((r = open_function_dir(a, function, &fn)) < 0)
                return r;
        (void) read_current(fn, cur);
        rel = openat(fn, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fn);
        if (rel < 0)
                return -errno;
        if ((r = list_releases(rel, &l)) == 0) {
                size_t keep = 0;
                for (size_t i = l.n; i-- > 0;) {
                        /* Newest first: the newest `retain` stay, and current stays even when a
                         * rollback left it older than those. */
                        if (keep < a->retain || strcmp(l.names[i], cur) == 0) {
                                keep++;
                                continue;
                        }
                        /* Not fsynced: a removal a crash undoes is redone by the next prune. */
                        int k = sg_remove_tree(rel, l.names[i]);
                        if (k < 0 && r == 0)
                                r = k;
                }
        }
        free(l.names);
        close(rel);
        return r;
}

static int dir_previous(sg_adapter *base, const char *function, char release[SG_RELEASE_MAX]) {
        dir_adapter *a = (dir_adapter *) base;
        int fn = -1, rel = -1, r;
        char cur[SG_RELEASE_MAX] = "";
        release_list l = {0};
        if ((r = open_function_dir(a, function, &fn)) < 0)
                return r;
        if ((r = read_current(fn, cur)) == 0) {
                rel = openat(fn, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = rel < 0 ? -errno : list_releases(rel, &l);
        }
        if (r == 0) {
                r = -ENOENT;
                for (size_t i = l.n; i-- > 1;)
                        if (strcmp(l.names[i], cur) == 0) {
                                snprintf(release, SG_RELEASE_MAX, "%s", l.names[i - 1]);
                                r = 0;
                                break;
                        }
        }
        free(l.names);
        if (rel >= 0)
                close(rel);
        close(fn);
        return r;
}

static int dir_facts(sg_adapter *base, const char *function, const char *release, sg_release_facts *ret) {
        dir_adapter *a = (dir_adapter *) base;
        int fn = -1, r;
        char *text = NULL;
        sg_release_facts f = {0};
        if ((r = open_function_dir(a, function, &fn)) < 0)
                return r;
        int rel = openat(fn, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fn);
        int dfd = rel < 0 ? -1 : open_beneath(rel, release, O_RDONLY | O_DIRECTORY, 0);
        if (rel >= 0)
                close(rel);
        if (dfd < 0)
                return rel < 0 ? -errno : dfd;
        r = sg_read_file(dfd, "package.json", 4096, &text, NULL);
        cJSON *j = r == 0 ? cJSON_Parse(text) : NULL;
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "sha384"), *cs = cJSON_GetObjectItemCaseSensitive(j, "canonicalSize");
        if (r == 0 && (!cJSON_IsString(sha) || sg_hex_decode(sha->valuestring, f.digest, SG_DIGEST_LEN) < 0 ||
                       !cJSON_IsNumber(cs) || cs->valuedouble < 0))
                r = -EINVAL;
        if (r == 0)
                f.canonical_size = (uint64_t) cs->valuedouble;
        cJSON_Delete(j);
        free(text);
        if (r == 0) {
                int k = sg_read_file(dfd, "signature.dsse", 65535, &f.block, &f.block_len);
                if (k < 0 && k != -ENOENT)
                        r = k;
        }
        close(dfd);
        if (r < 0) {
                free(f.block);
                return r;
        }
        *ret = f;
        return 0;
}

static int dir_rollback(sg_adapter *base, const char *function, sg_promotion *ret) {
        dir_adapter *a = (dir_adapter *) base;
        int fn = -1, rel = -1, r;
        char cur[SG_RELEASE_MAX] = "";
        release_list l = {0};
        if ((r = open_function_dir(a, function, &fn)) < 0)
                return r;
        if ((r = read_current(fn, cur)) < 0)
                goto out;
        rel = openat(fn, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rel < 0 || (r = list_releases(rel, &l)) < 0) {
                r = r < 0 ? r : -errno;
                goto out;
        }
        r = -ENOENT;
        for (size_t i = l.n; i-- > 1;)
                if (strcmp(l.names[i], cur) == 0) {
                        snprintf(ret->release, sizeof(ret->release), "%s", l.names[i - 1]);
                        if (snprintf(ret->path, sizeof(ret->path), "%s/functions/%s/releases/%s", a->root,
                                     function, ret->release) >= (int) sizeof(ret->path)) {
                                r = -ENAMETOOLONG;
                                break;
                        }
                        r = swap_current(fn, ret->release);
                        break;
                }
out:
        free(l.names);
        if (rel >= 0)
                close(rel);
        close(fn);
        return r;
}

/* Removes .stage-* entries and a half-made current link below one directory of names. */
static int recover_dir(int top_fd, bool functions) {
        DIR *d = NULL;
        int r = sg_opendirat(top_fd, ".", &d);
        if (r < 0)
                return r;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        continue;
                if (functions) {
                        (void) unlinkat(sub, CURRENT_TMP, 0);
                        /* Temp files of an atomic write a crash cut short (a pending marker's). */
                        DIR *fd = NULL;
                        if (sg_opendirat(sub, ".", &fd) == 0) {
                                struct dirent *t;
                                while ((t = readdir(fd))) {
                                        size_t len = strlen(t->d_name);
                                        if (t->d_name[0] == '.' && len > 4 && strcmp(t->d_name + len - 4, ".tmp") == 0)
                                                (void) unlinkat(sub, t->d_name, 0);
                                }
                                closedir(fd);
                        }
                        int rel = openat(sub, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        close(sub);
                        sub = rel;
                        if (sub < 0)
                                continue;
                }
                DIR *sd = fdopendir(sub);
                if (!sd) {
                        close(sub);
                        continue;
                }
                struct dirent *e;
                while ((e = readdir(sd)))
                        if (strncmp(e->d_name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0) {
                                int k = sg_remove_tree(dirfd(sd), e->d_name);
                                if (k < 0 && r == 0)
                                        r = k;
                        }
                closedir(sd);
        }
        closedir(d);
        return r;
}

static int dir_recover(sg_adapter *base) {
        dir_adapter *a = (dir_adapter *) base;
        int r = 0;
        for (int k = 0; k < 2; k++) {
                int top;
                int m = mkdir_beneath(a->root_fd, k ? "layers" : "functions", &top);
                if (m < 0)
                        return m;
                m = recover_dir(top, k == 0);
                close(top);
                if (m < 0 && r == 0)
                        r = m;
        }
        return r;
}

static int decision_of(int releases_fd, const char *release, char ret[37]) {
        char *text = NULL;
        int dfd = open_beneath(releases_fd, release, O_RDONLY | O_DIRECTORY, 0);
        if (dfd < 0)
                return dfd;
        int r = sg_read_file(dfd, "release.json", 1 << 20, &text, NULL);
        close(dfd);
        cJSON *j = r == 0 ? cJSON_Parse(text) : NULL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "decisionId");
        if (r == 0 && (!cJSON_IsString(id) || !sg_uuid_valid(id->valuestring)))
                r = -EINVAL;
        if (r == 0)
                snprintf(ret, 37, "%s", id->valuestring);
        cJSON_Delete(j);
        free(text);
        return r;
}

static bool is_pending(int fn, const char *decision_id) {
        char m[64];
        snprintf(m, sizeof(m), PENDING_PREFIX "%s", decision_id);
        return faccessat(fn, m, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Undoes the pending decision `id` of function fn (fd): every release it made goes, and if one
 * was current, current goes back to the newest release whose decision is not pending (or
 * away). The marker is removed last, so a crash in between is undone again at the next start. */
static int undo_pending(int fn, const char *id) {
        int rel = openat(fn, "releases", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char cur[SG_RELEASE_MAX] = "", own[37];
        release_list l = {0};
        int r;
        if (rel < 0)
                return errno == ENOENT ? 0 : -errno;
        (void) read_current(fn, cur);
        if ((r = list_releases(rel, &l)) < 0) {
                close(rel);
                return r;
        }
        bool undo_current = false;
        for (size_t i = 0; i < l.n; i++)
                if (decision_of(rel, l.names[i], own) == 0 && strcmp(own, id) == 0 && strcmp(l.names[i], cur) == 0)
                        undo_current = true;
        if (undo_current) {
                const char *back = NULL;
                for (size_t i = l.n; i-- > 0 && !back;)
                        if (decision_of(rel, l.names[i], own) == 0 && strcmp(own, id) != 0 && !is_pending(fn, own))
                                back = l.names[i];
                r = back ? swap_current(fn, back)
                         : (unlinkat(fn, "current", 0) < 0 && errno != ENOENT ? -errno : sg_fsync_dir(fn));
        }
        for (size_t i = 0; r == 0 && i < l.n; i++)
                if (decision_of(rel, l.names[i], own) == 0 && strcmp(own, id) == 0)
                        r = sg_remove_tree(rel, l.names[i]);
        if (r == 0)
                r = sg_fsync_dir(rel);
        free(l.names);
        close(rel);
        return r;
}

/* Ends a pending decision of function: with undo, its promotion is undone first (its record
 * could not be written); either way its marker goes. */
static int finish_pending(sg_adapter *base, const char *function, const char *decision_id, bool undo) {
        dir_adapter *a = (dir_adapter *) base;
        int fn, r;
        char marker[64];
        if (!sg_uuid_valid(decision_id))
                return -EINVAL;
        if ((r = open_function_dir(a, function, &fn)) < 0)
                return r;
        r = undo ? undo_pending(fn, decision_id) : 0;
        snprintf(marker, sizeof(marker), PENDING_PREFIX "%s", decision_id);
        if (r == 0 && unlinkat(fn, marker, 0) < 0 && errno != ENOENT)
                r = -errno;
        close(fn);
        return r;
}

static int dir_unpromote(sg_adapter *base, const char *function, const char *decision_id) {
        return finish_pending(base, function, decision_id, true);
}

static int dir_settle(sg_adapter *base, const char *function, const char *decision_id) {
        return finish_pending(base, function, decision_id, false);
}

static int dir_reconcile(sg_adapter *base, bool (*recorded)(void *ctx, const char *decision_id), void *ctx) {
        dir_adapter *a = (dir_adapter *) base;
        DIR *d = NULL;
        int fns = open_beneath(a->root_fd, "functions", O_RDONLY | O_DIRECTORY, 0);
        if (fns < 0)
                return fns == -ENOENT ? 0 : fns;
        int r = sg_opendirat(fns, ".", &d);
        close(fns);
        if (r < 0)
                return r;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!sg_name_valid(de->d_name))
                        continue;
                int fn = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                DIR *fd = NULL;
                if (fn < 0 || sg_opendirat(fn, ".", &fd) < 0) {
                        if (fn >= 0)
                                close(fn);
                        continue;
                }
                struct dirent *e;
                while ((e = readdir(fd))) {
                        if (strncmp(e->d_name, PENDING_PREFIX, strlen(PENDING_PREFIX)) != 0)
                                continue;
                        const char *id = e->d_name + strlen(PENDING_PREFIX);
                        if (!sg_uuid_valid(id))
                                continue;
                        int k = recorded(ctx, id) ? 0 : undo_pending(fn, id);
                        if (k == 0)
                                (void) unlinkat(fn, e->d_name, 0);
                        else if (r == 0)
                                r = k;
                }
                closedir(fd);
                close(fn);
        }
        closedir(d);
        return r;
}

static void dir_free(sg_adapter *base) {
        dir_adapter *a = (dir_adapter *) base;
        if (!a)
                return;
        if (a->root_fd >= 0)
                close(a->root_fd);
        free(a);
}

static const sg_adapter_ops dir_ops = {
        .name = "directory",
        .stage = dir_stage,
        .promote = dir_promote,
        .discard = dir_discard,
        .current = dir_current,
        .rollback = dir_rollback,
        .previous = dir_previous,
        .unpromote = dir_unpromote,
        .settle = dir_settle,
        .reconcile = dir_reconcile,
        .facts = dir_facts,
        .prune = dir_prune,
        .recover = dir_recover,
        .free = dir_free,
};

int sg_dir_adapter_new(const char *runtime_dir, unsigned retain, sg_adapter **ret) {
        dir_adapter *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->base.ops = &dir_ops;
        a->retain = retain ? retain : 1;
        if (!realpath(runtime_dir, a->root)) {
                int r = -errno;
                free(a);
                return r;
        }
        a->root_fd = open(a->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (a->root_fd < 0) {
                int r = -errno;
                free(a);
                return r;
        }
        *ret = &a->base;
        return 0;
}
