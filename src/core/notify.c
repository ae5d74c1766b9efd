/*
 * notify.c - the service manager's notification socket (see notify.h).
 */
#include "core/notify.h"
#include "core/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct ferry_notify {
    int fd; /* -1: nobody listens */
    struct sockaddr_un addr;
    socklen_t addr_len;
    int64_t watchdog_ms;
    atomic_int failed; /* a send failed and was logged */
};

/* Fills n->addr from $NOTIFY_SOCKET. Returns 0, or -1 with errstr. */
static int set_address(ferry_notify *n, const char *name, char *errstr, size_t errstr_size)
{
    size_t len = strlen(name);

    if ((name[0] != '/' && name[0] != '@') || len < 2 || len >= sizeof(n->addr.sun_path)) {
        snprintf(errstr, errstr_size,
                 "NOTIFY_SOCKET '%s': expected an absolute path or @name of at most %zu bytes",
                 name, sizeof(n->addr.sun_path) - 1);
        return -1;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, name, len);
    if (name[0] == '@')
        n->addr.sun_path[0] = '\0'; /* an abstract name */
    n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return 0;
}

/* Half of $WATCHDOG_USEC when $WATCHDOG_PID is unset or names this process. */
static int64_t watchdog_interval(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    long long us;
    char *end;

    if (!usec || (pid && strtoll(pid, NULL, 10) != (long long)getpid()))
        return 0;
    us = strtoll(usec, &end, 10);
    if (*end || us <= 0)
        return 0;
    return us / 2000 > 0 ? us / 2000 : 1;
}

ferry_notify *ferry_notify_new(char *errstr, size_t errstr_size)
{
    ferry_notify *n = calloc(1, sizeof(*n));
    const char *name = getenv("NOTIFY_SOCKET");

    if (!n) {
        snprintf(errstr, errstr_size, "out of memory for the service manager's notifier");
        return NULL;
    }
    n->fd = -1;
    if (!name || !*name)
        return n;
    if (set_address(n, name, errstr, errstr_size))
        goto fail;
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (n->fd < 0) {
        snprintf(errstr, errstr_size, "NOTIFY_SOCKET: cannot make a socket: %s", strerror(errno));
        goto fail;
    }
    n->watchdog_ms = watchdog_interval();
    return n;
fail:
    ferry_notify_destroy(n);
    return NULL;
}

void ferry_notify_destroy(ferry_notify *n)
{
    if (!n)
        return;
    if (n->fd >= 0)
        close(n->fd);
    free(n);
}

int ferry_notify_enabled(const ferry_notify *n)
{
    return n && n->fd >= 0;
}

int ferry_notify_send(ferry_notify *n, const char *message)
{
    size_t len = strnlen(message, FERRY_NOTIFY_MESSAGE_MAX);

    if (!ferry_notify_enabled(n))
        return 0;
    if (sendto(n->fd, message, len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr, n->addr_len) ==
        (ssize_t)len)
        return 0;
    if (!atomic_exchange(&n->failed, 1))
        FLOG_WARN("app", "notify", "cannot tell the service manager '%.40s': %s", message,
                  strerror(errno));
    return -1;
}

int64_t ferry_notify_watchdog_interval_ms(const ferry_notify *n)
{
    return ferry_notify_enabled(n) ? n->watchdog_ms : 0;
}
