/*
 * base64.c - RFC 4648 base64 in both alphabets, for the jobs' JSON bodies and URLs.
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

static int value_of(unsigned char c, enum ferry_base64_alphabet abc)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (abc == FERRY_BASE64_URL ? '-' : '+'))
        return 62;
    if (c == (abc == FERRY_BASE64_URL ? '_' : '/'))
        return 63;
    return -1;
}

int ferry_base64_decode(char *buf, size_t len, enum ferry_base64_alphabet abc, size_t *out_len)
{
    size_t n = len, o = 0;
    unsigned acc = 0;
    int bits = 0;

    if (len % 4 == 0 && n > 0 && buf[n - 1] == '=')
        n -= 1 + (buf[n - 2] == '=');
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = value_of((unsigned char)buf[i], abc);
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
