# shellcheck shell=bash
# lib.sh - shell helpers the benchmarks share: loopback ports, a private nginx receiver, the dev
# broker, and measuring a child's time, CPU and peak RSS. Sourced by bench/run.sh; not run alone.
#
# Every process started here is remembered by its pid and stopped by bench_cleanup, which the
# caller installs as its EXIT trap. Every wait has a deadline.

BENCH_PIDS=()

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
