/*
 * validate_int.h - what the two halves of record validation share: the compiled schema
 * (validate_schema.c makes it from a JSON Schema document) and the walk over record text that
 * checks it (validate.c).
 */
#ifndef FERRY_VALIDATE_INT_H
#define FERRY_VALIDATE_INT_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "route/validate.h"

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_STRING = 1 << 5,
    T_INTEGER = 1 << 6,
};

/* The names of the type bits, bit i named by entry i. */
#define VALIDATE_TYPES 7
extern const char *const validate_type_names[VALIDATE_TYPES];

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

/* A compiled schema document: its root and every node, for release. */
struct validate_schema {
    struct node *root; /* NULL when there is no schema */
    struct node *nodes;
    size_t nnodes;
};

/* Compiles the schema in the file path, or in text[0..len) when path is NULL, into s (zeroed by
 * the caller). Returns 0, or -1 with a message in errstr naming the file (or "schema") and the
 * place in the schema; s is then released already. Any thread. */
int validate_schema_compile(struct validate_schema *s, const char *path, const char *text,
                            size_t len, char *errstr, size_t errstr_size);

/* Frees every node of s. */
void validate_schema_release(struct validate_schema *s);

#endif
