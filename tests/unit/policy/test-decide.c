/* Unit tests for policy/sg_decide.c: sg_decide() against DESIGN §5, one table row per case, and
 * sg_decision_record() against DESIGN §9.
 *
 * Every signature here is real: each test generates its own P-384 keys, registers the public
 * halves in an in-memory store through the same document parsers the gate uses, builds a
 * signature block with sg_envelope_build() and parses it back with sg_envelope_parse(), so the
 * decision runs the real ECDSA verification. Nothing is shared between tests.
 *
 * Run one test alone with: unit-policy-test-decide TEST_NAME (a cmocka filter pattern). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sg_common.h"
#include "sg_decide.h"
#include "sg_package.h"
#include "sg_signature.h"
#include "sg_store.h"

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

/* The fixed clock of every row: 2024-06-01T00:00:00Z. */
#define NOW ((int64_t) 1717200000)
#define HOUR ((int64_t) 3600)
#define DAY ((int64_t) 86400)
/* StolenProfile's revocation takes effect ten days before NOW. */
#define REVOKE_AT (NOW - 10 * DAY)

#define CSC_ENFORCE "csc-0123456789abcdef0"
#define CSC_WARN "csc-fedcba98765432100"
#define FN_ENFORCE "fn_enforce"
#define FN_WARN "fn_warn"
#define FN_NO_CSC "fn_nocsc"
#define FN_UNDECLARED "fn_undeclared"
#define JOB_GOOD "6f1c1a52-0d7e-4c3e-9a51-8f0e2b7c4d10"
#define JOB_REVOKED "0b9d3f4e-5a6c-4d7e-8f90-a1b2c3d4e5f6"
#define PACKAGE_SIZE 4242u

/* Compares two times and, on failure, prints both as RFC 3339 (cmocka would print hex). */
#define assert_time_equal(got, want)                              \
        do {                                                      \
                if (!time_equal_or_print((got), (want), #got))    \
                        fail();                                   \
        } while (0)
static bool time_equal_or_print(int64_t got, int64_t want, const char *what) {
        char g[SG_TIME_LEN + 1] = "?", w[SG_TIME_LEN + 1] = "?";
        if (got == want)
                return true;
        (void) sg_time_format(got, g);
        (void) sg_time_format(want, w);
        print_error("ERROR: %s is %s (%lld), want %s (%lld)\n", what, g, (long long) got, w, (long long) want);
        return false;
}

/* The signing profiles of the fixture. KEY_SAME in a row's `by` means "signed by the claimed key". */
enum key_id { KEY_SAME = 0, KEY_PROD, KEY_OUTSIDER, KEY_GHOST, KEY_STOLEN, N_KEYS };

static const struct {
        const char *name;
        bool in_store;       /* registered at the gate */
        bool allowed;        /* listed in both CSCs' allowed publishers */
        uint32_t validity;   /* the gate's record of the validity period */
        sg_period_unit unit;
} profiles[N_KEYS] = {
        [KEY_PROD] = {"ProdProfile", true, true, 30, SG_PERIOD_DAYS},
        [KEY_OUTSIDER] = {"OutsiderProfile", true, false, 1, SG_PERIOD_DAYS},
        [KEY_GHOST] = {"GhostProfile", false, false, 30, SG_PERIOD_DAYS},
        [KEY_STOLEN] = {"StolenProfile", true, true, 135, SG_PERIOD_MONTHS},
};

enum sig_kind {
        SIG_NONE,    /* no signature block */
        SIG_GARBLED, /* a block that does not parse (a real block cut short by one byte) */
        SIG_BLOCK,   /* a real, parsed block */
};

enum tamper {
        TAMPER_DIGEST = 1u << 0,       /* the package digest differs from the signed one */
        TAMPER_SIZE = 1u << 1,         /* the canonical size differs from the signed one */
        STATEMENT_BLOB = 1u << 2,      /* the statement names Blob-SHA384-ECDSA */
        PACKAGE_BLOB = 1u << 3,        /* the package is a Blob-platform file */
};

enum store_kind {
        STORE_FULL,           /* profiles, both CSCs, functions, both revocations */
        STORE_NO_REVOCATIONS, /* the same without any revocation */
        STORE_NO_CSCS,        /* the same without the CSCs (a hand-built store with dangling bindings) */
};

enum binding {
        BOUND,           /* the function bound to the CSC of the row's policy */
        DECLARED_NO_CSC, /* declared at the gate without a CSC */
        UNDECLARED,      /* not declared at the gate */
};

struct decide_row {
        const char *name;
        /* package and signature facts */
        sg_reason package_error; /* NONE: a sound archive */
        enum sig_kind sig;
        enum key_id claim;        /* the profile the statement names */
        enum key_id by;           /* the key that actually signed */
        int64_t signed_at;
        int64_t claimed_expires_at; /* the payload's signatureExpiresAt; 0: signed_at + 30 days */
        const char *job;          /* NULL: JOB_GOOD */
        unsigned tamper;
        /* context */
        enum store_kind store;
        enum binding binding;
        sg_untrusted_policy policy;
        bool unbound_allow;
        int64_t now;
        int64_t first_seen;
        /* expectation */
        sg_outcome outcome;
        sg_reason reasons[SG_MAX_REASONS]; /* in check order, NONE-terminated */
};

#define E SG_POLICY_ENFORCE
#define W SG_POLICY_WARN
#define PROMOTED SG_OUTCOME_PROMOTED
#define WARNED SG_OUTCOME_PROMOTED_WITH_WARNINGS
#define REJECTED SG_OUTCOME_REJECTED
#define R(...) {__VA_ARGS__}
#define SIGNED(key, at) .sig = SIG_BLOCK, .claim = (key), .signed_at = (at)

static const struct decide_row rows[] = {
        /* --- A sound signature from an allowed, valid, unrevoked profile. --- */
        {"promotes_valid_signature_under_enforce", SIGNED(KEY_PROD, NOW - HOUR), .binding = BOUND, .policy = E,
         .now = NOW, .first_seen = NOW, .outcome = PROMOTED},
        {"promotes_valid_signature_under_warn", SIGNED(KEY_PROD, NOW - HOUR), .binding = BOUND, .policy = W,
         .now = NOW, .first_seen = NOW, .outcome = PROMOTED},
        /* A profile signs for its own platform only (the e2e suite promotes a Blob package signed
         * by a Blob profile): a Lambda profile's key vouching for a Blob statement is INTEGRITY. */
        {"rejects_blob_statement_signed_by_a_lambda_profile_under_enforce", SIGNED(KEY_PROD, NOW - HOUR),
         .tamper = STATEMENT_BLOB | PACKAGE_BLOB, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_blob_statement_signed_by_a_lambda_profile_under_warn", SIGNED(KEY_PROD, NOW - HOUR),
         .tamper = STATEMENT_BLOB | PACKAGE_BLOB, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_INTEGRITY)},

        /* --- MALFORMED, LIMIT_EXCEEDED, UNSAFE_CONTENT: from the package facts; never overridable. --- */
        {"rejects_malformed_package_under_enforce", .package_error = SG_REASON_MALFORMED,
         SIGNED(KEY_PROD, NOW - HOUR), .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_MALFORMED)},
        {"rejects_malformed_package_under_warn", .package_error = SG_REASON_MALFORMED, SIGNED(KEY_PROD, NOW - HOUR),
         .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_MALFORMED)},
        {"rejects_malformed_unsigned_package_under_warn_with_malformed_alone", .package_error = SG_REASON_MALFORMED,
         .sig = SIG_NONE, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_MALFORMED)},
        {"rejects_malformed_package_for_undeclared_function_even_when_unbound_allow",
         .package_error = SG_REASON_MALFORMED, .sig = SIG_NONE, .binding = UNDECLARED, .unbound_allow = true,
         .now = NOW, .first_seen = NOW, .outcome = REJECTED, .reasons = R(SG_REASON_MALFORMED)},
        {"rejects_package_over_limits_under_enforce", .package_error = SG_REASON_LIMIT_EXCEEDED,
         SIGNED(KEY_PROD, NOW - HOUR), .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_LIMIT_EXCEEDED)},
        {"rejects_package_over_limits_under_warn", .package_error = SG_REASON_LIMIT_EXCEEDED,
         SIGNED(KEY_PROD, NOW - HOUR), .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_LIMIT_EXCEEDED)},
        {"rejects_unsafe_content_under_enforce", .package_error = SG_REASON_UNSAFE_CONTENT,
         SIGNED(KEY_PROD, NOW - HOUR), .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_UNSAFE_CONTENT)},
        {"rejects_unsafe_content_under_warn", .package_error = SG_REASON_UNSAFE_CONTENT, SIGNED(KEY_PROD, NOW - HOUR),
         .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNSAFE_CONTENT)},

        /* --- INTEGRITY: a block is present but does not verify; never overridable. --- */
        {"rejects_unparseable_signature_block_under_enforce", .sig = SIG_GARBLED, .claim = KEY_PROD,
         .signed_at = NOW - HOUR, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_unparseable_signature_block_under_warn", .sig = SIG_GARBLED, .claim = KEY_PROD,
         .signed_at = NOW - HOUR, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_digest_mismatch_as_integrity_under_enforce", SIGNED(KEY_PROD, NOW - HOUR), .tamper = TAMPER_DIGEST,
         .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_digest_mismatch_as_integrity_under_warn", SIGNED(KEY_PROD, NOW - HOUR), .tamper = TAMPER_DIGEST,
         .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_size_mismatch_as_integrity_under_warn", SIGNED(KEY_PROD, NOW - HOUR), .tamper = TAMPER_SIZE,
         .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_signature_made_by_another_key_as_integrity_under_enforce", SIGNED(KEY_PROD, NOW - HOUR),
         .by = KEY_OUTSIDER, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_signature_made_by_another_key_as_integrity_under_warn", SIGNED(KEY_PROD, NOW - HOUR),
         .by = KEY_OUTSIDER, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_blob_signature_on_lambda_package_as_integrity_under_enforce", SIGNED(KEY_PROD, NOW - HOUR),
         .tamper = STATEMENT_BLOB, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_blob_signature_on_lambda_package_as_integrity_under_warn", SIGNED(KEY_PROD, NOW - HOUR),
         .tamper = STATEMENT_BLOB, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_lambda_signature_on_blob_package_as_integrity_under_warn", SIGNED(KEY_PROD, NOW - HOUR),
         .tamper = PACKAGE_BLOB, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_INTEGRITY)},
        {"rejects_tampered_package_with_integrity_alone_under_warn", SIGNED(KEY_OUTSIDER, NOW - 2 * DAY),
         .job = JOB_REVOKED, .tamper = TAMPER_DIGEST, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_INTEGRITY)},

        /* --- UNKNOWN_FUNCTION and unbound functions. An undeclared function, or one without a CSC,
         * has no policy at all, so no Warn can apply; a binding whose CSC is missing from the
         * store is rejected whichever policy it was meant to carry. --- */
        {"rejects_undeclared_function_when_unbound_reject", SIGNED(KEY_PROD, NOW - HOUR), .binding = UNDECLARED,
         .unbound_allow = false, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNKNOWN_FUNCTION)},
        {"rejects_unsigned_package_for_undeclared_function_when_unbound_reject", .sig = SIG_NONE,
         .binding = UNDECLARED, .unbound_allow = false, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNKNOWN_FUNCTION)},
        {"rejects_function_declared_without_csc_when_unbound_reject", SIGNED(KEY_PROD, NOW - HOUR),
         .binding = DECLARED_NO_CSC, .unbound_allow = false, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNKNOWN_FUNCTION)},
        {"promotes_unsigned_package_for_undeclared_function_when_unbound_allow", .sig = SIG_NONE,
         .binding = UNDECLARED, .unbound_allow = true, .now = NOW, .first_seen = NOW, .outcome = PROMOTED},
        {"promotes_unsigned_package_for_function_without_csc_when_unbound_allow", .sig = SIG_NONE,
         .binding = DECLARED_NO_CSC, .unbound_allow = true, .now = NOW, .first_seen = NOW, .outcome = PROMOTED},
        {"promotes_untrusted_expired_revoked_signature_for_function_without_csc_when_unbound_allow",
         SIGNED(KEY_OUTSIDER, NOW - 2 * DAY), .job = JOB_REVOKED, .binding = DECLARED_NO_CSC, .unbound_allow = true,
         .now = NOW, .first_seen = NOW, .outcome = PROMOTED},
        {"rejects_function_bound_to_missing_enforce_csc_as_unknown_function", SIGNED(KEY_PROD, NOW - HOUR),
         .store = STORE_NO_CSCS, .binding = BOUND, .policy = E, .unbound_allow = true, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_UNKNOWN_FUNCTION)},
        {"rejects_function_bound_to_missing_warn_csc_as_unknown_function", SIGNED(KEY_PROD, NOW - HOUR),
         .store = STORE_NO_CSCS, .binding = BOUND, .policy = W, .unbound_allow = true, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_UNKNOWN_FUNCTION)},
        {"rejects_unsigned_package_for_function_bound_to_missing_warn_csc", .sig = SIG_NONE, .store = STORE_NO_CSCS,
         .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNKNOWN_FUNCTION)},

        /* --- UNSIGNED --- */
        {"rejects_unsigned_package_under_enforce", .sig = SIG_NONE, .binding = BOUND, .policy = E, .now = NOW,
         .first_seen = NOW, .outcome = REJECTED, .reasons = R(SG_REASON_UNSIGNED)},
        {"warns_on_unsigned_package_under_warn", .sig = SIG_NONE, .binding = BOUND, .policy = W, .now = NOW,
         .first_seen = NOW, .outcome = WARNED, .reasons = R(SG_REASON_UNSIGNED)},

        /* --- UNTRUSTED_PUBLISHER: a known profile the CSC does not allow, or a keyid the gate does not know. --- */
        {"rejects_known_profile_not_allowed_by_csc_under_enforce", SIGNED(KEY_OUTSIDER, NOW - HOUR), .binding = BOUND,
         .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER)},
        {"warns_on_known_profile_not_allowed_by_csc_under_warn", SIGNED(KEY_OUTSIDER, NOW - HOUR), .binding = BOUND,
         .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED, .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER)},
        {"rejects_profile_unknown_to_store_under_enforce", SIGNED(KEY_GHOST, NOW - HOUR), .binding = BOUND,
         .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER)},
        {"warns_on_profile_unknown_to_store_under_warn", SIGNED(KEY_GHOST, NOW - HOUR), .binding = BOUND, .policy = W,
         .now = NOW, .first_seen = NOW, .outcome = WARNED, .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER)},

        /* --- EXPIRED: signedAt + the gate's validity (30 days for ProdProfile); the payload claims
         * ten years, which must not count. --- */
        {"rejects_expired_signature_under_enforce", SIGNED(KEY_PROD, NOW - 30 * DAY),
         .claimed_expires_at = NOW + 3650 * DAY, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_EXPIRED)},
        {"warns_on_expired_signature_under_warn", SIGNED(KEY_PROD, NOW - 30 * DAY),
         .claimed_expires_at = NOW + 3650 * DAY, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW,
         .outcome = WARNED, .reasons = R(SG_REASON_EXPIRED)},
        {"rejects_signature_long_past_gate_validity_despite_longer_claimed_expiry", SIGNED(KEY_PROD, NOW - 90 * DAY),
         .claimed_expires_at = NOW + 365 * DAY, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = REJECTED, .reasons = R(SG_REASON_EXPIRED)},
        {"promotes_signature_one_second_before_gate_expiry", SIGNED(KEY_PROD, NOW - 30 * DAY + 1), .binding = BOUND,
         .policy = E, .now = NOW, .first_seen = NOW, .outcome = PROMOTED},

        /* --- NOT_YET_VALID: at most 5 minutes of clock skew. --- */
        {"promotes_signature_exactly_300_seconds_in_future", SIGNED(KEY_PROD, NOW + 300), .binding = BOUND,
         .policy = E, .now = NOW, .first_seen = NOW, .outcome = PROMOTED},
        {"rejects_signature_301_seconds_in_future_under_enforce", SIGNED(KEY_PROD, NOW + 301), .binding = BOUND,
         .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED, .reasons = R(SG_REASON_NOT_YET_VALID)},
        {"warns_on_signature_301_seconds_in_future_under_warn", SIGNED(KEY_PROD, NOW + 301), .binding = BOUND,
         .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED, .reasons = R(SG_REASON_NOT_YET_VALID)},

        /* --- REVOKED by signing job. --- */
        {"rejects_revoked_job_under_enforce", SIGNED(KEY_PROD, NOW - HOUR), .job = JOB_REVOKED, .binding = BOUND,
         .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED, .reasons = R(SG_REASON_REVOKED)},
        {"warns_on_revoked_job_under_warn", SIGNED(KEY_PROD, NOW - HOUR), .job = JOB_REVOKED, .binding = BOUND,
         .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED, .reasons = R(SG_REASON_REVOKED)},
        {"promotes_same_job_when_store_has_no_revocations", SIGNED(KEY_PROD, NOW - HOUR), .job = JOB_REVOKED,
         .store = STORE_NO_REVOCATIONS, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW,
         .outcome = PROMOTED},

        /* --- REVOKED by profile version (StolenProfile, effective REVOKE_AT): effective time <= the
         * later of signedAt and the gate's first sighting of the digest. --- */
        {"rejects_signature_made_after_profile_revocation_under_enforce", SIGNED(KEY_STOLEN, NOW - DAY),
         .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_REVOKED)},
        {"warns_on_signature_made_after_profile_revocation_under_warn", SIGNED(KEY_STOLEN, NOW - DAY),
         .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED,
         .reasons = R(SG_REASON_REVOKED)},
        /* first_seen before the effective time: signedAt alone must revoke. */
        {"rejects_signature_claiming_signing_at_revocation_effective_time", SIGNED(KEY_STOLEN, REVOKE_AT),
         .binding = BOUND, .policy = E, .now = NOW, .first_seen = REVOKE_AT - 1, .outcome = REJECTED,
         .reasons = R(SG_REASON_REVOKED)},
        {"promotes_signature_one_second_before_revocation_effective_time", SIGNED(KEY_STOLEN, REVOKE_AT - 1),
         .binding = BOUND, .policy = E, .now = NOW, .first_seen = REVOKE_AT - 1, .outcome = PROMOTED},
        {"rejects_backdated_signature_first_seen_after_revocation_under_enforce", SIGNED(KEY_STOLEN, REVOKE_AT - 5 * DAY),
         .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_REVOKED)},
        {"warns_on_backdated_signature_first_seen_after_revocation_under_warn",
         SIGNED(KEY_STOLEN, REVOKE_AT - 5 * DAY), .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW,
         .outcome = WARNED, .reasons = R(SG_REASON_REVOKED)},
        {"rejects_backdated_signature_first_seen_exactly_at_revocation", SIGNED(KEY_STOLEN, REVOKE_AT - 5 * DAY),
         .binding = BOUND, .policy = E, .now = NOW, .first_seen = REVOKE_AT, .outcome = REJECTED,
         .reasons = R(SG_REASON_REVOKED)},
        {"promotes_signature_signed_and_first_seen_before_revocation_under_enforce",
         SIGNED(KEY_STOLEN, REVOKE_AT - 5 * DAY), .binding = BOUND, .policy = E, .now = NOW,
         .first_seen = REVOKE_AT - 1, .outcome = PROMOTED},
        {"promotes_signature_signed_and_first_seen_before_revocation_under_warn",
         SIGNED(KEY_STOLEN, REVOKE_AT - 5 * DAY), .binding = BOUND, .policy = W, .now = NOW,
         .first_seen = REVOKE_AT - 1, .outcome = PROMOTED},

        /* --- Several overridable reasons are collected together, in check order. --- */
        {"rejects_with_untrusted_expired_and_revoked_together_under_enforce", SIGNED(KEY_OUTSIDER, NOW - 2 * DAY),
         .job = JOB_REVOKED, .binding = BOUND, .policy = E, .now = NOW, .first_seen = NOW, .outcome = REJECTED,
         .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER, SG_REASON_EXPIRED, SG_REASON_REVOKED)},
        {"warns_with_untrusted_expired_and_revoked_together_under_warn", SIGNED(KEY_OUTSIDER, NOW - 2 * DAY),
         .job = JOB_REVOKED, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED,
         .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER, SG_REASON_EXPIRED, SG_REASON_REVOKED)},
        {"warns_with_unknown_profile_future_time_and_revoked_job_together_under_warn", SIGNED(KEY_GHOST, NOW + DAY),
         .job = JOB_REVOKED, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED,
         .reasons = R(SG_REASON_UNTRUSTED_PUBLISHER, SG_REASON_NOT_YET_VALID, SG_REASON_REVOKED)},
        {"reports_revoked_once_when_both_job_and_profile_are_revoked", SIGNED(KEY_STOLEN, NOW + HOUR),
         .job = JOB_REVOKED, .binding = BOUND, .policy = W, .now = NOW, .first_seen = NOW, .outcome = WARNED,
         .reasons = R(SG_REASON_NOT_YET_VALID, SG_REASON_REVOKED)},
};

/* ------------------------------------------------------------------------------------------ */
/* Fixture: keys, an in-memory store, and the parsed envelope of the row (if any).            */

struct fixture {
        const struct decide_row *row; /* NULL for the stand-alone tests */
        EVP_PKEY *keys[N_KEYS];
        char versions[N_KEYS][11];
        sg_store *store;
        unsigned char digest[SG_DIGEST_LEN];
        unsigned char package_digest[SG_DIGEST_LEN]; /* what the facts report */
        sg_envelope env;
        bool have_env;
        sg_error envelope_error;
        sg_facts facts;
};

static cJSON *parse_json(const char *text) {
        cJSON *j = cJSON_Parse(text);
        if (!j)
                fail_msg("test document does not parse: %s", text);
        return j;
}

/* The public profile document, shaped as profile_doc() in cli/signer.c writes it. */
static cJSON *profile_document(const char *name, EVP_PKEY *key, uint32_t value, sg_period_unit unit) {
        char version[11], arn[SG_PROFILE_ARN_MAX + 1];
        char *pem = NULL;
        cJSON *j = cJSON_CreateObject(), *vp;

        assert_non_null(j);
        assert_int_equal(sg_key_profile_version(key, version), 0);
        assert_int_equal(sg_key_public_pem(key, &pem), 0);
        snprintf(arn, sizeof(arn), "%s/%s", name, version);
        assert_non_null(cJSON_AddStringToObject(j, "profileName", name));
        assert_non_null(cJSON_AddStringToObject(j, "profileVersion", version));
        assert_non_null(cJSON_AddStringToObject(j, "profileVersionArn", arn));
        assert_non_null(cJSON_AddStringToObject(j, "platformId", SG_PLATFORM_LAMBDA));
        assert_non_null(vp = cJSON_AddObjectToObject(j, "signatureValidityPeriod"));
        assert_non_null(cJSON_AddNumberToObject(vp, "value", value));
        assert_non_null(cJSON_AddStringToObject(vp, "type", sg_period_unit_name(unit)));
        assert_non_null(cJSON_AddStringToObject(j, "publicKey", pem));
        assert_non_null(cJSON_AddStringToObject(j, "status", "Active"));
        assert_non_null(cJSON_AddObjectToObject(j, "tags"));
        assert_non_null(cJSON_AddStringToObject(j, "createdAt", "2024-01-01T00:00:00Z"));
        free(pem);
        return j;
}

static void add_profile(sg_store *s, const char *name, EVP_PKEY *key, uint32_t value, sg_period_unit unit) {
        cJSON *doc = profile_document(name, key, value, unit);
        sg_profile p;
        sg_error err = {0};
        int r = sg_profile_from_json(doc, &p, &err);
        cJSON_Delete(doc);
        if (r < 0)
                fail_msg("profile %s does not parse: %d %s", name, r, err.msg);
        assert_int_equal(sg_store_add_profile(s, &p), 0);
}

static void add_csc(sg_store *s, const char *id, const char *policy, const char *publishers_json) {
        char text[4096];
        sg_csc c;
        sg_error err = {0};
        snprintf(text, sizeof(text),
                 "{\"CodeSigningConfigId\":\"%s\",\"AllowedPublishers\":{\"SigningProfileVersionArns\":%s},"
                 "\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"%s\"}}",
                 id, publishers_json, policy);
        cJSON *doc = parse_json(text);
        int r = sg_csc_from_json(doc, &c, &err);
        cJSON_Delete(doc);
        if (r < 0)
                fail_msg("CSC %s does not parse: %d %s", id, r, err.msg);
        assert_int_equal(sg_store_add_csc(s, &c), 0);
}

static void add_function(sg_store *s, const char *text) {
        sg_function f;
        sg_error err = {0};
        cJSON *doc = parse_json(text);
        int r = sg_function_from_json(doc, &f, &err);
        cJSON_Delete(doc);
        if (r < 0)
                fail_msg("function %s does not parse: %d %s", text, r, err.msg);
        assert_int_equal(sg_store_add_function(s, &f), 0);
}

static void add_revocation(sg_store *s, const char *text) {
        sg_revocation v;
        sg_error err = {0};
        cJSON *doc = parse_json(text);
        int r = sg_revocation_from_json(doc, &v, &err);
        cJSON_Delete(doc);
        if (r < 0)
                fail_msg("revocation %s does not parse: %d %s", text, r, err.msg);
        sg_revocation *a = realloc(s->revocations, (s->n_revocations + 1) * sizeof(*a));
        assert_non_null(a);
        s->revocations = a;
        s->revocations[s->n_revocations++] = v;
}

static void build_store(struct fixture *fx, enum store_kind kind) {
        char allowed[512], t[SG_TIME_LEN + 1], text[512];
        size_t n = 0;

        assert_non_null(fx->store = sg_store_new());
        for (int k = KEY_PROD; k < N_KEYS; k++)
                if (profiles[k].in_store)
                        add_profile(fx->store, profiles[k].name, fx->keys[k], profiles[k].validity, profiles[k].unit);

        /* ProdProfile by its seed-style ARN, StolenProfile by NAME/VERSION: both spellings are accepted. */
        n += (size_t) snprintf(allowed + n, sizeof(allowed) - n,
                               "[\"arn:aws:signer:us-east-1:111111111111:/signing-profiles/%s/%s\"",
                               profiles[KEY_PROD].name, fx->versions[KEY_PROD]);
        n += (size_t) snprintf(allowed + n, sizeof(allowed) - n, ",\"%s/%s\"]", profiles[KEY_STOLEN].name,
                               fx->versions[KEY_STOLEN]);
        assert_true(n < sizeof(allowed));
        if (kind != STORE_NO_CSCS) {
                add_csc(fx->store, CSC_ENFORCE, "Enforce", allowed);
                add_csc(fx->store, CSC_WARN, "Warn", allowed);
        }
        add_function(fx->store, "{\"FunctionName\":\"" FN_ENFORCE
                                "\",\"CodeSigningConfigArn\":\"arn:aws:lambda:us-east-1:111111111111:code-signing-config:" CSC_ENFORCE
                                "\"}");
        add_function(fx->store, "{\"FunctionName\":\"" FN_WARN "\",\"CodeSigningConfigArn\":\"" CSC_WARN "\"}");
        add_function(fx->store, "{\"FunctionName\":\"" FN_NO_CSC "\",\"CodeSigningConfigArn\":null}");

        if (kind != STORE_NO_REVOCATIONS) {
                add_revocation(fx->store, "{\"type\":\"signature\",\"jobId\":\"" JOB_REVOKED "\",\"reason\":\"leaked build\"}");
                assert_int_equal(sg_time_format(REVOKE_AT, t), 0);
                snprintf(text, sizeof(text),
                         "{\"type\":\"profile\",\"profileName\":\"%s\",\"profileVersion\":\"%s\",\"effectiveTime\":\"%s\","
                         "\"reason\":\"key stolen\"}",
                         profiles[KEY_STOLEN].name, fx->versions[KEY_STOLEN], t);
                add_revocation(fx->store, text);
        }
}

/* Builds a real block for the statement, signed with key, and returns it (caller frees). */
static char *build_block(const sg_statement *st, EVP_PKEY *key, size_t *len) {
        char *block = NULL;
        assert_int_equal(sg_envelope_build(st, key, &block, len), 0);
        assert_non_null(block);
        return block;
}

static void fill_statement(const struct fixture *fx, enum key_id claim, int64_t signed_at, int64_t claimed_expires_at,
                           const char *job, unsigned tamper, sg_statement *st) {
        memset(st, 0, sizeof(*st));
        snprintf(st->subject_name, sizeof(st->subject_name), "function.zip");
        memcpy(st->digest, fx->digest, SG_DIGEST_LEN);
        snprintf(st->platform_id, sizeof(st->platform_id), "%s",
                 tamper & STATEMENT_BLOB ? SG_PLATFORM_BLOB : SG_PLATFORM_LAMBDA);
        snprintf(st->profile_name, sizeof(st->profile_name), "%s", profiles[claim].name);
        snprintf(st->profile_version, sizeof(st->profile_version), "%s", fx->versions[claim]);
        snprintf(st->job_id, sizeof(st->job_id), "%s", job ? job : JOB_GOOD);
        st->signed_at = signed_at;
        st->expires_at = claimed_expires_at ? claimed_expires_at : signed_at + 30 * DAY;
        st->size = PACKAGE_SIZE;
}

/* Fills fx->facts for a package as sg_package_inspect() and sg_envelope_parse() would report it. */
static void build_facts(struct fixture *fx, sg_reason package_error, enum sig_kind sig, enum key_id claim, enum key_id by,
                        int64_t signed_at, int64_t claimed_expires_at, const char *job, unsigned tamper) {
        sg_facts *f = &fx->facts;

        memset(f, 0, sizeof(*f));
        memcpy(fx->package_digest, fx->digest, SG_DIGEST_LEN);
        if (tamper & TAMPER_DIGEST)
                fx->package_digest[17] ^= 0x01;
        f->digest = fx->package_digest;
        f->canonical_size = tamper & TAMPER_SIZE ? PACKAGE_SIZE + 1 : PACKAGE_SIZE;
        f->platform_id = tamper & PACKAGE_BLOB ? SG_PLATFORM_BLOB : SG_PLATFORM_LAMBDA;
        if (package_error != SG_REASON_NONE)
                sg_error_set(&f->package_error, package_error, "entry 'a/../../b' is a test %s",
                             sg_reason_name(package_error));
        if (sig == SIG_NONE)
                return;

        sg_statement st;
        size_t len = 0;
        fill_statement(fx, claim, signed_at, claimed_expires_at, job, tamper, &st);
        char *block = build_block(&st, fx->keys[by == KEY_SAME ? claim : by], &len);
        f->has_block = true;
        if (sig == SIG_GARBLED) {
                /* The block cut short by its closing brace: the envelope JSON no longer parses. */
                assert_int_equal(sg_envelope_parse(block, len - 1, &fx->env, &fx->envelope_error), -EINVAL);
                assert_int_equal(fx->envelope_error.reason, SG_REASON_INTEGRITY);
                f->envelope_error = fx->envelope_error;
        } else {
                sg_error err = {0};
                int r = sg_envelope_parse(block, len, &fx->env, &err);
                if (r < 0)
                        fail_msg("the block built by sg_envelope_build() does not parse: %d %s", r, err.msg);
                fx->have_env = true;
                f->envelope = &fx->env;
        }
        free(block);
}

static void fixture_free(struct fixture *fx) {
        if (!fx)
                return;
        if (fx->have_env)
                sg_envelope_done(&fx->env);
        sg_store_free(fx->store);
        for (int k = 0; k < N_KEYS; k++)
                EVP_PKEY_free(fx->keys[k]);
        free(fx);
}

static struct fixture *fixture_new(const struct decide_row *row, enum store_kind kind) {
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        fx->row = row;
        for (int k = KEY_PROD; k < N_KEYS; k++) {
                assert_int_equal(sg_key_generate(&fx->keys[k]), 0);
                assert_int_equal(sg_key_profile_version(fx->keys[k], fx->versions[k]), 0);
        }
        for (size_t i = 0; i < SG_DIGEST_LEN; i++)
                fx->digest[i] = (unsigned char) (0xa5 ^ (i * 7));
        build_store(fx, kind);
        return fx;
}

static int setup_row(void **state) {
        const struct decide_row *row = *state;
        *state = fixture_new(row, row->store);
        return 0;
}

static int setup_plain(void **state) {
        *state = fixture_new(NULL, STORE_FULL);
        return 0;
}

static int teardown(void **state) {
        fixture_free(*state);
        return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The table.                                                                                  */

static const char *row_function(const struct decide_row *row) {
        switch (row->binding) {
        case BOUND:
                return row->policy == SG_POLICY_WARN ? FN_WARN : FN_ENFORCE;
        case DECLARED_NO_CSC:
                return FN_NO_CSC;
        default:
                return FN_UNDECLARED;
        }
}

static void reasons_text(const sg_reason *r, size_t n, char *buf, size_t len) {
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && o < len; i++)
                o += (size_t) snprintf(buf + o, len - o, "%s%s", i ? "," : "", sg_reason_name(r[i]));
}

static void decide_row_gives_expected_decision(void **state) {
        struct fixture *fx = *state;
        const struct decide_row *row = fx->row;
        const char *fn = row_function(row);
        sg_decision d;
        char got[256], want[256];
        size_t n_want = 0;

        build_facts(fx, row->package_error, row->sig, row->claim, row->by, row->signed_at, row->claimed_expires_at,
                    row->job, row->tamper);
        sg_decide_ctx ctx = {
                .function = fn,
                .binding = row->binding == UNDECLARED ? NULL : sg_store_find_function(fx->store, fn),
                .store = fx->store,
                .unbound_allow = row->unbound_allow,
                .now = row->now,
                .first_seen = row->first_seen,
        };
        if (row->binding != UNDECLARED)
                assert_non_null(ctx.binding);

        memset(&d, 0x5a, sizeof(d)); /* sg_decide must set every field it reports */
        sg_decide(&fx->facts, &ctx, &d);

        assert_string_equal(sg_outcome_name(d.outcome), sg_outcome_name(row->outcome));
        while (n_want < SG_MAX_REASONS && row->reasons[n_want] != SG_REASON_NONE)
                n_want++;
        assert_true(d.n_reasons <= SG_MAX_REASONS);
        reasons_text(d.reasons, d.n_reasons, got, sizeof(got));
        reasons_text(row->reasons, n_want, want, sizeof(want));
        assert_string_equal(got, want);

        /* One sentence that names the function, the outcome and every reason. */
        assert_non_null(strstr(d.message, fn));
        const char *verb = row->outcome == SG_OUTCOME_REJECTED ? "Rejected" : "Promoted";
        if (strncmp(d.message, verb, strlen(verb)) != 0)
                fail_msg("message '%s' does not start with '%s'", d.message, verb);
        for (size_t i = 0; i < n_want; i++)
                if (!strstr(d.message, sg_reason_name(row->reasons[i])))
                        fail_msg("message '%s' does not name %s", d.message, sg_reason_name(row->reasons[i]));

        /* The CSC is reported once the decision reached the signature checks. */
        bool reached_csc = row->binding == BOUND && row->store != STORE_NO_CSCS &&
                           (n_want == 0 || sg_reason_overridable(row->reasons[0]));
        if (reached_csc) {
                assert_non_null(d.csc);
                assert_string_equal(d.csc->id, row->policy == SG_POLICY_WARN ? CSC_WARN : CSC_ENFORCE);
        } else if (row->outcome != SG_OUTCOME_REJECTED || row->reasons[0] == SG_REASON_UNKNOWN_FUNCTION)
                assert_null(d.csc);
}

/* ------------------------------------------------------------------------------------------ */
/* Stand-alone decision tests.                                                                 */

static sg_decide_ctx ctx_for(const struct fixture *fx, const char *fn) {
        return (sg_decide_ctx){
                .function = fn,
                .binding = sg_store_find_function(fx->store, fn),
                .store = fx->store,
                .unbound_allow = false,
                .now = NOW,
                .first_seen = NOW,
        };
}

static void expired_decision_reports_gate_expiry_not_claimed_expiry(void **state) {
        struct fixture *fx = *state;
        int64_t signed_at = NOW - 45 * DAY, claimed = NOW + 3650 * DAY;
        sg_decision d;

        build_facts(fx, SG_REASON_NONE, SIG_BLOCK, KEY_PROD, KEY_SAME, signed_at, claimed, NULL, 0);
        assert_time_equal(fx->env.st.expires_at, claimed); /* the payload really claims ten years */
        sg_decide_ctx ctx = ctx_for(fx, FN_WARN);
        sg_decide(&fx->facts, &ctx, &d);
        assert_string_equal(sg_outcome_name(d.outcome), "promoted-with-warnings");
        assert_int_equal(d.n_reasons, 1);
        assert_string_equal(sg_reason_name(d.reasons[0]), "EXPIRED");
        assert_time_equal(d.expires_at, signed_at + 30 * DAY);
        assert_non_null(d.profile);
        assert_string_equal(d.profile->name, profiles[KEY_PROD].name);
}

static void expiry_follows_calendar_months_of_gate_validity(void **state) {
        struct fixture *fx = *state;
        sg_decision d;
        int64_t signed_at, want;

        /* StolenProfile has 135 MONTHS; signed 2013-03-01 it expires 2024-06-01, exactly NOW. */
        assert_int_equal(sg_time_parse("2013-03-01T00:00:00Z", &signed_at), 0);
        assert_int_equal(sg_time_parse("2024-06-01T00:00:00Z", &want), 0);
        build_facts(fx, SG_REASON_NONE, SIG_BLOCK, KEY_STOLEN, KEY_SAME, signed_at, NOW + 365 * DAY, NULL, 0);
        sg_decide_ctx ctx = ctx_for(fx, FN_ENFORCE);
        ctx.first_seen = signed_at; /* seen long before the revocation */
        sg_decide(&fx->facts, &ctx, &d);
        assert_time_equal(d.expires_at, want);
        assert_string_equal(sg_outcome_name(d.outcome), "rejected");
        assert_int_equal(d.n_reasons, 1);
        assert_string_equal(sg_reason_name(d.reasons[0]), "EXPIRED");

        ctx.now = want - 1;
        sg_decide(&fx->facts, &ctx, &d);
        assert_string_equal(sg_outcome_name(d.outcome), "promoted");
        assert_int_equal(d.n_reasons, 0);
}

static void decision_is_the_same_for_the_same_facts(void **state) {
        struct fixture *fx = *state;
        sg_decision a, b;

        build_facts(fx, SG_REASON_NONE, SIG_BLOCK, KEY_OUTSIDER, KEY_SAME, NOW - 2 * DAY, 0, JOB_REVOKED, 0);
        sg_decide_ctx ctx = ctx_for(fx, FN_WARN);
        sg_decide(&fx->facts, &ctx, &a);
        sg_decide(&fx->facts, &ctx, &b);
        assert_string_equal(sg_outcome_name(a.outcome), sg_outcome_name(b.outcome));
        assert_int_equal(a.n_reasons, b.n_reasons);
        assert_memory_equal(a.reasons, b.reasons, a.n_reasons * sizeof(a.reasons[0]));
        assert_string_equal(a.message, b.message);
        assert_time_equal(a.expires_at, b.expires_at);
}

/* ------------------------------------------------------------------------------------------ */
/* sg_decision_record() (DESIGN §9).                                                            */

static const char *const record_keys[] = {"time",    "decisionId",        "kind",   "function", "source",
                                          "peer",    "package",           "signature", "codeSigningConfig",
                                          "policy",  "outcome",           "reasons", "message",  "release"};

static void assert_record_keys_in_order(const cJSON *rec) {
        const cJSON *c = rec->child;
        for (size_t i = 0; i < SG_ELEMENTSOF(record_keys); i++, c = c->next) {
                if (!c)
                        fail_msg("record ends before key %zu '%s'", i, record_keys[i]);
                assert_string_equal(c->string, record_keys[i]);
        }
        if (c)
                fail_msg("record has an extra key '%s' after 'release'", c->string);
}

static sg_record_info record_info(const unsigned char *digest) {
        return (sg_record_info){
                .time = NOW,
                .decision_id = "1e2d3c4b-5a69-4788-97a6-b5c4d3e2f100",
                .kind = "function",
                .function = FN_WARN,
                .source = "inbox",
                .package_name = "fn_warn.zip",
                .package_size = PACKAGE_SIZE,
                .package_sha384 = digest,
        };
}

static const char *str_item(const cJSON *j, const char *k) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
        if (!cJSON_IsString(v))
                fail_msg("'%s' is not a string", k);
        return v->valuestring;
}

static void record_has_design_keys_in_order_and_null_signature_for_unsigned_package(void **state) {
        struct fixture *fx = *state;
        sg_decision d;
        char hex[SG_DIGEST_HEX_LEN + 1];

        build_facts(fx, SG_REASON_NONE, SIG_NONE, KEY_SAME, KEY_SAME, 0, 0, NULL, 0);
        sg_decide_ctx ctx = ctx_for(fx, FN_WARN);
        sg_decide(&fx->facts, &ctx, &d);
        assert_string_equal(sg_outcome_name(d.outcome), "promoted-with-warnings");

        sg_record_info info = record_info(fx->package_digest);
        cJSON *rec = sg_decision_record(&d, &fx->facts, &info);
        assert_non_null(rec);
        assert_record_keys_in_order(rec);
        assert_string_equal(str_item(rec, "time"), "2024-06-01T00:00:00Z");
        assert_string_equal(str_item(rec, "decisionId"), info.decision_id);
        assert_string_equal(str_item(rec, "kind"), "function");
        assert_string_equal(str_item(rec, "function"), FN_WARN);
        assert_string_equal(str_item(rec, "source"), "inbox");
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "peer")));
        const cJSON *pkg = cJSON_GetObjectItemCaseSensitive(rec, "package");
        assert_string_equal(str_item(pkg, "name"), "fn_warn.zip");
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(pkg, "size")->valuedouble, PACKAGE_SIZE);
        sg_hex_encode(fx->package_digest, SG_DIGEST_LEN, hex);
        assert_string_equal(str_item(pkg, "sha384"), hex);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "signature")));
        assert_string_equal(str_item(rec, "codeSigningConfig"), CSC_WARN);
        assert_string_equal(str_item(rec, "policy"), "Warn");
        assert_string_equal(str_item(rec, "outcome"), "promoted-with-warnings");
        const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(rec, "reasons");
        assert_true(cJSON_IsArray(reasons));
        assert_int_equal(cJSON_GetArraySize(reasons), 1);
        assert_string_equal(reasons->child->valuestring, "UNSIGNED");
        assert_string_equal(str_item(rec, "message"), d.message);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "release")));
        assert_null(cJSON_GetObjectItemCaseSensitive(rec, "seq"));
        assert_null(cJSON_GetObjectItemCaseSensitive(rec, "prev"));
        cJSON_Delete(rec);
}

static void record_reports_signature_with_gate_expiry_peer_and_release(void **state) {
        struct fixture *fx = *state;
        sg_decision d;
        int64_t signed_at = NOW - DAY;

        build_facts(fx, SG_REASON_NONE, SIG_BLOCK, KEY_PROD, KEY_SAME, signed_at, NOW + 3650 * DAY, NULL, 0);
        sg_decide_ctx ctx = ctx_for(fx, FN_ENFORCE);
        sg_decide(&fx->facts, &ctx, &d);
        assert_string_equal(sg_outcome_name(d.outcome), "promoted");

        sg_record_info info = record_info(fx->package_digest);
        info.function = FN_ENFORCE;
        info.source = "api";
        info.has_peer = true;
        info.uid = 1001;
        info.gid = 1002;
        info.pid = 4242;
        info.release = "20240601T000000Z-a5a2afb48d86";
        cJSON *rec = sg_decision_record(&d, &fx->facts, &info);
        assert_non_null(rec);
        assert_record_keys_in_order(rec);

        const cJSON *peer = cJSON_GetObjectItemCaseSensitive(rec, "peer");
        assert_true(cJSON_IsObject(peer));
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(peer, "uid")->valuedouble, 1001);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(peer, "gid")->valuedouble, 1002);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(peer, "pid")->valuedouble, 4242);

        const cJSON *sig = cJSON_GetObjectItemCaseSensitive(rec, "signature");
        assert_true(cJSON_IsObject(sig));
        assert_string_equal(str_item(sig, "profileName"), profiles[KEY_PROD].name);
        assert_string_equal(str_item(sig, "profileVersion"), fx->versions[KEY_PROD]);
        assert_string_equal(str_item(sig, "jobId"), JOB_GOOD);
        assert_string_equal(str_item(sig, "signedAt"), "2024-05-31T00:00:00Z");
        /* The gate's 30 days, not the ten years the payload claims. */
        assert_string_equal(str_item(sig, "expiresAt"), "2024-06-30T00:00:00Z");
        assert_string_equal(str_item(rec, "codeSigningConfig"), CSC_ENFORCE);
        assert_string_equal(str_item(rec, "policy"), "Enforce");
        assert_string_equal(str_item(rec, "outcome"), "promoted");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rec, "reasons")), 0);
        assert_string_equal(str_item(rec, "release"), info.release);
        cJSON_Delete(rec);
}

static void record_has_null_csc_and_policy_for_unbound_function(void **state) {
        struct fixture *fx = *state;
        sg_decision d;

        build_facts(fx, SG_REASON_NONE, SIG_NONE, KEY_SAME, KEY_SAME, 0, 0, NULL, 0);
        sg_decide_ctx ctx = ctx_for(fx, FN_UNDECLARED);
        ctx.unbound_allow = true;
        assert_null(ctx.binding);
        sg_decide(&fx->facts, &ctx, &d);
        assert_string_equal(sg_outcome_name(d.outcome), "promoted");

        sg_record_info info = record_info(fx->package_digest);
        info.function = FN_UNDECLARED;
        cJSON *rec = sg_decision_record(&d, &fx->facts, &info);
        assert_non_null(rec);
        assert_record_keys_in_order(rec);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "signature")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "codeSigningConfig")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "policy")));
        assert_string_equal(str_item(rec, "outcome"), "promoted");
        cJSON_Delete(rec);
}

static void record_of_integrity_rejection_has_null_signature_for_unparseable_block(void **state) {
        struct fixture *fx = *state;
        sg_decision d;

        build_facts(fx, SG_REASON_NONE, SIG_GARBLED, KEY_PROD, KEY_SAME, NOW - HOUR, 0, NULL, 0);
        sg_decide_ctx ctx = ctx_for(fx, FN_ENFORCE);
        sg_decide(&fx->facts, &ctx, &d);
        sg_record_info info = record_info(fx->package_digest);
        cJSON *rec = sg_decision_record(&d, &fx->facts, &info);
        assert_non_null(rec);
        assert_record_keys_in_order(rec);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rec, "signature")));
        assert_string_equal(str_item(rec, "outcome"), "rejected");
        const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(rec, "reasons");
        assert_int_equal(cJSON_GetArraySize(reasons), 1);
        assert_string_equal(reasons->child->valuestring, "INTEGRITY");
        cJSON_Delete(rec);
}

int main(int argc, char **argv) {
        static const struct {
                const char *name;
                CMUnitTestFunction fn;
        } plain[] = {
                {"expired_decision_reports_gate_expiry_not_claimed_expiry", expired_decision_reports_gate_expiry_not_claimed_expiry},
                {"expiry_follows_calendar_months_of_gate_validity", expiry_follows_calendar_months_of_gate_validity},
                {"decision_is_the_same_for_the_same_facts", decision_is_the_same_for_the_same_facts},
                {"record_has_design_keys_in_order_and_null_signature_for_unsigned_package",
                 record_has_design_keys_in_order_and_null_signature_for_unsigned_package},
                {"record_reports_signature_with_gate_expiry_peer_and_release",
                 record_reports_signature_with_gate_expiry_peer_and_release},
                {"record_has_null_csc_and_policy_for_unbound_function", record_has_null_csc_and_policy_for_unbound_function},
                {"record_of_integrity_rejection_has_null_signature_for_unparseable_block",
                 record_of_integrity_rejection_has_null_signature_for_unparseable_block},
        };
        struct CMUnitTest tests[N_ROWS(rows) + N_ROWS(plain)];
        size_t n = 0;

        for (size_t i = 0; i < N_ROWS(rows); i++)
                tests[n++] = (struct CMUnitTest){rows[i].name, decide_row_gives_expected_decision, setup_row, teardown,
                                                 (void *) &rows[i]};
        for (size_t i = 0; i < N_ROWS(plain); i++)
                tests[n++] = (struct CMUnitTest){plain[i].name, plain[i].fn, setup_plain, teardown, NULL};
        if (argc > 1)
                cmocka_set_test_filter(argv[1]);
        return cmocka_run_group_tests_name("sg_decide", tests, NULL, NULL);
}
