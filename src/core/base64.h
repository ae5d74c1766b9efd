/*
 * base64.h - RFC 4648 base64: the standard alphabet (section 4, padded) for JSON bodies and
 * the URL-safe one (section 5, unpadded) for values that travel in URLs, such as scan cursors.
 */
#ifndef FERRY_BASE64_H
#define FERRY_BASE64_H

#include <stddef.h>

#include "core/buf.h"

enum ferry_base64_alphabet {
    FERRY_BASE64_STD, /* A-Z a-z 0-9 + /, padded with = */
    FERRY_BASE64_URL, /* A-Z a-z 0-9 - _, no padding */
};

/* Appends the base64 of p[0..n) to out. Returns 0, or -1 when out's cap was reached. */
int ferry_base64_encode(struct ferry_buf *out, const void *p, size_t n,
                        enum ferry_base64_alphabet abc);

/* Decodes buf[0..len) in place (padding optional, no whitespace). Returns 0 with *out_len
 * set, or -1 when it is not base64 of that alphabet. */
int ferry_base64_decode(char *buf, size_t len, enum ferry_base64_alphabet abc, size_t *out_len);

#endif
