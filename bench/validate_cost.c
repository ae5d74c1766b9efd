/*
 * validate_cost.c - the work of a route's record validation (src/route/validate.c), alone, for
 * counting with callgrind: validates N records shaped like ferry-bench-preload's values
 * ({"seq":"0000000123","pad":"xxx..."}, B bytes) against a schema, optionally behind a
 * Confluent wire-format prefix, and prints how many passed.
 *
 *   valgrind --tool=callgrind --toggle-collect=ferry_validate_record \
 *       build/bench/ferry-bench-validate --records 100000
 *
 * gives the instructions of ferry_validate_record per call (its inclusive cost over the calls).
 * The validation module and the JSON code it uses are compiled in, as the store benchmark does
 * with the store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/validate.h"

#define BYTES_MAX 65536

/* The bench's records as a route would check them: seq ten digits, pad a string, nothing else. */
static const char default_schema[] =
    "{\"type\":\"object\",\"required\":[\"seq\",\"pad\"],\"additionalProperties\":false,"
    "\"properties\":{\"seq\":{\"type\":\"string\",\"pattern\":\"^[0-9]{10}$\"},"
    "\"pad\":{\"type\":\"string\",\"maxLength\":65536}}}";

struct options {
    long records, bytes;
    int prefix;
    const char *schema_path;
    int no_schema;
};

static void usage(void)
{
    fprintf(stderr, "usage: ferry-bench-validate [--records N] [--bytes B] [--prefix] "
                    "[--schema FILE | --no-schema]\n");
}

static int parse(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--records") == 0 && next)
            o->records = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--bytes") == 0 && next)
            o->bytes = strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--schema") == 0 && next)
            o->schema_path = argv[++i];
        else if (strcmp(a, "--prefix") == 0)
            o->prefix = 1;
        else if (strcmp(a, "--no-schema") == 0)
            o->no_schema = 1;
        else
            return -1;
    }
    return o->records > 0 && o->bytes >= 32 && o->bytes <= BYTES_MAX ? 0 : -1;
}

/* A preload-shaped value with the sequence number seq, after a 5-byte prefix (schema id 1). */
static void fill(char *buf, long bytes, long seq)
{
    char *v = buf + 5;

    memcpy(buf, "\0\0\0\0\1", 5);
    memset(v, 'x', (size_t)bytes);
    snprintf(v, 28, "{\"seq\":\"%010ld\",\"pad\":\"", seq % 10000000000L);
    v[27] = 'x';
    memcpy(v + bytes - 2, "\"}", 2);
}

int main(int argc, char **argv)
{
    struct options o = {100000, 100, 0, NULL, 0};
    static const int64_t ids[] = {1};
    struct ferry_validate_options vo = {0};
    char err[512], why[FERRY_VALIDATE_REASON_MAX];
    static char buf[BYTES_MAX + 5];
    ferry_validate *v;
    long valid = 0;

    if (parse(argc, argv, &o)) {
        usage();
        return 2;
    }
    if (!o.no_schema && !o.schema_path) {
        vo.schema_text = default_schema;
        vo.schema_len = sizeof(default_schema) - 1;
    }
    vo.schema_path = o.no_schema ? NULL : o.schema_path;
    vo.schema_ids = o.prefix ? ids : NULL;
    vo.nschema_ids = o.prefix ? 1 : 0;
    vo.strip = o.prefix;
    v = ferry_validate_new(&vo, err, sizeof(err));
    if (!v) {
        fprintf(stderr, "ferry-bench-validate: %s\n", err);
        return 1;
    }
    for (long i = 0; i < o.records; i++) {
        const char *value = o.prefix ? buf : buf + 5;
        size_t len = (size_t)o.bytes + (o.prefix ? 5 : 0);
        fill(buf, o.bytes, i);
        valid += ferry_validate_record(v, &value, &len, why, sizeof(why)) == 0;
    }
    printf("%ld of %ld records valid\n", valid, o.records);
    ferry_validate_destroy(v);
    return valid == o.records ? 0 : 1;
}
