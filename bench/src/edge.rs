//! The edge scenario: the built worker in workerd (Miniflare) against the real coordinator and
//! Redis. Status polls against a trivial worker in the same workerd setup, protected
//! pass-through with a verified token against a bypass path of the same worker to the same
//! origin, the coordinator requests those polls cause, and the sync staleness of a
//! serving-position change.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::harness::{Env, compare_made, create_queue, increment_serving};
use crate::procs::{Coordinator, Redis, Workerd, free_addr};
use crate::results::{Compare, Edge, Knobs};
use loadgen::{self as load, Call, MakeCall};

/// Route prefix the worker is given.
const PREFIX: &str = "/anteroom";
/// Queue of the scenario; its protected paths and the bypass path under them.
const QUEUE: &str = "edge";
/// The coordinator's publish interval (its default), milliseconds.
pub const PUBLISH_MS: u64 = 2000;
/// The worker's isolate cache of synced state (`CACHE_MS` in edge-worker/src/store.rs).
pub const CACHE_MS: u64 = 1000;
/// Distinct tokens of the fresh-token run, cycled. More than twice the worker's token cache
/// (4,096 entries, emptied when full), so a token is always gone from the cache before it
/// comes round again: every request pays a full verification.
const FRESH_TOKENS: usize = 16_384;
/// Secrets shared by the coordinator and the worker in this scenario (test values).
const EDGE_KEY_HEX: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
const TICKET_KEYS: &str = "3:3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";
const SIGNING_SEED: [u8; 32] = [0x5b; 32];

/// Target names (the report looks rows up by them).
pub const TRIVIAL: &str = "trivial worker";
/// `serving_pos` through the worker.
pub const SERVING: &str = "serving_pos";
/// `queue_pos` with a valid ticket through the worker.
pub const QUEUE_POS: &str = "queue_pos";
/// A bypass path of the protected queue: proxied to the origin without a token check.
pub const BYPASS: &str = "bypass path (no verification)";
/// A protected path with the same valid token every time (the isolate's token cache).
pub const CACHED: &str = "token, same one repeatedly";
/// A protected path with a different valid token every time (full verification).
pub const FRESH: &str = "token, fresh each request";

/// A closed-loop request maker that counts what it makes.
fn counted(call: Call, n: Arc<AtomicU64>) -> MakeCall {
    Arc::new(move |_| {
        n.fetch_add(1, Ordering::Relaxed);
        Some(call.clone())
    })
}

async fn get_json(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<serde_json::Value> {
    load::once_ok(addr, &Call::get(path)).await
}

async fn count(counter: Option<std::net::SocketAddr>) -> anyhow::Result<u64> {
    counter_value(counter, "/__bench/count").await
}

/// Freshness pulls (`/edge/...`) the counting proxy has passed so far.
async fn pulls(counter: Option<std::net::SocketAddr>) -> anyhow::Result<u64> {
    counter_value(counter, "/__bench/pulls").await
}

async fn counter_value(counter: Option<std::net::SocketAddr>, path: &str) -> anyhow::Result<u64> {
    let addr = counter.context("the worker has no counting proxy")?;
    let (_, body) = load::once(addr, &Call::get(path)).await?;
    String::from_utf8_lossy(&body).trim().parse().context("count is not a number")
}

/// Polls `check` every 20 ms for up to `secs`.
async fn wait_for<F, Fut>(what: &str, secs: u64, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("timed out waiting for {what}")
}

fn cpu(pid: u32) -> f64 {
    crate::procs::cpu_secs(pid).unwrap_or(0.0)
}

/// Runs the edge scenario on a Redis and coordinator of its own (publishing to the worker);
/// the origin behind the worker is the run's bare axum server.
pub async fn edge(env: &Env, knobs: &Knobs) -> anyhow::Result<Edge> {
    let root = std::env::current_dir()?;
    let built = Path::new("edge-worker/build/index.js");
    anyhow::ensure!(
        root.join(built).exists(),
        "{} is missing: build the worker first (scripts/build-worker.sh)",
        built.display()
    );
    let m = crate::harness::machine();
    let stack = Stack::start(env, knobs, &root)?;
    let paths = stack.setup().await?;

    let c = knobs.concurrency.iter().copied().min().unwrap_or(64);
    let node_pid = stack.worker.node_pid();
    let node0 = cpu(node_pid);
    let counted_from = count(stack.worker.counter).await?;
    let (pulled_from, started) = (pulls(stack.worker.counter).await?, Instant::now());

    eprintln!("== status at the edge ({c} connections)");
    let (status, polls) = stack.status(knobs, c, &paths).await?;
    let coordinator_requests = count(stack.worker.counter).await? - counted_from;
    let pull_secs = started.elapsed().as_secs_f64();
    let pulled = pulls(stack.worker.counter).await? - pulled_from;
    eprintln!(
        "  {polls} polls at the edge caused {coordinator_requests} coordinator requests and \
         {pulled} freshness pulls in {pull_secs:.1} s"
    );

    eprintln!("== protected pass-through ({c} connections)");
    let (pass, pass_requests) = stack.pass(knobs, c, &paths).await?;
    let requests = polls + pass_requests;
    let node_cpu_us = 1e6 * (cpu(node_pid) - node0) / requests.max(1) as f64;

    let n = if knobs.smoke { 3 } else { 60 };
    eprintln!("== sync staleness ({n} serving-position changes)");
    let staleness_ms = staleness(&stack.coord, stack.worker.addr, &paths.serving, n).await?;
    let coordinator_requests_total = count(stack.worker.counter).await? - counted_from;
    let e = Edge {
        date: m.date,
        commit: m.commit,
        load_avg: m.load_avg,
        concurrency: c,
        status,
        pass,
        polls,
        coordinator_requests,
        coordinator_requests_total,
        node_cpu_us,
        staleness_ms,
        publish_ms: PUBLISH_MS,
        cache_ms: CACHE_MS,
        bound_ms: shared::pull::STALENESS_BOUND_MS,
        pulls: pulled,
        pull_secs,
    };
    eprintln!(
        "  staleness p50 {:.0} ms p99 {:.0} ms (target p99 <= {:.0} ms)",
        e.staleness(0.5),
        e.staleness(0.99),
        e.staleness_target_ms()
    );
    drop(stack);
    Ok(e)
}

/// The processes of the edge scenario, stopped in this order when dropped: the coordinator,
/// the worker, the trivial worker, Redis.
struct Stack {
    coord: Coordinator,
    worker: Workerd,
    trivial: Workerd,
    redis: Redis,
}

/// The status paths of the scenario's queue at the edge.
struct Paths {
    /// `serving_pos`.
    serving: String,
    /// `queue_pos` of the ticket enqueued through the worker.
    queue_pos: String,
    /// The queue's number (its `id`), which session ids name.
    queue_number: u64,
}

impl Stack {
    /// Starts Redis, the worker (told the coordinator's address, reserved first), the trivial
    /// worker, and the coordinator publishing to the worker.
    fn start(env: &Env, knobs: &Knobs, root: &Path) -> anyhow::Result<Self> {
        let redis = Redis::start();
        let (public, admin) = (free_addr(), free_addr());
        let worker_env = [
            ("BENCH_COORDINATOR", public.to_string()),
            ("BENCH_ORIGIN_URL", format!("http://{}", env.axum.addr)),
            ("BENCH_PREFIX", PREFIX.to_string()),
            ("BENCH_EDGE_KEY", EDGE_KEY_HEX.to_string()),
            ("BENCH_TICKET_KEYS", TICKET_KEYS.to_string()),
        ];
        let worker = tokio::task::block_in_place(|| Workerd::start(root, "worker", &worker_env))?;
        let trivial = tokio::task::block_in_place(|| Workerd::start(root, "trivial", &[]))?;
        let seed_hex: String = SIGNING_SEED.iter().map(|b| format!("{b:02x}")).collect();
        let coord_env = [
            ("ANTEROOM_TICKET_KEYS", TICKET_KEYS.to_string()),
            ("ANTEROOM_SIGNING_KEY", seed_hex),
            ("ANTEROOM_EDGE_KEY", EDGE_KEY_HEX.to_string()),
            ("ANTEROOM_EDGE_SYNC_URL", format!("http://{}{PREFIX}/__anteroom/sync", worker.addr)),
            ("ANTEROOM_PUBLISH_INTERVAL_MS", PUBLISH_MS.to_string()),
        ];
        let coord = tokio::task::block_in_place(|| {
            crate::procs::start_coordinator_at(
                &knobs.coordinator,
                &redis.url(),
                public,
                admin,
                &coord_env,
            )
        })?
        .context("the edge scenario's coordinator did not start")?;
        eprintln!(
            "  edge pids: workerd {} (node {}), trivial workerd {} (node {}), coordinator {}, redis {}",
            worker.workerd_pid,
            worker.node_pid(),
            trivial.workerd_pid,
            trivial.node_pid(),
            coord.guard.pid(),
            redis.pid()
        );
        Ok(Stack { coord, worker, trivial, redis })
    }

    /// Creates the queue, waits for the first publish, enqueues one visitor through the
    /// worker and waits until its place is known at the edge.
    async fn setup(&self) -> anyhow::Result<Paths> {
        let worker = &self.worker;
        let queue_number = create_queue(
            &self.coord,
            QUEUE,
            r#","paths":["/shop"],"bypass":["/shop/open"],"token_validity_second":3600"#,
        )
        .await?;
        let serving_path = format!("{PREFIX}/serving_pos/{QUEUE}");
        wait_for("the first publish to reach the worker", 30, || async {
            get_json(worker.addr, &serving_path).await.is_ok()
        })
        .await?;

        // A real ticket: enqueue through the worker, which forwards to the coordinator through
        // the counting proxy (so the count is seen to work: one request).
        let assigned = load::once_ok(
            worker.addr,
            &Call::form(format!("{PREFIX}/assign_queue_pos"), format!("queue_id={QUEUE}")),
        )
        .await?;
        let ticket = assigned
            .get("request_id")
            .and_then(serde_json::Value::as_str)
            .context("assign_queue_pos at the edge gave no request_id")?
            .to_string();
        let forwarded = count(worker.counter).await?;
        anyhow::ensure!(forwarded == 1, "the counting proxy saw {forwarded} requests, not 1");
        let queue_pos_path = format!("{PREFIX}/queue_pos/{QUEUE}/{ticket}");
        // The place is known at the edge once a publish after the enqueue has arrived.
        wait_for("the ticket's place at the edge", 30, || async {
            get_json(worker.addr, &queue_pos_path).await.is_ok()
        })
        .await?;
        Ok(Paths { serving: serving_path, queue_pos: queue_pos_path, queue_number })
    }

    /// Status polls through the worker against the trivial worker, at `c` connections;
    /// returns the comparison and the polls sent to the worker.
    async fn status(
        &self,
        knobs: &Knobs,
        c: usize,
        paths: &Paths,
    ) -> anyhow::Result<(Compare, u64)> {
        let (worker, trivial) = (&self.worker, &self.trivial);
        let polls = Arc::new(AtomicU64::new(0));
        let status_targets = [
            (
                TRIVIAL,
                trivial.addr,
                trivial.workerd_pid,
                counted(Call::get(&paths.serving), Arc::default()),
            ),
            (
                SERVING,
                worker.addr,
                worker.workerd_pid,
                counted(Call::get(&paths.serving), polls.clone()),
            ),
            (
                QUEUE_POS,
                worker.addr,
                worker.workerd_pid,
                counted(Call::get(&paths.queue_pos), polls.clone()),
            ),
        ];
        let status = Compare {
            rows: compare_made(knobs, c, self.redis.pid(), &status_targets).await?,
            ..Compare::default()
        };
        Ok((status, polls.load(Ordering::Relaxed)))
    }

    /// Protected pass-through at `c` connections: the bypass path, the same valid token
    /// repeatedly and a fresh one each request; returns the comparison and the requests sent.
    async fn pass(&self, knobs: &Knobs, c: usize, paths: &Paths) -> anyhow::Result<(Compare, u64)> {
        let worker = &self.worker;
        let (fresh, cached) = tokens(paths.queue_number)?;
        let cached_call = bearer(&cached);
        // The bypass must be proxied, and every kind of token must admit, before anything is
        // measured: each answer is the origin's own (a refused token would get the waiting
        // room, also a 200, and the row would measure the page instead of the verification).
        let (status, origin) = load::once(worker.addr, &Call::get("/shop/open/page")).await?;
        anyhow::ensure!(
            status.is_success(),
            "the bypass path through the worker answered {status}"
        );
        let probes = [cached_call.clone(), bearer(&fresh[0]), bearer(&fresh[fresh.len() - 1])];
        for call in &probes {
            let (status, body) = load::once(worker.addr, call).await?;
            anyhow::ensure!(
                status.is_success() && body == origin,
                "a valid token on {} was not proxied to the origin: {status} {}",
                call.path,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        let next = Arc::new(AtomicUsize::new(0));
        let fresh_make: MakeCall = {
            let next = next.clone();
            Arc::new(move |_| {
                let i = next.fetch_add(1, Ordering::Relaxed) % fresh.len();
                Some(bearer(&fresh[i]))
            })
        };
        let (bypass_n, cached_n) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let pass_targets = [
            (
                BYPASS,
                worker.addr,
                worker.workerd_pid,
                counted(Call::get("/shop/open/page"), bypass_n.clone()),
            ),
            (CACHED, worker.addr, worker.workerd_pid, counted(cached_call, cached_n.clone())),
            (FRESH, worker.addr, worker.workerd_pid, fresh_make),
        ];
        let pass = Compare {
            rows: compare_made(knobs, c, self.redis.pid(), &pass_targets).await?,
            ..Compare::default()
        };
        let requests = bypass_n.load(Ordering::Relaxed)
            + cached_n.load(Ordering::Relaxed)
            + next.load(Ordering::Relaxed) as u64;
        Ok((pass, requests))
    }
}

/// Valid tokens for the scenario's queue (its number is `queue_number`): [`FRESH_TOKENS`]
/// distinct ones, and one more (the one repeated). Session ids name the queue and a position
/// (`<queue number>.<position>`), as the coordinator's do: the edge refuses any other.
fn tokens(queue_number: u64) -> anyhow::Result<(Arc<Vec<String>>, String)> {
    let key = shared::token::SigningKey::from_seed(SIGNING_SEED);
    let now = i64::try_from(std::time::UNIX_EPOCH.elapsed()?.as_secs())?;
    let token = |i: usize| {
        let claims = shared::token::AccessClaims {
            iss: "anteroom".into(),
            aud: QUEUE.into(),
            sub: format!("bench-visitor-{i}"),
            qpos: i as u64 + 1,
            jti: format!("{queue_number}.{}", i + 1),
        };
        key.issue(&claims, now, now + 3600)
    };
    let fresh: Arc<Vec<String>> = Arc::new((0..FRESH_TOKENS).map(token).collect());
    Ok((fresh, token(FRESH_TOKENS)))
}

/// `GET /shop/page` (a protected path) with token `t`.
fn bearer(t: &str) -> Call {
    let mut call = Call::get("/shop/page");
    call.bearer = Some(t.to_string());
    call
}

/// Moves the serving position by one, `n` times at pseudo-random points of the publisher's
/// cycle, and times how long until the worker answers the new position (polled every 5 ms on
/// one keep-alive connection).
async fn staleness(
    coord: &Coordinator,
    worker: std::net::SocketAddr,
    path: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let poll = Call::get(path);
    let mut conn = load::connect(worker).await?;
    let mut out = Vec::with_capacity(n);
    // A fixed LCG: the same gaps every run, spread over the publish interval.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..n {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        tokio::time::sleep(Duration::from_millis((x >> 33) % PUBLISH_MS)).await;
        let t0 = Instant::now();
        let want = increment_serving(coord, QUEUE, 1).await?;
        loop {
            let (status, body) = load::send(&mut conn, &poll).await?;
            let seen = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("position")?.as_u64());
            anyhow::ensure!(status.is_success(), "serving_pos at the edge answered {status}");
            if seen.is_some_and(|p| p >= want) {
                break;
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(60),
                "serving position {want} did not reach the edge within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        out.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}
