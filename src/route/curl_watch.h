/*
 * curl_watch.h - drives a libcurl multi handle with curl_multi_socket_action() over poll().
 *
 * libcurl tells the watch which sockets to wait on and when its next timeout is due; the watch
 * waits for them with poll() (beside fds of the caller's own) and hands libcurl back exactly
 * the sockets that are ready. Compared with curl_multi_perform() and curl_multi_poll(), libcurl
 * then no longer checks every transfer's socket with a poll() of its own on each turn: a
 * one-record route made about 2 poll() calls per request instead of 4, and spent a fifth less
 * CPU per request (bench/README.md). poll(), not epoll: libcurl 7.88 stops watching a pooled
 * connection after each transfer and watches it again for the next, which costs epoll three or
 * four epoll_ctl() calls per request and costs this a few stores.
 *
 * A watch belongs to the thread that drives its multi handle: every function, and libcurl's
 * callbacks into it, run there.
 */
#ifndef FERRY_CURL_WATCH_H
#define FERRY_CURL_WATCH_H

#include <poll.h>

#include <curl/curl.h>

typedef struct ferry_curl_watch ferry_curl_watch;

/* Makes a watch for multi and installs its socket and timer callbacks there. The caller keeps
 * multi and destroys the watch after curl_multi_cleanup(multi) (which may still call back).
 * Returns NULL when out of memory or when multi refuses the callbacks. */
ferry_curl_watch *ferry_curl_watch_new(CURLM *multi);

/* Accepts NULL. */
void ferry_curl_watch_destroy(ferry_curl_watch *w);

/* Waits until one of libcurl's sockets is ready, its timeout is due, one of the caller's fds
 * (extra, n_extra of them: their revents are set) is ready, or timeout_ms passes. The ready
 * sockets are kept for ferry_curl_watch_act(). Returns 0, or -1 with errno when poll() failed
 * (EINTR is not a failure) or out of memory. */
int ferry_curl_watch_wait(ferry_curl_watch *w, struct pollfd *extra, int n_extra, int timeout_ms);

/* Lets libcurl work on the sockets the last wait found ready and on its due timeouts; it
 * starts transfers added since, too. Finished transfers are then in curl_multi_info_read().
 * Returns the first error of curl_multi_socket_action(), or CURLM_OK. */
CURLMcode ferry_curl_watch_act(ferry_curl_watch *w);

/* How many sockets libcurl has the watch wait for now. */
int ferry_curl_watch_sockets(const ferry_curl_watch *w);

#endif
