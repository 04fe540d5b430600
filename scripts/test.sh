#!/usr/bin/env bash
# Installs what vigil needs, builds it in a fresh directory, starts the
# servers the tests meet (on free loopback ports), runs every test suite,
# stops the servers, and ends with "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/js-deps.sh"
export BUILD_DIR=${BUILD_DIR:-$root/build-test}
FRESH=${FRESH:-1} bash "$root/scripts/build.sh"
exec /usr/bin/python3 "$root/tests/run_all.py" --build "$BUILD_DIR"
