/*
 * units.h - parsing of the value syntaxes a config file uses: durations ("250ms", "10s"),
 * sizes ("512KiB", "1MiB") and listen addresses ("127.0.0.1:8080").
 */
#ifndef FERRY_UNITS_H
#define FERRY_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* The numbers below are plain decimal: digits, with an optional fraction ("1.5") where one is
 * allowed and a leading '-' where a sign is. Hex ("0x10"), exponents ("1e3"), "inf", "nan",
 * '+' and spaces, which strtod and strtoll would take, are refused. */

/* Parses a duration: a non-negative decimal number followed by ms, s, m or h ("0" needs no
 * unit). Stores milliseconds. Returns 0, or -1 when the text is not a duration. */
int ferry_duration_parse(const char *text, int64_t *ms);

/* Parses a size: a non-negative decimal number ("1.5KiB" is allowed), optionally followed by
 * B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000). Stores whole bytes.
 * Returns 0, or -1. */
int ferry_size_parse(const char *text, int64_t *bytes);

/* Formats a duration the way a user would write it ("250ms", "10s", "2m"). */
void ferry_duration_format(int64_t ms, char *out, size_t size);

/* Formats a size the way a user would write it ("512KiB", "1MiB", "100"). */
void ferry_size_format(int64_t bytes, char *out, size_t size);

/* Splits "host:port" or "[v6]:port" into host (without brackets) and port 0-65535. An empty
 * host (":8080") means all interfaces and is stored as "0.0.0.0". Returns 0, or -1. */
int ferry_hostport_parse(const char *text, char *host, size_t host_size, int *port);

/* Parses a whole decimal integer ("42", "-7") within int64_t. Returns 0, or -1. */
int ferry_int_parse(const char *text, int64_t *out);

/* Parses a decimal number with an optional '-' and fraction ("2", "-0.5", "1.25"). Returns 0,
 * or -1. */
int ferry_double_parse(const char *text, double *out);

#endif
