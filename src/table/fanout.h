/*
 * fanout.h - the subscriptions to the tables' changes: one thread sends every subscriber its
 * state, then each change the apply threads commit, as Server-Sent Events (sse.h) on a
 * streamed answer (core/httpd.h). events.c parses the requests; docs/table-events.md is the
 * contract with clients.
 *
 * How a change reaches a subscriber. The apply thread keeps, for each record of a write
 * transaction, its key, partition, offset and whether it was a tombstone, but only while some
 * subscription exists (ferry_table_fanout_batch_open). It commits through
 * ferry_table_fanout_commit, which queues that list in the same step. The fanout thread appends
 * the lists to the table's log of changes, in commit order, and moves each subscription through
 * the log from its own position as far as its queue has room; one whose queue is full waits
 * there. A change is looked up in the store: one whose row the store still holds (a put with
 * the same partition and offset, or a delete of a key still gone) is sent to the subscriptions
 * it matches; one the store has moved past is skipped, since a later change of the same key
 * follows in the log. Hence per key the events never go back, across keys they follow commit
 * order, and changes of one key are conflated into the latest when a subscription reaches them
 * late (within a batch, always). A subscriber whose queue stays full for half of
 * server.connection_timeout, or that falls behind the log's limit, is told and disconnected.
 *
 * States. A part of a state (a key's row, a page of a prefix's rows) is read while no commit
 * can happen (the commit lock), after the subscription has taken every change committed before:
 * the part covers those and every change after it is sent. A prefix's pages go out as the
 * subscriber's queue has room; a change of a key the pages have already passed is sent at once,
 * one they have not reached is left to them.
 *
 * Threads: the apply thread calls the batch functions; server threads subscribe; the stream's
 * notifications arrive on server threads; everything else runs on the fanout thread.
 */
#ifndef FERRY_TABLE_FANOUT_H
#define FERRY_TABLE_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "core/httpd.h"
#include "table/etag.h"
#include "table/state.h"
#include "table/store.h"

typedef struct ferry_table_fanout ferry_table_fanout;

/* Makes the subscriptions of every table of ts (the thread starts with
 * ferry_table_fanout_start); heartbeats go out at least every min(15 s, connection_timeout_ms
 * / 2). Returns NULL with errstr. @locality main thread */
ferry_table_fanout *ferry_table_fanout_new(ferry_tables *ts, int64_t connection_timeout_ms,
                                           char *errstr, size_t errstr_size);

/* Starts the fanout thread. Returns 0, or -1 with errstr. @locality main thread */
int ferry_table_fanout_start(ferry_table_fanout *f, char *errstr, size_t errstr_size);

/* Ends every subscription with `event: shutdown` and the end of its stream, refuses new ones
 * and joins the thread. Call while the server still runs, after the apply threads stopped (so
 * that their last commits are sent first). Accepts NULL; safe twice. @locality main thread */
void ferry_table_fanout_stop(ferry_table_fanout *f);

/* Frees f after ferry_table_fanout_stop. Accepts NULL. @locality main thread */
void ferry_table_fanout_destroy(ferry_table_fanout *f);

/* ---- subscribing (events.c) ---- */

struct ferry_table_subscription {
    const void *key; /* the key, or the prefix (copied) */
    size_t key_len;
    int prefix;             /* key is a prefix of the keys wanted ("" for all) */
    int resume;             /* Last-Event-ID was given: */
    struct ferry_etag last; /*   the id, taken apart */
};

/* Answers req with a stream of t's events for sub, or with 429 (limits.max_subscribers are all
 * taken) or 503 (shutting down, or out of memory) and a JSON error. Returns the status answered.
 * @locality the handler's server thread */
int ferry_table_fanout_subscribe(struct table *t, ferry_http_req *req,
                                 const struct ferry_table_subscription *sub);

/* ---- the apply thread (apply.c) ---- */

/* Where a batch's record of a key was, and what it did. */
struct ferry_table_mark {
    int32_t partition;
    int64_t offset;
    int deleted; /* a tombstone */
};

/* What a write transaction changed, as the apply thread kept it: record i's key is keys +
 * key_at[i], key_len[i] bytes long, and marks[i] says where it was. */
struct ferry_table_batch {
    const char *keys;
    size_t keys_len;
    const size_t *key_at, *key_len;
    const struct ferry_table_mark *marks;
    size_t n;
    int recorded; /* the keys were kept (ferry_table_fanout_batch_open asked for them) */
    int complete; /* all of them: none was left out for want of room */
};

/* Tells the subscriptions that a write transaction opened. Returns nonzero when some exist:
 * the apply thread must then keep the batch's keys. @locality apply thread */
int ferry_table_fanout_batch_open(struct table *t);

/* Tells the subscriptions that the open write transaction was dropped uncommitted.
 * @locality apply thread */
void ferry_table_fanout_batch_dropped(struct table *t);

/* Commits the open write transaction of store (ferry_store_batch_commit) and, in the same step,
 * hands what it changed to the subscriptions. Returns as ferry_store_batch_commit.
 * @locality apply thread */
int ferry_table_fanout_commit(struct table *t, ferry_store *store,
                              const struct ferry_table_batch *b, char *errstr, size_t errstr_size);

/* Tells the subscriptions that t's store changed in ways no batch lists (a rebuilt store was
 * swapped in): each sends its state again. @locality apply thread */
void ferry_table_fanout_resync(struct table *t);

#endif
