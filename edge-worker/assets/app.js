// Anteroom waiting-room page: enter the queue (solving the proof-of-work off the main
// thread), follow our place with queue_pos at the interval the edge asks for
// (`next_poll_ms`), claim the token (the edge sets it as a cookie), then go back to the page
// the visitor wanted. The ticket is kept in localStorage: a reload or a second tab keeps the
// place. Shown numbers never go backwards: an answer with a lower `version` than one shown is
// ignored, `ahead` only goes down, and the ETA band only counts down unless a fresh band lies
// entirely above the shown one (the line really slowed down).
(function () {
  "use strict";
  var root = document.getElementById("anteroom");
  var queue = root.getAttribute("data-queue");
  var prefix = root.getAttribute("data-prefix");
  var powUrl = root.getAttribute("data-pow");
  var S = {};
  try { S = JSON.parse(root.getAttribute("data-strings") || "{}"); } catch (e) { S = {}; }
  var $ = function (id) { return document.getElementById(id); };
  var status = $("anteroom-status"), detail = $("anteroom-detail"), place = $("anteroom-place");
  var action = $("anteroom-action"), button = $("anteroom-button");
  var storeKey = "anteroom:" + queue;
  var shown = { version: 0, ahead: null, eta: null, at: 0 };
  var updatedAt = 0;
  var store = window.localStorage;

  function t(key, n) { return (S[key] || key).replace("{n}", n); }

  // Same-origin paths only: never an open redirect.
  function safeReturn(p) {
    if (typeof p !== "string" || p.charAt(0) !== "/" || p.charAt(1) === "/" || p.charAt(1) === "\\") return "/";
    if (/[\u0000-\u001f]/.test(p)) return "/";
    return p;
  }
  var returnTo = safeReturn(root.getAttribute("data-return"));

  function say(main, sub) {
    status.textContent = main;
    detail.textContent = sub || "";
  }
  function sleep(ms) {
    return new Promise(function (r) { setTimeout(r, ms); });
  }
  function form(fields) {
    return { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() };
  }
  function load() {
    try { return JSON.parse(store.getItem(storeKey) || "null"); } catch (e) { return null; }
  }
  function save(tk) { try { store.setItem(storeKey, JSON.stringify(tk)); } catch (e) { /* private mode */ } }
  function forget() { try { store.removeItem(storeKey); } catch (e) { /* private mode */ } }

  function solve(challenge, difficulty) {
    return new Promise(function (resolve, reject) {
      var w = new Worker(powUrl);
      var expected = Math.pow(2, difficulty);
      w.onmessage = function (ev) {
        if (ev.data.progress !== undefined) {
          // Chance of having found it by now: a fair progress figure for a memoryless search.
          say(t("joining"), t("solving", Math.min(99, Math.floor(100 * (1 - Math.exp(-ev.data.progress / expected))))));
          return;
        }
        w.terminate();
        resolve(ev.data.counter);
      };
      w.onerror = function (e) { w.terminate(); reject(e); };
      w.postMessage({ challenge: challenge, difficulty: difficulty });
    });
  }

  async function enter() {
    var saved = load();
    if (saved && saved.request_id) return saved;
    say(t("joining"), t("checking"));
    var ch = await (await fetch(prefix + "/pow/challenge?queue_id=" + encodeURIComponent(queue))).json();
    var fields = { queue_id: queue };
    if (ch.difficulty > 0) {
      fields.pow_challenge = ch.challenge;
      fields.pow_counter = await solve(ch.challenge, ch.difficulty);
    }
    var r = await fetch(prefix + "/assign_queue_pos", form(fields));
    if (r.status !== 200) throw new Error("enqueue answered " + r.status);
    var tk = await r.json();
    save(tk);
    return tk;
  }

  function duration(secs) {
    return secs < 60 ? Math.max(1, Math.round(secs)) + " " + t("sec") : Math.round(secs / 60) + " " + t("min");
  }

  // The ETA band to show: each bound counts down from the one shown and never rises, unless
  // the fresh band is wholly above the shown one (the admission rate fell): then it is shown.
  function nextEta(fresh, now) {
    if (!fresh) return shown.eta;
    var prev = shown.eta;
    if (!prev) return fresh;
    var el = (now - shown.at) / 1000;
    var prevHigh = prev.high_secs == null ? null : Math.max(0, prev.high_secs - el);
    if (prevHigh != null && fresh.low_secs > prevHigh) return fresh;
    var down = function (o, n) { return Math.min(n, Math.max(0, o - el)); };
    return {
      low_secs: down(prev.low_secs, fresh.low_secs),
      expected_secs: down(prev.expected_secs, fresh.expected_secs),
      high_secs: fresh.high_secs == null ? prevHigh : (prevHigh == null ? fresh.high_secs : Math.min(fresh.high_secs, prevHigh)),
    };
  }

  function show(tk, q) {
    if (q.version < shown.version) return false; // another PoP lags: keep what is shown
    var now = Date.now();
    var ahead = shown.ahead == null ? q.ahead : Math.min(shown.ahead, q.ahead);
    shown.eta = nextEta(q.eta, now);
    shown.version = q.version;
    shown.ahead = ahead;
    shown.at = now;
    updatedAt = now;
    if (typeof tk.start_ahead !== "number" || ahead > tk.start_ahead) {
      tk.start_ahead = ahead;
      save(tk);
    }
    place.hidden = false;
    $("anteroom-position").textContent = String(q.position);
    $("anteroom-ahead").textContent = String(ahead);
    var e = shown.eta;
    $("anteroom-eta").textContent = !e ? t("eta_unknown")
      : e.high_secs == null ? "≥ " + duration(e.low_secs)
      : duration(e.low_secs) + " – " + duration(e.high_secs);
    $("anteroom-progress").value = tk.start_ahead > 0 ? Math.round(100 * (tk.start_ahead - ahead) / tk.start_ahead) : 100;
    if (ahead > 0) say(t("title"), t("ahead_detail", ahead));
    tick();
    return true;
  }

  function tick() {
    if (updatedAt) $("anteroom-updated").textContent = t("updated", Math.round((Date.now() - updatedAt) / 1000));
  }
  setInterval(tick, 1000);

  function expired() {
    forget();
    place.hidden = true;
    document.title = t("expired_title");
    say(t("expired_title"), t("expired_detail"));
    button.textContent = t("rejoin");
    button.onclick = function () { location.reload(); };
    action.hidden = false;
    button.focus();
  }

  function turn() {
    document.title = "▶ " + t("turn_title");
    say(t("turn_title"), t("turn_detail"));
    button.textContent = t("go");
    button.onclick = function () { location.replace(returnTo); };
    action.hidden = false;
  }

  async function claim(tk) {
    var g = await fetch(prefix + "/generate_token", form({ queue_id: queue, request_id: tk.request_id }));
    if (g.status === 200) {
      forget();
      location.replace(returnTo);
      return "done";
    }
    if (g.status === 410) return "expired";
    var body = await g.json().catch(function () { return {}; });
    return body.next_poll_ms || 2000;
  }

  async function run() {
    var tk = await enter();
    for (;;) {
      var wait = 2000;
      var r = await fetch(prefix + "/queue_pos/" + queue + "/" + encodeURIComponent(tk.request_id), { cache: "no-store" });
      if (r.status === 410) return expired();
      if (r.status === 400) { forget(); throw new Error("ticket refused"); }
      if (r.status === 200) {
        var q = await r.json();
        wait = q.next_poll_ms || wait;
        show(tk, q);
        if (shown.ahead === 0) {
          turn();
          var c = await claim(tk);
          if (c === "done") return;
          if (c === "expired") return expired();
          wait = c;
        }
      } else {
        await r.text();
      }
      await sleep(wait);
    }
  }

  (async function loop() {
    for (;;) {
      try {
        await run();
        return;
      } catch (e) {
        say(t("reconnecting"), String(e && e.message || e));
        await sleep(3000);
      }
    }
  })();
})();
