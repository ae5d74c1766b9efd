/*
 * buf.c - growable byte buffer with a hard cap (see buf.h).
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ferry_buf_init(struct ferry_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
    b->failed = 0;
}

void ferry_buf_release(struct ferry_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->failed = 0;
}

void ferry_buf_reset(struct ferry_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ferry_buf_rewind(struct ferry_buf *b, const struct ferry_buf *mark)
{
    b->len = mark->len;
    b->failed = mark->failed;
    if (b->data)
        b->data[b->len] = '\0';
}

void ferry_buf_tail(struct ferry_buf *b, size_t keep)
{
    if (keep >= b->len)
        return;
    if (keep)
        memmove(b->data, b->data + b->len - keep, keep);
    b->len = keep;
    b->data[keep] = '\0';
}

/* Makes room for n more bytes plus the terminator. */
static int reserve(struct ferry_buf *b, size_t n)
{
    size_t need, size;
    char *p;

    if (n > b->cap || b->len > b->cap - n) {
        b->failed = 1;
        return -1;
    }
    need = b->len + n + 1;
    if (need <= b->alloc)
        return 0;
    size = b->alloc ? b->alloc : 64;
    while (size < need)
        size *= 2;
    if (b->cap < SIZE_MAX && size > b->cap + 1)
        size = b->cap + 1; /* doubling never takes more than the cap allows */
    p = realloc(b->data, size);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->alloc = size;
    return 0;
}

int ferry_buf_add(struct ferry_buf *b, const void *data, size_t n)
{
    if (reserve(b, n))
        return -1;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ferry_buf_adds(struct ferry_buf *b, const char *s)
{
    return ferry_buf_add(b, s, strlen(s));
}

int ferry_buf_addc(struct ferry_buf *b, char c)
{
    return ferry_buf_add(b, &c, 1);
}

int ferry_buf_addi(struct ferry_buf *b, int64_t v)
{
    char digits[24]; /* INT64_MIN has 19 digits and a sign */
    char *p = digits + sizeof(digits);
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (v < 0)
        *--p = '-';
    return ferry_buf_add(b, p, (size_t)(digits + sizeof(digits) - p));
}

int ferry_buf_addf(struct ferry_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -1;
    }
    if (reserve(b, (size_t)n))
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *ferry_buf_steal(struct ferry_buf *b)
{
    char *p = b->data;
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    return p;
}
