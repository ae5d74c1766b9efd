/*
 * events.h - subscriptions to a table's changes as Server-Sent Events:
 * GET /tables/{table}/keys/{key}/events and GET /tables/{table}/events?prefix=P.
 */
#ifndef FERRY_TABLE_EVENTS_H
#define FERRY_TABLE_EVENTS_H

#include <stddef.h>

#include "core/httpd.h"
#include "table/state.h"

/* GET /tables/{table}/keys/{key}/events. Server thread. */
void ferry_table_events_key(struct table *t, ferry_http_req *req, const char *key, size_t len);

/* GET /tables/{table}/events?prefix=P. Server thread. */
void ferry_table_events_prefix(struct table *t, ferry_http_req *req);

#endif
