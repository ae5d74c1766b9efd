#!/usr/bin/env bash
# tables.sh BUILD_DIR - ferry's tables benchmark (a topic materialized into LMDB, read over
# HTTP), run by `make bench` after the ingest benchmark and alone by `make bench-tables`.
#
# In one run, against one `ferry dev-broker` in its own process (a 64-partition topic):
#   1. preload: ferry-bench-preload writes N records of 100 B with N distinct keys k0..k<N-1>
#      (murmur2_random, as the table's `partitioner: murmur2` expects);
#   2. store ceiling: ferry-bench-store-get fills the same store code with N keys, in key order
#      and shuffled (no Kafka), and times random gets, bare mdb_get beside ferry_store_get;
#   3. restore: a fresh ferry with one table on that topic and an empty store, timed from its
#      log's "applying" line to N records applied (ferry_table_records_applied_total);
#   4. at 64 and 256 connections, one fresh ferry each on the restored store: wrk on /healthz
#      (the HTTP server's ceiling), then BENCH_ROUNDS rounds of wrk on GET of random existing
#      keys (bench/tables.lua) each followed by /healthz again, the GET rate reported as the
#      median of its ratios to the mean of the two /healthz rows around it;
#   5. long polls: a fresh ferry, BENCH_WAITERS parked long polls (ferry-bench-table-watch),
#      ferry's memory before and after, then every key written again and the time until all
#      were answered;
#   6. Server-Sent Events fan-out, subscribers x updates/s, when ferry serves subscriptions
#      (a 501 skips the row).
# Then one table of figures and the issue's targets, met or not.
#
# BENCH_TABLE_KEYS       keys in the table, one record each (default BENCH_RECORDS, or 1000000)
# BENCH_SECONDS          seconds each wrk row is measured (default 10), after a 2 s warm-up
# BENCH_CONNECTIONS      wrk connection counts (default "64 256")
# BENCH_ROUNDS           GET-then-/healthz rounds at each count (default 3; medians)
# BENCH_THREADS          server.threads (default 2, one per core) outside the GET rows, and in
#                        them with BENCH_PIN=0
# BENCH_PIN              1 (the default with 2 or more cores): in the GET rows wrk runs on the
#                        last core and ferry on the others, each with one thread per core it has
#                        (wrk -t, server.threads); 0: both share every core, wrk -t2 and
#                        server.threads=BENCH_THREADS (the rows before session 6)
# BENCH_WAITERS          long polls parked at once (default 10000)
# BENCH_SSE              "SUBSCRIBERS RATE SECONDS" (default "1000 100 5"; one key)
# BENCH_TABLE_PROPS      librdkafka properties of the table's consumer, as YAML pairs (none by
#                        default), e.g. "fetch.wait.max.ms: 10"; the SSE row adds
#                        "fetch.wait.max.ms: 10" unless they set it (see bench_sse)
# BENCH_PERF=DIR         keeps 5 s of `perf record -g` of ferry in each wrk row and the restore
# Everything listens on 127.0.0.1 on ports the OS picks and is stopped on exit.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/tables.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

KEYS=${BENCH_TABLE_KEYS:-${BENCH_RECORDS:-1000000}}
MEASURE_S=${BENCH_SECONDS:-10}
WARMUP_S=2
read -r -a CONNECTIONS <<<"${BENCH_CONNECTIONS:-64 256}"
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_THREADS:-2}
WAITERS=${BENCH_WAITERS:-10000}
read -r SSE_SUBSCRIBERS SSE_RATE SSE_SECONDS <<<"${BENCH_SSE:-1000 100 5}"
# Nothing by default: the table's consumer as ferry makes it against a real cluster. ferry's
# tuning for the mock on its embedded cluster ("fetch.wait.max.ms: 10, queued.min.messages:
# 1000000") restored no faster here and held 25 MB more RssAnon (bench/README.md).
TABLE_PROPS=${BENCH_TABLE_PROPS:-}
NCPU=$(nproc)
PIN=${BENCH_PIN:-$((NCPU >= 2 ? 1 : 0))}
# A closed loop of 64 connections on cores shared by wrk and ferry measures how the scheduler
# shares them: four busy threads on two cores wait slices of a few ms for each other, and that
# is the GET row's p99 (bench/README.md, "session 6"). Pinned, each side has its cores.
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ]; then
  WRK_CPUS=$((NCPU - 1))
  GET_CPUS=0-$((NCPU - 2))
  GET_THREADS=$((NCPU - 1))
  WRK_THREADS=1
else
  PIN=0
  WRK_CPUS=""
  GET_CPUS=""
  GET_THREADS=$THREADS
  WRK_THREADS=2
fi
SERVER_THREADS=$THREADS # server.threads of the next ferry_launch
SERVER_CPUS=""          # and the cores it may run on (taskset), "" for all
VALUE_BYTES=100
# Records in the 2 MiB the apply thread's stage sorts at once (src/table/stage.c): each holds
# its value, a key of about 7 bytes and a content type of about 17: 16,000 with 100-byte values.
STAGE_KEYS=$((2 * 1024 * 1024 / (VALUE_BYTES + 31)))
TOPIC=bench-table
TABLE=bench
PARTITIONS=64 # the dev broker keeps about 5 MiB per partition and drops older records
FERRY=$BUILD_DIR/ferry
PRELOAD_BENCH=$BUILD_DIR/bench/ferry-bench-preload
WAIT_BENCH=$BUILD_DIR/bench/ferry-bench-wait
STORE_BENCH=$BUILD_DIR/bench/ferry-bench-store-get
WATCH_BENCH=$BUILD_DIR/bench/ferry-bench-table-watch
WRK_SCRIPT=$BENCH_SRC/tables.lua

ROWS=()         # "name|rate|unit|p50|p99|CPU s|peak RSS|anon|file|errors|beside", see print_table
TARGET_LINES=() # "target: figure: met / NOT met"
NOTES=()        # rows skipped or cut down, and why
BROKER_BOOTSTRAP=""
BROKER_PID=""
FERRY_PID=""
FERRY_URL=""
FERRY_START=0 # ferry's start, in seconds of the epoch (restore: start to ready)
ANON_MAX=0    # the most RssAnon seen in a ferry holding the whole table, MB
ANON_WHERE="" # and where
PERF_PID=""
FDS_FIT=0
RESTORE_LINE=""
STORE_GET_RPS=""
STORE_FILL_SORTED=""
STORE_FILL_STAGED=""

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_WORK=$(mktemp -d /tmp/ferry-bench-tables.XXXXXX)
STORE_DIR=$BENCH_WORK/data
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT
trap 'exit 130' INT TERM

# ---- ferry ----

# write_table_config PORT FILE [MAX_CONNECTIONS]: ferry with one table on $TOPIC, its store
# under $STORE_DIR; room for $WAITERS long polls and $SSE_SUBSCRIBERS subscribers, plus the one
# sse_status opens: its client leaves after 2 s, but a subscription that has nothing to send
# learns that only at its next heartbeat (docs/table-events.md), so it still holds its place
# when the subscribers arrive.
write_table_config() {
  cat >"$2" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
server:
  listen: "127.0.0.1:$1"
  threads: $SERVER_THREADS
  data_dir: "$STORE_DIR"
  max_connections: ${3:-4096}
  connection_timeout: 120s
log: {level: info}
tables:
  - name: $TABLE
    topic: $TOPIC
    kafka: {${TABLE_PROPS}}
    limits: {max_waiters: $((WAITERS > 10000 ? WAITERS : 10000)), max_subscribers: $((SSE_SUBSCRIBERS >= 1000 ? SSE_SUBSCRIBERS + 1 : 1000))}
YAML
}

# ferry_launch NAME [MAX_CONNECTIONS]: starts `ferry run` on a fresh config and returns at once
# (the caller waits for what it measures); sets FERRY_PID, FERRY_URL and FERRY_START.
ferry_launch() {
  local port config=$BENCH_WORK/ferry-$1.yaml
  port=$(free_port)
  write_table_config "$port" "$config" "${2:-}"
  FERRY_START=$(date +%s.%N)
  ${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "${FERRY_LAUNCH[@]}" "$FERRY" run -c "$config" </dev/null >"$BENCH_WORK/ferry-$1.out" 2>"$BENCH_WORK/ferry-$1.err" &
  FERRY_PID=$!
  BENCH_PIDS+=("$FERRY_PID")
  FERRY_URL="http://127.0.0.1:$port"
}

ready() {
  curl -sf -o /dev/null --max-time 1 "$FERRY_URL/readyz"
}

# ferry_start NAME [MAX_CONNECTIONS]: ferry_launch, then waits until it is ready (its table
# caught up: a store restored already only reads the partitions' ends).
ferry_start() {
  ferry_launch "$@"
  if ! wait_until 60 ready; then
    echo "bench: ferry did not become ready; its log:" >&2
    tail -20 "$BENCH_WORK/ferry-$1.err" >&2
    return 1
  fi
}

ferry_stop() {
  [ -n "$FERRY_PID" ] || return 0
  stop_pid "$FERRY_PID"
  forget_pid "$FERRY_PID"
  FERRY_PID=""
}

# note_anon WHERE KV_LINE: keeps the largest anon_mb seen in a ferry holding the whole table.
note_anon() {
  local a
  a=$(field anon_mb "$2")
  if awk -v a="$a" -v m="$ANON_MAX" 'BEGIN { exit !(a > m) }'; then
    ANON_MAX=$a
    ANON_WHERE=$1
  fi
}

# perf_capture NAME DELAY: with BENCH_PERF set, samples ferry's stacks for 5 s into
# $BENCH_PERF/NAME.data in the background, starting DELAY seconds from now; sets PERF_PID.
perf_capture() {
  PERF_PID=""
  [ -n "${BENCH_PERF:-}" ] || return 0
  mkdir -p "$BENCH_PERF"
  (sleep "$2" && perf record -g -o "$BENCH_PERF/$1.data" -p "$FERRY_PID" -- sleep 5 \
    >/dev/null 2>&1) &
  PERF_PID=$!
}

# perf_wait: waits for the perf_capture in progress, if any.
perf_wait() {
  [ -z "$PERF_PID" ] || wait "$PERF_PID" || true
  PERF_PID=""
}

# ---- rows ----

# add_row NAME RATE UNIT P50 P99 CPU HWM ANON FILE ERRORS BESIDE: one line of the table.
add_row() {
  local IFS='|'
  ROWS+=("$*")
}

bench_preload() {
  local line name="preload ($KEYS x $VALUE_BYTES B, $KEYS keys)"
  echo "== $name to $TOPIC ($PARTITIONS partitions) at $BROKER_BOOTSTRAP"
  line=$("$PRELOAD_BENCH" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --records "$KEYS" \
    --bytes "$VALUE_BYTES" --keys "$KEYS")
  echo "   $line"
  add_row "$name" "$(field rps "$line")" records/s - - "$(field cpu_s "$line")" \
    "$(field rss_mb "$line")" - - "$(field errors "$line")" "librdkafka producer"
}

# log_seconds FILE FROM TO: seconds between ferry's first log lines containing FROM and TO.
log_seconds() {
  awk -v a="$2" -v b="$3" '
    function secs(line,   t) { match(line, /T[0-9:.]+Z/); t = substr(line, RSTART + 1, RLENGTH - 2)
      split(t, f, ":"); return f[1] * 3600 + f[2] * 60 + f[3] }
    index($0, a) && !ta { ta = secs($0) } index($0, b) && !tb { tb = secs($0) }
    END { if (ta && tb) printf "%.2f", tb - ta; else print "-" }' "$1"
}

# log_epoch FILE TEXT: the time of ferry's first log line containing TEXT, in seconds since the
# epoch (0 when there is none).
log_epoch() {
  local ts
  ts=$(grep -m1 -F "$2" "$1" | grep -o 'ts=[0-9T:.-]*Z' | cut -d= -f2)
  if [ -n "$ts" ]; then date -d "$ts" +%s.%N; else echo 0; fi
}

# restore_io: "commits=N per_commit=R written_mb=W" of the restore's ferry: its write
# transactions (ferry_table_apply_batch_seconds_count) and the bytes it handed the kernel
# (wchar: LMDB writes every dirty page of a commit with pwrite, then fdatasync).
restore_io() {
  local commits
  commits=$(curl -sf --max-time 2 "$FERRY_URL/metrics" |
    awk '/^ferry_table_apply_batch_seconds_count/ { print $2 }')
  awk -v c="${commits:-0}" -v n="$KEYS" '$1 == "wchar:" {
    printf "commits=%d per_commit=%.0f written_mb=%.0f\n", c, c ? n / c : 0, $2 / 1e6 }' \
    "/proc/$FERRY_PID/io"
}

# bench_restore: a fresh ferry on an empty store, timed from its log's "applying" line to the
# moment ferry-bench-wait saw N records applied; its CPU, memory and writes then. The store
# ceiling's files are synced and gone first, so that the restore does not share the disk with
# their write-back.
bench_restore() {
  local line rc=0 ticks mem io rps restore_s applying log_s ready_s
  local name="restore ($KEYS records, empty store)"
  echo "== $name"
  rm -rf "$STORE_DIR"
  sync
  ferry_launch restore
  perf_capture restore 0.2
  line=$("$WAIT_BENCH" --url "$FERRY_URL/metrics" --records "$KEYS" --timeout 900 \
    --started ferry_table_records_applied_total --done ferry_table_records_applied_total \
    --pid "$FERRY_PID") || rc=$?
  ticks=$(cpu_ticks "$FERRY_PID")
  if [ "$rc" -ne 0 ] || ! wait_until 10 ready; then
    echo "bench: the restore did not finish; ferry's log:" >&2
    tail -5 "$BENCH_WORK/ferry-restore.err" >&2
    ferry_stop
    perf_wait
    add_row "$name" FAILED - - - - - - - - -
    return 1
  fi
  ready_s=$(awk -v s="$FERRY_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - s }')
  mem=$(mem_mb "$FERRY_PID")
  io=$(restore_io)
  ferry_stop
  perf_wait
  log_s=$(log_seconds "$BENCH_WORK/ferry-restore.err" "msg=\"applying" "msg=\"ready:")
  # from the log's "applying" (the consumer assigned, nothing fetched yet) to the Nth applied:
  # a load's first commit may hold all of it, so timing from it would not do
  applying=$(log_epoch "$BENCH_WORK/ferry-restore.err" "msg=\"applying")
  restore_s=$(awk -v a="$applying" -v d="$(field done_epoch "$line")" \
    'BEGIN { printf "%.3f", (a > 0 && d > a ? d - a : 0) }')
  rps=$(awk -v n="$KEYS" -v s="$restore_s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
  [ "$rps" != 0 ] || NOTES+=("restore: no 'applying' line in ferry's log: no rate measured")
  echo "   $line; ferry $(seconds "$ticks") CPU s, $mem, $io; log: applying to ready" \
    "${log_s} s; start to /readyz ${ready_s} s"
  # the anon peak comes from ferry-bench-wait's scrapes (every 20 ms), the rest from the end
  note_anon "restore (peak)" "anon_mb=$(field anon_peak_mb "$line")"
  add_row "$name" "$rps" records/s - - "$(seconds "$ticks")" "$(field hwm_mb "$mem")" \
    "$(field anon_peak_mb "$line")" "$(field file_peak_mb "$line")" - \
    "$(awk -v a="$rps" -v b="$STORE_FILL_STAGED" -v c="$STORE_FILL_SORTED" \
      'BEGIN { if (b && c) printf "%.2fx staged fill, %.2fx in-order fill; ", a / b, a / c }')$(
      field per_commit "$io") records/commit, $(field written_mb "$io") MB written"
  RESTORE_LINE="rps=$rps seconds=$restore_s log_s=$log_s ready_s=$ready_s"
}

# store_bench NAME ARGS...: runs ferry-bench-store-get in $BENCH_WORK (the file system ferry's
# stores are on) with ARGS; its report goes to $BENCH_WORK/NAME.out and is echoed.
store_bench() {
  local out=$BENCH_WORK/$1.out
  shift
  TMPDIR=$BENCH_WORK "$STORE_BENCH" --keys "$KEYS" --value-bytes "$VALUE_BYTES" "$@" >"$out" ||
    return 1
  sed 's/^/   /' "$out"
}

# report_field FILE MODE KEY: KEY's value on MODE's line of a ferry-bench-store-get report.
report_field() {
  awk -v m="$2" -v k="$3=" '$1 == m { for (i = 2; i <= NF; i++) if (index($i, k) == 1)
    print substr($i, length(k) + 1) }' "$1"
}

# bench_store: the store's own ceilings, same machine, same run, no Kafka and no HTTP: filling
# it 10,000 keys per write transaction (ferry's largest once ready) in key order (the best case:
# each page written once) and in a shuffled order (the worst: every commit dirties pages all
# over the tree; a topic's records come in neither); as a restore writes (one unsynced
# transaction of up to 2,000,000 keys, shuffled, put in key order STAGE_KEYS at a time: about
# the records in the 2 MiB that src/table/stage.c sorts at once);
# and random gets on one thread, bare LMDB beside ferry's store.
bench_store() {
  local sorted shuffled staged raw get raw_cpu get_cpu f=$BENCH_WORK
  echo "== store ceiling: ferry-bench-store-get --keys $KEYS --value-bytes $VALUE_BYTES"
  if ! store_bench store-shuffled --gets 0 --fill-order shuffled ||
    ! store_bench store-staged --gets 0 --fill-order staged --stage "$STAGE_KEYS" \
      --fill-batch $((KEYS < 2000000 ? KEYS : 2000000)) --commits unsynced ||
    ! store_bench store --gets 1000000 --rounds 3; then
    add_row "store (ferry-bench-store-get)" FAILED - - - - - - - - -
    return 1
  fi
  sorted=$(report_field "$f/store.out" fill records_per_s)
  shuffled=$(report_field "$f/store-shuffled.out" fill records_per_s)
  staged=$(report_field "$f/store-staged.out" fill records_per_s)
  raw=$(report_field "$f/store.out" raw-one-txn best_wall_gets_per_s)
  get=$(report_field "$f/store.out" store-get best_wall_gets_per_s)
  raw_cpu=$(report_field "$f/store.out" raw-one-txn cpu_gets_per_s)
  get_cpu=$(report_field "$f/store.out" store-get cpu_gets_per_s)
  STORE_GET_RPS=$raw
  STORE_FILL_SORTED=$sorted
  STORE_FILL_STAGED=$staged
  add_row "store fill, keys in order" "$sorted" records/s - - - - - - - "10k keys per txn"
  add_row "store fill, keys shuffled" "$shuffled" records/s - - - - - - - "10k keys per txn"
  add_row "store fill, as a restore writes" "$staged" records/s - - - - - - - \
    "shuffled keys, up to 2M per unsynced txn, put in order $STAGE_KEYS at a time"
  # best round's wall rate; the per-CPU-second rates leave out the time other processes took
  add_row "LMDB random get, bare (1 thread)" "$raw" gets/s - - - - - - - \
    "mdb_get, one read txn; $raw_cpu per CPU s"
  add_row "ferry_store_get (1 thread)" "$get" gets/s - - - - - - - \
    "$get_cpu per CPU s, $(awk -v a="$get_cpu" -v b="$raw_cpu" 'BEGIN { printf "%.2fx bare", a / b }')"
}

# run_wrk SECONDS CONNECTIONS PATH OUT: wrk through tables.lua, GET of random keys or of PATH;
# the report goes to OUT and wrk's own CPU to OUT.cpu.
run_wrk() {
  TABLES_TABLE=$TABLE TABLES_KEYS=$KEYS TABLES_PATH=$3 /usr/bin/time -f '%U %S' -o "$4.cpu" \
    ${WRK_CPUS:+taskset -c "$WRK_CPUS"} wrk -t"$WRK_THREADS" -c"$2" -d"${1}s" --timeout 10s --latency -s "$WRK_SCRIPT" \
    "$FERRY_URL" >"$4"
}

# wrk_row C PATH: MEASURE_S seconds of wrk on the running ferry (random keys when PATH is
# empty); prints parse_wrk's line and "cpu_s=C wrk_cpu_s=W".
wrk_row() {
  local out=$BENCH_WORK/wrk-$1-${2:+healthz} t0 t1
  t0=$(cpu_ticks "$FERRY_PID")
  run_wrk "$MEASURE_S" "$1" "$2" "$out" || return 1
  t1=$(cpu_ticks "$FERRY_PID")
  echo "$(parse_wrk "$out") cpu_s=$(seconds $((t1 - t0)))" \
    "wrk_cpu_s=$(awk '{ printf "%.2f", $1 + $2 }' "$out.cpu")"
}

# us_per_request KV_LINE: ferry's CPU microseconds per request in a wrk row, which says what a
# request costs ferry whatever share of the cores it got.
us_per_request() {
  awk -v c="$(field cpu_s "$1")" -v r="$(field rps "$1")" -v s="$MEASURE_S" \
    'BEGIN { printf "%.1f", r ? c * 1e6 / (r * s) : 0 }'
}

# medians LINES...: one key=value line with the median of every numeric key over LINES (the
# keys of the first line), and ratio= the median of the per-line ratio= values when present.
medians() {
  printf '%s\n' "$@" | awk '
    function median(list,   v, n, i, j, t) {
      n = split(list, v, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      return n % 2 ? v[(n + 1) / 2] : sprintf("%.3f", (v[n / 2] + v[n / 2 + 1]) / 2)
    }
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (NR == 1) keys[++nk] = kv[1]; vals[kv[1]] = vals[kv[1]] " " kv[2] } }
    END { for (i = 1; i <= nk; i++) printf "%s%s=%s", (i > 1 ? " " : ""), keys[i], median(vals[keys[i]]); print "" }'
}

# tidy KV_LINE: for the table, the line with rps and wrk_errors as whole numbers, us to one
# place, ratio to three and the other numbers to two (a median of an even count of rows may fall between two).
tidy() {
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
           if (kv[2] ~ /^[0-9.]+$/) $i = kv[1] "=" sprintf(kv[1] ~ /^(rps|wrk_errors)$/ ? "%.0f" : kv[1] == "us" ? "%.1f" : kv[1] == "ratio" ? "%.3f" : "%.2f", kv[2]) }
         print }' <<<"$1"
}

# hz_row C: one /healthz row on the running ferry; prints "healthz LINE us=U".
hz_row() {
  local hz
  hz=$(wrk_row "$1" /healthz) || return 1
  echo "healthz $hz us=$(us_per_request "$hz")"
}

# get_round C ROUND BEFORE: one GET row then one /healthz row on the running ferry, where
# BEFORE is the /healthz line just before the GET row. Prints "get LINE us=U ratio=R", R being
# the GET's requests/s over the mean of the two /healthz rows around it, then hz_row's line
# (perf samples the first GET row). The host's speed moves within minutes, so a ratio to one
# row taken before can be off by a third.
get_round() {
  local get after
  [ "$2" != 1 ] || perf_capture "get-$1" 2
  get=$(wrk_row "$1" "") || { perf_wait; return 1; }
  perf_wait
  after=$(hz_row "$1") || return 1
  echo "get $get us=$(us_per_request "$get") ratio=$(awk -v a="$(field rps "$get")" \
    -v b="$(field rps "$3")" -v c="$(field rps "$after")" 'BEGIN { printf "%.3f", 2 * a / (b + c) }')"
  echo "$after"
}

# bench_get C: a fresh ferry on the restored store; a warm-up of GETs (its map pages come in),
# then /healthz and ROUNDS rounds of GET of random keys each followed by /healthz, at C
# connections. The rows give the medians; the GET row's ratio is the median of each round's GET
# over the mean of the /healthz rows just before and just after it.
bench_get() {
  local c=$1 round out hz get get_raw mem ratios=() hzs=() gets=()
  local SERVER_THREADS=$GET_THREADS SERVER_CPUS=$GET_CPUS # seen by ferry_start
  local hname="GET /healthz (c=$c)" gname="GET random key (c=$c)"
  echo "== $hname, then $gname, $ROUNDS round(s)"
  if ! ferry_start "get-$c" || ! run_wrk "$WARMUP_S" "$c" "" "$BENCH_WORK/warmup"; then
    add_row "$gname" FAILED - - - - - - - - -
    ferry_stop
    return 1
  fi
  if ! out=$(hz_row "$c"); then
    add_row "$gname" FAILED - - - - - - - - -
    ferry_stop
    return 1
  fi
  echo "   $out"
  hzs+=("${out#healthz }")
  for round in $(seq 1 "$ROUNDS"); do
    # not in $(...): a perf capture started here must be waited for by this shell
    if ! get_round "$c" "$round" "${hzs[-1]}" >"$BENCH_WORK/round"; then
      add_row "$gname" FAILED - - - - - - - - -
      ferry_stop
      return 1
    fi
    out=$(cat "$BENCH_WORK/round")
    sed 's/^/   /' "$BENCH_WORK/round"
    hzs+=("$(sed -n 's/^healthz //p' <<<"$out")")
    gets+=("$(sed -n 's/^get //p' <<<"$out")")
    ratios+=("$(field ratio "${gets[-1]}")")
  done
  mem=$(mem_mb "$FERRY_PID")
  echo "   ferry: $mem"
  note_anon "after GET c=$c" "$mem"
  ferry_stop
  hz=$(tidy "$(medians "${hzs[@]}")")
  get_raw=$(medians "${gets[@]}") # the targets are checked on these, before rounding
  get=$(tidy "$get_raw")
  add_row "$hname" "$(field rps "$hz")" req/s "$(field p50_ms "$hz")" "$(field p99_ms "$hz")" \
    "$(field cpu_s "$hz")" - - - "$(field wrk_errors "$hz")" \
    "$(field us "$hz") us ferry CPU/req; wrk $(field wrk_cpu_s "$hz") CPU s"
  add_row "$gname" "$(field rps "$get")" req/s "$(field p50_ms "$get")" "$(field p99_ms "$get")" \
    "$(field cpu_s "$get")" "$(field hwm_mb "$mem")" "$(field anon_mb "$mem")" \
    "$(field file_mb "$mem")" "$(field wrk_errors "$get")" \
    "$(printf '%.2fx' "$(field ratio "$get")") /healthz ($(printf '%sx ' "${ratios[@]}" |
      sed 's/ $//')); $(field us "$get") us ferry CPU/req; $(awk -v a="$(field rps "$get")" \
      -v b="$STORE_GET_RPS" 'BEGIN { if (b) printf "%.3fx", a / b; else print "-" }') store ceiling"
  if [ "$c" = 64 ]; then
    check "GET at 0.70x /healthz or more, c=64 (median of $ROUNDS)" \
      "$(printf '%.3fx' "$(field ratio "$get_raw")")" \
      "$(awk -v r="$(field ratio "$get_raw")" 'BEGIN { print (r >= 0.70) }')"
    check "GET p99 under 5 ms, c=64 (median of $ROUNDS)" "$(field p99_ms "$get") ms" \
      "$(awk -v p="$(field p99_ms "$get_raw")" 'BEGIN { print (p < 5) }')"
  fi
  check "GET answers all 2xx, c=$c" "$(printf '%s\n' "${gets[@]}" |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^wrk_errors=/) { sub(/.*=/, "", $i); e += $i } }
      END { print e + 0 }') non-2xx or socket errors in $ROUNDS rounds" \
    "$(printf '%s\n' "${gets[@]}" | awk '/wrk_errors=[1-9]/ { bad = 1 } END { print !bad }')"
}

# check WHAT FIGURE MET: a line of the closing summary.
check() {
  TARGET_LINES+=("$1: $2: $([ "$3" = 1 ] && echo met || echo "NOT met")")
  [ -z "${BENCH_SUMMARY:-}" ] || echo "tables: ${TARGET_LINES[-1]}" >>"$BENCH_SUMMARY"
}

# fds_for N: raises this shell's open-file limit (inherited by ferry and the client, which each
# hold one end of every connection) for N connections if it may; sets FDS_FIT to how many fit.
fds_for() {
  local want=$(($1 + 1024)) hard
  if [ "$(ulimit -n)" -lt "$want" ]; then
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ] || want=$hard
    ulimit -n "$want" 2>/dev/null || true
  fi
  want=$(($(ulimit -n) - 1024))
  FDS_FIT=$(($1 < want ? $1 : want))
}

# few_fds PID: true when PID holds fewer than 256 open files (its client connections closed).
few_fds() {
  local fds=(/proc/"$1"/fd/*)
  [ "${#fds[@]}" -lt 256 ]
}

bench_longpolls() {
  local n line name delta
  fds_for "$WAITERS"
  n=$FDS_FIT
  name="long polls ($n parked, then woken)"
  [ "$n" = "$WAITERS" ] || NOTES+=("long polls: the open-file limit ($(ulimit -n)) allows $n, not $WAITERS")
  echo "== $name"
  if ! ferry_start longpoll $((n + 1024)); then
    add_row "$name" FAILED - - - - - - - - -
    return 1
  fi
  if ! line=$("$WATCH_BENCH" --mode longpoll --url "$FERRY_URL" --table "$TABLE" \
      --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --clients "$n" --wait 60 \
      --pid "$FERRY_PID" --timeout 300); then
    ferry_stop
    add_row "$name" FAILED - - - - - - - - -
    return 1
  fi
  # ferry closes the client's 10,000 connections as it notices them gone: measure after that
  wait_until 10 few_fds "$FERRY_PID" || true
  LONGPOLL_AFTER=$(mem_mb "$FERRY_PID")
  echo "   $line; after the clients left: $LONGPOLL_AFTER"
  ferry_stop
  delta=$(awk -v a="$(field anon_after_mb "$line")" -v b="$(field anon_before_mb "$line")" \
    'BEGIN { printf "%.1f", a - b }')
  add_row "$name" "$(field woken "$line")" "woken" "$(field wake_p50_ms "$line")" \
    "$(field wake_p99_ms "$line")" - "$(field hwm_mb "$LONGPOLL_AFTER")" \
    "$(field anon_before_mb "$line") -> $(field anon_after_mb "$line")" \
    "$(field file_before_mb "$line") -> $(field file_after_mb "$line")" \
    "$(($(field early "$line") + $(field wrong_status "$line") + $(field failed "$line") + $(field unanswered "$line")))" \
    "all in $(field wake_all_ms "$line") ms"
  check "$n parked long polls under 50 MB more (RssAnon)" "+$delta MB" \
    "$(awk -v d="$delta" 'BEGIN { print (d < 50) }')"
}

# sse_status: the status of a subscription request (501 until ferry serves them).
sse_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$FERRY_URL/tables/$TABLE/keys/k0/events" ||
    true
}

bench_sse() {
  local n status line name props=$TABLE_PROPS started
  fds_for "$SSE_SUBSCRIBERS"
  n=$FDS_FIT
  name="SSE fan-out ($n subscribers x $SSE_RATE updates/s)"
  echo "== $name"
  # The dev broker (librdkafka's mock) holds a fetch that finds nothing for the consumer's whole
  # fetch.wait.max.ms, 500 ms by default, even when records arrive meanwhile; a real broker
  # answers as soon as one does. Left alone, this row measures that wait (two commits a second,
  # whatever the rate), not ferry.
  [[ $TABLE_PROPS == *fetch.wait.max.ms* ]] ||
    TABLE_PROPS="fetch.wait.max.ms: 10${TABLE_PROPS:+, $TABLE_PROPS}"
  started=0
  ferry_start sse $((n + 1024)) && started=1
  TABLE_PROPS=$props
  if [ "$started" = 0 ]; then
    add_row "$name" FAILED - - - - - - - - -
    return 1
  fi
  status=$(sse_status)
  if [ "$status" != 200 ]; then
    ferry_stop
    add_row "$name" "skipped" - - - - - - - - "subscriptions answer $status"
    NOTES+=("SSE fan-out: GET /tables/$TABLE/keys/k0/events answered $status, not 200: not measured")
    return 0
  fi
  if ! line=$("$WATCH_BENCH" --mode sse --url "$FERRY_URL" --table "$TABLE" \
      --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" --clients "$n" --keys 1 \
      --rate "$SSE_RATE" --seconds "$SSE_SECONDS" --pid "$FERRY_PID" --timeout 300); then
    ferry_stop
    add_row "$name" FAILED - - - - - - - - -
    return 1
  fi
  echo "   $line"
  ferry_stop
  add_row "$name" "$(field events_per_s "$line")" events/s "$(field delay_p50_ms "$line")" \
    "$(field delay_p99_ms "$line")" "$(field server_cpu_s "$line")" - \
    "$(field anon_before_mb "$line") -> $(field anon_after_mb "$line")" - \
    "$(($(field wrong_status "$line") + $(field gone "$line") + $(field failed "$line")))" \
    "$(field received "$line") of $(field expected "$line") events; $(field commits "$line") commits; $(field cpu_us_per_event "$line") us ferry CPU/event"
}

print_table() {
  echo
  echo "ferry tables benchmark, $(date -u +%Y-%m-%d), $KEYS keys of $VALUE_BYTES B on" \
    "$PARTITIONS partitions, $(nproc) cores shared by wrk, ferry and the dev broker;" \
    "wrk -t$WRK_THREADS, ${MEASURE_S} s per row after a ${WARMUP_S} s warm-up," \
    "server.threads=$THREADS; ferry's $(bench_allocator)"
  if [ "$PIN" = 1 ]; then
    echo "GET rows pinned: ferry on cores $GET_CPUS with server.threads=$GET_THREADS, wrk -t$WRK_THREADS" \
      "on core $WRK_CPUS (BENCH_PIN=0: shared)"
  fi
  echo "CPU s are ferry's own over the row; RSS: peak (VmHWM), anon (RssAnon, ferry's own" \
    "memory) and file (RssFile, mostly LMDB's map: page cache), MB; p50/p99 in ms."
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(other work on the machine skews every row)"
  {
    echo "name|rate|unit|p50|p99|CPU s|peak|anon|file|errors|beside"
    printf '%s\n' "${ROWS[@]}"
  } | awk -F'|' '{ printf "%-42s %9s %-9s %6s %6s %6s %6s %13s %13s %6s  %s\n",
                   $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }'
  echo
  [ "${#NOTES[@]}" -eq 0 ] || printf 'note: %s\n' "${NOTES[@]}"
  printf '%s\n' "${TARGET_LINES[@]}"
}

main() {
  local c rps
  command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }
  for c in "$PRELOAD_BENCH" "$WAIT_BENCH" "$STORE_BENCH" "$WATCH_BENCH"; do
    [ -x "$c" ] || { echo "bench: $c not built: cmake --build $BUILD_DIR" >&2; exit 1; }
  done
  if ! broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:$PARTITIONS"; then
    echo "bench: no dev broker, no tables benchmark" >&2
    exit 1
  fi
  BROKER_PID=${BENCH_PIDS[-1]}
  echo "== dev broker at $BROKER_BOOTSTRAP (pid $BROKER_PID), topic $TOPIC with $PARTITIONS partitions"
  bench_preload
  bench_store || true
  if bench_restore; then
    rps=$(field rps "$RESTORE_LINE")
    check "restore at 500000 records/s or more" "$rps records/s" "$((rps >= 500000 ? 1 : 0))"
    for c in "${CONNECTIONS[@]}"; do
      bench_get "$c" || true
    done
    check "RSS outside LMDB's page cache under 100 MB with $KEYS keys" \
      "at most $ANON_MAX MB RssAnon ($ANON_WHERE)" \
      "$(awk -v a="$ANON_MAX" 'BEGIN { print (a < 100) }')"
    bench_longpolls || true
    bench_sse || true
  fi
  print_table
}

main
