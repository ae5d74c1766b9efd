/*
 * log.c - structured log lines (logfmt or JSON) on stderr.
 *
 * The level and format are set once at start-up, before threads exist, and read without locks
 * afterwards. Each line is formatted into a bounded stack buffer and written with one write(2).
 */
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_MSG_MAX 3072

static enum ferry_log_level min_level = FERRY_LOG_INFO;
static enum ferry_log_format out_format = FERRY_LOG_LOGFMT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ferry_log_setup(enum ferry_log_level level, enum ferry_log_format format)
{
    min_level = level;
    out_format = format;
}

int ferry_log_enabled(enum ferry_log_level level)
{
    return level >= min_level;
}

int ferry_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return FERRY_LOG_WARN;
    return -1;
}

/* Appends s quoted and escaped for logfmt or JSON (both accept JSON-style escapes). */
static size_t append_quoted(char *buf, size_t pos, size_t cap, const char *s)
{
    if (pos + 1 < cap)
        buf[pos++] = '"';
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c == '\n') {
            buf[pos++] = '\\';
            buf[pos++] = 'n';
        } else if (c < 0x20) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
        } else {
            buf[pos++] = (char)c;
        }
    }
    if (pos + 1 < cap)
        buf[pos++] = '"';
    return pos;
}

/* logfmt values need quotes only when they hold spaces, quotes or '='. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    return strpbrk(s, " \"=\\\t\n") != NULL;
}

static size_t append_field(char *buf, size_t pos, size_t cap, const char *key, const char *value)
{
    if (pos >= cap)
        return pos;
    if (out_format == FERRY_LOG_JSON) {
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s\"%s\":", pos > 1 ? "," : "", key);
        return pos < cap ? append_quoted(buf, pos, cap, value) : pos;
    }
    pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s=", pos > 0 ? " " : "", key);
    if (pos >= cap)
        return pos;
    if (needs_quotes(value))
        return append_quoted(buf, pos, cap, value);
    pos += (size_t)snprintf(buf + pos, cap - pos, "%s", value);
    return pos;
}

static void format_time(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

void ferry_log_write(enum ferry_log_level level, const char *sub, const char *inst, const char *fmt,
                     ...)
{
    char line[LOG_LINE_MAX], msg[LOG_MSG_MAX], when[40];
    size_t pos = 0, cap = sizeof(line) - 2;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    format_time(when, sizeof(when));

    if (out_format == FERRY_LOG_JSON)
        line[pos++] = '{';
    pos = append_field(line, pos, cap, "ts", when);
    pos = append_field(line, pos, cap, "level", level_names[level]);
    pos = append_field(line, pos, cap, "sub", sub);
    if (inst)
        pos = append_field(line, pos, cap, "inst", inst);
    pos = append_field(line, pos, cap, "msg", msg);
    if (pos > cap)
        pos = cap;
    if (out_format == FERRY_LOG_JSON)
        line[pos++] = '}';
    line[pos++] = '\n';
    if (write(STDERR_FILENO, line, pos) < 0)
        return; /* nowhere left to report it */
}
