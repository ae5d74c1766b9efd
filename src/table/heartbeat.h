/*
 * heartbeat.h - what an instance says about itself to the others of a partitioned table's
 * cluster, as the JSON value of a record on the members topic (design.md, "Tables").
 *
 * Every instance publishes one every `heartbeat` and reads everyone's: the member map
 * (members.c) is built from them, placement (placement.c) from the live members, and a read
 * is forwarded to the freshest holder the heartbeats name. The format, documented in
 * docs/tables.md:
 *
 *   {"v":1,"instance":"web-1","url":"http://10.0.0.5:8080","sent_ms":1733300000000,
 *    "tables":[{"name":"prices","partitions":[[0,1882,1882,1],[7,40,96,0]]}]}
 *
 * each partition being [partition, applied offset, end offset, serving (1 or 0)]. A last
 * heartbeat, sent by an instance that stops, adds "leaving":true. A decoder
 * ignores members it does not know, so later versions can add some; "v" changes only when a
 * field changes meaning.
 *
 * Pure functions over the caller's structs: any thread.
 */
#ifndef FERRY_HEARTBEAT_H
#define FERRY_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define FERRY_HEARTBEAT_VERSION 1
#define FERRY_HEARTBEAT_NAME_MAX 255        /* an instance's or a table's name, in bytes */
#define FERRY_HEARTBEAT_URL_MAX 1024        /* an advertised URL, in bytes */
#define FERRY_HEARTBEAT_TABLES_MAX 256      /* tables in one heartbeat */
#define FERRY_HEARTBEAT_PARTITIONS_MAX 8192 /* partitions of one table in one heartbeat */
#define FERRY_HEARTBEAT_BYTES_MAX (1024 * 1024)

struct ferry_heartbeat_partition {
    int32_t partition;
    int64_t applied; /* the next offset to apply: every record before it is in the store */
    int64_t end;     /* the partition's end as the instance last saw it */
    int serving;     /* 1 once caught up: the instance answers reads of it */
};

struct ferry_heartbeat_table {
    char name[FERRY_HEARTBEAT_NAME_MAX + 1];
    struct ferry_heartbeat_partition *parts; /* owned; sorted by partition once decoded */
    size_t count;
};

struct ferry_heartbeat {
    char instance[FERRY_HEARTBEAT_NAME_MAX + 1];
    char url[FERRY_HEARTBEAT_URL_MAX + 1];
    int64_t sent_ms; /* the sender's wall clock, milliseconds since the epoch */
    int leaving;     /* the instance is stopping: not a holder of anything from now on */
    struct ferry_heartbeat_table *tables; /* owned */
    size_t count;
};

/* Appends hb as JSON to out. Returns 0, or -1 when out's cap was reached (out is then left as
 * it was). */
int ferry_heartbeat_encode(const struct ferry_heartbeat *hb, struct ferry_buf *out);

/* Decodes the JSON text p[0..n) into hb, which the caller releases with
 * ferry_heartbeat_release whatever the result. Returns 0, or -1 with a message in errstr
 * (text that is not a heartbeat, a value out of range, a limit above passed). */
int ferry_heartbeat_decode(const char *p, size_t n, struct ferry_heartbeat *hb, char *errstr,
                           size_t errstr_size);

/* Makes dst a deep copy of src. Returns 0, or -1 when out of memory (dst is then empty). */
int ferry_heartbeat_copy(struct ferry_heartbeat *dst, const struct ferry_heartbeat *src);

/* Frees what hb owns and zeroes it. */
void ferry_heartbeat_release(struct ferry_heartbeat *hb);

/* The table called name in hb, or NULL. */
const struct ferry_heartbeat_table *ferry_heartbeat_table(const struct ferry_heartbeat *hb,
                                                          const char *name);

/* Partition p of t, or NULL when t does not list it (binary search: parts are sorted). */
const struct ferry_heartbeat_partition *
ferry_heartbeat_partition(const struct ferry_heartbeat_table *t, int32_t p);

#endif
