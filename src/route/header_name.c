/*
 * header_name.c - what an HTTP header name may be (see header_name.h).
 */
#include "route/header_name.h"

#include <string.h>

int ferry_header_name_is_token(const char *name)
{
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", *c))
            return 0;
    return *name != '\0';
}
