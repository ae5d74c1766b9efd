/*
 * fanout_log.c - a table's log of committed changes, and the walk that sends each subscription
 * the changes it matches, in commit order, as far as its queue has room (see fanout_int.h).
 *
 * A change is sent as the store has it when the walk reaches it: a put whose row the store
 * still holds, or a delete of a key still gone. A change the store has moved past is skipped,
 * since a later change of the same key follows in the log: that is where changes are conflated
 * (all of a batch's changes of a key but the last, and more for a subscriber that fell behind),
 * and why a key's events never go back. A change's event is read once per walk, whoever takes
 * it.
 */
#include "core/log.h"
#include "table/etag.h"
#include "table/fanout_int.h"
#include "table/sse.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void ferry_fanout_free_batches(struct batch_queue *q)
{
    while (!STAILQ_EMPTY(q)) {
        struct change_batch *cb = STAILQ_FIRST(q);
        STAILQ_REMOVE_HEAD(q, link);
        free(cb);
    }
}

static void log_append(struct table_fanout *tf, struct change_batch *cb)
{
    if (STAILQ_EMPTY(&tf->log))
        tf->head = tf->tail;
    cb->first = tf->tail;
    tf->tail += cb->lost ? 1 : cb->n;
    tf->log_bytes += cb->bytes;
    STAILQ_INSERT_TAIL(&tf->log, cb, link);
}

void ferry_fanout_absorb(struct table_fanout *tf)
{
    struct change_batch *lost = tf->lost ? calloc(1, sizeof(*lost)) : NULL;

    if (lost) {
        lost->lost = 1;
        lost->bytes = sizeof(*lost);
        log_append(tf, lost);
    } else if (tf->lost) {
        FLOG_ERROR("table", tf->t->cfg->name, "subscriptions: out of memory: changes are lost");
    }
    while (!STAILQ_EMPTY(&tf->batches)) {
        struct change_batch *cb = STAILQ_FIRST(&tf->batches);
        STAILQ_REMOVE_HEAD(&tf->batches, link);
        log_append(tf, cb);
    }
    tf->backlog = 0;
    tf->lost = 0;
}

/* ---- which subscriptions take a change ---- */

/* A change's key, and its place in the store's order once a prefix's state needs it. */
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

/* Nonzero when s moves through the log in this walk and has not passed number seq. */
static int walking(const struct sub *s, const struct sub *only, uint64_t seq)
{
    return !s->dead && !s->waiting && s->phase != PHASE_NEW && (!only || s == only) &&
           s->pos <= seq;
}

/* Nonzero when s takes the change of ck at number seq. */
static int takes(struct sub *s, const struct sub *only, uint64_t seq, struct changed_key *ck)
{
    if (!walking(s, only, seq) || !key_matches(s, ck))
        return 0;
    return s->phase == PHASE_LIVE || state_passed(s, ck);
}

/* ---- a change's event ---- */

struct change_view {
    const struct ferry_table_mark *mark;
    struct ferry_buf *out;
    int current;   /* the store holds this change's row */
    uint32_t hash; /* its value's */
};

static int view_change(void *arg, const struct ferry_store_entry *e)
{
    struct change_view *cv = arg;

    if (!cv->mark->deleted && e->row.partition == cv->mark->partition &&
        e->row.offset == cv->mark->offset)
        cv->current = ferry_sse_put(cv->out, e, &cv->hash) == 0;
    return 0;
}

/* Writes the change's event into tf->event, and its value's hash into *hash. Returns 1, or -1
 * when the store has moved past the change (a later change of the key follows) or cannot be
 * read. */
static int change_event(struct table_fanout *tf, const struct changed_key *ck,
                        const struct ferry_table_mark *mark, uint32_t *hash)
{
    struct change_view cv = {mark, &tf->event, 0, FERRY_ETAG_DELETED};
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
        FLOG_WARN_REPEATED("table", tf->t->cfg->name, "subscriptions: %s", why);
    else if (r == FERRY_STORE_OK && !cv.current && tf->event.failed)
        FLOG_WARN_REPEATED("table", tf->t->cfg->name,
                           "subscriptions: the value at %d:%" PRId64
                           " is too large to send (%d bytes)",
                           mark->partition, mark->offset, FANOUT_EVENT_MAX);
    *hash = cv.hash;
    return cv.current ? 1 : -1;
}

/* ---- the walk ---- */

struct walk {
    struct table_fanout *tf;
    struct sub *only;
    uint64_t seq; /* the change's number */
    struct changed_key ck;
    const struct ferry_table_mark *mark;
    int event;     /* 0: not read yet; 1: in tf->event; -1: nothing to send */
    uint32_t hash; /* of the value in tf->event */
};

/* Whether key subscription s has sent m's state of its key already, or a later one. A delete
 * is sent when the key is gone now, which it may be again after a later put that s was sent
 * when its state was read afresh (fanout_state.c's resend_key reads the store ahead of the log).
 * A put is the one sent only if its value's hash is that one's too: a store rebuilt from a
 * recreated topic may hold another value at the same place. */
static int key_state_sent(const struct sub *s, const struct ferry_table_mark *m, uint32_t hash)
{
    if (s->prefix || !s->sent)
        return 0;
    if (m->deleted)
        return s->sent_deleted || (s->sent_partition == m->partition && s->sent_offset > m->offset);
    return !s->sent_deleted && s->sent_partition == m->partition && s->sent_offset == m->offset &&
           s->sent_hash == hash;
}

/* Sends the change to s; a stalled s stays at it. */
static void send_change(struct walk *w, struct sub *s)
{
    const struct ferry_table_mark *m = w->mark;

    if (!w->event)
        w->event = change_event(w->tf, &w->ck, m, &w->hash);
    if (w->event < 0)
        return;
    if (key_state_sent(s, m, w->hash))
        return;
    if (ferry_fanout_write(s, w->tf->event.data, w->tf->event.len, 1)) {
        s->pos = w->seq;
        return;
    }
    s->sent = 1;
    s->sent_deleted = m->deleted;
    s->sent_partition = m->partition;
    s->sent_offset = m->offset;
    s->sent_hash = w->hash;
}

static void walk_change(struct walk *w)
{
    struct sub *s;

    TAILQ_FOREACH(s, ferry_fanout_bucket(w->tf, w->ck.key, w->ck.len), link)
        if (takes(s, w->only, w->seq, &w->ck))
            send_change(w, s);
    TAILQ_FOREACH(s, &w->tf->prefixes, link)
        if (takes(s, w->only, w->seq, &w->ck))
            send_change(w, s);
}

/* Every walking subscription that reaches a lost batch sends its state again. */
static void walk_lost(struct walk *w)
{
    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &w->tf->buckets[b] : &w->tf->prefixes;
        struct sub *s;
        TAILQ_FOREACH(s, list, link)
            if (walking(s, w->only, w->seq)) {
                ferry_fanout_resync(w->tf, s);
                if (s->waiting)
                    s->pos = w->seq; /* meet it again once its queue has drained */
            }
    }
}

static void walk_batch(struct walk *w, const struct change_batch *cb, uint64_t from)
{
    if (cb->lost) {
        w->seq = cb->first;
        walk_lost(w);
        return;
    }
    for (size_t i = from > cb->first ? (size_t)(from - cb->first) : 0; i < cb->n; i++) {
        const struct change *c = &cb->changes[i];
        w->seq = cb->first + i;
        w->ck = (struct changed_key){cb->keys + c->key_at, c->key_len, {0}, 0};
        w->mark = &c->mark;
        w->event = 0;
        walk_change(w);
    }
}

/* The lowest position among the subscriptions that walk (tail when none). */
static uint64_t walk_start(struct table_fanout *tf, const struct sub *only)
{
    uint64_t from = tf->tail;

    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &tf->buckets[b] : &tf->prefixes;
        const struct sub *s;
        TAILQ_FOREACH(s, list, link)
            if (walking(s, only, tf->tail) && s->pos < from)
                from = s->pos;
    }
    return from;
}

/* The walking subscriptions that did not stall have considered everything. */
static void walk_end(struct table_fanout *tf, const struct sub *only)
{
    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &tf->buckets[b] : &tf->prefixes;
        struct sub *s;
        TAILQ_FOREACH(s, list, link)
            if (walking(s, only, tf->tail))
                s->pos = tf->tail;
    }
}

void ferry_fanout_walk(struct table_fanout *tf, struct sub *only)
{
    struct walk w = {.tf = tf, .only = only};
    uint64_t from = walk_start(tf, only);
    struct change_batch *cb;

    STAILQ_FOREACH(cb, &tf->log, link)
        if (cb->first + (cb->lost ? 1 : cb->n) > from)
            walk_batch(&w, cb, from);
    walk_end(tf, only);
}

/* ---- trimming ---- */

/* The lowest position of any subscription that has one (tail when none). */
static uint64_t lowest_position(struct table_fanout *tf)
{
    uint64_t low = tf->tail;

    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &tf->buckets[b] : &tf->prefixes;
        const struct sub *s;
        TAILQ_FOREACH(s, list, link)
            if (!s->dead && s->phase != PHASE_NEW && s->pos < low)
                low = s->pos;
    }
    return low;
}

/* Ends the subscriptions that have not passed number end, which the log is dropping. */
static void end_behind(struct table_fanout *tf, uint64_t end)
{
    for (size_t b = 0; b <= FANOUT_BUCKETS; b++) {
        struct sub_list *list = b < FANOUT_BUCKETS ? &tf->buckets[b] : &tf->prefixes;
        struct sub *s;
        TAILQ_FOREACH(s, list, link)
            if (!s->dead && s->phase != PHASE_NEW && s->pos < end)
                ferry_fanout_end_slow(s, "it fell more changes behind than the table keeps "
                                         "(64 MiB)");
    }
}

void ferry_fanout_trim(struct table_fanout *tf)
{
    uint64_t low = lowest_position(tf);

    while (!STAILQ_EMPTY(&tf->log)) {
        struct change_batch *cb = STAILQ_FIRST(&tf->log);
        uint64_t end = cb->first + (cb->lost ? 1 : cb->n);
        if (end > low && tf->log_bytes <= FANOUT_LOG_MAX)
            break;
        if (end > low)
            end_behind(tf, end);
        STAILQ_REMOVE_HEAD(&tf->log, link);
        tf->log_bytes -= cb->bytes;
        tf->head = end;
        free(cb);
    }
}
