// The JS proof-of-work solver (edge-worker/assets/pow.js) against the vectors shared with the
// Rust tests (shared/test-vectors/pow.json), and its speed on this machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const pow = require("../edge-worker/assets/pow.js");
const vectors = require("../shared/test-vectors/pow.json");

test("the solver finds each vector's counter and digest", () => {
  assert.ok(vectors.length >= 3);
  for (const v of vectors) {
    assert.equal(pow.solve(v.challenge, v.difficulty), v.counter, v.challenge);
    assert.equal(pow.digestHex(v.challenge, v.counter), v.digest_hex);
  }
});

test("the one-block SHA-256 matches node's for many counters, both halves of the u64", () => {
  const ch = vectors[2].challenge;
  const raw = Buffer.from(ch, "base64url");
  for (const c of [0, 1, 255, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, 2 ** 53 - 1]) {
    const be = Buffer.alloc(8);
    be.writeBigUInt64BE(BigInt(c));
    const want = createHash("sha256").update(raw).update(be).digest("hex");
    assert.equal(pow.digestHex(ch, c), want, String(c));
  }
});

test("the solver refuses challenges of an unknown format", () => {
  assert.throws(() => pow.solve("AAAA", 1));
});

test("measure: solver speed and the difficulty it allows (median <= 3 s at 4x CPU throttling)", () => {
  const ch = vectors[3].challenge;
  // Run the real solving loop on an unsolvable difficulty for about a second.
  const t0 = performance.now();
  let tried = 0;
  assert.throws(() => pow.solve(ch, 40, (n) => {
    tried = n;
    if (performance.now() - t0 > 1000) throw new Error("time is up");
  }), /time is up/);
  const rate = tried / ((performance.now() - t0) / 1000);
  // Attempts until the first success are geometric: median = ln 2 * 2^difficulty.
  const throttled = rate / 4;
  let cap = 0;
  while (Math.LN2 * 2 ** (cap + 1) / throttled <= 3) cap++;
  console.log(`# measure: JS solver ${Math.round(rate)} hashes/s in Node here; at 4x throttling a median solve stays <= 3 s up to difficulty ${cap}`);
  assert.ok(rate > 20_000, `solver too slow: ${rate}/s`);
});
