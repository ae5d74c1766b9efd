/*
 * test_forward.c - the forwarder (src/table/forward.c) against ferry's own server.
 *
 * Each case sends one request of ferry's own (ferry_table_forward_call) to a list of candidate
 * holders: one that answers, one that refuses connections, one that drops them (a host that is
 * down), one that says it does not serve the partition (508), one whose answer is larger than a
 * forwarded answer may be, one that takes the request and never answers (a host that vanished
 * with the connection still open). It checks the status handed back, the body, and what was
 * counted for each holder.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/httpd.h"
#include "table/forward.h"

#include "sockets.h"

#define WAIT_S 30
#define CANDIDATES 3

static ferry_httpd *httpd;
static ferry_table_forward *fwd;
static char *big;            /* one byte more than a forwarded answer may be */
static int silent_fd = -1;   /* listens, never accepts */
static int dropping_fd = -1; /* listens with its queue full: connections are never made */
static int fillers[2] = {-1, -1};
static char served[64], moving[64], moving2[64], too_big[64], refused[64], silent[64], dropping[64];

static void on_ok(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_respond(req, 200, "text/plain", "value", 5);
}

static void on_moving(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_respond_error(req, 508, 0, "does not serve the partition");
}

static void on_big(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_respond(req, 200, "text/plain", big, FERRY_FORWARD_ANSWER_MAX + 1);
}

static int serve(void)
{
    struct ferry_httpd_options o = {
        .listen = "127.0.0.1:0", .threads = 2, .max_connections = 64, .connection_timeout_s = 30};
    char err[256];

    httpd = ferry_httpd_new(&o, err, sizeof(err));
    return !httpd || ferry_httpd_route(httpd, "GET", "/a/k", FERRY_HTTP_EXACT, 0, on_ok, NULL) ||
           ferry_httpd_route(httpd, "GET", "/m/k", FERRY_HTTP_EXACT, 0, on_moving, NULL) ||
           ferry_httpd_route(httpd, "GET", "/m2/k", FERRY_HTTP_EXACT, 0, on_moving, NULL) ||
           ferry_httpd_route(httpd, "GET", "/b/k", FERRY_HTTP_EXACT, 0, on_big, NULL) ||
           ferry_httpd_start(httpd, err, sizeof(err));
}

/* A listener that takes one connection into its queue (backlog 0) and never accepts it: once
 * a filler holds that place, the kernel drops every further connection attempt, as a host that
 * is down does. */
static int drop_connections(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    dropping_fd = test_bound_socket(port);
    if (dropping_fd < 0 || listen(dropping_fd, 0))
        return -1;
    a.sin_port = htons((uint16_t)*port);
    for (int i = 0; i < 2; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fillers[i] < 0)
            return -1;
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof(a)); /* under way, or made */
    }
    return 0;
}

static int group_setup(void **state)
{
    int port, silent_port, refused_port, dropping_port, fd;
    char err[256];

    (void)state;
    big = malloc(FERRY_FORWARD_ANSWER_MAX + 1);
    if (!big || curl_global_init(CURL_GLOBAL_DEFAULT) || serve())
        return -1;
    memset(big, 'x', FERRY_FORWARD_ANSWER_MAX + 1);
    port = ferry_httpd_port(httpd);
    snprintf(served, sizeof(served), "http://127.0.0.1:%d/a", port);
    snprintf(moving, sizeof(moving), "http://127.0.0.1:%d/m", port);
    snprintf(moving2, sizeof(moving2), "http://127.0.0.1:%d/m2", port);
    snprintf(too_big, sizeof(too_big), "http://127.0.0.1:%d/b", port);
    silent_fd = test_bound_socket(&silent_port);
    if (silent_fd < 0 || listen(silent_fd, 8))
        return -1;
    snprintf(silent, sizeof(silent), "http://127.0.0.1:%d/s", silent_port);
    fd = test_bound_socket(&refused_port); /* closed again: nothing listens there */
    if (fd < 0)
        return -1;
    close(fd);
    snprintf(refused, sizeof(refused), "http://127.0.0.1:%d/r", refused_port);
    if (drop_connections(&dropping_port))
        return -1;
    snprintf(dropping, sizeof(dropping), "http://127.0.0.1:%d/d", dropping_port);
    fwd = ferry_table_forward_new("unit", NULL, err, sizeof(err));
    return !fwd || ferry_table_forward_start(fwd, err, sizeof(err)) ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ferry_table_forward_destroy(fwd);
    ferry_httpd_destroy(httpd);
    if (silent_fd >= 0)
        close(silent_fd);
    for (int i = 0; i < 2; i++)
        if (fillers[i] >= 0)
            close(fillers[i]);
    if (dropping_fd >= 0)
        close(dropping_fd);
    free(big);
    curl_global_cleanup();
    return 0;
}

/* ---- one call and its answer ---- */

struct outcome {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int answered, done, status;
    size_t len;
    char head[16]; /* the body's first bytes */
};

static void on_answer(void *arg, int status, const char *body, size_t len)
{
    struct outcome *o = arg;

    pthread_mutex_lock(&o->lock);
    o->answered++;
    o->status = status;
    o->len = len;
    snprintf(o->head, sizeof(o->head), "%.*s", (int)(len < 15 ? len : 15), body ? body : "");
    pthread_mutex_unlock(&o->lock);
}

static void on_done(void *arg, int status)
{
    struct outcome *o = arg;

    (void)status;
    pthread_mutex_lock(&o->lock);
    o->done = 1;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
}

/* Waits until the call ended; returns 0, or -1 at the deadline. */
static int wait_done(struct outcome *o)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_S;
    pthread_mutex_lock(&o->lock);
    while (!o->done && rc == 0)
        rc = pthread_cond_timedwait(&o->cond, &o->lock, &until);
    pthread_mutex_unlock(&o->lock);
    return o->done ? 0 : -1;
}

/* ---- the cases ---- */

struct forward_case {
    const char *name;
    const char *bases[CANDIDATES]; /* NULL ends the list */
    int64_t timeout_ms;
    int64_t wait_ms;           /* of timeout_ms, a long poll's wait at the holder */
    int status;                /* handed to answer */
    size_t len;                /* the body's length (0: ferry's own status, no body) */
    int sent[CANDIDATES];      /* counted sent to each candidate */
    int unreached[CANDIDATES]; /* and of those, unreached */
};

static const struct forward_case cases[] = {
    {"the first candidate answers", {served}, 5000, 0, 200, 5, {1}, {0}},
    {"a refused connection goes to the next", {refused, served}, 5000, 0, 200, 5, {1, 1}, {1, 0}},
    {"a 508 goes to the next", {moving, served}, 5000, 0, 200, 5, {1, 1}, {1, 0}},
    {"every candidate says 508: 503", {moving, moving2}, 5000, 0, 503, 0, {1, 1}, {1, 1}},
    {"none can be reached: 503", {refused}, 5000, 0, 503, 0, {1}, {1}},
    {"a dropped connection goes to the next", {dropping, served}, 10000, 0, 200, 5, {1, 1}, {1, 0}},
    {"every connection dropped: 503", {dropping}, 10000, 0, 503, 0, {1}, {1}},
    {"an answer too large: 502, not retried", {too_big, served}, 20000, 0, 502, 0, {1, 0}, {0, 0}},
    /* 2 s for 2 candidates: 1 s each, and the second answers */
    {"no answer in its share: the next", {silent, served}, 2000, 0, 200, 5, {1, 1}, {1, 0}},
    {"no answer in time: 504", {silent}, 1000, 0, 504, 0, {1}, {1}},
    /* a long poll's try may take its wait on top of its share: all of the time here */
    {"a long poll is not cut short", {silent, served}, 2500, 2000, 504, 0, {1, 0}, {1, 0}},
};

static void counts_at(const char *base, uint64_t *sent, uint64_t *unreached)
{
    ferry_table_forward_counts(fwd, base, sent, unreached);
}

/* Runs one case. Its outcome is freed only when the call ended: a failed wait leaves it to the
 * forwarder, which may still answer into it. */
static void run_case(const struct forward_case *c)
{
    struct outcome *o = calloc(1, sizeof(*o));
    uint64_t sent0[CANDIDATES] = {0}, unreached0[CANDIDATES] = {0}, sent, unreached;
    size_t n = 0;

    assert_non_null(o);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);

    while (n < CANDIDATES && c->bases[n]) {
        counts_at(c->bases[n], &sent0[n], &unreached0[n]);
        n++;
    }
    struct ferry_forward_request fr = {.path_and_query = "/k",
                                       .bases = c->bases,
                                       .nbases = n,
                                       .timeout_ms = c->timeout_ms,
                                       .wait_ms = c->wait_ms,
                                       .done = on_done,
                                       .answer = on_answer,
                                       .arg = o};
    assert_int_equal(ferry_table_forward_call(fwd, &fr), 0);
    if (wait_done(o))
        fail_msg("%s: no answer within %d s", c->name, WAIT_S);
    assert_int_equal(o->answered, 1);
    if (o->status != c->status)
        fail_msg("%s: status %d, expected %d", c->name, o->status, c->status);
    assert_int_equal(o->len, c->len);
    if (c->len)
        assert_string_equal(o->head, "value");
    for (size_t i = 0; i < n; i++) {
        counts_at(c->bases[i], &sent, &unreached);
        if (sent - sent0[i] != (uint64_t)c->sent[i] ||
            unreached - unreached0[i] != (uint64_t)c->unreached[i])
            fail_msg("%s: candidate %zu counted %llu sent, %llu unreached; expected %d, %d",
                     c->name, i, (unsigned long long)(sent - sent0[i]),
                     (unsigned long long)(unreached - unreached0[i]), c->sent[i], c->unreached[i]);
    }
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
    free(o);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
