/*
 * metric_wait.c - times a ferry route run from its own /metrics: from the first record
 * consumed to the last one delivered.
 *
 * bench/run.sh used to poll with curl and awk, two processes each every 50 ms, which took a
 * quarter of this 2-core machine away from the run it measured. This is one process with one
 * keep-alive connection, scraping every POLL_MS.
 *
 *   ferry-bench-wait --url http://127.0.0.1:PORT/metrics --records N [--timeout S]
 *
 * prints "seconds=S errors=E" (E: requests whose class is not 2xx) and exits 0, or exits 1
 * when the deadline passes first or /metrics stops answering.
 */
#include "bench_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define POLL_MS 20
#define FAILURES_MAX 100 /* consecutive failed scrapes (2 s): ferry is gone or never came up */
#define SCRAPE_MAX (8 * 1024 * 1024)
#define CONSUMED "ferry_route_records_consumed_total"
#define DELIVERED "ferry_route_records_delivered_total"
#define REQUESTS "ferry_route_requests_total"

struct options {
    const char *url;
    long records;
    long timeout_s;
};

struct scrape {
    char *text;
    size_t len;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ferry-bench-wait --url METRICS_URL --records N [--timeout SECONDS]\n"
                 "Waits until a ferry route delivered N records; prints the seconds from the\n"
                 "first record consumed to the Nth delivered, and the non-2xx request count.\n");
}

static int parse_flag(void *arg, const char *flag, const char *value)
{
    struct options *o = arg;

    if (!strcmp(flag, "--url")) {
        o->url = value;
        return 0;
    }
    if (!strcmp(flag, "--records"))
        return bench_parse_long("ferry-bench-wait", flag, value, 1, 1000000000L, &o->records);
    if (!strcmp(flag, "--timeout"))
        return bench_parse_long("ferry-bench-wait", flag, value, 1, 86400, &o->timeout_s);
    fprintf(stderr, "ferry-bench-wait: unknown flag '%s'\n", flag);
    return -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct scrape *s = arg;
    size_t len = size * n;
    char *grown;

    if (s->len + len + 1 > SCRAPE_MAX)
        return 0; /* fails the transfer */
    grown = realloc(s->text, s->len + len + 1);
    if (!grown)
        return 0;
    s->text = grown;
    memcpy(s->text + s->len, data, len);
    s->len += len;
    s->text[s->len] = '\0';
    return len;
}

/* The value of the first sample line that starts with name, or 0. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);

    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (!strncmp(line, name, n) && (line[n] == '{' || line[n] == ' ')) {
            const char *space = strchr(line, ' ');
            return space ? strtod(space + 1, NULL) : 0;
        }
    }
    return 0;
}

/* The sum of the request counters whose class is not 2xx. */
static double errors(const char *text)
{
    double sum = 0;
    size_t n = strlen(REQUESTS);

    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (!strncmp(line, REQUESTS, n) && line[n] == '{' && !strstr(line, "class=\"2xx\"")) {
            const char *space = strchr(line, ' ');
            sum += space ? strtod(space + 1, NULL) : 0;
        }
    }
    return sum;
}

static int scrape(CURL *e, struct scrape *s)
{
    s->len = 0;
    if (s->text)
        s->text[0] = '\0';
    return curl_easy_perform(e) == CURLE_OK && s->text ? 0 : -1;
}

static int wait_delivered(CURL *e, struct scrape *s, const struct options *o)
{
    const struct timespec pause = {0, POLL_MS * 1000000L};
    double deadline = bench_now_s() + (double)o->timeout_s, first = 0;
    int failures = 0;

    while (bench_now_s() < deadline) {
        if (scrape(e, s)) {
            if (++failures == FAILURES_MAX) {
                fprintf(stderr, "ferry-bench-wait: %s does not answer\n", o->url);
                return -1;
            }
            nanosleep(&pause, NULL);
            continue;
        }
        failures = 0;
        if (!first && sample(s->text, CONSUMED) > 0)
            first = bench_now_s();
        if (first && sample(s->text, DELIVERED) >= (double)o->records) {
            printf("seconds=%.3f errors=%.0f\n", bench_now_s() - first, errors(s->text));
            return 0;
        }
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "ferry-bench-wait: %.0f of %ld records delivered before the deadline\n",
            s->text ? sample(s->text, DELIVERED) : 0, o->records);
    return -1;
}

int main(int argc, char **argv)
{
    struct options o = {NULL, 0, 600};
    struct scrape s = {NULL, 0};
    CURL *e = NULL;
    int result = 1;

    if (bench_parse_pairs(argc, argv, "ferry-bench-wait", usage, parse_flag, &o))
        return 2;
    if (!o.url || !o.records) {
        usage(stderr);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return 1;
    e = curl_easy_init();
    if (!e)
        goto out;
    curl_easy_setopt(e, CURLOPT_URL, o.url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    result = wait_delivered(e, &s, &o) ? 1 : 0;
out:
    curl_easy_cleanup(e);
    free(s.text);
    curl_global_cleanup();
    return result;
}
