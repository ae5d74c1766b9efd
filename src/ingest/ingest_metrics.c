/*
 * ingest_metrics.c - registration of ingest's metric series (see ingest_metrics.h).
 */
#include "ingest/ingest_metrics.h"

#include "core/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define INGEST_LABELS_MAX 512

static const int statuses[FERRY_INGEST_STATUSES] = {200, 202, 400, 401, 403, 404, 405, 406,
                                                    413, 415, 422, 429, 500, 502, 503};

static const char *const reject_names[FERRY_REJECT_COUNT] = {
    [FERRY_REJECT_UNAUTHORIZED] = "unauthorized",
    [FERRY_REJECT_FORBIDDEN] = "forbidden",
    [FERRY_REJECT_UNKNOWN_TOPIC] = "unknown_topic",
    [FERRY_REJECT_UNSUPPORTED_MEDIA_TYPE] = "unsupported_media_type",
    [FERRY_REJECT_NOT_ACCEPTABLE] = "not_acceptable",
    [FERRY_REJECT_TOO_LARGE] = "too_large",
    [FERRY_REJECT_INVALID] = "invalid",
    [FERRY_REJECT_BACKPRESSURE] = "backpressure",
    [FERRY_REJECT_QUEUE_FULL] = "queue_full",
    [FERRY_REJECT_SHUTTING_DOWN] = "shutting_down",
};

/* Seconds from the request to the last delivery report. */
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};

static int register_statuses(ferry_metrics *m, const char *ep,
                             struct ferry_ingest_endpoint_metrics *out)
{
    char labels[INGEST_LABELS_MAX];

    for (int i = 0; i <= FERRY_INGEST_STATUSES; i++) {
        if (i < FERRY_INGEST_STATUSES)
            snprintf(labels, sizeof(labels), "endpoint=\"%s\",status=\"%d\"", ep, statuses[i]);
        else
            snprintf(labels, sizeof(labels), "endpoint=\"%s\",status=\"other\"", ep);
        out->status[i] =
            ferry_metrics_counter(m, "ferry_ingest_requests_total",
                                  "Ingest requests answered, by endpoint and status.", labels);
        if (!out->status[i])
            return -1;
    }
    return 0;
}

int ferry_ingest_metrics_endpoint(ferry_metrics *m, const char *endpoint,
                                  struct ferry_ingest_endpoint_metrics *out)
{
    char ep[INGEST_LABELS_MAX / 2], labels[INGEST_LABELS_MAX];

    ferry_metrics_escape_label(endpoint, ep, sizeof(ep));
    if (register_statuses(m, ep, out))
        return -1;
    snprintf(labels, sizeof(labels), "endpoint=\"%s\"", ep);
    out->records = ferry_metrics_counter(m, "ferry_ingest_records_total",
                                         "Records the broker acknowledged.", labels);
    out->bytes = ferry_metrics_counter(m, "ferry_ingest_bytes_total",
                                       "Bytes of keys, values and headers acknowledged.", labels);
    out->failed = ferry_metrics_counter(
        m, "ferry_ingest_records_failed_total",
        "Records that were not delivered (delivery timeout, Kafka error, queue full).", labels);
    out->latency = ferry_metrics_histogram(
        m, "ferry_ingest_produce_duration_seconds",
        "From a request's arrival to the last delivery report of its records.", labels,
        latency_bounds, sizeof(latency_bounds) / sizeof(latency_bounds[0]));
    return out->records && out->bytes && out->failed && out->latency ? 0 : -1;
}

int ferry_ingest_metrics_rejects(ferry_metrics *m, struct ferry_ingest_rejects *out)
{
    char labels[INGEST_LABELS_MAX];

    for (int i = 0; i < FERRY_REJECT_COUNT; i++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", reject_names[i]);
        out->reason[i] = ferry_metrics_counter(m, "ferry_ingest_rejected_total",
                                               "Ingest requests turned away before anything was "
                                               "produced, by reason.",
                                               labels);
        if (!out->reason[i])
            return -1;
    }
    return 0;
}

void ferry_ingest_metrics_status(struct ferry_ingest_endpoint_metrics *em, int status)
{
    int i = 0;

    while (i < FERRY_INGEST_STATUSES && statuses[i] != status)
        i++;
    ferry_counter_add(em->status[i], 1);
}

static uint64_t count(const struct ferry_counter *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

int ferry_ingest_metrics_report(const struct ferry_ingest_endpoint_metrics *em, const char *name,
                                struct ferry_buf *out)
{
    uint64_t requests = 0;

    for (size_t i = 0; i <= FERRY_INGEST_STATUSES; i++)
        requests += count(em->status[i]);
    if (ferry_buf_adds(out, "{\"name\":") || ferry_json_add_string(out, name, strlen(name)) ||
        ferry_buf_addf(out,
                       ",\"requests\":%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
                       ",\"failed\":%" PRIu64 "}",
                       requests, count(em->records), count(em->bytes), count(em->failed)))
        return -1;
    return 0;
}

int ferry_ingest_metrics_rejects_report(const struct ferry_ingest_rejects *r, struct ferry_buf *out)
{
    int result = ferry_buf_addc(out, '{');

    for (size_t i = 0; i < FERRY_REJECT_COUNT && !result; i++)
        result = ferry_buf_addf(out, "%s\"%s\":%" PRIu64, i ? "," : "", reject_names[i],
                                count(r->reason[i]));
    return result || ferry_buf_addc(out, '}') ? -1 : 0;
}
