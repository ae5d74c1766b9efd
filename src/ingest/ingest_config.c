/*
 * ingest_config.c - the table of the `ingest:` section and the checks that span several of its
 * values (patterns compile, paths do not collide, keys are readable and distinct), so that
 * `ferry check` finds every mistake ingest could hit at start.
 */
#include "ingest/ingest_config.h"
#include "core/file.h"
#include "core/topic_name.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INGEST_PATH_MAX 256
#define INGEST_KEY_FILE_MAX (FERRY_INGEST_KEY_MAX + 64) /* room for trailing newlines */

const char *const ferry_ingest_acks[] = {"kafka", "accepted", NULL};

static void check_rest_proxy(struct ferry_config *cfg, void *obj, const char *path);
static void check_webhook(struct ferry_config *cfg, void *obj, const char *path);
static void check_api_key(struct ferry_config *cfg, void *obj, const char *path);
static void check_auth(struct ferry_config *cfg, void *obj, const char *path);

#define RP_FIELD(f) offsetof(struct ferry_ingest_rest_proxy_config, f)
static const struct ferry_cfg_field rest_proxy_fields[] = {
    {"topics", FERRY_CFG_STRINGS, RP_FIELD(topics), NULL, 0, 0, NULL, NULL, 0,
     "Topics the REST Proxy API may write: names, or `^regex`. Empty (the default) turns the "
     "API off. Any other topic is answered 404 (error code 40401)."},
    {"ack", FERRY_CFG_ENUM, RP_FIELD(ack), "kafka", 0, 0, ferry_ingest_acks, NULL, 0,
     "`kafka`: answer once the broker acknowledged every record, with partitions and offsets; "
     "`accepted`: answer 202 as soon as the records are queued in the producer."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section rest_proxy_section = {
    "rest_proxy", rest_proxy_fields, sizeof(struct ferry_ingest_rest_proxy_config),
    check_rest_proxy,
    "Confluent REST Proxy v2 compatible produce: `POST /topics/{topic}` and `POST "
    "/topics/{topic}/partitions/{partition}` (see docs/ingest.md)."};

#define KEY_FIELD(f) offsetof(struct ferry_ingest_key_config, f)
static const struct ferry_cfg_field key_fields[] = {
    {"header", FERRY_CFG_STRING, KEY_FIELD(header), NULL, 0, 0, NULL, NULL, 0,
     "Take the record key from this request header."},
    {"query", FERRY_CFG_STRING, KEY_FIELD(query), NULL, 0, 0, NULL, NULL, 0,
     "Take the record key from this query parameter."},
    {"json", FERRY_CFG_STRING, KEY_FIELD(json), NULL, 0, 0, NULL, NULL, 0,
     "Take the record key from this dot-separated path into the JSON body (`user.id`, "
     "`items.0.sku`): a string gives its text, other values their JSON."},
    {"required", FERRY_CFG_BOOL, KEY_FIELD(required), "false", 0, 0, NULL, NULL, 0,
     "Answer 422 when the key is missing, instead of writing the record without a key."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section key_section = {
    "key", key_fields, sizeof(struct ferry_ingest_key_config), NULL,
    "Where a webhook record's key comes from (at most one source; none: no key)."};

#define WH_FIELD(f) offsetof(struct ferry_ingest_webhook_config, f)
static const struct ferry_cfg_field webhook_fields[] = {
    {"name", FERRY_CFG_STRING, WH_FIELD(name), NULL, 0, 0, NULL, NULL, 1,
     "Unique name: letters, digits, `.`, `_`, `-`. Used in logs and metrics."},
    {"path", FERRY_CFG_STRING, WH_FIELD(path), NULL, 0, 0, NULL, NULL, 1,
     "The path that takes `POST` requests, e.g. `/webhooks/github`. Not one of ferry's own (`/`, "
     "`/status`, `/healthz`, `/readyz`, `/metrics`, `/tables`) or under `/topics/`, `/tables/` "
     "or `/routes/`, whose POSTs are the REST Proxy API, table lookups and redrives."},
    {"topic", FERRY_CFG_STRING, WH_FIELD(topic), NULL, 0, 0, NULL, NULL, 1,
     "The topic every record of this endpoint goes to."},
    {"key", FERRY_CFG_SECTION, WH_FIELD(key), NULL, 0, 0, NULL, &key_section, 0, NULL},
    {"headers", FERRY_CFG_STRINGS, WH_FIELD(headers), NULL, 0, 0, NULL, NULL, 0,
     "Request headers copied into record headers (lower-cased names) when present."},
    {"ndjson", FERRY_CFG_BOOL, WH_FIELD(ndjson), "false", 0, 0, NULL, NULL, 0,
     "The body is newline-delimited JSON: one record per non-empty line."},
    {"ack", FERRY_CFG_ENUM, WH_FIELD(ack), "kafka", 0, 0, ferry_ingest_acks, NULL, 0,
     "As `rest_proxy.ack`."},
    {"auth", FERRY_CFG_BOOL, WH_FIELD(auth), "true", 0, 0, NULL, NULL, 0,
     "Require an API key (when `auth.keys` has any). Turn off for senders that cannot send "
     "an `Authorization` header."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section webhook_section = {
    "webhooks[]", webhook_fields, sizeof(struct ferry_ingest_webhook_config), check_webhook,
    "Webhook endpoints: the request body becomes the record value byte for byte, its "
    "Content-Type a `content-type` record header."};

#define AK_FIELD(f) offsetof(struct ferry_ingest_api_key_config, f)
static const struct ferry_cfg_field api_key_fields[] = {
    {"name", FERRY_CFG_STRING, AK_FIELD(name), NULL, 0, 0, NULL, NULL, 1,
     "Unique name of the key, for logs and metrics (the key itself is never logged)."},
    {"key", FERRY_CFG_STRING, AK_FIELD(key), NULL, 0, 0, NULL, NULL, 0,
     "The secret, 16 to 256 visible ASCII characters; use `${env:NAME}` rather than writing "
     "it here."},
    {"key_file", FERRY_CFG_STRING, AK_FIELD(key_file), NULL, 0, 0, NULL, NULL, 0,
     "A file holding the secret (trailing whitespace is ignored); instead of `key`."},
    {"topics", FERRY_CFG_STRINGS, AK_FIELD(topics), NULL, 0, 0, NULL, NULL, 0,
     "Topics this key may write: names, or `^regex`; `^.*` for all."},
    {"tables", FERRY_CFG_STRINGS, AK_FIELD(tables), NULL, 0, 0, NULL, NULL, 0,
     "Tables this key may read (`GET /tables/...`): names, or `^regex`; `^.*` for all. A key "
     "sets `topics`, `tables` or both."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section api_key_section = {
    "keys[]", api_key_fields, sizeof(struct ferry_ingest_api_key_config), check_api_key,
    "One API key, sent as `Authorization: Bearer <key>`."};

#define AUTH_FIELD(f) offsetof(struct ferry_ingest_auth_config, f)
static const struct ferry_cfg_field auth_fields[] = {
    {"keys", FERRY_CFG_LIST, AUTH_FIELD(keys), NULL, 0, 0, NULL, &api_key_section, 0,
     "API keys. Without any, every ingest endpoint is open to whoever reaches the listener."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section auth_section = {
    "auth", auth_fields, sizeof(struct ferry_ingest_auth_config), check_auth,
    "Bearer API keys. A request without a valid key gets 401, a valid key outside its topics "
    "403."};

#define LIMIT_FIELD(f) offsetof(struct ferry_ingest_limits_config, f)
static const struct ferry_cfg_field limits_fields[] = {
    {"max_body", FERRY_CFG_SIZE, LIMIT_FIELD(max_body), "1MiB", 1024, 268435456, NULL, NULL, 0,
     "Largest request body; larger ones get 413."},
    {"max_records", FERRY_CFG_INT, LIMIT_FIELD(max_records), "1000", 1, 100000, NULL, NULL, 0,
     "Records in one request; more get 413."},
    {"max_key_bytes", FERRY_CFG_SIZE, LIMIT_FIELD(max_key_bytes), "64KiB", 1, 16777216, NULL, NULL,
     0, "Largest record key (after base64 decoding); larger ones get 422 (42201)."},
    {"max_value_bytes", FERRY_CFG_SIZE, LIMIT_FIELD(max_value_bytes), "1MiB", 1, 268435456, NULL,
     NULL, 0, "Largest record value (after base64 decoding); larger ones get 422 (42201)."},
    {"max_headers", FERRY_CFG_INT, LIMIT_FIELD(max_headers), "32", 0, 1000, NULL, NULL, 0,
     "Record headers per record; more get 422 (42201)."},
    {"max_header_bytes", FERRY_CFG_SIZE, LIMIT_FIELD(max_header_bytes), "16KiB", 1, 1048576, NULL,
     NULL, 0, "Largest record header, name and value together; larger get 422 (42201)."},
    {"max_in_flight_bytes", FERRY_CFG_SIZE, LIMIT_FIELD(max_in_flight_bytes), "64MiB", 65536,
     17179869184LL, NULL, NULL, 0,
     "Bytes of records produced but not yet acknowledged by the broker, over all endpoints. "
     "When a request does not fit, it gets 429 with `Retry-After: 1`."},
    {"max_in_flight_records", FERRY_CFG_INT, LIMIT_FIELD(max_in_flight_records), "50000", 1,
     10000000, NULL, NULL, 0,
     "Records produced but not yet acknowledged, over all endpoints; beyond it, 429. Keep it "
     "below the producer's `queue.buffering.max.messages` (100000 by default) so that whole "
     "requests are turned away rather than some of their records."},
    {"max_topics", FERRY_CFG_INT, LIMIT_FIELD(max_topics), "1000", 1, 100000, NULL, NULL, 0,
     "Distinct topics the REST Proxy API writes (each keeps a producer topic handle); a new "
     "topic beyond it gets 404 (40401)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section limits_section = {
    "limits", limits_fields, sizeof(struct ferry_ingest_limits_config), NULL,
    "Bounds on what one request may carry and on the memory ingest uses."};

#define INGEST_MAX_WEBHOOKS 48 /* the server has 64 paths; ferry's own jobs take about 10 */
#define INGEST_MAX_WEBHOOKS_TEXT "48"
#define INGEST_FIELD(f) offsetof(struct ferry_ingest_config, f)
static const struct ferry_cfg_field ingest_fields[] = {
    {"rest_proxy", FERRY_CFG_SECTION, INGEST_FIELD(rest_proxy), NULL, 0, 0, NULL,
     &rest_proxy_section, 0, NULL},
    {"webhooks", FERRY_CFG_LIST, INGEST_FIELD(webhooks), NULL, 0, 0, NULL, &webhook_section, 0,
     "Webhook endpoints, at most " INGEST_MAX_WEBHOOKS_TEXT
     " (each is a path of the server, which also serves ferry's own)."},
    {"auth", FERRY_CFG_SECTION, INGEST_FIELD(auth), NULL, 0, 0, NULL, &auth_section, 0, NULL},
    {"limits", FERRY_CFG_SECTION, INGEST_FIELD(limits), NULL, 0, 0, NULL, &limits_section, 0, NULL},
    {"delivery_timeout", FERRY_CFG_DURATION, INGEST_FIELD(delivery_timeout_ms), "20s", 1000,
     3600000, NULL, NULL, 0,
     "How long the producer tries to deliver an ingested record (its topics' "
     "`message.timeout.ms`); then the request gets 503 (50002). Must be shorter than "
     "`server.shutdown_timeout`."},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_ingest_section = {
    "ingest", ingest_fields, sizeof(struct ferry_ingest_config), NULL,
    "HTTP to Kafka: the REST Proxy API and webhook endpoints, on the server's listener "
    "(see docs/ingest.md)."};

/* ---- key files ---- */

/* Reads at most INGEST_KEY_FILE_MAX bytes of path into out. Returns 0, or -1 with errstr. */
static int read_key_file(const char *path, char *out, size_t out_size, char *errstr,
                         size_t errstr_size)
{
    char data[INGEST_KEY_FILE_MAX + 1];
    FILE *f = ferry_file_open_regular(path, errstr, errstr_size);
    size_t n;

    if (!f)
        return -1;
    n = fread(data, 1, sizeof(data), f);
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    while (n > 0 && isspace((unsigned char)data[n - 1]))
        n--;
    if (n >= out_size || n > INGEST_KEY_FILE_MAX) {
        snprintf(errstr, errstr_size, "'%s' holds more than %d bytes", path, FERRY_INGEST_KEY_MAX);
        return -1;
    }
    memcpy(out, data, n);
    out[n] = '\0';
    memset(data, 0, sizeof(data));
    return 0;
}

int ferry_ingest_key_read(const struct ferry_ingest_api_key_config *k, char *out, size_t out_size,
                          char *errstr, size_t errstr_size)
{
    size_t len;

    if (k->key_file) {
        if (read_key_file(k->key_file, out, out_size, errstr, errstr_size))
            return -1;
    } else if (k->key && strlen(k->key) < out_size) {
        memcpy(out, k->key, strlen(k->key) + 1);
    } else if (k->key) {
        snprintf(errstr, errstr_size, "expected %d to %d characters, got %zu", FERRY_INGEST_KEY_MIN,
                 FERRY_INGEST_KEY_MAX, strlen(k->key));
        return -1;
    } else {
        snprintf(errstr, errstr_size, "missing, set key or key_file");
        return -1;
    }
    len = strlen(out);
    if (len < FERRY_INGEST_KEY_MIN || len > FERRY_INGEST_KEY_MAX) {
        snprintf(errstr, errstr_size, "expected %d to %d characters, got %zu", FERRY_INGEST_KEY_MIN,
                 FERRY_INGEST_KEY_MAX, len);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (out[i] <= ' ' || out[i] > '~') {
            snprintf(errstr, errstr_size, "expected visible ASCII characters only");
            return -1;
        }
    }
    return 0;
}

/* ---- checks ---- */

static void check_rest_proxy(struct ferry_config *cfg, void *obj, const char *path)
{
    struct ferry_ingest_rest_proxy_config *rp = obj;
    char fpath[INGEST_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.topics", path);
    ferry_config_check_patterns(cfg, &rp->topics, FERRY_CONFIG_TOPIC_NAMES, fpath);
}

/* Reports the second of two entries of list (of structs of size bytes) whose string at off is
 * the same; what names the value ("webhook is named", "webhook has the path"). */
static void check_unique(struct ferry_config *cfg, const struct ferry_cfg_list *list, size_t size,
                         size_t off, const char *path, const char *key, const char *what)
{
    char fpath[INGEST_PATH_MAX];

    for (size_t i = 0; i < list->count; i++) {
        const char *name = *(char *const *)((const char *)list->items + i * size + off);
        for (size_t j = 0; name && j < i; j++) {
            const char *other = *(char *const *)((const char *)list->items + j * size + off);
            if (!other || strcmp(other, name) != 0)
                continue;
            snprintf(fpath, sizeof(fpath), "%s[%zu].%s", path, i, key);
            ferry_config_error(cfg, fpath, "another %s '%s'", what, name);
            break;
        }
    }
}

static int http_token_valid(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

static void check_webhook_path(struct ferry_config *cfg,
                               const struct ferry_ingest_webhook_config *w, const char *path)
{
    static const char *const reserved[] = {"/",        "/status", "/healthz", "/readyz",
                                           "/metrics", "/tables", NULL};
    /* the POST endpoints of ferry's own under these: a webhook there would take their place */
    static const char *const reserved_prefixes[][2] = {
        {"/topics/", "the REST Proxy API"},
        {"/tables/", "the tables' lookups"},
        {"/routes/", "the routes' redrive endpoints"},
    };
    char fpath[INGEST_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.path", path);
    if (!w->path)
        return;
    if (w->path[0] != '/' || strpbrk(w->path, "?# \t\r\n")) {
        ferry_config_error(cfg, fpath, "expected a path starting with '/', got '%s'", w->path);
        return;
    }
    for (int i = 0; reserved[i]; i++)
        if (strcmp(w->path, reserved[i]) == 0)
            ferry_config_error(cfg, fpath, "'%s' is one of ferry's own paths", w->path);
    for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++)
        if (strncmp(w->path, reserved_prefixes[i][0], strlen(reserved_prefixes[i][0])) == 0)
            ferry_config_error(cfg, fpath, "paths under %s belong to %s", reserved_prefixes[i][0],
                               reserved_prefixes[i][1]);
}

static void check_webhook_key(struct ferry_config *cfg, const struct ferry_ingest_key_config *k,
                              const char *path)
{
    char fpath[INGEST_PATH_MAX];
    int sources = !!k->header + !!k->query + !!k->json;

    snprintf(fpath, sizeof(fpath), "%s.key", path);
    if (sources > 1)
        ferry_config_error(cfg, fpath, "set only one of header, query and json");
    if (k->required && sources == 0)
        ferry_config_error(cfg, fpath, "required, but no header, query or json is set");
    snprintf(fpath, sizeof(fpath), "%s.key.json", path);
    if (k->json && (!*k->json || k->json[0] == '.' || strstr(k->json, "..") ||
                    k->json[strlen(k->json) - 1] == '.'))
        ferry_config_error(cfg, fpath, "expected a dot-separated path like 'user.id', got '%s'",
                           k->json);
    snprintf(fpath, sizeof(fpath), "%s.key.header", path);
    if (k->header && !http_token_valid(k->header))
        ferry_config_error(cfg, fpath, "'%s' is not a header name", k->header);
}

static void check_webhook(struct ferry_config *cfg, void *obj, const char *path)
{
    struct ferry_ingest_webhook_config *w = obj;
    char fpath[INGEST_PATH_MAX], err[512];

    ferry_config_check_name(cfg, w->name, path);
    check_webhook_path(cfg, w, path);
    check_webhook_key(cfg, &w->key, path);
    snprintf(fpath, sizeof(fpath), "%s.topic", path);
    if (w->topic && ferry_topic_name_check(w->topic, strlen(w->topic), err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    snprintf(fpath, sizeof(fpath), "%s.headers", path);
    if (w->headers.count > FERRY_INGEST_WEBHOOK_HEADERS_MAX)
        ferry_config_error(cfg, fpath, "at most %d headers are allowed",
                           FERRY_INGEST_WEBHOOK_HEADERS_MAX);
    for (size_t i = 0; i < w->headers.count; i++) {
        snprintf(fpath, sizeof(fpath), "%s.headers[%zu]", path, i);
        if (!http_token_valid(w->headers.items[i]))
            ferry_config_error(cfg, fpath, "'%s' is not a header name", w->headers.items[i]);
    }
}

static void check_api_key(struct ferry_config *cfg, void *obj, const char *path)
{
    struct ferry_ingest_api_key_config *k = obj;
    char fpath[INGEST_PATH_MAX], secret[FERRY_INGEST_KEY_MAX + 1], err[512];

    ferry_config_check_name(cfg, k->name, path);
    snprintf(fpath, sizeof(fpath), "%s.topics", path);
    ferry_config_check_patterns(cfg, &k->topics, FERRY_CONFIG_TOPIC_NAMES, fpath);
    snprintf(fpath, sizeof(fpath), "%s.tables", path);
    ferry_config_check_patterns(cfg, &k->tables, FERRY_CONFIG_TABLE_NAMES, fpath);
    snprintf(fpath, sizeof(fpath), "%s.topics", path);
    if (ferry_config_line(cfg, fpath) == 0 && k->tables.count == 0)
        ferry_config_error(cfg, fpath, "missing, a key needs topics, tables or both");
    snprintf(fpath, sizeof(fpath), "%s.%s", path, k->key_file ? "key_file" : "key");
    if (k->key && k->key_file)
        ferry_config_error(cfg, fpath, "set key or key_file, not both");
    else if (ferry_ingest_key_read(k, secret, sizeof(secret), err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    memset(secret, 0, sizeof(secret));
}

/* Two keys with the same secret could not be told apart. */
static int same_secret(const struct ferry_ingest_api_key_config *a,
                       const struct ferry_ingest_api_key_config *b)
{
    char sa[FERRY_INGEST_KEY_MAX + 1], sb[FERRY_INGEST_KEY_MAX + 1], err[256];
    int same = !ferry_ingest_key_read(a, sa, sizeof(sa), err, sizeof(err)) &&
               !ferry_ingest_key_read(b, sb, sizeof(sb), err, sizeof(err)) && strcmp(sa, sb) == 0;
    memset(sa, 0, sizeof(sa));
    memset(sb, 0, sizeof(sb));
    return same;
}

static void check_auth(struct ferry_config *cfg, void *obj, const char *path)
{
    struct ferry_ingest_auth_config *a = obj;
    const struct ferry_ingest_api_key_config *keys = a->keys.items;
    char fpath[INGEST_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.keys", path);
    if (a->keys.count > FERRY_INGEST_KEYS_MAX) {
        ferry_config_error(cfg, fpath, "at most %d keys are allowed", FERRY_INGEST_KEYS_MAX);
        return;
    }
    for (size_t i = 0; i < a->keys.count; i++)
        for (size_t j = 0; j < i; j++)
            if (same_secret(&keys[i], &keys[j])) {
                snprintf(fpath, sizeof(fpath), "%s.keys[%zu]", path, i);
                ferry_config_error(cfg, fpath, "the same secret as keys[%zu]", j);
            }
}

int ferry_ingest_config_enabled(const struct ferry_ingest_config *in)
{
    return in->rest_proxy.topics.count > 0 || in->webhooks.count > 0;
}

/* ---- the job's top-level key ---- */

static const struct ferry_cfg_field ingest_root_fields[] = {
    {"ingest", FERRY_CFG_SECTION, 0, NULL, 0, 0, NULL, &ferry_ingest_section, 0, NULL},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_ingest_config_section = {
    "", ingest_root_fields, sizeof(struct ferry_ingest_config), NULL, NULL};

/* librdkafka refuses a topic whose delivery timeout is not longer than the producer's linger
 * (kafka.properties' linger.ms or its alias): every topic would fail at its first request. */
static void check_linger(struct ferry_config *cfg, const struct ferry_ingest_config *in)
{
    for (size_t i = 0; i < cfg->kafka.properties.count; i++) {
        const struct ferry_cfg_kv *kv = &cfg->kafka.properties.items[i];
        char path[320];
        double ms;

        if (strcmp(kv->key, "linger.ms") != 0 && strcmp(kv->key, "queue.buffering.max.ms") != 0)
            continue;
        ms = strtod(kv->value, NULL);
        if (ms < (double)in->delivery_timeout_ms)
            continue;
        snprintf(path, sizeof(path), "kafka.properties.%s", kv->key);
        ferry_config_error(cfg, path,
                           "must be shorter than ingest.delivery_timeout (%lld ms), which "
                           "librdkafka needs to be longer; got %s",
                           (long long)in->delivery_timeout_ms, kv->value);
    }
}

void ferry_ingest_config_check(struct ferry_config *cfg, void *config)
{
    const struct ferry_ingest_config *in = config;

    check_unique(cfg, &in->webhooks, sizeof(struct ferry_ingest_webhook_config),
                 offsetof(struct ferry_ingest_webhook_config, name), "ingest.webhooks", "name",
                 "webhook is named");
    check_unique(cfg, &in->webhooks, sizeof(struct ferry_ingest_webhook_config),
                 offsetof(struct ferry_ingest_webhook_config, path), "ingest.webhooks", "path",
                 "webhook has the path");
    check_unique(cfg, &in->auth.keys, sizeof(struct ferry_ingest_api_key_config),
                 offsetof(struct ferry_ingest_api_key_config, name), "ingest.auth.keys", "name",
                 "key is named");
    if (in->webhooks.count > INGEST_MAX_WEBHOOKS)
        ferry_config_error(cfg, "ingest.webhooks",
                           "at most %d webhooks (each is a path of the server); got %zu",
                           INGEST_MAX_WEBHOOKS, in->webhooks.count);
    if (!ferry_ingest_config_enabled(in))
        return;
    check_linger(cfg, in);
    if (in->delivery_timeout_ms >= cfg->server.shutdown_timeout_ms)
        ferry_config_error(cfg, "ingest.delivery_timeout",
                           "must be shorter than server.shutdown_timeout (%lld ms), so that every "
                           "accepted request is answered before ferry exits; got %lld ms",
                           (long long)cfg->server.shutdown_timeout_ms,
                           (long long)in->delivery_timeout_ms);
}

void ferry_ingest_config_summary(const void *config, FILE *out)
{
    const struct ferry_ingest_config *in = config;
    const struct ferry_ingest_webhook_config *w = in->webhooks.items;

    for (size_t i = 0; i < in->rest_proxy.topics.count; i++)
        fprintf(out, "  ingest: POST /topics/%s (REST Proxy v2, ack: %s)\n",
                in->rest_proxy.topics.items[i], ferry_ingest_acks[in->rest_proxy.ack]);
    for (size_t i = 0; i < in->webhooks.count; i++)
        fprintf(out, "  ingest: POST %s -> %s (webhook, ack: %s)\n", w[i].path, w[i].topic,
                ferry_ingest_acks[w[i].ack]);
}
