/*
 * validate.c - a route's record validation (see validate.h): compiling a JSON Schema (a Draft
 * 7 subset) from jansson into nodes, walking record text against them with the JSON cursor,
 * and the Confluent wire-format prefix.
 *
 * Keywords outside the subset that would constrain records ($ref, allOf, patternProperties,
 * ...) are refused when the schema is compiled rather than ignored, so that a schema never
 * passes records its author meant to reject; annotations (title, description, format, ...)
 * are accepted and ignored.
 */
#include "route/validate.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/json_scan.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POINTER_MAX 400 /* of the pointer kept while walking; the reason's room bounds it */
#define RULE_MAX 128    /* text of one broken rule */
#define ERR_MAX 256

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_STRING = 1 << 5,
    T_INTEGER = 1 << 6,
};

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "string",  "integer"};

struct prop {
    char *name;
    size_t len;
    struct node *schema;
};

/* One compiled schema. Limits are -1 (or NAN) when absent. */
struct node {
    int boolean; /* -1: an object schema; 0: false; 1: true */
    unsigned types;
    struct prop *props;
    size_t nprops;
    struct node *additional; /* NULL: any additional property is allowed */
    struct prop *required;   /* names only */
    size_t nrequired;
    json_t *enum_values; /* an array, or NULL */
    json_t *const_value;
    int64_t min_length, max_length, min_items, max_items, min_props, max_props;
    double minimum, maximum, exclusive_minimum, exclusive_maximum;
    regex_t pattern;
    char *pattern_text;  /* set when pattern was compiled */
    struct node *items;  /* one schema for every element */
    struct node **tuple; /* or one per position (tuple form); later elements are free */
    size_t ntuple;
    struct node *next_alloc; /* every node, for destroy */
};

struct ferry_validate {
    struct node *root; /* NULL without a schema */
    struct node *nodes;
    size_t nnodes;
    int64_t *schema_ids;
    size_t nschema_ids;
    int strip;
};

/* ---- compiling ---- */

struct compile {
    ferry_validate *v;
    char where[POINTER_MAX]; /* the keyword being read, as a pointer into the schema */
    char err[ERR_MAX];
};

static int fail_compile(struct compile *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail_compile(struct compile *c, const char *fmt, ...)
{
    char msg[ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->err, sizeof(c->err), "%s: %s", c->where[0] ? c->where : "(root)", msg);
    return -1;
}

static struct node *node_new(struct compile *c)
{
    struct node *n;

    if (c->v->nnodes >= FERRY_VALIDATE_SCHEMA_NODES_MAX) {
        fail_compile(c, "more than %d schemas", FERRY_VALIDATE_SCHEMA_NODES_MAX);
        return NULL;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        fail_compile(c, "out of memory");
        return NULL;
    }
    n->boolean = -1;
    n->min_length = n->max_length = n->min_items = n->max_items = -1;
    n->min_props = n->max_props = -1;
    n->minimum = n->maximum = n->exclusive_minimum = n->exclusive_maximum = NAN;
    n->next_alloc = c->v->nodes;
    c->v->nodes = n;
    c->v->nnodes++;
    return n;
}

static void node_free(struct node *n)
{
    for (size_t i = 0; i < n->nprops; i++)
        free(n->props[i].name);
    free(n->props);
    for (size_t i = 0; i < n->nrequired; i++)
        free(n->required[i].name);
    free(n->required);
    free(n->tuple);
    json_decref(n->enum_values);
    json_decref(n->const_value);
    if (n->pattern_text)
        regfree(&n->pattern);
    free(n->pattern_text);
    free(n);
}

static int compile_node(struct compile *c, const json_t *j, int depth, struct node **out);

/* Appends a segment to c->where for the duration of one keyword; returns the old length. */
static size_t where_push(struct compile *c, const char *seg)
{
    size_t len = strlen(c->where);
    snprintf(c->where + len, sizeof(c->where) - len, "/%s", seg);
    return len;
}

static int compile_sub(struct compile *c, const json_t *j, int depth, const char *seg,
                       struct node **out)
{
    size_t mark = where_push(c, seg);
    int result = compile_node(c, j, depth + 1, out);
    if (!result)
        c->where[mark] = '\0';
    return result;
}

static int get_count(struct compile *c, const json_t *j, int64_t *out)
{
    double d = json_is_number(j) ? json_number_value(j) : -1;

    if (d < 0 || d != floor(d) || d > 1e15)
        return fail_compile(c, "expected a non-negative integer");
    *out = (int64_t)d;
    return 0;
}

static int get_number(struct compile *c, const json_t *j, double *out)
{
    if (!json_is_number(j))
        return fail_compile(c, "expected a number");
    *out = json_number_value(j);
    return 0;
}

static int type_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(name, type_names[i]) == 0)
            return 1 << i;
    return 0;
}

static int compile_type(struct compile *c, struct node *n, const json_t *j)
{
    size_t i;
    const json_t *t;
    int bit;

    if (json_is_string(j)) {
        bit = type_bit(json_string_value(j));
        if (!bit)
            return fail_compile(c, "unknown type '%s'", json_string_value(j));
        n->types = (unsigned)bit;
        return 0;
    }
    if (!json_is_array(j) || json_array_size(j) == 0)
        return fail_compile(c, "expected a type name or a list of them");
    json_array_foreach(j, i, t)
    {
        bit = json_is_string(t) ? type_bit(json_string_value(t)) : 0;
        if (!bit)
            return fail_compile(c, "unknown type at index %zu", i);
        n->types |= (unsigned)bit;
    }
    return 0;
}

static int check_name(struct compile *c, const char *name, size_t len)
{
    if (len > FERRY_VALIDATE_NAME_MAX)
        return fail_compile(c, "property name longer than %d bytes", FERRY_VALIDATE_NAME_MAX);
    if (memchr(name, '\0', len))
        return fail_compile(c, "property name with a NUL byte");
    return 0;
}

static int compile_properties(struct compile *c, struct node *n, const json_t *j, int depth)
{
    const char *name;
    json_t *sub;
    size_t i = 0;

    if (!json_is_object(j))
        return fail_compile(c, "expected an object");
    n->props = calloc(json_object_size(j) + 1, sizeof(*n->props));
    if (!n->props)
        return fail_compile(c, "out of memory");
    json_object_foreach((json_t *)j, name, sub)
    {
        struct prop *p = &n->props[i];
        if (check_name(c, name, strlen(name)))
            return -1;
        p->name = strdup(name);
        n->nprops = ++i;
        if (!p->name)
            return fail_compile(c, "out of memory");
        p->len = strlen(name);
        if (compile_sub(c, sub, depth, name, &p->schema))
            return -1;
    }
    return 0;
}

static int compile_required(struct compile *c, struct node *n, const json_t *j)
{
    size_t i;
    const json_t *name;

    if (!json_is_array(j))
        return fail_compile(c, "expected a list of names");
    if (json_array_size(j) > FERRY_VALIDATE_REQUIRED_MAX)
        return fail_compile(c, "more than %d names", FERRY_VALIDATE_REQUIRED_MAX);
    n->required = calloc(json_array_size(j) + 1, sizeof(*n->required));
    if (!n->required)
        return fail_compile(c, "out of memory");
    json_array_foreach(j, i, name)
    {
        if (!json_is_string(name))
            return fail_compile(c, "expected a name at index %zu", i);
        if (check_name(c, json_string_value(name), json_string_length(name)))
            return -1;
        n->required[i].name = strdup(json_string_value(name));
        n->nrequired = i + 1;
        if (!n->required[i].name)
            return fail_compile(c, "out of memory");
        n->required[i].len = json_string_length(name);
    }
    return 0;
}

static int compile_tuple(struct compile *c, struct node *n, const json_t *j, int depth)
{
    char seg[24];
    const json_t *sub;
    size_t i;

    n->tuple = calloc(json_array_size(j) + 1, sizeof(*n->tuple));
    if (!n->tuple)
        return fail_compile(c, "out of memory");
    json_array_foreach(j, i, sub)
    {
        snprintf(seg, sizeof(seg), "%zu", i);
        if (compile_sub(c, sub, depth, seg, &n->tuple[i]))
            return -1;
        n->ntuple = i + 1;
    }
    return 0;
}

/* ECMA 262 escapes that POSIX ERE would read as a plain letter, silently changing the pattern. */
static int ecma_only_escape(const char *p)
{
    for (; *p; p++) {
        if (*p != '\\')
            continue;
        p++;
        if (!*p)
            return 0;
        if (strchr("dDpPuxcfnrtv0", *p))
            return *p;
    }
    return 0;
}

static int compile_pattern(struct compile *c, struct node *n, const json_t *j)
{
    char msg[ERR_MAX];
    const char *text = json_string_value(j);
    int bad, rc;

    if (!text)
        return fail_compile(c, "expected a string");
    bad = ecma_only_escape(text);
    if (bad)
        return fail_compile(c, "'\\%c' is not POSIX ERE (write a bracket expression like [0-9])",
                            bad);
    rc = regcomp(&n->pattern, text, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        regerror(rc, &n->pattern, msg, sizeof(msg));
        regfree(&n->pattern);
        return fail_compile(c, "not a POSIX extended regular expression: %s", msg);
    }
    n->pattern_text = strdup(text);
    if (!n->pattern_text) {
        regfree(&n->pattern);
        return fail_compile(c, "out of memory");
    }
    return 0;
}

static int compile_additional(struct compile *c, struct node *n, const json_t *j, int depth)
{
    if (json_is_true(j))
        return 0; /* the default */
    return compile_node(c, j, depth + 1, &n->additional);
}

/* Keywords of Draft 7 that constrain values but are outside the subset. */
static const char *const unsupported[] = {"$ref",
                                          "allOf",
                                          "anyOf",
                                          "oneOf",
                                          "not",
                                          "if",
                                          "then",
                                          "else",
                                          "patternProperties",
                                          "dependencies",
                                          "propertyNames",
                                          "contains",
                                          "additionalItems",
                                          "uniqueItems",
                                          "multipleOf",
                                          NULL};

/* Keywords that only annotate; they are accepted and change nothing. */
static const char *const annotations[] = {
    "$schema",         "$id",         "$comment", "title",    "description", "default",
    "examples",        "definitions", "format",   "readOnly", "writeOnly",   "contentMediaType",
    "contentEncoding", NULL};

static int in_list(const char *const *list, const char *word)
{
    for (; *list; list++)
        if (strcmp(*list, word) == 0)
            return 1;
    return 0;
}

static int compile_count(struct compile *c, const char *key, const json_t *j, struct node *n)
{
    static const struct {
        const char *key;
        size_t offset;
    } counts[] = {
        {"minLength", offsetof(struct node, min_length)},
        {"maxLength", offsetof(struct node, max_length)},
        {"minItems", offsetof(struct node, min_items)},
        {"maxItems", offsetof(struct node, max_items)},
        {"minProperties", offsetof(struct node, min_props)},
        {"maxProperties", offsetof(struct node, max_props)},
        {"minimum", offsetof(struct node, minimum)},
        {"maximum", offsetof(struct node, maximum)},
        {"exclusiveMinimum", offsetof(struct node, exclusive_minimum)},
        {"exclusiveMaximum", offsetof(struct node, exclusive_maximum)},
    };
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        if (strcmp(key, counts[i].key))
            continue;
        if (i < 6)
            return get_count(c, j, (int64_t *)((char *)n + counts[i].offset));
        return get_number(c, j, (double *)((char *)n + counts[i].offset));
    }
    return 1; /* not a count */
}

static int compile_keyword(struct compile *c, struct node *n, const char *key, const json_t *j,
                           int depth)
{
    int rc = compile_count(c, key, j, n);

    if (rc <= 0)
        return rc;
    if (strcmp(key, "type") == 0)
        return compile_type(c, n, j);
    if (strcmp(key, "properties") == 0)
        return compile_properties(c, n, j, depth);
    if (strcmp(key, "additionalProperties") == 0)
        return compile_additional(c, n, j, depth);
    if (strcmp(key, "required") == 0)
        return compile_required(c, n, j);
    if (strcmp(key, "items") == 0)
        return json_is_array(j) ? compile_tuple(c, n, j, depth)
                                : compile_node(c, j, depth + 1, &n->items);
    if (strcmp(key, "pattern") == 0)
        return compile_pattern(c, n, j);
    if (strcmp(key, "enum") == 0) {
        if (!json_is_array(j))
            return fail_compile(c, "expected a list");
        n->enum_values = json_incref((json_t *)j);
        return 0;
    }
    if (strcmp(key, "const") == 0) {
        n->const_value = json_incref((json_t *)j);
        return 0;
    }
    if (in_list(annotations, key))
        return 0;
    if (in_list(unsupported, key))
        return fail_compile(c, "keyword not supported by ferry's JSON Schema subset");
    return fail_compile(c, "unknown keyword");
}

static int compile_node(struct compile *c, const json_t *j, int depth, struct node **out)
{
    const char *key;
    json_t *val;
    struct node *n;

    if (depth > FERRY_VALIDATE_SCHEMA_DEPTH_MAX)
        return fail_compile(c, "schemas nested deeper than %d", FERRY_VALIDATE_SCHEMA_DEPTH_MAX);
    if (!json_is_object(j) && !json_is_boolean(j))
        return fail_compile(c, "expected a schema (an object, true or false)");
    n = node_new(c);
    if (!n)
        return -1;
    *out = n;
    if (json_is_boolean(j)) {
        n->boolean = json_is_true(j);
        return 0;
    }
    json_object_foreach((json_t *)j, key, val)
    {
        size_t mark = where_push(c, key);
        if (compile_keyword(c, n, key, val, depth))
            return -1;
        c->where[mark] = '\0';
    }
    return 0;
}

/* Reads the schema file whole, with its size capped. Returns the text (caller frees) or NULL. */
static char *read_schema(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n = 0;

    if (!f) {
        snprintf(errstr, errstr_size, "json_schema: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    text = malloc(FERRY_VALIDATE_SCHEMA_BYTES_MAX + 1);
    if (text)
        n = fread(text, 1, FERRY_VALIDATE_SCHEMA_BYTES_MAX + 1, f);
    if (!text || ferror(f) || n > FERRY_VALIDATE_SCHEMA_BYTES_MAX) {
        if (!text || ferror(f))
            snprintf(errstr, errstr_size, "json_schema: '%s': %s", path,
                     text ? "read error" : "out of memory");
        else
            snprintf(errstr, errstr_size, "json_schema: '%s': larger than %d bytes", path,
                     FERRY_VALIDATE_SCHEMA_BYTES_MAX);
        free(text);
        text = NULL;
    }
    fclose(f);
    *len = n;
    return text;
}

static int compile_schema(ferry_validate *v, const struct ferry_validate_options *o, char *errstr,
                          size_t errstr_size)
{
    const char *name = o->schema_path ? o->schema_path : "schema";
    struct compile c = {v, "", ""};
    json_error_t jerr;
    json_t *doc = NULL;
    char *text = NULL;
    size_t len = o->schema_len;
    int result = -1;

    if (o->schema_path) {
        text = read_schema(o->schema_path, &len, errstr, errstr_size);
        if (!text)
            return -1;
    }
    doc = json_loadb(text ? text : o->schema_text, len,
                     JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(errstr, errstr_size, "json_schema: '%s': line %d: %s", name, jerr.line, jerr.text);
        goto out;
    }
    result = compile_node(&c, doc, 0, &v->root);
    if (result)
        snprintf(errstr, errstr_size, "json_schema: '%s': %s", name, c.err);
out:
    json_decref(doc);
    free(text);
    return result;
}

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
        result = compile_schema(v, o, errstr, errstr_size);
out:
    if (result) {
        ferry_validate_destroy(v);
        return NULL;
    }
    return v;
}

void ferry_validate_destroy(ferry_validate *v)
{
    struct node *n, *next;

    if (!v)
        return;
    for (n = v->nodes; n; n = next) {
        next = n->next_alloc;
        node_free(n);
    }
    free(v->schema_ids);
    free(v);
}

/* ---- walking a record ---- */

/* One walk over one record: the cursor, where it is as a JSON Pointer, and room for strings. */
struct walk {
    struct ferry_json_cursor c;
    char ptr[POINTER_MAX];
    size_t plen;
    int cut; /* the pointer did not fit */
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

/* Appends a reference token, escaped as RFC 6901 says ('~' as ~0, '/' as ~1). Returns the
 * length to cut back to. */
static size_t ptr_push(struct walk *w, const char *seg, size_t len)
{
    size_t mark = w->plen;
    size_t need = 1;

    for (size_t i = 0; i < len; i++)
        need += (seg[i] == '~' || seg[i] == '/') ? 2 : 1;
    if (w->cut || w->plen + need >= sizeof(w->ptr)) {
        w->cut = 1;
        return mark;
    }
    w->ptr[w->plen++] = '/';
    for (size_t i = 0; i < len; i++) {
        if (seg[i] == '~' || seg[i] == '/') {
            w->ptr[w->plen++] = '~';
            w->ptr[w->plen++] = seg[i] == '~' ? '0' : '1';
        } else {
            w->ptr[w->plen++] = seg[i];
        }
    }
    w->ptr[w->plen] = '\0';
    return mark;
}

static void ptr_pop(struct walk *w, size_t mark)
{
    if (w->plen == mark && w->cut)
        return; /* this segment never went in: the pointer stays cut where it was */
    w->plen = mark;
    w->ptr[mark] = '\0';
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

    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (types & (1u << i))
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", len ? "," : "",
                                    type_names[i]);
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

/* Moves past the value at the cursor and sets its text. The record passed ferry_json_check, so
 * finding its end is all that is left to do (ferry_json_read_value would check it again). */
static int value_span(struct walk *w, const char **span, size_t *len)
{
    const char *start;

    if (ferry_json_peek(&w->c) == FERRY_JSON_INVALID)
        return -1;
    start = w->c.p;
    if (ferry_json_skip(&w->c))
        return -1;
    *span = start;
    *len = (size_t)(w->c.p - start);
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
    if (value_span(w, &span, &len))
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
    size_t mark = ptr_push(w, name, strlen(name));
    int rc;

    if (!sub && n->additional && n->additional->boolean == 0)
        rc = broke(w, "additionalProperties false");
    else if (sub || n->additional)
        rc = check_node(w, sub ? sub : n->additional);
    else
        rc = ferry_json_skip(&w->c) ? broke(w, "not JSON") : 0;
    if (!rc)
        ptr_pop(w, mark);
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
    if (ferry_json_enter(&w->c, '{'))
        return broke(w, "not JSON");
    while ((more = ferry_json_next_member(&w->c, &index, name, &truncated)) == 1) {
        mark_required(n, name, truncated, &seen);
        rc = check_member(w, n, truncated ? "..." : name, truncated);
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
    size_t index = 0, mark;
    int more, rc;

    if (n->types && !(n->types & T_ARRAY))
        return broke_type(w, n->types);
    if (ferry_json_enter(&w->c, '['))
        return broke(w, "not JSON");
    while ((more = ferry_json_next_element(&w->c, &index)) == 1) {
        snprintf(seg, sizeof(seg), "%zu", index - 1);
        mark = ptr_push(w, seg, strlen(seg));
        rc = check_element(w, n, index - 1);
        if (rc)
            return rc;
        ptr_pop(w, mark);
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
    snprintf(why, why_size, "%s%s: %s", w->plen ? w->ptr : "(root)", w->cut ? "..." : "", w->rule);
}

int ferry_validate_json(const ferry_validate *v, const char *p, size_t n, char *why,
                        size_t why_size)
{
    struct walk w;
    struct ferry_json_error err;
    int rc;

    if (!v->root)
        return 0;
    if (!p || ferry_json_check(p, n, &err)) {
        snprintf(why, why_size, "(root): not JSON (%s at byte %zu)", p ? err.why : "no value",
                 p ? err.offset : 0);
        return 1;
    }
    memset(&w, 0, sizeof(w));
    ferry_json_cursor_init(&w.c, p, n);
    ferry_buf_init(&w.text, n + 1); /* a decoded string is never longer than its text */
    rc = check_node(&w, v->root);
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
