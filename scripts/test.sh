#!/usr/bin/env bash
# Installs what vigil needs, builds it in a fresh directory, starts the
# servers the tests meet (on free loopback ports), runs every test suite,
# stops the servers, and ends with "N passed, N failed". The layer check
# (scripts/check-layers.sh) runs first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The layers first: a wrong include fails the run before anything is built.
bash "$root/scripts/check-layers.sh"
bash "$root/scripts/setup.sh"
bash "$root/scripts/js-deps.sh"
export BUILD_DIR=${BUILD_DIR:-$root/build-test}
FRESH=${FRESH:-1} bash "$root/scripts/build.sh"
# vigil once more with AddressSanitizer and UBSan (no jemalloc), for the HTTP
# fuzz test: only the vigil target, at -O1 (VIGIL_SKIP_ASAN=1 skips it).
if [ "${VIGIL_SKIP_ASAN:-0}" != 1 ]; then
  asan=${ASAN_BUILD_DIR:-$BUILD_DIR-asan}
  if [ "${FRESH:-1}" = 1 ]; then
    rm -rf "$asan"
  fi
  if [ ! -f "$asan/build.ninja" ]; then
    meson setup "$asan" "$root" --buildtype=plain -Db_sanitize=address,undefined \
      -Db_lundef=false \
      "-Dcpp_args=-O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  fi
  ninja -C "$asan" vigil
  export VIGIL_ASAN_BIN="$asan/vigil"
fi
# --no-skips: this run starts every server, so a skipped case is a failure.
exec /usr/bin/python3 "$root/tests/run_all.py" --build "$BUILD_DIR" --no-skips
