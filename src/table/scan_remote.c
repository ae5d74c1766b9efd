/*
 * scan_remote.c - a scan over the holders of a partitioned table.
 *
 * Each partition is read where holder.c says a read of it is answered: here, or at the
 * freshest serving holder. The partitions read elsewhere are grouped by holder and asked for
 * in one scan each (the same prefix, limit and cursor, and `partitions=` naming the group's
 * partitions, with the hop header); this instance scans its own. Every part gives at most
 * `limit` rows after the cursor in key order, so the page is the first `limit` rows of all of
 * them merged by their store cursors (store.h: the same on every instance), and the cursor to
 * go on with is the last row's. A scan forwarded here reads the named partitions if it serves
 * them all, else answers 508.
 */
#include "table/scan_remote.h"
#include "core/base64.h"
#include "core/json_scan.h"
#include "table/forward.h"
#include "table/holder.h"
#include "table/query.h"
#include "table/reply.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_ANSWER_MAX (64 * 1024 * 1024)
#define SCAN_GROUPS_MAX 64
#define SCAN_PATH_MAX (256 * 1024)

/* One row of a part, kept until the merge. */
struct srow {
    char *json;
    size_t len;
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len;
};

struct part {
    char bases[FERRY_FORWARD_CANDIDATES_MAX][FERRY_FORWARD_URL_MAX];
    size_t nbases;
    unsigned char *partitions; /* [npartitions]: the partitions asked of this holder */
    struct merge *m;
};

struct merge {
    struct table *t;
    ferry_http_req *req;
    int64_t started_us;
    struct ferry_scan_args args;
    struct srow *rows;
    size_t count, alloc;
    int more;   /* some part has rows after its page */
    int status; /* 200, or the status a part failed with */
    struct part parts[SCAN_GROUPS_MAX];
    size_t nparts;
    atomic_int pending;
    pthread_mutex_t lock; /* rows, more, status: parts answer on the forwarder's thread */
};

static void merge_free(struct merge *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++)
        free(m->rows[i].json);
    for (size_t i = 0; i < m->nparts; i++)
        free(m->parts[i].partitions);
    free(m->rows);
    ferry_table_scan_args_release(&m->args);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Keeps a row (under the lock). */
static int keep_row(void *arg, const char *json, size_t len, const void *cursor, size_t cursor_len)
{
    struct merge *m = arg;
    struct srow *r;

    if (m->count == m->alloc) {
        size_t more = m->alloc ? m->alloc * 2 : 64;
        void *p = realloc(m->rows, more * sizeof(*m->rows));
        if (!p)
            return -1;
        m->rows = p;
        m->alloc = more;
    }
    r = &m->rows[m->count];
    r->json = malloc(len ? len : 1);
    if (!r->json || cursor_len > sizeof(r->cursor)) {
        free(r->json);
        return -1;
    }
    memcpy(r->json, json, len);
    r->len = len;
    memcpy(r->cursor, cursor, cursor_len);
    r->cursor_len = cursor_len;
    m->count++;
    return 0;
}

/* ---- the merged page ---- */

static int by_cursor(const void *a, const void *b)
{
    const struct srow *x = a, *y = b;
    return ferry_store_cursor_cmp(x->cursor, x->cursor_len, y->cursor, y->cursor_len);
}

static void respond(struct merge *m)
{
    size_t take = m->count < m->args.limit ? m->count : m->args.limit;
    struct ferry_buf out;

    if (m->status != 200) {
        if (m->status == 503)
            ferry_http_add_header(m->req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
        ferry_http_respond_error(m->req, m->status, 0,
                                 "table '%s': a part of the scan could not be read",
                                 m->t->cfg->name);
        ferry_table_count(m->t, m->status, m->started_us);
        return;
    }
    if (m->count) /* no part found a row: rows is NULL, which qsort may not be given */
        qsort(m->rows, m->count, sizeof(*m->rows), by_cursor);
    ferry_buf_init(&out, SCAN_ANSWER_MAX);
    ferry_buf_adds(&out, "{\"rows\":[");
    for (size_t i = 0; i < take; i++) {
        if (i)
            ferry_buf_addc(&out, ',');
        ferry_buf_add(&out, m->rows[i].json, m->rows[i].len);
    }
    ferry_buf_adds(&out, "],\"next\":");
    if (take && (m->count > take || m->more)) {
        ferry_buf_addc(&out, '"');
        ferry_base64_encode(&out, m->rows[take - 1].cursor, m->rows[take - 1].cursor_len,
                            FERRY_BASE64_URL);
        ferry_buf_adds(&out, "\"}\n");
    } else {
        ferry_buf_adds(&out, "null}\n");
    }
    if (out.failed)
        ferry_http_respond_error(m->req, 413, 0, "the page would pass %d bytes: ask for fewer",
                                 SCAN_ANSWER_MAX);
    else
        ferry_http_respond(m->req, 200, "application/json", out.data, out.len);
    ferry_table_count(m->t, out.failed ? 413 : 200, m->started_us);
    ferry_buf_release(&out);
}

static void release(struct merge *m)
{
    if (atomic_fetch_sub(&m->pending, 1) == 1) {
        respond(m);
        merge_free(m);
    }
}

/* ---- a holder's page ---- */

/* Decodes the JSON string span[0..len) into out (room for len bytes). */
static int decode_string(const char *span, size_t len, char *out, size_t *n)
{
    struct ferry_json_cursor c;

    ferry_json_cursor_init(&c, span, len);
    return ferry_json_read_string(&c, out, n);
}

/* Reads one row's key from its JSON and keeps the row with the key's cursor. */
static int take_row(struct merge *m, ferry_store *store, const char *span, size_t len)
{
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    struct ferry_json_found key, enc;
    size_t n, cursor_len;
    char *bytes, why[256];
    int rc = -1;

    if (ferry_json_find(span, len, "key", &key) != 1 || key.type != FERRY_JSON_STRING)
        return -1;
    bytes = malloc(key.len);
    if (!bytes)
        return -1;
    if (decode_string(key.span, key.len, bytes, &n))
        goto out;
    if (ferry_json_find(span, len, "key_encoding", &enc) == 1 &&
        ferry_base64_decode(bytes, n, FERRY_BASE64_STD, &n))
        goto out;
    if (ferry_store_key_cursor(store, bytes, n, cursor, &cursor_len, why, sizeof(why)) == 0)
        rc = keep_row(m, span, len, cursor, cursor_len);
out:
    free(bytes);
    return rc;
}

/* Takes a holder's {"rows": [...], "next": ...}. Returns 0, or -1 when it is not one. */
static int take_page(struct merge *m, const char *body, size_t len)
{
    ferry_store *store = ferry_table_store_acquire(m->t);
    struct ferry_json_found rows, next;
    struct ferry_json_cursor c;
    size_t index = 0;
    int more, rc = store && ferry_json_is_valid(body, len) ? 0 : -1;

    if (rc == 0 &&
        (ferry_json_find(body, len, "rows", &rows) != 1 || rows.type != FERRY_JSON_ARRAY))
        rc = -1;
    if (rc == 0) {
        ferry_json_cursor_init(&c, rows.span, rows.len);
        rc = ferry_json_enter(&c, '[');
    }
    while (rc == 0 && (more = ferry_json_next_element(&c, &index)) == 1) {
        const char *span;
        size_t n;
        rc = ferry_json_read_value(&c, &span, &n) || take_row(m, store, span, n) ? -1 : 0;
    }
    if (rc == 0 && ferry_json_find(body, len, "next", &next) == 1 && next.type == FERRY_JSON_STRING)
        m->more = 1;
    if (store)
        ferry_table_store_release(m->t);
    return rc;
}

static void on_part(void *arg, int status, const char *body, size_t len)
{
    struct part *p = arg;
    struct merge *m = p->m;

    pthread_mutex_lock(&m->lock);
    if (status != 200 || take_page(m, body, len))
        m->status = status == 200 ? 502 : ferry_forward_client_status(status);
    pthread_mutex_unlock(&m->lock);
}

static void on_part_done(void *arg, int status)
{
    (void)status;
    release(((struct part *)arg)->m);
}

/* ---- planning and sending ---- */

/* The part that reads at the holder chosen first, made when new; NULL when there are too many
 * or memory ran out. */
static struct part *part_of(struct merge *m, char bases[][FERRY_FORWARD_URL_MAX], size_t n)
{
    struct part *p;

    for (size_t i = 0; i < m->nparts; i++)
        if (strcmp(m->parts[i].bases[0], bases[0]) == 0)
            return &m->parts[i];
    if (m->nparts == SCAN_GROUPS_MAX)
        return NULL;
    p = &m->parts[m->nparts];
    p->partitions = calloc((size_t)m->t->npartitions, 1);
    if (!p->partitions)
        return NULL;
    for (size_t i = 0; i < n; i++)
        memcpy(p->bases[i], bases[i], FERRY_FORWARD_URL_MAX);
    p->nbases = n;
    p->m = m;
    m->nparts++;
    return p;
}

/* Decides where each partition is read: local[p], or a part. Returns 0, or the status to
 * answer: 503 when a partition has no serving member. */
static int plan(struct merge *m, unsigned char *local)
{
    char bases[FERRY_FORWARD_CANDIDATES_MAX][FERRY_FORWARD_URL_MAX];

    for (int32_t p = 0; p < m->t->npartitions; p++) {
        size_t n = 0;
        enum ferry_holder_choice c = ferry_table_holder_choose(m->t, p, 0, bases, &n);
        struct part *part;
        if (c == FERRY_HOLDER_LOCAL) {
            local[p] = 1;
            continue;
        }
        if (c == FERRY_HOLDER_NONE)
            return 503;
        part = part_of(m, bases, n);
        if (!part)
            return 503;
        part->partitions[p] = 1;
    }
    return 0;
}

static int add_param(struct ferry_buf *b, const char *name, const char *v, size_t n, int mode)
{
    return ferry_buf_addf(b, "&%s=", name) || ferry_base64_encode(b, v, n, mode);
}

/* The path of a part's scan. */
static int part_path(struct merge *m, const struct part *p, struct ferry_buf *b)
{
    int n = 0, rc = ferry_buf_addf(b, "/tables/%s/keys?key_format=base64&limit=%zu&partitions=",
                                   m->t->cfg->name, m->args.limit);

    for (int32_t i = 0; rc == 0 && i < m->t->npartitions; i++)
        if (p->partitions[i])
            rc = ferry_buf_addf(b, "%s%d", n++ ? "," : "", i);
    if (rc == 0 && m->args.prefix)
        rc = add_param(b, "prefix", m->args.prefix, m->args.plen, FERRY_BASE64_URL);
    if (rc == 0 && m->args.after)
        rc = add_param(b, "after", m->args.after, m->args.alen, FERRY_BASE64_URL);
    return rc;
}

static void send_part(struct merge *m, struct part *p)
{
    const char *b[FERRY_FORWARD_CANDIDATES_MAX];
    struct ferry_buf path;
    struct ferry_forward_request fr = {.bases = b,
                                       .nbases = p->nbases,
                                       .timeout_ms = m->t->owner->forward_timeout_ms,
                                       .answer = on_part,
                                       .done = on_part_done,
                                       .arg = p};

    for (size_t i = 0; i < p->nbases; i++)
        b[i] = p->bases[i];
    ferry_buf_init(&path, SCAN_PATH_MAX);
    atomic_fetch_add(&m->pending, 1);
    if (part_path(m, p, &path) == 0) {
        fr.path_and_query = path.data;
        if (ferry_table_forward_call(m->t->owner->forward, &fr) == 0) {
            ferry_buf_release(&path);
            return;
        }
    }
    ferry_buf_release(&path);
    on_part(p, 503, NULL, 0);
    atomic_fetch_sub(&m->pending, 1);
}

/* Reads this instance's share (the cursor is checked even when that is nothing). Returns 0,
 * 400 for a cursor no store gave out (cursors are the same on every instance), or 500 when the
 * store failed. */
static int scan_local(struct merge *m, const unsigned char *local)
{
    ferry_store *store = ferry_table_store_acquire(m->t);
    char why[512];
    int more = 0, r = FERRY_STORE_ERROR;

    if (store) {
        pthread_mutex_lock(&m->lock);
        r = ferry_table_scan_rows(store, &m->args, local, m->t->npartitions, keep_row, m, &more,
                                  why, sizeof(why));
        m->more |= more;
        pthread_mutex_unlock(&m->lock);
        ferry_table_store_release(m->t);
    }
    return r == FERRY_STORE_OK ? 0 : r == FERRY_STORE_BAD_CURSOR ? 400 : 500;
}

static void fan_out_error(struct merge *m, int status)
{
    const char *name = m->t->cfg->name;

    if (status == 503) {
        ferry_http_add_header(m->req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
        ferry_http_respond_error(
            m->req, 503, 0, "table '%s': a partition has no live instance serving it now", name);
    } else if (status == 400) {
        ferry_http_respond_error(m->req, 400, 0, "after: not a cursor this table gave out");
    } else {
        ferry_http_respond_error(m->req, status, 0, "table '%s': its store failed", name);
    }
}

/* ---- the handler ---- */

/* A scan forwarded here: `partitions=` names what to read; all of them must be served here. */
static void answer_forwarded(struct table *t, ferry_http_req *req,
                             const struct ferry_scan_args *args, int64_t started_us)
{
    const char *list = ferry_http_req_query(req, "partitions");
    unsigned char *want = calloc((size_t)t->npartitions, 1);
    const char *p = list;
    int ok = list && want;

    while (ok && *p) {
        char *end;
        long v = strtol(p, &end, 10);
        ok = end != p && v >= 0 && v < t->npartitions && (*end == ',' || !*end) &&
             atomic_load(&t->parts[v].held) && atomic_load(&t->parts[v].serving);
        if (ok)
            want[v] = 1;
        p = *end ? end + 1 : end;
    }
    if (ok) {
        ferry_table_scan_answer(t, req, args, want, t->npartitions, started_us);
    } else {
        ferry_http_respond_error(req, 508, 0,
                                 "table '%s': this instance does not serve every partition asked "
                                 "for (a forwarded read is not forwarded again)",
                                 t->cfg->name);
        ferry_table_count(t, 508, started_us);
    }
    free(want);
}

/* Reads what this instance serves and sends the rest; the last part to answer responds. */
static void fan_out(struct merge *m)
{
    unsigned char *local = calloc((size_t)m->t->npartitions, 1);
    int status = local ? plan(m, local) : 503;

    if (!status)
        status = scan_local(m, local);
    free(local);
    if (status) {
        fan_out_error(m, status);
        ferry_table_count(m->t, status, m->started_us);
        merge_free(m);
        return;
    }
    if (m->nparts)
        ferry_http_suspend(m->req);
    atomic_store(&m->pending, 1);
    for (size_t i = 0; i < m->nparts; i++)
        send_part(m, &m->parts[i]);
    release(m);
}

void ferry_table_scan_partitioned(struct table *t, ferry_http_req *req, int64_t started_us)
{
    int forwarded = ferry_http_req_header(req, FERRY_FORWARD_HOP_HEADER) != NULL;
    struct merge *m = calloc(1, sizeof(*m));

    if (!m) {
        ferry_http_respond_error(req, 503, 0, "out of memory");
        ferry_table_count(t, 503, started_us);
        return;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->t = t;
    m->req = req;
    m->started_us = started_us;
    m->status = 200;
    if (ferry_table_scan_args(t, req, forwarded ? "partitions" : NULL, &m->args, started_us) ||
        ferry_table_refuse_unplaced(t, req, forwarded, started_us)) {
        merge_free(m);
        return;
    }
    if (forwarded) {
        answer_forwarded(t, req, &m->args, started_us);
        merge_free(m);
        return;
    }
    fan_out(m);
}
