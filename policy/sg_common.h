/* sg_common.h — the vocabulary every signgate module shares.
 *
 * Contract: every function here returns 0 on success or a negative errno; out-parameters
 * named ret* are written only on success. Nothing here logs or exits: callers decide how
 * to report. */
#ifndef SG_COMMON_H
#define SG_COMMON_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* Reason codes of DESIGN §5, in the order the checks run. Spelled exactly as in DESIGN. */
typedef enum {
        SG_REASON_NONE = 0,
        SG_REASON_MALFORMED,
        SG_REASON_LIMIT_EXCEEDED,
        SG_REASON_UNSAFE_CONTENT,
        SG_REASON_INTEGRITY,
        SG_REASON_UNKNOWN_FUNCTION,
        SG_REASON_UNSIGNED,
        SG_REASON_UNTRUSTED_PUBLISHER,
        SG_REASON_EXPIRED,
        SG_REASON_NOT_YET_VALID,
        SG_REASON_REVOKED,
        SG_REASON_INTERNAL,
        SG_REASON_MAX_,
} sg_reason;

const char *sg_reason_name(sg_reason r);
/* Returns the reason for an exact DESIGN spelling, or SG_REASON_NONE. */
sg_reason sg_reason_from_name(const char *name);
/* True for the reasons a Warn policy lets through (DESIGN §5). */
bool sg_reason_overridable(sg_reason r);

/* A failure with detail: which reason it maps to and one human sentence (no trailing period
 * needed; callers print it as is). Library code fills it, the program's top level reports it. */
typedef struct {
        sg_reason reason;
        char msg[512];
} sg_error;

/* Sets e (if not NULL) and returns -EINVAL, so a check can read `return sg_error_set(...)`. */
int sg_error_set(sg_error *e, sg_reason reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define SG_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Cleanup helpers: `_cleanup_(sg_freep) char *s = NULL;` runs free(s) at scope exit. */
#define _cleanup_(f) __attribute__((cleanup(f)))
static inline void sg_freep(void *p) { free(*(void **)p); }
static inline void sg_closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
/* Hands ownership out of a _cleanup_ variable. */
#define SG_TAKE_PTR(p)                          \
        ({                                      \
                __typeof__(p) take_ptr_ = (p);  \
                (p) = NULL;                     \
                take_ptr_;                      \
        })
#define SG_TAKE_FD(fd)                          \
        ({                                      \
                int take_fd_ = (fd);            \
                (fd) = -1;                      \
                take_fd_;                       \
        })

/* Checked conversion of a whole decimal string into [min, max]; -EINVAL or -ERANGE. */
int sg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Names (DESIGN §3). Functions and layers: [A-Za-z0-9_-]{1,64}. Signing profiles (as AWS
 * Signer): [A-Za-z0-9_]{2,64}. Profile versions: 10 chars of lowercase base32. */
bool sg_name_valid(const char *s);
bool sg_profile_name_valid(const char *s);
bool sg_profile_version_valid(const char *s);
/* Lowercase canonical UUID text, 36 chars. */
bool sg_uuid_valid(const char *s);
int sg_uuid_new(char ret[37]);
/* A CSC id: "csc-" + 17 lowercase hex. */
bool sg_csc_id_valid(const char *s);

/* Time is seconds since the epoch, UTC. RFC 3339 output is always "YYYY-MM-DDTHH:MM:SSZ". */
#define SG_TIME_LEN 20
int sg_time_format(int64_t t, char ret[SG_TIME_LEN + 1]);
/* Accepts "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)"; fractions are dropped. */
int sg_time_parse(const char *s, int64_t *ret);
int64_t sg_time_now(void);

typedef enum { SG_PERIOD_DAYS, SG_PERIOD_MONTHS, SG_PERIOD_YEARS } sg_period_unit;
#define SG_VALIDITY_MAX_MONTHS 135
const char *sg_period_unit_name(sg_period_unit u);
int sg_period_unit_from_name(const char *s, sg_period_unit *ret);
/* t + value units, calendar-aware (months clamp to the last day of the month). */
int sg_time_add_period(int64_t t, uint32_t value, sg_period_unit unit, int64_t *ret);
/* Whether value units fit within AWS's 135-month maximum. */
bool sg_period_valid(uint32_t value, sg_period_unit unit);

/* Encodings. Decoders are strict: exact alphabet, exact padding, no whitespace. */
void sg_hex_encode(const unsigned char *in, size_t n, char *out /* 2n+1 */);
int sg_hex_decode(const char *in, unsigned char *out, size_t n /* exact bytes */);
/* Returns a malloc'd NUL-terminated string. */
char *sg_base64_encode(const unsigned char *in, size_t n);
int sg_base64_decode(const char *in, size_t in_len, unsigned char **ret, size_t *ret_len);
/* RFC 4648 base32, lowercase, no padding; out must hold (8n+4)/5+1 chars. */
void sg_base32_encode_lower(const unsigned char *in, size_t n, char *out);

/* Files. Every open here is O_CLOEXEC and refuses a symlink in the last component. */

/* Writes buf to dirfd/name atomically: a temp file in the same directory, fsync, rename,
 * fsync of the directory. A reader sees the old file or the whole new one, never a part. */
int sg_write_file_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode);
/* The same, but the name must not exist yet: -EEXIST leaves an existing file (or symlink)
 * untouched. For files that must never be replaced, such as private keys. */
int sg_write_file_new(int dirfd, const char *name, const void *buf, size_t len, mode_t mode);
int sg_fsync_dir(int dirfd);
/* Reads a whole regular file of at most max bytes; the result is NUL-terminated. -EFBIG
 * over max, -EINVAL not a regular file. */
int sg_read_file(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);
/* Opens dirfd/path (".", or a name that must not be a symlink) as a DIR stream; 0 or -errno.
 * The stream owns its own descriptor: closedir() it. */
int sg_opendirat(int dirfd, const char *path, DIR **ret);
/* mkdir -p with mode for each created component; existing directories are left as they are. */
int sg_mkdir_p(const char *path, mode_t mode);
/* Writes all n bytes or fails. */
int sg_write_all(int fd, const void *buf, size_t n);
/* Reads exactly n bytes at off or fails (-EIO on a short file). */
int sg_pread_all(int fd, void *buf, size_t n, uint64_t off);

#endif
