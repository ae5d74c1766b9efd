/*
 * app.h - the life of a `ferry run` process: start every part in order, wait for a signal,
 * drain and stop them in reverse order within server.shutdown_timeout.
 */
#ifndef FERRY_APP_H
#define FERRY_APP_H

#include "core/config.h"

/* Exit codes of the ferry binary (documented in docs/cli.md). */
#define FERRY_EXIT_OK 0
#define FERRY_EXIT_FAILURE 1 /* a part could not start, a Kafka client failed: may pass later */
#define FERRY_EXIT_INVALID 2 /* bad command line, a config unreadable or invalid: will not pass */
#define FERRY_EXIT_FORCED 3  /* stopped before draining: second signal or shutdown timeout */

#include <signal.h>

/* The signals that stop ferry gracefully: SIGTERM, SIGINT, and SIGHUP (the terminal went away;
 * ferry does not reload its config). */
sigset_t ferry_app_stop_signals(void);

/* The name of one of those signals, "SIGTERM" for instance. */
const char *ferry_app_signal_name(int sig);

/* Blocks the stop signals in the calling thread (and so in every thread it creates later),
 * and ignores SIGPIPE. Call first thing in main(). */
void ferry_app_block_signals(void);

/* Waits for a stop signal and returns its number. */
int ferry_app_wait_signal(void);

/* Runs the daemon on a valid config until a signal stops it. Returns an exit code. */
int ferry_app_run(const struct ferry_config *cfg);

#endif
