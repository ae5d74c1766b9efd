/*
 * cluster.c - the members thread: heartbeats out, heartbeats in.
 *
 * One thread does both, so no lock guards the consumer: it publishes a heartbeat when one is
 * due and waits on the consumer for the others' until the next is due. Heartbeats go through
 * the shared producer without a delivery callback; a lost one is not retried, since the next
 * replaces it within a second and only `member_timeout` of silence matters.
 *
 * Reading back at start: the members topic is a log of heartbeats, with no compaction on the
 * embedded cluster. Each partition is read from at most MEMBERS_REPLAY records before its end:
 * with the default heartbeat that is more than a day of 100 instances' heartbeats, so every
 * live member's last one is among them; older ones are ignored by their age. (A member whose
 * last heartbeat lies further back is seen at its next one.)
 */
#include "table/cluster.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEMBERS_REPLAY 100000 /* records read back per partition at start, at most */
#define MEMBERS_META_TIMEOUT_MS 5000
#define MEMBERS_POLL_BATCH 256
#define MEMBERS_SETTLE_MS 250 /* beyond a heartbeat interval, before the read back counts */

struct ferry_table_cluster {
    const struct ferry_table_cluster_config *cfg;
    char instance[FERRY_HEARTBEAT_NAME_MAX + 1];
    char url[FERRY_HEARTBEAT_URL_MAX + 1];
    ferry_kafka *kafka;
    ferry_table_cluster_fill_fn *fill;
    void *fill_arg;
    ferry_members *members;

    rd_kafka_t *consumer;
    void *consumer_opaque;
    rd_kafka_queue_t *queue;
    int32_t partitions;  /* of the members topic, once known (cluster thread) */
    int64_t assigned_ms; /* when reading back began */
    int64_t *replay_end; /* per partition: the end it had when reading back started */
    atomic_int synced;

    pthread_t thread;
    int started;
    atomic_int stop;
    struct ferry_buf out; /* the heartbeat being encoded (cluster thread) */
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the consumer ---- */

static int consumer_new(ferry_table_cluster *c, char *errstr, size_t errstr_size)
{
    static const char *const props[][2] = {
        {"enable.auto.commit", "false"},
        {"auto.offset.reset", "latest"},
        {"group.id", "ferry-members"}, /* for the consumer API only: it never joins */
    };
    char why[512];
    rd_kafka_conf_t *conf = ferry_kafka_conf_new(c->kafka, FERRY_KAFKA_CONSUMER, "members", NULL, c,
                                                 &c->consumer_opaque, errstr, errstr_size);

    if (!conf)
        return -1;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            snprintf(errstr, errstr_size, "members consumer: %s", why);
            return -1;
        }
    }
    c->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!c->consumer) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot create the members consumer: %s", why);
        return -1;
    }
    rd_kafka_poll_set_consumer(c->consumer);
    c->queue = rd_kafka_queue_get_consumer(c->consumer);
    return 0;
}

/* The members topic's partition count, or -1 (with why) when the broker does not know it
 * yet. */
static int32_t topic_partitions(ferry_table_cluster *c, char *why, size_t why_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->consumer, c->cfg->members_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int32_t n = -1;

    if (!rkt) {
        snprintf(why, why_size, "%s", rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    err = rd_kafka_metadata(c->consumer, 0, rkt, &md, MEMBERS_META_TIMEOUT_MS);
    if (!err)
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!err && md->topics[0].partition_cnt > 0)
        n = md->topics[0].partition_cnt;
    snprintf(why, why_size, "%s", err ? rd_kafka_err2str(err) : "it has no partitions");
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Assigns every partition of the members topic from a little before its end. */
static int assign_replay(ferry_table_cluster *c, char *why, size_t why_size)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(c->partitions);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    for (int32_t p = 0; p < c->partitions && !err; p++) {
        int64_t low = 0, high = 0;
        err = rd_kafka_query_watermark_offsets(c->consumer, c->cfg->members_topic, p, &low, &high,
                                               MEMBERS_META_TIMEOUT_MS);
        c->replay_end[p] = high > low ? high : 0; /* 0: nothing to read back (retention may
                                                   * have emptied it: no position ever comes) */
        rd_kafka_topic_partition_list_add(list, c->cfg->members_topic, p)->offset =
            high - low > MEMBERS_REPLAY ? high - MEMBERS_REPLAY : low;
    }
    if (!err)
        err = rd_kafka_assign(c->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err)
        snprintf(why, why_size, "%s", rd_kafka_err2str(err));
    return err ? -1 : 0;
}

/* Sets synced once every partition was read up to where it ended when reading back began, and
 * a heartbeat interval (and a little) has passed since: every live member published in that
 * time, also one whose heartbeats had not reached the topic yet when reading began (at a
 * cluster's birth, say). */
static void check_synced(ferry_table_cluster *c)
{
    rd_kafka_topic_partition_list_t *list;

    if (atomic_load(&c->synced) || c->partitions <= 0 || !c->replay_end ||
        ferry_clock_ms() < c->assigned_ms + c->cfg->heartbeat_ms + MEMBERS_SETTLE_MS)
        return;
    list = rd_kafka_topic_partition_list_new(c->partitions);
    for (int32_t p = 0; p < c->partitions; p++)
        rd_kafka_topic_partition_list_add(list, c->cfg->members_topic, p);
    if (rd_kafka_position(c->consumer, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        int done = 1;
        for (int p = 0; p < list->cnt; p++)
            if (c->replay_end[p] > 0 && list->elems[p].offset < c->replay_end[p])
                done = 0;
        if (done) {
            atomic_store(&c->synced, 1);
            FLOG_INFO("table", NULL, "members: read back %s; this instance is '%s' at %s",
                      c->cfg->members_topic, c->instance, c->url);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* ---- heartbeats ---- */

/* Builds this instance's heartbeat into hb (released by the caller). */
static void build(ferry_table_cluster *c, struct ferry_heartbeat *hb, int leaving)
{
    memset(hb, 0, sizeof(*hb));
    snprintf(hb->instance, sizeof(hb->instance), "%s", c->instance);
    snprintf(hb->url, sizeof(hb->url), "%s", c->url);
    hb->sent_ms = wall_ms();
    hb->leaving = leaving;
    if (!leaving && c->fill(c->fill_arg, hb))
        ferry_heartbeat_release(hb);
}

/* Publishes a heartbeat, and takes it into the map at once: this instance is live from its
 * first heartbeat, whatever the broker does. */
static void publish(ferry_table_cluster *c, int leaving)
{
    struct ferry_heartbeat hb;
    rd_kafka_resp_err_t err;

    build(c, &hb, leaving);
    ferry_buf_reset(&c->out);
    if (ferry_heartbeat_encode(&hb, &c->out)) {
        FLOG_WARN_REPEATED("table", NULL, "members: the heartbeat is larger than %d bytes",
                           FERRY_HEARTBEAT_BYTES_MAX);
        ferry_heartbeat_release(&hb);
        return;
    }
    err = rd_kafka_producev(ferry_kafka_producer(c->kafka), RD_KAFKA_V_TOPIC(c->cfg->members_topic),
                            RD_KAFKA_V_KEY(c->instance, strlen(c->instance)),
                            RD_KAFKA_V_VALUE(c->out.data, c->out.len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err)
        FLOG_WARN_REPEATED("table", NULL, "members: cannot publish a heartbeat to %s: %s",
                           c->cfg->members_topic, rd_kafka_err2str(err));
    ferry_members_update(c->members, &hb, ferry_clock_ms(), 0);
    ferry_heartbeat_release(&hb);
}

/* Whether msg was in the topic before this instance began to read it back: only such a record
 * is aged by its timestamp, which another machine's clock wrote. A record that came later is
 * a heartbeat sent just now, whatever the clocks say (a reader whose clock ran ahead of a
 * sender's by member_timeout would otherwise never see that sender live). */
static int read_back(const ferry_table_cluster *c, const rd_kafka_message_t *msg)
{
    return c->replay_end && msg->partition >= 0 && msg->partition < c->partitions &&
           msg->offset < c->replay_end[msg->partition];
}

/* Takes one record of the members topic into the map. */
static void take(ferry_table_cluster *c, const rd_kafka_message_t *msg)
{
    rd_kafka_timestamp_type_t type;
    struct ferry_heartbeat hb;
    int64_t ts, age = 0;
    char why[512];

    if (msg->err) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            FLOG_WARN_REPEATED("table", NULL, "members: reading %s: %s", c->cfg->members_topic,
                               rd_kafka_message_errstr(msg));
        return;
    }
    if (ferry_heartbeat_decode(msg->payload, msg->len, &hb, why, sizeof(why))) {
        FLOG_WARN_REPEATED("table", NULL, "members: %s [%d] offset %lld is not a heartbeat: %s",
                           c->cfg->members_topic, (int)msg->partition, (long long)msg->offset, why);
        ferry_heartbeat_release(&hb);
        return;
    }
    ts = rd_kafka_message_timestamp(msg, &type);
    if (read_back(c, msg) && type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts > 0)
        age = wall_ms() - ts;
    if (strcmp(hb.instance, c->instance) == 0 && strcmp(hb.url, c->url) != 0 &&
        age < c->cfg->member_timeout_ms)
        FLOG_ERROR_REPEATED("table", NULL,
                            "members: another instance at %s also calls itself '%s': give each "
                            "instance its own server.instance",
                            hb.url, hb.instance);
    if (strcmp(hb.instance, c->instance) != 0 &&
        ferry_members_update(c->members, &hb, ferry_clock_ms(), age) < 0)
        FLOG_WARN_REPEATED("table", NULL, "members: more than %d instances; '%s' is ignored",
                           FERRY_MEMBERS_MAX, hb.instance);
    ferry_heartbeat_release(&hb);
}

/* Reads what the consumer has, waiting up to timeout_ms for the first record. */
static void read_members(ferry_table_cluster *c, int timeout_ms)
{
    rd_kafka_message_t *msgs[MEMBERS_POLL_BATCH];
    ssize_t n = rd_kafka_consume_batch_queue(c->queue, timeout_ms, msgs, MEMBERS_POLL_BATCH);

    for (ssize_t i = 0; i < n; i++) {
        take(c, msgs[i]);
        rd_kafka_message_destroy(msgs[i]);
    }
    check_synced(c);
}

/* Finds the members topic (the first heartbeat creates it on the embedded cluster) and starts
 * reading it. Returns 0, or -1 when told to stop first. */
static int join(ferry_table_cluster *c)
{
    char why[512];
    int logged = 0;

    while (!atomic_load(&c->stop)) {
        publish(c, 0);
        c->partitions = topic_partitions(c, why, sizeof(why));
        if (c->partitions > 0) {
            c->replay_end = calloc((size_t)c->partitions, sizeof(*c->replay_end));
            c->assigned_ms = ferry_clock_ms();
            if (c->replay_end && assign_replay(c, why, sizeof(why)) == 0)
                return 0;
            free(c->replay_end);
            c->replay_end = NULL;
        }
        c->partitions = 0; /* not known: not read back either */
        if (!logged++)
            FLOG_WARN("table", NULL, "members: cannot read topic %s yet: %s; trying again",
                      c->cfg->members_topic, why);
        read_members(c, (int)c->cfg->heartbeat_ms); /* a wait that stop() cuts short */
    }
    return -1;
}

static void *cluster_main(void *arg)
{
    ferry_table_cluster *c = arg;
    int64_t next;

    if (join(c))
        return NULL;
    next = ferry_clock_ms() + c->cfg->heartbeat_ms;
    while (!atomic_load(&c->stop)) {
        int64_t now = ferry_clock_ms();
        if (now >= next) {
            publish(c, 0);
            next = now + c->cfg->heartbeat_ms;
        }
        read_members(c, (int)(next - now > 0 ? next - now : 0));
    }
    return NULL;
}

/* ---- lifecycle ---- */

ferry_table_cluster *ferry_table_cluster_new(const struct ferry_table_cluster_config *cfg,
                                             const char *instance, const char *url, ferry_kafka *k,
                                             ferry_table_cluster_fill_fn *fill, void *fill_arg,
                                             char *errstr, size_t errstr_size)
{
    ferry_table_cluster *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(errstr, errstr_size, "out of memory for the members thread");
        return NULL;
    }
    c->cfg = cfg;
    c->kafka = k;
    c->fill = fill;
    c->fill_arg = fill_arg;
    snprintf(c->instance, sizeof(c->instance), "%s", instance);
    snprintf(c->url, sizeof(c->url), "%s", url);
    ferry_buf_init(&c->out, FERRY_HEARTBEAT_BYTES_MAX);
    c->members = ferry_members_new(cfg->member_timeout_ms);
    if (!c->members) {
        snprintf(errstr, errstr_size, "out of memory for the member map");
        ferry_table_cluster_destroy(c);
        return NULL;
    }
    if (consumer_new(c, errstr, errstr_size)) {
        ferry_table_cluster_destroy(c);
        return NULL;
    }
    return c;
}

int ferry_table_cluster_start(ferry_table_cluster *c, char *errstr, size_t errstr_size)
{
    int rc = pthread_create(&c->thread, NULL, cluster_main, c);

    if (rc != 0) {
        snprintf(errstr, errstr_size, "cannot start the members thread: %s", strerror(rc));
        return -1;
    }
    c->started = 1;
    return 0;
}

void ferry_table_cluster_stop(ferry_table_cluster *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    if (c->queue)
        rd_kafka_queue_yield(c->queue);
    if (c->started) {
        pthread_join(c->thread, NULL);
        publish(c, 1);
    }
    c->started = 0;
    if (c->queue)
        rd_kafka_queue_destroy(c->queue);
    c->queue = NULL;
    if (c->consumer) {
        rd_kafka_consumer_close(c->consumer);
        rd_kafka_destroy(c->consumer);
    }
    c->consumer = NULL;
    if (c->consumer_opaque)
        ferry_kafka_client_release(c->kafka, c->consumer_opaque);
    c->consumer_opaque = NULL;
}

void ferry_table_cluster_destroy(ferry_table_cluster *c)
{
    if (!c)
        return;
    ferry_table_cluster_stop(c);
    ferry_members_destroy(c->members);
    ferry_buf_release(&c->out);
    free(c->replay_end);
    free(c);
}

const char *ferry_table_cluster_instance(const ferry_table_cluster *c)
{
    return c->instance;
}

const char *ferry_table_cluster_url(const ferry_table_cluster *c)
{
    return c->url;
}

int ferry_table_cluster_synced(const ferry_table_cluster *c)
{
    return atomic_load(&c->synced);
}

const struct ferry_members_view *ferry_table_cluster_view_acquire(ferry_table_cluster *c)
{
    return ferry_members_view_acquire(c->members, ferry_clock_ms());
}

void ferry_table_cluster_view_release(ferry_table_cluster *c, const struct ferry_members_view *v)
{
    ferry_members_view_release(c->members, v);
}
