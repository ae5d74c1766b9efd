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
    double baseline_s; /* 0 until the first window without push-back */
    /* the current window */
    int64_t window_start_ms; /* -1: none yet */
    int64_t answers;
    double latency_sum_s;
    int pushed_back;
    int saturated; /* a request started with the whole limit under way */
    /* the last cut: the limit the target refused, 0 once a window there went calm */
    int64_t ceiling;
    int64_t cut_ms;      /* when (-1: never) */
    int64_t cut_answers; /* answers since */
};

ferry_adaptive *ferry_adaptive_new(const struct ferry_adaptive_policy *policy)
{
    ferry_adaptive *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->p = *policy;
    a->limit = (double)policy->min;
    a->window_start_ms = -1;
    a->cut_ms = -1;
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

static void reset_window(ferry_adaptive *a, int64_t now_ms)
{
    a->window_start_ms = now_ms;
    a->answers = 0;
    a->latency_sum_s = 0;
    a->pushed_back = 0;
    a->saturated = 0;
}

/* The target refused the current limit: cut it, and remember where and when. */
static void cut(ferry_adaptive *a, int64_t now_ms)
{
    a->ceiling = ferry_adaptive_limit(a);
    a->cut_ms = now_ms;
    a->cut_answers = 0;
    a->limit *= a->p.decrease;
    if (a->limit < (double)a->p.min)
        a->limit = (double)a->p.min;
}

/* Growing to the limit the target last refused waits for FERRY_ADAPTIVE_PROBE_ANSWERS answers
 * or FERRY_ADAPTIVE_PROBE_MAX_MS: a target that refuses at once beyond its capacity is probed
 * that often, not every few windows. */
static int may_grow(const ferry_adaptive *a, int64_t now_ms)
{
    if (!a->ceiling || ferry_adaptive_limit(a) + 1 < a->ceiling)
        return 1;
    return a->cut_answers >= FERRY_ADAPTIVE_PROBE_ANSWERS ||
           now_ms - a->cut_ms >= FERRY_ADAPTIVE_PROBE_MAX_MS;
}

static void end_window(ferry_adaptive *a, int64_t now_ms)
{
    double mean_s = a->answers ? a->latency_sum_s / (double)a->answers : 0;
    int slow = a->baseline_s > 0 && mean_s > a->baseline_s * a->p.latency_tolerance;

    if (slow) {
        cut(a, now_ms);
    } else if (!a->pushed_back) {
        if (a->ceiling && ferry_adaptive_limit(a) >= a->ceiling)
            a->ceiling = 0; /* a calm window where the target refused before: it has room */
        if (a->saturated && a->limit + 1 <= (double)a->p.max && may_grow(a, now_ms))
            a->limit = (double)((int64_t)a->limit + 1);
    }
    if (!a->pushed_back && a->answers) /* slow windows too: a lasting slowdown becomes the usual */
        a->baseline_s = a->baseline_s > 0 ? a->baseline_s * (1 - ADAPTIVE_BASELINE_WEIGHT) +
                                                mean_s * ADAPTIVE_BASELINE_WEIGHT
                                          : mean_s;
    reset_window(a, now_ms);
}

void ferry_adaptive_result(ferry_adaptive *a, double seconds, int pushed_back, int64_t now_ms)
{
    if (a->window_start_ms < 0)
        a->window_start_ms = now_ms;
    if (pushed_back) {
        /* Cut at once rather than at the window's end: a target that refuses at once would
         * refuse every request sent into the extra room meanwhile. Once per overload: a
         * refusal of a request that started before the last cut is part of the same one,
         * unless that cut is a window old (timeouts start long before they end). */
        if (a->cut_ms < 0 || now_ms - (int64_t)(seconds * 1000.0) >= a->cut_ms ||
            now_ms - a->cut_ms >= window_ms(a)) {
            cut(a, now_ms);
            reset_window(a, now_ms);
        }
        a->pushed_back = 1;
        return;
    }
    a->answers++;
    a->cut_answers++;
    a->latency_sum_s += seconds;
    if (now_ms - a->window_start_ms < window_ms(a))
        return;
    end_window(a, now_ms);
}
