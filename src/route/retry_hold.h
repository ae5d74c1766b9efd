/*
 * retry_hold.h - retry-topic partitions held until their head record is due.
 *
 * A route consumes its own retry topics. When the record it fetched from a retry partition is
 * not due yet, the route pauses that partition, forgets the record (and anything fetched after
 * it), and holds the partition here with the offset to seek back to and the due time. The
 * earliest due time goes into the worker's wait (no sleep, no polling); once it passes, the
 * route seeks the partition back to that offset and resumes it, and the record comes again,
 * now due. Records on one retry topic share one delay and are written in order, so the head
 * of a partition is due first and nothing behind it is held longer than it must be.
 *
 * Used by one route worker thread only; nothing here locks.
 */
#ifndef FERRY_RETRY_HOLD_H
#define FERRY_RETRY_HOLD_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_retry_hold ferry_retry_hold;

/* Returns an empty set of held partitions, or NULL when out of memory. The caller owns it. */
ferry_retry_hold *ferry_retry_hold_new(void);

/* Frees it. Accepts NULL. */
void ferry_retry_hold_destroy(ferry_retry_hold *h);

/* Holds topic/partition until due_ms, to be resumed at offset. Returns 0 when it was not held
 * (the caller pauses it now), 1 when it was held already (nothing changes: the record is one
 * fetched after the held one and comes again after the seek), or -1 when out of memory. */
int ferry_retry_hold_park(ferry_retry_hold *h, const char *topic, int32_t partition, int64_t offset,
                          int64_t due_ms);

/* Nonzero when topic/partition is held. */
int ferry_retry_hold_held(const ferry_retry_hold *h, const char *topic, int32_t partition);

/* The earliest due time of a held partition, or INT64_MAX. */
int64_t ferry_retry_hold_next_ms(const ferry_retry_hold *h);

/* Lets go of every partition due at now_ms, earliest first, calling resume(arg, topic,
 * partition, offset) for each (the caller seeks and resumes it there). Returns how many. */
size_t ferry_retry_hold_release_due(ferry_retry_hold *h, int64_t now_ms,
                                    void (*resume)(void *arg, const char *topic, int32_t partition,
                                                   int64_t offset),
                                    void *arg);

/* Returns 1, once, when offset is the record a released hold of topic/partition sought back
 * to: its wait is over, whatever due time it carries (the route caps a wait at its retry
 * topic's delay, so a due time further off, from a clock ahead of this one, would otherwise
 * hold it again every time it came back). Else 0. */
int ferry_retry_hold_take_released(ferry_retry_hold *h, const char *topic, int32_t partition,
                                   int64_t offset);

/* Lets go of topic/partition without resuming it (it was revoked), and forgets its release. */
void ferry_retry_hold_forget(ferry_retry_hold *h, const char *topic, int32_t partition);

/* Calls fn(arg, topic, partition) for each held partition (the route pauses them again after
 * resuming all of its partitions). fn must not change the set. */
void ferry_retry_hold_each(const ferry_retry_hold *h,
                           void (*fn)(void *arg, const char *topic, int32_t partition), void *arg);

/* How many partitions are held, for /metrics. */
size_t ferry_retry_hold_count(const ferry_retry_hold *h);

#endif
