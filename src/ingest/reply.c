/*
 * reply.c - every answer ingest gives goes through here, so that each is counted by endpoint
 * and status and carries the headers its status calls for (see ingest_int.h).
 */
#include "ingest/ingest_int.h"

#include <stdarg.h>
#include <stdio.h>

#define REPLY_MESSAGE_MAX 1024
#define REPLY_RETRY_AFTER "1"

static void add_status_headers(ferry_http_req *req, int status)
{
    if (status == 429 || status == 503)
        ferry_http_add_header(req, "Retry-After", REPLY_RETRY_AFTER);
    else if (status == 401)
        ferry_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"ferry\"");
}

void ferry_ingest_reply(struct ingest_endpoint *ep, ferry_http_req *req, int status,
                        const char *content_type, const char *body, size_t len)
{
    ferry_ingest_metrics_status(&ep->m, status);
    add_status_headers(req, status);
    ferry_http_respond(req, status, content_type, body, len);
}

void ferry_ingest_reply_error(struct ingest_endpoint *ep, ferry_http_req *req, int status, int code,
                              int reject, const char *fmt, ...)
{
    char msg[REPLY_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ferry_ingest_metrics_status(&ep->m, status);
    if (reject >= 0 && reject < FERRY_REJECT_COUNT)
        ferry_counter_add(ep->ing->rejects.reason[reject], 1);
    add_status_headers(req, status);
    ferry_http_respond_error(req, status, code, "%s", msg);
}
