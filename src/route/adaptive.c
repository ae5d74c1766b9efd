/*
 * adaptive.c - adaptive concurrency, additive increase and multiplicative decrease (see
 * adaptive.h).
 */
#include "route/adaptive.h"

#include <stdlib.h>

#define ADAPTIVE_BASELINE_WEIGHT 0.1 /* of a new window in the baseline's moving average */

struct ferry_adaptive {
    struct ferry_adaptive_policy p;
    double limit;      /* fractional, so that repeated cuts of a small limit still move it */
    double baseline_s; /* 0 until the first calm window */
    /* the current window */
    int64_t window_start_ms; /* -1: none yet */
    int64_t answers;
    double latency_sum_s;
    int pushed_back;
    int saturated; /* a request started with the whole limit under way */
};

ferry_adaptive *ferry_adaptive_new(const struct ferry_adaptive_policy *policy)
{
    ferry_adaptive *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->p = *policy;
    a->limit = (double)policy->min;
    a->window_start_ms = -1;
    return a;
}

void ferry_adaptive_destroy(ferry_adaptive *a)
{
    free(a);
}

int64_t ferry_adaptive_limit(const ferry_adaptive *a)
{
    return (int64_t)a->limit;
}

void ferry_adaptive_started(ferry_adaptive *a, int64_t in_flight)
{
    if (in_flight >= ferry_adaptive_limit(a))
        a->saturated = 1;
}

/* How long a window lasts: about one round trip of the target. */
static int64_t window_ms(const ferry_adaptive *a)
{
    int64_t ms = (int64_t)(a->baseline_s * 1000.0);
    return ms < FERRY_ADAPTIVE_WINDOW_MIN_MS ? FERRY_ADAPTIVE_WINDOW_MIN_MS : ms;
}

static void end_window(ferry_adaptive *a)
{
    double mean_s = a->answers ? a->latency_sum_s / (double)a->answers : 0;
    int slow = a->baseline_s > 0 && mean_s > a->baseline_s * a->p.latency_tolerance;

    if (a->pushed_back || slow) {
        a->limit *= a->p.decrease;
        if (a->limit < (double)a->p.min)
            a->limit = (double)a->p.min;
    } else if (a->saturated && a->limit + 1 <= (double)a->p.max) {
        a->limit = (double)((int64_t)a->limit + 1);
    }
    if (!a->pushed_back && a->answers) /* the baseline learns from calm windows only */
        a->baseline_s = a->baseline_s > 0 ? a->baseline_s * (1 - ADAPTIVE_BASELINE_WEIGHT) +
                                                mean_s * ADAPTIVE_BASELINE_WEIGHT
                                          : mean_s;
    a->answers = 0;
    a->latency_sum_s = 0;
    a->pushed_back = 0;
    a->saturated = 0;
}

void ferry_adaptive_result(ferry_adaptive *a, double seconds, int pushed_back, int64_t now_ms)
{
    if (a->window_start_ms < 0)
        a->window_start_ms = now_ms;
    if (pushed_back)
        a->pushed_back = 1;
    else {
        a->answers++;
        a->latency_sum_s += seconds;
    }
    if (now_ms - a->window_start_ms < window_ms(a))
        return;
    end_window(a);
    a->window_start_ms = now_ms;
}
