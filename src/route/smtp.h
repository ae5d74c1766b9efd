/*
 * smtp.h - a route's e-mail target: one message per record, sent by libcurl over SMTP.
 *
 * ferry_smtp holds what every message of a route is made from (target.smtp's templates, the
 * login, the server's URL). ferry_smtp_build() renders one record into a struct
 * ferry_smtp_mail (the envelope: sender and recipients) and the message text (RFC 5322 with
 * MIME: text, html, or both as multipart/alternative), refusing a record whose recipient or
 * header value holds CR, LF or NUL, or more than one address where one is expected, with a
 * reason that starts "header injection". The request builder (request.c) points the record's
 * call at the mail and at ferry_smtp_protocol, and the sender then runs the call as an SMTP
 * transaction on a pooled connection instead of an HTTP request.
 *
 * An SMTP reply is the call's status: 250 succeeds; ferry_smtp_status_defaults() makes 4xx
 * retry and 5xx dead-letter (on_status may still override them). A failed login or a
 * STARTTLS the server does not offer are transport errors: retried, never the record's fault.
 *
 * Built on the route's worker thread; the protocol hooks run on the thread that drives the
 * call's transfer.
 */
#ifndef FERRY_SMTP_H
#define FERRY_SMTP_H

#include <stddef.h>

#include "core/buf.h"
#include "route/record.h"
#include "route/sender.h"
#include "route/smtp_config.h"
#include "route/status.h"

typedef struct ferry_smtp ferry_smtp;
struct ferry_smtp_mail;

/* The sender's hooks for a call whose proto is a struct ferry_smtp_mail. */
extern const struct ferry_sender_protocol ferry_smtp_protocol;

/* Compiles c's templates for the route route_name and reads its password file. c and
 * route_name must outlive the result. Returns it (free with ferry_smtp_destroy()), or NULL
 * with a message in errstr. */
ferry_smtp *ferry_smtp_new(const struct ferry_route_smtp_config *c, const char *route_name,
                           char *errstr, size_t errstr_size);

/* Frees s. Accepts NULL. */
void ferry_smtp_destroy(ferry_smtp *s);

/* Renders rec's message into msg (emptied first) and its envelope into *mail (made on first
 * use; free it with ferry_smtp_mail_destroy()), and points call at both. now_ms dates a
 * record that has no timestamp. Returns 0, or -1 with why in errstr (a template error, an
 * invalid address, "header injection: ...", a message too large for msg's cap, out of
 * memory): the record cannot be sent. */
int ferry_smtp_build(const ferry_smtp *s, const struct ferry_record *rec, int64_t now_ms,
                     struct ferry_smtp_mail **mail, struct ferry_buf *msg,
                     struct ferry_http_call *call, char *errstr, size_t errstr_size);

/* Frees a mail. Accepts NULL. */
void ferry_smtp_mail_destroy(struct ferry_smtp_mail *mail);

/* Sets an e-mail route's default outcomes in rules: 4xx retry, 5xx dead letter. Call before
 * the route's own on_status rules. Returns 0, or -1 with errstr. */
int ferry_smtp_status_defaults(ferry_status_rules *rules, char *errstr, size_t errstr_size);

#endif
