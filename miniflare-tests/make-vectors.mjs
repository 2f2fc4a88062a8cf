// Writes shared/test-vectors/pow.json and sync.json from an implementation independent of the
// Rust one (Node's crypto), so the Rust tests cross-check the format.
// Usage: node miniflare-tests/make-vectors.mjs
import { createHash, createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const b64 = (buf) => Buffer.from(buf).toString("base64url");
const be32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const be64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };

function issue(key, queue, nonce, expiresAt, difficulty, ip) {
  const body = Buffer.concat([
    Buffer.from([1]), be32(queue), nonce, be32(expiresAt), Buffer.from([difficulty]),
    createHash("sha256").update(ip).digest().subarray(0, 8),
  ]);
  const mac = createHmac("sha256", key).update("anteroom-pow-v1\n").update(body).digest();
  return Buffer.concat([body, mac.subarray(0, 12)]);
}

function zeroBits(d) {
  let bits = 0;
  for (const b of d) {
    if (b === 0) { bits += 8; continue; }
    bits += Math.clz32(b) - 24;
    break;
  }
  return bits;
}

const pow = [];
const cases = [
  [Buffer.alloc(32, 0x01), 1, Buffer.alloc(16, 0x00), 1790000060, 0, "203.0.113.7"],
  [Buffer.alloc(32, 0x01), 1, Buffer.alloc(16, 0x11), 1790000060, 8, "203.0.113.7"],
  [Buffer.alloc(32, 0x5a), 7, Buffer.from("00112233445566778899aabbccddeeff", "hex"), 1790000120, 12, "2001:db8::42"],
  [Buffer.alloc(32, 0xa5), 4294967295, Buffer.alloc(16, 0xff), 4294967295, 16, "127.0.0.1"],
];
for (const [key, queue, nonce, expiresAt, difficulty, ip] of cases) {
  const raw = issue(key, queue, nonce, expiresAt, difficulty, ip);
  let counter = 0;
  let digest;
  for (;; counter++) {
    digest = createHash("sha256").update(raw).update(be64(counter)).digest();
    if (zeroBits(digest) >= difficulty) break;
  }
  pow.push({
    key_hex: key.toString("hex"), queue, nonce_hex: nonce.toString("hex"), expires_at: expiresAt,
    difficulty, client_ip: ip, challenge: b64(raw), challenge_bytes_hex: raw.toString("hex"),
    counter, digest_hex: digest.toString("hex"),
  });
}
writeFileSync(`${root}/shared/test-vectors/pow.json`, JSON.stringify(pow, null, 2) + "\n");

const sync = [];
const key = Buffer.alloc(32, 0x42);
for (const [ts, body] of [
  [1790000000000, '{"states":[],"removed":[]}'],
  [1790000000123, '{"states":[],"removed":["old-queue"]}'],
]) {
  const sig = createHmac("sha256", key).update(`anteroom-sync-v1\n${ts}\n`).update(body).digest();
  sync.push({ kind: "sync", key_hex: key.toString("hex"), ts_ms: ts, body, value: b64(sig) });
}
for (const [ts, ip] of [[1790000000000, "203.0.113.7"], [1790000000999, "2001:db8::42"]]) {
  const sig = createHmac("sha256", key).update(`anteroom-client-v1\n${ip}\n${ts}`).digest();
  sync.push({ kind: "client", key_hex: key.toString("hex"), ts_ms: ts, ip, value: `${ip}|${ts}|${b64(sig)}` });
}
writeFileSync(`${root}/shared/test-vectors/sync.json`, JSON.stringify(sync, null, 2) + "\n");
console.log(`wrote ${pow.length} pow and ${sync.length} sync vectors`);
