/*
 * query.h - reads of many keys at once: a multi-get (POST /tables/{table}/lookup) and a
 * prefix scan with a cursor (GET /tables/{table}/keys?prefix=P&limit=N&after=C).
 */
#ifndef FERRY_TABLE_QUERY_H
#define FERRY_TABLE_QUERY_H

#include <stdint.h>

#include "core/httpd.h"
#include "table/state.h"

/* POST /tables/{table}/lookup with {"keys": [...]}. Server thread. */
void ferry_table_lookup(struct table *t, ferry_http_req *req, int64_t started_us);

/* GET /tables/{table}/keys?prefix=&limit=&after=. Server thread. */
void ferry_table_scan(struct table *t, ferry_http_req *req, int64_t started_us);

#endif
