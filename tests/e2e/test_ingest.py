"""Ingest, HTTP to Kafka: the REST Proxy v2 produce API, webhooks, API keys, TLS and metrics.

Requests are the ones Confluent's REST Proxy documentation shows (sent with curl where the docs
use curl); what they wrote is read back with a confluent-kafka consumer, and keyed records must
sit in the partition the Java client's murmur2 partitioner gives. Backpressure, broker outages
and shutdown are in test_ingest_backpressure.py; this file also holds helpers it shares.
"""
import base64
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from ferrytest import (REPO_ROOT, Proc, deep_merge, free_port, parse_prometheus, unique,
                       wait_until)

VND_JSON = "application/vnd.kafka.json.v2+json"
VND_BINARY = "application/vnd.kafka.binary.v2+json"
VND = "application/vnd.kafka.v2+json"
KEY_ORDERS = "orders-key-0123456789"
KEY_ADMIN = "admin-key-abcdefghijklmnop"


# --------------------------------------------------------------------------------------------
# Helpers (test_ingest_backpressure.py imports them)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's DefaultPartitioner), as an unsigned 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def ingest_cfg(ferry_config, *, topics=None, ack=None, webhooks=None, keys=None, limits=None,
               extra=None, delivery_timeout="3s"):
    """A ferry config on the session broker with an `ingest:` section built from the args."""
    ingest = {"delivery_timeout": delivery_timeout}
    if topics:
        ingest["rest_proxy"] = {"topics": list(topics)}
        if ack:
            ingest["rest_proxy"]["ack"] = ack
    if webhooks:
        ingest["webhooks"] = list(webhooks)
    if keys:
        ingest["auth"] = {"keys": list(keys)}
    if limits:
        ingest["limits"] = dict(limits)
    return ferry_config(deep_merge({"ingest": ingest}, extra or {}))


def post(f, path, body, content_type=VND_JSON, headers=None, timeout=15):
    """POSTs body (a dict or list is sent as JSON) to ferry; returns ferrytest.Response."""
    h = {"Content-Type": content_type} if content_type else {}
    h.update(headers or {})
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    return f.request("POST", path, body=body, headers=h, timeout=timeout)


def curl(url, *args, timeout=20):
    """Runs curl like a user would; returns (status, body bytes)."""
    res = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", *args, url],
                         capture_output=True, timeout=timeout)
    body, _, status = res.stdout.rpartition(b"\n")
    return int(status), body


def assert_error(resp, status, code, message_re=None):
    """An error answer in REST Proxy's shape: {"error_code": code, "message": "..."}."""
    assert resp.status == status, f"{resp.status} {resp.text!r}"
    body = resp.json()
    assert body.get("error_code") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if message_re:
        assert re.search(message_re, body["message"]), body["message"]
    return body


def assert_offsets(resp, n, status=200):
    """A produce answer: n offsets with no error, both schema ids null. Returns the offsets."""
    assert resp.status == status, f"{resp.status} {resp.text!r}"
    assert resp.headers.get("content-type", "").startswith(VND), resp.headers
    body = resp.json()
    assert body["key_schema_id"] is None and body["value_schema_id"] is None, body
    offsets = body["offsets"]
    assert len(offsets) == n, body
    for o in offsets:
        assert o["error_code"] is None and o["error"] is None, body
    return offsets


def by_position(records):
    return {(r.partition, r.offset): r for r in records}


def metric(f, name, **labels):
    m = parse_prometheus(f.get("/metrics").text)
    found = m.find(name, **labels)
    return sum(s.value for s in found)


# --------------------------------------------------------------------------------------------
# murmur2 itself (design.md's test vectors)


def test_murmur2_vectors():
    assert murmur2(b"kafka") == 0xD067CF64
    assert murmur2(b"giberish123456789") == 0x8F552B0C
    assert murmur2(b"") == 0x106E08D9


# --------------------------------------------------------------------------------------------
# The REST Proxy API


def test_documented_json_example_with_curl(run_ferry, ferry_config, kafka):
    topic = unique("jsontest")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    body = ('{"records":[{"key":"someKeyText","value":{"name":"testUser"}},'
            '{"key":"someKeyText","value":{"name":"testUser2"}}]}')
    status, out = curl(f"{f.url}/topics/{topic}", "-X", "POST", "-H", f"Content-Type: {VND_JSON}",
                       "-H", f"Accept: {VND}", "--data", body)
    assert status == 200, out
    answer = json.loads(out)
    offsets = answer["offsets"]
    assert [o["error_code"] for o in offsets] == [None, None] and answer["key_schema_id"] is None
    got = by_position(kafka.consume_n(topic, 2, use_group=False))
    # The json format stores keys and values as compact JSON text, as REST Proxy does.
    expected_partition = java_partition(b'"someKeyText"', kafka.partitions(topic))
    values = []
    for o in offsets:
        rec = got[(o["partition"], o["offset"])]
        assert rec.key == b'"someKeyText"'
        assert rec.partition == expected_partition
        values.append(json.loads(rec.value))
    assert values == [{"name": "testUser"}, {"name": "testUser2"}]
    assert offsets[1]["offset"] == offsets[0]["offset"] + 1


def test_documented_binary_example_with_curl(run_ferry, ferry_config, kafka):
    topic = unique("binarytest")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    body = ('{"records":[{"key":"a2V5","value":"Y29uZmx1ZW50"},'
            '{"value":"a2Fma2E=","partition":1},{"value":"bG9ncw=="}]}')
    status, out = curl(f"{f.url}/topics/{topic}", "-X", "POST", "-H",
                       f"Content-Type: {VND_BINARY}", "-H",
                       f"Accept: {VND}, application/vnd.kafka+json, application/json",
                       "--data", body)
    assert status == 200, out
    offsets = json.loads(out)["offsets"]
    got = by_position(kafka.consume_n(topic, 3, use_group=False))
    recs = [got[(o["partition"], o["offset"])] for o in offsets]
    assert [(r.key, r.value) for r in recs] == [(b"key", b"confluent"), (None, b"kafka"),
                                                (None, b"logs")]
    assert recs[0].partition == java_partition(b"key", kafka.partitions(topic))
    assert recs[1].partition == 1


def test_keys_land_where_the_java_client_puts_them(run_ferry, ferry_config, kafka):
    topic = unique("keys")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    keys = [f"user-{i}".encode() for i in range(40)] + [b"", b"kafka", "é".encode()]
    records = [{"key": base64.b64encode(k).decode(), "value": base64.b64encode(b"v").decode()}
               for k in keys]
    offsets = assert_offsets(post(f, f"/topics/{topic}", {"records": records}, VND_BINARY),
                             len(keys))
    n = kafka.partitions(topic)
    got = by_position(kafka.consume_n(topic, len(keys), use_group=False))
    for k, o in zip(keys, offsets):
        rec = got[(o["partition"], o["offset"])]
        assert rec.key == k
        assert rec.partition == java_partition(k, n), k


def test_bare_v2_content_type_is_binary(run_ferry, ferry_config, kafka):
    """REST Proxy's first v2 releases read application/vnd.kafka.v2+json as the binary format."""
    topic = unique("bare")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    offsets = assert_offsets(post(f, f"/topics/{topic}", {"records": [
        {"key": base64.b64encode(b"k1").decode(), "value": base64.b64encode(b"\x00raw").decode()}]},
        VND), 1)
    rec = kafka.consume_n(topic, 1, use_group=False)[0]
    assert (rec.partition, rec.offset) == (offsets[0]["partition"], offsets[0]["offset"])
    assert rec.key == b"k1" and rec.value == b"\x00raw"


def test_produce_to_one_partition(run_ferry, ferry_config, kafka):
    topic = unique("perpart")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    kafka.produce(topic, [b"create"])  # the topic exists, with 4 partitions
    records = {"records": [{"key": f"k{i}", "value": i} for i in range(10)]}
    offsets = assert_offsets(post(f, f"/topics/{topic}/partitions/2", records), 10)
    assert {o["partition"] for o in offsets} == {2}
    got = [r for r in kafka.consume_n(topic, 11, use_group=False) if r.value != b"create"]
    assert sorted(int(r.value) for r in got) == list(range(10))
    assert {r.partition for r in got} == {2}
    # A record may repeat the path's partition, not contradict it.
    assert_offsets(post(f, f"/topics/{topic}/partitions/3", {"records": [{"value": 1,
                                                                          "partition": 3}]}), 1)
    assert_error(post(f, f"/topics/{topic}/partitions/3", {"records": [{"value": 1,
                                                                        "partition": 1}]}),
                 422, 42202, r"records\[0\]\.partition")
    # A partition the topic does not have: the 404 still lists each record's error.
    body = assert_error(post(f, f"/topics/{topic}/partitions/9", records), 404, 40402,
                        "partition 9")
    assert [o["error_code"] for o in body["offsets"]] == [40402] * 10, body
    assert_error(post(f, f"/topics/{topic}", {"records": [{"value": 1, "partition": 4}]}), 404,
                 40402)
    # A record refused for its partition leaves nothing in the producer (librdkafka 2.0 kept
    # such records counted in its queue for good, and every stop then ran out its timeout and
    # exited 3).
    # Records for partitions that exist, in the same request, still go.
    mixed = post(f, f"/topics/{topic}", {"records": [{"value": 1, "partition": 7},
                                                     {"value": 2, "partition": 1},
                                                     {"value": 3}]})
    assert mixed.status == 200, mixed.text
    errors = [o["error_code"] for o in mixed.json()["offsets"]]
    assert errors == [40402, None, None], mixed.json()
    rc, _ = f.stop()  # 3 when the drain waits for records that never leave the queue
    assert rc == 0, f.stderr_text()[-2000:]


def test_record_headers_extension(run_ferry, ferry_config, kafka):
    topic = unique("headers")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    assert_offsets(post(f, f"/topics/{topic}", {"records": [
        {"value": {"a": 1}, "headers": [{"name": "trace", "value": "t-1"},
                                        {"name": "trace", "value": "t-2"},
                                        {"name": "empty", "value": None}]}]}), 1)
    assert_offsets(post(f, f"/topics/{topic}", {"records": [
        {"value": "AAE=", "headers": [{"name": "bin", "value": "AP8="}]}]}, VND_BINARY), 1)
    got = sorted(kafka.consume_n(topic, 2, use_group=False), key=lambda r: len(r.headers))
    assert got[0].value == b"\x00\x01" and got[0].headers == [("bin", b"\x00\xff")]
    assert got[1].value == b'{"a":1}'
    assert got[1].headers == [("trace", b"t-1"), ("trace", b"t-2"), ("empty", None)]


def test_long_request_with_headers_here_and_there_keeps_its_order(run_ferry, ferry_config, kafka):
    # Records without headers go to librdkafka in runs of at most 64, each record with headers
    # on its own: 150 records cross two runs' ends, and three carry headers.
    topic = unique("runs")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    kafka.produce(topic, [b"create"])
    with_headers = {0, 70, 149}
    records = [{"value": i, **({"headers": [{"name": "n", "value": str(i)}]}
                               if i in with_headers else {})} for i in range(150)]
    offsets = assert_offsets(post(f, f"/topics/{topic}/partitions/1", {"records": records}), 150)
    assert [o["partition"] for o in offsets] == [1] * 150
    assert [o["offset"] for o in offsets] == sorted(o["offset"] for o in offsets)
    got = [r for r in kafka.consume_n(topic, 151, use_group=False) if r.value != b"create"]
    got.sort(key=lambda r: r.offset)
    assert [int(r.value) for r in got] == list(range(150))
    assert [int(r.value) for r in got if r.headers] == sorted(with_headers)
    assert all(r.headers == [("n", r.value)] for r in got if r.headers)


def test_keyless_records_of_a_request_share_a_partition(run_ferry, ferry_config, kafka):
    # With the sticky partitioner off, librdkafka alone would spread keyless records at random.
    # ferry sends a request's first keyless record to the partitioner and the rest where the
    # partitioner last sent one (docs/ingest.md, "Partitions"); keyed and placed records keep
    # theirs.
    topic = unique("keyless")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic], extra={
        "kafka": {"properties": {"sticky.partitioning.linger.ms": 0}}}))
    kafka.produce(topic, [b"create"])  # the topic exists, with 4 partitions
    n = kafka.partitions(topic)
    # Until one keyless record's report came, each one asks the partitioner.
    assert_offsets(post(f, f"/topics/{topic}", {"records": [{"value": "first"}]}), 1)
    followed = set()
    for i in range(30):
        records = [{"value": j} for j in range(20)] + [{"key": "k", "value": "keyed"},
                                                       {"value": "placed", "partition": 3}]
        offsets = assert_offsets(post(f, f"/topics/{topic}", {"records": records}), 22)
        rest = {o["partition"] for o in offsets[1:20]}
        assert len(rest) == 1, offsets
        followed |= rest
        assert offsets[20]["partition"] == java_partition(b"k", n)
        assert offsets[21]["partition"] == 3
    # The followed partition moves with the partitioner's choices.
    assert len(followed) > 1, followed


def test_topic_patterns_and_json_scalars(run_ferry, ferry_config, kafka):
    prefix = unique("pat")
    f = run_ferry(ingest_cfg(ferry_config, topics=[f"^{prefix}\\.[a-z]+$"]))
    topic = f"{prefix}.eu"
    assert_offsets(post(f, f"/topics/{topic}", {"records": [
        {"value": 42}, {"value": "text"}, {"value": None}, {"value": [1, {"b": True}]}]},
        "application/json"), 4)
    got = kafka.consume_n(topic, 4, use_group=False)
    assert sorted((r.value or b"<null>") for r in got) == sorted(
        [b"42", b'"text"', b"<null>", b'[1,{"b":true}]'])
    assert_error(post(f, f"/topics/{prefix}.eu1", {"records": [{"value": 1}]}), 404, 40401)
    assert_error(post(f, f"/topics/{prefix}", {"records": [{"value": 1}]}), 404, 40401)


def test_ack_accepted_answers_202(run_ferry, ferry_config, kafka):
    topic = unique("accepted")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic], ack="accepted"))
    resp = post(f, f"/topics/{topic}", {"records": [{"value": 1}, {"value": 2, "partition": 1}]})
    assert resp.status == 202, resp.text
    offsets = resp.json()["offsets"]
    assert offsets == [{"partition": None, "offset": None, "error_code": None, "error": None},
                       {"partition": 1, "offset": None, "error_code": None, "error": None}]
    got = kafka.consume_n(topic, 2, use_group=False)
    assert sorted(r.value for r in got) == [b"1", b"2"]
    wait_until(lambda: metric(f, "ferry_ingest_records_total", endpoint="rest_proxy") == 2, 30,
               "both records counted as acknowledged")


# Every bad request gets its status, REST Proxy error code and a message naming what and where,
# and nothing is produced. (method, path suffix, content type, headers, body, status, code, re)
BAD = [
    ("POST", "", "text/plain", {}, "x", 415, 415, "Content-Type"),
    ("POST", "", VND_JSON.replace("json.", "avro."), {}, "{}", 415, 415, None),
    ("POST", "", VND_JSON, {"Accept": "text/html"}, '{"records":[{"value":1}]}', 406, 406, None),
    ("POST", "", VND_JSON, {}, '{"records":[{"value":1}', 422, 422, r"at byte \d+"),
    ("POST", "", VND_JSON, {}, "not json", 422, 422, "body"),
    ("POST", "", VND_JSON, {}, '{"records":[]}', 422, 422, "records: may not be empty"),
    ("POST", "", VND_JSON, {}, '{"records":[{"vaule":1}]}', 422, 422,
     r"records\[0\]\.vaule: unknown field"),
    # A name holding U+0000 is unknown, and the message does not show it cut at the NUL.
    ("POST", "", VND_JSON, {}, '{"records\\u0000":[{"value":1}]}', 422, 422,
     r"^\(name with \\u0000\): unknown field$"),
    ("POST", "", VND_JSON, {}, '{"records":[{"key\\u0000junk":"k","value\\u0000more":1}]}', 422,
     422, r"^records\[0\]\.\(name with \\u0000\): unknown field$"),
    ("POST", "", VND_JSON, {}, '{"records":[{"partition\\u0000x":2,"value":1}]}', 422, 422,
     r"^records\[0\]\.\(name with \\u0000\): unknown field$"),
    ("POST", "", VND_JSON, {}, '{"records":[{"value":1,"headers":[{"name\\u0000":"h",'
     '"value\\u0000zz":"v"}]}]}', 422, 422,
     r"^records\[0\]\.headers\[0\]\.\(name with \\u0000\): unknown field$"),
    ("POST", "", VND_BINARY, {}, '{"records":[{"value":"a2V5"},{"value":"!!"}]}', 422, 422,
     r"records\[1\]\.value: base64 is invalid"),
    ("POST", "", VND_BINARY, {}, '{"records":[{"value":{"a":1}}]}', 422, 422,
     r"records\[0\]\.value: expected a base64 string"),
    ("POST", "", VND_JSON, {}, '{"records":[{"value":1,"partition":-1}]}', 422, 42202,
     r"records\[0\]\.partition"),
    ("POST", "", VND_JSON, {}, '{"records":[' + ",".join(['{"value":1}'] * 6) + "]}", 413, 413,
     r"ingest\.limits\.max_records \(5\)"),
    ("POST", "", VND_JSON, {}, '{"records":[{"key":"' + "k" * 40 + '","value":1}]}', 422, 42201,
     r"records\[0\]\.key: 42 bytes, more than ingest\.limits\.max_key_bytes \(32\)"),
    ("POST", "", VND_JSON, {}, '{"records":[{"value":"' + "v" * 3000 + '"}]}', 413, 413,
     r"ingest\.limits\.max_body"),
    ("POST", "", VND_JSON, {}, '{"records":[{"value":1,"headers":[{"name":"h"},{"name":"h"},'
     '{"name":"h"}]}]}', 422, 42201, r"records\[0\]\.headers: more than ingest\.limits\.max_headers"),
    ("POST", "", VND_JSON, {}, '{"value_schema":"{}","records":[{"value":1}]}', 422, 422,
     "schemas are not supported"),
    ("POST", "/partitions/x", VND_JSON, {}, '{"records":[{"value":1}]}', 404, 40402, None),
    ("POST", "/other", VND_JSON, {}, '{"records":[{"value":1}]}', 404, 404, None),
    ("GET", "", None, {}, None, 405, 405, None),
]


def test_bad_requests(run_ferry, ferry_config, kafka):
    topic = unique("bad")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic], limits={
        "max_records": 5, "max_key_bytes": 32, "max_body": "2KiB", "max_headers": 2}))
    for i, (method, suffix, ctype, headers, body, status, code, rx) in enumerate(BAD):
        h = dict(headers)
        if ctype:
            h["Content-Type"] = ctype
        resp = f.request(method, f"/topics/{topic}{suffix}", body=body, headers=h, timeout=10)
        try:
            assert_error(resp, status, code, rx)
        except AssertionError as exc:
            raise AssertionError(f"case {i} ({body!r:.60}): {exc}") from None
    for name in ("bad$name", "a" * 250):
        assert_error(post(f, f"/topics/{name}", {"records": [{"value": 1}]}), 404, 40401)
    assert_error(post(f, f"/topics/{unique('other')}", {"records": [{"value": 1}]}), 404, 40401,
                 "not found")
    # One good request afterwards: it is the only record in the topic.
    assert_offsets(post(f, f"/topics/{topic}", {"records": [{"value": "ok"}]}), 1)
    got = kafka.consume_n(topic, 1, use_group=False)
    assert got[0].value == b'"ok"'
    m = parse_prometheus(f.get("/metrics").text)
    assert m.get("ferry_ingest_rejected_total", reason="invalid") >= 9
    assert m.get("ferry_ingest_rejected_total", reason="too_large") >= 2
    assert m.get("ferry_ingest_rejected_total", reason="unknown_topic") == 3
    assert m.get("ferry_ingest_rejected_total", reason="unsupported_media_type") == 2
    assert m.get("ferry_ingest_requests_total", endpoint="rest_proxy", status="422") >= 8


# --------------------------------------------------------------------------------------------
# Webhooks


def test_webhooks(run_ferry, ferry_config, kafka):
    t_gh, t_clicks, t_q = unique("gh"), unique("clicks"), unique("q")
    hooks = [
        {"name": "github", "path": "/webhooks/github", "topic": t_gh,
         "key": {"header": "X-GitHub-Delivery", "required": True},
         "headers": ["X-GitHub-Event"]},
        {"name": "clicks", "path": "/webhooks/clicks", "topic": t_clicks,
         "key": {"json": "user.id"}, "ndjson": True, "ack": "accepted"},
        {"name": "query", "path": "/webhooks/q", "topic": t_q, "key": {"query": "id"}},
    ]
    f = run_ferry(ingest_cfg(ferry_config, webhooks=hooks))
    payload = b'{"action": "opened",  "number": 7}'
    resp = post(f, "/webhooks/github", payload, "application/json",
                {"X-GitHub-Delivery": "d-1", "X-GitHub-Event": "pull_request"})
    assert resp.status == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    [o] = resp.json()["offsets"]
    rec = kafka.consume_n(t_gh, 1, use_group=False)[0]
    assert (rec.partition, rec.offset) == (o["partition"], o["offset"])
    assert rec.key == b"d-1" and rec.value == payload  # byte for byte, whitespace included
    assert rec.headers == [("content-type", b"application/json"),
                           ("x-github-event", b"pull_request")]
    assert rec.partition == java_partition(b"d-1", kafka.partitions(t_gh))
    assert_error(post(f, "/webhooks/github", payload, "application/json"), 422, 422,
                 "header 'X-GitHub-Delivery'")

    lines = b'{"user":{"id":"u1"},"n":1}\n{"user":{"id":2},"n":2}\n\n{"n":3}\n'
    resp = post(f, "/webhooks/clicks", lines, "application/x-ndjson")
    assert resp.status == 202, resp.text
    got = kafka.consume_n(t_clicks, 3, use_group=False)
    assert sorted((r.value, r.key) for r in got) == sorted([
        (b'{"user":{"id":"u1"},"n":1}', b"u1"), (b'{"user":{"id":2},"n":2}', b"2"),
        (b'{"n":3}', None)])
    assert all(r.headers == [("content-type", b"application/json")] for r in got)
    assert_error(post(f, "/webhooks/clicks", b'{"n":1}\n{"n":', "application/x-ndjson"), 422,
                 422, "line 2: invalid JSON")

    resp = post(f, "/webhooks/q?id=abc", b"plain text", "text/plain")
    assert resp.status == 200, resp.text
    rec = kafka.consume_n(t_q, 1, use_group=False)[0]
    assert (rec.key, rec.value, rec.headers) == (b"abc", b"plain text",
                                                 [("content-type", b"text/plain")])
    assert f.request("GET", "/webhooks/q").status == 405
    m = parse_prometheus(f.get("/metrics").text)
    assert m.get("ferry_ingest_requests_total", endpoint="github", status="200") == 1
    assert m.get("ferry_ingest_requests_total", endpoint="clicks", status="202") == 1


# --------------------------------------------------------------------------------------------
# API keys


def test_api_keys(run_ferry, ferry_config, kafka, tmp_path):
    orders, other, hook_topic = unique("orders"), unique("other"), unique("hook")
    key_file = tmp_path / "admin.key"
    key_file.write_text(KEY_ADMIN + "\n")
    keys = [{"name": "orders-service", "key": "${env:FERRY_E2E_ORDERS_KEY}", "topics": [orders]},
            {"name": "admin", "key_file": str(key_file), "topics": ["^.*"]}]
    hooks = [{"name": "open", "path": "/hooks/open", "topic": hook_topic, "auth": False},
             {"name": "closed", "path": "/hooks/closed", "topic": hook_topic}]
    f = run_ferry(ingest_cfg(ferry_config, topics=[orders, other], webhooks=hooks, keys=keys),
                  env={"FERRY_E2E_ORDERS_KEY": KEY_ORDERS})
    body = {"records": [{"value": 1}]}

    resp = post(f, f"/topics/{orders}", body)
    assert_error(resp, 401, 40101)
    assert resp.headers.get("www-authenticate") == 'Bearer realm="ferry"', resp.headers
    for bad in ("Bearer wrong-key-0123456789", f"Bearer {KEY_ORDERS}x", f"Basic {KEY_ORDERS}",
                KEY_ORDERS):
        assert_error(post(f, f"/topics/{orders}", body, headers={"Authorization": bad}), 401,
                     40101)
    # 401 comes before the topic is looked at: no hint about which topics exist.
    assert_error(post(f, f"/topics/{unique('nope')}", body), 401, 40101)

    as_orders = {"Authorization": f"Bearer {KEY_ORDERS}"}
    as_admin = {"Authorization": f"bearer {KEY_ADMIN}"}
    assert_offsets(post(f, f"/topics/{orders}", body, headers=as_orders), 1)
    assert_error(post(f, f"/topics/{other}", body, headers=as_orders), 403, 40301,
                 "'orders-service' may not write")
    assert_offsets(post(f, f"/topics/{other}", body, headers=as_admin), 1)
    assert_error(post(f, f"/topics/{unique('nope')}", body, headers=as_admin), 404, 40401)

    assert post(f, "/hooks/open", b"x", "text/plain").status == 200
    assert_error(post(f, "/hooks/closed", b"x", "text/plain"), 401, 40101)
    assert_error(post(f, "/hooks/closed", b"x", "text/plain", as_orders), 403, 40301)
    assert post(f, "/hooks/closed", b"x", "text/plain", as_admin).status == 200
    assert len(kafka.consume_n(orders, 1, use_group=False)) == 1
    assert len(kafka.consume_n(hook_topic, 2, use_group=False)) == 2

    m = parse_prometheus(f.get("/metrics").text)
    assert m.get("ferry_ingest_rejected_total", reason="unauthorized") == 7
    assert m.get("ferry_ingest_rejected_total", reason="forbidden") == 2
    f.stop()
    log = f.stderr_text()
    assert KEY_ORDERS not in log and KEY_ADMIN not in log
    assert "NO API KEYS" not in log


def test_refused_requests_spend_no_topic_slot(run_ferry, ferry_config, kafka):
    # ingest.limits.max_topics caps the REST Proxy topics that get a producer handle; a request
    # whose key may not write the topic, or whose body is refused, gets none.
    prefix = unique("slot")
    orders = f"{prefix}.orders"
    keys = [{"name": "orders-service", "key": KEY_ORDERS, "topics": [orders]},
            {"name": "admin", "key": KEY_ADMIN, "topics": ["^.*"]}]
    f = run_ferry(ingest_cfg(ferry_config, topics=[f"^{prefix}\\..*"], keys=keys,
                             limits={"max_topics": 2}))
    body = {"records": [{"value": 1}]}
    as_orders = {"Authorization": f"Bearer {KEY_ORDERS}"}
    as_admin = {"Authorization": f"Bearer {KEY_ADMIN}"}
    for name in ("a", "b", "c"):
        assert_error(post(f, f"/topics/{prefix}.{name}", body, headers=as_orders), 403, 40301,
                     "'orders-service' may not write")
        assert_error(post(f, f"/topics/{prefix}.{name}", "x", "text/plain", headers=as_admin),
                     415, 415)
        assert_error(post(f, f"/topics/{prefix}.{name}", {"records": []}, headers=as_admin),
                     422, 422, "may not be empty")
    assert_offsets(post(f, f"/topics/{prefix}.x", body, headers=as_admin), 1)
    assert_offsets(post(f, f"/topics/{orders}", body, headers=as_orders), 1)
    assert_error(post(f, f"/topics/{prefix}.y", body, headers=as_admin), 404, 40401,
                 "max_topics reached")


def test_warns_when_open_on_a_public_listener(run_ferry, ferry_config):
    cfg = ingest_cfg(ferry_config, topics=["t"], extra={"server": {"listen": "0.0.0.0:0"}})
    f = run_ferry(cfg, listen="127.0.0.1:0")
    f.wait_log(r"level=warn sub=ingest .*NO API KEYS")
    assert post(f, "/topics/t", {"records": [{"value": 1}]}).status == 200


def test_check_reports_ingest_mistakes(ferry_bin, tmp_path):
    from ferrytest import run_cli

    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  shutdown_timeout: 5s\n"
                    "ingest:\n"
                    "  rest_proxy:\n    topics: [\"^(x\"]\n"
                    "  webhooks:\n    - {name: w, path: /metrics, topic: t}\n"
                    "  auth:\n    keys:\n      - {name: k, key: short, topics: [t]}\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr
    assert re.search(r"ingest\.rest_proxy\.topics\[0\]: .*regular expression.* \(.*bad\.yaml:5\)",
                     err), err
    assert re.search(r"ingest\.webhooks\[0\]\.path: '/metrics' is one of ferry's own paths", err)
    assert re.search(r"ingest\.auth\.keys\[0\]\.key: expected 16 to 256 characters", err), err
    assert re.search(r"ingest\.delivery_timeout: must be shorter than server\.shutdown_timeout",
                     err), err
    assert "short" not in err.replace("must be shorter", "")  # the key itself is not echoed


def test_check_refuses_a_linger_as_long_as_the_delivery_timeout(ferry_bin, tmp_path):
    """librdkafka makes no topic whose delivery timeout is not above linger.ms: such a config
    passed `ferry check` and then failed (and crashed) at the first topic handle."""
    from ferrytest import run_cli

    path = tmp_path / "linger.yaml"
    path.write_text("kafka:\n  properties:\n    linger.ms: \"2000\"\n"
                    "ingest:\n  delivery_timeout: 1s\n  rest_proxy:\n    topics: [t]\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res.stdout + res.stderr
    assert re.search(r"kafka\.properties\.linger\.ms: must be shorter than "
                     r"ingest\.delivery_timeout \(1000 ms\).* \(.*linger\.yaml:3\)",
                     res.stderr), res.stderr


# --------------------------------------------------------------------------------------------
# TLS


def make_cert(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_listener(run_ferry, ferry_config, kafka, tmp_path):
    cert, key = make_cert(tmp_path)
    topic = unique("tls")
    cfg = ingest_cfg(ferry_config, topics=[topic],
                     extra={"server": {"tls": {"cert_file": str(cert), "key_file": str(key)}}})
    f = run_ferry(cfg, wait_healthy=False)
    host, port = f.listen.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(cert))

    def https(method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    wait_until(lambda: https("GET", "/healthz")[0] == 200, 30, "/healthz over TLS")
    status, out = https("POST", f"/topics/{topic}", b'{"records":[{"value":"secret"}]}',
                        {"Content-Type": VND_JSON})
    assert status == 200, out
    assert kafka.consume_n(topic, 1, use_group=False)[0].value == b'"secret"'
    with pytest.raises((OSError, http.client.HTTPException)):
        f.get("/healthz", timeout=3)  # plain HTTP is not served
    f.wait_log(r"listening on .*TLS")


# --------------------------------------------------------------------------------------------
# Metrics


def test_one_record_at_a_time_fits_a_budget_of_one(run_ferry, ferry_config):
    """An acknowledged request gives its in-flight budget back before it is answered: a client
    that sends its next record once the last one is answered never finds the budget full."""
    topic = unique("budget")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic], limits={"max_in_flight_records": 1}))
    for i in range(100):
        assert_offsets(post(f, f"/topics/{topic}", {"records": [{"value": i}]}), 1)
    # the budget is in force: two records never fit it
    assert_error(post(f, f"/topics/{topic}", {"records": [{"value": 1}, {"value": 2}]}), 413,
                 413, r"max_in_flight_records \(1\)")


def test_metrics(run_ferry, ferry_config):
    topic = unique("metrics")
    f = run_ferry(ingest_cfg(ferry_config, topics=[topic]))
    for _ in range(3):
        assert_offsets(post(f, f"/topics/{topic}", {"records": [{"value": "abc"},
                                                                {"key": 1, "value": 2}]}), 2)
    m = parse_prometheus(f.get("/metrics").text)
    assert m.types["ferry_ingest_requests_total"] == "counter"
    assert m.get("ferry_ingest_requests_total", endpoint="rest_proxy", status="200") == 3
    assert m.get("ferry_ingest_records_total", endpoint="rest_proxy") == 6
    assert m.get("ferry_ingest_bytes_total", endpoint="rest_proxy") == 3 * (5 + 1 + 1)
    assert m.get("ferry_ingest_records_failed_total", endpoint="rest_proxy") == 0
    assert m.get("ferry_ingest_produce_duration_seconds_count", endpoint="rest_proxy") == 3
    assert m.types["ferry_ingest_in_flight_bytes"] == "gauge"
    assert m.get("ferry_ingest_in_flight_bytes") == 0
    assert m.get("ferry_ingest_in_flight_records") == 0
    assert m.get("ferry_ingest_in_flight_limit_bytes") == 64 * 1024 * 1024
    ready = f.get("/readyz").json()
    assert ready["checks"].get("ingest") == "ok", ready


# --------------------------------------------------------------------------------------------
# The quickstart: a record POSTed with curl comes out at the example receiver through the route


# ferry's "cannot listen on ... (address in use ...)" and Python's "address already in use"
PORT_TAKEN = re.compile(r"address (already )?in use", re.I)


def test_quickstart_flow(ferry_bin, tmp_path):
    # The script needs its ports up front: if another process takes one between free_port()
    # and the script binding it, ferry or the receiver cannot listen, and it runs again on
    # other ports (up to three times).
    for attempt in range(3):
        env = {"FERRY_PORT": str(free_port()), "RECEIVER_PORT": str(free_port()),
               "PYTHON": "/usr/bin/python3"}
        proc = Proc([REPO_ROOT / "scripts" / "quickstart.sh", ferry_bin], tmp_path,
                    f"quickstart-{attempt}", env=env)
        try:
            if quickstart_checked(proc):
                return
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
            proc.close()
            proc.assert_no_sanitizer_report()
    raise AssertionError("the quickstart found a port taken three times")


def quickstart_checked(proc):
    """Checks a quickstart run; False if it could not listen on a port it was given."""
    def delivered():
        if PORT_TAKEN.search(proc.stderr_text()):
            return "taken"
        if not proc.alive():
            raise AssertionError(f"quickstart exited\n{proc.describe()}")
        out = proc.stdout_text()
        # the receiver's line, not the echoed curl command, which holds "jam" too
        return re.search(r"receiver: POST /orders/\S*user-4", out) and out
    out = wait_until(delivered, 60, "the curl'd record at the receiver")
    if out == "taken":
        return False
    assert "curl" in out and "/topics/orders" in out, out  # the command is shown
    assert re.search(r"receiver: POST /orders/\S*user-4", out), out
    # the table: user-1's latest order, and a read that waited for the webhook's record
    ryw = re.compile(r'^\{"user":"user-5","order":5,"item":"bread"\}$', re.M)
    out = wait_until(lambda: ryw.search(proc.stdout_text()) and proc.stdout_text(), 60,
                     "the read-your-writes answer")
    # (the receiver prints from another process, so its lines may come in between)
    assert "$ curl -s http://127.0.0.1:" in out and "/tables/orders/keys/user-1" in out, out
    assert re.search(r'^\{"order":3,"item":"cake"\}$', out, re.M), out
    assert re.search(r"/tables/orders/keys/user-5\?min_offset=\d+:\d+'$", out, re.M), out
    assert re.search(r'^\{"user":"user-5","order":5,"item":"bread"\}$', out, re.M), out
    # Ctrl-C: a terminal sends SIGINT to the whole foreground group. ferry drains on it,
    # and the script must not send it a second signal that cuts the drain short.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(40) is not None, f"quickstart still running after Ctrl-C\n{proc.describe()}"
    logs = proc.stdout_text() + proc.stderr_text()
    assert "SIGINT received: draining" in logs, logs
    assert "second signal" not in logs, logs
    assert 'msg=stopped' in logs, logs
    return True
