/* sg_store.h — the gate's policy store (DESIGN §7): signing profiles, code signing configs,
 * functions and revocations, one JSON document per file, plus the first-seen log.
 *
 * Layout under the store directory:
 *   signing-profiles/NAME@VERSION.json   public profile document
 *   code-signing-configs/ID.json         code signing config
 *   functions/F.json                     function and its binding
 *   revocations/ID.json                  a profile-version or a signature revocation
 * Files whose names start with '.' or end in ".tmp" are writers' temp files and are skipped.
 * Loading validates every document and the references between them; one bad file fails the
 * whole load (the daemon then keeps its previous store) with an error naming file and problem.
 * Writes are atomic (sg_write_file_atomic). */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sg_common.h"
#include "sg_package.h"

#define SG_STORE_DOC_MAX (1024 * 1024)
#define SG_CSC_MAX_PUBLISHERS 20
#define SG_PROFILE_ARN_MAX (64 + 1 + 10) /* NAME/VERSION */
#define SG_DESCRIPTION_MAX 256

typedef enum { SG_POLICY_ENFORCE, SG_POLICY_WARN } sg_untrusted_policy;
const char *sg_untrusted_policy_name(sg_untrusted_policy p);
int sg_untrusted_policy_from_name(const char *s, sg_untrusted_policy *ret);

typedef struct {
        char name[65];
        char version[11];
        char platform_id[32];
        uint32_t validity_value;
        sg_period_unit validity_unit;
        char status[12];     /* "Active" (default), "Canceled" (rotated out: signs no more) or
                              * "Revoked"; informational at the gate, where revocations/ decides */
        int64_t created_at;
        EVP_PKEY *key;       /* public key */
        cJSON *doc;          /* the document as stored */
} sg_profile;

typedef struct {
        char id[22];
        char description[SG_DESCRIPTION_MAX + 1];
        size_t n_publishers;
        char publishers[SG_CSC_MAX_PUBLISHERS][SG_PROFILE_ARN_MAX + 1]; /* canonical NAME/VERSION */
        sg_untrusted_policy policy;
        int64_t last_modified;
        cJSON *doc;
} sg_csc;

typedef struct {
        char name[65];
        char csc_id[22]; /* "" when no code signing config is bound */
        cJSON *doc;
} sg_function;

typedef enum { SG_REVOKE_PROFILE, SG_REVOKE_SIGNATURE } sg_revocation_type;

typedef struct {
        sg_revocation_type type;
        char profile_name[65];
        char profile_version[11];
        int64_t effective_time;
        char job_id[37];
        cJSON *doc;
} sg_revocation;

typedef struct {
        sg_profile *profiles;
        size_t n_profiles;
        sg_csc *cscs;
        size_t n_cscs;
        sg_function *functions;
        size_t n_functions;
        sg_revocation *revocations;
        size_t n_revocations;
} sg_store;

/* Document parsers: each validates one JSON document of DESIGN §7 (field names, types,
 * values) and fills *ret (ownership of nothing in j is taken; ret->doc is a copy). */
int sg_profile_from_json(const cJSON *j, sg_profile *ret, sg_error *err);
int sg_csc_from_json(const cJSON *j, sg_csc *ret, sg_error *err);
int sg_function_from_json(const cJSON *j, sg_function *ret, sg_error *err);
int sg_revocation_from_json(const cJSON *j, sg_revocation *ret, sg_error *err);
void sg_profile_done(sg_profile *p);

/* Accepts "NAME/VERSION" or an ARN whose path ends in "/signing-profiles/NAME/VERSION" and
 * writes the canonical NAME/VERSION; -EINVAL otherwise. */
int sg_profile_arn_canonical(const char *arn, char ret[SG_PROFILE_ARN_MAX + 1]);
/* Accepts "csc-…" or an ARN ending in "code-signing-config:csc-…". */
int sg_csc_arn_id(const char *arn, char ret[22]);
/* The ARN signgate writes for a CSC id. */
void sg_csc_arn(const char *id, char *buf, size_t len);

/* An empty store (for offline verification built from a profile document). */
sg_store *sg_store_new(void);
/* Loads the store below dirfd. -EINVAL with err naming the file on a bad document. */
int sg_store_load(int dirfd, sg_store **ret, sg_error *err);
void sg_store_free(sg_store *s);
static inline void sg_store_freep(sg_store **s) { sg_store_free(*s); }

/* Adds a parsed item to an in-memory store (the store takes ownership of its contents). */
int sg_store_add_profile(sg_store *s, sg_profile *p);
int sg_store_add_csc(sg_store *s, sg_csc *c);
int sg_store_add_function(sg_store *s, sg_function *f);

const sg_profile *sg_store_find_profile(const sg_store *s, const char *name, const char *version);
const sg_csc *sg_store_find_csc(const sg_store *s, const char *id);
const sg_function *sg_store_find_function(const sg_store *s, const char *name);

/* Writes doc as subdir/file below dirfd atomically, creating subdir (0755) if needed. */
int sg_store_write(int dirfd, const char *subdir, const char *file, const cJSON *doc);

/* First-seen log: "HEX TIME\n" lines. Finds the earliest time recorded for digest;
 * -ENOENT if none (or no log). Malformed lines are skipped: the log is the gate's own. */
int sg_firstseen_find(int dirfd, const char *name, const unsigned char digest[SG_DIGEST_LEN], int64_t *ret);

#endif
