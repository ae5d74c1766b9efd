/*
 * fuzz.h - what the libFuzzer harnesses in tests/fuzz/ share: a NUL-terminated copy of the
 * input, and splitting one input into a few independent parts.
 *
 * libFuzzer hands each harness bytes that are not NUL-terminated; the parsers under test take
 * C strings in places, so harnesses copy first. Splitting on a 0xff byte lets one input carry,
 * e.g., a template and a record value, and the fuzzer learns the separator from the seeds.
 * Harnesses that need files (the table store's) keep them in a scratch directory removed at
 * exit.
 */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The scratch directory of fuzz_scratch_make(), or "" before it. */
static char fuzz_scratch_dir[64];

/* Removes the scratch directory and the files in it (it has no subdirectories). */
static inline void fuzz_scratch_remove(void)
{
    DIR *d;
    struct dirent *e;
    char path[sizeof(fuzz_scratch_dir) + 256 + 2];

    if (!fuzz_scratch_dir[0] || !(d = opendir(fuzz_scratch_dir)))
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", fuzz_scratch_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(fuzz_scratch_dir);
    fuzz_scratch_dir[0] = '\0';
}

/* Makes a new directory /tmp/NAME-XXXXXX for the harness's files and returns its path, or
 * aborts. The harness removes it at exit with fuzz_scratch_remove(), after closing what it
 * opened there (libFuzzer ends with exit(), which runs atexit handlers). */
static inline const char *fuzz_scratch_make(const char *name)
{
    snprintf(fuzz_scratch_dir, sizeof(fuzz_scratch_dir), "/tmp/%s-XXXXXX", name);
    if (!mkdtemp(fuzz_scratch_dir))
        abort();
    return fuzz_scratch_dir;
}

#endif
