/*
 * log.c - structured log lines (logfmt or JSON) on stderr.
 *
 * The level and format are set once at start-up, before threads exist, and read without locks
 * afterwards. Each line is formatted into a bounded stack buffer and written with one write(2).
 * Lines that may repeat (one per failed request, per refused client, per reconnect) go through
 * a call site's ferry_log_repeat: at most one per FERRY_LOG_REPEAT_MS and instance, and the next
 * one written says how many were held back.
 */
#include "core/log.h"
#include "core/clock.h"
#include "core/hex.h"
#include "core/json.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_MSG_MAX 3072
#define LOG_ESCAPE_MAX 6 /* the longest form of one character: a \u escape */

static enum ferry_log_level min_level = FERRY_LOG_INFO;
static enum ferry_log_format out_format = FERRY_LOG_LOGFMT;
static pthread_mutex_t repeat_lock = PTHREAD_MUTEX_INITIALIZER; /* every ferry_log_repeat */

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

/* Writes the escape of the ASCII byte c (a quote, a backslash or a control character) to out,
 * which has room for LOG_ESCAPE_MAX bytes; returns how many it wrote. */
static size_t escape_ascii(unsigned char c, char *out)
{
    static const char short_forms[] = "\"\"\\\\\nn\rr\tt\bb\ff";

    for (const char *p = short_forms; *p; p += 2) {
        if (c == (unsigned char)p[0]) {
            out[0] = '\\';
            out[1] = p[1];
            return 2;
        }
    }
    memcpy(out, "\\u00", 4);
    out[4] = ferry_hex_lower(c >> 4);
    out[5] = ferry_hex_lower(c);
    return 6;
}

/* Writes the character at s (n bytes left) to out, escaped, or U+FFFD in place of an ill-formed
 * UTF-8 sequence; sets *wrote and returns how many bytes of s it used. */
static size_t quote_one(const char *s, size_t n, char *out, size_t *wrote)
{
    unsigned char c = (unsigned char)*s;
    int ok;
    size_t used;

    if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
        *wrote = escape_ascii(c, out);
        return 1;
    }
    used = ferry_json_utf8_next(s, n, &ok);
    if (!ok) {
        memcpy(out, "\xEF\xBF\xBD", 3);
        *wrote = 3;
        return used;
    }
    memcpy(out, s, used);
    *wrote = used;
    return used;
}

size_t ferry_log_quote(char *buf, size_t pos, size_t cap, const char *s)
{
    size_t n = strlen(s), i = 0, wrote;

    if (pos + 2 > cap)
        return pos;
    buf[pos++] = '"';
    while (i < n && pos + LOG_ESCAPE_MAX + 1 <= cap) {
        i += quote_one(s + i, n - i, buf + pos, &wrote);
        pos += wrote;
    }
    buf[pos++] = '"';
    return pos;
}

/* logfmt values go bare only when they are printable ASCII without spaces, quotes, '=' or
 * '\\'; anything else (UTF-8 included) is quoted, so that ferry_log_quote cleans it. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\')
            return 1;
    }
    return 0;
}

static size_t append_field(char *buf, size_t pos, size_t cap, const char *key, const char *value)
{
    if (pos >= cap)
        return pos;
    if (out_format == FERRY_LOG_JSON) {
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s\"%s\":", pos > 1 ? "," : "", key);
        return pos < cap ? ferry_log_quote(buf, pos, cap, value) : pos;
    }
    pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s=", pos > 0 ? " " : "", key);
    if (pos >= cap)
        return pos;
    if (needs_quotes(value))
        return ferry_log_quote(buf, pos, cap, value);
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

static void write_line(enum ferry_log_level level, const char *sub, const char *inst,
                       const char *msg)
{
    char line[LOG_LINE_MAX], when[40];
    size_t pos = 0, cap = sizeof(line) - 2;

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

void ferry_log_write(enum ferry_log_level level, const char *sub, const char *inst, const char *fmt,
                     ...)
{
    char msg[LOG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    write_line(level, sub, inst, msg);
}

/* ---- repeated lines ---- */

/* Whether slot s may be given to another instance at now_ms: its instance wrote no line for
 * FERRY_LOG_REPEAT_IDLE_MS. */
static int repeat_slot_idle(const struct ferry_log_repeat_slot *s, int64_t now_ms)
{
    return now_ms - s->last_ms >= FERRY_LOG_REPEAT_IDLE_MS;
}

/* The slot of inst: its own, a free one, an idle one, or the one every further instance
 * shares. */
static struct ferry_log_repeat_slot *repeat_slot(struct ferry_log_repeat *rep, const char *inst,
                                                 int64_t now_ms)
{
    struct ferry_log_repeat_slot *idle = NULL;

    for (size_t i = 0; i < FERRY_LOG_REPEAT_SLOTS; i++) {
        struct ferry_log_repeat_slot *s = &rep->slots[i];
        if (s->used && strcmp(s->inst, inst) == 0)
            return s;
        if (!s->used) {
            idle = s;
            break;
        }
        if (!idle && repeat_slot_idle(s, now_ms))
            idle = s;
    }
    if (!idle)
        return &rep->others;
    rep->others.suppressed += idle->suppressed; /* told with the next line of the others */
    memset(idle, 0, sizeof(*idle));
    idle->used = 1;
    snprintf(idle->inst, sizeof(idle->inst), "%s", inst);
    return idle;
}

int ferry_log_repeat_due(struct ferry_log_repeat *rep, const char *inst, int64_t now_ms,
                         uint64_t *suppressed, int64_t *since_ms)
{
    struct ferry_log_repeat_slot *s;
    int due;

    pthread_mutex_lock(&repeat_lock);
    s = repeat_slot(rep, inst ? inst : "", now_ms);
    due = !s->written || now_ms - s->last_ms >= FERRY_LOG_REPEAT_MS;
    if (due) {
        *suppressed = s->suppressed;
        *since_ms = s->written ? now_ms - s->last_ms : 0;
        s->suppressed = 0;
        s->last_ms = now_ms;
        s->written = 1;
    } else
        s->suppressed++;
    pthread_mutex_unlock(&repeat_lock);
    return due;
}

void ferry_log_write_repeated(struct ferry_log_repeat *rep, enum ferry_log_level level,
                              const char *sub, const char *inst, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX];
    uint64_t suppressed;
    int64_t since_ms;
    size_t len;
    va_list ap;

    if (!ferry_log_repeat_due(rep, inst, ferry_clock_ms(), &suppressed, &since_ms))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    len = strlen(msg);
    if (suppressed && len < sizeof(msg))
        snprintf(msg + len, sizeof(msg) - len, " (and %" PRIu64 " more like it in the last %.0f s)",
                 suppressed, (double)since_ms / 1000.0);
    write_line(level, sub, inst, msg);
}
