/*
 * target.h - the kinds of target a route delivers to, and which one a route has.
 *
 * A route's `target:` holds exactly one kind: `url` (HTTP, with method, headers and the rest of
 * the target's HTTP keys) or `smtp` (e-mail, smtp_config.h). The keys every kind shares
 * (timeout, connect_timeout, tls) stay beside them. A new kind adds one row to target.c's
 * table and one case to ferry_route_target_kind().
 */
#ifndef FERRY_TARGET_H
#define FERRY_TARGET_H

#include "core/config.h"

struct ferry_route_config;

enum ferry_target_kind {
    FERRY_TARGET_HTTP,
    FERRY_TARGET_SMTP,
};

/* The kind of r's target, for a route that passed the config checks. Any thread. */
enum ferry_target_kind ferry_route_target_kind(const struct ferry_route_config *r);

/* Its name, e.g. "http" or "smtp", for logs and `ferry check`. */
const char *ferry_target_kind_name(enum ferry_target_kind kind);

/* Reports under path (the route's) a target that names no kind or more than one, and keys of
 * one kind set beside another kind. Main thread, while the config is checked. */
void ferry_route_target_check(struct ferry_config *cfg, const struct ferry_route_config *r,
                              const char *path);

#endif
