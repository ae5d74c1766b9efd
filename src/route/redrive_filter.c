/*
 * redrive_filter.c - the selection of `ferry redrive`: offset bounds, --since, --status and
 * the route a dead letter belongs to. See redrive_filter.h.
 */
#include "route/redrive_filter.h"

#include "core/units.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ferry_redrive_filter_init(struct ferry_redrive_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->since_ms = -1;
}

/* A non-negative decimal integer, digits only. */
static int parse_count(const char *text, size_t len, int64_t max, int64_t *out)
{
    int64_t v = 0;

    if (len == 0 || len > 19)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        if (v > (max - (text[i] - '0')) / 10)
            return -1;
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return 0;
}

int ferry_redrive_bound_parse(const char *text, struct ferry_redrive_bound *out, char *errstr,
                              size_t errstr_size)
{
    const char *colon = strchr(text, ':');
    int64_t part = -1, offset;

    if (colon && parse_count(text, (size_t)(colon - text), INT32_MAX, &part)) {
        snprintf(errstr, errstr_size, "'%s': the partition must be a number from 0", text);
        return -1;
    }
    if (parse_count(colon ? colon + 1 : text, strlen(colon ? colon + 1 : text), INT64_MAX - 1,
                    &offset)) {
        snprintf(errstr, errstr_size, "'%s': expected OFFSET or PARTITION:OFFSET (numbers from 0)",
                 text);
        return -1;
    }
    out->partition = (int32_t)part;
    out->offset = offset;
    return 0;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (a space for the T allowed). Returns 0 with *ms set. */
static int parse_rfc3339(const char *text, int64_t *ms)
{
    struct tm tm = {0};
    int64_t frac = 0, scale = 1000;
    const char *p = strptime(text, "%Y-%m-%d", &tm);

    if (!p || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p = strptime(p + 1, "%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            scale /= 10;
            frac += (*p - '0') * scale;
        }
    }
    if ((*p != 'Z' && *p != 'z') || p[1])
        return -1;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return 0;
}

int ferry_redrive_time_parse(const char *text, int64_t now_ms, int64_t *ms, char *errstr,
                             size_t errstr_size)
{
    int64_t v;

    if (parse_count(text, strlen(text), INT64_MAX, &v) == 0) {
        *ms = v;
        return 0;
    }
    if (ferry_duration_parse(text, &v) == 0) {
        *ms = now_ms - v;
        return 0;
    }
    if (parse_rfc3339(text, ms) == 0)
        return 0;
    snprintf(errstr, errstr_size,
             "'%s': expected a duration before now (15m), a UTC time (2026-12-04T05:00:00Z) or "
             "milliseconds since the epoch",
             text);
    return -1;
}

int ferry_redrive_status_parse(const char *text, long *status, char *errstr, size_t errstr_size)
{
    int64_t v;

    if (parse_count(text, strlen(text), 999, &v) || v < 100 || v > 599) {
        snprintf(errstr, errstr_size, "'%s': expected an HTTP status from 100 to 599", text);
        return -1;
    }
    *status = (long)v;
    return 0;
}

/* The bound for partition among n: its own, else the general one, else NULL. */
static const struct ferry_redrive_bound *bound_for(const struct ferry_redrive_bound *b, size_t n,
                                                   int32_t partition)
{
    const struct ferry_redrive_bound *general = NULL;

    for (size_t i = 0; i < n; i++) {
        if (b[i].partition == partition)
            return &b[i];
        if (b[i].partition < 0)
            general = &b[i];
    }
    return general;
}

int64_t ferry_redrive_first(const struct ferry_redrive_filter *f, int32_t partition)
{
    const struct ferry_redrive_bound *b = bound_for(f->from, f->nfrom, partition);
    return b ? b->offset : 0;
}

int64_t ferry_redrive_end(const struct ferry_redrive_filter *f, int32_t partition)
{
    const struct ferry_redrive_bound *b = bound_for(f->to, f->nto, partition);
    return b ? b->offset + 1 : INT64_MAX;
}

static int duplicate_bound(const struct ferry_redrive_bound *b, size_t n, const char *prefix,
                           const char *name, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (b[i].partition == b[j].partition) {
                if (b[i].partition < 0)
                    snprintf(errstr, errstr_size, "%s%s OFFSET is given twice", prefix, name);
                else
                    snprintf(errstr, errstr_size, "%s%s is given twice for partition %d", prefix,
                             name, (int)b[i].partition);
                return -1;
            }
    return 0;
}

/* A --from past its --to: checks the partitions named by either, and the general pair. */
static int inverted_bound(const struct ferry_redrive_filter *f, const struct ferry_redrive_bound *b,
                          const char *prefix, char *errstr, size_t errstr_size)
{
    char where[32] = "";

    if (ferry_redrive_first(f, b->partition) < ferry_redrive_end(f, b->partition))
        return 0;
    if (b->partition >= 0)
        snprintf(where, sizeof(where), "partition %d: ", (int)b->partition);
    snprintf(errstr, errstr_size, "%s%sfrom %" PRId64 " is after %sto %" PRId64, where, prefix,
             ferry_redrive_first(f, b->partition), prefix, ferry_redrive_end(f, b->partition) - 1);
    return -1;
}

int ferry_redrive_filter_check(const struct ferry_redrive_filter *f, const char *prefix,
                               char *errstr, size_t errstr_size)
{
    if (duplicate_bound(f->from, f->nfrom, prefix, "from", errstr, errstr_size) ||
        duplicate_bound(f->to, f->nto, prefix, "to", errstr, errstr_size))
        return -1;
    if ((f->nfrom || f->nto) && f->since_text) {
        snprintf(errstr, errstr_size, "%ssince cannot be combined with %sfrom or %sto", prefix,
                 prefix, prefix);
        return -1;
    }
    for (size_t i = 0; i < f->nfrom; i++)
        if (inverted_bound(f, &f->from[i], prefix, errstr, errstr_size))
            return -1;
    for (size_t i = 0; i < f->nto; i++)
        if (inverted_bound(f, &f->to[i], prefix, errstr, errstr_size))
            return -1;
    return 0;
}

static int status_wanted(const struct ferry_redrive_filter *f, long http_status)
{
    if (f->nstatuses == 0)
        return 1;
    for (size_t i = 0; i < f->nstatuses; i++)
        if (f->statuses[i] == http_status)
            return 1;
    return 0;
}

enum ferry_redrive_verdict ferry_redrive_filter_decide(const struct ferry_redrive_filter *f,
                                                       const char *want_route, const char *route,
                                                       long http_status, int64_t timestamp_ms)
{
    if (!route || strcmp(route, want_route) != 0)
        return FERRY_REDRIVE_OTHER_ROUTE;
    if (f->since_ms >= 0 && timestamp_ms >= 0 && timestamp_ms < f->since_ms)
        return FERRY_REDRIVE_TOO_OLD;
    if (!status_wanted(f, http_status))
        return FERRY_REDRIVE_STATUS;
    return FERRY_REDRIVE_SEND;
}

static int cmp_bound(const void *a, const void *b)
{
    const struct ferry_redrive_bound *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static int cmp_status(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Appends " name=p:o,p:o" (general bound as "*:o") for bounds sorted by partition. */
static void describe_bounds(const char *name, const struct ferry_redrive_bound *in, size_t n,
                            char *out, size_t size)
{
    struct ferry_redrive_bound sorted[FERRY_REDRIVE_BOUNDS_MAX];
    size_t len;

    if (!n)
        return;
    memcpy(sorted, in, n * sizeof(*in));
    qsort(sorted, n, sizeof(*sorted), cmp_bound);
    len = strlen(out);
    snprintf(out + len, size - len, " %s=", name);
    for (size_t i = 0; i < n; i++) {
        len = strlen(out);
        if (sorted[i].partition < 0)
            snprintf(out + len, size - len, "%s*:%" PRId64, i ? "," : "", sorted[i].offset);
        else
            snprintf(out + len, size - len, "%s%d:%" PRId64, i ? "," : "", (int)sorted[i].partition,
                     sorted[i].offset);
    }
}

void ferry_redrive_filter_describe(const struct ferry_redrive_filter *f, char *out, size_t size)
{
    long statuses[FERRY_REDRIVE_STATUSES_MAX];
    size_t len;

    snprintf(out, size, "select");
    describe_bounds("from", f->from, f->nfrom, out, size);
    describe_bounds("to", f->to, f->nto, out, size);
    if (f->since_text) {
        len = strlen(out);
        snprintf(out + len, size - len, " since=%s", f->since_text);
    }
    if (!f->nstatuses)
        return;
    memcpy(statuses, f->statuses, f->nstatuses * sizeof(*statuses));
    qsort(statuses, f->nstatuses, sizeof(*statuses), cmp_status);
    len = strlen(out);
    snprintf(out + len, size - len, " status=");
    for (size_t i = 0; i < f->nstatuses; i++) {
        len = strlen(out);
        snprintf(out + len, size - len, "%s%ld", i ? "," : "", statuses[i]);
    }
}
