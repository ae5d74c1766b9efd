/*
 * fuzz_template.c - libFuzzer harness for templates (route/template.c): compiling hostile
 * template text in every mode, and rendering it from hostile record values, keys and headers.
 *
 * Input: the first byte picks the mode and what missing parts render as; then the template,
 * 0xff, the record's value, 0xff, its key, 0xff, the value of its header "x-h". A rendered JSON
 * template must be one valid JSON value: that is the contract the route relies on.
 */
#include <librdkafka/rdkafka.h>

#include "core/buf.h"
#include "core/json.h"
#include "route/template.h"
#include "fuzz.h"

/* The cap of one rendered output. */
#define FUZZ_TEMPLATE_OUT_MAX (1u << 16)

static void fuzz_template_render(const ferry_template *t, enum ferry_template_mode mode,
                                 const struct fuzz_part *parts, size_t nparts)
{
    struct ferry_record rec = {"orders", 3, 42, 1700000000123, NULL, 0, NULL, 0, NULL, NULL};
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    struct ferry_buf out;
    char why[256];

    if (nparts > 1) {
        rec.value = (const char *)parts[1].p;
        rec.value_len = parts[1].n;
    }
    if (nparts > 2) {
        rec.key = (const char *)parts[2].p;
        rec.key_len = parts[2].n;
    }
    if (nparts > 3)
        rd_kafka_header_add(h, "x-h", -1, parts[3].p, (ssize_t)parts[3].n);
    rec.headers = h;
    ferry_buf_init(&out, FUZZ_TEMPLATE_OUT_MAX);
    if (ferry_template_render(t, &rec, &out, why, sizeof(why)) == FERRY_TEMPLATE_OK &&
        mode == FERRY_TEMPLATE_JSON && !ferry_json_is_valid(out.data, out.len))
        abort();
    ferry_buf_release(&out);
    rd_kafka_headers_destroy(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    enum ferry_template_mode mode;
    ferry_template *t;
    size_t nparts;
    char why[256], *text;

    if (size < 1)
        return 0;
    mode = (enum ferry_template_mode)(data[0] & 3);
    nparts = fuzz_split(data + 1, size - 1, parts);
    text = fuzz_strndup(parts[0].p, parts[0].n);
    if (!text)
        return 0;
    t = ferry_template_compile(
        text, mode, (data[0] & 4) ? FERRY_TEMPLATE_MISSING_NULL : FERRY_TEMPLATE_MISSING_ERROR, why,
        sizeof(why));
    if (t)
        fuzz_template_render(t, mode, parts, nparts);
    ferry_template_destroy(t);
    free(text);
    return 0;
}
