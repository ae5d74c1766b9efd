/*
 * backoff.c - retry delays with full jitter, and Retry-After parsing (see backoff.h).
 *
 * The exponential ceiling is computed in floating point and compared with max_ms before it is
 * converted, so huge attempt numbers saturate at max_ms instead of overflowing. Randomness is
 * splitmix64, which accepts any 64-bit state, zero included.
 */
#include "route/backoff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

/* Longer than any of the three HTTP-date forms (RFC 9110 section 5.6.7). */
#define HTTP_DATE_MAX 64

int ferry_backoff_policy_check(const struct ferry_backoff_policy *p, char *errstr,
                               size_t errstr_size)
{
    int result = -1;

    if (p->max_attempts < 0) {
        snprintf(errstr, errstr_size, "backoff: max_attempts: expected 0 or more, got %d",
                 p->max_attempts);
        goto out;
    }
    if (p->initial_ms < 0 || p->initial_ms > p->max_ms) {
        snprintf(errstr, errstr_size,
                 "backoff: expected 0 <= initial_ms <= max_ms, got %lld and %lld",
                 (long long)p->initial_ms, (long long)p->max_ms);
        goto out;
    }
    if (!(p->multiplier >= 1.0) || isinf(p->multiplier)) {
        snprintf(errstr, errstr_size, "backoff: multiplier: expected a number >= 1, got %g",
                 p->multiplier);
        goto out;
    }
    result = 0;
out:
    return result;
}

int ferry_backoff_exhausted(const struct ferry_backoff_policy *p, int attempts)
{
    return p->max_attempts > 0 && attempts >= p->max_attempts;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z;

    *state += 0x9e3779b97f4a7c15ULL;
    z = *state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* min(max_ms, initial_ms * multiplier^(retry-1)), saturating. */
static int64_t ceiling_ms(const struct ferry_backoff_policy *p, int retry)
{
    double c;

    if (p->max_ms <= 0 || p->initial_ms <= 0)
        return 0;
    c = (double)p->initial_ms * pow(p->multiplier, (double)(retry > 1 ? retry - 1 : 0));
    /* Also catches inf and NaN. */
    if (!(c < (double)p->max_ms))
        return p->max_ms;
    /* Only an invalid policy (a negative multiplier) gets here with c < 0. */
    if (c < 0)
        return 0;
    return (int64_t)c;
}

int64_t ferry_backoff_delay_ms(const struct ferry_backoff_policy *p, int retry, uint64_t *rng)
{
    int64_t ceiling = ceiling_ms(p, retry);
    double unit = (double)(splitmix64(rng) >> 11) * 0x1p-53; /* uniform in [0, 1) */
    double draw = unit * ((double)ceiling + 1.0);

    /* Rounding can reach ceiling + 1 when ceiling is beyond 2^53. */
    if (!(draw < (double)ceiling))
        return ceiling;
    return (int64_t)draw;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* delay-seconds is 1*DIGIT; any run of digits too long to matter saturates at the cap. */
static int64_t seconds_ms(const char *s, size_t len)
{
    const int64_t cap_s = FERRY_BACKOFF_RETRY_AFTER_MAX_MS / 1000;
    int64_t secs = 0;

    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        if (secs <= cap_s)
            secs = secs * 10 + (s[i] - '0');
    }
    if (secs > cap_s)
        secs = cap_s;
    return secs * 1000;
}

/* Every HTTP-date form starts with a day name; curl_getdate() reads all three. */
static int64_t date_ms(const char *s, size_t len, time_t now)
{
    char date[HTTP_DATE_MAX];
    time_t when;
    double secs;

    if (len >= sizeof(date))
        return -1;
    memcpy(date, s, len);
    date[len] = '\0';
    when = curl_getdate(date, NULL);
    if (when == -1)
        return -1;
    secs = difftime(when, now);
    if (secs <= 0)
        return 0;
    if (secs >= (double)(FERRY_BACKOFF_RETRY_AFTER_MAX_MS / 1000))
        return FERRY_BACKOFF_RETRY_AFTER_MAX_MS;
    return (int64_t)secs * 1000;
}

int64_t ferry_backoff_retry_after_ms(const char *header_value, time_t now)
{
    const char *s = header_value;
    size_t len;

    if (!s)
        return -1;
    while (is_ows(*s))
        s++;
    len = strlen(s);
    while (len && is_ows(s[len - 1]))
        len--;
    if (len && is_digit(s[0]))
        return seconds_ms(s, len);
    if (len && is_alpha(s[0]))
        return date_ms(s, len, now);
    return -1;
}
