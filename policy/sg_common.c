#include "sg_common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/rand.h>

static const char *const reason_names[SG_REASON_MAX_] = {
        [SG_REASON_NONE] = "NONE",
        [SG_REASON_MALFORMED] = "MALFORMED",
        [SG_REASON_LIMIT_EXCEEDED] = "LIMIT_EXCEEDED",
        [SG_REASON_UNSAFE_CONTENT] = "UNSAFE_CONTENT",
        [SG_REASON_INTEGRITY] = "INTEGRITY",
        [SG_REASON_UNKNOWN_FUNCTION] = "UNKNOWN_FUNCTION",
        [SG_REASON_UNSIGNED] = "UNSIGNED",
        [SG_REASON_UNTRUSTED_PUBLISHER] = "UNTRUSTED_PUBLISHER",
        [SG_REASON_EXPIRED] = "EXPIRED",
        [SG_REASON_NOT_YET_VALID] = "NOT_YET_VALID",
        [SG_REASON_REVOKED] = "REVOKED",
        [SG_REASON_INTERNAL] = "INTERNAL",
};

const char *sg_reason_name(sg_reason r) {
        if ((unsigned) r >= SG_REASON_MAX_)
                return "INTERNAL";
        return reason_names[r];
}

sg_reason sg_reason_from_name(const char *name) {
        for (int r = SG_REASON_MALFORMED; r < SG_REASON_MAX_; r++)
                if (strcmp(reason_names[r], name) == 0)
                        return (sg_reason) r;
        return SG_REASON_NONE;
}

bool sg_reason_overridable(sg_reason r) {
        switch (r) {
        case SG_REASON_UNSIGNED:
        case SG_REASON_UNTRUSTED_PUBLISHER:
        case SG_REASON_EXPIRED:
        case SG_REASON_NOT_YET_VALID:
        case SG_REASON_REVOKED:
                return true;
        default:
                return false;
        }
}

int sg_error_set(sg_error *e, sg_reason reason, const char *fmt, ...) {
        if (e) {
                va_list ap;
                e->reason = reason;
                va_start(ap, fmt);
                /* Truncation only shortens a human message; it cannot change a decision. */
                (void) vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

int sg_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static bool all_chars(const char *s, size_t min, size_t max, const char *extra) {
        size_t n = 0;

        if (!s)
                return false;
        for (const char *p = s; *p; p++, n++) {
                unsigned char c = (unsigned char) *p;
                if (n >= max)
                        return false;
                if (!(isascii(c) && isalnum(c)) && !strchr(extra, c))
                        return false;
        }
        return n >= min;
}

bool sg_name_valid(const char *s) { return all_chars(s, 1, 64, "_-"); }

bool sg_profile_name_valid(const char *s) { return all_chars(s, 2, 64, "_"); }

bool sg_profile_version_valid(const char *s) {
        if (!s || strlen(s) != 10)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '2' && *p <= '7')))
                        return false;
        return true;
}

static bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool sg_uuid_valid(const char *s) {
        if (!s || strlen(s) != 36)
                return false;
        for (int i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!is_lower_hex(s[i]))
                        return false;
        }
        return true;
}

int sg_uuid_new(char ret[37]) {
        unsigned char b[16];
        char hex[33];

        if (RAND_bytes(b, sizeof(b)) != 1)
                return -EIO;
        b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        sg_hex_encode(b, sizeof(b), hex);
        snprintf(ret, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
        return 0;
}

bool sg_csc_id_valid(const char *s) {
        if (!s || strlen(s) != 21 || strncmp(s, "csc-", 4) != 0)
                return false;
        for (int i = 4; i < 21; i++)
                if (!is_lower_hex(s[i]))
                        return false;
        return true;
}

/* Days from civil date, proleptic Gregorian (Howard Hinnant's algorithm); exact for every
 * year we can represent, unlike timegm() whose time_t range and locale are the platform's. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const unsigned yoe = (unsigned) (y - era * 400);
        const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
        z += 719468;
        const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        const unsigned doe = (unsigned) (z - era * 146097);
        const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const unsigned mp = (5 * doy + 2) / 153;
        *d = doy - (153 * mp + 2) / 5 + 1;
        *m = mp < 10 ? mp + 3 : mp - 9;
        *y = (int64_t) yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(int64_t y, unsigned m) {
        static const unsigned dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return m == 2 && leap ? 29 : dm[m - 1];
}

int sg_time_format(int64_t t, char ret[SG_TIME_LEN + 1]) {
        int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
        int64_t secs = t - days * 86400;
        int64_t y;
        unsigned m, d;

        civil_from_days(days, &y, &m, &d);
        if (y < 0 || y > 9999)
                return -ERANGE;
        char buf[64]; /* the compiler cannot see that every field fits its width */
        snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", (int) y, m, d, (int) (secs / 3600),
                 (int) (secs / 60 % 60), (int) (secs % 60));
        memcpy(ret, buf, SG_TIME_LEN + 1);
        return 0;
}

static int digits(const char *s, int n) {
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

int sg_time_parse(const char *s, int64_t *ret) {
        if (!s || strlen(s) < 20)
                return -EINVAL;
        int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
        int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
        if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
            s[16] != ':')
                return -EINVAL;
        if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
            se < 0 || se > 60 || (unsigned) d > days_in_month(y, (unsigned) mo))
                return -EINVAL;
        const char *p = s + 19;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        int64_t offset = 0;
        if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
                offset = 0;
        else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
                int oh = digits(p + 1, 2), om = digits(p + 4, 2);
                if (oh < 0 || oh > 23 || om < 0 || om > 59)
                        return -EINVAL;
                offset = (int64_t) (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        } else
                return -EINVAL;
        if (se == 60) /* a leap second reads as the next second's start */
                se = 59;
        int64_t t = days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400 + h * 3600 + mi * 60 + se - offset;
        /* An offset can carry 0000-01-01 or 9999-12-31 past the years RFC 3339 output can
         * spell: such a time could be read but never written back into a record. */
        char check[SG_TIME_LEN + 1];
        if (sg_time_format(t, check) < 0)
                return -ERANGE;
        *ret = t;
        return 0;
}

int64_t sg_time_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec;
}

const char *sg_period_unit_name(sg_period_unit u) {
        switch (u) {
        case SG_PERIOD_DAYS:
                return "DAYS";
        case SG_PERIOD_MONTHS:
                return "MONTHS";
        default:
                return "YEARS";
        }
}

int sg_period_unit_from_name(const char *s, sg_period_unit *ret) {
        if (!s)
                return -EINVAL;
        if (strcmp(s, "DAYS") == 0)
                *ret = SG_PERIOD_DAYS;
        else if (strcmp(s, "MONTHS") == 0)
                *ret = SG_PERIOD_MONTHS;
        else if (strcmp(s, "YEARS") == 0)
                *ret = SG_PERIOD_YEARS;
        else
                return -EINVAL;
        return 0;
}

bool sg_period_valid(uint32_t value, sg_period_unit unit) {
        if (value == 0)
                return false;
        switch (unit) {
        case SG_PERIOD_DAYS:
                /* 135 months is at least 4,106 days; AWS counts days against the same cap. */
                return value <= 4106;
        case SG_PERIOD_MONTHS:
                return value <= SG_VALIDITY_MAX_MONTHS;
        case SG_PERIOD_YEARS:
                return value <= SG_VALIDITY_MAX_MONTHS / 12;
        }
        return false;
}

int sg_time_add_period(int64_t t, uint32_t value, sg_period_unit unit, int64_t *ret) {
        if (unit == SG_PERIOD_DAYS) {
                *ret = t + (int64_t) value * 86400;
                return 0;
        }
        int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
        int64_t secs = t - days * 86400, y;
        unsigned m, d;
        civil_from_days(days, &y, &m, &d);
        int64_t months = (int64_t) value * (unit == SG_PERIOD_YEARS ? 12 : 1);
        int64_t total = y * 12 + (m - 1) + months;
        y = total / 12;
        m = (unsigned) (total % 12) + 1;
        if (d > days_in_month(y, m))
                d = days_in_month(y, m);
        *ret = days_from_civil(y, m, d) * 86400 + secs;
        return 0;
}

void sg_hex_encode(const unsigned char *in, size_t n, char *out) {
        static const char hx[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hx[in[i] >> 4];
                out[2 * i + 1] = hx[in[i] & 15];
        }
        out[2 * n] = '\0';
}

int sg_hex_decode(const char *in, unsigned char *out, size_t n) {
        if (!in || strlen(in) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int v = 0;
                for (int k = 0; k < 2; k++) {
                        char c = in[2 * i + k];
                        if (c >= '0' && c <= '9')
                                v = v * 16 + (c - '0');
                        else if (c >= 'a' && c <= 'f')
                                v = v * 16 + (c - 'a' + 10);
                        else
                                return -EINVAL; /* lowercase only: one spelling per digest */
                }
                out[i] = (unsigned char) v;
        }
        return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sg_base64_encode(const unsigned char *in, size_t n) {
        if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
                return NULL;
        char *out = malloc((n + 2) / 3 * 4 + 1), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t) in[i + 1] << 8;
                if (i + 2 < n)
                        v |= in[i + 2];
                *p++ = b64[v >> 18];
                *p++ = b64[(v >> 12) & 63];
                *p++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                *p++ = i + 2 < n ? b64[v & 63] : '=';
        }
        *p = '\0';
        return out;
}

static int b64_value(char c) {
        const char *p = c ? strchr(b64, c) : NULL;
        return p ? (int) (p - b64) : -1;
}

int sg_base64_decode(const char *in, size_t in_len, unsigned char **ret, size_t *ret_len) {
        if (in_len % 4 != 0)
                return -EINVAL;
        size_t pad = 0;
        if (in_len >= 1 && in[in_len - 1] == '=')
                pad++;
        if (in_len >= 2 && in[in_len - 2] == '=')
                pad++;
        size_t out_len = in_len / 4 * 3 - pad;
        unsigned char *out = malloc(out_len + 1);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < in_len; i += 4) {
                int v[4];
                bool last = i + 4 == in_len;
                for (int k = 0; k < 4; k++) {
                        if (last && in[i + k] == '=' && (size_t) k >= 4 - pad)
                                v[k] = 0;
                        else if ((v[k] = b64_value(in[i + k])) < 0) {
                                free(out);
                                return -EINVAL;
                        }
                }
                uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 |
                             (uint32_t) v[3];
                /* Non-zero bits under the padding would give one text two meanings. */
                if (last && ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))) {
                        free(out);
                        return -EINVAL;
                }
                unsigned char b[3] = {(unsigned char) (w >> 16), (unsigned char) (w >> 8),
                                      (unsigned char) w};
                for (int k = 0; k < 3 && o < out_len; k++)
                        out[o++] = b[k];
        }
        out[out_len] = 0;
        *ret = out;
        *ret_len = out_len;
        return 0;
}

void sg_base32_encode_lower(const unsigned char *in, size_t n, char *out) {
        static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
        uint32_t buf = 0;
        int bits = 0;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                buf = (buf << 8) | in[i];
                bits += 8;
                while (bits >= 5) {
                        out[o++] = b32[(buf >> (bits - 5)) & 31];
                        bits -= 5;
                }
        }
        if (bits > 0)
                out[o++] = b32[(buf << (5 - bits)) & 31];
        out[o] = '\0';
}

int sg_write_all(int fd, const void *buf, size_t n) {
        const char *p = buf;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int sg_pread_all(int fd, void *buf, size_t n, uint64_t off) {
        char *p = buf;
        while (n > 0) {
                if (off > (uint64_t) INT64_MAX)
                        return -EOVERFLOW;
                ssize_t k = pread(fd, p, n, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
                off += (uint64_t) k;
        }
        return 0;
}

int sg_fsync_dir(int dirfd) {
        if (fsync(dirfd) < 0 && errno != EINVAL)
                return -errno;
        return 0;
}

static int write_file(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool replace);

int sg_write_file_atomic(int dirfd, const char *name, const void *buf, size_t len, mode_t mode) {
        return write_file(dirfd, name, buf, len, mode, true);
}

int sg_write_file_new(int dirfd, const char *name, const void *buf, size_t len, mode_t mode) {
        return write_file(dirfd, name, buf, len, mode, false);
}

static int write_file(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool replace) {
        char tmp[PATH_MAX];
        unsigned char rnd[6];
        char rhex[13];
        int r;

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return -EIO;
        sg_hex_encode(rnd, sizeof(rnd), rhex);
        /* The temp name starts with '.' so directory scanners (and the inbox rules) skip it. */
        if (snprintf(tmp, sizeof(tmp), ".%s.%s.tmp", name, rhex) >= (int) sizeof(tmp))
                return -ENAMETOOLONG;
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = sg_write_all(fd, buf, len);
        if (r == 0 && fchmod(fd, mode) < 0) /* the umask must not widen or narrow the mode */
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat2(dirfd, tmp, dirfd, name, replace ? 0 : RENAME_NOREPLACE) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }
        return sg_fsync_dir(dirfd);
}

int sg_read_file(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len) {
        _cleanup_(sg_closep) int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        size_t n = (size_t) st.st_size;
        char *buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        size_t got = 0;
        /* Read to EOF rather than trusting st_size: the file may shrink or grow meanwhile. */
        for (;;) {
                if (got == n + 1 || got > max) {
                        free(buf);
                        return -EFBIG;
                }
                ssize_t k = read(fd, buf + got, n + 1 - got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = -errno;
                        free(buf);
                        return e;
                }
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        buf[got] = '\0';
        *ret = buf;
        if (ret_len)
                *ret_len = got;
        return 0;
}

int sg_mkdir_p(const char *path, mode_t mode) {
        char buf[PATH_MAX];

        if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + 1;; p++) {
                if (*p == '/' || *p == '\0') {
                        char c = *p;
                        *p = '\0';
                        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *p = c;
                        if (c == '\0')
                                break;
                }
        }
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int sg_opendirat(int dirfd, const char *path, DIR **ret) {
        int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (strcmp(path, ".") ? O_NOFOLLOW : 0));
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret = d;
        return 0;
}
