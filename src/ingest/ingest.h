/*
 * ingest.h - the ingest job: HTTP requests into Kafka records through the shared producer.
 *
 * Two kinds of endpoint share the server's listener: the Confluent REST Proxy v2 produce API
 * (`POST /topics/{topic}[/partitions/{p}]`) and configured webhooks. A handler parses the body
 * on the server thread, produces every record without blocking, and either answers 202 at once
 * (`ack: accepted`) or parks the request until the producer's delivery reports arrive (`ack:
 * kafka`, the default); the last report answers, on the producer's poller thread. See
 * docs/ingest.md.
 */
#ifndef FERRY_INGEST_H
#define FERRY_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/httpd.h"
#include "core/kafka.h"
#include "core/metrics.h"

typedef struct ferry_ingest ferry_ingest;

/* Builds the endpoints of cfg's `ingest:` section (API keys, topic handles for webhooks,
 * metrics). With no endpoint configured the object does nothing. Returns NULL with errstr on
 * failure. cfg, k and m must outlive the result. Main thread. */
ferry_ingest *ferry_ingest_new(const struct ferry_config *cfg, ferry_kafka *k, ferry_metrics *m,
                               char *errstr, size_t errstr_size);

/* Registers the endpoints on h. Main thread, before the server starts. Returns 0, or -1. */
int ferry_ingest_register(ferry_ingest *ing, ferry_httpd *h);

/* Readiness for /readyz: not ready once stopping. Any thread. */
int ferry_ingest_ready(void *ing, char *why, size_t why_size);

/* Stops taking requests (new ones get 503) and waits, at most timeout_ms and at most the
 * delivery timeout plus a margin, until every accepted request was answered after its delivery
 * reports; any request still waiting then is answered 503. Afterwards releases the producer's
 * topic handles. Call after ferry_httpd_quiesce() and before ferry_httpd_destroy(). Accepts
 * NULL. Main thread. */
void ferry_ingest_stop(ferry_ingest *ing, int64_t timeout_ms);

/* Frees everything. Call after ferry_kafka_destroy(), whose final flush may still deliver
 * reports of ingested records. Accepts NULL. Main thread. */
void ferry_ingest_destroy(ferry_ingest *ing);

#endif
