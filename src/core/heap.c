/*
 * heap.c - binary min-heap with removable nodes (see heap.h).
 */
#include "core/heap.h"

#include <stdlib.h>

void ferry_heap_init(struct ferry_heap *h)
{
    h->items = NULL;
    h->count = h->alloc = 0;
}

void ferry_heap_release(struct ferry_heap *h)
{
    free(h->items);
    ferry_heap_init(h);
}

static void place(struct ferry_heap *h, size_t i, struct ferry_heap_node *n)
{
    h->items[i] = n;
    n->index = i;
}

static void sift_up(struct ferry_heap *h, size_t i)
{
    struct ferry_heap_node *n = h->items[i];
    while (i > 0 && h->items[(i - 1) / 2]->key > n->key) {
        place(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(h, i, n);
}

static void sift_down(struct ferry_heap *h, size_t i)
{
    struct ferry_heap_node *n = h->items[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->count)
            break;
        if (c + 1 < h->count && h->items[c + 1]->key < h->items[c]->key)
            c++;
        if (h->items[c]->key >= n->key)
            break;
        place(h, i, h->items[c]);
        i = c;
    }
    place(h, i, n);
}

int ferry_heap_push(struct ferry_heap *h, struct ferry_heap_node *node)
{
    if (h->count == h->alloc) {
        size_t n = h->alloc ? h->alloc * 2 : 64;
        struct ferry_heap_node **items = realloc(h->items, n * sizeof(*items));
        if (!items)
            return -1;
        h->items = items;
        h->alloc = n;
    }
    h->items[h->count] = node;
    node->index = h->count++;
    sift_up(h, node->index);
    return 0;
}

struct ferry_heap_node *ferry_heap_peek(const struct ferry_heap *h)
{
    return h->count ? h->items[0] : NULL;
}

void ferry_heap_remove(struct ferry_heap *h, struct ferry_heap_node *node)
{
    size_t i = node->index;
    struct ferry_heap_node *last = h->items[--h->count];

    node->index = (size_t)-1;
    if (i == h->count)
        return;
    place(h, i, last);
    if (i > 0 && h->items[(i - 1) / 2]->key > last->key)
        sift_up(h, i);
    else
        sift_down(h, i);
}
