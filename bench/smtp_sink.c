/*
 * smtp_sink.c - an SMTP server that accepts every message and keeps none, for bench/smtp.sh.
 *
 * One thread, epoll, non-blocking sockets: it answers EHLO/HELO, MAIL, RCPT, DATA (until the
 * line with a single dot), RSET, NOOP and QUIT, and counts the messages it accepted. Postfix's
 * smtp-sink is what the issue names; it is not on this machine's package list, and this is the
 * same idea in a page, fast enough that the clients, not the sink, are what is measured.
 *
 *   ferry-bench-smtp-sink --port P [--port-file F]
 *
 * With --port 0 the OS picks the port; it is written to F (and stdout). On SIGTERM or SIGINT it
 * prints "messages=N connections=C" and exits 0.
 */
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SINK_LINE_MAX 4096 /* a command line; longer ones are answered 500 */
#define SINK_EVENTS 256
#define SINK_BACKLOG 1024

struct conn {
    int fd;
    int in_data; /* between DATA's 354 and the lone dot */
    size_t len;
    char line[SINK_LINE_MAX];
};

static volatile sig_atomic_t stopping;
static long messages, connections;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void reply(struct conn *c, const char *text)
{
    size_t len = strlen(text);
    /* Replies are short and the client waits for each: a full socket buffer is not expected. */
    if (write(c->fd, text, len) != (ssize_t)len)
        c->in_data = 0;
}

/* One command line, without its CRLF. */
static void command(struct conn *c, const char *line)
{
    if (strncasecmp(line, "EHLO", 4) == 0)
        reply(c, "250-sink\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n");
    else if (strncasecmp(line, "HELO", 4) == 0)
        reply(c, "250 sink\r\n");
    else if (strncasecmp(line, "DATA", 4) == 0) {
        c->in_data = 1;
        reply(c, "354 go ahead\r\n");
    } else if (strncasecmp(line, "QUIT", 4) == 0)
        reply(c, "221 bye\r\n");
    else if (strncasecmp(line, "MAIL", 4) == 0 || strncasecmp(line, "RCPT", 4) == 0 ||
             strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0)
        reply(c, "250 ok\r\n");
    else
        reply(c, "502 not here\r\n");
}

/* A complete line of the message body: the lone dot ends it. */
static void data_line(struct conn *c, const char *line)
{
    if (strcmp(line, ".") != 0)
        return;
    c->in_data = 0;
    messages++;
    reply(c, "250 accepted\r\n");
}

/* Splits what arrived into CRLF lines. A body line longer than the buffer is passed over in
 * pieces (it cannot be the lone dot); a command that long is refused. */
static void feed(struct conn *c, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (c->len && c->line[c->len - 1] == '\r')
                c->len--;
            c->line[c->len] = '\0';
            if (c->in_data)
                data_line(c, c->line);
            else
                command(c, c->line);
            c->len = 0;
        } else if (c->len < SINK_LINE_MAX - 1) {
            c->line[c->len++] = ch;
        } else if (c->in_data) {
            c->len = 0;
        } else {
            reply(c, "500 line too long\r\n");
            c->len = 0;
        }
    }
}

static int listen_on(int port, int *bound)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t alen = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, SINK_BACKLOG) ||
        getsockname(fd, (struct sockaddr *)&a, &alen)) {
        perror("smtp-sink: listen");
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static void accept_all(int ep, int lfd)
{
    int fd, one = 1;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct conn *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
            free(c);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        connections++;
        reply(c, "220 sink ESMTP\r\n");
    }
}

/* Reads what a connection has; closes it on end of file or error. */
static void serve(struct conn *c)
{
    char buf[65536];
    ssize_t n;

    while ((n = read(c->fd, buf, sizeof(buf))) > 0)
        feed(c, buf, (size_t)n);
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        close(c->fd);
        free(c);
    }
}

static int write_port(const char *file, int port)
{
    FILE *f;

    printf("port=%d\n", port);
    fflush(stdout);
    if (!file)
        return 0;
    f = fopen(file, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f)) {
        perror("smtp-sink: port file");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct epoll_event events[SINK_EVENTS], ev = {.events = EPOLLIN};
    const char *port_file = NULL;
    long port = 0;
    int lfd, ep, bound = 0;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) {
            if (bench_parse_long("smtp-sink", "--port", argv[i + 1], 0, 65535, &port))
                return 2;
        } else if (strcmp(argv[i], "--port-file") == 0) {
            port_file = argv[i + 1];
        } else {
            fprintf(stderr, "usage: %s [--port P] [--port-file F]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lfd = listen_on((int)port, &bound);
    ep = epoll_create1(EPOLL_CLOEXEC);
    ev.data.ptr = NULL;
    if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) || write_port(port_file, bound))
        return 1;
    while (!stopping) {
        int n = epoll_wait(ep, events, SINK_EVENTS, 200);
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr)
                serve(events[i].data.ptr);
            else
                accept_all(ep, lfd);
        }
    }
    printf("messages=%ld connections=%ld\n", messages, connections);
    return 0;
}
