/*
 * fuzz_validate.c - libFuzzer harness for JSON Schema validation (route/validate.c,
 * validate_schema.c): compiling a hostile schema, and checking a hostile instance against it.
 *
 * Input: the schema, 0xff, the instance. Both are passed as NUL-terminated heap copies: clang
 * 14's ASan interceptor of regexec ignores REG_STARTEND and reads to a NUL, so a pattern
 * matched against unterminated bytes would be a false report of the fuzzer's own making.
 */
#include "route/validate.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    struct ferry_validate_options o = {0};
    size_t nparts = fuzz_split(data, size, parts);
    char why[FERRY_VALIDATE_REASON_MAX], *schema, *instance;
    ferry_validate *v;

    schema = fuzz_strndup(parts[0].p, parts[0].n);
    instance = nparts > 1 ? fuzz_strndup(parts[1].p, parts[1].n) : NULL;
    if (!schema)
        goto done;
    o.schema_text = schema;
    o.schema_len = parts[0].n;
    v = ferry_validate_new(&o, why, sizeof(why));
    if (v && instance)
        (void)ferry_validate_json(v, instance, parts[1].n, why, sizeof(why));
    ferry_validate_destroy(v);
done:
    free(schema);
    free(instance);
    return 0;
}
