/*
 * members.h - the member map of a partitioned table's cluster: the last heartbeat of every
 * instance, which of them are live, and snapshots of it for the threads that place and
 * forward reads.
 *
 * One thread feeds the map with the heartbeats it reads from the members topic
 * (ferry_members_update); any thread takes a snapshot (ferry_members_view_acquire), reads it
 * without locks and releases it. A snapshot is never changed: a newer one replaces it for later
 * callers, and the old one is freed when its last reader lets go.
 *
 * Live: a member is live while its last heartbeat was read less than `timeout` ago (the reader's
 * monotonic clock, so clocks that disagree between machines do not matter), and a heartbeat
 * that was already older than `timeout` when it was read (by its record's timestamp: history
 * read back at start) does not make its member live. A heartbeat marked leaving (an instance
 * that stops) ends its member's life at once. The heartbeat read last is the one kept, whatever
 * its sent_ms: an instance's heartbeats are keyed by its name, so they are read in the order
 * they were written, and a sender whose clock was set back is not ignored.
 */
#ifndef FERRY_MEMBERS_H
#define FERRY_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "table/heartbeat.h"

#define FERRY_MEMBERS_MAX 256 /* instances a map keeps; heartbeats of more are dropped */

typedef struct ferry_members ferry_members;

struct ferry_member {
    struct ferry_heartbeat hb;
    int64_t seen_ms; /* monotonic time its last heartbeat was read */
};

/* The live members at one moment, sorted by instance name. */
struct ferry_members_view {
    size_t count;
    const struct ferry_member *members;
    const char *const *names; /* members[i].hb.instance, for placement */
    int64_t expires_ms;       /* when the first of them stops being live, unless heard from */
};

/* A map whose members stop being live timeout_ms after their last heartbeat. Returns NULL
 * when out of memory. */
ferry_members *ferry_members_new(int64_t timeout_ms);

/* Frees the map. Snapshots still held stay valid until released. */
void ferry_members_destroy(ferry_members *m);

/* Takes hb (read at now_ms, already age_ms old by its record's timestamp) as its member's
 * latest heartbeat. The map takes what hb owns and zeroes it. Returns 1 when the member was
 * not live before (it joined), 0 otherwise, or -1 when the map is full or out of memory (hb is
 * released). Any thread. */
int ferry_members_update(ferry_members *m, struct ferry_heartbeat *hb, int64_t now_ms,
                         int64_t age_ms);

/* Returns the live members at now_ms; never NULL (an empty view when out of memory). Pair with
 * ferry_members_view_release. Any thread. */
const struct ferry_members_view *ferry_members_view_acquire(ferry_members *m, int64_t now_ms);
void ferry_members_view_release(ferry_members *m, const struct ferry_members_view *v);

/* The member called instance in v, or NULL. */
const struct ferry_member *ferry_members_find(const struct ferry_members_view *v,
                                              const char *instance);

#endif
