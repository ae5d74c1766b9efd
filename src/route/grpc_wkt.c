/*
 * grpc_wkt.c - the JSON text forms of protobuf's Timestamp and Duration (see grpc_wkt.h).
 *
 * Both parsers read the text left to right with a cursor and accept nothing but the forms the
 * proto3 JSON mapping describes: fixed-width date and time fields, an optional fraction of up to
 * nine digits, then the zone (a Timestamp) or the "s" (a Duration).
 */
#include "route/grpc_wkt.h"

#include <time.h>

/* The largest Duration either way: 10,000 years, as duration.proto says. */
#define WKT_DURATION_MAX_SECONDS 315576000000LL

struct cursor {
    const char *p, *end;
};

/* Reads exactly n digits. Returns 0 with *out set, or -1. */
static int read_digits(struct cursor *c, int n, int *out)
{
    int v = 0;

    if (c->end - c->p < n)
        return -1;
    for (int i = 0; i < n; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            return -1;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return 0;
}

/* Reads one expected character. Returns 0, or -1 when another one is there. */
static int read_char(struct cursor *c, char want)
{
    if (c->p == c->end || *c->p != want)
        return -1;
    c->p++;
    return 0;
}

/* Reads an optional "." and 1 to 9 digits into nanoseconds. Returns 0, or -1. */
static int read_fraction(struct cursor *c, int32_t *nanos)
{
    int32_t v = 0, scale = 100000000;
    int digits = 0;

    *nanos = 0;
    if (c->p == c->end || *c->p != '.')
        return 0;
    for (c->p++; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, digits++) {
        if (digits == 9)
            return -1;
        v += (int32_t)(*c->p - '0') * scale;
        scale /= 10;
    }
    *nanos = v;
    return digits ? 0 : -1;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* Reads "YYYY-MM-DDTHH:MM:SS" into tm, checking each field's range. Returns 0, or -1. */
static int read_date_time(struct cursor *c, struct tm *tm)
{
    int year, month, day, hour, minute, second;

    if (read_digits(c, 4, &year) || read_char(c, '-') || read_digits(c, 2, &month) ||
        read_char(c, '-') || read_digits(c, 2, &day) || read_char(c, 'T') ||
        read_digits(c, 2, &hour) || read_char(c, ':') || read_digits(c, 2, &minute) ||
        read_char(c, ':') || read_digits(c, 2, &second))
        return -1;
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return -1;
    tm->tm_year = year - 1900;
    tm->tm_mon = month - 1;
    tm->tm_mday = day;
    tm->tm_hour = hour;
    tm->tm_min = minute;
    tm->tm_sec = second;
    return 0;
}

/* Reads "Z" or "+HH:MM"/"-HH:MM" into the seconds to add to get UTC. Returns 0, or -1. */
static int read_zone(struct cursor *c, int64_t *to_utc)
{
    int hours, minutes;
    char sign;

    if (read_char(c, 'Z') == 0) {
        *to_utc = 0;
        return 0;
    }
    if (c->p == c->end || (*c->p != '+' && *c->p != '-'))
        return -1;
    sign = *c->p++;
    if (read_digits(c, 2, &hours) || read_char(c, ':') || read_digits(c, 2, &minutes) ||
        hours > 23 || minutes > 59)
        return -1;
    *to_utc = (int64_t)(hours * 3600 + minutes * 60) * (sign == '+' ? -1 : 1);
    return 0;
}

int ferry_grpc_wkt_timestamp(const char *text, size_t len, int64_t *seconds, int32_t *nanos,
                             const char **why)
{
    struct cursor c = {text, text + len};
    struct tm tm = {0};
    int64_t to_utc, t;

    *why = "expected an RFC 3339 time like 2026-12-05T07:00:00Z";
    if (read_date_time(&c, &tm) || read_fraction(&c, nanos) || read_zone(&c, &to_utc) ||
        c.p != c.end)
        return -1;
    t = (int64_t)timegm(&tm) + to_utc;
    /* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range timestamp.proto allows */
    if (t < -62135596800LL || t > 253402300799LL) {
        *why = "time out of range (years 1 to 9999, in UTC)";
        return -1;
    }
    *seconds = t;
    return 0;
}

int ferry_grpc_wkt_duration(const char *text, size_t len, int64_t *seconds, int32_t *nanos,
                            const char **why)
{
    struct cursor c = {text, text + len};
    int64_t whole = 0;
    int negative = read_char(&c, '-') == 0, digits = 0;

    *why = "expected a duration in seconds like 1.5s";
    for (; c.p < c.end && *c.p >= '0' && *c.p <= '9'; c.p++, digits++) {
        whole = whole * 10 + (*c.p - '0');
        if (whole > WKT_DURATION_MAX_SECONDS) {
            *why = "duration out of range (315,576,000,000 seconds either way)";
            return -1;
        }
    }
    if (!digits || read_fraction(&c, nanos) || read_char(&c, 's') || c.p != c.end)
        return -1;
    *seconds = negative ? -whole : whole;
    if (negative)
        *nanos = -*nanos;
    return 0;
}
