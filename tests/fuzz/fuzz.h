/*
 * fuzz.h - what the libFuzzer harnesses in tests/fuzz/ share: a NUL-terminated copy of the
 * input, and splitting one input into a few independent parts.
 *
 * libFuzzer hands each harness bytes that are not NUL-terminated; the parsers under test take
 * C strings in places, so harnesses copy first. Splitting on a 0xff byte lets one input carry,
 * e.g., a template and a record value, and the fuzzer learns the separator from the seeds.
 */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Most parts fuzz_split returns. */
#define FUZZ_PARTS_MAX 4

/* Returns a malloc'd copy of p[0..n) with a NUL after it, or NULL when out of memory. */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s) {
        if (n)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

struct fuzz_part {
    const uint8_t *p;
    size_t n;
};

/* Splits p[0..n) at 0xff bytes into at most FUZZ_PARTS_MAX parts (the last keeps the rest).
 * Returns how many parts there are (at least 1). */
static inline size_t fuzz_split(const uint8_t *p, size_t n, struct fuzz_part parts[FUZZ_PARTS_MAX])
{
    size_t count = 0, start = 0;

    for (size_t i = 0; i < n && count + 1 < FUZZ_PARTS_MAX; i++) {
        if (p[i] == 0xff) {
            parts[count].p = p + start;
            parts[count].n = i - start;
            count++;
            start = i + 1;
        }
    }
    parts[count].p = p + start;
    parts[count].n = n - start;
    return count + 1;
}

#endif
