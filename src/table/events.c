/*
 * events.c - subscriptions to a table's changes as Server-Sent Events (not yet served).
 */
#include "table/events.h"

void ferry_table_events_key(struct table *t, ferry_http_req *req, const char *key, size_t len)
{
    (void)key;
    (void)len;
    ferry_http_respond_error(req, 501, 0, "table '%s': subscriptions are not served yet",
                             t->cfg->name);
}

void ferry_table_events_prefix(struct table *t, ferry_http_req *req)
{
    ferry_http_respond_error(req, 501, 0, "table '%s': subscriptions are not served yet",
                             t->cfg->name);
}
