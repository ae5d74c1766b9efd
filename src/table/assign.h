/*
 * assign.h - which partitions a table's apply thread reads: every one for placement `all`; for
 * placement `partitioned`, those that rendezvous placement over the live members gives this
 * instance (placement.h, cluster.h), changed as members come and go.
 *
 * Only the table's apply thread calls these.
 */
#ifndef FERRY_TABLE_ASSIGN_H
#define FERRY_TABLE_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "table/state.h"

/* Nonzero when the table is placed partitioned. */
int ferry_table_is_partitioned(const struct table *t);

/* Assigns the table's partitions to its consumer for the first time, each from its next
 * offset in next[] (-1: the beginning). Returns 0, or -1 with errstr. */
int ferry_table_assign_start(struct table *t, const int64_t *next, char *errstr,
                             size_t errstr_size);

/* Placement partitioned: when the live members changed who holds what, assigns the consumer
 * the partitions this instance holds now, continuing the ones it kept where it was. Returns 1
 * when the assignment changed, 0 when not, -1 with errstr when the consumer refused. */
int ferry_table_assign_update(struct table *t, char *errstr, size_t errstr_size);

/* Placement partitioned: deletes from store some rows of a partition given up more than
 * cluster.grace ago (FORGET_ROWS_PER_STEP looked at, in a batch of its own: call it with no
 * batch open). Returns 0, or the store's negative FERRY_STORE_* result with errstr. */
int ferry_table_assign_forget(struct table *t, ferry_store *store, char *errstr,
                              size_t errstr_size);

/* Marks each held partition serving once it is within ready_lag of the end it had when it was
 * assigned. */
void ferry_table_assign_serving(struct table *t);

#endif
