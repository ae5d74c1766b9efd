"""`make demo-signup` (scripts/demo-signup.sh) runs to its end on free ports: every sign-up
becomes one e-mail, including the two made while the mail server was stopped."""
import os
import subprocess
from pathlib import Path

from ferrytest import ferry_bin_path, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_signup_loses_nothing():
    env = dict(os.environ, FERRY_PORT=str(free_port()), SMTP_PORT=str(free_port()))
    res = subprocess.run([str(ROOT / "scripts" / "demo-signup.sh"), str(ferry_bin_path())],
                         env=env, capture_output=True, text=True, timeout=180,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "== 5 sign-ups, 5 distinct e-mails" in res.stdout, res.stdout[-3000:]
    assert "Subject: Welcome to Example Shop, Zoë Straßer!" in res.stdout
    assert res.stdout.count("[mailbox] e-mail to") >= 5
