/* sg_audit.h — the audit file (DESIGN §12): a hash-chained JSON-lines log of decision records.
 *
 * Format. One JSON object per line, printed compact, ending in '\n'. Every line's first key is
 * "seq" (1, 2, 3, … with no gaps across rotated files) and its last key is "prev": the lowercase
 * hex SHA-256 of the previous line's bytes without its '\n', or 64 zeros for seq 1. The first line
 * of a file chains to the last line of the file rotated before it, so NAME.K … NAME.1, NAME read
 * in that order form one chain. A line is at most SG_AUDIT_LINE_MAX bytes including its '\n'.
 *
 * Durability. Each append is one write() of whole lines followed by fdatasync(); a caller may
 * acknowledge a decision once append returned 0. A failed append leaves no partial line behind.
 *
 * Ownership and threads. An sg_audit handle belongs to one thread (the daemon's loop); it holds an
 * exclusive flock() on the current file so a second writer (a second daemon on the same root)
 * fails at open with -EBUSY instead of interleaving two chains. Nothing here logs: errors are
 * returned as -errno, with detail in an sg_error where a caller needs to show where a file is bad.
 */
#ifndef SG_AUDIT_H
#define SG_AUDIT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sg_common.h"

/* Longest line, '\n' included, that append writes and verify accepts (DESIGN: "lines capped at
 * 1 MiB"). A decision record is well under 4 KiB; the cap bounds what a corrupt file can make a
 * reader allocate. */
#define SG_AUDIT_LINE_MAX (1024u * 1024u)
/* Largest seq: cJSON keeps numbers as doubles and prints up to 15 significant digits as a plain
 * integer, so every seq up to here round-trips exactly (a billion decisions a day for 2,700 years). */
#define SG_AUDIT_SEQ_MAX UINT64_C(999999999999999)
/* Most rotated files keep_files may ask for (the settings' "audit.keepFiles" allows as many):
 * rotation renames each of them, so the count bounds the work of one append. */
#define SG_AUDIT_KEEP_MAX 10000u
/* SHA-256 hex, the "prev" of every line. */
#define SG_AUDIT_HASH_HEX_LEN 64

typedef struct sg_audit sg_audit;

typedef struct {
        uint64_t rotate_bytes; /* rotate before a line would take the file past this; 0 = never */
        unsigned keep_files;   /* rotated files kept: NAME.1 (newest) … NAME.K */
} sg_audit_options;

/* Opens or creates dirfd/name (mode 0640, O_APPEND|O_CLOEXEC|O_NOFOLLOW; dirfd may be AT_FDCWD).
 * Reads the last line (if any) to continue seq (last seq + 1; 1 for an empty chain) and prev
 * (SHA-256 hex of that line's bytes without its '\n'). If the file is empty (or missing) but
 * NAME.1 exists, continues from NAME.1's last line: that is the state a crash during rotation
 * leaves. o may be NULL (never rotate); o->keep_files above SG_AUDIT_KEEP_MAX is -EINVAL, as is a
 * name that is empty, holds a '/' or leaves no room for the ".K" suffix.
 *
 * A last line without its '\n' is a write torn by a crash (Linux stops a buffered write between
 * pages on SIGKILL). It was never fsynced, so nothing acted on it: open cuts it off (and
 * sg_audit_repaired_bytes() says how much). Any other bad last line — not a JSON object with an
 * integer "seq" in [1, SG_AUDIT_SEQ_MAX] — is -EBADMSG with err->msg "FILE:LINE: what is wrong";
 * such a file needs an operator: the handle never rewrites complete lines.
 * Other failures: -ELOOP (NAME is a symlink), -EBUSY (another handle holds the file), -ENOMEM,
 * -errno of the I/O; err->msg then names the file. The handle keeps its own duplicate of dirfd. */
int sg_audit_open(int dirfd, const char *name, const sg_audit_options *o, sg_audit **ret, sg_error *err);

/* Adds "seq" as the FIRST key and "prev" as the LAST key of record (a cJSON object the caller
 * owns; it is modified: any "seq" or "prev" it had is replaced), prints it compact on one line +
 * '\n' with a single write(), then fdatasync()s. Rotation happens first when needed (a non-empty
 * file that this line would take past rotate_bytes): NAME.(K-1)→NAME.K … NAME→NAME.1 (renameat),
 * fsync the directory, create a new NAME whose first line chains (prev) to the last line of the
 * old file; seq continues. With keep_files 0 the old file is removed once the new one holds a line.
 *
 * Returns 0 and *ret_seq (may be NULL). On failure the in-memory state is unchanged, the file is
 * truncated back to its previous length (no torn line is left behind) and record has no "seq" or
 * "prev". -EINVAL record is not an object; -EMSGSIZE the line would exceed SG_AUDIT_LINE_MAX;
 * -EOVERFLOW seq would exceed SG_AUDIT_SEQ_MAX; -EIO the handle is unusable because a failed
 * write could not be undone (reopen it: open reports the torn line); else -errno of the I/O. */
int sg_audit_append(sg_audit *a, cJSON *record, uint64_t *ret_seq);

/* Appends n records as consecutive lines with ONE write() and ONE fdatasync() (batching for
 * bursts); otherwise the same semantics as calling append for each. A batch that crosses a
 * rotation is written as two durable parts, one per file. On failure, the records that were
 * written (only possible when a rotation split the batch) are exactly those that carry "seq";
 * the in-memory state matches them. n == 0 returns 0 without touching the file or *ret_first_seq. */
int sg_audit_append_many(sg_audit *a, cJSON **records, size_t n, uint64_t *ret_first_seq);

/* Looks for a record with "decisionId" == id among the complete lines within the last max_bytes
 * of NAME and then of NAME.1 (the newest match wins). Returns 0 if found (and *ret gets a copy if
 * ret != NULL), -ENOENT if not, -errno on I/O. Used at start-up to recognise decisions recorded
 * just before a crash. Cost: reads at most 2 × max_bytes; memory stays under 2 × SG_AUDIT_LINE_MAX. */
int sg_audit_find_decision(sg_audit *a, const char *id, uint64_t max_bytes, cJSON **ret);

/* Called by sg_audit_read() for each record it visits, oldest first: the record's seq and the
 * parsed line (owned by the reader, valid only during the call). Returns 0 to go on, a positive
 * value to stop the read (which then returns that value), or -errno to fail it (returned too). */
typedef int (*sg_audit_record_fn)(uint64_t seq, const cJSON *record, void *userdata);

/* Visits the records with seq >= from_seq in seq order, across the files this handle writes:
 * the rotated files NAME.K … NAME.1 (K = keep_files, or 1 when it is 0) that still exist, then
 * NAME up to the last line append wrote (a line another process added later is not read).
 * Records rotated away are gone: when from_seq is older than the oldest file kept, the first
 * record visited has a larger seq, which is how a caller learns what it missed. from_seq 0 means
 * 1; from_seq >= sg_audit_next_seq() visits nothing and reads no file.
 *
 * Cost: the first line of each file from NAME back to the one holding from_seq, then a binary
 * search by byte offset inside that file, so reaching from_seq takes O(files + log(file size))
 * reads of at most SG_AUDIT_LINE_MAX each, not a scan of the file; then one streaming pass over
 * what follows. Memory stays under 2 × SG_AUDIT_LINE_MAX plus one parsed record.
 *
 * Returns 0 once the newest record was visited, fn's value when it stopped or failed the read,
 * -EBADMSG with err->msg "FILE: byte OFF: what is wrong" for a line that is not a JSON object with
 * an integer "seq", a seq not above the one before it, or a last line without '\n' in a rotated
 * file (verify says more), or -errno of the I/O. fn must not append to a: the reader relies on the
 * files not moving under it (the handle's thread is the only writer). */
int sg_audit_read(sg_audit *a, uint64_t from_seq, sg_audit_record_fn fn, void *userdata, sg_error *err);

/* The seq the next append will write, and the "prev" it will carry (for status and tests). */
uint64_t sg_audit_next_seq(const sg_audit *a);
/* Bytes of a torn last line (a crash mid-write) that open cut off; 0 normally. */
uint64_t sg_audit_repaired_bytes(const sg_audit *a);
const char *sg_audit_prev(const sg_audit *a);

/* Closes the file and frees the handle. Accepts NULL. */
void sg_audit_free(sg_audit *a);
static inline void sg_audit_freep(sg_audit **a) { sg_audit_free(*a); }

typedef struct {
        size_t files;              /* files given (empty ones included) */
        uint64_t records;          /* lines checked */
        uint64_t first_seq;        /* seq of the oldest line, 0 if there are no lines */
        uint64_t last_seq;         /* seq of the newest line, 0 if there are no lines */
        bool chained_from_earlier; /* the oldest line has seq > 1: its "prev" points into a file not given */
} sg_audit_summary;

/* Verifies audit files given in any order: orders them by their first line's seq (empty files hold
 * no lines and take no place in the chain), then checks every line: a valid JSON object, "seq" the
 * previous seq + 1 (so a deleted, inserted or swapped line is found), "prev" the SHA-256 hex of the
 * previous line's bytes (64 zeros for seq 1; for the first line of the oldest file, if its seq > 1
 * the link cannot be checked: chained_from_earlier is set), every line ends in '\n' and is at most
 * SG_AUDIT_LINE_MAX bytes. Files are opened O_NOFOLLOW and streamed line by line (memory stays
 * under 2 × SG_AUDIT_LINE_MAX whatever their size).
 *
 * Returns 0 and *ret (may be NULL) when the whole chain holds; -EBADMSG with err->msg
 * "FILE:LINE: what is wrong" at the first problem (FILE as given in paths); -EINVAL n == 0;
 * other -errno for I/O, with err->msg "FILE: why". */
int sg_audit_verify(const char *const *paths, size_t n, sg_audit_summary *ret, sg_error *err);

#endif
