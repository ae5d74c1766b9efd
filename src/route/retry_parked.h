/*
 * retry_parked.h - the keys a route has records of parked on its retry topics.
 *
 * Under `ordering: key`, a record whose key has an earlier record parked on a retry topic
 * must not overtake it: the route parks it behind (on the same retry topic) instead of
 * delivering it. This set answers "is this key parked?" and counts how many records of each
 * key are parked, so that the key leaves the set only when its last parked record was
 * delivered or dead-lettered. The route rebuilds it when it starts by reading its retry
 * topics from the committed offsets to their ends.
 *
 * Keys are bytes (they may hold NUL). The set holds at most max_keys keys: a key past that is
 * refused, and the caller must then hold records back (pause) rather than deliver out of
 * order. Used by one route worker thread only; nothing here locks.
 */
#ifndef FERRY_RETRY_PARKED_H
#define FERRY_RETRY_PARKED_H

#include <stddef.h>

typedef struct ferry_retry_parked ferry_retry_parked;

/* Returns an empty set that holds at most max_keys keys (at least 1), or NULL when out of
 * memory. The caller owns it. */
ferry_retry_parked *ferry_retry_parked_new(size_t max_keys);

/* Frees the set. Accepts NULL. */
void ferry_retry_parked_destroy(ferry_retry_parked *s);

/* Counts one more parked record of key. Returns 0, or -1 when the key is new and the set is
 * full or memory ran out (nothing changed). */
int ferry_retry_parked_add(ferry_retry_parked *s, const void *key, size_t len);

/* Counts one parked record of key less; the key leaves the set with its last record. Returns
 * the records of key still parked, or -1 when key was not parked. */
long ferry_retry_parked_remove(ferry_retry_parked *s, const void *key, size_t len);

/* Returns how many records of key are parked (0: none). */
size_t ferry_retry_parked_count(const ferry_retry_parked *s, const void *key, size_t len);

/* Returns how many keys are in the set. */
size_t ferry_retry_parked_keys(const ferry_retry_parked *s);

#endif
