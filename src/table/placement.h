/*
 * placement.h - which members hold a partition of a table placed `partitioned`.
 *
 * Rendezvous (highest-random-weight) hashing: every member gets a weight for every
 * (table, partition) from a hash of the three, and the partition's holders are the R members
 * with the highest weights. Every instance that sees the same live members computes the same
 * holders without talking to the others, and a member that joins or leaves moves only the
 * partitions whose top R it enters or leaves: about R/N of them, not all (design.md, "Tables").
 *
 * Pure functions: any thread may call them.
 */
#ifndef FERRY_PLACEMENT_H
#define FERRY_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

/* The most holders a partition can have: the ceiling of a table's `replicas`. */
#define FERRY_PLACEMENT_MAX_REPLICAS 64

/* The weight of member for the table's partition. Equal inputs give equal weights on every
 * machine (the bytes are hashed in a fixed order, the partition big-endian). */
uint64_t ferry_placement_weight(const char *table, int32_t partition, const char *member);

/* Writes to holders[] (room for min(replicas, FERRY_PLACEMENT_MAX_REPLICAS) entries) the
 * indexes into members[0..n) of the partition's holders, the highest weight first, and returns
 * how many: the least of replicas, n and FERRY_PLACEMENT_MAX_REPLICAS. Ties (equal weights) go to
 * the member whose name sorts first, so the order never depends on the order of members[]. */
size_t ferry_placement_holders(const char *table, int32_t partition, const char *const *members,
                               size_t n, size_t replicas, size_t *holders);

/* Returns 1 when the member at index self of members[0..n) is one of the partition's holders,
 * else 0. */
int ferry_placement_holds(const char *table, int32_t partition, const char *const *members,
                          size_t n, size_t replicas, size_t self);

#endif
