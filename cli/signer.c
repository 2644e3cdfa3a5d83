/* signgate signer …: the signing side (DESIGN §3, §11). The keystore ("signer home"):
 *   profiles/NAME@VERSION.json   the public profile document (what get-signing-profile prints)
 *   keys/NAME@VERSION.pem        the private key, PEM PKCS#8, mode 0600, directory 0700
 *   jobs.jsonl                   the job ledger: one JSON record per line, the last line for a
 *                                jobId is its current state (revocations append a new line)
 *   revocations/ID.json          revocation documents in the policy store's schema
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gate_client.h"
#include "sg_cli.h"
#include "sg_signature.h"
#include "sg_store.h"

#define JOBS_FILE "jobs.jsonl"
#define LEDGER_MAX (64u * 1024 * 1024)

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }
static void pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }

typedef struct {
        sg_profile *items;
        size_t n;
} profile_list;

static void profile_list_done(profile_list *l) {
        for (size_t i = 0; i < l->n; i++)
                sg_profile_done(&l->items[i]);
        free(l->items);
}

/* Loads the keystore's profile documents, only those of `name` when it is set. */
static int load_profiles(const sg_cli *cli, const char *name, profile_list *ret) {
        _cleanup_(sg_store_freep) sg_store *s = NULL;
        sg_error err = {0};
        int home = sg_cli_open_home(cli, NULL, false);
        if (home == -ENOENT) {
                *ret = (profile_list){0};
                return 0;
        }
        if (home < 0)
                return sg_cli_error("%s: cannot open the signer home: %s", cli->signer_home, strerror(-home));
        int r = sg_store_load(home, &s, &err);
        close(home);
        if (r < 0)
                return r == -EINVAL ? sg_cli_error("%s/%s", cli->signer_home, err.msg)
                                    : sg_cli_error("%s: %s", cli->signer_home, strerror(-r));
        profile_list l = {0};
        l.items = calloc(s->n_profiles ? s->n_profiles : 1, sizeof(*l.items));
        if (!l.items)
                return sg_cli_error("out of memory");
        for (size_t i = 0; i < s->n_profiles; i++) {
                if (name && strcmp(s->profiles[i].name, name) != 0)
                        continue;
                l.items[l.n++] = s->profiles[i];
                s->profiles[i] = (sg_profile){0}; /* moved */
        }
        *ret = l;
        return 0;
}

/* The newest version of a profile (optionally one named version); active_only skips revoked ones. */
static const sg_profile *pick_profile(const profile_list *l, const char *version, bool active_only) {
        const sg_profile *best = NULL;
        for (size_t i = 0; i < l->n; i++) {
                const sg_profile *p = &l->items[i];
                if (version && strcmp(p->version, version) != 0)
                        continue;
                if (active_only && strcmp(p->status, "Active") != 0)
                        continue;
                if (!best || p->created_at > best->created_at)
                        best = p;
        }
        return best;
}

static cJSON *profile_doc(const char *name, const char *version, const char *platform, uint32_t value,
                          sg_period_unit unit, const char *pem, cJSON *tags, int64_t created) {
        char arn[SG_PROFILE_ARN_MAX + 1], t[SG_TIME_LEN + 1];
        cJSON *j = cJSON_CreateObject(), *vp;
        snprintf(arn, sizeof(arn), "%s/%s", name, version);
        if (!j || sg_time_format(created, t) < 0 || !cJSON_AddStringToObject(j, "profileName", name) ||
            !cJSON_AddStringToObject(j, "profileVersion", version) || !cJSON_AddStringToObject(j, "profileVersionArn", arn) ||
            !cJSON_AddStringToObject(j, "platformId", platform) ||
            !(vp = cJSON_AddObjectToObject(j, "signatureValidityPeriod")) || !cJSON_AddNumberToObject(vp, "value", value) ||
            !cJSON_AddStringToObject(vp, "type", sg_period_unit_name(unit)) || !cJSON_AddStringToObject(j, "publicKey", pem) ||
            !cJSON_AddStringToObject(j, "status", "Active") || !cJSON_AddItemToObject(j, "tags", tags) ||
            !cJSON_AddStringToObject(j, "createdAt", t)) {
                cJSON_Delete(j);
                return NULL;
        }
        return j;
}

static int parse_validity(const char *s, uint32_t *value, sg_period_unit *unit) {
        _cleanup_(cjson_deletep) cJSON *j = sg_cli_shorthand(s);
        if (!j)
                return -EINVAL;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value"), *t = cJSON_GetObjectItemCaseSensitive(j, "type");
        uint64_t n = 0;
        if (cJSON_GetArraySize(j) != 2 || !t || !cJSON_IsString(t) || sg_period_unit_from_name(t->valuestring, unit) < 0)
                return -EINVAL;
        if (cJSON_IsString(v)) {
                if (sg_parse_u64(v->valuestring, 1, UINT32_MAX, &n) < 0)
                        return -EINVAL;
        } else if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= UINT32_MAX)
                n = (uint64_t) v->valuedouble;
        else
                return -EINVAL;
        *value = (uint32_t) n;
        return sg_period_valid(*value, *unit) ? 0 : -ERANGE;
}

/* A gate that is not there is fine (the signer may be a CI host); one that refuses is said. */
static void gate_notice(const sg_cli *cli, int r, const char *what, const char *why) {
        if (r < 0 && r != -ENOENT && r != -ECONNREFUSED)
                fprintf(stderr, "signgate: warning: could not %s the gate at %s: %s\n", what, cli->gate,
                        why[0] ? why : strerror(-r));
}

static int cmd_put_profile(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "profile-name", .required = true}, {.name = "platform-id", .required = true},
                          {.name = "signature-validity-period"}, {.name = "tags"}, {.name = "rotate", .flag = true}};
        _cleanup_(profile_list_done) profile_list l = {0};
        _cleanup_(pkey_freep) EVP_PKEY *key = NULL;
        _cleanup_(sg_freep) char *pem = NULL;
        uint32_t value = SG_VALIDITY_MAX_MONTHS;
        sg_period_unit unit = SG_PERIOD_MONTHS;
        char version[11], keyname[96], docname[96], why[512] = "";
        int r;

        if (sg_cli_parse("signer put-signing-profile", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        const char *name = o[0].value, *platform = sg_platform_canonical(o[1].value);
        if (!sg_profile_name_valid(name))
                return sg_cli_error("--profile-name '%s': must be 2 to 64 letters, digits or underscores", name);
        if (!platform)
                return sg_cli_error("--platform-id '%s': unknown platform (see signer list-signing-platforms)", o[1].value);
        if (o[2].value && (r = parse_validity(o[2].value, &value, &unit)) < 0)
                return sg_cli_error("--signature-validity-period '%s': %s", o[2].value,
                                    r == -ERANGE ? "must be positive and at most 135 months"
                                                 : "expected value=N,type=DAYS|MONTHS|YEARS");
        cJSON *tags = o[3].value ? sg_cli_shorthand(o[3].value) : cJSON_CreateObject();
        if (!tags)
                return sg_cli_error("--tags '%s': expected Key=Value,Key2=Value2", o[3].value);
        if ((r = load_profiles(cli, name, &l)) != 0) {
                cJSON_Delete(tags);
                return r;
        }
        const sg_profile *active = pick_profile(&l, NULL, true);
        if (active && !o[4].value) {
                cJSON_Delete(tags);
                return sg_cli_fail(SG_EXIT_REFUSED,
                                   "signing profile %s already exists (version %s); pass --rotate to create a new version with a new key",
                                   name, active->version);
        }
        if ((r = sg_key_generate(&key)) < 0 || (r = sg_key_profile_version(key, version)) < 0 ||
            (r = sg_key_public_pem(key, &pem)) < 0) {
                cJSON_Delete(tags);
                return sg_cli_error("cannot generate an ECDSA P-384 key: %s", strerror(-r));
        }
        _cleanup_(cjson_deletep) cJSON *doc = profile_doc(name, version, platform, value, unit, pem, tags, sg_time_now());
        if (!doc)
                return sg_cli_error("out of memory");
        snprintf(keyname, sizeof(keyname), "%s@%s.pem", name, version);
        snprintf(docname, sizeof(docname), "%s@%s.json", name, version);
        int keys = sg_cli_open_home(cli, "keys", true);
        if (keys < 0)
                return sg_cli_error("%s/keys: %s", cli->signer_home, strerror(-keys));
        r = sg_key_write_private(keys, keyname, key);
        close(keys);
        if (r < 0)
                return sg_cli_error("%s/keys/%s: cannot write the private key: %s", cli->signer_home, keyname, strerror(-r));
        int home = sg_cli_open_home(cli, NULL, true);
        if (home < 0)
                return sg_cli_error("%s: %s", cli->signer_home, strerror(-home));
        /* The key is written before the document: a profile is never listed without its key. */
        r = sg_store_write(home, "signing-profiles", docname, doc);
        if (r < 0) {
                close(home);
                return sg_cli_error("%s/signing-profiles/%s: %s", cli->signer_home, docname, strerror(-r));
        }
        /* Rotation cancels the versions it replaces, as AWS Signer's Canceled status: they sign
         * no more, while what they signed still verifies. Exactly one version stays Active. */
        for (size_t i = 0; i < l.n; i++) {
                if (strcmp(l.items[i].status, "Active") != 0)
                        continue;
                char old_name[96];
                cJSON *od = cJSON_Duplicate(l.items[i].doc, true);
                snprintf(old_name, sizeof(old_name), "%s@%s.json", l.items[i].name, l.items[i].version);
                if (!od || !cJSON_ReplaceItemInObjectCaseSensitive(od, "status", cJSON_CreateString("Canceled")) ||
                    (r = sg_store_write(home, "signing-profiles", old_name, od)) < 0) {
                        cJSON_Delete(od);
                        close(home);
                        return sg_cli_error("%s/signing-profiles/%s: cannot mark the rotated version Canceled",
                                            cli->signer_home, old_name);
                }
                cJSON_Delete(od);
        }
        close(home);
        /* On a host with a gate, the gate learns the new public profile at once (DESIGN §3). */
        gate_notice(cli, sg_gate_register_profile(cli, doc, why, sizeof(why)), "register the profile with", why);
        char arn[SG_PROFILE_ARN_MAX + 1];
        snprintf(arn, sizeof(arn), "%s/%s", name, version);
        cJSON *out = cJSON_CreateObject();
        if (!out || !cJSON_AddStringToObject(out, "arn", name) || !cJSON_AddStringToObject(out, "profileVersion", version) ||
            !cJSON_AddStringToObject(out, "profileVersionArn", arn)) {
                cJSON_Delete(out);
                return sg_cli_error("out of memory");
        }
        return sg_cli_print(cli, out);
}

static int cmd_get_profile(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "profile-name", .required = true}, {.name = "profile-version"}, {.name = "profile-owner"}};
        _cleanup_(profile_list_done) profile_list l = {0};
        int r;

        if (sg_cli_parse("signer get-signing-profile", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = load_profiles(cli, o[0].value, &l)) != 0)
                return r;
        const sg_profile *p = pick_profile(&l, o[1].value, false);
        if (!p)
                return sg_cli_fail(SG_EXIT_REFUSED, "signing profile %s%s%s not found in %s", o[0].value,
                                   o[1].value ? " version " : "", o[1].value ? o[1].value : "", cli->signer_home);
        return sg_cli_print(cli, cJSON_Duplicate(p->doc, true));
}

static int cmd_list_profiles(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "platform-id"}, {.name = "include-canceled", .flag = true}, {.name = "max-results"}};
        _cleanup_(profile_list_done) profile_list l = {0};
        int r;

        if (sg_cli_parse("signer list-signing-profiles", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = load_profiles(cli, NULL, &l)) != 0)
                return r;
        cJSON *out = cJSON_CreateObject(), *arr = out ? cJSON_AddArrayToObject(out, "profiles") : NULL;
        if (!arr) {
                cJSON_Delete(out);
                return sg_cli_error("out of memory");
        }
        const char *platform = o[0].value ? sg_platform_canonical(o[0].value) : NULL;
        for (size_t i = 0; i < l.n; i++) {
                if (o[0].value && (!platform || strcmp(platform, l.items[i].platform_id) != 0))
                        continue;
                cJSON *d = cJSON_Duplicate(l.items[i].doc, true);
                if (!d) {
                        cJSON_Delete(out);
                        return sg_cli_error("out of memory");
                }
                cJSON_DeleteItemFromObjectCaseSensitive(d, "publicKey"); /* get-signing-profile shows it */
                cJSON_AddItemToArray(arr, d);
        }
        return sg_cli_print(cli, out);
}

static int cmd_list_platforms(const sg_cli *cli, int argc, char **argv) {
        static const char doc[] =
                "{\"platforms\":["
                "{\"platformId\":\"" SG_PLATFORM_LAMBDA "\",\"displayName\":\"Lambda ZIP (also " SG_PLATFORM_LAMBDA_ALIAS ")\","
                "\"partner\":\"signgate\",\"target\":\"Lambda\",\"category\":\"AWS\","
                "\"signingConfiguration\":{\"encryptionAlgorithmOptions\":{\"allowedValues\":[\"ECDSA\"],\"defaultValue\":\"ECDSA\"},"
                "\"hashAlgorithmOptions\":{\"allowedValues\":[\"SHA384\"],\"defaultValue\":\"SHA384\"}},"
                "\"signingImageFormat\":{\"supportedFormats\":[\"JSONEmbedded\"],\"defaultFormat\":\"JSONEmbedded\"},"
                "\"maxSizeInMB\":256,\"revocationSupported\":true},"
                "{\"platformId\":\"" SG_PLATFORM_BLOB "\",\"displayName\":\"Any file, detached .sig\","
                "\"partner\":\"signgate\",\"target\":\"Blob\",\"category\":\"Other\","
                "\"signingConfiguration\":{\"encryptionAlgorithmOptions\":{\"allowedValues\":[\"ECDSA\"],\"defaultValue\":\"ECDSA\"},"
                "\"hashAlgorithmOptions\":{\"allowedValues\":[\"SHA384\"],\"defaultValue\":\"SHA384\"}},"
                "\"signingImageFormat\":{\"supportedFormats\":[\"JSONDetached\"],\"defaultFormat\":\"JSONDetached\"},"
                "\"revocationSupported\":true}]}";
        sg_cli_opt o[] = {{.name = "category"}, {.name = "partner"}, {.name = "target"}, {.name = "max-results"}};
        if (sg_cli_parse("signer list-signing-platforms", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        cJSON *j = cJSON_Parse(doc);
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "platforms");
        for (cJSON *p = arr ? arr->child : NULL, *next; p; p = next) {
                next = p->next;
                const char *keys[] = {"category", "partner", "target"};
                for (size_t k = 0; k < 3; k++) {
                        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, keys[k]);
                        if (o[k].value && (!cJSON_IsString(v) || strcmp(v->valuestring, o[k].value) != 0)) {
                                cJSON_Delete(cJSON_DetachItemViaPointer(arr, p));
                                break;
                        }
                }
        }
        return sg_cli_print(cli, j);
}

/* Reads the ledger into one array of the latest record per job, in order of first appearance. */
static int load_jobs(const sg_cli *cli, cJSON **ret) {
        _cleanup_(sg_freep) char *text = NULL;
        char path[PATH_MAX];
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", cli->signer_home, JOBS_FILE);
        int r = sg_read_file(AT_FDCWD, path, LEDGER_MAX, &text, &len);
        cJSON *jobs = cJSON_CreateArray();
        if (!jobs)
                return sg_cli_error("out of memory");
        if (r == -ENOENT) {
                *ret = jobs;
                return 0;
        }
        if (r < 0) {
                cJSON_Delete(jobs);
                return sg_cli_error("%s: %s", path, strerror(-r));
        }
        size_t lineno = 0;
        for (char *line = text, *nl; line < text + len; line = nl + 1) {
                nl = memchr(line, '\n', (size_t) (text + len - line));
                if (!nl)
                        nl = text + len;
                lineno++;
                if (nl == line)
                        continue;
                cJSON *rec = cJSON_ParseWithLength(line, (size_t) (nl - line));
                const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "jobId");
                if (!cJSON_IsString(id)) {
                        cJSON_Delete(rec);
                        cJSON_Delete(jobs);
                        return sg_cli_error("%s:%zu: not a job record", path, lineno);
                }
                int idx = 0;
                cJSON *old = NULL;
                for (cJSON *e = jobs->child; e && !old; e = e->next, idx++)
                        if (strcmp(cJSON_GetObjectItemCaseSensitive(e, "jobId")->valuestring, id->valuestring) == 0)
                                old = e;
                if (old)
                        cJSON_ReplaceItemInArray(jobs, idx - 1, rec);
                else
                        cJSON_AddItemToArray(jobs, rec);
        }
        *ret = jobs;
        return 0;
}

static cJSON *find_job(cJSON *jobs, const char *id) {
        for (cJSON *e = jobs->child; e; e = e->next)
                if (strcmp(cJSON_GetObjectItemCaseSensitive(e, "jobId")->valuestring, id) == 0)
                        return e;
        return NULL;
}

static int append_job(const sg_cli *cli, const cJSON *rec) {
        _cleanup_(sg_freep) char *line = cJSON_PrintUnformatted(rec);
        if (!line)
                return -ENOMEM;
        int home = sg_cli_open_home(cli, NULL, true);
        if (home < 0)
                return home;
        int fd = openat(home, JOBS_FILE, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        close(home);
        if (fd < 0)
                return -errno;
        size_t n = strlen(line);
        line[n] = '\n'; /* one write per record: O_APPEND keeps concurrent signers' lines whole */
        int r = sg_write_all(fd, line, n + 1);
        line[n] = '\0';
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

typedef struct {
        char path[PATH_MAX];
        cJSON *json; /* {"s3": {...}} or {"path": ...} as the user gave it */
} location;

/* --source: a path, or the seed's {"s3":{"bucketName","key","version"}} under the bucket root. */
static int parse_source(const sg_cli *cli, const char *arg, location *loc) {
        if (arg[0] != '{') {
                if (!realpath(arg, loc->path))
                        return sg_cli_fail(SG_EXIT_REFUSED, "%s: %s", arg, strerror(errno));
                loc->json = cJSON_CreateObject();
                if (!loc->json || !cJSON_AddStringToObject(loc->json, "path", loc->path))
                        return sg_cli_error("out of memory");
                return 0;
        }
        cJSON *j = cJSON_Parse(arg);
        const cJSON *s3 = cJSON_GetObjectItemCaseSensitive(j, "s3");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(s3, "bucketName"), *k = cJSON_GetObjectItemCaseSensitive(s3, "key");
        if (!cJSON_IsString(b) || !cJSON_IsString(k)) {
                cJSON_Delete(j);
                return sg_cli_error("--source: expected a path or {\"s3\":{\"bucketName\":B,\"key\":K}}");
        }
        if (sg_cli_s3_path(cli, b->valuestring, k->valuestring, loc->path, sizeof(loc->path)) < 0) {
                int code = sg_cli_error("--source: bucket '%s' and key '%s' do not name a file under the bucket root",
                                        b->valuestring, k->valuestring);
                cJSON_Delete(j);
                return code;
        }
        loc->json = j;
        return 0;
}

/* --destination: a directory, or {"s3":{"bucketName","prefix"}}; the signed object is
 * PREFIX + name. Fills loc->path with the final file path and loc->json with signedObject. */
static int parse_destination(const sg_cli *cli, const char *arg, const char *name, location *loc) {
        if (arg[0] != '{') {
                if (snprintf(loc->path, sizeof(loc->path), "%s/%s", arg, name) >= (int) sizeof(loc->path))
                        return sg_cli_error("--destination '%s': path too long", arg);
                loc->json = cJSON_CreateObject();
                return 0;
        }
        _cleanup_(cjson_deletep) cJSON *j = cJSON_Parse(arg);
        const cJSON *s3 = cJSON_GetObjectItemCaseSensitive(j, "s3");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(s3, "bucketName"), *p = cJSON_GetObjectItemCaseSensitive(s3, "prefix");
        if (!cJSON_IsString(b) || (p && !cJSON_IsString(p)))
                return sg_cli_error("--destination: expected a directory or {\"s3\":{\"bucketName\":B,\"prefix\":P}}");
        char key[PATH_MAX];
        snprintf(key, sizeof(key), "%s%s", p ? p->valuestring : "", name);
        if (sg_cli_s3_path(cli, b->valuestring, key, loc->path, sizeof(loc->path)) < 0)
                return sg_cli_error("--destination: bucket '%s' and prefix '%s' do not name a place under the bucket root",
                                    b->valuestring, p ? p->valuestring : "");
        cJSON *s3o;
        loc->json = cJSON_CreateObject();
        if (!loc->json || !(s3o = cJSON_AddObjectToObject(loc->json, "s3")) ||
            !cJSON_AddStringToObject(s3o, "bucketName", b->valuestring) || !cJSON_AddStringToObject(s3o, "key", key))
                return sg_cli_error("out of memory");
        return 0;
}

/* Creates dir/.NAME.JOBID.tmp (0644, O_EXCL); the caller fills it and calls publish(). */
static int open_output(const char *path, char *tmp, size_t len, const char *job_id, int *ret_dirfd) {
        char dir[PATH_MAX], base[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        snprintf(base, sizeof(base), "%s", path);
        const char *d = dirname(dir), *b = basename(base);
        int r = sg_mkdir_p(d, 0755);
        if (r < 0)
                return r;
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        snprintf(tmp, len, ".%s.%s.tmp", b, job_id);
        int fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
                r = -errno;
                close(dfd);
                return r;
        }
        *ret_dirfd = dfd;
        return fd;
}

/* fsync, then rename into place without replacing anything, then fsync the directory. */
static int publish(int dirfd, int fd, const char *tmp, const char *path) {
        char base[PATH_MAX];
        snprintf(base, sizeof(base), "%s", path);
        const char *b = basename(base);
        if (fsync(fd) < 0)
                return -errno;
        if (renameat2(dirfd, tmp, dirfd, b, RENAME_NOREPLACE) < 0)
                return -errno;
        return sg_fsync_dir(dirfd);
}

static cJSON *job_record(const char *job_id, const location *src, const sg_profile *p, int64_t created,
                         const sg_statement *st, const location *dst, const char *status, const char *reason) {
        char c[SG_TIME_LEN + 1], e[SG_TIME_LEN + 1], hex[SG_DIGEST_HEX_LEN + 1];
        cJSON *j = cJSON_CreateObject();
        if (!j || sg_time_format(created, c) < 0 || !cJSON_AddStringToObject(j, "jobId", job_id) ||
            !cJSON_AddItemToObject(j, "source", cJSON_Duplicate(src->json, true)) ||
            !cJSON_AddStringToObject(j, "platformId", p->platform_id) || !cJSON_AddStringToObject(j, "profileName", p->name) ||
            !cJSON_AddStringToObject(j, "profileVersion", p->version) || !cJSON_AddStringToObject(j, "createdAt", c) ||
            !cJSON_AddStringToObject(j, "status", status))
                goto fail;
        if (reason && !cJSON_AddStringToObject(j, "statusReason", reason))
                goto fail;
        if (!reason) {
                cJSON *so = cJSON_Duplicate(dst->json, true);
                sg_hex_encode(st->digest, SG_DIGEST_LEN, hex);
                if (!so || !cJSON_AddStringToObject(so, "path", dst->path) || !cJSON_AddItemToObject(j, "signedObject", so) ||
                    !cJSON_AddStringToObject(j, "completedAt", c) || sg_time_format(st->expires_at, e) < 0 ||
                    !cJSON_AddStringToObject(j, "signatureExpiresAt", e) || !cJSON_AddStringToObject(j, "sha384", hex))
                        goto fail;
        }
        return j;
fail:
        cJSON_Delete(j);
        return NULL;
}

static int cmd_start_job(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "source", .required = true}, {.name = "destination"}, {.name = "profile-name", .required = true},
                          {.name = "profile-version"}, {.name = "profile-owner"}, {.name = "client-request-token"}};
        _cleanup_(profile_list_done) profile_list l = {0};
        _cleanup_(pkey_freep) EVP_PKEY *key = NULL;
        location src = {0}, dst = {0};
        char job_id[37], keyname[96], tmp[PATH_MAX], srcbase[PATH_MAX], outname[PATH_MAX];
        sg_statement st = {0};
        sg_error err = {0};
        _cleanup_(cjson_deletep) cJSON *rec = NULL;
        int r, code = SG_EXIT_USAGE, in_fd = -1, out_fd = -1, dirfd = -1;
        const char *failure = NULL;
        char why[PATH_MAX + 256];

        if (sg_cli_parse("signer start-signing-job", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = load_profiles(cli, o[2].value, &l)) != 0)
                return r;
        const sg_profile *p = pick_profile(&l, o[3].value, true), *any = pick_profile(&l, o[3].value, false);
        if (!any)
                return sg_cli_fail(SG_EXIT_REFUSED, "signing profile %s%s%s not found in %s", o[2].value,
                                   o[3].value ? " version " : "", o[3].value ? o[3].value : "", cli->signer_home);
        if (!p)
                return sg_cli_fail(SG_EXIT_REFUSED,
                                   "signing profile %s version %s is %s and signs no more; create a new version with put-signing-profile",
                                   o[2].value, any->version, any->status);
        snprintf(keyname, sizeof(keyname), "%s@%s.pem", p->name, p->version);
        int keys = sg_cli_open_home(cli, "keys", false);
        r = keys < 0 ? keys : sg_key_read_private(keys, keyname, &key);
        if (keys >= 0)
                close(keys);
        if (r < 0)
                return sg_cli_error("%s/keys/%s: %s", cli->signer_home, keyname,
                                    r == -EPERM ? "the private key is readable by others; refusing to use it (chmod 600)"
                                                : strerror(-r));
        if ((r = parse_source(cli, o[0].value, &src)) != 0)
                goto out;
        bool blob = strcmp(p->platform_id, SG_PLATFORM_BLOB) == 0;
        if (sg_uuid_new(job_id) < 0) {
                r = sg_cli_error("cannot generate a job id");
                goto out;
        }
        snprintf(srcbase, sizeof(srcbase), "%s", src.path);
        const char *base = basename(srcbase);
        if ((blob ? snprintf(outname, sizeof(outname), "%s.sig", base)
                  : snprintf(outname, sizeof(outname), "%s.zip", job_id)) >= (int) sizeof(outname)) {
                r = sg_cli_error("%s: file name too long", src.path);
                goto out;
        }
        if (o[1].value)
                r = parse_destination(cli, o[1].value, outname, &dst);
        else if (blob) {
                r = snprintf(dst.path, sizeof(dst.path), "%s.sig", src.path) >= (int) sizeof(dst.path)
                            ? sg_cli_error("%s: path too long", src.path)
                            : 0;
                dst.json = cJSON_CreateObject();
        } else
                r = sg_cli_error("signer start-signing-job: missing required option --destination");
        if (r != 0)
                goto out;

        int64_t now = sg_time_now();
        snprintf(st.subject_name, sizeof(st.subject_name), "%s", base);
        snprintf(st.platform_id, sizeof(st.platform_id), "%s", p->platform_id);
        snprintf(st.profile_name, sizeof(st.profile_name), "%s", p->name);
        snprintf(st.profile_version, sizeof(st.profile_version), "%s", p->version);
        snprintf(st.job_id, sizeof(st.job_id), "%s", job_id);
        st.signed_at = now;
        (void) sg_time_add_period(now, p->validity_value, p->validity_unit, &st.expires_at);

        in_fd = open(src.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (in_fd < 0) {
                snprintf(why, sizeof(why), "%s", strerror(errno));
                failure = why;
                goto record;
        }
        out_fd = open_output(dst.path, tmp, sizeof(tmp), job_id, &dirfd);
        if (out_fd < 0) {
                snprintf(why, sizeof(why), "cannot create %s: %s", dst.path, strerror(-out_fd));
                failure = why;
                goto record;
        }
        if (blob) {
                _cleanup_(sg_freep) char *block = NULL;
                size_t block_len = 0;
                struct stat sst;
                if (fstat(in_fd, &sst) < 0 || !S_ISREG(sst.st_mode))
                        r = sg_error_set(&err, SG_REASON_MALFORMED, "not a regular file");
                else if ((r = sg_sign_blob(in_fd, &st, key, &block, &block_len)) == 0)
                        r = sg_write_all(out_fd, block, block_len);
        } else {
                sg_limits lim;
                sg_limits_default(&lim);
                r = sg_sign_package(in_fd, out_fd, &lim, &st, key, &err);
        }
        if (r == 0)
                r = publish(dirfd, out_fd, tmp, dst.path);
        if (r < 0) {
                (void) unlinkat(dirfd, tmp, 0);
                if (r == -EINVAL && err.reason != SG_REASON_NONE)
                        snprintf(why, sizeof(why), "%s (%s)", err.msg, sg_reason_name(err.reason));
                else
                        snprintf(why, sizeof(why), "%s", strerror(-r));
                failure = why;
        }
record:
        rec = job_record(job_id, &src, p, now, &st, &dst, failure ? "Failed" : "Succeeded", failure);
        if (!rec) {
                r = sg_cli_error("out of memory");
                goto out;
        }
        if ((r = append_job(cli, rec)) < 0) {
                r = sg_cli_error("%s/%s: cannot record the job: %s", cli->signer_home, JOBS_FILE, strerror(-r));
                goto out;
        }
        if (failure) {
                code = sg_cli_fail(SG_EXIT_REFUSED, "%s: refused to sign: %s (job %s recorded as Failed)", src.path, failure, job_id);
                goto out;
        }
        cJSON *outj = cJSON_CreateObject();
        if (!outj || !cJSON_AddStringToObject(outj, "jobId", job_id)) {
                cJSON_Delete(outj);
                code = sg_cli_error("out of memory");
                goto out;
        }
        code = sg_cli_print(cli, outj);
out:
        if (r > 0)
                code = r;
        if (in_fd >= 0)
                close(in_fd);
        if (out_fd >= 0)
                close(out_fd);
        if (dirfd >= 0)
                close(dirfd);
        cJSON_Delete(src.json);
        cJSON_Delete(dst.json);
        return code;
}

static int cmd_describe_job(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "job-id", .required = true}};
        cJSON *jobs = NULL;
        int r;
        if (sg_cli_parse("signer describe-signing-job", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = load_jobs(cli, &jobs)) != 0)
                return r;
        cJSON *job = find_job(jobs, o[0].value);
        if (!job) {
                cJSON_Delete(jobs);
                return sg_cli_fail(SG_EXIT_REFUSED, "signing job %s not found in %s", o[0].value, cli->signer_home);
        }
        cJSON *out = cJSON_DetachItemViaPointer(jobs, job);
        cJSON_Delete(jobs);
        return sg_cli_print(cli, out);
}

static int cmd_list_jobs(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "status"}, {.name = "platform-id"}, {.name = "is-revoked", .flag = true}, {.name = "max-results"}, {.name = "requested-by"}};
        cJSON *jobs = NULL;
        uint64_t max = UINT64_MAX;
        int r;
        if (sg_cli_parse("signer list-signing-jobs", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if (o[0].value && strcmp(o[0].value, "Succeeded") != 0 && strcmp(o[0].value, "Failed") != 0 &&
            strcmp(o[0].value, "InProgress") != 0)
                return sg_cli_error("--status '%s': must be InProgress, Failed or Succeeded", o[0].value);
        if (o[3].value && sg_parse_u64(o[3].value, 1, 10000, &max) < 0)
                return sg_cli_error("--max-results '%s': must be a number from 1 to 10000", o[3].value);
        if ((r = load_jobs(cli, &jobs)) != 0)
                return r;
        const char *platform = o[1].value ? sg_platform_canonical(o[1].value) : NULL;
        uint64_t kept = 0;
        for (cJSON *e = jobs->child, *next; e; e = next) {
                next = e->next;
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
                const cJSON *pl = cJSON_GetObjectItemCaseSensitive(e, "platformId");
                bool revoked = cJSON_GetObjectItemCaseSensitive(e, "revocationRecord") != NULL;
                cJSON_AddBoolToObject(e, "isRevoked", revoked);
                bool keep = (!o[0].value || (cJSON_IsString(st) && strcmp(st->valuestring, o[0].value) == 0)) &&
                            (!o[1].value || (platform && cJSON_IsString(pl) && strcmp(pl->valuestring, platform) == 0)) &&
                            (!o[2].value || revoked) && kept < max;
                if (keep)
                        kept++;
                else
                        cJSON_Delete(cJSON_DetachItemViaPointer(jobs, e));
        }
        cJSON *out = cJSON_CreateObject();
        if (!out) {
                cJSON_Delete(jobs);
                return sg_cli_error("out of memory");
        }
        cJSON_AddItemToObject(out, "jobs", jobs);
        return sg_cli_print(cli, out);
}

static int cmd_wait(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "job-id", .required = true}};
        const char *pos[1];
        size_t np = 0;
        cJSON *jobs = NULL;
        int r;
        if (sg_cli_parse("signer wait", argc, argv, o, SG_ELEMENTSOF(o), pos, 1, &np) < 0)
                return SG_EXIT_USAGE;
        if (np != 1 || strcmp(pos[0], "successful-signing-job") != 0)
                return sg_cli_error("signer wait: the only waiter is successful-signing-job");
        if ((r = load_jobs(cli, &jobs)) != 0)
                return r;
        /* Jobs finish before start-signing-job returns, so the ledger already holds the final
         * state: no polling is needed, and a job absent from it will never appear. */
        const cJSON *job = find_job(jobs, o[0].value);
        const cJSON *st = job ? cJSON_GetObjectItemCaseSensitive(job, "status") : NULL;
        if (!cJSON_IsString(st)) {
                cJSON_Delete(jobs);
                return sg_cli_fail(SG_EXIT_WAITER, "Waiter SuccessfulSigningJob failed: signing job %s not found in %s",
                                   o[0].value, cli->signer_home);
        }
        r = strcmp(st->valuestring, "Succeeded") == 0
                    ? SG_EXIT_OK
                    : sg_cli_fail(SG_EXIT_WAITER,
                                  "Waiter SuccessfulSigningJob failed: Waiter encountered a terminal failure state: job %s is %s",
                                  o[0].value, st->valuestring);
        cJSON_Delete(jobs);
        return r;
}

static int write_revocation(const sg_cli *cli, const char *file, const cJSON *doc) {
        int home = sg_cli_open_home(cli, NULL, true);
        if (home < 0)
                return home;
        int r = sg_store_write(home, "revocations", file, doc);
        close(home);
        return r;
}

static int cmd_revoke_profile(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "profile-name", .required = true}, {.name = "profile-version", .required = true},
                          {.name = "reason", .required = true}, {.name = "effective-time", .required = true}};
        _cleanup_(profile_list_done) profile_list l = {0};
        char file[128], t[SG_TIME_LEN + 1], path[PATH_MAX];
        int64_t eff;
        int r;

        if (sg_cli_parse("signer revoke-signing-profile", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if (sg_time_parse(o[3].value, &eff) < 0)
                return sg_cli_error("--effective-time '%s': expected an RFC 3339 time such as 2026-02-12T00:00:00Z", o[3].value);
        if (eff > sg_time_now())
                return sg_cli_fail(SG_EXIT_REFUSED, "--effective-time %s: a revocation cannot take effect in the future", o[3].value);
        if ((r = load_profiles(cli, o[0].value, &l)) != 0)
                return r;
        const sg_profile *p = pick_profile(&l, o[1].value, false);
        if (!p)
                return sg_cli_fail(SG_EXIT_REFUSED, "signing profile %s version %s not found in %s", o[0].value, o[1].value,
                                   cli->signer_home);
        snprintf(file, sizeof(file), "profile-%s@%s.json", p->name, p->version);
        /* An effective time may move earlier, never later: a later one would un-revoke code. */
        snprintf(path, sizeof(path), "%s/revocations/%s", cli->signer_home, file);
        _cleanup_(sg_freep) char *old = NULL;
        if (sg_read_file(AT_FDCWD, path, SG_STORE_DOC_MAX, &old, NULL) == 0) {
                _cleanup_(cjson_deletep) cJSON *oj = cJSON_Parse(old);
                sg_revocation ov;
                sg_error e;
                if (oj && sg_revocation_from_json(oj, &ov, &e) == 0) {
                        cJSON_Delete(ov.doc);
                        if (ov.effective_time <= eff) {
                                char ot[SG_TIME_LEN + 1] = "?";
                                (void) sg_time_format(ov.effective_time, ot);
                                return sg_cli_fail(SG_EXIT_REFUSED,
                                                   "profile %s/%s is already revoked from %s; an effective time can only move earlier",
                                                   p->name, p->version, ot);
                        }
                }
        }
        (void) sg_time_format(eff, t);
        cJSON *doc = cJSON_CreateObject();
        if (!doc || !cJSON_AddStringToObject(doc, "type", "profile") || !cJSON_AddStringToObject(doc, "profileName", p->name) ||
            !cJSON_AddStringToObject(doc, "profileVersion", p->version) || !cJSON_AddStringToObject(doc, "effectiveTime", t) ||
            !cJSON_AddStringToObject(doc, "reason", o[2].value)) {
                cJSON_Delete(doc);
                return sg_cli_error("out of memory");
        }
        if ((r = write_revocation(cli, file, doc)) < 0) {
                cJSON_Delete(doc);
                return sg_cli_error("%s: %s", path, strerror(-r));
        }
        /* The profile document says Revoked too, so get/list show it and signing stops. */
        cJSON *pd = cJSON_Duplicate(p->doc, true);
        char docname[96];
        snprintf(docname, sizeof(docname), "%s@%s.json", p->name, p->version);
        int home = sg_cli_open_home(cli, NULL, false);
        if (pd && home >= 0) {
                cJSON_ReplaceItemInObjectCaseSensitive(pd, "status", cJSON_CreateString("Revoked"));
                r = sg_store_write(home, "signing-profiles", docname, pd);
        } else
                r = home < 0 ? home : -ENOMEM;
        if (home >= 0)
                close(home);
        cJSON_Delete(pd);
        if (r < 0) {
                cJSON_Delete(doc);
                return sg_cli_error("%s/signing-profiles/%s: %s", cli->signer_home, docname, strerror(-r));
        }
        char gpath[256], why[512] = "";
        cJSON *gb = cJSON_CreateObject();
        if (gb && sg_gate_pathf(gpath, sizeof(gpath), "/v1/signing-profiles/%s/revoke", p->name) == 0) {
                cJSON_AddStringToObject(gb, "profileVersion", p->version);
                cJSON_AddStringToObject(gb, "effectiveTime", t);
                cJSON_AddStringToObject(gb, "reason", o[2].value);
                gate_notice(cli, sg_gate_revoke(cli, gpath, gb, why, sizeof(why)), "revoke the profile at", why);
        }
        cJSON_Delete(gb);
        return sg_cli_print(cli, doc);
}

static int cmd_revoke_signature(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "job-id", .required = true}, {.name = "reason", .required = true}, {.name = "job-owner"}};
        cJSON *jobs = NULL;
        char file[96], t[SG_TIME_LEN + 1];
        int r;

        if (sg_cli_parse("signer revoke-signature", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if (!sg_uuid_valid(o[0].value))
                return sg_cli_error("--job-id '%s': not a job id", o[0].value);
        if ((r = load_jobs(cli, &jobs)) != 0)
                return r;
        _cleanup_(cjson_deletep) cJSON *all = jobs; /* frees the ledger copy on every return */
        (void) all;
        cJSON *job = find_job(jobs, o[0].value);
        const cJSON *st = job ? cJSON_GetObjectItemCaseSensitive(job, "status") : NULL;
        if (!job)
                return sg_cli_fail(SG_EXIT_REFUSED, "signing job %s not found in %s", o[0].value, cli->signer_home);
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "Succeeded") != 0)
                return sg_cli_fail(SG_EXIT_REFUSED, "signing job %s did not succeed; there is no signature to revoke", o[0].value);
        (void) sg_time_format(sg_time_now(), t);
        cJSON *doc = cJSON_CreateObject();
        if (!doc || !cJSON_AddStringToObject(doc, "type", "signature") || !cJSON_AddStringToObject(doc, "jobId", o[0].value) ||
            !cJSON_AddStringToObject(doc, "reason", o[1].value)) {
                cJSON_Delete(doc);
                return sg_cli_error("out of memory");
        }
        snprintf(file, sizeof(file), "signature-%s.json", o[0].value);
        if (!cJSON_GetObjectItemCaseSensitive(job, "revocationRecord")) {
                if ((r = write_revocation(cli, file, doc)) < 0) {
                        cJSON_Delete(doc);
                        return sg_cli_error("%s/revocations/%s: %s", cli->signer_home, file, strerror(-r));
                }
                struct passwd *pw = getpwuid(getuid());
                cJSON *rr = cJSON_AddObjectToObject(job, "revocationRecord");
                if (!rr || !cJSON_AddStringToObject(rr, "reason", o[1].value) || !cJSON_AddStringToObject(rr, "revokedAt", t) ||
                    !cJSON_AddStringToObject(rr, "revokedBy", pw ? pw->pw_name : "unknown") ||
                    (r = append_job(cli, job)) < 0) {
                        cJSON_Delete(doc);
                        return sg_cli_error("%s/%s: cannot record the revocation", cli->signer_home, JOBS_FILE);
                }
        }
        char gpath[256], why[512] = "";
        cJSON *gb = cJSON_CreateObject();
        if (gb && sg_gate_pathf(gpath, sizeof(gpath), "/v1/signatures/%s/revoke", o[0].value) == 0) {
                cJSON_AddStringToObject(gb, "reason", o[1].value);
                gate_notice(cli, sg_gate_revoke(cli, gpath, gb, why, sizeof(why)), "revoke the signature at", why);
        }
        cJSON_Delete(gb);
        return sg_cli_print(cli, doc);
}

int sg_cmd_signer(const sg_cli *cli, int argc, char **argv) {
        static const struct {
                const char *verb;
                int (*fn)(const sg_cli *, int, char **);
        } verbs[] = {
                {"put-signing-profile", cmd_put_profile},
                {"get-signing-profile", cmd_get_profile},
                {"list-signing-profiles", cmd_list_profiles},
                {"list-signing-platforms", cmd_list_platforms},
                {"start-signing-job", cmd_start_job},
                {"describe-signing-job", cmd_describe_job},
                {"list-signing-jobs", cmd_list_jobs},
                {"wait", cmd_wait},
                {"revoke-signing-profile", cmd_revoke_profile},
                {"revoke-signature", cmd_revoke_signature},
        };
        if (argc < 1)
                return sg_cli_error("signer: missing verb (put-signing-profile, start-signing-job, …; see signgate help)");
        for (size_t i = 0; i < SG_ELEMENTSOF(verbs); i++)
                if (strcmp(argv[0], verbs[i].verb) == 0)
                        return verbs[i].fn(cli, argc - 1, argv + 1);
        return sg_cli_error("signer: unknown verb '%s' (see signgate help)", argv[0]);
}
