/*
 * overview.c - GET / (the status page) and GET /status (its JSON), see overview.h.
 *
 * The page is a byte array generated from src/core/status_page.html by cmake/embed.cmake, so
 * the binary carries it and nothing is read from disk or fetched from elsewhere. Its
 * Content-Security-Policy allows only the page's own inline style and script and requests to
 * this origin.
 */
#include "core/overview.h"
#include "core/clock.h"
#include "core/json.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OVERVIEW_REASON_MAX 256

/* Generated at build time (cmake/embed.cmake). */
extern const unsigned char ferry_status_page[];
extern const size_t ferry_status_page_len;

struct part {
    const char *name;
    ferry_overview_part_fn fn;
    void *arg;
};

struct ferry_overview {
    ferry_kafka *kafka;
    ferry_admin *admin;
    int64_t started_ms;
    struct part parts[FERRY_OVERVIEW_PARTS_MAX];
    size_t nparts;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_page(ferry_http_req *req, void *arg)
{
    (void)arg;
    ferry_http_add_header(req, "Content-Security-Policy",
                          "default-src 'none'; style-src 'unsafe-inline'; "
                          "script-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    ferry_http_add_header(req, "Cache-Control", "no-cache");
    ferry_http_add_header(req, "X-Content-Type-Options", "nosniff");
    ferry_http_respond(req, 200, "text/html; charset=utf-8", ferry_status_page,
                       ferry_status_page_len);
}

/* version, time, uptime and readiness: the process-level fields. */
static int add_process(ferry_overview *o, struct ferry_buf *out)
{
    char why[OVERVIEW_REASON_MAX] = "";
    int ready = ferry_admin_ready(o->admin, why, sizeof(why));
    int64_t now = ferry_clock_ms();

    return ferry_buf_addf(out,
                          "{\"version\":\"" FERRY_VERSION "\",\"time_ms\":%lld,"
                          "\"uptime_ms\":%lld,\"ready\":%s,\"not_ready_reason\":",
                          (long long)wall_ms(), (long long)(now - o->started_ms),
                          ready ? "true" : "false") ||
           ferry_json_add_string(out, ready ? "" : why, ready ? 0 : strlen(why));
}

static int add_parts(ferry_overview *o, struct ferry_buf *out)
{
    for (size_t i = 0; i < o->nparts; i++) {
        if (ferry_buf_addc(out, ',') ||
            ferry_json_add_string(out, o->parts[i].name, strlen(o->parts[i].name)) ||
            ferry_buf_addc(out, ':') || o->parts[i].fn(o->parts[i].arg, out))
            return -1;
    }
    return 0;
}

static void on_status(ferry_http_req *req, void *arg)
{
    ferry_overview *o = arg;
    struct ferry_buf out;

    ferry_buf_init(&out, FERRY_OVERVIEW_BODY_MAX);
    if (add_process(o, &out) || ferry_buf_adds(&out, ",\"kafka\":{\"brokers\":") ||
        ferry_kafka_status_brokers(o->kafka, &out) || ferry_buf_addc(&out, '}') ||
        add_parts(o, &out) || ferry_buf_adds(&out, "}\n")) {
        ferry_http_respond_error(req, 500, 0, "status exceeds %d bytes", FERRY_OVERVIEW_BODY_MAX);
    } else {
        ferry_http_add_header(req, "Cache-Control", "no-store");
        ferry_http_respond(req, 200, "application/json", out.data, out.len);
    }
    ferry_buf_release(&out);
}

ferry_overview *ferry_overview_new(ferry_httpd *h, ferry_kafka *kafka, ferry_admin *admin)
{
    ferry_overview *o = calloc(1, sizeof(*o));

    if (!o)
        return NULL;
    o->kafka = kafka;
    o->admin = admin;
    o->started_ms = ferry_clock_ms();
    if (ferry_httpd_route(h, "GET", "/", FERRY_HTTP_EXACT, 0, on_page, o) ||
        ferry_httpd_route(h, "GET", "/status", FERRY_HTTP_EXACT, 0, on_status, o)) {
        free(o);
        return NULL;
    }
    return o;
}

int ferry_overview_add_part(ferry_overview *o, const char *name, ferry_overview_part_fn fn,
                            void *arg)
{
    if (o->nparts == FERRY_OVERVIEW_PARTS_MAX)
        return -1;
    o->parts[o->nparts].name = name;
    o->parts[o->nparts].fn = fn;
    o->parts[o->nparts].arg = arg;
    o->nparts++;
    return 0;
}

void ferry_overview_destroy(ferry_overview *o)
{
    free(o);
}
