"""`make demo-signup` (scripts/demo-signup.sh) runs to its end on free ports: every sign-up
becomes one e-mail, including the two made while the mail server was stopped."""
import os
import re
import signal
import subprocess
from pathlib import Path

from ferrytest import ferry_bin_path, free_port

ROOT = Path(__file__).resolve().parents[2]

# ferry's "cannot listen on ... (address in use ...)" and Python's "address already in use"
PORT_TAKEN = re.compile(r"address (already )?in use", re.I)


def run_demo():
    """Runs the script on two ports free_port() handed out; returns (exit code, out, err)."""
    env = dict(os.environ, FERRY_PORT=str(free_port()), SMTP_PORT=str(free_port()))
    # In a session of its own, so that whatever happens its ferry and mail server go with it:
    # a timeout stops the whole group, not only the script.
    proc = subprocess.Popen([str(ROOT / "scripts" / "demo-signup.sh"), str(ferry_bin_path())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the script's trap stops both and removes its dir
        try:
            stdout, stderr = proc.communicate(timeout=30)
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
    return proc.returncode, stdout, stderr


def test_demo_signup_loses_nothing():
    # The script binds its ports some time after free_port() let them go: if another process
    # took one meanwhile, ferry or the mail server cannot listen, and the demo runs again on
    # other ports.
    for _ in range(3):
        rc, stdout, stderr = run_demo()
        if rc == 0 or not PORT_TAKEN.search(stdout + stderr):
            break
    assert rc == 0, stdout[-3000:] + stderr[-3000:]
    assert "== 5 sign-ups, 5 distinct e-mails" in stdout, stdout[-3000:]
    assert "Subject: Welcome to Example Shop, Zoë Straßer!" in stdout
    assert stdout.count("[mailbox] e-mail to") >= 5
