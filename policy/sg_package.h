/* sg_package.h — the signed-package container (DESIGN §4) and its safety rules (DESIGN §6).
 *
 * One strict parse of a ZIP archive feeds the checks, the digest and the extraction:
 * sg_package_inspect() reads the EOCD, the Zip64 records, the central directory and every
 * local header itself, proves that every byte of the archive belongs to exactly one
 * structure, cross-checks libzip's view of the same archive, then streams the file once from
 * its first byte to the EOCD: the canonical bytes go into SHA-384 and each entry's data is
 * inflated, CRC-checked, counted against the limits and handed to an optional sink (the
 * extractor) in archive order. Memory is constant in the package size; it grows only with
 * the entry count, which is capped before anything is allocated.
 *
 * Format constants:
 *   canonical bytes = archive[0, E+20) || 00 00   (E = offset of the EOCD record; the
 *                     comment length field reads 0 and the comment is gone)
 *   digest          = SHA-384(canonical bytes), 48 bytes
 *   signature block = the EOCD comment: SG_SIGNATURE_MAGIC then a DSSE envelope (sg_signature.h)
 */
#ifndef SG_PACKAGE_H
#define SG_PACKAGE_H

#include "sg_common.h"

#define SG_DIGEST_LEN 48 /* SHA-384 */
#define SG_DIGEST_HEX_LEN 96

/* DESIGN §6 defaults; every one is settable in signgated.json "limits". */
#define SG_LIMIT_PACKAGE_BYTES (256ull * 1024 * 1024)
#define SG_LIMIT_INFLATED_BYTES 262144000ull
#define SG_LIMIT_ENTRIES 100000u
#define SG_LIMIT_NAME_BYTES 1024u
#define SG_LIMIT_DEPTH 64u
/* NAME_MAX: the longest path component the filesystems a release tree lives on can hold. A
 * longer one would pass every other check and then fail extraction on every try. Not settable. */
#define SG_LIMIT_NAME_COMPONENT 255u
/* A symlink's target is read into memory to be checked; no legitimate target is longer. */
#define SG_LIMIT_SYMLINK_TARGET 4095u

typedef struct {
        uint64_t package_bytes;
        uint64_t inflated_bytes;
        uint32_t entries;
        uint32_t name_bytes;
        uint32_t depth;
} sg_limits;

void sg_limits_default(sg_limits *l);

typedef enum { SG_ENTRY_FILE, SG_ENTRY_DIR, SG_ENTRY_SYMLINK } sg_entry_type;

typedef struct {
        char *name;       /* the stored name, NUL-terminated, a directory's trailing '/' removed */
        size_t name_len;
        sg_entry_type type;
        unsigned mode;    /* mode to extract with: 0755 directories, 0644 or 0755 files, 0777 links */
        uint16_t method;  /* 0 stored, 8 deflated */
        uint16_t flags;
        uint32_t crc;
        uint64_t csize, usize;
        uint64_t local_offset; /* local header */
        uint64_t data_offset;  /* first byte of the (compressed) data */
        uint64_t end_offset;   /* one past the data descriptor, or the data */
        char *link_target;     /* symlinks only, after a successful inspect */
} sg_entry;

typedef struct {
        uint64_t file_size;
        uint64_t eocd_offset;      /* E */
        uint64_t canonical_size;   /* E + 22: the byte count the digest covers */
        uint64_t inflated_total;   /* bytes actually inflated, all entries */
        unsigned char digest[SG_DIGEST_LEN];
        bool zip64;
        size_t n_entries;
        sg_entry *entries;         /* in central-directory order */
        char *comment;             /* the EOCD comment, NUL-terminated (may hold NULs itself) */
        size_t comment_len;
} sg_package;

/* Receives the archive's content while it is verified. Files and directories arrive in archive
 * order during the streaming pass (begin, data…, end) — per receiver, when there are two lanes
 * (see lane_new); symlinks arrive last, through on_symlink,
 * once their targets have been checked. A callback returning a negative errno stops the
 * inspection, which then returns that errno. Any callback may be NULL. */
typedef struct {
        void *userdata;
        int (*on_entry_begin)(void *userdata, const sg_entry *e);
        int (*on_entry_data)(void *userdata, const sg_entry *e, const void *buf, size_t n);
        int (*on_entry_end)(void *userdata, const sg_entry *e);
        int (*on_symlink)(void *userdata, const sg_entry *e);
        /* Optional: a second receiver for a share of the files and directories, called from
         * another thread at the same time as the first (a big archive is extracted in two
         * lanes). lane_new returns its userdata (NULL: one lane only); lane_done releases it
         * and returns a negative errno if it could not finish what it received. */
        void *(*lane_new)(void *userdata);
        int (*lane_done)(void *userdata, void *lane);
} sg_package_sink;

/* Parses, checks and digests the archive open at fd (read with pread only; the file offset is
 * not used). Returns 0 and *ret on a well-formed, safe archive within the limits; -EINVAL with
 * err->reason MALFORMED, LIMIT_EXCEEDED or UNSAFE_CONTENT and a sentence naming the entry and
 * the problem; any other negative errno for an I/O or resource failure (the caller's INTERNAL)
 * or a sink's error (a sink's -EINVAL is returned as -EIO: -EINVAL always comes with err set,
 * and only for the archive's own faults). On failure the sink may have received part of the
 * archive: the caller discards what it extracted. */
int sg_package_inspect(int fd, const sg_limits *limits, const sg_package_sink *sink,
                       sg_package **ret, sg_error *err);

void sg_package_free(sg_package *p);
static inline void sg_package_freep(sg_package **p) { sg_package_free(*p); }

/* SHA-384 of a whole file and its size: the package digest of a file that is not a valid
 * archive (so a rejection still names the bytes it judged) and of a Blob-platform file. */
int sg_file_sha384(int fd, unsigned char digest[SG_DIGEST_LEN], uint64_t *ret_size);

#endif
