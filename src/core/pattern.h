/*
 * pattern.h - lists of names (topics, tables) and regular expressions, as written in the
 * config: a plain entry matches that name exactly, an entry starting with `^` is a POSIX
 * extended regular expression (anchored at the start by its own `^`; add `$` to anchor the
 * end).
 *
 * The topics a route consumes, the REST Proxy API's allowed topics and each API key's topics
 * and tables are such lists.
 */
#ifndef FERRY_PATTERN_H
#define FERRY_PATTERN_H

#include <stddef.h>

#include "core/config.h"
#include "core/topic_name.h" /* plain entries are topic names */

typedef struct ferry_patterns ferry_patterns;

/* Compiles list. Returns the patterns (the caller owns them), or NULL with errstr quoting the
 * entry that does not compile. An empty list matches nothing. */
ferry_patterns *ferry_patterns_new(const struct ferry_cfg_strings *list, char *errstr,
                                   size_t errstr_size);

/* Nonzero when topic matches an entry. Reads only: any thread, any number at once. */
int ferry_patterns_match(const ferry_patterns *p, const char *topic);

/* Frees the patterns. Accepts NULL. */
void ferry_patterns_destroy(ferry_patterns *p);

/* Returns 1 when a quantifier directly follows another in the POSIX ERE re ("a++", "a*{2}",
 * "a{2}?"): undefined in POSIX EREs, and glibc's regcomp copies the tree once per stacked
 * quantifier, so a few hundred of them take gigabytes. Escapes and bracket expressions are
 * skipped. Every regcomp of text from outside is checked with this first. */
int ferry_pattern_stacked_quantifier(const char *re);

/* Returns 1 when the POSIX ERE re holds a backreference (\1 to \9) outside a bracket
 * expression. POSIX EREs have none; glibc accepts them, and then matches in exponential time:
 * "(.*)(.*)(.*)(.*)(.*)\5\4\3\2\1b" took more than 20 s against 200 bytes of text. Every
 * regcomp of text from outside is checked with this first, and refused with the reason below. */
int ferry_pattern_backreference(const char *re);

#define FERRY_PATTERN_BACKREFERENCE_WHY                                                            \
    "a backreference (\\1 to \\9) is not POSIX ERE, and can take exponential time to match"

#endif
