/* sg_journal.h — the journald sender (sd-journal): one structured entry per decision (DESIGN §9)
 * and one per daemon event.
 *
 * MESSAGE_IDs are fixed forever: operators and the catalog (contrib/systemd/signgate.catalog,
 * shown by `journalctl -x`) match on them. Every entry carries SYSLOG_IDENTIFIER=signgated.
 *
 * Nothing here logs or retries. Without a journald socket, sd-journal drops entries silently and
 * the sends return 0 (ENOENT is not reported); so the daemon checks sg_journal_available() once at
 * start-up, says so, and keeps the audit file as its durable record. Other failures (a full socket
 * buffer that memfd passing cannot get round, a refused connection) come back as -errno. */
#ifndef SG_JOURNAL_H
#define SG_JOURNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#define SG_MESSAGE_PROMOTED   "9c444b10f5004e57afb59ee4fb12d679"
#define SG_MESSAGE_WARNED     "671a8ffbbf084b31be51bc66e082fee0"
#define SG_MESSAGE_REJECTED   "a5f2a1252c59449eb147f4a6a008286d"
#define SG_MESSAGE_DENIED     "6f07fe6d1a54484983f7247d12c68395" /* API authorization denied */
#define SG_MESSAGE_POLICY_BAD "a18df1bffc7243e990dd9d8f25101edb" /* policy reload failed, old policy kept */
#define SG_MESSAGE_STARTED    "ddb5dec857bb42d2b20fd7707ec63be9"
#define SG_MESSAGE_STOPPED    "4a0e31196d2f4545ac9569f312a4f964"
#define SG_MESSAGE_INTERNAL   "742e36cfcbc04555a4d4d7ecb4917095" /* INTERNAL: package kept for retry */

#define SG_JOURNAL_IDENTIFIER "signgated"
/* The most fields sg_journal_fields() fills: an iovec array this long is always enough. */
#define SG_JOURNAL_DECISION_FIELDS_MAX 18
/* The most extra fields sg_journal_send_event() takes. */
#define SG_JOURNAL_EXTRA_MAX 32

/* Is there a journald socket (/run/systemd/journal/socket, the fixed path sd-journal sends to)? */
bool sg_journal_available(void);

/* Builds the journald fields of a decision record (DESIGN §9), in this order:
 *   MESSAGE          record "message"
 *   PRIORITY         6 promoted, 4 promoted-with-warnings, 3 rejected
 *   MESSAGE_ID       SG_MESSAGE_PROMOTED / _WARNED / _REJECTED by outcome
 *   SYSLOG_IDENTIFIER signgated
 *   SIGNGATE_DECISION_ID, SIGNGATE_FUNCTION, SIGNGATE_KIND, SIGNGATE_OUTCOME, SIGNGATE_REASONS
 *   ("reasons" joined by ',', empty when there are none), SIGNGATE_SHA384 (package.sha384),
 *   SIGNGATE_PROFILE, SIGNGATE_PROFILE_VERSION, SIGNGATE_JOB_ID (the three from "signature"),
 *   SIGNGATE_CSC, SIGNGATE_SOURCE, SIGNGATE_PEER_UID (peer.uid), SIGNGATE_RELEASE, SIGNGATE_SEQ.
 * Required: "message", "decisionId", "outcome", "source" (strings). Every other field is omitted
 * when its key is null or absent: "function" (a drop whose name names no function), "kind",
 * package.sha384 (a drop that is not a file has no digest), "signature" (all three fields),
 * "codeSigningConfig", "peer", "release", "seq" (present once the record is in the audit file).
 * Fills iov[0 … *ret_n) with "KEY=value" strings that all live in *ret_buf (one allocation the
 * caller frees; iov points into it). Returns 0; -E2BIG if max is too small
 * (SG_JOURNAL_DECISION_FIELDS_MAX always suffices); -EINVAL if a required key is missing or any
 * key has the wrong type (outcome not one of the three, uid not a non-negative integer, a reason
 * not a string, …); -ENOMEM. Pure: needs no journald. */
int sg_journal_fields(const cJSON *record, struct iovec *iov, size_t max, size_t *ret_n, char **ret_buf);

/* Sends a decision record: sd_journal_sendv() of the fields above. 0 or -errno. */
int sg_journal_send_decision(const cJSON *record);

/* Sends one event: MESSAGE (printf), PRIORITY (0–7, LOG_*), MESSAGE_ID (32 lowercase hex, or NULL
 * for none), SYSLOG_IDENTIFIER=signgated, plus the extra "KEY=value" fields of the NULL-terminated
 * list extra_fields (may be NULL; at most SG_JOURNAL_EXTRA_MAX, else -E2BIG; a string without '='
 * is -EINVAL, and journald's own rules for KEY apply). 0 or -errno. */
int sg_journal_send_event(int priority, const char *message_id, const char *const *extra_fields, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

#endif
