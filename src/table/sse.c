/*
 * sse.c - the text of a subscription's Server-Sent Events (see sse.h).
 *
 * A key is a JSON string when it is valid UTF-8, else base64 with "key_encoding":"base64"; a
 * value is embedded when it is valid JSON, else base64 with "value_encoding":"base64": the
 * shapes of query.c's rows, so that a client reads both with the same code.
 */
#include "table/sse.h"
#include "core/base64.h"
#include "core/json.h"
#include "table/etag.h"

#include <inttypes.h>
#include <string.h>

/* Appends "name":<bytes>, base64 with "name_encoding" when they are not UTF-8 text. */
static int add_text_or_base64(struct ferry_buf *out, const char *name, const void *p, size_t n)
{
    if (ferry_buf_addf(out, "\"%s\":", name))
        return -1;
    if (ferry_json_utf8_is_valid(p, n))
        return ferry_json_add_string(out, p, n);
    return ferry_buf_addc(out, '"') || ferry_base64_encode(out, p, n, FERRY_BASE64_STD) ||
           ferry_buf_addf(out, "\",\"%s_encoding\":\"base64\"", name);
}

/* Appends "value": a JSON value on one line, or base64 with "value_encoding". */
static int add_value(struct ferry_buf *out, const char *p, size_t n)
{
    size_t at;

    if (!ferry_json_is_valid(p, n))
        return ferry_buf_adds(out, "\"value\":\"") ||
               ferry_base64_encode(out, p, n, FERRY_BASE64_STD) ||
               ferry_buf_adds(out, "\",\"value_encoding\":\"base64\"");
    if (ferry_buf_adds(out, "\"value\":"))
        return -1;
    at = out->len;
    if (ferry_buf_add(out, p, n))
        return -1;
    /* in place: compacting never writes ahead of what it reads */
    out->len = at + ferry_json_compact(out->data + at, n, out->data + at);
    out->data[out->len] = '\0';
    return 0;
}

/* Appends the lines of one event; undoes a partial append. */
static int finish(struct ferry_buf *out, const struct ferry_buf *mark, int failed)
{
    if (failed || ferry_buf_adds(out, "}\n\n")) {
        ferry_buf_rewind(out, mark);
        return -1;
    }
    return 0;
}

/* Appends the id line "id: <partition>:<offset>-<hash>". */
static int add_id(struct ferry_buf *out, int32_t partition, int64_t offset, uint32_t hash)
{
    char id[FERRY_ETAG_MAX];

    return ferry_etag_format(id, sizeof(id), partition, offset, hash, 0) < 0 ||
           ferry_buf_addf(out, "id: %s\n", id);
}

int ferry_sse_put(struct ferry_buf *out, const struct ferry_store_entry *e, uint32_t *hash)
{
    struct ferry_buf mark = *out;
    uint32_t h = ferry_etag_hash(e->value, e->value_len);
    int failed = add_id(out, e->row.partition, e->row.offset, h) ||
                 ferry_buf_adds(out, "event: put\ndata: {") ||
                 add_text_or_base64(out, "key", e->key, e->key_len) || ferry_buf_addc(out, ',') ||
                 add_value(out, e->value, e->value_len) ||
                 ferry_buf_addf(out, ",\"partition\":%d,\"offset\":%" PRId64, e->row.partition,
                                e->row.offset);

    if (hash)
        *hash = h;
    return finish(out, &mark, failed);
}

int ferry_sse_delete(struct ferry_buf *out, const void *key, size_t key_len, int32_t partition,
                     int64_t offset)
{
    struct ferry_buf mark = *out;
    int failed = 0;

    if (partition >= 0)
        failed = add_id(out, partition, offset, FERRY_ETAG_DELETED);
    failed = failed || ferry_buf_adds(out, "event: delete\ndata: {") ||
             add_text_or_base64(out, "key", key, key_len);
    if (partition >= 0)
        failed = failed ||
                 ferry_buf_addf(out, ",\"partition\":%d,\"offset\":%" PRId64, partition, offset);
    return finish(out, &mark, failed);
}

int ferry_sse_sync(struct ferry_buf *out, uint64_t keys)
{
    struct ferry_buf mark = *out;

    return finish(out, &mark, ferry_buf_addf(out, "event: sync\ndata: {\"keys\":%" PRIu64, keys));
}

int ferry_sse_notice(struct ferry_buf *out, const char *event, const char *reason,
                     const char *message)
{
    struct ferry_buf mark = *out;
    int failed = ferry_buf_addf(out, "event: %s\ndata: {\"reason\":", event) ||
                 ferry_json_add_string(out, reason, strlen(reason)) ||
                 ferry_buf_adds(out, ",\"message\":") ||
                 ferry_json_add_string(out, message, strlen(message));

    return finish(out, &mark, failed);
}
