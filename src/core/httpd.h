/*
 * httpd.h - ferry's inbound HTTP server: libmicrohttpd (server.threads threads, each polling
 * its share of the connections) behind a small router.
 *
 * Jobs register handlers for a method and a path (exact, or a prefix). A handler runs on one
 * of the server's threads once the whole body has arrived (bodies are capped per route). It
 * answers at once with ferry_http_respond(), or calls ferry_http_suspend() and answers later
 * from any thread (an ingest request waiting for the broker's acknowledgement): the connection
 * is parked without holding a thread. A handler may also start a streamed answer
 * (ferry_http_stream_start) that any thread writes to until it closes it: Server-Sent Events.
 */
#ifndef FERRY_HTTPD_H
#define FERRY_HTTPD_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_httpd ferry_httpd;
typedef struct ferry_http_req ferry_http_req;

/* Runs on a server thread. Must answer or suspend before returning. */
typedef void (*ferry_http_handler)(ferry_http_req *req, void *arg);

struct ferry_httpd_options {
    const char *listen; /* "host:port" */
    int threads;
    int max_connections;
    int connection_timeout_s;
    size_t connection_memory; /* bytes per connection; 0: FERRY_HTTPD_CONNECTION_MEMORY */
    size_t max_body_memory;   /* request bodies held at once; 0: FERRY_HTTPD_BODY_MEMORY */
};

/* libmicrohttpd's memory per connection unless the options say otherwise (the default of
 * server.connection_memory): the request line and headers must fit in it. */
#define FERRY_HTTPD_CONNECTION_MEMORY (16 * 1024)

/* Bytes of request bodies the server holds at once, over all connections, unless the options
 * say otherwise (the default of server.max_body_memory). A body arriving beyond it is
 * answered 503 with Retry-After, unless no other body is held. */
#define FERRY_HTTPD_BODY_MEMORY ((size_t)256 * 1024 * 1024)

#define FERRY_HTTP_EXACT 0
#define FERRY_HTTP_PREFIX 1
#define FERRY_HTTP_BODY_DEFAULT_MAX (64 * 1024)

/* Or'ed into match: the handler runs for a body larger than max_body too (only its first
 * max_body bytes are kept), so that it can answer and count the 413 itself; it asks
 * ferry_http_req_body_too_large(). */
#define FERRY_HTTP_OWN_413 0x10

/* Largest certificate or key file the server reads. */
#define FERRY_HTTPD_TLS_FILE_MAX (1024 * 1024)

/* Creates a server that is not yet listening. Returns NULL with errstr on failure. */
ferry_httpd *ferry_httpd_new(const struct ferry_httpd_options *opts, char *errstr,
                             size_t errstr_size);

/* Registers a handler for method (e.g. "GET") on path. match is FERRY_HTTP_EXACT or
 * FERRY_HTTP_PREFIX, optionally with FERRY_HTTP_OWN_413; max_body caps the request body (413
 * beyond it). Call before start. */
int ferry_httpd_route(ferry_httpd *h, const char *method, const char *path, int match,
                      size_t max_body, ferry_http_handler fn, void *arg);

/* Makes the server speak HTTPS only, with a certificate chain and an unencrypted private key
 * (PEM files, read at start). Call before start. Returns 0, or -1 when out of memory. */
int ferry_httpd_set_tls(ferry_httpd *h, const char *cert_file, const char *key_file);

/* Binds and starts serving. Returns 0, or -1 with errstr (a TLS file that cannot be read, or
 * a libmicrohttpd without TLS, included). */
int ferry_httpd_start(ferry_httpd *h, char *errstr, size_t errstr_size);

/* The port actually bound (useful with port 0). */
int ferry_httpd_port(const ferry_httpd *h);

/* Stops accepting new connections; open ones are served on. Main thread. */
void ferry_httpd_quiesce(ferry_httpd *h);

/* Stops the server and frees it. Every suspended request must have been answered first;
 * requests still being answered get up to 3 s to reach their clients. Accepts NULL. Main
 * thread. */
void ferry_httpd_destroy(ferry_httpd *h);

/* ---- requests: accessors are valid until the request is answered, except that a request
 * its handler leaves unanswered (ferry_http_suspend) lets go of its method, paths and body
 * when the handler returns: they read "" from then on. Headers and query parameters stay. */
const char *ferry_http_req_method(const ferry_http_req *req);
/* The path as the client sent it, percent-encoding and all (without the query): what routes
 * match, so that an encoded '/' or NUL never reaches another route than the one it names. */
const char *ferry_http_req_raw_path(const ferry_http_req *req);
const char *ferry_http_req_header(const ferry_http_req *req, const char *name);
const char *ferry_http_req_query(const ferry_http_req *req, const char *name);
/* The first query parameter called name, percent-decoded, with its length in *len: unlike
 * ferry_http_req_query, a value holding a NUL (%00) is whole. NULL (and *len 0) when absent or
 * sent without '='. */
const char *ferry_http_req_query_n(const ferry_http_req *req, const char *name, size_t *len);
const char *ferry_http_req_body(const ferry_http_req *req, size_t *len);

/* Percent-decodes in[0..len) into out (room for len bytes), e.g. one segment of the raw path.
 * Returns 0 with *out_len set, or -1 when a '%' is not followed by two hex digits. */
int ferry_http_percent_decode(const char *in, size_t len, char *out, size_t *out_len);

/* Calls fn for every query parameter, repeated names included, in the order sent (value is
 * NULL for a name without '='). */
typedef void (*ferry_http_query_fn)(void *arg, const char *name, const char *value);
void ferry_http_req_query_each(const ferry_http_req *req, ferry_http_query_fn fn, void *arg);

/* The first query parameter whose name is not in known (NULL-terminated), or NULL when every
 * one is known. */
const char *ferry_http_req_unknown_query(const ferry_http_req *req, const char *const *known);

/* Nonzero when the body was larger than the route's max_body (FERRY_HTTP_OWN_413 routes). */
int ferry_http_req_body_too_large(const ferry_http_req *req);

/* What the headers added to one answer (ferry_http_add_header) may take in all: each name and
 * each value with a NUL after it. A header past it is left out and logged, so a caller that
 * adds one of variable length keeps it within this budget. */
#define FERRY_HTTPD_RESPONSE_HEADER_BYTES 1024

/* Adds a response header (copied); at most 16 per response and FERRY_HTTPD_RESPONSE_HEADER_BYTES
 * of names and values. Call before answering. */
void ferry_http_add_header(ferry_http_req *req, const char *name, const char *value);

/* Adds a header whose value is v in decimal. */
void ferry_http_add_header_int(ferry_http_req *req, const char *name, int64_t v);

/* Adds a header whose value is the HTTP date of unix_secs (RFC 9110 5.6.7: "Sun, 06 Nov 1994
 * 08:49:37 GMT"); none for a time before 1970 or after the year 9999, which it cannot name. */
void ferry_http_add_header_date(ferry_http_req *req, const char *name, int64_t unix_secs);

/* Answers with status and body (copied). content_type may be NULL for none. Any thread for a
 * suspended request, the handler's thread otherwise. Exactly once per request. */
void ferry_http_respond(ferry_http_req *req, int status, const char *content_type, const void *body,
                        size_t len);

/* Answers with a JSON body {"error_code": code, "message": "..."}. code is the HTTP status
 * unless a finer one is given (REST Proxy style, e.g. 40401); pass 0 to use the status. */
void ferry_http_respond_error(ferry_http_req *req, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Marks the request as answered later. The handler must return promptly afterwards. */
void ferry_http_suspend(ferry_http_req *req);

/* ---- streamed answers ----
 *
 * A stream is an answer of unknown length (chunked) whose body is written piece by piece from
 * any thread. Each write is queued in the stream; libmicrohttpd's thread takes the queue as the
 * client's socket accepts it. When the queue is empty the connection is suspended, so an idle
 * stream holds no thread and is never closed by server.connection_timeout (libmicrohttpd does
 * not time out suspended connections and restarts the timer on resume); the next write resumes
 * it. While suspended, libmicrohttpd does not see the client go away: a writer learns it on its
 * next write, so writers of idle streams should write something now and then (heartbeats).
 *
 * Lifetime. A stream has two owners: the writer (from ferry_http_stream_start until
 * ferry_http_stream_close) and the request (until libmicrohttpd completes it: answer sent,
 * client gone, or server stopped). It is freed when both are done, so a writer may write to a
 * stream whose client has gone (the write fails with FERRY_HTTP_STREAM_CLOSED) and the server
 * never reads freed memory. The writer must close every stream it started, and before
 * ferry_httpd_destroy: a stream left open keeps its connection suspended, which libmicrohttpd
 * forbids at stop. */
typedef struct ferry_http_stream ferry_http_stream;

/* What a stream tells its writer (or'ed): */
#define FERRY_HTTP_STREAM_DRAINED 1u /* the queue became empty (ferry_http_stream_want_drain) */
#define FERRY_HTTP_STREAM_GONE                                                                     \
    2u /* the request is over: the client went away, or the                                        \
          answer ended; writes fail from now on */

/* Called on a server thread, without any lock of the stream held, at most once per event.
 * It must be quick and must not call any ferry_http_stream_* function (signal another thread
 * instead); it is never called again once ferry_http_stream_close() has returned. */
typedef void (*ferry_http_stream_notify)(void *arg, unsigned what);

struct ferry_http_stream_options {
    size_t max_items; /* items (the writer's unit: events, say) queued at most, at least 1 */
    size_t max_bytes; /* bytes queued at most. A write that passes either limit is refused
                         unless the queue is empty, so one large write always gets through */
    ferry_http_stream_notify notify; /* may be NULL */
    void *arg;
};

/* ferry_http_stream_write results */
#define FERRY_HTTP_STREAM_OK 0
#define FERRY_HTTP_STREAM_FULL 1 /* no room for it under max_items or max_bytes: nothing queued */
#define FERRY_HTTP_STREAM_CLOSED -1 /* the request is over: nothing queued */

/* Answers req with status, content_type and the headers added so far, and a body written
 * later through the returned stream, which the caller owns until ferry_http_stream_close().
 * Returns NULL when out of memory (req is then not answered). @locality the handler's thread,
 * before it returns, instead of ferry_http_respond(). */
ferry_http_stream *ferry_http_stream_start(ferry_http_req *req, int status,
                                           const char *content_type,
                                           const struct ferry_http_stream_options *opts);

/* Queues len bytes (copied; len > 0) holding items items, to be sent in order after what was
 * written before; all of it or nothing. Returns FERRY_HTTP_STREAM_OK, FERRY_HTTP_STREAM_FULL or
 * FERRY_HTTP_STREAM_CLOSED (also when out of memory). @locality any thread */
int ferry_http_stream_write(ferry_http_stream *s, const void *data, size_t len, size_t items);

/* How many items the queue takes now (0 when it is full or the request is over).
 * @locality any thread */
size_t ferry_http_stream_room(ferry_http_stream *s);

/* How many bytes of the queue libmicrohttpd has taken to send so far: it grows while the client
 * reads, however slowly. @locality any thread */
uint64_t ferry_http_stream_taken(ferry_http_stream *s);

/* Asks for one FERRY_HTTP_STREAM_DRAINED notification when the queue next becomes empty.
 * Returns 0 when it will come, 1 when the queue is empty already (none will come), -1 when the
 * request is over. @locality any thread */
int ferry_http_stream_want_drain(ferry_http_stream *s);

/* Ends the stream: last (may be NULL) is queued whatever the limits, the body ends after the
 * queue has been sent, and the caller gives up s (it must not use it again). Once this returns,
 * notify is not running and will not be called. Must not be called from notify, nor while
 * holding a lock that notify takes. @locality any thread */
void ferry_http_stream_close(ferry_http_stream *s, const void *last, size_t len);

#endif
