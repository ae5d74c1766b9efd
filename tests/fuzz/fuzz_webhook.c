/*
 * fuzz_webhook.c - libFuzzer harness for webhook bodies into records (ingest/webhook.c), with
 * the key taken from a JSON path into the body, from one record or one per ndjson line.
 *
 * Input: the first byte picks ndjson and whether the key is required; then the body, 0xff, and
 * the key's JSON path (a path the config loader would refuse is skipped).
 */
#include "core/json_scan.h"
#include "ingest/batch.h"
#include "ingest/webhook.h"
#include "fuzz.h"

static const struct ferry_ingest_limits fuzz_limits = {
    .max_records = 16,
    .max_key_bytes = 64,
    .max_value_bytes = 256,
    .max_headers = 4,
    .max_header_bytes = 64,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_part parts[FUZZ_PARTS_MAX];
    struct ferry_ingest_webhook_config w;
    struct ferry_ingest_batch b;
    const char *names[] = {"x-event"};
    const char *values[] = {"push"};
    struct ferry_webhook_input in;
    char why[256], *body, *path;
    size_t nparts;
    int code = 0;

    if (size < 1)
        return 0;
    nparts = fuzz_split(data + 1, size - 1, parts);
    body = malloc(parts[0].n ? parts[0].n : 1);
    path = nparts > 1 ? fuzz_strndup(parts[1].p, parts[1].n) : fuzz_strndup(data, 0);
    if (!body || !path || ferry_json_path_error(path))
        goto done;
    if (parts[0].n)
        memcpy(body, parts[0].p, parts[0].n);
    memset(&w, 0, sizeof(w));
    w.name = "fuzz";
    w.topic = "t";
    w.ndjson = data[0] & 1;
    w.key.required = (data[0] >> 1) & 1;
    w.key.json = path;
    in = (struct ferry_webhook_input){body, parts[0].n, "application/json", NULL, names, values, 1};
    if (ferry_ingest_batch_init(&b, in.len) == 0)
        (void)ferry_webhook_parse(&w, &in, &fuzz_limits, &b, &code, why, sizeof(why));
    ferry_ingest_batch_release(&b);
done:
    free(body);
    free(path);
    return 0;
}
