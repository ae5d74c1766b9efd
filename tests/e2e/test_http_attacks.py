"""The HTTP listener under hostile clients: malformed and oversized requests, slow clients,
bodies that never end, pipelining, path tricks on every route, an auth matrix over every
endpoint, and secrets kept out of logs and /metrics. docs/security.md says what is promised.

Malformed requests go over raw sockets: an HTTP client library would refuse to send them.
"""
import re
import select
import socket
import time

import pytest

from ferrytest import free_port, http_request, route_config, unique, wait_until

KEY_A = "attack-key-a-0123456789"      # writes topic A, reads table T
KEY_B = "attack-key-b-abcdefghijkl"    # writes topic B, reads nothing
WRONG = "attack-key-wrong-987654321"

# Seconds ferry's connection_timeout is set to, and how long a test waits for it to act.
CONN_TIMEOUT_S = 2
CLOSE_BOUND_S = 20


def attack_config(ferry_config, auth=True, **server):
    """Ingest (REST Proxy on A and B, a webhook), a table on A, a route on A, and API keys."""
    a, b = unique("atk-a"), unique("atk-b")
    cfg = ferry_config({
        "server": {"connection_timeout": f"{CONN_TIMEOUT_S}s", **server},
        "log": {"level": "debug"},
        "ingest": {
            "rest_proxy": {"topics": [a, b]},
            "webhooks": [{"name": "w", "path": "/hooks/w", "topic": a}],
            "limits": {"max_body": "64KiB"},
            "delivery_timeout": "3s",
        },
        "tables": [{"name": "t", "topic": a}],
        "routes": [route_config("r", [a], f"http://127.0.0.1:{free_port()}/x",
                                dead_letter={"topic": unique("atk-dlq")})],
    })
    if auth:
        cfg["ingest"]["auth"] = {"keys": [
            {"name": "ka", "key": KEY_A, "topics": [a], "tables": ["t"]},
            {"name": "kb", "key": KEY_B, "topics": [b]},
        ]}
    return cfg, a, b


def raw(f, data, timeout=10, shut=True):
    """Sends data on a new connection and reads until ferry closes it or timeout passes (then
    what came so far). shut: half-close after sending, as a client that is done would."""
    with socket.create_connection((f.host, f.port), timeout=timeout) as s:
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # ferry refused and closed before reading it all: read what it answered
        return read_all(s, timeout)


def read_all(s, timeout):
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, OSError):
            break
        if not chunk:
            break
        out += chunk
    return out


def wait_closed(s, timeout):
    """Reads from s until ferry closes it; returns (closed within timeout, what was read)."""
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return False, out
        except ConnectionResetError:
            return True, out
        if not chunk:
            return True, out
        out += chunk
    return False, out


def statuses(reply):
    """The status codes of every response in reply, in order."""
    return [int(m) for m in re.findall(rb"(?:^|\n)HTTP/1\.[01] (\d{3})", reply)]


def assert_still_serving(f):
    f.assert_alive()
    assert f.get("/healthz").status == 200


# ---- malformed and oversized requests ----

MALFORMED = [
    ("garbage", b"GARBAGE\r\n\r\n"),
    ("no-version", b"GET /healthz\r\n\r\n"),
    ("bad-version", b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("spaces", b"GET  /healthz  HTTP/1.1 \r\nHost: x\r\n\r\n"),
    ("nul-in-line", b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("header-no-colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ("huge-uri", b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("huge-header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n"),
    ("many-headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"),
    ("bad-content-length", b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
    ("huge-content-length", b"POST /topics/t HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 99999999999999999999999\r\n\r\n"),
    ("two-content-lengths", b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Content-Length: 2\r\n\r\nab"),
    ("bad-chunk", b"POST /topics/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nabc\r\n0\r\n\r\n"),
    ("binary", bytes(range(256)) * 4),
]


# libmicrohttpd 0.9.75 (Debian 12) takes these; ferry reads a header value only up to a NUL. Answered or refused, they must not hurt the server; a NUL cannot stretch a key.
TOLERATED = [
    ("bare-lf", b"GET /healthz HTTP/1.1\nHost: x\n\n", (200,)),  # RFC 9112 2.2 allows it
    ("header-nul", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", (200,)),
    ("auth-nul", b"POST /hooks/w HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
     b"Authorization: Bearer " + KEY_A[:-1].encode() + b"\x00" + KEY_A[-1:].encode()
     + b"\r\n\r\n", (400, 401)),
]


def test_malformed_requests_are_refused_and_the_server_keeps_serving(run_ferry, ferry_config):
    cfg, _, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    for name, data in MALFORMED:
        reply = raw(f, data)
        got = statuses(reply)
        # Refused with a 4xx/505, or the connection closed without an answer; never a 2xx or
        # a 5xx of ferry's own making.
        assert all(400 <= s < 500 or s == 505 for s in got), f"{name}: {reply[:300]!r}"
        assert_still_serving(f)
    for name, data, allowed in TOLERATED:
        reply = raw(f, data)
        assert all(s in allowed for s in statuses(reply)), f"{name}: {reply[:300]!r}"
        assert_still_serving(f)
    f.assert_no_sanitizer_report()


def header_request(n):
    """GET /healthz with one header whose value is n bytes."""
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * n + b"\r\n\r\n"


def test_connection_memory_bounds_the_headers_and_can_be_raised(run_ferry, ferry_config):
    # server.connection_memory (default 16KiB) holds a request's line and headers: a 12,000-byte
    # header fits, a 20,000-byte one is refused (431), until the setting is raised.
    f = run_ferry(ferry_config())
    assert statuses(raw(f, header_request(12_000))) == [200]
    assert statuses(raw(f, header_request(20_000))) == [431]
    assert_still_serving(f)
    f.stop()
    f = run_ferry(ferry_config({"server": {"connection_memory": "64KiB"}}))
    assert statuses(raw(f, header_request(20_000))) == [200]
    assert statuses(raw(f, header_request(70_000))) == [431]
    f.assert_no_sanitizer_report()


# ---- slow clients ----

def test_slowloris_does_not_starve_others_and_timeouts_close(run_ferry, ferry_config):
    cfg, _, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    held = []
    try:
        for _ in range(64):
            s = socket.create_connection((f.host, f.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        # Others are answered while those are held open.
        for _ in range(5):
            t0 = time.monotonic()
            assert f.get("/healthz", timeout=5).status == 200
            assert time.monotonic() - t0 < 5
        # Silent past connection_timeout: ferry closes every one of them.
        for s in held:
            closed, rest = wait_closed(s, CLOSE_BOUND_S)
            assert closed, "a silent half-sent request was not closed"
            assert all(st >= 400 for st in statuses(rest)), rest
    finally:
        for s in held:
            s.close()
    assert_still_serving(f)


def test_idle_connection_closed_after_connection_timeout(run_ferry, ferry_config):
    cfg, _, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never end
        closed, rest = wait_closed(s, CLOSE_BOUND_S)
        elapsed = time.monotonic() - t0
    assert closed, "not closed"
    assert not statuses(rest) or all(st >= 400 for st in statuses(rest)), rest
    assert CONN_TIMEOUT_S - 0.5 <= elapsed < CLOSE_BOUND_S, elapsed


# ---- bodies that never end ----

def test_body_that_never_ends_is_closed_by_the_timeout(run_ferry, ferry_config):
    cfg, a, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    head = (f"POST /topics/{a} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
            "Content-Type: application/vnd.kafka.json.v2+json\r\n").encode()
    for extra in (b"Content-Length: 1000\r\n\r\n{\"records\":[",
                  b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"records\":[{\"v\r\n"):
        with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as s:
            t0 = time.monotonic()
            s.sendall(head + extra)
            closed, rest = wait_closed(s, CLOSE_BOUND_S)
            elapsed = time.monotonic() - t0
        assert closed, f"{extra!r}: still open after {elapsed:.1f}s"
        assert all(st >= 400 for st in statuses(rest)), rest
    assert_still_serving(f)


def test_body_past_the_limit_is_refused(run_ferry, ferry_config):
    cfg, a, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    auth = f"Authorization: Bearer {KEY_A}\r\n".encode()
    ct = b"Content-Type: application/vnd.kafka.json.v2+json\r\n"
    # Declared too large: 413 before a byte of the body is sent, on every route with a body.
    for path in (f"/topics/{a}", "/hooks/w", "/tables/t/lookup", "/routes/r/redrive"):
        with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode() + auth + ct
                      + b"Content-Length: %d\r\n\r\n" % (1 << 30))
            closed, reply = wait_closed(s, CLOSE_BOUND_S)
        assert closed and statuses(reply)[:1] == [413], f"{path}: {reply[:300]!r}"
    # Chunked, growing past the limit and never ending: what passes the limit is dropped (not
    # kept), and connection_timeout closes the connection once it goes quiet.
    with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as s:
        s.sendall(f"POST /topics/{a} HTTP/1.1\r\nHost: x\r\n".encode() + auth + ct
                  + b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(40):
            s.sendall(b"1000\r\n" + b"y" * 4096 + b"\r\n")
        closed, rest = wait_closed(s, CLOSE_BOUND_S)
    assert closed, "a never-ending chunked body was not closed"
    assert all(st >= 400 for st in statuses(rest)), rest[:300]
    assert_still_serving(f)



def rest_body(size, records=1):
    """A REST Proxy produce body of exactly size bytes: records records with string values."""
    head, sep, tail = b'{"records":[{"value":"', b'"},{"value":"', b'"}]}'
    room = size - len(head) - len(tail) - (records - 1) * len(sep)
    values = [b"v" * (room // records + (i < room % records)) for i in range(records)]
    return head + sep.join(values) + tail


def produce_head(f, topic, length=None):
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /topics/{topic} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
            f"Content-Type: application/vnd.kafka.json.v2+json\r\n{size}\r\n\r\n").encode()


def read_response(s):
    """Reads one response (its head and a Content-Length body) from s; what came so far if s
    closes or is reset first."""
    out = b""
    while b"\r\n\r\n" not in out or len(out) < response_end(out):
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk
    return out


def response_end(out):
    head, _, _ = out.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    return len(head) + 4 + (int(m.group(1)) if m else 0)


def exchange(f, data):
    """Sends data on a new connection and returns the first response (without waiting for a
    close: the connection is kept alive)."""
    with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # answered early and closed: the answer is there to read
        return read_response(s)


def early_answer(f, head, wait_s=2):
    """Sends only a request's head and returns what ferry answered before the body, or b""
    when nothing came within wait_s (the connection is then dropped, its body never sent: a
    probe that holds no bytes of the budget itself)."""
    with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as s:
        s.sendall(head)
        if not select.select([s], [], [], wait_s)[0]:
            return b""
        return read_response(s)


def test_bodies_past_the_servers_budget_get_503(run_ferry, ferry_config):
    """server.max_body_memory bounds the request bodies held at once over all connections: a
    body that would pass it while another is held gets 503 with Retry-After (before it is sent
    when its Content-Length says so), a request alone is let in whatever its size, and what a
    finished request held is given back."""
    cfg, a, _ = attack_config(ferry_config, max_body_memory="1MiB", connection_timeout="60s")
    cfg["ingest"]["limits"]["max_body"] = "4MiB"
    f = run_ferry(cfg)
    held = rest_body(800_000)
    with socket.create_connection((f.host, f.port), timeout=CLOSE_BOUND_S) as slow:
        slow.sendall(produce_head(f, a, len(held)) + held[:700_000])  # then it pauses

        def refused_early():
            reply = early_answer(f, produce_head(f, a, 500_000))
            assert statuses(reply)[:1] in ([], [503]), reply[:300]  # []: not yet, again
            return statuses(reply)[:1] == [503] and reply
        reply = wait_until(refused_early, 60, "a body that does not fit is refused")
        assert b"\r\nRetry-After: 1\r\n" in reply, reply[:400]
        assert b"server.max_body_memory" in reply, reply[:400]

        # Chunked, no length to judge it by: refused once its bytes would pass the budget.
        body = rest_body(500_000)
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                           for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
        reply = exchange(f, produce_head(f, a) + chunked)
        assert statuses(reply)[:1] == [503], reply[:300]

        slow.sendall(held[700_000:])
        answer = read_response(slow)
        assert statuses(answer)[:1] == [200], answer[:300]

    # Given back: a body as large again fits now, and one alone larger than the budget too.
    # A request gives its body back once its answer has gone out, which may be a moment
    # after the client has read it: a 503 meanwhile is tried again.
    for size, records in ((500_000, 1), (1_500_000, 3)):
        def accepted():
            reply = exchange(f, produce_head(f, a, size) + rest_body(size, records))
            assert statuses(reply)[:1] in ([200], [503]), (size, reply[:300])
            return statuses(reply)[:1] == [200]
        wait_until(accepted, 30, f"a body of {size} bytes accepted once the others are gone")
    assert_still_serving(f)

# ---- pipelining ----

def test_pipelined_requests_are_answered_in_order(run_ferry, ferry_config):
    cfg, _, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    one = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = raw(f, one % b"/healthz" + one % b"/metrics" + one % b"/healthz" + one % b"/readyz")
    got = statuses(reply)
    assert got[:3] == [200, 200, 200] and got[3] in (200, 503), reply[:600]
    # An error answer closes the connection (announced): what came before it is answered in
    # order, nothing after it is.
    reply = raw(f, one % b"/healthz" + one % b"/nope" + one % b"/healthz")
    assert statuses(reply) == [200, 404], reply[:600]
    assert b"Connection: close" in reply.split(b"HTTP/1.1 404")[1], reply[:600]


# ---- path tricks on every route ----

def trick_paths(a, b):
    """Paths that try to reach another topic, table or route than their prefix says, or that
    smuggle a separator or a NUL."""
    out = []
    for base in (f"/topics/{a}", f"/topics/{a}/partitions/0", "/hooks/w", "/tables/t",
                 "/tables/t/keys/k", "/tables/t/lookup", "/routes/r/redrive", "/metrics",
                 "/healthz"):
        out += [f"{base}/..", f"{base}/../../topics/{b}", f"{base}%2f..%2f..%2ftopics%2f{b}",
                f"{base}%00", f"{base}%00/../{b}", f"{base}/%2e%2e/%2e%2e/topics/{b}",
                f"{base}//", f"{base}%", f"{base}%zz"]
    out += [f"/topics/{a}%2f{b}", f"/topics/..%2f{b}", f"/topics/{a}/partitions/%2e%2e",
            f"/topics/{a}/partitions/0%00", f"/topics/{a}/partitions/-1", "/tables/..%2ft",
            "/tables/t%00", "/routes/..%2fr/redrive", "/routes/r%00/redrive"]
    return out


def test_path_tricks_reach_nothing_they_should_not(run_ferry, ferry_config, kafka):
    cfg, a, b = attack_config(ferry_config)
    f = run_ferry(cfg)
    body = b'{"records":[{"value":1}]}'
    for path in trick_paths(a, b):
        for method in ("GET", "POST"):
            # Sent raw: a client library would normalize the path first.
            req = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY_A}\r\n"
                   "Content-Type: application/vnd.kafka.json.v2+json\r\n"
                   f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
            got = statuses(raw(f, req))
            # Nothing lands in B (KEY_A may not write it), nothing crashes, no 5xx.
            assert all(s < 500 or s == 503 for s in got), f"{method} {path}: {got}"
    assert_still_serving(f)
    f.assert_no_sanitizer_report()
    # One record written to B with B's key, and that is all B holds.
    assert call(f, "POST", f"/topics/{b}", '{"records":[{"value":1}]}', KEY_B) == 200
    assert len(kafka.consume_n(b, 1, use_group=False)) == 1


def test_encoded_paths_match_no_route(run_ferry, ferry_config, kafka):
    # Routes match the path as sent: a percent-encoded '/', NUL or letter is not the path it
    # decodes to, so none of these writes anything, not even to A, which the key may write.
    cfg, a, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    body = '{"records":[{"value":1}]}'
    for path in (f"/topics/{a}%2fpartitions%2f0", f"/topics/{a}%2Fpartitions%2F0",
                 f"/topics/{a}%00junk", f"/topics/{a}%00/partitions/0", f"/%74opics/{a}",
                 "/hooks%2fw", "/routes/r%2fredrive", "/tables%2ft/keys/k"):
        got = call(f, "POST", path, body, KEY_A)
        assert got in (404, 405), f"{path}: {got}"
    assert call(f, "POST", f"/topics/{a}", body, KEY_A) == 200
    assert len(kafka.consume_n(a, 1, use_group=False)) == 1  # fails if more arrive
    assert_still_serving(f)


def test_a_long_query_does_not_change_how_the_path_is_read(run_ferry, ferry_config, kafka):
    # With a URI over 64 KiB (a long query, connection_memory raised), routes still see the
    # path as sent: it used to be the path libmicrohttpd had decoded, then decoded again, so
    # that %00 cut it short and these wrote to A. A path itself over 64 KiB is refused.
    cfg, a, _ = attack_config(ferry_config, connection_memory="1MiB")
    f = run_ferry(cfg)
    body = '{"records":[{"value":1}]}'
    pad = "?pad=" + "p" * 70_000
    for path in (f"/topics/{a}%00junk", f"/topics/{a}%2fpartitions%2f0", "/tables%2ft/keys/k"):
        got = call(f, "POST", path + pad, body, KEY_A)
        assert got in (404, 405), f"{path}: {got}"
    assert call(f, "GET", "/" + "x" * 70_000, None, KEY_A) == 414
    assert call(f, "POST", f"/topics/{a}", body, KEY_A) == 200
    assert len(kafka.consume_n(a, 1, use_group=False)) == 1  # fails if more arrive
    assert_still_serving(f)


# ---- auth matrix ----

def endpoints(a):
    """(method, path, body) of every endpoint that takes an API key; table endpoints read t,
    the others write A."""
    rp = '{"records":[{"value":1}]}'
    return [
        ("POST", f"/topics/{a}", rp),
        ("POST", f"/topics/{a}/partitions/0", rp),
        ("POST", "/hooks/w", "{}"),
        ("GET", "/tables/t", None),
        ("GET", "/tables/t/keys/k", None),
        ("GET", "/tables/t/keys?prefix=k", None),
        ("POST", "/tables/t/lookup", '{"keys":["k"]}'),
        ("GET", "/tables/t/keys/k/events", None),
        ("GET", "/tables/t/events", None),
        ("POST", "/routes/r/redrive", "{}"),
    ]


def call(f, method, path, body, key, timeout=10):
    headers = {"Content-Type": "application/vnd.kafka.json.v2+json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    with socket.create_connection((f.host, f.port), timeout=timeout) as s:
        data = (body or "").encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head += f"Content-Length: {len(data)}\r\n"
        s.sendall(head.encode() + b"\r\n" + data)
        # Read the status line only: event streams do not end.
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    st = statuses(got)
    assert st, f"{method} {path}: no answer: {got!r}"
    return st[0]


def test_auth_matrix(run_ferry, ferry_config):
    cfg, a, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    for method, path, body in endpoints(a):
        what = f"{method} {path}"
        assert call(f, method, path, body, None) == 401, f"{what} without a key"
        assert call(f, method, path, body, WRONG) == 401, f"{what} with a wrong key"
        assert call(f, method, path, body, KEY_A + "x") == 401, f"{what} with a longer key"
        assert call(f, method, path, body, KEY_A[:-1]) == 401, f"{what} with a shorter key"
        assert call(f, method, path, body, KEY_B) == 403, f"{what} with another topic's key"
        assert call(f, method, path, body, KEY_A) not in (401, 403), f"{what} with its key"
    # The table list shows only what the key may read.
    assert call(f, "GET", "/tables", None, None) == 401
    r = http_request("GET", f"{f.url}/tables", headers={"Authorization": f"Bearer {KEY_B}"})
    assert r.status == 200 and '"t"' not in r.text, r.text
    r = http_request("GET", f"{f.url}/tables", headers={"Authorization": f"Bearer {KEY_A}"})
    assert r.status == 200 and '"t"' in r.text, r.text
    # Health, readiness and metrics stay open for probes and scrapers.
    for path in ("/healthz", "/readyz", "/metrics"):
        assert call(f, "GET", path, None, None) in (200, 503), path


# ---- secrets ----

def test_secrets_never_reach_logs_or_metrics(run_ferry, ferry_config):
    cfg, a, _ = attack_config(ferry_config)
    f = run_ferry(cfg)
    for key in (KEY_A, KEY_B, WRONG):
        for method, path, body in endpoints(a)[:4]:
            call(f, method, path, body, key)
    metrics = f.get("/metrics").text
    f.stop()
    log = f.stderr_text() + f.stdout_text()
    assert "sub=http" in log or "sub=ingest" in log, log[-2000:]  # debug lines were written
    for secret in (KEY_A, KEY_B, WRONG):
        assert secret not in log, f"{secret} in the log"
        assert secret not in metrics, f"{secret} in /metrics"
