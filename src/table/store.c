/*
 * store.c - one table's LMDB environment (see store.h for the key encoding and the threads).
 *
 * A row is the value of the "rows" database: a fixed head (offset, timestamp, partition, the
 * whole key's length when the key is hashed, the content type's length), the content type with
 * its NUL, the whole key when hashed, then the value. Numbers are in host order, as LMDB's own
 * files are. "offsets" is keyed by the partition in big-endian order, so a cursor walks the
 * partitions in order.
 *
 * Disk space: the batch functions count, before each write, the pages the write may take beyond
 * the pages in use, and reserve the data file's blocks up to there (see the STORE_*_PAGES
 * bounds below). A batch only takes pages past the last commit's last page or from LMDB's free
 * list, whose pages were all written once and so have their blocks. ferry_store_batch_reserve()
 * counts many writes ahead, as the sum of what each would be counted, and the writes then draw
 * on that count (the batch's credit) instead of counting again: so a caller learns that the
 * volume is short before it writes any of them, while the batch can still be committed.
 *
 * Reads take a read transaction from a small pool: with MDB_NOTLS a reset transaction keeps its
 * reader slot, so renewing it costs no allocation and no reader-table lock, which a fresh
 * mdb_txn_begin() per read would (bench/store_get.c measures both).
 */
#include "table/store.h"
#include "table/sync_marker.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

/* The first byte of every LMDB key of "rows": lets the empty table key be stored. */
#define KEY_TAG 0x6b
#define KEY_HASH_LEN 32

/* Reader slots in the lock file: pooled transactions hold one each, as do running reads. */
#define STORE_MAX_READERS 512
/* Reset read transactions kept for reuse. */
#define READER_POOL_MAX 64
/* The longest path a store may have (the directory, not its files). */
#define STORE_PATH_MAX 4000

/* Row head: offsets of its fields. */
#define ROW_OFFSET 0
#define ROW_TIMESTAMP 8
#define ROW_PARTITION 16
#define ROW_KEY_LEN 20 /* uint32: the whole key's length when it is hashed, else 0 */
#define ROW_CTYPE_LEN 24
#define ROW_HEAD 25

/* Disk space. A write (a put or a delete) is counted STORE_OP_PAGES pages beyond the pages in
 * use: copies of its leaf and of the sibling a delete may merge it with, a new leaf and a new
 * branch from splits. It is also counted the branch pages above its leaf, each once per batch:
 * the trees' depth until the branch pages of the trees are all counted. A row longer than
 * STORE_NODE_INLINE of a page goes to overflow pages of its own. This bounds a transaction's
 * new pages, not each write's: a split that climbs the whole tree takes more than its write
 * is counted, which the writes that dirty a leaf already copied (most of them) and
 * STORE_TXN_PAGES make up for. It is far above what a transaction usually takes: a loading
 * transaction of millions of records reserves up to max_size. */
#define STORE_OP_PAGES 4
#define STORE_NODE_INLINE(page) ((page) / 2 - 64)
#define STORE_PAGE_HEAD 16
/* A put's node (its LMDB key and row) is at most its key, value and content type plus
 * STORE_NODE_EXTRA: the LMDB key at its longest (a hashed key's part and hash, besides the
 * whole key in the row), the row's head and the content type's NUL. It is also at most twice
 * them plus STORE_NODE_EXTRA_SHORT, less for short rows: a short key is in the LMDB key after
 * a tag byte, and a hashed key (over FERRY_STORE_KEY_INLINE bytes) is longer than its part. */
#define STORE_NODE_EXTRA (FERRY_STORE_CURSOR_MAX + ROW_HEAD + 1)
#define STORE_NODE_EXTRA_SHORT (1 + KEY_HASH_LEN + ROW_HEAD + 1)
/* Pages a write transaction may take besides its writes: the roots of the main, meta and
 * offsets databases, new roots as trees grow taller, and the free list's tree at commit. The
 * free list's records hold a page number (8 bytes) for each page freed or free, at most one
 * per page in use: one page more per STORE_FREE_LIST_SHARE of them covers twice that. */
#define STORE_TXN_PAGES 64
#define STORE_FREE_LIST_SHARE 256
/* LMDB's lock file is written through a map as well (its reader slots): its blocks are
 * reserved before LMDB maps it, this long for a new one. LMDB needs 32,832 bytes for
 * STORE_MAX_READERS, and uses the file's length when it is longer (more reader slots). */
#define STORE_LOCK_BYTES ((off_t)64 * 1024)
/* Blocks reserved past what the open batch may take, so that most writes find theirs there
 * and only a comparison is spent. */
#define STORE_ALLOC_STEP ((size_t)8 * 1024 * 1024)

#define META_FORMAT "format"
#define META_CLUSTER_ID "cluster_id"
#define META_TOPIC "topic"
#define META_PARTITIONS "partitions"

struct ferry_store_s {
    MDB_env *env;
    MDB_dbi rows, offsets, meta;
    MDB_txn *batch; /* the open write batch, or NULL */
    pthread_mutex_t pool_lock;
    MDB_txn *pool[READER_POOL_MAX]; /* reset read transactions */
    int pooled;
    char *path;
    int unsynced; /* commits skip their sync (ferry_store_set_synced) */
    int emptied;  /* open found a stale unsynced marker and emptied the store */
    /* Disk space (the writer's): data.mdb, its blocks known to exist and what a batch needs. */
    ferry_store_allocate_fn allocate; /* posix_fallocate, or a test's */
    int fd;                           /* data.mdb */
    size_t page, map_end;             /* LMDB's page size; the map's size, the file's length */
    size_t reserved;                  /* data.mdb's bytes from the start that have disk blocks */
    size_t need;                      /* the open transaction's pages may reach up to here */
    size_t refused;     /* where a reservation was refused for want of space; 0: none */
    size_t depth;       /* of the deepest tree a write changes, at the transaction's start */
    size_t branch_left; /* branch pages whose copies the open transaction has not counted */
    size_t credit;      /* pages counted (and reserved) ahead by ferry_store_batch_reserve() */
};

/* An encoded key: the LMDB key of a table key. */
struct enc_key {
    unsigned char data[FERRY_STORE_CURSOR_MAX];
    size_t len;
    int hashed;
};

static int lmdb_fail(const ferry_store *s, const char *what, int rc, char *errstr,
                     size_t errstr_size)
{
    snprintf(errstr, errstr_size, "table store '%s': %s: %s", s->path, what, mdb_strerror(rc));
    return rc == MDB_MAP_FULL ? FERRY_STORE_FULL : FERRY_STORE_ERROR;
}

static int store_fail(const ferry_store *s, const char *what, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "table store '%s': %s", s->path, what);
    return FERRY_STORE_ERROR;
}

static void copy_bytes(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
}

static int same_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* LMDB's default key order: bytes, then the shorter first. */
static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;

    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int encode_key(const ferry_store *s, const void *key, size_t len, struct enc_key *ek,
                      char *errstr, size_t errstr_size)
{
    int rc;

    ek->data[0] = KEY_TAG;
    ek->hashed = len > FERRY_STORE_KEY_INLINE;
    if (!ek->hashed) {
        copy_bytes(ek->data + 1, key, len);
        ek->len = 1 + len;
        return FERRY_STORE_OK;
    }
    memcpy(ek->data + 1, key, FERRY_STORE_KEY_INLINE);
    rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, key, len, ek->data + 1 + FERRY_STORE_KEY_INLINE);
    if (rc < 0) {
        snprintf(errstr, errstr_size, "table store '%s': sha-256 of a %zu-byte key: %s", s->path,
                 len, gnutls_strerror(rc));
        return FERRY_STORE_ERROR;
    }
    ek->len = FERRY_STORE_CURSOR_MAX;
    return FERRY_STORE_OK;
}

static int64_t get_i64(const unsigned char *p)
{
    int64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

/* Decodes a row; every pointer of e points into k and v. Returns 0, or -1 when it is malformed. */
static int decode_row(const MDB_val *k, const MDB_val *v, struct ferry_store_entry *e)
{
    const unsigned char *p = v->mv_data;
    size_t pos = ROW_HEAD, ctype_len, key_len;

    if (v->mv_size < ROW_HEAD || k->mv_size < 1)
        return -1;
    e->row.offset = get_i64(p + ROW_OFFSET);
    e->row.timestamp_ms = get_i64(p + ROW_TIMESTAMP);
    e->row.partition = (int32_t)get_u32(p + ROW_PARTITION);
    key_len = get_u32(p + ROW_KEY_LEN);
    ctype_len = p[ROW_CTYPE_LEN];
    e->row.content_type = NULL;
    if (ctype_len) {
        if (v->mv_size - pos < ctype_len + 1 || p[pos + ctype_len] != '\0')
            return -1;
        e->row.content_type = (const char *)p + pos;
        pos += ctype_len + 1;
    }
    if (k->mv_size == FERRY_STORE_CURSOR_MAX) {
        if (key_len <= FERRY_STORE_KEY_INLINE || v->mv_size - pos < key_len)
            return -1;
        e->key = p + pos;
        e->key_len = key_len;
        pos += key_len;
    } else {
        if (key_len)
            return -1;
        e->key = (const unsigned char *)k->mv_data + 1;
        e->key_len = k->mv_size - 1;
    }
    e->value = p + pos;
    e->value_len = v->mv_size - pos;
    e->cursor = k->mv_data;
    e->cursor_len = k->mv_size;
    return 0;
}

/* Returns a read transaction, renewed from the pool when one is there. */
static int read_begin(ferry_store *s, MDB_txn **txn)
{
    MDB_txn *t = NULL;
    int rc;

    pthread_mutex_lock(&s->pool_lock);
    if (s->pooled)
        t = s->pool[--s->pooled];
    pthread_mutex_unlock(&s->pool_lock);
    if (!t)
        return mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    rc = mdb_txn_renew(t);
    if (rc) {
        mdb_txn_abort(t);
        return rc;
    }
    *txn = t;
    return 0;
}

/* Ends a read transaction from read_begin(); accepts NULL. */
static void read_end(ferry_store *s, MDB_txn *txn)
{
    if (!txn)
        return;
    mdb_txn_reset(txn);
    pthread_mutex_lock(&s->pool_lock);
    if (s->pooled < READER_POOL_MAX) {
        s->pool[s->pooled++] = txn;
        txn = NULL;
    }
    pthread_mutex_unlock(&s->pool_lock);
    if (txn)
        mdb_txn_abort(txn);
}

/* Learns the data file and the map's size, once the environment is open. */
static int space_init(ferry_store *s, char *errstr, size_t errstr_size)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_get_fd(s->env, &s->fd);

    if (!rc)
        rc = mdb_env_stat(s->env, &st);
    if (!rc)
        rc = mdb_env_info(s->env, &info);
    if (rc)
        return lmdb_fail(s, "reading its sizes", rc, errstr, errstr_size);
    s->page = st.ms_psize;
    s->map_end = info.me_mapsize;
    if (!s->allocate)
        s->allocate = posix_fallocate;
    return FERRY_STORE_OK;
}

/* Reserves the blocks of data.mdb in [from, to). Returns 0 or an errno value. A reservation
 * the volume could not hold whole may have taken blocks all the same (ext4 and XFS keep what
 * they got), and with them the last free space of everything else on the volume: those are
 * given back, but for STORE_TXN_PAGES after from, which LMDB may have written if a transaction
 * took a few pages more than counted. */
static int allocate_range(ferry_store *s, size_t from, size_t to)
{
    size_t keep = from + STORE_TXN_PAGES * s->page;
    int rc;

    if (to <= from)
        return 0;
    do
        rc = s->allocate(s->fd, (off_t)from, (off_t)(to - from));
    while (rc == EINTR);
    if ((rc == ENOSPC || rc == EDQUOT) && to > keep) /* holes unsupported: nothing was kept */
        (void)fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)keep,
                        (off_t)(to - keep));
    return rc;
}

static int space_fail(ferry_store *s, size_t end, int rc, char *errstr, size_t errstr_size)
{
    unsigned long long avail = 0;
    struct statvfs vfs;

    if (rc != ENOSPC && rc != EDQUOT) {
        snprintf(errstr, errstr_size, "table store '%s': reserving disk blocks of data.mdb: %s",
                 s->path, strerror(rc));
        return FERRY_STORE_ERROR;
    }
    if (fstatvfs(s->fd, &vfs) == 0)
        avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    s->refused = end;
    snprintf(errstr, errstr_size,
             "table store '%s': no disk space: the volume has %llu bytes free (%s), and data.mdb "
             "needs disk blocks up to byte %zu for the next writes, %zu bytes have them",
             s->path, avail, strerror(rc), end, s->reserved);
    return FERRY_STORE_NO_SPACE;
}

/* Makes sure data.mdb has its blocks up to end, and STORE_ALLOC_STEP more where the volume has
 * room. Returns FERRY_STORE_OK, FERRY_STORE_NO_SPACE or FERRY_STORE_ERROR. */
static int space_reserve(ferry_store *s, size_t end, char *errstr, size_t errstr_size)
{
    size_t ahead = s->map_end - end > STORE_ALLOC_STEP ? end + STORE_ALLOC_STEP : s->map_end;
    int rc = allocate_range(s, s->reserved, ahead);

    if (rc == ENOSPC || rc == EDQUOT) {
        ahead = end; /* room for these writes, if not for the step */
        rc = allocate_range(s, s->reserved, ahead);
    }
    if (rc == EOPNOTSUPP || rc == EINVAL) {
        ahead = s->map_end; /* the file system cannot reserve: write as LMDB does */
        rc = 0;
    }
    if (rc)
        return space_fail(s, end, rc, errstr, errstr_size);
    s->reserved = ahead;
    s->refused = 0;
    return FERRY_STORE_OK;
}

/* Counts pages more that the open transaction may take, reserving their blocks when they pass
 * the reserved ones. Never past the map: LMDB refuses those pages itself (MDB_MAP_FULL). */
static int space_charge(ferry_store *s, size_t pages, char *errstr, size_t errstr_size)
{
    size_t room = (s->map_end - s->need) / s->page;

    s->need = pages < room ? s->need + pages * s->page : s->map_end;
    if (s->need <= s->reserved)
        return FERRY_STORE_OK;
    return space_reserve(s, s->need, errstr, errstr_size);
}

/* Counts the pages one write of a node of node_len bytes (its LMDB key and value) may take,
 * drawing first on what ferry_store_batch_reserve() counted ahead. */
static int space_write(ferry_store *s, size_t node_len, char *errstr, size_t errstr_size)
{
    size_t path = s->branch_left < s->depth ? s->branch_left : s->depth;
    size_t pages = STORE_OP_PAGES + path;

    s->branch_left -= path;
    if (node_len > STORE_NODE_INLINE(s->page))
        pages += (node_len + STORE_PAGE_HEAD + s->page - 1) / s->page;
    if (pages <= s->credit) {
        s->credit -= pages;
        return FERRY_STORE_OK;
    }
    pages -= s->credit;
    s->credit = 0;
    return space_charge(s, pages, errstr, errstr_size);
}

static size_t add_capped(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t mul_capped(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* At least the sum of what space_write() would count for `writes` writes in a row (puts,
 * deletes, offsets) whose puts hold `bytes` of keys, values and content types in all: each
 * write's STORE_OP_PAGES, the branch pages not counted yet (each write takes up to depth of
 * them), and the overflow pages of nodes over STORE_NODE_INLINE, which at most nodes /
 * (STORE_NODE_INLINE + 1) of them are, each taking at most its bytes' pages and one more. */
static size_t space_ahead(const ferry_store *s, size_t writes, size_t bytes)
{
    size_t path = mul_capped(writes, s->depth), nodes, twice, large, overflow = 0;

    if (path > s->branch_left)
        path = s->branch_left;
    nodes = add_capped(bytes, mul_capped(writes, STORE_NODE_EXTRA));
    twice = add_capped(mul_capped(bytes, 2), mul_capped(writes, STORE_NODE_EXTRA_SHORT));
    if (twice < nodes)
        nodes = twice;
    large = nodes / (STORE_NODE_INLINE(s->page) + 1);
    if (large > writes)
        large = writes;
    if (large)
        overflow = add_capped(nodes, mul_capped(large, s->page + STORE_PAGE_HEAD)) / s->page + 1;
    return add_capped(add_capped(mul_capped(writes, STORE_OP_PAGES), path), overflow);
}

/* Starts counting a write transaction's pages from the end of the pages in use (the last
 * commit's: the transaction holds LMDB's writer lock). */
static int space_start(ferry_store *s, char *errstr, size_t errstr_size)
{
    MDB_envinfo info;
    size_t in_use;
    int rc = mdb_env_info(s->env, &info);

    if (rc)
        return lmdb_fail(s, "reading its size", rc, errstr, errstr_size);
    in_use = (size_t)info.me_last_pgno + 1;
    s->need = in_use < s->map_end / s->page ? in_use * s->page : s->map_end;
    if (s->reserved < s->need)
        s->reserved = s->need;
    s->depth = 0;
    s->branch_left = 0;
    s->credit = 0;
    return space_charge(s, STORE_TXN_PAGES + in_use / STORE_FREE_LIST_SHARE, errstr, errstr_size);
}

/* As space_start(), for a batch, whose writes also copy branch pages of the rows and offsets. */
static int space_begin(ferry_store *s, MDB_txn *txn, char *errstr, size_t errstr_size)
{
    MDB_stat rows, offsets;
    int rc = mdb_stat(txn, s->rows, &rows), result;

    if (!rc)
        rc = mdb_stat(txn, s->offsets, &offsets);
    if (rc)
        return lmdb_fail(s, "reading its size", rc, errstr, errstr_size);
    result = space_start(s, errstr, errstr_size);
    s->depth = rows.ms_depth > offsets.ms_depth ? rows.ms_depth : offsets.ms_depth;
    s->branch_left = rows.ms_branch_pages + offsets.ms_branch_pages;
    return result;
}

/* Nonzero for a data file holding only LMDB's two meta pages: opening the databases writes. */
static int space_new_file(ferry_store *s)
{
    MDB_envinfo info;

    return mdb_env_info(s->env, &info) == 0 && info.me_last_pgno <= 1;
}

/* Creates path and its missing parents, like mkdir -p. */
static int make_dirs(const char *path, char *errstr, size_t errstr_size)
{
    char buf[STORE_PATH_MAX + 1];
    size_t len = strlen(path), i;

    if (len == 0 || len > STORE_PATH_MAX) {
        snprintf(errstr, errstr_size, "table store '%.64s': path must be 1 to %d bytes", path,
                 STORE_PATH_MAX);
        return FERRY_STORE_ERROR;
    }
    memcpy(buf, path, len + 1);
    for (i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST) {
            snprintf(errstr, errstr_size, "table store '%s': mkdir '%s': %s", path, buf,
                     strerror(errno));
            return FERRY_STORE_ERROR;
        }
        buf[i] = path[i];
    }
    return FERRY_STORE_OK;
}

static int put_bytes(MDB_txn *txn, MDB_dbi dbi, const char *name, const void *data, size_t len)
{
    MDB_val k = {strlen(name), (void *)name};
    MDB_val v = {len, (void *)data};

    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Reads a meta string into out (cap + 1 bytes); a missing one reads as "". */
static int get_string(MDB_txn *txn, MDB_dbi dbi, const char *name, char *out, size_t cap)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, dbi, &k, &v);

    out[0] = '\0';
    if (rc)
        return rc;
    if (v.mv_size > cap)
        return MDB_CORRUPTED;
    copy_bytes(out, v.mv_data, v.mv_size);
    out[v.mv_size] = '\0';
    return 0;
}

static int get_i32(MDB_txn *txn, MDB_dbi dbi, const char *name, int32_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, dbi, &k, &v);

    if (rc)
        return rc;
    if (v.mv_size != sizeof(*out))
        return MDB_CORRUPTED;
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

/* Opens the named databases and writes the format of a new store, or checks an old one's. */
static int open_dbs(ferry_store *s, char *errstr, size_t errstr_size)
{
    MDB_txn *txn = NULL;
    int32_t format = FERRY_STORE_FORMAT;
    int rc, result = FERRY_STORE_OK;

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (!rc && space_new_file(s))
        result = space_start(s, errstr, errstr_size);
    if (result)
        goto out;
    if (!rc)
        rc = mdb_dbi_open(txn, "rows", MDB_CREATE, &s->rows);
    if (!rc)
        rc = mdb_dbi_open(txn, "offsets", MDB_CREATE, &s->offsets);
    if (!rc)
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta);
    if (!rc)
        rc = get_i32(txn, s->meta, META_FORMAT, &format);
    if (rc == MDB_NOTFOUND)
        rc = put_bytes(txn, s->meta, META_FORMAT, &format, sizeof(format));
    if (rc) {
        result = lmdb_fail(s, "creating its databases", rc, errstr, errstr_size);
        goto out;
    }
    if (format != FERRY_STORE_FORMAT) {
        snprintf(errstr, errstr_size,
                 "table store '%s': format %d, this ferry reads format %d: remove the directory "
                 "to rebuild the table",
                 s->path, (int)format, FERRY_STORE_FORMAT);
        result = FERRY_STORE_ERROR;
        goto out;
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc)
        result = lmdb_fail(s, "creating its databases", rc, errstr, errstr_size);
out:
    mdb_txn_abort(txn);
    return result;
}

/* Reserves the blocks of the lock file (creating it), so that LMDB's writes into its map find
 * them; an existing one keeps its length. A file system that cannot reserve them is left to
 * LMDB, as the data file is. */
static int reserve_lock_file(ferry_store *s, char *errstr, size_t errstr_size)
{
    char file[STORE_PATH_MAX + 32];
    struct stat st;
    int fd, rc;

    snprintf(file, sizeof(file), "%s/lock.mdb", s->path);
    fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "table store '%s': opening '%s': %s", s->path, file,
                 strerror(errno));
        return FERRY_STORE_ERROR;
    }
    rc = fstat(fd, &st) ? errno : 0;
    if (!rc)
        rc = posix_fallocate(fd, 0, st.st_size > STORE_LOCK_BYTES ? st.st_size : STORE_LOCK_BYTES);
    close(fd);
    if (rc && rc != EOPNOTSUPP && rc != EINVAL) {
        snprintf(errstr, errstr_size, "table store '%s': reserving disk blocks of '%s': %s",
                 s->path, file, strerror(rc));
        return FERRY_STORE_ERROR;
    }
    return FERRY_STORE_OK;
}

static int open_env(ferry_store *s, size_t max_size, char *errstr, size_t errstr_size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    int rc, dead;

    if (max_size > SIZE_MAX - page)
        return store_fail(s, "max_size is too large", errstr, errstr_size);
    max_size = (max_size + page - 1) / page * page;
    if (reserve_lock_file(s, errstr, errstr_size))
        return FERRY_STORE_ERROR;
    rc = mdb_env_create(&s->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(s->env, 3);
    if (!rc)
        rc = mdb_env_set_maxreaders(s->env, STORE_MAX_READERS);
    if (!rc)
        rc = mdb_env_set_mapsize(s->env, max_size);
    if (!rc)
        rc = mdb_env_open(s->env, s->path, MDB_NOTLS | MDB_NOMETASYNC | MDB_WRITEMAP, 0640);
    if (!rc)
        rc = mdb_reader_check(s->env, &dead);
    if (rc)
        return lmdb_fail(s, "opening its environment", rc, errstr, errstr_size);
    if (mdb_env_get_maxkeysize(s->env) < FERRY_STORE_CURSOR_MAX)
        return store_fail(s, "liblmdb's key limit is below 511 bytes", errstr, errstr_size);
    return space_init(s, errstr, errstr_size);
}

static int remove_file(const char *dir, const char *name, char *errstr, size_t errstr_size)
{
    char file[STORE_PATH_MAX + 32];

    snprintf(file, sizeof(file), "%s/%s", dir, name);
    if (unlink(file) != 0 && errno != ENOENT) {
        snprintf(errstr, errstr_size, "table store '%s': removing '%s': %s", dir, file,
                 strerror(errno));
        return FERRY_STORE_ERROR;
    }
    return FERRY_STORE_OK;
}

/* Looks at the unsynced marker before the environment opens: a store left unsynced by a system
 * that went down since is emptied; one left by ferry alone is whole, and synced once open. */
static int check_marker(ferry_store *s, char *errstr, size_t errstr_size)
{
    int marker = ferry_sync_marker_check(s->path, errstr, errstr_size);

    if (marker < 0)
        return FERRY_STORE_ERROR;
    s->unsynced = marker == FERRY_SYNC_MARKER_THIS_BOOT;
    if (marker != FERRY_SYNC_MARKER_OTHER_BOOT)
        return FERRY_STORE_OK;
    s->emptied = 1;
    if (remove_file(s->path, "data.mdb", errstr, errstr_size) ||
        remove_file(s->path, "lock.mdb", errstr, errstr_size) ||
        ferry_sync_marker_clear(s->path, errstr, errstr_size))
        return FERRY_STORE_ERROR;
    return FERRY_STORE_OK;
}

ferry_store *ferry_store_open(const char *path, size_t max_size, char *errstr, size_t errstr_size)
{
    ferry_store *s = calloc(1, sizeof(*s));
    int result = FERRY_STORE_ERROR;

    if (!s || pthread_mutex_init(&s->pool_lock, NULL) != 0) {
        free(s);
        snprintf(errstr, errstr_size, "table store '%s': out of memory", path);
        return NULL;
    }
    s->path = strdup(path);
    if (!s->path) {
        snprintf(errstr, errstr_size, "table store '%s': out of memory", path);
        goto out;
    }
    result = make_dirs(path, errstr, errstr_size);
    if (!result)
        result = check_marker(s, errstr, errstr_size);
    if (!result)
        result = open_env(s, max_size, errstr, errstr_size);
    if (!result)
        result = open_dbs(s, errstr, errstr_size);
    if (!result && s->unsynced)
        result = ferry_store_set_synced(s, 1, errstr, errstr_size);
out:
    if (result) {
        s->unsynced = 0; /* the marker stays: the next open looks again */
        ferry_store_close(s);
        return NULL;
    }
    return s;
}

int ferry_store_was_emptied(const ferry_store *store)
{
    return store->emptied;
}

int ferry_store_set_synced(ferry_store *store, int synced, char *errstr, size_t errstr_size)
{
    int rc, marked;

    if (store->batch)
        return store_fail(store, "a batch is open", errstr, errstr_size);
    if (synced ? !store->unsynced : store->unsynced) /* already so */
        return FERRY_STORE_OK;
    if (!synced) {
        marked = ferry_sync_marker_set(store->path, errstr, errstr_size);
        if (marked)
            return marked < 0 ? FERRY_STORE_ERROR : FERRY_STORE_OK;
        store->unsynced = 1;
        rc = mdb_env_set_flags(store->env, MDB_NOSYNC, 1);
        return rc ? lmdb_fail(store, "turning syncs off", rc, errstr, errstr_size) : FERRY_STORE_OK;
    }
    rc = mdb_env_set_flags(store->env, MDB_NOSYNC, 0);
    if (!rc)
        rc = mdb_env_sync(store->env, 1);
    if (rc)
        return lmdb_fail(store, "syncing", rc, errstr, errstr_size);
    store->unsynced = 0;
    return ferry_sync_marker_clear(store->path, errstr, errstr_size) ? FERRY_STORE_ERROR
                                                                     : FERRY_STORE_OK;
}

void ferry_store_close(ferry_store *store)
{
    char why[512];

    if (!store)
        return;
    ferry_store_batch_abort(store);
    /* Left marked when this fails: the next open after a system crash empties the store. */
    if (store->env && store->unsynced)
        (void)ferry_store_set_synced(store, 1, why, sizeof(why));
    while (store->pooled)
        mdb_txn_abort(store->pool[--store->pooled]);
    if (store->env)
        mdb_env_close(store->env);
    pthread_mutex_destroy(&store->pool_lock);
    free(store->path);
    free(store);
}

const char *ferry_store_path(const ferry_store *store)
{
    return store->path;
}

int ferry_store_destroy_files(const char *path, char *errstr, size_t errstr_size)
{
    int result;

    if (strlen(path) > STORE_PATH_MAX) {
        snprintf(errstr, errstr_size, "table store '%.64s': path is over %d bytes", path,
                 STORE_PATH_MAX);
        return FERRY_STORE_ERROR;
    }
    result = remove_file(path, "data.mdb", errstr, errstr_size);
    if (!result)
        result = remove_file(path, "lock.mdb", errstr, errstr_size);
    if (!result && ferry_sync_marker_clear(path, errstr, errstr_size))
        result = FERRY_STORE_ERROR;
    if (!result && rmdir(path) != 0 && errno != ENOENT) {
        snprintf(errstr, errstr_size, "table store '%s': removing the directory: %s", path,
                 strerror(errno));
        result = FERRY_STORE_ERROR;
    }
    return result;
}

/* Syncs the directory holding path (best effort: the renames are done either way, and a
 * system crash before they reach the disk finds one store or the other whole). */
static void sync_parent(const char *path)
{
    char parent[STORE_PATH_MAX + 1];
    char *slash;

    snprintf(parent, sizeof(parent), "%s", path);
    slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), ".");
    ferry_file_sync_dir(parent);
}

int ferry_store_replace(const char *path, const char *from, char *errstr, size_t errstr_size)
{
    char aside[STORE_PATH_MAX + 8];

    if (strlen(path) > STORE_PATH_MAX) {
        snprintf(errstr, errstr_size, "table store '%.64s': path is over %d bytes", path,
                 STORE_PATH_MAX);
        return FERRY_STORE_ERROR;
    }
    snprintf(aside, sizeof(aside), "%s.old", path);
    if (ferry_store_destroy_files(aside, errstr, errstr_size)) /* left by an earlier swap */
        return FERRY_STORE_ERROR;
    if (rename(path, aside) != 0) {
        snprintf(errstr, errstr_size, "table store '%s': moving it aside to '%s': %s", path, aside,
                 strerror(errno));
        return FERRY_STORE_ERROR;
    }
    if (rename(from, path) != 0) {
        int err = errno;
        if (rename(aside, path) != 0)
            snprintf(errstr, errstr_size, "table store '%s': cannot move '%s' in (%s) nor back",
                     path, from, strerror(err));
        else
            snprintf(errstr, errstr_size, "table store '%s': moving '%s' in: %s", path, from,
                     strerror(err));
        return FERRY_STORE_ERROR;
    }
    sync_parent(path);
    errstr[0] = '\0';
    if (ferry_store_destroy_files(aside, errstr, errstr_size))
        return FERRY_STORE_OK; /* errstr says what is left */
    errstr[0] = '\0';
    return FERRY_STORE_OK;
}

int ferry_store_batch_begin(ferry_store *store, char *errstr, size_t errstr_size)
{
    int rc;

    if (store->batch)
        return store_fail(store, "a batch is already open", errstr, errstr_size);
    rc = mdb_txn_begin(store->env, NULL, 0, &store->batch);
    if (rc) {
        store->batch = NULL;
        return lmdb_fail(store, "beginning a batch", rc, errstr, errstr_size);
    }
    rc = space_begin(store, store->batch, errstr, errstr_size);
    if (rc)
        ferry_store_batch_abort(store);
    return rc;
}

int ferry_store_space_retry(ferry_store *store, char *errstr, size_t errstr_size)
{
    if (store->batch)
        return store_fail(store, "a batch is open", errstr, errstr_size);
    if (!store->refused)
        return FERRY_STORE_OK;
    return space_reserve(store, store->refused, errstr, errstr_size);
}

void ferry_store_set_allocate(ferry_store *store, ferry_store_allocate_fn fn)
{
    store->allocate = fn ? fn : posix_fallocate;
    store->reserved = 0; /* the next batch asks fn for its blocks */
}

void ferry_store_batch_abort(ferry_store *store)
{
    if (!store->batch)
        return;
    mdb_txn_abort(store->batch);
    store->batch = NULL;
}

static int need_batch(ferry_store *s, char *errstr, size_t errstr_size)
{
    if (s->batch)
        return FERRY_STORE_OK;
    return store_fail(s, "no batch is open", errstr, errstr_size);
}

int ferry_store_batch_reserve(ferry_store *store, size_t writes, size_t bytes, char *errstr,
                              size_t errstr_size)
{
    size_t pages, need = store->need;
    int result = need_batch(store, errstr, errstr_size);

    if (result)
        return result;
    pages = space_ahead(store, writes, bytes);
    if (pages <= store->credit)
        return FERRY_STORE_OK;
    result = space_charge(store, pages - store->credit, errstr, errstr_size);
    if (result) {
        store->need = need; /* the batch goes on as it was, its writes all counted */
        return result;
    }
    store->credit = pages;
    return FERRY_STORE_OK;
}

/* Checks a row's sizes and returns its length, or 0 when it cannot be stored. */
static size_t row_size(size_t key_len, int hashed, size_t ctype_len, size_t value_len)
{
    size_t head = ROW_HEAD + (ctype_len ? ctype_len + 1 : 0) + (hashed ? key_len : 0);

    if (key_len > UINT32_MAX || value_len > SIZE_MAX - head)
        return 0;
    return head + value_len;
}

static void write_row(unsigned char *p, const void *key, size_t key_len, int hashed,
                      const void *value, size_t value_len, const struct ferry_store_row *row,
                      size_t ctype_len)
{
    uint32_t stored_key_len = hashed ? (uint32_t)key_len : 0;
    size_t pos = ROW_HEAD;

    memcpy(p + ROW_OFFSET, &row->offset, sizeof(row->offset));
    memcpy(p + ROW_TIMESTAMP, &row->timestamp_ms, sizeof(row->timestamp_ms));
    memcpy(p + ROW_PARTITION, &row->partition, sizeof(row->partition));
    memcpy(p + ROW_KEY_LEN, &stored_key_len, sizeof(stored_key_len));
    p[ROW_CTYPE_LEN] = (unsigned char)ctype_len;
    if (ctype_len) {
        memcpy(p + pos, row->content_type, ctype_len + 1);
        pos += ctype_len + 1;
    }
    if (hashed) {
        memcpy(p + pos, key, key_len);
        pos += key_len;
    }
    copy_bytes(p + pos, value, value_len);
}

int ferry_store_batch_put(ferry_store *store, const void *key, size_t key_len, const void *value,
                          size_t value_len, const struct ferry_store_row *row, char *errstr,
                          size_t errstr_size)
{
    size_t ctype_len = row->content_type ? strlen(row->content_type) : 0;
    struct enc_key ek;
    MDB_val k, v;
    int result, rc;

    result = need_batch(store, errstr, errstr_size);
    if (result)
        goto out;
    if (ctype_len > FERRY_STORE_CONTENT_TYPE_MAX) {
        result = store_fail(store, "content type over 255 bytes", errstr, errstr_size);
        goto out;
    }
    result = encode_key(store, key, key_len, &ek, errstr, errstr_size);
    if (result)
        goto out;
    v.mv_size = row_size(key_len, ek.hashed, ctype_len, value_len);
    if (!v.mv_size) {
        result = store_fail(store, "row too large", errstr, errstr_size);
        goto out;
    }
    k.mv_data = ek.data;
    k.mv_size = ek.len;
    result = space_write(store, k.mv_size + v.mv_size, errstr, errstr_size);
    if (result)
        goto out;
    rc = mdb_put(store->batch, store->rows, &k, &v, MDB_RESERVE);
    if (rc) {
        result = lmdb_fail(store, "writing a row", rc, errstr, errstr_size);
        goto out;
    }
    write_row(v.mv_data, key, key_len, ek.hashed, value, value_len, row, ctype_len);
out:
    if (result)
        ferry_store_batch_abort(store);
    return result;
}

/* Whether the row at k holds key: always for a short key; for a hashed one, the whole key must
 * match (else its slot belongs to another key with the same hash). */
static int row_holds(const MDB_val *k, const MDB_val *v, const void *key, size_t key_len)
{
    struct ferry_store_entry e;

    if (decode_row(k, v, &e))
        return -1;
    return same_bytes(e.key, e.key_len, key, key_len);
}

int ferry_store_batch_delete(ferry_store *store, const void *key, size_t key_len, char *errstr,
                             size_t errstr_size)
{
    struct enc_key ek;
    MDB_val k, v;
    int result, rc = 0;

    result = need_batch(store, errstr, errstr_size);
    if (!result)
        result = encode_key(store, key, key_len, &ek, errstr, errstr_size);
    if (!result)
        result = space_write(store, 0, errstr, errstr_size);
    if (result)
        goto out;
    k.mv_data = ek.data;
    k.mv_size = ek.len;
    if (ek.hashed) {
        rc = mdb_get(store->batch, store->rows, &k, &v);
        if (!rc && row_holds(&k, &v, key, key_len) == 0)
            goto out; /* the slot is another key's */
    }
    if (!rc)
        rc = mdb_del(store->batch, store->rows, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        result = lmdb_fail(store, "deleting a row", rc, errstr, errstr_size);
out:
    if (result)
        ferry_store_batch_abort(store);
    return result;
}

static void partition_key(int32_t partition, unsigned char out[4])
{
    uint32_t p = (uint32_t)partition;

    out[0] = (unsigned char)(p >> 24);
    out[1] = (unsigned char)(p >> 16);
    out[2] = (unsigned char)(p >> 8);
    out[3] = (unsigned char)p;
}

int ferry_store_batch_set_offset(ferry_store *store, int32_t partition, int64_t next_offset,
                                 char *errstr, size_t errstr_size)
{
    unsigned char pk[4];
    MDB_val k = {sizeof(pk), pk}, v = {sizeof(next_offset), &next_offset};
    int result, rc;

    result = need_batch(store, errstr, errstr_size);
    if (result)
        goto out;
    if (partition < 0 || next_offset < 0) {
        result = store_fail(store, "negative partition or offset", errstr, errstr_size);
        goto out;
    }
    partition_key(partition, pk);
    result = space_write(store, 0, errstr, errstr_size);
    if (result)
        goto out;
    rc = mdb_put(store->batch, store->offsets, &k, &v, 0);
    if (rc)
        result = lmdb_fail(store, "writing an offset", rc, errstr, errstr_size);
out:
    if (result)
        ferry_store_batch_abort(store);
    return result;
}

static int cursor_valid(const void *cursor, size_t len);

/* A drop's position: where it looks and what it reports. */
struct drop {
    int32_t partition;
    size_t limit;
    unsigned char *next;
    size_t *next_len;
    int *more;
    int space; /* a FERRY_STORE_* result when counting a delete's pages failed (errstr set) */
};

/* Deletes rows of the drop's partition from the cursor's position on, looking at up to its
 * limit of rows, and keeps the last key looked at in next. Returns 0 with *more set, -1 when
 * the space for a delete was refused (d->space), or an LMDB error. */
static int drop_rows(ferry_store *s, MDB_cursor *cur, int rc, MDB_val *k, MDB_val *v,
                     struct drop *d, char *errstr, size_t errstr_size)
{
    unsigned char *next = d->next;
    size_t *next_len = d->next_len, seen = 0;

    for (; rc == 0 && seen < d->limit; seen++) {
        const unsigned char *row = v->mv_data;
        copy_bytes(next, k->mv_data, k->mv_size);
        *next_len = k->mv_size;
        if (v->mv_size >= ROW_HEAD && (int32_t)get_u32(row + ROW_PARTITION) == d->partition) {
            d->space = space_write(s, 0, errstr, errstr_size);
            if (d->space)
                return -1;
            rc = mdb_cursor_del(cur, 0);
            if (rc)
                return rc;
            rc = mdb_cursor_get(cur, k, v, MDB_GET_CURRENT);
            if (rc == MDB_NOTFOUND ||
                (rc == 0 && *next_len == k->mv_size && !memcmp(next, k->mv_data, k->mv_size)))
                rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
            continue;
        }
        rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    }
    *d->more = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int ferry_store_batch_drop_partition(ferry_store *store, int32_t partition, const void *after,
                                     size_t after_len, size_t limit, unsigned char *next,
                                     size_t *next_len, int *more, char *errstr, size_t errstr_size)
{
    unsigned char pk[4];
    MDB_cursor *cur = NULL;
    MDB_val k = {after_len, (void *)after}, v, ok = {sizeof(pk), pk};
    struct drop d = {partition, limit, next, next_len, more, FERRY_STORE_OK};
    int result = need_batch(store, errstr, errstr_size), rc = 0;

    *more = 0;
    *next_len = 0;
    if (!result && after_len && !cursor_valid(after, after_len))
        result = store_fail(store, "not a cursor of this store", errstr, errstr_size);
    if (!result)
        rc = mdb_cursor_open(store->batch, store->rows, &cur);
    if (!result && !rc)
        rc = mdb_cursor_get(cur, &k, &v, after_len ? MDB_SET_RANGE : MDB_FIRST);
    if (!result && (!rc || rc == MDB_NOTFOUND))
        rc = drop_rows(store, cur, rc, &k, &v, &d, errstr, errstr_size);
    if (cur)
        mdb_cursor_close(cur);
    if (d.space)
        result = d.space;
    partition_key(partition, pk);
    if (!result && !rc) /* at the first batch; gone already at the later ones */
        result = space_write(store, 0, errstr, errstr_size);
    if (!result && !rc)
        rc = mdb_del(store->batch, store->offsets, &ok, NULL);
    if (!result && rc && rc != MDB_NOTFOUND)
        result = lmdb_fail(store, "dropping a partition's rows", rc, errstr, errstr_size);
    if (result)
        ferry_store_batch_abort(store);
    return result;
}

int ferry_store_batch_set_meta(ferry_store *store, const struct ferry_store_meta *meta,
                               char *errstr, size_t errstr_size)
{
    size_t cluster_len = strnlen(meta->cluster_id, sizeof(meta->cluster_id));
    size_t topic_len = strnlen(meta->topic, sizeof(meta->topic));
    int result, rc;

    result = need_batch(store, errstr, errstr_size);
    if (result)
        goto out;
    if (cluster_len == sizeof(meta->cluster_id) || topic_len == sizeof(meta->topic)) {
        result = store_fail(store, "cluster id or topic not terminated", errstr, errstr_size);
        goto out;
    }
    result = space_charge(store, 3 * STORE_OP_PAGES, errstr, errstr_size);
    if (result)
        goto out;
    rc = put_bytes(store->batch, store->meta, META_CLUSTER_ID, meta->cluster_id, cluster_len);
    if (!rc)
        rc = put_bytes(store->batch, store->meta, META_TOPIC, meta->topic, topic_len);
    if (!rc)
        rc = put_bytes(store->batch, store->meta, META_PARTITIONS, &meta->partitions,
                       sizeof(meta->partitions));
    if (rc)
        result = lmdb_fail(store, "writing the meta", rc, errstr, errstr_size);
out:
    if (result)
        ferry_store_batch_abort(store);
    return result;
}

int ferry_store_batch_commit(ferry_store *store, char *errstr, size_t errstr_size)
{
    int result, rc;

    result = need_batch(store, errstr, errstr_size);
    if (result)
        return result;
    rc = mdb_txn_commit(store->batch);
    store->batch = NULL;
    if (rc)
        return lmdb_fail(store, "committing a batch", rc, errstr, errstr_size);
    return FERRY_STORE_OK;
}

int ferry_store_view(ferry_store *store, const void *key, size_t key_len, ferry_store_entry_fn fn,
                     void *arg, char *errstr, size_t errstr_size)
{
    struct ferry_store_entry e;
    struct enc_key ek;
    MDB_txn *txn = NULL;
    MDB_val k, v;
    int result, rc;

    result = encode_key(store, key, key_len, &ek, errstr, errstr_size);
    if (result)
        return result;
    k.mv_data = ek.data;
    k.mv_size = ek.len;
    rc = read_begin(store, &txn);
    if (!rc)
        rc = mdb_get(txn, store->rows, &k, &v);
    if (rc == MDB_NOTFOUND) {
        result = FERRY_STORE_NOT_FOUND;
        goto out;
    }
    if (rc) {
        result = lmdb_fail(store, "reading a row", rc, errstr, errstr_size);
        goto out;
    }
    if (decode_row(&k, &v, &e)) {
        result = store_fail(store, "malformed row", errstr, errstr_size);
        goto out;
    }
    if (ek.hashed && !same_bytes(e.key, e.key_len, key, key_len)) {
        result = FERRY_STORE_NOT_FOUND;
        goto out;
    }
    fn(arg, &e);
out:
    read_end(store, txn);
    return result;
}

struct copy_out {
    struct ferry_buf *value;
    struct ferry_store_record *record;
    size_t value_len; /* of the row, also when it did not fit */
    int failed;
};

static int copy_entry(void *arg, const struct ferry_store_entry *e)
{
    struct copy_out *out = arg;
    struct ferry_store_record *r = out->record;

    out->value_len = e->value_len;
    ferry_buf_reset(out->value);
    out->failed = ferry_buf_add(out->value, e->value, e->value_len);
    if (!r)
        return 0;
    r->partition = e->row.partition;
    r->offset = e->row.offset;
    r->timestamp_ms = e->row.timestamp_ms;
    r->content_type[0] = '\0';
    if (e->row.content_type)
        snprintf(r->content_type, sizeof(r->content_type), "%s", e->row.content_type);
    return 0;
}

int ferry_store_get(ferry_store *store, const void *key, size_t key_len, struct ferry_buf *value,
                    struct ferry_store_record *record, char *errstr, size_t errstr_size)
{
    struct copy_out out = {value, record, 0, 0};
    int result = ferry_store_view(store, key, key_len, copy_entry, &out, errstr, errstr_size);

    if (result == FERRY_STORE_OK && out.failed) {
        snprintf(errstr, errstr_size,
                 "table store '%s': a value of %zu bytes passes the buffer's cap of %zu bytes",
                 store->path, out.value_len, value->cap);
        result = FERRY_STORE_ERROR;
    }
    return result;
}

/* A scan in progress. */
struct scan {
    struct enc_key prefix; /* the encoded prefix, up to FERRY_STORE_KEY_INLINE key bytes */
    const void *full_prefix;
    size_t full_prefix_len;
    size_t limit, given;
    MDB_val last; /* the LMDB key of the last row given to fn */
    int stopped;
    const unsigned char *partitions; /* rows of the partitions set here only; NULL: all */
    int32_t npartitions;
};

static int cursor_valid(const void *cursor, size_t len)
{
    const unsigned char *c = cursor;

    if (len < 1 || len > FERRY_STORE_CURSOR_MAX || c[0] != KEY_TAG)
        return 0;
    return len <= 1 + FERRY_STORE_KEY_INLINE || len == FERRY_STORE_CURSOR_MAX;
}

/* Positions the cursor on the first row after the scan's cursor or at its prefix. */
static int scan_seek(MDB_cursor *cur, const struct scan *sc, const void *after, size_t after_len,
                     MDB_val *k, MDB_val *v)
{
    int skip_equal = after_len && key_cmp(after, after_len, sc->prefix.data, sc->prefix.len) >= 0;
    int rc;

    k->mv_data = skip_equal ? (void *)after : (void *)sc->prefix.data;
    k->mv_size = skip_equal ? after_len : sc->prefix.len;
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (!rc && skip_equal && same_bytes(k->mv_data, k->mv_size, after, after_len))
        rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    return rc;
}

/* 1 when the row matches the scan's prefix, 0 when it does not, -1 when it is malformed. */
static int scan_match(const struct scan *sc, const MDB_val *k, const MDB_val *v,
                      struct ferry_store_entry *e)
{
    if (decode_row(k, v, e))
        return -1;
    if (sc->full_prefix_len <= FERRY_STORE_KEY_INLINE)
        return 1;
    return e->key_len >= sc->full_prefix_len &&
           memcmp(e->key, sc->full_prefix, sc->full_prefix_len) == 0;
}

/* Walks rows from the cursor's position until the prefix ends, the limit is passed or fn stops.
 * Returns MDB_NOTFOUND when no matching row is left, 0 when one is (not given to fn), or an
 * LMDB error; -1 for a malformed row. */
static int scan_walk(MDB_cursor *cur, struct scan *sc, int rc, MDB_val *k, MDB_val *v,
                     ferry_store_entry_fn fn, void *arg)
{
    struct ferry_store_entry e;
    int match;

    for (; rc == 0; rc = mdb_cursor_get(cur, k, v, MDB_NEXT)) {
        if (k->mv_size < sc->prefix.len || memcmp(k->mv_data, sc->prefix.data, sc->prefix.len))
            return MDB_NOTFOUND;
        match = scan_match(sc, k, v, &e);
        if (match < 0)
            return -1;
        if (!match ||
            (sc->partitions && (e.row.partition < 0 || e.row.partition >= sc->npartitions ||
                                !sc->partitions[e.row.partition])))
            continue;
        if (sc->given == sc->limit || sc->stopped)
            return 0;
        sc->given++;
        sc->last = *k;
        sc->stopped = fn(arg, &e) != 0;
    }
    return rc;
}

static int scan_rows(ferry_store *s, struct scan *sc, const void *after, size_t after_len,
                     ferry_store_entry_fn fn, void *arg, unsigned char *next, size_t *next_len,
                     char *errstr, size_t errstr_size)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int result = FERRY_STORE_OK, rc;

    rc = read_begin(s, &txn);
    if (!rc)
        rc = mdb_cursor_open(txn, s->rows, &cur);
    if (!rc)
        rc = scan_seek(cur, sc, after, after_len, &k, &v);
    if (!rc || rc == MDB_NOTFOUND)
        rc = scan_walk(cur, sc, rc, &k, &v, fn, arg);
    if (rc == 0) {
        memcpy(next, sc->last.mv_data, sc->last.mv_size);
        *next_len = sc->last.mv_size;
    } else if (rc == -1) {
        result = store_fail(s, "malformed row", errstr, errstr_size);
    } else if (rc != MDB_NOTFOUND) {
        result = lmdb_fail(s, "scanning rows", rc, errstr, errstr_size);
    }
    if (cur)
        mdb_cursor_close(cur);
    read_end(s, txn);
    return result;
}

int ferry_store_scan(ferry_store *store, const void *prefix, size_t prefix_len, const void *after,
                     size_t after_len, size_t limit, ferry_store_entry_fn fn, void *arg,
                     unsigned char *next, size_t *next_len, char *errstr, size_t errstr_size)
{
    return ferry_store_scan_partitions(store, prefix, prefix_len, after, after_len, limit, NULL, 0,
                                       fn, arg, next, next_len, errstr, errstr_size);
}

int ferry_store_scan_partitions(ferry_store *store, const void *prefix, size_t prefix_len,
                                const void *after, size_t after_len, size_t limit,
                                const unsigned char *partitions, int32_t npartitions,
                                ferry_store_entry_fn fn, void *arg, unsigned char *next,
                                size_t *next_len, char *errstr, size_t errstr_size)
{
    struct scan sc = {.full_prefix = prefix,
                      .full_prefix_len = prefix_len,
                      .limit = limit,
                      .partitions = partitions,
                      .npartitions = npartitions};
    size_t inline_len = prefix_len < FERRY_STORE_KEY_INLINE ? prefix_len : FERRY_STORE_KEY_INLINE;

    *next_len = 0;
    if (after_len && !cursor_valid(after, after_len)) {
        snprintf(errstr, errstr_size, "table store '%s': not a cursor of this store", store->path);
        return FERRY_STORE_BAD_CURSOR;
    }
    if (limit < 1)
        return store_fail(store, "a scan's limit must be at least 1", errstr, errstr_size);
    sc.prefix.data[0] = KEY_TAG;
    copy_bytes(sc.prefix.data + 1, prefix, inline_len);
    sc.prefix.len = 1 + inline_len;
    return scan_rows(store, &sc, after, after_len, fn, arg, next, next_len, errstr, errstr_size);
}

int ferry_store_key_cursor(ferry_store *store, const void *key, size_t key_len, unsigned char *out,
                           size_t *out_len, char *errstr, size_t errstr_size)
{
    struct enc_key ek;
    int result = encode_key(store, key, key_len, &ek, errstr, errstr_size);

    if (result == FERRY_STORE_OK) {
        memcpy(out, ek.data, ek.len);
        *out_len = ek.len;
    }
    return result;
}

int ferry_store_cursor_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    return key_cmp(a, alen, b, blen);
}

static int read_offsets(MDB_txn *txn, MDB_dbi dbi, int64_t *next, int32_t n)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    const unsigned char *p;
    uint32_t partition;

    if (!rc)
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 4 || v.mv_size != sizeof(int64_t)) {
            rc = MDB_CORRUPTED;
            break;
        }
        p = k.mv_data;
        partition = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (partition >= (uint32_t)n)
            break;
        next[partition] = get_i64(v.mv_data);
    }
    if (cur)
        mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int ferry_store_offsets(ferry_store *store, int64_t *next, int32_t n, char *errstr,
                        size_t errstr_size)
{
    MDB_txn *txn = NULL;
    int32_t i;
    int rc;

    for (i = 0; i < n; i++)
        next[i] = -1;
    if (n <= 0)
        return FERRY_STORE_OK;
    rc = read_begin(store, &txn);
    if (!rc)
        rc = read_offsets(txn, store->offsets, next, n);
    read_end(store, txn);
    if (rc)
        return lmdb_fail(store, "reading offsets", rc, errstr, errstr_size);
    return FERRY_STORE_OK;
}

int ferry_store_get_meta(ferry_store *store, struct ferry_store_meta *meta, char *errstr,
                         size_t errstr_size)
{
    MDB_txn *txn = NULL;
    int rc;

    memset(meta, 0, sizeof(*meta));
    rc = read_begin(store, &txn);
    if (!rc)
        rc = get_i32(txn, store->meta, META_FORMAT, &meta->format);
    if (!rc)
        rc = get_string(txn, store->meta, META_TOPIC, meta->topic, FERRY_STORE_TOPIC_MAX);
    if (!rc)
        rc = get_string(txn, store->meta, META_CLUSTER_ID, meta->cluster_id,
                        FERRY_STORE_CLUSTER_ID_MAX);
    if (!rc)
        rc = get_i32(txn, store->meta, META_PARTITIONS, &meta->partitions);
    read_end(store, txn);
    if (rc == MDB_NOTFOUND)
        return FERRY_STORE_NOT_FOUND;
    if (rc)
        return lmdb_fail(store, "reading the meta", rc, errstr, errstr_size);
    return FERRY_STORE_OK;
}

int ferry_store_stats(ferry_store *store, struct ferry_store_stats *stats, char *errstr,
                      size_t errstr_size)
{
    MDB_txn *txn = NULL;
    MDB_envinfo info;
    MDB_stat st;
    int rc;

    memset(stats, 0, sizeof(*stats));
    rc = read_begin(store, &txn);
    if (!rc)
        rc = mdb_stat(txn, store->rows, &st);
    if (!rc)
        rc = mdb_env_info(store->env, &info);
    read_end(store, txn);
    if (rc)
        return lmdb_fail(store, "reading its statistics", rc, errstr, errstr_size);
    stats->keys = st.ms_entries;
    stats->bytes_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    stats->max_size = info.me_mapsize;
    return FERRY_STORE_OK;
}
