/*
 * fuzz_json.c - libFuzzer harness for the JSON scanner (core/json_scan.c, core/json.c): the
 * strict check, the normal form, compacting, and finding a path in accepted text.
 *
 * Input: JSON text, optionally followed by 0xff and a path. Checks that what the check accepts
 * the other readers never read past, and that the normal form of accepted text is accepted too.
 */
#include <stdio.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/json_scan.h"
#include "fuzz.h"

/* The normal form of a value can be longer than its text (escapes); cap its growth. */
#define FUZZ_JSON_OUT_MAX (1u << 20)

static void fuzz_json_find(const char *text, size_t n, const uint8_t *path, size_t path_len)
{
    struct ferry_json_found found;
    char *p = fuzz_strndup(path, path_len);

    if (!p)
        return;
    if (!ferry_json_path_error(p) && ferry_json_find(text, n, p, &found) == 1) {
        if (found.span < text || found.span + found.len > text + n)
            abort();
    }
    free(p);
}

static void fuzz_json_walk(const char *text, size_t n)
{
    struct ferry_json_cursor c;
    const char *span;
    size_t len;
    char *compact = malloc(n + 1);

    ferry_json_cursor_init(&c, text, n);
    if (ferry_json_read_value(&c, &span, &len) == 0 && compact) {
        size_t m = ferry_json_compact(span, len, compact);
        if (m > len || !ferry_json_is_valid(compact, m))
            abort();
    }
    free(compact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    size_t nparts = fuzz_split(data, size, parts);
    struct ferry_json_error err;
    struct ferry_buf out;
    /* A heap copy of exactly the text's length, so ASan sees any read past its end. */
    char *text = malloc(parts[0].n ? parts[0].n : 1);
    size_t n = parts[0].n;

    if (!text)
        return 0;
    if (n)
        memcpy(text, parts[0].p, n);
    fuzz_json_walk(text, n);
    ferry_buf_init(&out, FUZZ_JSON_OUT_MAX);
    if (ferry_json_add_string(&out, text, n) == 0 && !ferry_json_is_valid(out.data, out.len))
        abort();
    ferry_buf_release(&out);
    if (ferry_json_check(text, n, &err) == 0) {
        ferry_buf_init(&out, FUZZ_JSON_OUT_MAX);
        if (ferry_json_add_normalized(&out, text, n, &err) == FERRY_JSON_WRITE_OK &&
            !ferry_json_is_valid(out.data, out.len))
            abort();
        ferry_buf_release(&out);
        if (nparts > 1)
            fuzz_json_find(text, n, parts[1].p, parts[1].n);
    }
    free(text);
    return 0;
}
