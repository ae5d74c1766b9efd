/*
 * header_value.h - what a header value may carry, in an HTTP request or answer or in an e-mail:
 * no control byte but HTAB, and no DEL, so that no text from a record or a config can split,
 * end or garble a header line. Bytes from 0x80 up pass: they are UTF-8 as far as ferry knows,
 * and HTTP carries them as obs-text.
 *
 * The one definition of that rule, for a route's header templates (route/template.h, HEADER
 * mode), an e-mail target's header fields, and the content types of route bodies and tables.
 */
#ifndef FERRY_HEADER_VALUE_H
#define FERRY_HEADER_VALUE_H

#include <stddef.h>

/* Returns the offset of the first byte of p[0..n) that a header value may not carry, or n when
 * there is none. p need not be NUL-terminated. Pure: any thread. */
size_t ferry_header_value_unsafe(const char *p, size_t n);

/* Nonzero when the C string s may be a header value as a whole: a config's content type. Pure:
 * any thread. */
int ferry_header_value_valid(const char *s);

#endif
