"""A route's circuit breaker: a target that is down for 20 s gets no requests beyond the probes
while the breaker is open, the route pauses its partitions and holds no more than its limits,
and once the target is back everything is delivered, nothing lost and nothing dead-lettered.
"""
import json
import threading
import time

from ferrytest import Reply, route_config, route_metric, unique, wait_until

DOWN_S = 20
PROBES = 2
CONCURRENCY = 4
MAX_BUFFERED = 200


def circuit(ferry, state):
    return route_metric(ferry.metrics(), "ferry_route_circuit_state", "brk", state=state)


def transitions(metrics, to):
    return route_metric(metrics, "ferry_route_circuit_transitions_total", "brk", to=to)


def test_target_down_20_s_opens_the_breaker_and_loses_nothing(start_routes, receiver, kafka):
    topic, dlq = unique("brk"), unique("brk-dlq")
    down = threading.Event()
    down.set()
    receiver.handler = lambda _req: Reply(status=503) if down.is_set() else Reply()
    f = start_routes(route_config(
        "brk", [topic], receiver.url + "/b", concurrency=CONCURRENCY,
        dead_letter={"topic": dlq},
        limits={"max_buffered_records": MAX_BUFFERED},
        circuit_breaker={"enabled": True, "consecutive_failures": 5, "open": "2s",
                         "max_open": "4s", "probes": PROBES}))
    kafka.produce(topic, [str(i).encode() for i in range(300)])
    f.wait_log(r"circuit open: \d+ requests failed in a row; no requests and partitions paused",
               timeout=30)
    opened = time.monotonic()
    at_open = len(receiver.requests)
    m = wait_until(lambda: (lambda m: m if route_metric(m, "ferry_route_paused", "brk") == 1
                            else None)(f.metrics()), 10, "the partitions paused")
    assert route_metric(m, "ferry_route_circuit_state", "brk", state="closed") == 0
    ready = f.get("/readyz")
    assert ready.status == 200
    assert "route brk: circuit" in json.loads(ready.text)["checks"]["routes"], ready.text

    # Records produced while it is open wait in Kafka: the route holds no more than its limit.
    kafka.produce(topic, [str(i).encode() for i in range(300, 600)])
    highest = 0
    while time.monotonic() - opened < DOWN_S:
        m = f.metrics()
        highest = max(highest, route_metric(m, "ferry_route_buffered_records", "brk"))
        time.sleep(0.5)
    m = f.metrics()
    half_opens = transitions(m, "half_open")
    during = len(receiver.requests) - at_open
    # while down: only probes (at most PROBES each time it turned half-open), plus what was
    # already under way when it opened
    assert half_opens >= 2, f"turned half-open only {half_opens} times in {DOWN_S} s"
    assert during <= half_opens * PROBES + CONCURRENCY, \
        f"{during} requests while open, {half_opens} half-open periods"
    # the limit, and the one record a full route still takes per loop turn (at least once a
    # second) so that group events queued behind records are served (route.c, headroom())
    assert highest <= MAX_BUFFERED + DOWN_S, f"{highest} records buffered, limit {MAX_BUFFERED}"
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "brk") == 0

    down.clear()
    wait_until(lambda: {r.body for r in receiver.requests if r.status == 200}
               >= {str(i).encode() for i in range(600)}, 60, "every record delivered")
    m = f.metrics()
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "brk") == 0
    assert route_metric(m, "ferry_route_circuit_state", "brk", state="closed") == 1
    assert transitions(m, "closed") >= 1
    f.wait_log(r"circuit closed: \d+ probe request\(s\) succeeded")
    wait_until(lambda: route_metric(f.metrics(), "ferry_route_paused", "brk") == 0, 10,
               "consumption resumed")
    # one line per transition, not per request
    lines = [line for line in f.log_lines() if "circuit " in line]
    assert len(lines) == sum(transitions(m, s) for s in ("open", "half_open", "closed")), lines


def test_a_quiet_topic_still_closes_the_breaker(start_routes, receiver, kafka):
    """One record and a target that is down: the breaker opens with nothing else buffered.
    Half-open, consumption resumes so that later records can be probes too; with nothing else
    to send it closes once the probe it had succeeded (it used to keep the partitions paused
    and wait for good, and later to wait for three probes)."""
    topic = unique("brkq")
    down = threading.Event()
    down.set()
    receiver.handler = lambda _req: Reply(status=503) if down.is_set() else Reply()
    f = start_routes(route_config(
        "brkq", [topic], receiver.url + "/q", retry={"max_attempts": 0},
        circuit_breaker={"enabled": True, "consecutive_failures": 3, "open": "1s",
                         "max_open": "2s", "probes": 3}))
    kafka.produce(topic, [b"first"])
    f.wait_log(r"circuit open: 3 requests failed in a row", timeout=30)
    down.clear()
    wait_until(lambda: any(r.body == b"first" and r.status == 200 for r in receiver.requests),
               30, "the first record delivered by a probe")
    # One probe succeeded and nothing is left to send: it closes without the other two (and
    # /readyz is ready again), rather than stay half-open until more records come.
    wait_until(lambda: route_metric(f.metrics(), "ferry_route_circuit_state", "brkq",
                                    state="closed") == 1, 10, "the breaker closed, idle")
    assert f.get("/readyz").status == 200
    kafka.produce(topic, [b"second", b"third", b"fourth"])
    wait_until(lambda: {r.body for r in receiver.requests if r.status == 200}
               >= {b"first", b"second", b"third", b"fourth"}, 30, "the later records delivered")
    wait_until(lambda: route_metric(f.metrics(), "ferry_route_circuit_state", "brkq",
                                    state="closed") == 1, 10, "the breaker closed")
