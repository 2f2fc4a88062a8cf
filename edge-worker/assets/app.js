// Anteroom waiting-room page: enter the queue (solving the proof-of-work off the main
// thread), follow our place with queue_pos at the interval the edge asks for
// (`next_poll_ms`), claim the token (the edge sets it as a cookie), then go back to the page
// the visitor wanted. The ticket is kept in localStorage (and, by the edge, in a cookie that
// the page hands over in `data-ticket`): a reload or a second tab keeps the place. Shown
// numbers never go backwards: an answer with a lower `version` than one shown is ignored,
// `ahead` only goes down, and the ETA band counts down; a bound is moved up only when the
// countdown fell far behind a fresh estimate (the line really slowed down).
// At its turn the page changes the title, optionally notifies and beeps (both off until the
// visitor ticks them), and shows the deadline to claim. A hidden tab does not claim by itself:
// it waits until the visitor looks (or clicks), so the token's time is not spent unseen.
// The rules the edge's Rust renders too (edge-worker/src/page.rs and forms.rs): the same
// inputs give the same text, checked against shared/test-vectors/page-rules.json, which the
// Rust side checks as well. `t(key, n)` looks up the page's strings.
var AnteroomRules = (function () {
  "use strict";
  function duration(t, secs) {
    return secs < 60 ? Math.max(1, Math.round(secs)) + " " + t("sec") : Math.round(secs / 60) + " " + t("min");
  }
  // "now" when served, "about <expected>" when the band is too wide to mean anything (high >
  // shared::eta::WIDE_BAND × expected), else the range.
  var WIDE_BAND = 3;
  function etaText(t, ahead, e) {
    if (ahead === 0) return t("now");
    if (!e) return t("eta_unknown");
    if (e.high_secs == null || e.high_secs > WIDE_BAND * Math.max(1, e.expected_secs)) return t("about", duration(t, e.expected_secs));
    return duration(t, e.low_secs) + " – " + duration(t, e.high_secs);
  }
  // Same-origin paths only: never an open redirect.
  function safeReturn(p) {
    if (typeof p !== "string" || p.charAt(0) !== "/" || p.charAt(1) === "/" || p.charAt(1) === "\\") return "/";
    if (new TextEncoder().encode(p).length > 2048 || /[\u0000-\u001f\u007f-\u009f]/.test(p)) return "/";
    return p;
  }
  // What the visitor waits for as one line, the page title with it, and the operator's
  // message in the page language (or the other one when that is empty): shared/src/presentation.rs.
  function what(logo, name) {
    return logo && name ? logo + ": " + name : logo || name || "";
  }
  function pageTitle(headline, w) { return w ? headline + " · " + w : headline; }
  function noticeText(n, lang) {
    if (!n) return "";
    var first = lang === "zh" ? n.zh : n.en, second = lang === "zh" ? n.en : n.zh;
    return first || second || "";
  }
  return {
    duration: duration, etaText: etaText, safeReturn: safeReturn, WIDE_BAND: WIDE_BAND,
    what: what, pageTitle: pageTitle, noticeText: noticeText,
  };
})();
if (typeof module === "object" && module.exports) module.exports = AnteroomRules;
else (function () {
  "use strict";
  var R = AnteroomRules;
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
  var prefsKey = "anteroom:prefs";
  var claimDeadline = 0; // ms since epoch, 0 when unknown
  var turned = false;

  function t(key, n) { return (S[key] || key).replace("{n}", n); }

  // What the visitor waits for and the operator's message, as the last answer said (the
  // server rendered them first; each poll may change them).
  var lang = document.documentElement.lang === "zh" ? "zh" : "en";
  var waitingFor = "";
  var logoEl = $("anteroom-logo"), nameEl = $("anteroom-name"), brandEl = $("anteroom-brand"), noticeEl = $("anteroom-notice");
  if (logoEl || nameEl) waitingFor = R.what(logoEl ? logoEl.textContent : "", nameEl ? nameEl.textContent : "");
  function setTitle(headline) { document.title = R.pageTitle(headline, waitingFor); }
  function present(q) {
    waitingFor = R.what(q.logo_text, q.display_name);
    if (logoEl) logoEl.textContent = q.logo_text || "";
    if (nameEl) nameEl.textContent = q.display_name || "";
    if (brandEl) brandEl.hidden = !waitingFor;
    var n = R.noticeText(q.notice, lang);
    if (noticeEl && noticeEl.textContent !== n) noticeEl.textContent = n;
    if (noticeEl) noticeEl.hidden = !n;
  }

  var returnTo = R.safeReturn(root.getAttribute("data-return"));

  function say(main, sub) {
    status.textContent = main;
    detail.textContent = sub || "";
  }
  function sleep(ms) {
    return new Promise(function (r) { setTimeout(r, ms); });
  }
  // A poll wait that ends early when the tab becomes visible again: hidden tabs get about one
  // timer a minute, so a visitor who comes back should not look at numbers a minute old.
  function nap(ms) {
    return new Promise(function (r) {
      var done = function () {
        if (document.visibilityState !== "visible") return;
        clearTimeout(id);
        document.removeEventListener("visibilitychange", done);
        r();
      };
      var id = setTimeout(function () { document.removeEventListener("visibilitychange", done); r(); }, ms);
      document.addEventListener("visibilitychange", done);
    });
  }
  function visible() {
    return new Promise(function (r) {
      if (document.visibilityState === "visible") return r();
      var done = function () {
        if (document.visibilityState !== "visible") return;
        document.removeEventListener("visibilitychange", done);
        r();
      };
      document.addEventListener("visibilitychange", done);
      button.addEventListener("click", function () { document.removeEventListener("visibilitychange", done); r(); }, { once: true });
    });
  }
  function form(fields) {
    return { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() };
  }
  function load() {
    try { return JSON.parse(store.getItem(storeKey) || "null"); } catch (e) { return null; }
  }
  function save(tk) { try { store.setItem(storeKey, JSON.stringify(tk)); } catch (e) { /* private mode */ } }
  function forget() { try { store.removeItem(storeKey); } catch (e) { /* private mode */ } }

  // Preferences, kept across visits: notification and sound at the turn, both off by default.
  var prefs = { notify: false, sound: false };
  try { prefs = Object.assign(prefs, JSON.parse(store.getItem(prefsKey) || "{}")); } catch (e) { /* defaults */ }
  var notifyBox = $("anteroom-notify"), soundBox = $("anteroom-sound"), audio = null;
  function savePrefs() { try { store.setItem(prefsKey, JSON.stringify(prefs)); } catch (e) { /* private mode */ } }
  function canNotify() { return typeof window.Notification === "function"; }
  function unlockAudio() {
    var A = window.AudioContext || window.webkitAudioContext;
    if (!audio && A) { try { audio = new A(); } catch (e) { audio = null; } }
    if (audio && audio.state === "suspended") audio.resume();
  }
  function beep() {
    if (!audio) return;
    var o = audio.createOscillator(), g = audio.createGain(), t0 = audio.currentTime;
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.0001, t0);
    g.gain.exponentialRampToValueAtTime(0.2, t0 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.6);
    o.connect(g).connect(audio.destination);
    o.start(t0);
    o.stop(t0 + 0.65);
  }
  if (notifyBox) {
    if (!canNotify()) notifyBox.parentNode.hidden = true;
    notifyBox.checked = prefs.notify && canNotify() && Notification.permission === "granted";
    notifyBox.onchange = function () {
      prefs.notify = notifyBox.checked;
      savePrefs();
      if (notifyBox.checked && Notification.permission !== "granted") {
        Promise.resolve(Notification.requestPermission()).then(function (p) {
          if (p !== "granted") { notifyBox.checked = prefs.notify = false; savePrefs(); }
        });
      }
    };
  }
  if (soundBox) {
    soundBox.checked = !!prefs.sound;
    soundBox.onchange = function () {
      prefs.sound = soundBox.checked;
      savePrefs();
      if (prefs.sound) unlockAudio(); // a click is what browsers require to allow sound
    };
    if (prefs.sound) document.addEventListener("pointerdown", unlockAudio, { once: true });
  }
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
    // The edge knew our ticket from its cookie (localStorage cleared, or another browser
    // profile sharing cookies): keep that place.
    var known = root.getAttribute("data-ticket");
    if (known) {
      saved = { request_id: known };
      save(saved);
      return saved;
    }
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


  // The ETA band to show. Each bound counts down from the one shown and follows a fresh
  // estimate down, so the wait shown does not grow back on every poll. A bound that counted
  // down to less than half of the fresh estimate is reset to the estimate (the line slowed: a
  // low bound of "1 s" while the estimate says a minute would be a lie), and a fresh band
  // wholly above the shown one replaces it.
  function nextEta(fresh, now) {
    if (!fresh) return shown.eta;
    var prev = shown.eta;
    if (!prev) return fresh;
    var el = (now - shown.at) / 1000;
    var prevHigh = prev.high_secs == null ? null : Math.max(0, prev.high_secs - el);
    if (prevHigh != null && fresh.low_secs > prevHigh) return fresh;
    var down = function (o, n) {
      var v = Math.min(n, Math.max(0, o - el));
      return v < n / 2 ? n : v;
    };
    var high = fresh.high_secs == null ? prevHigh : (prevHigh == null ? fresh.high_secs : down(prev.high_secs, fresh.high_secs));
    var low = down(prev.low_secs, fresh.low_secs);
    return {
      low_secs: high == null ? low : Math.min(low, high),
      expected_secs: down(prev.expected_secs, fresh.expected_secs),
      high_secs: high,
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
    present(q);
    place.hidden = false;
    $("anteroom-progress-box").hidden = false;
    $("anteroom-prefs").hidden = false;
    $("anteroom-position").textContent = String(q.position);
    $("anteroom-ahead").textContent = String(ahead);
    $("anteroom-eta").textContent = R.etaText(t, ahead, shown.eta);
    $("anteroom-progress").value = tk.start_ahead > 0 ? Math.round(100 * (tk.start_ahead - ahead) / tk.start_ahead) : 100;
    if (ahead > 0) say(t("title"), t("ahead_detail", ahead));
    tick();
    return true;
  }

  function tick() {
    if (updatedAt) $("anteroom-updated").textContent = t("updated", Math.round((Date.now() - updatedAt) / 1000));
    if (turned && claimDeadline) {
      detail.textContent = t("claim_within", R.duration(t, Math.max(0, (claimDeadline - Date.now()) / 1000)));
    }
  }
  setInterval(tick, 1000);

  // The place is gone: say so, and offer a fresh place in line (a new ticket; the response
  // to the new enqueue also replaces the ticket cookie).
  function expired() {
    forget();
    root.setAttribute("data-ticket", "");
    turned = false;
    claimDeadline = 0;
    place.hidden = true;
    setTitle(t("expired_title"));
    say(t("expired_title"), t("expired_detail"));
    button.textContent = t("rejoin");
    button.onclick = function () {
      button.onclick = null;
      action.hidden = true;
      root.setAttribute("data-state", "new");
      shown.ahead = null;
      shown.eta = null;
      updatedAt = 0;
      setTitle(t("title"));
      start();
    };
    action.hidden = false;
    button.focus();
  }

  // Our place is served: make it noticeable, once, and show the deadline to claim it.
  function turn(q) {
    if (typeof q.claim_in_secs === "number") claimDeadline = Date.now() + 1000 * q.claim_in_secs;
    if (turned) return;
    turned = true;
    setTitle("▶ " + t("turn_title"));
    say(t("turn_title"), claimDeadline ? "" : t("turn_detail"));
    tick();
    button.textContent = t("go");
    button.onclick = null;
    action.hidden = false;
    if (prefs.notify && canNotify() && Notification.permission === "granted") {
      try {
        var n = new Notification(t("turn_title"), { body: t("turn_notice"), tag: "anteroom-" + queue });
        n.onclick = function () { window.focus(); n.close(); };
      } catch (e) { /* some browsers allow notifications only from a service worker */ }
    }
    if (prefs.sound) beep();
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
    if (root.getAttribute("data-state") === "expired" && !load()) return expired();
    var tk = await enter();
    for (;;) {
      var wait = 2000;
      var r = await fetch(prefix + "/queue_pos/" + queue + "/" + encodeURIComponent(tk.request_id), { cache: "no-store" });
      if (r.status === 410) return expired();
      if (r.status === 400) {
        // Not a ticket of this queue any more (keys rotated, queue replaced): drop it everywhere
        // so the retry joins afresh instead of presenting it again.
        forget();
        root.setAttribute("data-ticket", "");
        throw new Error("ticket refused");
      }
      if (r.status === 200) {
        var q = await r.json();
        wait = q.next_poll_ms || wait;
        show(tk, q);
        if (shown.ahead === 0) {
          turn(q);
          if (document.visibilityState !== "visible") await visible();
          var c = await claim(tk);
          if (c === "done") return;
          if (c === "expired") return expired();
          wait = c;
        }
      } else {
        await r.text();
      }
      await nap(wait);
    }
  }

  function start() {
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
  }
  start();
})();
