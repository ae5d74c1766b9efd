/*
 * target.c - which kind of target a route has (see target.h): the one kind key its `target:`
 * sets, and the keys that belong to a kind it does not have.
 */
#include "route/target.h"

#include <stdio.h>

#define TARGET_PATH_MAX 256

struct kind {
    const char *key; /* the key under target: that selects the kind */
    enum ferry_target_kind kind;
    const char *name;
};

static const struct kind kinds[] = {
    {"url", FERRY_TARGET_HTTP, "http"},
    {"smtp", FERRY_TARGET_SMTP, "smtp"},
    {"grpc", FERRY_TARGET_GRPC, "grpc"},
};
#define KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Keys under target: that only an HTTP target reads. */
static const char *const http_only[] = {"method", "headers", "forward_headers", NULL};

const char *ferry_target_kind_name(enum ferry_target_kind kind)
{
    for (size_t i = 0; i < KINDS; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "unknown";
}

/* Returns how many kind keys path's target sets, the first in *first. */
static size_t count_kinds(struct ferry_config *cfg, const char *path, const struct kind **first)
{
    char fpath[TARGET_PATH_MAX];
    size_t n = 0;

    *first = NULL;
    for (size_t i = 0; i < KINDS; i++) {
        snprintf(fpath, sizeof(fpath), "%s.target.%s", path, kinds[i].key);
        if (!ferry_config_line(cfg, fpath))
            continue;
        if (!n++)
            *first = &kinds[i];
    }
    return n;
}

static void check_http_keys(struct ferry_config *cfg, const struct kind *k, const char *path)
{
    char fpath[TARGET_PATH_MAX];

    for (const char *const *key = http_only; *key; key++) {
        snprintf(fpath, sizeof(fpath), "%s.target.%s", path, *key);
        if (ferry_config_line(cfg, fpath))
            ferry_config_error(cfg, fpath, "applies to HTTP targets only, and this target is %s",
                               k->key);
    }
}

void ferry_route_target_check(struct ferry_config *cfg, const char *path)
{
    char fpath[TARGET_PATH_MAX];
    const struct kind *k;
    size_t n;

    snprintf(fpath, sizeof(fpath), "%s.target", path);
    if (!ferry_config_line(cfg, fpath))
        return; /* the loader reported the missing target */
    n = count_kinds(cfg, path, &k);
    if (n == 0)
        ferry_config_error(cfg, fpath, "expected one of url (HTTP), smtp (e-mail) or grpc");
    else if (n > 1)
        ferry_config_error(cfg, fpath, "expected only one of url (HTTP), smtp (e-mail) or grpc");
    else if (k->kind != FERRY_TARGET_HTTP)
        check_http_keys(cfg, k, path);
}
