//! The data side of observing a sale, end to end over real sockets: a coordinator on a real
//! Redis with a settable clock, a real webhook receiver (which fails its first two POSTs and
//! checks every signature itself), and a scripted sale — arrivals over three minutes,
//! admissions by an operator's key and by the controller, claims, completions, an
//! abandonment, an expiry, a pause, an operator's change. The metrics, the audit log, the
//! webhook deliveries and the report are checked against what the script did.
#![allow(clippy::unwrap_used, reason = "tests")]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coordinator::state::AppState;
use coordinator::store::Store;
use coordinator::store::redis::RedisStore;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const T0: u64 = 1_800_000_000; // a minute's start
const METRICS_KEY: &str = "test-metrics-key-0123456789";

/// Polls `f` every 20 ms until it gives `Some`, failing after `secs`.
async fn until<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the receiver got: each POST's id, the parsed event, and whether it was accepted.
#[derive(Default)]
struct Inbox {
    /// The endpoint's secret bytes, once the webhook is created.
    key: Mutex<Option<Vec<u8>>>,
    attempts: AtomicUsize,
    bad_signatures: AtomicUsize,
    /// `(webhook-id, event)` of accepted POSTs.
    accepted: Mutex<Vec<(String, Value)>>,
    /// Ids of the POSTs answered 500.
    refused: Mutex<Vec<String>>,
}

/// Checks a Standard Webhooks signature: `v1,<base64 HMAC-SHA256(id.timestamp.body)>`.
fn signature_ok(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let fresh = ts.parse::<u64>().is_ok_and(|t| t.abs_diff(now.as_secs()) < 300);
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let want = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    fresh && sig.split(' ').any(|s| s == want)
}

/// A webhook receiver on a free port that answers 500 to its first two POSTs.
async fn receiver(inbox: Arc<Inbox>) -> SocketAddr {
    let handler = move |headers: HeaderMap, body: Bytes| {
        let inbox = inbox.clone();
        async move {
            let id = headers.get("webhook-id").unwrap().to_str().unwrap().to_string();
            if inbox.attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                inbox.refused.lock().unwrap().push(id);
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            let key = inbox.key.lock().unwrap().clone().unwrap();
            if !signature_ok(&key, &headers, &body) {
                inbox.bad_signatures.fetch_add(1, Ordering::SeqCst);
                return StatusCode::UNAUTHORIZED;
            }
            inbox.accepted.lock().unwrap().push((id, serde_json::from_slice(&body).unwrap()));
            StatusCode::NO_CONTENT
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A coordinator serving on real sockets over `store`, with a settable clock.
struct Sale {
    state: AppState,
    clock: Arc<AtomicU64>,
    public: SocketAddr,
    admin: SocketAddr,
    http: reqwest::Client,
    ops: String,
    queue: u32,
}

impl Sale {
    async fn start(store: Arc<dyn Store>) -> Self {
        let cfg =
            common::config_with(None, &["--edge-only", "false", "--metrics-key", METRICS_KEY]);
        let (state, clock) = common::state_with_config(store, T0, &cfg).await;
        let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pa, aa) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let run = coordinator::run(
            public,
            admin,
            state.clone(),
            Default::default(),
            std::future::pending(),
        );
        tokio::spawn(run);
        let http = common::client();
        Sale { state, clock, public: pa, admin: aa, http, ops: String::new(), queue: 0 }
    }

    fn at(&self, secs: u64) {
        self.clock.store((T0 + secs) * 1000, Ordering::SeqCst);
    }

    async fn admin_req(
        &self,
        m: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(m, format!("http://{}{path}", self.admin)).bearer_auth(key)
    }

    async fn ops_json(&self, m: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self.admin_req(m, path, &self.ops).await.json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn form(
        &self,
        base: SocketAddr,
        path: &str,
        key: Option<&str>,
        body: String,
    ) -> (u16, Value) {
        let mut r = self.http.post(format!("http://{base}{path}"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let r = r.header("content-type", "application/x-www-form-urlencoded").body(body);
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn enqueue(&self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (st, v) =
                self.form(self.public, "/assign_queue_pos", None, "queue_id=sale".into()).await;
            assert_eq!(st, 200, "{v}");
            out.push(v["request_id"].as_str().unwrap().to_string());
        }
        out
    }

    async fn claim(&self, rid: &str) -> u16 {
        let body = format!("queue_id=sale&request_id={rid}");
        self.form(self.public, "/generate_token", None, body).await.0
    }

    async fn end(&self, rid: &str, status: u8, key: &str) {
        let body = format!("queue_id=sale&request_id={rid}&status={status}");
        let (st, v) =
            self.form(self.admin, "/api/queue/update_token_status", Some(key), body).await;
        assert_eq!(st, 200, "{v}");
    }

    async fn serving(&self) -> u64 {
        let r = self.admin_req(reqwest::Method::GET, "/api/queue/sale/status", &self.ops).await;
        let v: Value = r.send().await.unwrap().json().await.unwrap();
        v["serving_pos"].as_u64().unwrap()
    }

    /// Waits until the upkeep loop stored the sample of minute `k` of the sale.
    async fn sampled(&self, k: u64) {
        let (store, q) = (self.state.store(), self.queue);
        until("the minute's sample", 10, async || {
            let m = store.minutes(q, T0 / 60 + k).await.unwrap();
            m.iter().any(|s| s.minute == T0 / 60 + k).then_some(())
        })
        .await;
    }

    async fn metrics(&self, key: &str) -> (u16, HashMap<String, f64>) {
        let r = self.admin_req(reqwest::Method::GET, "/metrics", key).await.send().await.unwrap();
        let status = r.status().as_u16();
        if status != 200 {
            return (status, HashMap::new());
        }
        (status, exposition(&r.text().await.unwrap()))
    }
}

/// The samples of a Prometheus text exposition, by series (name and labels).
fn exposition(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            l.rsplit_once(' ')
                .map(|(k, v)| (k.to_string(), v.parse().unwrap_or_else(|_| panic!("{l}"))))
        })
        .collect()
}

/// The bootstrap key names an operator key and the operator points a webhook at the receiver.
async fn set_up(sale: &mut Sale, inbox: &Arc<Inbox>, hook: SocketAddr) {
    let r = sale.admin_req(reqwest::Method::POST, "/api/admin_keys", common::ADMIN_KEY).await;
    let v: Value = r.json(&json!({"name": "ops"})).send().await.unwrap().json().await.unwrap();
    sale.ops = v["key"].as_str().unwrap().to_string();
    let hook = sale
        .ops_json(
            reqwest::Method::POST,
            "/api/webhooks",
            json!({"url": format!("http://{hook}/hook")}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().strip_prefix("whsec_").unwrap();
    *inbox.key.lock().unwrap() = Some(STANDARD.decode(secret).unwrap());
    let body = json!({
        "queue_id": "sale",
        "token_validity_second": 120,
        "enable_queue_position_expiry": true,
        "position_expiry_second": 60,
    });
    let q = sale.ops_json(reqwest::Method::POST, "/api/queue", body).await;
    sale.queue = q["id"].as_u64().unwrap() as u32;
    sale.sampled(0).await;
}

/// Minute 0: six arrive; the operator admits four; three claim; the origin completes one,
/// the operator abandons one.
async fn minute_0(sale: &Sale) -> Vec<String> {
    sale.at(5);
    let v = sale.enqueue(6).await;
    sale.at(10);
    let (st, r) = sale
        .form(
            sale.admin,
            "/api/queue/increment_serving_position",
            Some(&sale.ops),
            "queue_id=sale&increment_by=4".into(),
        )
        .await;
    assert_eq!((st, r["serving_pos"].as_u64()), (200, Some(4)));
    sale.at(20);
    for rid in &v[..3] {
        assert_eq!(sale.claim(rid).await, 200);
    }
    sale.at(30);
    sale.end(&v[0], 1, common::ORIGIN_KEY).await;
    sale.end(&v[1], 2, &sale.ops).await;
    v
}

/// Minute 1: four more arrive; the operator switches on a controller, which admits four;
/// the operator pauses (a claim is refused), resumes, four claim and the controller admits
/// the last two.
async fn minute_1(sale: &Sale, mut v: Vec<String>) -> Vec<String> {
    sale.at(65);
    sale.sampled(1).await;
    v.extend(sale.enqueue(4).await);
    sale.at(66);
    let policy = json!({"id": sale.queue, "admission": {"policy": {"strategy": "fixed_rate", "rate_per_sec": 1.0, "burst": 0}}});
    sale.ops_json(reqwest::Method::PUT, "/api/queue", policy).await;
    // The controller's first tick starts its clock; the next one, 4 s later, admits 4.
    let state = sale.state.clone();
    until("the controller's first tick", 10, async || {
        coordinator::control::load(&state, sale.queue).await.unwrap().last.map(|_| ())
    })
    .await;
    sale.at(70);
    until("the controller to admit four", 10, async || (sale.serving().await == 8).then_some(()))
        .await;
    sale.ops_json(reqwest::Method::POST, "/api/queue/sale/pause", json!({})).await;
    let (_, m) = sale.metrics(METRICS_KEY).await;
    assert_eq!(m["anteroom_admission_paused{queue=\"sale\"}"], 1.0);
    assert_eq!(sale.claim(&v[4]).await, 503, "paused: claims wait");
    sale.at(75);
    sale.ops_json(reqwest::Method::POST, "/api/queue/sale/resume", json!({})).await;
    sale.at(80);
    for rid in &v[4..8] {
        assert_eq!(sale.claim(rid).await, 200);
    }
    // The last two are served now, so their places expire (62 s: the window and the edge's
    // grace) before the end at 185 s, whichever real second the controller ticks in.
    until("the controller to admit the last two", 10, async || {
        (sale.serving().await == 10).then_some(())
    })
    .await;
    v
}

/// Minutes 2 and 3: the origin completes one; session 3 expires; the minutes are sampled.
async fn minutes_2_and_3(sale: &Sale, v: &[String]) {
    sale.at(125);
    sale.sampled(2).await;
    sale.end(&v[4], 1, common::ORIGIN_KEY).await;
    sale.at(185);
    sale.sampled(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_sale_is_seen_in_metrics_audit_webhooks_and_the_report() {
    let redis = common::Redis::start();
    let store: Arc<dyn Store> = Arc::new(RedisStore::single(&redis.url(), 0).unwrap());
    let mut sale = Sale::start(store.clone()).await;
    let inbox = Arc::new(Inbox::default());
    let hook = receiver(inbox.clone()).await;
    set_up(&mut sale, &inbox, hook).await;
    let v = minute_0(&sale).await;
    let v = minute_1(&sale, v).await;
    minutes_2_and_3(&sale, &v).await;
    let admitted = sale.serving().await.min(10);
    let before = check_metrics(&sale, admitted).await;
    check_restart(store, &before).await;
    check_audit(&sale).await;
    check_webhooks(&sale, &inbox, &v).await;
    check_report(&sale, admitted).await;
    check_revocation(&sale).await;
}

async fn check_metrics(sale: &Sale, admitted: u64) -> HashMap<String, f64> {
    assert_eq!(sale.metrics("").await.0, 401);
    assert_eq!(sale.metrics(common::ORIGIN_KEY).await.0, 401, "the origin key reads no metrics");
    let (st, m) = sale.metrics(METRICS_KEY).await;
    assert_eq!(st, 200);
    let q = |name: &str| m.get(&format!("{name}{{queue=\"sale\"}}")).copied().unwrap_or(-1.0);
    let ended =
        |o: &str| m[&format!("anteroom_sessions_ended_total{{queue=\"sale\",outcome=\"{o}\"}}")];
    assert_eq!(q("anteroom_arrivals_total"), 10.0);
    assert_eq!(q("anteroom_sessions_claimed_total"), 7.0);
    assert_eq!(q("anteroom_admitted_total"), admitted as f64);
    assert_eq!(q("anteroom_places_expired_unclaimed_total"), (admitted - 7) as f64);
    assert_eq!((ended("completed"), ended("abandoned"), ended("expired")), (2.0, 1.0, 1.0));
    assert_eq!(q("anteroom_active_sessions"), 3.0, "sessions 6, 7, 8 run until 200");
    assert_eq!(q("anteroom_waiting"), (10 - admitted) as f64);
    assert_eq!(q("anteroom_last_position"), 10.0);
    assert_eq!(q("anteroom_admission_paused"), 0.0);
    assert_eq!(m["anteroom_admission_strategy{queue=\"sale\",strategy=\"fixed_rate\"}"], 1.0);
    assert_eq!(m["anteroom_admission_rate_per_second{queue=\"sale\",kind=\"target\"}"], 1.0);
    assert_eq!(m["anteroom_store_up"], 1.0);
    // The same waits as the report's (below): to served 5 s for most, to claim 15 s.
    let wait = |until: &str, quantile: &str| {
        m[&format!(
            "anteroom_wait_seconds{{queue=\"sale\",until=\"{until}\",quantile=\"{quantile}\"}}"
        )]
    };
    assert_eq!(wait("served", "0.5"), 5.0);
    assert!((15.0..=16.5).contains(&wait("claimed", "0.5")));
    assert!(wait("served", "0.99") >= 65.0, "two waited a minute more");
    assert_eq!(q("anteroom_enqueue_duration_seconds_count"), 10.0);
    assert_eq!(q("anteroom_claim_duration_seconds_count"), 8.0, "seven tokens and one refusal");
    let route = "anteroom_http_requests_total{listener=\"public\",route=\"/assign_queue_pos\",class=\"2xx\"}";
    assert_eq!(m[route], 10.0);
    assert!(m["anteroom_redis_command_duration_seconds_count{command=\"EVALSHA\"}"] > 0.0);
    assert!(m["anteroom_webhook_deliveries_total{result=\"failed\"}"] >= 2.0);
    m
}

/// A coordinator started afresh on the same Redis (a restart) reports the same figures from
/// the store, while this process's own series start again from nothing.
async fn check_restart(store: Arc<dyn Store>, before: &HashMap<String, f64>) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let cfg = common::config_with(None, &["--edge-only", "false"]);
    let (state, _) = common::state_with_config(store, T0 + 185, &cfg).await;
    let admin = coordinator::admin_app(state, Default::default());
    let req = axum::http::Request::get("/metrics")
        .header("authorization", format!("Bearer {}", common::ADMIN_KEY))
        .body(axum::body::Body::empty())
        .unwrap();
    let body = admin.oneshot(req).await.unwrap().into_body().collect().await.unwrap();
    let after = exposition(std::str::from_utf8(&body.to_bytes()).unwrap());
    // Process-local series, and the measured rate, which the running controller updates.
    let local = [
        "_duration_seconds",
        "anteroom_publish_",
        "anteroom_status_",
        "anteroom_pow_ref",
        "kind=\"measured\"",
    ];
    let from_store: Vec<&String> = before
        .keys()
        .filter(|k| k.contains("{queue=\"sale\"") && !local.iter().any(|l| k.contains(l)))
        .collect();
    assert!(from_store.len() >= 20, "{from_store:?}");
    for k in from_store {
        assert_eq!(after.get(k), Some(&before[k]), "{k} after a restart");
    }
    let local = "anteroom_enqueue_duration_seconds_count{queue=\"sale\"}";
    assert_eq!((before.get(local), after.get(local)), (Some(&10.0), None), "process-local");
}

async fn audit_page(sale: &Sale, query: &str) -> Value {
    let r = sale.admin_req(reqwest::Method::GET, &format!("/api/audit{query}"), &sale.ops).await;
    r.send().await.unwrap().json().await.unwrap()
}

async fn check_audit(sale: &Sale) {
    let page = audit_page(sale, "?queue=sale").await;
    let e = page["entries"].as_array().unwrap();
    let actions: Vec<&str> = e.iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "queue.create",
            "serving.increment",
            "session.status",
            "queue.update",
            "queue.pause",
            "queue.resume"
        ],
        "the origin's completions are not audited"
    );
    assert!(
        e.iter()
            .all(|x| x["key"] == "ops" && x["from"].as_str().unwrap().starts_with("127.0.0.1:"))
    );
    assert_eq!(e[1]["changes"], json!([{"field": "serving_pos", "before": 0, "after": 4}]));
    assert_eq!(
        e[2]["changes"][1],
        json!({"field": "status", "before": "active", "after": "abandoned"})
    );
    assert_eq!(e[3]["changes"][0]["field"], "admission");
    assert_eq!(e[3]["changes"][0]["before"], Value::Null);
    assert_eq!(
        e[4]["changes"],
        json!([{"field": "admission.paused", "before": false, "after": true}])
    );
    assert_eq!(e[5]["at_ms"], (T0 + 75) * 1000);
    // Everything, two at a time: the same entries as one page, and the key-management ones.
    let (mut all, mut since) = (Vec::new(), String::new());
    loop {
        let p = audit_page(sale, &format!("?limit=2{since}")).await;
        all.extend(p["entries"].as_array().unwrap().iter().cloned());
        match p["next"].as_str() {
            Some(n) => since = format!("&since={n}"),
            None => break,
        }
    }
    let first: Vec<(&str, &str)> = all[..2]
        .iter()
        .map(|x| (x["action"].as_str().unwrap(), x["key"].as_str().unwrap()))
        .collect();
    assert_eq!(first, [("admin_key.add", "bootstrap"), ("webhook.add", "ops")]);
    assert_eq!(all.len(), 8);
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains(&sale.ops) && !text.contains(common::ADMIN_KEY),
        "no key in the audit log"
    );
    let bad = sale.admin_req(reqwest::Method::GET, "/api/audit?since=x-y", &sale.ops).await;
    assert_eq!(bad.send().await.unwrap().status(), 400);
}

async fn check_webhooks(sale: &Sale, inbox: &Inbox, v: &[String]) {
    let events = until("every event delivered", 20, async || {
        let got = inbox.accepted.lock().unwrap().clone();
        let metrics = got.iter().filter(|(_, e)| e["type"] == "queue_metrics").count();
        let expired = got.iter().any(|(_, e)| e["data"]["status"] == "expired");
        (metrics >= 3 && expired && got.len() >= 16).then_some(got)
    })
    .await;
    assert_eq!(inbox.bad_signatures.load(Ordering::SeqCst), 0);
    let refused = inbox.refused.lock().unwrap().clone();
    assert_eq!(refused.len(), 2);
    assert!(
        refused.iter().all(|id| events.iter().any(|(got, _)| got == id)),
        "retried after a 500"
    );
    let of = |t: &str| {
        events
            .iter()
            .filter(|(_, e)| e["type"] == t)
            .map(|(_, e)| e["data"].clone())
            .collect::<Vec<_>>()
    };
    let mut tokens: Vec<String> = of("token_generated")
        .iter()
        .map(|d| d["request_id"].as_str().unwrap().to_string())
        .collect();
    tokens.sort();
    let mut claimed: Vec<String> = [&v[..3], &v[4..8]].concat();
    claimed.sort();
    assert_eq!(tokens, claimed);
    let sessions: Vec<(String, String)> = of("session_updated")
        .iter()
        .map(|d| (d["status"].as_str().unwrap().into(), d["by"].as_str().unwrap_or("").into()))
        .collect();
    assert_eq!(sessions.iter().filter(|s| *s == &("completed".into(), "origin".into())).count(), 2);
    assert!(sessions.contains(&("abandoned".into(), "ops".into())));
    let expired = of("session_updated").into_iter().find(|d| d["status"] == "expired").unwrap();
    assert_eq!(
        (expired["position"].as_u64(), expired["event_id"].as_str()),
        (Some(3), Some("sale"))
    );
    let serving = of("serving_position_advanced");
    assert!(serving.contains(&json!({"event_id": "sale", "queue_id": "sale", "previous": 0, "serving_num": 4, "by": "ops"})));
    assert!(serving.contains(&json!({"event_id": "sale", "queue_id": "sale", "previous": 4, "serving_num": 8, "by": "controller"})));
    let minutes = of("queue_metrics");
    let figures: Vec<(u64, u64, u64, u64, u64)> = minutes[..3]
        .iter()
        .map(|d| {
            (
                d["arrivals"].as_u64().unwrap(),
                d["completed"].as_u64().unwrap(),
                d["abandoned"].as_u64().unwrap(),
                d["expired"].as_u64().unwrap(),
                d["minute_start"].as_u64().unwrap() - T0,
            )
        })
        .collect();
    assert_eq!(figures, [(6, 1, 1, 0, 0), (4, 0, 0, 0, 60), (0, 1, 0, 1, 120)]);
    assert_eq!(minutes[2]["queue_counter"], 10);
    assert_eq!(minutes[2]["total_num_tokens"], 7);
    assert_eq!(minutes[2]["num_active_tokens"], minutes[2]["active"], "AWS's name too");
    let _ = sale;
}

async fn check_report(sale: &Sale, admitted: u64) {
    let r = sale.admin_req(reqwest::Method::GET, "/api/queue/sale/report", &sale.ops).await;
    let r: Value = r.send().await.unwrap().json().await.unwrap();
    let t = &r["totals"];
    assert_eq!(
        (t["arrivals"].as_u64(), t["admitted"].as_u64(), t["claimed"].as_u64()),
        (Some(10), Some(admitted), Some(7))
    );
    assert_eq!(
        (
            t["completed"].as_u64(),
            t["abandoned"].as_u64(),
            t["expired"].as_u64(),
            t["active"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(3))
    );
    assert_eq!(t["never_claimed"].as_u64(), Some(admitted - 7));
    let rows = r["minutes"].as_array().unwrap();
    let arrivals: Vec<u64> = rows.iter().map(|m| m["arrivals"].as_u64().unwrap()).collect();
    assert_eq!(arrivals, [6, 4, 0, 0], "minutes 0, 1, 2 and the 5 s of minute 3 so far");
    assert_eq!(rows[0]["admitted"], 4);
    assert_eq!(rows.iter().map(|m| m["admitted"].as_u64().unwrap()).sum::<u64>(), admitted);
    // Waits of the seven who claimed: to served 5, 5, 5, 65, 65, 5, 5 s; to claim 15 or 75 s.
    let served = &r["wait_to_served"];
    assert_eq!((served["count"].as_u64(), served["p50"].as_f64()), (Some(7), Some(5.0)));
    let p90 = served["p90"].as_f64().unwrap();
    assert!((65.0..=71.5).contains(&p90), "{p90}");
    let claim = r["wait_to_claim"]["p50"].as_f64().unwrap();
    assert!((15.0..=16.5).contains(&claim), "{claim}");
    let eta = &r["eta_honesty"];
    assert_eq!(
        eta["counted"].as_u64().unwrap() + eta["no_band"].as_u64().unwrap(),
        admitted,
        "every admitted visitor judged once"
    );
    assert!(eta["no_band"].as_u64().unwrap() >= 4, "the manual minute showed no band");
    assert_eq!(r["peaks"]["arrivals_per_sec"].as_f64(), Some(0.1));
    let html =
        sale.admin_req(reqwest::Method::GET, "/api/queue/sale/report?format=html", &sale.ops).await;
    let html = html.send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<svg") && html.contains("Sale report: sale"));
    assert!(
        !html.contains("src=") && !html.contains("href=") && !html.contains("<script"),
        "self-contained"
    );
}

async fn check_revocation(sale: &Sale) {
    let r = sale.admin_req(reqwest::Method::DELETE, "/api/admin_keys/ops", &sale.ops).await;
    assert_eq!(r.send().await.unwrap().status(), 401, "only the bootstrap key manages keys");
    let r = sale.admin_req(reqwest::Method::DELETE, "/api/admin_keys/ops", common::ADMIN_KEY).await;
    assert_eq!(r.send().await.unwrap().status(), 204);
    let r = sale.admin_req(reqwest::Method::GET, "/api/queues", &sale.ops).await;
    assert_eq!(r.send().await.unwrap().status(), 401, "revoked without a restart");
}

/// The report's minute samples stay small: bytes per queue-minute in Redis, measured.
#[tokio::test]
async fn minute_samples_cost_about_two_hundred_bytes_per_queue_minute() {
    use coordinator::store::MinuteSample;
    let redis = common::Redis::start();
    let store = RedisStore::single(&redis.url(), 0).unwrap();
    let estimate =
        shared::eta::RateEstimate { rate: 812.437_5, var: 1_234.062_5, observed_ms: 3_600_000 };
    let n = 1440u64;
    for k in 0..n {
        // A busy day: a million arrivals, counters of six and seven digits.
        let s = MinuteSample {
            minute: 29_000_000 + k,
            assigned: 1_000_000 + 700 * k,
            serving: 950_000 + 700 * k,
            claimed: 900_000 + 690 * k,
            completed: 800_000 + 600 * k,
            abandoned: 50_000 + 50 * k,
            expired: 20_000 + 20 * k,
            unclaimed_expired: 30_000 + 10 * k,
            waiting: 48_213,
            active: 2_500,
            estimate,
        };
        assert!(store.record_minute(7, s, n).await.unwrap());
    }
    let bytes = redis.key_usage("aq:{q7}:mins");
    let per = bytes as f64 / n as f64;
    eprintln!("minute samples: {bytes} bytes for {n} queue-minutes = {per:.1} bytes each");
    assert!(per < 256.0, "{per} bytes per queue-minute");
    assert_eq!(store.minutes(7, 0).await.unwrap().len(), n as usize);
}
