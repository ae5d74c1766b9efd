/*
 * job.h - what a job is, as the core sees it: one struct of callbacks.
 *
 * ferry's work is done by jobs (routes, ingest, and later tables); everything else is the
 * core (config, logging, metrics, the HTTP server, Kafka set-up). The core includes no header
 * of any job: it knows a job only through struct ferry_job, in the manner of fluent-bit's
 * plugin structs. src/jobs.c lists the jobs; adding one is a new folder plus one line there.
 *
 * A job's life in `ferry run`, driven by core/app.c:
 *   global_init (main thread, before any thread exists)
 *   new -> http_register -> start           in list order
 *   quiesce                                 every job at once, as the server stops taking
 *                                           requests
 *   stop                                    in reverse order, after that and before the
 *                                           shared producer flushes
 *   destroy                                 in reverse order, after that flush
 *   global_cleanup                          last thing before exit
 * `ferry check` loads the config (config, check) and prints each job's summary.
 */
#ifndef FERRY_JOB_H
#define FERRY_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/config_schema.h"

/* The core objects a job is handed, by their struct tags (ferry_kafka, ferry_metrics,
 * ferry_httpd and ferry_auth in their own headers), so that this header needs no other core header
 * and the config loader can include it without a circle. */
struct ferry_config;
struct ferry_kafka;
struct ferry_metrics;
struct ferry_httpd;
struct ferry_auth;
struct ferry_buf;

/* What a job is given when it is built. Everything here outlives the job. */
struct ferry_job_context {
    const struct ferry_config *cfg; /* the whole config: server, kafka, log */
    const void *config;             /* the job's own section (see ferry_config_job) */
    struct ferry_kafka *kafka;
    struct ferry_metrics *metrics;
    /* The listener's API keys (core/auth.h): the job whose config declares keys adds them in
     * create (ingest: ingest.auth.keys); every job checks its requests against them. */
    struct ferry_auth *auth;
};

struct ferry_job {
    const char *name; /* names the job in logs and in /readyz */

    /* The top-level keys the job owns (its fields' offsets are into a struct of config->size
     * bytes that the config loader allocates and frees). Required. */
    const struct ferry_cfg_section *config;

    /* Checks that need the whole file (other sections), run once after loading; reports
     * problems with ferry_config_error(). May be NULL. */
    void (*check)(struct ferry_config *cfg, void *config);

    /* Writes the job's lines of `ferry check`'s summary ("  route:  ..."). May be NULL. */
    void (*summary)(const void *config, FILE *out);

    /* Adds the API keys the job's section declares to auth (ingest: ingest.auth.keys). Returns
     * 0, or -1 with errstr. The job's create adds them for `ferry run`; the config checks that
     * need the listener's keys get them through ferry_auth_from_config. May be NULL (the job
     * declares no keys). Main thread. */
    int (*add_keys)(const void *config, struct ferry_auth *auth, char *errstr, size_t errstr_size);

    /* Process-wide set-up of the libraries the job uses. Returns 0, or -1 with errstr. Both
     * may be NULL. Main thread, before any other thread exists / after all are gone. */
    int (*global_init)(char *errstr, size_t errstr_size);
    void (*global_cleanup)(void);

    /* Builds the job without starting anything. Returns the job, or NULL with errstr. A job
     * with nothing configured still returns an object (that does nothing). Main thread. */
    void *(*create)(const struct ferry_job_context *ctx, char *errstr, size_t errstr_size);

    /* Registers the job's endpoints on the server before it starts. Returns 0, or -1 with
     * errstr. May be NULL. Main thread. */
    int (*http_register)(void *job, struct ferry_httpd *h, char *errstr, size_t errstr_size);

    /* Readiness for /readyz: 1 when ready, else 0 with why filled. Any thread. */
    int (*ready)(void *job, char *why, size_t why_size);

    /* Appends the job's part of GET /status to out: one JSON value, which /status shows under
     * the job's name (docs/operations.md lists the fields). Returns 0, or -1 when out's cap
     * was reached. May be NULL. Any thread (an HTTP thread), also while the job stops. */
    int (*status)(void *job, struct ferry_buf *out);

    /* Starts the job's threads. Returns 0, or -1 with errstr. May be NULL. Main thread. */
    int (*start)(void *job, char *errstr, size_t errstr_size);

    /* Takes no new work from now on, and returns without waiting: called for every job when
     * the stop begins, so that no job goes on working while another drains (routes would
     * otherwise go on consuming while ingest waits for its delivery reports). stop follows.
     * May be NULL. Main thread. */
    void (*quiesce)(void *job);

    /* Drains and stops: takes no new work, finishes or hands back what is in flight within
     * timeout_ms, joins the job's threads and closes every Kafka client the job made (the
     * shared producer is flushed after this). Accepts a job that was built but not started.
     * Main thread. */
    void (*stop)(void *job, int64_t timeout_ms);

    /* Frees everything, after the shared producer's final flush (which may still deliver
     * reports of the job's records). Accepts NULL. Main thread. */
    void (*destroy)(void *job);
};

/* The jobs, in start order, ending with NULL. Defined in src/jobs.c. */
extern const struct ferry_job *const ferry_jobs[];

/* Most jobs a build may list. */
#define FERRY_JOBS_MAX 8

/* The position of job in ferry_jobs, or -1 when it is not listed. */
int ferry_job_index(const struct ferry_job *job);

/* Runs every job's global_init in order; on a failure, cleans up those already set up and
 * returns -1 with errstr naming the job. Main thread, before any other thread exists. */
int ferry_job_global_init(char *errstr, size_t errstr_size);

/* Runs every job's global_cleanup in reverse order. Main thread, after every job is gone. */
void ferry_job_global_cleanup(void);

#endif
