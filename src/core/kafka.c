/*
 * kafka.c - Kafka client set-up shared by every job (see kafka.h).
 *
 * Each client created through ferry_kafka_conf_new() gets a small record here, the opaque its
 * librdkafka callbacks receive. The statistics callback (on librdkafka's threads) parses the
 * statistics JSON into that record; /metrics renders the records.
 */
#include "core/kafka.h"
#include "core/clock.h"
#include "core/devbroker.h"
#include "core/json.h"
#include "core/log.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* A topic (up to 249 characters), a broker ("host:port/id", a host name up to 253) or a
 * client's label: two names cut to one length would be one series twice in /metrics. */
#define KAFKA_NAME_MAX 320
#define KAFKA_STATS_BROKERS_MAX 16
#define KAFKA_STATS_PARTITIONS_MAX 256
#define KAFKA_READY_CACHE_MS 1000
#define KAFKA_READY_TIMEOUT_MS 500
#define KAFKA_FAILED_WHY_MAX 768 /* the first fatal error, for /readyz */
#define KAFKA_CLUSTER_ID_TIMEOUT_MS 2000
#define KAFKA_MOCK_CLUSTER_PREFIX "mockCluster" /* the cluster id librdkafka's mock reports */
#define KAFKA_STICKY_LINGER_MIN_MS 10           /* librdkafka's own, at its default 5 ms linger */
#define KAFKA_STICKY_LINGER_MAX_MS 900000       /* the most librdkafka takes */

struct broker_stat {
    char name[KAFKA_NAME_MAX];
    double rtt_s;
    int up;
    int logical; /* librdkafka's stand-in for a role ("GroupCoordinator"), not a broker */
};

struct lag_stat {
    char topic[KAFKA_NAME_MAX];
    int partition;
    long long lag;
};

struct client {
    struct client *next;
    ferry_kafka *k;
    void *user;
    char name[KAFKA_NAME_MAX];
    long long msg_cnt, msg_size;
    size_t nbrokers, nlags;
    struct broker_stat brokers[KAFKA_STATS_BROKERS_MAX];
    struct lag_stat lags[KAFKA_STATS_PARTITIONS_MAX];
};

struct ferry_kafka {
    const struct ferry_config *cfg;
    ferry_metrics *metrics;
    ferry_devbroker *dev;
    char *bootstrap;
    rd_kafka_t *producer;
    void *producer_opaque;
    pthread_t poller;
    int poller_started;
    atomic_int stopping;
    pthread_mutex_t lock; /* clients and their statistics */
    struct client *clients;
    pthread_mutex_t ready_lock; /* ready, ready_checked_ms and mock */
    int ready;
    int64_t ready_checked_ms; /* ferry_clock_ms() of the last check; 0: never checked */
    int mock;                 /* -1: not asked yet; 1: the brokers are a mock cluster */
    atomic_int failing;       /* taken by the first fatal error, which writes: */
    char failed_why[KAFKA_FAILED_WHY_MAX]; /* written once, then failed is set */
    atomic_int failed;                     /* a client reported a fatal error */
};

/* ---- callbacks (librdkafka's threads) ---- */

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum ferry_log_level l = level <= 3   ? FERRY_LOG_ERROR
                             : level == 4 ? FERRY_LOG_WARN
                             : level <= 6 ? FERRY_LOG_INFO
                                          : FERRY_LOG_DEBUG;
    FERRY_LOG(l, "kafka", rd_kafka_name(rk), "%s: %s", fac, buf);
}

/* Keeps the first fatal error of k's clients for readiness; a failed producer also stops
 * ferry (its SIGTERM is taken by the main thread's wait), since nothing can be produced. */
static void note_fatal(ferry_kafka *k, rd_kafka_t *rk, const char *what, const char *why)
{
    int expected = 0;

    if (atomic_compare_exchange_strong(&k->failing, &expected, 1)) {
        snprintf(k->failed_why, sizeof(k->failed_why), "%s (%s): %s", what, rd_kafka_name(rk), why);
        atomic_store(&k->failed, 1);
    }
    if (rk == k->producer) {
        FLOG_ERROR("kafka", rd_kafka_name(rk), "stopping: the shared producer failed for good");
        kill(getpid(), SIGTERM);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct client *c = opaque;
    char why[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, why, sizeof(why)) == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) {
        FLOG_ERROR("kafka", rd_kafka_name(rk),
                   "fenced: another running instance joined this consumer group with the same "
                   "server.instance; each instance needs its own (%s)",
                   why);
        if (c)
            note_fatal(c->k, rk, "fenced by another instance with this server.instance", why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        FLOG_ERROR("kafka", rd_kafka_name(rk), "fatal error: %s", why);
        if (c)
            note_fatal(c->k, rk, "failed for good", why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        FLOG_WARN_REPEATED("kafka", rd_kafka_name(rk), "%s", reason);
    else
        FLOG_ERROR_REPEATED("kafka", rd_kafka_name(rk), "%s: %s", rd_kafka_err2name(err), reason);
}

static void parse_brokers(struct client *c, json_t *brokers)
{
    const char *key;
    json_t *b, *up = json_string("UP"), *logical = json_string("logical");

    c->nbrokers = 0;
    json_object_foreach(brokers, key, b)
    {
        struct broker_stat *s;
        if (json_integer_value(json_object_get(b, "nodeid")) < 0 ||
            c->nbrokers == KAFKA_STATS_BROKERS_MAX)
            continue;
        s = &c->brokers[c->nbrokers++];
        snprintf(s->name, sizeof(s->name), "%s", key);
        s->up = json_equal(json_object_get(b, "state"), up) == 1;
        s->logical = json_equal(json_object_get(b, "source"), logical) == 1;
        s->rtt_s =
            (double)json_integer_value(json_object_get(json_object_get(b, "rtt"), "avg")) / 1e6;
    }
    json_decref(up);
    json_decref(logical);
}

static void parse_lags(struct client *c, json_t *topics)
{
    const char *tname, *pname;
    json_t *t, *p;

    c->nlags = 0;
    json_object_foreach(topics, tname, t)
    {
        json_object_foreach(json_object_get(t, "partitions"), pname, p)
        {
            struct lag_stat *s;
            long long lag = json_integer_value(json_object_get(p, "consumer_lag"));
            int part = (int)json_integer_value(json_object_get(p, "partition"));
            if (part < 0 || lag < 0 || c->nlags == KAFKA_STATS_PARTITIONS_MAX)
                continue;
            s = &c->lags[c->nlags++];
            snprintf(s->topic, sizeof(s->topic), "%s", tname);
            s->partition = part;
            s->lag = lag;
        }
    }
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct client *c = opaque;
    json_t *root = json_loadb(json, len, 0, NULL);

    (void)rk;
    if (!root)
        return 0;
    pthread_mutex_lock(&c->k->lock);
    c->msg_cnt = json_integer_value(json_object_get(root, "msg_cnt"));
    c->msg_size = json_integer_value(json_object_get(root, "msg_size"));
    parse_brokers(c, json_object_get(root, "brokers"));
    parse_lags(c, json_object_get(root, "topics"));
    pthread_mutex_unlock(&c->k->lock);
    json_decref(root);
    return 0; /* librdkafka frees json */
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct ferry_delivery *d = msg->_private;
    (void)rk;
    (void)opaque;
    if (d)
        d->fn(d, msg);
    else if (msg->err)
        FLOG_WARN_REPEATED("kafka", "producer", "a record for '%s' was not delivered: %s",
                           rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
}

/* The shared producer's poller: serves delivery reports and statistics. */
static void *poller_main(void *arg)
{
    ferry_kafka *k = arg;

    pthread_setname_np(pthread_self(), "ferry-poller");
    while (!atomic_load(&k->stopping))
        rd_kafka_poll(k->producer, 100);
    return NULL;
}

/* ---- metrics ---- */

static void render_client_families(struct ferry_buf *out, const ferry_kafka *k)
{
    char lbl[2 * KAFKA_NAME_MAX];

    ferry_buf_adds(out, "# HELP ferry_kafka_queue_messages Records waiting in a Kafka client's "
                        "queues.\n# TYPE ferry_kafka_queue_messages gauge\n");
    for (const struct client *c = k->clients; c; c = c->next)
        ferry_buf_addf(out, "ferry_kafka_queue_messages{client=\"%s\"} %lld\n", c->name,
                       c->msg_cnt);
    ferry_buf_adds(out, "# HELP ferry_kafka_queue_bytes Bytes waiting in a Kafka client's "
                        "queues.\n# TYPE ferry_kafka_queue_bytes gauge\n");
    for (const struct client *c = k->clients; c; c = c->next)
        ferry_buf_addf(out, "ferry_kafka_queue_bytes{client=\"%s\"} %lld\n", c->name, c->msg_size);
    ferry_buf_adds(out, "# HELP ferry_kafka_broker_rtt_seconds Average broker round-trip time.\n"
                        "# TYPE ferry_kafka_broker_rtt_seconds gauge\n");
    for (const struct client *c = k->clients; c; c = c->next)
        for (size_t i = 0; i < c->nbrokers; i++) {
            ferry_metrics_escape_label(c->brokers[i].name, lbl, sizeof(lbl));
            ferry_buf_addf(out,
                           "ferry_kafka_broker_rtt_seconds{client=\"%s\",broker=\"%s\"} %.6f\n",
                           c->name, lbl, c->brokers[i].rtt_s);
        }
    ferry_buf_adds(out, "# HELP ferry_kafka_broker_up Whether the client's connection to a "
                        "broker is up.\n# TYPE ferry_kafka_broker_up gauge\n");
    for (const struct client *c = k->clients; c; c = c->next)
        for (size_t i = 0; i < c->nbrokers; i++) {
            ferry_metrics_escape_label(c->brokers[i].name, lbl, sizeof(lbl));
            ferry_buf_addf(out, "ferry_kafka_broker_up{client=\"%s\",broker=\"%s\"} %d\n", c->name,
                           lbl, c->brokers[i].up);
        }
}

static void render_lags(struct ferry_buf *out, const ferry_kafka *k)
{
    char topic[2 * KAFKA_NAME_MAX];

    ferry_buf_adds(out, "# HELP ferry_kafka_consumer_lag Records between a consumer's position "
                        "and the partition's end.\n# TYPE ferry_kafka_consumer_lag gauge\n");
    for (const struct client *c = k->clients; c; c = c->next)
        for (size_t i = 0; i < c->nlags; i++) {
            ferry_metrics_escape_label(c->lags[i].topic, topic, sizeof(topic));
            ferry_buf_addf(out,
                           "ferry_kafka_consumer_lag{client=\"%s\",topic=\"%s\",partition=\"%d\"}"
                           " %lld\n",
                           c->name, topic, c->lags[i].partition, c->lags[i].lag);
        }
}

/* The entry for name in list[0..*n), added when new; NULL when the list is full. */
static struct broker_stat *broker_slot(struct broker_stat *list, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i].name, name) == 0)
            return &list[i];
    if (*n == KAFKA_STATS_BROKERS_MAX)
        return NULL;
    snprintf(list[*n].name, sizeof(list[*n].name), "%s", name);
    list[*n].up = 0;
    list[*n].rtt_s = 0;
    return &list[(*n)++];
}

static void merge_brokers(const ferry_kafka *k, struct broker_stat *list, size_t *n)
{
    for (const struct client *c = k->clients; c; c = c->next)
        for (size_t i = 0; i < c->nbrokers; i++) {
            struct broker_stat *s;
            if (c->brokers[i].logical)
                continue;
            s = broker_slot(list, n, c->brokers[i].name);
            if (!s)
                return;
            s->up = s->up || c->brokers[i].up;
            if (c->brokers[i].rtt_s > s->rtt_s)
                s->rtt_s = c->brokers[i].rtt_s;
        }
}

int ferry_kafka_status_brokers(ferry_kafka *k, struct ferry_buf *out)
{
    struct broker_stat list[KAFKA_STATS_BROKERS_MAX];
    size_t n = 0;
    int result = ferry_buf_addc(out, '[');

    pthread_mutex_lock(&k->lock);
    merge_brokers(k, list, &n);
    pthread_mutex_unlock(&k->lock);
    for (size_t i = 0; i < n && !result; i++) {
        result = ferry_buf_adds(out, i ? ",{\"name\":" : "{\"name\":") ||
                 ferry_json_add_string(out, list[i].name, strlen(list[i].name)) ||
                 ferry_buf_addf(out, ",\"up\":%s,\"rtt_ms\":", list[i].up ? "true" : "false") ||
                 ferry_json_add_real(out, list[i].rtt_s * 1000.0) || ferry_buf_addc(out, '}');
    }
    return result || ferry_buf_addc(out, ']') ? -1 : 0;
}

static int add_lags(struct ferry_buf *out, const struct client *c)
{
    int result = 0;

    for (size_t i = 0; i < c->nlags && !result; i++)
        result = ferry_buf_adds(out, i ? ",{\"topic\":" : "{\"topic\":") ||
                 ferry_json_add_string(out, c->lags[i].topic, strlen(c->lags[i].topic)) ||
                 ferry_buf_addf(out, ",\"partition\":%d,\"lag\":%lld}", c->lags[i].partition,
                                c->lags[i].lag);
    return result;
}

int ferry_kafka_status_lag(ferry_kafka *k, const void *opaque, struct ferry_buf *out)
{
    int result = ferry_buf_addc(out, '[');

    /* the pointer is only compared: a released client is no longer in the list */
    pthread_mutex_lock(&k->lock);
    for (const struct client *c = k->clients; c && !result; c = c->next)
        if (c == opaque)
            result = add_lags(out, c);
    pthread_mutex_unlock(&k->lock);
    return result || ferry_buf_addc(out, ']') ? -1 : 0;
}

static void collect_stats(struct ferry_buf *out, void *arg)
{
    ferry_kafka *k = arg;
    pthread_mutex_lock(&k->lock);
    render_client_families(out, k);
    render_lags(out, k);
    pthread_mutex_unlock(&k->lock);
}

/* ---- configuration ---- */

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errstr, errstr_size, "%s: %s", name, why);
    return -1;
}

static int conf_set_map(rd_kafka_conf_t *conf, const struct ferry_cfg_map *map, char *errstr,
                        size_t errstr_size)
{
    if (!map)
        return 0;
    for (size_t i = 0; i < map->count; i++)
        if (conf_set(conf, map->items[i].key, map->items[i].value, errstr, errstr_size))
            return -1;
    return 0;
}

/* ferry's defaults for a role; the user's properties are applied after and may override.
 * mock: the brokers are librdkafka's mock cluster (embedded, or `ferry dev-broker`). */
static int conf_set_defaults(rd_kafka_conf_t *conf, enum ferry_kafka_role role, int mock,
                             char *errstr, size_t errstr_size)
{
    /* linger.ms 0.2, not librdkafka's 5: an acknowledged ingest request waits for the linger
     * plus a round trip. With the sticky partitioner's linger kept at 10 ms or more
     * (conf_set_sticky), one-record requests on a 2-core machine, two rounds each: 80-97k
     * requests/s at 64 connections with 0.2 against 48-50k with 0.5, and the same 112-122k at
     * 256; 100-record requests 2.0-2.8M records/s with either. 0 and 0.05 lost a fifth at 256
     * connections (docs/ingest.md, bench/README.md "Targets, session 30"). */
    static const char *const producer[][2] = {{"enable.idempotence", "true"},
                                              {"acks", "all"},
                                              {"partitioner", "murmur2_random"},
                                              {"linger.ms", "0.2"},
                                              {NULL, NULL}};
    static const char *const consumer[][2] = {
        {"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "false"},
        /* Offsets a route stored are committed within a second (librdkafka's default is 5 s):
         * after a crash, what goes out again is what was in flight plus about one second of
         * deliveries. A commit carries every partition's offset at once, and only when one
         * moved. */
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        /* librdkafka prefetches up to 64 MiB by default (payload only: small records cost
         * several hundred bytes more each); a route buffers on its own. Every record a route
         * holds keeps its whole fetch response alive, so responses stay small, and at most half
         * the prefetch so that route/refetch.c sees the queue half full before librdkafka
         * stops fetching (bench/README.md has the measurements). */
        {"queued.max.messages.kbytes", "4096"},
        {"fetch.max.bytes", "2097152"},
        {"max.partition.fetch.bytes", "262144"},
        {NULL, NULL}};
    /* The mock cluster answers an empty fetch only after fetch.wait.max.ms, and a member that
     * died holds its partitions until its session expires (it ignores static membership):
     * with librdkafka's 45 s session, a route restarted after kill -9 waited 45-91 s. From the
     * restart to the first delivery: 11.2 s with a 6 s session, 8.0-8.3 s with 4.5 s and
     * 0.5 s heartbeats. Below about 4 s the mock's 3 s first join expires the joiner. */
    static const char *const mock_consumer[][2] = {{"fetch.wait.max.ms", "10"},
                                                   {"queued.min.messages", "1000000"},
                                                   {"session.timeout.ms", "4500"},
                                                   {"heartbeat.interval.ms", "500"},
                                                   {NULL, NULL}};
    const char *const(*set)[2] = role == FERRY_KAFKA_PRODUCER ? producer : consumer;

    for (; (*set)[0]; set++)
        if (conf_set(conf, (*set)[0], (*set)[1], errstr, errstr_size))
            return -1;
    if (mock && role == FERRY_KAFKA_CONSUMER)
        for (set = mock_consumer; (*set)[0]; set++)
            if (conf_set(conf, (*set)[0], (*set)[1], errstr, errstr_size))
                return -1;
    return 0;
}

/* Nonzero when map (may be NULL) sets key. */
static int map_has(const struct ferry_cfg_map *map, const char *key)
{
    for (size_t i = 0; map && i < map->count; i++)
        if (strcmp(map->items[i].key, key) == 0)
            return 1;
    return 0;
}

/* The sticky partitioner's linger, unless the user set it: twice linger.ms, and at least
 * KAFKA_STICKY_LINGER_MIN_MS. librdkafka derives it as twice linger.ms cut to whole
 * milliseconds, which below a 0.5 ms linger is 0, and 0 turns the sticky partitioner off:
 * every keyless record then goes to a random partition, and a produce request carries a record
 * or two per partition (docs/ingest.md, "Performance notes"). */
static int conf_set_sticky(rd_kafka_conf_t *conf, const struct ferry_cfg_map *props,
                           const struct ferry_cfg_map *overrides, char *errstr, size_t errstr_size)
{
    char value[64];
    size_t size = sizeof(value);
    double sticky_ms = KAFKA_STICKY_LINGER_MIN_MS;

    if (map_has(props, "sticky.partitioning.linger.ms") ||
        map_has(overrides, "sticky.partitioning.linger.ms"))
        return 0;
    /* librdkafka wrote the value with %g, having read it with strtod: it parses */
    if (rd_kafka_conf_get(conf, "linger.ms", value, &size) == RD_KAFKA_CONF_OK)
        sticky_ms = fmax(sticky_ms, ceil(2 * strtod(value, NULL)));
    sticky_ms = fmin(sticky_ms, KAFKA_STICKY_LINGER_MAX_MS);
    snprintf(value, sizeof(value), "%.0f", sticky_ms);
    return conf_set(conf, "sticky.partitioning.linger.ms", value, errstr, errstr_size);
}

/* Nonzero when the brokers are librdkafka's mock cluster: the embedded one, or another
 * process's (`ferry dev-broker`), known by its cluster id. Asked through the shared producer,
 * without holding a lock meanwhile, once: no answer within the timeout (brokers not there yet)
 * counts as a real cluster for the rest of the run, and says so in the log. */
static int on_mock_cluster(ferry_kafka *k)
{
    char *id;
    int mock, first;

    if (k->dev)
        return 1;
    pthread_mutex_lock(&k->ready_lock);
    mock = k->mock;
    pthread_mutex_unlock(&k->ready_lock);
    if (mock >= 0 || !k->producer)
        return mock > 0;
    /* Asked once: with the brokers out of reach, asking again for every consumer would hold
     * the start (and the signals) for the timeout once per route and table. */
    id = rd_kafka_clusterid(k->producer, KAFKA_CLUSTER_ID_TIMEOUT_MS);
    mock = id && strncmp(id, KAFKA_MOCK_CLUSTER_PREFIX, strlen(KAFKA_MOCK_CLUSTER_PREFIX)) == 0;
    if (id)
        rd_kafka_mem_free(k->producer, id);
    else
        FLOG_INFO("kafka", NULL,
                  "no cluster id from %s within %d ms: its consumers get a real cluster's "
                  "settings",
                  k->bootstrap, KAFKA_CLUSTER_ID_TIMEOUT_MS);
    pthread_mutex_lock(&k->ready_lock);
    first = k->mock < 0;
    k->mock = mock;
    pthread_mutex_unlock(&k->ready_lock);
    if (mock && first)
        FLOG_WARN("kafka", "dev",
                  "the brokers at %s are librdkafka's mock cluster (ferry dev-broker): "
                  "consumers use a 4.5 s session. It keeps records in memory only",
                  k->bootstrap);
    return mock;
}

/* Whether a client is labelled name already. Under k->lock. */
static int label_taken(const ferry_kafka *k, const char *name)
{
    for (const struct client *c = k->clients; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return 1;
    return 0;
}

/* Registers a client, labelled name in /metrics, or name#2, #3... when a client has that
 * label already (a route named "producer" beside the shared producer), so that no two series
 * are the same. */
static struct client *client_add(ferry_kafka *k, const char *name, void *user)
{
    struct client *c = calloc(1, sizeof(*c));
    char base[KAFKA_NAME_MAX - 12]; /* room for "#" and a number */

    if (!c)
        return NULL;
    c->k = k;
    c->user = user;
    ferry_metrics_escape_label(name, base, sizeof(base));
    pthread_mutex_lock(&k->lock);
    snprintf(c->name, sizeof(c->name), "%s", base);
    for (int n = 2; label_taken(k, c->name); n++)
        snprintf(c->name, sizeof(c->name), "%s#%d", base, n);
    c->next = k->clients;
    k->clients = c;
    pthread_mutex_unlock(&k->lock);
    return c;
}

rd_kafka_conf_t *ferry_kafka_conf_new(ferry_kafka *k, enum ferry_kafka_role role, const char *name,
                                      const struct ferry_cfg_map *overrides, void *user,
                                      void **opaque, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[KAFKA_NAME_MAX], interval[32];
    struct client *c = NULL;

    snprintf(client_id, sizeof(client_id), "ferry-%s", name);
    snprintf(interval, sizeof(interval), "%lld", (long long)k->cfg->kafka.stats_interval_ms);
    if (conf_set(conf, "bootstrap.servers", k->bootstrap, errstr, errstr_size) ||
        conf_set(conf, "client.id", client_id, errstr, errstr_size) ||
        conf_set(conf, "statistics.interval.ms", interval, errstr, errstr_size) ||
        conf_set_defaults(conf, role, role == FERRY_KAFKA_CONSUMER && on_mock_cluster(k), errstr,
                          errstr_size) ||
        conf_set_map(conf, &k->cfg->kafka.properties, errstr, errstr_size) ||
        conf_set_map(conf, overrides, errstr, errstr_size) ||
        (role == FERRY_KAFKA_PRODUCER &&
         conf_set_sticky(conf, &k->cfg->kafka.properties, overrides, errstr, errstr_size)))
        goto fail;
    c = client_add(k, name, user);
    if (!c) {
        snprintf(errstr, errstr_size, "kafka client '%s': out of memory", client_id);
        goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rd_kafka_conf_set_opaque(conf, c);
    *opaque = c;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

void *ferry_kafka_client_user(void *opaque)
{
    return ((struct client *)opaque)->user;
}

void ferry_kafka_client_release(ferry_kafka *k, void *opaque)
{
    pthread_mutex_lock(&k->lock);
    for (struct client **p = &k->clients; *p; p = &(*p)->next) {
        if (*p == opaque) {
            *p = (*p)->next;
            free(opaque);
            break;
        }
    }
    pthread_mutex_unlock(&k->lock);
}

/* ---- the shared producer and lifecycle ---- */

static int start_producer(ferry_kafka *k, char *errstr, size_t errstr_size)
{
    char why[512];
    int rc;
    rd_kafka_conf_t *conf = ferry_kafka_conf_new(k, FERRY_KAFKA_PRODUCER, "producer", NULL, NULL,
                                                 &k->producer_opaque, errstr, errstr_size);
    if (!conf)
        return -1;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!k->producer) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot create the producer: %s", why);
        return -1;
    }
    rc = pthread_create(&k->poller, NULL, poller_main, k);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "cannot start the producer's poller thread: %s",
                 strerror(rc));
        return -1;
    }
    k->poller_started = 1;
    return 0;
}

static int start_dev_cluster(ferry_kafka *k, char *errstr, size_t errstr_size)
{
    const struct ferry_kafka_dev_config *dev = &k->cfg->kafka.dev;
    char why[512];

    k->dev = ferry_devbroker_new((int)dev->brokers, errstr, errstr_size);
    if (!k->dev)
        return -1;
    for (size_t i = 0; i < dev->topics.count; i++)
        if (ferry_devbroker_topic_create_spec(k->dev, dev->topics.items[i], errstr, errstr_size))
            return -1;
    if (dev->bootstrap_file &&
        ferry_devbroker_write_bootstrap(k->dev, dev->bootstrap_file, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "kafka.dev.bootstrap_file: %s", why);
        return -1;
    }
    k->bootstrap = strdup(ferry_devbroker_bootstrap(k->dev));
    if (!k->bootstrap) {
        snprintf(errstr, errstr_size, "dev cluster: out of memory for its bootstrap address");
        return -1;
    }
    FLOG_WARN("kafka", "dev",
              "no kafka.brokers configured: started the embedded dev cluster at %s. It keeps "
              "every record in memory only; nothing survives after ferry exits",
              k->bootstrap);
    return 0;
}

ferry_kafka *ferry_kafka_new(const struct ferry_config *cfg, ferry_metrics *metrics, char *errstr,
                             size_t errstr_size)
{
    ferry_kafka *k = calloc(1, sizeof(*k));
    int result;

    if (!k) {
        snprintf(errstr, errstr_size, "kafka: out of memory");
        return NULL;
    }
    k->cfg = cfg;
    k->metrics = metrics;
    pthread_mutex_init(&k->lock, NULL);
    pthread_mutex_init(&k->ready_lock, NULL);
    k->mock = -1;
    if (cfg->kafka.brokers) {
        k->bootstrap = strdup(cfg->kafka.brokers);
        result = k->bootstrap ? 0 : -1;
        if (result)
            snprintf(errstr, errstr_size, "kafka.brokers: out of memory");
    } else
        result = start_dev_cluster(k, errstr, errstr_size);
    if (!result)
        result = start_producer(k, errstr, errstr_size);
    if (!result && metrics) {
        result = ferry_metrics_add_collector(metrics, collect_stats, k);
        if (result)
            snprintf(errstr, errstr_size, "kafka: out of memory for its statistics in /metrics");
    }
    if (result) {
        ferry_kafka_destroy(k, 0);
        return NULL;
    }
    return k;
}

void ferry_kafka_destroy(ferry_kafka *k, int timeout_ms)
{
    if (!k)
        return;
    if (k->metrics)
        ferry_metrics_remove_collector(k->metrics, collect_stats, k);
    if (k->producer) {
        /* flush() serves delivery reports itself once the poller is gone */
        atomic_store(&k->stopping, 1);
        if (k->poller_started)
            pthread_join(k->poller, NULL);
        if (rd_kafka_flush(k->producer, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
            FLOG_WARN("kafka", "producer", "%d records were not delivered before shutdown",
                      rd_kafka_outq_len(k->producer));
        rd_kafka_destroy(k->producer);
    }
    if (k->producer_opaque)
        ferry_kafka_client_release(k, k->producer_opaque);
    if (k->dev && k->cfg->kafka.dev.bootstrap_file)
        unlink(k->cfg->kafka.dev.bootstrap_file); /* the address is gone with the cluster */
    ferry_devbroker_destroy(k->dev);
    while (k->clients)
        ferry_kafka_client_release(k, k->clients);
    pthread_mutex_destroy(&k->lock);
    pthread_mutex_destroy(&k->ready_lock);
    free(k->bootstrap);
    free(k);
}

const char *ferry_kafka_bootstrap(const ferry_kafka *k)
{
    return k->bootstrap;
}

int ferry_kafka_is_dev(const ferry_kafka *k)
{
    return k->dev != NULL;
}

rd_kafka_t *ferry_kafka_producer(const ferry_kafka *k)
{
    return k->producer;
}

int ferry_kafka_failed(ferry_kafka *k, char *why, size_t why_size)
{
    if (!atomic_load(&k->failed))
        return 0;
    snprintf(why, why_size, "%s", k->failed_why); /* no longer written */
    return 1;
}

int ferry_kafka_ready(ferry_kafka *k)
{
    const struct rd_kafka_metadata *md = NULL;
    int ready;

    if (atomic_load(&k->failed))
        return 0;
    pthread_mutex_lock(&k->ready_lock);
    if (k->ready_checked_ms && ferry_clock_ms() - k->ready_checked_ms < KAFKA_READY_CACHE_MS) {
        ready = k->ready;
        pthread_mutex_unlock(&k->ready_lock);
        return ready;
    }
    ready = rd_kafka_metadata(k->producer, 0, NULL, &md, KAFKA_READY_TIMEOUT_MS) ==
            RD_KAFKA_RESP_ERR_NO_ERROR;
    if (md)
        rd_kafka_metadata_destroy(md);
    k->ready = ready;
    k->ready_checked_ms = ferry_clock_ms();
    pthread_mutex_unlock(&k->ready_lock);
    return ready;
}

/* ---- ferry check ---- */

/* Which clients a property map reaches, as bits: kafka.properties reaches them all. */
enum { FOR_PRODUCER = 1, FOR_ROUTE = 2, FOR_TABLE = 4 };

/* Properties that ferry's guarantees rest on, for the clients in roles: a value other than
 * ferry's own (NULL: any value) is refused, with why. A table's consumer assigns itself its
 * partitions and keeps its offsets in its store, so it cares about neither group nor commits;
 * ferry sets both for it after the table's own properties, which could only be ignored. */
static const struct owned_property {
    const char *name, *value, *why;
    unsigned roles;
} owned_properties[] = {
    {"enable.auto.offset.store", "false",
     "ferry stores a record's offset only once the record was delivered or dead-lettered",
     FOR_ROUTE},
    {"enable.auto.commit", "true", "ferry commits the offsets it stored this way", FOR_ROUTE},
    {"enable.auto.commit", "false", "a table keeps its offsets in its store, not in Kafka",
     FOR_TABLE},
    {"enable.idempotence", "true",
     "the producer writes each record once, retries included, in order", FOR_PRODUCER},
    {"acks", "all", "a record is acknowledged once every in-sync replica has it", FOR_PRODUCER},
    {"group.id", NULL, "a route's consumer group is its `group` (default ferry-<name>)", FOR_ROUTE},
    {"group.id", NULL, "a table joins no consumer group: it assigns itself its partitions",
     FOR_TABLE},
    {NULL, NULL, NULL, 0},
};

/* Whether value is value in librdkafka's eyes: acks may say all as -1, a boolean in any case. */
static int same_value(const char *name, const char *want, const char *value)
{
    if (strcmp(name, "acks") == 0 && strcmp(value, "-1") == 0)
        return 1;
    return strcasecmp(want, value) == 0;
}

/* Refuses a property of owned_properties, for the clients in roles, set otherwise than ferry
 * sets it. */
static void check_owned(struct ferry_config *cfg, const struct ferry_cfg_kv *kv, unsigned roles,
                        const char *key)
{
    for (const struct owned_property *o = owned_properties; o->name; o++) {
        if (!(o->roles & roles) || strcmp(o->name, kv->key) != 0 ||
            (o->value && same_value(o->name, o->value, kv->value)))
            continue;
        if (o->value)
            ferry_config_error(cfg, key, "ferry sets it to %s: %s", o->value, o->why);
        else
            ferry_config_error(cfg, key, "ferry sets it: %s", o->why);
    }
}

void ferry_kafka_check_overrides(struct ferry_config *cfg, enum ferry_kafka_props_of of,
                                 const struct ferry_cfg_map *props, const char *path)
{
    static const unsigned roles[] = {
        [FERRY_KAFKA_PROPS_EVERY_CLIENT] = FOR_PRODUCER | FOR_ROUTE,
        [FERRY_KAFKA_PROPS_ROUTE] = FOR_ROUTE,
        [FERRY_KAFKA_PROPS_TABLE] = FOR_TABLE,
    };
    enum ferry_kafka_role role =
        of == FERRY_KAFKA_PROPS_EVERY_CLIENT ? FERRY_KAFKA_PRODUCER : FERRY_KAFKA_CONSUMER;
    char why[512], key[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    conf_set_defaults(conf, role, 0, why, sizeof(why));
    for (size_t i = 0; i < props->count; i++) {
        snprintf(key, sizeof(key), "%s.%s", path, props->items[i].key);
        if (rd_kafka_conf_set(conf, props->items[i].key, props->items[i].value, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK)
            ferry_config_error(cfg, key, "%s", why);
        else
            check_owned(cfg, &props->items[i], roles[of], key);
    }
    rd_kafka_conf_destroy(conf);
}

void ferry_kafka_check_config(struct ferry_config *cfg)
{
    ferry_kafka_check_overrides(cfg, FERRY_KAFKA_PROPS_EVERY_CLIENT, &cfg->kafka.properties,
                                "kafka.properties");
}
