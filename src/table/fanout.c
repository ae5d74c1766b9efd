/*
 * fanout.c - the subscriptions' thread: states, changes in commit order, heartbeats and
 * shutdown (see fanout.h for the guarantees and the threads).
 *
 * Each table has a commit lock, held by the apply thread around an LMDB commit and the queueing
 * of what it changed, and by this thread while it takes the queue and reads a state: a state
 * read then is exactly the store after the changes taken. Key subscriptions sit in hash buckets,
 * prefix subscriptions in one list; a subscription whose state is being sent is also on the
 * table's list of states. A subscription that ends (its client went away, it fell behind, or
 * ferry stops) has its stream closed at once and is freed at the end of the loop's turn, so
 * that no list being walked loses an element.
 */
#include "table/fanout.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "table/partitioner.h"
#include "table/reply.h"
#include "table/sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define FANOUT_BUCKETS 256                    /* key subscriptions' buckets, per table */
#define FANOUT_PAGE_ROWS 256                  /* rows of a prefix's state per read */
#define FANOUT_PAGE_BYTES (4 * 1024 * 1024)   /* ...or fewer once their events pass this */
#define FANOUT_EVENT_MAX (64 * 1024 * 1024)   /* one event's text; values are Kafka records */
#define FANOUT_QUEUE_BYTES (8 * 1024 * 1024)  /* queued for one subscriber, beside the count */
#define FANOUT_BACKLOG_MAX (64 * 1024 * 1024) /* changes queued and not yet sent, per table */
#define FANOUT_HEARTBEAT_MAX_MS 15000

enum phase {
    PHASE_NEW,   /* waits for its state */
    PHASE_STATE, /* a prefix's state is being sent */
    PHASE_LIVE,  /* gets every change */
};

struct change {
    size_t key_at, key_len;
    struct ferry_table_mark mark;
};

/* What one commit changed, queued for the thread. */
struct change_batch {
    STAILQ_ENTRY(change_batch) link;
    size_t n, bytes;
    struct change *changes;
    char *keys;
};

STAILQ_HEAD(batch_queue, change_batch);

struct sub {
    struct table_fanout *tf;
    ferry_http_stream *stream;
    char *key; /* the key or the prefix */
    size_t key_len;
    int prefix;
    int resume;
    int32_t last_partition;
    int64_t last_offset;
    enum phase phase;
    int reset;                                    /* the next state begins with `event: reset` */
    unsigned restarts;                            /* times a lost batch restarted its state */
    int waiting;                                  /* for its queue to drain */
    int dead;                                     /* ended: freed at the end of the turn */
    unsigned char cursor[FERRY_STORE_CURSOR_MAX]; /* PHASE_STATE: the last row sent */
    size_t cursor_len;
    uint64_t state_keys;
    /* key subscriptions: the last state sent */
    int sent, sent_deleted;
    int32_t sent_partition;
    int64_t sent_offset;
    int64_t wrote_ms;
    TAILQ_ENTRY(sub) link;       /* a bucket, the prefixes, or the incoming list */
    TAILQ_ENTRY(sub) state_link; /* the table's states */
    TAILQ_ENTRY(sub) todo_link;  /* the thread's notified subscriptions */
    TAILQ_ENTRY(sub) dead_link;
    int in_states, in_todo;
    /* under the fanout's lock */
    TAILQ_ENTRY(sub) woken_link;
    int in_woken;
    unsigned notified;
};

TAILQ_HEAD(sub_list, sub);

/* One table's subscriptions. */
struct table_fanout {
    ferry_table_fanout *owner;
    struct table *t;
    atomic_size_t count; /* subscriptions, from the handler's admission to the end */
    pthread_mutex_t commit_lock;
    /* under commit_lock */
    struct batch_queue batches;
    size_t backlog;      /* bytes of the queued batches */
    int resync;          /* a batch could not be queued: every subscription resends its state */
    int open_unrecorded; /* the open write transaction keeps no keys */
    /* the thread's */
    struct sub_list buckets[FANOUT_BUCKETS], prefixes, states;
    int blocked; /* a state waits for the open write transaction to commit */
    struct ferry_buf event;
    struct ferry_gauge *subscribers;
    struct ferry_counter *sent, *dropped;
};

struct ferry_table_fanout {
    ferry_tables *tables;
    struct table_fanout *per_table;
    int64_t heartbeat_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* under lock */
    struct sub_list incoming, woken;
    int changed, stopping;
    int intake_closed; /* stopping took the last incoming: a new subscription ends at once */
    /* the thread's */
    struct sub_list todo, dead;
    pthread_t thread;
    int thread_started;
};

/* A state being read: its events, where each ends, the cursor reached. */
struct page {
    struct ferry_buf text;
    size_t ends[FANOUT_PAGE_ROWS + 1];
    size_t n;
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len;
    int found;
    int32_t partition;
    int64_t offset;
    size_t too_large; /* rows whose event would pass FANOUT_EVENT_MAX: left out */
};

/* Wakes the thread: something changed, or (stop) it is to end. */
static void signal_thread(ferry_table_fanout *f, int stop)
{
    pthread_mutex_lock(&f->lock);
    f->changed = 1;
    f->stopping |= stop;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
}

static void count_subscribers(struct table_fanout *tf, int delta)
{
    size_t n =
        delta > 0 ? atomic_fetch_add(&tf->count, 1) + 1 : atomic_fetch_sub(&tf->count, 1) - 1;

    ferry_gauge_set(tf->subscribers, (int64_t)n);
}

static struct sub_list *bucket_of(struct table_fanout *tf, const void *key, size_t len)
{
    return &tf->buckets[ferry_partitioner_murmur2(key, len, FANOUT_BUCKETS)];
}

/* ---- ending subscriptions ---- */

static void sub_free(struct sub *s)
{
    free(s->key);
    free(s);
}

/* Ends s: its stream gets last (may be NULL) and ends; s is freed at the end of the turn. */
static void end_sub(struct sub *s, const char *last, size_t len)
{
    ferry_table_fanout *f = s->tf->owner;

    if (s->dead)
        return;
    s->dead = 1;
    ferry_http_stream_close(s->stream, last, len);
    count_subscribers(s->tf, -1);
    TAILQ_INSERT_TAIL(&f->dead, s, dead_link);
}

static void end_with_notice(struct sub *s, const char *event, const char *reason,
                            const char *message)
{
    struct ferry_buf text;

    ferry_buf_init(&text, 4096);
    ferry_sse_notice(&text, event, reason, message);
    end_sub(s, text.data, text.len);
    ferry_buf_release(&text);
}

static void end_slow(struct sub *s)
{
    char msg[256];

    snprintf(msg, sizeof(msg),
             "the subscriber fell behind: %" PRId64 " events queued (limits.subscriber_queue); "
             "reconnect to get the current state",
             s->tf->t->cfg->limits.subscriber_queue);
    ferry_counter_add(s->tf->dropped, 1);
    end_with_notice(s, "error", "slow_subscriber", msg);
}

/* Frees the subscriptions that ended this turn. */
static void reap(ferry_table_fanout *f)
{
    while (!TAILQ_EMPTY(&f->dead)) {
        struct sub *s = TAILQ_FIRST(&f->dead);
        struct table_fanout *tf = s->tf;
        TAILQ_REMOVE(&f->dead, s, dead_link);
        TAILQ_REMOVE(s->prefix ? &tf->prefixes : bucket_of(tf, s->key, s->key_len), s, link);
        if (s->in_states)
            TAILQ_REMOVE(&tf->states, s, state_link);
        if (s->in_todo)
            TAILQ_REMOVE(&f->todo, s, todo_link);
        pthread_mutex_lock(&f->lock); /* the stream no longer notifies: it stays out */
        if (s->in_woken)
            TAILQ_REMOVE(&f->woken, s, woken_link);
        pthread_mutex_unlock(&f->lock);
        sub_free(s);
    }
}

/* ---- writing events ---- */

/* Writes one event (or several, as one piece) to s. Returns 0, or -1 when s ended. */
static int write_to(struct sub *s, const char *text, size_t len, int counted)
{
    int r = ferry_http_stream_write(s->stream, text, len);

    if (r == FERRY_HTTP_STREAM_OK) {
        s->wrote_ms = ferry_clock_ms();
        if (counted)
            ferry_counter_add(s->tf->sent, 1);
        return 0;
    }
    if (r == FERRY_HTTP_STREAM_FULL)
        end_slow(s);
    else
        end_sub(s, NULL, 0);
    return -1;
}

/* ---- changes ---- */

/* A change's key, and its place in the store's order when a prefix's state needs it. */
struct changed_key {
    const char *key;
    size_t len;
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len; /* 0 until computed */
};

static int key_matches(const struct sub *s, const struct changed_key *ck)
{
    if (s->prefix)
        return ck->len >= s->key_len && memcmp(ck->key, s->key, s->key_len) == 0;
    return ck->len == s->key_len && memcmp(ck->key, s->key, s->key_len) == 0;
}

/* Nonzero when a prefix's state has already sent (passed) the changed key. */
static int state_passed(struct sub *s, struct changed_key *ck)
{
    ferry_store *store;
    char why[256];
    int r = FERRY_STORE_ERROR;

    if (!s->cursor_len)
        return 0;
    if (!ck->cursor_len) {
        store = ferry_table_store_acquire(s->tf->t);
        if (store) {
            r = ferry_store_key_cursor(store, ck->key, ck->len, ck->cursor, &ck->cursor_len, why,
                                       sizeof(why));
            ferry_table_store_release(s->tf->t);
        }
        if (r != FERRY_STORE_OK)
            return 1; /* cannot tell: better twice than never */
    }
    return ferry_store_cursor_cmp(ck->cursor, ck->cursor_len, s->cursor, s->cursor_len) <= 0;
}

/* Nonzero when s takes the change of ck now. */
static int takes(struct sub *s, struct changed_key *ck)
{
    if (s->dead || !key_matches(s, ck))
        return 0;
    if (s->phase == PHASE_LIVE)
        return 1;
    return s->phase == PHASE_STATE && state_passed(s, ck);
}

static int anyone_takes(struct table_fanout *tf, struct changed_key *ck)
{
    struct sub *s;

    TAILQ_FOREACH(s, bucket_of(tf, ck->key, ck->len), link)
        if (takes(s, ck))
            return 1;
    TAILQ_FOREACH(s, &tf->prefixes, link)
        if (takes(s, ck))
            return 1;
    return 0;
}

struct change_view {
    const struct ferry_table_mark *mark;
    struct ferry_buf *out;
    int current; /* the store holds this change's row */
};

static int view_change(void *arg, const struct ferry_store_entry *e)
{
    struct change_view *cv = arg;

    if (!cv->mark->deleted && e->row.partition == cv->mark->partition &&
        e->row.offset == cv->mark->offset)
        cv->current = ferry_sse_put(cv->out, e) == 0;
    return 0;
}

/* Writes the change's event into tf->event. Returns 0, or -1 when the store has moved past the
 * change (a later change of the key follows) or cannot be read. */
static int change_event(struct table_fanout *tf, const struct changed_key *ck,
                        const struct ferry_table_mark *mark)
{
    struct change_view cv = {mark, &tf->event, 0};
    ferry_store *store = ferry_table_store_acquire(tf->t);
    char why[512] = "its store is closed";
    int r = FERRY_STORE_ERROR;

    ferry_buf_reset(&tf->event);
    if (store) {
        r = ferry_store_view(store, ck->key, ck->len, view_change, &cv, why, sizeof(why));
        ferry_table_store_release(tf->t);
    }
    if (r == FERRY_STORE_NOT_FOUND && mark->deleted)
        cv.current =
            ferry_sse_delete(&tf->event, ck->key, ck->len, mark->partition, mark->offset) == 0;
    else if (r < 0)
        FLOG_WARN("table", tf->t->cfg->name, "subscriptions: %s", why);
    else if (r == FERRY_STORE_OK && !cv.current && tf->event.failed)
        FLOG_WARN("table", tf->t->cfg->name,
                  "subscriptions: a value at %d:%" PRId64 " is too large to send (%d bytes)",
                  mark->partition, mark->offset, FANOUT_EVENT_MAX);
    return cv.current ? 0 : -1;
}

/* Sends the change's event to a key subscription, unless it has that state already. */
static void send_to_key(struct sub *s, const struct ferry_table_mark *mark, const char *text,
                        size_t len)
{
    if (s->sent && (mark->deleted ? s->sent_deleted
                                  : !s->sent_deleted && s->sent_partition == mark->partition &&
                                        s->sent_offset == mark->offset))
        return;
    if (write_to(s, text, len, 1))
        return;
    s->sent = 1;
    s->sent_deleted = mark->deleted;
    s->sent_partition = mark->partition;
    s->sent_offset = mark->offset;
}

static void fan_out_change(struct table_fanout *tf, const struct change_batch *cb,
                           const struct change *c)
{
    struct changed_key ck = {cb->keys + c->key_at, c->key_len, {0}, 0};
    struct sub *s;

    if (!anyone_takes(tf, &ck) || change_event(tf, &ck, &c->mark))
        return;
    TAILQ_FOREACH(s, bucket_of(tf, ck.key, ck.len), link)
        if (takes(s, &ck))
            send_to_key(s, &c->mark, tf->event.data, tf->event.len);
    TAILQ_FOREACH(s, &tf->prefixes, link)
        if (takes(s, &ck))
            write_to(s, tf->event.data, tf->event.len, 1);
}

/* ---- states ---- */

static void list_state(struct table_fanout *tf, struct sub *s)
{
    if (!s->in_states)
        TAILQ_INSERT_TAIL(&tf->states, s, state_link);
    s->in_states = 1;
}

static void unlist_state(struct table_fanout *tf, struct sub *s)
{
    if (s->in_states)
        TAILQ_REMOVE(&tf->states, s, state_link);
    s->in_states = 0;
}

static int key_row(void *arg, const struct ferry_store_entry *e);

/* A key subscription's state, read again after a batch was lost: sent when it differs from
 * what was sent last (a delete without an id when the key is gone). */
static void resend_key_state(struct table_fanout *tf, struct sub *s)
{
    struct page pg = {.n = 0};
    ferry_store *store = ferry_table_store_acquire(tf->t);
    struct ferry_table_mark mark;
    char why[256];
    int r = FERRY_STORE_ERROR;

    ferry_buf_init(&pg.text, FANOUT_EVENT_MAX);
    if (store) {
        r = ferry_store_view(store, s->key, s->key_len, key_row, &pg, why, sizeof(why));
        ferry_table_store_release(tf->t);
    }
    if (r == FERRY_STORE_NOT_FOUND && ferry_sse_delete(&pg.text, s->key, s->key_len, -1, 0) == 0)
        pg.n = 1;
    mark = (struct ferry_table_mark){pg.partition, pg.offset, !pg.found};
    if (pg.n)
        send_to_key(s, &mark, pg.text.data, pg.text.len);
    ferry_buf_release(&pg.text);
}

/* After a batch was lost: key subscriptions send what changed, prefixes their whole state. */
static void resync(struct table_fanout *tf)
{
    struct sub *s;

    for (size_t b = 0; b < FANOUT_BUCKETS; b++)
        TAILQ_FOREACH(s, &tf->buckets[b], link)
            if (!s->dead && s->phase == PHASE_LIVE)
                resend_key_state(tf, s);
    TAILQ_FOREACH(s, &tf->prefixes, link) {
        if (s->dead || s->phase == PHASE_NEW)
            continue;
        s->phase = PHASE_STATE;
        s->reset = 1;
        s->restarts++;
        s->cursor_len = 0;
        s->state_keys = 0;
        list_state(tf, s);
    }
}

static void free_batches(struct batch_queue *q)
{
    while (!STAILQ_EMPTY(q)) {
        struct change_batch *cb = STAILQ_FIRST(q);
        STAILQ_REMOVE_HEAD(q, link);
        free(cb);
    }
}

/* Sends the taken batches in commit order, then resends the states if one was lost. */
static void fan_out(struct table_fanout *tf, struct batch_queue *taken, int lost)
{
    struct change_batch *cb;

    STAILQ_FOREACH(cb, taken, link)
        for (size_t i = 0; i < cb->n; i++)
            fan_out_change(tf, cb, &cb->changes[i]);
    free_batches(taken);
    if (lost)
        resync(tf);
}

/* Takes the queued batches. Under commit_lock. */
static int take_batches(struct table_fanout *tf, struct batch_queue *taken)
{
    int lost = tf->resync;

    STAILQ_INIT(taken);
    STAILQ_CONCAT(taken, &tf->batches);
    tf->backlog = 0;
    tf->resync = 0;
    return lost;
}

static void fan_out_queued(struct table_fanout *tf)
{
    struct batch_queue taken;
    int lost;

    pthread_mutex_lock(&tf->commit_lock);
    lost = take_batches(tf, &taken);
    pthread_mutex_unlock(&tf->commit_lock);
    fan_out(tf, &taken, lost);
}

static int page_row(void *arg, const struct ferry_store_entry *e)
{
    struct page *pg = arg;

    if (ferry_sse_put(&pg->text, e) == 0)
        pg->ends[pg->n++] = pg->text.len;
    else
        pg->too_large++;
    memcpy(pg->cursor, e->cursor, e->cursor_len);
    pg->cursor_len = e->cursor_len;
    return pg->text.len >= FANOUT_PAGE_BYTES;
}

static int key_row(void *arg, const struct ferry_store_entry *e)
{
    struct page *pg = arg;

    pg->found = 1;
    pg->partition = e->row.partition;
    pg->offset = e->row.offset;
    if (ferry_sse_put(&pg->text, e) == 0)
        pg->ends[pg->n++] = pg->text.len;
    return 0;
}

/* Reads s's next page (a prefix) or its row (a key) into pg. Returns 1 when the state is
 * complete, 0 when more pages follow, -1 when the store failed. Under commit_lock. */
static int read_state(struct sub *s, struct page *pg, size_t rows)
{
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    ferry_store *store = ferry_table_store_acquire(s->tf->t);
    size_t next_len = 0;
    char why[512] = "its store is closed";
    int r = FERRY_STORE_ERROR;

    if (store && s->prefix)
        r = ferry_store_scan(store, s->key, s->key_len, s->cursor, s->cursor_len, rows, page_row,
                             pg, next, &next_len, why, sizeof(why));
    else if (store)
        r = ferry_store_view(store, s->key, s->key_len, key_row, pg, why, sizeof(why));
    if (store)
        ferry_table_store_release(s->tf->t);
    if (r < 0) {
        FLOG_WARN("table", s->tf->t->cfg->name, "subscriptions: %s", why);
        return -1;
    }
    return next_len == 0;
}

/* What a key subscription's state sends: nothing when the client resumes at the row's own id,
 * a delete without an id when it resumes and the key is gone, else the row. */
static void key_state(struct sub *s, struct page *pg)
{
    if (pg->found && s->resume && pg->partition == s->last_partition &&
        pg->offset == s->last_offset) {
        pg->n = 0;
        ferry_buf_reset(&pg->text);
    } else if (!pg->found && s->resume &&
               ferry_sse_delete(&pg->text, s->key, s->key_len, -1, 0) == 0) {
        pg->ends[pg->n++] = pg->text.len;
    }
    s->sent = 1;
    s->sent_deleted = !pg->found;
    s->sent_partition = pg->partition;
    s->sent_offset = pg->offset;
}

/* Writes the page, an event a write; the first carries the reset before it, and the last the
 * `event: sync` after it when the state is complete. Returns 0, or -1 when s ended. */
static int send_page(struct sub *s, struct page *pg, int complete)
{
    size_t from = 0;

    s->state_keys += s->prefix ? pg->n : (uint64_t)pg->found;
    if (complete && ferry_sse_sync(&pg->text, s->state_keys) == 0) {
        if (!pg->n)
            pg->n = 1;
        pg->ends[pg->n - 1] = pg->text.len;
    } else if (!pg->n && pg->text.len) {
        pg->ends[pg->n++] = pg->text.len; /* a reset, before a page of nothing */
    }
    for (size_t i = 0; i < pg->n; i++) {
        if (write_to(s, pg->text.data + from, pg->ends[i] - from, 1))
            return -1;
        from = pg->ends[i];
    }
    return 0;
}

/* Rows s's queue has room for, leaving half of it to the changes that arrive meanwhile. */
static size_t state_room(const struct sub *s)
{
    size_t room = ferry_http_stream_room(s->stream);
    size_t reserve = (size_t)s->tf->t->cfg->limits.subscriber_queue / 2;
    size_t rows = room > reserve ? room - reserve : 0;

    return rows < FANOUT_PAGE_ROWS ? rows : FANOUT_PAGE_ROWS;
}

static void wait_for_room(struct sub *s)
{
    int r = ferry_http_stream_want_drain(s->stream);

    if (r < 0)
        end_sub(s, NULL, 0);
    else
        s->waiting = r == 0;
}

/* After the page was read and the changes before it sent: sends it and moves the state on. */
static void finish_page(struct table_fanout *tf, struct sub *s, struct page *pg, int complete,
                        unsigned restarts)
{
    if (s->dead || s->restarts != restarts)
        return; /* ended, or restarted by a lost batch: the page is stale */
    if (complete < 0) {
        end_with_notice(s, "error", "store_failed", "the table's store cannot be read");
        return;
    }
    if (pg->too_large)
        FLOG_WARN("table", tf->t->cfg->name,
                  "subscriptions: %zu row(s) left out of a state: larger than %d bytes as events",
                  pg->too_large, FANOUT_EVENT_MAX);
    if (!s->prefix)
        key_state(s, pg);
    if (send_page(s, pg, complete))
        return;
    s->reset = 0;
    if (pg->cursor_len) {
        memcpy(s->cursor, pg->cursor, pg->cursor_len);
        s->cursor_len = pg->cursor_len;
    }
    s->phase = complete ? PHASE_LIVE : PHASE_STATE;
    if (complete)
        unlist_state(tf, s);
}

/* Sends s the next part of its state, as much as its queue has room for. The changes committed
 * before the part was read go out first, to everyone. */
static void state_step(struct table_fanout *tf, struct sub *s)
{
    size_t rows = state_room(s);
    unsigned restarts = s->restarts;
    struct batch_queue taken;
    struct page pg = {.n = 0};
    int lost, complete;

    if (!rows) {
        wait_for_room(s);
        return;
    }
    ferry_buf_init(&pg.text, FANOUT_PAGE_BYTES + FANOUT_EVENT_MAX + 4096);
    if (s->reset)
        ferry_sse_notice(&pg.text, "reset", s->resume ? "resume" : "resync",
                         "forget this subscription's keys: its whole state follows until sync");
    pthread_mutex_lock(&tf->commit_lock);
    if (tf->open_unrecorded) {
        pthread_mutex_unlock(&tf->commit_lock);
        tf->blocked = 1; /* until that write transaction commits */
    } else {
        lost = take_batches(tf, &taken);
        complete = read_state(s, &pg, rows);
        pthread_mutex_unlock(&tf->commit_lock);
        fan_out(tf, &taken, lost);
        finish_page(tf, s, &pg, complete, restarts);
    }
    ferry_buf_release(&pg.text);
}

static void send_states(struct table_fanout *tf)
{
    struct sub *s;

    /* A step may end subscriptions, but they stay listed until the turn is over. */
    TAILQ_FOREACH(s, &tf->states, state_link)
        if (!s->dead && !s->waiting && !tf->blocked)
            state_step(tf, s);
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

/* ---- the thread ---- */

static void admit(ferry_table_fanout *f, struct sub *s)
{
    struct table_fanout *tf = s->tf;

    (void)f;
    if (s->prefix) {
        TAILQ_INSERT_TAIL(&tf->prefixes, s, link);
        s->reset = s->resume;
    } else {
        TAILQ_INSERT_TAIL(bucket_of(tf, s->key, s->key_len), s, link);
    }
    s->wrote_ms = ferry_clock_ms();
    list_state(tf, s);
}

static void admit_all(ferry_table_fanout *f, struct sub_list *incoming)
{
    while (!TAILQ_EMPTY(incoming)) {
        struct sub *s = TAILQ_FIRST(incoming);
        TAILQ_REMOVE(incoming, s, link);
        admit(f, s);
    }
}

/* Acts on what the streams said: a client gone ends its subscription, a drained queue lets
 * its state go on. */
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
        if (what & FERRY_HTTP_STREAM_GONE)
            end_sub(s, NULL, 0);
        else if (what & FERRY_HTTP_STREAM_DRAINED)
            s->waiting = 0;
    }
}

/* Takes the new subscriptions and the notified ones. Under f->lock. */
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

/* Writes a comment to every subscription idle for half the heartbeat. */
static void heartbeats(ferry_table_fanout *f, struct table_fanout *tf)
{
    int64_t idle = ferry_clock_ms() - f->heartbeat_ms / 2;
    struct sub *s;

    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &tf->buckets[b] : &tf->prefixes;
        TAILQ_FOREACH(s, list, link)
            if (!s->dead && s->wrote_ms <= idle &&
                ferry_http_stream_write(s->stream, FERRY_SSE_KEEPALIVE,
                                        strlen(FERRY_SSE_KEEPALIVE)) != FERRY_HTTP_STREAM_CLOSED)
                s->wrote_ms = ferry_clock_ms();
    }
}

/* One turn over every table: changes, then states, then heartbeats when due. */
static void serve(ferry_table_fanout *f, int changed, int64_t *next_beat)
{
    int beat = ferry_clock_ms() >= *next_beat;

    for (size_t i = 0; i < f->tables->count; i++) {
        struct table_fanout *tf = &f->per_table[i];
        if (changed)
            tf->blocked = 0;
        fan_out_queued(tf);
        send_states(tf);
        if (beat)
            heartbeats(f, tf);
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
        admit_all(f, &incoming);
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
            end_with_notice(s, "shutdown", "shutdown",
                            "ferry is shutting down: reconnect to another instance or later");
}

/* Ends every subscription, admitted or not, once the thread has stopped. */
static void end_all(ferry_table_fanout *f)
{
    struct sub_list incoming;

    pthread_mutex_lock(&f->lock);
    take_news(f, &incoming);
    f->intake_closed = 1;
    pthread_mutex_unlock(&f->lock);
    admit_all(f, &incoming);
    for (size_t i = 0; i < f->tables->count; i++) {
        struct table_fanout *tf = &f->per_table[i];
        fan_out_queued(tf); /* the apply threads' last commits */
        for (size_t b = 0; b < FANOUT_BUCKETS; b++)
            end_list(&tf->buckets[b]);
        end_list(&tf->prefixes);
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

/* A stream's notification, on a server thread: hands s to the fanout thread. */
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

/* Ends a subscription that came after the last was ended (shutdown). */
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
    count_subscribers(s->tf, -1);
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
    s->last_partition = sr->last_partition;
    s->last_offset = sr->last_offset;
    s->phase = PHASE_NEW;
    return s;
}

static int refuse(ferry_http_req *req, int status, const char *what, const char *table)
{
    ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
    ferry_http_respond_error(req, status, 0, "table '%s': %s", table, what);
    return status;
}

/* Starts s's stream, answering req. Returns 0, or -1 when out of memory. */
static int start_stream(struct sub *s, ferry_http_req *req)
{
    const struct ferry_table_limits_config *lim = &s->tf->t->cfg->limits;
    struct ferry_http_stream_options opts = {(size_t)lim->subscriber_queue, FANOUT_QUEUE_BYTES,
                                             on_stream, s};

    ferry_http_add_header(req, "Cache-Control", "no-cache");
    ferry_http_add_header(req, "X-Accel-Buffering", "no"); /* nginx: pass events on at once */
    if (atomic_load(&s->tf->t->rebuilding))
        ferry_http_add_header(req, "Ferry-Rebuilding", "true");
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
    ferry_gauge_set(tf->subscribers, (int64_t)atomic_load(&tf->count));
    s = sub_new(tf, sr);
    if (!s || start_stream(s, req)) {
        if (s)
            sub_free(s);
        count_subscribers(tf, -1);
        return refuse(req, 503, "out of memory", t->cfg->name);
    }
    pthread_mutex_lock(&f->lock);
    admitted = !f->intake_closed;
    if (admitted) {
        TAILQ_INSERT_TAIL(&f->incoming, s, link);
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

/* Copies what the apply thread kept, for the queue; NULL when it is incomplete or too large. */
static struct change_batch *batch_copy(const struct ferry_table_batch *b)
{
    size_t bytes = sizeof(struct change_batch) + b->n * sizeof(struct change) + b->keys_len;
    struct change_batch *cb = b->complete && bytes <= FANOUT_BACKLOG_MAX ? malloc(bytes) : NULL;

    if (!cb)
        return NULL;
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

/* Queues cb (NULL: a batch that could not be kept); past the backlog, everything queued gives
 * way to a resync. Under commit_lock. */
static void queue_batch(struct table_fanout *tf, struct change_batch *cb)
{
    if (!cb || tf->resync || tf->backlog + cb->bytes > FANOUT_BACKLOG_MAX) {
        free(cb);
        free_batches(&tf->batches);
        tf->backlog = 0;
        tf->resync = 1;
        return;
    }
    STAILQ_INSERT_TAIL(&tf->batches, cb, link);
    tf->backlog += cb->bytes;
}

int ferry_table_fanout_commit(struct table *t, ferry_store *store,
                              const struct ferry_table_batch *b, char *errstr, size_t errstr_size)
{
    struct table_fanout *tf = t->fanout;
    /* a rebuild's store is not read before it is swapped in (then everything is resent) */
    int wanted = store == t->store && b->recorded && atomic_load(&tf->count) > 0;
    struct change_batch *cb = wanted ? batch_copy(b) : NULL;
    int r, wake;

    pthread_mutex_lock(&tf->commit_lock);
    r = ferry_store_batch_commit(store, errstr, errstr_size);
    wake = tf->open_unrecorded && atomic_load(&tf->count) > 0;
    tf->open_unrecorded = 0;
    if (r == FERRY_STORE_OK && wanted) {
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
    tf->dropped = ferry_metrics_counter(
        m, "ferry_table_subscribers_dropped_total",
        "Subscribers disconnected for falling limits.subscriber_queue events behind.", lbl);
}

static void table_fanout_init(ferry_table_fanout *f, struct table_fanout *tf, struct table *t)
{
    tf->owner = f;
    tf->t = t;
    pthread_mutex_init(&tf->commit_lock, NULL);
    STAILQ_INIT(&tf->batches);
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
    f->heartbeat_ms = connection_timeout_ms / 2 < FANOUT_HEARTBEAT_MAX_MS
                          ? connection_timeout_ms / 2
                          : FANOUT_HEARTBEAT_MAX_MS;
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
        free_batches(&tf->batches);
        ferry_buf_release(&tf->event);
        pthread_mutex_destroy(&tf->commit_lock);
        tf->t->fanout = NULL;
    }
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f->per_table);
    free(f);
}
