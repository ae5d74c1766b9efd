/*
 * delivery.c - what a route does with the records the dispatcher hands out: has them built
 * into requests (request.c), sends those, and acts on each attempt as outcome.c decides:
 * finish the records, queue the request for a retry (Retry-After pausing the route), park its
 * records on the next retry topic (parking.c) or hand them to the dead-letter backlog
 * (deadletter_backlog.c). A route with a reply topic hands answered records to it first
 * (reply_topic.c), and finishes them when it gives them back.
 *
 * Everything here runs on the route's worker thread.
 */
#include "core/clock.h"
#include "core/log.h"
#include "route/grpc_call.h"
#include "route/grpc_config.h"
#include "route/route_int.h"
#include "route/smtp.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DELIVERY_REASON_MAX 512          /* why records are dead-lettered, as ferry.error */
#define DELIVERY_FAILURE_WINDOW_MS 10000 /* a failing target is summarized this often */
#define NS_PER_MS INT64_C(1000000)

/* ---- set-up ---- */

static int set_rules(struct route *r, const struct ferry_cfg_strings *list,
                     enum ferry_outcome outcome, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < list->count; i++)
        if (ferry_status_rules_set(r->rules, outcome, list->items[i], errstr, errstr_size))
            return -1;
    return 0;
}

static int make_rules(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_route_status_config *s = &r->cfg->on_status;

    r->rules = ferry_status_rules_new();
    if (!r->rules) {
        snprintf(errstr, errstr_size, "on_status: out of memory");
        return -1;
    }
    if (ferry_route_target_kind(r->cfg) == FERRY_TARGET_SMTP &&
        ferry_smtp_status_defaults(r->rules, errstr, errstr_size))
        return -1;
    if (ferry_route_target_kind(r->cfg) == FERRY_TARGET_GRPC) {
        r->grpc_rules = ferry_grpc_config_rules(&r->cfg->target.grpc, errstr, errstr_size);
        if (!r->grpc_rules)
            return -1;
        r->outcome.classify = ferry_grpc_rules_outcome;
        r->outcome.classify_rules = r->grpc_rules;
    }
    if (set_rules(r, &s->success, FERRY_OUTCOME_SUCCESS, errstr, errstr_size) ||
        set_rules(r, &s->retry, FERRY_OUTCOME_RETRY, errstr, errstr_size) ||
        set_rules(r, &s->dead_letter, FERRY_OUTCOME_DEAD_LETTER, errstr, errstr_size))
        return -1;
    return 0;
}

static void log_failures(void *arg, enum ferry_log_level level, const char *line)
{
    const struct route *r = arg;
    FERRY_LOG(level, "route", r->cfg->name, "%s", line);
}

/* The validator, when the route validates anything (the config checks passed already). */
static int make_validator(struct route *r, char *errstr, size_t errstr_size)
{
    return ferry_route_validator_new(r->cfg, &r->validator, errstr, errstr_size);
}

/* ---- the circuit breaker ---- */

static void on_breaker_change(void *arg, enum ferry_breaker_state from, enum ferry_breaker_state to,
                              const char *why)
{
    struct route *r = arg;

    atomic_store(&r->circuit, (int)to);
    ferry_gauge_set(r->m.circuit[from], 0);
    ferry_gauge_set(r->m.circuit[to], 1);
    ferry_counter_add(r->m.circuit_transitions[to], 1);
    if (to == FERRY_BREAKER_OPEN)
        FLOG_WARN("route", r->cfg->name,
                  "circuit open: %s; no requests and partitions paused for %.1f s", why,
                  (double)(ferry_breaker_open_until_ms(r->breaker) - ferry_clock_ms()) / 1000.0);
    else
        FLOG_INFO("route", r->cfg->name, "circuit %s: %s",
                  to == FERRY_BREAKER_CLOSED ? "closed" : "half-open", why);
}

static int make_breaker(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_route_breaker_config *c = &r->cfg->circuit_breaker;
    struct ferry_breaker_policy p = {
        c->failure_rate / 100.0, c->min_requests, c->window_ms, c->consecutive_failures, c->open_ms,
        c->max_open_ms,          c->probes};

    if (!c->enabled)
        return 0;
    r->breaker = ferry_breaker_new(&p, on_breaker_change, r);
    if (!r->breaker) {
        snprintf(errstr, errstr_size, "out of memory for its circuit breaker");
        return -1;
    }
    return 0;
}

int64_t route_breaker_blocked_until(struct route *r, int64_t now_ms)
{
    if (!r->breaker || ferry_breaker_may_start(r->breaker, now_ms))
        return 0;
    return ferry_breaker_open_until_ms(r->breaker);
}

int route_breaker_holding(const struct route *r)
{
    return r->breaker && ferry_breaker_state(r->breaker) == FERRY_BREAKER_OPEN;
}

void route_breaker_check_idle(struct route *r)
{
    if (r->breaker && !r->in_flight && !ferry_dispatch_records(r->dispatch) &&
        !ferry_heap_peek(&r->retries))
        ferry_breaker_idle(r->breaker);
}

/* The result of an attempt, told to the breaker: a failure is what on_status retries, or no
 * answer at all; an answer that dead-letters the record is the record's trouble. */
static int target_failed(const struct route *r, const struct ferry_http_call *call)
{
    return call->transport_error ||
           ferry_outcome_classify(&r->outcome, call->status) == FERRY_OUTCOME_RETRY;
}

/* Decided from the status's class, not from the outcome: without a dead-letter topic a 400 is
 * retried too, and it is still the record's trouble. */
static void tell_breaker(struct route *r, const struct ferry_request *req,
                         const struct ferry_http_call *call, int64_t now_ms)
{
    if (r->breaker)
        ferry_breaker_result(r->breaker, req->ticket, target_failed(r, call), now_ms);
}

/* ---- adaptive concurrency ---- */

static int make_adaptive(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_route_adaptive_config *c = &r->cfg->adaptive_concurrency;
    struct ferry_adaptive_policy p = {c->min, r->cfg->concurrency, c->decrease,
                                      c->latency_tolerance};

    if (!c->enabled)
        return 0;
    r->adaptive = ferry_adaptive_new(&p);
    if (!r->adaptive) {
        snprintf(errstr, errstr_size, "out of memory for its adaptive concurrency");
        return -1;
    }
    return 0;
}

size_t route_concurrency(const struct route *r)
{
    return r->adaptive ? (size_t)ferry_adaptive_limit(r->adaptive) : (size_t)r->cfg->concurrency;
}

/* An answer for adaptive concurrency: 429, 503 (gRPC: RESOURCE_EXHAUSTED, UNAVAILABLE) and
 * timeouts are the target pushing back; other transport errors (refused, reset) say nothing
 * about its capacity. */
static int is_grpc(const struct ferry_http_call *call)
{
    return call->protocol == &ferry_grpc_protocol;
}

/* The answers that say "too much": 429 and 503, or their gRPC twins. No SMTP reply does (503
 * there is "bad sequence of commands"): only an e-mail's timeout is push-back. */
static int says_overloaded(const struct ferry_http_call *call)
{
    if (call->protocol == &ferry_smtp_protocol)
        return 0;
    if (is_grpc(call))
        return call->status == FERRY_GRPC_RESOURCE_EXHAUSTED ||
               call->status == FERRY_GRPC_UNAVAILABLE;
    return call->status == 429 || call->status == 503;
}

static void tell_adaptive(struct route *r, const struct ferry_http_call *call, int64_t now_ms)
{
    int pushed_back = (!call->transport_error && says_overloaded(call)) ||
                      call->transport_error == CURLE_OPERATION_TIMEDOUT;

    if (!r->adaptive || (call->transport_error && !pushed_back))
        return;
    ferry_adaptive_result(r->adaptive, call->seconds, pushed_back, now_ms);
    ferry_gauge_set(r->m.concurrency_limit, ferry_adaptive_limit(r->adaptive));
}

int route_delivery_init(struct route *r, char *errstr, size_t errstr_size)
{
    const struct ferry_route_config *c = r->cfg;

    ferry_heap_init(&r->retries);
    r->failure_log = ferry_failure_log_new(DELIVERY_FAILURE_WINDOW_MS, log_failures, r);
    if (!r->failure_log) {
        snprintf(errstr, errstr_size, "out of memory for its failure log");
        return -1;
    }
    if (make_breaker(r, errstr, errstr_size) || make_adaptive(r, errstr, errstr_size))
        return -1;
    if (make_validator(r, errstr, errstr_size))
        return -1;
    r->requests = ferry_request_builder_new(c, errstr, errstr_size);
    if (!r->requests || make_rules(r, errstr, errstr_size))
        return -1;
    r->backoff.max_attempts = (int)c->retry.max_attempts;
    r->backoff.initial_ms = c->retry.initial_backoff_ms;
    r->backoff.max_ms = c->retry.max_backoff_ms;
    r->backoff.multiplier = c->retry.multiplier;
    r->outcome.rules = r->rules;
    r->outcome.retry = &r->backoff;
    r->outcome.dead_letter = c->dead_letter.topic != NULL;
    r->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    return 0;
}

void route_delivery_release(struct route *r)
{
    ferry_request_builder_destroy(r->requests);
    r->requests = NULL;
    ferry_status_rules_destroy(r->rules);
    r->rules = NULL;
    ferry_grpc_rules_destroy(r->grpc_rules);
    r->grpc_rules = NULL;
    ferry_validate_destroy(r->validator);
    r->validator = NULL;
    ferry_heap_release(&r->retries);
    ferry_failure_log_destroy(r->failure_log);
    r->failure_log = NULL;
    ferry_breaker_destroy(r->breaker);
    r->breaker = NULL;
    ferry_adaptive_destroy(r->adaptive);
    r->adaptive = NULL;
}

/* ---- dead letters ---- */

/* What call answered, for the reply topic; call is NULL when the record never went out. */
static struct ferry_reply_answer reply_answer(const struct ferry_http_call *call, const char *error,
                                              int attempts)
{
    struct ferry_reply_answer a = {0, error, attempts, NULL, 0, NULL, 0, -1, NULL};
    const struct ferry_grpc_status *st;

    if (!call || call->transport_error)
        return a;
    a.status = call->status;
    a.body = call->response.data;
    a.body_len = call->response.len;
    a.headers = call->kept.data;
    a.headers_len = call->kept.len;
    if (call->protocol == &ferry_grpc_protocol) {
        st = ferry_grpc_call_status(call->proto);
        a.status = ferry_grpc_call_http_status(call->proto);
        a.grpc_status = call->status;
        a.grpc_message = st->message;
    }
    return a;
}

/* A gRPC answer goes into its own headers: its status is a gRPC code, not an HTTP status. */
static void grpc_reason(const struct ferry_http_call *call, struct ferry_deadletter_reason *why)
{
    const struct ferry_grpc_status *st = ferry_grpc_call_status(call->proto);

    why->http_status = 0;
    why->grpc_status = call->status;
    why->grpc_message = st->message;
}

/* Gives up on one record: call is the last attempt (NULL when the record never went out). A
 * route without a dead-letter topic abandons the record instead: its watermark waits for it
 * and it is consumed again after a restart or rebalance, never finished undelivered. */
static void dead_letter_record(struct route *r, struct ferry_dispatch_rec *rec, const char *error,
                               const struct ferry_http_call *call, int attempts)
{
    struct ferry_deadletter_reason why = {error, 0, attempts, NULL, 0, 0, NULL};

    if (!r->dead_letters) {
        route_parking_done(r, rec);
        FLOG_ERROR_REPEATED("route", r->cfg->name,
                            "cannot send %s[%d]@%" PRId64 " and there is no dead-letter topic: %s; "
                            "its partition's watermark waits for it",
                            rec->view.topic, rec->view.partition, rec->view.offset, error);
        ferry_dispatch_abandon(r->dispatch, &rec, 1);
        return;
    }
    if (call && !call->transport_error) {
        why.http_status = call->status;
        why.response = call->response.data;
        why.response_len = call->response.len;
    }
    if (call && !call->transport_error && is_grpc(call))
        grpc_reason(call, &why);
    if (r->replies && r->cfg->reply.on == FERRY_REPLY_ON_ALL) {
        struct ferry_reply_answer a = reply_answer(call, error, attempts);
        ferry_reply_topic_add(r->replies, &rec, 1, &a); /* dead-lettered once replied */
        return;
    }
    ferry_deadletter_backlog_add(r->dead_letters, rec, &why);
}

void route_on_reply_done(void *arg, struct ferry_dispatch_rec *rec,
                         const struct ferry_reply_answer *a)
{
    struct route *r = arg;
    int grpc = a->grpc_status >= 0; /* a gRPC answer: its status is a gRPC code */
    struct ferry_deadletter_reason why = {a->error,
                                          grpc ? 0 : a->status,
                                          a->attempts,
                                          a->body,
                                          a->body_len,
                                          grpc ? a->grpc_status : 0,
                                          grpc ? (a->grpc_message ? a->grpc_message : "") : NULL};

    if (a->error) {
        ferry_deadletter_backlog_add(r->dead_letters, rec, &why);
        return;
    }
    route_parking_done(r, rec); /* only now may its key's later records go */
    ferry_dispatch_finish(r->dispatch, &rec, 1);
}

/* The target accepted req: its records are finished once their replies are stored. */
static void reply_request(struct route *r, struct ferry_request *req)
{
    struct ferry_reply_answer a = reply_answer(&req->call, NULL, req->attempts);

    ferry_reply_topic_add(r->replies, req->recs, req->n, &a);
}

/* A record the request builder could not fit into a request (ferry_request_reject_fn). */
static void reject_record(void *arg, struct ferry_dispatch_rec *rec, const char *why)
{
    dead_letter_record(arg, rec, why, NULL, 0);
}

void route_collect_dead_letters(struct route *r)
{
    if (r->replies)
        ferry_reply_topic_collect(r->replies);
    if (r->dead_letters)
        ferry_deadletter_backlog_collect(r->dead_letters);
}

int64_t route_next_dead_letter_ms(const struct route *r)
{
    int64_t t = r->dead_letters ? ferry_deadletter_backlog_retry_ms(r->dead_letters) : INT64_MAX;
    int64_t replies = r->replies ? ferry_reply_topic_retry_ms(r->replies) : INT64_MAX;

    return replies < t ? replies : t;
}

/* ---- rate limits ---- */

/* Ends a wait for the rate limits, adding it to the route's figures. */
static void end_limit_wait(struct route *r, int64_t now_ms)
{
    if (!r->limited_since_ms)
        return;
    atomic_fetch_add(&r->limited_ms, (uint_fast64_t)(now_ms - r->limited_since_ms));
    r->limited_since_ms = 0;
}

/* Work is ready but the rate limits hold it back: from now on the route is waiting. */
static void begin_limit_wait(struct route *r, int64_t now_ms)
{
    if (r->limited_since_ms)
        return;
    r->limited_since_ms = now_ms;
    ferry_counter_add(r->m.rate_limit_waits, 1);
}

/* Nonzero when every rate limit lets a request start at now_ms. Otherwise sets
 * limited_until_ms, when the loop looks again: a shared limiter may have been taken by
 * another route by then, and the route then waits once more. */
static int limits_allow(struct route *r, int64_t now_ms)
{
    int64_t ready = INT64_MIN;

    for (size_t i = 0; i < r->nlimits; i++) {
        int64_t t = ferry_ratelimit_ready_ns(r->limits[i]);
        if (t > ready)
            ready = t;
    }
    if (ready <= now_ms * NS_PER_MS)
        return 1;
    r->limited_until_ms = ready / NS_PER_MS + (ready % NS_PER_MS != 0);
    return 0;
}

/* Charges a request that went out at now_ms to every rate limit. */
static void limits_take(struct route *r, const struct ferry_request *req, int64_t now_ms)
{
    for (size_t i = 0; i < r->nlimits; i++)
        ferry_ratelimit_take(r->limits[i], now_ms * NS_PER_MS, req->n, req->call.body_len);
}

/* ---- sending ---- */

static void start_call(struct route *r, struct ferry_request *req, int64_t now_ms)
{
    char err[256];

    req->ticket = r->breaker ? ferry_breaker_started(r->breaker) : 0;
    if (r->replies) {
        req->call.keep = (const char *const *)r->cfg->reply.headers.items;
        req->call.nkeep = r->cfg->reply.headers.count;
    }
    if (r->adaptive)
        ferry_adaptive_started(r->adaptive, (int64_t)r->in_flight + 1);
    if (ferry_sender_start(r->sender, &req->call, err, sizeof(err))) {
        /* Nothing went out: treat it as a failed attempt so it is retried. */
        req->call.transport_error = 1;
        snprintf(req->call.error, sizeof(req->call.error), "%s", err);
        req->call.status = 0;
        req->call.retry_after_ms = -1;
        r->in_flight++;
        route_on_call_done(r, &req->call);
        return;
    }
    limits_take(r, req, now_ms);
    r->in_flight++;
    ferry_gauge_set(r->m.in_flight, (int64_t)r->in_flight);
}

/* Builds and sends a request of freshly dispatched records. Records cut from a batch whose
 * body filled up go back to their lanes, for a later request: under key or partition order,
 * once this one is finished. */
static void send_new(struct route *r, struct ferry_request *req, int64_t now_ms)
{
    size_t cut;

    if (ferry_request_build(r->requests, req, &cut, reject_record, r)) {
        ferry_request_put(r->requests, req);
        return;
    }
    if (cut < req->n) {
        ferry_dispatch_give_back(r->dispatch, req->recs + cut, req->n - cut);
        req->n = cut;
    }
    start_call(r, req, now_ms);
}

/* Dead-letters the records of req that fail validation and keeps the others, their views
 * stripped of a wire-format prefix when the route says so. Runs once per record: retries and
 * the records cut from a full batch skip it. */
static void validate_new(struct route *r, struct ferry_request *req)
{
    char why[FERRY_VALIDATE_REASON_MAX];
    size_t kept = 0;

    for (size_t i = 0; i < req->n; i++) {
        struct ferry_dispatch_rec *rec = req->recs[i];
        if (rec->given_back || /* checked (and stripped) when it was handed out first */
            ferry_validate_record(r->validator, &rec->view.value, &rec->view.value_len, why,
                                  sizeof(why)) == 0) {
            req->recs[kept++] = rec;
            continue;
        }
        ferry_counter_add(r->m.invalid, 1);
        dead_letter_record(r, rec, why, NULL, 0);
    }
    req->n = kept;
}

/* Parks the records of req whose key has an earlier record parked on a retry topic behind it
 * (ordering: key with retry topics), and keeps the others. */
static void park_behind(struct route *r, struct ferry_request *req)
{
    size_t kept = 0;

    for (size_t i = 0; i < req->n; i++)
        if (!route_parking_behind(r, req->recs[i]))
            req->recs[kept++] = req->recs[i];
    req->n = kept;
}

/* Nonzero when a batch could go now, the limits and the free slots aside. */
static int batch_due(const struct route *r, int64_t now_ms, int flush)
{
    int64_t due = ferry_dispatch_next_due_ms(r->dispatch);

    return flush ? due != INT64_MAX : due <= now_ms;
}

void route_dispatch(struct route *r, int64_t now_ms, int flush)
{
    size_t max = (size_t)r->cfg->batch.max_records;

    if (now_ms < r->paused_until_ms)
        return;
    while (r->in_flight < route_concurrency(r) && route_breaker_blocked_until(r, now_ms) == 0) {
        struct ferry_request *req;
        size_t taken;

        if (!limits_allow(r, now_ms)) {
            if (batch_due(r, now_ms, flush))
                begin_limit_wait(r, now_ms);
            return;
        }
        end_limit_wait(r, now_ms);
        /* Out of memory, the records wait in their lanes for a later turn. */
        req = ferry_request_get(r->requests);
        if (!req)
            return;
        taken = ferry_dispatch_next(r->dispatch, now_ms, flush, req->recs, max);
        req->n = taken;
        if (taken && r->validator)
            validate_new(r, req);
        if (req->n && r->parking.parked)
            park_behind(r, req);
        if (!req->n) {
            ferry_request_put(r->requests, req);
            if (!taken)
                return;
            continue; /* every record was dead-lettered or parked: there may be more to send */
        }
        send_new(r, req, now_ms);
    }
}

/* ---- outcomes ---- */

/* A gRPC status counts by what it means to the route: success as 2xx, retry as 5xx, dead
 * letter as 4xx. */
static int grpc_class(const struct route *r, long code)
{
    switch (ferry_outcome_classify(&r->outcome, code)) {
    case FERRY_OUTCOME_SUCCESS:
        return 1;
    case FERRY_OUTCOME_RETRY:
        return 4;
    default:
        return 3;
    }
}

static void count_request(struct route *r, const struct ferry_http_call *call)
{
    int cls = call->transport_error ? 0 : (int)(call->status / 100) - 1;
    if (!call->transport_error && is_grpc(call))
        cls = grpc_class(r, call->status);
    if (cls < 0 || cls > 4)
        cls = 0; /* transport errors and odd statuses share the "error" series */
    ferry_counter_add(r->m.requests[cls], 1);
    ferry_histogram_observe(r->m.latency, call->seconds);
}

static void schedule_retry(struct route *r, struct ferry_request *req,
                           const struct ferry_outcome_decision *d, int64_t now_ms)
{
    req->attempts = d->attempts;
    if (d->pause_ms >= 0 && now_ms + d->pause_ms > r->paused_until_ms)
        r->paused_until_ms = now_ms + d->pause_ms;
    ferry_counter_add(r->m.retried, req->n);
    req->retry_node.key = now_ms + d->delay_ms;
    if (ferry_heap_push(&r->retries, &req->retry_node)) {
        FLOG_ERROR_REPEATED(
            "route", r->cfg->name,
            "out of memory for the retry queue; abandoning a request of %zu records, "
            "their partition's watermark waits for them",
            req->n);
        ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
        ferry_request_put(r->requests, req);
    }
}

static void dead_letter_request(struct route *r, struct ferry_request *req, const char *reason)
{
    for (size_t i = 0; i < req->n; i++)
        dead_letter_record(r, req->recs[i], reason, &req->call, req->attempts);
    ferry_request_put(r->requests, req);
}

static int request_stale(const struct ferry_request *req)
{
    return ferry_dispatch_rec_stale(req->recs[0]);
}

static void describe(const struct ferry_http_call *call, char *out, size_t size)
{
    if (call->transport_error || call->error[0]) /* an answer the sender described (SMTP) */
        snprintf(out, size, "%s", call->error);
    else
        snprintf(out, size, "http status %ld", call->status);
}

/* The failure's name in the log's summaries: the status, or what kind of transport error. */
static void failure_kind(const struct ferry_http_call *call, char *out, size_t size)
{
    switch (call->transport_error) {
    case 0:
        snprintf(out, size, "%ld", call->status);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(out, size, "timeout");
        break;
    case CURLE_COULDNT_CONNECT:
        snprintf(out, size, "refused");
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(out, size, "dns");
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        snprintf(out, size, "connection lost");
        break;
    default:
        snprintf(out, size, "curl error %d", call->transport_error);
    }
}

/* Parks the records of req, whose attempts in place ran out, on the next retry topic. */
static void park_request(struct route *r, struct ferry_request *req, const char *reason)
{
    for (size_t i = 0; i < req->n; i++)
        route_parking_park(r, req->recs[i], reason, req->attempts);
    ferry_request_put(r->requests, req);
}

/* After a failed attempt: drops the request when its partition went, else retries, parks or
 * dead-letters it as decided. */
static void handle_failure(struct route *r, struct ferry_request *req,
                           const struct ferry_outcome_decision *d, int64_t now_ms)
{
    char reason[DELIVERY_REASON_MAX], kind[FERRY_FAILURE_LOG_KIND_MAX];

    describe(&req->call, reason, sizeof(reason));
    failure_kind(&req->call, kind, sizeof(kind));
    ferry_failure_log_failure(r->failure_log, kind, reason, now_ms);
    if (request_stale(req)) {
        ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
        ferry_request_put(r->requests, req);
    } else if (d->action == FERRY_OUTCOME_DEAD_LETTER && d->gave_up &&
               route_parking_has_next(r, req->recs[0])) {
        park_request(r, req, reason); /* a request's records share a partition, so a topic */
    } else if (d->action == FERRY_OUTCOME_DEAD_LETTER) {
        if (d->gave_up)
            snprintf(reason + strlen(reason), sizeof(reason) - strlen(reason),
                     " (gave up after %d attempts)", req->attempts);
        dead_letter_request(r, req, reason);
    } else {
        schedule_retry(r, req, d, now_ms);
    }
}

/* The decision for an attempt. A route with retry topics gives up in place to park the
 * records on the next one, dead-letter topic or not; what it cannot park (records from its
 * last retry topic, records the target refused for good) it treats as a route without retry
 * topics would. */
static struct ferry_outcome_decision decide(struct route *r, const struct ferry_request *req,
                                            const struct ferry_outcome_attempt *attempt)
{
    struct ferry_outcome_policy p = r->outcome;
    struct ferry_outcome_decision d;

    if (p.dead_letter || !route_parking_has_next(r, req->recs[0]))
        return ferry_outcome_decide(&p, attempt, &r->rng);
    p.dead_letter = 1;
    d = ferry_outcome_decide(&p, attempt, &r->rng);
    if (d.action != FERRY_OUTCOME_DEAD_LETTER || d.gave_up)
        return d;
    p.dead_letter = 0;
    return ferry_outcome_decide(&p, attempt, &r->rng);
}

void route_on_call_done(void *arg, struct ferry_http_call *call)
{
    struct route *r = arg;
    struct ferry_request *req = call->cookie;
    struct ferry_outcome_attempt attempt;
    struct ferry_outcome_decision d;
    int64_t now = ferry_clock_ms(); /* one reading serves the breaker, the limit and the log */

    r->in_flight--;
    ferry_gauge_set(r->m.in_flight, (int64_t)r->in_flight);
    count_request(r, call);
    attempt.transport_error = call->transport_error;
    attempt.http_status = call->status;
    attempt.retry_after_ms = call->retry_after_ms;
    attempt.attempts = req->attempts + 1;
    d = decide(r, req, &attempt);
    tell_breaker(r, req, call, now);
    tell_adaptive(r, call, now);
    if (ferry_breaker_is_probe(req->ticket) && d.action != FERRY_OUTCOME_SUCCESS &&
        target_failed(r, call)) {
        /* A failed probe is the breaker's question, not one of the record's attempts. */
        attempt.attempts = req->attempts;
        d = decide(r, req, &attempt);
    }
    req->attempts = attempt.attempts;
    if (d.action != FERRY_OUTCOME_SUCCESS) {
        handle_failure(r, req, &d, now);
        return;
    }
    ferry_failure_log_success(r->failure_log, now);
    ferry_counter_add(r->m.delivered, req->n);
    if (r->replies) {
        reply_request(r, req); /* parking's bookkeeping once each reply is stored */
    } else {
        for (size_t i = 0; i < req->n; i++)
            route_parking_done(r, req->recs[i]);
        ferry_dispatch_finish(r->dispatch, req->recs, req->n);
    }
    ferry_request_put(r->requests, req);
}

/* ---- the retry queue ---- */

static struct ferry_request *retry_request(struct ferry_heap_node *node)
{
    return (struct ferry_request *)((char *)node - offsetof(struct ferry_request, retry_node));
}

void route_fire_retries(struct route *r, int64_t now_ms)
{
    struct ferry_heap_node *top;

    while (r->in_flight < route_concurrency(r) && now_ms >= r->paused_until_ms &&
           route_breaker_blocked_until(r, now_ms) == 0) {
        struct ferry_request *req;
        top = ferry_heap_peek(&r->retries);
        if (!top || top->key > now_ms)
            return;
        if (!limits_allow(r, now_ms)) {
            begin_limit_wait(r, now_ms);
            return;
        }
        end_limit_wait(r, now_ms);
        req = retry_request(top);
        ferry_heap_remove(&r->retries, top);
        if (request_stale(req)) {
            ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
            ferry_request_put(r->requests, req);
            continue;
        }
        start_call(r, req, now_ms);
    }
}

int64_t route_next_retry_ms(const struct route *r)
{
    const struct ferry_heap_node *top = ferry_heap_peek(&r->retries);
    int64_t t = top ? top->key : INT64_MAX;
    if (top && t < r->paused_until_ms)
        t = r->paused_until_ms;
    return t;
}

void route_abandon_retries(struct route *r, int stale_only)
{
    size_t i = 0;
    while (i < r->retries.count) {
        struct ferry_heap_node *node = r->retries.items[i];
        struct ferry_request *req = retry_request(node);
        if (stale_only && !request_stale(req)) {
            i++;
            continue;
        }
        ferry_heap_remove(&r->retries, node);
        ferry_dispatch_abandon(r->dispatch, req->recs, req->n);
        ferry_request_put(r->requests, req);
        i = 0; /* removal reorders the heap: scan again */
    }
}
