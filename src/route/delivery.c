/*
 * delivery.c - what a route does with the records the dispatcher hands out: build the HTTP
 * request (URL, headers, body), send it, and act on the outcome: finish the records, schedule
 * a retry with backoff (Retry-After as a floor), or park them on the dead-letter topic.
 *
 * Everything here runs on the route's worker thread.
 */
#include "core/clock.h"
#include "core/log.h"
#include "route/route_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BODY_CAP_FACTOR 4 /* envelopes and escaping can grow a batch this much */
#define BODY_CAP_EXTRA (64 * 1024)
#define DLQ_ERROR_MAX 512
#define DLQ_BACKLOG_RETRY_MS 100
#define DLQ_REFUSAL_LOG_MS 10000 /* at most one line per route this often */

/* A record on its way to the dead-letter topic, with why, until the broker confirms. */
struct dlq_item {
    struct route *route;
    struct dlq_item *prev, *next;  /* in the route's dlq_items */
    struct dlq_item *next_backlog; /* in the route's dlq_backlog while refused */
    struct ferry_dispatch_rec *rec;
    char error[DLQ_ERROR_MAX];
    long http_status;
    int attempts;
    char *response;
    size_t response_len;
};

/* ---- set-up ---- */

static int compile_headers(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_cfg_map *h = &r->cfg->target.headers;
    if (h->count > ROUTE_HEADERS_MAX) {
        snprintf(errstr, errstr_size, "at most %d headers", ROUTE_HEADERS_MAX);
        return -1;
    }
    for (size_t i = 0; i < h->count; i++) {
        r->headers[i].name = h->items[i].key;
        r->headers[i].value =
            ferry_template_new(h->items[i].value, FERRY_TEMPLATE_HEADER, errstr, errstr_size);
        if (!r->headers[i].value)
            return -1;
        r->nheaders++;
    }
    return 0;
}

static int set_rules(struct route *r, const struct ferry_cfg_strings *list,
                     enum ferry_outcome outcome, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < list->count; i++)
        if (ferry_status_rules_set(r->rules, outcome, list->items[i], errstr, errstr_size))
            return -1;
    return 0;
}

static void init_body_spec(struct route *r)
{
    const struct ferry_route_config *c = r->cfg;
    static const enum ferry_body_batch formats[] = {
        [FERRY_BATCH_JSON_ARRAY] = FERRY_BODY_JSON_ARRAY,
        [FERRY_BATCH_NDJSON] = FERRY_BODY_NDJSON,
        [FERRY_BATCH_SEPARATOR] = FERRY_BODY_SEPARATOR,
    };
    const char *ct;

    r->body.mode = (enum ferry_body_mode)c->body.mode;
    r->body.tmpl = r->body_template;
    r->body.batch = c->batch.max_records > 1 ? formats[c->batch.format] : FERRY_BODY_SINGLE;
    r->body.separator = c->batch.separator ? c->batch.separator : "\n";
    r->body.separator_len = strlen(r->body.separator);
    ct = ferry_body_content_type(&r->body);
    r->content_type = ct                     ? ct
                      : c->body.content_type ? c->body.content_type
                                             : "application/octet-stream";
}

int route_delivery_init(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_route_config *c = r->cfg;

    r->url = ferry_template_new(c->target.url, FERRY_TEMPLATE_URL, errstr, errstr_size);
    if (!r->url || compile_headers(r, errstr, errstr_size))
        return -1;
    if (c->body.template) {
        r->body_template =
            ferry_template_new(c->body.template, FERRY_TEMPLATE_BODY, errstr, errstr_size);
        if (!r->body_template)
            return -1;
    }
    init_body_spec(r);
    ferry_buf_init(&r->header_value, ROUTE_HEADER_MAX);
    r->rules = ferry_status_rules_new();
    if (!r->rules ||
        set_rules(r, &c->on_status.success, FERRY_OUTCOME_SUCCESS, errstr, errstr_size) ||
        set_rules(r, &c->on_status.retry, FERRY_OUTCOME_RETRY, errstr, errstr_size) ||
        set_rules(r, &c->on_status.dead_letter, FERRY_OUTCOME_DEAD_LETTER, errstr, errstr_size))
        return -1;
    r->backoff.max_attempts = (int)c->retry.max_attempts;
    r->backoff.initial_ms = c->retry.initial_backoff_ms;
    r->backoff.max_ms = c->retry.max_backoff_ms;
    r->backoff.multiplier = c->retry.multiplier;
    r->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    ferry_heap_init(&r->retries);
    return 0;
}

void route_delivery_release(struct route *r)
{
    ferry_template_destroy(r->url);
    for (size_t i = 0; i < r->nheaders; i++)
        ferry_template_destroy(r->headers[i].value);
    ferry_template_destroy(r->body_template);
    ferry_buf_release(&r->header_value);
    ferry_status_rules_destroy(r->rules);
    ferry_heap_release(&r->retries);
}

/* ---- the request pool ---- */

static struct request *request_get(struct route *r)
{
    struct request *req = r->free_requests;
    size_t max = (size_t)r->cfg->batch.max_records;
    size_t body_cap = (size_t)r->cfg->batch.max_bytes * BODY_CAP_FACTOR + BODY_CAP_EXTRA;

    if (req) {
        r->free_requests = req->next_free;
        return req;
    }
    req = calloc(1, sizeof(*req));
    if (!req)
        return NULL;
    req->recs = calloc(max, sizeof(*req->recs));
    req->views = calloc(max, sizeof(*req->views));
    if (!req->recs || !req->views) {
        free(req->recs);
        free(req->views);
        free(req);
        return NULL;
    }
    req->route = r;
    req->retry_node.index = (size_t)-1;
    req->next_all = r->all_requests;
    r->all_requests = req;
    ferry_buf_init(&req->url, ROUTE_URL_MAX);
    ferry_buf_init(&req->body, body_cap);
    ferry_buf_init(&req->header_text, ROUTE_HEADERS_TEXT_MAX);
    ferry_buf_init(&req->call.response, 0);
    return req;
}

static void request_put(struct route *r, struct request *req)
{
    req->headers = NULL;
    req->nheaders = 0;
    ferry_buf_reset(&req->header_text);
    ferry_buf_reset(&req->url);
    ferry_buf_reset(&req->body);
    req->n = 0;
    req->attempts = 0;
    req->next_free = r->free_requests;
    r->free_requests = req;
}

static void dlq_item_free(struct dlq_item *item);

void route_free_requests(struct route *r)
{
    while (r->all_requests) {
        struct request *req = r->all_requests;
        r->all_requests = req->next_all;
        ferry_buf_release(&req->header_text);
        free(req->header_offsets);
        free(req->header_nodes);
        ferry_buf_release(&req->url);
        ferry_buf_release(&req->body);
        ferry_buf_release(&req->call.response);
        free(req->recs);
        free(req->views);
        free(req);
    }
    r->free_requests = NULL;
    while (r->dlq_items)
        dlq_item_free(r->dlq_items);
    r->dlq_backlog = r->dlq_backlog_tail = NULL;
    r->ndlq_backlog = 0;
}

/* ---- dead letters ---- */

/* Unlinks an item from the route's list and frees it. */
static void dlq_item_free(struct dlq_item *item)
{
    struct route *r = item->route;
    if (item->prev)
        item->prev->next = item->next;
    else
        r->dlq_items = item->next;
    if (item->next)
        item->next->prev = item->prev;
    free(item->response);
    free(item);
}

/* Logs a refused dead-letter write, at most once per DLQ_REFUSAL_LOG_MS: a producer whose
 * queue is full refuses every write until it drains. */
static void note_refusal(struct route *r, const char *err, int64_t now_ms)
{
    ferry_counter_add(r->m.dead_letter_refused, 1);
    if (r->dlq_refusal_logged_ms && now_ms - r->dlq_refusal_logged_ms < DLQ_REFUSAL_LOG_MS)
        return;
    r->dlq_refusal_logged_ms = now_ms;
    FLOG_WARN("route", r->cfg->name, "%s; refused dead letters are tried again every %d ms", err,
              DLQ_BACKLOG_RETRY_MS);
}

/* Sends one record's dead letter; on an immediate refusal it goes to the backlog, which
 * route_collect_dead_letters() tries again. */
static void dlq_send(struct route *r, struct dlq_item *item)
{
    char err[256];
    struct ferry_deadletter_reason why = {item->error, item->http_status, item->attempts,
                                          item->response, item->response_len};
    int64_t now_ms;

    if (ferry_deadletter_send(r->deadletter, &item->rec->view, &why, item, err, sizeof(err)) == 0)
        return;
    now_ms = ferry_clock_ms();
    if (!r->ndlq_backlog)
        r->dlq_retry_at_ms = now_ms + DLQ_BACKLOG_RETRY_MS;
    item->next_backlog = NULL;
    if (r->dlq_backlog_tail)
        r->dlq_backlog_tail->next_backlog = item;
    else
        r->dlq_backlog = item;
    r->dlq_backlog_tail = item;
    r->ndlq_backlog++;
    note_refusal(r, err, now_ms);
}

/* Starts the dead-letter write of one record; it stays in flight until the report. A route
 * without a dead-letter topic abandons the record instead: its watermark waits for it and it is
 * consumed again after a restart or rebalance, never finished undelivered. */
static void dead_letter_record(struct route *r, struct ferry_dispatch_rec *rec, const char *error,
                               const struct ferry_http_call *call, int attempts)
{
    struct dlq_item *item;

    if (!r->deadletter) {
        FLOG_ERROR("route", r->cfg->name,
                   "cannot send %s[%d]@%" PRId64 " and there is no dead-letter topic: %s; "
                   "its partition's watermark waits for it",
                   rec->view.topic, rec->view.partition, rec->view.offset, error);
        ferry_dispatch_abandon(r->dispatch, &rec, 1);
        return;
    }
    item = calloc(1, sizeof(*item));
    if (!item) {
        FLOG_ERROR("route", r->cfg->name, "out of memory dead-lettering a record; abandoning it");
        ferry_dispatch_abandon(r->dispatch, &rec, 1);
        return;
    }
    item->route = r;
    item->rec = rec;
    item->next = r->dlq_items;
    if (r->dlq_items)
        r->dlq_items->prev = item;
    r->dlq_items = item;
    snprintf(item->error, sizeof(item->error), "%s", error);
    item->attempts = attempts;
    if (call && !call->transport_error) {
        item->http_status = call->status;
        item->response = call->response.len ? malloc(call->response.len) : NULL;
        if (item->response) {
            memcpy(item->response, call->response.data, call->response.len);
            item->response_len = call->response.len;
        }
    }
    dlq_send(r, item);
}

static void on_dead_letter_done(void *arg, void *cookie, rd_kafka_resp_err_t err)
{
    struct route *r = arg;
    struct dlq_item *item = cookie;
    const struct ferry_record *v = &item->rec->view;

    if (err) {
        FLOG_ERROR("route", r->cfg->name,
                   "dead-letter write of %s[%d]@%" PRId64 " failed: %s; "
                   "retrying",
                   v->topic, v->partition, v->offset, rd_kafka_err2str(err));
        dlq_send(r, item);
        return;
    }
    FLOG_WARN("route", r->cfg->name, "dead-lettered %s[%d]@%" PRId64 " to %s: %s", v->topic,
              v->partition, v->offset, r->cfg->dead_letter.topic, item->error);
    ferry_counter_add(r->m.dead_lettered, 1);
    ferry_dispatch_finish(r->dispatch, &item->rec, 1);
    dlq_item_free(item);
}

void route_collect_dead_letters(struct route *r)
{
    struct dlq_item *item, *next;

    if (!r->deadletter)
        return;
    ferry_deadletter_collect(r->deadletter, on_dead_letter_done, r);
    if (!r->ndlq_backlog || ferry_clock_ms() < r->dlq_retry_at_ms)
        return;
    item = r->dlq_backlog;
    r->dlq_backlog = r->dlq_backlog_tail = NULL;
    r->ndlq_backlog = 0;
    for (; item; item = next) {
        next = item->next_backlog;
        dlq_send(r, item);
    }
}

/* ---- building requests ---- */

/* ---- a request's header list: its lines in one buffer and its curl_slist nodes in one array,
 * both kept with the request, so that building headers allocates nothing once warm ---- */

static int grow_header_slots(struct request *req)
{
    size_t n = req->header_slots ? req->header_slots * 2 : 8;
    size_t *offsets = realloc(req->header_offsets, n * sizeof(*offsets));
    struct curl_slist *nodes;

    if (!offsets)
        return -1;
    req->header_offsets = offsets;
    nodes = realloc(req->header_nodes, n * sizeof(*nodes));
    if (!nodes)
        return -1;
    req->header_nodes = nodes;
    req->header_slots = n;
    return 0;
}

static int add_header(struct request *req, const char *name, const char *value)
{
    struct ferry_buf *text = &req->header_text;
    size_t start = text->len;

    if (req->nheaders == req->header_slots && grow_header_slots(req))
        return -1;
    if (ferry_buf_adds(text, name) || ferry_buf_add(text, ": ", 2) || ferry_buf_adds(text, value) ||
        ferry_buf_addc(text, '\0')) {
        text->len = start;
        text->failed = 0;
        return -1;
    }
    req->header_offsets[req->nheaders++] = start;
    return 0;
}

/* Points the nodes at the lines, now that the buffer no longer moves, and chains them. */
static void link_headers(struct request *req)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        req->header_nodes[i].data = req->header_text.data + req->header_offsets[i];
        req->header_nodes[i].next = i + 1 < req->nheaders ? &req->header_nodes[i + 1] : NULL;
    }
    req->headers = req->nheaders ? req->header_nodes : NULL;
}

static void idempotency_key(const struct request *req, char *out, size_t size)
{
    const struct ferry_record *v = req->views[0];
    int64_t lo = v->offset, hi = v->offset;

    for (size_t i = 1; i < req->n; i++) {
        if (req->views[i]->offset < lo)
            lo = req->views[i]->offset;
        if (req->views[i]->offset > hi)
            hi = req->views[i]->offset;
    }
    if (req->n == 1)
        snprintf(out, size, "%s-%d-%" PRId64, v->topic, v->partition, lo);
    else
        snprintf(out, size, "%s-%d-%" PRId64 "-%" PRId64, v->topic, v->partition, lo, hi);
}

/*
 * Request headers come from three places, and a name is sent once: the configured
 * target.headers first, then ferry's Content-Type and Idempotency-Key unless the config set
 * them, then the record's traceparent (or, with forward_headers, all its headers) unless the
 * request already has that name. A second Content-Type or Idempotency-Key is a malformed
 * request to most servers, so nothing may add a name twice.
 */

/* Header names only the sender may set: they frame the message or manage the connection
 * (RFC 9110 sections 7.6.1 and 10.1.1). A record header with one of them could cut the body
 * short, switch to chunked framing or send the request to another virtual host. */
static const char *const sender_only_headers[] = {
    "Connection", "Content-Length",    "Expect",  "Host", "Keep-Alive", "Proxy-Connection", "TE",
    "Trailer",    "Transfer-Encoding", "Upgrade", NULL};

/* Returns 1 when the request already has a header called name (in any case). */
static int has_header(const struct request *req, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < req->nheaders; i++) {
        const char *line = req->header_text.data + req->header_offsets[i];
        if (strncasecmp(line, name, len) == 0 && line[len] == ':')
            return 1;
    }
    return 0;
}

static int is_sender_only(const char *name)
{
    for (const char *const *p = sender_only_headers; *p; p++)
        if (strcasecmp(*p, name) == 0)
            return 1;
    return 0;
}

/* Returns 1 when a record header after index i has the same name: the last one is sent, as
 * ${header.NAME} and envelopes take the last one. */
static int repeated_later(const rd_kafka_headers_t *h, size_t i, const char *name)
{
    const char *other;
    const void *value;
    size_t len;

    for (size_t j = i + 1; rd_kafka_header_get_all(h, j, &other, &value, &len) == 0; j++)
        if (strcasecmp(other, name) == 0)
            return 1;
    return 0;
}

/* A record header fit for an HTTP header: a token name and a value without control bytes. */
static int header_is_safe(const char *name, const void *value, size_t len)
{
    const unsigned char *v = value;
    if (!*name || strpbrk(name, " :\t\r\n()<>@,;\\\"/[]?={}"))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] == 0x7f)
            return 0;
    return len < ROUTE_HEADER_MAX / 2;
}

/* Whether record header i goes into the request (see the paragraph above). */
static int forwardable(const struct request *req, const rd_kafka_headers_t *h, size_t i,
                       const char *name, const void *value, size_t len)
{
    return value && header_is_safe(name, value, len) && !is_sender_only(name) &&
           !has_header(req, name) && !repeated_later(h, i, name);
}

static int add_record_headers(struct request *req, int forward_all)
{
    rd_kafka_headers_t *h = ferry_record_headers(req->views[0]);
    const char *name;
    const void *value;
    size_t len;
    char text[ROUTE_HEADER_MAX / 2];

    if (!h)
        return 0;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &value, &len) == 0; i++) {
        if (!forward_all && strcasecmp(name, "traceparent") != 0)
            continue;
        if (!forwardable(req, h, i, name, value, len))
            continue;
        memcpy(text, value, len);
        text[len] = '\0';
        if (add_header(req, name, text))
            return -1;
    }
    return 0;
}

/* Renders the configured header templates. Returns 0, or the template error with errstr. */
static int add_template_headers(struct route *r, struct request *req, char *errstr,
                                size_t errstr_size)
{
    struct ferry_buf *value = &r->header_value;
    int result = 0;

    for (size_t i = 0; i < r->nheaders && !result; i++) {
        ferry_buf_reset(value);
        result =
            ferry_template_render(r->headers[i].value, req->views[0], value, errstr, errstr_size);
        if (!result && add_header(req, r->headers[i].name, value->data ? value->data : ""))
            result = FERRY_TEMPLATE_ETOOBIG;
    }
    return result;
}

/* Adds a header ferry always sends, unless the configured headers set it already. */
static int add_default_header(struct request *req, const char *name, const char *value)
{
    return has_header(req, name) ? 0 : add_header(req, name, value);
}

static int build_headers(struct route *r, struct request *req, char *errstr, size_t errstr_size)
{
    char key[512];
    int result = add_template_headers(r, req, errstr, errstr_size);

    if (result)
        return result;
    idempotency_key(req, key, sizeof(key));
    if (add_default_header(req, "Content-Type", r->content_type) ||
        add_default_header(req, "Idempotency-Key", key) ||
        add_record_headers(req, r->cfg->target.forward_headers && req->n == 1))
        return FERRY_TEMPLATE_ETOOBIG;
    link_headers(req);
    return 0;
}

/* Removes record i from the request (it was dead-lettered on its own). */
static void request_drop(struct request *req, size_t i)
{
    memmove(&req->recs[i], &req->recs[i + 1], (req->n - i - 1) * sizeof(*req->recs));
    memmove(&req->views[i], &req->views[i + 1], (req->n - i - 1) * sizeof(*req->views));
    req->n--;
}

/* Renders the body. A record that cannot be rendered is dead-lettered and left out. When the
 * body would pass its cap, *cut says how many records fit; the caller sends the rest in a
 * request of their own. Returns 0 when a body was made for the first *cut records. */
static int build_body(struct route *r, struct request *req, size_t *cut)
{
    char err[DLQ_ERROR_MAX];
    size_t failed = 0;

    *cut = req->n;
    while (req->n) {
        int rc =
            ferry_body_render(&r->body, req->views, req->n, &req->body, &failed, err, sizeof(err));
        if (rc == FERRY_BODY_OK)
            return 0;
        if (rc == FERRY_BODY_ETOOBIG && failed > 0) {
            *cut = failed;
            rc = ferry_body_render(&r->body, req->views, failed, &req->body, &failed, err,
                                   sizeof(err));
            if (rc == FERRY_BODY_OK)
                return 0;
            *cut = req->n;
        }
        dead_letter_record(r, req->recs[failed], err, NULL, 0);
        request_drop(req, failed);
    }
    return -1;
}

/* Renders URL and headers from the first record. On a template error every record of the
 * request is dead-lettered. Returns 0 when the request can be sent. */
static int build_target(struct route *r, struct request *req)
{
    char err[DLQ_ERROR_MAX];
    int rc = ferry_template_render(r->url, req->views[0], &req->url, err, sizeof(err));

    if (!rc)
        rc = build_headers(r, req, err, sizeof(err));
    if (!rc)
        return 0;
    if (rc == FERRY_TEMPLATE_ETOOBIG)
        snprintf(err, sizeof(err), "the URL or a header is too long");
    for (size_t i = 0; i < req->n; i++)
        dead_letter_record(r, req->recs[i], err, NULL, 0);
    req->n = 0;
    return -1;
}

static void start_call(struct route *r, struct request *req, int64_t now_ms)
{
    char err[256];

    req->call.method = ferry_route_methods[r->cfg->target.method];
    req->call.url = req->url.data;
    req->call.headers = req->headers;
    req->call.body = req->body.data;
    req->call.body_len = req->body.len;
    req->call.cookie = req;
    req->started_ms = now_ms;
    if (ferry_sender_start(r->sender, &req->call, err, sizeof(err))) {
        /* Nothing went out: treat it as a failed attempt so it is retried. */
        req->call.transport_error = 1;
        snprintf(req->call.error, sizeof(req->call.error), "%s", err);
        req->call.status = 0;
        req->call.retry_after_ms = -1;
        r->in_flight++;
        route_on_call_done(r, &req->call);
        return;
    }
    r->in_flight++;
    ferry_gauge_set(r->m.in_flight, (int64_t)r->in_flight);
}

/* Prepares and sends a request of freshly dispatched records. Records cut from a batch whose
 * body filled up are put into a request of their own. */
static void send_new(struct route *r, struct request *req, int64_t now_ms)
{
    size_t cut;

    for (size_t i = 0; i < req->n; i++)
        req->views[i] = &req->recs[i]->view;
    if (build_body(r, req, &cut) || build_target(r, req)) {
        request_put(r, req);
        return;
    }
    if (cut < req->n) {
        struct request *rest = request_get(r);
        if (rest) {
            memcpy(rest->recs, req->recs + cut, (req->n - cut) * sizeof(*rest->recs));
            rest->n = req->n - cut;
        } else {
            ferry_dispatch_abandon(r->dispatch, req->recs + cut, req->n - cut);
        }
        req->n = cut;
        start_call(r, req, now_ms);
        if (rest)
            send_new(r, rest, now_ms);
        return;
    }
    start_call(r, req, now_ms);
}

void route_dispatch(struct route *r, int64_t now_ms, int flush)
{
    size_t max = (size_t)r->cfg->batch.max_records;

    if (now_ms < r->paused_until_ms)
        return;
    while (r->in_flight < (size_t)r->cfg->concurrency) {
        struct request *req = request_get(r);
        if (!req)
            return;
        req->n = ferry_dispatch_next(r->dispatch, now_ms, flush, req->recs, max);
        if (!req->n) {
            request_put(r, req);
            return;
        }
        send_new(r, req, now_ms);
    }
}

/* ---- outcomes ---- */

static void note_success(struct route *r)
{
    if (r->failing)
        FLOG_INFO("route", r->cfg->name, "target recovered after %" PRIu64 " failed requests",
                  r->failures);
    r->failing = 0;
    r->failures = 0;
}

static void note_failure(struct route *r, const char *reason)
{
    r->failures++;
    if (r->failing)
        return;
    r->failing = 1;
    FLOG_WARN("route", r->cfg->name, "target is failing: %s", reason);
}

static void count_request(struct route *r, const struct ferry_http_call *call)
{
    int cls = call->transport_error ? 0 : (int)(call->status / 100) - 1;
    if (cls < 0 || cls > 4)
        cls = 0; /* transport errors and odd statuses share the "error" series */
    ferry_counter_add(r->m.requests[cls], 1);
    ferry_histogram_observe(r->m.latency, call->seconds);
}

static void schedule_retry(struct route *r, struct request *req, int64_t now_ms)
{
    int64_t delay = ferry_backoff_exhausted(&r->backoff, req->attempts)
                        ? r->backoff.max_ms
                        : ferry_backoff_delay_ms(&r->backoff, req->attempts, &r->rng);
    int64_t after = req->call.retry_after_ms;

    if (after >= 0 && (req->call.status == 429 || req->call.status == 503)) {
        if (after > delay)
            delay = after;
        if (now_ms + after > r->paused_until_ms)
            r->paused_until_ms = now_ms + after;
    }
    ferry_counter_add(r->m.retried, req->n);
    req->retry_node.key = now_ms + delay;
    if (ferry_heap_push(&r->retries, &req->retry_node)) {
        ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
        request_put(r, req);
    }
}

static void dead_letter_request(struct route *r, struct request *req, const char *reason)
{
    for (size_t i = 0; i < req->n; i++)
        dead_letter_record(r, req->recs[i], reason, &req->call, req->attempts);
    request_put(r, req);
}

static int request_stale(const struct request *req)
{
    return ferry_dispatch_rec_stale(req->recs[0]);
}

static void describe(const struct ferry_http_call *call, char *out, size_t size)
{
    if (call->transport_error)
        snprintf(out, size, "%s", call->error);
    else
        snprintf(out, size, "http status %ld", call->status);
}

/* What to do after a failed attempt: retry, dead-letter, or keep retrying without a topic. */
static void handle_failure(struct route *r, struct request *req, enum ferry_outcome outcome,
                           int64_t now_ms)
{
    char reason[DLQ_ERROR_MAX];
    int give_up =
        outcome == FERRY_OUTCOME_DEAD_LETTER || ferry_backoff_exhausted(&r->backoff, req->attempts);

    describe(&req->call, reason, sizeof(reason));
    note_failure(r, reason);
    if (request_stale(req)) {
        ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
        request_put(r, req);
    } else if (give_up && r->deadletter) {
        if (outcome == FERRY_OUTCOME_RETRY)
            snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
                     " (gave up after %d attempts)", req->attempts);
        dead_letter_request(r, req, reason);
    } else {
        if (outcome == FERRY_OUTCOME_DEAD_LETTER)
            req->attempts = r->backoff.max_attempts ? r->backoff.max_attempts : req->attempts;
        schedule_retry(r, req, now_ms);
    }
}

void route_on_call_done(void *arg, struct ferry_http_call *call)
{
    struct route *r = arg;
    struct request *req = call->cookie;
    enum ferry_outcome outcome =
        call->transport_error ? FERRY_OUTCOME_RETRY : ferry_status_classify(r->rules, call->status);

    r->in_flight--;
    ferry_gauge_set(r->m.in_flight, (int64_t)r->in_flight);
    count_request(r, call);
    req->attempts++;
    if (outcome != FERRY_OUTCOME_SUCCESS) {
        handle_failure(r, req, outcome, ferry_clock_ms());
        return;
    }
    note_success(r);
    ferry_counter_add(r->m.delivered, req->n);
    ferry_dispatch_finish(r->dispatch, req->recs, req->n);
    request_put(r, req);
}

void route_fire_retries(struct route *r, int64_t now_ms)
{
    struct ferry_heap_node *top;

    while (r->in_flight < (size_t)r->cfg->concurrency && now_ms >= r->paused_until_ms) {
        struct request *req;
        top = ferry_heap_peek(&r->retries);
        if (!top || top->key > now_ms)
            return;
        req = (struct request *)((char *)top - offsetof(struct request, retry_node));
        ferry_heap_remove(&r->retries, top);
        if (request_stale(req)) {
            ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
            request_put(r, req);
            continue;
        }
        start_call(r, req, now_ms);
    }
}

int64_t route_next_retry_ms(const struct route *r)
{
    const struct ferry_heap_node *top = ferry_heap_peek(&r->retries);
    int64_t t = top ? top->key : INT64_MAX;
    if (top && t < r->paused_until_ms)
        t = r->paused_until_ms;
    return t;
}

void route_abandon_retries(struct route *r, int stale_only)
{
    size_t i = 0;
    while (i < r->retries.count) {
        struct ferry_heap_node *node = r->retries.items[i];
        struct request *req =
            (struct request *)((char *)node - offsetof(struct request, retry_node));
        if (stale_only && !request_stale(req)) {
            i++;
            continue;
        }
        ferry_heap_remove(&r->retries, node);
        ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
        request_put(r, req);
        i = 0; /* removal reorders the heap: scan again */
    }
}
