/*
 * partitioner.h - which partition of a topic a key belongs to.
 *
 * A table answers for a key only from the partition its producers wrote it to, so it must
 * compute the same partition as they did. Two partitioners cover the producers a table meets:
 *   - murmur2: (murmur2(key) & 0x7fffffff) % partitions, the Java client's default and
 *     librdkafka's `murmur2` / `murmur2_random` (ferry's own producer uses murmur2_random);
 *   - crc32: CRC-32 (IEEE, as zlib) of the key % partitions, librdkafka's default
 *     `consistent_random` and `consistent`.
 * Both call librdkafka's own exported partitioners, so they agree with the producers' library
 * by construction. Those functions take a topic handle, but the two used here read only the key
 * and the partition count (librdkafka 2.0.2, src/rdkafka_msg.c), so they are called with none.
 *
 * Keys: a Kafka record without a key (NULL) cannot be a table row, and the `_random` variants
 * send such records to a random partition. Here a NULL key is hashed like the empty key, as the
 * non-random `murmur2` and `consistent` partitioners do: murmur2 gives
 * (0x106e08d9 & 0x7fffffff) % partitions and crc32 gives partition 0. The `_random` variants
 * hash an empty non-NULL key differently: murmur2_random like here, consistent_random randomly.
 *
 * Pure functions: any thread may call them.
 */
#ifndef FERRY_PARTITIONER_H
#define FERRY_PARTITIONER_H

#include <stddef.h>
#include <stdint.h>

/* Returns the murmur2 partition (0 .. partitions-1) of key, or -1 when partitions < 1.
 * key may be NULL when len is 0. */
int32_t ferry_partitioner_murmur2(const void *key, size_t len, int32_t partitions);

/* Returns the crc32 partition (0 .. partitions-1) of key, or -1 when partitions < 1.
 * key may be NULL when len is 0. */
int32_t ferry_partitioner_crc32(const void *key, size_t len, int32_t partitions);

#endif
