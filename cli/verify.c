/* signgate verify PACKAGE: the gate's decision, offline. The same library calls the gate
 * makes (sg_package_inspect, sg_envelope_parse, sg_decide) on the same facts, so the printed
 * record is the one the gate would write (without seq and prev, with source "verify").
 * No key material is needed or read. Exit 0 promoted (warnings on stderr), 1 rejected,
 * 2 usage or I/O error. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_cli.h"
#include "sg_decide.h"
#include "sg_settings.h"

/* Offline verification against one profile document uses a code signing config of its own:
 * this id in the record says so. */
#define OFFLINE_CSC_ID "csc-00000000000000000"

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

/* The function an inbox name (F.zip, F@ANY.zip) would deploy to, else "function". */
static void function_from_name(const char *path, char *out, size_t len) {
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", path);
        char *b = basename(buf);
        size_t n = strcspn(b, "@.");
        snprintf(out, len, "%.*s", (int) (n < 64 ? n : 64), b);
        if (!sg_name_valid(out))
                snprintf(out, len, "function");
}

/* Builds a one-profile store: the profile, a CSC allowing exactly it, and the function bound. */
static int store_from_profile_doc(const char *path, const char *function, sg_untrusted_policy policy, sg_store **ret) {
        _cleanup_(sg_store_freep) sg_store *s = sg_store_new();
        _cleanup_(sg_freep) char *text = NULL;
        sg_error err = {0};
        size_t len = 0;
        int r;

        if (!s)
                return sg_cli_error("out of memory");
        if ((r = sg_read_file(AT_FDCWD, path, SG_STORE_DOC_MAX, &text, &len)) < 0)
                return sg_cli_error("%s: %s", path, strerror(-r));
        _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLength(text, len);
        sg_profile p;
        if (!j)
                return sg_cli_error("%s: not valid JSON", path);
        if ((r = sg_profile_from_json(j, &p, &err)) < 0)
                return r == -EINVAL ? sg_cli_error("%s: %s", path, err.msg) : sg_cli_error("%s: %s", path, strerror(-r));
        sg_csc c = {.policy = policy, .n_publishers = 1};
        sg_function f = {0};
        snprintf(c.id, sizeof(c.id), OFFLINE_CSC_ID);
        snprintf(c.publishers[0], sizeof(c.publishers[0]), "%s/%s", p.name, p.version);
        snprintf(f.name, sizeof(f.name), "%s", function);
        snprintf(f.csc_id, sizeof(f.csc_id), OFFLINE_CSC_ID);
        if (sg_store_add_profile(s, &p) < 0) {
                sg_profile_done(&p);
                return sg_cli_error("out of memory");
        }
        if (sg_store_add_csc(s, &c) < 0 || sg_store_add_function(s, &f) < 0)
                return sg_cli_error("out of memory");
        *ret = SG_TAKE_PTR(s);
        return 0;
}

int sg_cmd_verify(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "policy-dir"}, {.name = "function"}, {.name = "profile-doc"}, {.name = "policy"},
                          {.name = "settings"}, {.name = "signature"}, {.name = "first-seen"}};
        const char *pos[1];
        size_t np = 0;
        _cleanup_(sg_store_freep) sg_store *store = NULL;
        _cleanup_(sg_package_freep) sg_package *pkg = NULL;
        _cleanup_(sg_freep) char *block = NULL;
        _cleanup_(sg_closep) int fd = -1;
        sg_settings settings;
        sg_envelope env = {0};
        bool have_env = false;
        sg_facts facts = {0};
        sg_error err = {0};
        char function[65];
        unsigned char whole[SG_DIGEST_LEN];
        uint64_t size = 0;
        int r, code;

        if (sg_cli_parse("verify", argc, argv, o, SG_ELEMENTSOF(o), pos, 1, &np) < 0)
                return SG_EXIT_USAGE;
        const char *pkg_path = np == 1 ? pos[0] : NULL, *policy_dir = o[0].value, *profile_doc = o[2].value;
        if (!pkg_path)
                return sg_cli_error("verify: usage: signgate verify PACKAGE (--policy-dir DIR --function F | --profile-doc FILE [--policy Enforce|Warn])");
        if (!!policy_dir == !!profile_doc)
                return sg_cli_error("verify: give exactly one of --policy-dir DIR (with --function F) or --profile-doc FILE");
        if (policy_dir && !o[1].value)
                return sg_cli_error("verify: --policy-dir needs --function F");
        if (policy_dir && o[3].value)
                return sg_cli_error("verify: --policy comes from the function's code signing config with --policy-dir");
        if (o[1].value && !sg_name_valid(o[1].value))
                return sg_cli_error("verify: --function '%s': must match [A-Za-z0-9_-]{1,64}", o[1].value);
        sg_untrusted_policy policy = SG_POLICY_ENFORCE;
        if (o[3].value && sg_untrusted_policy_from_name(o[3].value, &policy) < 0)
                return sg_cli_error("verify: --policy '%s': must be Enforce or Warn", o[3].value);
        if (o[1].value)
                snprintf(function, sizeof(function), "%s", o[1].value);
        else
                function_from_name(pkg_path, function, sizeof(function));

        sg_settings_default(&settings);
        if (o[4].value && (r = sg_settings_load(o[4].value, &settings, &err)) < 0)
                return r == -EINVAL ? sg_cli_error("%s: %s", o[4].value, err.msg)
                                    : sg_cli_error("%s: %s", o[4].value, strerror(-r));

        if (policy_dir) {
                _cleanup_(sg_closep) int dfd = open(policy_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        return sg_cli_error("%s: %s", policy_dir, strerror(errno));
                if ((r = sg_store_load(dfd, &store, &err)) < 0)
                        return r == -EINVAL ? sg_cli_error("%s/%s", policy_dir, err.msg)
                                            : sg_cli_error("%s: %s", policy_dir, strerror(-r));
        } else if ((r = store_from_profile_doc(profile_doc, function, policy, &store)) != 0)
                return r;

        fd = open(pkg_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return sg_cli_error("%s: %s", pkg_path, strerror(errno));
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return sg_cli_error("%s: not a regular file", pkg_path);
        size = (uint64_t) st.st_size;

        /* The record names the bytes judged: the package digest of a sound archive, else the
         * SHA-384 of the whole file. Only one of the two is computed. */
        const unsigned char *record_digest = whole;
        if (o[5].value) {
                /* Blob-SHA384-ECDSA: the whole file is the canonical bytes; the block is FILE.sig. */
                size_t blen = 0;
                if ((r = sg_read_file(AT_FDCWD, o[5].value, SG_SIGNATURE_MAX, &block, &blen)) < 0)
                        return sg_cli_error("%s: %s", o[5].value, r == -EFBIG ? "too large for a signature" : strerror(-r));
                if ((r = sg_file_sha384(fd, whole, &size)) < 0)
                        return sg_cli_error("%s: %s", pkg_path, strerror(-r));
                facts.platform_id = SG_PLATFORM_BLOB;
                facts.digest = whole;
                facts.canonical_size = size;
                facts.has_block = true;
                have_env = sg_envelope_parse(block, blen, &env, &facts.envelope_error) == 0;
        } else {
                facts.platform_id = SG_PLATFORM_LAMBDA;
                r = sg_package_inspect(fd, &settings.limits, NULL, &pkg, &facts.package_error);
                if (r < 0 && r != -EINVAL)
                        return sg_cli_error("%s: %s", pkg_path, strerror(-r));
                if (r == -EINVAL && (r = sg_file_sha384(fd, whole, &size)) < 0)
                        return sg_cli_error("%s: %s", pkg_path, strerror(-r));
                if (pkg) {
                        facts.digest = pkg->digest;
                        facts.canonical_size = pkg->canonical_size;
                        record_digest = pkg->digest;
                        facts.has_block = pkg->comment_len > 0;
                        if (facts.has_block)
                                have_env = sg_envelope_parse(pkg->comment, pkg->comment_len, &env, &facts.envelope_error) == 0;
                }
        }
        facts.envelope = have_env ? &env : NULL;

        int64_t now = sg_time_now(), first_seen = now;
        char fs_path[PATH_MAX];
        const char *fs = o[6].value;
        if (!fs && policy_dir && snprintf(fs_path, sizeof(fs_path), "%s/../first-seen.log", policy_dir) < (int) sizeof(fs_path))
                fs = fs_path;
        if (fs && facts.digest && sg_firstseen_find(AT_FDCWD, fs, facts.digest, &first_seen) == 0 && first_seen > now)
                first_seen = now;

        sg_decide_ctx ctx = {
                .function = function,
                .binding = sg_store_find_function(store, function),
                .store = store,
                .unbound_allow = settings.unbound_allow,
                .now = now,
                .first_seen = first_seen,
        };
        sg_decision d;
        sg_decide(&facts, &ctx, &d);

        char id[37], namebuf[PATH_MAX];
        snprintf(namebuf, sizeof(namebuf), "%s", pkg_path);
        if (sg_uuid_new(id) < 0)
                return sg_cli_error("cannot generate a decision id");
        sg_record_info info = {
                .time = now,
                .decision_id = id,
                .kind = "function",
                .function = function,
                .source = "verify",
                .has_peer = true,
                .uid = getuid(),
                .gid = getgid(),
                .pid = getpid(),
                .package_name = basename(namebuf),
                .package_size = size,
                .package_sha384 = record_digest,
        };
        cJSON *rec = sg_decision_record(&d, &facts, &info);
        if (have_env)
                sg_envelope_done(&env);
        if (d.outcome == SG_OUTCOME_PROMOTED_WITH_WARNINGS)
                fprintf(stderr, "signgate: warning: %s\n", d.message);
        code = sg_cli_print(cli, rec);
        if (code != SG_EXIT_OK)
                return code;
        return d.outcome == SG_OUTCOME_REJECTED ? SG_EXIT_REFUSED : SG_EXIT_OK;
}
