/*
 * events.h - subscriptions to a table's changes as Server-Sent Events:
 * GET /tables/{table}/keys/{key}/events and GET /tables/{table}/events?prefix=P. The handlers
 * check the request and hand it to fanout.c, which streams the events (docs/table-events.md).
 */
#ifndef FERRY_TABLE_EVENTS_H
#define FERRY_TABLE_EVENTS_H

#include <stddef.h>

#include "core/httpd.h"
#include "table/state.h"

/* GET /tables/{table}/keys/{key}/events; key[0..len) is the path's segment, percent-decoded.
 * Answers a stream, or 400/429/503 with a JSON error. Server thread. */
void ferry_table_events_key(struct table *t, ferry_http_req *req, const char *key, size_t len);

/* GET /tables/{table}/events[?prefix=P]: every key without a prefix. Answers as above.
 * Server thread. */
void ferry_table_events_prefix(struct table *t, ferry_http_req *req);

#endif
