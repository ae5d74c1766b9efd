/*
 * auth.c - bearer API keys (see auth.h).
 *
 * Every key is stored zero-padded to FERRY_AUTH_SECRET_MAX bytes, and a presented key is
 * copied into a buffer of the same size, so that one comparison is always the same number of
 * byte operations whatever the lengths, and every configured key is compared.
 */
#include "core/auth.h"
#include "core/job.h"
#include "core/pattern.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_SCHEME "Bearer"

struct key {
    char *name;
    unsigned char secret[FERRY_AUTH_SECRET_MAX];
    size_t len;
    ferry_patterns *lists[2]; /* indexed by enum ferry_auth_scope */
};

struct ferry_auth {
    struct key keys[FERRY_AUTH_KEYS_MAX];
    size_t count;
};

ferry_auth *ferry_auth_new(void)
{
    return calloc(1, sizeof(struct ferry_auth));
}

static ferry_patterns *compile(const struct ferry_cfg_strings *list, char *why, size_t why_size)
{
    static const struct ferry_cfg_strings none = {NULL, 0};
    return ferry_patterns_new(list ? list : &none, why, why_size);
}

int ferry_auth_add(ferry_auth *a, const char *name, const char *secret, size_t len,
                   const struct ferry_cfg_strings *topics, const struct ferry_cfg_strings *tables,
                   char *errstr, size_t errstr_size)
{
    struct key *k = &a->keys[a->count];
    char why[512] = "out of memory";

    if (a->count == FERRY_AUTH_KEYS_MAX || len > FERRY_AUTH_SECRET_MAX) {
        snprintf(errstr, errstr_size, "key '%s': at most %d keys of at most %d bytes", name,
                 FERRY_AUTH_KEYS_MAX, FERRY_AUTH_SECRET_MAX);
        return -1;
    }
    k->name = strdup(name);
    k->lists[FERRY_AUTH_TOPICS] = compile(topics, why, sizeof(why));
    k->lists[FERRY_AUTH_TABLES] =
        k->lists[FERRY_AUTH_TOPICS] ? compile(tables, why, sizeof(why)) : NULL;
    a->count++;
    if (!k->name || !k->lists[FERRY_AUTH_TOPICS] || !k->lists[FERRY_AUTH_TABLES]) {
        snprintf(errstr, errstr_size, "key '%s': %s", name, why);
        return -1;
    }
    memcpy(k->secret, secret, len);
    k->len = len;
    return 0;
}

int ferry_auth_enabled(const ferry_auth *a)
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
    for (size_t i = 0; i < FERRY_AUTH_SECRET_MAX; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d;
}

int ferry_auth_check(const ferry_auth *a, const char *authorization)
{
    unsigned char given[FERRY_AUTH_SECRET_MAX] = {0};
    const char *token;
    size_t len;
    int found = -1;

    if (bearer_token(authorization, &token, &len) || len > FERRY_AUTH_SECRET_MAX)
        return -1;
    memcpy(given, token, len);
    for (size_t i = 0; i < a->count; i++) {
        unsigned d = diff(given, len, a->keys[i].secret, a->keys[i].len);
        found = d == 0 ? (int)i : found;
    }
    memset(given, 0, sizeof(given));
    return found;
}

uint64_t ferry_auth_mask(const ferry_auth *a, enum ferry_auth_scope scope, const char *name)
{
    uint64_t mask = 0;

    for (size_t i = 0; i < a->count; i++)
        if (ferry_patterns_match(a->keys[i].lists[scope], name))
            mask |= (uint64_t)1 << i;
    return mask;
}

int ferry_auth_allows(const ferry_auth *a, int key, enum ferry_auth_scope scope, const char *name)
{
    return key >= 0 && (size_t)key < a->count &&
           ferry_patterns_match(a->keys[key].lists[scope], name);
}

const char *ferry_auth_name(const ferry_auth *a, int i)
{
    return i >= 0 && (size_t)i < a->count ? a->keys[i].name : "-";
}

ferry_auth *ferry_auth_from_config(const struct ferry_config *cfg, char *errstr, size_t errstr_size)
{
    ferry_auth *a = ferry_auth_new();
    int result = a ? 0 : -1;

    if (!a)
        snprintf(errstr, errstr_size, "out of memory for the API keys");
    for (int i = 0; ferry_jobs[i] && !result; i++)
        if (ferry_jobs[i]->add_keys)
            result = ferry_jobs[i]->add_keys(ferry_config_job(cfg, ferry_jobs[i]), a, errstr,
                                             errstr_size);
    if (result) {
        ferry_auth_destroy(a);
        return NULL;
    }
    return a;
}

void ferry_auth_destroy(ferry_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->count; i++) {
        explicit_bzero(a->keys[i].secret, sizeof(a->keys[i].secret));
        free(a->keys[i].name);
        ferry_patterns_destroy(a->keys[i].lists[FERRY_AUTH_TOPICS]);
        ferry_patterns_destroy(a->keys[i].lists[FERRY_AUTH_TABLES]);
    }
    free(a);
}
