/*
 * dispatch.h - the records of one route between consumption and completion.
 *
 * Consumed records wait in ordering lanes: one lane per key (`ordering: key`), one per
 * partition (`ordering: partition`), or a free lane that imposes no order (`ordering: none`,
 * and records without a key under `ordering: key`). A lane with records in flight is busy and
 * gives out nothing more until they finish, which is what keeps order. Batches are formed from
 * the ready lanes of one partition at a time, so a batch never mixes partitions.
 *
 * Each partition tracks its commit watermark: the lowest offset not yet finished. Finished
 * means delivered or dead-lettered; records given up on (a revoked partition, shutdown) are
 * abandoned instead, so the watermark never passes them and they are delivered again later.
 *
 * Used by one route worker thread only; nothing here locks.
 */
#ifndef FERRY_DISPATCH_H
#define FERRY_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "route/record.h"
#include "route/route_config.h"

typedef struct ferry_dispatch ferry_dispatch;

/* One consumed record. view and msg are the caller's; the rest is the dispatcher's. */
struct ferry_dispatch_rec {
    struct ferry_record view;
    void *msg;    /* the consumer message behind view; released with free_msg */
    size_t bytes; /* key and value sizes, for the memory limits */
    union {       /* a record is on one of the dispatcher's lists at a time */
        STAILQ_ENTRY(ferry_dispatch_rec) queued; /* its lane's queue */
        LIST_ENTRY(ferry_dispatch_rec) flight;   /* its partition's records in flight */
        SLIST_ENTRY(ferry_dispatch_rec) spare;   /* the spares */
    } link;
    struct dispatch_lane *lane;
    struct dispatch_part *part;
    int given_back; /* handed out by next and given back once (ferry_dispatch_give_back) */
};

struct ferry_dispatch_options {
    enum ferry_ordering ordering;
    size_t max_records;
    size_t max_bytes;
    int64_t linger_ms;
    void (*free_msg)(void *msg); /* releases a record's msg */
};

/* Returns a dispatcher, or NULL when out of memory. */
ferry_dispatch *ferry_dispatch_new(const struct ferry_dispatch_options *opts);

/* Frees every record (through free_msg), those in flight included, and every partition.
 * Accepts NULL. */
void ferry_dispatch_destroy(ferry_dispatch *d);

/* Starts tracking a partition that was assigned. Returns 0, or -1 when out of memory. */
int ferry_dispatch_assign(ferry_dispatch *d, const char *topic, int32_t partition);

/* Notes that a record of topic/partition came from the consumer: its fetch has started since
 * it was assigned. Returns 1 the first time after an assignment, else 0 (0 too for a
 * partition not assigned). */
int ferry_dispatch_note_fetched(ferry_dispatch *d, const char *topic, int32_t partition);

/* Whether a record of topic/partition came since it was last assigned (see above). */
int ferry_dispatch_fetched(const ferry_dispatch *d, const char *topic, int32_t partition);

/* Stops forming batches from a partition that is being revoked; its records already in
 * flight may still finish and move its watermark. */
void ferry_dispatch_drain(ferry_dispatch *d, const char *topic, int32_t partition);

/* Forgets a revoked partition: records not in flight are released, records in flight are
 * released when they finish or are abandoned, without moving any watermark. */
void ferry_dispatch_revoke(ferry_dispatch *d, const char *topic, int32_t partition);

/* What ferry_dispatch_add did with a record. On anything but TAKEN the caller releases msg. */
enum ferry_dispatch_added {
    FERRY_DISPATCH_TAKEN = 0,
    /* Its partition is not assigned (or is being revoked), or its offset is not past the last
     * one taken: another owner, or an earlier delivery, has it. */
    FERRY_DISPATCH_NOT_OURS = -1,
    /* Memory ran out: nothing was taken, so the record must be consumed again (seek back to
     * its offset), or the watermark would pass it. Until it comes again, its partition's
     * later records are NOT_OURS. */
    FERRY_DISPATCH_NO_MEMORY = -2,
};

/* Takes a consumed record. Returns an enum ferry_dispatch_added. */
int ferry_dispatch_add(ferry_dispatch *d, const struct ferry_record *view, void *msg, size_t bytes,
                       int64_t now_ms);

/* Forms the next request: fills out[0..n) with records of one partition, in the order they
 * must be sent, and returns n (0 when nothing is due). A partial batch is due once its oldest
 * record lingered linger_ms, or at once when flush is set. */
size_t ferry_dispatch_next(ferry_dispatch *d, int64_t now_ms, int flush,
                           struct ferry_dispatch_rec **out, size_t max);

/* The earliest time a lingering partial batch becomes due, or INT64_MAX. */
int64_t ferry_dispatch_next_due_ms(const ferry_dispatch *d);

/* Puts back records that next handed out and that were not sent: recs[0..n) must be the tail
 * of one batch. They go back to the head of their lanes in their order and are handed out
 * again, an ordered lane's once the records of it still in flight are finished: a batch cut
 * short never has two requests of one key (or partition) under way at once. */
void ferry_dispatch_give_back(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n);

/* Marks records delivered or dead-lettered: moves watermarks, frees lanes, releases them. */
void ferry_dispatch_finish(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n);

/* Releases records without finishing them (they will be consumed again). */
void ferry_dispatch_abandon(ferry_dispatch *d, struct ferry_dispatch_rec **recs, size_t n);

/* Nonzero when a record's partition was drained or revoked: do not send or retry it. */
int ferry_dispatch_rec_stale(const struct ferry_dispatch_rec *rec);

/* Calls fn for each live partition whose watermark moved since the last call, with the
 * offset to commit (the lowest unfinished one). */
void ferry_dispatch_take_commits(ferry_dispatch *d,
                                 void (*fn)(void *arg, const char *topic, int32_t partition,
                                            int64_t offset),
                                 void *arg);

/* The commit offset of a partition, or -1 when nothing was consumed from it. */
int64_t ferry_dispatch_commit_offset(const ferry_dispatch *d, const char *topic, int32_t partition);

/* Records of a partition in flight (handed out by next and not yet finished or abandoned). */
size_t ferry_dispatch_in_flight(const ferry_dispatch *d, const char *topic, int32_t partition);

/* Idle key lanes a partition keeps for keys that come again, instead of freeing and making
 * them anew for every record; past this many lanes, idle ones are freed. */
#define FERRY_DISPATCH_IDLE_LANES_MAX 256

/* Key lanes of an assigned partition, busy and idle (0 when it is not assigned), so that tests
 * can see idle lanes kept and bounded. */
size_t ferry_dispatch_key_lanes(const ferry_dispatch *d, const char *topic, int32_t partition);

/* Records and bytes held: consumed and not yet finished or abandoned. */
size_t ferry_dispatch_records(const ferry_dispatch *d);
size_t ferry_dispatch_bytes(const ferry_dispatch *d);

#endif
