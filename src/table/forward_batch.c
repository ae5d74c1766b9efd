/*
 * forward_batch.c - plain GETs bound for the same holder, sent as one lookup.
 *
 * Under load many forwarded GETs wait in the forwarder's queue at once, and each alone costs a
 * request at both ends. The forwarder takes the queue whole: the plain GETs of one table whose
 * first candidate is the same holder become one POST /tables/{table}/lookup with detail=1 (rows
 * with what a GET says: forward_get.c turns each back into its GET's answer). When the batch
 * fails because its holder cannot serve it now (unreachable, stopping, not serving every key:
 * 508, silent past the batch's share of the time), each GET is sent alone to its next
 * candidate; when the batch failed for a reason of its own (an answer too large to relay, say),
 * or a GET has no other candidate, the GET is sent alone to the same holder. A batch counts in no
 * limit; its GETs do.
 */
#include "table/forward_int.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/json_scan.h"
#include "table/forward_get.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_GROUPS_MAX 64   /* batches made from one take of the queue */
#define BATCH_MEMBERS_MAX 512 /* GETs in one batch */
#define BATCH_BODY_MAX (64 * 1024 * 1024)
#define BATCH_NAME_MAX 1024

/* The GETs of one take that go to one holder. */
struct group {
    struct fwd *first; /* linked by next */
    size_t count;
};

static int same_group(const struct fwd *a, const struct fwd *b)
{
    return strcmp(a->batch_table, b->batch_table) == 0 && strcmp(a->bases[0], b->bases[0]) == 0;
}

/* Sends every GET of a batch alone: from its second candidate when skip_first is set and it
 * has one, else from its first. */
static void unbatch(ferry_table_forward *f, struct fwd **members, size_t n, int skip_first)
{
    for (size_t i = 0; i < n; i++) {
        members[i]->tried = skip_first && members[i]->nbases > 1 ? 1 : 0;
        ferry_forward_start(f, members[i]);
    }
}

/* Answers the batch's GETs from the holder's {"results": [...], "served_by": ...}, in order.
 * Returns how many were answered. */
static size_t answer_all(struct fwd *b, const char *body, size_t len)
{
    char name[BATCH_NAME_MAX];
    struct ferry_json_found results, by;
    struct ferry_json_cursor c, s;
    size_t index = 0, done = 0, n;
    const char *span;

    if (!ferry_json_is_valid(body, len) || ferry_json_find(body, len, "results", &results) != 1 ||
        results.type != FERRY_JSON_ARRAY || ferry_json_find(body, len, "served_by", &by) != 1 ||
        by.type != FERRY_JSON_STRING || by.len > sizeof(name))
        return 0;
    ferry_json_cursor_init(&s, by.span, by.len);
    if (ferry_json_read_string(&s, name, &n))
        return 0;
    name[n] = '\0';
    ferry_json_cursor_init(&c, results.span, results.len);
    if (ferry_json_enter(&c, '['))
        return 0;
    while (done < b->nmembers && ferry_json_next_element(&c, &index) == 1 &&
           ferry_json_read_value(&c, &span, &n) == 0) {
        struct fwd *w = b->members[done];
        int status = ferry_forward_get_answer(w->req, w->batch_table, span, n, name);
        if (status < 0)
            break;
        b->members[done++] = NULL;
        ferry_forward_finish(w->f, w, status);
    }
    return done;
}

/* The holder's answer to a batch (or ferry's own status when none came). Forwarder thread. */
static void on_batch(void *arg, int status, const char *body, size_t len)
{
    struct fwd *b = arg;
    size_t done = status == 200 ? answer_all(b, body, len) : 0;
    /* 503 or 504: the holder could not serve the batch now, and would not serve its GETs */
    int holder_failed = status != 200 && ferry_forward_client_status(status) != 502;

    unbatch(b->f, b->members + done, b->nmembers - done, holder_failed);
    b->nmembers = 0;
}

/* {"keys": [...]}: the batch's keys in base64. */
static int batch_body(struct fwd **members, size_t n, struct ferry_buf *out)
{
    int rc = ferry_buf_adds(out, "{\"keys\":[");

    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = (i && ferry_buf_addc(out, ',')) || ferry_buf_addc(out, '"') ||
             ferry_base64_encode(out, members[i]->batch_key, members[i]->batch_key_len,
                                 FERRY_BASE64_STD) ||
             ferry_buf_addc(out, '"');
    return rc || ferry_buf_adds(out, "]}") ? -1 : 0;
}

/* Makes the batch's own read: a lookup at the GETs' first candidate, within the soonest of
 * their deadlines, its time shared as the GET with the most candidates would share its own.
 * NULL when out of memory. */
static struct fwd *batch_new(ferry_table_forward *f, struct fwd **members, size_t n)
{
    const char *base = members[0]->bases[0];
    char path[BATCH_NAME_MAX + 64];
    int64_t deadline = members[0]->deadline_ms;
    size_t holders = members[0]->nbases;
    struct ferry_buf body;
    struct fwd *b = NULL;

    for (size_t i = 1; i < n; i++) {
        if (members[i]->deadline_ms < deadline)
            deadline = members[i]->deadline_ms;
        if (members[i]->nbases > holders)
            holders = members[i]->nbases;
    }
    snprintf(path, sizeof(path), "/tables/%s/lookup?key_format=base64&detail=1",
             members[0]->batch_table);
    ferry_buf_init(&body, BATCH_BODY_MAX);
    if (batch_body(members, n, &body) == 0) {
        struct ferry_forward_request fr = {.path_and_query = path,
                                           .body = body.data,
                                           .body_len = body.len,
                                           .bases = &base,
                                           .nbases = 1,
                                           .timeout_ms = deadline - ferry_clock_ms(),
                                           .answer = on_batch};
        b = ferry_forward_fwd_new(f, NULL, &fr);
    }
    ferry_buf_release(&body);
    if (b) {
        b->arg = b;
        b->holders = holders;
        b->members = members;
        b->nmembers = n;
    }
    return b;
}

/* Sends a group as one batch (or alone when it has one GET). */
static void send_group(ferry_table_forward *f, struct group *g)
{
    struct fwd **members = g->count > 1 ? malloc(g->count * sizeof(*members)) : NULL;
    struct fwd *b;
    size_t n = 0;

    if (!members) {
        while (g->first) {
            struct fwd *w = g->first;
            g->first = w->next;
            w->next = NULL;
            ferry_forward_start(f, w);
        }
        return;
    }
    for (struct fwd *w = g->first; w; w = w->next)
        members[n++] = w;
    for (size_t i = 0; i < n; i++)
        members[i]->next = NULL;
    b = batch_new(f, members, n);
    if (b) {
        ferry_forward_start(f, b);
        return;
    }
    unbatch(f, members, n, 0);
    free(members);
}

/* The group w goes in, made when new; NULL when there is no room for another. */
static struct group *group_for(struct group *groups, size_t *n, struct fwd *w)
{
    for (size_t i = 0; i < *n; i++)
        if (groups[i].first && same_group(groups[i].first, w))
            return &groups[i];
    if (*n == BATCH_GROUPS_MAX)
        return NULL;
    groups[*n] = (struct group){NULL, 0};
    return &groups[(*n)++];
}

void ferry_forward_batch_start(ferry_table_forward *f, struct fwd *queue)
{
    struct group groups[BATCH_GROUPS_MAX];
    size_t ngroups = 0;

    while (queue) {
        struct fwd *w = queue;
        struct group *g = w->batch_key ? group_for(groups, &ngroups, w) : NULL;
        queue = w->next;
        w->next = NULL;
        if (!g) {
            ferry_forward_start(f, w);
            continue;
        }
        w->next = g->first;
        g->first = w;
        if (++g->count == BATCH_MEMBERS_MAX) {
            send_group(f, g);
            *g = (struct group){NULL, 0};
        }
    }
    for (size_t i = 0; i < ngroups; i++)
        if (groups[i].first)
            send_group(f, &groups[i]);
}
