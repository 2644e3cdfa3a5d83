/* signgate audit verify FILE…: checks the hash chain of audit files (DESIGN §12) offline.
 * Files may be given in any order (e.g. `audit.jsonl*`); the library orders them by seq. Exit 0 and
 * a summary when the chain holds, 1 and one line "signgate: FILE:LINE: problem" at the first broken
 * or missing line, 2 for usage or I/O errors. */
#include <errno.h>
#include <string.h>

#include "sg_audit.h"
#include "sg_cli.h"

static int cmd_verify(const sg_cli *cli, int argc, char **argv) {
        _cleanup_(sg_freep) const char **paths = calloc((size_t) argc + 1, sizeof(*paths));
        sg_audit_summary sum;
        sg_error err = {0};
        size_t n = 0;
        int r;

        if (!paths)
                return sg_cli_error("out of memory");
        if (sg_cli_parse("audit verify", argc, argv, NULL, 0, paths, (size_t) argc, &n) < 0)
                return SG_EXIT_USAGE;
        if (n == 0)
                return sg_cli_error("audit verify: usage: signgate audit verify FILE... (e.g. /var/log/signgate/audit.jsonl*)");
        r = sg_audit_verify(paths, n, &sum, &err);
        if (r == -EBADMSG)
                return sg_cli_fail(SG_EXIT_REFUSED, "%s", err.msg);
        if (r < 0)
                return sg_cli_error("%s", err.msg[0] ? err.msg : strerror(-r));

        cJSON *j = cJSON_CreateObject();
        if (!j || !cJSON_AddNumberToObject(j, "files", (double) sum.files) ||
            !cJSON_AddNumberToObject(j, "records", (double) sum.records) ||
            !cJSON_AddNumberToObject(j, "firstSeq", (double) sum.first_seq) ||
            !cJSON_AddNumberToObject(j, "lastSeq", (double) sum.last_seq) ||
            !cJSON_AddBoolToObject(j, "chainedFromEarlier", sum.chained_from_earlier)) {
                cJSON_Delete(j);
                return sg_cli_error("out of memory");
        }
        return sg_cli_print(cli, j);
}

int sg_cmd_audit(const sg_cli *cli, int argc, char **argv) {
        if (argc < 1)
                return sg_cli_error("audit: missing verb (verify; see signgate help)");
        if (strcmp(argv[0], "verify") == 0)
                return cmd_verify(cli, argc - 1, argv + 1);
        return sg_cli_error("audit: unknown verb '%s' (see signgate help)", argv[0]);
}
