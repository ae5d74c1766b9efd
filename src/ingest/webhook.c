/*
 * webhook.c - webhook request bodies into records (see webhook.h).
 *
 * The body is stored byte for byte: ferry checks it is JSON only where it must read it (a key
 * taken from a JSON path, or ndjson lines). A key found in JSON keeps the text of a string and
 * the JSON of anything else, so {"id": 42} and {"id": "42"} give the same key bytes "42".
 */
#include "ingest/webhook.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "ingest/restproxy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define WEBHOOK_NDJSON_TYPE "application/json"

struct parser {
    const struct ferry_ingest_webhook_config *w;
    const struct ferry_webhook_input *in;
    const struct ferry_ingest_limits *limits;
    struct ferry_ingest_batch *b;
    size_t line; /* the ndjson line being read (from 1), or 0 for the whole body */
    int *code;
    char *errstr;
    size_t errstr_size;
};

static int fail(struct parser *p, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, int status, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->errstr, p->errstr_size, fmt, ap);
    va_end(ap);
    *p->code = code;
    return status;
}

/* fail() with the message prefixed by where it applies: "line 3: " or "body: ". The prefix is
 * built only here, not for every line. */
static int fail_at(struct parser *p, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct parser *p, int status, int code, const char *fmt, ...)
{
    va_list ap;
    int n = p->line ? snprintf(p->errstr, p->errstr_size, "line %zu: ", p->line)
                    : snprintf(p->errstr, p->errstr_size, "body: ");

    if (n >= 0 && (size_t)n < p->errstr_size) {
        va_start(ap, fmt);
        vsnprintf(p->errstr + n, p->errstr_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    *p->code = code;
    return status;
}

/* Copies the JSON value found into the arena as key bytes (see the file comment). */
static int key_from_found(struct parser *p, const struct ferry_json_found *f,
                          struct ferry_ingest_record *r)
{
    char *dst = ferry_ingest_batch_space(p->b);
    struct ferry_json_cursor s;

    if (f->type == FERRY_JSON_NULL)
        return 0;
    if (f->len > ferry_ingest_batch_room(p->b))
        return -1;
    if (f->type == FERRY_JSON_STRING) {
        ferry_json_cursor_init(&s, f->span, f->len);
        if (ferry_json_read_string(&s, dst, &r->key_len))
            return -1;
    } else if (f->type == FERRY_JSON_OBJECT || f->type == FERRY_JSON_ARRAY) {
        r->key_len = ferry_json_compact(f->span, f->len, dst);
    } else {
        memcpy(dst, f->span, f->len);
        r->key_len = f->len;
    }
    r->key = dst;
    ferry_ingest_batch_commit(p->b, r->key_len);
    return 0;
}

/* Names where the key was looked for, for the message of a missing key. */
static void describe_source(const struct ferry_ingest_key_config *k, char *out, size_t size)
{
    if (k->header)
        snprintf(out, size, "header '%s'", k->header);
    else if (k->query)
        snprintf(out, size, "query parameter '%s'", k->query);
    else
        snprintf(out, size, "JSON path '%s'", k->json ? k->json : "");
}

/* Sets the key of r from the request or from the JSON value r->value. */
static int set_key(struct parser *p, struct ferry_ingest_record *r)
{
    const struct ferry_ingest_key_config *k = &p->w->key;
    char source[128];
    struct ferry_json_found found;

    if (k->json && ferry_json_find(r->value, r->value_len, k->json, &found) == 1 &&
        key_from_found(p, &found, r))
        return fail_at(p, 500, 500, "cannot read the key");
    if (!k->json && p->in->key) {
        r->key = p->in->key;
        r->key_len = strlen(p->in->key);
    }
    if (!r->key && k->required) {
        describe_source(k, source, sizeof(source));
        if (!k->json) /* the request's, not one record's: no line or body to point at */
            return fail(p, 422, 422, "the key is missing (%s)", source);
        return fail_at(p, 422, 422, "the key is missing (%s)", source);
    }
    if (r->key_len > p->limits->max_key_bytes)
        return fail_at(p, 422, FERRY_RP_TOO_LARGE, "the key has %zu bytes, more than %s (%zu)",
                       r->key_len, "ingest.limits.max_key_bytes", p->limits->max_key_bytes);
    return 0;
}

static int add_header(struct parser *p, const char *name, const char *value)
{
    struct ferry_ingest_header *h = ferry_ingest_batch_add_header(p->b);

    if (!h)
        return -1;
    h->name = name;
    h->name_len = strlen(name);
    h->value = value;
    h->value_len = strlen(value);
    return 0;
}

/* Adds one record with value text[0..len); json says the text is one ndjson line. */
static int add_record(struct parser *p, const char *text, size_t len, int json)
{
    struct ferry_ingest_record *r = ferry_ingest_batch_add(p->b);
    const char *type = json ? WEBHOOK_NDJSON_TYPE : p->in->content_type;
    int rc;

    if (!r)
        return fail(p, 500, 500, "out of memory");
    if (p->b->count > p->limits->max_records)
        return fail_at(p, 413, 413, "more than %s (%zu) records", "ingest.limits.max_records",
                       p->limits->max_records);
    if (len > p->limits->max_value_bytes)
        return fail_at(p, 422, FERRY_RP_TOO_LARGE, "%zu bytes, more than %s (%zu)", len,
                       "ingest.limits.max_value_bytes", p->limits->max_value_bytes);
    r->value = text;
    r->value_len = len;
    rc = set_key(p, r);
    if (rc)
        return rc;
    if (type && add_header(p, "content-type", type))
        return fail(p, 500, 500, "out of memory");
    for (size_t i = 0; i < p->in->nheaders; i++)
        if (p->in->header_values[i] &&
            add_header(p, p->in->header_names[i], p->in->header_values[i]))
            return fail(p, 500, 500, "out of memory");
    return 0;
}

static int is_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

static int parse_ndjson(struct parser *p)
{
    const char *line = p->in->body, *end = p->in->body + p->in->len;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        int rc;

        p->line++;
        if (len && line[len - 1] == '\r')
            len--;
        if (!is_blank(line, len)) {
            if (!ferry_json_is_valid(line, len))
                return fail_at(p, 422, 422, "invalid JSON");
            rc = add_record(p, line, len, 1);
            if (rc)
                return rc;
        }
        line += (nl ? (size_t)(nl - line) + 1 : (size_t)(end - line));
    }
    p->line = 0;
    return p->b->count ? 0 : fail_at(p, 422, 422, "no records (every line is empty)");
}

int ferry_webhook_parse(const struct ferry_ingest_webhook_config *w,
                        const struct ferry_webhook_input *in,
                        const struct ferry_ingest_limits *limits, struct ferry_ingest_batch *out,
                        int *code, char *errstr, size_t errstr_size)
{
    struct parser p = {.w = w,
                       .in = in,
                       .limits = limits,
                       .b = out,
                       .code = code,
                       .errstr = errstr,
                       .errstr_size = errstr_size};
    int rc;

    if (w->ndjson)
        rc = parse_ndjson(&p);
    else if (w->key.json && !ferry_json_is_valid(in->body, in->len))
        rc = fail_at(&p, 422, 422, "invalid JSON (the key is read from JSON path '%s')",
                     w->key.json);
    else
        rc = add_record(&p, in->body, in->len, 0);
    if (!rc)
        ferry_ingest_batch_count_bytes(out);
    return rc;
}
