"""gRPC targets (`target.grpc`) against a real gRPC server (python3-grpcio's generic handlers,
in this process; tests/e2e/grpcserver.py), over TLS with a certificate made for the test and
over h2c: unary calls with metadata and grpc-timeout; each status class (retried then
delivered, dead-lettered with ferry.grpc_status and ferry.grpc_message, an on_status
override), in trailers-only answers and in trailers; a deadline passed is retried; 1,000 calls
share one TLS connection while h2c opens one per call; a batch is one client-streaming call;
JSON is encoded to protobuf (checked by decoding at the server with classes built from the
descriptor set at run time) and a bad field is dead-lettered with its path, never sent; kill -9
mid-stream loses nothing; `ferry redrive` calls the method again; `ferry check` names file,
line and key of a bad gRPC target.
"""
import json
import signal
import subprocess
import threading
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ferrytest import (route_config, route_metric, run_cli, unique, wait_route_metric,
                       wait_route_metrics, wait_until)
from grpcserver import GrpcServer, Slow, Status

PROTO = """
syntax = "proto3";
package test;

import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

enum Color {
  COLOR_UNSPECIFIED = 0;
  RED = 1;
  BLUE = 2;
}

message Item {
  string sku = 1;
  int64 price = 2;
  int32 qty = 3;
}

message Order {
  string id = 1;
  repeated Item items = 2;
  map<string, int32> labels = 3;
  Color color = 4;
  repeated int32 codes = 5;
  double total = 6;
  bool paid = 7;
  bytes blob = 8;
  uint64 big = 9;
  google.protobuf.Timestamp placed_at = 10;
  google.protobuf.StringValue coupon = 11;
}

message Ack {}

service Orders {
  rpc Place(Order) returns (Ack);
  rpc Upload(stream Order) returns (Ack);
}
"""


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("grpc-tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """The descriptor set of PROTO (made with protoc) and its Order class, built at run time."""
    d = tmp_path_factory.mktemp("grpc-proto")
    (d / "orders.proto").write_text(PROTO)
    pb = d / "orders.pb"
    subprocess.run(["protoc", "--include_imports", f"--descriptor_set_out={pb}", f"-I{d}",
                    str(d / "orders.proto")], check=True, capture_output=True)
    fds = descriptor_pb2.FileDescriptorSet.FromString(pb.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    order = message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("test.Order"))
    return str(pb), order


@pytest.fixture
def tls_server(certs):
    s = GrpcServer(tls=certs).start()
    yield s
    s.stop()


@pytest.fixture
def h2c_server():
    s = GrpcServer().start()
    yield s
    s.stop()


def grpc_route(name, topic, server, certs=None, **over):
    g = {"url": server.url, "method": "test.Orders/Place"}
    g.update(over.pop("grpc", {}))
    r = route_config(name, [topic], "unused", **over)
    target = {"grpc": g, **over.pop("target", {})}
    if certs:
        target.setdefault("tls", {"ca_file": certs[0]})
    r["target"] = target
    return r


def value(i, partition=0):
    return {"partition": partition, "key": f"k{i}".encode(), "value": f"m{i}".encode()}


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "h2c"])
def test_unary_calls_with_metadata_and_deadline(start_routes, kafka, certs, tls):
    n = 20
    with GrpcServer(tls=certs if tls else None) as s:
        topic = unique("grpc-unary")
        f = start_routes(grpc_route("unary", topic, s, certs if tls else None,
                                    grpc={"metadata": {"x-key": "${key}", "x-topic": "${topic}"}},
                                    target={"timeout": "7s"}))
        kafka.produce(topic, [value(i, i % 4) for i in range(n)])
        got = s.wait_delivered(n)
        assert sorted(got) == sorted(f"m{i}".encode() for i in range(n))
        for c in s.calls:
            assert c.method == "Place"
            assert c.metadata["x-key"] == "k" + c.messages[0].decode()[1:]
            assert c.metadata["x-topic"] == topic
            assert 0 < c.time_remaining <= 7.0  # the route's timeout, sent as grpc-timeout
        wait_route_metric(f, "ferry_route_records_delivered_total", "unary", n)
        if tls:  # one per I/O thread at most (io_threads: auto, one per processor)
            assert 1 <= s.connections <= 4
        else:  # h2c: a connection per call (curl issue 10634)
            assert s.connections == len(s.calls)


def dead_letter_headers(record):
    return {k: v.decode() for k, v in record.headers}


def test_each_status_class(start_routes, kafka, tls_server, certs):
    """Retry classes are retried until OK; the rest are dead-lettered at once with the status
    and message in headers; trailers-only answers and statuses in trailers both count; an
    on_status override moves a code to success."""
    s, topic, dlq = tls_server, unique("grpc-status"), unique("grpc-status-dlq")
    C = grpc.StatusCode
    s.plan[b"busy"] = [Status(C.UNAVAILABLE, "busy"), Status(C.RESOURCE_EXHAUSTED, "full")]
    s.plan[b"aborted"] = [Status(C.ABORTED, "conflict", after_headers=True)]
    s.plan[b"missing"] = [Status(C.NOT_FOUND, "no such order")]
    s.plan[b"invalid"] = [Status(C.INVALID_ARGUMENT, "bad \u00e9 100%", after_headers=True)]
    s.plan[b"exists"] = [Status(C.ALREADY_EXISTS, "seen it")]
    f = start_routes(grpc_route("status", topic, s, certs, dead_letter={"topic": dlq},
                                grpc={"on_status": {"success": ["ALREADY_EXISTS"]}}))
    keys = ["busy", "aborted", "missing", "invalid", "exists", "fine"]
    kafka.produce(topic, [{"partition": i % 4, "key": k.encode(), "value": k.encode()}
                          for i, k in enumerate(keys)])
    dead = {r.key.decode(): dead_letter_headers(r) for r in kafka.consume_n(dlq, 2,
                                                                            use_group=False)}
    assert set(dead) == {"missing", "invalid"}
    assert dead["missing"]["ferry.grpc_status"] == "5"
    assert dead["missing"]["ferry.grpc_message"] == "no such order"
    assert dead["missing"]["ferry.error"] == "grpc status NOT_FOUND (5): no such order"
    assert dead["missing"]["ferry.attempts"] == "1"
    assert "ferry.http_status" not in dead["missing"]
    # the gRPC pair comes last, as dead-letter.md lists ferry's headers
    assert list(dead["missing"])[-2:] == ["ferry.grpc_status", "ferry.grpc_message"]
    assert dead["invalid"]["ferry.grpc_status"] == "3"  # from trailers, after headers
    assert dead["invalid"]["ferry.grpc_message"] == "bad \u00e9 100%"  # percent-decoded
    m = wait_route_metrics(f, "status", {"ferry_route_records_delivered_total": 4,
                                         "ferry_route_records_dead_lettered_total": 2})
    # ferry counts "exists" delivered (on_status), though the server answered ALREADY_EXISTS
    assert sorted(s.delivered) == [b"aborted", b"busy", b"fine"]
    tries = {}
    for c in s.calls:
        tries[c.messages[0]] = tries.get(c.messages[0], 0) + 1
    assert tries == {b"busy": 3, b"aborted": 2, b"missing": 1, b"invalid": 1, b"exists": 1,
                     b"fine": 1}
    assert route_metric(m, "ferry_route_records_retried_total", "status") == 3
    assert route_metric(m, "ferry_route_records_dead_lettered_total", "status") == 2
    # calls count by what their status meant: success 2xx, retry 5xx, dead letter 4xx
    m = wait_route_metric(f, "ferry_route_requests_total", "status", 4, **{"class": "2xx"})
    assert route_metric(m, "ferry_route_requests_total", "status", **{"class": "5xx"}) == 3
    assert route_metric(m, "ferry_route_requests_total", "status", **{"class": "4xx"}) == 2


def test_reply_topic_carries_http_and_grpc_status_and_metadata(start_routes, kafka, tls_server,
                                                                certs):
    """A gRPC route's reply says the HTTP status (200) beside the gRPC code, and copies the
    response metadata named under reply.headers, trailers included."""
    from test_reply_topic import ReplyReader, hdr

    s, topic = tls_server, unique("grpc-reply")
    replies, dlq = unique("grpc-reply-out"), unique("grpc-reply-dlq")
    s.headers, s.trailers = (("x-served-by", "node-1"),), (("x-trace", "t-42"),)
    s.plan[b"missing"] = [Status(grpc.StatusCode.NOT_FOUND, "no such order")]
    start_routes(grpc_route("greply", topic, s, certs, dead_letter={"topic": dlq},
                            reply={"topic": replies, "on": "all",
                                   "headers": ["x-served-by", "x-trace", "x-absent"]}))
    kafka.produce(topic, [{"partition": 0, "key": k, "value": k} for k in (b"fine", b"missing")])
    reader = ReplyReader(kafka.bootstrap, replies)
    try:
        got = reader.read_until(lambda ms: len(ms) >= 2, 60, "two replies")
    finally:
        reader.close()
    by_key = {m.key(): m for m in got}
    fine, missing = by_key[b"fine"], by_key[b"missing"]
    assert hdr(fine, "ferry.status") == "200"
    assert hdr(fine, "ferry.grpc_status") == "0"
    assert hdr(fine, "x-served-by") == "node-1" and hdr(fine, "x-trace") == "t-42"
    assert hdr(fine, "x-absent") is None
    assert hdr(missing, "ferry.status") == "200"
    assert hdr(missing, "ferry.grpc_status") == "5"
    assert hdr(missing, "ferry.grpc_message") == "no such order"
    assert hdr(missing, "x-trace") == "t-42"


class Http11Server:
    """An HTTPS server that speaks HTTP/1.1 only (no ALPN h2) and answers every POST 200 with
    an empty body, as a proxy in front of a gRPC server might: counts the POSTs."""

    def __init__(self, certs):
        import http.server
        import ssl

        outer = self
        self.posts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*certs)
        ctx.set_alpn_protocols(["http/1.1"])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def test_an_answer_over_http1_is_retried_not_dead_lettered(start_routes, kafka, certs):
    """Over https, libcurl falls back to HTTP/1.1 when the server does not offer h2; such an
    answer cannot carry grpc-status, so it is a transport error (retried), not INTERNAL."""
    server = Http11Server(certs)
    try:
        topic, dlq = unique("grpc-h1"), unique("grpc-h1-dlq")
        f = start_routes(grpc_route("h1", topic, server, certs, dead_letter={"topic": dlq},
                                    retry={"max_attempts": 0, "initial_backoff": "50ms",
                                           "max_backoff": "100ms"}))
        kafka.produce(topic, [{"partition": 0, "key": b"k", "value": b"v"}])
        wait_until(lambda: server.posts >= 3, 60, "three tries of the record")
        m = wait_route_metric(f, "ferry_route_requests_total", "h1", 3, **{"class": "error"})
        assert route_metric(m, "ferry_route_records_dead_lettered_total", "h1") == 0
        assert route_metric(m, "ferry_route_requests_total", "h1", **{"class": "4xx"}) == 0
    finally:
        server.stop()


def test_deadline_exceeded_is_retried(start_routes, kafka, tls_server, certs):
    s, topic = tls_server, unique("grpc-deadline")
    s.plan[b"slow"] = [Slow(4.0)]
    f = start_routes(grpc_route("deadline", topic, s, certs, target={"timeout": "1s"}))
    kafka.produce(topic, [{"partition": 0, "key": b"slow", "value": b"slow"}])
    assert s.wait_delivered(1, timeout=60) == [b"slow"]
    first, *rest = [c for c in s.calls if c.messages == [b"slow"]]
    assert rest, "the slow call was not tried again"
    assert first.time_remaining <= 1.0
    m = wait_route_metric(f, "ferry_route_records_delivered_total", "deadline", 1)
    assert route_metric(m, "ferry_route_records_retried_total", "deadline") >= 1


def test_thousand_calls_share_one_tls_connection(start_routes, kafka, tls_server, certs):
    s, topic, n = tls_server, unique("grpc-many"), 1000
    # one I/O thread: its calls multiplex on one connection (auto gives one per processor)
    f = start_routes(grpc_route("many", topic, s, certs, concurrency=64, ordering="none",
                                io_threads="1"))
    start = time.monotonic()
    kafka.produce(topic, [value(i, i % 4) for i in range(n)])
    got = s.wait_delivered(n, timeout=180)
    seconds = time.monotonic() - start
    assert len(set(got)) == n
    assert s.connections == 1, s.connections
    wait_route_metric(f, "ferry_route_records_delivered_total", "many", n)
    print(f"{n} calls in {seconds:.1f} s ({n / seconds:.0f}/s) over {s.connections} connection")


def test_h2c_opens_a_connection_per_call(start_routes, kafka, h2c_server):
    s, topic, n = h2c_server, unique("grpc-h2c"), 200
    f = start_routes(grpc_route("h2c", topic, s, concurrency=16, ordering="none"))
    start = time.monotonic()
    kafka.produce(topic, [value(i, i % 4) for i in range(n)])
    got = s.wait_delivered(n, timeout=180)
    seconds = time.monotonic() - start
    assert len(set(got)) == n
    assert s.connections == len(s.calls) == n
    wait_route_metric(f, "ferry_route_records_delivered_total", "h2c", n)
    print(f"h2c: {n} calls in {seconds:.1f} s ({n / seconds:.0f}/s) over {s.connections} "
          "connections")


ORDER = {"id": "o-1", "items": [{"sku": "a", "price": "9007199254740993", "qty": 2},
                                {"sku": "b", "price": 5}],
         "labels": {"x": 1, "y": -2}, "color": "BLUE", "codes": [1, 2, 3], "total": 1.5,
         "paid": True, "blob": "AAEC", "big": "18446744073709551615",
         "placed_at": "2026-12-05T08:00:00.250+01:00", "coupon": "WINTER"}


def test_json_is_encoded_to_protobuf_and_a_bad_field_dead_lettered(start_routes, kafka,
                                                                    tls_server, certs, schema):
    s, topic, dlq = tls_server, unique("grpc-json"), unique("grpc-json-dlq")
    pb, order_class = schema
    start_routes(grpc_route("json", topic, s, certs, dead_letter={"topic": dlq},
                            grpc={"payload": "json", "descriptor_set": pb}))
    bad = {"type": {"id": "b1", "items": [{"sku": "x"}, {"qty": "many"}]},
           "unknown": {"id": "b2", "colour": "RED"},
           "enum": {"id": "b3", "color": "GREEN"},
           "time": {"id": "b4", "placed_at": "tomorrow"},
           "notjson": None}
    records = [{"partition": 0, "key": b"good", "value": json.dumps(ORDER).encode()}]
    records += [{"partition": 0, "key": k.encode(),
                 "value": json.dumps(v).encode() if v else b"{nope"} for k, v in bad.items()]
    records += [{"partition": 0, "key": b"empty", "value": b"{}"}]
    kafka.produce(topic, records)
    got = sorted((order_class.FromString(m) for m in s.wait_delivered(2)), key=lambda o: o.id)
    empty, first = got  # keys differ: the two calls may arrive in either order
    assert first.id == "o-1"
    assert [(i.sku, i.price, i.qty) for i in first.items] == [("a", 9007199254740993, 2),
                                                              ("b", 5, 0)]
    assert dict(first.labels) == {"x": 1, "y": -2}
    assert first.color == 2 and list(first.codes) == [1, 2, 3]
    assert first.total == 1.5 and first.paid and first.blob == b"\x00\x01\x02"
    assert first.big == 18446744073709551615
    assert (first.placed_at.seconds, first.placed_at.nanos) == (1796454000, 250_000_000)
    assert first.HasField("coupon") and first.coupon.value == "WINTER"
    assert not empty.HasField("placed_at") and not empty.HasField("coupon")
    assert empty == order_class()
    dead = {r.key.decode(): dead_letter_headers(r)["ferry.error"]
            for r in kafka.consume_n(dlq, len(bad), use_group=False)}
    assert set(dead) == set(bad)
    assert "items[1].qty" in dead["type"], dead["type"]
    assert "colour" in dead["unknown"], dead["unknown"]
    assert "color" in dead["enum"] and "GREEN" in dead["enum"], dead["enum"]
    assert "invalid JSON" in dead["notjson"], dead["notjson"]
    assert "placed_at: expected an RFC 3339 time" in dead["time"], dead["time"]
    assert len(s.calls) == 2  # the bad ones were never sent


def test_a_batch_is_one_client_streaming_call(start_routes, kafka, tls_server, certs, schema):
    s, topic = tls_server, unique("grpc-stream")
    pb, order_class = schema
    start_routes(grpc_route("stream", topic, s, certs, ordering="partition",
                            batch={"max_records": 10, "linger": "2s"},
                            grpc={"method": "test.Orders/Upload", "payload": "json",
                                  "descriptor_set": pb}))
    kafka.produce(topic, [{"partition": 0, "key": f"k{i}".encode(),
                           "value": json.dumps({"id": f"o{i}"}).encode()} for i in range(10)])
    got = s.wait_delivered(10)
    assert [order_class.FromString(m).id for m in got] == [f"o{i}" for i in range(10)]
    [call] = s.calls
    assert call.method == "Upload" and len(call.messages) == 10


def test_kill_9_mid_stream_loses_nothing(start_routes, kafka, certs):
    # 10 ms a call at concurrency 8: at most 800 calls/s, so 1,000 take over a second and the
    # kill lands mid-stream
    s = GrpcServer(tls=certs, delay=0.01).start()
    try:
        kill_mid_stream(start_routes, kafka, s, certs)
    finally:
        s.stop()


def kill_mid_stream(start_routes, kafka, s, certs):
    topic, n = unique("grpc-crash"), 1000
    route = grpc_route("crash", topic, s, certs, concurrency=8)
    first = start_routes(route, name="first")
    kafka.produce(topic, [value(i, i % 4) for i in range(n)])
    # polled every 10 ms: the whole stream takes little more than a second at best
    wait_until(lambda: len(s.delivered) >= 50, 60, "50 calls before the kill",
               max_interval=0.01)
    first.send_signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    before = len(s.delivered)
    assert before < n, "the stream ended before the kill: nothing mid-stream"
    start_routes(route, name="second", timeout=60)
    wait_until(lambda: len(set(s.delivered)) >= n, 120, "every message delivered")
    assert set(s.delivered) == {f"m{i}".encode() for i in range(n)}
    print(f"{before} calls before the kill, {len(s.delivered) - n} sent twice")


def check(ferry_bin, tmp_path, target_yaml):
    cfg = tmp_path / "f.yaml"
    cfg.write_text("kafka:\n  brokers: 127.0.0.1:9\nroutes:\n  - name: r\n    topics: [t]\n"
                   "    target:\n      grpc:\n" + target_yaml)
    return run_cli(ferry_bin, ["check", "-c", str(cfg)])


def test_check_names_file_line_and_key(ferry_bin, tmp_path, schema):
    pb, _ = schema
    cases = [
        ("        url: https://h:1\n        method: Place\n",
         "routes[0].target.grpc.method", "f.yaml:9", "expected package.Service/Method"),
        ("        url: grpc://h:1\n        method: test.Orders/Place\n",
         "routes[0].target.grpc.url", "f.yaml:8", "expected https://host:port"),
        ("        url: https://h:1\n        method: test.Orders/Place\n        payload: json\n",
         "routes[0].target.grpc.descriptor_set", "f.yaml:", "needs a descriptor set"),
        (f"        url: https://h:1\n        method: test.Orders/Cancel\n"
         f"        descriptor_set: {pb}\n",
         "routes[0].target.grpc.method", "f.yaml:9", "no such method"),
        (f"        url: https://h:1\n        method: test.Orders/Place\n"
         f"        on_status: {{retry: [SLOW]}}\n",
         "routes[0].target.grpc.on_status.retry[0]", "f.yaml:10", "gRPC status name"),
        ("        url: https://h:1\n        method: test.Orders/Place\n"
         "        metadata: {grpc-foo: x}\n",
         "routes[0].target.grpc.metadata.grpc-foo", "f.yaml:10", "set by ferry"),
    ]
    for text, key, line, why in cases:
        res = check(ferry_bin, tmp_path, text)
        assert res.returncode != 0, text
        assert key in res.stderr and line in res.stderr and why in res.stderr, (text, res.stderr)


def test_check_finds_a_message_type_missing_from_the_set(ferry_bin, tmp_path):
    """A set made without --include_imports lacks the imported input type."""
    (tmp_path / "types.proto").write_text('syntax = "proto3";\npackage t;\nmessage In {}\n')
    (tmp_path / "svc.proto").write_text('syntax = "proto3";\npackage s;\nimport "types.proto";\n'
                                        "service S { rpc Do(t.In) returns (t.In); }\n")
    pb = tmp_path / "svc.pb"
    subprocess.run(["protoc", f"--descriptor_set_out={pb}", f"-I{tmp_path}",
                    str(tmp_path / "svc.proto")], check=True, capture_output=True)
    res = check(ferry_bin, tmp_path, f"        url: https://h:1\n        method: s.S/Do\n"
                f"        payload: json\n        descriptor_set: {pb}\n")
    assert res.returncode != 0
    assert "routes[0].target.grpc.method" in res.stderr, res.stderr
    assert "input type '.t.In' is not in the descriptor set" in res.stderr, res.stderr


def test_check_refuses_a_batch_on_a_unary_method(ferry_bin, tmp_path, schema):
    pb, _ = schema
    cfg = tmp_path / "f.yaml"
    cfg.write_text("kafka:\n  brokers: 127.0.0.1:9\nroutes:\n  - name: r\n    topics: [t]\n"
                   "    batch: {max_records: 5}\n    on_status: {retry: [404]}\n"
                   "    target:\n      grpc:\n        url: https://h:1\n"
                   f"        method: test.Orders/Place\n        descriptor_set: {pb}\n")
    res = run_cli(ferry_bin, ["check", "-c", str(cfg)])
    assert res.returncode != 0
    assert "routes[0].batch.max_records" in res.stderr and "unary" in res.stderr, res.stderr
    assert "routes[0].on_status" in res.stderr and "target.grpc.on_status" in res.stderr


def test_redrive_calls_the_method_again(ferry_bin, start_routes, kafka, tls_server, certs):
    s, topic, dlq = tls_server, unique("grpc-rd"), unique("grpc-rd-dlq")
    s.plan[b"later"] = [Status(grpc.StatusCode.FAILED_PRECONDITION, "not yet")]
    f = start_routes(grpc_route("rd", topic, s, certs, dead_letter={"topic": dlq}))
    kafka.produce(topic, [{"partition": 0, "key": b"later", "value": b"later"}])
    [dead] = kafka.consume_n(dlq, 1, use_group=False)
    assert dead_letter_headers(dead)["ferry.grpc_status"] == "9"
    f.stop()
    res = run_cli(ferry_bin, ["redrive", "-c", f.config_path, "--route", "rd"], timeout=60,
                  cwd=f.workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "redriven 1" in res.stdout, res.stdout
    assert s.wait_delivered(1) == [b"later"]
    assert len(s.calls) == 2
