/* gate.h — signgated's internals, shared by its files (not a public contract).
 *
 * Threads: the libuv loop thread owns every field of struct gate and every job outside its
 * work callback. A job's work callback (a libuv thread-pool thread) touches only its own job,
 * the read-only store it holds a reference to, the adapter (one job per function at a time),
 * the first-seen set (behind its mutex) and files. The loop thread never hashes, verifies,
 * extracts or fsyncs a package (DESIGN §8); it appends audit lines and renames inbox entries.
 */
#ifndef SG_GATE_H
#define SG_GATE_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "journal_relay.h"
#include "sg_adapter.h"
#include "sg_audit.h"
#include "sg_decide.h"
#include "sg_settings.h"
#include "sg_store.h"

/* Packages held in memory at once (claimed and queued); beyond it the inbox is the backlog. */
#define GATE_QUEUE_LIMIT 1024
/* Jobs verifying at once (the thread pool has two threads more). Most of a small package's time
 * is spent waiting on its syncfs, so twice the cores keeps them busy: a burst of 1,000 small
 * packages on a journaled ext4 went from ~575 to ~740 decisions/s going from 4 to 8 (12: ~750). */
#define GATE_WORKERS 8
/* Worker threads run this much nicer than the loop thread (which serves the API and health). */
#define GATE_WORKER_NICE 5
/* Inbox names longer than this are MALFORMED: the claimed name must still fit NAME_MAX. */
#define GATE_INBOX_NAME_MAX 160
#define GATE_CLAIM_PREFIX ".claimed."
/* How far back start-up looks in the audit file for decisions recorded just before a crash. */
#define GATE_AUDIT_LOOKBACK (8u * 1024 * 1024)
#define GATE_RETRY_MIN_MS 500
#define GATE_RETRY_MAX_MS 60000

typedef struct gate gate;
typedef struct job job;

/* The policy store as jobs see it: replaced whole on SIGHUP, freed when its last job ends. */
typedef struct {
        sg_store *store;
        unsigned refs;
} store_ref;

/* One function's (or layer's) queue: its jobs run one at a time, in arrival order. */
typedef struct fqueue {
        sg_kind kind;
        char name[65];
        job *head, *tail;
        bool running;
        uint64_t blocked_until_ms; /* a failed job waits here before it is retried */
        unsigned failures;
        struct fqueue *next;       /* all queues */
} fqueue;

struct job {
        gate *g;
        uv_work_t work;
        job *next;
        job *commit_next;                     /* in the gate's commit lists */
        fqueue *q;
        char id[37];
        sg_kind kind;
        bool has_name;                        /* the inbox name names a function or layer */
        char name[65];
        char inbox_name[GATE_INBOX_NAME_MAX + 1];
        char claimed[NAME_MAX + 1];           /* the entry's name in the inbox while it is processed */
        uint64_t arrival_ns;
        uid_t uid;
        gid_t gid;
        bool is_dir;                          /* a directory dropped into the inbox */
        uint64_t size;                        /* its size when claimed (recorded if never read) */
        bool reject_from_inbox;               /* too big to copy: filed under rejected/ by rename */
        /* An API upload: the body is already the private staging copy, the peer is the
         * connection's SO_PEERCRED, and the decision goes back to the client. */
        bool from_api;
        pid_t pid;
        void (*on_decided)(job *j, void *ctx); /* called on the loop once the record is durable */
        void *ctx;
        double verify_seconds, promote_seconds;
        uint64_t seq;
        /* Decided without reading (a bad name, a non-regular entry, a hard link). */
        sg_reason pre_reason;
        char pre_msg[256];
        store_ref *store;
        /* Results, filled by the work callback. */
        int err;                              /* <0: INTERNAL, the package stays and is retried */
        char err_msg[512];
        cJSON *record;
        sg_outcome outcome;
        bool promoted_new;
        sg_promotion promotion;
        char staging[64];                     /* staging/ID.zip while it exists */
};

/* Counters for GET /metrics (loop thread only). */
#define GATE_HIST_BUCKETS 10
typedef struct {
        uint64_t decisions[3][SG_REASON_MAX_ + 1]; /* [outcome][reason; SG_REASON_MAX_ = none] */
        uint64_t verify_buckets[GATE_HIST_BUCKETS + 1], promote_buckets[GATE_HIST_BUCKETS + 1];
        double verify_sum, promote_sum;
        uint64_t verify_count, promote_count;
        uint64_t denied;
} gate_metrics;

/* The newest decision records, for GET /v1/decisions. */
#define GATE_RECENT 1000

struct api;

struct gate {
        uv_loop_t *loop;
        char root[PATH_MAX];
        bool foreground;
        sg_settings settings;
        store_ref *store;
        sg_audit *audit;
        /* The audit handle is shared by the loop and the commit thread (group commit). */
        uv_mutex_t audit_lock;
        /* Decided jobs waiting for their record (commit_head…), and the batch being written. */
        job *commit_head, *commit_tail, *committing;
        uv_work_t commit_work;
        int commit_err;
        size_t commits_pending;               /* jobs in either list */
        sg_adapter *adapter;
        int inbox_fd, staging_fd, rejected_fd, lib_fd, firstseen_fd;
        int inotify_fd;
        uv_poll_t inotify_poll;
        uv_signal_t sig_hup, sig_term, sig_int;
        uv_timer_t watchdog, tick;
        fqueue *queues;
        unsigned running;
        unsigned hooks;                       /* post-promotion hooks still running */
        size_t queued;                        /* jobs claimed and not yet finished */
        bool backlog;                         /* inbox entries left unclaimed: rescan when room */
        bool stopping;
        bool journal;                         /* send decisions to journald */
        gate_journal_relay relay;             /* decisions to journald, replayed after an outage */
        /* First-seen times of package digests (DESIGN §5, REVOKED); worker threads share it. */
        uv_mutex_t firstseen_lock;
        struct firstseen_set *firstseen;
        uint64_t decisions;
        gate_metrics metrics;
        cJSON *recent[GATE_RECENT];           /* ring of the newest records */
        size_t recent_next, recent_count;
        struct api *api;
        int policy_fd;                        /* var/lib/signgate/policy */
        int64_t started;
};

/* main.c */
void gate_log(gate *g, int priority, const char *message_id, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
store_ref *gate_store_ref(gate *g);
void gate_store_unref(store_ref *r);

/* inbox.c */
int gate_inbox_start(gate *g);
/* Lists the inbox, claims what it can in arrival order; at start-up also resumes claimed
 * entries left by a previous run (or drops those whose decision was already recorded). */
int gate_inbox_scan(gate *g, bool startup);
void gate_inbox_stop(gate *g);

/* pipeline.c */
job *gate_job_new(gate *g, const char *inbox_name, uint64_t arrival_ns, const char *id);
/* Undoes a promotion whose record could not be written: current goes back, the release goes. */
void gate_unpromote(gate *g, const char *function, const char *decision_id);
/* Start-up: every function's current release must be one a record in the audit file
 * approved (a crash can come between the swap and the record); otherwise current goes back to
 * the newest recorded one, or away. */
void gate_reconcile_releases(gate *g);
/* The upper bound of histogram bucket i (the last bucket is +Inf). */
double gate_hist_bound(size_t i);
void gate_enqueue(gate *g, job *j);
void gate_dispatch(gate *g);
void gate_pipeline_tick(gate *g);

/* Replaces the policy store (SIGHUP, and every policy change through the API). */
int gate_reload_policy(gate *g, char *why, size_t why_len);
/* Remembers a durable record for GET /v1/decisions (takes a copy). */
void gate_remember(gate *g, const cJSON *record);
/* Appends a policy or authorization event to the audit file and journald. */
void gate_audit_event(gate *g, cJSON *event, int priority, const char *message_id, const char *const *fields,
                      const char *message);

/* api.c */
int api_start(gate *g);
void api_stop(gate *g);
bool api_idle(gate *g);
void api_free(gate *g);

/* firstseen.c */
int firstseen_load(gate *g);
/* The earliest time this gate saw digest; records now (appending to the log) if never. */
int64_t firstseen_get(gate *g, const unsigned char digest[SG_DIGEST_LEN], int64_t now);
void firstseen_free(gate *g);

#endif
