/*
 * base64.c - RFC 4648 base64 in both alphabets, for the jobs' JSON bodies and URLs.
 *
 * Decoding writes each byte over text it has already read, so it needs no second buffer; the
 * price is that a failed decode leaves the text damaged, which is why "either alphabet" is one
 * mode of one pass rather than a second attempt.
 */
#include "core/base64.h"

#include <stdint.h>

static const char std_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ferry_base64_encode(struct ferry_buf *out, const void *p, size_t n,
                        enum ferry_base64_alphabet abc)
{
    const char *a = abc == FERRY_BASE64_URL ? url_abc : std_abc;
    const unsigned char *s = p;
    char chunk[256];
    size_t used = 0;
    int result = 0;

    for (size_t i = 0; !result && i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        v |= i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0;
        v |= i + 2 < n ? s[i + 2] : 0;
        chunk[used++] = a[v >> 18 & 63];
        chunk[used++] = a[v >> 12 & 63];
        if (i + 1 < n || abc == FERRY_BASE64_STD)
            chunk[used++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        if (i + 2 < n || abc == FERRY_BASE64_STD)
            chunk[used++] = i + 2 < n ? a[v & 63] : '=';
        if (used + 4 > sizeof(chunk) || i + 3 >= n) {
            result = ferry_buf_add(out, chunk, used);
            used = 0;
        }
    }
    return result;
}

/* The characters for 62 and 63 in alphabet abc, or NULL for FERRY_BASE64_EITHER. */
static const char *last_two(enum ferry_base64_alphabet abc)
{
    if (abc == FERRY_BASE64_EITHER)
        return NULL;
    return abc == FERRY_BASE64_URL ? "-_" : "+/";
}

/* The value of c, or -1. *two is the pair from last_two; a NULL one is set by the first of
 * + / - _ seen, which fixes the alphabet for the rest of the text. */
static int value_of(unsigned char c, const char **two)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (!*two && (c == '+' || c == '/'))
        *two = "+/";
    else if (!*two && (c == '-' || c == '_'))
        *two = "-_";
    if (*two && c == (unsigned char)(*two)[0])
        return 62;
    if (*two && c == (unsigned char)(*two)[1])
        return 63;
    return -1;
}

int ferry_base64_decode(char *buf, size_t len, enum ferry_base64_alphabet abc, size_t *out_len)
{
    const char *two = last_two(abc);
    size_t n = len, o = 0;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 0 && n > 0 && buf[n - 1] == '=')
        n -= 1 + (buf[n - 2] == '=');
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = value_of((unsigned char)buf[i], &two);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    *out_len = o;
    return 0;
}
