/*
 * batch.c - the records of one ingest request (see batch.h).
 */
#include "ingest/batch.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_FIRST_ALLOC 4

int ferry_ingest_batch_init(struct ferry_ingest_batch *b, size_t arena_cap)
{
    memset(b, 0, sizeof(*b));
    b->arena = malloc(arena_cap + 1);
    if (!b->arena)
        return -1;
    b->arena_cap = arena_cap;
    return 0;
}

void ferry_ingest_batch_release(struct ferry_ingest_batch *b)
{
    free(b->records);
    free(b->headers);
    free(b->arena);
    memset(b, 0, sizeof(*b));
}

/* Grows *items (of size `size`) to hold one more than *count. */
static int grow(void **items, size_t *alloc, size_t count, size_t size)
{
    size_t n;
    void *p;

    if (count < *alloc)
        return 0;
    n = *alloc ? *alloc * 2 : BATCH_FIRST_ALLOC;
    p = realloc(*items, n * size);
    if (!p)
        return -1;
    *items = p;
    *alloc = n;
    return 0;
}

struct ferry_ingest_record *ferry_ingest_batch_add(struct ferry_ingest_batch *b)
{
    struct ferry_ingest_record *r;

    if (grow((void **)&b->records, &b->alloc, b->count, sizeof(*r)))
        return NULL;
    r = &b->records[b->count++];
    memset(r, 0, sizeof(*r));
    r->partition = FERRY_INGEST_PARTITION_ANY;
    r->first_header = b->nheaders;
    return r;
}

struct ferry_ingest_header *ferry_ingest_batch_add_header(struct ferry_ingest_batch *b)
{
    struct ferry_ingest_header *h;

    if (!b->count || grow((void **)&b->headers, &b->aheaders, b->nheaders, sizeof(*h)))
        return NULL;
    h = &b->headers[b->nheaders++];
    memset(h, 0, sizeof(*h));
    b->records[b->count - 1].nheaders++;
    return h;
}

char *ferry_ingest_batch_space(struct ferry_ingest_batch *b)
{
    return b->arena + b->arena_len;
}

size_t ferry_ingest_batch_room(const struct ferry_ingest_batch *b)
{
    return b->arena_cap - b->arena_len;
}

void ferry_ingest_batch_commit(struct ferry_ingest_batch *b, size_t n)
{
    b->arena_len += n <= ferry_ingest_batch_room(b) ? n : 0;
}

void ferry_ingest_batch_count_bytes(struct ferry_ingest_batch *b)
{
    size_t n = 0;

    for (size_t i = 0; i < b->count; i++)
        n += b->records[i].key_len + b->records[i].value_len;
    for (size_t i = 0; i < b->nheaders; i++)
        n += b->headers[i].name_len + b->headers[i].value_len;
    b->bytes = n;
}
