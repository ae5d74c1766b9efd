/*
 * query.h - reads of many keys at once: a multi-get (POST /tables/{table}/lookup) and a
 * prefix scan with a cursor (GET /tables/{table}/keys?prefix=P&limit=N&after=C).
 */
#ifndef FERRY_TABLE_QUERY_H
#define FERRY_TABLE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/httpd.h"
#include "table/state.h"

/* Called for each key of a lookup's body, decoded (key_format applied), in order. Returns 0,
 * or -1 to stop the walk (with *error set, or not when the callee failed on its own). */
typedef int (*ferry_table_key_fn)(void *arg, const char *key, size_t len, const char **error);

/* Walks {"keys": [...]} of t's lookup body[0..n), base64 keys when b64, checking the keys
 * against t's limits; scratch has room for n bytes. Returns 0, or -1 with *error set for a
 * body that is wrong (or left as fn left it). Any thread. */
int ferry_table_lookup_walk(struct table *t, const char *body, size_t n, int b64, char *scratch,
                            ferry_table_key_fn fn, void *arg, const char **error);

/* Appends key's answer as a lookup gives it: its row, or {"key", "error_code": 404} when the
 * store lacks it. Returns FERRY_STORE_OK, or a store error with why filled (out is left as it
 * was), or -1 (as FERRY_STORE_ERROR) when out's cap was reached. */
int ferry_table_lookup_add(ferry_store *store, const char *key, size_t len, struct ferry_buf *out,
                           char *why, size_t why_size);

/* As ferry_table_lookup_add, with what a GET of the key would say besides the value:
 * "timestamp_ms", "content_type" (as the GET would give it) and "lag" of its partition, and
 * for a missing key its "partition" and "lag". For the batched GETs of another instance. */
int ferry_table_lookup_add_detail(struct table *t, ferry_store *store, const char *key, size_t len,
                                  struct ferry_buf *out, char *why, size_t why_size);

/* Appends {"key": ..., "error_code": code} for a key no instance could answer. */
int ferry_table_lookup_add_error(struct ferry_buf *out, const char *key, size_t len, int code);

/* POST /tables/{table}/lookup with {"keys": [...]}. Server thread. */
void ferry_table_lookup(struct table *t, ferry_http_req *req, int64_t started_us);

/* GET /tables/{table}/keys?prefix=&limit=&after=. Server thread. */
void ferry_table_scan(struct table *t, ferry_http_req *req, int64_t started_us);

/* A scan's parameters, decoded. */
struct ferry_scan_args {
    char *prefix, *after; /* owned; NULL when absent */
    size_t plen, alen, limit;
};

/* Decodes a scan's parameters from their query text, each NULL when absent: prefix
 * (prefix_len bytes, which may hold NUL; base64 when b64), limit (1 to limits.max_scan_limit)
 * and after (a cursor, base64url). Returns 0, or -1 with why filled (the message of a 400).
 * Release args whatever the result. Any thread. */
int ferry_table_scan_args_decode(const struct table *t, const char *prefix, size_t prefix_len,
                                 const char *limit, const char *after, int b64,
                                 struct ferry_scan_args *args, char *why, size_t why_size);

/* Reads a scan's parameters (extra: one more known parameter, or NULL). Returns 0, or -1
 * after answering 400 (counted). Release args whatever the result. Server thread. */
int ferry_table_scan_args(struct table *t, ferry_http_req *req, const char *extra,
                          struct ferry_scan_args *args, int64_t started_us);
void ferry_table_scan_args_release(struct ferry_scan_args *args);

/* Answers one page of a scan of the rows of the partitions set in partitions[0..n) only.
 * Server thread. */
void ferry_table_scan_answer(struct table *t, ferry_http_req *req,
                             const struct ferry_scan_args *args, const unsigned char *partitions,
                             int32_t n, int64_t started_us);

/* Called for each row of ferry_table_scan_rows: the row as a scan answer lists it, and its
 * cursor. Returns 0, or -1 to stop. */
typedef int (*ferry_table_row_fn)(void *arg, const char *row, size_t row_len, const void *cursor,
                                  size_t cursor_len);

/* Scans store as a page of args would (rows of the set partitions only) and hands each row to
 * fn; *more is set when rows follow. Returns a ferry_store_result, why filled on error. */
int ferry_table_scan_rows(ferry_store *store, const struct ferry_scan_args *args,
                          const unsigned char *partitions, int32_t n, ferry_table_row_fn fn,
                          void *arg, int *more, char *why, size_t why_size);

#endif
