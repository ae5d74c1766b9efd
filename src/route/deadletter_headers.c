/*
 * deadletter_headers.c - ferry's headers of a dead letter's newest failure (see
 * deadletter_headers.h).
 *
 * Two passes over the headers, each linear: one for where the newest block starts, one for the
 * header asked for from there. A hostile record may hold tens of thousands of headers, so
 * nothing here compares every header with every other.
 */
#include "route/deadletter_headers.h"

#include <string.h>
#include <sys/types.h>

#define NEWEST_BLOCK_FIRST "ferry.error" /* the first header of every dead letter's block */

/* The index of the last header of h named name from start on, or -1. */
static ssize_t last_from(const rd_kafka_headers_t *h, size_t start, const char *name)
{
    const char *at;
    const void *value;
    size_t size;
    ssize_t found = -1;

    for (size_t i = start; !rd_kafka_header_get_all(h, i, &at, &value, &size); i++)
        if (strcmp(at, name) == 0)
            found = (ssize_t)i;
    return found;
}

int ferry_deadletter_headers_get(const rd_kafka_headers_t *h, const char *name, const void **value,
                                 size_t *size)
{
    const char *at;
    ssize_t start, i;

    if (!h)
        return -1;
    start = last_from(h, 0, NEWEST_BLOCK_FIRST);
    i = last_from(h, start < 0 ? 0 : (size_t)start, name);
    if (i < 0)
        return -1;
    return rd_kafka_header_get_all(h, (size_t)i, &at, value, size) ? -1 : 0;
}
