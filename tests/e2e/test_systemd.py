"""ferry under systemd's Type=notify: READY=1 once /readyz is ready, WATCHDOG=1 every half
WATCHDOG_USEC, STOPPING=1 when it drains, over a NOTIFY_SOCKET the test listens on; and the
unit file in dist/ says what docs/operations.md promises."""
import configparser
import signal
import socket
import time
from pathlib import Path

from ferrytest import wait_until

UNIT = Path(__file__).resolve().parents[2] / "dist" / "ferry.service"


class NotifySocket:
    """A datagram socket like systemd's, collecting (time, message) pairs."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages = []

    def drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, BlockingIOError):
                return self.messages
            self.messages.append((time.monotonic(), data.decode()))

    def lines(self):
        return [line for _, m in self.drain() for line in m.split("\n")]

    def close(self):
        self.sock.close()


def test_ready_watchdog_and_stopping_are_sent(run_ferry, ferry_config, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        f = run_ferry(ferry_config({}), env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
                                             "WATCHDOG_USEC": "400000"})
        wait_until(lambda: "READY=1" in notify.lines(), 30, "READY=1")
        assert f.get("/readyz").status == 200  # ready is what /readyz says
        start = time.monotonic()
        wait_until(lambda: sum(1 for t, m in notify.drain() if t >= start and m == "WATCHDOG=1")
                   >= 4, 10, "four WATCHDOG=1 at half of 400 ms")
        f.send_signal(signal.SIGTERM)
        assert f.wait(30) == 0
        lines = notify.lines()
        assert "STOPPING=1" in lines, lines
        assert lines.index("READY=1") < lines.index("STOPPING=1")
        assert lines.count("READY=1") == 1
    finally:
        notify.close()


def test_without_a_notify_socket_nothing_changes(run_ferry, ferry_config):
    f = run_ferry(ferry_config({}))
    wait_until(lambda: f.get("/readyz").status == 200, 30, "ready")
    f.send_signal(signal.SIGTERM)
    assert f.wait(30) == 0


def test_the_unit_file_is_a_hardened_notify_service():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].startswith("/usr/bin/ferry run -c /etc/ferry/ferry.yaml")
    for key, value in {"DynamicUser": "yes", "ProtectSystem": "strict",
                       "StateDirectory": "ferry", "NoNewPrivileges": "yes"}.items():
        assert service[key] == value, key
    assert "WatchdogSec" in service


def test_an_invalid_config_is_not_restarted(ferry_bin, tmp_path):
    """`ferry run` exits 2 for an invalid config, and the unit tells systemd not to restart on
    2. No ExecStartPre: Restart= would retry a failed one whatever its exit status."""
    from ferrytest import run_cli

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"].split() == ["2"]
    assert "ExecStartPre" not in service
    path = tmp_path / "ferry.yaml"
    path.write_text("server:\n  listen: 127.0.0.1:0\nroutes:\n  - name: r\n    topics: [t]\n"
                    "    target: {url: 'http://127.0.0.1:9/'}\n    retry: {max_attempts: ten}\n")
    res = run_cli(ferry_bin, ["run", "-c", path], timeout=30)
    assert res.returncode == 2, res
    assert "routes[0].retry.max_attempts" in res.stderr and "ferry.yaml:7" in res.stderr, res
