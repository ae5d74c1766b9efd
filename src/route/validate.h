/*
 * validate.h - checking a record before a route sends it: an optional Confluent wire-format
 * prefix (magic byte 0 and a 4-byte big-endian schema id from an allowed list), stripped on
 * request, and an optional JSON Schema (a Draft 7 subset, documented in docs/routes.md,
 * "Validation").
 *
 * A schema is small and read once, so it is parsed with jansson and compiled into a tree of
 * nodes at config load; a bad schema is a config error. Records are many, so they are not
 * parsed into trees: the validator walks each record's text with the JSON cursor of
 * core/json_scan.h, checking each value against its node as it goes, and stops at the first
 * failure. Only enum and const build a small jansson value, for the value they apply to.
 *
 * A record fails with a reason: the JSON Pointer (RFC 6901) of the first value that broke a
 * rule, and the rule ("/user/email: minLength 3"); "(root)" stands for the whole value.
 */
#ifndef FERRY_VALIDATE_H
#define FERRY_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ferry_validate ferry_validate;

/* Largest schema file accepted. */
#define FERRY_VALIDATE_SCHEMA_BYTES_MAX (1024 * 1024)
/* Most schemas (objects and booleans) one schema file may hold, subschemas included. */
#define FERRY_VALIDATE_SCHEMA_NODES_MAX 10000
/* Deepest nesting of subschemas: {"properties": {"a": {...}}} is depth 2. Records nest at most
 * FERRY_JSON_MAX_DEPTH (core/json.h) deep: ferry_json_check rejects deeper ones. */
#define FERRY_VALIDATE_SCHEMA_DEPTH_MAX 32
/* Most names in one `required` list. */
#define FERRY_VALIDATE_REQUIRED_MAX 64
/* Longest property name a schema may use (longer member names of a record never match one). */
#define FERRY_VALIDATE_NAME_MAX 64
/* Most allowed Confluent schema ids. */
#define FERRY_VALIDATE_SCHEMA_IDS_MAX 256
/* Room for a failure's reason. A pointer longer than about 400 bytes loses its outer part and
 * starts with "...". */
#define FERRY_VALIDATE_REASON_MAX 512

/* Bytes of the Confluent wire-format prefix: magic byte 0, then the schema id. */
#define FERRY_VALIDATE_WIRE_PREFIX 5

struct ferry_validate_options {
    const char *schema_path; /* a JSON Schema file, or NULL */
    const char *schema_text; /* or the schema itself (schema_len bytes), for tests */
    size_t schema_len;
    const int64_t *schema_ids; /* allowed Confluent schema ids; none: no prefix expected */
    size_t nschema_ids;
    int strip; /* remove the prefix before sending (needs schema_ids) */
};

/* Compiles the options into a validator. Returns it, or NULL with a message in errstr that names
 * the schema file (or "schema") and where in the schema the problem is. The caller frees it with
 * ferry_validate_destroy(). Any thread. */
ferry_validate *ferry_validate_new(const struct ferry_validate_options *o, char *errstr,
                                   size_t errstr_size);

/* Frees v. Accepts NULL. */
void ferry_validate_destroy(ferry_validate *v);

/* Checks one record value. On success returns 0 and, when the prefix is stripped, moves *value
 * and *len past it (the bytes themselves are not touched). On failure returns 1 with the reason
 * in why ("json schema: /a/0: type string", "wire format: schema id 9 not allowed"). A
 * tombstone (*value NULL) fails when there is anything to check. Any thread: the validator is
 * read only. */
int ferry_validate_record(const ferry_validate *v, const char **value, size_t *len, char *why,
                          size_t why_size);

/* Checks the JSON text p[0..n) against the schema alone (1 when v has none fails nothing).
 * Returns 0 when it is valid, 1 with "POINTER: RULE" in why when it is not (text that is not
 * JSON fails at "(root)"). Any thread. */
int ferry_validate_json(const ferry_validate *v, const char *p, size_t n, char *why,
                        size_t why_size);

#endif
