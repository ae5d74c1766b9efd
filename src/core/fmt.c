/*
 * fmt.c - numbers and dates as text, for headers written on every request (see fmt.h).
 *
 * The date: days since 1970 become a civil date by counting in 400-year eras, which all have
 * the same 146,097 days, and inside an era in years that start on March 1st, so that a leap
 * day falls at the end of its year and the months from March have a fixed pattern of lengths
 * (153 days for every five of them).
 */
#include "core/fmt.h"

#include <string.h>

#define FMT_SECS_PER_DAY 86400
#define FMT_DAYS_PER_ERA 146097 /* 400 Gregorian years */
/* Days from 0000-03-01 to 1970-01-01, in the proleptic Gregorian calendar. */
#define FMT_EPOCH_FROM_MARCH_0000 719468

static const char weekdays[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

size_t ferry_fmt_int64(char out[FERRY_FMT_INT64_SIZE], int64_t v)
{
    char digits[FERRY_FMT_INT64_SIZE];
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64 */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = digits[--n];
    out[len] = '\0';
    return len;
}

/* Two digits of v (0..99) at out. */
static void put2(char *out, unsigned v)
{
    out[0] = (char)('0' + v / 10);
    out[1] = (char)('0' + v % 10);
}

struct civil {
    unsigned year, month, day; /* month 1..12 */
};

/* The date of the day that is days (>= 0) after 1970-01-01. */
static struct civil civil_from_days(int64_t days)
{
    int64_t z = days + FMT_EPOCH_FROM_MARCH_0000;
    unsigned era = (unsigned)(z / FMT_DAYS_PER_ERA);
    unsigned day_of_era = (unsigned)(z - (int64_t)era * FMT_DAYS_PER_ERA);
    /* every 4th year has 366 days, but not every 100th, but every 400th again */
    unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 -
                            day_of_era / (FMT_DAYS_PER_ERA - 1)) /
                           365;
    unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    unsigned month_from_march = (5 * day_of_year + 2) / 153; /* 0 = March .. 11 = February */
    struct civil c;

    c.day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    c.month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
    c.year = era * 400 + year_of_era + (c.month <= 2);
    return c;
}

size_t ferry_fmt_http_date(char out[FERRY_FMT_HTTP_DATE_SIZE], int64_t unix_secs)
{
    int64_t days;
    unsigned secs_of_day;
    struct civil c;

    out[0] = '\0';
    if (unix_secs < 0 || unix_secs > FERRY_FMT_HTTP_DATE_MAX)
        return 0;
    days = unix_secs / FMT_SECS_PER_DAY;
    secs_of_day = (unsigned)(unix_secs % FMT_SECS_PER_DAY);
    c = civil_from_days(days);
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    memcpy(out, weekdays[days % 7], 3);
    memcpy(out + 3, ", ", 2);
    put2(out + 5, c.day);
    out[7] = ' ';
    memcpy(out + 8, months[c.month - 1], 3);
    out[11] = ' ';
    put2(out + 12, c.year / 100);
    put2(out + 14, c.year % 100);
    out[16] = ' ';
    put2(out + 17, secs_of_day / 3600);
    out[19] = ':';
    put2(out + 20, secs_of_day / 60 % 60);
    out[22] = ':';
    put2(out + 23, secs_of_day % 60);
    memcpy(out + 25, " GMT", 5); /* with the NUL */
    return FERRY_FMT_HTTP_DATE_SIZE - 1;
}
