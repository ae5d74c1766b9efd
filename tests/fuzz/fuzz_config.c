/*
 * fuzz_config.c - libFuzzer harness for the config loader (core/config.c, config_load.c and the
 * jobs' sections): YAML, the schema tables, ${env:...} substitution, units, and every check the
 * sections run at load (templates, patterns, schemas).
 *
 * Input: YAML text, loaded from memory as if from a file; the errors found are read back.
 * ${env:...} also runs on its own over the whole input. FUZZ_VAR is set so substitution has
 * something to find.
 */
#include <stdio.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "fuzz.h"

/* The most text one expansion may produce. */
#define FUZZ_CONFIG_OUT_MAX (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("FUZZ_VAR", "fuzz-value", 1);
    ferry_log_setup(FERRY_LOG_ERROR, FERRY_LOG_LOGFMT);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    struct ferry_config *cfg;
    struct ferry_buf out;
    char why[256];

    if (!text)
        return 0;
    ferry_buf_init(&out, FUZZ_CONFIG_OUT_MAX);
    (void)ferry_config_expand(text, &out, why, sizeof(why));
    ferry_buf_release(&out);
    cfg = ferry_config_load_string(text, "fuzz.yaml");
    for (size_t i = 0; cfg && i < ferry_config_error_count(cfg); i++) {
        if (!ferry_config_error_at(cfg, i))
            abort();
    }
    ferry_config_destroy(cfg);
    free(text);
    return 0;
}
