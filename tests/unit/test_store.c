/*
 * test_store.c - unit tests of a table's LMDB store (src/table/store.c).
 *
 * Each case gets a store in a fresh temporary directory. The cases cover keys around the
 * inline limit and far beyond it (binary, with NUL bytes, differing only after the inline
 * part), a hash slot holding another key, offsets committed and aborted with their rows,
 * tombstones, a map that fills up, scans with prefixes, limits and cursors across writes, the
 * meta, reopening, the files' removal, readers on other threads during writes, and kill -9 of
 * a writing child process, with commits synced or not: the reopened store must equal a replay
 * of the records below its stored offsets. The unsynced marker: kept while commits skip their
 * sync, and a marker of another boot empties the store. Disk space, on a volume the tests act
 * out: a refused reservation by posix_fallocate's result, a volume that runs out in a batch,
 * reservations that cover their writes, and batches that commit what they hold whenever a
 * reservation is refused, with every commit's pages within the blocks reserved.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>

#include "table/store.h"

#define ERR_MAX 512
#define MAP_SIZE (64u << 20)
#define VALUE_CAP (1u << 20)
#define LONG_KEY_MAX 65536

struct fixture {
    char dir[256];  /* the temporary directory */
    char path[320]; /* the store's, two levels below it */
    ferry_store *s;
    struct ferry_buf value;
    char err[ERR_MAX];
};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/ferry-test-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/tables/t1", f->dir);
    ferry_buf_init(&f->value, VALUE_CAP);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    ferry_store_close(f->s);
    ferry_buf_release(&f->value);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static ferry_store *open_at(struct fixture *f, const char *path, size_t max_size)
{
    ferry_store *s = ferry_store_open(path, max_size, f->err, sizeof(f->err));

    if (!s)
        fail_msg("open: %s", f->err);
    return s;
}

static void reopen(struct fixture *f, size_t max_size)
{
    ferry_store_close(f->s);
    f->s = open_at(f, f->path, max_size);
}

static int has_marker(struct fixture *f)
{
    char file[400];

    snprintf(file, sizeof(file), "%s/unsynced", f->path);
    return access(file, F_OK) == 0;
}

static void write_marker(struct fixture *f, const char *boot_id)
{
    char file[400];
    FILE *fp;

    snprintf(file, sizeof(file), "%s/unsynced", f->path);
    fp = fopen(file, "w");
    assert_non_null(fp);
    fputs(boot_id, fp);
    fclose(fp);
}

static void check(struct fixture *f, int result, int want, const char *what)
{
    if (result != want)
        fail_msg("%s: got %d, want %d (%s)", what, result, want, f->err);
}

static void begin(struct fixture *f)
{
    check(f, ferry_store_batch_begin(f->s, f->err, sizeof(f->err)), FERRY_STORE_OK, "begin");
}

static void commit(struct fixture *f)
{
    check(f, ferry_store_batch_commit(f->s, f->err, sizeof(f->err)), FERRY_STORE_OK, "commit");
}

static void put(struct fixture *f, const void *key, size_t key_len, const char *value,
                int32_t partition, int64_t offset, const char *ctype)
{
    struct ferry_store_row row = {partition, offset, 1700000000000 + offset, ctype};

    check(f,
          ferry_store_batch_put(f->s, key, key_len, value, strlen(value), &row, f->err,
                                sizeof(f->err)),
          FERRY_STORE_OK, "put");
}

static void del(struct fixture *f, const void *key, size_t key_len)
{
    check(f, ferry_store_batch_delete(f->s, key, key_len, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "delete");
}

static void set_offset(struct fixture *f, int32_t partition, int64_t next)
{
    check(f, ferry_store_batch_set_offset(f->s, partition, next, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "set offset");
}

static int get(struct fixture *f, const void *key, size_t key_len,
               struct ferry_store_record *record)
{
    return ferry_store_get(f->s, key, key_len, &f->value, record, f->err, sizeof(f->err));
}

/* Asserts that key holds value, written at offset. */
static void expect(struct fixture *f, const void *key, size_t key_len, const char *value,
                   int64_t offset)
{
    struct ferry_store_record r;

    check(f, get(f, key, key_len, &r), FERRY_STORE_OK, "get");
    assert_int_equal(f->value.len, strlen(value));
    assert_memory_equal(f->value.data, value, f->value.len);
    assert_int_equal(r.offset, offset);
    assert_int_equal(r.timestamp_ms, 1700000000000 + offset);
}

static void expect_missing(struct fixture *f, const void *key, size_t key_len)
{
    check(f, get(f, key, key_len, NULL), FERRY_STORE_NOT_FOUND, "get of a missing key");
}

static void expect_offsets(struct fixture *f, const int64_t *want, int32_t n)
{
    int64_t got[16];
    int32_t i;

    check(f, ferry_store_offsets(f->s, got, n, f->err, sizeof(f->err)), FERRY_STORE_OK, "offsets");
    for (i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("partition %d: offset %" PRId64 ", want %" PRId64, (int)i, got[i], want[i]);
}

/* Bytes of a test key: a pattern with NUL bytes in it, changed by seed. */
static void fill_key(unsigned char *k, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        k[i] = (unsigned char)((i * 7 + seed) % 251);
}

static void test_open_creates_directories(void **state)
{
    struct fixture *f = *state;
    struct ferry_store_meta meta;
    struct ferry_store_stats st;
    struct stat sb;
    mode_t mask = umask(0);

    umask(mask);
    f->s = open_at(f, f->path, MAP_SIZE);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0750 & ~mask);
    assert_string_equal(ferry_store_path(f->s), f->path);
    check(f, ferry_store_get_meta(f->s, &meta, f->err, sizeof(f->err)), FERRY_STORE_NOT_FOUND,
          "meta of a new store");
    assert_int_equal(meta.format, FERRY_STORE_FORMAT);
    check(f, ferry_store_stats(f->s, &st, f->err, sizeof(f->err)), FERRY_STORE_OK, "stats");
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.max_size, MAP_SIZE);
    assert_true(st.bytes_used > 0 && st.bytes_used < st.max_size);
}

static void test_open_fails_with_path(void **state)
{
    struct fixture *f = *state;
    char file[320];
    FILE *fp;

    snprintf(file, sizeof(file), "%s/plain", f->dir);
    fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(f->path, sizeof(f->path), "%s/plain/t1", f->dir);
    assert_null(ferry_store_open(f->path, MAP_SIZE, f->err, sizeof(f->err)));
    assert_non_null(strstr(f->err, f->path));
    assert_null(ferry_store_open(file, MAP_SIZE, f->err, sizeof(f->err)));
    assert_non_null(strstr(f->err, file));
}

/* Keys around and beyond the inline limit, all stored in one batch. */
struct key_case {
    size_t len;
    unsigned seed;
    long flip; /* index of a byte to change, or -1 */
};

static const struct key_case key_cases[] = {
    {0, 0, -1},
    {1, 0, -1}, /* "\0" */
    {1, 1, -1},
    {477, 1, -1},
    {FERRY_STORE_KEY_INLINE, 1, -1}, /* a prefix of every long key below */
    {FERRY_STORE_KEY_INLINE + 1, 1, -1},
    {FERRY_STORE_KEY_INLINE + 1, 1, FERRY_STORE_KEY_INLINE}, /* differs in its last byte */
    {480, 1, -1},
    {481, 1, -1},
    {510, 1, -1},
    {511, 1, -1},
    {512, 1, -1},
    {4096, 2, -1},
    {LONG_KEY_MAX, 1, -1},
    {LONG_KEY_MAX, 1, LONG_KEY_MAX - 1},
    {LONG_KEY_MAX - 1, 1, -1},
};

#define KEY_CASES (sizeof(key_cases) / sizeof(key_cases[0]))

static size_t case_key(size_t i, unsigned char *k)
{
    const struct key_case *c = &key_cases[i];

    fill_key(k, c->len, c->seed);
    if (c->flip >= 0)
        k[c->flip] ^= 0x55;
    return c->len;
}

struct collect {
    unsigned char prev[LONG_KEY_MAX];
    size_t prev_len;
    size_t count;
    int64_t offsets[64];
};

/* Whether two keys may come in this order: byte order, except between long keys that share
 * their inline part. */
static int in_order(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;

    if (alen > FERRY_STORE_KEY_INLINE && blen > FERRY_STORE_KEY_INLINE &&
        memcmp(a, b, FERRY_STORE_KEY_INLINE) == 0)
        return 1;
    return c < 0 || (c == 0 && alen < blen);
}

static int collect_entry(void *arg, const struct ferry_store_entry *e)
{
    struct collect *c = arg;

    if (c->count && !in_order(c->prev, c->prev_len, e->key, e->key_len))
        fail_msg("entry %zu out of order", c->count);
    assert_true(e->key_len <= sizeof(c->prev));
    memcpy(c->prev, e->key, e->key_len);
    c->prev_len = e->key_len;
    if (c->count < 64)
        c->offsets[c->count] = e->row.offset;
    c->count++;
    return 0;
}

static void test_long_and_binary_keys(void **state)
{
    struct fixture *f = *state;
    unsigned char *k = malloc(LONG_KEY_MAX);
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    struct collect *c = calloc(1, sizeof(*c));
    char value[32];
    size_t i, len, next_len;

    assert_non_null(k);
    assert_non_null(c);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    for (i = 0; i < KEY_CASES; i++) {
        len = case_key(i, k);
        snprintf(value, sizeof(value), "value %zu", i);
        put(f, k, len, value, 0, (int64_t)i, NULL);
    }
    commit(f);
    for (i = 0; i < KEY_CASES; i++) {
        len = case_key(i, k);
        snprintf(value, sizeof(value), "value %zu", i);
        expect(f, k, len, value, (int64_t)i);
    }
    check(f,
          ferry_store_scan(f->s, NULL, 0, NULL, 0, 1000, collect_entry, c, next, &next_len, f->err,
                           sizeof(f->err)),
          FERRY_STORE_OK, "scan");
    assert_int_equal(c->count, KEY_CASES);
    assert_int_equal(next_len, 0);
    free(c);
    free(k);
}

static void test_lookalike_keys_are_missing(void **state)
{
    struct fixture *f = *state;
    unsigned char *k = malloc(LONG_KEY_MAX);

    assert_non_null(k);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    fill_key(k, LONG_KEY_MAX, 1);
    put(f, k, LONG_KEY_MAX, "long", 0, 1, NULL);
    put(f, k, FERRY_STORE_KEY_INLINE, "inline", 0, 2, NULL);
    commit(f);
    expect(f, k, LONG_KEY_MAX, "long", 1);
    expect(f, k, FERRY_STORE_KEY_INLINE, "inline", 2);
    expect_missing(f, k, LONG_KEY_MAX - 1);
    expect_missing(f, k, FERRY_STORE_KEY_INLINE + 1);
    expect_missing(f, k, FERRY_STORE_KEY_INLINE - 1);
    k[30000] ^= 1;
    expect_missing(f, k, LONG_KEY_MAX);
    free(k);
}

static int count_entry(void *arg, const struct ferry_store_entry *e)
{
    (void)e;
    (*(size_t *)arg)++;
    return 0;
}

static size_t scan_count(struct fixture *f, const void *prefix, size_t prefix_len)
{
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    size_t n = 0, next_len;

    check(f,
          ferry_store_scan(f->s, prefix, prefix_len, NULL, 0, 1000, count_entry, &n, next,
                           &next_len, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "scan");
    return n;
}

struct cursor_copy {
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t len;
};

static int copy_cursor(void *arg, const struct ferry_store_entry *e)
{
    struct cursor_copy *c = arg;

    memcpy(c->cursor, e->cursor, e->cursor_len);
    c->len = e->cursor_len;
    return 1;
}

static struct cursor_copy cursor_of(struct fixture *f, const void *key, size_t key_len)
{
    struct cursor_copy c = {{0}, 0};

    check(f, ferry_store_view(f->s, key, key_len, copy_cursor, &c, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "view");
    return c;
}

/* Writes the row found under key a into the LMDB slot of key b, as a hash collision would. */
static void move_row(struct fixture *f, const struct cursor_copy *a, const struct cursor_copy *b)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val ka = {a->len, (void *)a->cursor}, kb = {b->len, (void *)b->cursor}, v;

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 3), 0);
    assert_int_equal(mdb_env_open(env, f->path, 0, 0640), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "rows", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &ka, &v), 0);
    assert_int_equal(mdb_put(txn, dbi, &kb, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_hash_slot_of_another_key(void **state)
{
    struct fixture *f = *state;
    unsigned char a[1000], b[1000];
    struct ferry_store_stats st;
    struct cursor_copy ca, cb;

    fill_key(a, sizeof(a), 3);
    fill_key(b, sizeof(b), 4);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, a, sizeof(a), "value of a", 0, 1, NULL);
    put(f, b, sizeof(b), "value of b", 0, 2, NULL);
    commit(f);
    ca = cursor_of(f, a, sizeof(a));
    cb = cursor_of(f, b, sizeof(b));
    assert_int_equal(ca.len, FERRY_STORE_CURSOR_MAX);
    ferry_store_close(f->s);
    f->s = NULL;
    move_row(f, &ca, &cb);
    f->s = open_at(f, f->path, MAP_SIZE);
    expect(f, a, sizeof(a), "value of a", 1);
    expect_missing(f, b, sizeof(b));
    /* Deleting b leaves a's row in b's slot alone. */
    begin(f);
    del(f, b, sizeof(b));
    commit(f);
    check(f, ferry_store_stats(f->s, &st, f->err, sizeof(f->err)), FERRY_STORE_OK, "stats");
    assert_int_equal(st.keys, 2);
    expect_missing(f, b, sizeof(b));
}

static void test_content_types(void **state)
{
    struct fixture *f = *state;
    char longest[FERRY_STORE_CONTENT_TYPE_MAX + 2];
    struct ferry_store_record r;
    struct ferry_store_row row = {7, 42, 99, longest};

    memset(longest, 't', sizeof(longest) - 1);
    longest[FERRY_STORE_CONTENT_TYPE_MAX] = '\0';
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, "json", 4, "{}", 0, 1, "application/json");
    put(f, "none", 4, "x", 0, 2, NULL);
    put(f, "empty", 5, "x", 0, 3, "");
    check(f, ferry_store_batch_put(f->s, "max", 3, "", 0, &row, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "put with the longest content type");
    commit(f);
    check(f, get(f, "json", 4, &r), FERRY_STORE_OK, "get");
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.partition, 0);
    check(f, get(f, "none", 4, &r), FERRY_STORE_OK, "get");
    assert_string_equal(r.content_type, "");
    check(f, get(f, "empty", 5, &r), FERRY_STORE_OK, "get");
    assert_string_equal(r.content_type, "");
    check(f, get(f, "max", 3, &r), FERRY_STORE_OK, "get");
    assert_string_equal(r.content_type, longest);
    assert_int_equal(r.partition, 7);
    assert_int_equal(r.offset, 42);
    assert_int_equal(r.timestamp_ms, 99);
    assert_int_equal(f->value.len, 0);
    /* One byte more is refused, and the batch with it. */
    longest[FERRY_STORE_CONTENT_TYPE_MAX] = 't';
    longest[FERRY_STORE_CONTENT_TYPE_MAX + 1] = '\0';
    begin(f);
    put(f, "lost", 4, "x", 0, 4, NULL);
    check(f, ferry_store_batch_put(f->s, "max", 3, "", 0, &row, f->err, sizeof(f->err)),
          FERRY_STORE_ERROR, "put with a content type too long");
    check(f, ferry_store_batch_commit(f->s, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "commit after a failed put");
    expect_missing(f, "lost", 4);
}

static void test_value_over_buffer_cap(void **state)
{
    struct fixture *f = *state;
    struct ferry_buf small;

    ferry_buf_init(&small, 4);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, "k", 1, "12345", 0, 1, NULL);
    put(f, "j", 1, "1234", 0, 2, NULL);
    commit(f);
    check(f, ferry_store_get(f->s, "k", 1, &small, NULL, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "get into a small buffer");
    assert_non_null(strstr(f->err, "5 bytes"));
    check(f, ferry_store_get(f->s, "j", 1, &small, NULL, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "get into a buffer just large enough");
    assert_string_equal(small.data, "1234");
    ferry_buf_release(&small);
}

static void test_offsets_in_the_same_batch(void **state)
{
    struct fixture *f = *state;
    const int64_t none[4] = {-1, -1, -1, -1};
    const int64_t first[4] = {10, -1, -1, 5};

    f->s = open_at(f, f->path, MAP_SIZE);
    expect_offsets(f, none, 4);
    begin(f);
    put(f, "a", 1, "a0", 0, 9, NULL);
    put(f, "b", 1, "b0", 3, 4, NULL);
    set_offset(f, 0, 10);
    set_offset(f, 3, 5);
    commit(f);
    expect_offsets(f, first, 4);
    /* An aborted batch changes neither rows nor offsets. */
    begin(f);
    put(f, "a", 1, "a1", 0, 10, NULL);
    del(f, "b", 1);
    put(f, "c", 1, "c0", 1, 0, NULL);
    set_offset(f, 0, 11);
    set_offset(f, 1, 1);
    set_offset(f, 3, 6);
    ferry_store_batch_abort(f->s);
    expect_offsets(f, first, 4);
    expect(f, "a", 1, "a0", 9);
    expect(f, "b", 1, "b0", 4);
    expect_missing(f, "c", 1);
    /* Partitions beyond n are left out; a bad offset aborts the batch. */
    expect_offsets(f, first, 1);
    begin(f);
    put(f, "c", 1, "c0", 1, 0, NULL);
    check(f, ferry_store_batch_set_offset(f->s, 1, -1, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "negative offset");
    check(f, ferry_store_batch_commit(f->s, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "commit without a batch");
    expect_missing(f, "c", 1);
    expect_offsets(f, first, 4);
}

/* A partition's rows go, a few rows looked at per batch, and then its offset; the other
 * partitions' rows and offsets stay. Rows of the partition are next to each other and apart,
 * first and last, so deleting at the cursor is checked where it is tricky. */
static void test_drop_partition(void **state)
{
    struct fixture *f = *state;
    const int64_t after[3] = {30, -1, 32};
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len = 0, batches = 0;
    char key[16];
    int more = 1;

    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        put(f, key, strlen(key), key, i % 7 < 3 ? 1 : i % 2 ? 0 : 2, i, NULL);
    }
    set_offset(f, 0, 30);
    set_offset(f, 1, 31);
    set_offset(f, 2, 32);
    commit(f);
    while (more) {
        unsigned char next[FERRY_STORE_CURSOR_MAX];
        size_t next_len;
        begin(f);
        check(f,
              ferry_store_batch_drop_partition(f->s, 1, cursor, cursor_len, 4, next, &next_len,
                                               &more, f->err, sizeof(f->err)),
              FERRY_STORE_OK, "drop");
        commit(f);
        if (!batches) /* the offset goes with the first batch: a cut-short clearing never resumes */
            expect_offsets(f, after, 3);
        memcpy(cursor, next, next_len);
        cursor_len = next_len;
        assert_true(++batches < 20);
    }
    assert_true(batches >= 7);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        if (i % 7 < 3)
            expect_missing(f, key, strlen(key));
        else
            expect(f, key, strlen(key), key, i);
    }
    expect_offsets(f, after, 3);
    /* a cursor that is not one is refused */
    begin(f);
    check(f,
          ferry_store_batch_drop_partition(f->s, 1, "x", 1, 4, cursor, &cursor_len, &more, f->err,
                                           sizeof(f->err)),
          FERRY_STORE_ERROR, "bad cursor");
}

static void test_batch_misuse(void **state)
{
    struct fixture *f = *state;
    struct ferry_store_row row = {0, 0, 0, NULL};

    f->s = open_at(f, f->path, MAP_SIZE);
    check(f, ferry_store_batch_put(f->s, "k", 1, "v", 1, &row, f->err, sizeof(f->err)),
          FERRY_STORE_ERROR, "put without a batch");
    assert_non_null(strstr(f->err, "no batch"));
    check(f, ferry_store_batch_delete(f->s, "k", 1, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "delete without a batch");
    check(f, ferry_store_batch_set_offset(f->s, 0, 1, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "offset without a batch");
    ferry_store_batch_abort(f->s);
    begin(f);
    check(f, ferry_store_batch_begin(f->s, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "a second begin");
    put(f, "k", 1, "v", 0, 0, NULL);
    commit(f); /* the first batch is still open and commits */
    expect(f, "k", 1, "v", 0);
}

static void test_tombstones(void **state)
{
    struct fixture *f = *state;
    unsigned char lk[2000];

    fill_key(lk, sizeof(lk), 9);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, "k", 1, "v1", 0, 1, NULL);
    put(f, lk, sizeof(lk), "long", 0, 2, NULL);
    put(f, "", 0, "empty key", 0, 3, NULL);
    del(f, "never", 5);
    commit(f);
    begin(f);
    del(f, "k", 1);
    del(f, lk, sizeof(lk));
    del(f, "", 0);
    del(f, "k", 1); /* twice */
    commit(f);
    expect_missing(f, "k", 1);
    expect_missing(f, lk, sizeof(lk));
    expect_missing(f, "", 0);
    begin(f);
    put(f, "k", 1, "v2", 0, 4, NULL);
    del(f, lk, sizeof(lk));
    put(f, lk, sizeof(lk), "long again", 0, 5, NULL);
    put(f, "gone", 4, "x", 0, 6, NULL);
    del(f, "gone", 4); /* put and deleted in one batch */
    commit(f);
    expect(f, "k", 1, "v2", 4);
    expect(f, lk, sizeof(lk), "long again", 5);
    expect_missing(f, "gone", 4);
}

/* Writes batches of 4 KiB values until the 1 MiB map is full; returns the rows committed. */
static int64_t fill_until_full(struct fixture *f)
{
    char value[4096];
    char key[32];
    struct ferry_store_row row = {0, 0, 0, NULL};
    int64_t committed = 0, i;
    int result = FERRY_STORE_OK, batch;

    memset(value, 'v', sizeof(value));
    for (batch = 0; batch < 1000 && result == FERRY_STORE_OK; batch++) {
        begin(f);
        for (i = committed; i < committed + 20 && result == FERRY_STORE_OK; i++) {
            snprintf(key, sizeof(key), "key-%06" PRId64, i);
            row.offset = i;
            result = ferry_store_batch_put(f->s, key, strlen(key), value, sizeof(value), &row,
                                           f->err, sizeof(f->err));
        }
        if (!result)
            result = ferry_store_batch_set_offset(f->s, 0, i, f->err, sizeof(f->err));
        if (!result)
            result = ferry_store_batch_commit(f->s, f->err, sizeof(f->err));
        if (!result)
            committed = i;
    }
    check(f, result, FERRY_STORE_FULL, "a batch into a full map");
    assert_non_null(strstr(f->err, f->path));
    return committed;
}

static void expect_rows_up_to(struct fixture *f, int64_t n)
{
    char key[32];
    int64_t i;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key-%06" PRId64, i);
        check(f, get(f, key, strlen(key), NULL), FERRY_STORE_OK, "get after map full");
        assert_int_equal(f->value.len, 4096);
    }
    snprintf(key, sizeof(key), "key-%06" PRId64, n);
    expect_missing(f, key, strlen(key));
    expect_offsets(f, &n, 1);
}

static void test_map_full(void **state)
{
    struct fixture *f = *state;
    struct ferry_store_stats st;
    int64_t committed;
    int result;

    f->s = open_at(f, f->path, 1 << 20);
    committed = fill_until_full(f);
    assert_true(committed > 20);
    check(f, ferry_store_batch_commit(f->s, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "the full batch is over");
    expect_rows_up_to(f, committed);
    check(f, ferry_store_stats(f->s, &st, f->err, sizeof(f->err)), FERRY_STORE_OK, "stats");
    assert_int_equal(st.keys, (uint64_t)committed);
    assert_int_equal(st.max_size, 1 << 20);
    /* A small batch either fits or is refused cleanly. */
    begin(f);
    del(f, "key-000000", 10);
    result = ferry_store_batch_commit(f->s, f->err, sizeof(f->err));
    assert_true(result == FERRY_STORE_OK || result == FERRY_STORE_FULL);
    if (result == FERRY_STORE_FULL)
        expect_rows_up_to(f, committed);
    else
        expect_missing(f, "key-000000", 10);
    /* A larger map then takes more. */
    reopen(f, 4 << 20);
    begin(f);
    put(f, "more", 4, "room", 0, committed, NULL);
    commit(f);
    expect(f, "more", 4, "room", committed);
}

/* Scans: a page of keys as one string, "a,ab,". */
struct page {
    char keys[256];
    size_t len;
    int stop_after; /* 0: never */
    int given;
};

static int page_entry(void *arg, const struct ferry_store_entry *e)
{
    struct page *p = arg;

    assert_true(p->len + e->key_len + 1 < sizeof(p->keys));
    memcpy(p->keys + p->len, e->key, e->key_len);
    p->len += e->key_len;
    p->keys[p->len++] = ',';
    p->keys[p->len] = '\0';
    p->given++;
    return p->stop_after && p->given == p->stop_after;
}

struct scan_state {
    unsigned char cursor[FERRY_STORE_CURSOR_MAX];
    size_t cursor_len;
};

/* Scans one page after the state's cursor and moves the cursor on. */
static void scan_page(struct fixture *f, struct scan_state *ss, const char *prefix, size_t limit,
                      int stop_after, const char *want_keys, int want_more)
{
    struct page p = {"", 0, stop_after, 0};
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    size_t next_len = 99;

    check(f,
          ferry_store_scan(f->s, prefix, strlen(prefix), ss->cursor, ss->cursor_len, limit,
                           page_entry, &p, next, &next_len, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "scan");
    assert_string_equal(p.keys, want_keys);
    assert_int_equal(next_len != 0, want_more);
    memcpy(ss->cursor, next, next_len);
    ss->cursor_len = next_len;
}

static void put_keys(struct fixture *f, const char *const *keys)
{
    begin(f);
    for (; *keys; keys++)
        put(f, *keys, strlen(*keys), *keys, 0, 0, NULL);
    commit(f);
}

static const char *const scan_keys[] = {"a", "ab", "abc", "abd", "b", "ba", "c", NULL};

struct scan_case {
    const char *name;
    const char *prefix;
    size_t limit;
    const char *pages[4]; /* expected pages until the last one, which has no next cursor */
};

static const struct scan_case scan_cases[] = {
    {"everything at once", "", 100, {"a,ab,abc,abd,b,ba,c,"}},
    {"everything by twos", "", 2, {"a,ab,", "abc,abd,", "b,ba,", "c,"}},
    {"a prefix", "ab", 10, {"ab,abc,abd,"}},
    {"a prefix by ones", "b", 1, {"b,", "ba,"}},
    {"a prefix ending at the limit", "ab", 3, {"ab,abc,abd,"}},
    {"a prefix that is a whole key only", "c", 5, {"c,"}},
    {"no match", "bb", 5, {""}},
    {"past every key", "d", 5, {""}},
};

static void test_scan_cases(void **state)
{
    struct fixture *f = *state;
    size_t i, j;

    f->s = open_at(f, f->path, MAP_SIZE);
    put_keys(f, scan_keys);
    for (i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
        const struct scan_case *c = &scan_cases[i];
        struct scan_state ss = {{0}, 0};

        print_message("scan case: %s\n", c->name);
        for (j = 0; j < 4 && c->pages[j]; j++)
            scan_page(f, &ss, c->prefix, c->limit, 0, c->pages[j], j + 1 < 4 && c->pages[j + 1]);
    }
}

static void test_scan_cursor_across_writes(void **state)
{
    struct fixture *f = *state;
    struct scan_state ss = {{0}, 0};
    static const char *const before[] = {"aa", "a0", NULL};
    static const char *const after[] = {"abb", "abe", NULL};

    f->s = open_at(f, f->path, MAP_SIZE);
    put_keys(f, scan_keys);
    scan_page(f, &ss, "a", 2, 0, "a,ab,", 1);
    /* The cursor's key goes, keys before it come, keys after it come. */
    begin(f);
    del(f, "ab", 2);
    commit(f);
    put_keys(f, before);
    put_keys(f, after);
    scan_page(f, &ss, "a", 2, 0, "abb,abc,", 1);
    begin(f);
    del(f, "abd", 3);
    commit(f);
    scan_page(f, &ss, "a", 2, 0, "abe,", 0);
    /* A callback that stops: the cursor continues after the last row it took. */
    scan_page(f, &ss, "", 10, 2, "a,a0,", 1);
    scan_page(f, &ss, "", 10, 3, "aa,abb,abc,", 1);
    scan_page(f, &ss, "", 10, 0, "abe,b,ba,c,", 0);
    /* A cursor before the prefix starts at the prefix; one after it ends the scan. */
    ss.cursor[0] = 0x6b;
    ss.cursor[1] = 'a';
    ss.cursor_len = 2;
    scan_page(f, &ss, "b", 10, 0, "b,ba,", 0);
    ss.cursor[1] = 'c';
    ss.cursor_len = 2;
    scan_page(f, &ss, "b", 10, 0, "", 0);
}

static void test_scan_bad_arguments(void **state)
{
    struct fixture *f = *state;
    unsigned char cursor[FERRY_STORE_CURSOR_MAX + 1], next[FERRY_STORE_CURSOR_MAX];
    struct page p = {"", 0, 0, 0};
    size_t next_len;

    memset(cursor, 0x6b, sizeof(cursor));
    f->s = open_at(f, f->path, MAP_SIZE);
    check(f,
          ferry_store_scan(f->s, "", 0, cursor, sizeof(cursor), 10, page_entry, &p, next, &next_len,
                           f->err, sizeof(f->err)),
          FERRY_STORE_BAD_CURSOR, "a cursor too long");
    check(f,
          ferry_store_scan(f->s, "", 0, cursor, FERRY_STORE_CURSOR_MAX - 1, 10, page_entry, &p,
                           next, &next_len, f->err, sizeof(f->err)),
          FERRY_STORE_BAD_CURSOR, "a cursor of a length no key encodes to");
    cursor[0] = 'x';
    check(f,
          ferry_store_scan(f->s, "", 0, cursor, 3, 10, page_entry, &p, next, &next_len, f->err,
                           sizeof(f->err)),
          FERRY_STORE_BAD_CURSOR, "a cursor without the tag");
    check(f,
          ferry_store_scan(f->s, "", 0, NULL, 0, 0, page_entry, &p, next, &next_len, f->err,
                           sizeof(f->err)),
          FERRY_STORE_ERROR, "limit 0");
}

static void test_scan_long_prefixes(void **state)
{
    struct fixture *f = *state;
    unsigned char k[700];
    size_t i;

    fill_key(k, sizeof(k), 5);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    for (i = 0; i < 10; i++) {
        k[600] = (unsigned char)i; /* ten keys that differ only at byte 600 */
        put(f, k, sizeof(k), "x", 0, (int64_t)i, NULL);
    }
    put(f, k, FERRY_STORE_KEY_INLINE, "inline", 0, 10, NULL);
    put(f, k, 100, "short", 0, 11, NULL);
    commit(f);
    assert_int_equal(scan_count(f, k, 50), 12);
    assert_int_equal(scan_count(f, k, FERRY_STORE_KEY_INLINE), 11);
    assert_int_equal(scan_count(f, k, FERRY_STORE_KEY_INLINE + 1), 10);
    assert_int_equal(scan_count(f, k, 600), 10);
    k[600] = 3;
    assert_int_equal(scan_count(f, k, 601), 1);
    assert_int_equal(scan_count(f, k, sizeof(k)), 1);
    k[600] = 200;
    assert_int_equal(scan_count(f, k, 601), 0);
}

/* Every row of a scan, in order, with its key and cursor. */
struct ordered {
    unsigned char keys[16][700];
    size_t key_len[16];
    unsigned char cursors[16][FERRY_STORE_CURSOR_MAX];
    size_t cursor_len[16];
    size_t n;
};

static int take_ordered(void *arg, const struct ferry_store_entry *e)
{
    struct ordered *o = arg;

    assert_true(o->n < 16 && e->key_len <= sizeof(o->keys[0]));
    memcpy(o->keys[o->n], e->key, e->key_len);
    o->key_len[o->n] = e->key_len;
    memcpy(o->cursors[o->n], e->cursor, e->cursor_len);
    o->cursor_len[o->n++] = e->cursor_len;
    return 0;
}

/* A key's cursor sorts against the scan's cursors where its row stands: short keys, long keys
 * that share their first FERRY_STORE_KEY_INLINE bytes, and a key no row has. */
static void test_key_cursor_orders_like_scans(void **state)
{
    struct fixture *f = *state;
    struct ordered o = {.n = 0};
    unsigned char k[700], next[FERRY_STORE_CURSOR_MAX], c[FERRY_STORE_CURSOR_MAX];
    size_t next_len, c_len;

    fill_key(k, sizeof(k), 9);
    f->s = open_at(f, f->path, MAP_SIZE);
    put_keys(f, scan_keys);
    begin(f);
    for (unsigned char i = 0; i < 4; i++) {
        k[600] = i;
        put(f, k, sizeof(k), "long", 0, i, NULL);
    }
    commit(f);
    check(f,
          ferry_store_scan(f->s, "", 0, NULL, 0, 100, take_ordered, &o, next, &next_len, f->err,
                           sizeof(f->err)),
          FERRY_STORE_OK, "scan");
    assert_int_equal(o.n, 11);
    for (size_t i = 0; i < o.n; i++) {
        check(f,
              ferry_store_key_cursor(f->s, o.keys[i], o.key_len[i], c, &c_len, f->err,
                                     sizeof(f->err)),
              FERRY_STORE_OK, "key cursor");
        for (size_t j = 0; j < o.n; j++) {
            int cmp = ferry_store_cursor_cmp(c, c_len, o.cursors[j], o.cursor_len[j]);
            assert_int_equal(cmp < 0 ? -1 : cmp > 0, i < j ? -1 : i > j);
        }
    }
    check(f, ferry_store_key_cursor(f->s, "abcd", 4, c, &c_len, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "key cursor");
    for (size_t i = 0; i < o.n; i++) {
        int cmp = ferry_store_cursor_cmp(c, c_len, o.cursors[i], o.cursor_len[i]);
        if (o.key_len[i] == 3 && memcmp(o.keys[i], "abc", 3) == 0)
            assert_true(cmp > 0);
        if (o.key_len[i] == 3 && memcmp(o.keys[i], "abd", 3) == 0)
            assert_true(cmp < 0);
    }
}

static void test_meta_round_trip(void **state)
{
    struct fixture *f = *state;
    struct ferry_store_meta meta = {0, "MkU3OEVBNTcwNTJENDM2Qk", "stock-prices", 30}, got;

    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    check(f, ferry_store_batch_set_meta(f->s, &meta, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "set meta");
    ferry_store_batch_abort(f->s);
    check(f, ferry_store_get_meta(f->s, &got, f->err, sizeof(f->err)), FERRY_STORE_NOT_FOUND,
          "meta after an aborted batch");
    begin(f);
    check(f, ferry_store_batch_set_meta(f->s, &meta, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "set meta");
    commit(f);
    reopen(f, MAP_SIZE);
    check(f, ferry_store_get_meta(f->s, &got, f->err, sizeof(f->err)), FERRY_STORE_OK, "meta");
    assert_int_equal(got.format, FERRY_STORE_FORMAT);
    assert_string_equal(got.cluster_id, meta.cluster_id);
    assert_string_equal(got.topic, meta.topic);
    assert_int_equal(got.partitions, 30);
    meta.partitions = 60;
    meta.cluster_id[0] = '\0';
    begin(f);
    check(f, ferry_store_batch_set_meta(f->s, &meta, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "set meta");
    commit(f);
    check(f, ferry_store_get_meta(f->s, &got, f->err, sizeof(f->err)), FERRY_STORE_OK, "meta");
    assert_string_equal(got.cluster_id, "");
    assert_int_equal(got.partitions, 60);
}

static void test_reopen_keeps_everything(void **state)
{
    struct fixture *f = *state;
    struct ferry_store_meta meta = {0, "cluster", "topic", 2}, got;
    struct ferry_store_stats st;
    const int64_t offsets[2] = {3, 8};
    unsigned char lk[3000];

    fill_key(lk, sizeof(lk), 11);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, "a", 1, "va", 0, 2, "text/plain");
    put(f, lk, sizeof(lk), "vl", 1, 7, NULL);
    set_offset(f, 0, 3);
    set_offset(f, 1, 8);
    check(f, ferry_store_batch_set_meta(f->s, &meta, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "set meta");
    commit(f);
    reopen(f, 1 << 20); /* a new max_size holds when the data fits */
    expect(f, "a", 1, "va", 2);
    expect(f, lk, sizeof(lk), "vl", 7);
    expect_offsets(f, offsets, 2);
    check(f, ferry_store_get_meta(f->s, &got, f->err, sizeof(f->err)), FERRY_STORE_OK, "meta");
    assert_string_equal(got.topic, "topic");
    check(f, ferry_store_stats(f->s, &st, f->err, sizeof(f->err)), FERRY_STORE_OK, "stats");
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.max_size, 1 << 20);
}

static void test_destroy_files(void **state)
{
    struct fixture *f = *state;
    char extra[400];
    struct stat sb;
    FILE *fp;

    f->s = open_at(f, f->path, MAP_SIZE);
    ferry_store_close(f->s);
    f->s = NULL;
    check(f, ferry_store_destroy_files(f->path, f->err, sizeof(f->err)), FERRY_STORE_OK, "destroy");
    assert_int_equal(stat(f->path, &sb), -1);
    check(f, ferry_store_destroy_files(f->path, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "destroy of nothing");
    /* A directory holding something else stays, with its file. */
    f->s = open_at(f, f->path, MAP_SIZE);
    ferry_store_close(f->s);
    f->s = NULL;
    snprintf(extra, sizeof(extra), "%s/notes.txt", f->path);
    fp = fopen(extra, "w");
    assert_non_null(fp);
    fclose(fp);
    check(f, ferry_store_destroy_files(f->path, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "destroy of a directory with another file");
    assert_non_null(strstr(f->err, f->path));
    assert_int_equal(stat(extra, &sb), 0);
}

/* Readers on other threads while a writer commits: every batch rewrites all GROUP keys with
 * its generation, and one scan (one snapshot) must see a single generation. */
#define GROUP 20
#define GENERATIONS 200

struct reader {
    struct fixture *f;
    atomic_int *done;
    int bad;
    atomic_long scans;
};

struct generation {
    int64_t seen; /* -1 before the first row */
    int mixed;
};

static int check_generation(void *arg, const struct ferry_store_entry *e)
{
    struct generation *g = arg;

    if (g->seen < 0)
        g->seen = e->row.offset;
    g->mixed |= e->row.offset != g->seen;
    return 0;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    struct ferry_buf value;
    struct generation g;
    char err[ERR_MAX];
    size_t next_len;

    ferry_buf_init(&value, VALUE_CAP);
    while (!atomic_load(r->done)) {
        g.seen = -1;
        g.mixed = 0;
        if (ferry_store_scan(r->f->s, "g/", 2, NULL, 0, GROUP, check_generation, &g, next,
                             &next_len, err, sizeof(err)) != FERRY_STORE_OK ||
            next_len != 0 || g.mixed)
            r->bad++;
        if (ferry_store_get(r->f->s, "g/00", 4, &value, NULL, err, sizeof(err)) ==
            FERRY_STORE_ERROR)
            r->bad++;
        r->scans++;
    }
    ferry_buf_release(&value);
    return NULL;
}

static void test_readers_during_writes(void **state)
{
    struct fixture *f = *state;
    atomic_int done = 0;
    struct reader r[2] = {{f, &done, 0, 0}, {f, &done, 0, 0}};
    time_t deadline = time(NULL) + 30;
    pthread_t t[2];
    char key[16];
    int64_t g;
    int i;

    f->s = open_at(f, f->path, MAP_SIZE);
    for (i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    while ((atomic_load(&r[0].scans) == 0 || atomic_load(&r[1].scans) == 0) &&
           time(NULL) < deadline)
        sched_yield();
    for (g = 0; g < GENERATIONS; g++) {
        begin(f);
        for (i = 0; i < GROUP; i++) {
            snprintf(key, sizeof(key), "g/%02d", i);
            put(f, key, strlen(key), "generation", 0, g, NULL);
        }
        commit(f);
    }
    atomic_store(&done, 1);
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].bad, 0);
        assert_true(atomic_load(&r[i].scans) > 0);
    }
}

/* Kill -9 during writes. A child writes batches of records of 4 partitions; record o of
 * partition p is a pure function of (p, o), so the parent can replay them. */
#define CRASH_PARTITIONS 4
#define CRASH_KEYS 37
#define CRASH_COMMITS 30
#define CRASH_DEADLINE_MS 60000

static size_t crash_key(int32_t p, int64_t o, char *key, size_t size)
{
    int n;

    if (o % 11 == 5) { /* a long key, also overwritten now and then */
        n = snprintf(key, size, "p%d/long/%0600d", (int)p, (int)(o % 5));
        return (size_t)n;
    }
    n = snprintf(key, size, "p%d/k%02d", (int)p, (int)((o * 7919) % CRASH_KEYS));
    return (size_t)n;
}

static int crash_is_tombstone(int64_t o)
{
    return o % 13 == 12;
}

static size_t crash_value(int32_t p, int64_t o, char *value, size_t size)
{
    int n = snprintf(value, size, "p%d o%" PRId64 " %0*d", (int)p, o, (int)(o % 300), 0);

    return (size_t)n;
}

static int crash_apply(ferry_store *s, int32_t p, int64_t o, char *err)
{
    char key[700], value[400];
    size_t klen = crash_key(p, o, key, sizeof(key));
    struct ferry_store_row row = {p, o, o, NULL};

    if (crash_is_tombstone(o))
        return ferry_store_batch_delete(s, key, klen, err, ERR_MAX);
    return ferry_store_batch_put(s, key, klen, value, crash_value(p, o, value, sizeof(value)), &row,
                                 err, ERR_MAX);
}

/* The child: writes batches forever, a byte down the pipe after each commit. */
static void crash_writer(const char *path, int fd, int unsynced)
{
    char err[ERR_MAX];
    int64_t next[CRASH_PARTITIONS] = {0};
    ferry_store *s = ferry_store_open(path, MAP_SIZE, err, sizeof(err));
    int32_t p;
    int n, result = s ? FERRY_STORE_OK : FERRY_STORE_ERROR;

    if (!result && unsynced)
        result = ferry_store_set_synced(s, 0, err, sizeof(err));
    srand((unsigned)getpid());
    while (result == FERRY_STORE_OK) {
        result = ferry_store_batch_begin(s, err, sizeof(err));
        for (p = 0; p < CRASH_PARTITIONS && result == FERRY_STORE_OK; p++) {
            for (n = 1 + rand() % 40; n > 0 && result == FERRY_STORE_OK; n--)
                result = crash_apply(s, p, next[p]++, err);
            if (!result)
                result = ferry_store_batch_set_offset(s, p, next[p], err, sizeof(err));
        }
        if (!result)
            result = ferry_store_batch_commit(s, err, sizeof(err));
        if (!result && write(fd, "c", 1) != 1)
            result = FERRY_STORE_ERROR;
    }
    fprintf(stderr, "crash writer: %s\n", err);
    _exit(1);
}

/* Waits for the child's commits, then kills it. */
static void crash_kill_after(pid_t pid, int fd, int commits)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    char buf[64];
    ssize_t n;
    int status;

    while (commits > 0) {
        if (poll(&pfd, 1, CRASH_DEADLINE_MS) != 1)
            fail_msg("the writer made no progress");
        n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            fail_msg("the writer ended early");
        commits -= (int)n;
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
}

struct replay {
    int64_t latest[CRASH_PARTITIONS][CRASH_KEYS + 5]; /* offset of each key, or -1 */
    size_t rows;
    int bad;
};

static size_t replay_slot(int64_t o)
{
    return o % 11 == 5 ? CRASH_KEYS + (size_t)(o % 5) : (size_t)((o * 7919) % CRASH_KEYS);
}

static void replay_build(struct replay *r, const int64_t *next)
{
    int32_t p;
    int64_t o;
    size_t i;

    memset(r, 0, sizeof(*r));
    for (p = 0; p < CRASH_PARTITIONS; p++) {
        for (i = 0; i < CRASH_KEYS + 5; i++)
            r->latest[p][i] = -1;
        for (o = 0; o < next[p]; o++)
            r->latest[p][replay_slot(o)] = crash_is_tombstone(o) ? -1 : o;
        for (i = 0; i < CRASH_KEYS + 5; i++)
            r->rows += r->latest[p][i] >= 0;
    }
}

/* Each row must be the latest record of its key in the replay. */
static int replay_check(void *arg, const struct ferry_store_entry *e)
{
    struct replay *r = arg;
    int32_t p = e->row.partition;
    int64_t o = e->row.offset;
    char key[700], value[400];
    size_t klen, vlen;

    if (p < 0 || p >= CRASH_PARTITIONS || o < 0 || r->latest[p][replay_slot(o)] != o) {
        r->bad++;
        return 0;
    }
    klen = crash_key(p, o, key, sizeof(key));
    vlen = crash_value(p, o, value, sizeof(value));
    if (e->key_len != klen || memcmp(e->key, key, klen) || e->value_len != vlen ||
        memcmp(e->value, value, vlen))
        r->bad++;
    r->rows--;
    return 0;
}

static void crash_round(struct fixture *f, int commits, int unsynced)
{
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    int64_t offsets[CRASH_PARTITIONS];
    struct replay r;
    size_t next_len;
    int fds[2];
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_writer(f->path, fds[1], unsynced);
    }
    close(fds[1]);
    crash_kill_after(pid, fds[0], commits);
    close(fds[0]);
    f->s = open_at(f, f->path, MAP_SIZE);
    assert_int_equal(ferry_store_was_emptied(f->s), 0); /* ferry died, not the system */
    assert_int_equal(has_marker(f), 0);                 /* synced on open */
    check(f, ferry_store_offsets(f->s, offsets, CRASH_PARTITIONS, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "offsets after kill -9");
    replay_build(&r, offsets);
    check(f,
          ferry_store_scan(f->s, NULL, 0, NULL, 0, 100000, replay_check, &r, next, &next_len,
                           f->err, sizeof(f->err)),
          FERRY_STORE_OK, "scan after kill -9");
    assert_int_equal(r.bad, 0);
    assert_int_equal(r.rows, 0);
    ferry_store_close(f->s);
    f->s = NULL;
    check(f, ferry_store_destroy_files(f->path, f->err, sizeof(f->err)), FERRY_STORE_OK, "destroy");
}

static void test_kill_during_writes(void **state)
{
    struct fixture *f = *state;

    crash_round(f, 1, 0);
    crash_round(f, CRASH_COMMITS, 0);
    crash_round(f, 3 * CRASH_COMMITS, 0);
}

/* Commits that skip their sync: kill -9 loses nothing either, since the system still holds
 * every write. */
static void test_kill_during_unsynced_writes(void **state)
{
    struct fixture *f = *state;

    crash_round(f, 1, 1);
    crash_round(f, 3 * CRASH_COMMITS, 1);
}

/* The marker lives while commits skip their sync; a marker of another boot empties the store
 * on open, one of this boot keeps it. */
static void test_unsynced_marker(void **state)
{
    struct fixture *f = *state;
    f->s = open_at(f, f->path, MAP_SIZE);
    check(f, ferry_store_set_synced(f->s, 0, f->err, sizeof(f->err)), FERRY_STORE_OK, "unsync");
    assert_int_equal(has_marker(f), 1);
    begin(f);
    check(f, ferry_store_set_synced(f->s, 1, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "sync with a batch open");
    put(f, "a", 1, "va", 0, 2, NULL);
    set_offset(f, 0, 3);
    commit(f);
    check(f, ferry_store_set_synced(f->s, 1, f->err, sizeof(f->err)), FERRY_STORE_OK, "sync");
    assert_int_equal(has_marker(f), 0);
    check(f, ferry_store_set_synced(f->s, 0, f->err, sizeof(f->err)), FERRY_STORE_OK, "unsync");
    reopen(f, MAP_SIZE); /* close syncs */
    assert_int_equal(has_marker(f), 0);
    assert_int_equal(ferry_store_was_emptied(f->s), 0);
    expect(f, "a", 1, "va", 2);

    write_marker(f, "a boot long gone");
    reopen(f, MAP_SIZE);
    assert_int_equal(ferry_store_was_emptied(f->s), 1);
    assert_int_equal(has_marker(f), 0);
    expect_missing(f, "a", 1);
}

/* The volume the store's data file lives on, as the tests act it out through
 * ferry_store_set_allocate(): a reservation reaching past room bytes of the file fails with err
 * (0: never); others go to posix_fallocate. */
static struct {
    int err;
    off_t room;
    int calls;
    off_t refused; /* the end of the last reservation refused */
} volume;

static int fake_allocate(int fd, off_t offset, off_t len)
{
    volume.calls++;
    if (volume.err && offset + len > volume.room) {
        volume.refused = offset + len;
        return volume.err;
    }
    return posix_fallocate(fd, offset, len);
}

static void set_volume(int err, off_t room)
{
    volume.err = err;
    volume.room = room;
    volume.calls = 0;
}

static uint64_t bytes_used(struct fixture *f)
{
    struct ferry_store_stats st;

    check(f, ferry_store_stats(f->s, &st, f->err, sizeof(f->err)), FERRY_STORE_OK, "stats");
    return st.bytes_used;
}

static void expect_in_err(struct fixture *f, const char *part)
{
    if (!strstr(f->err, part))
        fail_msg("'%s' not in the message: %s", part, f->err);
}

/* The data file's blocks exist beyond the pages in use once a batch has begun, and the file
 * keeps the map's length. */
static void test_space_reserved(void **state)
{
    struct fixture *f = *state;
    char file[400];
    struct stat st;

    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, "a", 1, "va", 0, 0, NULL);
    commit(f);
    snprintf(file, sizeof(file), "%s/data.mdb", f->path);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_size, MAP_SIZE);
    if ((uint64_t)st.st_blocks * 512 < bytes_used(f) + (4u << 20))
        fail_msg("%ju bytes of data.mdb have disk blocks, %" PRIu64 " are in use",
                 (uintmax_t)st.st_blocks * 512, bytes_used(f));
}

/* What a reservation's failure makes of a batch, by posix_fallocate's result. */
static const struct space_case {
    int err;
    int want; /* of begin */
    const char *says;
} space_cases[] = {
    {ENOSPC, FERRY_STORE_NO_SPACE, "no disk space"},
    {EDQUOT, FERRY_STORE_NO_SPACE, "no disk space"},
    {EIO, FERRY_STORE_ERROR, "reserving disk blocks"},
    {EOPNOTSUPP, FERRY_STORE_OK, NULL}, /* cannot reserve: writes as before */
    {EINVAL, FERRY_STORE_OK, NULL},
};

static void space_case_run(struct fixture *f, const struct space_case *c, int i)
{
    char path[400];
    const int64_t one[] = {1}, two[] = {2};

    snprintf(path, sizeof(path), "%s-%d", f->path, i);
    f->s = open_at(f, path, MAP_SIZE);
    begin(f);
    put(f, "a", 1, "va", 0, 0, NULL);
    set_offset(f, 0, 1);
    commit(f);
    ferry_store_set_allocate(f->s, fake_allocate);
    set_volume(c->err, 0);
    check(f, ferry_store_batch_begin(f->s, f->err, sizeof(f->err)), c->want, "begin");
    assert_true(volume.calls > 0);
    if (c->says) {
        expect_in_err(f, c->says);
        expect_in_err(f, path);
    }
    if (c->want == FERRY_STORE_NO_SPACE) {
        expect_in_err(f, "bytes free");
        expect(f, "a", 1, "va", 0); /* reads go on */
        expect_offsets(f, one, 1);
        check(f, ferry_store_space_retry(f->s, f->err, sizeof(f->err)), FERRY_STORE_NO_SPACE,
              "retry on a full volume");
        set_volume(0, 0); /* space is freed */
        check(f, ferry_store_space_retry(f->s, f->err, sizeof(f->err)), FERRY_STORE_OK, "retry");
        begin(f);
    }
    if (c->want != FERRY_STORE_ERROR) {
        put(f, "b", 1, "vb", 0, 1, NULL);
        set_offset(f, 0, 2);
        commit(f);
        expect(f, "b", 1, "vb", 1);
        expect_offsets(f, two, 1);
    }
    ferry_store_close(f->s);
    f->s = NULL;
}

static void test_space_refused(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(space_cases) / sizeof(space_cases[0]); i++)
        space_case_run(f, &space_cases[i], (int)i);
}

/* A volume that runs out in the middle of a batch: the write that would pass the room is
 * refused, the batch is dropped whole, and applied again once space is back. */
static void test_space_runs_out_in_a_batch(void **state)
{
    struct fixture *f = *state;
    static char big[64 * 1024];
    const int64_t one[] = {1}, many[] = {101};
    char key[32];
    int i, result = FERRY_STORE_OK;

    memset(big, 'x', sizeof(big) - 1);
    f->s = open_at(f, f->path, MAP_SIZE);
    begin(f);
    put(f, "a", 1, "va", 0, 0, NULL);
    set_offset(f, 0, 1);
    commit(f);
    ferry_store_set_allocate(f->s, fake_allocate);
    set_volume(ENOSPC, (off_t)bytes_used(f) + (1 << 20));
    begin(f);
    for (i = 1; i <= 100 && result == FERRY_STORE_OK; i++) {
        struct ferry_store_row row = {0, i, 1700000000000 + i, NULL};
        snprintf(key, sizeof(key), "big-%03d", i);
        result = ferry_store_batch_put(f->s, key, strlen(key), big, sizeof(big) - 1, &row, f->err,
                                       sizeof(f->err));
    }
    check(f, result, FERRY_STORE_NO_SPACE, "a put past the room");
    assert_true(i > 5); /* the room took some */
    expect_in_err(f, "no disk space");
    check(f, ferry_store_batch_commit(f->s, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "the refused batch is over");
    expect_missing(f, "big-001", 7);
    expect(f, "a", 1, "va", 0);
    expect_offsets(f, one, 1);

    set_volume(0, 0);
    check(f, ferry_store_space_retry(f->s, f->err, sizeof(f->err)), FERRY_STORE_OK, "retry");
    begin(f);
    for (i = 1; i <= 100; i++) {
        snprintf(key, sizeof(key), "big-%03d", i);
        put(f, key, strlen(key), big, 0, i, NULL);
    }
    set_offset(f, 0, 101);
    commit(f);
    expect_offsets(f, many, 1);
    check(f, get(f, "big-100", 7, NULL), FERRY_STORE_OK, "the last row");
}

/* Writes a committed store of n rows (keys "row-%06d", 100-byte values) on partition 0, so
 * that the trees have branch pages for the writes to copy. */
static void fill_rows(struct fixture *f, int n)
{
    static char value[101];
    char key[32];
    int i;

    memset(value, 'v', sizeof(value) - 1);
    begin(f);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "row-%06d", i);
        put(f, key, strlen(key), value, 0, i, NULL);
    }
    set_offset(f, 0, n);
    commit(f);
}

/* Rows under the writes: enough for a tree three deep, whose branch pages the writes copy. */
#define RESERVE_ROWS 60000

/* Writes a batch ferry_store_batch_reserve() counted ahead of: puts or deletes of count keys of
 * key_len bytes (key_len 0: the rows fill_rows wrote), with values of value_len bytes and a
 * content type when ctype. */
static const struct reserve_case {
    int count;
    size_t key_len, value_len;
    int ctype, delete;
} reserve_cases[] = {
    {2000, 12, 20, 0, 0},   /* small rows, many to a leaf */
    {300, 0, 1500, 1, 0},   /* replacing rows, just below a page's half */
    {60, 40, 3000, 0, 0},   /* just over: overflow pages */
    {8, 30, 100000, 1, 0},  /* many overflow pages each */
    {100, 600, 1500, 1, 0}, /* hashed keys, kept whole in the row too */
    {1000, 0, 0, 0, 1},     /* deletes */
    {1, 4000, 1, 0, 0},     /* one long key */
};

static size_t reserve_key(const struct reserve_case *c, int i, unsigned char *key)
{
    if (!c->key_len)
        return (size_t)snprintf((char *)key, 32, "row-%06d", i);
    fill_key(key, c->key_len, (unsigned)i);
    memcpy(key, &i, sizeof(i));
    return c->key_len;
}

static int reserve_write(struct fixture *f, const struct reserve_case *c, int i, const char *value)
{
    static unsigned char key[4096];
    struct ferry_store_row row = {1, i, 1700000000000 + i, c->ctype ? "application/json" : NULL};
    size_t len = reserve_key(c, i, key);

    if (c->delete)
        return ferry_store_batch_delete(f->s, key, len, f->err, sizeof(f->err));
    return ferry_store_batch_put(f->s, key, len, value, c->value_len, &row, f->err, sizeof(f->err));
}

/* The bytes of n of c's records, as a caller of ferry_store_batch_reserve() counts them. */
static size_t reserve_bytes(const struct reserve_case *c, int n)
{
    return (size_t)n * ((c->key_len ? c->key_len : 10) + c->value_len +
                        (c->ctype ? sizeof("application/json") : 0));
}

/* Opens a store of RESERVE_ROWS rows for case n at path-<name>-<n>, on the fake volume. */
static void reserve_open(struct fixture *f, const char *name, int n)
{
    char path[400];

    snprintf(path, sizeof(path), "%s-%s-%d", f->path, name, n);
    f->s = open_at(f, path, MAP_SIZE);
    fill_rows(f, RESERVE_ROWS);
    ferry_store_set_allocate(f->s, fake_allocate);
}

static void reserve_case_run(struct fixture *f, const struct reserve_case *c, int n)
{
    static char value[100001];
    size_t bytes = reserve_bytes(c, c->count);
    int i, calls;

    memset(value, 'x', sizeof(value) - 1);
    reserve_open(f, "reserve", n);
    set_volume(ENOSPC, (off_t)bytes_used(f) + (1 << 20)); /* the begin's pages, no step ahead */
    begin(f);
    set_volume(ENOSPC, 0); /* learns where the count ends: the last block refused */
    check(f, ferry_store_batch_reserve(f->s, (size_t)c->count + 2, bytes, f->err, sizeof(f->err)),
          FERRY_STORE_NO_SPACE, "reserve on a full volume");
    set_volume(ENOSPC, volume.refused); /* blocks up to there, so any write past it asks */
    check(f, ferry_store_batch_reserve(f->s, (size_t)c->count + 2, bytes, f->err, sizeof(f->err)),
          FERRY_STORE_OK, "reserve");
    volume.calls = 0;
    for (i = 0; i < c->count; i++)
        check(f, reserve_write(f, c, i, value), FERRY_STORE_OK, "a write counted ahead");
    set_offset(f, 0, RESERVE_ROWS);
    set_offset(f, 1, c->count);
    calls = volume.calls;
    commit(f);
    assert_int_equal(calls, 0); /* every write drew on what was reserved */
    /* and the pages the commit left in use have blocks: none is past what was reserved, which
     * is where a refused reservation gives blocks back (allocate_range) */
    assert_true(bytes_used(f) <= (uint64_t)volume.room);
    ferry_store_close(f->s);
    f->s = NULL;
}

static void test_space_reserve_covers_its_writes(void **state)
{
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(reserve_cases) / sizeof(reserve_cases[0]); i++)
        reserve_case_run(f, &reserve_cases[i], (int)i);
}

/* Commits the batch with partition 1 at next, and checks that the pages in use have their
 * blocks: none is past the volume's room, where a refused reservation gave blocks back. */
static void commit_at(struct fixture *f, int next)
{
    set_offset(f, 1, next);
    commit(f);
    assert_true(bytes_used(f) <= (uint64_t)volume.room);
}

/* Writes c's records with a reservation each, as apply.c does on a volume short of room: a
 * refused reservation commits the records the batch holds and goes on in a fresh batch, until
 * a fresh batch has no room for a record. Returns the records committed; *parts counts the
 * commits after a refusal. */
static int write_one_at_a_time(struct fixture *f, const struct reserve_case *c, int *parts)
{
    static char value[100001];
    size_t bytes = reserve_bytes(c, 1);
    int i = 0, committed = 0, r;

    memset(value, 'x', sizeof(value) - 1);
    begin(f);
    while (i < c->count) {
        r = ferry_store_batch_reserve(f->s, 2, bytes, f->err, sizeof(f->err));
        if (r == FERRY_STORE_NO_SPACE && i > committed) {
            (*parts)++;
            committed = i;
            commit_at(f, i);
            r = ferry_store_batch_begin(f->s, f->err, sizeof(f->err));
        } else if (r == FERRY_STORE_OK) {
            check(f, reserve_write(f, c, i++, value), FERRY_STORE_OK, "a write reserved");
        }
        if (r != FERRY_STORE_OK) {
            check(f, r, FERRY_STORE_NO_SPACE, "a fresh batch without room");
            ferry_store_batch_abort(f->s);
            return committed;
        }
    }
    commit_at(f, i);
    return i;
}

/* Asserts that the first n of c's records are in the store, whole, and the later ones are not. */
static void expect_written(struct fixture *f, const struct reserve_case *c, int n)
{
    static unsigned char key[4096];
    struct ferry_store_record rec;
    size_t len;
    int i, r;

    for (i = 0; i < c->count; i++) {
        len = reserve_key(c, i, key);
        r = get(f, key, len, &rec);
        if (c->delete) {
            check(f, r, i < n ? FERRY_STORE_NOT_FOUND : FERRY_STORE_OK, "a row deleted or not");
        } else if (i >= n && !c->key_len) {
            check(f, r, FERRY_STORE_OK, "a row not replaced");
            assert_int_equal(rec.partition, 0);
        } else if (i >= n) {
            check(f, r, FERRY_STORE_NOT_FOUND, "a row not written");
        } else {
            check(f, r, FERRY_STORE_OK, "a row written");
            assert_int_equal(rec.partition, 1);
            assert_int_equal(rec.offset, i);
            assert_int_equal(f->value.len, c->value_len);
            for (size_t b = 0; b < c->value_len; b++)
                if (f->value.data[b] != 'x')
                    fail_msg("record %d: byte %zu of its value is %d", i, b, f->value.data[b]);
        }
    }
}

/* Each case's records, a reservation each on a volume with room for a few of them per batch:
 * every case of more than one record commits in parts, a batch a refusal commits holds whole
 * what it wrote (the blocks a refusal gives back held none of its pages), some case runs out
 * of room, and the store holds exactly the records below its offset. */
static void test_space_reserve_one_at_a_time(void **state)
{
    struct fixture *f = *state;
    const struct reserve_case *c;
    int64_t want[2] = {RESERVE_ROWS, 0};
    int parts, ran_out = 0;

    for (size_t i = 0; i < sizeof(reserve_cases) / sizeof(reserve_cases[0]); i++) {
        c = &reserve_cases[i];
        parts = 0;
        reserve_open(f, "one", (int)i);
        set_volume(ENOSPC, (off_t)bytes_used(f) + (1 << 20));
        want[1] = write_one_at_a_time(f, c, &parts);
        assert_true(want[1] > 0);
        assert_true(parts > 0 || c->count == 1);
        ran_out += want[1] < c->count;
        expect_offsets(f, want, 2);
        expect_written(f, c, (int)want[1]);
        ferry_store_close(f->s);
        f->s = NULL;
    }
    assert_true(ran_out > 0);
}

/* A reservation the volume cannot hold leaves the batch whole: it commits what it holds, its
 * later writes are counted from where they were, and a fresh batch reserves from the pages the
 * commit left in use. */
static void test_space_reserve_refused_keeps_the_batch(void **state)
{
    struct fixture *f = *state;
    const int64_t ten[] = {3000, 10}, eleven[] = {3000, 11};
    char key[32];
    int i;

    f->s = open_at(f, f->path, MAP_SIZE);
    fill_rows(f, 3000);
    ferry_store_set_allocate(f->s, fake_allocate);
    set_volume(ENOSPC, (off_t)bytes_used(f) + (1 << 20));
    begin(f);
    for (i = 0; i < 9; i++) {
        snprintf(key, sizeof(key), "new-%d", i);
        put(f, key, strlen(key), "n", 1, i, NULL);
    }
    check(f, ferry_store_batch_reserve(f->s, 100000, 0, f->err, sizeof(f->err)),
          FERRY_STORE_NO_SPACE, "a reservation past the room");
    expect_in_err(f, "no disk space");
    put(f, "new-9", 5, "n", 1, 9, NULL);
    set_offset(f, 1, 10);
    commit(f);
    expect(f, "new-9", 5, "n", 9);
    expect_offsets(f, ten, 2);

    begin(f);
    check(f, ferry_store_batch_reserve(f->s, 2, 16, f->err, sizeof(f->err)), FERRY_STORE_OK,
          "a reservation a fresh batch holds");
    put(f, "new-10", 6, "n", 1, 10, NULL);
    set_offset(f, 1, 11);
    commit(f);
    expect(f, "new-10", 6, "n", 10);
    expect_offsets(f, eleven, 2);
    check(f, ferry_store_batch_reserve(f->s, 1, 0, f->err, sizeof(f->err)), FERRY_STORE_ERROR,
          "a reservation without a batch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_directories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_with_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_and_binary_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookalike_keys_are_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hash_slot_of_another_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_over_buffer_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_in_the_same_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_misuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_partition, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_cursor_across_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_long_prefixes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_cursor_orders_like_scans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_during_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_during_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_during_unsynced_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsynced_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_reserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_runs_out_in_a_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_reserve_covers_its_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_reserve_refused_keeps_the_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_space_reserve_one_at_a_time, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
