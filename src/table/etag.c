/*
 * etag.c - the name of a value's version, "<partition>:<offset>-<hash>" (see etag.h): written
 * into ETag headers (read.c, forward_get.c) and event ids (sse.c), read back from
 * If-None-Match (read.c) and Last-Event-ID (events.c).
 *
 * The hash is computed on every GET from the value it sends, so it has to be cheap for large
 * values: 8 bytes per step, each a xor, a multiply and a shift-xor, in four lanes that the CPU
 * runs side by side (a multiply waits for the one before it in its own lane only); the lanes
 * are then fed into one state with the tail, the length mixed in, and 64 bits folded to 32.
 */
#include "table/etag.h"
#include "core/fmt.h"
#include "core/hex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ETAG_HASH_DIGITS 8
#define ETAG_MUL 0x9e3779b97f4a7c15ull /* odd, bits spread: 2^64 / the golden ratio */
#define ETAG_MUL2 0xbf58476d1ce4e5b9ull

/* The 8 bytes at p as a little-endian word, so that every machine hashes alike. */
static uint64_t load_word(const unsigned char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* One step: the multiply carries each bit of h ^ w upwards, the shift-xor brings the high
 * bits back down for the next step's multiply. */
static uint64_t step(uint64_t h, uint64_t w)
{
    h = (h ^ w) * ETAG_MUL;
    return h ^ (h >> 29);
}

uint32_t ferry_etag_hash(const void *value, size_t len)
{
    const unsigned char *p = value;
    uint64_t a = ETAG_MUL2, b = ETAG_MUL, c = ETAG_MUL2 ^ ETAG_MUL, d = ETAG_MUL2 + ETAG_MUL;
    uint64_t h = ETAG_MUL2, tail = 0;
    size_t i = 0;

    /* four lanes in four variables: kept in registers, their multiplies overlap */
    for (; i + 32 <= len; i += 32) {
        a = step(a, load_word(p + i));
        b = step(b, load_word(p + i + 8));
        c = step(c, load_word(p + i + 16));
        d = step(d, load_word(p + i + 24));
    }
    h = step(step(step(step(h, a), b), c), d);
    for (; i + 8 <= len; i += 8)
        h = step(h, load_word(p + i));
    for (size_t k = 0; i + k < len; k++)
        tail |= (uint64_t)p[i + k] << (8 * k);
    h = step(h, tail);
    h ^= (uint64_t)len; /* "a" and "a\0" share their words */
    h *= ETAG_MUL2;
    h ^= h >> 32;
    h *= ETAG_MUL;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

/* The longest tag: quotes, an int32 and an int64 with their signs, ':', '-', 8 digits, NUL. */
_Static_assert(FERRY_ETAG_MAX >= 2 + 11 + 1 + 20 + 1 + 8 + 1, "FERRY_ETAG_MAX holds every tag");

int ferry_etag_format(char *out, size_t size, int32_t partition, int64_t offset, uint32_t hash,
                      int quoted)
{
    char tag[FERRY_ETAG_MAX];
    size_t n = 0;

    if (quoted)
        tag[n++] = '"';
    n += ferry_fmt_int64(tag + n, partition);
    tag[n++] = ':';
    n += ferry_fmt_int64(tag + n, offset);
    tag[n++] = '-';
    for (int shift = 4 * (ETAG_HASH_DIGITS - 1); shift >= 0; shift -= 4)
        tag[n++] = ferry_hex_lower(hash >> shift);
    if (quoted)
        tag[n++] = '"';
    if (n >= size)
        return -1;
    memcpy(out, tag, n);
    out[n] = '\0';
    return (int)n;
}

/* Reads exactly 8 lowercase hex digits, the whole of text. Returns 0, or -1. */
static int parse_hash(const char *text, uint32_t *hash)
{
    uint32_t v = 0;

    if (strlen(text) != ETAG_HASH_DIGITS)
        return -1;
    for (int i = 0; i < ETAG_HASH_DIGITS; i++) {
        char c = text[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *hash = v;
    return 0;
}

/* Reads "<partition>:<offset>" at text, up to *rest (where the offset's digits end). */
static int parse_place(const char *text, struct ferry_etag *tag, char **rest)
{
    const char *colon = strchr(text, ':');
    char *end;
    long long p, o;

    if (!colon || text[0] < '0' || text[0] > '9' || colon[1] < '0' || colon[1] > '9')
        return -1;
    errno = 0;
    p = strtoll(text, &end, 10);
    if (errno || end != colon || p > INT32_MAX)
        return -1;
    o = strtoll(colon + 1, rest, 10);
    if (errno)
        return -1;
    tag->partition = (int32_t)p;
    tag->offset = o;
    return 0;
}

int ferry_etag_parse(const char *text, size_t len, struct ferry_etag *tag)
{
    char copy[FERRY_ETAG_MAX], *rest;

    if (len >= sizeof(copy) || memchr(text, '\0', len))
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (parse_place(copy, tag, &rest))
        return -1;
    tag->has_hash = *rest == '-';
    if (!tag->has_hash)
        return *rest ? -1 : 0;
    return parse_hash(rest + 1, &tag->hash);
}

int ferry_etag_names(const struct ferry_etag *tag, int32_t partition, int64_t offset, uint32_t hash)
{
    return tag->has_hash && tag->partition == partition && tag->offset == offset &&
           tag->hash == hash;
}

int ferry_etag_matches(const char *header, const char *etag)
{
    size_t n = strlen(etag);
    const char *p = header;

    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}
