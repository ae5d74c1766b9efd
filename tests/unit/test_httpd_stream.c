/*
 * test_httpd_stream.c - streamed answers of ferry's HTTP server (src/core/httpd.c).
 *
 * A ferry_httpd on a port the OS picks has one route whose handler starts a stream and hands
 * it to the test, which then writes, closes, and reads what a raw socket client receives.
 * Cases: pieces arrive in order and the body ends after close; the queue's limits; a client
 * that goes away is reported (FERRY_HTTP_STREAM_GONE) and later writes fail; a drained queue
 * is reported when asked, and the bytes taken to send are counted. Every case runs against the
 * polling server (one thread) and the epoll thread pool. Waits have deadlines; no fixed sleeps.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

#define WAIT_MS 5000
#define RECEIVED_MAX 65536

/* What the handler hands over to the test. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ferry_http_stream *stream;
    unsigned notified; /* FERRY_HTTP_STREAM_* seen */
    struct ferry_http_stream_options opts;
    int early[4]; /* results of the writes the handler made before returning */
} hand;

static void on_notify(void *arg, unsigned what)
{
    (void)arg;
    pthread_mutex_lock(&hand.lock);
    hand.notified |= what;
    pthread_cond_broadcast(&hand.cond);
    pthread_mutex_unlock(&hand.lock);
}

/* GET /stream?early=N[&size=K][&items=I]: starts a stream with hand.opts, writes N pieces
 * before returning (their results in hand.early) and hands the stream over. Piece i is "e<i>",
 * or K bytes of 'a' + i with size; each holds one item, or I. */
static void on_stream(ferry_http_req *req, void *arg)
{
    const char *early = ferry_http_req_query(req, "early");
    const char *size = ferry_http_req_query(req, "size");
    const char *items = ferry_http_req_query(req, "items");
    int n = early ? early[0] - '0' : 0;
    ferry_http_stream *s;

    (void)arg;
    ferry_http_add_header(req, "Cache-Control", "no-cache");
    s = ferry_http_stream_start(req, 200, "text/event-stream", &hand.opts);
    if (!s) {
        ferry_http_respond(req, 503, NULL, "", 0);
        return;
    }
    for (int i = 0; i < n && i < 4; i++) {
        char piece[16];
        size_t len = size ? (size_t)(size[0] - '0') : 2;
        if (size)
            memset(piece, 'a' + i, len);
        else
            snprintf(piece, sizeof(piece), "e%d", i);
        hand.early[i] =
            ferry_http_stream_write(s, piece, len, items ? (size_t)(items[0] - '0') : 1);
    }
    pthread_mutex_lock(&hand.lock);
    hand.stream = s;
    pthread_cond_broadcast(&hand.cond);
    pthread_mutex_unlock(&hand.lock);
}

/* Waits for the handler's stream, or for notified to have all of what. */
static int wait_hand(int for_stream, unsigned what)
{
    struct timespec until = ferry_clock_timespec(ferry_clock_ms() + WAIT_MS);
    int ok;

    pthread_mutex_lock(&hand.lock);
    for (;;) {
        ok = for_stream ? hand.stream != NULL : (hand.notified & what) == what;
        if (ok || pthread_cond_timedwait(&hand.cond, &hand.lock, &until) == ETIMEDOUT)
            break;
    }
    ok = for_stream ? hand.stream != NULL : (hand.notified & what) == what;
    pthread_mutex_unlock(&hand.lock);
    return ok;
}

/* ---- a raw client ---- */

static int client_open(int port, const char *path)
{
    struct sockaddr_in a = {0};
    char req[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads into got (NUL-terminated) until it holds want, the peer closes, or the deadline.
 * Returns 1 when want was seen. */
static int client_read_until(int fd, char *got, size_t *len, const char *want)
{
    int64_t deadline = ferry_clock_ms() + WAIT_MS;

    while (!strstr(got, want)) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - ferry_clock_ms();
        ssize_t n;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        n = read(fd, got + *len, RECEIVED_MAX - 1 - *len);
        if (n <= 0)
            return strstr(got, want) != NULL;
        *len += (size_t)n;
        got[*len] = '\0';
    }
    return 1;
}

/* ---- the server ---- */

struct server {
    ferry_httpd *httpd;
    int port;
};

static int server_setup(void **state, int threads)
{
    struct ferry_httpd_options o = {"127.0.0.1:0", threads, 64, 30, 0, 0};
    struct server *srv = calloc(1, sizeof(*srv));
    char err[256];

    if (!srv)
        return -1;
    pthread_mutex_init(&hand.lock, NULL);
    ferry_clock_cond_init(&hand.cond);
    srv->httpd = ferry_httpd_new(&o, err, sizeof(err));
    if (!srv->httpd ||
        ferry_httpd_route(srv->httpd, "GET", "/stream", FERRY_HTTP_EXACT, 0, on_stream, NULL) ||
        ferry_httpd_start(srv->httpd, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    srv->port = ferry_httpd_port(srv->httpd);
    *state = srv;
    return 0;
}

static int setup_poll(void **state)
{
    return server_setup(state, 1);
}

static int setup_pool(void **state)
{
    return server_setup(state, 4);
}

static int server_teardown(void **state)
{
    struct server *srv = *state;

    ferry_httpd_destroy(srv->httpd);
    free(srv);
    pthread_cond_destroy(&hand.cond);
    pthread_mutex_destroy(&hand.lock);
    return 0;
}

/* Starts a stream with opts for path; returns the client's socket. */
static int open_stream(const struct server *srv, const char *path,
                       struct ferry_http_stream_options opts)
{
    int fd;

    pthread_mutex_lock(&hand.lock);
    hand.stream = NULL;
    hand.notified = 0;
    hand.opts = opts;
    pthread_mutex_unlock(&hand.lock);
    fd = client_open(srv->port, path);
    assert_true(fd >= 0);
    assert_true(wait_hand(1, 0));
    return fd;
}

static const struct ferry_http_stream_options plain = {8, 1024, on_notify, NULL};

/* ---- cases ---- */

static void pieces_arrive_in_order_and_the_body_ends(void **state)
{
    char got[RECEIVED_MAX] = "";
    size_t len = 0;
    int fd = open_stream(*state, "/stream?early=2", plain);

    assert_int_equal(hand.early[0], FERRY_HTTP_STREAM_OK);
    assert_true(client_read_until(fd, got, &len, "e1"));
    assert_non_null(strstr(got, "HTTP/1.1 200"));
    assert_non_null(strstr(got, "Content-Type: text/event-stream"));
    assert_non_null(strstr(got, "Cache-Control: no-cache"));
    assert_non_null(strstr(got, "Transfer-Encoding: chunked"));
    /* the queue is empty: the connection is suspended; a write wakes it */
    assert_int_equal(ferry_http_stream_write(hand.stream, "late", 4, 1), FERRY_HTTP_STREAM_OK);
    assert_true(client_read_until(fd, got, &len, "late"));
    assert_true(strstr(got, "e0") < strstr(got, "e1") && strstr(got, "e1") < strstr(got, "late"));
    ferry_http_stream_close(hand.stream, "bye", 3);
    assert_true(client_read_until(fd, got, &len, "bye\r\n0\r\n\r\n"));
    close(fd);
}

/* Writes the handler makes before libmicrohttpd takes anything, against the queue's limits. */
struct full_case {
    const char *name;
    const char *path;
    struct ferry_http_stream_options opts;
    int writes;
    int want[3];        /* the results of the handler's writes, in order */
    const char *absent; /* the refused write's text, which the client must not get */
};

#define OK FERRY_HTTP_STREAM_OK
#define FULL FERRY_HTTP_STREAM_FULL

static const struct full_case full_cases[] = {
    {"a third item in a queue of two",
     "/stream?early=3",
     {2, 1024, NULL, NULL},
     3,
     {OK, OK, FULL},
     "e2"},
    {"writes of two items in a queue of four",
     "/stream?early=3&items=2",
     {4, 1024, NULL, NULL},
     3,
     {OK, OK, FULL},
     "e2"},
    {"three items pass into an empty queue of two",
     "/stream?early=2&items=3",
     {2, 1024, NULL, NULL},
     2,
     {OK, FULL},
     "e1"},
    {"bytes past max_bytes", "/stream?early=3", {10, 4, NULL, NULL}, 3, {OK, OK, FULL}, "e2"},
    {"a write larger than max_bytes passes into an empty queue",
     "/stream?early=2&size=9",
     {10, 4, NULL, NULL},
     2,
     {OK, FULL},
     "bbbbbbbbb"},
};

static void a_full_queue_refuses_writes(void **state)
{
    for (size_t i = 0; i < sizeof(full_cases) / sizeof(full_cases[0]); i++) {
        const struct full_case *c = &full_cases[i];
        char got[RECEIVED_MAX] = "";
        size_t len = 0;
        int fd;

        print_message("full case: %s\n", c->name);
        fd = open_stream(*state, c->path, c->opts);
        for (int w = 0; w < c->writes; w++)
            assert_int_equal(hand.early[w], c->want[w]);
        ferry_http_stream_close(hand.stream, "end", 3);
        assert_true(client_read_until(fd, got, &len, "end\r\n0\r\n\r\n"));
        assert_null(strstr(got, c->absent));
        close(fd);
    }
}

static void a_client_that_goes_away_is_reported(void **state)
{
    int64_t deadline = ferry_clock_ms() + WAIT_MS;
    char got[RECEIVED_MAX] = "";
    size_t len = 0;
    int fd = open_stream(*state, "/stream", plain), r = FERRY_HTTP_STREAM_OK;

    assert_true(client_read_until(fd, got, &len, "\r\n\r\n"));
    close(fd);
    /* a suspended connection sees nothing: writes wake it until it finds the client gone */
    while (r != FERRY_HTTP_STREAM_CLOSED && ferry_clock_ms() < deadline) {
        r = ferry_http_stream_write(hand.stream, "ping\n", 5, 1);
        if (r != FERRY_HTTP_STREAM_CLOSED) {
            struct timespec step = {0, 5 * 1000000};
            nanosleep(&step, NULL);
        }
    }
    assert_int_equal(r, FERRY_HTTP_STREAM_CLOSED);
    assert_true(wait_hand(0, FERRY_HTTP_STREAM_GONE));
    assert_int_equal(ferry_http_stream_room(hand.stream), 0);
    assert_int_equal(ferry_http_stream_want_drain(hand.stream), -1);
    ferry_http_stream_close(hand.stream, "unsent", 6);
}

static void a_drained_queue_is_reported(void **state)
{
    char big[4096], got[RECEIVED_MAX] = "";
    size_t len = 0;
    int fd = open_stream(*state, "/stream", plain);

    assert_true(client_read_until(fd, got, &len, "\r\n\r\n"));
    assert_int_equal(ferry_http_stream_want_drain(hand.stream), 1); /* empty already */
    assert_int_equal(ferry_http_stream_taken(hand.stream), 0);
    memset(big, 'd', sizeof(big));
    big[sizeof(big) - 1] = '!';
    assert_int_equal(ferry_http_stream_write(hand.stream, big, sizeof(big), 1),
                     FERRY_HTTP_STREAM_OK);
    assert_true(ferry_http_stream_room(hand.stream) <= plain.max_items);
    if (ferry_http_stream_want_drain(hand.stream) == 0)
        assert_true(wait_hand(0, FERRY_HTTP_STREAM_DRAINED));
    assert_true(client_read_until(fd, got, &len, "d!"));
    assert_int_equal(ferry_http_stream_room(hand.stream), plain.max_items);
    assert_int_equal(ferry_http_stream_taken(hand.stream), sizeof(big)); /* what the client read */
    ferry_http_stream_close(hand.stream, NULL, 0);
    assert_true(client_read_until(fd, got, &len, "0\r\n\r\n"));
    close(fd);
}

/* The server stops with a stream closed but its client still connected: nothing leaks. */
static void a_closed_stream_lets_the_server_stop(void **state)
{
    struct server *srv = *state;
    int fd = open_stream(srv, "/stream?early=1", plain);

    ferry_http_stream_close(hand.stream, "last", 4);
    ferry_httpd_destroy(srv->httpd);
    srv->httpd = NULL;
    close(fd);
}

#define CASES                                                                                      \
    cmocka_unit_test(pieces_arrive_in_order_and_the_body_ends),                                    \
        cmocka_unit_test(a_full_queue_refuses_writes),                                             \
        cmocka_unit_test(a_client_that_goes_away_is_reported),                                     \
        cmocka_unit_test(a_drained_queue_is_reported),                                             \
        cmocka_unit_test(a_closed_stream_lets_the_server_stop)

int main(void)
{
    const struct CMUnitTest tests[] = {CASES};
    int failed =
        cmocka_run_group_tests_name("one polling thread", tests, setup_poll, server_teardown);

    return failed |
           cmocka_run_group_tests_name("epoll thread pool", tests, setup_pool, server_teardown);
}
