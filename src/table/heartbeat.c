/*
 * heartbeat.c - a member's heartbeat as JSON: writing it, and reading one back strictly.
 *
 * The reader is fed by every instance that writes to the members topic, which any Kafka
 * client can do, so it checks everything: types, ranges, limits, duplicates.
 */
#include "table/heartbeat.h"
#include "core/json.h"
#include "core/json_scan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing ---- */

static int encode_table(const struct ferry_heartbeat_table *t, struct ferry_buf *out)
{
    int rc = ferry_buf_adds(out, "{\"name\":") ||
             ferry_json_add_string(out, t->name, strlen(t->name)) ||
             ferry_buf_adds(out, ",\"partitions\":[");

    for (size_t i = 0; !rc && i < t->count; i++) {
        const struct ferry_heartbeat_partition *p = &t->parts[i];
        rc = ferry_buf_addf(out, "%s[%" PRId32 ",%" PRId64 ",%" PRId64 ",%d]", i ? "," : "",
                            p->partition, p->applied, p->end, p->serving ? 1 : 0);
    }
    return rc || ferry_buf_adds(out, "]}") ? -1 : 0;
}

int ferry_heartbeat_encode(const struct ferry_heartbeat *hb, struct ferry_buf *out)
{
    struct ferry_buf mark = *out;
    int rc = ferry_buf_addf(out, "{\"v\":%d,\"instance\":", FERRY_HEARTBEAT_VERSION) ||
             ferry_json_add_string(out, hb->instance, strlen(hb->instance)) ||
             ferry_buf_adds(out, ",\"url\":") ||
             ferry_json_add_string(out, hb->url, strlen(hb->url)) ||
             ferry_buf_addf(out, ",\"sent_ms\":%" PRId64 ",\"tables\":[", hb->sent_ms);

    for (size_t i = 0; !rc && i < hb->count; i++)
        rc = (i && ferry_buf_addc(out, ',')) || encode_table(&hb->tables[i], out);
    if (rc || ferry_buf_adds(out, hb->leaving ? "],\"leaving\":true}" : "]}")) {
        ferry_buf_rewind(out, &mark);
        return -1;
    }
    return 0;
}

/* ---- reading ---- */

/* The table called name among the first n of hb, or NULL. */
static const struct ferry_heartbeat_table *table_among(const struct ferry_heartbeat *hb, size_t n,
                                                       const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(hb->tables[i].name, name))
            return &hb->tables[i];
    return NULL;
}

struct reader {
    struct ferry_json_cursor c;
    char *errstr;
    size_t errstr_size;
};

static int fail(struct reader *r, const char *what, const char *why)
{
    snprintf(r->errstr, r->errstr_size, "heartbeat: %s: %s (at byte %zu)", what, why,
             ferry_json_offset(&r->c));
    return -1;
}

/* Reads a string of at most max bytes, without NUL bytes, into out (room for max + 1). */
static int read_name(struct reader *r, const char *what, char *out, size_t max)
{
    struct ferry_json_cursor s;
    const char *span;
    size_t len, n;

    if (ferry_json_peek(&r->c) != FERRY_JSON_STRING || ferry_json_read_value(&r->c, &span, &len))
        return fail(r, what, "expected a string");
    if (len - 2 > max)
        return fail(r, what, "too long");
    ferry_json_cursor_init(&s, span, len);
    if (ferry_json_read_string(&s, out, &n))
        return fail(r, what, s.error);
    if (memchr(out, '\0', n))
        return fail(r, what, "contains a NUL byte");
    out[n] = '\0';
    return 0;
}

static int read_int(struct reader *r, const char *what, int64_t min, int64_t max, int64_t *v)
{
    if (ferry_json_peek(&r->c) != FERRY_JSON_NUMBER || ferry_json_read_int(&r->c, v))
        return fail(r, what, "expected an integer");
    if (*v < min || *v > max)
        return fail(r, what, "out of range");
    return 0;
}

/* Reads [partition, applied, end, serving]. */
static int read_partition(struct reader *r, struct ferry_heartbeat_partition *p)
{
    int64_t v[4];
    static const int64_t max[4] = {INT32_MAX, INT64_MAX, INT64_MAX, 1};
    size_t index = 0, n = 0;
    int rc;

    if (ferry_json_enter(&r->c, '['))
        return fail(r, "partition", "expected [partition, applied, end, serving]");
    while ((rc = ferry_json_next_element(&r->c, &index)) == 1) {
        if (n == 4)
            return fail(r, "partition", "more than 4 numbers");
        if (read_int(r, "partition", 0, max[n], &v[n]))
            return -1;
        n++;
    }
    if (rc < 0 || n != 4)
        return fail(r, "partition", "expected [partition, applied, end, serving]");
    p->partition = (int32_t)v[0];
    p->applied = v[1];
    p->end = v[2];
    p->serving = (int)v[3];
    return 0;
}

static int by_partition(const void *a, const void *b)
{
    const struct ferry_heartbeat_partition *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static int read_partitions(struct reader *r, struct ferry_heartbeat_table *t)
{
    size_t index = 0, alloc = 0;
    int rc;

    if (ferry_json_enter(&r->c, '['))
        return fail(r, "partitions", "expected an array");
    while ((rc = ferry_json_next_element(&r->c, &index)) == 1) {
        if (t->count == FERRY_HEARTBEAT_PARTITIONS_MAX)
            return fail(r, "partitions", "too many");
        if (t->count == alloc) {
            size_t more = alloc ? alloc * 2 : 32;
            void *p = realloc(t->parts, more * sizeof(*t->parts));
            if (!p)
                return fail(r, "partitions", "out of memory");
            t->parts = p;
            alloc = more;
        }
        if (read_partition(r, &t->parts[t->count]))
            return -1;
        t->count++;
    }
    if (rc < 0)
        return fail(r, "partitions", r->c.error);
    if (t->count)
        qsort(t->parts, t->count, sizeof(*t->parts), by_partition);
    for (size_t i = 1; i < t->count; i++)
        if (t->parts[i].partition == t->parts[i - 1].partition)
            return fail(r, "partitions", "a partition is listed twice");
    return 0;
}

static int read_table(struct reader *r, struct ferry_heartbeat_table *t)
{
    char name[FERRY_JSON_NAME_MAX + 1];
    size_t index = 0;
    int truncated, rc, named = 0, listed = 0;

    if (ferry_json_enter(&r->c, '{'))
        return fail(r, "table", "expected an object");
    while ((rc = ferry_json_next_member(&r->c, &index, name, &truncated)) == 1) {
        if (!truncated && !strcmp(name, "name")) {
            if (read_name(r, "table name", t->name, FERRY_HEARTBEAT_NAME_MAX))
                return -1;
            named = 1;
        } else if (!truncated && !strcmp(name, "partitions")) {
            if (listed++)
                return fail(r, "partitions", "listed twice");
            if (read_partitions(r, t))
                return -1;
        } else if (ferry_json_skip(&r->c)) {
            return fail(r, "table", "unterminated value");
        }
    }
    if (rc < 0)
        return fail(r, "table", r->c.error);
    return named ? 0 : fail(r, "table", "no name");
}

static int read_tables(struct reader *r, struct ferry_heartbeat *hb)
{
    size_t index = 0;
    int rc;

    if (ferry_json_enter(&r->c, '['))
        return fail(r, "tables", "expected an array");
    while ((rc = ferry_json_next_element(&r->c, &index)) == 1) {
        void *p;
        if (hb->count == FERRY_HEARTBEAT_TABLES_MAX)
            return fail(r, "tables", "too many");
        p = realloc(hb->tables, (hb->count + 1) * sizeof(*hb->tables));
        if (!p)
            return fail(r, "tables", "out of memory");
        hb->tables = p;
        memset(&hb->tables[hb->count], 0, sizeof(*hb->tables));
        hb->count++;
        if (read_table(r, &hb->tables[hb->count - 1]))
            return -1;
        if (table_among(hb, hb->count - 1, hb->tables[hb->count - 1].name))
            return fail(r, "tables", "a table is listed twice");
    }
    return rc < 0 ? fail(r, "tables", r->c.error) : 0;
}

/* Reads one member of the top-level object; *seen gets a bit for each required one. */
static int read_member(struct reader *r, const char *name, struct ferry_heartbeat *hb,
                       unsigned *seen)
{
    int64_t v;

    if (!strcmp(name, "v")) {
        if (read_int(r, "v", FERRY_HEARTBEAT_VERSION, FERRY_HEARTBEAT_VERSION, &v))
            return -1;
        *seen |= 1;
    } else if (!strcmp(name, "instance")) {
        if (read_name(r, "instance", hb->instance, FERRY_HEARTBEAT_NAME_MAX))
            return -1;
        *seen |= 2; /* checked not empty at the end: a later "instance" may empty it */
    } else if (!strcmp(name, "url")) {
        if (read_name(r, "url", hb->url, FERRY_HEARTBEAT_URL_MAX))
            return -1;
    } else if (!strcmp(name, "sent_ms")) {
        if (read_int(r, "sent_ms", 0, INT64_MAX, &hb->sent_ms))
            return -1;
        *seen |= 4;
    } else if (!strcmp(name, "leaving")) {
        enum ferry_json_type type = ferry_json_peek(&r->c);
        if (type != FERRY_JSON_TRUE && type != FERRY_JSON_FALSE)
            return fail(r, "leaving", "expected true or false");
        hb->leaving = type == FERRY_JSON_TRUE;
        ferry_json_skip(&r->c);
    } else if (!strcmp(name, "tables")) {
        if (*seen & 8)
            return fail(r, "tables", "listed twice");
        if (read_tables(r, hb))
            return -1;
        *seen |= 8;
    } else if (ferry_json_skip(&r->c)) {
        return fail(r, name, "unterminated value");
    }
    return 0;
}

int ferry_heartbeat_decode(const char *p, size_t n, struct ferry_heartbeat *hb, char *errstr,
                           size_t errstr_size)
{
    struct reader r = {.errstr = errstr, .errstr_size = errstr_size};
    char name[FERRY_JSON_NAME_MAX + 1];
    size_t index = 0;
    unsigned seen = 0;
    int truncated, rc;

    memset(hb, 0, sizeof(*hb));
    ferry_json_cursor_init(&r.c, p, n);
    if (n > FERRY_HEARTBEAT_BYTES_MAX)
        return fail(&r, "value", "too long");
    if (!ferry_json_is_valid(p, n) || ferry_json_enter(&r.c, '{'))
        return fail(&r, "value", "not a JSON object");
    while ((rc = ferry_json_next_member(&r.c, &index, name, &truncated)) == 1) {
        if (truncated ? ferry_json_skip(&r.c) : read_member(&r, name, hb, &seen))
            return -1;
    }
    if (rc < 0 || ferry_json_finish(&r.c))
        return fail(&r, "value", "not a JSON object");
    if ((seen & 7) != 7 || !hb->instance[0])
        return fail(&r, "value", "needs v, instance (not empty) and sent_ms");
    return 0;
}

int ferry_heartbeat_copy(struct ferry_heartbeat *dst, const struct ferry_heartbeat *src)
{
    *dst = *src;
    dst->count = 0;
    dst->tables = src->count ? calloc(src->count, sizeof(*dst->tables)) : NULL;
    if (src->count && !dst->tables)
        return -1;
    for (size_t i = 0; i < src->count; i++) {
        const struct ferry_heartbeat_table *from = &src->tables[i];
        struct ferry_heartbeat_table *t = &dst->tables[i];
        *t = *from;
        t->parts = t->count ? malloc(t->count * sizeof(*t->parts)) : NULL;
        if (t->count && !t->parts) {
            ferry_heartbeat_release(dst);
            return -1;
        }
        if (t->count)
            memcpy(t->parts, from->parts, t->count * sizeof(*t->parts));
        dst->count++;
    }
    return 0;
}

void ferry_heartbeat_release(struct ferry_heartbeat *hb)
{
    for (size_t i = 0; i < hb->count; i++)
        free(hb->tables[i].parts);
    free(hb->tables);
    memset(hb, 0, sizeof(*hb));
}

const struct ferry_heartbeat_table *ferry_heartbeat_table(const struct ferry_heartbeat *hb,
                                                          const char *name)
{
    return table_among(hb, hb->count, name);
}

const struct ferry_heartbeat_partition *
ferry_heartbeat_partition(const struct ferry_heartbeat_table *t, int32_t p)
{
    struct ferry_heartbeat_partition key = {.partition = p};

    if (!t || !t->count)
        return NULL;
    return bsearch(&key, t->parts, t->count, sizeof(*t->parts), by_partition);
}
