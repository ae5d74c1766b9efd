/*
 * forward_get.h - the answer to a forwarded GET of a key, made from the key's row in a batched
 * lookup: what the holder's own GET would have answered (the value, ETag, Last-Modified,
 * Content-Type and the Ferry-* headers, or the 404).
 */
#ifndef FERRY_TABLE_FORWARD_GET_H
#define FERRY_TABLE_FORWARD_GET_H

#include <stddef.h>

#include "core/httpd.h"

/* Answers req from result[0..len), one result of a detailed lookup (query.h), served by the
 * instance served_by. Returns the status answered, or -1 (req not answered) when result is not
 * such a row. Any thread (req is suspended). */
int ferry_forward_get_answer(ferry_http_req *req, const char *table, const char *result, size_t len,
                             const char *served_by);

#endif
