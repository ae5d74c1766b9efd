/*
 * smtp_message.h - the pieces of an Internet message (RFC 5322, MIME) that an e-mail target
 * writes: header fields with RFC 2047 encoded-words for non-ASCII text, addresses checked to
 * be exactly one each, bodies with CRLF line ends in 7bit or quoted-printable, the Date and a
 * Message-ID derived from where the record came from.
 *
 * Pure functions over buffers: smtp.c puts them together per record, the unit tests call them
 * directly. Any thread.
 */
#ifndef FERRY_SMTP_MESSAGE_H
#define FERRY_SMTP_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* The longest address (RFC 5321's path limit) and display name kept. */
#define FERRY_SMTP_ADDRESS_MAX 254
#define FERRY_SMTP_NAME_MAX 512

/* One mailbox: "Name <addr>" or "addr", split. */
struct ferry_smtp_mailbox {
    char name[FERRY_SMTP_NAME_MAX + 1]; /* display name, "" when none */
    char addr[FERRY_SMTP_ADDRESS_MAX + 1];
};

/* Returns 1 when text[0..len) holds CR, LF or NUL: what may never reach a header or an SMTP
 * command. */
int ferry_smtp_has_line_break(const char *text, size_t len);

/* Returns 0 when text[0..len) may stand in a header field: no control byte but HTAB (0x00-0x08,
 * 0x0A-0x1F, 0x7F), as template.h's header templates. Else -1 with what it holds in errstr:
 * "value contains CR, LF or NUL", or "value contains control byte 0x1B" for any other. A
 * subject or display name would carry such bytes inside an encoded-word; ferry refuses them
 * as an HTTP header does, so that no record puts terminal escapes or the like in a mail. */
int ferry_smtp_header_value_check(const char *text, size_t len, char *errstr, size_t errstr_size);

/* Reads text[0..len) as exactly one mailbox into mb. Returns 0, or -1 with why in errstr:
 * "header injection: ..." for a control byte (ferry_smtp_header_value_check) or more than
 * one address, "invalid address: ..."
 * for anything else that is not one plain address (local@domain, ASCII, no spaces or
 * specials). */
int ferry_smtp_mailbox_parse(const char *text, size_t len, struct ferry_smtp_mailbox *mb,
                             char *errstr, size_t errstr_size);

/* Appends a mailbox as header text: the address alone, or the name (as is, quoted, or RFC
 * 2047-encoded as it needs) and the address in angle brackets. Returns 0 or -1 (out's cap). */
int ferry_smtp_add_mailbox(struct ferry_buf *out, const struct ferry_smtp_mailbox *mb);

/* Appends "Name: value\r\n" for unstructured text (Subject): as is when it is printable ASCII
 * and fits a line, else as folded RFC 2047 encoded-words (UTF-8, base64) of at most 75
 * characters, cut between characters. value must hold no CR, LF or NUL. Returns 0 or -1. */
int ferry_smtp_add_text_header(struct ferry_buf *out, const char *name, const char *value,
                               size_t len);

/* Appends "Content-Transfer-Encoding: ...\r\n\r\n" and the body text[0..len) with every line
 * end (LF, CRLF or a lone CR) made CRLF and a CRLF at the end: 7bit when every line is short
 * printable ASCII that cannot be mistaken for a MIME boundary, quoted-printable otherwise.
 * Returns 0 or -1. */
int ferry_smtp_add_body(struct ferry_buf *out, const char *text, size_t len);

/* Appends the Message-ID "<ferry.ROUTE.TOPIC.PARTITION.OFFSET@DOMAIN>" ('.' inside the route
 * and topic names written =2E, so the id is one dot-atom and tells them apart). Returns 0 or
 * -1. */
int ferry_smtp_add_message_id(struct ferry_buf *out, const char *route, const char *topic,
                              int32_t partition, int64_t offset, const char *domain);

/* Appends an RFC 5322 date for ms since the epoch, in UTC: "Fri, 04 Dec 2026 12:00:00 +0000".
 * Returns 0 or -1. */
int ferry_smtp_add_date(struct ferry_buf *out, int64_t ms);

#endif
