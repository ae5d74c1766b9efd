/*
 * table_config.c - the table of a table's settings and the checks that span several of them
 * (names are usable in URLs and unique, the topic is a name Kafka accepts), so that `ferry
 * check` finds every mistake a table could hit at start.
 */
#include "table/table_config.h"
#include "core/auth.h"
#include "core/header_value.h"
#include "core/kafka.h"
#include "core/topic_name.h"
#include "table/heartbeat.h"
#include "table/placement.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define TABLE_PATH_MAX 256
#define TABLE_STORE_PATH_MAX 4096 /* a store's directory, as table.c makes it */

static const char *const placements[] = {"all", "partitioned", NULL};
const char *const ferry_table_partitioners[] = {"murmur2", "crc32", NULL};

static void check_table(struct ferry_config *cfg, void *obj, const char *path);

#define LIMIT_FIELD(f) offsetof(struct ferry_table_limits_config, f)
static const struct ferry_cfg_field limits_fields[] = {
    {"max_key", FERRY_CFG_SIZE, LIMIT_FIELD(max_key_bytes), "64KiB", 1, 1024 * 1024, NULL, NULL, 0,
     "Longest key the table stores and answers for; longer record keys are skipped and counted."},
    {"max_lookup_keys", FERRY_CFG_INT, LIMIT_FIELD(max_lookup_keys), "1000", 1, 100000, NULL, NULL,
     0, "Most keys one `POST /tables/{table}/lookup` may ask for."},
    {"max_scan_limit", FERRY_CFG_INT, LIMIT_FIELD(max_scan_limit), "1000", 1, 100000, NULL, NULL, 0,
     "Most keys one prefix scan page returns (its `limit` parameter's cap and default)."},
    {"max_wait", FERRY_CFG_DURATION, LIMIT_FIELD(max_wait_ms), "60s", 0, 3600000, NULL, NULL, 0,
     "Longest `Prefer: wait=N` a long poll or read-your-writes GET is granted."},
    {"max_waiters", FERRY_CFG_INT, LIMIT_FIELD(max_waiters), "10000", 0, 1000000, NULL, NULL, 0,
     "Long polls and read-your-writes GETs parked at once; more get 429."},
    {"max_subscribers", FERRY_CFG_INT, LIMIT_FIELD(max_subscribers), "1000", 0, 100000, NULL, NULL,
     0, "Server-Sent Events subscribers at once; more get 429."},
    {"subscriber_queue", FERRY_CFG_INT, LIMIT_FIELD(subscriber_queue), "1000", 1, 1000000, NULL,
     NULL, 0,
     "Events written ahead of one subscriber; one whose queue stays full for half of "
     "`server.connection_timeout` is told why and disconnected (see docs/table-events.md)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section limits_section = {"limits", limits_fields,
                                                        sizeof(struct ferry_table_limits_config),
                                                        NULL, "Bounds of a table's HTTP API."};

#define TABLE_FIELD(f) offsetof(struct ferry_table_config, f)
static const struct ferry_cfg_field table_fields[] = {
    {"name", FERRY_CFG_STRING, TABLE_FIELD(name), NULL, 0, 0, NULL, NULL, 1,
     "Names the table in URLs (`/tables/{name}`), metrics and logs: letters, digits, `.`, `_` "
     "and `-`."},
    {"topic", FERRY_CFG_STRING, TABLE_FIELD(topic), NULL, 0, 0, NULL, NULL, 1,
     "The topic whose latest value per key the table holds."},
    {"path", FERRY_CFG_STRING, TABLE_FIELD(path), NULL, 0, 0, NULL, NULL, 0,
     "Directory of the table's LMDB environment (default `<server.data_dir>/tables/<name>`)."},
    {"max_size", FERRY_CFG_SIZE, TABLE_FIELD(max_size), "1GiB", 1024 * 1024, (int64_t)1 << 40, NULL,
     NULL, 0,
     "Largest the store may grow (LMDB's map size). When full, the table stops applying and "
     "reports not ready; reads go on."},
    {"kafka", FERRY_CFG_MAP, TABLE_FIELD(kafka), NULL, 0, 0, NULL, NULL, 0,
     "librdkafka properties for this table's consumer, over `kafka.properties`."},
    {"placement", FERRY_CFG_ENUM, TABLE_FIELD(placement), "all", 0, 0, placements, NULL, 0,
     "`all`: every instance holds every partition, so any instance answers any key itself. "
     "`partitioned`: each partition is held by `replicas` of the live instances (see "
     "`cluster`), and an instance forwards a read of a key it does not hold to one that does "
     "(docs/tables.md)."},
    {"partitioner", FERRY_CFG_ENUM, TABLE_FIELD(partitioner), "murmur2", 0, 0,
     ferry_table_partitioners, NULL, 0,
     "The partitioner of the topic's producers, which tells the partition of a key: "
     "`murmur2` (the Java client's and ferry's own) or `crc32` (librdkafka's default)."},
    {"content_type", FERRY_CFG_STRING, TABLE_FIELD(content_type), NULL, 0, 0, NULL, NULL, 0,
     "Content-Type of values whose record has no `content-type` header (default: "
     "`application/json` for a value that is valid JSON, else `application/octet-stream`)."},
    {"ready_lag", FERRY_CFG_INT, TABLE_FIELD(ready_lag), "0", 0, 1000000000000, NULL, NULL, 0,
     "The table answers once every partition is at most this many records behind the end it "
     "had when ferry started; until then reads get 503."},
    {"apply_interval", FERRY_CFG_DURATION, TABLE_FIELD(apply_interval_ms), "10ms", 1, 10000, NULL,
     NULL, 0,
     "Longest a consumed record waits before its write transaction commits (records are "
     "applied many per transaction)."},
    {"replicas", FERRY_CFG_INT, TABLE_FIELD(replicas), "2", 1, FERRY_PLACEMENT_MAX_REPLICAS, NULL,
     NULL, 0,
     "Placement `partitioned`: how many live instances hold each partition. As many as there are "
     "instances, or more, means every instance holds everything."},
    {"max_lag", FERRY_CFG_INT, TABLE_FIELD(max_lag), "1000", 0, 1000000000000, NULL, NULL, 0,
     "Placement `partitioned`: a holder more than this many records behind the partition's end "
     "forwards a read to a fresher holder."},
    {"limits", FERRY_CFG_SECTION, TABLE_FIELD(limits), NULL, 0, 0, NULL, &limits_section, 0, NULL},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section table_section = {
    "tables[]", table_fields, sizeof(struct ferry_table_config), check_table,
    "Each table materializes a topic into an LMDB store and serves the latest value per key "
    "over HTTP (see docs/tables.md)."};

/* ---- checks ---- */

static void check_table(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_table_config *t = obj;
    char fpath[TABLE_PATH_MAX], err[512];

    ferry_config_check_name(cfg, t->name, path);
    snprintf(fpath, sizeof(fpath), "%s.topic", path);
    if (t->topic && ferry_topic_name_check(t->topic, strlen(t->topic), err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    snprintf(fpath, sizeof(fpath), "%s.path", path);
    if (t->path && !*t->path)
        ferry_config_error(cfg, fpath, "expected a directory, got an empty string");
    snprintf(fpath, sizeof(fpath), "%s.content_type", path);
    if (t->content_type && !ferry_header_value_valid(t->content_type))
        ferry_config_error(cfg, fpath, "holds a control byte, which a header cannot carry");
    snprintf(fpath, sizeof(fpath), "%s.kafka", path);
    ferry_kafka_check_overrides(cfg, FERRY_KAFKA_PROPS_TABLE, &t->kafka, fpath);
}

static void check_cluster(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_table_cluster_config *c = obj;
    char fpath[TABLE_PATH_MAX], err[512];

    snprintf(fpath, sizeof(fpath), "%s.members_topic", path);
    if (c->members_topic &&
        ferry_topic_name_check(c->members_topic, strlen(c->members_topic), err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    snprintf(fpath, sizeof(fpath), "%s.member_timeout", path);
    if (c->member_timeout_ms < 2 * c->heartbeat_ms)
        ferry_config_error(cfg, fpath,
                           "must be at least twice cluster.heartbeat, or one late heartbeat "
                           "makes a live instance look gone");
}

/* ---- the job's top-level keys ---- */

static void check_cluster(struct ferry_config *cfg, void *obj, const char *path);

#define CLUSTER_FIELD(f) offsetof(struct ferry_table_cluster_config, f)
static const struct ferry_cfg_field cluster_fields[] = {
    {"members_topic", FERRY_CFG_STRING, CLUSTER_FIELD(members_topic), "_ferry-members", 0, 0, NULL,
     NULL, 0,
     "The topic where instances publish their heartbeats and read each other's (created if "
     "missing on the embedded cluster; on a real cluster, create it with a short retention)."},
    {"heartbeat", FERRY_CFG_DURATION, CLUSTER_FIELD(heartbeat_ms), "1s", 100, 60000, NULL, NULL, 0,
     "How often an instance publishes its heartbeat."},
    {"member_timeout", FERRY_CFG_DURATION, CLUSTER_FIELD(member_timeout_ms), "5s", 500, 600000,
     NULL, NULL, 0,
     "An instance not heard from for this long is not live: its partitions get other holders."},
    {"grace", FERRY_CFG_DURATION, CLUSTER_FIELD(grace_ms), "10m", 0, 86400000, NULL, NULL, 0,
     "A partition an instance stops holding stays in its store this long, so that a member that "
     "comes back soon does not cause full restores."},
    {"forward_timeout", FERRY_CFG_DURATION, CLUSTER_FIELD(forward_timeout_ms), "5s", 100, 600000,
     NULL, NULL, 0,
     "Longest a forwarded read may take, every holder tried included, before the client gets "
     "504. Each holder tried gets an even share of what is left (at least 1s; the last, all of "
     "it), so that one which never answers leaves the next time to."},
    {"peer_key", FERRY_CFG_STRING, CLUSTER_FIELD(peer_key), NULL, 0, 0, NULL, NULL, 0,
     "The API key instances send when they forward a read to each other (`${env:...}` or "
     "`${file:...}`); it must be one of `ingest.auth.keys` with access to the tables. Needed when "
     "keys are configured."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section cluster_section = {
    "cluster", cluster_fields, sizeof(struct ferry_table_cluster_config), check_cluster,
    "How the instances holding tables placed `partitioned` find each other: each publishes a "
    "heartbeat to a members topic and reads everyone's (docs/tables.md)."};

#define TABLES_FIELD(f) offsetof(struct ferry_tables_config, f)
static const struct ferry_cfg_field tables_fields[] = {
    {"tables", FERRY_CFG_LIST, TABLES_FIELD(tables), NULL, 0, 0, NULL, &table_section, 0,
     "Materialized tables: the latest value per key of a topic, served over HTTP."},
    {"cluster", FERRY_CFG_SECTION, TABLES_FIELD(cluster), NULL, 0, 0, NULL, &cluster_section, 0,
     NULL},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_tables_config_section = {
    "", tables_fields, sizeof(struct ferry_tables_config), NULL, NULL};

/* The index of the first table placed partitioned, or the number of tables when none is. */
static size_t first_partitioned(const struct ferry_tables_config *tc)
{
    const struct ferry_table_config *t = tc->tables.items;
    size_t i = 0;

    while (i < tc->tables.count && t[i].placement != FERRY_PLACEMENT_PARTITIONED)
        i++;
    return i;
}

int ferry_tables_config_partitioned(const struct ferry_tables_config *tc)
{
    return first_partitioned(tc) < tc->tables.count;
}

int ferry_tables_peer_key_check(const struct ferry_tables_config *tc, const struct ferry_auth *auth,
                                char *errstr, size_t errstr_size)
{
    const struct ferry_table_config *t = tc->tables.items;
    char header[FERRY_AUTH_SECRET_MAX + 64];
    int key;

    if (!ferry_auth_enabled(auth) || !ferry_tables_config_partitioned(tc))
        return 0;
    if (!tc->cluster.peer_key) {
        snprintf(errstr, errstr_size,
                 "missing, needed when ingest.auth.keys are set and a table is placed "
                 "partitioned (the instances forward reads to each other with it)");
        return -1;
    }
    snprintf(header, sizeof(header), "Bearer %s", tc->cluster.peer_key);
    key = ferry_auth_check(auth, header);
    explicit_bzero(header, sizeof(header));
    if (key < 0) {
        snprintf(errstr, errstr_size, "not one of ingest.auth.keys");
        return -1;
    }
    for (size_t i = 0; i < tc->tables.count; i++) {
        if (t[i].placement == FERRY_PLACEMENT_PARTITIONED &&
            !ferry_auth_allows(auth, key, FERRY_AUTH_TABLES, t[i].name)) {
            snprintf(errstr, errstr_size,
                     "the key '%s' may not read table '%s', which the instances forward reads of",
                     ferry_auth_name(auth, key), t[i].name);
            return -1;
        }
    }
    return 0;
}

/* Nonzero when a problem with the value at path was recorded already. */
static int reported(const struct ferry_config *cfg, const char *path)
{
    char prefix[TABLE_PATH_MAX];
    int len = snprintf(prefix, sizeof(prefix), "config: %s: ", path);

    for (size_t i = 0; i < ferry_config_error_count(cfg); i++)
        if (strncmp(ferry_config_error_at(cfg, i), prefix, (size_t)len) == 0)
            return 1;
    return 0;
}

/* ferry_tables_peer_key_check on the keys of the file, reported where it was written: at the
 * first partitioned table's placement when there is no cluster section to point at. */
static void check_peer_key(struct ferry_config *cfg, const struct ferry_tables_config *tc)
{
    char err[512], fpath[TABLE_PATH_MAX];
    ferry_auth *auth;

    /* A peer_key written but not loaded (a ${file:...} that cannot be read) was reported. */
    if (!ferry_tables_config_partitioned(tc) || reported(cfg, "cluster.peer_key"))
        return;
    auth = ferry_auth_from_config(cfg, err, sizeof(err));
    if (!auth || !ferry_tables_peer_key_check(tc, auth, err, sizeof(err)))
        goto out;
    if (tc->cluster.peer_key || ferry_config_line(cfg, "cluster")) {
        ferry_config_error(cfg, "cluster.peer_key", "%s", err);
        goto out;
    }
    snprintf(fpath, sizeof(fpath), "tables[%zu].placement", first_partitioned(tc));
    ferry_config_error(cfg, fpath,
                       "partitioned while ingest.auth.keys are set: needs cluster.peer_key, the "
                       "key the instances forward reads to each other with");
out:
    ferry_auth_destroy(auth);
}

/* Appends the segment s[0..n) of a path to out, which holds a path without "." or ".."
 * segments: ".." takes the last segment back. */
static void add_segment(char *out, size_t size, const char *s, size_t n)
{
    size_t len = strlen(out);
    char *slash;

    if (n == 0 || (n == 1 && s[0] == '.'))
        return;
    if (n == 2 && s[0] == '.' && s[1] == '.') {
        slash = strrchr(out, '/');
        if (slash)
            *slash = '\0';
        return;
    }
    if (len + 1 + n < size)
        snprintf(out + len, size - len, "/%.*s", (int)n, s);
}

/* The directory table t stores into (table.c's rule: its path, or
 * <data_dir>/tables/<name>), written without "//", "." or "..": two spellings of one
 * directory are one. A relative path keeps a leading "./". */
static void store_dir(const struct ferry_config *cfg, const struct ferry_table_config *t, char *out,
                      size_t size)
{
    char raw[TABLE_STORE_PATH_MAX];
    const char *s, *end;

    if (t->path)
        snprintf(raw, sizeof(raw), "%s", t->path);
    else
        snprintf(raw, sizeof(raw), "%s/tables/%s", cfg->server.data_dir, t->name);
    snprintf(out, size, "%s", raw[0] == '/' ? "" : ".");
    for (s = raw; *s; s = *end ? end + 1 : end) {
        end = strchr(s, '/');
        if (!end)
            end = s + strlen(s);
        add_segment(out, size, s, (size_t)(end - s));
    }
}

/* The advertised URL travels in every heartbeat, which holds FERRY_HEARTBEAT_URL_MAX bytes of
 * it: a longer one would be cut, and every forwarded read sent to a wrong address. */
static void check_advertised_length(struct ferry_config *cfg, const struct ferry_tables_config *tc)
{
    const char *url = cfg->server.advertised_url;

    if (url && ferry_tables_config_partitioned(tc) && strlen(url) > FERRY_HEARTBEAT_URL_MAX)
        ferry_config_error(cfg, "server.advertised_url",
                           "longer than %d bytes, the most a heartbeat carries (tables placed "
                           "partitioned publish it)",
                           FERRY_HEARTBEAT_URL_MAX);
}

/* Table names are URL segments and metric labels, and two tables may not share a store (a
 * `path:`, or the default directory of another table's name); the peer key is one of the
 * listener's keys. */
void ferry_tables_config_check(struct ferry_config *cfg, void *config)
{
    const struct ferry_tables_config *tc = config;
    const struct ferry_table_config *t = tc->tables.items;
    char fpath[TABLE_PATH_MAX], a[TABLE_STORE_PATH_MAX], b[TABLE_STORE_PATH_MAX];

    check_peer_key(cfg, tc);
    check_advertised_length(cfg, tc);

    for (size_t i = 0; i < tc->tables.count; i++) {
        if (!t[i].name)
            continue;
        store_dir(cfg, &t[i], a, sizeof(a));
        for (size_t j = 0; j < i; j++) {
            if (!t[j].name)
                continue;
            store_dir(cfg, &t[j], b, sizeof(b));
            if (strcmp(t[i].name, t[j].name) == 0) {
                snprintf(fpath, sizeof(fpath), "tables[%zu].name", i);
                ferry_config_error(cfg, fpath, "another table is named '%s'", t[i].name);
            } else if (strcmp(a, b) == 0) {
                snprintf(fpath, sizeof(fpath), "tables[%zu].%s", i, t[i].path ? "path" : "name");
                ferry_config_error(cfg, fpath, "table '%s' stores into the same directory, %s",
                                   t[j].name, a);
            }
        }
    }
}

void ferry_tables_config_summary(const void *config, FILE *out)
{
    const struct ferry_tables_config *tc = config;
    const struct ferry_table_config *t = tc->tables.items;

    for (size_t i = 0; i < tc->tables.count; i++)
        fprintf(out, "  table:  %s: topic %s -> GET /tables/%s/keys/{key} (placement: %s)\n",
                t[i].name, t[i].topic, t[i].name, placements[t[i].placement]);
}
