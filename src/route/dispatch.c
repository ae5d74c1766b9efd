/*
 * dispatch.c - lanes, partitions and batch formation of a route (see dispatch.h).
 *
 * A partition keeps its lanes in a small hash table by key (ordering: key) plus one base lane:
 * the partition's only lane under ordering: partition, the free lane otherwise. Lanes that can
 * give out records sit in the partition's ready list; partitions with ready lanes sit in the
 * dispatcher's ready list, served round-robin. A revoked partition leaves the index at once but
 * lives on, unindexed, until its last record in flight comes back.
 */
#include "route/dispatch.h"
#include "route/watermark.h"

#include <stdlib.h>
#include <string.h>

struct dispatch_lane {
    struct ferry_dispatch_rec *head, *tail;
    size_t queued;
    size_t queued_bytes;
    size_t in_flight;
    int64_t since_ms; /* when its oldest queued record came, or earlier */
    int ordered;      /* gives out nothing while records are in flight */
    int in_ready;     /* in its partition's ready list */
    struct dispatch_lane *next_ready;
    struct dispatch_lane *next_hash;
    uint32_t hash;
    size_t key_len;
    char key[];
};

struct dispatch_part {
    char *topic;
    int32_t partition;
    ferry_watermark *wm;
    struct dispatch_lane *base;
    struct dispatch_lane **buckets;
    size_t nbuckets, nlanes;
    struct dispatch_lane *ready_head, *ready_tail;
    size_t ready_records, ready_bytes;
    int64_t ready_since_ms;
    size_t in_flight;
    struct ferry_dispatch_rec *flight; /* the records in flight, linked by next and prev */
    int draining, revoked, dirty, in_ready;
    struct dispatch_part *next_ready;
    struct dispatch_part *next; /* in the live list or the revoked list */
};

struct ferry_dispatch {
    struct ferry_dispatch_options opts;
    struct dispatch_part *live;
    struct dispatch_part *revoked;
    struct dispatch_part *last; /* the partition found last, as records come in runs */
    struct dispatch_part *ready_head, *ready_tail;
    size_t records, bytes;
    struct ferry_dispatch_rec *spare; /* released records, reused: linked by next */
};

/* ---- lanes ---- */

static uint32_t hash_key(const char *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h;
}

static struct dispatch_lane *lane_new(const char *key, size_t len, int ordered)
{
    struct dispatch_lane *l = calloc(1, sizeof(*l) + len);
    if (!l)
        return NULL;
    l->ordered = ordered;
    l->key_len = len;
    if (len)
        memcpy(l->key, key, len);
    return l;
}

static int grow_buckets(struct dispatch_part *p)
{
    size_t n = p->nbuckets ? p->nbuckets * 2 : 64;
    struct dispatch_lane **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (struct dispatch_lane *l = p->buckets[i], *next; l; l = next) {
            next = l->next_hash;
            l->next_hash = b[l->hash & (n - 1)];
            b[l->hash & (n - 1)] = l;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->nbuckets = n;
    return 0;
}

/* Finds or creates the lane of a key within p. */
static struct dispatch_lane *key_lane(struct dispatch_part *p, const char *key, size_t len)
{
    uint32_t h = hash_key(key, len);
    struct dispatch_lane *l;

    if (p->nbuckets) {
        for (l = p->buckets[h & (p->nbuckets - 1)]; l; l = l->next_hash)
            if (l->hash == h && l->key_len == len && memcmp(l->key, key, len) == 0)
                return l;
    }
    if (p->nlanes >= p->nbuckets && grow_buckets(p))
        return NULL;
    l = lane_new(key, len, 1);
    if (!l)
        return NULL;
    l->hash = h;
    l->next_hash = p->buckets[h & (p->nbuckets - 1)];
    p->buckets[h & (p->nbuckets - 1)] = l;
    p->nlanes++;
    return l;
}

static void key_lane_free(struct dispatch_part *p, struct dispatch_lane *lane)
{
    struct dispatch_lane **pp = &p->buckets[lane->hash & (p->nbuckets - 1)];
    while (*pp != lane)
        pp = &(*pp)->next_hash;
    *pp = lane->next_hash;
    p->nlanes--;
    free(lane);
}

/* The lane a record of p belongs in. */
static struct dispatch_lane *lane_for(ferry_dispatch *d, struct dispatch_part *p,
                                      const struct ferry_record *view)
{
    if (d->opts.ordering == FERRY_ORDERING_KEY && view->key)
        return key_lane(p, view->key, view->key_len);
    return p->base;
}

/* ---- ready lists ---- */

static void part_make_ready(ferry_dispatch *d, struct dispatch_part *p)
{
    if (p->in_ready || p->draining || p->revoked)
        return;
    p->in_ready = 1;
    p->next_ready = NULL;
    if (d->ready_tail)
        d->ready_tail->next_ready = p;
    else
        d->ready_head = p;
    d->ready_tail = p;
}

/* Records that waited behind a busy lane keep their time: they lingered already. */
static void lane_make_ready(ferry_dispatch *d, struct dispatch_part *p, struct dispatch_lane *l)
{
    if (l->in_ready || !l->queued || (l->ordered && l->in_flight))
        return;
    l->in_ready = 1;
    l->next_ready = NULL;
    if (p->ready_tail)
        p->ready_tail->next_ready = l;
    else
        p->ready_head = l;
    p->ready_tail = l;
    if (!p->ready_records || l->since_ms < p->ready_since_ms)
        p->ready_since_ms = l->since_ms;
    p->ready_records += l->queued;
    p->ready_bytes += l->queued_bytes;
    part_make_ready(d, p);
}

static void lane_pop_ready(struct dispatch_part *p)
{
    struct dispatch_lane *l = p->ready_head;
    p->ready_head = l->next_ready;
    if (!p->ready_head)
        p->ready_tail = NULL;
    l->in_ready = 0;
    p->ready_records -= l->queued;
    p->ready_bytes -= l->queued_bytes;
}

/* ---- partitions ---- */

static struct dispatch_part *find_part(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = d->last;
    if (p && p->partition == partition && strcmp(p->topic, topic) == 0)
        return p;
    for (p = d->live; p; p = p->next) {
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            d->last = p;
            return p;
        }
    }
    return NULL;
}

static void part_free(struct dispatch_part *p)
{
    for (size_t i = 0; i < p->nbuckets; i++)
        for (struct dispatch_lane *l = p->buckets[i], *next; l; l = next) {
            next = l->next_hash;
            free(l);
        }
    free(p->buckets);
    free(p->base);
    ferry_watermark_destroy(p->wm);
    free(p->topic);
    free(p);
}

ferry_dispatch *ferry_dispatch_new(const struct ferry_dispatch_options *opts)
{
    ferry_dispatch *d = calloc(1, sizeof(*d));
    if (d)
        d->opts = *opts;
    return d;
}

int ferry_dispatch_assign(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p;

    if (find_part(d, topic, partition))
        return 0;
    p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->topic = strdup(topic);
    p->partition = partition;
    p->wm = ferry_watermark_new();
    p->base = lane_new(NULL, 0, d->opts.ordering == FERRY_ORDERING_PARTITION);
    if (!p->topic || !p->wm || !p->base) {
        part_free(p);
        return -1;
    }
    p->next = d->live;
    d->live = p;
    return 0;
}

/* A zeroed record, from the spares when there is one. There are never more spares than
 * records held at the busiest moment, which the route's limits bound. */
static struct ferry_dispatch_rec *rec_new(ferry_dispatch *d)
{
    struct ferry_dispatch_rec *rec = d->spare;

    if (!rec)
        return calloc(1, sizeof(*rec));
    d->spare = rec->next;
    memset(rec, 0, sizeof(*rec));
    return rec;
}

static void rec_spare(ferry_dispatch *d, struct ferry_dispatch_rec *rec)
{
    rec->next = d->spare;
    d->spare = rec;
}

/* Releases one record: counts and message; the record becomes a spare. */
static void rec_release(ferry_dispatch *d, struct ferry_dispatch_rec *rec)
{
    d->records--;
    d->bytes -= rec->bytes;
    d->opts.free_msg(rec->msg);
    rec_spare(d, rec);
}

/* Releases every record still queued in a lane. */
static void lane_drop_queued(ferry_dispatch *d, struct dispatch_lane *l)
{
    for (struct ferry_dispatch_rec *r = l->head, *next; r; r = next) {
        next = r->next;
        rec_release(d, r);
    }
    l->head = l->tail = NULL;
    l->queued = l->queued_bytes = 0;
    l->in_ready = 0;
}

static void unlink_ready_part(ferry_dispatch *d, struct dispatch_part *p)
{
    struct dispatch_part **pp = &d->ready_head, *prev = NULL;
    if (!p->in_ready)
        return;
    while (*pp != p) {
        prev = *pp;
        pp = &(*pp)->next_ready;
    }
    *pp = p->next_ready;
    if (d->ready_tail == p)
        d->ready_tail = prev;
    p->in_ready = 0;
}

void ferry_dispatch_drain(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = find_part(d, topic, partition);
    if (!p)
        return;
    p->draining = 1;
    unlink_ready_part(d, p);
}

/* Drops the queued records and idle lanes of a partition being revoked. */
static void part_drop_queued(ferry_dispatch *d, struct dispatch_part *p)
{
    for (size_t i = 0; i < p->nbuckets; i++) {
        for (struct dispatch_lane *l = p->buckets[i], *next; l; l = next) {
            next = l->next_hash;
            lane_drop_queued(d, l);
            if (!l->in_flight)
                key_lane_free(p, l);
        }
    }
    lane_drop_queued(d, p->base);
    p->ready_head = p->ready_tail = NULL;
    p->ready_records = p->ready_bytes = 0;
}

void ferry_dispatch_revoke(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = find_part(d, topic, partition), **pp = &d->live;

    if (!p)
        return;
    unlink_ready_part(d, p);
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    if (d->last == p)
        d->last = NULL;
    p->revoked = 1;
    p->draining = 1;
    part_drop_queued(d, p);
    if (!p->in_flight) {
        part_free(p);
        return;
    }
    p->next = d->revoked;
    d->revoked = p;
}

int ferry_dispatch_add(ferry_dispatch *d, const struct ferry_record *view, void *msg, size_t bytes,
                       int64_t now_ms)
{
    struct dispatch_part *p = find_part(d, view->topic, view->partition);
    struct ferry_dispatch_rec *rec;
    struct dispatch_lane *l;

    if (!p || p->draining)
        return -1;
    l = lane_for(d, p, view);
    rec = rec_new(d);
    if (!l || !rec || ferry_watermark_track(p->wm, view->offset)) {
        if (rec)
            rec_spare(d, rec);
        return -1;
    }
    rec->view = *view;
    rec->msg = msg;
    rec->bytes = bytes;
    rec->lane = l;
    rec->part = p;
    if (!l->queued)
        l->since_ms = now_ms;
    if (l->tail)
        l->tail->next = rec;
    else
        l->head = rec;
    l->tail = rec;
    l->queued++;
    l->queued_bytes += bytes;
    d->records++;
    d->bytes += bytes;
    if (l->in_ready) {
        if (!p->ready_records)
            p->ready_since_ms = now_ms;
        p->ready_records++;
        p->ready_bytes += bytes;
    } else {
        lane_make_ready(d, p, l);
    }
    return 0;
}

/* ---- forming requests ---- */

static int part_due(const ferry_dispatch *d, const struct dispatch_part *p, int64_t now_ms,
                    int flush)
{
    return flush || d->opts.max_records <= 1 || p->ready_records >= d->opts.max_records ||
           p->ready_bytes >= d->opts.max_bytes || now_ms - p->ready_since_ms >= d->opts.linger_ms;
}

/* Takes the head record of p's first ready lane. */
static struct ferry_dispatch_rec *take_head(struct dispatch_part *p)
{
    struct dispatch_lane *l = p->ready_head;
    struct ferry_dispatch_rec *rec = l->head;

    l->head = rec->next;
    if (!l->head)
        l->tail = NULL;
    rec->prev = NULL;
    rec->next = p->flight;
    if (p->flight)
        p->flight->prev = rec;
    p->flight = rec;
    l->queued--;
    l->queued_bytes -= rec->bytes;
    l->in_flight++;
    p->ready_records--;
    p->ready_bytes -= rec->bytes;
    p->in_flight++;
    return rec;
}

static size_t form_batch(ferry_dispatch *d, struct dispatch_part *p,
                         struct ferry_dispatch_rec **out, size_t max)
{
    size_t n = 0, bytes = 0;

    while (n < max && p->ready_head) {
        struct dispatch_lane *l = p->ready_head;
        size_t first = n;
        int full = 0;

        while (n < max && l->head) {
            if (n && bytes + l->head->bytes > d->opts.max_bytes) {
                full = 1;
                break;
            }
            bytes += l->head->bytes;
            out[n++] = take_head(p);
        }
        /* An ordered lane that gave records now waits for them; the free lane leaves once
         * empty. */
        if ((l->ordered && n > first) || !l->head)
            lane_pop_ready(p);
        if (full)
            break;
    }
    return n;
}

size_t ferry_dispatch_next(ferry_dispatch *d, int64_t now_ms, int flush,
                           struct ferry_dispatch_rec **out, size_t max)
{
    struct dispatch_part *p;
    size_t n;

    if (max > d->opts.max_records)
        max = d->opts.max_records;
    for (p = d->ready_head; p; p = p->next_ready)
        if (part_due(d, p, now_ms, flush))
            break;
    if (!p || !max)
        return 0;
    n = form_batch(d, p, out, max);
    unlink_ready_part(d, p);
    if (p->ready_head)
        part_make_ready(d, p); /* to the back: partitions take turns */
    else
        p->ready_records = p->ready_bytes = 0;
    return n;
}

int64_t ferry_dispatch_next_due_ms(const ferry_dispatch *d)
{
    int64_t due = INT64_MAX;
    for (const struct dispatch_part *p = d->ready_head; p; p = p->next_ready) {
        int64_t t = d->opts.max_records <= 1 ? 0 : p->ready_since_ms + d->opts.linger_ms;
        if (t < due)
            due = t;
    }
    return due;
}

/* ---- completion ---- */

static void remove_revoked(ferry_dispatch *d, struct dispatch_part *p)
{
    struct dispatch_part **pp = &d->revoked;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    part_free(p);
}

/* Returns a record's lane to service, or frees it when it is an idle key lane and the
 * partition has many. */
static void lane_settle(ferry_dispatch *d, struct dispatch_part *p, struct dispatch_lane *l)
{
    if (l->in_flight || l == p->base)
        goto out;
    if (!l->queued && (p->revoked || p->nlanes > FERRY_DISPATCH_IDLE_LANES_MAX)) {
        key_lane_free(p, l);
        return;
    }
out:
    if (!p->revoked)
        lane_make_ready(d, p, l);
}

static void settle(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n, int finished)
{
    for (size_t i = 0; i < n; i++) {
        struct ferry_dispatch_rec *rec = recs[i];
        struct dispatch_part *p = rec->part;

        rec->lane->in_flight--;
        p->in_flight--;
        if (rec->prev)
            rec->prev->next = rec->next;
        else
            p->flight = rec->next;
        if (rec->next)
            rec->next->prev = rec->prev;
        if (finished && !p->revoked) {
            int64_t before = ferry_watermark_commit_offset(p->wm);
            ferry_watermark_finish(p->wm, rec->view.offset);
            p->dirty |= ferry_watermark_commit_offset(p->wm) != before;
        }
        lane_settle(d, p, rec->lane);
        rec_release(d, rec);
        if (p->revoked && !p->in_flight)
            remove_revoked(d, p);
    }
}

void ferry_dispatch_finish(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n)
{
    settle(d, recs, n, 1);
}

void ferry_dispatch_abandon(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n)
{
    settle(d, recs, n, 0);
}

int ferry_dispatch_rec_stale(const struct ferry_dispatch_rec *rec)
{
    return rec->part->draining;
}

void ferry_dispatch_take_commits(ferry_dispatch *d,
                                 void (*fn)(void *arg, const char *topic, int32_t partition,
                                            int64_t offset),
                                 void *arg)
{
    for (struct dispatch_part *p = d->live; p; p = p->next) {
        int64_t offset;
        if (!p->dirty)
            continue;
        p->dirty = 0;
        offset = ferry_watermark_commit_offset(p->wm);
        if (offset >= 0)
            fn(arg, p->topic, p->partition, offset);
    }
}

int64_t ferry_dispatch_commit_offset(const ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = find_part((ferry_dispatch *)d, topic, partition);
    return p ? ferry_watermark_commit_offset(p->wm) : -1;
}

size_t ferry_dispatch_in_flight(const ferry_dispatch *d, const char *topic, int32_t partition)
{
    const struct dispatch_part *p;
    size_t n = 0;

    for (p = d->live; p; p = p->next)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            n += p->in_flight;
    for (p = d->revoked; p; p = p->next)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            n += p->in_flight;
    return n;
}

size_t ferry_dispatch_key_lanes(const ferry_dispatch *d, const char *topic, int32_t partition)
{
    for (const struct dispatch_part *p = d->live; p; p = p->next)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p->nlanes;
    return 0;
}

size_t ferry_dispatch_records(const ferry_dispatch *d)
{
    return d->records;
}

size_t ferry_dispatch_bytes(const ferry_dispatch *d)
{
    return d->bytes;
}

void ferry_dispatch_destroy(ferry_dispatch *d)
{
    if (!d)
        return;
    while (d->live)
        ferry_dispatch_revoke(d, d->live->topic, d->live->partition);
    /* A stopping worker may drop requests without settling them: release their records too. */
    while (d->revoked) {
        struct dispatch_part *p = d->revoked;
        d->revoked = p->next;
        for (struct ferry_dispatch_rec *r = p->flight, *next; r; r = next) {
            next = r->next;
            rec_release(d, r);
        }
        part_free(p);
    }
    while (d->spare) {
        struct ferry_dispatch_rec *rec = d->spare;
        d->spare = rec->next;
        free(rec);
    }
    free(d);
}
