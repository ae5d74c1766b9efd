/*
 * store_get.c - random gets through a table's store beside bare LMDB, in one run.
 *
 * Fills a fresh store (src/table/store.c) in a temporary directory with N keys of B-byte
 * values in batches (of 10,000 by default, ferry's largest write transaction), in key order or
 * in a shuffled order (--fill-order shuffled: what a table restoring a topic does, since a
 * topic's records do not come in key order; every batch then dirties pages all over the tree),
 * or shuffled and then each batch sorted in stages of S keys (--fill-order staged --stage S,
 * S the whole batch by default: what a table's apply thread writes since src/table/stage.c),
 * its commits synced or (--commits unsynced) not, as a load's are,
 * then times G random gets of existing keys on one thread five ways, R rounds of each, the
 * modes taking turns:
 *   raw-one-txn   mdb_get in one long read transaction: the store's ceiling
 *   raw-renew     mdb_get, a pooled read transaction renewed and reset around each get
 *   raw-begin     mdb_get, a read transaction begun and aborted around each get
 *   store-view    ferry_store_view(): the row in place, no copy
 *   store-get     ferry_store_get(): value and row meta copied into a ferry_buf
 * Every mode reads the same key sequence. LMDB forbids opening one environment twice in a
 * process, so the store is closed while the raw modes run. Prints the fill rate (--gets 0:
 * nothing else), then one line
 * per mode: the best round's gets per wall-clock second, gets per second of the thread's own CPU
 * time over all rounds (steadier on a shared machine: time other processes take is left out),
 * and that CPU rate's ratio to raw-one-txn's.
 */
#include "bench_util.h"

#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "table/store.h"

#define KEY_MAX 32
#define FILL_BATCH 10000 /* apply.c's APPLY_BATCH_MAX */
#define VALUE_MAX 65536
#define MAP_SIZE (4ULL << 30)

enum mode { RAW_ONE_TXN, RAW_RENEW, RAW_BEGIN, STORE_VIEW, STORE_GET, MODES };

static const char *const mode_names[MODES] = {"raw-one-txn", "raw-renew", "raw-begin", "store-view",
                                              "store-get"};

struct options {
    long keys;
    long value_bytes;
    long gets;
    long rounds;
    long fill_batch;
    int fill_shuffled;
    int fill_staged; /* shuffled, then each batch sorted */
    long stage;      /* keys sorted together in a staged batch, 0: the whole batch */
    int unsynced;
};

/* One mode's figures over the rounds. */
struct tally {
    double best_wall_rate;
    double cpu_s;
    long gets;
};

/* A round of one mode in progress. */
struct clock_start {
    double wall;
    double cpu;
};

struct run {
    struct options opt;
    char dir[256];
    uint32_t *order;   /* key index of each get */
    unsigned char tag; /* first byte of every encoded key (from a scan cursor) */
    struct tally tally[MODES];
    uint64_t sink; /* keeps the reads from being optimized away */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ferry-bench-store-get [--keys N] [--value-bytes B] [--gets G] "
            "[--rounds R]\n"
            "                             [--fill-batch N] [--fill-order sorted|shuffled|staged]\n"
            "                             [--stage S] [--commits synced|unsynced]\n"
            "  defaults: 1000000 keys, 100-byte values, 1000000 gets per mode and round, "
            "3 rounds,\n"
            "  filled in key order, 10000 keys per write transaction\n");
}

static int on_flag(void *arg, const char *flag, const char *value)
{
    struct options *o = arg;
    const char *prog = "ferry-bench-store-get";

    if (strcmp(flag, "--keys") == 0)
        return bench_parse_long(prog, flag, value, 1, 100000000, &o->keys);
    if (strcmp(flag, "--value-bytes") == 0)
        return bench_parse_long(prog, flag, value, 1, VALUE_MAX, &o->value_bytes);
    if (strcmp(flag, "--gets") == 0)
        return bench_parse_long(prog, flag, value, 0, 1000000000, &o->gets);
    if (strcmp(flag, "--rounds") == 0)
        return bench_parse_long(prog, flag, value, 1, 1000, &o->rounds);
    if (strcmp(flag, "--fill-batch") == 0)
        return bench_parse_long(prog, flag, value, 1, 100000000, &o->fill_batch);
    if (strcmp(flag, "--stage") == 0)
        return bench_parse_long(prog, flag, value, 1, 100000000, &o->stage);
    if (strcmp(flag, "--fill-order") == 0 &&
        (!strcmp(value, "sorted") || !strcmp(value, "shuffled") || !strcmp(value, "staged"))) {
        o->fill_shuffled = strcmp(value, "sorted") != 0;
        o->fill_staged = !strcmp(value, "staged");
        return 0;
    }
    if (strcmp(flag, "--commits") == 0 &&
        (!strcmp(value, "synced") || !strcmp(value, "unsynced"))) {
        o->unsynced = !strcmp(value, "unsynced");
        return 0;
    }
    fprintf(stderr, "%s: unknown flag '%s'\n", prog, flag);
    return -1;
}

static size_t key_of(long i, char *key)
{
    return (size_t)snprintf(key, KEY_MAX, "key-%08ld", i);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The order keys are filled in: 0..N-1, or a permutation of it (Fisher-Yates). */
static uint32_t *fill_order(const struct run *r)
{
    uint32_t *order = malloc(sizeof(*order) * (size_t)r->opt.keys), t;
    uint64_t x = 0x2545f4914f6cdd1dULL;
    long i, j;

    for (i = 0; order && i < r->opt.keys; i++)
        order[i] = (uint32_t)i;
    for (i = r->opt.keys - 1; order && r->opt.fill_shuffled && i > 0; i--) {
        j = (long)(xorshift(&x) % (uint64_t)(i + 1));
        t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    return order;
}

static int order_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* --fill-order staged: each stage of each batch of the shuffled order in key order (keys
 * sort as their numbers do). */
static void sort_batches(struct run *r, uint32_t *order)
{
    long batch = r->opt.fill_batch, stage = r->opt.stage;

    if (!stage || stage > batch)
        stage = batch;
    for (long i = 0; order && r->opt.fill_staged && i < r->opt.keys; i += batch)
        for (long j = i; j < i + batch && j < r->opt.keys; j += stage) {
            long end = j + stage < i + batch ? j + stage : i + batch;
            if (end > r->opt.keys)
                end = r->opt.keys;
            qsort(order + j, (size_t)(end - j), sizeof(*order), order_cmp);
        }
}

static int fill(struct run *r, ferry_store *s)
{
    char err[512] = "out of memory", key[KEY_MAX],
         *value = calloc(1, (size_t)r->opt.value_bytes + 1);
    struct ferry_store_row row = {0, 0, 0, "application/octet-stream"};
    uint32_t *order = fill_order(r);
    long i, batch = r->opt.fill_batch;
    int result = value && order ? FERRY_STORE_OK : FERRY_STORE_ERROR;

    if (value)
        memset(value, 'v', (size_t)r->opt.value_bytes);
    sort_batches(r, order);
    if (!result && r->opt.unsynced)
        result = ferry_store_set_synced(s, 0, err, sizeof(err));
    for (i = 0; i < r->opt.keys && result == FERRY_STORE_OK; i++) {
        if (i % batch == 0)
            result = ferry_store_batch_begin(s, err, sizeof(err));
        row.offset = i;
        if (!result)
            result = ferry_store_batch_put(s, key, key_of(order[i], key), value,
                                           (size_t)r->opt.value_bytes, &row, err, sizeof(err));
        if (!result && (i % batch == batch - 1 || i == r->opt.keys - 1))
            result = ferry_store_batch_commit(s, err, sizeof(err));
    }
    if (result)
        fprintf(stderr, "ferry-bench-store-get: fill: %s\n", err);
    free(order);
    free(value);
    return result;
}

static int take_tag(void *arg, const struct ferry_store_entry *e)
{
    *(unsigned char *)arg = ((const unsigned char *)e->cursor)[0];
    return 1;
}

static double thread_cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct clock_start start_clock(void)
{
    struct clock_start c = {bench_now_s(), thread_cpu_s()};

    return c;
}

static void tally(struct run *r, enum mode mode, struct clock_start c)
{
    struct tally *t = &r->tally[mode];
    double rate = (double)r->opt.gets / (bench_now_s() - c.wall);

    if (rate > t->best_wall_rate)
        t->best_wall_rate = rate;
    t->cpu_s += thread_cpu_s() - c.cpu;
    t->gets += r->opt.gets;
}

static void report(const struct run *r)
{
    double raw = (double)r->tally[RAW_ONE_TXN].gets / r->tally[RAW_ONE_TXN].cpu_s;
    int m;

    for (m = 0; m < MODES; m++) {
        const struct tally *t = &r->tally[m];
        double cpu_rate = (double)t->gets / t->cpu_s;

        printf("%-12s best_wall_gets_per_s=%.0f cpu_gets_per_s=%.0f ratio=%.2f\n", mode_names[m],
               t->best_wall_rate, cpu_rate, cpu_rate / raw);
    }
}

static int raw_get(struct run *r, MDB_env *env, MDB_dbi dbi, MDB_txn **txn, enum mode mode, long i)
{
    char key[KEY_MAX + 1];
    MDB_val k = {1 + key_of(r->order[i], key + 1), key}, v;
    int rc = 0;

    key[0] = (char)r->tag;
    if (mode == RAW_RENEW)
        rc = mdb_txn_renew(*txn);
    else if (mode == RAW_BEGIN)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
    if (!rc)
        rc = mdb_get(*txn, dbi, &k, &v);
    if (!rc)
        r->sink += ((const unsigned char *)v.mv_data)[v.mv_size - 1];
    if (mode == RAW_RENEW)
        mdb_txn_reset(*txn);
    else if (mode == RAW_BEGIN)
        mdb_txn_abort(*txn);
    return rc;
}

static int raw_mode(struct run *r, MDB_env *env, MDB_dbi dbi, enum mode mode)
{
    MDB_txn *txn = NULL;
    struct clock_start c;
    long i;
    int rc = 0;

    if (mode != RAW_BEGIN)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc && mode == RAW_RENEW)
        mdb_txn_reset(txn);
    c = start_clock();
    for (i = 0; i < r->opt.gets && !rc; i++)
        rc = raw_get(r, env, dbi, &txn, mode, i);
    if (!rc)
        tally(r, mode, c);
    if (mode != RAW_BEGIN)
        mdb_txn_abort(txn);
    return rc;
}

static int raw_modes(struct run *r, const char *path)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env), m;

    if (!rc)
        rc = mdb_env_set_maxdbs(env, 3);
    if (!rc)
        rc = mdb_env_open(env, path, MDB_NOTLS | MDB_RDONLY, 0640);
    if (!rc)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, "rows", 0, &dbi);
    if (!rc) /* an abort would close the handle again */
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    for (m = RAW_ONE_TXN; m <= RAW_BEGIN && !rc; m++)
        rc = raw_mode(r, env, dbi, (enum mode)m);
    if (rc)
        fprintf(stderr, "ferry-bench-store-get: lmdb: %s\n", mdb_strerror(rc));
    mdb_env_close(env);
    return rc;
}

static int sum_value(void *arg, const struct ferry_store_entry *e)
{
    struct run *r = arg;

    r->sink += ((const unsigned char *)e->value)[e->value_len - 1];
    return 0;
}

static int store_modes(struct run *r, ferry_store *s)
{
    struct ferry_store_record rec;
    struct ferry_buf value;
    char err[512], key[KEY_MAX];
    int result = FERRY_STORE_OK;
    struct clock_start c = start_clock();
    long i;

    for (i = 0; i < r->opt.gets && !result; i++)
        result = ferry_store_view(s, key, key_of(r->order[i], key), sum_value, r, err, sizeof(err));
    if (!result)
        tally(r, STORE_VIEW, c);
    ferry_buf_init(&value, VALUE_MAX);
    c = start_clock();
    for (i = 0; i < r->opt.gets && !result; i++) {
        result = ferry_store_get(s, key, key_of(r->order[i], key), &value, &rec, err, sizeof(err));
        r->sink += (unsigned char)value.data[value.len - 1];
    }
    if (!result)
        tally(r, STORE_GET, c);
    else
        fprintf(stderr, "ferry-bench-store-get: %s\n", err);
    ferry_buf_release(&value);
    return result;
}

static void make_order(struct run *r)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    long i;

    for (i = 0; i < r->opt.gets; i++)
        r->order[i] = (uint32_t)(xorshift(&x) % (uint64_t)r->opt.keys);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int bench(struct run *r, const char *path)
{
    char err[512], key[KEY_MAX];
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    struct ferry_store_stats st;
    size_t next_len;
    long round;
    ferry_store *s = ferry_store_open(path, MAP_SIZE, err, sizeof(err));
    double t0 = bench_now_s();
    int result = s ? fill(r, s) : FERRY_STORE_ERROR;

    if (!s)
        fprintf(stderr, "ferry-bench-store-get: %s\n", err);
    if (!result)
        printf("fill         records_per_s=%.0f keys=%ld value_bytes=%ld batch=%ld stage=%ld "
               "order=%s%s\n",
               (double)r->opt.keys / (bench_now_s() - t0), r->opt.keys, r->opt.value_bytes,
               r->opt.fill_batch, r->opt.stage ? r->opt.stage : r->opt.fill_batch,
               r->opt.fill_staged     ? "staged"
               : r->opt.fill_shuffled ? "shuffled"
                                      : "sorted",
               r->opt.unsynced ? " unsynced" : "");
    if (!result)
        result = ferry_store_scan(s, key, key_of(0, key), NULL, 0, 1, take_tag, &r->tag, next,
                                  &next_len, err, sizeof(err));
    if (!result)
        result = ferry_store_stats(s, &st, err, sizeof(err));
    if (!result)
        printf("store        keys=%llu bytes_used=%llu\n", (unsigned long long)st.keys,
               (unsigned long long)st.bytes_used);
    ferry_store_close(s);
    if (!r->opt.gets)
        return result;
    for (round = 0; round < r->opt.rounds && !result; round++) {
        result = raw_modes(r, path);
        s = result ? NULL : ferry_store_open(path, MAP_SIZE, err, sizeof(err));
        if (!result && !s) {
            fprintf(stderr, "ferry-bench-store-get: %s\n", err);
            result = FERRY_STORE_ERROR;
        }
        if (!result)
            result = store_modes(r, s);
        ferry_store_close(s);
    }
    if (!result)
        report(r);
    return result;
}

int main(int argc, char **argv)
{
    struct run r = {.opt = {1000000, 100, 1000000, 3, FILL_BATCH, 0}};
    const char *tmp = getenv("TMPDIR");
    char path[300];
    int result;

    if (bench_parse_pairs(argc, argv, "ferry-bench-store-get", usage, on_flag, &r.opt))
        return 2;
    r.order = malloc(sizeof(*r.order) * (size_t)(r.opt.gets + 1));
    snprintf(r.dir, sizeof(r.dir), "%s/ferry-bench-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!r.order || !mkdtemp(r.dir)) {
        fprintf(stderr, "ferry-bench-store-get: %s\n", strerror(errno));
        return 1;
    }
    make_order(&r);
    snprintf(path, sizeof(path), "%s/table", r.dir);
    result = bench(&r, path);
    nftw(r.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(r.order);
    printf("sink=%llu\n", (unsigned long long)(r.sink & 1));
    return result ? 1 : 0;
}
