/*
 * grpc_wire.h - the parts of gRPC over HTTP/2 that are not HTTP: message frames, the
 * grpc-timeout header, the grpc-status and grpc-message trailers, and what a route does with
 * each status code.
 *
 * A request body is one or more frames (a flag byte for compression, which ferry never uses,
 * a 4-byte big-endian length, the message). The answer's status arrives in trailers, or in
 * the headers of a "trailers-only" response when the server fails before any message; both
 * reach libcurl's header callback, so one parser reads every header line of a call. Defaults:
 * OK succeeds; UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED and ABORTED retry, as they
 * may pass on a later attempt; every other code is dead-lettered. A route overrides codes by
 * name or number, like the HTTP target's on_status.
 */
#ifndef FERRY_GRPC_WIRE_H
#define FERRY_GRPC_WIRE_H

#include <stddef.h>

#include "core/buf.h"
#include "route/status.h"

/* The longest grpc-message kept (decoded); longer ones are cut. */
#define FERRY_GRPC_MESSAGE_MAX 512
/* Frame header: compressed flag and 32-bit length. */
#define FERRY_GRPC_FRAME_HEADER 5

enum ferry_grpc_code {
    FERRY_GRPC_OK = 0,
    FERRY_GRPC_CANCELLED = 1,
    FERRY_GRPC_UNKNOWN = 2,
    FERRY_GRPC_INVALID_ARGUMENT = 3,
    FERRY_GRPC_DEADLINE_EXCEEDED = 4,
    FERRY_GRPC_NOT_FOUND = 5,
    FERRY_GRPC_ALREADY_EXISTS = 6,
    FERRY_GRPC_PERMISSION_DENIED = 7,
    FERRY_GRPC_RESOURCE_EXHAUSTED = 8,
    FERRY_GRPC_FAILED_PRECONDITION = 9,
    FERRY_GRPC_ABORTED = 10,
    FERRY_GRPC_OUT_OF_RANGE = 11,
    FERRY_GRPC_UNIMPLEMENTED = 12,
    FERRY_GRPC_INTERNAL = 13,
    FERRY_GRPC_UNAVAILABLE = 14,
    FERRY_GRPC_DATA_LOSS = 15,
    FERRY_GRPC_UNAUTHENTICATED = 16,
    FERRY_GRPC_CODE_COUNT
};

/* Appends one uncompressed frame holding msg[0..len). Returns 0, or -1 when out's cap was
 * reached (out unchanged) or the message is larger than a frame can say. */
int ferry_grpc_frame_add(struct ferry_buf *out, const void *msg, size_t len);

/* Writes the header of an uncompressed frame for a message of len bytes into out[0..5). */
void ferry_grpc_frame_header(char *out, size_t len);

/* Reads the frame at data[0..len): returns 0 with the message at data[*msg_off] for *msg_len
 * bytes, 1 when the frame is incomplete, -1 when it is compressed (never asked for). */
int ferry_grpc_frame_next(const void *data, size_t len, size_t *msg_off, size_t *msg_len);

/* Writes the grpc-timeout value for a timeout of ms milliseconds ("1500m", "120S"): at most
 * eight digits, in the finest unit that fits. */
void ferry_grpc_timeout_format(long ms, char *out, size_t size);

/* Returns the canonical name of a code ("UNAVAILABLE"), or "UNKNOWN" outside 0..16. */
const char *ferry_grpc_code_name(int code);

/* Parses a code given by name (any case) or number. Returns 0 with *code set, or -1. */
int ferry_grpc_code_parse(const char *s, int *code);

/* What one call answered, filled from every header line libcurl hands over. */
struct ferry_grpc_status {
    int has_status;
    int code;
    char message[FERRY_GRPC_MESSAGE_MAX]; /* percent-decoded; "" when none was sent */
};

/* Forgets a previous call's answer. */
void ferry_grpc_status_reset(struct ferry_grpc_status *st);

/* Reads one header line ("grpc-status: 14\r\n"), as from CURLOPT_HEADERFUNCTION; lines of
 * other headers are ignored. */
void ferry_grpc_status_header(struct ferry_grpc_status *st, const char *line, size_t len);

/* Returns the call's status code: grpc-status when the server sent one with HTTP 200; for
 * another HTTP status the code gRPC's spec maps it to (503 -> UNAVAILABLE, ...); INTERNAL
 * with a message when a 200 carried no grpc-status. */
int ferry_grpc_status_resolve(struct ferry_grpc_status *st, long http_status);

typedef struct ferry_grpc_rules_s ferry_grpc_rules;

/* Returns rules holding the defaults, or NULL when memory ran out. Free them with
 * ferry_grpc_rules_destroy(). */
ferry_grpc_rules *ferry_grpc_rules_new(void);

/* Frees the rules. Accepts NULL. */
void ferry_grpc_rules_destroy(ferry_grpc_rules *rules);

/* Maps the code named by pattern ("UNAVAILABLE" or "14") to outcome. Returns 0, or -1 with a
 * message in errstr. Call while building the configuration. */
int ferry_grpc_rules_set(ferry_grpc_rules *rules, enum ferry_outcome outcome, const char *pattern,
                         char *errstr, size_t errstr_size);

/* Returns the outcome for a code; a code outside 0..16 is classified like UNKNOWN. Reads
 * only: any thread may call it. */
enum ferry_outcome ferry_grpc_rules_classify(const ferry_grpc_rules *rules, int code);

/* ferry_grpc_rules_classify() in the shape of outcome.h's ferry_outcome_classify_fn, for a
 * route's outcome policy: rules is a ferry_grpc_rules. */
enum ferry_outcome ferry_grpc_rules_outcome(const void *rules, long code);

#endif
