#!/usr/bin/env bash
# grpc.sh BUILD_DIR - a gRPC target against HTTP/1.1 POSTs, both over TLS (issue 13,
# "Benchmark"); `make bench-grpc`.
#
# In one run, against one `ferry dev-broker` in its own process:
#   1. preload: ferry-bench-preload writes BENCH_RECORDS records of 100 B to a 64-partition
#      topic; every route run reads it from the start with a group of its own;
#   2. the receiver: a private nginx (one worker) with a certificate made for the run, on three
#      ports: HTTPS (HTTP/1.1 only) answering 200 "ok"; HTTPS with HTTP/2 answering every call as
#      gRPC OK (the 5-byte frame of an empty message); and the same without TLS (h2c with prior
#      knowledge). nginx does the same little work for each, so the rows compare ferry's cost
#      per protocol, not two servers. (nginx 1.22's add_trailer sent no trailer on these
#      answers, so grpc-status: 0 rides in the response headers; ferry reads it there as from
#      trailers);
#   3. BENCH_ROUNDS rounds of the cases, each a fresh ferry and a fresh group, one record per
#      request, concurrency BENCH_CONCURRENCY, ordering none:
#        grpc-tls   target.grpc over https://: calls multiplexed on pooled HTTP/2 connections,
#        http1-tls  target.url over https:// (HTTP/1.1): a keep-alive connection per request in
#                   flight,
#        grpc-h2c   target.grpc over http:// (h2c): a connection per call (curl issue 10634),
#                   on BENCH_H2C_RECORDS records;
#      records/s from the first record consumed to the last delivered (ferry-bench-wait reads
#      ferry's /metrics), and the CPU seconds of the ferry process over the run;
#   4. a table: per case the median records/s and CPU s, CPU ms per 1,000 records, and each
#      run's figures; then grpc-tls against http1-tls, and grpc-h2c against grpc-tls.
#
# BENCH_ROUNDS       rounds (default 3; medians)
# BENCH_RECORDS      records per TLS run (default 100000)
# BENCH_H2C_RECORDS  records per h2c run (default 20000: a connection per call is slow)
# BENCH_CONCURRENCY  requests in flight (default 64)
# BENCH_CASES        which cases, in order (default "grpc-tls http1-tls grpc-h2c")
# BENCH_WAIT_TIMEOUT seconds a run may take before it counts as failed (default 600)
# BENCH_ROUTE_PROPS  an extra key for every route, as a YAML line ("io_threads: 2")
# Everything listens on 127.0.0.1 on ports the OS picks and is stopped on exit.
set -euo pipefail

BUILD_DIR=${1:?usage: bench/grpc.sh BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_SRC/lib.sh"

ROUNDS=${BENCH_ROUNDS:-3}
RECORDS=${BENCH_RECORDS:-100000}
H2C_RECORDS=${BENCH_H2C_RECORDS:-20000}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
CASES=${BENCH_CASES:-grpc-tls http1-tls grpc-h2c}
ROUTE_PROPS=${BENCH_ROUTE_PROPS:-}
BODY_BYTES=100
KEYS=1000
TOPIC=bench-grpc
PARTITIONS=64
FERRY=$BUILD_DIR/ferry
PRELOAD_BENCH=$BUILD_DIR/bench/ferry-bench-preload
WAIT_BENCH=$BUILD_DIR/bench/ferry-bench-wait

BROKER_BOOTSTRAP=""
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_WORK=$(mktemp -d /tmp/ferry-bench-grpc.XXXXXX)
RESULTS=$BENCH_WORK/results.txt
: >"$RESULTS"
trap 'bench_cleanup; rm -rf "$BENCH_WORK"' EXIT
trap 'exit 130' INT TERM

# receiver_start: the private nginx of step 2. Sets HTTP1_URL, GRPC_TLS_URL, GRPC_H2C_URL and
# CA_FILE.
receiver_start() {
  local dir=$BENCH_WORK/nginx p1 p2 p3 pid
  mkdir -p "$dir/tmp"
  chmod 755 "$BENCH_WORK" "$dir" "$dir/tmp"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$dir/key.pem" -out "$dir/cert.pem" \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
  printf '\0\0\0\0\0' >"$dir/grpc-ok.bin" # the frame of an empty message
  chmod 644 "$dir"/*.pem "$dir/grpc-ok.bin"
  p1=$(free_port) p2=$(free_port) p3=$(free_port)
  # A POST to a static file is a 405; error_page turns it into the file with a 200, and the
  # file's location adds gRPC's status.
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  http2_max_concurrent_streams 128;
  client_body_buffer_size 1m;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  ssl_certificate $dir/cert.pem;
  ssl_certificate_key $dir/key.pem;
  server {
    listen 127.0.0.1:$p1 ssl;
    location / { return 200 "ok"; }
  }
  server {
    listen 127.0.0.1:$p2 ssl http2;
    listen 127.0.0.1:$p3 http2;
    location / { error_page 405 =200 /grpc-ok.bin; return 405; }
    location = /grpc-ok.bin {
      internal;
      root $dir;
      default_type application/grpc;
      add_header grpc-status 0 always;
    }
  }
}
EOF
  /usr/sbin/nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null &
  pid=$!
  BENCH_PIDS+=("$pid")
  HTTP1_URL="https://127.0.0.1:$p1/ingest"
  GRPC_TLS_URL="https://127.0.0.1:$p2"
  GRPC_H2C_URL="http://127.0.0.1:$p3"
  CA_FILE=$dir/cert.pem
  if ! wait_until 10 curl -sf -o /dev/null --max-time 1 --cacert "$CA_FILE" -d x "$HTTP1_URL"; then
    echo "bench: nginx did not start; its log:" >&2
    cat "$dir/error.log" >&2 2>/dev/null || true
    return 1
  fi
}

bench_preload() {
  echo "== preload: $RECORDS x $BODY_BYTES B to $TOPIC ($PARTITIONS partitions)"
  echo "   $("$PRELOAD_BENCH" --bootstrap "$BROKER_BOOTSTRAP" --topic "$TOPIC" \
    --records "$RECORDS" --bytes "$BODY_BYTES" --keys "$KEYS")"
}

# target_yaml CASE: the route's target.
target_yaml() {
  case $1 in
  grpc-tls) echo "{grpc: {url: \"$GRPC_TLS_URL\", method: bench.Sink/Put}, tls: {ca_file: \"$CA_FILE\"}}" ;;
  grpc-h2c) echo "{grpc: {url: \"$GRPC_H2C_URL\", method: bench.Sink/Put}}" ;;
  http1-tls) echo "{url: \"$HTTP1_URL\", tls: {ca_file: \"$CA_FILE\"}}" ;;
  *) echo "bench: unknown case $1" >&2; return 1 ;;
  esac
}

# write_config CASE FILE PORT: one route reading $TOPIC from the start with a group of its own.
write_config() {
  cat >"$2" <<YAML
kafka:
  brokers: "$BROKER_BOOTSTRAP"
  properties: {fetch.wait.max.ms: 10, queued.min.messages: 1000000}
server: {listen: "127.0.0.1:$3"}
log: {level: warn}
routes:
  - name: bench
    topics: [$TOPIC]
    group: bench-$1-$RANDOM$RANDOM
    target: $(target_yaml "$1")
    concurrency: $CONCURRENCY
    ordering: none${ROUTE_PROPS:+
    $ROUTE_PROPS}
YAML
}

# run_case ROUND CASE: one route run; appends "case=C round=R records=N seconds=S rps=R
# cpu_s=C errors=E" to $RESULTS and prints it.
run_case() {
  local dir=$BENCH_WORK/$1-$2 port pid line n cpu rc=0
  mkdir -p "$dir"
  port=$(free_port)
  n=$RECORDS
  [ "$2" = grpc-h2c ] && n=$H2C_RECORDS
  write_config "$2" "$dir/ferry.yaml" "$port"
  "$FERRY" run -c "$dir/ferry.yaml" </dev/null >"$dir/ferry.out" 2>"$dir/ferry.err" &
  pid=$!
  BENCH_PIDS+=("$pid")
  line=$("$WAIT_BENCH" --url "http://127.0.0.1:$port/metrics" --records "$n" \
    --timeout "${BENCH_WAIT_TIMEOUT:-600}") || rc=$?
  cpu=$(seconds "$(cpu_ticks "$pid")")
  if [ "$rc" -ne 0 ]; then
    echo "bench: $2 did not deliver $n records; ferry's log and figures:" >&2
    tail -5 "$dir/ferry.err" >&2
    curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" |
      grep 'route="bench"' | grep -v _bucket >&2 || true
  fi
  stop_pid "$pid"
  forget_pid "$pid"
  [ "$rc" -eq 0 ] || return 1
  awk -v c="$2" -v r="$1" -v n="$n" -v l="$line" -v cpu="$cpu" 'BEGIN {
    split(l, w, /[ =]/)
    printf "case=%s round=%s records=%d seconds=%.2f rps=%.0f cpu_s=%.2f errors=%d\n",
      c, r, n, w[2], n / w[2], cpu, w[4] }' | tee -a "$RESULTS"
}

# print_table: medians per case, then the two comparisons.
print_table() {
  echo
  echo "== gRPC against HTTP/1.1 over TLS: concurrency $CONCURRENCY, one record per request"
  echo "   (load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg))"
  awk '
    function med(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      c = f["case"]; if (!(c in n)) order[++ncases] = c
      k = ++n[c]; rps[c, k] = f["rps"]; cpu[c, k] = f["cpu_s"]; recs[c] = f["records"]
      runs[c] = runs[c] sprintf(" %s/%.1fs", f["rps"], f["cpu_s"])
    }
    END {
      printf "   %-10s %10s %8s %14s   %s\n", "case", "records/s", "CPU s", "CPU ms/1k rec", "runs (records/s / CPU s)"
      for (i = 1; i <= ncases; i++) {
        c = order[i]
        for (k = 1; k <= n[c]; k++) { r[k] = rps[c, k]; u[k] = cpu[c, k] }
        mr[c] = med(r, n[c]); mu[c] = med(u, n[c]); per[c] = mu[c] * 1e6 / recs[c]
        printf "   %-10s %10.0f %8.2f %14.1f  %s\n", c, mr[c], mu[c], per[c], runs[c]
      }
      if (("grpc-tls" in mr) && ("http1-tls" in mr))
        printf "   grpc-tls / http1-tls: %.2fx the records/s, %.2fx the CPU per record\n",
          mr["grpc-tls"] / mr["http1-tls"], per["grpc-tls"] / per["http1-tls"]
      if (("grpc-h2c" in mr) && ("grpc-tls" in mr))
        printf "   grpc-h2c / grpc-tls:  %.2fx the records/s, %.2fx the CPU per record (a connection per call)\n",
          mr["grpc-h2c"] / mr["grpc-tls"], per["grpc-h2c"] / per["grpc-tls"]
    }' "$RESULTS"
}

main() {
  local round c
  if [ ! -x "$PRELOAD_BENCH" ] || [ ! -x "$WAIT_BENCH" ]; then
    echo "bench: build the bench programs first (make bench-grpc builds them)" >&2
    exit 1
  fi
  broker_start "$FERRY" "$BENCH_WORK" "$TOPIC:$PARTITIONS"
  receiver_start
  bench_preload
  for round in $(seq 1 "$ROUNDS"); do
    for c in $CASES; do
      run_case "$round" "$c"
    done
  done
  print_table
}

main
