/*
 * smtp_config.h - the `target.smtp:` block of a route: where e-mail goes (an SMTP server),
 * how the connection is secured and logged in, and the templates each message is made from.
 *
 * route_config.c embeds struct ferry_route_smtp_config in a route's target and lists
 * ferry_route_smtp_section among the target's keys; target.c decides which kind of target a
 * route has; smtp.c builds the messages. Nothing here runs after the config is loaded.
 */
#ifndef FERRY_SMTP_CONFIG_H
#define FERRY_SMTP_CONFIG_H

#include "core/config.h"
#include "core/config_schema.h"

enum ferry_smtp_starttls {
    FERRY_SMTP_STARTTLS_REQUIRED,
    FERRY_SMTP_STARTTLS_OPTIONAL,
    FERRY_SMTP_STARTTLS_OFF,
};

struct ferry_route_smtp_config {
    char *url;    /* smtp://host:port or smtps://host:port; NULL when the route has no smtp block */
    int starttls; /* enum ferry_smtp_starttls */
    char *username;
    char *password;      /* may come from ${env:NAME} */
    char *password_file; /* or from a file: its first line */
    char *from;          /* templates from here on */
    struct ferry_cfg_strings to;
    struct ferry_cfg_strings cc;
    struct ferry_cfg_strings bcc; /* in the envelope only */
    char *reply_to;
    struct ferry_cfg_map headers; /* more header fields: name -> value template */
    char *subject;
    char *text;
    char *html;
};

/* The most header fields `headers` may add, and the longest name of one. */
#define FERRY_SMTP_HEADERS_MAX 32
#define FERRY_SMTP_HEADER_NAME_MAX 64

/* Returns NULL when name may be one of `headers`' fields, else why not. */
const char *ferry_smtp_header_name_problem(const char *name);

/* The table of `target.smtp`. */
extern const struct ferry_cfg_section ferry_route_smtp_section;

/* The names of enum ferry_smtp_starttls, indexed by it. */
extern const char *const ferry_smtp_starttls_names[];

#endif
