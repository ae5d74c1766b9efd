/*
 * apply.c - the thread that materializes a table's topic into its store.
 *
 * It reads the topic's metadata, opens the store and compares what the store remembers (the
 * cluster id, the topic, its partition count, each partition's next offset) with the cluster.
 * If they disagree, the topic was recreated or retention deleted records the store never
 * saw: the store is rebuilt from the earliest offsets into a fresh environment, which is
 * swapped in once it has caught up; reads go on from the old one meanwhile.
 *
 * Then it assigns itself every partition from the stored offsets (no consumer group: every
 * instance holds every partition) and applies records many per write transaction: a
 * transaction commits when apply_interval has passed since its first record, when it holds
 * APPLY_BATCH_MAX records, or when the consumer has nothing more. While the store answers no
 * reads (loading, rebuilding) transactions are left open for seconds and millions of records,
 * and commit at once when they catch the table up: a commit rewrites every page it touched, so
 * a restore writes far less in large ones. The offsets go in the same transaction as the rows,
 * so a restart resumes exactly where the store is.
 *
 * A transaction's records are copied into a stage (stage.c) as they come and written in key
 * order when it commits, or when the stage is full: a restore's writes then walk the tree in
 * order instead of at random.
 *
 * Disk space. Before the stage is written the store reserves the blocks its records and the
 * transaction's offsets may take (store.h, "Disk space"). That count is loose, so a long
 * transaction may ask for more than the volume has while what it writes would fit: the
 * transaction then commits the records it has written, with the offsets they reach, and goes
 * on in a fresh one. Records written in key order do not stop at an offset, so a stage is only
 * written in key order when its whole reservation was granted; else it is written as it came,
 * record by record, committing whenever the room runs out. The records written are then the
 * first ones taken, so the first keys kept for the reads that wait and the subscriptions go
 * with the commit that wrote them, and the rest with a later one. Applying stops (disk_full)
 * when a fresh transaction has no room after all: for its begin, for its next record, or for
 * the offsets of its last commit; nothing past the stored offsets is lost.
 */
#include "core/log.h"
#include "table/apply.h"
#include "core/clock.h"
#include "table/assign.h"
#include "table/cluster.h"
#include "table/fanout.h"
#include "table/fetch_nudge.h"
#include "table/stage.h"
#include "table/watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define APPLY_BATCH_MAX 10000 /* records in one write transaction at most */
/* The same while nothing reads the store (loading, rebuilding). A commit copies every page it
 * touches, and the copies need new pages while the old ones are still the last commit's, so a
 * restore in many commits writes each leaf many times into a data file about twice the tree.
 * In one transaction each leaf is written once: restoring 1M records of 100 B took one
 * commit, half the file (220 against 420 MB) and 30% less time than 50,000 per commit
 * (bench/README.md, "session 10"). LMDB's writable map (MDB_WRITEMAP) keeps the dirty pages in
 * the file's page cache, not in ferry's memory, and needs no limit on their count. What bounds
 * a loading transaction is how much a crash or a full map would make ferry apply again. */
#define APPLY_LOADING_BATCH_MAX 2000000
#define APPLY_LOADING_BYTES_MAX ((size_t)256 * 1024 * 1024) /* keys and values */
#define APPLY_LOADING_INTERVAL_MS 5000 /* a transaction's longest life while nothing reads */
#define APPLY_POLL_BATCH 1024          /* messages taken from the consumer at once */
#define APPLY_IDLE_POLL_MS 100         /* longest wait for records in one poll */
#define APPLY_RETRY_MS 1000            /* between tries to read the topic at start */
#define APPLY_SPACE_RETRY_MS 5000      /* between looks for disk space, once there was none */
#define APPLY_META_TIMEOUT_MS 5000     /* one metadata or watermark request */
#define APPLY_ENDS_EVERY_MS 100        /* how often the partitions' ends are looked at */
#define APPLY_CLUSTER_ID_MAX 256
#define APPLY_KEYS_MAX (4 * 1024 * 1024) /* key bytes of one batch kept for waits and events */
/* Record bytes (keys, values, content types) a transaction holds before writing them in key
 * order: 2 MiB sorted at a time did as well as 4 or 32 MiB, for up to 20 MB less memory in a
 * restore (bench/README.md, "session 9"). */
#define APPLY_STAGE_BYTES_MAX (2 * 1024 * 1024)
#define APPLY_STAGE_RECORDS_MAX 50000 /* and records */

/* What the cluster says about the topic. */
struct topic_view {
    char cluster_id[APPLY_CLUSTER_ID_MAX];
    int32_t partitions;
    int64_t *low, *high; /* per partition, at start */
};

/* The write transaction being filled. */
struct pending {
    int open;       /* a store batch is open */
    size_t records; /* taken, not yet committed */
    size_t bytes;   /* of the records' keys and values */
    int64_t first_ms;
    int64_t *next;            /* per partition: the next offset once this batch commits, or -1 */
    int32_t nparts;           /* partitions whose next is set: the offsets a commit writes */
    ferry_table_stage *stage; /* its records, written in key order before it commits */
    /* What the open store transaction holds of them: per partition, the next offset of the
     * records written into it (or -1), which a commit before the stage is written stores. */
    int64_t *written;
    size_t records_written; /* of records, those its written offsets cover */
    /* Keyed records written into it: the first ones taken, whose keys are the first kept. */
    size_t keys_written;
    /* The keys the batch changed, for the reads that wait on them (watch.c) and the
     * subscriptions (fanout.c), kept only while some exist (recording). */
    int recording;
    struct ferry_buf key_bytes; /* capped at APPLY_KEYS_MAX */
    size_t *key_at, *key_len, nkeys;
    struct ferry_table_mark *marks; /* where each key's record was */
    const void **key_ptrs;
    int keys_incomplete; /* some were not kept: wake every key waiter, resend every state */
};

/* Waits up to ms, waking early when the table is told to stop. Returns nonzero to stop. */
static int pause_ms(struct table *t, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&t->stop); waited += 50) {
        struct timespec step = {0, 50 * 1000000};
        nanosleep(&step, NULL);
    }
    return atomic_load(&t->stop);
}

/* ---- the consumer ---- */

/* Nonzero when the table's own kafka: map sets the property. */
static int table_sets(const struct table *t, const char *name)
{
    for (size_t i = 0; i < t->cfg->kafka.count; i++)
        if (strcmp(t->cfg->kafka.items[i].key, name) == 0)
            return 1;
    return 0;
}

int ferry_table_consumer_new(struct table *t, char *errstr, size_t errstr_size)
{
    static const char *const props[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "error"},
    };
    /* a restore wants large fetches; a table holds no records once applied. The table's own
     * kafka: map may set them otherwise. queued.min.messages is librdkafka's default, set so
     * that a table on the embedded cluster gets it too (not the routes' 1,000,000 there): a
     * restore as fast, for 25-35 MB less memory at its peak (bench/README.md, "session 9"). */
    static const char *const fetch_props[][2] = {
        {"queued.min.messages", "100000"},
        {"queued.max.messages.kbytes", "16384"},
        {"fetch.max.bytes", "8388608"},
        {"max.partition.fetch.bytes", "1048576"},
    };
    char name[TABLE_PATH_MAX], why[512];
    rd_kafka_conf_t *conf;

    snprintf(name, sizeof(name), "table-%s", t->cfg->name);
    conf = ferry_kafka_conf_new(t->kafka, FERRY_KAFKA_CONSUMER, name, &t->cfg->kafka, t,
                                &t->consumer_opaque, errstr, errstr_size);
    if (!conf)
        return -1;
    /* A group id only so that librdkafka's consumer API works: the table assigns itself its
     * partitions and never joins the group nor commits to it. */
    snprintf(name, sizeof(name), "ferry-table-%s", t->cfg->name);
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], why, sizeof(why)) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; i < sizeof(fetch_props) / sizeof(fetch_props[0]); i++)
        if (!table_sets(t, fetch_props[i][0]) &&
            rd_kafka_conf_set(conf, fetch_props[i][0], fetch_props[i][1], why, sizeof(why)) !=
                RD_KAFKA_CONF_OK)
            goto fail;
    if (rd_kafka_conf_set(conf, "group.id", name, why, sizeof(why)) != RD_KAFKA_CONF_OK)
        goto fail;
    t->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!t->consumer) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot create the consumer: %s", why);
        return -1;
    }
    rd_kafka_poll_set_consumer(t->consumer);
    t->queue = rd_kafka_queue_get_consumer(t->consumer);
    return 0;
fail:
    rd_kafka_conf_destroy(conf);
    snprintf(errstr, errstr_size, "consumer settings: %s", why);
    return -1;
}

void ferry_table_consumer_destroy(struct table *t)
{
    if (t->queue)
        rd_kafka_queue_destroy(t->queue);
    t->queue = NULL;
    if (t->consumer) {
        rd_kafka_consumer_close(t->consumer);
        rd_kafka_destroy(t->consumer);
        t->consumer = NULL;
    }
    if (t->consumer_opaque)
        ferry_kafka_client_release(t->kafka, t->consumer_opaque);
    t->consumer_opaque = NULL;
}

/* Reads the cluster id, the partition count and every partition's offsets. */
static int read_topic(struct table *t, struct topic_view *v, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->consumer, t->cfg->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    char *id;
    int result = -1;

    if (!rkt) {
        snprintf(errstr, errstr_size, "cannot make a handle for topic '%s': %s", t->cfg->topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    err = rd_kafka_metadata(t->consumer, 0, rkt, &md, APPLY_META_TIMEOUT_MS);
    if (!err && md->topic_cnt != 1)
        err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    else if (!err)
        err = md->topics[0].err;
    if (err || md->topics[0].partition_cnt < 1) {
        snprintf(errstr, errstr_size, "cannot read topic '%s': %s", t->cfg->topic,
                 err ? rd_kafka_err2str(err) : "it has no partitions");
        goto out;
    }
    v->partitions = md->topics[0].partition_cnt;
    id = rd_kafka_clusterid(t->consumer, APPLY_META_TIMEOUT_MS);
    snprintf(v->cluster_id, sizeof(v->cluster_id), "%s", id ? id : "");
    if (id)
        rd_kafka_mem_free(t->consumer, id);
    result = 0;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return result;
}

static int read_watermarks(struct table *t, struct topic_view *v, char *errstr, size_t errstr_size)
{
    v->low = calloc((size_t)v->partitions, sizeof(*v->low));
    v->high = calloc((size_t)v->partitions, sizeof(*v->high));
    if (!v->low || !v->high) {
        snprintf(errstr, errstr_size, "out of memory for %d partitions", v->partitions);
        return -1;
    }
    for (int32_t p = 0; p < v->partitions; p++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            t->consumer, t->cfg->topic, p, &v->low[p], &v->high[p], APPLY_META_TIMEOUT_MS);
        if (err) {
            snprintf(errstr, errstr_size, "cannot read the offsets of %s [%d]: %s", t->cfg->topic,
                     p, rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

static void topic_view_release(struct topic_view *v)
{
    free(v->low);
    free(v->high);
    v->low = v->high = NULL;
}

/* Reads the topic until it answers or the table stops; logs the first failure only. */
static int wait_for_topic(struct table *t, struct topic_view *v)
{
    char why[512];
    int logged = 0;

    while (!atomic_load(&t->stop)) {
        topic_view_release(v);
        if (read_topic(t, v, why, sizeof(why)) == 0 && read_watermarks(t, v, why, sizeof(why)) == 0)
            return 0;
        if (!logged++)
            FLOG_WARN_REPEATED("table", t->cfg->name, "%s; trying again every %d ms", why,
                               APPLY_RETRY_MS);
        pause_ms(t, APPLY_RETRY_MS);
    }
    return -1;
}

/* ---- the store against the cluster ---- */

/* Why the store cannot go on from where it is, or NULL when it can. */
static const char *store_mismatch(struct table *t, ferry_store *store, const struct topic_view *v,
                                  char *why, size_t why_size)
{
    struct ferry_store_meta meta;
    char err[512];
    int64_t *next;
    int r = ferry_store_get_meta(store, &meta, err, sizeof(err));

    if (r == FERRY_STORE_NOT_FOUND)
        return NULL; /* a new store */
    if (r != FERRY_STORE_OK)
        snprintf(why, why_size, "%s", err);
    else if (strcmp(meta.cluster_id, v->cluster_id) != 0)
        snprintf(why, why_size, "it was built from cluster '%s', not '%s'", meta.cluster_id,
                 v->cluster_id);
    else if (strcmp(meta.topic, t->cfg->topic) != 0)
        snprintf(why, why_size, "it was built from topic '%s'", meta.topic);
    else if (meta.partitions != v->partitions)
        snprintf(why, why_size, "the topic had %d partitions and now has %d", meta.partitions,
                 v->partitions);
    else
        why[0] = '\0';
    if (why[0])
        return why;
    next = calloc((size_t)v->partitions, sizeof(*next));
    if (!next || ferry_store_offsets(store, next, v->partitions, err, sizeof(err))) {
        snprintf(why, why_size, "%s", next ? err : "out of memory");
        free(next);
        return why;
    }
    for (int32_t p = 0; p < v->partitions && !why[0]; p++) {
        if (next[p] >= 0 && next[p] > v->high[p])
            snprintf(why, why_size,
                     "partition %d was applied up to %" PRId64 ", past its end %" PRId64, p,
                     next[p], v->high[p]);
        else if (next[p] >= 0 && next[p] < v->low[p])
            snprintf(why, why_size,
                     "partition %d was applied up to %" PRId64 ", but retention deleted records "
                     "up to %" PRId64,
                     p, next[p], v->low[p]);
    }
    free(next);
    return why[0] ? why : NULL;
}

/* The path a rebuilt store is filled at, beside the table's own. */
static void rebuild_path(const struct table *t, char *out, size_t size)
{
    snprintf(out, size, "%s.rebuild", t->path);
}

static ferry_store *open_fresh(struct table *t, const char *path, char *errstr, size_t errstr_size)
{
    if (ferry_store_destroy_files(path, errstr, errstr_size))
        return NULL;
    return ferry_store_open(path, (size_t)t->cfg->max_size, errstr, errstr_size);
}

/* Writes the topic's identity into a store that has none yet. */
static int write_meta(struct table *t, ferry_store *store, const struct topic_view *v, char *errstr,
                      size_t errstr_size)
{
    struct ferry_store_meta meta = {0};

    snprintf(meta.cluster_id, sizeof(meta.cluster_id), "%s", v->cluster_id);
    snprintf(meta.topic, sizeof(meta.topic), "%s", t->cfg->topic);
    meta.partitions = v->partitions;
    if (ferry_store_batch_begin(store, errstr, errstr_size) ||
        ferry_store_batch_set_meta(store, &meta, errstr, errstr_size))
        return -1;
    return ferry_store_batch_commit(store, errstr, errstr_size) ? -1 : 0;
}

/* ---- applying records ---- */

enum apply_result {
    APPLY_OK = 0,
    APPLY_STOP,
    APPLY_FULL,
    APPLY_REBUILD,
    APPLY_FAILED,
    APPLY_NO_SPACE, /* the store's volume is full: wait for space, then go on from the store */
};

static void pending_release(struct pending *pb)
{
    ferry_table_stage_destroy(pb->stage);
    free(pb->next);
    free(pb->written);
    free(pb->key_at);
    free(pb->key_len);
    free(pb->marks);
    free(pb->key_ptrs);
    ferry_buf_release(&pb->key_bytes);
    memset(pb, 0, sizeof(*pb));
}

static int pending_init(struct pending *pb, int32_t partitions)
{
    memset(pb, 0, sizeof(*pb));
    pb->stage = ferry_table_stage_new(APPLY_STAGE_RECORDS_MAX, APPLY_STAGE_BYTES_MAX);
    ferry_buf_init(&pb->key_bytes, APPLY_KEYS_MAX);
    pb->next = malloc((size_t)partitions * sizeof(*pb->next));
    pb->written = malloc((size_t)partitions * sizeof(*pb->written));
    pb->key_at = malloc(APPLY_BATCH_MAX * sizeof(*pb->key_at));
    pb->key_len = malloc(APPLY_BATCH_MAX * sizeof(*pb->key_len));
    pb->marks = malloc(APPLY_BATCH_MAX * sizeof(*pb->marks));
    pb->key_ptrs = malloc(APPLY_BATCH_MAX * sizeof(*pb->key_ptrs));
    if (!pb->stage || !pb->next || !pb->written || !pb->key_at || !pb->key_len || !pb->marks ||
        !pb->key_ptrs)
        return -1;
    for (int32_t p = 0; p < partitions; p++)
        pb->next[p] = pb->written[p] = -1;
    return 0;
}

/* What a store's result means for applying; logs why applying stops, but for a full map
 * (report_full says that). */
static enum apply_result store_result(struct table *t, int r, const char *why)
{
    if (r == FERRY_STORE_OK)
        return APPLY_OK;
    if (r == FERRY_STORE_FULL)
        return APPLY_FULL;
    if (r == FERRY_STORE_NO_SPACE) {
        FLOG_ERROR("table", t->cfg->name, "%s. Applying stopped, reads go on from what is stored",
                   why);
        return APPLY_NO_SPACE;
    }
    FLOG_ERROR("table", t->cfg->name, "%s", why);
    return APPLY_FAILED;
}

/* Opens the batch on the first record of a transaction. */
static int pending_open(struct table *t, ferry_store *store, struct pending *pb)
{
    char why[512];
    int r;

    if (pb->open)
        return APPLY_OK;
    r = ferry_store_batch_begin(store, why, sizeof(why));
    if (r)
        return store_result(t, r, why);
    pb->open = 1;
    for (int32_t p = 0; p < t->npartitions; p++)
        pb->written[p] = -1;
    pb->records_written = 0;
    pb->keys_written = 0;
    pb->first_ms = ferry_clock_ms();
    pb->recording = ferry_table_fanout_batch_open(t) | ferry_table_watch_wants_keys(t);
    return APPLY_OK;
}

/* Keeps a record's key and place for the reads that wait and the subscriptions, when some
 * exist. A batch that keeps none (recording was off when it opened) is incomplete all the
 * same: a read may park on one of its keys before it commits, and only all_keys wakes it. */
static void note_key(struct pending *pb, const rd_kafka_message_t *msg)
{
    if (!pb->recording || pb->nkeys == APPLY_BATCH_MAX ||
        ferry_buf_add(&pb->key_bytes, msg->key, msg->key_len)) {
        pb->keys_incomplete = 1;
        return;
    }
    pb->key_at[pb->nkeys] = pb->key_bytes.len - msg->key_len;
    pb->marks[pb->nkeys] = (struct ferry_table_mark){msg->partition, msg->offset, !msg->payload};
    pb->key_len[pb->nkeys++] = msg->key_len;
}

/* The bytes of the first n keys kept. */
static size_t keys_bytes(const struct pending *pb, size_t n)
{
    return n < pb->nkeys ? pb->key_at[n] : pb->key_bytes.len;
}

/* Forgets the first n keys kept, moving the others down. */
static void forget_keys(struct pending *pb, size_t n)
{
    size_t left = pb->nkeys - n, from = keys_bytes(pb, n);

    if (!n)
        return;
    ferry_buf_tail(&pb->key_bytes, pb->key_bytes.len - from);
    for (size_t i = 0; i < left; i++) {
        pb->key_at[i] = pb->key_at[n + i] - from;
        pb->key_len[i] = pb->key_len[n + i];
        pb->marks[i] = pb->marks[n + i];
    }
    pb->nkeys = left;
}

/* Tells the watch what a commit changed: the first n keys kept (every key when some were not
 * kept), and forgets them. */
static void report_keys(struct table *t, struct pending *pb, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pb->key_ptrs[i] = pb->key_bytes.data + pb->key_at[i];
    ferry_table_watch_committed(t, pb->key_ptrs, pb->key_len, n, pb->keys_incomplete);
    forget_keys(pb, n);
}

/* The record's content-type header, copied into out; "" when it has none usable. */
static void record_content_type(const rd_kafka_message_t *msg, char *out, size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const char *name;
    const void *value;
    size_t len;

    out[0] = '\0';
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &value, &len); i++) {
        if (strcasecmp(name, "content-type") != 0 || !value || len == 0 || len >= size)
            continue;
        if (memchr(value, '\0', len) || memchr(value, '\r', len) || memchr(value, '\n', len))
            continue;
        memcpy(out, value, len);
        out[len] = '\0';
    }
}

/* Nonzero when the record has a key the table can store; a record without is counted (and
 * the first one with too long a key logged) and skipped. */
static int record_keyed(struct table *t, const rd_kafka_message_t *msg)
{
    if (msg->key && msg->key_len <= (size_t)t->cfg->limits.max_key_bytes)
        return 1;
    ferry_counter_add(t->m.skipped, 1);
    if (msg->key && !t->warned_long_key++)
        FLOG_WARN("table", t->cfg->name,
                  "skipped a record of %s [%d] at offset %" PRId64 ": its key of %zu bytes "
                  "passes limits.max_key (%" PRId64 "); further ones are only counted",
                  t->cfg->topic, msg->partition, msg->offset, msg->key_len,
                  t->cfg->limits.max_key_bytes);
    return 0;
}

/* Writes one record (a row, or a tombstone) into the open transaction. */
static enum apply_result write_record(struct table *t, ferry_store *store,
                                      const struct ferry_table_record *rec)
{
    struct ferry_store_row row = {.partition = rec->partition,
                                  .offset = rec->offset,
                                  .timestamp_ms = rec->timestamp_ms,
                                  .content_type = rec->content_type};
    char why[512];
    int r;

    if (!rec->value) {
        r = ferry_store_batch_delete(store, rec->key, rec->key_len, why, sizeof(why));
        ferry_counter_add(t->m.deleted, 1);
        return store_result(t, r, why);
    }
    r = ferry_store_batch_put(store, rec->key, rec->key_len, rec->value, rec->value_len, &row, why,
                              sizeof(why));
    return store_result(t, r, why);
}

/* Ends the open transaction uncommitted, where the store has not already (it does when a write
 * is refused), and tells the subscriptions. */
static void pending_drop(struct table *t, ferry_store *store, struct pending *pb)
{
    if (!pb->open)
        return;
    ferry_store_batch_abort(store);
    ferry_table_fanout_batch_dropped(t);
    pb->open = 0;
}

/* Writes offsets[p] (those set) into the open transaction and commits it, handing the first n
 * keys kept to the subscriptions. Returns APPLY_OK, or why applying stops (logged); the
 * transaction is over either way. */
static enum apply_result commit_offsets(struct table *t, ferry_store *store, struct pending *pb,
                                        const int64_t *offsets, size_t n)
{
    struct ferry_table_batch changes = {.keys = pb->key_bytes.data,
                                        .keys_len = keys_bytes(pb, n),
                                        .key_at = pb->key_at,
                                        .key_len = pb->key_len,
                                        .marks = pb->marks,
                                        .n = n,
                                        .recorded = pb->recording,
                                        .complete = !pb->keys_incomplete};
    char why[512];
    int r = FERRY_STORE_OK;

    for (int32_t p = 0; p < t->npartitions && r == FERRY_STORE_OK; p++)
        if (offsets[p] >= 0)
            r = ferry_store_batch_set_offset(store, p, offsets[p], why, sizeof(why));
    if (r == FERRY_STORE_OK)
        r = ferry_table_fanout_commit(t, store, &changes, why, sizeof(why));
    else
        pending_drop(t, store, pb);
    pb->open = 0;
    return store_result(t, r, why);
}

/* Publishes the offsets a commit stored as applied, and unsets them. */
static void publish_applied(struct table *t, int64_t *offsets)
{
    for (int32_t p = 0; p < t->npartitions; p++) {
        if (offsets[p] >= 0) {
            atomic_store(&t->parts[p].applied, offsets[p]);
            t->parts[p].unstored = 0;
        }
        offsets[p] = -1;
    }
}

/* The volume is short of what the open transaction would reserve: commits the records it has
 * written, with the offsets they reach (pb->written) and their keys, and opens a fresh
 * transaction for the rest, which stay in the stage with their keys. */
static enum apply_result commit_written(struct table *t, ferry_store *store, struct pending *pb)
{
    int64_t first_ms = pb->first_ms;
    /* the records written have the first keys kept, unless some keys were not kept at all:
     * then every state is resent and every key waiter woken (keys_incomplete) */
    size_t n = pb->keys_written < pb->nkeys ? pb->keys_written : pb->nkeys;
    enum apply_result r = commit_offsets(t, store, pb, pb->written, n);

    if (r != APPLY_OK)
        return r;
    FLOG_WARN_REPEATED("table", t->cfg->name,
                       "the store's volume is short of the room a transaction reserves: "
                       "committed %zu record(s), going on in a new transaction",
                       pb->records_written);
    ferry_counter_add(t->m.applied, pb->records_written);
    pb->records -= pb->records_written;
    publish_applied(t, pb->written);
    report_keys(t, pb, n); /* the keys not kept stay unknown: keys_incomplete stays */
    r = pending_open(t, store, pb);
    pb->first_ms = first_ms; /* the fresh transaction commits when the first one was due */
    return r;
}

/* The writing of a transaction's records into the store. */
struct flush {
    struct table *t;
    ferry_store *store;
    struct pending *pb;
    enum apply_result r; /* APPLY_OK, or why applying stops (logged) */
    char why[512];       /* why the volume is short (ROOM_SHORT) */
};

/* What make_room() found. */
enum room {
    ROOM_GRANTED,
    ROOM_SHORT,   /* for a transaction holding no record written: why says why, it stays open */
    ROOM_STOPPED, /* applying stops: r says why; the transaction is over */
};

/* Reserves room in the open transaction for n more records of bytes (keys, values, content
 * types), and for the offsets its commit writes (one more, for the partition of a record being
 * taken). When the volume is short and the transaction holds records, commits them and tries
 * again in a fresh one (commit_written). */
static enum room make_room(struct flush *f, size_t n, size_t bytes)
{
    size_t writes = n + (size_t)f->pb->nparts + 1;
    int r = ferry_store_batch_reserve(f->store, writes, bytes, f->why, sizeof(f->why));

    if (r == FERRY_STORE_NO_SPACE && f->pb->records_written > 0) {
        f->r = commit_written(f->t, f->store, f->pb);
        if (f->r != APPLY_OK)
            return ROOM_STOPPED;
        r = ferry_store_batch_reserve(f->store, writes, bytes, f->why, sizeof(f->why));
    }
    if (r == FERRY_STORE_OK)
        return ROOM_GRANTED;
    if (r == FERRY_STORE_NO_SPACE)
        return ROOM_SHORT;
    ferry_store_batch_abort(f->store);
    f->r = store_result(f->t, r, f->why);
    return ROOM_STOPPED;
}

/* Notes that rec was written into the open transaction as it came. */
static void note_written(struct pending *pb, const struct ferry_table_record *rec)
{
    pb->written[rec->partition] = rec->offset + 1;
    pb->records_written++;
    pb->keys_written++;
}

/* The bytes of rec as the stage counts them. */
static size_t record_bytes(const struct ferry_table_record *rec)
{
    size_t type = rec->content_type ? strlen(rec->content_type) + 1 : 0;

    return rec->key_len + (rec->value ? rec->value_len : 0) + type;
}

/* Writes one record after making room for it, committing the transaction's records first
 * when the volume is short (make_room); a stage's callback (f, a struct flush). A fresh
 * transaction without room for it ends applying: APPLY_NO_SPACE, logged, with the transaction
 * aborted. Returns nonzero when f->r says applying stops. */
static int write_reserved(void *arg, const struct ferry_table_record *rec)
{
    struct flush *f = arg;
    enum room room = make_room(f, 1, record_bytes(rec));

    if (room == ROOM_SHORT) {
        ferry_store_batch_abort(f->store);
        f->r = store_result(f->t, FERRY_STORE_NO_SPACE, f->why);
    } else if (room == ROOM_GRANTED) {
        f->r = write_record(f->t, f->store, rec);
        if (f->r == APPLY_OK)
            note_written(f->pb, rec);
    }
    return f->r != APPLY_OK;
}

/* Writes a record of a stage whose room was reserved whole; a stage's callback. */
static int write_staged(void *arg, const struct ferry_table_record *rec)
{
    struct flush *f = arg;

    f->r = write_record(f->t, f->store, rec);
    if (f->r == APPLY_OK)
        f->pb->keys_written++;
    return f->r != APPLY_OK;
}

/* Writes the staged records into the open transaction: in key order (stage.h says why) when
 * the room for all of them is reserved, else as they came (see "Disk space" above). Afterwards
 * the transaction holds every record taken. */
static enum apply_result flush_stage(struct table *t, ferry_store *store, struct pending *pb)
{
    struct flush f = {.t = t, .store = store, .pb = pb, .r = APPLY_OK};
    enum room room =
        make_room(&f, ferry_table_stage_count(pb->stage), ferry_table_stage_bytes(pb->stage));

    if (room == ROOM_STOPPED)
        ferry_table_stage_clear(pb->stage, 0);
    else if (room == ROOM_GRANTED)
        ferry_table_stage_flush(pb->stage, write_staged, &f);
    else
        ferry_table_stage_flush_as_added(pb->stage, write_reserved, &f);
    if (f.r != APPLY_OK)
        return f.r;
    memcpy(pb->written, pb->next, (size_t)t->npartitions * sizeof(*pb->written));
    pb->records_written = pb->records;
    return APPLY_OK;
}

/* Copies a keyed record into the stage, writing the staged ones first when it is full, and
 * writing the record itself when it is larger than the stage can hold. */
static enum apply_result stage_record(struct table *t, ferry_store *store, struct pending *pb,
                                      const rd_kafka_message_t *msg)
{
    char type[FERRY_STORE_CONTENT_TYPE_MAX + 1];
    struct ferry_table_record rec = {.key = msg->key,
                                     .key_len = msg->key_len,
                                     .value = msg->payload,
                                     .value_len = msg->len,
                                     .partition = msg->partition,
                                     .offset = msg->offset,
                                     .timestamp_ms = rd_kafka_message_timestamp(msg, NULL)};
    struct flush f = {.t = t, .store = store, .pb = pb, .r = APPLY_OK};

    note_key(pb, msg);
    if (msg->payload) {
        record_content_type(msg, type, sizeof(type));
        rec.content_type = type[0] ? type : NULL;
    }
    if (ferry_table_stage_add(pb->stage, &rec) == 0)
        return APPLY_OK;
    f.r = flush_stage(t, store, pb);
    if (f.r == APPLY_OK && ferry_table_stage_add(pb->stage, &rec) != 0)
        write_reserved(&f, &rec);
    return f.r;
}

/* Sets the offset partition p reaches once the batch commits. */
static void advance(struct pending *pb, int32_t p, int64_t next)
{
    if (pb->next[p] < 0)
        pb->nparts++;
    pb->next[p] = next;
}

/* Takes one message from the consumer into the batch. */
static enum apply_result take(struct table *t, ferry_store *store, struct pending *pb,
                              const rd_kafka_message_t *msg)
{
    enum apply_result r;
    int32_t p = msg->partition;

    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        FLOG_ERROR("table", t->cfg->name, "%s: records the table never applied are gone",
                   rd_kafka_message_errstr(msg));
        return APPLY_REBUILD;
    }
    if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        FLOG_WARN_REPEATED("table", t->cfg->name, "consumer: %s", rd_kafka_message_errstr(msg));
        return APPLY_OK;
    }
    if (p < 0 || p >= t->npartitions)
        return APPLY_OK;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* Control records (transaction markers) have offsets but no message: the end says
         * the partition is applied up to here all the same. */
        if (msg->offset <= atomic_load(&t->parts[p].applied) || msg->offset <= pb->next[p])
            return APPLY_OK;
        r = pending_open(t, store, pb);
        if (!r)
            advance(pb, p, msg->offset);
        return r;
    }
    r = pending_open(t, store, pb);
    if (!r && record_keyed(t, msg))
        r = stage_record(t, store, pb, msg);
    if (!r) {
        advance(pb, p, msg->offset + 1);
        pb->records++;
        pb->bytes += msg->key_len + msg->len;
    }
    return r;
}

/* Commits the batch with the offsets it reached, then publishes them. */
static enum apply_result commit(struct table *t, ferry_store *store, struct pending *pb)
{
    enum apply_result r;

    if (!pb->open)
        return APPLY_OK;
    r = flush_stage(t, store, pb);
    if (r == APPLY_OK)
        r = commit_offsets(t, store, pb, pb->next, pb->nkeys);
    if (r != APPLY_OK) {
        pending_drop(t, store, pb); /* unless a commit ended it */
        return r;
    }
    ferry_histogram_observe(t->m.apply_latency, (double)(ferry_clock_ms() - pb->first_ms) / 1000.0);
    ferry_counter_add(t->m.applied, pb->records);
    publish_applied(t, pb->next);
    pb->nparts = 0;
    pb->records = 0;
    pb->bytes = 0;
    report_keys(t, pb, pb->nkeys);
    pb->keys_incomplete = 0;
    return APPLY_OK;
}

/* ---- progress ---- */

/* Looks at each partition's end as the consumer last saw it (no request to the broker). */
static void update_ends(struct table *t)
{
    for (int32_t p = 0; p < t->npartitions; p++) {
        int64_t low = -1, high = -1;
        if (rd_kafka_get_watermark_offsets(t->consumer, t->cfg->topic, p, &low, &high) == 0 &&
            high > atomic_load(&t->parts[p].end))
            atomic_store(&t->parts[p].end, high);
    }
}

/* Nonzero once every partition the table reads is within ready_lag of the end it had when
 * it was assigned, counting the offsets next would commit (next[p] >= 0) where given. */
static int caught_up(const struct table *t, const int64_t *next)
{
    for (int32_t p = 0; p < t->npartitions; p++) {
        int64_t at = next && next[p] >= 0 ? next[p] : atomic_load(&t->parts[p].applied);
        if (atomic_load(&t->parts[p].held) &&
            (t->parts[p].ready_end < 0 || at < t->parts[p].ready_end - t->cfg->ready_lag))
            return 0;
    }
    return 1;
}

/* ---- the thread ---- */

/* Fixes the partitions the table has, and their offsets, before anyone reads them. */
static int set_partitions(struct table *t, const struct topic_view *v, const int64_t *next)
{
    if (!t->parts) {
        t->parts = calloc((size_t)v->partitions, sizeof(*t->parts));
        if (!t->parts)
            return -1;
        t->npartitions = v->partitions;
    }
    for (int32_t p = 0; p < t->npartitions; p++) {
        atomic_store(&t->parts[p].applied, next[p] >= 0 ? next[p] : v->low[p]);
        t->parts[p].unstored = next[p] < 0;
        atomic_store(&t->parts[p].end, v->high[p]);
        t->parts[p].ready_end = v->high[p];
    }
    return 0;
}

/* What the thread works with between a start and a rebuild. */
struct run {
    struct topic_view view;
    ferry_store *target; /* the store being written: t->store, or a rebuild beside it */
    struct pending pb;
    int64_t *next;            /* the target's stored offsets when it was opened */
    ferry_table_nudge *nudge; /* wakes the fetcher while the target loads */
    int nudge_failed;         /* it could not start: the load goes on without */
};

static void run_release(struct table *t, struct run *run)
{
    ferry_table_nudge_destroy(run->nudge);
    run->nudge = NULL;
    if (run->pb.open)
        ferry_store_batch_abort(run->target);
    if (run->target && run->target != t->store)
        ferry_store_close(run->target);
    run->target = NULL;
    pending_release(&run->pb);
    free(run->next);
    run->next = NULL;
    topic_view_release(&run->view);
}

/* Chooses the store to write: the table's own, or a fresh one to rebuild into when the
 * table's disagrees with the cluster (reason), which reads keep using meanwhile. */
static int choose_target(struct table *t, struct run *run, const char *reason, char *errstr,
                         size_t errstr_size)
{
    char path[TABLE_PATH_MAX];

    if (!reason) {
        run->target = t->store;
        return 0;
    }
    if (ferry_kafka_is_dev(t->kafka))
        FLOG_INFO("table", t->cfg->name, "rebuilding the store from the embedded cluster: %s",
                  reason);
    else
        FLOG_WARN("table", t->cfg->name,
                  "REBUILDING the store from the earliest offsets: %s. Reads are answered from "
                  "the old store, marked Ferry-Rebuilding, until the new one has caught up",
                  reason);
    rebuild_path(t, path, sizeof(path));
    run->target = open_fresh(t, path, errstr, errstr_size);
    if (!run->target)
        return -1;
    atomic_store(&t->rebuilding, 1);
    return 0;
}

/* Says where applying starts: how many of the topic's records the store already holds. */
static void log_start(struct table *t, const struct run *run)
{
    int64_t stored = 0, total = 0;

    for (int32_t p = 0; p < run->view.partitions; p++) {
        stored += run->next[p] >= 0 ? run->next[p] - run->view.low[p] : 0;
        total += run->view.high[p] - run->view.low[p];
    }
    FLOG_INFO("table", t->cfg->name,
              "applying %s from the stored offsets: %" PRId64 " of %" PRId64
              " record(s) of %d partition(s) already applied",
              t->cfg->topic, stored, total, run->view.partitions);
}

static int set_partitions_checked(struct table *t, struct run *run, char *errstr,
                                  size_t errstr_size)
{
    if (set_partitions(t, &run->view, run->next) == 0)
        return 0;
    snprintf(errstr, errstr_size, "out of memory for the progress of %d partitions",
             run->view.partitions);
    return -1;
}

/* Nonzero while the store being written answers no reads: a table not ready yet, or a store
 * being rebuilt beside the one that answers. Its transactions then take as many records as
 * they can, since LMDB writes every page a commit touched: small commits bound a restore
 * (bench/README.md, "Tables"); and they skip their syncs until the load has caught up. */
static int loading(const struct table *t, const struct run *run)
{
    return run->target != t->store || atomic_load(&t->state) != TABLE_READY;
}

/* Placement partitioned: waits until the members topic was read back, so that the first
 * assignment knows the members already running. Returns nonzero when told to stop first. */
static int wait_for_members(struct table *t)
{
    while (ferry_table_is_partitioned(t) && !ferry_table_cluster_synced(t->owner->cluster))
        if (pause_ms(t, 50))
            return -1;
    return 0;
}

/* Reads the topic, checks the store against it, and assigns the partitions. */
static enum apply_result prepare(struct table *t, struct run *run, const char *forced)
{
    char why[512] = "", err[512] = "";
    struct ferry_store_meta meta;
    const char *reason;

    if (wait_for_topic(t, &run->view) || wait_for_members(t))
        return APPLY_STOP;
    reason = forced ? forced : store_mismatch(t, t->store, &run->view, why, sizeof(why));
    if (t->parts && run->view.partitions != t->npartitions) {
        FLOG_ERROR("table", t->cfg->name,
                   "the topic now has %d partitions instead of %d: restart ferry to rebuild",
                   run->view.partitions, t->npartitions);
        return APPLY_FAILED;
    }
    run->next = calloc((size_t)run->view.partitions, sizeof(*run->next));
    snprintf(err, sizeof(err), "out of memory for the apply batch of %d partitions",
             run->view.partitions);
    if (!run->next || pending_init(&run->pb, run->view.partitions) ||
        choose_target(t, run, reason, err, sizeof(err)) ||
        (ferry_store_get_meta(run->target, &meta, err, sizeof(err)) == FERRY_STORE_NOT_FOUND &&
         write_meta(t, run->target, &run->view, err, sizeof(err))) ||
        ferry_store_offsets(run->target, run->next, run->view.partitions, err, sizeof(err)) ||
        set_partitions_checked(t, run, err, sizeof(err)) ||
        (loading(t, run) && ferry_store_set_synced(run->target, 0, err, sizeof(err))) ||
        ferry_table_assign_start(t, run->next, err, sizeof(err))) {
        FLOG_ERROR("table", t->cfg->name, "cannot start applying: %s", err);
        return APPLY_FAILED;
    }
    log_start(t, run);
    return APPLY_OK;
}

/* Puts what the old store holds back as what the table has applied, for the reads that wait
 * on min_offset: the rebuild's progress stood there. Returns 0, or -1 when the old store's
 * offsets cannot be read. */
static int applied_from_store(struct table *t, struct run *run)
{
    char why[512];

    if (ferry_store_offsets(t->store, run->next, t->npartitions, why, sizeof(why))) {
        FLOG_ERROR("table", t->cfg->name, "cannot read the old store's offsets: %s", why);
        return -1;
    }
    for (int32_t p = 0; p < t->npartitions; p++) {
        atomic_store(&t->parts[p].applied, run->next[p] >= 0 ? run->next[p] : run->view.low[p]);
        t->parts[p].unstored = run->next[p] < 0;
    }
    return 0;
}

/* Puts the caught-up rebuilt store in the place of the table's own. */
static enum apply_result swap_in(struct table *t, struct run *run)
{
    char from[TABLE_PATH_MAX], why[512] = "", reopen[512] = "";
    int failed;

    snprintf(from, sizeof(from), "%s", ferry_store_path(run->target));
    ferry_store_close(run->target);
    run->target = NULL;
    pthread_rwlock_wrlock(&t->store_lock);
    ferry_store_close(t->store);
    /* On failure the old store is whole in its place, and is opened again to keep answering. */
    failed = ferry_store_replace(t->path, from, why, sizeof(why)) != FERRY_STORE_OK;
    if (!failed && why[0])
        FLOG_WARN("table", t->cfg->name, "the rebuilt store is in place, but %s", why);
    t->store = ferry_store_open(t->path, (size_t)t->cfg->max_size, failed ? reopen : why,
                                failed ? sizeof(reopen) : sizeof(why));
    pthread_rwlock_unlock(&t->store_lock);
    run->target = t->store;
    /* the applied offsets are the rebuild's: the old store's stand again when it stays */
    if (!failed || (t->store && applied_from_store(t, run) == 0))
        atomic_store(&t->rebuilding, 0);
    ferry_table_fanout_resync(t); /* the subscriptions' states are of the old store */
    ferry_table_watch_committed(t, NULL, NULL, 0, 1); /* so are the parked reads' answers */
    if (failed && t->store) {
        FLOG_ERROR("table", t->cfg->name,
                   "cannot swap in the rebuilt store: %s; applying stopped, the old store "
                   "keeps answering",
                   why);
        return APPLY_FAILED;
    }
    if (!t->store) {
        FLOG_ERROR("table", t->cfg->name, "cannot swap in the rebuilt store: %s%s%s", why,
                   failed ? "; opening the old one again: " : "", failed ? reopen : "");
        return APPLY_FAILED;
    }
    FLOG_INFO("table", t->cfg->name, "the rebuilt store has caught up and replaced the old one");
    return APPLY_OK;
}

/* Ends a load: commits what is pending, then syncs the store, whose commits skipped their
 * syncs while nothing read it (store.h, "Unsynced loading"). */
static enum apply_result finish_loading(struct table *t, struct run *run)
{
    enum apply_result r = commit(t, run->target, &run->pb);
    char why[512];

    ferry_table_stage_clear(run->pb.stage, 1); /* later transactions are small */

    if (r != APPLY_OK || ferry_store_set_synced(run->target, 1, why, sizeof(why)) == 0)
        return r;
    FLOG_ERROR("table", t->cfg->name, "cannot sync the loaded store: %s", why);
    return APPLY_FAILED;
}

/* Moves the table to ready once it has caught up (swapping a rebuilt store in first). */
static enum apply_result progress(struct table *t, struct run *run)
{
    enum apply_result r;

    ferry_table_assign_serving(t);
    if (!caught_up(t, NULL))
        return APPLY_OK;
    r = loading(t, run) ? finish_loading(t, run) : APPLY_OK;
    if (r != APPLY_OK)
        return r;
    if (atomic_load(&t->rebuilding) && run->target != t->store && swap_in(t, run))
        return APPLY_FAILED;
    if (atomic_load(&t->state) == TABLE_LOADING) {
        atomic_store(&t->was_ready, 1);
        atomic_store(&t->state, TABLE_READY);
        ferry_gauge_set(t->m.ready, 1);
        FLOG_INFO("table", t->cfg->name, "ready: %" PRId64 " record(s) behind the end",
                  ferry_table_lag(t));
    }
    return APPLY_OK;
}

/* How long a transaction may stay open after its first record. */
static int64_t batch_interval(const struct table *t, const struct run *run)
{
    return loading(t, run) ? APPLY_LOADING_INTERVAL_MS : t->cfg->apply_interval_ms;
}

/* How long the next poll may wait: until the open batch is due, and never more than
 * APPLY_IDLE_POLL_MS, so that a loading batch's seconds-long interval does not keep the thread
 * from noticing a stop, the partitions' ends and its members. */
static int poll_timeout(const struct table *t, const struct run *run)
{
    int64_t left;

    if (!run->pb.open)
        return APPLY_IDLE_POLL_MS;
    left = run->pb.first_ms + batch_interval(t, run) - ferry_clock_ms();
    if (left <= 0)
        return 0;
    return left < APPLY_IDLE_POLL_MS ? (int)left : APPLY_IDLE_POLL_MS;
}

/* Nonzero when the open batch holds as many records, or record bytes, as a transaction may. */
static int batch_full(const struct table *t, const struct run *run)
{
    if (loading(t, run))
        return run->pb.records >= APPLY_LOADING_BATCH_MAX ||
               run->pb.bytes >= APPLY_LOADING_BYTES_MAX;
    return run->pb.records >= APPLY_BATCH_MAX;
}

/* Nonzero when the open batch should commit: it is full or due, or it ends a load, or (when
 * the store answers reads) the consumer had nothing more. */
static int batch_due(const struct table *t, const struct run *run, int had_msg, int64_t now)
{
    if (!run->pb.open)
        return 0;
    if (batch_full(t, run) || now >= run->pb.first_ms + batch_interval(t, run))
        return 1;
    if (loading(t, run))
        return caught_up(t, run->pb.next); /* committing it ends the load */
    return !had_msg;
}

/* Takes what the consumer already has, up to max messages; when it has none, waits up to
 * timeout_ms for one. One call for many messages: a restore takes a million. */
static size_t poll_messages(struct table *t, rd_kafka_message_t **msgs, size_t max, int timeout_ms)
{
    ssize_t n = rd_kafka_consume_batch_queue(t->queue, 0, msgs, max);

    if (n == 0 && timeout_ms > 0)
        n = rd_kafka_consume_batch_queue(t->queue, timeout_ms, msgs, 1);
    return n > 0 ? (size_t)n : 0;
}

/* Applies the messages in order, committing whenever the batch fills up. Stops at the first
 * result other than APPLY_OK: the table then stops applying, or starts again from its stored
 * offsets, so the messages after that one are dropped here without loss. */
static enum apply_result take_all(struct table *t, struct run *run, rd_kafka_message_t **msgs,
                                  size_t n)
{
    enum apply_result r = APPLY_OK;

    for (size_t i = 0; i < n && r == APPLY_OK; i++) {
        r = take(t, run->target, &run->pb, msgs[i]);
        if (r == APPLY_OK && batch_full(t, run))
            r = commit(t, run->target, &run->pb);
    }
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    return r;
}

/* Keeps the fetch nudge running while the target loads, and only then (fetch_nudge.c). Once
 * loaded, it is only told to stop: its last request may wait behind a fetch that the broker
 * holds up to fetch.wait.max.ms, and the apply thread must not. It is joined when the loop
 * ends. */
static void nudge_while_loading(struct table *t, struct run *run)
{
    char why[512];

    if (loading(t, run) && !run->nudge && !run->nudge_failed) {
        run->nudge = ferry_table_nudge_new(t, why, sizeof(why));
        if (!run->nudge) {
            run->nudge_failed = 1;
            FLOG_WARN("table", t->cfg->name, "%s; loading goes on without it", why);
        }
    } else if (!loading(t, run) && run->nudge) {
        ferry_table_nudge_stop(run->nudge);
    }
}

/* Placement partitioned: reassigns the consumer when the live members changed who holds
 * what. A refusal is logged and tried again at the next look. */
static void follow_members(struct table *t)
{
    char why[512];

    if (ferry_table_is_partitioned(t) && ferry_table_assign_update(t, why, sizeof(why)) < 0)
        FLOG_WARN_REPEATED("table", t->cfg->name, "%s", why);
}

/* Deletes some rows of a partition given up longer than the grace period ago. */
static enum apply_result forget_given_up(struct table *t, struct run *run)
{
    char why[512];

    return store_result(t, ferry_table_assign_forget(t, run->target, why, sizeof(why)), why);
}

/* Applies records until the table stops or something needs more than applying. */
static enum apply_result apply_loop(struct table *t, struct run *run)
{
    rd_kafka_message_t *msgs[APPLY_POLL_BATCH];
    enum apply_result r = APPLY_OK;
    int64_t looked = 0;

    while (r == APPLY_OK && !atomic_load(&t->stop)) {
        size_t n;
        int64_t now;

        nudge_while_loading(t, run);
        n = poll_messages(t, msgs, APPLY_POLL_BATCH, poll_timeout(t, run));

        r = take_all(t, run, msgs, n);
        now = ferry_clock_ms();
        if (r == APPLY_OK && batch_due(t, run, n > 0, now))
            r = commit(t, run->target, &run->pb);
        if (r == APPLY_OK && (!n || now - looked >= APPLY_ENDS_EVERY_MS)) {
            follow_members(t);
            if (!run->pb.open)
                r = forget_given_up(t, run);
            update_ends(t);
            if (r == APPLY_OK)
                r = progress(t, run);
            looked = now;
        }
    }
    ferry_table_nudge_destroy(run->nudge);
    run->nudge = NULL;
    if (r == APPLY_OK)
        r = commit(t, run->target, &run->pb);
    else
        pending_drop(t, run->target, &run->pb);
    return r;
}

/* Waits, applying nothing, until the table is told to stop. */
static void idle(struct table *t, enum table_state state)
{
    atomic_store(&t->state, state);
    ferry_gauge_set(t->m.ready, 0);
    rd_kafka_assign(t->consumer, NULL);
    while (!pause_ms(t, APPLY_IDLE_POLL_MS))
        ;
}

/* The table's own store had no room on its volume (logged by store_result): the table reports
 * disk_full and answers reads from what is stored, and looks for room every
 * APPLY_SPACE_RETRY_MS. Returns 0 once there is room (or the look fails otherwise: the next
 * batch then says why), with the state the table had before, or nonzero when told to stop
 * first. */
static int wait_for_space(struct table *t, struct run *run)
{
    int was = atomic_load(&t->state), r;
    char why[512];

    FLOG_INFO("table", t->cfg->name,
              "applying goes on from the stored offsets once the volume has room (looked at "
              "every %d s)",
              APPLY_SPACE_RETRY_MS / 1000);
    rd_kafka_assign(t->consumer, NULL); /* prepare() assigns it again from the stored offsets */
    atomic_store(&t->state, TABLE_DISK_FULL);
    ferry_gauge_set(t->m.ready, 0);
    do {
        if (pause_ms(t, APPLY_SPACE_RETRY_MS))
            return -1;
        r = ferry_store_space_retry(run->target, why, sizeof(why));
    } while (r == FERRY_STORE_NO_SPACE);
    atomic_store(&t->state, was);
    ferry_gauge_set(t->m.ready, was == TABLE_READY);
    if (r)
        FLOG_WARN("table", t->cfg->name, "looking for room: %s; applying tries again", why);
    else
        FLOG_INFO("table", t->cfg->name, "the store's volume has room again: applying goes on");
    return 0;
}

/* A store being rebuilt beside the table's had no room: its own blocks are likely what filled
 * the volume, so it is given up as a rebuild that reached max_size is (drop_rebuild), which
 * frees them, and the old store goes on answering. */
static void report_rebuild_no_space(struct table *t)
{
    FLOG_ERROR("table", t->cfg->name,
               "the store being rebuilt ran out of disk space: it is deleted, and the old store "
               "goes on answering and applies nothing more. Make room (a rebuild needs about "
               "the store's size again) and restart ferry to rebuild");
}

/* Logs that the store being written (target: the table's own, or a rebuild beside it) reached
 * max_size. */
static void report_full(struct table *t, ferry_store *target)
{
    struct ferry_store_stats st = {0};
    int rebuild = target != t->store;
    char why[512];

    if (ferry_store_stats(target, &st, why, sizeof(why)))
        FLOG_WARN("table", t->cfg->name, "cannot read the store's size: %s", why);
    FLOG_ERROR("table", t->cfg->name,
               "the %s is full (%" PRIu64 " bytes used of max_size %" PRIu64 "): applying "
               "stopped, reads go on%s. Raise tables[].max_size for '%s' and restart ferry",
               rebuild ? "rebuilt store" : "store", st.bytes_used, st.max_size,
               rebuild ? " from the old store, which applies nothing more" : "", t->cfg->name);
}

/* Gives up a rebuild whose store filled up or that failed: deletes that store, and the table
 * goes on answering from the old one as a full store does. It stays marked rebuilding only
 * when the old store's offsets cannot be read, so that min_offset is never taken from the
 * rebuild's progress. */
static void drop_rebuild(struct table *t, struct run *run)
{
    char path[TABLE_PATH_MAX], why[512];

    if (!run->target || run->target == t->store)
        return;
    snprintf(path, sizeof(path), "%s", ferry_store_path(run->target));
    ferry_store_close(run->target); /* aborts the transaction that did not fit */
    run->target = NULL;
    run->pb.open = 0;
    if (ferry_store_destroy_files(path, why, sizeof(why)))
        FLOG_WARN("table", t->cfg->name, "cannot delete the rebuilt store: %s", why);
    if (applied_from_store(t, run))
        return;
    atomic_store(&t->rebuilding, 0);
    ferry_table_watch_committed(t, NULL, NULL, 0, 1); /* the old store may hold what they wait on */
}

/* While a store is rebuilt, the old one answers reads when it holds anything. */
static int old_store_answers(struct table *t)
{
    struct ferry_store_stats st = {0};
    char why[256];

    return atomic_load(&t->rebuilding) && ferry_store_stats(t->store, &st, why, sizeof(why)) == 0 &&
           st.keys > 0;
}

void *ferry_table_apply_main(void *arg)
{
    struct table *t = arg;
    struct run run = {0};
    enum apply_result r = prepare(t, &run, NULL);

    if (r == APPLY_OK && old_store_answers(t))
        atomic_store(&t->was_ready, 1);
    if (r == APPLY_OK)
        atomic_store(&t->state, old_store_answers(t) ? TABLE_READY : TABLE_LOADING);
    ferry_gauge_set(t->m.ready, atomic_load(&t->state) == TABLE_READY);
    if (r == APPLY_OK)
        r = apply_loop(t, &run);
    while (r == APPLY_REBUILD || (r == APPLY_NO_SPACE && run.target == t->store)) {
        const char *forced =
            r == APPLY_REBUILD ? "the consumer's offsets left the partitions' ranges" : NULL;
        if (r == APPLY_NO_SPACE && wait_for_space(t, &run))
            break;
        rd_kafka_assign(t->consumer, NULL);
        run_release(t, &run);
        r = prepare(t, &run, forced);
        if (r == APPLY_OK)
            r = apply_loop(t, &run);
    }
    if (r == APPLY_FULL)
        report_full(t, run.target);
    if (r == APPLY_NO_SPACE && run.target && run.target != t->store)
        report_rebuild_no_space(t);
    if (r == APPLY_FULL || r == APPLY_FAILED || r == APPLY_NO_SPACE) {
        drop_rebuild(t, &run); /* a rebuild that stops for good leaves the old store answering */
        idle(t, r == APPLY_FULL       ? TABLE_FULL
                : r == APPLY_NO_SPACE ? TABLE_DISK_FULL
                                      : TABLE_FAILED);
    }
    run_release(t, &run);
    return NULL;
}
