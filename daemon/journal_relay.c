/* journal_relay.c — decisions to journald in audit order, across a journald outage. The
 * contract is in journal_relay.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "gate.h"
#include "sg_journal.h"

#define REPLAYED_FIELD "SIGNGATE_REPLAYED=1"

/* sg_audit_read() stops with these when the relay, not the reader, ends a pass. */
enum { STOP_BATCH = 1, STOP_JOURNALD = 2 };

static const char *why_unsent(int r) { return r == -ENOENT ? "no journald socket" : strerror(-r); }

/* Audit lines that are not decisions (policy changes, denied requests) make no decision entry. */
static bool is_decision(const cJSON *record) {
        return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(record, "decisionId")) &&
               cJSON_IsString(cJSON_GetObjectItemCaseSensitive(record, "outcome"));
}

/* Sends one decision entry. Returns 0 or -errno; *ret_bad_record tells that the record, not
 * journald, was the problem (sg_journal_fields() refused it), so trying again would not help. */
static int send_record(const cJSON *record, bool replayed, bool *ret_bad_record) {
        struct iovec iov[SG_JOURNAL_DECISION_FIELDS_MAX + 1];
        _cleanup_(sg_freep) char *buf = NULL;
        size_t n = 0;
        int r;

        *ret_bad_record = false;
        if ((r = sg_journal_fields(record, iov, SG_JOURNAL_DECISION_FIELDS_MAX, &n, &buf)) < 0) {
                *ret_bad_record = r != -ENOMEM;
                return r;
        }
        if (replayed)
                iov[n++] = (struct iovec){.iov_base = (char *) REPLAYED_FIELD, .iov_len = strlen(REPLAYED_FIELD)};
        /* sd-journal drops an entry without a word when the socket is missing (it returns 0 for
         * ENOENT), which would lose exactly the entries this relay exists for: so it asks first.
         * A socket removed between the two calls still loses one entry; a stale socket that
         * nobody listens on is ECONNREFUSED and is seen. */
        if (!sg_journal_available())
                return -ENOENT;
        r = sd_journal_sendv(iov, (int) n);
        return r < 0 ? r : 0;
}

/* A record sg_journal_fields() refused: retrying would not help, so it is said once. */
static void not_an_entry(uint64_t seq, int r) {
        fprintf(stderr, "signgated: decision seq %" PRIu64 " cannot be a journald entry (%s); it is only in the audit file\n",
                seq, strerror(-r));
}

static void on_retry(uv_timer_t *t);

static void schedule(gate *g) {
        if (uv_is_closing((uv_handle_t *) &g->relay.timer))
                return; /* the loop is draining: gate_journal_relay_finish() makes the last attempt */
        (void) uv_timer_start(&g->relay.timer, on_retry, g->relay.delay_ms, 0);
}

static void outage_begin(gate *g, uint64_t seq, int error) {
        gate_journal_relay *jr = &g->relay;

        /* Field by field: the timer is a live libuv handle and is not to be copied. */
        jr->unsent = jr->outage_from = seq;
        jr->outage_ms = uv_now(g->loop);
        jr->replayed = jr->lost = 0;
        jr->delay_ms = GATE_RELAY_RETRY_MIN_MS;
        jr->read_failed = false;
        /* stderr, not journald: journald is what just failed. */
        fprintf(stderr,
                "signgated: journald did not take decision seq %" PRIu64 " (%s); decisions stay in the audit file "
                "and are sent to journald in order, marked SIGNGATE_REPLAYED=1, once it is back\n",
                seq, why_unsent(error));
        schedule(g);
}

static uint64_t audit_next_seq(gate *g) {
        uv_mutex_lock(&g->audit_lock);
        uint64_t next = sg_audit_next_seq(g->audit);
        uv_mutex_unlock(&g->audit_lock);
        return next;
}

static void caught_up(gate *g) {
        gate_journal_relay *jr = &g->relay;
        uv_update_time(g->loop); /* also called after the loop ended */
        /* replay() ends with unsent at the end of the file it read */
        uint64_t ms = uv_now(g->loop) - jr->outage_ms, last = jr->unsent - 1;
        char f_count[64], f_first[64], f_last[64], f_ms[64], f_lost[64], lost[160] = "";

        (void) snprintf(f_count, sizeof(f_count), "SIGNGATE_REPLAYED_COUNT=%" PRIu64, jr->replayed);
        (void) snprintf(f_first, sizeof(f_first), "SIGNGATE_REPLAYED_FIRST_SEQ=%" PRIu64, jr->outage_from);
        (void) snprintf(f_last, sizeof(f_last), "SIGNGATE_REPLAYED_LAST_SEQ=%" PRIu64, last);
        (void) snprintf(f_ms, sizeof(f_ms), "SIGNGATE_OUTAGE_MSEC=%" PRIu64, ms);
        (void) snprintf(f_lost, sizeof(f_lost), "SIGNGATE_REPLAY_LOST=%" PRIu64, jr->lost);
        if (jr->lost > 0)
                (void) snprintf(lost, sizeof(lost),
                                "; %" PRIu64 " audit record(s) could not be read back (rotated out of the kept files, "
                                "or damaged) and were not replayed",
                                jr->lost);
        const char *const fields[] = {f_count, f_first, f_last, f_ms, f_lost, NULL};
        char msg[512];
        (void) snprintf(msg, sizeof(msg),
                        "journald is back after an outage of %" PRIu64 ".%03" PRIu64 " s: replayed %" PRIu64
                        " decision(s) (audit seq %" PRIu64 "–%" PRIu64 ") from the audit file%s",
                        ms / 1000, ms % 1000, jr->replayed, jr->outage_from, last, lost);
        (void) sg_journal_send_event(LOG_NOTICE, NULL, fields, "%s", msg);
        if (g->foreground)
                fprintf(stderr, "signgated: %s\n", msg);
        /* Records committed while the replay read them may still reach the relay live: they
         * were sent already. */
        jr->live_from = jr->unsent;
        jr->unsent = 0;
}

typedef struct {
        gate *g;
        size_t sent;
        int error; /* journald's, when a send failed */
} pass;

static int on_record(uint64_t seq, const cJSON *record, void *userdata) {
        pass *p = userdata;
        gate_journal_relay *jr = &p->g->relay;
        bool bad = false;
        int r;

        /* A jump past unsent: those records were rotated away (or their file removed). */
        if (seq > jr->unsent) {
                jr->lost += seq - jr->unsent;
                jr->unsent = seq;
        }
        if (!is_decision(record)) {
                jr->unsent = seq + 1;
                return 0;
        }
        if (p->sent == GATE_RELAY_BATCH)
                return STOP_BATCH;
        if ((r = send_record(record, true, &bad)) < 0 && !bad) {
                p->error = r;
                return STOP_JOURNALD;
        }
        if (bad)
                not_an_entry(seq, r);
        else
                jr->replayed++;
        p->sent++;
        jr->unsent = seq + 1;
        return 0;
}

/* One pass over the backlog. Returns 0 when it is all sent, 1 when a batch was sent and more
 * remain, -errno when journald (or reading the audit file) failed. */
static int replay(gate *g) {
        gate_journal_relay *jr = &g->relay;
        sg_error err = {0};
        pass p = {.g = g};
        int r;

        /* While nobody listens there is nothing to read the audit file for. */
        if (!sg_journal_available())
                return -ENOENT;
        /* The commit thread appends under the lock. The end of the file is taken in the same
         * hold as the read: a record appended after it was not visited, and reaches the relay
         * live once its job ends. */
        uv_mutex_lock(&g->audit_lock);
        r = sg_audit_read(g->audit, jr->unsent, on_record, &p, &err);
        uint64_t next = sg_audit_next_seq(g->audit);
        uv_mutex_unlock(&g->audit_lock);
        if (r == STOP_JOURNALD)
                return p.error;
        if (r == STOP_BATCH)
                return 1;
        if (r == -EBADMSG) {
                /* A damaged audit file cannot be replayed past the damage, and retrying would
                 * keep journald from every later decision: the rest of the backlog is given up
                 * (it is in the audit file, which `signgate audit verify` will reject). */
                fprintf(stderr,
                        "signgated: cannot replay decisions seq %" PRIu64 "–%" PRIu64 " to journald: %s; "
                        "they are only in the audit file\n",
                        jr->unsent, next - 1, err.msg);
                jr->lost += next - jr->unsent;
                jr->unsent = next;
                return 0;
        }
        if (r < 0) {
                if (!jr->read_failed)
                        fprintf(stderr, "signgated: cannot read the audit file to replay decisions to journald: %s; retrying\n",
                                err.msg[0] ? err.msg : strerror(-r));
                jr->read_failed = true;
                return r;
        }
        /* Every record up to the newest was visited; any missing at the end were rotated away. */
        if (jr->unsent < next) {
                jr->lost += next - jr->unsent;
                jr->unsent = next;
        }
        return 0;
}

static void on_retry(uv_timer_t *t) {
        gate *g = t->data;
        gate_journal_relay *jr = &g->relay;
        int r = replay(g);

        if (r == 0) {
                caught_up(g);
                return;
        }
        if (r > 0)
                jr->delay_ms = GATE_RELAY_RETRY_MIN_MS; /* journald takes entries: pace, do not back off */
        else
                jr->delay_ms = jr->delay_ms >= GATE_RELAY_RETRY_MAX_MS / 2 ? GATE_RELAY_RETRY_MAX_MS : jr->delay_ms * 2;
        schedule(g);
}

void gate_journal_relay_init(gate *g) {
        memset(&g->relay, 0, sizeof(g->relay)); /* before the handle is initialised, so no copy of one */
        (void) uv_timer_init(g->loop, &g->relay.timer);
        g->relay.timer.data = g;
}

void gate_journal_relay_decision(gate *g, const cJSON *record, uint64_t seq) {
        bool bad = false;
        int r;

        if (g->relay.unsent > 0)
                return; /* behind: the timer sends it from the audit file, after the older ones */
        if (seq < g->relay.live_from)
                return; /* the replay that caught up sent it */
        if ((r = send_record(record, false, &bad)) == 0)
                return;
        if (bad)
                not_an_entry(seq, r);
        else
                outage_begin(g, seq, r);
}

void gate_journal_relay_finish(gate *g) {
        gate_journal_relay *jr = &g->relay;
        int r;

        if (!g->journal || jr->unsent == 0)
                return;
        if ((r = replay(g)) == 0) {
                caught_up(g);
                return;
        }
        fprintf(stderr,
                "signgated: exiting with decisions seq %" PRIu64 "–%" PRIu64 " not sent to journald (%s); "
                "they are in the audit file\n",
                jr->unsent, audit_next_seq(g) - 1,
                r > 0 ? "more than one batch was left" : why_unsent(r));
}
