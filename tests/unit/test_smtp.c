/*
 * test_smtp.c - the e-mail target's messages: RFC 2047 encoded-words, CRLF line ends in 7bit
 * and quoted-printable bodies, addresses and header injection, Message-ID and Date, and whole
 * messages (one part and multipart/alternative) built from records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/smtp.h"
#include "route/smtp_message.h"

#define BUF_CAP (1024 * 1024)

static void text_header_case(const char *value, const char *want)
{
    struct ferry_buf b;

    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_smtp_add_text_header(&b, "Subject", value, strlen(value)), 0);
    assert_string_equal(b.data, want);
    ferry_buf_release(&b);
}

static void test_rfc2047(void **state)
{
    (void)state;
    text_header_case("Hello", "Subject: Hello\r\n");
    /* "Zoë ✓" as UTF-8, base64 */
    text_header_case("Zo\xc3\xab \xe2\x9c\x93", "Subject: =?utf-8?B?Wm/DqyDinJM=?=\r\n");
    /* text that looks like an encoded-word is encoded, so it reads back as written */
    text_header_case("=?x?", "Subject: =?utf-8?B?PT94Pw==?=\r\n");
    text_header_case("", "Subject: \r\n");
}

/* The value is value[0..len), not a C string: what follows it is not read (found by fuzz_smtp,
 * which read past the end of a value that looked plain). */
static void test_text_header_reads_only_its_length(void **state)
{
    static const char value[] = "Hi=?x?";
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_smtp_add_text_header(&b, "Subject", value, 2), 0);
    assert_string_equal(b.data, "Subject: Hi\r\n");
    ferry_buf_release(&b);
}

/* Long non-ASCII text folds into words that never cut a character, on lines of at most 76
 * characters, the first one's "Subject: " counted (RFC 2047 section 2). */
static void test_rfc2047_folds_between_characters(void **state)
{
    struct ferry_buf b;
    char value[200] = "";
    const char *line;

    (void)state;
    for (int i = 0; i < 30; i++)
        strcat(value, "\xc3\xa9"); /* é: 60 bytes */
    strcat(value, " and more text to pass one word");
    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_smtp_add_text_header(&b, "Subject", value, strlen(value)), 0);
    line = b.data;
    while (*line) {
        const char *end = strstr(line, "\r\n");
        assert_non_null(end);
        if (end - line > 76)
            fail_msg("a line of %d characters: %.*s", (int)(end - line), (int)(end - line), line);
        line += line == b.data ? strlen("Subject: ") : 1;
        assert_memory_equal(line, "=?utf-8?B?", 10);
        line = end + 2;
    }
    /* after "Subject: ", 39 bytes fit: the first word ends after 19 é (38 bytes), not inside
     * the 20th */
    assert_non_null(strstr(
        b.data, "Subject: =?utf-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6k=?=\r\n"));
    ferry_buf_release(&b);
}

static void body_case(const char *text, const char *want)
{
    struct ferry_buf b;

    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_smtp_add_body(&b, text, strlen(text)), 0);
    assert_string_equal(b.data, want);
    ferry_buf_release(&b);
}

static void test_crlf_normalisation(void **state)
{
    (void)state;
    body_case("a\nb", "Content-Transfer-Encoding: 7bit\r\n\r\na\r\nb\r\n");
    body_case("a\r\nb\r\n", "Content-Transfer-Encoding: 7bit\r\n\r\na\r\nb\r\n");
    body_case("a\rb\n\nc", "Content-Transfer-Encoding: 7bit\r\n\r\na\r\nb\r\n\r\nc\r\n");
    body_case(".\n", "Content-Transfer-Encoding: 7bit\r\n\r\n.\r\n"); /* libcurl dot-stuffs */
    body_case("", "Content-Transfer-Encoding: 7bit\r\n\r\n");
}

static void test_quoted_printable(void **state)
{
    char longline[200], want[400];

    (void)state;
    body_case("caf\xc3\xa9 = 1\n", "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                   "caf=C3=A9 =3D 1\r\n");
    body_case("tail \nx=_ferry_1",
              "Content-Transfer-Encoding: quoted-printable\r\n\r\ntail=20\r\nx=3D_ferry_1\r\n");
    memset(longline, 'a', 100);
    longline[100] = '\0';
    /* 7bit allows 998, so a 100-byte ASCII line stays 7bit */
    snprintf(want, sizeof(want), "Content-Transfer-Encoding: 7bit\r\n\r\n%s\r\n", longline);
    body_case(longline, want);
    memcpy(longline + 100, "\xc3\xa9", 3);
    snprintf(want, sizeof(want),
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n%.75s=\r\n%.25s=C3=A9\r\n",
             longline, longline + 75);
    body_case(longline, want);
}

struct address_case {
    const char *in;
    const char *name, *addr; /* NULL: refused */
    const char *why;         /* the start of the refusal */
};

static const struct address_case address_cases[] = {
    {"a@example.com", "", "a@example.com", NULL},
    {"  Ann Lee <ann@example.com> ", "Ann Lee", "ann@example.com", NULL},
    {"<ann@example.com>", "", "ann@example.com", NULL},
    {"Lee, Ann <ann@example.com>", "Lee, Ann", "ann@example.com", NULL},
    /* a quoted name is taken unquoted (and quoted again when written), whatever it holds */
    {"\"Lee, Ann\" <ann@example.com>", "Lee, Ann", "ann@example.com", NULL},
    {"\"Ann \\\"A\\\" <x@y>\" <ann@example.com>", "Ann \"A\" <x@y>", "ann@example.com", NULL},
    {"\"\" <ann@example.com>", "", "ann@example.com", NULL},
    {"\"A\" <a@example.com>, \"B\" <b@example.com>", NULL, NULL, "header injection"},
    {"\"A\" b@example.com <a@example.com>", NULL, NULL, "header injection"},
    {"a@example.com\r\nRCPT TO:<b@example.com>", NULL, NULL, "header injection"},
    {"a@example.com\nx", NULL, NULL, "header injection"},
    {"a@example.com, b@example.com", NULL, NULL, "header injection"},
    {"a@example.com;b@example.com", NULL, NULL, "header injection"},
    {"a@b@example.com", NULL, NULL, "header injection"},
    {"A <a@example.com>, B <b@example.com>", NULL, NULL, "header injection"},
    {"b@example.com <a@example.com>", NULL, NULL, "header injection"},
    {"", NULL, NULL, "invalid address"},
    {"nobody", NULL, NULL, "invalid address"},
    {"a b@example.com", NULL, NULL, "invalid address"},
    {"\xc3\xa4@example.com", NULL, NULL, "invalid address"},
    /* control bytes but HTAB, in the name or the address, as in an HTTP header template */
    {"Ann\x1b[2J <ann@example.com>", NULL, NULL,
     "header injection: value contains control byte 0x1B"},
    {"Ann <ann@example.com\x7f>", NULL, NULL, "header injection: value contains control byte 0x7F"},
    {"\x01"
     "a@example.com",
     NULL, NULL, "header injection: value contains control byte 0x01"},
    {"Ann\x0b <ann@example.com>", NULL, NULL, "header injection: value contains control byte 0x0B"},
    {"Ann\tLee <ann@example.com>\t", "Ann\tLee", "ann@example.com", NULL},
};

static void test_addresses(void **state)
{
    struct ferry_smtp_mailbox mb;
    char why[256];

    (void)state;
    for (size_t i = 0; i < sizeof(address_cases) / sizeof(address_cases[0]); i++) {
        const struct address_case *c = &address_cases[i];
        int rc = ferry_smtp_mailbox_parse(c->in, strlen(c->in), &mb, why, sizeof(why));
        if (c->addr) {
            assert_int_equal(rc, 0);
            assert_string_equal(mb.addr, c->addr);
            assert_string_equal(mb.name, c->name);
        } else {
            assert_int_equal(rc, -1);
            assert_memory_equal(why, c->why, strlen(c->why));
        }
    }
    /* a NUL inside the rendered value */
    assert_int_equal(ferry_smtp_mailbox_parse("a@x.c\0b@y.c", 11, &mb, why, sizeof(why)), -1);
    assert_memory_equal(why, "header injection", 16);
}

static void mailbox_case(const char *name, const char *want)
{
    struct ferry_smtp_mailbox mb;
    struct ferry_buf b;

    snprintf(mb.name, sizeof(mb.name), "%s", name);
    snprintf(mb.addr, sizeof(mb.addr), "a@example.com");
    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_smtp_add_mailbox(&b, &mb), 0);
    assert_string_equal(b.data, want);
    ferry_buf_release(&b);
}

static void test_mailbox_text(void **state)
{
    (void)state;
    mailbox_case("", "a@example.com");
    mailbox_case("Ann Lee", "Ann Lee <a@example.com>");
    mailbox_case("Lee, \"Ann\"", "\"Lee, \\\"Ann\\\"\" <a@example.com>");
    mailbox_case("Zo\xc3\xab", "=?utf-8?B?Wm/Dqw==?= <a@example.com>");
}

/* A name encoded late in a long address list starts a line of its own rather than pass 76
 * characters. */
static void test_mailbox_encoded_late_in_a_line_folds_first(void **state)
{
    struct ferry_smtp_mailbox mb = {.name = "Zo\xc3\xab", .addr = "a@example.com"};
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_buf_adds(&b, "Date: x\r\nTo: "), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(ferry_buf_adds(&b, "b@example.com, "), 0); /* column 79 */
    assert_int_equal(ferry_smtp_add_mailbox(&b, &mb), 0);
    assert_non_null(strstr(b.data, ", \r\n =?utf-8?B?Wm/Dqw==?= <a@example.com>"));
    ferry_buf_release(&b);
}

static void test_message_id_and_date(void **state)
{
    struct ferry_buf b;

    (void)state;
    ferry_buf_init(&b, BUF_CAP);
    assert_int_equal(ferry_smtp_add_message_id(&b, "signup", "users.new", 3, 1234, "example.com"),
                     0);
    assert_string_equal(b.data, "<ferry.signup.users=2Enew.3.1234@example.com>");
    ferry_buf_reset(&b);
    assert_int_equal(ferry_smtp_add_date(&b, INT64_C(1796385600000)), 0);
    assert_string_equal(b.data, "Fri, 04 Dec 2026 12:00:00 +0000");
    ferry_buf_release(&b);
}

/* ---- whole messages ---- */

static char *to_list[] = {"${value.name} <${value.email}>"};

static struct ferry_route_smtp_config config(const char *subject, const char *text,
                                             const char *html)
{
    struct ferry_route_smtp_config c = {0};

    c.url = "smtp://127.0.0.1:25";
    c.from = "Ferry <noreply@example.com>";
    c.to.items = to_list;
    c.to.count = 1;
    c.subject = (char *)subject;
    c.text = (char *)text;
    c.html = (char *)html;
    return c;
}

/* Builds the message of a record with value into msg; returns ferry_smtp_build's result. */
static int build(const struct ferry_route_smtp_config *c, const char *value, struct ferry_buf *msg,
                 char *why, size_t why_size)
{
    struct ferry_record rec = {"signups",     2,    77,  INT64_C(1796385600000), NULL, 0, value,
                               strlen(value), NULL, NULL};
    struct ferry_http_call call = {0};
    struct ferry_smtp_mail *mail = NULL;
    char err[256];
    ferry_smtp *s = ferry_smtp_new(c, "welcome", err, sizeof(err));
    int rc;

    assert_non_null(s);
    rc = ferry_smtp_build(s, &rec, 0, &mail, msg, &call, why, why_size);
    if (rc == 0) {
        assert_ptr_equal(call.protocol, &ferry_smtp_protocol);
        assert_ptr_equal(call.body, msg->data);
        assert_int_equal(call.body_len, msg->len);
    }
    ferry_smtp_mail_destroy(mail);
    ferry_smtp_destroy(s);
    return rc;
}

static void test_single_part_message(void **state)
{
    struct ferry_route_smtp_config c = config("Hi ${value.name}", "Hello\n${value.name}", NULL);
    struct ferry_buf msg;
    char why[256];

    (void)state;
    ferry_buf_init(&msg, BUF_CAP);
    assert_int_equal(
        build(&c, "{\"name\":\"Ann\",\"email\":\"ann@example.com\"}", &msg, why, sizeof(why)), 0);
    assert_string_equal(msg.data, "From: Ferry <noreply@example.com>\r\n"
                                  "To: Ann <ann@example.com>\r\n"
                                  "Subject: Hi Ann\r\n"
                                  "Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n"
                                  "Message-ID: <ferry.welcome.signups.2.77@example.com>\r\n"
                                  "MIME-Version: 1.0\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Transfer-Encoding: 7bit\r\n\r\n"
                                  "Hello\r\nAnn\r\n");
    ferry_buf_release(&msg);
}

static char *bcc_list[] = {"audit@example.com", "${value.boss}"};

/* bcc recipients are not named in the message; Reply-To follows the recipients' headers. */
static void test_bcc_and_reply_to(void **state)
{
    struct ferry_route_smtp_config c = config("Hi", "t", NULL);
    struct ferry_buf msg;
    char why[256];

    (void)state;
    c.bcc.items = bcc_list;
    c.bcc.count = 2;
    c.reply_to = "Support <${value.help}>";
    ferry_buf_init(&msg, BUF_CAP);
    assert_int_equal(
        build(&c,
              "{\"name\":\"Ann\",\"email\":\"ann@example.com\",\"boss\":\"b@example.com\","
              "\"help\":\"help@example.com\"}",
              &msg, why, sizeof(why)),
        0);
    assert_memory_equal(msg.data,
                        "From: Ferry <noreply@example.com>\r\n"
                        "To: Ann <ann@example.com>\r\n"
                        "Reply-To: Support <help@example.com>\r\n"
                        "Subject: Hi\r\n",
                        strlen("From: Ferry <noreply@example.com>\r\nTo: Ann <ann@example.com>\r\n"
                               "Reply-To: Support <help@example.com>\r\nSubject: Hi\r\n"));
    assert_null(strstr(msg.data, "audit@"));
    assert_null(strstr(msg.data, "b@example.com"));
    assert_int_equal(
        build(&c,
              "{\"name\":\"A\",\"email\":\"a@example.com\",\"boss\":\"b@x.com\\nX: y\","
              "\"help\":\"h@x.com\"}",
              &msg, why, sizeof(why)),
        -1);
    assert_string_equal(why, "header injection: target.smtp.bcc: value contains CR, LF or NUL");
    assert_int_equal(build(&c,
                           "{\"name\":\"A\",\"email\":\"a@example.com\",\"boss\":\"b@x.com\","
                           "\"help\":\"h@x.com>, <e@x.com\"}",
                           &msg, why, sizeof(why)),
                     -1);
    assert_memory_equal(why, "header injection: target.smtp.reply_to: more than one address",
                        strlen("header injection: target.smtp.reply_to: more than one address"));
    ferry_buf_release(&msg);
}

static struct ferry_cfg_kv extra_headers[] = {{"X-Campaign", "${value.c}"},
                                              {"List-Unsubscribe", "<https://x.example/u>"}};

/* The route's own header fields follow the Subject, non-ASCII text encoded as in the Subject;
 * a value with a line break is header injection. */
static void test_extra_headers(void **state)
{
    struct ferry_route_smtp_config c = config("Hi", "t", NULL);
    struct ferry_buf msg;
    char why[256];

    (void)state;
    c.headers.items = extra_headers;
    c.headers.count = 2;
    ferry_buf_init(&msg, BUF_CAP);
    assert_int_equal(build(&c, "{\"name\":\"A\",\"email\":\"a@example.com\",\"c\":\"sp\u00e4t\"}",
                           &msg, why, sizeof(why)),
                     0);
    assert_non_null(strstr(msg.data, "Subject: Hi\r\nX-Campaign: =?utf-8?B?c3DDpHQ=?=\r\n"
                                     "List-Unsubscribe: <https://x.example/u>\r\nDate: "));
    assert_int_equal(
        build(&c, "{\"name\":\"A\",\"email\":\"a@example.com\",\"c\":\"x\\r\\nBcc: e@x.com\"}",
              &msg, why, sizeof(why)),
        -1);
    assert_string_equal(
        why, "header injection: target.smtp.headers.X-Campaign: value contains CR, LF or NUL");
    ferry_buf_release(&msg);
}

/* A name the config checks would refuse is refused again when the target is made. */
static void test_header_name_checked_again(void **state)
{
    static struct ferry_cfg_kv bad[] = {{"X-A\r\nBcc", "x"}};
    struct ferry_route_smtp_config c = config("Hi", "t", NULL);
    char err[256] = "";

    (void)state;
    c.headers.items = bad;
    c.headers.count = 1;
    assert_null(ferry_smtp_new(&c, "welcome", err, sizeof(err)));
    assert_non_null(strstr(err, "target.smtp.headers.X-A"));
    assert_non_null(strstr(err, "expected a field name"));
}

/* Values in html are escaped; the same value in text is not. */
static void test_html_values_are_escaped(void **state)
{
    struct ferry_route_smtp_config c = config("Hi", "${value.bio}", "<b>${value.bio}</b>");
    struct ferry_buf msg;
    char why[256];

    (void)state;
    ferry_buf_init(&msg, BUF_CAP);
    assert_int_equal(
        build(&c, "{\"name\":\"A\",\"bio\":\"<a href='x'>&\\\"\",\"email\":\"a@example.com\"}",
              &msg, why, sizeof(why)),
        0);
    assert_non_null(strstr(msg.data, "\r\n\r\n<a href='x'>&\"\r\n"));
    assert_non_null(strstr(msg.data, "<b>&lt;a href=&#39;x&#39;&gt;&amp;&quot;</b>"));
    ferry_buf_release(&msg);
}

static void test_multipart_message(void **state)
{
    struct ferry_route_smtp_config c = config("Hi", "plain ${value.name}", "<b>${value.name}</b>");
    struct ferry_buf msg;
    char why[256];
    const char *body;

    (void)state;
    ferry_buf_init(&msg, BUF_CAP);
    assert_int_equal(
        build(&c, "{\"name\":\"Ann\",\"email\":\"ann@example.com\"}", &msg, why, sizeof(why)), 0);
    body = strstr(msg.data, "Content-Type: multipart/alternative");
    assert_non_null(body);
    assert_string_equal(body, "Content-Type: multipart/alternative; boundary=\"=_ferry_2_77\"\r\n"
                              "\r\n--=_ferry_2_77\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: 7bit\r\n\r\n"
                              "plain Ann\r\n"
                              "\r\n--=_ferry_2_77\r\n"
                              "Content-Type: text/html; charset=utf-8\r\n"
                              "Content-Transfer-Encoding: 7bit\r\n\r\n"
                              "<b>Ann</b>\r\n"
                              "\r\n--=_ferry_2_77--\r\n");
    ferry_buf_release(&msg);
}

struct injection_case {
    const char *value;
    const char *why;
};

static const struct injection_case injection_cases[] = {
    {"{\"name\":\"A\",\"email\":\"a@x.com\\r\\nRCPT TO:<e@x.com>\"}",
     "header injection: target.smtp.to: value contains CR, LF or NUL"},
    {"{\"name\":\"A\",\"email\":\"a@x.com>, <e@x.com\"}",
     "header injection: target.smtp.to: more than one address"},
    {"{\"name\":\"A\\nBcc: e@x.com\",\"email\":\"a@x.com\"}",
     "header injection: target.smtp.to: value contains CR, LF or NUL"},
    {"{\"name\":\"A\",\"email\":\"a@x.com\",\"s\":\"x\\u0000y\"}",
     "header injection: target.smtp.subject: value contains CR, LF or NUL"},
    {"{\"name\":\"A\\u001b]8;;http://x\\u0007\",\"email\":\"a@x.com\"}",
     "header injection: target.smtp.to: value contains control byte 0x1B"},
    {"{\"name\":\"A\",\"email\":\"a@x.com\",\"s\":\"x\\u0007y\"}",
     "header injection: target.smtp.subject: value contains control byte 0x07"},
    {"{\"name\":\"A\",\"email\":\"a@x.com\",\"s\":\"x\\u007fy\"}",
     "header injection: target.smtp.subject: value contains control byte 0x7F"},
    {"{\"name\":\"A\",\"email\":\"a@x.com\",\"s\":\"\\u001b[31mred\"}",
     "header injection: target.smtp.subject: value contains control byte 0x1B"},
    {"{\"name\":\"A\",\"email\":\"nobody\"}", "target.smtp.to: invalid address"},
    {"{\"name\":\"A\"}", "target.smtp.to: template"},
};

static void test_injection_refused(void **state)
{
    struct ferry_route_smtp_config c = config("S ${value.s}", "t", NULL);
    struct ferry_route_smtp_config plain = config("S", "t", NULL);
    struct ferry_buf msg;
    char why[256];

    (void)state;
    ferry_buf_init(&msg, BUF_CAP);
    for (size_t i = 0; i < sizeof(injection_cases) / sizeof(injection_cases[0]); i++) {
        const struct injection_case *k = &injection_cases[i];
        /* the subject case needs ${value.s}; the others must fail before the subject */
        const struct ferry_route_smtp_config *cc = strstr(k->value, "\"s\"") ? &c : &plain;
        assert_int_equal(build(cc, k->value, &msg, why, sizeof(why)), -1);
        assert_memory_equal(why, k->why, strlen(k->why));
    }
    ferry_buf_release(&msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc2047),
        cmocka_unit_test(test_text_header_reads_only_its_length),
        cmocka_unit_test(test_rfc2047_folds_between_characters),
        cmocka_unit_test(test_mailbox_encoded_late_in_a_line_folds_first),
        cmocka_unit_test(test_crlf_normalisation),
        cmocka_unit_test(test_quoted_printable),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_mailbox_text),
        cmocka_unit_test(test_message_id_and_date),
        cmocka_unit_test(test_single_part_message),
        cmocka_unit_test(test_multipart_message),
        cmocka_unit_test(test_html_values_are_escaped),
        cmocka_unit_test(test_bcc_and_reply_to),
        cmocka_unit_test(test_extra_headers),
        cmocka_unit_test(test_header_name_checked_again),
        cmocka_unit_test(test_injection_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
