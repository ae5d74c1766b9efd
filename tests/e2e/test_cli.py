"""The command line: version, help, and how bad invocations are refused."""
import re

import pytest

from ferrytest import run_cli

SUBCOMMANDS = ["run", "check", "dev-broker", "version"]


def test_version(ferry_bin):
    res = run_cli(ferry_bin, ["version"])
    assert res.returncode == 0, res.stderr
    # `ferry <version>`; details in parentheses after it (library versions) are tolerated.
    assert re.fullmatch(r"ferry \d+\.\d+\.\d+\S*( \(.*\))?\n", res.stdout), repr(res.stdout)


def test_version_matches_cmake_project_version(ferry_bin):
    from ferrytest import REPO_ROOT

    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    m = re.search(r"project\(ferry VERSION (\S+)", cmake)
    if not m:
        pytest.skip("CMakeLists.txt names no project version")
    assert run_cli(ferry_bin, ["version"]).stdout.split()[:2] == ["ferry", m.group(1)]


def test_version_help_and_extra_arguments(ferry_bin):
    """`ferry version --help` describes the command, as for every command, and an argument it
    does not take is refused; both used to print the version."""
    res = run_cli(ferry_bin, ["version", "--help"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: ferry version"), res.stdout
    res = run_cli(ferry_bin, ["version", "--frobnicate"])
    assert res.returncode == 2, res
    assert "'--frobnicate'" in one_line(res.stderr) and res.stdout == ""


def test_top_level_help_lists_subcommands(ferry_bin):
    res = run_cli(ferry_bin, ["--help"])
    assert res.returncode == 0, res.stderr
    assert "usage" in res.stdout.lower(), res.stdout
    for sub in SUBCOMMANDS:
        assert sub in res.stdout, f"--help does not mention {sub!r}:\n{res.stdout}"


@pytest.mark.parametrize("sub", ["run", "check", "dev-broker"])
def test_subcommand_help(ferry_bin, sub):
    res = run_cli(ferry_bin, [sub, "--help"])
    assert res.returncode == 0, res.stderr
    assert "usage" in res.stdout.lower() and sub in res.stdout, res.stdout


@pytest.mark.parametrize("sub, flag", [("run", "-c"), ("check", "-c"),
                                       ("dev-broker", "--bootstrap-file")])
def test_subcommand_help_names_its_flags(ferry_bin, sub, flag):
    res = run_cli(ferry_bin, [sub, "--help"])
    assert flag in res.stdout, res.stdout


def one_line(stderr):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def test_unknown_subcommand(ferry_bin):
    res = run_cli(ferry_bin, ["frobnicate"])
    assert res.returncode == 2
    assert "frobnicate" in one_line(res.stderr)
    assert res.stdout == ""


@pytest.mark.parametrize("args", [
    ["--frobnicate"],
    ["run", "--frobnicate"],
    ["check", "--frobnicate"],
    ["dev-broker", "--frobnicate"],
])
def test_unknown_flag(ferry_bin, args):
    res = run_cli(ferry_bin, args)
    assert res.returncode == 2, res
    assert "frobnicate" in one_line(res.stderr)


@pytest.mark.parametrize("spec, message", [
    ("orders eu:2", "topic name 'orders eu' holds ' '"),
    ("..:1", "'..' is not allowed as a topic name"),
    ("t" * 250 + ":1", "topic name is 250 characters long, Kafka allows at most 249"),
], ids=["space", "dots", "250-characters"])
def test_dev_broker_refuses_topic_names_kafka_refuses(ferry_bin, spec, message):
    """A --topic Kafka would refuse is a usage error at once, not a cluster that runs without it."""
    res = run_cli(ferry_bin, ["dev-broker", "--topic", "orders:8", "--topic", spec], timeout=15)
    assert res.returncode == 2, res
    assert message in one_line(res.stderr), res.stderr


def test_run_missing_config_file(ferry_bin, tmp_path):
    missing = tmp_path / "missing.yaml"
    res = run_cli(ferry_bin, ["run", "-c", missing], timeout=15)
    assert res.returncode == 2, res
    assert str(missing) in one_line(res.stderr)


def test_check_missing_config_file(ferry_bin, tmp_path):
    # A config that cannot be read, like one that is invalid, exits 2 (docs/cli.md), and the
    # file is named.
    missing = tmp_path / "missing.yaml"
    res = run_cli(ferry_bin, ["check", "-c", missing])
    assert res.returncode == 2, res
    assert str(missing) in res.stderr


@pytest.mark.parametrize("config, message", [
    ("server: {listen: '999.1.1.1:8080'}\n", "server.listen: cannot resolve '999.1.1.1'"),
    ("server: {listen: '127.0.0.1:0'}\nkafka: {dev: {bootstrap_file: /nonexistent/ferry-dir/bootstrap.txt}}\n",
     "kafka.dev.bootstrap_file: cannot write '/nonexistent/ferry-dir/bootstrap.txt'"),
])
def test_start_failure_names_the_key(ferry_bin, tmp_path, config, message):
    # Found only when ferry starts (a name to resolve, a file to write), not by `ferry check`:
    # the error still says which setting it was.
    path = tmp_path / "ferry.yaml"
    path.write_text(config)
    res = run_cli(ferry_bin, ["run", "-c", path], timeout=90)
    assert res.returncode == 1, res
    assert f"cannot start: {message}" in res.stderr, res.stderr
