/*
 * fanout.c - the subscriptions' thread and lives: admission, the loop, heartbeats, the end of a
 * subscription and of them all, and the apply thread's side (see fanout.h for the guarantees,
 * fanout_int.h for the log the thread walks).
 *
 * Each table has a commit lock, held by the apply thread around an LMDB commit and the queueing
 * of what it changed, and by this thread while it moves that queue into the log and reads a
 * state. Key subscriptions sit in hash buckets, prefix subscriptions in one list; one whose
 * state is being sent is also on the table's list of states. A subscription that ends (its
 * client went away or fell behind, or ferry stops) has its stream closed at once and is freed
 * at the end of the loop's turn, so that no list being walked loses an element.
 */
#include "table/fanout.h"
#include "core/clock.h"
#include "core/log.h"
#include "table/fanout_int.h"
#include "table/partitioner.h"
#include "table/reply.h"
#include "table/sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FANOUT_HEARTBEAT_MAX_MS 15000

/* Wakes the thread: something changed, or (stop) it is to end. */
static void signal_thread(ferry_table_fanout *f, int stop)
{
    pthread_mutex_lock(&f->lock);
    f->changed = 1;
    f->stopping |= stop;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

/* One subscription fewer (the count went up at admission). */
static void uncount_subscriber(struct table_fanout *tf)
{
    atomic_fetch_sub(&tf->count, 1);
    ferry_gauge_add(tf->subscribers, -1);
}

struct sub_list *ferry_fanout_bucket(struct table_fanout *tf, const void *key, size_t len)
{
    return &tf->buckets[ferry_partitioner_murmur2(key, len, FANOUT_BUCKETS)];
}

void ferry_fanout_list_state(struct table_fanout *tf, struct sub *s)
{
    if (!s->in_states)
        TAILQ_INSERT_TAIL(&tf->states, s, state_link);
    s->in_states = 1;
}

void ferry_fanout_unlist_state(struct table_fanout *tf, struct sub *s)
{
    if (s->in_states)
        TAILQ_REMOVE(&tf->states, s, state_link);
    s->in_states = 0;
}

/* A stream's notification, on a server thread (or this one): hands s to the thread. */
static void on_stream(void *arg, unsigned what)
{
    struct sub *s = arg;
    ferry_table_fanout *f = s->tf->owner;

    pthread_mutex_lock(&f->lock);
    s->notified |= what;
    if (!s->in_woken)
        TAILQ_INSERT_TAIL(&f->woken, s, woken_link);
    s->in_woken = 1;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

/* ---- ending subscriptions ---- */

static void sub_free(struct sub *s)
{
    free(s->key);
    free(s);
}

void ferry_fanout_end(struct sub *s, const char *last, size_t len)
{
    if (s->dead)
        return;
    s->dead = 1;
    ferry_http_stream_close(s->stream, last, len);
    uncount_subscriber(s->tf);
    TAILQ_INSERT_TAIL(&s->tf->owner->dead, s, dead_link);
}

void ferry_fanout_end_notice(struct sub *s, const char *event, const char *reason,
                             const char *message)
{
    struct ferry_buf text;

    ferry_buf_init(&text, 4096);
    ferry_sse_notice(&text, event, reason, message);
    ferry_fanout_end(s, text.data, text.len);
    ferry_buf_release(&text);
}

void ferry_fanout_end_slow(struct sub *s, const char *why)
{
    char msg[512];

    snprintf(msg, sizeof(msg), "the subscriber fell behind: %s; reconnect to get the current state",
             why);
    ferry_counter_add(s->tf->dropped, 1);
    ferry_fanout_end_notice(s, "error", "slow_subscriber", msg);
}

/* Frees the subscriptions that ended this turn. */
static void reap(ferry_table_fanout *f)
{
    while (!TAILQ_EMPTY(&f->dead)) {
        struct sub *s = TAILQ_FIRST(&f->dead);
        struct table_fanout *tf = s->tf;
        TAILQ_REMOVE(&f->dead, s, dead_link);
        TAILQ_REMOVE(s->prefix ? &tf->prefixes : ferry_fanout_bucket(tf, s->key, s->key_len), s,
                     link);
        ferry_fanout_unlist_state(tf, s);
        if (s->in_todo)
            TAILQ_REMOVE(&f->todo, s, todo_link);
        pthread_mutex_lock(&f->lock); /* its stream no longer notifies: it stays out */
        if (s->in_woken)
            TAILQ_REMOVE(&f->woken, s, woken_link);
        pthread_mutex_unlock(&f->lock);
        sub_free(s);
    }
}

/* ---- writing ---- */

void ferry_fanout_stall(struct sub *s)
{
    int r = ferry_http_stream_want_drain(s->stream);

    if (r < 0) {
        ferry_fanout_end(s, NULL, 0);
        return;
    }
    s->waiting = 1;
    if (!s->stalled_ms) {
        s->stalled_ms = ferry_clock_ms();
        s->stall_taken = ferry_http_stream_taken(s->stream);
    }
    if (r == 1) /* drained meanwhile: no notification will come */
        on_stream(s, FERRY_HTTP_STREAM_DRAINED);
}

int ferry_fanout_write(struct sub *s, const char *text, size_t len, size_t items)
{
    int r = ferry_http_stream_write(s->stream, text, len, items);

    if (r == FERRY_HTTP_STREAM_OK) {
        s->wrote_ms = ferry_clock_ms();
        ferry_counter_add(s->tf->sent, items);
        return 0;
    }
    if (r == FERRY_HTTP_STREAM_FULL) {
        ferry_fanout_stall(s);
        return s->dead ? -1 : 1;
    }
    ferry_fanout_end(s, NULL, 0);
    return -1;
}

/* ---- the thread ---- */

static void admit(struct sub *s)
{
    struct table_fanout *tf = s->tf;

    if (s->prefix) {
        TAILQ_INSERT_TAIL(&tf->prefixes, s, link);
        s->reset = s->resume;
    } else {
        TAILQ_INSERT_TAIL(ferry_fanout_bucket(tf, s->key, s->key_len), s, link);
    }
    s->wrote_ms = ferry_clock_ms();
    ferry_fanout_list_state(tf, s);
}

static void admit_all(struct sub_list *incoming)
{
    while (!TAILQ_EMPTY(incoming)) {
        struct sub *s = TAILQ_FIRST(incoming);
        TAILQ_REMOVE(incoming, s, link);
        admit(s);
    }
}

/* Takes the new subscriptions and moves the notified ones to the thread's list. Under
 * f->lock. */
static void take_news(ferry_table_fanout *f, struct sub_list *incoming)
{
    TAILQ_INIT(incoming);
    TAILQ_CONCAT(incoming, &f->incoming, link);
    while (!TAILQ_EMPTY(&f->woken)) {
        struct sub *s = TAILQ_FIRST(&f->woken);
        TAILQ_REMOVE(&f->woken, s, woken_link);
        s->in_woken = 0;
        if (!s->in_todo)
            TAILQ_INSERT_TAIL(&f->todo, s, todo_link);
        s->in_todo = 1;
    }
}

/* Acts on what the streams said: a client gone ends its subscription, a drained queue lets it
 * go on. */
static void handle_todo(ferry_table_fanout *f)
{
    while (!TAILQ_EMPTY(&f->todo)) {
        struct sub *s = TAILQ_FIRST(&f->todo);
        unsigned what;
        TAILQ_REMOVE(&f->todo, s, todo_link);
        s->in_todo = 0;
        pthread_mutex_lock(&f->lock);
        what = s->notified;
        s->notified = 0;
        pthread_mutex_unlock(&f->lock);
        if (what & FERRY_HTTP_STREAM_GONE) {
            ferry_fanout_end(s, NULL, 0);
        } else if (what & FERRY_HTTP_STREAM_DRAINED) {
            s->waiting = 0;
            s->stalled_ms = 0;
        }
    }
}

static void send_states(struct table_fanout *tf)
{
    struct sub *s;

    /* A step may end subscriptions, but they stay listed until the turn is over. */
    TAILQ_FOREACH(s, &tf->states, state_link)
        if (!s->dead && !s->waiting && !tf->blocked)
            ferry_fanout_state_step(tf, s);
}

/* Nonzero when a state can be sent without waiting for anything. */
static int states_to_send(const ferry_table_fanout *f)
{
    for (size_t i = 0; i < f->tables->count; i++) {
        const struct table_fanout *tf = &f->per_table[i];
        const struct sub *s;
        if (tf->blocked)
            continue;
        TAILQ_FOREACH(s, &tf->states, state_link)
            if (!s->dead && !s->waiting)
                return 1;
    }
    return 0;
}

/* Whether stalled s's client has taken nothing of its queue for longer than the stall limit. A
 * client that reads, however slowly, starts that time afresh: it drains a full queue in the
 * end, which may take longer than the limit. */
static int stalled_too_long(const ferry_table_fanout *f, struct sub *s, int64_t now)
{
    uint64_t taken = ferry_http_stream_taken(s->stream);

    if (taken != s->stall_taken) {
        s->stall_taken = taken;
        s->stalled_ms = now;
        return 0;
    }
    return now - s->stalled_ms > f->stall_ms;
}

/* Writes a comment to each subscription idle for half the heartbeat, and ends those stalled
 * too long: their client does not read. */
static void heartbeats(ferry_table_fanout *f, struct table_fanout *tf)
{
    int64_t now = ferry_clock_ms(), idle = now - f->heartbeat_ms / 2;
    char why[128];

    snprintf(why, sizeof(why),
             "its queue of %" PRId64 " events (limits.subscriber_queue) stayed "
             "full, its client reading nothing, for %" PRId64 " ms",
             tf->t->cfg->limits.subscriber_queue, f->stall_ms);
    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &tf->buckets[b] : &tf->prefixes;
        struct sub *s;
        TAILQ_FOREACH(s, list, link) {
            if (!s->dead && s->waiting && stalled_too_long(f, s, now))
                ferry_fanout_end_slow(s, why);
            else if (!s->dead && s->wrote_ms <= idle &&
                     ferry_http_stream_write(s->stream, FERRY_SSE_KEEPALIVE,
                                             strlen(FERRY_SSE_KEEPALIVE),
                                             1) != FERRY_HTTP_STREAM_CLOSED)
                s->wrote_ms = now;
        }
    }
}

/* The new commits into the log, and their changes to whoever can take them. */
static void send_changes(struct table_fanout *tf)
{
    pthread_mutex_lock(&tf->commit_lock);
    ferry_fanout_absorb(tf);
    pthread_mutex_unlock(&tf->commit_lock);
    ferry_fanout_walk(tf, NULL);
}

/* One turn over a table: the changes, the states, the log's head freed. */
static void serve_table(struct table_fanout *tf, int changed)
{
    if (changed)
        tf->blocked = 0;
    send_changes(tf);
    send_states(tf);
    ferry_fanout_trim(tf);
}

static void serve(ferry_table_fanout *f, int changed, int64_t *next_beat)
{
    int beat = ferry_clock_ms() >= *next_beat;

    for (size_t i = 0; i < f->tables->count; i++) {
        serve_table(&f->per_table[i], changed);
        if (beat)
            heartbeats(f, &f->per_table[i]);
    }
    if (beat)
        *next_beat = ferry_clock_ms() + f->heartbeat_ms / 2;
    reap(f);
}

static void *fanout_main(void *arg)
{
    ferry_table_fanout *f = arg;
    int64_t next_beat = ferry_clock_ms() + f->heartbeat_ms / 2;
    struct sub_list incoming;
    int changed;

    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        take_news(f, &incoming);
        changed = f->changed;
        f->changed = 0;
        pthread_mutex_unlock(&f->lock);
        admit_all(&incoming);
        handle_todo(f);
        serve(f, changed, &next_beat);
        pthread_mutex_lock(&f->lock);
        if (!f->changed && !f->stopping && TAILQ_EMPTY(&f->incoming) && TAILQ_EMPTY(&f->woken) &&
            !states_to_send(f)) {
            struct timespec until = ferry_clock_timespec(next_beat);
            pthread_cond_timedwait(&f->wake, &f->lock, &until);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* ---- stopping ---- */

static void end_list(struct sub_list *list)
{
    struct sub *s;

    TAILQ_FOREACH(s, list, link)
        if (!s->dead)
            ferry_fanout_end_notice(
                s, "shutdown", "shutdown",
                "ferry is shutting down: reconnect to another instance or later");
}

/* Sends the apply threads' last commits, then ends every subscription, admitted or not. The
 * thread has stopped. */
static void end_all(ferry_table_fanout *f)
{
    struct sub_list incoming;

    pthread_mutex_lock(&f->lock);
    take_news(f, &incoming);
    f->intake_closed = 1;
    pthread_mutex_unlock(&f->lock);
    admit_all(&incoming);
    handle_todo(f);
    for (size_t i = 0; i < f->tables->count; i++) {
        struct table_fanout *tf = &f->per_table[i];
        send_changes(tf);
        for (size_t b = 0; b < FANOUT_BUCKETS; b++)
            end_list(&tf->buckets[b]);
        end_list(&tf->prefixes);
        ferry_fanout_trim(tf);
    }
    reap(f);
}

void ferry_table_fanout_stop(ferry_table_fanout *f)
{
    if (!f)
        return;
    signal_thread(f, 1);
    if (f->thread_started)
        pthread_join(f->thread, NULL);
    f->thread_started = 0;
    end_all(f);
}

/* ---- subscribing (server threads) ---- */

/* Ends a subscription that came after the last ones were ended (shutdown). */
static void end_unadmitted(struct sub *s)
{
    ferry_table_fanout *f = s->tf->owner;
    struct ferry_buf text;

    ferry_buf_init(&text, 4096);
    ferry_sse_notice(&text, "shutdown", "shutdown", "ferry is shutting down");
    ferry_http_stream_close(s->stream, text.data, text.len);
    ferry_buf_release(&text);
    pthread_mutex_lock(&f->lock); /* nothing takes the woken any more */
    if (s->in_woken)
        TAILQ_REMOVE(&f->woken, s, woken_link);
    pthread_mutex_unlock(&f->lock);
    uncount_subscriber(s->tf);
    sub_free(s);
}

static struct sub *sub_new(struct table_fanout *tf, const struct ferry_table_subscription *sr)
{
    struct sub *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->key = malloc(sr->key_len + 1);
    if (!s->key) {
        free(s);
        return NULL;
    }
    if (sr->key_len)
        memcpy(s->key, sr->key, sr->key_len);
    s->tf = tf;
    s->key_len = sr->key_len;
    s->prefix = sr->prefix;
    s->resume = sr->resume;
    s->last = sr->last;
    s->phase = PHASE_NEW;
    return s;
}

static int refuse(ferry_http_req *req, int status, const char *what, const char *table)
{
    ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
    ferry_http_respond_error(req, status, 0, "table '%s': %s", table, what);
    return status;
}

/* The headers of a stream's answer, also given to a HEAD of one. */
static void add_stream_headers(struct table_fanout *tf, ferry_http_req *req)
{
    ferry_http_add_header(req, "Cache-Control", "no-cache");
    ferry_http_add_header(req, "X-Accel-Buffering", "no"); /* nginx: pass events on at once */
    if (atomic_load(&tf->t->rebuilding))
        ferry_http_add_header(req, "Ferry-Rebuilding", "true");
}

/* Starts s's stream, answering req. Returns 0, or -1 when out of memory. */
static int start_stream(struct sub *s, ferry_http_req *req)
{
    const struct ferry_table_limits_config *lim = &s->tf->t->cfg->limits;
    struct ferry_http_stream_options opts = {(size_t)lim->subscriber_queue, FANOUT_QUEUE_BYTES,
                                             on_stream, s};

    add_stream_headers(s->tf, req);
    s->stream = ferry_http_stream_start(req, 200, "text/event-stream", &opts);
    return s->stream ? 0 : -1;
}

int ferry_table_fanout_subscribe(struct table *t, ferry_http_req *req,
                                 const struct ferry_table_subscription *sr)
{
    struct table_fanout *tf = t->fanout;
    ferry_table_fanout *f = tf->owner;
    struct sub *s;
    int admitted;

    pthread_mutex_lock(&f->lock);
    admitted = !f->stopping;
    pthread_mutex_unlock(&f->lock);
    if (!admitted)
        return refuse(req, 503, "ferry is shutting down", t->cfg->name);
    if (atomic_fetch_add(&tf->count, 1) >= (size_t)t->cfg->limits.max_subscribers) {
        atomic_fetch_sub(&tf->count, 1);
        return refuse(req, 429, "limits.max_subscribers are all taken", t->cfg->name);
    }
    if (strcmp(ferry_http_req_method(req), "HEAD") == 0) {
        atomic_fetch_sub(&tf->count, 1); /* the headers a GET would get, and no stream */
        add_stream_headers(tf, req);
        ferry_http_respond(req, 200, "text/event-stream", "", 0);
        return 200;
    }
    ferry_gauge_add(tf->subscribers, 1);
    s = sub_new(tf, sr);
    if (!s || start_stream(s, req)) {
        if (s)
            sub_free(s);
        uncount_subscriber(tf);
        return refuse(req, 503, "out of memory", t->cfg->name);
    }
    pthread_mutex_lock(&f->lock);
    admitted = !f->intake_closed;
    if (admitted) {
        TAILQ_INSERT_TAIL(&f->incoming, s, link);
        f->changed = 1; /* a table blocked on a commit made for nobody looks again */
        pthread_cond_signal(&f->wake);
    }
    pthread_mutex_unlock(&f->lock);
    if (!admitted)
        end_unadmitted(s);
    return 200;
}

/* ---- the apply thread ---- */

int ferry_table_fanout_batch_open(struct table *t)
{
    struct table_fanout *tf = t->fanout;
    int wanted;

    pthread_mutex_lock(&tf->commit_lock);
    wanted = atomic_load(&tf->count) > 0;
    tf->open_unrecorded = !wanted;
    pthread_mutex_unlock(&tf->commit_lock);
    return wanted;
}

void ferry_table_fanout_batch_dropped(struct table *t)
{
    struct table_fanout *tf = t->fanout;
    int blocked;

    pthread_mutex_lock(&tf->commit_lock);
    blocked = tf->open_unrecorded;
    tf->open_unrecorded = 0;
    pthread_mutex_unlock(&tf->commit_lock);
    if (blocked && atomic_load(&tf->count))
        signal_thread(tf->owner, 0);
}

/* Copies what the apply thread kept, for the log; NULL when it is incomplete or too large. */
static struct change_batch *batch_copy(const struct ferry_table_batch *b)
{
    size_t bytes = sizeof(struct change_batch) + b->n * sizeof(struct change) + b->keys_len;
    struct change_batch *cb = b->complete && bytes <= FANOUT_LOG_MAX ? malloc(bytes) : NULL;

    if (!cb)
        return NULL;
    memset(cb, 0, sizeof(*cb));
    cb->n = b->n;
    cb->bytes = bytes;
    cb->changes = (struct change *)(cb + 1);
    cb->keys = (char *)(cb->changes + b->n);
    if (b->keys_len)
        memcpy(cb->keys, b->keys, b->keys_len);
    for (size_t i = 0; i < b->n; i++)
        cb->changes[i] = (struct change){b->key_at[i], b->key_len[i], b->marks[i]};
    return cb;
}

/* Queues cb for the thread (NULL: a batch that could not be kept). Past FANOUT_LOG_MAX, what is
 * queued gives way to a lost batch. Under commit_lock. */
static void queue_batch(struct table_fanout *tf, struct change_batch *cb)
{
    if (!cb || tf->backlog + cb->bytes > FANOUT_LOG_MAX) {
        free(cb);
        ferry_fanout_free_batches(&tf->batches);
        tf->backlog = 0;
        tf->lost = 1;
        return;
    }
    STAILQ_INSERT_TAIL(&tf->batches, cb, link);
    tf->backlog += cb->bytes;
}

int ferry_table_fanout_commit(struct table *t, ferry_store *store,
                              const struct ferry_table_batch *b, char *errstr, size_t errstr_size)
{
    struct table_fanout *tf = t->fanout;
    /* a rebuild's store is not read before it is swapped in (then every state is resent) */
    int kept = store == t->store && b->recorded;
    struct change_batch *cb = kept ? batch_copy(b) : NULL;
    int r, wake;

    pthread_mutex_lock(&tf->commit_lock);
    r = ferry_store_batch_commit(store, errstr, errstr_size);
    wake = tf->open_unrecorded && atomic_load(&tf->count) > 0;
    tf->open_unrecorded = 0;
    /* Counted under the lock: a subscriber admitted since its state was read before this
     * commit takes the batch's changes from the log. */
    if (r == FERRY_STORE_OK && kept && atomic_load(&tf->count) > 0) {
        queue_batch(tf, cb);
        cb = NULL;
        wake = 1;
    }
    pthread_mutex_unlock(&tf->commit_lock);
    free(cb);
    if (wake)
        signal_thread(tf->owner, 0);
    return r;
}

void ferry_table_fanout_resync(struct table *t)
{
    struct table_fanout *tf = t->fanout;

    pthread_mutex_lock(&tf->commit_lock);
    queue_batch(tf, NULL);
    pthread_mutex_unlock(&tf->commit_lock);
    signal_thread(tf->owner, 0);
}

/* ---- lifecycle ---- */

static void register_metrics(struct table_fanout *tf)
{
    char lbl[300];
    ferry_metrics *m = tf->t->metrics;

    snprintf(lbl, sizeof(lbl), "table=\"%s\"", tf->t->cfg->name);
    tf->subscribers = ferry_metrics_gauge(m, "ferry_table_subscribers",
                                          "Server-Sent Events subscriptions open.", lbl);
    tf->sent =
        ferry_metrics_counter(m, "ferry_table_events_sent_total",
                              "Events sent to subscribers: rows of states and changes.", lbl);
    tf->dropped = ferry_metrics_counter(m, "ferry_table_subscribers_dropped_total",
                                        "Subscribers disconnected for not keeping up.", lbl);
}

static void table_fanout_init(ferry_table_fanout *f, struct table_fanout *tf, struct table *t)
{
    tf->owner = f;
    tf->t = t;
    pthread_mutex_init(&tf->commit_lock, NULL);
    STAILQ_INIT(&tf->batches);
    STAILQ_INIT(&tf->log);
    for (size_t b = 0; b < FANOUT_BUCKETS; b++)
        TAILQ_INIT(&tf->buckets[b]);
    TAILQ_INIT(&tf->prefixes);
    TAILQ_INIT(&tf->states);
    ferry_buf_init(&tf->event, FANOUT_EVENT_MAX);
    register_metrics(tf);
    t->fanout = tf;
}

ferry_table_fanout *ferry_table_fanout_new(ferry_tables *ts, int64_t connection_timeout_ms,
                                           char *errstr, size_t errstr_size)
{
    ferry_table_fanout *f = calloc(1, sizeof(*f));

    if (f)
        f->per_table = calloc(ts->count ? ts->count : 1, sizeof(*f->per_table));
    if (!f || !f->per_table) {
        snprintf(errstr, errstr_size, "out of memory for the tables' subscriptions");
        free(f);
        return NULL;
    }
    f->tables = ts;
    f->stall_ms = connection_timeout_ms / 2;
    f->heartbeat_ms = f->stall_ms < FANOUT_HEARTBEAT_MAX_MS ? f->stall_ms : FANOUT_HEARTBEAT_MAX_MS;
    pthread_mutex_init(&f->lock, NULL);
    ferry_clock_cond_init(&f->wake);
    TAILQ_INIT(&f->incoming);
    TAILQ_INIT(&f->woken);
    TAILQ_INIT(&f->todo);
    TAILQ_INIT(&f->dead);
    for (size_t i = 0; i < ts->count; i++)
        table_fanout_init(f, &f->per_table[i], &ts->tables[i]);
    return f;
}

int ferry_table_fanout_start(ferry_table_fanout *f, char *errstr, size_t errstr_size)
{
    f->thread_started = pthread_create(&f->thread, NULL, fanout_main, f) == 0;
    if (!f->thread_started)
        snprintf(errstr, errstr_size, "cannot start the tables' subscriptions thread");
    return f->thread_started ? 0 : -1;
}

void ferry_table_fanout_destroy(ferry_table_fanout *f)
{
    if (!f)
        return;
    ferry_table_fanout_stop(f);
    for (size_t i = 0; i < f->tables->count; i++) {
        struct table_fanout *tf = &f->per_table[i];
        ferry_fanout_free_batches(&tf->batches);
        ferry_fanout_free_batches(&tf->log);
        ferry_buf_release(&tf->event);
        pthread_mutex_destroy(&tf->commit_lock);
        tf->t->fanout = NULL;
    }
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f->per_table);
    free(f);
}
