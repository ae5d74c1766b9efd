/*
 * base64.h - RFC 4648 base64: the standard alphabet (section 4, padded) for JSON bodies and
 * the URL-safe one (section 5, unpadded) for values that travel in URLs, such as scan cursors.
 * Where a client may send either (keys with ?key_format=base64, protobuf bytes in JSON), one
 * decode with FERRY_BASE64_EITHER takes both, so no caller decodes the same text twice.
 */
#ifndef FERRY_BASE64_H
#define FERRY_BASE64_H

#include <stddef.h>

#include "core/buf.h"

enum ferry_base64_alphabet {
    FERRY_BASE64_STD, /* A-Z a-z 0-9 + /, padded with = */
    FERRY_BASE64_URL, /* A-Z a-z 0-9 - _, no padding */
    /* Decoding only (encoding writes FERRY_BASE64_STD): either alphabet, decided by the first
     * of + / - _ in the text. A text that mixes them (+ with -, say) is refused: no encoder
     * writes one, so it is a mistake rather than a key. */
    FERRY_BASE64_EITHER,
};

/* Appends the base64 of p[0..n) to out. Returns 0, or -1 when out's cap was reached. */
int ferry_base64_encode(struct ferry_buf *out, const void *p, size_t n,
                        enum ferry_base64_alphabet abc);

/* Decodes buf[0..len) in place (padding optional, no whitespace). Returns 0 with *out_len
 * set, or -1 when it is not base64 of that alphabet; buf's bytes are undefined after -1, so a
 * caller that wants another try must decode a copy. */
int ferry_base64_decode(char *buf, size_t len, enum ferry_base64_alphabet abc, size_t *out_len);

#endif
