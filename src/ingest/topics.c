/*
 * topics.c - the cache of topics ingest writes (see topics.h).
 *
 * The table has at least twice as many slots as it may ever hold entries, so a probe always
 * ends at an empty slot. Readers load slots with acquire; the writer publishes a finished
 * entry with release, so a reader that sees the pointer sees the whole entry.
 */
#include "ingest/topics.h"
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS_NUMBER_MAX 32 /* a decimal millisecond value */

struct entry {
    struct ferry_ingest_topic pub; /* first: a pointer to it is a pointer to the entry */
    _Atomic int32_t chosen;        /* see ferry_ingest_topic_chosen(); -1 before the first */
    char name[FERRY_TOPIC_NAME_MAX + 1];
};

struct ferry_ingest_topics {
    rd_kafka_t *rk;
    const ferry_patterns *rest;
    const ferry_auth *auth;
    size_t max_rest, nrest;
    size_t mask; /* slots - 1 */
    _Atomic(struct entry *) *slots;
    pthread_mutex_t lock; /* writers */
    int released;         /* under lock: handles are gone, make no more */
    char timeout[TOPICS_NUMBER_MAX];
};

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

ferry_ingest_topics *ferry_ingest_topics_new(rd_kafka_t *rk, const ferry_patterns *rest,
                                             const ferry_auth *auth, size_t max_rest, size_t fixed,
                                             int64_t delivery_timeout_ms, char *errstr,
                                             size_t errstr_size)
{
    ferry_ingest_topics *t = calloc(1, sizeof(*t));
    size_t slots = 16;

    while (slots < 2 * (max_rest + fixed) + 1)
        slots *= 2;
    if (t)
        t->slots = calloc(slots, sizeof(*t->slots));
    if (!t || !t->slots) {
        free(t);
        snprintf(errstr, errstr_size, "out of memory for a cache of %zu topic handles", slots);
        return NULL;
    }
    t->rk = rk;
    t->rest = rest;
    t->auth = auth;
    t->max_rest = max_rest;
    t->mask = slots - 1;
    snprintf(t->timeout, sizeof(t->timeout), "%lld", (long long)delivery_timeout_ms);
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

/* Finds name's entry, or the empty slot where it would go (*slot). */
static struct entry *find(ferry_ingest_topics *t, const char *name, size_t *slot)
{
    for (size_t i = hash(name) & t->mask;; i = (i + 1) & t->mask) {
        struct entry *e = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (!e || strcmp(e->name, name) == 0) {
            *slot = i;
            return e;
        }
    }
}

/* Makes a handle for name: rk's default topic configuration, with ingest's delivery timeout. */
static rd_kafka_topic_t *new_handle(ferry_ingest_topics *t, const char *name, char *errstr,
                                    size_t errstr_size)
{
    rd_kafka_topic_conf_t *conf = rd_kafka_default_topic_conf_dup(t->rk);
    rd_kafka_topic_t *rkt;
    char why[256];

    if (!conf) {
        snprintf(errstr, errstr_size, "topic '%s': out of memory for its handle's settings", name);
        return NULL;
    }
    if (rd_kafka_topic_conf_set(conf, "message.timeout.ms", t->timeout, why, sizeof(why))) {
        rd_kafka_topic_conf_destroy(conf);
        snprintf(errstr, errstr_size, "topic '%s': message.timeout.ms: %s", name, why);
        return NULL;
    }
    rkt = rd_kafka_topic_new(t->rk, name, conf); /* takes conf, made or not */
    if (!rkt)
        snprintf(errstr, errstr_size, "topic '%s': %s", name,
                 rd_kafka_err2str(rd_kafka_last_error()));
    return rkt;
}

/* Makes and publishes name's entry at slot; the caller holds the lock. */
static struct entry *add(ferry_ingest_topics *t, const char *name, size_t slot, int rest,
                         char *errstr, size_t errstr_size)
{
    struct entry *e;

    if (t->released) {
        snprintf(errstr, errstr_size, "topic '%s': ingest is stopping", name);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(errstr, errstr_size, "topic '%s': out of memory", name);
        return NULL;
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    atomic_init(&e->chosen, -1);
    e->pub.name = e->name;
    e->pub.rest = rest;
    e->pub.keys = ferry_auth_mask(t->auth, FERRY_AUTH_TOPICS, name);
    e->pub.rkt = new_handle(t, name, errstr, errstr_size);
    if (!e->pub.rkt) {
        free(e);
        return NULL;
    }
    atomic_store_explicit(&t->slots[slot], e, memory_order_release);
    return e;
}

const struct ferry_ingest_topic *ferry_ingest_topics_rest(ferry_ingest_topics *t, const char *name,
                                                          int key,
                                                          enum ferry_ingest_topics_refusal *refusal)
{
    char why[256];
    size_t slot;
    struct entry *e = find(t, name, &slot);
    int failed = 0;

    *refusal = FERRY_INGEST_TOPICS_MADE;
    if (e)
        return e->pub.rest ? &e->pub : NULL;
    if (!ferry_patterns_match(t->rest, name))
        return NULL;
    if (key >= 0 && !(ferry_auth_mask(t->auth, FERRY_AUTH_TOPICS, name) >> key & 1)) {
        *refusal = FERRY_INGEST_TOPICS_FORBIDDEN;
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    e = find(t, name, &slot); /* another thread may have added it meanwhile */
    if (!e && t->nrest == t->max_rest)
        *refusal = FERRY_INGEST_TOPICS_FULL;
    else if (!e && (e = add(t, name, slot, 1, why, sizeof(why))) != NULL)
        t->nrest++;
    else if (!e)
        failed = 1;
    pthread_mutex_unlock(&t->lock);
    if (failed)
        FLOG_ERROR_REPEATED("ingest", "rest_proxy", "%s; the request is answered 404", why);
    return e ? &e->pub : NULL;
}

const struct ferry_ingest_topic *ferry_ingest_topics_fixed(ferry_ingest_topics *t, const char *name,
                                                           char *errstr, size_t errstr_size)
{
    size_t slot;
    struct entry *e;

    pthread_mutex_lock(&t->lock);
    e = find(t, name, &slot);
    if (!e)
        e = add(t, name, slot, ferry_patterns_match(t->rest, name), errstr, errstr_size);
    pthread_mutex_unlock(&t->lock);
    return e ? &e->pub : NULL;
}

int32_t ferry_ingest_topic_follow(const struct ferry_ingest_topic *topic)
{
    const struct entry *e = (const struct entry *)topic;

    return atomic_load_explicit(&e->chosen, memory_order_relaxed);
}

void ferry_ingest_topic_chosen(const struct ferry_ingest_topic *topic, int32_t partition)
{
    struct entry *e = (struct entry *)topic;

    atomic_store_explicit(&e->chosen, partition, memory_order_relaxed);
}

void ferry_ingest_topics_release(ferry_ingest_topics *t)
{
    pthread_mutex_lock(&t->lock);
    t->released = 1;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i <= t->mask; i++) {
        struct entry *e = atomic_load(&t->slots[i]);
        if (e && e->pub.rkt) {
            rd_kafka_topic_destroy(e->pub.rkt);
            e->pub.rkt = NULL;
        }
    }
}

void ferry_ingest_topics_destroy(ferry_ingest_topics *t)
{
    if (!t)
        return;
    ferry_ingest_topics_release(t);
    for (size_t i = 0; i <= t->mask; i++)
        free(atomic_load(&t->slots[i]));
    free(t->slots);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
