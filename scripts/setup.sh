#!/usr/bin/env bash
# Installs the Debian packages vigil needs to build, run and test. Idempotent:
# when every package is already installed it changes nothing.
# `setup.sh node` installs only what building and running a node needs (the
# quick start); without an argument, the test servers and clients as well.
set -euo pipefail

packages=(
  # build
  meson ninja-build g++ pkg-config ccache
  libcaf-dev libhiredis-dev libmsgpack-cxx-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libsimdjson-dev catch2
  libjemalloc-dev libssl-dev
  librabbitmq-dev
  # HTTP ingestion (Boost.Beast), the nodestore (SQLite, PostgreSQL), zlib
  libboost-dev libsqlite3-dev libpq-dev zlib1g-dev
  # fast whole-buffer zlib-format compression of nodestore values (ISA-L)
  libisal-dev
  # the filestore's S3 client and the mailer (libcurl), the chart renderer
  libcurl4-openssl-dev libcairo2-dev libpango1.0-dev fonts-dejavu-core
  # S3's XML answers
  libexpat1-dev
)
if [ "${1:-}" != node ]; then
packages+=(
  # servers and peers the tests and benchmarks meet
  redis-server redis-tools
  # `vigil inspect`'s live view is driven in tmux (tests/interop/test_inspect.py)
  tmux
  python3-celery python3-kombu python3-msgpack python3-redis
  # the amqp:// broker (tests start a private rabbitmq-server on a free port)
  rabbitmq-server python3-amqp
  # servers and peers of the ingestion tests and benchmark
  postgresql python3-sentry-sdk nginx-light wrk
  # the JavaScript clients (tests/js, installed by scripts/js-deps.sh) run
  # on node; the browser SDK runs in a headless chromium
  nodejs chromium
  # the filestore's S3 interop peer (the S3 server itself is npm's s3rver)
  python3-boto3
  # the mail tests' SMTP server (and openssl for its test certificate)
  python3-aiosmtpd openssl
)
# Debian's npm, unless a node build that brings its own npm (NodeSource's
# nodejs provides and conflicts with the npm package) is already there.
command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
