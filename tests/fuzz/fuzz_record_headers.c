/*
 * fuzz_record_headers.c - libFuzzer harness for what ferry reads from a record's Kafka headers,
 * which whoever produced the record chose: the HTTP request a route builds from the record
 * (route/request.c: forward_headers, a header template, the traceparent), the envelope body
 * (route/body.c), and the metadata of a record parked on a retry topic (route/retry_topic.c).
 *
 * Input: the first byte picks the route (forward_headers on or off, a header template copying
 * header x-h or none) and whether an ndjson batch of envelopes is made too; then
 * headers, each as a name length byte (mod 32), the name, a value length byte (0xff: a null
 * value, else mod 128) and the value, until the input ends or FUZZ_HEADERS_MAX are read; what
 * is left is the record's key. A request's header lines must each be one "Name: value" line
 * with a token name, no control bytes in the value, never a name only the sender may set and
 * no name twice; the URL is the configured one; the envelope is JSON whose "headers" has one
 * member per distinct name (when the names are UTF-8); retry metadata that reads back is written
 * and read again the same.
 */
#include <stdio.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "core/buf.h"
#include "core/json.h"
#include "route/body.h"
#include "route/dispatch.h"
#include "route/request.h"
#include "route/retry_topic.h"
#include "fuzz.h"

#define FUZZ_HEADERS_MAX 16
#define FUZZ_URL "http://127.0.0.1:9/orders"
#define FUZZ_BODY_MAX (1u << 20)

#define FORWARD_ALL 1 /* forward_headers: true */
#define COPY_HEADER 2 /* target.headers has X-Copied: ${header.x-h} */
#define NDJSON 4      /* also two records in an ndjson batch */
#define FUZZ_ROUTES 4 /* FORWARD_ALL | COPY_HEADER */

static struct ferry_cfg_kv fuzz_template_headers[] = {{"X-Copied", "${header.x-h}"}};
static struct ferry_route_config fuzz_routes[FUZZ_ROUTES];
static ferry_request_builder *fuzz_builders[FUZZ_ROUTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    for (int i = 0; i < FUZZ_ROUTES; i++) {
        struct ferry_route_config *c = &fuzz_routes[i];
        c->name = "fuzz";
        c->target.url = FUZZ_URL;
        c->target.forward_headers = (i & FORWARD_ALL) != 0;
        c->target.headers.items = fuzz_template_headers;
        c->target.headers.count = (i & COPY_HEADER) ? 1 : 0;
        c->body.mode = FERRY_BODY_ENVELOPE;
        c->body.missing = FERRY_TEMPLATE_MISSING_NULL;
        c->batch.max_records = 1;
        c->batch.max_bytes = FUZZ_BODY_MAX;
        fuzz_builders[i] = ferry_request_builder_new(c, err, sizeof(err));
        if (!fuzz_builders[i]) {
            fprintf(stderr, "fuzz_record_headers: %s\n", err);
            abort();
        }
    }
    return 0;
}

/* Reads the headers of the input into h; returns how many bytes they took. */
static size_t fuzz_read_headers(const uint8_t *p, size_t n, rd_kafka_headers_t *h)
{
    size_t at = 0;

    for (int i = 0; i < FUZZ_HEADERS_MAX && at + 2 <= n; i++) {
        size_t nlen = p[at] % 32, vlen;
        const uint8_t *name = p + at + 1;
        if (at + 1 + nlen + 1 > n)
            break;
        at += 1 + nlen;
        vlen = p[at] == 0xff ? 0 : p[at] % 128;
        if (at + 1 + vlen > n)
            break;
        rd_kafka_header_add(h, (const char *)name, (ssize_t)nlen, p[at] == 0xff ? NULL : p + at + 1,
                            (ssize_t)vlen);
        at += 1 + vlen;
    }
    return at;
}

/* ---- the HTTP request ---- */

/* A line ("name: value", or "name;" for an empty value) of a header only the sender sets. */
static int is_sender_only(const char *line)
{
    static const char *const names[] = {
        "Connection",        "Content-Length",   "Expect", "Host",
        "Keep-Alive",        "Proxy-Connection", "TE",     "Trailer",
        "Transfer-Encoding", "Upgrade",          NULL};
    size_t len = strcspn(line, ":;");

    for (const char *const *n = names; *n; n++)
        if (strlen(*n) == len && strncasecmp(line, *n, len) == 0)
            return 1;
    return 0;
}

/* One line: a token name, then ": " and a value without control bytes, or ";" alone (libcurl's
 * way to send a header with an empty value); a configured header template's value may hold
 * any but CR and LF (template.h, HEADER mode). */
static int line_is_safe(const char *line, int templated)
{
    const char *colon = line + strcspn(line, ":;");

    if (!*colon || colon == line || (*colon == ';' ? colon[1] != '\0' : colon[1] != ' '))
        return 0;
    for (const char *c = line; c < colon; c++)
        if (*c <= 0x20 || *c >= 0x7f || strchr("()<>@,;\\\"/[]?={}", *c))
            return 0;
    if (*colon == ';')
        return 1;
    for (const unsigned char *c = (const unsigned char *)colon + 2; *c; c++)
        if (*c == '\r' || *c == '\n' || (!templated && ((*c < 0x20 && *c != '\t') || *c == 0x7f)))
            return 0;
    return 1;
}

static void fuzz_check_lines(const struct curl_slist *list, unsigned mode)
{
    for (const struct curl_slist *a = list; a; a = a->next) {
        size_t name_len = strcspn(a->data, ":;");
        int templated = (mode & COPY_HEADER) && strncmp(a->data, "X-Copied: ", 10) == 0;
        if (!line_is_safe(a->data, templated) || is_sender_only(a->data))
            abort(); /* a record header could frame or redirect the request */
        for (const struct curl_slist *b = a->next; b; b = b->next)
            if (strncasecmp(a->data, b->data, name_len) == 0 &&
                (b->data[name_len] == ':' || b->data[name_len] == ';'))
                abort(); /* a name sent twice */
    }
}

static void fuzz_reject(void *arg, struct ferry_dispatch_rec *rec, const char *why)
{
    (void)rec;
    (void)why;
    *(int *)arg = 1;
}

static void fuzz_request(unsigned mode, struct ferry_dispatch_rec *rec)
{
    ferry_request_builder *b = fuzz_builders[mode % FUZZ_ROUTES];
    struct ferry_request *req = ferry_request_get(b);
    size_t cut = 0;
    int rejected = 0;

    if (!req)
        return;
    req->recs[0] = rec;
    req->n = 1;
    if (ferry_request_build(b, req, &cut, fuzz_reject, &rejected) == 0) {
        if (strcmp(req->call.url, FUZZ_URL) != 0)
            abort();
        fuzz_check_lines(req->call.headers, mode);
        if (!ferry_json_is_valid(req->call.body, req->call.body_len))
            abort(); /* an envelope that is not JSON */
    } else if (!rejected) {
        abort(); /* refused without telling why */
    }
    ferry_request_put(b, req);
}

/* ---- the envelope ---- */

/* The number of distinct header names; *utf8 is cleared when a name is not UTF-8: the envelope
 * writes such names with U+FFFD, so two of them may become one (that is not checked). */
static size_t distinct_names(const rd_kafka_headers_t *h, int *utf8)
{
    const char *name, *other;
    const void *v;
    size_t n, count = 0;

    *utf8 = 1;
    for (size_t i = 0; !rd_kafka_header_get_all(h, i, &name, &v, &n); i++) {
        size_t j = i + 1;
        *utf8 &= ferry_json_utf8_is_valid(name, strlen(name));
        while (!rd_kafka_header_get_all(h, j, &other, &v, &n) && strcmp(name, other) != 0)
            j++;
        count += rd_kafka_header_get_all(h, j, &other, &v, &n) != 0; /* the last of its name */
    }
    return count;
}

/* Two records in an ndjson batch: two lines, each an envelope with every distinct name once. */
static void fuzz_envelopes(const struct ferry_record *rec)
{
    const struct ferry_record *recs[2] = {rec, rec};
    struct ferry_body_spec spec = {FERRY_BODY_ENVELOPE, NULL, FERRY_BODY_NDJSON, NULL, 0};
    struct ferry_buf out;
    char why[256];
    const char *line;
    int utf8;

    ferry_buf_init(&out, FUZZ_BODY_MAX);
    if (ferry_body_render(&spec, recs, 2, &out, NULL, why, sizeof(why)) != FERRY_BODY_OK)
        abort();
    line = out.data;
    for (int i = 0; i < 2; i++) {
        const char *end = memchr(line, '\n', out.len - (size_t)(line - out.data));
        size_t names = distinct_names(rec->headers, &utf8);
        json_t *doc;
        if (!end || !ferry_json_is_valid(line, (size_t)(end - line)))
            abort();
        /* jansson refuses numbers it cannot hold, which a key or value may be: not checked */
        doc =
            json_loadb(line, (size_t)(end - line), JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
        if (doc && utf8 && json_object_size(json_object_get(doc, "headers")) != names)
            abort();
        json_decref(doc);
        line = end + 1;
    }
    if (line != out.data + out.len)
        abort(); /* more than two lines */
    ferry_buf_release(&out);
}

/* ---- retry metadata ---- */

static void fuzz_retry_meta(const rd_kafka_headers_t *h)
{
    struct ferry_retry_meta m, back;
    rd_kafka_headers_t *built;
    char why[256];

    if (ferry_retry_meta_read(h, &m, why, sizeof(why)) != 1)
        return;
    built = ferry_retry_headers_build(h, &m, "fuzz");
    if (!built)
        return;
    if (ferry_retry_meta_read(built, &back, why, sizeof(why)) != 1 || back.stage != m.stage ||
        back.attempts != m.attempts || back.due_ms != m.due_ms || strcmp(back.topic, m.topic) ||
        back.partition != m.partition || back.offset != m.offset ||
        back.timestamp_ms != m.timestamp_ms || strcmp(back.error, m.error))
        abort(); /* metadata that does not survive being parked again */
    rd_kafka_headers_destroy(built);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_dispatch_rec rec = {0};
    rd_kafka_headers_t *h;
    size_t used;
    char *key;

    if (size < 1)
        return 0;
    h = rd_kafka_headers_new(FUZZ_HEADERS_MAX);
    used = fuzz_read_headers(data + 1, size - 1, h);
    key = fuzz_strndup(data + 1 + used, size - 1 - used);
    if (!key) {
        rd_kafka_headers_destroy(h);
        return 0;
    }
    rec.view = (struct ferry_record){"orders", 3, 42, 1700000000123, key, size - 1 - used,
                                     "{}",     2, h,  NULL};
    fuzz_request(data[0], &rec);
    if (data[0] & NDJSON)
        fuzz_envelopes(&rec.view);
    fuzz_retry_meta(h);
    rd_kafka_headers_destroy(h);
    free(key);
    return 0;
}
