/*
 * fuzz_codec.c - libFuzzer harness for the small text codecs: base64 in both alphabets and in
 * either (core/base64.c, which REST Proxy binary keys, values and record headers and table keys
 * go through), and the config's units (core/units.c): durations, sizes, host:port, integers and
 * reals.
 *
 * Input: any bytes. Base64 is decoded in place from a heap copy of exactly the input's length;
 * what decodes must encode back to text that decodes to the same bytes.
 */
#include "core/base64.h"
#include "core/buf.h"
#include "core/units.h"
#include "fuzz.h"

static void fuzz_codec_base64(const uint8_t *data, size_t size, enum ferry_base64_alphabet abc)
{
    char *copy = malloc(size ? size : 1);
    struct ferry_buf enc;
    size_t n = 0, m = 0;

    if (!copy)
        return;
    if (size)
        memcpy(copy, data, size);
    ferry_buf_init(&enc, 2 * size + 8);
    if (ferry_base64_decode(copy, size, abc, &n) == 0) {
        if (n > size)
            abort();
        if (ferry_base64_encode(&enc, copy, n, abc) == 0 && enc.len &&
            (ferry_base64_decode(enc.data, enc.len, abc, &m) != 0 || m != n ||
             memcmp(enc.data, copy, n) != 0))
            abort();
    }
    ferry_buf_release(&enc);
    free(copy);
}

static void fuzz_codec_units(const char *text)
{
    char host[256], out[64];
    int64_t v;
    double d;
    int port;

    if (ferry_duration_parse(text, &v) == 0)
        ferry_duration_format(v, out, sizeof(out));
    if (ferry_size_parse(text, &v) == 0)
        ferry_size_format(v, out, sizeof(out));
    (void)ferry_hostport_parse(text, host, sizeof(host), &port);
    (void)ferry_int_parse(text, &v);
    (void)ferry_double_parse(text, &d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    fuzz_codec_base64(data, size, FERRY_BASE64_STD);
    fuzz_codec_base64(data, size, FERRY_BASE64_URL);
    fuzz_codec_base64(data, size, FERRY_BASE64_EITHER);
    text = fuzz_strndup(data, size);
    if (text)
        fuzz_codec_units(text);
    free(text);
    return 0;
}
