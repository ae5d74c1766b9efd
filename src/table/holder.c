/*
 * holder.c - choosing where a read of a partitioned table is answered, from this instance's
 * own progress and the member map: only live members that say they serve the partition are
 * candidates, so a client can never make an instance send a read anywhere else.
 */
#include "table/holder.h"
#include "table/cluster.h"
#include "table/heartbeat.h"

#include <stdio.h>
#include <string.h>

/* The bases a read is forwarded to are the URLs the holders' heartbeats advertise, whole. */
_Static_assert(FERRY_FORWARD_URL_MAX >= FERRY_HEARTBEAT_URL_MAX + 1,
               "a forwarding base holds any advertised URL");

struct candidate {
    const char *url;
    int64_t lag;
};

/* Adds members that serve p, fewest records behind first, up to the room in c[]. */
static size_t candidates(struct table *t, int32_t p, const struct ferry_members_view *v,
                         const char *self, struct candidate *c, size_t room)
{
    size_t n = 0;

    for (size_t i = 0; i < v->count; i++) {
        const struct ferry_heartbeat *hb = &v->members[i].hb;
        const struct ferry_heartbeat_partition *hp =
            ferry_heartbeat_partition(ferry_heartbeat_table(hb, t->cfg->name), p);
        size_t at;
        int64_t lag;
        if (!hp || !hp->serving || !hb->url[0] || strcmp(hb->instance, self) == 0)
            continue;
        lag = hp->end > hp->applied ? hp->end - hp->applied : 0;
        for (at = n; at > 0 && c[at - 1].lag > lag; at--)
            if (at < room)
                c[at] = c[at - 1];
        if (at < room) {
            c[at] = (struct candidate){hb->url, lag};
            n += n < room;
        }
    }
    return n;
}

enum ferry_holder_choice ferry_table_holder_choose(struct table *t, int32_t p, int forwarded,
                                                   char bases[][FERRY_FORWARD_URL_MAX], size_t *n)
{
    ferry_table_cluster *cl = t->owner->cluster;
    struct table_partition *part;
    int local;
    int64_t lag;
    struct candidate c[FERRY_FORWARD_CANDIDATES_MAX];
    const struct ferry_members_view *v;

    *n = 0;
    if (p < 0 || p >= t->npartitions)
        return FERRY_HOLDER_NONE; /* the partitions are not known */
    part = &t->parts[p];
    local = atomic_load(&part->held) && atomic_load(&part->serving);
    lag = ferry_table_partition_lag(t, p);
    if (forwarded || (local && lag <= t->cfg->max_lag))
        return local ? FERRY_HOLDER_LOCAL : FERRY_HOLDER_NONE;
    v = ferry_table_cluster_view_acquire(cl);
    *n = candidates(t, p, v, ferry_table_cluster_instance(cl), c, FERRY_FORWARD_CANDIDATES_MAX);
    for (size_t i = 0; i < *n; i++)
        snprintf(bases[i], FERRY_FORWARD_URL_MAX, "%s", c[i].url);
    ferry_table_cluster_view_release(cl, v);
    if (local && (!*n || c[0].lag >= lag))
        return FERRY_HOLDER_LOCAL;
    return *n ? FERRY_HOLDER_FORWARD : FERRY_HOLDER_NONE;
}
