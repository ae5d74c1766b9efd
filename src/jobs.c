/*
 * jobs.c - the list of ferry's jobs: the one place a job is added.
 *
 * `ferry run` starts them in this order and stops them in reverse; `ferry check` and the
 * configuration reference visit their sections in this order. The core knows a job only
 * through its struct ferry_job (core/job.h).
 */
#include "core/job.h"
#include "ingest/ingest.h"
#include "route/route.h"
#include "table/table.h"

const struct ferry_job *const ferry_jobs[] = {
    &ferry_routes_job,
    &ferry_ingest_job,
    &ferry_tables_job,
    NULL,
};

_Static_assert(sizeof(ferry_jobs) / sizeof(ferry_jobs[0]) <= FERRY_JOBS_MAX + 1,
               "raise FERRY_JOBS_MAX");
