/* fuzz-envelope: signature blocks (the EOCD comment of a signed package, or a Blob's FILE.sig).
 *
 * Each input is used twice:
 *  1. as a signature block, straight into sg_envelope_parse, and when it parses into
 *     sg_envelope_verify with a key generated at start-up;
 *  2. as the signed statement itself: the harness wraps the bytes into an otherwise
 *     well-formed block (payload = base64 of the input, keyid = the NAME/VERSION the input's
 *     predicate claims, a signature that does not verify). Base64 would otherwise hide the
 *     statement's JSON from the mutator, and the statement is where most of the checks are.
 * Whatever parses is then judged by sg_decide against a small store (a Warn code signing config
 * for a function, a signing-job revocation and a profile revocation) and rendered by
 * sg_decision_record, as the gate does for every package it sees.
 *
 * Besides the sanitizers, the harness aborts on broken contracts (FUZZ_CHECK): a parse error
 * whose reason is not INTEGRITY, a verification result other than 0 or -EBADMSG, and a decision
 * record that cannot be built (sg_decision_record may return NULL only when out of memory). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sg_common.h"
#include "sg_decide.h"
#include "sg_signature.h"
#include "sg_store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                    \
        do {                                                                     \
                if (!(cond)) {                                                   \
                        fprintf(stderr, "fuzz-envelope: contract broken: " __VA_ARGS__); \
                        fputc('\n', stderr);                                     \
                        abort();                                                 \
                }                                                                \
        } while (0)

/* 2030-01-01T00:00:00Z: a fixed clock, so one input always takes one path. */
#define FIXED_NOW ((int64_t) 1893456000)
#define FUNCTION "fn-warn"
#define CSC_WARN "csc-0000000000000f023"
/* The profile the seeds' statements name; revoked from 2024 on. No key is registered for it,
 * so the decision takes the "unknown to the gate" path, which still checks times and
 * revocations. */
#define SEED_PROFILE "FuzzProfile/aaaaaaaaaa"

static EVP_PKEY *fuzz_key;
static sg_store *fuzz_store;

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

static void die(const char *what) {
        fprintf(stderr, "fuzz-envelope: setup failed: %s\n", what);
        exit(1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        static const char *const csc =
                "{\"CodeSigningConfigId\":\"" CSC_WARN "\",\"AllowedPublishers\":{\"SigningProfileVersionArns\":[\"" SEED_PROFILE
                "\"]},\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"Warn\"}}";
        static const char *const function =
                "{\"FunctionName\":\"" FUNCTION "\",\"CodeSigningConfigArn\":\"" CSC_WARN "\"}";
        static const char *const revocations[] = {
                "{\"type\":\"signature\",\"jobId\":\"00000000-0000-4000-8000-000000000000\"}",
                "{\"type\":\"profile\",\"profileName\":\"FuzzProfile\",\"profileVersion\":\"aaaaaaaaaa\","
                "\"effectiveTime\":\"2024-01-01T00:00:00Z\"}",
        };
        sg_error err = {0};
        sg_csc c;
        sg_function f;

        (void) argc;
        (void) argv;
        if (sg_key_generate(&fuzz_key) < 0 || !(fuzz_store = sg_store_new()))
                die("key or store");
        _cleanup_(cjson_deletep) cJSON *cj = cJSON_Parse(csc);
        _cleanup_(cjson_deletep) cJSON *fj = cJSON_Parse(function);
        if (sg_csc_from_json(cj, &c, &err) < 0 || sg_store_add_csc(fuzz_store, &c) < 0 ||
            sg_function_from_json(fj, &f, &err) < 0 || sg_store_add_function(fuzz_store, &f) < 0)
                die(err.msg);
        /* sg_store has no adder for revocations: fill the array the way sg_store_free frees it. */
        fuzz_store->revocations = calloc(SG_ELEMENTSOF(revocations), sizeof(*fuzz_store->revocations));
        if (!fuzz_store->revocations)
                die("out of memory");
        for (size_t i = 0; i < SG_ELEMENTSOF(revocations); i++) {
                _cleanup_(cjson_deletep) cJSON *j = cJSON_Parse(revocations[i]);
                if (sg_revocation_from_json(j, &fuzz_store->revocations[i], &err) < 0)
                        die(err.msg);
                fuzz_store->n_revocations++;
        }
        return 0;
}

/* Judges a parsed envelope as the facts of a package whose digest and size are the signed ones
 * (so the decision goes past the digest comparison), then builds its record. */
static void judge(const sg_envelope *env) {
        sg_facts facts = {
                .digest = env->st.digest,
                .canonical_size = env->st.size,
                .platform_id = SG_PLATFORM_LAMBDA,
                .has_block = true,
                .envelope = env,
        };
        sg_decide_ctx ctx = {
                .function = FUNCTION,
                .binding = sg_store_find_function(fuzz_store, FUNCTION),
                .store = fuzz_store,
                .now = FIXED_NOW,
                .first_seen = FIXED_NOW,
        };
        sg_record_info info = {
                .time = FIXED_NOW,
                .decision_id = "00000000-0000-4000-8000-000000000001",
                .kind = "function",
                .function = FUNCTION,
                .source = "verify",
                .package_name = "fuzz.zip",
                .package_size = env->st.size,
                .package_sha384 = env->st.digest,
        };
        sg_decision d;

        sg_decide(&facts, &ctx, &d);
        cJSON *rec = sg_decision_record(&d, &facts, &info);
        FUZZ_CHECK(rec, "sg_decision_record returned NULL (its contract: only when out of memory) for "
                        "signedAt %lld, expiresAt %lld; decision: %s",
                   (long long) env->st.signed_at, (long long) d.expires_at, d.message);
        cJSON_Delete(rec);
}

static void parse_block(const char *block, size_t len) {
        sg_envelope env = {0};
        sg_error err = {0};

        int r = sg_envelope_parse(block, len, &env, &err);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "sg_envelope_parse returned %d", r);
        if (r < 0) {
                FUZZ_CHECK(err.reason == SG_REASON_INTEGRITY && err.msg[0], "a block refused with reason %s",
                           sg_reason_name(err.reason));
                return;
        }
        FUZZ_CHECK(env.pae && env.sig && strlen(env.keyid) <= SG_KEYID_MAX, "a parsed envelope lacks its parts");
        r = sg_envelope_verify(&env, fuzz_key);
        FUZZ_CHECK(r == 0 || r == -EBADMSG, "sg_envelope_verify returned %d", r);
        r = sg_envelope_matches(&env, env.st.digest, env.st.size, SG_PLATFORM_LAMBDA, &err);
        FUZZ_CHECK(r == 0 || (r == -EINVAL && err.reason == SG_REASON_INTEGRITY), "sg_envelope_matches returned %d", r);
        judge(&env);
        sg_envelope_done(&env);
}

/* keyid for a statement: predicate.profileName "/" predicate.profileVersion when both are
 * short strings, so that a statement the mutator keeps consistent also passes the keyid check. */
static void claimed_keyid(const uint8_t *data, size_t size, char *buf, size_t len) {
        _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLength((const char *) data, size);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "predicate");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "profileName");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "profileVersion");

        if (cJSON_IsString(n) && cJSON_IsString(v))
                snprintf(buf, len, "%.64s/%.10s", n->valuestring, v->valuestring);
        else
                snprintf(buf, len, "%s", SEED_PROFILE);
}

static void parse_statement(const uint8_t *data, size_t size) {
        _cleanup_(sg_freep) char *p64 = sg_base64_encode(data, size);
        _cleanup_(cjson_deletep) cJSON *env = cJSON_CreateObject();
        _cleanup_(sg_freep) char *json = NULL, *block = NULL;
        char keyid[SG_KEYID_MAX + 8];
        cJSON *sigs, *one;

        claimed_keyid(data, size, keyid, sizeof(keyid));
        /* "MEQC" decodes to the start of a DER sequence that then ends too soon: parsed, never valid. */
        if (!p64 || !env || !cJSON_AddStringToObject(env, "payloadType", SG_PAYLOAD_TYPE) ||
            !cJSON_AddStringToObject(env, "payload", p64) || !(sigs = cJSON_AddArrayToObject(env, "signatures")) ||
            !(one = cJSON_CreateObject()) || !cJSON_AddItemToArray(sigs, one) ||
            !cJSON_AddStringToObject(one, "keyid", keyid) || !cJSON_AddStringToObject(one, "sig", "MEQC") ||
            !(json = cJSON_PrintUnformatted(env)))
                abort(); /* out of memory: libFuzzer's malloc limit reports it */
        size_t mlen = strlen(SG_SIGNATURE_MAGIC), jlen = strlen(json);
        block = malloc(mlen + jlen);
        if (!block)
                abort();
        memcpy(block, SG_SIGNATURE_MAGIC, mlen);
        memcpy(block + mlen, json, jlen);
        parse_block(block, mlen + jlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* libFuzzer hands over an exact-size heap copy: reading past its end is an ASan report. */
        parse_block((const char *) data, size);
        parse_statement(data, size);
        return 0;
}
