/*
 * etag.h - the name of a value's version: the ETag of a key's GET and the id of its Server-Sent
 * Events, "<partition>:<offset>-<hash>" (docs/tables.md, docs/table-events.md).
 *
 * <partition>:<offset> is the record that wrote the value; <hash> is 8 lowercase hex digits of
 * ferry_etag_hash() of the value's bytes. A topic that is deleted and created again starts its
 * offsets at 0 again, so the place alone may name another value than the one a client holds;
 * the hash tells them apart. It is a function of the data only, not of the store or the
 * instance: every instance that holds the same record gives the same tag, also after a rebuild.
 * The key is left out: a tag is only ever compared with a row of the same key (the URL's, or
 * the subscription's), and one record is one key.
 *
 * The form of ferry before the hash, "<partition>:<offset>", still parses (a Last-Event-ID in
 * that form is a resume) but names no row.
 */
#ifndef FERRY_TABLE_ETAG_H
#define FERRY_TABLE_ETAG_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest tag with its quotes, signs and NUL: 1 + 11 + 1 + 20 + 1 + 8 + 1 + 1 = 44. */
#define FERRY_ETAG_MAX 48

/* The hash in the id of a delete event: a tombstone has no value. */
#define FERRY_ETAG_DELETED 0u

/* A tag taken apart. */
struct ferry_etag {
    int has_hash; /* 0 for the form without a hash, which names no row */
    uint32_t hash;
    int32_t partition;
    int64_t offset;
};

/* A 32-bit hash of value[0..len), the same on every machine (bytes are read as little-endian
 * words). Not for adversaries: it tells a value from another written at the same place. Any
 * thread. */
uint32_t ferry_etag_hash(const void *value, size_t len);

/* Writes "<partition>:<offset>-<hash>" into out (FERRY_ETAG_MAX bytes suffice), quoted when
 * quoted is nonzero (as the ETag header carries it). Returns the length written, or -1 when it
 * did not fit. */
int ferry_etag_format(char *out, size_t size, int32_t partition, int64_t offset, uint32_t hash,
                      int quoted);

/* Parses text[0..len) (unquoted): "<partition>:<offset>-<hash>", or "<partition>:<offset>"
 * (has_hash 0). Returns 0, or -1 for anything else (tag is then left undefined). */
int ferry_etag_parse(const char *text, size_t len, struct ferry_etag *tag);

/* Nonzero when tag names the row written by the record at partition:offset whose value hashes
 * to hash. */
int ferry_etag_names(const struct ferry_etag *tag, int32_t partition, int64_t offset,
                     uint32_t hash);

/* Nonzero when an If-None-Match header (a list of tags, weak ones too, or *) names etag, a
 * quoted tag as ferry_etag_format() writes it. Any other text, the form without a hash
 * included, matches nothing. */
int ferry_etag_matches(const char *header, const char *etag);

#endif
