/*
 * log.h - the one logging macro family of ferry.
 *
 * Every line carries a level, a subsystem ("kafka", "http", "route") and, where one applies, an
 * instance name (a route's or endpoint's name). Output is logfmt by default or JSON, one line
 * per call, written to stderr with a single write(2) so that lines from threads never mix.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum ferry_log_level {
    FERRY_LOG_DEBUG,
    FERRY_LOG_INFO,
    FERRY_LOG_WARN,
    FERRY_LOG_ERROR,
};

enum ferry_log_format {
    FERRY_LOG_LOGFMT,
    FERRY_LOG_JSON,
};

/* Sets the minimum level and the format. Call before any thread starts. */
void ferry_log_setup(enum ferry_log_level level, enum ferry_log_format format);

/* Returns nonzero when a line at this level would be written. Any thread. */
int ferry_log_enabled(enum ferry_log_level level);

/* Writes one line. sub is required; inst may be NULL. Any thread. */
void ferry_log_write(enum ferry_log_level level, const char *sub, const char *inst, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Writes s between double quotes into buf[pos..cap), escaped so that the result is a valid JSON
 * string and a logfmt value: '"' and '\' are escaped, control characters and DEL become \n,
 * \t, \r, \b, \f or \u00XX, and each ill-formed UTF-8 sequence becomes one U+FFFD. When s
 * does not fit, its tail is dropped but the closing quote is still written. Returns the new
 * position (at most cap; pos itself when not even two bytes fit). Writes no terminating NUL.
 * Pure: any thread. */
size_t ferry_log_quote(char *buf, size_t pos, size_t cap, const char *s);

/* Parses "debug", "info", "warn", "error"; returns -1 on an unknown name. */
int ferry_log_level_parse(const char *name);

#define FERRY_LOG(level, sub, inst, ...)                                                           \
    do {                                                                                           \
        if (ferry_log_enabled(level))                                                              \
            ferry_log_write(level, sub, inst, __VA_ARGS__);                                        \
    } while (0)

/* A line that may repeat many times a second (one per failed request, per refused client, per
 * reconnect) is written at most once per FERRY_LOG_REPEAT_MS for each instance name, from
 * each call site; the next one written ends with "(and N more like it in the last 12 s)".
 * A call site keeps FERRY_LOG_REPEAT_SLOTS instance names; further instances share one more
 * slot, so that together they write at most one line per FERRY_LOG_REPEAT_MS. A slot whose
 * instance wrote nothing for FERRY_LOG_REPEAT_IDLE_MS goes to the next new instance (instance
 * names such as peers' addresses come and go); the lines it held back are then counted with
 * the shared slot's. */
#define FERRY_LOG_REPEAT_MS 10000
#define FERRY_LOG_REPEAT_IDLE_MS (6 * FERRY_LOG_REPEAT_MS)
#define FERRY_LOG_REPEAT_SLOTS 8
#define FERRY_LOG_REPEAT_INST_MAX 64

struct ferry_log_repeat_slot {
    char inst[FERRY_LOG_REPEAT_INST_MAX];
    int used, written;
    int64_t last_ms; /* when a line was last written */
    uint64_t suppressed;
};

struct ferry_log_repeat {
    struct ferry_log_repeat_slot slots[FERRY_LOG_REPEAT_SLOTS];
    struct ferry_log_repeat_slot others; /* every instance beyond the slots */
};

/* Whether a repeated line of inst (may be NULL) may be written at now_ms: 1 with *suppressed
 * the lines held back since the last one written *since_ms before, or 0 counting this one as
 * held back. Any thread. */
int ferry_log_repeat_due(struct ferry_log_repeat *rep, const char *inst, int64_t now_ms,
                         uint64_t *suppressed, int64_t *since_ms);

/* ferry_log_write() for a line that may repeat (see FERRY_LOG_REPEATED). Any thread. */
void ferry_log_write_repeated(struct ferry_log_repeat *rep, enum ferry_log_level level,
                              const char *sub, const char *inst, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define FERRY_LOG_REPEATED(level, sub, inst, ...)                                                  \
    do {                                                                                           \
        static struct ferry_log_repeat ferry_log_repeat_site_;                                     \
        if (ferry_log_enabled(level))                                                              \
            ferry_log_write_repeated(&ferry_log_repeat_site_, level, sub, inst, __VA_ARGS__);      \
    } while (0)

#define FLOG_WARN_REPEATED(sub, inst, ...)                                                         \
    FERRY_LOG_REPEATED(FERRY_LOG_WARN, sub, inst, __VA_ARGS__)
#define FLOG_ERROR_REPEATED(sub, inst, ...)                                                        \
    FERRY_LOG_REPEATED(FERRY_LOG_ERROR, sub, inst, __VA_ARGS__)

#define FLOG_DEBUG(sub, inst, ...) FERRY_LOG(FERRY_LOG_DEBUG, sub, inst, __VA_ARGS__)
#define FLOG_INFO(sub, inst, ...) FERRY_LOG(FERRY_LOG_INFO, sub, inst, __VA_ARGS__)
#define FLOG_WARN(sub, inst, ...) FERRY_LOG(FERRY_LOG_WARN, sub, inst, __VA_ARGS__)
#define FLOG_ERROR(sub, inst, ...) FERRY_LOG(FERRY_LOG_ERROR, sub, inst, __VA_ARGS__)

#endif
