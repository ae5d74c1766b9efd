"""Reply topics: each target's answer is written to `reply.topic`, keyed like its record, with
the record's coordinates, the status and the chosen response headers, before the record counts
as finished.

- contents: value = response body, headers, a body cut at max_body, a batch (one reply per
  record), `reply.on: all` (a dead-lettered record gets a reply with ferry.error too), an
  accepted e-mail's empty value even after a refused STARTTLS;
- order: under `ordering: key` with concurrency > 1, each key's replies come in the order of its
  records;
- a reply the producer cannot write (larger than message.max.bytes) leaves its record
  unfinished: not committed, answered again after a restart;
- kill -9 in the middle of a stream and a restart: every record has a reply (duplicates
  allowed);
- a broker that stops answering between the target's answer and the reply: the failed writes
  are redone, no record is stored for commit without its reply, and none is lost.

Replies are read by assigning every partition of the reply topic from the beginning (no group
join), polling until a condition holds, with a deadline.
"""
import json
import random
import re
import signal
import threading
import time
from collections import defaultdict

import pytest

from ferrytest import (Hang, Kafka, Reply, _ck, consumer_config, group_committed,
                       make_producer, partitions_of, route_config, route_metric, run_cli, unique,
                       wait_delivered, wait_route_metric, wait_route_metrics, wait_until)
from test_ingest_backpressure import frozen


def hdr(rec, name):
    """The last value of header name of a confluent_kafka message, as text, or None."""
    got = [v for k, v in (rec.headers() or []) if k == name]
    return got[-1].decode() if got and got[-1] is not None else None


def source_of(rec):
    """(topic, partition, offset) a reply names."""
    return hdr(rec, "ferry.topic"), int(hdr(rec, "ferry.partition")), int(hdr(rec, "ferry.offset"))


class ReplyReader:
    """Reads a reply topic from the beginning of every partition in a background-free loop:
    read_until(pred) polls until pred(messages) holds, with a deadline."""

    def __init__(self, bootstrap, topic):
        ck = _ck()
        self.messages = []
        self._c = ck.Consumer(consumer_config(bootstrap))
        parts = partitions_of(bootstrap, topic)
        self._c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(parts)])

    def read_until(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred(self.messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout}s; have {len(self.messages)} replies")
            msg = self._c.poll(0.1)
            if msg is not None and not msg.error():
                self.messages.append(msg)
        return self.messages

    def read_more(self, seconds):
        """Keeps reading for a while (to see that nothing more comes)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self._c.poll(0.05)
            if msg is not None and not msg.error():
                self.messages.append(msg)
        return self.messages

    def close(self):
        self._c.close()


def echo(rec):
    """Answers with the request body wrapped, and headers to copy."""
    return Reply(status=201, body=b'{"echo":' + rec.body + b"}",
                 headers={"Content-Type": "application/json", "X-Request-Id": "id-" +
                          rec.body.decode(), "X-Ignored": "no"})


def test_reply_contents_and_headers(start_routes, receiver, kafka):
    topic, replies = unique("rq"), unique("rq-replies")
    receiver.handler = echo
    f = start_routes(route_config("rq", [topic], receiver.url + "/in",
                                  reply={"topic": replies,
                                         "headers": ["content-type", "x-request-id",
                                                     "x-absent"]}))
    records = [{"key": f"k{i % 3}".encode(), "value": str(i).encode(),
                "timestamp": 1700000000000 + i} for i in range(30)]
    records.append({"key": None, "value": b"99"})
    delivered = kafka.produce(topic, records)
    where = {m.value(): (m.partition(), m.offset()) for m in delivered}
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        got = reader.read_until(lambda ms: len(ms) >= len(records), 30, "a reply per record")
        reader.read_more(0.3)
    finally:
        reader.close()
    assert len(got) == len(records)
    for msg in got:
        t, p, o = source_of(msg)
        value = next(v for v, po in where.items() if po == (p, o))
        assert t == topic
        assert msg.value() == b'{"echo":' + value + b"}"
        assert msg.key() == (None if value == b"99" else f"k{int(value) % 3}".encode())
        assert hdr(msg, "ferry.status") == "201"
        assert hdr(msg, "ferry.attempts") == "1"
        assert hdr(msg, "ferry.route") == "rq"
        assert hdr(msg, "content-type") == "application/json"
        assert hdr(msg, "x-request-id") == "id-" + value.decode()
        assert hdr(msg, "x-absent") is None and hdr(msg, "X-Ignored") is None
        assert hdr(msg, "ferry.error") is None and hdr(msg, "ferry.truncated") is None
        if value != b"99":
            assert hdr(msg, "ferry.timestamp") == str(1700000000000 + int(value))
    # counted once the write is acknowledged, which can be after the reader saw it
    m = wait_route_metrics(f, "rq", {"ferry_route_replies_total": len(records)})
    assert route_metric(m, "ferry_route_replies_total", "rq") == len(records)


def test_long_body_is_cut_and_says_so(start_routes, receiver, kafka):
    topic, replies = unique("rcut"), unique("rcut-replies")
    receiver.default = Reply(body=b"x" * 5000)
    start_routes(route_config("rcut", [topic], receiver.url + "/in",
                              reply={"topic": replies, "max_body": "1KiB"}))
    kafka.produce(topic, [{"key": b"a", "value": b"1"}])
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        (msg,) = reader.read_until(lambda ms: len(ms) >= 1, 30, "the reply")
    finally:
        reader.close()
    assert msg.value() == b"x" * 1024
    assert hdr(msg, "ferry.truncated") == "true"
    assert hdr(msg, "ferry.status") == "200"


def test_batch_gets_one_reply_per_record(start_routes, receiver, kafka):
    topic, replies = unique("rbatch"), unique("rbatch-replies")
    receiver.default = Reply(body=b'{"batch":"ok"}')
    start_routes(route_config("rbatch", [topic], receiver.url + "/in",
                              ordering="partition",
                              batch={"max_records": 5, "linger": "200ms"},
                              reply={"topic": replies}))
    kafka.produce(topic, [{"key": b"same", "value": str(i).encode()} for i in range(10)])
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        got = reader.read_until(lambda ms: len(ms) >= 10, 30, "ten replies")
    finally:
        reader.close()
    assert all(m.value() == b'{"batch":"ok"}' and m.key() == b"same" for m in got)
    sizes = {int(hdr(m, "ferry.batch.size") or 1) for m in got}
    assert max(sizes) > 1, "no request carried more than one record"
    for m in got:
        if hdr(m, "ferry.batch.size"):
            assert 0 <= int(hdr(m, "ferry.batch.index")) < int(hdr(m, "ferry.batch.size"))
    # one key, one partition: the replies come in the records' order
    assert [source_of(m)[2] for m in got] == sorted(source_of(m)[2] for m in got)


def test_on_all_replies_to_dead_lettered_records(start_routes, receiver, kafka):
    topic, replies, dlq = unique("rall"), unique("rall-replies"), unique("rall-dlq")
    receiver.handler = lambda rec: (Reply(status=400, body=b"bad input") if rec.body == b"bad"
                                    else Reply(body=b"fine"))
    f = start_routes(route_config("rall", [topic], receiver.url + "/in",
                                  dead_letter={"topic": dlq},
                                  reply={"topic": replies, "on": "all"}))
    kafka.produce(topic, [{"key": b"k", "value": b"good"}, {"key": b"k", "value": b"bad"},
                          {"key": b"k", "value": b"good"}])
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        got = reader.read_until(lambda ms: len(ms) >= 3, 30, "three replies")
    finally:
        reader.close()
    assert [m.value() for m in got] == [b"fine", b"bad input", b"fine"]
    assert [hdr(m, "ferry.status") for m in got] == ["200", "400", "200"]
    assert hdr(got[1], "ferry.error") == "http status 400"
    assert hdr(got[0], "ferry.error") is None
    (dead,) = kafka.consume_n(dlq, 1, use_group=False)
    assert dead.value == b"bad"
    wait_route_metric(f, "ferry_route_records_dead_lettered_total", "rall", 1)


def test_order_per_key_holds_in_the_reply_topic(start_routes, receiver, kafka):
    topic, replies = unique("rord"), unique("rord-replies")
    rng = random.Random(7)
    lock = threading.Lock()

    def slow_echo(rec):
        with lock:
            delay = rng.random() * 0.01
        return Reply(body=rec.body, delay=delay)

    receiver.handler = slow_echo
    keys, total = 40, 1200
    start_routes(route_config("rord", [topic], receiver.url + "/in", ordering="key",
                              concurrency=16, reply={"topic": replies}))
    kafka.produce(topic, [{"key": f"key-{i % keys}".encode(), "value": str(i).encode()}
                          for i in range(total)])
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        got = reader.read_until(lambda ms: len(ms) >= total, 90, "a reply per record")
    finally:
        reader.close()
    per_key = defaultdict(list)
    for m in got:  # one partition's messages arrive in offset order; a key has one partition
        per_key[m.key()].append(int(m.value()))
    assert len(per_key) == keys
    for key, values in per_key.items():
        assert values == sorted(values), f"{key!r}: replies out of order: {values[:20]}"
        assert len(values) == total // keys
    # many keys were in flight together: the order is not just from one request at a time
    assert receiver.max_in_flight > 1


def test_unwritable_reply_keeps_the_record_unfinished(start_routes, receiver, kafka):
    topic, replies = unique("rbig"), unique("rbig-replies")
    group = f"ferry-{topic}"
    receiver.handler = lambda rec: Reply(body=b"y" * 1500 if rec.body == b"big" else b"ok")
    # A reply of 1500 bytes, and a producer that takes messages of at most 1200: refused.
    over = {"kafka": {"properties": {"message.max.bytes": "1200"}}}
    route = route_config("rbig", [topic], receiver.url + "/in", group=group, ordering="key",
                         reply={"topic": replies, "max_body": "4KiB"})
    first = start_routes(route, overrides=over, name="ferry-first")
    nparts = kafka.partitions(topic)
    delivered = kafka.produce(topic, [{"key": b"a", "value": b"1"}, {"key": b"a", "value": b"big"},
                                      {"key": b"a", "value": b"3"}, {"key": b"b", "value": b"4"}])
    big = next(m for m in delivered if m.value() == b"big")
    wait_route_metric(first, "ferry_route_reply_refusals_total", "rbig", 2, timeout=30)
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        # the replies of "1" and "4" are written; "big" is not, and "3" waits behind it (same key)
        got = reader.read_until(lambda ms: len(ms) >= 2, 30, "the replies of 1 and 4")
        reader.read_more(0.5)
        assert sorted(m.value() for m in got) == [b"ok", b"ok"]
        assert {source_of(m)[2] for m in got if m.key() == b"a"} == {big.offset() - 1}
        time.sleep(0.5)  # two auto-commit intervals: a commit past "big" would show now
        committed = group_committed(kafka.bootstrap, group, topic, nparts)
        assert committed.get(big.partition(), 0) <= big.offset()
        first.stop()

        # Restarted with room for it, the record is consumed, sent and answered again.
        second = start_routes(route, name="ferry-second")
        def answered(ms):
            by_offset = {source_of(m)[2]: m.value() for m in ms if m.key() == b"a"}
            return by_offset if big.offset() + 1 in by_offset else None

        by_offset = wait_until(lambda: answered(reader.read_more(0.1)), 60,
                               "the replies of big and 3")
        assert by_offset[big.offset()] == b"y" * 1500
        assert by_offset[big.offset() + 1] == b"ok"
        wait_delivered(second, "rbig", 2)
    finally:
        reader.close()


def stored_offsets(f, route, topic):
    """What ferry stored for commit, per partition of topic: {partition: offset}."""
    return {int(smp.labels["partition"]): smp.value
            for smp in f.metrics().find("ferry_route_committed_offset", route=route, topic=topic)}


def test_broker_away_replies_wait_and_none_is_lost(start_routes, start_dev_broker, receiver):
    """The broker stops answering (SIGSTOP) after the target answered and before the replies
    are written: each reply times out in the producer and is written again, no record is
    stored for commit meanwhile, and once the broker is back every record has its reply and
    the group's commits reach the end."""
    topic, replies, n = unique("raway"), unique("raway-replies"), 12
    # Both topics exist before the route joins: a topic made later waits for a rebalance.
    broker = start_dev_broker("--topic", f"{topic}:4", "--topic", f"{replies}:4")
    kafka = Kafka(broker.bootstrap)
    group = f"ferry-{topic}"
    receiver.push(*[Hang() for _ in range(n)])  # held until the broker is frozen
    # A key per record, so that all of them are at the target at once; a session far longer
    # than the freeze, so that the group outlives it; replies time out in the producer after
    # 1 s (message.timeout.ms), so writes fail while the broker is away.
    route = route_config("raway", [topic], receiver.url + "/in", group=group, concurrency=16,
                         kafka={"session.timeout.ms": "15000", "heartbeat.interval.ms": "1000"},
                         target={"timeout": "60s"}, reply={"topic": replies})
    over = {"kafka": {"brokers": broker.bootstrap,
                      "properties": {"message.timeout.ms": "1000"}}}
    f = start_routes(route, overrides=over)
    delivered = kafka.produce(topic, [{"key": f"k{i}".encode(), "value": str(i).encode()}
                                      for i in range(n)])
    receiver.wait_for(n, timeout=30)
    before = stored_offsets(f, "raway", topic)
    with frozen(broker):
        receiver.release_hung()
        wait_until(lambda: all(r.done is not None for r in receiver.requests), 10,
                   "the target to answer every record")
        f.wait_log(r"reply to .* was not stored in '%s': .*; retrying" % re.escape(replies),
                   timeout=30)
        # the target took every record, but none is finished without its reply
        assert stored_offsets(f, "raway", topic) == before
        assert route_metric(f.metrics(), "ferry_route_replies_total", "raway") == 0
    want = {(m.topic(), m.partition(), m.offset()) for m in delivered}
    reader = ReplyReader(broker.bootstrap, replies)
    try:
        got = reader.read_until(lambda ms: {source_of(m) for m in ms} >= want, 60,
                                "a reply for every record once the broker is back")
    finally:
        reader.close()
    assert {source_of(m) for m in got} == want  # duplicates allowed, strangers not
    assert all(hdr(m, "ferry.status") == "200" for m in got)
    nparts = kafka.partitions(topic)
    ends = {}
    for m in delivered:
        ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)

    def committed_to_the_end():
        got = group_committed(broker.bootstrap, group, topic, nparts)
        return all(got.get(p) == end for p, end in ends.items())

    wait_until(committed_to_the_end, 30, "the group's commits to reach the end of every partition")
    # the target got each record (once, unless a rebalance sent some again): only replies
    # were redone
    assert {r.body for r in receiver.requests} == {str(i).encode() for i in range(n)}
    f.assert_alive()


class Stream:
    """Produces values "0", "1", ... with `keys` keys at `rate` per second from a thread:
    `total` of them, or with total=None until end()."""

    def __init__(self, bootstrap, topic, total, rate, keys):
        self.produced, self.error, self._keys = 0, None, keys
        self._p, self._topic, self._total, self._rate = make_producer(bootstrap), topic, total, rate
        self._stop, self._end = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            start, i = time.monotonic(), 0
            while (self._total is None or i < self._total) and not self._end.is_set():
                if self._stop.is_set():
                    return
                lag = start + i / self._rate - time.monotonic()
                if lag > 0:
                    time.sleep(lag)
                self._p.produce(self._topic, key=f"key-{i % self._keys}".encode(),
                                value=str(i).encode())
                self._p.poll(0)
                i += 1
                self.produced = i
            if self._p.flush(30):
                self.error = "records not delivered"
        except Exception as exc:  # noqa: BLE001 - reported by join()
            self.error = repr(exc)

    def join(self, timeout=60):
        self._thread.join(timeout)
        assert not self._thread.is_alive() and self.error is None, self.error

    def end(self):
        """Produces no more and waits for the reports; returns how many were produced."""
        self._end.set()
        self.join()
        return self.produced

    def stop(self):
        self._stop.set()
        self._thread.join(30)


def test_kill_9_mid_stream_every_record_gets_a_reply(start_routes, receiver, kafka):
    topic, replies = unique("rcrash"), unique("rcrash-replies")
    total = 2000
    receiver.handler = lambda rec: Reply(body=rec.body, delay=0.005)
    route = route_config("rcrash", [topic], receiver.url + "/in", concurrency=8,
                         kafka={"session.timeout.ms": "4500", "heartbeat.interval.ms": "300"},
                         reply={"topic": replies})
    # Replies linger in the producer for 250 ms: were records finished before their reply was
    # stored, commits (every 200 ms) would pass records whose replies the kill then loses. A
    # key's next record waits for its reply: 200 keys keep up with the stream.
    over = {"kafka": {"properties": {"linger.ms": "250"}}}
    first = start_routes(route, name="ferry-first", overrides=over)
    stream = Stream(kafka.bootstrap, topic, total, rate=500, keys=200)
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        reader.read_until(lambda ms: len(ms) >= 500, 30, "500 replies before the kill")
        assert stream.produced < total, "the stream ended before the kill: nothing mid-stream"
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        start_routes(route, name="ferry-restarted", timeout=60, overrides=over)
        stream.join()
        want = set(range(total))
        got = reader.read_until(lambda ms: {int(m.value()) for m in ms} >= want, 90,
                                "a reply for every record")
    finally:
        stream.stop()
        reader.close()
    # each reply answers the record it names: the echo is the record's own value
    by_source = defaultdict(set)
    for m in got:
        by_source[source_of(m)[1:]].add(m.value())
    assert all(len(v) == 1 for v in by_source.values())
    assert len(by_source) == total


def test_email_target_replies_with_its_smtp_outcome(start_routes, kafka):
    from smtpserver import SmtpServer

    topic, replies, dlq = unique("rmail"), unique("rmail-replies"), unique("rmail-dlq")
    smtp = SmtpServer().start()
    try:
        smtp.tempfail["slow@example.com"] = 2
        smtp.reject.add("gone@example.com")
        route = route_config("rmail", [topic], "unused", dead_letter={"topic": dlq},
                             reply={"topic": replies, "on": "all"})
        route["target"] = {"smtp": {"url": smtp.url, "starttls": "off",
                                    "from": "noreply@example.com", "to": "${value.email}",
                                    "subject": "Hi", "text": "Hello"}}
        start_routes(route)
        kafka.produce(topic, [{"key": a.encode(), "value": json.dumps({"email": a}).encode()}
                              for a in ("slow@example.com", "gone@example.com",
                                        "ok@example.com")])
        reader = ReplyReader(kafka.bootstrap, replies)
        try:
            got = reader.read_until(lambda ms: len(ms) >= 3, 60, "three replies")
        finally:
            reader.close()
    finally:
        smtp.stop()
    by_key = {m.key().decode(): m for m in got}
    assert hdr(by_key["ok@example.com"], "ferry.status") == "250"
    assert hdr(by_key["slow@example.com"], "ferry.status") == "250"
    assert hdr(by_key["slow@example.com"], "ferry.attempts") == "3"  # two 451s first
    gone = by_key["gone@example.com"]
    assert hdr(gone, "ferry.status") == "550"
    assert hdr(gone, "ferry.error").startswith("smtp reply 550")
    assert gone.value().startswith(b"550")
    assert by_key["ok@example.com"].value() in (None, b"")


def test_email_reply_is_empty_after_a_refusal_libcurl_tolerated(start_routes, kafka):
    """`starttls: optional` and a server that offers STARTTLS, then refuses it with 454: the
    message goes in the clear and is accepted, and its reply carries no refusal line."""
    from smtpserver import ScriptedSmtp

    topic, replies = unique("rmail-tls"), unique("rmail-tls-replies")
    with ScriptedSmtp(starttls=True, replies={"STARTTLS": "454 4.7.0 TLS not available"}) as s:
        route = route_config("rmailtls", [topic], "unused", reply={"topic": replies, "on": "all"})
        route["target"] = {"smtp": {"url": s.url, "starttls": "optional",
                                    "from": "noreply@example.com", "to": "${value.email}",
                                    "subject": "Hi", "text": "Hello"}}
        start_routes(route)
        kafka.produce(topic, [{"key": b"ok", "value": b'{"email": "ok@example.com"}'}])
        reader = ReplyReader(kafka.bootstrap, replies)
        try:
            [got] = reader.read_until(lambda ms: len(ms) >= 1, 60, "a reply")
        finally:
            reader.close()
        assert "STARTTLS" in s.commands and s.messages == 1
    assert hdr(got, "ferry.status") == "250"
    assert got.value() in (None, b""), got.value()


def test_partitions_handed_over_keep_every_reply(start_routes, receiver, kafka):
    """A second instance joins and leaves while records flow: each hand-over drains the
    records waiting on their replies, and every record ends up with a reply."""
    topic, replies = unique("rjoin"), unique("rjoin-replies")
    receiver.handler = lambda rec: Reply(body=rec.body, delay=0.002,
                                         headers={"X-Served-By": rec.header("x-instance")})
    route = route_config("rjoin", [topic], receiver.url + "/in", concurrency=8,
                         kafka={"session.timeout.ms": "4500", "heartbeat.interval.ms": "300"},
                         target={"headers": {"X-Instance": "${env:INSTANCE}"}},
                         reply={"topic": replies, "headers": ["x-served-by"]})
    a = start_routes(route, name="ferry-a", env={"INSTANCE": "a"})
    stream = Stream(kafka.bootstrap, topic, None, rate=300, keys=100)
    reader = ReplyReader(kafka.bootstrap, replies)

    def served_by(name):
        return [m for m in reader.read_more(0.05) if hdr(m, "x-served-by") == name]

    try:
        wait_until(lambda: len(served_by("a")) >= 200, 30, "200 replies from a")
        b = start_routes(route, name="ferry-b", env={"INSTANCE": "b"}, timeout=60)
        b.wait_log(r"assigned [1-9]\d* partition", timeout=30)
        wait_until(lambda: len(served_by("b")) >= 100, 30, "100 replies from b")
        rc, _ = b.stop()
        assert rc == 0, b.describe()
        total = stream.end()
        want = {str(i).encode() for i in range(total)}
        got = reader.read_until(lambda ms: {m.value() for m in ms} >= want, 60,
                                "a reply for every record")
    finally:
        stream.stop()
        reader.close()
    assert {m.value() for m in got} == want
    a.assert_alive()


REPLY_CONFIG = """\
routes:
  - name: r
    topics: [orders]
    target: {url: "http://127.0.0.1:1/x"}
    reply:
%s
"""


@pytest.mark.parametrize("reply, key, msg", [
    ("      headers: [etag]", r"routes\[0\]\.reply", "expected a topic"),
    ("      topic: orders", r"routes\[0\]\.reply\.topic", "'orders' is one of the route's topics"),
    # replies on a topic the route reads too would be answered again, or on its dead-letter
    # topic redriven as dead letters (all three used to pass ferry check)
    ("      topic: r.retry.1\n    retry: {topics: [{delay: 1s}]}\n    dead_letter: {topic: dlq}",
     r"routes\[0\]\.reply\.topic", "'r.retry.1' is also retry topic 1 of the route"),
    ("      topic: dlq\n    dead_letter: {topic: dlq}", r"routes\[0\]\.reply\.topic",
     "'dlq' is also the dead-letter topic (a redrive would send the replies as dead letters)"),
    ("      topic: 'bad topic'", r"routes\[0\]\.reply\.topic", ""),
    ("      topic: replies\n      headers: [etag, 'x y']", r"routes\[0\]\.reply\.headers\[1\]",
     "'x y' is not a header name"),
    ("      topic: replies\n      max_body: 65MiB", r"routes\[0\]\.reply\.max_body", ""),
    ("      topic: replies\n      on: failure", r"routes\[0\]\.reply\.on", ""),
], ids=["no-topic", "own-topic", "retry-topic", "dlq-topic", "bad-topic", "bad-header", "max-body", "bad-on"])
def test_config_check_names_reply_mistakes(ferry_bin, tmp_path, reply, key, msg):
    path = tmp_path / "ferry.yaml"
    path.write_text(REPLY_CONFIG % reply)
    res = run_cli(ferry_bin, ["check", "-c", str(path)])
    assert res.returncode == 2, res.stdout + res.stderr
    assert re.search(rf"^config: {key}: .*{re.escape(msg)}", res.stderr, re.M), res.stderr


def test_config_check_refuses_a_reply_topic_the_route_subscribes_to(ferry_bin, tmp_path):
    path = tmp_path / "ferry.yaml"
    path.write_text((REPLY_CONFIG % "      topic: orders.x").replace("[orders]", '["^orders.*"]'))
    res = run_cli(ferry_bin, ["check", "-c", str(path)])
    assert res.returncode == 2, res.stdout + res.stderr
    assert re.search(r"^config: routes\[0\]\.reply\.topic: 'orders.x' is one of the route's "
                     r"topics \(it matches a pattern\)", res.stderr, re.M), res.stderr


def test_config_check_summary_names_the_reply_topic(ferry_bin, tmp_path):
    path = tmp_path / "ferry.yaml"
    path.write_text(REPLY_CONFIG % "      topic: replies\n      headers: [etag]\n      on: all")
    res = run_cli(ferry_bin, ["check", "-c", str(path)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "replies to replies" in res.stdout + res.stderr


def test_config_check_refuses_reply_headers_on_an_email_route(ferry_bin, tmp_path):
    """An e-mail server's answer has no headers: reply.headers there would copy nothing."""
    path = tmp_path / "ferry.yaml"
    cfg = (REPLY_CONFIG % "      topic: replies\n      headers: [x-id]").replace(
        'target: {url: "http://127.0.0.1:1/x"}',
        'target: {smtp: {url: "smtp://127.0.0.1:1", from: a@example.com, to: b@example.com, '
        'subject: s, text: t}}')
    path.write_text(cfg)
    res = run_cli(ferry_bin, ["check", "-c", str(path)])
    assert res.returncode == 2, res.stdout + res.stderr
    assert re.search(r"^config: routes\[0\]\.reply\.headers: an e-mail server's answer has no "
                     r"headers to copy", res.stderr, re.M), res.stderr
    path.write_text(cfg.replace("\n      headers: [x-id]", ""))
    res = run_cli(ferry_bin, ["check", "-c", str(path)])
    assert res.returncode == 0, res.stdout + res.stderr
