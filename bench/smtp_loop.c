/*
 * smtp_loop.c - the ceiling for ferry's e-mail target: a bare libcurl multi client that sends N
 * messages over C connections, reusing each easy handle (and so its connection) for message
 * after message, the way a route drives libcurl, with no Kafka and no templates. With T threads
 * (ferry's I/O threads for the route: a fair ceiling) each runs its own multi handle with C/T
 * connections and N/T messages.
 *
 *   ferry-bench-smtp-loop --url smtp://127.0.0.1:P [--messages N] [--concurrency C]
 *                         [--threads T] [--text-bytes B]
 *
 * Each message has the headers ferry writes (From, To, Subject, Date, Message-ID,
 * MIME-Version, Content-Type) and a text body of B bytes, and goes to its own recipient. Prints
 * "records=N seconds=S rps=R cpu_s=C rss_mb=M errors=E".
 */
#include "bench_util.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define LOOP_CONCURRENCY_MAX 1024
#define LOOP_THREADS_MAX 16
#define LOOP_TEXT_MAX 65536
#define LOOP_HEADERS_MAX 1024 /* the header block of one message */
#define LOOP_ERRORS_SHOWN 5

struct options {
    const char *url;
    long messages;
    long concurrency;
    long threads;
    long text_bytes;
};

/* One connection's easy handle and the message it is sending. */
struct slot {
    CURL *easy;
    struct curl_slist *rcpt;
    char *msg;
    size_t len, sent;
};

/* One thread's share: its multi handle, its connections and its messages. */
struct run {
    const struct options *opt;
    long concurrency, messages, first; /* first: the number of its first message */
    CURLM *multi;
    struct slot *slots;
    long started, finished, errors;
    int failed;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ferry-bench-smtp-loop --url smtp://HOST:PORT [--messages N]\n"
                 "                             [--concurrency C] [--text-bytes B]\n");
}

static int parse_flag(void *arg, const char *flag, const char *val)
{
    struct options *o = arg;

    if (!strcmp(flag, "--url")) {
        o->url = val;
        return 0;
    }
    if (!strcmp(flag, "--messages"))
        return bench_parse_long("smtp-loop", flag, val, 1, LONG_MAX, &o->messages);
    if (!strcmp(flag, "--concurrency"))
        return bench_parse_long("smtp-loop", flag, val, 1, LOOP_CONCURRENCY_MAX, &o->concurrency);
    if (!strcmp(flag, "--threads"))
        return bench_parse_long("smtp-loop", flag, val, 1, LOOP_THREADS_MAX, &o->threads);
    if (!strcmp(flag, "--text-bytes"))
        return bench_parse_long("smtp-loop", flag, val, 0, LOOP_TEXT_MAX, &o->text_bytes);
    fprintf(stderr, "smtp-loop: unknown flag '%s'\n", flag);
    return -1;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *arg)
{
    struct slot *s = arg;
    size_t n = s->len - s->sent;

    if (n > size * nmemb)
        n = size * nmemb;
    memcpy(buf, s->msg + s->sent, n);
    s->sent += n;
    return n;
}

/* Makes message i in the slot and points its easy handle at it. */
static int prepare(struct run *r, struct slot *s, long i)
{
    char rcpt[64];
    int n;

    snprintf(rcpt, sizeof(rcpt), "<user-%ld@example.com>", i);
    curl_slist_free_all(s->rcpt);
    s->rcpt = curl_slist_append(NULL, rcpt);
    n = snprintf(s->msg, LOOP_HEADERS_MAX,
                 "From: Bench <bench@example.com>\r\nTo: %s\r\nSubject: Welcome, user %ld\r\n"
                 "Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n"
                 "Message-ID: <bench.0.%ld@ferry>\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                 rcpt, i, i);
    memset(s->msg + n, 'x', (size_t)r->opt->text_bytes);
    memcpy(s->msg + n + r->opt->text_bytes, "\r\n", 2);
    s->len = (size_t)n + (size_t)r->opt->text_bytes + 2;
    s->sent = 0;
    if (!s->rcpt)
        return -1;
    curl_easy_setopt(s->easy, CURLOPT_MAIL_RCPT, s->rcpt);
    curl_easy_setopt(s->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->len);
    return curl_multi_add_handle(r->multi, s->easy) == CURLM_OK ? 0 : -1;
}

static int slot_init(struct run *r, struct slot *s)
{
    s->easy = curl_easy_init();
    s->msg = malloc(LOOP_HEADERS_MAX + (size_t)r->opt->text_bytes + 2);
    if (!s->easy || !s->msg)
        return -1;
    curl_easy_setopt(s->easy, CURLOPT_URL, r->opt->url);
    curl_easy_setopt(s->easy, CURLOPT_MAIL_FROM, "<bench@example.com>");
    curl_easy_setopt(s->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(s->easy, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(s->easy, CURLOPT_READDATA, s);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (void *)s);
    return 0;
}

static void run_release(struct run *r)
{
    for (long i = 0; r->slots && i < r->concurrency; i++) {
        struct slot *s = &r->slots[i];
        if (s->easy) {
            curl_multi_remove_handle(r->multi, s->easy);
            curl_easy_cleanup(s->easy);
        }
        curl_slist_free_all(s->rcpt);
        free(s->msg);
    }
    free(r->slots);
    if (r->multi)
        curl_multi_cleanup(r->multi);
}

/* Counts the finished messages and gives each slot its next one. */
static int reap(struct run *r)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(r->multi, &left))) {
        struct slot *s = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        if (m->data.result != CURLE_OK && r->errors++ < LOOP_ERRORS_SHOWN)
            fprintf(stderr, "smtp-loop: %s\n", curl_easy_strerror(m->data.result));
        r->finished++;
        curl_multi_remove_handle(r->multi, s->easy);
        if (r->started < r->messages && prepare(r, s, r->first + r->started++))
            return -1;
    }
    return 0;
}

static int run_all(struct run *r)
{
    int running = 1;

    for (long i = 0; i < r->concurrency && r->started < r->messages; i++)
        if (prepare(r, &r->slots[i], r->first + r->started++))
            return -1;
    while (r->finished < r->messages) {
        if (curl_multi_perform(r->multi, &running) != CURLM_OK || reap(r))
            return -1;
        if (r->finished < r->messages && curl_multi_poll(r->multi, NULL, 0, 1000, NULL) != CURLM_OK)
            return -1;
    }
    return 0;
}

/* A thread: sets up its share, sends it, and lets it go. */
static void *run_thread(void *arg)
{
    struct run *r = arg;

    r->multi = curl_multi_init();
    r->slots = calloc((size_t)r->concurrency, sizeof(*r->slots));
    r->failed = !r->multi || !r->slots;
    if (!r->failed) {
        curl_multi_setopt(r->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, r->concurrency);
        curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, r->concurrency);
    }
    for (long i = 0; !r->failed && i < r->concurrency; i++)
        r->failed = slot_init(r, &r->slots[i]) != 0;
    if (!r->failed)
        r->failed = run_all(r) != 0;
    run_release(r);
    return NULL;
}

int main(int argc, char **argv)
{
    struct options o = {NULL, 20000, 16, 1, 200};
    struct run runs[LOOP_THREADS_MAX] = {0};
    pthread_t threads[LOOP_THREADS_MAX];
    long finished = 0, errors = 0;
    double t0, secs, cpu, rss;
    int failed = 0;

    if (bench_parse_pairs(argc, argv, "ferry-bench-smtp-loop", usage, parse_flag, &o) || !o.url) {
        usage(stderr);
        return 2;
    }
    if (o.threads > o.concurrency)
        o.threads = o.concurrency;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    t0 = bench_now_s();
    for (long t = 0; t < o.threads; t++) {
        struct run *r = &runs[t];
        r->opt = &o;
        r->concurrency = o.concurrency / o.threads + (t < o.concurrency % o.threads);
        r->messages = o.messages / o.threads + (t < o.messages % o.threads);
        r->first = t ? runs[t - 1].first + runs[t - 1].messages : 0;
        if (pthread_create(&threads[t], NULL, run_thread, r)) {
            fprintf(stderr, "smtp-loop: cannot start a thread\n");
            return 1;
        }
    }
    for (long t = 0; t < o.threads; t++) {
        pthread_join(threads[t], NULL);
        finished += runs[t].finished;
        errors += runs[t].errors;
        failed |= runs[t].failed;
    }
    secs = bench_now_s() - t0;
    bench_usage(&cpu, &rss);
    printf("records=%ld seconds=%.2f rps=%.0f cpu_s=%.2f rss_mb=%.1f errors=%ld threads=%ld\n",
           finished, secs, (double)finished / secs, cpu, rss, errors, o.threads);
    curl_global_cleanup();
    return failed || errors ? 1 : 0;
}
