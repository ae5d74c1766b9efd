#!/usr/bin/env bash
# bench/validate.sh BUILD_DIR: what route validation costs, in instructions per record counted
# by callgrind (instructions repeat from run to run on these shared machines; seconds do not).
#
#   1. ferry-bench-validate alone: ferry_validate_record's inclusive instructions per call on
#      preload-shaped records (100 B), with the bench schema, a schema without its pattern, the
#      wire-format prefix alone, and 1,000-byte records.
#   2. ferry run under callgrind, one route reading VALIDATE_RECORDS preloaded records (default
#      100000) to nginx, for each case in VALIDATE_CASES ("ORDERING BATCH", default "key 500"
#      and "none 1"), without and then with `validate: {json_schema: ...}`: the whole process's
#      instructions per record, and ferry_validate_record's share of them.
#
# Every process it starts is stopped on exit. Expect a few minutes per route run: callgrind
# runs ferry about 50 times slower.
set -euo pipefail

BUILD_DIR=$(cd "${1:-build}" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$BENCH_SRC/lib.sh"

FERRY=$BUILD_DIR/ferry
VALIDATE_BENCH=$BUILD_DIR/bench/ferry-bench-validate
PRELOAD_BENCH=$BUILD_DIR/bench/ferry-bench-preload
WAIT_BENCH=$BUILD_DIR/bench/ferry-bench-wait
RECORDS=${VALIDATE_RECORDS:-100000}
IFS=',' read -r -a CASES <<<"${VALIDATE_CASES:-key 500,none 1}"
TOPIC=validate-bench
BENCH_WORK=$(mktemp -d /tmp/ferry-bench-validate.XXXXXX)
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT

SCHEMA='{"type":"object","required":["seq","pad"],"additionalProperties":false,
 "properties":{"seq":{"type":"string","pattern":"^[0-9]{10}$"},
 "pad":{"type":"string","maxLength":65536}}}'
NOPATTERN_SCHEMA='{"type":"object","required":["seq","pad"],"additionalProperties":false,
 "properties":{"seq":{"type":"string"},"pad":{"type":"string","maxLength":65536}}}'

# ir_of FILE [FUNCTION]: the total instructions of a callgrind output, or FUNCTION's inclusive
# instructions in it.
ir_of() {
  if [ -z "${2:-}" ]; then
    awk '/^totals:/ { print $2 }' "$1"
  else
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
      awk -v f=":$2 " '{ gsub(",", "", $1) } index($0, f) && !n { n = $1 } END { print n }'
  fi
}

per_record() {
  awk -v a="${1:-0}" -v n="$2" 'BEGIN { printf "%.0f", a / n }'
}

alone() {
  local name=$1 out=$BENCH_WORK/alone.cg
  shift
  valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect=ferry_validate_record \
    "$VALIDATE_BENCH" --records 100000 "$@" >/dev/null 2>"$BENCH_WORK/valgrind.err"
  printf '   %-44s %6s instructions per record\n' "$name" "$(per_record "$(ir_of "$out")" 100000)"
}

route_config() {
  cat <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {fetch.wait.max.ms: 10, queued.min.messages: 1000000}
server: {listen: "127.0.0.1:$(free_port)"}
log: {level: warn}
routes:
  - name: bench
    topics: [$TOPIC]
    group: bench-$1-$2-$3-$RANDOM
    target: {url: "$NGINX_URL"}
    concurrency: 64
    ordering: $1
    batch: {max_records: $2, linger: 5ms, format: json_array}
YAML
  if [ "$3" = with ]; then
    printf '    dead_letter: {topic: %s-dlq}\n    validate: {json_schema: schema.json}\n' "$TOPIC"
  fi
}

# route_run ORDERING BATCH with|without: ferry under callgrind until every record is delivered.
route_run() {
  local config=$BENCH_WORK/route-$1-$2-$3.yaml out=$BENCH_WORK/route-$1-$2-$3.cg url pid total v
  route_config "$@" >"$config"
  url="http://$(grep -o 'listen: "[^"]*' "$config" | cut -d'"' -f2)/metrics"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$FERRY" run -c "$config" \
    >/dev/null 2>"$BENCH_WORK/route.err" &
  pid=$!
  BENCH_PIDS+=("$pid")
  # under callgrind ferry takes a while to listen; ferry-bench-wait wants an answer at once
  wait_until 300 curl -sf -o /dev/null --max-time 2 "$url" || true
  if ! "$WAIT_BENCH" --url "$url" --records "$RECORDS" --timeout 1800 >/dev/null; then
    echo "bench: route $1/$2 $3 validation did not deliver $RECORDS records" >&2
    stop_pid "$pid"
    forget_pid "$pid"
    return 1
  fi
  stop_pid "$pid"
  forget_pid "$pid"
  total=$(ir_of "$out")
  v=$(ir_of "$out" ferry_validate_record)
  printf '   %-30s %6s instructions per record (validation: %s)\n' "ordering=$1 batch=$2 $3" \
    "$(per_record "$total" "$RECORDS")" "$(per_record "${v:-0}" "$RECORDS")"
}

main() {
  local c ordering batch
  if [ ! -x "$VALIDATE_BENCH" ] || [ ! -x "$PRELOAD_BENCH" ] || [ ! -x "$WAIT_BENCH" ]; then
    echo "bench: build the bench programs first: cmake --build $BUILD_DIR" >&2
    exit 1
  fi
  echo "== ferry_validate_record alone (callgrind, 100000 records)"
  printf '%s' "$SCHEMA" >"$BENCH_WORK/schema.json"
  alone "100 B, bench schema (pattern, maxLength)"
  printf '%s' "$NOPATTERN_SCHEMA" >"$BENCH_WORK/nopattern.json"
  alone "100 B, the schema without its pattern" --schema "$BENCH_WORK/nopattern.json"
  alone "100 B, wire-format prefix only" --prefix --no-schema
  alone "100 B, prefix and bench schema" --prefix
  alone "1000 B, bench schema" --bytes 1000

  nginx_start "$BENCH_WORK"
  broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:16"
  "$PRELOAD_BENCH" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --records "$RECORDS" \
    --bytes 100 >/dev/null
  echo "== ferry run under callgrind, $RECORDS records of 100 B, whole process"
  cd "$BENCH_WORK"
  for c in "${CASES[@]}"; do
    read -r ordering batch <<<"$c"
    route_run "$ordering" "$batch" without
    route_run "$ordering" "$batch" with
  done
}

main
