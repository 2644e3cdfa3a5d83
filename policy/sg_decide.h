/* sg_decide.h — what the gate decides (DESIGN §5), as a pure function.
 *
 * sg_decide() reads only its arguments: the package facts found by sg_package_inspect() and
 * sg_envelope_parse(), the function's binding, the policy store, the first-seen time of the
 * package digest and the current time. It does no I/O and keeps no state, so the gate, the
 * offline `signgate verify` and the tests all reach the same decision from the same facts.
 * (It does run the ECDSA verification, which is computation, not I/O.)
 *
 * Order of checks: MALFORMED, LIMIT_EXCEEDED, UNSAFE_CONTENT (from the package facts),
 * INTEGRITY, UNKNOWN_FUNCTION, then the overridable UNSIGNED, UNTRUSTED_PUBLISHER, EXPIRED,
 * NOT_YET_VALID, REVOKED, which are all collected. A non-overridable reason rejects alone.
 */
#ifndef SG_DECIDE_H
#define SG_DECIDE_H

#include <cjson/cJSON.h>

#include "sg_common.h"
#include "sg_package.h"
#include "sg_signature.h"
#include "sg_store.h"

/* A signature may claim a signing time at most this far in the future (clock skew). */
#define SG_CLOCK_SKEW_SECONDS 300
#define SG_MAX_REASONS 8

typedef struct {
        sg_error package_error;          /* reason NONE for a sound archive */
        const unsigned char *digest;     /* canonical digest (SG_DIGEST_LEN) when sound */
        uint64_t canonical_size;
        const char *platform_id;         /* SG_PLATFORM_LAMBDA or SG_PLATFORM_BLOB */
        bool has_block;                  /* a non-empty comment, or a detached signature */
        const sg_envelope *envelope;     /* the parsed block, or NULL */
        sg_error envelope_error;         /* why the block did not parse */
} sg_facts;

typedef struct {
        const char *function;            /* the function (or layer) name, for messages */
        const sg_function *binding;      /* NULL: not declared at the gate */
        const sg_store *store;
        bool unbound_allow;              /* settings: unboundFunctions = allow */
        int64_t now;
        int64_t first_seen;              /* when this gate first saw the digest; now if never */
} sg_decide_ctx;

typedef enum { SG_OUTCOME_PROMOTED, SG_OUTCOME_PROMOTED_WITH_WARNINGS, SG_OUTCOME_REJECTED } sg_outcome;
const char *sg_outcome_name(sg_outcome o);

typedef struct {
        sg_outcome outcome;
        size_t n_reasons;
        sg_reason reasons[SG_MAX_REASONS];
        char message[768];
        const sg_csc *csc;               /* the binding's CSC, or NULL */
        const sg_profile *profile;       /* the signer's profile if the gate knows it */
        int64_t expires_at;              /* signedAt + the gate's validity, else the claim */
} sg_decision;

void sg_decide(const sg_facts *facts, const sg_decide_ctx *ctx, sg_decision *ret);

/* Everything else a decision record (DESIGN §9) holds. */
typedef struct {
        int64_t time;
        const char *decision_id;
        const char *kind;                /* "function" | "layer" */
        const char *function;            /* NULL for an inbox name that names no function */
        const char *source;              /* "inbox" | "api" | "verify" */
        bool has_peer;
        unsigned uid, gid;
        int pid;                         /* 0: unknown (an inbox drop), recorded as null */
        const char *package_name;
        uint64_t package_size;
        const unsigned char *package_sha384;
        const char *release;             /* NULL unless promoted into a release */
} sg_record_info;

/* The decision record without seq and prev, in DESIGN §9's key order. NULL on ENOMEM. */
cJSON *sg_decision_record(const sg_decision *d, const sg_facts *facts, const sg_record_info *info);

#endif
