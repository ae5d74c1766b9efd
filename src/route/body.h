/*
 * body.h - the body of an HTTP request built from one record or a batch of records.
 *
 * What one record contributes depends on the route's body mode:
 *   value     the value's bytes as they are (a tombstone gives an empty body)
 *   envelope  a JSON object describing the whole record:
 *               {"topic":"orders","partition":3,"offset":42,"timestamp":1700000000123,
 *                "key":..., "value":..., "headers":{"name":"text",...}}
 *             key and value are embedded as JSON when they are one valid JSON value, else as a
 *             JSON string when they are valid UTF-8, else as a base64 string (RFC 4648, with
 *             padding) and "key_encoding":"base64" / "value_encoding":"base64" follows them.
 *             An absent key, a tombstone's value and a missing timestamp are null. "headers"
 *             is always an object; a header that appears more than once keeps only its last
 *             value (as ${header.NAME} and the Java client's lastHeader() do), placed where
 *             that last one stood; a header's null value is null; header values are JSON
 *             strings, with bytes that are not UTF-8 replaced by U+FFFD.
 *   template  a BODY-mode template rendered from the record (template.h)
 *   json_template  a JSON-mode template rendered from the record (template.h): always one JSON
 *             value, sent as application/json, embedded in json_array and ndjson batches like
 *             any JSON value (on one line)
 *
 * A batch of records from one partition is framed by the batch format:
 *   json_array  [b1,b2,...] where each element is the record's body as one JSON value: the
 *               envelope object; or the value (or template output) embedded as JSON when it is
 *               valid JSON, else as a JSON string (U+FFFD for bytes that are not UTF-8; use
 *               envelope mode for binary values); a tombstone's value is null
 *   ndjson      the same JSON values, each on its own line ending in "\n". Every line is JSON,
 *               so a raw value that is not JSON goes in as a JSON string and a newline in it
 *               cannot break the framing; CR and LF between the tokens of embedded JSON (a
 *               pretty-printed value) are dropped, which does not change its meaning
 *   separator   the records' bodies exactly as a single record would send them, joined by the
 *               configured bytes; nothing is escaped, so a body that contains the separator
 *               makes the batch ambiguous (the route's config owns that choice)
 * Embedded JSON is copied as it is apart from the CR/LF rule above and surrounding whitespace.
 */
#ifndef FERRY_BODY_H
#define FERRY_BODY_H

#include <stddef.h>

#include "core/buf.h"
#include "route/record.h"
#include "route/template.h"

enum ferry_body_mode {
    FERRY_BODY_VALUE,
    FERRY_BODY_ENVELOPE,
    FERRY_BODY_TEMPLATE,
    FERRY_BODY_JSON_TEMPLATE,
};

enum ferry_body_batch {
    FERRY_BODY_SINGLE, /* exactly one record, no framing */
    FERRY_BODY_JSON_ARRAY,
    FERRY_BODY_NDJSON,
    FERRY_BODY_SEPARATOR,
};

/* How a route builds bodies; filled once from the config. Nothing in it is owned. */
struct ferry_body_spec {
    enum ferry_body_mode mode;
    const ferry_template *tmpl; /* FERRY_BODY_TEMPLATE: a FERRY_TEMPLATE_BODY template;
                                   FERRY_BODY_JSON_TEMPLATE: a FERRY_TEMPLATE_JSON one */
    enum ferry_body_batch batch;
    const char *separator; /* FERRY_BODY_SEPARATOR: the bytes between two bodies */
    size_t separator_len;
};

/* Results of ferry_body_render. */
enum ferry_body_result {
    FERRY_BODY_OK = 0,
    FERRY_BODY_EREC = -1,    /* recs[*failed] cannot be rendered (template): dead-letter it */
    FERRY_BODY_ETOOBIG = -2, /* out's cap was reached at recs[*failed]: send fewer records
                                before it, or dead-letter it when it is the first */
    FERRY_BODY_ESPEC = -3,   /* the spec does not fit the call, e.g. 2 records and no batch */
};

/* Appends the body for recs[0..n) to out. n must be 1 with FERRY_BODY_SINGLE; n == 0 gives
 * "[]" for a json_array and nothing for the other formats. Returns FERRY_BODY_OK, or one of
 * the errors above with a message in errstr and, for EREC and ETOOBIG, the index of the record
 * at fault in *failed (failed may be NULL). On error out is left as it was. Allocates only a
 * scratch buffer per call, in template mode with json_array or ndjson. Any thread. */
int ferry_body_render(const struct ferry_body_spec *spec, const struct ferry_record *const *recs,
                      size_t n, struct ferry_buf *out, size_t *failed, char *errstr,
                      size_t errstr_size);

/* Returns the template mode a body mode's template is compiled in: FERRY_TEMPLATE_JSON for
 * json_template, else FERRY_TEMPLATE_BODY. */
enum ferry_template_mode ferry_body_template_mode(enum ferry_body_mode mode);

/* Returns the Content-Type the spec's bodies have: "application/json" for json_array and for
 * single envelopes and JSON templates, "application/x-ndjson" for ndjson, or NULL when ferry cannot
 * know (value and template bodies, separator batches): the caller then uses the configured
 * Content-Type or application/octet-stream. The string is static. */
const char *ferry_body_content_type(const struct ferry_body_spec *spec);

/* Parse the config names "value", "envelope", "template", "json_template" and "json_array",
 * "ndjson", "separator". Return the enum value, or -1 for an unknown name. */
int ferry_body_mode_parse(const char *name);
int ferry_body_batch_parse(const char *name);

#endif
