/*
 * devbroker.h - the embedded development cluster: librdkafka's in-process mock Kafka.
 *
 * It speaks the real Kafka protocol on 127.0.0.1 (kcat and other clients can use it), keeps
 * everything in memory, and loses it all on exit. It is used by `ferry run` when no brokers
 * are configured and by `ferry dev-broker`. librdkafka marks the mock API experimental, so
 * every call to it lives in devbroker.c and nowhere else.
 */
#ifndef FERRY_DEVBROKER_H
#define FERRY_DEVBROKER_H

#include <stddef.h>

typedef struct ferry_devbroker ferry_devbroker;

/* Starts a cluster of nbrokers brokers. Returns NULL with errstr on failure. */
ferry_devbroker *ferry_devbroker_new(int nbrokers, char *errstr, size_t errstr_size);

/* The bootstrap servers, "127.0.0.1:PORT[,...]". Owned by db. */
const char *ferry_devbroker_bootstrap(const ferry_devbroker *db);

/* Creates a topic with the given number of partitions. Returns 0, or -1 with errstr. */
int ferry_devbroker_topic_create(ferry_devbroker *db, const char *topic, int partitions,
                                 char *errstr, size_t errstr_size);

/* Creates a topic from "name:partitions". Returns 0, or -1 with errstr when spec is not of
 * that form, the name is not one Kafka accepts (topic_name.h) or the cluster refuses it. */
int ferry_devbroker_topic_create_spec(ferry_devbroker *db, const char *spec, char *errstr,
                                      size_t errstr_size);

/* Writes the bootstrap address and a newline to path, through a temporary file and rename()
 * so that a reader never sees half of it. Returns 0, or -1 with errstr. */
int ferry_devbroker_write_bootstrap(const ferry_devbroker *db, const char *path, char *errstr,
                                    size_t errstr_size);

/* Makes every broker refuse (down != 0) or accept connections again: for tests of how ferry
 * behaves while Kafka is unreachable. Returns 0, or -1. */
int ferry_devbroker_set_down(ferry_devbroker *db, int down);

/* Stops the cluster and frees it. Clients still connected see their connections drop.
 * Accepts NULL. */
void ferry_devbroker_destroy(ferry_devbroker *db);

#endif
