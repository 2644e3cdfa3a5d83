/* signgate — the CLI: the AWS CLI's signer commands with `aws` replaced by `signgate`, plus
 * offline verification. Global options may stand anywhere on the command line, as in the
 * AWS CLI. See sg_cli.h for the exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate_client.h"
#include "sg_cli.h"
#include "sg_version.h"

static const char usage[] =
        "usage: signgate [global options] COMMAND VERB [options]\n"
        "\n"
        "Signing (CI side):\n"
        "  signer put-signing-profile --profile-name N --platform-id AWSLambda-SHA384-ECDSA\n"
        "                             [--signature-validity-period value=135,type=MONTHS] [--tags K=V,...] [--rotate]\n"
        "  signer list-signing-platforms | get-signing-profile --profile-name N | list-signing-profiles\n"
        "  signer start-signing-job --source PATH|S3JSON --destination DIR|S3JSON --profile-name N\n"
        "  signer describe-signing-job --job-id ID | list-signing-jobs [--status Succeeded]\n"
        "  signer wait successful-signing-job --job-id ID\n"
        "  signer revoke-signing-profile --profile-name N --profile-version V --reason R --effective-time T\n"
        "  signer revoke-signature --job-id ID --reason R\n"
        "\n"
        "Deploying through the gate (its API socket, --gate):\n"
        "  lambda create-code-signing-config --allowed-publishers SigningProfileVersionArns=ARN,...\n"
        "         [--code-signing-policies UntrustedArtifactOnDeployment=Enforce|Warn] [--description D]\n"
        "  lambda get-|update-|delete-code-signing-config --code-signing-config-arn ARN | list-code-signing-configs\n"
        "  lambda create-function --function-name F [--code-signing-config-arn ARN] [--zip-file fileb://FILE]\n"
        "  lambda put-|get-|delete-function-code-signing-config --function-name F [--code-signing-config-arn ARN]\n"
        "  lambda update-function-code --function-name F (--zip-file fileb://FILE | --s3-bucket B --s3-key K)\n"
        "  lambda publish-layer-version --layer-name L --zip-file fileb://FILE | lambda list-functions\n"
        "  deploy FUNCTION FILE [--wait]\n"
        "  decisions [--function F] [--outcome promoted|promoted-with-warnings|rejected] [--limit N]\n"
        "\n"
        "Verification (offline, no keys needed):\n"
        "  verify PACKAGE --profile-doc FILE [--policy Enforce|Warn] [--function F]\n"
        "  verify PACKAGE --policy-dir DIR --function F [--settings FILE]\n"
        "  verify FILE --signature FILE.sig --profile-doc FILE      (Blob-SHA384-ECDSA)\n"
        "\n"
        "The gate's records:\n"
        "  audit verify FILE...   check the audit file's hash chain (rotated files too)\n"
        "\n"
        "Global options:\n"
        "  --signer-home DIR   keystore (SIGNGATE_SIGNER_HOME, default ~/.local/share/signgate/signer)\n"
        "  --bucket-root DIR   where S3 locations map: BUCKET_ROOT/BUCKET/KEY (SIGNGATE_BUCKET_ROOT, default .)\n"
        "  --gate SOCKET       the gate's API socket (SIGNGATE_SOCKET, default /run/signgate/api.sock)\n"
        "  --query EXPR        JMESPath subset applied to the JSON output\n"
        "  --output json|text  output format (default json)\n"
        "  --version, help\n"
        "\n"
        "Exit status: 0 success or promoted, 1 refused or rejected, 2 usage or I/O error,\n"
        "255 a waiter's terminal failure.\n";

int main(int argc, char **argv) {
        static char home_buf[4096];
        sg_cli cli = {
                .signer_home = getenv("SIGNGATE_SIGNER_HOME"),
                .bucket_root = getenv("SIGNGATE_BUCKET_ROOT"),
                .gate = getenv("SIGNGATE_SOCKET"),
        };
        const char **globals[] = {&cli.signer_home, &cli.bucket_root, &cli.gate, &cli.query, &cli.output};
        const char *names[] = {"--signer-home", "--bucket-root", "--gate", "--query", "--output"};
        char **rest = calloc((size_t) argc + 1, sizeof(char *));
        int n = 0;

        if (!rest)
                return sg_cli_error("out of memory");
        /* Pull the global options out wherever they stand; the verb sees only its own. */
        for (int i = 1; i < argc; i++) {
                bool taken = false;
                for (size_t g = 0; g < SG_ELEMENTSOF(names) && !taken; g++) {
                        size_t len = strlen(names[g]);
                        if (strcmp(argv[i], names[g]) == 0) {
                                if (i + 1 >= argc) {
                                        free(rest);
                                        return sg_cli_error("option %s needs a value", names[g]);
                                }
                                *globals[g] = argv[++i];
                                taken = true;
                        } else if (strncmp(argv[i], names[g], len) == 0 && argv[i][len] == '=') {
                                *globals[g] = argv[i] + len + 1;
                                taken = true;
                        }
                }
                if (!taken)
                        rest[n++] = argv[i];
        }
        int code;
        if (cli.output && strcmp(cli.output, "json") != 0 && strcmp(cli.output, "text") != 0) {
                code = sg_cli_error("--output '%s': must be json or text", cli.output);
                goto out;
        }
        if (!cli.signer_home) {
                const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
                if (xdg && *xdg)
                        snprintf(home_buf, sizeof(home_buf), "%s/signgate/signer", xdg);
                else
                        snprintf(home_buf, sizeof(home_buf), "%s/.local/share/signgate/signer", home ? home : ".");
                cli.signer_home = home_buf;
        }
        if (!cli.bucket_root)
                cli.bucket_root = ".";
        if (!cli.gate)
                cli.gate = "/run/signgate/api.sock";

        if (n == 0 || strcmp(rest[0], "help") == 0 || strcmp(rest[0], "--help") == 0 || strcmp(rest[0], "-h") == 0) {
                fputs(usage, n == 0 ? stderr : stdout);
                code = n == 0 ? SG_EXIT_USAGE : SG_EXIT_OK;
        } else if (strcmp(rest[0], "--version") == 0) {
                printf("signgate %s\n", SG_VERSION);
                code = SG_EXIT_OK;
        } else if (strcmp(rest[0], "signer") == 0)
                code = sg_cmd_signer(&cli, n - 1, rest + 1);
        else if (strcmp(rest[0], "verify") == 0)
                code = sg_cmd_verify(&cli, n - 1, rest + 1);
        else if (strcmp(rest[0], "audit") == 0)
                code = sg_cmd_audit(&cli, n - 1, rest + 1);
        else if (strcmp(rest[0], "lambda") == 0)
                code = sg_cmd_lambda(&cli, n - 1, rest + 1);
        else if (strcmp(rest[0], "deploy") == 0)
                code = sg_cmd_deploy(&cli, n - 1, rest + 1);
        else if (strcmp(rest[0], "decisions") == 0)
                code = sg_cmd_decisions(&cli, n - 1, rest + 1);
        else
                code = sg_cli_error("unknown command '%s' (see signgate help)", rest[0]);
out:
        free(rest);
        return code;
}
