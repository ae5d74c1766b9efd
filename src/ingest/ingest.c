/*
 * ingest.c - the ingest job's life and its HTTP handlers (see ingest.h).
 *
 * A handler checks, in this order, what can be checked without reading the body (acceptable
 * answer type, path, API key, topic, the key's right to the topic, content type, size), then
 * parses the body into a batch (restproxy.c, webhook.c) and hands it to produce.c, which
 * produces, answers and keeps the in-flight budget. Authentication comes before the topic is
 * looked at, so a caller without a key learns nothing about which topics exist.
 */
#include "ingest/ingest.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/units.h"
#include "ingest/ingest_int.h"
#include "ingest/restproxy.h"
#include "ingest/webhook.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ingest_destroy(void *arg);

#define INGEST_REST_PREFIX "/topics/"
#define INGEST_REST_ENDPOINT "rest_proxy"
#define INGEST_WEBHOOK_TYPE "application/json"
#define INGEST_HOST_MAX 256

/* ---- in-flight figures for /metrics ---- */

static void collect(struct ferry_buf *out, void *arg)
{
    ferry_ingest *ing = arg;

    ferry_buf_addf(out,
                   "# HELP ferry_ingest_in_flight_bytes Bytes of ingested records not yet "
                   "acknowledged by the broker (with a per-record overhead).\n"
                   "# TYPE ferry_ingest_in_flight_bytes gauge\nferry_ingest_in_flight_bytes %lld\n"
                   "# HELP ferry_ingest_in_flight_limit_bytes ingest.limits.max_in_flight_bytes.\n"
                   "# TYPE ferry_ingest_in_flight_limit_bytes gauge\n"
                   "ferry_ingest_in_flight_limit_bytes %lld\n",
                   (long long)atomic_load(&ing->in_flight_bytes),
                   (long long)ing->max_in_flight_bytes);
    ferry_buf_addf(out,
                   "# HELP ferry_ingest_in_flight_records Ingested records waiting for their "
                   "delivery report (the ingest queue depth).\n"
                   "# TYPE ferry_ingest_in_flight_records gauge\n"
                   "ferry_ingest_in_flight_records %lld\n"
                   "# HELP ferry_ingest_in_flight_requests Ingest requests with records in "
                   "flight.\n# TYPE ferry_ingest_in_flight_requests gauge\n"
                   "ferry_ingest_in_flight_requests %lld\n",
                   (long long)atomic_load(&ing->in_flight_records),
                   (long long)atomic_load(&ing->in_flight_requests));
}

/* ---- authentication ---- */

/* Checks the request's API key. Returns 0 with *key (-1 when auth is off for ep), or answers
 * 401 and returns -1. */
static int authenticate(struct ingest_endpoint *ep, ferry_http_req *req, int *key)
{
    ferry_ingest *ing = ep->ing;

    *key = -1;
    if (!ferry_auth_enabled(ing->auth) || (ep->webhook && !ep->webhook->auth))
        return 0;
    *key = ferry_auth_check(ing->auth, ferry_http_req_header(req, "Authorization"));
    if (*key >= 0)
        return 0;
    ferry_ingest_reply_error(ep, req, 401, FERRY_RP_UNAUTHORIZED, FERRY_REJECT_UNAUTHORIZED,
                             "a valid API key is required (Authorization: Bearer <key>)");
    return -1;
}

/* Returns 0 when key (from authenticate) may write topic, else answers 403 and returns -1. */
static int permit(struct ingest_endpoint *ep, ferry_http_req *req,
                  const struct ferry_ingest_topic *topic, int key)
{
    if (key < 0 || (topic->keys >> key & 1))
        return 0;
    ferry_ingest_reply_error(ep, req, 403, FERRY_RP_FORBIDDEN, FERRY_REJECT_FORBIDDEN,
                             "API key '%s' may not write topic '%s'",
                             ferry_auth_name(ep->ing->auth, key), topic->name);
    return -1;
}

/* Answers 503 (and returns -1) once ingest is stopping: nothing is looked up or parsed. */
static int check_running(struct ingest_endpoint *ep, ferry_http_req *req)
{
    if (!atomic_load(&ep->ing->stopping))
        return 0;
    ferry_ingest_reply_error(ep, req, 503, 503, FERRY_REJECT_SHUTTING_DOWN,
                             "ferry is shutting down");
    return -1;
}

/* Answers 413 (and returns -1) when the body was cut at ingest.limits.max_body. */
static int check_size(struct ingest_endpoint *ep, ferry_http_req *req)
{
    if (!ferry_http_req_body_too_large(req))
        return 0;
    ferry_ingest_reply_error(ep, req, 413, 413, FERRY_REJECT_TOO_LARGE,
                             "body: larger than ingest.limits.max_body (%lld bytes)",
                             (long long)ep->ing->conf->limits.max_body);
    return -1;
}

/* ---- the REST Proxy API ---- */

/* Reads the topic and partition of a REST Proxy path into name and *partition (-1: none),
 * answering 404 (and returning -1) when the path names none. */
static int rest_path(struct ingest_endpoint *ep, ferry_http_req *req, char *name,
                     int32_t *partition)
{
    const char *path = ferry_http_req_raw_path(req);

    switch (ferry_restproxy_path(path, name, partition)) {
    case FERRY_RP_PATH_NO_ROUTE:
        ferry_ingest_reply_error(ep, req, 404, 404, -1, "no such path: %s", path);
        return -1;
    case FERRY_RP_PATH_BAD_PARTITION:
        ferry_ingest_reply_error(ep, req, 404, FERRY_RP_PARTITION_NOT_FOUND, -1,
                                 "partition not found: %s", path);
        return -1;
    case FERRY_RP_PATH_BAD_TOPIC:
        ferry_ingest_reply_error(ep, req, 404, FERRY_RP_TOPIC_NOT_FOUND, FERRY_REJECT_UNKNOWN_TOPIC,
                                 "topic not found: %s", path);
        return -1;
    default:
        return 0;
    }
}

/* Finds (or makes) the entry of topic name for a request with API key `key`, answering 404 when
 * there is none to write, and 403 when the key may not write a topic not yet cached. Called
 * only for a request that parsed, so that refused requests spend no entry and no handle (whose
 * metadata request may create the topic in Kafka). */
static const struct ferry_ingest_topic *rest_topic(struct ingest_endpoint *ep, ferry_http_req *req,
                                                   const char *name, int key)
{
    const struct ferry_ingest_topic *t;
    enum ferry_ingest_topics_refusal refusal;

    t = ferry_ingest_topics_rest(ep->ing->topics, name, key, &refusal);
    if (!t && refusal == FERRY_INGEST_TOPICS_FORBIDDEN)
        ferry_ingest_reply_error(ep, req, 403, FERRY_RP_FORBIDDEN, FERRY_REJECT_FORBIDDEN,
                                 "API key '%s' may not write topic '%s'",
                                 ferry_auth_name(ep->ing->auth, key), name);
    else if (!t)
        ferry_ingest_reply_error(
            ep, req, 404, FERRY_RP_TOPIC_NOT_FOUND, FERRY_REJECT_UNKNOWN_TOPIC,
            "topic '%s' not found%s", name,
            refusal == FERRY_INGEST_TOPICS_FULL ? " (ingest.limits.max_topics reached)" : "");
    return t;
}

/* Parses a REST Proxy body into b; answers and returns -1 when it cannot be produced. */
static int rest_parse(struct ingest_endpoint *ep, ferry_http_req *req, int32_t partition,
                      struct ferry_ingest_batch *b)
{
    enum ferry_rp_format format;
    char why[512];
    size_t len;
    const char *body = ferry_http_req_body(req, &len);
    int code = 0, status;

    if (ferry_restproxy_format(ferry_http_req_header(req, "Content-Type"), &format)) {
        ferry_ingest_reply_error(ep, req, 415, 415, FERRY_REJECT_UNSUPPORTED_MEDIA_TYPE,
                                 "Content-Type must be application/vnd.kafka.json.v2+json, "
                                 "application/vnd.kafka.binary.v2+json or application/json");
        return -1;
    }
    if (check_size(ep, req))
        return -1;
    if (ferry_ingest_batch_init(b, len)) {
        ferry_ingest_reply_error(ep, req, 503, 503, -1, "out of memory");
        return -1;
    }
    status = ferry_restproxy_parse(body, len, format, partition, &ep->ing->limits, b, &code, why,
                                   sizeof(why));
    if (!status)
        return 0;
    ferry_ingest_reply_error(ep, req, status, code,
                             status == 413 ? FERRY_REJECT_TOO_LARGE : FERRY_REJECT_INVALID, "%s",
                             why);
    return -1;
}

/* POST /topics/{topic}[/partitions/{partition}]. Server thread. */
static void on_rest(ferry_http_req *req, void *arg)
{
    ferry_ingest *ing = arg;
    struct ingest_endpoint *ep = &ing->rest;
    const char *type = ferry_restproxy_answer_type(ferry_http_req_header(req, "Accept"));
    const struct ferry_ingest_topic *topic;
    struct ferry_ingest_batch b = {0};
    char name[FERRY_TOPIC_NAME_MAX + 1];
    int32_t partition;
    int key;

    if (!type) {
        ferry_ingest_reply_error(ep, req, 406, 406, FERRY_REJECT_NOT_ACCEPTABLE,
                                 "ferry answers %s or application/json", FERRY_RP_ANSWER_TYPE);
        return;
    }
    if (check_running(ep, req) || authenticate(ep, req, &key))
        return;
    /* As in REST Proxy, the body is read before the topic is looked up: 415, 413 and 422
     * come before 404 and 403. */
    if (rest_path(ep, req, name, &partition) || rest_parse(ep, req, partition, &b))
        goto out;
    topic = rest_topic(ep, req, name, key);
    if (!topic || permit(ep, req, topic, key))
        goto out;
    ferry_ingest_produce(ing, ep, req, topic, &b, type);
out:
    ferry_ingest_batch_release(&b);
}

/* ---- webhooks ---- */

static const char *webhook_key(const struct ingest_endpoint *ep, ferry_http_req *req)
{
    const struct ferry_ingest_key_config *k = &ep->webhook->key;

    if (k->header)
        return ferry_http_req_header(req, k->header);
    if (k->query)
        return ferry_http_req_query(req, k->query);
    return NULL;
}

/* POST <path> of one webhook. Server thread. */
static void on_webhook(ferry_http_req *req, void *arg)
{
    struct ingest_endpoint *ep = arg;
    const char *values[FERRY_INGEST_WEBHOOK_HEADERS_MAX];
    struct ferry_webhook_input in = {0};
    struct ferry_ingest_batch b = {0};
    char why[512];
    int code = 0, status, key;

    if (check_running(ep, req) || authenticate(ep, req, &key) || permit(ep, req, ep->topic, key) ||
        check_size(ep, req))
        return;
    in.body = ferry_http_req_body(req, &in.len);
    in.content_type = ferry_http_req_header(req, "Content-Type");
    in.key = webhook_key(ep, req);
    in.nheaders = ep->webhook->headers.count;
    for (size_t i = 0; i < in.nheaders; i++)
        values[i] = ferry_http_req_header(req, ep->webhook->headers.items[i]);
    in.header_names = (const char *const *)ep->header_names;
    in.header_values = values;
    if (ferry_ingest_batch_init(&b, in.len)) {
        ferry_ingest_reply_error(ep, req, 503, 503, -1, "out of memory");
        return;
    }
    status = ferry_webhook_parse(ep->webhook, &in, &ep->ing->limits, &b, &code, why, sizeof(why));
    if (status)
        ferry_ingest_reply_error(ep, req, status, code,
                                 status == 413 ? FERRY_REJECT_TOO_LARGE : FERRY_REJECT_INVALID,
                                 "%s", why);
    else
        ferry_ingest_produce(ep->ing, ep, req, ep->topic, &b, INGEST_WEBHOOK_TYPE);
    ferry_ingest_batch_release(&b);
}

/* ---- set-up ---- */

static int endpoint_init(ferry_ingest *ing, struct ingest_endpoint *ep, const char *name, int ack)
{
    ep->ing = ing;
    ep->name = name;
    ep->ack = ack;
    return ferry_ingest_metrics_endpoint(ing->metrics, name, &ep->m);
}

static char *lower_dup(const char *s)
{
    char *out = strdup(s);
    for (char *p = out; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

static int webhook_init(ferry_ingest *ing, struct ingest_endpoint *ep,
                        const struct ferry_ingest_webhook_config *w, char *errstr,
                        size_t errstr_size)
{
    if (w->headers.count > FERRY_INGEST_WEBHOOK_HEADERS_MAX) {
        snprintf(errstr, errstr_size, "webhook '%s': at most %d headers, got %zu", w->name,
                 FERRY_INGEST_WEBHOOK_HEADERS_MAX, w->headers.count);
        return -1;
    }
    ep->header_names = calloc(w->headers.count + 1, sizeof(char *));
    if (endpoint_init(ing, ep, w->name, w->ack) || !ep->header_names) {
        snprintf(errstr, errstr_size, "webhook '%s': out of memory for its endpoint", w->name);
        return -1;
    }
    ep->webhook = w;
    for (size_t i = 0; i < w->headers.count; i++) {
        ep->header_names[i] = lower_dup(w->headers.items[i]);
        if (!ep->header_names[i]) {
            snprintf(errstr, errstr_size, "webhook '%s': out of memory for its header names",
                     w->name);
            return -1;
        }
    }
    ep->topic = ferry_ingest_topics_fixed(ing->topics, w->topic, errstr, errstr_size);
    return ep->topic ? 0 : -1;
}

static void set_limits(ferry_ingest *ing)
{
    const struct ferry_ingest_limits_config *l = &ing->conf->limits;

    ing->limits.max_records = (size_t)l->max_records;
    ing->limits.max_key_bytes = (size_t)l->max_key_bytes;
    ing->limits.max_value_bytes = (size_t)l->max_value_bytes;
    ing->limits.max_headers = (size_t)l->max_headers;
    ing->limits.max_header_bytes = (size_t)l->max_header_bytes;
    ing->max_in_flight_bytes = l->max_in_flight_bytes;
    ing->max_in_flight_records = l->max_in_flight_records;
}

static int build(ferry_ingest *ing, ferry_kafka *k, char *errstr, size_t errstr_size)
{
    const struct ferry_ingest_config *c = ing->conf;
    const struct ferry_ingest_webhook_config *w = c->webhooks.items;
    char why[512];

    ing->rk = ferry_kafka_producer(k);
    ing->rest_topics = ferry_patterns_new(&c->rest_proxy.topics, why, sizeof(why));
    if (!ing->rest_topics) {
        snprintf(errstr, errstr_size, "ingest.rest_proxy.topics: %s", why);
        return -1;
    }
    ing->topics =
        ferry_ingest_topics_new(ing->rk, ing->rest_topics, ing->auth, (size_t)c->limits.max_topics,
                                c->webhooks.count, c->delivery_timeout_ms, errstr, errstr_size);
    ing->webhooks = calloc(c->webhooks.count + 1, sizeof(*ing->webhooks));
    if (!ing->topics || !ing->webhooks ||
        endpoint_init(ing, &ing->rest, INGEST_REST_ENDPOINT, c->rest_proxy.ack) ||
        ferry_ingest_metrics_rejects(ing->metrics, &ing->rejects))
        return -1;
    for (size_t i = 0; i < c->webhooks.count; i++, ing->nwebhooks++)
        if (webhook_init(ing, &ing->webhooks[i], &w[i], errstr, errstr_size))
            return -1;
    ing->collector = !ferry_metrics_add_collector(ing->metrics, collect, ing);
    return ing->collector ? 0 : -1;
}

/* Adds the keys of ingest.auth.keys to the listener's keys, which every job checks: at create,
 * and as the job's add_keys for the config checks. */
static int add_keys(const void *config, ferry_auth *auth, char *errstr, size_t errstr_size)
{
    const struct ferry_cfg_list *keys = &((const struct ferry_ingest_config *)config)->auth.keys;
    const struct ferry_ingest_api_key_config *k = keys->items;
    char secret[FERRY_INGEST_KEY_MAX + 1], why[512];
    int result = 0;

    for (size_t i = 0; i < keys->count && !result; i++) {
        result = ferry_ingest_key_read(&k[i], secret, sizeof(secret), why, sizeof(why));
        if (result)
            snprintf(errstr, errstr_size, "ingest.auth.keys[%zu]: %s", i, why);
        else
            result = ferry_auth_add(auth, k[i].name, secret, strlen(secret), &k[i].topics,
                                    &k[i].tables, errstr, errstr_size);
    }
    explicit_bzero(secret, sizeof(secret));
    return result;
}

/* Adds the API keys, and builds the endpoints of the `ingest:` section (topic handles for
 * webhooks, metrics). With no endpoint configured the object does nothing. Main thread. */
static void *ingest_new(const struct ferry_job_context *ctx, char *errstr, size_t errstr_size)
{
    ferry_ingest *ing = calloc(1, sizeof(*ing));

    if (!ing || ferry_ingest_flight_init(ing)) {
        snprintf(errstr, errstr_size, "ingest: %s",
                 ing ? "cannot make the lock of its requests in flight" : "out of memory");
        free(ing);
        return NULL;
    }
    ing->cfg = ctx->cfg;
    ing->conf = ctx->config;
    ing->metrics = ctx->metrics;
    ing->auth = ctx->auth;
    set_limits(ing);
    if (add_keys(ing->conf, ing->auth, errstr, errstr_size)) {
        ingest_destroy(ing);
        return NULL;
    }
    snprintf(errstr, errstr_size, "ingest: out of memory");
    if (ferry_ingest_config_enabled(ing->conf) && build(ing, ctx->kafka, errstr, errstr_size)) {
        ingest_destroy(ing);
        return NULL;
    }
    return ing;
}

/* ---- registration ---- */

static int is_loopback(const char *listen)
{
    char host[INGEST_HOST_MAX];
    int port;

    if (ferry_hostport_parse(listen, host, sizeof(host), &port))
        return 0;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static void log_endpoints(const ferry_ingest *ing)
{
    const struct ferry_ingest_config *c = ing->conf;
    const char *listen = ing->cfg->server.listen;

    if (c->rest_proxy.topics.count)
        FLOG_INFO("ingest", INGEST_REST_ENDPOINT,
                  "REST Proxy API on POST %s{topic} for %zu topic pattern(s), ack=%s",
                  INGEST_REST_PREFIX, c->rest_proxy.topics.count,
                  ferry_ingest_acks[c->rest_proxy.ack]);
    for (size_t i = 0; i < ing->nwebhooks; i++)
        FLOG_INFO("ingest", ing->webhooks[i].name, "webhook on POST %s -> topic %s, ack=%s",
                  ing->webhooks[i].webhook->path, ing->webhooks[i].webhook->topic,
                  ferry_ingest_acks[ing->webhooks[i].ack]);
    if (!ferry_auth_enabled(ing->auth) && !is_loopback(listen))
        FLOG_WARN("ingest", NULL,
                  "NO API KEYS: anyone who can reach %s may write to Kafka through ingest. "
                  "Set ingest.auth.keys, or listen on 127.0.0.1 only",
                  listen);
}

/* Registers the endpoints on h, before the server starts. Main thread. */
static int ingest_register(void *arg, ferry_httpd *h, char *errstr, size_t errstr_size)
{
    ferry_ingest *ing = arg;
    size_t max_body = (size_t)ing->conf->limits.max_body;

    if (!ferry_ingest_config_enabled(ing->conf))
        return 0;
    if (ing->conf->rest_proxy.topics.count &&
        ferry_httpd_route(h, "POST", INGEST_REST_PREFIX, FERRY_HTTP_PREFIX | FERRY_HTTP_OWN_413,
                          max_body, on_rest, ing)) {
        snprintf(errstr, errstr_size,
                 "ingest: cannot register POST '%s': out of memory, or the server has no room for "
                 "more paths",
                 INGEST_REST_PREFIX);
        return -1;
    }
    for (size_t i = 0; i < ing->nwebhooks; i++) {
        if (ferry_httpd_route(h, "POST", ing->webhooks[i].webhook->path,
                              FERRY_HTTP_EXACT | FERRY_HTTP_OWN_413, max_body, on_webhook,
                              &ing->webhooks[i])) {
            snprintf(errstr, errstr_size,
                     "webhook '%s': cannot register POST '%s': out of memory, or the server has "
                     "no room for more paths (%zu webhooks are configured)",
                     ing->webhooks[i].name, ing->webhooks[i].webhook->path, ing->nwebhooks);
            return -1;
        }
    }
    log_endpoints(ing);
    return 0;
}

/* Not ready once stopping. Any thread. */
static int ingest_ready(void *arg, char *why, size_t why_size)
{
    ferry_ingest *ing = arg;

    if (!atomic_load(&ing->stopping))
        return 1;
    snprintf(why, why_size, "shutting down");
    return 0;
}

/* ---- shutdown ---- */

#define INGEST_DRAIN_MARGIN_MS 2000 /* librdkafka checks message timeouts about once a second */

/* Stops taking requests (new ones get 503) and waits, at most timeout_ms and at most the
 * delivery timeout plus a margin, until every accepted request was answered after its delivery
 * reports; any request still waiting then is answered 503. Afterwards releases the producer's
 * topic handles. The server no longer takes connections by then, but is not yet gone. */
/* New requests get 503 from the signal on, while the other jobs stop before ingest drains. */
static void ingest_quiesce(void *arg)
{
    ferry_ingest *ing = arg;

    if (ing)
        atomic_store(&ing->stopping, 1);
}

static void ingest_stop(void *arg, int64_t timeout_ms)
{
    ferry_ingest *ing = arg;
    int64_t limit;
    size_t early;

    if (!ing)
        return;
    limit = ing->conf->delivery_timeout_ms + INGEST_DRAIN_MARGIN_MS;
    if (limit > timeout_ms)
        limit = timeout_ms;
    if (atomic_load(&ing->in_flight_requests) > 0)
        FLOG_INFO("ingest", NULL, "waiting for %lld requests to be acknowledged (at most %lld ms)",
                  (long long)atomic_load(&ing->in_flight_requests), (long long)limit);
    early = ferry_ingest_flight_drain(ing, limit);
    if (early)
        FLOG_WARN("ingest", NULL,
                  "answered %zu requests 503 before Kafka acknowledged them (shutdown)", early);
    if (ing->topics)
        ferry_ingest_topics_release(ing->topics);
}

/* Frees everything, after the producer's final flush (which may still deliver reports of
 * ingested records). */
static void ingest_destroy(void *arg)
{
    ferry_ingest *ing = arg;

    if (!ing)
        return;
    if (ing->collector)
        ferry_metrics_remove_collector(ing->metrics, collect, ing);
    for (size_t i = 0; ing->webhooks && i < ing->conf->webhooks.count; i++) {
        char **names = ing->webhooks[i].header_names;
        for (size_t j = 0; names && names[j]; j++)
            free(names[j]);
        free(names);
    }
    free(ing->webhooks);
    ferry_ingest_topics_destroy(ing->topics);
    ferry_patterns_destroy(ing->rest_topics);
    ferry_ingest_flight_release(ing);
    free(ing);
}

/* Ingest's part of GET /status: its endpoints' counters and the rejections by reason. Any
 * thread. */
static int ingest_status(void *arg, struct ferry_buf *out)
{
    ferry_ingest *ing = arg;
    int result = ferry_buf_adds(out, "{\"endpoints\":[") ||
                 ferry_ingest_metrics_report(&ing->rest.m, INGEST_REST_ENDPOINT, out);

    for (size_t i = 0; i < ing->nwebhooks && !result; i++)
        result = ferry_buf_addc(out, ',') ||
                 ferry_ingest_metrics_report(&ing->webhooks[i].m, ing->webhooks[i].name, out);
    if (result || ferry_buf_adds(out, "],\"rejected\":") ||
        ferry_ingest_metrics_rejects_report(&ing->rejects, out) || ferry_buf_addc(out, '}'))
        return -1;
    return 0;
}

const struct ferry_job ferry_ingest_job = {
    .name = "ingest",
    .config = &ferry_ingest_config_section,
    .check = ferry_ingest_config_check,
    .summary = ferry_ingest_config_summary,
    .add_keys = add_keys,
    .create = ingest_new,
    .http_register = ingest_register,
    .ready = ingest_ready,
    .status = ingest_status,
    .quiesce = ingest_quiesce,
    .stop = ingest_stop,
    .destroy = ingest_destroy,
};
