/*
 * httpd.c - libmicrohttpd server, router and request lifecycle (see httpd.h).
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers,
 * once per piece of body, once more when the body is complete. A request is routed on the first
 * call (so unknown paths and oversized bodies are refused early), its body is collected into a
 * capped buffer, and the handler runs on the last call. A suspended request is resumed by
 * whichever thread answers it; the access handler then queues the stored answer.
 *
 * A streamed answer is a libmicrohttpd response whose content reader takes the stream's queue;
 * the reader suspends the connection when the queue is empty and the next write resumes it.
 */
#include "core/httpd.h"
#include "core/file.h"
#include "core/fmt.h"
#include "core/buf.h"
#include "core/hex.h"
#include "core/json.h"
#include "core/log.h"
#include "core/units.h"

#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#define HTTPD_MAX_ROUTES 64
#define HTTPD_FLUSH_MAX_MS 3000 /* how long destroy lets answered requests reach their clients */
#define HTTPD_FLUSH_STEP_MS 5
#define HTTPD_MAX_RESPONSE_HEADERS 16
#define HTTPD_ERROR_MESSAGE_MAX 1024
#define HTTPD_ALLOW_MAX 64             /* a 405's Allow header: the methods a path is routed for */
#define HTTPD_RAW_PATH_MAX (64 * 1024) /* a longer path (query not counted) is answered 414 */
#define HTTPD_STREAM_BLOCK (16 * 1024) /* libmicrohttpd's buffer for a streamed answer */
/* libmicrohttpd's memory per connection (server.connection_memory) holds the request line and
 * headers (and 64 bytes of bookkeeping per header), then the answer's header block. A parked
 * request touches a page or two of it; libmicrohttpd zeroes all of it before a keep-alive
 * connection's next request, so an answered connection holds all of it, and every request
 * pays for clearing it. What it means for requests and memory: docs/operations.md, "Memory". */
/* Hand freed memory back to the system once this many connections closed and at least half
 * of those open at the peak are gone: each closed one may leave its connection memory in the
 * allocator's free lists, which it would otherwise keep. */
#define HTTPD_TRIM_CLOSED 1024
/* Requests share this many mutexes, picked by address: one each would add 40 B to every parked
 * request. One is held briefly (an answer's stores, libmicrohttpd's suspend), never two. */
#define HTTPD_REQ_LOCKS 64

struct route {
    char *method;
    char *path;
    size_t path_len;
    int match;
    int own_413;
    size_t max_body;
    ferry_http_handler fn;
    void *arg;
};

struct ferry_httpd {
    struct ferry_httpd_options opts;
    struct MHD_Daemon *daemon;
    struct route routes[HTTPD_MAX_ROUTES];
    size_t nroutes;
    int port;
    char *tls_cert_file, *tls_key_file;
    char *tls_cert; /* PEM text, kept while the daemon runs */
    char *tls_key;
    atomic_int live; /* requests begun and not yet completed (answer sent or connection gone) */
    atomic_int open; /* connections */
    atomic_int peak; /* the most connections open since the last trim */
    atomic_size_t body_bytes; /* of request bodies held, at most opts.max_body_memory */
};

enum req_state { REQ_RECEIVING, REQ_RUNNING, REQ_SUSPENDED, REQ_ANSWERED };

/* What a request needs until its handler returns; a request the handler parks lets go of it. */
struct req_call {
    ferry_httpd *h;
    const char *method;
    const char *path;
    const struct route *route;
    struct ferry_buf body;
    size_t charged; /* bytes of the body counted in h->body_bytes */
    int too_large;
    int over_budget;   /* the body would pass server.max_body_memory: answered 503 */
    int path_too_long; /* over HTTPD_RAW_PATH_MAX: answered 414 */
    char raw_path[];   /* as sent, before percent-decoding; "" when it could not be kept */
};

/* What a request needs until it is answered, kept small: a parked request is one of these
 * and nothing more (10,000 long polls hold 10,000). The lock is req_lock(req). */
struct ferry_http_req {
    struct MHD_Connection *conn;
    struct req_call *call;     /* NULL once the handler parked the request */
    ferry_http_stream *stream; /* the streamed answer, if the handler started one */
    struct MHD_Response *answer;
    char *hdrs; /* added headers, each "name\0value\0": FERRY_HTTPD_RESPONSE_HEADER_BYTES, from the
                   first one on */
    int status;
    unsigned short hdrs_len;  /* bytes used in hdrs */
    unsigned char state;      /* enum req_state */
    unsigned char started;    /* routed (start_request ran) */
    unsigned char async;      /* the handler called ferry_http_suspend() */
    unsigned char has_answer; /* status and answer above are set */
    unsigned char nhdrs;      /* headers in hdrs, at most HTTPD_MAX_RESPONSE_HEADERS */
};

static pthread_mutex_t req_locks[HTTPD_REQ_LOCKS];
static pthread_once_t req_locks_once = PTHREAD_ONCE_INIT;

static void req_locks_init(void)
{
    for (size_t i = 0; i < HTTPD_REQ_LOCKS; i++)
        pthread_mutex_init(&req_locks[i], NULL);
}

/* The mutex that guards req's state, answer and stream between the server thread and the
 * thread that answers it. */
static pthread_mutex_t *req_lock(const ferry_http_req *req)
{
    return &req_locks[(uintptr_t)req / sizeof(*req) % HTTPD_REQ_LOCKS];
}

ferry_httpd *ferry_httpd_new(const struct ferry_httpd_options *opts, char *errstr,
                             size_t errstr_size)
{
    ferry_httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    h->opts = *opts;
    if (!h->opts.connection_memory)
        h->opts.connection_memory = FERRY_HTTPD_CONNECTION_MEMORY;
    if (!h->opts.max_body_memory)
        h->opts.max_body_memory = FERRY_HTTPD_BODY_MEMORY;
    pthread_once(&req_locks_once, req_locks_init);
    return h;
}

int ferry_httpd_route(ferry_httpd *h, const char *method, const char *path, int match,
                      size_t max_body, ferry_http_handler fn, void *arg)
{
    struct route *r;
    if (h->nroutes == HTTPD_MAX_ROUTES)
        return -1;
    r = &h->routes[h->nroutes];
    r->method = strdup(method);
    r->path = strdup(path);
    if (!r->method || !r->path) {
        free(r->method);
        free(r->path);
        return -1;
    }
    r->path_len = strlen(path);
    r->match = match & ~FERRY_HTTP_OWN_413;
    r->own_413 = (match & FERRY_HTTP_OWN_413) != 0;
    r->max_body = max_body;
    r->fn = fn;
    r->arg = arg;
    h->nroutes++;
    return 0;
}

static int path_matches(const struct route *r, const char *path)
{
    if (r->match == FERRY_HTTP_EXACT)
        return strcmp(r->path, path) == 0;
    return strncmp(r->path, path, r->path_len) == 0;
}

/* Finds the route for method and path. Sets *wrong_method when the path is known but not with
 * this method. Exact routes win over prefixes; longer prefixes over shorter. HEAD takes the GET
 * route: libmicrohttpd sends the GET answer's status and headers without its body (RFC 9110
 * 9.3.2). */
static const struct route *find_route(const ferry_httpd *h, const char *method, const char *path,
                                      int *wrong_method)
{
    const struct route *best = NULL;
    *wrong_method = 0;
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        if (!path_matches(r, path))
            continue;
        if (strcmp(r->method, method) != 0) {
            *wrong_method = 1;
            continue;
        }
        if (!best || r->match < best->match ||
            (r->match == best->match && r->path_len > best->path_len))
            best = r;
    }
    return best;
}

/* Nonzero when one of the first n routes of h that match path has method. */
static int method_seen(const ferry_httpd *h, size_t n, const char *path, const char *method)
{
    for (size_t i = 0; i < n; i++)
        if (path_matches(&h->routes[i], path) && strcmp(h->routes[i].method, method) == 0)
            return 1;
    return 0;
}

/* Writes the methods routed for path into out ("GET, HEAD, POST"), each once, for a 405's
 * Allow header (RFC 9110 15.5.6); HEAD follows GET. A method that does not fit is left out. */
static void allowed_methods(const ferry_httpd *h, const char *path, char *out, size_t size)
{
    size_t len = 0;

    out[0] = '\0';
    for (size_t i = 0; i < h->nroutes; i++) {
        const char *method = h->routes[i].method;
        const char *also = strcmp(method, "GET") == 0 ? ", HEAD" : "";

        if (!path_matches(&h->routes[i], path) || method_seen(h, i, path, method) ||
            len + strlen(method) + strlen(also) + 2 >= size)
            continue;
        len += (size_t)snprintf(out + len, size - len, "%s%s%s", len ? ", " : "", method, also);
    }
}

/* ---- answers ---- */

static void add_headers(const ferry_http_req *req, struct MHD_Response *answer,
                        const char *content_type)
{
    const char *name = req->hdrs, *value;

    if (content_type)
        MHD_add_response_header(answer, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (int i = 0; i < req->nhdrs; i++) {
        value = name + strlen(name) + 1;
        MHD_add_response_header(answer, name, value);
        name = value + strlen(value) + 1;
    }
}

static void set_answer(ferry_http_req *req, int status, const char *content_type, const void *body,
                       size_t len)
{
    req->answer = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    req->status = status;
    if (req->answer)
        add_headers(req, req->answer, content_type);
}

int ferry_http_percent_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t o = 0;
    int high, low;

    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        high = i + 2 < len ? ferry_hex_value((unsigned char)in[i + 1]) : -1;
        low = i + 2 < len ? ferry_hex_value((unsigned char)in[i + 2]) : -1;
        if (high < 0 || low < 0)
            return -1;
        out[o++] = (char)(high << 4 | low);
        i += 2;
    }
    *out_len = o;
    return 0;
}

void ferry_http_add_header(ferry_http_req *req, const char *name, const char *value)
{
    size_t name_size = strlen(name) + 1, value_size = strlen(value) + 1;

    if (!req->hdrs)
        req->hdrs = malloc(FERRY_HTTPD_RESPONSE_HEADER_BYTES);
    /* Headers come from ferry's own code, a few short ones per answer: running out is a bug. */
    if (!req->hdrs || req->nhdrs == HTTPD_MAX_RESPONSE_HEADERS ||
        name_size + value_size > (size_t)(FERRY_HTTPD_RESPONSE_HEADER_BYTES - req->hdrs_len)) {
        FLOG_ERROR_REPEATED("http", NULL,
                            "response header %s left out: more than %d headers or %d bytes", name,
                            HTTPD_MAX_RESPONSE_HEADERS, FERRY_HTTPD_RESPONSE_HEADER_BYTES);
        return;
    }
    memcpy(req->hdrs + req->hdrs_len, name, name_size);
    memcpy(req->hdrs + req->hdrs_len + name_size, value, value_size);
    req->hdrs_len = (unsigned short)(req->hdrs_len + name_size + value_size);
    req->nhdrs++;
}

void ferry_http_add_header_int(ferry_http_req *req, const char *name, int64_t v)
{
    char text[FERRY_FMT_INT64_SIZE];

    ferry_fmt_int64(text, v);
    ferry_http_add_header(req, name, text);
}

void ferry_http_add_header_date(ferry_http_req *req, const char *name, int64_t unix_secs)
{
    char text[FERRY_FMT_HTTP_DATE_SIZE];

    if (ferry_fmt_http_date(text, unix_secs))
        ferry_http_add_header(req, name, text);
}

void ferry_http_respond(ferry_http_req *req, int status, const char *content_type, const void *body,
                        size_t len)
{
    pthread_mutex_t *lock = req_lock(req);
    int resume;

    pthread_mutex_lock(lock);
    set_answer(req, status, content_type, body, len);
    req->has_answer = 1;
    resume = req->state == REQ_SUSPENDED;
    pthread_mutex_unlock(lock);
    /* Once resumed, the server thread may finish and free req: touch nothing after this. */
    if (resume)
        MHD_resume_connection(req->conn);
}

void ferry_http_respond_error(ferry_http_req *req, int status, int code, const char *fmt, ...)
{
    char msg[HTTPD_ERROR_MESSAGE_MAX];
    struct ferry_buf body;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ferry_buf_init(&body, 6 * HTTPD_ERROR_MESSAGE_MAX + 64); /* each byte escaped: \u00XX */
    ferry_buf_addf(&body, "{\"error_code\":%d,\"message\":", code ? code : status);
    ferry_json_add_string(&body, msg, strlen(msg));
    ferry_buf_adds(&body, "}\n");
    ferry_http_respond(req, status, "application/json", body.data, body.len);
    ferry_buf_release(&body);
}

void ferry_http_suspend(ferry_http_req *req)
{
    req->async = 1;
}

/* ---- accessors ---- */

const char *ferry_http_req_method(const ferry_http_req *req)
{
    return req->call ? req->call->method : "";
}

const char *ferry_http_req_raw_path(const ferry_http_req *req)
{
    return req->call && req->call->path ? req->call->path : "";
}

const char *ferry_http_req_header(const ferry_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ferry_http_req_query(const ferry_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ferry_http_req_query_n(const ferry_http_req *req, const char *name, size_t *len)
{
    const char *value = NULL;

    *len = 0;
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &value,
                                      len) != MHD_YES ||
        !value) {
        *len = 0;
        return NULL;
    }
    return value;
}

struct query_scan {
    const char *const *known;
    const char *unknown;
};

static enum MHD_Result find_unknown(void *arg, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct query_scan *q = arg;

    (void)kind;
    (void)value;
    for (size_t i = 0; q->known[i]; i++)
        if (strcmp(q->known[i], key) == 0)
            return MHD_YES;
    q->unknown = key;
    return MHD_NO;
}

const char *ferry_http_req_unknown_query(const ferry_http_req *req, const char *const *known)
{
    struct query_scan q = {known, NULL};

    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, find_unknown, &q);
    return q.unknown;
}

struct query_each {
    ferry_http_query_fn fn;
    void *arg;
};

static enum MHD_Result call_each(void *arg, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct query_each *q = arg;

    (void)kind;
    q->fn(q->arg, key, value);
    return MHD_YES;
}

void ferry_http_req_query_each(const ferry_http_req *req, ferry_http_query_fn fn, void *arg)
{
    struct query_each q = {fn, arg};

    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, call_each, &q);
}

const char *ferry_http_req_body(const ferry_http_req *req, size_t *len)
{
    const struct req_call *call = req->call;

    *len = call ? call->body.len : 0;
    return call && call->body.data ? call->body.data : "";
}

int ferry_http_req_body_too_large(const ferry_http_req *req)
{
    return req->call && req->call->too_large;
}

/* ---- streamed answers ---- */

/* One write, waiting in a stream's queue. */
struct stream_piece {
    STAILQ_ENTRY(stream_piece) link;
    size_t len, items;
    char data[];
};

STAILQ_HEAD(piece_queue, stream_piece);

struct ferry_http_stream {
    pthread_mutex_t lock; /* everything below but notify and arg */
    struct MHD_Connection *conn;
    struct piece_queue queue;
    size_t queued, queued_bytes; /* items and bytes in the queue */
    size_t head_sent;            /* bytes of the first piece already given to libmicrohttpd */
    uint64_t taken;              /* bytes given to libmicrohttpd in all */
    size_t max_items, max_bytes;
    int suspended;  /* the reader suspended the connection: the next write resumes it */
    int closed;     /* the writer closed: the body ends after the queue */
    int over;       /* the request is over: nothing more is sent */
    int want_drain; /* notify FERRY_HTTP_STREAM_DRAINED when the queue empties */
    int owners;     /* the writer and the request: freed at 0 */
    pthread_mutex_t notify_lock; /* held while notify runs, so that close can wait it out */
    ferry_http_stream_notify notify;
    void *arg;
};

static void stream_free(ferry_http_stream *s)
{
    while (!STAILQ_EMPTY(&s->queue)) {
        struct stream_piece *p = STAILQ_FIRST(&s->queue);
        STAILQ_REMOVE_HEAD(&s->queue, link);
        free(p);
    }
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->notify_lock);
    free(s);
}

/* Drops one owner's hold, freeing s after the last. Under s->lock, which it releases. */
static void stream_unhold(ferry_http_stream *s)
{
    int last = --s->owners == 0;

    pthread_mutex_unlock(&s->lock);
    if (last)
        stream_free(s);
}

static void stream_notify(ferry_http_stream *s, unsigned what)
{
    pthread_mutex_lock(&s->notify_lock);
    if (s->notify)
        s->notify(s->arg, what);
    pthread_mutex_unlock(&s->notify_lock);
}

static void stream_append(ferry_http_stream *s, struct stream_piece *p)
{
    STAILQ_INSERT_TAIL(&s->queue, p, link);
    s->queued += p->items;
    s->queued_bytes += p->len;
}

/* Copies queued bytes into buf (at most max). Under s->lock. */
static size_t stream_take(ferry_http_stream *s, char *buf, size_t max)
{
    size_t n = 0;

    while (n < max && !STAILQ_EMPTY(&s->queue)) {
        struct stream_piece *p = STAILQ_FIRST(&s->queue);
        size_t k = p->len - s->head_sent;
        if (k > max - n)
            k = max - n;
        memcpy(buf + n, p->data + s->head_sent, k);
        n += k;
        s->head_sent += k;
        s->taken += k;
        if (s->head_sent < p->len)
            break;
        STAILQ_REMOVE_HEAD(&s->queue, link);
        s->queued -= p->items;
        s->queued_bytes -= p->len;
        s->head_sent = 0;
        free(p);
    }
    return n;
}

/* libmicrohttpd's content reader, on the connection's server thread: the queue, the end of the
 * body once the writer closed, or nothing for now (the connection is suspended until the next
 * write). */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    ferry_http_stream *s = cls;
    ssize_t result;
    int drained = 0;
    size_t n;

    (void)pos;
    pthread_mutex_lock(&s->lock);
    n = stream_take(s, buf, max);
    result = (ssize_t)n;
    if (n && !s->queued && s->want_drain) {
        s->want_drain = 0;
        drained = 1;
    }
    if (!n && s->closed) {
        result = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (!n) {
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
    if (drained)
        stream_notify(s, FERRY_HTTP_STREAM_DRAINED);
    return result;
}

/* The request is over (on_completed): the stream sends nothing more and tells its writer. */
static void stream_request_over(ferry_http_stream *s)
{
    pthread_mutex_lock(&s->lock);
    s->over = 1;
    s->conn = NULL;
    pthread_mutex_unlock(&s->lock);
    stream_notify(s, FERRY_HTTP_STREAM_GONE); /* before letting go: the writer may free s */
    pthread_mutex_lock(&s->lock);
    stream_unhold(s);
}

ferry_http_stream *ferry_http_stream_start(ferry_http_req *req, int status,
                                           const char *content_type,
                                           const struct ferry_http_stream_options *opts)
{
    ferry_http_stream *s = calloc(1, sizeof(*s));
    struct MHD_Response *answer = NULL;

    if (s)
        answer = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTPD_STREAM_BLOCK,
                                                   stream_read, s, NULL);
    if (!answer) {
        free(s);
        return NULL;
    }
    add_headers(req, answer, content_type);
    /* libmicrohttpd 0.9.75 ends a streamed answer to HEAD with the last chunk, a body the
     * client does not expect: closing the connection keeps it from reading the next answer
     * wrong. */
    if (strcmp(ferry_http_req_method(req), "HEAD") == 0)
        MHD_add_response_header(answer, MHD_HTTP_HEADER_CONNECTION, "close");
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->notify_lock, NULL);
    STAILQ_INIT(&s->queue);
    s->conn = req->conn;
    s->max_items = opts->max_items ? opts->max_items : 1;
    s->max_bytes = opts->max_bytes;
    s->notify = opts->notify;
    s->arg = opts->arg;
    s->owners = 2;
    pthread_mutex_lock(req_lock(req));
    req->answer = answer;
    req->status = status;
    req->has_answer = 1;
    req->stream = s;
    pthread_mutex_unlock(req_lock(req));
    return s;
}

static int stream_full(const ferry_http_stream *s, size_t len, size_t items)
{
    return !STAILQ_EMPTY(&s->queue) &&
           (s->queued + items > s->max_items || s->queued_bytes + len > s->max_bytes);
}

/* Takes a suspended connection to resume, if any. Under s->lock. */
static struct MHD_Connection *stream_wake(ferry_http_stream *s)
{
    if (!s->suspended)
        return NULL;
    s->suspended = 0;
    return s->conn;
}

int ferry_http_stream_write(ferry_http_stream *s, const void *data, size_t len, size_t items)
{
    struct stream_piece *p = malloc(sizeof(*p) + len);
    struct MHD_Connection *resume = NULL;
    int result = FERRY_HTTP_STREAM_OK;

    pthread_mutex_lock(&s->lock);
    if (!p || s->over || s->closed)
        result = FERRY_HTTP_STREAM_CLOSED;
    else if (stream_full(s, len, items))
        result = FERRY_HTTP_STREAM_FULL;
    if (result == FERRY_HTTP_STREAM_OK) {
        p->len = len;
        p->items = items;
        memcpy(p->data, data, len);
        stream_append(s, p);
        p = NULL;
        resume = stream_wake(s);
    }
    pthread_mutex_unlock(&s->lock);
    free(p);
    /* A suspended connection cannot complete, so it (and s) outlive this call. */
    if (resume)
        MHD_resume_connection(resume);
    return result;
}

size_t ferry_http_stream_room(ferry_http_stream *s)
{
    size_t room;

    pthread_mutex_lock(&s->lock);
    room = s->over || s->closed || s->queued >= s->max_items ? 0 : s->max_items - s->queued;
    pthread_mutex_unlock(&s->lock);
    return room;
}

uint64_t ferry_http_stream_taken(ferry_http_stream *s)
{
    uint64_t taken;

    pthread_mutex_lock(&s->lock);
    taken = s->taken;
    pthread_mutex_unlock(&s->lock);
    return taken;
}

int ferry_http_stream_want_drain(ferry_http_stream *s)
{
    int result;

    pthread_mutex_lock(&s->lock);
    result = s->over ? -1 : !s->queued;
    s->want_drain = result == 0;
    pthread_mutex_unlock(&s->lock);
    return result;
}

void ferry_http_stream_close(ferry_http_stream *s, const void *last, size_t len)
{
    struct stream_piece *p = last && len ? malloc(sizeof(*p) + len) : NULL;
    struct MHD_Connection *resume;

    pthread_mutex_lock(&s->notify_lock);
    s->notify = NULL;
    pthread_mutex_unlock(&s->notify_lock);
    pthread_mutex_lock(&s->lock);
    if (p && !s->over) {
        p->len = len;
        p->items = 1;
        memcpy(p->data, last, len);
        stream_append(s, p);
        p = NULL;
    }
    s->closed = 1;
    resume = stream_wake(s);
    free(p);
    /* The request holds s while its connection is suspended: s survives the unhold. */
    stream_unhold(s);
    if (resume)
        MHD_resume_connection(resume);
}

/* ---- the bodies' memory (server.max_body_memory) ---- */

/* Counts n more bytes of call's body against the server's budget. Returns 0, or -1 (nothing
 * counted) when they would pass it while another request's body is held too: a request alone
 * is always let in, so a body its route allows can always arrive. */
static int body_charge(struct req_call *call, size_t n)
{
    ferry_httpd *h = call->h;
    size_t held = atomic_fetch_add(&h->body_bytes, n) + n;

    if (held > h->opts.max_body_memory && held - call->charged - n > 0) {
        atomic_fetch_sub(&h->body_bytes, n);
        return -1;
    }
    call->charged += n;
    return 0;
}

/* Nonzero unless a body of n bytes would pass the budget while other bodies are held. */
static int body_may_fit(ferry_httpd *h, unsigned long long n)
{
    size_t held = atomic_load(&h->body_bytes);

    if (held == 0)
        return 1;
    return held < h->opts.max_body_memory && n <= h->opts.max_body_memory - held;
}

/* Gives back what call's body counted; the body itself goes with it. */
static void body_discharge(struct req_call *call)
{
    atomic_fetch_sub(&call->h->body_bytes, call->charged);
    call->charged = 0;
    ferry_buf_release(&call->body);
}

/* Takes the next part of the body, or drops it once the body is refused. */
static void body_receive(struct req_call *call, const char *data, size_t n)
{
    if (call->too_large || call->over_budget)
        return;
    if (body_charge(call, n)) {
        call->over_budget = 1;
        body_discharge(call);
        return;
    }
    if (ferry_buf_add(&call->body, data, n))
        call->too_large = 1;
}

/* ---- the request lifecycle ---- */

static void call_free(struct req_call *call)
{
    if (!call)
        return;
    body_discharge(call);
    free(call);
}

static void req_free(ferry_http_req *req)
{
    if (req->stream)
        stream_request_over(req->stream);
    if (req->answer)
        MHD_destroy_response(req->answer);
    call_free(req->call);
    free(req->hdrs);
    free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ferry_httpd *h = cls;
    (void)conn;
    (void)toe;
    if (*con_cls) {
        req_free(*con_cls);
        atomic_fetch_sub(&h->live, 1);
    }
    *con_cls = NULL;
}

static enum MHD_Result queue_answer(ferry_http_req *req)
{
    enum MHD_Result r;
    if (!req->answer)
        return MHD_NO; /* out of memory: drop the connection */
    r = MHD_queue_response(req->conn, (unsigned)req->status, req->answer);
    req->state = REQ_ANSWERED;
    return r;
}

/* The answer to a request whose body would pass server.max_body_memory. */
static void answer_over_budget(ferry_http_req *req)
{
    ferry_httpd *h = req->call->h;

    FLOG_WARN_REPEATED("http", NULL,
                       "answered 503 to %s %s: request bodies already hold "
                       "server.max_body_memory (%zu bytes)",
                       req->call->method, req->call->path, h->opts.max_body_memory);
    ferry_http_add_header(req, "Retry-After", "1");
    ferry_http_respond_error(req, 503, 0,
                             "the server holds as many request bodies as "
                             "server.max_body_memory allows (%zu bytes): try again",
                             h->opts.max_body_memory);
}

/* Runs the handler and either queues its answer or parks the connection. */
static enum MHD_Result run_handler(ferry_http_req *req)
{
    struct req_call *call = req->call;
    pthread_mutex_t *lock = req_lock(req);

    req->state = REQ_RUNNING;
    if (call->over_budget)
        answer_over_budget(req);
    else if (call->too_large && !call->route->own_413)
        ferry_http_respond_error(req, 413, 0, "request body is larger than %zu bytes",
                                 call->route->max_body);
    else
        call->route->fn(req, call->route->arg);

    pthread_mutex_lock(lock);
    if (!req->has_answer && !req->async) {
        pthread_mutex_unlock(lock);
        ferry_http_respond_error(req, 500, 0, "the handler gave no answer");
        pthread_mutex_lock(lock);
    }
    if (req->has_answer) {
        pthread_mutex_unlock(lock);
        return queue_answer(req);
    }
    req->state = REQ_SUSPENDED;
    req->call = NULL; /* parked: only the answer is still to come */
    MHD_suspend_connection(req->conn);
    pthread_mutex_unlock(lock);
    /* Resuming req is this thread's work, so req outlives this function. */
    call_free(call);
    return MHD_YES;
}

/* The body's length as its Content-Length declares it: 1 with *n set, or 0 when no length is
 * declared (chunked) or it cannot be read here (libmicrohttpd refuses a malformed one). A
 * length past what an unsigned long long holds reads as ULLONG_MAX. */
static int declared_length(struct MHD_Connection *conn, unsigned long long *n)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    char *end;

    if (!v || *v < '0' || *v > '9')
        return 0;
    errno = 0;
    *n = strtoull(v, &end, 10);
    return errno == ERANGE || *end == '\0';
}

/* A request with its handler-time part, keeping uri's path as sent (NULL or too long: not
 * kept). Routes never see a path decoded by libmicrohttpd: it would be decoded twice, and
 * %00 would cut it short. */
static ferry_http_req *req_new(ferry_httpd *h, struct MHD_Connection *conn, const char *uri)
{
    size_t path_len = uri ? strcspn(uri, "?") : 0;
    size_t raw_len = path_len <= HTTPD_RAW_PATH_MAX ? path_len : 0;
    ferry_http_req *req = calloc(1, sizeof(*req));
    struct req_call *call = calloc(1, sizeof(*call) + raw_len + 1);

    if (!req || !call) {
        free(req);
        free(call);
        return NULL;
    }
    if (raw_len)
        memcpy(call->raw_path, uri, raw_len);
    call->path_too_long = path_len > HTTPD_RAW_PATH_MAX;
    call->h = h;
    req->conn = conn;
    req->call = call;
    atomic_fetch_add(&h->live, 1);
    return req;
}

/* libmicrohttpd shows the request's URI here before it decodes it: the request's struct is
 * born here so that it keeps the path as sent (ferry_http_req_raw_path). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    return req_new(cls, conn, uri);
}

/* The first call for a request: route it, or answer 404/405 at once. */
static enum MHD_Result start_request(ferry_httpd *h, struct MHD_Connection *conn,
                                     const char *method, const char *url, void **con_cls)
{
    char allow[HTTPD_ALLOW_MAX];
    int wrong_method;
    unsigned long long declared = 0;
    ferry_http_req *req = *con_cls ? *con_cls : req_new(h, conn, NULL);
    struct req_call *call = req ? req->call : NULL;

    if (!req)
        return MHD_NO;
    *con_cls = req;
    req->started = 1;
    call->method = method;
    call->path = call->raw_path[0] ? call->raw_path : url; /* as sent: see docs/security.md */
    if (call->path_too_long) {
        call->path = "";
        ferry_http_respond_error(req, 414, 0, "the path is longer than %d bytes",
                                 HTTPD_RAW_PATH_MAX);
        return queue_answer(req);
    }
    call->route = find_route(h, method, call->path, &wrong_method);
    if (call->route) {
        int known = declared_length(conn, &declared);
        if (!known || (declared <= call->route->max_body && body_may_fit(h, declared))) {
            /* A declared length caps the buffer's growth too, so that doubling does not take
             * up to twice the body; memory still grows only as bytes arrive. */
            ferry_buf_init(&call->body, declared ? declared : call->route->max_body);
            return MHD_YES;
        }
        /* Answered (413 or 503) before the body is read, the one time libmicrohttpd lets an
         * answer go early; it then closes the connection. */
        if (declared > call->route->max_body)
            call->too_large = 1;
        else
            call->over_budget = 1;
        return run_handler(req);
    }
    if (wrong_method) {
        allowed_methods(h, call->path, allow, sizeof(allow));
        ferry_http_add_header(req, "Allow", allow);
        ferry_http_respond_error(req, 405, 0, "method %s is not allowed on %s", method, call->path);
    } else
        ferry_http_respond_error(req, 404, 0, "no such path: %s", call->path);
    return queue_answer(req);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    ferry_http_req *req = *con_cls;
    (void)version;

    if (!req || !req->started)
        return start_request(cls, conn, method, url, con_cls);
    if (req->state == REQ_ANSWERED) {
        *upload_data_size = 0; /* answered early (404, 405): discard the rest of the body */
        return MHD_YES;
    }
    if (req->state == REQ_SUSPENDED) {
        /* Resumed: the answer is set. */
        return queue_answer(req);
    }
    if (*upload_data_size) {
        body_receive(req->call, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return run_handler(req);
}

/* Called after a connection closed, on its server thread: after a wave of closed connections
 * (10,000 long polls answered and gone), gives their memory back to the system. One thread
 * trims at a time; it takes a few milliseconds per 100 MB. */
static void trim_after_close(ferry_httpd *h, int open)
{
    int peak = atomic_load(&h->peak);

    if (peak - open < HTTPD_TRIM_CLOSED || open > peak / 2)
        return;
    if (!atomic_compare_exchange_strong(&h->peak, &peak, open))
        return;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* libmicrohttpd's connection opened and closed notices, on server threads. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    ferry_httpd *h = cls;
    int open, peak;

    (void)conn;
    (void)socket_context;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        trim_after_close(h, atomic_fetch_sub(&h->open, 1) - 1);
        return;
    }
    open = atomic_fetch_add(&h->open, 1) + 1;
    peak = atomic_load(&h->peak);
    while (open > peak && !atomic_compare_exchange_weak(&h->peak, &peak, open))
        ;
}

/* MHD's own messages come with its format; it is a format by contract, not by text. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    FLOG_DEBUG("http", NULL, "%s", msg);
}

/* Resolves host:port into addr. Returns 0, or -1 with errstr. */
static int resolve_listen(const char *listen, struct sockaddr_storage *addr, char *errstr,
                          size_t errstr_size)
{
    char host[256], port_text[16];
    struct addrinfo hints = {0}, *res = NULL;
    int port, rc;

    if (ferry_hostport_parse(listen, host, sizeof(host), &port)) {
        snprintf(errstr, errstr_size, "server.listen: bad address '%s'", listen);
        return -1;
    }
    snprintf(port_text, sizeof(port_text), "%d", port);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, port_text, &hints, &res);
    if (rc) {
        snprintf(errstr, errstr_size, "server.listen: cannot resolve '%s': %s", host,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Reads a whole PEM file (at most FERRY_HTTPD_TLS_FILE_MAX bytes) as text. Returns NULL with
 * errstr on failure. */
static char *read_pem(const char *path, char *errstr, size_t errstr_size)
{
    struct ferry_buf b;
    char chunk[4096];
    size_t n;
    FILE *f = ferry_file_open_regular(path, errstr, errstr_size);

    if (!f)
        return NULL;
    ferry_buf_init(&b, FERRY_HTTPD_TLS_FILE_MAX);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (ferry_buf_add(&b, chunk, n))
            break;
    fclose(f);
    if (b.failed || !b.data) {
        snprintf(errstr, errstr_size, "'%s' is empty or larger than %d bytes", path,
                 FERRY_HTTPD_TLS_FILE_MAX);
        ferry_buf_release(&b);
        return NULL;
    }
    return ferry_buf_steal(&b);
}

/* Fills ops with the TLS options (or none) and adds MHD_USE_TLS to *flags. Returns 0, or -1
 * with errstr. */
static int tls_options(ferry_httpd *h, struct MHD_OptionItem ops[3], unsigned *flags, char *errstr,
                       size_t errstr_size)
{
    ops[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!h->tls_cert_file)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(errstr, errstr_size, "this libmicrohttpd was built without TLS");
        return -1;
    }
    h->tls_cert = read_pem(h->tls_cert_file, errstr, errstr_size);
    h->tls_key = h->tls_cert ? read_pem(h->tls_key_file, errstr, errstr_size) : NULL;
    if (!h->tls_key)
        return -1;
    ops[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert};
    ops[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key};
    ops[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    *flags |= MHD_USE_TLS;
    return 0;
}

int ferry_httpd_set_tls(ferry_httpd *h, const char *cert_file, const char *key_file)
{
    free(h->tls_cert_file);
    free(h->tls_key_file);
    h->tls_cert_file = strdup(cert_file);
    h->tls_key_file = strdup(key_file);
    return h->tls_cert_file && h->tls_key_file ? 0 : -1;
}

int ferry_httpd_start(ferry_httpd *h, char *errstr, size_t errstr_size)
{
    struct sockaddr_storage addr = {0};
    struct MHD_OptionItem tls[3];
    /* Every server thread uses poll(), not epoll. libmicrohttpd 0.9.75 takes a parked
     * connection out of its epoll set and puts it back on resume, two epoll_ctl calls per
     * acknowledged ingest request (12% of ferry's CPU in that row); a parked connection is
     * simply left out of poll()'s list. Acknowledged one-record ingest went from 49-64k to
     * 65-80k requests/s at 256 connections, /healthz stayed within noise up to 4,000 busy
     * connections (8% lower at 1,000), and epoll's single-thread mode stalls at 256 connections
     * anyway (bench/README.md, "Ingest"). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    const union MHD_DaemonInfo *info;

    if (resolve_listen(h->opts.listen, &addr, errstr, errstr_size) ||
        tls_options(h, tls, &flags, errstr, errstr_size))
        return -1;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger comes first: libmicrohttpd writes what it says before it to stderr itself,
     * outside ferry's log format. */
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        h->opts.threads > 1 ? (unsigned)h->opts.threads : 0u, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)h->opts.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)h->opts.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        h->opts.connection_memory, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(errstr, errstr_size,
                 "server.listen: cannot listen on %s (address in use or not allowed%s?)",
                 h->opts.listen, flags & MHD_USE_TLS ? ", or a bad certificate or key" : "");
        return -1;
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? (int)info->port : 0;
    return 0;
}

int ferry_httpd_port(const ferry_httpd *h)
{
    return h->port;
}

void ferry_httpd_quiesce(ferry_httpd *h)
{
    MHD_socket fd;
    if (!h->daemon)
        return;
    fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

/* Waits, boundedly, until no request is in progress: an answer given from another thread just
 * before shutdown is still being written by a server thread, and stopping the daemon would
 * close its connection unanswered. */
static void wait_requests_done(ferry_httpd *h)
{
    struct timespec step = {0, HTTPD_FLUSH_STEP_MS * 1000000L};
    for (int waited = 0; atomic_load(&h->live) > 0 && waited < HTTPD_FLUSH_MAX_MS;
         waited += HTTPD_FLUSH_STEP_MS)
        nanosleep(&step, NULL);
}

void ferry_httpd_destroy(ferry_httpd *h)
{
    if (!h)
        return;
    if (h->daemon) {
        wait_requests_done(h);
        MHD_stop_daemon(h->daemon);
    }
    for (size_t i = 0; i < h->nroutes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].path);
    }
    free(h->tls_cert_file);
    free(h->tls_key_file);
    free(h->tls_cert);
    if (h->tls_key)
        memset(h->tls_key, 0, strlen(h->tls_key));
    free(h->tls_key);
    free(h);
}
