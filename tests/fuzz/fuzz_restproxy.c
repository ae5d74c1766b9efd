/*
 * fuzz_restproxy.c - libFuzzer harness for the REST Proxy v2 produce parser
 * (ingest/restproxy.c): the body in both embedded formats, plus the path, Content-Type and
 * Accept readers.
 *
 * Input: the first byte picks the format and whether the path names a partition; the rest is
 * the body, optionally followed by 0xff and a request path, 0xff and a header value.
 */
#include "ingest/batch.h"
#include "ingest/restproxy.h"
#include "core/topic_name.h"
#include "fuzz.h"

/* Small limits, so that the fuzzer reaches every limit check. */
static const struct ferry_ingest_limits fuzz_limits = {
    .max_records = 16,
    .max_key_bytes = 64,
    .max_value_bytes = 256,
    .max_headers = 4,
    .max_header_bytes = 64,
};

static void fuzz_restproxy_strings(const struct fuzz_part *path, const struct fuzz_part *header)
{
    char topic[FERRY_TOPIC_NAME_MAX + 1];
    int32_t partition;
    enum ferry_rp_format format;
    char *p = path ? fuzz_strndup(path->p, path->n) : NULL;
    char *h = header ? fuzz_strndup(header->p, header->n) : NULL;

    if (p)
        (void)ferry_restproxy_path(p, topic, &partition);
    if (h) {
        (void)ferry_restproxy_format(h, &format);
        (void)ferry_restproxy_answer_type(h);
    }
    free(p);
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    struct ferry_ingest_batch b;
    size_t nparts;
    char why[256];
    int code = 0;
    char *body;

    if (size < 1)
        return 0;
    nparts = fuzz_split(data + 1, size - 1, parts);
    body = malloc(parts[0].n ? parts[0].n : 1);
    if (!body)
        return 0;
    if (parts[0].n)
        memcpy(body, parts[0].p, parts[0].n);
    if (ferry_ingest_batch_init(&b, parts[0].n) == 0) {
        (void)ferry_restproxy_parse(
            body, parts[0].n, (data[0] & 1) ? FERRY_RP_BINARY : FERRY_RP_JSON,
            (data[0] & 2) ? (int32_t)(data[0] >> 2) : FERRY_INGEST_PARTITION_ANY, &fuzz_limits, &b,
            &code, why, sizeof(why));
        if (b.arena_len > b.arena_cap)
            abort();
    }
    ferry_ingest_batch_release(&b);
    free(body);
    fuzz_restproxy_strings(nparts > 1 ? &parts[1] : NULL, nparts > 2 ? &parts[2] : NULL);
    return 0;
}
