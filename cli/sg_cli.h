/* sg_cli.h — what the signgate CLI's verbs share: the global options, argument parsing in
 * the AWS CLI's style, JSON output through --query/--output, and one-line errors.
 *
 * Exit codes: 0 success; 1 a refusal or a rejected package (the verb says which); 2 usage or
 * I/O error; 255 a waiter's terminal failure (as the AWS CLI). */
#ifndef SG_CLI_H
#define SG_CLI_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdbool.h>

#include "sg_common.h"

#define SG_EXIT_OK 0
#define SG_EXIT_REFUSED 1
#define SG_EXIT_USAGE 2
#define SG_EXIT_WAITER 255

typedef struct {
        const char *signer_home; /* --signer-home, SIGNGATE_SIGNER_HOME, ~/.local/share/signgate/signer */
        const char *bucket_root; /* --bucket-root, SIGNGATE_BUCKET_ROOT, the current directory */
        const char *gate;        /* --gate, SIGNGATE_SOCKET, /run/signgate/api.sock */
        const char *query;       /* --query */
        const char *output;      /* --output json|text */
} sg_cli;

/* One option a verb accepts. Flags take no value. */
typedef struct {
        const char *name; /* without the leading "--" */
        bool flag;
        bool required;
        const char *value; /* filled by sg_cli_parse: the value, "1" for a set flag, or NULL */
} sg_cli_opt;

/* Parses argv (after the verb) into opts; positional arguments go to pos (at most n_pos).
 * Accepts "--name value" and "--name=value". Prints the error and returns -EINVAL on an
 * unknown, repeated or missing option. */
int sg_cli_parse(const char *verb, int argc, char **argv, sg_cli_opt *opts, size_t n_opts, const char **pos,
                 size_t n_pos, size_t *ret_n_pos);
const char *sg_cli_get(const sg_cli_opt *opts, size_t n, const char *name);

/* Prints "signgate: MESSAGE" on stderr; returns SG_EXIT_USAGE for `return sg_cli_error(...)`. */
int sg_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, with a chosen exit code. */
int sg_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints v on stdout through --query and --output (json: 4-space indented; text: AWS style).
 * Takes ownership of v. Returns an exit code. */
int sg_cli_print(const sg_cli *cli, cJSON *v);

/* Parses AWS CLI shorthand "k=v,k2=v2" (or a JSON object) into a new cJSON object of strings. */
cJSON *sg_cli_shorthand(const char *s);

/* Joins the bucket root, a bucket and a key into path, refusing keys that climb out of the
 * bucket ("..", absolute, empty components). */
int sg_cli_s3_path(const sg_cli *cli, const char *bucket, const char *key, char *path, size_t len);

/* Opens (creating with mode 0700 when missing) a directory of the signer home; returns an fd. */
int sg_cli_open_home(const sg_cli *cli, const char *sub, bool create);

int sg_cmd_signer(const sg_cli *cli, int argc, char **argv);
int sg_cmd_verify(const sg_cli *cli, int argc, char **argv);
int sg_cmd_audit(const sg_cli *cli, int argc, char **argv);

#endif
