/*
 * curl_watch.c - drives a libcurl multi handle with curl_multi_socket_action() over poll()
 * (see curl_watch.h).
 *
 * libcurl's socket callback keeps socks, one pollfd per socket it wants watched; each socket's
 * slot in socks is assigned to it (curl_multi_assign), so that a change finds it at once and a
 * removal moves the last slot into the hole. A wait copies the caller's fds and socks into
 * polled and polls that; act then hands libcurl the sockets whose revents are set there.
 * libcurl's timer callback gives the next timeout as a deadline on the process's clock.
 */
#include "route/curl_watch.h"
#include "core/clock.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Timeouts run one after the other within one act when libcurl keeps asking for another at
 * once; after this many, the next wait returns at once instead. */
#define WATCH_TIMEOUT_TURNS 8
/* The most sockets one watch follows, so that its arrays stay bounded. libcurl's sockets are
 * its connections (a sender caps them: SENDER_CONNECTIONS_MAX per host) and its resolver's. */
#define WATCH_SOCKETS_MAX (1 << 20)

struct ferry_curl_watch {
    CURLM *multi;
    struct pollfd *socks; /* libcurl's sockets and the events it waits for */
    int nsocks, socks_cap;
    struct pollfd *polled; /* the last wait's fds: the caller's, then the sockets */
    int npolled, polled_cap;
    int first_sock;    /* where the sockets start in polled */
    int64_t due_ms;    /* when libcurl's next timeout is due (ferry_clock_ms), or -1 */
    int timer_changed; /* libcurl called the timer callback since this was cleared */
};

/* Makes room for n pollfds in *v. Returns 0, or -1 when out of memory. */
static int reserve(struct pollfd **v, int *cap, int n)
{
    int grown = *cap ? *cap : 8;
    struct pollfd *p;

    if (n <= *cap)
        return 0;
    while (grown < n)
        grown *= 2;
    p = realloc(*v, (size_t)grown * sizeof(*p));
    if (!p)
        return -1;
    *v = p;
    *cap = grown;
    return 0;
}

static short events_of(int what)
{
    short events = 0;

    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= POLLOUT;
    return events;
}

/* A socket's slot (0-based) from the pointer assigned to it, or -1 when it has none yet. */
static int slot_of(void *assigned)
{
    return (int)((intptr_t)assigned - 1);
}

static void *assigned_for(int slot)
{
    return (void *)(intptr_t)(slot + 1);
}

/* Stops watching the socket in slot; the last socket moves into it. */
static void forget(ferry_curl_watch *w, int slot)
{
    int last = --w->nsocks;

    if (slot == last)
        return;
    w->socks[slot] = w->socks[last];
    curl_multi_assign(w->multi, w->socks[slot].fd, assigned_for(slot));
}

/* libcurl's socket callback: what it wants of fd, or CURL_POLL_REMOVE. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    ferry_curl_watch *w = userp;
    int slot = slot_of(socketp);

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (slot >= 0)
            forget(w, slot);
        return 0;
    }
    if (slot < 0) {
        if (w->nsocks == WATCH_SOCKETS_MAX || reserve(&w->socks, &w->socks_cap, w->nsocks + 1))
            return -1; /* libcurl (7.85 on) fails the multi handle's transfers: retried */
        slot = w->nsocks++;
        w->socks[slot].fd = fd;
        curl_multi_assign(w->multi, fd, assigned_for(slot));
    }
    w->socks[slot].events = events_of(what);
    w->socks[slot].revents = 0;
    return 0;
}

/* libcurl's timer callback: its next timeout in timeout_ms, or -1 for none. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ferry_curl_watch *w = userp;

    (void)multi;
    w->due_ms = timeout_ms < 0 ? -1 : ferry_clock_ms() + timeout_ms;
    w->timer_changed = 1;
    return 0;
}

ferry_curl_watch *ferry_curl_watch_new(CURLM *multi)
{
    ferry_curl_watch *w = calloc(1, sizeof(*w));
    CURLMcode mc;

    if (!w)
        return NULL;
    w->multi = multi;
    w->due_ms = -1;
    mc = curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    if (!mc)
        mc = curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, w);
    if (!mc)
        mc = curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
    if (!mc)
        mc = curl_multi_setopt(multi, CURLMOPT_TIMERDATA, w);
    if (mc) {
        ferry_curl_watch_destroy(w);
        return NULL;
    }
    return w;
}

void ferry_curl_watch_destroy(ferry_curl_watch *w)
{
    if (!w)
        return;
    free(w->socks);
    free(w->polled);
    free(w);
}

/* How long a wait of timeout_ms (negative: no limit) may last with libcurl's timeout. */
static int wait_ms(const ferry_curl_watch *w, int timeout_ms)
{
    int64_t left;

    if (w->due_ms < 0)
        return timeout_ms;
    left = w->due_ms - ferry_clock_ms();
    if (left < 0)
        left = 0;
    if (timeout_ms >= 0 && timeout_ms < left)
        return timeout_ms;
    return left < INT_MAX ? (int)left : INT_MAX;
}

int ferry_curl_watch_wait(ferry_curl_watch *w, struct pollfd *extra, int n_extra, int timeout_ms)
{
    int n = n_extra + w->nsocks;
    int rc;

    w->npolled = 0;
    if (reserve(&w->polled, &w->polled_cap, n)) {
        errno = ENOMEM;
        return -1;
    }
    if (n_extra)
        memcpy(w->polled, extra, (size_t)n_extra * sizeof(*extra));
    if (w->nsocks)
        memcpy(w->polled + n_extra, w->socks, (size_t)w->nsocks * sizeof(*w->socks));
    rc = poll(w->polled, (nfds_t)n, wait_ms(w, timeout_ms));
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n_extra; i++)
        extra[i].revents = w->polled[i].revents;
    w->first_sock = n_extra;
    w->npolled = rc > 0 ? n : 0;
    return 0;
}

static int bits_of(short revents)
{
    int bits = 0;

    if (revents & (POLLIN | POLLHUP))
        bits |= CURL_CSELECT_IN;
    if (revents & POLLOUT)
        bits |= CURL_CSELECT_OUT;
    if (revents & (POLLERR | POLLNVAL))
        bits |= CURL_CSELECT_ERR;
    return bits;
}

/* Runs libcurl's timeouts that are due. libcurl's timeout is in whole milliseconds, rounded
 * down, so one may come due here a little before libcurl's own clock says so: libcurl then
 * finds nothing to do and, its deadline unchanged, does not call the timer back. That
 * deadline is tried again a millisecond later. */
static CURLMcode run_timeouts(ferry_curl_watch *w)
{
    CURLMcode result = CURLM_OK;
    int running;

    for (int turn = 0; turn < WATCH_TIMEOUT_TURNS; turn++) {
        int64_t now = ferry_clock_ms();
        CURLMcode mc;

        if (w->due_ms < 0 || w->due_ms > now)
            break;
        w->timer_changed = 0;
        mc = curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        if (mc && !result)
            result = mc;
        if (!w->timer_changed) {
            w->due_ms = now + 1;
            break;
        }
    }
    return result;
}

CURLMcode ferry_curl_watch_act(ferry_curl_watch *w)
{
    CURLMcode result = CURLM_OK, mc;
    int running;

    for (int i = w->first_sock; i < w->npolled; i++) {
        if (!w->polled[i].revents)
            continue;
        mc = curl_multi_socket_action(w->multi, w->polled[i].fd, bits_of(w->polled[i].revents),
                                      &running);
        if (mc && !result)
            result = mc;
    }
    w->npolled = 0;
    mc = run_timeouts(w);
    return result ? result : mc;
}

int ferry_curl_watch_sockets(const ferry_curl_watch *w)
{
    return w->nsocks;
}
