/*
 * events.c - subscriptions to a table's changes as Server-Sent Events:
 * GET /tables/{table}/keys/{key}/events and GET /tables/{table}/events?prefix=P.
 *
 * This file checks the request (its parameters, the key or prefix, Last-Event-ID) and hands it
 * to fanout.c, which answers with the stream of events; docs/table-events.md describes them.
 * A key or prefix is taken as sent, or as base64 (either alphabet) with ?key_format=base64.
 */
#include "table/events.h"
#include "core/base64.h"
#include "core/clock.h"
#include "table/fanout.h"
#include "table/read_remote.h"
#include "table/reply.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* redirected_by: a partitioned table's redirect to this instance adds it (read_remote.c) */
static const char *const key_params[] = {"key_format", FERRY_TABLE_REDIRECTED_PARAM, NULL};
static const char *const prefix_params[] = {"prefix", "key_format", NULL};

/* Reads Last-Event-ID into sub: "<partition>:<offset>-<hash>", or the form without a hash
 * (a resume that names no row). An id of another shape resumes nothing. */
static void read_last_event_id(ferry_http_req *req, struct ferry_table_subscription *sub)
{
    const char *id = ferry_http_req_header(req, "Last-Event-ID");

    if (id && ferry_etag_parse(id, strlen(id), &sub->last) == 0)
        sub->resume = 1;
}

/* Checks the parameters and decodes key[0..*len) in place (?key_format=base64). Answers 400
 * and returns -1 when the request cannot be served. */
static int check_request(struct table *t, ferry_http_req *req, const char *const *known,
                         const char *what, char *key, size_t *len)
{
    const char *format = ferry_http_req_query(req, "key_format");
    char why[256];

    if (ferry_table_check_query(req, known, why, sizeof(why))) {
        ferry_http_respond_error(req, 400, 0, "%s", why);
    } else if (format && strcmp(format, "base64") != 0 && strcmp(format, "raw") != 0) {
        ferry_http_respond_error(req, 400, 0, "key_format: expected raw or base64, got '%s'",
                                 format);
    } else if (format && strcmp(format, "base64") == 0 &&
               ferry_base64_decode(key, *len, FERRY_BASE64_EITHER, len)) {
        ferry_http_respond_error(req, 400, 0, "%s: not base64", what);
    } else if (*len > (size_t)t->cfg->limits.max_key_bytes) {
        ferry_http_respond_error(req, 400, 0,
                                 "%s: %zu bytes, longer than limits.max_key (%" PRId64 ")", what,
                                 *len, t->cfg->limits.max_key_bytes);
    } else {
        return 0;
    }
    return -1;
}

/* Subscribes to key[0..len) (a copy the caller frees), or answers why not. */
static void subscribe(struct table *t, ferry_http_req *req, const char *const *known, int prefix,
                      char *key, size_t len)
{
    int64_t started_us = ferry_clock_us();
    struct ferry_table_subscription sub = {.prefix = prefix};
    int status = 400;

    if (!key) {
        status = 503;
        ferry_http_respond_error(req, 503, 0, "out of memory");
    } else if (check_request(t, req, known, prefix ? "prefix" : "key", key, &len) == 0) {
        status = 503;
        if (!ferry_table_refuse_unready(t, req)) {
            sub.key = key;
            sub.key_len = len;
            read_last_event_id(req, &sub);
            status = ferry_table_fanout_subscribe(t, req, &sub);
        }
    }
    ferry_table_count(t, status, started_us);
}

static char *copy_bytes(const char *p, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy) {
        memcpy(copy, p, len);
        copy[len] = '\0';
    }
    return copy;
}

void ferry_table_events_key(struct table *t, ferry_http_req *req, const char *key, size_t len)
{
    char *copy = copy_bytes(key, len);

    subscribe(t, req, key_params, 0, copy, len);
    free(copy);
}

void ferry_table_events_prefix(struct table *t, ferry_http_req *req)
{
    size_t len;
    const char *prefix = ferry_http_req_query_n(req, "prefix", &len);
    char *copy = copy_bytes(prefix ? prefix : "", len);

    subscribe(t, req, prefix_params, 1, copy, len);
    free(copy);
}
