/*
 * placement.c - rendezvous hashing of (table, partition, member): who holds which partition.
 *
 * The weight is FNV-1a over the table name, a 0 byte, the partition (4 bytes, big-endian) and
 * the member name, then the 64-bit finalizer of splitmix64, whose avalanche spreads names that
 * differ in one character (instances called web-1, web-2, ...) over the whole range.
 */
#include "table/placement.h"

#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static uint64_t finalize(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t ferry_placement_weight(const char *table, int32_t partition, const char *member)
{
    const unsigned char zero = 0;
    unsigned char be[4];
    uint32_t p = (uint32_t)partition;
    uint64_t h = FNV_OFFSET;

    be[0] = (unsigned char)(p >> 24);
    be[1] = (unsigned char)(p >> 16);
    be[2] = (unsigned char)(p >> 8);
    be[3] = (unsigned char)p;
    h = fnv_bytes(h, table, strlen(table));
    h = fnv_bytes(h, &zero, 1);
    h = fnv_bytes(h, be, sizeof(be));
    h = fnv_bytes(h, member, strlen(member));
    return finalize(h);
}

/* 1 when (wa, a) ranks before (wb, b): a higher weight, or an equal one and a name first. */
static int ranks_before(uint64_t wa, const char *a, uint64_t wb, const char *b)
{
    return wa != wb ? wa > wb : strcmp(a, b) < 0;
}

size_t ferry_placement_holders(const char *table, int32_t partition, const char *const *members,
                               size_t n, size_t replicas, size_t *holders)
{
    uint64_t top[FERRY_PLACEMENT_MAX_REPLICAS]; /* the weights of holders[] */
    size_t count = 0, want = replicas < n ? replicas : n;

    if (want > FERRY_PLACEMENT_MAX_REPLICAS)
        want = FERRY_PLACEMENT_MAX_REPLICAS;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = ferry_placement_weight(table, partition, members[i]);
        size_t at = count;
        while (at > 0 && ranks_before(w, members[i], top[at - 1], members[holders[at - 1]]))
            at--;
        if (at >= want)
            continue;
        if (count < want)
            count++;
        memmove(top + at + 1, top + at, (count - 1 - at) * sizeof(top[0]));
        memmove(holders + at + 1, holders + at, (count - 1 - at) * sizeof(holders[0]));
        top[at] = w;
        holders[at] = i;
    }
    return count;
}

int ferry_placement_holds(const char *table, int32_t partition, const char *const *members,
                          size_t n, size_t replicas, size_t self)
{
    size_t holders[FERRY_PLACEMENT_MAX_REPLICAS];
    size_t count = ferry_placement_holders(table, partition, members, n, replicas, holders);

    for (size_t i = 0; i < count; i++)
        if (holders[i] == self)
            return 1;
    return 0;
}
