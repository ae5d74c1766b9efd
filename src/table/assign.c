/*
 * assign.c - the partitions a table's consumer reads, and when each starts serving reads.
 *
 * Placement `partitioned`: a partition's holders are the top `replicas` live members that run
 * the table (a member's heartbeat lists the tables it runs), by rendezvous hashing. When the
 * live members change, the apply thread reassigns its consumer: the partitions it keeps go on
 * from their positions, a new one starts from the store's offset for it, and one it gives up is
 * no longer read (its rows stay in the store). A new partition serves reads only once caught up
 * with the end it had when assigned; until then the other holders answer for it, and an old
 * holder keeps reading a partition it gives up until every new holder says it serves it.
 */
#include "table/assign.h"
#include "core/clock.h"
#include "core/log.h"
#include "table/cluster.h"
#include "table/placement.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSIGN_META_TIMEOUT_MS 5000
#define ASSIGN_LOG_MAX 512         /* bytes of a partition list in a log line */
#define FORGET_ROWS_PER_STEP 20000 /* rows looked at per batch when deleting a partition */

int ferry_table_is_partitioned(const struct table *t)
{
    return t->cfg->placement == FERRY_PLACEMENT_PARTITIONED;
}

/* Nonzero when every holder of partition p (indexes into names, as index maps them to v's
 * members) says in its heartbeat that it serves p. */
static int holders_serve(struct table *t, int32_t p, const struct ferry_members_view *v,
                         const size_t *index, const size_t *holders, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct ferry_heartbeat *hb = &v->members[index[holders[i]]].hb;
        const struct ferry_heartbeat_partition *hp =
            ferry_heartbeat_partition(ferry_heartbeat_table(hb, t->cfg->name), p);
        if (!hp || !hp->serving)
            return 0;
    }
    return 1;
}

/* Sets want[p] for each partition this instance holds among the live members (names, self's
 * index among them or SIZE_MAX), or keeps reading because its new holders do not serve it
 * yet: a handover waits until they have caught up. */
static void choose(struct table *t, const struct ferry_members_view *v, const char **names,
                   const size_t *index, size_t n, size_t self, unsigned char *want)
{
    size_t holders[FERRY_PLACEMENT_MAX_REPLICAS];

    for (int32_t p = 0; p < t->npartitions; p++) {
        size_t count =
            ferry_placement_holders(t->cfg->name, p, names, n, (size_t)t->cfg->replicas, holders);
        want[p] = 0;
        for (size_t i = 0; self != SIZE_MAX && i < count; i++)
            want[p] |= holders[i] == self;
        if (!want[p] && atomic_load(&t->parts[p].held) &&
            !holders_serve(t, p, v, index, holders, count))
            want[p] = 1;
        if (p == t->forgetting)
            want[p] = 0; /* taken again once its rows are gone, from the earliest offset */
    }
}

/* Sets want[p] for each partition this instance should read now. Returns 0, or -1 when out of
 * memory. */
static int wanted(struct table *t, unsigned char *want)
{
    ferry_table_cluster *c = t->owner->cluster;
    const struct ferry_members_view *v = ferry_table_cluster_view_acquire(c);
    const char **names = calloc(v->count ? v->count : 1, sizeof(*names));
    size_t *index = calloc(v->count ? v->count : 1, sizeof(*index));
    size_t n = 0, self = SIZE_MAX;
    int rc = names && index ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < v->count; i++) {
        if (!ferry_heartbeat_table(&v->members[i].hb, t->cfg->name))
            continue;
        if (strcmp(v->names[i], ferry_table_cluster_instance(c)) == 0)
            self = n;
        index[n] = i;
        names[n++] = v->names[i];
    }
    if (rc == 0)
        choose(t, v, names, index, n, self, want);
    ferry_table_cluster_view_release(c, v);
    free(names);
    free(index);
    return rc;
}

/* Appends "p" to a log line of partitions, or "..." once it is long. */
static void add_partition(char *line, size_t size, int32_t p)
{
    size_t used = strlen(line);

    if (used + 16 < size)
        snprintf(line + used, size - used, "%s%d", used ? "," : "", p);
    else if (used + 4 < size && strcmp(line + used - 3, "...") != 0)
        snprintf(line + used, size - used, "...");
}

/* The consumer's next offset for each partition it reads now, into pos[] (-1 where it has
 * none: nothing was consumed since the assignment). */
static void positions(struct table *t, int64_t *pos)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(t->npartitions);

    for (int32_t p = 0; p < t->npartitions; p++) {
        pos[p] = -1;
        if (atomic_load(&t->parts[p].held))
            rd_kafka_topic_partition_list_add(list, t->cfg->topic, p);
    }
    if (rd_kafka_position(t->consumer, list) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < list->cnt; i++)
            if (list->elems[i].offset >= 0)
                pos[list->elems[i].partition] = list->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(list);
}

/* Assigns the partitions of want[], each from from[p], and marks them held. */
static int assign(struct table *t, const unsigned char *want, const int64_t *from, char *errstr,
                  size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(t->npartitions);
    rd_kafka_resp_err_t err;

    for (int32_t p = 0; p < t->npartitions; p++)
        if (want[p])
            rd_kafka_topic_partition_list_add(list, t->cfg->topic, p)->offset =
                from[p] >= 0 ? from[p] : RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(t->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        snprintf(errstr, errstr_size, "cannot assign the partitions of '%s': %s", t->cfg->topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    for (int32_t p = 0; p < t->npartitions; p++) {
        struct table_partition *part = &t->parts[p];
        if (!want[p] && atomic_load(&part->held))
            part->given_up_ms = ferry_clock_ms();
        if (want[p])
            part->given_up_ms = 0;
        if (!want[p])
            atomic_store(&part->serving, 0);
        atomic_store(&part->held, want[p]);
    }
    return 0;
}

int ferry_table_assign_start(struct table *t, const int64_t *next, char *errstr, size_t errstr_size)
{
    unsigned char *want = malloc((size_t)t->npartitions);
    char line[ASSIGN_LOG_MAX] = "";
    int rc = -1;

    if (!want) {
        snprintf(errstr, errstr_size, "out of memory for %d partitions", t->npartitions);
        return -1;
    }
    memset(want, 1, (size_t)t->npartitions);
    if (ferry_table_is_partitioned(t) && wanted(t, want)) {
        snprintf(errstr, errstr_size, "out of memory for the member map");
        goto out;
    }
    rc = assign(t, want, next, errstr, errstr_size);
    for (int32_t p = 0; rc == 0 && ferry_table_is_partitioned(t) && p < t->npartitions; p++) {
        if (want[p])
            add_partition(line, sizeof(line), p);
        else if (next[p] >= 0) /* stored before a restart and not held now: given up */
            t->parts[p].given_up_ms = ferry_clock_ms();
    }
    if (rc == 0 && ferry_table_is_partitioned(t))
        FLOG_INFO("table", t->cfg->name, "holds partition(s) [%s] of %d, replicas %" PRId64, line,
                  t->npartitions, t->cfg->replicas);
out:
    free(want);
    return rc;
}

/* Where partition p resumes: the store's offset, or -1 (the beginning) when the store has
 * none. (Its applied offset is then the low watermark of when the table started, which
 * retention may have passed since: assigning from there would be out of range, and rebuild.) */
static int64_t resume_at(const struct table *t, int32_t p)
{
    return t->parts[p].unstored ? -1 : atomic_load(&t->parts[p].applied);
}

/* Where a newly held partition starts: the store's offset, or its low watermark when the
 * store has none (librdkafka 2.0.2 resolves "the beginning" of a partition that was assigned
 * before to where that assignment was, which retention may have deleted since); and the end
 * it must reach before it serves reads (-1 while not known: ferry_table_assign_serving). */
static void start_partition(struct table *t, int32_t p, int64_t *from)
{
    int64_t low = 0, high = 0;
    int known =
        rd_kafka_query_watermark_offsets(t->consumer, t->cfg->topic, p, &low, &high,
                                         ASSIGN_META_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;

    *from = resume_at(t, p);
    t->parts[p].ready_end = known ? high : -1;
    if (known && high > atomic_load(&t->parts[p].end))
        atomic_store(&t->parts[p].end, high);
    /* Nothing of it is stored (its rows may have been deleted): none of it is applied however
     * far it once was, and it serves reads only once it has caught up. */
    if (t->parts[p].unstored) {
        *from = known ? low : -1;
        atomic_store(&t->parts[p].applied, known ? low : 0);
    }
}

/* Logs what a change of holdings moved. */
static void log_change(struct table *t, const unsigned char *want)
{
    char gained[ASSIGN_LOG_MAX] = "", gave[ASSIGN_LOG_MAX] = "";

    for (int32_t p = 0; p < t->npartitions; p++) {
        int held = atomic_load(&t->parts[p].held);
        if (want[p] && !held)
            add_partition(gained, sizeof(gained), p);
        else if (!want[p] && held)
            add_partition(gave, sizeof(gave), p);
    }
    FLOG_INFO("table", t->cfg->name, "the members changed: takes partition(s) [%s], gives up [%s]",
              gained, gave);
}

int ferry_table_assign_update(struct table *t, char *errstr, size_t errstr_size)
{
    size_t n = (size_t)t->npartitions;
    unsigned char *want = malloc(n);
    int64_t *from = calloc(n, sizeof(*from));
    int rc = 0, changed = 0;

    if (!want || !from || wanted(t, want)) {
        snprintf(errstr, errstr_size, "out of memory for %d partitions", t->npartitions);
        rc = -1;
        goto out;
    }
    for (int32_t p = 0; p < t->npartitions; p++)
        changed |= want[p] != atomic_load(&t->parts[p].held);
    if (!changed)
        goto out;
    log_change(t, want);
    positions(t, from);
    for (int32_t p = 0; p < t->npartitions; p++)
        if (want[p] && !atomic_load(&t->parts[p].held))
            start_partition(t, p, &from[p]);
        else if (want[p] && from[p] < 0)
            from[p] = resume_at(t, p);
    rc = assign(t, want, from, errstr, errstr_size) ? -1 : 1;
out:
    free(want);
    free(from);
    return rc;
}

/* The next partition to forget: given up longer than the grace period ago. -1 for none. */
static int32_t due_to_forget(struct table *t)
{
    int64_t now = ferry_clock_ms();

    if (t->forgetting >= 0)
        return t->forgetting;
    for (int32_t p = 0; p < t->npartitions; p++) {
        const struct table_partition *part = &t->parts[p];
        if (!atomic_load(&part->held) && part->given_up_ms &&
            now - part->given_up_ms >= t->owner->grace_ms)
            return p;
    }
    return -1;
}

int ferry_table_assign_forget(struct table *t, ferry_store *store, char *errstr, size_t errstr_size)
{
    int32_t p = ferry_table_is_partitioned(t) ? due_to_forget(t) : -1;
    unsigned char next[FERRY_STORE_CURSOR_MAX];
    size_t next_len = 0;
    int more = 0, r;

    if (p < 0)
        return 0;
    if (t->forgetting < 0)
        FLOG_INFO("table", t->cfg->name,
                  "deleting the rows of partition %d, given up more than cluster.grace ago", p);
    t->forgetting = p;
    r = ferry_store_batch_begin(store, errstr, errstr_size);
    if (!r)
        r = ferry_store_batch_drop_partition(store, p, t->forget_cursor, t->forget_cursor_len,
                                             FORGET_ROWS_PER_STEP, next, &next_len, &more, errstr,
                                             errstr_size);
    if (!r)
        r = ferry_store_batch_commit(store, errstr, errstr_size);
    if (r)
        return r;
    memcpy(t->forget_cursor, next, next_len);
    t->forget_cursor_len = next_len;
    if (more)
        return 0;
    t->parts[p].given_up_ms = 0;
    t->parts[p].unstored = 1;
    t->forgetting = -1;
    t->forget_cursor_len = 0;
    return 0;
}

/* The end a newly held partition must reach, when asking for it failed: the end the consumer
 * learnt from its fetches since. Returns -1 while there is none yet. */
static int64_t learn_ready_end(struct table *t, int32_t p)
{
    int64_t low = -1, high = -1;

    if (rd_kafka_get_watermark_offsets(t->consumer, t->cfg->topic, p, &low, &high) || high < 0)
        return -1;
    return high;
}

void ferry_table_assign_serving(struct table *t)
{
    for (int32_t p = 0; p < t->npartitions; p++) {
        struct table_partition *part = &t->parts[p];
        if (!atomic_load(&part->held) || atomic_load(&part->serving))
            continue;
        if (part->ready_end < 0)
            part->ready_end = learn_ready_end(t, p);
        if (part->ready_end >= 0 &&
            atomic_load(&part->applied) >= part->ready_end - t->cfg->ready_lag)
            atomic_store(&part->serving, 1);
    }
}
