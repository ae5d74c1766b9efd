/*
 * read_remote.h - reads of a table placed `partitioned` that this instance does not answer
 * itself: forwarded to a holder (GET of a key), redirected to one (a key's events), or
 * refused when no live instance serves the key's partition.
 */
#ifndef FERRY_TABLE_READ_REMOTE_H
#define FERRY_TABLE_READ_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "core/httpd.h"
#include "table/state.h"

/* The query parameter an events redirect adds, naming the instance that redirected: the
 * instance it reaches serves the events or answers 503, and never redirects it again. */
#define FERRY_TABLE_REDIRECTED_PARAM "redirected_by"

/* For a read of key (decoded from the path; key_format not applied yet) on a partitioned table:
 * returns 1 when the read was forwarded, redirected or answered here with an error, 0 when
 * this instance answers it as usual. events is nonzero for GET .../keys/{key}/events. Server
 * thread. */
int ferry_table_read_remote(struct table *t, ferry_http_req *req, const char *key, size_t len,
                            int events, int64_t started_us);

/* Adds Ferry-Served-By to an answer of a partitioned table given here. */
void ferry_table_served_here(const struct table *t, ferry_http_req *req);

#endif
