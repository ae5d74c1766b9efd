/*
 * fuzz_heartbeat.c - libFuzzer harness for the partitioned tables' heartbeats
 * (table/heartbeat.c), which any client that can write to the members topic can send.
 *
 * Input: a record value, decoded as a heartbeat. One that decodes must survive the trip
 * through the encoder and a deep copy unchanged, and every table and partition it lists must
 * be found by the lookups the member map uses.
 */
#include <stdio.h>

#include "core/buf.h"
#include "table/heartbeat.h"
#include "fuzz.h"

/* Room for the encoding of any input the fuzzer makes (its -max_len is far below this). */
#define FUZZ_HEARTBEAT_OUT_MAX (4 * FERRY_HEARTBEAT_BYTES_MAX)

static int same_table(const struct ferry_heartbeat_table *a, const struct ferry_heartbeat_table *b)
{
    return !strcmp(a->name, b->name) && a->count == b->count &&
           (!a->count || !memcmp(a->parts, b->parts, a->count * sizeof(*a->parts)));
}

static int same_heartbeat(const struct ferry_heartbeat *a, const struct ferry_heartbeat *b)
{
    if (strcmp(a->instance, b->instance) || strcmp(a->url, b->url) || a->sent_ms != b->sent_ms ||
        a->leaving != b->leaving || a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!same_table(&a->tables[i], &b->tables[i]))
            return 0;
    return 1;
}

/* Every table is found by its name, every partition by its number. */
static void fuzz_heartbeat_lookups(const struct ferry_heartbeat *hb)
{
    for (size_t i = 0; i < hb->count; i++) {
        const struct ferry_heartbeat_table *t = &hb->tables[i];
        if (ferry_heartbeat_table(hb, t->name) != t)
            abort();
        for (size_t j = 0; j < t->count; j++)
            if (ferry_heartbeat_partition(t, t->parts[j].partition) != &t->parts[j])
                abort();
    }
}

/* Encodes hb, decodes the text again and checks nothing changed; likewise a deep copy. */
static void fuzz_heartbeat_round_trip(const struct ferry_heartbeat *hb)
{
    struct ferry_heartbeat back, copy;
    struct ferry_buf out;
    char err[256];

    ferry_buf_init(&out, FUZZ_HEARTBEAT_OUT_MAX);
    if (ferry_heartbeat_encode(hb, &out))
        abort();
    if (out.len <= FERRY_HEARTBEAT_BYTES_MAX) {
        if (ferry_heartbeat_decode(out.data, out.len, &back, err, sizeof(err))) {
            fprintf(stderr, "fuzz_heartbeat: re-decoding '%s': %s\n", out.data, err);
            abort();
        }
        if (!same_heartbeat(hb, &back))
            abort();
        ferry_heartbeat_release(&back);
    }
    if (ferry_heartbeat_copy(&copy, hb) == 0) {
        if (!same_heartbeat(hb, &copy))
            abort();
        ferry_heartbeat_release(&copy);
    }
    ferry_buf_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ferry_heartbeat hb;
    char *text = malloc(size ? size : 1), err[256] = "";

    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);
    if (ferry_heartbeat_decode(text, size, &hb, err, sizeof(err)) == 0) {
        fuzz_heartbeat_lookups(&hb);
        fuzz_heartbeat_round_trip(&hb);
    } else if (!err[0]) {
        abort(); /* refused without a reason */
    }
    ferry_heartbeat_release(&hb);
    free(text);
    return 0;
}
