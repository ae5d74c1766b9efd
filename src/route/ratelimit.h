/*
 * ratelimit.h - token buckets that pace a route's requests: requests, records and bytes per
 * second, each with its own bucket, and a burst.
 *
 * A limiter is either a route's own (`rate_limit:`) or a named one that several routes share
 * (`limiters:`), so every function may be called from any route worker thread at once: the
 * state of each bucket is one atomic word, and nothing locks.
 *
 * Each bucket is kept as the time at which it was, or will be, empty (in the manner of the
 * generic cell rate algorithm): a bucket of capacity C units refilling at R units per second
 * holds (now - empty_at) * R units, at most C. A request may start while every bucket holds
 * at least one unit; it then takes its whole cost (1 request, its records, its body bytes),
 * which may leave a bucket in debt, and the next request waits until the debt is paid off.
 * So a request larger than a bucket still goes, and the long-run rate is exact whatever the
 * sizes. Two threads that find a limiter ready at the same moment may both start a request:
 * the debt they leave delays the next ones, so the rate holds over time.
 *
 * Times are nanoseconds on the caller's clock (the route passes core/clock.h's monotonic
 * clock; unit tests pass their own), and must not go backwards for one limiter.
 */
#ifndef FERRY_RATELIMIT_H
#define FERRY_RATELIMIT_H

#include <stdint.h>

typedef struct ferry_ratelimit ferry_ratelimit;

/* What a limiter allows. A rate of 0 leaves that unit unlimited. */
struct ferry_ratelimit_rates {
    double requests_per_second;
    double records_per_second;
    double bytes_per_second;
    /* How much unused allowance a bucket saves up, as time at its rate: its capacity is
     * rate x burst, and never less than one unit. */
    int64_t burst_ms;
};

/* Returns a limiter whose buckets are full, or NULL when out of memory. The caller frees it
 * with ferry_ratelimit_destroy(). Any thread. */
ferry_ratelimit *ferry_ratelimit_new(const struct ferry_ratelimit_rates *rates);

/* Frees a limiter nobody uses any more. Accepts NULL. */
void ferry_ratelimit_destroy(ferry_ratelimit *l);

/* Returns the earliest time at which a request may start: at or before now when it may start
 * now. Any thread. */
int64_t ferry_ratelimit_ready_ns(const ferry_ratelimit *l);

/* Takes the cost of a request that starts at now_ns: one request, records records and bytes
 * bytes. The caller checked ferry_ratelimit_ready_ns() first; the buckets may go into debt.
 * Any thread. */
void ferry_ratelimit_take(ferry_ratelimit *l, int64_t now_ns, uint64_t records, uint64_t bytes);

#endif
