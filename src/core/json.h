/*
 * json.h - checking and writing JSON text without building a tree.
 *
 * ferry handles JSON on the paths where every record or request passes: embedding record keys
 * and values in request bodies, parsing ingest bodies, filling templates. A jansson parse per
 * record would cost more than the rest of that work together, so JSON is handled here as text:
 * this half answers "is this one JSON value?" and "is this UTF-8?" in one pass without
 * allocating, and appends JSON strings and numbers straight into a capped ferry_buf. Reading
 * JSON text (a cursor over objects and arrays, decoding strings, finding a path) is the other
 * half, core/json_scan.h. docs/development.md lists the few places that still use jansson.
 *
 * All functions are pure and may be called from any thread.
 */
#ifndef FERRY_JSON_H
#define FERRY_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Deepest nesting of arrays and objects the checker accepts: "[[1]]" has depth 2. */
#define FERRY_JSON_MAX_DEPTH 64

/* Room ferry_json_add_real needs for any double: "%.17g" plus ".0". */
#define FERRY_JSON_REAL_TEXT_MAX 40

/* Where JSON text stopped being valid, for messages. */
struct ferry_json_error {
    const char *why; /* a static string, e.g. "invalid escape in a string" */
    size_t offset;   /* the byte at which the text went wrong */
};

/* Returns 0 when p[0..n) is exactly one RFC 8259 JSON value, optionally surrounded by JSON
 * whitespace (space, tab, CR, LF), else -1 with *err filled when err is not NULL. Strict:
 * strings must be valid UTF-8 with no raw control characters, no leading zeros, no trailing
 * commas, no byte order mark, and \u escapes must not encode a lone surrogate (jansson rejects
 * those too). Nesting deeper than FERRY_JSON_MAX_DEPTH is rejected. Numbers are checked for
 * form, not range. p need not be NUL-terminated. */
int ferry_json_check(const char *p, size_t n, struct ferry_json_error *err);

/* Returns 1 when ferry_json_check accepts p[0..n), else 0. */
int ferry_json_is_valid(const char *p, size_t n);

/* Returns the length of the one JSON value at the start of p[0..n) (with the whitespace
 * before it), checked as ferry_json_check does, or 0 when no valid value starts there, with
 * *err (unless NULL) saying why and where. Whatever follows the value is left alone: a reader
 * of a larger document finds a value's end and checks it in one pass. */
size_t ferry_json_value_len(const char *p, size_t n, struct ferry_json_error *err);

/* Returns 1 when p[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF), else 0. An embedded NUL byte is valid UTF-8. */
int ferry_json_utf8_is_valid(const char *p, size_t n);

/* Returns the length of the UTF-8 sequence at p (n > 0 bytes available) and sets *ok to 1 when
 * it is well-formed, else to 0; an ill-formed sequence's length is that of its maximal
 * ill-formed subpart (at least 1), the span one U+FFFD replaces. For writers of other formats
 * (the logger) that must agree with ferry_json_add_string on what is well-formed. */
size_t ferry_json_utf8_next(const char *p, size_t n, int *ok);

/* Appends p[0..n) to out as a quoted JSON string: '"' and '\' are escaped, control characters
 * become \b \f \n \r \t or \u00XX, everything else is copied. Bytes that are not valid UTF-8
 * are replaced by U+FFFD, one per maximal ill-formed subsequence (the Unicode and WHATWG
 * practice), so the output is always valid JSON. Returns 0, or -1 when out's cap would be
 * passed or memory ran out; out is then left as it was. */
int ferry_json_add_string(struct ferry_buf *out, const char *p, size_t n);

/* As ferry_json_add_string without the quotes: the inside of a JSON string. */
int ferry_json_add_escaped(struct ferry_buf *out, const char *p, size_t n);

/* Appends v in decimal (a JSON number). Returns 0, or -1 as ferry_buf_add; out is then left as
 * it was. */
int ferry_json_add_int(struct ferry_buf *out, int64_t v);

/* Appends d as the shortest "%g" text that reads back as d, keeping ".0" on integral values as
 * JSON encoders do (3.0, 1e+300, 0.1). d must be finite. Returns 0, or -1 as ferry_buf_add.
 * Assumes the "C" numeric locale, which ferry never changes. */
int ferry_json_add_real(struct ferry_buf *out, double d);

/* Copies valid JSON text to out without the whitespace outside strings; nothing else changes.
 * out needs room for len bytes and may be span itself. Returns the bytes written. */
size_t ferry_json_compact(const char *span, size_t len, char *out);

#endif
