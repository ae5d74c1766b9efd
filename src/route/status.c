/*
 * status.c - HTTP status code to delivery outcome (see status.h).
 *
 * A lookup table indexed by the code itself, so classifying is one load. Beside each entry sits
 * the specificity of the pattern that set it, which is how a class set after a single code
 * leaves that code alone.
 */
#include "route/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE_MIN 100
#define CODE_MAX 599

/* Specificity of the pattern that last set an entry; higher wins. */
enum rank {
    RANK_DEFAULT,
    RANK_CLASS,
    RANK_RANGE,
    RANK_CODE,
};

struct ferry_status_rules_s {
    unsigned char outcome[CODE_MAX + 1];
    unsigned char rank[CODE_MAX + 1];
};

/* A parsed pattern: the inclusive span of codes it covers and how specific it is. */
struct span {
    int first;
    int last;
    enum rank rank;
};

static void apply(ferry_status_rules *rules, const struct span *sp, enum ferry_outcome outcome)
{
    for (int code = sp->first; code <= sp->last; code++) {
        if (rules->rank[code] > sp->rank)
            continue;
        rules->outcome[code] = (unsigned char)outcome;
        rules->rank[code] = (unsigned char)sp->rank;
    }
}

static void set_default(ferry_status_rules *rules, int first, int last, enum ferry_outcome outcome)
{
    struct span sp = {first, last, RANK_DEFAULT};

    apply(rules, &sp, outcome);
}

ferry_status_rules *ferry_status_rules_new(void)
{
    ferry_status_rules *rules = calloc(1, sizeof(*rules));

    if (!rules)
        return NULL;
    set_default(rules, 0, CODE_MAX, FERRY_OUTCOME_DEAD_LETTER);
    set_default(rules, 200, 299, FERRY_OUTCOME_SUCCESS);
    set_default(rules, 408, 408, FERRY_OUTCOME_RETRY);
    set_default(rules, 429, 429, FERRY_OUTCOME_RETRY);
    set_default(rules, 500, 599, FERRY_OUTCOME_RETRY);
    return rules;
}

void ferry_status_rules_destroy(ferry_status_rules *rules)
{
    free(rules);
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly three digits; returns the number or -1. */
static int three_digits(const char *s, size_t len)
{
    if (len != 3 || !is_digit(s[0]) || !is_digit(s[1]) || !is_digit(s[2]))
        return -1;
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

static int is_class(const char *s, size_t len)
{
    return len == 3 && is_digit(s[0]) && (s[1] == 'x' || s[1] == 'X') &&
           (s[2] == 'x' || s[2] == 'X');
}

/* Fills sp from the pattern's shape alone; bounds are checked afterwards. Returns -1 when the
 * pattern has none of the three shapes. */
static int parse_shape(const char *pattern, struct span *sp)
{
    size_t len = strlen(pattern);
    const char *dash = memchr(pattern, '-', len);

    if (is_class(pattern, len)) {
        sp->first = (pattern[0] - '0') * 100;
        sp->last = sp->first + 99;
        sp->rank = RANK_CLASS;
        return 0;
    }
    if (dash) {
        sp->first = three_digits(pattern, (size_t)(dash - pattern));
        sp->last = three_digits(dash + 1, len - (size_t)(dash - pattern) - 1);
        sp->rank = RANK_RANGE;
        return sp->first < 0 || sp->last < 0 ? -1 : 0;
    }
    sp->first = three_digits(pattern, len);
    sp->last = sp->first;
    sp->rank = RANK_CODE;
    return sp->first < 0 ? -1 : 0;
}

static int parse_pattern(const char *pattern, struct span *sp, char *errstr, size_t errstr_size)
{
    int result = -1;

    if (!pattern || parse_shape(pattern, sp)) {
        snprintf(errstr, errstr_size,
                 "status: expected a code like 404, a class like 5xx or a range like 500-504, "
                 "got '%s'",
                 pattern ? pattern : "");
        goto out;
    }
    if (sp->first < CODE_MIN || sp->last > CODE_MAX) {
        snprintf(errstr, errstr_size, "status: '%s' is outside %d-%d", pattern, CODE_MIN, CODE_MAX);
        goto out;
    }
    if (sp->first > sp->last) {
        snprintf(errstr, errstr_size, "status: range '%s' ends before it starts", pattern);
        goto out;
    }
    result = 0;
out:
    return result;
}

int ferry_status_rules_set(ferry_status_rules *rules, enum ferry_outcome outcome,
                           const char *pattern, char *errstr, size_t errstr_size)
{
    struct span sp;
    int result = -1;

    if (outcome != FERRY_OUTCOME_SUCCESS && outcome != FERRY_OUTCOME_RETRY &&
        outcome != FERRY_OUTCOME_DEAD_LETTER) {
        snprintf(errstr, errstr_size, "status: unknown outcome %d for '%s'", (int)outcome,
                 pattern ? pattern : "");
        goto out;
    }
    result = parse_pattern(pattern, &sp, errstr, errstr_size);
    if (result)
        goto out;
    apply(rules, &sp, outcome);
out:
    return result;
}

enum ferry_outcome ferry_status_classify(const ferry_status_rules *rules, long http_status)
{
    if (http_status < CODE_MIN || http_status > CODE_MAX)
        return FERRY_OUTCOME_RETRY;
    return (enum ferry_outcome)rules->outcome[http_status];
}

const char *ferry_status_outcome_name(enum ferry_outcome outcome)
{
    switch (outcome) {
    case FERRY_OUTCOME_SUCCESS:
        return "success";
    case FERRY_OUTCOME_RETRY:
        return "retry";
    case FERRY_OUTCOME_DEAD_LETTER:
        return "dead_letter";
    }
    return "unknown";
}
