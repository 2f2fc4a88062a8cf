// Shared harness for the edge tests: loads the built worker into Miniflare, signs sync
// batches, seals tickets and signs tokens with Node's crypto (an implementation independent of
// the Rust one), and runs a small origin server that records what reaches it.
import { createHash, createHmac, createPrivateKey, createPublicKey, sign as edSign, randomBytes } from "node:crypto";
import { createServer, request as httpRequest } from "node:http";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const EDGE_KEY_HEX = "7e".repeat(32);
export const EDGE_KEY = Buffer.from(EDGE_KEY_HEX, "hex");
export const TICKET_KEY = { id: 3, secret: Buffer.alloc(32, 0x3c) };
export const TICKET_KEYS = `${TICKET_KEY.id}:${TICKET_KEY.secret.toString("hex")}`;
export const SIGNING_SEED_HEX = "5b".repeat(32);
export const ISSUER = "anteroom";
export const PREFIX = "/anteroom";
export const BASE = "https://shop.example";

export const b64 = (buf) => Buffer.from(buf).toString("base64url");
export const nowSecs = () => Math.floor(Date.now() / 1000);

/// An unused loopback port ("127.0.0.1:0" is not accepted by every service we start).
export async function freePort() {
  const { createServer: net } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = net();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/// Polls `check` (async, truthy = done) every `every` ms until `ms` have passed.
export async function until(check, { ms = 10_000, every = 25, what = "condition" } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      if (e?.fatal || /exited/.test(e?.message)) throw e;
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export async function startWorker(vars = {}, { port, options = {} } = {}) {
  const mf = new Miniflare({
    ...options,
    scriptPath: `${ROOT}/edge-worker/build/index.js`,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-04-26",
    kvNamespaces: ["ANTEROOM_KV"],
    ...(port === undefined ? {} : { host: "127.0.0.1", port }),
    bindings: {
      PREFIX,
      EDGE_KEY: EDGE_KEY_HEX,
      TICKET_KEYS,
      COORDINATOR_URL: "http://127.0.0.1:9", // nothing listens there unless a test says so
      ...vars,
    },
  });
  await mf.ready;
  return mf;
}

/// The worker listening on a loopback port (for browsers and real HTTP): `{ mf, url }`, the
/// URL without a trailing slash.
export async function listenWorker(vars = {}, options = {}) {
  const mf = await startWorker(vars, { port: await freePort(), options });
  return { mf, url: (await mf.ready).toString().replace(/\/$/, "") };
}

/// Forwards every request to `target`, counting them by path (`counts`) and keeping when each
/// came (`log`: `{ path, at }`). The edge's freshness pulls (`/edge/...`) are counted apart:
/// `total()` counts the others, the calls the edge forwards for visitors.
export async function startCountingProxy(target) {
  const counts = new Map();
  const log = [];
  const t = new URL(target);
  const server = createServer((req, res) => {
    const path = req.url.split("?")[0];
    counts.set(path, (counts.get(path) ?? 0) + 1);
    log.push({ path, at: Date.now() });
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const isPull = (path) => path.startsWith("/edge/");
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    log,
    total: () => [...counts].filter(([p]) => !isPull(p)).reduce((a, [, n]) => a + n, 0),
    pulls: (from = 0, to = Infinity) => log.filter((e) => isPull(e.path) && e.at >= from && e.at < to).length,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

// ---- sync ----

export function signSync(body, ts = Date.now(), key = EDGE_KEY) {
  return b64(createHmac("sha256", key).update(`anteroom-sync-v1\n${ts}\n`).update(body).digest());
}

export async function postSync(mf, batch, { ts = Date.now(), key = EDGE_KEY, sig } = {}) {
  const body = typeof batch === "string" ? batch : JSON.stringify(batch);
  return mf.dispatchFetch(`${BASE}${PREFIX}/__anteroom/sync`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-anteroom-timestamp": String(ts),
      "x-anteroom-signature": sig ?? signSync(body, ts, key),
    },
    body,
  });
}

/// The edge's `x-anteroom-client` header vouching for `ip` (as shared/src/sync.rs signs it).
export function signClient(ip, ts = Date.now(), key = EDGE_KEY) {
  return `${ip}|${ts}|${b64(createHmac("sha256", key).update(`anteroom-client-v1\n${ip}\n${ts}`).digest())}`;
}

/// A proof-of-work challenge as the edge issues it (shared/src/pow.rs), signed with `key`.
export function craftChallenge({ queue = 7, expiresAt = nowSecs() + 60, difficulty = 8, ip = "203.0.113.7", key = EDGE_KEY } = {}) {
  const raw = Buffer.alloc(34);
  raw[0] = 1;
  raw.writeUInt32BE(queue, 1);
  Buffer.alloc(16, 0x42).copy(raw, 5);
  raw.writeUInt32BE(expiresAt, 21);
  raw[25] = difficulty;
  createHash("sha256").update(ip).digest().subarray(0, 8).copy(raw, 26);
  const mac = createHmac("sha256", key).update("anteroom-pow-v1\n").update(raw).digest().subarray(0, 12);
  return b64(Buffer.concat([raw, mac]));
}

export function verifyClientHeader(header, key = EDGE_KEY) {
  const [ip, ts, mac] = header.split("|");
  const want = b64(createHmac("sha256", key).update(`anteroom-client-v1\n${ip}\n${ts}`).digest());
  return want === mac ? { ip, ts: Number(ts) } : null;
}

// ---- tokens (EdDSA JWT, as shared/src/token.rs) ----

function keyPair(seedHex) {
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seedHex, "hex")]);
  const privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  const pub = createPublicKey(privateKey).export({ format: "jwk" });
  const raw = Buffer.from(pub.x, "base64url");
  const kid = b64(createHash("sha256").update(raw).digest().subarray(0, 12));
  return { privateKey, x: pub.x, kid };
}

export const SIGNER = keyPair(SIGNING_SEED_HEX);
export const OTHER_SIGNER = keyPair("6c".repeat(32));

export function jwk(signer = SIGNER) {
  return { kty: "OKP", crv: "Ed25519", x: signer.x, kid: signer.kid, alg: "EdDSA", use: "sig" };
}

export function signToken(claims, { signer = SIGNER, header = {} } = {}) {
  const now = nowSecs();
  const h = b64(JSON.stringify({ alg: "EdDSA", typ: "JWT", kid: signer.kid, ...header }));
  const p = b64(JSON.stringify({
    // A session id names its queue and place (`<queue id>.<position>`): the default queue is 7.
    iss: ISSUER, aud: "concert", sub: "ticket", qpos: 1, jti: `7.${randomBytes(4).readUInt32BE()}`,
    iat: now, nbf: now, exp: now + 300, ...claims,
  }));
  const sig = edSign(null, Buffer.from(`${h}.${p}`), signer.privateKey);
  return `${h}.${p}.${b64(sig)}`;
}

/// A set of positions in the text form of shared/src/positions.rs (runs of consecutive
/// positions as LEB128 varints: gap from the previous run, length - 1; base64url).
export function positionSet(positions) {
  const sorted = [...new Set(positions.map(BigInt))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const runs = [];
  for (const p of sorted) {
    const last = runs[runs.length - 1];
    if (last && last[1] + 1n === p) last[1] = p;
    else runs.push([p, p]);
  }
  const out = [];
  const varint = (v) => {
    while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
    out.push(Number(v));
  };
  let prev = null;
  for (const [s, e] of runs) {
    varint(prev === null ? s : s - prev - 2n);
    varint(e - s);
    prev = e;
  }
  return b64(Buffer.from(out));
}

// ---- tickets (as shared/src/ticket.rs) ----

export function sealTicket({ queue, position, enteredAt = nowSecs(), prequeue = false, key = TICKET_KEY }) {
  const body = Buffer.alloc(19);
  body[0] = 1;
  body[1] = key.id;
  body[2] = prequeue ? 1 : 0;
  body.writeUInt32BE(queue, 3);
  body.writeBigUInt64BE(BigInt(position), 7);
  body.writeUInt32BE(enteredAt, 15);
  const mac = createHmac("sha256", key.secret).update(body).digest().subarray(0, 16);
  return b64(Buffer.concat([body, mac]));
}

// ---- edge state ----

let version = 1000;
export function nextVersion() {
  return ++version;
}

export function queueConfig(overrides = {}) {
  return {
    id: 7, queue_id: "concert", mode: "queue", paths: ["/shop"], bypass: ["/shop/webhooks", "*.png"],
    pow_difficulty: 0, fail_open: false, waiting_status: 200, token_validity_second: 300,
    enable_queue_position_expiry: false, position_expiry_second: 900, ...overrides,
  };
}

export function edgeState({ queue = {}, ...overrides } = {}) {
  return {
    format: 2, version: nextVersion(), published_at_ms: Date.now(), issuer: ISSUER,
    queue: queueConfig(queue), serving_pos: 10, assigned: 50, waiting_num: 40, active_num: 3,
    serving_history: [[10, nowSecs() - 5]], jwks: { keys: [jwk()] }, revoked: "", ...overrides,
  };
}

// ---- origin ----

/// A small origin: records requests; `/shop/stream` sends its second chunk only once the test
/// calls `release()`, so a client that sees the first chunk first proves streaming.
export async function startOrigin() {
  const seen = [];
  let release;
  let released = new Promise((r) => (release = r));
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() });
    if (req.url.startsWith("/shop/stream")) {
      res.writeHead(200, { "content-type": "text/plain", "x-origin": "stream" });
      res.write("first chunk\n");
      await released;
      res.end("second chunk\n");
      return;
    }
    res.writeHead(req.url.startsWith("/shop/created") ? 201 : 200, {
      "content-type": "application/json", "x-origin": "yes", "set-cookie": "origin=1; Path=/",
    });
    res.end(JSON.stringify({ origin: true, method: req.method, url: req.url }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    release: () => {
      release();
      released = new Promise((r) => (release = r));
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

// ---- processes ----

/// Answers whether a redis-server answers PING on the loopback `port`.
export async function redisPing(port) {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => s.write("PING\r\n"));
    s.on("data", (d) => { resolve(d.toString().startsWith("+PONG")); s.destroy(); });
    s.on("error", () => resolve(false));
  });
}

/// Starts `cmd` with `env` added, pushes it on `children` (the caller kills them all at the
/// end) and keeps the last 200 KB of its output: `child.log()` returns it. A child that exits
/// makes `until` give up at once (its error message says "exited").
export async function spawnLogged(children, cmd, args, env = {}) {
  const { spawn } = await import("node:child_process");
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  const keep = (d) => { out = (out + d).slice(-200_000); };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.log = () => out;
  child.alive = () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${cmd} exited (${child.exitCode ?? child.signalCode}): ${out.slice(-2000)}`);
    }
    return true;
  };
  return child;
}

// ---- the whole stack ----

export const COORDINATOR_BIN = `${ROOT}/target/debug/coordinator`;
export const SHOP_BIN = `${ROOT}/target/debug/ticket-shop`;
/// The bench harness, whose `load` subcommand is the Rust load generator.
export const BENCH_BIN = `${ROOT}/target/debug/bench`;
export const STACK_ADMIN_KEY = "stack-admin-key-0123456789";
export const STACK_ORIGIN_KEY = "stack-origin-key-0123456789";

/// The real stack on free loopback ports, for every test file that needs it: redis-server,
/// the built worker in workerd, `coordinators` coordinator processes (the real binary)
/// publishing to it, and optionally the demo shop as the origin. Every child is killed by
/// `stop()` (and if the test process exits without it).
///
/// Options: `redisArgs` (default no persistence), `workerVars`, `coordinatorEnv` (extra
/// `ANTEROOM_*`; a `null` value leaves the variable unset), `originUrl` (the worker's
/// `ORIGIN_URL`), `shop` (start the demo shop and make it the origin), `coordinatorUrl(stack)`
/// and `syncUrl(stack)` (put something between the worker and the coordinators: a counting
/// proxy, a fail-over, a gate; they see the coordinators' reserved ports before anything
/// starts). A part that fails to start stops those that did before the error is thrown.
export async function startStack({
  coordinators = 1, redisArgs = ["--appendonly", "no"], workerVars = {}, coordinatorEnv = {},
  originUrl, shop = false, coordinatorUrl, syncUrl,
} = {}) {
  const { existsSync } = await import("node:fs");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  for (const bin of [COORDINATOR_BIN, ...(shop ? [SHOP_BIN] : [])]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: scripts/test-edge.sh builds it`);
  }
  const children = [];
  const killAll = () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); };
  process.once("exit", killAll);
  const s = {
    children,
    redisPort: await freePort(),
    redisDir: mkdtempSync(`${tmpdir()}/anteroom-stack-`),
    coords: [],
    logs: {},
  };
  for (let i = 0; i < coordinators; i++) {
    s.coords.push({ public: await freePort(), admin: await freePort(), alive: false });
  }
  s.stop = async () => {
    await s.mf?.dispose().catch(() => {});
    killAll();
    rmSync(s.redisDir, { recursive: true, force: true });
  };
  s.publicUrl = `http://127.0.0.1:${s.coords[0].public}`;
  s.adminUrl = `http://127.0.0.1:${s.coords[0].admin}`;
  /// The admin URL of a live coordinator.
  s.liveAdminUrl = () => `http://127.0.0.1:${(s.coords.find((c) => c.alive) ?? s.coords[0]).admin}`;
  s.startRedis = async () => {
    s.redis = await spawnLogged(children, "redis-server", [
      "--port", String(s.redisPort), "--bind", "127.0.0.1", "--dir", s.redisDir, "--save", "", ...redisArgs,
    ]);
    s.logs.redis = s.redis.log;
    await until(async () => s.redis.alive() && (await redisPing(s.redisPort)), { what: "redis PING" });
  };
  // A part that fails to start stops the parts that did: the caller has no stack to stop,
  // and a live workerd would keep the test process from exiting after a failed `before`.
  try {
    await s.startRedis();
    if (shop) {
      s.shopPort = await freePort();
      s.shopUrl = `http://127.0.0.1:${s.shopPort}`;
    }
    const target = await (coordinatorUrl ? coordinatorUrl(s) : s.publicUrl);
    ({ mf: s.mf, url: s.edge } = await listenWorker({
      COORDINATOR_URL: target, ...(shop ? { ORIGIN_URL: s.shopUrl } : originUrl ? { ORIGIN_URL: originUrl } : {}), ...workerVars,
    }));
    const sync = await (syncUrl ? syncUrl(s) : `${s.edge}${PREFIX}/__anteroom/sync`);
    s.coordinatorEnv = (i) => Object.fromEntries(Object.entries({
      ANTEROOM_LISTEN: `127.0.0.1:${s.coords[i].public}`, ANTEROOM_ADMIN_LISTEN: `127.0.0.1:${s.coords[i].admin}`,
      ANTEROOM_ADMIN_KEY: STACK_ADMIN_KEY, ANTEROOM_ORIGIN_KEY: STACK_ORIGIN_KEY,
      ANTEROOM_REDIS_URL: `redis://127.0.0.1:${s.redisPort}`,
      ANTEROOM_TICKET_KEYS: TICKET_KEYS, ANTEROOM_SIGNING_KEY: SIGNING_SEED_HEX,
      ANTEROOM_EDGE_KEY: EDGE_KEY_HEX, ANTEROOM_EDGE_SYNC_URL: sync,
      RUST_LOG: "info", RUST_BACKTRACE: "0", NO_COLOR: "1", ...coordinatorEnv,
    }).filter(([, v]) => v !== null));
    s.startCoordinator = async (i = 0) => {
      const c = s.coords[i];
      c.child = await spawnLogged(children, COORDINATOR_BIN, [], s.coordinatorEnv(i));
      s.logs[`coordinator-${i}`] = c.child.log;
      await until(async () => c.child.alive() && (await fetch(`http://127.0.0.1:${c.public}/healthz`)).ok, { ms: 20_000, what: `coordinator ${i}` });
      c.alive = true;
    };
    s.killCoordinator = (i) => { s.coords[i].child.kill("SIGKILL"); s.coords[i].alive = false; };
    for (let i = 0; i < coordinators; i++) await s.startCoordinator(i);
    if (shop) {
      const shopChild = await spawnLogged(children, SHOP_BIN, [], {
        SHOP_LISTEN: `127.0.0.1:${s.shopPort}`, SHOP_QUEUE_ID: shop.queue ?? "demo", SHOP_ORIGIN_KEY: STACK_ORIGIN_KEY,
        SHOP_COORDINATOR_PUBLIC: s.publicUrl, SHOP_COORDINATOR_ADMIN: s.adminUrl,
        SHOP_JOIN_URL: `${s.edge}/`, SHOP_REPORT_HEALTH: "1", RUST_LOG: "info", RUST_BACKTRACE: "0", NO_COLOR: "1",
      });
      s.logs.shop = shopChild.log;
      await until(async () => shopChild.alive() && (await fetch(`${s.shopUrl}/healthz`)).ok, { ms: 20_000, what: "ticket shop" });
    }
  } catch (e) {
    await s.stop();
    throw e;
  }
  /// A private API call with the admin key; `body` an object is sent as JSON, a
  /// `URLSearchParams` as a form.
  s.admin = (path, { method = "GET", body } = {}) => {
    const headers = { authorization: `Bearer ${STACK_ADMIN_KEY}` };
    let payload;
    if (body instanceof URLSearchParams) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      payload = body.toString();
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    return fetch(`${s.liveAdminUrl()}${path}`, { method: body !== undefined && method === "GET" ? "POST" : method, headers, body: payload });
  };
  /// Creates a queue and waits until the edge has it.
  s.createQueue = async (spec) => {
    const r = await s.admin("/api/queue", { body: spec });
    if (r.status !== 200) throw new Error(`queue ${spec.queue_id}: ${r.status} ${await r.text()}`);
    const created = await r.json();
    await until(async () => {
      const w = await fetch(`${s.edge}${PREFIX}/waiting_num/${spec.queue_id}`);
      const b = await w.json().catch(() => ({}));
      return w.status === 200 && b.version >= created.created_at;
    }, { ms: 15_000, what: `queue ${spec.queue_id} synced to the edge` });
    return created;
  };
  return s;
}
