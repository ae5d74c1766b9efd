/*
 * ratelimit.c - the token buckets of ratelimit.h: per unit, one atomic word holding the time
 * at which the bucket was or will be empty. Reading it says when a request may start; taking
 * moves it forward by the request's cost, from no earlier than the moment the bucket was full.
 */
#include "route/ratelimit.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NS_PER_SECOND 1e9
#define NS_PER_MS INT64_C(1000000)
#define COST_MAX_NS INT64_C(1000000000000000000) /* 31 years: a cost never overflows */
#define FULL_SINCE (INT64_MIN / 4)               /* long before any reading of a clock */

enum { UNIT_REQUESTS, UNIT_RECORDS, UNIT_BYTES, UNITS };

struct bucket {
    _Atomic int64_t empty_at; /* holds (now - empty_at) / ns_per_unit units, at most capacity */
    double ns_per_unit;       /* 0: this unit is not limited */
    int64_t unit_ns;          /* one unit's time, rounded up */
    int64_t capacity_ns;      /* capacity as time at the rate: at least one unit */
};

struct ferry_ratelimit {
    struct bucket buckets[UNITS];
};

static void bucket_init(struct bucket *b, double per_second, int64_t burst_ms)
{
    double capacity_ns;

    atomic_init(&b->empty_at, FULL_SINCE);
    if (!(per_second > 0))
        return;
    b->ns_per_unit = NS_PER_SECOND / per_second;
    if (b->ns_per_unit > (double)COST_MAX_NS) /* a rate below one per 31 years */
        b->ns_per_unit = (double)COST_MAX_NS;
    b->unit_ns = (int64_t)ceil(b->ns_per_unit);
    capacity_ns = (double)burst_ms * (double)NS_PER_MS;
    if (capacity_ns < b->ns_per_unit)
        capacity_ns = b->ns_per_unit;
    b->capacity_ns = capacity_ns > (double)COST_MAX_NS ? COST_MAX_NS : (int64_t)capacity_ns;
}

ferry_ratelimit *ferry_ratelimit_new(const struct ferry_ratelimit_rates *rates)
{
    ferry_ratelimit *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    bucket_init(&l->buckets[UNIT_REQUESTS], rates->requests_per_second, rates->burst_ms);
    bucket_init(&l->buckets[UNIT_RECORDS], rates->records_per_second, rates->burst_ms);
    bucket_init(&l->buckets[UNIT_BYTES], rates->bytes_per_second, rates->burst_ms);
    return l;
}

void ferry_ratelimit_destroy(ferry_ratelimit *l)
{
    free(l);
}

/* A bucket holds one unit from one unit's time after it was empty. */
static int64_t bucket_ready_ns(const struct bucket *b)
{
    int64_t empty_at;

    if (b->ns_per_unit == 0)
        return FULL_SINCE;
    empty_at = atomic_load_explicit(&((struct bucket *)b)->empty_at, memory_order_relaxed);
    return empty_at + b->unit_ns;
}

int64_t ferry_ratelimit_ready_ns(const ferry_ratelimit *l)
{
    int64_t ready = FULL_SINCE;

    for (int i = 0; i < UNITS; i++) {
        int64_t t = bucket_ready_ns(&l->buckets[i]);
        if (t > ready)
            ready = t;
    }
    return ready;
}

static void bucket_take(struct bucket *b, int64_t now_ns, uint64_t units)
{
    double cost = (double)units * b->ns_per_unit;
    int64_t cost_ns = cost > (double)COST_MAX_NS ? COST_MAX_NS : (int64_t)(cost + 0.5);
    int64_t full_at = now_ns - b->capacity_ns; /* emptied then, it is full by now */
    int64_t old = atomic_load_explicit(&b->empty_at, memory_order_relaxed), next;

    do
        next = (old > full_at ? old : full_at) + cost_ns;
    while (!atomic_compare_exchange_weak_explicit(&b->empty_at, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed));
}

void ferry_ratelimit_take(ferry_ratelimit *l, int64_t now_ns, uint64_t records, uint64_t bytes)
{
    const uint64_t cost[UNITS] = {
        [UNIT_REQUESTS] = 1, [UNIT_RECORDS] = records, [UNIT_BYTES] = bytes};

    for (int i = 0; i < UNITS; i++)
        if (l->buckets[i].ns_per_unit != 0)
            bucket_take(&l->buckets[i], now_ns, cost[i]);
}
