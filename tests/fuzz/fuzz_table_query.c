/*
 * fuzz_table_query.c - libFuzzer harness for the tables' multi-key reads (table/query.c): the
 * body walk of POST /tables/{t}/lookup ({"keys": [...]}, raw or key_format=base64), and the
 * arguments of GET /tables/{t}/keys (prefix, limit, the `after` cursor), followed by the scan
 * they ask for on a store that holds a few rows.
 *
 * Input: the first byte holds mode bits (below); then the lookup body, 0xff, the prefix,
 * 0xff, the limit, 0xff, the cursor. A walk never hands on more keys than limits.max_lookup_keys
 * or a key longer than limits.max_key, and the keys of a raw body it accepts are the strings
 * jansson reads there; a scan whose arguments decode gives at most `limit` rows, each valid
 * JSON, and the cursor of any row it gave is accepted by the next scan.
 */
#include <stdio.h>
#include <unistd.h>

#include <jansson.h>

#include "core/json.h"
#include "table/query.h"
#include "table/state.h"
#include "fuzz.h"

#define LOOKUP_B64 1 /* key_format=base64 for the lookup */
#define SCAN_B64 2   /* key_format=base64 for the scan's prefix */
#define HAS_PREFIX 4 /* the scan's parameters that are present */
#define HAS_LIMIT 8
#define HAS_AFTER 16
#define STOP_EARLY 32 /* the key callback stops the walk at its second key */

#define FUZZ_QUERY_MAP_SIZE (16u << 20)
#define FUZZ_QUERY_KEYS 4

static struct ferry_table_config fuzz_cfg = {
    .name = "fuzz",
    .limits = {.max_key_bytes = 64, .max_lookup_keys = FUZZ_QUERY_KEYS, .max_scan_limit = 3},
};
static struct table fuzz_table = {.cfg = &fuzz_cfg};
static ferry_store *fuzz_store;

/* Rows with keys that share prefixes, a binary key and one past the store's inline length. */
static void fuzz_query_fill(void)
{
    static const char *const keys[] = {"a", "ab", "abc", "abd", "b", "\xff\x00z", "{\"k\":1}"};
    struct ferry_store_row row = {0, 1, 1700000000000, "application/json"};
    char err[256], long_key[300];
    int rc;

    memset(long_key, 'a', sizeof(long_key));
    rc = ferry_store_batch_begin(fuzz_store, err, sizeof(err));
    for (size_t i = 0; !rc && i < sizeof(keys) / sizeof(keys[0]); i++) {
        row.partition = (int32_t)i;
        rc = ferry_store_batch_put(fuzz_store, keys[i], strlen(keys[i]) + (i == 5 ? 2 : 0),
                                   i & 1 ? "{\"v\":1}" : "\x01\x02", i & 1 ? 7 : 2, &row, err,
                                   sizeof(err));
    }
    if (rc ||
        ferry_store_batch_put(fuzz_store, long_key, sizeof(long_key), "1", 1, &row, err,
                              sizeof(err)) ||
        ferry_store_batch_commit(fuzz_store, err, sizeof(err))) {
        fprintf(stderr, "fuzz_table_query: %s\n", err);
        abort();
    }
}

/* At exit: closes the store and removes its directory. */
static void fuzz_query_end(void)
{
    ferry_store_close(fuzz_store);
    fuzz_store = NULL;
    fuzz_scratch_remove();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = fuzz_scratch_make("ferry-fuzz-query");
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_store = ferry_store_open(dir, FUZZ_QUERY_MAP_SIZE, err, sizeof(err));
    if (!fuzz_store) {
        fprintf(stderr, "fuzz_table_query: %s\n", err);
        abort();
    }
    fuzz_query_fill();
    atexit(fuzz_query_end);
    return 0;
}

/* ---- the lookup body ---- */

struct walked {
    int stop_early;
    size_t n;
    char keys[FUZZ_QUERY_KEYS][64];
    size_t lens[FUZZ_QUERY_KEYS];
};

static int fuzz_query_key(void *arg, const char *key, size_t len, const char **error)
{
    struct walked *w = arg;

    if (w->n >= FUZZ_QUERY_KEYS || len > (size_t)fuzz_cfg.limits.max_key_bytes)
        abort(); /* more keys than limits.max_lookup_keys, or one longer than limits.max_key */
    if (len)
        memcpy(w->keys[w->n], key, len);
    w->lens[w->n++] = len;
    if (w->stop_early && w->n == 2) {
        *error = "stopped";
        return -1;
    }
    return 0;
}

/* The keys of an accepted raw body are the strings jansson reads, when jansson reads it. */
static void fuzz_query_compare(const char *body, size_t n, const struct walked *w)
{
    json_t *doc = json_loadb(body, n, JSON_ALLOW_NUL, NULL);
    json_t *keys = json_object_get(doc, "keys");

    if (!doc)
        return;
    if (json_object_size(doc) != 1 || !json_is_array(keys) || json_array_size(keys) != w->n)
        abort();
    for (size_t i = 0; i < w->n; i++) {
        json_t *k = json_array_get(keys, i);
        if (!json_is_string(k) || json_string_length(k) != w->lens[i] ||
            memcmp(json_string_value(k), w->keys[i], w->lens[i]) != 0)
            abort();
    }
    json_decref(doc);
}

static void fuzz_query_lookup(unsigned mode, const struct fuzz_part *part)
{
    struct walked w = {.stop_early = (mode & STOP_EARLY) != 0};
    char *body = malloc(part->n ? part->n : 1), *scratch = malloc(part->n ? part->n : 1);
    const char *error = NULL;
    int rc;

    if (!body || !scratch)
        goto out;
    if (part->n)
        memcpy(body, part->p, part->n);
    rc = ferry_table_lookup_walk(&fuzz_table, body, part->n, mode & LOOKUP_B64, scratch,
                                 fuzz_query_key, &w, &error);
    if (rc && !error)
        abort(); /* refused without a reason */
    if (!rc && !(mode & LOOKUP_B64))
        fuzz_query_compare(body, part->n, &w);
out:
    free(body);
    free(scratch);
}

/* ---- the scan ---- */

struct scanned {
    size_t rows;
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len;
};

static int fuzz_query_row(void *arg, const char *row, size_t row_len, const void *cursor,
                          size_t cursor_len)
{
    struct scanned *sc = arg;

    if (!ferry_json_is_valid(row, row_len) || cursor_len > sizeof(sc->cursor))
        abort();
    memcpy(sc->cursor, cursor, cursor_len);
    sc->cursor_len = cursor_len;
    sc->rows++;
    return 0;
}

/* Scans as args say; then again from the last row's cursor, which must be taken. */
static void fuzz_query_scan_rows(struct ferry_scan_args *args)
{
    struct scanned sc = {0};
    char why[512];
    int more = 0, r;

    r = ferry_table_scan_rows(fuzz_store, args, NULL, 0, fuzz_query_row, &sc, &more, why,
                              sizeof(why));
    if (r == FERRY_STORE_BAD_CURSOR)
        return;
    if (r != FERRY_STORE_OK || sc.rows > args->limit)
        abort();
    if (!sc.rows)
        return;
    free(args->after);
    args->after = malloc(sc.cursor_len ? sc.cursor_len : 1);
    if (!args->after)
        abort();
    memcpy(args->after, sc.cursor, sc.cursor_len);
    args->alen = sc.cursor_len;
    sc.rows = 0;
    if (ferry_table_scan_rows(fuzz_store, args, NULL, 0, fuzz_query_row, &sc, &more, why,
                              sizeof(why)) != FERRY_STORE_OK)
        abort(); /* a cursor the store gave out was refused */
}

static void fuzz_query_scan(unsigned mode, const struct fuzz_part *parts, size_t nparts)
{
    struct ferry_scan_args args;
    char *text[3] = {NULL, NULL, NULL}, why[512] = "";
    static const unsigned present[3] = {HAS_PREFIX, HAS_LIMIT, HAS_AFTER};

    for (size_t i = 0; i < 3; i++)
        if ((mode & present[i]) && 1 + i < nparts &&
            !(text[i] = fuzz_strndup(parts[1 + i].p, parts[1 + i].n)))
            goto out;
    if (ferry_table_scan_args_decode(&fuzz_table, text[0], text[0] ? parts[1].n : 0, text[1],
                                     text[2], mode & SCAN_B64, &args, why, sizeof(why)) == 0) {
        if (args.limit < 1 || args.limit > (size_t)fuzz_cfg.limits.max_scan_limit ||
            args.plen > (size_t)fuzz_cfg.limits.max_key_bytes)
            abort();
        fuzz_query_scan_rows(&args);
    } else if (!why[0]) {
        abort();
    }
    ferry_table_scan_args_release(&args);
out:
    for (size_t i = 0; i < 3; i++)
        free(text[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    size_t nparts;

    if (size < 1)
        return 0;
    nparts = fuzz_split(data + 1, size - 1, parts);
    fuzz_query_lookup(data[0], &parts[0]);
    fuzz_query_scan(data[0], parts, nparts);
    return 0;
}
