/*
 * overview.h - the status page: GET / (one HTML page, embedded in the binary at build time
 * from src/core/status_page.html) and GET /status (the JSON it refreshes from, which scripts
 * may use too; docs/operations.md documents its fields and what stays stable).
 *
 * The core writes the process-level part (version, uptime, readiness, Kafka brokers); each
 * job writes its own part through its status callback (core/job.h), so the core includes no
 * job header. Counters are totals: rates are computed by the reader from two samples.
 */
#ifndef FERRY_OVERVIEW_H
#define FERRY_OVERVIEW_H

#include "core/admin.h"
#include "core/buf.h"
#include "core/httpd.h"
#include "core/kafka.h"

typedef struct ferry_overview ferry_overview;

/* Most jobs that may add a part to /status. */
#define FERRY_OVERVIEW_PARTS_MAX 8

/* Largest /status body; beyond it the answer is a 500. */
#define FERRY_OVERVIEW_BODY_MAX (4 * 1024 * 1024)

/* Appends one JSON value to out; returns 0, or -1 when out's cap was reached. Runs on an HTTP
 * thread. */
typedef int (*ferry_overview_part_fn)(void *arg, struct ferry_buf *out);

/* Registers GET / and GET /status on h. Returns NULL when out of memory or when a route
 * could not be added. Main thread, before the server starts. kafka and admin must outlive it. */
ferry_overview *ferry_overview_new(ferry_httpd *h, ferry_kafka *kafka, ferry_admin *admin);

/* Adds a part shown under name (a static string) in /status. Returns 0, or -1 when
 * FERRY_OVERVIEW_PARTS_MAX parts are there already. Main thread, before the server starts. */
int ferry_overview_add_part(ferry_overview *o, const char *name, ferry_overview_part_fn fn,
                            void *arg);

/* Frees the object; the server must be stopped first. Accepts NULL. */
void ferry_overview_destroy(ferry_overview *o);

#endif
