/*
 * table.c - the tables job: every `tables:` entry keeps the latest value per key of a topic
 * in an LMDB store (store.c), filled by an apply thread of its own (apply.c) and read over
 * HTTP by the server's threads (read.c).
 *
 * Placement `all`: every instance holds every partition, with no consumer group, so any
 * instance answers any key itself and a rebalance never stops reads. The job is ready (in
 * /readyz) once every table has caught up with the end its topic had at start.
 */
#include "table/table.h"
#include "core/auth.h"
#include "core/json.h"
#include "core/log.h"
#include "table/apply.h"
#include "core/units.h"
#include "table/assign.h"
#include "table/cluster.h"
#include "table/forward.h"
#include "table/fanout.h"
#include "table/read.h"
#include "table/state.h"
#include "table/watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TABLES_LABEL_MAX 300

static void tables_destroy(void *arg);

/* ---- metrics ---- */

static const double apply_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5};
static const double read_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,   0.05,    0.1,    1,     10,     60};

/* Registers the table's series. Returns 0, or -1 when one could not be made. */
static int register_metrics(struct table *t)
{
    static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    char lbl[TABLES_LABEL_MAX], cls[TABLES_LABEL_MAX + 32];
    ferry_metrics *m = t->metrics;

    snprintf(lbl, sizeof(lbl), "table=\"%s\"", t->cfg->name);
    t->m.applied =
        ferry_metrics_counter(m, "ferry_table_records_applied_total",
                              "Records applied to the table's store, tombstones included.", lbl);
    t->m.deleted = ferry_metrics_counter(m, "ferry_table_records_deleted_total",
                                         "Tombstones (records with a null value) applied.", lbl);
    t->m.skipped = ferry_metrics_counter(
        m, "ferry_table_records_skipped_total",
        "Records not stored: no key, or a key longer than limits.max_key.", lbl);
    t->m.forwarded = ferry_metrics_counter(
        m, "ferry_table_reads_forwarded_total",
        "Reads of keys this instance sent on to another that holds their partition.", lbl);
    t->m.apply_latency =
        ferry_metrics_histogram(m, "ferry_table_apply_batch_seconds",
                                "From a write transaction's first record to its commit.", lbl,
                                apply_bounds, sizeof(apply_bounds) / sizeof(apply_bounds[0]));
    t->m.read_latency = ferry_metrics_histogram(
        m, "ferry_table_read_seconds", "Time to answer a read, waits included.", lbl, read_bounds,
        sizeof(read_bounds) / sizeof(read_bounds[0]));
    t->m.ready =
        ferry_metrics_gauge(m, "ferry_table_ready", "1 when the table answers reads, else 0.", lbl);
    for (int i = 0; i < 5; i++) {
        snprintf(cls, sizeof(cls), "%s,code=\"%s\"", lbl, classes[i]);
        t->m.reads[i] = ferry_metrics_counter(m, "ferry_table_reads_total",
                                              "Table reads answered, by status class.", cls);
        if (!t->m.reads[i])
            return -1;
    }
    return t->m.applied && t->m.deleted && t->m.skipped && t->m.forwarded && t->m.apply_latency &&
                   t->m.read_latency && t->m.ready
               ? 0
               : -1;
}

static void collect_lag(struct ferry_buf *out, struct table *t)
{
    if (atomic_load(&t->state) == TABLE_STARTING)
        return;
    for (int32_t p = 0; p < t->npartitions; p++)
        ferry_buf_addf(out, "ferry_table_lag_records{table=\"%s\",partition=\"%d\"} %" PRId64 "\n",
                       t->cfg->name, p, ferry_table_partition_lag(t, p));
}

/* The gauges read from the stores, one family after the other. */
static void collect_stores(struct ferry_buf *out, ferry_tables *ts)
{
    static const char *const families[][2] = {
        {"ferry_table_keys", "Keys in the table's store."},
        {"ferry_table_bytes", "Bytes the table's store uses of its map."},
        {"ferry_table_max_bytes", "The store's map size (max_size)."},
    };
    struct ferry_store_stats *st = calloc(ts->count, sizeof(*st));
    char why[256];

    for (size_t i = 0; st && i < ts->count; i++) {
        ferry_store *s = ferry_table_store_acquire(&ts->tables[i]);
        if (s) {
            ferry_store_stats(s, &st[i], why, sizeof(why));
            ferry_table_store_release(&ts->tables[i]);
        }
    }
    for (size_t f = 0; st && f < 3; f++) {
        ferry_buf_addf(out, "# HELP %s %s\n# TYPE %s gauge\n", families[f][0], families[f][1],
                       families[f][0]);
        for (size_t i = 0; i < ts->count; i++)
            ferry_buf_addf(out, "%s{table=\"%s\"} %" PRIu64 "\n", families[f][0],
                           ts->tables[i].cfg->name,
                           f == 0   ? st[i].keys
                           : f == 1 ? st[i].bytes_used
                                    : st[i].max_size);
    }
    free(st);
}

static void collect(struct ferry_buf *out, void *arg)
{
    ferry_tables *ts = arg;

    collect_stores(out, ts);
    ferry_buf_adds(out, "# HELP ferry_table_rebuilding 1 while a new store is being built.\n"
                        "# TYPE ferry_table_rebuilding gauge\n");
    for (size_t i = 0; i < ts->count; i++)
        ferry_buf_addf(out, "ferry_table_rebuilding{table=\"%s\"} %d\n", ts->tables[i].cfg->name,
                       atomic_load(&ts->tables[i].rebuilding));
    ferry_buf_adds(out, "# HELP ferry_table_waiters Reads waiting (long polls, min_offset).\n"
                        "# TYPE ferry_table_waiters gauge\n");
    for (size_t i = 0; ts->watch && i < ts->count; i++)
        ferry_buf_addf(out, "ferry_table_waiters{table=\"%s\"} %zu\n", ts->tables[i].cfg->name,
                       ferry_table_watch_count(&ts->tables[i]));
    ferry_buf_adds(out, "# HELP ferry_table_lag_records Records of a partition not yet applied.\n"
                        "# TYPE ferry_table_lag_records gauge\n");
    for (size_t i = 0; i < ts->count; i++)
        collect_lag(out, &ts->tables[i]);
}

/* ---- lifecycle ---- */

/* Where the tables' stores go: server.data_dir, or on the embedded cluster (when data_dir was
 * not set) a new temporary directory that the job removes at exit. */
static int data_dir(ferry_tables *ts, const struct ferry_job_context *ctx, const char **dir,
                    char *errstr, size_t errstr_size)
{
    const char *tmp = getenv("TMPDIR");

    *dir = ctx->cfg->server.data_dir;
    if (!ferry_kafka_is_dev(ctx->kafka) || ferry_config_line(ctx->cfg, "server.data_dir"))
        return 0;
    snprintf(ts->tmpdir, sizeof(ts->tmpdir), "%s/ferry-tables-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(ts->tmpdir)) {
        snprintf(errstr, errstr_size, "cannot make a directory like '%s': %s", ts->tmpdir,
                 strerror(errno));
        ts->tmpdir[0] = '\0';
        return -1;
    }
    *dir = ts->tmpdir;
    return 0;
}

static int table_init(struct table *t, const char *dir, char *errstr, size_t errstr_size)
{
    char why[512] = "";

    if (t->cfg->path)
        snprintf(t->path, sizeof(t->path), "%s", t->cfg->path);
    else
        snprintf(t->path, sizeof(t->path), "%s/tables/%s", dir, t->cfg->name);
    pthread_rwlock_init(&t->store_lock, NULL);
    t->store = ferry_store_open(t->path, (size_t)t->cfg->max_size, why, sizeof(why));
    if (!t->store) {
        snprintf(errstr, errstr_size, "table '%s': %s", t->cfg->name, why);
        return -1;
    }
    if (ferry_store_was_emptied(t->store))
        FLOG_WARN("table", t->cfg->name,
                  "the store at %s was loading without syncs when the system went down, and "
                  "may have lost writes: it starts empty and loads the topic again",
                  t->path);
    if (register_metrics(t)) {
        snprintf(errstr, errstr_size, "table '%s': out of memory for its metrics", t->cfg->name);
        return -1;
    }
    if (ferry_table_consumer_new(t, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "table '%s': %s", t->cfg->name, why);
        return -1;
    }
    return 0;
}

/* ---- the members, for tables placed partitioned ---- */

/* Lists one table's held partitions in a heartbeat's table entry. Returns 0, or -1. */
static int fill_table(struct table *t, struct ferry_heartbeat_table *out)
{
    size_t n = 0;

    snprintf(out->name, sizeof(out->name), "%s", t->cfg->name);
    if (atomic_load(&t->state) == TABLE_STARTING)
        return 0; /* the partitions are not known yet */
    out->parts = calloc((size_t)t->npartitions, sizeof(*out->parts));
    if (!out->parts)
        return -1;
    for (int32_t p = 0; p < t->npartitions; p++) {
        struct table_partition *part = &t->parts[p];
        if (!atomic_load(&part->held))
            continue;
        out->parts[n++] = (struct ferry_heartbeat_partition){
            p, atomic_load(&part->applied), atomic_load(&part->end), atomic_load(&part->serving)};
    }
    out->count = n;
    return 0;
}

/* The tables' part of this instance's heartbeat: every table placed partitioned, with the
 * partitions it holds. Runs on the members thread. */
static int fill_heartbeat(void *arg, struct ferry_heartbeat *hb)
{
    ferry_tables *ts = arg;

    hb->tables = calloc(ts->count, sizeof(*hb->tables));
    if (!hb->tables)
        return -1;
    for (size_t i = 0; i < ts->count; i++) {
        if (!ferry_table_is_partitioned(&ts->tables[i]))
            continue;
        if (fill_table(&ts->tables[i], &hb->tables[hb->count++]))
            return -1;
    }
    return 0;
}

/* This instance's name (server.instance, else the host name) and the URL the others reach it
 * at (server.advertised_url, else http://<host name>:<listen port>). */
static int identity(const struct ferry_config *cfg, char *name, size_t name_size, char *url,
                    size_t url_size, char *errstr, size_t errstr_size)
{
    char host[256] = "", listen_host[256];
    int port = 0;

    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    snprintf(name, name_size, "%s", cfg->server.instance ? cfg->server.instance : host);
    if (cfg->server.advertised_url) {
        snprintf(url, url_size, "%s", cfg->server.advertised_url);
        return 0;
    }
    if (ferry_hostport_parse(cfg->server.listen, listen_host, sizeof(listen_host), &port) ||
        port == 0) {
        snprintf(errstr, errstr_size,
                 "tables placed partitioned need server.advertised_url when server.listen "
                 "has no fixed port");
        return -1;
    }
    snprintf(url, url_size, "%s://%s:%d", cfg->server.tls.cert_file ? "https" : "http", host, port);
    return 0;
}

/* The instances forward reads with cluster.peer_key: ferry_tables_peer_key_check, which
 * `ferry check` runs too. */
static int check_peer_key(ferry_tables *ts, const struct ferry_tables_config *tc, char *errstr,
                          size_t errstr_size)
{
    char why[512];

    if (!ferry_tables_peer_key_check(tc, ts->auth, why, sizeof(why)))
        return 0;
    snprintf(errstr, errstr_size, "cluster.peer_key: %s", why);
    return -1;
}

/* Makes the members thread when some table is placed partitioned. */
static int cluster_new(ferry_tables *ts, const struct ferry_job_context *ctx, char *errstr,
                       size_t errstr_size)
{
    const struct ferry_tables_config *tc = ctx->config;
    char name[FERRY_HEARTBEAT_NAME_MAX + 1], url[FERRY_HEARTBEAT_URL_MAX + 1];
    int partitioned = 0;

    for (size_t i = 0; i < ts->count; i++)
        partitioned |= ferry_table_is_partitioned(&ts->tables[i]);
    if (!partitioned)
        return 0;
    if (check_peer_key(ts, tc, errstr, errstr_size) ||
        identity(ctx->cfg, name, sizeof(name), url, sizeof(url), errstr, errstr_size))
        return -1;
    ts->forward_timeout_ms = tc->cluster.forward_timeout_ms;
    ts->grace_ms = tc->cluster.grace_ms;
    ts->forward = ferry_table_forward_new(name, tc->cluster.peer_key, errstr, errstr_size);
    if (!ts->forward)
        return -1;
    ts->cluster = ferry_table_cluster_new(&tc->cluster, name, url, ctx->kafka, fill_heartbeat, ts,
                                          errstr, errstr_size);
    return ts->cluster ? 0 : -1;
}

/* Opens every table's store and makes its consumer, without starting anything. */
static void *tables_new(const struct ferry_job_context *ctx, char *errstr, size_t errstr_size)
{
    const struct ferry_cfg_list *list = &((const struct ferry_tables_config *)ctx->config)->tables;
    ferry_tables *ts = calloc(1, sizeof(*ts));
    const char *dir = NULL;

    if (ts)
        ts->tables = calloc(list->count ? list->count : 1, sizeof(*ts->tables));
    if (!ts || !ts->tables) {
        snprintf(errstr, errstr_size, "out of memory for %zu table(s)", list->count);
        free(ts);
        return NULL;
    }
    ts->metrics = ctx->metrics;
    ts->auth = ctx->auth;
    if (list->count && data_dir(ts, ctx, &dir, errstr, errstr_size)) {
        tables_destroy(ts);
        return NULL;
    }
    for (size_t i = 0; i < list->count; i++, ts->count++) {
        struct table *t = &ts->tables[i];
        t->cfg = (const struct ferry_table_config *)list->items + i;
        t->owner = ts;
        t->forgetting = -1;
        t->kafka = ctx->kafka;
        t->metrics = ctx->metrics;
        if (table_init(t, dir, errstr, errstr_size)) {
            ts->count++;
            tables_destroy(ts);
            return NULL;
        }
    }
    if (cluster_new(ts, ctx, errstr, errstr_size)) {
        tables_destroy(ts);
        return NULL;
    }
    ts->watch = ferry_table_watch_new(ts, errstr, errstr_size);
    if (ts->watch)
        ts->fanout =
            ferry_table_fanout_new(ts, ctx->cfg->server.connection_timeout_ms, errstr, errstr_size);
    if (!ts->watch || !ts->fanout) {
        tables_destroy(ts);
        return NULL;
    }
    if (ts->count && ferry_metrics_add_collector(ts->metrics, collect, ts)) {
        snprintf(errstr, errstr_size, "out of memory for the tables' metrics");
        tables_destroy(ts);
        return NULL;
    }
    return ts;
}

static int tables_register(void *arg, ferry_httpd *h, char *errstr, size_t errstr_size)
{
    ferry_tables *ts = arg;

    if (!ts->count)
        return 0;
    if (ferry_table_read_register(h, ts)) {
        snprintf(errstr, errstr_size,
                 "tables: cannot register the /tables/ endpoints: out of memory, or the server "
                 "has no room for more paths");
        return -1;
    }
    for (size_t i = 0; i < ts->count; i++)
        FLOG_INFO("table", ts->tables[i].cfg->name,
                  "GET /tables/%s/keys/{key} from topic %s, store %s", ts->tables[i].cfg->name,
                  ts->tables[i].cfg->topic, ts->tables[i].path);
    return 0;
}

static int tables_start(void *arg, char *errstr, size_t errstr_size)
{
    ferry_tables *ts = arg;

    if (ts->count && (ferry_table_watch_start(ts->watch, errstr, errstr_size) ||
                      ferry_table_fanout_start(ts->fanout, errstr, errstr_size)))
        return -1;
    if (ts->cluster && (ferry_table_cluster_start(ts->cluster, errstr, errstr_size) ||
                        ferry_table_forward_start(ts->forward, errstr, errstr_size)))
        return -1;
    for (size_t i = 0; i < ts->count; i++) {
        struct table *t = &ts->tables[i];
        int rc = pthread_create(&t->thread, NULL, ferry_table_apply_main, t);
        if (rc != 0) {
            snprintf(errstr, errstr_size, "table '%s': cannot start its thread: %s", t->cfg->name,
                     strerror(rc));
            return -1;
        }
        t->thread_started = 1;
    }
    return 0;
}

/* Ready once every table answers reads. Any thread. */
static int tables_ready(void *arg, char *why, size_t why_size)
{
    ferry_tables *ts = arg;

    for (size_t i = 0; i < ts->count; i++) {
        int state = atomic_load(&ts->tables[i].state);
        if (state != TABLE_READY) {
            snprintf(why, why_size, "table %s is %s (%" PRId64 " records behind)",
                     ts->tables[i].cfg->name, ferry_table_states[state],
                     ferry_table_lag(&ts->tables[i]));
            return 0;
        }
    }
    return 1;
}

/* One table's object of GET /status: state, readiness, lag (in all and per partition) and
 * keys. Any thread. */
static int table_status(struct table *t, struct ferry_buf *out)
{
    struct ferry_store_stats st = {0};
    int state = atomic_load(&t->state);
    ferry_store *s = ferry_table_store_acquire(t);
    char why[256];
    int result;

    if (s) {
        ferry_store_stats(s, &st, why, sizeof(why));
        ferry_table_store_release(t);
    }
    result = ferry_buf_adds(out, "{\"name\":") ||
             ferry_json_add_string(out, t->cfg->name, strlen(t->cfg->name)) ||
             ferry_buf_addf(out,
                            ",\"state\":\"%s\",\"ready\":%s,\"keys\":%" PRIu64 ",\"lag\":%" PRId64
                            ",\"partitions\":[",
                            ferry_table_states[state], state == TABLE_READY ? "true" : "false",
                            st.keys, ferry_table_lag(t));
    /* the partitions are known once the table has left TABLE_STARTING, as in collect_lag */
    for (int32_t p = 0; state != TABLE_STARTING && p < t->npartitions && !result; p++)
        result = ferry_buf_addf(out, "%s{\"partition\":%d,\"lag\":%" PRId64 "}", p ? "," : "", p,
                                ferry_table_partition_lag(t, p));
    return result || ferry_buf_adds(out, "]}") ? -1 : 0;
}

/* The tables' part of GET /status: an array of table objects. Any thread. */
static int tables_status(void *arg, struct ferry_buf *out)
{
    ferry_tables *ts = arg;
    int result = ferry_buf_addc(out, '[');

    for (size_t i = 0; i < ts->count && !result; i++)
        result = (i && ferry_buf_addc(out, ',')) || table_status(&ts->tables[i], out);
    return result || ferry_buf_addc(out, ']') ? -1 : 0;
}

/* Stops the apply threads (each commits what it applied), closes the consumers, answers the
 * reads that wait (503) and ends the subscriptions' streams. The stores stay open for the reads
 * the server still answers. Safe to call twice. */
static void tables_stop(void *arg, int64_t timeout_ms)
{
    ferry_tables *ts = arg;

    (void)timeout_ms;
    if (!ts || ts->stopped)
        return;
    for (size_t i = 0; i < ts->count; i++)
        atomic_store(&ts->tables[i].stop, 1);
    /* First: its last heartbeat says leaving, so that the others stop sending reads here and
     * move the partitions now, rather than once the tables have stopped. */
    ferry_table_cluster_stop(ts->cluster);
    for (size_t i = 0; i < ts->count; i++) {
        if (ts->tables[i].thread_started)
            pthread_join(ts->tables[i].thread, NULL);
        ts->tables[i].thread_started = 0;
        ferry_table_consumer_destroy(&ts->tables[i]);
    }
    ferry_table_forward_stop(ts->forward);
    ferry_table_watch_stop(ts->watch);
    ferry_table_fanout_stop(ts->fanout);
    ts->stopped = 1;
}

static void table_release(struct table *t)
{
    if (!t->cfg)
        return;
    ferry_store_close(t->store);
    t->store = NULL;
    pthread_rwlock_destroy(&t->store_lock);
    free(t->parts);
}

/* Removes the temporary data directory made for the embedded cluster. */
static void remove_tmpdir(ferry_tables *ts)
{
    char path[TABLE_PATH_MAX + 16], why[512];

    if (!ts->tmpdir[0])
        return;
    for (size_t i = 0; i < ts->count; i++)
        if (!ts->tables[i].cfg->path &&
            ferry_store_destroy_files(ts->tables[i].path, why, sizeof(why)))
            FLOG_WARN("table", ts->tables[i].cfg->name, "%s", why);
    snprintf(path, sizeof(path), "%s/tables", ts->tmpdir);
    rmdir(path);
    if (rmdir(ts->tmpdir) != 0)
        FLOG_WARN("table", NULL, "cannot remove '%s': %s", ts->tmpdir, strerror(errno));
}

static void tables_destroy(void *arg)
{
    ferry_tables *ts = arg;

    if (!ts)
        return;
    tables_stop(ts, 0);
    if (ts->count)
        ferry_metrics_remove_collector(ts->metrics, collect, ts);
    ferry_table_watch_destroy(ts->watch);
    ferry_table_fanout_destroy(ts->fanout);
    ferry_table_cluster_destroy(ts->cluster);
    ferry_table_forward_destroy(ts->forward);
    for (size_t i = 0; i < ts->count; i++)
        table_release(&ts->tables[i]);
    remove_tmpdir(ts);
    free(ts->tables);
    free(ts);
}

const struct ferry_job ferry_tables_job = {
    .name = "tables",
    .config = &ferry_tables_config_section,
    .check = ferry_tables_config_check,
    .summary = ferry_tables_config_summary,
    .create = tables_new,
    .http_register = tables_register,
    .ready = tables_ready,
    .status = tables_status,
    .start = tables_start,
    .stop = tables_stop,
    .destroy = tables_destroy,
};
