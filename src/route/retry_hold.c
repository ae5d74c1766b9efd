/*
 * retry_hold.c - retry-topic partitions held until due (see retry_hold.h): a list to find a
 * partition by name and a heap (core/heap.c) ordered by due time. Held partitions are few
 * (retry topics times their partitions assigned here), so the list is searched linearly. A
 * released partition leaves a mark, one at most per partition, with the offset it was sought
 * back to, so that the record there is known to be due when it comes again.
 */
#include "route/retry_hold.h"
#include "core/heap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

struct held {
    struct ferry_heap_node node; /* key: the due time */
    LIST_ENTRY(held) link;
    int32_t partition;
    int64_t offset;
    char topic[]; /* NUL-terminated */
};

LIST_HEAD(held_list, held);

struct ferry_retry_hold {
    struct held_list all;
    struct held_list released; /* marks of released partitions: node unused */
    struct ferry_heap due;
    size_t count;
};

ferry_retry_hold *ferry_retry_hold_new(void)
{
    ferry_retry_hold *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    LIST_INIT(&h->all);
    LIST_INIT(&h->released);
    ferry_heap_init(&h->due);
    return h;
}

static void held_unlink(ferry_retry_hold *h, struct held *e)
{
    ferry_heap_remove(&h->due, &e->node);
    LIST_REMOVE(e, link);
    h->count--;
}

static void held_free(ferry_retry_hold *h, struct held *e)
{
    held_unlink(h, e);
    free(e);
}

void ferry_retry_hold_destroy(ferry_retry_hold *h)
{
    struct held *e;

    if (!h)
        return;
    while ((e = LIST_FIRST(&h->all)))
        held_free(h, e);
    while ((e = LIST_FIRST(&h->released))) {
        LIST_REMOVE(e, link);
        free(e);
    }
    ferry_heap_release(&h->due);
    free(h);
}

static struct held *find_in(const struct held_list *list, const char *topic, int32_t partition)
{
    struct held *e;

    LIST_FOREACH(e, list, link)
        if (e->partition == partition && strcmp(e->topic, topic) == 0)
            return e;
    return NULL;
}

static struct held *find(const ferry_retry_hold *h, const char *topic, int32_t partition)
{
    return find_in(&h->all, topic, partition);
}

/* Drops the release mark of topic/partition, if any. */
static void unmark(ferry_retry_hold *h, const char *topic, int32_t partition)
{
    struct held *e = find_in(&h->released, topic, partition);

    if (e) {
        LIST_REMOVE(e, link);
        free(e);
    }
}

int ferry_retry_hold_park(ferry_retry_hold *h, const char *topic, int32_t partition, int64_t offset,
                          int64_t due_ms)
{
    size_t len = strlen(topic);
    struct held *e;

    if (find(h, topic, partition))
        return 1;
    e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return -1;
    memcpy(e->topic, topic, len + 1);
    e->partition = partition;
    e->offset = offset;
    e->node.key = due_ms;
    if (ferry_heap_push(&h->due, &e->node)) {
        free(e);
        return -1;
    }
    LIST_INSERT_HEAD(&h->all, e, link);
    h->count++;
    return 0;
}

int ferry_retry_hold_held(const ferry_retry_hold *h, const char *topic, int32_t partition)
{
    return find(h, topic, partition) != NULL;
}

int64_t ferry_retry_hold_next_ms(const ferry_retry_hold *h)
{
    const struct ferry_heap_node *n = ferry_heap_peek(&h->due);

    return n ? n->key : INT64_MAX;
}

size_t ferry_retry_hold_release_due(ferry_retry_hold *h, int64_t now_ms,
                                    void (*resume)(void *arg, const char *topic, int32_t partition,
                                                   int64_t offset),
                                    void *arg)
{
    struct ferry_heap_node *n;
    size_t released = 0;

    while ((n = ferry_heap_peek(&h->due)) && n->key <= now_ms) {
        struct held *e = (struct held *)n;
        /* unlinked first, so that resume may hold the same partition again */
        held_unlink(h, e);
        unmark(h, e->topic, e->partition);
        LIST_INSERT_HEAD(&h->released, e, link);
        resume(arg, e->topic, e->partition, e->offset);
        released++;
    }
    return released;
}

int ferry_retry_hold_take_released(ferry_retry_hold *h, const char *topic, int32_t partition,
                                   int64_t offset)
{
    struct held *e = find_in(&h->released, topic, partition);

    if (!e || e->offset != offset)
        return 0;
    unmark(h, topic, partition);
    return 1;
}

void ferry_retry_hold_forget(ferry_retry_hold *h, const char *topic, int32_t partition)
{
    struct held *e = find(h, topic, partition);

    if (e)
        held_free(h, e);
    unmark(h, topic, partition);
}

void ferry_retry_hold_each(const ferry_retry_hold *h,
                           void (*fn)(void *arg, const char *topic, int32_t partition), void *arg)
{
    const struct held *e;

    LIST_FOREACH(e, &h->all, link)
        fn(arg, e->topic, e->partition);
}

size_t ferry_retry_hold_count(const ferry_retry_hold *h)
{
    return h->count;
}
