/*
 * sockets.h - TCP sockets the unit tests point clients at: bound to 127.0.0.1 on a port the OS
 * picks. Header-only: each test is its own executable.
 */
#ifndef FERRY_TEST_SOCKETS_H
#define FERRY_TEST_SOCKETS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* Binds a TCP socket on 127.0.0.1 to a port the OS picks; *port is set. Returns the socket
 * (the caller listens on it, or closes it to have a port where nothing listens), or -1. */
static inline int test_bound_socket(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

#endif
