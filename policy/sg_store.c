#include "sg_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sg_signature.h"

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

const char *sg_untrusted_policy_name(sg_untrusted_policy p) { return p == SG_POLICY_WARN ? "Warn" : "Enforce"; }

int sg_untrusted_policy_from_name(const char *s, sg_untrusted_policy *ret) {
        if (s && strcmp(s, "Enforce") == 0)
                *ret = SG_POLICY_ENFORCE;
        else if (s && strcmp(s, "Warn") == 0)
                *ret = SG_POLICY_WARN;
        else
                return -EINVAL;
        return 0;
}

/* Every key of j must be one of allowed; the first `required` of them must be present. */
static int check_keys(const cJSON *j, const char *what, const char *const *allowed, size_t n, size_t required,
                      sg_error *err) {
        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "%s is not a JSON object", what);
        for (const cJSON *c = j->child; c; c = c->next) {
                bool known = false;
                for (size_t i = 0; i < n && !known; i++)
                        known = strcmp(c->string, allowed[i]) == 0;
                if (!known)
                        return sg_error_set(err, SG_REASON_MALFORMED, "%s has an unknown field '%.64s'", what, c->string);
                for (const cJSON *d = c->next; d; d = d->next)
                        if (strcmp(c->string, d->string) == 0)
                                return sg_error_set(err, SG_REASON_MALFORMED, "%s has the field '%.64s' twice", what, c->string);
        }
        for (size_t i = 0; i < required; i++)
                if (!cJSON_GetObjectItemCaseSensitive(j, allowed[i]))
                        return sg_error_set(err, SG_REASON_MALFORMED, "%s lacks the field '%s'", what, allowed[i]);
        return 0;
}

static const char *get_str(const cJSON *j, const char *k) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool get_uint(const cJSON *j, const char *k, uint64_t max, uint64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double) max ||
            floor(v->valuedouble) != v->valuedouble)
                return false;
        *ret = (uint64_t) v->valuedouble;
        return true;
}

int sg_profile_arn_canonical(const char *arn, char ret[SG_PROFILE_ARN_MAX + 1]) {
        if (!arn || strlen(arn) > 2048)
                return -EINVAL;
        const char *p = arn;
        const char *marker = strstr(arn, "/signing-profiles/");
        if (strncmp(arn, "arn:", 4) == 0) {
                if (!marker)
                        return -EINVAL;
                p = marker + strlen("/signing-profiles/");
        }
        const char *slash = strchr(p, '/');
        if (!slash || (size_t) (slash - p) > 64)
                return -EINVAL;
        char name[65];
        memcpy(name, p, (size_t) (slash - p));
        name[slash - p] = '\0';
        if (!sg_profile_name_valid(name) || !sg_profile_version_valid(slash + 1))
                return -EINVAL;
        snprintf(ret, SG_PROFILE_ARN_MAX + 1, "%s/%s", name, slash + 1);
        return 0;
}

int sg_csc_arn_id(const char *arn, char ret[22]) {
        if (!arn)
                return -EINVAL;
        const char *p = arn;
        if (strncmp(arn, "arn:", 4) == 0) {
                const char *m = strstr(arn, ":code-signing-config:");
                if (!m)
                        return -EINVAL;
                p = m + strlen(":code-signing-config:");
        }
        if (!sg_csc_id_valid(p))
                return -EINVAL;
        memcpy(ret, p, 22);
        return 0;
}

void sg_csc_arn(const char *id, char *buf, size_t len) {
        /* Same shape as Lambda's, in signgate's own partition so it is never mistaken for AWS's. */
        snprintf(buf, len, "arn:signgate:lambda:local:000000000000:code-signing-config:%s", id);
}

void sg_profile_done(sg_profile *p) {
        if (!p)
                return;
        EVP_PKEY_free(p->key);
        cJSON_Delete(p->doc);
        p->key = NULL;
        p->doc = NULL;
}

int sg_profile_from_json(const cJSON *j, sg_profile *ret, sg_error *err) {
        static const char *const keys[] = {"profileName", "profileVersion", "platformId", "signatureValidityPeriod",
                                           "publicKey", "profileVersionArn", "status", "tags", "createdAt", "arn"};
        static const char *const vkeys[] = {"value", "type"};
        sg_profile p = {0};
        int r;

        if ((r = check_keys(j, "the signing profile", keys, SG_ELEMENTSOF(keys), 5, err)) < 0)
                return r;
        const char *name = get_str(j, "profileName"), *version = get_str(j, "profileVersion");
        const char *platform = get_str(j, "platformId"), *pem = get_str(j, "publicKey");
        if (!sg_profile_name_valid(name))
                return sg_error_set(err, SG_REASON_MALFORMED, "profileName must match [A-Za-z0-9_]{2,64}");
        if (!sg_profile_version_valid(version))
                return sg_error_set(err, SG_REASON_MALFORMED, "profileVersion must be 10 lowercase base32 characters");
        if (!sg_platform_canonical(platform))
                return sg_error_set(err, SG_REASON_MALFORMED, "platformId '%.64s' is not a known signing platform",
                                    platform ? platform : "");
        const cJSON *vp = cJSON_GetObjectItemCaseSensitive(j, "signatureValidityPeriod");
        uint64_t value = 0;
        if ((r = check_keys(vp, "signatureValidityPeriod", vkeys, 2, 2, err)) < 0)
                return r;
        if (!get_uint(vp, "value", UINT32_MAX, &value) ||
            sg_period_unit_from_name(get_str(vp, "type"), &p.validity_unit) < 0 ||
            !sg_period_valid((uint32_t) value, p.validity_unit))
                return sg_error_set(err, SG_REASON_MALFORMED,
                                    "signatureValidityPeriod must be a value of DAYS, MONTHS or YEARS up to 135 months");
        p.validity_value = (uint32_t) value;
        snprintf(p.name, sizeof(p.name), "%s", name);
        snprintf(p.version, sizeof(p.version), "%s", version);
        snprintf(p.platform_id, sizeof(p.platform_id), "%s", sg_platform_canonical(platform));

        const char *arn = get_str(j, "profileVersionArn");
        char canon[SG_PROFILE_ARN_MAX + 1], expect[SG_PROFILE_ARN_MAX + 1];
        snprintf(expect, sizeof(expect), "%s/%s", name, version);
        if (arn && (sg_profile_arn_canonical(arn, canon) < 0 || strcmp(canon, expect) != 0))
                return sg_error_set(err, SG_REASON_MALFORMED, "profileVersionArn does not name %s", expect);
        const char *status = get_str(j, "status");
        if (cJSON_GetObjectItemCaseSensitive(j, "status") &&
            (!status || (strcmp(status, "Active") != 0 && strcmp(status, "Revoked") != 0 && strcmp(status, "Canceled") != 0)))
                return sg_error_set(err, SG_REASON_MALFORMED, "status must be Active, Canceled or Revoked");
        snprintf(p.status, sizeof(p.status), "%s", status ? status : "Active");
        const cJSON *tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
        if (tags) {
                if (!cJSON_IsObject(tags))
                        return sg_error_set(err, SG_REASON_MALFORMED, "tags must be an object of strings");
                for (const cJSON *t = tags->child; t; t = t->next)
                        if (!cJSON_IsString(t))
                                return sg_error_set(err, SG_REASON_MALFORMED, "tags must be an object of strings");
        }
        const char *created = get_str(j, "createdAt");
        if (cJSON_GetObjectItemCaseSensitive(j, "createdAt") && (!created || sg_time_parse(created, &p.created_at) < 0))
                return sg_error_set(err, SG_REASON_MALFORMED, "createdAt is not an RFC 3339 time");
        if (!pem || strlen(pem) > 4096 || sg_key_from_public_pem(pem, &p.key) < 0)
                return sg_error_set(err, SG_REASON_MALFORMED, "publicKey is not a PEM ECDSA P-384 public key");
        /* The version names the key: a document cannot claim another key's version. */
        char actual[11];
        if ((r = sg_key_profile_version(p.key, actual)) < 0 || strcmp(actual, version) != 0) {
                sg_profile_done(&p);
                return sg_error_set(err, SG_REASON_MALFORMED, "profileVersion %s is not the version of its publicKey (%s)",
                                    version, r < 0 ? "?" : actual);
        }
        if (!(p.doc = cJSON_Duplicate(j, true))) {
                sg_profile_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

int sg_csc_from_json(const cJSON *j, sg_csc *ret, sg_error *err) {
        static const char *const keys[] = {"CodeSigningConfigId", "AllowedPublishers", "CodeSigningPolicies",
                                           "CodeSigningConfigArn", "Description", "LastModified"};
        static const char *const apk[] = {"SigningProfileVersionArns"};
        static const char *const cpk[] = {"UntrustedArtifactOnDeployment"};
        sg_csc c = {0};
        int r;

        if ((r = check_keys(j, "the code signing config", keys, SG_ELEMENTSOF(keys), 3, err)) < 0)
                return r;
        const char *id = get_str(j, "CodeSigningConfigId");
        if (!sg_csc_id_valid(id))
                return sg_error_set(err, SG_REASON_MALFORMED, "CodeSigningConfigId must be csc- and 17 lowercase hex digits");
        snprintf(c.id, sizeof(c.id), "%s", id);
        const char *arn = get_str(j, "CodeSigningConfigArn");
        char aid[22];
        if (cJSON_GetObjectItemCaseSensitive(j, "CodeSigningConfigArn") &&
            (!arn || sg_csc_arn_id(arn, aid) < 0 || strcmp(aid, id) != 0))
                return sg_error_set(err, SG_REASON_MALFORMED, "CodeSigningConfigArn does not name %s", id);
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(j, "Description");
        if (desc && (!cJSON_IsString(desc) || strlen(desc->valuestring) > SG_DESCRIPTION_MAX))
                return sg_error_set(err, SG_REASON_MALFORMED, "Description must be a string of at most %d bytes",
                                    SG_DESCRIPTION_MAX);
        if (desc)
                snprintf(c.description, sizeof(c.description), "%s", desc->valuestring);
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(j, "AllowedPublishers");
        if ((r = check_keys(ap, "AllowedPublishers", apk, 1, 1, err)) < 0)
                return r;
        const cJSON *arns = cJSON_GetObjectItemCaseSensitive(ap, "SigningProfileVersionArns");
        if (!cJSON_IsArray(arns) || cJSON_GetArraySize(arns) < 1 || cJSON_GetArraySize(arns) > SG_CSC_MAX_PUBLISHERS)
                return sg_error_set(err, SG_REASON_MALFORMED, "SigningProfileVersionArns must list 1 to %d profile versions",
                                    SG_CSC_MAX_PUBLISHERS);
        for (const cJSON *a = arns->child; a; a = a->next) {
                if (!cJSON_IsString(a) || sg_profile_arn_canonical(a->valuestring, c.publishers[c.n_publishers]) < 0)
                        return sg_error_set(err, SG_REASON_MALFORMED,
                                            "'%.100s' is not a signing profile version ARN (NAME/VERSION or arn:…/signing-profiles/NAME/VERSION)",
                                            cJSON_IsString(a) ? a->valuestring : "(not a string)");
                c.n_publishers++;
        }
        const cJSON *cp = cJSON_GetObjectItemCaseSensitive(j, "CodeSigningPolicies");
        if ((r = check_keys(cp, "CodeSigningPolicies", cpk, 1, 1, err)) < 0)
                return r;
        if (sg_untrusted_policy_from_name(get_str(cp, "UntrustedArtifactOnDeployment"), &c.policy) < 0)
                return sg_error_set(err, SG_REASON_MALFORMED, "UntrustedArtifactOnDeployment must be Enforce or Warn");
        const char *lm = get_str(j, "LastModified");
        if (cJSON_GetObjectItemCaseSensitive(j, "LastModified") && (!lm || sg_time_parse(lm, &c.last_modified) < 0))
                return sg_error_set(err, SG_REASON_MALFORMED, "LastModified is not an RFC 3339 time");
        if (!(c.doc = cJSON_Duplicate(j, true)))
                return -ENOMEM;
        *ret = c;
        return 0;
}

int sg_function_from_json(const cJSON *j, sg_function *ret, sg_error *err) {
        static const char *const keys[] = {"FunctionName", "CodeSigningConfigArn", "Layers"};
        sg_function f = {0};
        int r;

        if ((r = check_keys(j, "the function", keys, SG_ELEMENTSOF(keys), 1, err)) < 0)
                return r;
        const char *name = get_str(j, "FunctionName");
        if (!sg_name_valid(name))
                return sg_error_set(err, SG_REASON_MALFORMED, "FunctionName must match [A-Za-z0-9_-]{1,64}");
        snprintf(f.name, sizeof(f.name), "%s", name);
        const cJSON *arn = cJSON_GetObjectItemCaseSensitive(j, "CodeSigningConfigArn");
        if (arn && !cJSON_IsNull(arn) && (!cJSON_IsString(arn) || sg_csc_arn_id(arn->valuestring, f.csc_id) < 0))
                return sg_error_set(err, SG_REASON_MALFORMED, "CodeSigningConfigArn must be null or a code signing config ARN");
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "Layers");
        if (layers) {
                if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) > 5)
                        return sg_error_set(err, SG_REASON_MALFORMED, "Layers must be an array of at most 5 layer names");
                for (const cJSON *l = layers->child; l; l = l->next)
                        if (!cJSON_IsString(l) || !sg_name_valid(l->valuestring))
                                return sg_error_set(err, SG_REASON_MALFORMED, "Layers must be an array of at most 5 layer names");
        }
        if (!(f.doc = cJSON_Duplicate(j, true)))
                return -ENOMEM;
        *ret = f;
        return 0;
}

int sg_revocation_from_json(const cJSON *j, sg_revocation *ret, sg_error *err) {
        static const char *const pkeys[] = {"type", "profileName", "profileVersion", "effectiveTime", "reason"};
        static const char *const skeys[] = {"type", "jobId", "reason"};
        sg_revocation v = {0};
        int r;

        const char *type = cJSON_IsObject(j) ? get_str(j, "type") : NULL;
        if (type && strcmp(type, "profile") == 0) {
                if ((r = check_keys(j, "the profile revocation", pkeys, SG_ELEMENTSOF(pkeys), 4, err)) < 0)
                        return r;
                const char *n = get_str(j, "profileName"), *ver = get_str(j, "profileVersion");
                if (!sg_profile_name_valid(n) || !sg_profile_version_valid(ver))
                        return sg_error_set(err, SG_REASON_MALFORMED, "the revocation's profileName or profileVersion is invalid");
                if (sg_time_parse(get_str(j, "effectiveTime"), &v.effective_time) < 0)
                        return sg_error_set(err, SG_REASON_MALFORMED, "effectiveTime is not an RFC 3339 time");
                v.type = SG_REVOKE_PROFILE;
                snprintf(v.profile_name, sizeof(v.profile_name), "%s", n);
                snprintf(v.profile_version, sizeof(v.profile_version), "%s", ver);
        } else if (type && strcmp(type, "signature") == 0) {
                if ((r = check_keys(j, "the signature revocation", skeys, SG_ELEMENTSOF(skeys), 2, err)) < 0)
                        return r;
                const char *job = get_str(j, "jobId");
                if (!sg_uuid_valid(job))
                        return sg_error_set(err, SG_REASON_MALFORMED, "jobId is not a lowercase UUID");
                v.type = SG_REVOKE_SIGNATURE;
                snprintf(v.job_id, sizeof(v.job_id), "%s", job);
        } else
                return sg_error_set(err, SG_REASON_MALFORMED, "a revocation's type must be \"profile\" or \"signature\"");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
        if (reason && (!cJSON_IsString(reason) || strlen(reason->valuestring) > 1024))
                return sg_error_set(err, SG_REASON_MALFORMED, "reason must be a string of at most 1024 bytes");
        if (!(v.doc = cJSON_Duplicate(j, true)))
                return -ENOMEM;
        *ret = v;
        return 0;
}

sg_store *sg_store_new(void) { return calloc(1, sizeof(sg_store)); }

void sg_store_free(sg_store *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_profiles; i++)
                sg_profile_done(&s->profiles[i]);
        for (size_t i = 0; i < s->n_cscs; i++)
                cJSON_Delete(s->cscs[i].doc);
        for (size_t i = 0; i < s->n_functions; i++)
                cJSON_Delete(s->functions[i].doc);
        for (size_t i = 0; i < s->n_revocations; i++)
                cJSON_Delete(s->revocations[i].doc);
        free(s->profiles);
        free(s->cscs);
        free(s->functions);
        free(s->revocations);
        free(s);
}

/* Appends one element to a growing array (doubling), copying item in. */
static int push(void **arr, size_t *n, size_t size, const void *item) {
        if ((*n & (*n - 1)) == 0) { /* n is 0 or a power of two: grow */
                size_t cap = *n ? *n * 2 : 4;
                void *a = realloc(*arr, cap * size);
                if (!a)
                        return -ENOMEM;
                *arr = a;
        }
        memcpy((char *) *arr + *n * size, item, size);
        (*n)++;
        return 0;
}

int sg_store_add_profile(sg_store *s, sg_profile *p) { return push((void **) &s->profiles, &s->n_profiles, sizeof(*p), p); }
int sg_store_add_csc(sg_store *s, sg_csc *c) { return push((void **) &s->cscs, &s->n_cscs, sizeof(*c), c); }
int sg_store_add_function(sg_store *s, sg_function *f) { return push((void **) &s->functions, &s->n_functions, sizeof(*f), f); }

const sg_profile *sg_store_find_profile(const sg_store *s, const char *name, const char *version) {
        for (size_t i = 0; i < s->n_profiles; i++)
                if (strcmp(s->profiles[i].name, name) == 0 && strcmp(s->profiles[i].version, version) == 0)
                        return &s->profiles[i];
        return NULL;
}

const sg_csc *sg_store_find_csc(const sg_store *s, const char *id) {
        for (size_t i = 0; i < s->n_cscs; i++)
                if (strcmp(s->cscs[i].id, id) == 0)
                        return &s->cscs[i];
        return NULL;
}

const sg_function *sg_store_find_function(const sg_store *s, const char *name) {
        for (size_t i = 0; i < s->n_functions; i++)
                if (strcmp(s->functions[i].name, name) == 0)
                        return &s->functions[i];
        return NULL;
}

typedef enum { KIND_PROFILE, KIND_CSC, KIND_FUNCTION, KIND_REVOCATION } doc_kind;

/* The file name a document must have, so one item cannot hide under another's name. */
static void expected_name(doc_kind k, const void *item, char *buf, size_t len) {
        switch (k) {
        case KIND_PROFILE:
                snprintf(buf, len, "%s@%s.json", ((const sg_profile *) item)->name, ((const sg_profile *) item)->version);
                break;
        case KIND_CSC:
                snprintf(buf, len, "%s.json", ((const sg_csc *) item)->id);
                break;
        case KIND_FUNCTION:
                snprintf(buf, len, "%s.json", ((const sg_function *) item)->name);
                break;
        case KIND_REVOCATION:
                buf[0] = '\0';
                break;
        }
}

static int load_dir(int parent, const char *subdir, doc_kind kind, sg_store *s, sg_error *err) {
        DIR *d = NULL;
        int k = sg_opendirat(parent, subdir, &d);
        if (k < 0)
                return k == -ENOENT ? 0 : k;
        int fd = dirfd(d);
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                const char *n = de->d_name;
                size_t len = strlen(n);
                if (n[0] == '.' || (len > 4 && strcmp(n + len - 4, ".tmp") == 0))
                        continue;
                if (len < 6 || strcmp(n + len - 5, ".json") != 0) {
                        r = sg_error_set(err, SG_REASON_MALFORMED, "%s/%s: not a .json document", subdir, n);
                        break;
                }
                _cleanup_(sg_freep) char *text = NULL;
                size_t tlen = 0;
                if ((r = sg_read_file(fd, n, SG_STORE_DOC_MAX, &text, &tlen)) < 0) {
                        r = sg_error_set(err, SG_REASON_MALFORMED, "%s/%s: cannot read: %s", subdir, n, strerror(-r));
                        break;
                }
                const char *end = NULL;
                _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLengthOpts(text, tlen, &end, false);
                while (j && end && end < text + tlen && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r'))
                        end++;
                if (!j || end != text + tlen) {
                        r = sg_error_set(err, SG_REASON_MALFORMED, "%s/%s: not valid JSON", subdir, n);
                        break;
                }
                sg_error e = {0};
                char want[128];
                union {
                        sg_profile p;
                        sg_csc c;
                        sg_function f;
                        sg_revocation v;
                } item;
                switch (kind) {
                case KIND_PROFILE:
                        r = sg_profile_from_json(j, &item.p, &e);
                        break;
                case KIND_CSC:
                        r = sg_csc_from_json(j, &item.c, &e);
                        break;
                case KIND_FUNCTION:
                        r = sg_function_from_json(j, &item.f, &e);
                        break;
                case KIND_REVOCATION:
                        r = sg_revocation_from_json(j, &item.v, &e);
                        break;
                }
                if (r < 0) {
                        r = r == -EINVAL ? sg_error_set(err, SG_REASON_MALFORMED, "%s/%s: %s", subdir, n, e.msg) : r;
                        break;
                }
                expected_name(kind, &item, want, sizeof(want));
                if (want[0] && strcmp(want, n) != 0) {
                        r = sg_error_set(err, SG_REASON_MALFORMED, "%s/%s: the document belongs in %s/%s", subdir, n, subdir, want);
                } else if (kind == KIND_PROFILE)
                        r = sg_store_add_profile(s, &item.p);
                else if (kind == KIND_CSC)
                        r = sg_store_add_csc(s, &item.c);
                else if (kind == KIND_FUNCTION)
                        r = sg_store_add_function(s, &item.f);
                else
                        r = push((void **) &s->revocations, &s->n_revocations, sizeof(item.v), &item.v);
                if (r < 0) {
                        if (kind == KIND_PROFILE)
                                sg_profile_done(&item.p);
                        else
                                cJSON_Delete(kind == KIND_CSC ? item.c.doc : kind == KIND_FUNCTION ? item.f.doc : item.v.doc);
                        break;
                }
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        return r;
}

int sg_store_load(int dirfd, sg_store **ret, sg_error *err) {
        _cleanup_(sg_store_freep) sg_store *s = sg_store_new();
        int r;

        if (!s)
                return -ENOMEM;
        if ((r = load_dir(dirfd, "signing-profiles", KIND_PROFILE, s, err)) < 0 ||
            (r = load_dir(dirfd, "code-signing-configs", KIND_CSC, s, err)) < 0 ||
            (r = load_dir(dirfd, "functions", KIND_FUNCTION, s, err)) < 0 ||
            (r = load_dir(dirfd, "revocations", KIND_REVOCATION, s, err)) < 0)
                return r;
        for (size_t i = 0; i < s->n_functions; i++)
                if (s->functions[i].csc_id[0] && !sg_store_find_csc(s, s->functions[i].csc_id))
                        return sg_error_set(err, SG_REASON_MALFORMED, "functions/%s.json: code signing config %s does not exist",
                                            s->functions[i].name, s->functions[i].csc_id);
        *ret = SG_TAKE_PTR(s);
        return 0;
}

int sg_store_write(int dirfd, const char *subdir, const char *file, const cJSON *doc) {
        _cleanup_(sg_freep) char *text = cJSON_Print(doc);
        int r;

        if (!text)
                return -ENOMEM;
        if (mkdirat(dirfd, subdir, 0755) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_(sg_closep) int fd = openat(dirfd, subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL: the document ends in a newline on disk */
        r = sg_write_file_atomic(fd, file, text, len + 1, 0644);
        text[len] = '\0';
        if (r == 0)
                r = sg_fsync_dir(dirfd); /* a new subdir must itself be durable */
        return r;
}

int sg_firstseen_find(int dirfd, const char *name, const unsigned char digest[SG_DIGEST_LEN], int64_t *ret) {
        _cleanup_(sg_closep) int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char hex[SG_DIGEST_HEX_LEN + 1];
        bool found = false;
        int64_t best = 0;

        if (fd < 0)
                return -errno;
        FILE *f = fdopen(fd, "r");
        if (!f)
                return -errno;
        fd = -1;
        sg_hex_encode(digest, SG_DIGEST_LEN, hex);
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        /* getline, not a fixed buffer: a long corrupt line must be skipped whole, not split
         * into pieces one of which could read as an earlier first sighting. */
        while ((got = getline(&line, &cap, f)) >= 0) {
                int64_t t;
                size_t len = (size_t) got;
                if (len > 0 && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (len < SG_DIGEST_HEX_LEN + 2 || len > SG_DIGEST_HEX_LEN + 64 || line[SG_DIGEST_HEX_LEN] != ' ' ||
                    memcmp(line, hex, SG_DIGEST_HEX_LEN) != 0 || sg_time_parse(line + SG_DIGEST_HEX_LEN + 1, &t) < 0)
                        continue;
                if (!found || t < best)
                        best = t;
                found = true;
        }
        free(line);
        fclose(f);
        if (!found)
                return -ENOENT;
        *ret = best;
        return 0;
}
