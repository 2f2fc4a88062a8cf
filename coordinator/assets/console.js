// Anteroom operator console: sign in with an operator key (the coordinator answers with an
// HttpOnly session cookie and a CSRF token), then everything through the private API's own
// routes: the overview (GET /api/overview every 2 s), a queue's page (GET
// /api/queue/{id}/live every 2 s, its audit trail every 5 s), the controls (PUT /api/queue,
// the pause/resume/drain/open switches, increment_serving_position) and the create form
// (POST /api/queue, its defaults and bounds from GET /api/queue_defaults). Every change asks
// for confirmation first, in numbers (ConsoleEffects below, loadable by Node for its tests),
// and carries the CSRF token. No dependencies; nothing is loaded from elsewhere.
var ConsoleEffects = (function () {
  "use strict";
  // The horizon the confirmations speak of: "in the next 10 minutes".
  var H = 600;
  // Attempts per second of a slow phone at the proof-of-work (shared/src/pow.rs, measured).
  var PHONE_HASHES = 400000;
  function n(x) { return Math.round(x).toLocaleString("en-US"); }
  function perSec(x) {
    return (x >= 10 ? Math.round(x).toLocaleString("en-US") : (Math.round(x * 10) / 10).toString()) + "/s";
  }
  function secs(x) {
    if (x < 1) return "under a second";
    if (x < 120) return Math.round(x) + " s";
    if (x < 7200) return Math.round(x / 60) + " min";
    return (Math.round(x / 360) / 10) + " h";
  }
  function admits(rate, waiting) { return Math.min(waiting, Math.max(0, rate) * H); }
  // The rate admissions run at now: the policy's target, else what was measured.
  function runRate(s) { return s.target_rate != null ? s.target_rate : s.admission_rate; }
  function what(logo, name) { return logo && name ? logo + ": " + name : logo || name || ""; }
  function policyOf(q) { return q.admission ? q.admission.policy : { strategy: "manual" }; }
  function capClause(m) { return m ? ", with at most " + n(m) + " sessions at once" : ""; }

  function policyEffect(s, q, p) {
    var w = s.waiting, old = policyOf(q);
    if (p.strategy === "manual") {
      return "Automatic admission stops: nobody more is admitted until you advance the serving position by hand (" + n(w) + " waiting).";
    }
    if (p.strategy === "fixed_rate") {
      var r = Number(p.rate_per_sec), text = "Admits about " + n(admits(r, w)) + " people in the next 10 minutes at " + perSec(r);
      if (old.strategy === "fixed_rate") text += " instead of about " + n(admits(old.rate_per_sec, w)) + " at " + perSec(old.rate_per_sec);
      else text += " (admitting about " + perSec(s.admission_rate) + " now)";
      if (w < r * H) text += "; that is the whole line of " + n(w) + ", then new arrivals as they come";
      return text + capClause(p.max_active) + ".";
    }
    if (p.strategy === "capacity") {
      var m = Number(p.max_active), a = s.active;
      return "At most " + n(m) + " sessions at once (" + n(a) + " live now" + (s.max_active ? ", cap " + n(s.max_active) : "") + "): " +
        (m > a ? "about " + n(Math.min(m - a, w)) + " more people can be admitted now, then one per session that ends."
          : "nobody more is admitted until " + n(a - m + 1) + " sessions end.");
    }
    var max = Number(p.max_rate);
    return "The rate follows the origin's health up to " + perSec(max) + " (target latency " + n(p.target_latency_ms) +
      " ms): at most about " + n(admits(max, w)) + " people in the next 10 minutes" + capClause(p.max_active) + ".";
  }

  // The confirmation of an action: { title, body, verb, danger }.
  function effect(action, s, q, input) {
    var w = s.waiting, r = runRate(s);
    switch (action) {
      case "pause":
        return { title: "Pause admissions?", verb: "Pause", danger: true,
          body: "Nobody more is admitted until you resume: at the current " + perSec(r) + " that holds back about " + n(admits(r, w)) +
            " people in the next 10 minutes. The " + n(w) + " waiting keep their places; claim deadlines stand still." };
      case "resume": {
        var body = r > 0 ? "Admits about " + n(admits(r, w)) + " more people in the next 10 minutes (about " + perSec(r) + "; " + n(w) + " waiting)."
          : s.max_active ? "Admits people as sessions end: " + n(Math.max(0, s.max_active - s.active)) + " of " + n(s.max_active) + " sessions are free now (" + n(w) + " waiting)."
          : "Admissions restart (" + n(w) + " waiting).";
        return { title: "Resume admissions?", verb: "Resume", body: body };
      }
      case "drain":
        return { title: "Drain the queue?", verb: "Drain", danger: true,
          body: "No new places and no new sessions from now: the " + n(w) + " people waiting will not get in and new visitors are refused. The " +
            n(s.active) + " live sessions run to their end. Open undoes it." };
      case "open": {
        var parts = [];
        if (q.mode === "closed") parts.push("the queue takes visitors again (mode queue)");
        if (s.state === "scheduled") parts.push("it opens now instead of at " + new Date(q.opens_at * 1000).toLocaleString("en-GB") + (q.prequeue_opens_at ? "; the pre-queue, not open yet, is dropped" : ""));
        if (s.state === "prequeue") parts.push("the pre-queue's arrivals are drawn now and admissions start");
        if (s.state === "paused" || s.state === "draining") parts.push("admissions restart: about " + n(admits(r, w)) + " people in the next 10 minutes");
        if (q.closes_at && q.closes_at * 1000 <= Date.now()) parts.push("the closing time is cleared");
        if (!parts.length) parts.push("the queue is open already; nothing changes");
        var text = parts.join("; ");
        return { title: "Open now?", verb: "Open now", body: text.charAt(0).toUpperCase() + text.slice(1) + "." };
      }
      case "policy":
        return { title: "Change admission to " + input.strategy.replace("_", " ") + "?", verb: "Apply", body: policyEffect(s, q, input) };
      case "advance": {
        var by = Number(input), ahead = Math.max(0, s.assigned - s.serving_pos);
        var t = "Admits the next " + n(by) + " places at once (" + n(s.serving_pos + 1) + "–" + n(s.serving_pos + by) + "): " +
          (by >= w ? "everyone waiting (" + n(w) + ")" : n(w - by) + " stay waiting") + ".";
        if (by > ahead) t += " " + n(by - ahead) + " of them are not handed out yet: the next arrivals walk straight in.";
        if (q.enable_queue_position_expiry) t += " Each has " + secs(q.position_expiry_second) + " to claim.";
        return { title: "Advance by " + n(by) + "?", verb: "Admit " + n(by), body: t };
      }
      case "mode":
        return { title: "Switch to " + input + "?", verb: "Switch", danger: input !== "queue", body:
          input === "passthrough" ? "Everyone passes the edge without a token: the " + n(w) + " people waiting and every new visitor go straight to the site."
          : input === "closed" ? "Nobody passes: the " + n(w) + " people waiting, the " + n(s.active) + " with a live session and every new visitor see a closed page."
          : "Visitors need a token again: new arrivals wait in line (" + n(w) + " waiting)." };
      case "fail_open":
        return { title: input ? "Fail open?" : "Fail closed?", verb: "Apply", danger: !!input, body: input
          ? "When an edge has no state for this queue, visitors go straight to the site instead of waiting."
          : "When an edge has no state for this queue, visitors are held in the waiting room." };
      case "pow": {
        var d = Number(input);
        return { title: "Proof-of-work difficulty " + d + "?", verb: "Apply", body: d === 0
          ? "No proof-of-work: joining costs nothing, for bots too."
          : "Each join costs about " + n(Math.pow(2, d)) + " hashes: a median of " + secs(Math.LN2 * Math.pow(2, d) / PHONE_HASHES) +
            " on a slow phone (" + n(PHONE_HASHES) + " hashes/s). Was " + q.pow_difficulty + "." };
      }
      case "expiry":
        return { title: "Change position expiry?", verb: "Apply", body: input.enabled
          ? "A served place stays claimable for " + secs(input.secs) + (q.enable_queue_position_expiry ? " (was " + secs(q.position_expiry_second) + ")" : " (it never expired)") +
            ": whoever does not come back in time loses it and the line moves on."
          : "Served places never expire: an unclaimed place holds its slot for good." };
      case "notice":
        return { title: "Show this message?", verb: "Show message", body: "Shown to the " + n(w) + " people waiting, and to everyone who arrives, within about 2 s: " +
          [input.en && "“" + input.en + "”", input.zh && "“" + input.zh + "”"].filter(Boolean).join(" / ") + "." };
      case "names": {
        var line = what(input.logo_text, input.display_name);
        return { title: "Change what the page says?", verb: "Apply", body: line
          ? "The waiting page of the " + n(w) + " people waiting will read “" + line + "” within about 2 s."
          : "The waiting page will no longer say what it is for (" + n(w) + " waiting)." };
      }
      case "delete":
        return { title: "Delete " + q.queue_id + "?", verb: "Delete", danger: true,
          body: "Deletes the queue for good: its " + n(w) + " waiting lose their places and its " + n(s.active) + " sessions end; its tickets and tokens open nothing." };
      default:
        return { title: action, verb: "Confirm", body: "" };
    }
  }
  return { effect: effect, n: n, perSec: perSec, secs: secs, what: what, H: H };
})();
if (typeof module === "object" && module.exports) module.exports = ConsoleEffects;
else (function () {
  "use strict";
  var E = ConsoleEffects;
  var $ = function (id) { return document.getElementById(id); };
  var view = $("view"), main = $("main");
  var session = null, timers = [], route = "", defaults = null;

  // ---- DOM helpers: text only, never HTML strings ----
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v == null || v === false) continue;
      if (k === "text") el.textContent = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    (kids || []).forEach(function (c) { if (c != null) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return el;
  }
  var SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    for (var k in attrs) el.setAttribute(k, attrs[k]);
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function toast(msg) {
    var t = $("toast");
    t.textContent = msg;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.textContent = ""; }, 5000);
  }
  function ago(secs) {
    if (secs == null) return "never";
    return secs < 90 ? Math.round(secs) + " s ago" : Math.round(secs / 60) + " min ago";
  }
  function etaText(e) {
    if (!e) return "–";
    return E.secs(e.expected_secs);
  }

  // ---- the private API, with the session cookie and the CSRF token ----
  async function api(method, path, body, form) {
    var init = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET") init.headers["x-csrf-token"] = session ? session.csrf : "";
    if (body !== undefined) {
      init.headers["content-type"] = form ? "application/x-www-form-urlencoded" : "application/json";
      init.body = form ? new URLSearchParams(body).toString() : JSON.stringify(body);
    }
    var r = await fetch(path, init);
    var text = await r.text(), json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (r.status === 401 && path !== "/console/session") signedOut();
    return { status: r.status, ok: r.ok, json: json };
  }
  function failure(r) {
    return r.json && r.json.message ? r.json.message + " (" + r.json.error + ")" : "the coordinator answered " + r.status;
  }

  // ---- confirmation ----
  function confirmThen(effect, run) {
    var d = $("confirm");
    $("confirm-title").textContent = effect.title;
    $("confirm-body").textContent = effect.body;
    var ok = $("confirm-ok");
    ok.textContent = effect.verb;
    ok.className = effect.danger ? "danger" : "";
    d.returnValue = "";
    d.onclose = function () {
      d.onclose = null;
      if (d.returnValue === "ok") run();
    };
    d.showModal();
    $("confirm-cancel").focus();
  }

  // ---- session ----
  function signedOut() {
    session = null;
    stop();
    $("nav").hidden = true;
    $("who").hidden = true;
    clear(view);
    $("sign-in").hidden = false;
    $("sign-in-key").focus();
  }
  function signedIn(sess) {
    session = sess;
    $("sign-in").hidden = true;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("who-name").textContent = "Signed in as " + sess.key;
    go();
  }
  $("sign-in-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var key = $("sign-in-key").value;
    $("sign-in-error").textContent = "";
    var r = await api("POST", "/console/session", { key: key });
    $("sign-in-key").value = "";
    if (r.ok) signedIn(r.json);
    else {
      $("sign-in-error").textContent = r.status === 401 ? "That is not an operator key." : failure(r);
      $("sign-in-key").focus();
    }
  });
  $("sign-out").addEventListener("click", async function () {
    await api("DELETE", "/console/session");
    signedOut();
  });

  // ---- routing: #/ overview, #/q/<slug> a queue, #/new the create form ----
  function stop() { timers.forEach(clearInterval); timers = []; }
  function every(ms, f) { f(); timers.push(setInterval(f, ms)); }
  function go() {
    if (!session) return;
    stop();
    route = location.hash || "#/";
    clear(view);
    document.querySelectorAll("#nav a").forEach(function (a) {
      if (a.getAttribute("href") === route) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    var m = route.match(/^#\/q\/([a-z0-9_-]{1,32})$/);
    if (m) queuePage(m[1]);
    else if (route === "#/new") createPage();
    else overviewPage();
    main.focus();
  }
  window.addEventListener("hashchange", go);

  function badge(state) { return h("span", { class: "badge " + state, text: state.replace("prequeue", "pre-queue") }); }
  function warningList(ws, el) {
    clear(el);
    ws.forEach(function (w) {
      var bad = /lost|down|unhealthy|stale/.test(w.code);
      el.appendChild(h("li", { class: "warn" + (bad ? " bad" : ""), "data-code": w.code, text: w.message }));
    });
  }
  function active(q) { return q.max_active != null ? E.n(q.active) + " / " + E.n(q.max_active) : E.n(q.active); }
  function rateText(q) {
    return E.perSec(q.admission_rate) + (q.target_rate != null ? " (target " + E.perSec(q.target_rate) + ")" : "");
  }
  function originText(o) {
    if (!o) return "no reports";
    return Math.round(o.latency_ms) + " ms, " + (o.error_rate * 100).toFixed(1) + "% errors, " + ago(o.age_secs);
  }

  // ---- overview ----
  function overviewPage() {
    var warns = h("ul", { class: "warnings", id: "global-warnings" });
    var body = h("tbody", { id: "queues" });
    var cols = ["Queue", "State", "Waiting", "Active / max", "Admission rate", "Arrivals/min", "ETA back of line", "Origin", "Edge freshness", "Warnings"];
    var table = h("table", { class: "cards" }, [h("thead", {}, [h("tr", {}, cols.map(function (c) { return h("th", { scope: "col", text: c }); }))]), body]);
    var stamp = h("p", { class: "muted", id: "overview-stamp" });
    view.appendChild(h("h1", { text: "Overview" }));
    view.appendChild(warns);
    view.appendChild(h("section", { class: "panel", "aria-label": "Queues" }, [table, stamp]));
    every(2000, async function () {
      var r = await api("GET", "/api/overview");
      if (!r.ok || route !== "#/" && route !== "") return;
      var o = r.json;
      warningList(o.warnings, warns);
      clear(body);
      if (!o.store_up) body.appendChild(h("tr", {}, [h("td", { colspan: cols.length, class: "empty", text: "The store does not answer: no numbers until it does." })]));
      else if (!o.queues.length) body.appendChild(h("tr", {}, [h("td", { colspan: cols.length, class: "empty" }, ["No queues yet. ", h("a", { href: "#/new", text: "Create one" })])]));
      o.queues.forEach(function (q) {
        var ws = h("ul", { class: "warnings" });
        warningList(q.warnings, ws);
        var cell = function (label, content, cls) { return h("td", { "data-label": label, class: cls || "num" }, [content]); };
        body.appendChild(h("tr", { "data-queue": q.queue_id }, [
          h("td", { class: "first" }, [h("a", { href: "#/q/" + q.queue_id, text: q.display_name || q.queue_id }), q.display_name ? h("span", { class: "muted", text: " " + q.queue_id }) : null]),
          cell("State", badge(q.state), ""),
          cell("Waiting", E.n(q.waiting)),
          cell("Active / max", active(q)),
          cell("Admission rate", rateText(q)),
          cell("Arrivals/min", E.n(q.arrivals_per_min)),
          cell("ETA back of line", etaText(q.eta_back)),
          cell("Origin", originText(q.origin), ""),
          cell("Edge freshness", o.publishing ? ago(q.published_age_secs) : "not publishing"),
          cell("Warnings", q.warnings.length ? ws : "–", ""),
        ]));
      });
      stamp.textContent = "Store: " + o.store + (o.store_up ? " (up)" : " (DOWN)") + ". Updated " + new Date(o.generated_at_ms).toLocaleTimeString("en-GB") + ".";
    });
  }

  // ---- charts: small SVG line charts, no library ----
  function chart(title, series, unit) {
    // series: [{ name, points: [[t ms, value]] }]; x from the oldest point (at most an hour,
    // at least a minute back) to now.
    var W = 400, Hh = 150, L = 40, B = 20, now = Date.now(), oldest = now;
    var max = 1;
    series.forEach(function (se) { se.points.forEach(function (p) { if (p[1] > max) max = p[1]; if (p[0] < oldest) oldest = p[0]; }); });
    var span = Math.min(3600e3, Math.max(60e3, now - oldest)), from = now - span;
    var mins = function (f) { var m = span * f / 60e3; return "−" + (m >= 10 ? Math.round(m) : Math.round(m * 10) / 10) + " min"; };
    var svg = s("svg", { viewBox: "0 0 " + W + " " + Hh, role: "img" });
    for (var i = 0; i <= 2; i++) {
      var y = 6 + (Hh - B - 6) * i / 2;
      svg.appendChild(s("line", { class: "grid", x1: L, x2: W, y1: y, y2: y }));
      var label = s("text", { class: "axis", x: L - 4, y: y + 4, "text-anchor": "end" });
      label.textContent = E.n(max * (2 - i) / 2);
      svg.appendChild(label);
    }
    [[mins(1), L, "start"], [mins(0.5), (L + W) / 2, "middle"], ["now", W, "end"]].forEach(function (a) {
      var t = s("text", { class: "axis", x: a[1], y: Hh - 4, "text-anchor": a[2] });
      t.textContent = a[0];
      svg.appendChild(t);
    });
    var summary = [];
    series.forEach(function (se, k) {
      var pts = se.points.filter(function (p) { return p[0] >= from; }).map(function (p) {
        var x = L + (W - L) * (p[0] - from) / (now - from), y = 6 + (Hh - B - 6) * (1 - p[1] / max);
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      if (pts.length) svg.appendChild(s("polyline", { class: "s" + k, points: pts.join(" ") }));
      var last = se.points.length ? se.points[se.points.length - 1][1] : 0, peak = 0;
      se.points.forEach(function (p) { if (p[1] > peak) peak = p[1]; });
      summary.push(se.name + " " + E.n(last) + unit + " now, peak " + E.n(peak) + unit);
    });
    svg.setAttribute("aria-label", title + ", last " + mins(1).slice(1) + ": " + summary.join("; "));
    var legend = series.length > 1 ? h("p", { class: "legend" }, series.map(function (se, k) { return h("span", { class: "k" + k, text: se.name }); })) : null;
    return h("div", { class: "panel chart" }, [h("h3", { text: title }), svg, legend]);
  }

  // ---- a queue's page ----
  function queuePage(slug) {
    var first = true, live = null, samples = [];
    var head = h("div", { class: "headline" });
    var tiles = h("dl", { class: "tiles" });
    var warns = h("ul", { class: "warnings" });
    var charts = h("div", { class: "charts" });
    var controls = h("div", { class: "controls" });
    var audit = h("tbody", {});
    view.appendChild(h("p", { class: "crumbs" }, [h("a", { href: "#/", text: "← Overview" })]));
    view.appendChild(head);
    view.appendChild(warns);
    view.appendChild(h("h2", { class: "sr", text: "Numbers" }));
    view.appendChild(tiles);
    view.appendChild(charts);
    view.appendChild(h("h2", { text: "Controls" }));
    view.appendChild(controls);
    view.appendChild(h("section", { class: "panel audit", "aria-labelledby": "audit-title" }, [
      h("h2", { id: "audit-title", text: "Audit trail" }),
      h("table", { class: "cards" }, [h("thead", {}, [h("tr", {}, ["When", "Key", "Action", "What changed"].map(function (c) { return h("th", { scope: "col", text: c }); }))]), audit]),
    ]));

    async function refresh() {
      var r = await api("GET", "/api/queue/" + slug + "/live");
      if (route !== "#/q/" + slug) return;
      if (r.status === 400 || r.status === 404) {
        clear(head).appendChild(h("h1", { text: "No queue " + slug }));
        return;
      }
      if (!r.ok) return;
      live = r.json;
      var q = live.summary, now = Date.now();
      samples.push([now, q.waiting, q.active, q.serving_pos, q.arrivals_per_min]);
      if (samples.length > 1800) samples.shift();
      clear(head);
      head.appendChild(h("h1", { text: live.queue.display_name || slug }));
      head.appendChild(badge(q.state));
      head.appendChild(h("a", { href: "/api/queue/" + slug + "/report?format=html", target: "_blank", rel: "noopener", text: "Post-sale report" }));
      warningList(q.warnings, warns);
      clear(tiles);
      [["Waiting", E.n(q.waiting)], ["Served / handed out", E.n(q.serving_pos) + " / " + E.n(q.assigned)], ["Active / max", active(q)],
        ["Admission rate", rateText(q)], ["Arrivals per minute", E.n(q.arrivals_per_min)], ["ETA, back of line", etaText(q.eta_back)],
        ["Strategy", q.strategy.replace("_", " ")], ["Origin", originText(q.origin)], ["Edge freshness", ago(q.published_age_secs)]].forEach(function (t) {
        tiles.appendChild(h("div", { class: "tile" }, [h("dt", { text: t[0] }), h("dd", { text: t[1], "data-tile": t[0] })]));
      });
      drawCharts();
      if (first) { first = false; buildControls(); }
      else syncButtons();
    }

    function drawCharts() {
      var rows = live.minutes, line = [], arr = [], adm = [], act = [];
      rows.forEach(function (m) {
        var end = (m.start + m.secs) * 1000;
        line.push([end, m.waiting]);
        act.push([end, m.active]);
        if (m.secs >= 10) {
          arr.push([end, m.arrivals * 60 / m.secs]);
          adm.push([end, m.admitted * 60 / m.secs]);
        }
      });
      // Between minute samples, what this page saw at each poll: the line, the sessions, the
      // coordinator's arrivals per minute, and admissions per minute from the serving
      // position's rise over the polls of the last minute (at least 10 s of them).
      samples.forEach(function (p, i) {
        line.push([p[0], p[1]]);
        act.push([p[0], p[2]]);
        arr.push([p[0], p[4]]);
        for (var j = 0; j < i; j++) {
          var dt = p[0] - samples[j][0];
          if (dt > 60000) continue;
          if (dt >= 10000) adm.push([p[0], (p[3] - samples[j][3]) * 60000 / dt]);
          break;
        }
      });
      var byTime = function (a, b) { return a[0] - b[0]; };
      line.sort(byTime); act.sort(byTime); arr.sort(byTime); adm.sort(byTime);
      clear(charts);
      charts.appendChild(chart("Line length", [{ name: "waiting", points: line }], ""));
      charts.appendChild(chart("Arrivals and admissions per minute", [{ name: "arrivals", points: arr }, { name: "admissions", points: adm }], "/min"));
      charts.appendChild(chart("Active sessions", [{ name: "active", points: act }], ""));
    }

    // Runs an action after its confirmation; reloads the page's numbers and the form values.
    function act(action, input, call) {
      confirmThen(E.effect(action, live.summary, live.queue, input), async function () {
        var r = await call();
        if (r.ok) {
          toast("Done: " + E.effect(action, live.summary, live.queue, input).title.replace(/\?$/, "") + " (recorded in the audit log as " + session.key + ")");
          first = true;
          clear(controls);
          await refresh();
          await auditTrail();
        } else toast("Refused: " + failure(r));
      });
    }
    function put(fields) {
      var body = { id: live.queue.id };
      for (var k in fields) body[k] = fields[k];
      return function () { return api("PUT", "/api/queue", body); };
    }
    function panel(title, kids) { return h("section", { class: "panel", "aria-label": title }, [h("h3", { text: title })].concat(kids)); }
    var buttons = {};
    function syncButtons() {
      var st = live.summary.state, manual = !live.queue.admission;
      if (!buttons.pause) return;
      buttons.pause.disabled = manual || st === "paused";
      buttons.resume.disabled = manual || st !== "paused";
      buttons.drain.disabled = manual || st === "draining";
    }

    function buildControls() {
      var q = live.queue, p = q.admission ? q.admission.policy : { strategy: "manual" };
      clear(controls);
      // Pause, resume, drain, open now.
      buttons.pause = h("button", { type: "button", class: "danger", text: "Pause", onclick: function () { act("pause", null, function () { return api("POST", "/api/queue/" + slug + "/pause"); }); } });
      buttons.resume = h("button", { type: "button", text: "Resume", onclick: function () { act("resume", null, function () { return api("POST", "/api/queue/" + slug + "/resume"); }); } });
      buttons.drain = h("button", { type: "button", class: "danger", text: "Drain", onclick: function () { act("drain", null, function () { return api("POST", "/api/queue/" + slug + "/drain"); }); } });
      buttons.open = h("button", { type: "button", class: "quiet", text: "Open now", onclick: function () { act("open", null, function () { return api("POST", "/api/queue/" + slug + "/open"); }); } });
      controls.appendChild(panel("Admissions", [h("div", { class: "buttons" }, [buttons.pause, buttons.resume, buttons.drain, buttons.open]),
        h("p", { class: "hint", text: q.admission ? "Pause, resume and drain act on the " + p.strategy.replace("_", " ") + " strategy." : "Manual admission: pause and drain need a strategy; advance by hand below." })]));
      syncButtons();

      // Strategy, rate, max_active.
      var strat = h("select", { id: "c-strategy" }, ["manual", "fixed_rate", "capacity", "health"].map(function (v) { return h("option", { value: v, text: v.replace("_", " "), selected: p.strategy === v }); }));
      var rate = h("input", { id: "c-rate", type: "number", min: "0.01", step: "any", value: p.rate_per_sec != null ? p.rate_per_sec : p.max_rate != null ? p.max_rate : 10 });
      var cap = h("input", { id: "c-max-active", type: "number", min: "1", step: "1", value: p.max_active != null ? p.max_active : "" });
      var target = h("input", { id: "c-target", type: "number", min: "1", step: "any", value: p.target_latency_ms != null ? p.target_latency_ms : 500 });
      var rateLabel = h("label", { for: "c-rate", text: "Rate per second" }), targetBox = h("div", {}, [h("label", { for: "c-target", text: "Target latency, ms" }), target]);
      function shape() {
        var v = strat.value;
        rateLabel.textContent = v === "health" ? "Highest rate per second" : "Rate per second";
        rate.parentNode.hidden = v === "manual" || v === "capacity";
        cap.parentNode.hidden = v === "manual";
        targetBox.hidden = v !== "health";
      }
      strat.addEventListener("change", shape);
      var policyForm = h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        var v = strat.value, np = { strategy: v }, m = cap.value === "" ? null : Number(cap.value);
        if (v === "fixed_rate") { np.rate_per_sec = Number(rate.value); if (p.strategy === "fixed_rate") np.burst = p.burst; if (m) np.max_active = m; }
        if (v === "capacity") np.max_active = m;
        if (v === "health") {
          if (p.strategy === "health") for (var k in p) np[k] = p[k];
          np.strategy = "health"; np.max_rate = Number(rate.value); np.target_latency_ms = Number(target.value); np.max_active = m;
        }
        var admission = v === "manual" ? null : { policy: np, paused: !!(q.admission && q.admission.paused), draining: !!(q.admission && q.admission.draining) };
        act("policy", np, put({ admission: admission }));
      } }, [
        h("div", { class: "row" }, [h("div", {}, [h("label", { for: "c-strategy", text: "Strategy" }), strat]), h("div", {}, [rateLabel, rate]), h("div", {}, [h("label", { for: "c-max-active", text: "Most sessions at once" }), cap]), targetBox]),
        h("p", {}, [h("button", { type: "submit", text: "Apply strategy" })]),
      ]);
      controls.appendChild(panel("Strategy and rate", [policyForm]));
      shape();

      // Advance the serving position.
      var by = h("input", { id: "c-advance", type: "number", min: "1", step: "1", value: "10" });
      controls.appendChild(panel("Advance the line", [h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        act("advance", by.value, function () { return api("POST", "/api/queue/increment_serving_position", { queue_id: slug, increment_by: by.value }, true); });
      } }, [h("div", { class: "row" }, [h("div", {}, [h("label", { for: "c-advance", text: "Admit this many more people now" }), by]), h("button", { type: "submit", text: "Advance" })])])]));

      // Mode and fail-open.
      var modes = ["queue", "passthrough", "closed"].map(function (m) {
        return h("label", { class: "inline" }, [h("input", { type: "radio", name: "c-mode", value: m, checked: q.mode === m }), m]);
      });
      var failOpen = h("input", { type: "checkbox", id: "c-fail-open", checked: q.fail_open });
      controls.appendChild(panel("Mode", [h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        var m = ev.target.querySelector("input[name=c-mode]:checked").value;
        if (m !== q.mode) act("mode", m, put({ mode: m }));
        else if (failOpen.checked !== q.fail_open) act("fail_open", failOpen.checked, put({ fail_open: failOpen.checked }));
        else toast("Nothing to change.");
      } }, [h("fieldset", {}, [h("legend", { text: "What the edge does" })].concat(modes)),
        h("p", {}, [h("label", { class: "inline" }, [failOpen, "Fail open (with no state at an edge, let visitors through)"])]),
        h("button", { type: "submit", text: "Apply" })])]));

      // Proof-of-work and position expiry.
      var pow = h("input", { id: "c-pow", type: "number", min: "0", max: String(defaults ? defaults.max_pow_difficulty : 20), step: "1", value: q.pow_difficulty });
      controls.appendChild(panel("Proof-of-work", [h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        act("pow", pow.value, put({ pow_difficulty: Number(pow.value) }));
      } }, [h("div", { class: "row" }, [h("div", {}, [h("label", { for: "c-pow", text: "Difficulty, leading zero bits (0 = off)" }), pow]), h("button", { type: "submit", text: "Apply" })])])]));
      var expOn = h("input", { type: "checkbox", id: "c-exp-on", checked: q.enable_queue_position_expiry });
      var exp = h("input", { id: "c-exp", type: "number", min: "1", step: "1", value: q.position_expiry_second });
      controls.appendChild(panel("Position expiry", [h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        var input = { enabled: expOn.checked, secs: Number(exp.value) };
        act("expiry", input, put({ enable_queue_position_expiry: input.enabled, position_expiry_second: input.secs }));
      } }, [h("p", {}, [h("label", { class: "inline" }, [expOn, "Served places expire when not claimed"])]),
        h("div", { class: "row" }, [h("div", {}, [h("label", { for: "c-exp", text: "Seconds to claim" }), exp]), h("button", { type: "submit", text: "Apply" })])])]));

      // The message to the people waiting.
      var n = q.notice || { en: "", zh: "" }, max = defaults ? defaults.max_notice : 280;
      var en = h("input", { id: "c-notice-en", type: "text", maxlength: String(max), value: n.en, lang: "en" });
      var zh = h("input", { id: "c-notice-zh", type: "text", maxlength: String(max), value: n.zh, lang: "zh" });
      var clearBtn = h("button", { type: "button", class: "quiet", id: "c-notice-clear", text: "Clear message", disabled: !q.notice, onclick: async function () {
        var r = await api("PUT", "/api/queue", { id: q.id, notice: null });
        if (r.ok) { toast("Message cleared (recorded in the audit log as " + session.key + ")"); first = true; await refresh(); await auditTrail(); }
        else toast("Refused: " + failure(r));
      } });
      controls.appendChild(panel("Message to the people waiting", [h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        var input = { en: en.value, zh: zh.value };
        act("notice", input, put({ notice: input }));
      } }, [h("label", { for: "c-notice-en", text: "English" }), en, h("label", { for: "c-notice-zh", text: "Chinese" }), zh,
        h("p", { class: "hint", text: "Plain text on one line, up to " + max + " characters each; the page shows the other language when one is empty." }),
        h("div", { class: "buttons" }, [h("button", { type: "submit", text: "Show message" }), clearBtn])])]));

      // Display name and logo text.
      var name = h("input", { id: "c-name", type: "text", maxlength: String(defaults ? defaults.max_display_name : 80), value: q.display_name || "" });
      var logo = h("input", { id: "c-logo", type: "text", maxlength: String(defaults ? defaults.max_logo_text : 40), value: q.logo_text || "" });
      controls.appendChild(panel("What the page says", [h("form", { novalidate: true, onsubmit: function (ev) {
        ev.preventDefault();
        var input = { display_name: name.value.trim() || null, logo_text: logo.value.trim() || null };
        act("names", input, put(input));
      } }, [h("label", { for: "c-logo", text: "Logo text (the site's name)" }), logo, h("label", { for: "c-name", text: "Display name (what people wait for)" }), name,
        h("p", {}, [h("button", { type: "submit", text: "Apply" })])])]));

      controls.appendChild(panel("Delete", [h("p", { class: "hint", text: "Removes the queue and everything in it." }), h("button", { type: "button", class: "danger", text: "Delete queue", onclick: function () {
        confirmThen(E.effect("delete", live.summary, live.queue), async function () {
          var r = await api("DELETE", "/api/queue/" + q.id);
          if (r.ok) { toast("Deleted " + slug); location.hash = "#/"; } else toast("Refused: " + failure(r));
        });
      } })]));
    }

    async function auditTrail() {
      var since = Date.now() - 24 * 3600 * 1000, entries = [], next = String(since);
      for (var i = 0; i < 20 && next; i++) {
        var r = await api("GET", "/api/audit?limit=1000&queue=" + encodeURIComponent(slug) + "&since=" + encodeURIComponent(next));
        if (!r.ok) return;
        entries = entries.concat(r.json.entries);
        next = r.json.next;
      }
      if (route !== "#/q/" + slug) return;
      clear(audit);
      entries.slice(-50).reverse().forEach(function (e) {
        var what = e.changes.map(function (c) { return c.field + ": " + JSON.stringify(c.before) + " → " + JSON.stringify(c.after); }).join("; ");
        audit.appendChild(h("tr", { "data-action": e.action }, [
          h("td", { "data-label": "When", class: "first", text: new Date(e.at_ms).toLocaleString("en-GB") }),
          h("td", { "data-label": "Key", text: e.key }),
          h("td", { "data-label": "Action", text: e.action }),
          h("td", { "data-label": "What changed" }, [h("code", { text: what || "–" })]),
        ]));
      });
      if (!entries.length) audit.appendChild(h("tr", {}, [h("td", { colspan: 4, class: "empty", text: "No changes in the last 24 hours." })]));
    }
    every(2000, refresh);
    every(5000, auditTrail);
  }

  // ---- create a queue ----
  async function createPage() {
    if (!defaults) {
      var d = await api("GET", "/api/queue_defaults");
      if (!d.ok) return;
      defaults = d.json;
    }
    var q = defaults.queue, err = h("p", { class: "error", role: "alert", id: "create-error" });
    function field(id, label, attrs, hint) {
      var input = h(attrs.tag || "input", Object.assign({ id: "n-" + id, name: id }, attrs, { tag: null }));
      return h("div", {}, [h("label", { for: "n-" + id, text: label }), input, hint ? h("p", { class: "hint", text: hint }) : null]);
    }
    var form = h("form", { novalidate: true, class: "panel", id: "create-form" }, [
      h("div", { class: "row" }, [
        field("queue_id", "Queue id (slug)", { type: "text", required: true, pattern: "[a-z0-9_-]{1,32}", autocomplete: "off", spellcheck: "false" }, "[a-z0-9_-], up to 32: it names the queue in URLs and cookies"),
        field("display_name", "Display name", { type: "text", maxlength: String(defaults.max_display_name) }, "what people wait for, e.g. The Night Orchestra"),
        field("logo_text", "Logo text", { type: "text", maxlength: String(defaults.max_logo_text) }, "the site's name, e.g. Riverside Tickets"),
      ]),
      field("paths", "Protected paths", { tag: "textarea", rows: "2" }, "one per line, e.g. /tickets (default: none)"),
      h("div", { class: "row" }, [
        field("token_validity_second", "Session length, s", { type: "number", min: "1", max: String(defaults.max_token_validity_second), value: q.token_validity_second }),
        field("position_expiry_second", "Seconds to claim a served place", { type: "number", min: String(defaults.min_position_expiry_second), max: String(defaults.max_position_expiry_second), value: q.position_expiry_second }),
        field("pow_difficulty", "Proof-of-work difficulty", { type: "number", min: "0", max: String(defaults.max_pow_difficulty), value: q.pow_difficulty }),
      ]),
      h("p", {}, [
        h("label", { class: "inline" }, [h("input", { type: "checkbox", id: "n-expiry", checked: q.enable_queue_position_expiry }), "Served places expire when not claimed"]),
        h("label", { class: "inline" }, [h("input", { type: "checkbox", id: "n-fail-open", checked: q.fail_open }), "Fail open"]),
      ]),
      h("div", { class: "row" }, [
        field("strategy", "Admission", { tag: "select" }),
        field("rate", "Rate per second (fixed rate)", { type: "number", min: "0.01", step: "any", value: "10" }),
        field("max_active", "Most sessions at once (capacity)", { type: "number", min: "1", step: "1" }),
      ]),
      err,
      h("p", {}, [h("button", { type: "submit", text: "Create queue" })]),
    ]);
    ["manual", "fixed_rate", "capacity"].forEach(function (v) { form.querySelector("#n-strategy").appendChild(h("option", { value: v, text: v.replace("_", " ") })); });
    view.appendChild(h("h1", { text: "New queue" }));
    view.appendChild(h("p", { class: "muted", text: "Fields start at the API's defaults; anything it refuses is explained here." }));
    view.appendChild(form);
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      var v = function (id) { return form.querySelector("#n-" + id).value; };
      var body = {
        queue_id: v("queue_id").trim(),
        token_validity_second: Number(v("token_validity_second")),
        position_expiry_second: Number(v("position_expiry_second")),
        enable_queue_position_expiry: form.querySelector("#n-expiry").checked,
        pow_difficulty: Number(v("pow_difficulty")),
        fail_open: form.querySelector("#n-fail-open").checked,
        paths: v("paths").split("\n").map(function (x) { return x.trim(); }).filter(Boolean),
      };
      if (v("display_name").trim()) body.display_name = v("display_name").trim();
      if (v("logo_text").trim()) body.logo_text = v("logo_text").trim();
      var st = v("strategy");
      if (st === "fixed_rate") body.admission = { policy: { strategy: "fixed_rate", rate_per_sec: Number(v("rate")) } };
      if (st === "capacity") body.admission = { policy: { strategy: "capacity", max_active: Number(v("max_active")) } };
      if (st !== "manual" && v("max_active") && st === "fixed_rate") body.admission.policy.max_active = Number(v("max_active"));
      err.textContent = "";
      var r = await api("POST", "/api/queue", body);
      if (r.ok) {
        toast("Created " + r.json.queue_id + " (recorded in the audit log as " + session.key + ")");
        location.hash = "#/q/" + r.json.queue_id;
        return;
      }
      err.textContent = failure(r);
      // Put the cursor on the field the API named, when it named one.
      var named = r.json && r.json.message && r.json.message.match(/^([a-z_]+)/);
      var target = named && form.querySelector("[name=" + named[1] + "]");
      if (target) { target.setAttribute("aria-invalid", "true"); target.focus(); }
    });
    form.querySelector("#n-queue_id").focus();
  }

  // ---- start: signed in already (the cookie), or the sign-in form ----
  (async function () {
    var r = await api("GET", "/console/session");
    if (r.ok) signedIn(r.json);
    else signedOut();
  })();
})();
