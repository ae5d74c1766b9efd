/*
 * header_value.c - the bytes a header value may not carry (see header_value.h).
 */
#include "core/header_value.h"

#include <string.h>

size_t ferry_header_value_unsafe(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return i;
    }
    return n;
}

int ferry_header_value_valid(const char *s)
{
    size_t len = strlen(s);

    return ferry_header_value_unsafe(s, len) == len;
}
