/*
 * retry_rebuild.h - reads what is parked on a route's retry partitions, so that the route
 * knows which keys have records parked before it delivers any record of theirs.
 *
 * When a route is given partitions it reads each of its retry partitions it now owns from the
 * group's committed offset (the start when nothing was committed) to the partition's end as it
 * is at that moment, with a consumer of its own that joins no group, and hands every record
 * to a callback. Records parked later come through the route itself.
 *
 * Blocking: it runs on the route's worker thread inside the rebalance callback, bounded by a
 * deadline.
 */
#ifndef FERRY_RETRY_REBUILD_H
#define FERRY_RETRY_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/kafka.h"

/* Longest a rebuild may take before the route goes on with what it read (logged). */
#define FERRY_RETRY_REBUILD_TIMEOUT_MS 30000

/* Reads parts (topic and partition; the offsets are overwritten with the committed ones,
 * asked of group, the route's consumer) up to their ends, calling found(arg, msg) for each
 * record. name labels the reader's client; overrides (may be NULL) are the route's own Kafka
 * properties, set on the reader as on the route's consumer. Returns the records read, or -1 with
 * errstr when the committed offsets, the ends or the reader could not be had, or the deadline
 * passed first (what was found until then was handed over). */
long ferry_retry_rebuild(ferry_kafka *k, rd_kafka_t *group, const char *name,
                         const struct ferry_cfg_map *overrides,
                         rd_kafka_topic_partition_list_t *parts,
                         void (*found)(void *arg, const rd_kafka_message_t *msg), void *arg,
                         char *errstr, size_t errstr_size);

#endif
