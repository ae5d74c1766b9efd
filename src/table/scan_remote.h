/*
 * scan_remote.h - a prefix scan of a table placed `partitioned`: every partition's rows come
 * from one instance that serves it (this one where it can), and the pages are merged in key
 * order with a cursor that holds for all of them.
 */
#ifndef FERRY_TABLE_SCAN_REMOTE_H
#define FERRY_TABLE_SCAN_REMOTE_H

#include <stdint.h>

#include "core/httpd.h"
#include "table/state.h"

/* GET /tables/{table}/keys on a partitioned table; answered now or from the forwarder's
 * thread. Server thread. */
void ferry_table_scan_partitioned(struct table *t, ferry_http_req *req, int64_t started_us);

#endif
