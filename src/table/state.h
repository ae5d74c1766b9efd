/*
 * state.h - the state of one table, shared by the files of src/table/ that run it: table.c
 * (the job: lifecycle, readiness, metrics), apply.c (the thread that applies the topic to the
 * store) and read.c (the HTTP API). Nothing outside src/table/ includes this.
 *
 * Threads: each table has one apply thread, the only writer of its store and of the fields
 * marked "apply thread" below. The server's threads read the store and the atomics. The
 * store pointer itself changes only when a rebuilt store is swapped in, under store_lock.
 */
#ifndef FERRY_TABLE_STATE_H
#define FERRY_TABLE_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/kafka.h"
#include "core/metrics.h"
#include "table/store.h"
#include "table/table_config.h"

#define TABLE_PATH_MAX 4096

/* Where a table is in its life, as readiness and the HTTP API see it. */
enum table_state {
    TABLE_STARTING,  /* reading metadata, opening the store */
    TABLE_LOADING,   /* applying records, not yet within ready_lag of the end */
    TABLE_READY,     /* answering reads */
    TABLE_FULL,      /* the store reached max_size: reads go on, applying stopped */
    TABLE_FAILED,    /* cannot go on (logged); reads of what is stored go on */
    TABLE_DISK_FULL, /* the store's volume has no room: reads go on, applying waits for space */
};

/* One partition of the table's topic. */
struct table_partition {
    _Atomic int64_t applied; /* next offset to apply: every record before it is in the store */
    _Atomic int64_t end;     /* the partition's end (high watermark) as last seen */
    int64_t ready_end;       /* the end the table must reach to be ready (apply thread; -1 while
                              * not known) */
    atomic_int held;         /* the apply thread reads it: every partition for placement `all` */
    atomic_int serving;      /* held and caught up with the end it had when assigned */
    int64_t given_up_ms;     /* apply thread: when it stopped being held, or was found stored but
                              * not held at start (0: held, or its rows deleted) */
    int unstored;            /* apply thread: the store has no offset of it (none applied yet, or
                              * its rows deleted after the grace period): held, it starts from
                              * the beginning */
};

struct table_metrics {
    struct ferry_counter *applied, *deleted, *skipped, *forwarded, *reads[5];
    struct ferry_histogram *apply_latency, *read_latency;
    struct ferry_gauge *ready;
};

struct ferry_tables;
struct ferry_table_watch;
struct table_watch;
struct ferry_table_fanout;
struct table_fanout;
struct ferry_table_cluster;

struct table {
    const struct ferry_table_config *cfg;
    struct ferry_tables *owner;
    struct table_watch *watch;   /* this table's waiting reads (watch.c) */
    struct table_fanout *fanout; /* this table's subscriptions (fanout.c) */
    char path[TABLE_PATH_MAX];
    ferry_kafka *kafka;
    ferry_metrics *metrics;
    struct table_metrics m;

    pthread_rwlock_t store_lock; /* writers: the swap of a rebuilt store */
    ferry_store *store;
    atomic_int rebuilding;

    atomic_int state;     /* enum table_state */
    atomic_int was_ready; /* the state was TABLE_READY once: the store holds a whole table */
    atomic_int stop;

    /* Set once by the apply thread before state leaves TABLE_STARTING, then fixed. */
    int32_t npartitions;
    struct table_partition *parts;

    /* apply thread */
    int warned_long_key;
    int32_t forgetting; /* the partition whose rows are being deleted, or -1 */
    unsigned char forget_cursor[FERRY_STORE_CURSOR_MAX];
    size_t forget_cursor_len;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue; /* the consumer's, read many messages at a time */
    void *consumer_opaque;
    pthread_t thread;
    int thread_started;
};

/* The job: every table of the config. */
typedef struct ferry_tables {
    struct table *tables;
    size_t count;
    ferry_metrics *metrics;
    struct ferry_table_watch *watch;     /* the reads that wait, of every table */
    struct ferry_table_fanout *fanout;   /* the subscriptions, of every table */
    struct ferry_auth *auth;             /* the listener's API keys, owned by the core */
    struct ferry_table_cluster *cluster; /* the members, when a table is placed partitioned */
    struct ferry_table_forward *forward; /* reads sent on to holders, with the cluster */
    int64_t forward_timeout_ms;
    int64_t grace_ms;            /* cluster.grace */
    char tmpdir[TABLE_PATH_MAX]; /* made for the embedded cluster; removed at destroy */
    int stopped;
} ferry_tables;

/* The names of enum table_state, indexed by it. */
extern const char *const ferry_table_states[];

/* Records behind the end, summed over the partitions (0 before the partitions are known).
 * Any thread. */
int64_t ferry_table_lag(const struct table *t);

/* Records behind partition p's end (0 for a partition the table does not know). Any
 * thread. */
int64_t ferry_table_partition_lag(const struct table *t, int32_t p);

/* Takes the store for reading; pair with ferry_table_store_release. Any thread. */
ferry_store *ferry_table_store_acquire(struct table *t);
void ferry_table_store_release(struct table *t);

#endif
