/*
 * parking.c - a route's retry topics: non-blocking delayed retries.
 *
 * Once a record's attempts in place ran out on an answer worth retrying, the route parks it on
 * its next retry topic (retry_topic.h says what it carries) with one dead-letter backlog per
 * retry topic (deadletter_backlog.h), and the record is finished when the broker confirmed
 * the write: its partition goes on. The route consumes its own retry topics; a record that is
 * not due yet holds its partition (retry_hold.h) until it is, and then comes again and is sent
 * as any other. After the last retry topic comes the dead-letter topic.
 *
 * Under `ordering: key` the route keeps the parked records by key (retry_parked.h): a record
 * whose key has an earlier record parked is parked behind it (on retry topic 1, or on its own
 * retry topic again when it came from one) instead of being sent, and a record coming back is
 * sent only when no earlier record of its key is parked. The set is rebuilt from the retry
 * topics whenever the route is given partitions (retry_rebuild.h). A record is known by its
 * original topic, partition and offset, which a parked copy carries in its headers.
 *
 * Parked records go to the retry topic's partition with their original partition's number
 * when it has that many (else the partitioner chooses), and routes with retry topics use the
 * range assignor (route.c), so that with as many partitions in the retry topics as in the
 * route's topics, one instance owns a source partition and the retry partitions its records
 * are parked on.
 *
 * Everything here runs on the route's worker thread.
 */
#include "core/clock.h"
#include "core/log.h"
#include "route/retry_rebuild.h"
#include "route/route_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARKING_META_TIMEOUT_MS 5000
#define PARKING_KEY_MAX (16u << 20) /* longest key the parked set tracks; longer are not kept */
#define PARKING_BEHIND "behind an earlier record of its key on a retry topic"
#define PARKING_SEEK_AGAIN_MS 1000 /* a held partition whose seek failed is tried again after */

/* ---- set-up ---- */

/* The producer's poller thread calls this when a parking write's report is ready. */
static void wake_route(void *arg)
{
    const struct route *r = arg;
    ferry_sender_wakeup(r->sender);
}

/* The number of partitions of topic, or 0 (logged) when the brokers did not say. Asking makes
 * the topic where brokers create topics on first use (the embedded cluster does). */
static int32_t topic_partitions(const struct route *r, const char *topic)
{
    rd_kafka_t *rk = ferry_kafka_producer(r->kafka);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__NOENT;
    int32_t n = 0;

    if (rkt)
        err = rd_kafka_metadata(rk, 0, rkt, &md, PARKING_META_TIMEOUT_MS);
    if (!err)
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!err)
        n = md->topics[0].partition_cnt;
    if (!n)
        FLOG_WARN_REPEATED("route", r->cfg->name,
                           "retry topic %s: %s; create it with as many partitions as the "
                           "route's topics",
                           topic, err ? rd_kafka_err2str(err) : "it has no partitions");
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return n;
}

static int make_writer(struct route *r, int stage, char *errstr, size_t errstr_size)
{
    struct route_parking *p = &r->parking;
    struct ferry_deadletter_backlog_options o = {
        .kafka = r->kafka,
        .topic = p->topics.names[stage - 1],
        .route = r->cfg->name,
        .wake = wake_route,
        .wake_arg = r,
        .dispatch = r->dispatch,
        .dead_lettered = r->m.parked,
        .refused = r->m.dead_letter_refused,
        .retry_stage = stage,
    };

    p->writers[stage - 1] = ferry_deadletter_backlog_new(&o, errstr, errstr_size);
    return p->writers[stage - 1] ? 0 : -1;
}

int route_parking_init(struct route *r, char *errstr, size_t errstr_size)
{
    struct route_parking *p = &r->parking;

    p->stages = (int)r->cfg->retry.topics.count;
    if (!p->stages)
        return 0;
    ferry_buf_init(&p->key, PARKING_KEY_MAX);
    p->hold = ferry_retry_hold_new();
    if (r->cfg->ordering == FERRY_ORDERING_KEY)
        p->parked = ferry_retry_parked_new((size_t)r->cfg->retry.max_parked);
    if (!p->hold || (r->cfg->ordering == FERRY_ORDERING_KEY && !p->parked)) {
        snprintf(errstr, errstr_size, "out of memory for its retry topics");
        return -1;
    }
    for (int stage = 1; stage <= p->stages; stage++) {
        if (make_writer(r, stage, errstr, errstr_size))
            return -1;
        p->partitions[stage - 1] = topic_partitions(r, p->topics.names[stage - 1]);
    }
    return 0;
}

void route_parking_release(struct route *r)
{
    struct route_parking *p = &r->parking;

    for (int i = 0; i < FERRY_RETRY_STAGES_MAX; i++) {
        ferry_deadletter_backlog_destroy(p->writers[i]); /* late reports no longer reach it */
        p->writers[i] = NULL;
    }
    ferry_retry_hold_destroy(p->hold);
    p->hold = NULL;
    ferry_retry_parked_destroy(p->parked);
    p->parked = NULL;
    ferry_buf_release(&p->key);
}

int route_parking_subscribe(const struct route *r, rd_kafka_topic_partition_list_t *topics)
{
    for (int i = 0; i < r->parking.stages; i++)
        if (!rd_kafka_topic_partition_list_add(topics, r->parking.topics.names[i],
                                               RD_KAFKA_PARTITION_UA))
            return -1;
    return 0;
}

/* ---- what a record is ---- */

/* The retry topic (1-based) topic is, or 0 when it is none of the route's. */
static int stage_of(const struct route *r, const char *topic)
{
    return ferry_retry_topics_stage(&r->parking.topics, topic);
}

/* Reads what a record consumed from a retry topic says about itself. Returns 1 when it is a
 * parked record, else 0 (a record someone else wrote there: it counts as a new one). */
static int parked_meta(const struct route *r, const struct ferry_record *v,
                       struct ferry_retry_meta *m)
{
    char err[256];
    int got = ferry_retry_parked_read(&r->parking.topics, v, m, err, sizeof(err));

    if (got < 0)
        FLOG_WARN_REPEATED("route", r->cfg->name, "%s[%d]@%" PRId64 ": %s; sent as a new record",
                           v->topic, v->partition, v->offset, err);
    return got == 1;
}

/* Makes the parked set's key of a record in the scratch buffer: its original topic, a NUL, its
 * original partition, its key. Returns 0, or -1 when the key is too long to keep. */
static int parked_key(struct route_parking *p, const char *topic, int32_t partition,
                      const struct ferry_record *v)
{
    ferry_buf_reset(&p->key);
    if (ferry_buf_add(&p->key, topic, strlen(topic) + 1) ||
        ferry_buf_add(&p->key, &partition, sizeof(partition)) ||
        ferry_buf_add(&p->key, v->key, v->key_len))
        return -1;
    return 0;
}

static void count_parked_keys(struct route *r)
{
    if (r->parking.parked)
        ferry_gauge_set(r->m.parked_keys, (int64_t)ferry_retry_parked_keys(r->parking.parked));
}

/* Says that a record is parked without being counted in the parked set, which is full. */
static void log_untracked(const struct route *r, const struct ferry_record *v)
{
    FLOG_ERROR_REPEATED("route", r->cfg->name,
                        "more than retry.max_parked (%" PRId64 ") records are parked: later "
                        "records of the key of %s[%d]@%" PRId64 " may overtake it",
                        r->cfg->retry.max_parked, v->topic, v->partition, v->offset);
}

/* ---- holding retry partitions ---- */

static void pause_one(void *arg, const char *topic, int32_t partition)
{
    struct route *r = arg;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(list, topic, partition);
    rd_kafka_pause_partitions(r->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
}

int route_parking_hold(struct route *r, const rd_kafka_message_t *msg, int64_t now_ms)
{
    struct route_parking *p = &r->parking;
    struct ferry_record v = {.topic = rd_kafka_topic_name(msg->rkt),
                             .partition = msg->partition,
                             .offset = msg->offset,
                             .msg = msg};
    struct ferry_retry_meta m;
    int64_t wait, delay_ms;
    int held;

    if (!p->stages || !stage_of(r, v.topic))
        return 0;
    if (ferry_retry_hold_held(p->hold, v.topic, v.partition))
        return 1; /* fetched behind the held record: it comes again after the seek */
    if (!parked_meta(r, &v, &m))
        return 0;
    if (ferry_retry_hold_take_released(p->hold, v.topic, v.partition, v.offset))
        return 0;                                          /* back after its hold: due */
    wait = ferry_retry_wait_ms(&m, ferry_clock_wall_ms()); /* due times are wall-clock times */
    /* No record waits longer than its topic's delay from now: a due time further off comes from
     * a clock ahead of this one, or from whoever else wrote to the topic, and would hold every
     * record behind it on the partition. */
    delay_ms = ferry_route_retry_stage(r->cfg, stage_of(r, v.topic))->delay_ms;
    if (wait > delay_ms)
        wait = delay_ms;
    if (wait == 0)
        return 0;
    held = ferry_retry_hold_park(p->hold, v.topic, v.partition, v.offset, now_ms + wait);
    if (held < 0)
        return 0; /* out of memory: sent early rather than lost */
    /* Paused only now that a record of it came: the fetch start of its assignment has been
     * applied; a pause before that could have had it dropped (route.c, on_rebalance). */
    if (held == 0)
        pause_one(r, v.topic, v.partition);
    ferry_gauge_set(r->m.retry_held, (int64_t)ferry_retry_hold_count(p->hold));
    return 1;
}

/* Fetches a held partition again from its held record. While the route's own backpressure
 * pauses everything, the partition stays paused: resuming it is backpressure's to do. A seek
 * refused at once (librdkafka does not know the partition: a retry topic deleted meanwhile)
 * leaves the partition paused and held a while longer: resumed where it stopped, it would skip
 * the held record, and the records after it would commit its offset. */
static void resume_one(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    struct route *r = arg;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *part = rd_kafka_topic_partition_list_add(list, topic, partition);
    rd_kafka_error_t *error;
    int held_again = 0;

    part->offset = offset;
    error = rd_kafka_seek_partitions(r->consumer, list, ROUTE_SEEK_WAIT_MS);
    if (error || part->err) {
        FLOG_ERROR_REPEATED("route", r->cfg->name,
                            "cannot fetch retry topic '%s' [%d] again from offset %" PRId64
                            ": %s; trying again in %d ms",
                            topic, partition, offset,
                            error ? rd_kafka_error_string(error) : rd_kafka_err2str(part->err),
                            PARKING_SEEK_AGAIN_MS);
        if (error)
            rd_kafka_error_destroy(error);
        held_again = ferry_retry_hold_park(r->parking.hold, topic, partition, offset,
                                           ferry_clock_ms() + PARKING_SEEK_AGAIN_MS) >= 0;
    }
    if (!held_again && !r->backpressure)
        rd_kafka_resume_partitions(r->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
}

void route_parking_resume_due(struct route *r, int64_t now_ms)
{
    if (!r->parking.hold || !ferry_retry_hold_release_due(r->parking.hold, now_ms, resume_one, r))
        return;
    ferry_gauge_set(r->m.retry_held, (int64_t)ferry_retry_hold_count(r->parking.hold));
}

void route_parking_repause(struct route *r)
{
    if (r->parking.hold)
        ferry_retry_hold_each(r->parking.hold, pause_one, r);
}

/* ---- rebalances ---- */

/* A record read back from a retry partition: its key has a record parked. */
static void rebuild_found(void *arg, const rd_kafka_message_t *msg)
{
    struct route *r = arg;
    struct route_parking *p = &r->parking;
    struct ferry_record v = {.topic = rd_kafka_topic_name(msg->rkt),
                             .partition = msg->partition,
                             .offset = msg->offset,
                             .key = msg->key,
                             .key_len = msg->key_len,
                             .msg = msg};
    struct ferry_retry_meta m;

    if (!msg->key || !parked_meta(r, &v, &m) || parked_key(p, m.topic, m.partition, &v))
        return;
    if (ferry_retry_parked_add(p->parked, p->key.data, p->key.len, m.offset))
        log_untracked(r, &v);
}

/* Whether topic is one of the route's retry topics. */
static int is_retry_partition(const struct route *r, const char *topic, int32_t partition)
{
    (void)partition;
    return stage_of(r, topic) != 0;
}

void route_parking_assigned(struct route *r)
{
    struct route_parking *p = &r->parking;
    rd_kafka_topic_partition_list_t *parts;
    char name[300], err[512];
    long n;

    if (!p->parked)
        return;
    ferry_retry_parked_clear(p->parked);
    parts = route_assignment_where(r, is_retry_partition);
    if (parts) {
        snprintf(name, sizeof(name), "%s-retry-rebuild", r->cfg->name);
        n = ferry_retry_rebuild(r->kafka, r->consumer, name, &r->cfg->kafka, parts, rebuild_found,
                                r, err, sizeof(err));
        if (n < 0)
            FLOG_ERROR("route", r->cfg->name,
                       "reading its retry topics: %s; records of keys parked there may overtake "
                       "them",
                       err);
        else
            FLOG_INFO("route", r->cfg->name,
                      "retry topics read: %ld records, %zu keys with records parked", n,
                      ferry_retry_parked_keys(p->parked));
        rd_kafka_topic_partition_list_destroy(parts);
    }
    count_parked_keys(r);
}

/* Lets go of a held partition that was taken away, resumed first: librdkafka may keep an
 * application's pause over a later assignment of the same partition, which would then never
 * be fetched. */
static void let_go(struct route *r, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *list;

    if (!ferry_retry_hold_held(r->parking.hold, topic, partition))
        return;
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition);
    rd_kafka_resume_partitions(r->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    ferry_retry_hold_forget(r->parking.hold, topic, partition);
}

void route_parking_revoked(struct route *r, const rd_kafka_topic_partition_list_t *parts)
{
    if (!r->parking.hold)
        return;
    for (int i = 0; i < parts->cnt; i++)
        let_go(r, parts->elems[i].topic, parts->elems[i].partition);
    ferry_gauge_set(r->m.retry_held, (int64_t)ferry_retry_hold_count(r->parking.hold));
}

/* ---- the writers ---- */

void route_parking_collect(struct route *r)
{
    for (int i = 0; i < r->parking.stages; i++)
        ferry_deadletter_backlog_collect(r->parking.writers[i]);
}

int64_t route_parking_next_ms(const struct route *r)
{
    int64_t t = r->parking.hold ? ferry_retry_hold_next_ms(r->parking.hold) : INT64_MAX;

    for (int i = 0; i < r->parking.stages; i++) {
        int64_t w = ferry_deadletter_backlog_retry_ms(r->parking.writers[i]);
        if (w < t)
            t = w;
    }
    return t;
}

size_t route_parking_pending(const struct route *r)
{
    size_t n = 0;

    for (int i = 0; i < r->parking.stages; i++)
        n += ferry_deadletter_backlog_pending(r->parking.writers[i]);
    return n;
}

/* Where on retry topic stage a record of original partition goes: the same partition number
 * when the topic has it, else the partitioner's choice (by key). */
static int32_t target_partition(struct route *r, int stage, int32_t partition)
{
    int32_t *n = &r->parking.partitions[stage - 1];

    if (!*n)
        *n = topic_partitions(r, r->parking.topics.names[stage - 1]);
    return partition < *n ? partition : RD_KAFKA_PARTITION_UA;
}

/* Writes rec to retry topic stage; from is what it carried when it came from a retry topic. */
static void park_on(struct route *r, struct ferry_dispatch_rec *rec,
                    const struct ferry_retry_meta *from, int stage, int attempts, const char *error)
{
    const struct ferry_route_retry_topic_config *t = ferry_route_retry_stage(r->cfg, stage);
    struct ferry_retry_meta m;

    ferry_retry_meta_make(&m, &rec->view, from, stage, attempts, error, ferry_clock_wall_ms(),
                          t->delay_ms);
    ferry_deadletter_backlog_park(r->parking.writers[stage - 1], rec, &m,
                                  target_partition(r, stage, m.partition));
}

/* ---- parking ---- */

/* Counts a record parked for the first time in the parked set. Returns 0, or -1 when the set
 * is full. */
static int track(struct route *r, const struct ferry_dispatch_rec *rec)
{
    struct route_parking *p = &r->parking;
    const struct ferry_record *v = &rec->view;

    if (!p->parked || !v->key)
        return 0;
    if (parked_key(p, v->topic, v->partition, v) ||
        ferry_retry_parked_add(p->parked, p->key.data, p->key.len, v->offset))
        return -1;
    count_parked_keys(r);
    return 0;
}

int route_parking_has_next(const struct route *r, const struct ferry_dispatch_rec *rec)
{
    return r->parking.stages && stage_of(r, rec->view.topic) < r->parking.stages;
}

void route_parking_park(struct route *r, struct ferry_dispatch_rec *rec, const char *error,
                        int attempts)
{
    struct ferry_retry_meta from;
    int parked = parked_meta(r, &rec->view, &from);
    int stage = stage_of(r, rec->view.topic) + 1;

    if (!parked && track(r, rec))
        log_untracked(r, &rec->view);
    park_on(r, rec, parked ? &from : NULL, stage, (parked ? from.attempts : 0) + attempts, error);
}

int route_parking_behind(struct route *r, struct ferry_dispatch_rec *rec)
{
    struct route_parking *p = &r->parking;
    const struct ferry_record *v = &rec->view;
    struct ferry_retry_meta from;
    int parked;
    int64_t first;

    if (!p->parked || !v->key)
        return 0;
    parked = parked_meta(r, v, &from);
    if (parked_key(p, parked ? from.topic : v->topic, parked ? from.partition : v->partition, v))
        return 0;
    first = ferry_retry_parked_first(p->parked, p->key.data, p->key.len);
    if (first < 0 || (parked && first >= from.offset))
        return 0; /* nothing of its key parked, or it is the earliest */
    if (!parked && track(r, rec))
        log_untracked(r, v);
    park_on(r, rec, parked ? &from : NULL, parked ? stage_of(r, v->topic) : 1,
            parked ? from.attempts : 0, PARKING_BEHIND);
    return 1;
}

void route_parking_done(struct route *r, const struct ferry_dispatch_rec *rec)
{
    struct route_parking *p = &r->parking;
    struct ferry_retry_meta from;

    if (!p->parked || !rec->view.key || !parked_meta(r, &rec->view, &from) ||
        parked_key(p, from.topic, from.partition, &rec->view))
        return;
    ferry_retry_parked_remove(p->parked, p->key.data, p->key.len, from.offset);
    count_parked_keys(r);
}
