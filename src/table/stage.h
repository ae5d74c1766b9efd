/*
 * stage.h - the records of one write transaction, held until it commits and then written to
 * the store in key order.
 *
 * A topic's records come in no key order, and a write transaction that puts them as they come
 * walks the whole B-tree at random: every put descends to another leaf, far from the last one
 * in memory. Put in key order, the same records touch the same pages one after the other, and
 * LMDB's share of a restore halves (bench/README.md, "Tables"). Records of one key keep the
 * order they came in, so the last one still wins.
 *
 * The stage copies what it holds into memory of its own, which it keeps for the next
 * transaction: holding the consumer's messages instead kept librdkafka from reusing its fetch
 * buffers, and the fresh memory it took cost what the order saved.
 */
#ifndef FERRY_TABLE_STAGE_H
#define FERRY_TABLE_STAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_table_stage ferry_table_stage;

/* One record to write: a row, or (value NULL) a tombstone. */
struct ferry_table_record {
    const void *key;
    size_t key_len;
    const void *value; /* NULL: a tombstone */
    size_t value_len;
    const char *content_type; /* its content-type header, or NULL */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
};

/* Called for each record in turn by ferry_table_stage_flush(); nonzero stops the flush. */
typedef int (*ferry_table_stage_fn)(void *arg, const struct ferry_table_record *rec);

/* A stage holding at most max_records records and max_bytes of their keys, values and content
 * types. Returns NULL when out of memory. */
ferry_table_stage *ferry_table_stage_new(size_t max_records, size_t max_bytes);

/* Frees the stage and what it holds. Accepts NULL. */
void ferry_table_stage_destroy(ferry_table_stage *stage);

/* Copies rec into the stage. Returns 0, or -1 when the stage is full or out of memory (the
 * stage is then unchanged): the caller flushes it and adds again, and writes a record that an
 * empty stage cannot take (larger than max_bytes) itself. */
int ferry_table_stage_add(ferry_table_stage *stage, const struct ferry_table_record *rec);

/* Records held. */
size_t ferry_table_stage_count(const ferry_table_stage *stage);

/* Bytes of the records held: their keys, values and content types (with their NULs). */
size_t ferry_table_stage_bytes(const ferry_table_stage *stage);

/* Calls fn on every record in key order (bytes, then length; records of one key in the order
 * they were added). Stops at the first nonzero result and returns it; 0 when all were visited.
 * The stage is empty afterwards either way, and keeps its memory. */
int ferry_table_stage_flush(ferry_table_stage *stage, ferry_table_stage_fn fn, void *arg);

/* As ferry_table_stage_flush(), in the order the records were added: every record before the
 * one a stop leaves unvisited is visited, so that what was written of a partition stops at an
 * offset (a store short of disk space commits a transaction in parts, apply.c). */
int ferry_table_stage_flush_as_added(ferry_table_stage *stage, ferry_table_stage_fn fn, void *arg);

/* Empties the stage without visiting what it held. With release set, also gives its memory
 * back (a load is over, and later transactions are small). */
void ferry_table_stage_clear(ferry_table_stage *stage, int release);

#endif
