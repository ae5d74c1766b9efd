/*
 * ingest_config.h - the `ingest:` section of the config: which topics the REST Proxy API may
 * write, the webhook endpoints, the API keys, the limits and the delivery timeout.
 *
 * The ingest job (ingest.c) declares ferry_ingest_config_section as the top-level key it owns,
 * so the config loader fills these structs and `ferry check` checks them like every other
 * section; the core never looks inside them.
 */
#ifndef FERRY_INGEST_CONFIG_H
#define FERRY_INGEST_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/auth.h"
#include "core/config.h"
#include "core/config_schema.h"

/* When an endpoint answers. */
enum ferry_ingest_ack {
    FERRY_INGEST_ACK_KAFKA,    /* after the broker acknowledged every record */
    FERRY_INGEST_ACK_ACCEPTED, /* 202 once the records are queued in the producer */
};

struct ferry_ingest_rest_proxy_config {
    struct ferry_cfg_strings topics; /* names or ^regex; empty: the API is off */
    int ack;                         /* enum ferry_ingest_ack */
};

struct ferry_ingest_key_config {
    char *header; /* at most one of these three is set */
    char *query;
    char *json; /* a dot-separated path into a JSON body: user.id, items.0.sku */
    int required;
};

struct ferry_ingest_webhook_config {
    char *name;
    char *path;
    char *topic;
    struct ferry_ingest_key_config key;
    struct ferry_cfg_strings headers; /* request headers copied to record headers */
    int ndjson;
    int ack;  /* enum ferry_ingest_ack */
    int auth; /* require an API key when keys are configured */
};

struct ferry_ingest_api_key_config {
    char *name;
    char *key;
    char *key_file;
    struct ferry_cfg_strings topics; /* names or ^regex: what it may write */
    struct ferry_cfg_strings tables; /* names or ^regex: what it may read */
};

struct ferry_ingest_auth_config {
    struct ferry_cfg_list keys; /* of struct ferry_ingest_api_key_config */
};

struct ferry_ingest_limits_config {
    int64_t max_body;
    int64_t max_records;
    int64_t max_key_bytes;
    int64_t max_value_bytes;
    int64_t max_headers;
    int64_t max_header_bytes;
    int64_t max_in_flight_bytes;
    int64_t max_in_flight_records;
    int64_t max_topics;
};

struct ferry_ingest_config {
    struct ferry_ingest_rest_proxy_config rest_proxy;
    struct ferry_cfg_list webhooks; /* of struct ferry_ingest_webhook_config */
    struct ferry_ingest_auth_config auth;
    struct ferry_ingest_limits_config limits;
    int64_t delivery_timeout_ms;
};

/* Most API keys ferry accepts, and the longest key. */
#define FERRY_INGEST_KEYS_MAX FERRY_AUTH_KEYS_MAX
#define FERRY_INGEST_KEY_MIN FERRY_AUTH_SECRET_MIN
#define FERRY_INGEST_KEY_MAX FERRY_AUTH_SECRET_MAX

/* Most request headers one webhook copies into record headers. */
#define FERRY_INGEST_WEBHOOK_HEADERS_MAX 32

/* The table of the `ingest:` section. */
extern const struct ferry_cfg_section ferry_ingest_section;

/* The names of enum ferry_ingest_ack, indexed by it. */
extern const char *const ferry_ingest_acks[];

/* The job's top-level table (the `ingest:` key), filled into a struct ferry_ingest_config. */
extern const struct ferry_cfg_section ferry_ingest_config_section;

/* Nonzero when the section enables any ingest endpoint. */
int ferry_ingest_config_enabled(const struct ferry_ingest_config *in);

/* Checks that need the whole file: unique webhook names and paths and key names, and the
 * delivery timeout against server.shutdown_timeout. Problems are reported on cfg. */
void ferry_ingest_config_check(struct ferry_config *cfg, void *config);

/* Writes one summary line per endpoint for `ferry check`. */
void ferry_ingest_config_summary(const void *config, FILE *out);

/* Reads an API key: the value itself, or the contents of key_file without trailing
 * whitespace. Returns 0, or -1 with errstr. Fills out (NUL-terminated, at most
 * FERRY_INGEST_KEY_MAX bytes). */
int ferry_ingest_key_read(const struct ferry_ingest_api_key_config *k, char *out, size_t out_size,
                          char *errstr, size_t errstr_size);

#endif
