/*
 * stage.c - the records of one write transaction, copied, then visited in key order (stage.h
 * says why), or as they were added when the transaction may have to commit in parts.
 *
 * Keys, values and content types go one after the other into one byte buffer; each record's
 * entry says where its parts are. The buffer may move while it grows, so entries keep
 * positions, and the pointers are made only once the stage stops growing, at the flush.
 */
#include "table/stage.h"
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

/* The first allocation of the entries: a few polls' worth. */
#define STAGE_FIRST_CAPACITY 1024
#define NO_PART ((size_t)-1)

struct entry {
    struct ferry_table_record rec;    /* its pointers are set at the flush */
    size_t key_at, value_at, type_at; /* positions in bytes, or NO_PART */
    size_t seq;                       /* the order it was added in, for the records of a key */
};

struct ferry_table_stage {
    struct entry *entries;
    size_t count, capacity, max_records;
    struct ferry_buf bytes;
};

ferry_table_stage *ferry_table_stage_new(size_t max_records, size_t max_bytes)
{
    ferry_table_stage *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->max_records = max_records ? max_records : 1;
    ferry_buf_init(&s->bytes, max_bytes);
    return s;
}

void ferry_table_stage_destroy(ferry_table_stage *stage)
{
    if (!stage)
        return;
    ferry_buf_release(&stage->bytes);
    free(stage->entries);
    free(stage);
}

static int grow(ferry_table_stage *s)
{
    size_t capacity = s->capacity ? s->capacity * 2 : STAGE_FIRST_CAPACITY;
    struct entry *entries;

    if (capacity > s->max_records)
        capacity = s->max_records;
    entries = realloc(s->entries, capacity * sizeof(*entries));
    if (!entries)
        return -1;
    s->entries = entries;
    s->capacity = capacity;
    return 0;
}

/* Appends one part of a record; returns its position, or NO_PART for an absent one. */
static size_t add_part(ferry_table_stage *s, const void *data, size_t len, int *failed)
{
    size_t at = s->bytes.len;

    if (!data)
        return NO_PART;
    if (len && ferry_buf_add(&s->bytes, data, len))
        *failed = 1;
    return at;
}

int ferry_table_stage_add(ferry_table_stage *stage, const struct ferry_table_record *rec)
{
    struct ferry_buf mark = stage->bytes;
    const char *type = rec->content_type;
    struct entry *e;
    int failed = 0;

    if (stage->count == stage->max_records || (stage->count == stage->capacity && grow(stage)))
        return -1;
    e = &stage->entries[stage->count];
    e->rec = *rec;
    e->seq = stage->count;
    e->key_at = add_part(stage, rec->key ? rec->key : "", rec->key_len, &failed);
    e->value_at = add_part(stage, rec->value, rec->value_len, &failed);
    e->type_at = add_part(stage, type, type ? strlen(type) + 1 : 0, &failed);
    if (failed) {
        ferry_buf_rewind(&stage->bytes, &mark);
        return -1;
    }
    stage->count++;
    return 0;
}

size_t ferry_table_stage_count(const ferry_table_stage *stage)
{
    return stage->count;
}

size_t ferry_table_stage_bytes(const ferry_table_stage *stage)
{
    return stage->bytes.len;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t n = x->rec.key_len < y->rec.key_len ? x->rec.key_len : y->rec.key_len;
    int c = n ? memcmp(x->rec.key, y->rec.key, n) : 0;

    if (c)
        return c;
    if (x->rec.key_len != y->rec.key_len)
        return x->rec.key_len < y->rec.key_len ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Points each entry's record at its parts, now that the bytes stay where they are. */
static void place_parts(ferry_table_stage *s)
{
    const char *base = s->bytes.data ? s->bytes.data : "";

    for (size_t i = 0; i < s->count; i++) {
        struct entry *e = &s->entries[i];
        e->rec.key = base + e->key_at;
        e->rec.value = e->value_at == NO_PART ? NULL : base + e->value_at;
        e->rec.content_type = e->type_at == NO_PART ? NULL : base + e->type_at;
    }
}

/* Visits the entries in their order until fn stops, then empties the stage. */
static int visit_all(ferry_table_stage *s, ferry_table_stage_fn fn, void *arg)
{
    int result = 0;

    for (size_t i = 0; i < s->count && !result; i++)
        result = fn(arg, &s->entries[i].rec);
    ferry_table_stage_clear(s, 0);
    return result;
}

int ferry_table_stage_flush(ferry_table_stage *stage, ferry_table_stage_fn fn, void *arg)
{
    place_parts(stage);
    if (stage->count > 1)
        qsort(stage->entries, stage->count, sizeof(*stage->entries), entry_cmp);
    return visit_all(stage, fn, arg);
}

int ferry_table_stage_flush_as_added(ferry_table_stage *stage, ferry_table_stage_fn fn, void *arg)
{
    place_parts(stage);
    return visit_all(stage, fn, arg);
}

void ferry_table_stage_clear(ferry_table_stage *stage, int release)
{
    stage->count = 0;
    ferry_buf_reset(&stage->bytes);
    if (!release)
        return;
    ferry_buf_release(&stage->bytes);
    free(stage->entries);
    stage->entries = NULL;
    stage->capacity = 0;
}
