"""Ordering of a route's requests under a receiver that answers after random delays.

`ordering: key`: requests for one key never overlap in time and carry its records in offset
order, while different keys run in parallel (up to `concurrency`); a key that is retrying
holds up only itself. `ordering: partition`: at most one request per partition in flight, in
offset order.

Overlap is judged on the receiver's clock: a request of a key must arrive after the previous
request of that key was answered (Received.done is stamped before the answer is handed to
aiohttp, so ferry cannot have seen it earlier).
"""
import random
import threading
from collections import defaultdict

from ferrytest import Reply, WaitTimeout, route_config, route_metric, unique, wait_delivered

CONCURRENCY = 16


def random_delays(seed, low, high):
    """A receiver handler answering 200 after a random delay (seeded: reproducible)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def handler(_rec):
        with lock:
            return Reply(delay=rng.uniform(low, high))

    return handler


def lanes(requests, lane_of):
    """Envelope requests grouped by lane, each lane in arrival order: [(req, envelope)]."""
    out = defaultdict(list)
    for req in sorted(requests, key=lambda r: r.time):
        env = req.json()
        out[lane_of(env)].append((req, env))
    return out


def assert_serial_and_ordered(lane, items):
    """Within one lane: offsets strictly increase and each request starts after the previous
    one was answered."""
    offsets = [env["offset"] for _, env in items]
    assert offsets == sorted(set(offsets)), f"lane {lane!r} out of order: {offsets}"
    for (prev, _), (nxt, env) in zip(items, items[1:]):
        assert prev.done is not None and nxt.time >= prev.done, (
            f"lane {lane!r}: offset {env['offset']} arrived {prev.done - nxt.time:.4f}s "
            f"before the previous request was answered")


def test_key_ordering_under_random_latency(start_routes, receiver, kafka):
    topic = unique("order-key")
    nkeys, per_key = 48, 20
    # Keys interleaved so that each partition holds many keys, each with many records.
    records = [(f"key-{k}".encode(), f"{k}:{i}".encode())
               for i in range(per_key) for k in range(nkeys)]
    kafka.produce(topic, records)
    receiver.handler = random_delays(1, 0.0, 0.03)
    f = start_routes(route_config("okey", [topic], receiver.url + "/o", ordering="key",
                                  concurrency=CONCURRENCY, body={"mode": "envelope"}))
    wait_delivered(f, "okey", len(records))

    by_key = lanes(receiver.requests, lambda env: env["key"])
    assert len(by_key) == nkeys
    for key, items in by_key.items():
        assert_serial_and_ordered(key, items)
        # Offsets of a key are its records in production order.
        assert [env["value"] for _, env in items] == [f"{key[4:]}:{i}" for i in range(per_key)]
    # The route really ran keys in parallel, and never above its concurrency.
    assert CONCURRENCY // 2 <= receiver.max_in_flight <= CONCURRENCY, receiver.max_in_flight


def test_a_retrying_key_blocks_only_that_key(start_routes, receiver, kafka):
    topic = unique("order-retry")
    nkeys, per_key = 12, 10
    records = [{"partition": 0, "key": f"key-{k}".encode(), "value": f"{k}:{i}".encode()}
               for i in range(per_key) for k in range(nkeys)]
    kafka.produce(topic, records)
    others_ok = set()  # (key, offset) of the other keys' records answered with success
    delays = random_delays(2, 0.0, 0.01)
    rng = random.Random(3)

    # key-0 fails until every record of the other keys is through: if its retries held the
    # others back, the route would never finish. (A fixed failing time instead made the test
    # measure speed, and a busy machine is slow.)
    def handler(rec):
        env = rec.json()
        if env["key"] == "key-0":
            if len(others_ok) < (nkeys - 1) * per_key:
                return Reply(status=503)
        elif rng.random() < 0.1:  # other keys fail now and then
            return Reply(status=500)
        else:
            others_ok.add((env["key"], env["offset"]))
        return delays(rec)

    receiver.handler = handler
    f = start_routes(route_config("oretry", [topic], receiver.url + "/o", ordering="key",
                                  concurrency=CONCURRENCY, body={"mode": "envelope"},
                                  retry={"initial_backoff": "20ms", "max_backoff": "200ms",
                                         "max_attempts": 0}))
    try:
        m = wait_delivered(f, "oretry", len(records))
    except WaitTimeout as exc:
        raise AssertionError(f"{len(others_ok)} of {(nkeys - 1) * per_key} records of the other "
                             f"keys got through while key-0 was retrying: {exc}") from None
    assert route_metric(m, "ferry_route_records_retried_total", "oretry") > 0

    by_key = lanes(receiver.requests, lambda env: env["key"])
    for key, items in by_key.items():
        # attempts never go back to an earlier record; no two attempts overlap
        offsets = [env["offset"] for _, env in items]
        assert offsets == sorted(offsets), f"{key} went back: {offsets}"
        for (prev, _), (nxt, _) in zip(items, items[1:]):
            assert prev.done is not None and nxt.time >= prev.done, key
        answered_ok = [env["offset"] for req, env in items if is_success(req)]
        assert answered_ok == sorted(set(answered_ok)) and len(answered_ok) == per_key
    # Every other key finished while key-0 was still failing: one partition, no head-of-line
    # blocking behind the retrying key.
    assert by_key["key-0"][0][0].status == 503, "key-0 did not start failing"
    first_ok_key0 = min(req.time for req, _ in by_key["key-0"] if is_success(req))
    others_last = max(req.time for key, items in by_key.items() if key != "key-0"
                      for req, _ in items)
    assert others_last < first_ok_key0, (others_last, first_ok_key0)


def is_success(req):
    return req.status is not None and 200 <= req.status < 300


def test_partition_ordering_under_random_latency(start_routes, receiver, kafka):
    topic = unique("order-part")
    records = [(f"key-{i % 50}".encode(), f"v{i}".encode()) for i in range(400)]
    kafka.produce(topic, records)
    receiver.handler = random_delays(4, 0.0, 0.02)
    f = start_routes(route_config("opart", [topic], receiver.url + "/o", ordering="partition",
                                  concurrency=CONCURRENCY, body={"mode": "envelope"}))
    wait_delivered(f, "opart", len(records))

    by_part = lanes(receiver.requests, lambda env: env["partition"])
    assert len(by_part) == kafka.partitions(topic)
    total = 0
    for part, items in by_part.items():
        assert_serial_and_ordered(part, items)
        offsets = [env["offset"] for _, env in items]
        assert offsets == list(range(len(offsets)))  # every offset, once, in order
        total += len(offsets)
    assert total == len(records)
    # one in flight per partition, and the partitions did run side by side
    assert 2 <= receiver.max_in_flight <= len(by_part), receiver.max_in_flight


def test_a_batch_cut_short_keeps_partition_order(start_routes, receiver, kafka):
    """A batch whose body would pass its cap (here: small values with large headers, which
    batch.max_bytes does not count) is sent in parts, one after the other: the records cut
    from it wait until the part before them is answered, as any later records of the
    partition would."""
    topic = unique("order-cut")
    n = 200
    big = b"h" * 4000
    kafka.produce(topic, [{"partition": 0, "key": f"k{i}".encode(), "value": f"v{i}".encode(),
                           "headers": [("big", big)]} for i in range(n)])
    receiver.default = Reply(delay=0.05)
    f = start_routes(route_config("ocut", [topic], receiver.url + "/o", ordering="partition",
                                  concurrency=CONCURRENCY, body={"mode": "envelope"},
                                  batch={"max_records": 100, "max_bytes": "1KiB",
                                         "linger": "50ms"}))
    wait_delivered(f, "ocut", n)
    reqs = sorted(receiver.requests, key=lambda r: r.time)
    offsets = [env["offset"] for r in reqs for env in r.json()]
    assert offsets == list(range(n))  # every record once, in order
    assert len(reqs) > n // 100 + 1, "no batch was cut"  # 100 records' headers pass the cap
    for prev, nxt in zip(reqs, reqs[1:]):
        assert prev.done is not None and nxt.time >= prev.done, "two parts were under way at once"
    assert receiver.max_in_flight == 1
