/*
 * header_last.h - which of a record's headers is the last of its name.
 *
 * Where a record's headers become one value per name (an envelope's "headers" object, the
 * headers a route forwards), the last header of a name wins, as rd_kafka_header_get_last()
 * and ${header.NAME} read it. Asking "is there another one later?" for each header costs n^2
 * name compares, and a hostile record can hold tens of thousands of headers in its megabyte:
 * 60,000 of them held a route's worker for half a minute. This marks every header in one pass
 * over the headers sorted by name (n log n), or with the plain scan for the few headers most
 * records have.
 */
#ifndef FERRY_HEADER_LAST_H
#define FERRY_HEADER_LAST_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* Headers up to this many are marked without allocating. */
#define FERRY_HEADER_LAST_SMALL 32

struct ferry_header_last {
    unsigned char small[FERRY_HEADER_LAST_SMALL];
    unsigned char *is_last; /* small, or a heap array of n */
    size_t n;
};

/* Marks which headers of h (NULL for none) are the last of their name, names compared byte for
 * byte, or ignoring ASCII case when fold_case is nonzero (HTTP names). Returns 0, or -1 when
 * memory ran out (l is then empty and needs no release). The caller owns l and releases it with
 * ferry_header_last_release(); h must not change meanwhile. Any thread. */
int ferry_header_last_init(struct ferry_header_last *l, const rd_kafka_headers_t *h, int fold_case);

/* Nonzero when header i is the last of its name (0 past the end). */
static inline int ferry_header_last_is(const struct ferry_header_last *l, size_t i)
{
    return i < l->n && l->is_last[i];
}

/* Frees what init allocated. */
void ferry_header_last_release(struct ferry_header_last *l);

#endif
