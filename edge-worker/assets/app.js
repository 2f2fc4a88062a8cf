// Anteroom waiting-room page: enter the queue (solving the proof-of-work off the main
// thread), wait for the serving position to reach our place, claim the token (the edge sets
// it as a cookie), then go back to the page the visitor wanted.
(function () {
  "use strict";
  var root = document.getElementById("anteroom");
  var queue = root.getAttribute("data-queue");
  var prefix = root.getAttribute("data-prefix");
  var powUrl = root.getAttribute("data-pow");
  var status = document.getElementById("anteroom-status");
  var detail = document.getElementById("anteroom-detail");
  var storeKey = "anteroom:" + queue;
  var seenVersion = 0;

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

  function solve(challenge, difficulty) {
    return new Promise(function (resolve, reject) {
      var w = new Worker(powUrl);
      w.onmessage = function (ev) { w.terminate(); resolve(ev.data.counter); };
      w.onerror = function (e) { w.terminate(); reject(e); };
      w.postMessage({ challenge: challenge, difficulty: difficulty });
    });
  }

  async function enter() {
    var saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(storeKey) || "null"); } catch (e) { saved = null; }
    if (saved && saved.request_id) return saved;
    say("Joining the queue…", "checking your browser");
    var ch = await (await fetch(prefix + "/pow/challenge?queue_id=" + encodeURIComponent(queue))).json();
    var fields = { queue_id: queue };
    if (ch.difficulty > 0) {
      fields.pow_challenge = ch.challenge;
      fields.pow_counter = await solve(ch.challenge, ch.difficulty);
    }
    var r = await fetch(prefix + "/assign_queue_pos", form(fields));
    if (r.status !== 200) throw new Error("enqueue answered " + r.status);
    var t = await r.json();
    sessionStorage.setItem(storeKey, JSON.stringify(t));
    return t;
  }

  async function position(t) {
    for (;;) {
      if (typeof t.position === "number") return t.position;
      var r = await fetch(prefix + "/queue_pos/" + queue + "/" + t.request_id);
      if (r.status === 200) return (await r.json()).position;
      if (r.status === 410) throw new Error("expired");
      await sleep(2000);
    }
  }

  async function run() {
    var t = await enter();
    var pos = await position(t);
    for (;;) {
      var r = await fetch(prefix + "/serving_pos/" + queue, { cache: "no-store" });
      if (r.status === 200) {
        var s = await r.json();
        // Drop answers older than one already shown (another PoP may lag).
        if (s.version >= seenVersion) {
          seenVersion = s.version;
          var ahead = Math.max(0, pos - s.position);
          say(ahead === 0 ? "It's your turn" : "You are in the queue", ahead === 0 ? "opening the site…" : ahead + " ahead of you");
          if (ahead === 0) {
            var g = await fetch(prefix + "/generate_token", form({ queue_id: queue, request_id: t.request_id }));
            if (g.status === 200) {
              sessionStorage.removeItem(storeKey);
              location.replace(returnTo);
              return;
            }
            if (g.status === 410) {
              sessionStorage.removeItem(storeKey);
              throw new Error("expired");
            }
          }
        }
      }
      await sleep(2000);
    }
  }

  (async function loop() {
    for (;;) {
      try {
        await run();
        return;
      } catch (e) {
        say("Reconnecting…", String(e && e.message || e));
        await sleep(3000);
      }
    }
  })();
})();
