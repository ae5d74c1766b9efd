/*
 * watermark.h - the commit watermark of one partition of a route.
 *
 * A route finishes records out of order (requests complete in any order, retries and dead
 * letters take longer), but Kafka commits a single offset per partition: everything below it is
 * done. The watermark tracker turns "these offsets finished" into "this offset is safe to
 * store": the lowest tracked offset not yet finished, so a crash redelivers only records that
 * were in flight and never skips one. Offsets are tracked in consumption order and may have
 * gaps (compaction, transaction markers).
 *
 * One tracker per partition, owned and used by that partition's route worker thread only; it
 * takes no locks.
 */
#ifndef FERRY_WATERMARK_H
#define FERRY_WATERMARK_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_watermark_s ferry_watermark;

/* Returns an empty tracker, or NULL when memory ran out. The caller owns it and frees it with
 * ferry_watermark_destroy(). */
ferry_watermark *ferry_watermark_new(void);

/* Frees the tracker. Accepts NULL. */
void ferry_watermark_destroy(ferry_watermark *wm);

/* Starts tracking a consumed record. Offsets must be in 0..INT64_MAX-1 and strictly increasing
 * across calls. Returns 0; -1 when the offset is not greater than the last tracked one (or out
 * of range); -2 when memory ran out. The tracker is unchanged on failure. */
int ferry_watermark_track(ferry_watermark *wm, int64_t offset);

/* Marks a tracked record finished and moves the watermark over any contiguous run of finished
 * records at its front. O(log n) in the number of pending records. Returns 0, or -1 when the
 * offset is not tracked or was already finished. */
int ferry_watermark_finish(ferry_watermark *wm, int64_t offset);

/* Returns the offset to store for this partition: the lowest tracked offset not yet finished,
 * or the last tracked offset + 1 when all are finished, or -1 when nothing was ever tracked. */
int64_t ferry_watermark_commit_offset(const ferry_watermark *wm);

/* Returns how many tracked records the watermark has not moved past yet. Zero means every
 * tracked record is finished, which is what a revoke waits for. */
size_t ferry_watermark_pending(const ferry_watermark *wm);

#endif
