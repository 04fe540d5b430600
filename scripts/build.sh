#!/usr/bin/env bash
# Configures (if needed) and builds vigil in BUILD_DIR (default: build).
# Arguments name the ninja targets to build (default: all of them, tests
# included); the quick start builds only `vigil`.
# With FRESH=1 the directory is wiped first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
if [ "${FRESH:-0}" = 1 ]; then
  rm -rf "$build"
fi
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$root" --buildtype=release
fi
ninja -C "$build" "$@"
