/* journal_relay.h — decision records to journald in audit order, across a journald outage.
 *
 * Live, each decision is sent to journald as soon as its audit line is durable. When a send fails
 * (journald stopped, restarting, its socket gone), the relay remembers the seq of the first record
 * journald did not get, writes one line to stderr, and from then on sends no decision directly:
 * the audit file is the queue, so nothing is held in memory however long the outage lasts. A
 * timer (1 s, doubling to 10 s while journald stays away) re-reads the unsent records from the
 * audit file (sg_audit_read) and sends them in order, each with SIGNGATE_REPLAYED=1, at most
 * GATE_RELAY_BATCH per second so a long backlog stays inside journald's default rate limit, and
 * stops at the first failure. Once it reaches the newest record it goes live again and sends one
 * event saying how many decisions it replayed and how long journald was away.
 *
 * Only decisions are replayed. The other audit lines (policy changes, denied API requests) went
 * to journald as events when they happened, or were lost there; the audit file keeps them.
 * Records rotated out of the kept audit files before journald came back cannot be replayed;
 * the closing event counts them.
 *
 * What the relay cannot see: sd-journal gets no acknowledgement, so an entry journald had
 * received but not yet written when it was killed is lost without an error.
 *
 * Threads: everything here runs on the loop thread; the audit handle it reads is shared with
 * the commit thread, under gate.audit_lock. */
#ifndef SG_JOURNAL_RELAY_H
#define SG_JOURNAL_RELAY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define GATE_RELAY_RETRY_MIN_MS 1000
#define GATE_RELAY_RETRY_MAX_MS 10000
/* Decisions replayed per timer run, one run a second while catching up: 250/s stays below
 * journald's default RateLimitBurst of 10,000 per 30 s for a service, with room for its events. */
#define GATE_RELAY_BATCH 250

typedef struct gate gate;

typedef struct {
        uv_timer_t timer;
        uint64_t unsent;      /* 0: live; else the seq of the first record journald has not had */
        uint64_t live_from;   /* live sends skip older records: the last replay sent them */
        uint64_t outage_from; /* the seq that began this outage */
        uint64_t outage_ms;   /* uv_now() when it began */
        uint64_t replayed;    /* decisions sent from the audit file in this outage */
        uint64_t lost;        /* records not readable from the audit file (rotated away, damaged) */
        unsigned delay_ms;    /* until the next attempt */
        bool read_failed;     /* a failure to read the audit file was reported in this outage */
} gate_journal_relay;

/* Sets up the timer on g->loop (closed with every other handle when the loop drains). */
void gate_journal_relay_init(gate *g);

/* Sends a durable decision record (it carries "seq") to journald, or, during an outage, leaves
 * it to the timer. Called on the loop thread, in seq order, only when g->journal is set. */
void gate_journal_relay_decision(gate *g, const cJSON *record, uint64_t seq);

/* At exit, after the loop drained: one last attempt at the backlog (one batch), without waiting
 * for journald; what stays unsent is named on stderr. */
void gate_journal_relay_finish(gate *g);

#endif
