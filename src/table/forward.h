/*
 * forward.h - reads of a table placed `partitioned` sent on to the instance that holds the
 * key's partition, and the answer relayed back.
 *
 * One thread of the tables job runs a libcurl multi handle: its connection cache is the
 * keep-alive pool to the other instances, and a forwarded read holds no server thread (the
 * request is suspended until the answer comes). A read goes to the first of its candidate
 * holders; when that one cannot be reached, does not answer within its try's share of the read's
 * time, or says it does not serve the partition (508), the next is tried, so a read forwarded to
 * an instance that has just died (or whose host vanished with a pooled connection to it still
 * open) still gets its answer.
 * The forwarded request carries FERRY_FORWARD_HOP_HEADER: an instance never forwards a read
 * that already was (one hop at most), and answers 508 instead.
 */
#ifndef FERRY_TABLE_FORWARD_H
#define FERRY_TABLE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/httpd.h"

#define FERRY_FORWARD_HOP_HEADER "Ferry-Forwarded-By"
#define FERRY_FORWARD_CANDIDATES_MAX 8 /* holders one read may try */
/* A holder's URL and its NUL: room for any URL a heartbeat advertises (holder.c asserts it). */
#define FERRY_FORWARD_URL_MAX 1025
/* The largest answer relayed from a holder (a larger one is answered 502): 64 MiB, as large as
 * a holder's own lookup answer or scan page may be (query.c). */
#define FERRY_FORWARD_ANSWER_MAX (64 * 1024 * 1024)

typedef struct ferry_table_forward ferry_table_forward;

/* A forwarder that sends peer_key (may be NULL) as its bearer token and names itself instance
 * in the hop header. Returns NULL with errstr. Main thread. */
ferry_table_forward *ferry_table_forward_new(const char *instance, const char *peer_key,
                                             char *errstr, size_t errstr_size);

int ferry_table_forward_start(ferry_table_forward *f, char *errstr, size_t errstr_size);

/* Answers every read still under way with 503 and joins the thread. Safe to call twice.
 * Main thread. */
void ferry_table_forward_stop(ferry_table_forward *f);

/* Frees the forwarder (stopping it first). Accepts NULL. */
void ferry_table_forward_destroy(ferry_table_forward *f);

/* What a read is forwarded with. */
struct ferry_forward_request {
    const char *path_and_query; /* as the client sent it, e.g. /tables/t/keys/k?min_offset=.. */
    const char *body;           /* NULL: a GET; else a POST of body[0..body_len), copied */
    size_t body_len;
    const char *const *bases; /* candidate holders' URLs, best first */
    size_t nbases;            /* 1 .. FERRY_FORWARD_CANDIDATES_MAX */
    int64_t timeout_ms;       /* for the whole read, tries included */
    int64_t wait_ms;          /* of timeout_ms, how long a holder may hold the read (a long poll) */
    void (*done)(void *arg, int status); /* after the answer was sent, on the forwarder's thread */
    /* ferry_table_forward_call only: the holder's answer (status, body), or ferry's own status
     * with no body (503 when no holder could be reached or every one answered 508, 502 when
     * the answer was too large, 504 when time ran out); on the forwarder's thread, before
     * done. */
    void (*answer)(void *arg, int status, const char *body, size_t len);
    void *arg;
};

/* Suspends req and forwards it; the answer (the holder's status, body and Ferry-* headers, or
 * 502/503/504 of ferry's own) is sent from the forwarder's thread. Returns 0, or -1 when req was
 * not taken (out of memory, too many under way, stopping): the caller answers it then. Server
 * thread. */
int ferry_table_forward_read(ferry_table_forward *f, ferry_http_req *req,
                             const struct ferry_forward_request *fr);

/* How many reads (and parts of multi-key reads) this instance sent to the holder at base, and
 * how many of those it could not reach there. Any thread. */
void ferry_table_forward_counts(ferry_table_forward *f, const char *base, uint64_t *sent,
                                uint64_t *unreached);

/* As ferry_table_forward_read, for a plain GET of one key of table (no If-None-Match, no
 * wait, no min_offset): the forwarder may send it with the other such GETs queued for the same
 * holder as one lookup, and answer each as the holder's GET would have. Server thread. */
int ferry_table_forward_get(ferry_table_forward *f, ferry_http_req *req,
                            const struct ferry_forward_request *fr, const char *table,
                            const void *key, size_t len);

/* Sends a request of ferry's own (a part of a multi-key read) to the first candidate that
 * answers, and hands the answer to fr->answer. Returns 0, or -1 when it was not taken (then
 * neither callback runs). Any thread. */
int ferry_table_forward_call(ferry_table_forward *f, const struct ferry_forward_request *fr);

/* The status a client gets for a part of its read that did not come back as 200, from the
 * status of the forward_call answer: 503 (with Retry-After from the caller) when no holder
 * could serve it now (503, 508, 429, or no answer), 504 when time ran out, and 502 for anything
 * else, since the holder refused or failed a request of ferry's own (a 401 for a wrong
 * peer_key, a 413, a 500): asking again would not help. */
int ferry_forward_client_status(int status);

#endif
