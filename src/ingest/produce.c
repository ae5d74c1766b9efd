/*
 * produce.c - a parsed batch into the shared producer, delivery reports into answers, and the
 * bounds on what is in flight (see ingest_int.h).
 *
 * One allocation per request: the request struct with one slot per record. Each slot starts
 * with the struct ferry_delivery that the producer hands back with the record's delivery
 * report, on its poller thread. `remaining` counts the slots without a report plus one hold
 * that the handler keeps while it produces; whoever brings it to zero finishes the request
 * (counts it, answers it for `ack: kafka`, frees it). Records that fail at produce() time count
 * down at once, as if their report had come.
 *
 * Memory is bounded by the in-flight budget: a request reserves its bytes (keys, values,
 * headers and a per-record overhead) before producing and gives them back when its last report
 * arrives, so ingest never holds more than ingest.limits.max_in_flight_bytes in the producer.
 *
 * Shutdown: `stopping` turns new requests away; `ack: kafka` requests sit on the `pending`
 * list so that the drain can answer any that outlive its deadline. A request answered by the
 * drain is marked answered under the lock and its late reports only count and free it.
 */
#include "core/clock.h"
#include "core/log.h"
#include "ingest/ingest_int.h"
#include "ingest/restproxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PRODUCE_RECORD_OVERHEAD 256   /* bytes librdkafka keeps per queued record, roughly */
#define PRODUCE_ANSWER_PER_RECORD 192 /* one entry of "offsets", an error message included */
#define PRODUCE_ANSWER_BASE 1024
#define PRODUCE_LOG_INTERVAL_MS 5000 /* failed records are logged at most this often */
#define PRODUCE_DRAIN_STEP_MS 100
#define PRODUCE_RUN_MAX 64 /* records per librdkafka batch call, on the handler's stack */

struct slot {
    struct ferry_delivery d; /* first: the producer's msg_opaque points here */
    uint32_t index;
    uint32_t bytes;
    int32_t wanted;                /* the partition asked for, or FERRY_INGEST_PARTITION_ANY */
    int32_t target;                /* where it is produced: see partition_for() */
    int asked;                     /* went to the partitioner, and its report tells the topic */
    rd_kafka_resp_err_t queue_err; /* produce() failed: written by the handler only */
    rd_kafka_resp_err_t err;       /* the delivery report's, or queue_err */
    int32_t partition;
    int64_t offset;
};

struct ingest_req {
    ferry_ingest *ing;
    struct ingest_endpoint *ep;
    const struct ferry_ingest_topic *topic;
    ferry_http_req *http;
    const char *answer_type;
    struct ingest_req *prev, *next; /* on ing->pending, under ing->lock */
    int listed;                     /* under ing->lock */
    int answered;                   /* under ing->lock */
    atomic_uint remaining;
    int64_t bytes;    /* reserved from the in-flight budget */
    int32_t follow;   /* where keyless records go: ferry_ingest_topic_follow(), or -1 */
    int asked;        /* one keyless record went to the partitioner */
    int64_t start_us; /* ferry_clock_us() when it came */
    uint32_t n;
    struct slot slots[];
};

/* ---- Kafka errors as REST Proxy errors ---- */

/* The REST Proxy error code of a record that failed with err. */
static int rest_code(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return FERRY_RP_PARTITION_NOT_FOUND;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return FERRY_RP_TOPIC_NOT_FOUND;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return FERRY_RP_QUEUE_FULL;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return FERRY_RP_TOO_LARGE;
    default:
        return FERRY_RP_KAFKA_ERROR;
    }
}

static void offset_of(void *arg, size_t i, struct ferry_rp_offset *o)
{
    const struct slot *s = &((const struct ingest_req *)arg)->slots[i];

    o->partition = s->err ? -1 : s->partition;
    o->offset = s->err ? -1 : s->offset;
    o->error_code = s->err ? rest_code(s->err) : 0;
    o->error = s->err ? rd_kafka_err2str(s->err) : NULL;
}

/* The 202 answer knows only what produce() said: no partitions chosen, no offsets. */
static void queued_offset_of(void *arg, size_t i, struct ferry_rp_offset *o)
{
    const struct slot *s = &((const struct ingest_req *)arg)->slots[i];

    o->partition = s->queue_err ? -1 : s->wanted;
    o->offset = -1;
    o->error_code = s->queue_err ? rest_code(s->queue_err) : 0;
    o->error = s->queue_err ? rd_kafka_err2str(s->queue_err) : NULL;
}

/* ---- answers ---- */

static void reply_offsets(struct ingest_req *r, int status, ferry_rp_offset_fn fn, int error_code,
                          const char *message)
{
    struct ferry_buf out;

    ferry_buf_init(&out, PRODUCE_ANSWER_BASE + (size_t)r->n * PRODUCE_ANSWER_PER_RECORD);
    if (ferry_restproxy_write_offsets(&out, r->n, fn, r, error_code, message))
        ferry_ingest_reply_error(r->ep, r->http, 500, 0, -1, "the answer is too large");
    else
        ferry_ingest_reply(r->ep, r->http, status, r->answer_type, out.data, out.len);
    ferry_buf_release(&out);
}

/* Answers a request none of whose records was delivered; err is the first failure. Every
 * status carries the offsets array with each record's error (docs/ingest.md). */
static void reply_all_failed(struct ingest_req *r, rd_kafka_resp_err_t err, ferry_rp_offset_fn fn)
{
    int code = rest_code(err), status = 503;
    const char *why = rd_kafka_err2str(err);
    char msg[512];

    snprintf(msg, sizeof(msg), "%s", why);
    if (code == FERRY_RP_PARTITION_NOT_FOUND) {
        status = 404;
        snprintf(msg, sizeof(msg), "partition %d of topic '%s' not found", (int)r->slots[0].wanted,
                 r->topic->name);
    } else if (code == FERRY_RP_TOPIC_NOT_FOUND) {
        status = 404;
        snprintf(msg, sizeof(msg), "topic '%s' not found: %s", r->topic->name, why);
    } else if (code == FERRY_RP_QUEUE_FULL) {
        status = 429;
        snprintf(msg, sizeof(msg), "the producer's queue is full; retry later");
        ferry_counter_add(r->ep->ing->rejects.reason[FERRY_REJECT_QUEUE_FULL], 1);
    } else if (code == FERRY_RP_TOO_LARGE) {
        status = 422;
        snprintf(msg, sizeof(msg), "Kafka refused the records: %s", why);
    }
    reply_offsets(r, status, fn, code, msg);
}

/* Counts failures in the slots' err (reports) or queue_err (produce() only). */
static size_t count_failed(const struct ingest_req *r, int queued_only, rd_kafka_resp_err_t *first)
{
    size_t failed = 0;

    *first = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (uint32_t i = 0; i < r->n; i++) {
        rd_kafka_resp_err_t e = queued_only ? r->slots[i].queue_err : r->slots[i].err;
        if (!e)
            continue;
        if (!failed++)
            *first = e;
    }
    return failed;
}

/* `ack: kafka`: every report is in. */
static void reply_delivered(struct ingest_req *r)
{
    rd_kafka_resp_err_t first;
    size_t failed = count_failed(r, 0, &first);

    if (failed == r->n)
        reply_all_failed(r, first, offset_of);
    else
        reply_offsets(r, 200, offset_of, 0, NULL);
}

/* `ack: accepted`: the records are queued (or refused by produce()). */
static void reply_queued(struct ingest_req *r)
{
    rd_kafka_resp_err_t first;
    size_t failed = count_failed(r, 1, &first);

    if (failed == r->n)
        reply_all_failed(r, first, queued_offset_of);
    else
        reply_offsets(r, 202, queued_offset_of, 0, NULL);
}

/* ---- the in-flight budget ---- */

/* Takes bytes and records from the in-flight budget. Returns 0, or -1 when they do not fit
 * now (the budget is then as it was). */
static int reserve(ferry_ingest *ing, int64_t bytes, int64_t records)
{
    if (atomic_fetch_add(&ing->in_flight_bytes, bytes) + bytes > ing->max_in_flight_bytes) {
        atomic_fetch_sub(&ing->in_flight_bytes, bytes);
        return -1;
    }
    if (atomic_fetch_add(&ing->in_flight_records, records) + records > ing->max_in_flight_records) {
        atomic_fetch_sub(&ing->in_flight_records, records);
        atomic_fetch_sub(&ing->in_flight_bytes, bytes);
        return -1;
    }
    return 0;
}

static void unreserve(ferry_ingest *ing, int64_t bytes, int64_t records)
{
    atomic_fetch_sub(&ing->in_flight_bytes, bytes);
    atomic_fetch_sub(&ing->in_flight_records, records);
}

/* ---- finishing a request ---- */

/* Logs failed records of ep, at most once per PRODUCE_LOG_INTERVAL_MS with how many failed
 * since the last line. */
static void log_failures(struct ingest_endpoint *ep, size_t failed, rd_kafka_resp_err_t err)
{
    int64_t now = ferry_clock_ms(), last = atomic_load(&ep->failures_logged_ms);
    uint64_t n;

    atomic_fetch_add(&ep->failures_unlogged, failed);
    if (now - last < PRODUCE_LOG_INTERVAL_MS ||
        !atomic_compare_exchange_strong(&ep->failures_logged_ms, &last, now))
        return;
    n = atomic_exchange(&ep->failures_unlogged, 0);
    FLOG_WARN_REPEATED("ingest", ep->name, "%llu records were not delivered (%s)",
                       (unsigned long long)n, rd_kafka_err2str(err));
}

static void count_request(struct ingest_req *r)
{
    struct ferry_ingest_endpoint_metrics *m = &r->ep->m;
    rd_kafka_resp_err_t first;
    uint64_t ok = 0, bytes = 0;
    size_t failed = count_failed(r, 0, &first);

    for (uint32_t i = 0; i < r->n; i++) {
        if (!r->slots[i].err) {
            ok++;
            bytes += r->slots[i].bytes;
        }
    }
    ferry_counter_add(m->records, ok);
    ferry_counter_add(m->bytes, bytes);
    ferry_histogram_observe(m->latency, (double)(ferry_clock_us() - r->start_us) / 1e6);
    if (failed) {
        ferry_counter_add(m->failed, failed);
        log_failures(r->ep, failed, first);
    }
}

static void unlist(ferry_ingest *ing, struct ingest_req *r)
{
    if (!r->listed)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        ing->pending = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->listed = 0;
}

/* Every report is in: count, give the budget back (before the answer: a client that sends its
 * next request on it must find the room), answer unless the drain did, free. */
static void finish(struct ingest_req *r)
{
    ferry_ingest *ing = r->ing;
    int answer = 0;

    count_request(r);
    unreserve(ing, r->bytes, (int64_t)r->n);
    if (r->ep->ack == FERRY_INGEST_ACK_KAFKA) {
        pthread_mutex_lock(&ing->lock);
        unlist(ing, r);
        answer = !r->answered;
        r->answered = 1;
        pthread_mutex_unlock(&ing->lock);
    }
    if (answer)
        reply_delivered(r);
    atomic_fetch_sub(&ing->in_flight_requests, 1);
    if (atomic_load(&ing->stopping)) {
        pthread_mutex_lock(&ing->lock);
        pthread_cond_broadcast(&ing->changed);
        pthread_mutex_unlock(&ing->lock);
    }
    free(r);
}

static void release(struct ingest_req *r)
{
    if (atomic_fetch_sub(&r->remaining, 1) == 1)
        finish(r);
}

static struct ingest_req *req_of(struct slot *s)
{
    return (struct ingest_req *)((char *)(s - s->index) - offsetof(struct ingest_req, slots));
}

/* The delivery report of one record: on the producer's poller thread (or in the final flush
 * at shutdown, on the main thread). */
static void on_report(struct ferry_delivery *d, const rd_kafka_message_t *msg)
{
    struct slot *s = (struct slot *)d;
    struct ingest_req *r = req_of(s);

    s->err = msg->err;
    s->partition = msg->partition;
    s->offset = msg->offset;
    if (s->asked && !msg->err && msg->partition >= 0)
        ferry_ingest_topic_chosen(r->topic, msg->partition);
    release(r);
}

/* ---- producing ---- */

static rd_kafka_resp_err_t produce_with_headers(ferry_ingest *ing, rd_kafka_topic_t *rkt,
                                                const struct ferry_ingest_batch *b,
                                                const struct ferry_ingest_record *rec,
                                                int32_t partition, struct slot *s)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(rec->nheaders);
    rd_kafka_resp_err_t err;

    for (size_t j = 0; j < rec->nheaders; j++) {
        const struct ferry_ingest_header *h = &b->headers[rec->first_header + j];
        rd_kafka_header_add(hdrs, h->name, (ssize_t)h->name_len, h->value, (ssize_t)h->value_len);
    }
    err = rd_kafka_producev(ing->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE((void *)rec->value, rec->value_len),
                            RD_KAFKA_V_KEY(rec->key, rec->key_len), RD_KAFKA_V_HEADERS(hdrs),
                            RD_KAFKA_V_OPAQUE(&s->d), RD_KAFKA_V_END);
    if (err)
        rd_kafka_headers_destroy(hdrs);
    return err;
}

/* Bytes of a record's key, value and headers, for ferry_ingest_bytes_total. */
static uint32_t record_bytes(const struct ferry_ingest_batch *b,
                             const struct ferry_ingest_record *rec)
{
    size_t n = rec->key_len + rec->value_len;

    for (size_t j = 0; j < rec->nheaders; j++)
        n += b->headers[rec->first_header + j].name_len +
             b->headers[rec->first_header + j].value_len;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* Fills slot i of r for record i of b. */
static struct slot *slot_init(struct ingest_req *r, const struct ferry_ingest_batch *b, uint32_t i)
{
    const struct ferry_ingest_record *rec = &b->records[i];
    struct slot *s = &r->slots[i];

    s->d.fn = on_report;
    s->index = i;
    s->bytes = record_bytes(b, rec);
    s->wanted = rec->partition;
    s->partition = -1;
    s->offset = -1;
    return s;
}

/* The partition for record rec in slot s. A record with a key or a partition keeps it. Of the
 * keyless ones, the first of a request asks librdkafka's partitioner (its sticky partitioner
 * keeps one partition for a while, then moves on); the others go where the partitioner last
 * sent such a record of this topic, by its delivery report. One request's keyless records
 * thus take one partition, as with the sticky partitioner alone, at a fraction of the cost:
 * asking it takes a lock and reads the clock per record. */
static int32_t partition_for(struct ingest_req *r, const struct ferry_ingest_record *rec,
                             struct slot *s)
{
    if (rec->partition != FERRY_INGEST_PARTITION_ANY || rec->key)
        return rec->partition;
    if (r->asked && r->follow >= 0)
        return r->follow;
    r->asked = 1;
    s->asked = 1;
    return FERRY_INGEST_PARTITION_ANY;
}

/* A record that produce() refused: no report will come for it. */
static void refuse(struct ingest_req *r, uint32_t i, rd_kafka_resp_err_t err)
{
    r->slots[i].queue_err = err;
    r->slots[i].err = err;
    release(r);
}

/* Produces records first to first + count - 1 of b, none with headers, all bound for
 * partition (RD_KAFKA_PARTITION_UA: the partitioner's choice, per record), in one call:
 * librdkafka then takes its topic lock and reads the clocks once for the run, not once per
 * record.
 *
 * The partition is the call's, never a record's (RD_KAFKA_MSG_F_PARTITION): librdkafka 2.0
 * then checks that it exists before making any message. With a partition per record it makes
 * the message first and, when the partition does not exist, refuses it without freeing it,
 * so that it stays counted in the producer's queue for good. */
static void produce_run(struct ingest_req *r, const struct ferry_ingest_batch *b, uint32_t first,
                        uint32_t count, int32_t partition)
{
    rd_kafka_message_t msgs[PRODUCE_RUN_MAX];

    memset(msgs, 0, count * sizeof(msgs[0]));
    for (uint32_t k = 0; k < count; k++) {
        const struct ferry_ingest_record *rec = &b->records[first + k];
        msgs[k].payload = (void *)rec->value;
        msgs[k].len = rec->value_len;
        msgs[k].key = (void *)rec->key;
        msgs[k].key_len = rec->key_len;
        msgs[k]._private = &r->slots[first + k].d;
    }
    rd_kafka_produce_batch(r->topic->rkt, partition, RD_KAFKA_MSG_F_COPY, msgs, (int)count);
    for (uint32_t k = 0; k < count; k++)
        if (msgs[k].err)
            refuse(r, first + k, msgs[k].err);
}

/* Fills every slot and picks every record's partition, before any is produced: records
 * produced early may change what partition_for() says for the later ones. */
static void plan_all(struct ingest_req *r, const struct ferry_ingest_batch *b)
{
    for (uint32_t i = 0; i < r->n; i++) {
        struct slot *s = slot_init(r, b, i);
        s->target = partition_for(r, &b->records[i], s);
    }
}

/* Produces every record of b, in order: runs of records without headers bound for the same
 * partition together, each record with headers on its own (librdkafka's batch call takes no
 * headers). */
static void produce_all(struct ingest_req *r, const struct ferry_ingest_batch *b)
{
    uint32_t i = 0;

    plan_all(r, b);
    while (i < r->n) {
        uint32_t count = 0;
        rd_kafka_resp_err_t err;

        while (i + count < r->n && count < PRODUCE_RUN_MAX && !b->records[i + count].nheaders &&
               r->slots[i + count].target == r->slots[i].target)
            count++;
        if (count) {
            produce_run(r, b, i, count, r->slots[i].target);
            i += count;
            continue;
        }
        err = produce_with_headers(r->ing, r->topic->rkt, b, &b->records[i], r->slots[i].target,
                                   &r->slots[i]);
        if (err)
            refuse(r, i, err);
        i++;
    }
}

/* Admits r unless ingest is stopping. `producing` goes up before `stopping` is read and the
 * drain sets `stopping` before it waits for `producing` to reach zero, so either the drain
 * sees this handler (and waits until it has counted and listed r) or this handler sees the
 * drain. */
static int admit(ferry_ingest *ing, struct ingest_req *r)
{
    atomic_fetch_add(&ing->producing, 1);
    if (atomic_load(&ing->stopping)) {
        atomic_fetch_sub(&ing->producing, 1);
        return -1;
    }
    atomic_fetch_add(&ing->in_flight_requests, 1);
    if (r->ep->ack != FERRY_INGEST_ACK_KAFKA)
        return 0;
    pthread_mutex_lock(&ing->lock);
    r->next = ing->pending;
    if (r->next)
        r->next->prev = r;
    ing->pending = r;
    r->listed = 1;
    pthread_mutex_unlock(&ing->lock);
    return 0;
}

static struct ingest_req *req_new(ferry_ingest *ing, struct ingest_endpoint *ep,
                                  ferry_http_req *http, const struct ferry_ingest_topic *topic,
                                  size_t n)
{
    struct ingest_req *r = calloc(1, sizeof(*r) + n * sizeof(struct slot));

    if (!r)
        return NULL;
    r->ing = ing;
    r->ep = ep;
    r->topic = topic;
    r->http = http;
    r->n = (uint32_t)n;
    atomic_init(&r->remaining, (unsigned)n + 1);
    r->start_us = ferry_clock_us();
    r->follow = ferry_ingest_topic_follow(topic);
    return r;
}

/* Checks the budget and makes the request. Answers and returns NULL when it cannot go on. */
static struct ingest_req *take(ferry_ingest *ing, struct ingest_endpoint *ep, ferry_http_req *req,
                               const struct ferry_ingest_topic *topic, size_t n, int64_t bytes)
{
    struct ingest_req *r;

    if (bytes > ing->max_in_flight_bytes || (int64_t)n > ing->max_in_flight_records) {
        ferry_ingest_reply_error(ep, req, 413, 413, FERRY_REJECT_TOO_LARGE,
                                 "the request needs %lld bytes and %zu records in flight, more "
                                 "than ingest.limits.max_in_flight_bytes (%lld) or "
                                 "max_in_flight_records (%lld) allow",
                                 (long long)bytes, n, (long long)ing->max_in_flight_bytes,
                                 (long long)ing->max_in_flight_records);
        return NULL;
    }
    if (reserve(ing, bytes, (int64_t)n)) {
        ferry_ingest_reply_error(ep, req, 429, 429, FERRY_REJECT_BACKPRESSURE,
                                 "too much in flight (ingest.limits.max_in_flight_bytes and "
                                 "max_in_flight_records); retry later");
        return NULL;
    }
    r = req_new(ing, ep, req, topic, n);
    if (r && !admit(ing, r)) {
        r->bytes = bytes;
        return r;
    }
    unreserve(ing, bytes, (int64_t)n);
    if (r)
        ferry_ingest_reply_error(ep, req, 503, 503, FERRY_REJECT_SHUTTING_DOWN,
                                 "ferry is shutting down");
    else
        ferry_ingest_reply_error(ep, req, 503, 503, -1, "out of memory");
    free(r);
    return NULL;
}

void ferry_ingest_produce(ferry_ingest *ing, struct ingest_endpoint *ep, ferry_http_req *req,
                          const struct ferry_ingest_topic *topic,
                          const struct ferry_ingest_batch *b, const char *answer_type)
{
    int64_t bytes = (int64_t)b->bytes + (int64_t)b->count * PRODUCE_RECORD_OVERHEAD;
    struct ingest_req *r = take(ing, ep, req, topic, b->count, bytes);

    if (!r)
        return;
    r->answer_type = answer_type;
    if (ep->ack == FERRY_INGEST_ACK_KAFKA)
        ferry_http_suspend(req);
    produce_all(r, b);
    atomic_fetch_sub(&ing->producing, 1);
    if (ep->ack != FERRY_INGEST_ACK_KAFKA)
        reply_queued(r);
    release(r); /* the handler's hold: r may be gone after this */
}

/* ---- lifecycle and drain ---- */

int ferry_ingest_flight_init(ferry_ingest *ing)
{
    pthread_condattr_t attr;

    if (pthread_mutex_init(&ing->lock, NULL))
        return -1;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&ing->changed, &attr)) {
        pthread_condattr_destroy(&attr);
        pthread_mutex_destroy(&ing->lock);
        return -1;
    }
    pthread_condattr_destroy(&attr);
    return 0;
}

void ferry_ingest_flight_release(ferry_ingest *ing)
{
    pthread_cond_destroy(&ing->changed);
    pthread_mutex_destroy(&ing->lock);
}

/* Waits until no request is in flight or until deadline (ferry_clock_ms()). */
static void wait_in_flight(ferry_ingest *ing, int64_t deadline)
{
    pthread_mutex_lock(&ing->lock);
    while (atomic_load(&ing->in_flight_requests) > 0 && ferry_clock_ms() < deadline) {
        int64_t until = ferry_clock_ms() + PRODUCE_DRAIN_STEP_MS;
        struct timespec ts = ferry_clock_timespec(until < deadline ? until : deadline);
        pthread_cond_timedwait(&ing->changed, &ing->lock, &ts);
    }
    pthread_mutex_unlock(&ing->lock);
}

/* Answers 503 to every request still waiting for reports. Returns how many. */
static size_t answer_pending(ferry_ingest *ing)
{
    size_t n = 0;

    pthread_mutex_lock(&ing->lock);
    while (ing->pending) {
        struct ingest_req *r = ing->pending;
        unlist(ing, r);
        r->answered = 1;
        ferry_ingest_reply_error(r->ep, r->http, 503, FERRY_RP_KAFKA_ERROR,
                                 FERRY_REJECT_SHUTTING_DOWN,
                                 "ferry is shutting down and Kafka has not acknowledged the "
                                 "records yet; they may or may not be written");
        n++;
    }
    pthread_mutex_unlock(&ing->lock);
    return n;
}

size_t ferry_ingest_flight_drain(ferry_ingest *ing, int64_t timeout_ms)
{
    struct timespec pause = {0, 1000000};
    size_t answered;

    atomic_store(&ing->stopping, 1);
    /* First every handler admitted before `stopping`: until it is done, its request may be
     * neither in flight nor pending yet, and would be missed below. */
    while (atomic_load(&ing->producing) > 0) /* handlers never block: this is short */
        nanosleep(&pause, NULL);
    wait_in_flight(ing, ferry_clock_ms() + timeout_ms);
    answered = answer_pending(ing);
    return answered;
}
