#!/usr/bin/env bash
# Installs every Debian 12 package that ferry's build, tests and benchmarks need.
# Idempotent: when everything is present it prints nothing and exits 0.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
  librdkafka-dev libcurl4-openssl-dev libnghttp2-dev libmicrohttpd-dev libgnutls28-dev
  liblmdb-dev libyaml-dev libjansson-dev libcmocka-dev json-schema-test-suite
  python3 python3-pytest python3-confluent-kafka python3-aiohttp python3-aiosmtpd
  kcat curl nginx-light wrk time
  libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler python3-grpcio python3-protobuf
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx is only a benchmark receiver; never leave the system service running.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true; fi
$SUDO service nginx stop >/dev/null 2>&1 || true
