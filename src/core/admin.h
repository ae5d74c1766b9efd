/*
 * admin.h - the operator endpoints: /healthz (alive), /readyz (able to do its work) and
 * /metrics (Prometheus). Jobs add readiness checks of their own.
 */
#ifndef FERRY_ADMIN_H
#define FERRY_ADMIN_H

#include "core/httpd.h"
#include "core/kafka.h"
#include "core/metrics.h"

typedef struct ferry_admin ferry_admin;

#define FERRY_ADMIN_CHECKS_MAX 16 /* readiness checks /readyz runs, the Kafka one included */

/* Returns nonzero when ready; writes a short reason to why otherwise. A ready check may write
 * a detail too ("ok; ..."), shown instead of "ok". Runs on an HTTP thread. */
typedef int (*ferry_admin_check_fn)(void *arg, char *why, size_t why_size);

/* Registers the endpoints on h. Returns NULL when out of memory. Main thread, before the
 * server starts. kafka and metrics must outlive the admin object. */
ferry_admin *ferry_admin_new(ferry_httpd *h, ferry_kafka *kafka, ferry_metrics *metrics);

/* Adds a readiness check named name. Returns 0, or -1 when FERRY_ADMIN_CHECKS_MAX checks are
 * there already. Main thread, before the server starts. */
int ferry_admin_add_check(ferry_admin *a, const char *name, ferry_admin_check_fn fn, void *arg);

/* Runs every readiness check, as /readyz does: returns nonzero when all pass, else 0 with the
 * first failing check's name and reason in why ("tables: table prices is loading"). Any
 * thread; a check may wait for a Kafka round trip. */
int ferry_admin_ready(ferry_admin *a, char *why, size_t why_size);

/* Frees the admin object; the server must be stopped first. Accepts NULL. */
void ferry_admin_destroy(ferry_admin *a);

#endif
