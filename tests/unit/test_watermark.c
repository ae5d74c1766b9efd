/*
 * test_watermark.c - unit tests of the per-partition commit watermark (src/route/watermark.c).
 *
 * Scripted cases check each step's result, watermark and pending count; a long randomized run
 * with many records in flight, finished in shuffled order, compares the tracker with a plain
 * array model while the ring grows and wraps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "route/watermark.h"

enum op_kind {
    OP_END,
    OP_TRACK,
    OP_FINISH,
};

/* One step and the state expected right after it. */
struct op {
    enum op_kind kind;
    int64_t offset;
    int want_rc;
    int64_t want_commit;
    size_t want_pending;
};

struct wm_case {
    const char *name;
    struct op ops[16];
};

static const struct wm_case cases[] = {
    {"nothing tracked", {{OP_FINISH, 0, -1, -1, 0}, {OP_FINISH, 5, -1, -1, 0}}},
    {"in order",
     {{OP_TRACK, 0, 0, 0, 1},
      {OP_TRACK, 1, 0, 0, 2},
      {OP_TRACK, 2, 0, 0, 3},
      {OP_FINISH, 0, 0, 1, 2},
      {OP_FINISH, 1, 0, 2, 1},
      {OP_FINISH, 2, 0, 3, 0}}},
    {"reverse order",
     {{OP_TRACK, 10, 0, 10, 1},
      {OP_TRACK, 11, 0, 10, 2},
      {OP_TRACK, 12, 0, 10, 3},
      {OP_FINISH, 12, 0, 10, 3},
      {OP_FINISH, 11, 0, 10, 3},
      {OP_FINISH, 10, 0, 13, 0}}},
    {"middle first",
     {{OP_TRACK, 1, 0, 1, 1},
      {OP_TRACK, 2, 0, 1, 2},
      {OP_TRACK, 3, 0, 1, 3},
      {OP_TRACK, 4, 0, 1, 4},
      {OP_FINISH, 3, 0, 1, 4},
      {OP_FINISH, 1, 0, 2, 3},
      {OP_FINISH, 2, 0, 4, 1},
      {OP_FINISH, 4, 0, 5, 0}}},
    {"gaps in offsets",
     {{OP_TRACK, 5, 0, 5, 1},
      {OP_TRACK, 9, 0, 5, 2},
      {OP_TRACK, 20, 0, 5, 3},
      {OP_FINISH, 5, 0, 9, 2},
      {OP_FINISH, 20, 0, 9, 2},
      {OP_FINISH, 9, 0, 21, 0}}},
    {"a gap before the finished offset",
     {{OP_TRACK, 1, 0, 1, 1},
      {OP_TRACK, 3, 0, 1, 2},
      {OP_TRACK, 4, 0, 1, 3},
      {OP_TRACK, 5, 0, 1, 4},
      {OP_FINISH, 4, 0, 1, 4},
      {OP_FINISH, 2, -1, 1, 4},
      {OP_FINISH, 1, 0, 3, 3},
      {OP_FINISH, 3, 0, 5, 1},
      {OP_FINISH, 5, 0, 6, 0}}},
    {"offsets not increasing",
     {{OP_TRACK, 5, 0, 5, 1},
      {OP_TRACK, 5, -1, 5, 1},
      {OP_TRACK, 4, -1, 5, 1},
      {OP_FINISH, 5, 0, 6, 0},
      {OP_TRACK, 5, -1, 6, 0},
      {OP_TRACK, 7, 0, 7, 1}}},
    {"bad offsets",
     {{OP_TRACK, -1, -1, -1, 0},
      {OP_TRACK, INT64_MAX, -1, -1, 0},
      {OP_TRACK, INT64_MAX - 1, 0, INT64_MAX - 1, 1},
      {OP_FINISH, INT64_MAX - 1, 0, INT64_MAX, 0}}},
    {"finish untracked",
     {{OP_TRACK, 3, 0, 3, 1},
      {OP_TRACK, 6, 0, 3, 2},
      {OP_FINISH, 4, -1, 3, 2},
      {OP_FINISH, 2, -1, 3, 2},
      {OP_FINISH, 7, -1, 3, 2}}},
    {"finish twice",
     {{OP_TRACK, 1, 0, 1, 1},
      {OP_TRACK, 2, 0, 1, 2},
      {OP_FINISH, 2, 0, 1, 2},
      {OP_FINISH, 2, -1, 1, 2},
      {OP_FINISH, 1, 0, 3, 0},
      {OP_FINISH, 1, -1, 3, 0}}},
    {"resume after drained",
     {{OP_TRACK, 100, 0, 100, 1},
      {OP_FINISH, 100, 0, 101, 0},
      {OP_TRACK, 250, 0, 250, 1},
      {OP_FINISH, 250, 0, 251, 0}}},
};

static int apply_op(ferry_watermark *wm, const struct op *op)
{
    if (op->kind == OP_TRACK)
        return ferry_watermark_track(wm, op->offset);
    return ferry_watermark_finish(wm, op->offset);
}

static void run_case(const struct wm_case *c)
{
    ferry_watermark *wm = ferry_watermark_new();

    assert_non_null(wm);
    for (size_t i = 0; i < 16 && c->ops[i].kind != OP_END; i++) {
        const struct op *op = &c->ops[i];
        int rc = apply_op(wm, op);
        int64_t commit = ferry_watermark_commit_offset(wm);
        size_t pending = ferry_watermark_pending(wm);

        if (rc != op->want_rc || commit != op->want_commit || pending != op->want_pending)
            fail_msg("%s, step %zu: got rc %d commit %lld pending %zu, want %d %lld %zu", c->name,
                     i, rc, (long long)commit, pending, op->want_rc, (long long)op->want_commit,
                     op->want_pending);
    }
    ferry_watermark_destroy(wm);
}

static void test_scripted(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* The model: done[] per offset, offsets tracked with random gaps. */
#define MODEL_OFFSETS 200000
#define MAX_IN_FLIGHT 5000

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

struct model {
    unsigned char *tracked;
    unsigned char *done;
    int64_t *in_flight; /* offsets tracked and not finished, unordered */
    size_t n_in_flight;
    int64_t last;
    int64_t low; /* lowest offset that may still be pending */
};

static int64_t model_commit(struct model *m)
{
    while (m->low <= m->last && (!m->tracked[m->low] || m->done[m->low]))
        m->low++;
    return m->last < 0 ? -1 : m->low;
}

static void model_finish_random(struct model *m, ferry_watermark *wm, uint64_t *rng)
{
    size_t pick = (size_t)(next_rand(rng) % m->n_in_flight);
    int64_t offset = m->in_flight[pick];

    m->in_flight[pick] = m->in_flight[--m->n_in_flight];
    m->done[offset] = 1;
    assert_int_equal(ferry_watermark_finish(wm, offset), 0);
    assert_int_equal(ferry_watermark_finish(wm, offset), -1);
}

static void model_track_next(struct model *m, ferry_watermark *wm, uint64_t *rng)
{
    int64_t offset = m->last + 1 + (int64_t)(next_rand(rng) % 3);

    m->tracked[offset] = 1;
    m->last = offset;
    m->in_flight[m->n_in_flight++] = offset;
    assert_int_equal(ferry_watermark_track(wm, offset), 0);
}

static void test_against_model(void **state)
{
    struct model m = {calloc(MODEL_OFFSETS + 3, 1),
                      calloc(MODEL_OFFSETS + 3, 1),
                      calloc(MAX_IN_FLIGHT, sizeof(int64_t)),
                      0,
                      -1,
                      0};
    ferry_watermark *wm = ferry_watermark_new();
    uint64_t rng = 0x2545f4914f6cdd1dULL;

    (void)state;
    assert_non_null(wm);
    assert_non_null(m.tracked);
    assert_non_null(m.done);
    assert_non_null(m.in_flight);
    while (m.last < MODEL_OFFSETS - 3 || m.n_in_flight) {
        /* Swing between filling up and draining so the ring both grows and wraps. */
        int fill = (m.last / 20000) % 2 == 0;
        int can_track = m.last < MODEL_OFFSETS - 3 && m.n_in_flight < MAX_IN_FLIGHT;

        if (can_track && (m.n_in_flight == 0 || next_rand(&rng) % 4 < (fill ? 3u : 1u)))
            model_track_next(&m, wm, &rng);
        else
            model_finish_random(&m, wm, &rng);
        assert_int_equal(ferry_watermark_commit_offset(wm), model_commit(&m));
    }
    assert_int_equal(ferry_watermark_pending(wm), 0);
    assert_int_equal(ferry_watermark_commit_offset(wm), m.last + 1);
    ferry_watermark_destroy(wm);
    free(m.tracked);
    free(m.done);
    free(m.in_flight);
}

static void test_destroy_null(void **state)
{
    (void)state;
    ferry_watermark_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripted),
        cmocka_unit_test(test_against_model),
        cmocka_unit_test(test_destroy_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
