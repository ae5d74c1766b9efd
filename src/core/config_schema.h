/*
 * config_schema.h - the declarative tables that describe ferry's configuration.
 *
 * Each section of the YAML file is one table of fields (name, type, where it is stored,
 * default, bounds, help), in the manner of fluent-bit's config_map. The loader
 * (config_load.c) walks the YAML against these tables, `ferry check` reports from them and
 * `ferry config-docs` renders docs/config.md from them, so the three never disagree.
 */
#ifndef FERRY_CONFIG_SCHEMA_H
#define FERRY_CONFIG_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

struct ferry_config;

enum ferry_cfg_kind {
    FERRY_CFG_STRING,   /* char *, NULL when unset */
    FERRY_CFG_INT,      /* int64_t within [min, max] */
    FERRY_CFG_DOUBLE,   /* double within [min, max] */
    FERRY_CFG_BOOL,     /* int, 0 or 1 */
    FERRY_CFG_DURATION, /* int64_t milliseconds within [min, max] */
    FERRY_CFG_SIZE,     /* int64_t bytes within [min, max] */
    FERRY_CFG_ENUM,     /* int, index into choices */
    FERRY_CFG_STRINGS,  /* struct ferry_cfg_strings; a lone scalar counts as a list of one;
                           no item is empty (every list names things: topics, statuses...) */
    FERRY_CFG_MAP,      /* struct ferry_cfg_map of string to string */
    FERRY_CFG_SECTION,  /* a nested struct described by sub */
    FERRY_CFG_LIST,     /* struct ferry_cfg_list of structs described by sub */
    FERRY_CFG_RESERVED, /* a key kept for a later version: an error if present */
};

struct ferry_cfg_section;

struct ferry_cfg_field {
    const char *name;
    enum ferry_cfg_kind kind;
    size_t offset;                       /* of the value inside the section's struct */
    const char *def;                     /* default written as in YAML; NULL for none */
    int64_t min, max;                    /* bounds for INT, DURATION, SIZE, DOUBLE */
    const char *const *choices;          /* ENUM: NULL-terminated */
    const struct ferry_cfg_section *sub; /* SECTION and LIST */
    int required;
    const char *help;
};

/* A validation hook run after a section was loaded: it reports problems with
 * ferry_config_error() under the section's path and returns nothing. */
typedef void (*ferry_cfg_check_fn)(struct ferry_config *cfg, void *obj, const char *path);

struct ferry_cfg_section {
    const char *name;
    const struct ferry_cfg_field *fields; /* ends with a field whose name is NULL */
    size_t size;                          /* sizeof the struct, for LIST elements */
    ferry_cfg_check_fn check;
    const char *help;
};

/* The top-level table. */
extern const struct ferry_cfg_section ferry_config_root;

/* Shorthands for table entries. T is the struct type holding the field. */
#define FERRY_CFG_END                                                                              \
    {                                                                                              \
        NULL, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL                                                \
    }

#endif
