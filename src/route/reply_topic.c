/*
 * reply_topic.c - a route's reply topic (see reply_topic.h).
 *
 * The records of one request share one copy of the answer (reference-counted: a batch of a
 * hundred records keeps its response body once); each record is an item on the list of every
 * item under way, so the route's end can free them whatever their state, and an item the
 * producer refused also sits on the refused queue until its next try. The writer's reports
 * carry the item as their cookie. The headers are built at each write, so a write that is
 * redone holds nothing but the answer meanwhile.
 */
#include "route/reply_topic.h"
#include "core/clock.h"
#include "core/log.h"
#include "route/deadletter.h"
#include "route/retry_topic.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/types.h>

#define REPLY_NUMBER_MAX 32 /* one decimal header value */
#define REPLY_HEADERS 14    /* ferry.* headers a reply may get (the list grows past it) */

/* The answer the records of one request share, with what it owns. */
struct answer {
    size_t refs; /* one per item */
    long status;
    char *error; /* NULL on success */
    int grpc_status;
    char *grpc_message;
    int attempts;
    char *body;
    size_t body_len;
    int truncated;
    char *headers;
    size_t headers_len;
    size_t count; /* records in the request */
};

/* One record's reply, from hand-over until the broker confirms it. */
struct reply_item {
    LIST_ENTRY(reply_item) link;           /* in the topic's items */
    STAILQ_ENTRY(reply_item) refused_link; /* in the refused queue while refused */
    struct ferry_dispatch_rec *rec;
    struct answer *answer;
    size_t index; /* the record's place in its request */
};

STAILQ_HEAD(reply_queue, reply_item);

struct ferry_reply_topic {
    ferry_deadletter *writer;
    struct ferry_reply_topic_options o;
    struct ferry_retry_topics retry; /* o.retry_topics points here */
    LIST_HEAD(, reply_item) items;   /* every item under way */
    struct reply_queue refused;      /* refused writes to redo, oldest first */
    size_t nrefused;
    int64_t retry_at_ms;       /* when the refused writes are tried again */
    int64_t refusal_logged_ms; /* when a refusal was last logged, or 0 */
};

/* ---- the pure parts ---- */

size_t ferry_reply_body_cut(size_t len, size_t max_body, int *truncated)
{
    *truncated = len > max_body;
    return *truncated ? max_body : len;
}

static int add_text(rd_kafka_headers_t *h, const char *name, const char *text)
{
    return rd_kafka_header_add(h, name, -1, text, (ssize_t)strlen(text)) ? -1 : 0;
}

static int add_number(rd_kafka_headers_t *h, const char *name, int64_t number)
{
    char text[REPLY_NUMBER_MAX];

    snprintf(text, sizeof(text), "%" PRId64, number);
    return add_text(h, name, text);
}

/* The target's answer: its status and, for a dead-lettered record, why. */
static int add_outcome(rd_kafka_headers_t *h, const struct ferry_reply_answer *a)
{
    int result = 0;

    if (a->status > 0)
        result |= add_number(h, "ferry.status", a->status);
    if (a->grpc_status >= 0)
        result |= add_number(h, "ferry.grpc_status", a->grpc_status);
    if (a->grpc_message && *a->grpc_message)
        result |= add_text(h, "ferry.grpc_message", a->grpc_message);
    if (a->error)
        result |= add_text(h, "ferry.error", a->error);
    result |= add_number(h, "ferry.attempts", a->attempts);
    return result;
}

/* Where the record came from: a record from one of the route's retry topics names its original
 * place. */
static int add_source(rd_kafka_headers_t *h, const struct ferry_record *rec,
                      const struct ferry_retry_topics *retry, const char *route)
{
    struct ferry_retry_meta m;
    char err[128];
    int result = 0;

    if (ferry_retry_parked_read(retry, rec, &m, err, sizeof(err)) != 1) {
        snprintf(m.topic, sizeof(m.topic), "%s", rec->topic ? rec->topic : "");
        m.partition = rec->partition;
        m.offset = rec->offset;
        m.timestamp_ms = rec->timestamp_ms;
    }
    result |= add_text(h, "ferry.topic", m.topic);
    result |= add_number(h, "ferry.partition", m.partition);
    result |= add_number(h, "ferry.offset", m.offset);
    if (m.timestamp_ms >= 0)
        result |= add_number(h, "ferry.timestamp", m.timestamp_ms);
    result |= add_text(h, "ferry.route", route);
    return result;
}

/* The response headers kept, "name\0value\0" pairs; a pair cut short is left out. */
static int add_response_headers(rd_kafka_headers_t *h, const char *pairs, size_t len)
{
    const char *p = pairs, *end = pairs + len;
    int result = 0;

    while (p && p < end) {
        const char *name = p, *value = memchr(p, '\0', (size_t)(end - p));
        const char *next = value ? memchr(value + 1, '\0', (size_t)(end - value - 1)) : NULL;
        if (!next)
            break;
        result |= add_text(h, name, value + 1);
        p = next + 1;
    }
    return result;
}

rd_kafka_headers_t *ferry_reply_headers_build(const struct ferry_record *rec,
                                              const struct ferry_retry_topics *retry,
                                              const struct ferry_reply_answer *a, const char *route,
                                              int truncated, size_t index, size_t count)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(REPLY_HEADERS);
    int result = 0;

    if (!h)
        return NULL;
    result |= add_outcome(h, a);
    result |= add_source(h, rec, retry, route);
    if (truncated)
        result |= add_text(h, "ferry.truncated", "true");
    if (count > 1) {
        result |= add_number(h, "ferry.batch.index", (int64_t)index);
        result |= add_number(h, "ferry.batch.size", (int64_t)count);
    }
    if (a->headers)
        result |= add_response_headers(h, a->headers, a->headers_len);
    if (result) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/* ---- answers ---- */

static void answer_release(struct answer *an)
{
    if (!an || --an->refs > 0)
        return;
    free(an->error);
    free(an->grpc_message);
    free(an->body);
    free(an->headers);
    free(an);
}

/* A copy of what may be NULL; *ok is cleared when memory ran out. */
static char *copy_bytes(const char *data, size_t len, int *ok)
{
    char *copy;

    if (!data || !len)
        return NULL;
    copy = malloc(len);
    if (!copy) {
        *ok = 0;
        return NULL;
    }
    memcpy(copy, data, len);
    return copy;
}

/* Returns a copy of a for count records, the body cut to max_body, or NULL. */
static struct answer *answer_new(const struct ferry_reply_answer *a, size_t max_body, size_t count)
{
    struct answer *an = calloc(1, sizeof(*an));
    int ok = 1;

    if (!an)
        return NULL;
    an->status = a->status;
    an->attempts = a->attempts;
    an->count = count;
    an->body_len = ferry_reply_body_cut(a->body ? a->body_len : 0, max_body, &an->truncated);
    an->body = copy_bytes(a->body, an->body_len, &ok);
    an->headers = copy_bytes(a->headers, a->headers_len, &ok);
    an->headers_len = an->headers ? a->headers_len : 0;
    an->error = a->error ? copy_bytes(a->error, strlen(a->error) + 1, &ok) : NULL;
    an->grpc_status = a->grpc_status;
    an->grpc_message =
        a->grpc_message ? copy_bytes(a->grpc_message, strlen(a->grpc_message) + 1, &ok) : NULL;
    an->refs = 1;
    if (!ok) {
        answer_release(an);
        return NULL;
    }
    return an;
}

/* The public view of a kept answer. */
static struct ferry_reply_answer answer_view(const struct answer *an)
{
    struct ferry_reply_answer a = {an->status,      an->error,       an->attempts,
                                   an->body,        an->body_len,    an->headers,
                                   an->headers_len, an->grpc_status, an->grpc_message};
    return a;
}

/* ---- items ---- */

static void item_free(struct reply_item *item)
{
    LIST_REMOVE(item, link);
    answer_release(item->answer);
    free(item);
}

/* Logs a refused reply, at most once per REPLY_TOPIC_LOG_MS: a producer whose queue is full
 * refuses every write until it drains. */
static void note_refusal(ferry_reply_topic *t, const char *err, int64_t now_ms)
{
    ferry_counter_add(t->o.refused, 1);
    if (t->refusal_logged_ms && now_ms - t->refusal_logged_ms < REPLY_TOPIC_LOG_MS)
        return;
    t->refusal_logged_ms = now_ms;
    FLOG_WARN_REPEATED("route", t->o.route,
                       "reply topic: %s; the record stays unfinished and its reply is tried "
                       "again every %d ms",
                       err, REPLY_TOPIC_RETRY_MS);
}

/* Gives up on an item whose partition was revoked: the record is consumed again by its
 * partition's next owner, which answers it again. */
static void item_abandon(ferry_reply_topic *t, struct reply_item *item)
{
    ferry_dispatch_abandon(t->o.dispatch, &item->rec, 1);
    item_free(item);
}

/* Queues the item to be written again with the refused ones, REPLY_TOPIC_RETRY_MS from now at
 * the latest. */
static void item_defer(ferry_reply_topic *t, struct reply_item *item, int64_t now_ms)
{
    if (!t->nrefused)
        t->retry_at_ms = now_ms + REPLY_TOPIC_RETRY_MS;
    STAILQ_INSERT_TAIL(&t->refused, item, refused_link);
    t->nrefused++;
}

/* Writes one item; on an immediate refusal it joins the refused queue. A write redone (again)
 * for a record whose partition is draining or gone abandons it instead: its new owner answers
 * it, and the drain need not wait for a reply that already failed. */
static void item_send(ferry_reply_topic *t, struct reply_item *item, int again)
{
    const struct answer *an = item->answer;
    struct ferry_reply_answer a = answer_view(an);
    const struct ferry_record *v = &item->rec->view;
    char err[256];
    int64_t now_ms;

    if (again && ferry_dispatch_rec_stale(item->rec)) {
        item_abandon(t, item);
        return;
    }
    if (ferry_deadletter_send_value(t->writer, v, RD_KAFKA_PARTITION_UA, an->body, an->body_len,
                                    ferry_reply_headers_build(v, t->o.retry_topics, &a, t->o.route,
                                                              an->truncated, item->index,
                                                              an->count),
                                    item, err, sizeof(err)) == 0)
        return;
    now_ms = ferry_clock_ms();
    item_defer(t, item, now_ms);
    note_refusal(t, err, now_ms);
}

/* ---- the reply topic ---- */

ferry_reply_topic *ferry_reply_topic_new(const struct ferry_reply_topic_options *o, char *errstr,
                                         size_t errstr_size)
{
    ferry_reply_topic *t = calloc(1, sizeof(*t));

    if (!t) {
        snprintf(errstr, errstr_size, "reply topic '%s': out of memory", o->topic);
        return NULL;
    }
    LIST_INIT(&t->items);
    STAILQ_INIT(&t->refused);
    t->o = *o;
    if (o->retry_topics) {
        t->retry = *o->retry_topics;
        t->o.retry_topics = &t->retry;
    }
    t->writer = ferry_deadletter_new(o->kafka, o->topic, o->route, NULL, 0, o->wake, o->wake_arg,
                                     errstr, errstr_size);
    if (!t->writer) {
        free(t);
        return NULL;
    }
    return t;
}

/* Out of memory: the records wait for their next delivery. */
static void abandon_all(ferry_reply_topic *t, struct ferry_dispatch_rec **recs, size_t n)
{
    FLOG_ERROR_REPEATED("route", t->o.route,
                        "out of memory writing the replies of %zu record(s) of %s[%d]; "
                        "abandoning them, their partition's watermark waits for them",
                        n, recs[0]->view.topic, recs[0]->view.partition);
    ferry_dispatch_abandon(t->o.dispatch, recs, n);
}

/* Returns a new item for rec, holding a reference on an, or NULL when memory ran out. */
static struct reply_item *item_new(ferry_reply_topic *t, struct ferry_dispatch_rec *rec,
                                   struct answer *an, size_t index)
{
    struct reply_item *item = calloc(1, sizeof(*item));

    if (!item)
        return NULL;
    item->rec = rec;
    item->answer = an;
    item->index = index;
    an->refs++;
    LIST_INSERT_HEAD(&t->items, item, link);
    return item;
}

void ferry_reply_topic_add(ferry_reply_topic *t, struct ferry_dispatch_rec **recs, size_t n,
                           const struct ferry_reply_answer *a)
{
    /* The reference answer_new gives is this call's, so that no send frees it meanwhile. */
    struct answer *an = n ? answer_new(a, t->o.max_body, n) : NULL;

    for (size_t i = 0; i < n; i++) {
        struct reply_item *item = an ? item_new(t, recs[i], an, i) : NULL;
        if (!item) {
            abandon_all(t, recs + i, n - i);
            break;
        }
        item_send(t, item, 0);
    }
    answer_release(an);
}

/* A delivery report, collected on the worker: hand the record back, or write it again with the
 * refused ones (not at once: an error the broker gives at once would loop at its speed). */
static void on_report(void *arg, void *cookie, rd_kafka_resp_err_t err)
{
    ferry_reply_topic *t = arg;
    struct reply_item *item = cookie;
    const struct ferry_record *v = &item->rec->view;
    struct ferry_reply_answer a;

    if (err) {
        FLOG_ERROR_REPEATED("route", t->o.route,
                            "reply to %s[%d]@%" PRId64 " was not stored in '%s': %s; retrying",
                            v->topic, v->partition, v->offset, t->o.topic, rd_kafka_err2str(err));
        item_defer(t, item, ferry_clock_ms());
        return;
    }
    ferry_counter_add(t->o.written, 1);
    a = answer_view(item->answer);
    t->o.done(t->o.done_arg, item->rec, &a);
    item_free(item);
}

void ferry_reply_topic_collect(ferry_reply_topic *t)
{
    struct reply_queue again = STAILQ_HEAD_INITIALIZER(again);
    struct reply_item *item, *next;

    ferry_deadletter_collect(t->writer, on_report, t);
    if (!t->nrefused || ferry_clock_ms() < t->retry_at_ms)
        return;
    STAILQ_CONCAT(&again, &t->refused);
    t->nrefused = 0;
    for (item = STAILQ_FIRST(&again); item; item = next) {
        next = STAILQ_NEXT(item, refused_link); /* a new refusal queues it again */
        item_send(t, item, 1);
    }
}

int64_t ferry_reply_topic_retry_ms(const ferry_reply_topic *t)
{
    return t->nrefused ? t->retry_at_ms : INT64_MAX;
}

size_t ferry_reply_topic_pending(const ferry_reply_topic *t)
{
    return ferry_deadletter_pending(t->writer);
}

void ferry_reply_topic_destroy(ferry_reply_topic *t)
{
    if (!t)
        return;
    ferry_deadletter_destroy(t->writer); /* late reports no longer reach the topic */
    while (!LIST_EMPTY(&t->items))
        item_free(LIST_FIRST(&t->items));
    free(t);
}
