/*
 * retry_rebuild.c - reads a route's retry partitions from their committed offsets to their
 * ends (see retry_rebuild.h), with a consumer that assigns partitions and never joins a group.
 */
#include "route/retry_rebuild.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REBUILD_POLL_MS 100

/* The reader, with the route's own properties (overrides): assigns partitions, commits
 * nothing, and says when a partition's end is reached. */
static rd_kafka_t *reader_new(ferry_kafka *k, const char *name,
                              const struct ferry_cfg_map *overrides, void **opaque, char *errstr,
                              size_t errstr_size)
{
    static const char *const props[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"group.id", "ferry-retry-rebuild"}, /* for the consumer API only: it never joins */
    };
    char why[512];
    rd_kafka_conf_t *conf = ferry_kafka_conf_new(k, FERRY_KAFKA_CONSUMER, name, overrides, NULL,
                                                 opaque, errstr, errstr_size);
    rd_kafka_t *rk;

    if (!conf)
        return NULL;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            snprintf(errstr, errstr_size, "retry topic reader: %s", why);
            return NULL;
        }
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot create the retry topic reader: %s", why);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int64_t time_left(int64_t deadline_ms)
{
    int64_t left = deadline_ms - ferry_clock_ms();
    return left > 0 ? left : 1;
}

/* Sets each partition's offset to where reading starts (committed, else its start) and
 * ends[i] to its end. Returns how many partitions have something to read, or -1 with
 * errstr. */
static int resolve(rd_kafka_t *group, rd_kafka_t *reader, rd_kafka_topic_partition_list_t *parts,
                   int64_t *ends, int64_t deadline_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = rd_kafka_committed(group, parts, (int)time_left(deadline_ms));
    int todo = 0;

    if (err) {
        snprintf(errstr, errstr_size, "committed offsets of the retry topics: %s",
                 rd_kafka_err2str(err));
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low = 0, high = 0;
        err = rd_kafka_query_watermark_offsets(reader, p->topic, p->partition, &low, &high,
                                               (int)time_left(deadline_ms));
        if (err) {
            snprintf(errstr, errstr_size, "end of %s [%d]: %s", p->topic, p->partition,
                     rd_kafka_err2str(err));
            return -1;
        }
        if (p->offset < low)
            p->offset = low; /* nothing committed, or retention took it */
        ends[i] = high;
        todo += p->offset < high;
    }
    return todo;
}

/* Index of the message's partition in parts, or -1. */
static int index_of(const rd_kafka_topic_partition_list_t *parts, const rd_kafka_message_t *msg)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);

    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition == msg->partition &&
            strcmp(parts->elems[i].topic, topic) == 0)
            return i;
    return -1;
}

/* Polls until every partition reached its end or the deadline. Returns the records handed to
 * found, or -1 when the deadline came first. */
static long read_to_ends(rd_kafka_t *reader, const rd_kafka_topic_partition_list_t *parts,
                         const int64_t *ends, char *done, int todo, int64_t deadline_ms,
                         void (*found)(void *arg, const rd_kafka_message_t *msg), void *arg)
{
    long n = 0;

    while (todo > 0 && ferry_clock_ms() < deadline_ms) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(reader, REBUILD_POLL_MS);
        int i;

        if (!msg)
            continue;
        i = index_of(parts, msg);
        if (i >= 0 && !msg->err && msg->offset < ends[i]) {
            found(arg, msg);
            n++;
        }
        if (i >= 0 && !done[i] &&
            (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
             (!msg->err && msg->offset + 1 >= ends[i]))) {
            done[i] = 1;
            todo--;
        }
        rd_kafka_message_destroy(msg);
    }
    return todo > 0 ? -1 : n;
}

long ferry_retry_rebuild(ferry_kafka *k, rd_kafka_t *group, const char *name,
                         const struct ferry_cfg_map *overrides,
                         rd_kafka_topic_partition_list_t *parts,
                         void (*found)(void *arg, const rd_kafka_message_t *msg), void *arg,
                         char *errstr, size_t errstr_size)
{
    int64_t deadline = ferry_clock_ms() + FERRY_RETRY_REBUILD_TIMEOUT_MS;
    int64_t *ends = calloc((size_t)parts->cnt + 1, sizeof(*ends));
    char *done = calloc((size_t)parts->cnt + 1, 1);
    void *opaque = NULL;
    rd_kafka_t *reader = NULL;
    long result = -1;
    int todo;

    if (!ends || !done) {
        snprintf(errstr, errstr_size, "out of memory reading the retry topics");
        goto out;
    }
    reader = reader_new(k, name, overrides, &opaque, errstr, errstr_size);
    if (!reader)
        goto out;
    todo = resolve(group, reader, parts, ends, deadline, errstr, errstr_size);
    if (todo < 0)
        goto out;
    for (int i = 0; i < parts->cnt; i++)
        done[i] = parts->elems[i].offset >= ends[i];
    if (todo && rd_kafka_assign(reader, parts)) {
        snprintf(errstr, errstr_size, "cannot read the retry topics");
        goto out;
    }
    result = read_to_ends(reader, parts, ends, done, todo, deadline, found, arg);
    if (result < 0)
        snprintf(errstr, errstr_size, "the retry topics were not read to their ends within %d s",
                 FERRY_RETRY_REBUILD_TIMEOUT_MS / 1000);
out:
    if (reader) {
        rd_kafka_consumer_close(reader);
        rd_kafka_destroy(reader);
    }
    if (opaque)
        ferry_kafka_client_release(k, opaque);
    free(ends);
    free(done);
    return result;
}
