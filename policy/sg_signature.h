/* sg_signature.h — keys, the signature block and signing (DESIGN §3, §4).
 *
 * Signature block (the EOCD comment of a Lambda-SHA384-ECDSA package, or a Blob's FILE.sig):
 *   SG_SIGNATURE_MAGIC
 *   {"payloadType":"application/vnd.in-toto+json","payload":"<base64>",
 *    "signatures":[{"keyid":"NAME/VERSION","sig":"<base64 DER ECDSA>"}]}
 * No whitespace, no trailing newline; at most SG_SIGNATURE_MAX bytes.
 * payload = in-toto Statement v1 (see sg_statement), sig = ECDSA P-384 over SHA-384 of
 *   PAE = "DSSEv1" SP len(type) SP type SP len(payload) SP payload   (lengths in decimal).
 * Profile version = first 10 chars of base32-lower(SHA-256(DER SubjectPublicKeyInfo)).
 */
#ifndef SG_SIGNATURE_H
#define SG_SIGNATURE_H

#include <openssl/evp.h>

#include "sg_common.h"
#include "sg_package.h"

#define SG_SIGNATURE_MAGIC "signgate-signature-v1\n"
#define SG_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define SG_STATEMENT_TYPE "https://in-toto.io/Statement/v1"
#define SG_PREDICATE_TYPE "urn:signgate:predicate:code-signature:v1"
#define SG_PLATFORM_LAMBDA "Lambda-SHA384-ECDSA"
#define SG_PLATFORM_LAMBDA_ALIAS "AWSLambda-SHA384-ECDSA"
#define SG_PLATFORM_BLOB "Blob-SHA384-ECDSA"
/* A comment is at most 65,535 bytes; an honest block is under 2 KiB. */
#define SG_SIGNATURE_MAX 65535u
#define SG_SUBJECT_NAME_MAX 255u
#define SG_KEYID_MAX (64 + 1 + 10)

/* Returns the canonical platform id for an id or alias, or NULL if unknown. */
const char *sg_platform_canonical(const char *id);

/* What a signature claims: the in-toto statement's subject and predicate. */
typedef struct {
        char subject_name[SG_SUBJECT_NAME_MAX + 1];
        unsigned char digest[SG_DIGEST_LEN];
        char platform_id[32];
        char profile_name[65];
        char profile_version[11];
        char job_id[37];
        int64_t signed_at;
        int64_t expires_at;
        uint64_t size; /* canonical byte count */
} sg_statement;

/* A parsed signature block. pae and sig are owned; release with sg_envelope_done(). */
typedef struct {
        sg_statement st;
        char keyid[SG_KEYID_MAX + 1];
        unsigned char *pae;
        size_t pae_len;
        unsigned char *sig;
        size_t sig_len;
} sg_envelope;

/* Parses a signature block (magic line included). -EINVAL with err->reason INTEGRITY and the
 * problem for anything that is not exactly the format above: unknown or missing fields,
 * wrong types, bad base64, a keyid that is not the payload's NAME/VERSION. It checks the
 * shape only; sg_envelope_verify() checks the signature and sg_envelope_matches() the digest. */
int sg_envelope_parse(const char *block, size_t len, sg_envelope *ret, sg_error *err);
void sg_envelope_done(sg_envelope *env);

/* 0 when the signature verifies with pub, -EBADMSG when it does not. */
int sg_envelope_verify(const sg_envelope *env, EVP_PKEY *pub);

/* 0 when the statement's digest and size are those given and its platform is platform_id,
 * else -EINVAL with an INTEGRITY sentence. */
int sg_envelope_matches(const sg_envelope *env, const unsigned char digest[SG_DIGEST_LEN], uint64_t size,
                        const char *platform_id, sg_error *err);

/* Builds the signature block (magic line included) for st, signed with key. */
int sg_envelope_build(const sg_statement *st, EVP_PKEY *key, char **ret, size_t *ret_len);

/* Keys: ECDSA P-384 only. */
int sg_key_generate(EVP_PKEY **ret);
int sg_key_profile_version(EVP_PKEY *key, char ret[11]);
/* PEM SubjectPublicKeyInfo, malloc'd. */
int sg_key_public_pem(EVP_PKEY *key, char **ret);
/* Parses PEM SPKI; -EINVAL unless it is an EC P-384 public key. */
int sg_key_from_public_pem(const char *pem, EVP_PKEY **ret);
/* Writes the private key as unencrypted PEM PKCS#8 to dirfd/name, created O_EXCL, mode 0600. */
int sg_key_write_private(int dirfd, const char *name, EVP_PKEY *key);
/* Reads a private key written by sg_key_write_private(); -EPERM if the file is readable or
 * writable by group or others, -EINVAL if it is not a P-384 key. */
int sg_key_read_private(int dirfd, const char *name, EVP_PKEY **ret);

/* Signs the unsigned archive in_fd into out_fd (an empty file): the archive's bytes with the
 * signature block as its comment. The statement's digest and size come from the archive; the
 * caller fills the rest. Refuses (-EINVAL, err: MALFORMED, LIMIT_EXCEEDED or UNSAFE_CONTENT
 * with the reason; or INTEGRITY-free MALFORMED for "already signed" / "has a comment" /
 * "no entries") what DESIGN §4 says signing refuses. */
int sg_sign_package(int in_fd, int out_fd, const sg_limits *limits, sg_statement *st, EVP_PKEY *key,
                    sg_error *err);

/* Signs any file: fills st's digest and size from in_fd and returns the block for FILE.sig. */
int sg_sign_blob(int in_fd, sg_statement *st, EVP_PKEY *key, char **ret, size_t *ret_len);

#endif
