/*
 * partitioner.c - the partition of a key, through librdkafka's own partitioners (see
 * partitioner.h for why they may be called without a topic handle).
 */
#include "table/partitioner.h"

#include <librdkafka/rdkafka.h>

int32_t ferry_partitioner_murmur2(const void *key, size_t len, int32_t partitions)
{
    if (partitions < 1)
        return -1;
    return rd_kafka_msg_partitioner_murmur2(NULL, key, len, partitions, NULL, NULL);
}

int32_t ferry_partitioner_crc32(const void *key, size_t len, int32_t partitions)
{
    if (partitions < 1)
        return -1;
    return rd_kafka_msg_partitioner_consistent(NULL, key, len, partitions, NULL, NULL);
}
