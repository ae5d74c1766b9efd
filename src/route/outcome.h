/*
 * outcome.h - what a route does with a request after one attempt: finish its records, send it
 * again later, or write its records to the dead-letter topic.
 *
 * One pure function decides, from the attempt's result (an HTTP status or a transport error,
 * and a Retry-After), the attempts made so far, the route's retry settings, its on_status
 * rules and whether it has a dead-letter topic. With the default rules (status.h):
 *
 *   answer                                  decision
 *   2xx                                     success: the records are finished
 *   408, 429, 5xx, a status outside 100-599 retry, until retry.max_attempts attempts were
 *   a transport error (timeout, refused or   made (0: never); then dead letter, "gave up",
 *     reset connection, DNS, TLS)            or without a dead-letter topic retry anyway
 *   1xx, 3xx, any other 4xx                 dead letter at once; without a dead-letter topic
 *                                            retry as if the attempts had run out
 *
 * on_status overrides change which row a status falls in; transport errors always retry. A
 * retry waits a jittered backoff for the attempt (backoff.h), or retry.max_backoff once the
 * attempts ran out. A Retry-After on a 429 or a 503 is a floor for that wait, even past
 * max_backoff (the header's parser caps it at FERRY_BACKOFF_RETRY_AFTER_MAX_MS), and pauses
 * the whole route for as long; on any other status it is ignored.
 *
 * Whether the records' partition was revoked meanwhile is not the decision's business: the
 * caller drops such requests whatever the outcome was.
 */
#ifndef FERRY_OUTCOME_H
#define FERRY_OUTCOME_H

#include <stdint.h>

#include "route/backoff.h"
#include "route/status.h"

/* The result of one attempt, as the sender reported it. */
struct ferry_outcome_attempt {
    int transport_error;    /* nonzero: no HTTP answer came (the sender's CURLcode) */
    long http_status;       /* the answer's status; ignored with a transport error */
    int64_t retry_after_ms; /* the answer's Retry-After, -1 when absent or unparsable */
    int attempts;           /* attempts made, this one included */
};

/* Reads a status that is not HTTP's (a gRPC target's codes): rules is the policy's
 * classify_rules. */
typedef enum ferry_outcome ferry_outcome_classify_fn(const void *rules, long status);

/* A route's settings that the decision depends on. */
struct ferry_outcome_policy {
    const ferry_status_rules *rules;          /* on_status */
    const struct ferry_backoff_policy *retry; /* retry.* */
    int dead_letter;                          /* nonzero: the route has a dead-letter topic */
    ferry_outcome_classify_fn *classify;      /* NULL: rules classify the status */
    const void *classify_rules;               /* classify's */
};

struct ferry_outcome_decision {
    enum ferry_outcome action; /* success, retry or dead letter */
    int gave_up;      /* dead letter because the attempts ran out on an answer worth retrying */
    int attempts;     /* retry: the attempt count the request carries on with */
    int64_t delay_ms; /* retry: the wait before the next attempt */
    int64_t pause_ms; /* retry: the route sends nothing for this long (Retry-After); -1: no pause */
};

/* Returns what policy's rules make of an answer's status (success, retry or dead letter).
 * Reads only: any thread. */
enum ferry_outcome ferry_outcome_classify(const struct ferry_outcome_policy *policy, long status);

/* Returns the decision for one attempt. Reads nothing but its arguments and writes nothing
 * but *rng, the caller's random state for the backoff's jitter (backoff.h), which advances
 * only when the decision is a retry with a jittered wait. Any thread (each with its own rng). */
struct ferry_outcome_decision ferry_outcome_decide(const struct ferry_outcome_policy *policy,
                                                   const struct ferry_outcome_attempt *attempt,
                                                   uint64_t *rng);

#endif
