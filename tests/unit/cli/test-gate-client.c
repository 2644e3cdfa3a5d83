/* Unit tests for cli/gate_client.c: the HTTP/1.1 client the CLI uses on the gate's unix socket.
 *
 * Each test starts a scripted server: the test binds and listens on a unix socket in a private
 * directory, then forks a child that accepts one connection, reads the request (headers, and the
 * body when the script says so), saves the bytes it read to a file for the test to inspect, and
 * writes the scripted answer (optionally in small slices, to split it across reads) or an answer a
 * generator produces (the large ones). Listening before the fork means the client can connect at
 * once. The child is killed and reaped when the test ends, whatever state it is in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gate_client.h"

#define CAP SG_GATE_BODY_MAX

/* What the scripted server does with its one connection. */
struct script {
	const char *answer;              /* written after the request is read; NULL: nothing */
	size_t answer_len;               /* 0: strlen(answer) */
	size_t slice;                    /* write the answer this many bytes at a time (0: at once) */
	bool read_body;                  /* also read the Content-Length body of the request */
	bool skip_request;               /* answer without reading anything */
	bool hang;                       /* after reading, never answer and never close */
	void (*generate)(int fd);        /* writes the answer instead of `answer` */
};

static char *tmpdir;
static char sock_path[108];
static char capture_path[PATH_MAX];
static pid_t server_pid = -1;

static int group_setup(void **state)
{
	const char *base = getenv("SIGNGATE_TEST_TMP");
	char tmpl[PATH_MAX];

	(void)state;
	if (base == NULL || *base == '\0')
		base = "/tmp";
	(void)mkdir(base, 0700);
	snprintf(tmpl, sizeof(tmpl), "%s/gate-client-XXXXXX", base);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	tmpdir = strdup(tmpl);
	/* sun_path holds 108 bytes: a deep build tree could overflow it, so fall back to /tmp. */
	if (snprintf(sock_path, sizeof(sock_path), "%s/s", tmpdir) >= (int)sizeof(sock_path)) {
		free(tmpdir);
		snprintf(tmpl, sizeof(tmpl), "/tmp/gate-client-XXXXXX");
		if (mkdtemp(tmpl) == NULL)
			return -1;
		tmpdir = strdup(tmpl);
		snprintf(sock_path, sizeof(sock_path), "%s/s", tmpdir);
	}
	snprintf(capture_path, sizeof(capture_path), "%s/request", tmpdir);
	return tmpdir ? 0 : -1;
}

static int group_teardown(void **state)
{
	char path[PATH_MAX];

	(void)state;
	(void)unlink(sock_path);
	(void)unlink(capture_path);
	snprintf(path, sizeof(path), "%s/upload", tmpdir);
	(void)unlink(path);
	(void)rmdir(tmpdir);
	free(tmpdir);
	return 0;
}

static void stop_server(void)
{
	if (server_pid > 0) {
		(void)kill(server_pid, SIGKILL);
		(void)waitpid(server_pid, NULL, 0);
	}
	server_pid = -1;
	(void)unlink(sock_path);
}

static int test_teardown(void **state)
{
	(void)state;
	stop_server();
	(void)unlink(capture_path);
	return 0;
}

static void write_all_or_exit(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t k = write(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(0); /* the client hung up: expected in the early-failure tests */
		c += k;
		n -= (size_t)k;
	}
}

/* Reads the request head, and its Content-Length body when asked; saves what it read. */
static void child_read_request(int fd, bool read_body)
{
	size_t cap = 1 << 16, len = 0, want = 0;
	char *buf = malloc(cap);
	char *end = NULL;

	if (buf == NULL)
		_exit(3);
	while (end == NULL || len < want) {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				_exit(3);
		}
		ssize_t k = read(fd, buf + len, cap - len);
		if (k <= 0)
			break;
		len += (size_t)k;
		if (end == NULL) {
			end = memmem(buf, len, "\r\n\r\n", 4);
			if (end == NULL)
				continue;
			want = (size_t)(end - buf) + 4;
			if (!read_body)
				break;
			/* Search the head only: cut it off at its blank line for strcasestr. */
			*end = '\0';
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			*end = '\r';
			if (cl != NULL)
				want += strtoull(cl + 17, NULL, 10);
		}
	}
	int out = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out >= 0) {
		write_all_or_exit(out, buf, len);
		close(out);
	}
	free(buf);
}

static void start_server(const struct script *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(lfd >= 0);
	(void)unlink(sock_path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	fflush(NULL);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (server_pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			_exit(2);
		if (!s->skip_request)
			child_read_request(fd, s->read_body);
		if (s->hang)
			for (;;)
				pause();
		if (s->generate != NULL)
			s->generate(fd);
		else if (s->answer != NULL) {
			size_t n = s->answer_len ? s->answer_len : strlen(s->answer);
			size_t step = s->slice ? s->slice : n;
			for (size_t off = 0; off < n; off += step) {
				write_all_or_exit(fd, s->answer + off, n - off < step ? n - off : step);
				if (s->slice)
					usleep(200);
			}
		}
		close(fd);
		_exit(0);
	}
	close(lfd);
}

/* The bytes the server read, NUL-terminated (after the server finished with them). */
static char *captured(size_t *ret_len)
{
	FILE *f = fopen(capture_path, "rb");
	char *buf = NULL;
	size_t len = 0;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = (size_t)ftell(f);
	rewind(f);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, f), len);
	buf[len] = '\0';
	fclose(f);
	if (ret_len)
		*ret_len = len;
	return buf;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Runs one request against a script; returns sg_gate_request's result. */
static int exchange(const struct script *s, const char *method, const char *path, sg_gate_response *resp)
{
	start_server(s);
	return sg_gate_request(sock_path, method, path, NULL, NULL, 0, -1, resp);
}

/* ---- framing ---- */

static void test_content_length_answer_is_read_whole(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\n"
				     "Content-Type: application/json\r\n"
				     "Content-Length: 33\r\n"
				     "\r\n"
				     "{\"Status\":\"ok\",\"Version\":\"0.1.0\"}";
	struct script s = { .answer = answer };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/v1/health", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.reason, "OK");
	assert_string_equal(r.content_type, "application/json");
	assert_string_equal(r.error_type, "");
	assert_int_equal(r.len, 33);
	assert_string_equal(r.body, "{\"Status\":\"ok\",\"Version\":\"0.1.0\"}");
	sg_gate_response_done(&r);
	assert_null(r.body);

	/* What went out: the request line, a Host, Connection: close, and no body framing on a GET. */
	stop_server();
	char *req = captured(NULL);
	assert_true(starts_with(req, "GET /v1/health HTTP/1.1\r\n"));
	assert_non_null(strstr(req, "\r\nHost: localhost\r\n"));
	assert_non_null(strstr(req, "\r\nConnection: close\r\n"));
	assert_null(strcasestr(req, "Content-Length"));
	assert_null(strcasestr(req, "Transfer-Encoding"));
	free(req);
}

static void test_chunked_answer_is_reassembled_across_tiny_reads(void **state)
{
	/* Lowercase hex, a chunk extension, a trailer, and one byte per write so every line and
	 * chunk straddles reads. */
	static const char answer[] = "HTTP/1.1 200 OK\r\n"
				     "Transfer-Encoding: chunked\r\n"
				     "Content-Type: application/json\r\n"
				     "\r\n"
				     "5\r\n{\"Dec\r\n"
				     "a;name=value\r\nisions\":[]\r\n"
				     "1\r\n}\r\n"
				     "0\r\n"
				     "X-Trailer: yes\r\n"
				     "\r\n";
	struct script s = { .answer = answer, .slice = 1 };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/v1/decisions", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 16);
	assert_string_equal(r.body, "{\"Decisions\":[]}");
	sg_gate_response_done(&r);
}

static void test_close_delimited_answer_ends_at_eof(void **state)
{
	static const char answer[] = "HTTP/1.0 200 OK\r\n\r\nhello, world";
	struct script s = { .answer = answer };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/metrics", &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello, world");
	sg_gate_response_done(&r);
}

static void test_no_content_and_interim_answers(void **state)
{
	/* A 100 Continue comes first and is skipped; a 204 has no body even if bytes follow. */
	static const char answer[] = "HTTP/1.1 100 Continue\r\n\r\n"
				     "HTTP/1.1 204 No Content\r\n\r\n";
	struct script s = { .answer = answer };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "DELETE", "/v1/functions/f/code-signing-config", &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.len, 0);
	assert_non_null(r.body);
	assert_string_equal(r.body, "");
	sg_gate_response_done(&r);
}

static void test_error_answer_keeps_status_and_error_type(void **state)
{
	static const char answer[] =
		"HTTP/1.1 403 Forbidden\r\n"
		"x-amzn-errortype:   CodeVerificationFailedException  \r\n"
		"Content-Length: 77\r\n"
		"\r\n"
		"{\"Type\":\"User\",\"Code\":\"CodeVerificationFailedException\",\"Message\":\"unsigned\"}";
	struct script s = { .answer = answer };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/v1/x", &r), 0);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.reason, "Forbidden");
	/* Header names match in any case; the value's surrounding whitespace is not part of it. */
	assert_string_equal(r.error_type, "CodeVerificationFailedException");
	assert_int_equal(r.len, 77);
	sg_gate_response_done(&r);
}

/* ---- the body cap ---- */

static void gen_length_at_cap(int fd)
{
	static char block[1 << 16];
	char head[128];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", CAP);

	memset(block, 'x', sizeof(block));
	write_all_or_exit(fd, head, (size_t)n);
	for (size_t sent = 0; sent < CAP; sent += sizeof(block))
		write_all_or_exit(fd, block, sizeof(block));
}

static void gen_chunked_over_cap(int fd)
{
	static char block[1 << 16];
	static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

	memset(block, 'y', sizeof(block));
	write_all_or_exit(fd, head, sizeof(head) - 1);
	for (size_t sent = 0; sent < CAP; sent += sizeof(block)) {
		write_all_or_exit(fd, "10000\r\n", 7);
		write_all_or_exit(fd, block, sizeof(block));
		write_all_or_exit(fd, "\r\n", 2);
	}
	write_all_or_exit(fd, "1\r\nz\r\n0\r\n\r\n", 11);
}

static void test_body_exactly_at_cap_is_accepted(void **state)
{
	struct script s = { .generate = gen_length_at_cap };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/v1/decisions", &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, CAP);
	assert_int_equal(r.body[0], 'x');
	assert_int_equal(r.body[CAP - 1], 'x');
	assert_int_equal(r.body[CAP], '\0');
	sg_gate_response_done(&r);
}

static void test_content_length_over_cap_is_refused_from_the_header(void **state)
{
	/* The body never comes: the client must refuse on the header alone, not wait for it. */
	static char answer[128];
	snprintf(answer, sizeof(answer), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", CAP + 1);
	struct script s = { .answer = answer, .hang = false };
	sg_gate_response r = { .status = 99 };

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/v1/decisions", &r), -EFBIG);
	/* Nothing to free after a failure. */
	assert_int_equal(r.status, 0);
	assert_null(r.body);
}

static void test_chunked_body_over_cap_is_refused(void **state)
{
	struct script s = { .generate = gen_chunked_over_cap };
	sg_gate_response r;

	(void)state;
	assert_int_equal(exchange(&s, "GET", "/v1/decisions", &r), -EFBIG);
	assert_null(r.body);
}

static void test_caller_cap_applies_to_close_delimited_bodies(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\n\r\n0123456789A";
	const sg_gate_options ten = { .body_max = 10 }, eleven = { .body_max = 11 };
	struct script s = { .answer = answer };
	sg_gate_response r;

	(void)state;
	start_server(&s);
	assert_int_equal(sg_gate_request_opts(&ten, sock_path, "GET", "/", NULL, NULL, 0, -1, &r), -EFBIG);
	stop_server();
	start_server(&s);
	assert_int_equal(sg_gate_request_opts(&eleven, sock_path, "GET", "/", NULL, NULL, 0, -1, &r), 0);
	assert_string_equal(r.body, "0123456789A");
	sg_gate_response_done(&r);
}

/* ---- a server that goes away or misbehaves ---- */

static void test_server_closing_early_is_a_reset(void **state)
{
	static const char *const answers[] = {
		"",                                                  /* before a byte */
		"HTTP/1.1 200 OK\r\nContent-Le",                     /* mid-header */
		"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", /* mid-body */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", /* mid-chunk */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", /* no last chunk */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		struct script s = { .answer = answers[i][0] ? answers[i] : NULL };
		sg_gate_response r;
		int got = exchange(&s, "GET", "/v1/functions", &r);
		if (got != -ECONNRESET)
			fail_msg("answer %zu: got %d (%s), want -ECONNRESET", i, got, strerror(-got));
		stop_server();
	}
}

static void test_malformed_answers_are_protocol_errors(void **state)
{
	static const char *const answers[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX-A: 1\r\n continued\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		struct script s = { .answer = answers[i] };
		sg_gate_response r;
		int got = exchange(&s, "GET", "/v1/functions", &r);
		if (got != -EPROTO)
			fail_msg("answer %zu: got %d (%s), want -EPROTO", i, got, strerror(-got));
		stop_server();
	}
}

static void test_oversized_header_block_is_refused(void **state)
{
	/* Many short headers: each line is fine, together they pass SG_GATE_HEADER_MAX. */
	size_t n = 0, cap = SG_GATE_HEADER_MAX + 4096;
	char *answer = malloc(cap);
	sg_gate_response r;

	(void)state;
	assert_non_null(answer);
	n += (size_t)snprintf(answer, cap, "HTTP/1.1 200 OK\r\n");
	while (n < SG_GATE_HEADER_MAX + 100)
		n += (size_t)snprintf(answer + n, cap - n, "X-Filler: %08zu\r\n", n);
	n += (size_t)snprintf(answer + n, cap - n, "Content-Length: 0\r\n\r\n");
	struct script s = { .answer = answer, .answer_len = n };
	assert_int_equal(exchange(&s, "GET", "/", &r), -EMSGSIZE);
	stop_server();

	/* One line longer than any line buffer. */
	memset(answer, 'a', cap);
	memcpy(answer, "HTTP/1.1 200 OK\r\nX-Long: ", 25);
	memcpy(answer + cap - 4, "\r\n\r\n", 4);
	s.answer_len = cap;
	assert_int_equal(exchange(&s, "GET", "/", &r), -EMSGSIZE);
	free(answer);
}

static void test_silent_server_times_out(void **state)
{
	const sg_gate_options quick = { .timeout_ms = 300 };
	struct script s = { .hang = true };
	sg_gate_response r;

	(void)state;
	start_server(&s);
	assert_int_equal(sg_gate_request_opts(&quick, sock_path, "GET", "/v1/health", NULL, NULL, 0, -1, &r),
			 -ETIMEDOUT);
}

static void test_no_listener_is_enoent_or_econnrefused(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sg_gate_response r;
	char missing[PATH_MAX + 200];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/absent.sock", tmpdir);
	assert_int_equal(sg_gate_request(missing, "GET", "/v1/health", NULL, NULL, 0, -1, &r), -ENOENT);

	/* A socket file that nobody listens on, as a gate that died leaves behind. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	(void)unlink(sock_path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(sg_gate_request(sock_path, "GET", "/v1/health", NULL, NULL, 0, -1, &r), -ECONNREFUSED);

	/* Longer than sun_path can hold. */
	memset(missing, 'a', sizeof(sa.sun_path) + 10);
	missing[0] = '/';
	missing[sizeof(sa.sun_path) + 10] = '\0';
	assert_int_equal(sg_gate_request(missing, "GET", "/v1/health", NULL, NULL, 0, -1, &r), -ENAMETOOLONG);
}

/* ---- request bodies ---- */

static void test_json_body_is_sent_with_its_length(void **state)
{
	static const char body[] = "{\"FunctionName\":\"my-function\"}";
	static const char answer[] = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
	struct script s = { .answer = answer, .read_body = true };
	sg_gate_response r;

	(void)state;
	start_server(&s);
	assert_int_equal(sg_gate_request(sock_path, "POST", "/v1/functions", "application/json", body,
					 sizeof(body) - 1, -1, &r),
			 0);
	assert_int_equal(r.status, 201);
	sg_gate_response_done(&r);
	stop_server();
	char *req = captured(NULL);
	assert_true(starts_with(req, "POST /v1/functions HTTP/1.1\r\n"));
	assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(req, "\r\nContent-Length: 30\r\n"));
	char *end = strstr(req, "\r\n\r\n");
	assert_non_null(end);
	assert_string_equal(end + 4, body);
	free(req);

	/* A POST without a body still says how long it is (0), so the server need not wait. */
	start_server(&s);
	assert_int_equal(sg_gate_request(sock_path, "POST", "/v1/functions/f/rollback", NULL, NULL, 0, -1, &r), 0);
	sg_gate_response_done(&r);
	stop_server();
	req = captured(NULL);
	assert_non_null(strstr(req, "\r\nContent-Length: 0\r\n"));
	assert_null(strcasestr(req, "Content-Type"));
	free(req);
}

/* Writes a file of n patterned bytes and returns an fd on it. */
static int pattern_file(size_t n)
{
	char path[PATH_MAX];
	static char block[1 << 16];
	int fd;

	snprintf(path, sizeof(path), "%s/upload", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = (char)(i * 7 + i / 251);
	for (size_t off = 0; off < n; off += sizeof(block)) {
		size_t k = n - off < sizeof(block) ? n - off : sizeof(block);
		assert_int_equal(write(fd, block, k), (ssize_t)k);
	}
	/* Leave the offset at the end: the client must send from offset 0 regardless. */
	return fd;
}

static void test_file_body_is_streamed_whole(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	const size_t n = 3 * 1024 * 1024 + 123;
	struct script s = { .answer = answer, .read_body = true };
	sg_gate_response r;
	size_t len;

	(void)state;
	int fd = pattern_file(n);
	start_server(&s);
	assert_int_equal(sg_gate_request(sock_path, "PUT", "/v1/functions/f/code", "application/zip", NULL, 0, fd, &r),
			 0);
	assert_int_equal(r.status, 200);
	sg_gate_response_done(&r);
	stop_server();

	char *req = captured(&len);
	char want[64];
	snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", n);
	assert_non_null(strstr(req, want));
	assert_non_null(strstr(req, "\r\nContent-Type: application/zip\r\n"));
	char *end = strstr(req, "\r\n\r\n");
	assert_non_null(end);
	size_t head = (size_t)(end + 4 - req);
	assert_int_equal(len - head, n);
	char *file = malloc(n);
	assert_non_null(file);
	assert_int_equal(pread(fd, file, n, 0), (ssize_t)n);
	assert_memory_equal(req + head, file, n);
	free(file);
	free(req);
	close(fd);
}

static void test_answer_before_the_body_ends_is_returned(void **state)
{
	/* The gate refuses (413, or 403 for a peer without the deployer role) as soon as it has
	 * read the headers and closes without reading the package: the client must stop sending
	 * and return that answer, not a broken pipe. */
	static const char answer[] =
		"HTTP/1.1 413 Payload Too Large\r\n"
		"X-Amzn-ErrorType: RequestTooLargeException\r\n"
		"Content-Length: 2\r\n\r\n{}";
	struct script s = { .answer = answer };
	sg_gate_response r;

	(void)state;
	int fd = pattern_file(16 * 1024 * 1024);
	start_server(&s);
	assert_int_equal(sg_gate_request(sock_path, "PUT", "/v1/functions/f/code", "application/zip", NULL, 0, fd, &r),
			 0);
	assert_int_equal(r.status, 413);
	assert_string_equal(r.error_type, "RequestTooLargeException");
	sg_gate_response_done(&r);
	close(fd);

	/* Hanging up with no answer at all is reported as the broken pipe it is. */
	struct script gone = { .answer = NULL };
	fd = pattern_file(16 * 1024 * 1024);
	stop_server();
	start_server(&gone);
	int got = sg_gate_request(sock_path, "PUT", "/v1/functions/f/code", NULL, NULL, 0, fd, &r);
	assert_true(got == -EPIPE || got == -ECONNRESET);
	close(fd);
}

static void test_bad_requests_are_refused_before_connecting(void **state)
{
	sg_gate_response r;
	int pfd[2];

	(void)state;
	/* No server: each of these must fail before any connection is tried. */
	assert_int_equal(sg_gate_request(sock_path, "GE T", "/", NULL, NULL, 0, -1, &r), -EINVAL);
	assert_int_equal(sg_gate_request(sock_path, "", "/", NULL, NULL, 0, -1, &r), -EINVAL);
	assert_int_equal(sg_gate_request(sock_path, "GET", "v1/health", NULL, NULL, 0, -1, &r), -EINVAL);
	assert_int_equal(sg_gate_request(sock_path, "GET", "/v1/a b", NULL, NULL, 0, -1, &r), -EINVAL);
	assert_int_equal(sg_gate_request(sock_path, "GET", "/v1/a\r\nX-Evil: 1", NULL, NULL, 0, -1, &r), -EINVAL);
	assert_int_equal(sg_gate_request(sock_path, "PUT", "/", "text/plain\r\nX-Evil: 1", "x", 1, -1, &r), -EINVAL);
	assert_int_equal(sg_gate_request(sock_path, "PUT", "/", NULL, NULL, 5, -1, &r), -EINVAL);
	int fd = pattern_file(10);
	assert_int_equal(sg_gate_request(sock_path, "PUT", "/", NULL, "x", 1, fd, &r), -EINVAL);
	close(fd);
	/* A pipe has no size to put in Content-Length. */
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(sg_gate_request(sock_path, "PUT", "/", NULL, NULL, 0, pfd[0], &r), -EINVAL);
	close(pfd[0]);
	close(pfd[1]);
}

/* ---- path encoding ---- */

static void test_path_segments_are_percent_encoded(void **state)
{
	char buf[256];

	(void)state;
	/* An ARN's colons, and a slash that would otherwise split the segment. */
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/v1/code-signing-configs/%s",
				       "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-0123456789abcdef0"),
			 0);
	assert_string_equal(buf, "/v1/code-signing-configs/arn%3Aaws%3Alambda%3Aus-east-1%3A111111111111%3A"
				 "code-signing-config%3Acsc-0123456789abcdef0");
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/v1/signing-profiles/%s/revoke", "a/../b"), 0);
	assert_string_equal(buf, "/v1/signing-profiles/a%2F..%2Fb/revoke");
	/* Delimiters, space, percent, controls and UTF-8 bytes become uppercase %XX. */
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/v1/functions/%s/code", "a b?c#d%e&f=g+h\n\xc3\xa9"), 0);
	assert_string_equal(buf, "/v1/functions/a%20b%3Fc%23d%25e%26f%3Dg%2Bh%0A%C3%A9/code");
	/* The unreserved set passes unchanged. */
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/%s", "AZaz09-._~"), 0);
	assert_string_equal(buf, "/AZaz09-._~");
	/* Two values and a literal percent. */
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/v1/decisions?function=%s&limit=%s&x=100%%", "f", "5"), 0);
	assert_string_equal(buf, "/v1/decisions?function=f&limit=5&x=100%");
	/* Three dots are a name, not a dot segment. */
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/%s", "..."), 0);
	assert_string_equal(buf, "/...");
}

static void test_path_encoding_refuses_empty_dot_and_overlong_values(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", ""), -EINVAL);
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", "."), -EINVAL);
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", ".."), -EINVAL);
	/* volatile: a literal NULL would (rightly) be a compile-time format warning. */
	const char *volatile none = NULL;
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", none), -EINVAL);
	/* 15 characters fit in 16 bytes; a 16th does not, nor an escape that would straddle. */
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", "abcdefghijkl"), 0);
	assert_string_equal(buf, "/f/abcdefghijkl");
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", "abcdefghijklm"), -ENAMETOOLONG);
	assert_string_equal(buf, "");
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", "abcdefghij:"), -ENAMETOOLONG);
	assert_int_equal(sg_gate_pathf(buf, sizeof(buf), "/f/%s", "abcdefghi:"), 0);
	assert_string_equal(buf, "/f/abcdefghi%3A");
}

static void test_encoded_path_arrives_as_built(void **state)
{
	static const char answer[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	struct script s = { .answer = answer };
	sg_gate_response r;
	char path[SG_GATE_PATH_MAX + 1];

	(void)state;
	assert_int_equal(sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code-signing-config", "my fn/../x"), 0);
	assert_int_equal(exchange(&s, "GET", path, &r), 0);
	assert_int_equal(r.status, 404);
	sg_gate_response_done(&r);
	stop_server();
	char *req = captured(NULL);
	assert_true(starts_with(req, "GET /v1/functions/my%20fn%2F..%2Fx/code-signing-config HTTP/1.1\r\n"));
	free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_content_length_answer_is_read_whole, test_teardown),
		cmocka_unit_test_teardown(test_chunked_answer_is_reassembled_across_tiny_reads, test_teardown),
		cmocka_unit_test_teardown(test_close_delimited_answer_ends_at_eof, test_teardown),
		cmocka_unit_test_teardown(test_no_content_and_interim_answers, test_teardown),
		cmocka_unit_test_teardown(test_error_answer_keeps_status_and_error_type, test_teardown),
		cmocka_unit_test_teardown(test_body_exactly_at_cap_is_accepted, test_teardown),
		cmocka_unit_test_teardown(test_content_length_over_cap_is_refused_from_the_header, test_teardown),
		cmocka_unit_test_teardown(test_chunked_body_over_cap_is_refused, test_teardown),
		cmocka_unit_test_teardown(test_caller_cap_applies_to_close_delimited_bodies, test_teardown),
		cmocka_unit_test_teardown(test_server_closing_early_is_a_reset, test_teardown),
		cmocka_unit_test_teardown(test_malformed_answers_are_protocol_errors, test_teardown),
		cmocka_unit_test_teardown(test_oversized_header_block_is_refused, test_teardown),
		cmocka_unit_test_teardown(test_silent_server_times_out, test_teardown),
		cmocka_unit_test_teardown(test_no_listener_is_enoent_or_econnrefused, test_teardown),
		cmocka_unit_test_teardown(test_json_body_is_sent_with_its_length, test_teardown),
		cmocka_unit_test_teardown(test_file_body_is_streamed_whole, test_teardown),
		cmocka_unit_test_teardown(test_answer_before_the_body_ends_is_returned, test_teardown),
		cmocka_unit_test_teardown(test_bad_requests_are_refused_before_connecting, test_teardown),
		cmocka_unit_test(test_path_segments_are_percent_encoded),
		cmocka_unit_test(test_path_encoding_refuses_empty_dot_and_overlong_values),
		cmocka_unit_test_teardown(test_encoded_path_arrives_as_built, test_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
