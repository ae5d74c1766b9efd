/*
 * grpc_config.c - the table of `target.grpc:` and the checks that need several of its keys
 * or a file (a URL of the right scheme, a method the descriptor set has, metadata names gRPC
 * allows, status codes that parse), so that `ferry check` finds what a gRPC route would trip
 * over at start.
 */
#include "route/grpc_config.h"
#include "route/grpc_proto.h"
#include "route/grpc_target.h"
#include "route/template.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRPC_PATH_MAX 256
#define GRPC_ERROR_MAX 512

static const char *const payloads[] = {"value", "json", NULL};

static void check_grpc(struct ferry_config *cfg, void *obj, const char *path);

#define STATUS_FIELD(f) offsetof(struct ferry_route_grpc_status_config, f)
static const struct ferry_cfg_field status_fields[] = {
    {"success", FERRY_CFG_STRINGS, STATUS_FIELD(success), NULL, 0, 0, NULL, NULL, 0,
     "gRPC statuses that mean delivered (default OK), by name (`NOT_FOUND`) or number (`5`)."},
    {"retry", FERRY_CFG_STRINGS, STATUS_FIELD(retry), NULL, 0, 0, NULL, NULL, 0,
     "Statuses to retry (default UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED). "
     "Timeouts and connection errors always retry."},
    {"dead_letter", FERRY_CFG_STRINGS, STATUS_FIELD(dead_letter), NULL, 0, 0, NULL, NULL, 0,
     "Statuses that dead-letter at once (default: every other status)."},
    FERRY_CFG_END,
};
static const struct ferry_cfg_section status_section = {
    "on_status", status_fields, sizeof(struct ferry_route_grpc_status_config), NULL,
    "What each gRPC status does to the record. A code in two lists takes the later of success, "
    "retry, dead_letter."};

#define GRPC_FIELD(f) offsetof(struct ferry_route_grpc_config, f)
static const struct ferry_cfg_field grpc_fields[] = {
    {"url", FERRY_CFG_STRING, GRPC_FIELD(url), NULL, 0, 0, NULL, NULL, 1,
     "The server: `https://host:port` (HTTP/2 over TLS, pooled and multiplexed) or "
     "`http://host:port` (h2c: one connection per call, see docs/targets.md). No path."},
    {"method", FERRY_CFG_STRING, GRPC_FIELD(method), NULL, 0, 0, NULL, NULL, 1,
     "The method called, `package.Service/Method`."},
    {"payload", FERRY_CFG_ENUM, GRPC_FIELD(payload), "value", 0, 0, payloads, NULL, 0,
     "`value`: the record's value is the request message (protobuf) and is sent as it is; "
     "`json`: the value is JSON, encoded into the method's input message with "
     "`descriptor_set`."},
    {"descriptor_set", FERRY_CFG_STRING, GRPC_FIELD(descriptor_set), NULL, 0, 0, NULL, NULL, 0,
     "A FileDescriptorSet made with `protoc --include_imports --descriptor_set_out=FILE`; "
     "needed by `payload: json`. A relative path is read from the config file's directory."},
    {"metadata", FERRY_CFG_MAP, GRPC_FIELD(metadata), NULL, 0, 0, NULL, NULL, 0,
     "Metadata sent with each call: lowercase names, values are templates (a batch's come from "
     "its first record; a value with a control byte but HTAB dead-letters the record)."},
    {"on_status", FERRY_CFG_SECTION, GRPC_FIELD(on_status), NULL, 0, 0, NULL, &status_section, 0,
     NULL},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_route_grpc_section = {
    "grpc", grpc_fields, sizeof(struct ferry_route_grpc_config), check_grpc,
    "A gRPC target: one call per record, or one client-streaming call per batch "
    "(docs/targets.md). The route's timeout is sent as grpc-timeout."};

static int set_codes(ferry_grpc_rules *rules, const struct ferry_cfg_strings *list,
                     enum ferry_outcome outcome, const char *what, char *errstr, size_t errstr_size)
{
    char err[GRPC_ERROR_MAX];

    for (size_t i = 0; i < list->count; i++) {
        if (ferry_grpc_rules_set(rules, outcome, list->items[i], err, sizeof(err)) == 0)
            continue;
        snprintf(errstr, errstr_size, "on_status.%s[%zu]: %s", what, i, err);
        return -1;
    }
    return 0;
}

ferry_grpc_rules *ferry_grpc_config_rules(const struct ferry_route_grpc_config *c, char *errstr,
                                          size_t errstr_size)
{
    const struct ferry_route_grpc_status_config *s = &c->on_status;
    ferry_grpc_rules *rules = ferry_grpc_rules_new();

    if (!rules) {
        snprintf(errstr, errstr_size, "on_status: out of memory");
        return NULL;
    }
    if (set_codes(rules, &s->success, FERRY_OUTCOME_SUCCESS, "success", errstr, errstr_size) ||
        set_codes(rules, &s->retry, FERRY_OUTCOME_RETRY, "retry", errstr, errstr_size) ||
        set_codes(rules, &s->dead_letter, FERRY_OUTCOME_DEAD_LETTER, "dead_letter", errstr,
                  errstr_size)) {
        ferry_grpc_rules_destroy(rules);
        return NULL;
    }
    return rules;
}

/* A relative descriptor_set is the config file's neighbour, as a route's JSON Schema is. */
static void resolve_descriptor_set(struct ferry_config *cfg, struct ferry_route_grpc_config *g,
                                   const char *fpath)
{
    const char *slash = cfg->path ? strrchr(cfg->path, '/') : NULL;
    size_t dir, len;
    char *full;

    if (!g->descriptor_set || g->descriptor_set[0] == '/' || !slash)
        return;
    dir = (size_t)(slash - cfg->path) + 1;
    len = dir + strlen(g->descriptor_set) + 1;
    full = malloc(len);
    if (!full) {
        ferry_config_error(cfg, fpath, "out of memory");
        return;
    }
    memcpy(full, cfg->path, dir);
    memcpy(full + dir, g->descriptor_set, len - dir);
    free(g->descriptor_set);
    g->descriptor_set = full;
}

/* Loads the descriptor set and finds the method in it: a set without the method, or whose
 * method names a message type it does not hold, is refused here rather than at start. */
static void check_descriptor_set(struct ferry_config *cfg, struct ferry_route_grpc_config *g,
                                 const char *path)
{
    char fpath[GRPC_PATH_MAX], err[GRPC_ERROR_MAX];
    const char *input_type;
    ferry_grpc_proto *proto;
    int streaming;

    snprintf(fpath, sizeof(fpath), "%s.descriptor_set", path);
    if (!g->descriptor_set) {
        if (g->payload == FERRY_GRPC_PAYLOAD_JSON)
            ferry_config_error(cfg, fpath,
                               "missing: `payload: json` needs a descriptor set "
                               "(protoc --include_imports --descriptor_set_out)");
        return;
    }
    resolve_descriptor_set(cfg, g, fpath);
    proto = ferry_grpc_proto_load(g->descriptor_set, err, sizeof(err));
    if (!proto) {
        ferry_config_error(cfg, fpath, "%s", err);
        return;
    }
    snprintf(fpath, sizeof(fpath), "%s.method", path);
    if (ferry_grpc_proto_method(proto, g->method, &input_type, &streaming, err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s (descriptor_set '%s')", err, g->descriptor_set);
    ferry_grpc_proto_destroy(proto);
}

/* gRPC metadata names are lowercase tokens; grpc- names and the pseudo-headers are the
 * protocol's own. Values are header templates. */
static void check_metadata(struct ferry_config *cfg, const struct ferry_cfg_map *m,
                           const char *path)
{
    char fpath[GRPC_PATH_MAX];

    for (size_t i = 0; i < m->count; i++) {
        const char *name = m->items[i].key;
        snprintf(fpath, sizeof(fpath), "%s.metadata.%s", path, name);
        if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(name))
            ferry_config_error(cfg, fpath,
                               "expected a lowercase name of letters, digits, '-', '_' or '.'");
        else if (strncmp(name, "grpc-", 5) == 0 || strcmp(name, "te") == 0 ||
                 strcmp(name, "content-type") == 0)
            ferry_config_error(cfg, fpath, "'%s' is set by ferry, not by metadata", name);
        else
            ferry_template_config_check(cfg, m->items[i].value, FERRY_TEMPLATE_HEADER, fpath);
    }
}

static void check_codes(struct ferry_config *cfg, const struct ferry_cfg_strings *list,
                        const char *path, const char *what)
{
    char fpath[GRPC_PATH_MAX];
    int code;

    for (size_t i = 0; i < list->count; i++) {
        if (ferry_grpc_code_parse(list->items[i], &code) == 0)
            continue;
        snprintf(fpath, sizeof(fpath), "%s.on_status.%s[%zu]", path, what, i);
        ferry_config_error(cfg, fpath,
                           "expected a gRPC status name (UNAVAILABLE) or number (0-16), got '%s'",
                           list->items[i]);
    }
}

static void check_grpc(struct ferry_config *cfg, void *obj, const char *path)
{
    struct ferry_route_grpc_config *g = obj;
    char fpath[GRPC_PATH_MAX], err[GRPC_ERROR_MAX];
    int h2c, method_ok = 1;

    snprintf(fpath, sizeof(fpath), "%s.url", path);
    if (g->url && ferry_grpc_target_check_url(g->url, &h2c, err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    snprintf(fpath, sizeof(fpath), "%s.method", path);
    if (g->method && ferry_grpc_target_check_method(g->method, err, sizeof(err))) {
        ferry_config_error(cfg, fpath, "%s", err);
        method_ok = 0;
    }
    if (g->method && method_ok)
        check_descriptor_set(cfg, g, path);
    check_metadata(cfg, &g->metadata, path);
    check_codes(cfg, &g->on_status.success, path, "success");
    check_codes(cfg, &g->on_status.retry, path, "retry");
    check_codes(cfg, &g->on_status.dead_letter, path, "dead_letter");
}
