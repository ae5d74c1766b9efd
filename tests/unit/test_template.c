/*
 * test_template.c - tables of templates: what they compile to, what they render from a few
 * fixed records, and the messages of the errors a route would dead-letter a record with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route/template.h"

#define URL FERRY_TEMPLATE_URL
#define HDR FERRY_TEMPLATE_HEADER
#define BODY FERRY_TEMPLATE_BODY

static const char value_json[] =
    "{\"user\":{\"id\":7,\"name\":\"Ann Lee\"},"
    "\"items\":[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B/2\"}],"
    "\"price\":12.5,\"ratio\":0.1,\"whole\":3.0,\"big\":1e300,\"neg\":-3,"
    "\"ok\":true,\"no\":false,\"none\":null,\"text\":\"a\\nb\",\"nul\":\"a\\u0000b\","
    "\"obj\": { \"x\" : [1, \"y\\\"\", {}], \"e\": \"\\u00e9\" },"
    "\"0\":\"zero key\",\"a.b\":\"dotted\"}";

/* Names and numbers the shared path lookup (docs/json-paths.md) and the normal form meet. */
static const char paths_json[] =
    "{\"caf\\u00e9\":\"x\",\"a\":1,\"a\":2,"
    "\"a2345678901234567890123456789012345678901234567890123456789012345678\":\"L\","
    "\"n\":[1.50,1E2,\"\\u0041\\/\"],\"m\":[123456789012345678901]}";

/* The records the cases render from; built in setup because headers need librdkafka. */
enum { REC_FULL, REC_BARE, REC_TEXT, REC_ARRAY, REC_BIGINT, REC_PATHS, NRECS };
static struct ferry_record recs[NRECS];

static int setup(void **state)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);

    (void)state;
    rd_kafka_header_add(h, "x-id", -1, "abc", -1);
    rd_kafka_header_add(h, "x-id", -1, "def", -1);
    rd_kafka_header_add(h, "x-nil", -1, NULL, 0);
    rd_kafka_header_add(h, "x-crlf", -1, "a\r\nb", -1);
    rd_kafka_header_add(h, "x-space", -1, "a b&c", -1);
    recs[REC_FULL] = (struct ferry_record){
        "orders", 3,   42, 1700000000123, "user/1 \xC3\xA4", 9, value_json, sizeof(value_json) - 1,
        h,        NULL};
    recs[REC_BARE] = (struct ferry_record){"t.x", 0, 0, -1, NULL, 0, NULL, 0, NULL, NULL};
    recs[REC_TEXT] = (struct ferry_record){"t", 1, 9, 5, "", 0, "not json", 8, NULL, NULL};
    recs[REC_ARRAY] = (struct ferry_record){"t", 1, 9, 5, "k", 1, "[[1,2],\"s\"] ", 12, NULL, NULL};
    recs[REC_BIGINT] = (struct ferry_record){
        "t", 1, 9, 5, NULL, 0, "{\"n\":123456789012345678901}", 27, NULL, NULL};
    recs[REC_PATHS] = (struct ferry_record){
        "t", 1, 9, 5, NULL, 0, paths_json, sizeof(paths_json) - 1, NULL, NULL};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rd_kafka_headers_destroy(recs[REC_FULL].headers);
    return 0;
}

struct render_case {
    const char *text;
    enum ferry_template_mode mode;
    int rec;
    int want_rc;
    const char *want; /* the output, or the error message when want_rc is not 0; a message
                         ending in '*' is a prefix (the JSON checker words the rest) */
};

static const struct render_case render_cases[] = {
    /* plain variables */
    {"", BODY, REC_FULL, 0, ""},
    {"no variables", BODY, REC_FULL, 0, "no variables"},
    {"${topic}/${partition}/${offset}@${timestamp}", BODY, REC_FULL, 0,
     "orders/3/42@1700000000123"},
    {"$$${offset}$$ $$$$", BODY, REC_FULL, 0, "$42$ $$"},
    {"k=${key}", BODY, REC_FULL, 0, "k=user/1 \xC3\xA4"},
    {"k=${key};t=${timestamp};v=${value}", BODY, REC_BARE, 0, "k=;t=;v="},
    {"${value}", BODY, REC_TEXT, 0, "not json"},
    {"${key}|", BODY, REC_TEXT, 0, "|"},
    /* headers: the last of repeated names wins, a null value renders empty */
    {"${header.x-id}", BODY, REC_FULL, 0, "def"},
    {"[${header.x-nil}]", HDR, REC_FULL, 0, "[]"},
    {"${header.x-crlf}", BODY, REC_FULL, 0, "a\r\nb"},
    {"${header.missing}", BODY, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${header.missing}': record has no header 'missing'"},
    {"${header.x-id}", BODY, REC_BARE, FERRY_TEMPLATE_EREC,
     "template: '${header.x-id}': record has no header 'x-id'"},
    /* header mode refuses values that would split the header */
    {"Bearer ${header.x-crlf}", HDR, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${header.x-crlf}': value contains CR, LF or NUL, which a header cannot carry"},
    {"${value.text}", HDR, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.text}': value contains CR, LF or NUL, which a header cannot carry"},
    {"${value.nul}", HDR, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.nul}': value contains CR, LF or NUL, which a header cannot carry"},
    {"${value.obj}", HDR, REC_FULL, 0, "{\"x\":[1,\"y\\\"\",{}],\"e\":\"\xC3\xA9\"}"},
    /* url mode encodes substituted text, not the literal text */
    {"http://h/a b/${key}?q=${header.x-space}&t=${topic}", URL, REC_FULL, 0,
     "http://h/a b/user%2F1%20%C3%A4?q=a%20b%26c&t=orders"},
    {"/${value.items.1.sku}/${value.user.name}/${value.price}", URL, REC_FULL, 0,
     "/B%2F2/Ann%20Lee/12.5"},
    {"/${value.items.0}", URL, REC_FULL, 0, "/%7B%22sku%22%3A%22A-1%22%2C%22qty%22%3A2%7D"},
    {"-._~${topic}", URL, REC_BARE, 0, "-._~t.x"},
    /* value paths: scalars, containers, array indexes, numeric object keys */
    {"${value.user.id}|${value.user.name}", BODY, REC_FULL, 0, "7|Ann Lee"},
    {"${value.items.0.sku}:${value.items.0.qty}", BODY, REC_FULL, 0, "A-1:2"},
    {"${value.price} ${value.ratio} ${value.whole} ${value.big} ${value.neg}", BODY, REC_FULL, 0,
     "12.5 0.1 3.0 1e+300 -3"},
    {"${value.ok},${value.no},[${value.none}]", BODY, REC_FULL, 0, "true,false,[]"},
    {"${value.text}", BODY, REC_FULL, 0, "a\nb"},
    {"${value.obj}", BODY, REC_FULL, 0, "{\"x\":[1,\"y\\\"\",{}],\"e\":\"\xC3\xA9\"}"},
    {"${value.items}", BODY, REC_FULL, 0, "[{\"sku\":\"A-1\",\"qty\":2},{\"sku\":\"B/2\"}]"},
    {"${value.0}", BODY, REC_FULL, 0, "zero key"},
    {"${value.0.1}|${value.1}", BODY, REC_ARRAY, 0, "2|s"},
    {"{\"id\":${value.user.id},\"v\":${value.obj.x}}", BODY, REC_FULL, 0,
     "{\"id\":7,\"v\":[1,\"y\\\"\",{}]}"},
    /* value path errors */
    {"${value.user.email}", BODY, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.user.email}': record value has nothing at 'user.email'"},
    {"${value.items.2.sku}", BODY, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.items.2.sku}': record value has nothing at 'items.2'"},
    {"${value.items.01}", BODY, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.items.01}': record value has nothing at 'items.01'"},
    {"${value.price.x}", BODY, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.price.x}': record value has nothing at 'price.x'"},
    {"${value.a.b}", BODY, REC_FULL, FERRY_TEMPLATE_EREC,
     "template: '${value.a.b}': record value has nothing at 'a'"},
    {"${value.x}", BODY, REC_TEXT, FERRY_TEMPLATE_EREC,
     "template: '${value.x}': record value is not JSON: *"},
    {"${value.x}", BODY, REC_BARE, FERRY_TEMPLATE_EREC,
     "template: '${value.x}': record has no value (tombstone)"},
    {"${value.n}", BODY, REC_BIGINT, FERRY_TEMPLATE_EREC,
     "template: '${value.n}': record value is not JSON: *"},
    {"${value.x}", BODY, REC_TEXT, FERRY_TEMPLATE_EREC,
     "template: '${value.x}': record value is not JSON: expected a value (at byte 0)"},
    {"${value.n}", URL, REC_BIGINT, FERRY_TEMPLATE_EREC,
     "template: '${value.n}': record value is not JSON: integer out of range (at byte 5)"},
    {"${value.m}", BODY, REC_PATHS, FERRY_TEMPLATE_EREC,
     "template: '${value.m}': record value is not JSON: integer out of range (at byte 135)"},
    /* the path syntax webhook keys share: decoded names of any length, the first of a repeated
     * name; containers and numbers in normal form */
    {"${value.caf\xC3\xA9}|${value.a}", BODY, REC_PATHS, 0, "x|1"},
    {"${value.a2345678901234567890123456789012345678901234567890123456789012345678}", HDR,
     REC_PATHS, 0, "L"},
    {"${value.n}", BODY, REC_PATHS, 0, "[1.5,100.0,\"A/\"]"},
    {"/${value.n.2}/${value.n.1}", URL, REC_PATHS, 0, "/A%2F/100.0"},
    {"${value.n.3}", BODY, REC_PATHS, FERRY_TEMPLATE_EREC,
     "template: '${value.n.3}': record value has nothing at 'n.3'"},
};

static int same_message(const char *got, const char *want)
{
    size_t n = strlen(want);

    if (n && want[n - 1] == '*')
        return strncmp(got, want, n - 1) == 0;
    return strcmp(got, want) == 0;
}

/* Renders into a buffer that already holds "<" so that appending and rewinding show. */
static void check_render(size_t i, const struct render_case *c)
{
    char errstr[512] = "";
    struct ferry_buf out;
    ferry_template *t = ferry_template_new(c->text, c->mode, errstr, sizeof(errstr));
    int rc;

    if (!t)
        fail_msg("case %zu '%s': compile failed: %s", i, c->text, errstr);
    ferry_buf_init(&out, 4096);
    assert_int_equal(ferry_buf_addc(&out, '<'), 0);
    rc = ferry_template_render(t, &recs[c->rec], &out, errstr, sizeof(errstr));
    if (rc != c->want_rc)
        fail_msg("case %zu '%s': rc %d, want %d (%s)", i, c->text, rc, c->want_rc, errstr);
    if (rc == 0 && strcmp(out.data + 1, c->want) != 0)
        fail_msg("case %zu '%s': got '%s', want '%s'", i, c->text, out.data + 1, c->want);
    if (rc != 0 && !same_message(errstr, c->want))
        fail_msg("case %zu '%s': error '%s', want '%s'", i, c->text, errstr, c->want);
    if (rc != 0 && (strcmp(out.data, "<") != 0 || out.failed))
        fail_msg("case %zu '%s': output not rewound: '%s'", i, c->text, out.data);
    ferry_buf_release(&out);
    ferry_template_destroy(t);
}

static void test_render(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++)
        check_render(i, &render_cases[i]);
}

struct compile_case {
    const char *text;
    enum ferry_template_mode mode;
    const char *want_err; /* NULL when the template compiles */
    int constant;
};

static const struct compile_case compile_cases[] = {
    {"", BODY, NULL, 1},
    {"plain", URL, NULL, 1},
    {"a$$b", HDR, NULL, 1},
    {"${topic}", URL, NULL, 0},
    {"${header.a.b}", HDR, NULL, 0},
    {"${value.a.0.b}", BODY, NULL, 0},
    {"line\nbreak", BODY, NULL, 1},
    {"${ofset}", URL, "template: unknown variable '${ofset}'", 0},
    {"${}", URL, "template: unknown variable '${}'", 0},
    {"${header.}", URL, "template: unknown variable '${header.}'", 0},
    {"${Topic}", URL, "template: unknown variable '${Topic}'", 0},
    {"${env:HOME}", URL, "template: unknown variable '${env:HOME}'", 0},
    {"${value.}", URL, "template: empty path segment in '${value.}'", 0},
    {"${value.a..b}", URL, "template: empty path segment in '${value.a..b}'", 0},
    {"${value.a.}", URL, "template: empty path segment in '${value.a.}'", 0},
    {"ab${topic", URL, "template: unterminated '${' at offset 2", 0},
    {"${a${topic}}", URL, "template: unterminated '${' at offset 0", 0},
    {"${a{b}", URL, "template: unterminated '${' at offset 0", 0},
    {"price $5", BODY, "template: '$' at offset 6 is not followed by '{' (write '$$' for a '$')",
     0},
    {"end$", BODY, "template: '$' at offset 3 is not followed by '{' (write '$$' for a '$')", 0},
    {"a\r\nb", HDR, "template: header template has CR or LF at offset 1", 0},
    {"${topic}\n", HDR, "template: header template has CR or LF at offset 8", 0},
    /* nor any other control byte but HTAB, in header mode only */
    {"a\tb ${key}", HDR, NULL, 0},
    {"a\x01${key}", HDR, "template: header template has control byte 0x01 at offset 1", 0},
    {"${key}\x1b[31m", HDR, "template: header template has control byte 0x1B at offset 6", 0},
    {"x\x7f", HDR, "template: header template has control byte 0x7F at offset 1", 0},
    {"\x1f", HDR, "template: header template has control byte 0x1F at offset 0", 0},
    {"a\x01\x7f", BODY, NULL, 1},
    {"/a\x1b${key}", URL, NULL, 0},
};

static void test_compile(void **state)
{
    char errstr[256];
    ferry_template *t;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(compile_cases) / sizeof(compile_cases[0]); i++) {
        const struct compile_case *c = &compile_cases[i];

        errstr[0] = '\0';
        t = ferry_template_new(c->text, c->mode, errstr, sizeof(errstr));
        if (c->want_err && t)
            fail_msg("case %zu '%s': compiled, want '%s'", i, c->text, c->want_err);
        if (c->want_err && strcmp(errstr, c->want_err) != 0)
            fail_msg("case %zu '%s': error '%s', want '%s'", i, c->text, errstr, c->want_err);
        if (!c->want_err && !t)
            fail_msg("case %zu '%s': failed: %s", i, c->text, errstr);
        if (t && ferry_template_is_constant(t) != c->constant)
            fail_msg("case %zu '%s': is_constant wrong", i, c->text);
        ferry_template_destroy(t);
    }
}

static void test_cap(void **state)
{
    char errstr[256];
    struct ferry_buf out;
    ferry_template *t = ferry_template_new("/x/${key}", URL, errstr, sizeof(errstr));
    int rc;

    (void)state;
    assert_non_null(t);
    /* "/x/user%2F1%20%C3%A4" is 20 bytes. */
    ferry_buf_init(&out, 19);
    rc = ferry_template_render(t, &recs[REC_FULL], &out, errstr, sizeof(errstr));
    assert_int_equal(rc, FERRY_TEMPLATE_ETOOBIG);
    assert_string_equal(errstr, "template: output passes its limit of 19 bytes");
    assert_int_equal(out.len, 0);
    out.cap = 20;
    assert_int_equal(ferry_template_render(t, &recs[REC_FULL], &out, errstr, sizeof(errstr)), 0);
    assert_string_equal(out.data, "/x/user%2F1%20%C3%A4");
    ferry_buf_release(&out);
    ferry_template_destroy(t);
    ferry_template_destroy(NULL);
}

/* Routes refuse URL templates whose scheme, host or port a record could fill. */
static void test_check_origin(void **state)
{
    static const struct {
        const char *text;
        int ok;
    } cases[] = {
        {"http://svc:8080/orders/${key}", 1},
        {"https://svc?k=${key}", 1},
        {"http://svc#${key}", 1},
        {"http://svc/plain", 1},
        {"http://$$svc/${key}", 1},
        {"http://${key}/orders", 0},
        {"http://svc:${header.port}/x", 0},
        {"${value.scheme}://svc/x", 0},
        {"http://svc${key}", 0},
        {"http:/${key}", 0},
        {"/orders/${key}", 0},
    };
    char errstr[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ferry_template *t = ferry_template_new(cases[i].text, URL, errstr, sizeof(errstr));
        assert_non_null(t);
        if ((ferry_template_check_origin(t, errstr, sizeof(errstr)) == 0) != cases[i].ok)
            fail_msg("case %zu '%s': %s", i, cases[i].text, errstr);
        ferry_template_destroy(t);
    }
    assert_string_equal(errstr, "template: '${key}' is in the URL's scheme, host or port; write "
                                "those out so that records cannot choose where requests go");
}

/* One byte in every place a header template takes record data from. */
struct control_case {
    const char *text; /* the header template */
    int source;       /* where the byte goes: SRC_KEY, SRC_HEADER, SRC_VALUE_RAW, SRC_VALUE_PATH */
};

enum { SRC_KEY, SRC_HEADER, SRC_VALUE_RAW, SRC_VALUE_PATH };

static const struct control_case control_cases[] = {
    {"id ${key}", SRC_KEY},
    {"Bearer ${header.token}", SRC_HEADER},
    {"${value}", SRC_VALUE_RAW},
    {"user-${value.name}", SRC_VALUE_PATH},
};

/* What a header template must do with byte c: 1 to send it, else refuse the record with want. */
static int header_takes(unsigned c, char *want, size_t want_size, const char *var)
{
    if ((c >= 0x20 && c != 0x7f) || c == '\t')
        return 1;
    if (c == '\r' || c == '\n' || c == 0)
        snprintf(want, want_size,
                 "template: '${%s}': value contains CR, LF or NUL, which a header cannot carry",
                 var);
    else
        snprintf(want, want_size,
                 "template: '${%s}': value contains control byte 0x%02X, which a header cannot "
                 "carry",
                 var, c);
    return 0;
}

/* Builds a record that carries "a", c, "b" where source says: its value is JSON for
 * SRC_VALUE_PATH (c escaped as \u00XX), raw bytes otherwise. */
static void control_record(struct ferry_record *rec, int source, unsigned c, char *data,
                           rd_kafka_headers_t *h)
{
    char raw[3] = {'a', (char)c, 'b'};

    *rec = (struct ferry_record){"t", 0, 1, -1, "k", 1, "{}", 2, h, NULL};
    if (source == SRC_KEY) {
        memcpy(data, raw, 3);
        rec->key = data;
        rec->key_len = 3;
    } else if (source == SRC_HEADER) {
        rd_kafka_header_add(h, "token", -1, raw, 3);
    } else if (source == SRC_VALUE_RAW) {
        memcpy(data, raw, 3);
        rec->value = data;
        rec->value_len = 3;
    } else {
        snprintf(data, 64,
                 c < 0x80 && c != '"' && c != '\\' && c >= 0x20 ? "{\"name\":\"a%cb\"}"
                                                                : "{\"name\":\"a\\u%04Xb\"}",
                 c);
        rec->value = data;
        rec->value_len = strlen(data);
    }
}

/* Every ASCII byte from every source: control bytes but HTAB are refused, naming the variable
 * and the byte; the rest pass through as they are. */
static void test_header_control_bytes(void **state)
{
    char errstr[256], want[256], data[64];
    struct ferry_buf out;
    struct ferry_record rec;

    (void)state;
    ferry_buf_init(&out, 256);
    for (size_t i = 0; i < sizeof(control_cases) / sizeof(control_cases[0]); i++) {
        const struct control_case *k = &control_cases[i];
        ferry_template *t = ferry_template_new(k->text, HDR, errstr, sizeof(errstr));
        const char *var = strstr(k->text, "${") + 2;
        char name[32];

        assert_non_null(t);
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(var, "}"), var);
        for (unsigned c = 0; c < 0x80; c++) {
            rd_kafka_headers_t *h = rd_kafka_headers_new(1);
            int takes = header_takes(c, want, sizeof(want), name);
            int rc;

            control_record(&rec, k->source, c, data, h);
            ferry_buf_reset(&out);
            rc = ferry_template_render(t, &rec, &out, errstr, sizeof(errstr));
            if (takes && (rc != 0 || out.len < 3 ||
                          memcmp(out.data + out.len - 3, (char[]){'a', (char)c, 'b'}, 3) != 0))
                fail_msg("'%s' byte 0x%02X: rc %d (%s), want it sent", k->text, c, rc, errstr);
            if (!takes && (rc != FERRY_TEMPLATE_EREC || strcmp(errstr, want) != 0))
                fail_msg("'%s' byte 0x%02X: rc %d '%s', want '%s'", k->text, c, rc,
                         rc ? errstr : out.data, want);
            if (!takes && out.len)
                fail_msg("'%s' byte 0x%02X: output not rewound", k->text, c);
            rd_kafka_headers_destroy(h);
        }
        ferry_template_destroy(t);
    }
    ferry_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_header_control_bytes),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_check_origin),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
