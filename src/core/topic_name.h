/*
 * topic_name.h - what Kafka accepts as a topic name, for every place ferry takes one from a
 * config file, a command line or a request: the dev cluster's topics, webhook topics, the
 * plain names of ingest's topic lists and REST Proxy paths.
 *
 * Kafka refuses other names only when a client first uses them, so checking them where they
 * are written turns a failure at run time into an error `ferry check` reports.
 */
#ifndef FERRY_TOPIC_NAME_H
#define FERRY_TOPIC_NAME_H

#include <stddef.h>

/* Longest topic name Kafka accepts. */
#define FERRY_TOPIC_NAME_MAX 249

/* Nonzero when name[0..len) is a legal Kafka topic name: 1 to 249 of [A-Za-z0-9._-], not "."
 * or "..". name need not be NUL-terminated. Pure: any thread. */
int ferry_topic_name_valid(const char *name, size_t len);

/* Returns 0 when name[0..len) is a legal topic name, else -1 with errstr saying what is wrong
 * (empty, too long, '.' or '..', or the first character Kafka refuses), in the words of a
 * config error: "topic name 'a b' holds ' ', but ...". Pure: any thread. */
int ferry_topic_name_check(const char *name, size_t len, char *errstr, size_t errstr_size);

#endif
