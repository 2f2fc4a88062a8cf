//! The shop end to end over real sockets: a real `redis-server`, the real coordinator
//! (in-process, both listeners on loopback) and the shop, talking HTTP to each other.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use shared::token::{AccessClaims, SigningKey, TokenError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ADMIN_KEY: &str = "shop-test-admin-key-0123456789";
const ORIGIN_KEY: &str = "shop-test-origin-key-0123456789";
/// The coordinator's signing seed in tests that forge tokens with the real key.
const SEED: [u8; 32] = [0x5a; 32];
const QUEUE: &str = "demo";

use testkit::Redis;

/// Polls `f` until it returns `Some`, or panics after `secs`.
async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server running in this process until `stop` is dropped.
struct Running {
    /// Where it listens.
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts it down gracefully and waits until it has stopped.
    async fn stop(mut self) {
        self.stop.take();
        (&mut self.task).await.unwrap();
    }
}

/// The coordinator in this process on loopback sockets over `redis`, signing with `seed`.
async fn start_coordinator(redis: &Redis, seed: Option<[u8; 32]>) -> coordinator::Running {
    let mut args: Vec<String> = [
        "coordinator",
        "--admin-key",
        ADMIN_KEY,
        "--origin-key",
        ORIGIN_KEY,
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]
    .map(String::from)
    .into();
    args.extend(["--redis-url".into(), redis.url()]);
    if let Some(s) = seed {
        args.extend(["--signing-key".into(), s.iter().map(|b| format!("{b:02x}")).collect()]);
    }
    let cfg = coordinator::Config::try_parse_from(args).unwrap();
    cfg.validate().unwrap();
    coordinator::spawn(&cfg, coordinator::state::Clock::System).await.unwrap()
}

/// Starts the shop for queue `demo` against `c`, with extra flags.
async fn start_shop(c: &coordinator::Running, extra: &[&str]) -> Running {
    let public = format!("http://{}", c.public);
    let admin = format!("http://{}", c.admin);
    let mut args = vec![
        "ticket-shop",
        "--listen",
        "127.0.0.1:0",
        "--queue-id",
        QUEUE,
        "--coordinator-public",
        &public,
        "--coordinator-admin",
        &admin,
        "--origin-key",
        ORIGIN_KEY,
    ];
    args.extend_from_slice(extra);
    let cfg = ticket_shop::Config::try_parse_from(args).unwrap();
    let state = ticket_shop::build(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        ticket_shop::run(listener, state, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { addr, stop: Some(tx), task }
}

/// Redis, the coordinator, the shop, and a client for all three.
struct Stack {
    coordinator: coordinator::Running,
    shop: Running,
    http: reqwest::Client,
    _redis: Redis,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Stack {
    async fn start(seed: Option<[u8; 32]>, shop_flags: &[&str]) -> Self {
        let redis = Redis::start();
        let coordinator = start_coordinator(&redis, seed).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let s = Stack {
            shop: start_shop(&coordinator, shop_flags).await,
            coordinator,
            http,
            _redis: redis,
        };
        for q in [QUEUE, "other"] {
            let r = s.admin_json("/api/queue", json!({"queue_id": q})).await;
            assert_eq!(r.0, StatusCode::OK, "{}", r.1);
        }
        s
    }

    fn public(&self, path: &str) -> String {
        format!("http://{}{path}", self.coordinator.public)
    }

    fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.coordinator.admin)
    }

    async fn json(resp: reqwest::Response) -> (StatusCode, Value) {
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn admin_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req = self.http.post(self.admin(path)).bearer_auth(ADMIN_KEY).json(&body);
        Self::json(req.send().await.unwrap()).await
    }

    async fn admin_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let req = self.http.post(self.admin(path)).bearer_auth(ADMIN_KEY).form(form);
        Self::json(req.send().await.unwrap()).await
    }

    async fn active(&self, queue: &str) -> u64 {
        let url = self.admin(&format!("/api/queue/{queue}/active_token_num"));
        let (s, v) =
            Self::json(self.http.get(url).bearer_auth(ADMIN_KEY).send().await.unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["active_num"].as_u64().unwrap()
    }

    async fn generate_token(&self, queue: &str, rid: &str) -> (StatusCode, Value) {
        let form = [("queue_id", queue), ("request_id", rid)];
        Self::json(self.http.post(self.public("/generate_token")).form(&form).send().await.unwrap())
            .await
    }

    /// A visitor who enqueued on `queue`, was let in, and holds a token: (request_id,
    /// position, token).
    async fn admitted(&self, queue: &str) -> (String, u64, String) {
        let (s, v) = Self::json(
            self.http
                .post(self.public("/assign_queue_pos"))
                .form(&[("queue_id", queue)])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let rid = v["request_id"].as_str().unwrap().to_string();
        let pos = v["position"].as_u64().unwrap();
        let (s, v) = self
            .admin_form(
                "/api/queue/increment_serving_position",
                &[("queue_id", queue), ("increment_by", "1")],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = self.generate_token(queue, &rid).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (rid, pos, v["access_token"].as_str().unwrap().to_string())
    }

    fn shop(&self, path: &str) -> String {
        format!("{}{path}", self.shop.url())
    }

    async fn page(req: reqwest::RequestBuilder) -> Page {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        if status != StatusCode::OK && status != StatusCode::NO_CONTENT {
            assert!(
                !status.is_server_error() || status == StatusCode::BAD_GATEWAY,
                "{status}: {body}"
            );
        }
        Page { status, headers, body }
    }

    /// `GET path` with the token in the dev cookie the edge sets on plain http.
    async fn get_with(&self, path: &str, token: &str) -> Page {
        Self::page(
            self.http.get(self.shop(path)).header(COOKIE, format!("anteroom-{QUEUE}={token}")),
        )
        .await
    }

    async fn post_with(&self, path: &str, token: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(self.shop(path))
                .header(COOKIE, format!("anteroom-{QUEUE}={token}"))
                .form(form),
        )
        .await
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    shared::b64::encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(aud: &str, iss: &str) -> AccessClaims {
    AccessClaims { iss: iss.into(), aud: aud.into(), sub: "x".into(), qpos: 7, jti: "9.7".into() }
}

fn assert_refused(p: &Page, what: &str) {
    assert_eq!(p.status, StatusCode::UNAUTHORIZED, "{what}: {}", p.body);
    assert!(p.body.contains("go through the waiting room"), "{what}: {}", p.body);
    assert_eq!(p.headers["www-authenticate"], "Bearer", "{what}");
    assert!(!p.body.contains("data-testid=\"position\""), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_tokens_for_this_queue_get_in() {
    let s = Stack::start(Some(SEED), &["--join-url", "http://127.0.0.1:8787/"]).await;
    let (_, pos, token) = s.admitted(QUEUE).await;
    let real = SigningKey::from_seed(SEED);
    assert_eq!(token.split('.').next().map(|h| h.len() > 10), Some(true));

    // Without a token: refused, with a way to the line; /healthz answers anyway.
    let p = Stack::page(s.http.get(s.shop("/"))).await;
    assert_refused(&p, "no token");
    assert!(p.body.contains("href=\"http://127.0.0.1:8787/\""));
    assert_refused(&Stack::page(s.http.get(s.shop("/checkout"))).await, "no token, checkout");
    let p = Stack::page(s.http.post(s.shop("/leave"))).await;
    assert_refused(&p, "no token, leave");
    let p = Stack::page(s.http.get(s.shop("/healthz"))).await;
    assert_eq!((p.status, p.body.as_str()), (StatusCode::OK, "ok"));

    // The real token, in each place a visitor can carry it.
    for req in [
        s.http.get(s.shop("/")).header(COOKIE, format!("anteroom-{QUEUE}={token}")),
        s.http.get(s.shop("/")).header(COOKIE, format!("a=b; __Host-anteroom-{QUEUE}={token}")),
        s.http.get(s.shop("/")).header(AUTHORIZATION, format!("Bearer {token}")),
    ] {
        let p = Stack::page(req).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        assert!(p.body.contains(&format!("data-testid=\"position\">#{pos}<")), "{}", p.body);
        assert!(p.body.contains("data-testid=\"session-expiry\""));
        assert!(p.body.contains("data-testid=\"leave-button\""));
        assert_eq!(p.headers["cache-control"], "no-store");
        assert!(p.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    }
    let p = s.get_with("/checkout", &token).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("data-testid=\"checkout-button\""));

    // A real token of another queue.
    let (_, _, other) = s.admitted("other").await;
    assert_refused(&s.get_with("/", &other).await, "other queue's token");

    // Signed by a key the coordinator never published.
    let stranger = SigningKey::from_seed([0x11; 32]);
    let t = stranger.issue(&claims(QUEUE, "anteroom"), now(), now() + 300);
    assert_refused(&s.get_with("/", &t).await, "unknown key");

    // The payload changed under the real signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&shared::b64::decode(parts[1]).unwrap()).unwrap();
    payload["qpos"] = json!(1);
    let t = format!("{}.{}.{}", parts[0], b64(payload.to_string()), parts[2]);
    assert_refused(&s.get_with("/", &t).await, "tampered payload");
    // The real key id over another key's signature.
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, real.kid());
    let forged_parts: Vec<String> = stranger
        .issue(&claims(QUEUE, "anteroom"), now(), now() + 300)
        .split('.')
        .map(String::from)
        .collect();
    let t = format!("{}.{}.{}", b64(&header), forged_parts[1], forged_parts[2]);
    assert_refused(&s.get_with("/", &t).await, "real kid, other key's signature");

    // `alg: none`, with and without a signature part.
    let header = format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, real.kid());
    let none = format!("{}.{}.", b64(&header), parts[1]);
    assert_refused(&s.get_with("/", &none).await, "alg none");
    assert_refused(&s.get_with("/", &none[..none.len() - 1]).await, "alg none, two parts");
    // HS256 keyed with the public key (algorithm confusion).
    let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, real.kid());
    let signing_input = format!("{}.{}", b64(&header), parts[1]);
    let mac = {
        use hmac::Mac as _;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(real.public().as_ref()).unwrap();
        m.update(signing_input.as_bytes());
        m.finalize().into_bytes()
    };
    assert_refused(&s.get_with("/", &format!("{signing_input}.{}", b64(mac))).await, "hs256");

    // Signed by the real key (the test knows the seed) but wrong in a claim.
    let n = now();
    for (what, t) in [
        ("other audience", real.issue(&claims("other", "anteroom"), n, n + 300)),
        ("other issuer", real.issue(&claims(QUEUE, "someone-else"), n, n + 300)),
        ("expired", real.issue(&claims(QUEUE, "anteroom"), n - 600, n - 60)),
        ("not yet valid", real.issue(&claims(QUEUE, "anteroom"), n + 600, n + 900)),
    ] {
        assert_refused(&s.get_with("/", &t).await, what);
    }
    // ...while the same key and right claims get in: verification is the shop's own.
    let p = s.get_with("/", &real.issue(&claims(QUEUE, "anteroom"), n, n + 300)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("data-testid=\"position\">#7<"));

    // Garbage of every kind.
    for t in ["", "x", "a.b.c", "....", &"A".repeat(10_000), "%00%ff", "eyJ.eyJ.sig"] {
        assert_refused(&s.get_with("/", t).await, &format!("garbage {:.20}", t));
    }
    let p = Stack::page(s.http.get(s.shop("/")).header(AUTHORIZATION, "Bearer")).await;
    assert_refused(&p, "empty bearer");

    // Unknown pages are a 404 page, not an error.
    let p = s.get_with("/nope", &token).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_completes_the_session() {
    let s = Stack::start(None, &[]).await;
    let (rid, pos, token) = s.admitted(QUEUE).await;
    let (_, _, bystander) = s.admitted(QUEUE).await;
    assert_eq!(s.active(QUEUE).await, 2);
    let p = s.get_with("/", &token).await;
    assert!(p.body.contains(&format!("#{pos}<")));

    let p = s.post_with("/checkout", &token, &[("quantity", "2")]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("data-testid=\"thank-you\""), "{}", p.body);
    assert!(p.body.contains("2 tickets") && p.body.contains("€90.00"));
    let cleared: Vec<&str> =
        p.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with(&format!("anteroom-{QUEUE}=;")) && c.contains("Max-Age=0"))
    );
    assert!(cleared.iter().any(|c| c.starts_with(&format!("__Host-anteroom-{QUEUE}=;"))));

    // The coordinator ended exactly that session: the place went to the next visitor.
    assert_eq!(s.active(QUEUE).await, 1);
    let (status, v) = s.generate_token(QUEUE, &rid).await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    // The shop does not serve the ended session again, nor end it twice.
    let p = s.get_with("/", &token).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("Your visit has ended"), "{}", p.body);
    assert_eq!(s.post_with("/checkout", &token, &[("quantity", "1")]).await.status, 401);
    // The other visitor is untouched.
    assert_eq!(s.get_with("/", &bystander).await.status, StatusCode::OK);
    assert_eq!(s.active(QUEUE).await, 1);

    // The origin key the shop holds opens only its own routes.
    let url = s.admin(&format!("/api/queue/{QUEUE}/active_token_num"));
    let r = s.http.get(url).bearer_auth(ORIGIN_KEY).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .post(s.admin("/api/queue/increment_serving_position"))
        .bearer_auth(ORIGIN_KEY)
        .form(&[("queue_id", QUEUE), ("increment_by", "100")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_abandons_the_session() {
    let s = Stack::start(None, &[]).await;
    let (rid, _, token) = s.admitted(QUEUE).await;
    assert_eq!(s.active(QUEUE).await, 1);
    let p = s.post_with("/leave", &token, &[]).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("data-testid=\"left-message\""));
    assert_eq!(s.active(QUEUE).await, 0);
    let (status, v) = s.generate_token(QUEUE, &rid).await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    let p = s.get_with("/checkout", &token).await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert!(p.body.contains("Your visit has ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_without_ending_the_session_or_leaking() {
    let s = Stack::start(None, &[]).await;
    let (_, _, token) = s.admitted(QUEUE).await;
    let cookie = format!("anteroom-{QUEUE}={token}");
    for q in ["0", "5", "abc", "-1", "99999999999999999999999", ""] {
        let p = s.post_with("/checkout", &token, &[("quantity", q)]).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "quantity {q:?}");
        assert!(p.body.contains("between 1 and 4"));
    }
    let p = Stack::page(
        s.http
            .post(s.shop("/checkout"))
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/json")
            .body("{\"quantity\":1}"),
    )
    .await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    let p = Stack::page(
        s.http
            .post(s.shop("/checkout"))
            .header(COOKIE, &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("quantity=1&pad={}", "x".repeat(8192))),
    )
    .await;
    assert!(p.status.is_client_error(), "{}", p.status);
    // A cross-site form post (a browser marks it) is refused before anything happens.
    for path in ["/checkout", "/leave"] {
        let p = Stack::page(
            s.http
                .post(s.shop(path))
                .header(COOKIE, &cookie)
                .header("sec-fetch-site", "cross-site")
                .form(&[("quantity", "1")]),
        )
        .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
    }
    let p = Stack::page(s.http.get(s.shop("/leave")).header(COOKIE, &cookie)).await;
    assert_eq!(p.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.active(QUEUE).await, 1, "nothing above ended the session");

    // With the coordinator gone, the shop still knows the visitor (its keys are cached)
    // but cannot end the session: a plain 502 page, no internals.
    let Stack { coordinator, shop, http, _redis } = s;
    let coordinator_addr = coordinator.admin.to_string();
    coordinator.stop().await.unwrap();
    let p = Stack::page(http.get(format!("{}/", shop.url())).header(COOKIE, &cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    let p = Stack::page(
        http.post(format!("{}/checkout", shop.url()))
            .header(COOKIE, &cookie)
            .form(&[("quantity", "1")]),
    )
    .await;
    assert_eq!(p.status, StatusCode::BAD_GATEWAY, "{}", p.body);
    assert!(p.body.contains("nothing was bought"));
    let body = p.body.to_lowercase();
    for leak in [
        &coordinator_addr,
        "127.0.0.1",
        "update_token_status",
        "reqwest",
        "sending request",
        "refused",
    ] {
        assert!(!body.contains(leak), "leaks {leak}: {}", p.body);
    }
    // The visit is still open at the shop: the failure did not mark it ended.
    let p = Stack::page(http.get(format!("{}/", shop.url())).header(COOKIE, &cookie)).await;
    assert_eq!(p.status, StatusCode::OK);
    shop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_signing_key_is_fetched_on_its_first_token() {
    let s = Stack::start(None, &["--jwks-refetch-ms", "300"]).await;
    let (_, _, old) = s.admitted(QUEUE).await;
    assert_eq!(s.get_with("/", &old).await.status, StatusCode::OK);

    // A cache that may refetch only once an hour, loaded now.
    let client = reqwest::Client::new();
    let slow = ticket_shop::keys::KeyCache::new(
        client,
        &format!("http://{}", s.coordinator.public),
        Duration::from_secs(3600),
    );
    assert!(slow.refresh().await);
    assert_eq!(slow.len(), 1);

    let r = s.http.post(s.admin("/api/keys/rotate")).bearer_auth(ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let kid = |t: &str| -> String {
        let h: Value =
            serde_json::from_slice(&shared::b64::decode(t.split('.').next().unwrap()).unwrap())
                .unwrap();
        h["kid"].as_str().unwrap().to_string()
    };
    // The rotated key is published at once and signs a few seconds later (staged rotation):
    // the first token it signs is the one the shop has not seen.
    let (pos, new) = wait_for("a token signed by the new key", 20, || async {
        let (_, pos, t) = s.admitted(QUEUE).await;
        (kid(&t) != kid(&old)).then_some((pos, t))
    })
    .await;

    // The shop refetches on the unknown kid (within its rate limit) and lets the visitor in.
    let p = wait_for("the new key at the shop", 10, || async {
        let p = s.get_with("/", &new).await;
        (p.status == StatusCode::OK).then_some(p)
    })
    .await;
    assert!(p.body.contains(&format!("#{pos}<")));
    assert_eq!(s.get_with("/", &old).await.status, StatusCode::OK, "old key still published");

    // The rate-limited cache does not refetch for every unknown kid...
    for _ in 0..3 {
        let r = slow.verify(&new, "anteroom", QUEUE, now()).await;
        assert_eq!(r.err(), Some(TokenError::UnknownKey));
    }
    // ...and knows the key once it does fetch.
    assert!(slow.refresh().await);
    assert_eq!(slow.len(), 2);
    assert!(slow.verify(&new, "anteroom", QUEUE, now()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_telemetry_reaches_the_coordinator() {
    let s = Stack::start(None, &["--report-health", "--health-interval-ms", "200"]).await;
    let (_, _, token) = s.admitted(QUEUE).await;
    for _ in 0..5 {
        assert_eq!(s.get_with("/", &token).await.status, StatusCode::OK);
    }
    let url = s.admin(&format!("/api/queue/{QUEUE}/status"));
    let health = wait_for("a health reading", 10, || async {
        let (st, v) =
            Stack::json(s.http.get(&url).bearer_auth(ADMIN_KEY).send().await.unwrap()).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let h = v["last_health"].clone();
        (h["latency_ms"].as_f64().is_some_and(|l| l > 0.0)).then_some(h)
    })
    .await;
    assert_eq!(health["error_rate"].as_f64(), Some(0.0), "{health}");
    assert!(health["latency_ms"].as_f64().unwrap() < 5_000.0, "{health}");
    assert!(health["in_flight"].as_u64().is_some(), "{health}");
    // The other queue got nothing: the shop reports for its own queue only.
    let (_, v) = Stack::json(
        s.http.get(s.admin("/api/queue/other/status")).bearer_auth(ADMIN_KEY).send().await.unwrap(),
    )
    .await;
    assert!(v["last_health"].is_null(), "{v}");
}

#[test]
fn the_shop_has_no_setting_for_the_operator_key() {
    let base = ["ticket-shop", "--queue-id", QUEUE, "--origin-key", ORIGIN_KEY];
    assert!(ticket_shop::Config::try_parse_from(base).is_ok());
    let with_admin = [&base[..], &["--admin-key", ADMIN_KEY]].concat();
    assert!(ticket_shop::Config::try_parse_from(with_admin).is_err());
    let help =
        <ticket_shop::Config as clap::CommandFactory>::command().render_long_help().to_string();
    assert!(!help.contains("--admin-key") && !help.contains("ADMIN_KEY"), "{help}");
    assert!(help.contains("SHOP_ORIGIN_KEY"), "{help}");
}
