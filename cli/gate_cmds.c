/* gate_cmds.c — the CLI verbs that talk to the local gate beyond `lambda`: deploy and
 * decisions; the helpers every API verb shares (one call, one upload, one way of reporting
 * failures); and the best-effort registration and revocation calls signer.c makes.
 *
 * Failures are reported the way the AWS CLI reports service errors, because the seed's users
 * grep for them: "signgate: An error occurred (Code) when calling the Op operation: Message".
 * Exit 1 for a 4xx (the gate refused: a rejection, a bad parameter, a missing object), 2 for
 * a 5xx or an unreachable gate (nothing was decided). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gate_client.h"

/* Timeout for the best-effort calls signer.c makes: a stuck gate must not hold up signing. */
#define HELPER_TIMEOUT_MS 15000

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

/* Errors that mean "could not connect", as opposed to a failure mid-exchange. */
static bool connect_errno(int e) {
        return e == ENOENT || e == ENOTDIR || e == ECONNREFUSED || e == EACCES || e == EPERM || e == ENOTSOCK ||
               e == ENAMETOOLONG || e == ELOOP || e == EPROTOTYPE;
}

/* Says what went wrong with the exchange itself, in words for a person. */
static void describe_transport(const char *socket_path, int r, char *why, size_t len) {
        int e = -r;
        if (connect_errno(e))
                snprintf(why, len, "could not connect to the gate at %s: %s (errno %d)", socket_path, strerror(e), e);
        else if (e == ETIMEDOUT)
                snprintf(why, len, "the gate at %s did not answer in time (errno %d)", socket_path, e);
        else if (e == ECONNRESET || e == EPIPE)
                snprintf(why, len, "the gate at %s closed the connection before answering: %s (errno %d)", socket_path,
                         strerror(e), e);
        else if (e == EFBIG)
                snprintf(why, len, "the gate at %s sent an answer over %u MiB", socket_path, SG_GATE_BODY_MAX >> 20);
        else if (e == EPROTO || e == EMSGSIZE)
                snprintf(why, len, "the gate at %s sent an answer that is not valid HTTP: %s (errno %d)", socket_path,
                         strerror(e), e);
        else
                snprintf(why, len, "talking to the gate at %s: %s (errno %d)", socket_path, strerror(e), e);
}

/* The error body's Code and Message (AWS's shape), falling back on the X-Amzn-ErrorType
 * header, the status, and the body's first line for a non-JSON answer. Control characters
 * are replaced so the report stays one line. */
static void error_parts(const sg_gate_response *resp, const cJSON *j, char *code, size_t clen, char *msg, size_t mlen) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "Code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "Message");
        if (!cJSON_IsString(m))
                m = cJSON_GetObjectItemCaseSensitive(j, "message");
        if (cJSON_IsString(c) && c->valuestring[0])
                snprintf(code, clen, "%s", c->valuestring);
        else if (resp->error_type[0])
                /* The header may carry ":uri" suffixes in AWS's services; keep the name. */
                snprintf(code, clen, "%.*s", (int) strcspn(resp->error_type, ":"), resp->error_type);
        else
                snprintf(code, clen, "%d", resp->status);
        if (cJSON_IsString(m))
                snprintf(msg, mlen, "%s", m->valuestring);
        else if (!j && resp->len > 0)
                snprintf(msg, mlen, "%.*s", (int) strcspn(resp->body, "\r\n"), resp->body);
        else
                snprintf(msg, mlen, "%s", resp->reason[0] ? resp->reason : "no message");
        for (char *p = msg; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = ' ';
        for (char *p = code; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        *p = ' ';
}

/* Prints the AWS-style error line; returns the exit code for the status. */
static int report_http_error(const char *op, const sg_gate_response *resp, const cJSON *j) {
        char code[128], msg[1024];
        error_parts(resp, j, code, sizeof(code), msg, sizeof(msg));
        return sg_cli_fail(resp->status >= 400 && resp->status < 500 ? SG_EXIT_REFUSED : SG_EXIT_USAGE,
                           "An error occurred (%s) when calling the %s operation: %s", code, op, msg);
}

/* The shared core: one exchange, parsed. On a 2xx, *ret is the JSON body (NULL when empty).
 * Otherwise the error is printed and, when the error body carries a decision record, it is
 * handed back in *ret_decision. */
static int call(const sg_cli *cli, const char *op, const char *method, const char *path, const cJSON *body,
                int body_fd, cJSON **ret, cJSON **ret_decision) {
        _cleanup_(sg_freep) char *text = NULL;
        sg_gate_response resp;
        char why[512];
        int r;

        *ret = NULL;
        if (ret_decision)
                *ret_decision = NULL;
        if (body && !(text = cJSON_PrintUnformatted(body)))
                return sg_cli_error("out of memory");
        if (body_fd >= 0)
                r = sg_gate_request(cli->gate, method, path, "application/zip", NULL, 0, body_fd, &resp);
        else
                r = sg_gate_request(cli->gate, method, path, text ? "application/json" : NULL, text,
                                    text ? strlen(text) : 0, -1, &resp);
        if (r < 0) {
                describe_transport(cli->gate, r, why, sizeof(why));
                if (connect_errno(-r))
                        return sg_cli_error("%s (is signgated running? point --gate or SIGNGATE_SOCKET at its socket)", why);
                return sg_cli_error("%s", why);
        }
        /* An empty body parses as nothing; anything else must be JSON. */
        cJSON *j = NULL;
        if (resp.len > 0) {
                j = cJSON_ParseWithLength(resp.body, resp.len);
                if (!j && resp.status >= 200 && resp.status < 300) {
                        r = sg_cli_error("the gate at %s answered %s %s with something that is not JSON", cli->gate,
                                         method, path);
                        sg_gate_response_done(&resp);
                        return r;
                }
        }
        if (resp.status >= 200 && resp.status < 300) {
                sg_gate_response_done(&resp);
                *ret = j;
                return SG_EXIT_OK;
        }
        if (ret_decision) {
                cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "Decision");
                if (cJSON_IsObject(d))
                        *ret_decision = cJSON_DetachItemViaPointer(j, d);
        }
        int code = report_http_error(op, &resp, j);
        cJSON_Delete(j);
        sg_gate_response_done(&resp);
        return code;
}

int sg_gate_cli_call(const sg_cli *cli, const char *op, const char *method, const char *path, const cJSON *body,
                     cJSON **ret) {
        cJSON *decision = NULL;
        int code = call(cli, op, method, path, body, -1, ret, &decision);
        /* JSON calls carry no decision today; should one ever come back (a rollback refused
         * with its record), show it rather than drop it. */
        if (decision)
                (void) sg_cli_print(cli, decision);
        return code;
}

int sg_gate_cli_upload(const sg_cli *cli, const char *op, const char *method, const char *path, const char *file,
                       cJSON **ret_record) {
        struct stat st;
        *ret_record = NULL;
        /* O_NONBLOCK: a FIFO given by mistake must not hang the open. */
        _cleanup_(sg_closep) int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return sg_cli_error("%s: %s", file, strerror(errno));
        if (fstat(fd, &st) < 0)
                return sg_cli_error("%s: %s", file, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return sg_cli_error("%s: not a regular file", file);

        cJSON *rec = NULL, *decision = NULL;
        int code = call(cli, op, method, path, NULL, fd, &rec, &decision);
        if (code != SG_EXIT_OK) {
                *ret_record = decision;
                return code;
        }
        if (!cJSON_IsObject(rec)) {
                cJSON_Delete(rec);
                return sg_cli_error("the gate at %s answered %s %s without a decision record", cli->gate, method, path);
        }
        const cJSON *outcome = cJSON_GetObjectItemCaseSensitive(rec, "outcome");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(rec, "message");
        /* The contract answers a rejection with 403; a 2xx saying "rejected" is still one. */
        if (cJSON_IsString(outcome) && strcmp(outcome->valuestring, "rejected") == 0) {
                *ret_record = rec;
                return sg_cli_fail(SG_EXIT_REFUSED, "An error occurred (CodeVerificationFailedException) when calling the %s operation: %s",
                                   op, cJSON_IsString(msg) ? msg->valuestring : "the package was rejected");
        }
        if (cJSON_IsString(outcome) && strcmp(outcome->valuestring, "promoted-with-warnings") == 0)
                fprintf(stderr, "signgate: warning: %s\n",
                        cJSON_IsString(msg) ? msg->valuestring : "promoted with warnings (see the record's reasons)");
        *ret_record = rec;
        return SG_EXIT_OK;
}

/* ---- signgate deploy ---- */

int sg_cmd_deploy(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "wait", .flag = true}};
        const char *pos[2];
        size_t np = 0;
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *rec = NULL;

        if (sg_cli_parse("deploy", argc, argv, o, SG_ELEMENTSOF(o), pos, 2, &np) < 0)
                return SG_EXIT_USAGE;
        if (np != 2)
                return sg_cli_error("deploy: usage: signgate deploy FUNCTION FILE [--wait]");
        /* --wait is accepted for DESIGN §11's spelling; the API always answers with the
         * decision, so every deploy waits for it. */
        if (sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code", pos[0]) < 0)
                return sg_cli_error("deploy: '%s' is not a function name", pos[0]);
        int code = sg_gate_cli_upload(cli, "UpdateFunctionCode", "PUT", path, pos[1], &rec);
        if (rec) {
                int pc = sg_cli_print(cli, rec);
                if (code == SG_EXIT_OK)
                        code = pc;
        }
        return code;
}

/* ---- signgate decisions ---- */

int sg_cmd_decisions(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "function"}, {.name = "outcome"}, {.name = "limit"}};
        char path[SG_GATE_PATH_MAX + 1], part[SG_GATE_PATH_MAX + 1];
        uint64_t limit = 0;
        size_t w;
        cJSON *out = NULL;

        if (sg_cli_parse("decisions", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        const char *outcome = o[1].value;
        if (outcome && strcmp(outcome, "promoted") != 0 && strcmp(outcome, "promoted-with-warnings") != 0 &&
            strcmp(outcome, "rejected") != 0)
                return sg_cli_error("decisions: --outcome '%s': must be promoted, promoted-with-warnings or rejected", outcome);
        if (o[2].value && sg_parse_u64(o[2].value, 1, 1000, &limit) < 0)
                return sg_cli_error("decisions: --limit '%s': must be a number from 1 to 1000", o[2].value);
        if (o[0].value && !*o[0].value)
                return sg_cli_error("decisions: --function must not be empty");

        /* Each query value is percent-encoded like a path segment: the same unreserved set is
         * safe in a query, and "&", "=", "#" in a value cannot bend the query. */
        w = (size_t) snprintf(path, sizeof(path), "/v1/decisions");
        const char *keys[] = {"function", "outcome", "limit"};
        char num[24];
        if (o[2].value)
                snprintf(num, sizeof(num), "%llu", (unsigned long long) limit);
        const char *vals[] = {o[0].value, outcome, o[2].value ? num : NULL};
        char sep = '?';
        for (size_t i = 0; i < SG_ELEMENTSOF(keys); i++) {
                if (!vals[i])
                        continue;
                if (sg_gate_pathf(part, sizeof(part), "%s", vals[i]) < 0)
                        return sg_cli_error("decisions: --%s '%s': cannot be sent", keys[i], vals[i]);
                int k = snprintf(path + w, sizeof(path) - w, "%c%s=%s", sep, keys[i], part);
                if (k < 0 || (size_t) k >= sizeof(path) - w)
                        return sg_cli_error("decisions: --%s is too long", keys[i]);
                w += (size_t) k;
                sep = '&';
        }
        int code = sg_gate_cli_call(cli, "ListDecisions", "GET", path, NULL, &out);
        if (code != SG_EXIT_OK)
                return code;
        if (!out)
                return sg_cli_error("the gate at %s answered GET %s with an empty body", cli->gate, path);
        return sg_cli_print(cli, out);
}

/* ---- best effort, for signer.c ---- */

static int status_errno(int status) {
        if (status >= 200 && status < 300)
                return 0;
        switch (status) {
        case 400:
                return -EINVAL;
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENXIO;
        case 409:
                return -EEXIST;
        case 413:
                return -E2BIG;
        default:
                return status >= 500 ? -EIO : -EPROTO;
        }
}

static int helper_call(const sg_cli *cli, const char *method, const char *path, const cJSON *body, char *why,
                       size_t len) {
        const sg_gate_options opts = {.timeout_ms = HELPER_TIMEOUT_MS};
        _cleanup_(sg_freep) char *text = cJSON_PrintUnformatted(body);
        sg_gate_response resp;

        if (why && len)
                why[0] = '\0';
        if (!text) {
                if (why && len)
                        snprintf(why, len, "out of memory");
                return -ENOMEM;
        }
        int r = sg_gate_request_opts(&opts, cli->gate, method, path, "application/json", text, strlen(text), -1, &resp);
        if (r < 0) {
                /* A missing directory on the way to the socket means no gate here either. */
                if (r == -ENOTDIR)
                        r = -ENOENT;
                if (why && len)
                        describe_transport(cli->gate, r, why, len);
                return r;
        }
        r = status_errno(resp.status);
        if (r < 0 && why && len) {
                _cleanup_(cjson_deletep) cJSON *j = resp.len ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
                char code[128], msg[512];
                error_parts(&resp, j, code, sizeof(code), msg, sizeof(msg));
                snprintf(why, len, "the gate at %s refused %s %s: %s: %s", cli->gate, method, path, code, msg);
        }
        sg_gate_response_done(&resp);
        return r;
}

int sg_gate_register_profile(const sg_cli *cli, const cJSON *doc, char *why, size_t len) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "profileName");
        char path[SG_GATE_PATH_MAX + 1];

        if (!cJSON_IsString(name) || sg_gate_pathf(path, sizeof(path), "/v1/signing-profiles/%s", name->valuestring) < 0) {
                if (why && len)
                        snprintf(why, len, "the profile document has no usable profileName");
                return -EINVAL;
        }
        return helper_call(cli, "PUT", path, doc, why, len);
}

int sg_gate_revoke(const sg_cli *cli, const char *path, const cJSON *body, char *why, size_t len) {
        if (!path || !body) {
                if (why && len)
                        snprintf(why, len, "no revocation to send");
                return -EINVAL;
        }
        return helper_call(cli, "POST", path, body, why, len);
}
