/*
 * bench_util.c - clock, flags and resource figures shared by the benchmark programs.
 */
#include "bench_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_parse_long(const char *prog, const char *flag, const char *s, long min, long max,
                     long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: %s: expected an integer in [%ld, %ld], got '%s'\n", prog, flag, min,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int bench_parse_pairs(int argc, char **argv, const char *prog, void (*usage)(FILE *out),
                      int (*on_flag)(void *opt, const char *flag, const char *value), void *opt)
{
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: '%s' needs a value\n", prog, argv[i]);
            return -1;
        }
        if (on_flag(opt, argv[i], argv[i + 1]))
            return -1;
    }
    return 0;
}

void bench_usage(double *cpu_s, double *rss_mb)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    *cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    *rss_mb = (double)ru.ru_maxrss / 1024.0;
}
