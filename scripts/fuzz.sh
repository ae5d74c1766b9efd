#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz, one at a time: scripts/fuzz.sh BUILD_DIR SECONDS
# [NAME...] (names like fuzz_json; default all). Each starts from its seed corpus
# tests/fuzz/corpus/NAME plus what earlier runs found (BUILD_DIR/fuzz-corpus/NAME, which is where
# new inputs go), then fuzzes for SECONDS. A crash leaves its input as
# BUILD_DIR/fuzz-artifacts/NAME-crash-* and fails the script; each run's log, with libFuzzer's
# final stats, is BUILD_DIR/fuzz-logs/NAME.log. A one-line summary per harness goes to stdout.
# FUZZ_RUNS=N also stops each harness after N executions (libFuzzer's -runs), whichever of the
# two limits comes first: FUZZ_RUNS=10000000 scripts/fuzz.sh build-fuzz 3600 is "10 million
# executions or an hour each".
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS [NAME...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
shift 2
runs_cap=()
if [ -n "${FUZZ_RUNS:-}" ]; then
  if ! [[ $FUZZ_RUNS =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz: FUZZ_RUNS: expected a positive integer, got '$FUZZ_RUNS'" >&2
    exit 2
  fi
  runs_cap=(-runs="$FUZZ_RUNS")
fi
root=$(cd "$(dirname "$0")/.." && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.c; do names+=("$(basename "$f" .c)"); done
fi

mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts" "$build/fuzz-logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for name in "${names[@]}"; do
  bin="$build/$name"
  seeds="$root/tests/fuzz/corpus/$name"
  work="$build/fuzz-corpus/$name"
  log="$build/fuzz-logs/$name.log"
  mkdir -p "$work" "$seeds"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $name: $bin is not built (make build-fuzz)" >&2
    failed=1
    continue
  fi
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    ${runs_cap[@]+"${runs_cap[@]}"} -artifact_prefix="$build/fuzz-artifacts/$name-" \
    "$work" "$seeds" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    echo "fuzz: $name: ok, ${runs:-?} runs, cov ${cov:-?}, corpus $(ls "$work" | wc -l) files"
  else
    echo "fuzz: $name: FAILED, see $log; the input is in $build/fuzz-artifacts/" >&2
    grep -m1 -E 'ERROR: |runtime error:' "$log" >&2 || tail -5 "$log" >&2
    failed=1
  fi
done
exit $failed
