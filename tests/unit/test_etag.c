/*
 * test_etag.c - the name of a value's version, "<partition>:<offset>-<hash>"
 * (src/table/etag.c): the hash's fixed vectors (computed apart, by a reference written in
 * Python from the description in etag.c), how a tag is written, what parses (the form without
 * a hash too) and what does not, and that If-None-Match and Last-Event-ID only name a row with
 * the same place and the same value: a tag of the form without a hash never does.
 *
 * It also prints what hashing a 100-byte and a 1 MiB value costs (not a timed test: nothing
 * is asserted about the time).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "table/etag.h"

struct hash_case {
    const char *value;
    size_t len;
    uint32_t want;
};

static const struct hash_case hash_cases[] = {
    {"", 0, 0x9e6a7899},
    {"a", 1, 0xd389d96d},
    {"a\0", 2, 0xc9b1edc1}, /* "a" and a NUL: the length tells it from "a" */
    {"abcdefgh", 8, 0x4a366aba},
    {"{\"price\":189.91,\"currency\":\"USD\"}", 33, 0x0a1b37f1}, /* a lane block and a tail */
    {"\0\0\0\0\0\0\0\0", 8, 0x12d6a427},
    /* a lane block, a word after it and a tail */
    {"{\"sku\":\"A-1042\",\"qty\":3,\"note\":\"gift wrapped\"}", 46, 0x4cd841fc},
    {"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
     "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
     64, 0xa01864cd},
};

static void test_hash_vectors(void **state)
{
    unsigned char big[1027];

    (void)state;
    for (size_t i = 0; i < sizeof(hash_cases) / sizeof(hash_cases[0]); i++) {
        print_message("hash case: %zu bytes\n", hash_cases[i].len);
        assert_int_equal(ferry_etag_hash(hash_cases[i].value, hash_cases[i].len),
                         hash_cases[i].want);
    }
    for (size_t i = 0; i < 1024; i++) /* bytes 0..255 four times, then "xyz" */
        big[i] = (unsigned char)i;
    memcpy(big + 1024, "xyz", 3);
    assert_int_equal(ferry_etag_hash(big, sizeof(big)), 0xca9c4b6b);
}

/* One bit changed anywhere in a value (a lane's word, the words after the lanes, the tail)
 * changes its hash, and so does a byte more. */
static void test_hash_sees_every_byte(void **state)
{
    size_t len = 1000; /* 31 lane blocks, one more word, a tail of 0 */
    unsigned char *v = malloc(len + 1);
    uint32_t base;

    (void)state;
    assert_non_null(v);
    for (size_t i = 0; i <= len; i++)
        v[i] = (unsigned char)(i * 131);
    base = ferry_etag_hash(v, len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            v[i] ^= (unsigned char)(1u << bit);
            if (ferry_etag_hash(v, len) == base)
                fail_msg("flipping bit %d of byte %zu left the hash as it was", bit, i);
            v[i] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_not_equal(ferry_etag_hash(v, len + 1), base);
    assert_int_not_equal(ferry_etag_hash(v, len - 1), base);
    free(v);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Prints what one hash of len bytes costs, as a GET of such a value pays it. */
static void measure(size_t len, int rounds)
{
    unsigned char *v = malloc(len);
    volatile uint32_t sink = 0;
    double start;

    assert_non_null(v);
    for (size_t i = 0; i < len; i++)
        v[i] = (unsigned char)(i * 7);
    sink ^= ferry_etag_hash(v, len); /* warm the value into the cache like a GET's copy would */
    start = now_ns();
    for (int r = 0; r < rounds; r++) {
        v[0] = (unsigned char)r;
        sink ^= ferry_etag_hash(v, len);
    }
    print_message("cost: a %zu-byte value hashes in %.1f ns (%.2f GB/s) [%d rounds]\n", len,
                  (now_ns() - start) / rounds, (double)len * rounds / (now_ns() - start), rounds);
    (void)sink;
    free(v);
}

static void test_hash_cost(void **state)
{
    (void)state;
    measure(100, 1000000);
    measure(1024 * 1024, 500);
}

struct format_case {
    int32_t partition;
    int64_t offset;
    uint32_t hash;
    const char *want;
};

static const struct format_case format_cases[] = {
    {4, 1882, 0x3f9a1c07, "4:1882-3f9a1c07"},
    {0, 0, 0, "0:0-00000000"},
    {INT32_MAX, INT64_MAX, 0xffffffff, "2147483647:9223372036854775807-ffffffff"},
    {29, 123456789012, 0xa, "29:123456789012-0000000a"},
};

static void test_format_and_parse_back(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        const struct format_case *c = &format_cases[i];
        char text[FERRY_ETAG_MAX], quoted[FERRY_ETAG_MAX];
        struct ferry_etag tag;

        print_message("format case: %s\n", c->want);
        assert_int_equal(ferry_etag_format(text, sizeof(text), c->partition, c->offset, c->hash, 0),
                         (int)strlen(c->want));
        assert_string_equal(text, c->want);
        assert_int_equal(
            ferry_etag_format(quoted, sizeof(quoted), c->partition, c->offset, c->hash, 1),
            (int)strlen(c->want) + 2);
        assert_int_equal(quoted[0], '"');
        assert_memory_equal(quoted + 1, c->want, strlen(c->want));
        assert_int_equal(quoted[strlen(c->want) + 1], '"');
        assert_int_equal(ferry_etag_parse(text, strlen(text), &tag), 0);
        assert_true(tag.has_hash);
        assert_true(ferry_etag_names(&tag, c->partition, c->offset, c->hash));
        assert_false(ferry_etag_names(&tag, c->partition, c->offset, c->hash ^ 1));
        assert_false(ferry_etag_names(&tag, c->partition, c->offset ^ 1, c->hash));
    }
}

static void test_format_too_small(void **state)
{
    char text[12];

    (void)state;
    assert_int_equal(ferry_etag_format(text, sizeof(text), 1, 2, 3, 0), -1); /* 12 + NUL */
    assert_int_equal(ferry_etag_format(text, sizeof(text), 1, 2, 3, 1), -1);
}

struct parse_case {
    const char *text;
    int ok, has_hash;
    uint32_t hash;
    int32_t partition;
    int64_t offset;
};

static const struct parse_case parse_cases[] = {
    {"4:1882-3f9a1c07", 1, 1, 0x3f9a1c07, 4, 1882},
    {"4:1882", 1, 0, 0, 4, 1882}, /* the form without a hash */
    {"0:0", 1, 0, 0, 0, 0},
    {"4:1882-3F9A1C07", 0, 0, 0, 0, 0}, /* ferry writes lowercase: another tag */
    {"4:1882-3f9a1c0", 0, 0, 0, 0, 0},
    {"4:1882-3f9a1c077", 0, 0, 0, 0, 0},
    {"4:1882-3f9a1c0x", 0, 0, 0, 0, 0},
    {"4:1882-", 0, 0, 0, 0, 0},
    {"4:1882--3f9a1c07", 0, 0, 0, 0, 0},
    {"4:1882 -3f9a1c07", 0, 0, 0, 0, 0},
    {"4:1882-3f9a1c07 ", 0, 0, 0, 0, 0},
    {"\"4:1882-3f9a1c07\"", 0, 0, 0, 0, 0}, /* quotes are the header's, not the tag's */
    {"4:-3f9a1c07", 0, 0, 0, 0, 0},
    {":1882-3f9a1c07", 0, 0, 0, 0, 0},
    {"4-3f9a1c07", 0, 0, 0, 0, 0},
    {"4:18x", 0, 0, 0, 0, 0},
    {"4:-1", 0, 0, 0, 0, 0},
    {"-1:5", 0, 0, 0, 0, 0},
    {" 1:5", 0, 0, 0, 0, 0},
    {"2147483648:5-00000000", 0, 0, 0, 0, 0},
    {"1:9223372036854775808-00000000", 0, 0, 0, 0, 0},
    {"", 0, 0, 0, 0, 0},
    {"abc", 0, 0, 0, 0, 0},
    {"3f9a1c07-4:1882", 0, 0, 0, 0, 0}, /* the rejected store-id form */
    /* overlong: past FERRY_ETAG_MAX, whatever it holds */
    {"4:18820000000000000000000000000000000000000000000000-3f9a1c07", 0, 0, 0, 0, 0},
    {"000000000000000000000000000000000000000000004:1882-3f9a1c07", 0, 0, 0, 0, 0},
};

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        struct ferry_etag tag;
        int rc = ferry_etag_parse(c->text, strlen(c->text), &tag);

        print_message("parse case: '%s'\n", c->text);
        if (!c->ok) {
            assert_int_equal(rc, -1);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(tag.has_hash, c->has_hash);
        if (c->has_hash)
            assert_int_equal(tag.hash, c->hash);
        assert_int_equal(tag.partition, c->partition);
        assert_int_equal(tag.offset, c->offset);
    }
}

/* A NUL inside the text is not part of a tag, whatever follows it. */
static void test_parse_embedded_nul(void **state)
{
    struct ferry_etag tag;

    (void)state;
    assert_int_equal(ferry_etag_parse("0:5\0-00000000", 13, &tag), -1);
}

/* The form without a hash never names a row, whatever hash the row's value has. */
static void test_tag_without_a_hash_names_nothing(void **state)
{
    struct ferry_etag tag;

    (void)state;
    assert_int_equal(ferry_etag_parse("0:5", 3, &tag), 0);
    assert_false(ferry_etag_names(&tag, 0, 5, 0));
    assert_false(ferry_etag_names(&tag, 0, 5, ferry_etag_hash("", 0)));
}

struct match_case {
    const char *header;
    int want;
};

/* The current row is at 0:5 with the hash 3f9a1c07; before the topic was recreated, 0:5 held a
 * value that hashed to 0badf00d. */
static const struct match_case match_cases[] = {
    {"\"0:5-3f9a1c07\"", 1},
    {"W/\"0:5-3f9a1c07\"", 1},
    {"\"x\", W/\"0:5-3f9a1c07\"", 1},
    {"\"a\",\"0:5-3f9a1c07\"", 1},
    {"\"a\" ,  \"0:5-3f9a1c07\" , \"b\"", 1},
    {"*", 1},
    {"  *", 1},
    {"\"0:5-0badf00d\"", 0}, /* the same place, another value */
    {"\"0:5\"", 0},          /* the form without a hash */
    {"W/\"0:5\"", 0},
    {"\"0:5\", \"0:5-0badf00d\"", 0},
    {"\"0:50-3f9a1c07\"", 0},
    {"\"0:5-3f9a1c070\"", 0},
    {"\"0:5-3F9A1C07\"", 0},
    {"\"0:5-3f9a1c07", 0},
    {"0:5-3f9a1c07", 0},
    {"\"\"", 0},
    {"", 0},
    {",,,", 0},
};

static void test_if_none_match(void **state)
{
    char etag[FERRY_ETAG_MAX];

    (void)state;
    ferry_etag_format(etag, sizeof(etag), 0, 5, 0x3f9a1c07, 1);
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        print_message("If-None-Match: %s\n", match_cases[i].header);
        assert_int_equal(ferry_etag_matches(match_cases[i].header, etag), match_cases[i].want);
    }
}

/* A header far longer than any tag is read through to its end. */
static void test_if_none_match_long_list(void **state)
{
    char etag[FERRY_ETAG_MAX], header[8192];
    size_t n = 0;

    (void)state;
    ferry_etag_format(etag, sizeof(etag), 0, 5, 0x3f9a1c07, 1);
    while (n + 32 < sizeof(header) - FERRY_ETAG_MAX)
        n += (size_t)snprintf(header + n, sizeof(header) - n, "\"%zu:%zu-00000000\", ", n, n);
    assert_false(ferry_etag_matches(header, etag));
    snprintf(header + n, sizeof(header) - n, "%s", etag);
    assert_true(ferry_etag_matches(header, etag));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_sees_every_byte),
        cmocka_unit_test(test_hash_cost),
        cmocka_unit_test(test_format_and_parse_back),
        cmocka_unit_test(test_format_too_small),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_embedded_nul),
        cmocka_unit_test(test_tag_without_a_hash_names_nothing),
        cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_if_none_match_long_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
