/*
 * notify.h - telling the service manager (systemd, `Type=notify`) how ferry is doing:
 * READY=1 once ready, STOPPING=1 when it drains, WATCHDOG=1 while it lives, STATUS=... in
 * words.
 *
 * The protocol is one datagram per message to the AF_UNIX socket named by $NOTIFY_SOCKET (a
 * path, or an abstract name written with a leading '@'), spoken here directly: a few lines
 * instead of a dependency on libsystemd. Without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef FERRY_NOTIFY_H
#define FERRY_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* The longest message sent; longer STATUS= texts are cut. */
#define FERRY_NOTIFY_MESSAGE_MAX 512

typedef struct ferry_notify ferry_notify;

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. Returns the notifier (inert when
 * there is no socket), or NULL with errstr when the socket is named but unusable. */
ferry_notify *ferry_notify_new(char *errstr, size_t errstr_size);

/* Closes the socket and frees n. Accepts NULL. */
void ferry_notify_destroy(ferry_notify *n);

/* Nonzero when a service manager listens. */
int ferry_notify_enabled(const ferry_notify *n);

/* Sends one message ("READY=1", "STATUS=..."). Returns 0, or -1 when it could not be sent
 * (logged once). Any thread. */
int ferry_notify_send(ferry_notify *n, const char *message);

/* How often to send WATCHDOG=1: half of $WATCHDOG_USEC, in milliseconds, when it is set for
 * this process; 0 otherwise. */
int64_t ferry_notify_watchdog_interval_ms(const ferry_notify *n);

#endif
