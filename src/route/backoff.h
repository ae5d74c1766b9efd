/*
 * backoff.h - how long a route waits before retrying a delivery.
 *
 * Delays grow exponentially from initial_ms by multiplier up to max_ms, with full jitter (a
 * uniform draw between zero and that ceiling) so that many records failing together do not
 * retry together. The random state is the caller's, one per worker thread, which keeps the
 * functions pure and the tests deterministic. A target may ask for a delay itself through the
 * Retry-After header; ferry_backoff_retry_after_ms() reads it.
 */
#ifndef FERRY_BACKOFF_H
#define FERRY_BACKOFF_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The longest delay ferry accepts from a Retry-After header. */
#define FERRY_BACKOFF_RETRY_AFTER_MAX_MS (24 * 60 * 60 * 1000LL)

struct ferry_backoff_policy {
    int max_attempts; /* deliveries in all, the first included; 0 = unlimited */
    int64_t initial_ms;
    int64_t max_ms;
    double multiplier;
};

/* Returns 0 when the policy is usable, or -1 with a message in errstr: max_attempts must not be
 * negative, 0 <= initial_ms <= max_ms, and multiplier >= 1. Any thread. */
int ferry_backoff_policy_check(const struct ferry_backoff_policy *p, char *errstr,
                               size_t errstr_size);

/* Returns nonzero when a record that has been attempted `attempts` times may not be attempted
 * again under this policy. Any thread. */
int ferry_backoff_exhausted(const struct ferry_backoff_policy *p, int attempts);

/* Returns the delay in milliseconds before retry number `retry` (1 is the first retry): uniform
 * in [0, min(max_ms, initial_ms * multiplier^(retry-1))]. Never overflows, however large retry
 * is. Advances *rng, the caller's random state (any value is a valid seed); each thread needs
 * its own. */
int64_t ferry_backoff_delay_ms(const struct ferry_backoff_policy *p, int retry, uint64_t *rng);

/* Parses a Retry-After header value, either delay-seconds ("120") or an HTTP-date, surrounding
 * spaces allowed. Returns the delay in milliseconds from now (0 for a date in the past), capped
 * at FERRY_BACKOFF_RETRY_AFTER_MAX_MS, or -1 when the value is NULL or cannot be parsed. Any
 * thread. */
int64_t ferry_backoff_retry_after_ms(const char *header_value, time_t now);

#endif
