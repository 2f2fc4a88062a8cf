//! What the metrics add to one enqueue, measured without the network: the same axum router
//! called in process, once bare (as with `ANTEROOM_METRICS=false`) and once with everything
//! an enqueue records when metrics are on (the HTTP answer count, the enqueue latency
//! histogram, one Redis round trip's histogram), rounds interleaved, on every core at once so
//! the locks are contended as in the coordinator. The storm (`scripts/bench.sh storm`) gives
//! the coordinator's whole CPU time per enqueue to compare it with.
//!
//!   cargo run --release -p coordinator --example metrics_cost [calls per round]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::post;
use coordinator::metrics::{Listener, Metrics};
use coordinator::store::Observer;
use coordinator::track::TrackLayer;
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;

fn bare() -> Router {
    Router::new().route("/assign_queue_pos", post(|| async { "{}" }))
}

fn metered(m: Arc<Metrics>) -> Router {
    let handler_metrics = m.clone();
    Router::new()
        .route(
            "/assign_queue_pos",
            post(move || {
                let m = handler_metrics.clone();
                async move {
                    let started = Instant::now();
                    // The store's observer times each round trip; a batch of one is the worst case.
                    m.redis_command("EVALSHA", started.elapsed(), true);
                    m.enqueued(1, "sale", started.elapsed());
                    "{}"
                }
            }),
        )
        .layer(TrackLayer::new(m, Listener::Public))
}

/// Nanoseconds of CPU per call, `calls` calls spread over one task per core.
async fn run(router: &Router, calls: usize, tasks: usize) -> f64 {
    let started = Instant::now();
    let mut all = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let r = router.clone();
        all.push(tokio::spawn(async move {
            for _ in 0..calls / tasks {
                let req =
                    Request::post("/assign_queue_pos").body(Body::empty()).unwrap_or_default();
                let resp = r.clone().oneshot(req).await;
                std::hint::black_box(resp.map(|r| r.status()).ok());
            }
        }));
    }
    for t in all {
        let _ = t.await;
    }
    let wall: Duration = started.elapsed();
    // Every task keeps one core busy for the whole run.
    wall.as_nanos() as f64 * tasks as f64 / calls as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(400_000);
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let (off, on) = (bare(), metered(metrics));
        // Warm-up: the series are created on first use.
        run(&off, calls / 10, cores).await;
        run(&on, calls / 10, cores).await;
        let (mut b, mut m, mut d) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let x = run(&off, calls, cores).await;
            let y = run(&on, calls, cores).await;
            b.push(x);
            m.push(y);
            d.push(y - x);
        }
        println!(
            "calls per round {calls}, {cores} tasks, {ROUNDS} rounds (median): \
             router alone {:.0} ns per call, with metrics {:.0} ns, metrics {:.0} ns per enqueue",
            median(b),
            median(m),
            median(d)
        );
    });
}
