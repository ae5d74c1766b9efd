/*
 * reply.c - what every table answer shares (see reply.h).
 */
#include "table/reply.h"
#include "core/clock.h"
#include "core/json.h"
#include "table/partitioner.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define QUERY_KNOWN_MAX 32 /* the most names a known list of ferry_table_check_query holds */

struct query_check {
    const ferry_http_req *req;
    const char *const *known;
    unsigned seen[QUERY_KNOWN_MAX]; /* how often each known name came */
    char *why;
    size_t why_size;
    int bad;
};

static int known_index(const char *const *known, const char *name)
{
    for (int i = 0; known[i] && i < QUERY_KNOWN_MAX; i++)
        if (strcmp(known[i], name) == 0)
            return i;
    return -1;
}

static void check_param(void *arg, const char *name, const char *value)
{
    struct query_check *c = arg;
    int i = c->bad ? -1 : known_index(c->known, name);
    size_t len = 0;

    if (c->bad)
        return;
    c->bad = 1;
    if (i < 0)
        snprintf(c->why, c->why_size, "unknown query parameter '%s'", name);
    else if (!value)
        snprintf(c->why, c->why_size, "query parameter '%s' needs a value (%s=...)", name, name);
    else if (c->seen[i]++ && strcmp(name, "min_offset") != 0)
        snprintf(c->why, c->why_size, "query parameter '%s' is given more than once", name);
    else if (c->seen[i] == 1 && strcmp(name, "prefix") != 0 &&
             ferry_http_req_query_n(c->req, name, &len) && len != strlen(value))
        snprintf(c->why, c->why_size, "query parameter '%s' holds a NUL byte (%%00)", name);
    else
        c->bad = 0;
}

int ferry_table_check_query(const ferry_http_req *req, const char *const *known, char *why,
                            size_t why_size)
{
    struct query_check c = {.req = req, .known = known, .why = why, .why_size = why_size};

    ferry_http_req_query_each(req, check_param, &c);
    return c.bad ? -1 : 0;
}

void ferry_table_count(struct table *t, int status, int64_t started_us)
{
    int cls = status / 100 - 1;

    if (cls >= 0 && cls < 5)
        ferry_counter_add(t->m.reads[cls], 1);
    ferry_histogram_observe(t->m.read_latency, (double)(ferry_clock_us() - started_us) / 1e6);
}

int ferry_table_refuse_unready(struct table *t, ferry_http_req *req)
{
    int state = atomic_load(&t->state);

    /* full, failed or disk full: the store answers as it stands, if it ever held the whole
     * table */
    if (state == TABLE_READY ||
        ((state == TABLE_FULL || state == TABLE_FAILED || state == TABLE_DISK_FULL) &&
         atomic_load(&t->was_ready) && t->npartitions > 0))
        return 0;
    /* partitioned: read_remote.c answered here only for a partition this instance serves */
    if (state == TABLE_LOADING && t->cfg->placement == FERRY_PLACEMENT_PARTITIONED)
        return 0;
    ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
    ferry_http_respond_error(req, 503, 0,
                             "table '%s' is %s: %" PRId64 " record(s) behind the end it must reach "
                             "before it answers",
                             t->cfg->name, ferry_table_states[state], ferry_table_lag(t));
    return 1;
}

int ferry_table_refuse_unplaced(struct table *t, ferry_http_req *req, int forwarded,
                                int64_t started_us)
{
    int state = atomic_load(&t->state);

    if (state != TABLE_STARTING && t->npartitions > 0)
        return forwarded ? 0 : ferry_table_refuse_unready(t, req);
    if (forwarded) {
        ferry_http_respond_error(req, 508, 0,
                                 "table '%s' is %s: it serves no partition yet (a forwarded read "
                                 "is not forwarded again)",
                                 t->cfg->name, ferry_table_states[state]);
        ferry_table_count(t, 508, started_us);
        return 1;
    }
    if (!ferry_table_refuse_unready(t, req)) { /* not reached: no partitions, never ready */
        ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
        ferry_http_respond_error(req, 503, 0, "table '%s' is %s", t->cfg->name,
                                 ferry_table_states[state]);
    }
    ferry_table_count(t, 503, started_us);
    return 1;
}

const char *ferry_table_content_type(const struct table *t, const char *row_type, const void *value,
                                     size_t len)
{
    if (row_type)
        return row_type;
    if (t->cfg->content_type)
        return t->cfg->content_type;
    return ferry_json_is_valid(value, len) ? "application/json" : "application/octet-stream";
}

int32_t ferry_table_key_partition(const struct table *t, const void *key, size_t len)
{
    if (atomic_load(&t->state) == TABLE_STARTING || t->npartitions < 1)
        return -1;
    if (t->cfg->partitioner == FERRY_PARTITIONER_CRC32)
        return ferry_partitioner_crc32(key, len, t->npartitions);
    return ferry_partitioner_murmur2(key, len, t->npartitions);
}
