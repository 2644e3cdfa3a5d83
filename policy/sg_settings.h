/* sg_settings.h — signgated.json (DESIGN §7): the gate's settings, with built-in defaults.
 *
 * Every key is optional; an unknown key, a wrong type or a value out of range fails the parse
 * with a message naming the key ("limits.entries: must be an integer from 1 to 1000000"). The
 * CLI's offline verify reads the same file so that it decides exactly as the gate does. */
#ifndef SG_SETTINGS_H
#define SG_SETTINGS_H

#include <limits.h>

#include "sg_common.h"
#include "sg_package.h"

#define SG_SETTINGS_MAX_BYTES (256 * 1024)
#define SG_ROLE_MAX_MEMBERS 64
#define SG_DEFAULT_RETAIN_RELEASES 5
#define SG_DEFAULT_SOCKET "/run/signgate/api.sock"
#define SG_HOOK_MAX_ARGS 32
#define SG_HOOK_MAX_ARG 1024
#define SG_DEFAULT_HOOK_TIMEOUT 30
#define SG_DEFAULT_AUDIT_ROTATE_BYTES (64ull * 1024 * 1024)
#define SG_DEFAULT_AUDIT_KEEP 10

typedef enum { SG_ROLE_ADMIN, SG_ROLE_DEPLOYER, SG_ROLE_READER, SG_ROLE_MAX_ } sg_role;
const char *sg_role_name(sg_role r);

typedef struct {
        size_t n_users, n_groups;
        char users[SG_ROLE_MAX_MEMBERS][64];
        char groups[SG_ROLE_MAX_MEMBERS][64];
} sg_role_members;

typedef struct {
        bool unbound_allow;            /* "unboundFunctions": "reject" (default) | "allow" */
        sg_limits limits;              /* "limits": {packageBytes, inflatedBytes, entries, nameBytes, depth} */
        uint32_t retain_releases;      /* "retainReleases", default 5 */
        sg_role_members roles[SG_ROLE_MAX_]; /* "roles": {"admin": {"users": [], "groups": []}, …} */
        char socket_path[PATH_MAX];    /* "socket": {"path", "group", "mode"} */
        char socket_group[64];
        unsigned socket_mode;          /* default 0660; given as an octal string "0660" */
        bool journal;                  /* "journal", default true */
        size_t hook_argc;              /* "hook": {"argv": [...], "timeoutSeconds": N}: run after */
        char hook_argv[SG_HOOK_MAX_ARGS][SG_HOOK_MAX_ARG]; /* each promotion, no shell; argv[0] absolute */
        uint32_t hook_timeout;         /* seconds, default 30 */
        uint64_t audit_rotate_bytes;   /* "audit": {"rotateBytes", "keepFiles"}: 64 MiB, 10 files */
        uint32_t audit_keep;
} sg_settings;

void sg_settings_default(sg_settings *s);
/* Parses a settings document over the defaults. -EINVAL with err naming the key. */
int sg_settings_parse(const char *text, size_t len, sg_settings *ret, sg_error *err);
/* Reads path; a missing file gives the defaults and returns -ENOENT with *ret filled. */
int sg_settings_load(const char *path, sg_settings *ret, sg_error *err);

#endif
