/*
 * route_status.c - one route's part of GET /status: its state, its counters and its lag.
 *
 * Runs on an HTTP thread while the route's worker runs, so it reads only what is shared
 * already: the metric series (atomics), the breaker state and the stop flag (atomics), and the
 * consumer's lag from the Kafka statistics (under the kafka module's lock).
 */
#include "route/route_int.h"
#include "core/json.h"

#include <inttypes.h>
#include <string.h>

static uint64_t count(const struct ferry_counter *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

static int64_t level(const struct ferry_gauge *g)
{
    return g ? atomic_load_explicit(&g->value, memory_order_relaxed) : 0;
}

/* draining beats circuit_open beats paused beats running: the first names what holds it. */
static const char *state_name(const struct route *r)
{
    int circuit = atomic_load(&r->circuit);

    if (atomic_load(&r->stop))
        return "draining";
    if (!atomic_load(&r->joined))
        return "starting";
    if (circuit == FERRY_BREAKER_OPEN)
        return "circuit_open";
    if (circuit == FERRY_BREAKER_HALF_OPEN)
        return "circuit_half_open";
    return level(r->m.paused) ? "paused" : "running";
}

static int add_counters(const struct route *r, struct ferry_buf *out)
{
    const struct route_metrics *m = &r->m;

    return ferry_buf_addf(out,
                          ",\"in_flight\":%" PRId64 ",\"buffered\":%" PRId64
                          ",\"consumed\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"retried\":%" PRIu64
                          ",\"dead_lettered\":%" PRIu64 ",\"invalid\":%" PRIu64,
                          level(m->in_flight), level(m->buffered), count(m->consumed),
                          count(m->delivered), count(m->retried), count(m->dead_lettered),
                          count(m->invalid));
}

/* Requests by outcome class, as ferry_route_requests_total: "error" is no answer (or a 1xx). */
static int add_requests(const struct route *r, struct ferry_buf *out)
{
    static const char *const classes[] = {"error", "2xx", "3xx", "4xx", "5xx"};
    int result = ferry_buf_adds(out, ",\"requests\":{");

    for (size_t i = 0; i < 5 && !result; i++)
        result = ferry_buf_addf(out, "%s\"%s\":%" PRIu64, i ? "," : "", classes[i],
                                count(r->m.requests[i]));
    return result || ferry_buf_addc(out, '}') ? -1 : 0;
}

/* The worker's sleeps by cause, in seconds, as ferry_route_idle_seconds_total. */
static int add_idle(const struct route *r, struct ferry_buf *out)
{
    int result = ferry_buf_adds(out, ",\"idle_seconds\":{");

    for (size_t i = 0; i < ROUTE_IDLE_CAUSES && !result; i++)
        result = ferry_buf_addf(out, "%s\"%s\":%.3f", i ? "," : "",
                                route_idle_cause_name((enum route_idle_cause)i),
                                (double)count(r->m.idle[i]) / 1e6);
    return result || ferry_buf_addc(out, '}') ? -1 : 0;
}

int route_status_add(struct route *r, struct ferry_buf *out)
{
    const char *state = state_name(r);
    int circuit = atomic_load(&r->circuit);

    if (ferry_buf_adds(out, "{\"name\":") ||
        ferry_json_add_string(out, r->cfg->name, strlen(r->cfg->name)) ||
        ferry_buf_addf(out, ",\"state\":\"%s\",\"circuit\":\"%s\"", state,
                       ferry_breaker_state_name((enum ferry_breaker_state)circuit)) ||
        add_counters(r, out) || add_requests(r, out) || add_idle(r, out) ||
        ferry_buf_adds(out, ",\"lag\":") ||
        ferry_kafka_status_lag(r->kafka, r->consumer_opaque, out) || ferry_buf_addc(out, '}'))
        return -1;
    return 0;
}
