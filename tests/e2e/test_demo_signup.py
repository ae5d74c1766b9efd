"""`make demo-signup` (scripts/demo-signup.sh) runs to its end on free ports: every sign-up
becomes one e-mail, including the two made while the mail server was stopped."""
import os
import signal
import subprocess
from pathlib import Path

from ferrytest import ferry_bin_path, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_signup_loses_nothing():
    env = dict(os.environ, FERRY_PORT=str(free_port()), SMTP_PORT=str(free_port()))
    # In a session of its own, so that whatever happens its ferry and mail server go with it:
    # a timeout kills the whole group, not only the script (whose trap would not run).
    proc = subprocess.Popen([str(ROOT / "scripts" / "demo-signup.sh"), str(ferry_bin_path())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError("demo-signup.sh still running after 300 s\n"
                             + stdout[-3000:] + stderr[-3000:]) from None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the group left behind
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "== 5 sign-ups, 5 distinct e-mails" in stdout, stdout[-3000:]
    assert "Subject: Welcome to Example Shop, Zoë Straßer!" in stdout
    assert stdout.count("[mailbox] e-mail to") >= 5
