#include "sg_decide.h"

#include <stdio.h>
#include <string.h>

const char *sg_outcome_name(sg_outcome o) {
        switch (o) {
        case SG_OUTCOME_PROMOTED:
                return "promoted";
        case SG_OUTCOME_PROMOTED_WITH_WARNINGS:
                return "promoted-with-warnings";
        default:
                return "rejected";
        }
}

static void add_reason(sg_decision *d, sg_reason r) {
        for (size_t i = 0; i < d->n_reasons; i++)
                if (d->reasons[i] == r)
                        return;
        if (d->n_reasons < SG_MAX_REASONS)
                d->reasons[d->n_reasons++] = r;
}

static void reject(sg_decision *d, sg_reason r, const char *function, const char *detail) {
        d->outcome = SG_OUTCOME_REJECTED;
        d->n_reasons = 0;
        add_reason(d, r);
        snprintf(d->message, sizeof(d->message), "Rejected the package for %s: %s (%s).", function, detail,
                 sg_reason_name(r));
}

static bool csc_allows(const sg_csc *csc, const char *name, const char *version) {
        char arn[SG_PROFILE_ARN_MAX + 1];
        snprintf(arn, sizeof(arn), "%s/%s", name, version);
        for (size_t i = 0; i < csc->n_publishers; i++)
                if (strcmp(csc->publishers[i], arn) == 0)
                        return true;
        return false;
}

static bool is_revoked(const sg_store *s, const sg_statement *st, int64_t first_seen, char *why, size_t len) {
        for (size_t i = 0; i < s->n_revocations; i++) {
                const sg_revocation *v = &s->revocations[i];
                if (v->type == SG_REVOKE_SIGNATURE && strcmp(v->job_id, st->job_id) == 0) {
                        snprintf(why, len, "signing job %s is revoked", st->job_id);
                        return true;
                }
                /* signedAt is only the signer's claim, and a stolen key can backdate it; the
                 * gate's own first sighting of these bytes cannot be. */
                int64_t seen = st->signed_at > first_seen ? st->signed_at : first_seen;
                if (v->type == SG_REVOKE_PROFILE && strcmp(v->profile_name, st->profile_name) == 0 &&
                    strcmp(v->profile_version, st->profile_version) == 0 && v->effective_time <= seen) {
                        char t[SG_TIME_LEN + 1] = "?";
                        (void) sg_time_format(v->effective_time, t);
                        snprintf(why, len, "profile %s/%s is revoked from %s", st->profile_name, st->profile_version, t);
                        return true;
                }
        }
        return false;
}

void sg_decide(const sg_facts *facts, const sg_decide_ctx *ctx, sg_decision *d) {
        const char *fn = ctx->function;
        const sg_envelope *env = facts->envelope;
        char detail[512];
        sg_error e = {0};

        memset(d, 0, sizeof(*d));
        if (facts->package_error.reason != SG_REASON_NONE) {
                reject(d, facts->package_error.reason, fn, facts->package_error.msg);
                return;
        }
        if (facts->has_block && !env) {
                reject(d, SG_REASON_INTEGRITY, fn, facts->envelope_error.msg);
                return;
        }
        if (env) {
                d->expires_at = env->st.expires_at;
                if (sg_envelope_matches(env, facts->digest, facts->canonical_size, facts->platform_id, &e) < 0) {
                        reject(d, SG_REASON_INTEGRITY, fn, e.msg);
                        return;
                }
                d->profile = sg_store_find_profile(ctx->store, env->st.profile_name, env->st.profile_version);
                /* A profile signs for its own platform only: a Blob profile's key must not vouch
                 * for Lambda code, whatever its statement claims. */
                if (d->profile && strcmp(d->profile->platform_id, env->st.platform_id) != 0) {
                        snprintf(detail, sizeof(detail), "profile %s signs for %s, but the signature claims %s",
                                 env->keyid, d->profile->platform_id, env->st.platform_id);
                        reject(d, SG_REASON_INTEGRITY, fn, detail);
                        return;
                }
                if (d->profile && sg_envelope_verify(env, d->profile->key) < 0) {
                        snprintf(detail, sizeof(detail), "the signature does not verify with the key of profile %s",
                                 env->keyid);
                        reject(d, SG_REASON_INTEGRITY, fn, detail);
                        return;
                }
        }

        const sg_function *b = ctx->binding;
        const sg_csc *csc = b && b->csc_id[0] ? sg_store_find_csc(ctx->store, b->csc_id) : NULL;
        if (b && b->csc_id[0] && !csc) {
                /* The store loader refuses dangling references; this guards a hand-built store. */
                snprintf(detail, sizeof(detail), "its code signing config %s does not exist", b->csc_id);
                reject(d, SG_REASON_UNKNOWN_FUNCTION, fn, detail);
                return;
        }
        if (!csc) {
                if (!ctx->unbound_allow) {
                        snprintf(detail, sizeof(detail), "%s and unboundFunctions is reject",
                                 b ? "it has no code signing config" : "it is not declared at the gate");
                        reject(d, SG_REASON_UNKNOWN_FUNCTION, fn, detail);
                        return;
                }
                d->outcome = SG_OUTCOME_PROMOTED;
                snprintf(d->message, sizeof(d->message),
                         "Promoted the package for %s without signature checks: it has no code signing config and unboundFunctions is allow.",
                         fn);
                return;
        }
        d->csc = csc;

        /* The overridable reasons are all collected: an operator reading a Warn decision sees
         * every problem at once. The first one found gives the message. */
        char first[512] = "";
        if (!env) {
                add_reason(d, SG_REASON_UNSIGNED);
                snprintf(first, sizeof(first), "the package is not signed");
        } else {
                const sg_statement *st = &env->st;
                if (!d->profile || !csc_allows(csc, st->profile_name, st->profile_version)) {
                        add_reason(d, SG_REASON_UNTRUSTED_PUBLISHER);
                        snprintf(first, sizeof(first), "profile %s is %s", env->keyid,
                                 d->profile ? "not an allowed publisher of its code signing config"
                                            : "unknown to the gate");
                }
                if (d->profile) {
                        int64_t exp;
                        if (sg_time_add_period(st->signed_at, d->profile->validity_value, d->profile->validity_unit, &exp) == 0) {
                                d->expires_at = exp;
                                if (ctx->now >= exp) {
                                        add_reason(d, SG_REASON_EXPIRED);
                                        if (!first[0]) {
                                                char t[SG_TIME_LEN + 1] = "?";
                                                (void) sg_time_format(exp, t);
                                                snprintf(first, sizeof(first), "the signature expired at %s", t);
                                        }
                                }
                        }
                }
                if (st->signed_at > ctx->now + SG_CLOCK_SKEW_SECONDS) {
                        add_reason(d, SG_REASON_NOT_YET_VALID);
                        if (!first[0])
                                snprintf(first, sizeof(first), "the signature claims a signing time in the future");
                }
                char why[256];
                if (is_revoked(ctx->store, st, ctx->first_seen, why, sizeof(why))) {
                        add_reason(d, SG_REASON_REVOKED);
                        if (!first[0])
                                snprintf(first, sizeof(first), "%s", why);
                }
        }

        if (d->n_reasons == 0) {
                d->outcome = SG_OUTCOME_PROMOTED;
                snprintf(d->message, sizeof(d->message), "Promoted the package for %s, signed by %s (job %s).", fn,
                         env->keyid, env->st.job_id);
                return;
        }
        char codes[128] = "";
        for (size_t i = 0; i < d->n_reasons; i++) {
                size_t l = strlen(codes);
                snprintf(codes + l, sizeof(codes) - l, "%s%s", i ? ", " : "", sg_reason_name(d->reasons[i]));
        }
        if (csc->policy == SG_POLICY_WARN) {
                d->outcome = SG_OUTCOME_PROMOTED_WITH_WARNINGS;
                snprintf(d->message, sizeof(d->message), "Promoted the package for %s with warnings under Warn policy: %s (%s).",
                         fn, first, codes);
        } else {
                d->outcome = SG_OUTCOME_REJECTED;
                snprintf(d->message, sizeof(d->message), "Rejected the package for %s under Enforce policy: %s (%s).", fn,
                         first, codes);
        }
}

cJSON *sg_decision_record(const sg_decision *d, const sg_facts *facts, const sg_record_info *info) {
        char t[SG_TIME_LEN + 1], hex[SG_DIGEST_HEX_LEN + 1];
        cJSON *j = cJSON_CreateObject(), *x;
        const sg_envelope *env = facts->envelope;

        if (!j || sg_time_format(info->time, t) < 0)
                goto fail;
        if (!cJSON_AddStringToObject(j, "time", t) || !cJSON_AddStringToObject(j, "decisionId", info->decision_id) ||
            !cJSON_AddStringToObject(j, "kind", info->kind) ||
            !(info->function ? cJSON_AddStringToObject(j, "function", info->function) : cJSON_AddNullToObject(j, "function")) ||
            !cJSON_AddStringToObject(j, "source", info->source))
                goto fail;
        if (info->has_peer) {
                if (!(x = cJSON_AddObjectToObject(j, "peer")) || !cJSON_AddNumberToObject(x, "uid", info->uid) ||
                    !cJSON_AddNumberToObject(x, "gid", info->gid) ||
                    !(info->pid > 0 ? cJSON_AddNumberToObject(x, "pid", info->pid) : cJSON_AddNullToObject(x, "pid")))
                        goto fail;
        } else if (!cJSON_AddNullToObject(j, "peer"))
                goto fail;
        sg_hex_encode(info->package_sha384, SG_DIGEST_LEN, hex);
        if (!(x = cJSON_AddObjectToObject(j, "package")) || !cJSON_AddStringToObject(x, "name", info->package_name) ||
            !cJSON_AddNumberToObject(x, "size", (double) info->package_size) || !cJSON_AddStringToObject(x, "sha384", hex))
                goto fail;
        /* The signature is reported only once its block parsed; the INTEGRITY message says why not. */
        if (env) {
                char sa[SG_TIME_LEN + 1], ea[SG_TIME_LEN + 1];
                if (sg_time_format(env->st.signed_at, sa) < 0 || sg_time_format(d->expires_at, ea) < 0 ||
                    !(x = cJSON_AddObjectToObject(j, "signature")) ||
                    !cJSON_AddStringToObject(x, "profileName", env->st.profile_name) ||
                    !cJSON_AddStringToObject(x, "profileVersion", env->st.profile_version) ||
                    !cJSON_AddStringToObject(x, "jobId", env->st.job_id) || !cJSON_AddStringToObject(x, "signedAt", sa) ||
                    !cJSON_AddStringToObject(x, "expiresAt", ea))
                        goto fail;
        } else if (!cJSON_AddNullToObject(j, "signature"))
                goto fail;
        if (d->csc) {
                if (!cJSON_AddStringToObject(j, "codeSigningConfig", d->csc->id) ||
                    !cJSON_AddStringToObject(j, "policy", sg_untrusted_policy_name(d->csc->policy)))
                        goto fail;
        } else if (!cJSON_AddNullToObject(j, "codeSigningConfig") || !cJSON_AddNullToObject(j, "policy"))
                goto fail;
        if (!cJSON_AddStringToObject(j, "outcome", sg_outcome_name(d->outcome)) || !(x = cJSON_AddArrayToObject(j, "reasons")))
                goto fail;
        for (size_t i = 0; i < d->n_reasons; i++) {
                cJSON *s = cJSON_CreateString(sg_reason_name(d->reasons[i]));
                if (!s || !cJSON_AddItemToArray(x, s))
                        goto fail;
        }
        if (!cJSON_AddStringToObject(j, "message", d->message))
                goto fail;
        if (info->release ? !cJSON_AddStringToObject(j, "release", info->release) : !cJSON_AddNullToObject(j, "release"))
                goto fail;
        return j;
fail:
        cJSON_Delete(j);
        return NULL;
}
