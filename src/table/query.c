/*
 * query.c - reads of many keys at once, answered as one JSON document.
 *
 * Both answers list rows as {"key", "value", "partition", "offset"}: a value that is JSON is
 * embedded as JSON, any other value is a base64 string with "value_encoding":"base64"; a key
 * is a JSON string when it is valid UTF-8, else base64 with "key_encoding":"base64".
 *
 * A multi-get answers {"results": [...]} in the order asked, {"key", "error_code": 404} for a
 * key the table lacks. A scan answers {"rows": [...], "next": CURSOR} in key byte order, where
 * the cursor (base64url of the store's position, see store.h) continues after the last row and
 * stays valid while writes go on; "next" is null at the end.
 */
#include "table/query.h"
#include "core/base64.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "table/reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_ANSWER_MAX (64 * 1024 * 1024) /* one lookup or scan page as JSON */
#define QUERY_LIMIT_DEFAULT 100

static const char *const lookup_params[] = {"key_format", NULL};

/* ---- rows as JSON ---- */

static int add_bytes(struct ferry_buf *out, const char *name, const void *p, size_t n)
{
    int result = ferry_buf_addf(out, "\"%s\":", name);

    if (ferry_json_utf8_is_valid(p, n))
        return result || ferry_json_add_string(out, p, n);
    return result || ferry_buf_addc(out, '"') || ferry_base64_encode(out, p, n, FERRY_BASE64_STD) ||
           ferry_buf_addf(out, "\",\"%s_encoding\":\"base64\"", name);
}

static int add_value(struct ferry_buf *out, const struct ferry_store_entry *e)
{
    if (ferry_json_is_valid(e->value, e->value_len))
        return ferry_buf_adds(out, "\"value\":") || ferry_buf_add(out, e->value, e->value_len);
    return ferry_buf_adds(out, "\"value\":\"") ||
           ferry_base64_encode(out, e->value, e->value_len, FERRY_BASE64_STD) ||
           ferry_buf_adds(out, "\",\"value_encoding\":\"base64\"");
}

/* Appends one row as a JSON object. */
static int add_row(struct ferry_buf *out, const struct ferry_store_entry *e)
{
    return ferry_buf_addc(out, '{') || add_bytes(out, "key", e->key, e->key_len) ||
           ferry_buf_addc(out, ',') || add_value(out, e) ||
           ferry_buf_addf(out, ",\"partition\":%d,\"offset\":%" PRId64 "}", e->row.partition,
                          e->row.offset);
}

static int add_entry(void *arg, const struct ferry_store_entry *e)
{
    return add_row(arg, e);
}

static void send_answer(struct table *t, ferry_http_req *req, struct ferry_buf *out,
                        int64_t started_us)
{
    if (out->len >= out->cap || out->failed) { /* failed: a row was cut short */
        ferry_http_respond_error(req, 413, 0, "the answer would pass %d bytes: ask for fewer keys",
                                 QUERY_ANSWER_MAX);
        ferry_table_count(t, 413, started_us);
        return;
    }
    ferry_http_respond(req, 200, "application/json", out->data, out->len);
    ferry_table_count(t, 200, started_us);
}

/* Answers 400 (counted) and returns -1 when the request has a parameter not in known, or a
 * key_format other than raw or base64; sets *b64 for base64. */
static int check_params(struct table *t, ferry_http_req *req, const char *const *known, int *b64,
                        int64_t started_us)
{
    const char *format = ferry_http_req_query(req, "key_format");
    char why[256];

    *b64 = format && strcmp(format, "base64") == 0;
    if (ferry_table_check_query(req, known, why, sizeof(why)))
        ferry_http_respond_error(req, 400, 0, "%s", why);
    else if (format && !*b64 && strcmp(format, "raw") != 0)
        ferry_http_respond_error(req, 400, 0, "key_format: expected raw or base64, got '%s'",
                                 format);
    else
        return 0;
    ferry_table_count(t, 400, started_us);
    return -1;
}

/* ---- POST /tables/{table}/lookup ---- */

struct lookup {
    struct table *t;
    ferry_store *store;
    struct ferry_buf *out;
    int b64;
    size_t n;  /* keys answered */
    char *key; /* scratch for one decoded key */
    const char *error;
    char store_error[256]; /* set when the store failed, rather than the body */
};

/* Appends key's row as fn writes it. Returns FERRY_STORE_OK, FERRY_STORE_NOT_FOUND (out
 * left as it was, why empty), or an error (out left as it was; FERRY_STORE_ERROR with why
 * empty when out's cap was reached). */
static int view_row(ferry_store *store, const char *key, size_t len, struct ferry_buf *out,
                    ferry_store_entry_fn fn, void *arg, char *why, size_t why_size)
{
    size_t mark = out->len;
    int r = ferry_store_view(store, key, len, fn, arg, why, why_size);

    if (r == FERRY_STORE_OK && !out->failed)
        return FERRY_STORE_OK;
    out->len = mark;
    if (r == FERRY_STORE_OK || r == FERRY_STORE_NOT_FOUND)
        why[0] = '\0';
    return r == FERRY_STORE_OK ? FERRY_STORE_ERROR : r;
}

int ferry_table_lookup_add(ferry_store *store, const char *key, size_t len, struct ferry_buf *out,
                           char *why, size_t why_size)
{
    int r = view_row(store, key, len, out, add_entry, out, why, why_size);

    if (r != FERRY_STORE_NOT_FOUND)
        return r;
    return ferry_table_lookup_add_error(out, key, len, 404) ? FERRY_STORE_ERROR : FERRY_STORE_OK;
}

struct detail {
    struct table *t;
    struct ferry_buf *out;
};

/* A row for a GET that another instance answers for this one (forward_get.c): the value in
 * base64 always, so that it arrives byte for byte (JSON with blanks around it too), and what
 * the GET's headers say. */
static int add_detailed(void *arg, const struct ferry_store_entry *e)
{
    struct detail *d = arg;
    struct ferry_buf *out = d->out;
    const char *type = ferry_table_content_type(d->t, e->row.content_type, e->value, e->value_len);

    return ferry_buf_addc(out, '{') || add_bytes(out, "key", e->key, e->key_len) ||
           ferry_buf_adds(out, ",\"value\":\"") ||
           ferry_base64_encode(out, e->value, e->value_len, FERRY_BASE64_STD) ||
           ferry_buf_addf(out,
                          "\",\"value_encoding\":\"base64\",\"partition\":%d,\"offset\":%" PRId64
                          ",\"timestamp_ms\":%" PRId64 ",\"lag\":%" PRId64 ",\"rebuilding\":%s"
                          ",\"content_type\":",
                          e->row.partition, e->row.offset, e->row.timestamp_ms,
                          ferry_table_partition_lag(d->t, e->row.partition),
                          atomic_load(&d->t->rebuilding) ? "true" : "false") ||
           ferry_json_add_string(out, type, strlen(type)) || ferry_buf_addc(out, '}');
}

int ferry_table_lookup_add_detail(struct table *t, ferry_store *store, const char *key, size_t len,
                                  struct ferry_buf *out, char *why, size_t why_size)
{
    struct detail d = {t, out};
    int r = view_row(store, key, len, out, add_detailed, &d, why, why_size);
    int32_t p;

    if (r != FERRY_STORE_NOT_FOUND)
        return r;
    p = ferry_table_key_partition(t, key, len);
    return ferry_buf_addc(out, '{') || add_bytes(out, "key", key, len) ||
                   ferry_buf_addf(out, ",\"error_code\":404,\"partition\":%d,\"lag\":%" PRId64 "}",
                                  p, ferry_table_partition_lag(t, p))
               ? FERRY_STORE_ERROR
               : FERRY_STORE_OK;
}

int ferry_table_lookup_add_error(struct ferry_buf *out, const char *key, size_t len, int code)
{
    return ferry_buf_addc(out, '{') || add_bytes(out, "key", key, len) ||
           ferry_buf_addf(out, ",\"error_code\":%d}", code);
}

/* Decodes the key at the cursor into scratch and hands it to fn. */
static int walk_one(struct table *t, struct ferry_json_cursor *c, int b64, char *scratch,
                    ferry_table_key_fn fn, void *arg, const char **error)
{
    size_t len = 0;

    if (ferry_json_peek(c) != FERRY_JSON_STRING || ferry_json_read_string(c, scratch, &len)) {
        *error = "keys: expected an array of strings";
        return -1;
    }
    if (b64 && ferry_base64_decode(scratch, len, FERRY_BASE64_EITHER, &len)) {
        *error = "keys: a key is not base64";
        return -1;
    }
    if (len > (size_t)t->cfg->limits.max_key_bytes) {
        *error = "keys: a key is longer than limits.max_key";
        return -1;
    }
    return fn(arg, scratch, len, error);
}

int ferry_table_lookup_walk(struct table *t, const char *body, size_t n, int b64, char *scratch,
                            ferry_table_key_fn fn, void *arg, const char **error)
{
    char name[FERRY_JSON_NAME_MAX + 1];
    struct ferry_json_cursor c;
    size_t member = 0, index = 0;
    int truncated, more, seen = 0;

    ferry_json_cursor_init(&c, body, n);
    *error = "expected a JSON object {\"keys\": [...]}";
    if (ferry_json_enter(&c, '{'))
        return -1;
    while ((more = ferry_json_next_member(&c, &member, name, &truncated)) == 1) {
        if (strcmp(name, "keys") != 0 || seen++ || ferry_json_enter(&c, '[')) {
            *error = "expected only the member \"keys\", an array of strings";
            return -1;
        }
        while ((more = ferry_json_next_element(&c, &index)) == 1) {
            if (index > (size_t)t->cfg->limits.max_lookup_keys) {
                *error = "keys: more than limits.max_lookup_keys";
                return -1;
            }
            if (walk_one(t, &c, b64, scratch, fn, arg, error))
                return -1;
        }
        if (more < 0)
            return -1;
    }
    if (more < 0 || !seen || ferry_json_finish(&c))
        return -1;
    return 0;
}

/* One key of a local lookup: its answer appended, after a comma from the second on. */
static int lookup_one(void *arg, const char *key, size_t len, const char **error)
{
    struct lookup *lk = arg;

    (void)error;
    if (lk->n++ && ferry_buf_addc(lk->out, ','))
        return -1;
    return ferry_table_lookup_add(lk->store, key, len, lk->out, lk->store_error,
                                  sizeof(lk->store_error))
               ? -1
               : 0;
}

/* Answers a lookup that stopped: the store failed (500), the answer outgrew its cap (413, as
 * send_answer), or the body is wrong (400). */
static void refuse_lookup(struct table *t, ferry_http_req *req, const struct lookup *lk,
                          int64_t started_us)
{
    int status = lk->store_error[0] ? 500 : lk->out->failed ? 413 : 400;

    if (status == 500)
        ferry_http_respond_error(req, 500, 0, "table '%s': %s", t->cfg->name, lk->store_error);
    else if (status == 413)
        ferry_http_respond_error(req, 413, 0, "the answer would pass %d bytes: ask for fewer keys",
                                 QUERY_ANSWER_MAX);
    else
        ferry_http_respond_error(req, 400, 0, "body: %s", lk->error);
    ferry_table_count(t, status, started_us);
}

void ferry_table_lookup(struct table *t, ferry_http_req *req, int64_t started_us)
{
    struct lookup lk = {.t = t};
    struct ferry_buf out;
    size_t n;
    const char *body = ferry_http_req_body(req, &n);

    if (check_params(t, req, lookup_params, &lk.b64, started_us) ||
        ferry_table_refuse_unready(t, req))
        return;
    lk.key = malloc(n + 1);
    lk.store = ferry_table_store_acquire(t);
    ferry_buf_init(&out, QUERY_ANSWER_MAX);
    lk.out = &out;
    if (!lk.key || !lk.store) {
        ferry_http_respond_error(req, 503, 0, "table '%s': %s", t->cfg->name,
                                 lk.key ? "its store is closed" : "out of memory");
        ferry_table_count(t, 503, started_us);
    } else if (ferry_buf_adds(&out, "{\"results\":[") ||
               ferry_table_lookup_walk(t, body, n, lk.b64, lk.key, lookup_one, &lk, &lk.error) ||
               ferry_buf_adds(&out, "]}\n")) {
        refuse_lookup(t, req, &lk, started_us);
    } else {
        send_answer(t, req, &out, started_us);
    }
    if (lk.store)
        ferry_table_store_release(t);
    ferry_buf_release(&out);
    free(lk.key);
}

/* ---- GET /tables/{table}/keys?prefix=&limit=&after= ---- */

/* Reads limit (text, NULL when absent): 1 to limits.max_scan_limit, QUERY_LIMIT_DEFAULT when
 * absent. */
static int scan_limit(const struct table *t, const char *text, size_t *limit, char *why,
                      size_t why_size)
{
    int64_t max = t->cfg->limits.max_scan_limit;
    char *end;
    long long v;

    *limit = (size_t)(QUERY_LIMIT_DEFAULT < max ? QUERY_LIMIT_DEFAULT : max);
    if (!text)
        return 0;
    v = strtoll(text, &end, 10);
    if (end == text || *end || v < 1 || v > max) {
        snprintf(why, why_size, "limit: expected 1 to %" PRId64 ", got '%s'", max, text);
        return -1;
    }
    *limit = (size_t)v;
    return 0;
}

/* Decodes one query parameter's text (text_len bytes, NULL when absent) into a fresh buffer
 * (*out, *len), from base64 when b64. */
static int query_bytes(const char *text, size_t text_len, int b64, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!text)
        return 0;
    *len = text_len;
    *out = malloc(*len + 1);
    if (!*out)
        return -1;
    memcpy(*out, text, *len);
    (*out)[*len] = '\0';
    if (!b64)
        return 0;
    return ferry_base64_decode(*out, *len, FERRY_BASE64_EITHER, len);
}

struct scanned {
    struct ferry_buf *out;
    size_t rows;
};

static int add_scanned(void *arg, const struct ferry_store_entry *e)
{
    struct scanned *sc = arg;

    return (sc->rows++ && ferry_buf_addc(sc->out, ',')) || add_row(sc->out, e);
}

/* Appends one page of the scan as {"rows": [...], "next": CURSOR}. */
static int scan_page(ferry_store *store, struct ferry_buf *out, const struct ferry_scan_args *a,
                     const unsigned char *partitions, int32_t n, char *why, size_t why_size)
{
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    struct scanned sc = {out, 0};
    size_t next_len = 0;
    int r;

    if (ferry_buf_adds(out, "{\"rows\":["))
        return FERRY_STORE_ERROR;
    r = ferry_store_scan_partitions(store, a->prefix, a->plen, a->after, a->alen, a->limit,
                                    partitions, n, add_scanned, &sc, next, &next_len, why,
                                    why_size);
    if (r != FERRY_STORE_OK)
        return r;
    if (ferry_buf_adds(out, "],\"next\":"))
        return FERRY_STORE_ERROR;
    if (!next_len)
        return ferry_buf_adds(out, "null}\n") ? FERRY_STORE_ERROR : FERRY_STORE_OK;
    return ferry_buf_addc(out, '"') || ferry_base64_encode(out, next, next_len, FERRY_BASE64_URL) ||
                   ferry_buf_adds(out, "\"}\n")
               ? FERRY_STORE_ERROR
               : FERRY_STORE_OK;
}

void ferry_table_scan_answer(struct table *t, ferry_http_req *req,
                             const struct ferry_scan_args *args, const unsigned char *partitions,
                             int32_t n, int64_t started_us)
{
    ferry_store *store = ferry_table_store_acquire(t);
    char why[512] = "its store is closed";
    struct ferry_buf out;
    int r = FERRY_STORE_ERROR;

    ferry_buf_init(&out, QUERY_ANSWER_MAX);
    if (store) {
        r = scan_page(store, &out, args, partitions, n, why, sizeof(why));
        ferry_table_store_release(t);
    }
    if (r == FERRY_STORE_OK) {
        send_answer(t, req, &out, started_us);
    } else if (r == FERRY_STORE_BAD_CURSOR) {
        ferry_http_respond_error(req, 400, 0, "after: not a cursor this table gave out");
        ferry_table_count(t, 400, started_us);
    } else if (out.failed) {
        ferry_http_respond_error(req, 413, 0, "the page would pass %d bytes: ask for fewer",
                                 QUERY_ANSWER_MAX);
        ferry_table_count(t, 413, started_us);
    } else {
        ferry_http_respond_error(req, 500, 0, "table '%s': %s", t->cfg->name, why);
        ferry_table_count(t, 500, started_us);
    }
    ferry_buf_release(&out);
}

int ferry_table_scan_args_decode(const struct table *t, const char *prefix, size_t prefix_len,
                                 const char *limit, const char *after, int b64,
                                 struct ferry_scan_args *args, char *why, size_t why_size)
{
    memset(args, 0, sizeof(*args));
    if (scan_limit(t, limit, &args->limit, why, why_size))
        return -1;
    if (query_bytes(prefix, prefix_len, b64, &args->prefix, &args->plen)) {
        snprintf(why, why_size, "prefix: not base64");
        return -1;
    }
    if (query_bytes(after, after ? strlen(after) : 0, 1, &args->after, &args->alen)) {
        snprintf(why, why_size, "after: not base64");
        return -1;
    }
    if (args->plen > (size_t)t->cfg->limits.max_key_bytes) {
        snprintf(why, why_size, "prefix: longer than limits.max_key");
        return -1;
    }
    return 0;
}

int ferry_table_scan_args(struct table *t, ferry_http_req *req, const char *extra,
                          struct ferry_scan_args *args, int64_t started_us)
{
    const char *known[] = {"prefix", "limit", "after", "key_format", extra, NULL};
    char why[512];
    size_t plen;
    const char *prefix = ferry_http_req_query_n(req, "prefix", &plen);
    int b64;

    memset(args, 0, sizeof(*args));
    if (check_params(t, req, known, &b64, started_us))
        return -1;
    if (ferry_table_scan_args_decode(t, prefix, plen, ferry_http_req_query(req, "limit"),
                                     ferry_http_req_query(req, "after"), b64, args, why,
                                     sizeof(why)) == 0)
        return 0;
    ferry_http_respond_error(req, 400, 0, "%s", why);
    ferry_table_count(t, 400, started_us);
    return -1;
}

void ferry_table_scan_args_release(struct ferry_scan_args *args)
{
    free(args->prefix);
    free(args->after);
    memset(args, 0, sizeof(*args));
}

void ferry_table_scan(struct table *t, ferry_http_req *req, int64_t started_us)
{
    struct ferry_scan_args args;

    if (ferry_table_scan_args(t, req, NULL, &args, started_us) == 0 &&
        !ferry_table_refuse_unready(t, req))
        ferry_table_scan_answer(t, req, &args, NULL, 0, started_us);
    ferry_table_scan_args_release(&args);
}

struct row_walk {
    ferry_table_row_fn fn;
    void *arg;
    struct ferry_buf row;
};

static int walk_row(void *arg, const struct ferry_store_entry *e)
{
    struct row_walk *w = arg;

    ferry_buf_reset(&w->row);
    if (add_row(&w->row, e))
        return -1;
    return w->fn(w->arg, w->row.data, w->row.len, e->cursor, e->cursor_len);
}

int ferry_table_scan_rows(ferry_store *store, const struct ferry_scan_args *args,
                          const unsigned char *partitions, int32_t n, ferry_table_row_fn fn,
                          void *arg, int *more, char *why, size_t why_size)
{
    struct row_walk w = {fn, arg, {0}};
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    size_t next_len = 0;
    int r;

    ferry_buf_init(&w.row, QUERY_ANSWER_MAX);
    r = ferry_store_scan_partitions(store, args->prefix, args->plen, args->after, args->alen,
                                    args->limit, partitions, n, walk_row, &w, next, &next_len, why,
                                    why_size);
    *more = next_len > 0;
    ferry_buf_release(&w.row);
    return r;
}
