/*
 * app.c - start-up, signal handling and graceful shutdown of `ferry run`.
 *
 * Signals are blocked in every thread and taken synchronously with sigwait() by the main
 * thread, so no code runs in signal context. After the first SIGTERM/SIGINT a watchdog thread
 * waits for a second signal or for server.shutdown_timeout and then exits the process at once
 * (exit code 3); otherwise the main thread drains and releases everything and exits 0.
 */
#include "core/app.h"
#include "core/admin.h"
#include "core/auth.h"
#include "core/httpd.h"
#include "core/job.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct app {
    const struct ferry_config *cfg;
    ferry_metrics *metrics;
    ferry_kafka *kafka;
    ferry_httpd *httpd;
    ferry_admin *admin;
    ferry_auth *auth;
    void *jobs[FERRY_JOBS_MAX]; /* indexed as ferry_jobs; NULL until built */
};

struct watchdog {
    pthread_t thread;
    int64_t timeout_ms;
    atomic_int done;
};

static sigset_t stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

void ferry_app_block_signals(void)
{
    sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int ferry_app_wait_signal(void)
{
    sigset_t set = stop_signals();
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

/* Waits in short steps so that it notices when the drain finished. */
static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    sigset_t set = stop_signals();
    struct timespec step = {0, 100 * 1000000};
    int64_t waited = 0;

    while (!atomic_load(&w->done)) {
        if (sigtimedwait(&set, NULL, &step) > 0) {
            FLOG_WARN("app", NULL, "second signal: exiting without finishing the drain");
            _exit(FERRY_EXIT_FORCED);
        }
        waited += 100;
        if (waited >= w->timeout_ms) {
            FLOG_ERROR("app", NULL, "drain did not finish within the shutdown timeout; exiting");
            _exit(FERRY_EXIT_FORCED);
        }
    }
    return NULL;
}

static void register_build_info(ferry_metrics *m)
{
    struct ferry_gauge *g = ferry_metrics_gauge(m, "ferry_build_info", "ferry's version; always 1.",
                                                "version=\"" FERRY_VERSION "\"");
    if (g)
        ferry_gauge_set(g, 1);
    ferry_metrics_add_collector(m, ferry_metrics_collect_process, NULL);
}

/* Adds each job's readiness to /readyz and lets it register its endpoints. */
static int register_jobs(struct app *a, char *errstr, size_t errstr_size)
{
    for (int i = 0; ferry_jobs[i]; i++) {
        const struct ferry_job *job = ferry_jobs[i];
        if (ferry_admin_add_check(a->admin, job->name, job->ready, a->jobs[i])) {
            snprintf(errstr, errstr_size,
                     "%s: cannot add its readiness check: /readyz runs at most %d checks",
                     job->name, FERRY_ADMIN_CHECKS_MAX);
            return -1;
        }
        if (job->http_register && job->http_register(a->jobs[i], a->httpd, errstr, errstr_size))
            return -1;
    }
    return 0;
}

static int start_http(struct app *a, char *errstr, size_t errstr_size)
{
    const struct ferry_server_config *s = &a->cfg->server;
    struct ferry_httpd_options opts = {s->listen, (int)s->threads, (int)s->max_connections,
                                       (int)(s->connection_timeout_ms / 1000)};
    char why[256] = "";

    a->httpd = ferry_httpd_new(&opts, why, sizeof(why));
    if (!a->httpd) {
        snprintf(errstr, errstr_size, "http server: %s", why);
        return -1;
    }
    if (s->tls.cert_file && s->tls.key_file &&
        ferry_httpd_set_tls(a->httpd, s->tls.cert_file, s->tls.key_file)) {
        snprintf(errstr, errstr_size, "out of memory for the TLS settings");
        return -1;
    }
    a->admin = ferry_admin_new(a->httpd, a->kafka, a->metrics);
    if (!a->admin) {
        snprintf(errstr, errstr_size, "out of memory for the health and metrics endpoints");
        return -1;
    }
    if (register_jobs(a, errstr, errstr_size) || ferry_httpd_start(a->httpd, errstr, errstr_size))
        return -1;
    FLOG_INFO("http", NULL, "listening on %s (port %d%s)", s->listen, ferry_httpd_port(a->httpd),
              s->tls.cert_file ? ", TLS" : "");
    return 0;
}

/* Builds every job, in list order. */
static int create_jobs(struct app *a, char *errstr, size_t errstr_size)
{
    for (int i = 0; ferry_jobs[i]; i++) {
        struct ferry_job_context ctx = {a->cfg, ferry_config_job(a->cfg, ferry_jobs[i]), a->kafka,
                                        a->metrics, a->auth};
        a->jobs[i] = ferry_jobs[i]->create(&ctx, errstr, errstr_size);
        if (!a->jobs[i])
            return -1;
    }
    return 0;
}

static int start_jobs(struct app *a, char *errstr, size_t errstr_size)
{
    for (int i = 0; ferry_jobs[i]; i++)
        if (ferry_jobs[i]->start && ferry_jobs[i]->start(a->jobs[i], errstr, errstr_size))
            return -1;
    return 0;
}

static int app_start(struct app *a, char *errstr, size_t errstr_size)
{
    a->metrics = ferry_metrics_new();
    if (!a->metrics) {
        snprintf(errstr, errstr_size, "out of memory for the metrics registry");
        return -1;
    }
    register_build_info(a->metrics);
    a->auth = ferry_auth_new();
    if (!a->auth) {
        snprintf(errstr, errstr_size, "out of memory for the API keys");
        return -1;
    }
    a->kafka = ferry_kafka_new(a->cfg, a->metrics, errstr, errstr_size);
    if (!a->kafka || create_jobs(a, errstr, errstr_size) || start_http(a, errstr, errstr_size))
        return -1;
    return start_jobs(a, errstr, errstr_size);
}

/* Stops everything in the reverse order of app_start. Safe on a half-started app. The server
 * takes no new requests first; each job then drains (ingest answers every request it
 * accepted, routes commit and close their consumers) while the server is still there to send
 * answers; the jobs are freed only after the producer's final flush, which may still deliver
 * reports of their records. */
static void app_stop(struct app *a)
{
    int n = 0;

    while (ferry_jobs[n])
        n++;
    if (a->httpd)
        ferry_httpd_quiesce(a->httpd);
    for (int i = n; i-- > 0;)
        if (a->jobs[i])
            ferry_jobs[i]->stop(a->jobs[i], a->cfg->server.shutdown_timeout_ms);
    ferry_httpd_destroy(a->httpd);
    ferry_admin_destroy(a->admin);
    ferry_kafka_destroy(a->kafka, (int)a->cfg->server.shutdown_timeout_ms);
    for (int i = n; i-- > 0;)
        ferry_jobs[i]->destroy(a->jobs[i]);
    ferry_auth_destroy(a->auth);
    ferry_metrics_destroy(a->metrics);
}

int ferry_app_run(const struct ferry_config *cfg)
{
    struct app a = {.cfg = cfg};
    struct watchdog w = {.timeout_ms = cfg->server.shutdown_timeout_ms};
    char errstr[512] = "";
    int sig, rc, code = FERRY_EXIT_OK;

    ferry_log_setup(cfg->log.level, cfg->log.format);
    if (app_start(&a, errstr, sizeof(errstr))) {
        FLOG_ERROR("app", NULL, "cannot start: %s", errstr);
        app_stop(&a);
        return FERRY_EXIT_FAILURE;
    }
    FLOG_INFO("app", NULL, "ferry %s started (config %s)", FERRY_VERSION, cfg->path);
    sig = ferry_app_wait_signal();
    FLOG_INFO("app", NULL, "%s received: draining (at most %lld ms)",
              sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)w.timeout_ms);
    rc = pthread_create(&w.thread, NULL, watchdog_main, &w);
    if (rc != 0) {
        FLOG_ERROR("app", NULL,
                   "cannot start the shutdown watchdog: %s; the drain has no time limit and a "
                   "second signal does not cut it short",
                   strerror(rc));
        code = FERRY_EXIT_FAILURE;
    }
    app_stop(&a);
    atomic_store(&w.done, 1);
    if (code == FERRY_EXIT_OK)
        pthread_join(w.thread, NULL);
    FLOG_INFO("app", NULL, "stopped");
    return code;
}
