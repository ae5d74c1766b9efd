"""Retry topics: non-blocking delayed retries. A record whose attempts in place ran out is
parked on the route's next retry topic, comes back after its delay, and goes to the dead-letter
topic after the last one; its partition is not blocked meanwhile; under ordering: key, later
records of its key wait behind it; and a crash while records are parked loses nothing.
"""
import json
import signal
import threading
import time

from ferrytest import (Reply, route_config, route_metric, unique, wait_route_metric,
                       wait_until)


def headers_of(record):
    return {k: v for k, v in record.headers}


class FailFirst:
    """A receiver handler that answers 500 to the first `times` requests whose body is in
    `values` (each counted on its own), and 200 to everything else."""

    def __init__(self, values, times):
        self.left = {v: times for v in values}
        self.lock = threading.Lock()

    def __call__(self, rec):
        with self.lock:
            if self.left.get(rec.body, 0) > 0:
                self.left[rec.body] -= 1
                return Reply(status=500, body=b"not now")
        return Reply()


def successes(receiver):
    return [r for r in receiver.requests if r.status == 200]


def retry_config(name, topic, url, delays, **over):
    return route_config(name, [topic], url,
                        retry={"max_attempts": 1, "initial_backoff": "10ms",
                               "topics": [{"delay": d} for d in delays]},
                        **over)


def test_a_record_passes_both_retry_topics_and_its_partition_goes_on(start_routes, receiver,
                                                                      kafka):
    name, topic = unique("rtp"), unique("rtp-src")
    receiver.handler = FailFirst({b"bad"}, 2)
    f = start_routes(retry_config(name, topic, receiver.url + "/x", ["2s", "3s"],
                                  ordering="partition"))
    t0 = time.time()
    kafka.produce(topic, [{"partition": 0, "key": b"b", "value": b"bad"}])
    first = wait_until(lambda: [r for r in receiver.requests if r.body == b"bad"], 30,
                       "the first attempt")[0]
    # The partition goes on while the record is parked: later records are delivered at once.
    kafka.produce(topic, [{"partition": 0, "key": b"g", "value": b"good-%d" % i}
                          for i in range(5)])
    wait_until(lambda: len([r for r in successes(receiver) if r.body.startswith(b"good")]) == 5,
               30, "the records behind the parked one")
    good_done = max(r.done for r in successes(receiver) if r.body.startswith(b"good"))
    attempts = wait_until(lambda: [r for r in receiver.requests if r.body == b"bad"]
                          if len(successes_of(receiver, b"bad")) else None, 60,
                          "the parked record to come back twice and succeed")
    assert [a.status for a in attempts] == [500, 500, 200]
    keys = {a.header("Idempotency-Key") for a in attempts}
    assert len(keys) == 1 and keys.pop().startswith(topic + "-0-"), "one key for every attempt"
    assert good_done < attempts[1].time, "the partition waited for the parked record"
    # Each comeback no earlier than its topic's delay after the failure that parked it.
    assert attempts[1].time - first.done >= 2.0 - 0.05
    assert attempts[2].time - attempts[1].done >= 3.0 - 0.05

    (p1,) = kafka.consume_n(f"{name}.retry.1", 1, use_group=False)
    (p2,) = kafka.consume_n(f"{name}.retry.2", 1, use_group=False)
    src_offset = p2_offset = None
    for stage, rec in ((1, p1), (2, p2)):
        h = headers_of(rec)
        assert rec.key == b"b" and rec.value == b"bad"
        assert h["ferry.retry.stage"] == str(stage).encode()
        assert h["ferry.attempts"] == str(stage).encode()
        assert h["ferry.error"] == b"http status 500"
        assert h["ferry.topic"] == topic.encode()
        assert h["ferry.partition"] == b"0"
        assert h["ferry.route"] == name.encode()
        assert int(h["ferry.retry.due"]) >= int(t0 * 1000) + (2000 if stage == 1 else 5000)
        assert rec.partition == 0, "parked on the partition with its original number"
        src_offset = src_offset or h["ferry.offset"]
        assert h["ferry.offset"] == src_offset, "the original offset is kept"
    m = wait_route_metric(f, "ferry_route_records_delivered_total", name, 6)
    assert route_metric(m, "ferry_route_records_parked_total", name) == 2
    assert route_metric(m, "ferry_route_records_dead_lettered_total", name) == 0


def successes_of(receiver, body):
    return [r for r in successes(receiver) if r.body == body]


def test_after_the_last_retry_topic_comes_the_dead_letter_topic(start_routes, receiver, kafka):
    name, topic, dlq = unique("rtd"), unique("rtd-src"), unique("rtd-dlq")
    receiver.default = Reply(status=503, body=b"down")
    f = start_routes(retry_config(name, topic, receiver.url + "/x", ["300ms", "300ms"],
                                  dead_letter={"topic": dlq}))
    kafka.produce(topic, [{"partition": 1, "key": b"k", "value": b"v"}])
    (dead,) = kafka.consume_n(dlq, 1, use_group=False, timeout=60)
    h = headers_of(dead)
    assert h["ferry.topic"] == topic.encode(), "dead-lettered under its original coordinates"
    assert h["ferry.partition"] == b"1"
    assert h["ferry.attempts"] == b"3"
    assert h["ferry.http_status"] == b"503"
    assert b"ferry.retry.stage" not in h and "ferry.retry.stage" not in h
    assert [k for k, _ in dead.headers].count("ferry.topic") == 1
    assert len(receiver.requests) == 3
    m = wait_route_metric(f, "ferry_route_records_dead_lettered_total", name, 1)
    assert route_metric(m, "ferry_route_records_parked_total", name) == 2


def test_key_order_holds_with_retry_topics(start_routes, receiver, kafka):
    name, topic = unique("rto"), unique("rto-src")
    receiver.handler = FailFirst({b"k:1"}, 1)
    f = start_routes(retry_config(name, topic, receiver.url + "/x", ["2s"], ordering="key",
                                  concurrency=8))
    producer = kafka.producer()
    kafka.produce(topic, [{"key": b"k", "value": b"k:1"}], producer=producer)
    wait_until(lambda: [r for r in receiver.requests if r.body == b"k:1"], 30, "k:1 sent")
    kafka.produce(topic, [{"key": b"k", "value": b"k:%d" % i} for i in range(2, 6)]
                  + [{"key": b"other", "value": b"o:%d" % i} for i in range(5)],
                  producer=producer)
    wait_until(lambda: len(successes_of(receiver, b"k:5")) == 1, 60, "k:5 delivered")
    order = [r.body for r in successes(receiver) if r.body.startswith(b"k:")]
    assert order == [b"k:%d" % i for i in range(1, 6)], order
    others = [r for r in successes(receiver) if r.body.startswith(b"o:")]
    assert len(others) == 5
    k1 = successes_of(receiver, b"k:1")[0]
    assert max(r.done for r in others) < k1.time, "other keys did not wait for k"
    m = wait_route_metric(f, "ferry_route_records_delivered_total", name, 10)
    # k:1 parked after its attempt; k:2..5 parked behind it
    assert route_metric(m, "ferry_route_records_parked_total", name) == 5
    # set just after the delivery that let the key go
    wait_until(lambda: route_metric(f.metrics(), "ferry_route_retry_parked_keys", name) == 0, 10,
               "no key left parked")


def test_kill_9_while_records_are_parked_loses_nothing(start_routes, receiver, kafka):
    name, topic = unique("rtk"), unique("rtk-src")
    values = [b"v%03d" % i for i in range(40)]
    receiver.handler = FailFirst(set(values), 1)
    cfg = retry_config(name, topic, receiver.url + "/x", ["4s"], ordering="key")
    f = start_routes(cfg)
    kafka.produce(topic, [{"key": b"key%d" % (i % 7), "value": v} for i, v in enumerate(values)])
    wait_route_metric(f, "ferry_route_records_parked_total", name, 40, timeout=60)
    f.send_signal(signal.SIGKILL)
    assert f.wait(10) == -signal.SIGKILL
    f2 = start_routes(cfg, name="ferry-again")
    wait_until(lambda: {r.body for r in successes(receiver)} >= set(values) or None, 90,
               "every parked record delivered after the restart")
    m = f2.metrics()
    assert route_metric(m, "ferry_route_records_dead_lettered_total", name) == 0


def test_two_instances_share_the_retry_topics(start_routes, make_receiver, kafka):
    """Two instances of one route (range assignor: partition p of the source and of the retry
    topic go to one of them): every parked record is delivered once the second one joined and
    the partitions moved, and key order holds per key."""
    name, topic = unique("rt2"), unique("rt2-src")
    a, b = make_receiver("a"), make_receiver("b")
    values = [b"%d:%d" % (k, i) for i in range(6) for k in range(8)]
    fail = FailFirst({b"%d:0" % k for k in range(8)}, 1)
    a.handler = b.handler = fail
    cfg_a = retry_config(name, topic, a.url + "/x", ["2s"], ordering="key")
    cfg_b = dict(cfg_a, target={"url": b.url + "/x"})
    fa = start_routes(cfg_a, name="ferry-a")
    kafka.produce(topic, [{"key": b"key%d" % k, "value": b"%d:0" % k} for k in range(8)])
    wait_route_metric(fa, "ferry_route_records_parked_total", name, 8, timeout=60)
    fb = start_routes(cfg_b, name="ferry-b")
    kafka.produce(topic, [{"key": b"key%d" % int(v.split(b":")[0]), "value": v}
                          for v in values if not v.endswith(b":0")])

    def delivered():
        got = [r.body for r in successes(a) + successes(b)]
        return got if set(got) >= set(values) else None

    wait_until(delivered, 90, "every record delivered by one instance or the other")
    # In the order the two receivers saw them, each key's records were first delivered in
    # order (a record may come twice when its partition moved before its offset was
    # committed: at least once).
    firsts = {}
    for r in sorted(successes(a) + successes(b), key=lambda r: r.time):
        k, i = r.body.split(b":")
        if int(i) not in firsts.setdefault(k, []):
            firsts[k].append(int(i))
    for k, seq in firsts.items():
        assert seq == sorted(seq), f"key {k!r} first delivered out of order: {seq}"
    for f in (fa, fb):
        assert route_metric(f.metrics(), "ferry_route_records_dead_lettered_total", name) == 0


def test_a_record_too_large_to_park_stays_unfinished(start_routes, receiver, kafka):
    # The producer refuses a parked copy larger than its message.max.bytes. The record is kept
    # and tried again every 100 ms, never lost nor committed past, and the log says it is a
    # retry topic that refused it (it used to say "dead-letter topic", "refused dead letters").
    topic = unique("parkbig")
    receiver.default = Reply(status=500)
    f = start_routes(retry_config("parkbig", topic, receiver.url + "/p", ["1s"],
                                  dead_letter={"topic": unique("parkbig-dlq")}),
                     overrides={"kafka": {"properties": {"message.max.bytes": "3000"}}})
    kafka.produce(topic, [{"partition": 0, "key": b"k", "value": b"x" * 2900}])
    f.wait_log(r"retry topic 1: cannot write .* to 'parkbig\.retry\.1'.*; refused parked records "
               r"are tried again every 100 ms")
    wait_route_metric(f, "ferry_route_dead_letter_refusals_total", "parkbig", 3)
    m = f.metrics()
    assert route_metric(m, "ferry_route_records_parked_total", "parkbig") == 0
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "parkbig") == 0
    assert route_metric(m, "ferry_route_committed_offset", "parkbig", topic=topic, partition="0") <= 0


def test_a_due_time_past_the_delay_waits_only_the_delay(start_routes, receiver, kafka):
    # A parked record is due at most its retry topic's delay from now. One whose due time lies
    # an hour ahead (written by an instance whose clock is ahead, or by someone else) used to
    # hold its retry partition, and every record parked behind it, for that hour.
    topic = unique("due")
    f = start_routes(retry_config("due", topic, receiver.url + "/d", ["1s"]))
    now_ms = int(time.time() * 1000)
    meta = {"ferry.retry.stage": 1, "ferry.retry.due": now_ms + 3_600_000, "ferry.attempts": 1,
            "ferry.error": "http status 500", "ferry.topic": topic, "ferry.partition": 0,
            "ferry.offset": 7, "ferry.route": "due"}
    kafka.produce("due.retry.1", [{"partition": 0, "key": b"k", "value": b"late",
                                   "headers": [(k, str(v).encode()) for k, v in meta.items()]}])
    (req,) = receiver.wait_for(1, timeout=10)
    assert req.body == b"late" and req.header("idempotency-key") == f"{topic}-0-7"
    wait_route_metric(f, "ferry_route_records_delivered_total", "due", 1)


def test_the_rebuild_reader_has_the_routes_own_kafka_properties(start_routes, receiver, kafka):
    """The consumer that reads the retry topics back at each assignment is made with the route's
    own `kafka:` properties (SASL, say), as the route's consumer is: librdkafka's listing of its
    configuration (debug: conf) shows the route's client.rack."""
    name, topic = unique("rtc"), unique("rtc-src")
    cfg = retry_config(name, topic, receiver.url + "/x", ["1s"], ordering="key",
                       kafka={"debug": "conf", "client.rack": f"rack-of-{name}"})
    f = start_routes(cfg, overrides={"log": {"level": "debug"}})
    f.wait_log(rf"inst=ferry-{name}-retry-rebuild#consumer-\d+ .*client\.rack = rack-of-{name}",
               timeout=30)


def test_a_record_from_a_retry_topic_is_sent_as_the_original(start_routes, receiver, kafka):
    """Templates, the envelope and forwarded headers see the original record on every attempt,
    not its parked copy: same coordinates and timestamp, and none of the parking's headers."""
    name, topic = unique("rtv"), unique("rtv-src")
    receiver.push(Reply(status=503, body=b"not now"))
    url = receiver.url + "/x/${topic}/${partition}/${offset}/${timestamp}"
    start_routes(retry_config(name, topic, url, ["200ms"], body={"mode": "envelope"},
                              target={"forward_headers": True}))
    ts = 1700000000123
    (sent,) = kafka.produce(topic, [{"partition": 1, "key": b"k", "value": b'{"n":1}',
                                     "timestamp": ts, "headers": [("x-own", b"a")]}])
    offset = sent.offset()
    attempts = wait_until(lambda: receiver.requests if len(successes(receiver)) else None, 30,
                          "the parked record to come back and succeed")
    assert [a.status for a in attempts] == [503, 200]
    for a in attempts:
        assert a.path == f"/x/{topic}/1/{offset}/{ts}"
        env = json.loads(a.body)
        assert (env["topic"], env["partition"], env["offset"], env["timestamp"]) == \
            (topic, 1, offset, ts)
        assert env["headers"] == {"x-own": "a"}
        assert a.header("x-own") == "a"
        assert not [h for h in a.headers if h.startswith("ferry.")], a.headers
        assert a.header("Idempotency-Key") == f"{topic}-1-{offset}"
