#!/usr/bin/env bash
# The test command: installs whatever is missing, then runs every test. Rust tests start their
# own redis-server (single and a 3-master cluster) on free loopback ports; the Miniflare tests
# run the built worker in workerd against a real coordinator and Redis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/install.sh"

echo "== rust tests (shared, coordinator, testkit, loadgen, cli, bench, ticket shop)"
cargo test --workspace --exclude edge-worker
echo "== edge worker unit tests (native)"
cargo test -p edge-worker --lib
echo "== shared builds for wasm32"
cargo build -q -p anteroom-shared --target wasm32-unknown-unknown

echo "== edge worker under Miniflare"
SKIP_COORDINATOR_BUILD=0 "$ROOT/scripts/test-edge.sh"

echo "== the run command: up, stopped by a plain kill, state kept across a restart"
"$ROOT/scripts/test-run.sh"

if [ -x "$ROOT/scripts/bench-smoke.sh" ]; then
  echo "== benchmark smoke run"
  "$ROOT/scripts/bench-smoke.sh"
fi
