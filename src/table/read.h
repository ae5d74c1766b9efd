/*
 * read.h - the tables' HTTP API on the server's listener: a key's latest value, a table's
 * state, the list of tables (docs/tables.md).
 *
 * Handlers run on the server's threads and read a table's store while its apply thread
 * writes; they never block on it.
 */
#ifndef FERRY_TABLE_READ_H
#define FERRY_TABLE_READ_H

#include "core/httpd.h"

struct ferry_tables; /* the job (state.h) */

/* Registers GET /tables and GET /tables/... for ts. Returns 0, or -1 when out of memory.
 * Main thread, before the server starts. */
int ferry_table_read_register(ferry_httpd *h, struct ferry_tables *ts);

#endif
