/*
 * forward_get.c - a GET's answer from a lookup row (see forward_get.h). The row carries the
 * value as the lookup writes it (JSON as it is, anything else base64) and the headers' facts.
 */
#include "table/forward_get.h"
#include "core/base64.h"
#include "core/json_scan.h"
#include "table/etag.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GET_TYPE_MAX 256

static int find_int(const char *p, size_t n, const char *path, int64_t *v)
{
    struct ferry_json_found f;
    struct ferry_json_cursor c;

    if (ferry_json_find(p, n, path, &f) != 1 || f.type != FERRY_JSON_NUMBER)
        return -1;
    ferry_json_cursor_init(&c, f.span, f.len);
    return ferry_json_read_int(&c, v);
}

/* Decodes the string at path into a fresh buffer (*out, *len). */
static int find_string(const char *p, size_t n, const char *path, char **out, size_t *len)
{
    struct ferry_json_found f;
    struct ferry_json_cursor c;

    *out = NULL;
    if (ferry_json_find(p, n, path, &f) != 1 || f.type != FERRY_JSON_STRING)
        return -1;
    *out = malloc(f.len);
    ferry_json_cursor_init(&c, f.span, f.len);
    if (*out && ferry_json_read_string(&c, *out, len) == 0)
        return 0;
    free(*out);
    *out = NULL;
    return -1;
}

/* Whether the row's member name is the JSON literal true. */
static int is_true(const char *p, size_t n, const char *name)
{
    struct ferry_json_found f;

    return ferry_json_find(p, n, name, &f) == 1 && f.len == 4 && memcmp(f.span, "true", 4) == 0;
}

/* The value's bytes: base64 decoded into *owned, or the JSON text in place. Holders of this
 * version always send base64 (query.c); the JSON text comes only from an older holder, whose
 * own tags have no hash, so the two never agree anyway. */
static int value_bytes(const char *p, size_t n, const char **value, size_t *len, char **owned)
{
    struct ferry_json_found f, enc;

    *owned = NULL;
    if (ferry_json_find(p, n, "value", &f) != 1)
        return -1;
    if (ferry_json_find(p, n, "value_encoding", &enc) != 1) {
        *value = f.span;
        *len = f.len;
        return 0;
    }
    if (find_string(p, n, "value", owned, len) ||
        ferry_base64_decode(*owned, *len, FERRY_BASE64_STD, len)) {
        free(*owned);
        *owned = NULL;
        return -1;
    }
    *value = *owned;
    return 0;
}

static int answer_row(ferry_http_req *req, const char *p, size_t n, int64_t partition, int64_t lag,
                      const char *served_by)
{
    int64_t offset, ts = 0;
    char etag[FERRY_ETAG_MAX], *type = NULL, *owned = NULL;
    const char *value;
    size_t type_len = 0, len;

    if (partition < 0 || partition > INT32_MAX || find_int(p, n, "offset", &offset) ||
        value_bytes(p, n, &value, &len, &owned))
        return -1;
    find_int(p, n, "timestamp_ms", &ts);
    if (find_string(p, n, "content_type", &type, &type_len) == 0 && type_len < GET_TYPE_MAX)
        type[type_len] = '\0';
    /* the holder's GET hashes the value it sends: these are the same bytes */
    ferry_etag_format(etag, sizeof(etag), (int32_t)partition, offset, ferry_etag_hash(value, len),
                      1);
    ferry_http_add_header(req, "Ferry-Served-By", served_by);
    ferry_http_add_header(req, "ETag", etag);
    if (ts > 0)
        ferry_http_add_header_date(req, "Last-Modified", ts / 1000);
    ferry_http_add_header_int(req, "Ferry-Partition", partition);
    ferry_http_add_header_int(req, "Ferry-Offset", offset);
    ferry_http_add_header_int(req, "Ferry-Lag", lag);
    if (is_true(p, n, "rebuilding"))
        ferry_http_add_header(req, "Ferry-Rebuilding", "true");
    ferry_http_respond(req, 200, type && type_len < GET_TYPE_MAX ? type : NULL, value, len);
    free(type);
    free(owned);
    return 200;
}

int ferry_forward_get_answer(ferry_http_req *req, const char *table, const char *result, size_t len,
                             const char *served_by)
{
    int64_t partition, lag = 0, code = 0;

    if (find_int(result, len, "partition", &partition))
        return -1;
    find_int(result, len, "lag", &lag);
    if (find_int(result, len, "error_code", &code) == 0 && code != 404)
        return -1;
    if (code == 404) {
        ferry_http_add_header(req, "Ferry-Served-By", served_by);
        ferry_http_add_header_int(req, "Ferry-Partition", partition);
        ferry_http_add_header_int(req, "Ferry-Lag", lag);
        ferry_http_respond_error(req, 404, 0, "table '%s' has no such key", table);
        return 404;
    }
    return answer_row(req, result, len, partition, lag, served_by);
}
