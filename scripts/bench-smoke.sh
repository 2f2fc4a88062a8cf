#!/usr/bin/env bash
# Smoke run of the benchmark harness for CI (seconds, tiny sizes): every scenario runs against
# a real redis-server and the coordinator, the edge one with the built worker in workerd
# (Miniflare); the numbers must be sane (rates above zero, no failed requests, every position
# answered once, surge invariants held, staleness samples plausible) and the report must
# render. Exits non-zero on any failure. Writes only to a temporary folder.
# The worker is built (scripts/build-worker.sh) only when edge-worker/build is missing;
# scripts/test.sh builds it before this runs.
#
# BENCH_PROFILE=release reuses release builds (default: the debug build the tests use).
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${BENCH_PROFILE:-debug}"
if [ "$profile" = release ]; then
  cargo build --release -p coordinator -p bench
else
  cargo build -p coordinator -p bench
fi
bin="target/$profile"
if [ ! -f edge-worker/build/index.js ]; then
  scripts/build-worker.sh
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true

start=$(date +%s)
"$bin/bench" run all --smoke --out "$tmp/results.json" --coordinator "$bin/coordinator"
printf '# smoke\n' >"$tmp/BENCHMARKS.md"
"$bin/bench" report --results "$tmp/results.json" --markdown "$tmp/BENCHMARKS.md" --svg-dir "$tmp/docs"
grep -q 'Summary against the targets' "$tmp/BENCHMARKS.md"
grep -q 'At the edge (the worker in workerd)' "$tmp/BENCHMARKS.md"
for f in bench-storm.svg bench-storm-p99.svg bench-status.svg bench-memory.svg bench-edge.svg; do
  grep -q '<svg' "$tmp/docs/$f" || { echo "bench-smoke: $f not written" >&2; exit 1; }
done
echo "bench-smoke: ok in $(( $(date +%s) - start )) s"
