/*
 * table_config.h - the `tables:` section of the config: which topic each table materializes,
 * where its LMDB environment lives, how it is placed, and the limits of its HTTP API.
 *
 * The tables job (table.c) declares ferry_tables_config_section as the top-level key it owns,
 * so the config loader fills these structs and `ferry check` checks them like every other
 * section; the core never looks inside them.
 */
#ifndef FERRY_TABLE_CONFIG_H
#define FERRY_TABLE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/config_schema.h"

struct ferry_auth;

enum ferry_table_placement {
    FERRY_PLACEMENT_ALL,         /* every instance holds every partition */
    FERRY_PLACEMENT_PARTITIONED, /* each partition has `replicas` holders among the members */
};

enum ferry_table_partitioner {
    FERRY_PARTITIONER_MURMUR2, /* the Java client's, and ferry's own producer's */
    FERRY_PARTITIONER_CRC32,   /* librdkafka's default (consistent_random) */
};

struct ferry_table_limits_config {
    int64_t max_key_bytes;
    int64_t max_lookup_keys;
    int64_t max_scan_limit;
    int64_t max_wait_ms;
    int64_t max_waiters;
    int64_t max_subscribers;
    int64_t subscriber_queue;
};

struct ferry_table_config {
    char *name;
    char *topic;
    char *path; /* NULL: <server.data_dir>/tables/<name> */
    int64_t max_size;
    struct ferry_cfg_map kafka;
    int placement;   /* enum ferry_table_placement */
    int partitioner; /* enum ferry_table_partitioner */
    char *content_type;
    int64_t ready_lag;
    int64_t apply_interval_ms;
    int64_t replicas; /* placement partitioned: holders of each partition */
    int64_t max_lag;  /* placement partitioned: a holder further behind forwards reads */
    struct ferry_table_limits_config limits;
};

/* How the instances holding partitioned tables find each other (`cluster:`). */
struct ferry_table_cluster_config {
    char *members_topic;
    int64_t heartbeat_ms;
    int64_t member_timeout_ms;
    int64_t grace_ms;
    int64_t forward_timeout_ms;
    char *peer_key; /* NULL: none (peers call each other without a key) */
};

/* The tables job's part of the config: the `tables:` list. */
struct ferry_tables_config {
    struct ferry_cfg_list tables; /* of struct ferry_table_config */
    struct ferry_table_cluster_config cluster;
};

/* The job's top-level table (the `tables:` key), filled into a struct ferry_tables_config. */
extern const struct ferry_cfg_section ferry_tables_config_section;

/* Checks across tables (unique names) and against other sections (cluster.peer_key among
 * ingest.auth.keys), once the whole file was loaded. */
void ferry_tables_config_check(struct ferry_config *cfg, void *config);

/* Nonzero when some table of tc is placed partitioned (and so forwards reads to its peers). */
int ferry_tables_config_partitioned(const struct ferry_tables_config *tc);

/* With API keys on the listener (auth), the instances forward reads to each other with
 * cluster.peer_key: it must be set, be one of the keys, and that key may read every table
 * placed partitioned, else every forwarded read would come back 401 or 403. Returns 0 (also
 * when auth has no key), or -1 with errstr (saying what, without the key's path). The one rule
 * for `ferry check` and for the start of the tables job. */
int ferry_tables_peer_key_check(const struct ferry_tables_config *tc, const struct ferry_auth *auth,
                                char *errstr, size_t errstr_size);

/* Writes one summary line per table for `ferry check`. */
void ferry_tables_config_summary(const void *config, FILE *out);

/* The names of enum ferry_table_partitioner, indexed by it. */
extern const char *const ferry_table_partitioners[];

#endif
