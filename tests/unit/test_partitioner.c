/*
 * test_partitioner.c - unit tests of the key partitioners (src/table/partitioner.c).
 *
 * The partitioners are librdkafka's own, so the tests check them against references written
 * here from the algorithms' definitions: Java's murmur2 (seed 0x9747b28c, little-endian words)
 * with the test vectors of the design notes, and the IEEE CRC-32 with its standard check value.
 * A few hundred random keys of random bytes, at every alignment and for 1, 3, 30 and 100
 * partitions, must land where the references and the producer-side `_random` variants put them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "table/partitioner.h"

#define RANDOM_KEYS 500
#define RANDOM_KEY_MAX 200

/* Java's Utils.murmur2 over bytes, unsigned. */
static uint32_t ref_murmur2(const unsigned char *p, size_t len)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    size_t i, words = len / 4;

    for (i = 0; i < words; i++) {
        uint32_t k = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    p += words * 4;
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* CRC-32 (IEEE 802.3, reflected, as zlib), one bit at a time. */
static uint32_t ref_crc32(const unsigned char *p, size_t len)
{
    uint32_t crc = 0xffffffff;
    size_t i;
    int bit;

    for (i = 0; i < len; i++) {
        crc ^= p[i];
        for (bit = 0; bit < 8; bit++)
            crc = crc & 1 ? (crc >> 1) ^ 0xedb88320 : crc >> 1;
    }
    return ~crc;
}

struct vector {
    const char *key;
    uint32_t murmur2;
};

static const struct vector vectors[] = {
    {"kafka", 0xd067cf64},
    {"giberish123456789", 0x8f552b0c},
    {"", 0x106e08d9},
};

static void test_murmur2_vectors(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];
        size_t len = strlen(v->key);

        assert_int_equal(ref_murmur2((const unsigned char *)v->key, len), v->murmur2);
        /* Every vector's low 31 bits are below INT32_MAX, so with INT32_MAX partitions the
         * partition is the masked hash itself. */
        assert_int_equal(ferry_partitioner_murmur2(v->key, len, INT32_MAX),
                         v->murmur2 & 0x7fffffff);
    }
}

static void test_crc32_check_value(void **state)
{
    const char *check = "123456789";

    (void)state;
    assert_int_equal(ref_crc32((const unsigned char *)check, 9), 0xcbf43926);
    assert_int_equal(ferry_partitioner_crc32(check, 9, INT32_MAX), 0xcbf43926u % INT32_MAX);
    assert_int_equal(ferry_partitioner_crc32(check, 9, 30), 0xcbf43926u % 30);
}

struct edge_case {
    const char *name;
    const void *key;
    size_t len;
    int32_t partitions;
    int32_t want_murmur2;
    int32_t want_crc32;
};

static const struct edge_case edges[] = {
    {"no partitions", "k", 1, 0, -1, -1},
    {"negative partitions", "k", 1, -3, -1, -1},
    {"one partition", "kafka", 5, 1, 0, 0},
    {"NULL key hashes as the empty key", NULL, 0, 100, (int32_t)(0x106e08d9 % 100), 0},
    {"empty key", "", 0, 100, (int32_t)(0x106e08d9 % 100), 0},
};

static void test_edges(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        const struct edge_case *c = &edges[i];

        if (ferry_partitioner_murmur2(c->key, c->len, c->partitions) != c->want_murmur2)
            fail_msg("%s: murmur2 gave %d, want %d", c->name,
                     (int)ferry_partitioner_murmur2(c->key, c->len, c->partitions),
                     (int)c->want_murmur2);
        if (ferry_partitioner_crc32(c->key, c->len, c->partitions) != c->want_crc32)
            fail_msg("%s: crc32 gave %d, want %d", c->name,
                     (int)ferry_partitioner_crc32(c->key, c->len, c->partitions),
                     (int)c->want_crc32);
    }
}

static void check_key(const unsigned char *key, size_t len, int32_t n)
{
    int32_t want_murmur2 = (int32_t)((ref_murmur2(key, len) & 0x7fffffff) % (uint32_t)n);
    int32_t want_crc32 = (int32_t)(ref_crc32(key, len) % (uint32_t)n);

    assert_int_equal(ferry_partitioner_murmur2(key, len, n), want_murmur2);
    assert_int_equal(ferry_partitioner_crc32(key, len, n), want_crc32);
    /* What the producers run: murmur2_random hashes any non-NULL key; consistent_random picks a
     * random partition for an empty key (and needs a topic handle to do so). */
    assert_int_equal(rd_kafka_msg_partitioner_murmur2_random(NULL, key, len, n, NULL, NULL),
                     want_murmur2);
    if (len)
        assert_int_equal(rd_kafka_msg_partitioner_consistent_random(NULL, key, len, n, NULL, NULL),
                         want_crc32);
}

static void test_random_keys(void **state)
{
    static const int32_t counts[] = {1, 3, 30, 100};
    unsigned char buf[RANDOM_KEY_MAX + 4];
    size_t i, j, len, align;

    (void)state;
    srand(20240610);
    for (i = 0; i < RANDOM_KEYS; i++) {
        len = (size_t)rand() % (RANDOM_KEY_MAX + 1);
        align = i % 4; /* librdkafka reads aligned keys a word at a time */
        for (j = 0; j < len; j++)
            buf[align + j] = (unsigned char)(rand() & 0xff);
        for (j = 0; j < sizeof(counts) / sizeof(counts[0]); j++)
            check_key(buf + align, len, counts[j]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_vectors),
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
