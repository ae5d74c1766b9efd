/*
 * grpc_target.h - what every call of a route's gRPC target is made of: the URL of the method,
 * the fixed header lines, and the request body built from records' payloads.
 *
 * A gRPC call is an HTTP/2 POST to <url>/<package.Service>/<Method> with content-type
 * application/grpc, te: trailers and a grpc-timeout from the route's timeout; its body is one
 * frame per message (grpc_wire.h), several for a client-streaming call carrying a batch. A
 * payload is sent as it is (`payload: value`, already protobuf) or read as JSON and encoded
 * into the method's input type from the route's descriptor set (`payload: json`,
 * grpc_proto.h). http:// means HTTP/2 without TLS with prior knowledge (h2c); the sender must
 * then open a connection per call, as Debian 12's libcurl 7.88.1 fails requests on a reused
 * h2c connection (curl issue 10634).
 *
 * Built once when the route starts; then read only, by the route's worker thread.
 */
#ifndef FERRY_GRPC_TARGET_H
#define FERRY_GRPC_TARGET_H

#include <stddef.h>

#include "core/buf.h"

/* The fixed header lines of every call. */
#define FERRY_GRPC_TARGET_HEADERS 3

typedef struct ferry_grpc_target_s ferry_grpc_target;

struct ferry_grpc_target_options {
    const char *url;            /* https://host:port or http://host:port (h2c) */
    const char *method;         /* package.Service/Method */
    int payload_json;           /* nonzero: payloads are JSON, encoded with the descriptor set */
    const char *descriptor_set; /* FileDescriptorSet file; needed with payload_json, else
                                   optional (it checks the method) */
    long timeout_ms;            /* sent as grpc-timeout; 0: none */
};

/* Returns 0 when url is https://host:port or http://host:port (*h2c says which), or -1 with a
 * message in errstr. */
int ferry_grpc_target_check_url(const char *url, int *h2c, char *errstr, size_t errstr_size);

/* Returns 0 when method reads package.Service/Method, or -1 with a message in errstr. */
int ferry_grpc_target_check_method(const char *method, char *errstr, size_t errstr_size);

/* Checks the options and, with a descriptor set (needed for JSON payloads), loads it and finds
 * the method.
 * Returns the target (free it with ferry_grpc_target_destroy()), or NULL with a message in
 * errstr. */
ferry_grpc_target *ferry_grpc_target_new(const struct ferry_grpc_target_options *o, char *errstr,
                                         size_t errstr_size);

/* Frees the target. Accepts NULL. */
void ferry_grpc_target_destroy(ferry_grpc_target *t);

/* Returns the URL every call goes to (owned by the target). */
const char *ferry_grpc_target_url(const ferry_grpc_target *t);

/* Returns nonzero when calls go without TLS (h2c, one connection per call). */
int ferry_grpc_target_h2c(const ferry_grpc_target *t);

/* Returns nonzero when the descriptor set says the method takes a stream of messages (a batch
 * may be one call); 0 for a unary method or without a descriptor set. */
int ferry_grpc_target_streaming(const ferry_grpc_target *t);

/* Returns the fixed header lines ("Content-Type: application/grpc", ...), in lines, which has
 * room for FERRY_GRPC_TARGET_HEADERS; the strings are the target's. Returns how many. */
size_t ferry_grpc_target_headers(const ferry_grpc_target *t, const char **lines);

/* ferry_grpc_target_add(): the body reached its cap. */
#define FERRY_GRPC_TARGET_FULL (-2)

/* Appends the frame of one record's payload[0..len) to body (JSON encoded first when the
 * target says so). Returns 0; -1 when the payload cannot be encoded (the record's fault: the
 * message names the field path); or FERRY_GRPC_TARGET_FULL when body's cap was reached. On an
 * error, errstr says why and body is as it was. */
int ferry_grpc_target_add(const ferry_grpc_target *t, const char *payload, size_t len,
                          struct ferry_buf *body, char *errstr, size_t errstr_size);

#endif
