/*
 * jsonscan.c - the JSON cursor of the ingest parsers (see jsonscan.h).
 *
 * Values are skipped structurally (strings, brackets, runs of scalar bytes) and the span found
 * is then checked by ferry_json_is_valid(), so strictness lives in one place (json_check.c).
 * Strings that the parsers need as bytes (member names, base64, header names and values) are
 * decoded here, with the same rules: no raw control characters, valid escapes, no lone
 * surrogates, valid UTF-8.
 */
#include "ingest/jsonscan.h"
#include "core/json_check.h"

#include <string.h>

void ferry_jscan_init(struct ferry_jscan *s, const char *p, size_t n)
{
    s->start = p;
    s->p = p;
    s->end = p + n;
    s->error = NULL;
}

static void skip_ws(struct ferry_jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int fail(struct ferry_jscan *s, const char *why)
{
    s->error = why;
    return -1;
}

enum ferry_jtype ferry_jscan_peek(struct ferry_jscan *s)
{
    skip_ws(s);
    if (s->p == s->end)
        return FERRY_JSON_INVALID;
    switch (*s->p) {
    case 'n':
        return FERRY_JSON_NULL;
    case 'f':
        return FERRY_JSON_FALSE;
    case 't':
        return FERRY_JSON_TRUE;
    case '"':
        return FERRY_JSON_STRING;
    case '[':
        return FERRY_JSON_ARRAY;
    case '{':
        return FERRY_JSON_OBJECT;
    default:
        return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) ? FERRY_JSON_NUMBER
                                                                : FERRY_JSON_INVALID;
    }
}

/* p is at an opening quote; returns the byte after the closing one, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            if (++p == end)
                return NULL;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

static int scalar_byte(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '+' || c == '.';
}

/* Finds the end of the value starting at p without checking it; NULL when it never ends. */
static const char *skip_structure(const char *p, const char *end)
{
    int depth = 0;

    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && scalar_byte(*p))
            p++;
        return p;
    }
    while (p < end) {
        if (*p == '"') {
            p = skip_string(p, end);
            if (!p)
                return NULL;
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return NULL;
}

int ferry_jscan_value(struct ferry_jscan *s, const char **span, size_t *len)
{
    const char *end;

    if (ferry_jscan_peek(s) == FERRY_JSON_INVALID)
        return fail(s, "expected a value");
    end = skip_structure(s->p, s->end);
    if (!end || !ferry_json_is_valid(s->p, (size_t)(end - s->p)))
        return fail(s, "invalid JSON");
    *span = s->p;
    *len = (size_t)(end - s->p);
    s->p = end;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes a \u escape at s->p (just after the backslash and 'u'), a surrogate pair included,
 * into out. Returns the bytes written, or 0 on error. */
static size_t decode_u(struct ferry_jscan *s, char *out)
{
    unsigned hi, lo;

    if (s->end - s->p < 4 || hex4(s->p, &hi))
        return 0;
    s->p += 4;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return 0;
    if (hi < 0xd800 || hi > 0xdbff)
        return utf8_put(hi, out);
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
        lo < 0xdc00 || lo > 0xdfff)
        return 0;
    s->p += 6;
    return utf8_put(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00), out);
}

/* Decodes the escape after a backslash (s->p at the byte after it) into out. Returns the
 * bytes written, or 0 on error. */
static size_t decode_escape(struct ferry_jscan *s, char *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit;

    if (s->p == s->end)
        return 0;
    if (*s->p == 'u') {
        s->p++;
        return decode_u(s, out);
    }
    hit = memchr(from, *s->p, sizeof(from) - 1);
    if (!hit)
        return 0;
    out[0] = to[hit - from];
    s->p++;
    return 1;
}

/* Decodes a string into out, writing at most cap bytes; *truncated is set when more were
 * decoded than fit (the rest is still checked). */
static int decode_string(struct ferry_jscan *s, char *out, size_t cap, size_t *len, int *truncated)
{
    size_t n = 0;
    char tmp[4];

    *truncated = 0;
    if (ferry_jscan_peek(s) != FERRY_JSON_STRING)
        return fail(s, "expected a string");
    for (s->p++; s->p < s->end;) {
        unsigned char c = (unsigned char)*s->p;
        size_t k;
        if (c == '"') {
            s->p++;
            *len = n < cap ? n : cap;
            if (!*truncated && !ferry_utf8_is_valid(out, *len))
                return fail(s, "invalid UTF-8 in a string");
            return 0;
        }
        if (c < 0x20)
            return fail(s, "control character in a string");
        if (c != '\\') {
            tmp[0] = (char)c;
            k = 1;
            s->p++;
        } else {
            s->p++;
            k = decode_escape(s, tmp);
            if (!k)
                return fail(s, "invalid escape in a string");
        }
        if (n + k <= cap)
            memcpy(out + n, tmp, k);
        else
            *truncated = 1;
        n += k;
    }
    return fail(s, "unterminated string");
}

int ferry_jscan_string(struct ferry_jscan *s, char *out, size_t *len)
{
    int truncated;
    return decode_string(s, out, (size_t)-1, len, &truncated);
}

int ferry_jscan_int(struct ferry_jscan *s, int64_t *v)
{
    const char *p;
    int neg = 0;
    uint64_t n = 0;

    if (ferry_jscan_peek(s) != FERRY_JSON_NUMBER)
        return fail(s, "expected an integer");
    p = s->p;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == s->end || *p < '0' || *p > '9' ||
        (*p == '0' && p + 1 < s->end && p[1] >= '0' && p[1] <= '9'))
        return fail(s, "expected an integer");
    for (; p < s->end && *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > (uint64_t)INT64_MAX)
            return fail(s, "integer out of range");
    }
    if (p < s->end && scalar_byte(*p))
        return fail(s, "expected an integer");
    *v = neg ? -(int64_t)n : (int64_t)n;
    s->p = p;
    return 0;
}

int ferry_jscan_enter(struct ferry_jscan *s, char open)
{
    skip_ws(s);
    if (s->p == s->end || *s->p != open)
        return fail(s, open == '{' ? "expected an object" : "expected an array");
    s->p++;
    return 0;
}

/* Reads what comes before the next item of a container closed by `close`: nothing for the
 * first one, else a comma. Returns 1 when an item follows, 0 after the close, -1 on error. */
static int next_item(struct ferry_jscan *s, size_t *index, char close)
{
    skip_ws(s);
    if (s->p == s->end)
        return fail(s, close == '}' ? "unterminated object" : "unterminated array");
    if (*s->p == close) {
        s->p++;
        return 0;
    }
    if (*index > 0) {
        if (*s->p != ',')
            return fail(s, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        s->p++;
    }
    (*index)++;
    return 1;
}

int ferry_jscan_member(struct ferry_jscan *s, size_t *index, char name[FERRY_JSCAN_NAME_MAX + 1],
                       int *truncated)
{
    size_t len;
    int rc = next_item(s, index, '}');

    if (rc <= 0)
        return rc;
    if (decode_string(s, name, FERRY_JSCAN_NAME_MAX, &len, truncated))
        return fail(s, "expected a member name");
    name[*truncated ? 0 : len] = '\0';
    skip_ws(s);
    if (s->p == s->end || *s->p != ':')
        return fail(s, "expected ':'");
    s->p++;
    return 1;
}

int ferry_jscan_element(struct ferry_jscan *s, size_t *index)
{
    return next_item(s, index, ']');
}

int ferry_jscan_finish(struct ferry_jscan *s)
{
    skip_ws(s);
    return s->p == s->end ? 0 : fail(s, "unexpected text after the value");
}

size_t ferry_jscan_offset(const struct ferry_jscan *s)
{
    return (size_t)(s->p - s->start);
}

size_t ferry_json_compact(const char *span, size_t len, char *out)
{
    size_t n = 0;
    int in_string = 0;

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

/* Parses a path segment of digits as an array index; -1 when it is not one. */
static long long segment_index(const char *seg, size_t len)
{
    long long v = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return -1;
        v = v * 10 + (seg[i] - '0');
    }
    return v;
}

/* Moves the cursor into the member named seg[0..len) of the object at the cursor. Returns 1
 * when found, 0 when not, -1 on invalid text. */
static int enter_member(struct ferry_jscan *s, const char *seg, size_t len)
{
    char name[FERRY_JSCAN_NAME_MAX + 1];
    const char *skip;
    size_t index = 0, skip_len;
    int truncated, rc;

    if (ferry_jscan_enter(s, '{'))
        return -1;
    while ((rc = ferry_jscan_member(s, &index, name, &truncated)) == 1) {
        if (!truncated && strlen(name) == len && memcmp(name, seg, len) == 0)
            return 1;
        if (ferry_jscan_value(s, &skip, &skip_len))
            return -1;
    }
    return rc;
}

/* Moves the cursor into element `want` of the array at the cursor; as enter_member. */
static int enter_element(struct ferry_jscan *s, long long want)
{
    const char *skip;
    size_t index = 0, skip_len;
    int rc;

    if (ferry_jscan_enter(s, '['))
        return -1;
    while ((rc = ferry_jscan_element(s, &index)) == 1) {
        if ((long long)index - 1 == want)
            return 1;
        if (ferry_jscan_value(s, &skip, &skip_len))
            return -1;
    }
    return rc;
}

int ferry_json_find(const char *p, size_t n, const char *path, const char **span, size_t *len,
                    enum ferry_jtype *type)
{
    struct ferry_jscan s;
    const char *seg = path;

    ferry_jscan_init(&s, p, n);
    while (*seg) {
        size_t seg_len = strcspn(seg, ".");
        enum ferry_jtype t = ferry_jscan_peek(&s);
        long long idx = segment_index(seg, seg_len);
        int rc = t == FERRY_JSON_OBJECT              ? enter_member(&s, seg, seg_len)
                 : t == FERRY_JSON_ARRAY && idx >= 0 ? enter_element(&s, idx)
                                                     : 0;
        if (rc <= 0)
            return rc;
        seg += seg_len + (seg[seg_len] == '.');
    }
    *type = ferry_jscan_peek(&s);
    return ferry_jscan_value(&s, span, len) ? -1 : 1;
}
