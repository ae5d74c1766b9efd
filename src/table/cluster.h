/*
 * cluster.h - the instances holding tables placed `partitioned`, as this instance sees them.
 *
 * A thread of its own publishes this instance's heartbeat (heartbeat.h) to the members topic
 * every `cluster.heartbeat`, reads everyone's from it into the member map (members.h), and
 * answers who is live. Who holds which partition follows from the live members by rendezvous
 * hashing (placement.h): every instance computes it alike, no coordinator, no consumer group
 * (design.md, "Tables").
 *
 * At start it reads the members topic back from a little before its end, so it knows the
 * members that are already running before it decides anything: ferry_table_cluster_synced()
 * says when. This instance counts as live from its first heartbeat on, before the broker
 * returns it.
 */
#ifndef FERRY_TABLE_CLUSTER_H
#define FERRY_TABLE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/kafka.h"
#include "table/members.h"
#include "table/table_config.h"

typedef struct ferry_table_cluster ferry_table_cluster;

/* Fills the tables of this instance's next heartbeat (hb->tables and hb->count, which the
 * cluster frees). Returns 0, or -1 when out of memory (the heartbeat then lists no table).
 * Runs on the cluster's thread. */
typedef int ferry_table_cluster_fill_fn(void *arg, struct ferry_heartbeat *hb);

/* A cluster for this instance (instance, reached at url), publishing through k's shared
 * producer and reading with a consumer of its own. Returns NULL with errstr. Main thread. */
ferry_table_cluster *ferry_table_cluster_new(const struct ferry_table_cluster_config *cfg,
                                             const char *instance, const char *url, ferry_kafka *k,
                                             ferry_table_cluster_fill_fn *fill, void *fill_arg,
                                             char *errstr, size_t errstr_size);

/* Starts the thread. Returns 0, or -1 with errstr. Main thread. */
int ferry_table_cluster_start(ferry_table_cluster *c, char *errstr, size_t errstr_size);

/* Publishes a last heartbeat that lists no table (so the others move this instance's
 * partitions at once), stops the thread and closes the consumer. Safe to call twice and on a
 * cluster never started. Main thread. */
void ferry_table_cluster_stop(ferry_table_cluster *c);

/* Frees the cluster (stopping it first). Accepts NULL. Main thread. */
void ferry_table_cluster_destroy(ferry_table_cluster *c);

/* This instance's name and URL, as its heartbeats say them. Any thread. */
const char *ferry_table_cluster_instance(const ferry_table_cluster *c);
const char *ferry_table_cluster_url(const ferry_table_cluster *c);

/* Nonzero once the members topic was read up to the end it had at start. Any thread. */
int ferry_table_cluster_synced(const ferry_table_cluster *c);

/* The live members now; pair with ferry_table_cluster_view_release. Any thread. */
const struct ferry_members_view *ferry_table_cluster_view_acquire(ferry_table_cluster *c);
void ferry_table_cluster_view_release(ferry_table_cluster *c, const struct ferry_members_view *v);

#endif
