/*
 * sender.c - a route worker's HTTP requests over one libcurl multi handle (see sender.h).
 *
 * Each call in flight rides on a transfer: an easy handle plus what its callbacks need. A
 * transfer is made once, given every option that never changes (callbacks, timeouts, TLS) at
 * that moment, and goes back to a free list when its call finishes; starting a call sets only
 * the method, URL, headers and body. The handles own no connections: those live in the multi
 * handle's pool, so whichever transfer starts next reuses whichever connection is idle.
 *
 * "Expect:" is removed without touching the caller's header list: each transfer owns one
 * curl_slist node holding it, chained in front of the caller's list for the duration of a
 * call. libcurl only reads the list, and an empty "Expect:" suppresses the header.
 *
 * The transfers are split over I/O loops: an I/O loop is one multi handle, its transfers and
 * its connections. Without I/O threads there is one I/O loop and the worker drives it. With the
 * io_threads option, each I/O loop has an I/O thread of its own, so that the route's worker
 * thread (Kafka, dispatch, outcomes) and libcurl's work on the wire use more than one core;
 * routes use it for one-record requests, where libcurl's work per record is the largest. (For
 * batches it cost more in hand-offs than it gave.) The worker gives each new call to the I/O
 * loop with the fewest calls in flight, so each one needs at most its share of the connections.
 *
 * The worker and the I/O threads meet at queues under one mutex: each I/O loop's calls to start
 * (the worker pushes, the loop's thread takes them all at once) and the calls finished (the
 * other way). Each side is woken only when a queue turns non-empty, through an eventfd it polls
 * (an I/O loop's wake_fd, the worker's done_fd). A loop's thread waits for its sockets with a
 * curl watch (curl_watch.h), which hands libcurl only the sockets that are ready. Everything
 * about a transfer (easy handles, the multi handle, its watch, the free list) belongs to the
 * thread driving its I/O loop; a call's result fields are written there and read by the worker
 * after the mutex has passed the call back.
 */
#include "route/sender.h"
#include "core/log.h"
#include "route/backoff.h"
#include "route/curl_watch.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "dev"
#endif

/* The most connections one host may get; far above what a route needs. */
#define SENDER_CONNECTIONS_MAX 65536
/* Idle connections kept open: enough for max_connections to each of this many hosts, so a
 * route whose URL template spreads over a few hosts keeps them all warm. */
#define SENDER_HOSTS_KEPT 4
/* An I/O thread's longest sleep; new calls and stopping wake it at once anyway. */
#define SENDER_IDLE_WAIT_MS 1000
/* Longer than any valid Retry-After value (an HTTP-date is 29 characters). */
#define RETRY_AFTER_VALUE_MAX 64

#define RETRY_AFTER_NAME "Retry-After:"
#define RETRY_AFTER_NAME_LEN (sizeof(RETRY_AFTER_NAME) - 1)

/* Which methods carry a body. */
enum body_rule {
    BODY_NEVER,
    BODY_ALWAYS,    /* even an empty one, so that Content-Length: 0 is sent */
    BODY_NON_EMPTY, /* only when body_len > 0 */
};

struct method {
    const char *name;
    const char *custom; /* CURLOPT_CUSTOMREQUEST, or NULL for libcurl's own GET and POST */
    enum body_rule body;
};

static const struct method methods[] = {
    {"POST", NULL, BODY_ALWAYS},          {"GET", NULL, BODY_NEVER},
    {"PUT", "PUT", BODY_ALWAYS},          {"PATCH", "PATCH", BODY_ALWAYS},
    {"DELETE", "DELETE", BODY_NON_EMPTY},
};

/* libcurl wants a char *; it never writes through it. */
static char expect_off[] = "Expect:";

struct io_loop;

struct transfer {
    struct io_loop *loop;
    CURL *easy;
    struct ferry_http_call *call; /* NULL while on the free list */
    const char *custom;           /* the CURLOPT_CUSTOMREQUEST now set on easy */
    struct curl_slist expect;     /* "Expect:", chained in front of the caller's headers */
    char errbuf[CURL_ERROR_SIZE];
    SLIST_ENTRY(transfer) free_link; /* in its loop's free list while it carries no call */
    SLIST_ENTRY(transfer) all_link;  /* in its loop's list of every transfer */
};

/* A queue of calls, in the order they were pushed. */
STAILQ_HEAD(call_queue, ferry_http_call);

/* An I/O loop: one multi handle and its transfers, driven by its I/O thread (or by the
 * worker). */
struct io_loop {
    ferry_sender *sender;

    /* the driving thread's */
    CURLM *multi;
    ferry_curl_watch *watch;    /* waits for multi's sockets and drives it */
    SLIST_HEAD(, transfer) all; /* every transfer, to free them */
    SLIST_HEAD(, transfer) free_list;
    pthread_t thread;
    int thread_started;

    struct call_queue to_start; /* under sender->lock */
    int wake_fd;                /* eventfd: to_start turned non-empty, or stop (I/O threads) */
    size_t in_flight;           /* the worker's count of the calls it gave this loop */
};

struct ferry_sender {
    struct ferry_sender_options opts; /* file names point at the copies below */
    char *ca_file;
    char *cert_file;
    char *key_file;

    struct io_loop *loops;
    int loop_count; /* io_threads, or 1 loop that the worker drives */
    atomic_int stop;
    atomic_uint_fast64_t connects;

    /* shared, under lock */
    pthread_mutex_t lock;
    int lock_made;
    struct call_queue finished;

    /* the worker's */
    int done_fd;      /* eventfd: finished calls, or ferry_sender_wakeup() */
    size_t in_flight; /* started and not yet collected */
};

int ferry_sender_global_init(void)
{
    return (int)curl_global_init(CURL_GLOBAL_DEFAULT);
}

void ferry_sender_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- callbacks: they run inside curl_multi_socket_action(), on the loop's thread ---- */

/* Keeps the first response_max bytes of the body and drops the rest without failing. */
static size_t on_body(char *data, size_t size, size_t n, void *userp)
{
    struct transfer *t = userp;
    struct ferry_buf *b = &t->call->response;
    size_t len = size * n;
    size_t room = b->cap - b->len;

    if (room)
        ferry_buf_add(b, data, len < room ? len : room);
    return len;
}

static void read_retry_after(struct ferry_http_call *call, const char *value, size_t len)
{
    char text[RETRY_AFTER_VALUE_MAX];

    if (len >= sizeof(text))
        return;
    memcpy(text, value, len);
    text[len] = '\0';
    text[strcspn(text, "\r\n")] = '\0';
    call->retry_after_ms = ferry_backoff_retry_after_ms(text, time(NULL));
}

static int is_retry_after(const char *line, size_t len)
{
    /* Most lines fail on the first letter, before the case-insensitive compare. */
    if (len <= RETRY_AFTER_NAME_LEN || (line[0] != 'R' && line[0] != 'r'))
        return 0;
    return curl_strnequal(line, RETRY_AFTER_NAME, RETRY_AFTER_NAME_LEN);
}

/* Sees every header line. A status line starts a new response (after a 1xx), so it forgets a
 * Retry-After seen before it. */
static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct transfer *t = userp;
    size_t len = size * n;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        t->call->retry_after_ms = -1;
    else if (is_retry_after(data, len))
        read_retry_after(t->call, data + RETRY_AFTER_NAME_LEN, len - RETRY_AFTER_NAME_LEN);
    return len;
}

/* ---- transfers: their I/O loop's thread's ---- */

static CURLcode set_callbacks(struct transfer *t)
{
    CURLcode rc = curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);

    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, on_header);
    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    return rc;
}

/* URLs come from templates over records: only HTTP(S), and no redirects to anywhere else. */
static CURLcode set_transport(CURL *e, const struct ferry_sender_options *o)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);

    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_USERAGENT, "ferry/" FERRY_VERSION);
    return rc;
}

static CURLcode set_tls(CURL *e, const struct ferry_sender_options *o)
{
    long verify = o->verify ? 1L : 0L;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);

    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (!rc && o->ca_file)
        rc = curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (!rc && o->cert_file)
        rc = curl_easy_setopt(e, CURLOPT_SSLCERT, o->cert_file);
    if (!rc && o->key_file)
        rc = curl_easy_setopt(e, CURLOPT_SSLKEY, o->key_file);
    return rc;
}

/* Makes a transfer with every per-sender option set. Returns NULL with *rc saying why (out of
 * memory, or an option this libcurl refuses). */
static struct transfer *transfer_new(struct io_loop *lp, CURLcode *rc_out)
{
    struct transfer *t = calloc(1, sizeof(*t));
    CURLcode rc = CURLE_OUT_OF_MEMORY;

    *rc_out = rc;
    if (!t)
        return NULL;
    t->loop = lp;
    t->expect.data = expect_off;
    t->easy = curl_easy_init();
    if (t->easy)
        rc = set_callbacks(t);
    if (!rc)
        rc = set_transport(t->easy, &lp->sender->opts);
    if (!rc)
        rc = set_tls(t->easy, &lp->sender->opts);
    if (rc) {
        curl_easy_cleanup(t->easy);
        free(t);
        *rc_out = rc;
        return NULL;
    }
    SLIST_INSERT_HEAD(&lp->all, t, all_link);
    return t;
}

static struct transfer *transfer_take(struct io_loop *lp, CURLcode *rc)
{
    struct transfer *t = SLIST_FIRST(&lp->free_list);

    if (!t)
        return transfer_new(lp, rc);
    SLIST_REMOVE_HEAD(&lp->free_list, free_link);
    return t;
}

static void transfer_give_back(struct transfer *t)
{
    struct io_loop *lp = t->loop;

    t->call = NULL;
    SLIST_INSERT_HEAD(&lp->free_list, t, free_link);
}

/* ---- starting a call ---- */

static const struct method *find_method(const char *name)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    }
    return NULL;
}

static int wants_body(const struct method *m, const struct ferry_http_call *call)
{
    if (m->body == BODY_NON_EMPTY)
        return call->body_len > 0;
    return m->body == BODY_ALWAYS;
}

/* Sets the method and body. HTTPGET also takes back a POSTFIELDS left by an earlier call, and
 * CUSTOMREQUEST is only set when it changes, since libcurl copies it. */
static CURLcode set_method(struct transfer *t, const struct method *m,
                           const struct ferry_http_call *call)
{
    CURLcode rc;

    if (wants_body(m, call)) {
        rc = curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
        if (!rc)
            rc = curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, call->body ? call->body : "");
    } else {
        rc = curl_easy_setopt(t->easy, CURLOPT_HTTPGET, 1L);
    }
    if (!rc && t->custom != m->custom)
        rc = curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, m->custom);
    if (!rc)
        t->custom = m->custom;
    return rc;
}

static CURLcode set_request(struct transfer *t, const struct method *m,
                            struct ferry_http_call *call)
{
    CURLcode rc = set_method(t, m, call);

    t->expect.next = call->headers;
    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, &t->expect);
    if (!rc)
        rc = curl_easy_setopt(t->easy, CURLOPT_URL, call->url);
    return rc;
}

static void reset_result(const ferry_sender *s, struct ferry_http_call *call)
{
    call->transport_error = 0;
    call->error[0] = '\0';
    call->status = 0;
    call->retry_after_ms = -1;
    call->seconds = 0;
    ferry_buf_reset(&call->response);
    call->response.cap = s->opts.response_max;
    ferry_buf_reset(&call->kept);
    call->kept.cap = FERRY_SENDER_KEPT_MAX;
}

static int check_call(const struct ferry_http_call *call, const struct method **m, char *errstr,
                      size_t errstr_size)
{
    *m = call->method ? find_method(call->method) : NULL;
    if (!*m && !call->protocol) {
        snprintf(errstr, errstr_size, "sender: unsupported method '%s'",
                 call->method ? call->method : "(null)");
        return -1;
    }
    if (!call->url) {
        snprintf(errstr, errstr_size, "sender: %s call without a url", call->method);
        return -1;
    }
    if (!call->body && call->body_len) {
        snprintf(errstr, errstr_size, "sender: %s '%s': body is NULL but body_len is %zu",
                 call->method, call->url, call->body_len);
        return -1;
    }
    return 0;
}

/* ---- queues between the worker and the I/O threads (under s->lock) ---- */

/* Appends call; returns nonzero when the queue was empty, so the other side needs waking. */
static int queue_push(struct call_queue *q, struct ferry_http_call *call)
{
    int was_empty = STAILQ_EMPTY(q);

    STAILQ_INSERT_TAIL(q, call, queued);
    return was_empty;
}

/* Appends all of from to q and empties from; returns nonzero when q was empty. */
static int queue_splice(struct call_queue *q, struct call_queue *from)
{
    int was_empty = STAILQ_EMPTY(q);

    if (STAILQ_EMPTY(from))
        return 0;
    STAILQ_CONCAT(q, from);
    return was_empty;
}

/* Moves the whole of q, under the lock, into taken, which must be empty. */
static void queue_take(ferry_sender *s, struct call_queue *q, struct call_queue *taken)
{
    pthread_mutex_lock(&s->lock);
    STAILQ_CONCAT(taken, q);
    pthread_mutex_unlock(&s->lock);
}

/* ---- the I/O loops' threads ---- */

/* A call that could not become a transfer finishes at once as a transport error. */
static void fail_call(struct ferry_http_call *call, CURLcode code, const char *why)
{
    call->transport_error = (int)code;
    snprintf(call->error, sizeof(call->error), "sender: %s '%s': %s", call->method, call->url, why);
}

/* Makes call a transfer and adds it to the loop's multi handle, or fails it into done. */
static void begin_transfer(struct io_loop *lp, struct ferry_http_call *call,
                           struct call_queue *done)
{
    const struct method *m = call->rule;
    CURLcode rc = CURLE_OK;
    struct transfer *t = transfer_take(lp, &rc);
    CURLMcode mc;

    if (t) {
        t->call = call;
        rc = call->protocol ? call->protocol->start(t->easy, call) : set_request(t, m, call);
    }
    if (rc) {
        fail_call(call, rc, curl_easy_strerror(rc));
        goto failed;
    }
    mc = curl_multi_add_handle(lp->multi, t->easy);
    if (mc) {
        fail_call(call, CURLE_FAILED_INIT, curl_multi_strerror(mc));
        goto failed;
    }
    return;
failed:
    if (t)
        transfer_give_back(t);
    queue_push(done, call);
}

/* Copies the values of the response headers the call asked for into call->kept, from the
 * header origins asked for (CURLH_HEADER, CURLH_TRAILER); those that do not fit are left out.
 * curl_easy_header() sees the last response only (not a 1xx before it). */
static void keep_headers(CURL *easy, struct ferry_http_call *call, unsigned int origins)
{
    for (size_t i = 0; i < call->nkeep; i++) {
        struct curl_header *h = NULL;
        size_t n = 1;

        for (size_t k = 0; k < n; k++) {
            struct ferry_buf mark = call->kept;
            if (curl_easy_header(easy, call->keep[i], k, origins, -1, &h) != CURLHE_OK)
                break;
            n = h->amount;
            if (ferry_buf_add(&call->kept, call->keep[i], strlen(call->keep[i]) + 1) ||
                ferry_buf_add(&call->kept, h->value, strlen(h->value) + 1))
                ferry_buf_rewind(&call->kept, &mark);
        }
    }
}

static void record_result(ferry_sender *s, struct transfer *t, CURLcode code)
{
    struct ferry_http_call *call = t->call;
    curl_off_t usec = 0;
    long connects = 0;

    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &usec);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    call->seconds = (double)usec / 1e6;
    if (connects > 0)
        atomic_fetch_add(&s->connects, (uint64_t)connects);
    if (call->protocol) {
        call->protocol->finish(t->easy, code, t->errbuf, call);
        if (call->keep && !call->transport_error) /* gRPC: its metadata, trailers included */
            keep_headers(t->easy, call, CURLH_HEADER | CURLH_TRAILER);
        return;
    }
    if (code == CURLE_OK) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &call->status);
        if (call->keep)
            keep_headers(t->easy, call, CURLH_HEADER);
        return;
    }
    call->transport_error = (int)code;
    snprintf(call->error, sizeof(call->error), "%s",
             t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
}

/* Settles one finished transfer and queues its call in done. */
static void end_transfer(struct io_loop *lp, CURL *easy, CURLcode code, struct call_queue *done)
{
    char *priv = NULL;
    struct transfer *t;
    struct ferry_http_call *call;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    t = (struct transfer *)(void *)priv;
    call = t->call;
    record_result(lp->sender, t, code);
    curl_multi_remove_handle(lp->multi, easy);
    transfer_give_back(t);
    queue_push(done, call);
}

/* Empties an eventfd that woke its reader. */
static void drain(int fd)
{
    uint64_t signals;

    if (read(fd, &signals, sizeof(signals)) < 0 && errno != EAGAIN)
        FLOG_ERROR_REPEATED("route", NULL, "sender: reading the wake-up: %s", strerror(errno));
}

/* Wakes the thread that waits on eventfd fd. */
static void signal_fd(int fd)
{
    uint64_t one = 1;

    if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        FLOG_ERROR_REPEATED("route", NULL, "sender: wake-up: %s", strerror(errno));
}

/* Hands finished calls to the worker, waking it when its queue was empty. */
static void hand_back(ferry_sender *s, struct call_queue *done)
{
    int wake;

    if (STAILQ_EMPTY(done))
        return;
    pthread_mutex_lock(&s->lock);
    wake = queue_splice(&s->finished, done);
    pthread_mutex_unlock(&s->lock);
    if (wake)
        signal_fd(s->done_fd);
}

/* Runs the loop's transfers that are ready and queues the calls that finished in done. */
static void drive(struct io_loop *lp, struct call_queue *done)
{
    int queued = 0;
    CURLMcode mc = ferry_curl_watch_act(lp->watch);
    CURLMsg *msg;

    if (mc)
        FLOG_ERROR_REPEATED("route", NULL, "sender: curl_multi_socket_action: %s",
                            curl_multi_strerror(mc));
    while ((msg = curl_multi_info_read(lp->multi, &queued)))
        if (msg->msg == CURLMSG_DONE)
            end_transfer(lp, msg->easy_handle, msg->data.result, done);
}

/* One turn of an I/O thread: wait for the network or new calls, start the new calls, drive
 * the transfers, hand back the finished calls. The wake-up is read before the queue is taken,
 * so a call pushed in between wakes the next wait. */
static void io_turn(struct io_loop *lp)
{
    ferry_sender *s = lp->sender;
    struct call_queue done = STAILQ_HEAD_INITIALIZER(done);
    struct call_queue start = STAILQ_HEAD_INITIALIZER(start);
    struct ferry_http_call *call, *next;
    struct pollfd wake = {lp->wake_fd, POLLIN, 0};

    if (ferry_curl_watch_wait(lp->watch, &wake, 1, SENDER_IDLE_WAIT_MS))
        FLOG_ERROR_REPEATED("route", NULL, "sender: poll: %s", strerror(errno));
    if (wake.revents & POLLIN)
        drain(lp->wake_fd);
    queue_take(s, &lp->to_start, &start);
    for (call = STAILQ_FIRST(&start); call; call = next) {
        next = STAILQ_NEXT(call, queued);
        begin_transfer(lp, call, &done);
    }
    drive(lp, &done);
    hand_back(s, &done);
}

static void *io_main(void *arg)
{
    struct io_loop *lp = arg;

    pthread_setname_np(pthread_self(), "ferry-route-io");
    while (!atomic_load(&lp->sender->stop))
        io_turn(lp);
    return NULL;
}

/* ---- the worker's side ---- */

/* The I/O loop with the fewest calls in flight: the first one when they are even, so that a
 * trickle of calls keeps reusing the same connections. */
static struct io_loop *pick_loop(ferry_sender *s)
{
    struct io_loop *best = &s->loops[0];

    for (int i = 1; i < s->loop_count; i++)
        if (s->loops[i].in_flight < best->in_flight)
            best = &s->loops[i];
    return best;
}

int ferry_sender_start(ferry_sender *s, struct ferry_http_call *call, char *errstr,
                       size_t errstr_size)
{
    const struct method *m;
    struct io_loop *lp;
    int wake;

    if (check_call(call, &m, errstr, errstr_size))
        return -1;
    reset_result(s, call);
    call->rule = m;
    lp = pick_loop(s);
    call->priv = lp;
    lp->in_flight++;
    s->in_flight++;
    if (!s->opts.io_threads) {
        begin_transfer(lp, call, &s->finished); /* only this thread touches finished then */
        if (!STAILQ_EMPTY(&s->finished))
            ferry_sender_wakeup(s); /* it failed at once: the next wait must not block */
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    wake = queue_push(&lp->to_start, call);
    pthread_mutex_unlock(&s->lock);
    if (wake)
        signal_fd(lp->wake_fd);
    return 0;
}

int ferry_sender_wait(ferry_sender *s, int extra_fd, int timeout_ms)
{
    int nfds = extra_fd >= 0 ? 2 : 1;
    struct pollfd pfds[2] = {{s->done_fd, POLLIN, 0}, {extra_fd, POLLIN, 0}};

    if (!s->opts.io_threads) {
        if (ferry_curl_watch_wait(s->loops[0].watch, pfds, nfds, timeout_ms)) {
            FLOG_ERROR_REPEATED("route", NULL, "sender: poll: %s", strerror(errno));
            return -1;
        }
        return extra_fd >= 0 && (pfds[1].revents & POLLIN) ? 1 : 0;
    }
    if (poll(pfds, (nfds_t)nfds, timeout_ms) < 0) {
        if (errno == EINTR)
            return 0;
        FLOG_ERROR_REPEATED("route", NULL, "sender: poll: %s", strerror(errno));
        return -1;
    }
    return extra_fd >= 0 && (pfds[1].revents & POLLIN) ? 1 : 0;
}

size_t ferry_sender_collect(ferry_sender *s, void (*done)(void *arg, struct ferry_http_call *call),
                            void *arg)
{
    struct call_queue taken = STAILQ_HEAD_INITIALIZER(taken);
    struct ferry_http_call *call, *next;
    size_t finished = 0;

    drain(s->done_fd);
    if (!s->opts.io_threads)
        drive(&s->loops[0], &s->finished);
    queue_take(s, &s->finished, &taken);
    for (call = STAILQ_FIRST(&taken); call; call = next) {
        next = STAILQ_NEXT(call, queued); /* done may start the call again */
        ((struct io_loop *)call->priv)->in_flight--;
        call->priv = NULL;
        s->in_flight--;
        finished++;
        done(arg, call);
    }
    return finished;
}

size_t ferry_sender_in_flight(const ferry_sender *s)
{
    return s->in_flight;
}

uint64_t ferry_sender_connects(const ferry_sender *s)
{
    return atomic_load(&((ferry_sender *)s)->connects);
}

void ferry_sender_wakeup(ferry_sender *s)
{
    signal_fd(s->done_fd);
}

/* ---- life cycle ---- */

static int check_file(const char *what, const char *path, char *errstr, size_t errstr_size)
{
    if (!path || access(path, R_OK) == 0)
        return 0;
    snprintf(errstr, errstr_size, "sender: %s '%s': %s", what, path, strerror(errno));
    return -1;
}

static int check_options(const struct ferry_sender_options *o, char *errstr, size_t errstr_size)
{
    if (o->max_connections < 1 || o->max_connections > SENDER_CONNECTIONS_MAX) {
        snprintf(errstr, errstr_size, "sender: max_connections: expected 1 to %d, got %d",
                 SENDER_CONNECTIONS_MAX, o->max_connections);
        return -1;
    }
    if (o->io_threads < 0 || o->io_threads > FERRY_SENDER_IO_THREADS_MAX) {
        snprintf(errstr, errstr_size, "sender: io_threads: expected 0 to %d, got %d",
                 FERRY_SENDER_IO_THREADS_MAX, o->io_threads);
        return -1;
    }
    if (o->timeout_ms < 0 || o->connect_timeout_ms < 0) {
        snprintf(errstr, errstr_size, "sender: timeouts must not be negative, got %ld and %ld ms",
                 o->timeout_ms, o->connect_timeout_ms);
        return -1;
    }
    if (check_file("ca_file", o->ca_file, errstr, errstr_size) ||
        check_file("cert_file", o->cert_file, errstr, errstr_size) ||
        check_file("key_file", o->key_file, errstr, errstr_size))
        return -1;
    return 0;
}

/* Copies a file name that may be NULL. Returns -1 when out of memory. */
static int copy_name(const char *src, char **dst)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

static int copy_options(ferry_sender *s, const struct ferry_sender_options *o)
{
    s->opts = *o;
    if (copy_name(o->ca_file, &s->ca_file) || copy_name(o->cert_file, &s->cert_file) ||
        copy_name(o->key_file, &s->key_file))
        return -1;
    s->opts.ca_file = s->ca_file;
    s->opts.cert_file = s->cert_file;
    s->opts.key_file = s->key_file;
    return 0;
}

/* Each I/O loop may open its share of the connections: the worker keeps the loops' calls in
 * flight within one of each other, so no loop needs more. */
static CURLMcode loop_configure(struct io_loop *lp, int loop_count)
{
    const struct ferry_sender_options *o = &lp->sender->opts;
    long per_host = (o->max_connections + loop_count - 1) / loop_count;
    CURLMcode mc = curl_multi_setopt(lp->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);

    if (!mc)
        mc = curl_multi_setopt(lp->multi, CURLMOPT_MAXCONNECTS, per_host * SENDER_HOSTS_KEPT);
    return mc;
}

/* Makes each I/O loop's multi handle. */
static int make_loops(ferry_sender *s, char *errstr, size_t errstr_size)
{
    CURLMcode mc;

    s->loop_count = s->opts.io_threads ? s->opts.io_threads : 1;
    s->loops = calloc((size_t)s->loop_count, sizeof(*s->loops));
    if (!s->loops) {
        snprintf(errstr, errstr_size, "sender: out of memory");
        return -1;
    }
    for (int i = 0; i < s->loop_count; i++)
        s->loops[i].wake_fd = -1;
    for (int i = 0; i < s->loop_count; i++) {
        struct io_loop *lp = &s->loops[i];

        lp->sender = s;
        STAILQ_INIT(&lp->to_start);
        lp->multi = curl_multi_init();
        lp->watch = lp->multi ? ferry_curl_watch_new(lp->multi) : NULL;
        if (!lp->watch) {
            snprintf(errstr, errstr_size, "sender: cannot make a curl multi handle");
            return -1;
        }
        if (s->opts.io_threads) {
            lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (lp->wake_fd < 0) {
                snprintf(errstr, errstr_size, "sender: eventfd: %s", strerror(errno));
                return -1;
            }
        }
        mc = loop_configure(lp, s->loop_count);
        if (mc) {
            snprintf(errstr, errstr_size, "sender: cannot set curl's connection limits: %s",
                     curl_multi_strerror(mc));
            return -1;
        }
    }
    return 0;
}

/* The lock, the worker's eventfd and, with io_threads, the I/O threads, in that order. */
static int start_helpers(ferry_sender *s, char *errstr, size_t errstr_size)
{
    int rc = pthread_mutex_init(&s->lock, NULL);

    if (rc) {
        snprintf(errstr, errstr_size, "sender: cannot make its lock: %s", strerror(rc));
        return -1;
    }
    s->lock_made = 1;
    s->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->done_fd < 0) {
        snprintf(errstr, errstr_size, "sender: eventfd: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < s->opts.io_threads; i++) {
        struct io_loop *lp = &s->loops[i];

        rc = pthread_create(&lp->thread, NULL, io_main, lp);
        if (rc) {
            snprintf(errstr, errstr_size, "sender: cannot start I/O thread %d of %d: %s", i + 1,
                     s->opts.io_threads, strerror(rc));
            return -1;
        }
        lp->thread_started = 1;
    }
    return 0;
}

/* Stops the I/O threads; what they were doing is dropped with the transfers. */
static void stop_io_threads(ferry_sender *s)
{
    atomic_store(&s->stop, 1);
    for (int i = 0; i < s->loop_count; i++) {
        struct io_loop *lp = &s->loops[i];

        if (!lp->thread_started)
            continue;
        signal_fd(lp->wake_fd);
        pthread_join(lp->thread, NULL);
        lp->thread_started = 0;
    }
}

ferry_sender *ferry_sender_new(const struct ferry_sender_options *o, char *errstr,
                               size_t errstr_size)
{
    ferry_sender *s = NULL;
    int result = -1;

    if (check_options(o, errstr, errstr_size))
        goto out;
    s = calloc(1, sizeof(*s));
    if (s) {
        s->done_fd = -1;
        STAILQ_INIT(&s->finished);
    }
    if (!s || copy_options(s, o)) {
        snprintf(errstr, errstr_size, "sender: out of memory");
        goto out;
    }
    if (make_loops(s, errstr, errstr_size) || start_helpers(s, errstr, errstr_size))
        goto out;
    result = 0;
out:
    if (result) {
        ferry_sender_destroy(s);
        s = NULL;
    }
    return s;
}

/* Frees an I/O loop whose thread has stopped, aborting its transfers. */
static void loop_release(struct io_loop *lp)
{
    struct transfer *t, *next;

    for (t = SLIST_FIRST(&lp->all); t; t = next) {
        next = SLIST_NEXT(t, all_link);
        if (t->call)
            curl_multi_remove_handle(lp->multi, t->easy);
        curl_easy_cleanup(t->easy);
        free(t);
    }
    if (lp->multi)
        curl_multi_cleanup(lp->multi); /* may still call the watch back */
    ferry_curl_watch_destroy(lp->watch);
    if (lp->wake_fd >= 0)
        close(lp->wake_fd);
}

void ferry_sender_destroy(ferry_sender *s)
{
    if (!s)
        return;
    if (s->loops) {
        stop_io_threads(s);
        for (int i = 0; i < s->loop_count; i++)
            loop_release(&s->loops[i]);
        free(s->loops);
    }
    if (s->done_fd >= 0)
        close(s->done_fd);
    if (s->lock_made)
        pthread_mutex_destroy(&s->lock);
    free(s->ca_file);
    free(s->cert_file);
    free(s->key_file);
    free(s);
}
