/*
 * metric_wait.c - times a ferry run from its own /metrics: from the first record consumed to
 * the last one delivered (a route), or between two counters given by name (a table's restore:
 * ferry_table_records_applied_total from its first commit to N).
 *
 * bench/run.sh used to poll with curl and awk, two processes each every 50 ms, which took a
 * quarter of this 2-core machine away from the run it measured. This is one process with one
 * keep-alive connection, scraping every POLL_MS until records flow, then less often until the
 * end comes near (next_scrape).
 *
 *   ferry-bench-wait --url http://127.0.0.1:PORT/metrics --records N [--timeout S]
 *                    [--started COUNTER] [--done COUNTER] [--pid PID]
 *
 * prints "seconds=S errors=E since_start=T done_epoch=D idle_target=I idle_kafka=K
 * idle_held=H" (E: route requests whose class is not 2xx; T: from this program's start, which
 * the scripts make ferry's, to the Nth; D: the wall clock at the Nth, in seconds since the
 * epoch, to time a restore from a line of ferry's log: a table's first commit already holds
 * many records, applied before S starts; I, K, H: the seconds the route's worker slept within
 * S, by cause, from ferry_route_idle_seconds_total) and exits 0, or exits 1
 * when the deadline passes first or /metrics stops answering. With --pid it also reads that
 * process's RssAnon and RssFile at every scrape and adds their peaks, "anon_peak_mb=A
 * file_peak_mb=F": the kernel keeps a peak of the whole RSS only (VmHWM), and a table's RSS is
 * mostly LMDB's page cache.
 */
#include "bench_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define POLL_MS 20
#define PACE_MAX_MS 500  /* the longest pause between scrapes once records flow */
#define FAILURES_MAX 100 /* consecutive failed scrapes (2 s): ferry is gone or never came up */
#define SCRAPE_MAX (8 * 1024 * 1024)
#define CONSUMED "ferry_route_records_consumed_total"
#define DELIVERED "ferry_route_records_delivered_total"
#define REQUESTS "ferry_route_requests_total"
#define IDLE "ferry_route_idle_seconds_total"

/* The causes of ferry_route_idle_seconds_total, in the order they are printed. */
static const char *const idle_causes[] = {"target", "kafka", "held"};
#define IDLE_CAUSES 3

struct options {
    const char *url;
    long records;
    long timeout_s;
    const char *started; /* the clock starts when this counter leaves 0 */
    const char *done;    /* and stops when this one reaches records */
    long pid;            /* whose memory to follow, or 0 */
};

/* Peaks of a process's resident memory outside and inside the page cache, in kB. */
struct mem_peaks {
    long anon_kb, file_kb;
};

/* The last two scrapes' times and done counts, to pace the next one. */
struct pace {
    double prev_t, prev_done;
    double t, done;
};

struct scrape {
    char *text;
    size_t len;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ferry-bench-wait --url METRICS_URL --records N [--timeout SECONDS]\n"
                 "                        [--started COUNTER] [--done COUNTER]\n"
                 "Waits until a ferry route delivered N records; prints the seconds from the\n"
                 "first record consumed to the Nth delivered, and the non-2xx request count.\n"
                 "--started and --done name other counters (default " CONSUMED " and\n" DELIVERED
                 ").\n");
}

static int parse_flag(void *arg, const char *flag, const char *value)
{
    struct options *o = arg;

    if (!strcmp(flag, "--url")) {
        o->url = value;
        return 0;
    }
    if (!strcmp(flag, "--started")) {
        o->started = value;
        return 0;
    }
    if (!strcmp(flag, "--done")) {
        o->done = value;
        return 0;
    }
    if (!strcmp(flag, "--records"))
        return bench_parse_long("ferry-bench-wait", flag, value, 1, 1000000000L, &o->records);
    if (!strcmp(flag, "--pid"))
        return bench_parse_long("ferry-bench-wait", flag, value, 1, 1L << 30, &o->pid);
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

/* The sum of the samples of name (any labels) whose labels hold label, e.g. cause="held". */
static double labelled_sum(const char *text, const char *name, const char *label)
{
    double sum = 0;
    size_t n = strlen(name);

    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (!strncmp(line, name, n) && line[n] == '{') {
            const char *close = strchr(line, '}'), *hit = strstr(line, label);
            const char *space = close ? strchr(close, ' ') : NULL;
            if (space && hit && hit < close)
                sum += strtod(space + 1, NULL);
        }
    }
    return sum;
}

/* Reads each cause's idle seconds into idle[]. */
static void read_idle(const char *text, double idle[IDLE_CAUSES])
{
    char label[32];

    for (int i = 0; i < IDLE_CAUSES; i++) {
        snprintf(label, sizeof(label), "cause=\"%s\"", idle_causes[i]);
        idle[i] = labelled_sum(text, IDLE, label);
    }
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

/* Raises the peaks to the process's current RssAnon and RssFile. */
static void follow_mem(long pid, struct mem_peaks *m)
{
    char path[64], line[256];
    FILE *f;
    long kb;

    if (!pid)
        return;
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "RssAnon: %ld", &kb) == 1 && kb > m->anon_kb)
            m->anon_kb = kb;
        else if (sscanf(line, "RssFile: %ld", &kb) == 1 && kb > m->file_kb)
            m->file_kb = kb;
    }
    if (f)
        fclose(f);
}

/* Prints the result line. idle0 holds the idle seconds at the first record, text the last
 * scrape. */
static void print_done(const struct options *o, double first, double start, const char *text,
                       const double idle0[IDLE_CAUSES], const struct mem_peaks *m)
{
    double now = bench_now_s(), idle[IDLE_CAUSES];
    struct timespec wall;

    clock_gettime(CLOCK_REALTIME, &wall);
    read_idle(text, idle);
    printf("seconds=%.3f errors=%.0f since_start=%.3f done_epoch=%.3f", now - first, errors(text),
           now - start, (double)wall.tv_sec + (double)wall.tv_nsec / 1e9);
    for (int i = 0; i < IDLE_CAUSES; i++)
        printf(" idle_%s=%.3f", idle_causes[i], idle[i] - idle0[i]);
    if (o->pid)
        printf(" anon_peak_mb=%.1f file_peak_mb=%.1f", (double)m->anon_kb / 1024,
               (double)m->file_kb / 1024);
    printf("\n");
}

/* When to scrape next, from the last two samples of the done counter: at a quarter of the time
 * the rest is expected to take, between POLL_MS and PACE_MAX_MS. Each scrape costs the measured
 * process CPU (a /metrics render, /proc reads) that the ceilings it is compared with never pay,
 * so the long middle of a run is scraped seldom and its end as often as before: the end is still
 * seen within POLL_MS. Until the clock starts, and while nothing moves, it is POLL_MS. */
static double next_scrape(const struct pace *p, long records)
{
    double rate, wait;

    if (p->prev_t <= 0 || p->t <= p->prev_t || p->done <= p->prev_done)
        return p->t + POLL_MS / 1e3;
    rate = (p->done - p->prev_done) / (p->t - p->prev_t);
    wait = ((double)records - p->done) / rate / 4;
    if (wait > PACE_MAX_MS / 1e3)
        wait = PACE_MAX_MS / 1e3;
    if (wait < POLL_MS / 1e3)
        wait = POLL_MS / 1e3;
    return p->t + wait;
}

static int wait_delivered(CURL *e, struct scrape *s, const struct options *o)
{
    struct mem_peaks peaks = {0, 0};
    struct pace pace = {0, 0, 0, 0};
    const struct timespec pause = {0, POLL_MS * 1000000L};
    double start = bench_now_s(), deadline = start + (double)o->timeout_s, first = 0, due = 0;
    double idle0[IDLE_CAUSES] = {0, 0, 0};
    int failures = 0;

    while (bench_now_s() < deadline) {
        follow_mem(o->pid, &peaks); /* every tick, so that paced scrapes miss no peak */
        if (bench_now_s() < due) {
            nanosleep(&pause, NULL);
            continue;
        }
        if (scrape(e, s)) {
            if (++failures == FAILURES_MAX) {
                fprintf(stderr, "ferry-bench-wait: %s does not answer\n", o->url);
                return -1;
            }
            nanosleep(&pause, NULL);
            continue;
        }
        failures = 0;
        if (!first && sample(s->text, o->started) > 0) {
            first = bench_now_s();
            read_idle(s->text, idle0);
        }
        pace.prev_t = pace.t;
        pace.prev_done = pace.done;
        pace.t = bench_now_s();
        pace.done = sample(s->text, o->done);
        if (first && pace.done >= (double)o->records) {
            print_done(o, first, start, s->text, idle0, &peaks);
            return 0;
        }
        due = first ? next_scrape(&pace, o->records) : 0;
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "ferry-bench-wait: %s reached %.0f of %ld before the deadline\n", o->done,
            s->text ? sample(s->text, o->done) : 0, o->records);
    return -1;
}

int main(int argc, char **argv)
{
    struct options o = {NULL, 0, 600, CONSUMED, DELIVERED, 0};
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
