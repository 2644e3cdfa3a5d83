/* Unit tests for policy/sg_package.c: sg_package_inspect() on archives written byte by byte
 * here (DESIGN §4 canonical bytes and digest, §5 reason precedence, §6 structure and safety
 * rules), and sg_file_sha384().
 *
 * The archive writer below emits every record field by field so that a test can produce
 * exactly the hostile bytes it needs; the digests the tests expect are computed with OpenSSL
 * directly over the bytes written, never by the code under test.
 *
 * Run one test alone with: unit-policy-test-package TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "sg_package.h"
#include "sg_test.h"

/* ---- fixture: one private temp directory per test ----
 *
 * Archives and packages a test makes are also tracked here, so that a failed assertion, which
 * leaves the test function early, does not leak them: teardown frees whatever is left. */

#define MAX_TRACKED 64

typedef struct {
        void (*fn)(void *);
        void *ptr;
} tracked;

typedef struct {
        char *dir;
        int dirfd;
        tracked t[MAX_TRACKED];
} fixture;

static fixture *current;

static void *track(void (*fn)(void *), void *ptr) {
        for (size_t i = 0; i < MAX_TRACKED; i++)
                if (!current->t[i].ptr) {
                        current->t[i] = (tracked){fn, ptr};
                        return ptr;
                }
        fail_msg("more than %d tracked objects", MAX_TRACKED);
        return NULL;
}

/* Frees a tracked object now. */
static void release(void *ptr) {
        if (!ptr)
                return;
        for (size_t i = 0; i < MAX_TRACKED; i++)
                if (current->t[i].ptr == ptr) {
                        current->t[i].fn(ptr);
                        current->t[i].ptr = NULL;
                        return;
                }
        fail_msg("releasing an untracked object");
}

static int setup_tmp(void **state) {
        fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (sg_test_tmpdir_create("sg-package", &f->dir, &f->dirfd) < 0) {
                free(f);
                return -1;
        }
        current = f;
        *state = f;
        return 0;
}

static int teardown_tmp(void **state) {
        fixture *f = *state;

        for (size_t i = 0; i < MAX_TRACKED; i++)
                if (f->t[i].ptr)
                        f->t[i].fn(f->t[i].ptr);
        int r = sg_test_tmpdir_remove(f->dir, f->dirfd);
        free(f);
        current = NULL;
        return r;
}

/* ---- a byte-exact ZIP writer, on sg_test.h's byte buffer ---- */

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_ZIP64_EOCD 0x06064b50u
#define SIG_ZIP64_LOCATOR 0x07064b50u
#define SIG_DESCRIPTOR 0x08074b50u
#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DESCRIPTOR 0x0008u
#define DOS_DATE_1980_01_01 0x0021u

enum { DD_NONE, DD_32, DD_32_SIG, DD_64, DD_64_SIG };

typedef struct {
        const char *name;       /* central name; a directory ends in '/' */
        size_t name_len;        /* 0: strlen(name) (set it to store a NUL byte) */
        const char *local_name; /* NULL: the central name */
        const char *data;       /* content before compression */
        size_t data_len;        /* 0: strlen(data) */
        uint16_t method;        /* 8 deflates; any other value stores the bytes under that label */
        uint16_t flags;         /* extra general-purpose bits, in both headers */
        unsigned mode;          /* Unix st_mode with type bits; 0: made by MS-DOS, no mode */
        int descriptor;         /* DD_*: sizes and CRC follow the data */
        uint32_t crc_xor;       /* flips bits of the CRC in both headers (and the descriptor) */
        int64_t usize_delta;    /* added to the size in both headers (and the descriptor) */
        size_t csize_cut;       /* bytes dropped from the end of the compressed data */
        size_t gap_before;      /* junk bytes before this local header, in no structure */
        int alias_of;           /* n > 0: a central entry only, pointing at entry n-1's local header */
} zentry;

typedef struct {
        const char *comment;
        size_t comment_len;      /* 0: strlen(comment) */
        bool lie_comment_len;    /* the EOCD states comment_len_field instead of the real length */
        uint16_t comment_len_field;
        size_t prepend;          /* junk before the first entry; the offsets count it */
        size_t gap_before_eocd;  /* junk between the central directory and the end records */
        bool zip64;              /* Zip64 end record and locator; the EOCD holds only markers */
        const int *central_order;/* NULL: central entries in the order given */
} zopts;

static void put_junk(sg_test_buf *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                sg_test_buf_put(b, "J", 1);
}
static void set32(sg_test_buf *b, size_t off, uint32_t v) {
        b->p[off] = (unsigned char) v;
        b->p[off + 1] = (unsigned char) (v >> 8);
        b->p[off + 2] = (unsigned char) (v >> 16);
        b->p[off + 3] = (unsigned char) (v >> 24);
}

/* Raw deflate (windowBits -15), as ZIP stores it. */
static unsigned char *deflate_raw(const char *in, size_t n, size_t *ret_len) {
        z_stream zs = {0};
        assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
        size_t cap = deflateBound(&zs, (uLong) n) + 16;
        unsigned char *out = malloc(cap);
        assert_non_null(out);
        zs.next_in = (unsigned char *) in;
        zs.avail_in = (uInt) n;
        zs.next_out = out;
        zs.avail_out = (uInt) cap;
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        *ret_len = cap - zs.avail_out;
        deflateEnd(&zs);
        return out;
}

typedef struct {
        uint32_t crc;
        uint64_t csize, usize;
        uint64_t local_off;
} zfacts;

/* Writes the archive described by es and o into b; returns the offset of the EOCD. */
static size_t zip_write(sg_test_buf *b, const zentry *es, size_t n, const zopts *o) {
        zfacts *facts = calloc(n ? n : 1, sizeof(*facts));
        assert_non_null(facts);

        put_junk(b, o->prepend);
        for (size_t i = 0; i < n; i++) {
                const zentry *e = &es[i];
                if (e->alias_of > 0)
                        continue;
                const char *data = e->data ? e->data : "";
                size_t dlen = e->data_len ? e->data_len : strlen(data);
                size_t nlen = e->name_len ? e->name_len : strlen(e->name);
                const char *lname = e->local_name ? e->local_name : e->name;
                size_t lnlen = e->local_name ? strlen(e->local_name) : nlen;
                unsigned char *payload;
                size_t plen;
                if (e->method == 8) {
                        payload = deflate_raw(data, dlen, &plen);
                } else {
                        payload = malloc(dlen + 1);
                        assert_non_null(payload);
                        memcpy(payload, data, dlen);
                        plen = dlen;
                }
                assert_true(e->csize_cut <= plen);
                plen -= e->csize_cut;
                zfacts *z = &facts[i];
                z->crc = (uint32_t) crc32(0, (const unsigned char *) data, (uInt) dlen) ^ e->crc_xor;
                z->csize = plen;
                z->usize = (uint64_t) ((int64_t) dlen + e->usize_delta);
                uint16_t flags = (uint16_t) (e->flags | (e->descriptor ? FLAG_DESCRIPTOR : 0));
                uint16_t version = e->descriptor >= DD_64 ? 45 : 20;

                put_junk(b, e->gap_before);
                z->local_off = b->len;
                sg_test_buf_put32(b, SIG_LOCAL);
                sg_test_buf_put16(b, version);
                sg_test_buf_put16(b, flags);
                sg_test_buf_put16(b, e->method);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, DOS_DATE_1980_01_01);
                sg_test_buf_put32(b, e->descriptor ? 0 : z->crc);
                sg_test_buf_put32(b, e->descriptor ? 0 : (uint32_t) z->csize);
                sg_test_buf_put32(b, e->descriptor ? 0 : (uint32_t) z->usize);
                sg_test_buf_put16(b, (uint32_t) lnlen);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put(b, lname, lnlen);
                sg_test_buf_put(b, payload, plen);
                free(payload);
                if (e->descriptor == DD_32_SIG || e->descriptor == DD_64_SIG)
                        sg_test_buf_put32(b, SIG_DESCRIPTOR);
                if (e->descriptor == DD_32 || e->descriptor == DD_32_SIG) {
                        sg_test_buf_put32(b, z->crc);
                        sg_test_buf_put32(b, (uint32_t) z->csize);
                        sg_test_buf_put32(b, (uint32_t) z->usize);
                } else if (e->descriptor == DD_64 || e->descriptor == DD_64_SIG) {
                        sg_test_buf_put32(b, z->crc);
                        sg_test_buf_put64(b, z->csize);
                        sg_test_buf_put64(b, z->usize);
                }
        }
        for (size_t i = 0; i < n; i++)
                if (es[i].alias_of > 0) {
                        facts[i] = facts[es[i].alias_of - 1];
                }

        uint64_t cd_off = b->len;
        for (size_t k = 0; k < n; k++) {
                size_t i = o->central_order ? (size_t) o->central_order[k] : k;
                const zentry *e = &es[i];
                const zentry *src = e->alias_of > 0 ? &es[e->alias_of - 1] : e;
                const zfacts *z = &facts[i];
                size_t nlen = e->name_len ? e->name_len : strlen(e->name);
                uint16_t flags = (uint16_t) (src->flags | (src->descriptor ? FLAG_DESCRIPTOR : 0));
                uint16_t version = src->descriptor >= DD_64 ? 45 : 20;

                sg_test_buf_put32(b, SIG_CENTRAL);
                sg_test_buf_put16(b, e->mode ? (3u << 8 | version) : version);
                sg_test_buf_put16(b, version);
                sg_test_buf_put16(b, flags);
                sg_test_buf_put16(b, src->method);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, DOS_DATE_1980_01_01);
                sg_test_buf_put32(b, z->crc);
                sg_test_buf_put32(b, (uint32_t) z->csize);
                sg_test_buf_put32(b, (uint32_t) z->usize);
                sg_test_buf_put16(b, (uint32_t) nlen);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put32(b, e->mode << 16);
                sg_test_buf_put32(b, (uint32_t) z->local_off);
                sg_test_buf_put(b, e->name, nlen);
        }
        uint64_t cd_size = b->len - cd_off;
        put_junk(b, o->gap_before_eocd);

        if (o->zip64) {
                uint64_t z_off = b->len;
                sg_test_buf_put32(b, SIG_ZIP64_EOCD);
                sg_test_buf_put64(b, 44);
                sg_test_buf_put16(b, 45);
                sg_test_buf_put16(b, 45);
                sg_test_buf_put32(b, 0);
                sg_test_buf_put32(b, 0);
                sg_test_buf_put64(b, n);
                sg_test_buf_put64(b, n);
                sg_test_buf_put64(b, cd_size);
                sg_test_buf_put64(b, cd_off);
                sg_test_buf_put32(b, SIG_ZIP64_LOCATOR);
                sg_test_buf_put32(b, 0);
                sg_test_buf_put64(b, z_off);
                sg_test_buf_put32(b, 1);
        }
        size_t eocd = b->len;
        const char *comment = o->comment ? o->comment : "";
        size_t clen = o->comment_len ? o->comment_len : strlen(comment);
        sg_test_buf_put32(b, SIG_EOCD);
        sg_test_buf_put16(b, 0);
        sg_test_buf_put16(b, 0);
        sg_test_buf_put16(b, o->zip64 ? 0xffff : (uint32_t) n);
        sg_test_buf_put16(b, o->zip64 ? 0xffff : (uint32_t) n);
        sg_test_buf_put32(b, o->zip64 ? 0xffffffffu : (uint32_t) cd_size);
        sg_test_buf_put32(b, o->zip64 ? 0xffffffffu : (uint32_t) cd_off);
        sg_test_buf_put16(b, o->lie_comment_len ? o->comment_len_field : (uint32_t) clen);
        sg_test_buf_put(b, comment, clen);
        free(facts);
        return eocd;
}

/* An archive in memory and on disk. */
typedef struct {
        sg_test_buf b;
        size_t eocd;
        int fd;
} zarchive;

#define ZOPTS(...) (&(zopts){__VA_ARGS__})
#define ZENTRIES(...) ((const zentry[]){__VA_ARGS__}), (sizeof((const zentry[]){__VA_ARGS__}) / sizeof(zentry))

static void zarchive_free(void *p) {
        zarchive *a = p;
        if (a->fd >= 0)
                close(a->fd);
        sg_test_buf_free(&a->b);
        free(a);
}

static void package_free(void *p) { sg_package_free(p); }

static zarchive *zip_make(fixture *f, const char *fname, const zentry *es, size_t n, const zopts *o) {
        zarchive *a = track(zarchive_free, calloc(1, sizeof(*a)));
        assert_non_null(a);
        a->fd = -1;
        a->eocd = zip_write(&a->b, es, n, o);
        a->fd = sg_test_write_file(f->dirfd, fname, a->b.p, a->b.len);
        return a;
}

#define zip_free(a) release(a)
#define pkg_free(p) release(p)

static void sha384(const void *p, size_t n, unsigned char out[SG_DIGEST_LEN]) {
        unsigned int len = 0;
        assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha384(), NULL), 1);
        assert_int_equal(len, SG_DIGEST_LEN);
}

/* ---- the sink: records what arrives, as text ---- */

typedef struct {
        char log[8192];
        size_t len;
        int fail_at_begin;  /* n > 0: the n-th on_entry_begin fails */
        int fail_errno;
        int begins;
} recorder;

static void rec_add(recorder *r, const void *p, size_t n) {
        assert_true(n < sizeof(r->log) - r->len);
        memcpy(r->log + r->len, p, n);
        r->len += n;
        r->log[r->len] = '\0';
}

static const char *type_letter(const sg_entry *e) {
        return e->type == SG_ENTRY_DIR ? "d" : e->type == SG_ENTRY_SYMLINK ? "l" : "f";
}

static int on_begin(void *u, const sg_entry *e) {
        recorder *r = u;
        char head[256];
        if (++r->begins == r->fail_at_begin)
                return -r->fail_errno;
        int n = snprintf(head, sizeof(head), "<%s %s %o:", type_letter(e), e->name, e->mode);
        rec_add(r, head, (size_t) n);
        return 0;
}
static int on_data(void *u, const sg_entry *e, const void *buf, size_t n) {
        (void) e;
        rec_add(u, buf, n);
        return 0;
}
static int on_end(void *u, const sg_entry *e) {
        (void) e;
        rec_add(u, ">", 1);
        return 0;
}
static int on_link(void *u, const sg_entry *e) {
        char head[512];
        int n = snprintf(head, sizeof(head), "@%s->%s;", e->name, e->link_target);
        rec_add(u, head, (size_t) n);
        return 0;
}

/* ---- helpers for expectations ---- */

static sg_limits default_limits(void) {
        sg_limits l;
        sg_limits_default(&l);
        return l;
}

/* Inspects a's file with lim and a recorder; fails the test unless it is accepted. */
static sg_package *inspect_ok(const zarchive *a, const sg_limits *lim, recorder *rec) {
        sg_package_sink sink = {.userdata = rec, .on_entry_begin = on_begin, .on_entry_data = on_data,
                                .on_entry_end = on_end, .on_symlink = on_link};
        sg_package *p = NULL;
        sg_error err = {0};
        sg_limits dl = default_limits();
        int r = sg_package_inspect(a->fd, lim ? lim : &dl, rec ? &sink : NULL, &p, &err);
        if (r != 0)
                fail_msg("inspect = %d, want 0 (%s: %s)", r, sg_reason_name(err.reason), err.msg);
        assert_non_null(p);
        return track(package_free, p);
}

/* Inspects a's file and fails the test unless it is rejected with reason, and the message
 * contains want_msg (when not NULL). Returns the error for further checks. */
static sg_error inspect_rejects(const zarchive *a, const sg_limits *lim, sg_reason reason, const char *want_msg) {
        sg_package *p = NULL;
        sg_error err = {0};
        sg_limits dl = default_limits();
        int r = sg_package_inspect(a->fd, lim ? lim : &dl, NULL, &p, &err);
        bool got_package = p != NULL;
        sg_package_free(p);
        if (r != -EINVAL)
                fail_msg("inspect = %d, want %d (-EINVAL) with %s", r, -EINVAL, sg_reason_name(reason));
        if (got_package)
                fail_msg("a rejected archive still returned a package");
        if (err.reason != reason)
                fail_msg("reason %s, want %s (message: %s)", sg_reason_name(err.reason), sg_reason_name(reason), err.msg);
        if (want_msg && !strstr(err.msg, want_msg))
                fail_msg("message '%s' does not contain '%s'", err.msg, want_msg);
        assert_true(strlen(err.msg) > 0);
        return err;
}

static void assert_digest_of_bytes(const sg_package *p, const void *bytes, size_t n) {
        unsigned char want[SG_DIGEST_LEN];
        sha384(bytes, n, want);
        assert_memory_equal(p->digest, want, SG_DIGEST_LEN);
}

#define CONTENT_A "hello, world\n"
#define CONTENT_LONG                                                                                   \
        "exports.handler = async (event) => { return { statusCode: 200, body: JSON.stringify(event) }; };\n" \
        "exports.handler = async (event) => { return { statusCode: 200, body: JSON.stringify(event) }; };\n" \
        "exports.handler = async (event) => { return { statusCode: 200, body: JSON.stringify(event) }; };\n"

/* ---- valid archives, digest and canonical bytes ---- */

static void test_accepts_minimal_stored_archive_with_digest_of_whole_file(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "index.js", .data = CONTENT_A}), ZOPTS());
        sg_package *p = inspect_ok(a, NULL, NULL);

        assert_int_equal(p->n_entries, 1);
        assert_string_equal(p->entries[0].name, "index.js");
        assert_int_equal(p->entries[0].type, SG_ENTRY_FILE);
        assert_int_equal(p->entries[0].method, 0);
        assert_int_equal(p->entries[0].usize, strlen(CONTENT_A));
        assert_int_equal(p->entries[0].mode, 0644);
        assert_int_equal(p->file_size, a->b.len);
        assert_int_equal(p->eocd_offset, a->eocd);
        assert_int_equal(p->canonical_size, a->b.len);
        assert_int_equal(p->inflated_total, strlen(CONTENT_A));
        assert_int_equal(p->comment_len, 0);
        assert_false(p->zip64);
        assert_digest_of_bytes(p, a->b.p, a->b.len);
        pkg_free(p);
        zip_free(a);
}

static void test_accepts_deflated_archive_with_digest_of_whole_file(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "index.js", .data = CONTENT_LONG, .method = 8, .mode = 0100755},
                                        {.name = "lib/", .mode = 040755},
                                        {.name = "lib/util.js", .data = CONTENT_A, .method = 8}),
                               ZOPTS());
        sg_package *p = inspect_ok(a, NULL, NULL);

        assert_int_equal(p->n_entries, 3);
        assert_int_equal(p->entries[0].method, 8);
        assert_true(p->entries[0].csize < p->entries[0].usize);
        assert_int_equal(p->entries[0].mode, 0755);
        assert_int_equal(p->entries[1].type, SG_ENTRY_DIR);
        assert_string_equal(p->entries[1].name, "lib");
        assert_int_equal(p->entries[1].mode, 0755);
        assert_int_equal(p->entries[2].mode, 0644);
        assert_int_equal(p->inflated_total, strlen(CONTENT_LONG) + strlen(CONTENT_A));
        assert_int_equal(p->canonical_size, a->b.len);
        assert_digest_of_bytes(p, a->b.p, a->b.len);
        pkg_free(p);
        zip_free(a);
}

static void test_digest_ignores_comment_and_canonical_size_is_unchanged(void **state) {
        const zentry es[] = {{.name = "index.js", .data = CONTENT_LONG, .method = 8}};
        zarchive *plain = zip_make(*state, "plain.zip", es, 1, ZOPTS());
        zarchive *commented = zip_make(*state, "commented.zip", es, 1, ZOPTS(.comment = "signgate-signature-v1\n{}"));
        sg_package *p = inspect_ok(plain, NULL, NULL);
        sg_package *q = inspect_ok(commented, NULL, NULL);

        assert_int_equal(commented->b.len, plain->b.len + strlen("signgate-signature-v1\n{}"));
        assert_memory_equal(q->digest, p->digest, SG_DIGEST_LEN);
        assert_int_equal(q->canonical_size, plain->b.len);
        assert_int_equal(q->canonical_size, p->canonical_size);
        assert_int_equal(q->file_size, commented->b.len);
        assert_int_equal(q->comment_len, strlen("signgate-signature-v1\n{}"));
        assert_string_equal(q->comment, "signgate-signature-v1\n{}");
        /* The digest is SHA-384 of the bytes before the comment length, then two zero bytes. */
        unsigned char *canon = malloc(commented->eocd + 22);
        assert_non_null(canon);
        memcpy(canon, commented->b.p, commented->eocd + 20);
        canon[commented->eocd + 20] = canon[commented->eocd + 21] = 0;
        assert_digest_of_bytes(q, canon, commented->eocd + 22);
        free(canon);
        pkg_free(p);
        pkg_free(q);
        zip_free(plain);
        zip_free(commented);
}

static void test_accepts_empty_archive_with_zero_entries(void **state) {
        zarchive *a = zip_make(*state, "empty.zip", NULL, 0, ZOPTS());
        sg_package *p = inspect_ok(a, NULL, NULL);
        assert_int_equal(a->b.len, 22);
        assert_int_equal(p->n_entries, 0);
        assert_digest_of_bytes(p, a->b.p, a->b.len);
        pkg_free(p);
        zip_free(a);
}

static void test_file_sha384_equals_direct_evp_hash(void **state) {
        fixture *f = *state;
        size_t n = 700 * 1024 + 13; /* several of the library's read chunks */
        unsigned char *buf = malloc(n), want[SG_DIGEST_LEN], got[SG_DIGEST_LEN];
        uint64_t size = 0;

        assert_non_null(buf);
        for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char) (i * 2654435761u >> 13);
        int fd = sg_test_write_file(f->dirfd, "blob.bin", buf, n);
        sha384(buf, n, want);
        assert_int_equal(sg_file_sha384(fd, got, &size), 0);
        assert_memory_equal(got, want, SG_DIGEST_LEN);
        assert_int_equal(size, n);
        close(fd);

        fd = sg_test_write_file(f->dirfd, "empty.bin", "", 0);
        sha384("", 0, want);
        assert_int_equal(sg_file_sha384(fd, got, &size), 0);
        assert_memory_equal(got, want, SG_DIGEST_LEN);
        assert_int_equal(size, 0);
        close(fd);
        free(buf);
}

static void test_normalises_extract_modes(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "private/", .mode = 040700},
                                        {.name = "private/owner-exec", .data = "1", .mode = 0100700},
                                        {.name = "private/group-exec", .data = "2", .mode = 0100650},
                                        {.name = "private/readonly", .data = "3", .mode = 0100400},
                                        {.name = "private/world", .data = "4", .mode = 0100666},
                                        {.name = "dos", .data = "5"}),
                               ZOPTS());
        static const unsigned want[] = {0755, 0755, 0755, 0644, 0644, 0644};
        sg_package *p = inspect_ok(a, NULL, NULL);

        assert_int_equal(p->n_entries, SG_ELEMENTSOF(want));
        for (size_t i = 0; i < SG_ELEMENTSOF(want); i++)
                if (p->entries[i].mode != want[i])
                        fail_msg("entry '%s' mode %o, want %o", p->entries[i].name, p->entries[i].mode, want[i]);
        pkg_free(p);
        zip_free(a);
}

static void test_accepts_utf8_flag_and_deflate_option_bits(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "caf\xc3\xa9.js", .data = CONTENT_LONG, .method = 8, .flags = 0x0800 | 0x0002}),
                               ZOPTS());
        sg_package *p = inspect_ok(a, NULL, NULL);
        assert_string_equal(p->entries[0].name, "caf\xc3\xa9.js");
        pkg_free(p);
        zip_free(a);
}

/* ---- the sink ---- */

static void test_sink_receives_entries_in_archive_order_with_exact_bytes(void **state) {
        /* The central directory lists the entries in another order than the local records:
         * archive order is the order of the bytes in the file. */
        static const int order[] = {2, 0, 1, 3};
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a.txt", .data = CONTENT_A},
                                        {.name = "d/", .mode = 040755},
                                        {.name = "d/b.js", .data = CONTENT_LONG, .method = 8, .mode = 0100755},
                                        {.name = "empty", .data = ""}),
                               ZOPTS(.central_order = order));
        recorder rec = {0};
        sg_package *p = inspect_ok(a, NULL, &rec);

        assert_string_equal(rec.log, "<f a.txt 644:" CONTENT_A "><d d 755:><f d/b.js 755:" CONTENT_LONG "><f empty 644:>");
        assert_string_equal(p->entries[0].name, "d/b.js"); /* entries stay in central-directory order */
        pkg_free(p);
        zip_free(a);
}

static void test_sink_receives_symlink_with_its_target_after_files(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "bin/", .mode = 040755},
                                        {.name = "bin/run", .data = "../lib/real", .mode = 0120777},
                                        {.name = "lib/", .mode = 040755},
                                        {.name = "lib/real", .data = CONTENT_A, .method = 8, .mode = 0100755}),
                               ZOPTS());
        recorder rec = {0};
        sg_package *p = inspect_ok(a, NULL, &rec);

        assert_string_equal(rec.log, "<d bin 755:><d lib 755:><f lib/real 755:" CONTENT_A ">@bin/run->../lib/real;");
        assert_int_equal(p->entries[1].type, SG_ENTRY_SYMLINK);
        assert_int_equal(p->entries[1].mode, 0777);
        assert_string_equal(p->entries[1].link_target, "../lib/real");
        pkg_free(p);
        zip_free(a);
}

static void test_sink_error_stops_inspection_and_is_returned(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "one", .data = "1111"}, {.name = "two", .data = "2222"},
                                        {.name = "three", .data = "3333"}),
                               ZOPTS());
        recorder rec = {.fail_at_begin = 2, .fail_errno = ENOSPC};
        sg_package_sink sink = {.userdata = &rec, .on_entry_begin = on_begin, .on_entry_data = on_data,
                                .on_entry_end = on_end, .on_symlink = on_link};
        sg_limits lim = default_limits();
        sg_package *p = NULL;
        sg_error err = {0};

        assert_int_equal(sg_package_inspect(a->fd, &lim, &sink, &p, &err), -ENOSPC);
        assert_null(p);
        assert_string_equal(rec.log, "<f one 644:1111>");
        assert_int_equal(rec.begins, 2);
        zip_free(a);
}

/* -EINVAL from inspect means "rejected, err set"; a sink that fails with -EINVAL (an extractor
 * refusing a name) must not pass for a rejection the caller then decides without facts. */
static void test_sink_einval_is_returned_as_an_io_error_not_a_rejection(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "one", .data = "1111"}), ZOPTS());
        recorder rec = {.fail_at_begin = 1, .fail_errno = EINVAL};
        sg_package_sink sink = {.userdata = &rec, .on_entry_begin = on_begin, .on_entry_data = on_data,
                                .on_entry_end = on_end, .on_symlink = on_link};
        sg_limits lim = default_limits();
        sg_package *p = NULL;
        sg_error err = {0};

        assert_int_equal(sg_package_inspect(a->fd, &lim, &sink, &p, &err), -EIO);
        assert_null(p);
        assert_int_equal(err.reason, SG_REASON_NONE);
        zip_free(a);
}

static int fail_data(void *u, const sg_entry *e, const void *buf, size_t n) {
        (void) u;
        (void) e;
        (void) buf;
        (void) n;
        return -EIO;
}

static void test_sink_data_error_is_returned(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "one", .data = CONTENT_LONG, .method = 8}), ZOPTS());
        sg_package_sink sink = {.on_entry_data = fail_data};
        sg_limits lim = default_limits();
        sg_package *p = NULL;
        sg_error err = {0};

        assert_int_equal(sg_package_inspect(a->fd, &lim, &sink, &p, &err), -EIO);
        assert_null(p);
        zip_free(a);
}

/* ---- data descriptors and Zip64 ---- */

/* ---- two lanes: a big archive is extracted by two threads ---- */

#define LANE_ENTRIES 8
#define LANE_ENTRY_BYTES (3u << 20) /* 8 × 3 MiB, deflated: over the two-lane threshold */

/* What every receiver saw, by entry index (names are "eN.bin"): shared by the lanes. */
typedef struct {
        pthread_mutex_t lock;
        uint32_t crc[LANE_ENTRIES];
        uint64_t bytes[LANE_ENTRIES];
        int ends[LANE_ENTRIES];
        int lanes_made, lanes_done;
} lane_log;

typedef struct {
        lane_log *log;
        int index;     /* the entry being received */
        uint32_t crc;
        uint64_t bytes;
} lane_rx;

static int lane_begin(void *u, const sg_entry *e) {
        lane_rx *rx = u;
        rx->index = atoi(e->name + 1);
        rx->crc = (uint32_t) crc32(0, NULL, 0);
        rx->bytes = 0;
        return 0;
}
static int lane_data(void *u, const sg_entry *e, const void *buf, size_t n) {
        lane_rx *rx = u;
        (void) e;
        rx->crc = (uint32_t) crc32_z(rx->crc, buf, n);
        rx->bytes += n;
        return 0;
}
static int lane_end(void *u, const sg_entry *e) {
        lane_rx *rx = u;
        (void) e;
        pthread_mutex_lock(&rx->log->lock);
        rx->log->crc[rx->index] = rx->crc;
        rx->log->bytes[rx->index] = rx->bytes;
        rx->log->ends[rx->index]++;
        pthread_mutex_unlock(&rx->log->lock);
        return 0;
}
static void *lane_make(void *u) {
        lane_rx *first = u, *rx = calloc(1, sizeof(*rx));
        if (rx) {
                rx->log = first->log;
                pthread_mutex_lock(&rx->log->lock);
                rx->log->lanes_made++;
                pthread_mutex_unlock(&rx->log->lock);
        }
        return rx;
}
static int lane_finish(void *u, void *lane) {
        lane_rx *first = u;
        pthread_mutex_lock(&first->log->lock);
        first->log->lanes_done++;
        pthread_mutex_unlock(&first->log->lock);
        free(lane);
        return 0;
}

/* Deterministic incompressible bytes (an LCG), so the archive is big on disk too. */
static char *lane_data_make(unsigned seed) {
        char *d = malloc(LANE_ENTRY_BYTES);
        assert_non_null(d);
        uint32_t x = seed * 2654435761u + 1;
        for (size_t i = 0; i < LANE_ENTRY_BYTES; i++) {
                x = x * 1664525u + 1013904223u;
                d[i] = (char) (x >> 24);
        }
        return d;
}

static zarchive *lane_archive(fixture *f, uint32_t crc_xor_first, uint32_t crc_xor_last, char *data[LANE_ENTRIES]) {
        static char names[LANE_ENTRIES][16];
        zentry es[LANE_ENTRIES];
        for (int i = 0; i < LANE_ENTRIES; i++) {
                snprintf(names[i], sizeof(names[i]), "e%d.bin", i);
                es[i] = (zentry){.name = names[i], .data = data[i], .data_len = LANE_ENTRY_BYTES, .method = 8,
                                 .crc_xor = i == 0 ? crc_xor_first : i == LANE_ENTRIES - 1 ? crc_xor_last : 0};
        }
        return zip_make(f, "lanes.zip", es, LANE_ENTRIES, ZOPTS());
}

static int lane_inspect(const zarchive *a, lane_log *log, sg_package **p, sg_error *err) {
        lane_rx first = {.log = log};
        sg_package_sink sink = {.userdata = &first, .on_entry_begin = lane_begin, .on_entry_data = lane_data,
                                .on_entry_end = lane_end, .lane_new = lane_make, .lane_done = lane_finish};
        sg_limits lim = default_limits();
        return sg_package_inspect(a->fd, &lim, &sink, p, err);
}

static void test_two_lanes_deliver_every_entry_once_and_the_digest_is_of_the_whole_file(void **state) {
        char *data[LANE_ENTRIES];
        for (int i = 0; i < LANE_ENTRIES; i++)
                data[i] = lane_data_make((unsigned) i);
        zarchive *a = lane_archive(*state, 0, 0, data);
        lane_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
        sg_package *p = NULL;
        sg_error err = {0};

        assert_int_equal(lane_inspect(a, &log, &p, &err), 0);
        assert_non_null(p);
        /* a second receiver was made and released: the pass did run in two lanes */
        assert_int_equal(log.lanes_made, 1);
        assert_int_equal(log.lanes_done, 1);
        for (int i = 0; i < LANE_ENTRIES; i++) {
                assert_int_equal(log.ends[i], 1);
                assert_int_equal(log.bytes[i], LANE_ENTRY_BYTES);
                assert_int_equal(log.crc[i], (uint32_t) crc32_z(crc32(0, NULL, 0), (const unsigned char *) data[i],
                                                                 LANE_ENTRY_BYTES));
        }
        assert_int_equal(p->inflated_total, (uint64_t) LANE_ENTRIES * LANE_ENTRY_BYTES);
        assert_digest_of_bytes(p, a->b.p, a->b.len);
        sg_package_free(p);
        /* and without a sink (offline verify) the same archive passes with the same digest */
        sg_package *q = inspect_ok(a, NULL, NULL);
        assert_digest_of_bytes(q, a->b.p, a->b.len);
        for (int i = 0; i < LANE_ENTRIES; i++)
                free(data[i]);
}

static void test_two_lanes_report_a_fault_in_the_second_lane(void **state) {
        char *data[LANE_ENTRIES];
        for (int i = 0; i < LANE_ENTRIES; i++)
                data[i] = lane_data_make((unsigned) i);
        zarchive *a = lane_archive(*state, 0, 0x1, data);
        lane_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
        sg_package *p = NULL;
        sg_error err = {0};

        assert_int_equal(lane_inspect(a, &log, &p, &err), -EINVAL);
        assert_null(p);
        assert_int_equal(err.reason, SG_REASON_MALFORMED);
        assert_non_null(strstr(err.msg, "e7.bin"));
        assert_non_null(strstr(err.msg, "CRC"));
        assert_int_equal(log.lanes_done, log.lanes_made);
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "e7.bin");
        for (int i = 0; i < LANE_ENTRIES; i++)
                free(data[i]);
}

/* Faults in both lanes: the first in archive order is the one reported, every time. */
static void test_two_lanes_report_the_first_lane_fault_when_both_fail(void **state) {
        char *data[LANE_ENTRIES];
        for (int i = 0; i < LANE_ENTRIES; i++)
                data[i] = lane_data_make((unsigned) i);
        zarchive *a = lane_archive(*state, 0x1, 0x1, data);
        for (int run = 0; run < 5; run++) {
                lane_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
                sg_package *p = NULL;
                sg_error err = {0};
                assert_int_equal(lane_inspect(a, &log, &p, &err), -EINVAL);
                assert_non_null(strstr(err.msg, "e0.bin"));
                assert_null(strstr(err.msg, "e7.bin"));
                assert_int_equal(log.lanes_done, log.lanes_made);
        }
        for (int i = 0; i < LANE_ENTRIES; i++)
                free(data[i]);
}

static void check_descriptor_accepted(fixture *f, int dd) {
        zarchive *a = zip_make(f, "dd.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_LONG, .method = 8, .descriptor = dd},
                                        {.name = "b.txt", .data = CONTENT_A, .descriptor = dd}),
                               ZOPTS());
        recorder rec = {0};
        sg_package *p = inspect_ok(a, NULL, &rec);
        static const size_t dd_len[] = {0, 12, 16, 20, 24};

        assert_string_equal(rec.log, "<f a.js 644:" CONTENT_LONG "><f b.txt 644:" CONTENT_A ">");
        assert_int_equal(p->entries[0].flags & FLAG_DESCRIPTOR, FLAG_DESCRIPTOR);
        assert_int_equal(p->entries[0].end_offset, p->entries[0].data_offset + p->entries[0].csize + dd_len[dd]);
        assert_int_equal(p->entries[0].end_offset, p->entries[1].local_offset);
        assert_int_equal(p->entries[0].crc, crc32(0, (const unsigned char *) CONTENT_LONG, strlen(CONTENT_LONG)));
        assert_digest_of_bytes(p, a->b.p, a->b.len);
        pkg_free(p);
        zip_free(a);
}

static void test_accepts_32bit_data_descriptor_without_signature(void **state) {
        check_descriptor_accepted(*state, DD_32);
}
static void test_accepts_32bit_data_descriptor_with_signature(void **state) {
        check_descriptor_accepted(*state, DD_32_SIG);
}
static void test_accepts_64bit_data_descriptor_without_signature(void **state) {
        check_descriptor_accepted(*state, DD_64);
}
static void test_accepts_64bit_data_descriptor_with_signature(void **state) {
        check_descriptor_accepted(*state, DD_64_SIG);
}

static void test_rejects_descriptor_flag_without_descriptor_as_malformed(void **state) {
        /* The flag says a descriptor follows, but the next local header does. */
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_A, .flags = FLAG_DESCRIPTOR},
                                        {.name = "b.js", .data = CONTENT_A}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "a.js");
        zip_free(a);
}

static void test_rejects_descriptor_disagreeing_with_central_directory_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_LONG, .method = 8, .descriptor = DD_32_SIG}),
                               ZOPTS());
        /* Descriptor: sig, crc, csize, usize right before the central directory. */
        size_t cd = a->eocd - (46 + strlen("a.js"));
        set32(&a->b, cd - 12, 0xdeadbeef);
        assert_int_equal(pwrite(a->fd, a->b.p, a->b.len, 0), (ssize_t) a->b.len);
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "a.js");
        zip_free(a);
}

static void test_accepts_zip64_end_records(void **state) {
        zarchive *a = zip_make(*state, "z64.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_LONG, .method = 8},
                                        {.name = "b.txt", .data = CONTENT_A}),
                               ZOPTS(.zip64 = true));
        recorder rec = {0};
        sg_package *p = inspect_ok(a, NULL, &rec);

        assert_true(p->zip64);
        assert_int_equal(p->n_entries, 2);
        assert_int_equal(p->eocd_offset, a->eocd);
        assert_int_equal(p->canonical_size, a->b.len);
        assert_string_equal(rec.log, "<f a.js 644:" CONTENT_LONG "><f b.txt 644:" CONTENT_A ">");
        assert_digest_of_bytes(p, a->b.p, a->b.len);
        pkg_free(p);
        zip_free(a);
}

static void test_rejects_zip64_record_disagreeing_with_eocd_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "z64.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}), ZOPTS(.zip64 = true));
        /* The 16-bit entry counts must be the marker or the Zip64 record's value. */
        a->b.p[a->eocd + 8] = 2;
        a->b.p[a->eocd + 9] = 0;
        a->b.p[a->eocd + 10] = 2;
        a->b.p[a->eocd + 11] = 0;
        assert_int_equal(pwrite(a->fd, a->b.p, a->b.len, 0), (ssize_t) a->b.len);
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, NULL);
        zip_free(a);
}

/* ---- MALFORMED: structure ---- */

static void test_rejects_file_without_eocd_as_malformed(void **state) {
        fixture *f = *state;
        zarchive *a = zip_make(f, "a.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}), ZOPTS());
        /* The archive without its last byte: no EOCD ends the file. */
        assert_int_equal(ftruncate(a->fd, (off_t) a->b.len - 1), 0);
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "not a ZIP");

        static const char text[] = "this is a text file, not an archive, and it is long enough\n";
        assert_int_equal(ftruncate(a->fd, 0), 0);
        assert_int_equal(pwrite(a->fd, text, sizeof(text) - 1, 0), (ssize_t) sizeof(text) - 1);
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "not a ZIP");

        assert_int_equal(ftruncate(a->fd, 5), 0);
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, NULL);
        zip_free(a);
}

static void test_rejects_two_eocd_candidates_as_malformed(void **state) {
        /* The comment is itself a 22-byte EOCD with an empty comment: both records end the file. */
        unsigned char fake[22] = {0x50, 0x4b, 0x05, 0x06};
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}),
                               ZOPTS(.comment = (const char *) fake, .comment_len = sizeof(fake)));
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "two end-of-central-directory");
        zip_free(a);
}

static void test_rejects_comment_length_lying_as_malformed(void **state) {
        zarchive *shorter = zip_make(*state, "s.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}),
                                     ZOPTS(.comment = "hello", .lie_comment_len = true, .comment_len_field = 3));
        zarchive *longer = zip_make(*state, "l.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}),
                                    ZOPTS(.comment = "hello", .lie_comment_len = true, .comment_len_field = 9));
        inspect_rejects(shorter, NULL, SG_REASON_MALFORMED, NULL);
        inspect_rejects(longer, NULL, SG_REASON_MALFORMED, NULL);
        zip_free(shorter);
        zip_free(longer);
}

static void test_rejects_prepended_bytes_as_malformed(void **state) {
        fixture *f = *state;
        /* Offsets that count the prefix (what `zip -A` makes of a self-extractor). */
        zarchive *a = zip_make(f, "a.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}), ZOPTS(.prepend = 16));
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "a.js");
        zip_free(a);

        /* Offsets that do not (`cat stub archive`). */
        zarchive *b = zip_make(f, "b.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}), ZOPTS());
        unsigned char *shifted = malloc(b->b.len + 16);
        assert_non_null(shifted);
        memset(shifted, 'J', 16);
        memcpy(shifted + 16, b->b.p, b->b.len);
        assert_int_equal(pwrite(b->fd, shifted, b->b.len + 16, 0), (ssize_t) b->b.len + 16);
        inspect_rejects(b, NULL, SG_REASON_MALFORMED, NULL);
        free(shifted);
        zip_free(b);
}

static void test_rejects_gap_between_entries_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_A}, {.name = "b.js", .data = CONTENT_A, .gap_before = 4}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "a.js");
        zip_free(a);
}

static void test_rejects_central_directory_not_ending_at_eocd_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}), ZOPTS(.gap_before_eocd = 8));
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "central directory");
        zip_free(a);
}

static void test_rejects_local_central_name_mismatch_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "good.js", .local_name = "evil.js", .data = CONTENT_A}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "good.js");
        zip_free(a);
}

static void test_rejects_crc_mismatch_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "ok.js", .data = CONTENT_A},
                                        {.name = "bad.js", .data = CONTENT_LONG, .method = 8, .crc_xor = 1}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "bad.js");
        zip_free(a);
}

static void test_rejects_stored_crc_mismatch_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "bad.txt", .data = CONTENT_A, .crc_xor = 0x80000000u}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "bad.txt");
        zip_free(a);
}

static void test_rejects_declared_size_larger_than_inflated_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "lie.js", .data = CONTENT_LONG, .method = 8, .usize_delta = 1}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "lie.js");
        zip_free(a);
}

static void test_rejects_declared_size_smaller_than_inflated_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "lie.js", .data = CONTENT_LONG, .method = 8, .usize_delta = -1}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "lie.js");
        zip_free(a);
}

static void test_rejects_stored_size_lie_as_malformed(void **state) {
        /* Stored: csize must equal usize. */
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "lie.txt", .data = CONTENT_A, .usize_delta = 5}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "lie.txt");
        zip_free(a);
}

static void test_rejects_truncated_deflate_stream_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "cut.js", .data = CONTENT_LONG, .method = 8, .csize_cut = 3}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "cut.js");
        zip_free(a);
}

static void test_rejects_unknown_flag_bit_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "odd.js", .data = CONTENT_A, .flags = 0x0010}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "odd.js");
        zip_free(a);
}

static void test_rejects_directory_with_data_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "dir/", .data = "x", .mode = 040755}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "dir");
        zip_free(a);
}

static void test_rejects_directory_without_mode_but_with_data_as_malformed(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "dir/", .data = "content"}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "dir");
        zip_free(a);
}

/* ---- LIMIT_EXCEEDED ---- */

static void test_rejects_package_over_byte_limit(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "a.js", .data = CONTENT_A}), ZOPTS());
        sg_limits lim = default_limits();

        lim.package_bytes = a->b.len - 1;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, NULL);
        lim.package_bytes = a->b.len;
        pkg_free(inspect_ok(a, &lim, NULL));
        zip_free(a);
}

static void test_rejects_inflated_total_over_limit(void **state) {
        /* Two entries, each under the limit, together over it. */
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_LONG, .method = 8},
                                        {.name = "b.js", .data = CONTENT_LONG, .method = 8}),
                               ZOPTS());
        sg_limits lim = default_limits();

        lim.inflated_bytes = 2 * strlen(CONTENT_LONG) - 1;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, NULL);
        lim.inflated_bytes = 2 * strlen(CONTENT_LONG);
        pkg_free(inspect_ok(a, &lim, NULL));
        zip_free(a);
}

static void test_rejects_entry_count_over_limit(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a", .data = "1"}, {.name = "b", .data = "2"}, {.name = "c", .data = "3"}),
                               ZOPTS());
        sg_limits lim = default_limits();

        lim.entries = 2;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, NULL);
        lim.entries = 3;
        pkg_free(inspect_ok(a, &lim, NULL));
        zip_free(a);
}

static void test_rejects_name_over_length_limit(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "short", .data = "1"}, {.name = "longername", .data = "2"}),
                               ZOPTS());
        sg_limits lim = default_limits();

        lim.name_bytes = 9;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, "longername");
        lim.name_bytes = 10;
        pkg_free(inspect_ok(a, &lim, NULL));
        zip_free(a);
}

/* A component no filesystem can hold would pass the checks and then fail extraction on every
 * try; 255 bytes (NAME_MAX) still passes, in a file's name and in a directory's. */
static void test_rejects_name_component_over_255_bytes(void **state) {
        char file256[257], dir256[260], ok[600];
        memset(file256, 'f', 256);
        file256[256] = '\0';
        memset(dir256, 'd', 256);
        memcpy(dir256 + 256, "/x", 3);
        memset(ok, 'd', 255);
        ok[255] = '/';
        memset(ok + 256, 'f', 255);
        ok[511] = '\0';
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "index.js", .data = "1"}, {.name = file256, .data = "2"}),
                               ZOPTS());
        zarchive *b = zip_make(*state, "b.zip", ZENTRIES({.name = dir256, .data = "1"}), ZOPTS());
        zarchive *c = zip_make(*state, "c.zip", ZENTRIES({.name = ok, .data = "1"}), ZOPTS());

        inspect_rejects(a, NULL, SG_REASON_LIMIT_EXCEEDED, "256-byte component");
        inspect_rejects(b, NULL, SG_REASON_LIMIT_EXCEEDED, "256-byte component");
        pkg_free(inspect_ok(c, NULL, NULL));
        zip_free(a);
        zip_free(b);
        zip_free(c);
}

static void test_rejects_name_over_depth_limit(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "a/b/c/d.js", .data = "1"}), ZOPTS());
        sg_limits lim = default_limits();

        lim.depth = 3;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, "a/b/c/d.js");
        lim.depth = 4;
        pkg_free(inspect_ok(a, &lim, NULL));
        zip_free(a);
}

/* DESIGN §5: the checks run in order, so an archive with a LIMIT and an UNSAFE problem is
 * LIMIT_EXCEEDED, whichever entry comes first. */
static void test_reports_name_limit_before_unsafe_name(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "../evil", .data = "1"}, {.name = "averylongname.js", .data = "2"}),
                               ZOPTS());
        sg_limits lim = default_limits();
        lim.name_bytes = 10;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, "averylongname.js");
        zip_free(a);
}

static void test_reports_depth_limit_before_symlink_escape(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "up", .data = "../../etc", .mode = 0120777}, {.name = "a/b/c/d", .data = "2"}),
                               ZOPTS());
        sg_limits lim = default_limits();
        lim.depth = 2;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, "a/b/c/d");
        zip_free(a);
}

static void test_reports_entry_limit_before_duplicate_names(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a", .data = "1"}, {.name = "A", .data = "2"}, {.name = "b", .data = "3"}),
                               ZOPTS());
        sg_limits lim = default_limits();
        lim.entries = 2;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, NULL);
        zip_free(a);
}

static void test_reports_inflated_limit_before_unsafe_name(void **state) {
        /* The inflated total is known only after the streaming pass, the absolute name before
         * it: the reason must not depend on which check happens to run first in the code. */
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "/etc/cron.d/x", .data = "1"},
                                        {.name = "big.js", .data = CONTENT_LONG, .method = 8}),
                               ZOPTS());
        sg_limits lim = default_limits();
        lim.inflated_bytes = 100;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, NULL);
        zip_free(a);
}

static void test_reports_inflated_limit_before_symlink_escape(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "out", .data = "../../../etc/passwd", .mode = 0120777},
                                        {.name = "big.js", .data = CONTENT_LONG, .method = 8}),
                               ZOPTS());
        sg_limits lim = default_limits();
        lim.inflated_bytes = 100;
        inspect_rejects(a, &lim, SG_REASON_LIMIT_EXCEEDED, NULL);
        zip_free(a);
}

static void test_reports_crc_mismatch_before_unsafe_name(void **state) {
        /* MALFORMED comes before UNSAFE_CONTENT in DESIGN §5 as well. */
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "../evil.js", .data = "1"},
                                        {.name = "bad.js", .data = CONTENT_LONG, .method = 8, .crc_xor = 1}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_MALFORMED, "bad.js");
        zip_free(a);
}

/* ---- UNSAFE_CONTENT ---- */

static void check_unsafe_name(fixture *f, const char *name, size_t name_len, const char *shown) {
        zentry es[] = {{.name = "ok.js", .data = CONTENT_A}, {.name = name, .name_len = name_len, .data = "x"}};
        zarchive *a = zip_make(f, "a.zip", es, SG_ELEMENTSOF(es), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, shown);
        zip_free(a);
}

static void test_rejects_dotdot_components_as_unsafe(void **state) {
        check_unsafe_name(*state, "../evil.js", 0, "../evil.js");
        check_unsafe_name(*state, "a/../../evil.js", 0, "a/../../evil.js");
        check_unsafe_name(*state, "a/..", 0, "a/..");
        check_unsafe_name(*state, "a/./b", 0, "a/./b");
        check_unsafe_name(*state, "a//b", 0, "a//b");
}

static void test_rejects_absolute_names_as_unsafe(void **state) {
        check_unsafe_name(*state, "/etc/passwd", 0, "/etc/passwd");
        check_unsafe_name(*state, "C:/evil.js", 0, "C:/evil.js");
}

static void test_rejects_backslash_in_name_as_unsafe(void **state) {
        check_unsafe_name(*state, "..\\evil.js", 0, "evil.js");
        check_unsafe_name(*state, "dir\\file", 0, "dir");
}

static void test_rejects_nul_in_name_as_unsafe(void **state) {
        check_unsafe_name(*state, "good.js\0/../../evil", 19, "good.js");
}

static void test_rejects_duplicate_names_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "index.js", .data = "1"}, {.name = "index.js", .data = "2"}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "index.js");
        zip_free(a);
}

static void test_rejects_case_duplicate_names_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "lib/Index.js", .data = "1"}, {.name = "LIB/index.JS", .data = "2"}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "Index.js");
        zip_free(a);
}

static void test_rejects_file_and_directory_of_same_name_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "node_modules", .data = "1"}, {.name = "node_modules/", .mode = 040755}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "node_modules");
        zip_free(a);
}

static void test_rejects_file_used_as_parent_directory_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "lib", .data = "1"}, {.name = "lib/x.js", .data = "2"}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "lib/x.js");
        zip_free(a);
}

static void test_rejects_overlapping_entries_as_unsafe(void **state) {
        /* Two central entries, one local record: the classic overlap bomb. */
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "a.js", .data = CONTENT_LONG, .method = 8}, {.name = "b.js", .alias_of = 1}),
                               ZOPTS());
        sg_error err = inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "b.js");
        if (!strstr(err.msg, "overlap"))
                fail_msg("message '%s' does not say the entries overlap", err.msg);
        zip_free(a);
}

static void test_rejects_encrypted_entry_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "ok.js", .data = "1"}, {.name = "secret.js", .data = CONTENT_A, .flags = FLAG_ENCRYPTED}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "secret.js");
        zip_free(a);
}

static void test_rejects_compression_method_12_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "bz.js", .data = CONTENT_A, .method = 12}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "bz.js");
        zip_free(a);
}

static void test_rejects_setuid_file_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "su", .data = CONTENT_A, .mode = 0104755}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "su");
        zip_free(a);
}

static void test_rejects_setgid_and_sticky_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "sg", .data = CONTENT_A, .mode = 0102755}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "sg");
        zip_free(a);
        zarchive *b = zip_make(*state, "b.zip", ZENTRIES({.name = "tmp/", .mode = 041777}), ZOPTS());
        inspect_rejects(b, NULL, SG_REASON_UNSAFE_CONTENT, "tmp");
        zip_free(b);
}

static void test_rejects_fifo_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "pipe", .mode = 0010644}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "pipe");
        zip_free(a);
}

static void test_rejects_device_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "dev", .mode = 0060600}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "dev");
        zip_free(a);
}

static void test_rejects_symlink_escaping_root_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "sub/", .mode = 040755}, {.name = "sub/up", .data = "../../etc/passwd", .mode = 0120777}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "sub/up");
        zip_free(a);
}

static void test_rejects_absolute_symlink_target_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip", ZENTRIES({.name = "abs", .data = "/etc/passwd", .mode = 0120777}), ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "abs");
        zip_free(a);
}

static void test_rejects_chained_symlink_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "first", .data = "second", .mode = 0120777},
                                        {.name = "second", .data = "real.js", .mode = 0120777},
                                        {.name = "real.js", .data = CONTENT_A}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "first");
        zip_free(a);
}

static void test_rejects_symlink_used_as_directory_as_unsafe(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "d/", .mode = 040755}, {.name = "link", .data = "d", .mode = 0120777},
                                        {.name = "link/x.js", .data = CONTENT_A}),
                               ZOPTS());
        inspect_rejects(a, NULL, SG_REASON_UNSAFE_CONTENT, "link/x.js");
        zip_free(a);
}

static void test_unsafe_rejection_delivers_no_symlink_to_sink(void **state) {
        zarchive *a = zip_make(*state, "a.zip",
                               ZENTRIES({.name = "ok", .data = "x.js", .mode = 0120777},
                                        {.name = "x.js", .data = CONTENT_A},
                                        {.name = "bad", .data = "../x", .mode = 0120777}),
                               ZOPTS());
        recorder rec = {0};
        sg_package_sink sink = {.userdata = &rec, .on_entry_begin = on_begin, .on_entry_data = on_data,
                                .on_entry_end = on_end, .on_symlink = on_link};
        sg_limits lim = default_limits();
        sg_package *p = NULL;
        sg_error err = {0};

        assert_int_equal(sg_package_inspect(a->fd, &lim, &sink, &p, &err), -EINVAL);
        assert_int_equal(err.reason, SG_REASON_UNSAFE_CONTENT);
        assert_null(strchr(rec.log, '@'));
        zip_free(a);
}

int main(int argc, char **argv) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup_tmp, teardown_tmp)
        const struct CMUnitTest tests[] = {
                T(test_two_lanes_deliver_every_entry_once_and_the_digest_is_of_the_whole_file),
                T(test_two_lanes_report_a_fault_in_the_second_lane),
                T(test_two_lanes_report_the_first_lane_fault_when_both_fail),
                T(test_accepts_minimal_stored_archive_with_digest_of_whole_file),
                T(test_accepts_deflated_archive_with_digest_of_whole_file),
                T(test_digest_ignores_comment_and_canonical_size_is_unchanged),
                T(test_accepts_empty_archive_with_zero_entries),
                T(test_file_sha384_equals_direct_evp_hash),
                T(test_normalises_extract_modes),
                T(test_accepts_utf8_flag_and_deflate_option_bits),
                T(test_sink_receives_entries_in_archive_order_with_exact_bytes),
                T(test_sink_receives_symlink_with_its_target_after_files),
                T(test_sink_error_stops_inspection_and_is_returned),
                T(test_sink_einval_is_returned_as_an_io_error_not_a_rejection),
                T(test_sink_data_error_is_returned),
                T(test_accepts_32bit_data_descriptor_without_signature),
                T(test_accepts_32bit_data_descriptor_with_signature),
                T(test_accepts_64bit_data_descriptor_without_signature),
                T(test_accepts_64bit_data_descriptor_with_signature),
                T(test_rejects_descriptor_flag_without_descriptor_as_malformed),
                T(test_rejects_descriptor_disagreeing_with_central_directory_as_malformed),
                T(test_accepts_zip64_end_records),
                T(test_rejects_zip64_record_disagreeing_with_eocd_as_malformed),
                T(test_rejects_file_without_eocd_as_malformed),
                T(test_rejects_two_eocd_candidates_as_malformed),
                T(test_rejects_comment_length_lying_as_malformed),
                T(test_rejects_prepended_bytes_as_malformed),
                T(test_rejects_gap_between_entries_as_malformed),
                T(test_rejects_central_directory_not_ending_at_eocd_as_malformed),
                T(test_rejects_local_central_name_mismatch_as_malformed),
                T(test_rejects_crc_mismatch_as_malformed),
                T(test_rejects_stored_crc_mismatch_as_malformed),
                T(test_rejects_declared_size_larger_than_inflated_as_malformed),
                T(test_rejects_declared_size_smaller_than_inflated_as_malformed),
                T(test_rejects_stored_size_lie_as_malformed),
                T(test_rejects_truncated_deflate_stream_as_malformed),
                T(test_rejects_unknown_flag_bit_as_malformed),
                T(test_rejects_directory_with_data_as_malformed),
                T(test_rejects_directory_without_mode_but_with_data_as_malformed),
                T(test_rejects_package_over_byte_limit),
                T(test_rejects_inflated_total_over_limit),
                T(test_rejects_entry_count_over_limit),
                T(test_rejects_name_over_length_limit),
                T(test_rejects_name_component_over_255_bytes),
                T(test_rejects_name_over_depth_limit),
                T(test_reports_name_limit_before_unsafe_name),
                T(test_reports_depth_limit_before_symlink_escape),
                T(test_reports_entry_limit_before_duplicate_names),
                T(test_reports_inflated_limit_before_unsafe_name),
                T(test_reports_inflated_limit_before_symlink_escape),
                T(test_reports_crc_mismatch_before_unsafe_name),
                T(test_rejects_dotdot_components_as_unsafe),
                T(test_rejects_absolute_names_as_unsafe),
                T(test_rejects_backslash_in_name_as_unsafe),
                T(test_rejects_nul_in_name_as_unsafe),
                T(test_rejects_duplicate_names_as_unsafe),
                T(test_rejects_case_duplicate_names_as_unsafe),
                T(test_rejects_file_and_directory_of_same_name_as_unsafe),
                T(test_rejects_file_used_as_parent_directory_as_unsafe),
                T(test_rejects_overlapping_entries_as_unsafe),
                T(test_rejects_encrypted_entry_as_unsafe),
                T(test_rejects_compression_method_12_as_unsafe),
                T(test_rejects_setuid_file_as_unsafe),
                T(test_rejects_setgid_and_sticky_as_unsafe),
                T(test_rejects_fifo_as_unsafe),
                T(test_rejects_device_as_unsafe),
                T(test_rejects_symlink_escaping_root_as_unsafe),
                T(test_rejects_absolute_symlink_target_as_unsafe),
                T(test_rejects_chained_symlink_as_unsafe),
                T(test_rejects_symlink_used_as_directory_as_unsafe),
                T(test_unsafe_rejection_delivers_no_symlink_to_sink),
        };
#undef T
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
