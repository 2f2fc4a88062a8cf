// End to end: the built worker under Miniflare (listening on a loopback port), the real
// coordinator (target/debug/coordinator) publishing to it, and a real redis-server, all started
// here on free ports. No mocks. Between the worker and the coordinator sits a counting
// pass-through proxy, so the test can say how many requests reached the coordinator.
//
// Also prints the measurements the edge issue asks for (sync staleness, coordinator requests
// caused by 10,000 status polls) as `# measure:` lines.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { PREFIX, STACK_ADMIN_KEY, startCountingProxy, startOrigin, startStack, until } from "./helpers.mjs";

const require = createRequire(import.meta.url);
const pow = require("../edge-worker/assets/pow.js");
const PUBLISH_MS = 2000; // the coordinator's default
const IP = "192.0.2.50";

let stack, proxy, mf, origin;
let edge, publicUrl;

const admin = (path, init = {}) => fetch(`${stack.adminUrl}${path}`, {
  ...init, headers: { authorization: `Bearer ${STACK_ADMIN_KEY}`, ...(init.headers ?? {}) },
});
const formBody = (fields) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": IP },
  body: new URLSearchParams(fields).toString(),
});
const atEdge = (path, init) => mf.dispatchFetch(`${edge}${path}`, init);

async function solvedForm(queueId) {
  const ch = await (await atEdge(`${PREFIX}/pow/challenge?queue_id=${queueId}`, { headers: { "cf-connecting-ip": IP } })).json();
  const fields = { queue_id: queueId };
  if (ch.difficulty > 0) {
    fields.pow_challenge = ch.challenge;
    fields.pow_counter = String(pow.solve(ch.challenge, ch.difficulty));
  }
  return fields;
}

describe("edge + coordinator + redis", () => {
  before(async () => {
    origin = await startOrigin();
    stack = await startStack({
      originUrl: origin.url,
      coordinatorEnv: { ANTEROOM_PUBLISH_INTERVAL_MS: String(PUBLISH_MS) },
      coordinatorUrl: async (s) => (proxy = await startCountingProxy(s.publicUrl)).url,
    });
    ({ mf, edge, publicUrl } = stack);
    await stack.createQueue({
      queue_id: "live", token_validity_second: 300, enable_queue_position_expiry: false,
      position_expiry_second: 900, paths: ["/shop"], bypass: ["/shop/webhooks"], pow_difficulty: 8,
      waiting_status: 202,
    });
  });

  after(async () => {
    await stack?.stop();
    await proxy?.close();
    await origin?.close();
    if (process.env.E2E_VERBOSE) console.log(stack?.logs["coordinator-0"]?.());
  });

  let ticket;

  test("enqueue through the edge with proof-of-work; the place is then known at the edge", async () => {
    const r = await atEdge(`${PREFIX}/assign_queue_pos`, formBody(await solvedForm("live")));
    assert.equal(r.status, 200, await r.clone().text());
    ticket = await r.json();
    assert.equal(typeof ticket.request_id, "string");
    const q = await atEdge(`${PREFIX}/queue_pos/live/${ticket.request_id}`);
    assert.equal(q.status, 200);
    assert.equal((await q.json()).position, ticket.position);
  });

  test("a replayed solution passes the edge but the coordinator refuses it", async () => {
    const fields = await solvedForm("live");
    const first = await atEdge(`${PREFIX}/assign_queue_pos`, formBody(fields));
    assert.equal(first.status, 200);
    await first.text();
    const before = proxy.counts.get("/assign_queue_pos");
    const again = await atEdge(`${PREFIX}/assign_queue_pos`, formBody(fields));
    assert.equal(again.status, 403);
    assert.equal((await again.json()).error, "pow_replayed");
    assert.equal(proxy.counts.get("/assign_queue_pos"), before + 1, "the replay reached the coordinator");
  });

  test("a wrong solution never reaches the coordinator", async () => {
    const before = proxy.total();
    const fields = await solvedForm("live");
    let bad = Number(fields.pow_counter) + 1;
    while (pow.digestHex(fields.pow_challenge, bad).startsWith("00")) bad++;
    const r = await atEdge(`${PREFIX}/assign_queue_pos`, formBody({ ...fields, pow_counter: String(bad) }));
    assert.equal(r.status, 403);
    await r.text();
    assert.equal(proxy.total(), before);
  });

  test("a serving-position change reaches the edge; token claimed; protected path proxied", async () => {
    let g = await atEdge(`${PREFIX}/generate_token`, formBody({ queue_id: "live", request_id: ticket.request_id }));
    assert.equal(g.status, 202);
    await g.text();
    const served = await admin("/api/queue/increment_serving_position", {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ queue_id: "live", increment_by: String(ticket.position) }).toString(),
    });
    assert.equal(served.status, 200);
    const target = (await served.json()).serving_pos;
    await until(async () => (await (await atEdge(`${PREFIX}/serving_pos/live`)).json()).position >= target, { what: "serving position at the edge" });
    g = await atEdge(`${PREFIX}/generate_token`, formBody({ queue_id: "live", request_id: ticket.request_id }));
    assert.equal(g.status, 200, await g.clone().text());
    const cookies = g.headers.getSetCookie();
    const tok = await g.json();
    // The token cookie, and the ticket cookie cleared: the place is used up.
    assert.equal(cookies.length, 2, cookies.join(" | "));
    const cookie = cookies.find((c) => c.startsWith("anteroom-live="));
    assert.match(cookie, /^anteroom-live=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    assert.ok(cookies.includes("anteroom-ticket.live=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"), cookies.join(" | "));
    const p = await atEdge("/shop/page?x=1", { headers: { cookie: cookie.split(";")[0] } });
    assert.equal(p.status, 200);
    assert.equal((await p.json()).url, "/shop/page?x=1");
    const b = await atEdge("/shop/page", { headers: { authorization: `Bearer ${tok.access_token}` } });
    assert.equal(b.status, 200);
    await b.text();
    const none = await atEdge("/shop/page");
    assert.equal(none.status, 202);
    await none.text();
  });

  test("over https the token cookie is __Host- and Secure; an ended session is refused at the edge", async () => {
    const fields = await solvedForm("live");
    const a = await atEdge(`${PREFIX}/assign_queue_pos`, formBody(fields));
    const t = await a.json();
    const served = await admin("/api/queue/increment_serving_position", {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ queue_id: "live", increment_by: "5" }).toString(),
    });
    const target = (await served.json()).serving_pos;
    assert.ok(target >= t.position);
    await until(async () => (await (await atEdge(`${PREFIX}/serving_pos/live`)).json()).position >= target, { what: "serving position at the edge" });
    const g = await mf.dispatchFetch(`https://shop.example${PREFIX}/generate_token`, formBody({ queue_id: "live", request_id: t.request_id }));
    assert.equal(g.status, 200);
    const cookie = g.headers.getSetCookie().find((c) => c.startsWith("__Host-anteroom-live="));
    assert.match(cookie, /^__Host-anteroom-live=[^;]+; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax$/);
    assert.doesNotMatch(cookie, /Domain=/i);
    const pair = cookie.split(";")[0];
    const page = () => mf.dispatchFetch("https://shop.example/shop/account", { headers: { cookie: pair } });
    const ok = await page();
    assert.equal(ok.status, 200);
    await ok.text();
    const ended = await admin("/api/queue/update_token_status", {
      method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ queue_id: "live", request_id: t.request_id, status: "1" }).toString(),
    });
    assert.equal(ended.status, 200, await ended.clone().text());
    // The revocation list reaches the edge with the next publish and beats the token cache.
    await until(async () => {
      const r = await page();
      await r.text();
      return r.status === 202;
    }, { what: "completed session refused at the edge" });
  });

  test("measure: sync staleness of serving-position changes (p50/p99)", async () => {
    const samples = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await admin("/api/queue/increment_serving_position", {
        method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ queue_id: "live", increment_by: "1" }).toString(),
      });
      const want = (await r.json()).serving_pos;
      await until(async () => (await (await atEdge(`${PREFIX}/serving_pos/live`)).json()).position >= want, { every: 10, what: "serving position" });
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
    console.log(`# measure: sync staleness over ${samples.length} changes: p50 ${pct(50).toFixed(0)} ms, p99 ${pct(99).toFixed(0)} ms (publish interval ${PUBLISH_MS} ms + isolate cache 1000 ms)`);
    assert.ok(pct(99) <= PUBLISH_MS + 1000 + 300, `p99 ${pct(99)} ms`);
  });

  test("measure: 10,000 status polls cause no coordinator request", async () => {
    const before = proxy.total();
    const paths = [`${PREFIX}/serving_pos/live`, `${PREFIX}/waiting_num/live`, `${PREFIX}/queue_pos/live/${ticket.request_id}`];
    let ok = 0;
    const t0 = performance.now();
    for (let i = 0; i < 10_000; i += 50) {
      const statuses = await Promise.all(Array.from({ length: 50 }, async (_, j) => {
        const r = await atEdge(paths[(i + j) % 3]);
        await r.text();
        return r.status;
      }));
      ok += statuses.filter((s) => s === 200).length;
    }
    const ms = performance.now() - t0;
    const caused = proxy.total() - before;
    console.log(`# measure: 10000 status polls at the edge: ${ok} answered 200 in ${ms.toFixed(0)} ms, ${caused} coordinator requests`);
    assert.equal(ok, 10_000);
    assert.equal(caused, 0);
  });

  test("coordinator killed: status and protected paths still served, enqueue 503 + Retry-After", async () => {
    const g = await atEdge(`${PREFIX}/generate_token`, formBody({ queue_id: "live", request_id: ticket.request_id }));
    const tok = (await g.json()).access_token;
    stack.killCoordinator(0);
    await until(async () => {
      try { await fetch(`${publicUrl}/healthz`); return false; } catch { return true; }
    }, { what: "coordinator down" });
    const s = await atEdge(`${PREFIX}/serving_pos/live`);
    assert.equal(s.status, 200);
    await s.text();
    const q = await atEdge(`${PREFIX}/queue_pos/live/${ticket.request_id}`);
    assert.equal(q.status, 200);
    await q.text();
    const p = await atEdge("/shop/page", { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(p.status, 200);
    await p.text();
    const a = await atEdge(`${PREFIX}/assign_queue_pos`, formBody(await solvedForm("live")));
    assert.equal(a.status, 503);
    assert.ok(Number(a.headers.get("retry-after")) > 0);
    assert.equal((await a.json()).error, "coordinator_unavailable");
    // Back up: tickets and tokens issued before still work, publishing resumes.
    await stack.startCoordinator(0);
    const again = await atEdge(`${PREFIX}/assign_queue_pos`, formBody(await solvedForm("live")));
    assert.equal(again.status, 200);
    await again.text();
  });
});
