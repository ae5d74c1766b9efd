"""gRPC targets (`target.grpc`) against a real gRPC server (python3-grpcio's generic handlers,
in this process; tests/e2e/grpcserver.py), over TLS with a certificate made for the test and
over h2c: unary calls with metadata and grpc-timeout; each status class (retried then
delivered, dead-lettered with ferry.grpc_status and ferry.grpc_message, an on_status
override), in trailers-only answers and in trailers; a deadline passed is retried; 1,000 calls
share one TLS connection while h2c opens one per call; a batch is one client-streaming call;
JSON is encoded to protobuf (checked by decoding at the server with classes built from the
descriptor set at run time) and a bad field is dead-lettered with its path, never sent; kill -9
mid-stream loses nothing; `ferry check` names file, line and key of a bad gRPC target.
"""
import json
import signal
import subprocess
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ferrytest import route_config, route_metric, run_cli, unique, wait_route_metric, wait_until
from grpcserver import GrpcServer, Slow, Status

PROTO = """
syntax = "proto3";
package test;

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
        if tls:
            assert s.connections == 1
        else:  # h2c: a connection per call (curl issue 10634)
            assert s.connections == len(s.calls)
