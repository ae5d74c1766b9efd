# shellcheck shell=bash
# lib.sh - shell helpers the benchmarks share: loopback ports, a private nginx receiver, the dev
# broker, measuring a child's time, CPU and memory, and reading wrk's report. Sourced by the
# bench/*.sh scripts; not run alone.
#
# Every process started here is remembered by its pid and stopped by bench_cleanup, which the
# caller installs as its EXIT trap. Every wait has a deadline.

BENCH_PIDS=()

# BENCH_MALLOC=PATH runs the ferry that `make bench`'s benchmarks start (run.sh, ingest.sh,
# tables.sh; not the dev broker, not the other bench scripts) with that malloc library
# preloaded (LD_PRELOAD), e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 from Debian's
# libjemalloc2, so that the whole table can be measured again with another allocator
# (docs/operations.md, "Another allocator"). Unset, ferry runs on glibc's malloc, as built.
# The benchmarks start ferry as "${FERRY_LAUNCH[@]}" "$FERRY" run ...; env replaces itself
# with ferry, so the pid and the command line stay ferry's.
# shellcheck disable=SC2034 # read by the scripts that source this file
FERRY_LAUNCH=(env)
if [ -n "${BENCH_MALLOC:-}" ]; then
  if [ ! -r "$BENCH_MALLOC" ]; then
    echo "bench: BENCH_MALLOC: cannot read '$BENCH_MALLOC' (a malloc library to preload)" >&2
    exit 2
  fi
  # shellcheck disable=SC2034
  FERRY_LAUNCH=(env "LD_PRELOAD=$BENCH_MALLOC")
fi

# Prints which malloc ferry runs on in these benchmarks, for the tables' headers.
bench_allocator() {
  echo "malloc: ${BENCH_MALLOC:-glibc (as built)}"
}

# Prints a TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_until() {
  local tries=$(($1 * 10))
  shift
  while ((tries-- > 0)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# stop_pid PID: SIGTERM, up to 10 s for it to exit, then SIGKILL. Only for pids started here.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait_until 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
  BENCH_PIDS=()
}

# Writes the private nginx's configuration. POST bodies are discarded by `return`, and anything
# nginx does buffer stays in memory up to 1 MiB, so 100 B and 64 KiB bodies never touch disk.
nginx_conf() {
  local dir=$1 port=$2
  cat <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  default_type text/plain;
  server {
    listen 127.0.0.1:$port;
    location = /_status { stub_status; }
    location / { return 200 "ok"; }
  }
}
EOF
}

# nginx_start DIR: starts a private nginx (one worker) under DIR/nginx on a free loopback port.
# Sets NGINX_URL (POST anything there for a 200 "ok") and NGINX_STATUS_URL.
nginx_start() {
  local dir=$1/nginx port pid
  mkdir -p "$dir/tmp"
  # Workers drop to an unprivileged user when we are root; let them reach their own files.
  chmod 755 "$1" "$dir" "$dir/tmp"
  port=$(free_port)
  nginx_conf "$dir" "$port" >"$dir/nginx.conf"
  /usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null &
  pid=$!
  BENCH_PIDS+=("$pid")
  NGINX_URL="http://127.0.0.1:$port/ingest"
  NGINX_STATUS_URL="http://127.0.0.1:$port/_status"
  if ! wait_until 10 curl -sf -o /dev/null --max-time 1 -d x "$NGINX_URL"; then
    echo "bench: nginx did not start on port $port; its log:" >&2
    cat "$dir/error.log" >&2 2>/dev/null || true
    return 1
  fi
}

# Prints how many requests the private nginx has answered so far (its status page counts too).
nginx_requests() {
  curl -sf --max-time 2 "$NGINX_STATUS_URL" | awk 'NR == 3 { print $3 }'
}

# broker_start FERRY DIR TOPIC:PARTITIONS: starts `ferry dev-broker` and sets BROKER_BOOTSTRAP.
# Fails (leaving nothing running) when the binary has no dev-broker yet or it does not come up.
broker_start() {
  local ferry=$1 file=$2/bootstrap pid
  [ -x "$ferry" ] || { echo "bench: $ferry not built" >&2; return 1; }
  rm -f "$file"
  "$ferry" dev-broker --brokers 1 --topic "$3" --bootstrap-file "$file" \
    </dev/null >"$2/broker.out" 2>"$2/broker.err" &
  pid=$!
  BENCH_PIDS+=("$pid")
  if ! wait_until 15 bash -c "[ -s '$file' ] || ! kill -0 $pid 2>/dev/null" \
      || ! kill -0 "$pid" 2>/dev/null || [ ! -s "$file" ]; then
    echo "bench: ferry dev-broker did not start:" >&2
    head -5 "$2/broker.err" >&2
    stop_pid "$pid"
    return 1
  fi
  # shellcheck disable=SC2034 # read by the caller
  BROKER_BOOTSTRAP=$(head -1 "$file" | tr -d '[:space:]')
}

# measure OUT CMD...: runs CMD under /usr/bin/time and, when it succeeds, prints
# "seconds=E cpu_s=U+S rss_mb=M" for that one process. CMD's stdout goes to OUT.
measure() {
  local out=$1 tfile
  shift
  tfile=$(mktemp)
  if ! /usr/bin/time -f '%e %U %S %M' -o "$tfile" "$@" >"$out"; then
    rm -f "$tfile"
    return 1
  fi
  awk '{ printf "seconds=%s cpu_s=%.2f rss_mb=%.1f\n", $1, $2 + $3, $4 / 1024 }' "$tfile"
  rm -f "$tfile"
}

# field KEY LINE: prints the value of KEY in a line of key=value pairs.
field() {
  tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

# ---- a running process's figures, from /proc ----

CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: user plus system CPU of PID so far, in clock ticks (the fields after "comm").
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# seconds TICKS: clock ticks as seconds.
seconds() {
  awk -v n="$1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", n / t }'
}

# peak_rss_mb PID: the process's peak resident set (VmHWM), in MB.
peak_rss_mb() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# mem_mb PID: "rss_mb=R hwm_mb=H anon_mb=A file_mb=F" now: the resident set, its peak, and its
# two parts, memory of the process's own (RssAnon) and mapped files (RssFile: for a table,
# mostly LMDB's map, which is the page cache and not the process's to keep).
mem_mb() {
  awk '$1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } $1 == "RssAnon:" { a = $2 }
       $1 == "RssFile:" { f = $2 }
       END { printf "rss_mb=%.1f hwm_mb=%.1f anon_mb=%.1f file_mb=%.1f\n", r / 1024, h / 1024,
             a / 1024, f / 1024 }' "/proc/$1/status"
}

# forget_pid PID: drops PID from the list bench_cleanup stops (it has been stopped already).
forget_pid() {
  local keep=() p
  for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

# parse_wrk OUT: "rps=R p50_ms=A p99_ms=B wrk_errors=E" from a wrk report; its errors are
# non-2xx answers plus socket errors.
parse_wrk() {
  awk '
    function ms(s) {
      if (s ~ /us$/) return substr(s, 1, length(s) - 2) / 1000
      if (s ~ /ms$/) return substr(s, 1, length(s) - 2) + 0
      if (s ~ /s$/) return substr(s, 1, length(s) - 1) * 1000
      if (s ~ /m$/) return substr(s, 1, length(s) - 1) * 60000
      return -1
    }
    /^Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { err += $NF }
    /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
    END { printf "rps=%.0f p50_ms=%.2f p99_ms=%.2f wrk_errors=%d\n", rps, p50, p99, err }' "$1"
}
