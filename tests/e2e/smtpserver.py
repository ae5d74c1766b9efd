"""A real SMTP server for tests (python3-aiosmtpd) that records every message and connection
and can misbehave per recipient: 451 a few times, or 550 always; or answer 451 to the next
few messages once it has read them (a server that took the mail but whose answer says not).

    with SmtpServer() as s:            # a free port on 127.0.0.1, in a thread of this process
        s.url                          # "smtp://127.0.0.1:PORT"
        s.tempfail["slow@example.com"] = 2   # the next 2 RCPTs for it answer 451
        s.reject.add("gone@example.com")      # every RCPT for it answers 550
        s.data_tempfail = 1            # the next message is read whole, then answered 451
        s.wait_messages(10)
        s.messages                     # [Message(mail_from, rcpt_tos, data: bytes, tls: bool)]
        s.refused                      # the messages read whole and answered 451 (data_tempfail)
        s.connections                  # SMTP sessions opened since start (the readiness probe
                                       # excluded)

ScriptedSmtp is a raw server for what aiosmtpd will not act out (a refused greeting, a refused
HELO, STARTTLS offered and then refused); see its docstring.
"""
import asyncio
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


@dataclass
class Message:
    mail_from: str
    rcpt_tos: list
    data: bytes
    tls: bool


def _bound_socket(port):
    """A TCP socket bound to 127.0.0.1:port (0: a port the OS picks), not listening yet."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port used before, too
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


class _Handler:
    def __init__(self, server):
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        s = self.server
        with s.lock:
            s.rcpts.append(address)
            if address in s.reject:
                return "550 5.1.1 no such user here"
            if s.tempfail.get(address, 0) > 0:
                s.tempfail[address] -= 1
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        s = self.server
        m = Message(envelope.mail_from, list(envelope.rcpt_tos),
                    envelope.original_content or envelope.content, session.ssl is not None)
        with s.lock:
            if s.data_tempfail > 0:
                s.data_tempfail -= 1
                s.refused.append(m)
                return "451 4.3.0 try again later"
            s.messages.append(m)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    def __init__(self, owner, sock, *args, **kw):
        self.owner = owner
        self._sock = sock
        super().__init__(*args, **kw)

    def _create_server(self):
        # Serves on the socket bound when the SmtpServer was made, rather than binding its
        # port again: a port picked ahead and closed could be taken by another process first.
        return self.loop.create_server(self._factory_invoker, sock=self._sock,
                                       ssl=self.ssl_context)

    def factory(self):
        with self.owner.lock:
            self.owner.connections += 1
        return SMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    def __init__(self, tls_context=None, require_starttls=False, port=None):
        self.lock = threading.Lock()
        self.messages, self.rcpts, self.refused = [], [], []
        self.data_tempfail = 0
        self.tempfail, self.reject = {}, set()
        self.connections = 0
        sock = _bound_socket(port or 0)
        self.port = sock.getsockname()[1]
        kw = {}
        if tls_context is not None:
            kw = {"tls_context": tls_context, "require_starttls": require_starttls}
        # ready_timeout: a thread and an event loop to start, on a machine that may be busy
        self._controller = _Controller(self, sock, _Handler(self), hostname="127.0.0.1",
                                       port=self.port, ready_timeout=30, **kw)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        self._controller.start()
        with self.lock:
            self.connections = 0  # the controller's own readiness probe
        return self

    def stop(self):
        self._controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_messages(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.messages)} of {n} messages arrived in {timeout} s")


def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class ScriptedSmtp:
    """A raw SMTP server (asyncio, in a thread of this process) that answers from a script.

        with ScriptedSmtp(greeting="554 5.7.1 no SMTP service here") as s:   # then closes
        ScriptedSmtp(replies={"RCPT": "503 5.5.1 bad sequence of commands"})
        ScriptedSmtp(starttls=True, replies={"STARTTLS": "454 4.7.0 TLS not available"})
        s.url, s.connections (sessions opened), s.commands (verbs received), s.messages (count)

    A greeting other than 220 ends the session at once. replies maps a verb (EHLO, HELO,
    STARTTLS, MAIL, RCPT, DATA, END for the end of the data) to the reply that replaces the usual
    one; starttls offers STARTTLS in the EHLO reply (TLS itself is never started).
    """

    def __init__(self, greeting="220 scripted ESMTP", replies=None, starttls=False):
        self.lock = threading.Lock()
        self.greeting, self.replies = greeting, dict(replies or {})
        self.ehlo = "250-scripted\r\n" + ("250-STARTTLS\r\n" if starttls else "") + "250 8BITMIME"
        self.connections, self.commands, self.messages = 0, [], 0
        self._sock = _bound_socket(0)
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._sessions = set()
        self._server = None

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def _usual(self, verb):
        return {"EHLO": self.ehlo, "HELO": "250 scripted", "MAIL": "250 OK", "RCPT": "250 OK",
                "DATA": "354 go ahead", "END": "250 accepted", "RSET": "250 OK",
                "NOOP": "250 OK", "QUIT": "221 bye",
                "STARTTLS": "454 4.7.0 TLS not available"}.get(verb, "502 5.5.2 not implemented")

    async def _say(self, writer, verb):
        writer.write((self.replies.get(verb) or self._usual(verb)).encode() + b"\r\n")
        await writer.drain()

    async def _data(self, reader, writer):
        while (await reader.readline()) not in (b".\r\n", b""):
            pass
        with self.lock:
            self.messages += 1
        await self._say(writer, "END")

    async def _session(self, reader, writer):
        self._sessions.add(asyncio.current_task())
        with self.lock:
            self.connections += 1
        try:
            writer.write(self.greeting.encode() + b"\r\n")
            await writer.drain()
            while self.greeting.startswith("220"):
                line = await reader.readline()
                if not line:
                    break
                verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
                with self.lock:
                    self.commands.append(verb)
                await self._say(writer, verb)
                if verb == "QUIT":
                    break
                if verb == "DATA" and (self.replies.get("DATA") or "354").startswith("354"):
                    await self._data(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()
            self._sessions.discard(asyncio.current_task())

    async def _open(self):
        self._server = await asyncio.start_server(self._session, sock=self._sock)

    async def _close(self):
        self._server.close()
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    def start(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(10)
        return self

    def stop(self):
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
