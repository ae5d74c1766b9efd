/*
 * forward_int.h - the forwarder's insides, shared by forward.c (transfers) and forward_batch.c
 * (plain GETs to one holder sent together as one lookup). Nothing else includes this.
 */
#ifndef FERRY_TABLE_FORWARD_INT_H
#define FERRY_TABLE_FORWARD_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/buf.h"
#include "table/forward.h"

#define FORWARD_SPARE_HANDLES 256 /* idle easy handles kept for the next reads */
#define FORWARD_DESTS_MAX 256     /* holders whose counts are kept (as many as members) */

/* What was sent to one holder: written by the forwarder thread, read by any. */
struct dest {
    char base[FERRY_FORWARD_URL_MAX];
    atomic_ullong sent, unreached;
};

struct fwd {
    struct fwd *next, *prev; /* in the queue (next only), then among the running */
    ferry_table_forward *f;
    ferry_http_req *req;
    CURL *easy;
    struct curl_slist *headers;
    char *path; /* path and query */
    char bases[FERRY_FORWARD_CANDIDATES_MAX][FERRY_FORWARD_URL_MAX];
    size_t nbases, tried;
    size_t holders; /* the candidates its time is shared among: nbases (a batch: its GETs' most) */
    int64_t deadline_ms;
    int64_t wait_ms; /* a long poll's: every try may take this long on top of its share */
    struct ferry_buf body;
    int too_large;            /* the answer passed FERRY_FORWARD_ANSWER_MAX */
    struct ferry_buf relayed; /* "Name\0value\0" pairs */
    void (*done)(void *arg, int status);
    void (*answer)(void *arg, int status, const char *body, size_t len);
    void *arg;
    char *post; /* a POST's body, or NULL */
    size_t post_len;
    /* a plain GET of one key, which may go in a batch (forward_batch.c) */
    char *batch_table, *batch_key;
    size_t batch_key_len;
    /* a batch: the GETs it carries; it is none of theirs and counts in no limit */
    struct fwd **members;
    size_t nmembers;
};

struct ferry_table_forward {
    char hop[FERRY_FORWARD_URL_MAX]; /* the hop header line */
    char *auth;                      /* "Authorization: Bearer <peer_key>", or NULL */
    CURLM *multi;
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t lock;
    struct fwd *queue; /* built by server threads, taken by the forwarder (lock) */
    atomic_size_t in_flight;
    struct fwd *running;                /* the forwarder thread's */
    CURL *spare[FORWARD_SPARE_HANDLES]; /* the forwarder thread's: easy handles to reuse */
    size_t nspare;
    struct dest dests[FORWARD_DESTS_MAX];
    atomic_size_t ndests; /* dests[0..ndests) are filled; the forwarder thread adds */
};

/* Makes a read of req (NULL for a call of ferry's own) as fr says; NULL when out of memory. */
struct fwd *ferry_forward_fwd_new(ferry_table_forward *f, ferry_http_req *req,
                                  const struct ferry_forward_request *fr);

/* Starts w's transfer (to its next candidate); answers it 503 and ends it when it cannot.
 * Forwarder thread. */
void ferry_forward_start(ferry_table_forward *f, struct fwd *w);

/* Ends a read that was answered: tells its owner, frees it. Forwarder thread. */
void ferry_forward_finish(ferry_table_forward *f, struct fwd *w, int status);

/* Sends the plain GETs among the queued reads in batches, one per table and holder, and
 * starts every other read alone. Forwarder thread. */
void ferry_forward_batch_start(ferry_table_forward *f, struct fwd *queue);

#endif
