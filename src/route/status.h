/*
 * status.h - what a route does with an HTTP response, decided by its status code.
 *
 * Each code from 100 to 599 maps to one outcome: deliver is done, retry later, or give up and
 * send the record to the dead-letter topic. Defaults: 2xx succeed; 408, 429 and 5xx retry;
 * everything else (1xx, 3xx, other 4xx) is dead-lettered, because repeating the same request
 * cannot change the answer. A route's configuration overrides codes by class ("5xx"), range
 * ("500-504") or single code ("503"); the more specific pattern wins whatever the order.
 *
 * Transport errors (timeouts, refused or reset connections, TLS failures) have no status code
 * and are not classified here: the caller always retries them.
 */
#ifndef FERRY_STATUS_H
#define FERRY_STATUS_H

#include <stddef.h>

enum ferry_outcome {
    FERRY_OUTCOME_SUCCESS,
    FERRY_OUTCOME_RETRY,
    FERRY_OUTCOME_DEAD_LETTER,
};

typedef struct ferry_status_rules_s ferry_status_rules;

/* Returns rules holding the defaults, or NULL when memory ran out. The caller owns them and
 * frees them with ferry_status_rules_destroy(). */
ferry_status_rules *ferry_status_rules_new(void);

/* Frees the rules. Accepts NULL. */
void ferry_status_rules_destroy(ferry_status_rules *rules);

/* Maps the codes matched by pattern ("404", "5xx" or "500-504") to outcome, unless a more
 * specific pattern set earlier covers them: a code beats a range beats a class; between equals
 * the later call wins. Returns 0, or -1 with a message in errstr and the rules unchanged. Call
 * while building the configuration, before any thread classifies with these rules. */
int ferry_status_rules_set(ferry_status_rules *rules, enum ferry_outcome outcome,
                           const char *pattern, char *errstr, size_t errstr_size);

/* Returns the outcome for an HTTP status. A status outside 100..599 is a protocol error and
 * yields FERRY_OUTCOME_RETRY. Reads only, so any number of threads may call it at once. */
enum ferry_outcome ferry_status_classify(const ferry_status_rules *rules, long http_status);

/* Returns "success", "retry" or "dead_letter", for logs and metrics labels. */
const char *ferry_status_outcome_name(enum ferry_outcome outcome);

#endif
