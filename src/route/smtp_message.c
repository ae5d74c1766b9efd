/*
 * smtp_message.c - header fields, addresses, bodies and ids of an e-mail (see smtp_message.h).
 *
 * Everything written here is 7-bit and CRLF-terminated, so any SMTP server takes it without
 * 8BITMIME or SMTPUTF8: non-ASCII header text becomes encoded-words, non-ASCII or long body
 * lines quoted-printable. A value is never allowed to end a header line early: the callers
 * refuse CR, LF, NUL and every other control byte but HTAB (ferry_smtp_header_value_check,
 * the rule of core/header_value.h, as for HTTP headers) before anything is written.
 */
#include "route/smtp_message.h"
#include "core/base64.h"
#include "core/header_value.h"
#include "core/hex.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_OCTETS 998      /* RFC 5322 2.1.1: the longest line */
#define WORD_MAX_BYTES 45        /* text in one encoded-word: 60 base64 chars, 72 in all */
#define WORD_LINE_MAX 76         /* RFC 2047 2: a line that holds an encoded-word */
#define WORD_OVERHEAD 12         /* "=?utf-8?B?" and "?=" */
#define QP_LINE_MAX 76           /* RFC 2045 6.7: quoted-printable line length */
#define BOUNDARY_MARK "=_ferry_" /* smtp.c's boundaries start so; 7bit text must not hold it */

/* Characters an address may not hold: they separate, quote or comment in a header. */
static const char address_specials[] = " \t,;<>()[]\\\":";
/* Characters a display name may hold unquoted (atext and spaces). */
static const char atext_extra[] = "!#$%&'*+-/=?^_`{|}~ ";

int ferry_smtp_has_line_break(const char *text, size_t len)
{
    return memchr(text, '\r', len) || memchr(text, '\n', len) || memchr(text, '\0', len);
}

int ferry_smtp_header_value_check(const char *text, size_t len, char *errstr, size_t errstr_size)
{
    size_t at = ferry_header_value_unsafe(text, len);
    unsigned char c = at < len ? (unsigned char)text[at] : 0;

    if (at == len)
        return 0;
    if (c == '\r' || c == '\n' || c == '\0')
        snprintf(errstr, errstr_size, "value contains CR, LF or NUL");
    else
        snprintf(errstr, errstr_size, "value contains control byte 0x%02X", c);
    return -1;
}

static size_t trim(const char **text, size_t len)
{
    while (len && (**text == ' ' || **text == '\t')) {
        (*text)++;
        len--;
    }
    while (len && ((*text)[len - 1] == ' ' || (*text)[len - 1] == '\t'))
        len--;
    return len;
}

/* Checks one addr-spec; more than one address is injection, anything else invalid. */
static int check_addr(const char *a, size_t len, char *errstr, size_t errstr_size)
{
    const char *at = memchr(a, '@', len);

    if (memchr(a, ',', len) || memchr(a, ';', len) || memchr(a, '<', len) || memchr(a, '>', len) ||
        (at && memchr(at + 1, '@', len - (size_t)(at - a) - 1))) {
        snprintf(errstr, errstr_size, "header injection: more than one address");
        return -1;
    }
    if (!at || at == a || at == a + len - 1 || len > FERRY_SMTP_ADDRESS_MAX) {
        snprintf(errstr, errstr_size, "invalid address: expected local@domain, got '%.*s'",
                 (int)(len > 80 ? 80 : len), a);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || strchr(address_specials, c)) {
            snprintf(errstr, errstr_size,
                     "invalid address: '%.*s' holds a space, a special or "
                     "a non-ASCII byte",
                     (int)(len > 80 ? 80 : len), a);
            return -1;
        }
    }
    return 0;
}

/* Copies name[0..len), when it is one quoted-string ("Lee, Ann", with \" and \\ inside),
 * into out unquoted, cut at FERRY_SMTP_NAME_MAX bytes. Returns 0, or -1 when it is not one:
 * then it is taken as written. */
static int unquote_name(const char *name, size_t len, char *out)
{
    size_t n = 0;

    if (len < 2 || name[0] != '"' || name[len - 1] != '"')
        return -1;
    for (size_t i = 1; i < len - 1; i++) {
        char c = name[i];
        if (c == '"')
            return -1; /* it ends before the last quote: more than one word */
        if (c == '\\' && ++i == len - 1)
            return -1;
        if (n < FERRY_SMTP_NAME_MAX)
            out[n++] = name[i];
    }
    out[n] = '\0';
    return 0;
}

int ferry_smtp_mailbox_parse(const char *text, size_t len, struct ferry_smtp_mailbox *mb,
                             char *errstr, size_t errstr_size)
{
    const char *addr = text, *lt;
    size_t addr_len, name_len = 0;
    int quoted = 0;
    char why[64];

    mb->name[0] = mb->addr[0] = '\0';
    if (ferry_smtp_header_value_check(text, len, why, sizeof(why))) {
        snprintf(errstr, errstr_size, "header injection: %s", why);
        return -1;
    }
    len = trim(&text, len);
    addr = text;
    addr_len = len;
    if (len && text[len - 1] == '>') {
        lt = memrchr(text, '<', len);
        if (!lt) {
            snprintf(errstr, errstr_size, "invalid address: '>' without '<'");
            return -1;
        }
        addr = lt + 1;
        addr_len = (size_t)(text + len - 1 - addr);
        name_len = (size_t)(lt - text);
        name_len = trim(&text, name_len);
        /* a quoted name may hold anything but a line break (checked above): it is quoted
         * again when written (ferry_smtp_add_mailbox) */
        quoted = unquote_name(text, name_len, mb->name) == 0;
        if (!quoted && (memchr(text, '<', name_len) || memchr(text, '>', name_len) ||
                        memchr(text, '@', name_len))) {
            snprintf(errstr, errstr_size, "header injection: more than one address");
            return -1;
        }
        if (name_len > FERRY_SMTP_NAME_MAX)
            name_len = FERRY_SMTP_NAME_MAX;
    }
    if (check_addr(addr, addr_len, errstr, errstr_size))
        return -1;
    memcpy(mb->addr, addr, addr_len);
    mb->addr[addr_len] = '\0';
    if (!quoted) {
        memcpy(mb->name, text, name_len);
        mb->name[name_len] = '\0';
    }
    return 0;
}

static int is_printable_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* The length of the longest run from s[0..len) of at most max bytes that does not cut a UTF-8
 * character (continuation bytes are 10xxxxxx). */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;

    if (n == len)
        return n;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n ? n : (len < max ? len : max);
}

/* How many characters the last line of out holds already. */
static size_t line_column(const struct ferry_buf *out)
{
    const char *nl = out->len ? memrchr(out->data, '\n', out->len) : NULL;

    return nl ? out->len - (size_t)(nl + 1 - out->data) : out->len;
}

/* How many bytes of text an encoded-word that starts at column col can hold, its line kept to
 * WORD_LINE_MAX characters: whole groups of 3 bytes, 4 base64 characters each. */
static size_t word_room(size_t col)
{
    size_t chars = WORD_LINE_MAX > col + WORD_OVERHEAD ? WORD_LINE_MAX - col - WORD_OVERHEAD : 0;
    size_t n = chars / 4 * 3;

    return n < WORD_MAX_BYTES ? n : WORD_MAX_BYTES;
}

/* Appends text as encoded-words separated by folding (CRLF SP), no line past WORD_LINE_MAX:
 * the first word takes what is left of the line it starts on, or starts a line of its own when
 * that is less than two characters of UTF-8 (6 bytes). */
static int add_encoded_words(struct ferry_buf *out, const char *s, size_t len)
{
    size_t room = word_room(line_column(out));
    int first = 1;

    if (room < 6) {
        if (ferry_buf_add(out, "\r\n ", 3))
            return -1;
        room = WORD_MAX_BYTES;
    }
    while (len || first) {
        size_t n = utf8_cut(s, len, room);
        if ((!first && ferry_buf_add(out, "\r\n ", 3)) || ferry_buf_adds(out, "=?utf-8?B?") ||
            ferry_base64_encode(out, s, n, FERRY_BASE64_STD) || ferry_buf_add(out, "?=", 2))
            return -1;
        s += n;
        len -= n;
        first = 0;
        room = WORD_MAX_BYTES;
    }
    return 0;
}

int ferry_smtp_add_text_header(struct ferry_buf *out, const char *name, const char *value,
                               size_t len)
{
    int rc = ferry_buf_adds(out, name) || ferry_buf_add(out, ": ", 2);

    if (rc)
        return -1;
    if (is_printable_ascii(value, len) && strlen(name) + 2 + len <= LINE_MAX_OCTETS &&
        !memmem(value, len, "=?", 2))
        rc = ferry_buf_add(out, value, len);
    else
        rc = add_encoded_words(out, value, len);
    return rc || ferry_buf_add(out, "\r\n", 2) ? -1 : 0;
}

static int name_is_atoms(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            !strchr(atext_extra, c))
            return 0;
    }
    return 1;
}

static int add_quoted(struct ferry_buf *out, const char *s)
{
    if (ferry_buf_addc(out, '"'))
        return -1;
    for (; *s; s++)
        if ((*s == '"' || *s == '\\') ? ferry_buf_addc(out, '\\') || ferry_buf_addc(out, *s)
                                      : ferry_buf_addc(out, *s))
            return -1;
    return ferry_buf_addc(out, '"');
}

int ferry_smtp_add_mailbox(struct ferry_buf *out, const struct ferry_smtp_mailbox *mb)
{
    size_t len = strlen(mb->name);
    int rc = 0;

    if (!len)
        return ferry_buf_adds(out, mb->addr);
    if (!is_printable_ascii(mb->name, len) || strstr(mb->name, "=?"))
        rc = add_encoded_words(out, mb->name, len);
    else if (name_is_atoms(mb->name))
        rc = ferry_buf_adds(out, mb->name);
    else
        rc = add_quoted(out, mb->name);
    return rc || ferry_buf_add(out, " <", 2) || ferry_buf_adds(out, mb->addr) ||
                   ferry_buf_addc(out, '>')
               ? -1
               : 0;
}

/* ---- bodies ---- */

/* The length of the line at s (up to its line end) and, in *next, where the next one starts. */
static size_t line_at(const char *s, size_t len, size_t *next)
{
    size_t n = 0;

    while (n < len && s[n] != '\n' && s[n] != '\r')
        n++;
    *next = n;
    if (n < len && s[n] == '\r')
        (*next)++;
    if (*next < len && s[*next] == '\n' && (n == *next || s[n] == '\r'))
        (*next)++;
    return n;
}

static int fits_7bit(const char *s, size_t len)
{
    size_t next;

    if (memmem(s, len, BOUNDARY_MARK, strlen(BOUNDARY_MARK)))
        return 0;
    while (len) {
        size_t n = line_at(s, len, &next);
        if (n > LINE_MAX_OCTETS)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || (unsigned char)s[i] > 0x7e)
                return 0;
        s += next;
        len -= next;
    }
    return 1;
}

static int add_7bit(struct ferry_buf *out, const char *s, size_t len)
{
    size_t next;

    while (len) {
        size_t n = line_at(s, len, &next);
        if (ferry_buf_add(out, s, n) || ferry_buf_add(out, "\r\n", 2))
            return -1;
        s += next;
        len -= next;
    }
    return 0;
}

/* Appends one line quoted-printable, with soft breaks, and its CRLF. */
static int add_qp_line(struct ferry_buf *out, const unsigned char *s, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        int last = i + 1 == n;
        int plain =
            (s[i] >= 33 && s[i] <= 126 && s[i] != '=') || ((s[i] == ' ' || s[i] == '\t') && !last);
        char esc[3] = {'=', ferry_hex_upper(s[i] >> 4), ferry_hex_upper(s[i])};
        size_t w = plain ? 1 : 3;
        if (col + w > QP_LINE_MAX - 1) {
            if (ferry_buf_add(out, "=\r\n", 3))
                return -1;
            col = 0;
        }
        if (plain ? ferry_buf_addc(out, (char)s[i]) : ferry_buf_add(out, esc, 3))
            return -1;
        col += w;
    }
    return ferry_buf_add(out, "\r\n", 2);
}

static int add_qp(struct ferry_buf *out, const char *s, size_t len)
{
    size_t next;

    while (len) {
        size_t n = line_at(s, len, &next);
        if (add_qp_line(out, (const unsigned char *)s, n))
            return -1;
        s += next;
        len -= next;
    }
    return 0;
}

int ferry_smtp_add_body(struct ferry_buf *out, const char *text, size_t len)
{
    int seven = fits_7bit(text, len);

    if (ferry_buf_adds(out, "Content-Transfer-Encoding: ") ||
        ferry_buf_adds(out, seven ? "7bit\r\n\r\n" : "quoted-printable\r\n\r\n"))
        return -1;
    return seven ? add_7bit(out, text, len) : add_qp(out, text, len);
}

/* ---- ids and dates ---- */

static int add_id_name(struct ferry_buf *out, const char *name)
{
    for (; *name; name++)
        if (*name == '.' ? ferry_buf_add(out, "=2E", 3) : ferry_buf_addc(out, *name))
            return -1;
    return 0;
}

int ferry_smtp_add_message_id(struct ferry_buf *out, const char *route, const char *topic,
                              int32_t partition, int64_t offset, const char *domain)
{
    if (ferry_buf_adds(out, "<ferry.") || add_id_name(out, route) || ferry_buf_addc(out, '.') ||
        add_id_name(out, topic))
        return -1;
    return ferry_buf_addf(out, ".%d.%lld@%s>", (int)partition, (long long)offset, domain);
}

int ferry_smtp_add_date(struct ferry_buf *out, int64_t ms)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm))
        return -1;
    return ferry_buf_addf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
                          tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                          tm.tm_sec);
}
