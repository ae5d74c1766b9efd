/*
 * header_name.h - what an HTTP header name may be.
 *
 * Header names reach a request from three places: a route's `target.headers`, its
 * `reply.headers` (checked when the config loads) and a record's own headers (checked as each
 * request is built). All three take the same rule, RFC 9110's token, so that a name can carry
 * no space, colon or line break into the request.
 */
#ifndef FERRY_HEADER_NAME_H
#define FERRY_HEADER_NAME_H

/* Nonzero when name is an HTTP token (RFC 9110 5.6.2): one or more visible ASCII characters,
 * none of them a separator. Any thread. */
int ferry_header_name_is_token(const char *name);

#endif
