#!/usr/bin/env bash
# run.sh BUILD_DIR - ferry's benchmarks, the entry point of `make bench`.
#
# Every figure is printed beside a baseline measured in the same run on the same machine:
#   1. the preload: ferry-bench-preload fills a 64-partition topic on `ferry dev-broker`;
#   2. BENCH_ROUNDS rounds (default 3) of ferry's route cases, each consuming that topic and
#      POSTing to a private nginx; each one-record case runs between two ceiling runs
#      (ferry-bench-curl, a bare libcurl multi client, one 100-byte POST per record over 64
#      keep-alive connections) and is reported as a ratio to their mean;
#   3. then ingest.sh: HTTP to Kafka through ferry, beside ferry's own /healthz rate;
#   4. then tables.sh: a topic restored into a table and read over HTTP, beside /healthz and
#      the store's own rates.
# BENCH_RECORDS scales the record and request counts (default 1000000; 200000 for a quick run;
# at most 1500000, since the dev broker drops a partition's oldest records past about 5 MiB);
# BENCH_ROUTE_CASES picks cases ("none 500,key 1"), BENCH_ROUTE_PROPS adds consumer properties
# ("queued.max.messages.kbytes: 8192"), BENCH_PRELOAD_PROPS sets the preload producer's
# ("batch.num.messages=100 linger.ms=1"), BENCH_SKIP_CEILING=1, BENCH_SKIP_INGEST=1 and
# BENCH_SKIP_TABLES=1 leave those out, BENCH_PERF=DIR records perf samples of each route run,
# BENCH_MALLOC=PATH preloads another malloc library into every ferry (bench/lib.sh).
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/run.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

RECORDS=${BENCH_RECORDS:-1000000}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
BODY_BYTES=100
KEYS=1000
TOPIC=bench
PARTITIONS=64 # the dev broker keeps about 5 MiB per partition: 1M x 100 B needs many
# 2M records lost 13,814 of the oldest (about 169 B each in the log, 31k per partition fit):
# a route would then wait for records that are gone, so more than this is refused up front.
MAX_RECORDS=1500000
if ! [[ $RECORDS =~ ^[1-9][0-9]*$ ]] || ((RECORDS > MAX_RECORDS)); then
  echo "bench: BENCH_RECORDS must be a whole number from 1 to $MAX_RECORDS, not '$RECORDS'" \
    "(the dev broker keeps about 5 MiB per partition; see docs/dev-broker.md)" >&2
  exit 2
fi
FERRY=$BUILD_DIR/ferry
CURL_BENCH=$BUILD_DIR/bench/ferry-bench-curl
PRELOAD_BENCH=$BUILD_DIR/bench/ferry-bench-preload
WAIT_BENCH=$BUILD_DIR/bench/ferry-bench-wait

# The routes to run, "ORDERING BATCH" each; see run_ferry_route.
ROUTE_CASES=("none 1" "key 1" "key 500" "none 500")
if [ -n "${BENCH_ROUTE_CASES:-}" ]; then # e.g. "none 500,key 1"
  IFS=, read -r -a ROUTE_CASES <<<"$BENCH_ROUTE_CASES"
fi
# Extra librdkafka properties for the route's consumer, as YAML pairs: "a.b: 1, c.d: 2".
ROUTE_PROPS=${BENCH_ROUTE_PROPS:-}
# Extra librdkafka properties for the preload's producer, "name=value" separated by spaces.
read -r -a PRELOAD_PROPS <<<"${BENCH_PRELOAD_PROPS:-}"

ROUNDS=${BENCH_ROUNDS:-3} # every case runs this many times; the table shows medians
ROWS=()         # "name|records/s|CPU s|peak RSS MB|ratio|CPU us per record|CPU ratio", one per run
CPUS=$(nproc)
# A one-record route's io_threads: auto is one I/O thread per processor, at most 4 and at most
# its concurrency (docs/routes.md); the ceiling runs on as many threads, so that it is fair.
IO_THREADS=$((CPUS < 4 ? CPUS : 4))
IO_THREADS=$((IO_THREADS < ${BENCH_CONCURRENCY:-64} ? IO_THREADS : ${BENCH_CONCURRENCY:-64}))
CEILING_RPS=""  # set by bench_ceiling, with its CPU microseconds per request
CEILING_US=""
FERRY_AGENT=""  # the User-Agent a route sends, "ferry/VERSION"
BROKER_BOOTSTRAP=""
NGINX_URL=""

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_WORK=$(mktemp -d /tmp/ferry-bench.XXXXXX)
export BENCH_SUMMARY=$BENCH_WORK/targets # each benchmark appends its targets, met or not
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT
trap 'exit 130' INT TERM

# add_row NAME KV_LINE [noratio]: adds a run's figures from a key=value result line (rps, cpu_s,
# rss_mb): its CPU microseconds per record ($RECORDS of them) and, unless told not to, its
# records/s and its CPU per record as ratios to the ceiling's (CEILING_RPS, CEILING_US).
add_row() {
  local rps cpu ratio="-" us cpu_ratio="-"
  rps=$(field rps "$2")
  cpu=$(field cpu_s "$2")
  us=$(awk -v c="$cpu" -v n="$RECORDS" 'BEGIN { printf "%.1f", c * 1e6 / n }')
  if [ -n "$CEILING_RPS" ] && [ "${3:-}" != noratio ]; then
    ratio=$(awk -v a="$rps" -v b="$CEILING_RPS" 'BEGIN { printf "%.2fx", a / b }')
    cpu_ratio=$(awk -v a="$us" -v b="$CEILING_US" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
  fi
  ROWS+=("$1|$rps|$cpu|$(field rss_mb "$2")|$ratio|$us|$cpu_ratio")
}

# add_skip NAME WHY: a row for a benchmark that did not run.
add_skip() {
  ROWS+=("$1|$2|-|-|-|-|-")
}

# bench_ceiling: a ceiling run. It sends the headers a route sends beside its Content-Type: its
# User-Agent and an Idempotency-Key as long as a typical one of the route's ("bench-31-12345":
# topic, partition, offset), so that both put the same request on the wire.
bench_ceiling() {
  local line
  local name="curl ceiling (c=$CONCURRENCY, ${BODY_BYTES} B, $IO_THREADS thread(s))"
  echo "== $name: $RECORDS POSTs to $NGINX_URL"
  line=$("$CURL_BENCH" --url "$NGINX_URL" --requests "$RECORDS" --concurrency "$CONCURRENCY" \
    --threads "$IO_THREADS" --body-bytes "$BODY_BYTES" --header "User-Agent: $FERRY_AGENT" \
    --header "Idempotency-Key: $TOPIC-31-12345")
  echo "   $line"
  CEILING_RPS=$(field rps "$line")
  CEILING_US=$(awk -v c="$(field cpu_s "$line")" -v n="$RECORDS" 'BEGIN { printf "%.2f", c * 1e6 / n }')
  add_row "$name" "$line" noratio
}

bench_preload() {
  local line
  echo "== preload: $RECORDS x $BODY_BYTES B to $TOPIC ($PARTITIONS partitions) at $BROKER_BOOTSTRAP"
  local props=() p
  for p in "${PRELOAD_PROPS[@]}"; do props+=(-X "$p"); done
  line=$("$PRELOAD_BENCH" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --records "$RECORDS" \
    --bytes "$BODY_BYTES" --keys "$KEYS" "${props[@]}")
  echo "   $line"
  add_row "preload (librdkafka producer)" "$line" noratio
}

# ---------------------------------------------------------------------------------------------
# ferry's route runs.
#
# write_route_config ORDERING BATCH FILE
#   Writes a ferry config with one route: consume $TOPIC at $BROKER_BOOTSTRAP from the earliest
#   offset with a group of its own (every case reads the same preloaded records), POST to
#   $NGINX_URL with $CONCURRENCY requests in flight, the given ordering and BATCH records per
#   request (json_array bodies when BATCH > 1).
#
# run_ferry_route ORDERING BATCH
#   Runs `$FERRY run` under `measure` (wall, CPU and peak RSS of the ferry process alone), waits
#   with a deadline until ferry's metrics count all $RECORDS records delivered, stops it with
#   SIGTERM and prints `records=N seconds=S rps=R cpu_s=C rss_mb=M errors=E`, where seconds run
#   from the first record consumed to the last delivered (the 3 s group join is left out).
# ---------------------------------------------------------------------------------------------
write_route_config() {
  cat >"$3" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {fetch.wait.max.ms: 10, queued.min.messages: 1000000${ROUTE_PROPS:+, $ROUTE_PROPS}}
server: {listen: "127.0.0.1:$(free_port)"}
log: {level: warn}
routes:
  - name: bench
    topics: [$TOPIC]
    group: bench-$1-$2-$RANDOM
    target: {url: "$NGINX_URL"}
    concurrency: $CONCURRENCY
    ordering: $1
    batch: {max_records: $2, linger: 5ms, format: json_array}
YAML
}

# perf_capture CONFIG NAME: with BENCH_PERF set, samples ferry's stacks into
# $BENCH_PERF/NAME.data (a directory the caller chose), in the background: 3 s, starting 4 s
# after ferry did (the dev broker's group join takes about 3 s).
perf_capture() {
  local fpid
  fpid=$(pgrep -f "^$FERRY run -c $1" | head -1)
  mkdir -p "$BENCH_PERF"
  (sleep 4 && perf record -g -o "$BENCH_PERF/$2.data" -p "$fpid" -- sleep 3 >/dev/null 2>&1) &
}

# worker_cpu PID: prints "CPU QUEUED" for PID's route worker thread (named ferry-route; a batch
# route's worker also drives its HTTP transfers): its CPU seconds, and the seconds it was ready
# to run but waited for a core (/proc/.../schedstat). Divided by the run's seconds they are
# worker_busy and worker_queued; the rest of the time the worker slept, and ferry-bench-wait's
# idle_target, idle_kafka and idle_held (ferry_route_idle_seconds_total) say what for: its
# target (every slot taken), records from Kafka, or records it held (a batch lingering, a key
# behind its previous record).
worker_cpu() {
  local t ns=0 queued=0
  [ -n "$1" ] && [ -d "/proc/$1/task" ] || { echo "0 0"; return; }
  for t in /proc/"$1"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = ferry-route ] || continue
    read -r ns queued _ <"$t/schedstat" 2>/dev/null || continue
  done
  awk -v t="$ns" -v q="$queued" 'BEGIN { printf "%.3f %.3f", t / 1e9, q / 1e9 }'
}

# run_ferry_route ORDERING BATCH: runs `$FERRY run` under `measure` (wall, CPU and peak RSS of
# the ferry process alone); ferry-bench-wait times it from its own /metrics, from the first
# record consumed to the last delivered, so the dev broker's ~3 s group join is left out.
run_ferry_route() {
  local config=$BENCH_WORK/route-$1-$2.yaml out=$BENCH_WORK/route-$1-$2.time url pid line rc=0
  local busy
  write_route_config "$1" "$2" "$config"
  url="http://$(grep -o 'listen: "[^"]*' "$config" | cut -d'"' -f2)/metrics"
  measure "$BENCH_WORK/route.out" "${FERRY_LAUNCH[@]}" "$FERRY" run -c "$config" >"$out" 2>"$BENCH_WORK/route.err" &
  pid=$!
  [ -n "${BENCH_PERF:-}" ] && sleep 0.2 && perf_capture "$config" "$1-$2"
  line=$("$WAIT_BENCH" --url "$url" --records "$RECORDS" --timeout 600) || rc=$?
  busy=$(worker_cpu "$(pgrep -f "^$FERRY run -c $config" | head -1)")
  # ^ matches ferry itself, not /usr/bin/time whose command line also names the config
  pkill -TERM -f "^$FERRY run -c $config" || true
  wait "$pid" || true
  if [ "$rc" -ne 0 ]; then
    echo "bench: route $1/$2 did not deliver $RECORDS records" >&2
    return 1
  fi
  awk -v n="$RECORDS" -v l="$line" -v u="$(cat "$out")" -v b="$busy" 'BEGIN {
    split(l, w, /[ =]/); split(u, f, " "); split(b, t, " ")
    printf "records=%d seconds=%.2f rps=%.0f %s %s errors=%d worker_busy=%.2f worker_queued=%.2f",
      n, w[2], n / w[2], f[2], f[3], w[4], t[1] / w[2], t[2] / w[2]
    printf " idle_target=%.2f idle_kafka=%.2f idle_held=%.2f\n", w[10] / w[2], w[12] / w[2],
      w[14] / w[2] }'
}

route_name() {
  echo "ferry route (ordering=$1, batch=$2)"
}

# bench_routes: ROUNDS rounds of every case. A one-record case runs between two ceiling runs
# and its ratios (records/s, and CPU per record) are to their means: these shared machines
# change speed from one minute to the next, so figures taken far apart in time do not compare,
# and a ceiling on one side only would count the drift between them as ferry's. Consecutive
# one-record cases share the ceiling run between them.
bench_routes() {
  local c ordering batch name line rc round bracket fresh="" before after before_us after_us
  for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS"
    for c in "${ROUTE_CASES[@]}"; do
      read -r ordering batch <<<"$c"
      bracket=""
      [ "$batch" = 1 ] && [ -z "${BENCH_SKIP_CEILING:-}" ] && bracket=1
      [ -n "$bracket" ] && [ -z "$fresh" ] && bench_ceiling
      fresh=""
      name=$(route_name "$ordering" "$batch")
      rc=0
      line=$(run_ferry_route "$ordering" "$batch") || rc=$?
      if [ "$rc" -ne 0 ]; then
        add_skip "$name" "FAILED"
        continue
      fi
      echo "== $name"
      echo "   $line"
      if [ -n "$bracket" ]; then
        before=$CEILING_RPS
        before_us=$CEILING_US
        bench_ceiling
        after=$CEILING_RPS
        after_us=$CEILING_US
        fresh=1
        CEILING_RPS=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.0f", (a + b) / 2 }')
        CEILING_US=$(awk -v a="$before_us" -v b="$after_us" 'BEGIN { printf "%.2f", (a + b) / 2 }')
        add_row "$name" "$line"
        CEILING_RPS=$after
        CEILING_US=$after_us
      elif [ "$batch" = 1 ]; then add_row "$name" "$line"; else add_row "$name" "$line" noratio; fi
    done
  done
}

# print_table: one line per name with the median records/s, CPU s and ratios of its runs, the
# highest peak RSS, and every run's records/s (and ratios) in order.
print_table() {
  echo
  echo "ferry benchmarks, $(date -u +%Y-%m-%d), $RECORDS records of $BODY_BYTES B, $(nproc) cores" \
    "shared by every process, $ROUNDS round(s), ferry's $(bench_allocator)"
  echo "CPU s and peak RSS are the measured process's own (not nginx's, not the broker's)."
  echo "A one-record row's ratios (records/s, and CPU per record: CPU x) are to the mean of the" \
    "ceiling runs just before and after it; medians of the runs."
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on the machine skews every row)"
  printf '%s\n' "${ROWS[@]}" | awk -F'|' '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return n ? (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) : "-"
    }
    !($1 in seen) { seen[$1] = 1; order[++names] = $1 }
    { rps[$1] = rps[$1] " " $2; cpu[$1] = cpu[$1] " " $3; us[$1] = us[$1] " " $6
      runs[$1] = runs[$1] (runs[$1] == "" ? "" : " / ") $2
      if ($4 + 0 > rss[$1] + 0) rss[$1] = $4
      if ($5 != "-") { r = $5; sub(/x$/, "", r); ratio[$1] = ratio[$1] " " r; ratios[$1] = ratios[$1] (ratios[$1] == "" ? "" : " / ") $5 }
      if ($7 != "-") { r = $7; sub(/x$/, "", r); cratio[$1] = cratio[$1] " " r; cratios[$1] = cratios[$1] (cratios[$1] == "" ? "" : " / ") $7 } }
    END {
      printf "%-52s %10s %7s %10s %8s %8s %6s  %s\n", "name", "records/s", "CPU s", "CPU us/rec", "RSS MB", "ratio", "CPU x", "runs (records/s; ratios; CPU x)"
      for (i = 1; i <= names; i++) {
        n = order[i]; m = ratio[n] == "" ? "-" : sprintf("%.2fx", median(ratio[n]))
        cm = cratio[n] == "" ? "-" : sprintf("%.2fx", median(cratio[n]))
        printf "%-52s %10.0f %7.2f %10.1f %8s %8s %6s  %s%s%s\n", n, median(rps[n]), median(cpu[n]), median(us[n]), rss[n], m, cm,
               runs[n], ratios[n] == "" ? "" : "; " ratios[n], cratios[n] == "" ? "" : "; " cratios[n]
      }
    }'
}

# route_targets: the route targets (issue 15), met or not, from the medians of the rounds, into
# $BENCH_SUMMARY: a one-record route at 0.90x or more of the records/s of the ceiling runs
# around it, at no more than 1.2x their CPU per record; batch routes at 1M records/s.
route_targets() {
  printf '%s\n' "${ROWS[@]}" | awk -F'|' '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return n ? (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) : 0
    }
    $2 !~ /^[0-9]/ { next }
    /^curl ceiling/ { next }
    !($1 in seen) { seen[$1] = 1; order[++names] = $1 }
    { rps[$1] = rps[$1] " " $2; us[$1] = us[$1] " " $6
      if ($5 != "-") { r = $5; sub(/x$/, "", r); ratio[$1] = ratio[$1] " " r }
      if ($7 != "-") { r = $7; sub(/x$/, "", r); cratio[$1] = cratio[$1] " " r } }
    END {
      for (i = 1; i <= names; i++) {
        n = order[i]
        if (n !~ /^ferry route/) continue
        if (n ~ /batch=1\)/ && ratio[n] == "") {
          printf "routes: %s: %.1f us CPU per record, no ceiling run to compare with: NOT checked\n", n, median(us[n])
        } else if (n ~ /batch=1\)/) {
          r = median(ratio[n]); u = median(us[n]); x = median(cratio[n])
          ok = r >= 0.9 && x > 0 && x <= 1.2
          printf "routes: %s at %.2fx the ceiling, %.1f us CPU per record, %.2fx the CPU of the ceiling runs around it (target 0.90x, at most 1.2x its CPU): %s\n", n, r, u, x, (ok ? "met" : "NOT met")
        } else {
          v = median(rps[n])
          printf "routes: %s at %.0f records/s (target 1000000): %s\n", n, v, (v >= 1000000 ? "met" : "NOT met")
        }
      }
    }' >>"$BENCH_SUMMARY"
}

# print_summary: every benchmark's targets, met or not, in this run.
print_summary() {
  echo
  echo "== targets in this run ($(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)," \
    "ferry's $(bench_allocator))"
  sed 's/^/  /' "$BENCH_SUMMARY"
}

main() {
  local c ordering batch
  if [ ! -x "$CURL_BENCH" ] || [ ! -x "$PRELOAD_BENCH" ] || [ ! -x "$WAIT_BENCH" ]; then
    echo "bench: build the bench programs first: cmake --build $BUILD_DIR" >&2
    exit 1
  fi
  FERRY_AGENT="ferry/$("$FERRY" --version | awk '{ print $2 }')"
  nginx_start "$BENCH_WORK"
  if broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:$PARTITIONS"; then
    bench_preload
    bench_routes
  else
    [ -n "${BENCH_SKIP_CEILING:-}" ] || bench_ceiling
    add_skip "preload (librdkafka producer)" "no broker"
    for c in "${ROUTE_CASES[@]}"; do
      read -r ordering batch <<<"$c"
      add_skip "$(route_name "$ordering" "$batch")" "no broker"
    done
  fi
  print_table
  route_targets
  # ingest's and tables' benchmarks bring their own broker and measure on quiet cores
  bench_cleanup
  [ -n "${BENCH_SKIP_INGEST:-}" ] || "$BENCH_SRC/ingest.sh" "$BUILD_DIR"
  [ -n "${BENCH_SKIP_TABLES:-}" ] || "$BENCH_SRC/tables.sh" "$BUILD_DIR"
  print_summary
}

main
