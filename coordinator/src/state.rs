//! Shared application state: the store, the key ring, the queue registry cache, the clock and
//! the group-commit batchers.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use shared::wire::QueueConfig;
use tokio::sync::Mutex as AsyncMutex;

use crate::access::Keys;
use crate::batcher::Batchers;
pub use crate::clock::Clock;
use crate::keys::Keyring;
use crate::metrics::Metrics;
use crate::recovery::{Faults, Floors};
use crate::session::Sessions;
use crate::store::{Store, StoreError, StoreResult, WaitingFacts};
use crate::webhooks::Webhooks;

/// Settings that handlers need, fixed at start.
#[derive(Clone)]
pub struct Settings {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// Bearer key of the private API.
    pub admin_key: String,
    /// Bearer key of the origin (end sessions, report health only).
    pub origin_key: Option<String>,
    /// Largest group-commit batch.
    pub max_batch: usize,
    /// Whether keys come from config (rotation is then done by config, not the API).
    pub keys_from_config: bool,
    /// Secret shared with the edge (client IP header, proof-of-work, sync).
    pub edge_key: Option<[u8; 32]>,
    /// Refuse public calls that do not come through the edge (see `Config::edge_only`).
    pub edge_only: bool,
    /// Where and how often to publish queue states to the edge; `None` = not at all.
    pub publish: Option<crate::config::PublishConfig>,
    /// Audit entries kept.
    pub audit_keep: u64,
    /// Minute samples kept per queue.
    pub report_minutes: u64,
    /// The console at `/console`.
    pub console: ConsoleSettings,
}

/// How the console is served.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSettings {
    /// Whether `/console` serves the page (the session routes answer either way).
    pub enabled: bool,
    /// Whether the session cookie is `Secure` (the listener is reached over https).
    pub secure_cookie: bool,
    /// How long a session lasts, seconds.
    pub session_secs: u64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// The observability parts of the state, built by `start` from the config.
#[derive(Debug)]
pub struct Observe {
    /// Metrics, unless turned off.
    pub metrics: Option<Arc<Metrics>>,
    /// The keys the private API accepts.
    pub access: Keys,
    /// Webhook endpoints and the delivery buffer.
    pub webhooks: Arc<Webhooks>,
    /// Console sessions.
    pub sessions: Sessions,
}

/// The application state handed to every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("store", &self.inner.store.kind()).finish()
    }
}

struct Inner {
    /// Where queues, places and sessions live.
    store: Arc<dyn Store>,
    /// Keys; replaced on rotation.
    keys: RwLock<Arc<Keyring>>,
    /// Queue registry cache; refreshed from the store.
    queues: RwLock<QueueCache>,
    /// Serialises registry refreshes triggered by a cache miss.
    refresh_lock: AsyncMutex<()>,
    /// When a miss last reloaded the registry (the negative cache's clock).
    miss_reload_at: std::sync::Mutex<Option<Instant>>,
    /// The last second a pause was recorded per queue (one write a second).
    paused_at: std::sync::Mutex<HashMap<u32, u64>>,
    clock: Clock,
    settings: Settings,
    batchers: Batchers,
    /// Measured admission rate per queue, refreshed every second from the store.
    estimates: RwLock<HashMap<u32, shared::eta::RateEstimate>>,
    /// Recently read status numbers per queue, so polls are answered from memory.
    status: RwLock<HashMap<u32, CachedStatus>>,
    /// The status read in flight per queue, and the generation of its cache (lock before
    /// `status`).
    flights: std::sync::Mutex<HashMap<u32, StatusFlight>>,
    /// Highest counters seen per queue: answers never go below them (a read that started
    /// before a change can finish after a newer one), nor does the store after losing writes.
    floors: Arc<Floors>,
    /// Faults found since start.
    faults: Arc<Faults>,
    /// Metrics, unless turned off.
    metrics: Option<Arc<Metrics>>,
    /// The keys the private API accepts.
    access: Keys,
    /// Webhook endpoints and the delivery buffer.
    webhooks: Arc<Webhooks>,
    /// Console sessions.
    sessions: Sessions,
    /// Queues that vanished from the store without an operator deleting them, by id: held
    /// (503 `queue_lost`) and still published to the edge as lost.
    lost: RwLock<HashMap<u32, Arc<QueueConfig>>>,
}

/// Why a slug names no queue to serve.
#[derive(Debug)]
pub enum Lookup {
    /// No queue has this slug.
    Unknown,
    /// The store lost the queue; it is held until an operator re-creates or deletes it.
    Lost,
    /// The registry could not be read.
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for Lookup {
    fn from(e: crate::store::StoreError) -> Self {
        Lookup::Store(e)
    }
}

/// A queue's status as last read from the store: what polls (`serving_pos`, `waiting_num`,
/// `queue_pos`) are answered from, as the edge answers them from its synced state.
#[derive(Debug, Clone, Default)]
pub struct CachedStatus {
    /// Serving position.
    pub serving: u64,
    /// Waiting visitors.
    pub waiting: u64,
    /// Positions handed out.
    pub assigned: u64,
    /// The newest serving history entries, for position expiry.
    pub history: Arc<[(u64, u64)]>,
    /// The pre-queue draw, once done.
    pub draw: Option<Arc<shared::sync::Draw>>,
    /// When the expiry clock stood still.
    pub pauses: Arc<[(u64, u64)]>,
    /// When it was read, unix ms.
    pub read_at_ms: u64,
}

impl CachedStatus {
    /// The facts that decide where a ticket of `q` stands.
    pub fn line<'a>(&'a self, q: &QueueConfig) -> shared::sync::Line<'a> {
        shared::sync::Line {
            queue: q.id,
            serving_pos: self.serving,
            assigned: self.assigned,
            as_of_ms: self.read_at_ms,
            serving_history: &self.history,
            draw: self.draw.as_deref(),
            expiry_secs: q.expiry(),
            pauses: &self.pauses,
        }
    }
}

/// How long a registry read answers a miss for a slug it does not have (the negative cache):
/// a queue created by another process is seen at most this late on a miss, and within a
/// second in any case (the upkeep loop reloads the registry).
pub const MISS_RELOAD_GAP: std::time::Duration = std::time::Duration::from_millis(100);

/// Serving history entries kept in the status view and sent to the edge.
pub const HISTORY_LIMIT: usize = 64;

/// How long (by the state's clock) a status read from the store answers polls: a poll sees a
/// change made by another process at most this late; changes made here are seen at once.
pub const STATUS_TTL: std::time::Duration = std::time::Duration::from_millis(100);

/// The registry, indexed both ways.
#[derive(Debug, Default)]
struct QueueCache {
    by_slug: HashMap<String, Arc<QueueConfig>>,
    by_id: HashMap<u32, Arc<QueueConfig>>,
    /// When it was last loaded; `None` until the store has answered once.
    loaded_at: Option<Instant>,
    /// Counts loads, so concurrent misses share one refresh.
    generation: u64,
}

impl AppState {
    /// Builds the state around a store and loaded keys.
    pub fn new(
        store: Arc<dyn Store>,
        keys: Keyring,
        settings: Settings,
        clock: Clock,
        observe: Observe,
    ) -> Self {
        let floors = Arc::new(Floors::default());
        let faults = Arc::new(Faults::default());
        let batchers = Batchers::new(
            store.clone(),
            clock.clone(),
            settings.max_batch,
            floors.clone(),
            faults.clone(),
        );
        AppState {
            inner: Arc::new(Inner {
                store,
                keys: RwLock::new(Arc::new(keys)),
                queues: RwLock::new(QueueCache::default()),
                refresh_lock: AsyncMutex::new(()),
                miss_reload_at: std::sync::Mutex::new(None),
                paused_at: std::sync::Mutex::new(HashMap::new()),
                clock,
                settings,
                batchers,
                estimates: RwLock::new(HashMap::new()),
                status: RwLock::new(HashMap::new()),
                flights: std::sync::Mutex::new(HashMap::new()),
                floors,
                faults,
                metrics: observe.metrics,
                access: observe.access,
                webhooks: observe.webhooks,
                sessions: observe.sessions,
                lost: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Metrics, unless turned off.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.inner.metrics.as_deref()
    }

    /// Metrics, unless turned off, as a handle to keep (the HTTP counting layer).
    pub fn metrics_handle(&self) -> Option<Arc<Metrics>> {
        self.inner.metrics.clone()
    }

    /// The keys the private API accepts.
    pub fn access(&self) -> &Keys {
        &self.inner.access
    }

    /// Console sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// Webhook endpoints and delivery.
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.inner.webhooks
    }

    /// `now - position_expiry` with the queue's pauses, as the waiting count needs it (0
    /// without expiry).
    pub async fn expiry_t0(&self, q: &QueueConfig, now: u64) -> StoreResult<u64> {
        Ok(self.waiting_and_pauses_t0(q, now).await?.1)
    }

    async fn waiting_and_pauses_t0(
        &self,
        q: &QueueConfig,
        now: u64,
    ) -> StoreResult<(Vec<(u64, u64)>, u64)> {
        let pauses = match q.expiry() {
            Some(_) => self.inner.store.pauses(q.id).await?,
            None => Vec::new(),
        };
        let t0 = q.expiry().map_or(0, |window| shared::place::expired_before(now, window, &pauses));
        Ok((pauses, t0))
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Now, unix seconds.
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// Now, unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Longest time between two publishes of a queue's state.
    pub fn publish_interval(&self) -> std::time::Duration {
        self.inner
            .settings
            .publish
            .as_ref()
            .map_or(std::time::Duration::from_secs(2), |p| p.interval)
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Fixed settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The group-commit batchers.
    pub fn batchers(&self) -> &Batchers {
        &self.inner.batchers
    }

    /// The current key ring.
    pub fn keys(&self) -> Arc<Keyring> {
        self.inner.keys.read().map(|k| k.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the key ring (rotation).
    pub fn set_keys(&self, keys: Keyring) {
        match self.inner.keys.write() {
            Ok(mut k) => *k = Arc::new(keys),
            Err(p) => *p.into_inner() = Arc::new(keys),
        }
    }

    /// Reloads the queue registry from the store. A queue that was in the registry and is
    /// gone without a tombstone was lost by the store, not deleted: it is kept as lost.
    pub async fn refresh_queues(&self) -> StoreResult<()> {
        let all = self.inner.store.list_queues().await?;
        let missing: Vec<Arc<QueueConfig>> = self.cached(|c| {
            c.by_id.values().filter(|q| !all.iter().any(|a| a.id == q.id)).cloned().collect()
        });
        let deleted: Vec<u32> = if missing.is_empty() {
            Vec::new()
        } else {
            self.inner.store.tombstones(0).await?.into_iter().map(|t| t.id).collect()
        };
        {
            let mut lost = write(&self.inner.lost);
            for q in missing.into_iter().filter(|q| !deleted.contains(&q.id)) {
                tracing::error!(
                    id = q.id,
                    queue = %q.queue_id,
                    "queue vanished from the store without being deleted (data loss?): \
                     held as lost; re-create or delete it"
                );
                Faults::count(&self.inner.faults.queues_lost);
                lost.insert(q.id, q);
            }
            // A lost queue that came back (a restored backup) or whose slug an operator
            // re-created is no longer held.
            lost.retain(|id, q| !all.iter().any(|a| a.id == *id || a.queue_id == q.queue_id));
        }
        let generation = self.cached(|c| c.generation) + 1;
        let mut cache =
            QueueCache { loaded_at: Some(Instant::now()), generation, ..Default::default() };
        for q in all {
            let q = Arc::new(q);
            cache.by_slug.insert(q.queue_id.clone(), q.clone());
            cache.by_id.insert(q.id, q);
        }
        match self.inner.queues.write() {
            Ok(mut g) => *g = cache,
            Err(p) => *p.into_inner() = cache,
        }
        Ok(())
    }

    /// Reloads the registry if it was loaded more than `max_age` ago (one reload at a time):
    /// the edges' freshness pulls read it, so a setting changed through another process
    /// reaches them within `max_age` instead of the upkeep loop's second.
    pub async fn refresh_queues_within(&self, max_age: std::time::Duration) -> StoreResult<()> {
        let stale = |c: &QueueCache| c.loaded_at.is_none_or(|t| t.elapsed() >= max_age);
        if !self.cached(stale) {
            return Ok(());
        }
        let _guard = self.inner.refresh_lock.lock().await;
        if self.cached(stale) {
            self.refresh_queues().await?;
        }
        Ok(())
    }

    fn cached<T>(&self, f: impl FnOnce(&QueueCache) -> T) -> T {
        match self.inner.queues.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    /// Looks a queue up by slug; an unknown slug is a 400 (the contract's "invalid parameter").
    pub async fn queue_by_slug(&self, slug: &str) -> Result<Arc<QueueConfig>, Lookup> {
        if let Some(q) = self.cached(|c| c.by_slug.get(slug).cloned()) {
            return Ok(q);
        }
        // Miss: maybe created by another process since the last refresh. Misses coalesce:
        // one refresh at a time, and a caller whose miss predates a finished refresh uses it.
        // Otherwise a miss reloads the registry only if no miss did in the last
        // MISS_RELOAD_GAP (the negative cache: a flood of made-up slugs costs ten reads a
        // second, not one each).
        let seen = self.cached(|c| c.generation);
        let _guard = self.inner.refresh_lock.lock().await;
        if self.cached(|c| c.generation) == seen {
            let due = {
                let mut last = match self.inner.miss_reload_at.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let due = last.is_none_or(|at| at.elapsed() >= MISS_RELOAD_GAP);
                if due {
                    *last = Some(Instant::now());
                }
                due
            };
            if due {
                self.refresh_queues().await?;
            }
        }
        if let Some(q) = self.cached(|c| c.by_slug.get(slug).cloned()) {
            return Ok(q);
        }
        if read(&self.inner.lost).values().any(|q| q.queue_id == slug) {
            return Err(Lookup::Lost);
        }
        Err(Lookup::Unknown)
    }

    /// Queues held as lost.
    pub fn lost_queues(&self) -> Vec<Arc<QueueConfig>> {
        read(&self.inner.lost).values().cloned().collect()
    }

    /// Stops holding a lost queue (an operator deleted it).
    pub fn forget_lost(&self, id: u32) -> Option<Arc<QueueConfig>> {
        write(&self.inner.lost).remove(&id)
    }

    /// The counters this process has seen.
    pub fn floors(&self) -> &Floors {
        &self.inner.floors
    }

    /// Faults found since start.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The measured admission rate of a queue with automatic admission.
    pub fn estimate(&self, queue: u32) -> Option<shared::eta::RateEstimate> {
        match self.inner.estimates.read() {
            Ok(g) => g.get(&queue).copied(),
            Err(p) => p.into_inner().get(&queue).copied(),
        }
    }

    /// Replaces the cached admission-rate estimates.
    pub fn set_estimates(&self, all: HashMap<u32, shared::eta::RateEstimate>) {
        match self.inner.estimates.write() {
            Ok(mut g) => *g = all,
            Err(p) => *p.into_inner() = all,
        }
    }

    /// The waiting facts of `q` at `now` (unix seconds), for its position-expiry window.
    pub async fn waiting_facts_at(&self, q: &QueueConfig, now: u64) -> StoreResult<WaitingFacts> {
        Ok(self.waiting_and_pauses(q, now).await?.0)
    }

    /// [`AppState::waiting_facts_at`] with the queue's pauses, which decide its window.
    pub async fn waiting_and_pauses(
        &self,
        q: &QueueConfig,
        now: u64,
    ) -> StoreResult<(WaitingFacts, Vec<(u64, u64)>)> {
        let (pauses, t0) = self.waiting_and_pauses_t0(q, now).await?;
        Ok((self.inner.store.waiting_facts(q.id, t0).await?, pauses))
    }

    /// Records that `q`'s expiry clock stands still this second (a claim waited for the
    /// session cap, admissions are paused); at most one store write per queue per second here.
    pub async fn note_pause(&self, queue: u32, now: u64) {
        let fresh = {
            let mut g = match self.inner.paused_at.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.insert(queue, now) != Some(now)
        };
        if fresh && let Err(e) = self.inner.store.add_pause(queue, now, now + 1).await {
            tracing::warn!(queue, cause = %e, "pause not recorded");
        }
    }

    /// The status of a queue, from memory when read less than [`STATUS_TTL`] ago.
    pub async fn status(&self, q: &QueueConfig) -> StoreResult<CachedStatus> {
        let fresh = {
            let g = match self.inner.status.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let now_ms = self.now_ms();
            let ttl = STATUS_TTL.as_millis() as u64;
            g.get(&q.id).filter(|s| now_ms.saturating_sub(s.read_at_ms) < ttl).cloned()
        };
        match fresh {
            Some(s) => Ok(s),
            None => self.shared_read(q).await,
        }
    }

    /// A status read of `q` shared by every request that misses the cache while it runs: a
    /// thousand polls arriving as the cache expires cost one read, not a thousand. It runs as
    /// a task of its own, so a caller that gives up does not stop it for the others.
    async fn shared_read(&self, q: &QueueConfig) -> StoreResult<CachedStatus> {
        let read = {
            let mut flights = lock(&self.inner.flights);
            let flight = flights.entry(q.id).or_default();
            match &flight.read {
                Some(r) => r.clone(),
                None => {
                    let (me, queue, changes) = (self.clone(), q.clone(), flight.changes);
                    let task = tokio::spawn(async move {
                        let out = me.read_status_as_of(&queue, changes).await;
                        let mut flights = lock(&me.inner.flights);
                        if let Some(f) = flights.get_mut(&queue.id).filter(|f| f.changes == changes)
                        {
                            f.read = None;
                        }
                        out
                    });
                    let r = async move {
                        task.await.unwrap_or_else(|e| {
                            Err(StoreError::Unavailable(format!("status read stopped: {e}")))
                        })
                    }
                    .boxed()
                    .shared();
                    flight.read = Some(r.clone());
                    r
                }
            }
        };
        read.await
    }

    /// The status of a queue read from the store now (and cached).
    pub async fn read_status(&self, q: &QueueConfig) -> StoreResult<CachedStatus> {
        let changes = lock(&self.inner.flights).get(&q.id).map_or(0, |f| f.changes);
        self.read_status_as_of(q, changes).await
    }

    /// Reads the status of `q`; it fills the cache only if the queue's count of changes made
    /// here is still `changes` (a read that started before a change must not be served after it).
    async fn read_status_as_of(&self, q: &QueueConfig, changes: u64) -> StoreResult<CachedStatus> {
        let read_at_ms = self.now_ms();
        let (w, pauses) = self.waiting_and_pauses(q, read_at_ms / 1000).await?;
        let history = self.inner.store.serving_history(q.id, HISTORY_LIMIT).await?;
        let draw = match q.prequeue_opens_at {
            Some(_) => self.draw_of(q).await?.map(Arc::new),
            None => None,
        };
        let serving = self.inner.floors.saw(q.id, w.counters);
        let s = CachedStatus {
            serving,
            waiting: w.waiting(),
            assigned: w.counters.assigned,
            history: history.into(),
            draw,
            pauses: pauses.into(),
            read_at_ms,
        };
        let flights = lock(&self.inner.flights);
        if flights.get(&q.id).map_or(0, |f| f.changes) == changes {
            write(&self.inner.status).insert(q.id, s.clone());
        }
        drop(flights);
        Ok(s)
    }

    /// The pre-queue draw of `q` with its seed, once it happened.
    pub async fn draw_of(&self, q: &QueueConfig) -> StoreResult<Option<shared::sync::Draw>> {
        let Some((base, count)) = self.inner.store.drawn(q.id).await? else { return Ok(None) };
        let fresh = shared::prequeue::seed_to_hex(&crate::keys::random32());
        let seed = self.inner.store.init_meta(q.id, "seed", fresh).await?;
        Ok(Some(shared::sync::Draw { base, count, seed }))
    }

    /// Replaces (or drops) the cached status of a queue after a change made here.
    pub fn forget_status(&self, queue: u32, fresh: Option<CachedStatus>) {
        let mut flights = lock(&self.inner.flights);
        let flight = flights.entry(queue).or_default();
        flight.changes += 1;
        flight.read = None;
        let mut g = write(&self.inner.status);
        match fresh {
            Some(s) => g.insert(queue, s),
            None => g.remove(&queue),
        };
    }

    /// Looks a queue up by numeric id in the cache.
    pub fn queue_by_id_cached(&self, id: u32) -> Option<Arc<QueueConfig>> {
        self.cached(|c| c.by_id.get(&id).cloned())
    }

    /// Every cached queue.
    pub fn cached_queues(&self) -> Vec<Arc<QueueConfig>> {
        self.cached(|c| c.by_id.values().cloned().collect())
    }

    /// Whether the registry has been loaded at least once.
    pub fn registry_loaded(&self) -> bool {
        self.cached(|c| c.loaded_at.is_some())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A status read in flight, shared by the requests waiting for it.
type StatusRead = Shared<BoxFuture<'static, StoreResult<CachedStatus>>>;

/// Per queue: the read in flight, and how many changes made here dropped the cache.
#[derive(Default)]
struct StatusFlight {
    changes: u64,
    read: Option<StatusRead>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match l.write() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
