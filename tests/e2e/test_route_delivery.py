"""Routes deliver every record with the right request: body modes (value, envelope, template),
batch formats (json_array, ndjson, separator), URL and header templates, Idempotency-Key,
traceparent and forwarded record headers.

Each test runs ferry against the session's dev broker with its own topic and consumer group,
so each pays the dev broker's ~3 s first join once.
"""
import base64
import json
import os
import re
import time
from collections import Counter, defaultdict
from urllib.parse import quote

import pytest

from ferrytest import (Reply, route_config, route_metric, unique, wait_delivered,
                       wait_route_metric, wait_route_metrics, wait_until)


def by_partition_offset(delivered):
    """{value bytes: (partition, offset)} of produced messages (values must be unique)."""
    out = {msg.value(): (msg.partition(), msg.offset()) for msg in delivered}
    assert len(out) == len(delivered), "values must be unique to map them back"
    return out


# ---- body modes, one request per record ----------------------------------------------------


def test_value_body_is_the_value_as_is(start_routes, receiver, kafka):
    topic = unique("value")
    values = [b'{"n": 1}', b"plain text", "ünïcode".encode(), bytes(range(256)), b""]
    values += [f"v{i}".encode() for i in range(95)]
    records = [{"key": f"k{i % 7}".encode(), "value": v} for i, v in enumerate(values)]
    records.append({"key": b"tomb", "value": None})  # a tombstone sends an empty body
    f = start_routes(route_config("value", [topic], receiver.url + "/in",
                                  body={"content_type": "text/plain; charset=utf-8"}))
    kafka.produce(topic, records)
    got = receiver.wait_for(len(records))
    wait_delivered(f, "value", len(records))

    assert Counter(r.body for r in receiver.requests) == Counter(values + [b""])
    for r in receiver.requests:
        assert r.method == "POST" and r.path == "/in"
        assert r.header("content-type") == "text/plain; charset=utf-8"
    assert len(got) == len(records)


# io_threads: how many threads run a route's transfers, and that records arrive over them.
# `auto` counts the processors the process may run on, so under taskset it gets one.
@pytest.mark.parametrize("io_threads, wrap, want", [
    ("auto", ("taskset", "-c", "0"), 1),
    (3, (), 3),
    (0, (), 0),
])
def test_io_threads(start_routes, receiver, kafka, io_threads, wrap, want):
    topic = unique("io")
    records = [{"key": f"k{i % 5}".encode(), "value": f"v{i}".encode()} for i in range(60)]
    f = start_routes(route_config("io", [topic], receiver.url + "/in", io_threads=io_threads),
                     wrap=wrap)
    kafka.produce(topic, records)
    receiver.wait_for(len(records))
    wait_delivered(f, "io", len(records))

    assert Counter(r.body for r in receiver.requests) == Counter(r["value"] for r in records)
    assert f"{want} I/O thread(s)" in f.stderr_text() + f.stdout_text()
    names = Counter(thread_names(f.pid))
    assert (names["ferry-route"], names["ferry-route-io"], names["ferry-poller"]) == (1, want, 1)


def thread_names(pid):
    """The names of a process's threads, as top -H shows them."""
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as f:
            names.append(f.read().strip())
    return names


def test_envelope_body_describes_the_record(start_routes, receiver, kafka):
    topic = unique("envelope")
    records = [
        {"key": b"k-json", "value": b'{"a": [1, 2]}', "headers": [("h1", b"x"), ("h2", b"y")]},
        {"key": b"k-text", "value": b"hello"},
        {"key": bytes([0xFF, 0x00, 0x80]), "value": bytes([0xC3, 0x28])},  # neither is UTF-8
        {"value": b"no key"},
        {"key": b"k-tomb", "value": None},
    ]
    records += [{"key": f"k{i}".encode(), "value": f'{{"i": {i}}}'.encode()} for i in range(45)]
    for i, r in enumerate(records):
        r["timestamp"] = 1_700_000_000_000 + i
    f = start_routes(route_config("env", [topic], receiver.url + "/env", body={"mode": "envelope"}))
    delivered = kafka.produce(topic, records)
    receiver.wait_for(len(records))
    wait_delivered(f, "env", len(records))

    expected = {(m.partition(), m.offset()): m for m in delivered}
    # Delivery reports carry neither timestamps nor headers: take them from what was produced.
    sent = {(r.get("key"), r["value"]): r for r in records}
    sent = {(m.partition(), m.offset()): sent[(m.key(), m.value())] for m in delivered}
    seen = set()
    for req in receiver.requests:
        assert req.header("content-type") == "application/json"
        env = req.json()
        assert set(env) >= {"topic", "partition", "offset", "timestamp", "key", "value", "headers"}
        msg = expected[(env["partition"], env["offset"])]
        seen.add((env["partition"], env["offset"]))
        assert env["topic"] == topic
        rec = sent[(env["partition"], env["offset"])]
        assert env["timestamp"] == rec["timestamp"]
        assert_same_data(env, "key", msg.key())
        assert_same_data(env, "value", msg.value())
        assert env["headers"] == {k: v.decode() for k, v in rec.get("headers", [])}
    assert seen == set(expected)


def assert_same_data(env, name, raw):
    """An envelope's key or value stands for raw: null, embedded JSON, a string, or base64."""
    got = env[name]
    if raw is None:
        assert got is None, (name, got)
        return
    if env.get(f"{name}_encoding") == "base64":
        assert base64.b64decode(got) == raw, (name, got, raw)
        return
    try:
        assert got == json.loads(raw), (name, got, raw)  # embedded as JSON
    except ValueError:
        assert got == raw.decode(), (name, got, raw)  # not JSON: a string


def test_envelope_embeds_json_values_as_json(start_routes, receiver, kafka):
    topic = unique("envjson")
    f = start_routes(route_config("envj", [topic], receiver.url + "/", body={"mode": "envelope"}))
    kafka.produce(topic, [(b"k", b' {"a": [1, 2], "b": {"c": null}} \n')])
    req = receiver.wait_for(1)[0]
    assert req.json()["value"] == {"a": [1, 2], "b": {"c": None}}
    assert "value_encoding" not in req.json()
    wait_delivered(f, "envj", 1)


def test_template_body(start_routes, receiver, kafka):
    topic = unique("tmpl")
    tmpl = ('{"id":${value.id},"name":"${value.user.name}","key":"${key}",'
            '"where":"${topic}/${partition}/${offset}","src":"${header.src}"}')
    records = [{"key": f"k{i}".encode(),
                "value": json.dumps({"id": i, "user": {"name": f"user{i}"}}).encode(),
                "headers": [("src", f"s{i}".encode())]} for i in range(60)]
    f = start_routes(route_config("tmpl", [topic], receiver.url + "/t",
                                  body={"mode": "template", "template": tmpl,
                                        "content_type": "application/json"}))
    delivered = kafka.produce(topic, records)
    receiver.wait_for(len(records))
    wait_delivered(f, "tmpl", len(records))

    where = {m.key(): (m.partition(), m.offset()) for m in delivered}
    bodies = {}
    for req in receiver.requests:
        assert req.header("content-type") == "application/json"
        b = req.json()
        bodies[b["id"]] = b
    assert sorted(bodies) == list(range(60))
    for i, b in bodies.items():
        p, o = where[f"k{i}".encode()]
        assert b == {"id": i, "name": f"user{i}", "key": f"k{i}", "where": f"{topic}/{p}/{o}",
                     "src": f"s{i}"}


# ---- batches -------------------------------------------------------------------------------

BATCH_MAX = 7
PARTITIONS = 4
PER_PARTITION = 40


def batch_values(p, i):
    """The value of record i of partition p: JSON for some, plain text for others."""
    if i % 3 == 0:
        return json.dumps({"p": p, "i": i}).encode()
    return f"p{p} i{i} text".encode()


def parse_value(item):
    """(partition, index) from a value as it came back (parsed JSON, JSON string, or bytes)."""
    if isinstance(item, bytes):
        item = item.decode()
        if item.startswith("{"):
            item = json.loads(item)
    if isinstance(item, dict):
        return item["p"], item["i"]
    p, i, _ = item.split(" ")
    return int(p[1:]), int(i[1:])


def split_batch(fmt, body):
    if fmt == "json_array":
        items = json.loads(body)
        assert isinstance(items, list)
        return items
    if fmt == "ndjson":
        assert body.endswith(b"\n"), body[-20:]
        return [json.loads(line) for line in body.split(b"\n")[:-1]]
    return body.split(b";;")


@pytest.mark.parametrize("fmt,content_type", [
    ("json_array", "application/json"),
    ("ndjson", "application/x-ndjson"),
    ("separator", "application/octet-stream"),
])
def test_batch_formats(start_routes, receiver, kafka, fmt, content_type):
    topic = unique(f"batch-{fmt}")
    records = [{"partition": p, "key": f"k{i % 5}".encode(), "value": batch_values(p, i)}
               for i in range(PER_PARTITION) for p in range(PARTITIONS)]
    kafka.produce(topic, records)  # all waiting before the route joins: batches fill up
    f = start_routes(route_config("b", [topic], receiver.url + "/batch",
                                  batch={"max_records": BATCH_MAX, "format": fmt,
                                         "separator": ";;", "linger": "50ms"}))
    wait_delivered(f, "b", len(records))

    seen = Counter()
    sizes = []
    for req in receiver.requests:
        assert req.header("content-type") == content_type
        items = split_batch(fmt, req.body)
        pairs = [parse_value(it) for it in items]
        parts = {p for p, _ in pairs}
        assert len(parts) == 1, f"a batch mixed partitions {parts}: {req.body[:200]!r}"
        assert 1 <= len(items) <= BATCH_MAX
        sizes.append(len(items))
        seen.update(pairs)
        # Per key (i % 5), records of one batch keep their offset order (here: index order).
        for k in range(5):
            idx = [i for _, i in pairs if i % 5 == k]
            assert idx == sorted(idx), f"key k{k} out of order in a batch: {idx}"
        # One partition: the key names the partition and the batch's offset range.
        key = req.header("idempotency-key")
        p = parts.pop()
        assert key.startswith(f"{topic}-{p}-"), key
    assert set(seen) == {(p, i) for p in range(PARTITIONS) for i in range(PER_PARTITION)}
    assert all(c == 1 for c in seen.values()), "a record was sent twice without a failure"
    assert max(sizes) == BATCH_MAX, f"batches never filled up: {sizes}"


def test_batch_idempotency_key_names_the_offset_range(start_routes, receiver, kafka):
    topic = unique("batchkey")
    records = [{"partition": p, "key": f"k{i}".encode(), "value": f"{p}:{i}".encode()}
               for p in range(PARTITIONS) for i in range(20)]
    delivered = kafka.produce(topic, records)
    offsets = by_partition_offset(delivered)
    f = start_routes(route_config("bk", [topic], receiver.url + "/", ordering="partition",
                                  batch={"max_records": 6, "format": "ndjson", "linger": "50ms"}))
    wait_delivered(f, "bk", len(records))

    for req in receiver.requests:
        values = [json.loads(line) for line in req.body.split(b"\n")[:-1]]
        # "p:i" is not JSON, so ndjson carries it as a JSON string
        where = [offsets[v.encode()] for v in values]
        p = where[0][0]
        lo, hi = min(o for _, o in where), max(o for _, o in where)
        # ordering: partition sends a partition's records in offset order
        assert [o for _, o in where] == list(range(lo, hi + 1))
        expect = f"{topic}-{p}-{lo}" if lo == hi else f"{topic}-{p}-{lo}-{hi}"
        assert req.header("idempotency-key") == expect


def test_envelope_batch_never_mixes_partitions(start_routes, receiver, kafka):
    topic = unique("envbatch")
    # Keys spread over the partitions by the producer's partitioner.
    records = [(f"key-{i % 23}".encode(), f"value {i}".encode()) for i in range(300)]
    delivered = kafka.produce(topic, records)
    f = start_routes(route_config("eb", [topic], receiver.url + "/",
                                  body={"mode": "envelope"},
                                  batch={"max_records": 25, "format": "json_array",
                                         "linger": "50ms"}))
    wait_delivered(f, "eb", len(records))

    got = []
    for req in receiver.requests:
        envs = req.json()
        assert len({e["partition"] for e in envs}) == 1, [e["partition"] for e in envs]
        assert len(envs) <= 25
        got += [(e["partition"], e["offset"], e["value"]) for e in envs]
    assert sorted(got) == sorted((m.partition(), m.offset(), m.value().decode())
                                 for m in delivered)
    assert max(len(r.json()) for r in receiver.requests) > 1


def test_a_route_at_its_concurrency_limit_waits_without_spinning(start_routes, receiver, kafka):
    topic = unique("slow")
    receiver.default = Reply(delay=0.8)
    f = start_routes(route_config("slow", [topic], receiver.url + "/s/${key}", concurrency=2))
    kafka.produce(topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(6)])
    receiver.wait_for(2)
    # Both slots are taken and four records are ready: the loop must sleep until an answer
    # comes (it used to poll with a zero timeout and burn a core).
    cpu0, t0 = f.metrics().get("process_cpu_seconds_total"), time.monotonic()
    time.sleep(1.5)
    cpu1, t1 = f.metrics().get("process_cpu_seconds_total"), time.monotonic()
    wait_delivered(f, "slow", 6)
    assert receiver.max_in_flight == 2
    assert cpu1 - cpu0 < 0.3 * (t1 - t0), f"{cpu1 - cpu0:.2f} CPU s in {t1 - t0:.2f} s"


def test_idle_seconds_say_what_the_worker_waited_for(start_routes, receiver, kafka):
    # "slow": one slot, answers after 1 s each: its worker waits on the target. "linger": a
    # batch that lingers 2 s for records that never come: it waits with records held. Both
    # wait on Kafka once everything is delivered.
    slow, linger = unique("idle-slow"), unique("idle-linger")
    receiver.push(Reply(delay=1.0), Reply(delay=1.0), path="/slow")
    f = start_routes(
        route_config("slow", [slow], receiver.url + "/slow", concurrency=1),
        route_config("linger", [linger], receiver.url + "/linger",
                     batch={"max_records": 100, "linger": "2s"}))
    kafka.produce(slow, [(b"k", b"a"), (b"k", b"b")])
    kafka.produce(linger, [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")])
    wait_delivered(f, "slow", 2)
    wait_delivered(f, "linger", 3)

    def idle(route, cause, m):
        return route_metric(m, "ferry_route_idle_seconds_total", route, cause=cause)

    m = f.metrics()
    assert m.types["ferry_route_idle_seconds_total"] == "counter"
    # the second record waited behind the first's answer: at least most of a second
    assert idle("slow", "target", m) >= 0.8, m.find("ferry_route_idle_seconds_total")
    assert idle("slow", "held", m) < idle("slow", "target", m)
    assert idle("linger", "held", m) >= 1.5, m.find("ferry_route_idle_seconds_total")
    assert idle("linger", "target", m) < 0.5
    kafka_before = idle("slow", "kafka", m)
    wait_until(lambda: idle("slow", "kafka", f.metrics()) >= kafka_before + 0.5, 30,
               "the idle route's wait on Kafka to grow")


def test_max_buffered_records_auto(start_routes, receiver, kafka):
    # auto: an unordered batch route holds a batch for every slot (up to 20,000); ordered
    # routes and small products keep 5,000; a number is taken as it is.
    topic = unique("buffered")
    routes = [("wide", {"ordering": "none", "concurrency": 64, "batch": {"max_records": 500}}),
              ("mid", {"ordering": "none", "concurrency": 30, "batch": {"max_records": 200}}),
              ("keyed", {"ordering": "key", "concurrency": 64, "batch": {"max_records": 500}}),
              ("single", {"ordering": "none", "concurrency": 64}),
              ("set", {"ordering": "none", "limits": {"max_buffered_records": 7}})]
    f = start_routes(*(route_config(n, [topic], receiver.url + "/b", **over) for n, over in routes))
    log = f.stderr_text() + f.stdout_text()
    for name, want in (("wide", 20000), ("mid", 6000), ("keyed", 5000), ("single", 5000),
                       ("set", 7)):
        assert re.search(rf"inst={name} .*up to {want} records buffered", log), (name, log)


def test_a_full_route_sends_its_batches_without_lingering(start_routes, receiver, kafka):
    # A batch lingers for records that may join it, but a route holding all the records its
    # limit allows takes at most one per loop turn until some finish: its batches go at once,
    # not after the minute they could linger, and still as batches.
    topic = unique("fullbatch")
    total = 10
    kafka.produce(topic, [(f"k{i}".encode(), str(i).encode()) for i in range(total)])
    f = start_routes(route_config("fullbatch", [topic], receiver.url + "/b",
                                  batch={"max_records": 100, "linger": "60s"},
                                  limits={"max_buffered_records": total}))
    wait_delivered(f, "fullbatch", total, timeout=40)
    got = sorted(int(v) for r in receiver.requests for v in r.json())
    assert got == list(range(total))
    assert len(receiver.requests) <= kafka.partitions(topic), "one request per partition"


def test_full_buffers_pause_consumption_and_lose_nothing(start_routes, receiver, kafka):
    # Answers take 1.5 s, so the 100-record buffer stays full for longer than the second after
    # which a route pauses its partitions; until then it only takes what the limit has room for.
    topic = unique("pause")
    total = 400
    receiver.default = Reply(delay=1.5)
    kafka.produce(topic, [(f"k{i % 200}".encode(), str(i).encode()) for i in range(total)])
    f = start_routes(route_config("pause", [topic], receiver.url + "/p", concurrency=50,
                                  limits={"max_buffered_records": 100}))
    seen = {"paused": 0.0, "buffered": 0.0}

    def delivered():
        m = f.metrics()
        seen["paused"] = max(seen["paused"], route_metric(m, "ferry_route_paused", "pause"))
        seen["buffered"] = max(seen["buffered"],
                               route_metric(m, "ferry_route_buffered_records", "pause"))
        return route_metric(m, "ferry_route_records_delivered_total", "pause") >= total and m

    m = wait_until(delivered, 90, f"{total} records delivered", max_interval=0.05)
    assert seen["paused"] == 1, "the route never paused while its buffer stayed full"
    # While full the route still takes one record per loop turn (so that group events are
    # served); turns come from answers, so the excess stays within one round of answers.
    assert seen["buffered"] <= 150, f"{seen['buffered']} records buffered with a limit of 100"
    # the gauges are set at the end of the loop turn that counted the last delivery
    wait_until(lambda: (m := f.metrics()) and route_metric(m, "ferry_route_paused", "pause") == 0
               and route_metric(m, "ferry_route_buffered_records", "pause") == 0, 10,
               "the route to resume with nothing buffered")
    assert Counter(r.body for r in receiver.requests) == Counter(
        str(i).encode() for i in range(total))


# ---- URL and headers -----------------------------------------------------------------------


def test_url_template_encodes_key(start_routes, receiver, kafka):
    topic = unique("url")
    keys = ["plain", "a b", "x/y", "q?r&s=t", "100%", "#frag", "ünï", "-._~", "a+b"]
    f = start_routes(route_config("url", [topic], receiver.url + "/items/${key}/p${partition}"))
    delivered = kafka.produce(topic, [(k.encode(), b"v") for k in keys])
    receiver.wait_for(len(keys))
    wait_delivered(f, "url", len(keys))

    part = {m.key().decode(): m.partition() for m in delivered}
    expected = sorted(f"/items/{quote(k, safe='-._~')}/p{part[k]}" for k in keys)
    assert sorted(r.raw_path for r in receiver.requests) == expected
    assert all(r.query == "" for r in receiver.requests)  # '?' and '#' did not leak through
    # and the receiver decodes them back to the keys
    assert sorted(r.path for r in receiver.requests) == sorted(
        f"/items/{k}/p{part[k]}" for k in keys)


def test_a_record_the_url_template_cannot_fill_is_dead_lettered(start_routes, receiver, kafka):
    topic, dlq = unique("urlbad"), unique("urlbad-dlq")
    records = [{"partition": 0, "key": f"k{i}".encode(), "value": json.dumps({"id": i}).encode()}
               for i in range(3)]
    bad = {b"nofield": b'{"x": 1}', b"notjson": b"hello", b"tomb": None}
    records += [{"partition": 0, "key": k, "value": v} for k, v in bad.items()]
    records.append({"partition": 0, "key": b"k9", "value": b'{"id": 9}'})
    f = start_routes(route_config("urlbad", [topic], receiver.url + "/items/${value.id}",
                                  dead_letter={"topic": dlq}))
    kafka.produce(topic, records)
    dead = kafka.consume_n(dlq, len(bad), use_group=False)
    wait_delivered(f, "urlbad", 4)

    assert sorted(r.path for r in receiver.requests) == ["/items/0", "/items/1", "/items/2",
                                                         "/items/9"]
    errors = {d.key: dict(d.headers) for d in dead}
    assert set(errors) == set(bad)
    for key, h in errors.items():
        assert h["ferry.error"].startswith(b"template: '${value.id}': "), h["ferry.error"]
        assert h["ferry.attempts"] == b"0" and "ferry.http_status" not in h
    assert b"not JSON" in errors[b"notjson"]["ferry.error"]
    assert b"tombstone" in errors[b"tomb"]["ferry.error"]
    # the route went on and its watermark passed the dead letters
    wait_until(lambda: route_metric(f.metrics(), "ferry_route_committed_offset", "urlbad",
                                    topic=topic, partition="0") == len(records), 10,
               "the committed offset to reach the end")


def test_header_templates(start_routes, receiver, kafka):
    topic = unique("hdr")
    dlq = unique("hdr-dlq")
    records = [{"key": f"k{i}".encode(), "value": json.dumps({"user": {"id": 100 + i}}).encode(),
                "headers": [("tenant", f"t{i % 3}".encode())]} for i in range(30)]
    # A key with a line break cannot go into a header: that record is dead-lettered.
    bad = {"key": b"evil\r\nX-Injected: 1", "value": b'{"user": {"id": 1}}',
           "headers": [("tenant", b"t0")]}
    f = start_routes(route_config(
        "hdr", [topic], receiver.url + "/h",
        target={"method": "PUT", "headers": {
            "X-Key": "${key}", "X-Where": "${topic}/${partition}/${offset}",
            "X-User": "user-${value.user.id}", "X-Tenant": "${header.tenant}",
            "X-Static": "fixed value"}},
        dead_letter={"topic": dlq}))
    delivered = kafka.produce(topic, records + [bad])
    receiver.wait_for(len(records))
    m = wait_route_metrics(f, "hdr", {"ferry_route_records_delivered_total": len(records),
                                      "ferry_route_records_dead_lettered_total": 1})
    assert route_metric(m, "ferry_route_records_delivered_total", "hdr") == len(records)

    where = {m.key(): (m.partition(), m.offset()) for m in delivered}
    assert len(receiver.requests) == len(records)
    for req in receiver.requests:
        assert req.method == "PUT"
        key = req.header("x-key")
        i = int(key[1:])
        p, o = where[key.encode()]
        assert req.header("x-where") == f"{topic}/{p}/{o}"
        assert req.header("x-user") == f"user-{100 + i}"
        assert req.header("x-tenant") == f"t{i % 3}"
        assert req.header("x-static") == "fixed value"
        assert "x-injected" not in req.headers
    (dead,) = kafka.consume_n(dlq, 1, use_group=False)
    assert dead.key == bad["key"]
    error = dict(dead.headers)["ferry.error"].decode()
    assert "CR" in error and "header" in error, error


def test_header_templates_refuse_control_bytes(start_routes, receiver, kafka):
    """A control byte (but HTAB) from a record never reaches a header line: the record is
    dead-lettered with a reason that names the header, the byte and the variable."""
    topic, dlq = unique("hdrctl"), unique("hdrctl-dlq")
    good = [{"key": b"k-plain", "value": b'{"id": "1"}', "headers": [("tenant", b"t1")]},
            {"key": b"k-tab", "value": b'{"id": "a\\tb"}', "headers": [("tenant", b"t\tab")]},
            {"key": b"k-3", "value": b'{"id": "3"}', "headers": [("tenant", b"t3")]}]
    bad = {  # key -> (record, the reason's end)
        b"esc\x1b[2J": ({"value": b'{"id": "4"}', "headers": [("tenant", b"t4")]},
                        "X-Key: template: '${key}': value contains control byte 0x1B"),
        b"k-bel": ({"value": b'{"id": "5"}', "headers": [("tenant", b"t\x07")]},
                   "X-Tenant: template: '${header.tenant}': value contains control byte 0x07"),
        b"k-del": ({"value": b'{"id": "6\x7f"}', "headers": [("tenant", b"t6")]},
                   "X-User: template: '${value.id}': value contains control byte 0x7F"),
        b"k-vt": ({"value": b'{"id": "7\\u000b"}', "headers": [("tenant", b"t7")]},
                  "X-User: template: '${value.id}': value contains control byte 0x0B"),
        b"k-lf": ({"value": b'{"id": "8\\n"}', "headers": [("tenant", b"t8")]},
                  "X-User: template: '${value.id}': value contains CR, LF or NUL"),
    }
    records = [dict(partition=0, **r) for r in good]
    records += [dict(partition=0, key=k, **r) for k, (r, _) in bad.items()]
    f = start_routes(route_config(
        "hdrctl", [topic], receiver.url + "/h",
        target={"headers": {"X-Key": "${key}", "X-Tenant": "${header.tenant}",
                            "X-User": "u-${value.id}"}},
        dead_letter={"topic": dlq}))
    kafka.produce(topic, records)
    dead = kafka.consume_n(dlq, len(bad), use_group=False)
    wait_route_metric(f, "ferry_route_records_delivered_total", "hdrctl", len(good))

    sent = {r.header("x-key"): r for r in receiver.requests}
    assert sorted(sent) == sorted(g["key"].decode() for g in good), sorted(sent)
    assert sent["k-tab"].header("x-user") == "u-a\tb"  # HTAB passes, as HTTP allows
    assert sent["k-tab"].header("x-tenant") == "t\tab"
    reasons = {d.key: dict(d.headers)["ferry.error"].decode() for d in dead}
    assert set(reasons) == set(bad)
    for key, (_, want) in bad.items():
        assert reasons[key].startswith("target.headers." + want), (key, reasons[key])
        assert reasons[key].endswith("which a header cannot carry"), reasons[key]
    wait_until(lambda: route_metric(f.metrics(), "ferry_route_committed_offset", "hdrctl",
                                    topic=topic, partition="0") == len(records), 10,
               "the committed offset to pass the dead letters")


# ---- idempotency and forwarded headers -----------------------------------------------------


def test_idempotency_key_is_stable_across_retries(start_routes, receiver, kafka):
    topic = unique("idem")
    receiver.push(Reply(500), Reply(503), path="/i/k3")  # k3 fails twice, then succeeds
    records = [{"partition": 1, "key": f"k{i}".encode(), "value": f"v{i}".encode()}
               for i in range(6)]
    f = start_routes(route_config("idem", [topic], receiver.url + "/i/${key}"))
    delivered = kafka.produce(topic, records)
    receiver.wait_for(len(records) + 2)
    m = wait_delivered(f, "idem", len(records))
    assert route_metric(m, "ferry_route_records_retried_total", "idem") == 2

    offsets = {m.key().decode(): m.offset() for m in delivered}
    keys = defaultdict(list)
    for req in receiver.requests:
        keys[req.path.rsplit("/", 1)[1]].append(req.header("idempotency-key"))
    assert len(keys["k3"]) == 3
    for k, got in keys.items():
        assert got == [f"{topic}-1-{offsets[k]}"] * len(got), (k, got)
    assert len({v[0] for v in keys.values()}) == len(records)  # distinct per record


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_traceparent_is_forwarded_and_other_headers_are_not(start_routes, receiver, kafka):
    topic = unique("trace")
    f = start_routes(route_config("trace", [topic], receiver.url + "/"))
    kafka.produce(topic, [
        {"key": b"a", "value": b"1", "headers": [("traceparent", TRACEPARENT.encode()),
                                                  ("x-other", b"no")]},
        {"key": b"b", "value": b"2", "headers": [("x-other", b"no")]},
    ])
    receiver.wait_for(2)
    wait_delivered(f, "trace", 2)
    by_body = {r.body: r for r in receiver.requests}
    assert by_body[b"1"].header("traceparent") == TRACEPARENT
    assert by_body[b"2"].header("traceparent") is None
    assert all("x-other" not in r.headers for r in receiver.requests)


def test_forward_headers(start_routes, receiver, kafka):
    topic = unique("fwd")
    f = start_routes(route_config("fwd", [topic], receiver.url + "/",
                                  target={"forward_headers": True}))
    kafka.produce(topic, [
        {"key": b"a", "value": b"1",
         "headers": [("traceparent", TRACEPARENT.encode()), ("X-Tenant", b"acme"),
                     ("x-request-id", b"r-1"),
                     ("x-bad", b"line\nbreak")]},  # not a valid header value: left out
        {"key": b"b", "value": b"2"},
    ])
    receiver.wait_for(2)
    wait_delivered(f, "fwd", 2)
    by_body = {r.body: r for r in receiver.requests}
    h = by_body[b"1"].headers
    assert h["traceparent"] == TRACEPARENT
    assert h["x-tenant"] == "acme" and h["x-request-id"] == "r-1"
    assert "x-bad" not in h
    assert "x-tenant" not in by_body[b"2"].headers


def test_forwarded_headers_cannot_break_or_redirect_the_request(start_routes, receiver, kafka):
    # Record headers that frame the message or manage the connection stay out, ferry's own
    # Content-Type and Idempotency-Key win, and a repeated header sends its last value. (Each
    # of these used to go out as is: Content-Length: 3 cut the body and made the receiver
    # answer 400 forever, Host moved the request to another virtual host, and a second
    # Content-Type made the request malformed.)
    topic = unique("fwdbad")
    f = start_routes(route_config("fwdbad", [topic], receiver.url + "/",
                                  target={"forward_headers": True}))
    kafka.produce(topic, [
        {"key": b"a", "value": b"hello world", "headers": [("Content-Length", b"3")]},
        {"key": b"b", "value": b"2", "headers": [("Content-Type", b"text/evil"),
                                                 ("idempotency-key", b"mine")]},
        {"key": b"c", "value": b"3", "headers": [("Host", b"elsewhere.example")]},
        {"key": b"d", "value": b"4", "headers": [("Transfer-Encoding", b"chunked"),
                                                 ("Connection", b"close"),
                                                 ("Expect", b"100-continue"),
                                                 ("Upgrade", b"h2c"), ("TE", b"trailers")]},
        {"key": b"e", "value": b"5", "headers": [("x-a", b"first"), ("X-A", b"last")]},
    ])
    receiver.wait_for(5)
    wait_delivered(f, "fwdbad", 5, timeout=10)
    by_body = {r.body: r for r in receiver.requests}
    assert set(by_body) == {b"hello world", b"2", b"3", b"4", b"5"}
    assert all(r.status == 200 for r in receiver.requests)
    for r in receiver.requests:
        assert r.header("content-type") == "application/octet-stream"
        assert r.header("idempotency-key").startswith(f"{topic}-")
        assert r.header("host") == receiver.url[len("http://"):]
        for name in ("transfer-encoding", "connection", "expect", "upgrade", "te"):
            assert name not in r.headers, (name, r.headers)
    assert by_body[b"hello world"].header("content-length") == "11"
    assert by_body[b"5"].header("x-a") == "last"


def test_configured_headers_take_precedence(start_routes, receiver, kafka):
    topic = unique("cfghdr")
    f = start_routes(route_config("cfghdr", [topic], receiver.url + "/", target={"headers": {
        "Content-Type": "application/json", "Idempotency-Key": "order-${key}",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00"}}))
    kafka.produce(topic, [{"key": b"k1", "value": b"{}",
                           "headers": [("traceparent", TRACEPARENT.encode())]}])
    (req,) = receiver.wait_for(1)
    wait_delivered(f, "cfghdr", 1)
    # one of each, the configured value (a second Content-Type made servers answer 400)
    assert req.status == 200
    assert req.header("content-type") == "application/json"
    assert req.header("idempotency-key") == "order-k1"
    assert req.header("traceparent") == "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-00"


def test_a_blank_header_is_sent_empty(start_routes, receiver, kafka):
    # A header whose template renders nothing, or a forwarded record header with an empty
    # value, goes out empty. (libcurl reads "Name:" with nothing after it as "remove this
    # header": a configured Idempotency-Key that rendered empty used to send no key at all,
    # and ferry's own was left out because one was configured.)
    topic = unique("blankhdr")
    f = start_routes(route_config("blankhdr", [topic], receiver.url + "/", target={
        "forward_headers": True,
        "headers": {"Idempotency-Key": "${key}", "X-Tenant": "  ${header.tenant}"}}))
    kafka.produce(topic, [{"key": b"", "value": b"1",
                           "headers": [("tenant", b""), ("x-empty", b"")]}])
    (req,) = receiver.wait_for(1)
    wait_delivered(f, "blankhdr", 1)
    assert req.status == 200
    for name in ("idempotency-key", "x-tenant", "x-empty"):
        assert req.headers.get(name) == "", (name, req.headers)


def test_a_small_prefetch_does_not_starve_the_route(start_routes, receiver, kafka):
    # librdkafka 2.0 stops fetching while its queue is over queued.max.messages.kbytes and
    # looks again only up to a second later; a route that drains the queue restarts fetching
    # at once (route/refetch.h). With a 32 KiB prefetch and 100 records buffered at most, the
    # queue fills and drains about 40 times for these 12,000 records: a second lost each time
    # would take most of a minute.
    topic = unique("prefetch")
    total = 12_000
    kafka.produce(topic, [(f"k{i % 50}".encode(), b"%0100d" % i) for i in range(total)])
    small = {"queued.max.messages.kbytes": "32", "fetch.max.bytes": "8192", "message.max.bytes": "4096",
             "max.partition.fetch.bytes": "2048"}
    f = start_routes(route_config("prefetch", [topic], receiver.url + "/b", kafka=small,
                                  batch={"max_records": 100, "linger": "1ms"},
                                  limits={"max_buffered_records": 100}))
    m = wait_delivered(f, "prefetch", total, timeout=10)
    assert route_metric(m, "ferry_route_fetch_restarts_total", "prefetch") > 0
    got = [int(v) for r in receiver.requests for v in r.json()]  # strings: not JSON numbers
    assert sorted(got) == list(range(total))


def test_headers_over_their_total_limit_are_dead_lettered(start_routes, receiver, kafka):
    # Forwarded header lines of one request may hold 64 KiB together (ROUTE_HEADERS_TEXT_MAX):
    # 20 headers of 3.9 KiB each pass alone but not together.
    topic, dlq = unique("hdrbig"), unique("hdrbig-dlq")
    many = [(f"x-h{i}", b"v" * 3900) for i in range(20)]
    records = [{"partition": 0, "key": b"big", "value": b"1", "headers": many},
               {"partition": 0, "key": b"small", "value": b"2", "headers": many[:2]}]
    f = start_routes(route_config("hdrbig", [topic], receiver.url + "/h", target={"forward_headers": True},
                                  dead_letter={"topic": dlq}))
    kafka.produce(topic, records)
    dead = kafka.consume_n(dlq, 1, use_group=False)
    wait_delivered(f, "hdrbig", 1)

    assert [d.key for d in dead] == [b"big"]
    assert dict(dead[0].headers)["ferry.error"] == b"the URL or a header is too long"
    assert [r.body for r in receiver.requests] == [b"2"]
    assert receiver.requests[0].header("x-h1") == "v" * 3900


def test_a_record_with_many_headers_is_not_slow(start_routes, make_receiver, kafka):
    # An envelope keeps each header name's last value, and forward_headers sends only the last
    # header of a name. Both used to ask, for each header, whether a later one had its name:
    # n^2 compares, and the 60,000 headers a one-megabyte record can hold kept a route's worker
    # busy for half a minute (ASan build) before its request went out. They are marked in
    # n log n now (route/header_last.h).
    topic, dlq = unique("hdrmany"), unique("hdrmany-dlq")
    n = 90_000
    headers = [(f"h{i}", b"v") for i in range(n)] + [("h0", b"last")]
    env_rcv, fwd_rcv = make_receiver("env"), make_receiver("fwd")
    f = start_routes(route_config("hdrmany-env", [topic], env_rcv.url + "/e", body={"mode": "envelope"}),
                     route_config("hdrmany-fwd", [topic], fwd_rcv.url + "/f",
                                  target={"forward_headers": True}, dead_letter={"topic": dlq}))
    kafka.produce(topic, [{"key": b"k", "value": b"v", "headers": headers},
                          {"key": b"k", "value": b"w", "headers": headers[-3:]}])
    env = env_rcv.wait_for(2, timeout=8)
    (fwd,) = fwd_rcv.wait_for(1, timeout=8)
    (dead,) = kafka.consume_n(dlq, 1, use_group=False, timeout=8)

    got = env[0].json()["headers"]
    assert len(got) == n and got["h0"] == "last" and got["h1"] == "v"
    assert env[1].json()["headers"] == {f"h{n - 2}": "v", f"h{n - 1}": "v", "h0": "last"}
    # the first record's 90,000 header lines pass the request's 64 KiB; the second goes
    assert dead.value == b"v" and dict(dead.headers)["ferry.error"] == b"the URL or a header is too long"
    assert fwd.body == b"w" and fwd.header("h0") == "last" and fwd.header(f"h{n - 1}") == "v"
