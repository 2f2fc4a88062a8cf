// The edge worker alone under Miniflare: sync, status answers, tickets, proof-of-work at the
// edge, token checks on protected paths, proxying, assets. The coordinator is absent here (its
// URL is a closed port), which is itself tested: nothing the edge answers alone needs it.
// End-to-end with the real coordinator and Redis: e2e.test.mjs.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { createRequire } from "node:module";
import {
  BASE, PREFIX, EDGE_KEY, OTHER_SIGNER, SIGNER, b64, edgeState, nowSecs, postSync, sealTicket,
  craftChallenge, positionSet, signSync, signToken, startOrigin, startWorker, jwk, until,
} from "./helpers.mjs";

/// Status answers carry `next_poll_ms` (adaptive, jittered): checked to be within the
/// policy's bounds (1.6 s .. 36 s), then removed for the exact comparisons.
function polled(body) {
  const { next_poll_ms: poll, ...rest } = body;
  assert.ok(Number.isInteger(poll) && poll >= 1600 && poll <= 36000, `next_poll_ms ${poll}`);
  return rest;
}

const require = createRequire(import.meta.url);
const pow = require("../edge-worker/assets/pow.js");

let mf;
let origin;
const get = (path, init = {}) => mf.dispatchFetch(`${BASE}${path}`, init);
const form = (fields, headers = {}) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
});

before(async () => {
  origin = await startOrigin();
  // These tests feed crafted states through the sync endpoint and KV, with no coordinator:
  // the edge as deployed without pulls (multipop.test.mjs and e2e.test.mjs pull).
  mf = await startWorker({ ORIGIN_URL: origin.url, STATE_PULL: "off" });
});
after(async () => {
  await mf?.dispose();
  await origin?.close();
});

describe("before any sync", () => {
  test("protected paths fail closed with 503 and Retry-After, JSON on request", async () => {
    const r = await get("/shop/item", { headers: { accept: "application/json" } });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("retry-after"), "5");
    assert.equal((await r.json()).error, "not_synced");
    const html = await get("/shop/item");
    assert.equal(html.status, 503);
    assert.match(html.headers.get("content-type"), /text\/html/);
    await html.text();
    assert.equal(origin.seen.length, 0);
  });

  test("status of an unknown queue is 400", async () => {
    const r = await get(`${PREFIX}/serving_pos/concert`);
    assert.equal(r.status, 400);
    assert.deepEqual(Object.keys(await r.json()).sort(), ["error", "message"]);
  });
});

describe("sync endpoint", () => {
  test("a signed batch is applied and served with its version", async () => {
    const s = edgeState({ serving_pos: 12, waiting_num: 33 });
    const r = await postSync(mf, { states: [s], removed: [] });
    assert.equal(r.status, 200);
    assert.deepEqual((await r.json()).applied, [{ queue_id: "concert", version: s.version }]);
    const sp = await (await get(`${PREFIX}/serving_pos/concert`)).json();
    assert.deepEqual(polled(sp), { position: 12, version: s.version });
    const wn = await (await get(`${PREFIX}/waiting_num/concert`)).json();
    assert.deepEqual(polled(wn), { waiting_num: 33, version: s.version });
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    assert.equal(JSON.parse(await kv.get("state/concert")).version, s.version);
    assert.equal(JSON.parse(await kv.get("index")).queues[0].queue_id, "concert");
  });

  test("every status answer has the fixed headers and the age of its own queue's state", async () => {
    // The worker reuses one headers template per isolate for 200 answers (http::Answer):
    // interleaved polls of two queues of different ages must never carry each other's age.
    const now = Date.now();
    const young = edgeState({ published_at_ms: now, queue: { id: 41, queue_id: "young", paths: ["/young"] } });
    const old = edgeState({ published_at_ms: now - 60_000, queue: { id: 42, queue_id: "old", paths: ["/old"] } });
    assert.equal((await postSync(mf, { states: [young, old], removed: [] })).status, 200);
    for (let i = 0; i < 5; i++) {
      for (const [slug, lo, hi] of [["young", 0, 30_000], ["old", 60_000, 120_000]]) {
        for (const path of [`serving_pos/${slug}`, `waiting_num/${slug}`]) {
          const r = await get(`${PREFIX}/${path}`);
          assert.equal(r.status, 200);
          await r.arrayBuffer();
          // A number of milliseconds in decimal digits (the worker hands `set` a number).
          assert.match(r.headers.get("x-anteroom-age-ms"), /^\d+$/);
          const age = Number(r.headers.get("x-anteroom-age-ms"));
          assert.ok(age >= lo && age < hi, `${path}: age ${age} not in [${lo}, ${hi})`);
          assert.equal(r.headers.get("content-type"), "application/json");
          assert.equal(r.headers.get("cache-control"), "no-store");
          assert.equal(r.headers.get("x-content-type-options"), "nosniff");
        }
      }
    }
  });

  test("a bad MAC, a stale or future timestamp and missing headers are refused", async () => {
    const batch = { states: [edgeState({ serving_pos: 999 })], removed: [] };
    const body = JSON.stringify(batch);
    const cases = [
      { sig: b64(Buffer.alloc(32)) },
      { key: Buffer.alloc(32, 1) },
      { ts: Date.now() - 31_000 },
      { ts: Date.now() + 31_000 },
    ];
    for (const c of cases) {
      const r = await postSync(mf, body, c);
      assert.equal(r.status, 401, JSON.stringify(c));
      assert.equal((await r.json()).error, "unauthorized");
    }
    const r = await mf.dispatchFetch(`${BASE}${PREFIX}/__anteroom/sync`, { method: "POST", body });
    assert.equal(r.status, 401);
    await r.text();
    // A body changed after signing.
    const ts = Date.now();
    const signed = await postSync(mf, body, { ts, sig: signSync(body.replace("999", "998"), ts) });
    assert.equal(signed.status, 401);
    await signed.text();
    const sp = await (await get(`${PREFIX}/serving_pos/concert`)).json();
    assert.notEqual(sp.position, 999);
  });

  test("an older state never replaces a newer one", async () => {
    const newer = edgeState({ serving_pos: 20 });
    const older = { ...edgeState({ serving_pos: 5 }), version: newer.version - 1 };
    assert.equal((await postSync(mf, { states: [newer], removed: [] })).status, 200);
    const r = await postSync(mf, { states: [older], removed: [] });
    assert.equal(r.status, 200);
    const answer = await r.json();
    assert.deepEqual(answer.applied, []);
    assert.deepEqual(answer.ignored, [{ queue_id: "concert", version: older.version }]);
    // Same version again is ignored too.
    const again = await (await postSync(mf, { states: [newer], removed: [] })).json();
    assert.equal(again.ignored.length, 1);
    const sp = await (await get(`${PREFIX}/serving_pos/concert`)).json();
    assert.deepEqual(polled(sp), { position: 20, version: newer.version });
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    assert.equal(JSON.parse(await kv.get("state/concert")).serving_pos, 20);
  });

  test("an isolate never goes back to a lower version it has seen, even if KV does", async () => {
    const s = edgeState({ serving_pos: 21 });
    await (await postSync(mf, { states: [s], removed: [] })).text();
    assert.equal((await (await get(`${PREFIX}/serving_pos/concert`)).json()).position, 21);
    // Simulate a lagging KV replica answering with an older value.
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    await kv.put("state/concert", JSON.stringify({ ...s, version: s.version - 10, serving_pos: 1 }));
    const deadline = Date.now() + 2500; // beyond the 1 s isolate cache: KV is re-read
    while (Date.now() < deadline) {
      const sp = await (await get(`${PREFIX}/serving_pos/concert`)).json();
      assert.deepEqual(polled(sp), { position: 21, version: s.version });
      await new Promise((r) => setTimeout(r, 100));
    }
    await (await postSync(mf, { states: [edgeState({ serving_pos: 22 })], removed: [] })).text();
  });

  test("malformed batches, unknown formats and bad slugs are 400; wrong method 405", async () => {
    for (const body of ["not json", JSON.stringify({ states: [{ ...edgeState(), format: 3 }] }),
      JSON.stringify({ states: [edgeState({ queue: { queue_id: "Bad Slug" } })] })]) {
      const r = await postSync(mf, body);
      assert.equal(r.status, 400, body.slice(0, 40));
      await r.text();
    }
    const r = await get(`${PREFIX}/__anteroom/sync`);
    assert.equal(r.status, 405);
    await r.text();
  });

  test("bodies over the limit are refused while streaming, with or without a length", async () => {
    const chunked = (bytes) => new ReadableStream({
      start(c) {
        for (let sent = 0; sent < bytes; sent += 1024) c.enqueue(new Uint8Array(Math.min(1024, bytes - sent)).fill(97));
        c.close();
      },
    });
    const post = (path, bytes, headers) => mf.dispatchFetch(`${BASE}${PREFIX}${path}`, {
      method: "POST", body: chunked(bytes), duplex: "half", headers,
    });
    const form = { "content-type": "application/x-www-form-urlencoded" };
    let r = await post("/assign_queue_pos", 6 * 1024, form);
    assert.equal(r.status, 413);
    assert.equal((await r.json()).error, "payload_too_large");
    r = await post("/assign_queue_pos", 100, form);
    assert.equal(r.status, 400, "a small chunked form is read");
    await r.text();
    // The edge stops reading at the limit and answers 413 while the client is still sending:
    // the client sees that answer, or the connection cut off under its upload. Never accepted.
    const big = await post("/__anteroom/sync", 5 << 20, { "content-type": "application/json", "x-anteroom-timestamp": String(Date.now()), "x-anteroom-signature": "x" })
      .then(async (res) => { await res.text(); return res.status; }, (e) => `cut off: ${e.message}`);
    assert.ok(big === 413 || /^cut off/.test(big), String(big));
    r = await mf.dispatchFetch(`${BASE}${PREFIX}/assign_queue_pos`, { method: "POST", body: "a".repeat(8192), headers: form });
    assert.equal(r.status, 413, "a declared length over the limit");
    await r.text();
  });

  test("a queue is forgotten only by a removal naming its id", async () => {
    const gone = edgeState({ queue: { id: 99, queue_id: "gone", paths: ["/gone"] } });
    await (await postSync(mf, { states: [gone], removed: [] })).text();
    assert.equal((await get(`${PREFIX}/serving_pos/gone`)).status, 200);
    // A batch without the queue, or a removal naming another id, changes nothing.
    let r = await (await postSync(mf, { states: [], removed: [{ queue_id: "gone", id: 98 }] })).json();
    assert.deepEqual(r.removed, []);
    assert.equal((await get(`${PREFIX}/serving_pos/gone`)).status, 200);
    // A bare slug is not a removal any more: refused.
    const bare = await postSync(mf, { states: [], removed: ["gone"] });
    assert.equal(bare.status, 400);
    await bare.text();
    r = await (await postSync(mf, { states: [], removed: [{ queue_id: "gone", id: 99 }] })).json();
    assert.deepEqual(r.removed, [{ queue_id: "gone", id: 99 }]);
    assert.equal((await get(`${PREFIX}/serving_pos/gone`)).status, 400);
    // Its paths are held closed for a minute, not opened: a delete and re-create leaves no
    // moment unprotected; a late state of the removed queue does not bring it back.
    const closed = await get("/gone/x", { headers: { accept: "application/json" } });
    assert.equal(closed.status, 403);
    assert.equal((await closed.json()).error, "queue_closed");
    const late = await (await postSync(mf, { states: [{ ...gone, version: gone.version + 5 }], removed: [] })).json();
    assert.equal(late.ignored.length, 1);
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    const held = JSON.parse(await kv.get("index")).queues.find((q) => q.queue_id === "gone");
    assert.equal(held.mode, "closed");
    assert.ok(held.removed_at > 0);
  });
});

describe("deletes, re-creates and data loss at the edge", () => {
  const held = async (path) => {
    const r = await mf.dispatchFetch(`${BASE}${path}`, { headers: { accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    return { status: r.status, body, proxied: r.headers.get("x-origin") === "yes" };
  };

  test("a queue re-created under its slug replaces the old one at once, whatever the versions", async () => {
    const t = Date.now();
    const old = edgeState({ version: 5000, queue: { id: 300, queue_id: "again", paths: ["/again"], created_at: t - 60_000 } });
    await (await postSync(mf, { states: [old], removed: [] })).text();
    const oldTicket = sealTicket({ queue: 300, position: 3 });
    assert.equal((await get(`${PREFIX}/queue_pos/again/${oldTicket}`)).status, 200);
    // Deleted and re-created within one publisher poll, the removal notice lost: the new
    // queue's versions start low, and it still wins because it was created later.
    const fresh = edgeState({ version: 2, serving_pos: 0, queue: { id: 301, queue_id: "again", paths: ["/again"], created_at: t } });
    const r = await (await postSync(mf, { states: [fresh], removed: [] })).json();
    assert.deepEqual(r.applied, [{ queue_id: "again", version: 2 }]);
    const s = await (await get(`${PREFIX}/serving_pos/again`)).json();
    assert.equal(s.version, 2);
    assert.equal((await get(`${PREFIX}/queue_pos/again/${oldTicket}`)).status, 400, "old tickets belong to another queue");
    const newTicket = sealTicket({ queue: 301, position: 1 });
    assert.equal((await get(`${PREFIX}/queue_pos/again/${newTicket}`)).status, 200);
    // A late state of the old queue, even with a higher version, and a late removal of the
    // old id change nothing.
    const late = { ...old, version: 9000, published_at_ms: Date.now() };
    assert.equal((await (await postSync(mf, { states: [late], removed: [] })).json()).ignored.length, 1);
    const rm = await (await postSync(mf, { states: [], removed: [{ queue_id: "again", id: 300 }] })).json();
    assert.deepEqual(rm.removed, []);
    assert.equal((await (await get(`${PREFIX}/serving_pos/again`)).json()).version, 2);
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    assert.equal(JSON.parse(await kv.get("state/again")).queue.id, 301);
    assert.equal(JSON.parse(await kv.get("index")).queues.find((q) => q.queue_id === "again").id, 301);
  });

  test("an empty batch never opens a protected path", async () => {
    await (await postSync(mf, { states: [edgeState({ queue: { id: 310, queue_id: "kept", paths: ["/kept"] } })], removed: [] })).text();
    assert.equal((await held("/kept/x")).body.error, "queued");
    // What a coordinator whose Redis lost everything would send: nothing, or no states.
    await (await postSync(mf, { states: [], removed: [] })).text();
    await new Promise((r) => setTimeout(r, 1100)); // past the isolate cache, so KV is read again
    const after = await held("/kept/x");
    assert.equal(after.proxied, false);
    assert.equal(after.body.error, "queued");
  });

  test("a lost queue holds new visitors (fail closed) or opens (fail open); sessions go on", async () => {
    const closedQ = edgeState({ lost: true, queue: { id: 320, queue_id: "lost-c", paths: ["/lost-c"], fail_open: false } });
    const openQ = edgeState({ lost: true, queue: { id: 321, queue_id: "lost-o", paths: ["/lost-o"], fail_open: true } });
    await (await postSync(mf, { states: [closedQ, openQ], removed: [] })).text();
    const c = await held("/lost-c/x");
    assert.equal(c.status, 503);
    assert.equal(c.proxied, false);
    const token = signToken({ aud: "lost-c", jti: "320.1" });
    const withToken = await mf.dispatchFetch(`${BASE}/lost-c/x`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(withToken.headers.get("x-origin"), "yes", "an admitted visitor keeps the session");
    await withToken.text();
    const sp = await get(`${PREFIX}/serving_pos/lost-c`);
    assert.equal(sp.status, 503);
    assert.equal((await sp.json()).error, "queue_lost");
    const o = await held("/lost-o/x");
    assert.equal(o.proxied, true, "fail_open: everyone through");
    origin.seen.length = 0; // later tests count what reaches the origin from zero
  });
});

describe("tickets at the edge", () => {
  test("queue_pos: valid, foreign, tampered, pre-queue, lost and expired", async () => {
    const s = edgeState({
      serving_pos: 10, assigned: 50, published_at_ms: Date.now(),
      queue: { enable_queue_position_expiry: true, position_expiry_second: 60 },
      serving_history: [[3, nowSecs() - 200], [10, nowSecs() - 5]],
    });
    await (await postSync(mf, { states: [s], removed: [] })).text();
    const q = (t) => get(`${PREFIX}/queue_pos/concert/${t}`);
    let r = await q(sealTicket({ queue: 7, position: 42 }));
    assert.equal(r.status, 200);
    assert.deepEqual(polled(await r.json()), { position: 42, ahead: 32, eta: null, version: s.version, claim_by: null, claim_in_secs: null });
    // Just issued, beyond the synced `assigned`: the state is older than the ticket.
    r = await q(sealTicket({ queue: 7, position: 51 }));
    assert.equal(r.status, 200);
    await r.text();
    // Issued long before the state and still not in it: the storage lost it.
    r = await q(sealTicket({ queue: 7, position: 51, enteredAt: nowSecs() - 60 }));
    assert.equal(r.status, 404);
    await r.text();
    r = await q(sealTicket({ queue: 8, position: 4 }));
    assert.equal(r.status, 400);
    await r.text();
    const t = sealTicket({ queue: 7, position: 4 });
    r = await q(t.slice(0, -2) + (t.endsWith("AA") ? "BB" : "AA"));
    assert.equal(r.status, 400);
    await r.text();
    r = await q(sealTicket({ queue: 7, position: 4, key: { id: 3, secret: Buffer.alloc(32, 9) } }));
    assert.equal(r.status, 400);
    await r.text();
    r = await q(sealTicket({ queue: 7, position: 4, prequeue: true }));
    assert.equal(r.status, 404);
    await r.text();
    // Position 2 was passed 200 s ago, expiry 60 s.
    r = await q(sealTicket({ queue: 7, position: 2, enteredAt: nowSecs() - 300 }));
    assert.equal(r.status, 410);
    await r.text();
    r = await q("garbage");
    assert.equal(r.status, 400);
    await r.text();
  });

  test("generate_token is 202 at the edge while the place is not served (no coordinator call)", async () => {
    const s = edgeState({ serving_pos: 10 });
    await (await postSync(mf, { states: [s], removed: [] })).text();
    const r = await get(`${PREFIX}/generate_token`, form({ queue_id: "concert", request_id: sealTicket({ queue: 7, position: 11 }) }));
    assert.equal(r.status, 202);
    const body = await r.json();
    assert.equal(body.position, 11);
    assert.equal(body.serving_pos, 10);
    assert.equal(body.version, s.version);
  });

  test("generate_token for a served place goes to the coordinator: down means 503 + Retry-After", async () => {
    const r = await get(`${PREFIX}/generate_token`, form({ queue_id: "concert", request_id: sealTicket({ queue: 7, position: 9 }) }));
    assert.equal(r.status, 503);
    assert.ok(Number(r.headers.get("retry-after")) > 0);
    const body = await r.json();
    assert.equal(body.error, "coordinator_unavailable");
    assert.doesNotMatch(body.message, /127\.0\.0\.1|connect|refused/i);
  });

  test("bad forms: missing fields 400, wrong content type 415, huge body 413", async () => {
    let r = await get(`${PREFIX}/generate_token`, form({ queue_id: "concert" }));
    assert.equal(r.status, 400);
    await r.text();
    r = await get(`${PREFIX}/generate_token`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(r.status, 415);
    await r.text();
    r = await get(`${PREFIX}/assign_queue_pos`, form({ queue_id: "concert", pad: "x".repeat(10_000) }));
    assert.equal(r.status, 413);
    await r.text();
    r = await get(`${PREFIX}/assign_queue_pos`, form({ queue_id: "nope" }));
    assert.equal(r.status, 400);
    await r.text();
    r = await get(`${PREFIX}/assign_queue_pos`);
    assert.equal(r.status, 405);
    await r.text();
  });
});

describe("proof-of-work at the edge", () => {
  const IP = "198.51.100.23";
  const ipHeaders = { "cf-connecting-ip": IP };

  // A challenge made by the test itself with the edge key (expired or foreign on purpose).
  const craft = (opts = {}) => craftChallenge({ ip: IP, ...opts });

  before(async () => {
    await (await postSync(mf, { states: [edgeState({ queue: { pow_difficulty: 8 } })], removed: [] })).text();
  });

  test("the challenge route hands out fresh challenges for the queue's difficulty", async () => {
    const r = await get(`${PREFIX}/pow/challenge?queue_id=concert`, { headers: ipHeaders });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("cache-control"), "no-store");
    const a = await r.json();
    assert.equal(a.difficulty, 8);
    assert.equal(a.challenge.length, 62);
    assert.ok(a.expires_at > nowSecs() && a.expires_at <= nowSecs() + 121);
    const b = await (await get(`${PREFIX}/pow/challenge?queue_id=concert`, { headers: ipHeaders })).json();
    assert.notEqual(a.challenge, b.challenge);
    assert.equal((await get(`${PREFIX}/pow/challenge?queue_id=nope`)).status, 400);
    assert.equal((await get(`${PREFIX}/pow/challenge`)).status, 400);
  });

  test("missing, wrong, expired, foreign-queue and foreign-client solutions get 403 at the edge", async () => {
    const { challenge } = await (await get(`${PREFIX}/pow/challenge?queue_id=concert`, { headers: ipHeaders })).json();
    const good = pow.solve(challenge, 8);
    let wrong = good + 1;
    while (pow.digestHex(challenge, wrong).startsWith("00")) wrong++;
    const expired = craft({ expiresAt: nowSecs() - 1 });
    const foreign = craft({ queue: 8 });
    // The same codes as the coordinator's (shared::error).
    const cases = [
      [{}, /solution is required/, "pow_required"],
      [{ pow_challenge: challenge }, /solution is required/, "pow_required"],
      [{ pow_challenge: challenge, pow_counter: String(wrong) }, /solution is wrong/, "pow_invalid"],
      [{ pow_challenge: expired, pow_counter: String(pow.solve(expired, 8)) }, /expired/, "pow_expired"],
      [{ pow_challenge: foreign, pow_counter: String(pow.solve(foreign, 8)) }, /another queue/, "pow_invalid"],
      [{ pow_challenge: challenge.slice(0, 30) + (challenge[30] === "A" ? "B" : "A") + challenge.slice(31), pow_counter: String(good) }, /integrity|wrong/, "pow_invalid"],
    ];
    for (const [fields, message, code] of cases) {
      const r = await get(`${PREFIX}/assign_queue_pos`, form({ queue_id: "concert", ...fields }, ipHeaders));
      assert.equal(r.status, 403, JSON.stringify(fields));
      const body = await r.json();
      assert.equal(body.error, code);
      assert.match(body.message, message);
    }
    const other = await get(`${PREFIX}/assign_queue_pos`, form(
      { queue_id: "concert", pow_challenge: challenge, pow_counter: String(good) },
      { "cf-connecting-ip": "198.51.100.24" },
    ));
    assert.equal(other.status, 403);
    assert.match((await other.json()).message, /another client/);
  });

  test("an accepted solution passes the edge (coordinator down: 503 + Retry-After, not 403)", async () => {
    const { challenge } = await (await get(`${PREFIX}/pow/challenge?queue_id=concert`, { headers: ipHeaders })).json();
    const r = await get(`${PREFIX}/assign_queue_pos`, form({ queue_id: "concert", pow_challenge: challenge, pow_counter: String(pow.solve(challenge, 8)) }, ipHeaders));
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("retry-after"), "5");
    assert.equal((await r.json()).error, "coordinator_unavailable");
  });
});

describe("protected paths", () => {
  const shop = (path = "/shop/item?x=1", init = {}) => get(path, init);
  const bearer = (t, extra = {}) => ({ headers: { authorization: `Bearer ${t}`, ...extra } });

  before(async () => {
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429 } })], removed: [] })).text();
  });

  test("without a token: waiting room HTML with the queue's status and a same-origin return", async () => {
    const r = await shop("/shop/item?x=1");
    assert.equal(r.status, 429);
    assert.equal(r.headers.get("cache-control"), "no-store");
    // Never framed by another site; the default page loads only its own assets.
    assert.match(r.headers.get("content-security-policy"), /frame-ancestors 'none'/);
    assert.match(r.headers.get("content-security-policy"), /default-src 'none'; script-src 'self'/);
    assert.equal(r.headers.get("x-frame-options"), "DENY");
    const html = await r.text();
    assert.match(html, /data-queue="concert"/);
    assert.match(html, /data-return="\/shop\/item\?x=1"/);
    assert.match(html, /\/anteroom\/__anteroom\/assets\/app\.[0-9a-f]{12}\.js/);
    const j = await shop("/shop/item", { headers: { accept: "application/json" } });
    assert.equal(j.status, 429);
    const body = await j.json();
    assert.equal(body.queue_id, "concert");
    assert.equal(body.error, "queued");
    assert.equal(origin.seen.length, 0);
  });

  test("a non-GET request without a token gets a JSON 403", async () => {
    const r = await shop("/shop/cart", { method: "POST", body: "a=1", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, "token_required");
    assert.equal(origin.seen.length, 0);
  });

  test("a valid token is proxied with status, headers and body intact (bearer and cookie)", async () => {
    const t = signToken({ aud: "concert" });
    const r = await shop("/shop/created?q=2", { method: "POST", body: "payload=1", headers: { authorization: `Bearer ${t}`, "content-type": "text/plain" } });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get("x-origin"), "yes");
    assert.equal(r.headers.get("set-cookie"), "origin=1; Path=/");
    assert.deepEqual(await r.json(), { origin: true, method: "POST", url: "/shop/created?q=2" });
    const last = origin.seen.at(-1);
    assert.equal(last.body, "payload=1");
    const c = await shop("/shop/item", { headers: { cookie: `other=1; anteroom-concert=${t}` } });
    assert.equal(c.status, 200);
    assert.equal((await c.json()).url, "/shop/item");
    const h = await shop("/shop/item", { headers: { cookie: `__Host-anteroom-concert=${t}` } });
    assert.equal(h.status, 200);
    await h.text();
    // The site's own bearer token does not hide the visitor's cookie.
    const both = await shop("/shop/item", { headers: { authorization: "Bearer site-api-token", cookie: `anteroom-concert=${t}` } });
    assert.equal(both.status, 200);
    assert.equal(origin.seen.at(-1).headers.authorization, "Bearer site-api-token");
    await both.text();
  });

  test("Anteroom's cookies and headers stay at the edge unless the queue forwards its token", async () => {
    const t = signToken({ aud: "concert" });
    const ticket = sealTicket({ queue: 7, position: 3 });
    const cookie = `site=1; anteroom-ticket.concert=${ticket}; anteroom-concert=${t}; anteroom-other=x`;
    const send = async (headers) => {
      const r = await shop("/shop/item", { headers });
      assert.equal(r.status, 200);
      await r.text();
      return origin.seen.at(-1).headers;
    };
    let seen = await send({ cookie, "x-anteroom-ticket": ticket, "x-anteroom-client": "1.2.3.4|1|x" });
    assert.equal(seen.cookie, "site=1");
    assert.equal(seen["x-anteroom-ticket"], undefined);
    assert.equal(seen["x-anteroom-client"], undefined);
    seen = await send({ authorization: `Bearer ${t}` });
    assert.equal(seen.authorization, undefined, "the admitting token came as Authorization");
    // A queue whose origin checks tokens itself gets the admitting token, nothing else.
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429, forward_token: true } })], removed: [] })).text();
    seen = await send({ cookie, "x-anteroom-ticket": ticket });
    assert.equal(seen.cookie, `site=1; anteroom-concert=${t}`);
    assert.equal(seen["x-anteroom-ticket"], undefined);
    seen = await send({ authorization: `Bearer ${t}` });
    assert.equal(seen.authorization, `Bearer ${t}`);
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429 } })], removed: [] })).text();
  });

  test("the origin's body is streamed, not buffered", async () => {
    // `identity`: with gzip accepted, workerd compresses text and buffers it to do so.
    const r = await shop("/shop/stream", bearer(signToken({ aud: "concert" }), { "accept-encoding": "identity" }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("x-origin"), "stream");
    const reader = r.body.getReader();
    const timeout = new Promise((resolve) => setTimeout(() => resolve("timed out"), 5000));
    const first = await Promise.race([reader.read(), timeout]);
    origin.release();
    assert.notEqual(first, "timed out", "first chunk did not arrive while the origin held the rest");
    // Arrived while the origin still held the rest.
    assert.equal(new TextDecoder().decode(first.value), "first chunk\n");
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.equal(rest, "second chunk\n");
  });

  test("forged, expired, not-yet-valid, wrong-queue, wrong-issuer and alg:none tokens get the waiting room", async () => {
    const now = nowSecs();
    const forged = signToken({ aud: "concert" }, { signer: OTHER_SIGNER, header: { kid: SIGNER.kid } });
    const [h, p] = signToken({ aud: "concert" }).split(".");
    const none = `${b64(JSON.stringify({ alg: "none", typ: "JWT", kid: SIGNER.kid }))}.${p}.`;
    const tampered = `${h}.${b64(JSON.stringify({ ...JSON.parse(Buffer.from(p, "base64url")), aud: "concert", qpos: 0 }))}.${signToken({}).split(".")[2]}`;
    const cases = {
      forged, none, tampered,
      unknownKid: signToken({ aud: "concert" }, { signer: OTHER_SIGNER }),
      expired: signToken({ aud: "concert", iat: now - 600, nbf: now - 600, exp: now - 60 }),
      notYet: signToken({ aud: "concert", iat: now + 600, nbf: now + 600, exp: now + 900 }),
      wrongQueue: signToken({ aud: "other" }),
      wrongIssuer: signToken({ aud: "concert", iss: "evil" }),
      garbage: "a.b.c",
    };
    const before = origin.seen.length;
    for (const [name, t] of Object.entries(cases)) {
      const r = await shop("/shop/item", bearer(t));
      assert.equal(r.status, 429, name);
      assert.match(await r.text(), /data-queue="concert"/, name);
    }
    assert.equal(origin.seen.length, before);
  });

  test("the page script's rules give the texts the Rust side renders (shared vectors)", () => {
    const rules = require("../edge-worker/assets/app.js");
    const table = require("../shared/test-vectors/page-rules.json");
    for (const c of table.eta) {
      const S = table.strings[c.lang];
      const t = (key, n) => (S[key] || key).replace("{n}", n);
      assert.equal(rules.etaText(t, c.ahead, c.eta), c.text, JSON.stringify(c));
    }
    for (const c of table.safe_return) assert.equal(rules.safeReturn(c.path), c.safe, JSON.stringify(c.path.slice(0, 40)));
    for (const c of table.presentation) {
      assert.equal(rules.what(c.logo_text, c.display_name), c.what, JSON.stringify(c));
      assert.equal(rules.pageTitle("You are in the queue", c.what), c.title, JSON.stringify(c));
    }
    for (const c of table.notice) assert.equal(rules.noticeText(c.notice, c.lang), c.text, JSON.stringify(c));
    assert.ok(table.eta.length >= 18 && table.safe_return.length >= 12);
    assert.ok(table.presentation.length >= 5 && table.notice.length >= 8);
  });

  test("the revocation set encodes as shared/src/positions.rs does (shared vectors)", () => {
    const vectors = require("../shared/test-vectors/positions.json");
    for (const v of vectors) assert.equal(positionSet(v.positions), v.encoded, JSON.stringify(v.positions));
  });

  test("a revoked session is refused even after its token was cached as valid", async () => {
    const t = signToken({ aud: "concert", jti: "7.77" });
    const ok = await shop("/shop/item", bearer(t));
    assert.equal(ok.status, 200);
    await ok.text();
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429 }, revoked: positionSet([77]) })], removed: [] })).text();
    const r = await shop("/shop/item", bearer(t));
    assert.equal(r.status, 429);
    await r.text();
  });

  test("every ended session stays refused at any volume; a token of another incarnation too", async () => {
    // 50,000 ended sessions with one in ten still live (more than the old limit of 1,000
    // many times over): the first one ended, the last one, and none of the live ones.
    const ended = [];
    for (let p = 1; ended.length < 50_000; p++) if (p % 10 !== 0) ended.push(p);
    const revoked = positionSet(ended);
    assert.ok(revoked.length < 16_000, `${revoked.length} bytes`);
    const body = { states: [edgeState({ queue: { waiting_status: 429 }, revoked })], removed: [] };
    await (await postSync(mf, body)).text();
    const admitted = async (jti) => {
      const r = await shop("/shop/item", bearer(signToken({ aud: "concert", jti })));
      await r.text();
      return r.status === 200;
    };
    assert.equal(await admitted("7.1"), false, "the first ended session");
    assert.equal(await admitted(`7.${ended[ended.length - 1]}`), false, "the last ended session");
    assert.equal(await admitted("7.10"), true, "a live session");
    assert.equal(await admitted(`7.${ended[ended.length - 1] + 1}`), true, "a later session");
    // Same slug, same signing key, but a session of another queue id: a deleted queue's
    // token does not open the queue re-created under its slug.
    assert.equal(await admitted("8.10"), false);
    assert.equal(await admitted("not-a-session"), false);
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429 } })], removed: [] })).text();
  });

  test("a forged token costs one signature check, then is refused from the cache", async () => {
    const good = signToken({ aud: "concert" });
    const [h, p, sig] = good.split(".");
    const forged = `${h}.${p}.${sig.startsWith("A") ? "B" : "A"}${sig.slice(1)}`;
    for (let i = 0; i < 3; i++) {
      const r = await shop("/shop/item", bearer(forged));
      assert.equal(r.status, 429);
      await r.text();
    }
  });

  test("a key removed from the JWKS stops admitting cached tokens", async () => {
    const t = signToken({ aud: "concert" });
    assert.equal((await (await shop("/shop/item", bearer(t))).text()).length > 0, true);
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429 }, jwks: { keys: [jwk(OTHER_SIGNER)] } })], removed: [] })).text();
    const r = await shop("/shop/item", bearer(t));
    assert.equal(r.status, 429);
    await r.text();
    await (await postSync(mf, { states: [edgeState({ queue: { waiting_status: 429 } })], removed: [] })).text();
  });

  test("bypass patterns and unprotected paths go straight to the origin", async () => {
    for (const path of ["/shop/webhooks/stripe", "/shop/logo.png", "/about", "/shopping"]) {
      const r = await shop(path, { method: path.includes("webhooks") ? "POST" : "GET", body: path.includes("webhooks") ? "{}" : undefined });
      assert.equal(r.status, 200, path);
      assert.equal((await r.json()).url, path);
    }
  });

  test("passthrough and closed modes; fail-open and fail-closed with no state", async () => {
    await (await postSync(mf, { states: [
      edgeState({ queue: { id: 20, queue_id: "open-q", paths: ["/open"], mode: "passthrough" } }),
      edgeState({ queue: { id: 21, queue_id: "closed-q", paths: ["/closed"], mode: "closed" } }),
      edgeState({ queue: { id: 22, queue_id: "fo", paths: ["/fo"], fail_open: true } }),
      edgeState({ queue: { id: 23, queue_id: "fc", paths: ["/fc"], fail_open: false } }),
    ], removed: [] })).text();
    let r = await shop("/open/page");
    assert.equal(r.status, 200);
    assert.equal((await r.json()).url, "/open/page");
    r = await shop("/closed/page");
    assert.equal(r.status, 403);
    assert.match(await r.text(), /closed/i);
    r = await shop("/closed/page", { headers: { accept: "application/json" } });
    assert.equal((await r.json()).error, "queue_closed");
    // No proof-of-work challenge for a closed queue: nothing to join.
    r = await get(`${PREFIX}/pow/challenge?queue_id=closed-q`);
    assert.equal(r.status, 403);
    assert.equal((await r.json()).error, "queue_closed");
    // The index knows fo and fc, but their states vanish from KV (e.g. not written yet).
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    await kv.delete("state/fo");
    await kv.delete("state/fc");
    // Once the isolate's 1 s cache lapses, KV has no state for them.
    const fo = await until(async () => {
      const res = await mf.dispatchFetch(`${BASE}/fo/x`);
      // The origin answers JSON; the waiting room (status 200 for this queue) HTML.
      const proxied = res.status === 200 && res.headers.get("x-origin") === "yes";
      return proxied ? res : void (await res.arrayBuffer());
    }, { ms: 5000, what: "fail-open queue proxied" });
    assert.equal((await fo.json()).url, "/fo/x");
    const fc = await until(async () => {
      const res = await mf.dispatchFetch(`${BASE}/fc/x`);
      return res.status === 503 ? res : void (await res.arrayBuffer());
    }, { ms: 5000, what: "fail-closed queue answering 503" });
    assert.equal(fc.headers.get("retry-after"), "5");
    await fc.text();
    r = await get(`${PREFIX}/serving_pos/fc`);
    assert.equal(r.status, 503);
    await r.text();
  });
});

describe("assets and the room page", () => {
  test("hashed assets are immutable, the page is no-store, unknown assets 404", async () => {
    const page = await get(`${PREFIX}/__anteroom/room?queue_id=concert&return_to=/shop/item`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("cache-control"), "no-store");
    const html = await page.text();
    const names = [...html.matchAll(/__anteroom\/assets\/([a-z]+\.[0-9a-f]{12}\.(?:js|css))/g)].map((m) => m[1]);
    assert.equal(new Set(names).size, 3, html);
    for (const name of names) {
      const a = await get(`${PREFIX}/__anteroom/assets/${name}`);
      assert.equal(a.status, 200);
      assert.equal(a.headers.get("cache-control"), "public, max-age=31536000, immutable");
      const text = await a.text();
      const hash = createHash("sha256").update(text).digest("hex").slice(0, 12);
      assert.ok(name.includes(hash), `${name} named after its content`);
    }
    assert.equal((await get(`${PREFIX}/__anteroom/assets/app.000000000000.js`)).status, 404);
    assert.equal((await get(`${PREFIX}/nothing-here`)).status, 404);
  });

  test("return_to never leaves the site", async () => {
    for (const evil of ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]) {
      const r = await get(`${PREFIX}/__anteroom/room?queue_id=concert&return_to=${encodeURIComponent(evil)}`);
      assert.match(await r.text(), /data-return="\/"/, evil);
    }
    const r = await get(`${PREFIX}/__anteroom/room?queue_id=concert&return_to=${encodeURIComponent('/a"><script>')}`);
    const html = await r.text();
    assert.doesNotMatch(html, /"><script>/);
  });

  test("the solver script served to browsers solves the shared vectors", async () => {
    const page = await (await get(`${PREFIX}/__anteroom/room?queue_id=concert`)).text();
    const name = page.match(/assets\/(pow\.[0-9a-f]{12}\.js)/)[1];
    const src = await (await get(`${PREFIX}/__anteroom/assets/${name}`)).text();
    const sandbox = {};
    new Function("self", src)(sandbox);
    const vectors = require("../shared/test-vectors/pow.json");
    for (const v of vectors) assert.equal(sandbox.AnteroomPow.solve(v.challenge, v.difficulty), v.counter);
  });
});

describe("errors never leak", () => {
  test("a missing secret is a generic 500, its cause only in the log", async () => {
    const bare = await startWorker({ EDGE_KEY: "" });
    try {
      const r = await postSync(bare, { states: [], removed: [] });
      assert.equal(r.status, 500);
      const body = await r.json();
      assert.deepEqual(Object.keys(body).sort(), ["error", "message"]);
      assert.equal(body.error, "internal");
      assert.doesNotMatch(body.message, /EDGE_KEY|hex/);
    } finally {
      await bare.dispose();
    }
  });
});

describe("an empty prefix gives the contract's exact paths", () => {
  test("status at /serving_pos, the room under /__anteroom, everything else protected", async () => {
    const bare = await startWorker({ PREFIX: "", ORIGIN_URL: origin.url });
    try {
      const s = edgeState({ serving_pos: 4 });
      const body = JSON.stringify({ states: [s] });
      const ts = Date.now();
      const sync = await bare.dispatchFetch(`${BASE}/__anteroom/sync`, {
        method: "POST",
        headers: { "x-anteroom-timestamp": String(ts), "x-anteroom-signature": signSync(body, ts) },
        body,
      });
      assert.equal(sync.status, 200, await sync.clone().text());
      await sync.text();
      const sp = await bare.dispatchFetch(`${BASE}/serving_pos/concert`);
      assert.deepEqual(polled(await sp.json()), { position: 4, version: s.version });
      const room = await bare.dispatchFetch(`${BASE}/__anteroom/room?queue_id=concert`);
      assert.match(await room.text(), /src="\/__anteroom\/assets\/app\.[0-9a-f]{12}\.js"/);
      const shop = await bare.dispatchFetch(`${BASE}/shop/x`, { method: "HEAD" });
      assert.equal(shop.status, 200);
      assert.match(shop.headers.get("content-type"), /text\/html/);
      const other = await bare.dispatchFetch(`${BASE}/elsewhere`);
      assert.equal((await other.json()).url, "/elsewhere");
    } finally {
      await bare.dispose();
    }
  });
});

describe("isolate cache", () => {
  test("a newer state written to KV elsewhere is seen once the 1 s cache lapses", async () => {
    const s = edgeState({ queue: { id: 40, queue_id: "cache-q", paths: ["/cache-q"] }, serving_pos: 1 });
    await (await postSync(mf, { states: [s], removed: [] })).text();
    assert.equal((await (await get(`${PREFIX}/serving_pos/cache-q`)).json()).position, 1);
    // Another PoP's sync: KV changes, this isolate was not told.
    const kv = await mf.getKVNamespace("ANTEROOM_KV");
    const t0 = Date.now();
    await kv.put("state/cache-q", JSON.stringify({ ...s, version: s.version + 1, serving_pos: 2 }));
    await until(async () => (await (await get(`${PREFIX}/serving_pos/cache-q`)).json()).position === 2, { ms: 5000, every: 20, what: "newer state seen" });
    const ms = Date.now() - t0;
    assert.ok(ms <= 1500, `took ${ms} ms`);
  });
});

describe("visitors known by their ticket: server-rendered room, JSON mode, no-JS forms, templates", () => {
  const cookie = (t) => ({ cookie: `anteroom-ticket.concert=${t}` });
  const sync = async (queue = {}, extra = {}) => {
    const s = edgeState({
      serving_pos: 10, assigned: 50, queue: { enable_queue_position_expiry: true, position_expiry_second: 60, ...queue },
      serving_history: [[3, nowSecs() - 200], [10, nowSecs() - 5]], ...extra,
    });
    await (await postSync(mf, { states: [s], removed: [] })).text();
    return s;
  };

  test("a served ticket learns its deadline to claim; a waiting one has none", async () => {
    const s = await sync();
    const r = await get(`${PREFIX}/queue_pos/concert/${sealTicket({ queue: 7, position: 8, enteredAt: nowSecs() - 100 })}`);
    const body = polled(await r.json());
    assert.equal(body.ahead, 0);
    // Position 8 was passed when the serving position reached 10, 5 s ago; expiry 60 s plus
    // the 2 s freshness grace: the last second a claim is accepted is 61 s after the passing.
    assert.ok(Math.abs(body.claim_by - (nowSecs() - 5 + 61)) <= 1, JSON.stringify(body));
    assert.ok(body.claim_in_secs >= 54 && body.claim_in_secs <= 57, JSON.stringify(body));
    assert.equal(body.version, s.version);
  });

  test("the page shows the place of the ticket in the cookie, server-rendered; JSON mode gives the same fields", async () => {
    await sync();
    const t = sealTicket({ queue: 7, position: 42 });
    const r = await get("/shop/item", { headers: cookie(t) });
    assert.equal(r.status, 200);
    const html = await r.text();
    assert.match(html, /data-state="waiting"/);
    assert.match(html, new RegExp(`data-ticket="${t}"`));
    assert.match(html, /<dd id="anteroom-position">42<\/dd>/);
    assert.match(html, /<dd id="anteroom-ahead">32<\/dd>/);
    assert.match(html, /32 ahead of you/);
    assert.doesNotMatch(html, /<section id="anteroom-place" hidden>/);
    // Without JavaScript the page reloads at the poll interval (5 s at 32 ahead, jittered).
    const refresh = Number(html.match(/http-equiv="refresh" content="(\d+)"/)[1]);
    assert.ok(refresh >= 5 && refresh <= 6, `refresh ${refresh}`);
    for (const headers of [{ accept: "application/json", "x-anteroom-ticket": t }, { accept: "application/json", ...cookie(t) }]) {
      const j = await get("/shop/item", { headers });
      assert.equal(j.status, 200);
      const body = await j.json();
      assert.equal(body.state, "waiting");
      assert.equal(body.position, 42);
      assert.equal(body.ahead, 32);
      assert.equal(body.claim_by, null);
      assert.equal(body.queue_id, "concert");
      // 32 ahead: polled every 2 s, jittered by up to 20%.
      assert.ok(body.next_poll_ms >= 1600 && body.next_poll_ms <= 2400, JSON.stringify(body));
    }
    // No ticket: where to join.
    const fresh = await (await get("/shop/item", { headers: { accept: "application/json" } })).json();
    assert.equal(fresh.state, "new");
    assert.equal(fresh.join, `${PREFIX}/assign_queue_pos`);
    assert.equal(fresh.position, undefined);
  });

  test("a served ticket sees its turn and the claim form; an expired one is told so and loses the cookie", async () => {
    await sync();
    const ready = await (await get("/shop/item", { headers: cookie(sealTicket({ queue: 7, position: 8, enteredAt: nowSecs() - 100 })) })).text();
    assert.match(ready, /data-state="ready"/);
    assert.match(ready, /It&#39;s your turn!|It's your turn!/);
    assert.match(ready, /Continue within \d+ s to keep your place/);
    assert.match(ready, new RegExp(`<form method="post" action="${PREFIX}/__anteroom/claim">`));
    const r = await get("/shop/item", { headers: cookie(sealTicket({ queue: 7, position: 2, enteredAt: nowSecs() - 300 })) });
    const html = await r.text();
    assert.match(html, /data-state="expired"/);
    assert.match(html, /Your place has expired/);
    assert.match(html, /data-ticket=""/);
    assert.deepEqual(r.headers.getSetCookie(), ["__Host-anteroom-ticket.concert=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"]);
  });

  test("a forged or foreign ticket cookie is a new visitor, with no place shown", async () => {
    await sync();
    const t = sealTicket({ queue: 7, position: 42 });
    for (const bad of [t.slice(0, -2) + (t.endsWith("AA") ? "BB" : "AA"), sealTicket({ queue: 8, position: 4 }), "garbage"]) {
      const html = await (await get("/shop/item", { headers: cookie(bad) })).text();
      assert.match(html, /data-state="new"/);
      assert.match(html, /data-ticket=""/);
      assert.match(html, /<section id="anteroom-place" hidden>/);
    }
  });

  test("without JavaScript: join is offered only where the operator waives the proof-of-work", async () => {
    await sync({ pow_difficulty: 12 });
    let html = await (await get("/shop/item")).text();
    assert.doesNotMatch(html, /__anteroom\/join/);
    assert.match(html, /needs JavaScript/);
    let j = await get(`${PREFIX}/__anteroom/join`, form({ queue_id: "concert", return_to: "/shop/item" }));
    assert.equal(j.status, 403);
    assert.match(await j.text(), /needs JavaScript/);
    await sync({ pow_difficulty: 12, allow_no_js: true });
    html = await (await get("/shop/item")).text();
    assert.match(html, new RegExp(`<form method="post" action="${PREFIX}/__anteroom/join">`));
    assert.match(html, /<input type="hidden" name="return_to" value="\/shop\/item">/);
    // Another site cannot make the visitor's browser join (or claim).
    for (const action of ["join", "claim"]) {
      j = await get(`${PREFIX}/__anteroom/${action}`, form({ queue_id: "concert", return_to: "/shop/item" }, { origin: "https://evil.example" }));
      assert.equal(j.status, 403, action);
      assert.equal((await j.json()).error, "cross_site");
    }
    // A visitor already holding a place keeps it: no coordinator call (it is absent here).
    j = await get(`${PREFIX}/__anteroom/join`, { ...form({ queue_id: "concert", return_to: "/shop/item" }, { ...cookie(sealTicket({ queue: 7, position: 42 })), origin: BASE }), redirect: "manual" });
    assert.equal(j.status, 303);
    assert.equal(j.headers.get("location"), "/shop/item");
    assert.deepEqual(j.headers.getSetCookie(), []);
    await j.text();
  });

  test("an operator's template replaces the page, with the edge's values escaped", async () => {
    await sync({}, { template: "<!doctype html><title>{{title}}</title><p id=p>{{position}}/{{ahead}} {{state}} {{ queue }}</p>{{script}}" });
    const t = sealTicket({ queue: 7, position: 42 });
    const html = await (await get("/shop/item", { headers: { ...cookie(t), "accept-language": "zh-CN" } })).text();
    assert.match(html, /^<!doctype html><title>您正在排队<\/title><p id=p>42\/32 waiting concert<\/p><script src="[^"]+app\.[0-9a-f]{12}\.js" defer><\/script>$/);
    // Notices that are not about a place keep the default page.
    await sync({ mode: "closed" }, { template: "<p>custom</p>" });
    const closed = await (await get("/shop/item")).text();
    assert.doesNotMatch(closed, /custom/);
    assert.match(closed, /closed/);
  });

  test("the default page says what the visitor waits for and shows the operator's message, escaped; polls carry them", async () => {
    const presentation = {
      display_name: "The Night <Orchestra>", logo_text: "Riverside Tickets",
      notice: { en: "Doors open at 8 & \"not before\"", zh: "" },
    };
    await sync({}, { presentation });
    const t = sealTicket({ queue: 7, position: 42 });
    for (const lang of ["en", "zh-CN"]) {
      const html = await (await get("/shop/item", { headers: { ...cookie(t), "accept-language": lang } })).text();
      assert.match(html, /<title>(You are in the queue|您正在排队) · Riverside Tickets: The Night &lt;Orchestra&gt;<\/title>/, lang);
      assert.match(html, /<header id="anteroom-brand" class="brand" ><p id="anteroom-logo" class="logo">Riverside Tickets<\/p><p id="anteroom-name" class="name">The Night &lt;Orchestra&gt;<\/p><\/header>/, lang);
      // No Chinese text: both pages show the English one.
      assert.match(html, /<p id="anteroom-notice" class="notice" role="status" aria-live="polite" >Doors open at 8 &amp; &quot;not before&quot;<\/p>/, lang);
      assert.doesNotMatch(html, /<Orchestra>/);
    }
    const body = polled(await (await get(`${PREFIX}/queue_pos/concert/${t}`)).json());
    assert.deepEqual([body.display_name, body.logo_text, body.notice], [presentation.display_name, presentation.logo_text, presentation.notice]);
    const app = await (await get("/shop/item", { headers: { accept: "application/json", ...cookie(t) } })).json();
    assert.deepEqual(app.notice, presentation.notice);
    // Cleared (a state without them): hidden on the page, absent from the answers.
    await sync();
    const html = await (await get("/shop/item", { headers: cookie(t) })).text();
    assert.match(html, /<header id="anteroom-brand" class="brand" hidden>/);
    assert.match(html, /<p id="anteroom-notice" class="notice" role="status" aria-live="polite" hidden><\/p>/);
    assert.match(html, /<title>You are in the queue<\/title>/);
    const bare = polled(await (await get(`${PREFIX}/queue_pos/concert/${t}`)).json());
    assert.deepEqual(["display_name", "logo_text", "notice"].filter((k) => k in bare), []);
  });
});
