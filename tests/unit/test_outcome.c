/*
 * test_outcome.c - the decision after each attempt of a request (src/route/outcome.c).
 *
 * One table, one loop. A row is a route's settings (retry.max_attempts, a dead-letter topic or
 * none, on_status overrides; the other retry settings are the config defaults: 100 ms initial
 * backoff, 30 s max, multiplier 2), an answer (a status or a transport error, a Retry-After)
 * and the attempts made; then the decision wanted. Every default row is here, so changing what
 * any status, error or attempt leads to fails this test.
 *
 * Waits: a row that wants a jittered wait names the attempt whose backoff draw it expects; the
 * loop makes that draw from the same random state and checks both the wait and that the state
 * advanced exactly once. A row without jitter wants an exact wait and the state untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "route/grpc_wire.h"
#include "route/outcome.h"

#define S FERRY_OUTCOME_SUCCESS
#define R FERRY_OUTCOME_RETRY
#define D FERRY_OUTCOME_DEAD_LETTER

#define MAX_ATTEMPTS 10 /* retry.max_attempts's default */
#define INITIAL_MS 100
#define MAX_MS 30000
#define SEED 0x5eed5eedULL
#define DAY_MS FERRY_BACKOFF_RETRY_AFTER_MAX_MS

struct override {
    enum ferry_outcome outcome;
    const char *pattern; /* NULL ends the list */
};

struct settings {
    int max_attempts;
    int dead_letter;
    struct override on_status[3];
};

struct answer {
    int transport_error;
    long status;
    int64_t retry_after_ms;
};

struct want {
    enum ferry_outcome action;
    int gave_up;
    int attempts;
    int jitter;       /* 1: the wait is the backoff draw for `attempts`, but at least delay_ms */
    int64_t delay_ms; /* the wait, or its floor with jitter */
    int64_t pause_ms;
};

struct row {
    const char *name;
    struct settings set;
    struct answer got;
    int attempts;
    struct want want;
};

/* clang-format off */
/* Settings: the defaults with a dead-letter topic, without one, and retrying forever. */
#define DLQ                {MAX_ATTEMPTS, 1, {{0}}}
#define NO_DLQ             {MAX_ATTEMPTS, 0, {{0}}}
#define FOREVER            {0, 1, {{0}}}
#define FOREVER_NO_DLQ     {0, 0, {{0}}}
#define DLQ_WITH(...)      {MAX_ATTEMPTS, 1, {__VA_ARGS__}}
#define NO_DLQ_WITH(...)   {MAX_ATTEMPTS, 0, {__VA_ARGS__}}

/* Answers. A transport error may come after the status line (and a Retry-After): the status
 * does not count then (the sender reports 0, but the decision must not depend on it). */
#define HTTP(status)                   {0, status, -1}
#define HTTP_AFTER(status, ms)         {0, status, ms}
#define FAILED(code)                   {code, 0, -1}
#define FAILED_AFTER(code, status, ms) {code, status, ms}

/* Decisions. */
#define FINISH(n)                      {S, 0, n, 0, 0, -1}
#define DEAD(n)                        {D, 0, n, 0, 0, -1}
#define GAVE_UP(n)                     {D, 1, n, 0, 0, -1}
#define RETRY(n)                       {R, 0, n, 1, 0, -1}      /* the jittered wait of attempt n */
#define RETRY_MAX(n)                   {R, 0, n, 0, MAX_MS, -1} /* max_backoff: attempts ran out */
#define RETRY_AFTER(n, ms)             {R, 0, n, 1, ms, ms}     /* jittered, Retry-After a floor */
#define RETRY_MAX_AFTER(n, wait, ms)   {R, 0, n, 0, wait, ms}
/* clang-format on */

static const struct row rows[] = {
    /* 2xx: finished, on any attempt */
    {"200", DLQ, HTTP(200), 1, FINISH(1)},
    {"201", DLQ, HTTP(201), 1, FINISH(1)},
    {"204", DLQ, HTTP(204), 1, FINISH(1)},
    {"299", DLQ, HTTP(299), 1, FINISH(1)},
    {"200 on the last attempt", DLQ, HTTP(200), MAX_ATTEMPTS, FINISH(MAX_ATTEMPTS)},
    {"200 past the last attempt, no topic", NO_DLQ, HTTP(200), 12, FINISH(12)},
    {"200 with a Retry-After", DLQ, HTTP_AFTER(200, 5000), 1, FINISH(1)},

    /* retryable statuses: a jittered wait for the attempt */
    {"408", DLQ, HTTP(408), 1, RETRY(1)},
    {"429", DLQ, HTTP(429), 1, RETRY(1)},
    {"500", DLQ, HTTP(500), 1, RETRY(1)},
    {"501", DLQ, HTTP(501), 1, RETRY(1)},
    {"502", DLQ, HTTP(502), 1, RETRY(1)},
    {"503", DLQ, HTTP(503), 1, RETRY(1)},
    {"504", DLQ, HTTP(504), 1, RETRY(1)},
    {"505", DLQ, HTTP(505), 1, RETRY(1)},
    {"599", DLQ, HTTP(599), 1, RETRY(1)},
    {"503 on attempt 3", DLQ, HTTP(503), 3, RETRY(3)},
    {"503 on the attempt before the last", DLQ, HTTP(503), MAX_ATTEMPTS - 1,
     RETRY(MAX_ATTEMPTS - 1)},

    /* a status outside 100-599 is a protocol error: retry */
    {"status 0", DLQ, HTTP(0), 1, RETRY(1)},
    {"status 99", DLQ, HTTP(99), 1, RETRY(1)},
    {"status 600", DLQ, HTTP(600), 1, RETRY(1)},
    {"status 999", DLQ, HTTP(999), 1, RETRY(1)},

    /* everything else: dead letter at once */
    {"100", DLQ, HTTP(100), 1, DEAD(1)},
    {"101", DLQ, HTTP(101), 1, DEAD(1)},
    {"199", DLQ, HTTP(199), 1, DEAD(1)},
    {"300", DLQ, HTTP(300), 1, DEAD(1)},
    {"301", DLQ, HTTP(301), 1, DEAD(1)},
    {"304", DLQ, HTTP(304), 1, DEAD(1)},
    {"399", DLQ, HTTP(399), 1, DEAD(1)},
    {"400", DLQ, HTTP(400), 1, DEAD(1)},
    {"401", DLQ, HTTP(401), 1, DEAD(1)},
    {"403", DLQ, HTTP(403), 1, DEAD(1)},
    {"404", DLQ, HTTP(404), 1, DEAD(1)},
    {"409", DLQ, HTTP(409), 1, DEAD(1)},
    {"413", DLQ, HTTP(413), 1, DEAD(1)},
    {"422", DLQ, HTTP(422), 1, DEAD(1)},
    {"425", DLQ, HTTP(425), 1, DEAD(1)},
    {"499", DLQ, HTTP(499), 1, DEAD(1)},
    {"404 on the last attempt: not 'gave up'", DLQ, HTTP(404), MAX_ATTEMPTS, DEAD(MAX_ATTEMPTS)},
    {"404 with a Retry-After", DLQ, HTTP_AFTER(404, 5000), 1, DEAD(1)},

    /* transport errors always retry, whatever on_status says */
    {"timeout", DLQ, FAILED(CURLE_OPERATION_TIMEDOUT), 1, RETRY(1)},
    {"connection refused", DLQ, FAILED(CURLE_COULDNT_CONNECT), 1, RETRY(1)},
    {"unknown host", DLQ, FAILED(CURLE_COULDNT_RESOLVE_HOST), 1, RETRY(1)},
    {"TLS handshake", DLQ, FAILED(CURLE_SSL_CONNECT_ERROR), 1, RETRY(1)},
    {"TLS peer", DLQ, FAILED(CURLE_PEER_FAILED_VERIFICATION), 1, RETRY(1)},
    {"empty reply", DLQ, FAILED(CURLE_GOT_NOTHING), 1, RETRY(1)},
    {"send failed", DLQ, FAILED(CURLE_SEND_ERROR), 1, RETRY(1)},
    {"connection reset", DLQ, FAILED(CURLE_RECV_ERROR), 1, RETRY(1)},
    {"not started (sender refused the call)", DLQ, FAILED(CURLE_UNSUPPORTED_PROTOCOL), 1, RETRY(1)},
    {"timeout on attempt 4", DLQ, FAILED(CURLE_OPERATION_TIMEDOUT), 4, RETRY(4)},
    {"timeout, 5xx counted as success", DLQ_WITH({S, "5xx"}, {S, "2xx"}),
     FAILED(CURLE_OPERATION_TIMEDOUT), 1, RETRY(1)},
    {"timeout with a Retry-After seen first", DLQ, FAILED_AFTER(CURLE_OPERATION_TIMEDOUT, 0, 5000),
     1, RETRY(1)},
    {"reset after a 200 status line", DLQ, FAILED_AFTER(CURLE_RECV_ERROR, 200, -1), 1, RETRY(1)},
    {"timeout after a 404 status line", DLQ, FAILED_AFTER(CURLE_OPERATION_TIMEDOUT, 404, -1), 1,
     RETRY(1)},
    {"timeout after a 503 and its Retry-After", DLQ,
     FAILED_AFTER(CURLE_OPERATION_TIMEDOUT, 503, 5000), 1, RETRY(1)},

    /* the last attempt, with a dead-letter topic: give up */
    {"503 on the last attempt", DLQ, HTTP(503), MAX_ATTEMPTS, GAVE_UP(MAX_ATTEMPTS)},
    {"429 on the last attempt", DLQ, HTTP(429), MAX_ATTEMPTS, GAVE_UP(MAX_ATTEMPTS)},
    {"408 on the last attempt", DLQ, HTTP(408), MAX_ATTEMPTS, GAVE_UP(MAX_ATTEMPTS)},
    {"status 0 on the last attempt", DLQ, HTTP(0), MAX_ATTEMPTS, GAVE_UP(MAX_ATTEMPTS)},
    {"timeout on the last attempt", DLQ, FAILED(CURLE_OPERATION_TIMEDOUT), MAX_ATTEMPTS,
     GAVE_UP(MAX_ATTEMPTS)},
    {"503 past the last attempt", DLQ, HTTP(503), MAX_ATTEMPTS + 3, GAVE_UP(MAX_ATTEMPTS + 3)},
    {"503 on the last attempt with a Retry-After", DLQ, HTTP_AFTER(503, 5000), MAX_ATTEMPTS,
     GAVE_UP(MAX_ATTEMPTS)},
    {"max_attempts 1: the first 503 gives up", {1, 1, {{0}}}, HTTP(503), 1, GAVE_UP(1)},

    /* without a dead-letter topic nothing is dropped: retry, at max_backoff once exhausted */
    {"503, no topic", NO_DLQ, HTTP(503), 1, RETRY(1)},
    {"503 before the last attempt, no topic", NO_DLQ, HTTP(503), MAX_ATTEMPTS - 1,
     RETRY(MAX_ATTEMPTS - 1)},
    {"503 on the last attempt, no topic", NO_DLQ, HTTP(503), MAX_ATTEMPTS, RETRY_MAX(MAX_ATTEMPTS)},
    {"503 past the last attempt, no topic", NO_DLQ, HTTP(503), MAX_ATTEMPTS + 5,
     RETRY_MAX(MAX_ATTEMPTS + 5)},
    {"timeout on the last attempt, no topic", NO_DLQ, FAILED(CURLE_OPERATION_TIMEDOUT),
     MAX_ATTEMPTS, RETRY_MAX(MAX_ATTEMPTS)},
    {"404, no topic: as if the attempts ran out", NO_DLQ, HTTP(404), 1, RETRY_MAX(MAX_ATTEMPTS)},
    {"404 past the last attempt, no topic: back to max_attempts", NO_DLQ, HTTP(404), 12,
     RETRY_MAX(MAX_ATTEMPTS)},
    {"100, no topic", NO_DLQ, HTTP(100), 1, RETRY_MAX(MAX_ATTEMPTS)},
    {"301, no topic", NO_DLQ, HTTP(301), 2, RETRY_MAX(MAX_ATTEMPTS)},

    /* max_attempts 0: never exhausted */
    {"503 on attempt 1000, forever", FOREVER, HTTP(503), 1000, RETRY(1000)},
    {"404, forever: dead letter all the same", FOREVER, HTTP(404), 1, DEAD(1)},
    {"404, forever, no topic: attempts unchanged", FOREVER_NO_DLQ, HTTP(404), 3, RETRY(3)},
    {"timeout on attempt 50, forever, no topic", FOREVER_NO_DLQ, FAILED(CURLE_OPERATION_TIMEDOUT),
     50, RETRY(50)},

    /* Retry-After: a floor for the wait and a pause of the route, on 429 and 503 only */
    {"429, Retry-After 5 s", DLQ, HTTP_AFTER(429, 5000), 1, RETRY_AFTER(1, 5000)},
    {"503, Retry-After 5 s", DLQ, HTTP_AFTER(503, 5000), 1, RETRY_AFTER(1, 5000)},
    {"503, Retry-After 0", DLQ, HTTP_AFTER(503, 0), 1, RETRY_AFTER(1, 0)},
    {"503, Retry-After 1 ms on attempt 9", DLQ, HTTP_AFTER(503, 1), 9, RETRY_AFTER(9, 1)},
    {"503, Retry-After past max_backoff: not capped by it", DLQ, HTTP_AFTER(503, 60000), 1,
     RETRY_AFTER(1, 60000)},
    {"429, Retry-After at the parser's cap", DLQ, HTTP_AFTER(429, DAY_MS), 1,
     RETRY_AFTER(1, DAY_MS)},
    {"429, no Retry-After", DLQ, HTTP_AFTER(429, -1), 1, RETRY(1)},
    {"500, Retry-After ignored", DLQ, HTTP_AFTER(500, 5000), 1, RETRY(1)},
    {"502, Retry-After ignored", DLQ, HTTP_AFTER(502, 5000), 1, RETRY(1)},
    {"504, Retry-After ignored", DLQ, HTTP_AFTER(504, 5000), 1, RETRY(1)},
    {"408, Retry-After ignored", DLQ, HTTP_AFTER(408, 5000), 1, RETRY(1)},
    {"503 on the last attempt, no topic, Retry-After below max_backoff", NO_DLQ,
     HTTP_AFTER(503, 5000), MAX_ATTEMPTS, RETRY_MAX_AFTER(MAX_ATTEMPTS, MAX_MS, 5000)},
    {"429 on the last attempt, no topic, Retry-After above max_backoff", NO_DLQ,
     HTTP_AFTER(429, 60000), MAX_ATTEMPTS, RETRY_MAX_AFTER(MAX_ATTEMPTS, 60000, 60000)},

    /* on_status overrides */
    {"503 set to dead_letter", DLQ_WITH({D, "503"}), HTTP(503), 1, DEAD(1)},
    {"502 beside 503 set to dead_letter", DLQ_WITH({D, "503"}), HTTP(502), 1, RETRY(1)},
    {"503 set to dead_letter, Retry-After", DLQ_WITH({D, "503"}), HTTP_AFTER(503, 5000), 1,
     DEAD(1)},
    {"429 set to dead_letter, no topic, Retry-After", NO_DLQ_WITH({D, "429"}),
     HTTP_AFTER(429, 5000), 2, RETRY_MAX_AFTER(MAX_ATTEMPTS, MAX_MS, 5000)},
    {"503 set to success", DLQ_WITH({S, "503"}), HTTP_AFTER(503, 5000), 1, FINISH(1)},
    {"5xx set to success", DLQ_WITH({S, "5xx"}), HTTP(500), 1, FINISH(1)},
    {"404 set to retry", DLQ_WITH({R, "404"}), HTTP(404), 1, RETRY(1)},
    {"404 set to retry, last attempt", DLQ_WITH({R, "404"}), HTTP(404), MAX_ATTEMPTS,
     GAVE_UP(MAX_ATTEMPTS)},
    {"403 beside 404 set to retry", DLQ_WITH({R, "404"}), HTTP(403), 1, DEAD(1)},
    {"2xx set to retry", DLQ_WITH({R, "2xx"}), HTTP(200), 1, RETRY(1)},
    {"3xx set to success", DLQ_WITH({S, "3xx"}), HTTP(302), 1, FINISH(1)},
    {"1xx set to success", DLQ_WITH({S, "1xx"}), HTTP(100), 1, FINISH(1)},
    {"500-502 set to dead_letter: 502", DLQ_WITH({D, "500-502"}), HTTP(502), 1, DEAD(1)},
    {"500-502 set to dead_letter: 503", DLQ_WITH({D, "500-502"}), HTTP(503), 1, RETRY(1)},
    {"4xx retry, 404 dead_letter: 404", DLQ_WITH({R, "4xx"}, {D, "404"}), HTTP(404), 1, DEAD(1)},
    {"4xx retry, 404 dead_letter: 400", DLQ_WITH({R, "4xx"}, {D, "404"}), HTTP(400), 1, RETRY(1)},
    {"5xx set to dead_letter: 600 still retries", DLQ_WITH({D, "5xx"}), HTTP(600), 1, RETRY(1)},
};

static ferry_status_rules *rules_for(const struct row *row)
{
    ferry_status_rules *rules = ferry_status_rules_new();
    char err[256];

    assert_non_null(rules);
    for (const struct override *o = row->set.on_status; o->pattern; o++)
        if (ferry_status_rules_set(rules, o->outcome, o->pattern, err, sizeof(err)))
            fail_msg("%s: on_status %s: %s", row->name, o->pattern, err);
    return rules;
}

static void check_row(const struct row *row)
{
    struct ferry_backoff_policy retry = {row->set.max_attempts, INITIAL_MS, MAX_MS, 2.0};
    ferry_status_rules *rules = rules_for(row);
    struct ferry_outcome_policy policy = {rules, &retry, row->set.dead_letter, NULL, NULL};
    struct ferry_outcome_attempt attempt = {row->got.transport_error, row->got.status,
                                            row->got.retry_after_ms, row->attempts};
    const struct want *w = &row->want;
    uint64_t rng = SEED, want_rng = SEED;
    int64_t want_delay = w->delay_ms;
    struct ferry_outcome_decision d = ferry_outcome_decide(&policy, &attempt, &rng);

    if (w->jitter) {
        int64_t draw = ferry_backoff_delay_ms(&retry, w->attempts, &want_rng);
        want_delay = draw > w->delay_ms ? draw : w->delay_ms;
    }
    if (d.action != w->action || d.gave_up != w->gave_up)
        fail_msg("%s: decided %s (gave up %d), want %s (gave up %d)", row->name,
                 ferry_status_outcome_name(d.action), d.gave_up,
                 ferry_status_outcome_name(w->action), w->gave_up);
    if (d.attempts != w->attempts || d.delay_ms != want_delay || d.pause_ms != w->pause_ms)
        fail_msg("%s: attempts %d, wait %lld ms, pause %lld ms; want %d, %lld, %lld", row->name,
                 d.attempts, (long long)d.delay_ms, (long long)d.pause_ms, w->attempts,
                 (long long)want_delay, (long long)w->pause_ms);
    if (rng != want_rng)
        fail_msg("%s: the random state moved %s", row->name,
                 w->jitter ? "otherwise than by one draw" : "without a jittered wait");
    ferry_status_rules_destroy(rules);
}

static void test_decide(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        check_row(&rows[i]);
}

/* A gRPC target's codes classify through its own rules: OK succeeds, UNAVAILABLE retries,
 * NOT_FOUND dead-letters, and an override moves NOT_FOUND to success. */
static void test_grpc_classifier(void **state)
{
    struct ferry_backoff_policy retry = {3, INITIAL_MS, MAX_MS, 2.0};
    ferry_grpc_rules *grpc = ferry_grpc_rules_new();
    struct ferry_outcome_policy policy = {NULL, &retry, 1, ferry_grpc_rules_outcome, grpc};
    struct ferry_outcome_attempt attempt = {0, FERRY_GRPC_OK, -1, 1};
    char err[128];
    uint64_t rng = SEED;

    (void)state;
    assert_non_null(grpc);
    assert_int_equal(ferry_outcome_decide(&policy, &attempt, &rng).action, FERRY_OUTCOME_SUCCESS);
    attempt.http_status = FERRY_GRPC_UNAVAILABLE;
    assert_int_equal(ferry_outcome_decide(&policy, &attempt, &rng).action, FERRY_OUTCOME_RETRY);
    attempt.http_status = FERRY_GRPC_NOT_FOUND;
    assert_int_equal(ferry_outcome_decide(&policy, &attempt, &rng).action,
                     FERRY_OUTCOME_DEAD_LETTER);
    attempt.http_status = 99; /* not a code: UNKNOWN, dead-lettered */
    assert_int_equal(ferry_outcome_classify(&policy, 99), FERRY_OUTCOME_DEAD_LETTER);
    assert_int_equal(
        ferry_grpc_rules_set(grpc, FERRY_OUTCOME_SUCCESS, "NOT_FOUND", err, sizeof(err)), 0);
    assert_int_equal(ferry_outcome_classify(&policy, FERRY_GRPC_NOT_FOUND), FERRY_OUTCOME_SUCCESS);
    ferry_grpc_rules_destroy(grpc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_grpc_classifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
