/*
 * hex.h - hexadecimal digits: the value of one, for the decoders that meet them (JSON's \uXXXX
 * escapes, URL percent-encoding), and the digit for a value, for the encoders that write them.
 *
 * Header-only. Any thread.
 */
#ifndef FERRY_HEX_H
#define FERRY_HEX_H

/* 0..15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for anything else. */
static inline int ferry_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The digit for the low four bits of v, in lower case: JSON and log escapes, ETags. */
static inline char ferry_hex_lower(unsigned v)
{
    return "0123456789abcdef"[v & 15];
}

/* The same in upper case: percent-encoding (RFC 3986 2.1 prefers it) and quoted-printable
 * (RFC 2045 6.7 requires it). */
static inline char ferry_hex_upper(unsigned v)
{
    return "0123456789ABCDEF"[v & 15];
}

#endif
