/*
 * reply.c - what every table answer shares (see reply.h).
 */
#include "table/reply.h"
#include "core/clock.h"
#include "core/json.h"
#include "table/partitioner.h"

#include <inttypes.h>
#include <stdio.h>

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

    if (state == TABLE_READY || state == TABLE_FULL ||
        (state == TABLE_FAILED && t->npartitions > 0))
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

void ferry_table_header_int(ferry_http_req *req, const char *name, int64_t v)
{
    char text[32];

    snprintf(text, sizeof(text), "%" PRId64, v);
    ferry_http_add_header(req, name, text);
}
