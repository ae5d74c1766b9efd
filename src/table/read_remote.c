/*
 * read_remote.c - the partitioned table's side of a key read: where it is answered.
 *
 * The key's partition comes from the table's partitioner; holder.c says whether this instance
 * answers (it serves the partition and is no more than max_lag behind, or no holder is
 * fresher). Otherwise a GET goes through the forwarder (forward.c) with the client's path and
 * query, and a key's event stream is redirected (307) to the freshest holder, whose URL comes
 * from its heartbeat: streams last, and a proxy in the middle would hold them twice. The
 * redirect adds FERRY_TABLE_REDIRECTED_PARAM, and an instance never redirects a request that
 * has it (it serves the events or answers 503), so two instances whose member maps disagree
 * while a partition moves cannot send a client back and forth.
 */
#include "table/read_remote.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/hex.h"
#include "table/cluster.h"
#include "table/forward.h"
#include "table/holder.h"
#include "table/reply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_PATH_MAX (256 * 1024) /* a forwarded path and query: keys of 64 KiB, encoded */
/* The longest Location of an events redirect is what the server's budget for the headers ferry
 * adds to an answer leaves once the redirect's others are counted: the name "Location", the
 * NULs, and a few short headers (Ferry-Partition...). A longer one would be left out. */
#define REMOTE_REDIRECT_OTHER_HEADERS 256
#define REMOTE_LOCATION_MAX (FERRY_HTTPD_RESPONSE_HEADER_BYTES - REMOTE_REDIRECT_OTHER_HEADERS)
_Static_assert(sizeof("Location") + REMOTE_LOCATION_MAX + 1 <= FERRY_HTTPD_RESPONSE_HEADER_BYTES,
               "the longest Location of a redirect fits the server's header budget");

/* What a forwarded read needs when its answer has gone. */
struct remote_read {
    struct table *t;
    int64_t started_us;
};

static void on_forwarded(void *arg, int status)
{
    struct remote_read *rr = arg;

    ferry_table_count(rr->t, status, rr->started_us);
    free(rr);
}

/* The key as the table stores it: key_format=base64 decoded into out (room for len). Returns
 * the length, or -1 when it is not base64 (the usual path answers 400 then). */
static ssize_t stored_key(ferry_http_req *req, const char *key, size_t len, char *out)
{
    const char *format = ferry_http_req_query(req, "key_format");
    size_t n = len;

    memcpy(out, key, len);
    if (!format || strcmp(format, "base64") != 0)
        return (ssize_t)len;
    return ferry_base64_decode(out, len, FERRY_BASE64_EITHER, &n) == 0 ? (ssize_t)n : -1;
}

/* Appends c percent-encoded unless it is unreserved (RFC 3986). */
static int add_encoded(struct ferry_buf *out, const char *s)
{
    int rc = 0;

    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~:", c))
            rc = ferry_buf_addc(out, (char)c);
        else
            rc = ferry_buf_addc(out, '%') || ferry_buf_addc(out, ferry_hex_upper(c >> 4)) ||
                 ferry_buf_addc(out, ferry_hex_upper(c));
    }
    return rc;
}

struct query_out {
    struct ferry_buf *out;
    int n;
};

static void add_param(void *arg, const char *name, const char *value)
{
    struct query_out *q = arg;

    ferry_buf_addc(q->out, q->n++ ? '&' : '?');
    add_encoded(q->out, name);
    if (value) {
        ferry_buf_addc(q->out, '=');
        add_encoded(q->out, value);
    }
}

/* The request's path and query, as sent on: the path as the client sent it, but a '#' (which
 * a URL would end the path at) percent-encoded. The forwarder keeps dot segments as they are
 * (CURLOPT_PATH_AS_IS): a key ".." is a key. Returns 0, or -1 when it passes REMOTE_PATH_MAX. */
static int path_and_query(ferry_http_req *req, struct ferry_buf *out)
{
    struct query_out q = {out, 0};

    for (const char *s = ferry_http_req_raw_path(req); *s; s++)
        if (*s == '#' ? ferry_buf_adds(out, "%23") : ferry_buf_addc(out, *s))
            break;
    ferry_http_req_query_each(req, add_param, &q);
    return out->failed ? -1 : 0;
}

/* Adds FERRY_TABLE_REDIRECTED_PARAM, naming this instance, to an events redirect's path and
 * query. Returns 0, or -1 when it passes the buffer's cap. */
static int mark_redirected(struct table *t, struct ferry_buf *pq)
{
    struct query_out q = {pq, memchr(pq->data, '?', pq->len) != NULL};

    add_param(&q, FERRY_TABLE_REDIRECTED_PARAM, ferry_table_cluster_instance(t->owner->cluster));
    return pq->failed ? -1 : 0;
}

static void refuse(struct table *t, ferry_http_req *req, int32_t p, int forwarded,
                   int64_t started_us)
{
    const char *by = ferry_http_req_query(req, FERRY_TABLE_REDIRECTED_PARAM); /* events only */

    if (p >= 0)
        ferry_http_add_header_int(req, "Ferry-Partition", p);
    ferry_table_served_here(t, req);
    if (forwarded && by) {
        ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
        ferry_http_respond_error(req, 503, 0,
                                 "table '%s': '%s' redirected this key's events here, but this "
                                 "instance does not serve the key's partition now (the instances "
                                 "disagree on its holders while it moves, and a redirect is not "
                                 "redirected again): subscribe again shortly",
                                 t->cfg->name, by);
        ferry_table_count(t, 503, started_us);
        return;
    }
    if (forwarded) {
        ferry_http_respond_error(req, 508, 0,
                                 "table '%s': this instance does not serve the key's partition "
                                 "(a forwarded read is not forwarded again)",
                                 t->cfg->name);
        ferry_table_count(t, 508, started_us);
        return;
    }
    ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
    ferry_http_respond_error(req, 503, 0, "table '%s': no live instance serves partition %d now",
                             t->cfg->name, p);
    ferry_table_count(t, 503, started_us);
}

static void redirect(struct table *t, ferry_http_req *req, const char *base,
                     const struct ferry_buf *pq, int64_t started_us)
{
    struct ferry_buf loc;

    ferry_buf_init(&loc, REMOTE_LOCATION_MAX);
    ferry_buf_adds(&loc, base);
    ferry_buf_add(&loc, pq->data, pq->len);
    if (loc.failed) { /* a 307 without its Location would leave the client nowhere to go */
        ferry_http_respond_error(req, 414, 0,
                                 "table '%s': the key is too long to redirect its events (the "
                                 "Location would pass %d bytes): subscribe at %s, which serves "
                                 "them",
                                 t->cfg->name, REMOTE_LOCATION_MAX, base);
        ferry_table_count(t, 414, started_us);
    } else {
        ferry_http_add_header(req, "Location", loc.data);
        ferry_http_respond_error(req, 307, 0, "table '%s': this key's events are served by %s",
                                 t->cfg->name, base);
        ferry_table_count(t, 307, started_us);
    }
    ferry_buf_release(&loc);
}

/* Forwards the GET; answers 503 itself when the forwarder cannot take it. */
/* Nonzero for a GET that only asks for the value: it may travel in a batch. */
static int plain_get(ferry_http_req *req)
{
    return !ferry_http_req_header(req, "If-None-Match") && !ferry_http_req_header(req, "Prefer") &&
           !ferry_http_req_query(req, "min_offset");
}

static void forward(struct table *t, ferry_http_req *req, char bases[][FERRY_FORWARD_URL_MAX],
                    size_t n, const struct ferry_buf *pq, const char *key, size_t key_len,
                    int64_t started_us)
{
    const char *b[FERRY_FORWARD_CANDIDATES_MAX];
    struct remote_read *rr = malloc(sizeof(*rr));
    int waits = ferry_http_req_header(req, "Prefer") || ferry_http_req_query(req, "min_offset");
    struct ferry_forward_request fr = {
        .path_and_query = pq->data,
        .bases = b,
        .nbases = n,
        .timeout_ms = t->owner->forward_timeout_ms + (waits ? t->cfg->limits.max_wait_ms : 0),
        .wait_ms = waits ? t->cfg->limits.max_wait_ms : 0,
        .done = on_forwarded,
        .arg = rr,
    };

    for (size_t i = 0; i < n; i++)
        b[i] = bases[i];
    if (rr) {
        *rr = (struct remote_read){t, started_us};
        ferry_counter_add(t->m.forwarded, 1);
    }
    if (!rr || (plain_get(req) ? ferry_table_forward_get(t->owner->forward, req, &fr, t->cfg->name,
                                                         key, key_len)
                               : ferry_table_forward_read(t->owner->forward, req, &fr))) {
        free(rr);
        ferry_http_add_header(req, "Retry-After", FERRY_TABLE_RETRY_AFTER);
        ferry_http_respond_error(req, 503, 0, "table '%s': cannot forward the read now",
                                 t->cfg->name);
        ferry_table_count(t, 503, started_us);
    }
}

int ferry_table_read_remote(struct table *t, ferry_http_req *req, const char *key, size_t len,
                            int events, int64_t started_us)
{
    char bases[FERRY_FORWARD_CANDIDATES_MAX][FERRY_FORWARD_URL_MAX];
    int forwarded = ferry_http_req_header(req, FERRY_FORWARD_HOP_HEADER) != NULL ||
                    (events && ferry_http_req_query(req, FERRY_TABLE_REDIRECTED_PARAM));
    char *raw = malloc(len + 1);
    ssize_t raw_len = raw ? stored_key(req, key, len, raw) : -1;
    int32_t p = raw_len >= 0 ? ferry_table_key_partition(t, raw, (size_t)raw_len) : -1;
    enum ferry_holder_choice choice;
    struct ferry_buf pq;
    size_t n = 0;

    if (p < 0 && raw_len >= 0 && forwarded) {
        refuse(t, req, p, forwarded, started_us); /* starting: the partitions are not known */
        free(raw);
        return 1;
    }
    choice = p < 0 ? FERRY_HOLDER_LOCAL : ferry_table_holder_choose(t, p, forwarded, bases, &n);
    if (choice == FERRY_HOLDER_LOCAL) {
        free(raw); /* partitions not known yet, a bad key, or served here: answered as usual */
        return 0;
    }
    if (choice == FERRY_HOLDER_NONE) {
        refuse(t, req, p, forwarded, started_us);
        free(raw);
        return 1;
    }
    ferry_buf_init(&pq, REMOTE_PATH_MAX);
    if (path_and_query(req, &pq) || (events && mark_redirected(t, &pq))) {
        ferry_http_respond_error(req, 414, 0, "the path and query pass %d bytes", REMOTE_PATH_MAX);
        ferry_table_count(t, 414, started_us);
    } else if (events) {
        redirect(t, req, bases[0], &pq, started_us);
    } else {
        forward(t, req, bases, n, &pq, raw, (size_t)raw_len, started_us);
    }
    ferry_buf_release(&pq);
    free(raw);
    return 1;
}

void ferry_table_served_here(const struct table *t, ferry_http_req *req)
{
    if (t->owner->cluster)
        ferry_http_add_header(req, "Ferry-Served-By",
                              ferry_table_cluster_instance(t->owner->cluster));
}
