#!/usr/bin/env bash
# The check behind `make test-stress`: the whole `make test` run ROUNDS times (default 3) while
# every core is kept busy by a shell busy loop, as on a shared CI machine. A test that passes
# only on an idle machine fails here. Each round's output goes to LOGDIR (default: a new
# /tmp/ferry-stress.XXXXXX); a summary line per round is printed, and the exit status is
# non-zero when any round failed.
#
# Settings (environment): ROUNDS (rounds of `make test`), LOAD (busy loops; default one per
# core), LOGDIR, MAKE (default make). Rounds run `make -k test`, so a failing unit test does
# not hide the end-to-end results of the same round.
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
LOAD=${LOAD:-$(nproc)}
MAKE=${MAKE:-make}
LOGDIR=${LOGDIR:-}

if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ && $LOAD =~ ^[0-9]+$ ]]; then
    echo "test-stress: ROUNDS must be a positive whole number and LOAD a whole number," \
        "got ROUNDS='$ROUNDS' LOAD='$LOAD'" >&2
    exit 2
fi
if [ -n "$LOGDIR" ]; then mkdir -p "$LOGDIR"; else LOGDIR=$(mktemp -d /tmp/ferry-stress.XXXXXX); fi

STOP_GRACE=30 # seconds a round gets to clean up after a signal before SIGKILL

load_pids=()
round_pid=
stop_load() {
    local pid
    for pid in "${load_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${load_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    load_pids=()
}

# A round runs in a session of its own, so a signal reaches all of it (make, ctest, pytest and
# the processes pytest started) and nothing else. pytest stops what it started on SIGINT and
# SIGTERM; what is still there after STOP_GRACE seconds is killed.
stop_round() {
    local waited=0
    [ -n "$round_pid" ] || return 0
    kill -s "$1" -- "-$round_pid" 2>/dev/null || true
    while kill -0 -- "-$round_pid" 2>/dev/null && [ "$waited" -lt $((STOP_GRACE * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -s KILL -- "-$round_pid" 2>/dev/null || true
    wait "$round_pid" 2>/dev/null || true
    round_pid=
}
trap 'stop_round TERM; stop_load' EXIT
trap 'stop_round INT; exit 130' INT
trap 'stop_round TERM; exit 143' TERM

# A busy loop that also ends by itself, within a fraction of a second, once this script is gone
# (even after SIGKILL, when no trap runs).
start_load() {
    local i
    for ((i = 0; i < LOAD; i++)); do
        # shellcheck disable=SC2016 # expanded by the loop's own shell
        sh -c 'n=0; while :; do n=$((n + 1)); if [ "$n" -ge 20000 ]; then
                   kill -0 "$1" 2>/dev/null || exit 0; n=0; fi; done' busy-loop "$$" &
        load_pids+=("$!")
    done
}

# The lines of a round's log that say how it went: ctest's and pytest's totals, every failure.
summarize() {
    grep -E '^[0-9]+% tests passed|\*\*\*(Failed|Timeout|Exception)|^=* ?[0-9]+ (passed|failed|errors?|skipped|xfailed)[^=]* in [0-9.]+s|^(FAILED|ERROR) |\*\*\* .*Error [0-9]+$' "$1" |
        sed 's/^/    /' || true
}

echo "test-stress: $ROUNDS round(s) of '$MAKE test' beside $LOAD busy loop(s); logs in $LOGDIR"
start_load
failed=0
results=()
for ((round = 1; round <= ROUNDS; round++)); do
    log="$LOGDIR/round-$round.log"
    start=$SECONDS
    setsid "$MAKE" -k test >"$log" 2>&1 </dev/null &
    round_pid=$!
    if wait "$round_pid"; then
        verdict=PASS
    else
        verdict=FAIL
        failed=$((failed + 1))
    fi
    round_pid=
    line="round $round/$ROUNDS: $verdict in $((SECONDS - start)) s ($log)"
    results+=("$line")
    echo "$line"
    summarize "$log"
done
stop_load

echo "test-stress: summary"
printf '  %s\n' "${results[@]}"
if [ "$failed" -gt 0 ]; then
    echo "test-stress: $failed of $ROUNDS round(s) failed"
    exit 1
fi
echo "test-stress: all $ROUNDS round(s) passed"
