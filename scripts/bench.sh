#!/usr/bin/env bash
# The full benchmark run: builds release, runs every scenario against a real
# redis-server and the coordinator binary on loopback, then rewrites the generated part of
# BENCHMARKS.md and the plots under docs/. Takes about 15 minutes; bounded, stops by itself.
#
#   scripts/bench.sh                 # everything
#   scripts/bench.sh storm           # one scenario (storm|status|memory|surge|edge), merged
#                                    # into the last results (target/bench/results.json, else
#                                    # the committed docs/bench-results.json)
# The edge scenario (also part of the full run) builds the worker (scripts/build-worker.sh) and
# serves it in workerd through Miniflare, so it needs the tools of scripts/install.sh.
# Extra flags go to `bench run` after the scenario, e.g. `scripts/bench.sh all --secs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario="${1:-all}"
shift || true
results="target/bench/results.json"

command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing: apt-get install -y redis-tools" >&2; exit 1; }

cargo build --release -p coordinator -p bench
if [ "$scenario" = all ] || [ "$scenario" = edge ]; then
  command -v node >/dev/null || { echo "node missing: the edge scenario runs the worker in workerd via Miniflare" >&2; exit 1; }
  scripts/build-worker.sh
fi
# A single scenario merges into the last results; in a fresh tree start from the committed
# ones, so the other rows keep their numbers.
if [ "$scenario" != all ] && [ ! -f "$results" ] && [ -f docs/bench-results.json ]; then
  mkdir -p "$(dirname "$results")"
  cp docs/bench-results.json "$results"
fi
ulimit -n 65536 2>/dev/null || true
target/release/bench run "$scenario" --out "$results" --coordinator target/release/coordinator "$@"
target/release/bench report --results "$results" --markdown BENCHMARKS.md --svg-dir docs
cp "$results" docs/bench-results.json
# Plans are priced with these figures (built into the binary): re-plan the committed scenarios,
# or their test (cli/tests/invariants.rs) finds them out of date.
cargo build --release -p anteroom-cli
for profile in examples/plans/*.toml; do
  target/release/anteroom plan "$profile" --out docs/plans >/dev/null
done
echo "wrote BENCHMARKS.md, docs/bench-*.svg, docs/bench-results.json (raw numbers) and docs/plans/"
echo "(re-priced plans: check the numbers in README.md and docs/plans/README.md against docs/plans/*.json)"
