/*
 * retry_topic.c - names, headers and due times of records parked on retry topics (see
 * retry_topic.h).
 *
 * Writing and reading are kept side by side so that the header contract is in one place: a
 * header this file writes is a header it strips from the source before writing its own set,
 * and a header it reads back.
 */
#include "route/retry_topic.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define RETRY_NUMBER_MAX 32 /* one decimal header value, with its NUL */
#define RETRY_HEADERS 9     /* headers a parked record gets from ferry */

/* The headers written here, in the order they are written. */
static const char *const written[] = {
    "ferry.retry.stage", "ferry.retry.due", "ferry.attempts",  "ferry.error", "ferry.topic",
    "ferry.partition",   "ferry.offset",    "ferry.timestamp", "ferry.route", NULL,
};

int ferry_retry_topic_name(const char *route, int stage, const char *configured, char *out,
                           size_t size)
{
    int n;

    if (configured && *configured)
        n = snprintf(out, size, "%s", configured);
    else
        n = snprintf(out, size, "%s.retry.%d", route, stage);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Copies text into out, cut to fit. */
static void copy_text(char *out, size_t size, const char *text)
{
    snprintf(out, size, "%s", text ? text : "");
}

void ferry_retry_meta_make(struct ferry_retry_meta *m, const struct ferry_record *rec,
                           const struct ferry_retry_meta *from, int stage, int attempts,
                           const char *error, int64_t now_ms, int64_t delay_ms)
{
    memset(m, 0, sizeof(*m));
    if (from) {
        copy_text(m->topic, sizeof(m->topic), from->topic);
        m->partition = from->partition;
        m->offset = from->offset;
        m->timestamp_ms = from->timestamp_ms;
    } else {
        copy_text(m->topic, sizeof(m->topic), rec->topic);
        m->partition = rec->partition;
        m->offset = rec->offset;
        m->timestamp_ms = rec->timestamp_ms;
    }
    m->stage = stage;
    m->attempts = attempts;
    m->due_ms = delay_ms > INT64_MAX - now_ms ? INT64_MAX : now_ms + delay_ms;
    copy_text(m->error, sizeof(m->error), error);
}

/* ---- writing ---- */

static int is_written(const char *name)
{
    for (size_t i = 0; written[i]; i++)
        if (strcmp(name, written[i]) == 0)
            return 1;
    return 0;
}

static int add_text(rd_kafka_headers_t *h, const char *name, const char *text)
{
    return rd_kafka_header_add(h, name, -1, text, (ssize_t)strlen(text)) ? -1 : 0;
}

static int add_number(rd_kafka_headers_t *h, const char *name, int64_t number)
{
    char text[RETRY_NUMBER_MAX];

    snprintf(text, sizeof(text), "%" PRId64, number);
    return add_text(h, name, text);
}

/* Copies the source's headers into h, leaving out the ones written here. */
static int copy_source(rd_kafka_headers_t *h, const rd_kafka_headers_t *source)
{
    const char *name;
    const void *value;
    size_t size;

    if (!source)
        return 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(source, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (is_written(name))
            continue;
        if (rd_kafka_header_add(h, name, -1, value, value ? (ssize_t)size : -1))
            return -1;
    }
    return 0;
}

static int add_meta(rd_kafka_headers_t *h, const struct ferry_retry_meta *m, const char *route)
{
    int result = 0;

    result |= add_number(h, "ferry.retry.stage", m->stage);
    result |= add_number(h, "ferry.retry.due", m->due_ms);
    result |= add_number(h, "ferry.attempts", m->attempts);
    result |= add_text(h, "ferry.error", m->error);
    result |= add_text(h, "ferry.topic", m->topic);
    result |= add_number(h, "ferry.partition", m->partition);
    result |= add_number(h, "ferry.offset", m->offset);
    if (m->timestamp_ms >= 0)
        result |= add_number(h, "ferry.timestamp", m->timestamp_ms);
    result |= add_text(h, "ferry.route", route ? route : "");
    return result;
}

rd_kafka_headers_t *ferry_retry_headers_build(const rd_kafka_headers_t *source,
                                              const struct ferry_retry_meta *m, const char *route)
{
    size_t have = source ? rd_kafka_header_cnt(source) : 0;
    rd_kafka_headers_t *h = rd_kafka_headers_new(have + RETRY_HEADERS);

    if (!h)
        return NULL;
    if (copy_source(h, source) || add_meta(h, m, route)) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

rd_kafka_headers_t *ferry_retry_headers_strip(const rd_kafka_headers_t *source, size_t extra)
{
    size_t have = source ? rd_kafka_header_cnt(source) : 0;
    rd_kafka_headers_t *h = rd_kafka_headers_new(have + extra);

    if (h && copy_source(h, source)) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/* ---- reading ---- */

/* Finds header name as text in out; 0 when found, 1 when absent, -1 when too long. */
static int get_text(const rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    const void *value;
    size_t len;

    if (rd_kafka_header_get_last(h, name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 1;
    if (!value)
        len = 0;
    if (len >= size)
        return -1;
    if (len)
        memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

/* Reads header name as a decimal within [min, max]; 0 when found, 1 when absent, -1 when it
 * is not such a number. */
static int get_number(const rd_kafka_headers_t *h, const char *name, int64_t min, int64_t max,
                      int64_t *out)
{
    char text[RETRY_NUMBER_MAX], *end;
    long long v;
    int found = get_text(h, name, text, sizeof(text));

    if (found)
        return found;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int malformed(const char *name, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "retry topic record: header '%s' is missing or malformed", name);
    return -1;
}

/* The numbers every parked record has; ferry.retry.stage was read already. */
static int read_numbers(const rd_kafka_headers_t *h, struct ferry_retry_meta *m, char *errstr,
                        size_t errstr_size)
{
    int64_t v;

    if (get_number(h, "ferry.retry.due", 0, INT64_MAX, &m->due_ms))
        return malformed("ferry.retry.due", errstr, errstr_size);
    if (get_number(h, "ferry.attempts", 0, INT64_MAX, &v))
        return malformed("ferry.attempts", errstr, errstr_size);
    m->attempts = v < FERRY_RETRY_ATTEMPTS_MAX ? (int)v : FERRY_RETRY_ATTEMPTS_MAX;
    if (get_number(h, "ferry.partition", 0, INT32_MAX, &v))
        return malformed("ferry.partition", errstr, errstr_size);
    m->partition = (int32_t)v;
    if (get_number(h, "ferry.offset", 0, INT64_MAX, &m->offset))
        return malformed("ferry.offset", errstr, errstr_size);
    m->timestamp_ms = -1;
    if (get_number(h, "ferry.timestamp", 0, INT64_MAX, &m->timestamp_ms) < 0)
        return malformed("ferry.timestamp", errstr, errstr_size);
    return 0;
}

void ferry_retry_meta_origin(const struct ferry_retry_meta *m, const struct ferry_record *parked,
                             struct ferry_record *orig)
{
    *orig = *parked;
    orig->topic = m->topic;
    orig->partition = m->partition;
    orig->offset = m->offset;
    orig->timestamp_ms = m->timestamp_ms;
}

int ferry_retry_meta_read(const rd_kafka_headers_t *h, struct ferry_retry_meta *m, char *errstr,
                          size_t errstr_size)
{
    int64_t stage;
    int found;

    memset(m, 0, sizeof(*m));
    found = h ? get_number(h, "ferry.retry.stage", 1, FERRY_RETRY_STAGES_MAX, &stage) : 1;
    if (found > 0)
        return 0;
    if (found < 0)
        return malformed("ferry.retry.stage", errstr, errstr_size);
    m->stage = (int)stage;
    if (read_numbers(h, m, errstr, errstr_size))
        return -1;
    if (get_text(h, "ferry.topic", m->topic, sizeof(m->topic)) || !m->topic[0])
        return malformed("ferry.topic", errstr, errstr_size);
    /* the error is informative only: one too long to keep is left out rather than refused */
    if (get_text(h, "ferry.error", m->error, sizeof(m->error)) < 0)
        m->error[0] = '\0';
    return 1;
}

int ferry_retry_topics_stage(const struct ferry_retry_topics *t, const char *topic)
{
    for (int i = 0; t && topic && i < t->count; i++)
        if (strcmp(t->names[i], topic) == 0)
            return i + 1;
    return 0;
}

int ferry_retry_parked_read(const struct ferry_retry_topics *t, const struct ferry_record *rec,
                            struct ferry_retry_meta *m, char *errstr, size_t errstr_size)
{
    if (!ferry_retry_topics_stage(t, rec->topic)) {
        memset(m, 0, sizeof(*m));
        return 0;
    }
    return ferry_retry_meta_read(ferry_record_headers(rec), m, errstr, errstr_size);
}

int64_t ferry_retry_wait_ms(const struct ferry_retry_meta *m, int64_t now_ms)
{
    return m->due_ms > now_ms ? m->due_ms - now_ms : 0;
}
