/*
 * grpc_wire.c - gRPC message frames, grpc-timeout, the status trailers and their outcomes.
 *
 * The HTTP-to-gRPC mapping for responses that are not HTTP 200 is the one in gRPC's
 * "http-grpc-status-mapping" document, so that a proxy's 503 retries like UNAVAILABLE.
 */
#include "route/grpc_wire.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/httpd.h"

static const char *const code_names[FERRY_GRPC_CODE_COUNT] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

struct ferry_grpc_rules_s {
    enum ferry_outcome outcome[FERRY_GRPC_CODE_COUNT];
};

void ferry_grpc_frame_header(char *out, size_t len)
{
    out[0] = 0;
    out[1] = (char)(unsigned char)(len >> 24);
    out[2] = (char)(unsigned char)(len >> 16);
    out[3] = (char)(unsigned char)(len >> 8);
    out[4] = (char)(unsigned char)len;
}

int ferry_grpc_frame_add(struct ferry_buf *out, const void *msg, size_t len)
{
    char h[FERRY_GRPC_FRAME_HEADER];
    struct ferry_buf mark = *out;
    if (len > UINT32_MAX)
        return -1;
    ferry_grpc_frame_header(h, len);
    if (ferry_buf_add(out, h, sizeof(h)) || ferry_buf_add(out, msg, len)) {
        ferry_buf_rewind(out, &mark);
        return -1;
    }
    return 0;
}

int ferry_grpc_frame_next(const void *data, size_t len, size_t *msg_off, size_t *msg_len)
{
    const unsigned char *p = data;
    size_t n;
    if (len < FERRY_GRPC_FRAME_HEADER)
        return 1;
    if (p[0] != 0)
        return -1;
    n = ((size_t)p[1] << 24) | ((size_t)p[2] << 16) | ((size_t)p[3] << 8) | p[4];
    if (len - FERRY_GRPC_FRAME_HEADER < n)
        return 1;
    *msg_off = FERRY_GRPC_FRAME_HEADER;
    *msg_len = n;
    return 0;
}

void ferry_grpc_timeout_format(long ms, char *out, size_t size)
{
    static const struct {
        char unit;
        long per;
    } units[] = {{'m', 1}, {'S', 1000}, {'M', 60000}, {'H', 3600000}};
    if (ms < 0)
        ms = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* round up so the server never gets less time than the route allows */
        long n = (ms + units[i].per - 1) / units[i].per;
        if (n <= 99999999 || i + 1 == sizeof(units) / sizeof(units[0])) {
            snprintf(out, size, "%ld%c", n > 99999999 ? 99999999 : n, units[i].unit);
            return;
        }
    }
}

const char *ferry_grpc_code_name(int code)
{
    if (code < 0 || code >= FERRY_GRPC_CODE_COUNT)
        return "UNKNOWN";
    return code_names[code];
}

int ferry_grpc_code_parse(const char *s, int *code)
{
    char *end;
    long n;
    for (int i = 0; i < FERRY_GRPC_CODE_COUNT; i++) {
        if (strcasecmp(s, code_names[i]) == 0) {
            *code = i;
            return 0;
        }
    }
    errno = 0;
    n = strtol(s, &end, 10);
    if (!*s || *end || errno || n < 0 || n >= FERRY_GRPC_CODE_COUNT)
        return -1;
    *code = (int)n;
    return 0;
}

void ferry_grpc_status_reset(struct ferry_grpc_status *st)
{
    st->has_status = 0;
    st->code = FERRY_GRPC_UNKNOWN;
    st->message[0] = '\0';
}

/* Returns the value of header `name` in line[0..len) with blanks trimmed, or NULL. */
static const char *header_value(const char *line, size_t len, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *v, *end = line + len;
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    v = line + n + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    *vlen = (size_t)(end - v);
    return v;
}

static void set_code(struct ferry_grpc_status *st, const char *v, size_t n)
{
    char digits[8];
    char *end;
    long code;
    if (n == 0 || n >= sizeof(digits))
        return;
    memcpy(digits, v, n);
    digits[n] = '\0';
    code = strtol(digits, &end, 10);
    if (*end || code < 0)
        return;
    st->has_status = 1;
    st->code = code < FERRY_GRPC_CODE_COUNT ? (int)code : FERRY_GRPC_UNKNOWN;
}

/* grpc-message is percent-encoded; a value that does not decode is kept as sent, as the
 * spec asks of clients. */
static void set_message(struct ferry_grpc_status *st, const char *v, size_t n)
{
    size_t out_len;
    if (n >= sizeof(st->message))
        n = sizeof(st->message) - 1;
    if (ferry_http_percent_decode(v, n, st->message, &out_len) != 0) {
        memcpy(st->message, v, n);
        out_len = n;
    }
    st->message[out_len] = '\0';
}

void ferry_grpc_status_header(struct ferry_grpc_status *st, const char *line, size_t len)
{
    size_t n;
    const char *v = header_value(line, len, "grpc-status", &n);
    if (v) {
        set_code(st, v, n);
        return;
    }
    v = header_value(line, len, "grpc-message", &n);
    if (v)
        set_message(st, v, n);
}

static int code_from_http(long http_status)
{
    switch (http_status) {
    case 400:
        return FERRY_GRPC_INTERNAL;
    case 401:
        return FERRY_GRPC_UNAUTHENTICATED;
    case 403:
        return FERRY_GRPC_PERMISSION_DENIED;
    case 404:
        return FERRY_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return FERRY_GRPC_UNAVAILABLE;
    default:
        return FERRY_GRPC_UNKNOWN;
    }
}

int ferry_grpc_status_resolve(struct ferry_grpc_status *st, long http_status)
{
    if (http_status != 200) {
        st->code = code_from_http(http_status);
        if (!st->message[0])
            snprintf(st->message, sizeof(st->message), "HTTP status %ld", http_status);
        return st->code;
    }
    if (!st->has_status) {
        st->code = FERRY_GRPC_INTERNAL;
        snprintf(st->message, sizeof(st->message), "response without grpc-status");
    }
    return st->code;
}

ferry_grpc_rules *ferry_grpc_rules_new(void)
{
    ferry_grpc_rules *rules = malloc(sizeof(*rules));
    if (!rules)
        return NULL;
    for (int i = 0; i < FERRY_GRPC_CODE_COUNT; i++)
        rules->outcome[i] = FERRY_OUTCOME_DEAD_LETTER;
    rules->outcome[FERRY_GRPC_OK] = FERRY_OUTCOME_SUCCESS;
    rules->outcome[FERRY_GRPC_UNAVAILABLE] = FERRY_OUTCOME_RETRY;
    rules->outcome[FERRY_GRPC_RESOURCE_EXHAUSTED] = FERRY_OUTCOME_RETRY;
    rules->outcome[FERRY_GRPC_DEADLINE_EXCEEDED] = FERRY_OUTCOME_RETRY;
    rules->outcome[FERRY_GRPC_ABORTED] = FERRY_OUTCOME_RETRY;
    return rules;
}

void ferry_grpc_rules_destroy(ferry_grpc_rules *rules)
{
    free(rules);
}

int ferry_grpc_rules_set(ferry_grpc_rules *rules, enum ferry_outcome outcome, const char *pattern,
                         char *errstr, size_t errstr_size)
{
    int code;
    if (ferry_grpc_code_parse(pattern, &code)) {
        snprintf(errstr, errstr_size,
                 "'%s': expected a gRPC status name (UNAVAILABLE) or number (0-16)", pattern);
        return -1;
    }
    rules->outcome[code] = outcome;
    return 0;
}

enum ferry_outcome ferry_grpc_rules_classify(const ferry_grpc_rules *rules, int code)
{
    if (code < 0 || code >= FERRY_GRPC_CODE_COUNT)
        code = FERRY_GRPC_UNKNOWN;
    return rules->outcome[code];
}

enum ferry_outcome ferry_grpc_rules_outcome(const void *rules, long code)
{
    return ferry_grpc_rules_classify(
        rules, code < 0 || code >= FERRY_GRPC_CODE_COUNT ? FERRY_GRPC_UNKNOWN : (int)code);
}
