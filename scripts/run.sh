#!/usr/bin/env bash
# The run command: installs whatever is missing, then starts the whole system locally —
# Redis, the coordinator, the demo ticket shop (examples/ticket-shop) as the protected
# origin and the edge worker under `wrangler dev` —
# creates a demo queue and prints the URL to open. Ctrl-C, or a plain `kill` of this script,
# stops everything (each child runs in its own process group, stopped as a group, so wrangler's
# workerd goes too). Re-running it first stops what an earlier run left behind. State (keys,
# logs, Redis's append-only file) lives in .dev/ (or $ANTEROOM_DEV_DIR): Redis runs with AOF
# `everysec`, so the demo queue and every place survive a restart, losing at most about a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false CLOUDFLARE_CF_FETCH_ENABLED=false

REDIS_PORT="${REDIS_PORT:-6390}"
PUBLIC_PORT="${PUBLIC_PORT:-8080}"
ADMIN_PORT="${ADMIN_PORT:-8081}"
ORIGIN_PORT="${ORIGIN_PORT:-8000}"
EDGE_PORT="${EDGE_PORT:-8787}"
DEV="${ANTEROOM_DEV_DIR:-$ROOT/.dev}"
mkdir -p "$DEV"
log() { printf '[run] %s\n' "$*"; }

"$ROOT/scripts/install.sh"

# Stop what a previous run left behind (each pid file names a process group leader; Redis's
# is a lone daemon).
for pidfile in "$DEV"/*.pid; do
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  rm -f "$pidfile"
done

hex32() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
if [ ! -f "$DEV/keys.env" ]; then
  umask 077
  cat >"$DEV/keys.env" <<KEYS
ANTEROOM_ADMIN_KEY=$(hex32)
ANTEROOM_ORIGIN_KEY=$(hex32)
ANTEROOM_EDGE_KEY=$(hex32)
ANTEROOM_TICKET_KEYS=1:$(hex32)
ANTEROOM_SIGNING_KEY=$(hex32)
KEYS
fi
set -a
# shellcheck disable=SC1091
. "$DEV/keys.env"
set +a

log "redis on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
  --daemonize yes --pidfile "$DEV/redis.pid" --logfile "$DEV/redis.log" --dir "$DEV"

log "building the coordinator and the worker"
cargo build -q -p coordinator -p ticket-shop -p anteroom-cli
"$ROOT/scripts/build-worker.sh" >/dev/null

pids=()
# Each child is started by `setsid` as the leader of its own process group; stopping the group
# stops what it started too (`npx` starts wrangler, wrangler starts workerd).
stop_all() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  [ -f "$DEV/redis.pid" ] && kill "$(cat "$DEV/redis.pid")" 2>/dev/null || true
  rm -f "$DEV"/*.pid
  exit 0
}
trap stop_all EXIT INT TERM

log "coordinator: public 127.0.0.1:$PUBLIC_PORT, private 127.0.0.1:$ADMIN_PORT"
ANTEROOM_LISTEN="127.0.0.1:$PUBLIC_PORT" ANTEROOM_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT" \
  ANTEROOM_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" \
  ANTEROOM_EDGE_SYNC_URL="http://127.0.0.1:$EDGE_PORT/anteroom/__anteroom/sync" \
  setsid "$ROOT/target/debug/coordinator" >"$DEV/coordinator.log" 2>&1 &
pids+=($!); echo $! >"$DEV/coordinator.pid"

log "edge worker under wrangler dev on 127.0.0.1:$EDGE_PORT"
cat >"$ROOT/.dev.vars" <<VARS
EDGE_KEY=$ANTEROOM_EDGE_KEY
TICKET_KEYS=$ANTEROOM_TICKET_KEYS
VARS
setsid npx wrangler dev --local --ip 127.0.0.1 --port "$EDGE_PORT" \
  --var "COORDINATOR_URL:http://127.0.0.1:$PUBLIC_PORT" --var "ORIGIN_URL:http://127.0.0.1:$ORIGIN_PORT" \
  --persist-to "$DEV/wrangler" >"$DEV/wrangler.log" 2>&1 &
pids+=($!); echo $! >"$DEV/wrangler.pid"

wait_http() { # url, what
  for _ in $(seq 1 300); do
    if curl -fs -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  log "$2 did not come up; see $DEV/*.log"
  exit 1
}
wait_http "http://127.0.0.1:$ADMIN_PORT/healthz" "coordinator"

log "ticket shop (the demo origin) on 127.0.0.1:$ORIGIN_PORT"
SHOP_LISTEN="127.0.0.1:$ORIGIN_PORT" SHOP_QUEUE_ID=demo SHOP_ORIGIN_KEY="$ANTEROOM_ORIGIN_KEY" \
  SHOP_COORDINATOR_PUBLIC="http://127.0.0.1:$PUBLIC_PORT" SHOP_COORDINATOR_ADMIN="http://127.0.0.1:$ADMIN_PORT" \
  SHOP_REPORT_HEALTH=1 SHOP_JOIN_URL="http://127.0.0.1:$EDGE_PORT/" \
  setsid "$ROOT/target/debug/ticket-shop" >"$DEV/origin.log" 2>&1 &
pids+=($!); echo $! >"$DEV/origin.pid"

# A demo queue protecting the whole shop: at most 3 shoppers at once, admitted as sessions
# end (the shop completes or abandons them), places expire after 10 minutes unclaimed; the
# waiting page says what it is for.
curl -fs -o /dev/null -H "Authorization: Bearer $ANTEROOM_ADMIN_KEY" \
  -H 'content-type: application/json' "http://127.0.0.1:$ADMIN_PORT/api/queue" \
  -d '{"queue_id":"demo","paths":["/"],"bypass":["/healthz"],"pow_difficulty":12,"forward_token":true,"enable_queue_position_expiry":true,"position_expiry_second":600,"admission":{"policy":{"strategy":"capacity","max_active":3}},"display_name":"The Night Orchestra","logo_text":"Riverside Tickets"}' \
  || log "demo queue exists already"

wait_http "http://127.0.0.1:$ORIGIN_PORT/healthz" "ticket shop"
wait_http "http://127.0.0.1:$EDGE_PORT/anteroom/serving_pos/demo" "edge worker"
cat <<MSG

  Anteroom is running.
    open:         http://127.0.0.1:$EDGE_PORT/
    coordinator:  http://127.0.0.1:$PUBLIC_PORT (public), http://127.0.0.1:$ADMIN_PORT (private)
    admin key:    in $DEV/keys.env (ANTEROOM_ADMIN_KEY)
    logs:         $DEV/*.log

  The operator console: open http://127.0.0.1:$ADMIN_PORT/console and sign in with the
  admin key (ANTEROOM_ADMIN_KEY in $DEV/keys.env).

  The command line, in another terminal:
    set -a; . $DEV/keys.env; set +a; export ANTEROOM_ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
    $ROOT/target/debug/anteroom queue list
    $ROOT/target/debug/anteroom watch demo
    $ROOT/target/debug/anteroom message demo --en 'Doors open at 8' --zh '八点开门'
    $ROOT/target/debug/anteroom --help          # every command, exit codes
  Ctrl-C stops everything.

MSG
wait
