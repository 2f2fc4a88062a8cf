#!/usr/bin/env bash
# The deploy check: builds the bundle exactly as `wrangler deploy` would (its build command,
# its bundling of build/index.js and the Wasm module) with `--dry-run --outdir`, uploads
# nothing, and fails if the compressed upload passes LIMIT_BYTES (default 1 MiB; Cloudflare's
# limit is 3 MiB on the free plan, 10 MiB on paid ones). Offline: needs only node_modules.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false
limit="${LIMIT_BYTES:-1048576}"
out="$ROOT/target/deploy-check"
rm -rf "$out"
"$ROOT/node_modules/.bin/wrangler" deploy --dry-run --outdir "$out" >"$out.log" 2>&1 || {
  cat "$out.log" >&2
  echo "check-deploy: wrangler deploy --dry-run failed" >&2
  exit 1
}
# What is uploaded: the bundled module and the Wasm (not the source map or wrangler's README).
files=("$out"/index.js "$out"/*.wasm)
raw=$(cat "${files[@]}" | wc -c)
gz=$(cat "${files[@]}" | gzip -9 | wc -c)
echo "check-deploy: bundle ${raw} bytes, ${gz} bytes gzipped (limit ${limit}); wrangler: $(grep -o 'Total Upload: .*' "$out.log")"
if [ "$gz" -gt "$limit" ]; then
  echo "check-deploy: the compressed bundle passes the limit" >&2
  exit 1
fi
