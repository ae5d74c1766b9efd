/*
 * json_scan.c - the JSON cursor, string decoding and path lookup (see json_scan.h).
 *
 * A value the cursor reads is checked by json.c's scanner, which also finds where it ends
 * (ferry_json_value_len), so strictness lives in one place. Strings that callers need as bytes
 * (member names, base64, header names and values, what a template renders) are decoded here,
 * with the same rules: no raw control characters, valid escapes, no lone surrogates, valid
 * UTF-8. A path lookup walks text that was checked already, so it only skips structure.
 */
#include "core/json_scan.h"
#include "core/hex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ferry_json_cursor_init(struct ferry_json_cursor *c, const char *p, size_t n)
{
    c->start = p;
    c->p = p;
    c->end = p ? p + n : NULL; /* NULL + 0 is undefined */
    c->error = NULL;
}

static void skip_ws(struct ferry_json_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int fail(struct ferry_json_cursor *c, const char *why)
{
    c->error = why;
    return -1;
}

enum ferry_json_type ferry_json_peek(struct ferry_json_cursor *c)
{
    skip_ws(c);
    if (c->p == c->end)
        return FERRY_JSON_INVALID;
    switch (*c->p) {
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
        return (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) ? FERRY_JSON_NUMBER
                                                                : FERRY_JSON_INVALID;
    }
}

/* p is at an opening quote; returns the byte after the closing one, or NULL. Byte by byte:
 * most strings skipped here are short names and values, where a word-at-a-time scan costs more
 * than it saves (measured with callgrind on REST Proxy bodies). */
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

/* 1 when the number or literal of n bytes at c->p runs on into more of the same ("truex",
 * "1e5x"): one bad value, not a good one with something after it, so the message names it. */
static int runs_on(const struct ferry_json_cursor *c, size_t n)
{
    return scalar_byte(*c->p) && c->p + n < c->end && scalar_byte(c->p[n]);
}

/* On failure the cursor is left where the value went wrong, so that the offset a message
 * gives (ferry_json_offset) is the byte at fault, not the value's first. */
int ferry_json_read_value(struct ferry_json_cursor *c, const char **span, size_t *len)
{
    struct ferry_json_error err;
    size_t n;

    if (ferry_json_peek(c) == FERRY_JSON_INVALID)
        return fail(c, "expected a value");
    n = ferry_json_value_len(c->p, (size_t)(c->end - c->p), &err);
    if (!n) {
        c->p += err.offset;
        return fail(c, err.why ? err.why : "invalid JSON");
    }
    if (runs_on(c, n)) {
        c->p += n;
        return fail(c, "invalid JSON: a number or literal runs on");
    }
    *span = c->p;
    *len = n;
    c->p += n;
    return 0;
}

int ferry_json_skip(struct ferry_json_cursor *c)
{
    const char *end;

    if (ferry_json_peek(c) == FERRY_JSON_INVALID)
        return fail(c, "expected a value");
    end = skip_structure(c->p, c->end);
    if (!end)
        return fail(c, "unterminated value");
    c->p = end;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        int d = ferry_hex_value((unsigned char)p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
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

/* Decodes a \u escape at c->p (just after the backslash and 'u'), a surrogate pair included,
 * into out. Returns the bytes written, or 0 on error. */
static size_t decode_u(struct ferry_json_cursor *c, char *out)
{
    unsigned hi, lo;

    if (c->end - c->p < 4 || hex4(c->p, &hi))
        return 0;
    c->p += 4;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return 0;
    if (hi < 0xd800 || hi > 0xdbff)
        return utf8_put(hi, out);
    if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u' || hex4(c->p + 2, &lo) ||
        lo < 0xdc00 || lo > 0xdfff)
        return 0;
    c->p += 6;
    return utf8_put(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00), out);
}

/* Decodes the escape after a backslash (c->p at the byte after it) into out. Returns the
 * bytes written, or 0 on error. */
static size_t decode_escape(struct ferry_json_cursor *c, char *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit;

    if (c->p == c->end)
        return 0;
    if (*c->p == 'u') {
        c->p++;
        return decode_u(c, out);
    }
    hit = memchr(from, *c->p, sizeof(from) - 1);
    if (!hit)
        return 0;
    out[0] = to[hit - from];
    c->p++;
    return 1;
}

/* A piece of a string's contents: a run of plain bytes left in the text, or one escape decoded
 * into tmp (then p points at tmp). */
struct piece {
    const char *p;
    size_t len;
    char tmp[4];
};

/* Reads the next piece of a string's contents, c->p being inside the string. Returns 1 with
 * *pc set, 0 after the closing quote, or -1 at a control character, a bad escape or the end of
 * the text. */
static int next_piece(struct ferry_json_cursor *c, struct piece *pc)
{
    const char *p = c->p;

    while (p < c->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    pc->p = c->p;
    pc->len = (size_t)(p - c->p);
    c->p = p;
    if (pc->len)
        return 1;
    if (p == c->end)
        return fail(c, "unterminated string");
    if (*p == '"') {
        c->p++;
        return 0;
    }
    if (*p != '\\')
        return fail(c, "control character in a string");
    c->p++;
    pc->p = pc->tmp;
    pc->len = decode_escape(c, pc->tmp);
    return pc->len ? 1 : fail(c, "invalid escape in a string");
}

/* Decodes a string into out, writing at most cap bytes; *truncated is set when more were
 * decoded than fit (the rest is still checked). */
static int decode_string(struct ferry_json_cursor *c, char *out, size_t cap, size_t *len,
                         int *truncated)
{
    struct piece pc;
    size_t n = 0;
    int rc;

    *truncated = 0;
    if (ferry_json_peek(c) != FERRY_JSON_STRING)
        return fail(c, "expected a string");
    c->p++;
    while ((rc = next_piece(c, &pc)) == 1) {
        if (!*truncated && pc.len <= cap - n) /* once truncated, n may exceed cap */
            memcpy(out + n, pc.p, pc.len);
        else
            *truncated = 1;
        n += pc.len;
    }
    if (rc < 0)
        return -1;
    *len = n < cap ? n : cap;
    if (!*truncated && !ferry_json_utf8_is_valid(out, *len))
        return fail(c, "invalid UTF-8 in a string");
    return 0;
}

int ferry_json_read_string(struct ferry_json_cursor *c, char *out, size_t *len)
{
    int truncated;
    return decode_string(c, out, (size_t)-1, len, &truncated);
}

int ferry_json_read_int(struct ferry_json_cursor *c, int64_t *v)
{
    const char *p;
    int neg = 0;
    uint64_t n = 0;

    if (ferry_json_peek(c) != FERRY_JSON_NUMBER)
        return fail(c, "expected an integer");
    p = c->p;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == c->end || *p < '0' || *p > '9' ||
        (*p == '0' && p + 1 < c->end && p[1] >= '0' && p[1] <= '9'))
        return fail(c, "expected an integer");
    /* up to INT64_MAX, or its negative minus one; checked before each step can wrap */
    for (; p < c->end && *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (n > ((uint64_t)INT64_MAX + (uint64_t)neg - digit) / 10)
            return fail(c, "integer out of range");
        n = n * 10 + digit;
    }
    if (p < c->end && scalar_byte(*p))
        return fail(c, "expected an integer");
    *v = !neg ? (int64_t)n : n > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)n;
    c->p = p;
    return 0;
}

/* Longest number ferry_json_read_real copies to the stack; longer ones go to the heap. */
#define REAL_STACK_MAX 64

int ferry_json_read_real(struct ferry_json_cursor *c, double *d)
{
    char stack[REAL_STACK_MAX], *text = stack;
    const char *p;
    size_t n;

    if (ferry_json_peek(c) != FERRY_JSON_NUMBER)
        return fail(c, "expected a number");
    for (p = c->p; p < c->end && scalar_byte(*p); p++)
        ;
    n = (size_t)(p - c->p);
    if (!ferry_json_is_valid(c->p, n))
        return fail(c, "invalid number");
    if (n >= sizeof(stack))
        text = malloc(n + 1);
    if (!text)
        return fail(c, "out of memory");
    memcpy(text, c->p, n);
    text[n] = '\0';
    *d = strtod(text, NULL);
    if (text != stack)
        free(text);
    if (isinf(*d))
        return fail(c, "number out of range");
    c->p = p;
    return 0;
}

int ferry_json_enter(struct ferry_json_cursor *c, char open)
{
    skip_ws(c);
    if (c->p == c->end || *c->p != open)
        return fail(c, open == '{' ? "expected an object" : "expected an array");
    c->p++;
    return 0;
}

/* Reads what comes before the next item of a container closed by `close`: nothing for the
 * first one, else a comma. Returns 1 when an item follows, 0 after the close, -1 on error. */
static int next_item(struct ferry_json_cursor *c, size_t *index, char close)
{
    skip_ws(c);
    if (c->p == c->end)
        return fail(c, close == '}' ? "unterminated object" : "unterminated array");
    if (*c->p == close) {
        c->p++;
        return 0;
    }
    if (*index > 0) {
        if (*c->p != ',')
            return fail(c, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        c->p++;
    }
    (*index)++;
    return 1;
}

/* Reads the ':' after a member name. Returns 1 (a value follows), or -1. */
static int colon(struct ferry_json_cursor *c)
{
    skip_ws(c);
    if (c->p == c->end || *c->p != ':')
        return fail(c, "expected ':'");
    c->p++;
    return 1;
}

int ferry_json_next_member(struct ferry_json_cursor *c, size_t *index,
                           char name[FERRY_JSON_NAME_MAX + 1], int *truncated)
{
    size_t len;
    int cut, rc = next_item(c, index, '}');

    if (rc <= 0)
        return rc;
    if (decode_string(c, name, FERRY_JSON_NAME_MAX, &len, &cut))
        return fail(c, "expected a member name");
    if (cut)
        *truncated = FERRY_JSON_NAME_LONG;
    else
        *truncated = memchr(name, '\0', len) ? FERRY_JSON_NAME_NUL : 0;
    name[*truncated ? 0 : len] = '\0';
    return colon(c);
}

#define SPELLED_(x) #x
#define SPELLED(x) SPELLED_(x) /* a macro's value as a string literal */

const char *ferry_json_name_label(const char *name, int truncated)
{
    if (truncated == FERRY_JSON_NAME_LONG)
        return "(name over " SPELLED(FERRY_JSON_NAME_MAX) " bytes)";
    if (truncated)
        return "(name with \\u0000)";
    return name;
}

/* As ferry_json_next_member, but gives the member name as its JSON text, quotes included,
 * decoding nothing. */
static int next_name(struct ferry_json_cursor *c, size_t *index, const char **name,
                     size_t *name_len)
{
    const char *end;
    int rc = next_item(c, index, '}');

    if (rc <= 0)
        return rc;
    end = ferry_json_peek(c) == FERRY_JSON_STRING ? skip_string(c->p, c->end) : NULL;
    if (!end)
        return fail(c, "expected a member name");
    *name = c->p;
    *name_len = (size_t)(end - c->p);
    c->p = end;
    return colon(c);
}

int ferry_json_next_element(struct ferry_json_cursor *c, size_t *index)
{
    return next_item(c, index, ']');
}

int ferry_json_finish(struct ferry_json_cursor *c)
{
    skip_ws(c);
    return c->p == c->end ? 0 : fail(c, "unexpected text after the value");
}

size_t ferry_json_offset(const struct ferry_json_cursor *c)
{
    return (size_t)(c->p - c->start);
}

/* Returns 1 when the JSON string text span[0..len) (quotes included) decodes to s[0..n). */
static int string_equals(const char *span, size_t len, const char *s, size_t n)
{
    struct ferry_json_cursor c;
    struct piece pc;
    size_t used = 0;
    int rc;

    if (len < 2)
        return 0;
    if (!memchr(span, '\\', len))
        return len - 2 == n && memcmp(span + 1, s, n) == 0;
    ferry_json_cursor_init(&c, span + 1, len - 1);
    while ((rc = next_piece(&c, &pc)) == 1) {
        if (pc.len > n - used || memcmp(pc.p, s + used, pc.len) != 0)
            return 0;
        used += pc.len;
    }
    return rc == 0 && used == n;
}

int ferry_json_add_decoded(struct ferry_buf *out, const char *span, size_t len)
{
    const struct ferry_buf saved = *out;
    struct ferry_json_cursor c;
    struct piece pc;
    int rc = 0, result = FERRY_JSON_WRITE_OK;

    ferry_json_cursor_init(&c, span + 1, len ? len - 1 : 0);
    while (!result && (rc = next_piece(&c, &pc)) == 1)
        result = ferry_buf_add(out, pc.p, pc.len) ? FERRY_JSON_WRITE_ROOM : FERRY_JSON_WRITE_OK;
    if (!result && rc < 0)
        result = FERRY_JSON_WRITE_VALUE;
    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}

/* ---- normal form ---- */

/* fail() for the writers: sets c->error and returns FERRY_JSON_WRITE_VALUE. */
static int bad_value(struct ferry_json_cursor *c, const char *why)
{
    fail(c, why);
    return FERRY_JSON_WRITE_VALUE;
}

/* Appends the string at c->p in normal form and moves past it: as it is when it has no escape,
 * else decoded and escaped again. */
static int add_normal_string(struct ferry_buf *out, struct ferry_json_cursor *c)
{
    const char *end = skip_string(c->p, c->end);
    struct piece pc;
    int rc = 0, result;

    if (!end)
        return bad_value(c, "unterminated string");
    if (!memchr(c->p, '\\', (size_t)(end - c->p))) {
        result = ferry_buf_add(out, c->p, (size_t)(end - c->p));
        c->p = end;
        return result ? FERRY_JSON_WRITE_ROOM : FERRY_JSON_WRITE_OK;
    }
    result = ferry_buf_addc(out, '"');
    c->p++;
    while (!result && (rc = next_piece(c, &pc)) == 1)
        result = pc.p == pc.tmp ? ferry_json_add_escaped(out, pc.p, pc.len)
                                : ferry_buf_add(out, pc.p, pc.len);
    if (!result && rc < 0)
        return FERRY_JSON_WRITE_VALUE;
    if (!result)
        result = ferry_buf_addc(out, '"');
    return result ? FERRY_JSON_WRITE_ROOM : FERRY_JSON_WRITE_OK;
}

/* Appends the number at c->p as an integer when it has no fraction or exponent (as jansson
 * reads it), else as a real, and moves past it. */
static int add_normal_number(struct ferry_buf *out, struct ferry_json_cursor *c)
{
    const char *p = c->p;
    int64_t v;
    double d;

    while (p < c->end && (*p == '-' || (*p >= '0' && *p <= '9')))
        p++;
    if (p == c->end || !scalar_byte(*p)) {
        if (ferry_json_read_int(c, &v))
            return FERRY_JSON_WRITE_VALUE;
        return ferry_json_add_int(out, v) ? FERRY_JSON_WRITE_ROOM : FERRY_JSON_WRITE_OK;
    }
    if (ferry_json_read_real(c, &d))
        return FERRY_JSON_WRITE_VALUE;
    return ferry_json_add_real(out, d) ? FERRY_JSON_WRITE_ROOM : FERRY_JSON_WRITE_OK;
}

/* Appends the token at c->p in normal form and moves past it; whitespace gives nothing. */
static int add_normal_token(struct ferry_buf *out, struct ferry_json_cursor *c)
{
    const char *p;

    switch (ferry_json_peek(c)) {
    case FERRY_JSON_STRING:
        return add_normal_string(out, c);
    case FERRY_JSON_NUMBER:
        return add_normal_number(out, c);
    case FERRY_JSON_NULL:
    case FERRY_JSON_FALSE:
    case FERRY_JSON_TRUE:
        for (p = c->p; p < c->end && scalar_byte(*p); p++)
            ;
        break;
    default:
        if (c->p == c->end)
            return FERRY_JSON_WRITE_OK;
        if (!memchr("{}[],:", *c->p, 6))
            return bad_value(c, "expected a value");
        p = c->p + 1;
        break;
    }
    if (ferry_buf_add(out, c->p, (size_t)(p - c->p)))
        return FERRY_JSON_WRITE_ROOM;
    c->p = p;
    return FERRY_JSON_WRITE_OK;
}

int ferry_json_add_normalized(struct ferry_buf *out, const char *span, size_t len,
                              struct ferry_json_error *err)
{
    const struct ferry_buf saved = *out;
    struct ferry_json_cursor c;
    int result = FERRY_JSON_WRITE_OK;

    ferry_json_cursor_init(&c, span, len);
    while (!result && c.p < c.end)
        result = add_normal_token(out, &c);
    if (result == FERRY_JSON_WRITE_VALUE && err) {
        err->why = c.error;
        err->offset = ferry_json_offset(&c);
    }
    if (result)
        ferry_buf_rewind(out, &saved);
    return result;
}

/* ---- paths (docs/json-paths.md) ---- */

/* Longest array index a path segment spells: nine digits stay below INT32_MAX. */
#define PATH_INDEX_DIGITS 9

/* Returns the array index seg[0..len) spells (digits, no leading zero), or -1 when it is not
 * one. */
static long segment_index(const char *seg, size_t len)
{
    long v = 0;

    if (len == 0 || len > PATH_INDEX_DIGITS || (len > 1 && seg[0] == '0'))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return -1;
        v = v * 10 + (seg[i] - '0');
    }
    return v;
}

const char *ferry_json_path_error(const char *path)
{
    size_t len;

    do {
        len = strcspn(path, ".");
        if (len == 0)
            return "empty path segment";
        path += len;
    } while (*path++);
    return NULL;
}

/* Moves the cursor, at an object, to the value of its first member named seg[0..len). Returns
 * 1 when there is one, 0 when not, -1 on broken text. */
static int find_member(struct ferry_json_cursor *c, const char *seg, size_t len)
{
    const char *name;
    size_t index = 0, name_len;
    int rc;

    if (ferry_json_enter(c, '{'))
        return -1;
    while ((rc = next_name(c, &index, &name, &name_len)) == 1) {
        if (string_equals(name, name_len, seg, len))
            return 1;
        if (ferry_json_skip(c))
            return -1;
    }
    return rc;
}

/* Moves the cursor, at an array, to element want; as find_member. */
static int find_element(struct ferry_json_cursor *c, long want)
{
    size_t index = 0;
    int rc;

    if (ferry_json_enter(c, '['))
        return -1;
    while ((rc = ferry_json_next_element(c, &index)) == 1) {
        if ((long)index - 1 == want)
            return 1;
        if (ferry_json_skip(c))
            return -1;
    }
    return rc;
}

int ferry_json_find(const char *p, size_t n, const char *path, struct ferry_json_found *found)
{
    struct ferry_json_cursor c;
    const char *seg = path, *start;
    size_t len;
    long index;
    int rc;

    ferry_json_cursor_init(&c, p, n);
    while (*seg) {
        len = strcspn(seg, ".");
        index = segment_index(seg, len);
        switch (ferry_json_peek(&c)) {
        case FERRY_JSON_OBJECT:
            rc = find_member(&c, seg, len);
            break;
        case FERRY_JSON_ARRAY:
            rc = index >= 0 ? find_element(&c, index) : 0;
            break;
        default:
            rc = 0;
        }
        if (rc <= 0) {
            found->path_len = (size_t)(seg - path) + len;
            return rc;
        }
        seg += len + (seg[len] == '.');
    }
    found->type = ferry_json_peek(&c);
    found->path_len = (size_t)(seg - path);
    start = c.p;
    if (ferry_json_skip(&c))
        return -1;
    found->span = start;
    found->len = (size_t)(c.p - start);
    return 1;
}
