/*
 * preload.c - fills a topic with N records of B bytes as fast as librdkafka allows.
 *
 * bench/run.sh runs it before a route benchmark so the route consumes a backlog that is already
 * there, and the producer's cost stays out of the route's figures. Keys are "k<i mod K>" with the
 * murmur2_random partitioner, as ferry's own producer uses, so keyed routes see realistic key
 * spread. Values are JSON objects padded to B bytes carrying a sequence number, so a receiver can
 * check that every record arrived. Waits for every delivery report and prints one line of
 * key=value pairs.
 */
#include "bench_util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define MAX_VALUE_BYTES (1024L * 1024)
#define MAX_ERRORS_SHOWN 5
#define SEQ_DIGITS 10
#define SEQ_OFFSET 8 /* where the digits start in {"seq":"0000000000","pad":"..."} */
#define JSON_MIN_BYTES 29
#define MAX_PROPS 32

struct options {
    const char *bootstrap;
    const char *topic;
    long records;
    long bytes;
    long keys;
    long timeout_s;
    const char *props[MAX_PROPS]; /* "name=value" from -X, applied after the defaults */
    int nprops;
};

struct counters {
    long delivered;
    long failed;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ferry-bench-preload --bootstrap HOST:PORT --topic T [--records N]\n"
            "                           [--bytes B] [--keys K] [--timeout S] [-X name=value]...\n"
            "produces N records of B bytes keyed k<i mod K>, waits for every delivery report\n"
            "and prints records/s. -X passes a librdkafka property through, as kcat's does.\n");
}

static int parse_flag(void *arg, const char *flag, const char *val)
{
    struct options *opt = arg;

    if (!strcmp(flag, "--bootstrap")) {
        opt->bootstrap = val;
        return 0;
    }
    if (!strcmp(flag, "--topic")) {
        opt->topic = val;
        return 0;
    }
    if (!strcmp(flag, "-X")) {
        if (opt->nprops == MAX_PROPS || !strchr(val, '=')) {
            fprintf(stderr, "ferry-bench-preload: -X: expected name=value (at most %d), got '%s'\n",
                    MAX_PROPS, val);
            return -1;
        }
        opt->props[opt->nprops++] = val;
        return 0;
    }
    if (!strcmp(flag, "--records"))
        return bench_parse_long("ferry-bench-preload", flag, val, 1, LONG_MAX, &opt->records);
    if (!strcmp(flag, "--bytes"))
        return bench_parse_long("ferry-bench-preload", flag, val, 0, MAX_VALUE_BYTES, &opt->bytes);
    if (!strcmp(flag, "--keys"))
        return bench_parse_long("ferry-bench-preload", flag, val, 1, LONG_MAX, &opt->keys);
    if (!strcmp(flag, "--timeout"))
        return bench_parse_long("ferry-bench-preload", flag, val, 1, 86400, &opt->timeout_s);
    fprintf(stderr, "ferry-bench-preload: unknown flag '%s'\n", flag);
    return -1;
}

static int parse_args(int argc, char **argv, struct options *opt)
{
    opt->bootstrap = NULL;
    opt->topic = NULL;
    opt->records = 1000000;
    opt->bytes = 100;
    opt->keys = 1000;
    opt->timeout_s = 300;
    opt->nprops = 0;
    if (bench_parse_pairs(argc, argv, "ferry-bench-preload", usage, parse_flag, opt))
        return -1;
    if (!opt->bootstrap || !opt->topic) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Runs on the thread that calls rd_kafka_poll/flush (this program's only thread). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct counters *c = opaque;

    (void)rk;
    if (!m->err) {
        c->delivered++;
        return;
    }
    if (c->failed < MAX_ERRORS_SHOWN)
        fprintf(stderr, "ferry-bench-preload: delivery failed: %s\n", rd_kafka_err2str(m->err));
    c->failed++;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return 0;
    fprintf(stderr, "ferry-bench-preload: %s: %s\n", name, errstr);
    return -1;
}

/* Applies one "name=value" property. */
static int conf_set_pair(rd_kafka_conf_t *conf, const char *pair)
{
    const char *eq = strchr(pair, '=');
    char name[128];

    if ((size_t)(eq - pair) >= sizeof(name)) {
        fprintf(stderr, "ferry-bench-preload: -X: name too long in '%s'\n", pair);
        return -1;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(eq - pair), pair);
    return conf_set(conf, name, eq + 1);
}

/* Throughput settings: fat batches, a deep local queue, no compression (the broker is local). */
static const char *const producer_settings[][2] = {
    {"linger.ms", "5"},
    {"batch.num.messages", "100000"},
    {"batch.size", "16000000"},
    {"queue.buffering.max.messages", "2000000"},
    {"queue.buffering.max.kbytes", "2097152"},
    {"compression.codec", "none"},
    {"partitioner", "murmur2_random"},
    {"message.timeout.ms", "60000"},
};

static rd_kafka_t *producer_new(const struct options *opt, struct counters *c)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk;
    size_t i;

    if (conf_set(conf, "bootstrap.servers", opt->bootstrap))
        goto fail;
    for (i = 0; i < sizeof(producer_settings) / sizeof(producer_settings[0]); i++)
        if (conf_set(conf, producer_settings[i][0], producer_settings[i][1]))
            goto fail;
    for (i = 0; i < (size_t)opt->nprops; i++)
        if (conf_set_pair(conf, opt->props[i]))
            goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, c);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk)
        return rk;
    fprintf(stderr, "ferry-bench-preload: producer: %s\n", errstr);
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Fills value with B bytes: a padded JSON object when it fits, else 'x's. */
static void value_template(char *value, long bytes)
{
    memset(value, 'x', (size_t)bytes);
    if (bytes < JSON_MIN_BYTES)
        return;
    memcpy(value, "{\"seq\":\"0000000000\",\"pad\":\"", 27);
    memcpy(value + bytes - 2, "\"}", 2);
}

static void value_set_seq(char *value, long bytes, long seq)
{
    int i;

    if (bytes < JSON_MIN_BYTES)
        return;
    for (i = SEQ_DIGITS - 1; i >= 0; i--) {
        value[SEQ_OFFSET + i] = (char)('0' + seq % 10);
        seq /= 10;
    }
}

/* Produces one record, waiting out a full local queue until the deadline. */
static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct options *opt,
                       char *value, long i, double deadline)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), "k%ld", i % opt->keys);

    value_set_seq(value, opt->bytes, i);
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value,
                            (size_t)opt->bytes, key, (size_t)klen, NULL) == -1) {
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL || bench_now_s() > deadline) {
            fprintf(stderr, "ferry-bench-preload: produce record %ld: %s\n", i,
                    rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
        rd_kafka_poll(rk, 10);
    }
    return 0;
}

static int produce_all(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct options *opt,
                       char *value, double deadline)
{
    long i;

    for (i = 0; i < opt->records; i++) {
        if (produce_one(rk, rkt, opt, value, i, deadline))
            return -1;
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    return 0;
}

/* Waits for every delivery report, in slices so the deadline holds. */
static int flush_all(rd_kafka_t *rk, double deadline)
{
    while (rd_kafka_outq_len(rk) > 0) {
        if (bench_now_s() > deadline) {
            fprintf(stderr, "ferry-bench-preload: timed out with %d records unconfirmed\n",
                    rd_kafka_outq_len(rk));
            return -1;
        }
        rd_kafka_flush(rk, 100);
    }
    return 0;
}

/* CPU covers every thread of this process, librdkafka's included; the broker is not counted. */
static void report(const struct counters *c, long bytes, double seconds)
{
    double cpu, rss_mb;

    bench_usage(&cpu, &rss_mb);
    printf("records=%ld bytes=%ld seconds=%.3f rps=%.0f mb_s=%.1f cpu_s=%.2f rss_mb=%.1f "
           "errors=%ld\n",
           c->delivered, bytes, seconds, (double)c->delivered / seconds,
           (double)c->delivered * (double)bytes / seconds / 1e6, cpu, rss_mb, c->failed);
}

int main(int argc, char **argv)
{
    struct options opt;
    struct counters c = {0, 0};
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    char *value = NULL;
    double start, deadline;
    int result = 1;

    if (parse_args(argc, argv, &opt))
        return 2;
    value = malloc((size_t)opt.bytes + 1);
    rk = producer_new(&opt, &c);
    if (!value || !rk)
        goto out;
    rkt = rd_kafka_topic_new(rk, opt.topic, NULL);
    if (!rkt)
        goto out;
    value_template(value, opt.bytes);
    start = bench_now_s();
    deadline = start + (double)opt.timeout_s;
    if (produce_all(rk, rkt, &opt, value, deadline) || flush_all(rk, deadline))
        goto out;
    report(&c, opt.bytes, bench_now_s() - start);
    result = c.failed ? 1 : 0;
out:
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (rk)
        rd_kafka_destroy(rk);
    free(value);
    return result;
}
