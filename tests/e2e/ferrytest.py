"""ferrytest - the end-to-end harness for ferry.

Everything a test needs to drive the real binary: bounded waits, OS-picked ports, processes that
are always reaped and checked for sanitizer reports, a YAML writer for configs, a strict parser
for Prometheus text, Kafka client helpers, and an HTTP receiver that can be told to misbehave.
conftest.py wraps these in fixtures; tests may also import them directly.

Runs under /usr/bin/python3 (Debian's python3-confluent-kafka and python3-aiohttp).
"""
import asyncio
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Sanitizer reports that make a test fail whatever its own assertions said.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# How long a process gets to exit after SIGTERM before the harness kills its group.
STOP_GRACE_S = 15.0


# --------------------------------------------------------------------------------------------
# Waiting and ports


class WaitTimeout(AssertionError):
    pass


class StopWaiting(Exception):
    """Raised by a predicate to end wait_until at once: waiting longer cannot help."""


def wait_until(predicate, timeout, what, interval=0.02, max_interval=0.25):
    """Polls predicate() until it returns a truthy value and returns that value.

    Exceptions raised by predicate count as "not yet"; the last one is quoted when the wait
    times out. StopWaiting raised by predicate fails the wait at once (AssertionError). Fails
    with WaitTimeout naming `what` after `timeout` seconds. The poll interval starts at
    `interval` and grows to at most `max_interval`.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    last_value = None
    while True:
        try:
            last_value = predicate()
            if last_value:
                return last_value
            last_exc = None
        except StopWaiting as exc:
            raise AssertionError(f"gave up waiting for {what}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc!r}" if last_exc else f"; last value: {last_value!r}"
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


def free_port():
    """Returns a TCP port on 127.0.0.1 that the OS just handed out and that is closed now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RefusedPort:
    """A port on 127.0.0.1 that refuses every connection for as long as this object is open.

    Its socket is bound but never listens: a connection gets RST, and no other process can bind
    the port meanwhile (the socket has no SO_REUSEADDR), unlike a port free_port() handed out,
    which anyone may take before the test uses it. Use as a context manager or close() it.
    """

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def listening_ports(pid):
    """The ports of the TCP sockets process pid listens on (from /proc), as a set."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                ports.add(int(f[1].rsplit(":", 1)[1], 16))
    return ports


def sanitizer_lines(text):
    """Returns the lines of text that carry a sanitizer report marker."""
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


def sanitizer_env(extra=None):
    """Returns os.environ plus sanitizer options that report and exit instead of aborting."""
    env = dict(os.environ)
    env.update(
        {
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:"
            "detect_stack_use_after_return=0:strict_string_checks=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
            "LSAN_OPTIONS": "exitcode=23",
        }
    )
    if extra:
        env.update(extra)
    return env


def ferry_bin_path():
    """Returns the ferry binary under test: $FERRY_BIN, else <repo>/build-test/ferry."""
    return Path(os.environ.get("FERRY_BIN") or REPO_ROOT / "build-test" / "ferry")


# --------------------------------------------------------------------------------------------
# Processes


class Proc:
    """A ferry process in its own process group, stdout and stderr captured to files.

    close() always leaves nothing running: SIGTERM, a bounded wait, then SIGKILL to the group.
    """

    # Every Proc ever started, so the session can prove none is left behind.
    started = []

    def __init__(self, argv, workdir, name, env=None):
        self.argv = [str(a) for a in argv]
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.workdir / f"{name}.stdout"
        self.stderr_path = self.workdir / f"{name}.stderr"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=sanitizer_env(env),
            cwd=str(self.workdir),
            start_new_session=True,
        )
        self.pid = self.popen.pid
        Proc.started.append(self)

    # -- observation
    def stdout_text(self):
        return self.stdout_path.read_text(errors="replace")

    def stderr_text(self):
        return self.stderr_path.read_text(errors="replace")

    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen.poll() is None

    def describe(self, tail=60):
        """A few lines for a failure message: command, exit status, stderr tail."""
        lines = self.stderr_text().splitlines()
        rc = self.popen.poll()
        return (
            f"[{self.name}] pid {self.pid} {'running' if rc is None else f'exited {rc}'}: "
            f"{' '.join(self.argv)}\n--- stderr (last {tail} lines of {len(lines)}) ---\n"
            + "\n".join(lines[-tail:])
        )

    def assert_alive(self):
        assert self.alive(), f"process died unexpectedly\n{self.describe()}"

    def sanitizer_report(self):
        return sanitizer_lines(self.stderr_text())

    def assert_no_sanitizer_report(self):
        found = self.sanitizer_report()
        assert not found, f"sanitizer report in {self.name}'s stderr: {found[:3]}\n{self.describe(200)}"

    # -- control
    def send_signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def wait(self, timeout):
        """Waits up to timeout seconds; returns the exit code or None if still running."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_GRACE_S):
        """Sends sig and waits for the exit. Returns (exit code, seconds it took).

        Fails (after killing the group) if the process is still running after `timeout`.
        """
        assert self.alive(), f"process already gone before stop\n{self.describe()}"
        t0 = time.monotonic()
        self.popen.send_signal(sig)
        rc = self.wait(timeout)
        elapsed = time.monotonic() - t0
        if rc is None:
            self._kill_group()
            raise AssertionError(
                f"{self.name} still running {timeout:.0f}s after {signal.Signals(sig).name}; "
                f"killed\n{self.describe()}"
            )
        return rc, elapsed

    def _kill_group(self):
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait()

    def close(self):
        """Stops the process if it runs (SIGTERM, then SIGKILL) and reaps it and its group.

        Returns the exit code. Idempotent.
        """
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            if self.wait(STOP_GRACE_S) is None:
                self._kill_group()
        # Anything else left in the group (nothing should be) goes too.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for f in (self._out, self._err):
            if not f.closed:
                f.close()
        return self.popen.returncode


def kill_all_started():
    """SIGKILLs the group of every started process still running. Safe from a signal handler."""
    for proc in list(Proc.started):
        if proc.popen.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class DevBroker(Proc):
    """`ferry dev-broker` with a bootstrap file; .bootstrap is the address it printed."""

    def __init__(self, ferry_bin, workdir, args=(), name="dev-broker", start_timeout=30):
        self.bootstrap_file = Path(workdir) / f"{name}.bootstrap"
        super().__init__(
            [ferry_bin, "dev-broker", *args, "--bootstrap-file", self.bootstrap_file],
            workdir,
            name,
        )
        self.bootstrap = wait_until(
            self._read_bootstrap, start_timeout, f"{name} to write {self.bootstrap_file}"
        )

    def _read_bootstrap(self):
        if not self.alive():
            raise StopWaiting(f"dev-broker exited during start-up\n{self.describe()}")
        try:
            text = self.bootstrap_file.read_text()
        except FileNotFoundError:
            return None
        return text.strip() or None

    def first_stdout_line(self):
        text = self.stdout_text()
        return text.split("\n", 1)[0] if "\n" in text else None


# ferry's line once its HTTP server is up: "listening on HOST:PORT (port N...)".
_LISTENING_RE = re.compile(r"listening on \S+ \(port (\d+)")


class Ferry(Proc):
    """`ferry run -c <config>`; .url is the HTTP base URL (http://127.0.0.1:PORT).

    listen is where to reach ferry, "host:port". Port 0 (the harness's default) lets the OS
    pick a free port when ferry binds, and .port, .listen and .url then wait for the port in
    ferry's "listening on" line (a port picked ahead by the harness could be taken by another
    process before ferry binds it, which happens on a busy machine). With that line hidden
    (log.level warn) the port is the one socket ferry listens on, unless the config starts an
    embedded dev cluster, whose brokers listen too.
    """

    def __init__(self, ferry_bin, workdir, config_path, listen, name="ferry", env=None,
                 wait_healthy=True, start_timeout=30, wrap=()):
        # wrap: a command ferry runs under, e.g. ["taskset", "-c", "0"]
        super().__init__([*wrap, ferry_bin, "run", "-c", config_path], workdir, name, env=env)
        self.config_path = Path(config_path)
        self.host, port = listen.rsplit(":", 1)
        self._port = int(port) or None
        if wait_healthy:
            self.wait_healthy(start_timeout)

    @property
    def port(self):
        """The port ferry listens on; waits for its "listening on" line if it was 0."""
        if self._port is None:
            self.wait_bound()
        return self._port

    @property
    def listen(self):
        return f"{self.host}:{self.port}"

    @property
    def url(self):
        return f"http://{self.listen}"

    def wait_bound(self, timeout=30):
        """Waits until ferry's HTTP server is bound and its port known; returns the port."""
        if self._port is not None:
            return self._port
        embedded = re.search(r"^\s+dev:", self.config_path.read_text(), re.M)

        def bound():
            for line in self.log_lines():
                m = _LISTENING_RE.search(line)
                if m:
                    return int(m.group(1))
            if not self.alive():
                raise StopWaiting(f"ferry exited during start-up\n{self.describe()}")
            ports = set() if embedded else listening_ports(self.pid)
            return ports.pop() if len(ports) == 1 else None

        try:
            self._port = wait_until(bound, timeout, f"{self.name}'s \"listening on\" line")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.describe()}") from None
        return self._port

    def wait_healthy(self, timeout=30):
        deadline = time.monotonic() + timeout
        self.wait_bound(timeout)

        def healthy():
            if not self.alive():
                raise StopWaiting(f"ferry exited during start-up\n{self.describe()}")
            try:
                return http_request("GET", self.url + "/healthz", timeout=2).status == 200
            except OSError:
                return False

        try:
            wait_until(healthy, max(1.0, deadline - time.monotonic()),
                       f"{self.url}/healthz to answer 200")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.describe()}") from None

    def get(self, path, **kw):
        return http_request("GET", self.url + path, **kw)

    def request(self, method, path, **kw):
        return http_request(method, self.url + path, **kw)

    def log_lines(self):
        return self.stderr_text().splitlines()

    def metrics(self, timeout=5):
        """Scrapes /metrics and returns it parsed strictly (Metrics)."""
        resp = self.get("/metrics", timeout=timeout)
        assert resp.status == 200, f"/metrics answered {resp.status}: {resp.text[:200]}"
        return parse_prometheus(resp.text)

    def wait_ready(self, timeout=30):
        """Waits until /readyz answers 200 (every route joined its consumer group)."""

        def ready():
            if not self.alive():
                raise StopWaiting(f"ferry exited\n{self.describe()}")
            try:
                return self.get("/readyz", timeout=2).status == 200
            except OSError:
                return False

        try:
            wait_until(ready, timeout, f"{self.url}/readyz to answer 200")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.describe()}") from None

    def wait_log(self, pattern, timeout=30):
        """Waits until a stderr line matches the regex; returns the match."""
        rx = re.compile(pattern)

        def found():
            for line in self.log_lines():
                m = rx.search(line)
                if m:
                    return m
            return None

        try:
            return wait_until(found, timeout, f"a log line matching {pattern!r}")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.describe()}") from None


def run_cli(ferry_bin, args, timeout=30, env=None, cwd=None, input_text=None):
    """Runs one short ferry command to completion; returns CompletedProcess (text mode).

    Fails if it runs longer than timeout or prints a sanitizer report.
    """
    argv = [str(ferry_bin), *[str(a) for a in args]]
    try:
        res = subprocess.run(
            argv,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=sanitizer_env(env),
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{' '.join(argv)} still running after {timeout}s: {exc}") from None
    found = sanitizer_lines(res.stderr)
    assert not found, f"sanitizer report from {' '.join(argv)}:\n{res.stderr}"
    return res


# --------------------------------------------------------------------------------------------
# HTTP client (stdlib only, one connection per request, bounded by a timeout)


@dataclass
class Response:
    status: int
    headers: dict  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")


def http_request(method, url, body=None, headers=None, timeout=5):
    m = re.match(r"http://([^/:]+):(\d+)(/.*)?$", url)
    assert m, f"unsupported url {url!r}"
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, m.group(3) or "/", body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# YAML writing (block style; enough for configs, no dependency on PyYAML)

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:,@+-]*$")
_YAML_SPECIAL = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan)$"
)


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _PLAIN_SAFE.match(s) and not _YAML_SPECIAL.match(s) and not s.endswith(":"):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def _yaml_lines(obj, indent):
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return [pad + "{}"]
        for k, v in obj.items():
            key = _yaml_scalar(k)
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{key}:")
                out.extend(_yaml_lines(v, indent + 1))
            elif isinstance(v, dict):
                out.append(f"{pad}{key}: {{}}")
            elif isinstance(v, list):
                out.append(f"{pad}{key}: []")
            else:
                out.append(f"{pad}{key}: {_yaml_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                sub = _yaml_lines(v, indent + 1)
                out.append(f"{pad}- {sub[0].lstrip()}")
                out.extend(sub[1:])
            elif isinstance(v, dict):
                out.append(f"{pad}- {{}}")
            elif isinstance(v, list):
                out.append(f"{pad}- []")
            else:
                out.append(f"{pad}- {_yaml_scalar(v)}")
    else:
        out.append(pad + _yaml_scalar(obj))
    return out


def to_yaml(obj):
    """Renders nested dicts/lists/scalars as block-style YAML text."""
    return "\n".join(_yaml_lines(obj, 0)) + "\n"


def deep_merge(base, over):
    """Returns base with over merged in (dicts recursively; other values replaced)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# Prometheus text exposition format 0.0.4, parsed strictly

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SAMPLE_RE = re.compile(rf"^({_METRIC_NAME})(\{{.*\}})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$")
_HELP_RE = re.compile(rf"^#[ \t]+HELP[ \t]+({_METRIC_NAME})(?:[ \t]+(.*))?$")
_TYPE_RE = re.compile(rf"^#[ \t]+TYPE[ \t]+({_METRIC_NAME})[ \t]+(counter|gauge|histogram|summary|untyped)[ \t]*$")
_LABEL_RE = re.compile(rf'[ \t]*({_LABEL_NAME})[ \t]*=[ \t]*"((?:[^"\\\n]|\\[\\"n])*)"[ \t]*(,)?')
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


class PromParseError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    labels: dict
    value: float
    timestamp: int = None


@dataclass
class Metrics:
    help: dict = field(default_factory=dict)
    types: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)

    def find(self, name, **labels):
        """All samples named `name` whose labels include the given ones."""
        return [
            s for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def get(self, name, **labels):
        """The value of the one sample matching; fails if there are none or several."""
        found = self.find(name, **labels)
        assert len(found) == 1, f"expected one sample {name}{labels}, found {len(found)}: {found[:5]}"
        return found[0].value

    def names(self):
        return {s.name for s in self.samples}


def _unescape_label(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def _parse_labels(text, lineno):
    inner = text[1:-1]
    labels = {}
    pos = 0
    while pos < len(inner):
        if inner[pos:].strip() == "":
            break
        m = _LABEL_RE.match(inner, pos)
        if not m:
            raise PromParseError(f"line {lineno}: bad label set {text!r}")
        if m.group(1) in labels:
            raise PromParseError(f"line {lineno}: duplicate label {m.group(1)!r}")
        labels[m.group(1)] = _unescape_label(m.group(2))
        pos = m.end()
        if m.group(3) is None and inner[pos:].strip():
            raise PromParseError(f"line {lineno}: missing ',' in label set {text!r}")
    return labels


def _parse_value(s, lineno):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        raise PromParseError(f"line {lineno}: bad value {s!r}") from None


def _family_of(name, types):
    if name in types:
        return name
    for fam_type, suffixes in _SUFFIXES.items():
        for suf in suffixes:
            base = name[: -len(suf)]
            if name.endswith(suf) and types.get(base) == fam_type:
                return base
    return None


def parse_prometheus(text, strict=True):
    """Parses exposition text into Metrics; raises PromParseError on any malformed line.

    With strict, also requires: the text ends with a newline, every sample's family has a TYPE
    line before its first sample, HELP/TYPE at most once per family, a family's samples are
    contiguous, no series appears twice, and counters are not negative.
    """
    if strict and text and not text.endswith("\n"):
        raise PromParseError("exposition does not end with a newline")
    m = Metrics()
    seen_series = set()
    finished_families = set()
    current_family = None
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            hm, tm = _HELP_RE.match(line), _TYPE_RE.match(line)
            if hm:
                if strict and hm.group(1) in m.help:
                    raise PromParseError(f"line {lineno}: second HELP for {hm.group(1)}")
                m.help[hm.group(1)] = hm.group(2) or ""
            elif tm:
                name = tm.group(1)
                if strict and name in m.types:
                    raise PromParseError(f"line {lineno}: second TYPE for {name}")
                if strict and any(_family_of(s.name, {name: tm.group(2)}) == name for s in m.samples):
                    raise PromParseError(f"line {lineno}: TYPE for {name} after its samples")
                m.types[name] = tm.group(2)
            elif re.match(r"^#[ \t]+(HELP|TYPE)\b", line):
                raise PromParseError(f"line {lineno}: malformed {line!r}")
            continue
        sm = _SAMPLE_RE.match(line)
        if not sm:
            raise PromParseError(f"line {lineno}: malformed sample {line!r}")
        name = sm.group(1)
        labels = _parse_labels(sm.group(2), lineno) if sm.group(2) else {}
        value = _parse_value(sm.group(3), lineno)
        ts = int(sm.group(4)) if sm.group(4) else None
        if strict:
            fam = _family_of(name, m.types)
            if fam is None:
                raise PromParseError(f"line {lineno}: sample {name} has no TYPE line before it")
            if fam != current_family:
                if fam in finished_families:
                    raise PromParseError(f"line {lineno}: samples of {fam} are not contiguous")
                if current_family:
                    finished_families.add(current_family)
                current_family = fam
            key = (name, tuple(sorted(labels.items())))
            if key in seen_series:
                raise PromParseError(f"line {lineno}: series {name}{labels} appears twice")
            seen_series.add(key)
            if m.types[fam] == "counter" and value < 0:
                raise PromParseError(f"line {lineno}: counter {name} is negative")
        m.samples.append(Sample(name, labels, value, ts))
    return m


# --------------------------------------------------------------------------------------------
# Table tags: "<partition>:<offset>-<hash>" (src/table/etag.c, written again here from its
# description, so that a test checks ferry's tags against a second implementation)

_M64 = (1 << 64) - 1
_MUL, _MUL2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9


def _step(h, w):
    h = ((h ^ w) * _MUL) & _M64
    return h ^ (h >> 29)


def value_hash(value):
    """The 8 hex digits of a table tag for a value (bytes or str)."""
    b = value.encode() if isinstance(value, str) else bytes(value)
    lanes = [_MUL2, _MUL, _MUL2 ^ _MUL, (_MUL2 + _MUL) & _M64]
    i, n = 0, len(b)
    while i + 32 <= n:
        for lane in range(4):
            word = int.from_bytes(b[i + 8 * lane:i + 8 * lane + 8], "little")
            lanes[lane] = _step(lanes[lane], word)
        i += 32
    h = _MUL2
    for lane in lanes:
        h = _step(h, lane)
    while i + 8 <= n:
        h = _step(h, int.from_bytes(b[i:i + 8], "little"))
        i += 8
    h = _step(h, int.from_bytes(b[i:], "little"))
    h ^= n
    h = (h * _MUL2) & _M64
    h ^= h >> 32
    h = (h * _MUL) & _M64
    h ^= h >> 29
    return f"{(h ^ (h >> 32)) & 0xFFFFFFFF:08x}"


def event_id(partition, offset, value):
    """The SSE id of a row (a tombstone's value is None: its hash is 00000000)."""
    return f"{partition}:{offset}-{'00000000' if value is None else value_hash(value)}"


def etag(partition, offset, value):
    """The ETag header of a row, quotes included."""
    return f'"{event_id(partition, offset, value)}"'


# --------------------------------------------------------------------------------------------
# Kafka helpers (confluent-kafka)


def _ck():
    import confluent_kafka  # imported lazily so non-Kafka tests do not need it

    return confluent_kafka


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def consumer_config(bootstrap, group=None, **extra):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group or unique("e2e-group"),
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 10,
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
    }
    conf.update(extra)
    return conf


def make_producer(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5}
    conf.update(extra)
    return _ck().Producer(conf)


def produce(bootstrap, topic, records, timeout=30, producer=None, **extra):
    """Produces records and waits for every delivery report; returns the delivered messages.

    records: values (bytes/str), or (key, value) tuples, or dicts with key/value/headers/partition
    and timestamp (ms since the epoch; the delivery reports of the dev broker do not carry the
    record's timestamp, so set it to know it).
    Fails if any delivery fails or the flush does not finish within timeout.
    """
    p = producer or make_producer(bootstrap, **extra)
    delivered, errors = [], []

    def on_delivery(err, msg):
        (errors if err else delivered).append(err or msg)

    for r in records:
        kw = {}
        if isinstance(r, dict):
            kw = {k: r[k] for k in ("key", "value", "headers", "partition", "timestamp") if k in r}
        elif isinstance(r, tuple):
            kw = {"key": r[0], "value": r[1]}
        else:
            kw = {"value": r}
        while True:
            try:
                p.produce(topic, on_delivery=on_delivery, **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(timeout)
    assert not errors, f"delivery failed for {len(errors)} records: {errors[:3]}"
    assert remaining == 0, f"{remaining} records not delivered within {timeout}s"
    assert len(delivered) == len(records)
    return delivered


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list
    timestamp: int


def _record(msg):
    return Record(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
                  msg.headers() or [], msg.timestamp()[1])


def partitions_of(bootstrap, topic, timeout=10):
    """Returns the number of partitions of topic (creating it on the dev broker if needed)."""
    from confluent_kafka.admin import AdminClient  # not imported by `import confluent_kafka`

    admin = AdminClient({"bootstrap.servers": bootstrap})

    def count():
        md = admin.list_topics(topic=topic, timeout=2)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return None
        return len(t.partitions)

    return wait_until(count, timeout, f"metadata for topic {topic!r}")


def consume_n(bootstrap, topic, n, timeout=30, group=None, use_group=True, **extra):
    """Consumes exactly n records of topic from the beginning; returns them as Records.

    use_group=True subscribes with a fresh group (the first join takes ~3 s on the dev broker);
    use_group=False assigns every partition at the beginning, which is faster. Fails on timeout
    naming how many records arrived, and if more than n arrive within a short grace period.
    """
    ck = _ck()
    c = ck.Consumer(consumer_config(bootstrap, group, **extra))
    got, last_err = [], None
    try:
        if use_group:
            c.subscribe([topic])
        else:
            nparts = partitions_of(bootstrap, topic, timeout=min(timeout, 10))
            c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(nparts)])
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"consumed {len(got)} of {n} records from {topic!r} within {timeout}s"
                    + (f"; last error: {last_err}" if last_err else "")
                )
            msg = c.poll(min(0.2, left))
            if msg is None:
                continue
            if msg.error():
                last_err = msg.error()
                if last_err.fatal():
                    raise AssertionError(f"fatal consumer error: {last_err}")
                continue
            got.append(_record(msg))
        # A short look for extras: more than n means duplicates or stray records.
        extra_deadline = time.monotonic() + 0.2
        while time.monotonic() < extra_deadline:
            msg = c.poll(0.05)
            if msg is not None and not msg.error():
                got.append(_record(msg))
        assert len(got) == n, f"expected {n} records from {topic!r}, got {len(got)}"
        return got
    finally:
        c.close()


class Kafka:
    """Kafka helpers bound to one bootstrap address."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap

    def produce(self, topic, records, **kw):
        return produce(self.bootstrap, topic, records, **kw)

    def consume_n(self, topic, n, timeout=30, **kw):
        return consume_n(self.bootstrap, topic, n, timeout, **kw)

    def partitions(self, topic, timeout=10):
        return partitions_of(self.bootstrap, topic, timeout)

    def consumer(self, group=None, **extra):
        return _ck().Consumer(consumer_config(self.bootstrap, group, **extra))

    def producer(self, **extra):
        return make_producer(self.bootstrap, **extra)


# --------------------------------------------------------------------------------------------
# Routes


# Consumer settings that make a route quick against the dev broker: empty fetches return after
# 10 ms (the default waits 500 ms), offsets are committed every 200 ms (the default 5 s would
# widen the window of records redelivered after a crash), and a member that died is noticed
# within 6 s.
ROUTE_TEST_KAFKA = {
    "fetch.wait.max.ms": "10",
    "auto.commit.interval.ms": "200",
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
}


def route_config(name, topics, url, **over):
    """A `routes:` entry for tests: a consumer group of its own (the session's broker outlives
    the test; pass group= to know its name), ROUTE_TEST_KAFKA as its consumer overrides and
    short retry backoffs (50 ms initial, 500 ms max). Keyword arguments are deep-merged over
    it, e.g. route_config("r", [topic], url, batch={"max_records": 10}, ordering="partition")."""
    base = {
        "name": name,
        "topics": list(topics),
        "group": unique(f"ferry-{name}"),
        "kafka": dict(ROUTE_TEST_KAFKA),
        "target": {"url": url},
        "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"},
    }
    return deep_merge(base, over)


def route_metric(metrics, name, route, **labels):
    """The value of a route's sample, 0 when the series is not there yet."""
    found = metrics.find(name, route=route, **labels)
    assert len(found) <= 1, f"several samples {name}{labels}: {found}"
    return found[0].value if found else 0


def wait_route_metric(ferry, name, route, at_least, timeout=30, **labels):
    """Waits until a route's sample reaches at_least; returns the Metrics of that scrape."""

    def reached():
        m = ferry.metrics()
        return m if route_metric(m, name, route, **labels) >= at_least else None

    return wait_until(reached, timeout, f"{name}{{route={route!r}}} to reach {at_least}")


def wait_route_metrics(ferry, route, at_least, timeout=30):
    """Waits until each of a route's samples named in at_least ({name: value}) reaches its
    value in one scrape; returns the Metrics of that scrape. Counters move when ferry has
    finished with a record (a dead letter counts once its write is acknowledged), which can be
    after a receiver or a consumer saw it: wait on every counter a test then compares."""

    def reached():
        m = ferry.metrics()
        ok = all(route_metric(m, name, route) >= v for name, v in at_least.items())
        return m if ok else None

    return wait_until(reached, timeout, f"route {route!r} to reach {at_least}")


def wait_delivered(ferry, route, n, timeout=30):
    """Waits until the route counts n records delivered; returns the Metrics."""
    return wait_route_metric(ferry, "ferry_route_records_delivered_total", route, n, timeout)


def group_committed(bootstrap, group, topic, partitions, timeout=10):
    """The offsets the group committed for topic's partitions, as {partition: offset}; a
    partition without a commit is left out. Reads them with OffsetFetch, without joining."""
    ck = _ck()
    c = ck.Consumer(consumer_config(bootstrap, group))
    try:
        parts = c.committed([ck.TopicPartition(topic, p) for p in range(partitions)],
                            timeout=timeout)
        return {tp.partition: tp.offset for tp in parts if tp.offset >= 0}
    finally:
        c.close()


# --------------------------------------------------------------------------------------------
# HTTP receiver that can misbehave


@dataclass
class Reply:
    """Answer with status, headers and body, after an optional delay (seconds)."""

    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


@dataclass
class Hang:
    """Never answer; the request is held until the receiver is released or closed."""


@dataclass
class Drop:
    """Close the connection without answering (after an optional delay)."""

    delay: float = 0.0


def retry_after(seconds, status=429):
    return Reply(status=status, body=b'{"error":"slow down"}',
                 headers={"Content-Type": "application/json", "Retry-After": str(seconds)})


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict  # lower-cased names; repeated headers joined with ", "
    body: bytes
    time: float  # time.monotonic() when the body had been read
    peer: tuple  # (host, port) of the client connection
    raw_path: str = ""  # the path as sent, percent-encoding kept (path is decoded)
    # time.monotonic() just before the answer was handed to aiohttp, so the client cannot have
    # seen it earlier; None while unanswered, and for Hang/Drop requests that never got one.
    done: float = None
    status: int = None  # the status answered, once answered

    def json(self):
        return json.loads(self.body)

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)


class Receiver:
    """An aiohttp server on 127.0.0.1:<OS port> in a background thread that records requests.

    port=0 lets the OS pick the port; a given port lets a test start a receiver where a route
    already points (connection refused until then).

    Behaviour per request, first match wins: a queued behaviour for the request's path
    (push(..., path=...)), then one queued for any path, then .handler(received) if set,
    then .default. Behaviours: Reply, Hang, Drop.
    """

    def __init__(self, name="receiver", port=0):
        self.name = name
        self._want_port = port
        self.default = Reply()
        self.handler = None
        self._lock = threading.Lock()
        self._requests = []
        self._queues = {}  # path or None -> list of behaviours
        self._in_flight = 0
        self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._release = None
        self._ready = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"{name}: server did not start within 30 s")
        if self._start_error:
            raise self._start_error
        self.url = f"http://127.0.0.1:{self.port}"

    # -- scripting
    def push(self, *behaviours, path=None):
        """Queues behaviours, used one per request in order (for `path` or for any path)."""
        with self._lock:
            self._queues.setdefault(path, []).extend(behaviours)

    def statuses(self, *codes, path=None):
        """Queues plain replies with these status codes."""
        self.push(*[Reply(status=c) for c in codes], path=path)

    def release_hung(self):
        """Lets every held (Hang) request finish with the default reply."""
        self._loop.call_soon_threadsafe(self._new_release_event)

    def _new_release_event(self):
        self._release.set()
        self._release = asyncio.Event()

    # -- observation
    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    @property
    def in_flight(self):
        with self._lock:
            return self._in_flight

    def clear(self):
        with self._lock:
            self._requests.clear()
            self.max_in_flight = self._in_flight

    def wait_for(self, n, timeout=30, path=None):
        """Waits until at least n requests (to path, if given) arrived; returns them."""

        def enough():
            got = [r for r in self.requests if path is None or r.path == path]
            return got if len(got) >= n else None

        return wait_until(enough, timeout, f"{n} requests at {self.name}{' ' + path if path else ''} "
                          f"(have {len(self.requests)})")

    # -- internals
    def _next_behaviour(self, rec):
        with self._lock:
            for key in (rec.path, None):
                q = self._queues.get(key)
                if q:
                    return q.pop(0)
        if self.handler:
            return self.handler(rec)
        return self.default

    async def _handle(self, request):
        from aiohttp import web

        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        headers = {}
        for k, v in request.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        rec = Received(request.method, request.path, request.query_string, headers, body,
                       time.monotonic(), tuple(peer[:2]) if peer else None,
                       raw_path=request.raw_path.split("?", 1)[0])
        with self._lock:
            self._requests.append(rec)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            beh = self._next_behaviour(rec)
            if isinstance(beh, Hang):
                await self._release.wait()
                beh = self.default
            if isinstance(beh, Drop):
                if beh.delay:
                    await asyncio.sleep(beh.delay)
                if request.transport:
                    request.transport.abort()
                raise asyncio.CancelledError()
            if beh.delay:
                await asyncio.sleep(beh.delay)
            rec.status = beh.status
            rec.done = time.monotonic()
            return web.Response(status=beh.status, body=beh.body, headers=beh.headers)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _run(self):
        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        try:
            self._release = asyncio.Event()
            app = web.Application(client_max_size=256 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            self._loop.run_until_complete(self._runner.setup())
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._want_port))
            self.port = sock.getsockname()[1]
            site = web.SockSite(self._runner, sock, shutdown_timeout=0.5)
            self._loop.run_until_complete(site.start())
        except Exception as exc:  # noqa: BLE001 - reported to the starting thread
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def close(self):
        """Releases held requests, stops the server and joins its thread."""
        if not self._thread.is_alive():
            return

        def stop():
            self._release.set()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(15)
        assert not self._thread.is_alive(), f"{self.name} thread did not stop"
