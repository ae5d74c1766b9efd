#!/usr/bin/env bash
# smtp.sh BUILD_DIR - ferry's e-mail target against its ceiling, the entry point of
# `make bench-smtp`.
#
# In each of BENCH_ROUNDS rounds (default 3), one after the other against the same SMTP sink
# (ferry-bench-smtp-sink, which accepts every message and keeps none):
#   1. the ceiling: ferry-bench-smtp-loop, a bare libcurl multi client sending N messages with
#      the headers ferry writes over C reused connections, on as many threads as the route has
#      I/O threads (io_threads: auto, one per processor up to 4), so the two compare fairly;
#   2. ferry: a route with target.smtp consuming N preloaded records (JSON values) from
#      `ferry dev-broker`, one templated message per record, concurrency C; timed from its own
#      /metrics from the first record consumed to the last delivered.
# Prints messages/s and CPU seconds side by side and ferry's ratio to the ceiling (the issue's
# target: 0.80 or more). BENCH_SMTP_MESSAGES (20000) and BENCH_SMTP_CONCURRENCY (16) set N and C.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/smtp.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

MESSAGES=${BENCH_SMTP_MESSAGES:-20000}
CONCURRENCY=${BENCH_SMTP_CONCURRENCY:-16}
ROUNDS=${BENCH_ROUNDS:-3}
TEXT_BYTES=200
CPUS=$(nproc)
THREADS=$((CPUS < 4 ? CPUS : 4)) # the route's io_threads: auto (docs/routes.md)
TOPIC=smtpbench
FERRY=$BUILD_DIR/ferry
SINK=$BUILD_DIR/bench/ferry-bench-smtp-sink
LOOP=$BUILD_DIR/bench/ferry-bench-smtp-loop
PRELOAD=$BUILD_DIR/bench/ferry-bench-preload
WAIT=$BUILD_DIR/bench/ferry-bench-wait
BENCH_WORK=$(mktemp -d /tmp/ferry-bench-smtp.XXXXXX)
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT

sink_start() {
  "$SINK" --port 0 --port-file "$BENCH_WORK/sink.port" >"$BENCH_WORK/sink.out" 2>&1 &
  BENCH_PIDS+=("$!")
  wait_until 10 test -s "$BENCH_WORK/sink.port"
  SINK_URL="smtp://127.0.0.1:$(cat "$BENCH_WORK/sink.port")"
}

write_config() {
  cat >"$1" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {fetch.wait.max.ms: 10, queued.min.messages: 1000000}
server: {listen: "127.0.0.1:$(free_port)"}
log: {level: warn}
routes:
  - name: mail
    topics: [$TOPIC]
    group: mail-$RANDOM-$RANDOM
    concurrency: $CONCURRENCY
    ordering: none
    target:
      smtp:
        url: "$SINK_URL"
        starttls: "off"
        from: "Bench <bench@example.com>"
        to: ["user-\${value.seq}@example.com"]
        subject: "Welcome, user \${value.seq}"
        text: "\${value.pad}"
YAML
}

run_ferry() {
  local config=$BENCH_WORK/ferry.yaml out=$BENCH_WORK/ferry.time url pid line rc=0
  write_config "$config"
  url="http://$(grep -o 'listen: "[^"]*' "$config" | cut -d'"' -f2)/metrics"
  measure "$BENCH_WORK/ferry.out" "$FERRY" run -c "$config" >"$out" 2>"$BENCH_WORK/ferry.err" &
  pid=$!
  line=$("$WAIT" --url "$url" --records "$MESSAGES" --timeout 600) || rc=$?
  pkill -TERM -f "^$FERRY run -c $config" || true
  wait "$pid" || true
  [ "$rc" -eq 0 ] || { echo "bench: ferry did not send $MESSAGES messages" >&2; tail -5 "$BENCH_WORK/ferry.err" >&2; return 1; }
  awk -v n="$MESSAGES" -v l="$line" -v u="$(cat "$out")" 'BEGIN {
    split(l, w, /[ =]/); split(u, f, " ")
    printf "records=%d seconds=%.2f rps=%.0f %s errors=%d\n", n, w[2], n / w[2], f[2], w[4] }'
}

main() {
  local round loop ferry rows=()
  sink_start
  broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:8"
  echo "== preload: $MESSAGES records to $TOPIC"
  "$PRELOAD" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --records "$MESSAGES" \
    --bytes "$TEXT_BYTES" --keys 1000 | sed 's/^/   /'
  for round in $(seq 1 "$ROUNDS"); do
    loop=$("$LOOP" --url "$SINK_URL" --messages "$MESSAGES" --concurrency "$CONCURRENCY" \
      --threads "$THREADS" --text-bytes "$TEXT_BYTES")
    ferry=$(run_ferry)
    echo "== round $round: bare libcurl loop: $loop"
    echo "   ferry route:                $ferry"
    rows+=("$(field rps "$loop") $(field cpu_s "$loop") $(field rps "$ferry") $(field cpu_s "$ferry")")
  done
  echo
  echo "e-mail to an SMTP sink, $MESSAGES messages, concurrency $CONCURRENCY, $THREADS I/O" \
    "thread(s) each, $CPUS cores," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%s\n' "${rows[@]}" | awk '
    { lr[NR] = $1; lc[NR] = $2; fr[NR] = $3; fc[NR] = $4; ratio[NR] = $3 / $1 }
    function median(a, n,   i, j, t, v) {
      for (i = 1; i <= n; i++) v[i] = a[i]
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    END {
      printf "%-34s %12s %10s\n", "", "messages/s", "CPU s"
      printf "%-34s %12.0f %10.2f\n", "bare libcurl SMTP loop (ceiling)", median(lr, NR), median(lc, NR)
      printf "%-34s %12.0f %10.2f\n", "ferry route, target.smtp", median(fr, NR), median(fc, NR)
      r = median(ratio, NR)
      printf "ferry / ceiling: %.2f (median of %d rounds; target 0.80: %s)\n", r, NR, (r >= 0.8 ? "met" : "not met")
    }'
}

main
