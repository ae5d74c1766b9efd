/*
 * table.h - the tables job: every `tables:` entry materializes a topic into an LMDB store and
 * serves the latest value per key over HTTP (docs/tables.md).
 *
 * Each table has an apply thread of its own; the server's threads answer reads. The main
 * thread starts and stops them through the job's callbacks (core/job.h).
 */
#ifndef FERRY_TABLE_H
#define FERRY_TABLE_H

#include "core/job.h"

/* The tables job, listed in src/jobs.c. */
extern const struct ferry_job ferry_tables_job;

#endif
