"""`ferry check -c FILE`: good configs pass, each broken one is named by key path and line.

In the broken configs below, the line ending in `# <-` is where the error must be reported.
"""
import os
import re
import textwrap

import pytest

from ferrytest import run_cli

GOOD = {
    "full": """\
        kafka:
          brokers: 127.0.0.1:9092
          properties: {client.id: e2e, linger.ms: "5"}
          dev: {brokers: 1, topics: ["orders:8"]}
        server:
          listen: 127.0.0.1:8080
          shutdown_timeout: 10s
        log: {level: info, format: logfmt}
        """,
    "block-style": """\
        kafka:
          brokers: 127.0.0.1:9092,127.0.0.1:9093
          properties:
            client.id: e2e
            compression.type: lz4
        server:
          listen: 127.0.0.1:8080
          shutdown_timeout: 250ms
        log:
          level: debug
          format: json
        """,
    "embedded-broker": """\
        kafka:
          dev: {brokers: 3, topics: ["orders:8", "payments:2"]}
        server:
          listen: 127.0.0.1:8080
          shutdown_timeout: 2m
        log: {level: warn, format: logfmt}
        """,
    "env-substitution": """\
        kafka:
          brokers: ${env:FERRY_E2E_BROKERS}
        server:
          listen: "${env:FERRY_E2E_LISTEN}"
        log: {level: error}
        """,
    # what a route's delivery rests on means nothing to a table's consumer
    "table-consumer-properties": """\
        tables:
          - name: t
            topic: prices
            kafka: {enable.auto.commit: "false", enable.auto.offset.store: "true"}
        log: {level: info}
        """,
}

GOOD_ENV = {"FERRY_E2E_BROKERS": "127.0.0.1:9092", "FERRY_E2E_LISTEN": "127.0.0.1:8081"}

# What each good config's summary must say, as (section, regex of its value). The values come
# from the file (after ${env:...} substitution), so a summary of defaults or of the raw text
# does not pass. "full" names both brokers and an embedded cluster: its kafka line is not
# checked.
GOOD_SUMMARY = {
    "full": [("server", r"http://127\.0\.0\.1:8080"), ("log", r"info, logfmt")],
    "block-style": [("kafka", r"127\.0\.0\.1:9092,127\.0\.0\.1:9093"),
                    ("server", r"http://127\.0\.0\.1:8080"), ("log", r"debug, json")],
    "embedded-broker": [("kafka", r"embedded dev cluster, 3 broker\(s\).*"),
                        ("server", r"http://127\.0\.0\.1:8080"), ("log", r"warn, logfmt")],
    "env-substitution": [("kafka", r"127\.0\.0\.1:9092"), ("server", r"http://127\.0\.0\.1:8081"),
                         ("log", r"error, \w+")],
    "table-consumer-properties": [("log", r"info, \w+")],
}


def write(tmp_path, text, name="ferry.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_config(ferry_bin, tmp_path, name):
    path = write(tmp_path, GOOD[name])
    res = run_cli(ferry_bin, ["check", "-c", path], env=GOOD_ENV)
    assert res.returncode == 0, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.stdout.strip(), "no summary on stdout"
    assert len(res.stdout.splitlines()) < 60, "the summary is not short"
    assert "config:" not in res.stderr, res.stderr
    lines = res.stdout.splitlines()
    assert re.match(rf"^{re.escape(str(path))}: valid\b", lines[0]), res.stdout
    for section, value in GOOD_SUMMARY[name]:
        rx = re.compile(rf"^\s+{section}:\s+{value}$")
        assert any(rx.match(l) for l in lines), f"no '{section}: {value}' line in:\n{res.stdout}"


# (id, config text, key path regex (whole path), regex searched in the message, substring the
# error line must contain)
BROKEN = [
    ("unknown-key-suggests", """\
        kafka:
          brokerz: 127.0.0.1:9092   # <-
        """, r"kafka\.brokerz", r"unknown key, did you mean 'brokers'\?", None),
    ("unknown-section-suggests", """\
        kafka:
          brokers: 127.0.0.1:9092
        servr:                      # <-
          listen: 127.0.0.1:8080
        """, r"servr", r"unknown key, did you mean 'server'\?", None),
    ("unknown-log-key-suggests", """\
        log:
          levle: info               # <-
        """, r"log\.levle", r"unknown key, did you mean 'level'\?", None),
    ("unknown-key-far-from-any", """\
        server:
          listen: 127.0.0.1:8080
        wibblewobble: 1             # <-
        """, r"wibblewobble", r"unknown key", None),
    ("retry-topics-need-attempts", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc/x"}
            retry:
              max_attempts: 0
              topics:            # <-
                - {delay: 30s}
        """, r"routes\[0\]\.retry\.topics", r"needs retry\.max_attempts above 0", None),
    ("retry-topic-is-a-source-topic", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc/x"}
            retry:
              topics:
                - {delay: 30s, topic: t}    # <-
        """, r"routes\[0\]\.retry\.topics\[0\]\.topic", r"'t' is also one of the route's topics",
     None),
    ("retry-topic-twice-in-a-route", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc/x"}
            retry:
              topics:
                - {delay: 30s, topic: again}
                - {delay: 5m, topic: again}    # <-
        """, r"routes\[0\]\.retry\.topics\[1\]\.topic",
     r"'again' is also retry\.topics\[0\]: a record there would be parked there again", None),
    ("retry-topic-of-two-routes", """\
        routes:
          - name: a
            topics: [t]
            target: {url: "http://svc/x"}
            retry:
              topics:
                - {delay: 30s, topic: shared}
          - name: b
            topics: [u]
            target: {url: "http://svc/y"}
            retry:
              topics:
                - {delay: 30s, topic: shared}    # <-
        """, r"routes\[1\]\.retry\.topics\[0\]\.topic",
     r"'shared' is also a retry topic of route 'a'", None),
    ("retry-topics-key-order-cooperative-assignor", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc/x"}
            ordering: key
            retry:
              topics:
                - {delay: 30s}
            kafka:
              partition.assignment.strategy: cooperative-sticky   # <-
        """, r"routes\[0\]\.kafka\.partition\.assignment\.strategy",
     r"needs an eager assignor \(range, its default, or roundrobin\)", None),
    # A record must not choose where its request goes: ${...} in the scheme, host or port.
    ("url-variable-in-host", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://${key}/orders"}   # <-
        """, r"routes\[0\]\.target\.url", r"'\$\{key\}' is in the URL's scheme, host or port", None),
    ("url-variable-in-port", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc:${header.port}/orders/${key}"}   # <-
        """, r"routes\[0\]\.target\.url", r"'\$\{header\.port\}' is in the URL's scheme", None),
    ("url-variable-in-scheme", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "${value.scheme}://svc/x"}   # <-
        """, r"routes\[0\]\.target\.url", r"'\$\{value\.scheme\}' is in the URL's scheme", None),
    ("url-variable-right-after-host", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc${key}"}   # <-
        """, r"routes\[0\]\.target\.url", r"records cannot choose where requests go", None),
    # A topic regex that does not compile would fail the subscription at start.
    ("route-topic-regex-does-not-compile", """\
        routes:
          - name: a
            topics: [orders, "^(bad"]   # <-
            target: {url: "http://127.0.0.1:1/x"}
        """, r"routes\[0\]\.topics\[1\]", r"'\^\(bad' is not a valid regular expression", None),
    # A target URL libcurl would take with another scheme, or not at all: refused at load.
    ("url-not-a-url", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "not a url"}   # <-
        """, r"routes\[0\]\.target\.url", r"expected an http:// or https:// URL, got 'not a url'$",
     None),
    ("url-ftp-scheme", """\
        routes:
          - name: r
            topics: [t]
            target:
              url: "ftp://127.0.0.1:1/${key}"   # <-
        """, r"routes\[0\]\.target\.url", r"expected an http:// or https:// URL", None),
    ("url-file-scheme", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "file:///tmp/x"}   # <-
        """, r"routes\[0\]\.target\.url", r"expected an http:// or https:// URL", None),
    ("url-without-host", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http:///orders/${key}"}   # <-
        """, r"routes\[0\]\.target\.url", r"expected a host after 'http://'", None),
    # ferry run refuses a peer key that is not one of the listener's keys: so does check.
    ("peer-key-not-an-api-key", """\
        cluster:
          peer_key: wrong-key-0123456789abc   # <-
        ingest:
          auth:
            keys:
              - {name: peer, key: "peer-key-0123456789abc", tables: ["^.*"]}
        tables:
          - {name: t, topic: a, placement: partitioned}
        """, r"cluster\.peer_key", r"^not one of ingest\.auth\.keys$", None),
    ("peer-key-missing", """\
        ingest:
          auth:
            keys:
              - {name: peer, key: "peer-key-0123456789abc", tables: ["^.*"]}
        tables:
          - {name: t, topic: a, placement: partitioned}   # <-
        """, r"tables\[0\]\.placement", r"needs cluster\.peer_key", None),
    ("peer-key-file-missing", """\
        cluster:
          peer_key: ${file:/nonexistent/ferry-e2e-peer.key}   # <-
        """, r"cluster\.peer_key", r"cannot open it: No such file or directory",
     "/nonexistent/ferry-e2e-peer.key"),
    ("listen-not-host-port", """\
        server:
          listen: nope              # <-
        """, r"server\.listen", r"expected host:port\b.*, got 'nope'$", None),
    ("listen-port-out-of-range", """\
        server:
          listen: 127.0.0.1:99999   # <-
        """, r"server\.listen", r"99999", None),
    ("instance-not-a-kafka-name", """\
        server:
          instance: pod 0           # <-
        """, r"server\.instance", r"'pod 0' is not a name Kafka accepts in group\.instance\.id", None),
    ("bad-duration", """\
        server:
          listen: 127.0.0.1:8080
          shutdown_timeout: tenseconds   # <-
        """, r"server\.shutdown_timeout", r"'tenseconds'", None),
    ("bad-duration-unit", """\
        server:
          shutdown_timeout: 10 parsecs   # <-
        """, r"server\.shutdown_timeout", r"'10 parsecs'", None),
    ("integer-in-hex", """\
        server:
          threads: 0x10             # <-
        """, r"server\.threads", r"expected an integer, got '0x10'$", None),
    ("max-buffered-records-zero", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc/x"}
            limits:
              max_buffered_records: 0   # <-
        """, r"routes\[0\]\.limits\.max_buffered_records", r"expected auto or 1 to 10000000, got '0'$",
     None),
    ("max-buffered-records-word", """\
        routes:
          - name: r
            topics: [t]
            target: {url: "http://svc/x"}
            limits: {max_buffered_records: lots}   # <-
        """, r"routes\[0\]\.limits\.max_buffered_records", r"got 'lots'$", None),
    ("size-with-exponent", """\
        ingest:
          limits:
            max_body: 1e6           # <-
        """, r"ingest\.limits\.max_body", r"got '1e6'$", None),
    ("bad-log-level", """\
        log:
          level: loud               # <-
          format: logfmt
        """, r"log\.level", r"'loud'", None),
    ("bad-log-format", """\
        log:
          level: info
          format: xml               # <-
        """, r"log\.format", r"'xml'", None),
    ("section-not-a-mapping", """\
        kafka:
          brokers: 127.0.0.1:9092
        server: nope                # <-
        """, r"server", r"", None),
    ("bad-kafka-property-name", """\
        kafka:
          brokers: 127.0.0.1:9092
          properties:
            client.id: ok
            no.such.property: "1"   # <-
        """, r"kafka\.properties[\w.\[\]'\"]*", r"", "no.such.property"),
    ("bad-kafka-property-value", """\
        kafka:
          brokers: 127.0.0.1:9092
          properties:
            compression.type: zip   # <-
        """, r"kafka\.properties[\w.\[\]'\"]*", r"", "compression.type"),
    ("unset-env-variable", """\
        kafka:
          brokers: 127.0.0.1:9092
        server:
          listen: ${env:FERRY_E2E_SURELY_UNSET}   # <-
        """, r"server\.listen", r"", "FERRY_E2E_SURELY_UNSET"),
    ("dev-brokers-not-integer", """\
        kafka:
          dev:
            brokers: two            # <-
        """, r"kafka\.dev\.brokers", r"'two'", None),
    ("dev-brokers-zero", """\
        kafka:
          dev:
            brokers: 0              # <-
        """, r"kafka\.dev\.brokers", r"", None),
    ("dev-topic-bad-partitions", """\
        kafka:
          dev:
            topics:
              - orders:8
              - payments:eight      # <-
        """, r"kafka\.dev\.topics(\[1\])?", r"", "payments:eight"),
    ("dev-topic-name-too-long", """\
        kafka:
          dev:
            topics:
              - orders:8
              - """ + "t" * 250 + """:1   # <-
        """, r"kafka\.dev\.topics\[1\]", r"250 characters long, Kafka allows at most 249", None),
    ("dev-topic-name-bad-character", """\
        kafka:
          dev:
            topics: ["orders:8", "orders/eu:2"]   # <-
        """, r"kafka\.dev\.topics\[1\]", r"'orders/eu' holds '/'", None),
    ("dev-topic-name-dots", """\
        kafka:
          dev:
            topics:
              - ..:1                # <-
        """, r"kafka\.dev\.topics\[0\]", r"'\.\.' is not allowed as a topic name", None),
    # more webhooks than the server has paths for: refused by check, not at start
    ("too-many-webhooks", """\
        ingest:
          webhooks:   # <-
            - {name: w0, path: /hooks/w0, topic: t}
            - {name: w1, path: /hooks/w1, topic: t}
            - {name: w2, path: /hooks/w2, topic: t}
            - {name: w3, path: /hooks/w3, topic: t}
            - {name: w4, path: /hooks/w4, topic: t}
            - {name: w5, path: /hooks/w5, topic: t}
            - {name: w6, path: /hooks/w6, topic: t}
            - {name: w7, path: /hooks/w7, topic: t}
            - {name: w8, path: /hooks/w8, topic: t}
            - {name: w9, path: /hooks/w9, topic: t}
            - {name: w10, path: /hooks/w10, topic: t}
            - {name: w11, path: /hooks/w11, topic: t}
            - {name: w12, path: /hooks/w12, topic: t}
            - {name: w13, path: /hooks/w13, topic: t}
            - {name: w14, path: /hooks/w14, topic: t}
            - {name: w15, path: /hooks/w15, topic: t}
            - {name: w16, path: /hooks/w16, topic: t}
            - {name: w17, path: /hooks/w17, topic: t}
            - {name: w18, path: /hooks/w18, topic: t}
            - {name: w19, path: /hooks/w19, topic: t}
            - {name: w20, path: /hooks/w20, topic: t}
            - {name: w21, path: /hooks/w21, topic: t}
            - {name: w22, path: /hooks/w22, topic: t}
            - {name: w23, path: /hooks/w23, topic: t}
            - {name: w24, path: /hooks/w24, topic: t}
            - {name: w25, path: /hooks/w25, topic: t}
            - {name: w26, path: /hooks/w26, topic: t}
            - {name: w27, path: /hooks/w27, topic: t}
            - {name: w28, path: /hooks/w28, topic: t}
            - {name: w29, path: /hooks/w29, topic: t}
            - {name: w30, path: /hooks/w30, topic: t}
            - {name: w31, path: /hooks/w31, topic: t}
            - {name: w32, path: /hooks/w32, topic: t}
            - {name: w33, path: /hooks/w33, topic: t}
            - {name: w34, path: /hooks/w34, topic: t}
            - {name: w35, path: /hooks/w35, topic: t}
            - {name: w36, path: /hooks/w36, topic: t}
            - {name: w37, path: /hooks/w37, topic: t}
            - {name: w38, path: /hooks/w38, topic: t}
            - {name: w39, path: /hooks/w39, topic: t}
            - {name: w40, path: /hooks/w40, topic: t}
            - {name: w41, path: /hooks/w41, topic: t}
            - {name: w42, path: /hooks/w42, topic: t}
            - {name: w43, path: /hooks/w43, topic: t}
            - {name: w44, path: /hooks/w44, topic: t}
            - {name: w45, path: /hooks/w45, topic: t}
            - {name: w46, path: /hooks/w46, topic: t}
            - {name: w47, path: /hooks/w47, topic: t}
            - {name: w48, path: /hooks/w48, topic: t}
        """, r"ingest\.webhooks", r"at most 48 webhooks \(each is a path of the server\); got 49", None),
    # two routes in one group split the partitions: each target got part of the records
    ("two-routes-share-a-group", """\
        routes:
          - {name: a, topics: orders, target: {url: "http://svc/x"}}
          - {name: b, topics: orders, group: ferry-a, target: {url: "http://svc/y"}}   # <-
        """, r"routes\[1\]\.group", r"consumer group 'ferry-a' is also route 'a''s", None),
    # properties that at-least-once delivery and acknowledged ingest rest on
    ("route-stores-offsets-itself", """\
        routes:
          - name: a
            topics: orders
            target: {url: "http://svc/x"}
            kafka:
              enable.auto.offset.store: "true"   # <-
        """, r"routes\[0\]\.kafka\.enable\.auto\.offset\.store", r"ferry sets it to false",
     None),
    ("producer-acks-one", """\
        kafka:
          properties:
            acks: "1"   # <-
        """, r"kafka\.properties\.acks", r"ferry sets it to all", None),
    ("route-group-id-property", """\
        routes:
          - name: a
            topics: orders
            target: {url: "http://svc/x"}
            kafka:
              group.id: mine   # <-
        """, r"routes\[0\]\.kafka\.group\.id", r"a route's consumer group is its `group`", None),
    # a table's consumer commits nothing and joins no group: ferry sets both after its map
    ("table-commits-to-kafka", """\
        tables:
          - name: t
            topic: prices
            kafka:
              enable.auto.commit: "true"   # <-
        """, r"tables\[0\]\.kafka\.enable\.auto\.commit", r"a table keeps its offsets in its store",
     None),
    ("table-group-id-property", """\
        tables:
          - name: t
            topic: prices
            kafka:
              group.id: mine   # <-
        """, r"tables\[0\]\.kafka\.group\.id", r"a table joins no consumer group", None),
    # a content type went to libcurl as a header line as is: CR LF injected a header
    ("route-content-type-injects", """\
        routes:
          - name: a
            topics: orders
            target: {url: "http://svc/x"}
            body:
              content_type: "text/plain\\r\\nX-Injected: 1"   # <-
        """, r"routes\[0\]\.body\.content_type", r"holds a control byte", None),
    ("table-content-type-injects", """\
        tables:
          - name: t
            topic: prices
            content_type: "text/plain\\r\\nX-Injected: 1"   # <-
        """, r"tables\[0\]\.content_type", r"holds a control byte", None),
    # one store directory, spelt twice: the second table never became ready
    ("tables-share-a-store", """\
        server: {data_dir: /tmp/ferry-data}
        tables:
          - {name: b, topic: prices}
          - {name: c, topic: prices, path: "/tmp//ferry-data/./tables/b/"}   # <-
        """, r"tables\[1\]\.path", r"table 'b' stores into the same directory, /tmp/ferry-data/tables/b",
     None),
    # URLs libcurl refuses failed every request at run time, retried for ever
    ("url-port-out-of-range", """\
        routes:
          - {name: a, topics: t, target: {url: "http://127.0.0.1:99999/a"}}   # <-
        """, r"routes\[0\]\.target\.url", r"is not a URL: Port number", None),
    ("url-space-in-its-text", """\
        routes:
          - {name: a, topics: t, target: {url: "http://h/a b/${key}"}}   # <-
        """, r"routes\[0\]\.target\.url", r"is not a URL", None),
    ("grpc-url-port-out-of-range", """\
        routes:
          - {name: a, topics: t, target: {grpc: {url: "http://h:99999", method: a.B/C}}}   # <-
        """, r"routes\[0\]\.target\.grpc\.url", r"is not a URL: Port number", None),
    # the other instances of a partitioned table could send it no read
    ("advertised-url-port-out-of-range", """\
        server:
          advertised_url: "http://10.0.0.5:99999"   # <-
        """, r"server\.advertised_url", r"is not a URL: Port number", None),
    ("advertised-url-longer-than-a-heartbeat-carries", """\
        server:
          advertised_url: "http://10.0.0.5:8080/pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"   # <-
        tables:
          - {name: t, topic: a, placement: partitioned}
        """, r"server\.advertised_url", r"longer than 1024 bytes, the most a heartbeat carries",
     None),
    ("smtp-url-port-out-of-range", """\
        routes:
          - name: a
            topics: t
            target:
              smtp: {url: "smtp://h:99999", from: a@b.c, to: [x@y.z], subject: s, text: t}   # <-
        """, r"routes\[0\]\.target\.smtp\.url", r"is not a URL: Port number", None),
    # a target's TLS files were read only by libcurl, at every request
    ("target-tls-file-missing", """\
        routes:
          - name: a
            topics: t
            target:
              url: "https://h/x"
              tls: {ca_file: /nonexistent/ca.pem}   # <-
        """, r"routes\[0\]\.target\.tls\.ca_file", r"cannot open '/nonexistent/ca.pem'", None),
    ("target-tls-cert-without-key", """\
        routes:
          - name: a
            topics: t
            target:
              url: "https://h/x"
              tls: {cert_file: /etc/passwd}   # <-
        """, r"routes\[0\]\.target\.tls\.key_file", r"mutual TLS needs both", None),
]


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("config: ")]


def marked_line(text):
    lines = textwrap.dedent(text).splitlines()
    (idx,) = [i for i, l in enumerate(lines) if l.rstrip().endswith("# <-")]
    return idx + 1


@pytest.mark.parametrize("case_id, text, key, msg, contains", BROKEN, ids=[c[0] for c in BROKEN])
def test_broken_config(ferry_bin, tmp_path, case_id, text, key, msg, contains):
    path = write(tmp_path, text)
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    line = marked_line(text)
    rx = re.compile(rf"^config: (?P<key>{key}): (?P<msg>.*) \((?P<file>[^()]+):(?P<line>\d+)\)$")
    errors = error_lines(res.stderr)
    matching = [m for m in map(rx.match, errors) if m and re.search(msg, m.group("msg"))]
    assert matching, (f"no error line matching {rx.pattern!r} with {msg!r} in the message; "
                      f"stderr:\n{res.stderr}")
    m = matching[0]
    assert m.group("file") == str(path), f"error names {m.group('file')!r}, not {path}"
    assert int(m.group("line")) == line, f"error names line {m.group('line')}, expected {line}:\n{m.group(0)}"
    if contains:
        assert contains in m.group(0), f"{contains!r} not in {m.group(0)!r}"


def test_contract_examples_verbatim_and_every_error_reported(ferry_bin, tmp_path):
    path = write(tmp_path, """\
        # two mistakes; both must be reported
        kafka:
          brokerz: 127.0.0.1:9092
        server:
          listen: nope
        """)
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    errors = error_lines(res.stderr)
    assert f"config: kafka.brokerz: unknown key, did you mean 'brokers'? ({path}:3)" in errors, res.stderr
    # The contract's example reads "expected host:port, got 'nope'"; a hint after host:port
    # (such as "like 127.0.0.1:8080") is allowed.
    listen_rx = re.compile(rf"^config: server\.listen: expected host:port\b.*, got 'nope' "
                           rf"\({re.escape(str(path))}:5\)$")
    assert any(listen_rx.match(e) for e in errors), res.stderr
    assert len(errors) == 2, res.stderr


SYNTAX_ERRORS = [
    ("tab-indent", "kafka:\n  brokers: 127.0.0.1:9092\nserver:\n\tlisten: 127.0.0.1:8080\n", 4),
    ("mapping-in-plain-scalar", "kafka:\n  brokers: 127.0.0.1:9092\nserver:\n  listen: a: b\n", 4),
]


@pytest.mark.parametrize("case_id, text, line", SYNTAX_ERRORS, ids=[c[0] for c in SYNTAX_ERRORS])
def test_yaml_syntax_error_names_file_and_line(ferry_bin, tmp_path, case_id, text, line):
    path = tmp_path / "ferry.yaml"
    path.write_text(text)
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert f"{path}:{line}" in res.stderr, res.stderr
    assert len(res.stderr.splitlines()) <= 3, f"a syntax error should be short:\n{res.stderr}"


def test_run_refuses_broken_config(ferry_bin, tmp_path):
    """`ferry run` validates like `check` does and does not start on a broken config."""
    path = write(tmp_path, """\
        kafka:
          brokerz: 127.0.0.1:9092
        """)
    res = run_cli(ferry_bin, ["run", "-c", path], timeout=15)
    assert res.returncode == 2, res
    assert f"config: kafka.brokerz: unknown key, did you mean 'brokers'? ({path}:2)" in res.stderr


def test_top_level_not_a_mapping_names_file_and_line(ferry_bin, tmp_path):
    """The top level has no key path to name: the message names the file and line instead."""
    path = write(tmp_path, "- a\n- b\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert error_lines(res.stderr) == [
        "config: expected a mapping of keys to values at the top of the file, got a list "
        f"({path}:1)"], res.stderr


def test_second_yaml_document_is_an_error(ferry_bin, tmp_path):
    """What follows a `---` would be ignored in silence (an unknown key there too): refused at
    the line where the second document starts."""
    path = write(tmp_path, """\
        server: {listen: 127.0.0.1:7001}
        ---
        bogus: 1
        """)
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert error_lines(res.stderr) == [
        "config: a second YAML document starts here: write one YAML document per file "
        f"({path}:2)"], res.stderr


def test_kafka_properties_reported_with_other_errors(ferry_bin, tmp_path):
    """librdkafka's verdict on kafka.properties comes in the same run as every other error, not
    only once the rest is fixed."""
    path = write(tmp_path, """\
        kafka:
          properties:
            fetch.wait.max.mz: 10
            linger.ms: abc
        server:
          threads: two
        """)
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    errors = error_lines(res.stderr)
    assert len(errors) == 3, res.stderr
    assert f"config: server.threads: expected an integer, got 'two' ({path}:6)" in errors, \
        res.stderr
    assert any(e.startswith("config: kafka.properties.fetch.wait.max.mz: ") and
               e.endswith(f"({path}:3)") for e in errors), res.stderr
    assert any(e.startswith("config: kafka.properties.linger.ms: ") and
               e.endswith(f"({path}:4)") for e in errors), res.stderr


def test_peer_key_from_a_file(ferry_bin, tmp_path):
    """cluster.peer_key: ${file:PATH} reads the key (without its final newline): a file with
    the right key passes check, one with another key does not."""
    peer = "peer-key-0123456789abc"
    key_file = tmp_path / "peer.key"
    config = f"""\
        cluster:
          peer_key: ${{file:{key_file}}}
        ingest:
          auth:
            keys:
              - {{name: peer, key: "{peer}", tables: ["^.*"]}}
        tables:
          - {{name: t, topic: a, placement: partitioned}}
        """
    path = write(tmp_path, config)
    key_file.write_text(peer + "\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 0, res.stderr
    key_file.write_text("another-key-0123456789\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert error_lines(res.stderr) == [
        f"config: cluster.peer_key: not one of ingest.auth.keys ({path}:2)"], res.stderr


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_config_that_is_not_a_regular_file(ferry_bin, tmp_path, kind):
    """A FIFO or a directory named as the config is refused at once (exit 2, one line naming it).
    A FIFO used to block `ferry check` in open(2) with its stop signals blocked, so neither
    Ctrl-C nor SIGTERM ended it."""
    path = tmp_path / "ferry.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    res = run_cli(ferry_bin, ["check", "-c", path], timeout=10)
    assert res.returncode == 2, res
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert lines == [f"ferry check: '{path}' is not a regular file of at most 4194304 bytes"], res


@pytest.mark.parametrize("key", ["server.tls.cert_file", "ingest.auth.keys[0].key_file"])
def test_a_fifo_named_as_a_file_to_read_is_refused(ferry_bin, tmp_path, key):
    """A FIFO named as a TLS certificate or an API key file is refused at once, naming it: it
    used to block `ferry check` (and `ferry run`) in open(2), beyond Ctrl-C and SIGTERM."""
    fifo = tmp_path / "named.pipe"
    os.mkfifo(fifo)
    pem = tmp_path / "ok.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    if key.startswith("server"):
        section = f"server:\n  tls:\n    cert_file: {fifo}\n    key_file: {pem}\n"
    else:
        section = (f"ingest:\n  auth:\n    keys:\n      - name: k\n        key_file: {fifo}\n"
                   "        topics: [a]\n")
    path = write(tmp_path, "kafka: {brokers: 127.0.0.1:9092}\n" + section)
    res = run_cli(ferry_bin, ["check", "-c", path], timeout=10)
    assert res.returncode == 2, res
    assert any(line.startswith(f"config: {key}: '{fifo}' is not a regular file")
               for line in error_lines(res.stderr)), res.stderr


def test_required_key_with_no_value_is_refused(ferry_bin, tmp_path):
    """`name: ` with nothing after it is no name: it used to pass `ferry check`, and `ferry run`
    then crashed on the route's NULL name."""
    path = write(tmp_path, 'routes: [{name: , topics: orders, target: {url: "http://h/x"}}]\n')
    for command in ("check", "run"):
        res = run_cli(ferry_bin, [command, "-c", path], timeout=15)
        assert res.returncode == 2, res
        assert f"config: routes[0].name: required, got no value ({path}:1)" in \
            error_lines(res.stderr), res.stderr


def test_deep_nesting_is_refused_at_once(ferry_bin, tmp_path):
    """200,000 nested lists took libyaml minutes to load (quadratic), with the stop signals
    blocked: they are refused from the first level past 32, naming the line."""
    path = tmp_path / "ferry.yaml"
    path.write_text("server: {threads: 2}\nx: " + "[" * 200000 + "]" * 200000 + "\n")
    res = run_cli(ferry_bin, ["check", "-c", path], timeout=10)
    assert res.returncode == 2, res
    assert error_lines(res.stderr) == [
        f"config: lists and mappings nested more than 32 levels deep, deeper than any setting "
        f"({path}:2)"], res.stderr


def test_empty_brokers_from_the_environment_is_refused(ferry_bin, tmp_path):
    """`${env:KAFKA:-}` with KAFKA unset used to run with no bootstrap servers at all."""
    path = write(tmp_path, "kafka:\n  brokers: ${env:FERRY_E2E_SURELY_UNSET_KAFKA:-}\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert error_lines(res.stderr) == [
        "config: kafka.brokers: expected host:port[,host:port...], got an empty value: leave the "
        f"key out for the embedded cluster ({path}:2)"], res.stderr


def test_unclosed_quote_names_the_line_it_opened_on(ferry_bin, tmp_path):
    """libyaml finds an unclosed quote at the end of the file: the message also names the line
    where it was opened."""
    path = tmp_path / "ferry.yaml"
    path.write_text('server:\n  listen: "127.0.0.1:8080\n  threads: 2\nlog:\n  level: info\n')
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert "while scanning a quoted scalar that started at line 2" in res.stderr, res.stderr
