/*
 * outcome.c - the decision after each attempt of a request (see outcome.h).
 *
 * The status rules say what an answer deserves; the retry settings and the dead-letter topic
 * say what the route can do about it. Everything here is arithmetic on the arguments, so the
 * whole table is tested without a network (tests/unit/test_outcome.c).
 */
#include "route/outcome.h"

/* Retry-After counts only on these two: they are the statuses that say "come back later". */
static int honours_retry_after(long http_status)
{
    return http_status == 429 || http_status == 503;
}

/* The wait before the next attempt: the jittered backoff, or max_backoff once the attempts ran
 * out (a record that may not be attempted again but has nowhere else to go). */
static int64_t backoff_ms(const struct ferry_backoff_policy *retry, int attempts, uint64_t *rng)
{
    if (ferry_backoff_exhausted(retry, attempts))
        return retry->max_ms;
    return ferry_backoff_delay_ms(retry, attempts, rng);
}

/* A retry: said is what the rules made of the answer (retry, or dead letter without a
 * dead-letter topic, which retries as if the attempts had run out). */
static void decide_retry(const struct ferry_outcome_policy *policy,
                         const struct ferry_outcome_attempt *attempt, enum ferry_outcome said,
                         uint64_t *rng, struct ferry_outcome_decision *d)
{
    d->action = FERRY_OUTCOME_RETRY;
    if (said == FERRY_OUTCOME_DEAD_LETTER && policy->retry->max_attempts)
        d->attempts = policy->retry->max_attempts;
    d->delay_ms = backoff_ms(policy->retry, d->attempts, rng);
    if (!attempt->transport_error && attempt->retry_after_ms >= 0 &&
        honours_retry_after(attempt->http_status)) {
        d->pause_ms = attempt->retry_after_ms;
        if (d->pause_ms > d->delay_ms)
            d->delay_ms = d->pause_ms;
    }
}

enum ferry_outcome ferry_outcome_classify(const struct ferry_outcome_policy *policy, long status)
{
    if (policy->classify)
        return policy->classify(policy->classify_rules, status);
    return ferry_status_classify(policy->rules, status);
}

struct ferry_outcome_decision ferry_outcome_decide(const struct ferry_outcome_policy *policy,
                                                   const struct ferry_outcome_attempt *attempt,
                                                   uint64_t *rng)
{
    struct ferry_outcome_decision d = {FERRY_OUTCOME_SUCCESS, 0, attempt->attempts, 0, -1};
    enum ferry_outcome said = attempt->transport_error
                                  ? FERRY_OUTCOME_RETRY
                                  : ferry_outcome_classify(policy, attempt->http_status);
    int exhausted = ferry_backoff_exhausted(policy->retry, attempt->attempts);

    if (said == FERRY_OUTCOME_SUCCESS)
        return d;
    if (policy->dead_letter && (said == FERRY_OUTCOME_DEAD_LETTER || exhausted)) {
        d.action = FERRY_OUTCOME_DEAD_LETTER;
        d.gave_up = said == FERRY_OUTCOME_RETRY;
        return d;
    }
    decide_retry(policy, attempt, said, rng, &d);
    return d;
}
