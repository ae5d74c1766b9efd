#!/usr/bin/env bash
# ingest.sh BUILD_DIR - ferry's ingest benchmark (HTTP to Kafka), run by `make bench` after the
# route benchmarks and alone by `make bench-ingest`.
#
# wrk drives one ferry at a time. Each round runs, at each connection count in turn:
#   1. GET /healthz: the ceiling of ferry's HTTP server, measured in the same run;
#   2. REST Proxy produce of one 100-byte record per request, `ack: kafka` (200 after the
#      broker acknowledged);
#   3. GET /healthz again, so that the rows between are divided by the mean of two runs;
#   4. produce of 100 records per request, `ack: kafka` (records/s = requests/s x 100);
#   5. one record per request, `ack: accepted` (202 once queued in the producer).
# Each run gets a fresh ferry (so its CPU and peak RSS are that run's alone) against one
# `ferry dev-broker` in its own process, holding a 64-partition topic. The table shows the
# medians of the rounds, and the targets are checked against them.
#
# BENCH_ROUNDS        rounds (default 3)
# BENCH_SECONDS       seconds each run is measured (default 5), after a 1 s warm-up
# BENCH_CONNECTIONS   connection counts (default "64 256")
# BENCH_LINGER_MS     the producer's linger.ms (default: ferry's own default, 0.2 ms)
# BENCH_THREADS       server.threads (default 2, one per core)
# Everything listens on 127.0.0.1 on ports the OS picks and is stopped on exit.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/ingest.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

MEASURE_S=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP_S=1
read -r -a CONNECTIONS <<<"${BENCH_CONNECTIONS:-64 256}"
LINGER_MS=${BENCH_LINGER_MS:-}
THREADS=${BENCH_THREADS:-2}
WRK_THREADS=2
VALUE_BYTES=100
BATCH=100
TOPIC=bench
PARTITIONS=64 # the dev broker keeps about 5 MiB per partition and drops older records
FERRY=$BUILD_DIR/ferry
WRK_SCRIPT=$BENCH_SRC/ingest.lua

# The runs of a round at each connection count, in order, "NAME|ACK|RECORDS"; RECORDS 0 means
# GET /healthz, which runs before and after the single records (see bench_round).
CASES=("healthz|kafka|0" "ack kafka, 1 record|kafka|1" "healthz|kafka|0"
  "ack kafka, $BATCH records|kafka|$BATCH" "ack accepted (202), 1 record|accepted|1")

TARGET_LINES=()
BROKER_BOOTSTRAP=""
BROKER_PID=""
FERRY_PID=""
FERRY_URL=""

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_WORK=$(mktemp -d /tmp/ferry-bench-ingest.XXXXXX)
RESULTS=$BENCH_WORK/results # every run's figures, one line each (see bench_round)
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT
trap 'exit 130' INT TERM

# ---- the measured processes ----

# write_ingest_config ACK PORT FILE: ferry with the REST Proxy API on $TOPIC, nothing else.
write_ingest_config() {
  cat >"$3" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {${LINGER_MS:+linger.ms: $LINGER_MS}}
server: {listen: "127.0.0.1:$2", threads: $THREADS}
log: {level: warn}
ingest:
  rest_proxy: {topics: [$TOPIC], ack: $1}
YAML
}

# ferry_start ACK: starts `ferry run` on a fresh config; sets FERRY_PID and FERRY_URL.
ferry_start() {
  local port config=$BENCH_WORK/ferry-$1.yaml
  port=$(free_port)
  write_ingest_config "$1" "$port" "$config"
  "${FERRY_LAUNCH[@]}" "$FERRY" run -c "$config" </dev/null >"$BENCH_WORK/ferry.out" 2>"$BENCH_WORK/ferry.err" &
  FERRY_PID=$!
  BENCH_PIDS+=("$FERRY_PID")
  FERRY_URL="http://127.0.0.1:$port"
  if ! wait_until 15 curl -sf -o /dev/null --max-time 1 "$FERRY_URL/healthz"; then
    echo "bench: ferry did not start; its log:" >&2
    head -20 "$BENCH_WORK/ferry.err" >&2
    return 1
  fi
}

ferry_stop() {
  stop_pid "$FERRY_PID"
  forget_pid "$FERRY_PID"
  FERRY_PID=""
}

# produce_status: posts one record and prints the HTTP status.
produce_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
    -H 'Content-Type: application/vnd.kafka.json.v2+json' \
    --data '{"records":[{"value":"warm-up"}]}' "$FERRY_URL/topics/$TOPIC" || true
}

# prime WANT: posts single records until one gets status WANT (the first ones wait for the
# producer's metadata), with a deadline.
prime() {
  local deadline=$(($(date +%s) + 15)) got
  while :; do
    got=$(produce_status)
    [ "$got" = "$1" ] && return 0
    if [ "$(date +%s)" -gt "$deadline" ]; then
      echo "bench: a produce to $FERRY_URL got $got, not $1" >&2
      return 1
    fi
    sleep 0.1
  done
}

# metric NAME: the value of the first series whose line starts with NAME, or 0.
metric() {
  curl -sf --max-time 2 "$FERRY_URL/metrics" |
    awk -v n="$1" 'index($0, n) == 1 { v = $2; exit } END { print v + 0 }'
}

# wait_drained: until no ingested record waits for its delivery report (30 s at most).
wait_drained() {
  wait_until 30 bash -c "[ \"\$(curl -sf --max-time 2 '$FERRY_URL/metrics' |
    awk '/^ferry_ingest_in_flight_records / { print \$2 }')\" = 0 ]"
}

# ---- wrk ----

# run_wrk SECONDS CONNECTIONS RECORDS OUT: wrk against /healthz (RECORDS 0) or the produce
# path; wrk's report goes to OUT, its own CPU (user + system seconds) to OUT.cpu.
run_wrk() {
  local url=$FERRY_URL/healthz args=()
  if [ "$3" -gt 0 ]; then
    url=$FERRY_URL/topics/$TOPIC
    args=(-s "$WRK_SCRIPT")
  fi
  INGEST_RECORDS=$3 INGEST_VALUE_BYTES=$VALUE_BYTES /usr/bin/time -f '%U %S' -o "$4.cpu" \
    wrk -t"$WRK_THREADS" -c"$2" -d"${1}s" --timeout 10s --latency "${args[@]}" "$url" >"$4"
}

# ---- one row ----

# run_case ACK RECORDS CONNECTIONS: a fresh ferry, a warm-up, then MEASURE_S seconds of wrk.
# Prints parse_wrk's line and "failed=F cpu_s=C rss_mb=M wrk_cpu_s=W broker_cpu_s=K", where
# failed counts records that failed after their request was answered (202 mode).
run_case() {
  local out=$BENCH_WORK/wrk.out f0 f1 b0 b1 failed rss
  ferry_start "$1" || return 1
  prime "$([ "$1" = accepted ] && echo 202 || echo 200)" || { ferry_stop; return 1; }
  run_wrk "$WARMUP_S" "$3" "$2" "$out.warmup" || { ferry_stop; return 1; }
  f0=$(cpu_ticks "$FERRY_PID")
  b0=$(cpu_ticks "$BROKER_PID")
  run_wrk "$MEASURE_S" "$3" "$2" "$out" || { ferry_stop; return 1; }
  f1=$(cpu_ticks "$FERRY_PID")
  b1=$(cpu_ticks "$BROKER_PID")
  wait_drained || echo "bench: records still in flight 30 s after the run" >&2
  failed=$(metric 'ferry_ingest_records_failed_total{endpoint="rest_proxy"}')
  rss=$(peak_rss_mb "$FERRY_PID")
  ferry_stop
  echo "$(parse_wrk "$out") failed=$failed cpu_s=$(seconds $((f1 - f0))) rss_mb=$rss" \
    "wrk_cpu_s=$(awk '{ printf "%.2f", $1 + $2 }' "$out.cpu") broker_cpu_s=$(seconds $((b1 - b0)))"
}

# ---- rounds and medians ----

# bench_round ROUND C: one round at C connections. /healthz runs before and after the
# acknowledged single records, and every row of the round is divided by the mean of those two
# runs: the host's speed drifts from one minute to the next, and a ratio to a /healthz run made
# minutes earlier counted that drift as ferry's. Each run appends
# "C|NAME|RECORDS|ROUND|KV_LINE" (KV_LINE "FAILED" when it failed) to $RESULTS.
bench_round() {
  local round=$1 c=$2 spec name ack records line
  for spec in "${CASES[@]}"; do
    IFS='|' read -r name ack records <<<"$spec"
    echo "== round $round, $name (c=$c)"
    # not in $(...): ferry's pid must reach bench_cleanup if the run is interrupted
    if run_case "$ack" "$records" "$c" >"$BENCH_WORK/row"; then
      line=$(cat "$BENCH_WORK/row")
    else
      line=FAILED
    fi
    echo "   $line"
    echo "$c|$name|$records|$round|$line" >>"$RESULTS"
  done
}

# medians: one line per connection count and row, from $RESULTS: "NAME (c=C)|C|RECORDS|req/s|
# records/s|p50|p99|CPU s|RSS MB|wrk CPU|broker CPU|errors|ratio|runs", each figure the median
# of the rounds that did not fail (RSS the highest, errors the sum of wrk's errors and records
# that failed after a 202), the ratio the median of the rounds' ratios (a round without a
# /healthz figure has none), and runs every round's req/s and ratio, or FAILED, in order.
medians() {
  awk -F'|' '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return n ? (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) : 0
    }
    function kv(line, out,   parts, n, i, p) {
      delete out
      n = split(line, parts, " ")
      for (i = 1; i <= n; i++) { split(parts[i], p, "="); out[p[1]] = p[2] }
    }
    { row[NR] = $0 }
    $3 == 0 && $5 != "FAILED" { kv($5, f); if (f["rps"] > 0) { hz[$1, $4] += f["rps"]; hzn[$1, $4]++ } }
    END {
      for (i = 1; i <= NR; i++) {
        split(row[i], c, "|")
        k = c[2] " (c=" c[1] ")"
        if (!(k in seen)) { seen[k] = 1; order[++names] = k; conn[k] = c[1]; recs[k] = c[3] }
        if (c[5] == "FAILED") { failed[k]++; runs[k] = runs[k] (runs[k] == "" ? "" : " / ") "FAILED"; continue }
        kv(c[5], f)
        rps[k] = rps[k] " " f["rps"]; p50[k] = p50[k] " " f["p50_ms"]; p99[k] = p99[k] " " f["p99_ms"]
        cpu[k] = cpu[k] " " f["cpu_s"]; wrk[k] = wrk[k] " " f["wrk_cpu_s"]; brk[k] = brk[k] " " f["broker_cpu_s"]
        if (f["rss_mb"] + 0 > rss[k] + 0) rss[k] = f["rss_mb"]
        errors[k] += f["wrk_errors"] + f["failed"]
        mean = hzn[c[1], c[4]] ? hz[c[1], c[4]] / hzn[c[1], c[4]] : 0
        run = f["rps"]
        if (c[3] > 0 && mean > 0) { r = f["rps"] / mean; ratio[k] = ratio[k] " " r; run = sprintf("%s; %.2fx", f["rps"], r) }
        else if (c[3] > 0) run = f["rps"] "; -"
        runs[k] = runs[k] (runs[k] == "" ? "" : " / ") run
      }
      for (i = 1; i <= names; i++) {
        k = order[i]
        if (rps[k] == "") { printf "%s|%s|%s|FAILED|-|-|-|-|-|-|-|-|-|%s\n", k, conn[k], recs[k], runs[k]; continue }
        m = median(rps[k])
        printf "%s|%s|%s|%.0f|%s|%.2f|%.2f|%.2f|%s|%.2f|%.2f|%d|%s|%s\n", k, conn[k], recs[k], m,
               (recs[k] > 0 ? sprintf("%.0f", m * recs[k]) : "-"), median(p50[k]), median(p99[k]), median(cpu[k]),
               rss[k], median(wrk[k]), median(brk[k]), errors[k],
               (recs[k] == 0 ? "1.00x" : ratio[k] == "" ? "-" : sprintf("%.2fx", median(ratio[k]))), runs[k]
      }
    }' "$RESULTS"
}

# target_line WORDS...: a line of the closing summary (the words joined by spaces), also
# appended to $BENCH_SUMMARY when bench/run.sh collects every benchmark's targets in one table.
target_line() {
  TARGET_LINES+=("$*")
  [ -z "${BENCH_SUMMARY:-}" ] || echo "ingest: $*" >>"$BENCH_SUMMARY"
}

# check_targets MEDIANS_LINE: the targets (issue 15), met or not, from the medians of the
# rounds: acknowledged single-record produce at 0.50x /healthz at 64 connections and 0.70x at
# 256, with a p99 under 10 ms; 100-record batches at 1M records/s.
check_targets() {
  local name c records rps recs p99 ratio want verdict
  IFS='|' read -r name c records rps recs _ p99 _ _ _ _ _ ratio _ <<<"$1"
  [[ $name == "ack kafka"* ]] || return 0
  if [ "$rps" = FAILED ]; then
    target_line "c=$c: $name: every run FAILED: NOT met"
  elif [ "$records" = 1 ]; then
    want=$([ "$c" -ge 256 ] && echo 0.70 || echo 0.50)
    verdict=$(awk -v r="${ratio%x}" -v w="$want" -v p="$p99" \
      'BEGIN { print (r >= w && p < 10 ? "met" : "NOT met") }')
    target_line "c=$c: acknowledged single-record produce at $ratio /healthz, p99 $p99 ms" \
      "(target ${want}x, p99 under 10 ms): $verdict"
  elif [ "$records" = "$BATCH" ]; then
    verdict=$([ "$recs" -ge 1000000 ] && echo met || echo "NOT met")
    target_line "c=$c: acknowledged $BATCH-record batches at $recs records/s (target 1000000):" \
      "$verdict"
  fi
}

print_table() {
  local lines line
  mapfile -t lines < <(medians)
  echo
  echo "ferry ingest benchmark, $(date -u +%Y-%m-%d), $(nproc) cores shared by wrk, ferry and the" \
    "dev broker; $ROUNDS round(s) of ${MEASURE_S} s per row after a ${WARMUP_S} s warm-up;" \
    "${VALUE_BYTES} B values; linger.ms=${LINGER_MS:-default}, server.threads=$THREADS, wrk -t$WRK_THREADS;" \
    "ferry's $(bench_allocator)"
  echo "Medians of the rounds. CPU s are each process's own over the measured seconds; peak RSS is" \
    "ferry's (a fresh ferry per row). ratio: requests/s over the mean of the two /healthz runs" \
    "of the same round and connection count, one just before and one just after the single records."
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on the machine skews every row)"
  {
    echo "name|req/s|records/s|p50 ms|p99 ms|CPU s|RSS MB|wrk CPU|brk CPU|errors|ratio|runs (req/s; ratios)"
    for line in "${lines[@]}"; do cut -d'|' -f1,4- <<<"$line"; done
  } | awk -F'|' '{ printf "%-40s %8s %10s %7s %7s %6s %7s %7s %7s %6s %6s  %s\n",
                   $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 }'
  for line in "${lines[@]}"; do check_targets "$line"; done
  echo
  printf '%s\n' "${TARGET_LINES[@]}"
}

main() {
  local round c
  command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }
  [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_ROUNDS must be 1 or more" >&2; exit 1; }
  if ! broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:$PARTITIONS"; then
    echo "bench: no dev broker, no ingest benchmark" >&2
    exit 1
  fi
  BROKER_PID=${BENCH_PIDS[-1]}
  echo "== dev broker at $BROKER_BOOTSTRAP, topic $TOPIC with $PARTITIONS partitions"
  for round in $(seq 1 "$ROUNDS"); do
    for c in "${CONNECTIONS[@]}"; do
      bench_round "$round" "$c"
    done
  done
  print_table
}

main
