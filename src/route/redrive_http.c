/*
 * redrive_http.c - the admin endpoint `POST /routes/{name}/redrive` (see redrive_http.h).
 *
 * The handler (an HTTP server thread) checks the key, the route and the body, then starts a
 * thread for the run and suspends the request; the thread answers it when the run ends. The
 * main thread's stop sets a flag the runs wait on, and joins them.
 */
#include "route/redrive_http.h"

#include "core/clock.h"
#include "route/redrive.h"
#include "route/route_config.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "/routes/"
#define SUFFIX "/redrive"
#define ERROR_MAX 1024

struct run {
    ferry_redrive_http *rh;
    ferry_http_req *req;
    const struct ferry_route_config *route;
    struct ferry_redrive_options o;
    json_t *body; /* keeps the strings o points at */
    pthread_t thread;
    int started, done;
};

struct ferry_redrive_http {
    const struct ferry_config *cfg;
    const struct ferry_routes_config *routes;
    ferry_kafka *kafka;
    const ferry_auth *auth;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    struct run *runs[FERRY_REDRIVE_HTTP_RUNS_MAX];
};

ferry_redrive_http *ferry_redrive_http_new(const struct ferry_config *cfg,
                                           const struct ferry_routes_config *routes,
                                           ferry_kafka *kafka, const ferry_auth *auth)
{
    ferry_redrive_http *rh = calloc(1, sizeof(*rh));

    if (!rh)
        return NULL;
    rh->cfg = cfg;
    rh->routes = routes;
    rh->kafka = kafka;
    rh->auth = auth;
    pthread_mutex_init(&rh->lock, NULL);
    ferry_clock_cond_init(&rh->cond);
    return rh;
}

/* ---- the run's thread ---- */

/* The run's stop request: the main thread's stop, within ms (o.stop). */
static int stop_within(void *arg, int64_t ms)
{
    ferry_redrive_http *rh = arg;
    struct timespec until = ferry_clock_timespec(ferry_clock_ms() + ms);
    int stopping;

    pthread_mutex_lock(&rh->lock);
    while (!rh->stopping && ms > 0 && pthread_cond_timedwait(&rh->cond, &rh->lock, &until) == 0)
        ;
    stopping = rh->stopping;
    pthread_mutex_unlock(&rh->lock);
    return stopping;
}

/* The lines the run printed, as a JSON array of at most FERRY_REDRIVE_HTTP_DETAILS_MAX. */
static json_t *details(const char *text, size_t len)
{
    json_t *a = json_array();
    const char *end = text + len;

    while (a && text < end && json_array_size(a) < FERRY_REDRIVE_HTTP_DETAILS_MAX) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t n = nl ? (size_t)(nl - text) : (size_t)(end - text);
        json_array_append_new(a, json_stringn(text, n));
        text += n + 1;
    }
    return a;
}

static void answer(struct run *run, int rc, const struct ferry_redrive_summary *s,
                   const char *printed, size_t printed_len, const char *errstr)
{
    json_t *j;
    char *text;

    if (rc == FERRY_REDRIVE_EUSAGE || rc == FERRY_REDRIVE_EBUSY) {
        ferry_http_respond_error(run->req, 409, 0, "%s", errstr);
        return;
    }
    if (rc != FERRY_REDRIVE_OK) {
        ferry_http_respond_error(run->req, 502, 0, "%s", errstr);
        return;
    }
    j = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:o*, s:I}", "route",
                  run->route->name, "dry_run", run->o.dry_run, "read", (json_int_t)s->read,
                  "redriven", (json_int_t)s->redriven, "skipped_by_filter", (json_int_t)s->skipped,
                  "failed_again", (json_int_t)s->failed_again, "interrupted", s->interrupted,
                  "resumed", s->resumed, "continued", s->continued, "details",
                  details(printed ? printed : "", printed ? printed_len : 0), "details_omitted",
                  (json_int_t)s->unprinted);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        ferry_http_respond(run->req, 200, "application/json", text, strlen(text));
    else
        ferry_http_respond_error(run->req, 500, 0, "out of memory for the answer");
    free(text);
    json_decref(j);
}

static void *run_main(void *arg)
{
    struct run *run = arg;
    struct ferry_redrive_summary sum;
    char errstr[ERROR_MAX] = "", *printed = NULL;
    size_t printed_len = 0;
    FILE *out = open_memstream(&printed, &printed_len);
    int rc = FERRY_REDRIVE_EFAIL;

    if (out)
        rc = ferry_redrive_run(run->rh->cfg, &run->o, &sum, out, errstr, sizeof(errstr));
    else
        snprintf(errstr, sizeof(errstr), "out of memory");
    if (out)
        fclose(out);
    answer(run, rc, &sum, printed, printed_len, errstr);
    free(printed);
    pthread_mutex_lock(&run->rh->lock);
    run->done = 1;
    pthread_mutex_unlock(&run->rh->lock);
    return NULL;
}

static void run_free(struct run *run)
{
    if (run->started)
        pthread_join(run->thread, NULL);
    json_decref(run->body);
    free(run);
}

/* ---- the request ---- */

/* Fills bounds from a JSON string, integer, or array of them. Returns 0, or -1 with errstr. */
static int parse_bounds(json_t *v, const char *name, struct ferry_redrive_bound *b, size_t *n,
                        char *errstr, size_t errstr_size)
{
    size_t i;
    json_t *item, *one;
    char text[64], err[256];
    int rc;

    if (!json_is_array(v)) {
        one = json_array();
        json_array_append(one, v);
        rc = parse_bounds(one, name, b, n, errstr, errstr_size);
        json_decref(one);
        return rc;
    }
    json_array_foreach(v, i, item)
    {
        if (json_is_integer(item))
            snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(item));
        else if (json_is_string(item))
            snprintf(text, sizeof(text), "%s", json_string_value(item));
        else
            text[0] = '\0';
        if (*n == FERRY_REDRIVE_BOUNDS_MAX ||
            ferry_redrive_bound_parse(text, &b[*n], err, sizeof(err))) {
            snprintf(errstr, errstr_size, "%s: expected OFFSET or \"PARTITION:OFFSET\" values",
                     name);
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static int parse_statuses(json_t *v, struct ferry_redrive_filter *f, char *errstr,
                          size_t errstr_size)
{
    size_t i;
    json_t *item, *one;
    char text[32], err[256];
    int rc;

    if (!json_is_array(v)) {
        one = json_array();
        json_array_append(one, v);
        rc = parse_statuses(one, f, errstr, errstr_size);
        json_decref(one);
        return rc;
    }
    json_array_foreach(v, i, item)
    {
        snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT,
                 json_is_integer(item) ? json_integer_value(item) : 0);
        if (f->nstatuses == FERRY_REDRIVE_STATUSES_MAX ||
            ferry_redrive_status_parse(text, &f->statuses[f->nstatuses], err, sizeof(err))) {
            snprintf(errstr, errstr_size, "status: expected HTTP status codes from 100 to 599");
            return -1;
        }
        f->nstatuses++;
    }
    return 0;
}

/* One field of the body. Returns 0, or -1 with errstr. */
static int parse_field(struct run *run, const char *key, json_t *v, char *errstr,
                       size_t errstr_size)
{
    struct ferry_redrive_filter *f = &run->o.filter;
    char err[256];

    if (strcmp(key, "from") == 0)
        return parse_bounds(v, key, f->from, &f->nfrom, errstr, errstr_size);
    if (strcmp(key, "to") == 0)
        return parse_bounds(v, key, f->to, &f->nto, errstr, errstr_size);
    if (strcmp(key, "status") == 0)
        return parse_statuses(v, f, errstr, errstr_size);
    if ((strcmp(key, "dry_run") == 0 || strcmp(key, "restart") == 0) && json_is_boolean(v)) {
        *(key[0] == 'd' ? &run->o.dry_run : &run->o.restart) = json_is_true(v);
        return 0;
    }
    if (strcmp(key, "since") == 0 && json_is_string(v)) {
        f->since_text = json_string_value(v);
        if (ferry_redrive_time_parse(f->since_text, (int64_t)time(NULL) * 1000, &f->since_ms, err,
                                     sizeof(err)) == 0)
            return 0;
        snprintf(errstr, errstr_size, "since: %s", err);
        return -1;
    }
    snprintf(errstr, errstr_size,
             "'%s': unknown field or wrong type (from, to, since, status, dry_run, restart)", key);
    return -1;
}

static int parse_body(struct run *run, ferry_http_req *req, char *errstr, size_t errstr_size)
{
    size_t len;
    const char *body = ferry_http_req_body(req, &len);
    const char *key;
    json_t *v;

    run->body = len ? json_loadb(body, len, 0, NULL) : json_object();
    if (!json_is_object(run->body)) {
        snprintf(errstr, errstr_size, "the body must be a JSON object");
        return -1;
    }
    json_object_foreach(run->body, key, v)
    {
        if (parse_field(run, key, v, errstr, errstr_size))
            return -1;
    }
    return ferry_redrive_filter_check(&run->o.filter, "", errstr, errstr_size);
}

/* The route named by the path, or NULL after answering 404. */
static const struct ferry_route_config *route_of(ferry_redrive_http *rh, ferry_http_req *req)
{
    const char *path = ferry_http_req_raw_path(req) + strlen(PREFIX);
    size_t len = strlen(path), slen = strlen(SUFFIX);
    char name[256];
    const struct ferry_route_config *r;

    if (len > slen && len - slen < sizeof(name) && strcmp(path + len - slen, SUFFIX) == 0) {
        memcpy(name, path, len - slen);
        name[len - slen] = '\0';
        r = ferry_redrive_find_route(rh->routes, name);
        if (r)
            return r;
    }
    ferry_http_respond_error(req, 404, 0, "no such route");
    return NULL;
}

/* The request's API key: -1 when auth is off; else its index, or -2 after answering 401. */
static int authenticate(ferry_redrive_http *rh, ferry_http_req *req)
{
    int key;

    if (!rh->auth || !ferry_auth_enabled(rh->auth))
        return -1;
    key = ferry_auth_check(rh->auth, ferry_http_req_header(req, "Authorization"));
    if (key >= 0)
        return key;
    ferry_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"ferry\"");
    ferry_http_respond_error(req, 401, 0,
                             "a valid API key is required (Authorization: Bearer <key>)");
    return -2;
}

/* Nonzero when key (from authenticate) may redrive route r: it may write every topic the
 * route consumes. Answers 403 otherwise. */
static int may_redrive(ferry_redrive_http *rh, ferry_http_req *req, int key,
                       const struct ferry_route_config *r)
{
    if (key == -1)
        return 1;
    for (size_t i = 0; i < r->topics.count; i++)
        if (!ferry_auth_allows(rh->auth, key, FERRY_AUTH_TOPICS, r->topics.items[i])) {
            ferry_http_respond_error(req, 403, 0,
                                     "API key '%s' may not redrive route '%s': it may not write "
                                     "its topic '%s'",
                                     ferry_auth_name(rh->auth, key), r->name, r->topics.items[i]);
            return 0;
        }
    return 1;
}

/* Takes the finished runs out of their slots (into finished, *n of them) and a slot for run.
 * Under rh->lock. Returns 0, or an HTTP status. */
static int take_slot(ferry_redrive_http *rh, struct run *run, struct run **finished, size_t *n)
{
    int status = 503, slot = -1;

    for (int i = 0; i < FERRY_REDRIVE_HTTP_RUNS_MAX; i++) {
        struct run *r = rh->runs[i];
        if (r && r->done) {
            finished[(*n)++] = r; /* its thread has answered and is ending */
            rh->runs[i] = r = NULL;
        }
        if (r && r->route == run->route)
            status = 409;
        if (!r && slot < 0)
            slot = i;
    }
    if (status != 409 && slot >= 0 && !rh->stopping) {
        rh->runs[slot] = run;
        status = 0;
    }
    return status;
}

/* Starts run's thread for req, or answers why not (then returns -1 and run is the caller's).
 * The slot is taken and the thread started under one hold of the lock, so that two requests
 * for one route cannot both start, and the stop finds every run either absent or started. */
static int start_run(ferry_redrive_http *rh, struct run *run, ferry_http_req *req)
{
    struct run *finished[FERRY_REDRIVE_HTTP_RUNS_MAX];
    size_t nfinished = 0;
    int status, started = 0;

    pthread_mutex_lock(&rh->lock);
    status = take_slot(rh, run, finished, &nfinished);
    if (status == 0) {
        ferry_http_suspend(req);
        run->req = req;
        started = pthread_create(&run->thread, NULL, run_main, run) == 0;
        run->started = started;
        run->done = !started;
    }
    pthread_mutex_unlock(&rh->lock);
    /* From here a started run is its thread's and the slots': another request may free it as
     * soon as it is done. */
    for (size_t i = 0; i < nfinished; i++)
        run_free(finished[i]); /* outside the lock, which their threads take last */
    if (status == 409)
        ferry_http_respond_error(req, 409, 0, "a redrive of route '%s' is under way",
                                 run->route->name);
    else if (status)
        ferry_http_respond_error(req, 503, 0, "too many redrives under way, or stopping");
    else if (!started)
        ferry_http_respond_error(req, 500, 0, "cannot start a thread for the redrive");
    return status ? -1 : 0;
}

static void handle(ferry_http_req *req, void *arg)
{
    ferry_redrive_http *rh = arg;
    int key = authenticate(rh, req);
    const struct ferry_route_config *r = key == -2 ? NULL : route_of(rh, req);
    char errstr[ERROR_MAX];
    struct run *run;

    if (!r || !may_redrive(rh, req, key, r))
        return;
    if (!r->dead_letter.topic) {
        ferry_http_respond_error(req, 400, 0, "route '%s' has no dead_letter.topic to redrive from",
                                 r->name);
        return;
    }
    run = calloc(1, sizeof(*run));
    if (!run) {
        ferry_http_respond_error(req, 500, 0, "out of memory");
        return;
    }
    run->rh = rh;
    run->route = r;
    run->o.route = r->name;
    run->o.routes = rh->routes;
    run->o.kafka = rh->kafka;
    run->o.stop = stop_within;
    run->o.stop_arg = rh;
    run->o.max_lines = FERRY_REDRIVE_HTTP_DETAILS_MAX; /* a run's lines are kept in memory */
    ferry_redrive_filter_init(&run->o.filter);
    if (parse_body(run, req, errstr, sizeof(errstr))) {
        ferry_http_respond_error(req, 400, 0, "%s", errstr);
        run_free(run);
    } else if (start_run(rh, run, req)) {
        run_free(run);
    }
}

int ferry_redrive_http_register(ferry_redrive_http *rh, ferry_httpd *h, char *errstr,
                                size_t errstr_size)
{
    if (ferry_httpd_route(h, "POST", PREFIX, FERRY_HTTP_PREFIX, FERRY_REDRIVE_HTTP_BODY_MAX, handle,
                          rh) == 0)
        return 0;
    snprintf(errstr, errstr_size, "cannot register POST %s{name}%s", PREFIX, SUFFIX);
    return -1;
}

void ferry_redrive_http_stop(ferry_redrive_http *rh)
{
    if (!rh)
        return;
    struct run *runs[FERRY_REDRIVE_HTTP_RUNS_MAX];

    pthread_mutex_lock(&rh->lock);
    rh->stopping = 1;
    pthread_cond_broadcast(&rh->cond);
    memcpy(runs, rh->runs, sizeof(runs));
    memset(rh->runs, 0, sizeof(rh->runs));
    pthread_mutex_unlock(&rh->lock);
    for (int i = 0; i < FERRY_REDRIVE_HTTP_RUNS_MAX; i++)
        if (runs[i])
            run_free(runs[i]); /* joins it: its run sees `stopping` and ends */
}

void ferry_redrive_http_destroy(ferry_redrive_http *rh)
{
    if (!rh)
        return;
    ferry_redrive_http_stop(rh);
    pthread_mutex_destroy(&rh->lock);
    pthread_cond_destroy(&rh->cond);
    free(rh);
}
