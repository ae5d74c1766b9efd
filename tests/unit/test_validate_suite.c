/*
 * test_validate_suite.c - scores the JSON Schema subset of src/route/validate.c against the
 * Draft 7 files of Debian's json-schema-test-suite package (scripts/install-deps.sh installs
 * it), and fails when the score drops below the one recorded here.
 *
 * Only the files of keywords the subset implements are read. In them, every case runs except
 * the groups in the skip list below, each with the reason it is skipped; docs/routes.md
 * ("Validation") repeats the list and the score. A group whose schema fails to compile counts
 * all its cases as failures. Set FERRY_JSON_SCHEMA_SUITE to read another copy of the suite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "route/validate.h"

#define SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7"

/* The score recorded with json-schema-test-suite 2.0.0 (Debian 12): passes of the cases run,
 * and how many ran. A lower pass count fails the test. */
#define RECORDED_PASSES 192
#define RECORDED_CASES 192

static const char *const files[] = {
    "additionalProperties",
    "boolean_schema",
    "const",
    "default",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "pattern",
    "properties",
    "required",
    "type",
};

struct skip {
    const char *file;
    const char *group; /* the group's description in the suite */
    const char *why;
};

static const struct skip skips[] = {
    {"additionalProperties", "additionalProperties being false does not allow other properties",
     "patternProperties"},
    {"additionalProperties", "non-ASCII pattern with additionalProperties", "patternProperties"},
    {"properties", "properties, patternProperties, additionalProperties interaction",
     "patternProperties"},
    {NULL, NULL, NULL},
};

static const struct skip *skipped(const char *file, const char *group)
{
    for (const struct skip *s = skips; s->file; s++)
        if (strcmp(s->file, file) == 0 && strcmp(s->group, group) == 0)
            return s;
    return NULL;
}

struct score {
    int passes, cases, skipped_cases;
};

static void run_case(const ferry_validate *v, const char *file, const char *group,
                     const json_t *test, struct score *sc)
{
    char *text = json_dumps(json_object_get(test, "data"), JSON_ENCODE_ANY | JSON_COMPACT);
    char why[FERRY_VALIDATE_REASON_MAX] = "";
    int want = json_is_true(json_object_get(test, "valid"));
    int got;

    assert_non_null(text);
    got = v ? ferry_validate_json(v, text, strlen(text), why, sizeof(why)) == 0 : -1;
    sc->cases++;
    if (got == want)
        sc->passes++;
    else
        printf("FAIL %s: %s: %s: got %s%s%s\n", file, group,
               json_string_value(json_object_get(test, "description")),
               got < 0 ? "no schema"
               : got   ? "valid"
                       : "invalid",
               got == 0 ? ", " : "", got == 0 ? why : "");
    free(text);
}

static void run_group(const char *file, const json_t *g, struct score *sc)
{
    const char *group = json_string_value(json_object_get(g, "description"));
    const json_t *tests = json_object_get(g, "tests");
    char *schema = json_dumps(json_object_get(g, "schema"), JSON_ENCODE_ANY);
    char err[512] = "";
    struct ferry_validate_options o = {0};
    ferry_validate *v;
    const json_t *t;
    size_t i;

    assert_non_null(schema);
    if (skipped(file, group)) {
        sc->skipped_cases += (int)json_array_size(tests);
        free(schema);
        return;
    }
    o.schema_text = schema;
    o.schema_len = strlen(schema);
    v = ferry_validate_new(&o, err, sizeof(err));
    if (!v)
        printf("SCHEMA %s: %s: %s\n", file, group, err);
    json_array_foreach(tests, i, t) run_case(v, file, group, t, sc);
    ferry_validate_destroy(v);
    free(schema);
}

static void test_suite_score(void **state)
{
    const char *dir = getenv("FERRY_JSON_SCHEMA_SUITE");
    struct score sc = {0, 0, 0};
    char path[512];

    (void)state;
    if (!dir)
        dir = SUITE_DIR;
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        json_error_t jerr;
        json_t *doc, *g;
        size_t i;
        snprintf(path, sizeof(path), "%s/%s.json", dir, files[f]);
        doc = json_load_file(path, 0, &jerr);
        if (!doc)
            fail_msg("cannot read %s (install json-schema-test-suite): %s", path, jerr.text);
        json_array_foreach(doc, i, g) run_group(files[f], g, &sc);
        json_decref(doc);
    }
    printf("json-schema-test-suite draft7 score: %d of %d cases pass (%d skipped, in %zu "
           "files)\n",
           sc.passes, sc.cases, sc.skipped_cases, sizeof(files) / sizeof(files[0]));
    assert_true(sc.passes >= RECORDED_PASSES);
    assert_true(sc.cases >= RECORDED_CASES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_score),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
