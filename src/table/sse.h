/*
 * sse.h - the text of the Server-Sent Events a table subscription sends (events.c, fanout.c;
 * the format is docs/table-events.md).
 *
 * Each function appends one whole event, blank line included, to a capped buffer. The data of
 * every event is one line of JSON: a JSON value is embedded with its line breaks (whitespace
 * outside strings, the only place valid JSON has them) taken out, any other value is base64,
 * so no value can end an event early.
 */
#ifndef FERRY_TABLE_SSE_H
#define FERRY_TABLE_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "table/store.h"

/* A comment line: keeps an idle stream (and the proxies on its way) alive. */
#define FERRY_SSE_KEEPALIVE ": keepalive\n\n"

/* Appends `event: put` for a row: id "<partition>:<offset>-<hash>" (etag.h), data {"key",
 * "value", "partition", "offset"}; stores the value's hash in *hash when hash is not NULL.
 * Returns 0, or -1 when out's cap would be passed (out is then as it was). */
int ferry_sse_put(struct ferry_buf *out, const struct ferry_store_entry *e, uint32_t *hash);

/* Appends `event: delete` for key. With partition >= 0 the event is the tombstone at
 * partition:offset (its id, with the hash FERRY_ETAG_DELETED, and both in its data); with
 * partition < 0 it has no id (a key found gone when a stream resumes) and its data is only
 * {"key"}. Returns 0 or -1 as ferry_sse_put. */
int ferry_sse_delete(struct ferry_buf *out, const void *key, size_t key_len, int32_t partition,
                     int64_t offset);

/* Appends `event: sync`, the end of a subscription's state, with data {"keys": keys}. Returns
 * 0 or -1 as ferry_sse_put. */
int ferry_sse_sync(struct ferry_buf *out, uint64_t keys);

/* Appends a control event (reset, error, shutdown) with data {"reason", "message"}. Returns 0
 * or -1 as ferry_sse_put. */
int ferry_sse_notice(struct ferry_buf *out, const char *event, const char *reason,
                     const char *message);

#endif
