/*
 * member_map.c - GET /tables/{table}'s view of the members: each live member that runs the
 * table with the partitions its last heartbeat listed, and each partition's holders in
 * placement order, the serving ones marked.
 */
#include "table/member_map.h"
#include "core/json.h"
#include "table/assign.h"
#include "table/cluster.h"
#include "table/forward.h"
#include "table/placement.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Bounds of the map's parts, for the cap of the answer that holds it. A string is at most six
 * times its bytes once escaped (\u00XX). */
#define MAP_STRING_MAX(bytes) (6 * (bytes) + 2)
/* a member without its partitions: its instance, its URL, two counters */
#define MAP_MEMBER_MAX                                                                             \
    (MAP_STRING_MAX(FERRY_HEARTBEAT_NAME_MAX) + MAP_STRING_MAX(FERRY_HEARTBEAT_URL_MAX) + 128)
#define MAP_MEMBER_PARTITION_MAX 128 /* {"partition","applied","lag","serving"} in a member */
#define MAP_HOLDERS_MAX 64           /* {"partition":N,"holders":[]} */
#define MAP_HOLDER_MAX (MAP_STRING_MAX(FERRY_HEARTBEAT_NAME_MAX) + 32) /* one holder in it */

static void add_member(struct ferry_buf *out, struct table *t, const struct ferry_member *m,
                       const struct ferry_heartbeat_table *ht, int self)
{
    uint64_t sent = 0, unreached = 0;

    if (!self)
        ferry_table_forward_counts(t->owner->forward, m->hb.url, &sent, &unreached);
    ferry_buf_adds(out, "{\"instance\":");
    ferry_json_add_string(out, m->hb.instance, strlen(m->hb.instance));
    ferry_buf_adds(out, ",\"url\":");
    ferry_json_add_string(out, m->hb.url, strlen(m->hb.url));
    ferry_buf_addf(
        out, ",\"self\":%s,\"forwarded_to\":%" PRIu64 ",\"unreached\":%" PRIu64 ",\"partitions\":[",
        self ? "true" : "false", sent, unreached);
    for (size_t i = 0; i < ht->count; i++) {
        const struct ferry_heartbeat_partition *p = &ht->parts[i];
        ferry_buf_addf(
            out, "%s{\"partition\":%d,\"applied\":%" PRId64 ",\"lag\":%" PRId64 ",\"serving\":%s}",
            i ? "," : "", p->partition, p->applied, p->end > p->applied ? p->end - p->applied : 0,
            p->serving ? "true" : "false");
    }
    ferry_buf_adds(out, "]}");
}

/* One partition's holders by placement, each with whether its heartbeat says it serves. */
static void add_holders(struct ferry_buf *out, struct table *t, int32_t p,
                        const struct ferry_members_view *v, const char **names, const size_t *index,
                        size_t n)
{
    size_t holders[FERRY_PLACEMENT_MAX_REPLICAS];
    size_t count =
        ferry_placement_holders(t->cfg->name, p, names, n, (size_t)t->cfg->replicas, holders);

    ferry_buf_addf(out, "%s{\"partition\":%d,\"holders\":[", p ? "," : "", p);
    for (size_t i = 0; i < count; i++) {
        const struct ferry_member *m = &v->members[index[holders[i]]];
        const struct ferry_heartbeat_partition *hp =
            ferry_heartbeat_partition(ferry_heartbeat_table(&m->hb, t->cfg->name), p);
        ferry_buf_adds(out, i ? ",{\"instance\":" : "{\"instance\":");
        ferry_json_add_string(out, m->hb.instance, strlen(m->hb.instance));
        ferry_buf_addf(out, ",\"serving\":%s}", hp && hp->serving ? "true" : "false");
    }
    ferry_buf_adds(out, "]}");
}

void ferry_table_member_map_add(struct ferry_buf *out, struct table *t)
{
    ferry_table_cluster *c = t->owner->cluster;
    const struct ferry_members_view *v;
    const char **names;
    size_t *index, n = 0;

    if (!ferry_table_is_partitioned(t) || !c)
        return;
    v = ferry_table_cluster_view_acquire(c);
    names = calloc(v->count ? v->count : 1, sizeof(*names));
    index = calloc(v->count ? v->count : 1, sizeof(*index));
    ferry_buf_adds(out, ",\"members\":[");
    for (size_t i = 0; names && index && i < v->count; i++) {
        const struct ferry_heartbeat_table *ht =
            ferry_heartbeat_table(&v->members[i].hb, t->cfg->name);
        if (!ht)
            continue;
        if (n)
            ferry_buf_addc(out, ',');
        add_member(out, t, &v->members[i], ht,
                   strcmp(v->names[i], ferry_table_cluster_instance(c)) == 0);
        names[n] = v->names[i];
        index[n++] = i;
    }
    ferry_buf_adds(out, "],\"holders\":[");
    for (int32_t p = 0;
         names && index && atomic_load(&t->state) != TABLE_STARTING && p < t->npartitions; p++)
        add_holders(out, t, p, v, names, index, n);
    ferry_buf_addc(out, ']');
    free(names);
    free(index);
    ferry_table_cluster_view_release(c, v);
}

size_t ferry_table_member_map_max(struct table *t)
{
    ferry_table_cluster *c = t->owner->cluster;
    const struct ferry_members_view *v;
    size_t bytes = 64, partitions;

    if (!ferry_table_is_partitioned(t) || !c)
        return 0;
    v = ferry_table_cluster_view_acquire(c);
    for (size_t i = 0; i < v->count; i++) {
        const struct ferry_heartbeat_table *ht =
            ferry_heartbeat_table(&v->members[i].hb, t->cfg->name);
        if (ht)
            bytes += MAP_MEMBER_MAX + ht->count * MAP_MEMBER_PARTITION_MAX;
    }
    ferry_table_cluster_view_release(c, v);
    partitions =
        atomic_load(&t->state) != TABLE_STARTING && t->npartitions > 0 ? (size_t)t->npartitions : 0;
    return bytes + partitions * (MAP_HOLDERS_MAX + (size_t)t->cfg->replicas * MAP_HOLDER_MAX);
}
