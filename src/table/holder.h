/*
 * holder.h - which instance answers a read of a table placed `partitioned`: this one, when it
 * serves the key's partition and is fresh enough (max_lag), else the freshest live member
 * whose heartbeat says it serves the partition.
 */
#ifndef FERRY_TABLE_HOLDER_H
#define FERRY_TABLE_HOLDER_H

#include <stddef.h>
#include <stdint.h>

#include "table/forward.h"
#include "table/state.h"

enum ferry_holder_choice {
    FERRY_HOLDER_LOCAL,   /* answer here */
    FERRY_HOLDER_FORWARD, /* send to bases[0..n), best first */
    FERRY_HOLDER_NONE,    /* nobody live serves the partition now */
};

/* Chooses for a read of partition p; forwarded is nonzero when the read was forwarded to this
 * instance already (then it is answered here or not at all). Any thread. */
enum ferry_holder_choice ferry_table_holder_choose(struct table *t, int32_t p, int forwarded,
                                                   char bases[][FERRY_FORWARD_URL_MAX], size_t *n);

#endif
