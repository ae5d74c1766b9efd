/*
 * breaker.c - a route target's circuit breaker (see breaker.h).
 *
 * The window is a ring of FERRY_BREAKER_BUCKETS buckets, each counting the requests and
 * failures of one slice of time; a bucket whose slice is over is emptied before it is used
 * again, so the sums cover the last window_ms (to within one slice).
 */
#include "route/breaker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BREAKER_WHY_MAX 160

struct bucket {
    int64_t slice; /* which slice of time it counts: now_ms / slice_ms */
    int64_t requests, failures;
};

struct ferry_breaker {
    struct ferry_breaker_policy p;
    ferry_breaker_change_fn on_change;
    void *arg;
    enum ferry_breaker_state state;
    int64_t slice_ms;
    struct bucket buckets[FERRY_BREAKER_BUCKETS];
    int64_t consecutive;     /* failures in a row */
    int64_t open_period_ms;  /* of the current or next opening */
    int64_t open_until_ms;   /* while open */
    int64_t probes_started;  /* while half-open */
    int64_t probes_answered; /* successes while half-open */
    int64_t generation;      /* counts the changes of state: a ticket holds it */
};

ferry_breaker *ferry_breaker_new(const struct ferry_breaker_policy *policy,
                                 ferry_breaker_change_fn on_change, void *arg)
{
    ferry_breaker *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->p = *policy;
    if (b->p.probes < 1)
        b->p.probes = 1;
    b->on_change = on_change;
    b->arg = arg;
    b->state = FERRY_BREAKER_CLOSED;
    b->generation = 1; /* no ticket is 0 */
    b->slice_ms = b->p.window_ms / FERRY_BREAKER_BUCKETS;
    if (b->slice_ms < 1)
        b->slice_ms = 1;
    b->open_period_ms = b->p.open_ms;
    b->open_until_ms = INT64_MAX;
    for (size_t i = 0; i < FERRY_BREAKER_BUCKETS; i++)
        b->buckets[i].slice = -1;
    return b;
}

void ferry_breaker_destroy(ferry_breaker *b)
{
    free(b);
}

const char *ferry_breaker_state_name(enum ferry_breaker_state state)
{
    static const char *const names[] = {"closed", "open", "half_open"};
    return names[state];
}

static void set_state(ferry_breaker *b, enum ferry_breaker_state to, const char *why)
{
    enum ferry_breaker_state from = b->state;

    b->state = to;
    b->generation++;
    if (b->on_change)
        b->on_change(b->arg, from, to, why);
}

static void clear_window(ferry_breaker *b)
{
    for (size_t i = 0; i < FERRY_BREAKER_BUCKETS; i++)
        b->buckets[i].slice = -1;
    b->consecutive = 0;
}

static struct bucket *bucket_at(ferry_breaker *b, int64_t now_ms)
{
    int64_t slice = now_ms / b->slice_ms;
    struct bucket *k = &b->buckets[slice % FERRY_BREAKER_BUCKETS];

    if (k->slice != slice) {
        k->slice = slice;
        k->requests = k->failures = 0;
    }
    return k;
}

static void window_sums(const ferry_breaker *b, int64_t now_ms, int64_t *requests,
                        int64_t *failures)
{
    int64_t slice = now_ms / b->slice_ms;

    *requests = *failures = 0;
    for (size_t i = 0; i < FERRY_BREAKER_BUCKETS; i++) {
        const struct bucket *k = &b->buckets[i];
        if (k->slice >= 0 && slice - k->slice < FERRY_BREAKER_BUCKETS) {
            *requests += k->requests;
            *failures += k->failures;
        }
    }
}

static void open_now(ferry_breaker *b, int64_t now_ms, const char *why)
{
    b->open_until_ms = now_ms + b->open_period_ms;
    b->open_period_ms *= 2;
    if (b->open_period_ms > b->p.max_open_ms)
        b->open_period_ms = b->p.max_open_ms;
    clear_window(b);
    set_state(b, FERRY_BREAKER_OPEN, why);
}

/* Closed: opens when the window's failure rate or the failures in a row say so. */
static void check_closed(ferry_breaker *b, int64_t now_ms)
{
    char why[BREAKER_WHY_MAX];
    int64_t requests, failures;

    if (b->p.consecutive_failures > 0 && b->consecutive >= b->p.consecutive_failures) {
        snprintf(why, sizeof(why), "%" PRId64 " requests failed in a row", b->consecutive);
        open_now(b, now_ms, why);
        return;
    }
    window_sums(b, now_ms, &requests, &failures);
    if (requests < b->p.min_requests || requests == 0 ||
        (double)failures < b->p.failure_rate * (double)requests)
        return;
    snprintf(why, sizeof(why), "%" PRId64 " of %" PRId64 " requests failed in the last %.0f s",
             failures, requests, (double)b->p.window_ms / 1000.0);
    open_now(b, now_ms, why);
}

int ferry_breaker_may_start(ferry_breaker *b, int64_t now_ms)
{
    char why[BREAKER_WHY_MAX];

    if (b->state == FERRY_BREAKER_OPEN && now_ms >= b->open_until_ms) {
        b->open_until_ms = INT64_MAX;
        b->probes_started = b->probes_answered = 0;
        snprintf(why, sizeof(why), "sending up to %" PRId64 " probe request(s)", b->p.probes);
        set_state(b, FERRY_BREAKER_HALF_OPEN, why);
    }
    if (b->state == FERRY_BREAKER_HALF_OPEN)
        return b->probes_started < b->p.probes;
    return b->state == FERRY_BREAKER_CLOSED;
}

/* A ticket is the generation times two, plus one for a probe. */
ferry_breaker_ticket ferry_breaker_started(ferry_breaker *b)
{
    if (b->state != FERRY_BREAKER_HALF_OPEN)
        return b->generation * 2;
    b->probes_started++;
    return b->generation * 2 + 1;
}

int ferry_breaker_is_probe(ferry_breaker_ticket ticket)
{
    return ticket % 2 == 1;
}

static void close_now(ferry_breaker *b, const char *idle)
{
    char why[BREAKER_WHY_MAX];

    b->open_period_ms = b->p.open_ms;
    clear_window(b);
    snprintf(why, sizeof(why), "%" PRId64 " probe request(s) succeeded%s", b->probes_answered,
             idle);
    set_state(b, FERRY_BREAKER_CLOSED, why);
}

static void probe_result(ferry_breaker *b, int failed, int64_t now_ms)
{
    if (b->state != FERRY_BREAKER_HALF_OPEN)
        return;
    if (failed) {
        open_now(b, now_ms, "a probe request failed");
        return;
    }
    if (++b->probes_answered >= b->p.probes)
        close_now(b, "");
}

void ferry_breaker_idle(ferry_breaker *b)
{
    if (b->state == FERRY_BREAKER_HALF_OPEN && b->probes_answered > 0 &&
        b->probes_answered == b->probes_started)
        close_now(b, ", and nothing is left to send");
}

void ferry_breaker_result(ferry_breaker *b, ferry_breaker_ticket ticket, int failed, int64_t now_ms)
{
    struct bucket *k;

    if (ticket / 2 != b->generation)
        return; /* started in another state: its news is old */
    if (ferry_breaker_is_probe(ticket)) {
        probe_result(b, failed, now_ms);
        return;
    }
    k = bucket_at(b, now_ms);
    k->requests++;
    k->failures += failed != 0;
    b->consecutive = failed ? b->consecutive + 1 : 0;
    if (failed)
        check_closed(b, now_ms);
}

enum ferry_breaker_state ferry_breaker_state(const ferry_breaker *b)
{
    return b->state;
}

int64_t ferry_breaker_open_until_ms(const ferry_breaker *b)
{
    return b->state == FERRY_BREAKER_OPEN ? b->open_until_ms : INT64_MAX;
}
