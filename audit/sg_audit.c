/* sg_audit.c — the hash-chained audit file. The contract and the file format are in sg_audit.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sg_audit.h"

/* Reads are done in chunks of this size; a line reader holds one line plus one chunk. */
#define READ_CHUNK (64u * 1024u)

static const char zero_hash[SG_AUDIT_HASH_HEX_LEN + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";

struct sg_audit {
        int dirfd;
        int fd;     /* the current file, NAME: O_RDWR|O_APPEND, flock()ed */
        char *name; /* NAME, relative to dirfd */
        sg_audit_options opts;
        uint64_t size;     /* bytes of NAME that hold whole lines: where a failed write truncates back to */
        uint64_t next_seq; /* seq of the next line */
        char prev[SG_AUDIT_HASH_HEX_LEN + 1]; /* SHA-256 hex of the last line written */
        /* A failed write could not be truncated away: appending after a torn line would hide it
         * inside a "valid" file, so the handle refuses all further appends. */
        bool broken;
        /* keep_files 0: NAME.1 exists only until the new NAME holds its first line. */
        bool drop_rotated;
        uint64_t repaired_bytes; /* a torn last line cut off at open */
};

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

static int sha256_hex(const void *p, size_t n, char out[SG_AUDIT_HASH_HEX_LEN + 1]) {
        unsigned char md[32];
        unsigned int len = 0;

        if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != sizeof(md))
                return -ENOMEM; /* OpenSSL fails here only when it cannot allocate */
        sg_hex_encode(md, sizeof(md), out);
        return 0;
}

static bool is_hash_hex(const char *s) {
        if (!s || strlen(s) != SG_AUDIT_HASH_HEX_LEN)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* "seq" of a record: an integral number in [1, SG_AUDIT_SEQ_MAX]. cJSON holds it as a double, which
 * is exact over that whole range. */
static int record_seq(const cJSON *j, uint64_t *ret) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "seq");
        if (!cJSON_IsNumber(s))
                return -EBADMSG;
        double d = s->valuedouble;
        if (!(d >= 1 && d <= (double) SG_AUDIT_SEQ_MAX) || d != (double) (uint64_t) d)
                return -EBADMSG;
        *ret = (uint64_t) d;
        return 0;
}

/* Parses one line (without its '\n') as a JSON object and nothing else. cJSON stops at the end of
 * the first value and ignores what follows, so trailing bytes are checked here. */
static cJSON *parse_line(const char *line, size_t len, const char **ret_why) {
        const char *end = NULL;

        if (len == 0 || line[0] != '{') {
                *ret_why = len == 0 ? "empty line" : "not a JSON object";
                return NULL;
        }
        cJSON *j = cJSON_ParseWithLengthOpts(line, len, &end, false);
        if (!j || end != line + len) {
                cJSON_Delete(j);
                *ret_why = "not valid JSON";
                return NULL;
        }
        if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                *ret_why = "not a JSON object";
                return NULL;
        }
        return j;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading lines: forward, streaming, bounded.                                                  */

typedef struct {
        int fd;
        uint64_t off, end; /* next file offset to read; reading stops at end */
        char *buf;         /* SG_AUDIT_LINE_MAX + READ_CHUNK bytes */
        size_t start, fill;
        bool eof;
} line_reader;

static int line_reader_init(line_reader *lr, int fd, uint64_t off, uint64_t end) {
        if (!lr->buf && !(lr->buf = malloc(SG_AUDIT_LINE_MAX + READ_CHUNK)))
                return -ENOMEM;
        lr->fd = fd;
        lr->off = off;
        lr->end = end;
        lr->start = lr->fill = 0;
        lr->eof = false;
        return 0;
}

static void line_reader_done(line_reader *lr) {
        free(lr->buf);
        lr->buf = NULL;
}

/* Returns 1 and the next line (without '\n'; *ret_nl tells whether it had one; valid until the next
 * call), 0 at the end, -EMSGSIZE for a line longer than SG_AUDIT_LINE_MAX with its '\n', or -errno. */
static int line_next(line_reader *lr, const char **ret_line, size_t *ret_len, bool *ret_nl) {
        const size_t cap = SG_AUDIT_LINE_MAX + READ_CHUNK;

        for (;;) {
                char *p = lr->buf + lr->start, *nl = memchr(p, '\n', lr->fill - lr->start);
                if (nl && (size_t) (nl - p) < SG_AUDIT_LINE_MAX) {
                        *ret_line = p;
                        *ret_len = (size_t) (nl - p);
                        *ret_nl = true;
                        lr->start += *ret_len + 1;
                        return 1;
                }
                if (nl || lr->fill - lr->start >= SG_AUDIT_LINE_MAX)
                        return -EMSGSIZE;
                if (lr->eof) {
                        if (lr->start == lr->fill)
                                return 0;
                        *ret_line = p;
                        *ret_len = lr->fill - lr->start;
                        *ret_nl = false;
                        lr->start = lr->fill;
                        return 1;
                }
                /* What is left is the start of a line shorter than the cap: moving it down
                 * leaves room for at least one more chunk. */
                if (lr->start > 0) {
                        memmove(lr->buf, p, lr->fill - lr->start);
                        lr->fill -= lr->start;
                        lr->start = 0;
                }
                size_t room = cap - lr->fill;
                if (lr->end - lr->off < room)
                        room = (size_t) (lr->end - lr->off);
                if (room == 0) {
                        lr->eof = true;
                        continue;
                }
                ssize_t k = pread(lr->fd, lr->buf + lr->fill, room, (off_t) lr->off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        lr->eof = true;
                lr->fill += (size_t) k;
                lr->off += (uint64_t) k;
        }
}

/* Line number (1-based) of the line that starts at byte off: only computed to report an error, so
 * the cost of reading the file up to there is paid only for a broken file. */
static uint64_t line_number_at(int fd, uint64_t off) {
        char buf[READ_CHUNK];
        uint64_t n = 1, pos = 0;

        while (pos < off) {
                size_t want = off - pos < sizeof(buf) ? (size_t) (off - pos) : sizeof(buf);
                ssize_t k = pread(fd, buf, want, (off_t) pos);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                for (char *p = buf; (p = memchr(p, '\n', (size_t) (buf + k - p))); p++)
                        n++;
                pos += (uint64_t) k;
        }
        return n;
}

/* Reads the last line of a file of size bytes (size > 0) and returns its seq and hash. A last line
 * without '\n' is what a crash in the middle of a write leaves (Linux stops a buffered write
 * between pages on SIGKILL): with ret_torn set, its start offset is returned there with -EAGAIN
 * so the caller can cut it; without, it is an error. */
static int read_tail(int fd, uint64_t size, const char *display, uint64_t *ret_seq,
                     char ret_hash[SG_AUDIT_HASH_HEX_LEN + 1], uint64_t *ret_torn, sg_error *err) {
        size_t n = size < SG_AUDIT_LINE_MAX ? (size_t) size : SG_AUDIT_LINE_MAX;
        uint64_t off = size - n;
        _cleanup_(sg_freep) char *buf = malloc(n);
        const char *what = NULL, *why = NULL;
        int r;

        if (!buf)
                return -ENOMEM;
        if ((r = sg_pread_all(fd, buf, n, off)) < 0) {
                sg_error_set(err, SG_REASON_NONE, "%s: cannot read: %s", display, strerror(-r));
                return r;
        }
        bool torn = buf[n - 1] != '\n';
        size_t body_end = torn ? n : n - 1;
        char *nl = memrchr(buf, '\n', body_end);
        size_t start = nl ? (size_t) (nl - buf) + 1 : 0;
        _cleanup_(cjson_deletep) cJSON *j = NULL;

        if (!nl && off > 0)
                what = "is longer than the line limit";
        else if (torn && ret_torn) {
                *ret_torn = off + start;
                return -EAGAIN;
        } else if (torn)
                what = "does not end in a newline (a write torn by a crash?)";
        else if (!(j = parse_line(buf + start, body_end - start, &why)))
                what = why;
        else if (record_seq(j, ret_seq) < 0)
                what = "has no integer \"seq\" in range";
        if (what) {
                sg_error_set(err, SG_REASON_NONE, "%s:%" PRIu64 ": the last line %s%s", display,
                             line_number_at(fd, off + start), why ? "is " : "", what);
                return -EBADMSG;
        }
        return sha256_hex(buf + start, body_end - start, ret_hash);
}

/* ------------------------------------------------------------------------------------------ */
/* Opening.                                                                                     */

static int rotated_name(const char *name, unsigned i, char out[NAME_MAX + 1]) {
        int k = snprintf(out, NAME_MAX + 1, "%s.%u", name, i);
        return k < 0 || k > NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Opens the current file read-write for appending, creating it (mode 0640 whatever the umask, the
 * directory entry made durable) when it does not exist, and locks it. */
static int open_current(int dirfd, const char *name, bool must_create, int *ret_fd) {
        const int flags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
        _cleanup_(sg_closep) int fd = -1;
        bool created = false;

        if (!must_create)
                fd = openat(dirfd, name, flags);
        if (fd < 0 && (must_create || errno == ENOENT)) {
                fd = openat(dirfd, name, flags | O_CREAT | O_EXCL, 0640);
                created = fd >= 0;
        }
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (created) {
                int r;
                if (fchmod(fd, 0640) < 0)
                        return -errno;
                if ((r = sg_fsync_dir(dirfd)) < 0)
                        return r;
        }
        *ret_fd = SG_TAKE_FD(fd);
        return 0;
}

int sg_audit_open(int dirfd, const char *name, const sg_audit_options *o, sg_audit **ret, sg_error *err) {
        sg_audit_options opts = o ? *o : (sg_audit_options){0};
        char name1[NAME_MAX + 1];
        struct stat st;
        int r;

        if (!name || !*name || strchr(name, '/') || rotated_name(name, SG_AUDIT_KEEP_MAX, name1) < 0) {
                sg_error_set(err, SG_REASON_NONE, "%s: not a valid audit file name", name ? name : "(null)");
                return -EINVAL;
        }
        if (opts.keep_files > SG_AUDIT_KEEP_MAX) {
                sg_error_set(err, SG_REASON_NONE, "%s: keeping %u rotated files is over the limit of %u", name,
                             opts.keep_files, SG_AUDIT_KEEP_MAX);
                return -EINVAL;
        }
        _cleanup_(sg_audit_freep) sg_audit *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->fd = -1;
        a->opts = opts;
        /* Rotation renames and fsyncs in the directory for as long as the handle lives, so it keeps
         * its own descriptor: the caller's may be closed, and AT_FDCWD may change meaning. */
        a->dirfd = dirfd == AT_FDCWD ? open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (a->dirfd < 0) {
                r = -errno;
                sg_error_set(err, SG_REASON_NONE, "%s: cannot use its directory: %s", name, strerror(-r));
                return r;
        }
        if (!(a->name = strdup(name)))
                return -ENOMEM;
        if ((r = open_current(a->dirfd, name, false, &a->fd)) < 0) {
                sg_error_set(err, SG_REASON_NONE, "%s: %s", name,
                             r == -ELOOP    ? "is a symbolic link"
                             : r == -EBUSY  ? "is in use by another writer"
                             : r == -EINVAL ? "not a regular file"
                                            : strerror(-r));
                return r;
        }
        if (fstat(a->fd, &st) < 0) {
                r = -errno;
                sg_error_set(err, SG_REASON_NONE, "%s: %s", name, strerror(-r));
                return r;
        }
        a->size = (uint64_t) st.st_size;

        uint64_t last_seq = 0, torn_at = 0;
        /* A torn last line was never fsynced, so never acknowledged: no decision it held was acted
         * on (its package is still in the inbox and is decided again). It is cut off. */
        while (a->size > 0 && (r = read_tail(a->fd, a->size, name, &last_seq, a->prev, &torn_at, err)) == -EAGAIN) {
                if (ftruncate(a->fd, (off_t) torn_at) < 0 || fsync(a->fd) < 0) {
                        r = -errno;
                        sg_error_set(err, SG_REASON_NONE, "%s: cannot cut a torn last line: %s", name, strerror(-r));
                        return r;
                }
                a->repaired_bytes += a->size - torn_at;
                a->size = torn_at;
        }
        if (a->size > 0) {
                if (r < 0)
                        return r;
        } else {
                /* An empty current file after a rotation (the crash came before its first line was
                 * written): the chain goes on from the newest rotated file. */
                (void) rotated_name(name, 1, name1);
                _cleanup_(sg_closep) int fd1 = openat(a->dirfd, name1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd1 < 0 && errno != ENOENT) {
                        r = -errno;
                        sg_error_set(err, SG_REASON_NONE, "%s: %s", name1, strerror(-r));
                        return r;
                }
                if (fd1 >= 0) {
                        if (fstat(fd1, &st) < 0 || !S_ISREG(st.st_mode)) {
                                sg_error_set(err, SG_REASON_NONE, "%s: not a regular file", name1);
                                return -EINVAL;
                        }
                        if (st.st_size == 0) {
                                sg_error_set(err, SG_REASON_NONE,
                                             "%s:1: the file is empty, so %s (empty too) has no chain to continue",
                                             name1, name);
                                return -EBADMSG;
                        }
                        if ((r = read_tail(fd1, (uint64_t) st.st_size, name1, &last_seq, a->prev, NULL, err)) < 0)
                                return r;
                }
        }
        if (last_seq == 0)
                memcpy(a->prev, zero_hash, sizeof(a->prev));
        a->next_seq = last_seq + 1;
        *ret = SG_TAKE_PTR(a);
        return 0;
}

void sg_audit_free(sg_audit *a) {
        if (!a)
                return;
        if (a->fd >= 0)
                close(a->fd);
        if (a->dirfd >= 0)
                close(a->dirfd);
        free(a->name);
        free(a);
}

uint64_t sg_audit_next_seq(const sg_audit *a) { return a->next_seq; }

uint64_t sg_audit_repaired_bytes(const sg_audit *a) { return a->repaired_bytes; }

const char *sg_audit_prev(const sg_audit *a) { return a->prev; }

/* ------------------------------------------------------------------------------------------ */
/* Appending.                                                                                   */

static void unstamp(cJSON *record) {
        cJSON_DeleteItemFromObjectCaseSensitive(record, "seq");
        cJSON_DeleteItemFromObjectCaseSensitive(record, "prev");
}

/* Puts "seq" first and "prev" last into record and prints it. */
static int stamp(cJSON *record, uint64_t seq, const char *prev, char **ret_text, size_t *ret_len) {
        unstamp(record);
        cJSON *s = cJSON_AddNumberToObject(record, "seq", (double) seq);
        if (!s)
                return -ENOMEM;
        /* cJSON can only append a key; it is moved to the front by detaching and inserting it. */
        cJSON_DetachItemViaPointer(record, s);
        if (!cJSON_InsertItemInArray(record, 0, s)) {
                cJSON_Delete(s);
                return -ENOMEM;
        }
        if (!cJSON_AddStringToObject(record, "prev", prev)) {
                unstamp(record);
                return -ENOMEM;
        }
        char *text = cJSON_PrintUnformatted(record);
        if (!text) {
                unstamp(record);
                return -ENOMEM;
        }
        size_t len = strlen(text);
        if (len >= SG_AUDIT_LINE_MAX) {
                free(text);
                unstamp(record);
                return -EMSGSIZE;
        }
        *ret_text = text;
        *ret_len = len;
        return 0;
}

/* Writes whole lines and makes them durable, or leaves the file as it was. */
static int commit(sg_audit *a, const char *buf, size_t len) {
        int r = sg_write_all(a->fd, buf, len);
        if (r == 0 && fdatasync(a->fd) < 0)
                r = -errno;
        if (r < 0) {
                /* Cut off whatever part of the lines reached the file: the next append (or the next
                 * start-up) must find the chain ending on a whole line. */
                if (ftruncate(a->fd, (off_t) a->size) < 0 || fdatasync(a->fd) < 0)
                        a->broken = true;
                return r;
        }
        a->size += len;
        if (a->drop_rotated) {
                char name1[NAME_MAX + 1];
                (void) rotated_name(a->name, 1, name1);
                /* Best effort: a failure leaves one extra old file and is retried on the next append. */
                if (unlinkat(a->dirfd, name1, 0) == 0 || errno == ENOENT)
                        a->drop_rotated = false;
        }
        return 0;
}

/* NAME.(K-1)→NAME.K … NAME→NAME.1, then a new, empty, locked NAME. A crash anywhere in here leaves
 * a state open() continues from: renames are atomic, and an empty or missing NAME continues from
 * NAME.1. On failure before NAME moved, nothing changed; after, NAME.1 is moved back. */
static int rotate(sg_audit *a) {
        const unsigned keep = a->opts.keep_files;
        char from[NAME_MAX + 1], to[NAME_MAX + 1];
        int fd = -1, r;

        /* Only the run NAME.1 … NAME.(m-1) before the first missing NAME.m has to move up; files
         * past a gap already sit above it in age order. Without a gap, m is K and the rename onto
         * NAME.K drops the oldest file. This keeps a rotation at one rename per existing file. */
        unsigned m = 1;
        while (m < keep) {
                (void) rotated_name(a->name, m, from);
                if (faccessat(a->dirfd, from, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        break;
                m++;
        }
        for (unsigned i = m; i > 1; i--) {
                (void) rotated_name(a->name, i - 1, from);
                (void) rotated_name(a->name, i, to);
                if (renameat(a->dirfd, from, a->dirfd, to) < 0 && errno != ENOENT)
                        return -errno;
        }
        (void) rotated_name(a->name, 1, to);
        if (renameat(a->dirfd, a->name, a->dirfd, to) < 0)
                return -errno;
        r = sg_fsync_dir(a->dirfd);
        if (r == 0)
                r = open_current(a->dirfd, a->name, true, &fd);
        if (r < 0) {
                /* Moving NAME.1 back also replaces a NAME that open_current() created and gave up on. */
                if (renameat(a->dirfd, to, a->dirfd, a->name) < 0 || sg_fsync_dir(a->dirfd) < 0)
                        a->broken = true;
                return r;
        }
        close(a->fd); /* releases the old file's lock */
        a->fd = fd;
        a->size = 0;
        a->drop_rotated = keep == 0;
        return 0;
}

typedef struct {
        char *p;
        size_t len, cap;
} batch;

static void batch_done(batch *b) { free(b->p); }

static int batch_add(batch *b, const char *text, size_t len) {
        if (len + 1 > b->cap - b->len) {
                size_t cap = b->cap ? b->cap : 4096;
                while (len + 1 > cap - b->len)
                        cap *= 2;
                char *p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, text, len);
        b->p[b->len + len] = '\n';
        b->len += len + 1;
        return 0;
}

/* Takes "seq" and "prev" off the records that were stamped but not written; returns r. */
static int unstamp_range(cJSON **records, size_t from, size_t to, int r) {
        for (size_t k = from; k < to; k++)
                unstamp(records[k]);
        return r;
}

int sg_audit_append_many(sg_audit *a, cJSON **records, size_t n, uint64_t *ret_first_seq) {
        _cleanup_(batch_done) batch b = {0};
        char prev[SG_AUDIT_HASH_HEX_LEN + 1];
        size_t pending = 0; /* records[pending, i) are stamped and in b, not yet written */
        uint64_t seq = a->next_seq;
        const uint64_t limit = a->opts.rotate_bytes;
        int r;

        if (a->broken)
                return -EIO;
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!cJSON_IsObject(records[i]))
                        return -EINVAL;
        if (n > SG_AUDIT_SEQ_MAX || a->next_seq > SG_AUDIT_SEQ_MAX - (n - 1))
                return -EOVERFLOW;
        memcpy(prev, a->prev, sizeof(prev));

        for (size_t i = 0; i < n; i++) {
                _cleanup_(sg_freep) char *text = NULL;
                size_t len = 0;

                if ((r = stamp(records[i], seq, prev, &text, &len)) < 0)
                        return unstamp_range(records, pending, i, r);
                /* Written so that it cannot overflow: the file size is far below 2^63. */
                uint64_t before = a->size + b.len;
                if (limit > 0 && before > 0 && (len + 1 > limit || before > limit - (len + 1))) {
                        /* The lines already stamped belong to the old file: they are made durable
                         * there before it is renamed away. */
                        if (b.len > 0) {
                                if ((r = commit(a, b.p, b.len)) < 0)
                                        return unstamp_range(records, pending, i + 1, r);
                                a->next_seq = seq;
                                memcpy(a->prev, prev, sizeof(prev));
                                b.len = 0;
                                pending = i;
                        }
                        if ((r = rotate(a)) < 0)
                                return unstamp_range(records, pending, i + 1, r);
                }
                if ((r = batch_add(&b, text, len)) < 0 || (r = sha256_hex(text, len, prev)) < 0)
                        return unstamp_range(records, pending, i + 1, r);
                seq++;
        }
        if ((r = commit(a, b.p, b.len)) < 0)
                return unstamp_range(records, pending, n, r);
        a->next_seq = seq;
        memcpy(a->prev, prev, sizeof(prev));
        if (ret_first_seq)
                *ret_first_seq = seq - n;
        return 0;
}

int sg_audit_append(sg_audit *a, cJSON *record, uint64_t *ret_seq) {
        return sg_audit_append_many(a, &record, 1, ret_seq);
}

/* ------------------------------------------------------------------------------------------ */
/* Looking up a decision.                                                                       */

/* Scans the complete lines in the last max_bytes of [0, size) of fd; keeps the newest match. */
static int find_in(line_reader *lr, int fd, uint64_t size, uint64_t max_bytes, const char *id, cJSON **found) {
        uint64_t off = size > max_bytes ? size - max_bytes : 0;
        size_t idlen = strlen(id);
        bool skip_first = false;
        const char *line;
        size_t len;
        bool nl;
        int r;

        /* Starting inside a line: that partial line is not a record and is skipped. */
        if (off > 0) {
                char c;
                if ((r = sg_pread_all(fd, &c, 1, off - 1)) < 0)
                        return r;
                skip_first = c != '\n';
        }
        if ((r = line_reader_init(lr, fd, off, size)) < 0)
                return r;
        while ((r = line_next(lr, &line, &len, &nl)) != 0) {
                if (r == -EMSGSIZE) {
                        /* A line over the cap cannot be one this module wrote; it is not a match, and
                         * the reader cannot step over it, so the search ends there. */
                        return 0;
                }
                if (r < 0)
                        return r;
                if (skip_first) {
                        skip_first = false;
                        continue;
                }
                if (!nl || !memmem(line, len, id, idlen))
                        continue;
                const char *why;
                cJSON *j = parse_line(line, len, &why);
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "decisionId");
                if (cJSON_IsString(d) && strcmp(d->valuestring, id) == 0) {
                        cJSON_Delete(*found);
                        *found = j;
                } else
                        cJSON_Delete(j);
        }
        return 0;
}

int sg_audit_find_decision(sg_audit *a, const char *id, uint64_t max_bytes, cJSON **ret) {
        _cleanup_(line_reader_done) line_reader lr = {0};
        _cleanup_(cjson_deletep) cJSON *found = NULL;
        char name1[NAME_MAX + 1];
        int r;

        if (!id || !*id)
                return -EINVAL;
        if ((r = find_in(&lr, a->fd, a->size, max_bytes, id, &found)) < 0)
                return r;
        if (!found) {
                (void) rotated_name(a->name, 1, name1);
                _cleanup_(sg_closep) int fd1 = openat(a->dirfd, name1, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                struct stat st;
                if (fd1 < 0)
                        return errno == ENOENT ? -ENOENT : -errno;
                if (fstat(fd1, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode))
                        return -EINVAL;
                if ((r = find_in(&lr, fd1, (uint64_t) st.st_size, max_bytes, id, &found)) < 0)
                        return r;
        }
        if (!found)
                return -ENOENT;
        if (ret)
                *ret = SG_TAKE_PTR(found);
        return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading records from a seq on.                                                               */

/* One file of the chain as the reader sees it: NAME through the handle's own descriptor, read up
 * to the lines append wrote, or NAME.i opened read-only. */
typedef struct {
        int fd;
        bool owned; /* fd is the reader's to close (not the handle's) */
        uint64_t size;
        char name[NAME_MAX + 1];
} member;

static void member_done(member *m) {
        if (m->owned && m->fd >= 0)
                close(m->fd);
        m->fd = -1;
        m->owned = false;
}

/* Opens member i (0 is NAME). -ENOENT when NAME.i does not exist. */
static int member_open(sg_audit *a, unsigned i, member *m, sg_error *err) {
        struct stat st;
        int r;

        if (i == 0) {
                *m = (member){.fd = a->fd, .size = a->size};
                (void) snprintf(m->name, sizeof(m->name), "%s", a->name);
                return 0;
        }
        *m = (member){.fd = -1};
        /* open() checked that the name leaves room for every suffix up to SG_AUDIT_KEEP_MAX. */
        (void) rotated_name(a->name, i, m->name);
        m->fd = openat(a->dirfd, m->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (m->fd < 0) {
                r = -errno;
                if (r != -ENOENT)
                        sg_error_set(err, SG_REASON_NONE, "%s: %s", m->name,
                                     r == -ELOOP ? "is a symbolic link" : strerror(-r));
                return r;
        }
        m->owned = true;
        if (fstat(m->fd, &st) < 0) {
                r = -errno;
                sg_error_set(err, SG_REASON_NONE, "%s: %s", m->name, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                sg_error_set(err, SG_REASON_NONE, "%s: not a regular file", m->name);
                return -EINVAL;
        }
        m->size = (uint64_t) st.st_size;
        return 0;
}

/* Why a read stops at a line: sets err and returns -EBADMSG. */
__attribute__((format(printf, 4, 5))) static int bad_record(sg_error *err, const member *m, uint64_t off,
                                                            const char *fmt, ...) {
        char what[400];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        sg_error_set(err, SG_REASON_NONE, "%s: byte %" PRIu64 ": %s", m->name, off, what);
        return -EBADMSG;
}

/* The file offset where a line that line_next() just returned starts: buf holds the bytes
 * [off - fill, off) of the file. */
static uint64_t line_offset(const line_reader *lr, const char *line) {
        return lr->off - lr->fill + (uint64_t) (line - lr->buf);
}

/* line_next() with its errors explained in err. */
static int member_line(line_reader *lr, const member *m, const char **ret_line, size_t *ret_len, bool *ret_nl,
                       sg_error *err) {
        int r = line_next(lr, ret_line, ret_len, ret_nl);
        if (r == -EMSGSIZE)
                return bad_record(err, m, lr->off - lr->fill + lr->start, "line longer than %u bytes", SG_AUDIT_LINE_MAX);
        if (r < 0)
                sg_error_set(err, SG_REASON_NONE, "%s: cannot read: %s", m->name, strerror(-r));
        return r;
}

/* Parses the line that starts at off: a JSON object with an integer "seq", ending in '\n'. */
static int member_record(const member *m, uint64_t off, const char *line, size_t len, bool nl, cJSON **ret,
                         uint64_t *ret_seq, sg_error *err) {
        const char *why;
        cJSON *j;

        if (!nl)
                return bad_record(err, m, off, "the last line does not end in a newline");
        if (!(j = parse_line(line, len, &why)))
                return bad_record(err, m, off, "%s", why);
        if (record_seq(j, ret_seq) < 0) {
                cJSON_Delete(j);
                return bad_record(err, m, off, "no integer \"seq\" in [1, %" PRIu64 "]", SG_AUDIT_SEQ_MAX);
        }
        *ret = j;
        return 0;
}

/* A record line is a few KiB: a probe reads this much first, and more only for a longer line. */
#define PROBE_WINDOW (16u * 1024u)

/* The first line that starts at or after off: returns 1 with its seq and the offset just past it,
 * or 0 when no line starts in [off, size). From off > 0 it reads from one byte early and drops
 * the first line it reads, which lands on that line whether or not off itself starts one. */
static int probe(line_reader *lr, const member *m, uint64_t off, uint64_t *ret_seq, uint64_t *ret_next,
                 sg_error *err) {
        _cleanup_(cjson_deletep) cJSON *j = NULL;
        const uint64_t from = off > 0 ? off - 1 : 0;
        const char *line = NULL;
        size_t len = 0;
        bool nl = false;
        int r;

        if (from >= m->size)
                return 0;
        uint64_t end = m->size - from > PROBE_WINDOW ? from + PROBE_WINDOW : m->size;
        for (;;) {
                if ((r = line_reader_init(lr, m->fd, from, end)) < 0)
                        return r;
                r = member_line(lr, m, &line, &len, &nl, err);
                if (r > 0 && off > 0) /* that was the end of the line holding byte off - 1 */
                        r = nl ? member_line(lr, m, &line, &len, &nl, err) : 0;
                if (r < 0)
                        return r;
                if ((r == 0 || !nl) && end < m->size) {
                        end = m->size; /* the window ended inside a line: read on to the end */
                        continue;
                }
                break;
        }
        if (r == 0)
                return 0;
        uint64_t at = line_offset(lr, line);
        if ((r = member_record(m, at, line, len, nl, &j, ret_seq, err)) < 0)
                return r;
        *ret_next = at + len + 1;
        return 1;
}

/* The seq of the first line of m; 0 when m holds no line. */
static int member_first_seq(line_reader *lr, const member *m, uint64_t *ret, sg_error *err) {
        uint64_t seq = 0, next;
        int r = probe(lr, m, 0, &seq, &next, err);
        if (r < 0)
                return r;
        *ret = r > 0 ? seq : 0;
        return 0;
}

/* Where the scan for the first line with a seq >= seq may start: a line start with only smaller
 * seqs before it, at most READ_CHUNK (plus one line) before the line wanted. Seqs rise through a
 * file, so halving the byte range works; hi only narrows the search, and the scan from the result
 * runs on past hi when the line wanted starts there. */
static int seek_seq(line_reader *lr, const member *m, uint64_t seq, uint64_t *ret_off, sg_error *err) {
        uint64_t lo = 0, hi = m->size;

        while (lo < hi && hi - lo > READ_CHUNK) {
                uint64_t mid = lo + (hi - lo) / 2, s = 0, next = 0;
                int r = probe(lr, m, mid, &s, &next, err);
                if (r < 0)
                        return r;
                if (r > 0 && s < seq)
                        lo = next;
                else
                        hi = mid;
        }
        *ret_off = lo;
        return 0;
}

/* Hands fn the records of m from offset off (a line start) on whose seq is >= from_seq; *last is
 * the seq of the line before, which every line must exceed. */
static int member_visit(line_reader *lr, const member *m, uint64_t off, uint64_t from_seq, uint64_t *last,
                        sg_audit_record_fn fn, void *userdata, sg_error *err) {
        const char *line;
        size_t len;
        bool nl;
        int r;

        if ((r = line_reader_init(lr, m->fd, off, m->size)) < 0)
                return r;
        while ((r = member_line(lr, m, &line, &len, &nl, err)) > 0) {
                _cleanup_(cjson_deletep) cJSON *j = NULL;
                uint64_t at = line_offset(lr, line), seq;

                if ((r = member_record(m, at, line, len, nl, &j, &seq, err)) < 0)
                        return r;
                if (seq <= *last)
                        return bad_record(err, m, at, "seq %" PRIu64 " does not follow seq %" PRIu64, seq, *last);
                *last = seq;
                if (seq >= from_seq && (r = fn(seq, j, userdata)) != 0)
                        return r;
        }
        return r;
}

int sg_audit_read(sg_audit *a, uint64_t from_seq, sg_audit_record_fn fn, void *userdata, sg_error *err) {
        _cleanup_(line_reader_done) line_reader lr = {0};
        const unsigned oldest = a->opts.keep_files > 0 ? a->opts.keep_files : 1;
        unsigned start = 0;
        bool found = false, search = false;
        uint64_t last = 0;
        int r;

        if (!fn)
                return -EINVAL;
        if (from_seq == 0)
                from_seq = 1;
        if (from_seq >= a->next_seq)
                return 0;
        /* Newest file first: the first whose first line is at or before from_seq holds it. When
         * none does, from_seq was rotated away and the read starts at the oldest file there is.
         * Gaps (a NAME.i removed by hand) are stepped over, as rotation steps over them. */
        for (unsigned i = 0; i <= oldest; i++) {
                _cleanup_(member_done) member m = {.fd = -1};
                uint64_t first;

                if ((r = member_open(a, i, &m, err)) == -ENOENT)
                        continue;
                if (r < 0 || (r = member_first_seq(&lr, &m, &first, err)) < 0)
                        return r;
                if (first == 0)
                        continue;
                start = i;
                found = true;
                if (first <= from_seq) {
                        search = first < from_seq;
                        break;
                }
        }
        if (!found)
                return 0;
        for (unsigned i = start + 1; i-- > 0;) {
                _cleanup_(member_done) member m = {.fd = -1};
                uint64_t off = 0;

                if ((r = member_open(a, i, &m, err)) == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                if (i == start && search && (r = seek_seq(&lr, &m, from_seq, &off, err)) < 0)
                        return r;
                if ((r = member_visit(&lr, &m, off, from_seq, &last, fn, userdata, err)) != 0)
                        return r;
        }
        return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Verifying.                                                                                   */

typedef struct {
        const char *path;
        size_t index;
        uint64_t first_seq; /* 0: the file is empty */
} vfile;

static int vfile_cmp(const void *x, const void *y) {
        const vfile *a = x, *b = y;
        if (a->first_seq != b->first_seq)
                return a->first_seq < b->first_seq ? -1 : 1;
        return a->index < b->index ? -1 : a->index > b->index;
}

static int open_for_verify(const char *path, int *ret_fd, sg_error *err) {
        _cleanup_(sg_closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;

        if (fd < 0) {
                int r = -errno;
                sg_error_set(err, SG_REASON_NONE, "%s: %s", path, r == -ELOOP ? "is a symbolic link" : strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                sg_error_set(err, SG_REASON_NONE, "%s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                sg_error_set(err, SG_REASON_NONE, "%s: not a regular file", path);
                return -EINVAL;
        }
        *ret_fd = SG_TAKE_FD(fd);
        return 0;
}

/* Why verification stops: sets err and returns -EBADMSG. */
__attribute__((format(printf, 4, 5))) static int bad_line(sg_error *err, const char *path, uint64_t line,
                                                          const char *fmt, ...) {
        char what[400];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        sg_error_set(err, SG_REASON_NONE, "%s:%" PRIu64 ": %s", path, line, what);
        return -EBADMSG;
}

/* The first line's seq, to put the files in chain order; 0 for an empty file. Problems with the
 * line itself other than an unreadable seq are left to the full pass, which reports them in order. */
static int first_seq_of(line_reader *lr, const char *path, uint64_t *ret, sg_error *err) {
        _cleanup_(sg_closep) int fd = -1;
        const char *line, *why;
        size_t len;
        bool nl;
        int r;

        if ((r = open_for_verify(path, &fd, err)) < 0)
                return r;
        if ((r = line_reader_init(lr, fd, 0, UINT64_MAX)) < 0)
                return r;
        r = line_next(lr, &line, &len, &nl);
        if (r == 0) {
                *ret = 0;
                return 0;
        }
        if (r == -EMSGSIZE)
                return bad_line(err, path, 1, "line longer than %u bytes", SG_AUDIT_LINE_MAX);
        if (r < 0) {
                sg_error_set(err, SG_REASON_NONE, "%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        _cleanup_(cjson_deletep) cJSON *j = parse_line(line, len, &why);
        if (!j)
                return bad_line(err, path, 1, "%s%s", why, nl ? "" : " (and it does not end in a newline)");
        if (record_seq(j, ret) < 0)
                return bad_line(err, path, 1, "no integer \"seq\" in [1, %" PRIu64 "]", SG_AUDIT_SEQ_MAX);
        return 0;
}

typedef struct {
        sg_audit_summary sum;
        char hash[SG_AUDIT_HASH_HEX_LEN + 1]; /* of the previous line */
        const char *prev_path;                /* where the previous line is, for messages */
        uint64_t prev_line;
} chain;

static int verify_file(line_reader *lr, const char *path, chain *c, sg_error *err) {
        _cleanup_(sg_closep) int fd = -1;
        const char *line, *why;
        size_t len;
        bool nl;
        int r;

        if ((r = open_for_verify(path, &fd, err)) < 0)
                return r;
        if ((r = line_reader_init(lr, fd, 0, UINT64_MAX)) < 0)
                return r;
        for (uint64_t no = 1;; no++) {
                uint64_t seq;

                r = line_next(lr, &line, &len, &nl);
                if (r == 0)
                        return 0;
                if (r == -EMSGSIZE)
                        return bad_line(err, path, no, "line longer than %u bytes", SG_AUDIT_LINE_MAX);
                if (r < 0) {
                        sg_error_set(err, SG_REASON_NONE, "%s: cannot read: %s", path, strerror(-r));
                        return r;
                }
                if (!nl)
                        return bad_line(err, path, no, "the last line does not end in a newline (truncated?)");
                _cleanup_(cjson_deletep) cJSON *j = parse_line(line, len, &why);
                if (!j)
                        return bad_line(err, path, no, "%s", why);
                if (record_seq(j, &seq) < 0)
                        return bad_line(err, path, no, "no integer \"seq\" in [1, %" PRIu64 "]", SG_AUDIT_SEQ_MAX);
                const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prev");
                if (!cJSON_IsString(p) || !is_hash_hex(p->valuestring))
                        return bad_line(err, path, no, "\"prev\" is missing or not %d lowercase hex digits",
                                        SG_AUDIT_HASH_HEX_LEN);
                if (c->sum.records == 0) {
                        c->sum.first_seq = seq;
                        if (seq == 1 && strcmp(p->valuestring, zero_hash) != 0)
                                return bad_line(err, path, no, "seq 1 must have a \"prev\" of %d zeros",
                                                SG_AUDIT_HASH_HEX_LEN);
                        c->sum.chained_from_earlier = seq > 1;
                } else {
                        if (seq != c->sum.last_seq + 1)
                                return bad_line(err, path, no,
                                                "seq %" PRIu64 ", expected %" PRIu64
                                                " (a line is missing, added or out of order)",
                                                seq, c->sum.last_seq + 1);
                        if (strcmp(p->valuestring, c->hash) != 0)
                                return bad_line(err, path, no,
                                                "\"prev\" is not the SHA-256 of the previous line (%s:%" PRIu64
                                                "): one of the two was changed",
                                                c->prev_path, c->prev_line);
                }
                if ((r = sha256_hex(line, len, c->hash)) < 0)
                        return r;
                c->sum.last_seq = seq;
                c->sum.records++;
                c->prev_path = path;
                c->prev_line = no;
        }
}

int sg_audit_verify(const char *const *paths, size_t n, sg_audit_summary *ret, sg_error *err) {
        _cleanup_(line_reader_done) line_reader lr = {0};
        _cleanup_(sg_freep) vfile *files = NULL;
        chain c = {0};
        int r;

        if (!paths || n == 0) {
                sg_error_set(err, SG_REASON_NONE, "no audit file given");
                return -EINVAL;
        }
        if (!(files = calloc(n, sizeof(*files))))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                files[i] = (vfile){.path = paths[i], .index = i};
                if ((r = first_seq_of(&lr, paths[i], &files[i].first_seq, err)) < 0)
                        return r;
        }
        qsort(files, n, sizeof(*files), vfile_cmp);
        for (size_t i = 0; i < n; i++)
                if (files[i].first_seq > 0 && (r = verify_file(&lr, files[i].path, &c, err)) < 0)
                        return r;
        c.sum.files = n;
        if (ret)
                *ret = c.sum;
        return 0;
}
