#include "sg_signature.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* A DER ECDSA P-384 signature is at most 104 bytes; the statement well under 4 KiB. */
#define SIG_DER_MAX 128u
#define PAYLOAD_MAX 16384u
#define KEY_FILE_MAX 16384u

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }
static void pkey_freep(EVP_PKEY **k) { EVP_PKEY_free(*k); }
static void bio_freep(BIO **b) { BIO_free(*b); }
static void md_ctx_freep(EVP_MD_CTX **c) { EVP_MD_CTX_free(*c); }

const char *sg_platform_canonical(const char *id) {
        if (!id)
                return NULL;
        if (strcmp(id, SG_PLATFORM_LAMBDA) == 0 || strcmp(id, SG_PLATFORM_LAMBDA_ALIAS) == 0)
                return SG_PLATFORM_LAMBDA;
        if (strcmp(id, SG_PLATFORM_BLOB) == 0)
                return SG_PLATFORM_BLOB;
        return NULL;
}

/* True when obj is an object whose keys are exactly names (each once, no others): cJSON keeps
 * duplicate keys, and two readers picking different duplicates is how parsers get fooled. */
static bool exact_keys(const cJSON *obj, const char *const *names, size_t n) {
        if (!cJSON_IsObject(obj) || (size_t) cJSON_GetArraySize(obj) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!cJSON_GetObjectItemCaseSensitive(obj, names[i]))
                        return false;
        for (const cJSON *a = obj->child; a; a = a->next)
                for (const cJSON *b = a->next; b; b = b->next)
                        if (strcmp(a->string, b->string) == 0)
                                return false;
        return true;
}

static const char *str_field(const cJSON *obj, const char *name) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int pae_build(const unsigned char *payload, size_t len, unsigned char **ret, size_t *ret_len) {
        char head[128];
        int h = snprintf(head, sizeof(head), "DSSEv1 %zu %s %zu ", strlen(SG_PAYLOAD_TYPE), SG_PAYLOAD_TYPE, len);
        if (h < 0 || (size_t) h >= sizeof(head))
                return -EINVAL;
        unsigned char *pae = malloc((size_t) h + len);
        if (!pae)
                return -ENOMEM;
        memcpy(pae, head, (size_t) h);
        memcpy(pae + h, payload, len);
        *ret = pae;
        *ret_len = (size_t) h + len;
        return 0;
}

static int parse_statement(const unsigned char *payload, size_t len, sg_statement *st, sg_error *err) {
        static const char *const top[] = {"_type", "subject", "predicateType", "predicate"};
        static const char *const subj[] = {"name", "digest"};
        static const char *const dig[] = {"sha384"};
        static const char *const pred[] = {"platformId", "profileName", "profileVersion", "jobId",
                                           "signedAt", "signatureExpiresAt", "size"};
        const char *end = NULL;
        _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLengthOpts((const char *) payload, len, &end, false);

        if (!j || end != (const char *) payload + len || !exact_keys(j, top, SG_ELEMENTSOF(top)))
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement is not an in-toto Statement v1");
        const char *t = str_field(j, "_type"), *pt = str_field(j, "predicateType");
        if (!t || strcmp(t, SG_STATEMENT_TYPE) != 0 || !pt || strcmp(pt, SG_PREDICATE_TYPE) != 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement has an unknown type or predicate type");
        const cJSON *subject = cJSON_GetObjectItemCaseSensitive(j, "subject");
        if (!cJSON_IsArray(subject) || cJSON_GetArraySize(subject) != 1 ||
            !exact_keys(subject->child, subj, SG_ELEMENTSOF(subj)) ||
            !exact_keys(cJSON_GetObjectItemCaseSensitive(subject->child, "digest"), dig, SG_ELEMENTSOF(dig)))
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement must have exactly one subject with a sha384 digest");
        const char *name = str_field(subject->child, "name");
        const char *hex = str_field(cJSON_GetObjectItemCaseSensitive(subject->child, "digest"), "sha384");
        if (!name || strlen(name) > SG_SUBJECT_NAME_MAX || !hex || sg_hex_decode(hex, st->digest, SG_DIGEST_LEN) < 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement's subject name or digest is invalid");
        memcpy(st->subject_name, name, strlen(name) + 1);

        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "predicate");
        if (!exact_keys(p, pred, SG_ELEMENTSOF(pred)))
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement's predicate has missing or unknown fields");
        const char *platform = str_field(p, "platformId"), *pn = str_field(p, "profileName");
        const char *pv = str_field(p, "profileVersion"), *job = str_field(p, "jobId");
        const char *sa = str_field(p, "signedAt"), *ea = str_field(p, "signatureExpiresAt");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(p, "size");
        if (!platform || !sg_platform_canonical(platform) || strcmp(sg_platform_canonical(platform), platform) != 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement names an unknown platform");
        if (!sg_profile_name_valid(pn) || !sg_profile_version_valid(pv) || !sg_uuid_valid(job))
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement's profile name, version or job id is invalid");
        if (!sa || sg_time_parse(sa, &st->signed_at) < 0 || !ea || sg_time_parse(ea, &st->expires_at) < 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement's times are not RFC 3339");
        /* JSON numbers are doubles: only integers up to 2^53 are exact. */
        if (!cJSON_IsNumber(size) || size->valuedouble < 0 || size->valuedouble > 9007199254740992.0 ||
            floor(size->valuedouble) != size->valuedouble)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signed statement's size is not a byte count");
        st->size = (uint64_t) size->valuedouble;
        snprintf(st->platform_id, sizeof(st->platform_id), "%s", platform);
        snprintf(st->profile_name, sizeof(st->profile_name), "%s", pn);
        snprintf(st->profile_version, sizeof(st->profile_version), "%s", pv);
        snprintf(st->job_id, sizeof(st->job_id), "%s", job);
        return 0;
}

void sg_envelope_done(sg_envelope *env) {
        if (!env)
                return;
        free(env->pae);
        free(env->sig);
        env->pae = env->sig = NULL;
}

int sg_envelope_parse(const char *block, size_t len, sg_envelope *ret, sg_error *err) {
        static const char *const top[] = {"payloadType", "payload", "signatures"};
        static const char *const sigk[] = {"keyid", "sig"};
        const size_t mlen = strlen(SG_SIGNATURE_MAGIC);
        sg_envelope env = {0};
        _cleanup_(sg_freep) unsigned char *payload = NULL;
        size_t payload_len = 0;
        int r;

        if (len > SG_SIGNATURE_MAX || len < mlen || memcmp(block, SG_SIGNATURE_MAGIC, mlen) != 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the archive comment is not a signgate signature block");
        const char *json = block + mlen;
        size_t jlen = len - mlen;
        for (size_t i = 0; i < jlen; i++)
                if ((unsigned char) json[i] < 0x20 || (unsigned char) json[i] > 0x7e)
                        return sg_error_set(err, SG_REASON_INTEGRITY, "the signature block has a byte outside printable ASCII at offset %zu",
                                            mlen + i);
        const char *end = NULL;
        _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLengthOpts(json, jlen, &end, false);
        if (!j || end != json + jlen || !exact_keys(j, top, SG_ELEMENTSOF(top)))
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signature block is not a DSSE envelope");
        const char *ptype = str_field(j, "payloadType"), *p64 = str_field(j, "payload");
        const cJSON *sigs = cJSON_GetObjectItemCaseSensitive(j, "signatures");
        if (!ptype || strcmp(ptype, SG_PAYLOAD_TYPE) != 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the envelope's payloadType is not %s", SG_PAYLOAD_TYPE);
        if (!cJSON_IsArray(sigs) || cJSON_GetArraySize(sigs) != 1 || !exact_keys(sigs->child, sigk, SG_ELEMENTSOF(sigk)))
                return sg_error_set(err, SG_REASON_INTEGRITY, "the envelope must hold exactly one signature with keyid and sig");
        const char *keyid = str_field(sigs->child, "keyid"), *s64 = str_field(sigs->child, "sig");
        if (!p64 || strlen(p64) > PAYLOAD_MAX / 3 * 4 + 4 || !keyid || strlen(keyid) > SG_KEYID_MAX || !s64 ||
            strlen(s64) > SIG_DER_MAX / 3 * 4 + 4)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the envelope's payload, keyid or sig is missing or too long");
        if ((r = sg_base64_decode(p64, strlen(p64), &payload, &payload_len)) < 0)
                return r == -ENOMEM ? r : sg_error_set(err, SG_REASON_INTEGRITY, "the envelope's payload is not valid base64");
        if ((r = sg_base64_decode(s64, strlen(s64), &env.sig, &env.sig_len)) < 0)
                return r == -ENOMEM ? r : sg_error_set(err, SG_REASON_INTEGRITY, "the envelope's sig is not valid base64");
        if ((r = parse_statement(payload, payload_len, &env.st, err)) < 0)
                goto fail;
        char expect[SG_KEYID_MAX + 1];
        snprintf(expect, sizeof(expect), "%s/%s", env.st.profile_name, env.st.profile_version);
        if (strcmp(keyid, expect) != 0) {
                r = sg_error_set(err, SG_REASON_INTEGRITY, "the envelope's keyid '%.80s' is not the signed profile %s", keyid, expect);
                goto fail;
        }
        memcpy(env.keyid, keyid, strlen(keyid) + 1);
        if ((r = pae_build(payload, payload_len, &env.pae, &env.pae_len)) < 0)
                goto fail;
        *ret = env;
        return 0;
fail:
        sg_envelope_done(&env);
        return r;
}

int sg_envelope_verify(const sg_envelope *env, EVP_PKEY *pub) {
        _cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, pub) != 1)
                return -EBADMSG;
        return EVP_DigestVerify(ctx, env->sig, env->sig_len, env->pae, env->pae_len) == 1 ? 0 : -EBADMSG;
}

int sg_envelope_matches(const sg_envelope *env, const unsigned char digest[SG_DIGEST_LEN], uint64_t size,
                        const char *platform_id, sg_error *err) {
        if (strcmp(env->st.platform_id, platform_id) != 0)
                return sg_error_set(err, SG_REASON_INTEGRITY, "the signature is for platform %s, not %s",
                                    env->st.platform_id, platform_id);
        if (CRYPTO_memcmp(env->st.digest, digest, SG_DIGEST_LEN) != 0 || env->st.size != size)
                return sg_error_set(err, SG_REASON_INTEGRITY,
                                    "the package digest does not match the signed digest: the package changed after signing");
        return 0;
}

static cJSON *statement_json(const sg_statement *st) {
        char hex[SG_DIGEST_HEX_LEN + 1], sa[SG_TIME_LEN + 1], ea[SG_TIME_LEN + 1];
        cJSON *j = cJSON_CreateObject(), *subj, *s, *d, *p;

        if (!j || sg_time_format(st->signed_at, sa) < 0 || sg_time_format(st->expires_at, ea) < 0)
                goto fail;
        sg_hex_encode(st->digest, SG_DIGEST_LEN, hex);
        if (!cJSON_AddStringToObject(j, "_type", SG_STATEMENT_TYPE) || !(subj = cJSON_AddArrayToObject(j, "subject")) ||
            !(s = cJSON_CreateObject()) || !cJSON_AddItemToArray(subj, s) ||
            !cJSON_AddStringToObject(s, "name", st->subject_name) || !(d = cJSON_AddObjectToObject(s, "digest")) ||
            !cJSON_AddStringToObject(d, "sha384", hex) ||
            !cJSON_AddStringToObject(j, "predicateType", SG_PREDICATE_TYPE) ||
            !(p = cJSON_AddObjectToObject(j, "predicate")) ||
            !cJSON_AddStringToObject(p, "platformId", st->platform_id) ||
            !cJSON_AddStringToObject(p, "profileName", st->profile_name) ||
            !cJSON_AddStringToObject(p, "profileVersion", st->profile_version) ||
            !cJSON_AddStringToObject(p, "jobId", st->job_id) || !cJSON_AddStringToObject(p, "signedAt", sa) ||
            !cJSON_AddStringToObject(p, "signatureExpiresAt", ea) ||
            !cJSON_AddNumberToObject(p, "size", (double) st->size))
                goto fail;
        return j;
fail:
        cJSON_Delete(j);
        return NULL;
}

int sg_envelope_build(const sg_statement *st, EVP_PKEY *key, char **ret, size_t *ret_len) {
        _cleanup_(cjson_deletep) cJSON *stj = statement_json(st);
        _cleanup_(cjson_deletep) cJSON *env = NULL;
        _cleanup_(sg_freep) char *payload = NULL, *p64 = NULL, *s64 = NULL, *json = NULL;
        _cleanup_(sg_freep) unsigned char *pae = NULL, *sig = NULL;
        _cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t pae_len = 0, sig_len = 0;
        char keyid[SG_KEYID_MAX + 1];
        cJSON *sigs, *one;
        int r;

        if (!stj || !ctx || !(payload = cJSON_PrintUnformatted(stj)))
                return -ENOMEM;
        if ((r = pae_build((const unsigned char *) payload, strlen(payload), &pae, &pae_len)) < 0)
                return r;
        if (EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key) != 1 ||
            EVP_DigestSign(ctx, NULL, &sig_len, pae, pae_len) != 1 || !(sig = malloc(sig_len)) ||
            EVP_DigestSign(ctx, sig, &sig_len, pae, pae_len) != 1)
                return -EIO;
        snprintf(keyid, sizeof(keyid), "%s/%s", st->profile_name, st->profile_version);
        if (!(p64 = sg_base64_encode((const unsigned char *) payload, strlen(payload))) ||
            !(s64 = sg_base64_encode(sig, sig_len)) || !(env = cJSON_CreateObject()) ||
            !cJSON_AddStringToObject(env, "payloadType", SG_PAYLOAD_TYPE) ||
            !cJSON_AddStringToObject(env, "payload", p64) || !(sigs = cJSON_AddArrayToObject(env, "signatures")) ||
            !(one = cJSON_CreateObject()) || !cJSON_AddItemToArray(sigs, one) ||
            !cJSON_AddStringToObject(one, "keyid", keyid) || !cJSON_AddStringToObject(one, "sig", s64) ||
            !(json = cJSON_PrintUnformatted(env)))
                return -ENOMEM;
        size_t mlen = strlen(SG_SIGNATURE_MAGIC), jlen = strlen(json);
        if (mlen + jlen > SG_SIGNATURE_MAX)
                return -E2BIG;
        char *block = malloc(mlen + jlen + 1);
        if (!block)
                return -ENOMEM;
        memcpy(block, SG_SIGNATURE_MAGIC, mlen);
        memcpy(block + mlen, json, jlen + 1);
        *ret = block;
        *ret_len = mlen + jlen;
        return 0;
}

static bool is_p384(EVP_PKEY *key) {
        char group[64];
        size_t glen = 0;
        return key && EVP_PKEY_is_a(key, "EC") &&
               EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) == 1 &&
               strcmp(group, "secp384r1") == 0;
}

int sg_key_generate(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        if (!k)
                return -EIO;
        *ret = k;
        return 0;
}

int sg_key_profile_version(EVP_PKEY *key, char ret[11]) {
        unsigned char *der = NULL, md[32];
        char b32[64];
        int n = i2d_PUBKEY(key, &der);
        if (n <= 0)
                return -EINVAL;
        int ok = EVP_Digest(der, (size_t) n, md, NULL, EVP_sha256(), NULL);
        OPENSSL_free(der);
        if (ok != 1)
                return -EIO;
        sg_base32_encode_lower(md, sizeof(md), b32);
        memcpy(ret, b32, 10);
        ret[10] = '\0';
        return 0;
}

int sg_key_public_pem(EVP_PKEY *key, char **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;
        if (!b || PEM_write_bio_PUBKEY(b, key) != 1)
                return -EIO;
        long n = BIO_get_mem_data(b, &data);
        char *s = n > 0 ? strndup(data, (size_t) n) : NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int sg_key_from_public_pem(const char *pem, EVP_PKEY **ret) {
        _cleanup_(bio_freep) BIO *b = BIO_new_mem_buf(pem, -1);
        _cleanup_(pkey_freep) EVP_PKEY *k = NULL;
        if (!b)
                return -ENOMEM;
        k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        if (!is_p384(k))
                return -EINVAL;
        *ret = SG_TAKE_PTR(k);
        return 0;
}

int sg_key_write_private(int dirfd, const char *name, EVP_PKEY *key) {
        _cleanup_(bio_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;
        if (!b || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
                return -EIO;
        long n = BIO_get_mem_data(b, &data);
        if (n <= 0)
                return -EIO;
        int r = sg_write_file_new(dirfd, name, data, (size_t) n, 0600);
        OPENSSL_cleanse(data, (size_t) n);
        return r;
}

int sg_key_read_private(int dirfd, const char *name, EVP_PKEY **ret) {
        _cleanup_(sg_closep) int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct stat st;
        char buf[KEY_FILE_MAX];
        ssize_t n;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_mode & 077)
                return -EPERM;
        do
                n = read(fd, buf, sizeof(buf));
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t) n >= sizeof(buf))
                return -EFBIG;
        BIO *b = BIO_new_mem_buf(buf, (int) n);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (!is_p384(k)) {
                EVP_PKEY_free(k);
                return -EINVAL;
        }
        *ret = k;
        return 0;
}

static int copy_fd(int in_fd, int out_fd) {
        char buf[65536];
        uint64_t off = 0;
        for (;;) {
                ssize_t n = pread(in_fd, buf, sizeof(buf), (off_t) off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                int r = sg_write_all(out_fd, buf, (size_t) n);
                if (r < 0)
                        return r;
                off += (uint64_t) n;
        }
}

int sg_sign_package(int in_fd, int out_fd, const sg_limits *limits, sg_statement *st, EVP_PKEY *key, sg_error *err) {
        _cleanup_(sg_package_freep) sg_package *pkg = NULL;
        _cleanup_(sg_freep) char *block = NULL;
        size_t block_len = 0;
        struct stat s;
        int r;

        /* Sign the private copy, not the source: what is checked is then exactly what is signed,
         * whatever happens to the source meanwhile. */
        if (fstat(in_fd, &s) < 0)
                return -errno;
        if (!S_ISREG(s.st_mode))
                return sg_error_set(err, SG_REASON_MALFORMED, "not a regular file");
        if ((uint64_t) s.st_size > limits->package_bytes)
                return sg_error_set(err, SG_REASON_LIMIT_EXCEEDED, "the package is %llu bytes, over the limit of %llu",
                                    (unsigned long long) s.st_size, (unsigned long long) limits->package_bytes);
        if ((r = copy_fd(in_fd, out_fd)) < 0)
                return r;
        if ((r = sg_package_inspect(out_fd, limits, NULL, &pkg, err)) < 0)
                return r;
        if (pkg->comment_len > 0) {
                if (pkg->comment_len >= strlen(SG_SIGNATURE_MAGIC) &&
                    memcmp(pkg->comment, SG_SIGNATURE_MAGIC, strlen(SG_SIGNATURE_MAGIC)) == 0)
                        return sg_error_set(err, SG_REASON_MALFORMED, "the archive is already signed");
                return sg_error_set(err, SG_REASON_MALFORMED,
                                    "the archive has a comment (%zu bytes); signing needs an archive without one",
                                    pkg->comment_len);
        }
        if (pkg->n_entries == 0)
                return sg_error_set(err, SG_REASON_MALFORMED, "the archive is empty");
        memcpy(st->digest, pkg->digest, SG_DIGEST_LEN);
        st->size = pkg->canonical_size;
        if ((r = sg_envelope_build(st, key, &block, &block_len)) < 0)
                return r;
        unsigned char len16[2] = {(unsigned char) (block_len & 0xff), (unsigned char) (block_len >> 8)};
        if (pwrite(out_fd, len16, 2, (off_t) (pkg->eocd_offset + 20)) != 2)
                return -EIO;
        if (lseek(out_fd, (off_t) (pkg->eocd_offset + 22), SEEK_SET) < 0)
                return -errno;
        return sg_write_all(out_fd, block, block_len);
}

int sg_sign_blob(int in_fd, sg_statement *st, EVP_PKEY *key, char **ret, size_t *ret_len) {
        int r = sg_file_sha384(in_fd, st->digest, &st->size);
        if (r < 0)
                return r;
        return sg_envelope_build(st, key, ret, ret_len);
}
