/*
 * deadletter_backlog.c - a route's dead letters under way (see deadletter_backlog.h).
 *
 * Each record handed over becomes an item on the list of every item under way, so the route's
 * end can free them whatever their state; an item the producer refused also sits on the
 * refused queue until its next try. The writer's reports carry the item as their cookie.
 */
#include "route/deadletter_backlog.h"
#include "core/clock.h"
#include "core/log.h"
#include "route/retry_topic.h"
#include "route/grpc_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define DLQ_ERROR_MAX 512 /* the reason kept, as ferry.error */

/* A record on its way to the dead-letter topic, with why, until the broker confirms. */
struct dlq_item {
    LIST_ENTRY(dlq_item) link;           /* in the backlog's items */
    STAILQ_ENTRY(dlq_item) refused_link; /* in the backlog's refused queue while refused */
    struct ferry_dispatch_rec *rec;
    char error[DLQ_ERROR_MAX];
    long http_status;
    int attempts;
    char *response;
    size_t response_len;
    struct ferry_retry_meta *meta; /* a record parked on a retry topic, else NULL */
    int32_t partition;             /* where a parked record goes */
    long grpc_status;
    int has_grpc;                              /* grpc_status and grpc_message hold an answer */
    char grpc_message[FERRY_GRPC_MESSAGE_MAX]; /* as grpc_wire.h keeps it */
};

STAILQ_HEAD(dlq_queue, dlq_item);

struct ferry_deadletter_backlog {
    ferry_deadletter *writer;
    ferry_dispatch *dispatch;
    const char *route;
    const char *topic;
    struct ferry_counter *dead_lettered, *refused_count;
    LIST_HEAD(, dlq_item) items; /* every item under way */
    struct dlq_queue refused;    /* refused writes to redo, oldest first */
    size_t nrefused;
    int64_t retry_at_ms;       /* when the refused writes are tried again */
    int64_t refusal_logged_ms; /* when a refusal was last logged, or 0 */
    int retry_stage;           /* see the options */
    void (*let_go)(void *arg, const struct ferry_dispatch_rec *rec);
    void *let_go_arg;
};

ferry_deadletter_backlog *
ferry_deadletter_backlog_new(const struct ferry_deadletter_backlog_options *o, char *errstr,
                             size_t errstr_size)
{
    ferry_deadletter_backlog *b = calloc(1, sizeof(*b));

    if (!b) {
        snprintf(errstr, errstr_size, "dead-letter topic '%s': out of memory", o->topic);
        return NULL;
    }
    LIST_INIT(&b->items);
    STAILQ_INIT(&b->refused);
    b->dispatch = o->dispatch;
    b->route = o->route;
    b->topic = o->topic;
    b->dead_lettered = o->dead_lettered;
    b->refused_count = o->refused;
    b->retry_stage = o->retry_stage;
    b->let_go = o->let_go;
    b->let_go_arg = o->let_go_arg;
    b->writer = ferry_deadletter_new(o->kafka, o->topic, o->route, o->retry_topics, o->response_max,
                                     o->wake, o->wake_arg, errstr, errstr_size);
    if (!b->writer) {
        free(b);
        return NULL;
    }
    return b;
}

static void item_free(struct dlq_item *item)
{
    LIST_REMOVE(item, link);
    free(item->response);
    free(item->meta);
    free(item);
}

/* Logs a refused dead-letter write, at most once per DEADLETTER_BACKLOG_LOG_MS: a producer
 * whose queue is full refuses every write until it drains. */
static void note_refusal(ferry_deadletter_backlog *b, const char *err, int64_t now_ms)
{
    ferry_counter_add(b->refused_count, 1);
    if (b->refusal_logged_ms && now_ms - b->refusal_logged_ms < DEADLETTER_BACKLOG_LOG_MS)
        return;
    b->refusal_logged_ms = now_ms;
    if (b->retry_stage)
        FLOG_WARN_REPEATED("route", b->route,
                           "retry topic %d: %s; refused parked records are tried again every %d "
                           "ms",
                           b->retry_stage, err, DEADLETTER_BACKLOG_RETRY_MS);
    else
        FLOG_WARN_REPEATED("route", b->route,
                           "dead-letter topic: %s; refused dead letters are tried again every %d "
                           "ms",
                           err, DEADLETTER_BACKLOG_RETRY_MS);
}

/* Writes the item: a dead letter, or a record parked on a retry topic. Returns 0, or -1 with
 * err when the producer refused. */
static int item_write(ferry_deadletter_backlog *b, struct dlq_item *item, char *err,
                      size_t err_size)
{
    struct ferry_deadletter_reason why = {item->error,
                                          item->http_status,
                                          item->attempts,
                                          item->response,
                                          item->response_len,
                                          item->grpc_status,
                                          item->has_grpc ? item->grpc_message : NULL};
    const struct ferry_record *v = &item->rec->view;

    if (!item->meta)
        return ferry_deadletter_send(b->writer, v, &why, item, err, err_size);
    return ferry_deadletter_send_headers(
        b->writer, v, item->partition,
        ferry_retry_headers_build(ferry_record_headers(v), item->meta, b->route), item, err,
        err_size);
}

/* Queues the item to be written again with the refused ones, DEADLETTER_BACKLOG_RETRY_MS from
 * now at the latest. */
static void item_defer(ferry_deadletter_backlog *b, struct dlq_item *item, int64_t now_ms)
{
    if (!b->nrefused)
        b->retry_at_ms = now_ms + DEADLETTER_BACKLOG_RETRY_MS;
    STAILQ_INSERT_TAIL(&b->refused, item, refused_link);
    b->nrefused++;
}

/* Writes one item; on an immediate refusal it joins the refused queue. */
static void item_send(ferry_deadletter_backlog *b, struct dlq_item *item)
{
    char err[256];
    int64_t now_ms;

    if (item_write(b, item, err, sizeof(err)) == 0)
        return;
    now_ms = ferry_clock_ms();
    item_defer(b, item, now_ms);
    note_refusal(b, err, now_ms);
}

/* Keeps the first bytes of the target's answer with the item; without memory for them the
 * dead letter goes without ferry.response. */
static void keep_response(const ferry_deadletter_backlog *b, struct dlq_item *item,
                          const struct ferry_deadletter_reason *why)
{
    const struct ferry_record *v = &item->rec->view;

    if (!why->response || !why->response_len)
        return;
    item->response = malloc(why->response_len);
    if (!item->response) {
        FLOG_WARN_REPEATED(
            "route", b->route,
            "out of memory keeping the response for the dead letter of %s[%d]@%" PRId64
            "; it goes without ferry.response",
            v->topic, v->partition, v->offset);
        return;
    }
    memcpy(item->response, why->response, why->response_len);
    item->response_len = why->response_len;
}

/* Tells the route that rec leaves the backlog (see the options). */
static void let_go(ferry_deadletter_backlog *b, const struct ferry_dispatch_rec *rec)
{
    if (b->let_go)
        b->let_go(b->let_go_arg, rec);
}

/* Returns a new item for rec on the backlog's list, or NULL (logged, rec abandoned: its
 * partition's watermark waits for it) when out of memory. */
static struct dlq_item *item_new(ferry_deadletter_backlog *b, struct ferry_dispatch_rec *rec)
{
    struct dlq_item *item = calloc(1, sizeof(*item));

    if (!item) {
        FLOG_ERROR_REPEATED("route", b->route,
                            "out of memory writing %s[%d]@%" PRId64 " to %s; abandoning it, its "
                            "partition's watermark waits for it",
                            rec->view.topic, rec->view.partition, rec->view.offset, b->topic);
        let_go(b, rec);
        ferry_dispatch_abandon(b->dispatch, &rec, 1);
        return NULL;
    }
    item->rec = rec;
    LIST_INSERT_HEAD(&b->items, item, link);
    return item;
}

void ferry_deadletter_backlog_park(ferry_deadletter_backlog *b, struct ferry_dispatch_rec *rec,
                                   const struct ferry_retry_meta *m, int32_t partition)
{
    struct dlq_item *item = item_new(b, rec);

    if (!item)
        return;
    item->meta = malloc(sizeof(*item->meta));
    if (!item->meta) {
        FLOG_ERROR_REPEATED("route", b->route,
                            "out of memory parking %s[%d]@%" PRId64 "; abandoning it, its "
                            "partition's watermark waits for it",
                            rec->view.topic, rec->view.partition, rec->view.offset);
        item_free(item);
        let_go(b, rec);
        ferry_dispatch_abandon(b->dispatch, &rec, 1);
        return;
    }
    *item->meta = *m;
    item->partition = partition;
    snprintf(item->error, sizeof(item->error), "%s", m->error);
    item_send(b, item);
}

void ferry_deadletter_backlog_add(ferry_deadletter_backlog *b, struct ferry_dispatch_rec *rec,
                                  const struct ferry_deadletter_reason *why)
{
    struct dlq_item *item = item_new(b, rec);

    if (!item)
        return;
    snprintf(item->error, sizeof(item->error), "%s", why->error ? why->error : "");
    item->http_status = why->http_status;
    item->attempts = why->attempts;
    item->has_grpc = why->grpc_message != NULL;
    item->grpc_status = why->grpc_status;
    snprintf(item->grpc_message, sizeof(item->grpc_message), "%s",
             why->grpc_message ? why->grpc_message : "");
    keep_response(b, item, why);
    item_send(b, item);
}

/* A delivery report, collected on the worker: finish the record, or write it again. A failed
 * write waits with the refused ones: an error the broker gives at once (the record too large
 * for the topic, no permission) would otherwise be written again as fast as the broker
 * answers. */
static void on_report(void *arg, void *cookie, rd_kafka_resp_err_t err)
{
    ferry_deadletter_backlog *b = arg;
    struct dlq_item *item = cookie;
    const struct ferry_record *v = &item->rec->view;

    if (err) {
        FLOG_ERROR_REPEATED("route", b->route,
                            "write of %s[%d]@%" PRId64 " to %s failed: %s; retrying", v->topic,
                            v->partition, v->offset, b->topic, rd_kafka_err2str(err));
        item_defer(b, item, ferry_clock_ms());
        return;
    }
    if (!item->meta) /* parking is the normal course of a retry: the metrics count it */
        FLOG_WARN_REPEATED("route", b->route, "dead-lettered %s[%d]@%" PRId64 " to %s: %s",
                           v->topic, v->partition, v->offset, b->topic, item->error);
    ferry_counter_add(b->dead_lettered, 1);
    let_go(b, item->rec);
    ferry_dispatch_finish(b->dispatch, &item->rec, 1);
    item_free(item);
}

void ferry_deadletter_backlog_collect(ferry_deadletter_backlog *b)
{
    struct dlq_queue again = STAILQ_HEAD_INITIALIZER(again);
    struct dlq_item *item, *next;

    ferry_deadletter_collect(b->writer, on_report, b);
    if (!b->nrefused || ferry_clock_ms() < b->retry_at_ms)
        return;
    STAILQ_CONCAT(&again, &b->refused);
    b->nrefused = 0;
    for (item = STAILQ_FIRST(&again); item; item = next) {
        next = STAILQ_NEXT(item, refused_link); /* a new refusal queues it again */
        item_send(b, item);
    }
}

int64_t ferry_deadletter_backlog_retry_ms(const ferry_deadletter_backlog *b)
{
    return b->nrefused ? b->retry_at_ms : INT64_MAX;
}

size_t ferry_deadletter_backlog_pending(const ferry_deadletter_backlog *b)
{
    return ferry_deadletter_pending(b->writer);
}

void ferry_deadletter_backlog_destroy(ferry_deadletter_backlog *b)
{
    if (!b)
        return;
    ferry_deadletter_destroy(b->writer); /* late reports no longer reach the backlog */
    while (!LIST_EMPTY(&b->items))
        item_free(LIST_FIRST(&b->items));
    free(b);
}
