/*
 * retry_parked.c - the records parked on retry topics, by key (see retry_parked.h): a chained
 * hash table whose bucket array doubles as keys come, each entry holding its key bytes and the
 * original offsets of its parked records (few per key: a linear search is enough).
 */
#include "route/retry_parked.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define PARKED_BUCKETS_MIN 64
#define PARKED_OFFSETS_MIN 4 /* offsets an entry has room for at first */

struct entry {
    SLIST_ENTRY(entry) link;
    uint32_t hash;
    int64_t *offsets; /* count of them, in no order */
    size_t count, cap;
    size_t len;
    unsigned char key[]; /* len bytes */
};

SLIST_HEAD(chain, entry);

struct ferry_retry_parked {
    struct chain *buckets;
    size_t nbuckets; /* a power of two, or 0 before the first key */
    size_t nkeys;
    size_t nrecords;
    size_t max_records;
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

ferry_retry_parked *ferry_retry_parked_new(size_t max_records)
{
    ferry_retry_parked *s = calloc(1, sizeof(*s));

    if (s)
        s->max_records = max_records ? max_records : 1;
    return s;
}

static void entry_free(struct entry *e)
{
    free(e->offsets);
    free(e);
}

void ferry_retry_parked_clear(ferry_retry_parked *s)
{
    struct entry *e;

    for (size_t i = 0; i < s->nbuckets; i++) {
        while ((e = SLIST_FIRST(&s->buckets[i]))) {
            SLIST_REMOVE_HEAD(&s->buckets[i], link);
            entry_free(e);
        }
    }
    s->nkeys = 0;
    s->nrecords = 0;
}

void ferry_retry_parked_destroy(ferry_retry_parked *s)
{
    if (!s)
        return;
    ferry_retry_parked_clear(s);
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

/* Makes room for one more offset in e. Returns 0, or -1 when out of memory. */
static int entry_reserve(struct entry *e)
{
    size_t cap = e->cap ? e->cap * 2 : PARKED_OFFSETS_MIN;
    int64_t *offsets;

    if (e->count < e->cap)
        return 0;
    offsets = realloc(e->offsets, cap * sizeof(*offsets));
    if (!offsets)
        return -1;
    e->offsets = offsets;
    e->cap = cap;
    return 0;
}

/* Returns a new entry for key, in the table, or NULL when out of memory. */
static struct entry *entry_new(ferry_retry_parked *s, const void *key, size_t len, uint32_t h)
{
    struct entry *e;

    if (s->nkeys >= s->nbuckets && grow(s))
        return NULL;
    e = calloc(1, sizeof(*e) + len);
    if (!e)
        return NULL;
    e->hash = h;
    e->len = len;
    if (len)
        memcpy(e->key, key, len);
    SLIST_INSERT_HEAD(&s->buckets[h & (s->nbuckets - 1)], e, link);
    s->nkeys++;
    return e;
}

static void entry_drop(ferry_retry_parked *s, struct entry *e)
{
    SLIST_REMOVE(&s->buckets[e->hash & (s->nbuckets - 1)], e, entry, link);
    entry_free(e);
    s->nkeys--;
}

int ferry_retry_parked_add(ferry_retry_parked *s, const void *key, size_t len, int64_t offset)
{
    uint32_t h = hash_bytes(key, len);
    struct entry *e = find(s, key, len, h);
    int made = 0;

    if (s->nrecords >= s->max_records)
        return -1;
    if (!e) {
        e = entry_new(s, key, len, h);
        made = 1;
    }
    if (!e || entry_reserve(e)) {
        if (e && made)
            entry_drop(s, e);
        return -1;
    }
    e->offsets[e->count++] = offset;
    s->nrecords++;
    return 0;
}

long ferry_retry_parked_remove(ferry_retry_parked *s, const void *key, size_t len, int64_t offset)
{
    struct entry *e = find(s, key, len, hash_bytes(key, len));
    size_t i;

    if (!e)
        return -1;
    for (i = 0; i < e->count && e->offsets[i] != offset; i++)
        ;
    if (i == e->count)
        return -1;
    e->offsets[i] = e->offsets[--e->count];
    s->nrecords--;
    if (e->count > 0)
        return (long)e->count;
    entry_drop(s, e);
    return 0;
}

size_t ferry_retry_parked_count(const ferry_retry_parked *s, const void *key, size_t len)
{
    const struct entry *e = find(s, key, len, hash_bytes(key, len));

    return e ? e->count : 0;
}

int64_t ferry_retry_parked_first(const ferry_retry_parked *s, const void *key, size_t len)
{
    const struct entry *e = find(s, key, len, hash_bytes(key, len));
    int64_t first = -1;

    for (size_t i = 0; e && i < e->count; i++)
        if (first < 0 || e->offsets[i] < first)
            first = e->offsets[i];
    return first;
}

size_t ferry_retry_parked_keys(const ferry_retry_parked *s)
{
    return s->nkeys;
}

size_t ferry_retry_parked_records(const ferry_retry_parked *s)
{
    return s->nrecords;
}
