/*
 * store.h - one table's LMDB environment: rows, applied offsets and meta.
 *
 * A table keeps the latest value of every key of a topic in its own LMDB environment (a
 * directory with data.mdb and lock.mdb). The table's apply thread writes records in batches,
 * one LMDB write transaction per batch, and the offset each partition has been applied up to is
 * written in the same transaction as its rows: after a crash at any moment the store holds
 * exactly the records below its stored offsets. Readers (libmicrohttpd's pool threads) read at
 * any time without blocking the writer or each other: every read sees the last committed batch.
 *
 * Three named databases: "rows" (encoded key -> row), "offsets" (partition -> next offset) and
 * "meta" (format version, Kafka cluster id, topic, partition count).
 *
 * Key encoding. LMDB keys are 1 to 511 bytes, table keys are 0 bytes up to the job's limit (64
 * KiB by default) of any bytes. The LMDB key of a table key is one tag byte followed by:
 *   - the key itself when it is at most FERRY_STORE_KEY_INLINE (478) bytes long, so the empty
 *     key is storable and short keys cost one byte;
 *   - else its first FERRY_STORE_KEY_INLINE bytes and the SHA-256 of the whole key (32 bytes),
 *     511 bytes in all, with the whole key kept in the row and compared on every read.
 * Encoded short keys are at most 479 bytes and encoded long keys exactly 511, so a short key
 * never meets a long key's encoding; a long key whose hash slot holds another key (a SHA-256
 * collision, never seen) reads as not found and a put replaces it. Order: the LMDB order of
 * encoded keys is the byte order of the keys, except that long keys sharing their first
 * FERRY_STORE_KEY_INLINE bytes sort among themselves by hash (still after any short key that is
 * a prefix of them). Scans and cursors follow this order.
 *
 * Durability: a commit syncs the data pages, not the meta page (MDB_NOMETASYNC), which halves
 * the syncs of a commit. Write transactions change pages in the map itself (MDB_WRITEMAP)
 * rather than in copies on the heap, so a large transaction costs page cache, not ferry's own
 * memory; the data file is as large as the map from the start (a sparse file). A process crash
 * loses nothing committed; an operating-system crash may undo the last commit, rows and offsets
 * together, which the table applies again from Kafka.
 *
 * Disk space: the data file is sparse, and LMDB takes its blocks when it first writes a page
 * through the map; on a full volume that write would be a SIGBUS, not an error. So before the
 * batch functions write, the store makes sure the blocks the batch may newly take exist
 * (posix_fallocate, within the file's length): from the end of the pages in use, an upper bound
 * of the pages each write may add (store.c, "Disk space"), and STORE_ALLOC_STEP more so that
 * most writes cost one comparison. A volume without room makes the write return
 * FERRY_STORE_NO_SPACE with the store as it was after its last commit; once space is freed,
 * ferry_store_space_retry() says so. The bound is loose (most writes land on a leaf the batch
 * has copied already), so a large batch counts far more pages than it takes: a writer that
 * asks first (ferry_store_batch_reserve) is told that the volume is short while its batch is
 * still whole, and can commit what the batch holds and go on in a fresh one, which counts from
 * the pages that commit left in use. The lock file (LMDB's reader slots, also written through a
 * map) has its blocks reserved when the store opens, which fails on a volume without room. A file
 * system that cannot reserve blocks at all (posix_fallocate fails with EOPNOTSUPP or EINVAL even
 * after glibc's fallback) is written without reserving, as LMDB does.
 *
 * Unsynced loading: while a table loads, nothing reads its store, and syncing each commit is
 * most of a restore's cost. ferry_store_set_synced(store, 0) lets commits skip the sync. A
 * crash of ferry then still loses nothing (the operating system holds every write of the map),
 * but a crash of the system could leave a store whose pages disagree. So before the first
 * unsynced commit, a marker file holding the system's boot id is made durable in the store's
 * directory, and only a sync of everything removes it. ferry_store_open() finds a marker of
 * another boot, empties the store and says so (ferry_store_was_emptied): the table loads the
 * topic again, which is what it was doing. A marker of the same boot means ferry stopped, not
 * the system: the store is whole.
 *
 * Threads. One writer: the batch functions may only be called by one thread at a time (the
 * table's apply thread) and a batch lives on the thread that began it. Reads (get, view, scan,
 * offsets, meta, stats) may be called from any thread concurrently with the writer and with
 * each other: the environment is opened with MDB_NOTLS, so read transactions belong to calls,
 * not threads, and pooled read transactions are reused across threads. ferry_store_close()
 * needs every other call on the store to have returned. LMDB forbids opening one environment
 * twice in one process: a rebuild uses another path.
 *
 * Results: FERRY_STORE_OK (0), FERRY_STORE_NOT_FOUND, or a negative FERRY_STORE_* with a
 * message in errstr naming the store's path and LMDB's reason.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

typedef struct ferry_store_s ferry_store;

enum ferry_store_result {
    FERRY_STORE_OK = 0,
    FERRY_STORE_NOT_FOUND = 1,
    FERRY_STORE_ERROR = -1,
    /* The map (max_size) is full. The batch was aborted: the store is as it was after the last
     * commit and still readable; a smaller batch may succeed. */
    FERRY_STORE_FULL = -2,
    /* A scan cursor that this store cannot have returned. */
    FERRY_STORE_BAD_CURSOR = -3,
    /* The volume has no room for the disk blocks the batch may take (see "Disk space"). The
     * batch was aborted, as for FERRY_STORE_FULL. */
    FERRY_STORE_NO_SPACE = -4,
};

/* Table keys of at most this many bytes are stored as they are; longer ones are hashed. */
#define FERRY_STORE_KEY_INLINE 478
/* The longest LMDB key, and so the longest scan cursor. */
#define FERRY_STORE_CURSOR_MAX (1 + FERRY_STORE_KEY_INLINE + 32)
/* The longest content type a row keeps. */
#define FERRY_STORE_CONTENT_TYPE_MAX 255
/* The longest cluster id and topic name the meta keeps (Kafka's topic limit is 249). */
#define FERRY_STORE_CLUSTER_ID_MAX 255
#define FERRY_STORE_TOPIC_MAX 255
/* The on-disk format this code writes and reads. */
#define FERRY_STORE_FORMAT 1

/* What a row records about the Kafka record that wrote it. */
struct ferry_store_row {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    /* NUL-terminated, at most FERRY_STORE_CONTENT_TYPE_MAX bytes; NULL (or "") for none. In a
     * ferry_store_entry it points into the map and is NULL when the row has none. */
    const char *content_type;
};

/* A row as a read sees it, inside the read transaction: every pointer points into LMDB's map
 * and is valid only until the callback that received it returns. */
struct ferry_store_entry {
    const void *key; /* the whole table key */
    size_t key_len;
    const void *value;
    size_t value_len;
    struct ferry_store_row row;
    const void *cursor; /* this row's LMDB key: a scan cursor that continues after it */
    size_t cursor_len;
};

/* What ferry_store_get() copies out besides the value. */
struct ferry_store_record {
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    char content_type[FERRY_STORE_CONTENT_TYPE_MAX + 1]; /* "" when the row has none */
};

/* The topic a store materializes; the caller compares it with the cluster to detect a
 * recreated topic. */
struct ferry_store_meta {
    int32_t format; /* FERRY_STORE_FORMAT of the code that created the store; set by the store */
    char cluster_id[FERRY_STORE_CLUSTER_ID_MAX + 1];
    char topic[FERRY_STORE_TOPIC_MAX + 1];
    int32_t partitions;
};

struct ferry_store_stats {
    uint64_t keys;       /* rows */
    uint64_t bytes_used; /* pages in use up to the last one, times the page size */
    uint64_t max_size;   /* the map size */
};

/* Called for each row a read finds. A scan stops after the row when it returns non-zero. */
typedef int (*ferry_store_entry_fn)(void *arg, const struct ferry_store_entry *entry);

/* Opens the store at path, creating the directory (mode 0750, parents too) and an empty store
 * when missing. max_size is the LMDB map size in bytes (rounded up to whole pages), also for an
 * existing store, unless its data already takes more. Returns the store, which the caller frees
 * with ferry_store_close(), or NULL with errstr when the directory, LMDB or the stored format
 * (another FERRY_STORE_FORMAT) fails. @locality any thread */
ferry_store *ferry_store_open(const char *path, size_t max_size, char *errstr, size_t errstr_size);

/* Nonzero when ferry_store_open() found the store left unsynced by a system that has restarted
 * since, and emptied it (see "Unsynced loading" above). @locality any thread */
int ferry_store_was_emptied(const ferry_store *store);

/* synced 0: later commits skip their sync, after the marker is made durable; synced 1: syncs
 * everything, then removes the marker, and later commits sync again. Without a boot id (no
 * /proc) the store stays synced. Call with no batch open. Returns FERRY_STORE_OK or
 * FERRY_STORE_ERROR (the store then stays or becomes synced where it can). @locality the
 * writer thread */
int ferry_store_set_synced(ferry_store *store, int synced, char *errstr, size_t errstr_size);

/* Aborts an open batch, syncs an unsynced store (see ferry_store_set_synced), frees pooled read
 * transactions and closes the environment. Accepts NULL. No other call on the store may be
 * running or follow. */
void ferry_store_close(ferry_store *store);

/* The path the store was opened at, owned by the store. */
const char *ferry_store_path(const ferry_store *store);

/* Removes a closed store's files (data.mdb, lock.mdb, the unsynced marker) and its directory. A
 * missing file or directory is not an error; any other file in the directory is (the directory
 * stays). Returns FERRY_STORE_OK or FERRY_STORE_ERROR. @locality any thread, never on an open store
 */
int ferry_store_destroy_files(const char *path, char *errstr, size_t errstr_size);

/* Puts the closed store at `from` in the place of the closed store at path: path moves aside to
 * "<path>.old", from takes its name, the parent directory is synced, and the old store's files
 * are removed. When a rename fails, path's store is left where and as it was, and the result is
 * FERRY_STORE_ERROR. FERRY_STORE_OK with errstr set (not "") means the new store is in place but
 * "<path>.old" could not be removed (another file in it, say). @locality any thread, never on an
 * open store */
int ferry_store_replace(const char *path, const char *from, char *errstr, size_t errstr_size);

/* Starts a write batch. Returns FERRY_STORE_OK, FERRY_STORE_NO_SPACE when the volume has no
 * room for the batch's first pages, or FERRY_STORE_ERROR when a batch is already open or LMDB
 * fails. @locality the writer thread */
int ferry_store_batch_begin(ferry_store *store, char *errstr, size_t errstr_size);

/* Sets key to value in the batch, with the record's row meta (content_type copied). Returns
 * FERRY_STORE_OK; FERRY_STORE_FULL when the map is full, FERRY_STORE_NO_SPACE when the volume
 * is, or FERRY_STORE_ERROR when LMDB fails, the content type is too long or no batch is open. Every
 * failure of put, delete, set_offset and set_meta aborts the batch (begin a new one). @locality the
 * writer thread */
int ferry_store_batch_put(ferry_store *store, const void *key, size_t key_len, const void *value,
                          size_t value_len, const struct ferry_store_row *row, char *errstr,
                          size_t errstr_size);

/* Deletes key in the batch (a tombstone); a missing key is fine. Results as
 * ferry_store_batch_put(). @locality the writer thread */
int ferry_store_batch_delete(ferry_store *store, const void *key, size_t key_len, char *errstr,
                             size_t errstr_size);

/* Records in the batch that partition has been applied up to next_offset (the offset of the
 * next record to apply). Results as ferry_store_batch_put(). @locality the writer thread */
int ferry_store_batch_set_offset(ferry_store *store, int32_t partition, int64_t next_offset,
                                 char *errstr, size_t errstr_size);

/* Deletes, in the batch, the rows of partition that lie after the cursor after[0..after_len)
 * (from the first row when after_len is 0), looking at up to limit rows: a partition's rows are
 * spread over the whole key order, so a large store is cleared over several batches. Writes
 * where it stopped to next (room for FERRY_STORE_CURSOR_MAX bytes) and sets *more. The first
 * batch also forgets the partition's stored offset, so that a store whose clearing was cut
 * short (a restart) never resumes the partition over the rows already deleted. Results as
 * ferry_store_batch_put. @locality the writer thread */
int ferry_store_batch_drop_partition(ferry_store *store, int32_t partition, const void *after,
                                     size_t after_len, size_t limit, unsigned char *next,
                                     size_t *next_len, int *more, char *errstr, size_t errstr_size);

/* Records the cluster id, topic and partition count in the batch (meta->format is ignored).
 * Results as ferry_store_batch_put(). @locality the writer thread */
int ferry_store_batch_set_meta(ferry_store *store, const struct ferry_store_meta *meta,
                               char *errstr, size_t errstr_size);

/* Makes sure the batch's next writes cannot be refused for want of disk space, as long as they
 * are at most `writes` puts, deletes and offsets whose puts hold at most `bytes` of keys, values
 * and content types in all: counts the pages they may take now and reserves their blocks (see
 * "Disk space"). The writes then draw on that count, which a later call tops up rather than
 * adds to; writes past it are counted one by one as always. Returns FERRY_STORE_OK;
 * FERRY_STORE_NO_SPACE (errstr says what the volume lacks) or FERRY_STORE_ERROR with the batch
 * left open as it was, which the caller may commit (its writes were all counted before) or
 * abort; FERRY_STORE_ERROR when no batch is open. @locality the writer thread */
int ferry_store_batch_reserve(ferry_store *store, size_t writes, size_t bytes, char *errstr,
                              size_t errstr_size);

/* Commits the batch; readers see all of it or none of it. Returns FERRY_STORE_OK,
 * FERRY_STORE_FULL or FERRY_STORE_ERROR; the batch is over in every case (nothing of a failed
 * batch is kept). @locality the writer thread */
int ferry_store_batch_commit(ferry_store *store, char *errstr, size_t errstr_size);

/* Drops the batch, if one is open. @locality the writer thread */
void ferry_store_batch_abort(ferry_store *store);

/* After FERRY_STORE_NO_SPACE: tries again to reserve the disk blocks that were refused. Returns
 * FERRY_STORE_OK once they are reserved (or when nothing was refused), FERRY_STORE_NO_SPACE
 * with errstr while the volume is still short, or FERRY_STORE_ERROR. Call with no batch open.
 * @locality the writer thread */
int ferry_store_space_retry(ferry_store *store, char *errstr, size_t errstr_size);

/* How the store reserves disk blocks: posix_fallocate's signature and results. */
typedef int (*ferry_store_allocate_fn)(int fd, off_t offset, off_t len);

/* For tests only: makes the store reserve blocks with fn instead of posix_fallocate (NULL puts
 * posix_fallocate back), so that a test can act out a full volume. @locality the writer
 * thread, with no batch open */
void ferry_store_set_allocate(ferry_store *store, ferry_store_allocate_fn fn);

/* Copies key's value into value (reset first; its cap bounds the value) and its row meta into
 * record (may be NULL). Returns FERRY_STORE_OK, FERRY_STORE_NOT_FOUND, or FERRY_STORE_ERROR
 * when LMDB fails, the row is malformed or the value passes the buffer's cap.
 * @locality any thread */
int ferry_store_get(ferry_store *store, const void *key, size_t key_len, struct ferry_buf *value,
                    struct ferry_store_record *record, char *errstr, size_t errstr_size);

/* Calls fn with key's row, in place in the map (no copy), when key exists. Returns
 * FERRY_STORE_OK (fn was called), FERRY_STORE_NOT_FOUND or FERRY_STORE_ERROR. fn runs inside a
 * read transaction: it should be quick and must not call the batch functions.
 * @locality any thread */
int ferry_store_view(ferry_store *store, const void *key, size_t key_len, ferry_store_entry_fn fn,
                     void *arg, char *errstr, size_t errstr_size);

/* Calls fn, in key order (see the key encoding above), for up to limit (at least 1) rows whose
 * key starts with prefix (prefix_len 0: every row) and that come after the cursor
 * (after_len 0: from the start). A cursor is an entry's cursor or a next cursor from an earlier
 * scan; it stays valid while writes go on, also when its row was deleted. When more matching
 * rows follow the last one given to fn, the cursor to continue with is copied to next (room for
 * FERRY_STORE_CURSOR_MAX bytes) and its length to *next_len, else *next_len is 0. Returns
 * FERRY_STORE_OK, FERRY_STORE_BAD_CURSOR or FERRY_STORE_ERROR. fn runs inside one read
 * transaction for the whole scan (see ferry_store_view()). @locality any thread */
int ferry_store_scan(ferry_store *store, const void *prefix, size_t prefix_len, const void *after,
                     size_t after_len, size_t limit, ferry_store_entry_fn fn, void *arg,
                     unsigned char *next, size_t *next_len, char *errstr, size_t errstr_size);

/* As ferry_store_scan, but rows of a partition p with p >= npartitions or partitions[p] == 0
 * are passed over (not given to fn, not counted in limit): a partitioned table's store also
 * holds partitions it no longer serves. partitions NULL: every row. @locality any thread */
int ferry_store_scan_partitions(ferry_store *store, const void *prefix, size_t prefix_len,
                                const void *after, size_t after_len, size_t limit,
                                const unsigned char *partitions, int32_t npartitions,
                                ferry_store_entry_fn fn, void *arg, unsigned char *next,
                                size_t *next_len, char *errstr, size_t errstr_size);

/* Writes key's place in the store's key order into out (room for FERRY_STORE_CURSOR_MAX
 * bytes) and its length into *out_len: the cursor a row of key would have, so that
 * ferry_store_cursor_cmp() tells whether a scan that reached a cursor has passed key.
 * Returns FERRY_STORE_OK or FERRY_STORE_ERROR. @locality any thread */
int ferry_store_key_cursor(ferry_store *store, const void *key, size_t key_len, unsigned char *out,
                           size_t *out_len, char *errstr, size_t errstr_size);

/* Orders two cursors as the store orders their rows: negative, 0 or positive. */
int ferry_store_cursor_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Fills next[0..n) with each partition's stored next offset, -1 for a partition without one.
 * Returns FERRY_STORE_OK or FERRY_STORE_ERROR. @locality any thread */
int ferry_store_offsets(ferry_store *store, int64_t *next, int32_t n, char *errstr,
                        size_t errstr_size);

/* Reads the meta into meta. Returns FERRY_STORE_OK, FERRY_STORE_NOT_FOUND when no batch has set
 * it yet (meta->format is still filled), or FERRY_STORE_ERROR. @locality any thread */
int ferry_store_get_meta(ferry_store *store, struct ferry_store_meta *meta, char *errstr,
                         size_t errstr_size);

/* Fills stats with the committed state. Returns FERRY_STORE_OK or FERRY_STORE_ERROR.
 * @locality any thread */
int ferry_store_stats(ferry_store *store, struct ferry_store_stats *stats, char *errstr,
                      size_t errstr_size);

#endif
