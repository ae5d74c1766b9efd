/*
 * devbroker.c - the embedded development cluster; the only file that calls librdkafka's mock
 * API (rdkafka_mock.h), which librdkafka marks experimental.
 *
 * A mock cluster needs a librdkafka handle to live in: a producer of its own that never
 * produces. Topics are created on first use with 4 partitions; each partition keeps only about
 * 5 MiB, and older records are dropped silently (see docs/dev-broker.md).
 */
#include "core/devbroker.h"
#include "core/topic_name.h"
#include "core/units.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

struct ferry_devbroker {
    rd_kafka_t *host; /* the handle the cluster lives in */
    rd_kafka_mock_cluster_t *cluster;
    int nbrokers;
    char *bootstrap;
};

static void on_host_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf; /* the host handle never connects anywhere; its chatter is noise */
}

ferry_devbroker *ferry_devbroker_new(int nbrokers, char *errstr, size_t errstr_size)
{
    ferry_devbroker *db = calloc(1, sizeof(*db));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];

    if (!db) {
        snprintf(errstr, errstr_size, "dev cluster: out of memory");
        goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, on_host_log);
    rd_kafka_conf_set(conf, "client.id", "ferry-devbroker", why, sizeof(why));
    /* The mock's broker sockets take their options from this handle. Kafka brokers set
     * TCP_NODELAY on every connection; without it the mock holds a response back (Nagle) until
     * the client acknowledges the previous one, and the client delays that acknowledgement
     * (delayed ACK, 40 ms) while it waits for the response: about 1% of acknowledged ingest
     * requests took 25-50 ms (bench/README.md, "Latency tail"). */
    rd_kafka_conf_set(conf, "socket.nagle.disable", "true", why, sizeof(why));
    db->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (db->host)
        conf = NULL; /* the handle owns it now; a failed rd_kafka_new does not take it */
    if (!db->host) {
        snprintf(errstr, errstr_size, "cannot start the dev cluster: %s", why);
        goto fail;
    }
    db->cluster = rd_kafka_mock_cluster_new(db->host, nbrokers);
    if (!db->cluster) {
        snprintf(errstr, errstr_size, "cannot start the dev cluster's %d broker(s)", nbrokers);
        goto fail;
    }
    db->nbrokers = nbrokers;
    db->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(db->cluster));
    if (!db->bootstrap) {
        snprintf(errstr, errstr_size, "dev cluster: out of memory for its bootstrap address");
        goto fail;
    }
    return db;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    ferry_devbroker_destroy(db);
    return NULL;
}

const char *ferry_devbroker_bootstrap(const ferry_devbroker *db)
{
    return db->bootstrap;
}

int ferry_devbroker_topic_create(ferry_devbroker *db, const char *topic, int partitions,
                                 char *errstr, size_t errstr_size)
{
    int replication = db->nbrokers < 3 ? db->nbrokers : 3;
    rd_kafka_resp_err_t err =
        rd_kafka_mock_topic_create(db->cluster, topic, partitions, replication);
    if (err) {
        snprintf(errstr, errstr_size, "cannot create topic '%s': %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int ferry_devbroker_topic_create_spec(ferry_devbroker *db, const char *spec, char *errstr,
                                      size_t errstr_size)
{
    const char *colon = strrchr(spec, ':');
    char name[FERRY_TOPIC_NAME_MAX + 1];
    int64_t partitions;
    size_t len = colon ? (size_t)(colon - spec) : 0;

    if (!colon || len == 0 || ferry_int_parse(colon + 1, &partitions) || partitions < 1 ||
        partitions > 10000) {
        snprintf(errstr, errstr_size, "expected a topic as name:partitions, got '%s'", spec);
        return -1;
    }
    if (ferry_topic_name_check(spec, len, errstr, errstr_size))
        return -1;
    memcpy(name, spec, len);
    name[len] = '\0';
    return ferry_devbroker_topic_create(db, name, (int)partitions, errstr, errstr_size);
}

int ferry_devbroker_write_bootstrap(const ferry_devbroker *db, const char *path, char *errstr,
                                    size_t errstr_size)
{
    char tmp[4096];
    FILE *f = NULL;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    /* a new file of ours: never one that is there already, nor a symbolic link's target */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0)
        f = fdopen(fd, "w");
    if (!f) {
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    fprintf(f, "%s\n", db->bootstrap);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        goto fail;
    }
    return 0;
fail:
    snprintf(errstr, errstr_size, "cannot write '%s': %s", path, strerror(errno));
    return -1;
}

int ferry_devbroker_set_down(ferry_devbroker *db, int down)
{
    for (int id = 1; id <= db->nbrokers; id++) {
        rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(db->cluster, id)
                                       : rd_kafka_mock_broker_set_up(db->cluster, id);
        if (err)
            return -1;
    }
    return 0;
}

void ferry_devbroker_destroy(ferry_devbroker *db)
{
    if (!db)
        return;
    if (db->cluster)
        rd_kafka_mock_cluster_destroy(db->cluster);
    if (db->host)
        rd_kafka_destroy(db->host);
    free(db->bootstrap);
    free(db);
}
