"""`ferry run`: health, readiness, metrics, error answers, log formats, signals, embedded mode."""
import json
import re
import signal
import socket

import pytest

from ferrytest import (Hang, free_port, group_committed, parse_prometheus, route_config, unique,
                       wait_until)

JSON_CT = re.compile(r"^application/json\b")


def assert_json(resp, status):
    assert resp.status == status, f"{resp.status} {resp.text!r}"
    assert JSON_CT.match(resp.headers.get("content-type", "")), resp.headers
    return resp.json()


def test_healthz(run_ferry, ferry_config):
    f = run_ferry(ferry_config())
    assert assert_json(f.get("/healthz"), 200) == {"status": "ok"}


def test_readyz_ready_when_kafka_reachable(run_ferry, ferry_config):
    f = run_ferry(ferry_config())
    resp = wait_until(lambda: (r := f.get("/readyz")).status == 200 and r, 20, "/readyz 200")
    body = assert_json(resp, 200)
    assert body.get("status") == "ready", body


def test_readyz_503_when_kafka_unreachable(run_ferry, ferry_config):
    closed = f"127.0.0.1:{free_port()}"
    f = run_ferry(ferry_config({"kafka": {"brokers": closed}}))
    resp = wait_until(lambda: (r := f.get("/readyz")).status == 503 and r, 20, "/readyz 503")
    body = assert_json(resp, 503)
    assert isinstance(body, dict) and body.get("status") != "ready", body
    # Liveness does not depend on Kafka.
    assert f.get("/healthz").status == 200
    # And it stays not ready (no flapping to 200 against a closed port).
    for _ in range(5):
        assert f.get("/readyz").status == 503


def test_start_with_kafka_unreachable_asks_for_the_cluster_id_once(run_ferry, ferry_config):
    # Each consumer's settings depend on whether the brokers are the dev broker. Asked once per
    # route, an unreachable cluster held the start (and SIGTERM) for 2 s per route.
    closed = f"127.0.0.1:{free_port()}"
    routes = [route_config(f"r{i}", ["t"], "http://127.0.0.1:1/x") for i in range(4)]
    f = run_ferry(ferry_config({"kafka": {"brokers": closed}, "routes": routes,
                                "log": {"level": "info"}}))
    asked = [line for line in f.log_lines() if "no cluster id from" in line]
    assert len(asked) == 1, asked
    rc, _ = f.stop()
    assert rc == 0, f.stderr_text()[-2000:]


def fetch_metrics(f):
    resp = f.get("/metrics")
    assert resp.status == 200, resp
    return resp, parse_prometheus(resp.text)


def test_metrics(run_ferry, ferry_config, ferry_version):
    f = run_ferry(ferry_config())
    # Kafka statistics appear after librdkafka's first statistics interval.
    metrics = wait_until(
        lambda: (m := fetch_metrics(f)[1]).find("ferry_kafka_broker_rtt_seconds") and m,
        20, "ferry_kafka_broker_rtt_seconds in /metrics")
    resp, metrics = fetch_metrics(f)  # parse once more: every scrape must be well-formed
    ct = resp.headers.get("content-type", "")
    assert ct.startswith("text/plain") and "version=0.0.4" in ct, ct

    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "ferry_build_info", "ferry_kafka_broker_rtt_seconds",
                   "ferry_kafka_queue_messages"):
        assert family in metrics.types, f"no TYPE line for {family}"
        assert family in metrics.help, f"no HELP line for {family}"
    assert metrics.types["process_cpu_seconds_total"] == "counter"
    assert metrics.get("process_cpu_seconds_total") >= 0
    assert metrics.types["process_resident_memory_bytes"] == "gauge"
    assert metrics.get("process_resident_memory_bytes") > 1024 * 1024
    assert metrics.get("ferry_build_info", version=ferry_version) == 1

    rtts = metrics.find("ferry_kafka_broker_rtt_seconds")
    assert all(s.labels.get("client") and s.labels.get("broker") for s in rtts), rtts
    assert all(0 <= s.value < 10 for s in rtts), rtts
    queues = metrics.find("ferry_kafka_queue_messages")
    assert queues and all(s.labels.get("client") for s in queues), queues
    assert all(s.value >= 0 for s in queues)


def test_kafka_client_labels_are_unique(start_routes, receiver, kafka):
    """A route named like the shared producer gets a label of its own in the Kafka client
    families, so that no two series are the same."""
    f = start_routes(route_config("producer", [unique("lbl")], receiver.url + "/x"))
    m = wait_until(lambda: (m := f.metrics()).find("ferry_kafka_queue_messages", client="producer#2")
                   and m, 20, "the route's client in /metrics")
    clients = [s.labels["client"] for s in m.find("ferry_kafka_queue_messages")]
    assert sorted(clients) == ["producer", "producer#2"], clients


def test_metrics_cpu_counter_does_not_go_backwards(run_ferry, ferry_config):
    f = run_ferry(ferry_config())
    first = fetch_metrics(f)[1].get("process_cpu_seconds_total")
    for _ in range(20):
        f.get("/healthz")
    assert fetch_metrics(f)[1].get("process_cpu_seconds_total") >= first


def test_unknown_path_404(run_ferry, ferry_config):
    f = run_ferry(ferry_config())
    for path in ("/nope", "/healthz/extra", "/metricsx"):
        body = assert_json(f.get(path), 404)
        assert body.get("error_code") == 404, body
        assert isinstance(body.get("message"), str) and body["message"], body


def test_an_error_about_a_path_of_bytes_to_escape_is_json(run_ferry, ferry_config):
    """A 404 repeats the path; one of 800 bytes that are not UTF-8 (each U+FFFD, 3 bytes) or
    control bytes (each \\u00XX, 6 bytes) still gets its message as a JSON string."""
    f = run_ferry(ferry_config())
    for byte in (b"\xff", b"\x01"):
        with socket.create_connection((f.host, f.port), timeout=10) as s:
            s.sendall(b"GET /" + byte * 800 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        head, body = got.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 40"), head
        doc = json.loads(body)
        assert isinstance(doc["message"], str) and len(doc["message"]) >= 800, body[:200]


@pytest.mark.parametrize("method, path", [("POST", "/healthz"), ("DELETE", "/readyz"),
                                          ("PUT", "/metrics")])
def test_wrong_method_405(run_ferry, ferry_config, method, path):
    f = run_ferry(ferry_config())
    resp = f.request(method, path, body=b"{}")
    body = assert_json(resp, 405)
    assert isinstance(body, dict), body
    assert body.get("error_code", 405) == 405, body
    assert resp.headers.get("allow") == "GET, HEAD", resp.headers  # RFC 9110 15.5.6


def test_head_answers_what_get_would_without_the_body(run_ferry, ferry_config):
    # RFC 9110 9.3.2: HEAD is GET without the body, on every path GET serves.
    f = run_ferry(ferry_config())
    for path in ("/healthz", "/readyz", "/metrics", "/status", "/"):
        got, want = f.request("HEAD", path), f.get(path)
        assert got.status == want.status, (path, got.status)
        assert got.body == b"", (path, got.body[:80])
        assert got.headers.get("content-type") == want.headers.get("content-type"), path
    assert f.request("HEAD", "/nope").status == 404
    assert f.request("HEAD", "/healthz").headers.get("content-length") == str(
        len(f.get("/healthz").body))
    # http.client reads no body after a HEAD whatever comes, so look at the bytes: on one
    # kept-alive connection, the GET's answer follows the HEAD's header block directly.
    with socket.create_connection((f.host, f.port), timeout=10) as c:
        c.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := c.recv(65536):  # the GET asked ferry to close
            reply += chunk
    head, after = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), reply[:200]
    assert after.startswith(b"HTTP/1.1 200"), after[:200]
    assert after.endswith(f.get("/healthz").body), after[-200:]


def test_logfmt_lines(run_ferry, ferry_config):
    cfg = ferry_config()
    f = run_ferry(cfg)
    listen = cfg["server"]["listen"]
    # The contract shows msg="listening on HOST:PORT"; words after the address are tolerated.
    f.wait_log(rf'^ts=\S+ level=info sub=http msg="listening on {re.escape(listen)}[" ]')
    for line in f.log_lines():
        if line.strip():
            assert re.match(r"^ts=\S+ level=(debug|info|warn|error) sub=\S+ ", line), line


def test_json_log_format(run_ferry, ferry_config):
    cfg = ferry_config({"log": {"format": "json"}})
    f = run_ferry(cfg)
    listen = cfg["server"]["listen"]
    listening = re.compile(rf"^listening on {re.escape(listen)}( |$)")
    wait_until(lambda: any(f"listening on {listen}" in l for l in f.log_lines()), 10,
               "the listening line")
    objs = []
    for line in f.log_lines():
        if line.strip():
            try:
                objs.append(json.loads(line))
            except ValueError:
                pytest.fail(f"stderr line is not JSON: {line!r}")
    for o in objs:
        assert {"ts", "level", "sub", "msg"} <= set(o), o
        assert o["level"] in ("debug", "info", "warn", "error"), o
    assert any(o["sub"] == "http" and listening.match(o["msg"]) for o in objs), objs


def test_json_debug_log_has_only_ferry_lines(run_ferry, ferry_config):
    """At debug level every stderr line is one of ferry's JSON objects, and libmicrohttpd does
    not complain that its logger came too late to catch all it says (it used to, as a debug
    line: whatever it said before that option went to stderr outside the log format)."""
    f = run_ferry(ferry_config({"log": {"format": "json", "level": "debug"}}))
    wait_until(lambda: f.get("/readyz").status == 200, 20, "/readyz 200")
    rc, _ = f.stop(signal.SIGTERM)
    assert rc == 0
    for line in f.log_lines():
        if line.strip():
            o = json.loads(line)
            assert "not the first option" not in o["msg"], o


def test_log_level_warn_hides_info(run_ferry, ferry_config):
    f = run_ferry(ferry_config({"log": {"level": "warn"}}))
    wait_until(lambda: f.get("/readyz").status == 200, 20, "/readyz 200")
    rc, _ = f.stop(signal.SIGTERM)
    assert rc == 0
    levels = re.findall(r"\blevel=(\w+)", f.stderr_text())
    assert not [l for l in levels if l in ("debug", "info")], f.stderr_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_stops_gracefully(run_ferry, ferry_config, sig):
    f = run_ferry(ferry_config())
    wait_until(lambda: f.get("/readyz").status == 200, 20, "/readyz 200")
    rc, elapsed = f.stop(sig, timeout=15)
    assert rc == 0, f"exit {rc}"
    assert elapsed < 5, f"took {elapsed:.1f}s to stop"
    with pytest.raises(OSError):
        f.get("/healthz", timeout=1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_drains_a_route_request_under_way(run_ferry, ferry_config, receiver, kafka, sig):
    # A graceful stop waits for the request under way, then commits past its record. The
    # periodic commit is an hour away, so the committed offset comes from the drain itself.
    topic = unique("sigdrain")
    group = f"ferry-{topic}"
    receiver.push(Hang())
    route = route_config("sigdrain", [topic], receiver.url + "/x", group=group,
                         kafka={"auto.commit.interval.ms": "3600000"})
    f = run_ferry(ferry_config({"routes": [route], "server": {"shutdown_timeout": "15s"}}))
    f.wait_ready()
    kafka.produce(topic, [{"partition": 0, "key": b"k", "value": b"held"}])
    (held,) = receiver.wait_for(1)
    assert held.status is None
    f.send_signal(sig)

    def refused():
        try:
            f.get("/healthz", timeout=1)
            return False
        except OSError:
            return True

    wait_until(refused, 5, "new connections to be refused after the signal")
    # Still draining: the answer has not come, so ferry must not exit.
    assert f.wait(0.5) is None, f"exited without waiting for the request under way\n{f.describe()}"
    assert group_committed(kafka.bootstrap, group, topic, 1) == {}
    receiver.release_hung()
    rc = f.wait(15)
    assert rc == 0, f.describe()
    assert held.status == 200
    assert len(receiver.requests) == 1
    assert group_committed(kafka.bootstrap, group, topic, 1) == {0: 1}


def test_a_drain_longer_than_the_shutdown_timeout_is_cut_to_fit(run_ferry, ferry_config,
                                                                 receiver, kafka):
    # A route's drain_timeout past server.shutdown_timeout used to run until the stop's
    # watchdog exited 3, with no final commit and no leaving the group. The drain now ends
    # early enough for those to fit: exit 0 within the shutdown timeout.
    topic = unique("sigcut")
    receiver.push(Hang())
    route = route_config("sigcut", [topic], receiver.url + "/x", drain_timeout="60s")
    f = run_ferry(ferry_config({"routes": [route], "server": {"shutdown_timeout": "8s"}}))
    f.wait_ready()
    kafka.produce(topic, [{"partition": 0, "key": b"k", "value": b"held"}])
    receiver.wait_for(1)
    rc, elapsed = f.stop(signal.SIGTERM, timeout=30)
    assert rc == 0, f"exit {rc}\n{f.describe()}"
    assert elapsed < 8, f"took {elapsed:.1f}s to stop"
    receiver.release_hung()


def test_embedded_broker_warns_and_is_ready(run_ferry):
    cfg = {"kafka": {"dev": {"brokers": 1, "topics": ["orders:8"]}},
           "log": {"level": "info", "format": "logfmt"}}
    f = run_ferry(cfg)
    f.wait_log(r"level=warn .*in memory")
    resp = wait_until(lambda: (r := f.get("/readyz")).status == 200 and r, 20,
                      "/readyz 200 on the embedded cluster")
    assert resp.json().get("status") == "ready"
    rc, elapsed = f.stop(signal.SIGTERM)
    assert rc == 0 and elapsed < 5, (rc, elapsed)


def test_env_substitution_in_listen(run_ferry, dev_broker):
    listen = "127.0.0.1:0"
    text = "kafka:\n  brokers: ${env:FERRY_E2E_BROKERS}\nserver:\n  listen: ${env:FERRY_E2E_LISTEN}\n"
    f = run_ferry(text, listen=listen,
                  env={"FERRY_E2E_LISTEN": listen, "FERRY_E2E_BROKERS": dev_broker})
    assert f.get("/healthz").status == 200
    wait_until(lambda: f.get("/readyz").status == 200, 20, "/readyz 200")
