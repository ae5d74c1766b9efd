#!/usr/bin/env bash
# adaptive.sh BUILD_DIR - adaptive concurrency against concurrency set by hand, on a receiver
# with a capacity (issue 12, "Benchmark"); `make bench-adaptive`.
#
# In one run, against one `ferry dev-broker` in its own process:
#   1. preload: ferry-bench-preload writes BENCH_RECORDS records of 100 B to a 64-partition
#      topic; every route run reads it from the start with a group of its own, one record per
#      request, and never reaches its end (a run lasts as long as the receiver's schedule);
#   2. the receiver, bench/capacity_receiver.py: answers after BENCH_DELAY_MS while fewer than
#      its capacity are under way, 503 at once beyond; its own ceilings first, measured with
#      ferry-bench-curl (a bare libcurl client): at the fixed capacity with as many connections
#      (what a perfect client gets: capacity / delay), and with no delay and no capacity (how
#      many answers the process itself can give, so that it is not what limits the runs);
#   3. BENCH_ROUNDS rounds of the cases below, each a fresh ferry and a fresh group, the
#      receiver's clock starting at the route's first request (the group join is left out):
#        fixed-C      concurrency C = the capacity C, fixed (the hand-tuned baseline),
#        adaptive-C   adaptive_concurrency with concurrency (the maximum) BENCH_ADAPTIVE_MAX,
#                     on a fixed capacity of C for BENCH_FIXED_SECONDS;
#        sched-fixed-C  for each capacity C of the schedule, concurrency C on the schedule,
#        sched-adaptive adaptive on the schedule;
#   4. bench/adaptive_report.py: per case the medians of records/s (2xx answers per second at
#      the receiver), the share of 503 answers (whole run, and at steady state: after the first
#      BENCH_STEADY_S of each phase), ferry's p99 request latency (its histogram, interpolated
#      within a bucket), the adaptive limit; the ratio adaptive / fixed (on the schedule, each
#      phase against the fixed run at that phase's capacity) and the issue's targets, met or not.
#
# BENCH_ROUNDS          rounds (default 3; medians)
# BENCH_RECORDS         records preloaded (default 100000; a run takes at most capacity / delay
#                       records per second)
# BENCH_CAPACITY        the fixed capacity (default 20)
# BENCH_FIXED_SECONDS   how long the fixed-capacity runs last (default 15)
# BENCH_SCHEDULE        the changing capacity, CAPACITY:SECONDS,... (default "20:10,5:10,20:10")
# BENCH_DELAY_MS        the receiver's answer time (default 20)
# BENCH_STEADY_S        the start of each phase left out of the steady-state figures (default 3)
# BENCH_ADAPTIVE_MAX    the adaptive routes' concurrency, their maximum (default 64)
# BENCH_ADAPTIVE_PROPS  extra adaptive_concurrency keys, as YAML pairs ("decrease: 0.8")
# Everything listens on 127.0.0.1 on ports the OS picks and is stopped on exit.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/adaptive.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

ROUNDS=${BENCH_ROUNDS:-3}
RECORDS=${BENCH_RECORDS:-100000}
CAPACITY=${BENCH_CAPACITY:-20}
FIXED_SECONDS=${BENCH_FIXED_SECONDS:-15}
SCHEDULE=${BENCH_SCHEDULE:-20:10,5:10,20:10}
DELAY_MS=${BENCH_DELAY_MS:-20}
STEADY_S=${BENCH_STEADY_S:-3}
ADAPTIVE_MAX=${BENCH_ADAPTIVE_MAX:-64}
ADAPTIVE_PROPS=${BENCH_ADAPTIVE_PROPS:-}
BODY_BYTES=100
KEYS=1000
TOPIC=bench-adaptive
PARTITIONS=64
FERRY=$BUILD_DIR/ferry
CURL_BENCH=$BUILD_DIR/bench/ferry-bench-curl
PRELOAD_BENCH=$BUILD_DIR/bench/ferry-bench-preload
PYTHON=/usr/bin/python3

BROKER_BOOTSTRAP=""
RECEIVER=""  # http://127.0.0.1:PORT
FERRY_PID=""

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_WORK=$(mktemp -d /tmp/ferry-bench-adaptive.XXXXXX)
RUNS=$BENCH_WORK/runs
mkdir -p "$RUNS"
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT
trap 'exit 130' INT TERM

# receiver_start: bench/capacity_receiver.py on a free port; sets RECEIVER.
receiver_start() {
  local file=$BENCH_WORK/receiver.port pid
  "$PYTHON" "$BENCH_SRC/capacity_receiver.py" --port-file "$file" </dev/null \
    >"$BENCH_WORK/receiver.out" 2>"$BENCH_WORK/receiver.err" &
  pid=$!
  BENCH_PIDS+=("$pid")
  if ! wait_until 15 test -s "$file"; then
    echo "bench: the receiver did not start:" >&2
    cat "$BENCH_WORK/receiver.err" >&2
    return 1
  fi
  RECEIVER="http://127.0.0.1:$(cat "$file")"
}

# arm SCHEDULE DELAY_MS: a new run on the receiver, its clock starting at the next POST.
arm() {
  curl -sf --max-time 5 -X POST "$RECEIVER/_control/arm?schedule=$1&delay_ms=$2" >/dev/null
}

# receiver_ceiling NAME SCHEDULE DELAY_MS CONCURRENCY REQUESTS: ferry-bench-curl on the receiver.
receiver_ceiling() {
  local line
  arm "$2" "$3"
  line=$("$CURL_BENCH" --url "$RECEIVER/ingest" --requests "$5" --concurrency "$4" \
    --body-bytes "$BODY_BYTES") || true
  echo "   $1: $line"
  echo "$1 $line" >>"$BENCH_WORK/ceilings.txt"
}

bench_ceilings() {
  local ideal
  ideal=$((CAPACITY * 1000 / DELAY_MS))
  echo "== receiver ceilings (ferry-bench-curl on $RECEIVER)"
  receiver_ceiling "capacity=$CAPACITY,delay=${DELAY_MS}ms,c=$CAPACITY,ideal=$ideal" \
    "$CAPACITY:3600" "$DELAY_MS" "$CAPACITY" $((ideal * 5))
  receiver_ceiling "no-capacity,no-delay,c=64" "1000000:3600" 0 64 20000
}

bench_preload() {
  local line
  echo "== preload: $RECORDS x $BODY_BYTES B to $TOPIC ($PARTITIONS partitions)"
  line=$("$PRELOAD_BENCH" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --records "$RECORDS" \
    --bytes "$BODY_BYTES" --keys "$KEYS")
  echo "   $line"
}

# write_config NAME CONCURRENCY ADAPTIVE(0|1) FILE PORT: one route reading $TOPIC from the start
# with a group of its own, one record per request, no order (so that only the concurrency limits
# what is in flight), retrying 503s forever (nothing is dead-lettered or dropped).
write_config() {
  local adaptive=""
  [ "$3" = 1 ] && adaptive="
    adaptive_concurrency: {enabled: true${ADAPTIVE_PROPS:+, $ADAPTIVE_PROPS}}"
  cat >"$4" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {fetch.wait.max.ms: 10}
server: {listen: "127.0.0.1:$5"}
log: {level: warn}
routes:
  - name: bench
    topics: [$TOPIC]
    group: adaptive-$1-$RANDOM$RANDOM
    target: {url: "$RECEIVER/ingest"}
    concurrency: $2
    ordering: none
    retry: {max_attempts: 0}$adaptive
YAML
}

# metric NAME FILE: the value of the route's sample NAME in a /metrics scrape.
metric() {
  awk -v n="$1" 'index($0, n "{") == 1 && index($0, "route=\"bench\"") { print $2; exit }' "$2"
}

# run_case ROUND NAME SCHEDULE CONCURRENCY ADAPTIVE: one route run on the receiver's schedule.
# Writes runs/ROUND-NAME/{stats.json, metrics.txt, limits.txt, meta.txt}.
run_case() {
  local dir=$RUNS/$1-$2 port state elapsed total t0 t1 deadline
  mkdir -p "$dir"
  port=$(free_port)
  write_config "$2" "$4" "$5" "$dir/ferry.yaml" "$port"
  arm "$3" "$DELAY_MS"
  "$FERRY" run -c "$dir/ferry.yaml" </dev/null >"$dir/ferry.out" 2>"$dir/ferry.err" &
  FERRY_PID=$!
  BENCH_PIDS+=("$FERRY_PID")
  deadline=$((SECONDS + 60))
  t0=""
  : >"$dir/limits.txt"
  while :; do
    state=$(curl -sf --max-time 2 "$RECEIVER/_control/state") || state="-1 0"
    read -r elapsed total <<<"$state"
    if [ -z "$t0" ] && [ "${elapsed%%.*}" != -1 ]; then
      t0=$(cpu_ticks "$FERRY_PID")
      deadline=$((SECONDS + ${total%%.*} + 30))
    fi
    if [ -n "$t0" ]; then
      curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" >"$dir/metrics.txt" || true
      echo "$elapsed $(metric ferry_route_concurrency_limit "$dir/metrics.txt")" >>"$dir/limits.txt"
      awk -v e="$elapsed" -v t="$total" 'BEGIN { exit !(e >= t) }' && break
    fi
    if ((SECONDS > deadline)) || ! kill -0 "$FERRY_PID" 2>/dev/null; then
      echo "bench: $2 did not run its schedule; ferry's log:" >&2
      tail -5 "$dir/ferry.err" >&2
      stop_pid "$FERRY_PID"
      forget_pid "$FERRY_PID"
      rm -rf "$dir"
      return 1
    fi
    sleep 0.25
  done
  t1=$(cpu_ticks "$FERRY_PID")
  curl -sf --max-time 5 "$RECEIVER/_control/stats?steady=$STEADY_S" >"$dir/stats.json"
  stop_pid "$FERRY_PID"
  forget_pid "$FERRY_PID"
  printf 'round=%s case=%s schedule=%s concurrency=%s adaptive=%s ferry_cpu_s=%s\n' "$1" "$2" \
    "$3" "$4" "$5" "$(seconds $((t1 - t0)))" >"$dir/meta.txt"
  "$PYTHON" "$BENCH_SRC/adaptive_report.py" --steady "$STEADY_S" --one "$dir"
}

bench_rounds() {
  local round c
  local -a capacities
  IFS=, read -r -a capacities <<<"$(tr ',' '\n' <<<"$SCHEDULE" | cut -d: -f1 | sort -n -u |
    paste -sd,)"
  for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    run_case "$round" "fixed-$CAPACITY" "$CAPACITY:$FIXED_SECONDS" "$CAPACITY" 0 || true
    run_case "$round" "adaptive-$CAPACITY" "$CAPACITY:$FIXED_SECONDS" "$ADAPTIVE_MAX" 1 || true
    for c in "${capacities[@]}"; do
      run_case "$round" "sched-fixed-$c" "$SCHEDULE" "$c" 0 || true
    done
    run_case "$round" sched-adaptive "$SCHEDULE" "$ADAPTIVE_MAX" 1 || true
  done
}

main() {
  local c
  for c in "$CURL_BENCH" "$PRELOAD_BENCH"; do
    [ -x "$c" ] || { echo "bench: $c not built: cmake --build $BUILD_DIR" >&2; exit 1; }
  done
  "$PYTHON" -c 'import aiohttp' 2>/dev/null ||
    { echo "bench: $PYTHON has no aiohttp (apt-get install python3-aiohttp)" >&2; exit 1; }
  if ! broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:$PARTITIONS"; then
    echo "bench: no dev broker, no adaptive benchmark" >&2
    exit 1
  fi
  echo "== dev broker at $BROKER_BOOTSTRAP, topic $TOPIC with $PARTITIONS partitions"
  receiver_start
  echo "== receiver at $RECEIVER"
  bench_preload
  bench_ceilings
  bench_rounds
  echo
  echo "ferry adaptive concurrency benchmark, $(date -u +%Y-%m-%d), $(nproc) cores shared by" \
    "ferry, the receiver and the dev broker, $ROUNDS round(s)"
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on the machine skews every row)"
  "$PYTHON" "$BENCH_SRC/adaptive_report.py" --steady "$STEADY_S" --capacity "$CAPACITY" \
    --ceilings "$BENCH_WORK/ceilings.txt" "$RUNS"
}

main
