/* The strict ZIP reader behind every signgate decision. See sg_package.h for the contract.
 *
 * Record layouts (APPNOTE 6.3.x), little-endian:
 *   EOCD               22 bytes + comment        sig 0x06054b50
 *   Zip64 EOCD locator 20 bytes                  sig 0x07064b50, directly before the EOCD
 *   Zip64 EOCD record  12 + size bytes           sig 0x06064b50
 *   central entry      46 + name + extra + comment, sig 0x02014b50
 *   local header       30 + name + extra         sig 0x04034b50
 *   data descriptor    [sig 0x08074b50] crc32, csize, usize (4 or 8 bytes each)
 *
 * The archive must be exactly: local entries from offset 0, back to back, then the central
 * directory, then the Zip64 record and locator if any, then the EOCD ending the file. */
#include "sg_package.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <zip.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_ZIP64_EOCD 0x06064b50u
#define SIG_ZIP64_LOCATOR 0x07064b50u
#define SIG_DESCRIPTOR 0x08074b50u

#define EOCD_LEN 22u
#define ZIP64_LOCATOR_LEN 20u
#define ZIP64_EOCD_MIN 56u
#define CENTRAL_LEN 46u
#define LOCAL_LEN 30u
#define MAX_COMMENT 65535u

#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_STRONG_ENCRYPTION 0x0040u
#define FLAG_UTF8 0x0800u
#define FLAG_MASKED_HEADERS 0x2000u
/* Bits 1-2 are deflate tuning hints; every other flag changes how the bytes must be read. */
#define FLAGS_UNDERSTOOD (0x0006u | FLAG_DESCRIPTOR | FLAG_UTF8)
#define FLAGS_ENCRYPTION (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS)

#define HOST_UNIX 3
#define STREAM_CHUNK (256u * 1024)
/* Big enough for the largest central entry: 46 + 3 * 65535 bytes. */
#define READER_BUF (256u * 1024)

void sg_limits_default(sg_limits *l) {
        l->package_bytes = SG_LIMIT_PACKAGE_BYTES;
        l->inflated_bytes = SG_LIMIT_INFLATED_BYTES;
        l->entries = SG_LIMIT_ENTRIES;
        l->name_bytes = SG_LIMIT_NAME_BYTES;
        l->depth = SG_LIMIT_DEPTH;
}

static uint16_t le16(const unsigned char *p) { return (uint16_t) (p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32; }

/* A forward-buffered reader over pread: the central directory is parsed through it without
 * loading the whole directory, whatever its size. */
typedef struct {
        int fd;
        uint64_t limit; /* no read may pass this offset */
        unsigned char *buf;
        uint64_t buf_off;
        size_t buf_len;
} reader;

/* Points *ret at n bytes at off, all below r->limit. -EINVAL when they would pass it. */
static int reader_get(reader *r, uint64_t off, size_t n, const unsigned char **ret) {
        if (n > READER_BUF || off > r->limit || n > r->limit - off)
                return -EINVAL;
        if (off < r->buf_off || off + n > r->buf_off + r->buf_len) {
                uint64_t avail = r->limit - off;
                size_t want = avail < READER_BUF ? (size_t) avail : READER_BUF;
                int k = sg_pread_all(r->fd, r->buf, want, off);
                if (k < 0)
                        return k;
                r->buf_off = off;
                r->buf_len = want;
        }
        *ret = r->buf + (off - r->buf_off);
        return 0;
}

/* Problems found while the parse goes on: the first of each reason is kept, and the most
 * severe one in DESIGN §5's order is reported, so the reason does not depend on entry order. */
typedef struct {
        sg_error first[SG_REASON_MAX_];
        bool seen[SG_REASON_MAX_];
} findings;

static void note(findings *f, sg_reason r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(findings *f, sg_reason r, const char *fmt, ...) {
        if (f->seen[r])
                return;
        va_list ap;
        va_start(ap, fmt);
        f->seen[r] = true;
        f->first[r].reason = r;
        (void) vsnprintf(f->first[r].msg, sizeof(f->first[r].msg), fmt, ap);
        va_end(ap);
}

/* A sink's failure (a file it cannot create, a full disk) is the caller's INTERNAL, never a
 * rejection: -EINVAL from sg_package_inspect means "rejected, err set", and a caller that took
 * a sink's -EINVAL for one would decide on a package it has no facts for. */
static int sink_error(int r) {
        return r == -EINVAL ? -EIO : r;
}

static int report(const findings *f, sg_error *err) {
        for (int r = SG_REASON_MALFORMED; r < SG_REASON_MAX_; r++)
                if (f->seen[r]) {
                        if (err)
                                *err = f->first[r];
                        return -EINVAL;
                }
        return 0;
}

/* Names in messages are untrusted bytes: show them printable and bounded. */
static const char *shown(const char *name, size_t len, char buf[96]) {
        size_t o = 0;
        for (size_t i = 0; i < len && o < 90; i++) {
                unsigned char c = (unsigned char) name[i];
                if (c >= 0x20 && c < 0x7f && c != '\\')
                        buf[o++] = (char) c;
                else
                        o += (size_t) snprintf(buf + o, 96 - o, "\\x%02x", c);
        }
        if (len > 0 && o >= 90)
                o = 90, memcpy(buf + o, "...", 3), o += 3;
        buf[o] = '\0';
        return buf;
}

/* True for code points that change how a name is displayed rather than what it names: C1
 * controls, and the bidirectional overrides and isolates that can make "evil\u202Etxt.py"
 * read as "evilyp.txt" in a listing. */
static bool is_invisible_control(uint32_t cp) {
        return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
               cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

/* Valid UTF-8 (no overlong forms, no surrogates) with no C0, C1 or bidi control characters. */
static bool utf8_valid(const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];
                size_t len;
                uint32_t cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if ((c & 0xe0) == 0xc0)
                        len = 2, cp = c & 0x1f;
                else if ((c & 0xf0) == 0xe0)
                        len = 3, cp = c & 0x0f;
                else if ((c & 0xf8) == 0xf0)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                if (len > n - i)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                /* Overlong forms and surrogates would give one name two spellings. */
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || is_invisible_control(cp))
                        return false;
                i += len;
        }
        return true;
}

static bool is_drive_letter(const char *c, size_t n) {
        return n >= 2 && c[1] == ':' && ((c[0] >= 'a' && c[0] <= 'z') || (c[0] >= 'A' && c[0] <= 'Z'));
}

/* DESIGN §6 name rules on one entry's name (directory slash already removed). */
static void check_name(findings *f, const sg_limits *lim, const sg_entry *e) {
        char sb[96];
        const char *n = e->name;
        size_t len = e->name_len;

        if (len == 0) {
                note(f, SG_REASON_UNSAFE_CONTENT, "an entry has an empty name");
                return;
        }
        if (len > lim->name_bytes)
                note(f, SG_REASON_LIMIT_EXCEEDED, "entry name '%s' is %zu bytes long, over the limit of %u",
                     shown(n, len, sb), len, lim->name_bytes);
        if (memchr(n, '\0', len)) {
                note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' contains a NUL byte", shown(n, len, sb));
                return;
        }
        if (memchr(n, '\\', len)) {
                note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' contains a backslash", shown(n, len, sb));
                return;
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) n[i] < 0x20 || n[i] == 0x7f) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' contains a control character",
                             shown(n, len, sb));
                        return;
                }
        if (!utf8_valid((const unsigned char *) n, len)) {
                note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' is not valid UTF-8 or holds a control character",
                     shown(n, len, sb));
                return;
        }
        if (n[0] == '/') {
                note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' is absolute", shown(n, len, sb));
                return;
        }
        uint32_t depth = 0;
        for (size_t start = 0; start <= len;) {
                const char *end = memchr(n + start, '/', len - start);
                size_t clen = (end ? (size_t) (end - n) : len) - start;
                const char *c = n + start;
                depth++;
                if (clen == 0) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' has an empty path component",
                             shown(n, len, sb));
                        return;
                }
                if ((clen == 1 && c[0] == '.') || (clen == 2 && c[0] == '.' && c[1] == '.')) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' has a '%.*s' component",
                             shown(n, len, sb), (int) clen, c);
                        return;
                }
                if (is_drive_letter(c, clen)) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry name '%s' has a drive-letter component",
                             shown(n, len, sb));
                        return;
                }
                if (clen > SG_LIMIT_NAME_COMPONENT)
                        note(f, SG_REASON_LIMIT_EXCEEDED, "entry name '%s' has a %zu-byte component, over the %u bytes a file name can have",
                             shown(n, len, sb), clen, SG_LIMIT_NAME_COMPONENT);
                start += clen + 1;
        }
        if (depth > lim->depth)
                note(f, SG_REASON_LIMIT_EXCEEDED, "entry name '%s' is %u components deep, over the limit of %u",
                     shown(n, len, sb), depth, lim->depth);
}

/* Case-insensitive (ASCII) open-addressing table of entry names: duplicates, case
 * duplicates, a file and a directory of one name, and files or links used as directories
 * are all found through it. Case folding is ASCII only; DESIGN §6 asks for case-insensitive
 * uniqueness so that extraction on a case-insensitive filesystem cannot merge two entries. */
typedef struct {
        size_t cap; /* power of two */
        int64_t *slot; /* entry index, or -1 */
        const sg_entry *entries;
} name_table;

static uint64_t name_hash(const char *s, size_t n) {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c >= 'A' && c <= 'Z')
                        c = (unsigned char) (c + 32);
                h = (h ^ c) * 1099511628211ull;
        }
        return h;
}

static bool name_eq(const char *a, size_t an, const char *b, size_t bn) {
        if (an != bn)
                return false;
        for (size_t i = 0; i < an; i++) {
                unsigned char x = (unsigned char) a[i], y = (unsigned char) b[i];
                if (x >= 'A' && x <= 'Z')
                        x = (unsigned char) (x + 32);
                if (y >= 'A' && y <= 'Z')
                        y = (unsigned char) (y + 32);
                if (x != y)
                        return false;
        }
        return true;
}

static int64_t table_find(const name_table *t, const char *s, size_t n) {
        for (size_t i = name_hash(s, n) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
                int64_t k = t->slot[i];
                if (k < 0)
                        return -1;
                if (name_eq(t->entries[k].name, t->entries[k].name_len, s, n))
                        return k;
        }
}

/* Inserts entry k; returns the index of an entry with the same folded name, or -1. */
static int64_t table_insert(name_table *t, int64_t k) {
        const sg_entry *e = &t->entries[k];
        for (size_t i = name_hash(e->name, e->name_len) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
                int64_t o = t->slot[i];
                if (o < 0) {
                        t->slot[i] = k;
                        return -1;
                }
                if (name_eq(t->entries[o].name, t->entries[o].name_len, e->name, e->name_len))
                        return o;
        }
}

static const char *type_name(sg_entry_type t) {
        return t == SG_ENTRY_DIR ? "directory" : t == SG_ENTRY_SYMLINK ? "symlink" : "file";
}

static int check_tree(findings *f, const sg_entry *entries, size_t n, name_table *t) {
        char sa[96], sb[96];

        t->cap = 16;
        while (t->cap < 2 * n)
                t->cap <<= 1;
        t->slot = malloc(t->cap * sizeof(*t->slot));
        if (!t->slot)
                return -ENOMEM;
        memset(t->slot, 0xff, t->cap * sizeof(*t->slot));
        t->entries = entries;
        for (size_t k = 0; k < n; k++) {
                int64_t o = table_insert(t, (int64_t) k);
                if (o >= 0) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entries '%s' (%s) and '%s' (%s) have the same name",
                             shown(entries[o].name, entries[o].name_len, sa), type_name(entries[o].type),
                             shown(entries[k].name, entries[k].name_len, sb), type_name(entries[k].type));
                        return 0;
                }
        }
        /* Every proper prefix of a name must be a directory, if the archive lists it at all: a
         * file or a symlink there would make extraction write through it. */
        for (size_t k = 0; k < n; k++) {
                const sg_entry *e = &entries[k];
                for (size_t i = 0; i < e->name_len; i++) {
                        if (e->name[i] != '/')
                                continue;
                        int64_t o = table_find(t, e->name, i);
                        if (o >= 0 && entries[o].type != SG_ENTRY_DIR) {
                                note(f, SG_REASON_UNSAFE_CONTENT, "entry '%s' is inside '%s', which is a %s",
                                     shown(e->name, e->name_len, sa),
                                     shown(entries[o].name, entries[o].name_len, sb), type_name(entries[o].type));
                                return 0;
                        }
                }
        }
        return 0;
}

/* A symlink's target, resolved against its own directory, must stay inside the package root
 * and must not pass through another symlink: the extractor then never follows a link. */
static void check_symlink(findings *f, const name_table *t, const sg_limits *lim, const sg_entry *e) {
        char sa[96], sb[96];
        const char *tg = e->link_target;
        size_t tlen = strlen(tg);

        if (tlen != e->usize || tlen == 0) {
                note(f, SG_REASON_UNSAFE_CONTENT, "symlink '%s' has an empty target or one with a NUL byte",
                     shown(e->name, e->name_len, sa));
                return;
        }
        if (tlen > lim->name_bytes || tg[0] == '/' || strchr(tg, '\\') ||
            !utf8_valid((const unsigned char *) tg, tlen)) {
                note(f, SG_REASON_UNSAFE_CONTENT, "symlink '%s' has an unsafe target '%s'",
                     shown(e->name, e->name_len, sa), shown(tg, tlen, sb));
                return;
        }
        /* path = the link's directory; each target component then walks from there. */
        char *path = malloc(e->name_len + tlen + 2);
        if (!path) {
                note(f, SG_REASON_INTERNAL, "out of memory");
                return;
        }
        const char *slash = memrchr(e->name, '/', e->name_len);
        size_t plen = slash ? (size_t) (slash - e->name) : 0;
        memcpy(path, e->name, plen);
        for (size_t start = 0; start <= tlen;) {
                const char *end = memchr(tg + start, '/', tlen - start);
                size_t clen = (end ? (size_t) (end - tg) : tlen) - start;
                const char *c = tg + start;
                start += clen + 1;
                if (clen == 0 && start > tlen)
                        break; /* a trailing slash */
                if (clen == 0 || is_drive_letter(c, clen) || (unsigned char) c[0] < 0x20) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "symlink '%s' has an unsafe target '%s'",
                             shown(e->name, e->name_len, sa), shown(tg, tlen, sb));
                        break;
                }
                if (clen == 1 && c[0] == '.')
                        continue;
                if (clen == 2 && c[0] == '.' && c[1] == '.') {
                        if (plen == 0) {
                                note(f, SG_REASON_UNSAFE_CONTENT, "symlink '%s' points outside the package ('%s')",
                                     shown(e->name, e->name_len, sa), shown(tg, tlen, sb));
                                break;
                        }
                        const char *ps = memrchr(path, '/', plen);
                        plen = ps ? (size_t) (ps - path) : 0;
                        continue;
                }
                if (plen > 0)
                        path[plen++] = '/';
                memcpy(path + plen, c, clen);
                plen += clen;
                int64_t o = table_find(t, path, plen);
                if (o >= 0 && t->entries[o].type == SG_ENTRY_SYMLINK) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "symlink '%s' points through another symlink '%s'",
                             shown(e->name, e->name_len, sa),
                             shown(t->entries[o].name, t->entries[o].name_len, sb));
                        break;
                }
        }
        free(path);
}

/* Reads the Zip64 extended-information extra field: each value that the fixed header holds
 * as all-ones comes from it, in the order usize, csize, offset, disk. */
static int parse_extra(const unsigned char *x, size_t n, bool want_usize, bool want_csize,
                       bool want_offset, bool want_disk, uint64_t *usize, uint64_t *csize,
                       uint64_t *offset, const char **why) {
        bool found = false;
        for (size_t i = 0; i < n;) {
                if (n - i < 4) {
                        *why = "an extra field is truncated";
                        return -EINVAL;
                }
                uint16_t id = le16(x + i), len = le16(x + i + 2);
                if (len > n - i - 4) {
                        *why = "an extra field runs past its header";
                        return -EINVAL;
                }
                const unsigned char *d = x + i + 4;
                if (id == 0x0001) {
                        if (found) {
                                *why = "two Zip64 extra fields";
                                return -EINVAL;
                        }
                        found = true;
                        size_t need = 8u * (want_usize + want_csize + want_offset) + 4u * want_disk, o = 0;
                        if (len < need) {
                                *why = "the Zip64 extra field is too short";
                                return -EINVAL;
                        }
                        if (want_usize)
                                *usize = le64(d + o), o += 8;
                        if (want_csize)
                                *csize = le64(d + o), o += 8;
                        if (want_offset)
                                *offset = le64(d + o), o += 8;
                }
                i += 4 + (size_t) len;
        }
        if ((want_usize || want_csize || want_offset || want_disk) && !found) {
                *why = "a Zip64 value is missing its extra field";
                return -ENOENT;
        }
        return 0;
}

static int cmp_offset(const void *a, const void *b) {
        const sg_entry *x = *(const sg_entry *const *) a, *y = *(const sg_entry *const *) b;
        return x->local_offset < y->local_offset ? -1 : x->local_offset > y->local_offset;
}

void sg_package_free(sg_package *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_entries; i++) {
                free(p->entries[i].name);
                free(p->entries[i].link_target);
        }
        free(p->entries);
        free(p->comment);
        free(p);
}

/* Finds the one EOCD whose comment ends the file exactly. */
static int find_eocd(int fd, uint64_t size, sg_package *p, findings *f) {
        size_t tail = size < EOCD_LEN + MAX_COMMENT ? (size_t) size : EOCD_LEN + MAX_COMMENT;
        _cleanup_(sg_freep) unsigned char *buf = malloc(tail);
        int r;

        if (!buf)
                return -ENOMEM;
        if ((r = sg_pread_all(fd, buf, tail, size - tail)) < 0)
                return r;
        uint64_t base = size - tail;
        int found = 0;
        for (size_t i = tail - EOCD_LEN + 1; i-- > 0;) {
                if (le32(buf + i) != SIG_EOCD)
                        continue;
                if ((uint64_t) i + EOCD_LEN + le16(buf + i + 20) != tail)
                        continue;
                if (found++ == 0)
                        p->eocd_offset = base + i;
        }
        if (found == 0) {
                note(f, SG_REASON_MALFORMED, "not a ZIP archive: no end-of-central-directory record ends the file");
                return -EINVAL;
        }
        if (found > 1) {
                note(f, SG_REASON_MALFORMED, "two end-of-central-directory records could end the file");
                return -EINVAL;
        }
        size_t e = (size_t) (p->eocd_offset - base);
        p->comment_len = le16(buf + e + 20);
        p->comment = malloc(p->comment_len + 1);
        if (!p->comment)
                return -ENOMEM;
        memcpy(p->comment, buf + e + EOCD_LEN, p->comment_len);
        p->comment[p->comment_len] = '\0';
        return 0;
}

typedef struct {
        uint64_t n_entries, cd_size, cd_offset, cd_end; /* cd_end: where the directory must end */
} directory;

static int read_end_records(int fd, sg_package *p, directory *d, findings *f) {
        unsigned char e[EOCD_LEN];
        int r;

        if ((r = sg_pread_all(fd, e, sizeof(e), p->eocd_offset)) < 0)
                return r;
        uint16_t disk = le16(e + 4), cd_disk = le16(e + 6), n_disk = le16(e + 8), n_total = le16(e + 10);
        uint32_t cd_size = le32(e + 12), cd_off = le32(e + 16);
        d->n_entries = n_total;
        d->cd_size = cd_size;
        d->cd_offset = cd_off;
        d->cd_end = p->eocd_offset;

        unsigned char loc[ZIP64_LOCATOR_LEN];
        if (p->eocd_offset >= ZIP64_LOCATOR_LEN) {
                if ((r = sg_pread_all(fd, loc, sizeof(loc), p->eocd_offset - ZIP64_LOCATOR_LEN)) < 0)
                        return r;
                p->zip64 = le32(loc) == SIG_ZIP64_LOCATOR;
        }
        if (!p->zip64) {
                if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
                        note(f, SG_REASON_MALFORMED, "multi-disk archives are not supported");
                        return -EINVAL;
                }
                if (n_total == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) {
                        note(f, SG_REASON_MALFORMED, "the end record holds Zip64 markers but no Zip64 locator precedes it");
                        return -EINVAL;
                }
                return 0;
        }
        uint64_t z_off = le64(loc + 8);
        if (le32(loc + 4) != 0 || le32(loc + 16) != 1) {
                note(f, SG_REASON_MALFORMED, "multi-disk archives are not supported");
                return -EINVAL;
        }
        uint64_t loc_off = p->eocd_offset - ZIP64_LOCATOR_LEN;
        if (z_off > loc_off || loc_off - z_off < ZIP64_EOCD_MIN) {
                note(f, SG_REASON_MALFORMED, "the Zip64 end record lies outside the archive");
                return -EINVAL;
        }
        unsigned char z[ZIP64_EOCD_MIN];
        if ((r = sg_pread_all(fd, z, sizeof(z), z_off)) < 0)
                return r;
        uint64_t rec = le64(z + 4);
        if (le32(z) != SIG_ZIP64_EOCD || rec < ZIP64_EOCD_MIN - 12 || rec != loc_off - z_off - 12) {
                note(f, SG_REASON_MALFORMED, "the Zip64 end record is invalid or not followed by its locator");
                return -EINVAL;
        }
        uint64_t zn_disk = le64(z + 24), zn_total = le64(z + 32), zcd_size = le64(z + 40), zcd_off = le64(z + 48);
        if (le32(z + 16) != 0 || le32(z + 20) != 0 || zn_disk != zn_total) {
                note(f, SG_REASON_MALFORMED, "multi-disk archives are not supported");
                return -EINVAL;
        }
        /* The 16- and 32-bit copies must be the marker or the same value: two readers must not
         * find two different directories. */
        if ((n_total != 0xffff && n_total != zn_total) || (cd_size != 0xffffffffu && cd_size != zcd_size) ||
            (cd_off != 0xffffffffu && cd_off != zcd_off)) {
                note(f, SG_REASON_MALFORMED, "the end record and the Zip64 end record disagree");
                return -EINVAL;
        }
        d->n_entries = zn_total;
        d->cd_size = zcd_size;
        d->cd_offset = zcd_off;
        d->cd_end = z_off;
        return 0;
}

static int read_central(int fd, const sg_limits *lim, sg_package *p, const directory *d, findings *f) {
        char sb[96];
        reader rd = {.fd = fd, .limit = d->cd_end};
        int r = 0;

        rd.buf = malloc(READER_BUF);
        if (!rd.buf)
                return -ENOMEM;
        uint64_t off = d->cd_offset;
        for (size_t k = 0; k < p->n_entries; k++) {
                const unsigned char *h;
                sg_entry *e = &p->entries[k];
                if (reader_get(&rd, off, CENTRAL_LEN, &h) < 0 || le32(h) != SIG_CENTRAL) {
                        note(f, SG_REASON_MALFORMED, "central directory entry %zu is truncated or has a bad signature", k);
                        r = -EINVAL;
                        goto out;
                }
                uint16_t made_by = le16(h + 4), flags = le16(h + 8), method = le16(h + 10);
                uint16_t name_len = le16(h + 28), extra_len = le16(h + 30), comment_len = le16(h + 32);
                uint16_t disk = le16(h + 34);
                uint32_t ext = le32(h + 38);
                uint32_t csize32 = le32(h + 20), usize32 = le32(h + 24), off32 = le32(h + 42);
                size_t var = (size_t) name_len + extra_len + comment_len;
                const unsigned char *v;
                if (reader_get(&rd, off, CENTRAL_LEN + var, &v) < 0) {
                        note(f, SG_REASON_MALFORMED, "central directory entry %zu runs past the directory", k);
                        r = -EINVAL;
                        goto out;
                }
                e->flags = flags;
                e->method = method;
                e->crc = le32(v + 16);
                e->usize = usize32;
                e->csize = csize32;
                e->local_offset = off32;
                const char *why = NULL;
                if (parse_extra(v + CENTRAL_LEN + name_len, extra_len, usize32 == 0xffffffffu,
                                csize32 == 0xffffffffu, off32 == 0xffffffffu, disk == 0xffff, &e->usize,
                                &e->csize, &e->local_offset, &why) != 0) {
                        note(f, SG_REASON_MALFORMED, "central directory entry %zu: %s", k, why);
                        r = -EINVAL;
                        goto out;
                }
                if (disk != 0 && disk != 0xffff) {
                        note(f, SG_REASON_MALFORMED, "multi-disk archives are not supported");
                        r = -EINVAL;
                        goto out;
                }
                /* The raw name; a directory's trailing slash is the type, not part of the name. */
                size_t nl = name_len;
                bool slash = nl > 0 && v[CENTRAL_LEN + nl - 1] == '/';
                e->name = malloc(nl + 1);
                if (!e->name) {
                        r = -ENOMEM;
                        goto out;
                }
                memcpy(e->name, v + CENTRAL_LEN, nl);
                e->name[nl] = '\0';
                e->name_len = slash ? nl - 1 : nl;
                e->name[e->name_len] = '\0';
                const char *nm = shown(e->name, e->name_len, sb);

                if (flags & ~(FLAGS_UNDERSTOOD | FLAGS_ENCRYPTION)) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' uses unsupported flags 0x%04x", nm, flags);
                        r = -EINVAL;
                        goto out;
                }
                if (flags & FLAGS_ENCRYPTION)
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry '%s' is encrypted", nm);
                if (method != 0 && method != 8)
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry '%s' uses compression method %u; only stored (0) and deflated (8) are accepted",
                             nm, method);

                unsigned umode = (made_by >> 8) == HOST_UNIX ? ext >> 16 : 0;
                unsigned fmt = umode & 0170000u;
                if (fmt == 0)
                        e->type = slash ? SG_ENTRY_DIR : SG_ENTRY_FILE;
                else if (fmt == 0100000u)
                        e->type = SG_ENTRY_FILE;
                else if (fmt == 0040000u)
                        e->type = SG_ENTRY_DIR;
                else if (fmt == 0120000u)
                        e->type = SG_ENTRY_SYMLINK;
                else {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry '%s' is a special file (mode %06o)", nm, umode);
                        e->type = SG_ENTRY_FILE;
                }
                if (umode & 07000u)
                        note(f, SG_REASON_UNSAFE_CONTENT, "entry '%s' has setuid, setgid or sticky bits (mode %06o)", nm, umode);
                if (slash != (e->type == SG_ENTRY_DIR)) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' is a %s but its name %s with '/'", nm, type_name(e->type),
                             slash ? "ends" : "does not end");
                        r = -EINVAL;
                        goto out;
                }
                if (e->type == SG_ENTRY_DIR && e->usize != 0) {
                        note(f, SG_REASON_MALFORMED, "directory entry '%s' has %llu bytes of content", nm,
                             (unsigned long long) e->usize);
                        r = -EINVAL;
                        goto out;
                }
                if (e->type == SG_ENTRY_SYMLINK && e->usize > SG_LIMIT_SYMLINK_TARGET)
                        note(f, SG_REASON_UNSAFE_CONTENT, "symlink '%s' has a target of %llu bytes", nm,
                             (unsigned long long) e->usize);
                e->mode = e->type == SG_ENTRY_DIR ? 0755 : e->type == SG_ENTRY_SYMLINK ? 0777 : (umode & 0111) ? 0755 : 0644;
                check_name(f, lim, e);
                off += CENTRAL_LEN + var;
        }
        if (off != d->cd_offset + d->cd_size) {
                note(f, SG_REASON_MALFORMED, "the central directory is %llu bytes, not the %llu its end record states",
                     (unsigned long long) (off - d->cd_offset), (unsigned long long) d->cd_size);
                r = -EINVAL;
        }
out:
        free(rd.buf);
        return r;
}

/* Reads every local header and proves the local entries tile [0, cd_offset) exactly, in
 * three steps whose order decides the reason:
 *  1. local records that share or overlap bytes as the central directory describes them (an
 *     overlap bomb points many central entries at one local record): UNSAFE_CONTENT;
 *  2. each local header must agree with its central entry: MALFORMED (a flipped length or
 *     size lands here, not in step 3);
 *  3. the entries must follow each other with no gap (MALFORMED) and no entry's data may
 *     reach into the next entry: an entry whose data swallows the whole next entry is the
 *     "quoted" overlap bomb (UNSAFE_CONTENT); any other run-in is inconsistent sizes
 *     (MALFORMED). */
static int read_locals(int fd, sg_package *p, const directory *d, findings *f, sg_entry **sorted) {
        char sb[96], sb2[96];
        int r;

        for (size_t k = 0; k < p->n_entries; k++) {
                sg_entry *e = &p->entries[k];
                unsigned char h[LOCAL_LEN];
                if (e->local_offset > d->cd_offset || d->cd_offset - e->local_offset < LOCAL_LEN) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' has its local header outside the archive",
                             shown(e->name, e->name_len, sb));
                        return -EINVAL;
                }
                if ((r = sg_pread_all(fd, h, sizeof(h), e->local_offset)) < 0)
                        return r;
                if (le32(h) != SIG_LOCAL) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' has no local header where the directory says",
                             shown(e->name, e->name_len, sb));
                        return -EINVAL;
                }
                e->data_offset = e->local_offset + LOCAL_LEN + le16(h + 26) + le16(h + 28);
                /* end_offset < 2^64 always: both terms are below the 2^40 package limit. */
                e->end_offset = e->data_offset + (e->csize < (1ull << 62) ? e->csize : (1ull << 62));
                sorted[k] = e;
        }
        qsort(sorted, p->n_entries, sizeof(*sorted), cmp_offset);

        for (size_t k = 0; k + 1 < p->n_entries; k++) {
                const sg_entry *e = sorted[k], *n = sorted[k + 1];
                uint64_t header_end = e->local_offset + LOCAL_LEN + e->name_len + (e->type == SG_ENTRY_DIR);
                if (n->local_offset < header_end) {
                        note(f, SG_REASON_UNSAFE_CONTENT, "entries '%s' and '%s' overlap in the archive",
                             shown(e->name, e->name_len, sb), shown(n->name, n->name_len, sb2));
                        return -EINVAL;
                }
        }

        for (size_t k = 0; k < p->n_entries; k++) {
                sg_entry *e = &p->entries[k];
                const char *nm = shown(e->name, e->name_len, sb);
                unsigned char h[LOCAL_LEN];
                if ((r = sg_pread_all(fd, h, sizeof(h), e->local_offset)) < 0)
                        return r;
                uint16_t flags = le16(h + 6), method = le16(h + 8), name_len = le16(h + 26), extra_len = le16(h + 28);
                uint32_t crc = le32(h + 14), csize = le32(h + 18), usize = le32(h + 22);
                if (e->data_offset > d->cd_offset) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' has a local header that runs into the central directory", nm);
                        return -EINVAL;
                }
                _cleanup_(sg_freep) unsigned char *var = malloc((size_t) name_len + extra_len + 1);
                if (!var)
                        return -ENOMEM;
                if ((r = sg_pread_all(fd, var, (size_t) name_len + extra_len, e->local_offset + LOCAL_LEN)) < 0)
                        return r;
                size_t central_len = e->name_len + (e->type == SG_ENTRY_DIR);
                if (name_len != central_len || memcmp(var, e->name, e->name_len) != 0 ||
                    (e->type == SG_ENTRY_DIR && var[e->name_len] != '/')) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' has the local name '%s'", nm,
                             shown((const char *) var, name_len, sb2));
                        return -EINVAL;
                }
                if (flags != e->flags || method != e->method) {
                        note(f, SG_REASON_MALFORMED, "entry '%s': local header flags or method differ from the central directory", nm);
                        return -EINVAL;
                }
                uint64_t lu = usize, lc = csize, unused = 0;
                const char *why = NULL;
                r = parse_extra(var + name_len, extra_len, usize == 0xffffffffu, csize == 0xffffffffu, false, false,
                                &lu, &lc, &unused, &why);
                /* A streaming writer may mark the sizes as Zip64 and leave them to the descriptor. */
                if (r == -ENOENT && (e->flags & FLAG_DESCRIPTOR))
                        lu = lc = 0, r = 0;
                if (r < 0) {
                        note(f, SG_REASON_MALFORMED, "entry '%s' local header: %s", nm, why);
                        return -EINVAL;
                }
                bool ok;
                if (e->flags & FLAG_DESCRIPTOR)
                        ok = (crc == 0 || crc == e->crc) && (lu == 0 || lu == e->usize) && (lc == 0 || lc == e->csize);
                else
                        ok = crc == e->crc && lu == e->usize && lc == e->csize;
                if (!ok) {
                        note(f, SG_REASON_MALFORMED, "entry '%s': local header CRC or sizes differ from the central directory", nm);
                        return -EINVAL;
                }
        }

        uint64_t expect = 0;
        for (size_t k = 0; k < p->n_entries; k++) {
                sg_entry *e = sorted[k];
                const char *nm = shown(e->name, e->name_len, sb);
                bool last = k + 1 == p->n_entries;
                uint64_t next = last ? d->cd_offset : sorted[k + 1]->local_offset;
                if (e->local_offset > expect) {
                        note(f, SG_REASON_MALFORMED, "%llu unaccounted bytes before entry '%s'",
                             (unsigned long long) (e->local_offset - expect), nm);
                        return -EINVAL;
                }
                if (next < e->end_offset) {
                        if (!last && e->end_offset >= sorted[k + 1]->end_offset)
                                note(f, SG_REASON_UNSAFE_CONTENT, "entries '%s' and '%s' overlap in the archive", nm,
                                     shown(sorted[k + 1]->name, sorted[k + 1]->name_len, sb2));
                        else
                                note(f, SG_REASON_MALFORMED, "entry '%s' has data that runs into the %s", nm,
                                     last ? "central directory" : "next entry");
                        return -EINVAL;
                }
                uint64_t gap = next - e->end_offset;
                if (e->flags & FLAG_DESCRIPTOR) {
                        /* A descriptor's length is stored nowhere: it is what lies between this
                         * entry's data and the next structure, and must be one of the four shapes
                         * (with or without signature, 32- or 64-bit sizes) holding the central
                         * directory's values. */
                        unsigned char dd[24];
                        bool ok = false;
                        if (gap == 12 || gap == 16 || gap == 20 || gap == 24) {
                                if ((r = sg_pread_all(fd, dd, (size_t) gap, e->end_offset)) < 0)
                                        return r;
                                bool has_sig = le32(dd) == SIG_DESCRIPTOR && (gap == 16 || gap == 24);
                                const unsigned char *q = dd + (has_sig ? 4 : 0);
                                size_t body = (size_t) gap - (has_sig ? 4 : 0);
                                if (body == 12)
                                        ok = le32(q) == e->crc && le32(q + 4) == e->csize && le32(q + 8) == e->usize;
                                else if (body == 20)
                                        ok = le32(q) == e->crc && le64(q + 4) == e->csize && le64(q + 12) == e->usize;
                        }
                        if (!ok) {
                                note(f, SG_REASON_MALFORMED, "entry '%s' has no valid data descriptor after its data", nm);
                                return -EINVAL;
                        }
                        e->end_offset += gap;
                } else if (gap != 0) {
                        note(f, SG_REASON_MALFORMED, "%llu unaccounted bytes after entry '%s'", (unsigned long long) gap, nm);
                        return -EINVAL;
                }
                expect = e->end_offset;
        }
        if (expect != d->cd_offset) {
                note(f, SG_REASON_MALFORMED, "%llu unaccounted bytes before the central directory",
                     (unsigned long long) (d->cd_offset - expect));
                return -EINVAL;
        }
        return 0;
}

/* libzip must see the very archive signgate parsed: the same entries, in the same order,
 * with the same names, sizes, CRCs and methods (DESIGN §6). ZIP_CHECKCONS is not used:
 * libzip 1.7.3's consistency check refuses valid archives that Info-ZIP streams (data
 * descriptors with Zip64 local extras) or writes with -fz, and every property it checks is
 * checked above, more strictly. It runs only on archives that passed signgate's own rules,
 * so libzip's own refusals (of duplicate names, say) never mask the reason that applies. */
static int crosscheck_libzip(int fd, const sg_package *p, findings *f) {
        char sb[96];
        int zerr = 0, dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        zip_t *za = zip_fdopen(dfd, ZIP_RDONLY, &zerr);
        if (!za) {
                close(dfd);
                if (zerr == ZIP_ER_MEMORY)
                        return -ENOMEM;
                zip_error_t ze;
                zip_error_init_with_code(&ze, zerr);
                note(f, SG_REASON_MALFORMED, "libzip refuses the archive: %s", zip_error_strerror(&ze));
                zip_error_fini(&ze);
                return -EINVAL;
        }
        int r = 0;
        if ((uint64_t) zip_get_num_entries(za, 0) != p->n_entries) {
                note(f, SG_REASON_MALFORMED, "libzip sees %lld entries, signgate %zu",
                     (long long) zip_get_num_entries(za, 0), p->n_entries);
                r = -EINVAL;
                goto out;
        }
        for (size_t k = 0; k < p->n_entries; k++) {
                const sg_entry *e = &p->entries[k];
                zip_stat_t st;
                if (zip_stat_index(za, k, ZIP_FL_ENC_RAW, &st) < 0) {
                        note(f, SG_REASON_MALFORMED, "libzip cannot read entry %zu", k);
                        r = -EINVAL;
                        goto out;
                }
                /* Names with NUL bytes are already UNSAFE_CONTENT; libzip 1.7.3 rewrites them. */
                bool name_ok = memchr(e->name, '\0', e->name_len) ||
                               (st.name && strncmp(st.name, e->name, e->name_len) == 0 &&
                                strlen(st.name) == e->name_len + (e->type == SG_ENTRY_DIR));
                if (!name_ok || st.size != e->usize || st.comp_size != e->csize || st.crc != e->crc ||
                    st.comp_method != e->method) {
                        note(f, SG_REASON_MALFORMED, "libzip and signgate disagree about entry '%s'",
                             shown(e->name, e->name_len, sb));
                        r = -EINVAL;
                        goto out;
                }
        }
out:
        zip_discard(za);
        return r;
}

/* The canonical digest: SHA-384 of every byte up to the EOCD's comment length, then the
 * comment length read as zero. For an archive of at least PARALLEL_HASH_BYTES it runs in a
 * thread of its own, over its own reads of the file, while the pass below inflates, checks and
 * extracts: the pass then costs about the longer of the two, not their sum. The file must not
 * change underneath (the gate hashes and extracts its own private copy). */
#define PARALLEL_HASH_BYTES (1u << 20)
/* Entries whose data and output come to at least this many bytes are split over two lanes. */
#define PARALLEL_EXTRACT_BYTES (8u << 20)

typedef struct {
        int fd;
        uint64_t end;
        atomic_bool stop;     /* the pass failed: the digest is not needed */
        int r;
        unsigned char digest[SG_DIGEST_LEN];
} hasher;

static int hash_prefix(int fd, uint64_t end, atomic_bool *stop, unsigned char digest[SG_DIGEST_LEN]) {
        static const unsigned char zero_len[2] = {0, 0};
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char *buf = malloc(STREAM_CHUNK);
        unsigned int dlen = 0;
        int r = md && buf ? 0 : -ENOMEM;
        if (r == 0 && EVP_DigestInit_ex(md, EVP_sha384(), NULL) != 1)
                r = -EIO;
        /* pread into one buffer, not mmap: the page faults of a mapping cost more than the copy. */
        for (uint64_t pos = 0; r == 0 && pos < end;) {
                size_t n = end - pos < STREAM_CHUNK ? (size_t) (end - pos) : STREAM_CHUNK;
                if (stop && atomic_load_explicit(stop, memory_order_relaxed))
                        r = -ECANCELED;
                else if ((r = sg_pread_all(fd, buf, n, pos)) == 0 && EVP_DigestUpdate(md, buf, n) != 1)
                        r = -EIO;
                pos += n;
        }
        if (r == 0 && (EVP_DigestUpdate(md, zero_len, 2) != 1 || EVP_DigestFinal_ex(md, digest, &dlen) != 1 ||
                       dlen != SG_DIGEST_LEN))
                r = -EIO;
        EVP_MD_CTX_free(md);
        free(buf);
        return r;
}

static void *hasher_main(void *arg) {
        hasher *h = arg;
        h->r = hash_prefix(h->fd, h->end, &h->stop, h->digest);
        return NULL;
}

/* The one sequential pass: the bytes of each entry's data go through the inflater, CRC-32 and
 * the sink (and, for a small archive, every byte through SHA-384 as well). */
typedef struct {
        int fd;
        EVP_MD_CTX *md;       /* NULL: the hasher thread hashes, this pass only reads entry data */
        uint64_t pos;
        unsigned char *buf;
        unsigned char *out;
        z_stream zs;
        bool z_init;
        const sg_limits *lim;
        const sg_package_sink *sink;
        sg_package *p;
        findings *f;
        atomic_uint_least64_t *inflated; /* bytes produced by every lane together */
        atomic_bool *cancel;             /* a second lane stops when the first failed */
} streamer;

/* What one entry's data has produced so far. */
typedef struct {
        sg_entry *e;
        uint32_t crc;
        uint64_t produced;
        bool ended; /* the deflate stream reached its end marker */
} entry_state;

static int emit(streamer *s, entry_state *es, const unsigned char *out, size_t n) {
        char sb[96];
        sg_entry *e = es->e;

        if (n > e->usize - es->produced) {
                note(s->f, SG_REASON_MALFORMED, "entry '%s' inflates to more than its declared %llu bytes",
                     shown(e->name, e->name_len, sb), (unsigned long long) e->usize);
                return -EINVAL;
        }
        es->produced += n;
        if (atomic_fetch_add_explicit(s->inflated, n, memory_order_relaxed) + n > s->lim->inflated_bytes) {
                note(s->f, SG_REASON_LIMIT_EXCEEDED, "the archive inflates to more than %llu bytes",
                     (unsigned long long) s->lim->inflated_bytes);
                return -EINVAL;
        }
        es->crc = (uint32_t) crc32_z(es->crc, out, n);
        if (e->type == SG_ENTRY_SYMLINK) {
                /* A target over the cap is already UNSAFE_CONTENT; it is checked, not kept. */
                if (e->link_target)
                        memcpy(e->link_target + (es->produced - n), out, n);
                return 0;
        }
        if (n > 0 && s->sink && s->sink->on_entry_data)
                return sink_error(s->sink->on_entry_data(s->sink->userdata, e, out, n));
        return 0;
}

/* Inflates in[0, n) and hands every byte zlib produces for it to emit(). */
static int inflate_chunk(streamer *s, entry_state *es, const unsigned char *in, size_t n) {
        char sb[96];
        int r;

        s->zs.next_in = (unsigned char *) in;
        s->zs.avail_in = (uInt) n;
        for (;;) {
                s->zs.next_out = s->out;
                s->zs.avail_out = STREAM_CHUNK;
                int z = inflate(&s->zs, Z_NO_FLUSH);
                size_t out_len = STREAM_CHUNK - s->zs.avail_out;
                if (z == Z_STREAM_END)
                        es->ended = true;
                else if (z != Z_OK && z != Z_BUF_ERROR) {
                        note(s->f, SG_REASON_MALFORMED, "entry '%s' has corrupt deflate data",
                             shown(es->e->name, es->e->name_len, sb));
                        return -EINVAL;
                }
                if ((r = emit(s, es, s->out, out_len)) < 0)
                        return r;
                if (es->ended && s->zs.avail_in > 0) {
                        note(s->f, SG_REASON_MALFORMED, "entry '%s' has bytes after its deflate stream",
                             shown(es->e->name, es->e->name_len, sb));
                        return -EINVAL;
                }
                /* zlib returns with room left in the output only once it has taken all the
                 * input it can: then this chunk is done. A full output buffer may hide more. */
                if (es->ended || s->zs.avail_out > 0) {
                        if (!es->ended && s->zs.avail_in > 0) {
                                note(s->f, SG_REASON_MALFORMED, "entry '%s' has corrupt deflate data",
                                     shown(es->e->name, es->e->name_len, sb));
                                return -EINVAL;
                        }
                        return 0;
                }
        }
}

/* Reads [pos, to), hashing it; with es set, the bytes are es->e's compressed data. */
static int stream_to(streamer *s, uint64_t to, entry_state *es) {
        int r;

        if (!s->md && !es) {
                s->pos = to; /* bytes between entries matter only to the hasher thread */
                return 0;
        }
        while (s->pos < to) {
                size_t n = to - s->pos < STREAM_CHUNK ? (size_t) (to - s->pos) : STREAM_CHUNK;
                if (s->cancel && atomic_load_explicit(s->cancel, memory_order_relaxed))
                        return -ECANCELED;
                if ((r = sg_pread_all(s->fd, s->buf, n, s->pos)) < 0)
                        return r;
                if (s->md && EVP_DigestUpdate(s->md, s->buf, n) != 1)
                        return -EIO;
                s->pos += n;
                if (!es)
                        continue;
                if (es->e->method == 0)
                        r = emit(s, es, s->buf, n);
                else
                        r = inflate_chunk(s, es, s->buf, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Streams the data of sorted[from, to): inflate, size and CRC checks, sink. */
static int stream_range(streamer *s, sg_entry **sorted, size_t from, size_t to) {
        const sg_package_sink *sink = s->sink;
        char sb[96];
        int r;

        for (size_t k = from; k < to; k++) {
                entry_state es = {.e = sorted[k]};
                sg_entry *e = es.e;
                const char *nm = shown(e->name, e->name_len, sb);
                if ((r = stream_to(s, e->data_offset, NULL)) < 0)
                        return r;
                /* Encrypted data and unknown methods are already UNSAFE_CONTENT and cannot be
                 * read: their bytes are only hashed, and their sizes and CRC go unchecked. */
                if ((e->flags & FLAGS_ENCRYPTION) || (e->method != 0 && e->method != 8))
                        continue;
                if (e->type == SG_ENTRY_SYMLINK && e->usize <= SG_LIMIT_SYMLINK_TARGET) {
                        e->link_target = calloc(1, (size_t) e->usize + 1);
                        if (!e->link_target)
                                return -ENOMEM;
                } else if (e->type != SG_ENTRY_SYMLINK && sink && sink->on_entry_begin &&
                           (r = sink_error(sink->on_entry_begin(sink->userdata, e))) < 0)
                        return r;
                if (e->method == 8 && inflateReset(&s->zs) != Z_OK)
                        return -EIO;
                if ((r = stream_to(s, e->data_offset + e->csize, &es)) < 0)
                        return r;
                if (e->method == 8 && !es.ended) {
                        note(s->f, SG_REASON_MALFORMED, "entry '%s' has a truncated deflate stream", nm);
                        return -EINVAL;
                }
                if (es.produced != e->usize) {
                        note(s->f, SG_REASON_MALFORMED, "entry '%s' inflates to %llu bytes, not the declared %llu", nm,
                             (unsigned long long) es.produced, (unsigned long long) e->usize);
                        return -EINVAL;
                }
                if (es.crc != e->crc) {
                        note(s->f, SG_REASON_MALFORMED, "entry '%s' fails its CRC-32 check", nm);
                        return -EINVAL;
                }
                if (e->type != SG_ENTRY_SYMLINK && sink && sink->on_entry_end &&
                    (r = sink_error(sink->on_entry_end(sink->userdata, e))) < 0)
                        return r;
        }
        return 0;
}

static int streamer_init(streamer *s, bool hash) {
        s->md = hash ? EVP_MD_CTX_new() : NULL;
        s->buf = malloc(STREAM_CHUNK);
        s->out = malloc(STREAM_CHUNK);
        if ((hash && !s->md) || !s->buf || !s->out)
                return -ENOMEM;
        if (s->md && EVP_DigestInit_ex(s->md, EVP_sha384(), NULL) != 1)
                return -EIO;
        if (inflateInit2(&s->zs, -MAX_WBITS) != Z_OK)
                return -ENOMEM;
        s->z_init = true;
        return 0;
}

static void streamer_done(streamer *s) {
        if (s->z_init)
                inflateEnd(&s->zs);
        EVP_MD_CTX_free(s->md);
        free(s->buf);
        free(s->out);
}

/* The second lane of a parallel pass: the entries from `from` on, with its own buffers,
 * inflater, findings and sink receiver. It stops early only when the first lane failed. */
typedef struct {
        streamer s;
        findings f;
        sg_package_sink sink;
        sg_entry **sorted;
        size_t from, to;
        int r;
} lane;

static void *lane_main(void *arg) {
        lane *l = arg;
        l->r = streamer_init(&l->s, false);
        if (l->r == 0)
                l->r = stream_range(&l->s, l->sorted, l->from, l->to);
        return NULL;
}

/* Where to split sorted[] into two lanes of about equal work (bytes read plus bytes produced),
 * or 0 when one lane is better: a small archive, or one whose work is a single entry. */
static size_t lane_split(const sg_package *p, sg_entry **sorted) {
        uint64_t total = 0, acc = 0;
        for (size_t k = 0; k < p->n_entries; k++)
                total += sorted[k]->csize + sorted[k]->usize;
        if (total < PARALLEL_EXTRACT_BYTES)
                return 0;
        for (size_t k = 0; k < p->n_entries; k++) {
                uint64_t w = sorted[k]->csize + sorted[k]->usize;
                if (acc + w / 2 >= total / 2)
                        return k > 0 && k < p->n_entries ? k : 0;
                acc += w;
        }
        return 0;
}

static int stream_entries(int fd, const sg_limits *lim, sg_package *p, sg_entry **sorted,
                          const sg_package_sink *sink, findings *f) {
        atomic_uint_least64_t inflated;
        atomic_bool first_failed;
        streamer s = {.fd = fd, .lim = lim, .sink = sink, .p = p, .f = f, .inflated = &inflated};
        lane l = {.sorted = sorted, .to = p->n_entries};
        hasher h = {.fd = fd, .end = p->eocd_offset + 20};
        pthread_t hasher_tid, lane_tid;
        bool threaded = false, two_lanes = false;
        int r;

        atomic_init(&inflated, 0);
        atomic_init(&first_failed, false);
        atomic_init(&h.stop, false);
        if (h.end >= PARALLEL_HASH_BYTES)
                threaded = pthread_create(&hasher_tid, NULL, hasher_main, &h) == 0; /* else hashed inline */
        /* With the digest in its own thread, the entries can also be split over two lanes, when
         * the sink can take a second receiver. */
        l.from = threaded && (!sink || sink->lane_new) ? lane_split(p, sorted) : 0;
        if (l.from > 0) {
                l.s = (streamer){.fd = fd, .lim = lim, .p = p, .f = &l.f, .inflated = &inflated, .cancel = &first_failed};
                if (sink) {
                        l.sink = *sink;
                        l.sink.userdata = sink->lane_new(sink->userdata);
                        l.s.sink = &l.sink;
                }
                two_lanes = (!sink || l.sink.userdata) && pthread_create(&lane_tid, NULL, lane_main, &l) == 0;
                if (!two_lanes && sink && l.sink.userdata)
                        (void) sink->lane_done(sink->userdata, l.sink.userdata);
        }
        r = streamer_init(&s, !threaded);
        if (r == 0)
                r = stream_range(&s, sorted, 0, two_lanes ? l.from : p->n_entries);
        if (r < 0)
                atomic_store_explicit(&first_failed, true, memory_order_relaxed);
        if (two_lanes) {
                (void) pthread_join(lane_tid, NULL);
                int k = sink ? sink->lane_done(sink->userdata, l.sink.userdata) : 0;
                /* The first lane's failure wins (the second may have been stopped by it); else
                 * the second lane's, with its findings: the outcome is that of one pass in order. */
                if (r == 0 && l.r < 0) {
                        r = l.r;
                        for (int i = 0; i < SG_REASON_MAX_; i++)
                                if (l.f.seen[i] && !f->seen[i]) {
                                        f->seen[i] = true;
                                        f->first[i] = l.f.first[i];
                                }
                }
                if (r == 0 && k < 0)
                        r = k;
                streamer_done(&l.s);
        }
        /* The rest: descriptors, the central directory, the Zip64 records, and the EOCD up to
         * its comment length, which the canonical form reads as zero. */
        if (r == 0)
                r = stream_to(&s, p->eocd_offset + 20, NULL);
        static const unsigned char zero_len[2] = {0, 0};
        unsigned int dlen = 0;
        if (r == 0 && s.md && (EVP_DigestUpdate(s.md, zero_len, 2) != 1 || EVP_DigestFinal_ex(s.md, p->digest, &dlen) != 1 ||
                               dlen != SG_DIGEST_LEN))
                r = -EIO;
        if (threaded) {
                if (r < 0)
                        atomic_store_explicit(&h.stop, true, memory_order_relaxed);
                (void) pthread_join(hasher_tid, NULL);
                if (r == 0 && (r = h.r) == 0)
                        memcpy(p->digest, h.digest, SG_DIGEST_LEN);
        }
        p->inflated_total = atomic_load(&inflated);
        streamer_done(&s);
        return r;
}

int sg_package_inspect(int fd, const sg_limits *lim, const sg_package_sink *sink, sg_package **ret,
                       sg_error *err) {
        _cleanup_(sg_package_freep) sg_package *p = NULL;
        _cleanup_(sg_freep) sg_entry **sorted = NULL;
        name_table table = {0};
        directory d = {0};
        findings *f = NULL;
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return sg_error_set(err, SG_REASON_MALFORMED, "not a regular file");
        if ((uint64_t) st.st_size > lim->package_bytes)
                return sg_error_set(err, SG_REASON_LIMIT_EXCEEDED, "the package is %llu bytes, over the limit of %llu",
                                    (unsigned long long) st.st_size, (unsigned long long) lim->package_bytes);
        if ((uint64_t) st.st_size < EOCD_LEN)
                return sg_error_set(err, SG_REASON_MALFORMED, "not a ZIP archive: %llu bytes is too short",
                                    (unsigned long long) st.st_size);
        f = calloc(1, sizeof(*f));
        p = calloc(1, sizeof(*p));
        if (!f || !p) {
                r = -ENOMEM;
                goto out;
        }
        p->file_size = (uint64_t) st.st_size;
        if ((r = find_eocd(fd, p->file_size, p, f)) < 0)
                goto out;
        p->canonical_size = p->eocd_offset + EOCD_LEN;
        if ((r = read_end_records(fd, p, &d, f)) < 0)
                goto out;
        if (d.n_entries > lim->entries) {
                note(f, SG_REASON_LIMIT_EXCEEDED, "the archive has %llu entries, over the limit of %u",
                     (unsigned long long) d.n_entries, lim->entries);
                r = -EINVAL;
                goto out;
        }
        if (d.cd_offset > d.cd_end || d.cd_size != d.cd_end - d.cd_offset) {
                note(f, SG_REASON_MALFORMED, "the central directory (offset %llu, %llu bytes) does not end where the end records begin",
                     (unsigned long long) d.cd_offset, (unsigned long long) d.cd_size);
                r = -EINVAL;
                goto out;
        }
        if (d.n_entries > d.cd_size / CENTRAL_LEN) {
                note(f, SG_REASON_MALFORMED, "the central directory is too small for %llu entries",
                     (unsigned long long) d.n_entries);
                r = -EINVAL;
                goto out;
        }
        p->n_entries = (size_t) d.n_entries;
        p->entries = calloc(p->n_entries ? p->n_entries : 1, sizeof(*p->entries));
        sorted = calloc(p->n_entries ? p->n_entries : 1, sizeof(*sorted));
        if (!p->entries || !sorted) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = read_central(fd, lim, p, &d, f)) < 0)
                goto out;
        if ((r = read_locals(fd, p, &d, f, sorted)) < 0)
                goto out;
        if ((r = check_tree(f, p->entries, p->n_entries, &table)) < 0)
                goto out;
        /* An archive with an unsafe or over-limit name is rejected, but its data is still
         * streamed (to no sink: nothing of it is extracted), because a corrupt entry or the
         * inflated total outranks those reasons (DESIGN §5) and is found only there. */
        bool clean = report(f, NULL) == 0;
        if (clean && (r = crosscheck_libzip(fd, p, f)) < 0)
                goto out;
        if ((r = stream_entries(fd, lim, p, sorted, clean ? sink : NULL, f)) < 0)
                goto out;
        for (size_t k = 0; k < p->n_entries; k++)
                if (p->entries[k].type == SG_ENTRY_SYMLINK && p->entries[k].link_target)
                        check_symlink(f, &table, lim, &p->entries[k]);
        if (f->seen[SG_REASON_INTERNAL]) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = report(f, NULL)) < 0)
                goto out;
        for (size_t k = 0; sink && sink->on_symlink && k < p->n_entries; k++)
                if (p->entries[k].type == SG_ENTRY_SYMLINK &&
                    (r = sink_error(sink->on_symlink(sink->userdata, &p->entries[k]))) < 0)
                        goto out;
        *ret = SG_TAKE_PTR(p);
        r = 0;
out:
        /* -EINVAL promises the caller a reason; one with none noted is a fault of ours, not the
         * archive's, and is reported as such rather than decided without facts. */
        if (r == -EINVAL && (!f || report(f, err) == 0))
                r = -EIO;
        free(table.slot);
        free(f);
        return r;
}

int sg_file_sha384(int fd, unsigned char digest[SG_DIGEST_LEN], uint64_t *ret_size) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char *buf = malloc(STREAM_CHUNK);
        uint64_t off = 0;
        int r = 0;

        if (!md || !buf) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_DigestInit_ex(md, EVP_sha384(), NULL) != 1) {
                r = -EIO;
                goto out;
        }
        for (;;) {
                ssize_t k = pread(fd, buf, STREAM_CHUNK, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (k == 0)
                        break;
                if (EVP_DigestUpdate(md, buf, (size_t) k) != 1) {
                        r = -EIO;
                        goto out;
                }
                off += (uint64_t) k;
        }
        unsigned int dlen = 0;
        if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != SG_DIGEST_LEN) {
                r = -EIO;
                goto out;
        }
        if (ret_size)
                *ret_size = off;
out:
        EVP_MD_CTX_free(md);
        free(buf);
        return r;
}
