/*
 * config.c - the configuration tables of the shared core (kafka, server, log), the config
 * object's lifecycle, and the bookkeeping that lets every error name file, line and key.
 *
 * Each job declares the top-level keys it owns next to the code that runs it (struct
 * ferry_job.config); the config keeps one object per job for them, which only that job reads.
 */
#include "core/config.h"
#include "core/file.h"
#include "core/config_int.h"
#include "core/config_schema.h"
#include "core/job.h"
#include "core/log.h"
#include "core/topic_name.h"
#include "core/units.h"
#include "core/url.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (4 * 1024 * 1024)
#define CONFIG_ERRORS_MAX 64
#define CONFIG_MESSAGE_MAX 512
#define ENV_NAME_MAX 256
#define CONFIG_FILE_PATH_MAX 4096
#define CONFIG_SECRET_FILE_MAX (64 * 1024) /* what one ${file:PATH} may hold */

struct line_note {
    char *path;
    int line;
    int has_value; /* 0: "key:" with no value, which counts as not written */
    size_t next;   /* 1 + the index of the note noted before it in its bucket; 0: none */
};

/* The notes, in the order they were made, and a hash index over their paths: each of the
 * alines buckets holds 1 + the index of its latest note (0: none), which chains to earlier
 * ones, so a lookup meets a path's last note first. Checks look up a line for almost every
 * key, so a scan of every note made `ferry check` quadratic in the size of the file. */
struct ferry_config_private {
    struct line_note *lines;
    size_t *buckets;
    size_t nlines, alines;
    char *errors[CONFIG_ERRORS_MAX];
    size_t nerrors;
    size_t dropped;             /* errors not kept: past CONFIG_ERRORS_MAX, or out of memory */
    char dropped_line[64];      /* what ferry_config_error_at says of them */
    void *jobs[FERRY_JOBS_MAX]; /* each job's section, indexed as ferry_jobs */
};

/* ---- the core sections ---- */

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};

static void check_kafka(struct ferry_config *cfg, void *obj, const char *path);
static void check_dev(struct ferry_config *cfg, void *obj, const char *path);
static void check_server(struct ferry_config *cfg, void *obj, const char *path);
/* leaves room for "-<route>" in a group.instance.id, which Kafka caps as a topic name */
#define SERVER_INSTANCE_MAX (FERRY_TOPIC_NAME_MAX - 1 - FERRY_CONFIG_NAME_MAX)
_Static_assert(SERVER_INSTANCE_MAX == 184, "server.instance's help names the limit");
static void check_tls(struct ferry_config *cfg, void *obj, const char *path);

#define DEV_FIELD(f) offsetof(struct ferry_kafka_dev_config, f)
static const struct ferry_cfg_field dev_fields[] = {
    {"brokers", FERRY_CFG_INT, DEV_FIELD(brokers), "1", 1, 9, NULL, NULL, 0,
     "Number of brokers in the embedded cluster."},
    {"topics", FERRY_CFG_STRINGS, DEV_FIELD(topics), NULL, 0, 0, NULL, NULL, 0,
     "Topics to create at start, as `name:partitions` (other topics are created with 4 "
     "partitions when first used). Names are up to 249 ASCII letters, digits, `.`, `_` and "
     "`-`, as Kafka requires."},
    {"bootstrap_file", FERRY_CFG_STRING, DEV_FIELD(bootstrap_file), NULL, 0, 0, NULL, NULL, 0,
     "Write the embedded cluster's bootstrap address to this file, for other Kafka clients "
     "(kcat, scripts, tests)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section dev_section = {
    "kafka.dev", dev_fields, sizeof(struct ferry_kafka_dev_config), check_dev,
    "The embedded development cluster, used when `kafka.brokers` is not set. It keeps every "
    "record in memory only: nothing survives a restart."};

#define KAFKA_FIELD(f) offsetof(struct ferry_kafka_config, f)
static const struct ferry_cfg_field kafka_fields[] = {
    {"brokers", FERRY_CFG_STRING, KAFKA_FIELD(brokers), NULL, 0, 0, NULL, NULL, 0,
     "Bootstrap servers, `host:port[,host:port...]`. When absent ferry starts an embedded "
     "in-memory cluster (see `kafka.dev`)."},
    {"properties", FERRY_CFG_MAP, KAFKA_FIELD(properties), NULL, 0, 0, NULL, NULL, 0,
     "librdkafka properties passed as-is to every client (e.g. `security.protocol`)."},
    {"dev", FERRY_CFG_SECTION, KAFKA_FIELD(dev), NULL, 0, 0, NULL, &dev_section, 0,
     "Settings of the embedded development cluster."},
    {"stats_interval", FERRY_CFG_DURATION, KAFKA_FIELD(stats_interval_ms), "5s", 100, 3600000, NULL,
     NULL, 0, "How often the Kafka clients' statistics behind /metrics are refreshed."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section kafka_section = {"kafka", kafka_fields,
                                                       sizeof(struct ferry_kafka_config),
                                                       check_kafka, "How ferry reaches Kafka."};

#define TLS_FIELD(f) offsetof(struct ferry_server_tls_config, f)
static const struct ferry_cfg_field tls_fields[] = {
    {"cert_file", FERRY_CFG_STRING, TLS_FIELD(cert_file), NULL, 0, 0, NULL, NULL, 0,
     "Certificate chain (PEM) of the listener."},
    {"key_file", FERRY_CFG_STRING, TLS_FIELD(key_file), NULL, 0, 0, NULL, NULL, 0,
     "Private key (PEM, unencrypted) of that certificate."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section tls_section = {
    "server.tls", tls_fields, sizeof(struct ferry_server_tls_config), check_tls,
    "HTTPS for the listener (GnuTLS through libmicrohttpd). With both files set every "
    "endpoint, ingest and admin alike, is served over TLS only."};

#define SERVER_FIELD(f) offsetof(struct ferry_server_config, f)
static const struct ferry_cfg_field server_fields[] = {
    {"listen", FERRY_CFG_STRING, SERVER_FIELD(listen), "127.0.0.1:8080", 0, 0, NULL, NULL, 0,
     "Address of the HTTP server (`host:port`; port 0 lets the system choose)."},
    {"threads", FERRY_CFG_INT, SERVER_FIELD(threads), "2", 1, 256, NULL, NULL, 0,
     "Threads serving HTTP requests."},
    {"max_connections", FERRY_CFG_INT, SERVER_FIELD(max_connections), "4096", 1, 1000000, NULL,
     NULL, 0, "Connections open at once; more are refused."},
    {"connection_memory", FERRY_CFG_SIZE, SERVER_FIELD(connection_memory), "16KiB", 4096, 1048576,
     NULL, NULL, 0,
     "Memory of each connection for its request line and headers (64 bytes of it per header) "
     "and then the answer's header block. A larger request gets 414 or 431. libmicrohttpd "
     "clears all of it before each request of a kept-alive connection, so a larger value "
     "costs every request time and every open connection memory (docs/operations.md, "
     "\"Memory\")."},
    {"max_body_memory", FERRY_CFG_SIZE, SERVER_FIELD(max_body_memory), "256MiB", 1048576,
     68719476736LL, NULL, NULL, 0,
     "Request bodies held in memory at once, over all connections: those being received and "
     "those whose handler has not yet taken them. A request whose body would pass it gets 503 "
     "with `Retry-After: 1`, before its body is read when its `Content-Length` already does; "
     "a request is always let in while no other body is held, so a body up to its endpoint's "
     "own limit (`ingest.limits.max_body`) can always arrive. Without it, `max_connections` "
     "slow uploads could hold `max_connections` times the largest body."},
    {"connection_timeout", FERRY_CFG_DURATION, SERVER_FIELD(connection_timeout_ms), "60s", 1000,
     3600000, NULL, NULL, 0, "Idle connections are closed after this long."},
    {"shutdown_timeout", FERRY_CFG_DURATION, SERVER_FIELD(shutdown_timeout_ms), "30s", 0, 3600000,
     NULL, NULL, 0,
     "On SIGTERM, how long ferry may drain before it exits anyway (exit code 3). The whole drain "
     "shares it: the tables, then ingest (answering what it accepted), then the routes, then the "
     "producer's last flush each get what the stages before them left."},
    {"tls", FERRY_CFG_SECTION, SERVER_FIELD(tls), NULL, 0, 0, NULL, &tls_section, 0, NULL},
    {"data_dir", FERRY_CFG_STRING, SERVER_FIELD(data_dir), "/var/lib/ferry", 0, 0, NULL, NULL, 0,
     "Where ferry keeps data that outlives a restart (tables under `tables/<name>`). On the "
     "embedded dev cluster, when this key is not set, a new directory under the system's "
     "temporary directory, removed at exit."},
    {"instance", FERRY_CFG_STRING, SERVER_FIELD(instance), NULL, 0, 0, NULL, NULL, 0,
     "This instance's name among the ferry instances of a deployment, unique and stable across "
     "restarts (a StatefulSet pod name, a host name; `${env:...}` works). When set, each route "
     "joins its consumer group as a static member (`group.instance.id` is "
     "`<instance>-<route>`): after a restart, even a kill -9, the instance takes its partitions "
     "back at once instead of waiting for its old session to expire, on a real broker. Two "
     "running instances with the same name fence each other. Not set: dynamic membership, where "
     "a stopped instance hands its partitions over at once but a crashed one holds them for "
     "`session.timeout.ms`. At most 184 characters, so that `<instance>-<route>` fits the 249 "
     "Kafka allows."},
    {"advertised_url", FERRY_CFG_STRING, SERVER_FIELD(advertised_url), NULL, 0, 0, NULL, NULL, 0,
     "How the other ferry instances reach this one, `http://host:port` or `https://host:port` "
     "(`${env:...}` works): tables placed `partitioned` forward reads to it. Default: "
     "`http://<host name>:<port of server.listen>`."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section server_section = {
    "server", server_fields, sizeof(struct ferry_server_config), check_server,
    "The HTTP server, one listener for health, status, metrics, ingest, table lookups and the "
    "admin endpoints."};

#define LOG_FIELD(f) offsetof(struct ferry_log_config, f)
static const struct ferry_cfg_field log_fields[] = {
    {"level", FERRY_CFG_ENUM, LOG_FIELD(level), "info", 0, 0, log_levels, NULL, 0,
     "Least severe level written."},
    {"format", FERRY_CFG_ENUM, LOG_FIELD(format), "logfmt", 0, 0, log_formats, NULL, 0,
     "`logfmt` (key=value) or `json` (one object per line)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section log_section = {
    "log", log_fields, sizeof(struct ferry_log_config), NULL, "Log lines go to standard error."};

#define ROOT_FIELD(f) offsetof(struct ferry_config, f)
static const struct ferry_cfg_field root_fields[] = {
    {"kafka", FERRY_CFG_SECTION, ROOT_FIELD(kafka), NULL, 0, 0, NULL, &kafka_section, 0, NULL},
    {"server", FERRY_CFG_SECTION, ROOT_FIELD(server), NULL, 0, 0, NULL, &server_section, 0, NULL},
    {"log", FERRY_CFG_SECTION, ROOT_FIELD(log), NULL, 0, 0, NULL, &log_section, 0, NULL},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_config_root = {"", root_fields, sizeof(struct ferry_config),
                                                    NULL, NULL};

/* ---- checks that span more than one value ---- */

/* An empty kafka.brokers (often `${env:KAFKA:-}` with the variable unset) would run with no
 * bootstrap servers at all: only a key left out starts the embedded cluster. */
static void check_kafka(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_kafka_config *k = obj;
    char ipath[256];

    if (!k->brokers || k->brokers[strspn(k->brokers, " \t\r\n")])
        return;
    snprintf(ipath, sizeof(ipath), "%s.brokers", path);
    ferry_config_error(cfg, ipath,
                       "expected host:port[,host:port...], got an empty value: leave the key out "
                       "for the embedded cluster");
}

/* The dev cluster creates these topics itself, so a name Kafka refuses is caught here rather
 * than when the cluster starts. */
static void check_dev(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_kafka_dev_config *dev = obj;
    char ipath[256], err[256];

    for (size_t i = 0; i < dev->topics.count; i++) {
        const char *t = dev->topics.items[i], *colon = strrchr(t, ':');
        int64_t n;
        snprintf(ipath, sizeof(ipath), "%s.topics[%zu]", path, i);
        if (!colon || colon == t || ferry_int_parse(colon + 1, &n) || n < 1 || n > 10000)
            ferry_config_error(cfg, ipath, "expected name:partitions like 'orders:8', got '%s'", t);
        else if (ferry_topic_name_check(t, (size_t)(colon - t), err, sizeof(err)))
            ferry_config_error(cfg, ipath, "%s", err);
    }
}

/* Kafka checks a group.instance.id as it checks a topic name; routes add "-<route>". */
static void check_instance(struct ferry_config *cfg, const char *instance, const char *ipath)
{
    if (!instance)
        return;
    if (!ferry_topic_name_valid(instance, strlen(instance)))
        ferry_config_error(cfg, ipath,
                           "'%s' is not a name Kafka accepts in group.instance.id: use 1 to "
                           "%d of A-Z, a-z, 0-9, '.', '_' and '-'",
                           instance, SERVER_INSTANCE_MAX);
    else if (strlen(instance) > SERVER_INSTANCE_MAX)
        ferry_config_error(cfg, ipath,
                           "longer than %d characters: group.instance.id, '<instance>-<route>' "
                           "with route names of up to %d, must fit Kafka's %d",
                           SERVER_INSTANCE_MAX, FERRY_CONFIG_NAME_MAX, FERRY_TOPIC_NAME_MAX);
}

/* server.advertised_url: where the other instances of a partitioned table send reads, so it
 * needs a host ("http://" or "http://:8080" would leave them nowhere to go) and must be a URL
 * libcurl takes. */
static void check_advertised_url(struct ferry_config *cfg, const char *url, const char *ipath)
{
    const char *authority = NULL;
    char err[512];

    if (!url)
        return;
    if (strncmp(url, "http://", 7) == 0)
        authority = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        authority = url + 8;
    if (!authority)
        ferry_config_error(cfg, ipath, "expected http://host:port or https://host:port, got '%s'",
                           url);
    else if (!ferry_url_authority_has_host(authority))
        ferry_config_error(cfg, ipath, "expected a host after '%.*s', got '%s'",
                           (int)(authority - url), url, url);
    else if (ferry_url_parses(url, err, sizeof(err)))
        ferry_config_error(cfg, ipath, "%s", err);
}

static void check_server(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_server_config *s = obj;
    char host[256], ipath[256];
    int port;

    snprintf(ipath, sizeof(ipath), "%s.listen", path);
    if (s->listen && ferry_hostport_parse(s->listen, host, sizeof(host), &port))
        ferry_config_error(cfg, ipath, "expected host:port like 127.0.0.1:8080, got '%s'",
                           s->listen);
    /* "" would put the stores under /tables: a directory is named, or the key left out */
    snprintf(ipath, sizeof(ipath), "%s.data_dir", path);
    if (s->data_dir && !*s->data_dir)
        ferry_config_error(cfg, ipath, "expected a directory, got an empty value");
    snprintf(ipath, sizeof(ipath), "%s.instance", path);
    check_instance(cfg, s->instance, ipath);
    snprintf(ipath, sizeof(ipath), "%s.advertised_url", path);
    check_advertised_url(cfg, s->advertised_url, ipath);
}

void ferry_config_check_file(struct ferry_config *cfg, const char *file, const char *path)
{
    char why[512];
    FILE *f;

    if (!file)
        return;
    f = ferry_file_open_regular(file, why, sizeof(why));
    if (!f) {
        ferry_config_error(cfg, path, "%s", why);
        return;
    }
    fclose(f);
}

static void check_tls(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_server_tls_config *t = obj;
    char ipath[256];

    snprintf(ipath, sizeof(ipath), "%s.%s", path, t->cert_file ? "key_file" : "cert_file");
    if (!t->cert_file != !t->key_file)
        ferry_config_error(cfg, ipath, "missing, TLS needs both cert_file and key_file");
    snprintf(ipath, sizeof(ipath), "%s.cert_file", path);
    ferry_config_check_file(cfg, t->cert_file, ipath);
    snprintf(ipath, sizeof(ipath), "%s.key_file", path);
    ferry_config_check_file(cfg, t->key_file, ipath);
}

/* ---- names ---- */

static int name_chars_valid(const char *name)
{
    if (!*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return 0;
    return 1;
}

/* What keeps a name from being one. A table named ".." would keep its store in data_dir
 * itself, and "." in data_dir/tables. */
enum name_problem { NAME_OK, NAME_CHARS, NAME_DOTS, NAME_LONG };

static enum name_problem name_problem(const char *name)
{
    if (!name_chars_valid(name))
        return NAME_CHARS;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return NAME_DOTS;
    return strlen(name) > FERRY_CONFIG_NAME_MAX ? NAME_LONG : NAME_OK;
}

int ferry_config_name_valid(const char *name)
{
    return name_problem(name) == NAME_OK;
}

int ferry_config_name_check(const char *name, char *why, size_t why_size)
{
    enum name_problem problem = name_problem(name);

    if (problem == NAME_CHARS)
        snprintf(why, why_size, "expected letters, digits, '.', '_' or '-', got '%s'", name);
    else if (problem == NAME_DOTS)
        snprintf(why, why_size, "'%s' is not a name: paths and URLs read it as a directory", name);
    else if (problem == NAME_LONG)
        snprintf(why, why_size, "%zu characters long, at most %d are allowed", strlen(name),
                 FERRY_CONFIG_NAME_MAX);
    return problem == NAME_OK ? 0 : -1;
}

void ferry_config_check_name(struct ferry_config *cfg, const char *name, const char *path)
{
    char fpath[256], why[256];

    snprintf(fpath, sizeof(fpath), "%s.name", path);
    if (name && ferry_config_name_check(name, why, sizeof(why)))
        ferry_config_error(cfg, fpath, "%s", why);
}

/* ---- lines and errors ---- */

/* FNV-1a: short keys, no adversary worth a keyed hash (the config is the operator's own). */
static size_t path_hash(const char *path)
{
    uint64_t h = 14695981039346656037ULL;

    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    return (size_t)h;
}

/* Chains note i into its bucket, ahead of the notes made before it. */
static void index_note(struct ferry_config_private *p, size_t i)
{
    size_t *head = &p->buckets[path_hash(p->lines[i].path) % p->alines];

    p->lines[i].next = *head;
    *head = i + 1;
}

/* Doubles the room for notes and rebuilds the index with one bucket per note it has room for.
 * Returns 0, or -1 with nothing changed. */
static int grow_notes(struct ferry_config_private *p)
{
    size_t n = p->alines ? p->alines * 2 : 64;
    struct line_note *l = realloc(p->lines, n * sizeof(*l));
    size_t *b = calloc(n, sizeof(*b));

    if (l)
        p->lines = l;
    if (!l || !b) {
        free(b);
        return -1;
    }
    free(p->buckets);
    p->buckets = b;
    p->alines = n;
    for (size_t i = 0; i < p->nlines; i++)
        index_note(p, i);
    return 0;
}

void ferry_config_note_line(struct ferry_config *cfg, const char *path, int line, int has_value)
{
    struct ferry_config_private *p = cfg->priv;
    struct line_note *note;

    if (p->nlines == p->alines && grow_notes(p))
        return;
    note = &p->lines[p->nlines];
    note->path = strdup(path);
    note->line = line;
    note->has_value = has_value;
    if (!note->path)
        return;
    index_note(p, p->nlines++);
}

/* The line of path's last note, or 0; with valued, 0 also when it was written with no value. */
static int noted_line(const struct ferry_config *cfg, const char *path, int valued)
{
    const struct ferry_config_private *p = cfg->priv;
    const struct line_note *note;

    if (!p->alines)
        return 0;
    for (size_t i = p->buckets[path_hash(path) % p->alines]; i; i = note->next) {
        note = &p->lines[i - 1];
        if (strcmp(note->path, path) == 0)
            return valued && !note->has_value ? 0 : note->line;
    }
    return 0;
}

int ferry_config_line(const struct ferry_config *cfg, const char *path)
{
    return noted_line(cfg, path, 1);
}

/* The line of path, or of its nearest parent that was written. */
static int nearest_line(const struct ferry_config *cfg, const char *path)
{
    char buf[256];
    int line;

    snprintf(buf, sizeof(buf), "%s", path);
    for (;;) {
        char *cut;
        line = noted_line(cfg, buf, 0);
        if (line)
            return line;
        cut = strrchr(buf, '.');
        if (!cut)
            cut = strrchr(buf, '[');
        if (!cut)
            return 0;
        *cut = '\0';
    }
}

/* Counts an error that is not kept, so that a config never looks valid for want of room. */
static void note_dropped(struct ferry_config_private *p)
{
    p->dropped++;
    snprintf(p->dropped_line, sizeof(p->dropped_line), "config: %zu more error(s) not shown",
             p->dropped);
}

static void add_error(struct ferry_config *cfg, int line, const char *msg)
{
    struct ferry_config_private *p = cfg->priv;
    char full[CONFIG_MESSAGE_MAX + 300];

    if (p->nerrors == CONFIG_ERRORS_MAX) {
        note_dropped(p);
        return;
    }
    if (line)
        snprintf(full, sizeof(full), "%s (%s:%d)", msg, cfg->path, line);
    else
        snprintf(full, sizeof(full), "%s (%s)", msg, cfg->path);
    p->errors[p->nerrors] = strdup(full);
    if (p->errors[p->nerrors])
        p->nerrors++;
    else
        note_dropped(p);
}

void ferry_config_error_line(struct ferry_config *cfg, int line, const char *fmt, ...)
{
    char msg[CONFIG_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    add_error(cfg, line, msg);
}

void ferry_config_error(struct ferry_config *cfg, const char *path, const char *fmt, ...)
{
    char what[CONFIG_MESSAGE_MAX], msg[CONFIG_MESSAGE_MAX + 300];
    va_list ap;

    if (cfg->priv->nerrors == CONFIG_ERRORS_MAX) {
        note_dropped(cfg->priv);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof(msg), "config: %s: %s", path, what);
    add_error(cfg, nearest_line(cfg, path), msg);
}

size_t ferry_config_error_count(const struct ferry_config *cfg)
{
    return cfg->priv->nerrors + (cfg->priv->dropped ? 1 : 0);
}

const char *ferry_config_error_at(const struct ferry_config *cfg, size_t i)
{
    const struct ferry_config_private *p = cfg->priv;

    if (i < p->nerrors)
        return p->errors[i];
    return i == p->nerrors && p->dropped ? p->dropped_line : NULL;
}

size_t ferry_config_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];

    if (la >= 63 || lb >= 63)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* ---- ${env:NAME} and ${file:PATH} ---- */

/* Expands one ${env:...} whose inside (after "env:") is spec; returns 0 or -1. */
static int expand_env(const char *spec, size_t len, struct ferry_buf *out, char *errstr,
                      size_t errstr_size)
{
    char name[ENV_NAME_MAX];
    const char *fallback = NULL, *dash = NULL, *value;
    size_t nlen = len, flen = 0;

    for (size_t i = 0; i + 1 < len; i++) {
        if (spec[i] == ':' && spec[i + 1] == '-') {
            dash = spec + i;
            break;
        }
    }
    if (dash) {
        nlen = (size_t)(dash - spec);
        fallback = dash + 2;
        flen = len - nlen - 2;
        if (memmem(fallback, flen, "${", 2)) {
            /* the fallback ends at the first '}', so a reference in it would come out cut */
            snprintf(errstr, errstr_size, "a ${env:...} fallback cannot hold another ${...}");
            return -1;
        }
    }
    if (nlen == 0 || nlen >= sizeof(name)) {
        snprintf(errstr, errstr_size, "expected ${env:NAME} with a variable name");
        return -1;
    }
    memcpy(name, spec, nlen);
    name[nlen] = '\0';
    value = getenv(name);
    if (value)
        return ferry_buf_adds(out, value);
    if (fallback)
        return ferry_buf_add(out, fallback, flen);
    snprintf(errstr, errstr_size, "environment variable '%s' is not set", name);
    return -1;
}

/* Reads at most CONFIG_SECRET_FILE_MAX bytes of the regular file path into data (room for one
 * more byte); returns how many, or -1 with errstr. Opened without blocking, so that a FIFO or
 * a terminal named by mistake cannot hang the load. */
static ssize_t read_secret(const char *path, char *data, char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    ssize_t n = -1;

    if (fd < 0) {
        snprintf(errstr, errstr_size, "${file:%s}: cannot open it: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        snprintf(errstr, errstr_size, "${file:%s}: not a regular file", path);
    else if (st.st_size > CONFIG_SECRET_FILE_MAX)
        snprintf(errstr, errstr_size, "${file:%s}: longer than %d bytes", path,
                 CONFIG_SECRET_FILE_MAX);
    else if ((n = read(fd, data, CONFIG_SECRET_FILE_MAX + 1)) < 0)
        snprintf(errstr, errstr_size, "${file:%s}: cannot read it: %s", path, strerror(errno));
    close(fd);
    return n;
}

/* Expands one ${file:PATH}: the file's contents without trailing white space (a final newline,
 * as editors and `echo` write it), as ingest.auth.keys[].key_file reads a key. */
static int expand_file(const char *spec, size_t len, struct ferry_buf *out, char *errstr,
                       size_t errstr_size)
{
    char path[CONFIG_FILE_PATH_MAX], *data;
    ssize_t n;
    int result = -1;

    if (len == 0 || len >= sizeof(path)) {
        snprintf(errstr, errstr_size, "expected ${file:PATH} with a path");
        return -1;
    }
    memcpy(path, spec, len);
    path[len] = '\0';
    data = malloc(CONFIG_SECRET_FILE_MAX + 1);
    if (!data) {
        snprintf(errstr, errstr_size, "${file:%s}: out of memory", path);
        return -1;
    }
    n = read_secret(path, data, errstr, errstr_size);
    if (n > CONFIG_SECRET_FILE_MAX)
        snprintf(errstr, errstr_size, "${file:%s}: longer than %d bytes", path,
                 CONFIG_SECRET_FILE_MAX);
    else if (n >= 0) {
        while (n > 0 && isspace((unsigned char)data[n - 1]))
            n--;
        result = ferry_buf_add(out, data, (size_t)n);
    }
    explicit_bzero(data, CONFIG_SECRET_FILE_MAX + 1);
    free(data);
    return result;
}

/* The next ${env: or ${file: in p, or NULL; *file says which. */
static const char *next_reference(const char *p, int *file)
{
    const char *env = strstr(p, "${env:"), *f = strstr(p, "${file:");

    *file = f && (!env || f < env);
    return *file ? f : env;
}

int ferry_config_expand(const char *text, struct ferry_buf *out, char *errstr, size_t errstr_size)
{
    const char *p = text;
    int result = 0, file;

    if (errstr_size)
        errstr[0] = '\0'; /* tells a full buffer from an error expand_* described */
    while (*p && !result) {
        const char *start = next_reference(p, &file), *spec, *end;
        if (!start) {
            result = ferry_buf_adds(out, p);
            break;
        }
        spec = start + (file ? 7 : 6);
        end = strchr(start, '}');
        if (!end) {
            snprintf(errstr, errstr_size, "unterminated ${%s:...}", file ? "file" : "env");
            return -1;
        }
        result = ferry_buf_add(out, p, (size_t)(start - p));
        if (!result && file)
            result = expand_file(spec, (size_t)(end - spec), out, errstr, errstr_size);
        else if (!result)
            result = expand_env(spec, (size_t)(end - spec), out, errstr, errstr_size);
        p = end + 1;
    }
    if (result && !*errstr)
        snprintf(errstr, errstr_size, "value is longer than %zu bytes", out->cap);
    return result;
}

/* ---- lifecycle ---- */

static void free_section(const struct ferry_cfg_section *sec, void *obj);

static void free_field(const struct ferry_cfg_field *f, void *dst)
{
    if (f->kind == FERRY_CFG_STRING) {
        free(*(char **)dst);
    } else if (f->kind == FERRY_CFG_STRINGS) {
        struct ferry_cfg_strings *s = dst;
        for (size_t i = 0; i < s->count; i++)
            free(s->items[i]);
        free(s->items);
    } else if (f->kind == FERRY_CFG_MAP) {
        struct ferry_cfg_map *m = dst;
        for (size_t i = 0; i < m->count; i++) {
            free(m->items[i].key);
            free(m->items[i].value);
        }
        free(m->items);
    } else if (f->kind == FERRY_CFG_SECTION) {
        free_section(f->sub, dst);
    } else if (f->kind == FERRY_CFG_LIST) {
        struct ferry_cfg_list *l = dst;
        for (size_t i = 0; i < l->count; i++)
            free_section(f->sub, (char *)l->items + i * f->sub->size);
        free(l->items);
    }
}

static void free_section(const struct ferry_cfg_section *sec, void *obj)
{
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++)
        free_field(f, (char *)obj + f->offset);
}

void ferry_config_destroy(struct ferry_config *cfg)
{
    struct ferry_config_private *p;

    if (!cfg)
        return;
    p = cfg->priv;
    free_section(&ferry_config_root, cfg);
    if (p) {
        for (int i = 0; ferry_jobs[i]; i++) {
            if (p->jobs[i])
                free_section(ferry_jobs[i]->config, p->jobs[i]);
            free(p->jobs[i]);
        }
        for (size_t i = 0; i < p->nlines; i++)
            free(p->lines[i].path);
        free(p->lines);
        free(p->buckets);
        for (size_t i = 0; i < p->nerrors; i++)
            free(p->errors[i]);
        free(p);
    }
    free(cfg->path);
    free(cfg);
}

static struct ferry_config *config_new(const char *name)
{
    struct ferry_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return NULL;
    cfg->priv = calloc(1, sizeof(*cfg->priv));
    cfg->path = strdup(name);
    if (!cfg->priv || !cfg->path) {
        ferry_config_destroy(cfg);
        return NULL;
    }
    for (int i = 0; ferry_jobs[i]; i++) {
        cfg->priv->jobs[i] = calloc(1, ferry_jobs[i]->config->size);
        if (!cfg->priv->jobs[i]) {
            ferry_config_destroy(cfg);
            return NULL;
        }
    }
    return cfg;
}

void *ferry_config_job(const struct ferry_config *cfg, const struct ferry_job *job)
{
    int i = ferry_job_index(job);
    return i < 0 ? NULL : cfg->priv->jobs[i];
}

size_t ferry_config_parts(const struct ferry_config *cfg, struct ferry_cfg_part *parts)
{
    size_t n = 0;

    parts[n].sec = &ferry_config_root;
    parts[n++].obj = (void *)cfg;
    for (int i = 0; ferry_jobs[i]; i++) {
        parts[n].sec = ferry_jobs[i]->config;
        parts[n++].obj = cfg->priv->jobs[i];
    }
    return n;
}

struct ferry_config *ferry_config_load_string(const char *text, const char *name)
{
    struct ferry_config *cfg = config_new(name);
    if (cfg)
        ferry_config_parse(cfg, text, strlen(text));
    return cfg;
}

/* Reads the whole file into a NUL-terminated buffer; returns NULL with errstr on failure.
 * Opened without blocking, as ${file:...} is: ferry blocks its stop signals from the start,
 * so a FIFO named by mistake would otherwise hang `ferry check` beyond Ctrl-C and SIGTERM. */
static char *read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    char *data = NULL;
    ssize_t n = 0;

    if (fd < 0) {
        snprintf(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
        snprintf(errstr, errstr_size, "'%s' is not a regular file of at most %d bytes", path,
                 CONFIG_FILE_MAX);
        goto out;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        snprintf(errstr, errstr_size, "'%s': out of memory for its %lld bytes", path,
                 (long long)st.st_size);
        goto out;
    }
    for (*len = 0; *len < (size_t)st.st_size; *len += (size_t)n) {
        n = read(fd, data + *len, (size_t)st.st_size - *len);
        if (n <= 0)
            break; /* 0: the file shrank while being read; what was read is the file */
    }
    if (n < 0) {
        snprintf(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
        free(data);
        data = NULL;
    } else
        data[*len] = '\0';
out:
    close(fd);
    return data;
}

struct ferry_config *ferry_config_load(const char *path, char *errstr, size_t errstr_size)
{
    struct ferry_config *cfg;
    size_t len = 0;
    char *text = read_file(path, &len, errstr, errstr_size);

    if (!text)
        return NULL;
    cfg = config_new(path);
    if (cfg)
        ferry_config_parse(cfg, text, len);
    else
        snprintf(errstr, errstr_size, "'%s': out of memory for the configuration", path);
    free(text);
    return cfg;
}
