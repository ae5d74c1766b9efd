"""What a route does when the target fails: retries (5xx, 429 with Retry-After, timeouts,
connection refused), dead letters for permanent errors, and a commit watermark that never
passes a record that was not delivered.
"""
import random
import re
import time

from ferrytest import (Drop, Hang, Reply, free_port, group_committed, retry_after, route_config,
                       route_metric, unique, wait_route_metric, wait_route_metrics, wait_until)


def metric(ferry, name, route, **labels):
    return route_metric(ferry.metrics(), name, route, **labels)


def headers_of(record):
    """A consumed record's headers as {name: last value}, and the names in order."""
    return dict(record.headers), [k for k, _ in record.headers]


def test_500_then_success_is_retried(start_routes, receiver, kafka):
    topic = unique("r500")
    receiver.statuses(500, 500)
    f = start_routes(route_config("r500", [topic], receiver.url + "/x"))
    kafka.produce(topic, [(b"k", b"payload")])
    reqs = receiver.wait_for(3)
    m = wait_route_metric(f, "ferry_route_records_delivered_total", "r500", 1)

    assert [r.status for r in reqs] == [500, 500, 200]
    assert all(r.body == b"payload" for r in reqs)
    assert route_metric(m, "ferry_route_records_retried_total", "r500") == 2
    assert route_metric(m, "ferry_route_requests_total", "r500", **{"class": "5xx"}) == 2
    assert route_metric(m, "ferry_route_requests_total", "r500", **{"class": "2xx"}) == 1
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "r500") == 0
    # full-jitter backoff: the retries wait at most initial_backoff, then twice that
    assert reqs[1].time - reqs[0].done < 1.0 and reqs[2].time - reqs[1].done < 1.0
    f.wait_log(r"target is failing: http status 500")
    # one summary when the 10 s window ends, not a line per failure
    f.wait_log(r"2 of 3 requests failed in the last \d+ s \(500: 2\)", timeout=30)


def cpu_seconds(ferry):
    return ferry.metrics().get("process_cpu_seconds_total")


def test_429_retry_after_is_respected(start_routes, receiver, kafka):
    topic = unique("r429")
    receiver.push(retry_after(2))  # the first request gets 429 with Retry-After: 2
    f = start_routes(route_config("r429", [topic], receiver.url + "/x/${key}", ordering="key"))
    producer = kafka.producer()  # one producer, so that the second batch goes out at once
    kafka.produce(topic, [{"partition": 0, "key": b"first", "value": b"1"}], producer=producer)
    first = receiver.wait_for(1)[0]
    assert first.status == 429
    # The route waits for the Retry-After time without spinning (it used to burn a core
    # here). The measure starts now, before the produce below, which can take a good part of
    # the pause on a busy machine.
    cpu0, t0 = cpu_seconds(f), time.monotonic()
    # Records of other keys produced during the pause wait too: the target gets nothing
    # before the Retry-After time has passed.
    kafka.produce(topic, [{"partition": p, "key": f"other{p}".encode(), "value": b"2"}
                          for p in range(4)], producer=producer)
    time.sleep(max(0.0, first.time + 1.8 - time.monotonic()))
    cpu1, t1 = cpu_seconds(f), time.monotonic()
    reqs = receiver.wait_for(6, timeout=20)
    wait_route_metric(f, "ferry_route_records_delivered_total", "r429", 5)

    later = sorted(reqs[1:], key=lambda r: r.time)
    # ferry counts from when it read the answer, which is after first.time; its clock has
    # millisecond resolution
    assert later[0].time - first.time >= 2.0 - 0.002, [r.time - first.time for r in later]
    retried = [r for r in later if r.path == "/x/first"]
    assert len(retried) == 1 and retried[0].status == 200
    # Nothing else went out: one request per record after the pause, the 429 one retried once.
    assert sorted(r.path for r in receiver.requests) == sorted(
        ["/x/first"] * 2 + [f"/x/other{p}" for p in range(4)]), [r.path for r in receiver.requests]
    assert metric(f, "ferry_route_records_retried_total", "r429") == 1
    assert t1 - t0 > 1.0, "the pause was over before it could be measured"
    assert cpu1 - cpu0 < 0.3 * (t1 - t0), f"{cpu1 - cpu0:.2f} CPU s in {t1 - t0:.2f} s of pause"


def test_503_with_an_http_date_retry_after(start_routes, receiver, kafka):
    topic = unique("r503")
    answers = []

    def handler(_rec):  # the date is made when the request comes, 3 s ahead
        if answers:
            return Reply()
        when = time.gmtime(time.time() + 3)
        answers.append(when)
        return Reply(status=503, headers={
            "Retry-After": time.strftime("%a, %d %b %Y %H:%M:%S GMT", when)})

    receiver.handler = handler
    f = start_routes(route_config("r503", [topic], receiver.url + "/x"))
    kafka.produce(topic, [(b"k", b"v")])
    first, second = receiver.wait_for(2, timeout=20)
    wait_route_metric(f, "ferry_route_records_delivered_total", "r503", 1)
    assert first.status == 503 and second.status == 200
    # an HTTP date has 1 s resolution: at least 2 s of the 3 s are left when ferry reads it
    assert second.time - first.time >= 1.9, second.time - first.time


def test_permanent_400_is_dead_lettered_and_the_route_goes_on(start_routes, receiver, kafka):
    topic, dlq = unique("r400"), unique("r400-dlq")
    answer = b'{"error":"validation failed","field":"amount"}'
    receiver.push(Reply(status=400, body=answer), path="/x/bad")
    f = start_routes(route_config("r400", [topic], receiver.url + "/x/${key}",
                                  dead_letter={"topic": dlq, "response_max": 16}))
    bad = {"partition": 2, "key": b"bad", "value": b'{"amount": -1}',
           "timestamp": 1_600_000_000_000,
           "headers": [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                       ("app", b"shop")]}
    before = [{"partition": 2, "key": f"a{i}".encode(), "value": b"ok"} for i in range(3)]
    after = [{"partition": 2, "key": f"b{i}".encode(), "value": b"ok"} for i in range(3)]
    delivered = kafka.produce(topic, before + [bad] + after)
    bad_offset = next(m.offset() for m in delivered if m.key() == b"bad")

    (dead,) = kafka.consume_n(dlq, 1, use_group=False)
    m = wait_route_metrics(f, "r400", {"ferry_route_records_delivered_total": 6,
                                       "ferry_route_records_dead_lettered_total": 1})
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "r400") == 1
    assert route_metric(m, "ferry_route_records_retried_total", "r400") == 0
    assert len([r for r in receiver.requests if r.path == "/x/bad"]) == 1  # never retried

    assert dead.key == b"bad" and dead.value == b'{"amount": -1}'
    h, names = headers_of(dead)
    assert names[:2] == ["traceparent", "app"]  # the record's own headers first
    assert h["ferry.error"] == b"http status 400"
    assert h["ferry.http_status"] == b"400"
    assert h["ferry.attempts"] == b"1"
    assert h["ferry.topic"] == topic.encode()
    assert h["ferry.partition"] == b"2"
    assert h["ferry.offset"] == str(bad_offset).encode()
    assert h["ferry.timestamp"] == b"1600000000000"
    assert h["ferry.route"] == b"r400"
    assert h["ferry.response"] == answer[:16]  # capped at response_max
    # The watermark moved past the dead letter: everything up to the end is committed.
    committed = wait_until(
        lambda: metric(f, "ferry_route_committed_offset", "r400", topic=topic, partition="2")
        == len(delivered), 10, "the committed offset to pass the dead letter")
    assert committed
    f.wait_log(r"dead-lettered .*\[2\]@%d to %s" % (bad_offset, dlq))


def test_retries_exhausted_go_to_the_dead_letter_topic(start_routes, receiver, kafka):
    topic, dlq = unique("rmax"), unique("rmax-dlq")
    receiver.default = Reply(status=502, body=b"bad gateway")
    f = start_routes(route_config("rmax", [topic], receiver.url + "/x",
                                  retry={"max_attempts": 3, "initial_backoff": "10ms"},
                                  dead_letter={"topic": dlq}))
    kafka.produce(topic, [(b"k", b"v")])
    (dead,) = kafka.consume_n(dlq, 1, use_group=False)
    h, _ = headers_of(dead)
    assert h["ferry.attempts"] == b"3"
    assert h["ferry.http_status"] == b"502"
    assert h["ferry.error"] == b"http status 502 (gave up after 3 attempts)"
    assert h["ferry.response"] == b"bad gateway"
    assert len(receiver.requests) == 3
    assert metric(f, "ferry_route_records_retried_total", "rmax") == 2


def test_without_dead_letter_topic_the_watermark_stops_at_a_failing_record(
        start_routes, receiver, kafka):
    topic = unique("nodlq")
    group = f"ferry-{topic}"
    state = {"fixed": False}

    def handler(rec):
        if rec.path == "/x/poison" and not state["fixed"]:
            return Reply(status=400, body=b"no")
        return Reply()

    receiver.handler = handler
    f = start_routes(route_config("nodlq", [topic], receiver.url + "/x/${key}", group=group,
                                  retry={"max_attempts": 2, "max_backoff": "300ms"}))
    records = [{"partition": 0, "key": f"k{i}".encode(), "value": b"v"} for i in range(3)]
    records.append({"partition": 0, "key": b"poison", "value": b"v"})
    records += [{"partition": 0, "key": f"k{i}".encode(), "value": b"v"} for i in range(3, 10)]
    delivered = kafka.produce(topic, records)
    poison = next(m.offset() for m in delivered if m.key() == b"poison")
    assert poison == 3

    # Everything else is delivered; the poison record keeps being retried, never dropped.
    wait_route_metric(f, "ferry_route_records_delivered_total", "nodlq", 10)
    wait_until(lambda: len([r for r in receiver.requests if r.path == "/x/poison"]) >= 4, 15,
               "the failing record to be retried after its attempts ran out")

    def stuck_at_poison():
        m = f.metrics()
        stored = route_metric(m, "ferry_route_committed_offset", "nodlq", topic=topic,
                              partition="0")
        return stored == poison and group_committed(kafka.bootstrap, group, topic, 1) == {
            0: poison}

    wait_until(stuck_at_poison, 10, "stored and committed offsets at the failing record")
    # Two more failed attempts and at least five commit intervals (200 ms) later, still
    # there: the record is still being retried while the watermark holds.
    def poison_tries():
        return len([r for r in receiver.requests if r.path == "/x/poison"])

    tries, t_stuck = poison_tries(), time.monotonic()
    wait_until(lambda: poison_tries() >= tries + 2 and time.monotonic() - t_stuck >= 1.0, 15,
               "two more attempts at the failing record, 1 s on")
    assert stuck_at_poison(), (f.metrics().find("ferry_route_committed_offset"),
                               group_committed(kafka.bootstrap, group, topic, 1))
    assert metric(f, "ferry_route_records_dead_lettered_total", "nodlq") == 0
    f.wait_log(r"target is failing: http status 400")

    # Once the target accepts it, the watermark moves to the end.
    state["fixed"] = True
    wait_until(lambda: group_committed(kafka.bootstrap, group, topic, 1) == {0: len(records)},
               10, "the committed offset to reach the end once the record is delivered")
    assert metric(f, "ferry_route_records_delivered_total", "nodlq") == len(records)


def test_hung_receiver_times_out_and_is_retried(start_routes, receiver, kafka):
    topic = unique("hang")
    receiver.push(Hang())
    f = start_routes(route_config("hang", [topic], receiver.url + "/x",
                                  target={"timeout": "1s"}))
    kafka.produce(topic, [(b"k", b"v")])
    first, second = receiver.wait_for(2, timeout=15)
    wait_route_metric(f, "ferry_route_records_delivered_total", "hang", 1)
    m = wait_route_metric(f, "ferry_route_request_duration_seconds_count", "hang", 2)

    assert first.status is None  # never answered
    assert second.status == 200 and second.body == b"v"
    # ferry gave up on the hung request after the 1 s target timeout, by its own clock. The
    # receiver's clock cannot tell: it reads a request some time after ferry sent it, and
    # on a busy machine that can be most of a second.
    duration = "ferry_route_request_duration_seconds_bucket"
    assert route_metric(m, duration, "hang", le="1") <= 1, m.find(duration, route="hang")
    assert route_metric(m, duration, "hang", le="5") == 2, m.find(duration, route="hang")
    assert route_metric(m, "ferry_route_requests_total", "hang", **{"class": "error"}) == 1
    assert route_metric(m, "ferry_route_records_retried_total", "hang") == 1
    f.wait_log(r"target is failing: .*timed out")


def test_a_dropped_connection_is_retried(start_routes, receiver, kafka):
    topic = unique("drop")
    receiver.push(Drop(), Drop(delay=0.2))
    f = start_routes(route_config("drop", [topic], receiver.url + "/x"))
    kafka.produce(topic, [(b"k", b"v")])
    reqs = receiver.wait_for(3)
    m = wait_route_metric(f, "ferry_route_records_delivered_total", "drop", 1)
    assert [r.status for r in reqs] == [None, None, 200]
    assert route_metric(m, "ferry_route_requests_total", "drop", **{"class": "error"}) == 2
    assert route_metric(m, "ferry_route_records_retried_total", "drop") == 2


def test_connection_refused_is_retried_until_the_receiver_appears(
        start_routes, make_receiver, kafka):
    topic = unique("refused")
    port = free_port()  # nothing listens there yet
    f = start_routes(route_config("refused", [topic], f"http://127.0.0.1:{port}/late",
                                  retry={"max_backoff": "200ms", "max_attempts": 0}))
    kafka.produce(topic, [(f"k{i}".encode(), f"v{i}".encode()) for i in range(5)])
    wait_route_metric(f, "ferry_route_requests_total", "refused", 10, **{"class": "error"})
    f.wait_log(r"target is failing: .*(refused|connect)")
    assert metric(f, "ferry_route_records_delivered_total", "refused") == 0

    receiver = make_receiver("late", port=port)
    got = receiver.wait_for(5, timeout=15)
    wait_route_metric(f, "ferry_route_records_delivered_total", "refused", 5)
    assert sorted(r.body for r in got) == [f"v{i}".encode() for i in range(5)]
    assert metric(f, "ferry_route_records_dead_lettered_total", "refused") == 0
    # after a whole 10 s window of requests without a failure
    recover_with_a_trickle(f, kafka, topic)


def recover_with_a_trickle(f, kafka, topic, timeout=45):
    """Produces a record every 0.3 s until the route logs that its target recovered, which takes
    a whole 10 s window of requests without a failure (a window without any says nothing)."""
    deadline = time.monotonic() + timeout
    while not any("target recovered: none of the last" in line for line in f.log_lines()):
        assert time.monotonic() < deadline, "no 'target recovered' line"
        kafka.produce(topic, [b"trickle"])
        time.sleep(0.3)


def test_five_percent_failures_write_a_few_summary_lines(start_routes, receiver, kafka):
    """With one request in 20 failing (500, retried) and one in 20 refused for good (400,
    dead-lettered), the route logs when the target starts failing, one summary per 10 s
    window, and the recovery after a quiet window: not a line per failure (it used to log
    "target is failing" and "target recovered" for nearly every one, and every dead letter)."""
    topic, dlq = unique("flood"), unique("flood-dlq")
    total = 2000
    rng = random.Random(11)

    def answer(_req):
        x = rng.random()
        return Reply(status=500) if x < 0.05 else Reply(status=400) if x < 0.10 else Reply()

    receiver.handler = answer
    f = start_routes(route_config("flood", [topic], receiver.url + "/f", concurrency=8,
                                  dead_letter={"topic": dlq}))
    started = time.monotonic()
    kafka.produce(topic, [str(i).encode() for i in range(total)])

    def finished():
        m = f.metrics()
        return (route_metric(m, "ferry_route_records_delivered_total", "flood")
                + route_metric(m, "ferry_route_records_dead_lettered_total", "flood")) >= total

    wait_until(finished, 60, f"{total} records delivered or dead-lettered")
    failed = sum(1 for r in receiver.requests if r.status != 200)
    assert failed >= 100, f"only {failed} failed requests: the test proves nothing"
    f.wait_log(r"requests failed in the last \d+ s \((500|400): \d+, (400|500): \d+\)", timeout=30)
    receiver.handler = None  # the target is well again
    recover_with_a_trickle(f, kafka, topic)
    elapsed = time.monotonic() - started
    route_lines = [line for line in f.log_lines()
                   if re.search(r"level=(warn|error)\b", line) and "inst=flood" in line]
    # per 10 s window: at most three lines about the target and one about dead letters
    bound = 4 * (int(elapsed // 10) + 1)
    print(f"{failed} failed requests, {len(route_lines)} warning lines in {elapsed:.0f} s "
          f"(bound {bound})")
    assert len(route_lines) <= bound, "\n".join(route_lines[:20])
    dead = [line for line in route_lines if "dead-lettered" in line]
    assert dead, "no line about the dead letters"
    assert len(dead) <= int(elapsed // 10) + 1, "\n".join(dead)
