"""Adaptive concurrency against a receiver whose capacity drops from 20 concurrent requests to
5 and back (beyond its capacity it answers 503): ferry_route_concurrency_limit follows within a
few seconds each way, and every record is delivered.
"""
import time

from ferrytest import Reply, route_config, route_metric, unique, wait_until

RECORDS = 20000
FOLLOW_S = 15  # the issue asks for "a few seconds"; room for a busy machine


def limit(ferry):
    return route_metric(ferry.metrics(), "ferry_route_concurrency_limit", "adapt")


def wait_limit(ferry, ok, what):
    start = time.monotonic()
    wait_until(lambda: ok(limit(ferry)), FOLLOW_S, what, max_interval=0.1)
    return time.monotonic() - start


def test_the_limit_follows_the_capacity_of_the_target(start_routes, receiver, kafka):
    topic = unique("adapt")
    capacity = {"now": 20}
    receiver.handler = lambda _req: (Reply(status=503) if receiver.in_flight > capacity["now"]
                                     else Reply(delay=0.05))
    f = start_routes(route_config("adapt", [topic], receiver.url + "/a", concurrency=40,
                                  adaptive_concurrency={"enabled": True},
                                  retry={"max_attempts": 0}))
    assert limit(f) == 1  # it starts at min
    kafka.produce(topic, [str(i).encode() for i in range(RECORDS)])

    up = wait_limit(f, lambda n: n >= 14, "the limit to grow towards 20")
    capacity["now"] = 5
    down = wait_limit(f, lambda n: n <= 7, "the limit to fall towards 5")
    capacity["now"] = 20
    back = wait_limit(f, lambda n: n >= 14, "the limit to grow back towards 20")
    print(f"limit followed: up {up:.1f} s, down {down:.1f} s, back up {back:.1f} s")

    m = f.metrics()
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "adapt") == 0
    assert receiver.max_in_flight <= 40
