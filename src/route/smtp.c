/*
 * smtp.c - e-mail messages from records, and the SMTP transaction of each (see smtp.h).
 *
 * Header templates render raw (template.c's body mode) and every value is then checked here,
 * so that a refused value gets the one reason "header injection" whichever header it was
 * meant for. Message text is built in the request's body buffer; the envelope (sender and
 * recipients, as curl_slist nodes over one text buffer) lives in the mail, kept with the
 * request and reused by the next record.
 *
 * libcurl reports a 4xx and a 5xx on MAIL, RCPT or DATA as one error code; finish() reads the
 * reply itself (CURLINFO_RESPONSE_CODE) and turns such a failure into an answer with that
 * status, so outcome.c retries or dead-letters it like an HTTP status. libcurl keeps the code of
 * the greeting and EHLO's reply the same way, so the transfer's debug callback notes when MAIL
 * FROM went out: only a reply after it can be about the message.
 */
#include "route/smtp.h"
#include "route/smtp_message.h"
#include "route/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SMTP_RECIPIENTS_MAX 100         /* to, cc and bcc together */
#define SMTP_VALUE_MAX (16 * 1024)      /* one rendered header template */
#define SMTP_PART_MAX (4 * 1024 * 1024) /* one rendered body template */
#define SMTP_PASSWORD_MAX 1024

struct ferry_smtp {
    const struct ferry_route_smtp_config *cfg;
    const char *route;
    char *password; /* from the config or its file */
    ferry_template *from, *reply_to, *subject, *text, *html;
    ferry_template *to[SMTP_RECIPIENTS_MAX];
    ferry_template *cc[SMTP_RECIPIENTS_MAX];
    ferry_template *bcc[SMTP_RECIPIENTS_MAX];
    ferry_template *headers[FERRY_SMTP_HEADERS_MAX]; /* the values of cfg->headers */
    /* "headers.NAME" of each, for error messages (a name has at most 64 characters) */
    char header_keys[FERRY_SMTP_HEADERS_MAX][sizeof("headers.") + FERRY_SMTP_HEADER_NAME_MAX];
};

struct ferry_smtp_mail {
    const struct ferry_smtp *smtp;
    char from[FERRY_SMTP_ADDRESS_MAX + 3]; /* "<addr>" */
    struct curl_slist rcpt[SMTP_RECIPIENTS_MAX];
    char rcpt_text[SMTP_RECIPIENTS_MAX][FERRY_SMTP_ADDRESS_MAX + 3];
    size_t nrcpt;
    size_t sent;       /* bytes of the message handed to libcurl in this attempt */
    int mail_sent;     /* MAIL FROM went out in this attempt */
    int message_reply; /* the last reply line came after MAIL FROM: it is about the message */
    struct ferry_buf value, part;
};

/* ---- set-up ---- */

static int read_password(ferry_smtp *s, char *errstr, size_t errstr_size)
{
    char line[SMTP_PASSWORD_MAX];
    FILE *f;

    if (!s->cfg->password_file) {
        s->password = s->cfg->password ? strdup(s->cfg->password) : NULL;
        return s->cfg->password && !s->password ? -1 : 0;
    }
    f = fopen(s->cfg->password_file, "r");
    if (!f) {
        snprintf(errstr, errstr_size, "target.smtp.password_file: cannot read '%s'",
                 s->cfg->password_file);
        return -1;
    }
    line[0] = '\0';
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    s->password = strdup(line);
    return s->password ? 0 : -1;
}

/* Compiles text; every value renders raw (checked here afterwards), but HTML-escaped in html. */
static int compile(const char *text, ferry_template **out, const char *what, char *errstr,
                   size_t errstr_size)
{
    char err[256];

    if (!text)
        return 0;
    *out = ferry_template_new(
        text, strcmp(what, "html") ? FERRY_TEMPLATE_BODY : FERRY_TEMPLATE_HTML, err, sizeof(err));
    if (!*out)
        snprintf(errstr, errstr_size, "target.smtp.%s: %s", what, err);
    return *out ? 0 : -1;
}

static int compile_list(const struct ferry_cfg_strings *list, ferry_template **out,
                        const char *what, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < list->count; i++)
        if (compile(list->items[i], &out[i], what, errstr, errstr_size))
            return -1;
    return 0;
}

/* Compiles the values of `headers`, checking each name again: the config checks did, but a
 * name goes into the message as it is. */
static int compile_headers(ferry_smtp *s, const struct ferry_cfg_map *headers, char *errstr,
                           size_t errstr_size)
{
    for (size_t i = 0; i < headers->count; i++) {
        const char *name = headers->items[i].key, *problem = ferry_smtp_header_name_problem(name);
        if (problem) {
            snprintf(errstr, errstr_size, "target.smtp.headers.%s: %s", name, problem);
            return -1;
        }
        snprintf(s->header_keys[i], sizeof(s->header_keys[i]), "headers.%s", name);
        if (compile(headers->items[i].value, &s->headers[i], s->header_keys[i], errstr,
                    errstr_size))
            return -1;
    }
    return 0;
}

ferry_smtp *ferry_smtp_new(const struct ferry_route_smtp_config *c, const char *route_name,
                           char *errstr, size_t errstr_size)
{
    ferry_smtp *s = calloc(1, sizeof(*s));
    int result = -1;

    snprintf(errstr, errstr_size, "target.smtp: out of memory");
    if (!s)
        return NULL;
    s->cfg = c;
    s->route = route_name;
    if (c->headers.count > FERRY_SMTP_HEADERS_MAX) {
        snprintf(errstr, errstr_size, "target.smtp.headers: at most %d header fields",
                 FERRY_SMTP_HEADERS_MAX);
        goto out;
    }
    if (c->to.count + c->cc.count + c->bcc.count > SMTP_RECIPIENTS_MAX) {
        snprintf(errstr, errstr_size, "target.smtp: at most %d recipients in to, cc and bcc",
                 SMTP_RECIPIENTS_MAX);
        goto out;
    }
    if (read_password(s, errstr, errstr_size) ||
        compile(c->from, &s->from, "from", errstr, errstr_size) ||
        compile(c->reply_to, &s->reply_to, "reply_to", errstr, errstr_size) ||
        compile(c->subject, &s->subject, "subject", errstr, errstr_size) ||
        compile(c->text, &s->text, "text", errstr, errstr_size) ||
        compile(c->html, &s->html, "html", errstr, errstr_size) ||
        compile_list(&c->to, s->to, "to", errstr, errstr_size) ||
        compile_list(&c->cc, s->cc, "cc", errstr, errstr_size) ||
        compile_list(&c->bcc, s->bcc, "bcc", errstr, errstr_size) ||
        compile_headers(s, &c->headers, errstr, errstr_size))
        goto out;
    result = 0;
out:
    if (result) {
        ferry_smtp_destroy(s);
        return NULL;
    }
    return s;
}

void ferry_smtp_destroy(ferry_smtp *s)
{
    if (!s)
        return;
    ferry_template_destroy(s->from);
    ferry_template_destroy(s->reply_to);
    ferry_template_destroy(s->subject);
    ferry_template_destroy(s->text);
    ferry_template_destroy(s->html);
    for (size_t i = 0; i < SMTP_RECIPIENTS_MAX; i++) {
        ferry_template_destroy(s->to[i]);
        ferry_template_destroy(s->cc[i]);
        ferry_template_destroy(s->bcc[i]);
    }
    for (size_t i = 0; i < FERRY_SMTP_HEADERS_MAX; i++)
        ferry_template_destroy(s->headers[i]);
    free(s->password);
    free(s);
}

void ferry_smtp_mail_destroy(struct ferry_smtp_mail *mail)
{
    if (!mail)
        return;
    ferry_buf_release(&mail->value);
    ferry_buf_release(&mail->part);
    free(mail);
}

int ferry_smtp_status_defaults(ferry_status_rules *rules, char *errstr, size_t errstr_size)
{
    if (ferry_status_rules_set(rules, FERRY_OUTCOME_RETRY, "4xx", errstr, errstr_size) ||
        ferry_status_rules_set(rules, FERRY_OUTCOME_DEAD_LETTER, "5xx", errstr, errstr_size))
        return -1;
    return 0;
}

/* ---- one message ---- */

/* Renders t into out, emptied first. Returns 0, or -1 with errstr. */
static int render(const ferry_template *t, const struct ferry_record *rec, struct ferry_buf *out,
                  const char *what, char *errstr, size_t errstr_size)
{
    char err[512];
    int rc;

    ferry_buf_reset(out);
    rc = ferry_template_render(t, rec, out, err, sizeof(err));
    if (rc == FERRY_TEMPLATE_ETOOBIG)
        snprintf(errstr, errstr_size, "target.smtp.%s: rendered value too long", what);
    else if (rc)
        snprintf(errstr, errstr_size, "target.smtp.%s: %s", what, err);
    return rc ? -1 : 0;
}

/* Renders one address template into mb; refusals name the key. */
static int render_mailbox(struct ferry_smtp_mail *mail, const ferry_template *t,
                          const struct ferry_record *rec, struct ferry_smtp_mailbox *mb,
                          const char *what, char *errstr, size_t errstr_size)
{
    char why[256];

    if (render(t, rec, &mail->value, what, errstr, errstr_size))
        return -1;
    if (ferry_smtp_mailbox_parse(mail->value.data ? mail->value.data : "", mail->value.len, mb, why,
                                 sizeof(why)) == 0)
        return 0;
    /* "header injection: to: ..." keeps the reason first, for dead-letter readers. */
    if (strncmp(why, "header injection: ", 18) == 0)
        snprintf(errstr, errstr_size, "header injection: target.smtp.%s: %s", what, why + 18);
    else
        snprintf(errstr, errstr_size, "target.smtp.%s: %s", what, why);
    return -1;
}

static int add_rcpt(struct ferry_smtp_mail *mail, const char *addr)
{
    size_t i = mail->nrcpt++;

    snprintf(mail->rcpt_text[i], sizeof(mail->rcpt_text[i]), "<%s>", addr);
    mail->rcpt[i].data = mail->rcpt_text[i];
    mail->rcpt[i].next = NULL;
    if (i)
        mail->rcpt[i - 1].next = &mail->rcpt[i];
    return 0;
}

/* Writes "Name: a, b\r\n" for the recipients of list, adding each to the envelope. */
static int add_recipients(struct ferry_smtp_mail *mail, ferry_template *const *list, size_t n,
                          const char *name, const char *key, const struct ferry_record *rec,
                          struct ferry_buf *msg, char *errstr, size_t errstr_size)
{
    struct ferry_smtp_mailbox mb;

    for (size_t i = 0; i < n; i++) {
        if (render_mailbox(mail, list[i], rec, &mb, key, errstr, errstr_size))
            return -1;
        add_rcpt(mail, mb.addr);
        if (ferry_buf_adds(msg, i ? ",\r\n " : name) || (!i && ferry_buf_add(msg, ": ", 2)) ||
            ferry_smtp_add_mailbox(msg, &mb))
            return -2;
    }
    return n && ferry_buf_add(msg, "\r\n", 2) ? -2 : 0;
}

/* Adds the bcc recipients to the envelope only: no header names them. */
static int add_bcc(struct ferry_smtp_mail *mail, const struct ferry_record *rec, char *errstr,
                   size_t errstr_size)
{
    const ferry_smtp *s = mail->smtp;
    struct ferry_smtp_mailbox mb;

    for (size_t i = 0; i < s->cfg->bcc.count; i++) {
        if (render_mailbox(mail, s->bcc[i], rec, &mb, "bcc", errstr, errstr_size))
            return -1;
        add_rcpt(mail, mb.addr);
    }
    return 0;
}

/* Reply-To, when the route sets one. */
static int add_reply_to(struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                        struct ferry_buf *msg, char *errstr, size_t errstr_size)
{
    struct ferry_smtp_mailbox mb;

    if (!mail->smtp->reply_to)
        return 0;
    if (render_mailbox(mail, mail->smtp->reply_to, rec, &mb, "reply_to", errstr, errstr_size))
        return -1;
    return ferry_buf_adds(msg, "Reply-To: ") || ferry_smtp_add_mailbox(msg, &mb) ||
                   ferry_buf_add(msg, "\r\n", 2)
               ? -2
               : 0;
}

/* From, and the Message-ID's domain (the sender's). */
static int add_from(struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                    struct ferry_buf *msg, char *domain, size_t domain_size, char *errstr,
                    size_t errstr_size)
{
    struct ferry_smtp_mailbox mb;

    if (render_mailbox(mail, mail->smtp->from, rec, &mb, "from", errstr, errstr_size))
        return -1;
    snprintf(mail->from, sizeof(mail->from), "<%s>", mb.addr);
    snprintf(domain, domain_size, "%s", strchr(mb.addr, '@') + 1);
    return ferry_buf_adds(msg, "From: ") || ferry_smtp_add_mailbox(msg, &mb) ||
                   ferry_buf_add(msg, "\r\n", 2)
               ? -2
               : 0;
}

static int add_subject(struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                       struct ferry_buf *msg, char *errstr, size_t errstr_size)
{
    struct ferry_buf *v = &mail->value;
    char why[64];

    if (render(mail->smtp->subject, rec, v, "subject", errstr, errstr_size))
        return -1;
    if (ferry_smtp_header_value_check(v->data ? v->data : "", v->len, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "header injection: target.smtp.subject: %s", why);
        return -1;
    }
    return ferry_smtp_add_text_header(msg, "Subject", v->data ? v->data : "", v->len) ? -2 : 0;
}

/* The route's own header fields (`headers`), each value checked as the subject is. */
static int add_headers(struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                       struct ferry_buf *msg, char *errstr, size_t errstr_size)
{
    const ferry_smtp *s = mail->smtp;
    const struct ferry_cfg_map *h = &s->cfg->headers;
    struct ferry_buf *v = &mail->value;
    char why[64];

    for (size_t i = 0; i < h->count; i++) {
        const char *what = s->header_keys[i];
        if (render(s->headers[i], rec, v, what, errstr, errstr_size))
            return -1;
        if (ferry_smtp_header_value_check(v->data ? v->data : "", v->len, why, sizeof(why))) {
            snprintf(errstr, errstr_size, "header injection: target.smtp.%s: %s", what, why);
            return -1;
        }
        if (ferry_smtp_add_text_header(msg, h->items[i].key, v->data ? v->data : "", v->len))
            return -2;
    }
    return 0;
}

/* Date, Message-ID and MIME-Version. */
static int add_trace(const struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                     int64_t now_ms, const char *domain, struct ferry_buf *msg)
{
    int64_t ms = rec->timestamp_ms >= 0 ? rec->timestamp_ms : now_ms;

    return ferry_buf_adds(msg, "Date: ") || ferry_smtp_add_date(msg, ms) ||
                   ferry_buf_adds(msg, "\r\nMessage-ID: ") ||
                   ferry_smtp_add_message_id(msg, mail->smtp->route, rec->topic, rec->partition,
                                             rec->offset, domain) ||
                   ferry_buf_adds(msg, "\r\nMIME-Version: 1.0\r\n")
               ? -2
               : 0;
}

/* One body part: its Content-Type and encoded text. */
static int add_part(struct ferry_smtp_mail *mail, const ferry_template *t, const char *type,
                    const struct ferry_record *rec, struct ferry_buf *msg, char *errstr,
                    size_t errstr_size)
{
    struct ferry_buf *p = &mail->part;

    if (render(t, rec, p, type[5] == 'h' ? "html" : "text", errstr, errstr_size))
        return -1;
    if (ferry_buf_addf(msg, "Content-Type: %s; charset=utf-8\r\n", type) ||
        ferry_smtp_add_body(msg, p->data ? p->data : "", p->len))
        return -2;
    return 0;
}

/* The body: one part, or both as multipart/alternative with a boundary from the record's
 * place (7bit parts never hold "=_ferry_", quoted-printable ones never "=_"). The CRLF before
 * a boundary belongs to the boundary (RFC 2046 5.1.1), so each part keeps its last line end. */
static int add_bodies(struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                      struct ferry_buf *msg, char *errstr, size_t errstr_size)
{
    const ferry_smtp *s = mail->smtp;
    char boundary[96];
    int rc;

    if (!s->text || !s->html)
        return add_part(mail, s->text ? s->text : s->html, s->text ? "text/plain" : "text/html",
                        rec, msg, errstr, errstr_size);
    snprintf(boundary, sizeof(boundary), "=_ferry_%d_%lld", (int)rec->partition,
             (long long)rec->offset);
    if (ferry_buf_addf(msg, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n",
                       boundary, boundary))
        return -2;
    rc = add_part(mail, s->text, "text/plain", rec, msg, errstr, errstr_size);
    if (!rc && ferry_buf_addf(msg, "\r\n--%s\r\n", boundary))
        rc = -2;
    if (!rc)
        rc = add_part(mail, s->html, "text/html", rec, msg, errstr, errstr_size);
    if (!rc && ferry_buf_addf(msg, "\r\n--%s--\r\n", boundary))
        rc = -2;
    return rc;
}

static int build_message(struct ferry_smtp_mail *mail, const struct ferry_record *rec,
                         int64_t now_ms, struct ferry_buf *msg, char *errstr, size_t errstr_size)
{
    const ferry_smtp *s = mail->smtp;
    char domain[FERRY_SMTP_ADDRESS_MAX + 1];
    int rc = add_from(mail, rec, msg, domain, sizeof(domain), errstr, errstr_size);

    if (!rc)
        rc = add_recipients(mail, s->to, s->cfg->to.count, "To", "to", rec, msg, errstr,
                            errstr_size);
    if (!rc)
        rc = add_recipients(mail, s->cc, s->cfg->cc.count, "Cc", "cc", rec, msg, errstr,
                            errstr_size);
    if (!rc)
        rc = add_bcc(mail, rec, errstr, errstr_size);
    if (!rc)
        rc = add_reply_to(mail, rec, msg, errstr, errstr_size);
    if (!rc)
        rc = add_subject(mail, rec, msg, errstr, errstr_size);
    if (!rc)
        rc = add_headers(mail, rec, msg, errstr, errstr_size);
    if (!rc)
        rc = add_trace(mail, rec, now_ms, domain, msg);
    if (!rc)
        rc = add_bodies(mail, rec, msg, errstr, errstr_size);
    if (rc == -2)
        snprintf(errstr, errstr_size, "target.smtp: the message is too large (over %zu bytes)",
                 msg->cap);
    return rc ? -1 : 0;
}

static struct ferry_smtp_mail *mail_new(const ferry_smtp *s)
{
    struct ferry_smtp_mail *mail = calloc(1, sizeof(*mail));

    if (!mail)
        return NULL;
    mail->smtp = s;
    ferry_buf_init(&mail->value, SMTP_VALUE_MAX);
    ferry_buf_init(&mail->part, SMTP_PART_MAX);
    return mail;
}

int ferry_smtp_build(const ferry_smtp *s, const struct ferry_record *rec, int64_t now_ms,
                     struct ferry_smtp_mail **mail, struct ferry_buf *msg,
                     struct ferry_http_call *call, char *errstr, size_t errstr_size)
{
    if (!*mail)
        *mail = mail_new(s);
    if (!*mail) {
        snprintf(errstr, errstr_size, "target.smtp: out of memory");
        return -1;
    }
    (*mail)->nrcpt = 0;
    ferry_buf_reset(msg);
    if (build_message(*mail, rec, now_ms, msg, errstr, errstr_size))
        return -1;
    call->method = ferry_smtp_protocol.name;
    call->url = s->cfg->url;
    call->headers = NULL;
    call->body = msg->data;
    call->body_len = msg->len;
    call->protocol = &ferry_smtp_protocol;
    call->proto = *mail;
    return 0;
}

/* ---- the transaction: the transfer's thread ---- */

static size_t on_read(char *buf, size_t size, size_t n, void *userp)
{
    struct ferry_http_call *call = userp;
    struct ferry_smtp_mail *mail = call->proto;
    size_t left = call->body_len - mail->sent;
    size_t len = size * n < left ? size * n : left;

    memcpy(buf, call->body + mail->sent, len);
    mail->sent += len;
    return len;
}

/* Keeps the server's last refusal (a 4xx or 5xx line), for ferry.error and ferry.response:
 * the 221 of the QUIT that follows a failure is not the answer. finish() drops it when the
 * message was accepted after all. */
static size_t on_reply(char *data, size_t size, size_t n, void *userp)
{
    struct ferry_http_call *call = userp;
    struct ferry_smtp_mail *mail = call->proto;
    size_t len = size * n, room;

    mail->message_reply = mail->mail_sent;
    if (!len || (data[0] != '4' && data[0] != '5'))
        return len;

    while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
        len--;
    ferry_buf_reset(&call->response);
    room = call->response.cap;
    if (room)
        ferry_buf_add(&call->response, data, len < room ? len : room);
    return size * n;
}

/* Notes when MAIL FROM goes out: libcurl shows each command here (with CURLOPT_VERBOSE) as it
 * first writes it, and a command that short goes out whole. Missing it would only make a refusal
 * of the message count as the session's, retried rather than dead-lettered. */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *userp)
{
    struct ferry_smtp_mail *mail = userp;

    (void)e;
    if (type == CURLINFO_HEADER_OUT && size >= 9 && strncasecmp(data, "MAIL FROM", 9) == 0)
        mail->mail_sent = 1;
    return 0;
}

/* Tells on_debug every command, and nothing to stderr. */
static CURLcode watch_commands(CURL *e, struct ferry_smtp_mail *mail)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);

    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_DEBUGDATA, mail);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    return rc;
}

static const long use_ssl[] = {
    [FERRY_SMTP_STARTTLS_REQUIRED] = CURLUSESSL_ALL,
    [FERRY_SMTP_STARTTLS_OPTIONAL] = CURLUSESSL_TRY,
    [FERRY_SMTP_STARTTLS_OFF] = CURLUSESSL_NONE,
};

static CURLcode set_login(CURL *e, const ferry_smtp *s)
{
    CURLcode rc = CURLE_OK;

    if (s->cfg->username)
        rc = curl_easy_setopt(e, CURLOPT_USERNAME, s->cfg->username);
    if (!rc && s->password)
        rc = curl_easy_setopt(e, CURLOPT_PASSWORD, s->password);
    return rc;
}

static CURLcode smtp_start(CURL *e, struct ferry_http_call *call)
{
    struct ferry_smtp_mail *mail = call->proto;
    const ferry_smtp *s = mail->smtp;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");

    mail->sent = 0;
    mail->mail_sent = mail->message_reply = 0;
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_USE_SSL, use_ssl[s->cfg->starttls]);
    if (!rc)
        rc = set_login(e, s);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_URL, call->url);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_MAIL_FROM, mail->from);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_MAIL_RCPT, mail->rcpt);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)call->body_len);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_READDATA, call);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_reply);
    if (!rc)
        rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    if (!rc)
        rc = watch_commands(e, mail);
    return rc;
}

/* A failed transfer's 4xx or 5xx is the server's answer about this message when it answered
 * MAIL FROM, RCPT TO, DATA or the end of the data. A refused greeting, EHLO or HELO, STARTTLS
 * or login is the route's trouble (its server, its TLS, its credentials), and so is 530
 * "authentication required" whatever it answered: retried like a lost connection, and counted
 * by the circuit breaker, rather than dead-lettering every record. */
static int answers_message(const struct ferry_smtp_mail *mail, long reply)
{
    return mail->message_reply && reply >= 400 && reply <= 599 && reply != 530;
}

static void message_refused(struct ferry_http_call *call, long reply, CURLcode code,
                            const char *errbuf)
{
    call->status = reply;
    if (call->response.len)
        snprintf(call->error, sizeof(call->error), "smtp reply %ld: %.*s", reply,
                 (int)call->response.len, call->response.data);
    else
        snprintf(call->error, sizeof(call->error), "smtp reply %ld: %s", reply,
                 errbuf[0] ? errbuf : curl_easy_strerror(code));
}

/* A transport error; a refusal line the session ended on goes first in the message. */
static void session_failed(struct ferry_http_call *call, long reply, CURLcode code,
                           const char *errbuf)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(code);

    call->transport_error = (int)code;
    if (reply >= 400 && call->response.len)
        snprintf(call->error, sizeof(call->error), "smtp: %.*s (%s)", (int)call->response.len,
                 call->response.data, why);
    else
        snprintf(call->error, sizeof(call->error), "smtp: %s", why);
}

static void smtp_finish(CURL *e, CURLcode code, const char *errbuf, struct ferry_http_call *call)
{
    long reply = 0;

    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &reply);
    if (code == CURLE_OK) {
        /* an accepted message has an empty response, whatever refusal libcurl got past (454 to
         * STARTTLS with starttls: optional) */
        ferry_buf_reset(&call->response);
        call->status = reply ? reply : 250;
        return;
    }
    if (answers_message(call->proto, reply))
        message_refused(call, reply, code, errbuf);
    else
        session_failed(call, reply, code, errbuf);
}

const struct ferry_sender_protocol ferry_smtp_protocol = {"SMTP", smtp_start, smtp_finish};
