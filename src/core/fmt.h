/*
 * fmt.h - numbers and dates as text on the hot paths of HTTP answers (a table's GET writes
 * four numbers and a date into its headers), without stdio's format parsing or the C
 * library's time zone lock, which gmtime_r takes even for UTC.
 *
 * Pure functions. Any thread.
 */
#ifndef FERRY_FMT_H
#define FERRY_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any int64 in decimal with its sign and NUL: "-9223372036854775808". */
#define FERRY_FMT_INT64_SIZE 21

/* Room for an HTTP date with its NUL: "Sun, 06 Nov 1994 08:49:37 GMT". */
#define FERRY_FMT_HTTP_DATE_SIZE 30

/* The latest second an HTTP date can name: 9999-12-31T23:59:59Z (its year has four digits). */
#define FERRY_FMT_HTTP_DATE_MAX 253402300799LL

/* Writes v in decimal and a NUL into out (FERRY_FMT_INT64_SIZE bytes). Returns the length. */
size_t ferry_fmt_int64(char out[FERRY_FMT_INT64_SIZE], int64_t v);

/* Writes the IMF-fixdate (RFC 9110 5.6.7) of unix_secs, seconds since 1970-01-01T00:00:00Z,
 * and a NUL into out: what strftime's "%a, %d %b %Y %H:%M:%S GMT" writes for gmtime_r's
 * answer in the C locale. Returns the length (29), or 0 for a time before 1970 or after
 * FERRY_FMT_HTTP_DATE_MAX, which out is then left empty for. */
size_t ferry_fmt_http_date(char out[FERRY_FMT_HTTP_DATE_SIZE], int64_t unix_secs);

#endif
