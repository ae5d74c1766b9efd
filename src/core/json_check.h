/*
 * json_check.h - checking and writing JSON text without building a tree.
 *
 * The request-building code embeds record keys and values into JSON bodies on the batch path,
 * where a jansson parse per record would cost more than the rest of the work together. These
 * helpers answer "is this one JSON value?" and "is this UTF-8?" in one pass without allocating,
 * and append JSON strings and numbers straight into a capped ferry_buf.
 *
 * All functions are pure and may be called from any thread.
 */
#ifndef FERRY_JSON_CHECK_H
#define FERRY_JSON_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Deepest nesting of arrays and objects ferry_json_is_valid accepts: "[[1]]" has depth 2. */
#define FERRY_JSON_MAX_DEPTH 64

/* Returns 1 when p[0..n) is exactly one RFC 8259 JSON value, optionally surrounded by JSON
 * whitespace (space, tab, CR, LF), else 0. Strict: strings must be valid UTF-8 with no raw
 * control characters, no leading zeros, no trailing commas, no byte order mark, and \u escapes
 * must not encode a lone surrogate (jansson rejects those too). Nesting deeper than
 * FERRY_JSON_MAX_DEPTH is rejected. p need not be NUL-terminated. */
int ferry_json_is_valid(const char *p, size_t n);

/* Returns 1 when p[0..n) is well-formed UTF-8 (no overlong forms, no surrogates, nothing above
 * U+10FFFF), else 0. An embedded NUL byte is valid UTF-8. */
int ferry_utf8_is_valid(const char *p, size_t n);

/* Returns the length of the UTF-8 sequence at p (n > 0 bytes available) and sets *ok to 1 when
 * it is well-formed, else to 0; an ill-formed sequence's length is that of its maximal
 * ill-formed subpart (at least 1), the span one U+FFFD replaces. For writers of other formats
 * (the logger) that must agree with ferry_json_add_string on what is well-formed. */
size_t ferry_utf8_next(const char *p, size_t n, int *ok);

/* Appends p[0..n) to out as a quoted JSON string: '"' and '\' are escaped, control characters
 * become \b \f \n \r \t or \u00XX, everything else is copied. Bytes that are not valid UTF-8
 * are replaced by U+FFFD, one per maximal ill-formed subsequence (the Unicode and WHATWG
 * practice), so the output is always valid JSON. Returns 0, or -1 when out's cap would be
 * passed or memory ran out; out is then left as it was. */
int ferry_json_add_string(struct ferry_buf *out, const char *p, size_t n);

/* Appends v in decimal (a JSON number). Returns 0, or -1 as ferry_buf_add; out is then left as
 * it was. */
int ferry_json_add_int(struct ferry_buf *out, int64_t v);

#endif
