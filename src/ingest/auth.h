/*
 * auth.h - API keys for ingest: `Authorization: Bearer <key>`, each key allowed a list of
 * topics (names or ^regex).
 *
 * Keys are read once at start (from the config, an environment variable through ${env:...},
 * or a file) and never logged; only their names appear in logs. A presented key is compared
 * with every configured key in constant time, so response timing says nothing about how much
 * of a key was right.
 */
#ifndef FERRY_INGEST_AUTH_H
#define FERRY_INGEST_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/ingest_config.h"

typedef struct ferry_ingest_auth ferry_ingest_auth;

/* Reads the keys of `ingest.auth.keys` (struct ferry_ingest_api_key_config). Returns the
 * object (the caller owns it; no keys means auth is off), or NULL with errstr. Main thread. */
ferry_ingest_auth *ferry_ingest_auth_new(const struct ferry_cfg_list *keys, char *errstr,
                                         size_t errstr_size);

/* Nonzero when at least one key is configured. Any thread. */
int ferry_ingest_auth_enabled(const ferry_ingest_auth *a);

/* Returns the index of the key presented by an Authorization header value (NULL when the
 * request had none), or -1 when it presents no configured key. Any thread. */
int ferry_ingest_auth_check(const ferry_ingest_auth *a, const char *authorization);

/* Returns a mask with bit i set when key i may write topic. Any thread. */
uint64_t ferry_ingest_auth_topic_mask(const ferry_ingest_auth *a, const char *topic);

/* The configured name of key i (for logs). */
const char *ferry_ingest_auth_name(const ferry_ingest_auth *a, int i);

/* Wipes the keys from memory and frees everything. Accepts NULL. Main thread. */
void ferry_ingest_auth_destroy(ferry_ingest_auth *a);

#endif
