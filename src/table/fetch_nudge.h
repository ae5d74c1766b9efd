/*
 * fetch_nudge.h - wakes librdkafka's fetcher while a table loads (fetch_nudge.c says why).
 */
#ifndef FERRY_TABLE_FETCH_NUDGE_H
#define FERRY_TABLE_FETCH_NUDGE_H

#include <stddef.h>

#include "table/state.h"

typedef struct ferry_table_nudge ferry_table_nudge;

/* Starts a thread that watches the table's consumer queue and wakes librdkafka's fetcher
 * when the queue runs low. Returns the nudge, owned by the caller until
 * ferry_table_nudge_destroy, or NULL with errstr. The table's consumer must outlive it. Apply
 * thread. */
ferry_table_nudge *ferry_table_nudge_new(struct table *t, char *errstr, size_t errstr_size);

/* Asks the thread to end, without waiting: it may be in a request that waits behind a fetch
 * for up to fetch.wait.max.ms. Apply thread. */
void ferry_table_nudge_stop(ferry_table_nudge *n);

/* Stops the thread, waits for it (one broker request's timeout at worst) and frees the
 * nudge. Accepts NULL. Apply thread. */
void ferry_table_nudge_destroy(ferry_table_nudge *n);

#endif
