/*
 * template.c - compiling and rendering request templates (see template.h).
 *
 * Compiling splits the text once into parts: literal slices of a private copy of the text, and
 * variables with everything a render needs resolved ahead (the header name as a C string, a
 * value path split into segments with array indexes parsed). Rendering then walks the parts and
 * appends to the caller's buffer; the only allocation on that path is the jansson tree of a
 * record value, built at most once per render and only for ${value.PATH}.
 */
#include "route/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/json_check.h"

/* Room for any double in "%.17g" plus ".0". */
#define REAL_TEXT_SIZE 40

enum part_kind {
    PART_TEXT,
    PART_TOPIC,
    PART_PARTITION,
    PART_OFFSET,
    PART_KEY,
    PART_TIMESTAMP,
    PART_HEADER,
    PART_VALUE,
    PART_VALUE_PATH,
};

/* One step of a value path: an object key, or an array index when index >= 0. */
struct segment {
    const char *name;
    long index;
};

struct part {
    enum part_kind kind;
    const char *text;     /* PART_TEXT: a slice of the template's copy of its text */
    size_t len;           /* PART_TEXT: the slice's length */
    char *var;            /* variables: what stood between "${" and "}", for messages */
    char *path;           /* PART_VALUE_PATH: copy of the path, '.' turned into NUL */
    struct segment *segs; /* PART_VALUE_PATH: the path's segments, pointing into path */
    size_t nsegs;
};

struct ferry_template {
    enum ferry_template_mode mode;
    char *src;
    struct part *parts;
    size_t nparts;
    size_t alloc;
};

/* What one render carries from part to part. */
struct render {
    const ferry_template *t;
    const struct ferry_record *rec;
    struct ferry_buf *out;
    json_t *root; /* the parsed value, once a ${value.PATH} needed it */
    char *errstr;
    size_t errstr_size;
};

static const struct {
    const char *name;
    enum part_kind kind;
} plain_vars[] = {
    {"topic", PART_TOPIC}, {"partition", PART_PARTITION}, {"offset", PART_OFFSET},
    {"key", PART_KEY},     {"timestamp", PART_TIMESTAMP}, {"value", PART_VALUE},
};

/* Returns a new zeroed part at the end of t->parts, or NULL when memory ran out. */
static struct part *push_part(ferry_template *t, enum part_kind kind)
{
    size_t alloc = t->alloc ? t->alloc * 2 : 8;
    struct part *parts;

    if (t->nparts == t->alloc) {
        parts = realloc(t->parts, alloc * sizeof(*parts));
        if (!parts)
            return NULL;
        t->parts = parts;
        t->alloc = alloc;
    }
    memset(&t->parts[t->nparts], 0, sizeof(t->parts[0]));
    t->parts[t->nparts].kind = kind;
    return &t->parts[t->nparts++];
}

/* Returns the array index a path segment spells, or -1 when it is not one. */
static long segment_index(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 9 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
        return -1;
    return strtol(s, NULL, 10);
}

/* Splits part->var ("value.a.0.b") into part->path and part->segs. */
static int compile_path(struct part *part, char *errstr, size_t errstr_size)
{
    size_t n = 1, i;
    char *p;

    part->path = strdup(part->var + strlen("value."));
    for (p = part->path; p && *p; p++)
        n += *p == '.';
    if (part->path)
        part->segs = calloc(n, sizeof(*part->segs));
    if (!part->segs) {
        snprintf(errstr, errstr_size, "template: out of memory");
        return -1;
    }
    for (i = 0, p = part->path; i < n; i++, p += strlen(p) + 1) {
        part->segs[i].name = p;
        p[strcspn(p, ".")] = '\0';
        if (!*p) {
            snprintf(errstr, errstr_size, "template: empty path segment in '${%s}'", part->var);
            return -1;
        }
        part->segs[i].index = segment_index(p);
    }
    part->nsegs = n;
    return 0;
}

/* Adds the variable named by var[0..len). */
static int add_var(ferry_template *t, const char *var, size_t len, char *errstr, size_t errstr_size)
{
    struct part *part = push_part(t, PART_TEXT);
    size_t i;

    if (part)
        part->var = strndup(var, len);
    if (!part || !part->var) {
        snprintf(errstr, errstr_size, "template: out of memory");
        return -1;
    }
    for (i = 0; i < sizeof(plain_vars) / sizeof(plain_vars[0]); i++) {
        if (strcmp(part->var, plain_vars[i].name) == 0) {
            part->kind = plain_vars[i].kind;
            return 0;
        }
    }
    if (strncmp(part->var, "header.", 7) == 0 && part->var[7]) {
        part->kind = PART_HEADER;
        return 0;
    }
    if (strncmp(part->var, "value.", 6) == 0) {
        part->kind = PART_VALUE_PATH;
        return compile_path(part, errstr, errstr_size);
    }
    snprintf(errstr, errstr_size, "template: unknown variable '${%s}'", part->var);
    return -1;
}

static int add_text(ferry_template *t, const char *p, size_t len, char *errstr, size_t errstr_size)
{
    struct part *part = push_part(t, PART_TEXT);

    if (!part) {
        snprintf(errstr, errstr_size, "template: out of memory");
        return -1;
    }
    part->text = p;
    part->len = len;
    return 0;
}

/* *pp is at a '$': reads "$$" or "${...}" and moves *pp past it. */
static int parse_dollar(ferry_template *t, const char **pp, char *errstr, size_t errstr_size)
{
    const char *p = *pp, *name = p + 2;
    size_t offset = (size_t)(p - t->src), len;

    if (p[1] == '$') {
        *pp = p + 2;
        return add_text(t, p, 1, errstr, errstr_size);
    }
    if (p[1] != '{') {
        snprintf(errstr, errstr_size,
                 "template: '$' at offset %zu is not followed by '{' (write '$$' for a '$')",
                 offset);
        return -1;
    }
    len = strcspn(name, "}${");
    if (name[len] != '}') {
        snprintf(errstr, errstr_size, "template: unterminated '${' at offset %zu", offset);
        return -1;
    }
    *pp = name + len + 1;
    return add_var(t, name, len, errstr, errstr_size);
}

static int parse(ferry_template *t, char *errstr, size_t errstr_size)
{
    const char *p = t->src;
    size_t len;
    int result = 0;

    while (!result && *p) {
        len = strcspn(p, "$");
        if (len) {
            result = add_text(t, p, len, errstr, errstr_size);
            p += len;
        } else {
            result = parse_dollar(t, &p, errstr, errstr_size);
        }
    }
    return result;
}

ferry_template *ferry_template_new(const char *text, enum ferry_template_mode mode, char *errstr,
                                   size_t errstr_size)
{
    ferry_template *t = calloc(1, sizeof(*t));
    size_t crlf = strcspn(text, "\r\n");
    int result = -1;

    if (t)
        t->src = strdup(text);
    if (!t || !t->src) {
        snprintf(errstr, errstr_size, "template: out of memory");
        goto out;
    }
    t->mode = mode;
    if (mode == FERRY_TEMPLATE_HEADER && text[crlf]) {
        snprintf(errstr, errstr_size, "template: header template has CR or LF at offset %zu", crlf);
        goto out;
    }
    result = parse(t, errstr, errstr_size);
out:
    if (result) {
        ferry_template_destroy(t);
        return NULL;
    }
    return t;
}

void ferry_template_destroy(ferry_template *t)
{
    size_t i;

    if (!t)
        return;
    for (i = 0; i < t->nparts; i++) {
        free(t->parts[i].var);
        free(t->parts[i].path);
        free(t->parts[i].segs);
    }
    free(t->parts);
    free(t->src);
    free(t);
}

int ferry_template_is_constant(const ferry_template *t)
{
    size_t i;

    for (i = 0; i < t->nparts; i++) {
        if (t->parts[i].kind != PART_TEXT)
            return 0;
    }
    return 1;
}

static int fail(struct render *r, const struct part *part, const char *why)
{
    snprintf(r->errstr, r->errstr_size, "template: '${%s}': %s", part->var, why);
    return FERRY_TEMPLATE_EREC;
}

static int too_big(struct render *r)
{
    snprintf(r->errstr, r->errstr_size, "template: output passes its limit of %zu bytes",
             r->out->cap);
    return FERRY_TEMPLATE_ETOOBIG;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int add_url_encoded(struct ferry_buf *out, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char esc[3] = {'%', 0, 0};
    size_t i = 0, run;
    int result = 0;

    while (!result && i < n) {
        for (run = 0; i + run < n && is_unreserved((unsigned char)p[i + run]); run++)
            ;
        if (run) {
            result = ferry_buf_add(out, p + i, run);
            i += run;
            continue;
        }
        esc[1] = hex[(unsigned char)p[i] >> 4];
        esc[2] = hex[(unsigned char)p[i] & 15];
        result = ferry_buf_add(out, esc, 3);
        i++;
    }
    return result;
}

/* Appends text a variable produced, encoded for the template's mode. */
static int emit(struct render *r, const struct part *part, const char *p, size_t n)
{
    int result;

    switch (r->t->mode) {
    case FERRY_TEMPLATE_URL:
        result = add_url_encoded(r->out, p, n);
        break;
    case FERRY_TEMPLATE_HEADER:
        if (memchr(p, '\r', n) || memchr(p, '\n', n) || memchr(p, '\0', n))
            return fail(r, part, "value contains CR, LF or NUL, which a header cannot carry");
        result = ferry_buf_add(r->out, p, n);
        break;
    default:
        result = ferry_buf_add(r->out, p, n);
        break;
    }
    return result ? too_big(r) : FERRY_TEMPLATE_OK;
}

static int emit_int(struct render *r, int64_t v)
{
    /* Digits and '-' need no encoding in any mode. */
    return ferry_json_add_int(r->out, v) ? too_big(r) : FERRY_TEMPLATE_OK;
}

static int render_header(struct render *r, const struct part *part)
{
    const char *name = part->var + strlen("header.");
    char why[300];
    const void *v = NULL;
    size_t n = 0;
    rd_kafka_headers_t *headers = ferry_record_headers(r->rec);

    if (!headers || rd_kafka_header_get_last(headers, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, sizeof(why), "record has no header '%s'", name);
        return fail(r, part, why);
    }
    return v ? emit(r, part, v, n) : FERRY_TEMPLATE_OK;
}

/* Parses the record value into r->root unless an earlier part already did. */
static int parse_value(struct render *r, const struct part *part)
{
    char why[300];
    json_error_t err;

    if (r->root)
        return FERRY_TEMPLATE_OK;
    if (!r->rec->value)
        return fail(r, part, "record has no value (tombstone)");
    r->root = json_loadb(r->rec->value, r->rec->value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!r->root) {
        snprintf(why, sizeof(why), "record value is not JSON: %s (at byte %d)", err.text,
                 err.position);
        return fail(r, part, why);
    }
    return FERRY_TEMPLATE_OK;
}

/* Writes the shortest "%g" text that reads back as d into text (REAL_TEXT_SIZE bytes), keeping
 * ".0" on integral values as JSON encoders do; returns its length. Assumes the "C" numeric
 * locale, which ferry never changes. */
static size_t format_real(double d, char *text)
{
    int prec, n = 0;

    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(text, REAL_TEXT_SIZE - 2, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    if (!strpbrk(text, ".eE")) {
        memcpy(text + n, ".0", 3);
        n += 2;
    }
    return (size_t)n;
}

static int add_real(struct ferry_buf *out, double d)
{
    char text[REAL_TEXT_SIZE];

    return ferry_buf_add(out, text, format_real(d, text));
}

static int write_json(struct ferry_buf *out, json_t *node);

static int write_object(struct ferry_buf *out, json_t *node)
{
    const char *key;
    size_t key_len;
    json_t *v;
    int result = ferry_buf_addc(out, '{');
    int first = 1;

    json_object_keylen_foreach(node, key, key_len, v)
    {
        if (!result && !first)
            result = ferry_buf_addc(out, ',');
        if (!result)
            result = ferry_json_add_string(out, key, key_len);
        if (!result)
            result = ferry_buf_addc(out, ':');
        if (!result)
            result = write_json(out, v);
        first = 0;
    }
    return result ? result : ferry_buf_addc(out, '}');
}

static int write_array(struct ferry_buf *out, json_t *node)
{
    size_t i;
    int result = ferry_buf_addc(out, '[');

    for (i = 0; !result && i < json_array_size(node); i++) {
        if (i)
            result = ferry_buf_addc(out, ',');
        if (!result)
            result = write_json(out, json_array_get(node, i));
    }
    return result ? result : ferry_buf_addc(out, ']');
}

/* Appends node as compact JSON. Recursion is bounded by jansson's parse depth limit. */
static int write_json(struct ferry_buf *out, json_t *node)
{
    switch (json_typeof(node)) {
    case JSON_OBJECT:
        return write_object(out, node);
    case JSON_ARRAY:
        return write_array(out, node);
    case JSON_STRING:
        return ferry_json_add_string(out, json_string_value(node), json_string_length(node));
    case JSON_INTEGER:
        return ferry_json_add_int(out, json_integer_value(node));
    case JSON_REAL:
        return add_real(out, json_real_value(node));
    case JSON_TRUE:
        return ferry_buf_add(out, "true", 4);
    case JSON_FALSE:
        return ferry_buf_add(out, "false", 5);
    default:
        return ferry_buf_add(out, "null", 4);
    }
}

/* Objects and arrays as compact JSON, percent-encoded afterwards in URL mode. Compact JSON has
 * no raw CR, LF or NUL, so header mode needs no check. */
static int emit_container(struct render *r, const struct part *part, json_t *node)
{
    struct ferry_buf tmp;
    int result;

    if (r->t->mode != FERRY_TEMPLATE_URL)
        return write_json(r->out, node) ? too_big(r) : FERRY_TEMPLATE_OK;
    ferry_buf_init(&tmp, r->out->cap);
    result = write_json(&tmp, node) ? too_big(r) : emit(r, part, tmp.data, tmp.len);
    ferry_buf_release(&tmp);
    return result;
}

/* Appends what a value path found, as template.h describes. */
static int emit_json(struct render *r, const struct part *part, json_t *node)
{
    char text[REAL_TEXT_SIZE];

    switch (json_typeof(node)) {
    case JSON_STRING:
        return emit(r, part, json_string_value(node), json_string_length(node));
    case JSON_TRUE:
        return emit(r, part, "true", 4);
    case JSON_FALSE:
        return emit(r, part, "false", 5);
    case JSON_NULL:
        return FERRY_TEMPLATE_OK;
    case JSON_INTEGER:
        return emit_int(r, json_integer_value(node));
    case JSON_REAL:
        return emit(r, part, text, format_real(json_real_value(node), text));
    default:
        return emit_container(r, part, node);
    }
}

static json_t *step(json_t *node, const struct segment *seg)
{
    if (json_is_object(node))
        return json_object_get(node, seg->name);
    if (json_is_array(node) && seg->index >= 0)
        return json_array_get(node, (size_t)seg->index);
    return NULL;
}

static int render_path(struct render *r, const struct part *part)
{
    const struct segment *last;
    json_t *node;
    char why[300];
    size_t i;
    int result = parse_value(r, part);

    if (result)
        return result;
    node = r->root;
    for (i = 0; node && i < part->nsegs; i++)
        node = step(node, &part->segs[i]);
    if (node)
        return emit_json(r, part, node);
    /* Name the path up to the segment that found nothing, as written in the template. */
    last = &part->segs[i - 1];
    snprintf(why, sizeof(why), "record value has nothing at '%.*s'",
             (int)(last->name - part->path + (ptrdiff_t)strlen(last->name)),
             part->var + strlen("value."));
    return fail(r, part, why);
}

static int render_part(struct render *r, const struct part *part)
{
    const struct ferry_record *rec = r->rec;

    switch (part->kind) {
    case PART_TEXT:
        return ferry_buf_add(r->out, part->text, part->len) ? too_big(r) : FERRY_TEMPLATE_OK;
    case PART_TOPIC:
        return emit(r, part, rec->topic, strlen(rec->topic));
    case PART_PARTITION:
        return emit_int(r, rec->partition);
    case PART_OFFSET:
        return emit_int(r, rec->offset);
    case PART_TIMESTAMP:
        return rec->timestamp_ms == -1 ? FERRY_TEMPLATE_OK : emit_int(r, rec->timestamp_ms);
    case PART_KEY:
        return rec->key ? emit(r, part, rec->key, rec->key_len) : FERRY_TEMPLATE_OK;
    case PART_VALUE:
        return rec->value ? emit(r, part, rec->value, rec->value_len) : FERRY_TEMPLATE_OK;
    case PART_HEADER:
        return render_header(r, part);
    default:
        return render_path(r, part);
    }
}

int ferry_template_render(const ferry_template *t, const struct ferry_record *rec,
                          struct ferry_buf *out, char *errstr, size_t errstr_size)
{
    struct render r = {t, rec, out, NULL, errstr, errstr_size};
    const struct ferry_buf saved = *out;
    size_t i;
    int result = FERRY_TEMPLATE_OK;

    for (i = 0; !result && i < t->nparts; i++)
        result = render_part(&r, &t->parts[i]);
    json_decref(r.root);
    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}
