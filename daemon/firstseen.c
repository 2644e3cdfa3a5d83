/* The first-seen set: when this gate first saw each package digest (DESIGN §5, REVOKED).
 *
 * Kept in memory (an open-addressing table of digests) and in var/lib/signgate/first-seen.log,
 * one "HEX TIME" line per digest, appended without fsync: a line lost in a crash only makes the
 * next sighting's first-seen time later, which can only make a revocation apply to more
 * packages, never fewer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "gate.h"

#define FIRSTSEEN_LOG "first-seen.log"
#define LINE_MAX_LEN (SG_DIGEST_HEX_LEN + 1 + SG_TIME_LEN + 1)

typedef struct {
        unsigned char digest[SG_DIGEST_LEN];
        int64_t time;
        bool used;
} slot;

struct firstseen_set {
        slot *slots;
        size_t cap, n; /* cap: a power of two, at most half full */
};

static size_t slot_of(const struct firstseen_set *s, const unsigned char d[SG_DIGEST_LEN]) {
        uint64_t h;
        memcpy(&h, d, sizeof(h)); /* a SHA-384 prefix is already uniformly distributed */
        return (size_t) h & (s->cap - 1);
}

static slot *find(struct firstseen_set *s, const unsigned char d[SG_DIGEST_LEN]) {
        for (size_t i = slot_of(s, d);; i = (i + 1) & (s->cap - 1))
                if (!s->slots[i].used || memcmp(s->slots[i].digest, d, SG_DIGEST_LEN) == 0)
                        return &s->slots[i];
}

static int grow(struct firstseen_set *s) {
        struct firstseen_set bigger = {.cap = s->cap ? s->cap * 2 : 1024};
        bigger.slots = calloc(bigger.cap, sizeof(slot));
        if (!bigger.slots)
                return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
                if (s->slots[i].used) {
                        *find(&bigger, s->slots[i].digest) = s->slots[i];
                        bigger.n++;
                }
        free(s->slots);
        *s = bigger;
        return 0;
}

/* Adds or keeps the earlier time. */
static int put(struct firstseen_set *s, const unsigned char d[SG_DIGEST_LEN], int64_t t, bool *added) {
        if ((s->n + 1) * 2 > s->cap) {
                int r = grow(s);
                if (r < 0)
                        return r;
        }
        slot *x = find(s, d);
        *added = !x->used;
        if (!x->used) {
                memcpy(x->digest, d, SG_DIGEST_LEN);
                x->time = t;
                x->used = true;
                s->n++;
        } else if (t < x->time)
                x->time = t;
        return 0;
}

int firstseen_load(gate *g) {
        g->firstseen = calloc(1, sizeof(*g->firstseen));
        if (!g->firstseen || grow(g->firstseen) < 0)
                return -ENOMEM;
        g->firstseen_fd = openat(g->lib_fd, FIRSTSEEN_LOG, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (g->firstseen_fd < 0)
                return -errno;
        int fd = openat(g->lib_fd, FIRSTSEEN_LOG, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
        if (!f) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) >= 0) {
                unsigned char d[SG_DIGEST_LEN];
                int64_t t;
                bool added;
                if (n > 0 && line[n - 1] == '\n')
                        line[--n] = '\0';
                /* A torn last line (a crash mid-append) is skipped, like any malformed one. */
                if (n < SG_DIGEST_HEX_LEN + 2 || n > LINE_MAX_LEN || line[SG_DIGEST_HEX_LEN] != ' ')
                        continue;
                line[SG_DIGEST_HEX_LEN] = '\0';
                if (sg_hex_decode(line, d, SG_DIGEST_LEN) < 0 || sg_time_parse(line + SG_DIGEST_HEX_LEN + 1, &t) < 0)
                        continue;
                if (put(g->firstseen, d, t, &added) < 0)
                        break;
        }
        free(line);
        fclose(f);
        return uv_mutex_init(&g->firstseen_lock) == 0 ? 0 : -ENOMEM;
}

int64_t firstseen_get(gate *g, const unsigned char digest[SG_DIGEST_LEN], int64_t now) {
        int64_t t = now;
        bool added = false;
        uv_mutex_lock(&g->firstseen_lock);
        if (put(g->firstseen, digest, now, &added) == 0)
                t = find(g->firstseen, digest)->time;
        uv_mutex_unlock(&g->firstseen_lock);
        if (added) {
                char line[LINE_MAX_LEN + 1], hex[SG_DIGEST_HEX_LEN + 1], ts[SG_TIME_LEN + 1];
                sg_hex_encode(digest, SG_DIGEST_LEN, hex);
                if (sg_time_format(now, ts) == 0) {
                        int len = snprintf(line, sizeof(line), "%s %s\n", hex, ts);
                        /* One write per line: O_APPEND keeps concurrent workers' lines whole. */
                        (void) sg_write_all(g->firstseen_fd, line, (size_t) len);
                }
        }
        return t;
}

void firstseen_free(gate *g) {
        if (g->firstseen) {
                free(g->firstseen->slots);
                free(g->firstseen);
                g->firstseen = NULL;
                uv_mutex_destroy(&g->firstseen_lock);
        }
        if (g->firstseen_fd >= 0)
                close(g->firstseen_fd);
        g->firstseen_fd = -1;
}
