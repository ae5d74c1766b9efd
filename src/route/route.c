/*
 * route.c - the life of each route: its consumer, its worker thread and event loop,
 * rebalances, backpressure, offset commits, and its figures in /metrics.
 *
 * The loop waits (ferry_sender_wait) on the route's HTTP transfers plus one extra fd: a pipe
 * that librdkafka writes to when the consumer queue turns non-empty
 * (rd_kafka_queue_io_event_enable). Each turn it takes new records, starts requests, handles
 * finished ones, fires due retries and stores the commit watermarks. Nothing sleeps.
 */
#include "route/route.h"
#include "core/clock.h"
#include "core/log.h"
#include "route/route_int.h"
#include "route/redrive_http.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROUTE_PAUSE_AFTER_MS 1000 /* buffers full this long: pause the partitions */
#define ROUTE_POLL_BATCH 10000    /* records taken from the consumer per loop turn */
#define ROUTE_IDLE_WAIT_MS 1000   /* longest wait when nothing is due */
#define ROUTE_DRAIN_STEP_MS 50
#define ROUTE_LABEL_MAX 300
#define ROUTE_COMMIT_TIMEOUT_MS 5000
#define ROUTE_DRAIN_RESERVE_MS 2000 /* of server.shutdown_timeout, kept from the drain */

typedef struct ferry_routes {
    struct route *routes;
    size_t count;
    ferry_ratelimit **limiters; /* the shared ones, as config's limiters[] */
    size_t nlimiters;
    ferry_metrics *metrics;
    ferry_redrive_http *redrive; /* POST /routes/{name}/redrive */
    int64_t shutdown_timeout_ms; /* server.shutdown_timeout: the whole stop's budget */
    int released;                /* the routes' clients and records were let go (routes_stop) */
} ferry_routes;

static void routes_destroy(void *arg);

/* ---- metrics ---- */

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};

/* The breaker's state (one series per state, 1 for the current one) and transitions; only for
 * routes with a breaker. Returns nonzero when a series could not be made. */
static int register_circuit_metrics(struct route *r, const char *lbl)
{
    char state_lbl[ROUTE_LABEL_MAX];
    int missing = 0;

    if (!r->cfg->circuit_breaker.enabled)
        return 0;
    for (int s = 0; s < 3; s++) {
        const char *name = ferry_breaker_state_name((enum ferry_breaker_state)s);
        snprintf(state_lbl, sizeof(state_lbl), "%s,state=\"%s\"", lbl, name);
        r->m.circuit[s] = ferry_metrics_gauge(
            r->metrics, "ferry_route_circuit_state",
            "1 for the circuit breaker's current state (closed, open, half_open), else 0.",
            state_lbl);
        snprintf(state_lbl, sizeof(state_lbl), "%s,to=\"%s\"", lbl, name);
        r->m.circuit_transitions[s] = ferry_metrics_counter(
            r->metrics, "ferry_route_circuit_transitions_total",
            "Changes of the circuit breaker's state, by the state entered.", state_lbl);
        missing |= !r->m.circuit[s] || !r->m.circuit_transitions[s];
    }
    if (!missing)
        ferry_gauge_set(r->m.circuit[FERRY_BREAKER_CLOSED], 1);
    return missing;
}

const char *route_idle_cause_name(enum route_idle_cause cause)
{
    static const char *const names[ROUTE_IDLE_CAUSES] = {"target", "kafka", "held"};
    return names[cause];
}

/* The worker's sleeps by cause (enum route_idle_cause), so that an operator can tell a route
 * that waits for its target from one that waits for Kafka or for its batches to fill. */
static int register_idle_metrics(struct route *r, const char *lbl)
{
    char cause[ROUTE_LABEL_MAX];
    int missing = 0;

    for (int i = 0; i < ROUTE_IDLE_CAUSES; i++) {
        snprintf(cause, sizeof(cause), "%s,cause=\"%s\"", lbl,
                 route_idle_cause_name((enum route_idle_cause)i));
        r->m.idle[i] = ferry_metrics_seconds(
            r->metrics, "ferry_route_idle_seconds_total",
            "Seconds the route's worker slept, by cause: target (every request slot taken), "
            "kafka (no record buffered) or held (records buffered that may not go yet: a batch "
            "filling, a key behind its previous record, a retry's backoff, a rate limit, an "
            "open circuit).",
            cause);
        missing |= !r->m.idle[i];
    }
    return missing;
}

/* Returns 0, or -1 when a series could not be made (out of memory). */
static int register_metrics(struct route *r)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    char lbl[ROUTE_LABEL_MAX], cls[ROUTE_LABEL_MAX];
    ferry_metrics *m = r->metrics;
    int missing = 0;

    snprintf(lbl, sizeof(lbl), "route=\"%s\"", r->cfg->name);
    r->m.consumed = ferry_metrics_counter(m, "ferry_route_records_consumed_total",
                                          "Records taken from Kafka.", lbl);
    r->m.delivered = ferry_metrics_counter(m, "ferry_route_records_delivered_total",
                                           "Records the target accepted.", lbl);
    r->m.retried = ferry_metrics_counter(m, "ferry_route_records_retried_total",
                                         "Record deliveries scheduled for another attempt.", lbl);
    r->m.dead_lettered = ferry_metrics_counter(m, "ferry_route_records_dead_lettered_total",
                                               "Records written to the dead-letter topic.", lbl);
    r->m.dead_letter_refused = ferry_metrics_counter(
        m, "ferry_route_dead_letter_refusals_total",
        "Dead-letter writes the producer refused at once; each is tried again later.", lbl);
    r->m.fetch_restarts = ferry_metrics_counter(
        m, "ferry_route_fetch_restarts_total",
        "Times the route restarted its consumer's fetching, which librdkafka had stopped while "
        "its queue was full.",
        lbl);
    if (r->nlimits) {
        r->m.rate_limit_waits = ferry_metrics_counter(
            m, "ferry_route_rate_limit_waits_total",
            "Times the route had a request ready and a free slot, and waited for its rate limits.",
            lbl);
        missing |= !r->m.rate_limit_waits;
    }
    if (r->cfg->retry.topics.count) {
        r->m.parked = ferry_metrics_counter(
            m, "ferry_route_records_parked_total",
            "Records written to a retry topic (confirmed by the broker).", lbl);
        r->m.retry_held = ferry_metrics_gauge(
            m, "ferry_route_retry_held_partitions",
            "Retry-topic partitions paused until their next record is due.", lbl);
        r->m.parked_keys = ferry_metrics_gauge(
            m, "ferry_route_retry_parked_keys",
            "Keys with records parked on retry topics (ordering: key only).", lbl);
        missing |= !r->m.parked || !r->m.retry_held || !r->m.parked_keys;
    }
    r->m.invalid =
        ferry_metrics_counter(m, "ferry_route_records_invalid_total",
                              "Records that failed validation: dead-lettered, never sent.", lbl);
    for (int i = 0; i < 5; i++) {
        snprintf(cls, sizeof(cls), "%s,class=\"%s\"", lbl, i == 0 ? "error" : classes[i]);
        r->m.requests[i] = ferry_metrics_counter(
            m, "ferry_route_requests_total",
            "HTTP requests by outcome: a status class, or error (no answer, or a 1xx).", cls);
        missing |= !r->m.requests[i];
    }
    r->m.latency = ferry_metrics_histogram(m, "ferry_route_request_duration_seconds",
                                           "HTTP request latency.", lbl, latency_bounds,
                                           sizeof(latency_bounds) / sizeof(latency_bounds[0]));
    r->m.in_flight =
        ferry_metrics_gauge(m, "ferry_route_requests_in_flight", "Requests under way.", lbl);
    r->m.buffered = ferry_metrics_gauge(m, "ferry_route_buffered_records",
                                        "Records consumed and not yet finished.", lbl);
    r->m.paused = ferry_metrics_gauge(m, "ferry_route_paused",
                                      "1 while consumption is paused: the route's buffers are "
                                      "full, or its circuit breaker is not closed.",
                                      lbl);
    r->m.concurrency_limit = ferry_metrics_gauge(
        m, "ferry_route_concurrency_limit",
        "Requests the route may have under way now: its concurrency, or the adaptive limit.", lbl);
    if (r->m.concurrency_limit)
        ferry_gauge_set(r->m.concurrency_limit, r->cfg->adaptive_concurrency.enabled
                                                    ? r->cfg->adaptive_concurrency.min
                                                    : r->cfg->concurrency);
    missing |= !r->m.concurrency_limit;
    missing |= register_circuit_metrics(r, lbl);
    missing |= register_idle_metrics(r, lbl);
    missing |= !r->m.consumed || !r->m.delivered || !r->m.retried || !r->m.dead_lettered ||
               !r->m.dead_letter_refused || !r->m.fetch_restarts || !r->m.invalid ||
               !r->m.latency || !r->m.in_flight || !r->m.buffered || !r->m.paused;
    return missing ? -1 : 0;
}

/* Renders the stored watermarks of every route (called by /metrics). */
static void collect_commits(struct ferry_buf *out, void *arg)
{
    ferry_routes *rs = arg;
    ferry_buf_adds(out, "# HELP ferry_route_committed_offset The offset stored for commit: "
                        "every record below it was delivered or dead-lettered.\n"
                        "# TYPE ferry_route_committed_offset gauge\n");
    for (size_t i = 0; i < rs->count; i++) {
        struct route *r = &rs->routes[i];
        pthread_mutex_lock(&r->commits_lock);
        for (size_t j = 0; j < r->ncommits; j++)
            ferry_buf_addf(out,
                           "ferry_route_committed_offset{route=\"%s\",topic=\"%s\","
                           "partition=\"%d\"} %" PRId64 "\n",
                           r->cfg->name, r->commits[j].topic, r->commits[j].partition,
                           r->commits[j].offset);
        pthread_mutex_unlock(&r->commits_lock);
    }
}

/* Renders the time each rate-limited route waited for its limits (called by /metrics). */
static void collect_rate_limits(struct ferry_buf *out, void *arg)
{
    ferry_routes *rs = arg;
    int header = 0;

    for (size_t i = 0; i < rs->count; i++) {
        struct route *r = &rs->routes[i];
        uint64_t ms;
        if (!r->nlimits)
            continue;
        if (!header++)
            ferry_buf_adds(out, "# HELP ferry_route_rate_limited_seconds_total Time the route "
                                "had a request ready and a free slot, and waited for its rate "
                                "limits.\n"
                                "# TYPE ferry_route_rate_limited_seconds_total counter\n");
        ms = atomic_load(&r->limited_ms);
        ferry_buf_addf(
            out, "ferry_route_rate_limited_seconds_total{route=\"%s\"} %" PRIu64 ".%03" PRIu64 "\n",
            r->cfg->name, ms / 1000, ms % 1000);
    }
}

static void remember_commit(struct route *r, const char *topic, int32_t partition, int64_t offset)
{
    size_t i;
    pthread_mutex_lock(&r->commits_lock);
    for (i = 0; i < r->ncommits; i++)
        if (r->commits[i].partition == partition && strcmp(r->commits[i].topic, topic) == 0)
            break;
    if (i == r->ncommits && i < ROUTE_COMMITS_MAX) {
        snprintf(r->commits[i].topic, sizeof(r->commits[i].topic), "%s", topic);
        r->commits[i].partition = partition;
        r->ncommits++;
    }
    if (i < r->ncommits)
        r->commits[i].offset = offset;
    pthread_mutex_unlock(&r->commits_lock);
}

/* Drops the watermarks of partitions the route no longer owns from /metrics, so that of all
 * instances in a group only a partition's owner reports it. */
static void forget_commits(struct route *r, const rd_kafka_topic_partition_list_t *parts)
{
    pthread_mutex_lock(&r->commits_lock);
    for (int i = 0; i < parts->cnt; i++) {
        for (size_t j = 0; j < r->ncommits; j++) {
            if (r->commits[j].partition == parts->elems[i].partition &&
                strcmp(r->commits[j].topic, parts->elems[i].topic) == 0) {
                r->commits[j] = r->commits[--r->ncommits];
                break;
            }
        }
    }
    pthread_mutex_unlock(&r->commits_lock);
}

/* ---- offsets ---- */

/* Adds a moved watermark to the list, made on the first one: most loop turns move none. */
static void add_commit(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    rd_kafka_topic_partition_list_t **list = arg;
    if (!*list)
        *list = rd_kafka_topic_partition_list_new(16);
    rd_kafka_topic_partition_list_add(*list, topic, partition)->offset = offset;
}

/* Stores every watermark that moved, for the next automatic commit. */
static void store_offsets(struct route *r)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;

    ferry_dispatch_take_commits(r->dispatch, add_commit, &list);
    if (!list)
        return;
    err = rd_kafka_offsets_store(r->consumer, list);
    if (err)
        FLOG_WARN_REPEATED("route", r->cfg->name, "cannot store offsets: %s",
                           rd_kafka_err2str(err));
    for (int i = 0; i < list->cnt; i++)
        remember_commit(r, list->elems[i].topic, list->elems[i].partition, list->elems[i].offset);
    rd_kafka_topic_partition_list_destroy(list);
}

/* ---- consuming ---- */

static void free_msg(void *msg)
{
    rd_kafka_message_destroy(msg);
}

/* A record the route could not take for want of memory: fetch its partition again from it,
 * so that the commit watermark never passes it. Records of the partition already fetched
 * behind it are dropped by librdkafka's seek and come again too. */
static void consume_again(struct route *r, const rd_kafka_message_t *msg)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *error;

    rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(msg->rkt), msg->partition)->offset =
        msg->offset;
    error = rd_kafka_seek_partitions(r->consumer, list, ROUTE_SEEK_WAIT_MS);
    if (!error && list->elems[0].err)
        error = rd_kafka_error_new(list->elems[0].err, "%s", rd_kafka_err2str(list->elems[0].err));
    if (error) {
        FLOG_ERROR_REPEATED("route", r->cfg->name,
                            "out of memory taking %s [%d] at offset %" PRId64
                            ", and cannot fetch it again: %s",
                            rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset,
                            rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        FLOG_WARN_REPEATED("route", r->cfg->name,
                           "out of memory taking %s [%d] at offset %" PRId64 ": fetching it again",
                           rd_kafka_topic_name(msg->rkt), msg->partition, msg->offset);
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Pauses one partition. */
static void pause_partition(struct route *r, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(list, topic, partition);
    rd_kafka_pause_partitions(r->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
}

static void take_message(struct route *r, rd_kafka_message_t *msg, int64_t now_ms)
{
    struct ferry_record view;
    int added;

    if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            FLOG_WARN_REPEATED("route", r->cfg->name, "consumer: %s", rd_kafka_message_errstr(msg));
        rd_kafka_message_destroy(msg);
        return;
    }
    /* The first record since its assignment: the partition may be paused now (set_paused) */
    if (ferry_dispatch_note_fetched(r->dispatch, rd_kafka_topic_name(msg->rkt), msg->partition) &&
        r->backpressure)
        pause_partition(r, rd_kafka_topic_name(msg->rkt), msg->partition);
    if (route_parking_hold(r, msg, now_ms)) {
        rd_kafka_message_destroy(msg); /* not due yet: fetched again once it is */
        return;
    }
    view.topic = rd_kafka_topic_name(msg->rkt);
    view.partition = msg->partition;
    view.offset = msg->offset;
    view.timestamp_ms = rd_kafka_message_timestamp(msg, NULL);
    view.key = msg->key;
    view.key_len = msg->key_len;
    view.value = msg->payload;
    view.value_len = msg->len;
    view.headers = NULL; /* parsed only when something reads them: ferry_record_headers() */
    view.msg = msg;
    added = ferry_dispatch_add(r->dispatch, &view, msg, msg->len + msg->key_len, now_ms);
    if (added == FERRY_DISPATCH_NO_MEMORY)
        consume_again(r, msg);
    if (added != FERRY_DISPATCH_TAKEN) {
        rd_kafka_message_destroy(msg); /* not ours any more: consumed again by its owner */
        return;
    }
    ferry_counter_add(r->m.consumed, 1);
}

static void drain_event_pipe(struct route *r)
{
    char buf[256];
    while (read(r->event_fds[0], buf, sizeof(buf)) > 0)
        ;
}

/* The route holds as many records or bytes as its limits allow. */
static int buffers_full(const struct route *r)
{
    return ferry_dispatch_records(r->dispatch) >= r->max_buffered ||
           ferry_dispatch_bytes(r->dispatch) >= (size_t)r->cfg->limits.max_buffered_bytes;
}

/* How many records the route may take now without passing limits.max_buffered_records. At
 * least one, so that group events queued behind records are still served while the route is
 * full (its partitions are paused after a second of that, so little is waiting then). */
static size_t headroom(const struct route *r)
{
    size_t held = ferry_dispatch_records(r->dispatch);
    size_t max = r->max_buffered;
    size_t room = held < max ? max - held : 0;

    if (ferry_dispatch_bytes(r->dispatch) >= (size_t)r->cfg->limits.max_buffered_bytes)
        room = 0;

    if (room > ROUTE_POLL_BATCH)
        room = ROUTE_POLL_BATCH;
    return room ? room : 1;
}

/* A partition the refetcher may seek: one whose fetch has started (see set_paused). */
static int seekable(void *arg, const char *topic, int32_t partition)
{
    const struct route *r = arg;

    return ferry_dispatch_fetched(r->dispatch, topic, partition);
}

/* Takes what the consumer has, up to headroom(). Returns nonzero when a full batch was taken
 * and more may wait. Finding the queue empty may restart fetching (refetch.h). */
static int consume(struct route *r, int64_t now_ms)
{
    size_t room = headroom(r), taken, bytes = 0;

    ferry_refetch_watch(r->refetch);
    for (taken = 0; taken < room; taken++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(r->consumer, 0);
        if (!msg)
            break;
        bytes += msg->err ? 0 : msg->len;
        take_message(r, msg, now_ms);
    }
    ferry_refetch_took(r->refetch, taken, bytes);
    if (!taken && ferry_refetch_on_empty(r->refetch, r->backpressure, seekable, r))
        ferry_counter_add(r->m.fetch_restarts, 1);
    /* Cut short by the limit, the loop comes back when requests finish, not at once. */
    return taken == ROUTE_POLL_BATCH;
}

rd_kafka_topic_partition_list_t *route_assignment_where(const struct route *r,
                                                        route_partition_fn *keep)
{
    rd_kafka_topic_partition_list_t *all = NULL, *kept;

    if (rd_kafka_assignment(r->consumer, &all) || !all)
        return NULL;
    kept = rd_kafka_topic_partition_list_new(all->cnt);
    for (int i = 0; i < all->cnt; i++)
        if (keep(r, all->elems[i].topic, all->elems[i].partition))
            rd_kafka_topic_partition_list_add(kept, all->elems[i].topic, all->elems[i].partition);
    rd_kafka_topic_partition_list_destroy(all);
    if (kept->cnt)
        return kept;
    rd_kafka_topic_partition_list_destroy(kept);
    return NULL;
}

static int fetched(const struct route *r, const char *topic, int32_t partition)
{
    return ferry_dispatch_fetched(r->dispatch, topic, partition);
}

/* Pauses or resumes every assigned partition whose fetch has started: one that a record came
 * from since its assignment. In librdkafka 2.0.2 a pause or a resume bumps the partition's op
 * version, and the fetch start that the assignment queued is dropped as outdated if it was not
 * applied yet, leaving the partition assigned and never fetched. A partition not fetched yet is
 * left alone: its first record pauses it if the route is paused by then (take_message). */
static void set_paused(struct route *r, int pause)
{
    rd_kafka_topic_partition_list_t *parts = route_assignment_where(r, fetched);

    if (!parts)
        return;
    if (pause) {
        rd_kafka_pause_partitions(r->consumer, parts);
    } else {
        rd_kafka_resume_partitions(r->consumer, parts);
        route_parking_repause(r); /* retry partitions whose record is not due stay paused */
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Resumes consumption once the buffers are back under half (apply_backpressure). */
static int buffers_below_half(const struct route *r)
{
    return ferry_dispatch_records(r->dispatch) < r->max_buffered / 2 &&
           ferry_dispatch_bytes(r->dispatch) < (size_t)r->cfg->limits.max_buffered_bytes / 2;
}

/* Full buffers first only slow consumption down: headroom() lets in no more than the limits
 * allow, and librdkafka stops fetching once its own capped queue is full. Only when they stay
 * full for ROUTE_PAUSE_AFTER_MS (a slow or failing target) are the partitions paused, until
 * the buffers are back under half. Pausing at once would cost a refetch, and librdkafka's
 * fetch backoff, every time a busy route touched its limit. An open circuit breaker pauses
 * them at once, until it turns half-open. Only partitions whose fetch has started are paused
 * and resumed (set_paused); records of the others wait in the buffers, which headroom() bounds. */
static void apply_backpressure(struct route *r, int64_t now_ms)
{
    int full = buffers_full(r), hold = route_breaker_holding(r);

    ferry_gauge_set(r->m.buffered, (int64_t)ferry_dispatch_records(r->dispatch));
    if (!full)
        r->full_since_ms = 0;
    else if (!r->full_since_ms)
        r->full_since_ms = now_ms;
    if (!r->backpressure && (hold || (full && now_ms - r->full_since_ms >= ROUTE_PAUSE_AFTER_MS))) {
        r->backpressure = 1;
        set_paused(r, 1);
    } else if (r->backpressure && !hold && buffers_below_half(r)) {
        r->backpressure = 0;
        set_paused(r, 0);
    }
    ferry_gauge_set(r->m.paused, r->backpressure);
}

/* ---- the loop ---- */

/* How long the loop may sleep. A batch coming due, a retry and the end of a Retry-After
 * pause only matter when a request can start then: while every slot is taken, the call that
 * finishes wakes the loop through its socket, and timers already due would make it spin. */
static int64_t next_wake_ms(struct route *r, int64_t now_ms, int consuming)
{
    int64_t t = INT64_MAX, retry, dead_letters, parking, breaker, wait;

    if (r->in_flight < route_concurrency(r)) {
        if (consuming)
            t = ferry_dispatch_next_due_ms(r->dispatch);
        if (t != INT64_MAX && buffers_full(r))
            t = now_ms; /* full: partial batches are due at once (loop_turn) */
        if (t < r->paused_until_ms)
            t = r->paused_until_ms;
        retry = route_next_retry_ms(r);
        if (retry < t)
            t = retry;
        breaker = route_breaker_blocked_until(r, now_ms);
        if (t < breaker)
            t = breaker;
        /* The rate limits hold back both, and the limits' own wait is the timer. */
        if (t != INT64_MAX && t < r->limited_until_ms)
            t = r->limited_until_ms;
    }
    dead_letters = route_next_dead_letter_ms(r);
    if (dead_letters < t)
        t = dead_letters;
    parking = route_parking_next_ms(r);
    if (parking < t)
        t = parking;
    wait = t == INT64_MAX ? ROUTE_IDLE_WAIT_MS : t - now_ms;
    if (wait < 0)
        wait = 0;
    return wait > ROUTE_IDLE_WAIT_MS ? ROUTE_IDLE_WAIT_MS : wait;
}

/* Why the worker is about to sleep. */
static enum route_idle_cause idle_cause(struct route *r)
{
    if (r->in_flight >= route_concurrency(r))
        return ROUTE_IDLE_TARGET;
    return ferry_dispatch_records(r->dispatch) ? ROUTE_IDLE_HELD : ROUTE_IDLE_KAFKA;
}

/* One turn of the loop. more says the consumer had more than one batch waiting. */
static int loop_turn(struct route *r, int more, int consuming)
{
    int64_t before_us = ferry_clock_us(), after_us, now = before_us / 1000;
    int wait = more ? 0 : (int)next_wake_ms(r, now, consuming);
    enum route_idle_cause cause = idle_cause(r);

    if (ferry_sender_wait(r->sender, r->event_fds[0], wait))
        drain_event_pipe(r);
    after_us = ferry_clock_us();
    ferry_counter_add(r->m.idle[cause], (uint64_t)(after_us - before_us));
    now = after_us / 1000;
    more = consuming ? consume(r, now) : 0;
    ferry_sender_collect(r->sender, route_on_call_done, r);
    route_collect_dead_letters(r);
    route_parking_collect(r);
    route_parking_resume_due(r, now);
    route_fire_retries(r, now);
    /* While the buffers are full no record can join a lingering batch: they go at once. */
    if (consuming)
        route_dispatch(r, now, buffers_full(r));
    route_breaker_check_idle(r);
    store_offsets(r);
    apply_backpressure(r, now);
    ferry_failure_log_tick(r->failure_log, now);
    return more;
}

/* When a drain starting now must end: after drain_timeout, and during a stop no later than
 * what server.shutdown_timeout leaves (routes_quiesce), also for the revoke that closing the
 * consumer makes. */
static int64_t drain_deadline(struct route *r)
{
    int64_t deadline = ferry_clock_ms() + r->cfg->drain_timeout_ms;
    int64_t until = atomic_load(&r->drain_until_ms);

    return until && until < deadline ? until : deadline;
}

/* Waits until no record of the partitions in parts is in flight, or until deadline. Runs on
 * the worker thread, also from inside the rebalance callback. */
static void drain_partitions(struct route *r, const rd_kafka_topic_partition_list_t *parts,
                             int64_t deadline_ms)
{
    for (;;) {
        size_t busy = 0;
        for (int i = 0; i < parts->cnt; i++)
            busy += ferry_dispatch_in_flight(r->dispatch, parts->elems[i].topic,
                                             parts->elems[i].partition);
        if (!busy || ferry_clock_ms() >= deadline_ms)
            return;
        ferry_sender_wait(r->sender, -1, ROUTE_DRAIN_STEP_MS);
        ferry_sender_collect(r->sender, route_on_call_done, r);
        route_collect_dead_letters(r);
        route_parking_collect(r);
    }
}

static void revoke_partitions(struct route *r, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_resp_err_t err;

    for (int i = 0; i < parts->cnt; i++)
        ferry_dispatch_drain(r->dispatch, parts->elems[i].topic, parts->elems[i].partition);
    route_abandon_retries(r, 1);
    drain_partitions(r, parts, drain_deadline(r));
    store_offsets(r);
    err = rd_kafka_commit(r->consumer, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        FLOG_WARN("route", r->cfg->name, "commit on revoke failed: %s", rd_kafka_err2str(err));
    for (int i = 0; i < parts->cnt; i++)
        ferry_dispatch_revoke(r->dispatch, parts->elems[i].topic, parts->elems[i].partition);
    forget_commits(r, parts);
    route_parking_revoked(r, parts);
    FLOG_INFO("route", r->cfg->name, "released %d partition(s)", parts->cnt);
}

static void assign_partitions(struct route *r, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++)
        if (ferry_dispatch_assign(r->dispatch, parts->elems[i].topic, parts->elems[i].partition))
            FLOG_ERROR("route", r->cfg->name,
                       "out of memory assigning %s [%d]: its records are neither delivered nor "
                       "committed until it is assigned again",
                       parts->elems[i].topic, parts->elems[i].partition);
    FLOG_INFO("route", r->cfg->name, "assigned %d partition(s)", parts->cnt);
}

/* Logs a failed (incremental) assign or unassign, which would otherwise leave the consumer
 * without the partitions it was given, or holding those it lost, with nothing said. Takes
 * error. */
static void check_assign(struct route *r, const char *what, rd_kafka_error_t *error,
                         rd_kafka_resp_err_t err)
{
    if (error) {
        FLOG_ERROR("route", r->cfg->name, "consumer: cannot %s the partitions of a rebalance: %s",
                   what, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (err) {
        FLOG_ERROR("route", r->cfg->name, "consumer: cannot %s the partitions of a rebalance: %s",
                   what, rd_kafka_err2str(err));
    }
}

/* librdkafka calls this from rd_kafka_consumer_poll() and rd_kafka_consumer_close() on the
 * worker thread. A route that never ran destroys its consumer without a close (see
 * drop_unused_consumer), which runs no callback. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct route *r = ferry_kafka_client_user(opaque);
    int cooperative = r->cooperative;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* No pause or resume follows the assignment until a record of the partition came
         * (set_paused): either one could drop the fetch start the assignment queued. One
         * before it cannot, and makes sure no partition comes with a pause of ours that
         * librdkafka kept (see below): set_paused() would not lift it before a record came. */
        rd_kafka_resume_partitions(rk, parts);
        assign_partitions(r, parts);
        if (cooperative)
            check_assign(r, "take", rd_kafka_incremental_assign(rk, parts), 0);
        else
            check_assign(r, "take", NULL, rd_kafka_assign(rk, parts));
        route_parking_assigned(r);
        atomic_store(&r->joined, 1);
        return;
    }
    revoke_partitions(r, parts);
    /* librdkafka keeps an application's pause of a partition over its unassignment: one paused
     * by backpressure or a parked retry would come back paused for good. */
    rd_kafka_resume_partitions(rk, parts);
    if (cooperative)
        check_assign(r, "give up", rd_kafka_incremental_unassign(rk, parts), 0);
    else
        check_assign(r, "give up", NULL, rd_kafka_assign(rk, NULL));
}

/* Pauses every assigned partition, fetched or not: for the shutdown drain, after which the
 * consumer closes, so that a fetch start this drops costs nothing. */
static void pause_all(struct route *r)
{
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (rd_kafka_assignment(r->consumer, &parts) || !parts)
        return;
    rd_kafka_pause_partitions(r->consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* The shutdown drain: stop taking records, let requests under way finish, commit, leave. */
static void shut_down(struct route *r)
{
    int64_t deadline = drain_deadline(r);
    rd_kafka_resp_err_t err;

    pause_all(r);
    route_abandon_retries(r, 0);
    while ((r->in_flight || route_parking_pending(r) ||
            (r->dead_letters && ferry_deadletter_backlog_pending(r->dead_letters)) ||
            (r->replies && ferry_reply_topic_pending(r->replies))) &&
           ferry_clock_ms() < deadline)
        loop_turn(r, 0, 0);
    store_offsets(r);
    err = rd_kafka_commit(r->consumer, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        FLOG_WARN("route", r->cfg->name, "final commit failed: %s", rd_kafka_err2str(err));
    err = rd_kafka_consumer_close(r->consumer);
    if (err)
        FLOG_WARN("route", r->cfg->name, "closing the consumer: %s", rd_kafka_err2str(err));
}

/* Says which rate limits the route obeys, when it has any. */
static void log_limits(const struct route *r)
{
    const struct ferry_route_rate_config *rc = &r->cfg->rate_limit;
    char rates[256];

    if (r->own_limit) {
        ferry_route_rate_describe(rc, rates, sizeof(rates));
        FLOG_INFO("route", r->cfg->name, "rate limit: %s%s%s", rates,
                  rc->limiter ? ", and the shared limiter " : "", rc->limiter ? rc->limiter : "");
    } else if (rc->limiter) {
        FLOG_INFO("route", r->cfg->name, "rate limit: the shared limiter %s", rc->limiter);
    }
}

/* Where the route's records go, for its first log line. */
static const char *route_target_url(const struct ferry_route_config *c)
{
    switch (ferry_route_target_kind(c)) {
    case FERRY_TARGET_SMTP:
        return c->target.smtp.url;
    case FERRY_TARGET_GRPC:
        return c->target.grpc.url;
    default:
        return c->target.url;
    }
}

static void *route_main(void *arg)
{
    struct route *r = arg;
    int more = 0;

    pthread_setname_np(pthread_self(), "ferry-route"); /* as top -H and the bench show it */
    FLOG_INFO("route", r->cfg->name,
              "started: %zu topic(s) to %s, %d I/O thread(s), up to %zu records buffered, %s",
              r->cfg->topics.count, route_target_url(r->cfg), r->io_threads, r->max_buffered,
              r->instance ? "a static group member (server.instance)" : "a dynamic group member");
    log_limits(r);
    while (!atomic_load(&r->stop))
        more = loop_turn(r, more, 1);
    shut_down(r);
    FLOG_INFO("route", r->cfg->name, "stopped");
    return NULL;
}

/* ---- set-up and tear-down ---- */

static int overridden(const struct ferry_cfg_map *props, const char *name)
{
    for (size_t i = 0; i < props->count; i++)
        if (strcmp(props->items[i].key, name) == 0)
            return 1;
    return 0;
}

/* group.id, and group.instance.id when server.instance names this instance: a static member
 * that restarts takes its partitions back at once instead of waiting for its old session to
 * expire (the route's own kafka properties may set either). */
static int set_group(struct route *r, rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    char why[512], group[512], member[512];

    ferry_route_group(r->cfg, group, sizeof(group));
    if (rd_kafka_conf_set(conf, "group.id", group, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "group.id: %s", why);
        return -1;
    }
    if (!r->instance || overridden(&r->cfg->kafka, "group.instance.id"))
        return 0;
    snprintf(member, sizeof(member), "%s-%s", r->instance, r->cfg->name);
    if (rd_kafka_conf_set(conf, "group.instance.id", member, why, sizeof(why)) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "group.instance.id: %s", why);
        return -1;
    }
    return 0;
}

/* Nonzero when conf's assignors are cooperative. librdkafka refuses a list that mixes them
 * with eager ones, and the group's rebalance protocol follows them. */
static int cooperative_conf(rd_kafka_conf_t *conf)
{
    char value[256];
    size_t size = sizeof(value);

    if (rd_kafka_conf_get(conf, "partition.assignment.strategy", value, &size) != RD_KAFKA_CONF_OK)
        return 0;
    return strstr(value, "cooperative") != NULL;
}

static int make_consumer(struct route *r, char *errstr, size_t errstr_size)
{
    char why[512];
    rd_kafka_conf_t *conf =
        ferry_kafka_conf_new(r->kafka, FERRY_KAFKA_CONSUMER, r->cfg->name, &r->cfg->kafka, r,
                             &r->consumer_opaque, errstr, errstr_size);
    if (!conf)
        return -1;
    if (set_group(r, conf, errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    /* Range gives one instance partition p of every topic with as many partitions, so that a
     * source partition and the retry partitions its records are parked on share an owner
     * (parking.c). */
    if (r->cfg->retry.topics.count &&
        !overridden(&r->cfg->kafka, "partition.assignment.strategy") &&
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "range", why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "partition.assignment.strategy: %s", why);
        return -1;
    }
    r->cooperative = cooperative_conf(conf);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!r->consumer) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot create the consumer: %s", why);
        return -1;
    }
    rd_kafka_poll_set_consumer(r->consumer);
    return 0;
}

static int subscribe(struct route *r, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new((int)r->cfg->topics.count);
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < r->cfg->topics.count; i++)
        rd_kafka_topic_partition_list_add(topics, r->cfg->topics.items[i], RD_KAFKA_PARTITION_UA);
    if (route_parking_subscribe(r, topics)) {
        rd_kafka_topic_partition_list_destroy(topics);
        snprintf(errstr, errstr_size, "cannot subscribe: out of memory");
        return -1;
    }
    err = rd_kafka_subscribe(r->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "cannot subscribe: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static int make_event_pipe(struct route *r, char *errstr, size_t errstr_size)
{
    if (pipe2(r->event_fds, O_NONBLOCK | O_CLOEXEC)) {
        snprintf(errstr, errstr_size, "cannot make the consumer's event pipe: %s", strerror(errno));
        r->event_fds[0] = r->event_fds[1] = -1;
        return -1;
    }
    r->queue = rd_kafka_queue_get_consumer(r->consumer);
    rd_kafka_queue_io_event_enable(r->queue, r->event_fds[1], "1", 1);
    r->refetch = ferry_refetch_new(r->consumer, r->queue);
    if (!r->refetch) {
        snprintf(errstr, errstr_size, "out of memory for the consumer's refetch watch");
        return -1;
    }
    return 0;
}

/* The producer's poller thread calls this when a dead-letter report is ready. */
static void wake_route(void *arg)
{
    struct route *r = arg;
    ferry_sender_wakeup(r->sender);
}

/* The processors this process may run on (a container's cpuset, taskset), for io_threads:
 * auto; all those online when that cannot be read. */
static long usable_cpus(void)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return sysconf(_SC_NPROCESSORS_ONLN);
}

static int make_sender(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_route_target_config *t = &r->cfg->target;
    struct ferry_sender_options o = {
        .timeout_ms = t->timeout_ms,
        .connect_timeout_ms = t->connect_timeout_ms,
        .ca_file = t->tls.ca_file,
        .cert_file = t->tls.cert_file,
        .key_file = t->tls.key_file,
        .verify = t->tls.verify,
        .response_max = (size_t)r->cfg->dead_letter.response_max,
        .max_connections = (int)r->cfg->concurrency,
    };

    /* One byte past reply.max_body tells a reply that the body was cut. */
    if (r->cfg->reply.topic && (size_t)r->cfg->reply.max_body >= o.response_max)
        o.response_max = (size_t)r->cfg->reply.max_body + 1;

    r->io_threads = ferry_route_io_threads(r->cfg, usable_cpus());
    o.io_threads = r->io_threads;
    r->sender = ferry_sender_new(&o, errstr, errstr_size);
    return r->sender ? 0 : -1;
}

/* A dead letter's write was confirmed: only now may its key's later records go (with retry
 * topics). Before, a crash in between sent a later record of the key before this one, which
 * was read again from its retry topic after the restart. */
static void dead_letter_let_go(void *arg, const struct ferry_dispatch_rec *rec)
{
    route_parking_done(arg, rec);
}

static int make_dead_letters(struct route *r, char *errstr, size_t errstr_size)
{
    struct ferry_deadletter_backlog_options o = {
        .kafka = r->kafka,
        .topic = r->cfg->dead_letter.topic,
        .route = r->cfg->name,
        .response_max = (size_t)r->cfg->dead_letter.response_max,
        .wake = wake_route,
        .wake_arg = r,
        .dispatch = r->dispatch,
        .let_go = dead_letter_let_go,
        .let_go_arg = r,
        .dead_lettered = r->m.dead_lettered,
        .refused = r->m.dead_letter_refused,
        .retry_topics = &r->parking.topics,
    };

    if (!o.topic)
        return 0;
    r->dead_letters = ferry_deadletter_backlog_new(&o, errstr, errstr_size);
    return r->dead_letters ? 0 : -1;
}

static int make_replies(struct route *r, char *errstr, size_t errstr_size)
{
    char lbl[ROUTE_LABEL_MAX];
    struct ferry_reply_topic_options o = {
        .kafka = r->kafka,
        .topic = r->cfg->reply.topic,
        .route = r->cfg->name,
        .max_body = (size_t)r->cfg->reply.max_body,
        .wake = wake_route,
        .wake_arg = r,
        .dispatch = r->dispatch,
        .done = route_on_reply_done,
        .done_arg = r,
        .retry_topics = &r->parking.topics,
    };

    if (!o.topic)
        return 0;
    snprintf(lbl, sizeof(lbl), "route=\"%s\"", r->cfg->name);
    o.written = r->m.replies = ferry_metrics_counter(
        r->metrics, "ferry_route_replies_total", "Replies the reply topic's broker stored.", lbl);
    o.refused = r->m.reply_refused = ferry_metrics_counter(
        r->metrics, "ferry_route_reply_refusals_total",
        "Reply writes the producer refused at once; each is tried again later.", lbl);
    r->replies = ferry_reply_topic_new(&o, errstr, errstr_size);
    return r->replies ? 0 : -1;
}

static struct ferry_ratelimit_rates rates_of(const struct ferry_route_rate_config *rc)
{
    struct ferry_ratelimit_rates rates = {rc->requests_per_second, rc->records_per_second,
                                          (double)rc->bytes_per_second, rc->burst_ms};
    return rates;
}

/* Gives the route its own rate limit, when it has one, and the shared one it names. */
static int make_limits(struct route *r, ferry_ratelimit *shared, char *errstr, size_t errstr_size)
{
    if (ferry_route_rate_limited(&r->cfg->rate_limit)) {
        struct ferry_ratelimit_rates rates = rates_of(&r->cfg->rate_limit);
        r->own_limit = ferry_ratelimit_new(&rates);
        if (!r->own_limit) {
            snprintf(errstr, errstr_size, "out of memory for its rate limit");
            return -1;
        }
        r->limits[r->nlimits++] = r->own_limit;
    }
    if (shared)
        r->limits[r->nlimits++] = shared;
    return 0;
}

static int route_init(struct route *r, ferry_ratelimit *shared, char *errstr, size_t errstr_size)
{
    struct ferry_dispatch_options d = {
        (enum ferry_ordering)r->cfg->ordering, (size_t)r->cfg->batch.max_records,
        (size_t)r->cfg->batch.max_bytes, r->cfg->batch.linger_ms, free_msg};

    pthread_mutex_init(&r->commits_lock, NULL);
    r->event_fds[0] = r->event_fds[1] = -1;
    r->max_buffered = (size_t)ferry_route_max_buffered_records(r->cfg);
    if (make_limits(r, shared, errstr, errstr_size))
        return -1;
    if (register_metrics(r)) {
        snprintf(errstr, errstr_size, "out of memory for its metrics");
        return -1;
    }
    r->dispatch = ferry_dispatch_new(&d);
    if (!r->dispatch) {
        snprintf(errstr, errstr_size, "dispatcher: out of memory");
        return -1;
    }
    if (ferry_route_retry_topics(r->cfg, &r->parking.topics)) {
        snprintf(errstr, errstr_size, "retry.topics: more than %d, or a name too long",
                 FERRY_RETRY_STAGES_MAX);
        return -1;
    }
    if (route_delivery_init(r, errstr, errstr_size) || make_sender(r, errstr, errstr_size) ||
        make_dead_letters(r, errstr, errstr_size) || make_replies(r, errstr, errstr_size) ||
        route_parking_init(r, errstr, errstr_size))
        return -1;
    if (make_consumer(r, errstr, errstr_size) || make_event_pipe(r, errstr, errstr_size))
        return -1;
    return 0; /* it subscribes as it starts (routes_start) */
}

/* Destroys the consumer of a route whose worker did not close it (the route never started),
 * before anything its rebalance callback uses is freed. Such a consumer never joined its group
 * (a route subscribes as it starts), so there is nothing to give back or commit, and no
 * rebalance callback runs. */
static void drop_unused_consumer(struct route *r)
{
    if (!r->consumer || rd_kafka_consumer_closed(r->consumer))
        return;
    if (r->queue) {
        rd_kafka_queue_destroy(r->queue);
        r->queue = NULL;
    }
    rd_kafka_destroy_flags(r->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    r->consumer = NULL;
}

/* Abandons whatever a stopped route still holds, so every record is released. */
static void route_release(struct route *r)
{
    drop_unused_consumer(r);
    /* The topic writers first: a late report of theirs wakes the sender (wake_route). */
    ferry_deadletter_backlog_destroy(r->dead_letters); /* late reports no longer reach it */
    r->dead_letters = NULL;
    ferry_reply_topic_destroy(r->replies);
    r->replies = NULL;
    route_parking_release(r);
    if (r->sender) {
        ferry_sender_destroy(r->sender); /* in-flight calls are dropped without callbacks */
        r->sender = NULL;
    }
    if (r->dispatch)
        route_abandon_retries(r, 0);
    ferry_dispatch_destroy(r->dispatch);
    ferry_refetch_destroy(r->refetch);
    if (r->queue)
        rd_kafka_queue_destroy(r->queue);
    if (r->consumer)
        rd_kafka_destroy(r->consumer);
    if (r->consumer_opaque)
        ferry_kafka_client_release(r->kafka, r->consumer_opaque);
    for (int i = 0; i < 2; i++)
        if (r->event_fds[i] >= 0)
            close(r->event_fds[i]);
    route_delivery_release(r);
    ferry_ratelimit_destroy(r->own_limit);
    r->own_limit = NULL;
    r->nlimits = 0;
    pthread_mutex_destroy(&r->commits_lock);
}

/* Makes the shared limiters of the config's limiters[]. Returns 0, or -1 when out of memory. */
static int make_limiters(ferry_routes *rs, const struct ferry_routes_config *rc)
{
    const struct ferry_route_rate_config *limiters = rc->limiters.items;

    rs->limiters = calloc(rc->limiters.count ? rc->limiters.count : 1, sizeof(*rs->limiters));
    if (!rs->limiters)
        return -1;
    for (size_t i = 0; i < rc->limiters.count; i++) {
        struct ferry_ratelimit_rates rates = rates_of(&limiters[i]);
        rs->limiters[i] = ferry_ratelimit_new(&rates);
        if (!rs->limiters[i])
            return -1;
        rs->nlimiters++;
    }
    return 0;
}

/* The shared limiter a route names, or NULL (the config checks made sure it exists). */
static ferry_ratelimit *shared_limiter(const ferry_routes *rs, const struct ferry_routes_config *rc,
                                       const struct ferry_route_config *cfg)
{
    const struct ferry_route_rate_config *found = ferry_routes_limiter(rc, cfg->rate_limit.limiter);

    return found ? rs->limiters[found - (const struct ferry_route_rate_config *)rc->limiters.items]
                 : NULL;
}

/* Builds every route (consumers, templates, senders) without starting them. */
static void *routes_new(const struct ferry_job_context *ctx, char *errstr, size_t errstr_size)
{
    const struct ferry_routes_config *rc = ctx->config;
    const struct ferry_cfg_list *list = &rc->routes;
    ferry_routes *rs = calloc(1, sizeof(*rs));
    char why[512];

    if (rs)
        rs->routes = calloc(list->count ? list->count : 1, sizeof(*rs->routes));
    if (!rs || !rs->routes || make_limiters(rs, rc)) {
        snprintf(errstr, errstr_size, "out of memory for %zu route(s)", list->count);
        routes_destroy(rs);
        return NULL;
    }
    rs->metrics = ctx->metrics;
    rs->shutdown_timeout_ms = ctx->cfg->server.shutdown_timeout_ms;
    rs->redrive = ferry_redrive_http_new(ctx->cfg, rc, ctx->kafka, ctx->auth);
    if (!rs->redrive) {
        snprintf(errstr, errstr_size, "out of memory for the redrive endpoint");
        routes_destroy(rs);
        return NULL;
    }
    for (size_t i = 0; i < list->count; i++) {
        struct route *r = &rs->routes[i];
        r->cfg = (const struct ferry_route_config *)list->items + i;
        r->kafka = ctx->kafka;
        r->metrics = ctx->metrics;
        r->instance = ctx->cfg->server.instance;
        rs->count++;
        why[0] = '\0';
        if (route_init(r, shared_limiter(rs, rc, r->cfg), why, sizeof(why))) {
            snprintf(errstr, errstr_size, "route '%s': %s", r->cfg->name,
                     *why ? why : "cannot set it up");
            routes_destroy(rs);
            return NULL;
        }
    }
    if (rs->count && (ferry_metrics_add_collector(rs->metrics, collect_commits, rs) ||
                      ferry_metrics_add_collector(rs->metrics, collect_rate_limits, rs))) {
        snprintf(errstr, errstr_size,
                 "out of memory for the routes' committed offsets in /metrics");
        routes_destroy(rs);
        return NULL;
    }
    return rs;
}

static int routes_start(void *arg, char *errstr, size_t errstr_size)
{
    ferry_routes *rs = arg;

    for (size_t i = 0; i < rs->count; i++) {
        struct route *r = &rs->routes[i];
        char why[512];
        int rc;

        if (subscribe(r, why, sizeof(why))) {
            snprintf(errstr, errstr_size, "route '%s': %s", r->cfg->name, why);
            return -1;
        }
        rc = pthread_create(&r->thread, NULL, route_main, r);
        if (rc != 0) {
            rd_kafka_unsubscribe(r->consumer); /* long before its group could assign it */
            snprintf(errstr, errstr_size, "route '%s': cannot start its thread: %s", r->cfg->name,
                     strerror(rc));
            return -1;
        }
        r->thread_started = 1;
    }
    return 0;
}

/* Ready once every route joined its group. Any thread. */
static int routes_ready(void *arg, char *why, size_t why_size)
{
    ferry_routes *rs = arg;
    size_t pos = 0;

    for (size_t i = 0; i < rs->count; i++) {
        if (!atomic_load(&rs->routes[i].joined)) {
            snprintf(why, why_size, "route %s has not joined its consumer group yet",
                     rs->routes[i].cfg->name);
            return 0;
        }
    }
    /* Ready all the same (the process is fine; its target is not), with the detail. */
    for (size_t i = 0; i < rs->count && pos < why_size; i++) {
        int state = atomic_load(&rs->routes[i].circuit);
        if (state != FERRY_BREAKER_CLOSED)
            pos += (size_t)snprintf(why + pos, why_size - pos, "%sroute %s: circuit %s",
                                    pos ? "; " : "ok; ", rs->routes[i].cfg->name,
                                    ferry_breaker_state_name((enum ferry_breaker_state)state));
    }
    return 1;
}

/* What a drain leaves of server.shutdown_timeout for the final commit, the consumer's close
 * and the shared producer's flush: a quarter, at most ROUTE_DRAIN_RESERVE_MS. */
static int64_t drain_reserve(const ferry_routes *rs)
{
    int64_t quarter = rs->shutdown_timeout_ms / 4;

    return quarter < ROUTE_DRAIN_RESERVE_MS ? quarter : ROUTE_DRAIN_RESERVE_MS;
}

/* Tells every route's worker to stop starting requests and to drain (route_main), within its
 * drain_timeout and what server.shutdown_timeout leaves from the first call on. */
static void routes_quiesce(void *arg)
{
    ferry_routes *rs = arg;
    int64_t until = rs ? ferry_clock_ms() + rs->shutdown_timeout_ms - drain_reserve(rs) : 0;

    for (size_t i = 0; rs && !rs->released && i < rs->count; i++) {
        if (!atomic_load(&rs->routes[i].stop))
            atomic_store(&rs->routes[i].drain_until_ms, until);
        atomic_store(&rs->routes[i].stop, 1);
        if (rs->routes[i].sender)
            ferry_sender_wakeup(rs->routes[i].sender);
    }
}

/* Drains every route (each within the bounds routes_quiesce set, which the route applies
 * itself), commits, joins the threads, then closes the consumers and hands back every record,
 * so the shared producer may flush afterwards. Safe to call twice. Main thread. */
static void routes_stop(void *arg, int64_t timeout_ms)
{
    ferry_routes *rs = arg;

    (void)timeout_ms;
    if (!rs || rs->released)
        return;
    ferry_redrive_http_stop(rs->redrive);
    routes_quiesce(rs);
    for (size_t i = 0; i < rs->count; i++) {
        if (rs->routes[i].thread_started)
            pthread_join(rs->routes[i].thread, NULL);
        rs->routes[i].thread_started = 0;
    }
    if (rs->count) {
        ferry_metrics_remove_collector(rs->metrics, collect_commits, rs);
        ferry_metrics_remove_collector(rs->metrics, collect_rate_limits, rs);
    }
    for (size_t i = 0; i < rs->count; i++)
        route_release(&rs->routes[i]);
    rs->released = 1;
}

static void routes_destroy(void *arg)
{
    ferry_routes *rs = arg;

    if (!rs)
        return;
    routes_stop(rs, 0);
    ferry_redrive_http_destroy(rs->redrive);
    for (size_t i = 0; i < rs->nlimiters; i++)
        ferry_ratelimit_destroy(rs->limiters[i]);
    free(rs->limiters);
    free(rs->routes);
    free(rs);
}

static int routes_http_register(void *arg, struct ferry_httpd *h, char *errstr, size_t errstr_size)
{
    ferry_routes *rs = arg;
    return ferry_redrive_http_register(rs->redrive, h, errstr, errstr_size);
}

/* The routes' part of GET /status: an array of route objects. Any thread. */
static int routes_status(void *arg, struct ferry_buf *out)
{
    ferry_routes *rs = arg;
    int result = ferry_buf_addc(out, '[');

    for (size_t i = 0; i < rs->count && !result; i++)
        result = (i && ferry_buf_addc(out, ',')) || route_status_add(&rs->routes[i], out);
    return result || ferry_buf_addc(out, ']') ? -1 : 0;
}

static int routes_global_init(char *errstr, size_t errstr_size)
{
    int rc = ferry_sender_global_init();

    if (rc == 0)
        return 0;
    snprintf(errstr, errstr_size, "cannot initialize libcurl: %s",
             curl_easy_strerror((CURLcode)rc));
    return -1;
}

const struct ferry_job ferry_routes_job = {
    .name = "routes",
    .config = &ferry_routes_config_section,
    .check = ferry_routes_config_check,
    .summary = ferry_routes_config_summary,
    .global_init = routes_global_init,
    .global_cleanup = ferry_sender_global_cleanup,
    .create = routes_new,
    .http_register = routes_http_register,
    .ready = routes_ready,
    .status = routes_status,
    .start = routes_start,
    .quiesce = routes_quiesce,
    .stop = routes_stop,
    .destroy = routes_destroy,
};
