/*
 * failure_log.c - a failing target in a few log lines (see failure_log.h).
 *
 * Two states. Healthy: the first failure writes "target is failing" and opens a window.
 * Failing: requests and failures (by kind) are counted; when the window ends, a window that saw
 * failures is summarized and a new one opens, and a window of requests without any failure
 * ends the failing state ("target recovered"). A window without requests at all (a circuit
 * breaker holds them back) says nothing either way. Leaving the failing state takes a whole
 * window of successes, so a target that fails now and then does not flap between the two.
 */
#include "route/failure_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAILURE_LOG_LINE_MAX 1024

struct kind_count {
    char name[FERRY_FAILURE_LOG_KIND_MAX];
    uint64_t count;
};

struct ferry_failure_log {
    int64_t window_ms;
    ferry_failure_log_emit_fn emit;
    void *arg;
    int failing;
    int64_t failing_since_ms;
    uint64_t failed_since; /* failures since the target began failing */
    /* the current window */
    int64_t window_start_ms;
    uint64_t requests, failures, other;
    size_t nkinds;
    struct kind_count kinds[FERRY_FAILURE_LOG_KINDS];
};

ferry_failure_log *ferry_failure_log_new(int64_t window_ms, ferry_failure_log_emit_fn emit,
                                         void *arg)
{
    ferry_failure_log *fl = calloc(1, sizeof(*fl));
    if (!fl)
        return NULL;
    fl->window_ms = window_ms;
    fl->emit = emit;
    fl->arg = arg;
    return fl;
}

void ferry_failure_log_destroy(ferry_failure_log *fl)
{
    free(fl);
}

static void open_window(ferry_failure_log *fl, int64_t now_ms)
{
    fl->window_start_ms = now_ms;
    fl->requests = fl->failures = fl->other = 0;
    fl->nkinds = 0;
}

static void count_kind(ferry_failure_log *fl, const char *kind)
{
    size_t i;

    for (i = 0; i < fl->nkinds; i++)
        if (strcmp(fl->kinds[i].name, kind) == 0)
            break;
    if (i == FERRY_FAILURE_LOG_KINDS) {
        fl->other++;
        return;
    }
    if (i == fl->nkinds) {
        snprintf(fl->kinds[i].name, sizeof(fl->kinds[i].name), "%s", kind);
        fl->kinds[i].count = 0;
        fl->nkinds++;
    }
    fl->kinds[i].count++;
}

/* "(500: 300, timeout: 12)": the kinds, most frequent first. */
static void write_kinds(const ferry_failure_log *fl, char *out, size_t size)
{
    size_t pos = 0, order[FERRY_FAILURE_LOG_KINDS];

    for (size_t i = 0; i < fl->nkinds; i++) {
        size_t j = i;
        for (; j > 0 && fl->kinds[order[j - 1]].count < fl->kinds[i].count; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    out[0] = '\0';
    for (size_t i = 0; i < fl->nkinds && pos < size; i++)
        pos += (size_t)snprintf(out + pos, size - pos, "%s%s: %" PRIu64, i ? ", " : "(",
                                fl->kinds[order[i]].name, fl->kinds[order[i]].count);
    if (fl->other && pos < size)
        pos += (size_t)snprintf(out + pos, size - pos, ", other: %" PRIu64, fl->other);
    if (fl->nkinds && pos < size)
        snprintf(out + pos, size - pos, ")");
}

static void summarize(ferry_failure_log *fl, int64_t now_ms)
{
    char kinds[FAILURE_LOG_LINE_MAX / 2], line[FAILURE_LOG_LINE_MAX];
    double seconds = (double)(now_ms - fl->window_start_ms) / 1000.0;

    write_kinds(fl, kinds, sizeof(kinds));
    snprintf(line, sizeof(line), "%" PRIu64 " of %" PRIu64 " requests failed in the last %.0f s %s",
             fl->failures, fl->requests, seconds, kinds);
    fl->emit(fl->arg, FERRY_LOG_WARN, line);
}

static void recover(ferry_failure_log *fl, int64_t now_ms)
{
    char line[FAILURE_LOG_LINE_MAX];

    snprintf(line, sizeof(line),
             "target recovered: none of the last %" PRIu64 " requests failed in %.0f s (%" PRIu64
             " failed in the %.0f s before)",
             fl->requests, (double)(now_ms - fl->window_start_ms) / 1000.0, fl->failed_since,
             (double)(fl->window_start_ms - fl->failing_since_ms) / 1000.0);
    fl->emit(fl->arg, FERRY_LOG_INFO, line);
    fl->failing = 0;
}

void ferry_failure_log_tick(ferry_failure_log *fl, int64_t now_ms)
{
    if (!fl->failing || now_ms - fl->window_start_ms < fl->window_ms)
        return;
    if (fl->requests == 0) { /* nothing was sent (a circuit breaker open): no news either way */
        open_window(fl, now_ms);
        return;
    }
    if (fl->failures == 0) {
        recover(fl, now_ms);
        return;
    }
    summarize(fl, now_ms);
    open_window(fl, now_ms);
}

void ferry_failure_log_success(ferry_failure_log *fl, int64_t now_ms)
{
    ferry_failure_log_tick(fl, now_ms);
    if (fl->failing)
        fl->requests++;
}

void ferry_failure_log_failure(ferry_failure_log *fl, const char *kind, const char *reason,
                               int64_t now_ms)
{
    char line[FAILURE_LOG_LINE_MAX];

    ferry_failure_log_tick(fl, now_ms);
    if (!fl->failing) {
        fl->failing = 1;
        fl->failing_since_ms = now_ms;
        fl->failed_since = 0;
        open_window(fl, now_ms);
        snprintf(line, sizeof(line), "target is failing: %s", reason);
        fl->emit(fl->arg, FERRY_LOG_WARN, line);
    }
    fl->requests++;
    fl->failures++;
    fl->failed_since++;
    count_kind(fl, kind);
}
