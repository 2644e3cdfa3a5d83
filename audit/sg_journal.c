/* sg_journal.c — decision records and daemon events to journald. Contract in sg_journal.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Without this, sd-journal adds CODE_FILE/CODE_LINE/CODE_FUNC, which would name this sender for
 * every entry and say nothing about the decision or event. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "sg_common.h"
#include "sg_journal.h"

/* sd-journal always sends here; it has no environment override, so neither has this check. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

bool sg_journal_available(void) {
        struct stat st;
        return stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* One "KEY=value" to build: either a plain value, or an array of strings joined by ','. */
typedef struct {
        const char *key;
        const char *value;
        const cJSON *joined;
} field;

typedef struct {
        field f[SG_JOURNAL_DECISION_FIELDS_MAX];
        size_t n;
} field_list;

static void put(field_list *l, const char *key, const char *value, const cJSON *joined) {
        /* The list is sized for every field the record can yield; this cannot overflow. */
        if (l->n < SG_ELEMENTSOF(l->f))
                l->f[l->n++] = (field){.key = key, .value = value, .joined = joined};
}

/* A string member, or NULL when it is absent or null (optional keys). -EINVAL for another type. */
static int opt_string(const cJSON *obj, const char *key, const char **ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!v || cJSON_IsNull(v)) {
                *ret = NULL;
                return 0;
        }
        if (!cJSON_IsString(v) || !v->valuestring)
                return -EINVAL;
        *ret = v->valuestring;
        return 0;
}

static int req_string(const cJSON *obj, const char *key, const char **ret) {
        int r = opt_string(obj, key, ret);
        return r < 0 ? r : *ret ? 0 : -EINVAL;
}

/* An integral number in [min, max], printed in decimal. cJSON holds it as a double. */
static int integer_text(const cJSON *v, double min, double max, char out[24]) {
        if (!cJSON_IsNumber(v))
                return -EINVAL;
        double d = v->valuedouble;
        if (!(d >= min && d <= max) || d != (double) (uint64_t) d)
                return -EINVAL;
        (void) snprintf(out, 24, "%" PRIu64, (uint64_t) d);
        return 0;
}

int sg_journal_fields(const cJSON *record, struct iovec *iov, size_t max, size_t *ret_n, char **ret_buf) {
        static const struct {
                const char *outcome, *priority, *message_id;
        } outcomes[] = {
                {"promoted", "6", SG_MESSAGE_PROMOTED},
                {"promoted-with-warnings", "4", SG_MESSAGE_WARNED},
                {"rejected", "3", SG_MESSAGE_REJECTED},
        };
        const char *message, *id, *function, *kind, *outcome, *sha384, *csc, *source, *release;
        const char *profile = NULL, *version = NULL, *job = NULL;
        char uid[24], seq[24];
        field_list l = {.n = 0};
        size_t o;

        if (!cJSON_IsObject(record))
                return -EINVAL;
        if (req_string(record, "message", &message) < 0 || req_string(record, "decisionId", &id) < 0 ||
            opt_string(record, "function", &function) < 0 || opt_string(record, "kind", &kind) < 0 ||
            req_string(record, "outcome", &outcome) < 0 || req_string(record, "source", &source) < 0 ||
            opt_string(record, "codeSigningConfig", &csc) < 0 || opt_string(record, "release", &release) < 0)
                return -EINVAL;
        for (o = 0; o < SG_ELEMENTSOF(outcomes); o++)
                if (strcmp(outcome, outcomes[o].outcome) == 0)
                        break;
        if (o == SG_ELEMENTSOF(outcomes))
                return -EINVAL;

        const cJSON *reasons = cJSON_GetObjectItemCaseSensitive(record, "reasons");
        if (cJSON_IsNull(reasons))
                reasons = NULL;
        if (reasons && !cJSON_IsArray(reasons))
                return -EINVAL;
        const cJSON *it;
        cJSON_ArrayForEach(it, reasons) if (!cJSON_IsString(it) || !it->valuestring) return -EINVAL;

        /* A drop that is not a package at all (a FIFO, an unreadable name) has no digest, and a
         * name that is no function has no function: such keys are null and their fields omitted. */
        const cJSON *package = cJSON_GetObjectItemCaseSensitive(record, "package");
        sha384 = NULL;
        if (package && !cJSON_IsNull(package) && (!cJSON_IsObject(package) || opt_string(package, "sha384", &sha384) < 0))
                return -EINVAL;

        const cJSON *sig = cJSON_GetObjectItemCaseSensitive(record, "signature");
        if (sig && !cJSON_IsNull(sig)) {
                if (!cJSON_IsObject(sig) || req_string(sig, "profileName", &profile) < 0 ||
                    req_string(sig, "profileVersion", &version) < 0 || req_string(sig, "jobId", &job) < 0)
                        return -EINVAL;
        }

        const cJSON *peer = cJSON_GetObjectItemCaseSensitive(record, "peer");
        bool has_peer = peer && !cJSON_IsNull(peer);
        if (has_peer && (!cJSON_IsObject(peer) ||
                         integer_text(cJSON_GetObjectItemCaseSensitive(peer, "uid"), 0, UINT32_MAX, uid) < 0))
                return -EINVAL;

        const cJSON *seq_item = cJSON_GetObjectItemCaseSensitive(record, "seq");
        if (seq_item && integer_text(seq_item, 1, 9007199254740992.0 /* 2^53 */, seq) < 0)
                return -EINVAL;

        put(&l, "MESSAGE", message, NULL);
        put(&l, "PRIORITY", outcomes[o].priority, NULL);
        put(&l, "MESSAGE_ID", outcomes[o].message_id, NULL);
        put(&l, "SYSLOG_IDENTIFIER", SG_JOURNAL_IDENTIFIER, NULL);
        put(&l, "SIGNGATE_DECISION_ID", id, NULL);
        if (function)
                put(&l, "SIGNGATE_FUNCTION", function, NULL);
        if (kind)
                put(&l, "SIGNGATE_KIND", kind, NULL);
        put(&l, "SIGNGATE_OUTCOME", outcome, NULL);
        put(&l, "SIGNGATE_REASONS", NULL, reasons);
        if (sha384)
                put(&l, "SIGNGATE_SHA384", sha384, NULL);
        if (profile) {
                put(&l, "SIGNGATE_PROFILE", profile, NULL);
                put(&l, "SIGNGATE_PROFILE_VERSION", version, NULL);
                put(&l, "SIGNGATE_JOB_ID", job, NULL);
        }
        if (csc)
                put(&l, "SIGNGATE_CSC", csc, NULL);
        put(&l, "SIGNGATE_SOURCE", source, NULL);
        if (has_peer)
                put(&l, "SIGNGATE_PEER_UID", uid, NULL);
        if (release)
                put(&l, "SIGNGATE_RELEASE", release, NULL);
        if (seq_item)
                put(&l, "SIGNGATE_SEQ", seq, NULL);
        if (l.n > max)
                return -E2BIG;

        /* Sizes of strings already in memory: their sum cannot overflow size_t. */
        size_t total = 0;
        for (size_t i = 0; i < l.n; i++) {
                total += strlen(l.f[i].key) + 2; /* '=' and a NUL, so each field prints as a C string */
                if (l.f[i].value)
                        total += strlen(l.f[i].value);
                else
                        cJSON_ArrayForEach(it, l.f[i].joined) total += strlen(it->valuestring) + 1;
        }
        char *buf = malloc(total), *p = buf;
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < l.n; i++) {
                char *start = p;
                p = stpcpy(p, l.f[i].key);
                *p++ = '=';
                if (l.f[i].value)
                        p = stpcpy(p, l.f[i].value);
                else
                        cJSON_ArrayForEach(it, l.f[i].joined) {
                                if (it != l.f[i].joined->child)
                                        *p++ = ',';
                                p = stpcpy(p, it->valuestring);
                        }
                *p = '\0';
                iov[i] = (struct iovec){.iov_base = start, .iov_len = (size_t) (p - start)};
                p++;
        }
        *ret_n = l.n;
        *ret_buf = buf;
        return 0;
}

int sg_journal_send_decision(const cJSON *record) {
        struct iovec iov[SG_JOURNAL_DECISION_FIELDS_MAX];
        _cleanup_(sg_freep) char *buf = NULL;
        size_t n = 0;
        int r;

        if ((r = sg_journal_fields(record, iov, SG_ELEMENTSOF(iov), &n, &buf)) < 0)
                return r;
        r = sd_journal_sendv(iov, (int) n);
        return r < 0 ? r : 0;
}

static bool message_id_valid(const char *s) {
        if (strlen(s) != 32)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

int sg_journal_send_event(int priority, const char *message_id, const char *const *extra_fields, const char *fmt, ...) {
        struct iovec iov[4 + SG_JOURNAL_EXTRA_MAX];
        _cleanup_(sg_freep) char *text = NULL, *message = NULL;
        char prio[sizeof("PRIORITY=7")], mid[sizeof("MESSAGE_ID=") + 32];
        size_t n = 0;
        va_list ap;
        int r;

        if (priority < 0 || priority > 7 || !fmt || (message_id && !message_id_valid(message_id)))
                return -EINVAL;
        va_start(ap, fmt);
        r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0) {
                text = NULL; /* vasprintf leaves it undefined on failure */
                return -ENOMEM;
        }
        if (asprintf(&message, "MESSAGE=%s", text) < 0) {
                message = NULL;
                return -ENOMEM;
        }
        (void) snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
        iov[n++] = (struct iovec){.iov_base = message, .iov_len = strlen(message)};
        iov[n++] = (struct iovec){.iov_base = prio, .iov_len = strlen(prio)};
        if (message_id) {
                (void) snprintf(mid, sizeof(mid), "MESSAGE_ID=%s", message_id);
                iov[n++] = (struct iovec){.iov_base = mid, .iov_len = strlen(mid)};
        }
        iov[n++] = (struct iovec){.iov_base = (char *) "SYSLOG_IDENTIFIER=" SG_JOURNAL_IDENTIFIER,
                                  .iov_len = strlen("SYSLOG_IDENTIFIER=" SG_JOURNAL_IDENTIFIER)};
        for (size_t i = 0; extra_fields && extra_fields[i]; i++) {
                const char *f = extra_fields[i];
                if (i >= SG_JOURNAL_EXTRA_MAX)
                        return -E2BIG;
                if (!strchr(f, '=') || f[0] == '=')
                        return -EINVAL;
                iov[n++] = (struct iovec){.iov_base = (char *) f, .iov_len = strlen(f)};
        }
        r = sd_journal_sendv(iov, (int) n);
        return r < 0 ? r : 0;
}
