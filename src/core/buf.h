/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * Every buffer that outside input can grow is a ferry_buf with a named limit, in the manner of
 * curl's dynbuf: appending past the cap fails instead of allocating. The contents are always
 * NUL-terminated (the terminator is not counted in len), so text can be used as a C string.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct ferry_buf {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes used, without the terminator */
    size_t alloc; /* bytes allocated */
    size_t cap;   /* the most len may become */
    int failed;   /* set once an append failed; cleared by reset and release */
};

/* Prepares an empty buffer that may hold at most cap bytes. Allocates nothing. */
void ferry_buf_init(struct ferry_buf *b, size_t cap);

/* Frees the contents; the buffer may be appended to again afterwards. */
void ferry_buf_release(struct ferry_buf *b);

/* Empties the buffer but keeps its memory. */
void ferry_buf_reset(struct ferry_buf *b);

/* Cuts b back to where it was when mark was copied from it (`struct ferry_buf mark = *b;`):
 * its length and failed flag. Undoes a partial append after an error. */
void ferry_buf_rewind(struct ferry_buf *b, const struct ferry_buf *mark);

/* Keeps only the last keep bytes (all of them when keep >= len), moved to the front: the
 * entries taken from the front of a list are dropped. */
void ferry_buf_tail(struct ferry_buf *b, size_t keep);

/* Appends n bytes. Returns 0, or -1 when the cap would be passed or memory ran out (the buffer
 * is then unchanged). */
int ferry_buf_add(struct ferry_buf *b, const void *data, size_t n);

/* Appends a C string; same result as ferry_buf_add. */
int ferry_buf_adds(struct ferry_buf *b, const char *s);

/* Appends one byte; same result as ferry_buf_add. */
int ferry_buf_addc(struct ferry_buf *b, char c);

/* Appends v in decimal, without printf; same result as ferry_buf_add. */
int ferry_buf_addi(struct ferry_buf *b, int64_t v);

/* Appends printf-style output; same result as ferry_buf_add. */
int ferry_buf_addf(struct ferry_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the contents to the caller (free() them) and leaves the buffer empty. May return NULL
 * when nothing was ever appended. */
char *ferry_buf_steal(struct ferry_buf *b);

#endif
