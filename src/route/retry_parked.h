/*
 * retry_parked.h - the records a route has parked on its retry topics, by key.
 *
 * Under `ordering: key`, a record must not overtake an earlier record of its key that is
 * parked on a retry topic: the route parks it behind instead of delivering it, and a record
 * coming back from a retry topic is delivered only when no earlier record of its key is still
 * parked. This set answers both: for each key it keeps the original offsets of the key's
 * parked records, so "is this key parked?" and "is this the earliest?" are one lookup each. A
 * key leaves the set with its last parked record (delivered or dead-lettered). The route
 * rebuilds the set from its retry topics whenever it is given partitions.
 *
 * Keys are bytes (they may hold NUL); the caller makes them unique per source partition. The
 * set holds at most max_records records: past that, add refuses (the route then parks the
 * record all the same and logs that its key's order is not kept). Used by one route worker
 * thread only.
 */
#ifndef FERRY_RETRY_PARKED_H
#define FERRY_RETRY_PARKED_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_retry_parked ferry_retry_parked;

/* Returns an empty set that holds at most max_records records (at least 1), or NULL when out
 * of memory. The caller owns it. */
ferry_retry_parked *ferry_retry_parked_new(size_t max_records);

/* Frees the set. Accepts NULL. */
void ferry_retry_parked_destroy(ferry_retry_parked *s);

/* Forgets every key. */
void ferry_retry_parked_clear(ferry_retry_parked *s);

/* Counts one more parked record of key, at its original offset (an offset may be counted
 * twice: a record parked again before its first copy was committed). Returns 0, or -1 when the
 * set is full or memory ran out (nothing changed). */
int ferry_retry_parked_add(ferry_retry_parked *s, const void *key, size_t len, int64_t offset);

/* Counts the parked record of key at offset out; the key leaves the set with its last record.
 * Returns the records of key still parked, or -1 when that record was not parked. */
long ferry_retry_parked_remove(ferry_retry_parked *s, const void *key, size_t len, int64_t offset);

/* Returns how many records of key are parked (0: none). */
size_t ferry_retry_parked_count(const ferry_retry_parked *s, const void *key, size_t len);

/* Returns the lowest original offset of key's parked records, or -1 when none is parked. */
int64_t ferry_retry_parked_first(const ferry_retry_parked *s, const void *key, size_t len);

/* Returns how many keys, and how many records, are in the set. */
size_t ferry_retry_parked_keys(const ferry_retry_parked *s);
size_t ferry_retry_parked_records(const ferry_retry_parked *s);

#endif
