/*
 * table_watch.c - many clients parked on a ferry table at once: long polls, or Server-Sent
 * Events subscribers, then woken by records it produces itself.
 *
 * bench/tables.sh runs it for the rows wrk cannot drive: thousands of connections that wait.
 *
 *   --mode longpoll  reads the ETag of keys k0..k<N-1> (one keep-alive connection, libcurl),
 *                    notes the server's memory (/proc/PID/status), opens N connections each
 *                    holding `GET /tables/T/keys/k<i>` with `If-None-Match: <etag>` and
 *                    `Prefer: wait=W`, waits until ferry's ferry_table_waiters says all N are
 *                    parked, notes the memory again, then produces a new value for every key and
 *                    times each answer from the first produce.
 *   --mode sse       opens N subscriptions (`GET /tables/T/keys/k<i mod K>/events`), waits until
 *                    each has had its first event (the current value), then produces R updates
 *                    a second over the K keys for D seconds, and counts the events each subscriber
 *                    gets: subscribers x updates/s, with each update's delay from its produce.
 *                    Also the table's commits meanwhile (ferry_table_apply_batch_seconds_count:
 *                    a commit sends each key it changed once, so updates of a key that share a
 *                    commit arrive as one event) and the server's CPU per event received.
 *
 * Values it produces are `{"t":<CLOCK_MONOTONIC ns>,"pad":"..."}` padded to B bytes, keyed
 * k<i> with librdkafka's murmur2_random partitioner (the table's `partitioner: murmur2`); an
 * event whose data carries "t" is an update and its delay is now - t (one machine, one clock).
 * One thread, epoll, nonblocking sockets; at most CONNECTING_MAX connects in progress, so the
 * server's listen backlog never overflows. Prints one line of key=value pairs; exits 1 when
 * the run could not be made (an answer other than the expected one is counted, not fatal).
 */
#include "bench_util.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define CLIENTS_MAX 200000
#define CONNECTING_MAX 256   /* connects in progress at once (ferry's listen backlog is 1024) */
#define HEAD_MAX 4096        /* response status line and headers */
#define LINE_KEEP 64         /* bytes kept of an event line: enough for data: {"t":<ns> */
#define REQUEST_MAX 1024     /* one request's text */
#define ETAG_MAX 64          /* "<partition>:<offset>-<hash>" with its quotes */
#define SCRAPE_MAX (4 << 20) /* a /metrics answer */
#define LATENCIES_MAX 2000000
#define EVENTS_PER_WAIT 512
#define POLL_MS 1
#define SCRAPE_EVERY_S 0.1
#define VALUE_MAX 65536

enum mode { LONGPOLL, SSE };

struct options {
    enum mode mode;
    const char *url; /* http://HOST:PORT */
    const char *table;
    const char *bootstrap;
    const char *topic;
    long clients;
    long keys; /* sse: subscribers are spread over k0..k<keys-1> */
    long wait_s;
    long rate; /* sse: updates a second, over all keys */
    long seconds;
    long value_bytes;
    long pid; /* the server, for its memory; 0: not read */
    long timeout_s;
};

enum conn_state { C_IDLE, C_CONNECTING, C_SENDING, C_HEAD, C_BODY, C_DONE, C_FAILED };
enum chunk_state { CH_SIZE, CH_EXT, CH_DATA, CH_DATA_END, CH_END };

/* One client connection. */
struct conn {
    int fd;
    enum conn_state state;
    size_t sent;
    char etag[ETAG_MAX];
    char head[HEAD_MAX];
    size_t head_len;
    int status;
    long body_left; /* longpoll: Content-Length still to read */
    int chunked;
    enum chunk_state chunk;
    long chunk_left;
    char line[LINE_KEEP + 1];
    size_t line_len;
    int in_event;
    int64_t event_t; /* "t" of the event being read, or 0 */
    long events, updates;
    double answered_at;
};

/* Server memory, in MB, from /proc/PID/status. */
struct mem {
    double rss, anon, file, hwm;
};

struct run {
    struct options opt;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[256];
    int ep;
    struct conn *conns;
    long connecting, next_connect, open, done, failed;
    CURL *curl; /* one keep-alive connection for ETags and /metrics */
    char *scrape;
    size_t scrape_len;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    char *value;
    long produced;
    double start_produce, last_event;
    int64_t produce_ns; /* sse: when the updates began (CLOCK_MONOTONIC), 0 before */
    double *lat;        /* seconds, one per update received (or answer woken) */
    long nlat;
    long early, wrong_status, gone;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ferry-bench-table-watch --mode longpoll|sse --url http://HOST:PORT --table T\n"
            "         --bootstrap HOST:PORT --topic TOPIC [--clients N] [--keys K] [--wait S]\n"
            "         [--rate R] [--seconds D] [--value-bytes B] [--pid PID] [--timeout S]\n"
            "longpoll: N long polls on keys k0..k<N-1>, parked, then woken by a produce to each;\n"
            "sse: N subscribers over keys k0..k<K-1>, then R updates/s for D seconds.\n");
}

static int parse_flag(void *arg, const char *flag, const char *val)
{
    struct options *o = arg;
    const char *prog = "ferry-bench-table-watch";
    const char **strings[] = {&o->url, &o->table, &o->bootstrap, &o->topic};
    const char *names[] = {"--url", "--table", "--bootstrap", "--topic"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(flag, names[i])) {
            *strings[i] = val;
            return 0;
        }
    if (!strcmp(flag, "--mode") && (!strcmp(val, "longpoll") || !strcmp(val, "sse"))) {
        o->mode = !strcmp(val, "sse") ? SSE : LONGPOLL;
        return 0;
    }
    if (!strcmp(flag, "--clients"))
        return bench_parse_long(prog, flag, val, 1, CLIENTS_MAX, &o->clients);
    if (!strcmp(flag, "--keys"))
        return bench_parse_long(prog, flag, val, 1, CLIENTS_MAX, &o->keys);
    if (!strcmp(flag, "--wait"))
        return bench_parse_long(prog, flag, val, 1, 3600, &o->wait_s);
    if (!strcmp(flag, "--rate"))
        return bench_parse_long(prog, flag, val, 1, 1000000, &o->rate);
    if (!strcmp(flag, "--seconds"))
        return bench_parse_long(prog, flag, val, 1, 3600, &o->seconds);
    if (!strcmp(flag, "--value-bytes"))
        return bench_parse_long(prog, flag, val, 48, VALUE_MAX, &o->value_bytes);
    if (!strcmp(flag, "--pid"))
        return bench_parse_long(prog, flag, val, 0, INT_MAX, &o->pid);
    if (!strcmp(flag, "--timeout"))
        return bench_parse_long(prog, flag, val, 1, 86400, &o->timeout_s);
    fprintf(stderr, "%s: bad flag or value: %s '%s'\n", prog, flag, val);
    return -1;
}

/* ---- the server's address, memory and metrics ---- */

/* Resolves the host and port of an http:// URL. */
static int resolve(struct run *r)
{
    const char *p = r->opt.url;
    const char *colon = strncmp(p, "http://", 7) == 0 ? strrchr(p + 7, ':') : NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    size_t n = colon ? (size_t)(colon - p - 7) : 0;

    if (!colon || n >= sizeof(r->host)) {
        fprintf(stderr, "ferry-bench-table-watch: --url: expected http://HOST:PORT\n");
        return -1;
    }
    memcpy(r->host, p + 7, n);
    r->host[n] = '\0';
    if (getaddrinfo(r->host, colon + 1, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "ferry-bench-table-watch: cannot resolve '%s'\n", r->opt.url);
        return -1;
    }
    memcpy(&r->addr, ai->ai_addr, ai->ai_addrlen);
    r->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void read_mem(const struct run *r, struct mem *m)
{
    char path[64], line[256];
    FILE *f;
    long kb;

    memset(m, 0, sizeof(*m));
    if (!r->opt.pid)
        return;
    snprintf(path, sizeof(path), "/proc/%ld/status", r->opt.pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            m->rss = (double)kb / 1024;
        else if (sscanf(line, "RssAnon: %ld", &kb) == 1)
            m->anon = (double)kb / 1024;
        else if (sscanf(line, "RssFile: %ld", &kb) == 1)
            m->file = (double)kb / 1024;
        else if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            m->hwm = (double)kb / 1024;
    }
    if (f)
        fclose(f);
}

static size_t on_scrape(char *data, size_t size, size_t n, void *arg)
{
    struct run *r = arg;
    size_t len = size * n;

    if (r->scrape_len + len + 1 > SCRAPE_MAX)
        return 0;
    memcpy(r->scrape + r->scrape_len, data, len);
    r->scrape_len += len;
    r->scrape[r->scrape_len] = '\0';
    return len;
}

/* Keeps an ETag header's value for the request being fetched. */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct conn *c = arg;
    size_t len = size * n, v;

    if (len > 5 && !strncasecmp(data, "ETag:", 5)) {
        for (v = 5; v < len && data[v] == ' '; v++)
            ;
        while (len > v && (data[len - 1] == '\r' || data[len - 1] == '\n'))
            len--;
        if (len - v < ETAG_MAX) {
            memcpy(c->etag, data + v, len - v);
            c->etag[len - v] = '\0';
        }
    }
    return size * n;
}

/* GETs url over the kept connection into r->scrape; returns the status, or -1. */
static long http_get(struct run *r, const char *url, struct conn *etag_of)
{
    long status = -1;

    r->scrape_len = 0;
    r->scrape[0] = '\0';
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, etag_of);
    curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, etag_of ? on_header : NULL);
    if (curl_easy_perform(r->curl) == CURLE_OK)
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* The table's sample of metric (name{table="T"}), or -1 when /metrics does not answer. */
static long table_metric(struct run *r, const char *metric)
{
    char url[512], name[300];
    const char *at;

    snprintf(url, sizeof(url), "%s/metrics", r->opt.url);
    snprintf(name, sizeof(name), "\n%s{table=\"%s\"} ", metric, r->opt.table);
    if (http_get(r, url, NULL) != 200)
        return -1;
    at = strstr(r->scrape, name);
    return at ? strtol(at + strlen(name), NULL, 10) : 0;
}

/* The server's user plus system CPU seconds so far (/proc/PID/stat), or 0 when not read. */
static double server_cpu_s(const struct run *r)
{
    char path[64], text[1024], *end;
    unsigned long utime = 0, stime = 0;
    size_t n = 0;
    FILE *f;

    if (!r->opt.pid)
        return 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", r->opt.pid);
    f = fopen(path, "r");
    if (f) {
        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
    }
    text[n] = '\0';
    end = strrchr(text, ')'); /* after the command's name, which may hold spaces */
    if (!end ||
        sscanf(end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Reads every key's ETag (longpoll), over one keep-alive connection. */
static int fetch_etags(struct run *r)
{
    char url[512];
    long status;

    for (long i = 0; i < r->opt.clients; i++) {
        snprintf(url, sizeof(url), "%s/tables/%s/keys/k%ld", r->opt.url, r->opt.table, i);
        status = http_get(r, url, &r->conns[i]);
        if (status != 200 || !r->conns[i].etag[0]) {
            fprintf(stderr, "ferry-bench-table-watch: GET %s: status %ld%s\n", url, status,
                    status == 200 ? " without an ETag" : "");
            return -1;
        }
    }
    return 0;
}

/* ---- the producer ---- */

static int producer_new(struct run *r)
{
    static const char *const settings[][2] = {
        {"linger.ms", "1"},
        {"partitioner", "murmur2_random"},
        {"queue.buffering.max.messages", "1000000"},
        {"compression.codec", "none"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    int result = rd_kafka_conf_set(conf, "bootstrap.servers", r->opt.bootstrap, why, sizeof(why));

    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]) && !result; i++)
        result = rd_kafka_conf_set(conf, settings[i][0], settings[i][1], why, sizeof(why));
    if (!result)
        r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (!r->rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "ferry-bench-table-watch: producer: %s\n", why);
        return -1;
    }
    r->rkt = rd_kafka_topic_new(r->rk, r->opt.topic, NULL);
    return r->rkt ? 0 : -1;
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Produces one value stamped with the time, keyed k<key>. */
static int produce(struct run *r, long key)
{
    char k[32];
    int klen = snprintf(k, sizeof(k), "k%ld", key);
    int n = snprintf(r->value, (size_t)r->opt.value_bytes + 1, "{\"t\":%" PRId64 ",\"pad\":\"",
                     now_ns());
    size_t len = (size_t)r->opt.value_bytes;

    memset(r->value + n, 'x', len - (size_t)n - 2);
    memcpy(r->value + len - 2, "\"}", 2);
    while (rd_kafka_produce(r->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, r->value, len, k,
                            (size_t)klen, NULL) == -1) {
        if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "ferry-bench-table-watch: produce: %s\n",
                    rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
        rd_kafka_poll(r->rk, 1);
    }
    r->produced++;
    return 0;
}

/* ---- connections ---- */

static int request_text(const struct run *r, long i, char *out)
{
    if (r->opt.mode == SSE)
        return snprintf(out, REQUEST_MAX,
                        "GET /tables/%s/keys/k%ld/events HTTP/1.1\r\nHost: %s\r\n"
                        "Accept: text/event-stream\r\n\r\n",
                        r->opt.table, i % r->opt.keys, r->host);
    return snprintf(out, REQUEST_MAX,
                    "GET /tables/%s/keys/k%ld HTTP/1.1\r\nHost: %s\r\nIf-None-Match: %s\r\n"
                    "Prefer: wait=%ld\r\n\r\n",
                    r->opt.table, i, r->host, r->conns[i].etag, r->opt.wait_s);
}

static void conn_end(struct run *r, struct conn *c, enum conn_state state)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->state == C_CONNECTING)
        r->connecting--;
    c->state = state;
    r->open--;
    if (state == C_DONE)
        r->done++;
    else
        r->failed++;
}

static int conn_start(struct run *r, long i)
{
    struct conn *c = &r->conns[i];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i};
    int one = 1;

    c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "ferry-bench-table-watch: socket %ld: %s\n", i, strerror(errno));
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r->open++;
    c->state = C_CONNECTING;
    r->connecting++;
    if ((connect(c->fd, (struct sockaddr *)&r->addr, r->addr_len) && errno != EINPROGRESS) ||
        epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
        fprintf(stderr, "ferry-bench-table-watch: connect %ld: %s\n", i, strerror(errno));
        conn_end(r, c, C_FAILED);
    }
    return 0;
}

/* Starts connects until CONNECTING_MAX are in progress or every client has one. */
static int connect_more(struct run *r)
{
    while (r->next_connect < r->opt.clients && r->connecting < CONNECTING_MAX)
        if (conn_start(r, r->next_connect++))
            return -1;
    return 0;
}

static void conn_send(struct run *r, long i)
{
    struct conn *c = &r->conns[i];
    char req[REQUEST_MAX];
    int len = request_text(r, i, req);
    ssize_t n;

    if (c->state == C_CONNECTING) {
        r->connecting--;
        c->state = C_SENDING;
    }
    n = send(c->fd, req + c->sent, (size_t)len - c->sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) {
        conn_end(r, c, C_FAILED);
        return;
    }
    c->sent += n > 0 ? (size_t)n : 0;
    if (c->sent == (size_t)len) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->state = C_HEAD;
    }
}

/* The value of header name in a response head, or NULL. */
static const char *head_value(const char *head, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':')
            return p + 3 + n + strspn(p + 3 + n, " ");
    return NULL;
}

/* Records an answer or an update's delay. */
static void note_latency(struct run *r, double seconds)
{
    if (r->nlat < LATENCIES_MAX)
        r->lat[r->nlat++] = seconds;
}

/* An SSE line ended: a blank one ends an event, a data line may carry "t". An event whose "t"
 * is older than the updates is a subscription's state: a value an earlier run wrote. */
static void sse_line(struct run *r, struct conn *c)
{
    const char *t;

    if (c->line_len && c->line[c->line_len - 1] == '\r')
        c->line_len--;
    c->line[c->line_len] = '\0';
    if (c->line_len == 0 && c->in_event) {
        c->events++;
        r->last_event = bench_now_s();
        if (c->event_t && r->produce_ns && c->event_t >= r->produce_ns) {
            c->updates++;
            note_latency(r, (double)(now_ns() - c->event_t) / 1e9);
        }
        c->in_event = 0;
        c->event_t = 0;
    } else if (c->line_len && c->line[0] != ':') {
        c->in_event = 1;
        t = !strncmp(c->line, "data:", 5) ? strstr(c->line, "\"t\":") : NULL;
        if (t)
            c->event_t = strtoll(t + 4, NULL, 10);
    }
    c->line_len = 0;
}

static void sse_bytes(struct run *r, struct conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n')
            sse_line(r, c);
        else if (c->line_len < LINE_KEEP)
            c->line[c->line_len++] = p[i];
    }
}

/* Takes the body of a chunked answer apart; returns the bytes used. */
static size_t dechunk(struct run *r, struct conn *c, const char *p, size_t n)
{
    size_t i = 0, take;

    while (i < n && c->chunk != CH_END) {
        if (c->chunk == CH_DATA) {
            take = n - i < (size_t)c->chunk_left ? n - i : (size_t)c->chunk_left;
            sse_bytes(r, c, p + i, take);
            i += take;
            c->chunk_left -= (long)take;
            c->chunk = c->chunk_left ? CH_DATA : CH_DATA_END;
            continue;
        }
        if (p[i] == '\n')
            c->chunk = c->chunk == CH_DATA_END ? CH_SIZE : c->chunk_left ? CH_DATA : CH_END;
        else if (c->chunk == CH_SIZE && (p[i] == ';' || p[i] == '\r'))
            c->chunk = CH_EXT;
        else if (c->chunk == CH_SIZE && strchr("0123456789abcdefABCDEF", p[i]))
            c->chunk_left =
                c->chunk_left * 16 + (p[i] <= '9' ? p[i] - '0' : (p[i] | 32) - 'a' + 10);
        i++;
    }
    return i;
}

/* Body bytes of an answer: a long poll's ends at its Content-Length. */
static void body_bytes(struct run *r, struct conn *c, const char *p, size_t n)
{
    if (r->opt.mode == SSE && c->chunked)
        dechunk(r, c, p, n);
    else if (r->opt.mode == SSE)
        sse_bytes(r, c, p, n);
    else
        c->body_left -= (long)n;
    if (r->opt.mode == LONGPOLL && c->body_left <= 0) {
        c->answered_at = bench_now_s();
        if (!r->start_produce)
            r->early++;
        else if (c->status != 200)
            r->wrong_status++;
        else
            note_latency(r, c->answered_at - r->start_produce);
        conn_end(r, c, C_DONE);
    }
}

/* The head is complete: reads the status and how the body is framed. */
static void head_done(struct run *r, struct conn *c)
{
    const char *v;

    c->status = (int)strtol(c->head + 9, NULL, 10);
    v = head_value(c->head, "Content-Length");
    c->body_left = v ? strtol(v, NULL, 10) : 0;
    v = head_value(c->head, "Transfer-Encoding");
    c->chunked = v && !strncasecmp(v, "chunked", 7);
    c->state = C_BODY;
    if (r->opt.mode == SSE && c->status != 200) {
        r->wrong_status++;
        conn_end(r, c, C_FAILED);
    }
}

/* Bytes read from a connection, head first. */
static void conn_bytes(struct run *r, struct conn *c, const char *p, size_t n)
{
    char *end;
    size_t used, had;

    if (c->state == C_HEAD) {
        had = c->head_len;
        used = n < HEAD_MAX - 1 - had ? n : HEAD_MAX - 1 - had;
        memcpy(c->head + had, p, used);
        c->head_len += used;
        c->head[c->head_len] = '\0';
        end = strstr(c->head, "\r\n\r\n");
        if (!end && c->head_len == HEAD_MAX - 1) {
            conn_end(r, c, C_FAILED);
            return;
        }
        if (!end)
            return;
        *end = '\0';
        used = (size_t)(end + 4 - c->head) - had;
        head_done(r, c);
        p += used;
        n -= used;
    }
    if (c->state == C_BODY && (n || r->opt.mode == LONGPOLL))
        body_bytes(r, c, p, n);
}

static void conn_read(struct run *r, struct conn *c)
{
    char buf[16384];
    ssize_t n;

    while (c->state == C_HEAD || c->state == C_BODY) {
        n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            conn_bytes(r, c, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        r->gone++;
        conn_end(r, c, C_FAILED);
    }
}

static void conn_event(struct run *r, long i, uint32_t events)
{
    struct conn *c = &r->conns[i];
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->state == C_CONNECTING && (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)) {
        fprintf(stderr, "ferry-bench-table-watch: connect %ld: %s\n", i, strerror(err));
        conn_end(r, c, C_FAILED);
        return;
    }
    if ((events & EPOLLOUT) && (c->state == C_CONNECTING || c->state == C_SENDING))
        conn_send(r, i);
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->state == C_HEAD || c->state == C_BODY))
        conn_read(r, c);
}

/* Handles what the sockets have for at most ms, starting connects as room allows. */
static int pump(struct run *r, int ms)
{
    struct epoll_event evs[EVENTS_PER_WAIT];
    int n;

    if (connect_more(r))
        return -1;
    n = epoll_wait(r->ep, evs, EVENTS_PER_WAIT, ms);
    for (int k = 0; k < n; k++)
        conn_event(r, (long)evs[k].data.u64, evs[k].events);
    if (r->rk)
        rd_kafka_poll(r->rk, 0);
    return n < 0 && errno != EINTR ? -1 : 0;
}

/* ---- the two modes ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double pct(const struct run *r, double q)
{
    long i = (long)(q * (double)(r->nlat - 1) + 0.5);

    return r->nlat ? r->lat[i] * 1000 : 0;
}

/* Pumps until every client is parked (ferry counts them as waiters) or the deadline. */
static int park_all(struct run *r, double deadline)
{
    double scraped = 0;
    long parked = 0;

    while (bench_now_s() < deadline) {
        if (pump(r, POLL_MS * 10))
            return -1;
        if (r->next_connect < r->opt.clients || bench_now_s() - scraped < SCRAPE_EVERY_S)
            continue;
        scraped = bench_now_s();
        parked = table_metric(r, "ferry_table_waiters");
        if (parked >= r->opt.clients - r->failed - r->early)
            return 0;
    }
    fprintf(stderr, "ferry-bench-table-watch: %ld of %ld long polls parked before the deadline\n",
            parked, r->opt.clients);
    return -1;
}

static int run_longpoll(struct run *r)
{
    struct mem before, after;
    double t0, deadline = bench_now_s() + (double)r->opt.timeout_s, park_s;

    if (fetch_etags(r))
        return -1;
    read_mem(r, &before);
    t0 = bench_now_s();
    if (park_all(r, deadline))
        return -1;
    park_s = bench_now_s() - t0;
    read_mem(r, &after);
    r->start_produce = bench_now_s();
    for (long i = 0; i < r->opt.clients; i++)
        if (produce(r, i))
            return -1;
    while (r->open > 0 && bench_now_s() < deadline)
        if (pump(r, POLL_MS * 10))
            return -1;
    qsort(r->lat, (size_t)r->nlat, sizeof(*r->lat), cmp_double);
    printf("clients=%ld park_s=%.2f rss_before_mb=%.1f rss_after_mb=%.1f anon_before_mb=%.1f "
           "anon_after_mb=%.1f file_before_mb=%.1f file_after_mb=%.1f woken=%ld wake_p50_ms=%.1f "
           "wake_p99_ms=%.1f wake_all_ms=%.1f early=%ld wrong_status=%ld failed=%ld "
           "unanswered=%ld\n",
           r->opt.clients, park_s, before.rss, after.rss, before.anon, after.anon, before.file,
           after.file, r->nlat, pct(r, 0.5), pct(r, 0.99), pct(r, 1), r->early, r->wrong_status,
           r->failed, r->open);
    return 0;
}

/* Pumps until every subscriber has had its first event (the current value), or the deadline. */
static int subscribe_all(struct run *r, double deadline)
{
    long ready = 0;

    while (bench_now_s() < deadline) {
        if (pump(r, POLL_MS * 10))
            return -1;
        ready = 0;
        for (long i = 0; i < r->opt.clients; i++)
            ready += r->conns[i].events > 0 || r->conns[i].state >= C_DONE;
        if (ready == r->opt.clients)
            return 0;
    }
    fprintf(stderr, "ferry-bench-table-watch: %ld of %ld subscribers had their first event\n",
            ready, r->opt.clients);
    return -1;
}

/* Produces rate updates a second, round robin over the keys, for the given seconds. */
static int produce_paced(struct run *r, double deadline)
{
    long total = r->opt.rate * r->opt.seconds;
    double elapsed;

    r->start_produce = bench_now_s();
    r->produce_ns = now_ns();
    while (r->produced < total && bench_now_s() < deadline) {
        elapsed = bench_now_s() - r->start_produce;
        while (r->produced < total && (double)r->produced < elapsed * (double)r->opt.rate)
            if (produce(r, r->produced % r->opt.keys))
                return -1;
        if (pump(r, POLL_MS))
            return -1;
    }
    return 0;
}

/* Updates each subscriber should see: those of its key. */
static long expected_updates(const struct run *r)
{
    long sum = 0;

    for (long i = 0; i < r->opt.clients; i++) {
        long key = i % r->opt.keys;
        sum += r->produced / r->opt.keys + (key < r->produced % r->opt.keys ? 1 : 0);
    }
    return sum;
}

static long received_updates(const struct run *r)
{
    long sum = 0;

    for (long i = 0; i < r->opt.clients; i++)
        sum += r->conns[i].updates;
    return sum;
}

static int run_sse(struct run *r)
{
    struct mem before, after;
    double deadline = bench_now_s() + (double)r->opt.timeout_s, settle, cpu, produced_at;
    long expected, got, commits;

    read_mem(r, &before);
    if (subscribe_all(r, deadline))
        return -1;
    if (r->failed == r->opt.clients) {
        fprintf(stderr, "ferry-bench-table-watch: no subscription was answered with 200\n");
        return -1;
    }
    read_mem(r, &after);
    /* the table's commits while the updates are applied: a commit sends a key once (the
     * subscriptions conflate per commit), so commits x subscribers is what can arrive */
    commits = table_metric(r, "ferry_table_apply_batch_seconds_count");
    cpu = server_cpu_s(r);
    if (produce_paced(r, deadline))
        return -1;
    produced_at = bench_now_s();
    expected = expected_updates(r);
    /* the last updates' events, for up to 5 s, until a second passes without any: updates
     * conflated in a commit never arrive, so expected is rarely reached */
    settle = bench_now_s() + 5;
    while (received_updates(r) < expected && r->open > 0 && bench_now_s() < settle &&
           bench_now_s() - (r->last_event > produced_at ? r->last_event : produced_at) < 1)
        if (pump(r, POLL_MS * 10))
            return -1;
    got = received_updates(r);
    cpu = server_cpu_s(r) - cpu; /* before the scrape below, which costs the server too */
    commits = table_metric(r, "ferry_table_apply_batch_seconds_count") - commits;
    qsort(r->lat, (size_t)r->nlat, sizeof(*r->lat), cmp_double);
    printf("subscribers=%ld keys=%ld rate=%ld seconds=%ld produced=%ld expected=%ld received=%ld "
           "events_per_s=%.0f delay_p50_ms=%.1f delay_p99_ms=%.1f delay_max_ms=%.1f "
           "rss_before_mb=%.1f rss_after_mb=%.1f anon_before_mb=%.1f anon_after_mb=%.1f "
           "wrong_status=%ld gone=%ld failed=%ld commits=%ld server_cpu_s=%.2f "
           "cpu_us_per_event=%.2f\n",
           r->opt.clients, r->opt.keys, r->opt.rate, r->opt.seconds, r->produced, expected, got,
           r->last_event > r->start_produce ? (double)got / (r->last_event - r->start_produce) : 0,
           pct(r, 0.5), pct(r, 0.99), pct(r, 1), before.rss, after.rss, before.anon, after.anon,
           r->wrong_status, r->gone, r->failed, commits, cpu, got ? cpu * 1e6 / (double)got : 0);
    return 0;
}

/* ---- setup ---- */

static int run_init(struct run *r)
{
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->conns = calloc((size_t)r->opt.clients, sizeof(*r->conns));
    r->lat = malloc(LATENCIES_MAX * sizeof(*r->lat));
    r->scrape = malloc(SCRAPE_MAX);
    r->value = malloc((size_t)r->opt.value_bytes + 1);
    r->curl = curl_easy_init();
    if (r->ep < 0 || !r->conns || !r->lat || !r->scrape || !r->value || !r->curl) {
        fprintf(stderr, "ferry-bench-table-watch: out of memory or descriptors\n");
        return -1;
    }
    for (long i = 0; i < r->opt.clients; i++)
        r->conns[i].fd = -1;
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_scrape);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    return resolve(r) || producer_new(r) ? -1 : 0;
}

static void run_release(struct run *r)
{
    for (long i = 0; r->conns && i < r->opt.clients; i++)
        if (r->conns[i].fd >= 0)
            close(r->conns[i].fd);
    if (r->rk) {
        rd_kafka_flush(r->rk, 5000);
        if (r->rkt)
            rd_kafka_topic_destroy(r->rkt);
        rd_kafka_destroy(r->rk);
    }
    if (r->curl)
        curl_easy_cleanup(r->curl);
    if (r->ep >= 0)
        close(r->ep);
    free(r->conns);
    free(r->lat);
    free(r->scrape);
    free(r->value);
}

int main(int argc, char **argv)
{
    struct run r = {.opt = {LONGPOLL, NULL, NULL, NULL, NULL, 10000, 1, 60, 100, 10, 100, 0, 300},
                    .ep = -1};
    int result = 1;

    if (bench_parse_pairs(argc, argv, "ferry-bench-table-watch", usage, parse_flag, &r.opt))
        return 2;
    if (!r.opt.url || !r.opt.table || !r.opt.bootstrap || !r.opt.topic) {
        usage(stderr);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return 1;
    if (!run_init(&r))
        result = (r.opt.mode == SSE ? run_sse(&r) : run_longpoll(&r)) ? 1 : 0;
    run_release(&r);
    curl_global_cleanup();
    return result;
}
