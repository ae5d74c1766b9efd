/*
 * watch.c - reads that wait for a key to change or for offsets to be applied, parked without
 * a thread each and answered by one watch thread (see watch.h).
 *
 * One mutex guards every table's waiters, the deadline heap and the list of woken waiters.
 * Key waiters sit in hash buckets per table, so a commit of a batch looks at the waiters of
 * its keys only; offset waiters sit in one list per table, checked after every commit. The
 * watch thread sleeps on a condition variable until the next deadline or a wake-up, takes the
 * woken and the expired waiters off every list, and calls their wake callbacks unlocked.
 */
#include "table/watch.h"
#include "core/clock.h"
#include "core/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_BUCKETS 1024 /* key buckets per table */

enum { IN_NOTHING, IN_BUCKET, IN_OFFSETS, IN_WOKEN };

TAILQ_HEAD(waiter_list, ferry_table_waiter);

/* One table's waiters. */
struct table_watch {
    ferry_table_watch *owner;
    _Atomic uint64_t seq;      /* commits reported so far */
    atomic_size_t key_waiters; /* waiters in the buckets */
    atomic_size_t count;       /* every parked waiter of the table */
    atomic_size_t waking;      /* taken off the lists for their wake callbacks, which may park
                                  them again: they keep their places under max_waiters until
                                  their wake returns */
    struct waiter_list buckets[WATCH_BUCKETS];
    struct waiter_list offsets;
};

struct ferry_table_watch {
    ferry_tables *tables;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct ferry_heap deadlines;
    struct waiter_list woken; /* with their reasons in wake_why */
    int stopping;
    pthread_t thread;
    int thread_started;
};

/* The waiter whose wake callback runs on this thread: parking it again is no new wait. */
static _Thread_local const struct ferry_table_waiter *in_wake;

/* FNV-1a: buckets only spread keys; equal keys are compared in full. */
static uint32_t hash_key(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint32_t h = 0x811c9dc5U;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x01000193U;
    }
    return h;
}

/* ---- lists (under the lock) ---- */

static struct waiter_list *bucket_of(struct table_watch *tw, uint32_t hash)
{
    return &tw->buckets[hash % WATCH_BUCKETS];
}

/* Takes a waiter off its bucket or list and the deadline heap. */
static void detach(ferry_table_watch *w, struct ferry_table_waiter *waiter)
{
    struct table_watch *tw = waiter->table->watch;

    if (waiter->where == IN_BUCKET) {
        TAILQ_REMOVE(bucket_of(tw, waiter->hash), waiter, link);
        atomic_fetch_sub(&tw->key_waiters, 1);
    } else if (waiter->where == IN_OFFSETS) {
        TAILQ_REMOVE(&tw->offsets, waiter, link);
    } else if (waiter->where == IN_WOKEN) {
        TAILQ_REMOVE(&w->woken, waiter, link);
    }
    if (waiter->deadline.index != (size_t)-1)
        ferry_heap_remove(&w->deadlines, &waiter->deadline);
    if (waiter->where != IN_NOTHING)
        atomic_fetch_sub(&tw->count, 1);
    waiter->where = IN_NOTHING;
}

/* Moves a parked waiter to the woken list; the thread answers it. */
static void wake_later(ferry_table_watch *w, struct ferry_table_waiter *waiter)
{
    detach(w, waiter);
    atomic_fetch_add(&waiter->table->watch->count, 1);
    waiter->where = IN_WOKEN;
    TAILQ_INSERT_TAIL(&w->woken, waiter, link);
}

static int offsets_reached(const struct ferry_table_waiter *waiter)
{
    const struct table *t = waiter->table;

    if (atomic_load(&t->rebuilding)) /* applied counts the new store; reads come from the old */
        return 0;
    for (int32_t p = 0; p < t->npartitions; p++)
        if (waiter->offsets[p] >= 0 && atomic_load(&t->parts[p].applied) <= waiter->offsets[p])
            return 0;
    return 1;
}

/* ---- parking (server threads) ---- */

uint64_t ferry_table_watch_seq(const struct table *t)
{
    return atomic_load(&t->watch->seq);
}

static void insert(struct table_watch *tw, struct ferry_table_waiter *waiter)
{
    if (waiter->kind == FERRY_WAIT_KEY) {
        waiter->hash = hash_key(waiter->key, waiter->key_len);
        TAILQ_INSERT_TAIL(bucket_of(tw, waiter->hash), waiter, link);
        atomic_fetch_add(&tw->key_waiters, 1);
        waiter->where = IN_BUCKET;
    } else {
        TAILQ_INSERT_TAIL(&tw->offsets, waiter, link);
        waiter->where = IN_OFFSETS;
    }
    atomic_fetch_add(&tw->count, 1);
}

/* Nonzero when what the waiter waits for may have come before it was parked: for a key, any
 * commit since the caller read seq and looked at the store (it looks again); for offsets, the
 * offsets themselves, which every commit publishes before it takes the lock, so that commits
 * of other partitions do not wake it before its deadline. Under the lock. */
static int missed(struct table_watch *tw, const struct ferry_table_waiter *waiter, uint64_t seq)
{
    if (waiter->kind == FERRY_WAIT_OFFSETS)
        return offsets_reached(waiter);
    return atomic_load(&tw->seq) != seq;
}

/* Nonzero when the table's limits.max_waiters are all taken, counting the waiters being
 * answered: they may park again. Under the lock. */
static int full_up(struct table_watch *tw, const struct ferry_table_waiter *waiter)
{
    size_t taken = atomic_load(&tw->count) + atomic_load(&tw->waking);

    return taken >= (size_t)waiter->table->cfg->limits.max_waiters;
}

int ferry_table_watch_park(ferry_table_watch *w, struct ferry_table_waiter *waiter, uint64_t seq,
                           int *full)
{
    struct table_watch *tw = waiter->table->watch;
    int result = -1;

    *full = 0;
    waiter->where = IN_NOTHING;
    waiter->deadline.index = (size_t)-1;
    pthread_mutex_lock(&w->lock);
    if (w->stopping)
        goto out;
    *full = waiter != in_wake && full_up(tw, waiter);
    if (*full || ferry_heap_push(&w->deadlines, &waiter->deadline))
        goto out;
    insert(tw, waiter);
    if (missed(tw, waiter, seq))
        wake_later(w, waiter);
    pthread_cond_signal(&w->changed);
    result = 0;
out:
    pthread_mutex_unlock(&w->lock);
    return result;
}

/* ---- commits (apply threads) ---- */

int ferry_table_watch_wants_keys(const struct table *t)
{
    return atomic_load(&t->watch->key_waiters) > 0;
}

static void wake_key(ferry_table_watch *w, struct table_watch *tw, const void *key, size_t len)
{
    uint32_t hash = hash_key(key, len);
    struct waiter_list *b = bucket_of(tw, hash);
    struct ferry_table_waiter *waiter, *next;

    for (waiter = TAILQ_FIRST(b); waiter; waiter = next) {
        next = TAILQ_NEXT(waiter, link);
        if (waiter->hash == hash && waiter->key_len == len && memcmp(waiter->key, key, len) == 0)
            wake_later(w, waiter);
    }
}

static void wake_all_keys(ferry_table_watch *w, struct table_watch *tw)
{
    for (size_t i = 0; i < WATCH_BUCKETS; i++)
        while (!TAILQ_EMPTY(&tw->buckets[i]))
            wake_later(w, TAILQ_FIRST(&tw->buckets[i]));
}

static void wake_offsets(ferry_table_watch *w, struct table_watch *tw)
{
    struct ferry_table_waiter *waiter, *next;

    for (waiter = TAILQ_FIRST(&tw->offsets); waiter; waiter = next) {
        next = TAILQ_NEXT(waiter, link);
        if (offsets_reached(waiter))
            wake_later(w, waiter);
    }
}

void ferry_table_watch_committed(struct table *t, const void *const *keys, const size_t *lens,
                                 size_t n, int all_keys)
{
    struct table_watch *tw = t->watch;
    ferry_table_watch *w = tw->owner;

    pthread_mutex_lock(&w->lock);
    atomic_fetch_add(&tw->seq, 1);
    if (all_keys)
        wake_all_keys(w, tw);
    for (size_t i = 0; !all_keys && atomic_load(&tw->key_waiters) && i < n; i++)
        wake_key(w, tw, keys[i], lens[i]);
    wake_offsets(w, tw);
    if (!TAILQ_EMPTY(&w->woken))
        pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

size_t ferry_table_watch_count(const struct table *t)
{
    return atomic_load(&t->watch->count);
}

/* ---- the thread ---- */

/* Takes a waiter off the watch onto out, for its wake callback. Under the lock. */
static void take(ferry_table_watch *w, struct ferry_table_waiter *waiter, struct waiter_list *out)
{
    detach(w, waiter);
    atomic_fetch_add(&waiter->table->watch->waking, 1);
    TAILQ_INSERT_TAIL(out, waiter, link);
}

/* Answers every waiter of list (from take) with why, unlocked. */
static void answer_all(struct waiter_list *list, enum ferry_wake why)
{
    while (!TAILQ_EMPTY(list)) {
        struct ferry_table_waiter *waiter = TAILQ_FIRST(list);
        struct table_watch *tw = waiter->table->watch;

        TAILQ_REMOVE(list, waiter, link);
        in_wake = waiter;
        waiter->wake(waiter, why); /* frees it, or parks it again */
        in_wake = NULL;
        atomic_fetch_sub(&tw->waking, 1);
    }
}

/* Moves the woken and the expired waiters to the two lists. Under the lock. */
static void take_due(ferry_table_watch *w, struct waiter_list *woken, struct waiter_list *expired)
{
    struct ferry_table_waiter *waiter;
    struct ferry_heap_node *top;
    int64_t now = ferry_clock_ms();

    while (!TAILQ_EMPTY(&w->woken))
        take(w, TAILQ_FIRST(&w->woken), woken);
    while ((top = ferry_heap_peek(&w->deadlines)) != NULL && top->key <= now) {
        waiter = (struct ferry_table_waiter *)((char *)top -
                                               offsetof(struct ferry_table_waiter, deadline));
        take(w, waiter, expired);
    }
}

/* Waits for a wake-up or the next deadline. Under the lock. */
static void sleep_until_due(ferry_table_watch *w)
{
    struct ferry_heap_node *top = ferry_heap_peek(&w->deadlines);
    struct timespec until;

    if (!TAILQ_EMPTY(&w->woken) || w->stopping)
        return;
    if (!top) {
        pthread_cond_wait(&w->changed, &w->lock);
        return;
    }
    until = ferry_clock_timespec(top->key);
    pthread_cond_timedwait(&w->changed, &w->lock, &until);
}

/* Every parked waiter, taken off its list for shutdown. Under the lock. */
static void take_all(ferry_table_watch *w, struct waiter_list *out)
{
    struct ferry_heap_node *top;

    while ((top = ferry_heap_peek(&w->deadlines)) != NULL) {
        struct ferry_table_waiter *waiter =
            (struct ferry_table_waiter *)((char *)top -
                                          offsetof(struct ferry_table_waiter, deadline));
        take(w, waiter, out);
    }
}

static void *watch_main(void *arg)
{
    ferry_table_watch *w = arg;
    struct waiter_list woken, expired, left;

    TAILQ_INIT(&woken);
    TAILQ_INIT(&expired);
    TAILQ_INIT(&left);
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        take_due(w, &woken, &expired);
        if (TAILQ_EMPTY(&woken) && TAILQ_EMPTY(&expired)) {
            sleep_until_due(w);
            continue;
        }
        pthread_mutex_unlock(&w->lock);
        answer_all(&woken, FERRY_WAKE_CHANGED);
        answer_all(&expired, FERRY_WAKE_DEADLINE);
        pthread_mutex_lock(&w->lock);
    }
    take_all(w, &left);
    pthread_mutex_unlock(&w->lock);
    answer_all(&left, FERRY_WAKE_STOPPING);
    return NULL;
}

/* ---- lifecycle ---- */

ferry_table_watch *ferry_table_watch_new(ferry_tables *ts, char *errstr, size_t errstr_size)
{
    ferry_table_watch *w = calloc(1, sizeof(*w));
    pthread_condattr_t attr;

    if (!w) {
        snprintf(errstr, errstr_size, "out of memory for the tables' watch");
        return NULL;
    }
    w->tables = ts;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->changed, &attr);
    pthread_condattr_destroy(&attr);
    ferry_heap_init(&w->deadlines);
    TAILQ_INIT(&w->woken);
    for (size_t i = 0; i < ts->count; i++) {
        struct table_watch *tw = calloc(1, sizeof(*tw));
        if (!tw) {
            snprintf(errstr, errstr_size, "out of memory for the tables' watch");
            ferry_table_watch_destroy(w);
            return NULL;
        }
        tw->owner = w;
        for (size_t b = 0; b < WATCH_BUCKETS; b++)
            TAILQ_INIT(&tw->buckets[b]);
        TAILQ_INIT(&tw->offsets);
        ts->tables[i].watch = tw;
    }
    return w;
}

int ferry_table_watch_start(ferry_table_watch *w, char *errstr, size_t errstr_size)
{
    int rc = pthread_create(&w->thread, NULL, watch_main, w);

    if (rc != 0) {
        snprintf(errstr, errstr_size, "cannot start the tables' watch thread: %s", strerror(rc));
        return -1;
    }
    w->thread_started = 1;
    return 0;
}

void ferry_table_watch_stop(ferry_table_watch *w)
{
    struct waiter_list left;

    if (!w)
        return;
    TAILQ_INIT(&left);
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
    if (w->thread_started)
        pthread_join(w->thread, NULL);
    w->thread_started = 0;
    /* Without a thread (it never started), answer here what was parked. */
    pthread_mutex_lock(&w->lock);
    take_all(w, &left);
    while (!TAILQ_EMPTY(&w->woken))
        take(w, TAILQ_FIRST(&w->woken), &left);
    pthread_mutex_unlock(&w->lock);
    answer_all(&left, FERRY_WAKE_STOPPING);
}

void ferry_table_watch_destroy(ferry_table_watch *w)
{
    if (!w)
        return;
    ferry_table_watch_stop(w);
    for (size_t i = 0; i < w->tables->count; i++) {
        free(w->tables->tables[i].watch);
        w->tables->tables[i].watch = NULL;
    }
    ferry_heap_release(&w->deadlines);
    pthread_cond_destroy(&w->changed);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
