"""The Debian package (`make deb`, CPack): built from the build the suite tests, installed with
dpkg -i into a scratch root, its example config checked by the installed binary, its man pages
rendered, then purged: nothing of it is left."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def build_dir():
    return Path(os.environ.get("FERRY_BIN", "build-test/ferry")).resolve().parent


def dpkg(root, *args):
    return subprocess.run(["dpkg", f"--root={root}", "--force-depends",
                           "--force-script-chrootless", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def deb(tmp_path):
    out = tmp_path / "pkg"
    res = subprocess.run(["cpack", "-G", "DEB", "-B", str(out),
                          "--config", str(build_dir() / "CPackConfig.cmake")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (found,) = out.glob("ferry_*.deb")
    return found


def test_package_installs_checks_its_example_and_purges(deb, tmp_path):
    info = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Depends"],
                          capture_output=True, text=True, check=True).stdout
    assert "Package: ferry" in info and "librdkafka1" in info and "liblmdb0" in info, info
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
                               check=True).stdout
    assert b"conffiles" in conffiles

    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    (root / "var/lib/dpkg/status").touch()
    res = dpkg(root, "-i", str(deb))
    assert res.returncode == 0, res.stdout + res.stderr
    for path in ("usr/bin/ferry", "etc/ferry/ferry.yaml", "usr/lib/systemd/system/ferry.service",
                 "usr/share/man/man1/ferry.1.gz", "usr/share/man/man5/ferry.yaml.5.gz"):
        assert (root / path).exists(), path

    check = subprocess.run([str(root / "usr/bin/ferry"), "check", "-c",
                            str(root / "etc/ferry/ferry.yaml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "valid" in check.stdout

    if shutil.which("man"):
        for page, words in (("man5/ferry.yaml.5.gz", "circuit_breaker"),
                            ("man1/ferry.1.gz", "dev-broker")):
            text = subprocess.run(["man", "-l", str(root / "usr/share/man" / page)],
                                  capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "MANPAGER": "cat", "PAGER": "cat",
                                       "MANWIDTH": "100"}).stdout
            assert words in text, f"{page} does not mention {words}"

    res = dpkg(root, "-P", "ferry")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (root / "usr/bin/ferry").exists()
    assert not (root / "etc/ferry/ferry.yaml").exists()
