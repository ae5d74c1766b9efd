/*
 * route_config.c - the table of a route's settings and the checks that span several of them
 * (templates compile, status patterns parse, names are unique), so that `ferry check` finds
 * every mistake a route could hit at start.
 */
#include "route/route_config.h"
#include "route/retry_topic.h"
#include "core/header_value.h"
#include "core/topic_name.h"
#include "core/pattern.h"
#include "core/kafka.h"
#include "core/units.h"
#include "route/backoff.h"
#include "route/body.h"
#include "route/grpc_target.h"
#include "route/header_name.h"
#include "route/sender.h"
#include "route/status.h"
#include "route/target.h"
#include "route/template.h"
#include "route/validate.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_PATH_MAX 256

const char *const ferry_route_methods[] = {"POST", "PUT", "PATCH", "DELETE", "GET", NULL};
static const char *const orderings[] = {"key", "partition", "none", NULL};
static const char *const body_modes[] = {"value", "envelope", "template", "json_template", NULL};
static const char *const body_missing[] = {"error", "null", NULL};
static const char *const batch_formats[] = {"json_array", "ndjson", "separator", NULL};
static const char *const reply_on[] = {"success", "all", NULL};

static void check_route(struct ferry_config *cfg, void *obj, const char *path);

#define TLS_FIELD(f) offsetof(struct ferry_route_tls_config, f)
static const struct ferry_cfg_field tls_fields[] = {
    {"ca_file", FERRY_CFG_STRING, TLS_FIELD(ca_file), NULL, 0, 0, NULL, NULL, 0,
     "CA bundle to verify the target with (default: the system's)."},
    {"cert_file", FERRY_CFG_STRING, TLS_FIELD(cert_file), NULL, 0, 0, NULL, NULL, 0,
     "Client certificate (PEM) for mutual TLS."},
    {"key_file", FERRY_CFG_STRING, TLS_FIELD(key_file), NULL, 0, 0, NULL, NULL, 0,
     "Private key (PEM) of the client certificate."},
    {"verify", FERRY_CFG_BOOL, TLS_FIELD(verify), "true", 0, 0, NULL, NULL, 0,
     "Verify the target's certificate and host name."},
    FERRY_CFG_END,
};
static void check_target_tls(struct ferry_config *cfg, void *obj, const char *path);
static const struct ferry_cfg_section tls_section = {"tls", tls_fields,
                                                     sizeof(struct ferry_route_tls_config),
                                                     check_target_tls, "TLS towards the target."};

#define TARGET_FIELD(f) offsetof(struct ferry_route_target_config, f)
static const struct ferry_cfg_field target_fields[] = {
    {"url", FERRY_CFG_STRING, TARGET_FIELD(url), NULL, 0, 0, NULL, NULL, 0,
     "URL template of an HTTP target, e.g. `http://orders/api/${key}`: `http://` or `https://` "
     "and a host, written out (variables may fill the path and query only); substituted values "
     "are URL-encoded. A target has one of `url`, `smtp` or `grpc`."},
    {"method", FERRY_CFG_ENUM, TARGET_FIELD(method), "POST", 0, 0, ferry_route_methods, NULL, 0,
     "HTTP method."},
    {"headers", FERRY_CFG_MAP, TARGET_FIELD(headers), NULL, 0, 0, NULL, NULL, 0,
     "Request headers; names are HTTP tokens other than Content-Length and Transfer-Encoding, "
     "values are templates (a value with a control byte but HTAB, CR and LF among them, "
     "dead-letters the record)."},
    {"timeout", FERRY_CFG_DURATION, TARGET_FIELD(timeout_ms), "10s", 1, 3600000, NULL, NULL, 0,
     "Time allowed for a whole request; a timeout is retried."},
    {"connect_timeout", FERRY_CFG_DURATION, TARGET_FIELD(connect_timeout_ms), "5s", 1, 600000, NULL,
     NULL, 0, "Time allowed to connect."},
    {"tls", FERRY_CFG_SECTION, TARGET_FIELD(tls), NULL, 0, 0, NULL, &tls_section, 0, NULL},
    {"forward_headers", FERRY_CFG_BOOL, TARGET_FIELD(forward_headers), "false", 0, 0, NULL, NULL, 0,
     "Send the record's headers as request headers (one-record requests only)."},
    {"smtp", FERRY_CFG_SECTION, TARGET_FIELD(smtp), NULL, 0, 0, NULL, &ferry_route_smtp_section, 0,
     NULL},
    {"grpc", FERRY_CFG_SECTION, TARGET_FIELD(grpc), NULL, 0, 0, NULL, &ferry_route_grpc_section, 0,
     NULL},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section target_section = {"target", target_fields,
                                                        sizeof(struct ferry_route_target_config),
                                                        NULL, "Where records are delivered."};

#define BODY_FIELD(f) offsetof(struct ferry_route_body_config, f)
static const struct ferry_cfg_field body_fields[] = {
    {"mode", FERRY_CFG_ENUM, BODY_FIELD(mode), "value", 0, 0, body_modes, NULL, 0,
     "`value`: the record's value as is; `envelope`: a JSON object with topic, partition, "
     "offset, timestamp, key, value and headers; `template`: the `template` below; "
     "`json_template`: the `template` below read as JSON, variables filled as JSON values "
     "(docs/routes.md, Transformation)."},
    {"template", FERRY_CFG_STRING, BODY_FIELD(template), NULL, 0, 0, NULL, NULL, 0,
     "Body template for `mode: template` and `mode: json_template`."},
    {"missing", FERRY_CFG_ENUM, BODY_FIELD(missing), "error", 0, 0, body_missing, NULL, 0,
     "A path or header the record lacks (or its value, for a tombstone) dead-letters it "
     "(`error`) or renders as null (`null`: null in a `json_template`, nothing in a "
     "`template`)."},
    {"content_type", FERRY_CFG_STRING, BODY_FIELD(content_type), NULL, 0, 0, NULL, NULL, 0,
     "Content-Type of value and template bodies (default application/octet-stream; "
     "`json_template`: application/json; JSON envelopes and batches set their own)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section body_section = {
    "body", body_fields, sizeof(struct ferry_route_body_config), NULL,
    "What each record contributes to a request body."};

#define BATCH_FIELD(f) offsetof(struct ferry_route_batch_config, f)
static const struct ferry_cfg_field batch_fields[] = {
    {"max_records", FERRY_CFG_INT, BATCH_FIELD(max_records), "1", 1, 100000, NULL, NULL, 0,
     "Records per request; 1 sends one request per record."},
    {"max_bytes", FERRY_CFG_SIZE, BATCH_FIELD(max_bytes), "1MiB", 1024, 268435456, NULL, NULL, 0,
     "Largest request body a batch may build."},
    {"linger", FERRY_CFG_DURATION, BATCH_FIELD(linger_ms), "10ms", 0, 60000, NULL, NULL, 0,
     "How long a partial batch waits for more records; not while the route's buffers are "
     "full (limits.max_buffered_records or max_buffered_bytes)."},
    {"format", FERRY_CFG_ENUM, BATCH_FIELD(format), "json_array", 0, 0, batch_formats, NULL, 0,
     "How records are framed in a batch body."},
    {"separator", FERRY_CFG_STRING, BATCH_FIELD(separator), "\n", 0, 0, NULL, NULL, 0,
     "Bytes between bodies with `format: separator`."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section batch_section = {
    "batch", batch_fields, sizeof(struct ferry_route_batch_config), NULL,
    "Several records per request. A batch never mixes partitions."};

#define STATUS_FIELD(f) offsetof(struct ferry_route_status_config, f)
static const struct ferry_cfg_field status_fields[] = {
    {"success", FERRY_CFG_STRINGS, STATUS_FIELD(success), NULL, 0, 0, NULL, NULL, 0,
     "Statuses that mean delivered (default 2xx). Codes `404`, ranges `500-504`, classes "
     "`4xx`; the most specific wins."},
    {"retry", FERRY_CFG_STRINGS, STATUS_FIELD(retry), NULL, 0, 0, NULL, NULL, 0,
     "Statuses to retry (default 408, 429, 5xx). Timeouts and connection errors always retry."},
    {"dead_letter", FERRY_CFG_STRINGS, STATUS_FIELD(dead_letter), NULL, 0, 0, NULL, NULL, 0,
     "Statuses that dead-letter at once (default: every other status)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section status_section = {"on_status", status_fields,
                                                        sizeof(struct ferry_route_status_config),
                                                        NULL, "What each HTTP status means."};

#define RETRY_TOPIC_FIELD(f) offsetof(struct ferry_route_retry_topic_config, f)
static const struct ferry_cfg_field retry_topic_fields[] = {
    {"delay", FERRY_CFG_DURATION, RETRY_TOPIC_FIELD(delay_ms), NULL, 0, 604800000, NULL, NULL, 1,
     "How long a record waits on this topic before its next attempts."},
    {"topic", FERRY_CFG_STRING, RETRY_TOPIC_FIELD(topic), NULL, 0, 0, NULL, NULL, 0,
     "The topic's name; default `<route>.retry.<n>`, n counting from 1. Give it as many "
     "partitions as the route's topics (docs/routes.md, Retry topics). Each retry topic belongs "
     "to one stage of one route: not a topic the route reads, not its dead-letter topic, not "
     "another stage's or another route's retry topic."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section retry_topic_section = {
    "topics[]", retry_topic_fields, sizeof(struct ferry_route_retry_topic_config), NULL,
    "One retry topic."};

#define RETRY_FIELD(f) offsetof(struct ferry_route_retry_config, f)
static const struct ferry_cfg_field retry_fields[] = {
    {"max_attempts", FERRY_CFG_INT, RETRY_FIELD(max_attempts), "10", 0, 1000000, NULL, NULL, 0,
     "Attempts before a record is dead-lettered, the first included; 0 means retry forever. "
     "Without a dead-letter topic an exhausted record keeps retrying at max_backoff."},
    {"initial_backoff", FERRY_CFG_DURATION, RETRY_FIELD(initial_backoff_ms), "100ms", 0, 3600000,
     NULL, NULL, 0, "Largest wait before the first retry (full jitter)."},
    {"max_backoff", FERRY_CFG_DURATION, RETRY_FIELD(max_backoff_ms), "30s", 0, 86400000, NULL, NULL,
     0, "Largest wait between two attempts."},
    {"multiplier", FERRY_CFG_DOUBLE, RETRY_FIELD(multiplier), "2", 1, 100, NULL, NULL, 0,
     "Growth of the wait from one retry to the next."},
    {"topics", FERRY_CFG_LIST, RETRY_FIELD(topics), NULL, 0, 0, NULL, &retry_topic_section, 0,
     "Retry topics, non-blocking delayed retries (at most 16): once a record's max_attempts "
     "attempts in place failed with a status worth retrying, it is parked on the next retry "
     "topic and its partition goes on; it comes back after the topic's delay for max_attempts "
     "more. After the last one comes the dead-letter topic."},
    {"max_parked", FERRY_CFG_INT, RETRY_FIELD(max_parked), "100000", 1, 10000000, NULL, NULL, 0,
     "Parked records a route keeps track of under `ordering: key` (about 40 bytes each, plus "
     "the key). Beyond it, a record that would be parked retries in place instead."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section retry_section = {
    "retry", retry_fields, sizeof(struct ferry_route_retry_config), NULL,
    "Exponential backoff with full jitter. A Retry-After header is a floor for the next wait."};

#define ADAPTIVE_FIELD(f) offsetof(struct ferry_route_adaptive_config, f)
static const struct ferry_cfg_field adaptive_fields[] = {
    {"enabled", FERRY_CFG_BOOL, ADAPTIVE_FIELD(enabled), "false", 0, 0, NULL, NULL, 0,
     "Finds the concurrency the target can take, between `min` and the route's `concurrency`."},
    {"min", FERRY_CFG_INT, ADAPTIVE_FIELD(min), "1", 1, 10000, NULL, NULL, 0,
     "The lowest limit, and the first."},
    {"decrease", FERRY_CFG_DOUBLE, ADAPTIVE_FIELD(decrease), "0.9", 0, 1, NULL, NULL, 0,
     "On push-back the limit is multiplied by this (more than 0, less than 1)."},
    {"latency_tolerance", FERRY_CFG_DOUBLE, ADAPTIVE_FIELD(latency_tolerance), "2", 1, 100, NULL,
     NULL, 0,
     "A window whose mean latency passes the baseline times this (more than 1) counts as "
     "push-back."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section adaptive_section = {
    "adaptive_concurrency", adaptive_fields, sizeof(struct ferry_route_adaptive_config), NULL,
    "Adaptive concurrency (AIMD): over windows of about one round trip, the limit grows by one "
    "while the target keeps up with the whole limit in use, and is cut by `decrease` when it "
    "pushes back (429, 503, a timeout, no answer; at once, once per overload) or its latency "
    "rises past `latency_tolerance` times its usual. Growing back to a limit the target "
    "refused waits for 200 answers or 2 s. The current limit is "
    "`ferry_route_concurrency_limit` in /metrics. See docs/routes.md."};

#define BREAKER_FIELD(f) offsetof(struct ferry_route_breaker_config, f)
static const struct ferry_cfg_field breaker_fields[] = {
    {"enabled", FERRY_CFG_BOOL, BREAKER_FIELD(enabled), "false", 0, 0, NULL, NULL, 0,
     "Turns the breaker on."},
    {"failure_rate", FERRY_CFG_DOUBLE, BREAKER_FIELD(failure_rate), "50", 1, 100, NULL, NULL, 0,
     "Opens when this percentage or more of the requests in the window failed..."},
    {"min_requests", FERRY_CFG_INT, BREAKER_FIELD(min_requests), "20", 1, 1000000, NULL, NULL, 0,
     "... and the window holds at least this many requests."},
    {"window", FERRY_CFG_DURATION, BREAKER_FIELD(window_ms), "10s", 100, 3600000, NULL, NULL, 0,
     "The sliding window of that rate (it moves on in tenths)."},
    {"consecutive_failures", FERRY_CFG_INT, BREAKER_FIELD(consecutive_failures), "10", 0, 1000000,
     NULL, NULL, 0,
     "Also opens after this many failed requests in a row, whatever the window says; 0: not "
     "used."},
    {"open", FERRY_CFG_DURATION, BREAKER_FIELD(open_ms), "5s", 10, 3600000, NULL, NULL, 0,
     "How long it stays open the first time before probing; each reopening doubles it."},
    {"max_open", FERRY_CFG_DURATION, BREAKER_FIELD(max_open_ms), "60s", 10, 86400000, NULL, NULL, 0,
     "The longest open period."},
    {"probes", FERRY_CFG_INT, BREAKER_FIELD(probes), "3", 1, 1000, NULL, NULL, 0,
     "Half-open, this many requests go out; all must succeed to close it (fewer, when the route "
     "has nothing else to send), one failure opens it again."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section breaker_section = {
    "circuit_breaker", breaker_fields, sizeof(struct ferry_route_breaker_config), NULL,
    "Stops calling a target in trouble. Failures are the outcomes `on_status` retries (5xx, 408, "
    "429 by default) and requests without an answer; a status that dead-letters the record is "
    "an answer, not a failure. While open the route sends nothing and pauses its partitions; "
    "half-open it consumes again and sends only the probes. Records wait, none is "
    "dead-lettered for it, and a failed probe does not count as one of its record's attempts. "
    "See docs/routes.md."};

#define DLQ_FIELD(f) offsetof(struct ferry_route_dead_letter_config, f)
static const struct ferry_cfg_field dlq_fields[] = {
    {"topic", FERRY_CFG_STRING, DLQ_FIELD(topic), NULL, 0, 0, NULL, NULL, 0,
     "Topic for records that cannot be delivered; see docs/dead-letter.md for its headers."},
    {"response_max", FERRY_CFG_SIZE, DLQ_FIELD(response_max), "1KiB", 0, 65536, NULL, NULL, 0,
     "How much of the target's response body the `ferry.response` header keeps."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section dlq_section = {"dead_letter", dlq_fields,
                                                     sizeof(struct ferry_route_dead_letter_config),
                                                     NULL, "Where undeliverable records go."};

#define REPLY_FIELD(f) offsetof(struct ferry_route_reply_config, f)
static const struct ferry_cfg_field reply_fields[] = {
    {"topic", FERRY_CFG_STRING, REPLY_FIELD(topic), NULL, 0, 0, NULL, NULL, 0,
     "Topic that gets one record per answer, keyed like the record it answers; see "
     "docs/targets.md, Reply topics, for its headers."},
    {"headers", FERRY_CFG_STRINGS, REPLY_FIELD(headers), NULL, 0, 0, NULL, NULL, 0,
     "Response headers copied into the reply's headers under the names given here, e.g. "
     "`[content-type, etag]`; a header the response lacks is left out."},
    {"max_body", FERRY_CFG_SIZE, REPLY_FIELD(max_body), "512KiB", 0, 67108864, NULL, NULL, 0,
     "The most of the response body a reply carries; a longer body is cut and the reply gets "
     "`ferry.truncated: true`. The default fits librdkafka's default `message.max.bytes` "
     "(1000000); raise both together."},
    {"on", FERRY_CFG_ENUM, REPLY_FIELD(on), "success", 0, 0, reply_on, NULL, 0,
     "`success`: a reply for each record the target accepted; `all`: also for each record "
     "dead-lettered (with `ferry.error`), written before its dead letter."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section reply_section = {
    "reply", reply_fields, sizeof(struct ferry_route_reply_config), NULL,
    "Writes each target's answer to a topic before the record counts as finished: the offset "
    "is committed only past records whose reply the broker confirmed."};

#define LIMITS_FIELD(f) offsetof(struct ferry_route_limits_config, f)
static const struct ferry_cfg_field limits_fields[] = {
    {"max_buffered_records", FERRY_CFG_STRING, LIMITS_FIELD(max_buffered_records), "auto", 0, 0,
     NULL, NULL, 0,
     "Records consumed but not finished, 1 to 10000000; beyond it the route pauses its "
     "partitions. `auto`: 5000, or for `ordering: none` concurrency times batch.max_records "
     "when that is more, up to 20000."},
    {"max_buffered_bytes", FERRY_CFG_SIZE, LIMITS_FIELD(max_buffered_bytes), "64MiB", 65536,
     17179869184LL, NULL, NULL, 0, "Bytes of those records; beyond it the route pauses."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section limits_section = {"limits", limits_fields,
                                                        sizeof(struct ferry_route_limits_config),
                                                        NULL, "Bounds on the memory a route uses."};

/* The rates and burst, shared by a route's rate_limit and the shared limiters. */
#define RATE_FIELD(f) offsetof(struct ferry_route_rate_config, f)
/* clang-format off */
#define RATE_FIELDS                                                                                \
    {"requests_per_second", FERRY_CFG_DOUBLE, RATE_FIELD(requests_per_second), NULL, 0,            \
     1000000000, NULL, NULL, 0,                                                                    \
     "Requests started per second, retries included; fractions allowed (`0.5`)."},                 \
    {"records_per_second", FERRY_CFG_DOUBLE, RATE_FIELD(records_per_second), NULL, 0,              \
     1000000000, NULL, NULL, 0, "Records sent per second (a batch counts its records)."},          \
    {"bytes_per_second", FERRY_CFG_SIZE, RATE_FIELD(bytes_per_second), NULL, 0, 1099511627776LL,   \
     NULL, NULL, 0, "Request body bytes sent per second, e.g. `10MiB`."},                          \
    {"burst", FERRY_CFG_DURATION, RATE_FIELD(burst_ms), "100ms", 0, 3600000, NULL, NULL, 0,        \
     "How much unused allowance is saved up, as time at each rate: after a quiet spell up to "     \
     "rate x burst (and at least one) may go at once, so any one-second window sees at most "      \
     "rate x (1s + burst)."}
/* clang-format on */

static void check_rate_limit(struct ferry_config *cfg, void *obj, const char *path);
static void check_limiter(struct ferry_config *cfg, void *obj, const char *path);

static const struct ferry_cfg_field rate_limit_fields[] = {
    RATE_FIELDS,
    {"limiter", FERRY_CFG_STRING, RATE_FIELD(limiter), NULL, 0, 0, NULL, NULL, 0,
     "The name of a shared limiter (`limiters:`) this route obeys too, with the other routes "
     "that name it."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section rate_limit_section = {
    "rate_limit", rate_limit_fields, sizeof(struct ferry_route_rate_config), check_rate_limit,
    "Paces the route's requests with token buckets, each unit its own; a request waits until "
    "every bucket allows it. Records meanwhile wait in the route's buffers, and when those "
    "stay full the route pauses its partitions (see `limits`)."};

static const struct ferry_cfg_field limiter_fields[] = {
    {"name", FERRY_CFG_STRING, RATE_FIELD(name), NULL, 0, 0, NULL, NULL, 1,
     "Unique name, referred to by a route's `rate_limit.limiter`."},
    RATE_FIELDS,
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_limiter_section = {
    "limiters[]", limiter_fields, sizeof(struct ferry_route_rate_config), check_limiter,
    "Rate limits shared by every route that names them (`rate_limit: {limiter: NAME}`), for "
    "routes that call the same API: together they stay within it."};
#define CONFLUENT_FIELD(f) offsetof(struct ferry_route_confluent_config, f)
static const struct ferry_cfg_field confluent_fields[] = {
    {"schema_ids", FERRY_CFG_STRINGS, CONFLUENT_FIELD(schema_ids), NULL, 0, 0, NULL, NULL, 0,
     "Schema ids a record's prefix may carry (decimal). Set, every record must start with "
     "magic byte 0 and one of these ids as 4 big-endian bytes."},
    {"strip", FERRY_CFG_BOOL, CONFLUENT_FIELD(strip), "false", 0, 0, NULL, NULL, 0,
     "Send the value without its 5-byte prefix (the dead-letter topic still gets it whole)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section confluent_section = {
    "confluent", confluent_fields, sizeof(struct ferry_route_confluent_config), NULL,
    "Records in Confluent wire format: a magic byte 0 and a 4-byte schema id before the data."};

#define VALIDATE_FIELD(f) offsetof(struct ferry_route_validate_config, f)
static const struct ferry_cfg_field validate_fields[] = {
    {"json_schema", FERRY_CFG_STRING, VALIDATE_FIELD(json_schema), NULL, 0, 0, NULL, NULL, 0,
     "JSON Schema file (a Draft 7 subset, see docs/routes.md) each value must match; a relative "
     "path is read from the config file's directory."},
    {"confluent", FERRY_CFG_SECTION, VALIDATE_FIELD(confluent), NULL, 0, 0, NULL,
     &confluent_section, 0, NULL},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section validate_section = {
    "validate", validate_fields, sizeof(struct ferry_route_validate_config), NULL,
    "Checks before sending: a record that fails is dead-lettered with the reason and never "
    "sent. Needs `dead_letter.topic`."};

#define ROUTE_FIELD(f) offsetof(struct ferry_route_config, f)
static const struct ferry_cfg_field route_fields[] = {
    {"name", FERRY_CFG_STRING, ROUTE_FIELD(name), NULL, 0, 0, NULL, NULL, 1,
     "Unique name: letters, digits, `.`, `_`, `-`. Used in logs, metrics and the group."},
    {"topics", FERRY_CFG_STRINGS, ROUTE_FIELD(topics), NULL, 0, 0, NULL, NULL, 1,
     "Topics to consume; a name starting with `^` is a POSIX extended regular expression, "
     "which must compile (`ferry check` tries it). A single name, `topics: orders`, is a list "
     "of one."},
    {"group", FERRY_CFG_STRING, ROUTE_FIELD(group), NULL, 0, 0, NULL, NULL, 0,
     "Consumer group (default `ferry-<name>`); two routes may not share one."},
    {"kafka", FERRY_CFG_MAP, ROUTE_FIELD(kafka), NULL, 0, 0, NULL, NULL, 0,
     "librdkafka properties for this route's consumer, over `kafka.properties`."},
    {"target", FERRY_CFG_SECTION, ROUTE_FIELD(target), NULL, 0, 0, NULL, &target_section, 1, NULL},
    {"body", FERRY_CFG_SECTION, ROUTE_FIELD(body), NULL, 0, 0, NULL, &body_section, 0, NULL},
    {"batch", FERRY_CFG_SECTION, ROUTE_FIELD(batch), NULL, 0, 0, NULL, &batch_section, 0, NULL},
    {"concurrency", FERRY_CFG_INT, ROUTE_FIELD(concurrency), "64", 1, 10000, NULL, NULL, 0,
     "Requests in flight at once for this route (the most, with `adaptive_concurrency`)."},
    {"adaptive_concurrency", FERRY_CFG_SECTION, ROUTE_FIELD(adaptive_concurrency), NULL, 0, 0, NULL,
     &adaptive_section, 0, NULL},
    {"io_threads", FERRY_CFG_STRING, ROUTE_FIELD(io_threads), "auto", 0, 0, NULL, NULL, 0,
     "Threads that run this route's HTTP transfers beside its worker thread, 0 to 64; 0 runs "
     "them on the worker. `auto`: one per processor ferry may run on, up to 4, for one-record "
     "requests; 0 for batches."},
    {"ordering", FERRY_CFG_ENUM, ROUTE_FIELD(ordering), "key", 0, 0, orderings, NULL, 0,
     "`key`: records with the same key are never in flight together and go in offset order; "
     "`partition`: one request in flight per partition; `none`: no order."},
    {"on_status", FERRY_CFG_SECTION, ROUTE_FIELD(on_status), NULL, 0, 0, NULL, &status_section, 0,
     NULL},
    {"retry", FERRY_CFG_SECTION, ROUTE_FIELD(retry), NULL, 0, 0, NULL, &retry_section, 0, NULL},
    {"dead_letter", FERRY_CFG_SECTION, ROUTE_FIELD(dead_letter), NULL, 0, 0, NULL, &dlq_section, 0,
     NULL},
    {"reply", FERRY_CFG_SECTION, ROUTE_FIELD(reply), NULL, 0, 0, NULL, &reply_section, 0, NULL},
    {"circuit_breaker", FERRY_CFG_SECTION, ROUTE_FIELD(circuit_breaker), NULL, 0, 0, NULL,
     &breaker_section, 0, NULL},
    {"limits", FERRY_CFG_SECTION, ROUTE_FIELD(limits), NULL, 0, 0, NULL, &limits_section, 0, NULL},
    {"rate_limit", FERRY_CFG_SECTION, ROUTE_FIELD(rate_limit), NULL, 0, 0, NULL,
     &rate_limit_section, 0, NULL},
    {"validate", FERRY_CFG_SECTION, ROUTE_FIELD(validate), NULL, 0, 0, NULL, &validate_section, 0,
     NULL},
    {"drain_timeout", FERRY_CFG_DURATION, ROUTE_FIELD(drain_timeout_ms), "10s", 0, 3600000, NULL,
     NULL, 0,
     "On rebalance or shutdown, how long in-flight requests may take before they are "
     "abandoned (they are redelivered later, never lost)."},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_route_section = {
    "routes[]", route_fields, sizeof(struct ferry_route_config), check_route,
    "Each route consumes topics with a consumer group and delivers records to an HTTP "
    "target, at least once: offsets are committed only past records that were delivered or "
    "dead-lettered."};

/* ---- checks ---- */

/* The files of target.tls are read by libcurl for every request: one that cannot be read would
 * fail each of them. */
static void check_target_tls(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_route_tls_config *t = obj;
    const char *const files[][2] = {
        {"ca_file", t->ca_file}, {"cert_file", t->cert_file}, {"key_file", t->key_file}};
    char fpath[ROUTE_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.%s", path, t->cert_file ? "key_file" : "cert_file");
    if (!t->cert_file != !t->key_file)
        ferry_config_error(cfg, fpath, "missing, mutual TLS needs both cert_file and key_file");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(fpath, sizeof(fpath), "%s.%s", path, files[i][0]);
        ferry_config_check_file(cfg, files[i][1], fpath);
    }
}

/* A configured header's name: a token, and not one that frames the body, which libcurl would
 * then send instead of the body's real length or encoding, cutting the request short. */
static void check_header_name(struct ferry_config *cfg, const char *name, const char *fpath)
{
    if (!ferry_header_name_is_token(name))
        ferry_config_error(
            cfg, fpath, "'%s' is not a header name (letters, digits and !#$%%&'*+-.^_`|~)", name);
    else if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0)
        ferry_config_error(cfg, fpath, "'%s' is set by ferry from the body", name);
}

static void check_templates(struct ferry_config *cfg, const struct ferry_route_config *r,
                            const char *path)
{
    char fpath[ROUTE_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.target.url", path);
    ferry_template_config_check(cfg, r->target.url, FERRY_TEMPLATE_URL, fpath);
    for (size_t i = 0; i < r->target.headers.count; i++) {
        snprintf(fpath, sizeof(fpath), "%s.target.headers.%s", path,
                 r->target.headers.items[i].key);
        check_header_name(cfg, r->target.headers.items[i].key, fpath);
        ferry_template_config_check(cfg, r->target.headers.items[i].value, FERRY_TEMPLATE_HEADER,
                                    fpath);
    }
    snprintf(fpath, sizeof(fpath), "%s.body.content_type", path);
    if (r->body.content_type && !ferry_header_value_valid(r->body.content_type))
        ferry_config_error(cfg, fpath,
                           "holds a control byte, which a header cannot carry (CR and LF would "
                           "start a header line of their own)");
    snprintf(fpath, sizeof(fpath), "%s.body.template", path);
    if (r->body.mode >= FERRY_BODY_TEMPLATE && !r->body.template)
        ferry_config_error(cfg, fpath, "missing, `mode: %s` needs a template",
                           body_modes[r->body.mode]);
    ferry_template_config_check(cfg, r->body.template, ferry_body_template_mode(r->body.mode),
                                fpath);
}

static void check_status_list(struct ferry_config *cfg, const struct ferry_cfg_strings *list,
                              enum ferry_outcome outcome, const char *path)
{
    char err[256], fpath[ROUTE_PATH_MAX];
    ferry_status_rules *rules = ferry_status_rules_new();

    for (size_t i = 0; rules && i < list->count; i++) {
        snprintf(fpath, sizeof(fpath), "%s[%zu]", path, i);
        if (ferry_status_rules_set(rules, outcome, list->items[i], err, sizeof(err)))
            ferry_config_error(cfg, fpath, "%s", err);
    }
    ferry_status_rules_destroy(rules);
}

static void check_policies(struct ferry_config *cfg, const struct ferry_route_config *r,
                           const char *path)
{
    char fpath[ROUTE_PATH_MAX], err[256];
    struct ferry_backoff_policy p = {(int)r->retry.max_attempts, r->retry.initial_backoff_ms,
                                     r->retry.max_backoff_ms, r->retry.multiplier};

    snprintf(fpath, sizeof(fpath), "%s.on_status.success", path);
    check_status_list(cfg, &r->on_status.success, FERRY_OUTCOME_SUCCESS, fpath);
    snprintf(fpath, sizeof(fpath), "%s.on_status.retry", path);
    check_status_list(cfg, &r->on_status.retry, FERRY_OUTCOME_RETRY, fpath);
    snprintf(fpath, sizeof(fpath), "%s.on_status.dead_letter", path);
    check_status_list(cfg, &r->on_status.dead_letter, FERRY_OUTCOME_DEAD_LETTER, fpath);
    snprintf(fpath, sizeof(fpath), "%s.retry", path);
    if (ferry_backoff_policy_check(&p, err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
}

const struct ferry_route_retry_topic_config *
ferry_route_retry_stage(const struct ferry_route_config *r, int stage)
{
    const struct ferry_route_retry_topic_config *t = r->retry.topics.items;

    if (stage < 1 || (size_t)stage > r->retry.topics.count)
        return NULL;
    return &t[stage - 1];
}

void ferry_route_group(const struct ferry_route_config *r, char *out, size_t size)
{
    if (r->group)
        snprintf(out, size, "%s", r->group);
    else
        snprintf(out, size, "ferry-%s", r->name);
}

int ferry_route_retry_topic_name(const struct ferry_route_config *r, int stage, char *out,
                                 size_t size)
{
    const struct ferry_route_retry_topic_config *t = ferry_route_retry_stage(r, stage);

    if (!t)
        return -1;
    return ferry_retry_topic_name(r->name, stage, t->topic, out, size);
}

int ferry_route_retry_topics(const struct ferry_route_config *r, struct ferry_retry_topics *out)
{
    out->count = 0;
    if (r->retry.topics.count > FERRY_RETRY_STAGES_MAX)
        return -1;
    for (int stage = 1; stage <= (int)r->retry.topics.count; stage++) {
        if (ferry_route_retry_topic_name(r, stage, out->names[stage - 1],
                                         sizeof(out->names[stage - 1])))
            return -1;
        out->count = stage;
    }
    return 0;
}

/* Nonzero when a route's own kafka properties choose a cooperative assignor. */
static int cooperative_assignor(const struct ferry_cfg_map *props)
{
    for (size_t i = 0; i < props->count; i++)
        if (strcmp(props->items[i].key, "partition.assignment.strategy") == 0)
            return strstr(props->items[i].value, "cooperative") != NULL;
    return 0;
}

/* Retry topics: a bounded number of valid names, none of them a topic the route reads or its
 * dead-letter topic, attempts in place that come to an end, and, under key order, an eager
 * assignor. */
static void check_retry_topics(struct ferry_config *cfg, const struct ferry_route_config *r,
                               const char *path)
{
    char fpath[ROUTE_PATH_MAX], name[FERRY_RETRY_TOPIC_NAME_MAX], err[512];
    size_t n = r->retry.topics.count;

    snprintf(fpath, sizeof(fpath), "%s.retry.topics", path);
    if (n > FERRY_RETRY_STAGES_MAX)
        ferry_config_error(cfg, fpath, "at most %d retry topics", FERRY_RETRY_STAGES_MAX);
    if (n && r->retry.max_attempts == 0)
        ferry_config_error(cfg, fpath,
                           "needs retry.max_attempts above 0: with 0 a record retries in place "
                           "forever and never reaches a retry topic");
    for (int stage = 1; n <= FERRY_RETRY_STAGES_MAX && stage <= (int)n; stage++) {
        snprintf(fpath, sizeof(fpath), "%s.retry.topics[%d].topic", path, stage - 1);
        if (ferry_route_retry_topic_name(r, stage, name, sizeof(name)) ||
            ferry_topic_name_check(name, strlen(name), err, sizeof(err))) {
            ferry_config_error(cfg, fpath, "not a valid topic name: %s", name);
            continue;
        }
        for (size_t i = 0; i < r->topics.count; i++)
            if (strcmp(r->topics.items[i], name) == 0)
                ferry_config_error(cfg, fpath, "'%s' is also one of the route's topics", name);
        if (r->dead_letter.topic && strcmp(r->dead_letter.topic, name) == 0)
            ferry_config_error(cfg, fpath, "'%s' is also the dead-letter topic", name);
        for (int before = 1; before < stage; before++) {
            char other[FERRY_RETRY_TOPIC_NAME_MAX];
            if (ferry_route_retry_topic_name(r, before, other, sizeof(other)) == 0 &&
                strcmp(other, name) == 0)
                ferry_config_error(cfg, fpath,
                                   "'%s' is also retry.topics[%d]: a record there would be "
                                   "parked there again, never dead-lettered",
                                   name, before - 1);
        }
    }
    /* parking.c rebuilds the parked keys from the committed offsets at every assignment, which
     * is right only when every assignment starts over from them */
    snprintf(fpath, sizeof(fpath), "%s.kafka.partition.assignment.strategy", path);
    if (n && r->ordering == FERRY_ORDERING_KEY && cooperative_assignor(&r->kafka))
        ferry_config_error(cfg, fpath,
                           "a route with retry topics and ordering: key needs an eager assignor "
                           "(range, its default, or roundrobin): after a cooperative rebalance, "
                           "keys could stay marked as parked and their records be parked again "
                           "without end");
}

static int listed(const struct ferry_cfg_strings *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i], name) == 0)
            return 1;
    return 0;
}

/* Nonzero when topic is one of the route's topics or matched by one of their patterns (a list
 * that does not compile is reported by check_topics). */
static int reads(const struct ferry_route_config *r, const char *topic)
{
    char err[256];
    ferry_patterns *read = ferry_patterns_new(&r->topics, err, sizeof(err));
    int found = read && ferry_patterns_match(read, topic);

    ferry_patterns_destroy(read);
    return found;
}

/* Plain topic names must be names Kafka accepts; a name starting with '^' is a regex, which
 * librdkafka compiles with regcomp() as ferry_patterns does: one that does not compile would
 * fail the subscription at start. */
static void check_topics(struct ferry_config *cfg, const struct ferry_route_config *r,
                         const char *path)
{
    char fpath[ROUTE_PATH_MAX], err[512];

    snprintf(fpath, sizeof(fpath), "%s.topics", path);
    ferry_config_check_patterns(cfg, &r->topics, FERRY_CONFIG_TOPIC_NAMES, fpath);
    snprintf(fpath, sizeof(fpath), "%s.dead_letter.topic", path);
    if (r->dead_letter.topic &&
        ferry_topic_name_check(r->dead_letter.topic, strlen(r->dead_letter.topic), err,
                               sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    else if (r->dead_letter.topic && reads(r, r->dead_letter.topic))
        ferry_config_error(cfg, fpath,
                           "'%s' is one of the route's topics%s: it would take its own dead "
                           "letters again",
                           r->dead_letter.topic,
                           listed(&r->topics, r->dead_letter.topic) ? ""
                                                                    : " (it matches a pattern)");
}

/* Reads a setting that is `auto` or a count from min to max: *count is -1 for auto (or when
 * unset). Returns -1 when text is neither. */
static int parse_auto_count(const char *text, int64_t min, int64_t max, int64_t *count)
{
    if (!text || strcmp(text, "auto") == 0) {
        *count = -1;
        return 0;
    }
    if (ferry_int_parse(text, count) || *count < min || *count > max)
        return -1;
    return 0;
}

/* Reports a setting (key, under the route's path) that parse_auto_count() refuses. */
static void check_auto_count(struct ferry_config *cfg, const char *path, const char *key,
                             const char *text, int64_t min, int64_t max)
{
    char fpath[ROUTE_PATH_MAX];
    int64_t count;

    if (parse_auto_count(text, min, max, &count) == 0)
        return;
    snprintf(fpath, sizeof(fpath), "%s.%s", path, key);
    ferry_config_error(cfg, fpath, "expected auto or %" PRId64 " to %" PRId64 ", got '%s'", min,
                       max, text);
}

int ferry_route_io_threads(const struct ferry_route_config *r, long cpus)
{
    int64_t count = -1;

    if (parse_auto_count(r->io_threads, 0, FERRY_SENDER_IO_THREADS_MAX, &count) == 0 && count >= 0)
        return (int)count;
    /* An SMTP server, not libcurl, is an e-mail route's bottleneck: one loop keeps its
     * connections within concurrency exactly. */
    if (r->batch.max_records > 1 || ferry_route_target_kind(r) == FERRY_TARGET_SMTP)
        return 0;
    if (cpus > FERRY_ROUTE_IO_THREADS_AUTO)
        cpus = FERRY_ROUTE_IO_THREADS_AUTO;
    if (cpus > r->concurrency)
        cpus = (long)r->concurrency;
    return cpus < 1 ? 1 : (int)cpus;
}

int64_t ferry_route_max_buffered_records(const struct ferry_route_config *r)
{
    const char *text = r->limits.max_buffered_records;
    int64_t count = -1, slots = r->concurrency * r->batch.max_records;

    if (!parse_auto_count(text, 1, FERRY_ROUTE_BUFFERED_MAX, &count) && count > 0)
        return count;
    if (r->ordering != FERRY_ORDERING_NONE || slots <= FERRY_ROUTE_BUFFERED_DEFAULT)
        return FERRY_ROUTE_BUFFERED_DEFAULT;
    return slots < FERRY_ROUTE_BUFFERED_AUTO_MAX ? slots : FERRY_ROUTE_BUFFERED_AUTO_MAX;
}

int ferry_route_validate_options(const struct ferry_route_config *r,
                                 struct ferry_validate_options *o, int64_t *ids, char *errstr,
                                 size_t errstr_size)
{
    const struct ferry_cfg_strings *list = &r->validate.confluent.schema_ids;

    memset(o, 0, sizeof(*o));
    if (list->count > FERRY_VALIDATE_SCHEMA_IDS_MAX) {
        snprintf(errstr, errstr_size, "confluent.schema_ids: more than %d ids",
                 FERRY_VALIDATE_SCHEMA_IDS_MAX);
        return -1;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (ferry_int_parse(list->items[i], &ids[i]) || ids[i] < 0 || ids[i] > 4294967295LL) {
            snprintf(errstr, errstr_size,
                     "confluent.schema_ids[%zu]: expected a schema id from 0 to 4294967295, "
                     "got '%s'",
                     i, list->items[i]);
            return -1;
        }
    }
    o->schema_path = r->validate.json_schema;
    o->schema_ids = ids;
    o->nschema_ids = list->count;
    o->strip = r->validate.confluent.strip;
    return o->schema_path || o->nschema_ids || o->strip;
}

/* A relative schema path is the config file's neighbour: rewrite it so that the route, which
 * does not know where the config came from, opens the same file whatever its working
 * directory. */
static void resolve_schema_path(struct ferry_config *cfg, struct ferry_route_config *r,
                                const char *fpath)
{
    const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
    size_t dir, len;
    char *full;

    if (!r->validate.json_schema || r->validate.json_schema[0] == '/' || !slash)
        return;
    dir = (size_t)(slash - cfg->path) + 1;
    len = dir + strlen(r->validate.json_schema) + 1;
    full = malloc(len);
    if (!full) {
        ferry_config_error(cfg, fpath, "out of memory");
        return;
    }
    memcpy(full, cfg->path, dir);
    memcpy(full + dir, r->validate.json_schema, len - dir);
    free(r->validate.json_schema);
    r->validate.json_schema = full;
}

static void check_validate(struct ferry_config *cfg, struct ferry_route_config *r, const char *path)
{
    char fpath[ROUTE_PATH_MAX], err[512];
    int64_t ids[FERRY_VALIDATE_SCHEMA_IDS_MAX];
    struct ferry_validate_options o;
    ferry_validate *v;
    int on;

    snprintf(fpath, sizeof(fpath), "%s.validate.json_schema", path);
    resolve_schema_path(cfg, r, fpath);
    snprintf(fpath, sizeof(fpath), "%s.validate", path);
    on = ferry_route_validate_options(r, &o, ids, err, sizeof(err));
    if (on < 0) {
        ferry_config_error(cfg, fpath, "%s", err);
        return;
    }
    if (!on)
        return;
    if (!r->dead_letter.topic)
        ferry_config_error(cfg, fpath, "needs dead_letter.topic, where failing records go");
    v = ferry_validate_new(&o, err, sizeof(err));
    if (!v)
        ferry_config_error(cfg, fpath, "%s", err);
    ferry_validate_destroy(v);
}

int ferry_route_validator_new(const struct ferry_route_config *r, ferry_validate **out,
                              char *errstr, size_t errstr_size)
{
    int64_t ids[FERRY_VALIDATE_SCHEMA_IDS_MAX];
    struct ferry_validate_options o;
    int on = ferry_route_validate_options(r, &o, ids, errstr, errstr_size);

    *out = NULL;
    if (on <= 0)
        return on;
    *out = ferry_validate_new(&o, errstr, errstr_size);
    return *out ? 0 : -1;
}

enum ferry_target_kind ferry_route_target_kind(const struct ferry_route_config *r)
{
    if (r->target.grpc.url)
        return FERRY_TARGET_GRPC;
    return r->target.smtp.url ? FERRY_TARGET_SMTP : FERRY_TARGET_HTTP;
}

/* What an e-mail target cannot do: a message is one record, made from target.smtp alone. */
static void check_smtp_route(struct ferry_config *cfg, const struct ferry_route_config *r,
                             const char *path)
{
    char fpath[ROUTE_PATH_MAX];

    if (ferry_route_target_kind(r) != FERRY_TARGET_SMTP)
        return;
    snprintf(fpath, sizeof(fpath), "%s.batch.max_records", path);
    if (r->batch.max_records > 1)
        ferry_config_error(cfg, fpath, "expected 1: an smtp target sends one message per record");
    snprintf(fpath, sizeof(fpath), "%s.body", path);
    if (ferry_config_line(cfg, fpath))
        ferry_config_error(cfg, fpath,
                           "not used by an smtp target: its messages are made from "
                           "target.smtp's subject, text and html");
}

/* Names of response headers to copy: HTTP tokens, so that none can smuggle anything. */
static void check_reply_headers(struct ferry_config *cfg, const struct ferry_route_config *r,
                                const char *path)
{
    const struct ferry_route_reply_config *c = &r->reply;
    char fpath[ROUTE_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.reply.headers", path);
    if (c->headers.count && ferry_route_target_kind(r) == FERRY_TARGET_SMTP)
        ferry_config_error(cfg, fpath, "an e-mail server's answer has no headers to copy");
    if (c->headers.count > FERRY_REPLY_HEADERS_MAX)
        ferry_config_error(cfg, fpath, "more than %d headers", FERRY_REPLY_HEADERS_MAX);
    for (size_t i = 0; i < c->headers.count; i++) {
        snprintf(fpath, sizeof(fpath), "%s.reply.headers[%zu]", path, i);
        if (!ferry_header_name_is_token(c->headers.items[i]))
            ferry_config_error(cfg, fpath, "'%s' is not a header name", c->headers.items[i]);
    }
}

/* A reply topic the route reads would have it answer its own answers: one of its topics or
 * matched by one of its patterns, or one of its retry topics, which it consumes too. On its
 * dead-letter topic, a redrive would send the replies to the target as dead letters. */
static void check_reply_not_read(struct ferry_config *cfg, const struct ferry_route_config *r,
                                 const char *fpath)
{
    const char *topic = r->reply.topic;
    char name[FERRY_RETRY_TOPIC_NAME_MAX];

    if (reads(r, topic))
        ferry_config_error(cfg, fpath, "'%s' is one of the route's topics%s", topic,
                           listed(&r->topics, topic) ? "" : " (it matches a pattern)");
    for (int stage = 1; ferry_route_retry_topic_name(r, stage, name, sizeof(name)) == 0; stage++)
        if (strcmp(name, topic) == 0)
            ferry_config_error(cfg, fpath, "'%s' is also retry topic %d of the route", topic,
                               stage);
    if (r->dead_letter.topic && strcmp(r->dead_letter.topic, topic) == 0)
        ferry_config_error(cfg, fpath,
                           "'%s' is also the dead-letter topic (a redrive would send the "
                           "replies as dead letters)",
                           topic);
}

/* The reply topic: a name Kafka accepts, and not one the route consumes (it would answer its
 * own answers). */
static void check_reply(struct ferry_config *cfg, const struct ferry_route_config *r,
                        const char *path)
{
    const struct ferry_route_reply_config *c = &r->reply;
    char fpath[ROUTE_PATH_MAX], err[512];

    check_reply_headers(cfg, r, path);
    snprintf(fpath, sizeof(fpath), "%s.reply", path);
    if (!c->topic) {
        if (ferry_config_line(cfg, fpath))
            ferry_config_error(cfg, fpath, "expected a topic");
        return;
    }
    snprintf(fpath, sizeof(fpath), "%s.reply.topic", path);
    if (ferry_topic_name_check(c->topic, strlen(c->topic), err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    check_reply_not_read(cfg, r, fpath);
}

/* Whether the descriptor set, when there is one, says method takes a stream. Returns 1 when
 * it does or cannot tell (no set; a set that does not load was reported already). */
static int grpc_streaming(const struct ferry_route_grpc_config *g)
{
    struct ferry_grpc_target_options o = {g->url, g->method, 0, g->descriptor_set, 0};
    char err[512];
    ferry_grpc_target *t;
    int streaming;

    if (!g->descriptor_set)
        return 1;
    t = ferry_grpc_target_new(&o, err, sizeof(err));
    streaming = !t || ferry_grpc_target_streaming(t);
    ferry_grpc_target_destroy(t);
    return streaming;
}

/* What a gRPC target cannot do: its body is the payload, its outcomes are gRPC statuses, and
 * a batch needs a client-streaming method. */
static void check_grpc_route(struct ferry_config *cfg, const struct ferry_route_config *r,
                             const char *path)
{
    char fpath[ROUTE_PATH_MAX];

    if (ferry_route_target_kind(r) != FERRY_TARGET_GRPC)
        return;
    snprintf(fpath, sizeof(fpath), "%s.body", path);
    if (ferry_config_line(cfg, fpath))
        ferry_config_error(cfg, fpath,
                           "not used by a grpc target: target.grpc.payload says what is sent");
    snprintf(fpath, sizeof(fpath), "%s.on_status", path);
    if (ferry_config_line(cfg, fpath))
        ferry_config_error(cfg, fpath,
                           "HTTP statuses do not apply to a grpc target: use "
                           "target.grpc.on_status with gRPC status names");
    snprintf(fpath, sizeof(fpath), "%s.batch.max_records", path);
    if (r->batch.max_records > 1 && r->target.grpc.method && !grpc_streaming(&r->target.grpc))
        ferry_config_error(cfg, fpath,
                           "a batch is one client-streaming call, and '%s' is unary in the "
                           "descriptor set: expected 1",
                           r->target.grpc.method);
}

static void check_route(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_route_config *r = obj;
    char fpath[ROUTE_PATH_MAX];

    ferry_config_check_name(cfg, r->name, path);
    ferry_route_target_check(cfg, path);
    check_smtp_route(cfg, r, path);
    check_grpc_route(cfg, r, path);
    check_templates(cfg, r, path);
    check_policies(cfg, r, path);
    check_retry_topics(cfg, r, path);
    check_auto_count(cfg, path, "io_threads", r->io_threads, 0, FERRY_SENDER_IO_THREADS_MAX);
    check_auto_count(cfg, path, "limits.max_buffered_records", r->limits.max_buffered_records, 1,
                     FERRY_ROUTE_BUFFERED_MAX);
    check_validate(cfg, obj, path);
    check_reply(cfg, r, path);
    snprintf(fpath, sizeof(fpath), "%s.kafka", path);
    ferry_kafka_check_overrides(cfg, FERRY_KAFKA_PROPS_ROUTE, &r->kafka, fpath);
    snprintf(fpath, sizeof(fpath), "%s.topics", path);
    if (ferry_config_line(cfg, fpath) && r->topics.count == 0)
        ferry_config_error(cfg, fpath, "expected at least one topic");
    check_topics(cfg, r, path);
    snprintf(fpath, sizeof(fpath), "%s.batch.separator", path);
    if (r->batch.format == FERRY_BATCH_SEPARATOR && (!r->batch.separator || !*r->batch.separator))
        ferry_config_error(cfg, fpath, "expected at least one byte");
    snprintf(fpath, sizeof(fpath), "%s.adaptive_concurrency.min", path);
    if (r->adaptive_concurrency.min > r->concurrency)
        ferry_config_error(cfg, fpath, "more than the route's concurrency (%lld)",
                           (long long)r->concurrency);
    snprintf(fpath, sizeof(fpath), "%s.adaptive_concurrency.decrease", path);
    if (r->adaptive_concurrency.decrease <= 0 || r->adaptive_concurrency.decrease >= 1)
        ferry_config_error(cfg, fpath, "expected more than 0 and less than 1");
    snprintf(fpath, sizeof(fpath), "%s.adaptive_concurrency.latency_tolerance", path);
    if (r->adaptive_concurrency.latency_tolerance <= 1)
        ferry_config_error(cfg, fpath, "expected more than 1");
    snprintf(fpath, sizeof(fpath), "%s.circuit_breaker.max_open", path);
    if (r->circuit_breaker.max_open_ms < r->circuit_breaker.open_ms)
        ferry_config_error(cfg, fpath, "shorter than circuit_breaker.open");
}

int ferry_route_rate_limited(const struct ferry_route_rate_config *rc)
{
    return rc->requests_per_second > 0 || rc->records_per_second > 0 || rc->bytes_per_second > 0;
}

static void check_rate_limit(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_route_rate_config *rc = obj;
    char fpath[ROUTE_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.burst", path);
    if (!rc->limiter && !ferry_route_rate_limited(rc))
        ferry_config_error(cfg, path,
                           "expected a limiter or at least one of requests_per_second, "
                           "records_per_second, bytes_per_second");
    else if (!ferry_route_rate_limited(rc) && ferry_config_line(cfg, fpath))
        ferry_config_error(cfg, fpath,
                           "applies to this route's own rates, and it has none: a shared "
                           "limiter's burst is set under limiters:");
}

static void check_limiter(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_route_rate_config *rc = obj;

    ferry_config_check_name(cfg, rc->name, path);
    if (!ferry_route_rate_limited(rc))
        ferry_config_error(cfg, path,
                           "expected at least one of requests_per_second, records_per_second, "
                           "bytes_per_second");
}

/* ---- the job's top-level key ---- */

#define ROUTES_FIELD(f) offsetof(struct ferry_routes_config, f)
static const struct ferry_cfg_field routes_fields[] = {
    {"routes", FERRY_CFG_LIST, ROUTES_FIELD(routes), NULL, 0, 0, NULL, &ferry_route_section, 0,
     "Kafka to HTTP routes."},
    {"limiters", FERRY_CFG_LIST, ROUTES_FIELD(limiters), NULL, 0, 0, NULL, &ferry_limiter_section,
     0, "Rate limits that several routes share."},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_routes_config_section = {
    "", routes_fields, sizeof(struct ferry_routes_config), NULL, NULL};

const struct ferry_route_rate_config *ferry_routes_limiter(const struct ferry_routes_config *rc,
                                                           const char *name)
{
    const struct ferry_route_rate_config *limiters = rc->limiters.items;

    for (size_t i = 0; name && i < rc->limiters.count; i++)
        if (limiters[i].name && strcmp(limiters[i].name, name) == 0)
            return &limiters[i];
    return NULL;
}

/* Route names label metrics and logs, so two routes may not share one. */
static void check_route_names(struct ferry_config *cfg, const struct ferry_routes_config *rc)
{
    const struct ferry_route_config *routes = rc->routes.items;
    char fpath[ROUTE_PATH_MAX];

    for (size_t i = 0; i < rc->routes.count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!routes[i].name || !routes[j].name || strcmp(routes[i].name, routes[j].name))
                continue;
            snprintf(fpath, sizeof(fpath), "routes[%zu].name", i);
            ferry_config_error(cfg, fpath, "another route is named '%s'", routes[i].name);
            break;
        }
    }
}

/* A name a route uses that no other route may: its consumer group (stage 0), or a retry topic
 * (stage 1 and up). Sorted by name, then by route and stage, so that the first of equal names
 * is the one the config wrote first. */
struct route_name {
    char *name;
    size_t route;
    int stage;
};

static int by_name(const void *a, const void *b)
{
    const struct route_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    if (x->route != y->route)
        return x->route < y->route ? -1 : 1;
    return x->stage - y->stage;
}

static void free_route_names(struct route_name *all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(all[i].name);
    free(all);
}

/* The route's name at stage into out: its group (0) or a retry topic. Returns 0, or -1 when it
 * has none there. */
static int route_name_at(const struct ferry_route_config *r, int stage, char *out, size_t size)
{
    if (stage > 0)
        return ferry_route_retry_topic_name(r, stage, out, size);
    if (!r->name)
        return -1;
    ferry_route_group(r, out, size);
    return 0;
}

/* The routes' groups (retry 0) or retry topics (retry 1), sorted, into *out (*n of them).
 * Returns 0, or -1 when out of memory. */
static int collect_route_names(const struct ferry_routes_config *rc, int retry,
                               struct route_name **out, size_t *n)
{
    int last = retry ? FERRY_RETRY_STAGES_MAX : 0;
    struct route_name *all = calloc(rc->routes.count * (size_t)(last + 1) + 1, sizeof(*all));
    char name[FERRY_RETRY_TOPIC_NAME_MAX + 8];

    *n = 0;
    for (size_t i = 0; all && i < rc->routes.count; i++) {
        for (int stage = retry; stage <= last; stage++) {
            if (route_name_at(&((const struct ferry_route_config *)rc->routes.items)[i], stage,
                              name, sizeof(name)))
                continue;
            all[*n] = (struct route_name){strdup(name), i, stage};
            if (!all[(*n)++].name) {
                free_route_names(all, *n);
                return -1;
            }
        }
    }
    if (!all)
        return -1;
    qsort(all, *n, sizeof(*all), by_name);
    *out = all;
    return 0;
}

static void report_shared(struct ferry_config *cfg, const struct ferry_routes_config *rc,
                          const struct route_name *dup, const struct route_name *first)
{
    const struct ferry_route_config *routes = rc->routes.items;
    const char *owner = routes[first->route].name ? routes[first->route].name : "";
    char fpath[ROUTE_PATH_MAX];

    if (dup->stage > 0) {
        snprintf(fpath, sizeof(fpath), "routes[%zu].retry.topics[%d].topic", dup->route,
                 dup->stage - 1);
        ferry_config_error(cfg, fpath,
                           "'%s' is also a retry topic of route '%s': each route reads every "
                           "record of its retry topics as its own",
                           dup->name, owner);
        return;
    }
    snprintf(fpath, sizeof(fpath), "routes[%zu].%s", dup->route,
             routes[dup->route].group ? "group" : "name");
    ferry_config_error(cfg, fpath,
                       "consumer group '%s' is also route '%s''s: two routes in one group split "
                       "the partitions, and each target would get part of the records",
                       dup->name, owner);
}

/* A consumer group, or a retry topic, belongs to one route. Sorted, so that a config of many
 * routes is checked at once. Two routes of one name are check_route_names()'s to report. */
static void check_route_names_shared(struct ferry_config *cfg, const struct ferry_routes_config *rc,
                                     int retry)
{
    const struct ferry_route_config *routes = rc->routes.items;
    struct route_name *all;
    size_t n, first = 0;

    if (collect_route_names(rc, retry, &all, &n)) {
        ferry_config_error(cfg, "routes", "out of memory checking the routes");
        return;
    }
    for (size_t i = 1; i < n; i++) {
        if (strcmp(all[i].name, all[first].name) != 0) {
            first = i;
            continue;
        }
        if (all[i].route == all[first].route ||
            (!retry && !routes[all[i].route].group && !routes[all[first].route].group))
            continue;
        report_shared(cfg, rc, &all[i], &all[first]);
    }
    free_route_names(all, n);
}

static void check_limiter_names(struct ferry_config *cfg, const struct ferry_routes_config *rc)
{
    const struct ferry_route_rate_config *limiters = rc->limiters.items;
    char fpath[ROUTE_PATH_MAX];

    for (size_t i = 0; i < rc->limiters.count; i++) {
        if (ferry_routes_limiter(rc, limiters[i].name) == &limiters[i])
            continue;
        snprintf(fpath, sizeof(fpath), "limiters[%zu].name", i);
        ferry_config_error(cfg, fpath, "another limiter is named '%s'", limiters[i].name);
    }
}

/* Lists the limiters' names in out, for an error about a name that is not among them. */
static void list_limiters(const struct ferry_routes_config *rc, char *out, size_t size)
{
    const struct ferry_route_rate_config *limiters = rc->limiters.items;
    size_t len = 0;

    snprintf(out, size, "%s", rc->limiters.count ? "" : "none is declared under limiters:");
    for (size_t i = 0; i < rc->limiters.count && len < size; i++) {
        snprintf(out + len, size - len, "%s'%s'", i ? ", " : "limiters are ",
                 limiters[i].name ? limiters[i].name : "");
        len = strlen(out);
    }
}

static void check_limiter_refs(struct ferry_config *cfg, const struct ferry_routes_config *rc)
{
    const struct ferry_route_config *routes = rc->routes.items;
    char fpath[ROUTE_PATH_MAX], known[512];

    for (size_t i = 0; i < rc->routes.count; i++) {
        const char *name = routes[i].rate_limit.limiter;
        if (!name || ferry_routes_limiter(rc, name))
            continue;
        list_limiters(rc, known, sizeof(known));
        snprintf(fpath, sizeof(fpath), "routes[%zu].rate_limit.limiter", i);
        ferry_config_error(cfg, fpath, "unknown limiter '%s': %s", name, known);
    }
}

void ferry_routes_config_check(struct ferry_config *cfg, void *config)
{
    const struct ferry_routes_config *rc = config;

    check_route_names(cfg, rc);
    check_route_names_shared(cfg, rc, 0);
    check_route_names_shared(cfg, rc, 1);
    check_limiter_names(cfg, rc);
    check_limiter_refs(cfg, rc);
}

void ferry_route_rate_describe(const struct ferry_route_rate_config *rc, char *out, size_t size)
{
    char num[32];
    size_t len = 0;

    out[0] = '\0';
    if (rc->requests_per_second > 0)
        len += (size_t)snprintf(out + len, size - len, "%g requests/s, ", rc->requests_per_second);
    if (rc->records_per_second > 0 && len < size)
        len += (size_t)snprintf(out + len, size - len, "%g records/s, ", rc->records_per_second);
    if (rc->bytes_per_second > 0 && len < size) {
        ferry_size_format(rc->bytes_per_second, num, sizeof(num));
        len += (size_t)snprintf(out + len, size - len, "%s/s, ", num);
    }
    ferry_duration_format(rc->burst_ms, num, sizeof(num));
    if (len < size)
        snprintf(out + len, size - len, "burst %s", num);
}

static void summarize_route(const struct ferry_route_config *r, FILE *out)
{
    char rates[256] = "";

    if (ferry_route_target_kind(r) == FERRY_TARGET_SMTP)
        fprintf(out, "  route:  %s: %zu topic(s) -> e-mail via %s", r->name, r->topics.count,
                r->target.smtp.url);
    else if (ferry_route_target_kind(r) == FERRY_TARGET_GRPC)
        fprintf(out, "  route:  %s: %zu topic(s) -> gRPC %s at %s", r->name, r->topics.count,
                r->target.grpc.method, r->target.grpc.url);
    else
        fprintf(out, "  route:  %s: %zu topic(s) -> %s %s", r->name, r->topics.count,
                ferry_route_methods[r->target.method], r->target.url);
    if (ferry_route_rate_limited(&r->rate_limit)) {
        ferry_route_rate_describe(&r->rate_limit, rates, sizeof(rates));
        fprintf(out, ", rate limit %s", rates);
    }
    if (r->rate_limit.limiter)
        fprintf(out, ", limiter %s", r->rate_limit.limiter);
    if (r->adaptive_concurrency.enabled)
        fprintf(out, ", adaptive concurrency %lld..%lld", (long long)r->adaptive_concurrency.min,
                (long long)r->concurrency);
    if (r->circuit_breaker.enabled)
        fprintf(out, ", circuit breaker");
    if (r->retry.topics.count)
        fprintf(out, ", %zu retry topic(s)", r->retry.topics.count);
    if (r->reply.topic)
        fprintf(out, ", replies to %s", r->reply.topic);
    fputc('\n', out);
}

void ferry_routes_config_summary(const void *config, FILE *out)
{
    const struct ferry_routes_config *rc = config;
    const struct ferry_route_config *routes = rc->routes.items;
    const struct ferry_route_rate_config *limiters = rc->limiters.items;
    char rates[256];

    for (size_t i = 0; i < rc->routes.count; i++)
        summarize_route(&routes[i], out);
    for (size_t i = 0; i < rc->limiters.count; i++) {
        size_t users = 0;
        for (size_t j = 0; j < rc->routes.count; j++)
            users += routes[j].rate_limit.limiter &&
                     strcmp(routes[j].rate_limit.limiter, limiters[i].name) == 0;
        ferry_route_rate_describe(&limiters[i], rates, sizeof(rates));
        fprintf(out, "  limiter: %s: %s, shared by %zu route(s)\n", limiters[i].name, rates, users);
    }
}
