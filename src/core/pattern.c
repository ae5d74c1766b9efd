/*
 * pattern.c - topic name lists with regular expressions (see pattern.h).
 *
 * glibc's regexec() may be called from several threads on one compiled expression; callers
 * that match on a hot path cache the answer per topic (topics.c) rather than match per request.
 * The config check of a list (ferry_config_check_patterns) compiles each entry the same way, so
 * `ferry check` refuses what would not compile at start.
 */
#include "core/pattern.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_ERROR_MAX 256

struct entry {
    char *name; /* a plain name, or NULL for a regex */
    regex_t rx; /* valid when name is NULL */
};

struct ferry_patterns {
    struct entry *items;
    size_t count;
};

/* Past the bracket expression that starts at p ('['): a ']' right after "[" or "[^" is a
 * member, not the end. */
static const char *skip_bracket(const char *p)
{
    p += (p[1] == '^') ? 2 : 1;
    p += *p == ']';
    p += strcspn(p, "]");
    return p + (*p != '\0');
}

int ferry_pattern_stacked_quantifier(const char *p)
{
    int after_quantifier = 0;

    while (*p) {
        int quantifier = *p == '*' || *p == '+' || *p == '?' || *p == '{';
        if (quantifier && after_quantifier)
            return 1;
        if (*p == '\\' && p[1]) {
            p += 2;
        } else if (*p == '[') {
            p = skip_bracket(p);
        } else if (*p == '{') {
            p += strcspn(p, "}");
            p += *p != '\0';
        } else {
            p++;
        }
        after_quantifier = quantifier;
    }
    return 0;
}

int ferry_pattern_backreference(const char *p)
{
    while (*p) {
        if (*p == '\\' && p[1] >= '1' && p[1] <= '9')
            return 1;
        if (*p == '\\' && p[1]) {
            p += 2;
        } else if (*p == '[') {
            p = skip_bracket(p);
        } else {
            p++;
        }
    }
    return 0;
}

static int compile_one(struct entry *e, const char *text, char *errstr, size_t errstr_size)
{
    char why[PATTERN_ERROR_MAX];
    int rc;

    if (text[0] != '^') {
        e->name = strdup(text);
        if (!e->name) {
            snprintf(errstr, errstr_size, "'%s': out of memory", text);
            return -1;
        }
        return 0;
    }
    if (ferry_pattern_stacked_quantifier(text)) {
        snprintf(errstr, errstr_size,
                 "'%s': a quantifier follows a quantifier (undefined in POSIX ERE)", text);
        return -1;
    }
    if (ferry_pattern_backreference(text)) {
        snprintf(errstr, errstr_size, "'%s': %s", text, FERRY_PATTERN_BACKREFERENCE_WHY);
        return -1;
    }
    rc = regcomp(&e->rx, text, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        regerror(rc, &e->rx, why, sizeof(why));
        regfree(&e->rx);
        snprintf(errstr, errstr_size, "'%s' is not a valid regular expression: %s", text, why);
        return -1;
    }
    return 0;
}

ferry_patterns *ferry_patterns_new(const struct ferry_cfg_strings *list, char *errstr,
                                   size_t errstr_size)
{
    ferry_patterns *p = calloc(1, sizeof(*p));

    if (p)
        p->items = calloc(list->count + 1, sizeof(*p->items));
    if (!p || !p->items) {
        free(p);
        snprintf(errstr, errstr_size, "out of memory for a list of %zu names", list->count);
        return NULL;
    }
    for (size_t i = 0; i < list->count; i++) {
        if (compile_one(&p->items[i], list->items[i], errstr, errstr_size)) {
            ferry_patterns_destroy(p);
            return NULL;
        }
        p->count++;
    }
    return p;
}

int ferry_patterns_match(const ferry_patterns *p, const char *topic)
{
    for (size_t i = 0; i < p->count; i++) {
        const struct entry *e = &p->items[i];
        if (e->name ? strcmp(e->name, topic) == 0 : regexec(&e->rx, topic, 0, NULL, 0) == 0)
            return 1;
    }
    return 0;
}

void ferry_patterns_destroy(ferry_patterns *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].name)
            free(p->items[i].name);
        else
            regfree(&p->items[i].rx);
    }
    free(p->items);
    free(p);
}
