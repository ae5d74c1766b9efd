/*
 * test_devbroker.c - the embedded dev cluster's broker sockets behave like a Kafka broker's:
 * TCP_NODELAY on every accepted connection. Without it the mock holds small responses back
 * until the client acknowledges the previous one, and acknowledged ingest had a 25-50 ms tail
 * (bench/README.md, "Latency tail").
 *
 * The cluster runs in this process, so the test finds the broker's end of a connection it made
 * among its own file descriptors and reads the option there. The mock's thread accepts the
 * connection first and sets the option a moment later, so the descriptor can be seen without
 * it: the test waits, with a deadline, for the option rather than reading it once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/devbroker.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_WAIT_MS 5000 /* how long the mock may take to accept a connection */
#define OPTION_WAIT_MS 5000 /* and then to set its options on it */
#define WAIT_STEP_MS 10

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000L + (now.tv_nsec - since->tv_nsec) / 1000000L;
}

static void pause_step(void)
{
    struct timespec step = {0, WAIT_STEP_MS * 1000000L};

    nanosleep(&step, NULL);
}

static int port_of(const struct sockaddr_in *a)
{
    return ntohs(a->sin_port);
}

/* The fd whose local port is local_port and peer port peer_port, or -1. */
static int find_socket(int local_port, int peer_port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;

    if (!d)
        return -1;
    while (found < 0 && (e = readdir(d)) != NULL) {
        struct sockaddr_in local, peer;
        socklen_t llen = sizeof(local), plen = sizeof(peer);
        int fd = (int)strtol(e->d_name, NULL, 10);

        if (e->d_name[0] == '.' || fd == dirfd(d))
            continue;
        if (getsockname(fd, (struct sockaddr *)&local, &llen) != 0 ||
            getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 || local.sin_family != AF_INET)
            continue;
        if (port_of(&local) == local_port && port_of(&peer) == peer_port)
            found = fd;
    }
    closedir(d);
    return found;
}

/* Waits, with a deadline, for the broker's end of the client's connection. */
static int wait_broker_end(int broker_port, int client_port)
{
    struct timespec start;
    int fd = find_socket(broker_port, client_port);

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (fd < 0 && elapsed_ms(&start) < ACCEPT_WAIT_MS) {
        pause_step();
        fd = find_socket(broker_port, client_port);
    }
    return fd;
}

/* Waits, with a deadline, for TCP_NODELAY on fd; returns its last value, or -1 when it
 * cannot be read. */
static int wait_nodelay(int fd)
{
    struct timespec start;
    int nodelay = 0;
    socklen_t optlen = sizeof(nodelay);

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &optlen) != 0)
            return -1;
        if (nodelay || elapsed_ms(&start) >= OPTION_WAIT_MS)
            return nodelay;
        pause_step();
    }
}

static void test_accepted_connections_disable_nagle(void **state)
{
    char err[256] = "";
    ferry_devbroker *db = ferry_devbroker_new(1, err, sizeof(err));
    struct sockaddr_in addr = {0}, mine;
    socklen_t len = sizeof(mine);
    const char *colon;
    int client, broker_end;

    (void)state;
    assert_non_null(db);
    colon = strrchr(ferry_devbroker_bootstrap(db), ':');
    assert_non_null(colon);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    client = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(client >= 0);
    assert_int_equal(connect(client, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(client, (struct sockaddr *)&mine, &len), 0);

    broker_end = wait_broker_end(port_of(&addr), port_of(&mine));
    assert_true(broker_end >= 0);
    assert_int_equal(wait_nodelay(broker_end), 1);

    close(client);
    ferry_devbroker_destroy(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_connections_disable_nagle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
