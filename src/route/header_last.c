/*
 * header_last.c - which of a record's headers is the last of its name (see header_last.h).
 *
 * Few headers: each is compared with the ones after it. Many: an array of (name, index) is
 * sorted by name and then index, so the last of each name is the last entry of its run.
 */
#include "route/header_last.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct entry {
    const char *name;
    size_t index;
};

typedef int name_cmp_fn(const char *, const char *);

static int by_name(const void *a, const void *b, name_cmp_fn *cmp)
{
    const struct entry *x = a, *y = b;
    int c = cmp(x->name, y->name);

    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int by_name_exact(const void *a, const void *b)
{
    return by_name(a, b, strcmp);
}

static int by_name_folded(const void *a, const void *b)
{
    return by_name(a, b, strcasecmp);
}

static const char *name_at(const rd_kafka_headers_t *h, size_t i)
{
    const char *name = NULL;
    const void *value;
    size_t size;

    rd_kafka_header_get_all(h, i, &name, &value, &size);
    return name ? name : "";
}

static void mark_by_scan(struct ferry_header_last *l, const rd_kafka_headers_t *h, name_cmp_fn *cmp)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *name = name_at(h, i);
        l->is_last[i] = 1;
        for (size_t j = i + 1; j < l->n && l->is_last[i]; j++)
            if (cmp(name, name_at(h, j)) == 0)
                l->is_last[i] = 0;
    }
}

static int mark_by_sort(struct ferry_header_last *l, const rd_kafka_headers_t *h, name_cmp_fn *cmp)
{
    struct entry *e = malloc(l->n * sizeof(*e));

    if (!e)
        return -1;
    for (size_t i = 0; i < l->n; i++)
        e[i] = (struct entry){name_at(h, i), i};
    qsort(e, l->n, sizeof(*e), cmp == strcmp ? by_name_exact : by_name_folded);
    for (size_t k = 0; k < l->n; k++)
        l->is_last[e[k].index] = k + 1 == l->n || cmp(e[k].name, e[k + 1].name) != 0;
    free(e);
    return 0;
}

int ferry_header_last_init(struct ferry_header_last *l, const rd_kafka_headers_t *h, int fold_case)
{
    name_cmp_fn *cmp = fold_case ? strcasecmp : strcmp;
    int result = 0;

    l->n = h ? rd_kafka_header_cnt(h) : 0;
    l->is_last = l->small;
    if (l->n <= FERRY_HEADER_LAST_SMALL) {
        mark_by_scan(l, h, cmp);
        return 0;
    }
    l->is_last = malloc(l->n);
    if (!l->is_last)
        result = -1;
    else
        result = mark_by_sort(l, h, cmp);
    if (result)
        ferry_header_last_release(l);
    return result;
}

void ferry_header_last_release(struct ferry_header_last *l)
{
    if (l->is_last != l->small)
        free(l->is_last);
    l->is_last = l->small;
    l->n = 0;
}
