// Serves one worker in workerd (Miniflare's Node API) on a loopback port for the benchmark
// harness (bench/src/edge.rs): `node bench/edge/serve.mjs worker|trivial`.
//
// workerd itself listens on the port (a Miniflare direct socket to the worker, see below), so
// no Node code sits between the load generator and the worker. `worker` is the built edge
// worker (edge-worker/build/index.js) with a KV namespace; `trivial` is
// bench/edge/trivial.mjs.
//
// With BENCH_COORDINATOR=host:port the worker's COORDINATOR_URL points at a counting
// pass-through proxy in this process, so the harness can tell how many requests the worker
// sent to the coordinator: `GET /__bench/count` on the proxy answers the count (not counted,
// not forwarded).
//
// Prints one JSON line `{"url": …, "counter": "127.0.0.1:port" | null}` once serving, then
// runs until SIGTERM, SIGINT or the end of stdin (the harness went away), and disposes
// Miniflare (which stops workerd) before exiting.
import { createServer, request as httpRequest } from "node:http";
import { createServer as createNetServer } from "node:net";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const which = process.argv[2];
const env = process.env;

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/// Forwards every request to `target` (host:port) and counts them: the worker's freshness
/// pulls (`/edge/...`, `/__bench/pulls`) apart from the calls it forwards (`/__bench/count`).
async function countingProxy(target) {
  const [host, port] = target.split(":");
  let count = 0;
  let pulls = 0;
  const server = createServer((req, res) => {
    if (req.url === "/__bench/count" || req.url === "/__bench/pulls") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(String(req.url === "/__bench/count" ? count : pulls));
      return;
    }
    if (req.url.startsWith("/edge/")) pulls++;
    else count++;
    const up = httpRequest({ host, port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, addr: `127.0.0.1:${server.address().port}` };
}

let proxy = null;
let worker;
if (which === "worker") {
  if (env.BENCH_COORDINATOR) proxy = await countingProxy(env.BENCH_COORDINATOR);
  worker = {
    // BENCH_WORKER_SCRIPT serves another build (e.g. an older commit's, for a before/after).
    scriptPath: env.BENCH_WORKER_SCRIPT ?? `${ROOT}/edge-worker/build/index.js`,
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    kvNamespaces: ["ANTEROOM_KV"],
    bindings: {
      PREFIX: env.BENCH_PREFIX ?? "/anteroom",
      EDGE_KEY: env.BENCH_EDGE_KEY,
      TICKET_KEYS: env.BENCH_TICKET_KEYS,
      COORDINATOR_URL: proxy ? `http://${proxy.addr}` : "http://127.0.0.1:9",
      ORIGIN_URL: env.BENCH_ORIGIN_URL ?? "http://127.0.0.1:9",
    },
  };
} else if (which === "trivial") {
  worker = { scriptPath: fileURLToPath(new URL("trivial.mjs", import.meta.url)), modules: true };
} else {
  console.error("usage: node bench/edge/serve.mjs worker|trivial");
  process.exit(2);
}

// Miniflare's own port serves its entry worker, which routes every request to the user
// worker (one more JavaScript hop that a deployed worker does not have). A direct socket
// serves the worker itself; it is the default here, BENCH_ENTRY=1 measures through the entry
// worker instead.
const viaEntry = env.BENCH_ENTRY === "1";
const directPort = await freePort();
const mf = new Miniflare({
  ...worker,
  compatibilityDate: "2026-04-26",
  host: "127.0.0.1",
  port: await freePort(),
  ...(viaEntry ? {} : { unsafeDirectSockets: [{ host: "127.0.0.1", port: directPort }] }),
});
const entryUrl = await mf.ready;
const url = (viaEntry ? entryUrl : await mf.unsafeGetDirectURL()).toString().replace(/\/$/, "");
process.stdout.write(`${JSON.stringify({ url, counter: proxy?.addr ?? null })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    proxy?.server.closeAllConnections();
    proxy?.server.close();
    process.exit(0);
  }
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
process.stdin.resume();
