// The edge and the coordinator speak one error vocabulary (shared/src/error.rs): the same bad
// input sent to the worker (under its prefix) and straight to the coordinator (through the
// edge's own MAC'd client header, as the edge calls it) gets the same status and the same
// `error` code, whichever side answers it. The real coordinator and Redis, the worker in
// workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { PREFIX, craftChallenge, nowSecs, sealTicket, signClient, startStack } from "./helpers.mjs";

const IP = "203.0.113.9";
let stack, edge, publicUrl;
const ids = {};

before(async () => {
  stack = await startStack({ coordinatorEnv: { ANTEROOM_PUBLISH_INTERVAL_MS: "1000", RUST_LOG: "warn" } });
  ({ edge, publicUrl } = stack);
  const now = nowSecs();
  for (const q of [
    { queue_id: "c", pow_difficulty: 4 },
    { queue_id: "pre", prequeue_opens_at: now - 5, opens_at: now + 3600 },
    { queue_id: "shut", mode: "closed" },
  ]) {
    ids[q.queue_id] = (await stack.createQueue(q)).id;
  }
});

after(async () => {
  await stack?.stop();
});

/// Sends one request to both sides; `path` is the coordinator's (the edge's is under PREFIX).
async function both(method, path, { form, body, type } = {}) {
  const payload = form ? new URLSearchParams(form).toString() : body;
  const ctype = type ?? (form ? "application/x-www-form-urlencoded" : undefined);
  const headers = (extra) => ({ ...(ctype ? { "content-type": ctype } : {}), ...extra });
  const answer = async (url, extra) => {
    const r = await fetch(url, { method, headers: headers(extra), body: payload });
    const json = await r.json().catch(() => ({}));
    return { status: r.status, error: json.error };
  };
  return {
    edge: await answer(`${edge}${PREFIX}${path}`, { "cf-connecting-ip": IP }),
    coordinator: await answer(`${publicUrl}${path}`, { "x-anteroom-client": signClient(IP) }),
  };
}

test("the same bad input gets the same status and code at the edge and the coordinator", async () => {
  const otherTicket = sealTicket({ queue: ids.pre, position: 1 });
  const preTicket = sealTicket({ queue: ids.pre, position: 1, prequeue: true });
  const expired = craftChallenge({ queue: ids.c, expiresAt: nowSecs() - 5, ip: IP });
  const cases = [
    ["POST", "/assign_queue_pos", { form: {} }, 400, "invalid_parameter"],
    ["POST", "/assign_queue_pos", { form: { queue_id: "no-such-queue" } }, 400, "unknown_queue"],
    ["POST", "/assign_queue_pos", { body: '{"queue_id":"c"}', type: "application/json" }, 415, "unsupported_media_type"],
    ["POST", "/assign_queue_pos", { form: { queue_id: "c", pad: "x".repeat(5000) } }, 413, "payload_too_large"],
    ["POST", "/assign_queue_pos", { form: { queue_id: "c" } }, 403, "pow_required"],
    ["POST", "/assign_queue_pos", { form: { queue_id: "c", pow_challenge: "abc", pow_counter: "1" } }, 403, "pow_invalid"],
    ["POST", "/assign_queue_pos", { form: { queue_id: "c", pow_challenge: expired, pow_counter: "1" } }, 403, "pow_expired"],
    ["POST", "/assign_queue_pos", { form: { queue_id: "shut" } }, 403, "queue_closed"],
    ["GET", "/assign_queue_pos", {}, 405, "method_not_allowed"],
    ["GET", "/queue_pos/no-such-queue/x", {}, 400, "unknown_queue"],
    ["GET", "/queue_pos/c/not-a-ticket", {}, 400, "invalid_request_id"],
    ["GET", `/queue_pos/c/${otherTicket}`, {}, 400, "invalid_request_id"],
    ["GET", `/queue_pos/pre/${preTicket}`, {}, 404, "not_ready"],
    ["GET", "/serving_pos/no-such-queue", {}, 400, "unknown_queue"],
    ["GET", "/waiting_num/no-such-queue", {}, 400, "unknown_queue"],
    ["POST", "/generate_token", { form: { queue_id: "c" } }, 400, "invalid_parameter"],
    ["POST", "/generate_token", { form: { queue_id: "c", request_id: "junk" } }, 400, "invalid_request_id"],
    ["POST", "/generate_token", { form: { queue_id: "no-such-queue", request_id: "junk" } }, 400, "unknown_queue"],
    ["GET", "/no-such-route", {}, 404, "not_found"],
  ];
  const differ = [];
  for (const [method, path, init, status, code] of cases) {
    const got = await both(method, path, init);
    const want = { status, error: code };
    if (JSON.stringify(got.edge) !== JSON.stringify(want) || JSON.stringify(got.coordinator) !== JSON.stringify(want)) {
      differ.push({ method, path: path.slice(0, 60), want, ...got });
    }
  }
  assert.deepEqual(differ, []);
  console.log(`# contract: ${cases.length} bad inputs, same status and code at the edge and the coordinator`);
});
