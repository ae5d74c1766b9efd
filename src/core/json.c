/*
 * json.c - a strict one-pass JSON checker and JSON string/number writers (see json.h).
 *
 * The checker is a recursive-descent scanner over the RFC 8259 grammar that only moves a
 * pointer: no tree, no allocation, recursion bounded by FERRY_JSON_MAX_DEPTH. Where it fails it
 * leaves a reason, set only on the failing path so the passing path pays nothing for messages.
 * The UTF-8 decoder follows Table 3-7 of the Unicode standard, so the checker,
 * ferry_json_utf8_is_valid and the U+FFFD replacement in ferry_json_add_string agree on what is
 * well-formed.
 */
#include "core/json.h"
#include "core/hex.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A macro's value as a string literal. */
#define TEXT_OF(x) TEXT_OF_TOKEN(x)
#define TEXT_OF_TOKEN(x) #x

struct scan {
    const unsigned char *p;
    const unsigned char *end;
    int depth;
    const char *why; /* set where the text stopped being valid */
};

static int scan_value(struct scan *s);

/* Returns the length of the UTF-8 sequence at s (n > 0 bytes available) and sets *ok. When the
 * sequence is ill-formed, the length is that of its maximal ill-formed prefix, at least 1. */
static size_t utf8_seq(const unsigned char *s, size_t n, int *ok)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need, i;

    *ok = c < 0x80;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4;
    else
        return 1;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    for (i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xBF;
    }
    *ok = 1;
    return need;
}

size_t ferry_json_utf8_next(const char *p, size_t n, int *ok)
{
    return utf8_seq((const unsigned char *)p, n, ok);
}

int ferry_json_utf8_is_valid(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    int ok;

    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        i += utf8_seq(s + i, n - i, &ok);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Marks the helpers of the failing path (kept out of the scan loops) and the pieces of the
 * passing path that must stay inside them: both moves were measured with callgrind. */
#define COLD __attribute__((cold, noinline))
#define HOT_INLINE inline __attribute__((always_inline))

/* Records why the text is not valid; returns -1 for the caller to pass up. */
static COLD int bad(struct scan *s, const char *why)
{
    s->why = why;
    return -1;
}

/* As bad(), but running out of text is the reason when it has. */
static COLD int expected(struct scan *s, const char *what)
{
    return bad(s, s->p < s->end ? what : "unexpected end of text");
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Reads the four hex digits after "\u"; returns the code unit or -1. */
static long scan_hex4(struct scan *s)
{
    long v = 0;
    int i, d;

    if (s->end - s->p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        d = ferry_hex_value((unsigned char)s->p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    s->p += 4;
    return v;
}

/* s->p is just past "\u". A high surrogate must be followed by an escaped low surrogate. */
static int scan_unicode_escape(struct scan *s)
{
    long unit = scan_hex4(s), low;

    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF))
        return -1;
    if (unit < 0xD800 || unit > 0xDBFF)
        return 0;
    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
        return -1;
    s->p += 2;
    low = scan_hex4(s);
    return low >= 0xDC00 && low <= 0xDFFF ? 0 : -1;
}

/* s->p is just past a backslash. */
static int scan_escape(struct scan *s)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p++) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 0;
    case 'u':
        return scan_unicode_escape(s);
    default:
        return -1;
    }
}

/* 1 for a byte that stands for itself inside a JSON string: ASCII from the space up, but '"'
 * (0x22) and '\\' (0x5c). A table: the scan below does one look-up per byte. */
/* clang-format off */
static const unsigned char plain_in_string[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x80 and above: the first byte of a UTF-8 sequence, checked on its own */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

/* Eight copies of byte b in a word. */
#define BYTES8(b) (0x0101010101010101ULL * (unsigned char)(b))

/* Nonzero when some byte of w is below n (n at most 0x80): subtracting n from each byte borrows
 * into that byte's top bit only for bytes below n, and "& ~w" drops bytes whose top bit was set
 * already. The classic zero-byte test is the case n = 1. */
static uint64_t has_byte_below(uint64_t w, unsigned char n)
{
    return (w - BYTES8(n)) & ~w & BYTES8(0x80);
}

/* 1 when all eight bytes of w are plain_in_string: none below the space, none '"' or '\\' (a
 * byte equal to c is the zero byte of w ^ BYTES8(c)), none 0x80 or above. */
static int word_is_plain(uint64_t w)
{
    uint64_t special = has_byte_below(w, 0x20) | has_byte_below(w ^ BYTES8('"'), 1) |
                       has_byte_below(w ^ BYTES8('\\'), 1) | (w & BYTES8(0x80));

    return special == 0;
}

/* Skips the plain bytes at p: the common case, eight at a time while they last, then by the
 * table, in loops on locals (a store through s would make the compiler reload s->p for every
 * byte). */
static HOT_INLINE const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
    uint64_t w;

    while (end - p >= 8) {
        memcpy(&w, p, sizeof(w));
        if (!word_is_plain(w))
            break;
        p += 8;
    }
    while (p < end && plain_in_string[*p])
        p++;
    return p;
}

/* s->p is at the opening quote. */
static int scan_string(struct scan *s)
{
    unsigned char c;
    int ok;

    s->p++;
    while (s->p < s->end) {
        s->p = skip_plain(s->p, s->end);
        if (s->p == s->end)
            break;
        c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return bad(s, "control character in a string");
        if (c == '\\') {
            s->p++;
            if (scan_escape(s))
                return bad(s, "invalid escape in a string");
        } else if (c < 0x80) {
            s->p++;
        } else {
            size_t len = utf8_seq(s->p, (size_t)(s->end - s->p), &ok);
            if (!ok)
                return bad(s, "invalid UTF-8 in a string"); /* at the sequence's first byte */
            s->p += len;
        }
    }
    return bad(s, "unterminated string");
}

/* Skips one or more digits; returns -1 when there is none. */
static int scan_digits(struct scan *s)
{
    const unsigned char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start ? 0 : -1;
}

static int accept(struct scan *s, unsigned char c)
{
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int scan_number(struct scan *s)
{
    int minus = accept(s, '-');

    if (accept(s, '0')) {
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            return bad(s, "invalid number (leading zero)");
    } else if (scan_digits(s)) {
        return minus ? expected(s, "invalid number") : bad(s, "expected a value");
    }
    if (accept(s, '.') && scan_digits(s))
        return expected(s, "invalid number");
    if (accept(s, 'e') || accept(s, 'E')) {
        if (!accept(s, '+'))
            accept(s, '-');
        return scan_digits(s) ? expected(s, "invalid number") : 0;
    }
    return 0;
}

static int scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return bad(s, "expected a value");
    s->p += n;
    return 0;
}

/* Scans "value, value ...]" after '[' (close is ']') or "key: value, ...}" after '{'. */
static int scan_items(struct scan *s, unsigned char close)
{
    do {
        skip_ws(s);
        if (close == '}') {
            if (s->p >= s->end || *s->p != '"')
                return expected(s, "expected a member name");
            if (scan_string(s))
                return -1;
            skip_ws(s);
            if (!accept(s, ':'))
                return expected(s, "expected ':'");
        }
        if (scan_value(s))
            return -1;
        skip_ws(s);
    } while (accept(s, ','));
    if (!accept(s, close))
        return expected(s, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    return 0;
}

static int scan_container(struct scan *s, unsigned char close)
{
    if (++s->depth > FERRY_JSON_MAX_DEPTH)
        return bad(s, "nested deeper than " TEXT_OF(FERRY_JSON_MAX_DEPTH) " levels");
    skip_ws(s);
    if (!accept(s, close) && scan_items(s, close))
        return -1;
    s->depth--;
    return 0;
}

/* Scans one value and the whitespace before it. */
static int scan_value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end)
        return bad(s, "unexpected end of text");
    switch (*s->p) {
    case '{':
        s->p++;
        return scan_container(s, '}');
    case '[':
        s->p++;
        return scan_container(s, ']');
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return scan_number(s);
    }
}

/* Scans all of s's text: one value between optional whitespace. Returns 0, or -1 with s->why
 * set and s->p where the text went wrong. */
static HOT_INLINE int scan_text(struct scan *s)
{
    if (!s->p)
        return bad(s, "no text");
    if (scan_value(s))
        return -1;
    skip_ws(s);
    return s->p == s->end ? 0 : bad(s, "unexpected text after the value");
}

int ferry_json_check(const char *p, size_t n, struct ferry_json_error *err)
{
    /* p may be NULL with n 0 (a tombstone's value): NULL + 0 is undefined, so no sum then. */
    struct scan s = {(const unsigned char *)p, p ? (const unsigned char *)p + n : NULL, 0, NULL};
    int result = scan_text(&s);

    if (result && err) {
        err->why = s.why;
        err->offset = p ? (size_t)(s.p - (const unsigned char *)p) : 0;
    }
    return result;
}

int ferry_json_is_valid(const char *p, size_t n)
{
    struct scan s = {(const unsigned char *)p, p ? (const unsigned char *)p + n : NULL, 0, NULL};

    return scan_text(&s) == 0;
}

size_t ferry_json_value_len(const char *p, size_t n, struct ferry_json_error *err)
{
    struct scan s = {(const unsigned char *)p, p ? (const unsigned char *)p + n : NULL, 0, NULL};

    if (p && scan_value(&s) == 0)
        return (size_t)(s.p - (const unsigned char *)p);
    if (err) {
        err->why = p ? s.why : "no text";
        err->offset = p ? (size_t)(s.p - (const unsigned char *)p) : 0;
    }
    return 0;
}

/* Returns how many bytes from s can be copied into a JSON string unchanged. */
static HOT_INLINE size_t plain_run(const unsigned char *s, size_t n)
{
    size_t i = 0, len;
    int ok;

    while (i < n) {
        if (s[i] < 0x80) {
            if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
                break;
            i++;
            continue;
        }
        len = utf8_seq(s + i, n - i, &ok);
        if (!ok)
            break;
        i += len;
    }
    return i;
}

/* Appends the escape for the byte at s, or U+FFFD for an ill-formed sequence; sets *used. */
static int add_escape(struct ferry_buf *out, const unsigned char *s, size_t n, size_t *used)
{
    char u[6] = {'\\', 'u', '0', '0', ferry_hex_lower(s[0] >> 4), ferry_hex_lower(s[0])};
    int ok;

    *used = 1;
    switch (s[0]) {
    case '"':
        return ferry_buf_add(out, "\\\"", 2);
    case '\\':
        return ferry_buf_add(out, "\\\\", 2);
    case '\b':
        return ferry_buf_add(out, "\\b", 2);
    case '\f':
        return ferry_buf_add(out, "\\f", 2);
    case '\n':
        return ferry_buf_add(out, "\\n", 2);
    case '\r':
        return ferry_buf_add(out, "\\r", 2);
    case '\t':
        return ferry_buf_add(out, "\\t", 2);
    }
    if (s[0] < 0x20)
        return ferry_buf_add(out, u, sizeof(u));
    *used = utf8_seq(s, n, &ok);
    return ferry_buf_add(out, "\xEF\xBF\xBD", 3);
}

/* Appends the escaped form of p[0..n); on failure out may hold part of it. */
static HOT_INLINE int add_escaped(struct ferry_buf *out, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, used;
    int result = 0;

    while (!result && i < n) {
        used = plain_run(s + i, n - i);
        if (used)
            result = ferry_buf_add(out, p + i, used);
        else
            result = add_escape(out, s + i, n - i, &used);
        i += used;
    }
    return result;
}

int ferry_json_add_escaped(struct ferry_buf *out, const char *p, size_t n)
{
    const struct ferry_buf saved = *out;
    int result = add_escaped(out, p, n);

    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}

int ferry_json_add_string(struct ferry_buf *out, const char *p, size_t n)
{
    const struct ferry_buf saved = *out;
    int result = ferry_buf_addc(out, '"');

    if (!result)
        result = add_escaped(out, p, n);
    if (!result)
        result = ferry_buf_addc(out, '"');
    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}

int ferry_json_add_int(struct ferry_buf *out, int64_t v)
{
    return ferry_buf_addi(out, v);
}

int ferry_json_add_real(struct ferry_buf *out, double d)
{
    char text[FERRY_JSON_REAL_TEXT_MAX];
    int prec, n = 0;

    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(text, sizeof(text) - 2, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    if (!strpbrk(text, ".eE")) {
        memcpy(text + n, ".0", 3);
        n += 2;
    }
    return ferry_buf_add(out, text, (size_t)n);
}

/* 1 when some byte of p[0..n) is JSON whitespace. In valid JSON text every byte below 0x21 is
 * whitespace (other control characters are invalid even in strings), so a word at a time asks
 * only whether a byte is below 0x21. */
static int has_space(const unsigned char *p, size_t n)
{
    uint64_t w;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, sizeof(w));
        if (has_byte_below(w, 0x21))
            return 1;
    }
    for (; i < n; i++)
        if (p[i] < 0x21)
            return 1;
    return 0;
}

size_t ferry_json_compact(const char *span, size_t len, char *out)
{
    size_t n = 0;
    int in_string = 0;

    if (!has_space((const unsigned char *)span, len)) { /* the common case: compact already */
        if (out != span)
            memmove(out, span, len);
        return len;
    }
    for (size_t i = 0; i < len; i++) {
        char c = span[i];
        if (in_string) {
            out[n++] = c;
            if (c == '\\' && i + 1 < len)
                out[n++] = span[++i];
            else if (c == '"')
                in_string = 0;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            out[n++] = c;
            in_string = c == '"';
        }
    }
    return n;
}
