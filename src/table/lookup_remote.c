/*
 * lookup_remote.c - a multi-get over the holders of a partitioned table.
 *
 * The keys are read once and each is given its partition and where it is answered
 * (holder.c): here, at a holder (grouped by the holder chosen first, each group one lookup
 * sent through the forwarder with its keys in base64 and the group's other candidates to try
 * next), or nowhere (503 for that key). Each key's answer is kept as its JSON text; when the
 * last group has answered, the results are written in the order asked. A lookup forwarded to
 * this instance (the hop header) is answered from its store only when it serves every key's
 * partition, else 508, and the sender tries the group's next holder.
 */
#include "table/lookup_remote.h"
#include "core/base64.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "table/cluster.h"
#include "table/forward.h"
#include "table/holder.h"
#include "table/query.h"
#include "table/reply.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOKUP_ANSWER_MAX (64 * 1024 * 1024) /* the merged answer */
#define LOOKUP_GROUPS_MAX 64                 /* holders one lookup may ask */

static const char *const lookup_params[] = {"key_format", NULL};
static const char *const forwarded_params[] = {"key_format", "detail", NULL};

/* One key of the lookup and its answer. */
struct item {
    char *key;
    size_t len;
    int group;    /* index into groups, or -1 when answered here or refused */
    char *answer; /* its JSON object, once known */
    size_t answer_len;
};

struct group {
    char bases[FERRY_FORWARD_CANDIDATES_MAX][FERRY_FORWARD_URL_MAX];
    size_t nbases;
    struct multi *m;
};

struct multi {
    struct table *t;
    ferry_http_req *req;
    int64_t started_us;
    struct item *items;
    size_t count, alloc;
    struct group groups[LOOKUP_GROUPS_MAX];
    size_t ngroups;
    atomic_int pending; /* groups under way, plus one for the server thread while it sends */
    int forwarded;      /* the lookup came from another instance: answered here or not at all */
    int detail;         /* detail=1: rows with what a GET says (batched GETs of an instance) */
    int status;         /* 200 unless something failed as a whole */
};

static void multi_free(struct multi *m)
{
    for (size_t i = 0; m && i < m->count; i++) {
        free(m->items[i].key);
        free(m->items[i].answer);
    }
    if (m)
        free(m->items);
    free(m);
}

/* Keeps a copy of a key of the body. */
static int take_key(void *arg, const char *key, size_t len, const char **error)
{
    struct multi *m = arg;
    struct item *it;

    if (m->count == m->alloc) {
        size_t more = m->alloc ? m->alloc * 2 : 64;
        void *p = realloc(m->items, more * sizeof(*m->items));
        if (!p) {
            *error = "out of memory";
            return -1;
        }
        m->items = p;
        m->alloc = more;
    }
    it = &m->items[m->count];
    memset(it, 0, sizeof(*it));
    it->group = -1;
    it->key = malloc(len ? len : 1);
    if (!it->key) {
        *error = "out of memory";
        return -1;
    }
    memcpy(it->key, key, len);
    it->len = len;
    m->count++;
    return 0;
}

static int set_answer(struct item *it, const char *text, size_t len)
{
    free(it->answer);
    it->answer = malloc(len ? len : 1);
    if (!it->answer)
        return -1;
    memcpy(it->answer, text, len);
    it->answer_len = len;
    return 0;
}

/* Answers an item with an error object of ferry's own. */
static int set_error(struct item *it, int code)
{
    struct ferry_buf b;
    int rc;

    ferry_buf_init(&b, it->len * 2 + 128);
    rc = ferry_table_lookup_add_error(&b, it->key, it->len, code) || set_answer(it, b.data, b.len);
    ferry_buf_release(&b);
    return rc ? -1 : 0;
}

/* ---- the merged answer ---- */

static void respond(struct multi *m)
{
    struct ferry_buf out;

    ferry_buf_init(&out, LOOKUP_ANSWER_MAX);
    ferry_buf_adds(&out, "{\"results\":[");
    for (size_t i = 0; i < m->count; i++) {
        if (i)
            ferry_buf_addc(&out, ',');
        if (m->items[i].answer)
            ferry_buf_add(&out, m->items[i].answer, m->items[i].answer_len);
        else
            m->status = 500;
    }
    ferry_buf_addc(&out, ']');
    if (m->detail) {
        const char *self = ferry_table_cluster_instance(m->t->owner->cluster);
        ferry_buf_adds(&out, ",\"served_by\":");
        ferry_json_add_string(&out, self, strlen(self));
    }
    ferry_buf_adds(&out, "}\n");
    if (m->status == 200 && out.failed)
        m->status = 413;
    if (m->status == 200)
        ferry_http_respond(m->req, 200, "application/json", out.data, out.len);
    else if (m->status == 413)
        ferry_http_respond_error(m->req, 413, 0,
                                 "the answer would pass %d bytes: ask for fewer keys",
                                 LOOKUP_ANSWER_MAX);
    else
        ferry_http_respond_error(m->req, m->status, 0, "table '%s': out of memory",
                                 m->t->cfg->name);
    ferry_table_count(m->t, m->status, m->started_us);
    ferry_buf_release(&out);
}

/* Drops one from pending; whoever reaches 0 answers and frees. */
static void release(struct multi *m)
{
    if (atomic_fetch_sub(&m->pending, 1) == 1) {
        respond(m);
        multi_free(m);
    }
}

/* ---- a group's answer ---- */

/* Takes the holder's {"results":[...]} for group g, in the order its keys were sent. Returns
 * 0, or -1 when the answer does not hold one result per key. */
static int take_results(struct multi *m, size_t g, const char *body, size_t len)
{
    char name[FERRY_JSON_NAME_MAX + 1];
    struct ferry_json_cursor c;
    size_t member = 0, index = 0, at = 0;
    int truncated, more;

    ferry_json_cursor_init(&c, body, len);
    if (!ferry_json_is_valid(body, len) || ferry_json_enter(&c, '{'))
        return -1;
    while ((more = ferry_json_next_member(&c, &member, name, &truncated)) == 1) {
        if (strcmp(name, "results") != 0 || ferry_json_enter(&c, '[')) {
            if (ferry_json_skip(&c))
                return -1;
            continue;
        }
        while ((more = ferry_json_next_element(&c, &index)) == 1) {
            const char *span;
            size_t n;
            while (at < m->count && m->items[at].group != (int)g)
                at++;
            if (at == m->count || ferry_json_read_value(&c, &span, &n) ||
                set_answer(&m->items[at++], span, n))
                return -1;
        }
    }
    while (at < m->count && m->items[at].group != (int)g)
        at++;
    return more < 0 || at != m->count ? -1 : 0;
}

/* The forwarder's answer for a group. Runs on the forwarder thread. */
static void on_group(void *arg, int status, const char *body, size_t len)
{
    struct group *gr = arg;
    struct multi *m = gr->m;
    size_t g = (size_t)(gr - m->groups);

    if (status == 200 && take_results(m, g, body, len) == 0)
        return;
    for (size_t i = 0; i < m->count; i++)
        if (m->items[i].group == (int)g &&
            set_error(&m->items[i], status == 200 ? 502 : ferry_forward_client_status(status)))
            m->status = 500;
}

static void on_group_done(void *arg, int status)
{
    struct group *gr = arg;

    (void)status;
    release(gr->m);
}

/* ---- sending ---- */

/* The group of the holder chosen first for a key, made when new. -1 when there are too many. */
static int group_of(struct multi *m, char bases[][FERRY_FORWARD_URL_MAX], size_t n)
{
    for (size_t g = 0; g < m->ngroups; g++)
        if (strcmp(m->groups[g].bases[0], bases[0]) == 0)
            return (int)g;
    if (m->ngroups == LOOKUP_GROUPS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        memcpy(m->groups[m->ngroups].bases[i], bases[i], FERRY_FORWARD_URL_MAX);
    m->groups[m->ngroups].nbases = n;
    m->groups[m->ngroups].m = m;
    return (int)m->ngroups++;
}

/* Decides where each key is answered, answering here the ones this instance serves. Returns
 * 0, or -1 when out of memory. */
static int place_keys(struct multi *m, ferry_store *store)
{
    char bases[FERRY_FORWARD_CANDIDATES_MAX][FERRY_FORWARD_URL_MAX], why[256];
    struct ferry_buf b;
    int rc = 0;

    ferry_buf_init(&b, LOOKUP_ANSWER_MAX);
    for (size_t i = 0; rc == 0 && i < m->count; i++) {
        struct item *it = &m->items[i];
        int32_t p = ferry_table_key_partition(m->t, it->key, it->len);
        size_t n = 0;
        enum ferry_holder_choice c = ferry_table_holder_choose(m->t, p, m->forwarded, bases, &n);
        if (c == FERRY_HOLDER_FORWARD)
            it->group = group_of(m, bases, n);
        if (c == FERRY_HOLDER_LOCAL) {
            ferry_buf_reset(&b);
            rc = (m->detail
                      ? ferry_table_lookup_add_detail(m->t, store, it->key, it->len, &b, why,
                                                      sizeof(why))
                      : ferry_table_lookup_add(store, it->key, it->len, &b, why, sizeof(why))) ||
                 set_answer(it, b.data, b.len);
        } else if (it->group < 0) {
            rc = set_error(it, 503);
        }
    }
    ferry_buf_release(&b);
    return rc;
}

/* The body of a group's lookup: its keys in base64. */
static int group_body(struct multi *m, size_t g, struct ferry_buf *out)
{
    int n = 0, rc = ferry_buf_adds(out, "{\"keys\":[");

    for (size_t i = 0; rc == 0 && i < m->count; i++) {
        if (m->items[i].group != (int)g)
            continue;
        rc = (n++ && ferry_buf_addc(out, ',')) || ferry_buf_addc(out, '"') ||
             ferry_base64_encode(out, m->items[i].key, m->items[i].len, FERRY_BASE64_STD) ||
             ferry_buf_addc(out, '"');
    }
    return rc || ferry_buf_adds(out, "]}") ? -1 : 0;
}

/* Sends group g; answers its keys with 503 when it cannot be sent. */
static void send_group(struct multi *m, size_t g, const char *path)
{
    const char *b[FERRY_FORWARD_CANDIDATES_MAX];
    struct group *gr = &m->groups[g];
    struct ferry_buf body;
    struct ferry_forward_request fr = {.path_and_query = path,
                                       .bases = b,
                                       .nbases = gr->nbases,
                                       .timeout_ms = m->t->owner->forward_timeout_ms,
                                       .answer = on_group,
                                       .done = on_group_done,
                                       .arg = gr};

    for (size_t i = 0; i < gr->nbases; i++)
        b[i] = gr->bases[i];
    ferry_buf_init(&body, LOOKUP_ANSWER_MAX);
    atomic_fetch_add(&m->pending, 1);
    if (group_body(m, g, &body) == 0) {
        fr.body = body.data;
        fr.body_len = body.len;
        if (ferry_table_forward_call(m->t->owner->forward, &fr) == 0) {
            ferry_buf_release(&body);
            return;
        }
    }
    ferry_buf_release(&body);
    on_group(gr, 503, NULL, 0);
    atomic_fetch_sub(&m->pending, 1);
}

/* ---- the handler ---- */

/* A lookup forwarded here: answered from the store only when this instance serves every key's
 * partition. Returns nonzero when it answered 508. */
static int refuse_unserved(struct multi *m)
{
    for (size_t i = 0; i < m->count; i++) {
        int32_t p = ferry_table_key_partition(m->t, m->items[i].key, m->items[i].len);
        if (p < 0 || !atomic_load(&m->t->parts[p].held) || !atomic_load(&m->t->parts[p].serving)) {
            ferry_http_respond_error(m->req, 508, 0,
                                     "table '%s': this instance does not serve every key's "
                                     "partition (a forwarded read is not forwarded again)",
                                     m->t->cfg->name);
            ferry_table_count(m->t, 508, m->started_us);
            return 1;
        }
    }
    return 0;
}

/* Reads the body's keys into m; answers 400 (or 503) and returns -1 when it cannot. */
static int read_keys(struct multi *m)
{
    const char *format = ferry_http_req_query(m->req, "key_format");
    char why[256];
    int bad = ferry_table_check_query(m->req, m->forwarded ? forwarded_params : lookup_params, why,
                                      sizeof(why));
    int b64 = format && strcmp(format, "base64") == 0;
    size_t n;
    const char *body = ferry_http_req_body(m->req, &n), *error = NULL;
    char *scratch = malloc(n + 1);
    int status = 400;

    if (bad)
        ferry_http_respond_error(m->req, 400, 0, "%s", why);
    else if (format && !b64 && strcmp(format, "raw") != 0)
        ferry_http_respond_error(m->req, 400, 0, "key_format: expected raw or base64, got '%s'",
                                 format);
    else if (!scratch)
        ferry_http_respond_error(m->req, status = 503, 0, "out of memory");
    else if (ferry_table_lookup_walk(m->t, body, n, b64, scratch, take_key, m, &error))
        ferry_http_respond_error(m->req, 400, 0, "body: %s", error ? error : "out of memory");
    else
        status = 0;
    if (status)
        ferry_table_count(m->t, status, m->started_us);
    free(scratch);
    return status ? -1 : 0;
}

/* Answers here, or sends the groups and lets the last answer finish. */
static void fan_out(struct multi *m)
{
    ferry_store *store = ferry_table_store_acquire(m->t);
    char path[FERRY_FORWARD_URL_MAX];

    if (!store || place_keys(m, store)) {
        ferry_http_respond_error(m->req, 503, 0, "table '%s': %s", m->t->cfg->name,
                                 store ? "out of memory" : "its store is closed");
        ferry_table_count(m->t, 503, m->started_us);
        if (store)
            ferry_table_store_release(m->t);
        multi_free(m);
        return;
    }
    ferry_table_store_release(m->t);
    snprintf(path, sizeof(path), "/tables/%s/lookup?key_format=base64", m->t->cfg->name);
    if (m->ngroups)
        ferry_http_suspend(m->req);
    atomic_store(&m->pending, 1);
    for (size_t g = 0; g < m->ngroups; g++)
        send_group(m, g, path);
    release(m);
}

void ferry_table_lookup_partitioned(struct table *t, ferry_http_req *req, int64_t started_us)
{
    struct multi *m = calloc(1, sizeof(*m));

    if (!m) {
        ferry_http_respond_error(req, 503, 0, "out of memory");
        ferry_table_count(t, 503, started_us);
        return;
    }
    *m = (struct multi){.t = t, .req = req, .started_us = started_us, .status = 200};
    m->forwarded = ferry_http_req_header(req, FERRY_FORWARD_HOP_HEADER) != NULL;
    if ((atomic_load(&t->state) == TABLE_STARTING || t->npartitions == 0) &&
        ferry_table_refuse_unplaced(t, req, m->forwarded, started_us)) {
        multi_free(m);
        return;
    }
    m->detail = m->forwarded && ferry_http_req_query(req, "detail");
    if (read_keys(m) || (m->forwarded && refuse_unserved(m))) {
        multi_free(m);
        return;
    }
    fan_out(m);
}
