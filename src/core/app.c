/*
 * app.c - start-up, signal handling and graceful shutdown of `ferry run`.
 *
 * Signals are blocked in every thread and taken synchronously with sigwait() by the main
 * thread, so no code runs in signal context. SIGHUP stops like SIGTERM and SIGINT: ferry has no
 * config to reload, and a terminal that goes away should not kill it mid-drain. After the
 * first stop signal a watchdog thread
 * waits for a second signal or for server.shutdown_timeout and then exits the process at once
 * (exit code 3); otherwise the main thread drains and releases everything and exits 0.
 *
 * Under a service manager ($NOTIFY_SOCKET, systemd's Type=notify), the main thread waits for
 * the signal in steps instead: it sends READY=1 once /readyz would answer ready, WATCHDOG=1
 * every half $WATCHDOG_USEC (the shutdown watchdog goes on sending it while ferry drains), and
 * STOPPING=1 when the drain begins.
 */
#include "core/app.h"
#include "core/admin.h"
#include "core/overview.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/httpd.h"
#include "core/job.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notify.h"

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
    ferry_overview *overview; /* GET / and GET /status */
    ferry_auth *auth;
    ferry_notify *notify;
    void *jobs[FERRY_JOBS_MAX]; /* indexed as ferry_jobs; NULL until built */
};

struct watchdog {
    pthread_t thread;
    int64_t timeout_ms;
    ferry_notify *notify; /* WATCHDOG=1 goes on during the drain */
    atomic_int done;
};

#define APP_STEP_MS 100 /* how often the main thread looks up from its wait, under systemd */

sigset_t ferry_app_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
}

const char *ferry_app_signal_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGHUP:
        return "SIGHUP";
    default:
        return "SIGTERM";
    }
}

void ferry_app_block_signals(void)
{
    sigset_t set = ferry_app_stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int ferry_app_wait_signal(void)
{
    sigset_t set = ferry_app_stop_signals();
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

/* Waits in short steps so that it notices when the drain finished. */
static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    sigset_t set = ferry_app_stop_signals();
    struct timespec step = {0, APP_STEP_MS * 1000000};
    int64_t started = ferry_clock_ms();
    int64_t dog_ms = ferry_notify_watchdog_interval_ms(w->notify), next_dog = 0;

    while (!atomic_load(&w->done)) {
        if (dog_ms && ferry_clock_ms() >= next_dog) {
            ferry_notify_send(w->notify, "WATCHDOG=1");
            next_dog = ferry_clock_ms() + dog_ms;
        }
        if (sigtimedwait(&set, NULL, &step) > 0) {
            FLOG_WARN("app", NULL, "second signal: exiting without finishing the drain");
            _exit(FERRY_EXIT_FORCED);
        }
        if (atomic_load(&w->done))
            break; /* finished during the wait: not late */
        if (ferry_clock_ms() - started >= w->timeout_ms) {
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
        if (job->status &&
            ferry_overview_add_part(a->overview, job->name, job->status, a->jobs[i])) {
            snprintf(errstr, errstr_size, "%s: /status shows at most %d jobs", job->name,
                     FERRY_OVERVIEW_PARTS_MAX);
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
    struct ferry_httpd_options opts = {
        .listen = s->listen,
        .threads = (int)s->threads,
        .max_connections = (int)s->max_connections,
        .connection_timeout_s = (int)(s->connection_timeout_ms / 1000),
        .connection_memory = (size_t)s->connection_memory,
        .max_body_memory = (size_t)s->max_body_memory,
    };
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
    a->overview = ferry_overview_new(a->httpd, a->kafka, a->admin);
    if (!a->overview) {
        snprintf(errstr, errstr_size, "out of memory for the status page");
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
/* What is left of the shutdown timeout at deadline_ms: the stages of the stop share it, as the
 * watchdog that ends a drain past it counts it once for all of them. */
static int64_t time_left_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - ferry_clock_ms();
    return left > 0 ? left : 0;
}

static void app_stop(struct app *a)
{
    int64_t deadline = ferry_clock_ms() + a->cfg->server.shutdown_timeout_ms;
    int n = 0;

    while (ferry_jobs[n])
        n++;
    if (a->httpd)
        ferry_httpd_quiesce(a->httpd);
    for (int i = n; i-- > 0;)
        if (a->jobs[i] && ferry_jobs[i]->quiesce)
            ferry_jobs[i]->quiesce(a->jobs[i]);
    for (int i = n; i-- > 0;)
        if (a->jobs[i])
            ferry_jobs[i]->stop(a->jobs[i], time_left_ms(deadline));
    ferry_httpd_destroy(a->httpd);
    ferry_overview_destroy(a->overview);
    ferry_admin_destroy(a->admin);
    ferry_kafka_destroy(a->kafka, (int)time_left_ms(deadline));
    for (int i = n; i-- > 0;)
        ferry_jobs[i]->destroy(a->jobs[i]);
    ferry_auth_destroy(a->auth);
    ferry_metrics_destroy(a->metrics);
}

/* Tells the service manager whether ferry is ready, once, and what keeps it from it. */
static void notify_readiness(struct app *a, int *ready, char *last_why, size_t why_size)
{
    char why[512], status[FERRY_NOTIFY_MESSAGE_MAX];

    if (*ready)
        return;
    if (ferry_admin_ready(a->admin, why, sizeof(why))) {
        *ready = 1;
        ferry_notify_send(a->notify, "READY=1\nSTATUS=ready");
        return;
    }
    if (strcmp(why, last_why) == 0)
        return;
    snprintf(last_why, why_size, "%s", why);
    for (char *c = why; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' '; /* a line of its own would be another assignment, READY=1 say */
    snprintf(status, sizeof(status), "STATUS=starting: %s", why);
    ferry_notify_send(a->notify, status);
}

/* Waits for a stop signal and returns it; under a service manager, sends READY=1 and
 * WATCHDOG=1 meanwhile. */
static int wait_for_stop(struct app *a)
{
    sigset_t set = ferry_app_stop_signals();
    struct timespec step = {0, APP_STEP_MS * 1000000};
    int64_t dog_ms = ferry_notify_watchdog_interval_ms(a->notify), next_dog = 0;
    char last_why[512] = "";
    int ready = 0, sig;

    if (!ferry_notify_enabled(a->notify))
        return ferry_app_wait_signal();
    for (;;) {
        notify_readiness(a, &ready, last_why, sizeof(last_why));
        if (dog_ms && ferry_clock_ms() >= next_dog) {
            ferry_notify_send(a->notify, "WATCHDOG=1");
            next_dog = ferry_clock_ms() + dog_ms;
        }
        sig = sigtimedwait(&set, NULL, &step);
        if (sig > 0)
            return sig;
    }
}

int ferry_app_run(const struct ferry_config *cfg)
{
    struct app a = {.cfg = cfg};
    struct watchdog w = {.timeout_ms = cfg->server.shutdown_timeout_ms};
    char errstr[512] = "";
    int sig, rc, code = FERRY_EXIT_OK;

    ferry_log_setup(cfg->log.level, cfg->log.format);
    a.notify = ferry_notify_new(errstr, sizeof(errstr));
    if (!a.notify) {
        FLOG_ERROR("app", NULL, "cannot start: %s", errstr);
        return FERRY_EXIT_FAILURE;
    }
    w.notify = a.notify;
    if (app_start(&a, errstr, sizeof(errstr))) {
        FLOG_ERROR("app", NULL, "cannot start: %s", errstr);
        app_stop(&a);
        ferry_notify_destroy(a.notify);
        return FERRY_EXIT_FAILURE;
    }
    FLOG_INFO("app", NULL, "ferry %s started (config %s)", FERRY_VERSION, cfg->path);
    sig = wait_for_stop(&a);
    ferry_notify_send(a.notify, "STOPPING=1\nSTATUS=draining");
    FLOG_INFO("app", NULL, "%s received: draining (at most %lld ms)", ferry_app_signal_name(sig),
              (long long)w.timeout_ms);
    rc = pthread_create(&w.thread, NULL, watchdog_main, &w);
    if (rc != 0) {
        FLOG_ERROR("app", NULL,
                   "cannot start the shutdown watchdog: %s; the drain has no time limit and a "
                   "second signal does not cut it short",
                   strerror(rc));
        code = FERRY_EXIT_FAILURE;
    }
    if (a.kafka && ferry_kafka_failed(a.kafka, errstr, sizeof(errstr)) && code == FERRY_EXIT_OK)
        code = FERRY_EXIT_FAILURE; /* so that a supervisor starts it again */
    app_stop(&a);
    atomic_store(&w.done, 1);
    if (rc == 0)
        pthread_join(w.thread, NULL);
    FLOG_INFO("app", NULL, "stopped");
    ferry_notify_destroy(a.notify);
    return code;
}
