/*
 * body.c - request bodies from records and batches of records (see body.h).
 *
 * This is the batch path's inner loop, so it writes straight into the caller's capped buffer
 * and never parses JSON into a tree: ferry_json_is_valid decides whether a key or value can be
 * embedded as it is, and everything else is escaped or base64-encoded on the way in. Template
 * bodies go through template.c; in JSON batches they are first rendered into one scratch buffer
 * per call so they can be embedded like values.
 */
#include "route/body.h"
#include "core/base64.h"
#include "route/header_last.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"

/* What one render call carries from record to record. */
struct body {
    const struct ferry_body_spec *spec;
    struct ferry_buf *out;
    struct ferry_buf scratch; /* template output on its way into a JSON batch */
    char *errstr;
    size_t errstr_size;
};

static const char *const mode_names[] = {"value", "envelope", "template", "json_template"};
static const char *const batch_names[] = {NULL, "json_array", "ndjson", "separator"};

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The first CR or LF in [p, end), or end. *lf and *cr hold the next of each found so far
 * (NULL when none is left) and are searched again only once p has passed them, so a long text
 * with many line breaks is scanned once for each, not once per line. */
static const char *next_break(const char *p, const char *end, const char **lf, const char **cr)
{
    if (*lf && *lf < p)
        *lf = memchr(p, '\n', (size_t)(end - p));
    if (*cr && *cr < p)
        *cr = memchr(p, '\r', (size_t)(end - p));
    if (!*lf)
        return *cr ? *cr : end;
    if (!*cr)
        return *lf;
    return *lf < *cr ? *lf : *cr;
}

/* Appends valid JSON text without its surrounding whitespace and without CR or LF, which in
 * valid JSON can only be whitespace between tokens. */
static int add_json_oneline(struct ferry_buf *out, const char *p, size_t n)
{
    const char *end, *lf, *cr;
    int result = 0;

    while (n && is_json_space(p[0])) {
        p++;
        n--;
    }
    while (n && is_json_space(p[n - 1]))
        n--;
    end = p + n;
    lf = memchr(p, '\n', n);
    cr = memchr(p, '\r', n);
    while (!result && p < end) {
        const char *stop = next_break(p, end, &lf, &cr);

        result = ferry_buf_add(out, p, (size_t)(stop - p));
        p = stop < end ? stop + 1 : end;
    }
    return result;
}

/* Appends p[0..n) as one JSON value: itself when it is JSON, else a JSON string; NULL is null. */
static int add_embedded(struct ferry_buf *out, const char *p, size_t n)
{
    if (!p)
        return ferry_buf_add(out, "null", 4);
    if (ferry_json_is_valid(p, n))
        return add_json_oneline(out, p, n);
    return ferry_json_add_string(out, p, n);
}

/* Appends s[0..n) as a quoted base64 string (RFC 4648 alphabet, padded). */
static int add_base64(struct ferry_buf *out, const unsigned char *s, size_t n)
{
    return ferry_buf_addc(out, '"') || ferry_base64_encode(out, s, n, FERRY_BASE64_STD) ||
           ferry_buf_addc(out, '"');
}

/* Appends ,"name":<data> for a key or value, choosing JSON, string or base64 (body.h). */
static int add_data(struct ferry_buf *out, const char *name, const char *p, size_t n)
{
    int json = p && ferry_json_is_valid(p, n);
    int result = ferry_buf_addc(out, ',') || ferry_json_add_string(out, name, strlen(name)) ||
                 ferry_buf_addc(out, ':');

    if (result)
        return result;
    if (!p)
        return ferry_buf_add(out, "null", 4);
    if (json)
        return add_json_oneline(out, p, n);
    if (ferry_json_utf8_is_valid(p, n))
        return ferry_json_add_string(out, p, n);
    return add_base64(out, (const unsigned char *)p, n) || ferry_buf_add(out, ",\"", 2) ||
           ferry_buf_adds(out, name) || ferry_buf_adds(out, "_encoding\":\"base64\"");
}

/* Returns 1 and the header at index i, or 0 past the last one. */
static int header_at(const rd_kafka_headers_t *h, size_t i, const char **name, const void **v,
                     size_t *size)
{
    return rd_kafka_header_get_all(h, i, name, v, size) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Appends ,"headers":{...} with the last value of each name (body.h). Running out of memory
 * for the marks of a record with many headers fails like a full buffer. */
static int add_headers(struct ferry_buf *out, const rd_kafka_headers_t *h)
{
    struct ferry_header_last last;
    const char *name;
    const void *v;
    size_t size, i;
    int result = ferry_buf_adds(out, ",\"headers\":{"), first = 1;

    if (result || ferry_header_last_init(&last, h, 0))
        return -1;
    for (i = 0; !result && h && header_at(h, i, &name, &v, &size); i++) {
        if (!ferry_header_last_is(&last, i))
            continue;
        result = (!first && ferry_buf_addc(out, ',')) ||
                 ferry_json_add_string(out, name, strlen(name)) || ferry_buf_addc(out, ':') ||
                 (v ? ferry_json_add_string(out, v, size) : ferry_buf_add(out, "null", 4));
        first = 0;
    }
    ferry_header_last_release(&last);
    return result || ferry_buf_addc(out, '}');
}

static int add_envelope(struct ferry_buf *out, const struct ferry_record *rec)
{
    int result = ferry_buf_adds(out, "{\"topic\":") ||
                 ferry_json_add_string(out, rec->topic, strlen(rec->topic)) ||
                 ferry_buf_adds(out, ",\"partition\":") ||
                 ferry_json_add_int(out, rec->partition) || ferry_buf_adds(out, ",\"offset\":") ||
                 ferry_json_add_int(out, rec->offset) || ferry_buf_adds(out, ",\"timestamp\":");

    if (!result && rec->timestamp_ms == -1)
        result = ferry_buf_add(out, "null", 4);
    else if (!result)
        result = ferry_json_add_int(out, rec->timestamp_ms);
    return result || add_data(out, "key", rec->key, rec->key_len) ||
           add_data(out, "value", rec->value, rec->value_len) ||
           add_headers(out, ferry_record_headers(rec)) || ferry_buf_addc(out, '}');
}

static int render_template(struct body *b, const struct ferry_record *rec, struct ferry_buf *dst)
{
    int rc = ferry_template_render(b->spec->tmpl, rec, dst, b->errstr, b->errstr_size);

    if (rc == FERRY_TEMPLATE_ETOOBIG)
        return FERRY_BODY_ETOOBIG;
    return rc ? FERRY_BODY_EREC : FERRY_BODY_OK;
}

/* Appends rec's body as it is sent alone or between separators. */
static int add_raw(struct body *b, const struct ferry_record *rec)
{
    int failed;

    switch (b->spec->mode) {
    case FERRY_BODY_VALUE:
        failed = rec->value && ferry_buf_add(b->out, rec->value, rec->value_len);
        break;
    case FERRY_BODY_ENVELOPE:
        failed = add_envelope(b->out, rec);
        break;
    default:
        return render_template(b, rec, b->out);
    }
    return failed ? FERRY_BODY_ETOOBIG : FERRY_BODY_OK;
}

/* Appends rec's body as one JSON value of a json_array or ndjson batch. */
static int add_element(struct body *b, const struct ferry_record *rec)
{
    const char *text;
    int result;

    switch (b->spec->mode) {
    case FERRY_BODY_VALUE:
        result = add_embedded(b->out, rec->value, rec->value_len);
        break;
    case FERRY_BODY_ENVELOPE:
        result = add_envelope(b->out, rec);
        break;
    default:
        ferry_buf_reset(&b->scratch);
        result = render_template(b, rec, &b->scratch);
        if (result)
            return result;
        text = b->scratch.data ? b->scratch.data : "";
        result = add_embedded(b->out, text, b->scratch.len);
        break;
    }
    return result ? FERRY_BODY_ETOOBIG : FERRY_BODY_OK;
}

/* Appends what goes before record i of a batch. */
static int add_frame(struct body *b, size_t i)
{
    switch (b->spec->batch) {
    case FERRY_BODY_JSON_ARRAY:
        return ferry_buf_addc(b->out, i ? ',' : '[');
    case FERRY_BODY_SEPARATOR:
        return i ? ferry_buf_add(b->out, b->spec->separator, b->spec->separator_len) : 0;
    default:
        return 0;
    }
}

static int add_record(struct body *b, size_t i, const struct ferry_record *rec)
{
    enum ferry_body_batch batch = b->spec->batch;
    int result;

    if (add_frame(b, i))
        return FERRY_BODY_ETOOBIG;
    if (batch == FERRY_BODY_SINGLE || batch == FERRY_BODY_SEPARATOR)
        return add_raw(b, rec);
    result = add_element(b, rec);
    if (!result && batch == FERRY_BODY_NDJSON && ferry_buf_addc(b->out, '\n'))
        result = FERRY_BODY_ETOOBIG;
    return result;
}

static int add_end(struct body *b, size_t n)
{
    if (b->spec->batch != FERRY_BODY_JSON_ARRAY)
        return 0;
    return ferry_buf_add(b->out, n ? "]" : "[]", n ? 1 : 2);
}

/* Appends the whole body; on error *at is the index of the record at fault. */
static int add_records(struct body *b, const struct ferry_record *const *recs, size_t n, size_t *at)
{
    int result;

    for (*at = 0; *at < n; (*at)++) {
        result = add_record(b, *at, recs[*at]);
        if (result)
            return result;
    }
    *at = n ? n - 1 : 0;
    return add_end(b, n) ? FERRY_BODY_ETOOBIG : FERRY_BODY_OK;
}

static int check_spec(const struct ferry_body_spec *spec, size_t n, char *errstr,
                      size_t errstr_size)
{
    if ((unsigned)spec->mode > (unsigned)FERRY_BODY_JSON_TEMPLATE ||
        (unsigned)spec->batch > (unsigned)FERRY_BODY_SEPARATOR)
        snprintf(errstr, errstr_size, "body: unknown mode %d or batch format %d", (int)spec->mode,
                 (int)spec->batch);
    else if (spec->mode >= FERRY_BODY_TEMPLATE && !spec->tmpl)
        snprintf(errstr, errstr_size, "body: mode '%s' has no template", mode_names[spec->mode]);
    else if (spec->batch == FERRY_BODY_SEPARATOR && !spec->separator && spec->separator_len)
        snprintf(errstr, errstr_size, "body: batch format 'separator' has no separator");
    else if (spec->batch == FERRY_BODY_SINGLE && n != 1)
        snprintf(errstr, errstr_size, "body: %zu records given but no batch format is set", n);
    else
        return FERRY_BODY_OK;
    return FERRY_BODY_ESPEC;
}

static void too_big(struct body *b, size_t n, size_t at)
{
    if (n == 1)
        snprintf(b->errstr, b->errstr_size, "body: the record's body passes the limit of %zu bytes",
                 b->out->cap);
    else
        snprintf(b->errstr, b->errstr_size,
                 "body: the batch passes the limit of %zu bytes at record %zu of %zu", b->out->cap,
                 at + 1, n);
}

int ferry_body_render(const struct ferry_body_spec *spec, const struct ferry_record *const *recs,
                      size_t n, struct ferry_buf *out, size_t *failed, char *errstr,
                      size_t errstr_size)
{
    struct body b = {spec, out, {0}, errstr, errstr_size};
    const struct ferry_buf saved = *out;
    size_t at = 0;
    int result = check_spec(spec, n, errstr, errstr_size);

    if (result)
        return result;
    ferry_buf_init(&b.scratch, out->cap);
    result = add_records(&b, recs, n, &at);
    ferry_buf_release(&b.scratch);
    if (result == FERRY_BODY_ETOOBIG)
        too_big(&b, n, at);
    if (result && failed)
        *failed = at;
    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}

const char *ferry_body_content_type(const struct ferry_body_spec *spec)
{
    switch (spec->batch) {
    case FERRY_BODY_JSON_ARRAY:
        return "application/json";
    case FERRY_BODY_NDJSON:
        return "application/x-ndjson";
    case FERRY_BODY_SEPARATOR:
        return NULL;
    default:
        return spec->mode == FERRY_BODY_ENVELOPE || spec->mode == FERRY_BODY_JSON_TEMPLATE
                   ? "application/json"
                   : NULL;
    }
}

enum ferry_template_mode ferry_body_template_mode(enum ferry_body_mode mode)
{
    return mode == FERRY_BODY_JSON_TEMPLATE ? FERRY_TEMPLATE_JSON : FERRY_TEMPLATE_BODY;
}

static int find_name(const char *const *names, int count, const char *name)
{
    int i;

    for (i = 0; i < count; i++) {
        if (names[i] && strcmp(names[i], name) == 0)
            return i;
    }
    return -1;
}

int ferry_body_mode_parse(const char *name)
{
    return find_name(mode_names, (int)(sizeof(mode_names) / sizeof(mode_names[0])), name);
}

int ferry_body_batch_parse(const char *name)
{
    return find_name(batch_names, (int)(sizeof(batch_names) / sizeof(batch_names[0])), name);
}
