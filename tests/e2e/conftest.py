"""Fixtures of ferry's end-to-end tests. The machinery lives in ferrytest.py.

Every process a fixture starts is stopped and reaped in the fixture's finalizer, and its
stderr is checked for sanitizer reports (a report fails the test). The stderr of every ferry
process a test started is attached to that test's report when it fails.
"""
import atexit
import os
import re
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ferrytest  # noqa: E402
from ferrytest import DevBroker, Ferry, Kafka, Proc, Receiver, deep_merge, to_yaml  # noqa: E402

_current_procs = []  # processes started by the running test (for its failure report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in _current_procs:
            report.sections.append((f"ferry process {proc.name}", proc.describe(tail=120)))


@pytest.fixture(autouse=True)
def _track_procs():
    _current_procs.clear()
    yield
    _current_procs.clear()


def _finish(proc):
    """Closes proc and fails if it printed a sanitizer report."""
    proc.close()
    proc.assert_no_sanitizer_report()


def _on_sigterm(signum, frame):
    # pytest killed from outside (a CI timeout, `timeout`): take the processes down with it,
    # since they run in their own sessions and would outlive us. Then stop like on Ctrl-C.
    ferrytest.kill_all_started()
    raise KeyboardInterrupt(f"pytest got signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _no_strays():
    """After the suite: every process the harness started is gone, group and all."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(ferrytest.kill_all_started)
    yield
    signal.signal(signal.SIGTERM, previous)
    left = []
    for proc in Proc.started:
        if proc.alive():
            left.append(proc.describe(tail=5))
            proc.close()
        try:
            os.killpg(proc.pid, 0)
            left.append(f"process group {proc.pid} ({proc.name}) still has members")
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    children = _live_children()
    assert not left, "processes left running after the suite:\n" + "\n".join(left)
    assert not children, f"child processes of pytest left running: {children}"


def _live_children():
    me = os.getpid()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me and fields[0] != "Z" and comm == "ferry":
            found.append(f"{d.name} ({comm})")
    return found


@pytest.fixture(scope="session")
def ferry_bin():
    path = ferrytest.ferry_bin_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"ferry binary not found at {path}: build it (make build-test) or set FERRY_BIN",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def ferry_version(ferry_bin):
    res = ferrytest.run_cli(ferry_bin, ["version"])
    assert res.returncode == 0, res.stderr
    return res.stdout.split()[1]  # "ferry 0.1.0 (details)" -> "0.1.0"


@pytest.fixture
def free_port():
    """The function free_port() -> int: a port on 127.0.0.1 the OS just handed out."""
    return ferrytest.free_port


@pytest.fixture(scope="session")
def dev_broker_proc(ferry_bin, tmp_path_factory, _no_strays):
    """One `ferry dev-broker` shared by the whole session (topics: use unique names).

    Asks for _no_strays so that it is stopped before that check runs, whichever tests run."""
    proc = DevBroker(ferry_bin, tmp_path_factory.mktemp("dev-broker"), name="session-dev-broker")
    yield proc
    _finish(proc)


@pytest.fixture
def dev_broker(dev_broker_proc):
    """The bootstrap address of the session's dev broker, checked alive for each test."""
    _current_procs.append(dev_broker_proc)
    dev_broker_proc.assert_alive()
    return dev_broker_proc.bootstrap


@pytest.fixture
def start_dev_broker(ferry_bin, tmp_path):
    """start_dev_broker(*args) -> DevBroker: a fresh broker for this test only."""
    procs = []

    def start(*args, name=None):
        proc = DevBroker(ferry_bin, tmp_path, args, name=name or f"dev-broker-{len(procs)}")
        procs.append(proc)
        _current_procs.append(proc)
        return proc

    yield start
    for proc in procs:
        _finish(proc)


@pytest.fixture
def kafka(dev_broker):
    """Kafka helpers (produce, consume_n, partitions) bound to the session's dev broker."""
    return Kafka(dev_broker)


@pytest.fixture
def ferry_config(dev_broker):
    """base_config(**overrides) -> dict: a runnable config on the session broker, listening
    on port 0 (the OS picks a free port as ferry binds; Ferry.port says which)."""

    def make(overrides=None):
        base = {
            "kafka": {"brokers": dev_broker},
            "server": {"listen": "127.0.0.1:0", "shutdown_timeout": "5s"},
            "log": {"level": "info", "format": "logfmt"},
        }
        return deep_merge(base, overrides or {})

    return make


@pytest.fixture
def run_ferry(ferry_bin, tmp_path):
    """run_ferry(config, *, env=None, wait_healthy=True, listen=None, name=None, wrap=()) -> Ferry.

    config is a dict (rendered as YAML; a missing server.listen gets 127.0.0.1:0) or YAML text
    (then pass listen="host:port" unless the text has a `listen:` line). Waits until /healthz
    answers 200 unless wait_healthy is False. Stopped, reaped and sanitizer-checked at the end.
    """
    procs = []

    def run(config, *, env=None, wait_healthy=True, listen=None, name=None, start_timeout=30,
            wrap=()):
        name = name or f"ferry-{len(procs)}"
        if isinstance(config, dict):
            config = dict(config)
            server = dict(config.get("server") or {})
            server.setdefault("listen", "127.0.0.1:0")
            config["server"] = server
            listen = listen or server["listen"]
            text = to_yaml(config)
        else:
            text = config
            if listen is None:
                m = re.search(r"^\s*listen:\s*['\"]?([^'\"\s#]+)", text, re.M)
                assert m, "pass listen= for a config text without a listen: line"
                listen = m.group(1)
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        proc = Ferry(ferry_bin, tmp_path, path, listen, name=name, env=env, wait_healthy=False,
                     wrap=wrap)
        procs.append(proc)
        _current_procs.append(proc)
        if wait_healthy:
            proc.wait_healthy(start_timeout)
        return proc

    yield run
    for proc in procs:
        _finish(proc)


@pytest.fixture
def start_routes(run_ferry, ferry_config):
    """start_routes(*routes, ready=True, name=None, env=None, overrides=None, wrap=()) -> Ferry.

    Runs ferry on the session broker with these `routes:` entries (see ferrytest.route_config)
    and, unless ready is False, waits until /readyz says every route joined its group (the
    dev broker's first join of a group takes about 3 s). overrides merge into the config.
    """

    def start(*routes, ready=True, name=None, env=None, overrides=None, timeout=30, wrap=()):
        cfg = ferry_config(deep_merge({"routes": list(routes)}, overrides or {}))
        f = run_ferry(cfg, name=name, env=env, wrap=wrap)
        if ready:
            f.wait_ready(timeout)
        return f

    return start


@pytest.fixture
def receiver():
    """A fresh Receiver (see ferrytest.Receiver); closed at the end of the test."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def make_receiver():
    """make_receiver(name, port=0) -> Receiver, for tests that need several or a given port."""
    made = []

    def make(name="receiver", port=0):
        r = Receiver(name, port)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def refused_port():
    """A ferrytest.RefusedPort: connections to its .address are refused for the whole test,
    and no other process can take the port meanwhile (unlike a free_port() left unused)."""
    p = ferrytest.RefusedPort()
    yield p
    p.close()
