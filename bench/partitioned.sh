#!/usr/bin/env bash
# partitioned.sh BUILD_DIR - tables placed `partitioned` across three ferry instances on this
# machine (`make bench-partitioned`; not part of `make bench`). In one run, on one
# `ferry dev-broker` with a 30-partition topic of BENCH_TABLE_KEYS keys:
#   1. replicas 1: on instance web-0, wrk GETs of keys it holds (answered from its own store)
#      beside GETs of keys it does not (forwarded to the holder): the forwarded rate as a ratio
#      of the local one;
#   2. replicas 2: wrk on web-0 and web-1 while web-2 is killed with kill -9 after a third of
#      the row: errors and p99 of both, and the seconds until every partition is served by two
#      live holders again.
# The three instances, wrk and the broker share the machine's cores: the rates are this
# machine's, the ratio is the figure to compare.
#
# BENCH_TABLE_KEYS  keys (default 200000)      BENCH_SECONDS  seconds per wrk row (default 10)
# BENCH_CONNECTIONS wrk connections (default 64)
set -euo pipefail

BUILD_DIR=${1:?usage: bench/partitioned.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

FERRY=$BUILD_DIR/ferry
PRELOAD=$BUILD_DIR/bench/ferry-bench-preload
HELPER=$BENCH_SRC/partitioned_helper.py
KEYS=${BENCH_TABLE_KEYS:-200000}
SECONDS_PER_ROW=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
TOPIC=prices
TABLE=prices
WORK=$(mktemp -d /tmp/ferry-bench-partitioned.XXXXXX)
PORTS=()
PIDS=()
ROWS=()

finish() {
  bench_cleanup
  rm -rf "$WORK"
}
trap finish EXIT

# start_instance I REPLICAS: ferry web-I with its own store, on PORTS[I].
start_instance() {
  local i=$1 dir=$WORK/web-$1
  mkdir -p "$dir"
  cat >"$dir/ferry.yaml" <<EOF2
kafka: {brokers: "$BROKER_BOOTSTRAP"}
server:
  listen: 127.0.0.1:${PORTS[$i]}
  instance: web-$i
  advertised_url: http://127.0.0.1:${PORTS[$i]}
  threads: 2
log: {level: warn}
cluster: {members_topic: members-$2, heartbeat: 500ms, member_timeout: 3s}
tables:
  - {name: $TABLE, topic: $TOPIC, path: "$dir/store-$2", placement: partitioned, replicas: $2}
EOF2
  "$FERRY" run -c "$dir/ferry.yaml" </dev/null >"$dir/out" 2>>"$dir/err" &
  PIDS[$i]=$!
  BENCH_PIDS+=("${PIDS[$i]}")
}

# start_cluster REPLICAS: three instances, waited for until each sees every partition placed.
start_cluster() {
  local i t
  for i in 0 1 2; do start_instance "$i" "$1"; done
  for i in 0 1 2; do
    t=$("$HELPER" placed "http://127.0.0.1:${PORTS[$i]}" "$TABLE" "$1" 120) || {
      echo "bench: web-$i did not see the partitions placed:" >&2
      tail -5 "$WORK/web-$i/err" >&2
      return 1
    }
  done
  echo "   three instances up, replicas $1, placed in ${t}s (seen from web-2)"
}

stop_cluster() {
  local i
  for i in 0 1 2; do stop_pid "${PIDS[$i]}"; forget_pid "${PIDS[$i]}"; done
}

# wrk_row NAME URL PATHS OUT: wrk over the paths in PATHS; the parsed line goes to stdout.
wrk_row() {
  PATHS_FILE=$3 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_ROW}s" --latency \
    -s "$BENCH_SRC/partitioned_keys.lua" "$2" >"$4" 2>&1
  parse_wrk "$4"
}

bench_forwarding() {
  local line local_line fwd_line
  echo "== replicas 1: local and forwarded GETs on web-0"
  start_cluster 1
  line=$("$HELPER" classify "http://127.0.0.1:${PORTS[0]}" "$TABLE" "$KEYS" 20000 "$WORK")
  echo "   $line of 20000 sampled keys"
  local_line=$(wrk_row local "http://127.0.0.1:${PORTS[0]}" "$WORK/local" "$WORK/wrk-local")
  echo "   local:     $local_line"
  fwd_line=$(wrk_row forwarded "http://127.0.0.1:${PORTS[0]}" "$WORK/forwarded" "$WORK/wrk-fwd")
  echo "   forwarded: $fwd_line"
  ROWS+=("GET, key held by web-0|$(field rps "$local_line")|$(field p99_ms "$local_line")|$(field wrk_errors "$local_line")|-")
  ROWS+=("GET, key forwarded by web-0|$(field rps "$fwd_line")|$(field p99_ms "$fwd_line")|$(field wrk_errors "$fwd_line")|$(awk -v a="$(field rps "$fwd_line")" -v b="$(field rps "$local_line")" 'BEGIN { printf "%.2f of local", b ? a / b : 0 }')")
  FWD_RATIO=$(awk -v a="$(field rps "$fwd_line")" -v b="$(field rps "$local_line")" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
  stop_cluster
}

bench_kill() {
  local a b t line_a line_b
  echo "== replicas 2: GETs on web-0 and web-1, web-2 killed with kill -9"
  start_cluster 2
  "$HELPER" classify "http://127.0.0.1:${PORTS[0]}" "$TABLE" "$KEYS" 5000 "$WORK" >/dev/null
  cat "$WORK/local" "$WORK/forwarded" >"$WORK/all"
  wrk_row kill-a "http://127.0.0.1:${PORTS[0]}" "$WORK/all" "$WORK/wrk-a" >"$WORK/line-a" &
  a=$!
  wrk_row kill-b "http://127.0.0.1:${PORTS[1]}" "$WORK/all" "$WORK/wrk-b" >"$WORK/line-b" &
  b=$!
  sleep $((SECONDS_PER_ROW / 3))
  kill -KILL "${PIDS[2]}"
  forget_pid "${PIDS[2]}"
  t=$("$HELPER" placed "http://127.0.0.1:${PORTS[0]}" "$TABLE" 2 60 web-2) || t=timeout
  wait "$a" "$b"
  line_a=$(cat "$WORK/line-a")
  line_b=$(cat "$WORK/line-b")
  echo "   web-0: $line_a"
  echo "   web-1: $line_b"
  echo "   every partition served by two live holders again ${t}s after the kill" \
    "(member_timeout 3s)"
  ROWS+=("GET on web-0, web-2 killed|$(field rps "$line_a")|$(field p99_ms "$line_a")|$(field wrk_errors "$line_a")|-")
  ROWS+=("GET on web-1, web-2 killed|$(field rps "$line_b")|$(field p99_ms "$line_b")|$(field wrk_errors "$line_b")|-")
  ROWS+=("partitions served twice again|${t}s after the kill|-|-|-")
  KILL_ERRORS=$(($(field wrk_errors "$line_a") + $(field wrk_errors "$line_b")))
  PIDS[2]=0
  stop_pid "${PIDS[0]}"; stop_pid "${PIDS[1]}"
}

main() {
  local r
  for r in 0 1 2; do PORTS[$r]=$(free_port); done
  broker_start "$FERRY" "$WORK" "$TOPIC:30"
  echo "== preload: $KEYS keys of 100 B"
  echo "   $("$PRELOAD" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --records "$KEYS" \
    --bytes 100 --keys "$KEYS")"
  bench_forwarding
  bench_kill
  echo
  printf '%-34s %12s %9s %7s %s\n' row "GET/s" "p99 ms" errors beside
  for r in "${ROWS[@]}"; do
    IFS='|' read -r n rate p99 err beside <<<"$r"
    printf '%-34s %12s %9s %7s %s\n' "$n" "$rate" "$p99" "$err" "$beside"
  done
  echo
  echo "targets: forwarded GET >= 40% of local: $FWD_RATIO ($(awk -v r="$FWD_RATIO" 'BEGIN { print (r >= 0.4 ? "met" : "NOT met") }'));" \
    "zero errors during the kill: $KILL_ERRORS ($([ "$KILL_ERRORS" = 0 ] && echo met || echo "NOT met"))"
}

main
