/*
 * url.h - what ferry accepts as a URL it sends to: libcurl parses it, and its authority names a
 * host. The one definition for every place a config names such a URL: a route's target (a URL
 * template, checked through a sample of what it renders), an SMTP server, a gRPC target, and
 * server.advertised_url, where the other instances of a partitioned table send reads.
 *
 * libcurl would refuse a URL it cannot parse on each request; checking where the URL is written
 * turns that into an error `ferry check` reports.
 */
#ifndef FERRY_URL_H
#define FERRY_URL_H

#include <stddef.h>

/* Returns why libcurl does not parse url as a URL (libcurl's own text, which the caller does
 * not free), or NULL when it does. Any thread. */
const char *ferry_url_problem(const char *url);

/* Returns 0 when libcurl parses url as a URL, as it will each request's: a port from 0 to
 * 65535, no space or control byte...; else -1 with errstr saying why, quoting url, e.g.
 * "'http://h:99999' is not a URL: Port number was not a decimal number between 0 and 65535".
 * Any thread. */
int ferry_url_parses(const char *url, char *errstr, size_t errstr_size);

/* Nonzero when the authority of a URL, the text after "scheme://" (up to its first '/', '?' or
 * '#'), names a host: something besides user information before an '@' and a ":port", and no
 * white space. Any thread. */
int ferry_url_authority_has_host(const char *authority);

#endif
