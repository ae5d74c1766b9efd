/*
 * validate_schema.c - compiling a JSON Schema document (the Draft 7 subset of docs/routes.md,
 * "Validation") into the nodes validate.c walks records against. The schema is small and read
 * once, at config load, so it is parsed with jansson; every keyword is checked here, so that a
 * bad schema is a config error that names the place in it, and the walk need not check again.
 *
 * Keywords outside the subset that would constrain records ($ref, allOf, patternProperties,
 * ...) are refused rather than ignored, so that a schema never passes records its author meant
 * to reject; annotations (title, description, format, ...) are accepted and ignored.
 */
#include "route/validate_int.h"
#include "core/pattern.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHERE_MAX 400 /* a place in the schema, as a pointer */
#define ERR_MAX 256

const char *const validate_type_names[VALIDATE_TYPES] = {"null",   "boolean", "object", "array",
                                                         "number", "string",  "integer"};

struct compile {
    struct validate_schema *s;
    char where[WHERE_MAX]; /* the keyword being read, as a pointer into the schema */
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

    if (c->s->nnodes >= FERRY_VALIDATE_SCHEMA_NODES_MAX) {
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
    n->next_alloc = c->s->nodes;
    c->s->nodes = n;
    c->s->nnodes++;
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
    for (size_t i = 0; i < VALIDATE_TYPES; i++)
        if (strcmp(name, validate_type_names[i]) == 0)
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
    if (ferry_pattern_stacked_quantifier(text))
        return fail_compile(c, "a quantifier follows a quantifier (undefined in POSIX ERE)");
    if (ferry_pattern_backreference(text))
        return fail_compile(c, "%s", FERRY_PATTERN_BACKREFERENCE_WHY);
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

/* The keywords that take a count (a non-negative integer) or a number, and where they go. */
static const struct {
    const char *key;
    int real; /* a number (double), else a count (int64_t) */
    size_t offset;
} limits[] = {
    {"minLength", 0, offsetof(struct node, min_length)},
    {"maxLength", 0, offsetof(struct node, max_length)},
    {"minItems", 0, offsetof(struct node, min_items)},
    {"maxItems", 0, offsetof(struct node, max_items)},
    {"minProperties", 0, offsetof(struct node, min_props)},
    {"maxProperties", 0, offsetof(struct node, max_props)},
    {"minimum", 1, offsetof(struct node, minimum)},
    {"maximum", 1, offsetof(struct node, maximum)},
    {"exclusiveMinimum", 1, offsetof(struct node, exclusive_minimum)},
    {"exclusiveMaximum", 1, offsetof(struct node, exclusive_maximum)},
};

/* Returns 0 or -1 for a limit keyword, 1 for any other. */
static int compile_limit(struct compile *c, const char *key, const json_t *j, struct node *n)
{
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        char *field = (char *)n + limits[i].offset;
        if (strcmp(key, limits[i].key))
            continue;
        return limits[i].real ? get_number(c, j, (double *)(void *)field)
                              : get_count(c, j, (int64_t *)(void *)field);
    }
    return 1;
}

static int compile_keyword(struct compile *c, struct node *n, const char *key, const json_t *j,
                           int depth)
{
    int rc = compile_limit(c, key, j, n);

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

int validate_schema_compile(struct validate_schema *s, const char *path, const char *text,
                            size_t len, char *errstr, size_t errstr_size)
{
    const char *name = path ? path : "schema";
    struct compile c = {s, "", ""};
    json_error_t jerr;
    json_t *doc = NULL;
    char *file_text = NULL;
    int result = -1;

    if (path) {
        file_text = read_schema(path, &len, errstr, errstr_size);
        if (!file_text)
            return -1;
        text = file_text;
    }
    doc = json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES,
                     &jerr);
    if (!doc) {
        snprintf(errstr, errstr_size, "json_schema: '%s': line %d: %s", name, jerr.line, jerr.text);
        goto out;
    }
    result = compile_node(&c, doc, 0, &s->root);
    if (result)
        snprintf(errstr, errstr_size, "json_schema: '%s': %s", name, c.err);
out:
    json_decref(doc);
    free(file_text);
    if (result)
        validate_schema_release(s);
    return result;
}

void validate_schema_release(struct validate_schema *s)
{
    struct node *n, *next;

    for (n = s->nodes; n; n = next) {
        next = n->next_alloc;
        node_free(n);
    }
    memset(s, 0, sizeof(*s));
}
