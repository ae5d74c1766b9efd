/*
 * validate.c - a route's record validation (see validate.h): the Confluent wire-format prefix,
 * and the walk over a record's JSON text that checks each value against its node of the
 * compiled schema (validate_schema.c) and names the first value that fails.
 *
 * The record is checked once with ferry_json_check and then walked with the cursor of
 * core/json_scan.h without checking again; strings are looked at in place unless they hold an
 * escape, and the failure's pointer is built only when there is a failure.
 */
#include "route/validate.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "route/validate_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POINTER_MAX 400 /* room for a failure's pointer */
#define RULE_MAX 128    /* text of one broken rule */

struct ferry_validate {
    struct validate_schema schema;
    int64_t *schema_ids;
    size_t nschema_ids;
    int strip;
};

ferry_validate *ferry_validate_new(const struct ferry_validate_options *o, char *errstr,
                                   size_t errstr_size)
{
    ferry_validate *v = calloc(1, sizeof(*v));
    int result = -1;

    if (!v) {
        snprintf(errstr, errstr_size, "validate: out of memory");
        return NULL;
    }
    if (o->nschema_ids > FERRY_VALIDATE_SCHEMA_IDS_MAX) {
        snprintf(errstr, errstr_size, "schema_ids: more than %d ids",
                 FERRY_VALIDATE_SCHEMA_IDS_MAX);
        goto out;
    }
    if (o->strip && !o->nschema_ids) {
        snprintf(errstr, errstr_size, "strip: needs schema_ids");
        goto out;
    }
    if (o->nschema_ids) {
        v->schema_ids = malloc(o->nschema_ids * sizeof(*v->schema_ids));
        if (!v->schema_ids) {
            snprintf(errstr, errstr_size, "validate: out of memory");
            goto out;
        }
        memcpy(v->schema_ids, o->schema_ids, o->nschema_ids * sizeof(*v->schema_ids));
        v->nschema_ids = o->nschema_ids;
    }
    v->strip = o->strip;
    result = 0;
    if (o->schema_path || o->schema_text)
        result = validate_schema_compile(&v->schema, o->schema_path, o->schema_text, o->schema_len,
                                         errstr, errstr_size);
out:
    if (result) {
        ferry_validate_destroy(v);
        return NULL;
    }
    return v;
}

void ferry_validate_destroy(ferry_validate *v)
{
    if (!v)
        return;
    validate_schema_release(&v->schema);
    free(v->schema_ids);
    free(v);
}

/* ---- walking a record ---- */

/* One walk over one record: the cursor, where it is as a JSON Pointer, and room for strings. */
struct walk {
    struct ferry_json_cursor c;
    char ptr[POINTER_MAX]; /* a failure's pointer: ptr + pstart, ending at the last byte */
    size_t pstart;
    int cut; /* the pointer did not fit: its outer part is missing */
    struct ferry_buf text;
    char rule[RULE_MAX];
};

/* Records a broken rule; returns 1, the walk's "invalid". */
static int broke(struct walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int broke(struct walk *w, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w->rule, sizeof(w->rule), fmt, ap);
    va_end(ap);
    return 1;
}

/* Puts a reference token, escaped as RFC 6901 says ('~' as ~0, '/' as ~1), in front of the
 * pointer. The pointer is built only for a failure, from the failing value outwards, at the end
 * of w->ptr; when it does not fit, its outer part is left out. */
static void ptr_prepend(struct walk *w, const char *seg, size_t len)
{
    size_t need = 1;
    char *o;

    for (size_t i = 0; i < len; i++)
        need += (seg[i] == '~' || seg[i] == '/') ? 2 : 1;
    if (w->cut || need > w->pstart) {
        w->cut = 1;
        return;
    }
    w->pstart -= need;
    o = w->ptr + w->pstart;
    *o++ = '/';
    for (size_t i = 0; i < len; i++) {
        if (seg[i] == '~' || seg[i] == '/') {
            *o++ = '~';
            *o++ = seg[i] == '~' ? '0' : '1';
        } else {
            *o++ = seg[i];
        }
    }
}

static int check_node(struct walk *w, const struct node *n);

/* JSON Schema equality: numbers by value (1 equals 1.0), objects whatever their order. */
static int same_json(const json_t *a, const json_t *b)
{
    size_t i;
    const char *key;
    json_t *x;

    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        json_array_foreach(a, i, x) if (!same_json(x, json_array_get(b, i))) return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, x)
        {
            json_t *y = json_object_get(b, key);
            if (!y || !same_json(x, y))
                return 0;
        }
    }
    return 1; /* true, false, null */
}

/* enum and const, on the value at the cursor (the cursor does not move). */
static int check_literals(struct walk *w, const struct node *n)
{
    struct ferry_json_cursor c = w->c;
    const char *span;
    size_t len, i;
    json_t *value, *e;
    int found = 0;

    if (!n->enum_values && !n->const_value)
        return 0;
    if (ferry_json_peek(&c) == FERRY_JSON_INVALID)
        return broke(w, "not JSON");
    span = c.p;
    if (ferry_json_skip(&c))
        return broke(w, "not JSON");
    len = (size_t)(c.p - span);
    value = json_loadb(span, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    if (!value)
        return broke(w, "enum (value unreadable)");
    if (n->const_value && !same_json(value, n->const_value)) {
        json_decref(value);
        return broke(w, "const");
    }
    if (n->enum_values) {
        json_array_foreach(n->enum_values, i, e) if (same_json(value, e)) found = 1;
    }
    json_decref(value);
    return n->enum_values && !found ? broke(w, "enum") : 0;
}

static int broke_type(struct walk *w, unsigned types)
{
    char text[RULE_MAX] = "";
    size_t len = 0;

    for (size_t i = 0; i < VALIDATE_TYPES; i++)
        if (types & (1u << i))
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", len ? "," : "",
                                    validate_type_names[i]);
    return broke(w, "type %s", text);
}

static int check_number_limits(struct walk *w, const struct node *n, double d)
{
    if (!isnan(n->minimum) && d < n->minimum)
        return broke(w, "minimum %.17g", n->minimum);
    if (!isnan(n->maximum) && d > n->maximum)
        return broke(w, "maximum %.17g", n->maximum);
    if (!isnan(n->exclusive_minimum) && d <= n->exclusive_minimum)
        return broke(w, "exclusiveMinimum %.17g", n->exclusive_minimum);
    if (!isnan(n->exclusive_maximum) && d >= n->exclusive_maximum)
        return broke(w, "exclusiveMaximum %.17g", n->exclusive_maximum);
    return 0;
}

static int check_number(struct walk *w, const struct node *n)
{
    double d = 0;
    int integral;

    if (ferry_json_read_real(&w->c, &d))
        return broke(w, "number out of range");
    integral = isfinite(d) && d == floor(d);
    if (n->types && !(n->types & T_NUMBER) && !((n->types & T_INTEGER) && integral))
        return broke_type(w, n->types);
    return check_number_limits(w, n, d);
}

/* Code points of valid UTF-8: every byte but the continuation bytes starts one. */
static int64_t code_points(const char *p, size_t n)
{
    int64_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)p[i] & 0xC0) != 0x80;
    return count;
}

/* Moves past the string at the cursor (at its opening quote) and sets its text. The record
 * passed ferry_json_check, so finding the closing quote is all that is left to do: memchr finds
 * the quotes, and one after an odd number of backslashes is escaped. Long strings (padding,
 * payloads) are common, where ferry_json_read_value would check each byte again. */
static int string_span(struct walk *w, const char **span, size_t *len)
{
    const char *p = w->c.p, *end = w->c.end, *q = p + 1;

    for (;;) {
        size_t bs = 0;
        q = memchr(q, '"', (size_t)(end - q));
        if (!q)
            return -1;
        while (q - bs > p + 1 && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            break;
        q++;
    }
    *span = p;
    *len = (size_t)(q + 1 - p);
    w->c.p = q + 1;
    return 0;
}

/* The decoded bytes of the string text span[0..len): the text between the quotes itself when it
 * has no escape (most strings), else a copy decoded into w->text. Returns 0, or -1 when memory
 * ran out. */
static int string_bytes(struct walk *w, const char *span, size_t len, const char **out,
                        size_t *out_len)
{
    if (!memchr(span, '\\', len)) {
        *out = span + 1;
        *out_len = len - 2;
        return 0;
    }
    ferry_buf_reset(&w->text);
    if (ferry_json_add_decoded(&w->text, span, len))
        return -1;
    *out = w->text.data ? w->text.data : "";
    *out_len = w->text.len;
    return 0;
}

/* minLength and maxLength, counting code points only when the byte count (between one and four
 * bytes a code point) does not settle it. */
static int check_length(struct walk *w, const struct node *n, const char *p, size_t bytes)
{
    int64_t len = (int64_t)bytes, min = n->min_length, max = n->max_length;
    int64_t points = -1;

    if (min >= 0 && len / 4 < min)
        points = code_points(p, bytes);
    if (max >= 0 && len > max && points < 0)
        points = code_points(p, bytes);
    if (min >= 0 && points >= 0 && points < min)
        return broke(w, "minLength %" PRId64, min);
    if (max >= 0 && points > max)
        return broke(w, "maxLength %" PRId64, max);
    return 0;
}

/* pattern, searched in the whole string (REG_STARTEND: no NUL needed, and a NUL in the string
 * is just a character). */
static int check_pattern(struct walk *w, const struct node *n, const char *p, size_t len)
{
    regmatch_t range[1];

    range[0].rm_so = 0;
    range[0].rm_eo = (regoff_t)len;
    if (regexec(&n->pattern, p, 1, range, REG_STARTEND) != 0)
        return broke(w, "pattern %s", n->pattern_text);
    return 0;
}

static int check_string(struct walk *w, const struct node *n)
{
    const char *span, *text;
    size_t len, text_len;
    int rc;

    if (n->types && !(n->types & T_STRING))
        return broke_type(w, n->types);
    if (n->min_length < 0 && n->max_length < 0 && !n->pattern_text)
        return ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0;
    if (string_span(w, &span, &len))
        return broke(w, "not JSON");
    if (string_bytes(w, span, len, &text, &text_len))
        return broke(w, "string too long to check");
    rc = check_length(w, n, text, text_len);
    if (!rc && n->pattern_text)
        rc = check_pattern(w, n, text, text_len);
    return rc;
}

static const struct node *property(const struct node *n, const char *name, int truncated)
{
    size_t len = strlen(name);

    for (size_t i = 0; !truncated && i < n->nprops; i++)
        if (n->props[i].len == len && memcmp(n->props[i].name, name, len) == 0)
            return n->props[i].schema;
    return NULL;
}

/* Notes which required names the member is. */
static void mark_required(const struct node *n, const char *name, int truncated, uint64_t *seen)
{
    for (size_t i = 0; !truncated && i < n->nrequired; i++)
        if (strcmp(n->required[i].name, name) == 0)
            *seen |= (uint64_t)1 << i;
}

static int check_member(struct walk *w, const struct node *n, const char *name, int truncated)
{
    const struct node *sub = property(n, name, truncated);
    int rc;

    if (!sub && n->additional && n->additional->boolean == 0)
        rc = broke(w, "additionalProperties false");
    else if (sub || n->additional)
        rc = check_node(w, sub ? sub : n->additional);
    else
        rc = ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0;
    if (rc)
        ptr_prepend(w, name, strlen(name));
    return rc;
}

static int check_object(struct walk *w, const struct node *n)
{
    char name[FERRY_JSON_NAME_MAX + 1];
    size_t index = 0;
    uint64_t seen = 0;
    int truncated = 0, more, rc;

    if (n->types && !(n->types & T_OBJECT))
        return broke_type(w, n->types);
    if (!n->nprops && !n->nrequired && !n->additional && n->min_props < 0 && n->max_props < 0)
        return ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0; /* nothing to look at inside */
    if (ferry_json_enter(&w->c, '{'))
        return broke(w, "not JSON");
    while ((more = ferry_json_next_member(&w->c, &index, name, &truncated)) == 1) {
        mark_required(n, name, truncated, &seen);
        rc = check_member(w, n, ferry_json_name_label(name, truncated), truncated);
        if (rc)
            return rc;
    }
    if (more < 0)
        return broke(w, "not JSON");
    for (size_t i = 0; i < n->nrequired; i++)
        if (!(seen & ((uint64_t)1 << i)))
            return broke(w, "required %s", n->required[i].name);
    if (n->min_props >= 0 && (int64_t)index < n->min_props)
        return broke(w, "minProperties %" PRId64, n->min_props);
    if (n->max_props >= 0 && (int64_t)index > n->max_props)
        return broke(w, "maxProperties %" PRId64, n->max_props);
    return 0;
}

static int check_element(struct walk *w, const struct node *n, size_t i)
{
    const struct node *sub = n->tuple ? (i < n->ntuple ? n->tuple[i] : NULL) : n->items;

    if (sub)
        return check_node(w, sub);
    return ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0;
}

static int check_array(struct walk *w, const struct node *n)
{
    char seg[24];
    size_t index = 0;
    int more, rc;

    if (n->types && !(n->types & T_ARRAY))
        return broke_type(w, n->types);
    if (!n->items && !n->tuple && n->min_items < 0 && n->max_items < 0)
        return ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0;
    if (ferry_json_enter(&w->c, '['))
        return broke(w, "not JSON");
    while ((more = ferry_json_next_element(&w->c, &index)) == 1) {
        rc = check_element(w, n, index - 1);
        if (rc) {
            snprintf(seg, sizeof(seg), "%zu", index - 1);
            ptr_prepend(w, seg, strlen(seg));
            return rc;
        }
    }
    if (more < 0)
        return broke(w, "not JSON");
    if (n->min_items >= 0 && (int64_t)index < n->min_items)
        return broke(w, "minItems %" PRId64, n->min_items);
    if (n->max_items >= 0 && (int64_t)index > n->max_items)
        return broke(w, "maxItems %" PRId64, n->max_items);
    return 0;
}

static int check_simple(struct walk *w, const struct node *n, unsigned type)
{
    if (n->types && !(n->types & type))
        return broke_type(w, n->types);
    return ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0;
}

/* Checks the value at the cursor against n and moves past it. Returns 0, or 1 with w->rule
 * set and w->ptr naming the value. */
static int check_node(struct walk *w, const struct node *n)
{
    enum ferry_json_type t;
    int rc;

    if (n->boolean >= 0)
        return n->boolean ? (ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0)
                          : broke(w, "false schema");
    t = ferry_json_peek(&w->c);
    rc = check_literals(w, n);
    if (rc)
        return rc;
    switch (t) {
    case FERRY_JSON_OBJECT:
        return check_object(w, n);
    case FERRY_JSON_ARRAY:
        return check_array(w, n);
    case FERRY_JSON_STRING:
        return check_string(w, n);
    case FERRY_JSON_NUMBER:
        return check_number(w, n);
    case FERRY_JSON_NULL:
        return check_simple(w, n, T_NULL);
    case FERRY_JSON_TRUE:
    case FERRY_JSON_FALSE:
        return check_simple(w, n, T_BOOLEAN);
    default:
        return broke(w, "not JSON");
    }
}

static void write_reason(const struct walk *w, char *why, size_t why_size)
{
    const char *ptr = w->ptr + w->pstart;

    snprintf(why, why_size, "%s%s: %s", w->cut ? "..." : "", *ptr || w->cut ? ptr : "(root)",
             w->rule);
}

int ferry_validate_json(const ferry_validate *v, const char *p, size_t n, char *why,
                        size_t why_size)
{
    struct walk w;
    struct ferry_json_error err;
    int rc;

    if (!v->schema.root)
        return 0;
    if (!p) {
        snprintf(why, why_size, "(root): not JSON (no value)");
        return 1;
    }
    if (ferry_json_check(p, n, &err)) {
        snprintf(why, why_size, "(root): not JSON (%s at byte %zu)", err.why, err.offset);
        return 1;
    }
    memset(&w, 0, sizeof(w));
    w.pstart = sizeof(w.ptr) - 1; /* the NUL memset wrote there ends the pointer */
    ferry_json_cursor_init(&w.c, p, n);
    ferry_buf_init(&w.text, n + 1); /* a decoded string is never longer than its text */
    rc = check_node(&w, v->schema.root);
    if (rc)
        write_reason(&w, why, why_size);
    ferry_buf_release(&w.text);
    return rc;
}

static int check_prefix(const ferry_validate *v, const char *p, size_t n, char *why,
                        size_t why_size)
{
    const unsigned char *u = (const unsigned char *)p;
    int64_t id;

    if (!p || n < FERRY_VALIDATE_WIRE_PREFIX) {
        snprintf(why, why_size, "wire format: %s",
                 p ? "shorter than the 5-byte prefix" : "no value");
        return 1;
    }
    if (u[0] != 0) {
        snprintf(why, why_size, "wire format: magic byte %u, expected 0", u[0]);
        return 1;
    }
    id = (int64_t)(((uint32_t)u[1] << 24) | ((uint32_t)u[2] << 16) | ((uint32_t)u[3] << 8) | u[4]);
    for (size_t i = 0; i < v->nschema_ids; i++)
        if (v->schema_ids[i] == id)
            return 0;
    snprintf(why, why_size, "wire format: schema id %" PRId64 " not allowed", id);
    return 1;
}

int ferry_validate_record(const ferry_validate *v, const char **value, size_t *len, char *why,
                          size_t why_size)
{
    const char *p = *value;
    size_t n = *len;
    char reason[FERRY_VALIDATE_REASON_MAX];

    if (v->nschema_ids) {
        if (check_prefix(v, p, n, why, why_size))
            return 1;
        p += FERRY_VALIDATE_WIRE_PREFIX; /* the schema applies to what follows the prefix */
        n -= FERRY_VALIDATE_WIRE_PREFIX;
    }
    if (ferry_validate_json(v, p, n, reason, sizeof(reason))) {
        snprintf(why, why_size, "json schema: %s", reason);
        return 1;
    }
    if (v->strip) {
        *value = p;
        *len = n;
    }
    return 0;
}
