/*
 * fetch_nudge.c - wakes librdkafka's fetcher while a table loads.
 *
 * librdkafka 2.0.2 (Debian 12's) stops fetching while the consumer's queue holds more than
 * queued.min.messages messages or queued.max.messages.kbytes, and looks at the queue again
 * only when its broker thread wakes up next: when nothing else happens, at that thread's
 * one-second tick (librdkafka 2.2 added fetch.queue.backoff.ms for this). A restore drains
 * the 100,000 messages it stops at in about 0.2 s, then waited for the rest of the second:
 * 0.3 to 0.8 s of every second or so of a restore (bench/README.md, "session 6"). Any request
 * handed to a broker's thread wakes it, and it fetches again once it sees the queue drained.
 *
 * So while a table loads, this thread looks at the consumer's queue every NUDGE_TICK_MS and,
 * when it holds a quarter or less of the most it held since the last nudge, asks one
 * partition's leader for the partition's offsets: the next partition each time, so that every
 * leader's thread is woken in turn. A request waits behind the fetch in flight on its
 * connection, and is made here rather than on the apply thread for that reason. The answer is
 * not needed; the table reads the partitions' ends from the fetches.
 */
#include "table/fetch_nudge.h"
#include "core/clock.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NUDGE_TICK_MS 5          /* between looks at the queue */
#define NUDGE_MIN_INTERVAL_MS 20 /* between two nudges at most */
#define NUDGE_REQUEST_MS 500     /* one offsets request at most (its answer is not used) */

struct ferry_table_nudge {
    struct table *t;
    pthread_t thread;
    atomic_int stop;
    int64_t nudges; /* the thread's, read after the join */
};

/* Asks partition p's leader for p's offsets: the request wakes that broker's thread. */
static void nudge_partition(struct table *t, int32_t p)
{
    int64_t low, high;

    (void)rd_kafka_query_watermark_offsets(t->consumer, t->cfg->topic, p, &low, &high,
                                           NUDGE_REQUEST_MS);
}

static void *nudge_main(void *arg)
{
    ferry_table_nudge *n = arg;
    struct table *t = n->t;
    struct timespec tick = {0, NUDGE_TICK_MS * 1000000L};
    size_t peak = 0;
    int64_t last = 0;
    int32_t p = 0;

    while (!atomic_load(&n->stop) && !atomic_load(&t->stop)) {
        size_t len = rd_kafka_queue_length(t->queue);
        int64_t now = ferry_clock_ms();

        peak = len > peak ? len : peak;
        if (len <= peak / 4 && now - last >= NUDGE_MIN_INTERVAL_MS) {
            nudge_partition(t, p);
            p = t->npartitions > 0 ? (p + 1) % t->npartitions : 0;
            n->nudges++;
            last = now;
            peak = len;
        }
        nanosleep(&tick, NULL);
    }
    return NULL;
}

ferry_table_nudge *ferry_table_nudge_new(struct table *t, char *errstr, size_t errstr_size)
{
    ferry_table_nudge *n = calloc(1, sizeof(*n));
    int rc;

    if (!n) {
        snprintf(errstr, errstr_size, "out of memory for the fetch nudge");
        return NULL;
    }
    n->t = t;
    rc = pthread_create(&n->thread, NULL, nudge_main, n);
    if (rc) {
        snprintf(errstr, errstr_size, "cannot start the fetch nudge's thread: %s", strerror(rc));
        free(n);
        return NULL;
    }
    return n;
}

void ferry_table_nudge_stop(ferry_table_nudge *n)
{
    atomic_store(&n->stop, 1);
}

void ferry_table_nudge_destroy(ferry_table_nudge *n)
{
    if (!n)
        return;
    ferry_table_nudge_stop(n);
    pthread_join(n->thread, NULL);
    FLOG_DEBUG("table", n->t->cfg->name, "loading woke the fetcher %lld time(s)",
               (long long)n->nudges);
    free(n);
}
