/*
 * watermark.c - out-of-order commit watermark of one partition (see watermark.h).
 *
 * Pending records sit in a ring in consumption order, so their offsets increase from head to
 * tail and a finish can find its entry by binary search. Finished entries at the head are
 * popped, and the head's offset is the watermark. The ring doubles when full and never
 * shrinks: its size is bounded by the most records a partition ever had in flight.
 */
#include "route/watermark.h"

#include <stdlib.h>
#include <string.h>

#define RING_INITIAL 64

struct entry {
    int64_t offset;
    int done;
};

struct ferry_watermark_s {
    struct entry *ring; /* capacity entries, a power of two */
    size_t capacity;
    size_t head;  /* index of the oldest pending entry */
    size_t count; /* pending entries */
    int64_t last; /* last tracked offset, -1 before the first */
};

ferry_watermark *ferry_watermark_new(void)
{
    ferry_watermark *wm = calloc(1, sizeof(*wm));

    if (!wm)
        return NULL;
    wm->last = -1;
    return wm;
}

void ferry_watermark_destroy(ferry_watermark *wm)
{
    if (!wm)
        return;
    free(wm->ring);
    free(wm);
}

static struct entry *at(const ferry_watermark *wm, size_t i)
{
    return &wm->ring[(wm->head + i) & (wm->capacity - 1)];
}

/* Doubles the ring and unwraps its contents to start at index 0. */
static int grow(ferry_watermark *wm)
{
    size_t capacity = wm->capacity ? wm->capacity * 2 : RING_INITIAL;
    size_t first;
    struct entry *ring;

    if (capacity > SIZE_MAX / sizeof(*ring) || capacity < wm->capacity)
        return -1;
    ring = malloc(capacity * sizeof(*ring));
    if (!ring)
        return -1;
    first = wm->capacity - wm->head;
    if (first > wm->count)
        first = wm->count;
    if (wm->count) {
        memcpy(ring, wm->ring + wm->head, first * sizeof(*ring));
        memcpy(ring + first, wm->ring, (wm->count - first) * sizeof(*ring));
    }
    free(wm->ring);
    wm->ring = ring;
    wm->capacity = capacity;
    wm->head = 0;
    return 0;
}

int ferry_watermark_track(ferry_watermark *wm, int64_t offset)
{
    struct entry *e;

    /* INT64_MAX is refused so that the commit offset, last + 1, cannot overflow. */
    if (offset < 0 || offset == INT64_MAX || offset <= wm->last)
        return -1;
    if (wm->count == wm->capacity && grow(wm))
        return -2;
    e = at(wm, wm->count);
    e->offset = offset;
    e->done = 0;
    wm->count++;
    wm->last = offset;
    return 0;
}

/* Sets *pos to the position of offset among the pending entries; returns -1 when absent.
 * A partition's offsets are usually consecutive, so offset's distance from the oldest entry is
 * tried first; gaps (compaction, transaction markers) fall back to a binary search. */
static int find(const ferry_watermark *wm, int64_t offset, size_t *pos)
{
    size_t lo = 0, hi = wm->count;
    uint64_t guess;

    if (!wm->count || offset < at(wm, 0)->offset)
        return -1;
    guess = (uint64_t)(offset - at(wm, 0)->offset);
    if (guess < wm->count && at(wm, (size_t)guess)->offset == offset) {
        *pos = (size_t)guess;
        return 0;
    }

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t found = at(wm, mid)->offset;

        if (found == offset) {
            *pos = mid;
            return 0;
        }
        if (found < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void pop_finished(ferry_watermark *wm)
{
    while (wm->count && at(wm, 0)->done) {
        wm->head = (wm->head + 1) & (wm->capacity - 1);
        wm->count--;
    }
}

int ferry_watermark_finish(ferry_watermark *wm, int64_t offset)
{
    size_t pos;
    struct entry *e;

    if (find(wm, offset, &pos))
        return -1;
    e = at(wm, pos);
    if (e->done)
        return -1;
    e->done = 1;
    if (pos == 0)
        pop_finished(wm);
    return 0;
}

int64_t ferry_watermark_commit_offset(const ferry_watermark *wm)
{
    if (wm->count)
        return at(wm, 0)->offset;
    if (wm->last < 0)
        return -1;
    return wm->last + 1;
}

size_t ferry_watermark_pending(const ferry_watermark *wm)
{
    return wm->count;
}
