// Spellings of protected paths against the worker in workerd: every case of
// shared/test-vectors/paths.json (the same table the Rust unit test in shared/src/path.rs
// checks) is sent as a raw HTTP request line to the worker's socket, so no client library
// normalises it first, and must be held by the right queue, reach the origin, or be refused.
// Also: one queue's token never opens another queue's path, whatever the spelling.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import {
  ROOT, edgeState, listenWorker, postSync, signToken, startOrigin,
} from "./helpers.mjs";

const VECTORS = JSON.parse(readFileSync(`${ROOT}/shared/test-vectors/paths.json`, "utf8"));

let edge;
let origin;

/// GET `path` exactly as written, on a raw socket request line.
function rawGet(path, headers = {}) {
  const { hostname, port } = new URL(edge.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: "GET", headers: { host: "shop.example", ...headers } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

before(async () => {
  origin = await startOrigin();
  edge = await listenWorker({ ORIGIN_URL: origin.url });
  const states = VECTORS.queues.map((q, i) => edgeState({
    queue: { id: 40 + i, queue_id: q.queue_id, paths: q.paths, bypass: q.bypass ?? [], case_sensitive: !!q.case_sensitive },
  }));
  const r = await postSync(edge.mf, { states, removed: [] });
  assert.equal(r.status, 200, await r.text());
});
after(async () => {
  await edge?.mf.dispose();
  await origin?.close();
});

test(`every spelling in the table (${VECTORS.cases.length}) has its outcome`, async () => {
  assert.ok(VECTORS.cases.length >= 25);
  const wrong = [];
  for (const c of VECTORS.cases) {
    const before = origin.seen.length;
    const r = await rawGet(c.path, { accept: "application/json" });
    let got;
    if (r.headers["x-origin"] === "yes") {
      got = "origin";
      const seen = origin.seen.slice(before);
      // Forwarded unchanged: the origin gets the path the worker was given (the platform's
      // URL parser may have resolved dot segments, nothing else).
      const want = new URL(c.path, "http://x").pathname;
      if (seen.length !== 1 || new URL(seen[0].url, "http://x").pathname !== want) {
        wrong.push(`${c.path}: origin saw ${JSON.stringify(seen.map((s) => s.url))}, want ${want}`);
      }
    } else if (r.status === 400) {
      got = JSON.parse(r.body).error === "invalid_path" ? "bad" : `400 ${r.body}`;
    } else {
      const body = JSON.parse(r.body);
      got = body.error === "queued" ? `held:${body.queue_id}` : `${r.status} ${r.body}`;
      if (origin.seen.length !== before) wrong.push(`${c.path}: held but the origin was reached`);
    }
    if (got !== c.outcome) wrong.push(`${c.path}: want ${c.outcome}, got ${got}`);
  }
  assert.deepEqual(wrong, []);
});

test("a token of one queue never opens another queue's path, however spelled", async () => {
  const shopToken = signToken({ aud: "shop", jti: "40.1" });
  const vipToken = signToken({ aud: "vip", jti: "41.1" });
  const auth = (t) => ({ accept: "application/json", authorization: `Bearer ${t}` });
  for (const path of ["/shop/vip", "/SHOP/VIP", "/shop//vip/x", "/shop/%76ip", "/shop/vip;a", "/shop/vip.json", "/shop/x/../vip"]) {
    const held = await rawGet(path, auth(shopToken));
    assert.notEqual(held.headers["x-origin"], "yes", `shop's token opened ${path}`);
    assert.equal(JSON.parse(held.body).queue_id, "vip", path);
    const open = await rawGet(path, auth(vipToken));
    assert.equal(open.headers["x-origin"], "yes", `vip's token did not open ${path}: ${open.body}`);
  }
  for (const path of ["/shop/cart", "/Checkout", "/checkout.json"]) {
    const held = await rawGet(path, auth(vipToken));
    assert.notEqual(held.headers["x-origin"], "yes", `vip's token opened ${path}`);
    const open = await rawGet(path, auth(shopToken));
    assert.equal(open.headers["x-origin"], "yes", `shop's token did not open ${path}`);
  }
});
