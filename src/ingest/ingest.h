/*
 * ingest.h - the ingest job: HTTP requests into Kafka records through the shared producer.
 *
 * Two kinds of endpoint share the server's listener: the Confluent REST Proxy v2 produce API
 * (`POST /topics/{topic}[/partitions/{p}]`) and configured webhooks. A handler parses the body
 * on the server thread, produces every record without blocking, and either answers 202 at once
 * (`ack: accepted`) or parks the request until the producer's delivery reports arrive (`ack:
 * kafka`, the default); the last report answers, on the producer's poller thread. See
 * docs/ingest.md. The app drives it through the job's callbacks (core/job.h).
 */
#ifndef FERRY_INGEST_H
#define FERRY_INGEST_H

#include "core/job.h"

/* The ingest job, listed in src/jobs.c. */
extern const struct ferry_job ferry_ingest_job;

#endif
