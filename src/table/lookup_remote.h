/*
 * lookup_remote.h - POST /tables/{table}/lookup on a table placed `partitioned`: the keys this
 * instance serves are answered from its store, the others sent in one lookup per holder, and
 * the answers merged in the order asked.
 */
#ifndef FERRY_TABLE_LOOKUP_REMOTE_H
#define FERRY_TABLE_LOOKUP_REMOTE_H

#include <stdint.h>

#include "core/httpd.h"
#include "table/state.h"

/* Answers (now or later, from the forwarder's thread) a lookup of a partitioned table.
 * Server thread. */
void ferry_table_lookup_partitioned(struct table *t, ferry_http_req *req, int64_t started_us);

#endif
