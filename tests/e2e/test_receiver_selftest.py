"""The harness checks itself: the misbehaving receiver, the Prometheus parser, the YAML writer
and the bounded wait, so that route and metrics tests can trust them. No ferry involved."""
import http.client
import json
import math
import socket
import threading
import time

import pytest

from ferrytest import (Drop, Hang, PromParseError, Reply, WaitTimeout, http_request,
                       parse_prometheus, retry_after, to_yaml, wait_until)


def post(url, body=b"x", timeout=5, headers=None):
    return http_request("POST", url, body=body, headers=headers, timeout=timeout)


def test_records_method_path_headers_body(receiver):
    r = post(receiver.url + "/hook?a=1", body=b'{"n":1}', headers={"X-Test": "yes"})
    assert r.status == 200 and r.json() == {"ok": True}
    (rec,) = receiver.wait_for(1)
    assert (rec.method, rec.path, rec.query, rec.body) == ("POST", "/hook", "a=1", b'{"n":1}')
    assert rec.header("x-test") == "yes" and rec.header("X-TEST") == "yes"
    assert rec.peer[0] == "127.0.0.1"
    assert abs(rec.time - time.monotonic()) < 5


def test_status_sequence_then_default(receiver):
    receiver.statuses(500, 503, 201)
    got = [post(receiver.url + "/").status for _ in range(5)]
    assert got == [500, 503, 201, 200, 200]
    assert len(receiver.requests) == 5


def test_per_path_queue_wins_over_any_path(receiver):
    receiver.statuses(418, path="/tea")
    receiver.statuses(502)
    assert post(receiver.url + "/coffee").status == 502
    assert post(receiver.url + "/tea").status == 418
    assert post(receiver.url + "/tea").status == 200


def test_handler_decides_when_queue_empty(receiver):
    receiver.handler = lambda rec: Reply(status=400 if rec.body == b"bad" else 202)
    assert post(receiver.url + "/", body=b"bad").status == 400
    assert post(receiver.url + "/", body=b"good").status == 202


def test_429_with_retry_after(receiver):
    receiver.push(retry_after(2))
    r = post(receiver.url + "/")
    assert r.status == 429
    assert r.headers["retry-after"] == "2"


def test_delay(receiver):
    receiver.push(Reply(delay=0.5))
    t0 = time.monotonic()
    assert post(receiver.url + "/").status == 200
    assert time.monotonic() - t0 >= 0.45


def test_hang_holds_until_released(receiver):
    receiver.push(Hang())
    result = {}

    def client():
        try:
            result["status"] = post(receiver.url + "/", timeout=60).status
        except Exception as exc:  # noqa: BLE001
            result["error"] = exc

    t = threading.Thread(target=client)
    t.start()
    wait_until(lambda: receiver.in_flight == 1, 30, "the request to be held")
    t.join(0.3)
    assert t.is_alive(), "a hung request was answered"
    receiver.release_hung()
    t.join(30)
    assert result == {"status": 200}
    assert receiver.in_flight == 0 and receiver.max_in_flight == 1


def test_hang_times_out_client(receiver):
    receiver.push(Hang())
    with pytest.raises(socket.timeout):
        post(receiver.url + "/", timeout=0.5)


def test_drop_closes_without_answer(receiver):
    receiver.push(Drop())
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        post(receiver.url + "/")
    assert len(receiver.requests) == 1
    # The receiver keeps serving afterwards.
    assert post(receiver.url + "/").status == 200


def test_keep_alive_connection_is_visible(receiver):
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    for _ in range(3):
        conn.request("POST", "/", body=b"x")
        assert conn.getresponse().read() == b'{"ok":true}'
    conn.close()
    post(receiver.url + "/")
    peers = [r.peer for r in receiver.requests]
    assert peers[0] == peers[1] == peers[2] != peers[3]


def test_max_in_flight_counts_concurrency(receiver):
    # held until all four are in: a fixed delay let the first finish before the last came
    # when starting the threads took longer than the delay
    receiver.push(*[Hang() for _ in range(4)])
    threads = [threading.Thread(target=post, args=(receiver.url + "/",), kwargs={"timeout": 60})
               for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: receiver.in_flight == 4, 30, "four requests held at once")
    receiver.release_hung()
    for t in threads:
        t.join(30)
    assert receiver.in_flight == 0 and receiver.max_in_flight == 4


def test_close_with_hung_request_does_not_block(make_receiver):
    r = make_receiver("hung")
    r.push(Hang())

    def client():
        try:
            post(r.url + "/", timeout=60)
        except OSError:
            pass  # closing may answer the held request or cut it; either is fine

    t = threading.Thread(target=client)
    t.start()
    wait_until(lambda: r.in_flight == 1, 30, "the request to be held")
    t0 = time.monotonic()
    r.close()
    # well before the client would give up (60 s) and the close's own 15 s join
    assert time.monotonic() - t0 < 10
    t.join(30)


def test_wait_until_fails_with_message():
    def boom():
        raise RuntimeError("boom")

    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"waiting for the impossible; last error: .*boom"):
        wait_until(boom, 0.2, "the impossible")
    assert time.monotonic() - t0 < 3  # the timeout, give or take a busy machine's scheduling
    t0 = time.monotonic()
    assert wait_until(lambda: time.monotonic() - t0 > 0.1 and "yes", 2, "time") == "yes"


GOOD_METRICS = """\
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 0.12
# HELP ferry_build_info Build information.
# TYPE ferry_build_info gauge
ferry_build_info{version="0.1.0"} 1
# TYPE ferry_kafka_broker_rtt_seconds gauge
ferry_kafka_broker_rtt_seconds{client="p#1",broker="127.0.0.1:1/1"} 0.0004
ferry_kafka_broker_rtt_seconds{client="p#1",broker="a \\"q\\" \\\\ \\n"} 1e-3 1700000000000
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="+Inf"} 2
lat_sum 0.3
lat_count 2
# TYPE g untyped
g NaN
g{x="y",} -Inf
"""


def test_prom_parser_reads_valid_text():
    m = parse_prometheus(GOOD_METRICS)
    assert m.types["process_cpu_seconds_total"] == "counter"
    assert m.get("ferry_build_info", version="0.1.0") == 1
    assert m.get("ferry_kafka_broker_rtt_seconds", broker="127.0.0.1:1/1") == 0.0004
    odd = m.get("ferry_kafka_broker_rtt_seconds", broker='a "q" \\ \n')
    assert odd == 0.001
    assert m.find("ferry_kafka_broker_rtt_seconds", broker='a "q" \\ \n')[0].timestamp == 1700000000000
    assert m.get("lat_bucket", le="+Inf") == 2
    assert math.isnan(m.find("g")[0].value)
    assert m.get("g", x="y") == -math.inf


@pytest.mark.parametrize("text, problem", [
    ("# TYPE a counter\na 1", "newline"),
    ("a 1\n", "no TYPE"),
    ("# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n", "twice"),
    ("# TYPE a counter\na -1\n", "negative"),
    ("# TYPE a gauge\na one\n", "bad value"),
    ("# TYPE a gauge\na{x=1} 1\n", "label"),
    ("# TYPE a gauge\na{x=\"1\" y=\"2\"} 1\n", "label"),
    ("# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE"),
    ("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"\"} 2\n", "contiguous"),
    ("# TYPE 1a gauge\n", "malformed"),
    ("# TYPE a gauge\n1a 1\n", "malformed"),
])
def test_prom_parser_rejects(text, problem):
    with pytest.raises(PromParseError, match=problem):
        parse_prometheus(text)


def test_yaml_writer_output_is_what_yaml_reads():
    yaml = pytest.importorskip("yaml")
    cfg = {
        "kafka": {"brokers": "127.0.0.1:9092", "properties": {"client.id": "x", "linger.ms": 5},
                  "dev": {"brokers": 1, "topics": ["orders:8", "a b"]}},
        "server": {"listen": "127.0.0.1:1234", "shutdown_timeout": "10s"},
        "log": {"level": "info", "format": "json", "extra": ["yes", "no", "1.5", "${env:X}", True]},
        "routes": [{"name": "r", "to": {"url": "http://h/p?q=1#f"}}, {"name": "s", "opts": {}}],
    }
    assert yaml.safe_load(to_yaml(cfg)) == cfg
    assert json.dumps(yaml.safe_load(to_yaml({"a": []})) ) == '{"a": []}'
