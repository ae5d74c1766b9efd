/*
 * fuzz_table_store.c - libFuzzer harness for a table's store (table/store.c): the long-key
 * scheme (keys past FERRY_STORE_KEY_INLINE bytes kept as a prefix and a hash), gets, and prefix
 * scans continued from a cursor the client sends (GET /tables/{t}/keys?prefix=P&after=C).
 *
 * Input: two keys, 0xff-separated, then a prefix and a cursor. Both keys are put, read back
 * (each must give its own value), scanned from the cursor (a cursor that is not one must be
 * refused, not followed), and deleted again. One LMDB store in a temporary directory serves the
 * whole run, unsynced, as a table's store is while it loads.
 */
#include <stdio.h>
#include <unistd.h>

#include "core/buf.h"
#include "table/store.h"
#include "fuzz.h"

/* The store's map; the harness deletes what it writes, so it stays small. */
#define FUZZ_STORE_MAP_SIZE (64u << 20)

static ferry_store *fuzz_store;

/* At exit: closes the store and removes its directory. */
static void fuzz_store_end(void)
{
    ferry_store_close(fuzz_store);
    fuzz_store = NULL;
    fuzz_scratch_remove();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = fuzz_scratch_make("ferry-fuzz-store");
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_store = ferry_store_open(dir, FUZZ_STORE_MAP_SIZE, err, sizeof(err));
    if (!fuzz_store || ferry_store_set_synced(fuzz_store, 0, err, sizeof(err)) != FERRY_STORE_OK) {
        fprintf(stderr, "fuzz_table_store: %s\n", err);
        abort();
    }
    atexit(fuzz_store_end);
    return 0;
}

static int fuzz_store_row(void *arg, const struct ferry_store_entry *e)
{
    const struct fuzz_part *prefix = arg;

    if (e->key_len < prefix->n || (prefix->n && memcmp(e->key, prefix->p, prefix->n) != 0))
        abort(); /* a scan gave a row outside its prefix */
    return 0;
}

static void fuzz_store_get(const struct fuzz_part *key, const char *want)
{
    struct ferry_buf value;
    char err[256];

    ferry_buf_init(&value, 64);
    if (ferry_store_get(fuzz_store, key->p, key->n, &value, NULL, err, sizeof(err)) !=
            FERRY_STORE_OK ||
        value.len != strlen(want) || memcmp(value.data, want, value.len) != 0)
        abort(); /* a key read another key's row, or nothing */
    ferry_buf_release(&value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX] = {{NULL, 0}};
    struct ferry_store_row row = {0, 1, 1700000000000, "text/plain"};
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    size_t nparts = fuzz_split(data, size, parts), next_len = 0;
    int same;
    char err[256];

    if (nparts < 2)
        parts[1] = parts[0];
    same = parts[0].n == parts[1].n && (!parts[0].n || !memcmp(parts[0].p, parts[1].p, parts[0].n));
    if (ferry_store_batch_begin(fuzz_store, err, sizeof(err)) != FERRY_STORE_OK ||
        ferry_store_batch_put(fuzz_store, parts[0].p, parts[0].n, "zero", 4, &row, err,
                              sizeof(err)) != FERRY_STORE_OK ||
        ferry_store_batch_put(fuzz_store, parts[1].p, parts[1].n, "one", 3, &row, err,
                              sizeof(err)) != FERRY_STORE_OK ||
        ferry_store_batch_commit(fuzz_store, err, sizeof(err)) != FERRY_STORE_OK)
        abort();
    fuzz_store_get(&parts[0], same ? "one" : "zero");
    fuzz_store_get(&parts[1], "one");
    (void)ferry_store_scan(fuzz_store, parts[2].p, parts[2].n, parts[3].p, parts[3].n, 4,
                           fuzz_store_row, &parts[2], next, &next_len, err, sizeof(err));
    if (next_len > sizeof(next))
        abort();
    if (ferry_store_batch_begin(fuzz_store, err, sizeof(err)) != FERRY_STORE_OK ||
        ferry_store_batch_delete(fuzz_store, parts[0].p, parts[0].n, err, sizeof(err)) !=
            FERRY_STORE_OK ||
        ferry_store_batch_delete(fuzz_store, parts[1].p, parts[1].n, err, sizeof(err)) !=
            FERRY_STORE_OK ||
        ferry_store_batch_commit(fuzz_store, err, sizeof(err)) != FERRY_STORE_OK)
        abort();
    return 0;
}
