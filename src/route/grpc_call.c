/*
 * grpc_call.c - the sender's hooks for gRPC calls (see grpc_call.h).
 *
 * The header callback sees every header line of the answer, trailers included (libcurl hands
 * HTTP/2 trailers to it like headers), so one parser finds grpc-status whether it came in the
 * trailers or in a trailers-only answer. The sender's body callback keeps the response as for
 * any call.
 */
#include "route/grpc_call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ferry_grpc_call {
    int h2c;
    long http_status; /* of the last answer; 0 when none came */
    struct ferry_grpc_status status;
};

struct ferry_grpc_call *ferry_grpc_call_new(int h2c)
{
    struct ferry_grpc_call *gc = calloc(1, sizeof(*gc));

    if (!gc)
        return NULL;
    gc->h2c = h2c;
    ferry_grpc_status_reset(&gc->status);
    return gc;
}

void ferry_grpc_call_destroy(struct ferry_grpc_call *gc)
{
    free(gc);
}

const struct ferry_grpc_status *ferry_grpc_call_status(const struct ferry_grpc_call *gc)
{
    return &gc->status;
}

long ferry_grpc_call_http_status(const struct ferry_grpc_call *gc)
{
    return gc->http_status;
}

/* ---- the transfer's thread ---- */

static size_t on_header(char *data, size_t size, size_t n, void *userp)
{
    struct ferry_grpc_call *gc = userp;

    ferry_grpc_status_header(&gc->status, data, size * n);
    return size * n;
}

/* h2c: a fresh connection, closed after the call (curl issue 10634); TLS: wait for a pending
 * connection to say it multiplexes rather than open another. */
static CURLcode set_connection(CURL *e, const struct ferry_grpc_call *gc)
{
    long h2c = gc->h2c ? 1L : 0L;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                                   h2c ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                                       : (long)CURL_HTTP_VERSION_2TLS);

    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, h2c);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_FORBID_REUSE, h2c);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L - h2c);
    return rc;
}

static CURLcode grpc_start(CURL *e, struct ferry_http_call *call)
{
    struct ferry_grpc_call *gc = call->proto;
    CURLcode rc = set_connection(e, gc);

    ferry_grpc_status_reset(&gc->status);
    gc->http_status = 0;
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body ? call->body : "");
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_URL, call->url);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, gc);
    return rc;
}

/* Nonzero when an answer without grpc-status came over HTTP/1.x: over TLS, libcurl falls back
 * to HTTP/1.1 when the server (a proxy in front, say) does not offer HTTP/2, and such an answer
 * cannot carry trailers. gRPC's own clients fail the connection then, and so does ferry. */
static int answered_without_http2(CURL *e, const struct ferry_grpc_status *st)
{
    long version = CURL_HTTP_VERSION_2_0;

    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    return !st->has_status && version != CURL_HTTP_VERSION_2_0;
}

/* A grpc-status that arrived is the answer even when the stream then failed (a server may
 * reset the stream right after its trailers); without one, a failed transfer, or an answer
 * over HTTP/1.x, is a transport error. */
static void grpc_finish(CURL *e, CURLcode code, const char *errbuf, struct ferry_http_call *call)
{
    struct ferry_grpc_call *gc = call->proto;
    struct ferry_grpc_status *st = &gc->status;
    long http = 0;

    if (code != CURLE_OK && !st->has_status) {
        call->transport_error = (int)code;
        snprintf(call->error, sizeof(call->error), "grpc: %s",
                 errbuf[0] ? errbuf : curl_easy_strerror(code));
        return;
    }
    if (answered_without_http2(e, st)) {
        call->transport_error = (int)CURLE_HTTP2;
        snprintf(call->error, sizeof(call->error),
                 "grpc: the server answered over HTTP/1.x; gRPC needs HTTP/2");
        return;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &http);
    gc->http_status = http ? http : 200;
    call->status = ferry_grpc_status_resolve(st, code == CURLE_OK ? http : 200);
    snprintf(call->error, sizeof(call->error), "grpc status %s (%ld)%s%s",
             ferry_grpc_code_name((int)call->status), call->status, st->message[0] ? ": " : "",
             st->message);
}

const struct ferry_sender_protocol ferry_grpc_protocol = {"gRPC", grpc_start, grpc_finish};
