/*
 * config_load.c - walks a YAML document against the declarative config tables.
 *
 * libyaml loads the whole file into a node tree with line marks (after a first pass over its
 * parse events has refused nesting deeper than any section); this file visits it section
 * by section, applies defaults, converts scalars by the field's kind and records the line of
 * every key it sees, so that any later check can point at file and line. Nothing here stops at
 * the first problem: errors are collected on the config.
 */
#include "core/config.h"
#include "core/config_int.h"
#include "core/config_schema.h"
#include "core/job.h"
#include "core/units.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define CONFIG_SCALAR_MAX (64 * 1024)
#define CONFIG_PATH_MAX 256
#define CONFIG_LIST_MAX 4096  /* entries of a list or a mapping */
#define CONFIG_FIELDS_MAX 128 /* fields of one section */
/* Values a file may hold, counting each time an alias repeats one: `*name` costs a few bytes
 * however much it stands for, so a 93 KB file of aliases to aliases took gigabytes before
 * (YAML's "billion laughs"). Files without aliases stay far below it. */
#define CONFIG_VALUES_MAX 1000000
#define CONFIG_DEPTH_MAX 32 /* deeper than any section */

struct loader {
    struct ferry_config *cfg;
    yaml_document_t *doc;
};

static void load_section(struct loader *l, const struct ferry_cfg_section *sec, void *obj,
                         yaml_node_t *node, const char *path);

static int node_line(const yaml_node_t *node)
{
    return (int)node->start_mark.line + 1;
}

static int is_null(const yaml_node_t *node)
{
    const char *v = (const char *)node->data.scalar.value;
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

/* Nonzero when a scalar holds a NUL byte (written "\0" in double quotes): read as a C string it
 * would end there, so "r\0 b" would load as "r" in silence. */
static int has_nul(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE &&
           strlen((const char *)node->data.scalar.value) != node->data.scalar.length;
}

/* Substitutes ${env:...} and ${file:...} in the scalar node into b; returns 0, or -1 after
 * reporting why. */
static int expand_scalar(struct loader *l, const yaml_node_t *node, struct ferry_buf *b,
                         const char *path)
{
    char err[256] = "";

    if (has_nul(node)) {
        ferry_config_error(l->cfg, path, "holds a NUL byte");
        return -1;
    }
    if (ferry_config_expand((const char *)node->data.scalar.value, b, err, sizeof(err))) {
        ferry_config_error(l->cfg, path, "%s", err);
        return -1;
    }
    /* a ${file:...} may bring one in */
    if (b->data && strlen(b->data) != b->len) {
        ferry_config_error(l->cfg, path, "holds a NUL byte once ${...} is substituted");
        return -1;
    }
    return 0;
}

/* Returns the scalar's text with ${env:...} and ${file:...} substituted, as a new string, or
 * NULL after reporting why. */
static char *scalar_text(struct loader *l, yaml_node_t *node, const char *path)
{
    struct ferry_buf b;
    char *text;

    if (node->type != YAML_SCALAR_NODE) {
        ferry_config_error(l->cfg, path, "expected a single value, got a %s",
                           node->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    ferry_buf_init(&b, CONFIG_SCALAR_MAX);
    if (expand_scalar(l, node, &b, path)) {
        ferry_buf_release(&b);
        return NULL;
    }
    text = b.data ? ferry_buf_steal(&b) : strdup("");
    if (!text)
        ferry_config_error(l->cfg, path, "out of memory for its value");
    return text;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

void ferry_config_format_bounds(const struct ferry_cfg_field *f, char *lo, char *hi, size_t size)
{
    if (f->kind == FERRY_CFG_DURATION) {
        ferry_duration_format(f->min, lo, size);
        ferry_duration_format(f->max, hi, size);
    } else if (f->kind == FERRY_CFG_SIZE) {
        ferry_size_format(f->min, lo, size);
        ferry_size_format(f->max, hi, size);
    } else {
        snprintf(lo, size, "%lld", (long long)f->min);
        snprintf(hi, size, "%lld", (long long)f->max);
    }
}

static void report_range(struct loader *l, const struct ferry_cfg_field *f, const char *path,
                         const char *text)
{
    char lo[32], hi[32];
    ferry_config_format_bounds(f, lo, hi, sizeof(lo));
    ferry_config_error(l->cfg, path, "expected a value from %s to %s, got '%s'", lo, hi, text);
}

static void set_enum(struct loader *l, const struct ferry_cfg_field *f, void *dst, const char *text,
                     const char *path)
{
    struct ferry_buf names;
    for (int i = 0; f->choices[i]; i++) {
        if (strcmp(text, f->choices[i]) == 0) {
            *(int *)dst = i;
            return;
        }
    }
    ferry_buf_init(&names, 1024);
    for (int i = 0; f->choices[i]; i++)
        ferry_buf_addf(&names, "%s%s", i ? ", " : "", f->choices[i]);
    ferry_config_error(l->cfg, path, "expected one of %s, got '%s'", names.data, text);
    ferry_buf_release(&names);
}

/* Converts text by a numeric kind; returns 0 when stored. */
static int set_number(struct loader *l, const struct ferry_cfg_field *f, void *dst,
                      const char *text, const char *path)
{
    int64_t v;
    static const char *const expected[] = {
        [FERRY_CFG_INT] = "an integer",
        [FERRY_CFG_DURATION] = "a duration like 250ms, 10s or 2m",
        [FERRY_CFG_SIZE] = "a size like 512KiB or 1MiB",
    };
    int rc = f->kind == FERRY_CFG_INT        ? ferry_int_parse(text, &v)
             : f->kind == FERRY_CFG_DURATION ? ferry_duration_parse(text, &v)
                                             : ferry_size_parse(text, &v);
    if (rc) {
        ferry_config_error(l->cfg, path, "expected %s, got '%s'", expected[f->kind], text);
        return -1;
    }
    if (v < f->min || v > f->max) {
        report_range(l, f, path, text);
        return -1;
    }
    *(int64_t *)dst = v;
    return 0;
}

static void set_double(struct loader *l, const struct ferry_cfg_field *f, void *dst,
                       const char *text, const char *path)
{
    double v;
    if (ferry_double_parse(text, &v)) {
        ferry_config_error(l->cfg, path, "expected a number, got '%s'", text);
        return;
    }
    if (v < (double)f->min || v > (double)f->max) {
        report_range(l, f, path, text);
        return;
    }
    *(double *)dst = v;
}

/* Stores one scalar field from text (already expanded). Takes ownership of text. */
static void set_scalar(struct loader *l, const struct ferry_cfg_field *f, void *dst, char *text,
                       const char *path)
{
    switch (f->kind) {
    case FERRY_CFG_STRING:
        free(*(char **)dst);
        *(char **)dst = text;
        return;
    case FERRY_CFG_INT:
    case FERRY_CFG_DURATION:
    case FERRY_CFG_SIZE:
        set_number(l, f, dst, text, path);
        break;
    case FERRY_CFG_DOUBLE:
        set_double(l, f, dst, text, path);
        break;
    case FERRY_CFG_BOOL:
        if (parse_bool(text, (int *)dst))
            ferry_config_error(l->cfg, path, "expected true or false, got '%s'", text);
        break;
    case FERRY_CFG_ENUM:
        set_enum(l, f, dst, text, path);
        break;
    default:
        break;
    }
    free(text);
}

static void strings_append(struct loader *l, struct ferry_cfg_strings *s, char *item,
                           const char *path)
{
    char **p = realloc(s->items, (s->count + 1) * sizeof(*p));
    if (!p) {
        ferry_config_error(l->cfg, path, "out of memory for the list");
        free(item);
        return;
    }
    s->items = p;
    s->items[s->count++] = item;
}

/* Nonzero, after reporting it, when item is empty (or YAML's null, `- ~`): no list of strings
 * has a use for one, as a topic, status, header name, recipient or schema id, and "" would
 * otherwise load as an item. */
static int refuse_empty(struct loader *l, const yaml_node_t *item, const char *text,
                        const char *path)
{
    if (*text && !is_null(item))
        return 0;
    ferry_config_error(l->cfg, path, "empty item%s",
                       item->data.scalar.length && !is_null(item) ? " once ${...} is substituted"
                                                                  : "");
    return 1;
}

/* Loads one item into dst; returns 0, or -1 after reporting why it could not be. */
static int load_string_item(struct loader *l, struct ferry_cfg_strings *dst, yaml_node_t *item,
                            const char *path)
{
    char *text = scalar_text(l, item, path);

    if (!text)
        return -1;
    if (refuse_empty(l, item, text, path)) {
        free(text);
        return -1;
    }
    strings_append(l, dst, text, path);
    return 0;
}

/* A list with an item that could not be loaded is refused whole, once each such item was
 * reported: it loads as if left out, as a bad scalar leaves its default, so that no later
 * check reports on it again ("expected at least one topic") or names the items after the bad
 * one by places in the list that are no longer theirs. */
static void refuse_strings(struct loader *l, struct ferry_cfg_strings *dst, const char *path)
{
    for (size_t i = 0; i < dst->count; i++)
        free(dst->items[i]);
    free(dst->items);
    dst->items = NULL;
    dst->count = 0;
    ferry_config_note_line(l->cfg, path, ferry_config_line(l->cfg, path), 0);
}

static void load_strings(struct loader *l, struct ferry_cfg_strings *dst, yaml_node_t *node,
                         const char *path)
{
    char ipath[CONFIG_PATH_MAX];
    int refused = 0;

    if (node->type == YAML_SCALAR_NODE) {
        if (load_string_item(l, dst, node, path))
            refuse_strings(l, dst, path);
        return;
    }
    if (node->type != YAML_SEQUENCE_NODE) {
        ferry_config_error(l->cfg, path, "expected a list of values, got a mapping");
        refuse_strings(l, dst, path);
        return;
    }
    if (node->data.sequence.items.top - node->data.sequence.items.start > CONFIG_LIST_MAX) {
        ferry_config_error(l->cfg, path, "at most %d entries are allowed", CONFIG_LIST_MAX);
        refuse_strings(l, dst, path);
        return;
    }
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(l->doc, *it);
        snprintf(ipath, sizeof(ipath), "%s[%d]", path, (int)(it - node->data.sequence.items.start));
        ferry_config_note_line(l->cfg, ipath, node_line(item), 1);
        if (load_string_item(l, dst, item, ipath))
            refused = 1;
    }
    if (refused)
        refuse_strings(l, dst, path);
}

/* Nonzero when key is already among dst's names: YAML wants a mapping's keys unique, and a
 * second `client.id` or header of the same name would otherwise win, or be sent twice, in
 * silence. */
static int map_has(const struct ferry_cfg_map *dst, const char *key)
{
    for (size_t i = 0; i < dst->count; i++)
        if (strcmp(dst->items[i].key, key) == 0)
            return 1;
    return 0;
}

/* Nonzero when k may be added to dst; otherwise reports why at k's line. */
static int map_key_ok(struct loader *l, const struct ferry_cfg_map *dst, const yaml_node_t *k,
                      const char *kpath)
{
    const char *why = NULL;

    if (has_nul(k))
        why = "the key holds a NUL byte";
    else if (map_has(dst, (const char *)k->data.scalar.value))
        why = "duplicate key";
    if (why)
        ferry_config_error_line(l->cfg, node_line(k), "config: %s: %s", kpath, why);
    return !why;
}

static void load_map(struct loader *l, struct ferry_cfg_map *dst, yaml_node_t *node,
                     const char *path)
{
    char kpath[CONFIG_PATH_MAX];

    if (node->type != YAML_MAPPING_NODE) {
        ferry_config_error(l->cfg, path, "expected a mapping of names to values");
        return;
    }
    if (node->data.mapping.pairs.top - node->data.mapping.pairs.start > CONFIG_LIST_MAX) {
        ferry_config_error(l->cfg, path, "at most %d entries are allowed", CONFIG_LIST_MAX);
        return;
    }
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        struct ferry_cfg_kv *items;
        char *key, *value;

        if (k->type != YAML_SCALAR_NODE) {
            ferry_config_error(l->cfg, path, "expected names as keys");
            continue;
        }
        snprintf(kpath, sizeof(kpath), "%s.%s", path, (const char *)k->data.scalar.value);
        if (!map_key_ok(l, dst, k, kpath))
            continue;
        ferry_config_note_line(l->cfg, kpath, node_line(k), 1);
        value = scalar_text(l, v, kpath);
        if (!value)
            continue;
        key = strdup((const char *)k->data.scalar.value);
        items = key ? realloc(dst->items, (dst->count + 1) * sizeof(*items)) : NULL;
        if (!items) {
            ferry_config_error(l->cfg, kpath, "out of memory for the mapping");
            free(key);
            free(value);
            continue;
        }
        dst->items = items;
        dst->items[dst->count].key = key;
        dst->items[dst->count++].value = value;
    }
}

static void load_list(struct loader *l, const struct ferry_cfg_field *f, struct ferry_cfg_list *dst,
                      yaml_node_t *node, const char *path)
{
    char ipath[CONFIG_PATH_MAX];
    size_t n;

    if (node->type != YAML_SEQUENCE_NODE) {
        ferry_config_error(l->cfg, path, "expected a list");
        return;
    }
    n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n > CONFIG_LIST_MAX) {
        ferry_config_error(l->cfg, path, "at most %d entries are allowed", CONFIG_LIST_MAX);
        return;
    }
    dst->items = calloc(n ? n : 1, f->sub->size);
    if (!dst->items) {
        ferry_config_error(l->cfg, path, "out of memory for %zu entries", n);
        return;
    }
    dst->count = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(l->doc, node->data.sequence.items.start[i]);
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        ferry_config_note_line(l->cfg, ipath, node_line(item), 1);
        load_section(l, f->sub, (char *)dst->items + i * f->sub->size, item, ipath);
    }
}

static void load_field(struct loader *l, const struct ferry_cfg_field *f, void *obj,
                       yaml_node_t *node, const char *path)
{
    void *dst = (char *)obj + f->offset;
    char *text;

    if (f->kind == FERRY_CFG_RESERVED) {
        ferry_config_error(l->cfg, path, "is not supported by this version of ferry yet");
        return;
    }
    if (is_null(node)) {
        /* "key:" with no value means the key left out, which a required key cannot be */
        if (f->required)
            ferry_config_error(l->cfg, path, "required, got no value");
        return;
    }
    if (f->kind == FERRY_CFG_STRINGS)
        load_strings(l, dst, node, path);
    else if (f->kind == FERRY_CFG_MAP)
        load_map(l, dst, node, path);
    else if (f->kind == FERRY_CFG_LIST)
        load_list(l, f, dst, node, path);
    else if (f->kind == FERRY_CFG_SECTION)
        load_section(l, f->sub, dst, node, path);
    else if ((text = scalar_text(l, node, path)) != NULL)
        set_scalar(l, f, dst, text, path);
}

/* Applies the default of every field of sec to obj (defaults are written as YAML scalars). */
void ferry_config_apply_defaults(struct ferry_config *cfg, const struct ferry_cfg_section *sec,
                                 void *obj)
{
    struct loader l = {cfg, NULL};
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++) {
        void *dst = (char *)obj + f->offset;
        char *text;
        if (f->kind == FERRY_CFG_SECTION) {
            ferry_config_apply_defaults(cfg, f->sub, dst);
        } else if (f->def) {
            text = strdup(f->def);
            if (text)
                set_scalar(&l, f, dst, text, f->name);
            else
                ferry_config_error(cfg, f->name, "out of memory for its default");
        }
    }
}

/* Finds name among the fields of every part; returns the field and sets *part to its index. */
static const struct ferry_cfg_field *find_field(const struct ferry_cfg_part *parts, size_t nparts,
                                                const char *name, size_t *part)
{
    for (size_t i = 0; i < nparts; i++) {
        for (const struct ferry_cfg_field *f = parts[i].sec->fields; f->name; f++) {
            if (strcmp(f->name, name) == 0) {
                *part = i;
                return f;
            }
        }
    }
    return NULL;
}

static void report_unknown(struct loader *l, const struct ferry_cfg_part *parts, size_t nparts,
                           const char *name, const char *path)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < nparts; i++) {
        for (const struct ferry_cfg_field *f = parts[i].sec->fields; f->name; f++) {
            size_t d = ferry_config_edit_distance(name, f->name);
            if (d < best_d) {
                best_d = d;
                best = f->name;
            }
        }
    }
    if (best && best_d <= 2 + strlen(name) / 4)
        ferry_config_error(l->cfg, path, "unknown key, did you mean '%s'?", best);
    else
        ferry_config_error(l->cfg, path, "unknown key");
}

static void check_required(struct loader *l, const struct ferry_cfg_section *sec,
                           const unsigned char *seen, const char *path)
{
    char fpath[CONFIG_PATH_MAX];
    int i = 0;
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++, i++) {
        if (f->required && !seen[i]) {
            snprintf(fpath, sizeof(fpath), "%s%s%s", path, *path ? "." : "", f->name);
            ferry_config_error(l->cfg, fpath, "missing, this key is required");
        }
    }
}

/* Loads one key of a mapping into whichever part declares it. */
static void load_pair(struct loader *l, const struct ferry_cfg_part *parts, size_t nparts,
                      unsigned char (*seen)[CONFIG_FIELDS_MAX], yaml_node_pair_t *p,
                      const char *path)
{
    yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
    const char *name = k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?";
    char fpath[CONFIG_PATH_MAX];
    const struct ferry_cfg_field *f;
    size_t part = 0;

    snprintf(fpath, sizeof(fpath), "%s%s%s", path, *path ? "." : "", name);
    ferry_config_note_line(l->cfg, fpath, node_line(k), !is_null(v));
    if (has_nul(k)) {
        ferry_config_error(l->cfg, fpath, "the key holds a NUL byte");
        return;
    }
    f = find_field(parts, nparts, name, &part);
    if (!f) {
        report_unknown(l, parts, nparts, name, fpath);
        return;
    }
    if (seen[part][f - parts[part].sec->fields]++) {
        ferry_config_error(l->cfg, fpath, "duplicate key");
        return;
    }
    load_field(l, f, parts[part].obj, v, fpath);
}

static const char *node_kind(const yaml_node_t *node)
{
    if (node->type == YAML_MAPPING_NODE)
        return "mapping";
    return node->type == YAML_SEQUENCE_NODE ? "list" : "single value";
}

/* The top level has no key path to name, so its message names the line instead. */
static void report_not_mapping(struct loader *l, const yaml_node_t *node, const char *path)
{
    if (*path)
        ferry_config_error(l->cfg, path, "expected a mapping of keys to values");
    else
        ferry_config_error_line(l->cfg, node_line(node),
                                "config: expected a mapping of keys to values at the top of the "
                                "file, got a %s",
                                node_kind(node));
}

/* Fills the objects of parts from one YAML mapping whose keys any of the parts may declare
 * (a nested section is one part; the top level is the core's part and each job's). */
static void load_parts(struct loader *l, const struct ferry_cfg_part *parts, size_t nparts,
                       yaml_node_t *node, const char *path)
{
    unsigned char seen[FERRY_CFG_PARTS_MAX][CONFIG_FIELDS_MAX] = {{0}};

    for (size_t i = 0; i < nparts; i++)
        ferry_config_apply_defaults(l->cfg, parts[i].sec, parts[i].obj);
    if (node && !is_null(node)) {
        if (node->type != YAML_MAPPING_NODE) {
            report_not_mapping(l, node, path);
            return;
        }
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++)
            load_pair(l, parts, nparts, seen, p, path);
    }
    for (size_t i = 0; i < nparts; i++) {
        check_required(l, parts[i].sec, seen[i], path);
        if (parts[i].sec->check)
            parts[i].sec->check(l->cfg, parts[i].obj, path);
    }
}

static void load_section(struct loader *l, const struct ferry_cfg_section *sec, void *obj,
                         yaml_node_t *node, const char *path)
{
    struct ferry_cfg_part part = {sec, obj};
    load_parts(l, &part, 1, node, path);
}

static void report_yaml_error(struct ferry_config *cfg, const yaml_parser_t *parser)
{
    const yaml_mark_t *m = parser->problem_mark.line || !parser->context_mark.line
                               ? &parser->problem_mark
                               : &parser->context_mark;
    const char *context = parser->context ? parser->context : "";
    char where[64] = "";

    /* An unclosed quote or bracket is found only at the end of the file, far from the mistake:
     * the context mark says where what was left open began. */
    if (*context && parser->context_mark.line != m->line)
        snprintf(where, sizeof(where), " %s line %d",
                 strncmp(context, "while ", 6) == 0 ? "that started at" : "at",
                 (int)parser->context_mark.line + 1);
    ferry_config_error_line(cfg, (int)m->line + 1, "config: invalid YAML: %s%s%s%s",
                            parser->problem ? parser->problem : "unreadable input",
                            *context ? " " : "", context, where);
}

/* Fills cfg from the document's top level, then runs the checks that need the whole file. */
static void load_root(struct loader *l, yaml_node_t *root)
{
    struct ferry_cfg_part parts[FERRY_CFG_PARTS_MAX];
    size_t nparts = ferry_config_parts(l->cfg, parts);

    load_parts(l, parts, nparts, root, "");
    if (!root)
        return;
    for (size_t i = 1; i < nparts; i++)
        if (ferry_jobs[i - 1]->check)
            ferry_jobs[i - 1]->check(l->cfg, parts[i].obj);
}

/* ferry reads the first document only, so a second one ("---") would be ignored in silence:
 * it is an error at the line where it starts. */
static void check_one_document(struct ferry_config *cfg, yaml_parser_t *parser)
{
    yaml_document_t next;

    if (!yaml_parser_load(parser, &next)) {
        report_yaml_error(cfg, parser);
        return;
    }
    if (yaml_document_get_root_node(&next))
        ferry_config_error_line(cfg, (int)next.start_mark.line + 1,
                                "config: a second YAML document starts here: write one YAML "
                                "document per file");
    yaml_document_delete(&next);
}

/* Counts the values under node as the loader would visit them, an alias's each time it is
 * used; returns -1 as soon as there are more than CONFIG_VALUES_MAX. Nodes deeper than any
 * config section are not counted: the loader never reaches them. */
static int count_values(yaml_document_t *doc, yaml_node_t *node, int depth, size_t *n)
{
    if (!node || ++*n > CONFIG_VALUES_MAX)
        return node ? -1 : 0;
    if (depth == CONFIG_DEPTH_MAX)
        return 0;
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++)
            if (count_values(doc, yaml_document_get_node(doc, *it), depth + 1, n))
                return -1;
    } else if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++)
            if (count_values(doc, yaml_document_get_node(doc, p->value), depth + 1, n))
                return -1;
    }
    return 0;
}

/* Nonzero when event opens a list or mapping (1) or closes one (-1). */
static int nesting_step(const yaml_event_t *event)
{
    if (event->type == YAML_SEQUENCE_START_EVENT || event->type == YAML_MAPPING_START_EVENT)
        return 1;
    if (event->type == YAML_SEQUENCE_END_EVENT || event->type == YAML_MAPPING_END_EVENT)
        return -1;
    return 0;
}

/* Refuses text whose lists and mappings nest deeper than CONFIG_DEPTH_MAX, before libyaml
 * loads it: loading "[[[[..." takes time quadratic in the depth (minutes for 100,000 levels,
 * with ferry's stop signals blocked), while these events stop at the first level too deep.
 * Returns 0, or -1 after reporting; a syntax error is left for the loader to report. */
static int check_depth(struct ferry_config *cfg, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t event;
    int depth = 0, result = 0, end = 0;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!end && !result && yaml_parser_parse(&parser, &event)) {
        depth += nesting_step(&event);
        end = event.type == YAML_STREAM_END_EVENT;
        if (depth > CONFIG_DEPTH_MAX) {
            ferry_config_error_line(cfg, (int)event.start_mark.line + 1,
                                    "config: lists and mappings nested more than %d levels deep, "
                                    "deeper than any setting",
                                    CONFIG_DEPTH_MAX);
            result = -1;
        }
        yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    return result;
}

/* Parses the YAML text and fills cfg against the core's root table and the jobs' tables. */
void ferry_config_parse(struct ferry_config *cfg, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    struct loader l = {cfg, &doc};
    size_t values = 0;

    if (check_depth(cfg, text, len)) {
        l.doc = NULL;
        load_root(&l, NULL);
        return;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        report_yaml_error(cfg, &parser);
        l.doc = NULL;
        load_root(&l, NULL);
        yaml_parser_delete(&parser);
        return;
    }
    if (count_values(&doc, yaml_document_get_root_node(&doc), 0, &values)) {
        ferry_config_error_line(cfg, 1,
                                "config: the file holds more than %d values, counting those an "
                                "alias (*name) repeats each time: write them out",
                                CONFIG_VALUES_MAX);
        l.doc = NULL;
        load_root(&l, NULL);
    } else
        load_root(&l, yaml_document_get_root_node(&doc));
    yaml_document_delete(&doc);
    check_one_document(cfg, &parser);
    yaml_parser_delete(&parser);
}
