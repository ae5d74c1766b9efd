/*
 * restproxy.c - the REST Proxy v2 produce API as text (see restproxy.h).
 *
 * The body is walked once with the JSON cursor. Every error names the key path of what was
 * wrong ("records[2].partition") and, for broken JSON, the byte offset, because the caller
 * has no other way to find a bad record among a thousand.
 */
#include "ingest/restproxy.h"
#include "core/base64.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "core/pattern.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RP_PREFIX "/topics/"
#define RP_PARTITIONS "/partitions/"
#define RP_WHERE_MAX 160      /* records[N].headers[N].<name>, each name FERRY_JSON_NAME_MAX */
#define RP_MEDIA_TYPE_MAX 128 /* a Content-Type without its parameters */

struct parser {
    struct ferry_json_cursor s;
    enum ferry_rp_format format;
    int32_t path_partition;
    const struct ferry_ingest_limits *limits;
    struct ferry_ingest_batch *b;
    int *code;
    char *errstr;
    size_t errstr_size;
};

/* Where in the body a value is, as the parts of its key path ("records[2].headers[0].value"):
 * formatted only when an error names it, since a batch has thousands of values. */
struct where {
    const char *top; /* outside the records: "body", "records", a schema field; or NULL */
    size_t record;
    const char *field;  /* the record's member, or NULL for the record itself */
    int in_header;      /* header below is set */
    size_t header;      /* the index within "headers" */
    const char *member; /* the header's member, or NULL for the header itself */
};

/* ---- paths and content types ---- */

static int parse_partition_text(const char *text, int32_t *partition)
{
    int64_t v = 0;

    if (!*text || strlen(text) > 10)
        return -1;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > INT32_MAX)
        return -1;
    *partition = (int32_t)v;
    return 0;
}

enum ferry_rp_path ferry_restproxy_path(const char *path, char *topic, int32_t *partition)
{
    const char *name = path + strlen(RP_PREFIX), *slash;
    size_t len;

    *partition = FERRY_INGEST_PARTITION_ANY;
    if (strncmp(path, RP_PREFIX, strlen(RP_PREFIX)) != 0)
        return FERRY_RP_PATH_NO_ROUTE;
    slash = strchr(name, '/');
    len = slash ? (size_t)(slash - name) : strlen(name);
    if (slash && strncmp(slash, RP_PARTITIONS, strlen(RP_PARTITIONS)) != 0)
        return FERRY_RP_PATH_NO_ROUTE;
    if (!ferry_topic_name_valid(name, len))
        return FERRY_RP_PATH_BAD_TOPIC;
    memcpy(topic, name, len);
    topic[len] = '\0';
    if (slash && parse_partition_text(slash + strlen(RP_PARTITIONS), partition))
        return FERRY_RP_PATH_BAD_PARTITION;
    return FERRY_RP_PATH_OK;
}

int ferry_restproxy_format(const char *content_type, enum ferry_rp_format *format)
{
    char type[RP_MEDIA_TYPE_MAX];
    size_t len;

    if (!content_type)
        return -1;
    while (*content_type == ' ')
        content_type++;
    len = strcspn(content_type, "; ");
    if (len >= sizeof(type))
        return -1;
    memcpy(type, content_type, len);
    type[len] = '\0';
    if (strcasecmp(type, "application/vnd.kafka.json.v2+json") == 0 ||
        strcasecmp(type, "application/json") == 0)
        *format = FERRY_RP_JSON;
    else if (strcasecmp(type, "application/vnd.kafka.binary.v2+json") == 0 ||
             strcasecmp(type, "application/vnd.kafka.v2+json") == 0)
        *format = FERRY_RP_BINARY; /* the bare v2 type is binary, as REST Proxy's v2 first had it */
    else
        return -1;
    return 0;
}

/* The types ferry answers with, in the order it prefers them. */
enum { ANSWER_OWN, ANSWER_JSON, ANSWER_TYPES };
#define ANSWER_BOTH (-1)

/* The media ranges that cover an answer type, and how specifically: a type named outranks a
 * "type/ *" range, which outranks "* / *" (RFC 9110 section 12.5.1: the most specific applies). */
static const struct {
    const char *range;
    int answer; /* ANSWER_OWN, ANSWER_JSON or ANSWER_BOTH */
    int specificity;
} answer_ranges[] = {
    {"*/*", ANSWER_BOTH, 1},
    {"*", ANSWER_BOTH, 1}, /* not a media range, but Java's default Accept has it */
    {"application/*", ANSWER_BOTH, 2},
    {"application/*+json", ANSWER_OWN, 2}, /* not in RFC 9110 either; Spring sends it */
    {FERRY_RP_ANSWER_TYPE, ANSWER_OWN, 3},
    {"application/vnd.kafka+json", ANSWER_OWN, 3},
    {"application/json", ANSWER_JSON, 3},
};

/* The most specific range of an Accept value that covers an answer type so far, and whether
 * it has q=0. */
struct answer_match {
    int specificity; /* 0: no range covers it */
    int refused;
};

/* Skips spaces and tabs from p, up to end. */
static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Nonzero when a media range's parameters (p to end, after its first ';') hold q=0, which
 * says the range is not acceptable (RFC 9110 section 12.4.2: "0", "0.", up to "0.000").
 * Quoted parameter values are not honoured: no client quotes ';' in an Accept for JSON. */
static int has_q_zero(const char *p, const char *end)
{
    while (p < end) {
        const char *next = memchr(p, ';', (size_t)(end - p));
        const char *stop = next ? next : end;
        p = skip_blanks(p, stop);
        if (stop - p >= 3 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' && p[2] == '0') {
            const char *v = p + 3;
            if (v < stop && *v == '.')
                v++;
            while (v < stop && *v == '0')
                v++;
            if (skip_blanks(v, stop) == stop)
                return 1;
        }
        p = next ? next + 1 : end;
    }
    return 0;
}

/* Notes a range of the given specificity that covers an answer type, refused (q=0) or not. A
 * range as specific as one seen before and not refused makes the type acceptable. */
static void note_match(struct answer_match *m, int specificity, int refused)
{
    if (specificity > m->specificity) {
        m->specificity = specificity;
        m->refused = refused;
    } else if (specificity == m->specificity && !refused) {
        m->refused = 0;
    }
}

/* Reads the media range from p to end ("type/subtype" and parameters) into m. */
static void match_range(const char *p, const char *end, struct answer_match m[ANSWER_TYPES])
{
    const char *params = memchr(p, ';', (size_t)(end - p));
    const char *type_end = params ? params : end;
    size_t len;
    int refused;

    p = skip_blanks(p, type_end);
    while (type_end > p && (type_end[-1] == ' ' || type_end[-1] == '\t'))
        type_end--;
    len = (size_t)(type_end - p);
    refused = params && has_q_zero(params + 1, end);
    for (size_t i = 0; i < sizeof(answer_ranges) / sizeof(answer_ranges[0]); i++) {
        if (strlen(answer_ranges[i].range) != len ||
            strncasecmp(p, answer_ranges[i].range, len) != 0)
            continue;
        for (int a = 0; a < ANSWER_TYPES; a++)
            if (answer_ranges[i].answer == ANSWER_BOTH || answer_ranges[i].answer == a)
                note_match(&m[a], answer_ranges[i].specificity, refused);
    }
}

/* Reads the Accept value as the list of media ranges it is, so that "application/json-seq"
 * is not taken for "application/json" and a type refused with q=0 is never answered; of the
 * acceptable types ferry's own wins, whatever the weights. */
const char *ferry_restproxy_answer_type(const char *accept)
{
    struct answer_match m[ANSWER_TYPES] = {{0, 0}, {0, 0}};
    const char *p = accept;

    if (!accept || !*accept)
        return FERRY_RP_ANSWER_TYPE;
    while (*p) {
        size_t len = strcspn(p, ",");
        match_range(p, p + len, m);
        p += len;
        if (*p == ',')
            p++;
    }
    if (m[ANSWER_OWN].specificity && !m[ANSWER_OWN].refused)
        return FERRY_RP_ANSWER_TYPE;
    if (m[ANSWER_JSON].specificity && !m[ANSWER_JSON].refused)
        return "application/json";
    return NULL;
}

/* ---- errors ---- */

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

static void format_where(const struct where *w, char *out, size_t size)
{
    size_t n;

    if (w->top) {
        snprintf(out, size, "%s", w->top);
        return;
    }
    snprintf(out, size, "records[%zu]", w->record);
    n = strlen(out);
    if (w->field)
        n += (size_t)snprintf(out + n, size - n, ".%s", w->field);
    if (w->in_header && n < size)
        n += (size_t)snprintf(out + n, size - n, "[%zu]", w->header);
    if (w->member && n < size)
        snprintf(out + n, size - n, ".%s", w->member);
}

/* fail() with the message prefixed by the key path of w and a colon. */
static int fail_at(struct parser *p, const struct where *w, int status, int code, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

static int fail_at(struct parser *p, const struct where *w, int status, int code, const char *fmt,
                   ...)
{
    char label[RP_WHERE_MAX];
    va_list ap;
    int n;

    format_where(w, label, sizeof(label));
    n = snprintf(p->errstr, p->errstr_size, "%s: ", label);
    if (n >= 0 && (size_t)n < p->errstr_size) {
        va_start(ap, fmt);
        vsnprintf(p->errstr + n, p->errstr_size - (size_t)n, fmt, ap);
        va_end(ap);
    }
    *p->code = code;
    return status;
}

/* A syntax error found by the cursor, located at w and a byte offset. */
static int syntax(struct parser *p, const struct where *w)
{
    return fail_at(p, w, 422, 422, "%s at byte %zu", p->s.error ? p->s.error : "invalid JSON",
                   ferry_json_offset(&p->s));
}

static int too_large(struct parser *p, const struct where *w, size_t n, const char *limit,
                     size_t max)
{
    return fail_at(p, w, 422, FERRY_RP_TOO_LARGE, "%zu bytes, more than %s (%zu)", n, limit, max);
}

/* ---- records ---- */

/* Reads a key or value in the json format: compact JSON text in the arena, or NULL. */
static int read_json_data(struct parser *p, const struct where *w, const char **data, size_t *len)
{
    const char *span;
    size_t span_len;
    char *dst = ferry_ingest_batch_space(p->b);

    if (ferry_json_read_value(&p->s, &span, &span_len))
        return syntax(p, w);
    if (span_len == 4 && memcmp(span, "null", 4) == 0) {
        *data = NULL;
        *len = 0;
        return 0;
    }
    if (span_len > ferry_ingest_batch_room(p->b))
        return fail_at(p, w, 500, 500, "out of parse space");
    *len = ferry_json_compact(span, span_len, dst);
    *data = dst;
    ferry_ingest_batch_commit(p->b, *len);
    return 0;
}

/* Reads a string into the arena; what: the error's words for a non-string. */
static int read_string(struct parser *p, const struct where *w, const char *what, char **data,
                       size_t *len)
{
    char *dst = ferry_ingest_batch_space(p->b);
    enum ferry_json_type t = ferry_json_peek(&p->s);

    if (t == FERRY_JSON_INVALID)
        return syntax(p, w);
    if (t != FERRY_JSON_STRING)
        return fail_at(p, w, 422, 422, "expected %s", what);
    if ((size_t)(p->s.end - p->s.p) > ferry_ingest_batch_room(p->b))
        return fail_at(p, w, 500, 500, "out of parse space");
    if (ferry_json_read_string(&p->s, dst, len))
        return syntax(p, w);
    *data = dst;
    return 0;
}

/* Reads a null or a string, decoding base64 when base64 is set. *data is NULL for null. */
static int read_text(struct parser *p, const struct where *w, int base64, const char **data,
                     size_t *len)
{
    const char *span;
    char *text = NULL;
    size_t span_len;
    int rc;

    if (ferry_json_peek(&p->s) == FERRY_JSON_NULL) {
        *data = NULL;
        *len = 0;
        return ferry_json_read_value(&p->s, &span, &span_len) ? syntax(p, w) : 0;
    }
    rc = read_string(p, w, base64 ? "a base64 string or null" : "a string or null", &text, len);
    if (rc)
        return rc;
    if (base64 && ferry_base64_decode(text, *len, FERRY_BASE64_STD, len))
        return fail_at(p, w, 422, 422, "base64 is invalid");
    ferry_ingest_batch_commit(p->b, *len);
    *data = text;
    return 0;
}

/* Reads a record's key or value (w->field) in the request's format, within max bytes. */
static int read_data(struct parser *p, const struct where *w, size_t max, const char *limit,
                     const char **data, size_t *len)
{
    int rc = p->format == FERRY_RP_JSON ? read_json_data(p, w, data, len)
                                        : read_text(p, w, 1, data, len);

    if (rc)
        return rc;
    if (*len > max)
        return too_large(p, w, *len, limit, max);
    return 0;
}

static int read_partition(struct parser *p, const struct where *w, struct ferry_ingest_record *r)
{
    const char *span;
    size_t span_len;
    int64_t v;

    if (ferry_json_peek(&p->s) == FERRY_JSON_NULL)
        return ferry_json_read_value(&p->s, &span, &span_len) ? syntax(p, w) : 0;
    if (ferry_json_read_int(&p->s, &v) || v < 0 || v > INT32_MAX)
        return fail_at(p, w, 422, FERRY_RP_BAD_PARTITION,
                       "expected a partition number (0 or more)");
    if (p->path_partition != FERRY_INGEST_PARTITION_ANY && v != p->path_partition)
        return fail_at(p, w, 422, FERRY_RP_BAD_PARTITION,
                       "%lld differs from the partition in the path (%d)", (long long)v,
                       (int)p->path_partition);
    r->partition = (int32_t)v;
    return 0;
}

/* How a member's name reads in messages: "?" for an empty one, and never the part before a
 * NUL (ferry_json_name_label). */
static const char *member_label(const char *name, int truncated)
{
    const char *label = ferry_json_name_label(name, truncated);
    return *label ? label : "?";
}

/* Reads one {"name": ..., "value": ...} of a record's headers; w names that header. */
static int read_header(struct parser *p, struct where *w)
{
    char name[FERRY_JSON_NAME_MAX + 1];
    struct ferry_ingest_header *h = ferry_ingest_batch_add_header(p->b);
    size_t index = 0;
    int rc, truncated, has_name = 0, has_value = 0;

    if (!h)
        return fail(p, 500, 500, "out of memory");
    if (ferry_json_enter(&p->s, '{'))
        return fail_at(p, w, 422, 422, "expected an object with name and value");
    while ((rc = ferry_json_next_member(&p->s, &index, name, &truncated)) == 1) {
        w->member = member_label(name, truncated);
        if ((strcmp(name, "name") == 0 && has_name++) ||
            (strcmp(name, "value") == 0 && has_value++))
            rc = fail_at(p, w, 422, 422, "given twice");
        else if (strcmp(name, "name") == 0)
            rc = read_text(p, w, 0, &h->name, &h->name_len);
        else if (strcmp(name, "value") == 0)
            rc = read_text(p, w, p->format == FERRY_RP_BINARY, &h->value, &h->value_len);
        else
            rc = fail_at(p, w, 422, 422, "unknown field");
        if (rc)
            return rc;
        w->member = NULL;
    }
    if (rc < 0)
        return syntax(p, w);
    if (!h->name || h->name_len == 0) {
        w->member = "name";
        return fail_at(p, w, 422, 422, "missing, expected a string");
    }
    if (h->name_len + h->value_len > p->limits->max_header_bytes)
        return too_large(p, w, h->name_len + h->value_len, "ingest.limits.max_header_bytes",
                         p->limits->max_header_bytes);
    return 0;
}

/* Reads a record's headers; w names the record's "headers" member. */
static int read_headers(struct parser *p, const struct where *w)
{
    struct where hw = *w;
    const char *span;
    size_t span_len, index = 0, count = 0;
    int rc;

    if (ferry_json_peek(&p->s) == FERRY_JSON_NULL)
        return ferry_json_read_value(&p->s, &span, &span_len) ? syntax(p, w) : 0;
    if (ferry_json_enter(&p->s, '['))
        return fail_at(p, w, 422, 422, "expected a list of {\"name\", \"value\"} objects");
    hw.in_header = 1;
    while ((rc = ferry_json_next_element(&p->s, &index)) == 1) {
        if (++count > p->limits->max_headers)
            return fail_at(p, w, 422, FERRY_RP_TOO_LARGE, "more than %s (%zu)",
                           "ingest.limits.max_headers", p->limits->max_headers);
        hw.header = count - 1;
        hw.member = NULL;
        rc = read_header(p, &hw);
        if (rc)
            return rc;
    }
    return rc < 0 ? syntax(p, w) : 0;
}

/* Reads member `name` of record i. seen has one bit per known member, to refuse repeats. */
static int read_record_member(struct parser *p, size_t i, struct ferry_ingest_record *r,
                              const char *name, int truncated, unsigned *seen)
{
    static const char *const members[] = {"key", "value", "partition", "headers", NULL};
    const struct ferry_ingest_limits *l = p->limits;
    struct where w = {.record = i, .field = member_label(name, truncated)};
    int m = 0;

    while (members[m] && strcmp(members[m], name) != 0)
        m++;
    if (!members[m])
        return fail_at(p, &w, 422, 422, "unknown field");
    if (*seen & (1u << m))
        return fail_at(p, &w, 422, 422, "given twice");
    *seen |= 1u << m;
    if (m == 0)
        return read_data(p, &w, l->max_key_bytes, "ingest.limits.max_key_bytes", &r->key,
                         &r->key_len);
    if (m == 1)
        return read_data(p, &w, l->max_value_bytes, "ingest.limits.max_value_bytes", &r->value,
                         &r->value_len);
    if (m == 2)
        return read_partition(p, &w, r);
    return read_headers(p, &w);
}

static int read_record(struct parser *p, size_t i)
{
    char name[FERRY_JSON_NAME_MAX + 1];
    struct ferry_ingest_record *r = ferry_ingest_batch_add(p->b);
    const struct where w = {.record = i};
    size_t index = 0;
    unsigned seen = 0;
    int rc, truncated;

    if (!r)
        return fail(p, 500, 500, "out of memory");
    if (p->path_partition != FERRY_INGEST_PARTITION_ANY)
        r->partition = p->path_partition;
    if (ferry_json_enter(&p->s, '{'))
        return fail_at(p, &w, 422, 422, "expected an object");
    while ((rc = ferry_json_next_member(&p->s, &index, name, &truncated)) == 1) {
        rc = read_record_member(p, i, r, name, truncated, &seen);
        if (rc)
            return rc;
    }
    return rc < 0 ? syntax(p, &w) : 0;
}

static int read_records(struct parser *p)
{
    const struct where w = {.top = "records"};
    size_t index = 0;
    int rc;

    if (ferry_json_enter(&p->s, '['))
        return fail(p, 422, 422, "records: expected a list of records");
    while ((rc = ferry_json_next_element(&p->s, &index)) == 1) {
        if (index > p->limits->max_records)
            return fail(p, 413, 413, "records: more than %s (%zu)", "ingest.limits.max_records",
                        p->limits->max_records);
        rc = read_record(p, index - 1);
        if (rc)
            return rc;
    }
    if (rc < 0)
        return syntax(p, &w);
    return index == 0 ? fail(p, 422, 422, "records: may not be empty") : 0;
}

/* Schema fields belong to the avro, protobuf and jsonschema formats: null is all ferry takes. */
static int read_schema_field(struct parser *p, const char *name)
{
    const struct where w = {.top = name};
    const char *span;
    size_t len;

    if (ferry_json_read_value(&p->s, &span, &len))
        return syntax(p, &w);
    if (len == 4 && memcmp(span, "null", 4) == 0)
        return 0;
    return fail(p, 422, 422, "%s: schemas are not supported; use the json or binary format", name);
}

static int read_body(struct parser *p)
{
    static const char *const schema_fields[] = {"key_schema", "key_schema_id", "value_schema",
                                                "value_schema_id", NULL};
    char name[FERRY_JSON_NAME_MAX + 1];
    size_t index = 0;
    int rc, truncated, seen_records = 0, schema;

    if (ferry_json_enter(&p->s, '{'))
        return fail(p, 422, 422, "body: expected a JSON object with \"records\"");
    while ((rc = ferry_json_next_member(&p->s, &index, name, &truncated)) == 1) {
        for (schema = 0; schema_fields[schema] && strcmp(schema_fields[schema], name); schema++)
            ;
        if (strcmp(name, "records") == 0 && !seen_records++)
            rc = read_records(p);
        else if (strcmp(name, "records") == 0)
            rc = fail(p, 422, 422, "records: given twice");
        else if (schema_fields[schema])
            rc = read_schema_field(p, name);
        else
            rc = fail(p, 422, 422, "%s: unknown field", member_label(name, truncated));
        if (rc)
            return rc;
    }
    if (rc < 0 || ferry_json_finish(&p->s))
        return syntax(p, &(const struct where){.top = "body"});
    return seen_records ? 0 : fail(p, 422, 422, "records: missing");
}

int ferry_restproxy_parse(const char *body, size_t len, enum ferry_rp_format format,
                          int32_t path_partition, const struct ferry_ingest_limits *limits,
                          struct ferry_ingest_batch *out, int *code, char *errstr,
                          size_t errstr_size)
{
    struct parser p = {.format = format,
                       .path_partition = path_partition,
                       .limits = limits,
                       .b = out,
                       .code = code,
                       .errstr = errstr,
                       .errstr_size = errstr_size};
    int rc;

    ferry_json_cursor_init(&p.s, body, len);
    rc = read_body(&p);
    if (!rc)
        ferry_ingest_batch_count_bytes(out);
    return rc;
}

/* ---- answers ---- */

/* Appends an integer, or null when it is negative (unknown). Integers are written without
 * printf: a batch answer formats two per record, and this is its hot path. */
static void add_int_or_null(struct ferry_buf *out, int64_t v)
{
    if (v >= 0)
        ferry_json_add_int(out, v);
    else
        ferry_buf_add(out, "null", 4);
}

static void add_offset(struct ferry_buf *out, const struct ferry_rp_offset *o)
{
    ferry_buf_adds(out, "{\"partition\":");
    add_int_or_null(out, o->partition);
    ferry_buf_adds(out, ",\"offset\":");
    add_int_or_null(out, o->offset);
    if (!o->error_code) {
        ferry_buf_adds(out, ",\"error_code\":null,\"error\":null}");
        return;
    }
    ferry_buf_adds(out, ",\"error_code\":");
    ferry_json_add_int(out, o->error_code);
    ferry_buf_adds(out, ",\"error\":");
    ferry_json_add_string(out, o->error, strlen(o->error));
    ferry_buf_addc(out, '}');
}

int ferry_restproxy_write_offsets(struct ferry_buf *out, size_t n, ferry_rp_offset_fn fn, void *arg,
                                  int error_code, const char *message)
{
    struct ferry_rp_offset o;

    ferry_buf_adds(out, "{\"offsets\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            ferry_buf_addc(out, ',');
        fn(arg, i, &o);
        add_offset(out, &o);
    }
    ferry_buf_adds(out, "],\"key_schema_id\":null,\"value_schema_id\":null");
    if (error_code) {
        ferry_buf_adds(out, ",\"error_code\":");
        ferry_json_add_int(out, error_code);
        ferry_buf_adds(out, ",\"message\":");
        ferry_json_add_string(out, message, strlen(message));
    }
    ferry_buf_adds(out, "}\n");
    return out->failed ? -1 : 0;
}
