/*
 * grpc_target.c - a route's gRPC target: URL, header lines and framed bodies (see
 * grpc_target.h).
 */
#include "route/grpc_target.h"
#include "core/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/grpc_proto.h"
#include "route/grpc_wire.h"

#define GRPC_URL_MAX 2048
#define GRPC_TIMEOUT_HEADER_MAX 32

struct ferry_grpc_target_s {
    char url[GRPC_URL_MAX];
    int h2c;
    int streaming;
    ferry_grpc_proto *proto; /* NULL without a descriptor set */
    const char *input_type;  /* the proto's; NULL: payloads are sent as they are */
    char timeout[GRPC_TIMEOUT_HEADER_MAX];
};

int ferry_grpc_target_check_url(const char *url, int *h2c, char *errstr, size_t errstr_size)
{
    const char *host;

    if (strncmp(url, "https://", 8) == 0) {
        *h2c = 0;
        host = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        *h2c = 1;
        host = url + 7;
    } else {
        snprintf(errstr, errstr_size, "url '%s': expected https://host:port or http://host:port",
                 url);
        return -1;
    }
    if (!*host || strchr(host, '/') || strchr(host, '?') || strchr(host, '$')) {
        snprintf(errstr, errstr_size, "url '%s': expected a host and port, without a path", url);
        return -1;
    }
    return ferry_url_parses(url, errstr, errstr_size);
}

/* Method names are dotted identifiers, "package.Service/Method". */
int ferry_grpc_target_check_method(const char *method, char *errstr, size_t errstr_size)
{
    const char *slash = strchr(method, '/');

    if (slash && slash != method && slash[1] && !strchr(slash + 1, '/') &&
        strspn(method, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./") ==
            strlen(method))
        return 0;
    snprintf(errstr, errstr_size, "method '%s': expected package.Service/Method", method);
    return -1;
}

static int load_schema(ferry_grpc_target *t, const struct ferry_grpc_target_options *o,
                       char *errstr, size_t errstr_size)
{
    char err[512];
    if (!o->descriptor_set) {
        snprintf(errstr, errstr_size, "`payload: json` needs a descriptor_set");
        return -1;
    }
    t->proto = ferry_grpc_proto_load(o->descriptor_set, err, sizeof(err));
    if (!t->proto || ferry_grpc_proto_method(t->proto, o->method, &t->input_type, &t->streaming,
                                             err, sizeof(err))) {
        snprintf(errstr, errstr_size, "descriptor_set: %s", err);
        return -1;
    }
    return 0;
}

ferry_grpc_target *ferry_grpc_target_new(const struct ferry_grpc_target_options *o, char *errstr,
                                         size_t errstr_size)
{
    ferry_grpc_target *t = calloc(1, sizeof(*t));
    int result = -1;
    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    if (!o->url || !o->method) {
        snprintf(errstr, errstr_size, "needs a url and a method");
        goto out;
    }
    if (ferry_grpc_target_check_url(o->url, &t->h2c, errstr, errstr_size) ||
        ferry_grpc_target_check_method(o->method, errstr, errstr_size))
        goto out;
    if ((o->payload_json || o->descriptor_set) && load_schema(t, o, errstr, errstr_size))
        goto out;
    if (!o->payload_json)
        t->input_type = NULL; /* the set only named the method: values go as they are */
    if ((size_t)snprintf(t->url, sizeof(t->url), "%s/%s", o->url, o->method) >= sizeof(t->url)) {
        snprintf(errstr, errstr_size, "url and method longer than %d bytes", GRPC_URL_MAX - 1);
        goto out;
    }
    if (o->timeout_ms > 0) {
        char value[16];
        ferry_grpc_timeout_format(o->timeout_ms, value, sizeof(value));
        snprintf(t->timeout, sizeof(t->timeout), "grpc-timeout: %s", value);
    }
    result = 0;
out:
    if (result) {
        ferry_grpc_target_destroy(t);
        return NULL;
    }
    return t;
}

void ferry_grpc_target_destroy(ferry_grpc_target *t)
{
    if (!t)
        return;
    ferry_grpc_proto_destroy(t->proto);
    free(t);
}

const char *ferry_grpc_target_url(const ferry_grpc_target *t)
{
    return t->url;
}

int ferry_grpc_target_h2c(const ferry_grpc_target *t)
{
    return t->h2c;
}

int ferry_grpc_target_streaming(const ferry_grpc_target *t)
{
    return t->streaming;
}

size_t ferry_grpc_target_headers(const ferry_grpc_target *t, const char **lines)
{
    size_t n = 0;
    lines[n++] = "Content-Type: application/grpc";
    lines[n++] = "TE: trailers";
    if (t->timeout[0])
        lines[n++] = t->timeout;
    return n;
}

/* The body reached its cap: says so in errstr. */
static int body_full(const struct ferry_buf *body, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "request body larger than %zu bytes", body->cap);
    return FERRY_GRPC_TARGET_FULL;
}

int ferry_grpc_target_add(const ferry_grpc_target *t, const char *payload, size_t len,
                          struct ferry_buf *body, char *errstr, size_t errstr_size)
{
    struct ferry_buf mark = *body;
    size_t start;
    int rc;

    if (!t->input_type)
        return ferry_grpc_frame_add(body, payload, len) ? body_full(body, errstr, errstr_size) : 0;
    /* encode in place after room for the frame header, then fill the header in */
    if (ferry_buf_add(body, "\0\0\0\0\0", FERRY_GRPC_FRAME_HEADER))
        return body_full(body, errstr, errstr_size);
    start = body->len;
    rc = ferry_grpc_proto_encode(t->proto, t->input_type, payload, len, body, errstr, errstr_size);
    if (rc) {
        ferry_buf_rewind(body, &mark);
        return rc == FERRY_GRPC_PROTO_FULL ? body_full(body, errstr, errstr_size) : -1;
    }
    ferry_grpc_frame_header(body->data + start - FERRY_GRPC_FRAME_HEADER, body->len - start);
    return 0;
}
