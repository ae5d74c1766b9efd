/*
 * template.c - compiling and rendering request templates (see template.h).
 *
 * Compiling splits the text once into parts: literal slices of a private copy of the text, and
 * variables with everything a render needs resolved ahead (the header name as a C string, a
 * value path checked). Rendering then walks the parts and appends to the caller's buffer. A
 * ${value.PATH} reads the record value as text with core/json_scan.h: the value is checked once
 * per render, each path is looked up in the text, and what it finds is decoded or written in
 * normal form. The only allocation on that path is a scratch buffer for found text that must be
 * encoded (URL, header and HTML modes) and has escapes or is not a string.
 *
 * In JSON mode compiling also follows the literal text in and out of its string literals, so
 * each variable knows whether it renders a whole JSON value or escaped text inside a string,
 * and then checks the text with stand-ins for the variables (check_json_shape), so that no
 * record can make a body that is not JSON.
 */
#include "route/template.h"
#include "core/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/header_value.h"
#include "core/hex.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "core/url.h"

enum part_kind {
    PART_TEXT,
    PART_TOPIC,
    PART_PARTITION,
    PART_OFFSET,
    PART_KEY,
    PART_TIMESTAMP,
    PART_HEADER,
    PART_VALUE,
    PART_VALUE_PATH,
};

struct part {
    enum part_kind kind;
    const char *text; /* PART_TEXT: a slice of the template's copy of its text */
    size_t len;       /* PART_TEXT: the slice's length */
    char *var;        /* variables: what stood between "${" and "}", for messages */
    const char *path; /* PART_VALUE_PATH: the path (docs/json-paths.md), within var */
    int in_string;    /* JSON mode: the variable sits inside a string literal of the text */
};

struct ferry_template {
    enum ferry_template_mode mode;
    enum ferry_template_missing missing;
    int in_string, escaped; /* JSON mode, while parsing: where the literal text has got to */
    char *src;
    struct part *parts;
    size_t nparts;
    size_t alloc;
};

/* What one render carries from part to part. */
struct render {
    const ferry_template *t;
    const struct ferry_record *rec;
    struct ferry_buf *out;
    struct ferry_buf scratch; /* found text on its way to emit(), in URL, header, HTML modes */
    int checked;              /* the record value passed ferry_json_check */
    char *errstr;
    size_t errstr_size;
};

static const struct {
    const char *name;
    enum part_kind kind;
} plain_vars[] = {
    {"topic", PART_TOPIC}, {"partition", PART_PARTITION}, {"offset", PART_OFFSET},
    {"key", PART_KEY},     {"timestamp", PART_TIMESTAMP}, {"value", PART_VALUE},
};

/* Returns a new zeroed part at the end of t->parts, or NULL when memory ran out. */
static struct part *push_part(ferry_template *t, enum part_kind kind)
{
    size_t alloc = t->alloc ? t->alloc * 2 : 8;
    struct part *parts;

    if (t->nparts == t->alloc) {
        parts = realloc(t->parts, alloc * sizeof(*parts));
        if (!parts)
            return NULL;
        t->parts = parts;
        t->alloc = alloc;
    }
    memset(&t->parts[t->nparts], 0, sizeof(t->parts[0]));
    t->parts[t->nparts].kind = kind;
    return &t->parts[t->nparts++];
}

/* Points part->path at the path in part->var ("value.a.0.b") and checks it. */
static int compile_path(struct part *part, char *errstr, size_t errstr_size)
{
    const char *why;

    part->path = part->var + strlen("value.");
    why = ferry_json_path_error(part->path);
    if (why) {
        snprintf(errstr, errstr_size, "template: %s in '${%s}'", why, part->var);
        return -1;
    }
    return 0;
}

/* Adds the variable named by var[0..len). */
static int add_var(ferry_template *t, const char *var, size_t len, char *errstr, size_t errstr_size)
{
    struct part *part = push_part(t, PART_TEXT);
    size_t i;

    if (part) {
        part->var = strndup(var, len);
        part->in_string = t->in_string;
    }
    if (!part || !part->var) {
        snprintf(errstr, errstr_size, "template: out of memory");
        return -1;
    }
    for (i = 0; i < sizeof(plain_vars) / sizeof(plain_vars[0]); i++) {
        if (strcmp(part->var, plain_vars[i].name) == 0) {
            part->kind = plain_vars[i].kind;
            return 0;
        }
    }
    if (strncmp(part->var, "header.", 7) == 0 && part->var[7]) {
        part->kind = PART_HEADER;
        return 0;
    }
    if (strncmp(part->var, "value.", 6) == 0) {
        part->kind = PART_VALUE_PATH;
        return compile_path(part, errstr, errstr_size);
    }
    snprintf(errstr, errstr_size, "template: unknown variable '${%s}'", part->var);
    return -1;
}

/* Follows the literal text of a JSON template in and out of string literals, so that each
 * variable knows whether it stands for a whole value or for text inside a string. */
static void track_strings(ferry_template *t, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (t->escaped)
            t->escaped = 0;
        else if (t->in_string && p[i] == '\\')
            t->escaped = 1;
        else if (p[i] == '"')
            t->in_string = !t->in_string;
    }
}

static int add_text(ferry_template *t, const char *p, size_t len, char *errstr, size_t errstr_size)
{
    struct part *part = push_part(t, PART_TEXT);

    if (!part) {
        snprintf(errstr, errstr_size, "template: out of memory");
        return -1;
    }
    part->text = p;
    part->len = len;
    if (t->mode == FERRY_TEMPLATE_JSON)
        track_strings(t, p, len);
    return 0;
}

/* *pp is at a '$': reads "$$" or "${...}" and moves *pp past it. */
static int parse_dollar(ferry_template *t, const char **pp, char *errstr, size_t errstr_size)
{
    const char *p = *pp, *name = p + 2;
    size_t offset = (size_t)(p - t->src), len;

    if (p[1] == '$') {
        *pp = p + 2;
        return add_text(t, p, 1, errstr, errstr_size);
    }
    if (p[1] != '{') {
        snprintf(errstr, errstr_size,
                 "template: '$' at offset %zu is not followed by '{' (write '$$' for a '$')",
                 offset);
        return -1;
    }
    len = strcspn(name, "}${");
    if (name[len] != '}') {
        snprintf(errstr, errstr_size, "template: unterminated '${' at offset %zu", offset);
        return -1;
    }
    *pp = name + len + 1;
    return add_var(t, name, len, errstr, errstr_size);
}

static int parse(ferry_template *t, char *errstr, size_t errstr_size)
{
    const char *p = t->src;
    size_t len;
    int result = 0;

    while (!result && *p) {
        len = strcspn(p, "$");
        if (len) {
            result = add_text(t, p, len, errstr, errstr_size);
            p += len;
        } else {
            result = parse_dollar(t, &p, errstr, errstr_size);
        }
    }
    return result;
}

/* Fills the variables of a JSON template with stand-ins: null for a whole value, "x" inside a
 * string. null is one complete token that cannot merge with its neighbours into another valid
 * token, and any JSON value is valid wherever null is; "x" is plain string text, which is what
 * every variable inside a string renders as once escaped (and it keeps a '\' written just
 * before the variable an invalid escape, as real text could make it). */
static int fill_stand_ins(const ferry_template *t, struct ferry_buf *out)
{
    int result = 0;

    for (size_t i = 0; !result && i < t->nparts; i++) {
        const struct part *part = &t->parts[i];
        if (part->kind == PART_TEXT)
            result = ferry_buf_add(out, part->text, part->len);
        else
            result = ferry_buf_adds(out, part->in_string ? "x" : "null");
    }
    return result;
}

/* Checks that a JSON template gives one JSON value whatever its variables hold. */
static int check_json_shape(const ferry_template *t, char *errstr, size_t errstr_size)
{
    struct ferry_buf text;
    struct ferry_json_error err;
    size_t from;
    int result;

    /* Each variable's stand-in is at most 4 bytes, no longer than its "${...}" text. */
    ferry_buf_init(&text, strlen(t->src) + 4 * t->nparts);
    result = fill_stand_ins(t, &text);
    if (result)
        snprintf(errstr, errstr_size, "template: out of memory");
    else if (ferry_json_check(text.data ? text.data : "", text.len, &err)) {
        from = err.offset > 20 ? err.offset - 20 : 0;
        snprintf(errstr, errstr_size,
                 "template: not one JSON value once its variables are filled: %s at '%.40s' "
                 "(each variable outside quotes stands for one JSON value, shown as null)",
                 err.why, text.data ? text.data + from : "");
        result = -1;
    }
    ferry_buf_release(&text);
    return result;
}

/* Longest literal start of a URL template that check_url_origin reads. */
#define TEMPLATE_URL_ORIGIN_MAX 2048
#define TEMPLATE_URL_SAMPLE_MAX (64 * 1024) /* the URL a check makes of a template's text */

/* Appends the literal text before the first variable to prefix (up to its cap); returns that
 * variable's index, or nparts when there is none. */
static size_t literal_prefix(const ferry_template *t, struct ferry_buf *prefix)
{
    size_t i;

    for (i = 0; i < t->nparts && t->parts[i].kind == PART_TEXT; i++)
        ferry_buf_add(prefix, t->parts[i].text, t->parts[i].len);
    return i;
}

int ferry_template_check_origin(const ferry_template *t, char *errstr, size_t errstr_size)
{
    struct ferry_buf prefix;
    const char *sep, *end;
    size_t i;
    int result = 0;

    ferry_buf_init(&prefix, TEMPLATE_URL_ORIGIN_MAX);
    i = literal_prefix(t, &prefix);
    if (i < t->nparts) {
        sep = prefix.data ? strstr(prefix.data, "://") : NULL;
        end = sep ? strpbrk(sep + 3, "/?#") : NULL;
        /* An empty authority ("http:///${key}") holds no variable: that URL has no host,
         * which ferry_template_check_http_url reports. */
        if (!end) {
            snprintf(errstr, errstr_size,
                     "template: '${%s}' is in the URL's scheme, host or port; write those out "
                     "so that records cannot choose where requests go",
                     t->parts[i].var);
            result = -1;
        }
    }
    ferry_buf_release(&prefix);
    return result;
}

/* The template's text with "x" for each variable: a URL as a record could make it. */
static void sample(const ferry_template *t, struct ferry_buf *out)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].kind == PART_TEXT)
            ferry_buf_add(out, t->parts[i].text, t->parts[i].len);
        else
            ferry_buf_addc(out, 'x');
}

/* ferry_url_parses on sample(t), quoting the template rather than the sample. */
static int sample_parses(const ferry_template *t, char *errstr, size_t errstr_size)
{
    struct ferry_buf url;
    const char *why;
    int result = 0;

    ferry_buf_init(&url, TEMPLATE_URL_SAMPLE_MAX);
    sample(t, &url);
    why = url.failed ? NULL : ferry_url_problem(url.data ? url.data : "");
    if (why) {
        snprintf(errstr, errstr_size, "'%s' is not a URL: %s", t->src, why);
        result = -1;
    }
    ferry_buf_release(&url);
    return result;
}

int ferry_template_check_http_url(const ferry_template *t, char *errstr, size_t errstr_size)
{
    struct ferry_buf prefix;
    const char *p, *authority = NULL;
    int result = 0;

    ferry_buf_init(&prefix, TEMPLATE_URL_ORIGIN_MAX);
    literal_prefix(t, &prefix);
    p = prefix.data ? prefix.data : "";
    if (strncasecmp(p, "http://", 7) == 0)
        authority = p + 7;
    else if (strncasecmp(p, "https://", 8) == 0)
        authority = p + 8;
    if (!authority) {
        snprintf(errstr, errstr_size, "expected an http:// or https:// URL, got '%s'", t->src);
        result = -1;
    } else if (!ferry_url_authority_has_host(authority)) {
        snprintf(errstr, errstr_size, "expected a host after '%.*s', got '%s'",
                 (int)(authority - p), p, t->src);
        result = -1;
    } else {
        result = sample_parses(t, errstr, errstr_size);
    }
    ferry_buf_release(&prefix);
    return result;
}

/* Checks the literal text of a header template: it may hold no byte a header value cannot. */
static int check_header_text(const char *text, char *errstr, size_t errstr_size)
{
    size_t len = strlen(text), crlf = strcspn(text, "\r\n"), at;

    if (text[crlf]) {
        snprintf(errstr, errstr_size, "template: header template has CR or LF at offset %zu", crlf);
        return -1;
    }
    at = ferry_header_value_unsafe(text, len);
    if (at < len) {
        snprintf(errstr, errstr_size,
                 "template: header template has control byte 0x%02X at offset %zu",
                 (unsigned char)text[at], at);
        return -1;
    }
    return 0;
}

static int compile(ferry_template *t, const char *text, char *errstr, size_t errstr_size)
{
    t->src = strdup(text);
    if (!t->src) {
        snprintf(errstr, errstr_size, "template: out of memory");
        return -1;
    }
    if (t->mode == FERRY_TEMPLATE_HEADER && check_header_text(text, errstr, errstr_size))
        return -1;
    if (parse(t, errstr, errstr_size))
        return -1;
    return t->mode == FERRY_TEMPLATE_JSON ? check_json_shape(t, errstr, errstr_size) : 0;
}

ferry_template *ferry_template_new(const char *text, enum ferry_template_mode mode, char *errstr,
                                   size_t errstr_size)
{
    return ferry_template_compile(text, mode, FERRY_TEMPLATE_MISSING_ERROR, errstr, errstr_size);
}

ferry_template *ferry_template_compile(const char *text, enum ferry_template_mode mode,
                                       enum ferry_template_missing missing, char *errstr,
                                       size_t errstr_size)
{
    ferry_template *t = calloc(1, sizeof(*t));
    int result = -1;

    if (!t) {
        snprintf(errstr, errstr_size, "template: out of memory");
        goto out;
    }
    t->mode = mode;
    t->missing = missing;
    result = compile(t, text, errstr, errstr_size);
out:
    if (result) {
        ferry_template_destroy(t);
        return NULL;
    }
    return t;
}

void ferry_template_destroy(ferry_template *t)
{
    size_t i;

    if (!t)
        return;
    for (i = 0; i < t->nparts; i++)
        free(t->parts[i].var);
    free(t->parts);
    free(t->src);
    free(t);
}

int ferry_template_is_constant(const ferry_template *t)
{
    size_t i;

    for (i = 0; i < t->nparts; i++) {
        if (t->parts[i].kind != PART_TEXT)
            return 0;
    }
    return 1;
}

static int fail(struct render *r, const struct part *part, const char *why)
{
    snprintf(r->errstr, r->errstr_size, "template: '${%s}': %s", part->var, why);
    return FERRY_TEMPLATE_EREC;
}

static int too_big(struct render *r)
{
    snprintf(r->errstr, r->errstr_size, "template: output passes its limit of %zu bytes",
             r->out->cap);
    return FERRY_TEMPLATE_ETOOBIG;
}

/* Returns 1 when part renders as a whole JSON value (JSON mode, outside a string). */
static int as_value(const struct render *r, const struct part *part)
{
    return r->t->mode == FERRY_TEMPLATE_JSON && !part->in_string;
}

/* Appends what a null renders as: null for a whole JSON value, else nothing. */
static int emit_null(struct render *r, const struct part *part)
{
    if (!as_value(r, part))
        return FERRY_TEMPLATE_OK;
    return ferry_buf_add(r->out, "null", 4) ? too_big(r) : FERRY_TEMPLATE_OK;
}

/* A record lacks what part names (a path, a header): fails, or renders null when the template
 * was compiled with FERRY_TEMPLATE_MISSING_NULL. */
static int missing(struct render *r, const struct part *part, const char *why)
{
    if (r->t->missing == FERRY_TEMPLATE_MISSING_NULL)
        return emit_null(r, part);
    return fail(r, part, why);
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int add_url_encoded(struct ferry_buf *out, const char *p, size_t n)
{
    char esc[3] = {'%', 0, 0};
    size_t i = 0, run;
    int result = 0;

    while (!result && i < n) {
        for (run = 0; i + run < n && is_unreserved((unsigned char)p[i + run]); run++)
            ;
        if (run) {
            result = ferry_buf_add(out, p + i, run);
            i += run;
            continue;
        }
        esc[1] = ferry_hex_upper((unsigned char)p[i] >> 4);
        esc[2] = ferry_hex_upper((unsigned char)p[i]);
        result = ferry_buf_add(out, esc, 3);
        i++;
    }
    return result;
}

/* Appends p[0..n) with the five characters HTML gives meaning to as character references. */
static int add_html_escaped(struct ferry_buf *out, const char *p, size_t n)
{
    size_t start = 0;
    int result = 0;

    for (size_t i = 0; i < n && !result; i++) {
        const char *ref = p[i] == '&'    ? "&amp;"
                          : p[i] == '<'  ? "&lt;"
                          : p[i] == '>'  ? "&gt;"
                          : p[i] == '"'  ? "&quot;"
                          : p[i] == '\'' ? "&#39;"
                                         : NULL;
        if (!ref)
            continue;
        result = ferry_buf_add(out, p + start, i - start) || ferry_buf_adds(out, ref);
        start = i + 1;
    }
    return result || ferry_buf_add(out, p + start, n - start);
}

/* Fails part when p[0..n) holds a byte a header value cannot carry (template.h). CR, LF and
 * NUL keep the reason they always had, which dead-letter readers may match on. */
static int check_header_value(struct render *r, const struct part *part, const char *p, size_t n)
{
    size_t at = ferry_header_value_unsafe(p, n);
    unsigned char c = at < n ? (unsigned char)p[at] : 0;
    char why[96];

    if (at == n)
        return FERRY_TEMPLATE_OK;
    if (c == '\r' || c == '\n' || c == '\0')
        return fail(r, part, "value contains CR, LF or NUL, which a header cannot carry");
    snprintf(why, sizeof(why), "value contains control byte 0x%02X, which a header cannot carry",
             c);
    return fail(r, part, why);
}

/* Appends text a variable produced, encoded for the template's mode. */
static int emit(struct render *r, const struct part *part, const char *p, size_t n)
{
    int result;

    switch (r->t->mode) {
    case FERRY_TEMPLATE_URL:
        result = add_url_encoded(r->out, p, n);
        break;
    case FERRY_TEMPLATE_HEADER:
        result = check_header_value(r, part, p, n);
        if (result)
            return result;
        result = ferry_buf_add(r->out, p, n);
        break;
    case FERRY_TEMPLATE_HTML:
        result = add_html_escaped(r->out, p, n);
        break;
    case FERRY_TEMPLATE_JSON:
        result = part->in_string ? ferry_json_add_escaped(r->out, p, n)
                                 : ferry_json_add_string(r->out, p, n);
        break;
    default:
        result = ferry_buf_add(r->out, p, n);
        break;
    }
    return result ? too_big(r) : FERRY_TEMPLATE_OK;
}

static int emit_int(struct render *r, int64_t v)
{
    /* Digits and '-' need no encoding in any mode. */
    return ferry_json_add_int(r->out, v) ? too_big(r) : FERRY_TEMPLATE_OK;
}

static int render_header(struct render *r, const struct part *part)
{
    const char *name = part->var + strlen("header.");
    char why[300];
    const void *v = NULL;
    size_t n = 0;
    rd_kafka_headers_t *headers = ferry_record_headers(r->rec);

    if (!headers || rd_kafka_header_get_last(headers, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, sizeof(why), "record has no header '%s'", name);
        return missing(r, part, why);
    }
    return v ? emit(r, part, v, n) : emit_null(r, part);
}

/* Fails part for a record value that is not JSON, or has a number out of range, at offset. */
static int not_json(struct render *r, const struct part *part, const char *reason, size_t offset)
{
    char why[300];

    snprintf(why, sizeof(why), "record value is not JSON: %s (at byte %zu)", reason, offset);
    return fail(r, part, why);
}

/* Checks the record value as JSON unless an earlier part already did. */
static int check_value(struct render *r, const struct part *part)
{
    struct ferry_json_error err;

    if (r->checked)
        return FERRY_TEMPLATE_OK;
    if (!r->rec->value)
        return missing(r, part, "record has no value (tombstone)");
    if (ferry_json_check(r->rec->value, r->rec->value_len, &err))
        return not_json(r, part, err.why, err.offset);
    r->checked = 1;
    return FERRY_TEMPLATE_OK;
}

/* Returns 1 when what a path found goes straight into out: in body mode, which encodes nothing,
 * and as a whole JSON value, which is written in normal form. */
static int direct(const struct render *r, const struct part *part)
{
    return r->t->mode == FERRY_TEMPLATE_BODY || as_value(r, part);
}

/* Where a JSON writer puts what a path found: out when direct(), else the scratch buffer that
 * emit_written() encodes from. */
static struct ferry_buf *write_target(struct render *r, const struct part *part)
{
    if (direct(r, part))
        return r->out;
    ferry_buf_reset(&r->scratch);
    return &r->scratch;
}

/* Finishes what a JSON writer started into write_target(): wrote is its result, err says where
 * a number was out of range (from the start of span). */
static int emit_written(struct render *r, const struct part *part, int wrote, const char *span,
                        const struct ferry_json_error *err)
{
    if (wrote == FERRY_JSON_WRITE_ROOM)
        return too_big(r);
    if (wrote)
        return not_json(r, part, err->why, (size_t)(span - r->rec->value) + err->offset);
    if (direct(r, part) || !r->scratch.len)
        return FERRY_TEMPLATE_OK;
    return emit(r, part, r->scratch.data, r->scratch.len);
}

/* Appends what a value path found, as template.h describes. */
static int emit_found(struct render *r, const struct part *part, const struct ferry_json_found *f)
{
    struct ferry_json_error err = {"invalid string", 0};
    int wrote;

    if (as_value(r, part))
        return emit_written(r, part, ferry_json_add_normalized(r->out, f->span, f->len, &err),
                            f->span, &err);
    switch (f->type) {
    case FERRY_JSON_NULL:
        return FERRY_TEMPLATE_OK;
    case FERRY_JSON_STRING:
        if (!memchr(f->span, '\\', f->len))
            return emit(r, part, f->span + 1, f->len - 2);
        wrote = ferry_json_add_decoded(write_target(r, part), f->span, f->len);
        break;
    default:
        wrote = ferry_json_add_normalized(write_target(r, part), f->span, f->len, &err);
        break;
    }
    return emit_written(r, part, wrote, f->span, &err);
}

static int render_path(struct render *r, const struct part *part)
{
    struct ferry_json_found found;
    char why[300];
    int result = check_value(r, part);

    if (result || !r->rec->value)
        return result;
    if (ferry_json_find(r->rec->value, r->rec->value_len, part->path, &found) == 1)
        return emit_found(r, part, &found);
    /* Name the path up to the segment that found nothing, as written in the template. */
    snprintf(why, sizeof(why), "record value has nothing at '%.*s'", (int)found.path_len,
             part->path);
    return missing(r, part, why);
}

/* Appends the whole record value as one JSON value, in normal form; a value that is not JSON
 * fails. */
static int render_value(struct render *r, const struct part *part)
{
    struct ferry_json_error err = {"invalid value", 0};
    int result = check_value(r, part);

    if (result)
        return result;
    return emit_written(r, part,
                        ferry_json_add_normalized(r->out, r->rec->value, r->rec->value_len, &err),
                        r->rec->value, &err);
}

static int render_part(struct render *r, const struct part *part)
{
    const struct ferry_record *rec = r->rec;

    switch (part->kind) {
    case PART_TEXT:
        return ferry_buf_add(r->out, part->text, part->len) ? too_big(r) : FERRY_TEMPLATE_OK;
    case PART_TOPIC:
        return emit(r, part, rec->topic, strlen(rec->topic));
    case PART_PARTITION:
        return emit_int(r, rec->partition);
    case PART_OFFSET:
        return emit_int(r, rec->offset);
    case PART_TIMESTAMP:
        return rec->timestamp_ms == -1 ? emit_null(r, part) : emit_int(r, rec->timestamp_ms);
    case PART_KEY:
        return rec->key ? emit(r, part, rec->key, rec->key_len) : emit_null(r, part);
    case PART_VALUE:
        if (!rec->value)
            return emit_null(r, part);
        return as_value(r, part) ? render_value(r, part)
                                 : emit(r, part, rec->value, rec->value_len);
    case PART_HEADER:
        return render_header(r, part);
    default:
        return render_path(r, part);
    }
}

int ferry_template_render(const ferry_template *t, const struct ferry_record *rec,
                          struct ferry_buf *out, char *errstr, size_t errstr_size)
{
    struct render r = {
        .t = t, .rec = rec, .out = out, .errstr = errstr, .errstr_size = errstr_size};
    const struct ferry_buf saved = *out;
    size_t i;
    int result = FERRY_TEMPLATE_OK;

    ferry_buf_init(&r.scratch, out->cap);
    for (i = 0; !result && i < t->nparts; i++)
        result = render_part(&r, &t->parts[i]);
    ferry_buf_release(&r.scratch);
    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}

void ferry_template_config_check(struct ferry_config *cfg, const char *text,
                                 enum ferry_template_mode mode, const char *path)
{
    char err[256];
    ferry_template *t;

    if (!text)
        return;
    t = ferry_template_new(text, mode, err, sizeof(err));
    if (!t || (mode == FERRY_TEMPLATE_URL && (ferry_template_check_origin(t, err, sizeof(err)) ||
                                              ferry_template_check_http_url(t, err, sizeof(err)))))
        ferry_config_error(cfg, path, "%s", err);
    ferry_template_destroy(t);
}
