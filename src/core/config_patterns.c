/*
 * config_patterns.c - the config check of lists of names and ^regex (core/pattern.h): each
 * entry must compile as ferry_patterns_new() compiles it, and each plain entry must be a name
 * of the kind the list holds. Part of the config subsystem (config.h), kept apart so that
 * config.c does not depend on pattern.c, which depends on config.h.
 */
#include "core/config.h"
#include "core/pattern.h"
#include "core/topic_name.h"

#include <stdio.h>
#include <string.h>

/* Reports entry i of list, at ipath, when it is not a valid entry. */
static void check_pattern(struct ferry_config *cfg, const struct ferry_cfg_strings *list, size_t i,
                          enum ferry_config_names names, const char *ipath)
{
    const char *t = list->items[i];
    struct ferry_cfg_strings one = {&list->items[i], 1};
    char err[512];
    ferry_patterns *p = ferry_patterns_new(&one, err, sizeof(err));

    ferry_patterns_destroy(p);
    if (!p)
        ferry_config_error(cfg, ipath, "%s", err);
    else if (t[0] == '^')
        return;
    else if (names == FERRY_CONFIG_TABLE_NAMES && ferry_config_name_check(t, err, sizeof(err)))
        ferry_config_error(cfg, ipath, "table name: %s (a regular expression starts with '^')",
                           err);
    else if (names == FERRY_CONFIG_TOPIC_NAMES &&
             ferry_topic_name_check(t, strlen(t), err, sizeof(err)))
        ferry_config_error(cfg, ipath, "%s (a regular expression starts with '^')", err);
}

void ferry_config_check_patterns(struct ferry_config *cfg, const struct ferry_cfg_strings *list,
                                 enum ferry_config_names names, const char *path)
{
    char ipath[256];

    for (size_t i = 0; i < list->count; i++) {
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        check_pattern(cfg, list, i, names, ipath);
    }
}
