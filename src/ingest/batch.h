/*
 * batch.h - the records of one ingest request, as the parsers (restproxy.c, webhook.c) hand
 * them to the producer (produce.c).
 *
 * Keys, values and header bytes point into the request body, into the request's headers, or
 * into the batch's arena, which holds what had to be decoded (base64, JSON escapes, compacted
 * JSON). The arena is allocated once, before parsing, at the size of the body: decoding never
 * makes text longer, so pointers into it stay valid. A batch lives on the server thread that
 * parses it, and only until its records are handed to the producer (which copies them).
 */
#ifndef FERRY_INGEST_BATCH_H
#define FERRY_INGEST_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* No partition given: the producer's partitioner picks one (murmur2 of the key). */
#define FERRY_INGEST_PARTITION_ANY (-1)

/* What one request may carry (ingest.limits in the config). */
struct ferry_ingest_limits {
    size_t max_records;
    size_t max_key_bytes;
    size_t max_value_bytes;
    size_t max_headers;
    size_t max_header_bytes;
};

struct ferry_ingest_header {
    const char *name;
    size_t name_len;
    const char *value; /* NULL for a null value */
    size_t value_len;
};

struct ferry_ingest_record {
    const char *key; /* NULL: no key */
    size_t key_len;
    const char *value; /* NULL: a null value (a tombstone) */
    size_t value_len;
    int32_t partition; /* or FERRY_INGEST_PARTITION_ANY */
    size_t first_header;
    size_t nheaders;
};

struct ferry_ingest_batch {
    struct ferry_ingest_record *records;
    size_t count, alloc;
    struct ferry_ingest_header *headers;
    size_t nheaders, aheaders;
    char *arena;
    size_t arena_len, arena_cap;
    size_t bytes; /* keys, values and headers together */
};

/* Prepares an empty batch whose arena can hold arena_cap bytes. Returns 0, or -1 when out of
 * memory (the batch may still be released). */
int ferry_ingest_batch_init(struct ferry_ingest_batch *b, size_t arena_cap);

/* Frees what the batch holds. */
void ferry_ingest_batch_release(struct ferry_ingest_batch *b);

/* Adds a record without key, value or headers, to any partition. Returns it, or NULL when out
 * of memory. The pointer is valid until the next add. */
struct ferry_ingest_record *ferry_ingest_batch_add(struct ferry_ingest_batch *b);

/* Adds a header to the last record added. Returns it, or NULL when out of memory. */
struct ferry_ingest_header *ferry_ingest_batch_add_header(struct ferry_ingest_batch *b);

/* The free part of the arena: at most ferry_ingest_batch_room() bytes may be written there,
 * then ferry_ingest_batch_commit() keeps n of them. */
char *ferry_ingest_batch_space(struct ferry_ingest_batch *b);
size_t ferry_ingest_batch_room(const struct ferry_ingest_batch *b);
void ferry_ingest_batch_commit(struct ferry_ingest_batch *b, size_t n);

/* Sums the bytes of every record into b->bytes. */
void ferry_ingest_batch_count_bytes(struct ferry_ingest_batch *b);

#endif
