/*
 * units.c - durations, sizes, addresses and integers as written in a config file.
 */
#include "core/units.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGITS "0123456789"

struct unit {
    const char *suffix;
    double factor;
};

static const struct unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"B", 1},       {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
    {"KB", 1000.0}, {"MB", 1e6},     {"GB", 1e9},        {NULL, 0},
};

/* Returns the length of the plain decimal number text starts with: digits, then (when
 * fraction_ok) a '.' and more digits. 0 when it does not start with a digit. Signs, spaces,
 * exponents, hex and inf/nan, which strtod and strtoll would take, are not part of it. */
static size_t decimal_len(const char *text, int fraction_ok)
{
    size_t n = strspn(text, DIGITS), frac;

    if (n && fraction_ok && text[n] == '.') {
        frac = strspn(text + n + 1, DIGITS);
        if (frac)
            n += 1 + frac;
    }
    return n;
}

/* Nonzero when all of text is an optional '-' and a plain decimal number. */
static int is_signed_decimal(const char *text, int fraction_ok)
{
    const char *digits = *text == '-' ? text + 1 : text;
    size_t n = decimal_len(digits, fraction_ok);
    return n > 0 && digits[n] == '\0';
}

int ferry_int_parse(const char *text, int64_t *out)
{
    char *end;
    long long v;

    if (!text || !is_signed_decimal(text, 0))
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int ferry_double_parse(const char *text, double *out)
{
    char *end;
    double v;

    if (!text || !is_signed_decimal(text, 1))
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Parses "<number><suffix>" where the suffix must be one of units; a bare number is allowed
 * only when bare_ok is set (or the number is zero). */
static int parse_with_units(const char *text, const struct unit *units, int bare_ok, int64_t *out)
{
    size_t len = text ? decimal_len(text, 1) : 0;
    char *end;
    double v;

    if (len == 0)
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno || end != text + len || v > 9.2e18)
        return -1;
    if (*end == '\0') {
        if (!bare_ok && v != 0)
            return -1;
        *out = (int64_t)llround(v); /* as with a suffix: "1.5" and "1.5B" are both 2 */
        return 0;
    }
    for (const struct unit *u = units; u->suffix; u++) {
        if (strcmp(end, u->suffix) == 0) {
            double r = v * u->factor;
            if (r > 9.2e18)
                return -1;
            *out = (int64_t)llround(r);
            return 0;
        }
    }
    return -1;
}

int ferry_duration_parse(const char *text, int64_t *ms)
{
    return parse_with_units(text, duration_units, 0, ms);
}

int ferry_size_parse(const char *text, int64_t *bytes)
{
    return parse_with_units(text, size_units, 1, bytes);
}

void ferry_duration_format(int64_t ms, char *out, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, size, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, size, "%lldm", (long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, size, "%lldms", (long long)ms);
}

void ferry_size_format(int64_t bytes, char *out, size_t size)
{
    if (bytes != 0 && bytes % 1073741824 == 0)
        snprintf(out, size, "%lldGiB", (long long)(bytes / 1073741824));
    else if (bytes != 0 && bytes % 1048576 == 0)
        snprintf(out, size, "%lldMiB", (long long)(bytes / 1048576));
    else if (bytes != 0 && bytes % 1024 == 0)
        snprintf(out, size, "%lldKiB", (long long)(bytes / 1024));
    else
        snprintf(out, size, "%lld", (long long)bytes);
}

static int parse_port(const char *text, int *port)
{
    int64_t v;
    if (ferry_int_parse(text, &v) || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int ferry_hostport_parse(const char *text, char *host, size_t host_size, int *port)
{
    const char *colon, *hstart = text;
    size_t hlen;

    if (!text)
        return -1;
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return -1;
        hstart = text + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return -1;
        hlen = (size_t)(colon - text);
    }
    if (parse_port(colon + 1, port))
        return -1;
    if (hlen == 0) {
        hstart = "0.0.0.0";
        hlen = 7;
    }
    if (hlen >= host_size)
        return -1;
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    return 0;
}
