/* sg_test.h — support shared by the cmocka unit tests under tests/unit/, built once as the
 * static library signgate_testsupport and linked into every unit-test executable.
 *
 * It holds only scaffolding that several test files would otherwise copy: a private temp directory
 * per test, recursive removal, and a growable byte buffer for writing binary formats (ZIP records)
 * field by field. Nothing here knows what a test checks; expected values stay in the tests.
 *
 * Functions that cannot go on without their result (allocation, writing a test file) fail the
 * running test through cmocka. The temp-directory functions return -errno instead, because they
 * run in cmocka setup and teardown functions, which report failure by return value. */
#ifndef SG_TEST_H
#define SG_TEST_H

#include <stddef.h>
#include <stdint.h>

/* ---- temp directories ---- */

/* Makes a fresh directory "<base>/<prefix>-XXXXXX" with mkdtemp(), where base is
 * $SIGNGATE_TEST_TMP (ctest points it into the build tree) or, when unset or empty, /tmp; base is
 * created first if missing. Stores the malloc()ed path in *ret_path and, unless ret_dirfd is NULL,
 * an O_DIRECTORY fd on it in *ret_dirfd. Returns 0, or -errno with nothing left behind and
 * *ret_path / *ret_dirfd untouched. */
int sg_test_tmpdir_create(const char *prefix, char **ret_path, int *ret_dirfd);

/* Undoes sg_test_tmpdir_create(): closes dirfd (if >= 0), removes the tree at path and frees path.
 * A NULL path is a no-op, so a teardown may run after a setup that failed early. Returns 0, or
 * -errno if the tree could not be removed (which fails a cmocka teardown). */
int sg_test_tmpdir_remove(char *path, int dirfd);

/* The whole cmocka fixture for tests that need nothing but a temp directory: setup stores a
 * calloc()ed sg_test_tmpdir made by sg_test_tmpdir_create() in *state, teardown undoes it. Both
 * return 0 or -errno, as cmocka wants. Wrap them in the test file to supply its prefix. */
typedef struct {
        char *dir;
        int dirfd;
} sg_test_tmpdir;
int sg_test_tmpdir_setup(void **state, const char *prefix);
int sg_test_tmpdir_teardown(void **state);

/* Removes path and everything below it, without following symlinks. Returns 0, or -errno after
 * printing which path could not be removed. */
int sg_test_rm_tree(const char *path);

/* Writes n bytes to name below dirfd (created or truncated, mode 0600) and returns an O_RDWR fd on
 * it, so a test can hand the file to the code under test or rewrite it in place. */
int sg_test_write_file(int dirfd, const char *name, const void *p, size_t n);

/* ---- a growable byte buffer, little-endian ---- */

typedef struct {
        unsigned char *p; /* NULL until the first put */
        size_t len, cap;
} sg_test_buf;

/* Appends n bytes (n may be 0). */
void sg_test_buf_put(sg_test_buf *b, const void *src, size_t n);
/* Append the low 16 / all 32 / all 64 bits of v, least significant byte first, as ZIP wants. */
void sg_test_buf_put16(sg_test_buf *b, uint32_t v);
void sg_test_buf_put32(sg_test_buf *b, uint32_t v);
void sg_test_buf_put64(sg_test_buf *b, uint64_t v);
/* Frees the bytes and leaves b empty, ready for reuse. */
void sg_test_buf_free(sg_test_buf *b);

#endif
