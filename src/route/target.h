/*
 * target.h - the kinds of target a route delivers to, and which one a route has.
 *
 * A route's `target:` holds exactly one kind: `url` (HTTP, with method, headers and the rest of
 * the target's HTTP keys), `smtp` (e-mail, smtp_config.h) or `grpc` (grpc_config.h). The keys every
 * kind shares (timeout, connect_timeout, tls) stay beside them. A new kind adds one row to
 * target.c's table and one case to ferry_route_target_kind() (route_config.c).
 */
#ifndef FERRY_TARGET_H
#define FERRY_TARGET_H

#include "core/config.h"

enum ferry_target_kind {
    FERRY_TARGET_HTTP,
    FERRY_TARGET_SMTP,
    FERRY_TARGET_GRPC,
};

/* Its name, e.g. "http" or "smtp", for logs and `ferry check`. */
const char *ferry_target_kind_name(enum ferry_target_kind kind);

/* Reports under path (the route's) a target that names no kind or more than one, and keys of
 * one kind set beside another kind, from the keys written. Main thread, while the config is
 * checked. (route_config.h's ferry_route_target_kind() tells a loaded route's kind.) */
void ferry_route_target_check(struct ferry_config *cfg, const char *path);

#endif
