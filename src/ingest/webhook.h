/*
 * webhook.h - webhook endpoints: a request body into records, as an endpoint's config says
 * (one record, or one per line of newline-delimited JSON; the key from a header, a query
 * parameter or a path into the JSON body).
 *
 * The caller looks up the request's headers and query parameters, so this file never touches
 * the HTTP server and can be tested on its own. Runs on the server's threads.
 */
#ifndef FERRY_INGEST_WEBHOOK_H
#define FERRY_INGEST_WEBHOOK_H

#include <stddef.h>

#include "ingest/batch.h"
#include "ingest/ingest_config.h"

/* What a webhook request brought. Pointers stay valid while the batch is used. */
struct ferry_webhook_input {
    const char *body;
    size_t len;
    const char *content_type;         /* NULL when the request had none */
    const char *key;                  /* the key header's or query parameter's value, or NULL */
    const char *const *header_names;  /* record header names (lower case) */
    const char *const *header_values; /* the request's values for them; NULL when absent */
    size_t nheaders;
};

/* Fills out (whose arena holds at least in->len bytes) with the records of one request to
 * webhook w. Returns 0, or the HTTP status to answer (413 or 422) with *code the REST Proxy
 * style error code and errstr naming what was wrong and where ("line 3: invalid JSON"). */
int ferry_webhook_parse(const struct ferry_ingest_webhook_config *w,
                        const struct ferry_webhook_input *in,
                        const struct ferry_ingest_limits *limits, struct ferry_ingest_batch *out,
                        int *code, char *errstr, size_t errstr_size);

#endif
