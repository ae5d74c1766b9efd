/*
 * request.c - building a route's HTTP requests from records (see request.h).
 *
 * A request's header list is its lines in one capped buffer plus one array of curl_slist nodes
 * pointing into it, both kept with the request, so that building headers allocates nothing
 * once warm; the nodes are chained only when every line is in, since the buffer may move while
 * it grows. A second Content-Type or Idempotency-Key is a malformed request to most servers, so
 * ferry's own headers are left out when the configured ones set them (has_header()), and record
 * headers are forwarded only when no header of that name is there yet.
 */
#include "route/request.h"
#include "route/body.h"
#include "route/header_last.h"
#include "route/header_name.h"
#include "route/retry_topic.h"
#include "route/grpc_call.h"
#include "route/grpc_target.h"
#include "route/smtp.h"
#include "route/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define REQUEST_HEADERS_MAX 64 /* configured target.headers */
#define REQUEST_URL_MAX (16 * 1024)
#define REQUEST_HEADER_MAX (8 * 1024) /* one rendered header template */
/* All header lines of one request together: past this the request counts as too large. */
#define REQUEST_HEADERS_TEXT_MAX (64 * 1024)
#define REQUEST_BODY_CAP_FACTOR 4 /* envelopes and escaping can grow a batch this much */
#define REQUEST_BODY_CAP_EXTRA (64 * 1024)
#define REQUEST_ERROR_MAX 512
#define CONTENT_TYPE_NAME "Content-Type: "

/* Adding a header can also run out of memory for the line arrays, beside the template results
 * of template.h. */
enum { HEADER_ENOMEM = FERRY_TEMPLATE_ETOOBIG - 1 };

/* A header of the target: its name and a compiled value template. */
struct target_header {
    const char *name;
    ferry_template *value;
};

SLIST_HEAD(request_list, ferry_request);

struct ferry_request_builder {
    const struct ferry_route_config *cfg;
    ferry_template *url;
    struct target_header headers[REQUEST_HEADERS_MAX];
    size_t nheaders;
    const char *headers_key; /* their config key, for reasons: "target.headers" */
    ferry_template *body_template;
    struct ferry_body_spec body;
    struct ferry_buf content_type_line; /* "Content-Type: ...", the same on every request */
    struct ferry_buf header_value;      /* scratch for one header template's output */
    ferry_smtp *smtp;                   /* an e-mail target's messages, or NULL */
    ferry_grpc_target *grpc;            /* a gRPC target's calls, or NULL */
    /* the route's retry topics, named once here rather than for every request */
    struct ferry_retry_topics retry_topics;
    struct request_list free_requests;
    struct request_list all_requests;
};

/* ---- records from a retry topic ---- */

/* What the target sees of a record from a retry topic: the record it is a copy of. */
struct ferry_request_origin {
    struct ferry_record view; /* its headers are the request's: see origins_release() */
    char topic[FERRY_RETRY_TOPIC_NAME_MAX];
};

/* Frees the header lists of the request's original views; their array stays for reuse. */
static void origins_release(struct ferry_request *req)
{
    for (size_t i = 0; i < req->norigins; i++)
        rd_kafka_headers_destroy(req->origins[i].view.headers);
    req->norigins = 0;
}

/* Makes room for an original view of each of the request's records. The views point into the
 * array, so it grows only before the first is made: once there is room, later calls for the
 * same request do nothing. Returns 0, or -1 when out of memory. */
static int origins_reserve(struct ferry_request *req)
{
    struct ferry_request_origin *o;

    if (req->origins_room >= req->n)
        return 0;
    o = realloc(req->origins, req->n * sizeof(*o));
    if (!o)
        return -1;
    req->origins = o;
    req->origins_room = req->n;
    return 0;
}

/* Fills o from v, a copy parked with the headers h that m was read from: the original's
 * coordinates, and v's headers without the ones its parking added. Returns 0, or -1 when out
 * of memory. */
static int origin_make(struct ferry_request_origin *o, const struct ferry_record *v,
                       const rd_kafka_headers_t *h, const struct ferry_retry_meta *m)
{
    ferry_retry_meta_origin(m, v, &o->view);
    memcpy(o->topic, m->topic, sizeof(o->topic)); /* m is the caller's */
    o->view.topic = o->topic;
    o->view.headers = ferry_retry_headers_strip(h, 0);
    o->view.msg = NULL; /* the headers are those above, not the parked message's */
    return o->view.headers ? 0 : -1;
}

/* Points view i at the record it is a copy of, when it came from one of the route's retry
 * topics with the headers of a parking (ferry_retry_parked_read, as dead letters decide); a
 * record without them there (produced by hand), or with them on another topic, is sent as it
 * is. Returns 0, or -1 when out of memory. */
static int origin_set(const ferry_request_builder *b, struct ferry_request *req, size_t i)
{
    const struct ferry_record *v = req->views[i];
    struct ferry_retry_meta m;
    char err[256];

    if (ferry_retry_parked_read(&b->retry_topics, v, &m, err, sizeof(err)) != 1)
        return 0;
    if (origins_reserve(req) ||
        origin_make(&req->origins[req->norigins], v, ferry_record_headers(v), &m))
        return -1;
    req->views[i] = &req->origins[req->norigins++].view;
    return 0;
}

/* Sets the views of the request's records: the records' own, or for those from a retry topic
 * their originals'. Allocates nothing for a route without retry topics, nor for records read
 * from its own topics once the request is warm. Returns 0, or -1 when out of memory. */
static int views_set(const ferry_request_builder *b, struct ferry_request *req)
{
    int result = 0;

    origins_release(req);
    for (size_t i = 0; i < req->n; i++)
        req->views[i] = &req->recs[i]->view;
    for (size_t i = 0; i < req->n && b->retry_topics.count && !result; i++)
        result = origin_set(b, req, i);
    return result;
}

/* ---- set-up ---- */

/* Compiles h, target.headers or a gRPC target's metadata (named what in messages). */
static int compile_headers(ferry_request_builder *b, const struct ferry_cfg_map *h,
                           const char *what, char *errstr, size_t errstr_size)
{
    if (h->count > REQUEST_HEADERS_MAX) {
        snprintf(errstr, errstr_size, "%s: at most %d headers, got %zu", what, REQUEST_HEADERS_MAX,
                 h->count);
        return -1;
    }
    b->headers_key = what;
    for (size_t i = 0; i < h->count; i++) {
        b->headers[i].name = h->items[i].key;
        b->headers[i].value =
            ferry_template_new(h->items[i].value, FERRY_TEMPLATE_HEADER, errstr, errstr_size);
        if (!b->headers[i].value)
            return -1;
        b->nheaders++;
    }
    return 0;
}

/* Sets up the body and returns the Content-Type its requests carry. */
static const char *init_body_spec(ferry_request_builder *b)
{
    const struct ferry_route_config *c = b->cfg;
    static const enum ferry_body_batch formats[] = {
        [FERRY_BATCH_JSON_ARRAY] = FERRY_BODY_JSON_ARRAY,
        [FERRY_BATCH_NDJSON] = FERRY_BODY_NDJSON,
        [FERRY_BATCH_SEPARATOR] = FERRY_BODY_SEPARATOR,
    };
    const char *ct;

    b->body.mode = (enum ferry_body_mode)c->body.mode;
    b->body.tmpl = b->body_template;
    b->body.batch = c->batch.max_records > 1 ? formats[c->batch.format] : FERRY_BODY_SINGLE;
    b->body.separator = c->batch.separator ? c->batch.separator : "\n";
    b->body.separator_len = strlen(b->body.separator);
    ct = ferry_body_content_type(&b->body);
    /* A JSON template's body may be a JSON subtype (application/merge-patch+json): say so. */
    if (b->body.mode == FERRY_BODY_JSON_TEMPLATE && b->body.batch == FERRY_BODY_SINGLE &&
        c->body.content_type)
        ct = c->body.content_type;
    if (!ct)
        ct = c->body.content_type ? c->body.content_type : "application/octet-stream";
    return ct;
}

/* Makes the line "Content-Type: ct" that every request of the route sends. Returns 0, or -1
 * when out of memory. */
static int make_content_type_line(ferry_request_builder *b, const char *ct)
{
    struct ferry_buf *line = &b->content_type_line;

    /* still empty: this only sets the cap, to the line's own length */
    ferry_buf_init(line, sizeof(CONTENT_TYPE_NAME) - 1 + strlen(ct));
    if (ferry_buf_adds(line, CONTENT_TYPE_NAME) || ferry_buf_adds(line, ct))
        return -1;
    return 0;
}

/* A gRPC target: its calls' parts (grpc_target.h) and its metadata templates. */
static int make_grpc(ferry_request_builder *b, char *errstr, size_t errstr_size)
{
    const struct ferry_route_grpc_config *g = &b->cfg->target.grpc;
    struct ferry_grpc_target_options o = {g->url, g->method, g->payload == FERRY_GRPC_PAYLOAD_JSON,
                                          g->descriptor_set, b->cfg->target.timeout_ms};
    char err[REQUEST_ERROR_MAX];

    b->grpc = ferry_grpc_target_new(&o, err, sizeof(err));
    if (!b->grpc) {
        snprintf(errstr, errstr_size, "target.grpc: %s", err);
        return -1;
    }
    return compile_headers(b, &g->metadata, "target.grpc.metadata", errstr, errstr_size);
}

ferry_request_builder *ferry_request_builder_new(const struct ferry_route_config *cfg, char *errstr,
                                                 size_t errstr_size)
{
    ferry_request_builder *b = calloc(1, sizeof(*b));
    int result = -1;

    if (!b) {
        snprintf(errstr, errstr_size, "requests: out of memory");
        goto out;
    }
    b->cfg = cfg;
    SLIST_INIT(&b->free_requests);
    SLIST_INIT(&b->all_requests);
    ferry_buf_init(&b->header_value, REQUEST_HEADER_MAX);
    ferry_buf_init(&b->content_type_line, 0);
    if (ferry_route_retry_topics(cfg, &b->retry_topics)) {
        snprintf(errstr, errstr_size, "retry.topics: more than %d, or a name too long",
                 FERRY_RETRY_STAGES_MAX);
        goto out;
    }
    if (ferry_route_target_kind(cfg) == FERRY_TARGET_SMTP) {
        b->smtp = ferry_smtp_new(&cfg->target.smtp, cfg->name, errstr, errstr_size);
        result = b->smtp ? 0 : -1;
        goto out;
    }
    if (ferry_route_target_kind(cfg) == FERRY_TARGET_GRPC) {
        result = make_grpc(b, errstr, errstr_size);
        goto out;
    }
    b->url = ferry_template_new(cfg->target.url, FERRY_TEMPLATE_URL, errstr, errstr_size);
    if (!b->url || compile_headers(b, &cfg->target.headers, "target.headers", errstr, errstr_size))
        goto out;
    if (cfg->body.template) {
        b->body_template = ferry_template_compile(
            cfg->body.template, ferry_body_template_mode((enum ferry_body_mode)cfg->body.mode),
            (enum ferry_template_missing)cfg->body.missing, errstr, errstr_size);
        if (!b->body_template)
            goto out;
    }
    if (make_content_type_line(b, init_body_spec(b))) {
        snprintf(errstr, errstr_size, "requests: out of memory");
        goto out;
    }
    result = 0;
out:
    if (result) {
        ferry_request_builder_destroy(b);
        return NULL;
    }
    return b;
}

static void request_free(struct ferry_request *req)
{
    ferry_buf_release(&req->headers.text);
    free(req->headers.offsets);
    free(req->headers.nodes);
    ferry_buf_release(&req->url);
    ferry_buf_release(&req->body);
    ferry_buf_release(&req->call.response);
    ferry_buf_release(&req->call.kept);
    ferry_smtp_mail_destroy(req->mail);
    ferry_grpc_call_destroy(req->grpc);
    origins_release(req);
    free(req->origins);
    free(req->recs);
    free(req->views);
    free(req);
}

void ferry_request_builder_destroy(ferry_request_builder *b)
{
    struct ferry_request *req, *next;

    if (!b)
        return;
    for (req = SLIST_FIRST(&b->all_requests); req; req = next) {
        next = SLIST_NEXT(req, all_link);
        request_free(req);
    }
    ferry_template_destroy(b->url);
    for (size_t i = 0; i < b->nheaders; i++)
        ferry_template_destroy(b->headers[i].value);
    ferry_template_destroy(b->body_template);
    ferry_buf_release(&b->header_value);
    ferry_buf_release(&b->content_type_line);
    ferry_smtp_destroy(b->smtp);
    ferry_grpc_target_destroy(b->grpc);
    free(b);
}

/* ---- the pool ---- */

static struct ferry_request *request_new(ferry_request_builder *b)
{
    size_t max = (size_t)b->cfg->batch.max_records;
    size_t body_cap =
        (size_t)b->cfg->batch.max_bytes * REQUEST_BODY_CAP_FACTOR + REQUEST_BODY_CAP_EXTRA;
    struct ferry_request *req = calloc(1, sizeof(*req));

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
    req->call.cookie = req;
    req->retry_node.index = (size_t)-1;
    ferry_buf_init(&req->url, REQUEST_URL_MAX);
    ferry_buf_init(&req->body, body_cap);
    ferry_buf_init(&req->headers.text, REQUEST_HEADERS_TEXT_MAX);
    ferry_buf_init(&req->call.response, 0);
    SLIST_INSERT_HEAD(&b->all_requests, req, all_link);
    return req;
}

struct ferry_request *ferry_request_get(ferry_request_builder *b)
{
    struct ferry_request *req = SLIST_FIRST(&b->free_requests);

    if (!req)
        return request_new(b);
    SLIST_REMOVE_HEAD(&b->free_requests, free_link);
    return req;
}

void ferry_request_put(ferry_request_builder *b, struct ferry_request *req)
{
    req->headers.list = NULL;
    req->headers.count = 0;
    ferry_buf_reset(&req->headers.text);
    ferry_buf_reset(&req->url);
    ferry_buf_reset(&req->body);
    origins_release(req);
    req->n = 0;
    req->attempts = 0;
    SLIST_INSERT_HEAD(&b->free_requests, req, free_link);
}

/* ---- the header list ---- */

static int grow_header_slots(struct ferry_request_headers *h)
{
    size_t n = h->slots ? h->slots * 2 : 8;
    size_t *offsets = realloc(h->offsets, n * sizeof(*offsets));
    struct curl_slist *nodes;

    if (!offsets)
        return -1;
    h->offsets = offsets;
    nodes = realloc(h->nodes, n * sizeof(*nodes));
    if (!nodes)
        return -1;
    h->nodes = nodes;
    h->slots = n;
    return 0;
}

/* Starts a header line at the end of the text: the caller appends "name: value" and passes
 * what the appends returned to line_end(). Returns 0 or HEADER_ENOMEM. */
static int line_begin(struct ferry_request_headers *h)
{
    return h->count == h->slots && grow_header_slots(h) ? HEADER_ENOMEM : 0;
}

/* Ends the line that started at mark (a copy of the text made before it): terminates it and
 * counts it, or takes it back when an append failed (failed nonzero) or the terminator does
 * not fit. Returns 0 or FERRY_TEMPLATE_ETOOBIG. */
static int line_end(struct ferry_request_headers *h, const struct ferry_buf *mark, int failed)
{
    if (failed || ferry_buf_addc(&h->text, '\0')) {
        ferry_buf_rewind(&h->text, mark);
        return FERRY_TEMPLATE_ETOOBIG;
    }
    h->offsets[h->count++] = mark->len;
    return 0;
}

/* Nonzero when value holds nothing but spaces and tabs, which an HTTP header value does not
 * keep (RFC 9110 section 5.5). */
static int is_blank(const char *value)
{
    return value[strspn(value, " \t")] == '\0';
}

/* Appends "name: value", or "name;" for a blank value: libcurl reads "name:" with nothing
 * after it as "remove this header" and sends nothing, and "name;" as an empty header. Returns
 * 0, FERRY_TEMPLATE_ETOOBIG past the text's cap, or HEADER_ENOMEM. */
static int add_header(struct ferry_request *req, const char *name, const char *value)
{
    struct ferry_request_headers *h = &req->headers;
    struct ferry_buf mark = h->text;

    if (line_begin(h))
        return HEADER_ENOMEM;
    if (is_blank(value))
        return line_end(h, &mark, ferry_buf_adds(&h->text, name) || ferry_buf_addc(&h->text, ';'));
    return line_end(h, &mark,
                    ferry_buf_adds(&h->text, name) || ferry_buf_add(&h->text, ": ", 2) ||
                        ferry_buf_adds(&h->text, value));
}

/* Appends a whole line ("name: value", len bytes). Same results as add_header(). */
static int add_line(struct ferry_request *req, const char *line, size_t len)
{
    struct ferry_request_headers *h = &req->headers;
    struct ferry_buf mark = h->text;

    if (line_begin(h))
        return HEADER_ENOMEM;
    return line_end(h, &mark, ferry_buf_add(&h->text, line, len));
}

/* Points the nodes at the lines, now that the buffer no longer moves, and chains them. */
static void link_headers(struct ferry_request_headers *h)
{
    for (size_t i = 0; i < h->count; i++) {
        h->nodes[i].data = h->text.data + h->offsets[i];
        h->nodes[i].next = i + 1 < h->count ? &h->nodes[i + 1] : NULL;
    }
    h->list = h->count ? h->nodes : NULL;
}

/* Returns 1 when one of the request's first n header lines is called name (in any case),
 * blank ("name;") or not. */
static int has_header(const struct ferry_request *req, size_t n, const char *name)
{
    const struct ferry_request_headers *h = &req->headers;
    size_t len = strlen(name);

    for (size_t i = 0; i < n && i < h->count; i++) {
        const char *line = h->text.data + h->offsets[i];
        if (strncasecmp(line, name, len) == 0 && (line[len] == ':' || line[len] == ';'))
            return 1;
    }
    return 0;
}

/* ---- header values ---- */

/* Where a request's records came from, for its Idempotency-Key: the topic, partition and
 * offsets of its records, lo to hi. */
struct request_origin {
    const char *topic;
    int32_t partition;
    int64_t lo, hi;
};

/* The origin of the request's first n records (those its body holds). A single record's is what
 * the target sees of it (for a record from a retry topic, the record it is a copy of), so that
 * every attempt of a record carries one key. A batch's spans the offsets its records were
 * consumed at: they are of one partition, which the originals of retry-topic records need not
 * be. */
static void request_origin(const struct ferry_request *req, size_t n, struct request_origin *o)
{
    const struct ferry_record *v = n == 1 ? req->views[0] : &req->recs[0]->view;

    *o = (struct request_origin){v->topic, v->partition, v->offset, v->offset};
    for (size_t i = 1; i < n; i++) {
        if (req->recs[i]->view.offset < o->lo)
            o->lo = req->recs[i]->view.offset;
        if (req->recs[i]->view.offset > o->hi)
            o->hi = req->recs[i]->view.offset;
    }
}

/* Adds "Idempotency-Key: topic-partition-offset" for one record, "...-lo-hi" for a batch of
 * n. Written without printf: it is on every request's path. Same results as add_header(). */
static int add_idempotency_key(struct ferry_request *req, size_t n)
{
    static const char name[] = "Idempotency-Key: ";
    struct ferry_request_headers *h = &req->headers;
    struct ferry_buf *text = &h->text;
    struct ferry_buf mark = *text;
    struct request_origin o;
    int failed;

    request_origin(req, n, &o);
    if (line_begin(h))
        return HEADER_ENOMEM;
    failed = ferry_buf_add(text, name, sizeof(name) - 1) || ferry_buf_adds(text, o.topic) ||
             ferry_buf_addc(text, '-') || ferry_buf_addi(text, o.partition) ||
             ferry_buf_addc(text, '-') || ferry_buf_addi(text, o.lo);
    if (!failed && n > 1)
        failed = ferry_buf_addc(text, '-') || ferry_buf_addi(text, o.hi);
    return line_end(h, &mark, failed);
}

/* Header names only the sender may set: they frame the message or manage the connection
 * (RFC 9110 sections 7.6.1 and 10.1.1). A record header with one of them could cut the body
 * short, switch to chunked framing or send the request to another virtual host. */
static const char *const sender_only_headers[] = {
    "Connection", "Content-Length",    "Expect",  "Host", "Keep-Alive", "Proxy-Connection", "TE",
    "Trailer",    "Transfer-Encoding", "Upgrade", NULL};

static int is_sender_only(const char *name)
{
    for (const char *const *p = sender_only_headers; *p; p++)
        if (strcasecmp(*p, name) == 0)
            return 1;
    return 0;
}

/* A record header fit for an HTTP header: a token name and a value without control bytes. */
static int header_is_safe(const char *name, const void *value, size_t len)
{
    const unsigned char *v = value;
    if (!ferry_header_name_is_token(name))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] == 0x7f)
            return 0;
    return len < REQUEST_HEADER_MAX / 2;
}

/* Whether record header i goes into the request (see request.h): only the last header of a
 * name is sent, as ${header.NAME} and envelopes take the last one, and only when the first own
 * header lines (the configured ones and ferry's) do not set it. Forwarded names are therefore
 * all different, and need not be compared with each other. */
static int forwardable(const struct ferry_request *req, const struct ferry_header_last *last,
                       size_t own, size_t i, const char *name, const void *value, size_t len)
{
    return value && ferry_header_last_is(last, i) && header_is_safe(name, value, len) &&
           !is_sender_only(name) && !has_header(req, own, name);
}

/* ---- the three sources of headers ---- */

/* Appends a record header ("name: value", len bytes of value). Same results as add_header(). */
static int add_record_header(struct ferry_request *req, const char *name, const void *value,
                             size_t len)
{
    char text[REQUEST_HEADER_MAX / 2];

    memcpy(text, value, len);
    text[len] = '\0';
    return add_header(req, name, text);
}

/* Only the record's last traceparent (the path of every request of a route that does not
 * forward headers: one pass, no marks). */
static int add_traceparent(struct ferry_request *req, const rd_kafka_headers_t *h, size_t own)
{
    const char *name, *last_name = NULL;
    const void *value, *last_value = NULL;
    size_t len, last_len = 0;

    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &value, &len) == 0; i++) {
        if (strcasecmp(name, "traceparent") == 0) {
            last_name = name;
            last_value = value;
            last_len = len;
        }
    }
    if (!last_value || !header_is_safe(last_name, last_value, last_len) ||
        has_header(req, own, last_name))
        return 0;
    return add_record_header(req, last_name, last_value, last_len);
}

static int add_record_headers(struct ferry_request *req, int forward_all)
{
    rd_kafka_headers_t *h = ferry_record_headers(req->views[0]);
    struct ferry_header_last last;
    const char *name;
    const void *value;
    size_t len, own = req->headers.count;
    int result = 0;

    if (!h)
        return 0;
    if (!forward_all)
        return add_traceparent(req, h, own);
    if (ferry_header_last_init(&last, h, 1))
        return HEADER_ENOMEM;
    for (size_t i = 0; !result && rd_kafka_header_get_all(h, i, &name, &value, &len) == 0; i++) {
        if (forwardable(req, &last, own, i, name, value, len))
            result = add_record_header(req, name, value, len);
    }
    ferry_header_last_release(&last);
    return result;
}

/* Renders header template h into b->header_value. Returns a template result; a record that
 * cannot fill it gets a reason that names the header: "target.headers.X-User: template: ...". */
static int render_template_header(ferry_request_builder *b, const struct target_header *h,
                                  const struct ferry_record *rec, char *errstr, size_t errstr_size)
{
    char why[REQUEST_ERROR_MAX];
    int result;

    ferry_buf_reset(&b->header_value);
    result = ferry_template_render(h->value, rec, &b->header_value, why, sizeof(why));
    if (result)
        snprintf(errstr, errstr_size, "%s.%s: %s", b->headers_key, h->name, why);
    return result;
}

/* Renders the configured header templates. Returns 0, or a template result or HEADER_ENOMEM
 * (errstr is set for template errors). */
static int add_template_headers(ferry_request_builder *b, struct ferry_request *req, char *errstr,
                                size_t errstr_size)
{
    const struct ferry_buf *value = &b->header_value;
    int result = 0;

    for (size_t i = 0; i < b->nheaders && !result; i++) {
        result = render_template_header(b, &b->headers[i], req->views[0], errstr, errstr_size);
        if (!result)
            result = add_header(req, b->headers[i].name, value->data ? value->data : "");
    }
    return result;
}

/* Nonzero when the route's configured headers set a header ferry would send by itself. Only
 * they come before ferry's own, so without any there is nothing to look for. */
static int configured(const ferry_request_builder *b, const struct ferry_request *req,
                      const char *name)
{
    return b->nheaders && has_header(req, req->headers.count, name);
}

/* The headers of a request whose body holds its first n records. Returns 0, or a template
 * result or HEADER_ENOMEM (errstr is set for template errors). */
static int build_headers(ferry_request_builder *b, struct ferry_request *req, size_t n,
                         char *errstr, size_t errstr_size)
{
    int result = add_template_headers(b, req, errstr, errstr_size);

    if (!result && !configured(b, req, "Content-Type"))
        result = add_line(req, b->content_type_line.data, b->content_type_line.len);
    if (!result && !configured(b, req, "Idempotency-Key"))
        result = add_idempotency_key(req, n);
    if (!result)
        result = add_record_headers(req, b->cfg->target.forward_headers && n == 1);
    if (!result)
        link_headers(&req->headers);
    return result;
}

/* ---- the request ---- */

/* Rejects every record of the request with why. Returns -1: nothing is left to send. */
static int reject_all(struct ferry_request *req, const char *why, ferry_request_reject_fn *reject,
                      void *reject_arg)
{
    for (size_t i = 0; i < req->n; i++)
        reject(reject_arg, req->recs[i], why);
    req->n = 0;
    return -1;
}

/* Removes record i from the request (it was rejected on its own). */
static void request_drop(struct ferry_request *req, size_t i)
{
    memmove(&req->recs[i], &req->recs[i + 1], (req->n - i - 1) * sizeof(*req->recs));
    memmove(&req->views[i], &req->views[i + 1], (req->n - i - 1) * sizeof(*req->views));
    req->n--;
}

/* Renders the body. A record that cannot be rendered is rejected and left out. When the body
 * would pass its cap, *cut says how many records fit. Returns 0 when a body was made for the
 * first *cut records. */
static int build_body(ferry_request_builder *b, struct ferry_request *req, size_t *cut,
                      ferry_request_reject_fn *reject, void *reject_arg)
{
    char err[REQUEST_ERROR_MAX];
    size_t failed = 0;

    *cut = req->n;
    while (req->n) {
        int rc =
            ferry_body_render(&b->body, req->views, req->n, &req->body, &failed, err, sizeof(err));
        if (rc == FERRY_BODY_OK)
            return 0;
        if (rc == FERRY_BODY_ETOOBIG && failed > 0) {
            *cut = failed;
            rc = ferry_body_render(&b->body, req->views, failed, &req->body, &failed, err,
                                   sizeof(err));
            if (rc == FERRY_BODY_OK)
                return 0;
            *cut = req->n;
        }
        reject(reject_arg, req->recs[failed], err);
        request_drop(req, failed);
    }
    return -1;
}

/* Renders URL and headers from the first record, for a body that holds the first n records
 * (fewer than req->n when the batch was cut). On an error every record of the request is
 * rejected. Returns 0 when the request can be sent. */
static int build_target(ferry_request_builder *b, struct ferry_request *req, size_t n,
                        ferry_request_reject_fn *reject, void *reject_arg)
{
    char err[REQUEST_ERROR_MAX];
    int rc = ferry_template_render(b->url, req->views[0], &req->url, err, sizeof(err));

    if (!rc)
        rc = build_headers(b, req, n, err, sizeof(err));
    if (!rc)
        return 0;
    if (rc == FERRY_TEMPLATE_ETOOBIG)
        snprintf(err, sizeof(err), "the URL or a header is too long");
    else if (rc == HEADER_ENOMEM)
        snprintf(err, sizeof(err), "out of memory for the request's header lines");
    return reject_all(req, err, reject, reject_arg);
}

/* Points the call at what was built; it stays the same for every attempt. */
static void fill_call(ferry_request_builder *b, struct ferry_request *req)
{
    req->call.method = ferry_route_methods[b->cfg->target.method];
    req->call.url = req->url.data;
    req->call.headers = req->headers.list;
    req->call.body = req->body.data;
    req->call.body_len = req->body.len;
}

/* An e-mail target's request: one record's message (batches are refused at config load). */
static int build_mail(ferry_request_builder *b, struct ferry_request *req, size_t *cut,
                      ferry_request_reject_fn *reject, void *reject_arg)
{
    char err[REQUEST_ERROR_MAX];

    *cut = req->n;
    if (ferry_smtp_build(b->smtp, req->views[0], (int64_t)time(NULL) * 1000, &req->mail, &req->body,
                         &req->call, err, sizeof(err)) == 0)
        return 0;
    return reject_all(req, err, reject, reject_arg);
}

/* ---- gRPC ---- */

/* Frames each record's payload into the body: a record that does not encode is rejected with
 * the field path; when the body is full, *cut says how many records fit. Returns 0 when at
 * least one record is in. */
static int build_grpc_body(ferry_request_builder *b, struct ferry_request *req, size_t *cut,
                           ferry_request_reject_fn *reject, void *reject_arg)
{
    char err[REQUEST_ERROR_MAX];
    size_t i = 0;

    *cut = req->n;
    while (i < req->n) {
        const struct ferry_record *v = req->views[i];
        int rc = ferry_grpc_target_add(b->grpc, v->value ? v->value : "", v->value_len, &req->body,
                                       err, sizeof(err));
        if (rc == FERRY_GRPC_TARGET_FULL && i > 0) {
            *cut = i;
            return 0;
        }
        if (rc == 0) {
            i++;
            continue;
        }
        reject(reject_arg, req->recs[i], err);
        request_drop(req, i);
        *cut = req->n;
    }
    return req->n ? 0 : -1;
}

/* The fixed lines of every call, then the metadata rendered from the first record. Returns
 * 0, or a template result or HEADER_ENOMEM (errstr is set for template errors). */
static int build_grpc_headers(ferry_request_builder *b, struct ferry_request *req, char *errstr,
                              size_t errstr_size)
{
    const char *lines[FERRY_GRPC_TARGET_HEADERS];
    size_t n = ferry_grpc_target_headers(b->grpc, lines);
    int result = add_template_headers(b, req, errstr, errstr_size);

    for (size_t i = 0; i < n && !result; i++)
        result = add_line(req, lines[i], strlen(lines[i]));
    if (!result)
        link_headers(&req->headers);
    return result;
}

/* A gRPC target's request: one call, its body a frame per record (client streaming when
 * there are several). */
static int build_grpc(ferry_request_builder *b, struct ferry_request *req, size_t *cut,
                      ferry_request_reject_fn *reject, void *reject_arg)
{
    char err[REQUEST_ERROR_MAX];
    int rc;

    if (build_grpc_body(b, req, cut, reject, reject_arg))
        return -1;
    if (!req->grpc)
        req->grpc = ferry_grpc_call_new(ferry_grpc_target_h2c(b->grpc));
    rc = req->grpc ? build_grpc_headers(b, req, err, sizeof(err)) : HEADER_ENOMEM;
    if (rc) {
        if (rc == FERRY_TEMPLATE_ETOOBIG)
            snprintf(err, sizeof(err), "the metadata is too long");
        else if (rc == HEADER_ENOMEM)
            snprintf(err, sizeof(err), "out of memory for the call's metadata");
        return reject_all(req, err, reject, reject_arg);
    }
    req->call.method = ferry_grpc_protocol.name;
    req->call.url = ferry_grpc_target_url(b->grpc);
    req->call.headers = req->headers.list;
    req->call.body = req->body.data;
    req->call.body_len = req->body.len;
    req->call.protocol = &ferry_grpc_protocol;
    req->call.proto = req->grpc;
    return 0;
}

int ferry_request_build(ferry_request_builder *b, struct ferry_request *req, size_t *cut,
                        ferry_request_reject_fn *reject, void *reject_arg)
{
    if (views_set(b, req))
        return reject_all(req, "out of memory for the original view of a record from a retry topic",
                          reject, reject_arg);
    if (b->smtp)
        return build_mail(b, req, cut, reject, reject_arg);
    if (b->grpc)
        return build_grpc(b, req, cut, reject, reject_arg);
    if (build_body(b, req, cut, reject, reject_arg) ||
        build_target(b, req, *cut, reject, reject_arg))
        return -1;
    fill_call(b, req);
    return 0;
}
