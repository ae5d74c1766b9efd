/*
 * watch.h - reads that wait: long polls on a key, and reads that wait for the table to apply
 * an offset (read-your-writes).
 *
 * A waiting read is a suspended HTTP request, so it holds no thread. It waits for one of:
 *   - a change of its key (FERRY_WAIT_KEY): the apply thread reports the keys of every batch
 *     it commits, and each waiter on one of them is woken;
 *   - every partition it names reaching an offset (FERRY_WAIT_OFFSETS): checked after each
 *     commit;
 *   - its deadline.
 * Woken waiters are answered on the watch's own thread through their wake callback, never on
 * the apply thread, and a change that lands while a request is being parked is never missed
 * (see ferry_table_watch_seq). One watch serves every table of the job.
 */
#ifndef FERRY_TABLE_WATCH_H
#define FERRY_TABLE_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core/heap.h"
#include "table/state.h"

typedef struct ferry_table_watch ferry_table_watch;

enum ferry_wait_kind { FERRY_WAIT_KEY, FERRY_WAIT_OFFSETS };

/* Why a waiter is woken. */
enum ferry_wake {
    FERRY_WAKE_CHANGED,  /* its key changed, or its offsets were reached */
    FERRY_WAKE_DEADLINE, /* its wait is over */
    FERRY_WAKE_STOPPING, /* ferry is shutting down */
};

/* One waiting read: embed it in the request's own struct. The fields above the line are set by
 * the caller before ferry_table_watch_park(). */
struct ferry_table_waiter {
    struct table *table;
    const void *key; /* FERRY_WAIT_KEY: owned by the caller until woken */
    size_t key_len;
    int64_t *offsets; /* FERRY_WAIT_OFFSETS: one per partition of the table, -1 for none: wait
                         until each partition's applied offset passes it; owned by the caller */
    /* Called once a park, on the watch thread (on the thread stopping the watch when it never
     * started); must answer the request, or park the waiter again. The waiter is no longer in
     * the watch and may be freed. */
    void (*wake)(struct ferry_table_waiter *w, enum ferry_wake why);
    struct ferry_heap_node deadline; /* key: when the wait ends, on ferry_clock_ms() */
    uint8_t kind;                    /* enum ferry_wait_kind */
    /* ---- the watch's own; small types, as every parked read holds one */
    uint8_t where;
    uint32_t hash;
    TAILQ_ENTRY(ferry_table_waiter) link; /* in a key bucket, the offset list or the woken */
};

/* Makes the watch for the tables of ts (its thread starts with ferry_table_watch_start).
 * Returns NULL with errstr. Main thread. */
ferry_table_watch *ferry_table_watch_new(ferry_tables *ts, char *errstr, size_t errstr_size);

/* Starts the watch thread. Returns 0, or -1 with errstr. Main thread. */
int ferry_table_watch_start(ferry_table_watch *w, char *errstr, size_t errstr_size);

/* Wakes every waiter with FERRY_WAKE_STOPPING, refuses new ones, and joins the thread. Main
 * thread, while the server still runs. Accepts NULL; safe twice. */
void ferry_table_watch_stop(ferry_table_watch *w);

/* Frees the watch after ferry_table_watch_stop. Accepts NULL. */
void ferry_table_watch_destroy(ferry_table_watch *w);

/* The table's change count: read it before looking at the store, and pass it to park, so that
 * a change committed in between wakes a key waiter at once (an offset waiter is woken only
 * when its offsets are reached, whatever seq says). Any thread. */
uint64_t ferry_table_watch_seq(const struct table *t);

/* Parks w until its condition, its deadline or shutdown. Returns 0 when parked; -1 when the
 * table's limits.max_waiters are all taken (answer 429) or the watch is stopping (503), with
 * *full telling which; w was not parked then and its wake is not called. A waiter parked again
 * by its own wake callback kept its place meanwhile: it is never refused for max_waiters.
 * Server threads, or the watch thread from a wake callback. */
int ferry_table_watch_park(ferry_table_watch *w, struct ferry_table_waiter *waiter, uint64_t seq,
                           int *full);

/* Nonzero when some read waits on a key of t: only then need the apply thread report keys.
 * Apply thread. */
int ferry_table_watch_wants_keys(const struct table *t);

/* Reports a commit of t: the keys it changed (n of them; keys[i] of lens[i] bytes), or
 * all_keys when they were too many to list. Wakes the waiters it satisfies. Apply thread,
 * after the commit is visible to readers and the applied offsets are published. */
void ferry_table_watch_committed(struct table *t, const void *const *keys, const size_t *lens,
                                 size_t n, int all_keys);

/* Parked waiters of t right now (for /metrics). Any thread. */
size_t ferry_table_watch_count(const struct table *t);

#endif
