/*
 * admin.c - /healthz, /readyz and /metrics (see admin.h).
 */
#include "core/admin.h"
#include "core/buf.h"
#include "core/json.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define ADMIN_REASON_MAX 256
#define METRICS_RENDER_MAX (16 * 1024 * 1024)
#define READYZ_BODY_MAX (16 * 1024)

struct check {
    const char *name;
    ferry_admin_check_fn fn;
    void *arg;
};

struct ferry_admin {
    ferry_metrics *metrics;
    struct check checks[FERRY_ADMIN_CHECKS_MAX];
    size_t nchecks;
};

static void on_healthz(ferry_http_req *req, void *arg)
{
    static const char body[] = "{\"status\":\"ok\"}\n";
    (void)arg;
    ferry_http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static int kafka_check(void *arg, char *why, size_t why_size)
{
    char failed[512];

    if (ferry_kafka_failed(arg, failed, sizeof(failed))) {
        snprintf(why, why_size, "a Kafka client failed for good: %s", failed);
        return 0;
    }
    if (ferry_kafka_ready(arg))
        return 1;
    snprintf(why, why_size, "no Kafka broker answered at %s", ferry_kafka_bootstrap(arg));
    return 0;
}

int ferry_admin_ready(ferry_admin *a, char *why, size_t why_size)
{
    char reason[ADMIN_REASON_MAX];

    for (size_t i = 0; i < a->nchecks; i++) {
        reason[0] = '\0';
        if (!a->checks[i].fn(a->checks[i].arg, reason, sizeof(reason))) {
            snprintf(why, why_size, "%s: %s", a->checks[i].name, reason);
            return 0;
        }
    }
    return 1;
}

static void on_readyz(ferry_http_req *req, void *arg)
{
    ferry_admin *a = arg;
    struct ferry_buf body;
    char why[ADMIN_REASON_MAX];
    int ready = 1;

    ferry_buf_init(&body, READYZ_BODY_MAX);
    ferry_buf_adds(&body, "{\"checks\":{");
    for (size_t i = 0; i < a->nchecks; i++) {
        int ok;
        why[0] = '\0';
        ok = a->checks[i].fn(a->checks[i].arg, why, sizeof(why));
        ready = ready && ok;
        /* reasons may quote config text (kafka.brokers), so both sides are escaped */
        if (i)
            ferry_buf_addc(&body, ',');
        ferry_json_add_string(&body, a->checks[i].name, strlen(a->checks[i].name));
        ferry_buf_addc(&body, ':');
        if (ok && !why[0]) /* a ready check may still say something ("ok; ...") */
            snprintf(why, sizeof(why), "ok");
        ferry_json_add_string(&body, why, strlen(why));
    }
    ferry_buf_addf(&body, "},\"status\":\"%s\"}\n", ready ? "ready" : "not ready");
    ferry_http_respond(req, ready ? 200 : 503, "application/json", body.data, body.len);
    ferry_buf_release(&body);
}

static void on_metrics(ferry_http_req *req, void *arg)
{
    ferry_admin *a = arg;
    struct ferry_buf out;

    ferry_buf_init(&out, METRICS_RENDER_MAX);
    if (ferry_metrics_render(a->metrics, &out))
        ferry_http_respond_error(req, 500, 0, "metrics exceed %d bytes", METRICS_RENDER_MAX);
    else
        ferry_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    ferry_buf_release(&out);
}

ferry_admin *ferry_admin_new(ferry_httpd *h, ferry_kafka *kafka, ferry_metrics *metrics)
{
    ferry_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->metrics = metrics;
    if (ferry_httpd_route(h, "GET", "/healthz", FERRY_HTTP_EXACT, 0, on_healthz, a) ||
        ferry_httpd_route(h, "GET", "/readyz", FERRY_HTTP_EXACT, 0, on_readyz, a) ||
        ferry_httpd_route(h, "GET", "/metrics", FERRY_HTTP_EXACT, 0, on_metrics, a) ||
        ferry_admin_add_check(a, "kafka", kafka_check, kafka)) {
        free(a);
        return NULL;
    }
    return a;
}

int ferry_admin_add_check(ferry_admin *a, const char *name, ferry_admin_check_fn fn, void *arg)
{
    if (a->nchecks == FERRY_ADMIN_CHECKS_MAX)
        return -1;
    a->checks[a->nchecks].name = name;
    a->checks[a->nchecks].fn = fn;
    a->checks[a->nchecks].arg = arg;
    a->nchecks++;
    return 0;
}

void ferry_admin_destroy(ferry_admin *a)
{
    free(a);
}
