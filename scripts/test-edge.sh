#!/usr/bin/env bash
# Builds the edge worker and runs the Miniflare tests (node --test). The end-to-end, browser
# and journey files start their own coordinator (target/debug/coordinator) and redis-server on
# free loopback ports; the journey file also the demo origin (target/debug/ticket-shop), and the
# multi-PoP file loads both PoPs with the bench's load generator (target/debug/bench load). The
# three binaries are built here when missing or stale. Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false

"$ROOT/scripts/install-edge-tools.sh"
"$ROOT/scripts/build-worker.sh"
if [ "${SKIP_COORDINATOR_BUILD:-}" != "1" ]; then
  cargo build -p coordinator -p ticket-shop -p bench
fi

files=(miniflare-tests/*.test.mjs)
# One file at a time: the machine is small and each file starts workerd (and the e2e file a
# coordinator and Redis, the journey file also the shop and ten browser contexts).
node --test --test-concurrency=1 "${files[@]}"
