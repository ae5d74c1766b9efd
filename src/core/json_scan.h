/*
 * json_scan.h - reading JSON text without building a tree: a cursor, string decoding, and
 * finding a value by path.
 *
 * Ingest reads request bodies of up to thousands of records on the server's threads, and a
 * route's templates read a field or two of every record. Building a jansson tree and
 * serializing values back to bytes would cost more than the rest of that work, so both walk the
 * text: they decode only the member names and strings they need and take every other value as
 * the span of text it occupies, checked by ferry_json_check() (core/json.h).
 *
 * A path names a value inside a JSON value; the syntax is documented once, in docs/json-paths.md:
 * segments separated by '.', each a member name, or an index into an array when it is digits
 * with no leading zero ("user.id", "items.0.sku"). Webhook keys and ${value.PATH} in templates
 * both use ferry_json_find.
 *
 * All functions are pure over the caller's cursor and buffers: any thread, one cursor per
 * thread.
 */
#ifndef FERRY_JSON_SCAN_H
#define FERRY_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"

enum ferry_json_type {
    FERRY_JSON_INVALID = -1, /* end of text, or a byte that starts no value */
    FERRY_JSON_NULL,
    FERRY_JSON_FALSE,
    FERRY_JSON_TRUE,
    FERRY_JSON_NUMBER,
    FERRY_JSON_STRING,
    FERRY_JSON_ARRAY,
    FERRY_JSON_OBJECT,
};

struct ferry_json_cursor {
    const char *start; /* the whole text, for offsets in messages */
    const char *p;     /* the next byte to read */
    const char *end;
    const char *error; /* what went wrong, set by a failing call (a static string) */
};

/* Longest member name ferry_json_next_member decodes; longer names read as unknown. */
#define FERRY_JSON_NAME_MAX 64

/* Why ferry_json_next_member gave an empty name in place of a member's (its *truncated). */
enum ferry_json_name_problem {
    FERRY_JSON_NAME_LONG = 1, /* longer than FERRY_JSON_NAME_MAX bytes */
    FERRY_JSON_NAME_NUL = 2,  /* holds U+0000: "records\u0000" would compare as "records" */
};

/* Results of the writers below that read JSON text. */
enum ferry_json_write_result {
    FERRY_JSON_WRITE_OK = 0,
    FERRY_JSON_WRITE_ROOM = -1,  /* out's cap would be passed, or memory ran out */
    FERRY_JSON_WRITE_VALUE = -2, /* the text is not valid, or a number is out of range */
};

/* Starts a cursor over p[0..n). p need not be NUL-terminated. */
void ferry_json_cursor_init(struct ferry_json_cursor *c, const char *p, size_t n);

/* Skips whitespace and returns the type of the value that starts there (by its first byte). */
enum ferry_json_type ferry_json_peek(struct ferry_json_cursor *c);

/* Reads one whole value, checked strictly, and sets *span and *len to its text. Returns 0, or
 * -1 with c->error set. */
int ferry_json_read_value(struct ferry_json_cursor *c, const char **span, size_t *len);

/* Moves past the value at the cursor without checking it, for text ferry_json_check has
 * accepted already. Returns 0, or -1 when the value does not end before the text does. */
int ferry_json_skip(struct ferry_json_cursor *c);

/* Reads a string value and writes its decoded bytes to out, which must have room for as many
 * bytes as the string's text. Returns 0 with *len set, or -1 with c->error set. */
int ferry_json_read_string(struct ferry_json_cursor *c, char *out, size_t *len);

/* Reads an integer value (no fraction or exponent) into *v. Returns 0, or -1 with c->error
 * set ("integer out of range" past int64). */
int ferry_json_read_int(struct ferry_json_cursor *c, int64_t *v);

/* Reads any number into *d, as strtod() reads it. Returns 0, or -1 with c->error set (a number
 * too large for a double is out of range; one too small reads as 0). */
int ferry_json_read_real(struct ferry_json_cursor *c, double *d);

/* Enters an object or array: open is '{' or '['. Returns 0, or -1. */
int ferry_json_enter(struct ferry_json_cursor *c, char open);

/* Moves to the next member of the object entered last. Returns 1 with the decoded member name
 * in name (NUL-terminated) and the cursor at its value, 0 after the closing '}', or -1. A name
 * that cannot be given whole as a C string, longer than FERRY_JSON_NAME_MAX or holding U+0000,
 * comes back empty with *truncated set to a ferry_json_name_problem, so that it equals no known
 * name and callers read it as unknown; else *truncated is 0. *index counts the members read so
 * far; start it at 0. */
int ferry_json_next_member(struct ferry_json_cursor *c, size_t *index,
                           char name[FERRY_JSON_NAME_MAX + 1], int *truncated);

/* The name to show in a message for what ferry_json_next_member gave: name itself when
 * truncated is 0, else a static stand-in saying what was wrong with it ("(name with \u0000)"),
 * never the part of the name before a NUL. */
const char *ferry_json_name_label(const char *name, int truncated);

/* Moves to the next element of the array entered last. Returns 1 with the cursor at the
 * element, 0 after the closing ']', or -1. *index counts as for ferry_json_next_member. */
int ferry_json_next_element(struct ferry_json_cursor *c, size_t *index);

/* Returns 0 when only whitespace is left, else -1. */
int ferry_json_finish(struct ferry_json_cursor *c);

/* The offset of the cursor from the start of the text. */
size_t ferry_json_offset(const struct ferry_json_cursor *c);

/* Appends the decoded bytes of the JSON string text span[0..len) (quotes included) to out.
 * Returns a ferry_json_write_result; on error out is left as it was. */
int ferry_json_add_decoded(struct ferry_buf *out, const char *span, size_t len);

/* Appends the valid JSON value span[0..len) in normal form: no whitespace, strings as
 * ferry_json_add_string writes their decoded bytes, integers as ferry_json_add_int and other
 * numbers as ferry_json_add_real writes them ([1.50, "\u00e9"] becomes [1.5,"é"]). Returns a
 * ferry_json_write_result, with *err set for FERRY_JSON_WRITE_VALUE (its offset counts from
 * span); on error out is left as it was. */
int ferry_json_add_normalized(struct ferry_buf *out, const char *span, size_t len,
                              struct ferry_json_error *err);

/* Returns NULL when path is a valid path, else what is wrong with it, a static string:
 * "empty path segment" for "", "a..b", ".a" or "a.". */
const char *ferry_json_path_error(const char *path);

/* What ferry_json_find found, or how far it got. */
struct ferry_json_found {
    const char *span; /* the value's text, within the searched text */
    size_t len;
    enum ferry_json_type type;
    size_t path_len; /* on a miss: the length of the path up to the segment that found nothing */
};

/* Finds path in the JSON value p[0..n), which ferry_json_check must have accepted (only the
 * structure on the way is looked at again). Where an object has a name more than once, the
 * first one counts, so a lookup stops reading where it finds its value. Returns 1 with found's
 * span, len and
 * type set, 0 when the path leads nowhere (found->path_len set), or -1 when the text turned out
 * not to be JSON. */
int ferry_json_find(const char *p, size_t n, const char *path, struct ferry_json_found *found);

#endif
