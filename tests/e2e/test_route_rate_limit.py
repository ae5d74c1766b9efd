"""Rate limits of routes, measured at the receiver from the arrival times of the requests.

A route with `rate_limit: {requests_per_second: 50}` and a backlog far larger than it may send
sends 50 requests a second, one second after another; two routes naming one shared limiter
stay under it together, and a route's own limit holds inside the shared one. While a route
waits for its limit its buffers fill and its partitions pause (backpressure), as with a slow
target.

The receiver's clock is Python's, in a thread that may run late on a busy machine, which moves
requests from one second to the next without changing how many arrived in all. So each test
checks the steady rate (requests after the first second over the time they took, where the
limiter's burst no longer counts) tightly, and the per-second counts with the issue's
tolerance (+-10%) for nearly every second and a looser bound for all of them.
"""
from ferrytest import (Reply, route_config, route_metric, unique, wait_delivered, wait_route_metric,
                       wait_until)

RATE = 50
WINDOW_S = 30  # the window: long enough for a second-by-second picture


def per_second(times, start, seconds):
    """Counts of the times in each whole second from start, for `seconds` seconds."""
    counts = [0] * seconds
    for t in times:
        i = int(t - start)
        if 0 <= i < seconds:
            counts[i] += 1
    return counts


def steady_rate(times):
    """Requests per second after the first second (where a saved-up burst may go): the slope
    of a least-squares line through (arrival time, count so far), which a few requests held up
    at either end (a late thread on a busy machine) barely move."""
    times = sorted(times)
    after = [t for t in times if t >= times[0] + 1.0]
    assert len(after) >= 10, f"too few requests to measure a rate: {len(times)}"
    mean_t = sum(after) / len(after)
    mean_i = (len(after) - 1) / 2
    cov = sum((t - mean_t) * (i - mean_i) for i, t in enumerate(after))
    var = sum((t - mean_t) ** 2 for t in after)
    return cov / var


def check_seconds(counts, rate, what):
    """The issue's +-10% for at least 90% of the seconds: a receiver thread or a sender that
    runs late on a busy machine moves requests from one second to the next, so a second or
    two may be off without the limiter being at fault. check_never_ahead() bounds them all."""
    near = [c for c in counts if abs(c - rate) <= rate * 0.1]
    assert len(near) >= 0.9 * len(counts), f"{what}: per-second counts {counts}"


def check_never_ahead(times, rate, burst, what, late=0.3):
    """From the first request on, the requests that arrived by any time are no more than the
    rate allows plus the saved-up burst. Lateness cannot hide a breach: a request arrives after
    it was sent, so arrivals can only fall behind the sends; only the first request arriving
    late (by up to `late` seconds) could make later ones look early."""
    times = sorted(times)
    for i, t in enumerate(times):
        allowed = rate * (t - times[0] + late) + burst + 1
        assert i + 1 <= allowed, (f"{what}: {i + 1} requests within {t - times[0]:.3f}s of the "
                                  f"first, the limit allows {allowed:.0f}")


def test_requests_per_second_over_30_seconds(start_routes, receiver, kafka):
    topic = unique("rl")
    n = RATE * (WINDOW_S + 3)
    kafka.produce(topic, [(f"k{i % 16}".encode(), f"v{i}".encode()) for i in range(n)])
    f = start_routes(route_config("rl", [topic], receiver.url + "/in",
                                  rate_limit={"requests_per_second": RATE},
                                  limits={"max_buffered_records": 500}))
    # Waiting for tokens fills the buffers, and full buffers pause the partitions. (Until the
    # pause, a second after they filled, a full route still takes one record per loop turn,
    # and a rate-limited route turns at every token: about RATE more.)
    paused = wait_route_metric(f, "ferry_route_paused", "rl", 1, timeout=WINDOW_S)
    assert route_metric(paused, "ferry_route_buffered_records", "rl") <= 500 + 2 * RATE
    receiver.wait_for(n, timeout=WINDOW_S + 60)
    m = wait_delivered(f, "rl", n)

    times = sorted(r.time for r in receiver.requests)
    # The seconds after the first, up to the last whole one.
    counts = per_second(times, times[0] + 1.0, int(times[-1] - times[0] - 1.0))
    rate = steady_rate(times)
    assert abs(rate - RATE) <= RATE * 0.05, f"steady rate {rate:.2f}/s, expected {RATE}: {counts}"
    assert len(counts) >= WINDOW_S - 1, counts
    check_seconds(counts, RATE, "one route at 50/s")
    check_never_ahead(times, RATE, RATE * 0.1, "one route at 50/s")  # burst: 100ms
    # The route waited for its limit most of the time.
    assert route_metric(m, "ferry_route_rate_limited_seconds_total", "rl") >= WINDOW_S / 2
    assert route_metric(m, "ferry_route_rate_limit_waits_total", "rl") >= RATE * WINDOW_S / 2
    assert len(receiver.requests) == n, "each record once"


def test_retries_count_against_the_limit(start_routes, receiver, kafka):
    """The target sees retries too, so they take tokens like first attempts."""
    rate, n, failures = 20, 100, 60
    topic = unique("rl-retry")
    receiver.statuses(*[503] * failures)  # each one costs a retry
    kafka.produce(topic, [(f"k{i % 16}".encode(), f"v{i}".encode()) for i in range(n)])
    f = start_routes(route_config("rlr", [topic], receiver.url + "/in",
                                  rate_limit={"requests_per_second": rate},
                                  retry={"initial_backoff": "10ms", "max_backoff": "50ms"}))
    receiver.wait_for(n + failures, timeout=(n + failures) / rate + 60)
    m = wait_delivered(f, "rlr", n)

    times = [r.time for r in receiver.requests]
    assert len(times) == n + failures
    assert route_metric(m, "ferry_route_records_retried_total", "rlr") == failures
    check_never_ahead(times, rate, rate * 0.1, "first attempts and retries")
    rate_seen = steady_rate(times)
    assert abs(rate_seen - rate) <= rate * 0.1, f"steady rate {rate_seen:.2f}/s, expected {rate}"


def test_records_per_second_counts_the_records_of_batches(start_routes, receiver, kafka):
    """A batch takes as many tokens as it has records: 100 records/s in batches of up to 10."""
    rate, n = 100, 1500
    topic = unique("rl-batch")
    kafka.produce(topic, [(f"k{i % 16}".encode(), f"v{i}".encode()) for i in range(n)])
    f = start_routes(route_config("rlb", [topic], receiver.url + "/in",
                                  batch={"max_records": 10, "linger": "5ms"},
                                  rate_limit={"records_per_second": rate}))
    wait_until(lambda: sum(len(r.json()) for r in receiver.requests) >= rate * 12, 60,
               "12 seconds' worth of records")
    reqs = sorted(receiver.requests, key=lambda r: r.time)
    # One point per record: the records of a batch arrive together.
    times = [r.time for r in reqs for _ in r.json()]
    check_never_ahead(times, rate, rate * 0.1 + 10, "records in batches")  # + one batch of debt
    rate_seen = steady_rate(times)
    assert abs(rate_seen - rate) <= rate * 0.1, f"{rate_seen:.1f} records/s, expected {rate}"
    assert max(len(r.json()) for r in reqs) > 1, "no batch formed"
    assert f.metrics().find("ferry_route_rate_limited_seconds_total", route="rlb")


def test_shared_limiter_holds_for_routes_together(start_routes, receiver, kafka):
    """Routes a and b share 40 requests/s; a also has 10/s of its own. Together they send 40
    a second, a about 10 and b the rest."""
    shared, own_a, window = 40, 10, 15
    topics = {"a": unique("rl-a"), "b": unique("rl-b")}
    for name, topic in topics.items():
        kafka.produce(topic, [(f"k{i % 16}".encode(), f"{name}{i}".encode())
                              for i in range(shared * (window + 10))])
    routes = [
        route_config("a", [topics["a"]], receiver.url + "/a",
                     rate_limit={"requests_per_second": own_a, "limiter": "partner"}),
        route_config("b", [topics["b"]], receiver.url + "/b", rate_limit={"limiter": "partner"}),
    ]
    f = start_routes(*routes, overrides={"limiters": [{"name": "partner",
                                                       "requests_per_second": shared}]})

    def both_busy_long_enough():
        reqs = receiver.requests
        firsts = [min((r.time for r in reqs if r.path == p), default=None) for p in ("/a", "/b")]
        if None in firsts:
            return False
        start = max(firsts) + 1.0  # both routes running, past their bursts
        return reqs[-1].time >= start + window + 0.5 and start

    start = wait_until(both_busy_long_enough, window + 60, "both routes sending for the window")
    reqs = [r for r in receiver.requests if start <= r.time < start + window]
    counts = per_second([r.time for r in reqs], start, window)
    check_seconds(counts, shared, "routes a and b together under 40/s")
    # Two routes that find the limiter ready at once may both go: one more each.
    check_never_ahead([r.time for r in receiver.requests], shared, shared * 0.1 + 2,
                      "routes a and b together")
    check_never_ahead([r.time for r in receiver.requests if r.path == "/a"], own_a, 1,
                      "route a under its own limit")
    total = len(reqs) / window
    a = sum(1 for r in reqs if r.path == "/a") / window
    b = sum(1 for r in reqs if r.path == "/b") / window
    assert abs(total - shared) <= shared * 0.05, f"together {total:.2f}/s, expected {shared}"
    assert own_a * 0.5 <= a <= own_a * 1.1, f"route a at {a:.2f}/s, its own limit is {own_a}"
    assert b >= (shared - own_a) * 0.9, f"route b at {b:.2f}/s, expected the rest"
    m = f.metrics()
    for name in ("a", "b"):
        assert route_metric(m, "ferry_route_rate_limited_seconds_total", name) > 0, name


def test_check_summarises_limits(ferry_bin, tmp_path):
    from ferrytest import run_cli, to_yaml

    cfg = {
        "kafka": {"brokers": "127.0.0.1:9092"},
        "limiters": [{"name": "partner", "requests_per_second": 40, "burst": "1s"}],
        "routes": [
            route_config("a", ["t"], "http://127.0.0.1:9/a",
                         rate_limit={"requests_per_second": 10, "bytes_per_second": "1MiB",
                                     "limiter": "partner"}),
            route_config("b", ["t"], "http://127.0.0.1:9/b", rate_limit={"limiter": "partner"}),
        ],
    }
    path = tmp_path / "limits.yaml"
    path.write_text(to_yaml(cfg))
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any(l.strip() == "route:  a: 1 topic(s) -> POST http://127.0.0.1:9/a, rate limit "
               "10 requests/s, 1MiB/s, burst 100ms, limiter partner" for l in lines), res.stdout
    assert any(l.strip() == "route:  b: 1 topic(s) -> POST http://127.0.0.1:9/b, limiter partner"
               for l in lines), res.stdout
    assert any(l.strip() == "limiter: partner: 40 requests/s, burst 1s, shared by 2 route(s)"
               for l in lines), res.stdout


def test_unknown_limiter_names_file_line_and_key(ferry_bin, tmp_path):
    from ferrytest import run_cli

    path = tmp_path / "bad.yaml"
    path.write_text("limiters:\n"
                    "  - {name: partner, requests_per_second: 40}\n"
                    "routes:\n"
                    "  - name: a\n"
                    "    topics: [t]\n"
                    "    target: {url: 'http://127.0.0.1:9/'}\n"
                    "    rate_limit:\n"
                    "      limiter: parnter\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res
    assert (f"config: routes[0].rate_limit.limiter: unknown limiter 'parnter': limiters are "
            f"'partner' ({path}:8)") in res.stderr.splitlines(), res.stderr


def test_a_full_route_sends_each_batch_as_soon_as_the_limit_allows(start_routes, receiver, kafka):
    # A full route sends its partial batches without lingering. When the rate limit holds some
    # back, the route wakes when the limit allows the next one, not when the batch would have
    # stopped lingering (here a minute, cut to the loop's longest sleep of a second). The
    # receiver answers after 3 s, so the route stays full while its batches go out: one per
    # partition at 10 requests/s (one at once, then one every 0.1 s) arrives over
    # (partitions - 1) x 0.1 s, not (partitions - 1) x 1 s.
    topic = unique("rl-full")
    parts = kafka.partitions(topic)
    assert parts >= 3, "too few partitions to tell a wake on time from a sleep"
    per_part = 4
    receiver.default = Reply(delay=3.0)
    kafka.produce(topic, [{"value": f"{p}-{i}".encode(), "partition": p}
                          for p in range(parts) for i in range(per_part)])
    f = start_routes(route_config("rlfull", [topic], receiver.url + "/in",
                                  batch={"max_records": 100, "linger": "60s"},
                                  limits={"max_buffered_records": parts * per_part},
                                  rate_limit={"requests_per_second": 10},
                                  io_threads=1))  # libcurl's timers do not wake the worker
    wait_delivered(f, "rlfull", parts * per_part, timeout=40)
    times = sorted(r.time for r in receiver.requests)
    assert len(times) == parts, f"{len(times)} requests for {parts} partitions"
    span, bound = times[-1] - times[0], 0.1 * (parts - 1) + 1.2
    assert span < bound, f"batches came over {span:.2f} s (bound {bound:.1f} s)"
