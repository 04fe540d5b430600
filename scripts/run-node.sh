#!/usr/bin/env bash
# Quick start: installs what vigil needs, builds it, and runs `vigil run node`
# on the embedded defaults (in-process broker; no Redis, RabbitMQ or
# PostgreSQL). Extra arguments go to `vigil run node`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh" node
# Only the binary: the test executables and the sanitizer build are
# scripts/test.sh's.
bash "$root/scripts/build.sh" vigil
exec "${BUILD_DIR:-$root/build}/vigil" run node "$@"
