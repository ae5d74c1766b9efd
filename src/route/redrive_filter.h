/*
 * redrive_filter.h - which dead letters a redrive sends again: offset bounds on the dead-letter
 * topic, a time since which they were written, the HTTP statuses they failed with, and the
 * route that gave up on them (ferry.route). Pure functions on plain values, so that `ferry
 * redrive`'s argument parsing and its choices are unit-tested without Kafka (redrive.c reads
 * the topic and asks these).
 */
#ifndef FERRY_REDRIVE_FILTER_H
#define FERRY_REDRIVE_FILTER_H

#include <stddef.h>
#include <stdint.h>

#define FERRY_REDRIVE_BOUNDS_MAX 64   /* --from or --to options in one command */
#define FERRY_REDRIVE_STATUSES_MAX 64 /* --status codes in one command */
#define FERRY_REDRIVE_DESCRIBE_MAX 4096

/* An offset on the dead-letter topic: for one partition ("P:OFFSET"), or for every partition
 * without a bound of its own ("OFFSET", partition -1). */
struct ferry_redrive_bound {
    int32_t partition;
    int64_t offset;
};

/* What a redrive selects. Bounds are inclusive. */
struct ferry_redrive_filter {
    struct ferry_redrive_bound from[FERRY_REDRIVE_BOUNDS_MAX];
    size_t nfrom;
    struct ferry_redrive_bound to[FERRY_REDRIVE_BOUNDS_MAX];
    size_t nto;
    int64_t since_ms; /* dead letters written at or after this time (ms since the epoch); -1: any */
    const char *since_text; /* --since as written (a relative time resolves anew each run) */
    long statuses[FERRY_REDRIVE_STATUSES_MAX]; /* ferry.http_status one of these; none: any */
    size_t nstatuses;
};

/* Why a dead letter is or is not redriven. */
enum ferry_redrive_verdict {
    FERRY_REDRIVE_SEND,
    FERRY_REDRIVE_OTHER_ROUTE, /* ferry.route is absent or names another route */
    FERRY_REDRIVE_TOO_OLD,     /* written before --since */
    FERRY_REDRIVE_STATUS,      /* ferry.http_status absent or not one of --status */
};

/* Empties f: no bounds, no time, any status. */
void ferry_redrive_filter_init(struct ferry_redrive_filter *f);

/* Parses "OFFSET" or "PARTITION:OFFSET" (non-negative decimal integers). Returns 0, or -1 with
 * a message in errstr. */
int ferry_redrive_bound_parse(const char *text, struct ferry_redrive_bound *out, char *errstr,
                              size_t errstr_size);

/* Parses a --since TIME: a duration before now_ms ("90s", "15m", "2h"), an RFC 3339 UTC time
 * ("2026-12-04T05:00:00Z", fractional seconds allowed) or milliseconds since the epoch.
 * Returns 0 with *ms set, or -1 with a message in errstr. */
int ferry_redrive_time_parse(const char *text, int64_t now_ms, int64_t *ms, char *errstr,
                             size_t errstr_size);

/* Parses an HTTP status code (100 to 599). Returns 0, or -1 with a message in errstr. */
int ferry_redrive_status_parse(const char *text, long *status, char *errstr, size_t errstr_size);

/* The first offset of partition to read (0 when no --from applies). */
int64_t ferry_redrive_first(const struct ferry_redrive_filter *f, int32_t partition);

/* The offset past the last one of partition to read (INT64_MAX when no --to applies). */
int64_t ferry_redrive_end(const struct ferry_redrive_filter *f, int32_t partition);

/* Checks the whole selection: a --from after its --to (same partition, or both general) is an
 * error. Messages name the bounds with prefix before "from", "to" and "since": "--" for the
 * command line's flags, "" for the admin endpoint's JSON fields. Returns 0, or -1 with a
 * message in errstr. */
int ferry_redrive_filter_check(const struct ferry_redrive_filter *f, const char *prefix,
                               char *errstr, size_t errstr_size);

/* Decides for one dead letter: route is its newest failure's ferry.route (NULL when absent),
 * http_status that failure's ferry.http_status (0 when absent; deadletter_headers.h tells which
 * headers are the newest failure's), timestamp_ms the dead letter's own timestamp (-1 when it
 * has none: it passes --since). want_route is the route being redriven. */
enum ferry_redrive_verdict ferry_redrive_filter_decide(const struct ferry_redrive_filter *f,
                                                       const char *want_route, const char *route,
                                                       long http_status, int64_t timestamp_ms);

/* Writes a canonical text of the selection into out (at most size bytes, NUL-terminated): the
 * same selection always gives the same text, whatever the order of its options, so that a
 * saved redrive is resumed only by the same command. */
void ferry_redrive_filter_describe(const struct ferry_redrive_filter *f, char *out, size_t size);

#endif
