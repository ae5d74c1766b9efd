/*
 * read.c - the tables' HTTP API: GET /tables, GET /tables/{table} and
 * GET /tables/{table}/keys/{key}.
 *
 * A key read looks the key up in place in the store's map and answers with the value and
 * what the record says of itself: ETag "<partition>:<offset>-<hash>" (the record's place and a
 * hash of the value it sends, etag.h), Last-Modified from the record's timestamp,
 * Ferry-Partition, Ferry-Offset and Ferry-Lag (records the table is behind that partition's
 * end). If-None-Match answers 304. Until the table is ready every read gets 503
 * with Retry-After, never a 404 for a key that may exist.
 */
#include "table/read.h"
#include "core/auth.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/json.h"
#include "table/assign.h"
#include "table/etag.h"
#include "table/lookup_remote.h"
#include "table/member_map.h"
#include "table/read_remote.h"
#include "table/reply.h"
#include "table/scan_remote.h"
#include "table/state.h"
#include "table/events.h"
#include "table/query.h"
#include "table/watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define READ_PREFIX "/tables/"
#define READ_STATUS_MAX (64 * 1024) /* GET /tables, and a table's state without its partitions */
/* One partition in GET /tables/{table}: its object with an int32 and three int64s at their
 * longest is 139 bytes. */
#define READ_STATUS_PARTITION_MAX 160
#define READ_STATUS_TABLE_MAX 1024 /* one table in GET /tables: names of at most 64 and 249 */
#define READ_LOOKUP_BODY_MAX (8 * 1024 * 1024) /* a POST /tables/{table}/lookup body */
#define READ_MIN_OFFSET_WAIT_MS 5000           /* how long min_offset waits without Prefer: wait */

static const char *const key_params[] = {"key_format", "min_offset", NULL};
static const char *const no_params[] = {NULL};

/* ---- GET /tables/{table}/keys/{key} ---- */

/* One key read, answered at once or parked and answered by the watch thread. A parked long
 * poll holds only this one allocation (bench/README.md, long polls: every byte counts 10,000
 * times). */
struct key_read {
    struct ferry_table_waiter waiter; /* first: the watch hands it back. The read's table, key,
                                         min_offset (offsets) and deadline are its */
    ferry_http_req *req;
    const char *if_none_match; /* the request's own: valid until the read is answered */
    int64_t started_us;
    int status;
    unsigned char may_wait; /* Prefer: wait with If-None-Match: a matching ETag parks, no 304 */
    unsigned char matched;  /* set by send_row when it did not answer because the ETag matched */
    char key[];             /* waiter.key_len bytes, decoded in place */
};

/* Answers with the row, in place in the store's map (the server copies the value once);
 * leaves a long poll whose ETag still matches unanswered, with matched set. */
static int send_row(void *arg, const struct ferry_store_entry *e)
{
    struct key_read *kr = arg;
    char etag[FERRY_ETAG_MAX];
    int match;

    ferry_etag_format(etag, sizeof(etag), e->row.partition, e->row.offset,
                      ferry_etag_hash(e->value, e->value_len), 1);
    match = kr->if_none_match && ferry_etag_matches(kr->if_none_match, etag);
    if (match && kr->may_wait) {
        kr->matched = 1;
        return 0;
    }
    ferry_http_add_header(kr->req, "ETag", etag);
    if (e->row.timestamp_ms > 0)
        ferry_http_add_header_date(kr->req, "Last-Modified", e->row.timestamp_ms / 1000);
    ferry_http_add_header_int(kr->req, "Ferry-Partition", e->row.partition);
    ferry_http_add_header_int(kr->req, "Ferry-Offset", e->row.offset);
    ferry_http_add_header_int(kr->req, "Ferry-Lag",
                              ferry_table_partition_lag(kr->waiter.table, e->row.partition));
    if (atomic_load(&kr->waiter.table->rebuilding))
        ferry_http_add_header(kr->req, "Ferry-Rebuilding", "true");
    ferry_table_served_here(kr->waiter.table, kr->req);
    kr->status = match ? 304 : 200;
    if (match)
        ferry_http_respond(kr->req, 304, NULL, "", 0);
    else
        ferry_http_respond(
            kr->req, 200,
            ferry_table_content_type(kr->waiter.table, e->row.content_type, e->value, e->value_len),
            e->value, e->value_len);
    return 0;
}

static void send_not_found(struct key_read *kr)
{
    int32_t p = ferry_table_key_partition(kr->waiter.table, kr->key, kr->waiter.key_len);

    if (p >= 0) {
        ferry_http_add_header_int(kr->req, "Ferry-Partition", p);
        ferry_http_add_header_int(kr->req, "Ferry-Lag",
                                  ferry_table_partition_lag(kr->waiter.table, p));
    }
    if (atomic_load(&kr->waiter.table->rebuilding))
        ferry_http_add_header(kr->req, "Ferry-Rebuilding", "true");
    ferry_table_served_here(kr->waiter.table, kr->req);
    kr->status = 404;
    ferry_http_respond_error(kr->req, 404, 0, "table '%s' has no such key",
                             kr->waiter.table->cfg->name);
}

/* Looks the key up and answers: the row, 404, or 500 when the store fails; or, for a long
 * poll whose ETag still matches, nothing (kr->matched). */
static void look_up(struct key_read *kr)
{
    ferry_store *store = ferry_table_store_acquire(kr->waiter.table);
    char why[512] = "its store is closed";
    int r = FERRY_STORE_ERROR;

    kr->matched = 0;
    if (store) {
        r = ferry_store_view(store, kr->key, kr->waiter.key_len, send_row, kr, why, sizeof(why));
        ferry_table_store_release(kr->waiter.table);
    }
    if (r == FERRY_STORE_NOT_FOUND) {
        send_not_found(kr);
    } else if (r != FERRY_STORE_OK) {
        kr->status = 500;
        ferry_http_respond_error(kr->req, 500, 0, "table '%s': %s", kr->waiter.table->cfg->name,
                                 why);
    }
}

static void key_read_free(struct key_read *kr)
{
    free(kr->waiter.offsets);
    free(kr);
}

/* Counts the answer and frees the read. */
static void finish(struct key_read *kr)
{
    ferry_table_count(kr->waiter.table, kr->status, kr->started_us);
    key_read_free(kr);
}

/* Nonzero when every partition min_offset names has been applied past its offset, in the
 * store that answers: while a rebuilt store catches up, applied counts it, not the old one.
 * A read without min_offset has nothing to wait for, rebuild or not. */
static int offsets_applied(const struct key_read *kr)
{
    const struct table *t = kr->waiter.table;
    const int64_t *min = kr->waiter.offsets;

    if (!min)
        return 1;
    if (atomic_load(&t->rebuilding))
        return 0;
    for (int32_t p = 0; p < t->npartitions; p++)
        if (min[p] >= 0 && atomic_load(&t->parts[p].applied) <= min[p])
            return 0;
    return 1;
}

/* Records between applied and min (min itself included), at most INT64_MAX - sum added to sum:
 * min_offset takes any offset up to INT64_MAX, so the count saturates instead of overflowing. */
static int64_t add_behind(int64_t sum, int64_t min, int64_t applied)
{
    int64_t need;

    if (min < 0 || applied > min)
        return sum;
    need = min - (applied > 0 ? applied : 0); /* both in [0, INT64_MAX]: no overflow */
    if (need >= INT64_MAX - sum)
        return INT64_MAX;
    return sum + need + 1;
}

static void send_behind(struct key_read *kr)
{
    const struct table *t = kr->waiter.table;
    const int64_t *min = kr->waiter.offsets;
    int64_t behind = 0;

    for (int32_t p = 0; p < t->npartitions; p++)
        behind = add_behind(behind, min[p], atomic_load(&t->parts[p].applied));
    kr->status = 504;
    if (atomic_load(&t->rebuilding))
        ferry_http_respond_error(kr->req, 504, 0,
                                 "table '%s' is rebuilding its store and answers from the old "
                                 "one, which does not hold min_offset",
                                 t->cfg->name);
    else
        ferry_http_respond_error(kr->req, 504, 0,
                                 "table '%s' has not applied min_offset yet: %" PRId64
                                 " record(s) behind it",
                                 t->cfg->name, behind);
}

static void park(struct key_read *kr, uint64_t seq);

/* The watch thread's answer to a parked read. */
static void on_wake(struct ferry_table_waiter *w, enum ferry_wake why)
{
    struct key_read *kr = (struct key_read *)w;
    uint64_t seq = ferry_table_watch_seq(kr->waiter.table);

    if (why == FERRY_WAKE_STOPPING) {
        ferry_http_add_header(kr->req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
        kr->status = 503;
        ferry_http_respond_error(kr->req, 503, 0, "ferry is shutting down");
    } else if (kr->waiter.kind == FERRY_WAIT_OFFSETS && !offsets_applied(kr)) {
        if (why == FERRY_WAKE_CHANGED) { /* a rebuild began since: wait for its swap */
            park(kr, seq);
            return;
        }
        send_behind(kr);
    } else {
        kr->may_wait = why == FERRY_WAKE_CHANGED && kr->waiter.kind == FERRY_WAIT_KEY;
        look_up(kr);
        if (kr->matched) { /* woken by another key of the same bucket, or a rewrite */
            park(kr, seq);
            return;
        }
    }
    finish(kr);
}

/* Parks the read until its key changes or its offsets are applied, or answers at once when
 * it cannot wait (429 at the limit, 503 when stopping). A read parked again from on_wake kept
 * its place under the limit. */
static void park(struct key_read *kr, uint64_t seq)
{
    int full;

    kr->waiter.kind = kr->waiter.offsets && !kr->may_wait ? FERRY_WAIT_OFFSETS : FERRY_WAIT_KEY;
    kr->waiter.wake = on_wake;
    if (ferry_table_watch_park(kr->waiter.table->owner->watch, &kr->waiter, seq, &full) == 0)
        return;
    kr->status = full ? 429 : 503;
    ferry_http_add_header(kr->req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
    ferry_http_respond_error(kr->req, kr->status, 0,
                             full ? "table '%s' already has limits.max_waiters reads waiting"
                                  : "table '%s': ferry is shutting down",
                             kr->waiter.table->cfg->name);
    finish(kr);
}
/* Decodes the key of the path in place (?key_format=base64). Answers 400 and returns -1 when
 * it is not usable. */
static int decode_key(struct key_read *kr)
{
    const char *format = ferry_http_req_query(kr->req, "key_format");

    if (format && strcmp(format, "base64") == 0) {
        if (ferry_base64_decode(kr->key, kr->waiter.key_len, FERRY_BASE64_EITHER,
                                &kr->waiter.key_len)) {
            ferry_http_respond_error(kr->req, 400, 0, "key: not base64");
            return -1;
        }
    } else if (format && strcmp(format, "raw") != 0) {
        ferry_http_respond_error(kr->req, 400, 0, "key_format: expected raw or base64, got '%s'",
                                 format);
        return -1;
    }
    if (kr->waiter.key_len > (size_t)kr->waiter.table->cfg->limits.max_key_bytes) {
        ferry_http_respond_error(kr->req, 400, 0,
                                 "key: %zu bytes, longer than limits.max_key (%" PRId64 ")",
                                 kr->waiter.key_len, kr->waiter.table->cfg->limits.max_key_bytes);
        return -1;
    }
    return 0;
}

/* The text after "wait=" of the `wait` preference in a Prefer header (a comma-separated list
 * of preferences, each a token, an optional "=value" and ";" parameters), or NULL. Only a
 * whole token counts: `nowait=2` or `x-wait=2` is another preference. */
static const char *find_wait(const char *prefer)
{
    const char *p = prefer;

    while (p && *p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "wait", 4) == 0) {
            const char *q = p + 4;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q == '=')
                return q + 1;
        }
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return NULL;
}

/* Reads `Prefer: wait=N` (seconds) into *ms, capped at limits.max_wait; def when absent.
 * Answers 400 and returns -1 when it is not a number. */
static int parse_wait(struct key_read *kr, int64_t def, int64_t *ms)
{
    const char *prefer = ferry_http_req_header(kr->req, "Prefer");
    const char *w = prefer ? find_wait(prefer) : NULL;
    int64_t max = kr->waiter.table->cfg->limits.max_wait_ms;
    int64_t secs;
    char *end;

    *ms = def < max ? def : max;
    if (!w)
        return 0;
    errno = 0;
    while (*w == ' ' || *w == '\t')
        w++;
    secs = strtoll(w, &end, 10);
    if (errno || end == w || secs < 0 || (*end && *end != ',' && *end != ';' && *end != ' ')) {
        ferry_http_respond_error(kr->req, 400, 0, "Prefer: expected wait=<seconds>, got '%s'",
                                 prefer);
        return -1;
    }
    *ms = secs > max / 1000 ? max : secs * 1000;
    return 0;
}

/* Adds one "<partition>:<offset>" of min_offset. Returns 0, or -1 when it is malformed. */
static int add_min_offset(struct key_read *kr, const char *item, size_t len)
{
    char text[64], *colon, *end;
    long long p, o;

    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, item, len);
    text[len] = '\0';
    colon = strchr(text, ':');
    if (!colon)
        return -1;
    errno = 0;
    p = strtoll(text, &end, 10);
    if (errno || end != colon || end == text || p < 0 || p >= kr->waiter.table->npartitions)
        return -1;
    o = strtoll(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || o < 0)
        return -1;
    if (o > kr->waiter.offsets[p])
        kr->waiter.offsets[p] = o;
    return 0;
}

struct offsets_scan {
    struct key_read *kr;
    int bad;
};

/* Reads one query parameter; each min_offset is a comma-separated list of partition:offset. */
static void scan_min_offset(void *arg, const char *name, const char *value)
{
    struct offsets_scan *sc = arg;
    const char *p = value ? value : "";

    if (strcmp(name, "min_offset") != 0 || sc->bad)
        return;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (add_min_offset(sc->kr, p, len)) {
            sc->bad = 1;
            ferry_http_respond_error(sc->kr->req, 400, 0,
                                     "min_offset: expected partition:offset with a partition "
                                     "from 0 to %d, got '%s'",
                                     sc->kr->waiter.table->npartitions - 1, value ? value : "");
            return;
        }
        if (!p[len])
            return;
        p += len + 1;
    }
}

/* Reads every min_offset parameter. Answers 400 (or 503) and returns -1 when one is
 * malformed. */
static int parse_min_offsets(struct key_read *kr)
{
    struct offsets_scan sc = {kr, 0};
    int32_t n = kr->waiter.table->npartitions;

    if (!ferry_http_req_query(kr->req, "min_offset"))
        return 0;
    kr->waiter.offsets = malloc((size_t)n * sizeof(*kr->waiter.offsets));
    if (!kr->waiter.offsets) {
        kr->status = 503;
        ferry_http_respond_error(kr->req, 503, 0, "out of memory");
        return -1;
    }
    for (int32_t p = 0; p < n; p++)
        kr->waiter.offsets[p] = -1;
    ferry_http_req_query_each(kr->req, scan_min_offset, &sc);
    return sc.bad ? -1 : 0;
}

/* Checks the request; answers and returns -1 when it cannot be served (400, 503). */
static int prepare_read(struct key_read *kr, int64_t *wait_ms)
{
    char why[256];
    int bad = ferry_table_check_query(kr->req, key_params, why, sizeof(why));

    kr->if_none_match = ferry_http_req_header(kr->req, "If-None-Match");
    kr->status = 503;
    if (ferry_table_refuse_unready(kr->waiter.table, kr->req))
        return -1;
    kr->status = 400;
    if (bad) {
        ferry_http_respond_error(kr->req, 400, 0, "%s", why);
        return -1;
    }
    if (decode_key(kr) || parse_min_offsets(kr) ||
        parse_wait(kr, kr->waiter.offsets ? READ_MIN_OFFSET_WAIT_MS : 0, wait_ms))
        return -1;
    kr->status = 0;
    return 0;
}

static void get_key(struct table *t, ferry_http_req *req, const char *key, size_t key_len,
                    int64_t started_us)
{
    struct key_read *kr = calloc(1, sizeof(*kr) + key_len + 1);
    int64_t wait_ms = 0;
    uint64_t seq;

    if (!kr) {
        ferry_http_respond_error(req, 503, 0, "out of memory");
        return;
    }
    kr->waiter.table = t;
    kr->waiter.key = kr->key;
    kr->waiter.key_len = key_len;
    kr->req = req;
    kr->started_us = started_us;
    memcpy(kr->key, key, key_len);
    if (prepare_read(kr, &wait_ms)) {
        finish(kr);
        return;
    }
    kr->waiter.deadline.key = ferry_clock_ms() + wait_ms;
    seq = ferry_table_watch_seq(t);
    if (!offsets_applied(kr)) {
        ferry_http_suspend(req);
        park(kr, seq); /* kr may be answered and freed by now */
        return;
    }
    /* With min_offset, the wait is for the offsets only: once they are applied (here, already),
     * a matching ETag answers 304 at once, as it does when a parked read's offsets arrive. */
    kr->may_wait = wait_ms > 0 && kr->if_none_match && !kr->waiter.offsets;
    look_up(kr);
    if (kr->matched) {
        ferry_http_suspend(req);
        park(kr, seq);
        return;
    }
    finish(kr);
}

/* ---- GET /tables/{table} and GET /tables ---- */

static void add_partitions(struct ferry_buf *out, const struct table *t)
{
    ferry_buf_adds(out, ",\"partitions\":[");
    for (int32_t p = 0; atomic_load(&t->state) != TABLE_STARTING && p < t->npartitions; p++)
        ferry_buf_addf(out,
                       "%s{\"partition\":%d,\"applied\":%" PRId64 ",\"end\":%" PRId64
                       ",\"lag\":%" PRId64 ",\"held\":%s,\"serving\":%s}",
                       p ? "," : "", p, atomic_load(&t->parts[p].applied),
                       atomic_load(&t->parts[p].end), ferry_table_partition_lag(t, p),
                       atomic_load(&t->parts[p].held) ? "true" : "false",
                       atomic_load(&t->parts[p].serving) ? "true" : "false");
    ferry_buf_addc(out, ']');
}

/* Appends one table's state as a JSON object. */
static void add_table(struct ferry_buf *out, struct table *t, int detail)
{
    struct ferry_store_stats st = {0};
    ferry_store *store = ferry_table_store_acquire(t);
    int state = atomic_load(&t->state);
    char why[256];

    if (store) {
        ferry_store_stats(store, &st, why, sizeof(why));
        ferry_table_store_release(t);
    }
    ferry_buf_adds(out, "{\"name\":");
    ferry_json_add_string(out, t->cfg->name, strlen(t->cfg->name));
    ferry_buf_adds(out, ",\"topic\":");
    ferry_json_add_string(out, t->cfg->topic, strlen(t->cfg->topic));
    ferry_buf_addf(out,
                   ",\"state\":\"%s\",\"ready\":%s,\"rebuilding\":%s,\"lag\":%" PRId64
                   ",\"keys\":%" PRIu64 ",\"bytes_used\":%" PRIu64 ",\"max_size\":%" PRIu64,
                   ferry_table_states[state], state == TABLE_READY ? "true" : "false",
                   atomic_load(&t->rebuilding) ? "true" : "false", ferry_table_lag(t), st.keys,
                   st.bytes_used, st.max_size);
    ferry_buf_addf(out, ",\"placement\":\"%s\"",
                   ferry_table_is_partitioned(t) ? "partitioned" : "all");
    if (detail) {
        add_partitions(out, t);
        ferry_table_member_map_add(out, t);
    }
    ferry_buf_addc(out, '}');
}

/* Sends the JSON in out, or 500 when some of it did not fit: an append that failed left the rest
 * out, and the closing brackets after it may have fitted. */
static void send_json(ferry_http_req *req, struct ferry_buf *out)
{
    if (out->failed)
        ferry_http_respond_error(req, 500, 0, "the answer passed %zu bytes", out->cap);
    else
        ferry_http_respond(req, 200, "application/json", out->data, out->len);
}

/* The cap of a table's state with its partitions and, when placed partitioned, its members.
 * (The partitions are known, and listed, once the table has left TABLE_STARTING.) */
static size_t status_max(struct table *t)
{
    size_t partitions =
        atomic_load(&t->state) != TABLE_STARTING && t->npartitions > 0 ? (size_t)t->npartitions : 0;

    return READ_STATUS_MAX + partitions * READ_STATUS_PARTITION_MAX + ferry_table_member_map_max(t);
}

static void get_table(struct table *t, ferry_http_req *req, int64_t started_us)
{
    char why[256];
    struct ferry_buf out;

    if (ferry_table_check_query(req, no_params, why, sizeof(why))) {
        ferry_http_respond_error(req, 400, 0, "%s", why);
        ferry_table_count(t, 400, started_us);
        return;
    }
    ferry_buf_init(&out, status_max(t));
    add_table(&out, t, 1);
    ferry_buf_addc(&out, '\n');
    send_json(req, &out);
    ferry_buf_release(&out);
    ferry_table_count(t, 200, started_us);
}

/* ---- API keys ---- */

/* The request's API key: -1 when auth is off; else its index, or -2 after answering 401. */
static int authenticate(ferry_tables *ts, ferry_http_req *req)
{
    int key;

    if (!ferry_auth_enabled(ts->auth))
        return -1;
    key = ferry_auth_check(ts->auth, ferry_http_req_header(req, "Authorization"));
    if (key >= 0)
        return key;
    ferry_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"ferry\"");
    ferry_http_respond_error(req, 401, 0,
                             "a valid API key is required (Authorization: Bearer <key>)");
    return -2;
}

/* Nonzero when key (from authenticate) may read t. */
static int may_read(const ferry_tables *ts, int key, const struct table *t)
{
    return key == -1 || ferry_auth_allows(ts->auth, key, FERRY_AUTH_TABLES, t->cfg->name);
}

/* Finds the table named at the start of the raw path and checks that the request may read it;
 * answers 401, 404 or 403 and returns NULL otherwise. *rest is what follows the name. */
static struct table *open_table(ferry_tables *ts, ferry_http_req *req, const char **rest);

/* GET /tables: the tables the request may read. Server thread. */
static void on_list(ferry_http_req *req, void *arg)
{
    ferry_tables *ts = arg;
    struct ferry_buf out;
    int key = authenticate(ts, req), n = 0;
    char why[256];

    if (key == -2)
        return;
    if (ferry_table_check_query(req, no_params, why, sizeof(why))) {
        ferry_http_respond_error(req, 400, 0, "%s", why);
        return;
    }
    ferry_buf_init(&out, READ_STATUS_MAX + ts->count * READ_STATUS_TABLE_MAX);
    ferry_buf_adds(&out, "{\"tables\":[");
    for (size_t i = 0; i < ts->count; i++) {
        if (!may_read(ts, key, &ts->tables[i]))
            continue;
        if (n++)
            ferry_buf_addc(&out, ',');
        add_table(&out, &ts->tables[i], 0);
    }
    ferry_buf_adds(&out, "]}\n");
    send_json(req, &out);
    ferry_buf_release(&out);
}

/* ---- routing ---- */

static struct table *find_table(ferry_tables *ts, const char *name, size_t len)
{
    for (size_t i = 0; i < ts->count; i++)
        if (strlen(ts->tables[i].cfg->name) == len &&
            memcmp(ts->tables[i].cfg->name, name, len) == 0)
            return &ts->tables[i];
    return NULL;
}

/* Answers 400 and returns nonzero when a key read's (or a key's events') query parameters are
 * bad: checked before a partitioned table forwards the read, since the forwarded query is
 * rebuilt from the parsed one and would lose what made it bad (a %00, a repeated name). */
static int bad_key_query(struct table *t, ferry_http_req *req, int events, int64_t started_us)
{
    static const char *const event_params[] = {"key_format", FERRY_TABLE_REDIRECTED_PARAM, NULL};
    char why[256];

    if (ferry_table_check_query(req, events ? event_params : key_params, why, sizeof(why)) == 0)
        return 0;
    ferry_http_respond_error(req, 400, 0, "%s", why);
    ferry_table_count(t, 400, started_us);
    return 1;
}

/* GET /tables/{table}/keys/{key}[/events]: the key is one segment of the path as sent, so a
 * '/' inside a key travels as %2F. */
static void route_key(struct table *t, ferry_http_req *req, const char *rest, int64_t started_us)
{
    const char *slash = strchr(rest, '/');
    size_t enc_len = slash ? (size_t)(slash - rest) : strlen(rest), len;
    char *key = malloc(enc_len + 1);
    int events = slash && strcmp(slash, "/events") == 0;

    if (!key) {
        ferry_http_respond_error(req, 503, 0, "out of memory");
    } else if (slash && !events) {
        ferry_http_respond_error(req, 404, 0,
                                 "no such path: %s (a '/' inside a key is sent as %%2F)",
                                 ferry_http_req_raw_path(req));
        ferry_table_count(t, 404, started_us);
    } else if (ferry_http_percent_decode(rest, enc_len, key, &len)) {
        ferry_http_respond_error(req, 400, 0, "key: a '%%' not followed by two hex digits");
        ferry_table_count(t, 400, started_us);
    } else if (ferry_table_is_partitioned(t) &&
               (bad_key_query(t, req, events, started_us) ||
                ferry_table_read_remote(t, req, key, len, events, started_us))) {
        /* refused, forwarded or redirected */
    } else if (events) {
        ferry_table_events_key(t, req, key, len);
    } else {
        get_key(t, req, key, len, started_us);
    }
    free(key);
}

static struct table *open_table(ferry_tables *ts, ferry_http_req *req, const char **rest)
{
    const char *name = ferry_http_req_raw_path(req) + strlen(READ_PREFIX);
    const char *slash = strchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : strlen(name);
    int key = authenticate(ts, req);
    struct table *t = key == -2 ? NULL : find_table(ts, name, len);

    *rest = slash;
    if (key == -2)
        return NULL;
    if (!t) {
        ferry_http_respond_error(req, 404, 0, "no table named '%.*s'", (int)len, name);
        return NULL;
    }
    if (may_read(ts, key, t))
        return t;
    ferry_http_respond_error(req, 403, 0, "API key '%s' may not read table '%s'",
                             ferry_auth_name(ts->auth, key), t->cfg->name);
    return NULL;
}

/* A prefix's events on a partitioned table would need every holder's stream merged: not served
 * yet, and said so rather than answered from this instance's partitions only. Returns nonzero
 * when it answered. */
static int refuse_partitioned(struct table *t, ferry_http_req *req, int64_t started_us)
{
    if (!ferry_table_is_partitioned(t))
        return 0;
    ferry_http_respond_error(req, 501, 0,
                             "table '%s' is placed partitioned: a prefix's events are not "
                             "served for such tables yet; follow keys one by one "
                             "(/keys/{key}/events)",
                             t->cfg->name);
    ferry_table_count(t, 501, started_us);
    return 1;
}

/* Whether slash (the path after /tables/{table}, or NULL) is one that GET serves. */
static int is_get_path(const char *slash)
{
    const char *after_key;

    if (!slash || strcmp(slash, "/") == 0 || strcmp(slash, "/keys") == 0 ||
        strcmp(slash, "/events") == 0)
        return 1;
    if (strncmp(slash, "/keys/", 6) != 0)
        return 0;
    after_key = strchr(slash + 6, '/');
    return !after_key || strcmp(after_key, "/events") == 0;
}

/* Answers a path under a table that this method does not serve: 405 when the other method
 * serves it (post_path: the one POST path, for a GET; NULL for a POST), else 404. */
static void wrong_path(struct table *t, ferry_http_req *req, const char *post_path,
                       int64_t started_us)
{
    const char *slash = strchr(ferry_http_req_raw_path(req) + strlen(READ_PREFIX), '/');
    int other = post_path ? slash && strcmp(slash, post_path) == 0 : is_get_path(slash);

    if (other) {
        const char *allow = post_path ? "POST" : "GET, HEAD";
        ferry_http_add_header(req, "Allow", allow);
        ferry_http_respond_error(req, 405, 0, "method %s is not allowed on %s (allowed: %s)",
                                 post_path ? "GET" : "POST", ferry_http_req_raw_path(req), allow);
    } else {
        ferry_http_respond_error(req, 404, 0, "no such path: %s", ferry_http_req_raw_path(req));
    }
    ferry_table_count(t, other ? 405 : 404, started_us);
}

/* GET /tables/{table}[/keys/{key}[/events] | /keys | /events]. Server thread. */
static void on_table(ferry_http_req *req, void *arg)
{
    const char *slash;
    struct table *t = open_table(arg, req, &slash);
    int64_t started_us = ferry_clock_us();

    if (!t)
        return;
    if (!slash || strcmp(slash, "/") == 0) {
        get_table(t, req, started_us);
    } else if (strncmp(slash, "/keys/", 6) == 0) {
        route_key(t, req, slash + 6, started_us);
    } else if (strcmp(slash, "/keys") == 0 && ferry_table_is_partitioned(t)) {
        ferry_table_scan_partitioned(t, req, started_us);
    } else if (strcmp(slash, "/events") == 0 && refuse_partitioned(t, req, started_us)) {
        /* answered 501 */
    } else if (strcmp(slash, "/keys") == 0) {
        ferry_table_scan(t, req, started_us);
    } else if (strcmp(slash, "/events") == 0) {
        ferry_table_events_prefix(t, req);
    } else {
        wrong_path(t, req, "/lookup", started_us);
    }
}

/* POST /tables/{table}/lookup. Server thread. */
static void on_post(ferry_http_req *req, void *arg)
{
    const char *slash;
    struct table *t = open_table(arg, req, &slash);
    int64_t started_us = ferry_clock_us();

    if (!t) {
        return;
    } else if (slash && strcmp(slash, "/lookup") == 0 && ferry_table_is_partitioned(t)) {
        ferry_table_lookup_partitioned(t, req, started_us);
    } else if (slash && strcmp(slash, "/lookup") == 0) {
        ferry_table_lookup(t, req, started_us);
    } else {
        wrong_path(t, req, NULL, started_us);
    }
}

int ferry_table_read_register(ferry_httpd *h, struct ferry_tables *ts)
{
    if (ferry_httpd_route(h, "GET", "/tables", FERRY_HTTP_EXACT, 0, on_list, ts) ||
        ferry_httpd_route(h, "GET", READ_PREFIX, FERRY_HTTP_PREFIX, 0, on_table, ts) ||
        ferry_httpd_route(h, "POST", READ_PREFIX, FERRY_HTTP_PREFIX, READ_LOOKUP_BODY_MAX, on_post,
                          ts))
        return -1;
    return 0;
}
