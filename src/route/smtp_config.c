/*
 * smtp_config.c - the table of `target.smtp:` and the checks that need several of its keys
 * (a URL of the right scheme, a recipient and a body, templates that compile), so that
 * `ferry check` finds what an SMTP route would trip over at start.
 */
#include "route/smtp_config.h"
#include "core/url.h"
#include "route/template.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SMTP_PATH_MAX 256
#define SMTP_STR(x) #x
#define SMTP_XSTR(x) SMTP_STR(x) /* a number macro's value as a string literal */

const char *const ferry_smtp_starttls_names[] = {"required", "optional", "off", NULL};

static void check_smtp(struct ferry_config *cfg, void *obj, const char *path);

#define SMTP_FIELD(f) offsetof(struct ferry_route_smtp_config, f)
static const struct ferry_cfg_field smtp_fields[] = {
    {"url", FERRY_CFG_STRING, SMTP_FIELD(url), NULL, 0, 0, NULL, NULL, 1,
     "The SMTP server: `smtp://host:25` (STARTTLS as `starttls` says) or `smtps://host:465` "
     "(TLS from the start). `target.tls` applies to either."},
    {"starttls", FERRY_CFG_ENUM, SMTP_FIELD(starttls), "optional", 0, 0, ferry_smtp_starttls_names,
     NULL, 0,
     "On smtp://: `required` fails the attempt when the server offers no STARTTLS; `optional` "
     "upgrades when it does; `off` never upgrades."},
    {"username", FERRY_CFG_STRING, SMTP_FIELD(username), NULL, 0, 0, NULL, NULL, 0,
     "Log in (SMTP AUTH) as this user."},
    {"password", FERRY_CFG_STRING, SMTP_FIELD(password), NULL, 0, 0, NULL, NULL, 0,
     "Its password; write `${env:NAME}` to take it from the environment."},
    {"password_file", FERRY_CFG_STRING, SMTP_FIELD(password_file), NULL, 0, 0, NULL, NULL, 0,
     "Or a file whose first line is the password, read when the route starts."},
    {"from", FERRY_CFG_STRING, SMTP_FIELD(from), NULL, 0, 0, NULL, NULL, 1,
     "Sender, one address: `news@example.com` or `Example <news@example.com>` (a template)."},
    {"to", FERRY_CFG_STRINGS, SMTP_FIELD(to), NULL, 0, 0, NULL, NULL, 1,
     "Recipients, each a template that must give exactly one address, e.g. "
     "`${value.name} <${value.email}>`."},
    {"cc", FERRY_CFG_STRINGS, SMTP_FIELD(cc), NULL, 0, 0, NULL, NULL, 0,
     "Copy recipients, as `to`."},
    {"bcc", FERRY_CFG_STRINGS, SMTP_FIELD(bcc), NULL, 0, 0, NULL, NULL, 0,
     "Blind copy recipients, as `to`: they get the message, and no header names them."},
    {"reply_to", FERRY_CFG_STRING, SMTP_FIELD(reply_to), NULL, 0, 0, NULL, NULL, 0,
     "Where replies go (the Reply-To header), one address (a template)."},
    {"headers", FERRY_CFG_MAP, SMTP_FIELD(headers), NULL, 0, 0, NULL, NULL, 0,
     "More header fields, name: value template (at most 32), e.g. `X-Campaign: ${value.c}`; "
     "non-ASCII text is RFC 2047-encoded. Not the fields ferry writes itself (From, To, "
     "Subject, Message-ID ...)."},
    {"subject", FERRY_CFG_STRING, SMTP_FIELD(subject), NULL, 0, 0, NULL, NULL, 1,
     "Subject template; non-ASCII text is sent RFC 2047-encoded."},
    {"text", FERRY_CFG_STRING, SMTP_FIELD(text), NULL, 0, 0, NULL, NULL, 0,
     "Plain-text body template."},
    {"html", FERRY_CFG_STRING, SMTP_FIELD(html), NULL, 0, 0, NULL, NULL, 0,
     "HTML body template; with `text` too, the message is multipart/alternative. Values are "
     "HTML-escaped (`<` becomes `&lt;`), so a record cannot add markup."},
    FERRY_CFG_END,
};
const struct ferry_cfg_section ferry_route_smtp_section = {
    "smtp", smtp_fields, sizeof(struct ferry_route_smtp_config), check_smtp,
    "An e-mail target: one message per record (docs/targets.md). A recipient or header value "
    "with a control byte but HTAB (CR, LF, NUL, ESC ...), or with more than one address, "
    "dead-letters the record with reason "
    "`header injection`. SMTP replies 4xx retry, 5xx dead-letter."};

static void check_list(struct ferry_config *cfg, const struct ferry_cfg_strings *list,
                       const char *path)
{
    char fpath[SMTP_PATH_MAX];

    for (size_t i = 0; i < list->count; i++) {
        snprintf(fpath, sizeof(fpath), "%s[%zu]", path, i);
        ferry_template_config_check(cfg, list->items[i], FERRY_TEMPLATE_HEADER, fpath);
    }
}

static void check_templates(struct ferry_config *cfg, const struct ferry_route_smtp_config *s,
                            const char *path)
{
    char fpath[SMTP_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.from", path);
    ferry_template_config_check(cfg, s->from, FERRY_TEMPLATE_HEADER, fpath);
    snprintf(fpath, sizeof(fpath), "%s.subject", path);
    ferry_template_config_check(cfg, s->subject, FERRY_TEMPLATE_HEADER, fpath);
    snprintf(fpath, sizeof(fpath), "%s.text", path);
    ferry_template_config_check(cfg, s->text, FERRY_TEMPLATE_BODY, fpath);
    snprintf(fpath, sizeof(fpath), "%s.html", path);
    ferry_template_config_check(cfg, s->html, FERRY_TEMPLATE_HTML, fpath);
    snprintf(fpath, sizeof(fpath), "%s.to", path);
    check_list(cfg, &s->to, fpath);
    snprintf(fpath, sizeof(fpath), "%s.cc", path);
    check_list(cfg, &s->cc, fpath);
    snprintf(fpath, sizeof(fpath), "%s.bcc", path);
    check_list(cfg, &s->bcc, fpath);
    snprintf(fpath, sizeof(fpath), "%s.reply_to", path);
    ferry_template_config_check(cfg, s->reply_to, FERRY_TEMPLATE_HEADER, fpath);
}

/* The fields ferry writes, or that only mail servers write; `headers` may not set them (nor
 * Bcc, which is never written), nor any Content-* or Resent-* field. */
static const char *const own_fields[] = {"From",         "To",          "Cc",       "Bcc",
                                         "Reply-To",     "Subject",     "Date",     "Message-ID",
                                         "MIME-Version", "Return-Path", "Received", NULL};
static const char *const own_prefixes[] = {"Content-", "Resent-", NULL};

/* Whether name is a field name: printable ASCII but ':' (RFC 5322 3.6.8), short enough to
 * leave its line room for a value. */
static int is_field_name(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;

    if (!*p || strlen(name) > FERRY_SMTP_HEADER_NAME_MAX)
        return 0;
    for (; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == ':')
            return 0;
    return 1;
}

static int is_own_field(const char *name)
{
    for (size_t i = 0; own_fields[i]; i++)
        if (strcasecmp(own_fields[i], name) == 0)
            return 1;
    for (size_t i = 0; own_prefixes[i]; i++)
        if (strncasecmp(own_prefixes[i], name, strlen(own_prefixes[i])) == 0)
            return 1;
    return 0;
}

const char *ferry_smtp_header_name_problem(const char *name)
{
    if (!is_field_name(name))
        return "expected a field name of printable ASCII without ':', at most " SMTP_XSTR(
            FERRY_SMTP_HEADER_NAME_MAX) " characters";
    if (is_own_field(name))
        return "written by ferry or by mail servers, not by headers";
    return NULL;
}

/* Whether entry i of m has the name of an earlier one, in any case. */
static int is_repeated(const struct ferry_cfg_map *m, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcasecmp(m->items[j].key, m->items[i].key) == 0)
            return 1;
    return 0;
}

static void check_headers(struct ferry_config *cfg, const struct ferry_cfg_map *m, const char *path)
{
    char fpath[SMTP_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.headers", path);
    if (m->count > FERRY_SMTP_HEADERS_MAX)
        ferry_config_error(cfg, fpath, "at most %d header fields", FERRY_SMTP_HEADERS_MAX);
    for (size_t i = 0; i < m->count; i++) {
        const char *name = m->items[i].key, *problem = ferry_smtp_header_name_problem(name);

        snprintf(fpath, sizeof(fpath), "%s.headers.%s", path, name);
        if (problem)
            ferry_config_error(cfg, fpath, "%s", problem);
        else if (is_repeated(m, i))
            ferry_config_error(cfg, fpath, "another header is named so (names ignore case)");
        else
            ferry_template_config_check(cfg, m->items[i].value, FERRY_TEMPLATE_HEADER, fpath);
    }
}

static void check_password(struct ferry_config *cfg, const struct ferry_route_smtp_config *s,
                           const char *path)
{
    char fpath[SMTP_PATH_MAX];

    snprintf(fpath, sizeof(fpath), "%s.password_file", path);
    if (s->password && s->password_file)
        ferry_config_error(cfg, fpath, "set password or password_file, not both");
    else if (s->password_file && access(s->password_file, R_OK))
        ferry_config_error(cfg, fpath, "cannot read '%s'", s->password_file);
    snprintf(fpath, sizeof(fpath), "%s.username", path);
    if (!s->username && (s->password || s->password_file))
        ferry_config_error(cfg, fpath, "missing, a password needs a username");
}

/* smtp:// or smtps:// (in any case), then a host. */
static int smtp_url_ok(const char *url)
{
    if (strncasecmp(url, "smtp://", 7) == 0)
        return ferry_url_authority_has_host(url + 7);
    if (strncasecmp(url, "smtps://", 8) == 0)
        return ferry_url_authority_has_host(url + 8);
    return 0;
}

static void check_smtp(struct ferry_config *cfg, void *obj, const char *path)
{
    const struct ferry_route_smtp_config *s = obj;
    char fpath[SMTP_PATH_MAX], err[512];

    snprintf(fpath, sizeof(fpath), "%s.url", path);
    if (s->url && !smtp_url_ok(s->url))
        ferry_config_error(cfg, fpath, "expected smtp://host:port or smtps://host:port, got '%s'",
                           s->url);
    else if (s->url && ferry_url_parses(s->url, err, sizeof(err)))
        ferry_config_error(cfg, fpath, "%s", err);
    snprintf(fpath, sizeof(fpath), "%s.to", path);
    if (s->to.count == 0 && ferry_config_line(cfg, fpath))
        ferry_config_error(cfg, fpath, "expected at least one recipient");
    if (!s->text && !s->html)
        ferry_config_error(cfg, path, "expected text, html or both: a message needs a body");
    check_templates(cfg, s, path);
    check_headers(cfg, &s->headers, path);
    check_password(cfg, s, path);
}
