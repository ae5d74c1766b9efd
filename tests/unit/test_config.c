/*
 * test_config.c - the config loader: a table of good inputs and the values they give, and of
 * bad inputs and the message and line each must produce; ${env:...} substitution.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/kafka.h"
#include "route/route.h"
#include "route/route_config.h"

/* 50 characters of a topic name, to build long names (Kafka allows 249). */
#define X50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
/* The longest name of a route, table, webhook or limiter, and the longest server.instance. */
#define X64 X50 "xxxxxxxxxxxxxx"
#define X184 X50 X50 X50 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static void test_defaults(void **state)
{
    struct ferry_config *cfg = ferry_config_load_string("", "empty.yaml");
    (void)state;
    assert_non_null(cfg);
    assert_int_equal(ferry_config_error_count(cfg), 0);
    assert_null(cfg->kafka.brokers);
    assert_string_equal(cfg->server.listen, "127.0.0.1:8080");
    assert_int_equal(cfg->server.shutdown_timeout_ms, 30000);
    assert_int_equal(cfg->kafka.dev.brokers, 1);
    assert_int_equal(cfg->log.level, 1);
    assert_int_equal(cfg->log.format, 0);
    ferry_config_destroy(cfg);
}

static void test_good_values(void **state)
{
    static const char text[] =
        "kafka:\n"
        "  brokers: k1:9092,k2:9092\n"
        "  properties:\n"
        "    compression.type: zstd\n"
        "    linger.ms: 20\n"
        "  dev: {brokers: 3, topics: [orders:8, 'audit:1', " X50 X50 X50 X50 "x.y_z-9:2]}\n"
        "server:\n"
        "  listen: '[::1]:9999'\n"
        "  shutdown_timeout: 1.5s\n"
        "log: {level: debug, format: json}\n";
    struct ferry_config *cfg = ferry_config_load_string(text, "good.yaml");
    (void)state;
    assert_int_equal(ferry_config_error_count(cfg), 0);
    assert_string_equal(cfg->kafka.brokers, "k1:9092,k2:9092");
    assert_int_equal(cfg->kafka.properties.count, 2);
    assert_string_equal(cfg->kafka.properties.items[1].key, "linger.ms");
    assert_string_equal(cfg->kafka.properties.items[1].value, "20");
    assert_int_equal(cfg->kafka.dev.brokers, 3);
    assert_int_equal(cfg->kafka.dev.topics.count, 3);
    assert_string_equal(cfg->kafka.dev.topics.items[1], "audit:1");
    assert_string_equal(cfg->server.listen, "[::1]:9999");
    assert_int_equal(cfg->server.shutdown_timeout_ms, 1500);
    assert_int_equal(cfg->log.level, 0);
    assert_int_equal(cfg->log.format, 1);
    assert_int_equal(ferry_config_line(cfg, "kafka.properties.linger.ms"), 5);
    ferry_config_destroy(cfg);
}

struct bad_case {
    const char *text;
    const char *message; /* the whole first error, file and line included */
};

/* An e-mail route, for the cases of target.smtp's keys to add to. */
#define SMTP_ROUTE                                                                                 \
    "routes:\n  - name: r\n    topics: [t]\n    target:\n      smtp:\n        url: smtp://x:25\n"  \
    "        from: a@b.c\n        to: d@e.f\n        subject: s\n        text: t\n"

/* Tables placed partitioned with API keys on the listener: cluster.peer_key is needed. */
#define PEER_TABLES                                                                                \
    "ingest: {auth: {keys: [{name: peer, key: peer-key-0123456789abc, tables: ['^.*']}]}}\n"       \
    "tables:\n"                                                                                    \
    "  - {name: t, topic: a, placement: partitioned}\n"

static const struct bad_case bad_cases[] = {
    {"kafka:\n  brokerz: x\n",
     "config: kafka.brokerz: unknown key, did you mean 'brokers'? (bad.yaml:2)"},
    {"server:\n  listen: nope\n",
     "config: server.listen: expected host:port like 127.0.0.1:8080, got 'nope' (bad.yaml:2)"},
    {"server:\n  threads: ten\n",
     "config: server.threads: expected an integer, got 'ten' (bad.yaml:2)"},
    {"server:\n  threads: 0\n",
     "config: server.threads: expected a value from 1 to 256, got '0' (bad.yaml:2)"},
    {"server:\n  connection_memory: 2KiB\n",
     "config: server.connection_memory: expected a value from 4KiB to 1MiB, got '2KiB' "
     "(bad.yaml:2)"},
    {"server:\n  shutdown_timeout: 10\n",
     "config: server.shutdown_timeout: expected a duration like 250ms, 10s or 2m, got '10' "
     "(bad.yaml:2)"},
    {"log:\n  level: loud\n",
     "config: log.level: expected one of debug, info, warn, error, got 'loud' (bad.yaml:2)"},
    {"log: [1, 2]\n", "config: log: expected a mapping of keys to values (bad.yaml:1)"},
    {"kafka:\n  dev:\n    topics: [orders]\n",
     "config: kafka.dev.topics[0]: expected name:partitions like 'orders:8', got 'orders' "
     "(bad.yaml:3)"},
    {"kafka:\n  properties: [a]\n",
     "config: kafka.properties: expected a mapping of names to values (bad.yaml:2)"},
    {"server:\n  listen: a:1\n  listen: b:2\n",
     "config: server.listen: duplicate key (bad.yaml:3)"},
    {"server:\n  listen: ${env:FERRY_TEST_UNSET_VARIABLE}\n",
     "config: server.listen: environment variable 'FERRY_TEST_UNSET_VARIABLE' is not set "
     "(bad.yaml:2)"},
    {"server: {listen: [x]}\n",
     "config: server.listen: expected a single value, got a list (bad.yaml:1)"},
    {"frobnicate: 1\n", "config: frobnicate: unknown key (bad.yaml:1)"},
    /* the top level has no key to name: the message names its line */
    {"- a\n- b\n",
     "config: expected a mapping of keys to values at the top of the file, got a list "
     "(bad.yaml:1)"},
    /* one document per file: what follows a "---" would be ignored */
    {"server: {threads: 3}\n---\nbogus: 1\n",
     "config: a second YAML document starts here: write one YAML document per file "
     "(bad.yaml:2)"},
    {"# a comment\nhello\n",
     "config: expected a mapping of keys to values at the top of the file, got a single value "
     "(bad.yaml:2)"},
    /* numbers are plain decimal: what strtod and strtoll would also take is refused */
    {"server:\n  threads: 0x10\n",
     "config: server.threads: expected an integer, got '0x10' (bad.yaml:2)"},
    {"server:\n  threads: +4\n",
     "config: server.threads: expected an integer, got '+4' (bad.yaml:2)"},
    {"server:\n  threads: -4\n",
     "config: server.threads: expected a value from 1 to 256, got '-4' (bad.yaml:2)"},
    {"server:\n  shutdown_timeout: 1e3ms\n",
     "config: server.shutdown_timeout: expected a duration like 250ms, 10s or 2m, got '1e3ms' "
     "(bad.yaml:2)"},
    {"server:\n  shutdown_timeout: 0x0\n",
     "config: server.shutdown_timeout: expected a duration like 250ms, 10s or 2m, got '0x0' "
     "(bad.yaml:2)"},
    {"ingest:\n  limits:\n    max_body: 0x100000\n",
     "config: ingest.limits.max_body: expected a size like 512KiB or 1MiB, got '0x100000' "
     "(bad.yaml:3)"},
    {"ingest:\n  limits:\n    max_body: 1e6\n",
     "config: ingest.limits.max_body: expected a size like 512KiB or 1MiB, got '1e6' (bad.yaml:3)"},
    /* a route's plain topic names and its dead-letter topic are names Kafka accepts */
    {"routes:\n  - name: r\n    topics: [orders, \"a b\"]\n    target: {url: \"http://x/\"}\n",
     "config: routes[0].topics[1]: topic name 'a b' holds ' ', but Kafka allows only ASCII "
     "letters, digits, '.', '_' and '-' (a regular expression starts with '^') (bad.yaml:3)"},
    /* and its regular expressions compile, as they must for the subscription */
    {"routes:\n  - name: r\n    topics:\n      - orders\n      - \"^(bad\"\n"
     "    target: {url: \"http://x/\"}\n",
     "config: routes[0].topics[1]: '^(bad' is not a valid regular expression: Unmatched ( or \\( "
     "(bad.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [\"^a++\"]\n    target: {url: \"http://x/\"}\n",
     "config: routes[0].topics[0]: '^a++': a quantifier follows a quantifier (undefined in POSIX "
     "ERE) (bad.yaml:3)"},
    /* a route that reads its own dead-letter topic would deliver its dead letters again */
    {"routes:\n  - name: r\n    topics: [\"^orders.*\"]\n    target: {url: \"http://x/\"}\n"
     "    dead_letter: {topic: orders.dlq}\n",
     "config: routes[0].dead_letter.topic: 'orders.dlq' is one of the route's topics (it matches a "
     "pattern): it would take its own dead letters again (bad.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [orders, orders.dlq]\n    target: {url: \"http://x/\"}\n"
     "    dead_letter: {topic: orders.dlq}\n",
     "config: routes[0].dead_letter.topic: 'orders.dlq' is one of the route's topics: it would "
     "take "
     "its own dead letters again (bad.yaml:5)"},
    /* configured header names: tokens, and not the body's framing (both used to be sent) */
    {"routes:\n  - name: r\n    topics: [a]\n    target:\n      url: \"http://x/\"\n"
     "      headers: {\"X Tenant\": acme}\n",
     "config: routes[0].target.headers.X Tenant: 'X Tenant' is not a header name (letters, "
     "digits and !#$%&'*+-.^_`|~) (bad.yaml:6)"},
    {"routes:\n  - name: r\n    topics: [a]\n    target:\n      url: \"http://x/\"\n"
     "      headers: {\"X-A:b\": c}\n",
     "config: routes[0].target.headers.X-A:b: 'X-A:b' is not a header name (letters, digits and "
     "!#$%&'*+-.^_`|~) (bad.yaml:6)"},
    {"routes:\n  - name: r\n    topics: [a]\n    target:\n      url: \"http://x/\"\n"
     "      headers: {content-length: \"3\"}\n",
     "config: routes[0].target.headers.content-length: 'content-length' is set by ferry from the "
     "body (bad.yaml:6)"},
    {"routes:\n  - name: r\n    topics: [\"^(a)\\\\1\"]\n    target: {url: \"http://x/\"}\n",
     "config: routes[0].topics[0]: '^(a)\\1': a backreference (\\1 to \\9) is not POSIX ERE, and "
     "can "
     "take exponential time to match (bad.yaml:3)"},
    {"routes:\n  - name: r\n    topics: [orders]\n    target: {url: \"http://x/\"}\n"
     "    dead_letter: {topic: ..}\n",
     "config: routes[0].dead_letter.topic: '..' is not allowed as a topic name (bad.yaml:5)"},
    {"routes:\n  - {name: r, topics: [a], target: {url: \"http://x/\"}}\n"
     "  - {name: q, topics: [a], target: {url: \"http://x/\"}}\n"
     "  - {name: r, topics: [b], target: {url: \"http://x/\"}}\n",
     "config: routes[2].name: another route is named 'r' (bad.yaml:4)"},
    /* rate limits: a shared limiter must exist and limit something; a route's must too */
    {"limiters:\n  - {name: api, requests_per_second: 5}\nroutes:\n  - name: r\n"
     "    topics: [t]\n    target: {url: \"http://x/\"}\n    rate_limit:\n      limiter: apj\n",
     "config: routes[0].rate_limit.limiter: unknown limiter 'apj': limiters are 'api' "
     "(bad.yaml:8)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://x/\"}\n"
     "    rate_limit: {limiter: api}\n",
     "config: routes[0].rate_limit.limiter: unknown limiter 'api': none is declared under "
     "limiters: (bad.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://x/\"}\n"
     "    rate_limit: {burst: 1s}\n",
     "config: routes[0].rate_limit: expected a limiter or at least one of requests_per_second, "
     "records_per_second, bytes_per_second (bad.yaml:5)"},
    {"limiters:\n  - {name: api, requests_per_second: 5}\nroutes:\n  - name: r\n"
     "    topics: [t]\n    target: {url: \"http://x/\"}\n    rate_limit:\n      limiter: api\n"
     "      burst: 2s\n",
     "config: routes[0].rate_limit.burst: applies to this route's own rates, and it has none: a "
     "shared limiter's burst is set under limiters: (bad.yaml:9)"},
    {"limiters:\n  - name: api\n    burst: 1s\n",
     "config: limiters[0]: expected at least one of requests_per_second, records_per_second, "
     "bytes_per_second (bad.yaml:2)"},
    {"limiters:\n  - {name: api, requests_per_second: 5}\n"
     "  - {name: api, records_per_second: 5}\n",
     "config: limiters[1].name: another limiter is named 'api' (bad.yaml:3)"},
    {"limiters:\n  - {name: api, requests_per_second: -1}\n",
     "config: limiters[0].requests_per_second: expected a value from 0 to 1000000000, got '-1' "
     "(bad.yaml:2)"},
    /* tables */
    {"tables:\n  - {name: \"a b\", topic: t}\n",
     "config: tables[0].name: expected letters, digits, '.', '_' or '-', got 'a b' (bad.yaml:2)"},
    {"tables:\n  - {name: a, topic: t}\n  - {name: a, topic: u}\n",
     "config: tables[1].name: another table is named 'a' (bad.yaml:3)"},
    {"tables:\n  - {name: a, topic: t, path: /x}\n  - {name: b, topic: u, path: /x}\n",
     "config: tables[1].path: table 'a' stores into the same directory, /x (bad.yaml:3)"},
    {"tables:\n  - {name: a}\n",
     "config: tables[0].topic: missing, this key is required (bad.yaml:2)"},
    {"tables:\n  - {name: a, topic: \"t t\"}\n",
     "config: tables[0].topic: topic name 't t' holds ' ', but Kafka allows only ASCII letters, "
     "digits, '.', '_' and '-' (bad.yaml:2)"},
    {"tables:\n  - {name: a, topic: t, placement: sharded}\n",
     "config: tables[0].placement: expected one of all, partitioned, got 'sharded' (bad.yaml:2)"},
    {"tables:\n  - {name: a, topic: t, placement: partitioned, replicas: 0}\n",
     "config: tables[0].replicas: expected a value from 1 to 64, got '0' (bad.yaml:2)"},
    {"cluster:\n  heartbeat: 2s\n  member_timeout: 3s\n",
     "config: cluster.member_timeout: must be at least twice cluster.heartbeat, or one late "
     "heartbeat makes a live instance look gone (bad.yaml:3)"},
    {"cluster:\n  members_topic: 'a b'\n",
     "config: cluster.members_topic: topic name 'a b' holds ' ', but Kafka allows only ASCII "
     "letters, digits, '.', '_' and '-' (bad.yaml:2)"},
    /* cluster.peer_key must be one of ingest.auth.keys, as ferry run requires */
    {PEER_TABLES "cluster:\n  peer_key: wrong-key-0123456789abc\n",
     "config: cluster.peer_key: not one of ingest.auth.keys (bad.yaml:5)"},
    {PEER_TABLES "cluster:\n  peer_key:\n",
     "config: cluster.peer_key: missing, needed when ingest.auth.keys are set and a table is "
     "placed partitioned (the instances forward reads to each other with it) (bad.yaml:5)"},
    {PEER_TABLES "cluster:\n  heartbeat: 1s\n",
     "config: cluster.peer_key: missing, needed when ingest.auth.keys are set and a table is "
     "placed partitioned (the instances forward reads to each other with it) (bad.yaml:4)"},
    {PEER_TABLES,
     "config: tables[0].placement: partitioned while ingest.auth.keys are set: needs "
     "cluster.peer_key, the key the instances forward reads to each other with (bad.yaml:3)"},
    {"ingest:\n  auth:\n    keys:\n      - {name: r, key: reader-key-0123456789, tables: [a]}\n"
     "      - {name: p, key: peer-key-0123456789abc, tables: [a]}\n"
     "tables:\n  - {name: t, topic: t, placement: partitioned}\n"
     "cluster: {peer_key: peer-key-0123456789abc}\n",
     "config: cluster.peer_key: the key 'p' may not read table 't', which the instances forward "
     "reads of (bad.yaml:8)"},
    {"cluster:\n  peer_key: ${file:/nonexistent/ferry-peer.key}\n",
     "config: cluster.peer_key: ${file:/nonexistent/ferry-peer.key}: cannot open it: No such file "
     "or directory (bad.yaml:2)"},
    {"server:\n  advertised_url: host:8080\n",
     "config: server.advertised_url: expected http://host:port or https://host:port, got "
     "'host:8080' (bad.yaml:2)"},
    {"tables:\n  - {name: a, topic: t, max_size: 1KiB}\n",
     "config: tables[0].max_size: expected a value from 1MiB to 1024GiB, got '1KiB' (bad.yaml:2)"},
    {"routes:\n  - retry:\n      multiplier: nan\n",
     "config: routes[0].retry.multiplier: expected a number, got 'nan' (bad.yaml:3)"},
    {"routes:\n  - retry:\n      multiplier: 0x2\n",
     "config: routes[0].retry.multiplier: expected a number, got '0x2' (bad.yaml:3)"},
    {"routes:\n  - retry:\n      multiplier: 2e0\n",
     "config: routes[0].retry.multiplier: expected a number, got '2e0' (bad.yaml:3)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://x/\"}\n"
     "    io_threads: two\n",
     "config: routes[0].io_threads: expected auto or 0 to 64, got 'two' (bad.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://x/\"}\n"
     "    io_threads: 65\n",
     "config: routes[0].io_threads: expected auto or 0 to 64, got '65' (bad.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://x/\"}\n"
     "    io_threads: -1\n",
     "config: routes[0].io_threads: expected auto or 0 to 64, got '-1' (bad.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target:\n      smtp:\n        url: smtp://:25\n"
     "        from: a@b.c\n        to: d@e.f\n        subject: s\n        text: t\n",
     "config: routes[0].target.smtp.url: expected smtp://host:port or smtps://host:port, got "
     "'smtp://:25' (bad.yaml:6)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target:\n      smtp:\n        url: smtps://\n"
     "        from: a@b.c\n        to: d@e.f\n        subject: s\n        text: t\n",
     "config: routes[0].target.smtp.url: expected smtp://host:port or smtps://host:port, got "
     "'smtps://' (bad.yaml:6)"},
    {SMTP_ROUTE "        headers: {Subject: x}\n",
     "config: routes[0].target.smtp.headers.Subject: written by ferry or by mail servers, not by "
     "headers (bad.yaml:11)"},
    {SMTP_ROUTE "        headers: {Content-Disposition: attachment}\n",
     "config: routes[0].target.smtp.headers.Content-Disposition: written by ferry or by mail "
     "servers, not by headers (bad.yaml:11)"},
    {SMTP_ROUTE "        headers: {X-A: a, x-a: b}\n",
     "config: routes[0].target.smtp.headers.x-a: another header is named so (names ignore case) "
     "(bad.yaml:11)"},
    {SMTP_ROUTE "        headers: {\"X Campaign\": x}\n",
     "config: routes[0].target.smtp.headers.X Campaign: expected a field name of printable ASCII "
     "without ':', at most 64 characters (bad.yaml:11)"},
    {SMTP_ROUTE "        headers: {X-Campaign: \"${value.c\"}\n",
     "config: routes[0].target.smtp.headers.X-Campaign: template: unterminated '${' at offset 0 "
     "(bad.yaml:11)"},
    {"kafka:\n  dev:\n    topics: ['orders:+8']\n",
     "config: kafka.dev.topics[0]: expected name:partitions like 'orders:8', got 'orders:+8' "
     "(bad.yaml:3)"},
    /* dev-cluster topic names Kafka would refuse when the cluster starts */
    {"kafka:\n  dev:\n    topics: [ok:1, 'bad name:1']\n",
     "config: kafka.dev.topics[1]: topic name 'bad name' holds ' ', but Kafka allows only ASCII "
     "letters, digits, '.', '_' and '-' (bad.yaml:3)"},
    {"kafka:\n  dev:\n    topics:\n      - ok:1\n      - 'a/b:2'\n",
     "config: kafka.dev.topics[1]: topic name 'a/b' holds '/', but Kafka allows only ASCII "
     "letters, digits, '.', '_' and '-' (bad.yaml:5)"},
    {"kafka:\n  dev:\n    topics: ['..:1']\n",
     "config: kafka.dev.topics[0]: '..' is not allowed as a topic name (bad.yaml:3)"},
    {"kafka:\n  dev:\n    topics: [" X50 X50 X50 X50 X50 ":1]\n",
     "config: kafka.dev.topics[0]: topic name is 250 characters long, Kafka allows at most 249 "
     "(bad.yaml:3)"},
    /* a mapping of names, like a section, takes each key once: the second would win, or be
     * sent as a second header, in silence */
    {"kafka:\n  properties:\n    client.id: a\n    client.id: b\n",
     "config: kafka.properties.client.id: duplicate key (bad.yaml:4)"},
    {"server:\n  listen: 'a\n", NULL /* a YAML syntax error, checked below */},
    /* a required key with no value is not there: it used to count as written, and ferry run
     * then met a NULL name */
    {"routes: [{name: , topics: orders, target: {url: \"http://h/x\"}}]\n",
     "config: routes[0].name: required, got no value (bad.yaml:1)"},
    {"routes:\n  - name: r\n    topics:\n    target: {url: \"http://h/x\"}\n",
     "config: routes[0].topics: required, got no value (bad.yaml:3)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target:\n",
     "config: routes[0].target: required, got no value (bad.yaml:4)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://h/x\"}\n"
     "    retry:\n      topics:\n        - {delay: , topic: t.retry}\n",
     "config: routes[0].retry.topics[0].delay: required, got no value (bad.yaml:7)"},
    {"tables:\n  - name: a\n    topic: ~\n",
     "config: tables[0].topic: required, got no value (bad.yaml:3)"},
    {"limiters:\n  - {name: null, requests_per_second: 5}\n",
     "config: limiters[0].name: required, got no value (bad.yaml:2)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target:\n      smtp:\n        url: smtp://x:25\n"
     "        from:\n        to: d@e.f\n        subject: s\n        text: t\n",
     "config: routes[0].target.smtp.from: required, got no value (bad.yaml:7)"},
    {"routes:\n  - name: r\n    topics: [t]\n    target:\n      grpc: {url: , method: a.B/C}\n",
     "config: routes[0].target.grpc.url: required, got no value (bad.yaml:5)"},
    {"ingest:\n  webhooks:\n    - {name: w, path: , topic: t}\n",
     "config: ingest.webhooks[0].path: required, got no value (bad.yaml:3)"},
    /* only a kafka.brokers left out starts the embedded cluster: an empty one ran with no
     * bootstrap servers at all */
    {"kafka:\n  brokers: \"\"\n",
     "config: kafka.brokers: expected host:port[,host:port...], got an empty value: leave the key "
     "out for the embedded cluster (bad.yaml:2)"},
    {"kafka:\n  brokers: ${env:FERRY_TEST_UNSET_VARIABLE:-}\n",
     "config: kafka.brokers: expected host:port[,host:port...], got an empty value: leave the key "
     "out for the embedded cluster (bad.yaml:2)"},
    {"kafka:\n  brokers: \" \\t \"\n",
     "config: kafka.brokers: expected host:port[,host:port...], got an empty value: leave the key "
     "out for the embedded cluster (bad.yaml:2)"},
    /* an empty data_dir put the stores under /tables */
    {"server:\n  data_dir: ''\n",
     "config: server.data_dir: expected a directory, got an empty value (bad.yaml:2)"},
    /* names: not a directory's "." or "..", and short enough for group.instance.id */
    {"tables:\n  - {name: .., topic: t}\n",
     "config: tables[0].name: '..' is not a name: paths and URLs read it as a directory "
     "(bad.yaml:2)"},
    {"tables:\n  - {name: ., topic: t}\n",
     "config: tables[0].name: '.' is not a name: paths and URLs read it as a directory "
     "(bad.yaml:2)"},
    {"routes:\n  - {name: " X64 "y, topics: [t], target: {url: \"http://x/\"}}\n",
     "config: routes[0].name: 65 characters long, at most 64 are allowed (bad.yaml:2)"},
    {"limiters:\n  - {name: " X64 "y, requests_per_second: 5}\n",
     "config: limiters[0].name: 65 characters long, at most 64 are allowed (bad.yaml:2)"},
    {"ingest:\n  webhooks:\n    - {name: .., path: /h, topic: t}\n",
     "config: ingest.webhooks[0].name: '..' is not a name: paths and URLs read it as a "
     "directory (bad.yaml:3)"},
    {"server:\n  instance: " X184 "y\n",
     "config: server.instance: longer than 184 characters: group.instance.id, "
     "'<instance>-<route>' with route names of up to 64, must fit Kafka's 249 (bad.yaml:2)"},
    /* a quote or bracket left open is found at the end of the file: say where it began */
    {"server:\n  listen: \"127.0.0.1:8080\n  threads: 2\nlog:\n  level: info\n",
     "config: invalid YAML: found unexpected end of stream while scanning a quoted scalar that "
     "started at line 2 (bad.yaml:6)"},
    {"server: {threads: 2,\n\n  listen: a:1\n",
     "config: invalid YAML: did not find expected ',' or '}' while parsing a flow mapping that "
     "started at line 1 (bad.yaml:4)"},
    /* a NUL byte ("\0" in double quotes) would cut the value short in silence */
    {"server:\n  listen: \"r\\0 b\"\n", "config: server.listen: holds a NUL byte (bad.yaml:2)"},
    {"kafka:\n  dev:\n    topics: [\"a:1\", \"b\\0:2\"]\n",
     "config: kafka.dev.topics[1]: holds a NUL byte (bad.yaml:3)"},
    {"kafka:\n  \"brokers\\0x\": k:9092\n",
     "config: kafka.brokers: the key holds a NUL byte (bad.yaml:2)"},
    {"kafka:\n  properties: {\"client.id\\0x\": a}\n",
     "config: kafka.properties.client.id: the key holds a NUL byte (bad.yaml:2)"},
};

static void test_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct ferry_config *cfg = ferry_config_load_string(bad_cases[i].text, "bad.yaml");
        assert_non_null(cfg);
        assert_true(ferry_config_error_count(cfg) >= 1);
        if (bad_cases[i].message)
            assert_string_equal(ferry_config_error_at(cfg, 0), bad_cases[i].message);
        else
            assert_non_null(strstr(ferry_config_error_at(cfg, 0), "config: invalid YAML"));
        ferry_config_destroy(cfg);
    }
}

/* An empty item in a list of strings is an error at its own place, and the list loads as if
 * left out: no second message about the same list ("expected at least one topic"). */
static const struct {
    const char *text;
    const char *message; /* the only error */
} empty_item_cases[] = {
    {"routes:\n  - name: r\n    topics: [a, \"\"]\n    target: {url: 'http://x/'}\n",
     "config: routes[0].topics[1]: empty item (empty.yaml:3)"},
    {"routes:\n  - name: r\n    topics: ''\n    target: {url: 'http://x/'}\n",
     "config: routes[0].topics: empty item (empty.yaml:3)"},
    {"routes:\n  - name: r\n    topics:\n      - a\n      -\n    target: {url: 'http://x/'}\n",
     "config: routes[0].topics[1]: empty item (empty.yaml:5)"},
    {"routes:\n  - name: r\n    topics: [~]\n    target: {url: 'http://x/'}\n",
     "config: routes[0].topics[0]: empty item (empty.yaml:3)"},
    {"routes:\n  - name: r\n    topics: [a]\n    target:\n      smtp:\n        url: smtp://x:25\n"
     "        from: a@b.c\n        to: [d@e.f, '']\n        subject: s\n        text: t\n",
     "config: routes[0].target.smtp.to[1]: empty item (empty.yaml:8)"},
    {"kafka:\n  dev:\n    topics: ['a:1', '${env:FERRY_TEST_UNSET:-}']\n",
     "config: kafka.dev.topics[1]: empty item once ${...} is substituted (empty.yaml:3)"},
};

static void test_empty_list_items(void **state)
{
    (void)state;
    unsetenv("FERRY_TEST_UNSET");
    for (size_t i = 0; i < sizeof(empty_item_cases) / sizeof(empty_item_cases[0]); i++) {
        struct ferry_config *cfg = ferry_config_load_string(empty_item_cases[i].text, "empty.yaml");
        if (ferry_config_error_count(cfg) != 1)
            fail_msg("case %zu: %zu errors, the first '%s'", i, ferry_config_error_count(cfg),
                     ferry_config_error_at(cfg, 0));
        assert_string_equal(ferry_config_error_at(cfg, 0), empty_item_cases[i].message);
        ferry_config_destroy(cfg);
    }
}

/* What io_threads gives a route on a machine with some processors. */
struct io_threads_case {
    const char *keys; /* the route's lines besides name, topics and target */
    long cpus;
    int threads;
};

static const struct io_threads_case io_threads_cases[] = {
    {"", 2, 2},                                /* auto, one record per request */
    {"", 1, 1},                                /* auto on one processor */
    {"", 64, FERRY_ROUTE_IO_THREADS_AUTO},     /* auto stops at its cap */
    {"    concurrency: 3\n", 64, 3},           /* and at the concurrency */
    {"    batch: {max_records: 500}\n", 8, 0}, /* auto: batches stay on the worker */
    {"    io_threads: auto\n", 2, 2},          /* spelled out */
    {"    io_threads: 0\n", 8, 0},             /* on the worker */
    {"    io_threads: 6\n", 2, 6},             /* as many as asked */
    {"    io_threads: 2\n    batch: {max_records: 500}\n", 8, 2},
};

static void test_route_io_threads(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(io_threads_cases) / sizeof(io_threads_cases[0]); i++) {
        const struct io_threads_case *c = &io_threads_cases[i];
        char text[512];
        struct ferry_config *cfg;

        snprintf(text, sizeof(text),
                 "routes:\n  - name: r\n    topics: [t]\n    target: {url: \"http://x/\"}\n%s",
                 c->keys);
        cfg = ferry_config_load_string(text, "io.yaml");
        assert_non_null(cfg);
        if (ferry_config_error_count(cfg))
            fail_msg("case %zu: %s", i, ferry_config_error_at(cfg, 0));
        const struct ferry_routes_config *rc = ferry_config_job(cfg, &ferry_routes_job);
        assert_int_equal(rc->routes.count, 1);
        assert_int_equal(ferry_route_io_threads(rc->routes.items, c->cpus), c->threads);
        ferry_config_destroy(cfg);
    }
}

/* A single value where a list of strings goes is a list of one, as docs/config.md says. */
static void test_scalar_is_a_list_of_one(void **state)
{
    struct ferry_config *cfg = ferry_config_load_string(
        "routes:\n  - name: r\n    topics: orders\n    target: {url: \"http://x/\"}\n", "one.yaml");
    const struct ferry_routes_config *rc = ferry_config_job(cfg, &ferry_routes_job);
    const struct ferry_route_config *r = rc->routes.items;

    (void)state;
    assert_int_equal(ferry_config_error_count(cfg), 0);
    assert_int_equal(r->topics.count, 1);
    assert_string_equal(r->topics.items[0], "orders");
    ferry_config_destroy(cfg);
}

/* A route's target.url: http or https with a host, whatever its variables fill in later. */
static const struct {
    const char *url;
    const char *error; /* NULL: valid */
} url_cases[] = {
    {"http://orders/api/${key}", NULL},
    {"HTTPS://orders:8443/api?topic=${topic}", NULL},
    {"http://user@[::1]:8080/${header.x-id}", NULL},
    {"http://x", NULL},
    {"not a url", "expected an http:// or https:// URL, got 'not a url'"},
    {"ftp://127.0.0.1:1/x", "expected an http:// or https:// URL, got 'ftp://127.0.0.1:1/x'"},
    {"file:///tmp/x", "expected an http:// or https:// URL, got 'file:///tmp/x'"},
    {"orders/x", "expected an http:// or https:// URL, got 'orders/x'"},
    {"http:///${key}", "expected a host after 'http://', got 'http:///${key}'"},
    {"http:///x", "expected a host after 'http://', got 'http:///x'"},
    {"https://:8443/${key}", "expected a host after 'https://', got 'https://:8443/${key}'"},
    {"http://user@/x", "expected a host after 'http://', got 'http://user@/x'"},
    {"http://", "expected a host after 'http://', got 'http://'"},
};

static void test_route_target_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
        char text[512], want[512];
        struct ferry_config *cfg;

        snprintf(text, sizeof(text),
                 "routes:\n  - name: r\n    topics: [t]\n    target:\n      url: \"%s\"\n",
                 url_cases[i].url);
        cfg = ferry_config_load_string(text, "url.yaml");
        assert_non_null(cfg);
        if (!url_cases[i].error) {
            if (ferry_config_error_count(cfg))
                fail_msg("'%s': %s", url_cases[i].url, ferry_config_error_at(cfg, 0));
        } else {
            snprintf(want, sizeof(want), "config: routes[0].target.url: %s (url.yaml:5)",
                     url_cases[i].error);
            assert_int_equal(ferry_config_error_count(cfg), 1);
            assert_string_equal(ferry_config_error_at(cfg, 0), want);
        }
        ferry_config_destroy(cfg);
    }
}

/* An optional key written with no value is the key left out: its default, and nothing that
 * asks whether it was written (server.data_dir picks the dev cluster's temporary directory so)
 * thinks it was. */
static void test_no_value_means_absent(void **state)
{
    static const char text[] = "kafka:\n"
                               "  brokers:\n"
                               "server:\n"
                               "  data_dir:\n"
                               "  threads: ~\n"
                               "  tls:\n"
                               "log:\n";
    struct ferry_config *cfg = ferry_config_load_string(text, "null.yaml");
    (void)state;
    if (ferry_config_error_count(cfg))
        fail_msg("%s", ferry_config_error_at(cfg, 0));
    assert_null(cfg->kafka.brokers);
    assert_string_equal(cfg->server.data_dir, "/var/lib/ferry");
    assert_int_equal(cfg->server.threads, 2);
    assert_int_equal(ferry_config_line(cfg, "kafka.brokers"), 0);
    assert_int_equal(ferry_config_line(cfg, "server.data_dir"), 0);
    assert_int_equal(ferry_config_line(cfg, "server.tls"), 0);
    assert_int_equal(ferry_config_line(cfg, "server"), 3);
    ferry_config_destroy(cfg);
}

/* server.advertised_url: http or https with a host, a URL libcurl parses, where the other
 * instances forward reads. */
static const struct {
    const char *url;
    const char *error; /* NULL: valid */
} advertised_cases[] = {
    {"http://ferry-0.ferry:8080", NULL},
    {"https://[::1]:8443", NULL},
    {"http://h", NULL},
    {"https://ferry.example.com/ferry", NULL},
    {"host:8080", "expected http://host:port or https://host:port, got 'host:8080'"},
    {"http://", "expected a host after 'http://', got 'http://'"},
    {"https://:8443", "expected a host after 'https://', got 'https://:8443'"},
    {"http:///x", "expected a host after 'http://', got 'http:///x'"},
    {"http://[]:80", "expected a host after 'http://', got 'http://[]:80'"},
    {"http://u@:80", "expected a host after 'http://', got 'http://u@:80'"},
    {"http://a b:80", "expected a host after 'http://', got 'http://a b:80'"},
    {"http://h:99999", "'http://h:99999' is not a URL: Port number was not a decimal number "
                       "between 0 and 65535"},
};

static void test_advertised_url(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(advertised_cases) / sizeof(advertised_cases[0]); i++) {
        char text[256], want[512];
        struct ferry_config *cfg;

        snprintf(text, sizeof(text), "server:\n  advertised_url: \"%s\"\n",
                 advertised_cases[i].url);
        cfg = ferry_config_load_string(text, "adv.yaml");
        if (!advertised_cases[i].error) {
            if (ferry_config_error_count(cfg))
                fail_msg("'%s': %s", advertised_cases[i].url, ferry_config_error_at(cfg, 0));
        } else {
            snprintf(want, sizeof(want), "config: server.advertised_url: %s (adv.yaml:2)",
                     advertised_cases[i].error);
            assert_int_equal(ferry_config_error_count(cfg), 1);
            assert_string_equal(ferry_config_error_at(cfg, 0), want);
        }
        ferry_config_destroy(cfg);
    }
}

/* Names at their limits: "<instance>-<route>" is then 249 characters, all Kafka allows. */
static void test_longest_names(void **state)
{
    struct ferry_config *cfg = ferry_config_load_string(
        "server: {instance: " X184 "}\n"
        "routes:\n  - {name: " X64 ", topics: [t], target: {url: \"http://x/\"}}\n"
        "tables:\n  - {name: " X64 ", topic: t}\n"
        "  - {name: ..., topic: u}\n",
        "long.yaml");
    (void)state;
    if (ferry_config_error_count(cfg))
        fail_msg("%s", ferry_config_error_at(cfg, 0));
    assert_int_equal(strlen(cfg->server.instance) + 1 + strlen(X64), 249);
    ferry_config_destroy(cfg);
}

static void test_all_errors_reported(void **state)
{
    struct ferry_config *cfg =
        ferry_config_load_string("server:\n  threads: x\nlog:\n  level: y\n", "two.yaml");
    (void)state;
    assert_int_equal(ferry_config_error_count(cfg), 2);
    assert_non_null(strstr(ferry_config_error_at(cfg, 1), "(two.yaml:4)"));
    ferry_config_destroy(cfg);
}

/* librdkafka's verdict on kafka.properties comes in the same run as every other problem. */
static void test_kafka_properties_reported_with_the_rest(void **state)
{
    static const char text[] = "kafka:\n"
                               "  properties:\n"
                               "    fetch.wait.max.mz: 10\n"
                               "    linger.ms: abc\n"
                               "server:\n"
                               "  threads: x\n";
    struct ferry_config *cfg = ferry_config_load_string(text, "kafka.yaml");
    (void)state;
    assert_int_equal(ferry_config_error_count(cfg), 1); /* the load's own */
    ferry_kafka_check_config(cfg);                      /* as main.c runs it, errors or not */
    assert_int_equal(ferry_config_error_count(cfg), 3);
    assert_string_equal(ferry_config_error_at(cfg, 0),
                        "config: server.threads: expected an integer, got 'x' (kafka.yaml:6)");
    assert_string_equal(ferry_config_error_at(cfg, 1),
                        "config: kafka.properties.fetch.wait.max.mz: No such configuration "
                        "property: \"fetch.wait.max.mz\" (kafka.yaml:3)");
    assert_non_null(strstr(ferry_config_error_at(cfg, 2), "config: kafka.properties.linger.ms: "));
    assert_non_null(strstr(ferry_config_error_at(cfg, 2), "(kafka.yaml:4)"));
    ferry_config_destroy(cfg);
}

/* Every key's line is found among thousands (the lines are indexed as they are noted), and a
 * key written twice answers with its last line, or 0 when the last had no value. */
static void test_lines_of_many_keys(void **state)
{
    struct ferry_buf text;
    struct ferry_config *cfg;

    (void)state;
    ferry_buf_init(&text, 256 * 1024);
    ferry_buf_adds(&text, "server:\n  threads: 2\n  threads: 3\n  data_dir: /a\n  data_dir:\n"
                          "kafka:\n  properties:\n");
    for (int i = 0; i < 3000; i++)
        ferry_buf_addf(&text, "    p%d: x\n", i);
    cfg = ferry_config_load_string(text.data, "lines.yaml");
    assert_int_equal(ferry_config_line(cfg, "server.threads"), 3);
    assert_int_equal(ferry_config_line(cfg, "server.data_dir"), 0);
    assert_int_equal(ferry_config_line(cfg, "kafka.properties.p0"), 8);
    assert_int_equal(ferry_config_line(cfg, "kafka.properties.p1234"), 1242);
    assert_int_equal(ferry_config_line(cfg, "kafka.properties.p2999"), 3007);
    assert_int_equal(ferry_config_line(cfg, "kafka.properties.p3000"), 0);
    assert_string_equal(ferry_config_error_at(cfg, 0),
                        "config: server.threads: duplicate key (lines.yaml:3)");
    assert_string_equal(ferry_config_error_at(cfg, 1),
                        "config: server.data_dir: duplicate key (lines.yaml:5)");
    ferry_config_destroy(cfg);
    ferry_buf_release(&text);
}

/* Each property map refuses only what the clients it reaches rest on: a table's consumer
 * commits nothing and joins no group, a route's consumers produce nothing. */
static const struct {
    enum ferry_kafka_props_of of;
    const char *key, *value;
    const char *error; /* NULL: accepted */
} owned_cases[] = {
    {FERRY_KAFKA_PROPS_EVERY_CLIENT, "acks", "1",
     "config: p.acks: ferry sets it to all: a record is acknowledged once every in-sync replica "
     "has it (k.yaml)"},
    {FERRY_KAFKA_PROPS_EVERY_CLIENT, "acks", "-1", NULL},
    {FERRY_KAFKA_PROPS_EVERY_CLIENT, "enable.auto.commit", "false",
     "config: p.enable.auto.commit: ferry sets it to true: ferry commits the offsets it stored "
     "this way (k.yaml)"},
    {FERRY_KAFKA_PROPS_ROUTE, "enable.auto.commit", "false",
     "config: p.enable.auto.commit: ferry sets it to true: ferry commits the offsets it stored "
     "this way (k.yaml)"},
    {FERRY_KAFKA_PROPS_ROUTE, "enable.auto.offset.store", "TRUE",
     "config: p.enable.auto.offset.store: ferry sets it to false: ferry stores a record's offset "
     "only once the record was delivered or dead-lettered (k.yaml)"},
    {FERRY_KAFKA_PROPS_ROUTE, "group.id", "g",
     "config: p.group.id: ferry sets it: a route's consumer group is its `group` (default "
     "ferry-<name>) (k.yaml)"},
    {FERRY_KAFKA_PROPS_ROUTE, "acks", "1", NULL},
    {FERRY_KAFKA_PROPS_TABLE, "enable.auto.commit", "false", NULL},
    {FERRY_KAFKA_PROPS_TABLE, "enable.auto.offset.store", "true", NULL},
    {FERRY_KAFKA_PROPS_TABLE, "enable.auto.commit", "true",
     "config: p.enable.auto.commit: ferry sets it to false: a table keeps its offsets in its "
     "store, not in Kafka (k.yaml)"},
    {FERRY_KAFKA_PROPS_TABLE, "group.id", "g",
     "config: p.group.id: ferry sets it: a table joins no consumer group: it assigns itself its "
     "partitions (k.yaml)"},
};

static void test_owned_kafka_properties(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(owned_cases) / sizeof(owned_cases[0]); i++) {
        struct ferry_config *cfg = ferry_config_load_string("", "k.yaml");
        struct ferry_cfg_kv kv = {(char *)owned_cases[i].key, (char *)owned_cases[i].value};
        struct ferry_cfg_map props = {&kv, 1};

        ferry_kafka_check_overrides(cfg, owned_cases[i].of, &props, "p");
        if (!owned_cases[i].error && ferry_config_error_count(cfg))
            fail_msg("case %zu: %s", i, ferry_config_error_at(cfg, 0));
        if (owned_cases[i].error) {
            assert_int_equal(ferry_config_error_count(cfg), 1);
            assert_string_equal(ferry_config_error_at(cfg, 0), owned_cases[i].error);
        }
        ferry_config_destroy(cfg);
    }
}

/* Errors past the first 64 are counted in one last message, never dropped silently. */
static void test_errors_past_the_cap(void **state)
{
    struct ferry_buf text;
    struct ferry_config *cfg;

    (void)state;
    ferry_buf_init(&text, 4096);
    ferry_buf_adds(&text, "server:\n");
    for (int i = 0; i < 70; i++)
        ferry_buf_addf(&text, "  unknown%d: 1\n", i);
    cfg = ferry_config_load_string(text.data, "many.yaml");
    assert_int_equal(ferry_config_error_count(cfg), 65);
    assert_string_equal(ferry_config_error_at(cfg, 64), "config: 6 more error(s) not shown");
    assert_null(ferry_config_error_at(cfg, 65));
    ferry_config_destroy(cfg);
    ferry_buf_release(&text);
}

/* A list of strings or a mapping holds at most 4096 entries, as a list of sections does: a
 * 4 MiB file of one-word entries took minutes to load, each error or entry costing time in
 * proportion to the ones before it. */
static void test_entries_past_the_cap(void **state)
{
    static const struct {
        const char *head, *before, *after, *message; /* each entry: before, a number, after */
    } cases[] = {
        {"kafka:\n  dev:\n    topics:\n", "      - t", ":1\n",
         "config: kafka.dev.topics: at most 4096 entries are allowed (big.yaml:3)"},
        {"kafka:\n  properties:\n", "    p", ": x\n",
         "config: kafka.properties: at most 4096 entries are allowed (big.yaml:2)"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int n = 4096; n <= 4097; n++) {
            struct ferry_buf text;
            struct ferry_config *cfg;
            ferry_buf_init(&text, 1024 * 1024);
            ferry_buf_adds(&text, cases[i].head);
            for (int j = 0; j < n; j++)
                ferry_buf_addf(&text, "%s%d%s", cases[i].before, j, cases[i].after);
            cfg = ferry_config_load_string(text.data, "big.yaml");
            if (n == 4097) {
                assert_int_equal(ferry_config_error_count(cfg), 1);
                assert_string_equal(ferry_config_error_at(cfg, 0), cases[i].message);
            } else {
                assert_int_equal(ferry_config_error_count(cfg), 0);
            }
            ferry_config_destroy(cfg);
            ferry_buf_release(&text);
        }
    }
}

/* Aliases may repeat what an anchor holds, up to a million values in all: ten levels of ten
 * aliases each are 10^10, and took gigabytes before the cap. */
static void test_alias_expansion_capped(void **state)
{
    struct ferry_buf text;
    struct ferry_config *cfg;

    (void)state;
    cfg = ferry_config_load_string("routes:\n"
                                   "  - name: a\n    topics: &t [a, b]\n"
                                   "    target: &target {url: 'http://127.0.0.1:1/'}\n"
                                   "  - name: b\n    topics: *t\n    target: *target\n",
                                   "a.yaml");
    assert_int_equal(ferry_config_error_count(cfg), 0); /* aliases as such are fine */
    ferry_config_destroy(cfg);
    ferry_buf_init(&text, 64 * 1024);
    ferry_buf_adds(&text, "x0: &x0 [a, b, c, d, e, f, g, h, i, j]\n");
    for (int i = 1; i < 10; i++)
        ferry_buf_addf(&text,
                       "x%d: &x%d [*x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d]\n",
                       i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    cfg = ferry_config_load_string(text.data, "bomb.yaml");
    assert_int_equal(ferry_config_error_count(cfg), 1);
    assert_string_equal(ferry_config_error_at(cfg, 0),
                        "config: the file holds more than 1000000 values, counting those an alias "
                        "(*name) repeats each time: write them out (bomb.yaml:1)");
    ferry_config_destroy(cfg);
    ferry_buf_release(&text);
}

/* Lists and mappings nested deeper than any setting are refused before libyaml loads them:
 * loading 100,000 levels took minutes (quadratic), with the stop signals blocked. */
static void test_nesting_too_deep(void **state)
{
    static const struct {
        int levels; /* of "[" after "x: ", inside the top-level mapping */
        const char *message;
    } cases[] = {
        {31, "config: x: unknown key (deep.yaml:3)"},
        {32, "config: lists and mappings nested more than 32 levels deep, deeper than any setting "
             "(deep.yaml:3)"},
        {100000, "config: lists and mappings nested more than 32 levels deep, deeper than any "
                 "setting (deep.yaml:3)"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_buf text;
        struct ferry_config *cfg;

        ferry_buf_init(&text, 1024 * 1024);
        ferry_buf_adds(&text, "server: {threads: 2}\n\nx: ");
        for (int j = 0; j < cases[i].levels; j++)
            ferry_buf_addc(&text, '[');
        for (int j = 0; j < cases[i].levels; j++)
            ferry_buf_addc(&text, ']');
        ferry_buf_addc(&text, '\n');
        cfg = ferry_config_load_string(text.data, "deep.yaml");
        assert_int_equal(ferry_config_error_count(cfg), 1);
        assert_string_equal(ferry_config_error_at(cfg, 0), cases[i].message);
        ferry_config_destroy(cfg);
        ferry_buf_release(&text);
    }
}

/* A value that outgrows its buffer says how long it may be. */
static void test_env_too_long(void **state)
{
    struct ferry_buf b;
    char err[128] = "stale";

    (void)state;
    setenv("FERRY_T_LONG", "0123456789", 1);
    ferry_buf_init(&b, 8);
    assert_int_equal(ferry_config_expand("${env:FERRY_T_LONG}", &b, err, sizeof(err)), -1);
    assert_string_equal(err, "value is longer than 8 bytes");
    ferry_buf_release(&b);
}

static void test_env(void **state)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: an error */
    } cases[] = {
        {"plain", "plain"},
        {"${env:FERRY_T_A}", "alpha"},
        {"x-${env:FERRY_T_A}-${env:FERRY_T_B}-y", "x-alpha-beta-y"},
        {"${env:FERRY_T_UNSET:-fallback}", "fallback"},
        {"${env:FERRY_T_A:-fallback}", "alpha"},
        {"${env:FERRY_T_UNSET:-}", ""},
        {"${topic}/${env:FERRY_T_A}", "${topic}/alpha"},
        {"${env:FERRY_T_UNSET}", NULL},
        {"${env:}", NULL},
        {"${env:FERRY_T_A", NULL},
        /* a fallback ends at the first '}': a reference in it would come out cut */
        {"${env:FERRY_T_UNSET:-${env:FERRY_T_A}}", NULL},
        {"${env:FERRY_T_A:-${file:/x}}", NULL},
    };
    (void)state;
    setenv("FERRY_T_A", "alpha", 1);
    setenv("FERRY_T_B", "beta", 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_buf b;
        char err[128] = "";
        int rc;
        ferry_buf_init(&b, 1024);
        rc = ferry_config_expand(cases[i].in, &b, err, sizeof(err));
        if (cases[i].out) {
            assert_int_equal(rc, 0);
            assert_string_equal(b.data ? b.data : "", cases[i].out);
        } else {
            assert_int_equal(rc, -1);
            assert_true(err[0] != '\0');
        }
        ferry_buf_release(&b);
    }
}

/* Writes in to out with its first "PATH" replaced by path. */
static void fill_path(char *out, size_t size, const char *in, const char *path)
{
    const char *at = strstr(in, "PATH");

    if (at)
        snprintf(out, size, "%.*s%s%s", (int)(at - in), in, path, at + 4);
    else
        snprintf(out, size, "%s", in);
}

/* ${file:PATH} gives the file's contents without trailing white space. */
static void test_file(void **state)
{
    static const struct {
        const char *content; /* NULL: no such file */
        const char *in;      /* PATH stands for the file's path */
        const char *out;     /* NULL: an error */
    } cases[] = {
        {"peer-key-0123456789abc\n", "${file:PATH}", "peer-key-0123456789abc"},
        {"s3cret \r\n\n", "x-${file:PATH}-y", "x-s3cret-y"},
        {"", "${file:PATH}", ""},
        {"a b\nc", "${file:PATH}", "a b\nc"},
        {NULL, "${file:PATH}", NULL},
        {"x", "${file:PATH", NULL},
        {"x", "${file:}", NULL},
        {"x", "${file:/dev/null}", NULL}, /* not a regular file */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[] = "/tmp/ferry-test-config-XXXXXX", in[128], err[256] = "";
        struct ferry_buf b;
        int fd = mkstemp(path), rc;

        assert_true(fd >= 0);
        if (cases[i].content)
            assert_int_equal(write(fd, cases[i].content, strlen(cases[i].content)),
                             (ssize_t)strlen(cases[i].content));
        close(fd);
        if (!cases[i].content)
            unlink(path);
        fill_path(in, sizeof(in), cases[i].in, path);
        ferry_buf_init(&b, 1024);
        rc = ferry_config_expand(in, &b, err, sizeof(err));
        if (cases[i].out) {
            if (rc)
                fail_msg("case %zu: %s", i, err);
            assert_string_equal(b.data ? b.data : "", cases[i].out);
        } else {
            assert_int_equal(rc, -1);
            assert_true(err[0] != '\0');
        }
        ferry_buf_release(&b);
        unlink(path);
    }
}

/* A ${file:...} holding a NUL byte is refused as a NUL byte written in the file is. */
static void test_file_with_nul(void **state)
{
    char path[] = "/tmp/ferry-test-config-XXXXXX", text[256];
    int fd = mkstemp(path);
    struct ferry_config *cfg;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "peer\0key", 8), 8);
    close(fd);
    snprintf(text, sizeof(text), "server:\n  listen: ${file:%s}\n", path);
    cfg = ferry_config_load_string(text, "nul.yaml");
    assert_int_equal(ferry_config_error_count(cfg), 1);
    assert_string_equal(ferry_config_error_at(cfg, 0),
                        "config: server.listen: holds a NUL byte once ${...} is substituted "
                        "(nul.yaml:2)");
    ferry_config_destroy(cfg);
    unlink(path);
}

static void test_reference_mentions_every_core_key(void **state)
{
    struct ferry_buf out;
    (void)state;
    ferry_buf_init(&out, 1 << 20);
    assert_int_equal(ferry_config_reference(&out), 0);
    assert_non_null(strstr(out.data, "## `kafka.dev`"));
    assert_non_null(strstr(out.data, "| `shutdown_timeout` | duration, 0ms to 1h | `30s` |"));
    assert_non_null(strstr(out.data, "`logfmt`, `json`"));
    ferry_buf_release(&out);
    ferry_buf_init(&out, 1024); /* too small: a cut reference is an error, not a short page */
    assert_int_equal(ferry_config_reference(&out), -1);
    ferry_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_empty_list_items),
        cmocka_unit_test(test_no_value_means_absent),
        cmocka_unit_test(test_advertised_url),
        cmocka_unit_test(test_longest_names),
        cmocka_unit_test(test_all_errors_reported),
        cmocka_unit_test(test_kafka_properties_reported_with_the_rest),
        cmocka_unit_test(test_owned_kafka_properties),
        cmocka_unit_test(test_lines_of_many_keys),
        cmocka_unit_test(test_errors_past_the_cap),
        cmocka_unit_test(test_entries_past_the_cap),
        cmocka_unit_test(test_alias_expansion_capped),
        cmocka_unit_test(test_nesting_too_deep),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_too_long),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_with_nul),
        cmocka_unit_test(test_reference_mentions_every_core_key),
        cmocka_unit_test(test_route_io_threads),
        cmocka_unit_test(test_route_target_url),
        cmocka_unit_test(test_scalar_is_a_list_of_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
