/*
 * test_sender.c - the route's HTTP engine (src/route/sender.c) against ferry's own server.
 *
 * The group set-up starts a ferry_httpd on a port the OS picks, with handlers that echo what
 * arrived (/echo, /inspect), answer 503 with a Retry-After (/retry), send a 100 KiB body (/big)
 * or never answer on their own (/hang: the test answers them once it is done with them, since
 * every suspended request must be answered before the server is destroyed). Calls run to
 * completion in an event loop with a deadline, never a fixed sleep. Every case runs three times:
 * with libcurl on the caller's thread, on one I/O thread, and over three I/O threads.
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

#include "core/clock.h"
#include "core/httpd.h"
#include "route/sender.h"

#define DEADLINE_S 20
#define BIG_BODY_LEN (100 * 1024)
#define LARGE_REQUEST_LEN (1536 * 1024) /* past libcurl's 1 MiB Expect: 100-continue threshold */
#define HUNG_MAX 16
#define LOAD_CALLS 1000
#define LOAD_IN_FLIGHT 64
#define RESPONSE_MAX 4096

struct server {
    ferry_httpd *httpd;
    int port;
    int closed_port; /* bound once, then closed: connections to it are refused */
    char big[BIG_BODY_LEN];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ferry_http_req *hung[HUNG_MAX];
    int nhung;
};

static struct server srv;

/* ---- the server's handlers, on its threads ---- */

static const char *header_or_dash(ferry_http_req *req, const char *name)
{
    const char *v = ferry_http_req_header(req, name);

    return v ? v : "-";
}

static unsigned byte_sum(const char *p, size_t len)
{
    unsigned sum = 0;

    for (size_t i = 0; i < len; i++)
        sum = (sum * 31 + (unsigned char)p[i]) & 0xffffffu;
    return sum;
}

static void on_echo(ferry_http_req *req, void *arg)
{
    char out[32];
    size_t len;
    int n;

    (void)arg;
    ferry_http_req_body(req, &len);
    n = snprintf(out, sizeof(out), "%zu", len);
    ferry_http_respond(req, 200, "text/plain", out, (size_t)n);
}

static void on_inspect(ferry_http_req *req, void *arg)
{
    char out[512];
    size_t len;
    const char *body = ferry_http_req_body(req, &len);
    int n;

    (void)arg;
    n = snprintf(out, sizeof(out), "%s len=%zu sum=%u test=%s expect=%s",
                 ferry_http_req_method(req), len, byte_sum(body, len),
                 header_or_dash(req, "X-Ferry-Test"), header_or_dash(req, "Expect"));
    ferry_http_respond(req, 200, "text/plain", out, (size_t)n);
}

static void on_retry(ferry_http_req *req, void *arg)
{
    const char *after = ferry_http_req_query(req, "after");

    (void)arg;
    if (after)
        ferry_http_add_header(
            req, ferry_http_req_query(req, "lower") ? "retry-after" : "Retry-After", after);
    ferry_http_respond(req, 503, "text/plain", "busy", 4);
}

static void on_big(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_respond(req, 200, "application/octet-stream", srv.big, sizeof(srv.big));
}

static void on_hang(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_suspend(req);
    pthread_mutex_lock(&srv.lock);
    if (srv.nhung < HUNG_MAX)
        srv.hung[srv.nhung++] = req;
    else
        ferry_http_respond(req, 500, "text/plain", "too many", 8);
    pthread_cond_broadcast(&srv.cond);
    pthread_mutex_unlock(&srv.lock);
}

/* Waits until n requests hang in /hang. */
static void wait_hung(int n)
{
    struct timespec until;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&srv.lock);
    while (srv.nhung < n && rc == 0)
        rc = pthread_cond_timedwait(&srv.cond, &srv.lock, &until);
    pthread_mutex_unlock(&srv.lock);
    if (rc)
        fail_msg("only %d of %d requests reached /hang", srv.nhung, n);
}

static int hung_count(void)
{
    int n;

    pthread_mutex_lock(&srv.lock);
    n = srv.nhung;
    pthread_mutex_unlock(&srv.lock);
    return n;
}

/* Answers every hung request; their clients have usually gone by then. */
static void answer_hung(void)
{
    pthread_mutex_lock(&srv.lock);
    for (int i = 0; i < srv.nhung; i++)
        ferry_http_respond(srv.hung[i], 200, "text/plain", "late", 4);
    srv.nhung = 0;
    pthread_mutex_unlock(&srv.lock);
}

/* ---- set-up ---- */

static int refused_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

struct route_case {
    const char *method;
    const char *path;
    ferry_http_handler fn;
};

static const struct route_case routes[] = {
    {"POST", "/echo", on_echo},        {"GET", "/inspect", on_inspect},
    {"POST", "/inspect", on_inspect},  {"PUT", "/inspect", on_inspect},
    {"PATCH", "/inspect", on_inspect}, {"DELETE", "/inspect", on_inspect},
    {"POST", "/retry", on_retry},      {"GET", "/big", on_big},
    {"POST", "/hang", on_hang},
};

static int group_setup(void **state)
{
    struct ferry_httpd_options o = {"127.0.0.1:0", 4, 1024, 30, 0, 0};
    char err[256];

    (void)state;
    if (ferry_sender_global_init())
        return -1;
    for (size_t i = 0; i < sizeof(srv.big); i++)
        srv.big[i] = (char)(i % 251);
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.cond, NULL);
    srv.httpd = ferry_httpd_new(&o, err, sizeof(err));
    if (!srv.httpd)
        return -1;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (ferry_httpd_route(srv.httpd, routes[i].method, routes[i].path, FERRY_HTTP_EXACT,
                              2 * LARGE_REQUEST_LEN, routes[i].fn, NULL))
            return -1;
    }
    if (ferry_httpd_start(srv.httpd, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    srv.port = ferry_httpd_port(srv.httpd);
    srv.closed_port = refused_port();
    return srv.closed_port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    answer_hung();
    ferry_httpd_destroy(srv.httpd);
    pthread_cond_destroy(&srv.cond);
    pthread_mutex_destroy(&srv.lock);
    ferry_sender_global_cleanup();
    return 0;
}

/* ---- helpers ---- */

static const struct ferry_sender_options default_options = {
    .timeout_ms = 10000,
    .connect_timeout_ms = 5000,
    .verify = 1,
    .response_max = RESPONSE_MAX,
    .max_connections = 8,
};

/* The I/O threads of the group that runs: 0 (libcurl on the caller's thread), 1, then 3. */
static int io_threads_mode;

static ferry_sender *sender_with(const struct ferry_sender_options *o)
{
    char err[256] = "";
    struct ferry_sender_options mode = *o;
    ferry_sender *s;

    mode.io_threads = io_threads_mode;
    s = ferry_sender_new(&mode, err, sizeof(err));

    if (!s)
        fail_msg("ferry_sender_new: %s", err);
    return s;
}

static void url_for(char *url, size_t size, int port, const char *path)
{
    snprintf(url, size, "http://127.0.0.1:%d%s", port, path);
}

static void start_ok(ferry_sender *s, struct ferry_http_call *call)
{
    char err[256] = "";

    if (ferry_sender_start(s, call, err, sizeof(err)))
        fail_msg("ferry_sender_start %s %s: %s", call->method, call->url, err);
}

static void count_done(void *arg, struct ferry_http_call *call)
{
    (void)call;
    (*(int *)arg)++;
}

static double now_s(void)
{
    return (double)ferry_clock_us() / 1e6;
}

/* Runs the loop until nothing is in flight, or fails after the deadline. */
static void run_until_idle(ferry_sender *s, void (*done)(void *, struct ferry_http_call *),
                           void *arg)
{
    double until = now_s() + DEADLINE_S;

    while (ferry_sender_in_flight(s) > 0) {
        if (now_s() > until)
            fail_msg("%zu calls still in flight after %d s", ferry_sender_in_flight(s), DEADLINE_S);
        ferry_sender_wait(s, -1, 100);
        ferry_sender_collect(s, done, arg);
    }
}

/* ---- answered calls, all in flight together ---- */

struct call_case {
    const char *name;
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    int test_header; /* send X-Ferry-Test: yes */
    long status;
    const char *response; /* the exact body expected, or NULL not to check */
    int64_t retry_after_ms;
};

static const struct call_case call_cases[] = {
    {"post echo", "POST", "/echo", "hello", 5, 0, 200, "5", -1},
    {"post binary", "POST", "/echo", "a\0b\0c\r\n", 7, 0, 200, "7", -1},
    {"post empty", "POST", "/echo", NULL, 0, 0, 200, "0", -1},
    {"post inspect", "POST", "/inspect", "ab", 2, 1, 200, "POST len=2 sum=3105 test=yes expect=-",
     -1},
    {"get ignores body", "GET", "/inspect", "ignored", 7, 1, 200,
     "GET len=0 sum=0 test=yes expect=-", -1},
    {"put", "PUT", "/inspect", "abc", 3, 0, 200, "PUT len=3 sum=96354 test=- expect=-", -1},
    {"put empty", "PUT", "/inspect", NULL, 0, 0, 200, "PUT len=0 sum=0 test=- expect=-", -1},
    {"patch", "PATCH", "/inspect", "ab", 2, 1, 200, "PATCH len=2 sum=3105 test=yes expect=-", -1},
    {"delete", "DELETE", "/inspect", NULL, 0, 0, 200, "DELETE len=0 sum=0 test=- expect=-", -1},
    {"delete with body", "DELETE", "/inspect", "ab", 2, 0, 200,
     "DELETE len=2 sum=3105 test=- expect=-", -1},
    {"503 retry-after seconds", "POST", "/retry?after=2", "x", 1, 0, 503, "busy", 2000},
    {"503 retry-after spaces", "POST", "/retry?after=%20%207", "x", 1, 0, 503, "busy", 7000},
    {"503 retry-after past date", "POST", "/retry?after=Sun,%2006%20Nov%201994%2008:49:37%20GMT",
     "x", 1, 0, 503, "busy", 0},
    {"503 lower-case retry-after", "POST", "/retry?after=3&lower=1", "x", 1, 0, 503, "busy", 3000},
    {"503 retry-after junk", "POST", "/retry?after=soon", "x", 1, 0, 503, "busy", -1},
    {"503 no retry-after", "POST", "/retry", "x", 1, 0, 503, "busy", -1},
    {"404 from the router", "POST", "/nowhere", "x", 1, 0, 404, NULL, -1},
};

#define NCALL_CASES (sizeof(call_cases) / sizeof(call_cases[0]))

static void check_call(const struct call_case *c, const struct ferry_http_call *call)
{
    if (call->transport_error)
        fail_msg("%s: transport error %d: %s", c->name, call->transport_error, call->error);
    if (call->status != c->status)
        fail_msg("%s: status %ld, expected %ld", c->name, call->status, c->status);
    if (call->retry_after_ms != c->retry_after_ms)
        fail_msg("%s: retry_after_ms %lld, expected %lld", c->name, (long long)call->retry_after_ms,
                 (long long)c->retry_after_ms);
    if (c->response && (!call->response.data || strcmp(call->response.data, c->response) != 0))
        fail_msg("%s: response '%s', expected '%s'", c->name,
                 call->response.data ? call->response.data : "(none)", c->response);
    if (call->seconds <= 0 || call->priv)
        fail_msg("%s: seconds %f, priv %p", c->name, call->seconds, call->priv);
}

static void prepare_call(size_t i, struct ferry_http_call *call, char *url, size_t url_size,
                         struct curl_slist *headers)
{
    const struct call_case *c = &call_cases[i];

    url_for(url, url_size, srv.port, c->path);
    call->method = c->method;
    call->url = url;
    call->headers = c->test_header ? headers : NULL;
    call->body = c->body;
    call->body_len = c->body_len;
}

/* Every case in flight at once, each on its own transfer. */
static void test_calls_together(void **state)
{
    struct ferry_http_call calls[NCALL_CASES];
    char urls[NCALL_CASES][256];
    struct curl_slist *headers = curl_slist_append(NULL, "X-Ferry-Test: yes");
    ferry_sender *s = sender_with(&default_options);
    int done = 0;

    (void)state;
    memset(calls, 0, sizeof(calls));
    for (size_t i = 0; i < NCALL_CASES; i++) {
        prepare_call(i, &calls[i], urls[i], sizeof(urls[i]), headers);
        start_ok(s, &calls[i]);
    }
    assert_int_equal(ferry_sender_in_flight(s), NCALL_CASES);
    run_until_idle(s, count_done, &done);
    assert_int_equal(done, NCALL_CASES);
    for (size_t i = 0; i < NCALL_CASES; i++) {
        check_call(&call_cases[i], &calls[i]);
        ferry_buf_release(&calls[i].response);
    }
    ferry_sender_destroy(s);
    curl_slist_free_all(headers);
}

/* The cases one after another, forwards then backwards, so that one reused transfer goes
 * through every change of method, body and headers; and one reused call struct with it. */
static void test_calls_one_by_one(void **state)
{
    struct ferry_http_call call = {0};
    char url[256];
    struct curl_slist *headers = curl_slist_append(NULL, "X-Ferry-Test: yes");
    ferry_sender *s = sender_with(&default_options);
    int done = 0;

    (void)state;
    for (size_t n = 0; n < 2 * NCALL_CASES; n++) {
        size_t i = n < NCALL_CASES ? n : 2 * NCALL_CASES - 1 - n;

        prepare_call(i, &call, url, sizeof(url), headers);
        start_ok(s, &call);
        run_until_idle(s, count_done, &done);
        check_call(&call_cases[i], &call);
    }
    assert_int_equal(done, 2 * NCALL_CASES);
    ferry_buf_release(&call.response);
    ferry_sender_destroy(s);
    curl_slist_free_all(headers);
}

/* A body past libcurl's threshold would get "Expect: 100-continue" and a wait: not ours. */
static void test_large_body_without_expect(void **state)
{
    char *body = malloc(LARGE_REQUEST_LEN);
    char url[256], expected[256];
    struct ferry_http_call call = {.method = "PUT", .url = url, .body_len = LARGE_REQUEST_LEN};
    ferry_sender *s = sender_with(&default_options);
    int done = 0;

    (void)state;
    assert_non_null(body);
    for (size_t i = 0; i < LARGE_REQUEST_LEN; i++)
        body[i] = (char)(i * 7);
    call.body = body;
    url_for(url, sizeof(url), srv.port, "/inspect");
    snprintf(expected, sizeof(expected), "PUT len=%d sum=%u test=- expect=-", LARGE_REQUEST_LEN,
             byte_sum(body, LARGE_REQUEST_LEN));
    start_ok(s, &call);
    run_until_idle(s, count_done, &done);
    assert_int_equal(call.transport_error, 0);
    assert_int_equal(call.status, 200);
    assert_string_equal(call.response.data, expected);
    ferry_buf_release(&call.response);
    ferry_sender_destroy(s);
    free(body);
}

/* ---- response caps ---- */

static const size_t response_caps[] = {0, 1, 1000, BIG_BODY_LEN - 1, BIG_BODY_LEN, 1 << 20};

static void test_response_cap(void **state)
{
    char url[256];

    (void)state;
    url_for(url, sizeof(url), srv.port, "/big");
    for (size_t i = 0; i < sizeof(response_caps) / sizeof(response_caps[0]); i++) {
        struct ferry_sender_options o = default_options;
        struct ferry_http_call call = {.method = "GET", .url = url};
        size_t want = response_caps[i] < BIG_BODY_LEN ? response_caps[i] : BIG_BODY_LEN;
        ferry_sender *s;
        int done = 0;

        o.response_max = response_caps[i];
        s = sender_with(&o);
        start_ok(s, &call);
        run_until_idle(s, count_done, &done);
        if (call.transport_error || call.status != 200 || call.response.len != want)
            fail_msg("cap %zu: error %d, status %ld, kept %zu bytes, expected %zu",
                     response_caps[i], call.transport_error, call.status, call.response.len, want);
        assert_memory_equal(call.response.data ? call.response.data : "", srv.big, want);
        ferry_buf_release(&call.response);
        ferry_sender_destroy(s);
    }
}

/* ---- transport errors ---- */

struct failure_case {
    const char *name;
    const char *url; /* NULL: the refused port */
    int error;
    long timeout_ms;
};

static const struct failure_case failure_cases[] = {
    {"connection refused", NULL, CURLE_COULDNT_CONNECT, 10000},
    {"not http", "ftp://127.0.0.1/x", CURLE_UNSUPPORTED_PROTOCOL, 10000},
    {"file url", "file:///etc/passwd", CURLE_UNSUPPORTED_PROTOCOL, 10000},
    {"malformed url", "http://[127.0.0.1/x", CURLE_URL_MALFORMAT, 10000},
    {"timeout", "/hang", CURLE_OPERATION_TIMEDOUT, 300},
};

static void check_failure(const struct failure_case *c, const char *url)
{
    struct ferry_sender_options o = default_options;
    struct ferry_http_call call = {.method = "POST", .url = url, .body = "x", .body_len = 1};
    ferry_sender *s;
    int done = 0;

    o.timeout_ms = c->timeout_ms;
    s = sender_with(&o);
    start_ok(s, &call);
    run_until_idle(s, count_done, &done);
    if (done != 1 || call.transport_error != c->error || call.status != 0 || !call.error[0])
        fail_msg("%s: done %d, error %d (%s), status %ld; expected error %d", c->name, done,
                 call.transport_error, call.error, call.status, c->error);
    if (c->error == CURLE_OPERATION_TIMEDOUT && call.seconds < 0.25)
        fail_msg("%s: timed out after %f s", c->name, call.seconds);
    ferry_buf_release(&call.response);
    ferry_sender_destroy(s);
}

static void test_transport_errors(void **state)
{
    char url[256];

    (void)state;
    for (size_t i = 0; i < sizeof(failure_cases) / sizeof(failure_cases[0]); i++) {
        const struct failure_case *c = &failure_cases[i];

        if (!c->url)
            url_for(url, sizeof(url), srv.closed_port, "/echo");
        else if (c->url[0] == '/')
            url_for(url, sizeof(url), srv.port, c->url);
        else
            snprintf(url, sizeof(url), "%s", c->url);
        check_failure(c, url);
    }
    /* The timed-out request is still parked in the server: answer it now. */
    wait_hung(1);
    answer_hung();
}

/* ---- calls that cannot start ---- */

struct start_case {
    const char *method;
    const char *url;
    const char *body;
    size_t body_len;
    const char *error;
};

static const struct start_case start_cases[] = {
    {"HEAD", "http://127.0.0.1/", NULL, 0, "sender: unsupported method 'HEAD'"},
    {"post", "http://127.0.0.1/", NULL, 0, "sender: unsupported method 'post'"},
    {NULL, "http://127.0.0.1/", NULL, 0, "sender: unsupported method '(null)'"},
    {"POST", NULL, NULL, 0, "sender: POST call without a url"},
    {"POST", "http://127.0.0.1/", NULL, 5,
     "sender: POST 'http://127.0.0.1/': body is NULL but body_len is 5"},
};

static void test_start_errors(void **state)
{
    ferry_sender *s = sender_with(&default_options);

    (void)state;
    for (size_t i = 0; i < sizeof(start_cases) / sizeof(start_cases[0]); i++) {
        const struct start_case *c = &start_cases[i];
        struct ferry_http_call call = {
            .method = c->method, .url = c->url, .body = c->body, .body_len = c->body_len};
        char err[256] = "";

        assert_int_equal(ferry_sender_start(s, &call, err, sizeof(err)), -1);
        assert_string_equal(err, c->error);
    }
    assert_int_equal(ferry_sender_in_flight(s), 0);
    ferry_sender_destroy(s);
}

struct options_case {
    struct ferry_sender_options o;
    const char *error;
};

static const struct options_case options_cases[] = {
    {{.max_connections = 0}, "sender: max_connections: expected 1 to 65536, got 0"},
    {{.max_connections = 70000}, "sender: max_connections: expected 1 to 65536, got 70000"},
    {{.max_connections = 1, .io_threads = -1}, "sender: io_threads: expected 0 to 64, got -1"},
    {{.max_connections = 1, .io_threads = 65}, "sender: io_threads: expected 0 to 64, got 65"},
    {{.max_connections = 1, .timeout_ms = -1},
     "sender: timeouts must not be negative, got -1 and 0 ms"},
    {{.max_connections = 1, .ca_file = "/nonexistent/ca.pem"},
     "sender: ca_file '/nonexistent/ca.pem': No such file or directory"},
    {{.max_connections = 1, .key_file = "/nonexistent/key.pem"},
     "sender: key_file '/nonexistent/key.pem': No such file or directory"},
};

static void test_bad_options(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(options_cases) / sizeof(options_cases[0]); i++) {
        char err[256] = "";

        assert_null(ferry_sender_new(&options_cases[i].o, err, sizeof(err)));
        assert_string_equal(err, options_cases[i].error);
    }
}

/* ---- many calls over few connections ---- */

struct load {
    ferry_sender *s;
    int started;
    int finished;
    int ok;
};

static void load_done(void *arg, struct ferry_http_call *call)
{
    struct load *l = arg;

    l->finished++;
    if (!call->transport_error && call->status == 200 && call->response.data &&
        strcmp(call->response.data, "7") == 0)
        l->ok++;
    if (l->started < LOAD_CALLS) {
        l->started++;
        start_ok(l->s, call); /* the same call, again, from its own done callback */
    }
}

static void test_load(void **state)
{
    struct ferry_sender_options o = default_options;
    struct ferry_http_call calls[LOAD_IN_FLIGHT];
    char url[256];
    struct load l = {0};
    double t0;

    (void)state;
    o.max_connections = LOAD_IN_FLIGHT;
    l.s = sender_with(&o);
    url_for(url, sizeof(url), srv.port, "/echo");
    memset(calls, 0, sizeof(calls));
    t0 = now_s();
    for (int i = 0; i < LOAD_IN_FLIGHT; i++) {
        calls[i] = (struct ferry_http_call){
            .method = "POST", .url = url, .body = "{\"n\":1}", .body_len = 7};
        l.started++;
        start_ok(l.s, &calls[i]);
    }
    run_until_idle(l.s, load_done, &l);
    print_message("%d calls in %.3f s over %llu connections\n", l.finished, now_s() - t0,
                  (unsigned long long)ferry_sender_connects(l.s));
    assert_int_equal(l.finished, LOAD_CALLS);
    assert_int_equal(l.ok, LOAD_CALLS);
    /* Each I/O loop may open its rounded-up share of the connections. */
    assert_true(ferry_sender_connects(l.s) <=
                (uint64_t)(LOAD_IN_FLIGHT + (io_threads_mode > 1 ? io_threads_mode - 1 : 0)));
    for (int i = 0; i < LOAD_IN_FLIGHT; i++)
        ferry_buf_release(&calls[i].response);
    ferry_sender_destroy(l.s);
}

/* One connection, many calls in a row: every one after the first reuses it. */
static void test_keep_alive(void **state)
{
    struct ferry_sender_options o = default_options;
    struct ferry_http_call call = {.method = "POST", .body = "x", .body_len = 1};
    char url[256];
    ferry_sender *s;
    int done = 0;

    (void)state;
    o.max_connections = 1;
    s = sender_with(&o);
    url_for(url, sizeof(url), srv.port, "/echo");
    call.url = url;
    for (int i = 0; i < 20; i++) {
        start_ok(s, &call);
        run_until_idle(s, count_done, &done);
        assert_int_equal(call.status, 200);
    }
    assert_int_equal(done, 20);
    assert_int_equal(ferry_sender_connects(s), 1);
    ferry_buf_release(&call.response);
    ferry_sender_destroy(s);
}

/* ---- waiting ---- */

static void *wake_later(void *arg)
{
    struct timespec pause = {0, 50 * 1000 * 1000};

    nanosleep(&pause, NULL);
    ferry_sender_wakeup(arg);
    return NULL;
}

static void test_wakeup(void **state)
{
    ferry_sender *s = sender_with(&default_options);
    pthread_t th;
    double t0;

    (void)state;
    ferry_sender_wakeup(s); /* before the wait: the next wait returns at once */
    t0 = now_s();
    assert_int_equal(ferry_sender_wait(s, -1, 10000), 0);
    assert_true(now_s() - t0 < 5);
    assert_int_equal(pthread_create(&th, NULL, wake_later, s), 0);
    t0 = now_s();
    assert_int_equal(ferry_sender_wait(s, -1, 10000), 0);
    assert_true(now_s() - t0 < 5);
    pthread_join(th, NULL);
    ferry_sender_destroy(s);
}

static void test_extra_fd(void **state)
{
    ferry_sender *s = sender_with(&default_options);
    int fds[2];
    char c;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(ferry_sender_wait(s, fds[0], 20), 0);
    assert_int_equal(write(fds[1], "k", 1), 1);
    assert_int_equal(ferry_sender_wait(s, fds[0], 10000), 1);
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(ferry_sender_wait(s, fds[0], 20), 0);
    close(fds[0]);
    close(fds[1]);
    ferry_sender_destroy(s);
}

/* ---- destroying with calls in flight ---- */

static void never_done(void *arg, struct ferry_http_call *call)
{
    (void)arg;
    fail_msg("done called for %s after destroy", call->url);
}

static void test_destroy_in_flight(void **state)
{
    struct ferry_http_call calls[3];
    char url[256];
    ferry_sender *s = sender_with(&default_options);
    double until = now_s() + DEADLINE_S;

    (void)state;
    url_for(url, sizeof(url), srv.port, "/hang");
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < 3; i++) {
        calls[i] =
            (struct ferry_http_call){.method = "POST", .url = url, .body = "x", .body_len = 1};
        start_ok(s, &calls[i]);
    }
    while (hung_count() < 3 && now_s() < until) {
        ferry_sender_wait(s, -1, 50);
        ferry_sender_collect(s, never_done, NULL);
    }
    wait_hung(3);
    assert_int_equal(ferry_sender_in_flight(s), 3);
    ferry_sender_destroy(s);
    answer_hung();
    for (int i = 0; i < 3; i++)
        ferry_buf_release(&calls[i].response);
    ferry_sender_destroy(NULL);
}

/* As many calls as connections are all on the wire at once, however many I/O loops share them:
 * each loop may open only its share, so calls must be spread over the loops. */
static void test_spread(void **state)
{
    enum { CALLS = 6 };
    struct ferry_sender_options o = default_options;
    struct ferry_http_call calls[CALLS];
    char url[256];
    ferry_sender *s;
    double until = now_s() + DEADLINE_S;

    (void)state;
    o.max_connections = CALLS;
    s = sender_with(&o);
    url_for(url, sizeof(url), srv.port, "/hang");
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < CALLS; i++) {
        calls[i] =
            (struct ferry_http_call){.method = "POST", .url = url, .body = "x", .body_len = 1};
        start_ok(s, &calls[i]);
    }
    while (hung_count() < CALLS && now_s() < until) {
        ferry_sender_wait(s, -1, 50);
        ferry_sender_collect(s, never_done, NULL);
    }
    wait_hung(CALLS);
    assert_int_equal(ferry_sender_in_flight(s), CALLS);
    ferry_sender_destroy(s);
    answer_hung();
    for (int i = 0; i < CALLS; i++)
        ferry_buf_release(&calls[i].response);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_together),
        cmocka_unit_test(test_calls_one_by_one),
        cmocka_unit_test(test_large_body_without_expect),
        cmocka_unit_test(test_response_cap),
        cmocka_unit_test(test_transport_errors),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_wakeup),
        cmocka_unit_test(test_extra_fd),
        cmocka_unit_test(test_destroy_in_flight),
        cmocka_unit_test(test_spread),
    };

    int failed = cmocka_run_group_tests_name("libcurl on the caller's thread", tests, group_setup,
                                             group_teardown);

    io_threads_mode = 1;
    failed += cmocka_run_group_tests_name("libcurl on one I/O thread", tests, group_setup,
                                          group_teardown);
    io_threads_mode = 3;
    failed += cmocka_run_group_tests_name("libcurl on three I/O threads", tests, group_setup,
                                          group_teardown);
    return failed;
}
