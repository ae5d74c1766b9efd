/*
 * member_map.h - the member map of a table placed `partitioned`, as JSON for
 * GET /tables/{table}: who is live, what each holds and how far behind, and the holders of
 * each partition (docs/tables.md).
 */
#ifndef FERRY_TABLE_MEMBER_MAP_H
#define FERRY_TABLE_MEMBER_MAP_H

#include "core/buf.h"
#include "table/state.h"

/* Appends ,"members":[...],"holders":[...] for a partitioned table (nothing for placement
 * `all`). Any thread. */
void ferry_table_member_map_add(struct ferry_buf *out, struct table *t);

/* The most bytes ferry_table_member_map_add() may append for t with the members live now: 0 for
 * placement `all`. Any thread. */
size_t ferry_table_member_map_max(struct table *t);

#endif
