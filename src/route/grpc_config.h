/*
 * grpc_config.h - the `target.grpc:` block of a route: the server, the method, how a record
 * becomes the request message, the metadata sent with each call and what each gRPC status
 * means to the route.
 *
 * route_config.c embeds struct ferry_route_grpc_config in a route's target and lists
 * ferry_route_grpc_section among the target's keys; target.c decides which kind of target a
 * route has; grpc_target.c builds the calls and grpc_call.c runs them. The checks here load
 * the descriptor set once, so `ferry check` finds a method or message type it lacks.
 */
#ifndef FERRY_GRPC_CONFIG_H
#define FERRY_GRPC_CONFIG_H

#include "core/config.h"
#include "core/config_schema.h"
#include "route/grpc_wire.h"

enum ferry_grpc_payload {
    FERRY_GRPC_PAYLOAD_VALUE, /* the record's value is the protobuf message */
    FERRY_GRPC_PAYLOAD_JSON,  /* the value is JSON, encoded with the descriptor set */
};

struct ferry_route_grpc_status_config {
    struct ferry_cfg_strings success, retry, dead_letter; /* code names or numbers */
};

struct ferry_route_grpc_config {
    char *url;    /* https://host:port or http://host:port (h2c); NULL without a grpc block */
    char *method; /* package.Service/Method */
    int payload;  /* enum ferry_grpc_payload */
    char *descriptor_set; /* after the config checks: resolved against the config's directory */
    struct ferry_cfg_map metadata; /* name: template */
    struct ferry_route_grpc_status_config on_status;
};

/* The table of `target.grpc`. */
extern const struct ferry_cfg_section ferry_route_grpc_section;

/* Returns c's status rules (the defaults of grpc_wire.h, then on_status), or NULL with a
 * message in errstr. Free them with ferry_grpc_rules_destroy(). */
ferry_grpc_rules *ferry_grpc_config_rules(const struct ferry_route_grpc_config *c, char *errstr,
                                          size_t errstr_size);

#endif
