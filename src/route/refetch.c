/*
 * refetch.c - restarts a route consumer's fetching after librdkafka stopped it for a full
 * queue (see refetch.h for why this exists).
 *
 * The queue's size in bytes is not public, so it is estimated from its length and the mean
 * payload of the records the route took lately.
 */
#include "route/refetch.h"
#include "core/units.h"

#include <stdlib.h>

/* Totals are halved past this many records, so the mean follows a change in record sizes. */
#define REFETCH_MEAN_WINDOW (1u << 20)

struct ferry_refetch {
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    size_t near_messages; /* half of queued.min.messages */
    size_t near_bytes;    /* half of queued.max.messages.kbytes, in bytes */
    uint64_t taken;       /* records taken, and their payload bytes, for the mean */
    uint64_t taken_bytes;
    size_t queued; /* the queue's length before the route last took records */
    int near_full; /* the queue was near a limit since the last restart */
};

/* The consumer's value of an integer property, or fallback when it cannot be read. */
static size_t conf_number(rd_kafka_t *rk, const char *name, size_t fallback)
{
    char value[64];
    size_t size = sizeof(value);
    int64_t n;

    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, value, &size) != RD_KAFKA_CONF_OK ||
        ferry_int_parse(value, &n) || n < 0)
        return fallback;
    return (size_t)n;
}

ferry_refetch *ferry_refetch_new(rd_kafka_t *consumer, rd_kafka_queue_t *queue)
{
    ferry_refetch *f = calloc(1, sizeof(*f));

    if (!f)
        return NULL;
    f->consumer = consumer;
    f->queue = queue;
    f->near_messages = conf_number(consumer, "queued.min.messages", 100000) / 2;
    f->near_bytes = conf_number(consumer, "queued.max.messages.kbytes", 65536) * 1024 / 2;
    if (!f->near_messages)
        f->near_messages = 1;
    if (!f->near_bytes)
        f->near_bytes = 1;
    return f;
}

void ferry_refetch_destroy(ferry_refetch *f)
{
    free(f);
}

void ferry_refetch_watch(ferry_refetch *f)
{
    f->queued = rd_kafka_queue_length(f->queue);
}

/* The mean is updated first, so that the very first records taken already count. */
void ferry_refetch_took(ferry_refetch *f, size_t count, size_t bytes)
{
    uint64_t mean;

    f->taken += count;
    f->taken_bytes += bytes;
    if (f->taken > REFETCH_MEAN_WINDOW) {
        f->taken /= 2;
        f->taken_bytes /= 2;
    }
    mean = f->taken ? f->taken_bytes / f->taken : 0;
    if (f->queued >= f->near_messages || (uint64_t)f->queued * mean >= f->near_bytes)
        f->near_full = 1;
}

/* Seeks every partition of parts whose position is known, and that seekable accepts, to that
 * position. */
static int seek_to_positions(ferry_refetch *f, const rd_kafka_topic_partition_list_t *parts,
                             ferry_refetch_seekable_fn *seekable, void *arg)
{
    rd_kafka_topic_partition_list_t *known = rd_kafka_topic_partition_list_new(parts->cnt);
    rd_kafka_error_t *error = NULL;
    int result = 0;

    if (!known)
        return 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->offset >= 0 && (!seekable || seekable(arg, p->topic, p->partition)))
            rd_kafka_topic_partition_list_add(known, p->topic, p->partition)->offset = p->offset;
    }
    if (known->cnt) {
        error = rd_kafka_seek_partitions(f->consumer, known, 0); /* 0: asynchronous */
        result = error ? 0 : 1;
    }
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(known);
    return result;
}

int ferry_refetch_on_empty(ferry_refetch *f, int paused, ferry_refetch_seekable_fn *seekable,
                           void *arg)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int result = 0;

    if (!f->near_full || paused)
        return 0;
    f->near_full = 0;
    if (rd_kafka_assignment(f->consumer, &parts) || !parts)
        return 0;
    if (rd_kafka_position(f->consumer, parts) == RD_KAFKA_RESP_ERR_NO_ERROR)
        result = seek_to_positions(f, parts, seekable, arg);
    rd_kafka_topic_partition_list_destroy(parts);
    return result;
}
