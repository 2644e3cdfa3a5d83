/* gate_client.h — the CLI's side of the gate's HTTP/1.1 + JSON API over its unix socket
 * (DESIGN §10, §11).
 *
 * Two layers:
 *  - sg_gate_request(): one HTTP exchange over AF_UNIX, libc only. It knows nothing of JSON
 *    or of the CLI, so the unit tests drive it against a scripted server.
 *  - the CLI verbs that speak the API (signgate lambda …, deploy, decisions), the helpers they
 *    share, and the two calls signer.c makes to keep the local gate in step with the keystore.
 *
 * Errors are negative errnos throughout. What sg_gate_request() returns, by phase:
 *   connecting    -ENOENT (no socket file), -ECONNREFUSED (a socket nobody listens on),
 *                 -EACCES/-EPERM (not allowed to connect), -ENOTSOCK, -ENOTDIR, -ENAMETOOLONG
 *                 (a path longer than sun_path), -ETIMEDOUT (the listen backlog stayed full)
 *   the request   -EINVAL (a bad method, path, content type, or body_fd not a regular file),
 *                 -EIO (body_fd shrank while it was sent), errors of read(2) on body_fd
 *   the answer    -ETIMEDOUT (no whole answer within the timeout), -ECONNRESET/-EPIPE (the
 *                 gate closed the connection before the whole answer arrived), -EPROTO (not
 *                 HTTP/1.x or malformed framing), -EMSGSIZE (status line and headers over
 *                 SG_GATE_HEADER_MAX), -EFBIG (body over the cap), -ENOMEM
 * A gate that answers while a body is still being sent (413, 403 before it reads the package)
 * is not an error: sending stops and its answer is returned.
 */
#ifndef SG_GATE_CLIENT_H
#define SG_GATE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "sg_cli.h"

/* The largest response body accepted: decision lists are the big ones (1000 records). */
#define SG_GATE_BODY_MAX (16u * 1024 * 1024)
/* Status line plus headers (and, for chunked bodies, the trailers) of one response. */
#define SG_GATE_HEADER_MAX (16u * 1024)
/* A JSON call answers at once; an upload waits for the package to be verified and promoted. */
#define SG_GATE_TIMEOUT_MS 60000
#define SG_GATE_UPLOAD_TIMEOUT_MS 300000
/* The longest request path (with its query) sg_gate_request() sends. */
#define SG_GATE_PATH_MAX 4096

typedef struct {
        int status;              /* 100..599; never 1xx: interim responses are skipped */
        char reason[64];         /* the reason phrase, truncated */
        char content_type[128];  /* Content-Type, "" when absent */
        char error_type[128];    /* X-Amzn-ErrorType, "" when absent */
        char *body;              /* NUL-terminated (never NULL after success), may hold NULs */
        size_t len;
} sg_gate_response;

typedef struct {
        int timeout_ms;  /* the whole exchange, connect to last byte; <= 0: the default */
        size_t body_max; /* 0: SG_GATE_BODY_MAX */
} sg_gate_options;

/* One request: connects to socket_path, sends METHOD PATH with "Connection: close", the body
 * (at most one of body/len and body_fd; body_fd is a regular file sent whole from offset 0
 * with its size as Content-Length; PUT and POST always carry a Content-Length), and reads the
 * answer: Content-Length, chunked or close-delimited. path must already be encoded (see
 * sg_gate_pathf). The timeout is SG_GATE_UPLOAD_TIMEOUT_MS when body_fd >= 0, else
 * SG_GATE_TIMEOUT_MS. Returns 0 with *ret filled (free with sg_gate_response_done), or a
 * negative errno (see above) with *ret zeroed. */
int sg_gate_request(const char *socket_path, const char *method, const char *path, const char *content_type,
                    const void *body, size_t len, int body_fd, sg_gate_response *ret);
/* The same with an explicit timeout and body cap (opts may be NULL). */
int sg_gate_request_opts(const sg_gate_options *opts, const char *socket_path, const char *method, const char *path,
                         const char *content_type, const void *body, size_t len, int body_fd, sg_gate_response *ret);
void sg_gate_response_done(sg_gate_response *r);

/* Builds a request path from fmt, whose only conversions are %s (one argument, inserted
 * percent-encoded: every byte but RFC 3986's unreserved A-Z a-z 0-9 - . _ ~ becomes %XX, so
 * a "/" or ":" of an ARN cannot split or end a segment) and %% (a literal "%"). An empty
 * argument and the dot segments "." and ".." are refused with -EINVAL, since no name the API
 * knows is either and a dot segment could be folded by a path normaliser; -ENAMETOOLONG when
 * the result does not fit in len (or exceeds SG_GATE_PATH_MAX). The format attribute keeps
 * the compiler checking that each %s gets a string. */
int sg_gate_pathf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- the CLI verbs (cli/lambda.c, cli/gate_cmds.c) ---- */

/* signgate lambda VERB …: the seed's `aws lambda` commands against the gate's API. */
int sg_cmd_lambda(const sg_cli *cli, int argc, char **argv);
/* signgate deploy FUNCTION FILE [--wait]: upload a package, print the decision record. */
int sg_cmd_deploy(const sg_cli *cli, int argc, char **argv);
/* signgate decisions [--function F] [--outcome O] [--limit N]: recent decision records. */
int sg_cmd_decisions(const sg_cli *cli, int argc, char **argv);

/* ---- what signer.c calls: best effort, silent when no gate runs on this host ---- */

/* Registers a public profile document (what get-signing-profile prints) with the gate:
 * PUT /v1/signing-profiles/{profileName}. Returns 0 when the gate holds it (201 created or
 * 200 already present), or a negative errno with why filled:
 *   -ENOENT, -ECONNREFUSED  no gate listens on cli->gate (callers stay silent: the profile
 *                           document can be imported later);
 *   -EACCES                 not allowed to connect, or 403 (needs the admin role);
 *   -EINVAL                 400, or a document without a profileName;
 *   -EEXIST                 409 (NAME@VERSION is registered with another document);
 *   -ENXIO                  404 (the gate does not know the route or the object);
 *   -E2BIG                  413; -EIO a 5xx; -EPROTO any other status;
 *   transport errors as sg_gate_request(). */
int sg_gate_register_profile(const sg_cli *cli, const cJSON *doc, char *why, size_t len);
/* POSTs a revocation to path (already encoded, e.g. built with
 * sg_gate_pathf(p, n, "/v1/signing-profiles/%s/revoke", name) or
 * "/v1/signatures/%s/revoke") with body as JSON ({"profileVersion","effectiveTime","reason"}
 * or {"reason"}). Returns as sg_gate_register_profile; -EEXIST is the gate's 409 (an
 * effective time may only move earlier), -ENXIO its 404 (it does not know the profile or job). */
int sg_gate_revoke(const sg_cli *cli, const char *path, const cJSON *body, char *why, size_t len);

/* ---- shared by the verbs in lambda.c and gate_cmds.c ---- */

/* One JSON call for a verb: sends body (NULL: none) and, on a 2xx answer, stores its parsed
 * JSON in *ret (NULL for an empty body such as 204) and returns SG_EXIT_OK. Otherwise prints
 * one line on stderr — "signgate: An error occurred (CODE) when calling the OP operation:
 * MESSAGE" for an HTTP error, the socket path and errno when the gate is unreachable — and
 * returns SG_EXIT_REFUSED for a 4xx, SG_EXIT_USAGE for a 5xx or a transport failure. */
int sg_gate_cli_call(const sg_cli *cli, const char *op, const char *method, const char *path, const cJSON *body,
                     cJSON **ret);

/* Uploads the package at file (PUT or POST to path) and waits for the decision. Returns
 * SG_EXIT_OK with *ret_record the decision record (a "promoted-with-warnings" outcome also
 * prints "signgate: warning: MESSAGE" on stderr); SG_EXIT_REFUSED with *ret_record the 403
 * body's Decision (the error line printed) when the package was rejected; otherwise an exit
 * code as sg_gate_cli_call, *ret_record the error body's Decision when it had one (5xx
 * INTERNAL), else NULL. Nothing is printed on stdout: the caller prints the record. */
int sg_gate_cli_upload(const sg_cli *cli, const char *op, const char *method, const char *path, const char *file,
                       cJSON **ret_record);

#endif
