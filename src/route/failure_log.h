/*
 * failure_log.h - what a route says in its log about a failing target: one line when it starts
 * failing, then one summary per window while failures go on ("312 of 6100 requests failed in
 * the last 10 s (500: 300, timeout: 12)"), and one line when a whole window passed without a
 * failure. However the failures come, a route writes at most three such lines per window, and
 * never one line per failed request.
 *
 * The caller reports every request's result and calls ferry_failure_log_tick() now and then
 * (the route's loop turns at least once a second); lines go to the emit function, so that tests
 * see them. One thread uses a failure log.
 */
#ifndef FERRY_FAILURE_LOG_H
#define FERRY_FAILURE_LOG_H

#include "core/log.h"

#include <stdint.h>

/* Distinct kinds of failure counted by name in a summary; further kinds count as "other". */
#define FERRY_FAILURE_LOG_KINDS 8
/* Longest kind name kept ("500", "timeout", ...). */
#define FERRY_FAILURE_LOG_KIND_MAX 32

typedef struct ferry_failure_log ferry_failure_log;

typedef void (*ferry_failure_log_emit_fn)(void *arg, enum ferry_log_level level, const char *line);

/* A failure log summarizing every window_ms. NULL when out of memory. */
ferry_failure_log *ferry_failure_log_new(int64_t window_ms, ferry_failure_log_emit_fn emit,
                                         void *arg);
void ferry_failure_log_destroy(ferry_failure_log *fl);

/* A request succeeded at now_ms. */
void ferry_failure_log_success(ferry_failure_log *fl, int64_t now_ms);

/* A request failed at now_ms: kind names it in summaries ("500", "timeout"), reason says it in
 * full in the line that tells the target started failing ("http status 500"). */
void ferry_failure_log_failure(ferry_failure_log *fl, const char *kind, const char *reason,
                               int64_t now_ms);

/* Writes the summary, or the recovery, of a window that ended by now_ms. */
void ferry_failure_log_tick(ferry_failure_log *fl, int64_t now_ms);

#endif
