/*
 * topic_name.c - Kafka's rules for topic names (see topic_name.h): ASCII letters, digits, '.',
 * '_' and '-', at most 249 of them, and neither "." nor "..", which would name directories
 * that are not topics on the broker's disk.
 */
#include "core/topic_name.h"

#include <stdio.h>

#define ALLOWED "but Kafka allows only ASCII letters, digits, '.', '_' and '-'"

static int legal_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Returns the index of the first character Kafka refuses, or len when there is none. */
static size_t first_illegal(const char *name, size_t len)
{
    size_t i = 0;
    while (i < len && legal_char(name[i]))
        i++;
    return i;
}

static int is_dots(const char *name, size_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

int ferry_topic_name_valid(const char *name, size_t len)
{
    return len > 0 && len <= FERRY_TOPIC_NAME_MAX && !is_dots(name, len) &&
           first_illegal(name, len) == len;
}

/* Says which character of name (legal up to at) Kafka refuses; a byte that would not print is
 * named by its value and position instead of quoting the name around it. */
static void describe_illegal(const char *name, size_t len, size_t at, char *errstr,
                             size_t errstr_size)
{
    unsigned char bad = (unsigned char)name[at];

    if (bad >= ' ' && bad < 0x7f)
        snprintf(errstr, errstr_size, "topic name '%.*s' holds '%c', %s", (int)len, name, bad,
                 ALLOWED);
    else
        snprintf(errstr, errstr_size, "topic name holds byte 0x%02x at offset %zu, %s", bad, at,
                 ALLOWED);
}

int ferry_topic_name_check(const char *name, size_t len, char *errstr, size_t errstr_size)
{
    size_t at = first_illegal(name, len);

    if (len == 0)
        snprintf(errstr, errstr_size, "expected a topic name, got an empty one");
    else if (len > FERRY_TOPIC_NAME_MAX)
        snprintf(errstr, errstr_size, "topic name is %zu characters long, Kafka allows at most %d",
                 len, FERRY_TOPIC_NAME_MAX);
    else if (is_dots(name, len))
        snprintf(errstr, errstr_size, "'%.*s' is not allowed as a topic name", (int)len, name);
    else if (at < len)
        describe_illegal(name, len, at, errstr, errstr_size);
    else
        return 0;
    return -1;
}
