/* sg_adapter.h — promotion into a function runtime (DESIGN §6, §7).
 *
 * An adapter receives a package's files while the package is being verified (staging), then
 * either promotes the staged release atomically or discards it. The directory adapter (the
 * default, and the only one today) lays releases out as
 *
 *   RUNTIME/functions/F/releases/RELEASE/task/…      the extracted code (Lambda's /var/task)
 *   RUNTIME/functions/F/releases/RELEASE/release.json the decision record that approved it
 *   RUNTIME/functions/F/current -> releases/RELEASE   swapped atomically (symlink + rename)
 *   RUNTIME/layers/L/N/opt/…                          layer version N (Lambda's /opt)
 *
 * and stages into hidden ".stage-ID" directories beside them, which a runtime never reads and
 * recovery removes. A promotion writes F/.pending-DECISION_ID (durably) before it installs
 * the release and swaps current;
 * the gate settles it once the decision record is durable, and reconcile() undoes promotions
 * left pending by a crash, so no release stays live without the record that approved it. Extraction never follows a symlink: every directory is opened beneath the
 * release root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), files are created O_EXCL,
 * and symlinks are created last. Modes are set explicitly (directories 0755, files 0644 or
 * 0755), whatever the umask.
 *
 * Threading: stage/sink/promote/discard/rollback/prune run on worker threads; calls for one
 * function (or layer) must not run concurrently (the gate runs one job per function at a time).
 * All return 0 or a negative errno.
 */
#ifndef SG_ADAPTER_H
#define SG_ADAPTER_H

#include <cjson/cJSON.h>

#include "sg_common.h"
#include "sg_package.h"

#define SG_RELEASE_MAX 64 /* "YYYYMMDDTHHMMSSZ-" + 12 hex, plus a collision suffix */

typedef enum { SG_KIND_FUNCTION, SG_KIND_LAYER } sg_kind;
const char *sg_kind_name(sg_kind k);

typedef struct sg_adapter sg_adapter;
typedef struct sg_stage sg_stage;

typedef struct {
        char release[SG_RELEASE_MAX];   /* functions: RELEASE; layers: the version number */
        char path[4096];                /* absolute path of the release (or layer version) directory */
} sg_promotion;

/* What a release keeps about the package it came from, so it can be re-decided (rollback). */
typedef struct {
        unsigned char digest[SG_DIGEST_LEN];
        uint64_t canonical_size;
        char *block;          /* the signature block (malloc'd), NULL for an unsigned package */
        size_t block_len;
} sg_release_facts;

typedef struct {
        const char *name;
        /* Creates an empty staging area for name's next release; *ret carries the sink. */
        int (*stage)(sg_adapter *a, sg_kind kind, const char *name, const char *tag, sg_stage **ret);
        /* Makes the staged release durable and current. record (may be NULL) becomes
         * release.json. digest names the release. */
        int (*promote)(sg_adapter *a, sg_stage *s, const unsigned char digest[SG_DIGEST_LEN], int64_t now,
                       const cJSON *record, sg_promotion *ret);
        /* Removes the staged tree (always safe to call; frees s). */
        void (*discard)(sg_adapter *a, sg_stage *s);
        /* The function's current release and the digest recorded in its release.json;
         * -ENOENT when it has none. */
        int (*current)(sg_adapter *a, const char *function, char release[SG_RELEASE_MAX],
                       unsigned char digest[SG_DIGEST_LEN]);
        /* Points current at the release before it (of those retained); -ENOENT if none. */
        int (*rollback)(sg_adapter *a, const char *function, sg_promotion *ret);
        /* The retained release before the current one; -ENOENT if none. */
        int (*previous)(sg_adapter *a, const char *function, char release[SG_RELEASE_MAX]);
        /* Reads the package facts kept with a release (written by sg_stage_keep_facts). */
        int (*facts)(sg_adapter *a, const char *function, const char *release, sg_release_facts *ret);
        /* The decision's record could not be written: undo its promotion (current goes back to
         * the newest release whose decision is not pending, or away) and remove its release. */
        int (*unpromote)(sg_adapter *a, const char *function, const char *decision_id);
        /* The decision's record is durable: forget that its promotion was pending. */
        int (*settle)(sg_adapter *a, const char *function, const char *decision_id);
        /* Start-up: a promotion still pending is one whose record may never have been written
         * (a crash between the swap and the audit append). recorded(ctx, decision id) says
         * whether it was; an unrecorded release goes, and current goes back to the newest
         * release that is not pending (or away). */
        int (*reconcile)(sg_adapter *a, bool (*recorded)(void *ctx, const char *decision_id), void *ctx);
        /* Keeps the newest `retain` releases (and always current). */
        int (*prune)(sg_adapter *a, const char *function);
        /* Start-up: removes staging leftovers and half-swapped links everywhere. */
        int (*recover)(sg_adapter *a);
        void (*free)(sg_adapter *a);
} sg_adapter_ops;

struct sg_adapter {
        const sg_adapter_ops *ops;
};

/* The sink that extracts into a stage (valid until promote or discard). */
const sg_package_sink *sg_stage_sink(sg_stage *s);
/* Keeps the package's digest, canonical size and signature block beside the release
 * (package.json, signature.dsse), so that a rollback can re-decide it under a later policy. */
int sg_stage_keep_facts(sg_stage *s, const unsigned char digest[SG_DIGEST_LEN], uint64_t canonical_size,
                        const char *block, size_t block_len);

/* The directory adapter over runtime_dir (which must exist). */
int sg_dir_adapter_new(const char *runtime_dir, unsigned retain, sg_adapter **ret);

/* RELEASE = YYYYMMDDTHHMMSSZ- + first 12 hex of digest. */
void sg_release_name(int64_t now, const unsigned char digest[SG_DIGEST_LEN], char out[SG_RELEASE_MAX]);

/* Removes dirfd/name and everything below it without following any symlink. */
int sg_remove_tree(int dirfd, const char *name);

#endif
