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
 * ${env:NAME} and ${file:PATH} are replaced when the config is loaded, so they never reach this
 * module. Any other "${...}", or a '$' followed by anything but '{' or '$', is a compile error.
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
 *   HEADER  as is, but a value holding a control byte (0x00-0x1F but HTAB, or 0x7F DEL) is a
 *           render error, so no record can split, end or garble a header line (CR, LF and NUL
 *           are reported as such, any other as "control byte 0xNN"); literal text with such a
 *           byte is a compile error. Bytes from 0x80 up pass: they are UTF-8 as far as ferry
 *           knows, and HTTP carries them as obs-text (the rule of core/header_value.h)
 *   BODY    as is (raw bytes; nothing is quoted or escaped)
 *   HTML    as in BODY, with & < > " ' written as character references (&amp; ...), so a
 *           value cannot add markup to an HTML body (an e-mail target's `html`)
 *   JSON    the text must be JSON with variables in it, and the output is always one JSON value
 *           (docs/routes.md, "Transformation"). Where a variable stands outside a string literal
 *           of the text it becomes one whole JSON value: ${value.PATH} and ${value} as the JSON
 *           they find, in the normal form above (a string keeps its quotes, escaped); ${topic},
 *           ${key} and ${header.NAME} as JSON strings (bytes that are not UTF-8 become U+FFFD);
 *           ${partition}, ${offset}, ${timestamp} as numbers; what would render as nothing
 *           above (no key, no timestamp, a null header or JSON null) as null. Where a variable
 *           stands inside a string literal ("id-${key}") it renders its text as in BODY mode,
 *           escaped for the inside of a JSON string, so "${value.id}" gives "42", a string.
 *           ${value} needs a value that is JSON. Compiling checks that the text is one JSON
 *           value with every variable filled (null outside strings, text inside), which makes
 *           every render one valid JSON value.
 *
 * What a record lacks (a path that finds nothing, a header it does not have, a value when it is
 * a tombstone) fails the render, unless the template is compiled with
 * FERRY_TEMPLATE_MISSING_NULL: it then renders as a null does (null as a whole JSON value,
 * nothing elsewhere). A value that is not JSON always fails a ${value.PATH}.
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
    FERRY_TEMPLATE_JSON,
    FERRY_TEMPLATE_HTML,
};

/* What a variable renders when the record lacks what it names (see above). */
enum ferry_template_missing {
    FERRY_TEMPLATE_MISSING_ERROR,
    FERRY_TEMPLATE_MISSING_NULL,
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

/* As ferry_template_new, choosing what a record's missing parts render as. A JSON template that
 * is not one JSON value once filled fails here, e.g. "template: not one JSON value once its
 * variables are filled: ...". */
ferry_template *ferry_template_compile(const char *text, enum ferry_template_mode mode,
                                       enum ferry_template_missing missing, char *errstr,
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

/* For a URL template: returns 0 when the scheme, host and port are literal text, that is when
 * the text before the first variable holds "://" and then a '/', '?' or '#' that ends the
 * authority (or there is no variable); else -1 with errstr naming the variable. Routes refuse
 * the others at load, so that records cannot choose where their requests go. */
int ferry_template_check_origin(const ferry_template *t, char *errstr, size_t errstr_size);

/* For a URL template whose origin is literal (above): returns 0 when it starts with http:// or
 * https:// (in any case), then names a host, and parses (ferry_url_parses of core/url.h, each
 * variable standing for "x"), else -1 with errstr quoting the template. libcurl would take
 * other schemes (ftp://, file://) or fail each request on a URL without a host, a port past
 * 65535 or a space in its text, so routes refuse these at load. */
int ferry_template_check_http_url(const ferry_template *t, char *errstr, size_t errstr_size);

/* Frees the template. Accepts NULL. */
void ferry_template_destroy(ferry_template *t);

/* Compiles text (NULL: nothing to check) as a template of mode and reports a failure as a
 * config error at path, and for a URL one whose variables could choose the scheme, host or
 * port (ferry_template_check_origin) or that is not http(s) with a host
 * (ferry_template_check_http_url); for the config checks of every template a route has. */
struct ferry_config;
void ferry_template_config_check(struct ferry_config *cfg, const char *text,
                                 enum ferry_template_mode mode, const char *path);

#endif
