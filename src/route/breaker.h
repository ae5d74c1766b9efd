/*
 * breaker.h - a route target's circuit breaker: closed, open, half-open.
 *
 * Closed: requests go out, and their results are counted in a sliding window. It opens when
 * at least min_requests in the window saw failure_rate or more fail, or after
 * consecutive_failures failures in a row. Open: no request may start until the open period
 * ends (open_ms, doubling at each reopening up to max_open_ms). Half-open: up to probes
 * requests go out; when all of them succeed it closes (and the open period is back to
 * open_ms), and when one fails it opens again.
 *
 * A failure is an outcome that says the target is in trouble (a retry: 5xx, 429, a timeout,
 * no answer); an answer that refuses the record itself (a dead-letter status) is not. The
 * caller asks ferry_breaker_may_start() before it takes records for a request, and reports
 * each request it starts and each result. A result counts only in the state its request
 * started in: one that comes after a change of state (a request started before the breaker
 * opened, or a probe of an earlier half-open round) counts for nothing. Time is passed in, so
 * tests drive it. One thread uses a breaker.
 */
#ifndef FERRY_BREAKER_H
#define FERRY_BREAKER_H

#include <stdint.h>

/* Buckets of the sliding window: it moves on by window_ms / FERRY_BREAKER_BUCKETS. */
#define FERRY_BREAKER_BUCKETS 10

enum ferry_breaker_state {
    FERRY_BREAKER_CLOSED,
    FERRY_BREAKER_OPEN,
    FERRY_BREAKER_HALF_OPEN,
};

/* What a started request is to the breaker: the state it started in (which of the breaker's
 * states so far, not just closed or half-open) and whether it is a probe, whose result
 * decides. 0 is no request's ticket. */
typedef int64_t ferry_breaker_ticket;

struct ferry_breaker_policy {
    double failure_rate;          /* 0..1 */
    int64_t min_requests;         /* in the window, before the rate counts */
    int64_t window_ms;            /* > 0 */
    int64_t consecutive_failures; /* 0: not used */
    int64_t open_ms;              /* the first open period */
    int64_t max_open_ms;          /* the longest */
    int64_t probes;               /* successes in half-open that close it; >= 1 */
};

typedef struct ferry_breaker ferry_breaker;

/* Told of every change of state: why says what caused it ("12 of 20 requests failed in the
 * last 10 s", "a probe failed"). */
typedef void (*ferry_breaker_change_fn)(void *arg, enum ferry_breaker_state from,
                                        enum ferry_breaker_state to, const char *why);

/* A closed breaker. NULL when out of memory. */
ferry_breaker *ferry_breaker_new(const struct ferry_breaker_policy *policy,
                                 ferry_breaker_change_fn on_change, void *arg);
void ferry_breaker_destroy(ferry_breaker *b);

/* Nonzero when a request may start at now_ms (closed, or half-open with probes left). An open
 * breaker whose period ended turns half-open here. */
int ferry_breaker_may_start(ferry_breaker *b, int64_t now_ms);

/* A request started (after ferry_breaker_may_start() said yes): returns its ticket. */
ferry_breaker_ticket ferry_breaker_started(ferry_breaker *b);

/* Nonzero for the ticket of a probe. */
int ferry_breaker_is_probe(ferry_breaker_ticket ticket);

/* The result of a request started with ticket: failed when the target is in trouble. */
void ferry_breaker_result(ferry_breaker *b, ferry_breaker_ticket ticket, int failed,
                          int64_t now_ms);

/* The caller has nothing left to send (no record waiting, none under way). A half-open
 * breaker whose probes so far all succeeded closes then, rather than wait for the probes it
 * has no records for: a quiet topic would keep it half-open until the next records came. */
void ferry_breaker_idle(ferry_breaker *b);

enum ferry_breaker_state ferry_breaker_state(const ferry_breaker *b);

/* When an open breaker turns half-open; INT64_MAX when it is not open. */
int64_t ferry_breaker_open_until_ms(const ferry_breaker *b);

/* "closed", "open", "half_open". */
const char *ferry_breaker_state_name(enum ferry_breaker_state state);

#endif
