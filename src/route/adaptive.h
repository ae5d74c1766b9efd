/*
 * adaptive.h - adaptive concurrency: how many requests a route may have under way, found from
 * what the target answers (additive increase, multiplicative decrease).
 *
 * The limit is cut by `decrease` (never below min) as soon as the target pushes back (429, 503,
 * a timeout), once per overload: refusals of requests that started before the cut
 * do not cut again within a window. Other results are gathered over windows of about one round
 * trip. At the end of a window the limit is cut when the window's mean latency rose past
 * `latency_tolerance` times the baseline (a slowly moving average of earlier windows without
 * push-back, slow ones included, so that a target that stays slower becomes the new usual); it
 * grows by one (never above max) when the window used the whole limit and none of that
 * happened, except that growing back to the limit last cut waits for
 * FERRY_ADAPTIVE_PROBE_ANSWERS answers or FERRY_ADAPTIVE_PROBE_MAX_MS (so a target that
 * refuses beyond its capacity sees about one refusal per that many answers); otherwise it
 * stays. Time is passed in, so tests drive it. One thread uses it.
 */
#ifndef FERRY_ADAPTIVE_H
#define FERRY_ADAPTIVE_H

#include <stdint.h>

/* Shortest window, however quick the target. */
#define FERRY_ADAPTIVE_WINDOW_MIN_MS 20
/* Answers, or milliseconds, before the limit may grow back to one the target refused. */
#define FERRY_ADAPTIVE_PROBE_ANSWERS 200
#define FERRY_ADAPTIVE_PROBE_MAX_MS 2000

struct ferry_adaptive_policy {
    int64_t min, max;         /* 1 <= min <= max */
    double decrease;          /* the limit is multiplied by it on push-back, 0 < decrease < 1 */
    double latency_tolerance; /* > 1: mean latency above baseline x this counts as push-back */
};

typedef struct ferry_adaptive ferry_adaptive;

/* Starts at policy->min. NULL when out of memory. */
ferry_adaptive *ferry_adaptive_new(const struct ferry_adaptive_policy *policy);
void ferry_adaptive_destroy(ferry_adaptive *a);

/* The current limit. */
int64_t ferry_adaptive_limit(const ferry_adaptive *a);

/* A request started with in_flight requests under way (itself included). */
void ferry_adaptive_started(ferry_adaptive *a, int64_t in_flight);

/* A request ended at now_ms after seconds: pushed_back when the target said it was overloaded
 * (429, 503, a timeout). The caller leaves out other transport errors. */
void ferry_adaptive_result(ferry_adaptive *a, double seconds, int pushed_back, int64_t now_ms);

#endif
