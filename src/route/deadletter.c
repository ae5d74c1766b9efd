/*
 * deadletter.c - the dead-letter writer of a route (see deadletter.h).
 *
 * Every send is an item whose first member is the struct ferry_delivery that the shared
 * producer hands back with the delivery report on its poller thread. The writer and its items
 * share a small reference-counted state: the lock, the queue of reports to collect and the
 * wake-up. The writer holds one reference and every item (in flight or waiting to be
 * collected) holds one, and whoever lets go last frees it. So a report that arrives after the
 * writer was destroyed still finds the lock, sees that the writer is gone, and cleans up after
 * itself without touching freed memory.
 *
 * The same produce, confirm, then finish cycle serves the route's retry topics: their writer
 * is a writer of this kind whose headers retry_topic.c builds (ferry_deadletter_send_headers),
 * and so do reply topics (reply_topic.c), whose values are the target's answers
 * (ferry_deadletter_send_value).
 */
#include "route/deadletter.h"
#include "route/retry_topic.h"
#include "core/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#define DEADLETTER_NUMBER_MAX 32 /* one decimal header value */
#define DEADLETTER_HEADERS 11    /* ferry.* headers a dead letter may get */

struct item;

/* Items whose report came, oldest first. */
STAILQ_HEAD(item_queue, item);

struct shared {
    pthread_mutex_t lock;      /* guards every field below */
    int refs;                  /* the writer's, plus one per item */
    int orphaned;              /* the writer was destroyed */
    struct item_queue reports; /* waiting to be collected */
    void (*wake)(void *);
    void *wake_arg;
    char *route; /* immutable after shared_new: read without the lock */
    char *topic;
};

struct item {
    struct ferry_delivery delivery; /* first: the producer's msg_opaque points here */
    struct shared *sh;
    STAILQ_ENTRY(item) link; /* in reports once its report came */
    void *cookie;
    int32_t partition; /* of the source record, for log lines */
    int64_t offset;
    rd_kafka_resp_err_t err;
};

struct ferry_deadletter {
    rd_kafka_t *rk; /* the shared producer, owned by ferry_kafka */
    rd_kafka_topic_t *rkt;
    struct shared *sh;
    struct ferry_retry_topics retry_topics; /* the route's, whose records may be parked ones */
    size_t response_max;
    size_t pending; /* sent, not yet collected; worker thread only */
};

/* ---- shared state ---- */

static struct shared *shared_new(const char *route, const char *topic, void (*wake)(void *),
                                 void *wake_arg)
{
    struct shared *sh = calloc(1, sizeof(*sh));

    if (!sh)
        return NULL;
    sh->route = strdup(route);
    sh->topic = strdup(topic);
    if (!sh->route || !sh->topic || pthread_mutex_init(&sh->lock, NULL) != 0) {
        free(sh->route);
        free(sh->topic);
        free(sh);
        return NULL;
    }
    STAILQ_INIT(&sh->reports);
    sh->refs = 1;
    sh->wake = wake;
    sh->wake_arg = wake_arg;
    return sh;
}

static void shared_keep(struct shared *sh)
{
    pthread_mutex_lock(&sh->lock);
    sh->refs++;
    pthread_mutex_unlock(&sh->lock);
}

/* Drops one reference; the last one frees. Nobody else can reach sh once refs is 0, so the
 * lock may be destroyed right after it is released. */
static void shared_release(struct shared *sh)
{
    int last;

    pthread_mutex_lock(&sh->lock);
    last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&sh->lock);
    free(sh->route);
    free(sh->topic);
    free(sh);
}

/* Moves the queue of reports into taken, which must be empty; orphan marks the writer gone at
 * the same time. */
static void shared_take(struct shared *sh, int orphan, struct item_queue *taken)
{
    pthread_mutex_lock(&sh->lock);
    STAILQ_CONCAT(taken, &sh->reports);
    if (orphan)
        sh->orphaned = 1;
    pthread_mutex_unlock(&sh->lock);
}

/* ---- items and their delivery reports ---- */

static void item_free(struct item *it)
{
    shared_release(it->sh);
    free(it);
}

/* Queues a finished item; the caller holds sh->lock. Wakes the worker only when the queue was
 * empty: a worker that was woken drains everything queued until it collects. */
static void enqueue(struct shared *sh, struct item *it)
{
    int was_empty = STAILQ_EMPTY(&sh->reports);

    STAILQ_INSERT_TAIL(&sh->reports, it, link);
    if (was_empty && sh->wake)
        sh->wake(sh->wake_arg);
}

/* The writer is gone: nobody will collect this report, so say what was lost and let go. */
static void orphan_report(struct item *it)
{
    if (it->err)
        FLOG_WARN_REPEATED("route", it->sh->route,
                           "dead letter of partition %" PRId32 " offset %" PRId64
                           " was not written to '%s' after the route stopped: %s",
                           it->partition, it->offset, it->sh->topic, rd_kafka_err2str(it->err));
    item_free(it);
}

/* The delivery report of one dead letter, a librdkafka callback (through kafka.c): it runs on
 * the shared producer's poller thread, or on the thread flushing the producer at shutdown,
 * never on the route's worker. */
static void on_report(struct ferry_delivery *d, const rd_kafka_message_t *msg)
{
    struct item *it = (struct item *)d;
    struct shared *sh = it->sh;
    int orphaned;

    it->err = msg->err;
    pthread_mutex_lock(&sh->lock);
    orphaned = sh->orphaned;
    if (!orphaned)
        enqueue(sh, it);
    pthread_mutex_unlock(&sh->lock);
    if (orphaned)
        orphan_report(it);
}

/* Returns a new item holding a reference on sh, or NULL when memory ran out. */
static struct item *item_new(struct shared *sh, const struct ferry_record *rec, void *cookie)
{
    struct item *it = calloc(1, sizeof(*it));

    if (!it)
        return NULL;
    it->delivery.fn = on_report;
    it->sh = sh;
    it->cookie = cookie;
    it->partition = rec->partition;
    it->offset = rec->offset;
    shared_keep(sh);
    return it;
}

/* ---- headers ---- */

static int add_bytes(rd_kafka_headers_t *h, const char *name, const void *value, size_t len)
{
    return rd_kafka_header_add(h, name, -1, value, (ssize_t)len) ? -1 : 0;
}

static int add_text(rd_kafka_headers_t *h, const char *name, const char *text)
{
    return add_bytes(h, name, text, strlen(text));
}

static int add_number(rd_kafka_headers_t *h, const char *name, int64_t number)
{
    char text[DEADLETTER_NUMBER_MAX];

    snprintf(text, sizeof(text), "%" PRId64, number);
    return add_text(h, name, text);
}

/* Where the record came from, and which route gave up on it. */
static int add_source(rd_kafka_headers_t *h, const struct ferry_record *rec, const char *route)
{
    int result = 0;

    result |= add_text(h, "ferry.topic", rec->topic ? rec->topic : "");
    result |= add_number(h, "ferry.partition", rec->partition);
    result |= add_number(h, "ferry.offset", rec->offset);
    if (rec->timestamp_ms >= 0)
        result |= add_number(h, "ferry.timestamp", rec->timestamp_ms);
    result |= add_text(h, "ferry.route", route);
    return result;
}

/* Why the route gave up on it. */
static int add_reason(rd_kafka_headers_t *h, const struct ferry_deadletter_reason *why)
{
    int result = 0;

    result |= add_text(h, "ferry.error", why->error ? why->error : "");
    if (why->http_status > 0)
        result |= add_number(h, "ferry.http_status", why->http_status);
    result |= add_number(h, "ferry.attempts", why->attempts);
    return result;
}

/* A gRPC target's status and message: the last of ferry's headers. */
static int add_grpc(rd_kafka_headers_t *h, const struct ferry_deadletter_reason *why)
{
    int result = 0;

    if (why->grpc_message)
        result |= add_number(h, "ferry.grpc_status", why->grpc_status);
    if (why->grpc_message && why->grpc_message[0])
        result |= add_text(h, "ferry.grpc_message", why->grpc_message);
    return result;
}

/* What the target answered, cut to response_max bytes; nothing when it said nothing. */
static int add_response(rd_kafka_headers_t *h, const struct ferry_deadletter_reason *why,
                        size_t response_max)
{
    size_t len = why->response_len < response_max ? why->response_len : response_max;

    if (!why->response || len == 0)
        return 0;
    return add_bytes(h, "ferry.response", why->response, len);
}

/* A record parked on one of the route's retry topics is dead-lettered under its original
 * coordinates, without the parking's headers; the same headers on a record of another topic
 * are that record's own (ferry_retry_parked_read, as requests decide). Returns 1 when rec is a
 * parked record (*orig is then its original view), else 0. */
static int parked_origin(const ferry_deadletter *dl, const struct ferry_record *rec,
                         struct ferry_retry_meta *m, struct ferry_record *orig)
{
    char err[256];

    if (ferry_retry_parked_read(&dl->retry_topics, rec, m, err, sizeof(err)) != 1)
        return 0;
    ferry_retry_meta_origin(m, rec, orig);
    return 1;
}

/* Returns the record's own headers followed by ferry's, in the order deadletter.h lists them,
 * or NULL. The caller owns the result. */
static rd_kafka_headers_t *build_headers(const ferry_deadletter *dl, const struct ferry_record *rec,
                                         const struct ferry_deadletter_reason *why)
{
    rd_kafka_headers_t *source = ferry_record_headers(rec);
    struct ferry_retry_meta m;
    struct ferry_record orig;
    int parked = parked_origin(dl, rec, &m, &orig);
    struct ferry_deadletter_reason all = *why;
    rd_kafka_headers_t *h;

    if (parked) {
        h = ferry_retry_headers_strip(source, DEADLETTER_HEADERS);
        all.attempts += m.attempts; /* those made before it was parked count too */
    } else {
        h = source ? rd_kafka_headers_copy(source) : rd_kafka_headers_new(DEADLETTER_HEADERS);
    }
    if (!h)
        return NULL;
    if (add_reason(h, &all) || add_source(h, parked ? &orig : rec, dl->sh->route) ||
        add_response(h, why, dl->response_max) || add_grpc(h, why)) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/* ---- the writer ---- */

ferry_deadletter *ferry_deadletter_new(ferry_kafka *k, const char *topic, const char *route_name,
                                       const struct ferry_retry_topics *retry_topics,
                                       size_t response_max, void (*wake)(void *), void *wake_arg,
                                       char *errstr, size_t errstr_size)
{
    ferry_deadletter *dl = NULL;
    int result = -1;

    if (!k || !topic || !*topic || !route_name) {
        snprintf(errstr, errstr_size, "dead-letter topic: a topic and a route name are required");
        goto out;
    }
    dl = calloc(1, sizeof(*dl));
    if (dl)
        dl->sh = shared_new(route_name, topic, wake, wake_arg);
    if (!dl || !dl->sh) {
        snprintf(errstr, errstr_size, "dead-letter topic '%s': out of memory", topic);
        goto out;
    }
    dl->rk = ferry_kafka_producer(k);
    dl->response_max = response_max;
    if (retry_topics)
        dl->retry_topics = *retry_topics;
    dl->rkt = rd_kafka_topic_new(dl->rk, topic, NULL);
    if (!dl->rkt) {
        snprintf(errstr, errstr_size, "dead-letter topic '%s': %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    result = 0;
out:
    if (result) {
        ferry_deadletter_destroy(dl);
        return NULL;
    }
    return dl;
}

/* Says which record the producer refused and why. The writer serves dead-letter, retry and
 * reply topics alike, so the caller's log line says which kind. */
static void refused(const ferry_deadletter *dl, const struct ferry_record *rec, const char *why,
                    char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size,
             "cannot write the record of %s [%" PRId32 "] at offset %" PRId64 " to '%s': %s",
             rec->topic ? rec->topic : "?", rec->partition, rec->offset, dl->sh->topic, why);
}

int ferry_deadletter_send_value(ferry_deadletter *dl, const struct ferry_record *rec,
                                int32_t partition, const void *value, size_t value_len,
                                rd_kafka_headers_t *h, void *cookie, char *errstr,
                                size_t errstr_size)
{
    struct item *it = item_new(dl->sh, rec, cookie);
    rd_kafka_resp_err_t err;
    int result = -1;

    if (!it || !h) {
        refused(dl, rec, "out of memory", errstr, errstr_size);
        goto out;
    }
    /* F_COPY: librdkafka copies key and value and never writes through these pointers. */
    err = rd_kafka_producev(dl->rk, RD_KAFKA_V_RKT(dl->rkt), RD_KAFKA_V_PARTITION(partition),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY((void *)rec->key, rec->key_len),
                            RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(h),
                            RD_KAFKA_V_OPAQUE(it), RD_KAFKA_V_END);
    if (err) {
        refused(dl, rec, rd_kafka_err2str(err), errstr, errstr_size);
        goto out;
    }
    h = NULL; /* librdkafka owns the headers now, and the report owns the item */
    it = NULL;
    dl->pending++;
    result = 0;
out:
    if (h)
        rd_kafka_headers_destroy(h);
    if (it)
        item_free(it);
    return result;
}

int ferry_deadletter_send_headers(ferry_deadletter *dl, const struct ferry_record *rec,
                                  int32_t partition, rd_kafka_headers_t *h, void *cookie,
                                  char *errstr, size_t errstr_size)
{
    /* The value as consumed: a route may have stripped a wire-format prefix from the view. */
    const void *value = rec->msg ? rec->msg->payload : rec->value;
    size_t value_len = rec->msg ? rec->msg->len : rec->value_len;

    return ferry_deadletter_send_value(dl, rec, partition, value, value_len, h, cookie, errstr,
                                       errstr_size);
}

int ferry_deadletter_send(ferry_deadletter *dl, const struct ferry_record *rec,
                          const struct ferry_deadletter_reason *why, void *cookie, char *errstr,
                          size_t errstr_size)
{
    return ferry_deadletter_send_headers(dl, rec, RD_KAFKA_PARTITION_UA,
                                         build_headers(dl, rec, why), cookie, errstr, errstr_size);
}

size_t ferry_deadletter_collect(ferry_deadletter *dl,
                                void (*done)(void *arg, void *cookie, rd_kafka_resp_err_t err),
                                void *arg)
{
    struct item_queue taken = STAILQ_HEAD_INITIALIZER(taken);
    struct item *it, *next;
    size_t n = 0;

    shared_take(dl->sh, 0, &taken);
    for (it = STAILQ_FIRST(&taken); it; it = next) {
        next = STAILQ_NEXT(it, link);
        done(arg, it->cookie, it->err);
        item_free(it);
        n++;
    }
    dl->pending -= n;
    return n;
}

size_t ferry_deadletter_pending(const ferry_deadletter *dl)
{
    return dl->pending;
}

void ferry_deadletter_destroy(ferry_deadletter *dl)
{
    struct item_queue taken = STAILQ_HEAD_INITIALIZER(taken);
    struct item *it, *next;

    if (!dl)
        return;
    /* outstanding records keep their own reference on the topic */
    if (dl->rkt)
        rd_kafka_topic_destroy(dl->rkt);
    if (dl->sh) {
        shared_take(dl->sh, 1, &taken);
        for (it = STAILQ_FIRST(&taken); it; it = next) {
            next = STAILQ_NEXT(it, link);
            item_free(it);
        }
        shared_release(dl->sh);
    }
    free(dl);
}
