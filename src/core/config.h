/*
 * config.h - ferry's configuration: the loaded values and how to load them.
 *
 * ferry_config_load() reads one YAML file against the tables in config_schema.h, applying
 * defaults and substituting ${env:NAME} and ${file:PATH}. Problems do not stop the load: each
 * becomes a message of the form "config: <key path>: <what> (<file>:<line>)", so `ferry check` can
 * list them all. A loaded config is read-only and may be shared by every thread.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct ferry_job;

struct ferry_cfg_strings {
    char **items;
    size_t count;
};

struct ferry_cfg_kv {
    char *key;
    char *value;
};

struct ferry_cfg_map {
    struct ferry_cfg_kv *items;
    size_t count;
};

struct ferry_cfg_list {
    void *items; /* count structs of the section's size */
    size_t count;
};

struct ferry_kafka_dev_config {
    int64_t brokers;
    struct ferry_cfg_strings topics; /* "name:partitions" */
    char *bootstrap_file;
};

struct ferry_kafka_config {
    char *brokers; /* NULL: start the embedded dev cluster */
    struct ferry_cfg_map properties;
    struct ferry_kafka_dev_config dev;
    int64_t stats_interval_ms;
};

struct ferry_server_tls_config {
    char *cert_file; /* both set: the listener speaks HTTPS */
    char *key_file;
};

struct ferry_server_config {
    char *listen;
    struct ferry_server_tls_config tls;
    int64_t threads;
    int64_t max_connections;
    int64_t connection_memory; /* libmicrohttpd's memory per connection, bytes */
    int64_t max_body_memory;   /* request bodies held at once over all connections, bytes */
    int64_t connection_timeout_ms;
    int64_t shutdown_timeout_ms;
    char *data_dir;
    char *instance;       /* NULL: not set (routes join their groups as dynamic members) */
    char *advertised_url; /* NULL: not set (http://<host name>:<listen port>) */
};

struct ferry_log_config {
    int level;  /* enum ferry_log_level */
    int format; /* enum ferry_log_format */
};

struct ferry_config {
    char *path;
    struct ferry_kafka_config kafka;
    struct ferry_server_config server;
    struct ferry_log_config log;
    struct ferry_config_private *priv; /* lines, errors and the jobs' own sections */
};

/* Loads path. Returns NULL only when the file cannot be read (errstr says why); otherwise a
 * config the caller owns (free with ferry_config_destroy), whose ferry_config_error_count()
 * may be nonzero. */
struct ferry_config *ferry_config_load(const char *path, char *errstr, size_t errstr_size);

/* Loads YAML text as if read from a file named name (for tests). Same result as load. */
struct ferry_config *ferry_config_load_string(const char *text, const char *name);

/* Frees everything the config owns. Accepts NULL and half-loaded configs. */
void ferry_config_destroy(struct ferry_config *cfg);

/* The section of job (its struct ferry_job.config, filled by the loader), or NULL when job is
 * not in ferry_jobs. Owned by cfg. Jobs read their own section through this; the core never
 * looks inside. */
void *ferry_config_job(const struct ferry_config *cfg, const struct ferry_job *job);

/* Number of problems found; ferry_config_error_at(cfg, i) is the i-th message. Past the
 * first 64 (or without memory to keep one), a last message says how many are not shown. */
size_t ferry_config_error_count(const struct ferry_config *cfg);
const char *ferry_config_error_at(const struct ferry_config *cfg, size_t i);

/* Records a problem with the value at key path (e.g. "kafka.properties.acks"), adding the file
 * and line where that key was written (or of its nearest written parent). */
void ferry_config_error(struct ferry_config *cfg, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The longest name of a route, table, webhook, limiter or key. A route's name follows
 * server.instance in its group.instance.id, which Kafka caps at 249 characters. */
#define FERRY_CONFIG_NAME_MAX 64

/* Nonzero when name is a name of 1 to FERRY_CONFIG_NAME_MAX letters, digits, '.', '_' and '-',
 * other than "." and "..": the names of routes, tables, webhooks, limiters and keys, which
 * label metrics and appear in URLs, group ids and (a table's) store directories. */
int ferry_config_name_valid(const char *name);

/* Returns 0 when name is such a name, else -1 with why saying what keeps it from being one
 * ("'..' is not a name: ..."). */
int ferry_config_name_check(const char *name, char *why, size_t why_size);

/* Reports `<path>.name` when name (may be NULL: nothing to check) is not such a name. */
void ferry_config_check_name(struct ferry_config *cfg, const char *name, const char *path);

/* Reports at path a file the config names (a TLS certificate, a CA bundle) that cannot be
 * opened for reading or is not a regular file (core/file.h). NULL file: nothing to check. */
void ferry_config_check_file(struct ferry_config *cfg, const char *file, const char *path);

/* What the plain entries of a list of names and ^regex (core/pattern.h) name. */
enum ferry_config_names {
    FERRY_CONFIG_TOPIC_NAMES, /* names Kafka accepts for a topic */
    FERRY_CONFIG_TABLE_NAMES, /* names of tables (ferry_config_name_valid) */
};

/* Checks such a list at path ("routes[0].topics"): reports each entry that does not compile as
 * ferry_patterns_new would compile it, and each plain entry that is not a name of the kind
 * names says, as an error at "<path>[i]". */
void ferry_config_check_patterns(struct ferry_config *cfg, const struct ferry_cfg_strings *list,
                                 enum ferry_config_names names, const char *path);

/* The 1-based line where path was written, or 0 when it was not written or was written with no
 * value ("key:", which means the same as leaving the key out). */
int ferry_config_line(const struct ferry_config *cfg, const char *path);

/* Substitutes ${env:NAME}, ${env:NAME:-fallback} and ${file:PATH} (the file's contents without
 * trailing white space, at most 64 KiB of a regular file) in text, appending to out; any other
 * ${...} is copied unchanged (templates use it). Returns 0, or -1 with errstr naming the
 * variable or the file. */
int ferry_config_expand(const char *text, struct ferry_buf *out, char *errstr, size_t errstr_size);

/* Writes the configuration reference (Markdown) generated from the tables to out. Returns 0,
 * or -1 when some of it did not fit in out (past its cap, or out of memory). */
int ferry_config_reference(struct ferry_buf *out);

/* The same reference as the man page ferry.yaml(5), in roff. */
int ferry_config_reference_man(struct ferry_buf *out);

#endif
