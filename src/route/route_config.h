/*
 * route_config.h - the `routes:` section of the config: what one route consumes, where it
 * delivers, and how (body, batching, ordering, retries, dead letters, limits).
 *
 * The routes job (route.c) declares ferry_routes_config_section as the top-level keys it owns,
 * so the config loader fills these structs and `ferry check` checks them like every other
 * section; the core never looks inside them.
 */
#ifndef FERRY_ROUTE_CONFIG_H
#define FERRY_ROUTE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/config_schema.h"
#include "route/grpc_config.h"
#include "route/smtp_config.h"
#include "route/target.h"

enum ferry_http_method {
    FERRY_METHOD_POST,
    FERRY_METHOD_PUT,
    FERRY_METHOD_PATCH,
    FERRY_METHOD_DELETE,
    FERRY_METHOD_GET,
};

enum ferry_ordering {
    FERRY_ORDERING_KEY,
    FERRY_ORDERING_PARTITION,
    FERRY_ORDERING_NONE,
};

enum ferry_batch_format {
    FERRY_BATCH_JSON_ARRAY,
    FERRY_BATCH_NDJSON,
    FERRY_BATCH_SEPARATOR,
};

struct ferry_route_tls_config {
    char *ca_file;
    char *cert_file;
    char *key_file;
    int verify;
};

struct ferry_route_target_config {
    char *url;
    int method; /* enum ferry_http_method */
    struct ferry_cfg_map headers;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    struct ferry_route_tls_config tls;
    int forward_headers;
    struct ferry_route_smtp_config smtp; /* an e-mail target instead of url (target.h) */
    struct ferry_route_grpc_config grpc; /* a gRPC target instead of url */
};

struct ferry_route_body_config {
    int mode; /* enum ferry_body_mode */
    char *template;
    char *content_type;
    int missing; /* enum ferry_template_missing */
};

struct ferry_route_batch_config {
    int64_t max_records;
    int64_t max_bytes;
    int64_t linger_ms;
    int format; /* enum ferry_batch_format */
    char *separator;
};

struct ferry_route_status_config {
    struct ferry_cfg_strings success;
    struct ferry_cfg_strings retry;
    struct ferry_cfg_strings dead_letter;
};

/* One retry topic: where records go once their attempts in place ran out, and how long they
 * wait there. */
struct ferry_route_retry_topic_config {
    int64_t delay_ms;
    char *topic; /* NULL: <route>.retry.<n> */
};

struct ferry_route_retry_config {
    int64_t max_attempts;
    int64_t initial_backoff_ms;
    int64_t max_backoff_ms;
    double multiplier;
    struct ferry_cfg_list topics; /* of struct ferry_route_retry_topic_config */
    int64_t max_parked;
};

struct ferry_route_dead_letter_config {
    char *topic;
    int64_t response_max;
};

/* What answers a route writes to its reply topic (`reply.on`). */
enum ferry_reply_on {
    FERRY_REPLY_ON_SUCCESS = 0, /* the target accepted the record */
    FERRY_REPLY_ON_ALL = 1,     /* that, and records dead-lettered after an answer or not */
};

/* The most response headers `reply.headers` may name. */
#define FERRY_REPLY_HEADERS_MAX 32

struct ferry_route_reply_config {
    char *topic; /* NULL: no replies */
    struct ferry_cfg_strings headers;
    int64_t max_body;
    int on; /* enum ferry_reply_on */
};

struct ferry_route_breaker_config {
    int enabled;
    double failure_rate; /* percent */
    int64_t min_requests;
    int64_t window_ms;
    int64_t consecutive_failures;
    int64_t open_ms;
    int64_t max_open_ms;
    int64_t probes;
};

struct ferry_route_adaptive_config {
    int enabled;
    int64_t min;
    double decrease;
    double latency_tolerance;
};

struct ferry_route_limits_config {
    char *max_buffered_records; /* "auto" or a count; see ferry_route_max_buffered_records() */
    int64_t max_buffered_bytes;
};

/* `limits.max_buffered_records: auto`: this many records, or for an unordered route enough
 * for a batch in every request slot, up to FERRY_ROUTE_BUFFERED_AUTO_MAX. */
#define FERRY_ROUTE_BUFFERED_DEFAULT 5000
#define FERRY_ROUTE_BUFFERED_AUTO_MAX 20000
#define FERRY_ROUTE_BUFFERED_MAX 10000000

/* A rate limit: a route's own (`rate_limit:`, where `limiter` may name a shared one too) or
 * one of the shared `limiters:` (where `name` names it). A rate of 0 is no limit. */
struct ferry_route_rate_config {
    char *name;    /* limiters[] only */
    char *limiter; /* rate_limit only: the shared limiter the route also obeys, or NULL */
    double requests_per_second;
    double records_per_second;
    int64_t bytes_per_second;
    int64_t burst_ms;
};

struct ferry_route_confluent_config {
    struct ferry_cfg_strings schema_ids; /* decimal ids; none: no prefix expected */
    int strip;
};

struct ferry_route_validate_config {
    char *json_schema; /* after the config checks: resolved against the config file's directory */
    struct ferry_route_confluent_config confluent;
};

/* The most I/O threads `io_threads: auto` gives a route. */
#define FERRY_ROUTE_IO_THREADS_AUTO 4

struct ferry_route_config {
    char *name;
    struct ferry_cfg_strings topics;
    char *group;
    struct ferry_cfg_map kafka;
    struct ferry_route_target_config target;
    struct ferry_route_body_config body;
    struct ferry_route_batch_config batch;
    int64_t concurrency;
    struct ferry_route_adaptive_config adaptive_concurrency;
    char *io_threads; /* "auto" or a count; see ferry_route_io_threads() */
    int ordering;     /* enum ferry_ordering */
    struct ferry_route_status_config on_status;
    struct ferry_route_retry_config retry;
    struct ferry_route_dead_letter_config dead_letter;
    struct ferry_route_reply_config reply;
    struct ferry_route_breaker_config circuit_breaker;
    struct ferry_route_limits_config limits;
    struct ferry_route_rate_config rate_limit;
    struct ferry_route_validate_config validate;
    int64_t drain_timeout_ms;
};

/* The routes job's part of the config: the `routes:` list and the shared `limiters:`. */
struct ferry_routes_config {
    struct ferry_cfg_list routes;   /* of struct ferry_route_config */
    struct ferry_cfg_list limiters; /* of struct ferry_route_rate_config */
};

/* The table of one entry of `routes:`. */
extern const struct ferry_cfg_section ferry_route_section;

/* The table of one entry of `limiters:`. */
extern const struct ferry_cfg_section ferry_limiter_section;

/* The job's top-level table (the `routes:` key), filled into a struct ferry_routes_config. */
extern const struct ferry_cfg_section ferry_routes_config_section;

/* Nonzero when rc limits anything (one of its rates is set). */
int ferry_route_rate_limited(const struct ferry_route_rate_config *rc);

/* Writes what a rate limit allows into out, e.g. "50 requests/s, 10MiB/s, burst 100ms". */
void ferry_route_rate_describe(const struct ferry_route_rate_config *rc, char *out, size_t size);

/* The shared limiter named name in rc, or NULL. */
const struct ferry_route_rate_config *ferry_routes_limiter(const struct ferry_routes_config *rc,
                                                           const char *name);

/* Checks across routes (unique names, limiters that exist), once the whole file was loaded. */
void ferry_routes_config_check(struct ferry_config *cfg, void *config);

/* Writes one summary line per route for `ferry check`. */
void ferry_routes_config_summary(const void *config, FILE *out);

/* The I/O threads a route's sender runs (0: libcurl runs on the route's worker thread), for a
 * route whose io_threads passed the config checks, when ferry may run on cpus processors.
 * `auto` gives one-record routes one thread per processor, up to FERRY_ROUTE_IO_THREADS_AUTO
 * and the route's concurrency, and batch routes none. (A gRPC route over TLS multiplexes its
 * calls on one connection per I/O thread.) */
int ferry_route_io_threads(const struct ferry_route_config *r, long cpus);

/* The records a route may hold, for a route whose limits passed the config checks. `auto`
 * gives FERRY_ROUTE_BUFFERED_DEFAULT, or for `ordering: none` concurrency times
 * batch.max_records when that is more, up to FERRY_ROUTE_BUFFERED_AUTO_MAX: an unordered
 * batch route can fill every slot, and idled with fewer records in hand. Ordered routes keep
 * the default: their records wait behind busy keys or partitions, and more of them in hand
 * made each one slower (bench/README.md). */
int64_t ferry_route_max_buffered_records(const struct ferry_route_config *r);

/* Fills o from r's validate section; ids must have room for FERRY_VALIDATE_SCHEMA_IDS_MAX
 * (route/validate.h). Returns 1 when the route validates anything, 0 when not, -1 with a message
 * in errstr when a schema id is not a number from 0 to 2^32-1 or there are too many. */
struct ferry_validate_options;
int ferry_route_validate_options(const struct ferry_route_config *r,
                                 struct ferry_validate_options *o, int64_t *ids, char *errstr,
                                 size_t errstr_size);

/* Makes route r's validator into *out, or sets it NULL when the route validates nothing.
 * Returns 0, or -1 with errstr. */
struct ferry_validate;
int ferry_route_validator_new(const struct ferry_route_config *r, struct ferry_validate **out,
                              char *errstr, size_t errstr_size);

/* The kind of r's target (target.h), for a route that passed the config checks. Any thread. */
enum ferry_target_kind ferry_route_target_kind(const struct ferry_route_config *r);

/* Returns retry topic stage (1-based) of r, or NULL when it has fewer. */
const struct ferry_route_retry_topic_config *
ferry_route_retry_stage(const struct ferry_route_config *r, int stage);

/* Writes the consumer group of r into out: its `group`, or ferry-<name>. */
void ferry_route_group(const struct ferry_route_config *r, char *out, size_t size);

/* Writes the name of r's retry topic stage (1-based) into out (size at least
 * FERRY_RETRY_TOPIC_NAME_MAX). Returns 0, or -1 when there is no such stage or the name does
 * not fit. */
int ferry_route_retry_topic_name(const struct ferry_route_config *r, int stage, char *out,
                                 size_t size);

struct ferry_retry_topics; /* retry_topic.h */

/* Fills out with the names of r's retry topics (none when it has none). Returns 0, or -1 when
 * it has more than FERRY_RETRY_STAGES_MAX or a name does not fit (the config check refuses
 * both). */
int ferry_route_retry_topics(const struct ferry_route_config *r, struct ferry_retry_topics *out);

/* The names of enum ferry_http_method, indexed by it. */
extern const char *const ferry_route_methods[];

#endif
