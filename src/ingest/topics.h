/*
 * topics.h - the topics ingest writes: which the REST Proxy API may write, which API keys may
 * write each, and the producer's topic handle of each, cached.
 *
 * A topic is looked up on every request, so lookups take no lock: entries live in an
 * open-addressing table of atomic pointers, only ever added (under a mutex) and never removed
 * until the table is destroyed. Whether a topic is allowed and which keys may write it is
 * decided once, when its entry is made.
 */
#ifndef FERRY_INGEST_TOPICS_H
#define FERRY_INGEST_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/auth.h"
#include "core/pattern.h"

typedef struct ferry_ingest_topics ferry_ingest_topics;

struct ferry_ingest_topic {
    const char *name;
    rd_kafka_topic_t *rkt; /* NULL after ferry_ingest_topics_release() */
    uint64_t keys;         /* bit i: API key i may write this topic */
    int rest;              /* the REST Proxy API may write it */
};

/* Makes an empty cache for the producer rk. rest lists the topics the REST Proxy API may
 * write (borrowed; it must outlive the cache), of which at most max_rest get entries; fixed
 * is the number of other topics (webhooks') that ferry_ingest_topics_fixed() will add.
 * Handles are made with rk's default topic configuration plus message.timeout.ms =
 * delivery_timeout_ms. Returns NULL with errstr. Main thread. */
ferry_ingest_topics *ferry_ingest_topics_new(rd_kafka_t *rk, const ferry_patterns *rest,
                                             const ferry_auth *auth, size_t max_rest, size_t fixed,
                                             int64_t delivery_timeout_ms, char *errstr,
                                             size_t errstr_size);

/* Why ferry_ingest_topics_rest() made no entry for an allowed topic. */
enum ferry_ingest_topics_refusal {
    FERRY_INGEST_TOPICS_MADE = 0,  /* an entry was found or made, or the topic is not allowed */
    FERRY_INGEST_TOPICS_FULL,      /* max_rest topics have entries already */
    FERRY_INGEST_TOPICS_FORBIDDEN, /* key may not write it: no entry is spent on the request */
};

/* Returns the entry of a topic that the REST Proxy API may write, making it on first use for
 * a request with API key `key` (an index of the cache's auth, or -1 without one), or NULL
 * when the topic is not allowed, or with *refusal set, or when its entry cannot be made
 * (logged). A cached entry is returned whatever the key: its `keys` say who may write it.
 * Server threads, any number at once. */
const struct ferry_ingest_topic *
ferry_ingest_topics_rest(ferry_ingest_topics *t, const char *name, int key,
                         enum ferry_ingest_topics_refusal *refusal);

/* Returns the entry of a configured topic (a webhook's), making it when needed; NULL with
 * errstr on failure. Main thread, before the server starts. */
const struct ferry_ingest_topic *ferry_ingest_topics_fixed(ferry_ingest_topics *t, const char *name,
                                                           char *errstr, size_t errstr_size);

/* The partition that librdkafka's partitioner last chose for one of this topic's records
 * without key or partition, as its delivery report said, or -1 before the first such report.
 * The other keyless records of a request go there (produce.c), so that a request's records
 * take one partition without each asking the partitioner. Any thread. */
int32_t ferry_ingest_topic_follow(const struct ferry_ingest_topic *topic);

/* Records partition as the partitioner's latest choice for the topic. Any thread. */
void ferry_ingest_topic_chosen(const struct ferry_ingest_topic *topic, int32_t partition);

/* Destroys every topic handle (before the producer is destroyed); entries stay readable, and
 * no new entry is made afterwards. Main thread, once no request can be producing. */
void ferry_ingest_topics_release(ferry_ingest_topics *t);

/* Frees the cache (releasing handles first if needed). Accepts NULL. Main thread. */
void ferry_ingest_topics_destroy(ferry_ingest_topics *t);

#endif
