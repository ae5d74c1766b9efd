/*
 * auth.c - bearer API keys (see auth.h).
 *
 * Every key is stored zero-padded to FERRY_INGEST_KEY_MAX bytes, and a presented key is
 * copied into a buffer of the same size, so that one comparison is always the same number of
 * byte operations whatever the lengths, and every configured key is compared.
 */
#include "ingest/auth.h"
#include "ingest/ingest_config.h"
#include "ingest/pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_SCHEME "Bearer"

struct key {
    char *name;
    unsigned char secret[FERRY_INGEST_KEY_MAX];
    size_t len;
    ferry_ingest_patterns *topics;
};

struct ferry_ingest_auth {
    struct key *keys;
    size_t count;
};

static int key_init(struct key *k, const struct ferry_ingest_api_key_config *c, char *errstr,
                    size_t errstr_size)
{
    char text[FERRY_INGEST_KEY_MAX + 1], why[512] = "";
    int result = -1;

    if (ferry_ingest_key_read(c, text, sizeof(text), why, sizeof(why))) {
        snprintf(errstr, errstr_size, "key '%s': %s", c->name, why);
        goto out;
    }
    k->len = strlen(text);
    memcpy(k->secret, text, k->len);
    k->name = strdup(c->name);
    k->topics = ferry_ingest_patterns_new(&c->topics, why, sizeof(why));
    if (!k->name || !k->topics) {
        snprintf(errstr, errstr_size, "key '%s': topics: %s", c->name, why);
        goto out;
    }
    result = 0;
out:
    memset(text, 0, sizeof(text));
    return result;
}

ferry_ingest_auth *ferry_ingest_auth_new(const struct ferry_cfg_list *keys, char *errstr,
                                         size_t errstr_size)
{
    const struct ferry_ingest_api_key_config *cfg = keys->items;
    ferry_ingest_auth *a = calloc(1, sizeof(*a));

    if (a && keys->count <= FERRY_INGEST_KEYS_MAX)
        a->keys = calloc(keys->count + 1, sizeof(*a->keys));
    if (!a || !a->keys) {
        snprintf(errstr, errstr_size, "cannot set up %zu API keys", keys->count);
        free(a);
        return NULL;
    }
    for (size_t i = 0; i < keys->count; i++) {
        a->count++;
        if (key_init(&a->keys[i], &cfg[i], errstr, errstr_size)) {
            ferry_ingest_auth_destroy(a);
            return NULL;
        }
    }
    return a;
}

int ferry_ingest_auth_enabled(const ferry_ingest_auth *a)
{
    return a->count > 0;
}

/* Finds the token of "Bearer <token>" (scheme case-insensitive). Returns 0 with *token and
 * *len, or -1. */
static int bearer_token(const char *h, const char **token, size_t *len)
{
    size_t n = strlen(AUTH_SCHEME);

    if (!h || strncasecmp(h, AUTH_SCHEME, n) != 0 || h[n] != ' ')
        return -1;
    for (h += n; *h == ' '; h++)
        ;
    *len = strcspn(h, " \t");
    for (const char *rest = h + *len; *rest; rest++)
        if (*rest != ' ' && *rest != '\t')
            return -1;
    *token = h;
    return *len ? 0 : -1;
}

/* Zero when the padded buffers and lengths are equal; the same work whatever they hold. */
static unsigned diff(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    unsigned d = (unsigned)(alen ^ blen);
    for (size_t i = 0; i < FERRY_INGEST_KEY_MAX; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d;
}

int ferry_ingest_auth_check(const ferry_ingest_auth *a, const char *authorization)
{
    unsigned char given[FERRY_INGEST_KEY_MAX] = {0};
    const char *token;
    size_t len;
    int found = -1;

    if (bearer_token(authorization, &token, &len) || len > FERRY_INGEST_KEY_MAX)
        return -1;
    memcpy(given, token, len);
    for (size_t i = 0; i < a->count; i++) {
        unsigned d = diff(given, len, a->keys[i].secret, a->keys[i].len);
        found = d == 0 ? (int)i : found;
    }
    memset(given, 0, sizeof(given));
    return found;
}

uint64_t ferry_ingest_auth_topic_mask(const ferry_ingest_auth *a, const char *topic)
{
    uint64_t mask = 0;

    for (size_t i = 0; i < a->count; i++)
        if (ferry_ingest_patterns_match(a->keys[i].topics, topic))
            mask |= (uint64_t)1 << i;
    return mask;
}

const char *ferry_ingest_auth_name(const ferry_ingest_auth *a, int i)
{
    return i >= 0 && (size_t)i < a->count ? a->keys[i].name : "-";
}

void ferry_ingest_auth_destroy(ferry_ingest_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->count; i++) {
        explicit_bzero(a->keys[i].secret, sizeof(a->keys[i].secret));
        free(a->keys[i].name);
        ferry_ingest_patterns_destroy(a->keys[i].topics);
    }
    free(a->keys);
    free(a);
}
