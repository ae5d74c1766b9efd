/*
 * members.c - the member map: every instance's last heartbeat, and refcounted snapshots of the
 * live ones.
 *
 * The map is small (an entry per instance, FERRY_MEMBERS_MAX at most) and changes a few times
 * a second, so a snapshot is a deep copy, rebuilt on the first acquire after a change or after
 * a member's heartbeats went stale. Readers of a snapshot take no lock.
 */
#include "table/members.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A snapshot and what it owns. view comes first, so a view's address is its box's. */
struct view_box {
    struct ferry_members_view view;
    atomic_int refs;
    struct ferry_member *members;
    const char **names;
};

/* What an acquire returns when no snapshot could be made: no member is live. */
static struct view_box empty_box = {.view = {.expires_ms = INT64_MAX}};

struct ferry_members {
    pthread_mutex_t lock;
    int64_t timeout_ms;
    struct ferry_member *all; /* every member heard from, live or not */
    size_t count;
    struct view_box *current; /* the map holds one reference */
    int changed;              /* a heartbeat came since current was built */
};

static void box_free(struct view_box *b)
{
    for (size_t i = 0; b && i < b->view.count; i++)
        ferry_heartbeat_release(&b->members[i].hb);
    if (b) {
        free(b->members);
        free(b->names);
    }
    free(b);
}

static void box_unref(struct view_box *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        box_free(b);
}

ferry_members *ferry_members_new(int64_t timeout_ms)
{
    ferry_members *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->all = calloc(FERRY_MEMBERS_MAX, sizeof(*m->all));
    if (!m->all) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->timeout_ms = timeout_ms;
    m->changed = 1;
    return m;
}

void ferry_members_destroy(ferry_members *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        ferry_heartbeat_release(&m->all[i].hb);
    box_unref(m->current);
    pthread_mutex_destroy(&m->lock);
    free(m->all);
    free(m);
}

static int is_live(const ferry_members *m, const struct ferry_member *e, int64_t now_ms)
{
    return !e->hb.leaving && now_ms - e->seen_ms < m->timeout_ms;
}

static struct ferry_member *entry(ferry_members *m, const char *instance)
{
    for (size_t i = 0; i < m->count; i++)
        if (!strcmp(m->all[i].hb.instance, instance))
            return &m->all[i];
    return NULL;
}

/* Forgets members not heard from for ten timeouts, so the map holds the recent ones. */
static void prune(ferry_members *m, int64_t now_ms)
{
    for (size_t i = 0; i < m->count;) {
        if (now_ms - m->all[i].seen_ms < 10 * m->timeout_ms) {
            i++;
            continue;
        }
        ferry_heartbeat_release(&m->all[i].hb);
        m->all[i] = m->all[--m->count];
        memset(&m->all[m->count], 0, sizeof(m->all[m->count])); /* its copy moved to i */
    }
}

int ferry_members_update(ferry_members *m, struct ferry_heartbeat *hb, int64_t now_ms,
                         int64_t age_ms)
{
    int64_t seen = age_ms >= m->timeout_ms ? now_ms - age_ms : now_ms;
    struct ferry_member *e;
    int joined = 0;

    pthread_mutex_lock(&m->lock);
    prune(m, now_ms);
    e = entry(m, hb->instance);
    if (!e && m->count < FERRY_MEMBERS_MAX) {
        e = &m->all[m->count++];
        memset(e, 0, sizeof(*e));
        e->seen_ms = INT64_MIN / 2;
    }
    if (!e) {
        joined = -1;
        ferry_heartbeat_release(hb);
    } else {
        joined = !is_live(m, e, now_ms) && !hb->leaving && now_ms - seen < m->timeout_ms;
        ferry_heartbeat_release(&e->hb);
        e->hb = *hb;
        e->seen_ms = seen > e->seen_ms ? seen : e->seen_ms;
        memset(hb, 0, sizeof(*hb));
        m->changed = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return joined;
}

static int by_instance(const void *a, const void *b)
{
    const struct ferry_member *x = a, *y = b;
    return strcmp(x->hb.instance, y->hb.instance);
}

/* Copies the members live at now_ms into b. Returns 0, or -1 when out of memory. */
static int copy_live(ferry_members *m, struct view_box *b, int64_t now_ms)
{
    for (size_t i = 0; i < m->count; i++) {
        struct ferry_member *to = &b->members[b->view.count];
        if (!is_live(m, &m->all[i], now_ms))
            continue;
        if (ferry_heartbeat_copy(&to->hb, &m->all[i].hb))
            return -1;
        to->seen_ms = m->all[i].seen_ms;
        if (to->seen_ms + m->timeout_ms < b->view.expires_ms)
            b->view.expires_ms = to->seen_ms + m->timeout_ms;
        b->view.count++;
    }
    return 0;
}

/* A snapshot of the members live at now_ms; NULL when out of memory. */
static struct view_box *build(ferry_members *m, int64_t now_ms)
{
    struct view_box *b = calloc(1, sizeof(*b));
    size_t room = m->count ? m->count : 1;

    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->view.expires_ms = INT64_MAX;
    b->members = calloc(room, sizeof(*b->members));
    b->names = calloc(room, sizeof(*b->names));
    if (!b->members || !b->names || copy_live(m, b, now_ms)) {
        box_free(b);
        return NULL;
    }
    qsort(b->members, b->view.count, sizeof(*b->members), by_instance);
    for (size_t i = 0; i < b->view.count; i++)
        b->names[i] = b->members[i].hb.instance;
    b->view.members = b->members;
    b->view.names = b->names;
    return b;
}

const struct ferry_members_view *ferry_members_view_acquire(ferry_members *m, int64_t now_ms)
{
    struct view_box *b;

    pthread_mutex_lock(&m->lock);
    if (m->changed || !m->current || now_ms >= m->current->view.expires_ms) {
        b = build(m, now_ms);
        if (b) {
            box_unref(m->current);
            m->current = b;
            m->changed = 0;
        }
    }
    b = m->current;
    if (b)
        atomic_fetch_add(&b->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return b ? &b->view : &empty_box.view;
}

void ferry_members_view_release(ferry_members *m, const struct ferry_members_view *v)
{
    (void)m;
    if (v != &empty_box.view)
        box_unref((struct view_box *)(uintptr_t)v);
}

const struct ferry_member *ferry_members_find(const struct ferry_members_view *v,
                                              const char *instance)
{
    struct ferry_member key;

    snprintf(key.hb.instance, sizeof(key.hb.instance), "%s", instance);
    return v->count ? bsearch(&key, v->members, v->count, sizeof(*v->members), by_instance) : NULL;
}
