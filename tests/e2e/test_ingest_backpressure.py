"""Ingest under pressure: a broker that stops answering, a full in-flight budget, a full
producer queue, and SIGTERM with requests in flight.

Each test runs its own `ferry dev-broker` and freezes it with SIGSTOP: its sockets stay open
but nothing answers, which is what a hung or partitioned broker looks like to a client. SIGCONT
brings it back. Every wait is bounded; the broker is always thawed before the fixture stops it.

A frozen block of a test takes well under a second on an idle machine and several seconds on a
busy one, so where a test needs the records to outlive the block, their delivery timeout is far
longer than the block (30 s) and the shutdown timeout longer still; only the tests of what
happens when that timeout passes use a short one, and then nothing in the block waits for it.
"""
import http.client
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ferrytest import Kafka, parse_prometheus, unique, wait_until
from test_ingest import VND_BINARY, VND_JSON, assert_error, assert_offsets, ingest_cfg, post


def all_threads_stopped(pid):
    """True when every thread of pid is in the stopped state ('T' in /proc)."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # a thread that just ended
            continue
        states.append(stat[stat.rindex(")") + 2])
    return bool(states) and all(s == "T" for s in states)


@contextmanager
def frozen(broker):
    """The broker stops answering inside the block (SIGSTOP) and resumes after it.

    kill() returns before the process has stopped: the kernel wakes one thread to take the
    signal, and on a busy machine the broker's other threads can go on answering until that
    one gets a CPU. So the block starts only once every thread is seen stopped."""
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all_threads_stopped(broker.pid), 30, "the broker to stop (SIGSTOP)")
        yield
    finally:
        os.kill(broker.pid, signal.SIGCONT)


def own_broker_cfg(ferry_config, broker, **kw):
    """An ingest config on a broker of the test's own."""
    extra = kw.pop("extra", {})
    extra.setdefault("kafka", {})["brokers"] = broker.bootstrap
    return ingest_cfg(ferry_config, extra=extra, **kw)


def gauge(f, name):
    return parse_prometheus(f.get("/metrics").text).get(name)


def warm_up(f, topic):
    """One delivered record, so the producer knows the topic before the broker freezes."""
    resp = post(f, f"/topics/{topic}", {"records": [{"value": "warm"}]})
    assert resp.status in (200, 202), resp.text
    wait_until(lambda: gauge(f, "ferry_ingest_in_flight_records") == 0, 30, "the warm-up record")


def test_broker_down_answers_503_then_recovers(run_ferry, ferry_config, start_dev_broker):
    broker = start_dev_broker()
    topic = unique("down")
    f = run_ferry(own_broker_cfg(ferry_config, broker, topics=[topic], delivery_timeout="2s"))
    warm_up(f, topic)
    with frozen(broker):
        t0 = time.monotonic()
        resp = post(f, f"/topics/{topic}", {"records": [{"value": 1}, {"key": "k", "value": 2}]},
                    timeout=60)
        waited = time.monotonic() - t0
        assert resp.status == 503, resp.text
        assert resp.headers.get("retry-after") == "1", resp.headers
        body = resp.json()
        assert body["error_code"] == 50002 and "timed out" in body["message"], body
        assert [o["error_code"] for o in body["offsets"]] == [50002, 50002], body
        assert all(o["partition"] is None and o["offset"] is None for o in body["offsets"])
        assert all("timed out" in o["error"] for o in body["offsets"]), body
        assert 1.5 < waited < 30, waited  # the delivery timeout (2 s), not a hang
        assert f.get("/healthz", timeout=15).status == 200  # the server threads were never held
    # ferry noted the failures: the two records and the one request. Read before the
    # requests below, one of which may itself time out (and count) if it goes while the
    # producer reconnects on a busy machine.
    def noted():
        m = parse_prometheus(f.get("/metrics").text)
        return (m.get("ferry_ingest_records_failed_total", endpoint="rest_proxy"),
                m.get("ferry_ingest_requests_total", endpoint="rest_proxy", status="503"))
    wait_until(lambda: noted() == (2, 1), 30, "2 failed records and one 503 counted")
    # Back up: requests succeed again.
    wait_until(lambda: post(f, f"/topics/{topic}", {"records": [{"value": 3}]}).status == 200,
               60, "a produce to succeed after the broker came back")
    f.wait_log(r"level=warn sub=ingest inst=rest_proxy .*2 records were not delivered")
    f.assert_alive()


def test_in_flight_budget_answers_429_and_memory_stays_bounded(run_ferry, ferry_config,
                                                               start_dev_broker):
    broker = start_dev_broker()
    topic = unique("budget")
    limit = 64 * 1024
    # The 6 records must stay in flight for the whole frozen block (hundreds of requests):
    # a delivery timeout inside it would empty the budget early.
    f = run_ferry(own_broker_cfg(ferry_config, broker, topics=[topic], ack="accepted",
                                 delivery_timeout="30s",
                                 limits={"max_in_flight_bytes": "64KiB"},
                                 extra={"server": {"shutdown_timeout": "40s"}}))
    warm_up(f, topic)
    value = "v" * 10000
    body = {"records": [{"value": value}]}
    rss_before = gauge(f, "process_resident_memory_bytes")
    with frozen(broker):
        statuses = [post(f, f"/topics/{topic}", body).status for _ in range(6)]
        assert statuses == [202] * 6, statuses  # 6 x (10 KB + overhead) fit in 64 KiB
        resp = post(f, f"/topics/{topic}", body)
        assert_error(resp, 429, 429, r"max_in_flight_bytes")
        assert resp.headers.get("retry-after") == "1", resp.headers
        # Hammering a full budget costs nothing: every request is turned away at once.
        for _ in range(200):
            assert post(f, f"/topics/{topic}", body).status == 429
        assert gauge(f, "ferry_ingest_in_flight_bytes") <= limit
        assert gauge(f, "ferry_ingest_in_flight_records") == 6
        rss_during = gauge(f, "process_resident_memory_bytes")
    assert rss_during - rss_before < 32 * 1024 * 1024, (rss_before, rss_during)
    # Once the broker answers, the budget empties and requests are taken again.
    wait_until(lambda: gauge(f, "ferry_ingest_in_flight_bytes") == 0, 30, "the budget to empty")
    assert post(f, f"/topics/{topic}", body).status == 202
    m = parse_prometheus(f.get("/metrics").text)
    assert m.get("ferry_ingest_rejected_total", reason="backpressure") == 201
    assert m.get("ferry_ingest_requests_total", endpoint="rest_proxy", status="429") == 201
    got = Kafka(broker.bootstrap).consume_n(topic, 8, use_group=False)
    assert sum(1 for r in got if r.value == f'"{value}"'.encode()) == 7


def test_full_producer_queue_answers_429(run_ferry, ferry_config, start_dev_broker):
    broker = start_dev_broker()
    topic = unique("qfull")
    # The queued records must not time out (and leave the queue) inside the frozen block.
    f = run_ferry(own_broker_cfg(
        ferry_config, broker, topics=[topic], ack="accepted", delivery_timeout="30s",
        extra={"kafka": {"properties": {"queue.buffering.max.messages": "5",
                                        "batch.num.messages": "1"}},
               "server": {"shutdown_timeout": "40s"}}))
    warm_up(f, topic)
    three = {"records": [{"value": "YQ=="}, {"value": "Yg=="}, {"value": "Yw=="}]}
    with frozen(broker):
        assert post(f, f"/topics/{topic}", three, VND_BINARY).status == 202
        # Two of these three fit the queue: the third is refused in the answer.
        resp = post(f, f"/topics/{topic}", three, VND_BINARY)
        assert resp.status == 202, resp.text
        codes = [o["error_code"] for o in resp.json()["offsets"]]
        assert codes == [None, None, 42901], resp.text
        resp = post(f, f"/topics/{topic}", three, VND_BINARY)
        assert_error(resp, 429, 42901, "queue is full")
        assert resp.headers.get("retry-after") == "1"
    m = parse_prometheus(f.get("/metrics").text)
    assert m.get("ferry_ingest_rejected_total", reason="queue_full") == 1
    got = Kafka(broker.bootstrap).consume_n(topic, 6, use_group=False)
    assert sorted(r.value for r in got if r.value != b'"warm"') == [b"a", b"a", b"b", b"b", b"c"]


def send_concurrently(f, path, bodies, content_type=VND_JSON):
    """Starts one POST per body on its own thread; returns the pool and the futures."""
    pool = ThreadPoolExecutor(max_workers=len(bodies))
    futures = [pool.submit(post, f, path, b, content_type, None, 90) for b in bodies]
    return pool, futures


def test_sigterm_answers_every_request_in_flight(run_ferry, ferry_config, start_dev_broker):
    broker = start_dev_broker()
    topic = unique("drain")
    # Every request must still wait for Kafka when the broker thaws: their records may not
    # time out during the frozen block.
    cfg = own_broker_cfg(ferry_config, broker, topics=[topic], delivery_timeout="30s",
                         extra={"server": {"shutdown_timeout": "60s"}})
    f = run_ferry(cfg)
    warm_up(f, topic)
    bodies = [{"records": [{"key": f"k{i}", "value": i}, {"value": -i}]} for i in range(8)]
    host, port = f.listen.rsplit(":", 1)
    keep = http.client.HTTPConnection(host, int(port), timeout=10)  # a keep-alive connection
    keep.request("GET", "/healthz")
    assert keep.getresponse().read()
    with frozen(broker):
        pool, futures = send_concurrently(f, f"/topics/{topic}", bodies)
        wait_until(lambda: gauge(f, "ferry_ingest_in_flight_requests") == 8, 30,
                   "8 requests waiting for Kafka")
        f.send_signal(signal.SIGTERM)
        f.wait_log(r"waiting for 8 requests to be acknowledged")
        # A connection that was open already may still ask: it is turned away, not parked.
        keep.request("POST", f"/topics/{topic}", body=json.dumps(bodies[0]),
                     headers={"Content-Type": VND_JSON})
        late = keep.getresponse()
        assert late.status == 503 and b"shutting down" in late.read()
        keep.close()

        def refused():
            try:
                f.get("/healthz", timeout=1)
                return False
            except OSError:
                return True
        wait_until(refused, 30, "new connections to be refused after SIGTERM")
        assert not any(fu.done() for fu in futures)
    # The broker answers now: every request gets its acknowledgement, then ferry exits.
    results = [fu.result(timeout=60) for fu in futures]
    pool.shutdown()
    for r in results:
        assert_offsets(r, 2)
    assert f.wait(40) == 0, f.describe()
    got = Kafka(broker.bootstrap).consume_n(topic, 17, use_group=False)
    assert len(got) == 17


def test_sigterm_with_broker_gone_still_answers(run_ferry, ferry_config, start_dev_broker):
    broker = start_dev_broker()
    topic = unique("gone")
    # The 4 requests must all be seen in flight before their delivery timeout answers them;
    # the shutdown timeout is far longer, so an exit well before it shows ferry did not wait
    # for it once every request was answered.
    cfg = own_broker_cfg(ferry_config, broker, topics=[topic], delivery_timeout="8s",
                         extra={"server": {"shutdown_timeout": "90s"}})
    f = run_ferry(cfg)
    warm_up(f, topic)
    with frozen(broker):
        pool, futures = send_concurrently(f, f"/topics/{topic}",
                                          [{"records": [{"value": i}]} for i in range(4)])
        wait_until(lambda: gauge(f, "ferry_ingest_in_flight_requests") == 4, 30,
                   "4 requests waiting for Kafka")
        t0 = time.monotonic()
        f.send_signal(signal.SIGTERM)
        results = [fu.result(timeout=60) for fu in futures]
        pool.shutdown()
        for r in results:
            assert r.status == 503, r.text
            assert r.json()["offsets"][0]["error_code"] == 50002
        rc = f.wait(60)
        assert rc == 0, f.describe()
        assert time.monotonic() - t0 < 60  # not the 90 s shutdown timeout
