/*
 * apply.h - the thread that materializes a table's topic into its store, and its consumer.
 */
#ifndef FERRY_TABLE_APPLY_H
#define FERRY_TABLE_APPLY_H

#include <stddef.h>

#include "table/state.h"

/* Makes the table's consumer (nothing is assigned yet). Returns 0, or -1 with errstr. Main
 * thread. */
int ferry_table_consumer_new(struct table *t, char *errstr, size_t errstr_size);

/* Closes and frees the consumer, once the apply thread has ended. Accepts a table without
 * one. Main thread. */
void ferry_table_consumer_destroy(struct table *t);

/* The apply thread's body: prepares the store and the consumer, then applies the topic until
 * t->stop. arg is the table. */
void *ferry_table_apply_main(void *arg);

#endif
