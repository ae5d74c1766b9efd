/*
 * grpc_call.h - running a gRPC call through the route's sender: the protocol hooks that turn
 * a request (URL, header lines and framed body from grpc_target.h) into an HTTP/2 POST and
 * read its answer from the trailers.
 *
 * Over https:// calls share the sender's pooled connections, each one waiting for a
 * connection being set up to say whether it multiplexes (libcurl's PIPEWAIT), so a burst
 * of calls rides one HTTP/2 connection. Over http:// (h2c, prior knowledge) each call opens a
 * connection of its own and closes it after: Debian 12's libcurl 7.88.1 fails requests on a
 * reused h2c connection (curl issue 10634, fixed in 8.0.0).
 *
 * The call's status is its gRPC code (grpc_wire.h: grpc-status from the trailers, or from the
 * headers of a trailers-only answer, or mapped from an HTTP status other than 200), and its
 * error reads "grpc status UNAVAILABLE (14): <grpc-message>". A transfer that failed before
 * any grpc-status came is a transport error, retried like any other.
 *
 * A struct ferry_grpc_call belongs to one request and is reused by its later calls; the
 * worker fills the request, the hooks run on the thread that drives the transfer, and the
 * worker reads the answer after the sender handed the call back.
 */
#ifndef FERRY_GRPC_CALL_H
#define FERRY_GRPC_CALL_H

#include "route/grpc_wire.h"
#include "route/sender.h"

struct ferry_grpc_call;

/* The sender's hooks for a call whose proto is a struct ferry_grpc_call. */
extern const struct ferry_sender_protocol ferry_grpc_protocol;

/* Returns a call's state for calls without TLS (h2c) when h2c is nonzero, or NULL when memory
 * ran out. Free it with ferry_grpc_call_destroy(). */
struct ferry_grpc_call *ferry_grpc_call_new(int h2c);

/* Frees a call's state. Accepts NULL. */
void ferry_grpc_call_destroy(struct ferry_grpc_call *gc);

/* Returns the status the last call answered with (its has_status, code and grpc-message),
 * owned by gc. Worker thread, once the call is back. */
const struct ferry_grpc_status *ferry_grpc_call_status(const struct ferry_grpc_call *gc);

/* Returns the HTTP status of the last call's answer, or 0 when no answer came. Worker thread,
 * once the call is back. */
long ferry_grpc_call_http_status(const struct ferry_grpc_call *gc);

#endif
