/*
 * state.c - what any thread may ask of a table: its store (held against a swap), how far
 * behind it is, and the names of its states.
 */
#include "table/state.h"

const char *const ferry_table_states[] = {"starting", "loading", "ready",
                                          "full",     "failed",  "disk_full"};

ferry_store *ferry_table_store_acquire(struct table *t)
{
    pthread_rwlock_rdlock(&t->store_lock);
    if (t->store)
        return t->store;
    pthread_rwlock_unlock(&t->store_lock);
    return NULL;
}

void ferry_table_store_release(struct table *t)
{
    pthread_rwlock_unlock(&t->store_lock);
}

int64_t ferry_table_partition_lag(const struct table *t, int32_t p)
{
    int64_t lag;

    if (atomic_load(&t->state) == TABLE_STARTING || p < 0 || p >= t->npartitions)
        return 0;
    lag = atomic_load(&t->parts[p].end) - atomic_load(&t->parts[p].applied);
    return lag > 0 ? lag : 0;
}

int64_t ferry_table_lag(const struct table *t)
{
    int64_t lag = 0;

    if (atomic_load(&t->state) == TABLE_STARTING)
        return 0;
    for (int32_t p = 0; p < t->npartitions; p++)
        lag += ferry_table_partition_lag(t, p);
    return lag;
}
