//! Redis store: every multi-step change is one Lua script over one queue's keys.
//!
//! Key layout (hash tags keep each queue in one Redis Cluster slot):
//!
//! | key | type | what |
//! |---|---|---|
//! | `anteroom:{registry}:ids` | set | every queue id handed out (ids are random, never reused) |
//! | `anteroom:{registry}:queues` | hash | id → queue config JSON |
//! | `anteroom:{registry}:slugs` | hash | slug → id |
//! | `anteroom:{registry}:tombs` | hash | id → tombstone JSON of a deleted queue (kept a day) |
//! | `anteroom:{registry}:secrets` | string | key ring JSON (signing seeds, ticket keys) |
//! | `anteroom:{registry}:adminkeys` | hash | admin key name → JSON: the key's SHA-256 (never the key), who added it, when |
//! | `anteroom:{registry}:webhooks` | hash | endpoint id → JSON: URL, signing secret, event and queue filters |
//! | `anteroom:{registry}:consolesessions` | hash | SHA-256 of a console session id (never the id) → JSON: the key's name and SHA-256, expiry; expired ones removed at each sign-in |
//! | `anteroom:{registry}:audit` | stream | audit entries (field `e`: JSON), trimmed to about the newest `--audit-keep` |
//! | `aq:{q<id>}:ctr` | string | last position handed out |
//! | `aq:{q<id>}:srv` | string | serving position |
//! | `aq:{q<id>}:claimed` | bitmap | bit p = a token was issued for position p (1 bit per visitor) |
//! | `aq:{q<id>}:nclaimed` | string | number of bits set in `claimed` |
//! | `aq:{q<id>}:sess` | sorted set | live sessions: member position, score expiry |
//! | `aq:{q<id>}:sinfo` | hash | position → issue time of its live session |
//! | `aq:{q<id>}:rev` | sorted set | ended sessions: member jti, score expiry plus the token leeway |
//! | `aq:{q<id>}:hist` | sorted set | serving history: member `serving:time`, score serving |
//! | `aq:{q<id>}:arr` | sorted set | arrivals: member `second:last position`, score second |
//! | `aq:{q<id>}:pow:<minute>` | set | 8-byte fingerprints of proof-of-work nonces expiring in that minute |
//! | `aq:{q<id>}:ver` | string | last published state version |
//! | `aq:{q<id>}:ctltick` | string | last controller tick applied (fencing) |
//! | `aq:{q<id>}:pq` | string | pre-queue arrivals so far |
//! | `aq:{q<id>}:drawn` | string | `base:count` once the pre-queue is drawn |
//! | `aq:{q<id>}:pause` | string | JSON `[[from, to], ...]`: seconds the expiry clock stood still (≤ 64 merged intervals) |
//! | `aq:{q<id>}:meta:<name>` | string | controller state (`ctl`), last health reading (`health`), the draw's seed (`seed`), when the queue was last published to the edge (`published`, unix ms) |
//! | `aq:{q<id>}:lease:<name>` | string | owner of a lease (publisher, controller), with a TTL |
//! | `aq:{q<id>}:stats` | hash | sessions ended: `completed`, `abandoned`, `expired` |
//! | `aq:{q<id>}:waits` | hash | `s<b>` / `c<b>` → claims whose wait to being served / to claiming is in bucket b (≤ 256 fields) |
//! | `aq:{q<id>}:mins` | sorted set | minute samples for the report: member `minute,assigned,...` (CSV), score the minute; the newest `--report-minutes` |

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};
use shared::wire::QueueConfig;

use super::{
    Assigned, AuditFrom, Claim, ClaimWaits, Counters, Created, Ended, Floor, MinuteSample,
    Observer, Outcome, PlaceFacts, PreQueued, QueueStats, Raised, RecordKind, ReplayKey, Session,
    Store, StoreError, StoreResult, StoredSecrets, Tombstone, WAIT_BUCKETS, WaitCounts,
    WaitingFacts,
};

/// An ended session stays revoked this long past its token's `exp`: verifiers accept a token
/// for `shared::token::LEEWAY_SECS` after it.
const REVOKED_BEYOND_EXP: i64 = shared::token::LEEWAY_SECS;
const REG_IDS: &str = "anteroom:{registry}:ids";
const REG_TOMBS: &str = "anteroom:{registry}:tombs";
const REG_QUEUES: &str = "anteroom:{registry}:queues";
const REG_SLUGS: &str = "anteroom:{registry}:slugs";
const REG_SECRETS: &str = "anteroom:{registry}:secrets";
const REG_AUDIT: &str = "anteroom:{registry}:audit";

fn record_key(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::AdminKey => "anteroom:{registry}:adminkeys",
        RecordKind::Webhook => "anteroom:{registry}:webhooks",
        RecordKind::ConsoleSession => "anteroom:{registry}:consolesessions",
    }
}

/// Names of one queue's keys, all in the queue's hash slot.
fn qk(id: u32, what: &str) -> String {
    format!("aq:{{q{id}}}:{what}")
}

/// All per-queue key suffixes, for deletion (replay sets `pow:<minute>` expire by themselves).
const QUEUE_KEYS: [&str; 23] = [
    "ctr",
    "srv",
    "claimed",
    "nclaimed",
    "sess",
    "sinfo",
    "rev",
    "hist",
    "arr",
    "ver",
    "ctltick",
    "pq",
    "drawn",
    "meta:ctl",
    "meta:health",
    "meta:seed",
    "meta:published",
    "lease:publish",
    "lease:control",
    "pause",
    "stats",
    "waits",
    "mins",
];

/// Shared Lua helpers, prepended to scripts that read the time series.
const LUA_LIB: &str = r#"
local function tail_num(m) return tonumber(string.match(m, ':(%d+)$')) end
local function head_num(m) return tonumber(string.match(m, '^(%d+):')) end
-- number of entries in the serving history (ordered by serving, times ascending too)
-- whose time is <= t
local function hist_count_upto(k, t)
  local lo, hi = 0, redis.call('ZCARD', k)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local m = redis.call('ZRANGE', k, mid, mid)[1]
    if tail_num(m) <= t then lo = mid + 1 else hi = mid end
  end
  return lo
end
-- {ctr, srv, nclaimed, expired_upto, claimed_upto} from ctr, srv, nclaimed, hist, arr, claimed
local function waiting_facts(k, t0)
  local ctr = tonumber(redis.call('GET', k[1]) or '0')
  local srv = tonumber(redis.call('GET', k[2]) or '0')
  local nclaimed = tonumber(redis.call('GET', k[3]) or '0')
  local e = 0
  if t0 > 0 then
    local n = hist_count_upto(k[4], t0)
    local serving_at = 0
    if n > 0 then serving_at = head_num(redis.call('ZRANGE', k[4], n - 1, n - 1)[1]) end
    local a = redis.call('ZREVRANGEBYSCORE', k[5], t0, '-inf', 'LIMIT', 0, 1)
    local assigned_at = 0
    if #a > 0 then assigned_at = tail_num(a[1]) end
    e = math.min(serving_at, assigned_at)
  end
  local cu = 0
  if e > 0 then cu = redis.call('BITCOUNT', k[6], 0, e, 'BIT') end
  return {ctr, srv, nclaimed, e, cu}
end
-- keep the newest entry older than cutoff and everything newer
local function compact_hist(k, cutoff)
  local old = hist_count_upto(k, cutoff - 1)
  if old > 1 then redis.call('ZREMRANGEBYRANK', k, 0, old - 2) end
end
"#;

// KEYS: ctr, arr, then one replay set per expiry minute in the batch.
// ARGV: n, now, cutoff, then n pairs (replay key index or 0, fingerprint), then one EXPIREAT
// time per replay set, then the floor and its gap.
// Returns {last, counter found below the floor or -1, refused indexes...}.
const ASSIGN: &str = r#"
local n = tonumber(ARGV[1])
local floor, gap = tonumber(ARGV[#ARGV - 1]), tonumber(ARGV[#ARGV])
local found = tonumber(redis.call('GET', KEYS[1]) or '0')
local raised = -1
if found < floor then
  redis.call('INCRBY', KEYS[1], floor + gap - found)
  raised = found
end
local refused = {}
local accepted = 0
for i = 1, n do
  local ki = tonumber(ARGV[2 + 2 * i])
  if ki > 0 and redis.call('SADD', KEYS[ki], ARGV[3 + 2 * i]) == 0 then
    table.insert(refused, i - 1)
  else
    accepted = accepted + 1
  end
end
for j = 3, #KEYS do
  redis.call('EXPIREAT', KEYS[j], ARGV[3 + 2 * n + j - 2])
end
if accepted == 0 then
  local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
  table.insert(refused, 1, raised)
  table.insert(refused, 1, cur)
  return refused
end
local last = redis.call('INCRBY', KEYS[1], accepted)
local now = ARGV[2]
redis.call('ZREMRANGEBYSCORE', KEYS[2], now, now)
redis.call('ZADD', KEYS[2], now, now .. ':' .. last)
local old = redis.call('ZCOUNT', KEYS[2], '-inf', '(' .. ARGV[3])
if old > 1 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, old - 2) end
table.insert(refused, 1, raised)
table.insert(refused, 1, last)
return refused
"#;

// KEYS: ctr, srv. ARGV: assigned floor, gap, serving floor.
// Returns {ctr found, srv found, ctr now, srv now}.
const RAISE: &str = r#"
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local s = tonumber(redis.call('GET', KEYS[2]) or '0')
local c2, s2 = c, s
if c < tonumber(ARGV[1]) then c2 = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]) - c) end
if s < tonumber(ARGV[3]) then s2 = redis.call('INCRBY', KEYS[2], tonumber(ARGV[3]) - s) end
return {c, s, c2, s2}
"#;

// KEYS: pause. ARGV: from, to, intervals kept. The same merge as `shared::place::add_pause`.
const ADD_PAUSE: &str = r#"
local list = cjson.decode(redis.call('GET', KEYS[1]) or '[]')
table.insert(list, {tonumber(ARGV[1]), tonumber(ARGV[2])})
table.sort(list, function(x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end)
local out = {}
for _, p in ipairs(list) do
  local last = out[#out]
  if last and p[1] <= last[2] then last[2] = math.max(last[2], p[2]) else table.insert(out, {p[1], p[2]}) end
end
while #out > tonumber(ARGV[3]) do table.remove(out, 1) end
redis.call('SET', KEYS[1], cjson.encode(out))
return #out
"#;

// KEYS: ver. ARGV: now_ms. The next version: one more than the last, at least now_ms.
const NEXT_VERSION: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = math.max(cur + 1, tonumber(ARGV[1]))
return redis.call('INCRBY', KEYS[1], want - cur)
"#;

// KEYS: ctltick, ctl, srv, hist. ARGV: tick, by, ctl json, now, cutoff.
const APPLY_TICK: &str = r#"
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if last >= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
local s = redis.call('INCRBY', KEYS[3], ARGV[2])
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[4], s, s .. ':' .. ARGV[4])
  compact_hist(KEYS[4], tonumber(ARGV[5]))
end
return s
"#;

// KEYS: pq, drawn[, replay set]. ARGV: fingerprint, EXPIREAT of the replay set.
const PQ_ASSIGN: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if #KEYS > 2 then
  if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return -2 end
  redis.call('EXPIREAT', KEYS[3], ARGV[2])
end
return redis.call('INCRBY', KEYS[1], 1)
"#;

// KEYS: pq, drawn, ctr
const DRAW: &str = r#"
local d = redis.call('GET', KEYS[2])
if d then return d end
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local base = tonumber(redis.call('GET', KEYS[3]) or '0')
d = base .. ':' .. n
redis.call('SET', KEYS[2], d)
redis.call('INCRBY', KEYS[3], n)
return d
"#;

const LEASE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

const INCR_SERVING: &str = r#"
local s = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[1]) > 0 then
  redis.call('ZADD', KEYS[2], s, s .. ':' .. ARGV[2])
  compact_hist(KEYS[2], tonumber(ARGV[3]))
end
return s
"#;

const PLACE: &str = r#"
local ctr = tonumber(redis.call('GET', KEYS[1]) or '0')
local srv = tonumber(redis.call('GET', KEYS[2]) or '0')
local h = redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[1], '+inf', 'LIMIT', 0, 1)
local passed = -1
if #h > 0 then passed = tail_num(h[1]) end
return {ctr, srv, passed, redis.call('GETBIT', KEYS[4], ARGV[1])}
"#;

// Sessions past their expiry stay in `sess` until SWEEP removes and counts them; every count
// uses ZCOUNT above now, so they never count as live.
// KEYS: claimed, sess, sinfo, nclaimed, waits. ARGV: pos, now, validity, max_active, the
// served and claimed wait buckets.
const CLAIM: &str = r#"
local pos, now = ARGV[1], tonumber(ARGV[2])
if redis.call('GETBIT', KEYS[1], pos) == 1 then
  local exp = redis.call('ZSCORE', KEYS[2], pos)
  if exp and tonumber(exp) > now then
    return {1, tonumber(redis.call('HGET', KEYS[3], pos)), tonumber(exp)}
  end
  return {2}
end
local max = tonumber(ARGV[4])
if max > 0 then
  local n = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
  if n >= max then return {3, n} end
end
local exp = now + tonumber(ARGV[3])
redis.call('SETBIT', KEYS[1], pos, 1)
redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[2], exp, pos)
redis.call('HSET', KEYS[3], pos, now)
redis.call('HINCRBY', KEYS[5], 's' .. ARGV[5], 1)
redis.call('HINCRBY', KEYS[5], 'c' .. ARGV[6], 1)
return {0, now, exp}
"#;

// KEYS: claimed, sess, sinfo, rev, stats. ARGV: pos, jti, now, leeway, outcome.
// A session past its expiry is left for SWEEP (which counts it as expired).
const END_SESSION: &str = r#"
local pos, now = ARGV[1], tonumber(ARGV[3])
if redis.call('GETBIT', KEYS[1], pos) == 0 then return 0 end
local exp = redis.call('ZSCORE', KEYS[2], pos)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if exp and tonumber(exp) > now then
  redis.call('ZREM', KEYS[2], pos)
  redis.call('HDEL', KEYS[3], pos)
  redis.call('ZADD', KEYS[4], tonumber(exp) + tonumber(ARGV[4]), ARGV[2])
  redis.call('HINCRBY', KEYS[5], ARGV[5], 1)
  return 1
end
return 2
"#;

// KEYS: sess, sinfo. ARGV: pos, by, cap, now.
const EXTEND: &str = r#"
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp or tonumber(exp) <= tonumber(ARGV[4]) then return {} end
local iat = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
local e = math.max(tonumber(exp), math.min(tonumber(exp) + tonumber(ARGV[2]), iat + tonumber(ARGV[3])))
redis.call('ZADD', KEYS[1], e, ARGV[1])
return {iat, e}
"#;

const ACTIVE: &str = r#"
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
"#;

const WAITING: &str = r#"
return waiting_facts(KEYS, tonumber(ARGV[1]))
"#;

// KEYS: the six of WAITING, then sess, stats. ARGV: t0, now.
// Returns WAITING's five, then active, completed, abandoned, expired.
const STATS: &str = r#"
local out = waiting_facts(KEYS, tonumber(ARGV[1]))
table.insert(out, redis.call('ZCOUNT', KEYS[7], '(' .. ARGV[2], '+inf'))
for _, v in ipairs(redis.call('HMGET', KEYS[8], 'completed', 'abandoned', 'expired')) do
  table.insert(out, tonumber(v or '0'))
end
return out
"#;

// KEYS: sess, sinfo, stats. ARGV: now.
const SWEEP: &str = r#"
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
  redis.call('HINCRBY', KEYS[3], 'expired', #dead)
end
return dead
"#;

// KEYS: audit. ARGV: now_ms, entries kept, entry JSON. The id's time is the caller's clock,
// or the newest entry's when a process with a slower clock appends: ids only rise.
const AUDIT: &str = r#"
local ms = tonumber(ARGV[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local last_ms = tonumber(string.match(last[1][1], '^(%d+)-'))
  if last_ms > ms then ms = last_ms end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], ms .. '-*', 'e', ARGV[3])
"#;

// KEYS: mins. ARGV: minute, sample, oldest minute kept.
const RECORD_MINUTE: &str = r#"
if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) > 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
return 1
"#;

const REVOKED: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
"#;

// KEYS: ids, queues, slugs. ARGV: slug, config JSON, candidate id.
// Returns the id, -1 when the slug is taken, -2 when the id was used before (draw again).
const CREATE: &str = r#"
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return -1 end
local id = ARGV[3]
if redis.call('SISMEMBER', KEYS[1], id) == 1 or redis.call('HEXISTS', KEYS[2], id) == 1 then
  return -2
end
-- the config arrives as {"id":0,...}; fill the id in place (a cjson round trip would turn
-- empty arrays into objects)
local cfg, n = string.gsub(ARGV[2], '^{"id":0,', '{"id":' .. id .. ',', 1)
if n ~= 1 then return redis.error_reply('config must start with {"id":0,') end
redis.call('SADD', KEYS[1], id)
redis.call('HSET', KEYS[2], id, cfg)
redis.call('HSET', KEYS[3], ARGV[1], id)
return tonumber(id)
"#;

const UPDATE: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

// KEYS: queues, slugs, tombs. ARGV: id, slug the caller knows ('' if none), now.
const DELETE: &str = r#"
local j = redis.call('HGET', KEYS[1], ARGV[1])
local slug = ARGV[2]
if j then
  slug = cjson.decode(j)['queue_id']
  if redis.call('HGET', KEYS[2], slug) == ARGV[1] then redis.call('HDEL', KEYS[2], slug) end
  redis.call('HDEL', KEYS[1], ARGV[1])
elseif slug == '' then
  return 0
end
local tomb = {id = tonumber(ARGV[1]), queue_id = slug, deleted_at = tonumber(ARGV[3])}
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(tomb))
return 1
"#;

/// The prepared scripts (hashed once).
struct Scripts {
    assign: Script,
    incr_serving: Script,
    place: Script,
    claim: Script,
    end_session: Script,
    active: Script,
    waiting: Script,
    revoked: Script,
    create: Script,
    update: Script,
    delete: Script,
    lease: Script,
    raise: Script,
    add_pause: Script,
    next_version: Script,
    apply_tick: Script,
    pq_assign: Script,
    draw: Script,
    extend: Script,
    stats: Script,
    sweep: Script,
    record_minute: Script,
    audit: Script,
}

impl Scripts {
    fn new() -> Self {
        let lib = |body: &str| Script::new(&format!("{LUA_LIB}{body}"));
        Scripts {
            assign: Script::new(ASSIGN),
            incr_serving: lib(INCR_SERVING),
            place: lib(PLACE),
            claim: Script::new(CLAIM),
            end_session: Script::new(END_SESSION),
            active: Script::new(ACTIVE),
            waiting: lib(WAITING),
            revoked: Script::new(REVOKED),
            create: Script::new(CREATE),
            update: Script::new(UPDATE),
            delete: Script::new(DELETE),
            lease: Script::new(LEASE),
            raise: Script::new(RAISE),
            add_pause: Script::new(ADD_PAUSE),
            next_version: Script::new(NEXT_VERSION),
            apply_tick: lib(APPLY_TICK),
            pq_assign: Script::new(PQ_ASSIGN),
            draw: Script::new(DRAW),
            extend: Script::new(EXTEND),
            stats: lib(STATS),
            sweep: Script::new(SWEEP),
            record_minute: Script::new(RECORD_MINUTE),
            audit: Script::new(AUDIT),
        }
    }
}

/// A connection to a single Redis (reconnecting by itself) or to a Redis Cluster.
#[derive(Clone)]
#[allow(missing_debug_implementations, reason = "connection types of the redis crate")]
pub enum Conn {
    /// One server (or a primary with replicas behind a fixed address).
    Single(ConnectionManager),
    /// A Redis Cluster; keys are routed by their hash tag.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection handed to one store call: the shared connection, timed for the observer.
#[derive(Clone)]
struct Tracked {
    conn: Conn,
    observer: Option<Arc<dyn Observer>>,
}

/// The name of a command for the metrics (`other` beyond the ones this store sends).
fn command_name(cmd: &Cmd) -> &'static str {
    const KNOWN: [&str; 16] = [
        "EVALSHA", "EVAL", "SCRIPT", "GET", "SET", "MGET", "HVALS", "HGETALL", "HSETNX", "HDEL",
        "ZRANGE", "XRANGE", "PING", "DEL", "KEYS", "SCAN",
    ];
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(name)) => KNOWN
            .iter()
            .find(|k| k.as_bytes().eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or("other"),
        _ => "other",
    }
}

impl ConnectionLike for Tracked {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let Some(obs) = self.observer.clone() else { return self.conn.req_packed_command(cmd) };
        let started = std::time::Instant::now();
        let fut = self.conn.req_packed_command(cmd);
        Box::pin(async move {
            let out = fut.await;
            // A script not loaded yet is loaded and run again: not a failure.
            let ok = out.as_ref().map_or_else(|e| e.code() == Some("NOSCRIPT"), |_| true);
            obs.redis_command(command_name(cmd), started.elapsed(), ok);
            out
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// The Redis store.
pub struct RedisStore {
    conn: Conn,
    /// Told of every round trip, once metrics are on.
    observer: std::sync::OnceLock<Arc<dyn Observer>>,
    scripts: Scripts,
    /// Replicas that must acknowledge a write before it is answered (`WAIT`); 0 = none.
    wait_replicas: u32,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("wait_replicas", &self.wait_replicas).finish()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

impl RedisStore {
    /// Connects lazily to one Redis server; reconnects by itself when it comes back.
    pub fn single(url: &str, wait_replicas: u32) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(RedisStore {
            conn: Conn::Single(conn),
            observer: std::sync::OnceLock::new(),
            scripts: Scripts::new(),
            wait_replicas,
        })
    }

    /// Connects to a Redis Cluster through any of its nodes.
    pub async fn cluster(nodes: &[String], wait_replicas: u32) -> Result<Self, StoreError> {
        let client = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(Duration::from_secs(2))
            .retries(3)
            .build()
            .map_err(unavailable)?;
        let conn = client.get_async_connection().await.map_err(unavailable)?;
        Ok(RedisStore {
            conn: Conn::Cluster(conn),
            observer: std::sync::OnceLock::new(),
            scripts: Scripts::new(),
            wait_replicas,
        })
    }

    fn conn(&self) -> Tracked {
        Tracked { conn: self.conn.clone(), observer: self.observer.get().cloned() }
    }

    /// Waits for replicas to acknowledge the writes so far, when configured.
    async fn replicate(&self, conn: &mut Tracked, slot_key: &str) -> StoreResult<()> {
        if self.wait_replicas == 0 {
            return Ok(());
        }
        // In a cluster, WAIT must reach the node that owns the key's slot; routing it by a
        // key-less command would hit a random node, so send it as a script keyed by the slot.
        let acked: i64 = Script::new("return redis.call('WAIT', ARGV[1], ARGV[2])")
            .key(slot_key)
            .arg(self.wait_replicas)
            .arg(500)
            .invoke_async(conn)
            .await
            .map_err(unavailable)?;
        if acked < i64::from(self.wait_replicas) {
            return Err(StoreError::Unavailable(format!(
                "only {acked} of {} replicas acknowledged",
                self.wait_replicas
            )));
        }
        Ok(())
    }
}

fn int(v: &Value) -> StoreResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("integer expected")),
        Value::Nil => Ok(0),
        _ => Err(corrupt("integer expected")),
    }
}

fn ints(v: Value) -> StoreResult<Vec<i64>> {
    match v {
        Value::Array(items) => items.iter().map(int).collect(),
        _ => Err(corrupt("array expected")),
    }
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn parse_drawn(d: &str) -> StoreResult<(u64, u64)> {
    let (b, n) = d.split_once(':').ok_or_else(|| corrupt("drawn"))?;
    Ok((b.parse().map_err(|_| corrupt("drawn"))?, n.parse().map_err(|_| corrupt("drawn"))?))
}

fn parse_cfg(json: &str) -> StoreResult<QueueConfig> {
    serde_json::from_str(json).map_err(|_| corrupt("queue config"))
}

impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        match self.conn {
            Conn::Single(_) => "redis",
            Conn::Cluster(_) => "redis-cluster",
        }
    }

    fn set_observer(&self, observer: Arc<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let mut c = self.conn();
            let _: String = redis::cmd("PING").query_async(&mut c).await.map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }

    fn create_queue(&self, cfg: QueueConfig) -> BoxFuture<'_, StoreResult<Created>> {
        async move {
            let mut c = self.conn();
            let json = serde_json::to_string(&QueueConfig { id: 0, ..cfg.clone() })
                .map_err(|_| corrupt("queue config"))?;
            for _ in 0..16 {
                let candidate = super::random_queue_id();
                let id: i64 = self
                    .scripts
                    .create
                    .key(REG_IDS)
                    .key(REG_QUEUES)
                    .key(REG_SLUGS)
                    .arg(&cfg.queue_id)
                    .arg(&json)
                    .arg(candidate)
                    .invoke_async(&mut c)
                    .await
                    .map_err(unavailable)?;
                match id {
                    -1 => return Ok(Created::SlugTaken),
                    -2 => continue,
                    _ => {}
                }
                self.replicate(&mut c, REG_QUEUES).await?;
                let id = u32::try_from(id).map_err(|_| corrupt("queue id"))?;
                return Ok(Created::Ok(Box::new(QueueConfig { id, ..cfg })));
            }
            Err(corrupt("no unused queue id after 16 draws"))
        }
        .boxed()
    }

    fn update_queue(&self, cfg: QueueConfig) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            let mut c = self.conn();
            let json = serde_json::to_string(&cfg).map_err(|_| corrupt("queue config"))?;
            let n: i64 = self
                .scripts
                .update
                .key(REG_QUEUES)
                .arg(cfg.id)
                .arg(json)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            self.replicate(&mut c, REG_QUEUES).await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn list_queues(&self) -> BoxFuture<'_, StoreResult<Vec<QueueConfig>>> {
        async move {
            let mut c = self.conn();
            let all: Vec<String> = redis::cmd("HVALS")
                .arg(REG_QUEUES)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            all.iter().map(|j| parse_cfg(j)).collect()
        }
        .boxed()
    }

    fn delete_queue(
        &self,
        id: u32,
        known: Option<QueueConfig>,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            let mut c = self.conn();
            let n: i64 = self
                .scripts
                .delete
                .key(REG_QUEUES)
                .key(REG_SLUGS)
                .key(REG_TOMBS)
                .arg(id)
                .arg(known.map(|k| k.queue_id).unwrap_or_default())
                .arg(now)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            if n == 1 {
                let keys: Vec<String> = QUEUE_KEYS.iter().map(|k| qk(id, k)).collect();
                let _: i64 = redis::cmd("UNLINK")
                    .arg(&keys)
                    .query_async(&mut c)
                    .await
                    .map_err(unavailable)?;
                self.replicate(&mut c, REG_QUEUES).await?;
            }
            Ok(n == 1)
        }
        .boxed()
    }

    fn tombstones(&self, since: u64) -> BoxFuture<'_, StoreResult<Vec<Tombstone>>> {
        async move {
            let mut c = self.conn();
            let all: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(REG_TOMBS)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            let now = since.max(1);
            let mut out = Vec::new();
            let mut old = Vec::new();
            for (id, json) in all {
                let t: Tombstone = serde_json::from_str(&json).map_err(|_| corrupt("tombstone"))?;
                if t.deleted_at + super::TOMBSTONE_SECS < now {
                    old.push(id);
                } else if t.deleted_at >= since {
                    out.push(t);
                }
            }
            if !old.is_empty() {
                let _: i64 = redis::cmd("HDEL")
                    .arg(REG_TOMBS)
                    .arg(&old)
                    .query_async(&mut c)
                    .await
                    .map_err(unavailable)?;
            }
            out.sort_by_key(|t| t.deleted_at);
            Ok(out)
        }
        .boxed()
    }

    fn assign(
        &self,
        queue: u32,
        batch: Vec<Option<ReplayKey>>,
        now: u64,
        keep_secs: u64,
        floor: Floor,
    ) -> BoxFuture<'_, StoreResult<Assigned>> {
        async move {
            let mut c = self.conn();
            let ctr = qk(queue, "ctr");
            let mut buckets: Vec<u64> = batch.iter().flatten().map(ReplayKey::bucket).collect();
            buckets.sort_unstable();
            buckets.dedup();
            let mut inv = self.scripts.assign.prepare_invoke();
            inv.key(&ctr).key(qk(queue, "arr"));
            for b in &buckets {
                inv.key(qk(queue, &format!("pow:{b}")));
            }
            inv.arg(batch.len()).arg(now).arg(now.saturating_sub(keep_secs));
            for k in &batch {
                match k {
                    Some(k) => {
                        let idx = buckets.iter().position(|b| *b == k.bucket()).unwrap_or(0) + 3;
                        inv.arg(idx).arg(&k.fingerprint[..]);
                    }
                    None => {
                        inv.arg(0).arg("");
                    }
                }
            }
            for b in &buckets {
                inv.arg((b + 1) * 60 + 1);
            }
            inv.arg(floor.assigned).arg(floor.gap);
            let v: Value = inv.invoke_async(&mut c).await.map_err(unavailable)?;
            let v = ints(v)?;
            let [last, raised, ref refused @ ..] = v[..] else { return Err(corrupt("assign")) };
            self.replicate(&mut c, &ctr).await?;
            Ok(Assigned {
                last: u(last),
                replayed: refused.iter().map(|&i| usize::try_from(i).unwrap_or(0)).collect(),
                raised: (raised >= 0).then(|| (u(raised), floor.assigned + floor.gap)),
            })
        }
        .boxed()
    }

    fn serving_history(
        &self,
        queue: u32,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<(u64, u64)>>> {
        async move {
            let mut c = self.conn();
            let start = -(i64::try_from(limit).unwrap_or(i64::MAX));
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(qk(queue, "hist"))
                .arg(start)
                .arg(-1)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            members
                .iter()
                .map(|m| {
                    let (s, t) = m.split_once(':').ok_or_else(|| corrupt("history"))?;
                    Ok((
                        s.parse().map_err(|_| corrupt("history"))?,
                        t.parse().map_err(|_| corrupt("history"))?,
                    ))
                })
                .collect()
        }
        .boxed()
    }

    fn raise_counters(
        &self,
        queue: u32,
        floor: Floor,
    ) -> BoxFuture<'_, StoreResult<Option<Raised>>> {
        async move {
            let mut c = self.conn();
            let ctr = qk(queue, "ctr");
            let v: Value = self
                .scripts
                .raise
                .key(&ctr)
                .key(qk(queue, "srv"))
                .arg(floor.assigned)
                .arg(floor.gap)
                .arg(floor.serving)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            let v = ints(v)?;
            let [a0, s0, a1, s1] = v[..] else { return Err(corrupt("raise")) };
            let found = Counters { assigned: u(a0), serving: u(s0) };
            let now = Counters { assigned: u(a1), serving: u(s1) };
            if found == now {
                return Ok(None);
            }
            self.replicate(&mut c, &ctr).await?;
            Ok(Some(Raised { found, now }))
        }
        .boxed()
    }

    fn next_version(&self, queue: u32, now_ms: u64) -> BoxFuture<'_, StoreResult<u64>> {
        async move {
            let mut c = self.conn();
            let v: i64 = self
                .scripts
                .next_version
                .key(qk(queue, "ver"))
                .arg(now_ms)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(u(v))
        }
        .boxed()
    }

    fn lease(
        &self,
        queue: u32,
        name: &'static str,
        owner: String,
        ttl_ms: u64,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            let mut c = self.conn();
            let n: i64 = self
                .scripts
                .lease
                .key(qk(queue, &format!("lease:{name}")))
                .arg(owner)
                .arg(ttl_ms)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn counters(&self, queue: u32) -> BoxFuture<'_, StoreResult<Counters>> {
        async move {
            let mut c = self.conn();
            let v: Vec<Option<u64>> = redis::cmd("MGET")
                .arg(qk(queue, "ctr"))
                .arg(qk(queue, "srv"))
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            let get = |i: usize| v.get(i).copied().flatten().unwrap_or(0);
            Ok(Counters { assigned: get(0), serving: get(1) })
        }
        .boxed()
    }

    fn increment_serving(
        &self,
        queue: u32,
        by: u64,
        now: u64,
        keep_secs: u64,
    ) -> BoxFuture<'_, StoreResult<u64>> {
        async move {
            let mut c = self.conn();
            let srv = qk(queue, "srv");
            let s: i64 = self
                .scripts
                .incr_serving
                .key(&srv)
                .key(qk(queue, "hist"))
                .arg(by)
                .arg(now)
                .arg(now.saturating_sub(keep_secs))
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            self.replicate(&mut c, &srv).await?;
            Ok(u(s))
        }
        .boxed()
    }

    fn place(&self, queue: u32, position: u64) -> BoxFuture<'_, StoreResult<PlaceFacts>> {
        async move {
            let mut c = self.conn();
            let v: Value = self
                .scripts
                .place
                .key(qk(queue, "ctr"))
                .key(qk(queue, "srv"))
                .key(qk(queue, "hist"))
                .key(qk(queue, "claimed"))
                .arg(position)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            let v = ints(v)?;
            let [ctr, srv, passed, claimed] = v[..] else {
                return Err(corrupt("place"));
            };
            Ok(PlaceFacts {
                counters: Counters { assigned: u(ctr), serving: u(srv) },
                passed_at: (passed >= 0).then_some(u(passed)),
                claimed: claimed == 1,
            })
        }
        .boxed()
    }

    fn claim(
        &self,
        queue: u32,
        position: u64,
        now: u64,
        validity: u64,
        max_active: u64,
        waits: ClaimWaits,
    ) -> BoxFuture<'_, StoreResult<Claim>> {
        async move {
            let mut c = self.conn();
            let claimed = qk(queue, "claimed");
            let v: Value = self
                .scripts
                .claim
                .key(&claimed)
                .key(qk(queue, "sess"))
                .key(qk(queue, "sinfo"))
                .key(qk(queue, "nclaimed"))
                .key(qk(queue, "waits"))
                .arg(position)
                .arg(now)
                .arg(validity)
                .arg(max_active)
                .arg(waits.served)
                .arg(waits.claimed)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            let v = ints(v)?;
            let session = |v: &[i64]| Session { iat: u(v[1]), exp: u(v[2]) };
            let out = match v.first() {
                Some(0) if v.len() == 3 => Claim::Issued(session(&v)),
                Some(1) if v.len() == 3 => Claim::Existing(session(&v)),
                Some(2) => Claim::Ended,
                Some(3) if v.len() == 2 => Claim::Full { active: u(v[1]) },
                _ => return Err(corrupt("claim")),
            };
            if matches!(out, Claim::Issued(_)) {
                self.replicate(&mut c, &claimed).await?;
            }
            Ok(out)
        }
        .boxed()
    }

    fn end_session(
        &self,
        queue: u32,
        position: u64,
        jti: String,
        now: u64,
        outcome: Outcome,
    ) -> BoxFuture<'_, StoreResult<Ended>> {
        async move {
            let mut c = self.conn();
            let claimed = qk(queue, "claimed");
            let n: i64 = self
                .scripts
                .end_session
                .key(&claimed)
                .key(qk(queue, "sess"))
                .key(qk(queue, "sinfo"))
                .key(qk(queue, "rev"))
                .key(qk(queue, "stats"))
                .arg(position)
                .arg(jti)
                .arg(now)
                .arg(REVOKED_BEYOND_EXP)
                .arg(outcome.name())
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(match n {
                0 => Ended::NeverClaimed,
                1 => {
                    self.replicate(&mut c, &claimed).await?;
                    Ended::Now
                }
                _ => Ended::Already,
            })
        }
        .boxed()
    }

    fn extend_session(
        &self,
        queue: u32,
        position: u64,
        by: u64,
        cap: u64,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<Option<Session>>> {
        async move {
            let mut c = self.conn();
            let sess = qk(queue, "sess");
            let v: Value = self
                .scripts
                .extend
                .key(&sess)
                .key(qk(queue, "sinfo"))
                .arg(position)
                .arg(by)
                .arg(cap)
                .arg(now)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            let v = ints(v)?;
            if v.len() != 2 {
                return Ok(None);
            }
            self.replicate(&mut c, &sess).await?;
            Ok(Some(Session { iat: u(v[0]), exp: u(v[1]) }))
        }
        .boxed()
    }

    fn active_sessions(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<u64>> {
        async move {
            let mut c = self.conn();
            let n: i64 = self
                .scripts
                .active
                .key(qk(queue, "sess"))
                .arg(now)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(u(n))
        }
        .boxed()
    }

    fn waiting_facts(&self, queue: u32, t0: u64) -> BoxFuture<'_, StoreResult<WaitingFacts>> {
        async move {
            let mut c = self.conn();
            let v: Value = self
                .scripts
                .waiting
                .key(qk(queue, "ctr"))
                .key(qk(queue, "srv"))
                .key(qk(queue, "nclaimed"))
                .key(qk(queue, "hist"))
                .key(qk(queue, "arr"))
                .key(qk(queue, "claimed"))
                .arg(t0)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            let v = ints(v)?;
            let [ctr, srv, nclaimed, e, cu] = v[..] else {
                return Err(corrupt("waiting"));
            };
            Ok(WaitingFacts {
                counters: Counters { assigned: u(ctr), serving: u(srv) },
                claimed_total: u(nclaimed),
                expired_upto: u(e),
                claimed_upto: u(cu),
            })
        }
        .boxed()
    }

    fn sweep_expired(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<Vec<u64>>> {
        async move {
            let mut c = self.conn();
            let dead: Vec<u64> = self
                .scripts
                .sweep
                .key(qk(queue, "sess"))
                .key(qk(queue, "sinfo"))
                .key(qk(queue, "stats"))
                .arg(now)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(dead)
        }
        .boxed()
    }

    fn stats(&self, queue: u32, now: u64, t0: u64) -> BoxFuture<'_, StoreResult<QueueStats>> {
        async move {
            let mut c = self.conn();
            let mut inv = self.scripts.stats.prepare_invoke();
            for k in ["ctr", "srv", "nclaimed", "hist", "arr", "claimed", "sess", "stats"] {
                inv.key(qk(queue, k));
            }
            let v: Value = inv.arg(t0).arg(now).invoke_async(&mut c).await.map_err(unavailable)?;
            let v = ints(v)?;
            let [ctr, srv, nclaimed, e, cu, active, completed, abandoned, expired] = v[..] else {
                return Err(corrupt("stats"));
            };
            Ok(QueueStats {
                facts: WaitingFacts {
                    counters: Counters { assigned: u(ctr), serving: u(srv) },
                    claimed_total: u(nclaimed),
                    expired_upto: u(e),
                    claimed_upto: u(cu),
                },
                active: u(active),
                completed: u(completed),
                abandoned: u(abandoned),
                expired: u(expired),
            })
        }
        .boxed()
    }

    fn wait_counts(&self, queue: u32) -> BoxFuture<'_, StoreResult<WaitCounts>> {
        async move {
            let mut c = self.conn();
            let all: Vec<(String, u64)> = redis::cmd("HGETALL")
                .arg(qk(queue, "waits"))
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            let mut w =
                WaitCounts { served: vec![0; WAIT_BUCKETS], claimed: vec![0; WAIT_BUCKETS] };
            for (field, n) in all {
                let (which, bucket) = field.split_at(1);
                let b: usize = bucket.parse().map_err(|_| corrupt("wait bucket"))?;
                let hist = if which == "s" { &mut w.served } else { &mut w.claimed };
                *hist.get_mut(b).ok_or_else(|| corrupt("wait bucket"))? += n;
            }
            Ok(w)
        }
        .boxed()
    }

    fn record_minute(
        &self,
        queue: u32,
        sample: MinuteSample,
        keep: u64,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            let mut c = self.conn();
            let n: i64 = self
                .scripts
                .record_minute
                .key(qk(queue, "mins"))
                .arg(sample.minute)
                .arg(sample.encode())
                .arg(sample.minute.saturating_sub(keep))
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn minutes(&self, queue: u32, from: u64) -> BoxFuture<'_, StoreResult<Vec<MinuteSample>>> {
        async move {
            let mut c = self.conn();
            let all: Vec<String> = redis::cmd("ZRANGE")
                .arg(qk(queue, "mins"))
                .arg(from)
                .arg("+inf")
                .arg("BYSCORE")
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            all.iter().map(|m| MinuteSample::decode(m).ok_or_else(|| corrupt("minute"))).collect()
        }
        .boxed()
    }

    fn revoked(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        async move {
            let mut c = self.conn();
            self.scripts
                .revoked
                .key(qk(queue, "rev"))
                .arg(now)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)
        }
        .boxed()
    }

    fn assign_prequeue(
        &self,
        queue: u32,
        replay: Option<ReplayKey>,
    ) -> BoxFuture<'_, StoreResult<PreQueued>> {
        async move {
            let mut c = self.conn();
            let pq = qk(queue, "pq");
            let mut inv = self.scripts.pq_assign.prepare_invoke();
            inv.key(&pq).key(qk(queue, "drawn"));
            if let Some(k) = replay {
                inv.key(qk(queue, &format!("pow:{}", k.bucket())))
                    .arg(&k.fingerprint[..])
                    .arg((k.bucket() + 1) * 60 + 1);
            }
            let n: i64 = inv.invoke_async(&mut c).await.map_err(unavailable)?;
            Ok(match n {
                -1 => PreQueued::Drawn,
                -2 => PreQueued::Replayed,
                n => {
                    self.replicate(&mut c, &pq).await?;
                    PreQueued::Arrival(u(n))
                }
            })
        }
        .boxed()
    }

    fn draw(&self, queue: u32) -> BoxFuture<'_, StoreResult<(u64, u64)>> {
        async move {
            let mut c = self.conn();
            let d: String = self
                .scripts
                .draw
                .key(qk(queue, "pq"))
                .key(qk(queue, "drawn"))
                .key(qk(queue, "ctr"))
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            self.replicate(&mut c, &qk(queue, "ctr")).await?;
            parse_drawn(&d)
        }
        .boxed()
    }

    fn drawn(&self, queue: u32) -> BoxFuture<'_, StoreResult<Option<(u64, u64)>>> {
        async move {
            let mut c = self.conn();
            let d: Option<String> = redis::cmd("GET")
                .arg(qk(queue, "drawn"))
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            d.as_deref().map(parse_drawn).transpose()
        }
        .boxed()
    }

    fn init_meta(
        &self,
        queue: u32,
        name: &'static str,
        value: String,
    ) -> BoxFuture<'_, StoreResult<String>> {
        async move {
            let mut c = self.conn();
            let key = qk(queue, &format!("meta:{name}"));
            let _: Value = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("NX")
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            redis::cmd("GET").arg(&key).query_async(&mut c).await.map_err(unavailable)
        }
        .boxed()
    }

    fn get_meta(
        &self,
        queue: u32,
        name: &'static str,
    ) -> BoxFuture<'_, StoreResult<Option<String>>> {
        async move {
            let mut c = self.conn();
            redis::cmd("GET")
                .arg(qk(queue, &format!("meta:{name}")))
                .query_async(&mut c)
                .await
                .map_err(unavailable)
        }
        .boxed()
    }

    fn put_meta(
        &self,
        queue: u32,
        name: &'static str,
        value: String,
    ) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let mut c = self.conn();
            let _: Value = redis::cmd("SET")
                .arg(qk(queue, &format!("meta:{name}")))
                .arg(value)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }

    fn apply_tick(
        &self,
        queue: u32,
        tick: u64,
        by: u64,
        ctl: String,
        now: u64,
        keep_secs: u64,
    ) -> BoxFuture<'_, StoreResult<Option<u64>>> {
        async move {
            let mut c = self.conn();
            let srv = qk(queue, "srv");
            let s: i64 = self
                .scripts
                .apply_tick
                .key(qk(queue, "ctltick"))
                .key(qk(queue, "meta:ctl"))
                .key(&srv)
                .key(qk(queue, "hist"))
                .arg(tick)
                .arg(by)
                .arg(ctl)
                .arg(now)
                .arg(now.saturating_sub(keep_secs))
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            if s < 0 {
                return Ok(None);
            }
            self.replicate(&mut c, &srv).await?;
            Ok(Some(u(s)))
        }
        .boxed()
    }

    fn secrets_or_init(&self, fresh: StoredSecrets) -> BoxFuture<'_, StoreResult<StoredSecrets>> {
        async move {
            let mut c = self.conn();
            let json = serde_json::to_string(&fresh).map_err(|_| corrupt("secrets"))?;
            let _: Value = redis::cmd("SET")
                .arg(REG_SECRETS)
                .arg(json)
                .arg("NX")
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            let stored: String = redis::cmd("GET")
                .arg(REG_SECRETS)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            serde_json::from_str(&stored).map_err(|_| corrupt("secrets"))
        }
        .boxed()
    }

    fn add_pause(&self, queue: u32, from: u64, to: u64) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            if from >= to {
                return Ok(());
            }
            let mut c = self.conn();
            let key = qk(queue, "pause");
            let _: i64 = self
                .scripts
                .add_pause
                .key(&key)
                .arg(from)
                .arg(to)
                .arg(super::PAUSES_KEPT)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)?;
            self.replicate(&mut c, &key).await?;
            Ok(())
        }
        .boxed()
    }

    fn pauses(&self, queue: u32) -> BoxFuture<'_, StoreResult<Vec<(u64, u64)>>> {
        async move {
            let mut c = self.conn();
            let json: Option<String> = redis::cmd("GET")
                .arg(qk(queue, "pause"))
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            match json {
                None => Ok(Vec::new()),
                Some(j) => serde_json::from_str(&j).map_err(|_| corrupt("pauses")),
            }
        }
        .boxed()
    }

    fn records(&self, kind: RecordKind) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        async move {
            let mut c = self.conn();
            redis::cmd("HVALS").arg(record_key(kind)).query_async(&mut c).await.map_err(unavailable)
        }
        .boxed()
    }

    fn add_record(
        &self,
        kind: RecordKind,
        name: String,
        json: String,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            let mut c = self.conn();
            let n: i64 = redis::cmd("HSETNX")
                .arg(record_key(kind))
                .arg(name)
                .arg(json)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            self.replicate(&mut c, record_key(kind)).await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn remove_record(&self, kind: RecordKind, name: String) -> BoxFuture<'_, StoreResult<bool>> {
        async move {
            let mut c = self.conn();
            let n: i64 = redis::cmd("HDEL")
                .arg(record_key(kind))
                .arg(name)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            self.replicate(&mut c, record_key(kind)).await?;
            Ok(n == 1)
        }
        .boxed()
    }

    fn append_audit(
        &self,
        json: String,
        now_ms: u64,
        keep: u64,
    ) -> BoxFuture<'_, StoreResult<String>> {
        async move {
            let mut c = self.conn();
            self.scripts
                .audit
                .key(REG_AUDIT)
                .arg(now_ms)
                .arg(keep)
                .arg(json)
                .invoke_async(&mut c)
                .await
                .map_err(unavailable)
        }
        .boxed()
    }

    fn audit_page(
        &self,
        from: AuditFrom,
        count: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>> {
        async move {
            let mut c = self.conn();
            let start =
                format!("{}{}-{}", if from.exclusive { "(" } else { "" }, from.ms, from.seq);
            let v: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(REG_AUDIT)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(v.into_iter()
                .filter_map(|(id, fields)| fields.into_iter().next().map(|(_, json)| (id, json)))
                .collect())
        }
        .boxed()
    }

    fn secrets(&self) -> BoxFuture<'_, StoreResult<Option<StoredSecrets>>> {
        async move {
            let mut c = self.conn();
            let stored: Option<String> = redis::cmd("GET")
                .arg(REG_SECRETS)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            stored.map(|s| serde_json::from_str(&s).map_err(|_| corrupt("secrets"))).transpose()
        }
        .boxed()
    }

    fn put_secrets(&self, secrets: StoredSecrets) -> BoxFuture<'_, StoreResult<()>> {
        async move {
            let mut c = self.conn();
            let json = serde_json::to_string(&secrets).map_err(|_| corrupt("secrets"))?;
            let _: Value = redis::cmd("SET")
                .arg(REG_SECRETS)
                .arg(json)
                .query_async(&mut c)
                .await
                .map_err(unavailable)?;
            Ok(())
        }
        .boxed()
    }
}
