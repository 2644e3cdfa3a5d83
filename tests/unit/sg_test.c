/* sg_test.c — the shared unit-test support declared in sg_test.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_common.h"
#include "sg_test.h"

/* ---- temp directories ---- */

int sg_test_tmpdir_create(const char *prefix, char **ret_path, int *ret_dirfd) {
        const char *base = getenv("SIGNGATE_TEST_TMP");
        char *path = NULL;
        int r;

        if (!base || !*base)
                base = "/tmp";
        /* $SIGNGATE_TEST_TMP lives in the build tree and does not exist before the first run. */
        r = sg_mkdir_p(base, 0755);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/%s-XXXXXX", base, prefix) < 0)
                return -ENOMEM;
        if (!mkdtemp(path)) {
                r = -errno;
                free(path);
                return r;
        }
        if (ret_dirfd) {
                int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        (void) rmdir(path);
                        free(path);
                        return r;
                }
                *ret_dirfd = fd;
        }
        *ret_path = path;
        return 0;
}

int sg_test_tmpdir_remove(char *path, int dirfd) {
        int r = 0;

        if (dirfd >= 0)
                close(dirfd);
        if (path)
                r = sg_test_rm_tree(path);
        free(path);
        return r;
}

int sg_test_tmpdir_setup(void **state, const char *prefix) {
        sg_test_tmpdir *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        r = sg_test_tmpdir_create(prefix, &t->dir, &t->dirfd);
        if (r < 0) {
                free(t);
                return r;
        }
        *state = t;
        return 0;
}

int sg_test_tmpdir_teardown(void **state) {
        sg_test_tmpdir *t = *state;
        int r = sg_test_tmpdir_remove(t->dir, t->dirfd);

        free(t);
        return r;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void) sb;
        (void) flag;
        (void) ftw;
        /* remove() picks rmdir() or unlink(); FTW_DEPTH has already emptied a directory. */
        return remove(path);
}

int sg_test_rm_tree(const char *path) {
        if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0) {
                int r = -errno;
                print_error("cannot remove %s: %s\n", path, strerror(-r));
                return r;
        }
        return 0;
}

int sg_test_write_file(int dirfd, const char *name, const void *p, size_t n) {
        int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, p, n, 0), (ssize_t) n);
        return fd;
}

/* ---- a growable byte buffer ---- */

void sg_test_buf_put(sg_test_buf *b, const void *src, size_t n) {
        if (b->len + n > b->cap) {
                b->cap = (b->len + n) * 2 + 64;
                b->p = realloc(b->p, b->cap);
                assert_non_null(b->p);
        }
        /* memcpy() with a NULL pointer is undefined even for n == 0, and p is NULL until the first
         * put that has bytes. */
        if (n)
                memcpy(b->p + b->len, src, n);
        b->len += n;
}

void sg_test_buf_put16(sg_test_buf *b, uint32_t v) {
        unsigned char x[2] = {(unsigned char) v, (unsigned char) (v >> 8)};
        sg_test_buf_put(b, x, 2);
}

void sg_test_buf_put32(sg_test_buf *b, uint32_t v) {
        unsigned char x[4] = {(unsigned char) v, (unsigned char) (v >> 8), (unsigned char) (v >> 16),
                              (unsigned char) (v >> 24)};
        sg_test_buf_put(b, x, 4);
}

void sg_test_buf_put64(sg_test_buf *b, uint64_t v) {
        sg_test_buf_put32(b, (uint32_t) v);
        sg_test_buf_put32(b, (uint32_t) (v >> 32));
}

void sg_test_buf_free(sg_test_buf *b) {
        free(b->p);
        *b = (sg_test_buf){0};
}
