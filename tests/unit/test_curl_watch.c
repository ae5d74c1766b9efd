/*
 * test_curl_watch.c - libcurl driven through a curl watch (src/route/curl_watch.c).
 *
 * Plain libcurl transfers, no sender: against ferry's own server (answers), a socket that
 * listens and never answers (libcurl's timeout must come from the watch's timer) and a port
 * that refuses. Each case runs its transfers to the end within a deadline, then checks every
 * result and that the watch follows no socket once the multi handle is gone.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/httpd.h"
#include "route/curl_watch.h"

#include "sockets.h"

#define DEADLINE_MS 20000
#define TRANSFERS_MAX 64

static ferry_httpd *httpd;
static int http_port;
static int silent_fd = -1; /* listens, never accepts: requests to it are never answered */
static int silent_port;
static int refused_port;

static void on_ok(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_respond(req, 200, "text/plain", "ok", 2);
}

static int group_setup(void **state)
{
    struct ferry_httpd_options o = {"127.0.0.1:0", 2, 256, 30, 0, 0};
    char err[256];
    int fd;

    (void)state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        return -1;
    httpd = ferry_httpd_new(&o, err, sizeof(err));
    if (!httpd || ferry_httpd_route(httpd, "GET", "/ok", FERRY_HTTP_EXACT, 0, on_ok, NULL) ||
        ferry_httpd_start(httpd, err, sizeof(err)))
        return -1;
    http_port = ferry_httpd_port(httpd);
    silent_fd = test_bound_socket(&silent_port);
    if (silent_fd < 0 || listen(silent_fd, TRANSFERS_MAX))
        return -1;
    fd = test_bound_socket(&refused_port); /* closed again: nothing listens there */
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (silent_fd >= 0)
        close(silent_fd);
    ferry_httpd_destroy(httpd);
    curl_global_cleanup();
    return 0;
}

enum target { TO_SERVER, TO_SILENT, TO_REFUSED };

struct watch_case {
    const char *name;
    enum target target;
    int transfers;
    long connections;   /* CURLMOPT_MAX_HOST_CONNECTIONS */
    long timeout_ms;    /* CURLOPT_TIMEOUT_MS */
    CURLcode expect;    /* every transfer's result */
    long expect_status; /* and its HTTP status, when it got one */
};

static const struct watch_case cases[] = {
    {"one answer", TO_SERVER, 1, 1, 10000, CURLE_OK, 200},
    {"40 answers over 8 connections", TO_SERVER, 40, 8, 10000, CURLE_OK, 200},
    {"64 answers over 64 connections", TO_SERVER, 64, 64, 10000, CURLE_OK, 200},
    {"timeouts from the watch's timer", TO_SILENT, 4, 4, 300, CURLE_OPERATION_TIMEDOUT, 0},
    {"connections refused", TO_REFUSED, 3, 3, 10000, CURLE_COULDNT_CONNECT, 0},
};

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

static CURL *easy_for(const struct watch_case *c)
{
    int port = c->target == TO_SERVER   ? http_port
               : c->target == TO_SILENT ? silent_port
                                        : refused_port;
    char url[64];
    CURL *e = curl_easy_init();

    if (!e)
        return NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    return e;
}

/* Drives multi until n transfers finished or the deadline passed; returns how many finished,
 * checking each result against the case. */
static int run_to_end(const struct watch_case *c, CURLM *multi, ferry_curl_watch *w)
{
    int64_t deadline = ferry_clock_ms() + DEADLINE_MS;
    int finished = 0, queued;
    CURLMsg *msg;

    while (finished < c->transfers && ferry_clock_ms() < deadline) {
        assert_int_equal(ferry_curl_watch_wait(w, NULL, 0, 1000), 0);
        assert_int_equal(ferry_curl_watch_act(w), CURLM_OK);
        while ((msg = curl_multi_info_read(multi, &queued))) {
            long status = 0;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result != c->expect || status != c->expect_status)
                fail_msg("%s: transfer %d: %s, HTTP %ld", c->name, finished,
                         curl_easy_strerror(msg->data.result), status);
            finished++;
        }
    }
    return finished;
}

static void run_case(const struct watch_case *c)
{
    CURL *easy[TRANSFERS_MAX];
    CURLM *multi = curl_multi_init();
    ferry_curl_watch *w = multi ? ferry_curl_watch_new(multi) : NULL;

    assert_non_null(w);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->connections);
    for (int i = 0; i < c->transfers; i++) {
        easy[i] = easy_for(c);
        assert_non_null(easy[i]);
        assert_int_equal(curl_multi_add_handle(multi, easy[i]), CURLM_OK);
    }
    if (run_to_end(c, multi, w) != c->transfers)
        fail_msg("%s: not all %d transfers finished within %d ms", c->name, c->transfers,
                 DEADLINE_MS);
    for (int i = 0; i < c->transfers; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(multi);
    assert_int_equal(ferry_curl_watch_sockets(w), 0);
    ferry_curl_watch_destroy(w);
}

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* A ready fd of the caller's ends the wait at once, with nothing of libcurl's to wait for. */
static void test_extra_fd(void **state)
{
    CURLM *multi = curl_multi_init();
    ferry_curl_watch *w = ferry_curl_watch_new(multi);
    int p[2];
    struct pollfd extra[2];
    int64_t start;

    (void)state;
    assert_non_null(w);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    extra[0] = (struct pollfd){p[1], POLLIN, 0}; /* a write end: never readable */
    extra[1] = (struct pollfd){p[0], POLLIN, 0};
    start = ferry_clock_ms();
    assert_int_equal(ferry_curl_watch_wait(w, extra, 2, DEADLINE_MS), 0);
    assert_true(ferry_clock_ms() - start < DEADLINE_MS / 2);
    assert_int_equal(extra[0].revents & POLLIN, 0);
    assert_true(extra[1].revents & POLLIN);
    assert_int_equal(ferry_curl_watch_act(w), CURLM_OK);
    close(p[0]);
    close(p[1]);
    curl_multi_cleanup(multi);
    ferry_curl_watch_destroy(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_extra_fd),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
