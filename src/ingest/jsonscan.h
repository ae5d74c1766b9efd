/*
 * jsonscan.h - a cursor over JSON text that walks objects and arrays without building a tree.
 *
 * Ingest reads request bodies of up to thousands of records on the server's threads. Building
 * a jansson tree and serializing every value back to bytes would cost more than producing the
 * records, so the REST Proxy and webhook parsers walk the text with this cursor instead: they
 * decode only the member names and strings they need and take every embedded value as the
 * span of text it occupies, checked by ferry_json_is_valid() (strict RFC 8259).
 *
 * All functions are pure over the caller's cursor: any thread, one cursor per thread.
 */
#ifndef FERRY_INGEST_JSONSCAN_H
#define FERRY_INGEST_JSONSCAN_H

#include <stddef.h>
#include <stdint.h>

enum ferry_jtype {
    FERRY_JSON_INVALID = -1, /* end of text, or a byte that starts no value */
    FERRY_JSON_NULL,
    FERRY_JSON_FALSE,
    FERRY_JSON_TRUE,
    FERRY_JSON_NUMBER,
    FERRY_JSON_STRING,
    FERRY_JSON_ARRAY,
    FERRY_JSON_OBJECT,
};

struct ferry_jscan {
    const char *start; /* the whole text, for offsets in messages */
    const char *p;     /* the next byte to read */
    const char *end;
    const char *error; /* what went wrong, set by a failing call (a static string) */
};

/* Longest member name the cursor decodes; longer names read as unknown. */
#define FERRY_JSCAN_NAME_MAX 64

/* Starts a cursor over p[0..n). p need not be NUL-terminated. */
void ferry_jscan_init(struct ferry_jscan *s, const char *p, size_t n);

/* Skips whitespace and returns the type of the value that starts there (by its first byte). */
enum ferry_jtype ferry_jscan_peek(struct ferry_jscan *s);

/* Reads one whole value, checked strictly, and sets *span and *len to its text. Returns 0, or
 * -1 with s->error set. */
int ferry_jscan_value(struct ferry_jscan *s, const char **span, size_t *len);

/* Reads a string value and writes its decoded bytes to out, which must have room for as many
 * bytes as the string's text. Returns 0 with *len set, or -1 with s->error set. */
int ferry_jscan_string(struct ferry_jscan *s, char *out, size_t *len);

/* Reads an integer value (no fraction or exponent) into *v. Returns 0, or -1. */
int ferry_jscan_int(struct ferry_jscan *s, int64_t *v);

/* Enters an object or array: open is '{' or '['. Returns 0, or -1. */
int ferry_jscan_enter(struct ferry_jscan *s, char open);

/* Moves to the next member of the object entered last. Returns 1 with the decoded member name
 * in name (NUL-terminated; a name longer than FERRY_JSCAN_NAME_MAX comes back empty with
 * *truncated set) and the cursor at its value, 0 after the closing '}', or -1. *index counts
 * the members read so far; start it at 0. */
int ferry_jscan_member(struct ferry_jscan *s, size_t *index, char name[FERRY_JSCAN_NAME_MAX + 1],
                       int *truncated);

/* Moves to the next element of the array entered last. Returns 1 with the cursor at the
 * element, 0 after the closing ']', or -1. *index counts as for ferry_jscan_member. */
int ferry_jscan_element(struct ferry_jscan *s, size_t *index);

/* Returns 0 when only whitespace is left, else -1. */
int ferry_jscan_finish(struct ferry_jscan *s);

/* The offset of the cursor from the start of the text. */
size_t ferry_jscan_offset(const struct ferry_jscan *s);

/* Copies valid JSON text to out without the whitespace outside strings. out needs room for
 * len bytes. Returns the bytes written. */
size_t ferry_json_compact(const char *span, size_t len, char *out);

/* Finds path ("user.id", "items.0.sku": member names, and indexes into arrays) in the JSON
 * value p[0..n). Returns 1 with *span, *len and *type of the value found, 0 when the path
 * leads nowhere, -1 when the text is not valid JSON. */
int ferry_json_find(const char *p, size_t n, const char *path, const char **span, size_t *len,
                    enum ferry_jtype *type);

#endif
