// Two PoPs and a KV that lags: the freshness pull (shared::pull) keeps both PoPs within the
// staleness bound however late KV carries the state to the second one.
//
// PoP 1 is the worker the coordinator publishes to (its KV is written by the sync endpoint);
// PoP 2 is a second workerd instance with its own KV namespace and its own cache. Cloudflare's
// KV replication cannot run here, so a test-only shim stands in for it: it copies what PoP 1's
// KV holds into PoP 2's after LAG_MS (30 s, far beyond the bound; Cloudflare's is a minute or
// more). Each PoP reaches the real coordinator (real Redis) through its own counting proxy, so
// the test can say how many pulls each PoP made. Figures are printed as `# measure:` lines.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { BENCH_BIN, PREFIX, ROOT, listenWorker, startCountingProxy, startOrigin, startStack, until } from "./helpers.mjs";

/// A `pub const NAME: u64 = …;` of shared/src/pull.rs, so the test follows the code.
function pullConst(name) {
  const src = readFileSync(`${ROOT}/shared/src/pull.rs`, "utf8");
  const m = src.match(new RegExp(`pub const ${name}: u\\d+ = ([^;]+);`));
  if (!m) throw new Error(`${name} not found in shared/src/pull.rs`);
  return m[1].split("+").reduce((sum, part) => sum + (pullConst.known[part.trim()] ?? Number(part.trim().replaceAll("_", ""))), 0);
}
pullConst.known = {};
for (const n of ["FRESH_MS", "COORDINATOR_CACHE_MS", "SLACK_MS", "STALENESS_BOUND_MS"]) pullConst.known[n] = pullConst(n);
const FRESH_MS = pullConst.known.FRESH_MS;
const BOUND_MS = pullConst.known.STALENESS_BOUND_MS;
const LAG_MS = 30_000;
const TRIALS = 20;
const QUEUE = "fresh";

let stack, origin, proxy1, proxy2, pop2, shim, kvDir, queueId;
const pops = () => [[1, stack.edge], [2, pop2.url]];

/// The stand-in for KV replication: what `from` holds reaches `to` `lagMs` later.
function replicate(from, to, lagMs) {
  const seen = new Map();
  const pending = [];
  let delivered = 0;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      for (const { name } of (await from.list()).keys) {
        const value = await from.get(name);
        if (value !== null && seen.get(name) !== value) {
          seen.set(name, value);
          pending.push({ name, value, due: Date.now() + lagMs });
        }
      }
      while (pending.length && pending[0].due <= Date.now()) {
        const p = pending.shift();
        await (await to()).put(p.name, p.value);
        delivered++;
      }
    } catch {
      // a PoP being restarted: the next round catches up
    } finally {
      busy = false;
    }
  }, 100);
  return { delivered: () => delivered, stop: () => clearInterval(timer) };
}

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const form = (fields) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": "198.51.100.20" },
  body: new URLSearchParams(fields).toString(),
});
const serving = async (url) => {
  const r = await fetch(`${url}${PREFIX}/serving_pos/${QUEUE}`);
  const body = await r.json();
  return { status: r.status, position: body.position, age: Number(r.headers.get("x-anteroom-age-ms")) };
};
const startPop2 = () => listenWorker({ COORDINATOR_URL: proxy2.url, ORIGIN_URL: origin.url }, { kvPersist: kvDir });

/// Milliseconds from `t0` until `check(url)` holds at each PoP, polling every 10 ms.
async function reachBoth(t0, check, what) {
  const out = {};
  await Promise.all(pops().map(async ([pop, url]) => {
    await until(() => check(url), { every: 10, ms: 15_000, what: `${what} at PoP ${pop}` });
    out[pop] = Date.now() - t0;
  }));
  return out;
}

before(async () => {
  origin = await startOrigin();
  stack = await startStack({
    originUrl: origin.url,
    coordinatorUrl: async (s) => (proxy1 = await startCountingProxy(s.publicUrl)).url,
    // Signing keys in the store, not from configuration, so the test can rotate them.
    coordinatorEnv: { ANTEROOM_SIGNING_KEY: null },
  });
  proxy2 = await startCountingProxy(stack.publicUrl);
  kvDir = mkdtempSync(`${tmpdir()}/anteroom-pop2-kv-`);
  pop2 = await startPop2();
  const kv1 = await stack.mf.getKVNamespace("ANTEROOM_KV");
  shim = replicate(kv1, () => pop2.mf.getKVNamespace("ANTEROOM_KV"), LAG_MS);
  ({ id: queueId } = await stack.createQueue({ queue_id: QUEUE, paths: ["/shop"], pow_difficulty: 0, token_validity_second: 300 }));
  await until(async () => (await serving(pop2.url)).status === 200, { ms: 15_000, what: "the queue at PoP 2 (by pull)" });
});

after(async () => {
  shim?.stop();
  await pop2?.mf.dispose().catch(() => {});
  await proxy1?.close();
  await proxy2?.close();
  await stack?.stop();
  await origin?.close();
  if (kvDir) rmSync(kvDir, { recursive: true, force: true });
});

test("a serving-position change reaches both PoPs within the bound while KV lags 30 s", async () => {
  const took = { 1: [], 2: [] };
  const ages = [];
  for (let i = 0; i < TRIALS; i++) {
    const t0 = Date.now();
    const r = await stack.admin("/api/queue/increment_serving_position", { body: new URLSearchParams({ queue_id: QUEUE, increment_by: "1" }) });
    const want = (await r.json()).serving_pos;
    const at = await reachBoth(t0, async (url) => {
      const s = await serving(url);
      ages.push(s.age);
      return s.position >= want;
    }, "serving position");
    took[1].push(at[1]);
    took[2].push(at[2]);
    // PoP 2 answered it although its KV did not have it yet.
    const kv = await (await pop2.mf.getKVNamespace("ANTEROOM_KV")).get(`state/${QUEUE}`);
    assert.ok(kv === null || JSON.parse(kv).serving_pos < want, "PoP 2's KV copy lags behind what it answered");
  }
  for (const pop of [1, 2]) {
    const [p50, p99] = [percentile(took[pop], 50), percentile(took[pop], 99)];
    console.log(`# measure: PoP ${pop} staleness of serving-position changes over ${TRIALS} changes, KV lag ${LAG_MS} ms: p50 ${p50} ms, p99 ${p99} ms (bound ${BOUND_MS} ms)`);
    assert.ok(p99 <= BOUND_MS, `PoP ${pop} p99 ${p99} ms over the bound ${BOUND_MS} ms: ${took[pop]}`);
  }
  console.log(`# measure: x-anteroom-age-ms of ${ages.length} answers: p50 ${percentile(ages, 50)} ms, p99 ${percentile(ages, 99)} ms, max ${Math.max(...ages)} ms`);
  assert.ok(percentile(ages, 99) <= BOUND_MS, `answer ages p99 ${percentile(ages, 99)} ms`);
});

/// The `kid` in a JWT's header.
const kidOf = (token) => JSON.parse(Buffer.from(token.split(".")[0], "base64url")).kid;

/// A place at `url` and its token (the serving position must be past it):
/// `{ request_id, token, kid }`.
async function claimToken(url) {
  const a = await fetch(`${url}${PREFIX}/assign_queue_pos`, form({ queue_id: QUEUE }));
  assert.equal(a.status, 200, await a.clone().text());
  const { request_id } = await a.json();
  const g = await fetch(`${url}${PREFIX}/generate_token`, form({ queue_id: QUEUE, request_id }));
  assert.equal(g.status, 200, await g.clone().text());
  const { access_token } = await g.json();
  return { request_id, token: access_token, kid: kidOf(access_token) };
}

/// Whether `token` opens the protected path at `url` (the origin's answer, not the room's).
async function admits(url, token) {
  const r = await fetch(`${url}/shop/item`, { headers: { accept: "application/json", authorization: `Bearer ${token}` } });
  await r.text();
  return r.headers.get("x-origin") === "yes";
}

test("after a key rotation the new key's first tokens admit at both PoPs while KV lags", async () => {
  // Every place taken below is served at once.
  const inc = await stack.admin("/api/queue/increment_serving_position", { body: new URLSearchParams({ queue_id: QUEUE, increment_by: "50" }) });
  assert.equal(inc.status, 200, await inc.clone().text());
  const want = (await inc.json()).serving_pos;
  await reachBoth(Date.now(), async (url) => (await serving(url)).position >= want, "the serving position past the new places");
  const before = await claimToken(stack.edge);
  const r = await stack.admin("/api/keys/rotate", { body: new URLSearchParams() });
  assert.equal(r.status, 200, await r.clone().text());
  const rotatedAt = Date.now();
  const kids = (await r.json()).keys.map((k) => k.kid);
  const newKid = kids.find((k) => k !== before.kid);
  assert.ok(newKid && kids.includes(before.kid), `the JWKS holds both keys: ${kids}`);
  // The new key signs only after a lead (5 s + two publish intervals); until then tokens carry
  // the old one. Claim about once a second until one carries the new key.
  let fresh;
  await until(async () => {
    fresh = await claimToken(stack.edge);
    return fresh.kid === newKid;
  }, { every: 1000, ms: 30_000, what: "a token signed by the new key" });
  const signingAfter = Date.now() - rotatedAt;
  // The first tokens of the new key open the shop at both PoPs at once: the JWKS came with
  // the pulled state. PoP 2's KV copy does not hold the new key yet (it lags 30 s).
  for (const [pop, url] of pops()) assert.ok(await admits(url, fresh.token), `the new key's token admits at PoP ${pop}`);
  const kv = await (await pop2.mf.getKVNamespace("ANTEROOM_KV")).get(`state/${QUEUE}`);
  const kvKids = kv === null ? [] : JSON.parse(kv).jwks.keys.map((k) => k.kid);
  assert.ok(!kvKids.includes(newKid), "PoP 2's KV copy lacks the new key: the pull carried it");
  for (const [pop, url] of pops()) assert.ok(await admits(url, before.token), `the old key's token still admits at PoP ${pop}`);
  console.log(`# measure: key rotation: the new key signed ${signingAfter} ms after the rotation; its first token admitted at both PoPs at once, PoP 2's KV still without it`);
});

test("an ended session and a closed queue are seen at both PoPs within the bound", async () => {
  // The serving position is already past the new place (the tests above moved it).
  const { request_id, token } = await claimToken(stack.edge);
  for (const [pop, url] of pops()) assert.ok(await admits(url, token), `the token admits at PoP ${pop}`);
  let t0 = Date.now();
  const ended = await stack.admin("/api/queue/update_token_status", { body: new URLSearchParams({ queue_id: QUEUE, request_id, status: "1" }) });
  assert.equal(ended.status, 200, await ended.clone().text());
  const revoked = await reachBoth(t0, async (url) => !(await admits(url, token)), "the revocation");
  console.log(`# measure: a revocation reached PoP 1 in ${revoked[1]} ms, PoP 2 in ${revoked[2]} ms`);
  for (const pop of [1, 2]) assert.ok(revoked[pop] <= BOUND_MS, `revocation at PoP ${pop}: ${revoked[pop]} ms`);

  t0 = Date.now();
  const closed = await stack.admin("/api/queue", { method: "PUT", body: { id: queueId, mode: "closed" } });
  assert.equal(closed.status, 200, await closed.clone().text());
  // The edge's own answer (a protected path), not the coordinator's refusal of an enqueue.
  const shut = await reachBoth(t0, async (url) => {
    const r = await fetch(`${url}/shop/item`, { headers: { accept: "application/json" } });
    const body = await r.json();
    return r.status === 403 && body.error === "queue_closed";
  }, "the closed switch");
  console.log(`# measure: a closed switch reached PoP 1 in ${shut[1]} ms, PoP 2 in ${shut[2]} ms`);
  for (const pop of [1, 2]) assert.ok(shut[pop] <= BOUND_MS, `closed switch at PoP ${pop}: ${shut[pop]} ms`);
  for (const [pop, url] of pops()) assert.ok(!(await admits(url, token)), `PoP ${pop} keeps a closed queue's paths shut`);
});

/// Loads `url`'s `path` with the bench's load generator (`bench load`: the Rust client of the
/// benchmarks, keep-alive HTTP/1.1, closed loop; Node's fetch tops out near 2,000 polls/s here)
/// for a second of warm-up and `secs` measured, and resolves with what it measured.
async function load(url, path, connections, secs) {
  const { execFile } = await import("node:child_process");
  const addr = new URL(url).host;
  const args = ["load", "--addr", addr, "--path", path, "-c", String(connections), "--secs", String(secs)];
  return new Promise((resolve, reject) => {
    execFile(BENCH_BIN, args, (err, stdout, stderr) => (err ? reject(new Error(`bench load: ${err.message} ${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

test("coordinator pulls per PoP stay about one per queue per TTL under heavy polling", async () => {
  const forwarded = [proxy1.total(), proxy2.total()];
  const SECS = 5;
  const t0 = Date.now();
  const runs = await Promise.all(pops().map(([, url]) => load(url, `${PREFIX}/serving_pos/${QUEUE}`, 32, SECS)));
  const t1 = Date.now();
  const secs = (t1 - t0) / 1000;
  const rate = (p) => p.pulls(t0, t1) / secs;
  const polls = runs.reduce((n, o) => n + o.rps, 0);
  // One queue plus the index, each at most once per FRESH_MS, and a pull in flight at either end.
  const ceiling = 2 * (1000 / FRESH_MS) + 2 / secs;
  console.log(`# measure: ${Math.round(polls)} status polls/s over both PoPs (PoP 1 ${Math.round(runs[0].rps)}, PoP 2 ${Math.round(runs[1].rps)}; p99 ${runs[0].p99_ms} / ${runs[1].p99_ms} ms) for ${SECS} s after 1 s of warm-up; coordinator pulls/s over all ${secs.toFixed(1)} s: PoP 1 ${rate(proxy1).toFixed(2)}, PoP 2 ${rate(proxy2).toFixed(2)} (ceiling ${ceiling.toFixed(2)})`);
  for (const [i, o] of runs.entries()) assert.equal(o.errors + Object.values(o.statuses).reduce((a, b) => a + b, 0), 0, `PoP ${i + 1}: every poll answered 200: ${JSON.stringify(o)}`);
  assert.ok(polls > 2000, `the load was real: ${Math.round(polls)} polls/s`);
  for (const p of [proxy1, proxy2]) assert.ok(rate(p) <= ceiling, `pulls/s ${rate(p)} over ${ceiling}`);
  assert.deepEqual([proxy1.total(), proxy2.total()], forwarded, "no poll reached the coordinator");
});

test("with the coordinator down both PoPs answer from their last state, then from KV, saying how old", async () => {
  // PoP 2's KV has been fed by the shim (30 s late) by now.
  await until(() => shim.delivered() >= 2, { ms: LAG_MS + 20_000, what: "the shim's first deliveries to PoP 2" });
  const last = await serving(stack.edge);
  stack.killCoordinator(0);
  const killedAt = Date.now();
  // Both keep answering; the age grows past the TTL, it is not reset by a failed pull.
  for (const [pop, url] of pops()) {
    const s = await until(async () => {
      const s = await serving(url);
      const down = Date.now() - killedAt;
      return s.status === 200 && down > 2 * FRESH_MS && s.age >= down && s;
    }, { ms: 10_000, what: `PoP ${pop} answering with a growing age` });
    assert.equal(s.position, last.position, `PoP ${pop} answers from its last state`);
    console.log(`# measure: coordinator down ${Date.now() - killedAt} ms: PoP ${pop} answers position ${s.position} from its last state, age ${s.age} ms`);
  }
  // A new isolate (the PoP restarted, its cache empty) has only KV: an older state, and says so.
  await pop2.mf.dispose();
  pop2 = await startPop2();
  const s = await serving(pop2.url);
  assert.equal(s.status, 200);
  assert.ok(s.age >= LAG_MS, `KV's copy at PoP 2 is at least the lag old: ${s.age} ms`);
  assert.ok(s.position <= last.position);
  console.log(`# measure: PoP 2 restarted with the coordinator down: position ${s.position} from KV, age ${s.age} ms`);
});
