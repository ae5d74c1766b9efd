/*
 * heap.h - a binary min-heap of timed items (a retry queue, deadlines).
 *
 * Items embed a struct ferry_heap_node; the heap stores pointers to them and keeps each node's
 * index up to date so an item can be removed from the middle in O(log n). Not thread-safe.
 */
#ifndef FERRY_HEAP_H
#define FERRY_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct ferry_heap_node {
    int64_t key;  /* smallest first */
    size_t index; /* position in the heap; (size_t)-1 when not in one */
};

struct ferry_heap {
    struct ferry_heap_node **items;
    size_t count, alloc;
};

void ferry_heap_init(struct ferry_heap *h);
void ferry_heap_release(struct ferry_heap *h);

/* Inserts node with its key. Returns 0, or -1 when out of memory. */
int ferry_heap_push(struct ferry_heap *h, struct ferry_heap_node *node);

/* Returns the node with the smallest key without removing it, or NULL when empty. */
struct ferry_heap_node *ferry_heap_peek(const struct ferry_heap *h);

/* Removes node, which must be in h. */
void ferry_heap_remove(struct ferry_heap *h, struct ferry_heap_node *node);

#endif
