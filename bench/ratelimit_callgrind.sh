#!/usr/bin/env bash
# ratelimit_callgrind.sh BUILD_DIR [RECORDS] - the rate limiter's share of a one-record route's
# instructions, counted by callgrind in one run.
#
# Preloads RECORDS records (default 20000) of 100 B on `ferry dev-broker`, then runs `ferry run`
# under valgrind's callgrind with one route (one request per record, `ordering: none`) POSTing
# them to a private nginx, with `rate_limit: {requests_per_second: 1000000000}` (checked and
# charged on every request, never binding) and a shared limiter of the same rate, so each request
# passes two limiters. Once every record was delivered ferry is stopped, and the script prints
# the instructions of the whole process, those of ferry_ratelimit_ready_ns and
# ferry_ratelimit_take (inclusive), and their share. The whole process includes start-up and the
# embedded librdkafka's threads, so the share is a little low; per record, it is close.
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

BUILD_DIR=$(cd "${1:?usage: bench/ratelimit_callgrind.sh BUILD_DIR [RECORDS]}" && pwd)
RECORDS=${2:-20000}
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

FERRY=$BUILD_DIR/ferry
BENCH_PIDS=()
WORK=$(mktemp -d /tmp/ferry-rl-callgrind.XXXXXX)
trap 'bench_cleanup; rm -rf "$WORK"' EXIT

broker_start "$FERRY" "$WORK" "rl:8"
nginx_start "$WORK"
"$BUILD_DIR/bench/ferry-bench-preload" --bootstrap "$BROKER_BOOTSTRAP" --topic rl \
  --records "$RECORDS" --bytes 100 >/dev/null
port=$(free_port)
cat >"$WORK/ferry.yaml" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {fetch.wait.max.ms: 10}
server: {listen: "127.0.0.1:$port"}
log: {level: warn}
limiters:
  - {name: shared, requests_per_second: 1000000000}
routes:
  - name: rl
    topics: [rl]
    target: {url: "$NGINX_URL"}
    concurrency: 64
    ordering: none
    io_threads: 0
    rate_limit: {requests_per_second: 1000000000, limiter: shared}
YAML
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
  "$FERRY" run -c "$WORK/ferry.yaml" >"$WORK/ferry.out" 2>"$WORK/ferry.err" &
fpid=$!
BENCH_PIDS+=("$fpid")
"$BUILD_DIR/bench/ferry-bench-wait" --url "http://127.0.0.1:$port/metrics" --records "$RECORDS" \
  --timeout 900 >/dev/null
kill -TERM "$fpid"
wait "$fpid" || true
callgrind_annotate --inclusive=yes "$WORK/callgrind.out" >"$WORK/annotate.txt" 2>/dev/null
awk -v n="$RECORDS" '
  function num(s) { gsub(",", "", s); return s + 0 }
  /PROGRAM TOTALS/ { total = num($1) }
  /ferry_ratelimit_ready_ns/ { ready += num($1) }
  /ferry_ratelimit_take/ { take += num($1) }
  END {
    printf "records=%d total_ir=%.0f per_record=%.0f limiter_ir=%.0f per_record=%.1f share=%.3f%%\n",
      n, total, total / n, ready + take, (ready + take) / n, 100 * (ready + take) / total
  }' "$WORK/annotate.txt"
