/*
 * bench_util.h - what the benchmark programs share: a monotonic clock, flag parsing and the
 * process's own CPU time and peak RSS for their one-line reports.
 */
#ifndef FERRY_BENCH_UTIL_H
#define FERRY_BENCH_UTIL_H

#include <stdio.h>

/* Seconds of a monotonic clock. */
double bench_now_s(void);

/* Parses a whole decimal in [min, max] given to flag; prints why not and returns -1. */
int bench_parse_long(const char *prog, const char *flag, const char *s, long min, long max,
                     long *out);

/* Walks "--flag value" pairs: --help/-h prints usage to stdout and exits 0; every other pair
 * goes to on_flag(opt, flag, value), which returns 0 or -1. Returns 0, or -1 after a message. */
int bench_parse_pairs(int argc, char **argv, const char *prog, void (*usage)(FILE *out),
                      int (*on_flag)(void *opt, const char *flag, const char *value), void *opt);

/* This process's user+system CPU seconds and peak RSS in MB so far. */
void bench_usage(double *cpu_s, double *rss_mb);

#endif
