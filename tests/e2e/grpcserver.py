"""A real gRPC server for tests (python3-grpcio's generic handlers, no generated code) that
records every call and the connection it came on, and can misbehave per message.

    with GrpcServer(tls=(cert, key)) as s:   # a free port on 127.0.0.1, threads of this process
                                              # (delay=SECONDS: every call takes that long)
        s.url                                 # "https://127.0.0.1:PORT" (http:// without tls)
        s.plan[b"msg"] = [Status(grpc.StatusCode.UNAVAILABLE, "busy")]  # answers, in order,
                                              # to calls whose first message is b"msg"; then OK
        s.wait_delivered(10)                  # messages answered OK, in arrival order
        s.calls                               # [Call(method, messages, metadata, peer,
                                              #       time_remaining)]
        s.connections                         # distinct client connections (peer addresses)
        s.headers, s.trailers = (("x-a", "1"),), (("x-b", "2"),)  # metadata every answer sends

The service is test.Orders with Place (unary) and Upload (client streaming); both answer an
empty message. Messages are bytes: decode them with a class made from the descriptor set.
"""
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from ferrytest import wait_until

SERVICE = "test.Orders"


@dataclass
class Status:
    """Fail the call with code and message; after_headers sends the headers first, so the
    status comes in trailers rather than in a trailers-only answer."""

    code: grpc.StatusCode
    message: str = ""
    after_headers: bool = False


@dataclass
class Slow:
    """Answer OK after this many seconds (a call past its deadline is not delivered)."""

    seconds: float


@dataclass
class Call:
    method: str
    messages: list
    metadata: dict
    peer: str
    time_remaining: float  # seconds left of the client's deadline (grpc-timeout), or None
    answer: object = None  # the plan's entry it got, or None for OK
    time: float = field(default_factory=time.monotonic)


class GrpcServer:
    def __init__(self, tls=None, workers=80, delay=0.0):
        self.tls = tls
        self.workers = workers
        self.delay = delay  # seconds every call takes, at least
        self.lock = threading.Lock()
        self.calls = []
        self.delivered = []  # messages answered OK
        self.plan = {}
        self.headers = ()  # initial metadata of every answer
        self.trailers = ()  # trailing metadata of every answer
        self.server = None
        self.port = None

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def connections(self):
        with self.lock:
            return len({c.peer for c in self.calls})

    def start(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers),
                                  maximum_concurrent_rpcs=None)
        handlers = {
            "Place": grpc.unary_unary_rpc_method_handler(self._place),
            "Upload": grpc.stream_unary_rpc_method_handler(self._upload),
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        if self.tls:
            cert, key = (open(p, "rb").read() for p in self.tls)
            creds = grpc.ssl_server_credentials([(key, cert)])
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self

    def stop(self):
        if self.server:
            self.server.stop(grace=None).wait(10)
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_delivered(self, n, timeout=60):
        wait_until(lambda: len(self.delivered) >= n, timeout, f"{n} messages delivered "
                   f"(have {len(self.delivered)}, {len(self.calls)} calls)")
        with self.lock:
            return list(self.delivered)

    def wait_calls(self, n, timeout=60):
        wait_until(lambda: len(self.calls) >= n, timeout, f"{n} calls")
        with self.lock:
            return list(self.calls)

    # ---- the handlers: on the server's worker threads ----

    def _place(self, request, context):
        return self._answer("Place", [request], context)

    def _upload(self, requests, context):
        return self._answer("Upload", list(requests), context)

    def _answer(self, method, messages, context):
        call = Call(method, messages, dict(context.invocation_metadata()), context.peer(),
                    context.time_remaining())
        with self.lock:
            todo = self.plan.get(messages[0] if messages else b"")
            call.answer = todo.pop(0) if todo else None
            self.calls.append(call)
        if self.trailers:
            context.set_trailing_metadata(self.trailers)
        if self.headers:
            context.send_initial_metadata(self.headers)
        if isinstance(call.answer, Status):
            if call.answer.after_headers and not self.headers:
                context.send_initial_metadata(())
            context.abort(call.answer.code, call.answer.message)
        if self.delay:
            time.sleep(self.delay)
        if isinstance(call.answer, Slow):
            time.sleep(call.answer.seconds)
            if not context.is_active():
                return b""
        with self.lock:
            self.delivered.extend(messages)
        return b""
