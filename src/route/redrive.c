/*
 * redrive.c - `ferry redrive`: reads a route's dead-letter topic and sends the route's dead
 * letters through its target again, one request at a time, saving its progress after each.
 * See redrive.h for what it promises; the selection is redrive_filter.c's.
 *
 * Everything runs on the calling thread: a librdkafka consumer assigned to every
 * partition (no group join, nothing committed: the progress file is the record of what was
 * done), the route's request builder, and a sender without I/O threads.
 */
#include "route/redrive.h"

#include "core/kafka.h"
#include "core/log.h"
#include "route/deadletter_headers.h"
#include "route/dispatch.h"
#include "route/outcome.h"
#include "route/request.h"
#include "route/sender.h"
#include "route/grpc_config.h"
#include "route/smtp.h"
#include "route/status.h"
#include "route/validate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define REDRIVE_PATH_MAX 4096
#define REDRIVE_LINE_MAX 8192         /* a line of the progress file */
#define REDRIVE_HEADER_MAX 256        /* a ferry.* header value kept (a topic name at most) */
#define REDRIVE_PARTITIONS_MAX 100000 /* partitions of a dead-letter topic */
#define REDRIVE_POLL_MS 200           /* how often the loops look for a signal */
#define REDRIVE_KAFKA_TIMEOUT_MS 10000
#define REDRIVE_REASON_MAX 512
#define REDRIVE_FORMAT "ferry-redrive 1"

struct part {
    int32_t id;
    int64_t next; /* the next offset to read */
    int64_t end;  /* past the last offset of the run */
};

struct redrive {
    const struct ferry_config *cfg;
    const struct ferry_route_config *rc;
    const struct ferry_redrive_options *o;
    struct ferry_redrive_summary *sum;
    FILE *out;
    char path[REDRIVE_PATH_MAX];
    char select[FERRY_REDRIVE_DESCRIBE_MAX];
    struct ferry_redrive_filter filter; /* the options', or since as the resumed run had it */
    int64_t since_ms;
    struct part *parts;
    size_t nparts;
    struct part *saved; /* the saved run's partitions, when this run goes on from it */
    size_t nsaved;

    ferry_kafka *kafka;
    int own_kafka;         /* kafka is this run's (the caller passed none) */
    int kafka_down_before; /* a client of the caller's kafka had failed before the run */
    int lock_fd;           /* holds the lock on <path>.lock while the run goes; -1 without */
    rd_kafka_t *consumer;
    void *consumer_opaque;
    ferry_sender *sender;
    ferry_request_builder *builder;
    ferry_status_rules *rules;
    ferry_grpc_rules *grpc_rules; /* a gRPC target's, classifying instead of rules */
    ferry_validate *validator;    /* the route's, or NULL when it validates nothing */
    struct ferry_backoff_policy backoff;
    struct ferry_outcome_policy policy;
    uint64_t rng;
    int call_done;
    char reject[REDRIVE_REASON_MAX]; /* why the builder refused the record, or "" */
    size_t printed;                  /* per-record lines printed to out */
};

/* What became of one dead letter. */
enum sent { SENT_DELIVERED, SENT_FAILED, SENT_INTERRUPTED };

const struct ferry_route_config *ferry_redrive_find_route(const struct ferry_routes_config *rs,
                                                          const char *name)
{
    const struct ferry_route_config *routes = rs ? rs->routes.items : NULL;

    for (size_t i = 0; rs && i < rs->routes.count; i++)
        if (strcmp(routes[i].name, name) == 0)
            return &routes[i];
    return NULL;
}

/* Waits up to ms for the caller's stop request. Returns 1 when it came. */
static int stop_within(const struct redrive *d, int64_t ms)
{
    return d->o->stop(d->o->stop_arg, ms) != 0;
}

/* ---- the progress file ---- */

static int save_progress(struct redrive *d, int finished, char *errstr, size_t errstr_size)
{
    char tmp[REDRIVE_PATH_MAX + 8];
    FILE *f;
    int result = 0;

    if (d->o->dry_run)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", d->path);
    f = fopen(tmp, "w");
    if (!f) {
        snprintf(errstr, errstr_size, "cannot write '%s': %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "%s\nroute %s\ntopic %s\n%s\nsince %" PRId64 "\nstate %s\n", REDRIVE_FORMAT,
            d->rc->name, d->rc->dead_letter.topic, d->select, d->since_ms,
            finished ? "finished" : "running");
    for (size_t i = 0; i < d->nparts; i++)
        fprintf(f, "partition %d %" PRId64 " %" PRId64 "\n", (int)d->parts[i].id, d->parts[i].next,
                d->parts[i].end);
    if (ferror(f))
        result = -1;
    if (fclose(f) || result || rename(tmp, d->path)) {
        snprintf(errstr, errstr_size, "cannot write '%s': %s", d->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Takes the lock of the progress file, <path>.lock, for the run: a `ferry redrive` and a
 * redrive endpoint (or two commands) over one file would each redrive the same dead letters
 * and overwrite each other's progress. The lock goes with the process, also on kill -9.
 * Returns 0, or FERRY_REDRIVE_EBUSY when another run holds it, FERRY_REDRIVE_EFAIL when it
 * cannot be taken. */
static int lock_progress(struct redrive *d, char *errstr, size_t errstr_size)
{
    char lock[REDRIVE_PATH_MAX + 8];

    if (d->o->dry_run)
        return 0;
    snprintf(lock, sizeof(lock), "%s.lock", d->path);
    d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0) {
        snprintf(errstr, errstr_size, "cannot open '%s': %s", lock, strerror(errno));
        return FERRY_REDRIVE_EFAIL;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK) {
        snprintf(errstr, errstr_size,
                 "another redrive of route '%s' is running with the progress file '%s'",
                 d->o->route, d->path);
        return FERRY_REDRIVE_EBUSY;
    }
    snprintf(errstr, errstr_size, "cannot lock '%s': %s", lock, strerror(errno));
    return FERRY_REDRIVE_EFAIL;
}

/* A saved run, as read from its file. */
struct saved {
    char route[REDRIVE_LINE_MAX], topic[REDRIVE_LINE_MAX], select[REDRIVE_LINE_MAX];
    int64_t since_ms;
    int finished;
    struct part *parts;
    size_t nparts;
};

/* Reads the value after "name " on line into out; returns 0 when the line is that field. */
static int field(const char *line, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);

    if (strncmp(line, name, n) != 0 || line[n] != ' ')
        return -1;
    snprintf(out, size, "%s", line + n + 1);
    return 0;
}

static int parse_part(const char *line, struct saved *s)
{
    char *end;
    long id;
    long long next, stop;
    struct part *grown;

    if (strncmp(line, "partition ", 10) != 0 || s->nparts == REDRIVE_PARTITIONS_MAX)
        return -1;
    errno = 0;
    id = strtol(line + 10, &end, 10);
    next = strtoll(end, &end, 10);
    stop = strtoll(end, &end, 10);
    if (errno || *end || id < 0 || id > INT32_MAX || next < 0 || stop < 0)
        return -1;
    grown = realloc(s->parts, (s->nparts + 1) * sizeof(*grown));
    if (!grown)
        return -1;
    s->parts = grown;
    s->parts[s->nparts++] = (struct part){(int32_t)id, next, stop};
    return 0;
}

/* One line of a saved run. Returns 0, or -1 when it is not what a progress file holds. */
static int parse_line(char *line, int lineno, struct saved *s)
{
    char value[REDRIVE_LINE_MAX];
    char *end;

    line[strcspn(line, "\n")] = '\0';
    if (lineno == 1)
        return strcmp(line, REDRIVE_FORMAT) == 0 ? 0 : -1;
    if (field(line, "route", s->route, sizeof(s->route)) == 0 ||
        field(line, "topic", s->topic, sizeof(s->topic)) == 0)
        return 0;
    if (strncmp(line, "select", 6) == 0) {
        snprintf(s->select, sizeof(s->select), "%s", line);
        return 0;
    }
    if (field(line, "state", value, sizeof(value)) == 0) {
        s->finished = strcmp(value, "finished") == 0;
        return s->finished || strcmp(value, "running") == 0 ? 0 : -1;
    }
    if (field(line, "since", value, sizeof(value)) == 0) {
        errno = 0;
        s->since_ms = strtoll(value, &end, 10);
        return errno || *end ? -1 : 0;
    }
    return parse_part(line, s);
}

/* Reads the file at path into *s. Returns 1 when there is none, 0 when read, -1 on errors. */
static int load_saved(const char *path, struct saved *s, char *errstr, size_t errstr_size)
{
    char line[REDRIVE_LINE_MAX];
    int lineno = 0, result = 0;
    FILE *f = fopen(path, "r");

    if (!f && errno == ENOENT)
        return 1;
    if (!f) {
        snprintf(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    while (!result && fgets(line, sizeof(line), f))
        if (parse_line(line, ++lineno, s)) {
            snprintf(errstr, errstr_size, "'%s' line %d: not a redrive progress file", path,
                     lineno);
            result = -1;
        }
    if (!result && lineno == 0) {
        snprintf(errstr, errstr_size, "'%s' is empty: not a redrive progress file", path);
        result = -1;
    }
    fclose(f);
    return result;
}

/* Takes the saved run over when it is this one (same route, topic and selection). Returns 0
 * (with d->parts set when resuming), or an enum ferry_redrive_result. */
static int adopt_saved(struct redrive *d, struct saved *s, char *errstr, size_t errstr_size)
{
    int same = strcmp(s->route, d->rc->name) == 0 &&
               strcmp(s->topic, d->rc->dead_letter.topic) == 0 && strcmp(s->select, d->select) == 0;

    if (d->o->restart || (!same && s->finished))
        return FERRY_REDRIVE_OK;
    if (!same) {
        snprintf(errstr, errstr_size,
                 "'%s' holds an unfinished redrive of route '%s' (%s): run it again with the "
                 "same options to resume it, or pass --restart to discard it",
                 d->path, s->route, s->select);
        return FERRY_REDRIVE_EUSAGE;
    }
    d->saved = s->parts;
    d->nsaved = s->nparts;
    s->parts = NULL;
    if (!s->finished) { /* a relative --since is the resumed run's time, not now's */
        d->since_ms = s->since_ms;
        d->filter.since_ms = s->since_ms;
    }
    d->sum->resumed = !s->finished;
    d->sum->continued = s->finished;
    return FERRY_REDRIVE_OK;
}

static int load_progress(struct redrive *d, char *errstr, size_t errstr_size)
{
    struct saved *s = calloc(1, sizeof(*s));
    int result;

    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return FERRY_REDRIVE_EFAIL;
    }
    result = load_saved(d->path, s, errstr, errstr_size);
    if (result == 1)
        result = FERRY_REDRIVE_OK;
    else if (result < 0)
        result = FERRY_REDRIVE_EFAIL;
    else
        result = adopt_saved(d, s, errstr, errstr_size);
    free(s->parts);
    free(s);
    return result;
}

/* ---- Kafka ---- */

static int consumer_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                        size_t errstr_size)
{
    char why[256];

    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(errstr, errstr_size, "kafka: %s: %s", name, why);
    return -1;
}

static int make_consumer(struct redrive *d, char *errstr, size_t errstr_size)
{
    char name[512], group[512], why[256];
    rd_kafka_conf_t *conf;

    snprintf(name, sizeof(name), "redrive-%s", d->rc->name);
    snprintf(group, sizeof(group), "ferry-redrive-%s", d->rc->name);
    conf = ferry_kafka_conf_new(d->kafka, FERRY_KAFKA_CONSUMER, name, &d->rc->kafka, d,
                                &d->consumer_opaque, errstr, errstr_size);
    if (!conf)
        return -1;
    if (consumer_set(conf, "group.id", group, errstr, errstr_size) ||
        consumer_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        consumer_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        consumer_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
        consumer_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (!d->consumer) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "kafka: cannot create a consumer: %s", why);
        return -1;
    }
    rd_kafka_poll_set_consumer(d->consumer);
    return 0;
}

/* The dead-letter topic's partition count, 0 when the topic does not exist, -1 on errors. */
static int partition_count(struct redrive *d, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(d->consumer, d->rc->dead_letter.topic, NULL);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__FAIL;
    int n = -1;

    if (t)
        err = rd_kafka_metadata(d->consumer, 0, t, &md, REDRIVE_KAFKA_TIMEOUT_MS);
    if (!err && md->topic_cnt == 1) {
        err = md->topics[0].err;
        n = err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : md->topics[0].partition_cnt;
        if (n == 0)
            err = 0;
    }
    if (err || n < 0)
        snprintf(errstr, errstr_size, "kafka: cannot read the metadata of '%s': %s",
                 d->rc->dead_letter.topic, rd_kafka_err2str(err));
    if (md)
        rd_kafka_metadata_destroy(md);
    if (t)
        rd_kafka_topic_destroy(t);
    return err ? -1 : n;
}

/* The saved run's partition p, or NULL. */
static const struct part *saved_part(const struct redrive *d, int32_t p)
{
    for (size_t i = 0; i < d->nsaved; i++)
        if (d->saved[i].id == p)
            return &d->saved[i];
    return NULL;
}

/* Where the saved run got to in partition p, or -1. */
static int64_t saved_next(const struct redrive *d, int32_t p)
{
    const struct part *s = saved_part(d, p);

    return s ? s->next : -1;
}

/* The end of partition p for this run, which starts reading at next: the --to bound, within the
 * partition's end now (hi). A resumed run keeps the ends its first start saved: the dead
 * letters written since are the next run's, and a partition it did not know had none. */
static int64_t plan_end(const struct redrive *d, int32_t p, int64_t next, int64_t hi)
{
    const struct part *s = saved_part(d, p);
    int64_t end = ferry_redrive_end(&d->filter, p);
    int64_t began = s ? s->end : next;

    if (end > hi)
        end = hi;
    if (d->sum->resumed && end > began)
        end = began;
    return end;
}

/* Fails the run when the saved run got further in partition p than its end now (hi): the
 * topic was deleted and made again, and going on from there would skip every dead letter
 * before that offset without a word. */
static int check_saved_end(const struct redrive *d, int32_t p, int64_t hi, char *errstr,
                           size_t errstr_size)
{
    if (saved_next(d, p) <= hi)
        return 0;
    snprintf(errstr, errstr_size,
             "'%s' holds a run that got to offset %" PRId64 " of '%s' [%d], past the "
             "partition's end now (%" PRId64 "): the topic was made again; pass --restart "
             "(\"restart\": true) to read it from the start",
             d->path, saved_next(d, p), d->rc->dead_letter.topic, (int)p, hi);
    return -1;
}

/* Where partition p starts for this run: its first selected offset (--from, else the start of
 * the partition, lo), or where the saved run got to when that is later, but never past the
 * partition's end now (hi). That is also what is saved: a --from past the end saved as it is
 * would look like a topic made again to the same command run later (check_saved_end), and the
 * --from is kept all the same, since it is part of the selection a resumed run must match. */
static int64_t plan_next(const struct redrive *d, int32_t p, int64_t lo, int64_t hi)
{
    int64_t next = ferry_redrive_first(&d->filter, p);

    if (next < lo)
        next = lo;
    if (saved_next(d, p) > next)
        next = saved_next(d, p);
    return next < hi ? next : hi;
}

/* Plans the run: every partition from plan_next() to plan_end(). Returns 0 or an enum
 * ferry_redrive_result. */
static int plan_run(struct redrive *d, char *errstr, size_t errstr_size)
{
    int n = partition_count(d, errstr, errstr_size);

    if (n < 0)
        return FERRY_REDRIVE_EFAIL;
    d->parts = calloc(n ? (size_t)n : 1, sizeof(*d->parts));
    if (!d->parts) {
        snprintf(errstr, errstr_size, "out of memory");
        return FERRY_REDRIVE_EFAIL;
    }
    for (int32_t p = 0; p < n; p++) {
        int64_t lo, hi;
        struct part *pt = &d->parts[d->nparts++];
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            d->consumer, d->rc->dead_letter.topic, p, &lo, &hi, REDRIVE_KAFKA_TIMEOUT_MS);
        if (err) {
            snprintf(errstr, errstr_size, "kafka: cannot read the offsets of '%s' [%d]: %s",
                     d->rc->dead_letter.topic, (int)p, rd_kafka_err2str(err));
            return FERRY_REDRIVE_EFAIL;
        }
        if (check_saved_end(d, p, hi, errstr, errstr_size))
            return FERRY_REDRIVE_EUSAGE;
        pt->id = p;
        pt->next = plan_next(d, p, lo, hi);
        pt->end = plan_end(d, p, pt->next, hi);
    }
    return 0;
}

/* Assigns the partitions with something left to read, each at its next offset. Returns how
 * many, or -1. */
static int assign(struct redrive *d, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)d->nparts + 1);
    rd_kafka_resp_err_t err;
    int n = 0;

    for (size_t i = 0; i < d->nparts; i++) {
        if (d->parts[i].next >= d->parts[i].end)
            continue;
        rd_kafka_topic_partition_list_add(l, d->rc->dead_letter.topic, d->parts[i].id)->offset =
            d->parts[i].next;
        n++;
    }
    err = n ? rd_kafka_assign(d->consumer, l) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        snprintf(errstr, errstr_size, "kafka: cannot assign '%s': %s", d->rc->dead_letter.topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    return n;
}

static struct part *part_of(struct redrive *d, int32_t id)
{
    for (size_t i = 0; i < d->nparts; i++)
        if (d->parts[i].id == id)
            return &d->parts[i];
    return NULL;
}

/* Moves partition pt past offset; once it reached its end, stops fetching it (the records
 * after the run's end would only be read to be ignored). */
static void advance(struct redrive *d, struct part *pt, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l;

    pt->next = offset + 1;
    if (pt->next < pt->end)
        return;
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, d->rc->dead_letter.topic, pt->id);
    rd_kafka_pause_partitions(d->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static int all_done(const struct redrive *d)
{
    for (size_t i = 0; i < d->nparts; i++)
        if (d->parts[i].next < d->parts[i].end)
            return 0;
    return 1;
}

/* ---- the original record ---- */

/* The value of ferry's header name of the newest failure as text into out (cut to size), or -1
 * when that failure has none: an older failure's copy is not this one's. */
static int header_text(rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    const void *v;
    size_t n;

    if (ferry_deadletter_headers_get(h, name, &v, &n) || !v)
        return -1;
    if (n >= size)
        n = size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* The value of ferry's header name of the newest failure as an integer, or fallback when absent
 * or not a number. */
static int64_t header_int(rd_kafka_headers_t *h, const char *name, int64_t fallback)
{
    char text[32], *end;
    long long v;

    if (header_text(h, name, text, sizeof(text)))
        return fallback;
    errno = 0;
    v = strtoll(text, &end, 10);
    return errno || end == text || *end ? fallback : (int64_t)v;
}

/* The record's own headers: every header but ferry's (ferry.*). NULL when there are none. */
static rd_kafka_headers_t *own_headers(rd_kafka_headers_t *h)
{
    rd_kafka_headers_t *own = NULL;
    const char *name;
    const void *v;
    size_t n;

    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &v, &n); i++) {
        if (strncmp(name, "ferry.", 6) == 0)
            continue;
        if (!own)
            own = rd_kafka_headers_new(8);
        rd_kafka_header_add(own, name, -1, v, (ssize_t)n);
    }
    return own;
}

/* The original record of a dead letter, as the route consumed it: topic (into topic),
 * partition, offset and timestamp from ferry's headers (the dead letter's own when absent),
 * key, value and own headers (the caller destroys view->headers). */
static void original_view(const rd_kafka_message_t *m, rd_kafka_headers_t *h, char *topic,
                          size_t topic_size, struct ferry_record *view)
{
    if (header_text(h, "ferry.topic", topic, topic_size))
        snprintf(topic, topic_size, "%s", rd_kafka_topic_name(m->rkt));
    memset(view, 0, sizeof(*view));
    view->topic = topic;
    view->partition = (int32_t)header_int(h, "ferry.partition", m->partition);
    view->offset = header_int(h, "ferry.offset", m->offset);
    view->timestamp_ms = header_int(h, "ferry.timestamp", -1);
    view->key = m->key;
    view->key_len = m->key_len;
    view->value = m->payload;
    view->value_len = m->len;
    view->headers = own_headers(h);
}

/* ---- sending ---- */

static void on_reject(void *arg, struct ferry_dispatch_rec *rec, const char *why)
{
    struct redrive *d = arg;

    (void)rec;
    snprintf(d->reject, sizeof(d->reject), "%s", why);
}

static void on_call_done(void *arg, struct ferry_http_call *call)
{
    struct redrive *d = arg;

    (void)call;
    d->call_done = 1;
}

/* Sends one attempt and waits for its answer (a signal meanwhile is noted in *interrupted:
 * the answer is still awaited, so that a delivered record is known as such). */
static void attempt(struct redrive *d, struct ferry_request *req, int *interrupted)
{
    char err[256];

    d->call_done = 0;
    if (ferry_sender_start(d->sender, &req->call, err, sizeof(err))) {
        req->call.transport_error = 1;
        req->call.status = 0;
        req->call.retry_after_ms = -1;
        snprintf(req->call.error, sizeof(req->call.error), "%s", err);
        return;
    }
    while (!d->call_done) {
        ferry_sender_wait(d->sender, -1, REDRIVE_POLL_MS);
        ferry_sender_collect(d->sender, on_call_done, d);
        if (!*interrupted && stop_within(d, 0))
            *interrupted = 1;
    }
}

static void describe_failure(const struct ferry_request *req,
                             const struct ferry_outcome_decision *dec, char *out, size_t size)
{
    if (req->call.transport_error || req->call.error[0]) /* an answer the sender described */
        snprintf(out, size, "%s", req->call.error);
    else
        snprintf(out, size, "http status %ld", req->call.status);
    if (dec->gave_up)
        snprintf(out + strlen(out), size - strlen(out), " (gave up after %d attempts)",
                 req->attempts);
}

/* Sends req until the route's policy says it is done: delivered, dead letter (failed again,
 * why in reason), or a signal came while a retry waited. */
static enum sent send_request(struct redrive *d, struct ferry_request *req, char *reason,
                              size_t reason_size, int *interrupted)
{
    for (;;) {
        struct ferry_outcome_attempt a;
        struct ferry_outcome_decision dec;
        int64_t wait_ms;

        attempt(d, req, interrupted);
        a.transport_error = req->call.transport_error;
        a.http_status = req->call.status;
        a.retry_after_ms = req->call.retry_after_ms;
        a.attempts = ++req->attempts;
        dec = ferry_outcome_decide(&d->policy, &a, &d->rng);
        if (dec.action == FERRY_OUTCOME_SUCCESS)
            return SENT_DELIVERED;
        describe_failure(req, &dec, reason, reason_size);
        if (dec.action == FERRY_OUTCOME_DEAD_LETTER)
            return SENT_FAILED;
        req->attempts = dec.attempts;
        wait_ms = dec.pause_ms > dec.delay_ms ? dec.pause_ms : dec.delay_ms;
        FLOG_WARN_REPEATED("redrive", d->rc->name, "%s; retrying in %.1f s", reason,
                           (double)wait_ms / 1000.0);
        if (*interrupted || stop_within(d, wait_ms)) {
            *interrupted = 1;
            return SENT_INTERRUPTED;
        }
    }
}

/* Builds the request of one original record and, unless dry_run, sends it. */
static enum sent redrive_one(struct redrive *d, const struct ferry_record *view, char *reason,
                             size_t reason_size, int *interrupted)
{
    struct ferry_dispatch_rec rec = {.view = *view};
    struct ferry_request *req;
    enum sent result = SENT_DELIVERED;
    char why[FERRY_VALIDATE_REASON_MAX];
    size_t cut;

    if (d->validator && ferry_validate_record(d->validator, &rec.view.value, &rec.view.value_len,
                                              why, sizeof(why))) {
        snprintf(reason, reason_size, "fails the route's validation: %s", why);
        return SENT_FAILED;
    }
    req = ferry_request_get(d->builder);
    if (!req) {
        snprintf(reason, reason_size, "out of memory for a request");
        return SENT_FAILED;
    }
    req->recs[0] = &rec;
    req->n = 1;
    d->reject[0] = '\0';
    if (ferry_request_build(d->builder, req, &cut, on_reject, d)) {
        snprintf(reason, reason_size, "%s", d->reject);
        result = SENT_FAILED;
    } else if (d->o->dry_run) {
        snprintf(reason, reason_size, "%s %s", req->call.method, req->call.url);
    } else {
        result = send_request(d, req, reason, reason_size, interrupted);
    }
    ferry_request_put(d->builder, req);
    return result;
}

/* ---- the run ---- */

static void print_record(struct redrive *d, const char *what, const rd_kafka_message_t *m,
                         const struct ferry_record *v, const char *detail)
{
    if (d->o->max_lines && d->printed >= d->o->max_lines) {
        d->sum->unprinted++;
        return;
    }
    d->printed++;
    fprintf(d->out, "%s: %s[%d]@%" PRId64 " (%s[%d]@%" PRId64 "): %s\n", what,
            d->rc->dead_letter.topic, (int)m->partition, m->offset, v->topic, (int)v->partition,
            v->offset, detail);
}

/* Redrives one dead letter of the route. Returns -1 when the progress cannot be saved. */
static int redrive_record(struct redrive *d, const rd_kafka_message_t *m, rd_kafka_headers_t *h,
                          struct part *pt, int *interrupted, char *errstr, size_t errstr_size)
{
    char topic[REDRIVE_HEADER_MAX], reason[REDRIVE_REASON_MAX];
    struct ferry_record view;
    enum sent s;

    original_view(m, h, topic, sizeof(topic), &view);
    s = redrive_one(d, &view, reason, sizeof(reason), interrupted);
    if (view.headers)
        rd_kafka_headers_destroy(view.headers);
    if (s == SENT_INTERRUPTED)
        return 0;
    advance(d, pt, m->offset);
    if (s == SENT_DELIVERED)
        d->sum->redriven++;
    else
        d->sum->failed_again++;
    if (d->o->dry_run)
        print_record(d, s == SENT_DELIVERED ? "would redrive" : "would fail", m, &view, reason);
    else if (s == SENT_FAILED)
        print_record(d, "failed again", m, &view, reason);
    return save_progress(d, 0, errstr, errstr_size);
}

/* Handles one consumed dead letter. Returns -1 when the progress cannot be saved. */
static int handle_message(struct redrive *d, rd_kafka_message_t *m, int *interrupted, char *errstr,
                          size_t errstr_size)
{
    struct part *pt = part_of(d, m->partition);
    rd_kafka_headers_t *h = NULL;
    char route[REDRIVE_HEADER_MAX];
    enum ferry_redrive_verdict v;

    if (!pt || m->offset < pt->next || m->offset >= pt->end)
        return 0;
    d->sum->read++;
    if (rd_kafka_message_headers(m, &h))
        h = NULL;
    v = ferry_redrive_filter_decide(
        &d->filter, d->rc->name, header_text(h, "ferry.route", route, sizeof(route)) ? NULL : route,
        (long)header_int(h, "ferry.http_status", 0), rd_kafka_message_timestamp(m, NULL));
    if (v == FERRY_REDRIVE_SEND)
        return redrive_record(d, m, h, pt, interrupted, errstr, errstr_size);
    d->sum->skipped++;
    advance(d, pt, m->offset);
    return 0;
}

/* The end of a partition came before the end of the run (records removed, or markers). */
static void handle_eof(struct redrive *d, const rd_kafka_message_t *m)
{
    struct part *pt = part_of(d, m->partition);

    if (pt && m->offset >= pt->next)
        pt->next = pt->end;
}

/* Reads and redrives until every partition is done or a signal came. */
static int consume(struct redrive *d, char *errstr, size_t errstr_size)
{
    int interrupted = 0, result = 0;

    while (!result && !interrupted && !all_done(d)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(d->consumer, REDRIVE_POLL_MS);
        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            handle_eof(d, m);
        else if (m && m->err)
            FLOG_WARN_REPEATED("redrive", d->rc->name, "reading '%s': %s", d->rc->dead_letter.topic,
                               rd_kafka_message_errstr(m));
        else if (m)
            result = handle_message(d, m, &interrupted, errstr, errstr_size);
        if (m)
            rd_kafka_message_destroy(m);
        if (!interrupted && stop_within(d, 0))
            interrupted = 1;
    }
    d->sum->interrupted = interrupted;
    return result;
}

/* ---- set-up ---- */

static int set_rules(struct redrive *d, const struct ferry_cfg_strings *list,
                     enum ferry_outcome outcome, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < list->count; i++)
        if (ferry_status_rules_set(d->rules, outcome, list->items[i], errstr, errstr_size))
            return -1;
    return 0;
}

/* The route's validator, when it validates anything: a dead letter goes through it as a
 * consumed record does (and a wire-format prefix comes off as it did then). */
static int make_validator(struct redrive *d, char *errstr, size_t errstr_size)
{
    return ferry_route_validator_new(d->rc, &d->validator, errstr, errstr_size);
}

/* The route's request builder, on_status rules, retry policy, validator and a sender like its
 * own. */
static int make_delivery(struct redrive *d, char *errstr, size_t errstr_size)
{
    const struct ferry_route_config *c = d->rc;
    struct ferry_sender_options so = {c->target.timeout_ms,
                                      c->target.connect_timeout_ms,
                                      c->target.tls.ca_file,
                                      c->target.tls.cert_file,
                                      c->target.tls.key_file,
                                      c->target.tls.verify,
                                      (size_t)c->dead_letter.response_max,
                                      1,
                                      0};

    d->builder = ferry_request_builder_new(c, errstr, errstr_size);
    d->rules = d->builder ? ferry_status_rules_new() : NULL;
    if (!d->rules)
        return -1;
    if (ferry_route_target_kind(c) == FERRY_TARGET_SMTP &&
        ferry_smtp_status_defaults(d->rules, errstr, errstr_size))
        return -1;
    if (set_rules(d, &c->on_status.success, FERRY_OUTCOME_SUCCESS, errstr, errstr_size) ||
        set_rules(d, &c->on_status.retry, FERRY_OUTCOME_RETRY, errstr, errstr_size) ||
        set_rules(d, &c->on_status.dead_letter, FERRY_OUTCOME_DEAD_LETTER, errstr, errstr_size))
        return -1;
    d->backoff =
        (struct ferry_backoff_policy){(int)c->retry.max_attempts, c->retry.initial_backoff_ms,
                                      c->retry.max_backoff_ms, c->retry.multiplier};
    d->policy = (struct ferry_outcome_policy){d->rules, &d->backoff, 1, NULL, NULL};
    if (ferry_route_target_kind(c) == FERRY_TARGET_GRPC) {
        d->grpc_rules = ferry_grpc_config_rules(&c->target.grpc, errstr, errstr_size);
        if (!d->grpc_rules)
            return -1;
        d->policy.classify = ferry_grpc_rules_outcome;
        d->policy.classify_rules = d->grpc_rules;
    }
    d->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)d;
    d->sender = ferry_sender_new(&so, errstr, errstr_size);
    return d->sender ? make_validator(d, errstr, errstr_size) : -1;
}

/* Checks the route and the command against each other, and names the progress file. */
static int check_route(struct redrive *d, char *errstr, size_t errstr_size)
{
    d->rc = ferry_redrive_find_route(d->o->routes, d->o->route);
    if (!d->rc) {
        snprintf(errstr, errstr_size, "no route named '%s' in '%s'", d->o->route, d->cfg->path);
        return -1;
    }
    if (!d->rc->dead_letter.topic) {
        snprintf(errstr, errstr_size, "route '%s' has no dead_letter.topic to redrive from",
                 d->o->route);
        return -1;
    }
    if (!d->o->kafka && !d->cfg->kafka.brokers) {
        snprintf(errstr, errstr_size,
                 "'%s' sets no kafka.brokers: the embedded dev cluster of `ferry run` lives and "
                 "dies with that process, so there is nothing to redrive from",
                 d->cfg->path);
        return -1;
    }
    if (d->o->progress_path)
        snprintf(d->path, sizeof(d->path), "%s", d->o->progress_path);
    else
        snprintf(d->path, sizeof(d->path), "ferry-redrive-%s.progress", d->o->route);
    ferry_redrive_filter_describe(&d->o->filter, d->select, sizeof(d->select));
    d->filter = d->o->filter;
    d->since_ms = d->filter.since_ms;
    return 0;
}

static void release(struct redrive *d)
{
    if (d->consumer) {
        rd_kafka_consumer_close(d->consumer);
        rd_kafka_destroy(d->consumer);
    }
    if (d->consumer_opaque) /* also when the consumer could not be made from its conf */
        ferry_kafka_client_release(d->kafka, d->consumer_opaque);
    ferry_sender_destroy(d->sender);
    ferry_request_builder_destroy(d->builder);
    ferry_status_rules_destroy(d->rules);
    ferry_grpc_rules_destroy(d->grpc_rules);
    ferry_validate_destroy(d->validator);
    if (d->own_kafka)
        ferry_kafka_destroy(d->kafka, REDRIVE_KAFKA_TIMEOUT_MS);
    free(d->parts);
    free(d->saved);
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* lets the lock go */
}

/* Fails a run during which a Kafka client failed for good. A fatal error of the shared
 * producer also sends the stop signal (core/kafka.c), which would otherwise end the run as if
 * someone had stopped it. Takes the run's result; returns it, or FERRY_REDRIVE_EFAIL with the
 * reason in errstr. */
static int check_kafka(const struct redrive *d, int result, char *errstr, size_t errstr_size)
{
    char why[512];

    if (!d->kafka || d->kafka_down_before || result == FERRY_REDRIVE_EUSAGE ||
        !ferry_kafka_failed(d->kafka, why, sizeof(why)))
        return result;
    snprintf(errstr, errstr_size, "kafka: %s", why);
    return FERRY_REDRIVE_EFAIL;
}

/* Connects, plans or resumes the run, and redrives. */
static int run(struct redrive *d, char *errstr, size_t errstr_size)
{
    char why[512];
    int n;

    d->kafka = d->o->kafka;
    if (d->kafka) { /* the process's: an earlier failure (a fenced route) is not this run's */
        d->kafka_down_before = ferry_kafka_failed(d->kafka, why, sizeof(why));
    } else {
        d->kafka = ferry_kafka_new(d->cfg, NULL, errstr, errstr_size);
        d->own_kafka = 1;
    }
    if (!d->kafka || make_consumer(d, errstr, errstr_size) || make_delivery(d, errstr, errstr_size))
        return FERRY_REDRIVE_EFAIL;
    n = plan_run(d, errstr, errstr_size);
    if (n)
        return n;
    if (save_progress(d, 0, errstr, errstr_size))
        return FERRY_REDRIVE_EFAIL;
    n = assign(d, errstr, errstr_size);
    if (n < 0 || (n > 0 && consume(d, errstr, errstr_size)))
        return FERRY_REDRIVE_EFAIL;
    if (save_progress(d, !d->sum->interrupted, errstr, errstr_size))
        return FERRY_REDRIVE_EFAIL;
    return FERRY_REDRIVE_OK;
}

int ferry_redrive_run(const struct ferry_config *cfg, const struct ferry_redrive_options *o,
                      struct ferry_redrive_summary *sum, FILE *out, char *errstr,
                      size_t errstr_size)
{
    struct redrive d = {.cfg = cfg, .o = o, .sum = sum, .out = out, .lock_fd = -1};
    int result;

    memset(sum, 0, sizeof(*sum));
    if (check_route(&d, errstr, errstr_size))
        return FERRY_REDRIVE_EUSAGE;
    result = lock_progress(&d, errstr, errstr_size);
    if (!result)
        result = load_progress(&d, errstr, errstr_size);
    if (!result)
        result = check_kafka(&d, run(&d, errstr, errstr_size), errstr, errstr_size);
    release(&d);
    return result;
}
