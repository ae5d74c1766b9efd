/*
 * kafka.h - how ferry talks to Kafka: client configuration, the shared producer, client
 * statistics for /metrics, and the embedded dev cluster when no brokers are configured.
 *
 * One ferry_kafka exists per process. Every Kafka client ferry creates starts from
 * ferry_kafka_conf_new(), so all of them log through ferry's logger, report statistics to
 * /metrics and carry the user's kafka.properties.
 */
#ifndef FERRY_KAFKA_H
#define FERRY_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "core/config.h"
#include "core/metrics.h"

typedef struct ferry_kafka ferry_kafka;

enum ferry_kafka_role { FERRY_KAFKA_PRODUCER, FERRY_KAFKA_CONSUMER };

/* Sets up Kafka for a loaded config: starts the dev cluster when kafka.brokers is absent, and
 * creates the shared idempotent producer. Returns NULL with errstr on failure. Main thread. */
ferry_kafka *ferry_kafka_new(const struct ferry_config *cfg, ferry_metrics *metrics, char *errstr,
                             size_t errstr_size);

/* Flushes the producer for up to timeout_ms, then destroys it and the dev cluster. The caller
 * must have destroyed every client made from ferry_kafka_conf_new first. Accepts NULL. */
void ferry_kafka_destroy(ferry_kafka *k, int timeout_ms);

/* The bootstrap servers in use (the dev cluster's when embedded). */
const char *ferry_kafka_bootstrap(const ferry_kafka *k);

/* Nonzero when ferry runs on the embedded dev cluster. */
int ferry_kafka_is_dev(const ferry_kafka *k);

/* The shared producer, owned by k. Thread-safe, as librdkafka producers are. Its delivery
 * reports and statistics are served by a poller thread that k owns. */
rd_kafka_t *ferry_kafka_producer(const ferry_kafka *k);

/* What a record produced with the shared producer carries as its opaque (msg_opaque): embed
 * it in your own per-record or per-request struct. fn runs on the producer's poller thread
 * with the delivery report, once per record. Records produced with a NULL opaque are counted
 * and forgotten. */
struct ferry_delivery {
    void (*fn)(struct ferry_delivery *d, const rd_kafka_message_t *msg);
};

/* Returns a configuration for a new client: bootstrap servers, kafka.properties, then
 * overrides (may be NULL; a route's own properties), dev-cluster tuning, logging and
 * statistics. name becomes client.id's suffix and the metrics label. The caller owns the
 * result (it passes to rd_kafka_new). *opaque is set to what the callbacks receive as opaque:
 * keep it for ferry_kafka_client_release() and ferry_kafka_client_user(). Returns NULL with
 * errstr naming the property at fault. */
rd_kafka_conf_t *ferry_kafka_conf_new(ferry_kafka *k, enum ferry_kafka_role role, const char *name,
                                      const struct ferry_cfg_map *overrides, void *user,
                                      void **opaque, char *errstr, size_t errstr_size);

/* The user pointer given to ferry_kafka_conf_new, from a librdkafka callback's opaque. */
void *ferry_kafka_client_user(void *opaque);

/* Forgets a client's statistics. Call after rd_kafka_destroy() of that client. */
void ferry_kafka_client_release(ferry_kafka *k, void *opaque);

/* Nonzero when a broker answered a metadata request recently (cached about a second), and no
 * client failed for good (ferry_kafka_failed). Any thread; blocks for at most 500 ms. */
int ferry_kafka_ready(ferry_kafka *k);

/* Nonzero, with why, once one of k's clients reported a fatal error: the shared producer (every
 * produce fails from then on; ferry also stops itself, with SIGTERM, to be restarted), or a
 * route's consumer fenced by another instance of the same server.instance. Any thread. */
int ferry_kafka_failed(ferry_kafka *k, char *why, size_t why_size);

/* Appends the brokers named in the clients' latest statistics to out as a JSON array of
 * {"name": string, "up": bool, "rtt_ms": number}, each broker once: up when any client's
 * connection to it is up, with the largest average round trip among them. [] before the first
 * statistics (kafka.stats_interval). Returns 0, or -1 when out's cap was reached. Any thread. */
int ferry_kafka_status_brokers(ferry_kafka *k, struct ferry_buf *out);

/* Appends the consumer lag of the client whose ferry_kafka_conf_new gave opaque, as a JSON
 * array of {"topic": string, "partition": int, "lag": int} from its latest statistics; [] when
 * there are none yet or the client was released. Returns 0, or -1 as above. Any thread. */
int ferry_kafka_status_lag(ferry_kafka *k, const void *opaque, struct ferry_buf *out);

/* Checks kafka.properties (and every client property ferry would set) without connecting;
 * problems are reported on cfg with file and line, beside those the load found. */
void ferry_kafka_check_config(struct ferry_config *cfg);

/* Whose Kafka properties a map holds: each refuses only the properties that the guarantees of
 * the clients it reaches rest on. */
enum ferry_kafka_props_of {
    FERRY_KAFKA_PROPS_EVERY_CLIENT, /* kafka.properties: the producer, routes' and tables' */
    FERRY_KAFKA_PROPS_ROUTE,        /* a route's kafka: its consumers */
    FERRY_KAFKA_PROPS_TABLE,        /* a table's kafka: its consumer */
};

/* Checks property overrides found at path ("kafka.properties", "routes[0].kafka") for the
 * clients of, with every property ferry would set, without connecting; reports problems on cfg
 * with file and line. */
void ferry_kafka_check_overrides(struct ferry_config *cfg, enum ferry_kafka_props_of of,
                                 const struct ferry_cfg_map *props, const char *path);

#endif
