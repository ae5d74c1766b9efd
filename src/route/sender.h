/*
 * sender.h - the outbound HTTP engine of a route worker: libcurl multi handles.
 *
 * A route worker thread owns one sender. It starts calls (each a request the caller describes
 * in a struct ferry_http_call it keeps alive), waits for finished calls together with its
 * Kafka queue's fd, then collects them through a callback. libcurl runs either on that thread,
 * inside ferry_sender_wait() and ferry_sender_collect(), or, with the io_threads option, on
 * I/O threads the sender starts and stops, each with a multi handle of its own, so that the
 * route's own work and the requests on the wire use more than one core. Easy handles are pooled and
 * reused, and connections stay open in the multi handle's pool (HTTP/1.1 keep-alive, or HTTP/2 over
 * TLS), so a steady stream of small requests allocates next to nothing and never reconnects. Every
 * function belongs to the worker thread that uses the sender, except ferry_sender_wakeup(), which
 * any thread may call.
 *
 * libcurl needs process-wide set-up: main() calls ferry_sender_global_init() before it starts
 * any thread and ferry_sender_global_cleanup() after the last sender is destroyed.
 */
#ifndef FERRY_SENDER_H
#define FERRY_SENDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "core/buf.h"

typedef struct ferry_sender ferry_sender;

/* The most bytes of response headers a call keeps (struct ferry_http_call's kept). */
#define FERRY_SENDER_KEPT_MAX 8192

/* The most I/O threads one sender runs. */
#define FERRY_SENDER_IO_THREADS_MAX 64

struct ferry_sender_options {
    long timeout_ms;         /* the whole request; 0 = none */
    long connect_timeout_ms; /* 0 = libcurl's default (300 s) */
    const char *ca_file;     /* may be NULL: the system's CA store */
    const char *cert_file;   /* client certificate, may be NULL */
    const char *key_file;    /* its key, may be NULL */
    int verify;              /* nonzero: verify the TLS peer and host name (config default on) */
    size_t response_max;     /* bytes of a response body kept; the rest is read and dropped */
    int max_connections;     /* open connections per host, at least 1 (each I/O thread may
                                open its share, rounded up) */
    int io_threads;          /* 0: libcurl runs on the worker; else on this many threads */
};

struct ferry_http_call;

/* A protocol other than plain HTTP that a call speaks (e-mail: smtp.h; gRPC over HTTP/2:
 * grpc_call.h). Its hooks run on the thread that drives the call's transfer. A sender's calls
 * are all HTTP or all one such protocol: start may replace any option the sender set (the
 * header callback included), and nothing undoes that for a later plain HTTP call. */
struct ferry_sender_protocol {
    const char *name; /* the call's method in messages, e.g. "SMTP" */
    /* Sets every option the call needs on easy. Returns a CURLcode. */
    CURLcode (*start)(CURL *easy, struct ferry_http_call *call);
    /* Fills the call's result (transport_error, error, status, response) from the finished
     * transfer: code is its CURLcode, errbuf libcurl's message. */
    void (*finish)(CURL *easy, CURLcode code, const char *errbuf, struct ferry_http_call *call);
};

/*
 * One request and, once done, its result. The caller owns it and keeps it, the strings, the
 * header list and the body alive from ferry_sender_start() until its done callback has run (or
 * the sender is destroyed). A call may be started again from its own done callback.
 *
 * response must be zeroed (or ferry_buf_init'ed) before the first start; each start empties it
 * but keeps its memory, so a call reused for many requests allocates nothing. The caller frees
 * it with ferry_buf_release() when it discards the call.
 */
struct ferry_http_call {
    /* the request, set by the caller */
    const char *method;         /* "POST", "PUT", "PATCH", "DELETE" or "GET" */
    const char *url;            /* http:// or https:// only */
    struct curl_slist *headers; /* may be NULL; "Expect: 100-continue" is never sent */
    const char *body;           /* not copied; may be NULL when body_len is 0 */
    size_t body_len;            /* GET sends no body, DELETE only a non-empty one */
    void *cookie;               /* the caller's */
    const struct ferry_sender_protocol *protocol; /* NULL: HTTP, as method says */
    void *proto;                                  /* the protocol's data for this call */

    /* the result, set by the sender before done is called */
    int transport_error;       /* 0, or the CURLcode: no HTTP answer (timeout, refused, DNS...) */
    char error[256];           /* libcurl's message when transport_error is set */
    long status;               /* the answer's status when transport_error is 0, else 0: HTTP's,
                                  or the protocol's (an SMTP reply, a gRPC status code) */
    int64_t retry_after_ms;    /* from a Retry-After header; -1 when absent or unparsable */
    struct ferry_buf response; /* the first response_max bytes of the body */
    double seconds;            /* the call's total time */
    void *priv;                /* the sender's: the I/O loop the call went to */
    const void *rule;          /* the sender's: what its method needs, found once at start */
    STAILQ_ENTRY(ferry_http_call) queued; /* the sender's */

    /* set by the caller: nkeep names of response headers to keep, or NULL. Each value of the
     * final response's headers of those names goes into kept as "name\0value\0" (the name as
     * given here), as many as fit in FERRY_SENDER_KEPT_MAX bytes. kept is emptied at each start
     * (zero it before the first; the caller frees it with ferry_buf_release()). HTTP only. */
    const char *const *keep;
    size_t nkeep;
    struct ferry_buf kept;
};

/* Sets up libcurl for the whole process. Returns 0, or libcurl's CURLcode when it failed. Call
 * once from main() before any thread starts. */
int ferry_sender_global_init(void);

/* Releases what ferry_sender_global_init() set up. Call once from main() after every sender is
 * destroyed and every other thread has stopped. */
void ferry_sender_global_cleanup(void);

/* Returns a sender with nothing in flight (and its I/O threads running), or
 * NULL with a message in errstr. The options are copied. Any thread; the sender then belongs to the
 * one that uses it. */
ferry_sender *ferry_sender_new(const struct ferry_sender_options *o, char *errstr,
                               size_t errstr_size);

/* Starts call (or hands it to the I/O thread with the fewest calls in flight). Returns 0 when the
 * call is in flight (its done callback will run from a later ferry_sender_collect()), or -1 with a
 * message in errstr when it cannot start (bad method, no URL); done is then never called for it.
 * Everything found later, on the I/O thread or on the wire (out of memory, a malformed URL), comes
 * back through done as a transport error. Worker thread, also from inside a done callback. */
int ferry_sender_start(ferry_sender *s, struct ferry_http_call *call, char *errstr,
                       size_t errstr_size);

/* Blocks up to timeout_ms (less when a transfer has a timer due) for network activity or a
 * finished call, for extra_fd (may be -1) to become readable, or for ferry_sender_wakeup().
 * Returns 1 when extra_fd is readable, 0 otherwise, -1 when the wait failed (logged). Worker
 * thread. */
int ferry_sender_wait(ferry_sender *s, int extra_fd, int timeout_ms);

/* Drives the transfers (without io_threads) and calls done(arg, call) for each call that
 * finished, in the order they finished, after the sender has let go of it (the caller owns it
 * again). Returns how many finished. done may start calls
 * but must not destroy the sender. Worker thread. */
size_t ferry_sender_collect(ferry_sender *s, void (*done)(void *arg, struct ferry_http_call *call),
                            void *arg);

/* Returns how many calls are started and not yet collected. Worker thread. */
size_t ferry_sender_in_flight(const ferry_sender *s);

/* Returns how many connections the sender has opened so far (reused ones are not counted), for
 * metrics. Worker thread. */
uint64_t ferry_sender_connects(const ferry_sender *s);

/* Makes a ferry_sender_wait() in progress, or the next one, return at once. Any thread, as long
 * as the sender is not being destroyed. */
void ferry_sender_wakeup(ferry_sender *s);

/* Aborts the calls still in flight without calling their done callbacks (their callers own
 * them again, responses included), stops the I/O threads, closes the connections and frees the
 * sender. Accepts NULL and a half-built sender. Worker thread. */
void ferry_sender_destroy(ferry_sender *s);

#endif
