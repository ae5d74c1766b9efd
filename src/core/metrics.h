/*
 * metrics.h - counters, gauges and histograms, rendered in Prometheus text format 0.0.4.
 *
 * Series are registered once (at start-up or when a route starts) and updated lock-free from
 * any thread afterwards; the registry owns them. Values computed on demand (process figures,
 * Kafka client statistics) come from collectors called while /metrics is rendered.
 */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct ferry_metrics ferry_metrics;

struct ferry_counter {
    _Atomic uint64_t value;
};

struct ferry_gauge {
    _Atomic int64_t value;
};

#define FERRY_HISTOGRAM_MAX_BUCKETS 20

struct ferry_histogram {
    size_t nbounds;
    double bounds[FERRY_HISTOGRAM_MAX_BUCKETS];
    _Atomic uint64_t buckets[FERRY_HISTOGRAM_MAX_BUCKETS + 1]; /* the last one is +Inf */
    _Atomic uint64_t sum_micros;                               /* sum of values x 1e6 */
};

/* Appends metric families (with their # HELP and # TYPE lines) to out. Called on an HTTP
 * thread while /metrics renders; must not block for long. */
typedef void (*ferry_metrics_collect_fn)(struct ferry_buf *out, void *arg);

/* Returns a new registry, or NULL when out of memory. The caller owns it. */
ferry_metrics *ferry_metrics_new(void);

/* Frees the registry and every series in it. Accepts NULL. No thread may use a series after. */
void ferry_metrics_destroy(ferry_metrics *m);

/* Register a series. labels is the inside of the braces, already escaped (`route="orders"`),
 * or NULL. Several series may share a name when their labels differ; help and type come from
 * the first. Return a series owned by the registry, or NULL when out of memory. Any thread. */
struct ferry_counter *ferry_metrics_counter(ferry_metrics *m, const char *name, const char *help,
                                            const char *labels);
struct ferry_gauge *ferry_metrics_gauge(ferry_metrics *m, const char *name, const char *help,
                                        const char *labels);
/* A counter of time: add microseconds to it, /metrics shows seconds (a `_seconds_total`). */
struct ferry_counter *ferry_metrics_seconds(ferry_metrics *m, const char *name, const char *help,
                                            const char *labels);
struct ferry_histogram *ferry_metrics_histogram(ferry_metrics *m, const char *name,
                                                const char *help, const char *labels,
                                                const double *bounds, size_t nbounds);

/* Adds a collector called on every render, in registration order after the series. */
int ferry_metrics_add_collector(ferry_metrics *m, ferry_metrics_collect_fn fn, void *arg);

/* Removes a collector that was added with the same fn and arg. Any thread. */
void ferry_metrics_remove_collector(ferry_metrics *m, ferry_metrics_collect_fn fn, void *arg);

/* Appends the whole exposition to out. Returns 0, or -1 when out's cap was reached. */
int ferry_metrics_render(ferry_metrics *m, struct ferry_buf *out);

/* Appends the process_* families (CPU, memory, file descriptors, start time). */
void ferry_metrics_collect_process(struct ferry_buf *out, void *arg);

/* Escapes a label value (backslash, quote, newline) into out, truncating to size. */
void ferry_metrics_escape_label(const char *value, char *out, size_t size);

static inline void ferry_counter_add(struct ferry_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline void ferry_gauge_set(struct ferry_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

static inline void ferry_gauge_add(struct ferry_gauge *g, int64_t n)
{
    atomic_fetch_add_explicit(&g->value, n, memory_order_relaxed);
}

/* Records one observation. Any thread. */
void ferry_histogram_observe(struct ferry_histogram *h, double value);

#endif
