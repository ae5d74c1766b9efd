/*
 * test_dispatch.c - unit tests of a route's dispatcher (src/route/dispatch.c): ordering lanes,
 * batch formation, commit watermarks, drain, revoke, finish and abandon.
 *
 * Most cases are scripts in one table: steps that add a record, form a batch and compare it
 * with the records expected (named "partition/offset", in order), finish or abandon records by
 * name, and check commits, counts and timers. Every record's msg is a counter that free_msg
 * bumps; after each step the records and bytes the dispatcher reports must equal those of the
 * messages not yet released, and after destroy every message must be released exactly once.
 * A randomized test then checks the same invariants against a model over many operations.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route/dispatch.h"

#define TOPIC "t"
#define MSGS_MAX 100000
#define BATCH_MAX 64
#define HELD_MAX 4096
#define NAMES_MAX 1024

/* ---- messages: each one a counter of its releases ---- */

static int released[MSGS_MAX];
static size_t msg_bytes[MSGS_MAX];
static size_t nmsgs;

static void free_msg(void *msg)
{
    (*(int *)msg)++;
}

static size_t msg_index(const void *msg)
{
    return (size_t)((const int *)msg - released);
}

static void *msg_new(size_t bytes)
{
    assert_true(nmsgs < MSGS_MAX);
    released[nmsgs] = 0;
    msg_bytes[nmsgs] = bytes;
    return &released[nmsgs++];
}

/* Fails unless the dispatcher holds exactly the messages not released yet, none twice. */
static void check_held(const ferry_dispatch *d, const char *name, size_t step)
{
    size_t records = 0, bytes = 0;

    for (size_t i = 0; i < nmsgs; i++) {
        if (released[i] > 1)
            fail_msg("%s: step %zu: message %zu released %d times", name, step, i, released[i]);
        if (!released[i]) {
            records++;
            bytes += msg_bytes[i];
        }
    }
    if (ferry_dispatch_records(d) != records || ferry_dispatch_bytes(d) != bytes)
        fail_msg("%s: step %zu: dispatcher holds %zu records, %zu bytes; want %zu, %zu", name, step,
                 ferry_dispatch_records(d), ferry_dispatch_bytes(d), records, bytes);
}

static void check_all_released_once(const char *name)
{
    for (size_t i = 0; i < nmsgs; i++)
        if (released[i] != 1)
            fail_msg("%s: message %zu released %d times after destroy", name, i, released[i]);
}

static ferry_dispatch *dispatch_new(enum ferry_ordering ordering, size_t max_records,
                                    size_t max_bytes, int64_t linger_ms)
{
    struct ferry_dispatch_options o = {ordering, max_records, max_bytes, linger_ms, free_msg};
    ferry_dispatch *d = ferry_dispatch_new(&o);

    assert_non_null(d);
    nmsgs = 0;
    return d;
}

/* Adds one record of topic "t"; a refused record's message is released here, as the caller
 * of ferry_dispatch_add() must. */
static int add(ferry_dispatch *d, int32_t partition, int64_t offset, const char *key, size_t bytes,
               int64_t now_ms)
{
    struct ferry_record view = {0};
    void *msg = msg_new(bytes);
    int rc;

    view.topic = TOPIC;
    view.partition = partition;
    view.offset = offset;
    view.timestamp_ms = -1;
    view.key = key;
    view.key_len = key ? strlen(key) : 0;
    rc = ferry_dispatch_add(d, &view, msg, bytes, now_ms);
    if (rc)
        free_msg(msg);
    return rc;
}

/* ---- scripts ---- */

enum op {
    OP_END,
    OP_ADD,       /* part, offset, key, bytes, now; expects rc */
    OP_NEXT,      /* now, flush, count (the max given, 0 for BATCH_MAX); expects recs */
    OP_FINISH,    /* recs, all in one call */
    OP_ABANDON,   /* recs, all in one call */
    OP_COMMITS,   /* expects recs: the reports of take_commits, "partition/offset" */
    OP_OFFSET,    /* part; expects offset from commit_offset */
    OP_IN_FLIGHT, /* part; expects count */
    OP_HELD,      /* expects count records and bytes */
    OP_DUE,       /* expects now from next_due_ms */
    OP_DUE_BY,    /* expects next_due_ms to be now or earlier */
    OP_STALE,     /* recs; expects count (0 or 1) from rec_stale for each */
    OP_ASSIGN,    /* part */
    OP_DRAIN,     /* part */
    OP_REVOKE,    /* part */
};

struct step {
    enum op op;
    int32_t part;
    int64_t offset;
    const char *key;
    size_t bytes;
    int64_t now;
    int flush;
    int rc;
    const char *recs;
    size_t count;
};

#define ADD(p, o, k, b, t)                                                                         \
    {                                                                                              \
        .op = OP_ADD, .part = (p), .offset = (o), .key = (k), .bytes = (b), .now = (t)             \
    }
#define ADD_FAILS(p, o, t)                                                                         \
    {                                                                                              \
        .op = OP_ADD, .part = (p), .offset = (o), .bytes = 1, .now = (t), .rc = -1                 \
    }
#define NEXT(t, want)                                                                              \
    {                                                                                              \
        .op = OP_NEXT, .now = (t), .recs = (want)                                                  \
    }
#define NEXT_MAX(t, max, want)                                                                     \
    {                                                                                              \
        .op = OP_NEXT, .now = (t), .count = (max), .recs = (want)                                  \
    }
#define FLUSH(t, want)                                                                             \
    {                                                                                              \
        .op = OP_NEXT, .now = (t), .flush = 1, .recs = (want)                                      \
    }
#define FINISH(r)                                                                                  \
    {                                                                                              \
        .op = OP_FINISH, .recs = (r)                                                               \
    }
#define ABANDON(r)                                                                                 \
    {                                                                                              \
        .op = OP_ABANDON, .recs = (r)                                                              \
    }
#define COMMITS(want)                                                                              \
    {                                                                                              \
        .op = OP_COMMITS, .recs = (want)                                                           \
    }
#define OFFSET(p, o)                                                                               \
    {                                                                                              \
        .op = OP_OFFSET, .part = (p), .offset = (o)                                                \
    }
#define IN_FLIGHT(p, n)                                                                            \
    {                                                                                              \
        .op = OP_IN_FLIGHT, .part = (p), .count = (n)                                              \
    }
#define HELD(n, b)                                                                                 \
    {                                                                                              \
        .op = OP_HELD, .count = (n), .bytes = (b)                                                  \
    }
#define DUE(t)                                                                                     \
    {                                                                                              \
        .op = OP_DUE, .now = (t)                                                                   \
    }
#define DUE_BY(t)                                                                                  \
    {                                                                                              \
        .op = OP_DUE_BY, .now = (t)                                                                \
    }
#define STALE(r, yes)                                                                              \
    {                                                                                              \
        .op = OP_STALE, .recs = (r), .count = (yes)                                                \
    }
#define ASSIGN(p)                                                                                  \
    {                                                                                              \
        .op = OP_ASSIGN, .part = (p)                                                               \
    }
#define DRAIN(p)                                                                                   \
    {                                                                                              \
        .op = OP_DRAIN, .part = (p)                                                                \
    }
#define REVOKE(p)                                                                                  \
    {                                                                                              \
        .op = OP_REVOKE, .part = (p)                                                               \
    }

#define K FERRY_ORDERING_KEY
#define P FERRY_ORDERING_PARTITION
#define N FERRY_ORDERING_NONE
#define NEVER INT64_MAX

struct setup {
    enum ferry_ordering ordering;
    size_t max_records;
    size_t max_bytes;
    int64_t linger_ms;
    int32_t parts; /* partitions 0..parts-1 of "t", assigned before the first step */
};

struct scenario {
    const char *name;
    struct setup setup;
    struct step steps[48];
};

/* {ordering, max_records, max_bytes, linger_ms, partitions}, then the steps */
static const struct scenario scenarios[] = {
    /* (1) no order, one record per request */
    {"none: offset order, watermark over contiguous finished offsets",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 10, 0),
         ADD(0, 1, "a", 10, 0),
         ADD(0, 2, NULL, 10, 0),
         ADD(0, 5, "a", 10, 0), /* 3 and 4 compacted away */
         ADD(0, 6, NULL, 10, 0),
         OFFSET(0, 0),
         COMMITS(""),
         DUE(0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         NEXT(0, "0/2"),
         NEXT(0, "0/5"),
         NEXT(0, "0/6"),
         NEXT(0, ""),
         DUE(NEVER),
         IN_FLIGHT(0, 5),
         FINISH("0/1"),
         COMMITS(""),
         OFFSET(0, 0),
         FINISH("0/0"),
         COMMITS("0/2"),
         COMMITS(""),
         FINISH("0/6 0/5"),
         COMMITS(""),
         OFFSET(0, 2),
         FINISH("0/2"),
         COMMITS("0/7"),
         OFFSET(0, 7),
         IN_FLIGHT(0, 0),
         HELD(0, 0),
         ADD_FAILS(0, 6, 0),
         ADD(0, 7, NULL, 10, 0),
         OFFSET(0, 7),
     }},
    {"none: null and keyed records alike, all in parallel",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "a", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         NEXT(0, "0/2"),
         IN_FLIGHT(0, 3),
     }},
    {"none: nothing consumed, nothing to commit",
     {N, 1, 1000, 0, 2},
     {
         OFFSET(0, -1),
         OFFSET(1, -1),
         OFFSET(2, -1),
         IN_FLIGHT(0, 0),
         IN_FLIGHT(7, 0),
         COMMITS(""),
         NEXT(0, ""),
         FLUSH(0, ""),
         DUE(NEVER),
         HELD(0, 0),
     }},

    /* (2) key lanes */
    {"key: a busy key gives out nothing more, other keys go in parallel",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "b", 1, 0),
         ADD(0, 3, "a", 1, 0),
         ADD(0, 4, "c", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/2"),
         NEXT(0, "0/4"),
         NEXT(0, ""), /* a, b and c are all busy */
         FLUSH(0, ""),
         DUE(NEVER),
         FINISH("0/2"),
         NEXT(0, ""), /* b has nothing more, a is still busy */
         FINISH("0/0"),
         NEXT(0, "0/1"),
         NEXT(0, ""),
     }},
    {"key: records of a key come out in order, one at a time",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "b", 1, 0),
         ADD(0, 3, "a", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/2"),
         FINISH("0/0"),
         COMMITS("0/1"),
         NEXT(0, "0/1"),
         NEXT(0, ""),
         FINISH("0/1"),
         NEXT(0, "0/3"),
         NEXT(0, ""),
         FINISH("0/2 0/3"),
         COMMITS("0/4"),
     }},
    {"key: null keys never block",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         NEXT(0, "0/0"),
         ADD(0, 1, NULL, 1, 0),
         NEXT(0, "0/1"),
         ADD(0, 2, "a", 1, 0),
         NEXT(0, "0/2"),
         ADD(0, 3, NULL, 1, 0),
         NEXT(0, "0/3"),
         ADD(0, 4, "a", 1, 0),
         ADD(0, 5, NULL, 1, 0),
         NEXT(0, "0/5"),
         NEXT(0, ""),
         IN_FLIGHT(0, 5),
         FINISH("0/2"),
         NEXT(0, "0/4"),
     }},
    {"key: an empty key is a key, not the null key",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "", 1, 0),
         ADD(0, 1, "", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, ""),
         FINISH("0/0"),
         NEXT(0, "0/1"),
     }},
    {"key: keys sharing a prefix are different keys",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "ab", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "abc", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         NEXT(0, "0/2"),
     }},
    {"key: a key with many queued records does not hold back other keys",
     {K, 4, 1000, 100, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "a", 1, 0),
         ADD(0, 3, "a", 1, 0),
         ADD(0, 4, "a", 1, 0),
         ADD(0, 5, "a", 1, 0),
         ADD(0, 6, "b", 1, 0),
         NEXT(0, "0/0 0/1 0/2 0/3"), /* a full batch is due at once */
         FLUSH(0, "0/6"),
         FLUSH(0, ""),
         FINISH("0/6"),
         FINISH("0/0 0/1 0/2 0/3"),
         COMMITS("0/4"),
         FLUSH(0, "0/4 0/5"),
     }},
    {"key: the same key in two partitions is two lanes",
     {K, 1, 1000, 0, 2},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(1, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "1/0"),
         NEXT(0, ""),
     }},
    {"key: finishing a batch in parts frees its key only at the end",
     {K, 2, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "a", 1, 0),
         NEXT(0, "0/0 0/1"),
         FINISH("0/0"),
         NEXT(0, ""),
         FINISH("0/1"),
         NEXT(0, "0/2"),
     }},

    /* (3) partition lanes */
    {"partition: at most one request per partition in flight",
     {P, 1, 1000, 0, 2},
     {
         ADD(0, 0, "a", 1, 0), /* keys do not matter here */
         ADD(0, 1, "b", 1, 0),
         ADD(0, 2, NULL, 1, 0),
         ADD(1, 0, "a", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "1/0"),
         NEXT(0, ""),
         IN_FLIGHT(0, 1),
         FINISH("1/0"),
         NEXT(0, ""),
         FINISH("0/0"),
         NEXT(0, "0/1"),
         NEXT(0, ""),
         FINISH("0/1"),
         NEXT(0, "0/2"),
         FINISH("0/2"),
         COMMITS("0/3 1/1"),
     }},
    {"partition: a batch of a partition, and nothing more until all of it finished",
     {P, 10, 1000, 0, 2},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(1, 0, NULL, 1, 0),
         ADD(0, 2, NULL, 1, 0),
         ADD(1, 1, NULL, 1, 0),
         FLUSH(0, "0/0 0/1 0/2"),
         FLUSH(0, "1/0 1/1"),
         FLUSH(0, ""),
         ADD(0, 3, NULL, 1, 0),
         FLUSH(0, ""),
         FINISH("0/0 0/2"),
         FLUSH(0, ""),
         FINISH("0/1"),
         FLUSH(0, "0/3"),
     }},
    {"none: partitions take turns",
     {N, 1, 1000, 0, 3},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(0, 2, NULL, 1, 0),
         ADD(1, 0, NULL, 1, 0),
         ADD(1, 1, NULL, 1, 0),
         ADD(1, 2, NULL, 1, 0),
         ADD(2, 0, NULL, 1, 0),
         ADD(2, 1, NULL, 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "1/0"),
         NEXT(0, "2/0"),
         NEXT(0, "0/1"),
         NEXT(0, "1/1"),
         NEXT(0, "2/1"),
         NEXT(0, "0/2"),
         NEXT(0, "1/2"),
         NEXT(0, ""),
     }},
    {"key: partitions take turns with batches",
     {K, 2, 1000, 0, 2},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "b", 1, 0),
         ADD(0, 2, "c", 1, 0),
         ADD(0, 3, "d", 1, 0),
         ADD(1, 0, "a", 1, 0),
         ADD(1, 1, "b", 1, 0),
         NEXT(0, "0/0 0/1"),
         NEXT(0, "1/0 1/1"),
         NEXT(0, "0/2 0/3"),
         NEXT(0, ""),
     }},

    /* (4) batches */
    {"batch: linger holds a partial batch, then it is due",
     {N, 10, 1000, 100, 1},
     {
         DUE(NEVER),
         ADD(0, 0, NULL, 1, 0),
         DUE(100),
         ADD(0, 1, NULL, 1, 50),
         DUE(100),
         NEXT(0, ""),
         NEXT(99, ""),
         NEXT(100, "0/0 0/1"),
         DUE(NEVER),
         ADD(0, 2, NULL, 1, 130),
         DUE(230),
         NEXT(229, ""),
         NEXT(230, "0/2"),
     }},
    {"batch: one record per request never lingers",
     {N, 1, 1000, 100, 1},
     {
         ADD(0, 0, NULL, 1, 50),
         DUE_BY(50),
         NEXT(50, "0/0"),
         DUE(NEVER),
     }},
    {"batch: flush forces a partial batch",
     {N, 10, 1000, 100, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         NEXT(1, ""),
         FLUSH(1, "0/0 0/1"),
         FLUSH(1, ""),
     }},
    {"batch: max_records caps a batch and makes it due",
     {N, 3, 1000, 100, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         NEXT(0, ""),
         ADD(0, 2, NULL, 1, 0),
         ADD(0, 3, NULL, 1, 0),
         ADD(0, 4, NULL, 1, 0),
         ADD(0, 5, NULL, 1, 0),
         ADD(0, 6, NULL, 1, 0),
         NEXT(0, "0/0 0/1 0/2"),
         NEXT(0, "0/3 0/4 0/5"),
         NEXT(0, ""),
         NEXT(100, "0/6"),
     }},
    {"batch: the max given to next caps a batch too",
     {N, 10, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(0, 2, NULL, 1, 0),
         NEXT_MAX(0, 2, "0/0 0/1"),
         NEXT_MAX(0, 1, "0/2"),
     }},
    {"batch: max_bytes caps a batch and makes it due",
     {N, 10, 100, 100, 1},
     {
         ADD(0, 0, NULL, 40, 0),
         ADD(0, 1, NULL, 40, 0),
         NEXT(0, ""),
         ADD(0, 2, NULL, 40, 0),
         NEXT(0, "0/0 0/1"),
         NEXT(0, ""),
         FLUSH(0, "0/2"),
     }},
    {"batch: exactly max_bytes fits in one batch",
     {N, 10, 100, 100, 1},
     {
         ADD(0, 0, NULL, 50, 0),
         ADD(0, 1, NULL, 50, 0),
         NEXT(0, "0/0 0/1"),
     }},
    {"batch: a record larger than max_bytes goes alone",
     {N, 10, 100, 100, 1},
     {
         ADD(0, 0, NULL, 10, 0),
         ADD(0, 1, NULL, 500, 0),
         ADD(0, 2, NULL, 10, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         NEXT(0, ""),
         FLUSH(0, "0/2"),
         HELD(3, 520),
     }},
    {"batch: a batch never mixes partitions",
     {N, 10, 1000, 0, 2},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(1, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(1, 1, NULL, 1, 0),
         ADD(1, 2, NULL, 1, 0),
         FLUSH(0, "0/0 0/1"),
         FLUSH(0, "1/0 1/1 1/2"),
     }},
    {"batch: linger counts per partition",
     {N, 10, 1000, 100, 2},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(1, 0, NULL, 1, 60),
         DUE(100),
         NEXT(100, "0/0"),
         DUE(160),
         NEXT(159, ""),
         NEXT(160, "1/0"),
     }},
    {"batch: key batches keep per-key order",
     {K, 10, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "b", 1, 0),
         ADD(0, 2, "a", 1, 0),
         ADD(0, 3, NULL, 1, 0),
         ADD(0, 4, "b", 1, 0),
         ADD(0, 5, "a", 1, 0),
         ADD(0, 6, NULL, 1, 0),
         FLUSH(0, "0/0 0/2 0/5 0/1 0/4 0/3 0/6"),
         ADD(0, 7, "a", 1, 0),
         ADD(0, 8, "c", 1, 0),
         FLUSH(0, "0/8"),
         FINISH("0/0 0/2"),
         FLUSH(0, ""),
         FINISH("0/5"),
         FLUSH(0, "0/7"),
     }},
    {"batch: max_records cuts a key lane, the rest of it waits",
     {K, 2, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "a", 1, 0),
         ADD(0, 3, "b", 1, 0),
         NEXT(0, "0/0 0/1"),
         NEXT(0, "0/3"),
         NEXT(0, ""),
         FINISH("0/0 0/1"),
         NEXT(0, "0/2"),
     }},
    {"batch: max_bytes cuts a key lane, the rest of it waits",
     {K, 10, 100, 0, 1},
     {
         ADD(0, 0, "a", 60, 0),
         ADD(0, 1, "a", 60, 0),
         ADD(0, 2, "b", 10, 0),
         FLUSH(0, "0/0"),
         FLUSH(0, "0/2"),
         FLUSH(0, ""),
         FINISH("0/0"),
         FLUSH(0, "0/1"),
     }},
    {"batch: max_bytes cuts a partition lane, the rest of it waits",
     {P, 10, 100, 0, 1},
     {
         ADD(0, 0, NULL, 60, 0),
         ADD(0, 1, NULL, 60, 0),
         ADD(0, 2, NULL, 60, 0),
         FLUSH(0, "0/0"),
         FLUSH(0, ""),
         IN_FLIGHT(0, 1),
         FINISH("0/0"),
         FLUSH(0, "0/1"),
         FLUSH(0, ""),
     }},
    {"batch: max_bytes cut between key lanes, the next lane goes next",
     {K, 10, 100, 0, 1},
     {
         ADD(0, 0, "a", 60, 0),
         ADD(0, 1, "b", 60, 0),
         ADD(0, 2, "c", 30, 0),
         FLUSH(0, "0/0"),
         FLUSH(0, "0/1 0/2"),
         FLUSH(0, ""),
     }},
    {"batch: records that waited behind a busy key are due at once",
     {K, 10, 1000, 100, 1},
     {
         ADD(0, 0, "a", 1, 0),
         NEXT(100, "0/0"),
         ADD(0, 1, "a", 1, 110),
         ADD(0, 2, "a", 1, 150),
         NEXT(200, ""),
         FINISH("0/0"),
         DUE(210),
         NEXT(209, ""),
         NEXT(210, "0/1 0/2"),
     }},
    {"batch: the oldest ready lane starts the linger",
     {K, 10, 1000, 100, 1},
     {
         ADD(0, 0, "a", 1, 0),
         NEXT(100, "0/0"),
         ADD(0, 1, "a", 1, 110),
         ADD(0, 2, "b", 1, 150),
         DUE(250),
         NEXT(200, ""),
         FINISH("0/0"),
         DUE(210),
         NEXT(210, "0/2 0/1"),
     }},
    {"batch: records that waited behind a busy partition are due at once",
     {P, 10, 1000, 100, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         FLUSH(0, "0/0"),
         ADD(0, 1, NULL, 1, 10),
         NEXT(500, ""),
         FINISH("0/0"),
         DUE(110),
         NEXT(500, "0/1"),
     }},

    /* (5) drain */
    {"drain: no new batches, in flight still finishes and moves the watermark",
     {N, 1, 1000, 0, 2},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(0, 2, NULL, 1, 0),
         ADD(0, 3, NULL, 1, 0),
         ADD(1, 0, NULL, 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "1/0"),
         NEXT(0, "0/1"),
         DRAIN(0),
         STALE("0/0 0/1", 1),
         STALE("1/0", 0),
         NEXT(0, ""),
         FLUSH(0, ""),
         DUE(NEVER),
         FINISH("0/1"),
         COMMITS(""),
         FINISH("0/0"),
         COMMITS("0/2"),
         OFFSET(0, 2),
         IN_FLIGHT(0, 0),
         NEXT(0, ""),
         HELD(3, 3),
         REVOKE(0),
         HELD(1, 1),
         FINISH("1/0"),
         COMMITS("1/1"),
         HELD(0, 0),
     }},
    {"drain: a drained key partition gives out nothing when its keys free up",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         NEXT(0, "0/0"),
         DRAIN(0),
         FINISH("0/0"),
         COMMITS("0/1"),
         FLUSH(0, ""),
         DUE(NEVER),
     }},
    {"drain: of an unknown partition is ignored",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         DRAIN(5),
         NEXT(0, "0/0"),
     }},

    /* (6) revoke */
    {"revoke: queued released at once, in flight when settled, no commit",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 10, 0),
         ADD(0, 1, NULL, 10, 0),
         ADD(0, 2, NULL, 10, 0),
         ADD(0, 3, NULL, 10, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         REVOKE(0),
         HELD(2, 20),
         IN_FLIGHT(0, 2),
         STALE("0/0 0/1", 1),
         NEXT(0, ""),
         FLUSH(0, ""),
         OFFSET(0, -1),
         FINISH("0/1"),
         COMMITS(""),
         HELD(1, 10),
         IN_FLIGHT(0, 1),
         FINISH("0/0"),
         COMMITS(""),
         HELD(0, 0),
         IN_FLIGHT(0, 0),
         ADD_FAILS(0, 4, 0),
     }},
    {"revoke: in flight released on abandon",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "b", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/2"),
         REVOKE(0),
         HELD(2, 2),
         ABANDON("0/0"),
         ABANDON("0/2"),
         HELD(0, 0),
         COMMITS(""),
     }},
    {"revoke: re-assigning the same partition starts clean",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "a", 1, 0),
         ADD(0, 2, "b", 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/2"),
         FINISH("0/0"),
         NEXT(0, "0/1"),
         COMMITS("0/1"),
         REVOKE(0),
         HELD(2, 2),
         ASSIGN(0),
         OFFSET(0, -1),
         IN_FLIGHT(0, 2),
         FINISH("0/1 0/2"),
         COMMITS(""),
         IN_FLIGHT(0, 0),
         OFFSET(0, -1),
         ADD(0, 1, "a", 1, 0), /* redelivered from the commit */
         ADD(0, 2, "a", 1, 0),
         OFFSET(0, 1),
         NEXT(0, "0/1"),
         NEXT(0, ""),
         FINISH("0/1"),
         COMMITS("0/2"),
         NEXT(0, "0/2"),
         FINISH("0/2"),
         COMMITS("0/3"),
         HELD(0, 0),
     }},
    {"revoke: the new partition is not held back by the old one's keys",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         NEXT(0, "0/0"),
         REVOKE(0),
         ASSIGN(0),
         ADD(0, 5, "a", 1, 0),
         NEXT(0, "0/5"),
         IN_FLIGHT(0, 2),
         FINISH("0/0"),
         COMMITS(""),
         OFFSET(0, 5),
         FINISH("0/5"),
         COMMITS("0/6"),
     }},
    {"revoke: drain then revoke, others unaffected",
     {P, 1, 1000, 0, 3},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(1, 0, NULL, 1, 0),
         ADD(2, 0, NULL, 1, 0),
         ADD(1, 1, NULL, 1, 0),
         NEXT(0, "0/0"),
         DRAIN(1),
         NEXT(0, "2/0"),
         NEXT(0, ""),
         REVOKE(1),
         HELD(2, 2),
         ADD_FAILS(1, 2, 0),
         ADD(0, 1, NULL, 1, 0),
         FINISH("0/0"),
         NEXT(0, "0/1"),
         FINISH("2/0 0/1"),
         COMMITS("0/2 2/1"),
         OFFSET(1, -1),
         HELD(0, 0),
     }},
    {"revoke: of an unknown or idle partition is harmless",
     {N, 1, 1000, 0, 2},
     {
         REVOKE(5),
         REVOKE(1),
         REVOKE(1),
         ADD_FAILS(1, 0, 0),
         ADD(0, 0, NULL, 1, 0),
         NEXT(0, "0/0"),
     }},
    {"revoke: with records queued in many key lanes",
     {K, 1, 1000, 0, 1},
     {
         ADD(0, 0, "a", 1, 0),
         ADD(0, 1, "b", 1, 0),
         ADD(0, 2, "a", 1, 0),
         ADD(0, 3, "c", 1, 0),
         ADD(0, 4, NULL, 1, 0),
         ADD(0, 5, "b", 1, 0),
         NEXT(0, "0/0"),
         REVOKE(0),
         HELD(1, 1),
         FINISH("0/0"),
         HELD(0, 0),
     }},

    /* (7) abandon */
    {"abandon: does not move the watermark",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(0, 2, NULL, 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         NEXT(0, "0/2"),
         ABANDON("0/0"),
         HELD(2, 2),
         FINISH("0/1 0/2"),
         COMMITS(""),
         OFFSET(0, 0),
         IN_FLIGHT(0, 0),
         HELD(0, 0),
     }},
    {"abandon: in the middle holds the watermark there",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         ADD(0, 1, NULL, 1, 0),
         ADD(0, 2, NULL, 1, 0),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
         NEXT(0, "0/2"),
         FINISH("0/0"),
         ABANDON("0/1"),
         FINISH("0/2"),
         COMMITS("0/1"),
         OFFSET(0, 1),
     }},

    /* (8) refused adds */
    {"add: refuses unassigned partitions and offsets not past the last",
     {K, 1, 1000, 0, 1},
     {
         ADD_FAILS(1, 0, 0),
         ADD_FAILS(0, -1, 0),
         ADD(0, 5, "a", 1, 0),
         ADD_FAILS(0, 5, 0),
         ADD_FAILS(0, 4, 0),
         ADD(0, 6, "b", 1, 0),
         HELD(2, 2),
         OFFSET(0, 5),
         OFFSET(1, -1),
         NEXT(0, "0/5"),
         NEXT(0, "0/6"),
     }},
    {"add: assigning twice is harmless",
     {N, 1, 1000, 0, 1},
     {
         ADD(0, 0, NULL, 1, 0),
         ASSIGN(0),
         ADD(0, 1, NULL, 1, 0),
         HELD(2, 2),
         NEXT(0, "0/0"),
         NEXT(0, "0/1"),
     }},

    /* (9) accounting */
    {"accounting: records and bytes return to 0",
     {K, 3, 1000, 0, 2},
     {
         ADD(0, 0, "a", 7, 0),
         ADD(0, 1, "b", 11, 0),
         ADD(1, 0, NULL, 13, 0),
         ADD(1, 1, "a", 0, 0),
         HELD(4, 31),
         NEXT(0, "0/0 0/1"),
         HELD(4, 31),
         NEXT(0, "1/0 1/1"),
         FINISH("0/1"),
         HELD(3, 20),
         ABANDON("1/1"),
         HELD(2, 20),
         FINISH("0/0 1/0"),
         HELD(0, 0),
     }},
};

/* The state of one script while it runs. */
struct run {
    const struct scenario *sc;
    size_t step;
    ferry_dispatch *d;
    struct ferry_dispatch_rec *held[HELD_MAX]; /* handed out, not yet settled */
    size_t nheld;
};

static void rec_name(char *out, size_t size, const struct ferry_dispatch_rec *rec)
{
    snprintf(out, size, "%" PRId32 "/%" PRId64, rec->view.partition, rec->view.offset);
}

static void check_batch(struct run *r, const struct step *s)
{
    struct ferry_dispatch_rec *out[BATCH_MAX];
    char got[NAMES_MAX] = "", name[64];
    size_t n = ferry_dispatch_next(r->d, s->now, s->flush, out, s->count ? s->count : BATCH_MAX);

    for (size_t i = 0; i < n; i++) {
        rec_name(name, sizeof(name), out[i]);
        if (i)
            strncat(got, " ", sizeof(got) - strlen(got) - 1);
        strncat(got, name, sizeof(got) - strlen(got) - 1);
        assert_true(r->nheld < HELD_MAX);
        r->held[r->nheld++] = out[i];
    }
    if (strcmp(got, s->recs) != 0)
        fail_msg("%s: step %zu: next(%" PRId64 ", flush %d) gave \"%s\", want \"%s\"", r->sc->name,
                 r->step, s->now, s->flush, got, s->recs);
}

/* Moves the held records named in names to out (the oldest first when a name repeats). */
static size_t take_named(struct run *r, const char *names, struct ferry_dispatch_rec **out)
{
    char buf[NAMES_MAX], name[64];
    size_t n = 0;

    snprintf(buf, sizeof(buf), "%s", names);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        size_t i;
        for (i = 0; i < r->nheld; i++) {
            rec_name(name, sizeof(name), r->held[i]);
            if (strcmp(name, tok) == 0)
                break;
        }
        if (i == r->nheld)
            fail_msg("%s: step %zu: %s is not in flight", r->sc->name, r->step, tok);
        out[n++] = r->held[i];
        memmove(&r->held[i], &r->held[i + 1], (r->nheld - i - 1) * sizeof(r->held[0]));
        r->nheld--;
    }
    return n;
}

struct report {
    int32_t partition;
    int64_t offset;
};

struct reports {
    struct report r[64];
    size_t n;
};

static void on_commit(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    struct reports *reps = arg;

    assert_string_equal(topic, TOPIC);
    assert_true(reps->n < 64);
    reps->r[reps->n].partition = partition;
    reps->r[reps->n].offset = offset;
    reps->n++;
}

static int report_cmp(const void *a, const void *b)
{
    const struct report *x = a, *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static void check_commits(struct run *r, const struct step *s)
{
    struct reports reps = {.n = 0};
    char got[NAMES_MAX] = "", name[64];

    ferry_dispatch_take_commits(r->d, on_commit, &reps);
    qsort(reps.r, reps.n, sizeof(reps.r[0]), report_cmp);
    for (size_t i = 0; i < reps.n; i++) {
        snprintf(name, sizeof(name), "%s%" PRId32 "/%" PRId64, i ? " " : "", reps.r[i].partition,
                 reps.r[i].offset);
        strncat(got, name, sizeof(got) - strlen(got) - 1);
    }
    if (strcmp(got, s->recs) != 0)
        fail_msg("%s: step %zu: take_commits reported \"%s\", want \"%s\"", r->sc->name, r->step,
                 got, s->recs);
}

static void check_stale(struct run *r, const struct step *s)
{
    struct ferry_dispatch_rec *recs[BATCH_MAX];
    size_t n = take_named(r, s->recs, recs);

    for (size_t i = 0; i < n; i++) {
        if ((ferry_dispatch_rec_stale(recs[i]) != 0) != (s->count != 0))
            fail_msg("%s: step %zu: rec_stale is %d, want %zu", r->sc->name, r->step,
                     ferry_dispatch_rec_stale(recs[i]), s->count);
        r->held[r->nheld++] = recs[i]; /* still in flight */
    }
}

static void settle_named(struct run *r, const struct step *s)
{
    struct ferry_dispatch_rec *recs[BATCH_MAX];
    size_t n = take_named(r, s->recs, recs);

    if (s->op == OP_FINISH)
        ferry_dispatch_finish(r->d, recs, n);
    else
        ferry_dispatch_abandon(r->d, recs, n);
}

static void expect_i64(struct run *r, const char *what, int64_t got, int64_t want)
{
    if (got != want)
        fail_msg("%s: step %zu: %s is %" PRId64 ", want %" PRId64, r->sc->name, r->step, what, got,
                 want);
}

static void run_step(struct run *r, const struct step *s)
{
    switch (s->op) {
    case OP_ADD:
        expect_i64(r, "add", add(r->d, s->part, s->offset, s->key, s->bytes, s->now), s->rc);
        break;
    case OP_NEXT:
        check_batch(r, s);
        break;
    case OP_FINISH:
    case OP_ABANDON:
        settle_named(r, s);
        break;
    case OP_COMMITS:
        check_commits(r, s);
        break;
    case OP_OFFSET:
        expect_i64(r, "commit offset", ferry_dispatch_commit_offset(r->d, TOPIC, s->part),
                   s->offset);
        break;
    case OP_IN_FLIGHT:
        expect_i64(r, "in flight", (int64_t)ferry_dispatch_in_flight(r->d, TOPIC, s->part),
                   (int64_t)s->count);
        break;
    case OP_HELD:
        expect_i64(r, "records", (int64_t)ferry_dispatch_records(r->d), (int64_t)s->count);
        expect_i64(r, "bytes", (int64_t)ferry_dispatch_bytes(r->d), (int64_t)s->bytes);
        break;
    case OP_DUE:
        expect_i64(r, "next due", ferry_dispatch_next_due_ms(r->d), s->now);
        break;
    case OP_DUE_BY:
        if (ferry_dispatch_next_due_ms(r->d) > s->now)
            fail_msg("%s: step %zu: next due at %" PRId64 ", want by %" PRId64, r->sc->name,
                     r->step, ferry_dispatch_next_due_ms(r->d), s->now);
        break;
    case OP_STALE:
        check_stale(r, s);
        break;
    case OP_ASSIGN:
        expect_i64(r, "assign", ferry_dispatch_assign(r->d, TOPIC, s->part), 0);
        break;
    case OP_DRAIN:
        ferry_dispatch_drain(r->d, TOPIC, s->part);
        break;
    case OP_REVOKE:
        ferry_dispatch_revoke(r->d, TOPIC, s->part);
        break;
    case OP_END:
        break;
    }
}

static void run_scenario(const struct scenario *sc)
{
    struct run r = {.sc = sc};

    r.d = dispatch_new(sc->setup.ordering, sc->setup.max_records, sc->setup.max_bytes,
                       sc->setup.linger_ms);
    for (int32_t p = 0; p < sc->setup.parts; p++)
        assert_int_equal(ferry_dispatch_assign(r.d, TOPIC, p), 0);
    for (r.step = 0; r.step < sizeof(sc->steps) / sizeof(sc->steps[0]); r.step++) {
        const struct step *s = &sc->steps[r.step];
        if (s->op == OP_END)
            break;
        run_step(&r, s);
        check_held(r.d, sc->name, r.step);
    }
    /* What is still in flight comes back abandoned, as a worker shutting down does. */
    ferry_dispatch_abandon(r.d, r.held, r.nheld);
    check_held(r.d, sc->name, r.step);
    ferry_dispatch_destroy(r.d);
    check_all_released_once(sc->name);
}

static void test_scenarios(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        run_scenario(&scenarios[i]);
}

/* ---- (1) every finishing order of one partition ---- */

#define ORDER_LEN 5

struct finish_case {
    const char *name;
    int64_t order[ORDER_LEN];   /* offsets in the order they finish */
    int64_t commits[ORDER_LEN]; /* the commit offset after each */
};

/* Offsets consumed: 10, 11, 12, 15, 16 (13 and 14 compacted away). */
static const int64_t finish_offsets[ORDER_LEN] = {10, 11, 12, 15, 16};

static const struct finish_case finish_cases[] = {
    {"in order", {10, 11, 12, 15, 16}, {11, 12, 15, 16, 17}},
    {"reverse", {16, 15, 12, 11, 10}, {10, 10, 10, 10, 17}},
    {"middle first", {12, 10, 16, 11, 15}, {10, 11, 11, 15, 17}},
    {"first last", {11, 12, 15, 16, 10}, {10, 10, 10, 10, 17}},
    {"pairs", {11, 10, 15, 12, 16}, {10, 12, 12, 16, 17}},
    {"across the gap", {15, 12, 11, 10, 16}, {10, 10, 10, 16, 17}},
};

static void check_finish_order(const struct finish_case *c)
{
    ferry_dispatch *d = dispatch_new(N, 1, 1000, 0);
    struct ferry_dispatch_rec *recs[ORDER_LEN];
    int64_t before = 10;

    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 3), 0);
    for (size_t i = 0; i < ORDER_LEN; i++)
        assert_int_equal(add(d, 3, finish_offsets[i], NULL, 1, 0), 0);
    for (size_t i = 0; i < ORDER_LEN; i++) {
        assert_int_equal(ferry_dispatch_next(d, 0, 0, &recs[i], 1), 1);
        assert_int_equal(recs[i]->view.offset, finish_offsets[i]);
    }
    for (size_t i = 0; i < ORDER_LEN; i++) {
        struct reports reps = {.n = 0};
        size_t j = 0;

        while (recs[j]->view.offset != c->order[i])
            j++;
        ferry_dispatch_finish(d, &recs[j], 1);
        recs[j] = recs[ORDER_LEN - 1 - i]; /* keep the unfinished ones in front */
        if (ferry_dispatch_commit_offset(d, TOPIC, 3) != c->commits[i])
            fail_msg("%s: after finishing %" PRId64 ": commit offset %" PRId64 ", want %" PRId64,
                     c->name, c->order[i], ferry_dispatch_commit_offset(d, TOPIC, 3),
                     c->commits[i]);
        ferry_dispatch_take_commits(d, on_commit, &reps);
        if (c->commits[i] != before) {
            if (reps.n != 1 || reps.r[0].partition != 3 || reps.r[0].offset != c->commits[i])
                fail_msg("%s: after finishing %" PRId64 ": %zu reports, want one of %" PRId64,
                         c->name, c->order[i], reps.n, c->commits[i]);
        } else if (reps.n) {
            fail_msg("%s: after finishing %" PRId64 ": reported %" PRId64 ", which did not move",
                     c->name, c->order[i], reps.r[0].offset);
        }
        before = c->commits[i];
    }
    assert_int_equal(ferry_dispatch_records(d), 0);
    ferry_dispatch_destroy(d);
    check_all_released_once(c->name);
}

static void test_finish_orders(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(finish_cases) / sizeof(finish_cases[0]); i++)
        check_finish_order(&finish_cases[i]);
}

/* ---- odds and ends ---- */

static void test_topics_apart(void **state)
{
    ferry_dispatch *d = dispatch_new(K, 1, 1000, 0);
    struct ferry_record view = {.topic = "orders",
                                .partition = 0,
                                .offset = 7,
                                .timestamp_ms = -1,
                                .key = "a",
                                .key_len = 1};
    struct ferry_dispatch_rec *t, *orders;

    (void)state;
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0);
    assert_int_equal(ferry_dispatch_assign(d, "orders", 0), 0);
    assert_int_equal(add(d, 0, 7, "a", 1, 0), 0);
    assert_int_equal(ferry_dispatch_add(d, &view, msg_new(1), 1, 0), 0);
    /* Same partition number, same key: still two partitions, two lanes. */
    assert_int_equal(ferry_dispatch_next(d, 0, 0, &t, 1), 1);
    assert_int_equal(ferry_dispatch_next(d, 0, 0, &orders, 1), 1);
    assert_string_equal(t->view.topic, TOPIC);
    assert_string_equal(orders->view.topic, "orders");
    ferry_dispatch_finish(d, &orders, 1);
    assert_int_equal(ferry_dispatch_commit_offset(d, "orders", 0), 8);
    assert_int_equal(ferry_dispatch_commit_offset(d, TOPIC, 0), 7);
    ferry_dispatch_revoke(d, "orders", 0);
    assert_int_equal(ferry_dispatch_in_flight(d, TOPIC, 0), 1);
    assert_int_equal(ferry_dispatch_in_flight(d, "orders", 0), 0);
    ferry_dispatch_finish(d, &t, 1);
    assert_int_equal(ferry_dispatch_commit_offset(d, TOPIC, 0), 8);
    assert_int_equal(ferry_dispatch_records(d), 0);
    ferry_dispatch_destroy(d);
    check_all_released_once("topics apart");
}

/* A partition's fetch counts as started from the first record noted after its assignment;
 * an assignment, again or after a revoke, starts over. The route pauses and resumes only
 * partitions whose fetch has started: in librdkafka 2.0.2 a pause or resume right after an
 * assignment can drop the fetch start, and the partition would never be fetched. */
static void test_fetched_since_assignment(void **state)
{
    ferry_dispatch *d = dispatch_new(K, 4, 1000, 0);

    (void)state;
    assert_int_equal(ferry_dispatch_note_fetched(d, TOPIC, 0), 0); /* not assigned */
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 0), 0);
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0);
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 1), 0);
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 0), 0);
    assert_int_equal(ferry_dispatch_note_fetched(d, TOPIC, 0), 1); /* the first record */
    assert_int_equal(ferry_dispatch_note_fetched(d, TOPIC, 0), 0); /* the next ones */
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 0), 1);
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 1), 0); /* each partition its own */
    assert_int_equal(ferry_dispatch_fetched(d, "other", 0), 0);
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0); /* assigned again */
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 0), 0);
    assert_int_equal(ferry_dispatch_note_fetched(d, TOPIC, 0), 1);
    ferry_dispatch_revoke(d, TOPIC, 0);
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 0), 0);
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0); /* back after a revoke */
    assert_int_equal(ferry_dispatch_fetched(d, TOPIC, 0), 0);
    ferry_dispatch_destroy(d);
}

static void test_destroy_releases_queued(void **state)
{
    ferry_dispatch *d = dispatch_new(K, 4, 1000, 100);

    (void)state;
    ferry_dispatch_destroy(NULL);
    for (int32_t p = 0; p < 3; p++) {
        assert_int_equal(ferry_dispatch_assign(d, TOPIC, p), 0);
        for (int64_t o = 0; o < 200; o++)
            assert_int_equal(add(d, p, o, o % 3 ? "k" : NULL, 5, 0), 0);
    }
    ferry_dispatch_drain(d, TOPIC, 1);
    ferry_dispatch_destroy(d);
    check_all_released_once("destroy");
}

/* A worker that stops may drop requests without settling them; destroy releases those too. */
static void test_destroy_releases_in_flight(void **state)
{
    ferry_dispatch *d = dispatch_new(K, 4, 1000, 0);
    struct ferry_dispatch_rec *out[4];

    (void)state;
    for (int32_t p = 0; p < 3; p++) {
        assert_int_equal(ferry_dispatch_assign(d, TOPIC, p), 0);
        for (int64_t o = 0; o < 20; o++)
            assert_int_equal(add(d, p, o, o % 2 ? "k" : NULL, 5, 0), 0);
    }
    for (int i = 0; i < 5; i++)
        assert_true(ferry_dispatch_next(d, 0, 1, out, 4) > 0);
    ferry_dispatch_finish(d, out, 1); /* one settled, the rest left in flight */
    ferry_dispatch_drain(d, TOPIC, 1);
    ferry_dispatch_revoke(d, TOPIC, 2); /* its records in flight outlive the partition */
    assert_true(ferry_dispatch_in_flight(d, TOPIC, 2) > 0);
    ferry_dispatch_destroy(d);
    check_all_released_once("destroy in flight");
}

/* Records cut from a batch go back to their lanes in order: under key order, a key's wait
 * until its records still in flight are finished; without order, they come out at once. */
static void test_give_back(void **state)
{
    const enum ferry_ordering orderings[] = {K, FERRY_ORDERING_NONE};
    struct ferry_dispatch_rec *out[8], *again[8];

    (void)state;
    for (size_t o = 0; o < 2; o++) {
        ferry_dispatch *d = dispatch_new(orderings[o], 8, 1000, 0);
        size_t n;
        assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0);
        for (int64_t off = 0; off < 5; off++)
            assert_int_equal(add(d, 0, off, "k", 5, 0), 0);
        assert_int_equal(ferry_dispatch_next(d, 0, 1, out, 8), 5);
        ferry_dispatch_give_back(d, out + 2, 3); /* the body held only two */
        assert_int_equal(ferry_dispatch_in_flight(d, TOPIC, 0), 2);
        n = ferry_dispatch_next(d, 0, 1, again, 8);
        if (orderings[o] == K) {
            assert_int_equal(n, 0); /* the key has two records in flight */
            ferry_dispatch_finish(d, out, 2);
            n = ferry_dispatch_next(d, 0, 1, again, 8);
        }
        assert_int_equal(n, 3);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(again[i]->view.offset, (int64_t)i + 2);
            assert_true(again[i]->given_back);
        }
        ferry_dispatch_finish(d, again, n);
        if (orderings[o] != K)
            ferry_dispatch_finish(d, out, 2);
        assert_int_equal(ferry_dispatch_commit_offset(d, TOPIC, 0), 5);
        assert_int_equal(ferry_dispatch_records(d), 0);
        ferry_dispatch_destroy(d);
        check_all_released_once("give back");
    }
}

static void test_many_keys(void **state)
{
    ferry_dispatch *d = dispatch_new(K, 1, 1000, 0);
    struct ferry_dispatch_rec *out[1];
    char keys[3000][8];

    (void)state;
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0);
    for (int i = 0; i < 3000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i % 1500);
        assert_int_equal(add(d, 0, i, keys[i], 1, 0), 0);
    }
    /* The first record of each of the 1500 keys goes, the second of none. */
    for (int i = 0; i < 1500; i++) {
        assert_int_equal(ferry_dispatch_next(d, 0, 0, out, 1), 1);
        assert_int_equal(out[0]->view.offset, i);
        ferry_dispatch_finish(d, out, 1);
    }
    for (int i = 1500; i < 3000; i++) {
        assert_int_equal(ferry_dispatch_next(d, 0, 0, out, 1), 1);
        assert_int_equal(out[0]->view.offset, i);
        ferry_dispatch_finish(d, out, 1);
    }
    assert_int_equal(ferry_dispatch_next(d, 0, 1, out, 1), 0);
    assert_int_equal(ferry_dispatch_commit_offset(d, TOPIC, 0), 3000);
    assert_int_equal(ferry_dispatch_records(d), 0);
    /* 1500 keys had lanes; once idle, all but the kept ones were freed. */
    assert_int_equal(ferry_dispatch_key_lanes(d, TOPIC, 0), FERRY_DISPATCH_IDLE_LANES_MAX);
    ferry_dispatch_destroy(d);
    check_all_released_once("many keys");
}

/* Below the cap, idle key lanes stay for their keys' next records, and are reused. */
static void test_idle_lanes_kept(void **state)
{
    ferry_dispatch *d = dispatch_new(K, 1, 1000, 0);
    struct ferry_dispatch_rec *out[1];
    char keys[200][8];

    (void)state;
    assert_int_equal(ferry_dispatch_assign(d, TOPIC, 0), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i % 100);
        assert_int_equal(add(d, 0, i, keys[i], 1, 0), 0);
        assert_int_equal(ferry_dispatch_next(d, 0, 0, out, 1), 1);
        ferry_dispatch_finish(d, out, 1);
        assert_int_equal(ferry_dispatch_key_lanes(d, TOPIC, 0), (size_t)(i < 100 ? i + 1 : 100));
    }
    assert_int_equal(ferry_dispatch_commit_offset(d, TOPIC, 0), 200);
    ferry_dispatch_destroy(d);
    check_all_released_once("idle lanes kept");
}

/* ---- (10) randomized, against a model ---- */

#define R_PARTS 4
#define R_KEYS 20
#define R_STEPS 30000
#define R_MAX_BYTES 300

enum rstate { R_QUEUED, R_FLIGHT, R_FINISHED, R_ABANDONED, R_DROPPED };

struct rrec {
    int32_t part;
    int gen; /* the assignment of its partition it was consumed in */
    int64_t offset;
    int key; /* -1 for none */
    enum rstate state;
};

/* A partition in the model; everything but gen and flight describes its current assignment. */
struct rpart {
    int gen;
    int draining;
    size_t flight;    /* records in flight, of any assignment */
    size_t *consumed; /* message indices, in offset order */
    size_t nconsumed;
    size_t low;          /* consumed[0..low) are finished */
    int64_t next_offset; /* offset of the next record to consume */
    int64_t last_out;    /* the last handed out (ordering partition and none) */
    int64_t reported;    /* the last commit reported, -1 before */
    size_t gen_flight;   /* records in flight of this assignment */
    int64_t key_out[R_KEYS];
    size_t key_busy[R_KEYS];
};

struct rmodel {
    enum ferry_ordering ordering;
    size_t max_records;
    ferry_dispatch *d;
    struct rrec *recs; /* indexed like the messages */
    struct rpart parts[R_PARTS];
    struct ferry_dispatch_rec **flight;
    size_t nflight;
    size_t held, held_bytes;
    uint64_t rng;
    int64_t now;
};

static const char *const rkeys[R_KEYS] = {"k0",  "k1",  "k2",  "k3",  "k4",  "k5",  "k6",
                                          "k7",  "k8",  "k9",  "k10", "k11", "k12", "k13",
                                          "k14", "k15", "k16", "k17", "k18", "k19"};

static uint32_t rnd(struct rmodel *m, uint32_t n)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return (uint32_t)(m->rng % n);
}

/* The commit offset the model expects for a partition's current assignment. */
static int64_t model_commit(struct rmodel *m, int32_t part)
{
    struct rpart *p = &m->parts[part];

    while (p->low < p->nconsumed && m->recs[p->consumed[p->low]].state == R_FINISHED)
        p->low++;
    if (p->low < p->nconsumed)
        return m->recs[p->consumed[p->low]].offset;
    if (!p->nconsumed)
        return -1;
    return m->recs[p->consumed[p->nconsumed - 1]].offset + 1;
}

/* Starts a new assignment of a partition, resuming at next_offset as Kafka would. */
static void r_assign(struct rmodel *m, int32_t part, int64_t next_offset)
{
    struct rpart *p = &m->parts[part];

    p->gen++;
    p->draining = 0;
    p->nconsumed = p->low = 0;
    p->next_offset = next_offset;
    p->last_out = p->reported = -1;
    p->gen_flight = 0;
    for (int k = 0; k < R_KEYS; k++) {
        p->key_out[k] = -1;
        p->key_busy[k] = 0;
    }
    assert_int_equal(ferry_dispatch_assign(m->d, TOPIC, part), 0);
}

static void r_add(struct rmodel *m)
{
    int32_t part = (int32_t)rnd(m, R_PARTS);
    struct rpart *p = &m->parts[part];
    int key = rnd(m, 5) == 0 ? -1 : (int)rnd(m, R_KEYS);
    size_t bytes = 1 + rnd(m, 120);
    size_t i = nmsgs;

    if (p->draining)
        return;
    assert_int_equal(add(m->d, part, p->next_offset, key < 0 ? NULL : rkeys[key], bytes, m->now),
                     0);
    m->recs[i] = (struct rrec){part, p->gen, p->next_offset, key, R_QUEUED};
    p->consumed[p->nconsumed++] = i;
    m->held++;
    m->held_bytes += bytes;
    p->next_offset += 1 + (rnd(m, 10) == 0); /* now and then a gap, as compaction leaves */
}

/* Checks one record handed out, in its batch, against the order its lane promises. */
static void check_order(struct rmodel *m, struct rpart *p, const struct rrec *r)
{
    if (m->ordering == FERRY_ORDERING_KEY && r->key >= 0) {
        /* Records of the same key earlier in this batch are not counted busy yet. */
        if (p->key_busy[r->key])
            fail_msg("partition %d: key %d handed out while in flight", r->part, r->key);
        if (r->offset <= p->key_out[r->key])
            fail_msg("partition %d: key %d: offset %" PRId64 " after %" PRId64, r->part, r->key,
                     r->offset, p->key_out[r->key]);
        p->key_out[r->key] = r->offset;
    } else if (m->ordering != FERRY_ORDERING_KEY) {
        if (r->offset <= p->last_out)
            fail_msg("partition %d: offset %" PRId64 " after %" PRId64, r->part, r->offset,
                     p->last_out);
        p->last_out = r->offset;
    }
}

static void check_handout(struct rmodel *m, struct ferry_dispatch_rec **out, size_t n)
{
    int32_t part = out[0]->view.partition;
    struct rpart *p = &m->parts[part];
    size_t bytes = 0;

    assert_true(n <= m->max_records);
    assert_false(p->draining);
    if (m->ordering == FERRY_ORDERING_PARTITION && p->gen_flight)
        fail_msg("partition %d handed out with a request in flight", part);
    for (size_t i = 0; i < n; i++) {
        struct rrec *r = &m->recs[msg_index(out[i]->msg)];

        assert_int_equal(r->state, R_QUEUED);
        assert_int_equal(r->part, part); /* one partition per batch */
        assert_int_equal(r->gen, p->gen);
        assert_false(ferry_dispatch_rec_stale(out[i]));
        check_order(m, p, r);
        bytes += out[i]->bytes;
    }
    if (n > 1 && bytes > R_MAX_BYTES)
        fail_msg("a batch of %zu records holds %zu bytes", n, bytes);
    for (size_t i = 0; i < n; i++) {
        struct rrec *r = &m->recs[msg_index(out[i]->msg)];

        r->state = R_FLIGHT;
        if (r->key >= 0)
            p->key_busy[r->key]++;
        m->flight[m->nflight++] = out[i];
    }
    p->gen_flight += n;
    p->flight += n;
}

static void r_next(struct rmodel *m, int flush)
{
    struct ferry_dispatch_rec *out[BATCH_MAX];
    size_t n = ferry_dispatch_next(m->d, m->now, flush, out, BATCH_MAX);

    if (n)
        check_handout(m, out, n);
}

/* Takes a record out of the model's flight and gives it its next state. */
static size_t r_land(struct rmodel *m, size_t j, int finish)
{
    struct ferry_dispatch_rec *rec = m->flight[j];
    size_t i = msg_index(rec->msg);
    struct rrec *r = &m->recs[i];
    struct rpart *p = &m->parts[r->part];

    m->flight[j] = m->flight[--m->nflight];
    p->flight--;
    m->held--;
    m->held_bytes -= msg_bytes[i];
    if (r->gen != p->gen) {
        r->state = R_DROPPED;
        return i;
    }
    r->state = finish ? R_FINISHED : R_ABANDONED;
    p->gen_flight--;
    if (r->key >= 0)
        p->key_busy[r->key]--;
    return i;
}

/* Finishes or abandons a few random records in flight, in one call. */
static void r_settle(struct rmodel *m, int finish)
{
    struct ferry_dispatch_rec *recs[8];
    size_t idx[8], n = 0, want = 1 + rnd(m, 8);

    while (n < want && m->nflight) {
        size_t j = rnd(m, (uint32_t)m->nflight);

        recs[n] = m->flight[j];
        idx[n++] = r_land(m, j, finish);
    }
    if (finish)
        ferry_dispatch_finish(m->d, recs, n);
    else
        ferry_dispatch_abandon(m->d, recs, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(released[idx[i]], 1);
}

/* Revokes a partition and assigns it again, resuming at its commit offset. */
static void r_reassign(struct rmodel *m, int32_t part)
{
    struct rpart *p = &m->parts[part];
    int64_t commit = model_commit(m, part);

    ferry_dispatch_revoke(m->d, TOPIC, part);
    for (size_t c = 0; c < p->nconsumed; c++) {
        size_t i = p->consumed[c];
        if (m->recs[i].state != R_QUEUED)
            continue;
        if (released[i] != 1)
            fail_msg("partition %d: queued offset %" PRId64 " not released by revoke", part,
                     m->recs[i].offset);
        m->recs[i].state = R_DROPPED;
        m->held--;
        m->held_bytes -= msg_bytes[i];
    }
    r_assign(m, part, commit < 0 ? p->next_offset : commit);
}

static void on_random_commit(void *arg, const char *topic, int32_t partition, int64_t offset)
{
    struct rmodel *m = arg;
    struct rpart *p;

    assert_string_equal(topic, TOPIC);
    assert_true(partition >= 0 && partition < R_PARTS);
    p = &m->parts[partition];
    if (offset != model_commit(m, partition))
        fail_msg("partition %d: reported %" PRId64 ", model says %" PRId64, partition, offset,
                 model_commit(m, partition));
    if (offset <= p->reported)
        fail_msg("partition %d: reported %" PRId64 " after %" PRId64, partition, offset,
                 p->reported);
    p->reported = offset;
}

static void check_model(struct rmodel *m)
{
    for (int32_t part = 0; part < R_PARTS; part++) {
        int64_t commit = ferry_dispatch_commit_offset(m->d, TOPIC, part);

        if (commit != model_commit(m, part))
            fail_msg("partition %d: commit offset %" PRId64 ", model says %" PRId64, part, commit,
                     model_commit(m, part));
        assert_int_equal(ferry_dispatch_in_flight(m->d, TOPIC, part), m->parts[part].flight);
    }
    if (ferry_dispatch_records(m->d) != m->held || ferry_dispatch_bytes(m->d) != m->held_bytes)
        fail_msg("dispatcher holds %zu records, %zu bytes; model says %zu, %zu",
                 ferry_dispatch_records(m->d), ferry_dispatch_bytes(m->d), m->held, m->held_bytes);
}

/* After a last burst of records, with nothing more consumed, flushing and finishing must
 * empty the dispatcher: no record is left stuck in a lane that never comes back. */
static void r_finish_all(struct rmodel *m)
{
    for (int32_t part = 0; part < R_PARTS; part++)
        if (m->parts[part].draining)
            r_reassign(m, part);
    for (int i = 0; i < 500; i++)
        r_add(m);
    for (int round = 0; round < 100000 && m->held; round++) {
        r_next(m, 1);
        if (m->nflight && rnd(m, 2))
            r_settle(m, 1);
        check_model(m);
    }
    assert_int_equal(ferry_dispatch_records(m->d), 0);
    assert_int_equal(ferry_dispatch_bytes(m->d), 0);
}

/* Never past a record of the current assignment that did not finish. */
static void check_never_past_unfinished(struct rmodel *m)
{
    for (int32_t part = 0; part < R_PARTS; part++) {
        const struct rpart *p = &m->parts[part];
        int64_t commit = ferry_dispatch_commit_offset(m->d, TOPIC, part);

        for (size_t c = 0; c < p->nconsumed; c++) {
            const struct rrec *r = &m->recs[p->consumed[c]];
            if (r->state != R_FINISHED && commit > r->offset)
                fail_msg("partition %d: commit %" PRId64 " passes unfinished %" PRId64, part,
                         commit, r->offset);
        }
    }
}

struct random_case {
    enum ferry_ordering ordering;
    size_t max_records;
    int64_t linger_ms;
    uint64_t seed;
};

static const struct random_case random_cases[] = {
    {K, 1, 0, 1}, {K, 5, 3, 2}, {K, 16, 10, 3}, {P, 1, 0, 4},
    {P, 8, 5, 5}, {N, 1, 0, 6}, {N, 8, 5, 7},   {K, 3, 0, 8},
};

static void r_step(struct rmodel *m)
{
    uint32_t what = rnd(m, 100);
    int32_t part = (int32_t)rnd(m, R_PARTS);

    m->now += rnd(m, 3);
    if (what < 45) {
        r_add(m);
    } else if (what < 70) {
        r_next(m, rnd(m, 5) == 0);
    } else if (what < 92) {
        r_settle(m, 1);
    } else if (what < 94) {
        r_settle(m, 0);
    } else if (what < 98) {
        ferry_dispatch_take_commits(m->d, on_random_commit, m);
    } else if (what < 99) {
        ferry_dispatch_drain(m->d, TOPIC, part);
        m->parts[part].draining = 1;
    } else {
        ferry_dispatch_take_commits(m->d, on_random_commit, m);
        r_reassign(m, part);
    }
}

static void run_random(const struct random_case *c)
{
    struct rmodel m = {.ordering = c->ordering,
                       .max_records = c->max_records,
                       .rng = c->seed * 0x9e3779b97f4a7c15u + 1};

    m.d = dispatch_new(c->ordering, c->max_records, R_MAX_BYTES, c->linger_ms);
    m.recs = calloc(MSGS_MAX, sizeof(*m.recs));
    m.flight = calloc(MSGS_MAX, sizeof(*m.flight));
    assert_non_null(m.recs);
    assert_non_null(m.flight);
    for (int32_t part = 0; part < R_PARTS; part++) {
        m.parts[part].consumed = calloc(MSGS_MAX, sizeof(size_t));
        assert_non_null(m.parts[part].consumed);
        r_assign(&m, part, 0);
    }
    for (int i = 0; i < R_STEPS; i++) {
        r_step(&m);
        check_model(&m);
    }
    check_never_past_unfinished(&m);
    ferry_dispatch_take_commits(m.d, on_random_commit, &m);
    r_finish_all(&m);
    check_never_past_unfinished(&m);
    ferry_dispatch_take_commits(m.d, on_random_commit, &m);
    ferry_dispatch_destroy(m.d);
    check_all_released_once("random");
    for (int32_t part = 0; part < R_PARTS; part++)
        free(m.parts[part].consumed);
    free(m.recs);
    free(m.flight);
}

static void test_random(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(random_cases) / sizeof(random_cases[0]); i++)
        run_random(&random_cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_finish_orders),
        cmocka_unit_test(test_topics_apart),
        cmocka_unit_test(test_fetched_since_assignment),
        cmocka_unit_test(test_destroy_releases_queued),
        cmocka_unit_test(test_destroy_releases_in_flight),
        cmocka_unit_test(test_give_back),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_idle_lanes_kept),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
