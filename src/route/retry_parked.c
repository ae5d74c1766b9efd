/*
 * retry_parked.c - the set of parked keys (see retry_parked.h): a chained hash table whose
 * bucket array doubles as keys come, each entry holding its key bytes and a count.
 */
#include "route/retry_parked.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define PARKED_BUCKETS_MIN 64

struct entry {
    SLIST_ENTRY(entry) link;
    uint32_t hash;
    size_t count;
    size_t len;
    unsigned char key[]; /* len bytes */
};

SLIST_HEAD(chain, entry);

struct ferry_retry_parked {
    struct chain *buckets;
    size_t nbuckets; /* a power of two, or 0 before the first key */
    size_t nkeys;
    size_t max_keys;
};

static uint32_t hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

ferry_retry_parked *ferry_retry_parked_new(size_t max_keys)
{
    ferry_retry_parked *s = calloc(1, sizeof(*s));

    if (s)
        s->max_keys = max_keys ? max_keys : 1;
    return s;
}

void ferry_retry_parked_destroy(ferry_retry_parked *s)
{
    struct entry *e;

    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        while ((e = SLIST_FIRST(&s->buckets[i]))) {
            SLIST_REMOVE_HEAD(&s->buckets[i], link);
            free(e);
        }
    }
    free(s->buckets);
    free(s);
}

static struct entry *find(const ferry_retry_parked *s, const void *key, size_t len, uint32_t h)
{
    struct entry *e;

    if (!s->nbuckets)
        return NULL;
    SLIST_FOREACH(e, &s->buckets[h & (s->nbuckets - 1)], link)
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static int grow(ferry_retry_parked *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : PARKED_BUCKETS_MIN;
    struct chain *b = calloc(n, sizeof(*b)); /* all zero: every chain empty */
    struct entry *e;

    if (!b)
        return -1;
    for (size_t i = 0; i < s->nbuckets; i++) {
        while ((e = SLIST_FIRST(&s->buckets[i]))) {
            SLIST_REMOVE_HEAD(&s->buckets[i], link);
            SLIST_INSERT_HEAD(&b[e->hash & (n - 1)], e, link);
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return 0;
}

int ferry_retry_parked_add(ferry_retry_parked *s, const void *key, size_t len)
{
    uint32_t h = hash_bytes(key, len);
    struct entry *e = find(s, key, len, h);

    if (e) {
        e->count++;
        return 0;
    }
    if (s->nkeys >= s->max_keys)
        return -1;
    if (s->nkeys >= s->nbuckets && grow(s))
        return -1;
    e = calloc(1, sizeof(*e) + len);
    if (!e)
        return -1;
    e->hash = h;
    e->count = 1;
    e->len = len;
    if (len)
        memcpy(e->key, key, len);
    SLIST_INSERT_HEAD(&s->buckets[h & (s->nbuckets - 1)], e, link);
    s->nkeys++;
    return 0;
}

long ferry_retry_parked_remove(ferry_retry_parked *s, const void *key, size_t len)
{
    uint32_t h = hash_bytes(key, len);
    struct entry *e = find(s, key, len, h);

    if (!e)
        return -1;
    if (--e->count > 0)
        return (long)e->count;
    SLIST_REMOVE(&s->buckets[h & (s->nbuckets - 1)], e, entry, link);
    free(e);
    s->nkeys--;
    return 0;
}

size_t ferry_retry_parked_count(const ferry_retry_parked *s, const void *key, size_t len)
{
    const struct entry *e = find(s, key, len, hash_bytes(key, len));

    return e ? e->count : 0;
}

size_t ferry_retry_parked_keys(const ferry_retry_parked *s)
{
    return s->nkeys;
}
