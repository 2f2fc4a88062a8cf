#!/usr/bin/env bash
# Builds the edge worker (Rust -> Wasm) into edge-worker/build/ and prints its gzipped size.
# Needs the tools from scripts/install-edge-tools.sh; nothing here downloads anything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$CARGO_BIN/wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$ROOT/node_modules/binaryen/bin/wasm-opt}"
export ESBUILD_BIN="${ESBUILD_BIN:-$ROOT/node_modules/.bin/esbuild}"
for tool in "$CARGO_BIN/worker-build" "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  if [ ! -x "$tool" ]; then
    echo "build-worker: missing $tool; run scripts/install-edge-tools.sh" >&2
    exit 1
  fi
done

cd "$ROOT/edge-worker"
# The `worker` profile (root Cargo.toml) has the size settings; the coordinator never sees them.
# Unminified, so that the entry can be replaced below; esbuild minifies it afterwards.
NO_MINIFY=1 "$CARGO_BIN/worker-build" --profile worker

# worker-build's entry is a WorkerEntrypoint class wrapped in Proxies: for every request workerd
# constructs the class, a Proxy of the instance and a Proxy of `fetch`. That costs about as much
# workerd CPU as the whole status poll's Rust code (BENCHMARKS.md, "At the edge"). The worker
# has only a fetch handler and no RPC, so a plain module handler object does the same job with
# the same re-initialisation after a Wasm trap.
node "$ROOT/scripts/worker-entry.mjs" "$ROOT/edge-worker/build/index.js"
"$ESBUILD_BIN" "$ROOT/edge-worker/build/index.js" --minify --format=esm \
  --outfile="$ROOT/edge-worker/build/index.js" --allow-overwrite --log-level=warning

wasm="$ROOT/edge-worker/build/index_bg.wasm"
# worker-build keeps the names section (it passes --debuginfo to wasm-opt): about 25 KB
# gzipped that only makes workerd stack traces readable. Errors are logged with our own
# messages, so strip it unless KEEP_WASM_NAMES=1. Same feature set as worker-build's.
if [ "${KEEP_WASM_NAMES:-}" != "1" ]; then
  features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
  "$WASM_OPT_BIN" "$wasm" "${features[@]/#/--enable-}" --strip-debug --strip-producers -o "$wasm.stripped"
  mv "$wasm.stripped" "$wasm"
fi
js="$ROOT/edge-worker/build/index.js"
raw=$(stat -c %s "$wasm")
gz=$(cat "$wasm" "$js" | gzip -9 | wc -c)
echo "edge worker built: wasm ${raw} bytes, wasm+js gzipped ${gz} bytes ($((gz / 1024)) KiB)"
