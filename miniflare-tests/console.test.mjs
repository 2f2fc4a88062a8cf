// The operator console in a real Chromium against the real stack: redis-server, the
// coordinator binary (its private listener serves the console), the worker in workerd and an
// origin. A simulated crowd joins through the edge all along and claims and ends sessions.
// The operator signs in (a wrong key first), watches the demo queue move, pauses it and sees
// admissions stop, sets a message and sees it on a visitor's waiting page (served by the
// worker), resumes, reads the audit trail, clears the message in one click, signs out. The
// session's CSRF protection and a wrong key are checked from outside the browser. Screenshots
// of the overview and the queue page (desktop and 360 px) go to test-artifacts/ (and to docs/
// with UPDATE_SCREENSHOTS=1).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { PREFIX, ROOT, STACK_ADMIN_KEY, STACK_ORIGIN_KEY, startOrigin, startStack, until } from "./helpers.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = `${ROOT}/test-artifacts`;
const require = createRequire(import.meta.url);
const Effects = require("../coordinator/assets/console.js");

describe("what the console's confirmations say, in numbers", () => {
  const s = { waiting: 10_000, active: 40, max_active: 50, admission_rate: 5, target_rate: 5, serving_pos: 1_000, assigned: 11_000, state: "open" };
  const q = { queue_id: "demo", mode: "queue", pow_difficulty: 0, enable_queue_position_expiry: true, position_expiry_second: 120,
    admission: { policy: { strategy: "fixed_rate", rate_per_sec: 5, burst: 0 }, paused: false, draining: false } };

  test("rate, cap, pause, advance, proof-of-work and the message", () => {
    assert.equal(Effects.effect("policy", s, q, { strategy: "fixed_rate", rate_per_sec: 7 }).body,
      "Admits about 4,200 people in the next 10 minutes at 7/s instead of about 3,000 at 5/s.");
    assert.equal(Effects.effect("policy", { ...s, waiting: 900 }, q, { strategy: "fixed_rate", rate_per_sec: 7, max_active: 60 }).body,
      "Admits about 900 people in the next 10 minutes at 7/s instead of about 900 at 5/s; that is the whole line of 900, then new arrivals as they come, with at most 60 sessions at once.");
    assert.equal(Effects.effect("policy", s, q, { strategy: "capacity", max_active: 45 }).body,
      "At most 45 sessions at once (40 live now, cap 50): about 5 more people can be admitted now, then one per session that ends.");
    assert.match(Effects.effect("policy", s, q, { strategy: "capacity", max_active: 30 }).body, /nobody more is admitted until 11 sessions end/);
    assert.match(Effects.effect("pause", s, q).body, /at the current 5\/s that holds back about 3,000 people in the next 10 minutes\. The 10,000 waiting keep their places/);
    assert.equal(Effects.effect("advance", s, q, "250").body,
      "Admits the next 250 places at once (1,001–1,250): 9,750 stay waiting. Each has 2 min to claim.");
    assert.match(Effects.effect("advance", { ...s, waiting: 3, assigned: 1_003 }, q, "5").body, /everyone waiting \(3\)\. 2 of them are not handed out yet/);
    assert.equal(Effects.effect("pow", s, q, "18").body, "Each join costs about 262,144 hashes: a median of under a second on a slow phone (400,000 hashes/s). Was 0.");
    assert.match(Effects.effect("pow", s, q, "20").body, /a median of 2 s/);
    assert.match(Effects.effect("notice", s, q, { en: "Doors at 8", zh: "" }).body, /^Shown to the 10,000 people waiting, and to everyone who arrives, within about 2 s: “Doors at 8”\.$/);
    assert.match(Effects.effect("names", s, q, { logo_text: "Riverside Tickets", display_name: "The Night Orchestra" }).body, /will read “Riverside Tickets: The Night Orchestra”/);
    assert.match(Effects.effect("mode", s, q, "closed").body, /the 10,000 people waiting, the 40 with a live session and every new visitor see a closed page/);
    assert.equal(Effects.effect("open", { ...s, state: "open" }, q).body, "The queue is open already; nothing changes.");
  });
});

describe("the console in Chromium, against the real stack", () => {
  let stack, origin, browser, crowd;

  /// The crowd: a visitor joins through the edge every 150 ms (load, not synchronisation);
  /// served visitors claim their token at once and their session ends two seconds later
  /// (the origin key, as a shop at checkout). With three sessions at most, the line grows.
  function startCrowd() {
    const c = { stop: false, tickets: [], joined: 0, claimed: 0, errors: [] };
    const form = (body) => ({ method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(body).toString() });
    c.done = (async () => {
      while (!c.stop) {
        try {
          const j = await fetch(`${stack.edge}${PREFIX}/assign_queue_pos`, form({ queue_id: "demo" }));
          if (j.status === 200) { c.tickets.push({ ...(await j.json()), state: "waiting" }); c.joined++; } else await j.text();
          const sp = await (await fetch(`${stack.edge}${PREFIX}/serving_pos/demo`)).json();
          for (const t of c.tickets) {
            if (t.state === "waiting" && t.position <= sp.position) {
              const g = await fetch(`${stack.edge}${PREFIX}/generate_token`, form({ queue_id: "demo", request_id: t.request_id }));
              if (g.status === 200) { t.state = "active"; t.at = Date.now(); c.claimed++; }
              if (g.status === 410) t.state = "gone";
              await g.text();
            } else if (t.state === "active" && Date.now() - t.at > 2000) {
              const e = await fetch(`${stack.adminUrl}/api/queue/update_token_status`, {
                ...form({ queue_id: "demo", request_id: t.request_id, status: "1" }),
                headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${STACK_ORIGIN_KEY}` },
              });
              if (e.status === 200) t.state = "gone";
              await e.text();
            }
          }
        } catch (e) {
          c.errors.push(String(e));
        }
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    return c;
  }

  const status = async () => (await stack.admin("/api/queue/demo/status")).json();

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
    mkdirSync(ARTIFACTS, { recursive: true });
    origin = await startOrigin();
    stack = await startStack({ originUrl: origin.url });
    await stack.createQueue({
      queue_id: "demo", paths: ["/shop"], display_name: "The Night Orchestra", logo_text: "Riverside Tickets",
      enable_queue_position_expiry: true, position_expiry_second: 60,
      admission: { policy: { strategy: "capacity", max_active: 3 } },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    crowd = startCrowd();
  });

  after(async () => {
    if (crowd) { crowd.stop = true; await crowd.done; }
    await browser?.close();
    await stack?.stop();
    await origin?.close();
  });

  /// Saves a screenshot to test-artifacts/ (and docs/ with UPDATE_SCREENSHOTS=1).
  async function shot(page, name) {
    const path = `${ARTIFACTS}/${name}.png`;
    await page.screenshot({ path, fullPage: false });
    if (process.env.UPDATE_SCREENSHOTS === "1") copyFileSync(path, `${ROOT}/docs/screenshot-${name}.png`);
  }
  const fits = async (page, width) => until(async () => (await page.evaluate(() => document.documentElement.scrollWidth)) <= width, { what: `fits ${width} px` });
  const tile = (page, name) => page.locator(`dd[data-tile="${name}"]`).textContent();
  const num = (t) => Number(String(t).replace(/[^\d]/g, ""));

  test("sign in, watch the line move, pause, message the waiting, resume, read the audit trail, sign out", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "en-GB", colorScheme: "light" });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const console = `${stack.adminUrl}/console`;
    await page.goto(console);

    // A wrong key is refused; the right one, typed and sent with Enter, signs in.
    await page.locator("#sign-in-key").fill("not-the-key-at-all");
    await page.keyboard.press("Enter");
    await until(async () => (await page.locator("#sign-in-error").textContent()) === "That is not an operator key.", { what: "refusal shown" });
    await page.locator("#sign-in-key").fill(STACK_ADMIN_KEY);
    await page.keyboard.press("Enter");
    await until(async () => (await page.locator("#who-name").textContent()) === "Signed in as bootstrap", { what: "signed in" });
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "anteroom_console");
    assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
    assert.equal(await page.evaluate(() => document.cookie), "", "the page script cannot read the session");

    // The overview: the demo queue with its people waiting and its three sessions.
    const row = page.locator('tr[data-queue="demo"]');
    await until(async () => num(await row.locator('td[data-label="Waiting"]').textContent()) >= 5, { ms: 30_000, what: "people waiting on the overview" });
    assert.match(await row.locator('td[data-label="Active / max"]').textContent(), /^\d+ \/ 3$/);
    assert.equal(await row.locator("a").textContent(), "The Night Orchestra");
    assert.equal(await row.locator(".badge").textContent(), "open");
    assert.match(await row.locator('td[data-label="Edge freshness"]').textContent(), /^\d+ s ago$/);
    await shot(page, "console-overview-desktop");

    // The queue page: the served count moves while the crowd is served.
    await row.locator("a").click();
    await until(async () => (await page.locator(".headline h1").textContent()) === "The Night Orchestra", { what: "queue page" });
    const served = async () => num((await tile(page, "Served / handed out")).split("/")[0]);
    const before = await until(served, { what: "served shown" });
    await until(async () => (await served()) > before, { ms: 30_000, what: "the line moving on the queue page" });
    await until(async () => (await page.locator(".chart svg polyline").count()) >= 2, { what: "charts drawn" });
    assert.match(await page.locator(".chart svg").first().getAttribute("aria-label"), /^Line length, last [\d.]+ min: waiting \d[\d,]* now, peak/);

    // Escape cancels a confirmation: nothing changes.
    await page.getByRole("button", { name: "Pause" }).click();
    assert.ok(await page.locator("#confirm").evaluate((d) => d.open));
    await page.keyboard.press("Escape");
    assert.equal((await status()).queue.admission.paused, false);

    // Pause: the confirmation says what it holds back; then admissions stop.
    await page.getByRole("button", { name: "Pause" }).click();
    assert.match(await page.locator("#confirm-body").textContent(), /holds back about [\d,]+ people in the next 10 minutes\. The [\d,]+ waiting keep their places/);
    await page.locator("#confirm-ok").click();
    await until(async () => (await page.locator(".headline .badge").textContent()) === "paused", { what: "paused shown" });
    const paused = await status();
    assert.equal(paused.queue.admission.paused, true);
    // Visitors keep joining and every session ends (the slots are free), yet nobody is admitted.
    await until(async () => {
      const st = await status();
      return st.assigned >= paused.assigned + 5 && st.active_num === 0 ? st : null;
    }, { ms: 30_000, what: "arrivals continuing and every slot free while paused" });
    assert.equal((await status()).serving_pos, paused.serving_pos, "no admission while paused");

    // A message to the people waiting, shown on a visitor's page by the worker.
    const visitor = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: "en-GB" });
    const vpage = await visitor.newPage();
    await vpage.goto(`${stack.edge}/shop/tickets`);
    assert.match(await vpage.title(), /· Riverside Tickets: The Night Orchestra$/);
    assert.equal(await vpage.locator("#anteroom-notice").isHidden(), true);
    await page.locator("#c-notice-en").fill("Doors open at 8: tickets are limited to 4 per person");
    await page.locator("#c-notice-zh").fill("八点开门：每人限购 4 张");
    await page.getByRole("button", { name: "Show message" }).click();
    assert.match(await page.locator("#confirm-body").textContent(), /^Shown to the [\d,]+ people waiting, and to everyone who arrives, within about 2 s: “Doors open at 8/);
    // How long until the edge answers a poll with it (the freshness bound is 1.75 s; the
    // console's call and the isolate's cache come on top).
    const waiter = crowd.tickets.find((t) => t.state === "waiting");
    const clicked = Date.now();
    await page.locator("#confirm-ok").click();
    await until(async () => {
      const r = await fetch(`${stack.edge}${PREFIX}/queue_pos/demo/${encodeURIComponent(waiter.request_id)}`);
      const body = await r.json();
      return body.notice?.en?.startsWith("Doors open at 8");
    }, { ms: 10_000, every: 50, what: "the message in the edge's queue_pos answer" });
    const took = Date.now() - clicked;
    assert.ok(took < 3500, `the message reached the edge's answers in ${took} ms`);
    await until(async () => (await vpage.locator("#anteroom-notice").textContent()) === "Doors open at 8: tickets are limited to 4 per person",
      { ms: 15_000, what: "the message on the visitor's page (polled)" });
    assert.equal(await vpage.locator("#anteroom-notice").isVisible(), true);
    await shot(vpage, "room-message-phone");
    const zh = await browser.newContext({ locale: "zh-CN", extraHTTPHeaders: { "accept-language": "zh-CN" } });
    const zpage = await zh.newPage();
    await zpage.goto(`${stack.edge}/shop/tickets`);
    assert.equal(await zpage.locator("#anteroom-notice").textContent(), "八点开门：每人限购 4 张", "server-rendered in Chinese");
    await zh.close();

    // Resume: admissions start again.
    await page.getByRole("button", { name: "Resume" }).click();
    assert.match(await page.locator("#confirm-body").textContent(), /^(Admits about [\d,]+ more people in the next 10 minutes|Admits people as sessions end)/);
    await page.locator("#confirm-ok").click();
    await until(async () => (await status()).serving_pos > paused.serving_pos, { ms: 30_000, what: "admissions after resume" });

    // The audit trail names each change and the key that made it.
    await until(async () => {
      const actions = await page.locator(".audit tr[data-action]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-action") + " " + r.children[1].textContent));
      return ["queue.pause bootstrap", "queue.update bootstrap", "queue.resume bootstrap"].every((a) => actions.includes(a));
    }, { ms: 15_000, what: "pause, message and resume in the audit trail" });
    assert.match(await page.locator('.audit tr[data-action="queue.update"] code').first().textContent(), /^notice: null → \{"en":"Doors open at 8/);
    // The queue page after the pause and the resume: on a desktop, and at 360 px without
    // sideways scrolling.
    await page.evaluate(() => window.scrollTo(0, 0));
    await until(async () => (await page.locator("#toast").textContent()) === "", { what: "the last notice gone" });
    await shot(page, "console-queue-desktop");
    await page.setViewportSize({ width: 360, height: 780 });
    await fits(page, 360);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(page, "console-queue-phone");
    await page.setViewportSize({ width: 1280, height: 860 });

    // One click takes the message down; the visitor's page drops it as it polls.
    await page.getByRole("button", { name: "Clear message" }).click();
    await until(async () => vpage.locator("#anteroom-notice").isHidden(), { ms: 15_000, what: "the message gone from the visitor's page" });
    assert.equal((await status()).queue.notice, null);
    await visitor.close();

    // The overview at 360 px.
    await page.setViewportSize({ width: 360, height: 780 });
    await page.getByRole("link", { name: "Overview", exact: true }).first().click();
    await until(async () => (await page.locator('tr[data-queue="demo"]').count()) === 1, { what: "overview again" });
    await fits(page, 360);
    await until(async () => (await page.locator("#toast").textContent()) === "", { what: "the last notice gone" });
    await shot(page, "console-overview-phone");

    // From outside the browser: the session cookie without its CSRF token, with the token from
    // another site, and a wrong key, are refused.
    const cookie = `anteroom_console=${session.value}`;
    const nope = await fetch(`${stack.adminUrl}/api/queue/demo/pause`, { method: "POST", headers: { cookie } });
    assert.deepEqual([nope.status, (await nope.json()).error], [403, "csrf_failed"]);
    const { csrf } = await (await fetch(`${stack.adminUrl}/console/session`, { headers: { cookie } })).json();
    const evil = await fetch(`${stack.adminUrl}/api/queue/demo/pause`, { method: "POST", headers: { cookie, "x-csrf-token": csrf, origin: "https://evil.example" } });
    assert.deepEqual([evil.status, (await evil.json()).error], [403, "csrf_failed"]);
    const wrong = await fetch(`${stack.adminUrl}/console/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key: "guess-guess-guess" }) });
    assert.equal(wrong.status, 401);
    assert.equal((await status()).queue.admission.paused, false, "none of them paused the queue");

    // Sign out: the form again, and the old cookie opens nothing.
    await page.getByRole("button", { name: "Sign out" }).click();
    await until(() => page.locator("#sign-in-key").isVisible(), { what: "signed out" });
    const after = await fetch(`${stack.adminUrl}/api/queues`, { headers: { cookie } });
    assert.equal(after.status, 401);
    assert.deepEqual(errors, []);
    assert.deepEqual(crowd.errors, []);
    assert.ok(crowd.claimed >= 3, `claimed ${crowd.claimed}`);
    await context.close();
  });

  test("dark scheme: the overview follows prefers-color-scheme", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 700 }, colorScheme: "dark" });
    const page = await context.newPage();
    await page.goto(`${stack.adminUrl}/console`);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, "rgb(17, 19, 21)");
    await context.close();
  });
});
