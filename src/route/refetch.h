/*
 * refetch.h - restarts a route consumer's fetching after librdkafka stopped it for a full
 * queue and would otherwise wait up to a second to look again.
 *
 * librdkafka 2.0 (Debian 12's) stops fetching a partition while the consumer queue holds more
 * than queued.min.messages or queued.max.messages.kbytes, and decides again only when its
 * broker thread next wakes: on network traffic, or after a second at the latest. Draining the
 * queue wakes nothing. A route that empties its prefetch faster than that (batches of 100-byte
 * records go through a 4 MiB prefetch in well under 100 ms) would idle most of each second.
 * (Newer librdkafka has fetch.queue.backoff.ms for this.)
 *
 * The refetcher watches the queue. Once it has seen the queue at half of either limit, so
 * that librdkafka may have stopped, it restarts fetching the moment the route finds the queue
 * empty: it seeks every assigned partition that the route allows (one whose fetch has started)
 * to the position the route has consumed up to. The seek wakes the broker thread and, since
 * nothing of those partitions is queued, discards nothing and skips nothing. A seek would also
 * throw away a fetch under way, which is why the refetcher acts only after it saw the queue
 * that full, never whenever the queue runs dry.
 *
 * Owned and used by one route's worker thread; no locks.
 */
#ifndef FERRY_REFETCH_H
#define FERRY_REFETCH_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef struct ferry_refetch ferry_refetch;

/* Returns a refetcher for consumer, whose records the route takes from queue (both stay the
 * caller's and must outlive it), reading both limits from the consumer's configuration.
 * Returns NULL when out of memory. */
ferry_refetch *ferry_refetch_new(rd_kafka_t *consumer, rd_kafka_queue_t *queue);

/* Frees the refetcher. Accepts NULL. */
void ferry_refetch_destroy(ferry_refetch *f);

/* Call before taking records: notes the queue's length. */
void ferry_refetch_watch(ferry_refetch *f);

/* Call after taking records: how many and their payload bytes. Updates the mean record size
 * and, with the length noted by ferry_refetch_watch(), whether the queue was near a limit. */
void ferry_refetch_took(ferry_refetch *f, size_t count, size_t bytes);

/* Whether a partition may be sought: a seek, like a pause, can drop the fetch start of an
 * assignment that librdkafka 2.0.2 has not applied yet (route.c, set_paused). */
typedef int ferry_refetch_seekable_fn(void *arg, const char *topic, int32_t partition);

/* Call when the route found the queue empty. Restarts fetching when the queue was near a
 * limit since the last restart, unless paused is nonzero (the route paused its partitions
 * itself; resuming them restarts fetching anyway): seeks the assigned partitions that
 * seekable accepts (every one when it is NULL). Returns 1 when it restarted fetching. */
int ferry_refetch_on_empty(ferry_refetch *f, int paused, ferry_refetch_seekable_fn *seekable,
                           void *arg);

#endif
