/*
 * ratelimit.c - what a route's rate limiter (src/route/ratelimit.c) costs per request, beside
 * the loop it sits in.
 *
 * A route with a rate limit reads the clock, asks each limiter whether a request may start
 * (ferry_ratelimit_ready_ns) and charges it (ferry_ratelimit_take) once per request. This
 * times N such acquires on rates so high that nothing ever waits, in rows measured in one run:
 *   baseline         the clock read alone, which the route's loop does anyway
 *   requests         + one limiter with requests_per_second
 *   three units      + one limiter with requests, records and bytes per second
 *   own + shared     + two limiters (a route's own and a shared one)
 *   shared, T thr.   T threads acquiring from one limiter at once (its atomic word contended)
 * Each row prints ns per acquire (the thread's wall time over N; every thread's in the shared
 * row) and the cost above the baseline as a share of a one-record route's CPU per request
 * (--route-cpu-ns, default 24000: about 24 CPU s per million records in bench/README.md).
 */
#include "bench_util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "route/ratelimit.h"

#define LIMITS_MAX 2
#define THREADS_MAX 16

struct options {
    long iterations;
    long threads;
    long route_cpu_ns;
};

struct worker {
    ferry_ratelimit *limits[LIMITS_MAX];
    int nlimits;
    long iterations;
    long waits; /* acquires the limiters refused: 0, or the rates are not high enough */
    double seconds;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The route's part per request: read the clock, ask every limiter, charge every limiter. */
static void *run(void *arg)
{
    struct worker *w = arg;
    double start = bench_now_s();

    for (long i = 0; i < w->iterations; i++) {
        int64_t now = now_ns(), ready = INT64_MIN;
        for (int j = 0; j < w->nlimits; j++) {
            int64_t t = ferry_ratelimit_ready_ns(w->limits[j]);
            ready = t > ready ? t : ready;
        }
        if (ready > now) {
            w->waits++;
            continue;
        }
        for (int j = 0; j < w->nlimits; j++)
            ferry_ratelimit_take(w->limits[j], now, 1, 100);
    }
    w->seconds = bench_now_s() - start;
    return NULL;
}

static void report(const char *name, const struct worker *w, int n, double baseline_ns,
                   const struct options *o)
{
    double seconds = 0;
    long waits = 0;

    for (int i = 0; i < n; i++) {
        seconds += w[i].seconds;
        waits += w[i].waits;
    }
    double ns = seconds * 1e9 / (double)(o->iterations * n);
    printf("%-18s %8.1f ns/acquire", name, ns);
    if (baseline_ns >= 0)
        printf("  %+7.1f ns over baseline = %.3f%% of a one-record route's %ld ns/request",
               ns - baseline_ns, 100.0 * (ns - baseline_ns) / (double)o->route_cpu_ns,
               o->route_cpu_ns);
    printf("%s\n", waits ? "  (some acquires waited: rates too low)" : "");
}

/* Runs a row: n threads, each over the same limiters. Returns ns per acquire. */
static double row(const char *name, ferry_ratelimit **limits, int nlimits, int n,
                  double baseline_ns, const struct options *o)
{
    struct worker w[THREADS_MAX];
    pthread_t threads[THREADS_MAX];

    memset(w, 0, sizeof(w));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < nlimits; j++)
            w[i].limits[j] = limits[j];
        w[i].nlimits = nlimits;
        w[i].iterations = o->iterations;
    }
    if (n == 1) {
        run(&w[0]);
    } else {
        for (int i = 0; i < n; i++)
            pthread_create(&threads[i], NULL, run, &w[i]);
        for (int i = 0; i < n; i++)
            pthread_join(threads[i], NULL);
    }
    report(name, w, n, baseline_ns, o);
    return w[0].seconds * 1e9 / (double)o->iterations;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ferry-bench-ratelimit [--iterations N] [--threads T] "
                 "[--route-cpu-ns NS]\n"
                 "Times a route's rate-limit check and charge per request beside the clock "
                 "read alone.\n");
}

static int on_flag(void *arg, const char *flag, const char *value)
{
    struct options *o = arg;

    if (strcmp(flag, "--iterations") == 0)
        return bench_parse_long("ferry-bench-ratelimit", flag, value, 1000, 1000000000,
                                &o->iterations);
    if (strcmp(flag, "--threads") == 0)
        return bench_parse_long("ferry-bench-ratelimit", flag, value, 1, THREADS_MAX, &o->threads);
    if (strcmp(flag, "--route-cpu-ns") == 0)
        return bench_parse_long("ferry-bench-ratelimit", flag, value, 1, 100000000,
                                &o->route_cpu_ns);
    fprintf(stderr, "ferry-bench-ratelimit: unknown flag %s\n", flag);
    return -1;
}

int main(int argc, char **argv)
{
    struct options o = {20000000, 2, 24000};
    struct ferry_ratelimit_rates requests = {1e9, 0, 0, 100};
    struct ferry_ratelimit_rates three = {1e9, 1e9, 1e12, 100};
    ferry_ratelimit *l[3];
    double baseline;
    char name[32];

    if (bench_parse_pairs(argc, argv, "ferry-bench-ratelimit", usage, on_flag, &o))
        return 2;
    l[0] = ferry_ratelimit_new(&requests);
    l[1] = ferry_ratelimit_new(&three);
    l[2] = ferry_ratelimit_new(&requests);
    if (!l[0] || !l[1] || !l[2]) {
        fprintf(stderr, "ferry-bench-ratelimit: out of memory\n");
        return 1;
    }
    printf("%ld acquires per row\n", o.iterations);
    baseline = row("baseline (clock)", NULL, 0, 1, -1, &o);
    row("requests", &l[0], 1, 1, baseline, &o);
    row("three units", &l[1], 1, 1, baseline, &o);
    row("own + shared", (ferry_ratelimit *[]){l[0], l[2]}, 2, 1, baseline, &o);
    snprintf(name, sizeof(name), "shared, %ld thr.", o.threads);
    row(name, &l[2], 1, (int)o.threads, baseline, &o);
    for (int i = 0; i < 3; i++)
        ferry_ratelimit_destroy(l[i]);
    return 0;
}
