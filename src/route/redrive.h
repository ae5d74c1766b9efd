/*
 * redrive.h - `ferry redrive`: sends a route's dead letters through the route again, once its
 * target is fixed.
 *
 * A redrive reads the route's dead-letter topic, every partition, from the first offset the
 * selection allows (redrive_filter.h) up to the end the topic had when the run began, keeps
 * the dead letters whose newest ferry.route is the route, and sends each one as the route would
 * have sent it: the request is built by the route's own request builder (request.c) from the
 * original record (ferry.topic, ferry.partition, ferry.offset and ferry.timestamp put back, the
 * ferry.* headers taken off, so the URL, headers, body and Idempotency-Key are those of the
 * original delivery), sent by the route's sender (sender.c), and judged by the route's
 * on_status rules and retry policy (outcome.c). One request is under way at a time and each
 * carries one record.
 *
 * A dead letter that fails again is counted and left where it is: it is not written to the
 * dead-letter topic a second time, where the next redrive of the whole topic would meet it
 * twice.
 *
 * Progress goes to a small file after every dead letter sent (or failed again): the selection,
 * and for each partition the next offset to read (never past the partition's end when the run
 * began: a --from beyond it is kept by the selection) and the end of the run. An interrupted
 * redrive (a signal, a crash, kill -9) run again with the same selection resumes there; the
 * file is renamed into place, so it is always one consistent state. A finished run keeps its
 * file, marked finished: the same command run again goes on from where it ended, so it sends
 * only dead letters written since, never the same one twice (--restart starts afresh).
 */
#ifndef FERRY_REDRIVE_H
#define FERRY_REDRIVE_H

#include <stdint.h>
#include <stdio.h>

#include "core/config.h"
#include "core/kafka.h"
#include "route/redrive_filter.h"
#include "route/route_config.h"

/* Exit code of `ferry redrive` when the run finished but some dead letters failed again. */
#define FERRY_REDRIVE_EXIT_FAILED_AGAIN 4

struct ferry_redrive_options {
    const char *route;                        /* the route's name */
    const struct ferry_routes_config *routes; /* where to find it: the routes job's section */
    const char *progress_path; /* NULL: "ferry-redrive-<route>.progress" in the working dir */
    int dry_run;               /* send nothing, write no progress; print what would be sent */
    int restart;               /* forget a saved run and start a new one */
    size_t max_lines;          /* the most per-record lines printed to out; 0: no limit. A
                                  caller that keeps them in memory sets one. */
    ferry_kafka *kafka;        /* the process's Kafka set-up; NULL: the run makes its own, which
                                  needs kafka.brokers (an embedded dev cluster would be empty) */
    /* Waits up to wait_ms (0: only looks) for a request to stop the run; returns nonzero when
     * there is one. Called between records, while a request is under way and while a retry
     * waits. Required. */
    int (*stop)(void *arg, int64_t wait_ms);
    void *stop_arg;
    struct ferry_redrive_filter filter;
};

struct ferry_redrive_summary {
    uint64_t read;         /* dead letters read */
    uint64_t redriven;     /* delivered (with dry_run: that would be sent) */
    uint64_t skipped;      /* another route's, or left out by the selection */
    uint64_t failed_again; /* answered with a dead-letter outcome, or not buildable */
    uint64_t unprinted;    /* per-record lines left out past o->max_lines */
    int interrupted;       /* a signal stopped the run; its progress is saved */
    int resumed;           /* the run went on from an interrupted run's progress */
    int continued;         /* the same run had finished: only what came after it was read */
};

enum ferry_redrive_result {
    FERRY_REDRIVE_OK = 0,
    FERRY_REDRIVE_EUSAGE = 1, /* the route or the saved run does not fit the command */
    FERRY_REDRIVE_EFAIL = 2,  /* Kafka, the progress file or memory failed */
    FERRY_REDRIVE_EBUSY = 3,  /* another run holds the progress file: try again once it ends */
};

/* The route named name in the routes job's section of a loaded config, or NULL. */
const struct ferry_route_config *ferry_redrive_find_route(const struct ferry_routes_config *rs,
                                                          const char *name);

/* Runs a redrive of o->route on cfg (loaded and valid), printing each dead letter that fails
 * again (and with dry_run each one that would be sent) to out. When o->stop says stop, the
 * run lets the request under way finish, saves its progress and returns with
 * sum->interrupted set. Returns an enum
 * ferry_redrive_result, with a message in errstr when it is not OK; *sum counts what was done
 * either way. Any one thread (the run blocks it until done). */
int ferry_redrive_run(const struct ferry_config *cfg, const struct ferry_redrive_options *o,
                      struct ferry_redrive_summary *sum, FILE *out, char *errstr,
                      size_t errstr_size);

#endif
