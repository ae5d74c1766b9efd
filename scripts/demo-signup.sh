#!/usr/bin/env bash
# The sign-up example behind `make demo-signup` (docs/targets.md): a local SMTP server
# (examples/mailbox.py), ferry on its embedded in-memory Kafka with examples/signup.yaml, and a
# sign-up "service" (curl) that POSTs {"email", "name"} to ferry's webhook. Each sign-up becomes
# a confirmation e-mail that the mailbox prints as it arrives. Then the mail server is stopped
# for a few seconds while more people sign up, and started again: every e-mail still arrives,
# none twice. Ends by itself; exits non-zero if an e-mail is missing.
set -euo pipefail

FERRY=${1:-build/ferry}
PYTHON=${PYTHON:-/usr/bin/python3}
export FERRY_PORT=${FERRY_PORT:-8080}
export SMTP_PORT=${SMTP_PORT:-2525}
FERRY_DEMO_DIR=$(mktemp -d /tmp/ferry-signup.XXXXXX)
export FERRY_DEMO_DIR
IDS="$FERRY_DEMO_DIR/message-ids"
touch "$IDS"
cd "$(dirname "$0")/.."

mailbox_pid=
ferry_pid=
cleanup() {
    for pid in $ferry_pid $mailbox_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$FERRY_DEMO_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_mailbox() {
    "$PYTHON" examples/mailbox.py "$SMTP_PORT" "$IDS" &
    mailbox_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo-signup: the mail server did not start" >&2
    return 1
}

# Waits up to 60 s until the mailbox has n distinct e-mails.
wait_mails() {
    for _ in $(seq 1 600); do
        [ "$(sort -u "$IDS" | wc -l)" -ge "$1" ] && return 0
        sleep 0.1
    done
    echo "demo-signup: only $(sort -u "$IDS" | wc -l) of $1 e-mails arrived" >&2
    return 1
}

signup() {
    echo "\$ curl -s --json '{\"email\":\"$1\",\"name\":\"$2\"}' http://127.0.0.1:$FERRY_PORT/webhooks/signups"
    curl -s --json "{\"email\":\"$1\",\"name\":\"$2\"}" "http://127.0.0.1:$FERRY_PORT/webhooks/signups"
    echo
}

start_mailbox
"$FERRY" run -c examples/signup.yaml 2> "$FERRY_DEMO_DIR/ferry.log" &
ferry_pid=$!
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$FERRY_PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$ferry_pid" 2>/dev/null || { cat "$FERRY_DEMO_DIR/ferry.log" >&2; exit 1; }
    sleep 0.1
done

echo
echo "== Three people sign up; each gets a confirmation e-mail."
signup ann@example.com "Ann Lee"
signup bo@example.com "Bo Berg"
signup zoe@example.com "Zoë Straßer"
wait_mails 3

echo
echo "== The mail server goes away; two more people sign up meanwhile."
kill -TERM "$mailbox_pid"
wait "$mailbox_pid" 2>/dev/null || true
mailbox_pid=
signup cy@example.com "Cy Young"
signup dee@example.com "Dee Park"
sleep 3
echo "   (ferry keeps retrying with backoff: $(grep -c 'target is failing\|still failing' "$FERRY_DEMO_DIR/ferry.log" || true) failure line(s) in its log so far)"

echo
echo "== The mail server is back: the two waiting e-mails arrive."
start_mailbox
wait_mails 5

echo
echo "== $(sort -u "$IDS" | wc -l) sign-ups, $(sort -u "$IDS" | wc -l) distinct e-mails, $(wc -l < "$IDS") sent: nothing lost."
