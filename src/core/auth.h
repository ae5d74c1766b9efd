/*
 * auth.h - the listener's API keys: `Authorization: Bearer <key>`, each key allowed the
 * topics it may write (ingest) and the tables it may read, as lists of names or ^regex.
 *
 * The core owns one set of keys for the whole listener; the job whose config declares them
 * (ingest, `ingest.auth.keys`) adds them at start, and every job checks requests against
 * them. With no key added, auth is off. Keys are never logged; only their names appear in
 * logs. A presented key is compared with every key in constant time, so response timing says
 * nothing about how much of a key was right.
 */
#ifndef FERRY_AUTH_H
#define FERRY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef struct ferry_auth ferry_auth;

/* Most keys, and the shortest and longest secret, accepted. */
#define FERRY_AUTH_KEYS_MAX 64
#define FERRY_AUTH_SECRET_MIN 16
#define FERRY_AUTH_SECRET_MAX 256

/* What a key's pattern list names. */
enum ferry_auth_scope {
    FERRY_AUTH_TOPICS, /* topics it may write */
    FERRY_AUTH_TABLES, /* tables it may read */
};

/* Returns an empty set of keys (auth off), or NULL when out of memory. Main thread. */
ferry_auth *ferry_auth_new(void);

/* Adds a key: its name (for logs), its secret (len bytes, at most FERRY_AUTH_SECRET_MAX) and
 * the names or ^regex patterns of what it may write and read (either may be NULL for none).
 * Returns 0, or -1 with errstr (a pattern that does not compile, too many keys). Main thread,
 * before the server starts. */
int ferry_auth_add(ferry_auth *a, const char *name, const char *secret, size_t len,
                   const struct ferry_cfg_strings *topics, const struct ferry_cfg_strings *tables,
                   char *errstr, size_t errstr_size);

/* Nonzero when at least one key was added. Any thread. */
int ferry_auth_enabled(const ferry_auth *a);

/* Returns the index of the key presented by an Authorization header value (NULL when the
 * request had none), or -1 when it presents no key. Any thread. */
int ferry_auth_check(const ferry_auth *a, const char *authorization);

/* Returns a mask with bit i set when key i's list of scope matches name. Any thread. */
uint64_t ferry_auth_mask(const ferry_auth *a, enum ferry_auth_scope scope, const char *name);

/* Nonzero when key may use name in scope. Any thread. */
int ferry_auth_allows(const ferry_auth *a, int key, enum ferry_auth_scope scope, const char *name);

/* The name of key i (for logs and errors), "-" for none. */
const char *ferry_auth_name(const ferry_auth *a, int i);

/* Returns a new set of the keys that the jobs' sections of cfg declare (each job's add_keys),
 * for config checks that need them before anything runs; the caller destroys it. NULL with
 * errstr when a key does not load (the check of its own section reports that) or out of
 * memory. Main thread. */
ferry_auth *ferry_auth_from_config(const struct ferry_config *cfg, char *errstr,
                                   size_t errstr_size);

/* Wipes the secrets from memory and frees everything. Accepts NULL. Main thread. */
void ferry_auth_destroy(ferry_auth *a);

#endif
