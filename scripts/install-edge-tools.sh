#!/usr/bin/env bash
# Installs what the edge worker's build and tests need, and nothing that is already there:
# the wasm32 target, worker-build and wasm-bindgen-cli at the exact versions the crate pins,
# the npm tools (wrangler, Miniflare, binaryen's wasm-opt, playwright-core) and Chromium.
# Safe to run any number of times; a warm run takes about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
WORKER_BUILD_VERSION="0.8.7"
# Must equal the `wasm-bindgen` version in Cargo.lock (pinned in edge-worker/Cargo.toml).
WASM_BINDGEN_VERSION="0.2.129"

log() { printf '[install-edge-tools] %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

have_version() { # binary, expected version
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qw "$2"
}

if ! have_version "$CARGO_BIN/worker-build" "$WORKER_BUILD_VERSION"; then
  log "installing worker-build $WORKER_BUILD_VERSION (several minutes cold)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if ! have_version "$CARGO_BIN/wasm-bindgen" "$WASM_BINDGEN_VERSION"; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (several minutes cold)"
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --locked
fi

# Chromium for the browser test (playwright-core drives the system browser; nothing is
# downloaded by npm). Debian package, installed only when missing.
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  log "installing chromium (apt)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y --no-install-recommends chromium \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium; }
fi

# npm: install only when node_modules is missing or older than the lock file.
cd "$ROOT"
stamp="node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ] \
  || [ ! -x node_modules/binaryen/bin/wasm-opt ] || [ ! -x node_modules/.bin/esbuild ]; then
  if [ -f package-lock.json ]; then
    log "npm ci"
    npm ci --prefer-offline --no-audit --no-fund
  else
    log "npm install (no lock file yet)"
    npm install --prefer-offline --no-audit --no-fund
  fi
fi
log "edge tools ready"
