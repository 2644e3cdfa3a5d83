/* Unit tests for policy/sg_signature.c: keys and profile versions, the DSSE signature block
 * (DESIGN §4), and signing packages and blobs.
 *
 * Independent checks: the profile version, the PAE and the digests are recomputed here with
 * OpenSSL and a base32 written in this file; hostile signature blocks are written by hand.
 *
 * Run one test alone with: unit-policy-test-signature TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "sg_package.h"
#include "sg_signature.h"
#include "sg_test.h"

/* ---- fixture: a temp directory and one P-384 key per test ----
 *
 * Keys a test needs besides the fixture's are made through other_key(), so that a failed
 * assertion, which leaves the test early, does not leak them. */

typedef struct {
        char *dir;
        int dirfd;
        EVP_PKEY *key;
        EVP_PKEY *other;
        EVP_PKEY *back; /* a key read back, freed by teardown */
} fixture;

static EVP_PKEY *other_key(fixture *f) {
        if (!f->other)
                assert_int_equal(sg_key_generate(&f->other), 0);
        return f->other;
}

static int setup(void **state) {
        fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        if (sg_test_tmpdir_create("sg-signature", &f->dir, &f->dirfd) < 0) {
                free(f);
                return -1;
        }
        if (sg_key_generate(&f->key) != 0) {
                (void) sg_test_tmpdir_remove(f->dir, f->dirfd);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        EVP_PKEY_free(f->key);
        EVP_PKEY_free(f->other);
        EVP_PKEY_free(f->back);
        int r = sg_test_tmpdir_remove(f->dir, f->dirfd);
        free(f);
        return r;
}

static void assert_contains(const char *haystack, const char *needle) {
        if (!strstr(haystack, needle))
                fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static void sha384(const void *p, size_t n, unsigned char out[SG_DIGEST_LEN]) {
        unsigned int len = 0;
        assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha384(), NULL), 1);
        assert_int_equal(len, SG_DIGEST_LEN);
}

/* RFC 4648 base32, lowercase, no padding: written here so the profile version is checked
 * against something other than the library's own encoder. */
static void base32_lower(const unsigned char *in, size_t n, char *out) {
        static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
        size_t bits = n * 8, o = 0;
        for (size_t bit = 0; bit < bits; bit += 5) {
                unsigned v = 0;
                for (size_t k = 0; k < 5; k++) {
                        size_t b = bit + k;
                        unsigned one = b < bits ? (in[b / 8] >> (7 - b % 8)) & 1 : 0;
                        v = v << 1 | one;
                }
                out[o++] = alpha[v];
        }
        out[o] = '\0';
}

/* ---- a small ZIP writer: stored entries, optional Unix mode, optional comment ---- */

typedef struct {
        const char *name;
        const char *data;
        unsigned mode;
} zentry;

static void zip_write(sg_test_buf *b, const zentry *es, size_t n, const char *comment) {
        uint32_t *offs = calloc(n ? n : 1, sizeof(*offs));
        assert_non_null(offs);
        for (size_t i = 0; i < n; i++) {
                size_t dl = strlen(es[i].data), nl = strlen(es[i].name);
                offs[i] = (uint32_t) b->len;
                sg_test_buf_put32(b, 0x04034b50u);
                sg_test_buf_put16(b, 20);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0x21);
                sg_test_buf_put32(b, (uint32_t) crc32(0, (const unsigned char *) es[i].data, (uInt) dl));
                sg_test_buf_put32(b, (uint32_t) dl);
                sg_test_buf_put32(b, (uint32_t) dl);
                sg_test_buf_put16(b, (uint32_t) nl);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put(b, es[i].name, nl);
                sg_test_buf_put(b, es[i].data, dl);
        }
        uint32_t cd = (uint32_t) b->len;
        for (size_t i = 0; i < n; i++) {
                size_t dl = strlen(es[i].data), nl = strlen(es[i].name);
                sg_test_buf_put32(b, 0x02014b50u);
                sg_test_buf_put16(b, es[i].mode ? 0x0314 : 20);
                sg_test_buf_put16(b, 20);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0x21);
                sg_test_buf_put32(b, (uint32_t) crc32(0, (const unsigned char *) es[i].data, (uInt) dl));
                sg_test_buf_put32(b, (uint32_t) dl);
                sg_test_buf_put32(b, (uint32_t) dl);
                sg_test_buf_put16(b, (uint32_t) nl);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put16(b, 0);
                sg_test_buf_put32(b, es[i].mode << 16);
                sg_test_buf_put32(b, offs[i]);
                sg_test_buf_put(b, es[i].name, nl);
        }
        uint32_t cd_size = (uint32_t) b->len - cd;
        size_t cl = comment ? strlen(comment) : 0;
        sg_test_buf_put32(b, 0x06054b50u);
        sg_test_buf_put16(b, 0);
        sg_test_buf_put16(b, 0);
        sg_test_buf_put16(b, (uint32_t) n);
        sg_test_buf_put16(b, (uint32_t) n);
        sg_test_buf_put32(b, cd_size);
        sg_test_buf_put32(b, cd);
        sg_test_buf_put16(b, (uint32_t) cl);
        sg_test_buf_put(b, comment ? comment : "", cl);
        free(offs);
}

static int zip_file(fixture *f, const char *name, const zentry *es, size_t n, const char *comment,
                    sg_test_buf *keep) {
        sg_test_buf b = {0};
        zip_write(&b, es, n, comment);
        int fd = sg_test_write_file(f->dirfd, name, b.p, b.len);
        if (keep)
                *keep = b;
        else
                sg_test_buf_free(&b);
        return fd;
}

static int empty_out(fixture *f, const char *name) {
        int fd = openat(f->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        return fd;
}

static const zentry good_entries[] = {
        {.name = "index.js", .data = "exports.handler = async () => 'ok';\n", .mode = 0100644},
        {.name = "lib/", .data = "", .mode = 040755},
        {.name = "lib/util.js", .data = "module.exports = 1;\n", .mode = 0100644},
};

/* ---- statements ---- */

static sg_statement sample_statement(EVP_PKEY *key) {
        sg_statement st;
        memset(&st, 0, sizeof(st));
        snprintf(st.subject_name, sizeof(st.subject_name), "function.zip");
        for (int i = 0; i < SG_DIGEST_LEN; i++)
                st.digest[i] = (unsigned char) (0xa5 ^ i);
        snprintf(st.platform_id, sizeof(st.platform_id), "%s", SG_PLATFORM_LAMBDA);
        snprintf(st.profile_name, sizeof(st.profile_name), "my_signing_profile");
        assert_int_equal(sg_key_profile_version(key, st.profile_version), 0);
        snprintf(st.job_id, sizeof(st.job_id), "0f8fad5b-d9cb-469f-a165-70867728950e");
        st.signed_at = 1709210096;                /* 2024-02-29T12:34:56Z */
        st.expires_at = 1709210096 + 86400 * 365; /* a year later */
        st.size = 123456789;
        return st;
}

/* ---- keys ---- */

static void test_key_generate_gives_p384_ec_key(void **state) {
        fixture *f = *state;
        char group[64];
        size_t glen = 0;

        assert_true(EVP_PKEY_is_a(f->key, "EC"));
        assert_int_equal(EVP_PKEY_get_bits(f->key), 384);
        assert_int_equal(EVP_PKEY_get_utf8_string_param(f->key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen), 1);
        assert_string_equal(group, "secp384r1");
}

static void test_profile_version_is_base32_of_sha256_of_spki(void **state) {
        fixture *f = *state;
        char got[11], b32[64];
        unsigned char *der = NULL, md[32];
        unsigned int mdlen = 0;

        memset(got, 'X', sizeof(got));
        assert_int_equal(sg_key_profile_version(f->key, got), 0);
        int n = i2d_PUBKEY(f->key, &der);
        assert_true(n > 0);
        assert_int_equal(EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL), 1);
        OPENSSL_free(der);
        base32_lower(md, sizeof(md), b32);
        b32[10] = '\0';
        assert_int_equal(strlen(got), 10);
        assert_int_equal(strspn(got, "abcdefghijklmnopqrstuvwxyz234567"), 10);
        assert_string_equal(got, b32);
        assert_true(sg_profile_version_valid(got));
}

static void test_profile_version_differs_between_keys(void **state) {
        fixture *f = *state;
        char a[11], b[11];

        assert_int_equal(sg_key_profile_version(f->key, a), 0);
        assert_int_equal(sg_key_profile_version(other_key(f), b), 0);
        assert_string_not_equal(a, b);
}

static void test_public_pem_round_trips_to_equal_key(void **state) {
        fixture *f = *state;
        char *pem = NULL;
        EVP_PKEY *back = NULL;
        char va[11], vb[11];

        assert_int_equal(sg_key_public_pem(f->key, &pem), 0);
        assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
        assert_null(strstr(pem, "PRIVATE"));
        assert_int_equal(sg_key_from_public_pem(pem, &back), 0);
        assert_int_equal(EVP_PKEY_eq(f->key, back), 1);
        assert_int_equal(sg_key_profile_version(f->key, va), 0);
        assert_int_equal(sg_key_profile_version(back, vb), 0);
        assert_string_equal(va, vb);
        EVP_PKEY_free(back);
        free(pem);
}

static char *pem_of_public(EVP_PKEY *k) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;
        assert_non_null(b);
        assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
        long n = BIO_get_mem_data(b, &data);
        char *s = strndup(data, (size_t) n);
        BIO_free(b);
        assert_non_null(s);
        return s;
}

static void test_public_pem_rejects_p256_key(void **state) {
        (void) state;
        EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        EVP_PKEY *back = (EVP_PKEY *) 0x1;
        assert_non_null(p256);
        char *pem = pem_of_public(p256);
        assert_int_equal(sg_key_from_public_pem(pem, &back), -EINVAL);
        assert_ptr_equal(back, (EVP_PKEY *) 0x1);
        free(pem);
        EVP_PKEY_free(p256);
}

static void test_public_pem_rejects_ed25519_key(void **state) {
        (void) state;
        EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        EVP_PKEY *back = NULL;
        assert_non_null(ed);
        char *pem = pem_of_public(ed);
        assert_int_equal(sg_key_from_public_pem(pem, &back), -EINVAL);
        assert_null(back);
        free(pem);
        EVP_PKEY_free(ed);
}

static void test_public_pem_rejects_garbage_and_private_pem(void **state) {
        fixture *f = *state;
        EVP_PKEY *back = NULL;
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;

        assert_int_equal(sg_key_from_public_pem("", &back), -EINVAL);
        assert_int_equal(sg_key_from_public_pem("not a key", &back), -EINVAL);
        assert_int_equal(sg_key_from_public_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &back),
                         -EINVAL);
        assert_non_null(b);
        assert_int_equal(PEM_write_bio_PrivateKey(b, f->key, NULL, NULL, 0, NULL, NULL), 1);
        long n = BIO_get_mem_data(b, &data);
        char *priv = strndup(data, (size_t) n);
        assert_int_equal(sg_key_from_public_pem(priv, &back), -EINVAL);
        assert_null(back);
        free(priv);
        BIO_free(b);
}

static void test_write_private_creates_mode_0600_pkcs8_file(void **state) {
        fixture *f = *state;
        struct stat st;
        char buf[64] = "";

        mode_t old = umask(0);
        int r = sg_key_write_private(f->dirfd, "signer.pem", f->key);
        umask(old);
        assert_int_equal(r, 0);
        assert_int_equal(fstatat(f->dirfd, "signer.pem", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        int fd = openat(f->dirfd, "signer.pem", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
        close(fd);
        assert_non_null(strstr(buf, "-----BEGIN PRIVATE KEY-----"));
}

static void test_write_private_refuses_to_replace_existing_file(void **state) {
        /* The header promises O_EXCL: a second key must never silently replace the first. */
        fixture *f = *state;

        assert_int_equal(sg_key_write_private(f->dirfd, "signer.pem", f->key), 0);
        assert_int_equal(sg_key_write_private(f->dirfd, "signer.pem", other_key(f)), -EEXIST);
        assert_int_equal(sg_key_read_private(f->dirfd, "signer.pem", &f->back), 0);
        assert_int_equal(EVP_PKEY_eq(f->key, f->back), 1);
}

static void test_write_private_refuses_existing_symlink(void **state) {
        fixture *f = *state;
        struct stat st;

        assert_int_equal(symlinkat("elsewhere.pem", f->dirfd, "signer.pem"), 0);
        assert_int_equal(sg_key_write_private(f->dirfd, "signer.pem", f->key), -EEXIST);
        assert_int_equal(fstatat(f->dirfd, "signer.pem", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISLNK(st.st_mode));
        assert_int_equal(fstatat(f->dirfd, "elsewhere.pem", &st, AT_SYMLINK_NOFOLLOW), -1);
}

static void test_read_private_round_trips_key(void **state) {
        fixture *f = *state;
        EVP_PKEY *back = NULL;

        assert_int_equal(sg_key_write_private(f->dirfd, "signer.pem", f->key), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "signer.pem", &back), 0);
        assert_int_equal(EVP_PKEY_eq(f->key, back), 1);
        /* It is the private half: it signs what the original's public half verifies. */
        sg_statement st = sample_statement(f->key);
        char *block = NULL;
        size_t len = 0;
        sg_envelope env;
        sg_error err = {0};
        assert_int_equal(sg_envelope_build(&st, back, &block, &len), 0);
        assert_int_equal(sg_envelope_parse(block, len, &env, &err), 0);
        assert_int_equal(sg_envelope_verify(&env, f->key), 0);
        sg_envelope_done(&env);
        free(block);
        EVP_PKEY_free(back);
}

static void test_read_private_refuses_group_or_world_access(void **state) {
        fixture *f = *state;
        EVP_PKEY *back = NULL;

        assert_int_equal(sg_key_write_private(f->dirfd, "signer.pem", f->key), 0);
        assert_int_equal(fchmodat(f->dirfd, "signer.pem", 0644, 0), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "signer.pem", &back), -EPERM);
        assert_int_equal(fchmodat(f->dirfd, "signer.pem", 0640, 0), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "signer.pem", &back), -EPERM);
        assert_int_equal(fchmodat(f->dirfd, "signer.pem", 0602, 0), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "signer.pem", &back), -EPERM);
        assert_null(back);
        assert_int_equal(fchmodat(f->dirfd, "signer.pem", 0400, 0), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "signer.pem", &back), 0);
        EVP_PKEY_free(back);
}

static void test_read_private_refuses_symlink_and_p256_key(void **state) {
        fixture *f = *state;
        EVP_PKEY *back = NULL;
        EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

        assert_int_equal(sg_key_write_private(f->dirfd, "signer.pem", f->key), 0);
        assert_int_equal(symlinkat("signer.pem", f->dirfd, "link.pem"), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "link.pem", &back), -ELOOP);
        assert_non_null(p256);
        assert_int_equal(sg_key_write_private(f->dirfd, "p256.pem", p256), 0);
        assert_int_equal(sg_key_read_private(f->dirfd, "p256.pem", &back), -EINVAL);
        assert_null(back);
        EVP_PKEY_free(p256);
}

/* ---- envelopes ---- */

static void test_envelope_round_trip_preserves_every_field(void **state) {
        fixture *f = *state;
        sg_statement st = sample_statement(f->key);
        char *block = NULL;
        size_t len = 0;
        sg_envelope env;
        sg_error err = {0};

        assert_int_equal(sg_envelope_build(&st, f->key, &block, &len), 0);
        assert_int_equal(strlen(block), len);
        assert_memory_equal(block, SG_SIGNATURE_MAGIC, strlen(SG_SIGNATURE_MAGIC));
        assert_true(len <= SG_SIGNATURE_MAX);
        assert_int_equal(sg_envelope_parse(block, len, &env, &err), 0);
        assert_string_equal(env.st.subject_name, st.subject_name);
        assert_memory_equal(env.st.digest, st.digest, SG_DIGEST_LEN);
        assert_string_equal(env.st.platform_id, st.platform_id);
        assert_string_equal(env.st.profile_name, st.profile_name);
        assert_string_equal(env.st.profile_version, st.profile_version);
        assert_string_equal(env.st.job_id, st.job_id);
        assert_int_equal(env.st.signed_at, st.signed_at);
        assert_int_equal(env.st.expires_at, st.expires_at);
        assert_int_equal(env.st.size, st.size);
        char keyid[SG_KEYID_MAX + 1];
        snprintf(keyid, sizeof(keyid), "%s/%s", st.profile_name, st.profile_version);
        assert_string_equal(env.keyid, keyid);
        sg_envelope_done(&env);
        free(block);
}

static void test_envelope_matches_design_wire_format(void **state) {
        fixture *f = *state;
        sg_statement st = sample_statement(f->key);
        char *block = NULL;
        size_t len = 0;
        sg_envelope env;
        sg_error err = {0};

        assert_int_equal(sg_envelope_build(&st, f->key, &block, &len), 0);
        /* No whitespace, no trailing newline after the magic line. */
        const char *json = block + strlen(SG_SIGNATURE_MAGIC);
        assert_null(strpbrk(json, " \n\r\t"));
        cJSON *j = cJSON_Parse(json);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "payloadType")->valuestring, SG_PAYLOAD_TYPE);
        const char *p64 = cJSON_GetObjectItemCaseSensitive(j, "payload")->valuestring;
        const cJSON *sig0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "signatures"), 0);
        const char *s64 = cJSON_GetObjectItemCaseSensitive(sig0, "sig")->valuestring;

        /* The payload is the statement of DESIGN §4. */
        size_t plen64 = strlen(p64);
        unsigned char *payload = malloc(plen64);
        int n = EVP_DecodeBlock(payload, (const unsigned char *) p64, (int) plen64);
        assert_true(n > 0);
        n -= (p64[plen64 - 1] == '=') + (p64[plen64 - 2] == '=');
        cJSON *stj = cJSON_ParseWithLength((const char *) payload, (size_t) n);
        assert_non_null(stj);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(stj, "_type")->valuestring, SG_STATEMENT_TYPE);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(stj, "predicateType")->valuestring, SG_PREDICATE_TYPE);
        const cJSON *pred = cJSON_GetObjectItemCaseSensitive(stj, "predicate");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(pred, "signedAt")->valuestring, "2024-02-29T12:34:56Z");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(pred, "signatureExpiresAt")->valuestring,
                            "2025-02-28T12:34:56Z");
        assert_true(cJSON_GetObjectItemCaseSensitive(pred, "size")->valuedouble == 123456789.0);

        /* The signature is ECDSA P-384/SHA-384 over the PAE, checked here without the library. */
        char head[128];
        int h = snprintf(head, sizeof(head), "DSSEv1 %zu %s %d ", strlen(SG_PAYLOAD_TYPE), SG_PAYLOAD_TYPE, n);
        unsigned char *pae = malloc((size_t) h + (size_t) n);
        memcpy(pae, head, (size_t) h);
        memcpy(pae + h, payload, (size_t) n);
        unsigned char sig[256];
        size_t slen64 = strlen(s64);
        int sl = EVP_DecodeBlock(sig, (const unsigned char *) s64, (int) slen64);
        sl -= (s64[slen64 - 1] == '=') + (s64[slen64 - 2] == '=');
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, f->key), 1);
        assert_int_equal(EVP_DigestVerify(ctx, sig, (size_t) sl, pae, (size_t) h + (size_t) n), 1);
        EVP_MD_CTX_free(ctx);

        /* And the parsed envelope carries that very PAE. */
        assert_int_equal(sg_envelope_parse(block, len, &env, &err), 0);
        assert_int_equal(env.pae_len, (size_t) h + (size_t) n);
        assert_memory_equal(env.pae, pae, env.pae_len);
        sg_envelope_done(&env);

        free(pae);
        free(payload);
        cJSON_Delete(stj);
        cJSON_Delete(j);
        free(block);
}

static void test_envelope_verifies_with_signing_key_only(void **state) {
        fixture *f = *state;
        sg_statement st = sample_statement(f->key);
        EVP_PKEY *pub = NULL;
        char *block = NULL, *pem = NULL;
        size_t len = 0;
        sg_envelope env;
        sg_error err = {0};

        assert_int_equal(sg_envelope_build(&st, f->key, &block, &len), 0);
        assert_int_equal(sg_envelope_parse(block, len, &env, &err), 0);
        assert_int_equal(sg_key_public_pem(f->key, &pem), 0);
        assert_int_equal(sg_key_from_public_pem(pem, &pub), 0);
        assert_int_equal(sg_envelope_verify(&env, pub), 0);
        assert_int_equal(sg_envelope_verify(&env, other_key(f)), -EBADMSG);
        /* A flipped bit in the signed bytes does not verify either. */
        env.pae[env.pae_len - 2] ^= 1;
        assert_int_equal(sg_envelope_verify(&env, pub), -EBADMSG);
        env.pae[env.pae_len - 2] ^= 1;
        env.sig[env.sig_len - 1] ^= 1;
        assert_int_equal(sg_envelope_verify(&env, pub), -EBADMSG);
        sg_envelope_done(&env);
        EVP_PKEY_free(pub);
        free(pem);
        free(block);
}

static void test_envelope_matches_fails_on_other_digest_size_or_platform(void **state) {
        fixture *f = *state;
        sg_statement st = sample_statement(f->key);
        unsigned char other[SG_DIGEST_LEN];
        char *block = NULL;
        size_t len = 0;
        sg_envelope env;
        sg_error err = {0};

        assert_int_equal(sg_envelope_build(&st, f->key, &block, &len), 0);
        assert_int_equal(sg_envelope_parse(block, len, &env, &err), 0);
        assert_int_equal(sg_envelope_matches(&env, st.digest, st.size, SG_PLATFORM_LAMBDA, &err), 0);

        memcpy(other, st.digest, sizeof(other));
        other[SG_DIGEST_LEN - 1] ^= 1;
        err.reason = SG_REASON_NONE;
        assert_int_equal(sg_envelope_matches(&env, other, st.size, SG_PLATFORM_LAMBDA, &err), -EINVAL);
        assert_int_equal(err.reason, SG_REASON_INTEGRITY);
        err.reason = SG_REASON_NONE;
        assert_int_equal(sg_envelope_matches(&env, st.digest, st.size + 1, SG_PLATFORM_LAMBDA, &err), -EINVAL);
        assert_int_equal(err.reason, SG_REASON_INTEGRITY);
        err.reason = SG_REASON_NONE;
        assert_int_equal(sg_envelope_matches(&env, st.digest, st.size, SG_PLATFORM_BLOB, &err), -EINVAL);
        assert_int_equal(err.reason, SG_REASON_INTEGRITY);
        assert_contains(err.msg, SG_PLATFORM_BLOB);
        sg_envelope_done(&env);
        free(block);
}

/* ---- hostile signature blocks, written by hand ---- */

static char *b64(const char *s, size_t n) {
        char *out = malloc(4 * ((n + 2) / 3) + 1);
        assert_non_null(out);
        EVP_EncodeBlock((unsigned char *) out, (const unsigned char *) s, (int) n);
        return out;
}

/* A statement as JSON text; each field can be replaced (NULL keeps the good value). */
typedef struct {
        const char *type, *predicate_type, *name, *version, *size, *platform, *extra_top;
} stmt_opts;

static char *statement_text(const stmt_opts *o) {
        char *s = NULL;
        assert_true(asprintf(&s,
                             "{\"_type\":\"%s\",\"subject\":[{\"name\":\"function.zip\",\"digest\":{\"sha384\":"
                             "\"%s\"}}],\"predicateType\":\"%s\",\"predicate\":{\"platformId\":\"%s\","
                             "\"profileName\":\"%s\",\"profileVersion\":\"%s\",\"jobId\":"
                             "\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"signedAt\":\"2024-02-29T12:34:56Z\","
                             "\"signatureExpiresAt\":\"2025-02-28T12:34:56Z\",\"size\":%s}%s}",
                             o->type ? o->type : SG_STATEMENT_TYPE,
                             "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                             "202122232425262728292a2b2c2d2e2f",
                             o->predicate_type ? o->predicate_type : SG_PREDICATE_TYPE,
                             o->platform ? o->platform : SG_PLATFORM_LAMBDA, o->name ? o->name : "my_profile",
                             o->version ? o->version : "abcdefgh23", o->size ? o->size : "4096",
                             o->extra_top ? o->extra_top : "") > 0);
        return s;
}

/* magic + {"payloadType":...,"payload":p64,"signatures":[{"keyid":keyid,"sig":"MEUC"}]} */
static char *block_text(const char *p64, const char *keyid) {
        char *s = NULL;
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"" SG_PAYLOAD_TYPE
                                                "\",\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"%s\",\"sig\":"
                                                "\"MEUCIQ==\"}]}",
                             p64, keyid ? keyid : "my_profile/abcdefgh23") > 0);
        return s;
}

static char *block_for(const stmt_opts *o, const char *keyid) {
        char *st = statement_text(o);
        char *p64 = b64(st, strlen(st));
        char *blk = block_text(p64, keyid);
        free(st);
        free(p64);
        return blk;
}

static void assert_parse_ok(const char *block, size_t len) {
        sg_envelope env;
        sg_error err = {0};
        int r = sg_envelope_parse(block, len, &env, &err);
        if (r != 0)
                fail_msg("parse = %d (%s), want 0 for: %s", r, err.msg, block);
        sg_envelope_done(&env);
}

/* Fails unless block is rejected with INTEGRITY (and a message containing want, if given). */
static void assert_parse_rejects(const char *block, size_t len, const char *want) {
        sg_envelope env;
        memset(&env, 0x5a, sizeof(env));
        sg_error err = {0};
        int r = sg_envelope_parse(block, len, &env, &err);
        if (r != -EINVAL)
                fail_msg("parse = %d, want %d for: %.*s", r, -EINVAL, (int) len, block);
        if (err.reason != SG_REASON_INTEGRITY)
                fail_msg("reason %s, want INTEGRITY (%s)", sg_reason_name(err.reason), err.msg);
        assert_true(strlen(err.msg) > 0);
        if (want)
                assert_contains(err.msg, want);
}

static void test_handwritten_good_block_parses(void **state) {
        /* The control for every rejection below: the same writer with nothing changed. */
        (void) state;
        char *blk = block_for(&(stmt_opts){0}, NULL);
        assert_parse_ok(blk, strlen(blk));
        free(blk);
}

static void test_parse_rejects_missing_magic(void **state) {
        (void) state;
        char *blk = block_for(&(stmt_opts){0}, NULL);
        const char *json = blk + strlen(SG_SIGNATURE_MAGIC);
        assert_parse_rejects(json, strlen(json), "not a signgate signature block");
        /* The magic without its newline, or with a different version. */
        char *v2 = strdup(blk);
        v2[strlen("signgate-signature-v")] = '2';
        assert_parse_rejects(v2, strlen(v2), "not a signgate signature block");
        memmove(v2, blk, strlen(SG_SIGNATURE_MAGIC) - 1);
        memmove(v2 + strlen(SG_SIGNATURE_MAGIC) - 1, json, strlen(json) + 1);
        assert_parse_rejects(v2, strlen(v2), "not a signgate signature block");
        assert_parse_rejects("", 0, "not a signgate signature block");
        free(v2);
        free(blk);
}

static void test_parse_rejects_trailing_bytes_after_json(void **state) {
        (void) state;
        char *blk = block_for(&(stmt_opts){0}, NULL);
        char *s = NULL;
        assert_true(asprintf(&s, "%s ", blk) > 0);
        assert_parse_rejects(s, strlen(s), "DSSE");
        free(s);
        assert_true(asprintf(&s, "%s{}", blk) > 0);
        assert_parse_rejects(s, strlen(s), "DSSE");
        free(s);
        assert_true(asprintf(&s, "%s\n", blk) > 0);
        assert_parse_rejects(s, strlen(s), "printable");
        free(s);
        /* A NUL inside the length handed over is a byte too. */
        size_t n = strlen(blk);
        s = malloc(n + 2);
        memcpy(s, blk, n + 1);
        s[n + 1] = 'x';
        assert_parse_rejects(s, n + 1, "printable");
        free(s);
        free(blk);
}

static void test_parse_rejects_unknown_top_level_key(void **state) {
        (void) state;
        char *st = statement_text(&(stmt_opts){0});
        char *p64 = b64(st, strlen(st));
        char *s = NULL;
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"" SG_PAYLOAD_TYPE "\",\"payload\":\"%s\","
                                                "\"signatures\":[{\"keyid\":\"my_profile/abcdefgh23\",\"sig\":\"MEUCIQ==\"}],"
                                                "\"note\":\"x\"}",
                             p64) > 0);
        assert_parse_rejects(s, strlen(s), "DSSE envelope");
        free(s);
        /* An unknown key inside the signature object or the statement. */
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"" SG_PAYLOAD_TYPE "\",\"payload\":\"%s\","
                                                "\"signatures\":[{\"keyid\":\"my_profile/abcdefgh23\",\"sig\":\"MEUCIQ==\","
                                                "\"cert\":\"x\"}]}",
                             p64) > 0);
        assert_parse_rejects(s, strlen(s), "exactly one signature");
        free(s);
        char *blk = block_for(&(stmt_opts){.extra_top = ",\"note\":1"}, NULL);
        assert_parse_rejects(blk, strlen(blk), "Statement");
        free(blk);
        free(p64);
        free(st);
}

static void test_parse_rejects_duplicate_keys(void **state) {
        (void) state;
        char *st = statement_text(&(stmt_opts){0});
        char *p64 = b64(st, strlen(st));
        char *s = NULL;
        /* Two payloads: two readers could pick different ones. */
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"" SG_PAYLOAD_TYPE "\",\"payload\":\"%s\","
                                                "\"payload\":\"%s\",\"signatures\":[{\"keyid\":\"my_profile/abcdefgh23\","
                                                "\"sig\":\"MEUCIQ==\"}]}",
                             p64, p64) > 0);
        assert_parse_rejects(s, strlen(s), "DSSE envelope");
        free(s);
        /* A duplicate in the predicate, replacing another field so the count stays right. */
        char *dup = strdup(st);
        char *at = strstr(dup, "\"jobId\"");
        assert_non_null(at);
        char *fixed = NULL;
        *at = '\0';
        assert_true(asprintf(&fixed, "%s\"size\":1,%s", dup, strchr(at + 1, ',') + 1) > 0);
        char *p2 = b64(fixed, strlen(fixed));
        char *blk = block_text(p2, NULL);
        assert_parse_rejects(blk, strlen(blk), "predicate");
        free(blk);
        free(p2);
        free(fixed);
        free(dup);
        free(p64);
        free(st);
}

static void test_parse_rejects_two_signatures(void **state) {
        (void) state;
        char *st = statement_text(&(stmt_opts){0});
        char *p64 = b64(st, strlen(st));
        char *s = NULL;
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"" SG_PAYLOAD_TYPE "\",\"payload\":\"%s\","
                                                "\"signatures\":[{\"keyid\":\"my_profile/abcdefgh23\",\"sig\":\"MEUCIQ==\"},"
                                                "{\"keyid\":\"my_profile/abcdefgh23\",\"sig\":\"MEUCIQ==\"}]}",
                             p64) > 0);
        assert_parse_rejects(s, strlen(s), "exactly one signature");
        free(s);
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"" SG_PAYLOAD_TYPE "\",\"payload\":\"%s\","
                                                "\"signatures\":[]}",
                             p64) > 0);
        assert_parse_rejects(s, strlen(s), "exactly one signature");
        free(s);
        free(p64);
        free(st);
}

static void test_parse_rejects_wrong_payload_type(void **state) {
        (void) state;
        char *st = statement_text(&(stmt_opts){0});
        char *p64 = b64(st, strlen(st));
        char *s = NULL;
        assert_true(asprintf(&s,
                             SG_SIGNATURE_MAGIC "{\"payloadType\":\"application/json\",\"payload\":\"%s\","
                                                "\"signatures\":[{\"keyid\":\"my_profile/abcdefgh23\",\"sig\":\"MEUCIQ==\"}]}",
                             p64) > 0);
        assert_parse_rejects(s, strlen(s), "payloadType");
        free(s);
        free(p64);
        free(st);
}

static void test_parse_rejects_non_base64_payload(void **state) {
        (void) state;
        char *blk = block_text("not base64!", NULL);
        assert_parse_rejects(blk, strlen(blk), "base64");
        free(blk);
        /* Base64url is another alphabet. */
        blk = block_text("eyJfdHlwZSI6-_==", NULL);
        assert_parse_rejects(blk, strlen(blk), "base64");
        free(blk);
}

static void test_parse_rejects_base64_with_nonzero_padding_bits(void **state) {
        (void) state;
        /* Find a statement whose base64 ends in "==" (length 1 mod 3), then set bits under the
         * padding: the text still decodes to the same bytes in a lax decoder. */
        char *st = NULL;
        for (int pad = 0; pad < 3; pad++) {
                free(st);
                char name[16];
                snprintf(name, sizeof(name), "my_profile%.*s", pad, "xxx");
                st = statement_text(&(stmt_opts){.name = name});
                if (strlen(st) % 3 == 1)
                        break;
        }
        assert_int_equal(strlen(st) % 3, 1);
        char *p64 = b64(st, strlen(st));
        size_t n = strlen(p64);
        assert_string_equal(p64 + n - 2, "==");
        const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        int v = (int) (strchr(alpha, p64[n - 3]) - alpha);
        assert_int_equal(v & 0x0f, 0);
        p64[n - 3] = alpha[v | 1];
        char *blk = block_text(p64, NULL);
        assert_parse_rejects(blk, strlen(blk), "base64");
        free(blk);
        free(p64);
        free(st);
}

static void test_parse_rejects_payload_that_is_not_a_statement(void **state) {
        (void) state;
        static const char *const payloads[] = {"hello", "{}", "[]", "null", "{\"_type\":\"" SG_STATEMENT_TYPE "\"}"};
        for (size_t i = 0; i < SG_ELEMENTSOF(payloads); i++) {
                char *p64 = b64(payloads[i], strlen(payloads[i]));
                char *blk = block_text(p64, NULL);
                assert_parse_rejects(blk, strlen(blk), "Statement");
                free(blk);
                free(p64);
        }
        /* A statement with bytes after it. */
        char *st = statement_text(&(stmt_opts){0});
        char *more = NULL;
        assert_true(asprintf(&more, "%s ", st) > 0);
        char *p64 = b64(more, strlen(more));
        char *blk = block_text(p64, NULL);
        assert_parse_rejects(blk, strlen(blk), "Statement");
        free(blk);
        free(p64);
        free(more);
        free(st);
}

static void test_parse_rejects_wrong_statement_or_predicate_type(void **state) {
        (void) state;
        char *blk = block_for(&(stmt_opts){.type = "https://in-toto.io/Statement/v0.1"}, NULL);
        assert_parse_rejects(blk, strlen(blk), "type");
        free(blk);
        blk = block_for(&(stmt_opts){.predicate_type = "https://slsa.dev/provenance/v1"}, NULL);
        assert_parse_rejects(blk, strlen(blk), "type");
        free(blk);
        blk = block_for(&(stmt_opts){.platform = "AWSLambda-SHA384-ECDSA-v2"}, NULL);
        assert_parse_rejects(blk, strlen(blk), "platform");
        free(blk);
}

static void test_parse_rejects_keyid_not_naming_signed_profile(void **state) {
        (void) state;
        static const char *const keyids[] = {"other_profile/abcdefgh23", "my_profile/abcdefgh24", "my_profile",
                                             "abcdefgh23", "my_profile/abcdefgh23/x", ""};
        for (size_t i = 0; i < SG_ELEMENTSOF(keyids); i++) {
                char *blk = block_for(&(stmt_opts){0}, keyids[i]);
                assert_parse_rejects(blk, strlen(blk), "keyid");
                free(blk);
        }
}

static void test_parse_rejects_non_integer_size(void **state) {
        (void) state;
        static const char *const sizes[] = {"4096.5", "\"4096\"", "-1", "1e300", "null", "true"};
        for (size_t i = 0; i < SG_ELEMENTSOF(sizes); i++) {
                char *blk = block_for(&(stmt_opts){.size = sizes[i]}, NULL);
                assert_parse_rejects(blk, strlen(blk), "size");
                free(blk);
        }
}

static void test_parse_rejects_non_printable_byte(void **state) {
        (void) state;
        char *blk = block_for(&(stmt_opts){0}, NULL);
        char *at = strstr(blk, "my_profile/");
        assert_non_null(at);
        static const char bytes[] = {'\x01', '\x7f', '\x80', '\xff', '\t'};
        for (size_t i = 0; i < sizeof(bytes); i++) {
                char keep = at[2];
                at[2] = bytes[i];
                assert_parse_rejects(blk, strlen(blk), "printable");
                at[2] = keep;
        }
        free(blk);
}

/* ---- signing packages and blobs ---- */

static void test_sign_package_embeds_verifiable_block_with_unsigned_digest(void **state) {
        fixture *f = *state;
        sg_test_buf unsigned_zip = {0};
        int in = zip_file(f, "function.zip", good_entries, SG_ELEMENTSOF(good_entries), NULL, &unsigned_zip);
        int out = empty_out(f, "signed.zip");
        sg_statement st = sample_statement(f->key);
        sg_limits lim;
        sg_error err = {0};
        unsigned char whole[SG_DIGEST_LEN];

        sg_limits_default(&lim);
        memset(st.digest, 0, sizeof(st.digest));
        st.size = 0;
        int r = sg_sign_package(in, out, &lim, &st, f->key, &err);
        if (r != 0)
                fail_msg("sign = %d (%s)", r, err.msg);

        /* `sha384sum function.zip` of the unsigned package is the signed digest. */
        sha384(unsigned_zip.p, unsigned_zip.len, whole);
        assert_memory_equal(st.digest, whole, SG_DIGEST_LEN);
        assert_int_equal(st.size, unsigned_zip.len);

        sg_package *before = NULL, *after = NULL;
        assert_int_equal(sg_package_inspect(in, &lim, NULL, &before, &err), 0);
        assert_int_equal(sg_package_inspect(out, &lim, NULL, &after, &err), 0);
        assert_memory_equal(after->digest, before->digest, SG_DIGEST_LEN);
        assert_int_equal(after->canonical_size, before->canonical_size);
        assert_int_equal(after->n_entries, SG_ELEMENTSOF(good_entries));
        assert_true(after->comment_len > 0);
        assert_int_equal(after->file_size, unsigned_zip.len + after->comment_len);

        /* Every byte before the comment length is the unsigned archive's. */
        unsigned char *head = malloc(unsigned_zip.len);
        assert_non_null(head);
        assert_int_equal(pread(out, head, unsigned_zip.len - 2, 0), (ssize_t) unsigned_zip.len - 2);
        assert_memory_equal(head, unsigned_zip.p, unsigned_zip.len - 2);
        free(head);

        sg_envelope env;
        assert_int_equal(sg_envelope_parse(after->comment, after->comment_len, &env, &err), 0);
        assert_int_equal(sg_envelope_verify(&env, f->key), 0);
        assert_int_equal(sg_envelope_matches(&env, after->digest, after->canonical_size, SG_PLATFORM_LAMBDA, &err), 0);
        assert_string_equal(env.st.job_id, st.job_id);
        assert_string_equal(env.st.subject_name, "function.zip");
        sg_envelope_done(&env);

        sg_package_free(before);
        sg_package_free(after);
        sg_test_buf_free(&unsigned_zip);
        close(in);
        close(out);
}

static void check_sign_refused(fixture *f, int in, sg_reason reason, const char *why) {
        int out = empty_out(f, "refused.zip");
        sg_statement st = sample_statement(f->key);
        sg_limits lim;
        sg_error err = {0};

        sg_limits_default(&lim);
        int r = sg_sign_package(in, out, &lim, &st, f->key, &err);
        if (r != -EINVAL)
                fail_msg("sign = %d, want %d (refusal: %s)", r, -EINVAL, why);
        if (err.reason != reason)
                fail_msg("reason %s, want %s (%s)", sg_reason_name(err.reason), sg_reason_name(reason), err.msg);
        assert_contains(err.msg, why);
        close(out);
}

static void test_sign_package_refuses_archive_with_comment(void **state) {
        fixture *f = *state;
        int in = zip_file(f, "c.zip", good_entries, SG_ELEMENTSOF(good_entries), "built by zip 3.0", NULL);
        check_sign_refused(f, in, SG_REASON_MALFORMED, "comment");
        close(in);
}

static void test_sign_package_refuses_already_signed_archive(void **state) {
        fixture *f = *state;
        int in = zip_file(f, "function.zip", good_entries, SG_ELEMENTSOF(good_entries), NULL, NULL);
        int out = empty_out(f, "signed.zip");
        sg_statement st = sample_statement(f->key);
        sg_limits lim;
        sg_error err = {0};

        sg_limits_default(&lim);
        assert_int_equal(sg_sign_package(in, out, &lim, &st, f->key, &err), 0);
        check_sign_refused(f, out, SG_REASON_MALFORMED, "already signed");
        close(in);
        close(out);
}

static void test_sign_package_refuses_empty_archive(void **state) {
        fixture *f = *state;
        int in = zip_file(f, "empty.zip", NULL, 0, NULL, NULL);
        check_sign_refused(f, in, SG_REASON_MALFORMED, "empty");
        close(in);
}

static void test_sign_package_refuses_non_zip(void **state) {
        fixture *f = *state;
        static const char text[] = "#!/bin/sh\necho this is a shell script, not a ZIP archive\n";
        int in = sg_test_write_file(f->dirfd, "script.sh", text, sizeof(text) - 1);
        check_sign_refused(f, in, SG_REASON_MALFORMED, "not a ZIP");
        close(in);
}

static void test_sign_package_refuses_unsafe_archive(void **state) {
        fixture *f = *state;
        static const zentry evil[] = {{.name = "index.js", .data = "1"}, {.name = "../escape.js", .data = "2"}};
        int in = zip_file(f, "evil.zip", evil, SG_ELEMENTSOF(evil), NULL, NULL);
        check_sign_refused(f, in, SG_REASON_UNSAFE_CONTENT, "../escape.js");
        close(in);

        static const zentry link[] = {{.name = "etc", .data = "/etc", .mode = 0120777}};
        in = zip_file(f, "link.zip", link, SG_ELEMENTSOF(link), NULL, NULL);
        check_sign_refused(f, in, SG_REASON_UNSAFE_CONTENT, "etc");
        close(in);
}

static void test_sign_blob_digest_is_sha384_of_file(void **state) {
        fixture *f = *state;
        static const char content[] = "any bytes at all\n\x00\x01\x02 including NULs";
        unsigned char want[SG_DIGEST_LEN];
        sg_statement st = sample_statement(f->key);
        char *block = NULL;
        size_t len = 0;
        sg_envelope env;
        sg_error err = {0};

        snprintf(st.platform_id, sizeof(st.platform_id), "%s", SG_PLATFORM_BLOB);
        snprintf(st.subject_name, sizeof(st.subject_name), "artifact.bin");
        int fd = sg_test_write_file(f->dirfd, "artifact.bin", content, sizeof(content) - 1);
        assert_int_equal(sg_sign_blob(fd, &st, f->key, &block, &len), 0);
        sha384(content, sizeof(content) - 1, want);
        assert_memory_equal(st.digest, want, SG_DIGEST_LEN);
        assert_int_equal(st.size, sizeof(content) - 1);
        assert_int_equal(sg_envelope_parse(block, len, &env, &err), 0);
        assert_int_equal(sg_envelope_verify(&env, f->key), 0);
        assert_int_equal(sg_envelope_matches(&env, want, sizeof(content) - 1, SG_PLATFORM_BLOB, &err), 0);
        assert_string_equal(env.st.subject_name, "artifact.bin");
        sg_envelope_done(&env);
        free(block);
        close(fd);
}

static void test_platform_canonical_maps_alias(void **state) {
        (void) state;
        assert_string_equal(sg_platform_canonical("AWSLambda-SHA384-ECDSA"), SG_PLATFORM_LAMBDA);
        assert_string_equal(sg_platform_canonical(SG_PLATFORM_LAMBDA), SG_PLATFORM_LAMBDA);
        assert_string_equal(sg_platform_canonical(SG_PLATFORM_BLOB), SG_PLATFORM_BLOB);
        assert_null(sg_platform_canonical("lambda-sha384-ecdsa"));
        assert_null(sg_platform_canonical(NULL));
}

int main(int argc, char **argv) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_key_generate_gives_p384_ec_key),
                T(test_profile_version_is_base32_of_sha256_of_spki),
                T(test_profile_version_differs_between_keys),
                T(test_public_pem_round_trips_to_equal_key),
                T(test_public_pem_rejects_p256_key),
                T(test_public_pem_rejects_ed25519_key),
                T(test_public_pem_rejects_garbage_and_private_pem),
                T(test_write_private_creates_mode_0600_pkcs8_file),
                T(test_write_private_refuses_to_replace_existing_file),
                T(test_write_private_refuses_existing_symlink),
                T(test_read_private_round_trips_key),
                T(test_read_private_refuses_group_or_world_access),
                T(test_read_private_refuses_symlink_and_p256_key),
                T(test_envelope_round_trip_preserves_every_field),
                T(test_envelope_matches_design_wire_format),
                T(test_envelope_verifies_with_signing_key_only),
                T(test_envelope_matches_fails_on_other_digest_size_or_platform),
                T(test_handwritten_good_block_parses),
                T(test_parse_rejects_missing_magic),
                T(test_parse_rejects_trailing_bytes_after_json),
                T(test_parse_rejects_unknown_top_level_key),
                T(test_parse_rejects_duplicate_keys),
                T(test_parse_rejects_two_signatures),
                T(test_parse_rejects_wrong_payload_type),
                T(test_parse_rejects_non_base64_payload),
                T(test_parse_rejects_base64_with_nonzero_padding_bits),
                T(test_parse_rejects_payload_that_is_not_a_statement),
                T(test_parse_rejects_wrong_statement_or_predicate_type),
                T(test_parse_rejects_keyid_not_naming_signed_profile),
                T(test_parse_rejects_non_integer_size),
                T(test_parse_rejects_non_printable_byte),
                T(test_sign_package_embeds_verifiable_block_with_unsigned_digest),
                T(test_sign_package_refuses_archive_with_comment),
                T(test_sign_package_refuses_already_signed_archive),
                T(test_sign_package_refuses_empty_archive),
                T(test_sign_package_refuses_non_zip),
                T(test_sign_package_refuses_unsafe_archive),
                T(test_sign_blob_digest_is_sha384_of_file),
                T(test_platform_canonical_maps_alias),
        };
#undef T
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
