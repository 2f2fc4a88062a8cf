#!/usr/bin/env bash
# Installs whatever is missing to build, run and test Anteroom on a fresh Debian machine with
# Rust (rustup) and Node: redis-server and redis-tools from apt, clippy and rustfmt, then the
# edge tools (wasm target, worker-build, wasm-bindgen-cli, npm packages). Idempotent: a warm
# run installs nothing and takes a few seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[install] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null || missing+=(redis-tools)
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

installed_components="$(rustup component list --installed 2>/dev/null || true)"
for c in clippy rustfmt; do
  if ! grep -q "^$c" <<<"$installed_components"; then
    log "rustup component add $c"
    rustup component add "$c"
  fi
done

"$ROOT/scripts/install-edge-tools.sh"
log "ready"
