"""The status page: GET /status (the JSON documented in docs/operations.md) and GET / (the
HTML page that refreshes from it), rendered in headless Chromium.

One ferry runs a route, the REST Proxy API and a table on the same topic, so that one record
posted to ingest is produced, delivered by the route and applied by the table: every part of
/status has a number that must move. Chromium (Debian's `chromium`, installed by
scripts/install-deps.sh) loads the page before and after that record; the second DOM must show
the new count. The screenshot is kept as build-test/artifacts/status.png (or under
$FERRY_ARTIFACTS when set) and in the test's tmp dir.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from ferrytest import http_request, route_config, unique, wait_until

VND_JSON = "application/vnd.kafka.json.v2+json"
CHROMIUM_TIMEOUT_S = 120  # a cold start on a busy 2-core machine takes seconds, rarely more
PAGE_BYTES_MAX = 64 * 1024


def artifacts_dir():
    d = os.environ.get("FERRY_ARTIFACTS")
    return Path(d) if d else Path(__file__).resolve().parents[2] / "build-test" / "artifacts"


def chromium_bin():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is missing: run scripts/install-deps.sh (it installs Debian's chromium)"
    return path


def chromium(tmp_path, url, *args):
    """Runs headless Chromium on url with args; returns its stdout. The page's timers run in
    virtual time (--virtual-time-budget), which waits for the page's fetches of /status."""
    argv = [chromium_bin(), "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,800",
            "--virtual-time-budget=5000", *args, url]
    res = subprocess.run(argv, capture_output=True, timeout=CHROMIUM_TIMEOUT_S,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res.stdout.decode()


def route_delivered_in_dom(dom, route):
    m = re.search(r'<tr data-route="' + re.escape(route) + r'">.*?data-field="delivered"[^>]*>(\d+)<',
                  dom, re.S)
    return int(m.group(1)) if m else None


def status(f):
    r = http_request("GET", f.url + "/status")
    assert r.status == 200, r.text
    assert r.headers.get("content-type", "").startswith("application/json")
    return r.json()


def start(run_ferry, ferry_config, receiver, tmp_path, topic):
    cfg = ferry_config({
        "kafka": {"stats_interval": "500ms"},
        "routes": [route_config("orders", [topic], receiver.url + "/in")],
        "ingest": {"delivery_timeout": "3s", "rest_proxy": {"topics": [topic]}},
        "tables": [{"name": "orders", "topic": topic, "path": str(tmp_path / "orders.mdb")}],
    })
    f = run_ferry(cfg)
    f.wait_ready(60)
    return f


def check_shape(s, topic):
    assert isinstance(s["version"], str) and s["version"]
    assert isinstance(s["time_ms"], int) and isinstance(s["uptime_ms"], int)
    assert s["ready"] is True and s["not_ready_reason"] == ""
    [r] = s["routes"]
    assert r["name"] == "orders" and r["state"] == "running" and r["circuit"] == "closed"
    for k in ("in_flight", "buffered", "consumed", "delivered", "retried", "dead_lettered",
              "invalid"):
        assert isinstance(r[k], int), k
    assert set(r["requests"]) == {"error", "2xx", "3xx", "4xx", "5xx"}
    assert set(r["idle_seconds"]) == {"target", "kafka", "held"}
    assert all(isinstance(v, (int, float)) and v >= 0 for v in r["idle_seconds"].values())
    assert r["idle_seconds"]["kafka"] > 0  # it waited for its group and its records
    assert isinstance(r["lag"], list)
    [ep] = s["ingest"]["endpoints"]
    assert ep["name"] == "rest_proxy"
    assert {"requests", "records", "bytes", "failed"} <= set(ep)
    assert "unauthorized" in s["ingest"]["rejected"]
    [t] = s["tables"]
    assert t["name"] == "orders" and t["ready"] is True and t["state"] == "ready"
    assert isinstance(t["keys"], int) and isinstance(t["lag"], int)
    assert all({"partition", "lag"} == set(p) for p in t["partitions"])


def test_status_json_and_page_follow_a_record(run_ferry, ferry_config, receiver, tmp_path):
    topic = unique("status")
    f = start(run_ferry, ferry_config, receiver, tmp_path, topic)

    # brokers come from Kafka statistics (kafka.stats_interval)
    s = wait_until(lambda: (lambda s: s if s["kafka"]["brokers"] else None)(status(f)), 30,
                   "brokers in /status")
    check_shape(s, topic)
    for b in s["kafka"]["brokers"]:  # real brokers only ("host:port/id"), no logical ones
        assert re.fullmatch(r"[^/]+:\d+/\d+", b["name"]), b
        assert b["up"] is True and isinstance(b["rtt_ms"], float)
    assert s["routes"][0]["delivered"] == 0 and s["tables"][0]["keys"] == 0

    page = http_request("GET", f.url + "/")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert len(page.body) <= PAGE_BYTES_MAX
    source = Path(__file__).resolve().parents[2] / "src" / "core" / "status_page.html"
    assert page.body == source.read_bytes()  # embedded byte for byte at build time
    assert b"http://" not in page.body.replace(b"http://www.w3.org/2000/svg", b"")
    assert b"https://" not in page.body

    before = chromium(tmp_path, f.url + "/", "--dump-dom")
    assert route_delivered_in_dom(before, "orders") == 0, before[-3000:]

    r = http_request("POST", f"{f.url}/topics/{topic}",
                     body=json.dumps({"records": [{"key": "k1", "value": {"n": 1}}]}),
                     headers={"Content-Type": VND_JSON})
    assert r.status == 200, r.text
    receiver.wait_for(1, timeout=60)

    def moved():
        s = status(f)
        return s if (s["routes"][0]["delivered"] == 1 and s["tables"][0]["keys"] == 1 and
                     s["ingest"]["endpoints"][0]["records"] == 1) else None

    s = wait_until(moved, 30, "the record counted by the route, the table and ingest")
    # a consumer's lag is known once it has a position: after the record, 0 on every partition
    s = wait_until(lambda: (lambda s: s if s["routes"][0]["lag"] else None)(status(f)), 30,
                   "the route's lag in /status")
    assert all(p["topic"] == topic and p["lag"] == 0 for p in s["routes"][0]["lag"])
    assert s["routes"][0]["consumed"] == 1 and s["routes"][0]["requests"]["2xx"] == 1
    assert s["ingest"]["endpoints"][0]["requests"] == 1

    after = chromium(tmp_path, f.url + "/", "--dump-dom")
    assert route_delivered_in_dom(after, "orders") == 1, after[-3000:]
    assert 'data-table="orders"' in after and 'data-endpoint="rest_proxy"' in after

    shot = tmp_path / "status.png"
    chromium(tmp_path, f.url + "/", f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 1000
    out = artifacts_dir()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, out / "status.png")


def test_status_without_jobs_configured(run_ferry, ferry_config):
    f = run_ferry(ferry_config({"ingest": {"delivery_timeout": "3s",
                                          "rest_proxy": {"topics": ["^x-.*"]}}}))
    s = status(f)
    assert s["routes"] == [] and s["tables"] == []
    assert s["ingest"]["endpoints"][0]["requests"] == 0


def test_webhooks_cannot_take_the_status_paths(ferry_bin, tmp_path):
    from ferrytest import run_cli

    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  shutdown_timeout: 5s\n"
                    "ingest:\n  delivery_timeout: 3s\n"
                    "  webhooks:\n    - {name: a, path: /status, topic: t}\n"
                    "    - {name: b, path: /, topic: t}\n")
    res = run_cli(ferry_bin, ["check", "-c", path])
    assert res.returncode == 2, res.stdout + res.stderr
    assert "ingest.webhooks[0].path: '/status' is one of ferry's own paths" in res.stderr
    assert "ingest.webhooks[1].path: '/' is one of ferry's own paths" in res.stderr


def test_an_open_circuit_and_failures_show(start_routes, receiver, kafka, tmp_path):
    from ferrytest import Reply

    topic = unique("status-brk")
    receiver.handler = lambda _req: Reply(status=503)
    f = start_routes(route_config(
        "brk", [topic], receiver.url + "/b",
        circuit_breaker={"enabled": True, "consecutive_failures": 3, "open": "30s",
                         "max_open": "60s"}))
    kafka.produce(topic, [b"a", b"b", b"c", b"d"])
    s = wait_until(lambda: (lambda s: s if s["routes"][0]["state"] == "circuit_open" else None)(
        status(f)), 30, "the route's state circuit_open in /status")
    r = s["routes"][0]
    assert r["circuit"] == "open" and r["requests"]["5xx"] >= 3 and r["delivered"] == 0
    dom = chromium(tmp_path, f.url + "/", "--dump-dom")
    row = re.search(r'<tr data-route="brk">.*?</tr>', dom, re.S)
    assert row and ">circuit_open<" in row.group(0) and "5xx: " in row.group(0), dom[-3000:]
