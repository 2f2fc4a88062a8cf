#!/usr/bin/env bash
# Tests the run command the way a newcomer uses it: `scripts/run.sh` on free ports and a scratch
# state directory comes up (the demo queue answers at the edge), a plain `kill` of it stops
# every process it started (nothing listens on its ports any more: wrangler's workerd
# included), and a second run finds the demo queue again, kept by Redis's append-only file.
# What it prints for the operator (the console's URL, the CLI with the key file) works.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export ANTEROOM_DEV_DIR
ANTEROOM_DEV_DIR="$(mktemp -d)"
log() { printf '[test-run] %s\n' "$*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export REDIS_PORT PUBLIC_PORT ADMIN_PORT ORIGIN_PORT EDGE_PORT
REDIS_PORT=$(free_port) PUBLIC_PORT=$(free_port) ADMIN_PORT=$(free_port) ORIGIN_PORT=$(free_port) EDGE_PORT=$(free_port)
ports=("$REDIS_PORT" "$PUBLIC_PORT" "$ADMIN_PORT" "$ORIGIN_PORT" "$EDGE_PORT")

listening() { # any of the ports still accepting connections?
  for p in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

run_once() { # label
  local out="$ANTEROOM_DEV_DIR/run-$1.out" pid
  scripts/run.sh >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 1 900); do
    grep -q "Anteroom is running" "$out" && break
    if ! kill -0 "$pid" 2>/dev/null; then
      log "run.sh exited early:"; tail -40 "$out"; exit 1
    fi
    sleep 0.2
  done
  grep -q "Anteroom is running" "$out" || { log "run.sh did not come up"; tail -40 "$out"; exit 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$EDGE_PORT/anteroom/serving_pos/demo")
  [ "$code" = 200 ] || { log "demo queue not served at the edge: $code"; exit 1; }
  # What it prints for the operator works: the console answers, the CLI lists the demo queue
  # with the key file and the URL it names.
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/console")
  [ "$code" = 200 ] || { log "the console did not answer: $code"; exit 1; }
  grep -q "open http://127.0.0.1:$ADMIN_PORT/console" "$out" || { log "no console URL printed"; exit 1; }
  listed=$( (set -a; . "$ANTEROOM_DEV_DIR/keys.env"; set +a
    ANTEROOM_ADMIN_URL="http://127.0.0.1:$ADMIN_PORT" "$ROOT/target/debug/anteroom" queue list) )
  grep -q "^demo .*The Night Orchestra$" <<<"$listed" || { log "anteroom queue list: $listed"; exit 1; }
  # A plain kill (SIGTERM), not Ctrl-C.
  kill "$pid"
  wait "$pid" || true
  for _ in $(seq 1 100); do
    listening >/dev/null || break
    sleep 0.1
  done
  if p=$(listening); then
    log "port $p still has a listener after run.sh was killed"; ss -ltnp | grep ":$p " || true; exit 1
  fi
  log "run $1: up, served the demo queue, and a plain kill left nothing listening"
}

run_once first
run_once second
grep -q "demo queue exists already" "$ANTEROOM_DEV_DIR/run-second.out" \
  || { log "the demo queue did not survive the Redis restart"; exit 1; }
log "the second run found the demo queue in Redis's append-only file"
rm -rf "$ANTEROOM_DEV_DIR"
