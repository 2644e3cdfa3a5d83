/* gate_client.c — a small HTTP/1.1 client over AF_UNIX for the gate's API (see gate_client.h).
 *
 * One request per connection ("Connection: close"): the CLI makes one or two calls per run,
 * so keep-alive would buy nothing and would cost a body-framing state machine that must also
 * work across requests. Everything runs on a non-blocking socket under poll(2) against one
 * deadline, so a gate that stalls anywhere (accept backlog, mid-header, mid-body) costs at
 * most the timeout. Every read is bounded: the header block by SG_GATE_HEADER_MAX, the body
 * by the caller's cap, each line by the reader's buffer. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gate_client.h"

/* Longest single status, header, chunk-size or trailer line; the header block as a whole is
 * bounded separately by SG_GATE_HEADER_MAX. */
#define LINE_MAX_ 8192
/* How many interim (1xx) responses may precede the real one before we call it a loop. */
#define MAX_INTERIM 8
/* Size of the slices a body_fd is sent in. */
#define SEND_CHUNK (64u * 1024)

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. Returns the revents, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = fd, .events = events};
                int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int) left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n > 0)
                        return p.revents;
        }
}

static int connect_unix(const char *socket_path, int64_t deadline, int *ret_fd) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        size_t n = strlen(socket_path);

        if (n == 0)
                return -EINVAL;
        if (n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, socket_path, n + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* AF_UNIX connect() does not support EINPROGRESS: a non-blocking one fails with EAGAIN
         * when the backlog is full. So connect blocking, bounded by SO_SNDTIMEO (which the
         * kernel applies to a unix stream connect), then switch to non-blocking I/O. */
        int64_t left = deadline - now_ms();
        if (left < 1)
                left = 1;
        struct timeval tv = {.tv_sec = (time_t) (left / 1000), .tv_usec = (suseconds_t) (left % 1000) * 1000};
        if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                goto fail;
        while (connect(fd, (const struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EINPROGRESS)
                        errno = ETIMEDOUT;
                goto fail;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                goto fail;
        *ret_fd = fd;
        return 0;
fail:;
        int e = -errno;
        close(fd);
        return e;
}

/* The outcome of sending: everything went out, or the gate began answering (or hung up)
 * first, in which case its answer, if any, is what counts. */
enum { SENT_ALL = 0, SENT_PEER_ANSWERED = 1 };

/* Sends n bytes. Stops early (returning SENT_PEER_ANSWERED) as soon as the gate has something
 * to say or has closed: an HTTP server speaks before the request ends only to refuse it, and
 * then it will read no more, so pushing on would only fill a buffer nobody drains. */
static int send_all(int fd, const char *p, size_t n, int64_t deadline, int *ret_send_error) {
        while (n > 0) {
                int ev = wait_fd(fd, POLLOUT | POLLIN, deadline);
                if (ev < 0)
                        return ev;
                if (ev & (POLLIN | POLLHUP | POLLERR))
                        return SENT_PEER_ANSWERED;
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        if (errno == EPIPE || errno == ECONNRESET) {
                                *ret_send_error = -errno;
                                return SENT_PEER_ANSWERED;
                        }
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return SENT_ALL;
}

/* Streams body_fd (size bytes from offset 0) with pread, so the descriptor's file offset
 * neither matters nor moves. */
static int send_file(int sock, int body_fd, uint64_t size, int64_t deadline, int *ret_send_error) {
        char *buf = malloc(SEND_CHUNK);
        uint64_t off = 0;
        int r = SENT_ALL;

        if (!buf)
                return -ENOMEM;
        while (off < size) {
                size_t want = size - off < SEND_CHUNK ? (size_t) (size - off) : SEND_CHUNK;
                ssize_t k = pread(body_fd, buf, want, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (k == 0) {
                        /* The file shrank after its size went out as Content-Length: the
                         * request can no longer be completed honestly. */
                        r = -EIO;
                        break;
                }
                r = send_all(sock, buf, (size_t) k, deadline, ret_send_error);
                if (r != SENT_ALL)
                        break;
                off += (uint64_t) k;
        }
        free(buf);
        return r;
}

/* ---- reading the answer ---- */

typedef struct {
        int fd;
        int64_t deadline;
        size_t off, end;
        bool eof;
        char buf[LINE_MAX_];
} reader;

/* Reads more bytes into the buffer (compacting it first). Returns the number read, 0 at EOF. */
static int fill(reader *rd) {
        if (rd->off > 0) {
                memmove(rd->buf, rd->buf + rd->off, rd->end - rd->off);
                rd->end -= rd->off;
                rd->off = 0;
        }
        if (rd->end == sizeof(rd->buf))
                return -EMSGSIZE;
        if (rd->eof)
                return 0;
        for (;;) {
                ssize_t k = recv(rd->fd, rd->buf + rd->end, sizeof(rd->buf) - rd->end, 0);
                if (k > 0) {
                        rd->end += (size_t) k;
                        return (int) k;
                }
                if (k == 0) {
                        rd->eof = true;
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                if (errno == ECONNRESET) {
                        /* A reset after the peer's last byte: what arrived is still readable
                         * and was read; treat the reset as the end. */
                        rd->eof = true;
                        return 0;
                }
                if (errno != EAGAIN)
                        return -errno;
                int ev = wait_fd(rd->fd, POLLIN, rd->deadline);
                if (ev < 0)
                        return ev;
        }
}

/* One line without its CR LF (a bare LF is tolerated), NUL-terminated in line (LINE_MAX_
 * bytes). *budget is what is left of the header block; it shrinks by the line's length. */
static int read_line(reader *rd, char *line, size_t *budget) {
        for (;;) {
                char *nl = memchr(rd->buf + rd->off, '\n', rd->end - rd->off);
                if (nl) {
                        size_t n = (size_t) (nl - (rd->buf + rd->off));
                        if (n + 1 > *budget)
                                return -EMSGSIZE;
                        *budget -= n + 1;
                        size_t keep = n > 0 && nl[-1] == '\r' ? n - 1 : n;
                        memcpy(line, rd->buf + rd->off, keep);
                        line[keep] = '\0';
                        rd->off += n + 1;
                        /* A NUL inside a header line would silently cut it short below. */
                        if (memchr(line, '\0', keep))
                                return -EPROTO;
                        return 0;
                }
                if (rd->end - rd->off >= *budget)
                        return -EMSGSIZE;
                int k = fill(rd);
                if (k == -EMSGSIZE)
                        return -EMSGSIZE;
                if (k < 0)
                        return k;
                if (k == 0)
                        return -ECONNRESET;
        }
}

/* Copies exactly n body bytes to dst. */
static int read_exact(reader *rd, char *dst, size_t n) {
        while (n > 0) {
                if (rd->off == rd->end) {
                        int k = fill(rd);
                        if (k < 0)
                                return k;
                        if (k == 0)
                                return -ECONNRESET;
                }
                size_t take = rd->end - rd->off < n ? rd->end - rd->off : n;
                memcpy(dst, rd->buf + rd->off, take);
                rd->off += take;
                dst += take;
                n -= take;
        }
        return 0;
}

typedef struct {
        char *p;
        size_t len, cap, max;
} body_buf;

/* Makes room for n more bytes (plus the final NUL), refusing to pass the cap. */
static int body_reserve(body_buf *b, size_t n) {
        if (n > b->max - b->len)
                return -EFBIG;
        size_t need = b->len + n + 1;
        if (need <= b->cap)
                return 0;
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < need)
                cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > b->max + 1)
                cap = b->max + 1;
        char *p = realloc(b->p, cap);
        if (!p)
                return -ENOMEM;
        b->p = p;
        b->cap = cap;
        return 0;
}

/* Trims optional whitespace (RFC 9110 OWS) from both ends, in place. */
static char *trim(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
        return s;
}

static int parse_u64_dec(const char *s, uint64_t *ret) {
        uint64_t v = 0;
        if (!*s)
                return -EPROTO;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EPROTO;
                if (v > (UINT64_MAX - 9) / 10)
                        return -EPROTO;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

typedef struct {
        int status;
        bool chunked;
        bool has_length;
        uint64_t length;
} head_info;

/* Reads a status line and its headers into resp and h. */
static int read_head(reader *rd, sg_gate_response *resp, head_info *h) {
        char line[LINE_MAX_];
        size_t budget = SG_GATE_HEADER_MAX;
        int r;

        *h = (head_info){0};
        if ((r = read_line(rd, line, &budget)) < 0)
                return r;
        /* "HTTP/1.x NNN[ reason]": the gate speaks HTTP/1.1; a 1.0 answer frames the same way. */
        if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
            line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
            (line[12] != '\0' && line[12] != ' '))
                return -EPROTO;
        h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        resp->status = h->status;
        snprintf(resp->reason, sizeof(resp->reason), "%s", line[12] ? trim(line + 13) : "");
        resp->content_type[0] = resp->error_type[0] = '\0';

        for (;;) {
                if ((r = read_line(rd, line, &budget)) < 0)
                        return r;
                if (line[0] == '\0')
                        return 0;
                /* Folded continuation lines are obsolete and a smuggling vector: refuse. */
                if (line[0] == ' ' || line[0] == '\t')
                        return -EPROTO;
                char *colon = strchr(line, ':');
                if (!colon || colon == line)
                        return -EPROTO;
                *colon = '\0';
                for (const char *c = line; *c; c++)
                        if (*c <= ' ' || *c >= 0x7f)
                                return -EPROTO;
                char *value = trim(colon + 1);
                if (strcasecmp(line, "Content-Length") == 0) {
                        uint64_t v;
                        if (parse_u64_dec(value, &v) < 0)
                                return -EPROTO;
                        /* Repeats must agree, or the framing is ambiguous. */
                        if (h->has_length && v != h->length)
                                return -EPROTO;
                        h->has_length = true;
                        h->length = v;
                } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
                        /* Only "chunked" alone: we decode no compression, and chunked must
                         * come last in any case. */
                        if (strcasecmp(value, "chunked") != 0 || h->chunked)
                                return -EPROTO;
                        h->chunked = true;
                } else if (strcasecmp(line, "Content-Type") == 0)
                        snprintf(resp->content_type, sizeof(resp->content_type), "%s", value);
                else if (strcasecmp(line, "X-Amzn-ErrorType") == 0)
                        snprintf(resp->error_type, sizeof(resp->error_type), "%s", value);
        }
}

/* Parses a chunk-size line: hex digits, then optionally ";extensions" (ignored). */
static int parse_chunk_size(char *line, uint64_t *ret) {
        char *semi = strchr(line, ';');
        if (semi)
                *semi = '\0';
        char *s = trim(line);
        uint64_t v = 0;
        size_t digits = 0;
        if (!*s)
                return -EPROTO;
        for (; *s; s++, digits++) {
                int d;
                if (*s >= '0' && *s <= '9')
                        d = *s - '0';
                else if (*s >= 'a' && *s <= 'f')
                        d = *s - 'a' + 10;
                else if (*s >= 'A' && *s <= 'F')
                        d = *s - 'A' + 10;
                else
                        return -EPROTO;
                if (digits >= 15) /* sizes past 2^60 are nonsense; also keeps v from overflowing */
                        return -EPROTO;
                v = v * 16 + (uint64_t) d;
        }
        *ret = v;
        return 0;
}

static int read_chunked(reader *rd, body_buf *b) {
        char line[LINE_MAX_];
        /* Chunk-size lines and trailers share the header budget: a body of a million one-byte
         * chunks is still bounded by the body cap, their framing by this. */
        size_t budget = SG_GATE_HEADER_MAX + SG_GATE_BODY_MAX / 4;
        int r;

        for (;;) {
                uint64_t n;
                if ((r = read_line(rd, line, &budget)) < 0 || (r = parse_chunk_size(line, &n)) < 0)
                        return r;
                if (n == 0)
                        break;
                if (n > b->max - b->len)
                        return -EFBIG;
                if ((r = body_reserve(b, (size_t) n)) < 0 || (r = read_exact(rd, b->p + b->len, (size_t) n)) < 0)
                        return r;
                b->len += (size_t) n;
                if ((r = read_line(rd, line, &budget)) < 0)
                        return r;
                if (line[0] != '\0')
                        return -EPROTO;
        }
        /* Trailers, ignored, up to the empty line. */
        size_t tbudget = SG_GATE_HEADER_MAX;
        do {
                if ((r = read_line(rd, line, &tbudget)) < 0)
                        return r;
        } while (line[0] != '\0');
        return 0;
}

/* Reads to EOF: an answer with neither Content-Length nor chunked ends when the gate closes. */
static int read_to_eof(reader *rd, body_buf *b) {
        for (;;) {
                size_t have = rd->end - rd->off;
                if (have > 0) {
                        int r = body_reserve(b, have);
                        if (r < 0)
                                return r;
                        memcpy(b->p + b->len, rd->buf + rd->off, have);
                        b->len += have;
                        rd->off = rd->end;
                }
                int k = fill(rd);
                if (k < 0)
                        return k;
                if (k == 0)
                        return 0;
        }
}

static int read_response(reader *rd, const char *method, size_t body_max, sg_gate_response *resp) {
        head_info h;
        int r;

        for (int interim = 0;; interim++) {
                if ((r = read_head(rd, resp, &h)) < 0)
                        return r;
                if (h.status >= 200)
                        break;
                /* 101 would hand the connection to another protocol; we asked for none. */
                if (h.status == 101 || interim >= MAX_INTERIM)
                        return -EPROTO;
        }
        /* A body framed both ways is how responses get smuggled: refuse rather than guess. */
        if (h.chunked && h.has_length)
                return -EPROTO;

        body_buf b = {.max = body_max};
        if (strcmp(method, "HEAD") == 0 || h.status == 204 || h.status == 304)
                r = 0;
        else if (h.chunked)
                r = read_chunked(rd, &b);
        else if (h.has_length) {
                /* Refuse an oversized answer from its header, before reading any of it. */
                if (h.length > body_max)
                        r = -EFBIG;
                else if ((r = body_reserve(&b, (size_t) h.length)) == 0 &&
                         (r = read_exact(rd, b.p, (size_t) h.length)) == 0)
                        b.len = (size_t) h.length;
        } else
                r = read_to_eof(rd, &b);
        if (r == 0)
                r = body_reserve(&b, 0); /* room for the NUL of an empty body */
        if (r < 0) {
                free(b.p);
                return r;
        }
        b.p[b.len] = '\0';
        resp->body = b.p;
        resp->len = b.len;
        return 0;
}

/* ---- the request ---- */

static bool token_ok(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
                        return false;
        return true;
}

/* Printable ASCII without spaces: what may stand in a request target as sent. */
static bool target_ok(const char *s) {
        if (s[0] != '/' || strlen(s) > SG_GATE_PATH_MAX)
                return false;
        for (; *s; s++)
                if (*s <= ' ' || *s >= 0x7f)
                        return false;
        return true;
}

static bool field_value_ok(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < ' ' || *s == 0x7f)
                        return false;
        return true;
}

int sg_gate_request_opts(const sg_gate_options *opts, const char *socket_path, const char *method, const char *path,
                         const char *content_type, const void *body, size_t len, int body_fd, sg_gate_response *ret) {
        int timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms
                                                   : body_fd >= 0 ? SG_GATE_UPLOAD_TIMEOUT_MS : SG_GATE_TIMEOUT_MS;
        size_t body_max = opts && opts->body_max > 0 ? opts->body_max : SG_GATE_BODY_MAX;
        int64_t deadline = now_ms() + timeout;
        uint64_t size = body_fd >= 0 ? 0 : len;
        bool has_body = body_fd >= 0 || (body && len > 0);
        char head[SG_GATE_PATH_MAX + 512];
        reader *rd = NULL;
        int fd = -1, r, send_error = 0;

        *ret = (sg_gate_response){0};
        if (!socket_path || !method || !path || !token_ok(method) || !target_ok(path) ||
            (content_type && !field_value_ok(content_type)) || (body_fd >= 0 && body && len > 0) || (!body && len > 0))
                return -EINVAL;
        if (body_fd >= 0) {
                struct stat st;
                if (fstat(body_fd, &st) < 0)
                        return -errno;
                /* Content-Length needs the size up front, and only a regular file has one
                 * that holds still. */
                if (!S_ISREG(st.st_mode))
                        return -EINVAL;
                size = (uint64_t) st.st_size;
        }
        bool with_length = has_body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                           strcmp(method, "PATCH") == 0;
        int w = snprintf(head, sizeof(head),
                         "%s %s HTTP/1.1\r\n"
                         "Host: localhost\r\n"
                         "User-Agent: signgate-cli\r\n"
                         "Accept: application/json\r\n"
                         "Connection: close\r\n",
                         method, path);
        if (w > 0 && (size_t) w < sizeof(head) && content_type && has_body)
                w += snprintf(head + w, sizeof(head) - (size_t) w, "Content-Type: %s\r\n", content_type);
        if (w > 0 && (size_t) w < sizeof(head) && with_length)
                w += snprintf(head + w, sizeof(head) - (size_t) w, "Content-Length: %" PRIu64 "\r\n", size);
        if (w > 0 && (size_t) w < sizeof(head))
                w += snprintf(head + w, sizeof(head) - (size_t) w, "\r\n");
        if (w < 0 || (size_t) w >= sizeof(head))
                return -ENAMETOOLONG;

        if ((r = connect_unix(socket_path, deadline, &fd)) < 0)
                return r;
        r = send_all(fd, head, (size_t) w, deadline, &send_error);
        if (r == SENT_ALL && body_fd >= 0)
                r = send_file(fd, body_fd, size, deadline, &send_error);
        else if (r == SENT_ALL && has_body)
                r = send_all(fd, body, len, deadline, &send_error);
        if (r < 0)
                goto out;
        /* We said "Connection: close"; half-closing our side as well would be allowed, but
         * some servers read a FIN as an aborted request, so leave the write side open. */
        rd = malloc(sizeof(*rd));
        if (!rd) {
                r = -ENOMEM;
                goto out;
        }
        rd->fd = fd;
        rd->deadline = deadline;
        rd->off = rd->end = 0;
        rd->eof = false;
        r = read_response(rd, method, body_max, ret);
        /* When sending failed because the gate hung up and it left no answer, the send error
         * says more than "connection reset while reading". */
        if (r == -ECONNRESET && send_error < 0)
                r = send_error;
out:
        free(rd);
        close(fd);
        if (r < 0) {
                free(ret->body);
                *ret = (sg_gate_response){0};
                return r;
        }
        return 0;
}

int sg_gate_request(const char *socket_path, const char *method, const char *path, const char *content_type,
                    const void *body, size_t len, int body_fd, sg_gate_response *ret) {
        return sg_gate_request_opts(NULL, socket_path, method, path, content_type, body, len, body_fd, ret);
}

void sg_gate_response_done(sg_gate_response *r) {
        if (!r)
                return;
        free(r->body);
        *r = (sg_gate_response){0};
}

static bool unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~';
}

int sg_gate_pathf(char *buf, size_t len, const char *fmt, ...) {
        static const char hex[] = "0123456789ABCDEF";
        size_t w = 0;
        va_list ap;
        int r = 0;

        if (!buf || len == 0)
                return -EINVAL;
        size_t cap = len - 1 < SG_GATE_PATH_MAX ? len - 1 : SG_GATE_PATH_MAX;
        va_start(ap, fmt);
        for (const char *f = fmt; *f && r == 0; f++) {
                if (*f != '%') {
                        if (w >= cap)
                                r = -ENAMETOOLONG;
                        else
                                buf[w++] = *f;
                        continue;
                }
                f++;
                if (*f == '%') {
                        if (w >= cap)
                                r = -ENAMETOOLONG;
                        else
                                buf[w++] = '%';
                        continue;
                }
                if (*f != 's') {
                        r = -EINVAL;
                        break;
                }
                const char *s = va_arg(ap, const char *);
                if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) {
                        r = -EINVAL;
                        break;
                }
                for (const unsigned char *c = (const unsigned char *) s; *c && r == 0; c++) {
                        if (unreserved(*c)) {
                                if (w >= cap)
                                        r = -ENAMETOOLONG;
                                else
                                        buf[w++] = (char) *c;
                        } else if (cap - w < 3 || w >= cap)
                                r = -ENAMETOOLONG;
                        else {
                                buf[w++] = '%';
                                buf[w++] = hex[*c >> 4];
                                buf[w++] = hex[*c & 15];
                        }
                }
        }
        va_end(ap);
        buf[r == 0 ? w : 0] = '\0';
        return r;
}
