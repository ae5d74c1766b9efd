/*
 * forward.c - the forwarder thread: forwarded reads as libcurl transfers in one multi handle.
 *
 * A server thread builds the read (URLs, headers, copied from the request before its handler
 * returns), queues it under the lock and wakes the multi handle; the forwarder thread adds
 * queued reads to the multi handle, runs the transfers, and answers each suspended request when
 * its transfer ends. Answers are capped (FERRY_FORWARD_ANSWER_MAX); only the headers a table
 * answer carries are relayed.
 */
#include "table/forward.h"
#include "table/forward_int.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FORWARD_IN_FLIGHT_MAX 10000 /* reads under way at once; more get 503 */
#define FORWARD_HEADERS_MAX 4096    /* bytes of the relayed headers of one answer */
#define FORWARD_CONNECT_TIMEOUT_MS 1000
#define FORWARD_TRY_MIN_MS 1000 /* the least a try is given of a read's time, when it has that */
#define FORWARD_IDLE_WAIT_MS 1000

/* The request headers a forwarded read keeps, when the client sent them. */
static const char *const passed_headers[] = {"If-None-Match", "Prefer", "Accept", NULL};

/* The answer headers relayed to the client: a table answer's own. */
static const char *const relayed_headers[] = {"Content-Type", "ETag",   "Last-Modified",
                                              "Retry-After",  "Ferry-", NULL};

static void fwd_free(struct fwd *w)
{
    if (!w)
        return;
    if (w->easy)
        curl_easy_cleanup(w->easy); /* when it was not given back to the spares */
    curl_slist_free_all(w->headers);
    ferry_buf_release(&w->body);
    ferry_buf_release(&w->relayed);
    free(w->path);
    free(w->post);
    free(w->batch_table);
    free(w->batch_key);
    free(w->members);
    free(w);
}

/* ---- the answer ---- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct fwd *w = arg;

    if (ferry_buf_add(&w->body, data, size * n) == 0)
        return size * n;
    w->too_large = 1;
    return 0; /* ends the transfer with CURLE_WRITE_ERROR */
}

static int relayed(const char *name, size_t len)
{
    for (size_t i = 0; relayed_headers[i]; i++) {
        size_t want = strlen(relayed_headers[i]);
        int prefix = relayed_headers[i][want - 1] == '-';
        if ((prefix ? len > want : len == want) && strncasecmp(name, relayed_headers[i], want) == 0)
            return 1;
    }
    return 0;
}

/* Keeps the relayed headers of the final answer ("Name: value\r\n" lines). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct fwd *w = arg;
    size_t len = size * n, name_len, value_at;
    const char *colon = memchr(data, ':', len);

    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        ferry_buf_reset(&w->relayed); /* a new answer (after a 100 Continue, say) */
    if (!colon)
        return len;
    name_len = (size_t)(colon - data);
    value_at = name_len + 1;
    while (value_at < len && (data[value_at] == ' ' || data[value_at] == '\t'))
        value_at++;
    while (len > value_at && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    if (relayed(data, name_len)) {
        struct ferry_buf mark = w->relayed; /* names and values stay in pairs */
        if (ferry_buf_add(&w->relayed, data, name_len) || ferry_buf_addc(&w->relayed, '\0') ||
            ferry_buf_add(&w->relayed, data + value_at, len - value_at) ||
            ferry_buf_addc(&w->relayed, '\0')) {
            ferry_buf_rewind(&w->relayed, &mark);
            FLOG_WARN_REPEATED("table", NULL, "forward: an answer's headers passed %d bytes",
                               FORWARD_HEADERS_MAX);
        }
    }
    return size * n;
}

/* Sends the holder's answer to the client. */
static void relay(struct fwd *w, int status)
{
    const char *type = NULL;

    if (w->answer) {
        w->answer(w->arg, status, w->body.data ? w->body.data : "", w->body.len);
        return;
    }
    for (size_t at = 0; at < w->relayed.len;) {
        const char *name = w->relayed.data + at, *value = name + strlen(name) + 1;
        if (strcasecmp(name, "Content-Type") == 0)
            type = value;
        else
            ferry_http_add_header(w->req, name, value);
        at = (size_t)(value + strlen(value) + 1 - w->relayed.data);
    }
    ferry_http_respond(w->req, status, type, w->body.data ? w->body.data : "", w->body.len);
}

/* Answers with ferry's own error. */
static void fail(struct fwd *w, int status, const char *why)
{
    if (w->answer) {
        w->answer(w->arg, status, NULL, 0);
        return;
    }
    if (status == 503)
        ferry_http_add_header(w->req, "Retry-After", "1");
    ferry_http_respond_error(w->req, status, 0, "%s", why);
}

/* ---- transfers ---- */

/* The counts of the holder at base, made when new; NULL when the table is full. Forwarder
 * thread. */
static struct dest *dest_of(ferry_table_forward *f, const char *base)
{
    size_t n = atomic_load(&f->ndests);

    for (size_t i = 0; i < n; i++)
        if (strcmp(f->dests[i].base, base) == 0)
            return &f->dests[i];
    if (n == FORWARD_DESTS_MAX)
        return NULL;
    snprintf(f->dests[n].base, sizeof(f->dests[n].base), "%s", base);
    atomic_store(&f->ndests, n + 1);
    return &f->dests[n];
}

/* Counts a transfer to the candidate the read tried last. */
static void count(ferry_table_forward *f, const struct fwd *w, int reached)
{
    struct dest *d = w->tried ? dest_of(f, w->bases[w->tried - 1]) : NULL;

    unsigned long long n = w->members ? w->nmembers : 1; /* a batch: its GETs */

    if (!d)
        return;
    atomic_fetch_add(&d->sent, n);
    if (!reached)
        atomic_fetch_add(&d->unreached, n);
}

void ferry_table_forward_counts(ferry_table_forward *f, const char *base, uint64_t *sent,
                                uint64_t *unreached)
{
    size_t n = atomic_load(&f->ndests);

    *sent = *unreached = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f->dests[i].base, base) == 0) {
            *sent = atomic_load(&f->dests[i].sent);
            *unreached = atomic_load(&f->dests[i].unreached);
        }
    }
}

/* How long the next try may take of the left_ms the read has: the holder's wait (a long
 * poll's) plus an even share of the rest among the candidates not tried yet, at least
 * FORWARD_TRY_MIN_MS; the last candidate gets all that is left. A holder that takes the
 * request and never answers (its host vanished without a reset, and the pooled connection to
 * it still looks open) so leaves the next one time to answer. */
static int64_t try_limit(const struct fwd *w, int64_t left_ms)
{
    size_t holders_left = w->holders > w->tried ? w->holders - w->tried : 1;
    int64_t share = (left_ms - w->wait_ms) / (int64_t)holders_left;

    if (share < FORWARD_TRY_MIN_MS)
        share = FORWARD_TRY_MIN_MS;
    return w->wait_ms + share < left_ms ? w->wait_ms + share : left_ms;
}

/* Points the read's easy handle at its next candidate: its base and the whole path and query,
 * however long (the callers bound them), with the try's share of the time. Returns 0, or -1
 * when none is left, the time ran out or memory did. */
static int aim(ferry_table_forward *f, struct fwd *w)
{
    struct ferry_buf url;
    int64_t left = w->deadline_ms - ferry_clock_ms(), limit;
    int rc = -1;

    (void)f;
    if (w->tried >= w->nbases || left <= 0)
        return -1;
    limit = try_limit(w, left);
    ferry_buf_init(&url, FERRY_FORWARD_URL_MAX + strlen(w->path));
    if (ferry_buf_adds(&url, w->bases[w->tried++]) || ferry_buf_adds(&url, w->path))
        goto out;
    ferry_buf_reset(&w->body);
    ferry_buf_reset(&w->relayed);
    w->too_large = 0;
    curl_easy_setopt(w->easy, CURLOPT_URL, url.data); /* libcurl keeps a copy */
    curl_easy_setopt(w->easy, CURLOPT_TIMEOUT_MS, (long)limit);
    rc = 0;
out:
    ferry_buf_release(&url);
    return rc;
}

/* Gives a read's easy handle back to the spares (its options are all set again by setup). */
static void give_back(ferry_table_forward *f, struct fwd *w)
{
    if (w->easy && f->nspare < FORWARD_SPARE_HANDLES) {
        f->spare[f->nspare++] = w->easy;
        w->easy = NULL;
    }
}

static int setup(ferry_table_forward *f, struct fwd *w)
{
    w->easy = f->nspare ? f->spare[--f->nspare] : curl_easy_init();
    if (!w->easy)
        return -1;
    curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(w->easy, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
    curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(w->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(w->easy, CURLOPT_PATH_AS_IS, 1L); /* "/keys/.." names the key ".." */
    if (w->post) {
        curl_easy_setopt(w->easy, CURLOPT_POSTFIELDS, w->post);
        curl_easy_setopt(w->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->post_len);
    } else {
        curl_easy_setopt(w->easy, CURLOPT_HTTPGET, 1L);
    }
    return aim(f, w);
}

static void link_running(ferry_table_forward *f, struct fwd *w)
{
    w->prev = NULL;
    w->next = f->running;
    if (f->running)
        f->running->prev = w;
    f->running = w;
}

static void unlink_running(ferry_table_forward *f, struct fwd *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (f->running == w)
        f->running = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

void ferry_forward_finish(ferry_table_forward *f, struct fwd *w, int status)
{
    unlink_running(f, w);
    if (w->done)
        w->done(w->arg, status);
    if (!w->members) /* a batch counts in no limit: its GETs do */
        atomic_fetch_sub(&f->in_flight, 1);
    give_back(f, w);
    fwd_free(w);
}

/* Whether the transfer sent its request: not when its connection was never made. */
static int request_sent(CURL *easy)
{
    curl_off_t sent_us = 0; /* when the request was sent; 0: never (on a reused connection too) */

    return curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &sent_us) == CURLE_OK &&
           sent_us > 0;
}

/* Whether a transfer's end says to try the read's next candidate: this one could not be
 * reached (a connection refused, or never made within FORWARD_CONNECT_TIMEOUT_MS: a host
 * that is down drops what is sent to it), did not answer within the try's share of the read's
 * time (try_limit), does not serve the partition (508), or does not answer now (503: it is
 * stopping, say, and its last heartbeat has not said so yet). */
static int try_next(const struct fwd *w, CURLcode rc, long status)
{
    if (rc == CURLE_OPERATION_TIMEDOUT) /* the try's time ran out: is the read's left? */
        return ferry_clock_ms() < w->deadline_ms;
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           (rc == CURLE_OK && (status == 508 || status == 503));
}

int ferry_forward_client_status(int status)
{
    if (status == 504)
        return 504;
    if (status == 0 || status == 429 || status == 503 || status == 508)
        return 503;
    return 502;
}

/* Answers a read whose transfer ended and that goes to no other candidate: the holder's
 * answer, or ferry's own error. Returns the status answered. */
static int answer_ended(struct fwd *w, CURLcode rc, long status)
{
    if (rc == CURLE_OK && status != 508) {
        relay(w, (int)status);
        return (int)status;
    }
    if (w->too_large) {
        fail(w, 502, "the answer of the instance holding the key's partition was too large");
        return 502;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && /* a holder was asked, or the read's time ran out */
        (request_sent(w->easy) || ferry_clock_ms() >= w->deadline_ms)) {
        fail(w, 504, "the instance holding the key's partition did not answer in time");
        return 504;
    }
    if (rc == CURLE_OK) /* every candidate answered 508: the partition is moving */
        fail(w, 503, "no instance serves the key's partition now");
    else
        fail(w, 503, "no instance holding the key's partition could be reached");
    return 503;
}

/* A transfer ended: relays the answer, or tries the next holder when this one could not be
 * reached or does not serve the partition. */
static void ended(ferry_table_forward *f, struct fwd *w, CURLcode rc)
{
    long status = 0;
    int next;

    curl_multi_remove_handle(f->multi, w->easy);
    if (rc == CURLE_OK)
        curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &status);
    next = try_next(w, rc, status);
    count(f, w, !next && (rc == CURLE_OK || w->too_large));
    if (next && aim(f, w) == 0) {
        if (curl_multi_add_handle(f->multi, w->easy) == CURLM_OK)
            return;
        rc = CURLE_OUT_OF_MEMORY; /* answered 503, as when no holder could be reached */
    }
    ferry_forward_finish(f, w, answer_ended(w, rc, status));
}

void ferry_forward_start(ferry_table_forward *f, struct fwd *w)
{
    if (setup(f, w) == 0 && curl_multi_add_handle(f->multi, w->easy) == CURLM_OK) {
        link_running(f, w);
    } else if (ferry_clock_ms() >= w->deadline_ms) { /* a batch it was in took its time */
        fail(w, 504, "the instance holding the key's partition did not answer in time");
        ferry_forward_finish(f, w, 504);
    } else {
        fail(w, 503, "cannot start forwarding the read");
        ferry_forward_finish(f, w, 503);
    }
}

static void take_queue(ferry_table_forward *f)
{
    struct fwd *w;

    pthread_mutex_lock(&f->lock);
    w = f->queue;
    f->queue = NULL;
    pthread_mutex_unlock(&f->lock);
    ferry_forward_batch_start(f, w);
}

static void collect(ferry_table_forward *f)
{
    CURLMsg *m;
    int left;

    for (m = curl_multi_info_read(f->multi, &left); m; m = curl_multi_info_read(f->multi, &left)) {
        struct fwd *w = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
        ended(f, w, m->data.result);
    }
}

static void *forward_main(void *arg)
{
    ferry_table_forward *f = arg;
    int running = 0;

    while (!atomic_load(&f->stop)) {
        take_queue(f);
        curl_multi_perform(f->multi, &running);
        collect(f);
        curl_multi_poll(f->multi, NULL, 0, FORWARD_IDLE_WAIT_MS, NULL);
    }
    return NULL;
}

/* ---- lifecycle ---- */

ferry_table_forward *ferry_table_forward_new(const char *instance, const char *peer_key,
                                             char *errstr, size_t errstr_size)
{
    ferry_table_forward *f = calloc(1, sizeof(*f));
    size_t auth_size = peer_key ? strlen(peer_key) + 32 : 0;

    if (f)
        f->multi = curl_multi_init();
    if (f && peer_key)
        f->auth = malloc(auth_size);
    if (!f || !f->multi || (peer_key && !f->auth)) {
        snprintf(errstr, errstr_size, "out of memory for the forwarder");
        ferry_table_forward_destroy(f);
        return NULL;
    }
    if (peer_key)
        snprintf(f->auth, auth_size, "Authorization: Bearer %s", peer_key);
    snprintf(f->hop, sizeof(f->hop), "%s: %s", FERRY_FORWARD_HOP_HEADER, instance);
    pthread_mutex_init(&f->lock, NULL);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, 256L);
    return f;
}

int ferry_table_forward_start(ferry_table_forward *f, char *errstr, size_t errstr_size)
{
    int rc = pthread_create(&f->thread, NULL, forward_main, f);

    if (rc != 0) {
        snprintf(errstr, errstr_size, "cannot start the forwarder thread: %s", strerror(rc));
        return -1;
    }
    f->started = 1;
    return 0;
}

void ferry_table_forward_stop(ferry_table_forward *f)
{
    struct fwd *w;

    if (!f || atomic_exchange(&f->stop, 1))
        return;
    if (f->started) {
        curl_multi_wakeup(f->multi);
        pthread_join(f->thread, NULL);
    }
    f->started = 0;
    while (f->running) {
        w = f->running;
        curl_multi_remove_handle(f->multi, w->easy);
        fail(w, 503, "ferry is shutting down");
        ferry_forward_finish(f, w, 503);
    }
    pthread_mutex_lock(&f->lock);
    w = f->queue;
    f->queue = NULL;
    pthread_mutex_unlock(&f->lock);
    while (w) {
        struct fwd *next = w->next;
        fail(w, 503, "ferry is shutting down");
        ferry_forward_finish(f, w, 503);
        w = next;
    }
}

void ferry_table_forward_destroy(ferry_table_forward *f)
{
    if (!f)
        return;
    ferry_table_forward_stop(f);
    while (f->nspare)
        curl_easy_cleanup(f->spare[--f->nspare]);
    if (f->multi)
        curl_multi_cleanup(f->multi);
    pthread_mutex_destroy(&f->lock);
    free(f->auth);
    free(f);
}

/* Adds "Name: value" for each passed header the client sent, the hop header and the peer
 * key. Returns 0, or -1 when out of memory. */
static int add_headers(ferry_table_forward *f, struct fwd *w, ferry_http_req *req)
{
    struct curl_slist *l;

    for (size_t i = 0; req && passed_headers[i]; i++) {
        const char *v = ferry_http_req_header(req, passed_headers[i]);
        struct ferry_buf line;

        if (!v)
            continue;
        /* whole, however long: a cut If-None-Match would lose the tag that matches */
        ferry_buf_init(&line, strlen(passed_headers[i]) + 2 + strlen(v));
        l = NULL;
        if (ferry_buf_addf(&line, "%s: %s", passed_headers[i], v) == 0)
            l = curl_slist_append(w->headers, line.data);
        ferry_buf_release(&line);
        if (!l)
            return -1;
        w->headers = l;
    }
    l = curl_slist_append(w->headers, f->hop);
    if (l && f->auth)
        l = curl_slist_append(l, f->auth);
    if (l)
        w->headers = l;
    return l ? 0 : -1;
}

struct fwd *ferry_forward_fwd_new(ferry_table_forward *f, ferry_http_req *req,
                                  const struct ferry_forward_request *fr)
{
    struct fwd *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    ferry_buf_init(&w->body, FERRY_FORWARD_ANSWER_MAX);
    ferry_buf_init(&w->relayed, FORWARD_HEADERS_MAX);
    w->f = f;
    w->req = req;
    w->path = strdup(fr->path_and_query);
    w->deadline_ms = ferry_clock_ms() + fr->timeout_ms;
    w->wait_ms = fr->wait_ms;
    w->done = fr->done;
    w->answer = fr->answer;
    w->arg = fr->arg;
    if (fr->body) {
        w->post = malloc(fr->body_len ? fr->body_len : 1);
        if (!w->post) {
            fwd_free(w);
            return NULL;
        }
        memcpy(w->post, fr->body, fr->body_len);
        w->post_len = fr->body_len;
    }
    for (size_t i = 0; i < fr->nbases && i < FERRY_FORWARD_CANDIDATES_MAX; i++)
        snprintf(w->bases[w->nbases++], sizeof(w->bases[0]), "%s", fr->bases[i]);
    w->holders = w->nbases;
    if (w->post)
        w->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (w->post && !w->headers) {
        fwd_free(w);
        return NULL;
    }
    if (!w->path || add_headers(f, w, req)) {
        fwd_free(w);
        return NULL;
    }
    return w;
}

/* Queues a read for the forwarder thread. Returns 0, or -1 when it was not taken (key: a
 * plain GET's key, or NULL). */
static int submit(ferry_table_forward *f, ferry_http_req *req,
                  const struct ferry_forward_request *fr, const char *table, const void *key,
                  size_t len)
{
    struct fwd *w;
    int was_empty, stopped;

    if (atomic_load(&f->stop) || !fr->nbases)
        return -1;
    if (atomic_fetch_add(&f->in_flight, 1) >= FORWARD_IN_FLIGHT_MAX) {
        atomic_fetch_sub(&f->in_flight, 1);
        return -1;
    }
    w = ferry_forward_fwd_new(f, req, fr);
    if (w && key) {
        w->batch_table = strdup(table);
        w->batch_key = malloc(len ? len : 1);
        if (w->batch_key)
            memcpy(w->batch_key, key, len);
        w->batch_key_len = len;
    }
    if (!w || (key && (!w->batch_table || !w->batch_key))) {
        fwd_free(w);
        atomic_fetch_sub(&f->in_flight, 1);
        return -1;
    }
    /* stop sets f->stop before it takes the queue under this lock, so a read is either in
     * what stop takes and answers, or sees f->stop here and is refused like any other */
    pthread_mutex_lock(&f->lock);
    stopped = atomic_load(&f->stop);
    if (!stopped) {
        if (req)
            ferry_http_suspend(req); /* before the forwarder thread can answer it */
        w->next = f->queue;
        f->queue = w;
    }
    was_empty = !stopped && !w->next;
    pthread_mutex_unlock(&f->lock);
    if (stopped) {
        fwd_free(w);
        atomic_fetch_sub(&f->in_flight, 1);
        return -1;
    }
    if (was_empty) /* else a wakeup is on its way already, or the queue is being taken */
        curl_multi_wakeup(f->multi);
    return 0;
}

int ferry_table_forward_read(ferry_table_forward *f, ferry_http_req *req,
                             const struct ferry_forward_request *fr)
{
    return submit(f, req, fr, NULL, NULL, 0);
}

int ferry_table_forward_get(ferry_table_forward *f, ferry_http_req *req,
                            const struct ferry_forward_request *fr, const char *table,
                            const void *key, size_t len)
{
    return submit(f, req, fr, table, key, len);
}

int ferry_table_forward_call(ferry_table_forward *f, const struct ferry_forward_request *fr)
{
    return fr->answer ? ferry_table_forward_read(f, NULL, fr) : -1;
}
