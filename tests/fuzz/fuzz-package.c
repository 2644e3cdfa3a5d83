/* fuzz-package: the bytes of a package, judged the way the gate and `signgate verify` judge them.
 *
 * One input is one archive. It goes into a memfd (sg_package_inspect reads a file descriptor
 * with pread only) and through the whole decision path: sg_package_inspect with the default
 * limits and a sink that counts what it is handed, sg_envelope_parse on a non-empty comment,
 * sg_decide against a small fixed store for each kind of binding, and sg_decision_record.
 *
 * The store (built once, in LLVMFuzzerInitialize, through the same document parsers the gate
 * uses): profile FuzzProfile made from a key generated at start-up, an Enforce and a Warn code
 * signing config that both allow it, a function bound to each, one without a config, and two
 * revocations (one signing job, and the profile from a time after FIXED_NOW).
 *
 * A fuzzed input never carries a signature made with that key, so the signature-verifying end
 * of sg_decide would go unrun. Every archive that inspects clean, has no comment and has entries
 * is therefore also signed here with sg_sign_package (a good, expired, future-dated, revoked or
 * afterwards tampered signature, as its digest picks) and judged again: the signed package must
 * keep the unsigned archive's digest, and be promoted, or rejected under Enforce for exactly
 * the expected reason.
 *
 * Besides the sanitizers, the harness aborts on broken contracts (FUZZ_CHECK): an inspect error
 * other than -EINVAL on a memfd, a rejection whose reason is not a package reason, a sink called
 * out of order or with more bytes than an entry declares, a decision record that cannot be
 * built, and the sign-then-verify round trip above. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sg_common.h"
#include "sg_decide.h"
#include "sg_package.h"
#include "sg_signature.h"
#include "sg_store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                   \
        do {                                                                    \
                if (!(cond)) {                                                  \
                        fprintf(stderr, "fuzz-package: contract broken: " __VA_ARGS__); \
                        fputc('\n', stderr);                                    \
                        abort();                                                \
                }                                                               \
        } while (0)

/* A fixed clock keeps every run of one input identical: 2030-01-01T00:00:00Z. */
#define FIXED_NOW ((int64_t) 1893456000)
#define PROFILE_NAME "FuzzProfile"
#define CSC_ENFORCE "csc-0000000000000f022"
#define CSC_WARN "csc-0000000000000f023"
#define FN_ENFORCE "fn-enforce"
#define FN_WARN "fn-warn"
#define FN_NO_CSC "fn-nocsc"
#define FN_UNDECLARED "fn-undeclared"
#define JOB_SIGNED "8d5f2a4c-3b1e-4c6d-9e7f-0a1b2c3d4e5f"
#define JOB_REVOKED "00000000-0000-4000-8000-000000000000"

static EVP_PKEY *fuzz_key;      /* private: signs in the round trip */
static char fuzz_version[11];   /* its profile version */
static sg_store *fuzz_store;

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

static void die(const char *what) {
        fprintf(stderr, "fuzz-package: setup failed: %s\n", what);
        exit(1);
}

static cJSON *parse_or_die(const char *text) {
        cJSON *j = cJSON_Parse(text);
        if (!j)
                die("a built-in document is not JSON");
        return j;
}

static void add_csc(const char *id, const char *policy) {
        char text[512];
        sg_csc c;
        sg_error err = {0};

        snprintf(text, sizeof(text),
                 "{\"CodeSigningConfigId\":\"%s\",\"AllowedPublishers\":{\"SigningProfileVersionArns\":"
                 "[\"arn:aws:signer:us-east-1:111111111111:/signing-profiles/%s/%s\"]},"
                 "\"CodeSigningPolicies\":{\"UntrustedArtifactOnDeployment\":\"%s\"}}",
                 id, PROFILE_NAME, fuzz_version, policy);
        _cleanup_(cjson_deletep) cJSON *j = parse_or_die(text);
        if (sg_csc_from_json(j, &c, &err) < 0 || sg_store_add_csc(fuzz_store, &c) < 0)
                die(err.msg[0] ? err.msg : "code signing config");
}

static void add_function(const char *name, const char *csc) {
        char text[256];
        sg_function f;
        sg_error err = {0};

        if (csc)
                snprintf(text, sizeof(text),
                         "{\"FunctionName\":\"%s\",\"CodeSigningConfigArn\":"
                         "\"arn:aws:lambda:us-east-1:111111111111:code-signing-config:%s\"}",
                         name, csc);
        else
                snprintf(text, sizeof(text), "{\"FunctionName\":\"%s\",\"CodeSigningConfigArn\":null}", name);
        _cleanup_(cjson_deletep) cJSON *j = parse_or_die(text);
        if (sg_function_from_json(j, &f, &err) < 0 || sg_store_add_function(fuzz_store, &f) < 0)
                die(err.msg[0] ? err.msg : "function");
}

static void build_store(void) {
        _cleanup_(sg_freep) char *pem = NULL;
        sg_profile p;
        sg_error err = {0};

        if (sg_key_generate(&fuzz_key) < 0 || sg_key_profile_version(fuzz_key, fuzz_version) < 0 ||
            sg_key_public_pem(fuzz_key, &pem) < 0)
                die("key");
        fuzz_store = sg_store_new();
        if (!fuzz_store)
                die("out of memory");

        /* The public profile document, as get-signing-profile prints it. */
        _cleanup_(cjson_deletep) cJSON *doc = cJSON_CreateObject();
        cJSON *vp;
        if (!doc || !cJSON_AddStringToObject(doc, "profileName", PROFILE_NAME) ||
            !cJSON_AddStringToObject(doc, "profileVersion", fuzz_version) ||
            !cJSON_AddStringToObject(doc, "platformId", SG_PLATFORM_LAMBDA_ALIAS) ||
            !(vp = cJSON_AddObjectToObject(doc, "signatureValidityPeriod")) ||
            !cJSON_AddNumberToObject(vp, "value", 135) || !cJSON_AddStringToObject(vp, "type", "MONTHS") ||
            !cJSON_AddStringToObject(doc, "publicKey", pem))
                die("out of memory");
        if (sg_profile_from_json(doc, &p, &err) < 0)
                die(err.msg);
        if (sg_store_add_profile(fuzz_store, &p) < 0) {
                sg_profile_done(&p);
                die("out of memory");
        }

        add_csc(CSC_ENFORCE, "Enforce");
        add_csc(CSC_WARN, "Warn");
        add_function(FN_ENFORCE, CSC_ENFORCE);
        add_function(FN_WARN, CSC_WARN);
        add_function(FN_NO_CSC, NULL);

        /* sg_store has no adder for revocations (only the loader makes them): fill the array
         * the way sg_store_free releases it. */
        char profile_rev[256];
        snprintf(profile_rev, sizeof(profile_rev),
                 "{\"type\":\"profile\",\"profileName\":\"" PROFILE_NAME "\",\"profileVersion\":\"%s\","
                 "\"effectiveTime\":\"2030-06-01T00:00:00Z\"}",
                 fuzz_version);
        const char *const revocations[] = {
                "{\"type\":\"signature\",\"jobId\":\"" JOB_REVOKED "\",\"reason\":\"fuzz\"}",
                profile_rev,
        };
        fuzz_store->revocations = calloc(SG_ELEMENTSOF(revocations), sizeof(*fuzz_store->revocations));
        if (!fuzz_store->revocations)
                die("out of memory");
        for (size_t i = 0; i < SG_ELEMENTSOF(revocations); i++) {
                _cleanup_(cjson_deletep) cJSON *j = parse_or_die(revocations[i]);
                if (sg_revocation_from_json(j, &fuzz_store->revocations[i], &err) < 0)
                        die(err.msg);
                fuzz_store->n_revocations++;
        }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        build_store();
        /* The store and the key live as long as the process; LeakSanitizer sees them reachable. */
        return 0;
}

/* The sink stands in for the extractor: it counts, and checks the order it is called in. */
typedef struct {
        const sg_entry *open;   /* the entry between begin and end, if any */
        uint64_t open_bytes;
        uint64_t bytes;         /* all file data handed over */
        size_t files, symlinks;
} counter;

static int on_entry_begin(void *userdata, const sg_entry *e) {
        counter *c = userdata;
        FUZZ_CHECK(!c->open, "entry '%s' begins while '%s' is open", e->name, c->open->name);
        FUZZ_CHECK(e->type != SG_ENTRY_SYMLINK, "symlink '%s' handed to on_entry_begin", e->name);
        c->open = e;
        c->open_bytes = 0;
        c->files++;
        return 0;
}

static int on_entry_data(void *userdata, const sg_entry *e, const void *buf, size_t n) {
        counter *c = userdata;
        FUZZ_CHECK(c->open == e, "data for entry '%s' outside its begin/end", e->name);
        FUZZ_CHECK(buf && n > 0 && n <= e->usize - c->open_bytes, "entry '%s': %zu more bytes after %llu of %llu",
                   e->name, n, (unsigned long long) c->open_bytes, (unsigned long long) e->usize);
        c->open_bytes += n;
        c->bytes += n;
        return 0;
}

static int on_entry_end(void *userdata, const sg_entry *e) {
        counter *c = userdata;
        FUZZ_CHECK(c->open == e, "entry '%s' ends but was not open", e->name);
        FUZZ_CHECK(c->open_bytes == e->usize, "entry '%s' ends after %llu of its %llu bytes", e->name,
                   (unsigned long long) c->open_bytes, (unsigned long long) e->usize);
        c->open = NULL;
        return 0;
}

static int on_symlink(void *userdata, const sg_entry *e) {
        counter *c = userdata;
        FUZZ_CHECK(e->type == SG_ENTRY_SYMLINK && e->link_target && strlen(e->link_target) == e->usize,
                   "on_symlink for '%s' without a checked target", e->name);
        c->symlinks++;
        return 0;
}

static int memfd_with(const void *data, size_t size) {
        int fd = memfd_create("fuzz-package", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0, "memfd_create failed");
        FUZZ_CHECK(sg_write_all(fd, data, size) == 0, "cannot fill the memfd");
        return fd;
}

/* What the gate learns about the archive at fd: *ret_pkg (NULL unless sound), and facts/env
 * filled as verify.c fills them. Returns whether env holds a parsed envelope. */
static bool inspect(int fd, const sg_limits *lim, sg_package **ret_pkg, sg_facts *facts, sg_envelope *env,
                    unsigned char whole[SG_DIGEST_LEN]) {
        counter cnt = {0};
        sg_package_sink sink = {
                .userdata = &cnt,
                .on_entry_begin = on_entry_begin,
                .on_entry_data = on_entry_data,
                .on_entry_end = on_entry_end,
                .on_symlink = on_symlink,
        };
        sg_package *pkg = NULL;
        bool have_env = false;

        memset(facts, 0, sizeof(*facts));
        facts->platform_id = SG_PLATFORM_LAMBDA;
        int r = sg_package_inspect(fd, lim, &sink, &pkg, &facts->package_error);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "sg_package_inspect returned %d (%s) on a memfd", r, strerror(-r));
        if (r == -EINVAL) {
                sg_reason why = facts->package_error.reason;
                FUZZ_CHECK(why == SG_REASON_MALFORMED || why == SG_REASON_LIMIT_EXCEEDED || why == SG_REASON_UNSAFE_CONTENT,
                           "inspect rejected with reason %s", sg_reason_name(why));
                FUZZ_CHECK(facts->package_error.msg[0], "inspect rejected without a message");
                FUZZ_CHECK(!pkg, "inspect failed but returned a package");
                uint64_t size = 0;
                FUZZ_CHECK(sg_file_sha384(fd, whole, &size) == 0, "sg_file_sha384 failed on a memfd");
                facts->digest = whole;
                facts->canonical_size = size;
        } else {
                FUZZ_CHECK(pkg && !cnt.open, "inspect succeeded with entry '%s' still open", cnt.open ? cnt.open->name : "?");
                FUZZ_CHECK(cnt.bytes <= pkg->inflated_total, "the sink got %llu bytes, %llu were inflated",
                           (unsigned long long) cnt.bytes, (unsigned long long) pkg->inflated_total);
                FUZZ_CHECK(pkg->canonical_size == pkg->eocd_offset + 22 &&
                                   pkg->file_size == pkg->canonical_size + pkg->comment_len,
                           "canonical size %llu, EOCD at %llu, file %llu, comment %zu",
                           (unsigned long long) pkg->canonical_size, (unsigned long long) pkg->eocd_offset,
                           (unsigned long long) pkg->file_size, pkg->comment_len);
                facts->digest = pkg->digest;
                facts->canonical_size = pkg->canonical_size;
                facts->has_block = pkg->comment_len > 0;
                if (facts->has_block) {
                        r = sg_envelope_parse(pkg->comment, pkg->comment_len, env, &facts->envelope_error);
                        FUZZ_CHECK(r == 0 || r == -EINVAL, "sg_envelope_parse returned %d", r);
                        FUZZ_CHECK(r == 0 || facts->envelope_error.reason == SG_REASON_INTEGRITY,
                                   "the envelope was refused with reason %s", sg_reason_name(facts->envelope_error.reason));
                        have_env = r == 0;
                }
        }
        facts->envelope = have_env ? env : NULL;
        *ret_pkg = pkg;
        return have_env;
}

static sg_decision decide(const sg_facts *facts, const char *function, bool unbound_allow, uint64_t size) {
        static const unsigned char zero[SG_DIGEST_LEN];
        sg_decide_ctx ctx = {
                .function = function,
                .binding = sg_store_find_function(fuzz_store, function),
                .store = fuzz_store,
                .unbound_allow = unbound_allow,
                .now = FIXED_NOW,
                .first_seen = FIXED_NOW,
        };
        sg_decision d;
        sg_decide(facts, &ctx, &d);
        /* Promoted means no reasons; a warning or a rejection names at least one. */
        FUZZ_CHECK(d.n_reasons <= SG_MAX_REASONS && (d.outcome == SG_OUTCOME_PROMOTED) == (d.n_reasons == 0),
                   "%s: outcome %s with %zu reasons", function, sg_outcome_name(d.outcome), d.n_reasons);
        FUZZ_CHECK(memchr(d.message, '\0', sizeof(d.message)) && d.message[0], "%s: no decision message", function);

        sg_record_info info = {
                .time = FIXED_NOW,
                .decision_id = JOB_SIGNED,
                .kind = "function",
                .function = function,
                .source = "verify",
                .package_name = "fuzz.zip",
                .package_size = size,
                .package_sha384 = facts->digest ? facts->digest : zero,
        };
        cJSON *rec = sg_decision_record(&d, facts, &info);
        FUZZ_CHECK(rec, "%s: sg_decision_record returned NULL (its contract: only when out of memory); decision: %s",
                   function, d.message);
        cJSON_Delete(rec);
        return d;
}

/* What the harness signs, and what the gate must then decide under Enforce and under Warn. The
 * archive's digest picks the case, so one input always takes the same one. */
typedef enum { SIGNED_GOOD, SIGNED_EXPIRED, SIGNED_IN_FUTURE, SIGNED_BY_REVOKED_JOB, SIGNED_TAMPERED, N_SIGNED } signed_case;

static const struct {
        const char *name;
        int64_t signed_at;      /* relative to FIXED_NOW */
        const char *job;
        sg_reason reason;       /* NONE: promoted */
} signed_cases[N_SIGNED] = {
        [SIGNED_GOOD] = {"a good signature", -86400, JOB_SIGNED, SG_REASON_NONE},
        /* 12 years: past the profile's 135 months. */
        [SIGNED_EXPIRED] = {"an expired signature", -12 * 365 * 86400LL, JOB_SIGNED, SG_REASON_EXPIRED},
        [SIGNED_IN_FUTURE] = {"a signature from the future", 3600, JOB_SIGNED, SG_REASON_NOT_YET_VALID},
        [SIGNED_BY_REVOKED_JOB] = {"a revoked signing job", -86400, JOB_REVOKED, SG_REASON_REVOKED},
        /* The signature's last byte flipped after parsing: the ECDSA check must fail. */
        [SIGNED_TAMPERED] = {"a tampered signature", -86400, JOB_SIGNED, SG_REASON_INTEGRITY},
};

static bool has_reason(const sg_decision *d, sg_reason r) {
        for (size_t i = 0; i < d->n_reasons; i++)
                if (d->reasons[i] == r)
                        return true;
        return false;
}

/* Signs the clean, unsigned archive at fd with the store's profile, judges the result, and
 * checks that the gate decides on the signer's output exactly as DESIGN §5 says. */
static void sign_and_judge(int fd, const sg_limits *lim, const sg_package *unsigned_pkg) {
        signed_case c = (signed_case) (unsigned_pkg->digest[0] % N_SIGNED);
        sg_statement st = {0};
        sg_error err = {0};
        snprintf(st.subject_name, sizeof(st.subject_name), "fuzz.zip");
        snprintf(st.platform_id, sizeof(st.platform_id), "%s", SG_PLATFORM_LAMBDA);
        snprintf(st.profile_name, sizeof(st.profile_name), "%s", PROFILE_NAME);
        snprintf(st.profile_version, sizeof(st.profile_version), "%s", fuzz_version);
        snprintf(st.job_id, sizeof(st.job_id), "%s", signed_cases[c].job);
        st.signed_at = FIXED_NOW + signed_cases[c].signed_at;
        st.expires_at = st.signed_at + 86400;

        _cleanup_(sg_closep) int out = memfd_create("fuzz-package-signed", MFD_CLOEXEC);
        FUZZ_CHECK(out >= 0, "memfd_create failed");
        int r = sg_sign_package(fd, out, lim, &st, fuzz_key, &err);
        /* The signer inspects again and may refuse what it will not sign; it must not fail otherwise. */
        FUZZ_CHECK(r == 0 || r == -EINVAL, "sg_sign_package returned %d (%s)", r, strerror(-r));
        if (r < 0)
                return;
        FUZZ_CHECK(memcmp(st.digest, unsigned_pkg->digest, SG_DIGEST_LEN) == 0 && st.size == unsigned_pkg->canonical_size,
                   "the signer signed another digest than inspect computed");

        _cleanup_(sg_package_freep) sg_package *pkg = NULL;
        sg_facts facts;
        sg_envelope env = {0};
        unsigned char whole[SG_DIGEST_LEN];
        bool have_env = inspect(out, lim, &pkg, &facts, &env, whole);
        FUZZ_CHECK(pkg, "the gate rejects the package signgate just signed: %s (%s)", facts.package_error.msg,
                   sg_reason_name(facts.package_error.reason));
        FUZZ_CHECK(have_env, "the signature block signgate wrote does not parse: %s", facts.envelope_error.msg);
        FUZZ_CHECK(memcmp(pkg->digest, unsigned_pkg->digest, SG_DIGEST_LEN) == 0 &&
                           pkg->canonical_size == unsigned_pkg->canonical_size,
                   "signing changed the package digest");
        if (c == SIGNED_TAMPERED)
                env.sig[env.sig_len - 1] ^= 1;

        sg_reason want = signed_cases[c].reason;
        sg_decision enforce = decide(&facts, FN_ENFORCE, false, pkg->file_size);
        sg_decision warn = decide(&facts, FN_WARN, false, pkg->file_size);
        if (want == SG_REASON_NONE) {
                FUZZ_CHECK(enforce.outcome == SG_OUTCOME_PROMOTED && warn.outcome == SG_OUTCOME_PROMOTED,
                           "%s by the trusted profile is not promoted: %s", signed_cases[c].name, enforce.message);
        } else {
                /* INTEGRITY is not overridable: Warn rejects it too. */
                sg_outcome warn_want = sg_reason_overridable(want) ? SG_OUTCOME_PROMOTED_WITH_WARNINGS : SG_OUTCOME_REJECTED;
                FUZZ_CHECK(enforce.outcome == SG_OUTCOME_REJECTED && has_reason(&enforce, want) &&
                                   warn.outcome == warn_want && has_reason(&warn, want),
                           "%s is not decided %s: Enforce says '%s', Warn says '%s'", signed_cases[c].name,
                           sg_reason_name(want), enforce.message, warn.message);
        }
        sg_envelope_done(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const functions[] = {FN_ENFORCE, FN_WARN, FN_NO_CSC, FN_UNDECLARED};
        _cleanup_(sg_package_freep) sg_package *pkg = NULL;
        _cleanup_(sg_closep) int fd = memfd_with(data, size);
        sg_limits lim;
        sg_facts facts;
        sg_envelope env = {0};
        unsigned char whole[SG_DIGEST_LEN];

        sg_limits_default(&lim);
        bool have_env = inspect(fd, &lim, &pkg, &facts, &env, whole);
        for (size_t i = 0; i < SG_ELEMENTSOF(functions); i++)
                (void) decide(&facts, functions[i], false, size);
        (void) decide(&facts, FN_UNDECLARED, true, size);
        if (have_env)
                sg_envelope_done(&env);

        if (pkg && pkg->comment_len == 0 && pkg->n_entries > 0)
                sign_and_judge(fd, &lim, pkg);
        return 0;
}
