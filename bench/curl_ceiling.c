/*
 * curl_ceiling.c - the ceiling for one-request-per-record delivery: a bare libcurl multi client.
 *
 * Sends N POSTs of a B-byte body to one URL over C concurrent HTTP/1.1 keep-alive connections,
 * the way a ferry route's I/O threads drive libcurl (one multi handle each, easy handles reused,
 * curl_multi_socket_action over poll() through the route's own src/route/curl_watch.c), but with
 * no Kafka and no bookkeeping. With T threads (--threads: ferry's
 * I/O threads for the route, so that the ceiling is a fair one) each thread sends N/T of them
 * over C/T connections. --header adds request headers: bench/run.sh sends the ones a route
 * sends (User-Agent, Idempotency-Key), so that both put the same bytes on the wire; libcurl
 * formats header lines a byte at a time, and two lines cost about 3% of the rate (bench/README.md).
 * bench/run.sh divides a route's records/s by this figure, measured in
 * the same run against the same server. Prints one line of key=value pairs so the script can
 * parse it.
 */
#include <curl/curl.h>
#include "bench_util.h"
#include "route/curl_watch.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_CONCURRENCY 4096
#define MAX_THREADS 16
#define MAX_BODY_BYTES (64L * 1024 * 1024)
#define MAX_ERRORS_SHOWN 5
#define MAX_HEADERS 8

struct options {
    const char *url;
    long requests;
    long concurrency;
    long threads;
    long body_bytes;
    long timeout_s;
    const char *headers[MAX_HEADERS]; /* --header lines, sent with every request */
    int nheaders;
};

/* One thread's share of the requests and connections. */
struct run {
    const struct options *opt;
    long requests, concurrency;
    int failed;
    CURLM *multi;
    ferry_curl_watch *watch;
    CURL **easy;
    struct curl_slist *headers;
    char *body;
    long started;
    long finished;
    long errors;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ferry-bench-curl --url URL [--requests N] [--concurrency C]\n"
                 "                        [--threads T] [--body-bytes B] [--timeout S]\n"
                 "                        [--header 'Name: value' ...]\n"
                 "POSTs N bodies of B bytes over C keep-alive HTTP/1.1 connections from T\n"
                 "threads and prints\n"
                 "requests, seconds, requests/s, CPU seconds, peak RSS and errors.\n");
}

static int parse_flag(void *arg, const char *flag, const char *val)
{
    struct options *opt = arg;

    if (!strcmp(flag, "--url")) {
        opt->url = val;
        return 0;
    }
    if (!strcmp(flag, "--header")) {
        if (opt->nheaders == MAX_HEADERS || !strchr(val, ':')) {
            fprintf(stderr, "ferry-bench-curl: --header wants 'Name: value', at most %d\n",
                    MAX_HEADERS);
            return -1;
        }
        opt->headers[opt->nheaders++] = val;
        return 0;
    }
    if (!strcmp(flag, "--requests"))
        return bench_parse_long("ferry-bench-curl", flag, val, 1, LONG_MAX, &opt->requests);
    if (!strcmp(flag, "--concurrency"))
        return bench_parse_long("ferry-bench-curl", flag, val, 1, MAX_CONCURRENCY,
                                &opt->concurrency);
    if (!strcmp(flag, "--threads"))
        return bench_parse_long("ferry-bench-curl", flag, val, 1, MAX_THREADS, &opt->threads);
    if (!strcmp(flag, "--body-bytes"))
        return bench_parse_long("ferry-bench-curl", flag, val, 0, MAX_BODY_BYTES, &opt->body_bytes);
    if (!strcmp(flag, "--timeout"))
        return bench_parse_long("ferry-bench-curl", flag, val, 1, 86400, &opt->timeout_s);
    fprintf(stderr, "ferry-bench-curl: unknown flag '%s'\n", flag);
    return -1;
}

static int parse_args(int argc, char **argv, struct options *opt)
{
    opt->url = NULL;
    opt->requests = 100000;
    opt->concurrency = 64;
    opt->threads = 1;
    opt->body_bytes = 100;
    opt->timeout_s = 600;
    opt->nheaders = 0;
    if (bench_parse_pairs(argc, argv, "ferry-bench-curl", usage, parse_flag, opt))
        return -1;
    if (!opt->url) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

static CURL *easy_new(struct run *r)
{
    CURL *e = curl_easy_init();

    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, r->opt->url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->opt->body_bytes);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)e);
    return e;
}

/* Appends line to the request headers; the list stays whole when it cannot. */
static int add_header(struct run *r, const char *line)
{
    struct curl_slist *grown = curl_slist_append(r->headers, line);

    if (!grown)
        return -1;
    r->headers = grown;
    return 0;
}

/* Builds the multi handle, the shared body and headers, and the thread's easy handles. */
static int run_init(struct run *r)
{
    const struct options *opt = r->opt;
    long i;

    r->multi = curl_multi_init();
    r->watch = r->multi ? ferry_curl_watch_new(r->multi) : NULL;
    r->easy = calloc((size_t)r->concurrency, sizeof(*r->easy));
    r->body = malloc((size_t)opt->body_bytes + 1);
    if (!r->watch || !r->easy || !r->body)
        return -1;
    memset(r->body, 'x', (size_t)opt->body_bytes);
    r->body[opt->body_bytes] = '\0';
    /* No "Expect: 100-continue" round trip for large bodies; a route does not wait for it. */
    if (add_header(r, "Expect:") || add_header(r, "Content-Type: application/octet-stream"))
        return -1;
    for (i = 0; i < opt->nheaders; i++)
        if (add_header(r, opt->headers[i]))
            return -1;
    curl_multi_setopt(r->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, r->concurrency);
    curl_multi_setopt(r->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, r->concurrency);
    curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, r->concurrency);
    for (i = 0; i < r->concurrency; i++) {
        r->easy[i] = easy_new(r);
        if (!r->easy[i])
            return -1;
    }
    return 0;
}

/* Accepts half-built runs. */
static void run_release(struct run *r)
{
    long i;

    for (i = 0; r->easy && i < r->concurrency; i++) {
        if (!r->easy[i])
            continue;
        if (r->multi)
            curl_multi_remove_handle(r->multi, r->easy[i]);
        curl_easy_cleanup(r->easy[i]);
    }
    if (r->multi)
        curl_multi_cleanup(r->multi);
    ferry_curl_watch_destroy(r->watch);
    curl_slist_free_all(r->headers);
    free(r->easy);
    free(r->body);
}

static int start_one(struct run *r, CURL *e)
{
    CURLMcode mc = curl_multi_add_handle(r->multi, e);

    if (mc != CURLM_OK) {
        fprintf(stderr, "ferry-bench-curl: add handle: %s\n", curl_multi_strerror(mc));
        return -1;
    }
    r->started++;
    return 0;
}

static void count_result(struct run *r, CURL *e, CURLcode result)
{
    long code = 0;

    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    if (result == CURLE_OK && code >= 200 && code < 300)
        return;
    if (r->errors < MAX_ERRORS_SHOWN)
        fprintf(stderr, "ferry-bench-curl: request failed: %s, HTTP %ld\n",
                curl_easy_strerror(result), code);
    r->errors++;
}

/* Counts finished transfers and puts each easy handle straight back to work. */
static int reap(struct run *r)
{
    CURLMsg *msg;
    int left;
    CURL *e;

    while ((msg = curl_multi_info_read(r->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        e = msg->easy_handle;
        count_result(r, e, msg->data.result);
        r->finished++;
        curl_multi_remove_handle(r->multi, e);
        if (r->started < r->requests && start_one(r, e))
            return -1;
    }
    return 0;
}

/* One turn: wait for sockets or timers, run the transfers that are ready, put finished handles
 * back to work and start them at once (a handle just added is due at once), before waiting
 * again. */
static int step(struct run *r)
{
    CURLMcode mc;

    if (ferry_curl_watch_wait(r->watch, NULL, 0, 1000)) {
        fprintf(stderr, "ferry-bench-curl: poll: %s\n", strerror(errno));
        return -1;
    }
    mc = ferry_curl_watch_act(r->watch);
    if (mc == CURLM_OK && reap(r))
        return -1;
    if (mc == CURLM_OK)
        mc = ferry_curl_watch_act(r->watch);
    if (mc == CURLM_OK)
        return 0;
    fprintf(stderr, "ferry-bench-curl: multi: %s\n", curl_multi_strerror(mc));
    return -1;
}

/* Drives transfers until all are finished or the deadline passes; returns 0 when all finished. */
static int run_loop(struct run *r, double deadline)
{
    while (r->finished < r->requests) {
        if (bench_now_s() > deadline) {
            fprintf(stderr, "ferry-bench-curl: timed out after %ld of %ld requests\n", r->finished,
                    r->requests);
            return -1;
        }
        if (step(r))
            return -1;
    }
    return 0;
}

/* A thread: sets up its share, sends it within the deadline, and lets it go. */
static void *run_thread(void *arg)
{
    struct run *r = arg;
    double start = bench_now_s();

    r->failed = run_init(r) != 0;
    if (r->failed)
        fprintf(stderr, "ferry-bench-curl: out of memory setting up\n");
    for (long i = 0; !r->failed && i < r->concurrency && r->started < r->requests; i++)
        r->failed = start_one(r, r->easy[i]) != 0;
    if (!r->failed)
        r->failed = run_loop(r, start + (double)r->opt->timeout_s) != 0;
    run_release(r);
    return NULL;
}

static void report(const struct run *runs, long threads, double seconds)
{
    long finished = 0, errors = 0;
    double cpu, rss_mb;

    for (long t = 0; t < threads; t++) {
        finished += runs[t].finished;
        errors += runs[t].errors;
    }
    bench_usage(&cpu, &rss_mb);
    printf("requests=%ld seconds=%.3f rps=%.0f cpu_s=%.2f cpu_us=%.1f rss_mb=%.1f errors=%ld "
           "threads=%ld\n",
           finished, seconds, seconds > 0 ? (double)finished / seconds : 0.0, cpu,
           finished ? cpu * 1e6 / (double)finished : 0.0, rss_mb, errors, threads);
}

int main(int argc, char **argv)
{
    struct run runs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    struct options opt;
    double start;
    long t, started = 0;
    int failed = 0;

    if (parse_args(argc, argv, &opt))
        return 2;
    if (opt.threads > opt.concurrency)
        opt.threads = opt.concurrency;
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return 1;
    memset(runs, 0, sizeof(runs));
    start = bench_now_s();
    for (t = 0; t < opt.threads; t++, started++) {
        runs[t].opt = &opt;
        runs[t].concurrency = opt.concurrency / opt.threads + (t < opt.concurrency % opt.threads);
        runs[t].requests = opt.requests / opt.threads + (t < opt.requests % opt.threads);
        if (pthread_create(&tids[t], NULL, run_thread, &runs[t])) {
            fprintf(stderr, "ferry-bench-curl: cannot start a thread\n");
            failed = 1;
            break;
        }
    }
    for (t = 0; t < started; t++) {
        pthread_join(tids[t], NULL);
        failed |= runs[t].failed || runs[t].errors;
    }
    if (!failed)
        report(runs, opt.threads, bench_now_s() - start);
    curl_global_cleanup();
    return failed;
}
