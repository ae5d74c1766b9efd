/*
 * request.h - a route's HTTP requests, built from its records: URL, headers and body.
 *
 * A request carries records of one partition, in the order they are sent, and the HTTP call
 * made of them (or the e-mail, smtp.h, or the gRPC call, grpc_call.h). A route's request
 * builder holds what every one of its requests is made from (the target's compiled URL and
 * header templates, the body template and format, the content type; a gRPC target's parts and
 * metadata templates) and the requests themselves: they are pooled and reused with their
 * buffers, so that a warm route builds requests without allocating.
 *
 * Headers come from three places, and a name is sent once: the configured target.headers
 * first, then ferry's Content-Type and Idempotency-Key unless the config set them, then the
 * record's traceparent (or, with forward_headers on a one-record request, all its headers)
 * unless the request already has that name. Record headers that frame the message or manage
 * the connection are never forwarded.
 *
 * A record that comes back from one of the route's retry topics is sent as the record it is a
 * copy of: templates, bodies, metadata and an e-mail's Date and Message-ID see its original
 * topic, partition, offset and timestamp (ferry.topic, ferry.partition, ferry.offset and
 * ferry.timestamp on the parked copy), and its headers without the ones parking added. The
 * records themselves (recs) keep the coordinates they were consumed at, which the dispatcher
 * commits.
 *
 * What becomes of a request once built (sending, retries, dead letters) is delivery.c's. Used
 * by the route's worker thread only.
 */
#ifndef FERRY_REQUEST_H
#define FERRY_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "core/buf.h"
#include "core/heap.h"
#include "route/dispatch.h"
#include "route/record.h"
#include "route/route_config.h"
#include "route/sender.h"

typedef struct ferry_request_builder ferry_request_builder;
struct ferry_smtp_mail;
struct ferry_grpc_call;
struct ferry_request_origin;

/* A request's header lines: "Name: value" lines in one buffer, each ending in a NUL, and the
 * curl_slist nodes that point at them, both kept with the request. The builder's. */
struct ferry_request_headers {
    struct curl_slist *list; /* the list sent: nodes linked, or NULL */
    struct ferry_buf text;
    size_t *offsets; /* where each line starts in text */
    struct curl_slist *nodes;
    size_t count, slots; /* lines, and room in the two arrays */
};

/* One HTTP request of a route. */
struct ferry_request {
    struct ferry_http_call call;       /* what is sent, and its result; cookie is the request */
    struct ferry_heap_node retry_node; /* in the route's retry queue while waiting to be resent */
    struct ferry_dispatch_rec **recs;  /* the records, room for batch.max_records */
    const struct ferry_record **views; /* what the target sees of them: ferry_request_build() */
    size_t n;
    int attempts;   /* made so far */
    int64_t ticket; /* ferry_breaker_ticket of the attempt under way (0: no breaker) */

    /* the builder's */
    struct ferry_buf url;
    struct ferry_buf body;
    struct ferry_request_headers headers;
    struct ferry_smtp_mail *mail;         /* an e-mail target's envelope (smtp.h), or NULL */
    struct ferry_grpc_call *grpc;         /* a gRPC target's call state (grpc_call.h), or NULL */
    struct ferry_request_origin *origins; /* originals of records from a retry topic (request.c) */
    size_t norigins, origins_room;        /* in use, and room */
    SLIST_ENTRY(ferry_request) free_link; /* in the pool while unused */
    SLIST_ENTRY(ferry_request) all_link;  /* every request the builder made */
};

/* Called for a record that cannot be part of its request, with why (e.g. a template error).
 * The record is out of the request; the callee owns it (dead-letters or abandons it). */
typedef void ferry_request_reject_fn(void *arg, struct ferry_dispatch_rec *rec, const char *why);

/* Compiles the target's templates and body format from cfg, which must outlive the builder.
 * Returns the builder, or NULL with a message in errstr. The caller frees it with
 * ferry_request_builder_destroy(). */
ferry_request_builder *ferry_request_builder_new(const struct ferry_route_config *cfg, char *errstr,
                                                 size_t errstr_size);

/* Frees the builder and every request it made, whatever their state; the records they point
 * at are the dispatcher's and are left alone. Accepts NULL. */
void ferry_request_builder_destroy(ferry_request_builder *b);

/* Returns an empty request with room for batch.max_records records, from the pool when it has
 * one, or NULL when memory ran out. It stays the builder's: give it back with
 * ferry_request_put(). */
struct ferry_request *ferry_request_get(ferry_request_builder *b);

/* Empties req and returns it to the pool; its records are no longer its business. */
void ferry_request_put(ferry_request_builder *b, struct ferry_request *req);

/* Builds the URL, headers and body of req from its n records and fills in req->call. A record
 * whose body cannot be rendered is passed to reject and left out; when the URL or a header
 * cannot be rendered (the first record fills them), every record is. When the body would pass
 * its cap, it holds only the first *cut records, and the caller sends the records from *cut on
 * in a request of their own (the headers, Idempotency-Key included, are made from all n).
 * Returns 0 when req can be sent, or -1 when no record was left to send. */
int ferry_request_build(ferry_request_builder *b, struct ferry_request *req, size_t *cut,
                        ferry_request_reject_fn *reject, void *reject_arg);

#endif
