/*
 * redrive_http.h - `POST /routes/{name}/redrive`: the admin endpoint that runs a redrive
 * (redrive.h) inside the daemon and answers its summary as JSON.
 *
 * The request body is a JSON object with the command line's selection: {"from": "0" or
 * ["0", "2:5"], "to": ..., "since": "15m", "status": [400, 404], "dry_run": true,
 * "restart": true}, every field optional (an empty body is {}). With API keys on the listener
 * (ingest.auth.keys), a key may redrive a route when it may write every topic the route
 * consumes: redriving is as good as producing those records again. One redrive per route runs
 * at a time (409 otherwise), on a thread of its own while the request waits suspended, with
 * the process's Kafka set-up (the embedded dev cluster too) and the same progress file as
 * `ferry redrive` started in the daemon's working directory.
 */
#ifndef FERRY_REDRIVE_HTTP_H
#define FERRY_REDRIVE_HTTP_H

#include <stddef.h>

#include "core/auth.h"
#include "core/config.h"
#include "core/httpd.h"
#include "core/kafka.h"
#include "route/route_config.h"

typedef struct ferry_redrive_http ferry_redrive_http;

/* The most redrives running at once (each on a route of its own). */
#define FERRY_REDRIVE_HTTP_RUNS_MAX 16
#define FERRY_REDRIVE_HTTP_BODY_MAX (64 * 1024)
#define FERRY_REDRIVE_HTTP_DETAILS_MAX 100 /* per-record lines in an answer */

/* Returns the endpoint's state, or NULL when out of memory. cfg, routes (the routes job's
 * section of it), kafka and auth (may be NULL: no keys) must outlive it. Main thread. */
ferry_redrive_http *ferry_redrive_http_new(const struct ferry_config *cfg,
                                           const struct ferry_routes_config *routes,
                                           ferry_kafka *kafka, const ferry_auth *auth);

/* Registers the endpoint. Returns 0, or -1 with errstr. Main thread, before the server starts. */
int ferry_redrive_http_register(ferry_redrive_http *rh, ferry_httpd *h, char *errstr,
                                size_t errstr_size);

/* Stops the redrives under way (each finishes its request under way, saves its progress and
 * answers its summary, interrupted) and joins their threads. Main thread, after the server
 * stopped taking requests. Safe to call twice; accepts NULL. */
void ferry_redrive_http_stop(ferry_redrive_http *rh);

/* Stops (as above) and frees. Accepts NULL. Main thread. */
void ferry_redrive_http_destroy(ferry_redrive_http *rh);

#endif
