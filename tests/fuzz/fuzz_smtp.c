/*
 * fuzz_smtp.c - libFuzzer harness for the e-mail target's messages (route/smtp.c,
 * smtp_message.c): whole messages built from hostile record values, keys and headers, and the
 * address, header and body writers fed the same bytes directly.
 *
 * Input: the first byte picks one of FUZZ_SMTP_CONFIGS target.smtp blocks (which templates
 * take the key, the header "x-h" and the value, and which body parts there are); then the
 * record's value, 0xff, its key, 0xff, the value of its header "x-h". A message that is built
 * must be 7-bit with CRLF line ends only, no line over 998 octets, only the header fields ferry
 * writes (a value can never start a field of its own), and the multipart boundary only where
 * ferry put it; a record whose key or header, rendered into a header field, holds CR, LF or NUL
 * must be refused as header injection.
 */
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "core/buf.h"
#include "route/sender.h"
#include "route/smtp.h"
#include "route/smtp_message.h"
#include "fuzz.h"

#define FUZZ_SMTP_CONFIGS 64
#define FUZZ_SMTP_MSG_MAX (1u << 20)
#define FUZZ_SMTP_LINE_MAX 998 /* RFC 5322 2.1.1 */

/* The record's place: the multipart boundary is made from it. */
#define FUZZ_SMTP_PARTITION 2
#define FUZZ_SMTP_OFFSET 77
#define FUZZ_SMTP_BOUNDARY "=_ferry_2_77"

/* The config's bits. */
#define USE_KEY_FROM 1 /* from: the key, else a fixed address */
#define USE_TWO_TO 2   /* to: the header x-h, then value.to; else the header only */
#define USE_CC 4 /* cc: value.cc, bcc: value.b, reply_to: value.r, headers: X-Campaign: value.s */
#define USE_KEY_SUBJECT 8 /* subject: the key, else "Hi ${value.s}" */
#define USE_HTML 16       /* an html part */
#define USE_TEXT 32       /* a text part (always when there is no html) */

static char *to_one[] = {"${header.x-h}"};
static char *to_two[] = {"${header.x-h}", "${value.to}"};
static char *cc_list[] = {"${value.cc}"};
static char *bcc_list[] = {"${value.b}"};
static struct ferry_cfg_kv extra_headers[] = {{"X-Campaign", "${value.s}"}};

static struct ferry_route_smtp_config fuzz_configs[FUZZ_SMTP_CONFIGS];
static ferry_smtp *fuzz_smtps[FUZZ_SMTP_CONFIGS];

static void fuzz_smtp_config(struct ferry_route_smtp_config *c, unsigned bits)
{
    c->url = "smtp://127.0.0.1:25";
    c->from = (bits & USE_KEY_FROM) ? "${key}" : "Ferry <noreply@example.com>";
    c->to.items = (bits & USE_TWO_TO) ? to_two : to_one;
    c->to.count = (bits & USE_TWO_TO) ? 2 : 1;
    c->cc.items = cc_list;
    c->cc.count = (bits & USE_CC) ? 1 : 0;
    c->bcc.items = bcc_list;
    c->bcc.count = (bits & USE_CC) ? 1 : 0;
    c->reply_to = (bits & USE_CC) ? "${value.r}" : NULL;
    c->headers.items = extra_headers;
    c->headers.count = (bits & USE_CC) ? 1 : 0;
    c->subject = (bits & USE_KEY_SUBJECT) ? "${key}" : "Hi ${value.s}";
    c->html = (bits & USE_HTML) ? "<p>${value.s}</p>${value}" : NULL;
    c->text = (bits & USE_TEXT) || !(bits & USE_HTML) ? "${value}" : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    for (unsigned i = 0; i < FUZZ_SMTP_CONFIGS; i++) {
        fuzz_smtp_config(&fuzz_configs[i], i);
        fuzz_smtps[i] = ferry_smtp_new(&fuzz_configs[i], "fuzz.route", err, sizeof(err));
        if (!fuzz_smtps[i]) {
            fprintf(stderr, "fuzz_smtp: config %u: %s\n", i, err);
            abort();
        }
    }
    return 0;
}

static size_t count(const char *s, size_t n, const char *what)
{
    size_t found = 0, w = strlen(what);
    const char *p = s, *end = s + n;

    while (p < end && (p = memmem(p, (size_t)(end - p), what, w))) {
        found++;
        p += w;
    }
    return found;
}

/* Every line CRLF-terminated, 7-bit, without NUL, at most FUZZ_SMTP_LINE_MAX octets. */
static int lines_are_clean(const char *s, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r') {
            if (i + 1 == n || s[i + 1] != '\n')
                return 0;
            i++;
            col = 0;
        } else if (c == '\n' || c == '\0' || c >= 0x80 || ++col > FUZZ_SMTP_LINE_MAX) {
            return 0;
        }
    }
    return n == 0 || col == 0;
}

/* The header lines s[0..n) are only the fields ferry writes, or folded continuations of them. */
static int fields_are_ours(const char *s, size_t n)
{
    static const char *const names[] = {"From: ",
                                        "To: ",
                                        "Cc: ",
                                        "Reply-To: ",
                                        "Subject: ",
                                        "X-Campaign: ",
                                        "Date: ",
                                        "Message-ID: ",
                                        "MIME-Version: ",
                                        "Content-Type: ",
                                        "Content-Transfer-Encoding: ",
                                        NULL};
    const char *end = s + n;

    while (s < end) {
        const char *eol = memmem(s, (size_t)(end - s), "\r\n", 2);
        size_t i = 0;
        if (!eol)
            return 0;
        if (*s != ' ' && *s != '\t')
            while (names[i] && strncmp(s, names[i], strlen(names[i])))
                i++;
        if (!names[i])
            return 0;
        s = eol + 2;
    }
    return 1;
}

static void fuzz_smtp_check(const struct ferry_buf *msg, unsigned bits)
{
    int multipart = (bits & USE_HTML) && (bits & USE_TEXT);
    const char *body;
    size_t head;

    if (!lines_are_clean(msg->data, msg->len))
        abort(); /* a bare CR or LF, a NUL, an 8-bit byte or an overlong line */
    body = memmem(msg->data, msg->len, "\r\n\r\n", 4);
    if (!body)
        abort();
    head = (size_t)(body - msg->data) + 2;
    if (!fields_are_ours(msg->data, head))
        abort(); /* a header field ferry did not write: injection */
    if (multipart && count(msg->data + head, msg->len - head, "--" FUZZ_SMTP_BOUNDARY) != 3)
        abort(); /* the boundary in a part's text */
}

/* Whether p[0..n) would break a header line. */
static int breaks_line(const struct fuzz_part *p)
{
    return ferry_smtp_has_line_break((const char *)p->p, p->n);
}

static void fuzz_smtp_build(unsigned bits, const struct fuzz_part *parts, size_t nparts)
{
    struct ferry_record rec = {
        "orders", FUZZ_SMTP_PARTITION, FUZZ_SMTP_OFFSET, 1700000000123, NULL, 0, NULL, 0, NULL,
        NULL};
    struct ferry_smtp_mail *mail = NULL;
    struct ferry_http_call call = {0};
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    struct ferry_buf msg;
    char why[512];
    int rc, injected;

    rec.value = (const char *)parts[0].p;
    rec.value_len = parts[0].n;
    if (nparts > 1) {
        rec.key = (const char *)parts[1].p;
        rec.key_len = parts[1].n;
    }
    if (nparts > 2)
        rd_kafka_header_add(h, "x-h", -1, parts[2].p, (ssize_t)parts[2].n);
    rec.headers = h;
    injected =
        (nparts > 1 && (bits & (USE_KEY_FROM | USE_KEY_SUBJECT)) && breaks_line(&parts[1])) ||
        (nparts > 2 && breaks_line(&parts[2]));
    ferry_buf_init(&msg, FUZZ_SMTP_MSG_MAX);
    rc = ferry_smtp_build(fuzz_smtps[bits], &rec, 0, &mail, &msg, &call, why, sizeof(why));
    if (rc == 0 && injected)
        abort(); /* a CR, LF or NUL went into a header and was not refused */
    if (rc == 0)
        fuzz_smtp_check(&msg, bits);
    ferry_smtp_mail_destroy(mail);
    ferry_buf_release(&msg);
    rd_kafka_headers_destroy(h);
}

/* The writers on their own, each given a buffer of exactly the input's length. */
static void fuzz_smtp_writers(const struct fuzz_part *part)
{
    struct ferry_smtp_mailbox mb;
    struct ferry_buf out;
    char *text = malloc(part->n ? part->n : 1), why[256];

    if (!text)
        return;
    if (part->n)
        memcpy(text, part->p, part->n);
    ferry_buf_init(&out, FUZZ_SMTP_MSG_MAX);
    if (ferry_smtp_mailbox_parse(text, part->n, &mb, why, sizeof(why)) == 0 &&
        (ferry_smtp_add_mailbox(&out, &mb) || ferry_buf_add(&out, "\r\n", 2) ||
         !lines_are_clean(out.data, out.len)))
        abort(); /* a mailbox that was accepted writes a line break or 8-bit text */
    ferry_buf_reset(&out);
    if (!ferry_smtp_has_line_break(text, part->n) &&
        (ferry_smtp_add_text_header(&out, "Subject", text, part->n) ||
         !lines_are_clean(out.data, out.len) || !fields_are_ours(out.data, out.len)))
        abort();
    ferry_buf_reset(&out);
    if (ferry_smtp_add_body(&out, text, part->n) || !lines_are_clean(out.data, out.len))
        abort();
    ferry_buf_release(&out);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    size_t nparts;

    if (size < 1)
        return 0;
    nparts = fuzz_split(data + 1, size - 1, parts);
    fuzz_smtp_build(data[0] % FUZZ_SMTP_CONFIGS, parts, nparts);
    fuzz_smtp_writers(&parts[0]);
    return 0;
}
