/*
 * fanout_int.h - what the files of the subscriptions share: fanout.c (the thread, the lives of
 * subscriptions, the apply thread's side), fanout_log.c (the log of committed changes and the
 * walk that sends them) and fanout_state.c (states). Nothing else includes it.
 *
 * Each table keeps a log of the changes its commits made, numbered in commit order. Every
 * subscription has a position in it: the number of the next change it has not considered. The
 * walk moves each subscription on through the log as far as its queue has room; one whose queue
 * is full stays where it is (stalled) until its client has read, while the others go on. The
 * head of the log is freed once every subscription has passed it.
 */
#ifndef FERRY_TABLE_FANOUT_INT_H
#define FERRY_TABLE_FANOUT_INT_H

#include <stdint.h>
#include <sys/queue.h>

#include "core/buf.h"
#include "table/fanout.h"

#define FANOUT_BUCKETS 256                   /* key subscriptions' buckets, per table */
#define FANOUT_EVENT_MAX (64 * 1024 * 1024)  /* one event's text; values are Kafka records */
#define FANOUT_QUEUE_BYTES (8 * 1024 * 1024) /* queued for one subscriber, beside the count */
#define FANOUT_LOG_MAX (64 * 1024 * 1024)    /* a table's committed changes not taken by everyone */

enum phase {
    PHASE_NEW,   /* waits for its state */
    PHASE_STATE, /* a prefix's state is being sent, page by page */
    PHASE_LIVE,  /* takes every change */
};

struct change {
    size_t key_at, key_len;
    struct ferry_table_mark mark;
};

/* What one commit changed. A lost batch stands for changes that were not kept (too many keys,
 * no memory, a rebuilt store): a subscription that passes it sends its state again. */
struct change_batch {
    STAILQ_ENTRY(change_batch) link;
    uint64_t first; /* the number of its first change in the log */
    size_t n;       /* its changes; a lost batch takes one number */
    size_t bytes;
    int lost;
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
    struct ferry_etag last; /* Last-Event-ID, when resume */
    enum phase phase;
    uint64_t pos;         /* the next change of the log it has not considered */
    int reset;            /* its next state begins with `event: reset` */
    int waiting;          /* stalled: for its queue to drain */
    int64_t stalled_ms;   /* when it stalled, or when its client last took something since */
    uint64_t stall_taken; /* what the stream had taken then (ferry_http_stream_taken) */
    int dead;             /* ended: freed at the end of the turn */
    unsigned char cursor[FERRY_STORE_CURSOR_MAX]; /* PHASE_STATE: the last row sent */
    size_t cursor_len;
    uint64_t state_keys;
    /* key subscriptions: the last state sent */
    int sent, sent_deleted;
    int32_t sent_partition;
    int64_t sent_offset;
    uint32_t sent_hash; /* of the value sent (a rebuilt store may hold another at that place) */
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
    /* under commit_lock: what the apply thread committed since the thread last looked */
    struct batch_queue batches;
    size_t backlog;      /* their bytes */
    int lost;            /* changes were not kept: a lost batch goes first */
    int open_unrecorded; /* the open write transaction keeps no keys */
    /* the thread's */
    struct batch_queue log;
    uint64_t head, tail; /* the numbers of the log's first change and of the next to come */
    size_t log_bytes;
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
    int64_t stall_ms; /* a subscriber stalled longer is too slow */
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

/* ---- fanout.c ---- */

struct sub_list *ferry_fanout_bucket(struct table_fanout *tf, const void *key, size_t len);

/* Ends s: its stream gets last (may be NULL) and ends; s is freed at the end of the turn. */
void ferry_fanout_end(struct sub *s, const char *last, size_t len);

/* Ends s with a last event (error, shutdown) of the reason and message given. */
void ferry_fanout_end_notice(struct sub *s, const char *event, const char *reason,
                             const char *message);

/* Ends s with `event: error` (reason slow_subscriber) saying why. */
void ferry_fanout_end_slow(struct sub *s, const char *why);

/* Writes text (items events) to s. Returns 0; 1 when its queue is full (s is now stalled and
 * waits for it to drain); -1 when s ended. */
int ferry_fanout_write(struct sub *s, const char *text, size_t len, size_t items);

/* Stalls s until its queue has drained (or ends it when its client has gone). */
void ferry_fanout_stall(struct sub *s);

void ferry_fanout_list_state(struct table_fanout *tf, struct sub *s);
void ferry_fanout_unlist_state(struct table_fanout *tf, struct sub *s);

/* ---- fanout_log.c ---- */

/* Moves what the apply thread committed into the log. Under commit_lock. */
void ferry_fanout_absorb(struct table_fanout *tf);

/* Sends the log's changes to the subscriptions that are not stalled, each from its position,
 * or to only that one (NULL: all). */
void ferry_fanout_walk(struct table_fanout *tf, struct sub *only);

/* Frees the head of the log that every subscription has passed; past FANOUT_LOG_MAX, ends the
 * subscriptions that hold the head back. */
void ferry_fanout_trim(struct table_fanout *tf);

void ferry_fanout_free_batches(struct batch_queue *q);

/* ---- fanout_state.c ---- */

/* Sends s (PHASE_NEW or PHASE_STATE) the next part of its state, as its queue has room. */
void ferry_fanout_state_step(struct table_fanout *tf, struct sub *s);

/* s passed a lost batch: a key subscription sends its key's state when it differs from what it
 * sent last; a prefix starts its state again, after `event: reset`. */
void ferry_fanout_resync(struct table_fanout *tf, struct sub *s);

#endif
