#!/usr/bin/env bash
# Installs the JavaScript clients of the interop tests (tests/js: the
# browser and Node Sentry SDKs, sentry-cli, playwright-core, esbuild) with
# `npm ci`, exactly as package-lock.json pins them. Idempotent: skipped when
# node_modules was installed from the same lock file.
set -euo pipefail
dir=$(cd "$(dirname "$0")/../tests/js" && pwd)
if ! command -v npm >/dev/null; then
  echo "js-deps: npm is not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
stamp="$dir/node_modules/.vigil-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "js-deps: tests/js/node_modules matches package-lock.json"
  exit 0
fi
echo "js-deps: npm ci in tests/js"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
