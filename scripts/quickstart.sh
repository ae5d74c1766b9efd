#!/usr/bin/env bash
# The quickstart behind `make run`: an example receiver, ferry on its embedded in-memory Kafka
# with the route, the ingest endpoints and the table in examples/quickstart.yaml, a few demo
# records produced with kcat and one POSTed to ferry with curl, then the table read back (one
# read waiting for a write it must see), all in this terminal.
# Ctrl-C stops everything.
set -euo pipefail

FERRY=${1:-build/ferry}
PYTHON=${PYTHON:-/usr/bin/python3}
export FERRY_PORT=${FERRY_PORT:-8080}
export RECEIVER_PORT=${RECEIVER_PORT:-9000}
FERRY_QUICKSTART_DIR=$(mktemp -d /tmp/ferry-quickstart.XXXXXX)
export FERRY_QUICKSTART_DIR
cd "$(dirname "$0")/.."

# Ctrl-C reaches ferry straight from the terminal (it is in this script's process group), and
# ferry drains on it; a second signal from here would cut its drain short. So after Ctrl-C
# ferry gets up to FERRY_DRAIN_WAIT seconds on its own before SIGTERM, and otherwise (SIGTERM,
# an error) SIGTERM at once. The receiver, started in the background by a script, ignores
# SIGINT, so it always gets SIGTERM.
FERRY_DRAIN_WAIT=35
receiver_pid=
ferry_pid=
interrupted=
cleanup() {
    local waited=0
    if [ -n "$ferry_pid" ] && [ -n "$interrupted" ]; then
        while kill -0 "$ferry_pid" 2>/dev/null && [ "$waited" -lt $((FERRY_DRAIN_WAIT * 10)) ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
    fi
    for pid in $ferry_pid $receiver_pid; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$FERRY_QUICKSTART_DIR"
}
trap cleanup EXIT
trap 'interrupted=1; exit 0' INT
trap 'exit 0' TERM HUP

"$PYTHON" examples/receiver.py "$RECEIVER_PORT" &
receiver_pid=$!
"$FERRY" run -c examples/quickstart.yaml &
ferry_pid=$!

for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$FERRY_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
BOOTSTRAP=$(cat "$FERRY_QUICKSTART_DIR/bootstrap.txt")

printf 'user-1:{"order":1,"item":"tea"}\nuser-2:{"order":2,"item":"milk"}\nuser-1:{"order":3,"item":"cake"}\n' |
    kcat -P -b "$BOOTSTRAP" -t orders -K:

# One more record, over HTTP this time: ferry answers once Kafka has it, with its offset.
REST_BODY='{"records":[{"key":"user-4","value":{"order":4,"item":"jam"}}]}'
REST_CMD="curl -s -H 'Content-Type: application/vnd.kafka.json.v2+json' --data '$REST_BODY' http://127.0.0.1:$FERRY_PORT/topics/orders"
echo "\$ $REST_CMD"
curl -s -H 'Content-Type: application/vnd.kafka.json.v2+json' --data "$REST_BODY" \
    "http://127.0.0.1:$FERRY_PORT/topics/orders"

# The table holds each user's latest order: user-1's is the third record.
TABLE_CMD="curl -s http://127.0.0.1:$FERRY_PORT/tables/orders/keys/user-1"
echo
echo "\$ $TABLE_CMD"
for _ in $(seq 1 300); do
    answer=$(curl -s "http://127.0.0.1:$FERRY_PORT/tables/orders/keys/user-1")
    case "$answer" in *cake*) break ;; esac
    sleep 0.1
done
echo "$answer"

# Read your writes: POST to the webhook, then GET the key with the partition and offset the
# POST answered, and the table answers once it has applied that record.
WEBHOOK_ANSWER=$(curl -s --json '{"user":"user-5","order":5,"item":"bread"}' \
    "http://127.0.0.1:$FERRY_PORT/webhooks/orders")
AT=$(echo "$WEBHOOK_ANSWER" | sed -n 's/.*"partition":\([0-9]*\),"offset":\([0-9]*\).*/\1:\2/p')
RYW_CMD="curl -s 'http://127.0.0.1:$FERRY_PORT/tables/orders/keys/user-5?min_offset=$AT'"
echo "\$ $RYW_CMD"
curl -s "http://127.0.0.1:$FERRY_PORT/tables/orders/keys/user-5?min_offset=$AT"
echo

cat <<MSG

ferry is running on an embedded in-memory Kafka at $BOOTSTRAP (nothing is kept after exit).
Three demo records were produced to 'orders' with kcat and two were POSTed with curl; the
receiver above prints them as they arrive, and the table 'orders' holds each user's latest.

  POST a record (REST Proxy v2 API; the json format keeps the key as JSON, quotes included):
    $REST_CMD
  POST any JSON to the webhook (keyed by its "user" field):
    curl -s --json '{"user":"user-5","order":5}' http://127.0.0.1:$FERRY_PORT/webhooks/orders
  produce with kcat:   echo 'user-3:{"order":6}' | kcat -P -b $BOOTSTRAP -t orders -K:
  read the table:      $TABLE_CMD
  wait for a change:   curl -s -H 'If-None-Match: "<ETag of the last answer>"' -H 'Prefer: wait=30' \\
                         http://127.0.0.1:$FERRY_PORT/tables/orders/keys/user-1
  the table's state:   curl -s http://127.0.0.1:$FERRY_PORT/tables/orders
  health:              curl http://127.0.0.1:$FERRY_PORT/readyz
  metrics:             curl -s http://127.0.0.1:$FERRY_PORT/metrics | grep -E 'ferry_(route|ingest|table)'
  stop:                Ctrl-C

MSG
wait
