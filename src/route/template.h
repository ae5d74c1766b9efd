/*
 * template.h - compiled templates for request URLs, header values and bodies.
 *
 * A route's config may build the parts of a request from the record being delivered:
 *
 *   ${topic} ${partition} ${offset}   where the record comes from
 *   ${key}                            the key's bytes; empty when the record has no key
 *   ${timestamp}                      milliseconds since the epoch; empty when there is none
 *   ${header.NAME}                    the last header called NAME; empty when its value is null
 *   ${value}                          the value's bytes as they are; empty for a tombstone
 *   ${value.PATH}                     a path into the value read as JSON (docs/json-paths.md):
 *                                     ${value.user.id}, ${value.items.0.sku}
 *   $$                                a literal '$'
 *
 * ${env:NAME} is replaced when the config is loaded, so it never reaches this module. Any other
 * "${...}", or a '$' followed by anything but '{' or '$', is a compile error.
 *
 * Paths are those of webhook keys, looked up by the same code (ferry_json_find): a segment made
 * only of digits (no leading zero) indexes an array, on an object it is an ordinary key; keys
 * that contain '.' cannot be addressed. What ${value.PATH} finds renders as: a string as its
 * decoded text, unquoted; a number as its JSON text (integers as int64, reals in the shortest
 * form that reads back to the same double); true/false as "true"/"false"; null as nothing (the
 * empty string); an object or array as compact JSON in that same normal form. The value is
 * checked as JSON once per render, and only when the template uses ${value.PATH}.
 *
 * The text a variable produces is then encoded by the template's mode:
 *   URL     percent-encoded, keeping only RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~);
 *           the literal text around the variables is used as written
 *   HEADER  as is, but a value containing CR, LF or NUL is a render error; literal text with
 *           CR or LF is a compile error
 *   BODY    as is (raw bytes; nothing is quoted or escaped)
 *
 * A compiled template is immutable: any number of threads may render it at once.
 */
#ifndef FERRY_TEMPLATE_H
#define FERRY_TEMPLATE_H

#include <stddef.h>

#include "core/buf.h"
#include "route/record.h"

typedef struct ferry_template ferry_template;

enum ferry_template_mode {
    FERRY_TEMPLATE_URL,
    FERRY_TEMPLATE_HEADER,
    FERRY_TEMPLATE_BODY,
};

/* Results of ferry_template_render. */
enum ferry_template_result {
    FERRY_TEMPLATE_OK = 0,
    FERRY_TEMPLATE_EREC = -1,    /* this record cannot fill the template: dead-letter it */
    FERRY_TEMPLATE_ETOOBIG = -2, /* the output would pass out's cap */
};

/* Compiles text. Returns a template the caller owns (ferry_template_destroy), or NULL with a
 * message in errstr, e.g. "template: unknown variable '${ofset}'". text is copied. */
ferry_template *ferry_template_new(const char *text, enum ferry_template_mode mode, char *errstr,
                                   size_t errstr_size);

/* Appends the template filled from rec to out. Returns FERRY_TEMPLATE_OK, or one of the errors
 * above with a message in errstr naming the variable and the reason, e.g.
 * "template: '${header.x-id}': record has no header 'x-id'". On error out is left as it was.
 * Any thread. */
int ferry_template_render(const ferry_template *t, const struct ferry_record *rec,
                          struct ferry_buf *out, char *errstr, size_t errstr_size);

/* Returns 1 when the template has no variables (it renders the same for every record), else
 * 0. */
int ferry_template_is_constant(const ferry_template *t);

/* Frees the template. Accepts NULL. */
void ferry_template_destroy(ferry_template *t);

#endif
