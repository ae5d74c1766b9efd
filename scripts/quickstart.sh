#!/usr/bin/env bash
# The quickstart behind `make run`: an example receiver, ferry on its embedded in-memory Kafka
# with the route in examples/quickstart.yaml, and a few demo records, all in this terminal.
# Ctrl-C stops everything.
set -euo pipefail

FERRY=${1:-build/ferry}
PYTHON=${PYTHON:-/usr/bin/python3}
export FERRY_PORT=${FERRY_PORT:-8080}
export RECEIVER_PORT=${RECEIVER_PORT:-9000}
export FERRY_QUICKSTART_DIR=$(mktemp -d /tmp/ferry-quickstart.XXXXXX)
cd "$(dirname "$0")/.."

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$FERRY_QUICKSTART_DIR"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

"$PYTHON" examples/receiver.py "$RECEIVER_PORT" &
pids+=($!)
"$FERRY" run -c examples/quickstart.yaml &
pids+=($!)

for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$FERRY_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
BOOTSTRAP=$(cat "$FERRY_QUICKSTART_DIR/bootstrap.txt")

printf 'user-1:{"order":1,"item":"tea"}\nuser-2:{"order":2,"item":"milk"}\nuser-1:{"order":3,"item":"cake"}\n' |
    kcat -P -b "$BOOTSTRAP" -t orders -K:

cat <<MSG

ferry is running on an embedded in-memory Kafka at $BOOTSTRAP (nothing is kept after exit).
Three demo records were produced to 'orders'; the receiver above prints them as they arrive.

  produce more:   echo 'user-3:{"order":4}' | kcat -P -b $BOOTSTRAP -t orders -K:
  health:         curl http://127.0.0.1:$FERRY_PORT/readyz
  metrics:        curl -s http://127.0.0.1:$FERRY_PORT/metrics | grep ferry_route
  stop:           Ctrl-C

MSG
wait
