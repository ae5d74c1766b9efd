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
#include <sys/queue.h>

/* The lists, all <sys/queue.h> ones. A record is on one of three at a time, through its link:
 * its lane's queue, its partition's flight, or the spares. */
STAILQ_HEAD(rec_queue, ferry_dispatch_rec);
LIST_HEAD(rec_list, ferry_dispatch_rec);
SLIST_HEAD(rec_stack, ferry_dispatch_rec);
STAILQ_HEAD(lane_queue, dispatch_lane); /* a partition's ready lanes, in turn */
SLIST_HEAD(lane_chain, dispatch_lane);  /* a hash bucket of key lanes */
TAILQ_HEAD(part_queue, dispatch_part);  /* the dispatcher's ready partitions, in turn */
LIST_HEAD(part_list, dispatch_part);    /* the live or the revoked partitions */

struct dispatch_lane {
    struct rec_queue queue; /* waiting to be given out, oldest first */
    size_t queued;
    size_t queued_bytes;
    size_t in_flight;
    int64_t since_ms; /* when its oldest queued record came, or earlier */
    int ordered;      /* gives out nothing while records are in flight */
    int in_ready;     /* in its partition's ready list */
    STAILQ_ENTRY(dispatch_lane) ready_link;
    SLIST_ENTRY(dispatch_lane) hash_link;
    uint32_t hash;
    size_t key_len;
    char key[];
};

struct dispatch_part {
    char *topic;
    int32_t partition;
    ferry_watermark *wm;
    struct dispatch_lane *base;
    struct lane_chain *buckets;
    size_t nbuckets, nlanes;
    struct lane_queue ready;
    size_t ready_records, ready_bytes;
    int64_t ready_since_ms;
    size_t in_flight;
    struct rec_list flight; /* the records in flight */
    int draining, revoked, dirty, in_ready;
    int fetched; /* a record came since the partition was assigned: its fetch has started */
    int64_t refetch_from; /* after running out of memory: take nothing before this offset is
                             consumed again; -1 otherwise */
    TAILQ_ENTRY(dispatch_part) ready_link;
    LIST_ENTRY(dispatch_part) link; /* in the live list or the revoked list */
};

struct ferry_dispatch {
    struct ferry_dispatch_options opts;
    struct part_list live;
    struct part_list revoked;
    struct dispatch_part *last; /* the partition found last, as records come in runs */
    struct part_queue ready;
    size_t records, bytes;
    struct rec_stack spare; /* released records, reused, the latest first */
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
    STAILQ_INIT(&l->queue);
    l->ordered = ordered;
    l->key_len = len;
    if (len)
        memcpy(l->key, key, len);
    return l;
}

static int grow_buckets(struct dispatch_part *p)
{
    size_t n = p->nbuckets ? p->nbuckets * 2 : 64;
    struct lane_chain *b = calloc(n, sizeof(*b)); /* all zero: every chain empty */
    struct dispatch_lane *l;

    if (!b)
        return -1;
    for (size_t i = 0; i < p->nbuckets; i++) {
        while ((l = SLIST_FIRST(&p->buckets[i]))) {
            SLIST_REMOVE_HEAD(&p->buckets[i], hash_link);
            SLIST_INSERT_HEAD(&b[l->hash & (n - 1)], l, hash_link);
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
        SLIST_FOREACH(l, &p->buckets[h & (p->nbuckets - 1)], hash_link)
            if (l->hash == h && l->key_len == len && memcmp(l->key, key, len) == 0)
                return l;
    }
    if (p->nlanes >= p->nbuckets && grow_buckets(p))
        return NULL;
    l = lane_new(key, len, 1);
    if (!l)
        return NULL;
    l->hash = h;
    SLIST_INSERT_HEAD(&p->buckets[h & (p->nbuckets - 1)], l, hash_link);
    p->nlanes++;
    return l;
}

static void key_lane_free(struct dispatch_part *p, struct dispatch_lane *lane)
{
    SLIST_REMOVE(&p->buckets[lane->hash & (p->nbuckets - 1)], lane, dispatch_lane, hash_link);
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
    TAILQ_INSERT_TAIL(&d->ready, p, ready_link);
}

/* Records that waited behind a busy lane keep their time: they lingered already. */
static void lane_make_ready(ferry_dispatch *d, struct dispatch_part *p, struct dispatch_lane *l)
{
    if (l->in_ready || !l->queued || (l->ordered && l->in_flight))
        return;
    l->in_ready = 1;
    STAILQ_INSERT_TAIL(&p->ready, l, ready_link);
    if (!p->ready_records || l->since_ms < p->ready_since_ms)
        p->ready_since_ms = l->since_ms;
    p->ready_records += l->queued;
    p->ready_bytes += l->queued_bytes;
    part_make_ready(d, p);
}

static void lane_pop_ready(struct dispatch_part *p)
{
    struct dispatch_lane *l = STAILQ_FIRST(&p->ready);

    STAILQ_REMOVE_HEAD(&p->ready, ready_link);
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
    LIST_FOREACH(p, &d->live, link) {
        if (p->partition == partition && strcmp(p->topic, topic) == 0) {
            d->last = p;
            return p;
        }
    }
    return NULL;
}

/* find_part() for readers that leave the cache alone. */
static const struct dispatch_part *live_part(const ferry_dispatch *d, const char *topic,
                                             int32_t partition)
{
    const struct dispatch_part *p;

    LIST_FOREACH(p, &d->live, link)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            return p;
    return NULL;
}

static void part_free(struct dispatch_part *p)
{
    for (size_t i = 0; i < p->nbuckets; i++)
        for (struct dispatch_lane *l = SLIST_FIRST(&p->buckets[i]), *next; l; l = next) {
            next = SLIST_NEXT(l, hash_link);
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
    if (!d)
        return NULL;
    d->opts = *opts;
    LIST_INIT(&d->live);
    LIST_INIT(&d->revoked);
    TAILQ_INIT(&d->ready);
    SLIST_INIT(&d->spare);
    return d;
}

int ferry_dispatch_assign(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = find_part(d, topic, partition);

    if (p) {
        p->fetched = 0; /* assigned again: the consumer starts its fetch again */
        return 0;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    STAILQ_INIT(&p->ready);
    LIST_INIT(&p->flight);
    p->topic = strdup(topic);
    p->partition = partition;
    p->refetch_from = -1;
    p->wm = ferry_watermark_new();
    p->base = lane_new(NULL, 0, d->opts.ordering == FERRY_ORDERING_PARTITION);
    if (!p->topic || !p->wm || !p->base) {
        part_free(p);
        return -1;
    }
    LIST_INSERT_HEAD(&d->live, p, link);
    return 0;
}

/* A zeroed record, from the spares when there is one. There are never more spares than
 * records held at the busiest moment, which the route's limits bound. */
static struct ferry_dispatch_rec *rec_new(ferry_dispatch *d)
{
    struct ferry_dispatch_rec *rec = SLIST_FIRST(&d->spare);

    if (!rec)
        return calloc(1, sizeof(*rec));
    SLIST_REMOVE_HEAD(&d->spare, link.spare);
    memset(rec, 0, sizeof(*rec));
    return rec;
}

static void rec_spare(ferry_dispatch *d, struct ferry_dispatch_rec *rec)
{
    SLIST_INSERT_HEAD(&d->spare, rec, link.spare);
}

int ferry_dispatch_note_fetched(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = find_part(d, topic, partition);

    if (!p || p->fetched)
        return 0;
    p->fetched = 1;
    return 1;
}

int ferry_dispatch_fetched(const ferry_dispatch *d, const char *topic, int32_t partition)
{
    const struct dispatch_part *p = live_part(d, topic, partition);

    return p ? p->fetched : 0;
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
    for (struct ferry_dispatch_rec *r = STAILQ_FIRST(&l->queue), *next; r; r = next) {
        next = STAILQ_NEXT(r, link.queued); /* before the record becomes a spare */
        rec_release(d, r);
    }
    STAILQ_INIT(&l->queue);
    l->queued = l->queued_bytes = 0;
    l->in_ready = 0;
}

static void unlink_ready_part(ferry_dispatch *d, struct dispatch_part *p)
{
    if (!p->in_ready)
        return;
    TAILQ_REMOVE(&d->ready, p, ready_link);
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
        for (struct dispatch_lane *l = SLIST_FIRST(&p->buckets[i]), *next; l; l = next) {
            next = SLIST_NEXT(l, hash_link);
            lane_drop_queued(d, l);
            if (!l->in_flight)
                key_lane_free(p, l);
        }
    }
    lane_drop_queued(d, p->base);
    STAILQ_INIT(&p->ready);
    p->ready_records = p->ready_bytes = 0;
}

void ferry_dispatch_revoke(ferry_dispatch *d, const char *topic, int32_t partition)
{
    struct dispatch_part *p = find_part(d, topic, partition);

    if (!p)
        return;
    unlink_ready_part(d, p);
    LIST_REMOVE(p, link);
    if (d->last == p)
        d->last = NULL;
    p->revoked = 1;
    p->draining = 1;
    part_drop_queued(d, p);
    if (!p->in_flight) {
        part_free(p);
        return;
    }
    LIST_INSERT_HEAD(&d->revoked, p, link);
}

int ferry_dispatch_add(ferry_dispatch *d, const struct ferry_record *view, void *msg, size_t bytes,
                       int64_t now_ms)
{
    struct dispatch_part *p = find_part(d, view->topic, view->partition);
    struct ferry_dispatch_rec *rec;
    struct dispatch_lane *l;

    int tracked;

    /* Records fetched behind one that could not be taken come again after it. */
    if (!p || p->draining || (p->refetch_from >= 0 && view->offset != p->refetch_from))
        return FERRY_DISPATCH_NOT_OURS;
    l = lane_for(d, p, view);
    rec = rec_new(d);
    tracked = l && rec ? ferry_watermark_track(p->wm, view->offset) : -2;
    if (tracked) {
        if (rec)
            rec_spare(d, rec);
        if (tracked == -1)
            return FERRY_DISPATCH_NOT_OURS;
        p->refetch_from = view->offset;
        return FERRY_DISPATCH_NO_MEMORY;
    }
    p->refetch_from = -1;
    rec->view = *view;
    rec->msg = msg;
    rec->bytes = bytes;
    rec->lane = l;
    rec->part = p;
    if (!l->queued)
        l->since_ms = now_ms;
    STAILQ_INSERT_TAIL(&l->queue, rec, link.queued);
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
    struct dispatch_lane *l = STAILQ_FIRST(&p->ready);
    struct ferry_dispatch_rec *rec = STAILQ_FIRST(&l->queue);

    STAILQ_REMOVE_HEAD(&l->queue, link.queued);
    LIST_INSERT_HEAD(&p->flight, rec, link.flight);
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
    struct dispatch_lane *l;

    while (n < max && (l = STAILQ_FIRST(&p->ready))) {
        struct ferry_dispatch_rec *head;
        size_t first = n;
        int full = 0;

        while (n < max && (head = STAILQ_FIRST(&l->queue))) {
            if (n && bytes + head->bytes > d->opts.max_bytes) {
                full = 1;
                break;
            }
            bytes += head->bytes;
            out[n++] = take_head(p);
        }
        /* An ordered lane that gave records now waits for them; the free lane leaves once
         * empty. */
        if ((l->ordered && n > first) || STAILQ_EMPTY(&l->queue))
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
    TAILQ_FOREACH(p, &d->ready, ready_link)
        if (part_due(d, p, now_ms, flush))
            break;
    if (!p || !max)
        return 0;
    n = form_batch(d, p, out, max);
    unlink_ready_part(d, p);
    if (!STAILQ_EMPTY(&p->ready))
        part_make_ready(d, p); /* to the back: partitions take turns */
    else
        p->ready_records = p->ready_bytes = 0;
    return n;
}

int64_t ferry_dispatch_next_due_ms(const ferry_dispatch *d)
{
    int64_t due = INT64_MAX;
    const struct dispatch_part *p;

    TAILQ_FOREACH(p, &d->ready, ready_link) {
        int64_t t = d->opts.max_records <= 1 ? 0 : p->ready_since_ms + d->opts.linger_ms;
        if (t < due)
            due = t;
    }
    return due;
}

void ferry_dispatch_give_back(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n)
{
    for (size_t i = n; i-- > 0;) { /* from the last, each at its lane's head */
        struct ferry_dispatch_rec *rec = recs[i];
        struct dispatch_part *p = rec->part;
        struct dispatch_lane *l = rec->lane;

        LIST_REMOVE(rec, link.flight);
        STAILQ_INSERT_HEAD(&l->queue, rec, link.queued);
        rec->given_back = 1;
        l->in_flight--;
        p->in_flight--;
        l->queued++;
        l->queued_bytes += rec->bytes;
        l->since_ms = 0; /* they lingered already */
        if (l->in_ready) {
            p->ready_records++;
            p->ready_bytes += rec->bytes;
            p->ready_since_ms = 0;
        }
    }
    for (size_t i = 0; i < n; i++)
        lane_make_ready(d, recs[i]->part, recs[i]->lane); /* once per lane: then in_ready */
}

/* ---- completion ---- */

static void remove_revoked(struct dispatch_part *p)
{
    LIST_REMOVE(p, link);
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
        LIST_REMOVE(rec, link.flight);
        if (finished && !p->revoked) {
            int64_t before = ferry_watermark_commit_offset(p->wm);
            ferry_watermark_finish(p->wm, rec->view.offset);
            p->dirty |= ferry_watermark_commit_offset(p->wm) != before;
        }
        lane_settle(d, p, rec->lane);
        rec_release(d, rec);
        if (p->revoked && !p->in_flight)
            remove_revoked(p);
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
    struct dispatch_part *p;

    LIST_FOREACH(p, &d->live, link) {
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

    LIST_FOREACH(p, &d->live, link)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            n += p->in_flight;
    LIST_FOREACH(p, &d->revoked, link)
        if (p->partition == partition && strcmp(p->topic, topic) == 0)
            n += p->in_flight;
    return n;
}

size_t ferry_dispatch_key_lanes(const ferry_dispatch *d, const char *topic, int32_t partition)
{
    const struct dispatch_part *p = live_part(d, topic, partition);

    return p ? p->nlanes : 0;
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
    struct dispatch_part *p;
    struct ferry_dispatch_rec *rec, *next;

    if (!d)
        return;
    while ((p = LIST_FIRST(&d->live)))
        ferry_dispatch_revoke(d, p->topic, p->partition);
    /* A stopping worker may drop requests without settling them: release their records too. */
    while ((p = LIST_FIRST(&d->revoked))) {
        LIST_REMOVE(p, link);
        for (rec = LIST_FIRST(&p->flight); rec; rec = next) {
            next = LIST_NEXT(rec, link.flight);
            rec_release(d, rec);
        }
        part_free(p);
    }
    for (rec = SLIST_FIRST(&d->spare); rec; rec = next) {
        next = SLIST_NEXT(rec, link.spare);
        free(rec);
    }
    free(d);
}
