//! Anteroom coordinator: FIFO positions, the serving position, sessions and access tokens.
//!
//! `app` builds the routers (tests call them without a socket); `run` serves them on two
//! listeners until `shutdown` resolves; `start` turns a [`Config`] into running state.

pub mod access;
pub mod admin;
pub mod api;
pub mod audit;
pub mod batcher;
pub mod clock;
pub mod config;
pub mod console;
pub mod control;
pub mod error;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod observe;
pub mod overview;
pub mod publish;
pub mod pull;
pub mod queue;
pub mod recovery;
pub mod report;
pub mod report_page;
pub mod sampling;
pub mod session;
pub mod spec;
pub mod state;
pub mod store;
pub mod striped;
pub mod track;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::{BoxError, Router};
use shared::wire::ErrorBody;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use utoipa_axum::router::OpenApiRouter;

pub use config::Config;
use error::{ApiError, ErrorCode};
use keys::Keyring;
use metrics::Listener;
use state::{AppState, Clock, Settings};
use store::Store;
use store::memory::MemoryStore;
use store::redis::RedisStore;

/// Largest public request body (forms of a few fields).
pub const PUBLIC_BODY_LIMIT: usize = 4 * 1024;
/// Largest private request body.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// Limits applied around each router.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per-request time limit.
    pub timeout: Duration,
    /// Requests in flight before new ones are shed with 503.
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(5), concurrency: 8192 }
    }
}

fn overloaded(state: &AppState, listener: Listener, err: &BoxError) -> ApiError {
    let timeout = err.is::<tower::timeout::error::Elapsed>();
    if let Some(m) = state.metrics() {
        m.overload(listener, timeout);
    }
    if timeout {
        ApiError::with(ErrorCode::Unavailable, "request timed out")
    } else {
        ApiError::with(ErrorCode::Unavailable, "server is overloaded")
    }
}

async fn not_found() -> ApiError {
    ApiError::with(ErrorCode::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed)
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "the process answers", content_type = "text/plain"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses((status = 200, description = "the store answers and the registry is loaded", content_type = "text/plain"), (status = "4XX", description = "refused (bad input, unknown queue, missing or wrong key, ...)", body = ErrorBody), (status = "5XX", description = "storage unavailable (503 with Retry-After) or internal error", body = ErrorBody))
)]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store().ping().await?;
    if !state.registry_loaded() {
        state.refresh_queues().await?;
    }
    Ok("ready")
}

fn harden(
    routes: OpenApiRouter<AppState>,
    state: AppState,
    listener: Listener,
    body_limit: usize,
    limits: Limits,
) -> Router {
    let (router, doc) = routes
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
        .split_for_parts();
    let doc = match listener {
        Listener::Public => spec::finish(doc, "Anteroom coordinator: public API", false),
        Listener::Private => spec::finish(doc, "Anteroom coordinator: private API", true),
    };
    let mut router = router
        .layer(axum::Extension(Arc::new(doc)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    // With metrics off the layer is not there at all (the bench's baseline).
    if let Some(m) = state.metrics_handle() {
        router = router.layer(track::TrackLayer::new(m, listener));
    }
    let shed = state.clone();
    router
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |err: BoxError| {
                    let e = overloaded(&shed, listener, &err);
                    async move { e }
                }))
                .load_shed()
                .concurrency_limit(limits.concurrency)
                .timeout(limits.timeout),
        )
        .with_state(state)
}

/// The public router.
pub fn public_app(state: AppState, limits: Limits) -> Router {
    let routes = api::routes(state.clone()).merge(pull::routes());
    harden(routes, state, Listener::Public, PUBLIC_BODY_LIMIT, limits)
}

/// The private router.
pub fn admin_app(state: AppState, limits: Limits) -> Router {
    harden(admin::routes(state.clone()), state, Listener::Private, ADMIN_BODY_LIMIT, limits)
}

/// Opens the store the config names (Redis, Redis Cluster, or memory).
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(if let Some(url) = &cfg.redis_url {
        Arc::new(RedisStore::single(url, cfg.redis_wait_replicas)?)
    } else if !cfg.redis_cluster.is_empty() {
        Arc::new(RedisStore::cluster(&cfg.redis_cluster, cfg.redis_wait_replicas).await?)
    } else {
        tracing::warn!("no redis configured: in-memory store, single node, state lost on exit");
        Arc::new(MemoryStore::new())
    })
}

/// Loads keys (waiting for the store if it is not up yet) and builds the state.
pub async fn start(cfg: &Config, store: Arc<dyn Store>, clock: Clock) -> anyhow::Result<AppState> {
    let ticket_override = cfg.ticket_keys.as_ref().map(|s| s.0.clone());
    let signing_override = cfg.signing_key.as_ref().map(|s| s.0.clone());
    let mut delay = Duration::from_millis(100);
    let stored = loop {
        let got = match store.secrets().await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => {
                tracing::warn!(
                    "no key ring in the store: generating one (a first start; after a data \
                     loss, tickets and tokens signed before are no longer valid)"
                );
                store.secrets_or_init(keys::fresh_secrets()).await
            }
            Err(e) => Err(e),
        };
        match got {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(cause = %e, "store not ready; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    let keys = Keyring::build(&stored, ticket_override.as_deref(), signing_override.as_deref())
        .map_err(anyhow::Error::msg)?;
    let edge_key = match &cfg.edge_key {
        Some(k) => Some(keys::parse_seed(&k.0).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let publish = match (&cfg.edge_sync_url, edge_key) {
        (Some(url), Some(key)) => Some(config::PublishConfig {
            url: url.clone(),
            key,
            interval: Duration::from_millis(cfg.publish_interval_ms),
        }),
        _ => None,
    };
    let settings = Settings {
        issuer: cfg.issuer.clone(),
        admin_key: cfg.admin_key.0.clone(),
        origin_key: cfg.origin_key.as_ref().map(|k| k.0.clone()),
        max_batch: cfg.max_batch,
        keys_from_config: signing_override.is_some(),
        edge_key,
        edge_only: cfg.edge_only.unwrap_or(edge_key.is_some()),
        publish,
        audit_keep: cfg.audit_keep,
        report_minutes: cfg.report_minutes,
        console: state::ConsoleSettings {
            enabled: cfg.console,
            secure_cookie: cfg.console_secure_cookie,
            session_secs: cfg.console_session_secs,
        },
    };
    let metrics = cfg.metrics.then(|| Arc::new(metrics::Metrics::new()));
    if let Some(m) = &metrics {
        store.set_observer(m.clone());
    }
    let observe = state::Observe {
        access: access::Keys::new(
            &cfg.admin_key.0,
            cfg.origin_key.as_ref().map(|k| k.0.as_str()),
            cfg.metrics_key.as_ref().map(|k| k.0.as_str()),
        ),
        webhooks: Arc::new(webhooks::Webhooks::new(cfg.webhook_buffer, metrics.clone())),
        sessions: session::Sessions::default(),
        metrics,
    };
    let state = AppState::new(store, keys, settings, clock, observe);
    if let Err(e) = sampling::reload(&state).await {
        tracing::warn!(cause = %e, "admin keys and webhooks not loaded yet");
    }
    if let Err(e) = state.refresh_queues().await {
        tracing::warn!(cause = %e, "queue registry not loaded yet");
    }
    Ok(state)
}

/// Background upkeep until `stop` fires, once a second: reload the queue registry (so every
/// process sees other processes' changes within a second), draw due pre-queues, refresh the
/// admission estimates, check every queue's counters against what this process has seen
/// (raising those the store lost) and keep the key ring in step with the store (adopting a
/// rotation, writing the ring back if the store lost it).
async fn maintain(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Since when the store has not answered: claims failed with 503 meanwhile, so every
    // queue's expiry clock stood still; recorded once it answers again.
    let mut down_since: Option<u64> = None;
    let mut sampler = sampling::Sampler::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = state.now();
        match state.store().ping().await {
            Err(_) => {
                down_since.get_or_insert(now);
                continue;
            }
            Ok(()) => {
                if let Some(since) = down_since.take() {
                    tracing::warn!(
                        since,
                        now,
                        "store answers again: expiry clocks paused meanwhile"
                    );
                    for q in state.cached_queues() {
                        if let Err(e) = state.store().add_pause(q.id, since, now + 1).await {
                            tracing::warn!(queue = %q.queue_id, cause = %e, "pause not recorded");
                        }
                    }
                }
            }
        }
        if let Err(e) = state.refresh_queues().await {
            tracing::warn!(cause = %e, "queue registry refresh failed");
        }
        for q in state.cached_queues() {
            let due = q.prequeue_opens_at.is_some() && q.opens_at.is_some_and(|o| now >= o);
            if due && let Err(e) = state.store().draw(q.id).await {
                tracing::warn!(queue = %q.queue_id, cause = %e, "pre-queue draw failed");
            }
            if let Err(e) = check_counters(&state, q.id, now).await {
                tracing::warn!(queue = %q.queue_id, cause = %e, "counter check failed");
            }
        }
        let mut estimates = std::collections::HashMap::new();
        for q in state.cached_queues().iter().filter(|q| q.admission.is_some()) {
            if let Ok(c) = control::load(&state, q.id).await {
                estimates.insert(q.id, c.estimate);
            }
        }
        state.set_estimates(estimates);
        if let Err(e) = sync_keys(&state).await {
            tracing::warn!(cause = %e, "key reload failed");
        }
        sampling::tick(&state, &mut sampler).await;
    }
}

/// Raises a queue's counters if the store has them below what this process has seen.
async fn check_counters(state: &AppState, queue: u32, now: u64) -> store::StoreResult<()> {
    let found = state.store().counters(queue).await?;
    let floor = state.floors().floor(queue);
    if found.assigned < floor.assigned || found.serving < floor.serving {
        if let Some(r) = state.store().raise_counters(queue, floor).await? {
            tracing::error!(
                queue,
                assigned_found = r.found.assigned,
                assigned_now = r.now.assigned,
                serving_found = r.found.serving,
                serving_now = r.now.serving,
                "the store lost writes (counters went back): raised them past what this \
                 process has seen"
            );
            recovery::Faults::count(&state.faults().counters_raised);
            state.forget_status(queue, None);
        }
    } else {
        state.floors().saw(queue, found);
    }
    state.floors().sample(queue, now, found.assigned.max(floor.assigned));
    Ok(())
}

/// Keeps this process's key ring in step with the store: adopts a ring another process
/// stored (a rotation), and writes its own back when the store has none (it lost its data) —
/// a loud fault, never a silent re-key.
async fn sync_keys(state: &AppState) -> store::StoreResult<()> {
    let ring = state.keys();
    let Some(mine) = ring.stored() else { return Ok(()) }; // signing key from config
    match state.store().secrets().await? {
        Some(stored) if stored == *mine => {}
        Some(stored) => match Keyring::build(&stored, None, None) {
            Ok(next) => state.set_keys(next.with_ticket_keys_of(&ring)),
            Err(e) => tracing::error!(cause = %e, "stored keys are invalid"),
        },
        None => {
            tracing::error!(
                "the key ring is missing from the store (data loss?): writing back this \
                 process's copy, so tickets and tokens stay valid"
            );
            recovery::Faults::count(&state.faults().keys_restored);
            state.store().secrets_or_init(mine.clone()).await?;
        }
    }
    Ok(())
}

/// Serves the public and private APIs until `shutdown` resolves, then drains in-flight
/// requests and returns.
pub async fn run(
    public: TcpListener,
    admin: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let upkeep = tokio::spawn(maintain(state.clone(), stop_rx.clone()));
    let controller = tokio::spawn(control::run(state.clone(), stop_rx.clone()));
    let hooks = tokio::spawn(state.webhooks().clone().run(stop_rx.clone()));
    let publisher = state.settings().publish.clone().map(|cfg| {
        tracing::info!(url = %cfg.url, "publishing queue states to the edge");
        tokio::spawn(publish::run(state.clone(), cfg, stop_rx.clone()))
    });
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let public_srv = axum::serve(
        public,
        public_app(state.clone(), limits).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(wait(stop_rx.clone()));
    let admin_srv = axum::serve(
        admin,
        admin_app(state, limits).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(wait(stop_rx));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (a, b) = tokio::join!(public_srv.into_future(), admin_srv.into_future());
    let _ = upkeep.await;
    let _ = controller.await;
    let _ = hooks.await;
    if let Some(p) = publisher {
        let _ = p.await;
    }
    a?;
    b?;
    Ok(())
}

/// A coordinator started by [`spawn`]: its listeners' addresses, running until [`Self::stop`]
/// or drop.
#[derive(Debug)]
pub struct Running {
    /// The public listener's address.
    pub public: SocketAddr,
    /// The private listener's address.
    pub admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Stops serving (gracefully) and waits until everything it started has ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.until(std::future::ready(())).await
    }

    /// Serves until `shutdown` resolves, then stops as [`Self::stop`] does; returns early with
    /// the error if serving fails first.
    pub async fn until(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Some(mut task) = self.task.take() else { return Ok(()) };
        tokio::select! {
            out = &mut task => return out?,
            () = shutdown => {}
        }
        self.stop.take();
        task.await?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A dropped sender ends `run`'s shutdown future: the servers stop gracefully.
        self.stop.take();
    }
}

/// Opens the store of `cfg`, starts the state, binds both listeners and runs them on a task
/// of their own, with `cfg`'s limits: the binary's start, and the tests' in-process coordinator.
pub async fn spawn(cfg: &Config, clock: Clock) -> anyhow::Result<Running> {
    let store = open_store(cfg).await?;
    let kind = store.kind();
    let state = start(cfg, store, clock).await?;
    let public = TcpListener::bind(cfg.listen).await?;
    let admin = TcpListener::bind(cfg.admin_listen).await?;
    let (public_addr, admin_addr) = (public.local_addr()?, admin.local_addr()?);
    tracing::info!(public = %public_addr, admin = %admin_addr, store = kind, "coordinator listening");
    let limits = Limits {
        timeout: Duration::from_millis(cfg.request_timeout_ms),
        concurrency: cfg.concurrency_limit,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run(public, admin, state, limits, async move {
        let _ = rx.await;
    }));
    Ok(Running { public: public_addr, admin: admin_addr, stop: Some(tx), task: Some(task) })
}
