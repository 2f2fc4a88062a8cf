//! In-memory store for a single coordinator process (no Redis configured).
//!
//! Same semantics as the Redis store, checked by the same conformance suite. Nothing survives
//! a restart, so it is for development and tests; the coordinator logs a warning when it runs
//! on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use shared::wire::QueueConfig;

use super::{
    Assigned, Claim, Counters, Created, Ended, Floor, PlaceFacts, PreQueued, Raised, ReplayKey,
    Session, Store, StoreError, StoreResult, StoredSecrets, Tombstone, WaitingFacts,
};

/// One queue's state.
#[derive(Debug, Default)]
struct QueueData {
    counters: Counters,
    /// One bit per position: a token was issued for it.
    claimed: Vec<u64>,
    claimed_total: u64,
    /// Live sessions by position, and the same ordered by expiry for cleanup.
    sessions: HashMap<u64, Session>,
    by_expiry: BTreeSet<(u64, u64)>,
    /// (unix second, last position handed out by then), ascending.
    arrivals: Vec<(u64, u64)>,
    /// (serving position, unix second reached), ascending in both.
    history: Vec<(u64, u64)>,
    /// Revoked jti → expiry.
    revoked: BTreeMap<String, u64>,
    /// Proof-of-work nonces seen, by expiry minute.
    replay: BTreeMap<u64, std::collections::HashSet<[u8; 8]>>,
    /// Last state version handed out.
    version: u64,
    /// Leases: name → (owner, expiry in ms since the store was created).
    leases: HashMap<&'static str, (String, u128)>,
    /// Small named values.
    meta: HashMap<&'static str, String>,
    /// Last controller tick applied.
    ctl_tick: Option<u64>,
    /// Pre-queue arrivals so far.
    prequeue: u64,
    /// `(base, count)` once drawn.
    drawn: Option<(u64, u64)>,
    /// When the expiry clock stood still.
    pauses: Vec<(u64, u64)>,
}

impl QueueData {
    fn is_claimed(&self, pos: u64) -> bool {
        let (w, b) = ((pos / 64) as usize, pos % 64);
        self.claimed.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    fn set_claimed(&mut self, pos: u64) {
        let (w, b) = ((pos / 64) as usize, pos % 64);
        if self.claimed.len() <= w {
            self.claimed.resize(w + 1, 0);
        }
        self.claimed[w] |= 1 << b;
        self.claimed_total += 1;
    }

    fn claimed_upto(&self, upto: u64) -> u64 {
        (1..=upto).filter(|&p| self.is_claimed(p)).count() as u64
    }

    fn expire_sessions(&mut self, now: u64) {
        while let Some(&(exp, pos)) = self.by_expiry.first() {
            if exp > now {
                break;
            }
            self.by_expiry.pop_first();
            self.sessions.remove(&pos);
        }
    }
}

/// Keeps only the newest entry older than `cutoff` (the floor) plus everything newer.
fn compact<T>(series: &mut Vec<T>, time_of: impl Fn(&T) -> u64, cutoff: u64) {
    let old = series.iter().take_while(|e| time_of(e) < cutoff).count();
    if old > 1 {
        series.drain(..old - 1);
    }
}

/// The in-memory store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Monotonic time base for leases.
    started: std::time::Instant,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore { inner: Mutex::default(), started: std::time::Instant::now() }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Every id handed out, deleted queues' included.
    used_ids: std::collections::HashSet<u32>,
    tombstones: Vec<Tombstone>,
    queues: BTreeMap<u32, QueueConfig>,
    data: HashMap<u32, QueueData>,
    secrets: Option<StoredSecrets>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> T,
    ) -> BoxFuture<'_, StoreResult<T>> {
        let out = match self.inner.lock() {
            Ok(mut g) => Ok(f(&mut g)),
            Err(_) => Err(StoreError::Corrupt("memory store lock poisoned".into())),
        };
        async move { out }.boxed()
    }

    fn with_queue<T: Send + 'static>(
        &self,
        queue: u32,
        f: impl FnOnce(&mut QueueData) -> T,
    ) -> BoxFuture<'_, StoreResult<T>> {
        self.with(move |inner| f(inner.data.entry(queue).or_default()))
    }
}

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|_| ())
    }

    fn create_queue(&self, mut cfg: QueueConfig) -> BoxFuture<'_, StoreResult<Created>> {
        self.with(move |inner| {
            if inner.queues.values().any(|q| q.queue_id == cfg.queue_id) {
                return Created::SlugTaken;
            }
            cfg.id = loop {
                let id = super::random_queue_id();
                if inner.used_ids.insert(id) {
                    break id;
                }
            };
            inner.queues.insert(cfg.id, cfg.clone());
            Created::Ok(Box::new(cfg))
        })
    }

    fn update_queue(&self, cfg: QueueConfig) -> BoxFuture<'_, StoreResult<bool>> {
        self.with(move |inner| match inner.queues.get_mut(&cfg.id) {
            Some(q) => {
                *q = cfg;
                true
            }
            None => false,
        })
    }

    fn list_queues(&self) -> BoxFuture<'_, StoreResult<Vec<QueueConfig>>> {
        self.with(|inner| inner.queues.values().cloned().collect())
    }

    fn delete_queue(
        &self,
        id: u32,
        known: Option<QueueConfig>,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        self.with(move |inner| {
            inner.data.remove(&id);
            let Some(q) = inner.queues.remove(&id).or(known) else { return false };
            inner.tombstones.retain(|t| t.deleted_at + super::TOMBSTONE_SECS > now);
            inner.tombstones.push(Tombstone { id, queue_id: q.queue_id, deleted_at: now });
            true
        })
    }

    fn tombstones(&self, since: u64) -> BoxFuture<'_, StoreResult<Vec<Tombstone>>> {
        self.with(move |inner| {
            inner.tombstones.iter().filter(|t| t.deleted_at >= since).cloned().collect()
        })
    }

    fn assign(
        &self,
        queue: u32,
        batch: Vec<Option<ReplayKey>>,
        now: u64,
        keep_secs: u64,
        floor: Floor,
    ) -> BoxFuture<'_, StoreResult<Assigned>> {
        self.with_queue(queue, move |q| {
            let mut raised = None;
            if q.counters.assigned < floor.assigned {
                let to = floor.assigned + floor.gap;
                raised = Some((q.counters.assigned, to));
                q.counters.assigned = to;
            }
            // Forget nonces whose minute is over.
            let current = now / 60;
            q.replay.retain(|bucket, _| *bucket >= current);
            let mut replayed = Vec::new();
            for (i, key) in batch.iter().enumerate() {
                if let Some(k) = key
                    && !q.replay.entry(k.bucket()).or_default().insert(k.fingerprint)
                {
                    replayed.push(i);
                }
            }
            q.counters.assigned += (batch.len() - replayed.len()) as u64;
            let last = q.counters.assigned;
            match q.arrivals.last_mut() {
                Some(e) if e.0 == now => e.1 = last,
                _ => q.arrivals.push((now, last)),
            }
            compact(&mut q.arrivals, |e| e.0, now.saturating_sub(keep_secs));
            Assigned { last, replayed, raised }
        })
    }

    fn raise_counters(
        &self,
        queue: u32,
        floor: Floor,
    ) -> BoxFuture<'_, StoreResult<Option<Raised>>> {
        self.with_queue(queue, move |q| {
            let found = q.counters;
            if q.counters.assigned < floor.assigned {
                q.counters.assigned = floor.assigned + floor.gap;
            }
            q.counters.serving = q.counters.serving.max(floor.serving);
            (q.counters != found).then_some(Raised { found, now: q.counters })
        })
    }

    fn serving_history(
        &self,
        queue: u32,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<(u64, u64)>>> {
        self.with_queue(queue, move |q| q.history[q.history.len().saturating_sub(limit)..].to_vec())
    }

    fn next_version(&self, queue: u32, now_ms: u64) -> BoxFuture<'_, StoreResult<u64>> {
        self.with_queue(queue, move |q| {
            q.version = (q.version + 1).max(now_ms);
            q.version
        })
    }

    fn lease(
        &self,
        queue: u32,
        name: &'static str,
        owner: String,
        ttl_ms: u64,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        let now = self.started.elapsed().as_millis();
        self.with_queue(queue, move |q| {
            let held_by_other =
                q.leases.get(name).is_some_and(|(o, until)| *o != owner && *until > now);
            if !held_by_other {
                q.leases.insert(name, (owner, now + u128::from(ttl_ms)));
            }
            !held_by_other
        })
    }

    fn counters(&self, queue: u32) -> BoxFuture<'_, StoreResult<Counters>> {
        self.with_queue(queue, |q| q.counters)
    }

    fn increment_serving(
        &self,
        queue: u32,
        by: u64,
        now: u64,
        keep_secs: u64,
    ) -> BoxFuture<'_, StoreResult<u64>> {
        self.with_queue(queue, move |q| {
            q.counters.serving += by;
            if by > 0 {
                q.history.push((q.counters.serving, now));
                compact(&mut q.history, |e| e.1, now.saturating_sub(keep_secs));
            }
            q.counters.serving
        })
    }

    fn place(&self, queue: u32, position: u64) -> BoxFuture<'_, StoreResult<PlaceFacts>> {
        self.with_queue(queue, move |q| PlaceFacts {
            counters: q.counters,
            passed_at: q.history.iter().find(|(s, _)| *s >= position).map(|(_, t)| *t),
            claimed: q.is_claimed(position),
        })
    }

    fn claim(
        &self,
        queue: u32,
        position: u64,
        now: u64,
        validity: u64,
        max_active: u64,
    ) -> BoxFuture<'_, StoreResult<Claim>> {
        self.with_queue(queue, move |q| {
            q.expire_sessions(now);
            if q.is_claimed(position) {
                return match q.sessions.get(&position) {
                    Some(s) => Claim::Existing(*s),
                    None => Claim::Ended,
                };
            }
            let active = q.sessions.len() as u64;
            if max_active > 0 && active >= max_active {
                return Claim::Full { active };
            }
            let s = Session { iat: now, exp: now + validity };
            q.set_claimed(position);
            q.sessions.insert(position, s);
            q.by_expiry.insert((s.exp, position));
            Claim::Issued(s)
        })
    }

    fn end_session(
        &self,
        queue: u32,
        position: u64,
        jti: String,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<Ended>> {
        self.with_queue(queue, move |q| {
            q.expire_sessions(now);
            if !q.is_claimed(position) {
                return Ended::NeverClaimed;
            }
            match q.sessions.remove(&position) {
                Some(s) => {
                    q.by_expiry.remove(&(s.exp, position));
                    if s.exp > now {
                        // Revoked as long as a verifier could still accept the token.
                        let until = s.exp + shared::token::LEEWAY_SECS as u64;
                        q.revoked.insert(jti, until);
                    }
                    Ended::Now
                }
                None => Ended::Already,
            }
        })
    }

    fn extend_session(
        &self,
        queue: u32,
        position: u64,
        by: u64,
        cap: u64,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<Option<Session>>> {
        self.with_queue(queue, move |q| {
            q.expire_sessions(now);
            let s = q.sessions.get_mut(&position)?;
            let exp = (s.exp + by).min(s.iat + cap).max(s.exp);
            q.by_expiry.remove(&(s.exp, position));
            s.exp = exp;
            q.by_expiry.insert((exp, position));
            Some(*s)
        })
    }

    fn active_sessions(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<u64>> {
        self.with_queue(queue, move |q| {
            q.expire_sessions(now);
            q.sessions.len() as u64
        })
    }

    fn waiting_facts(&self, queue: u32, t0: u64) -> BoxFuture<'_, StoreResult<WaitingFacts>> {
        self.with_queue(queue, move |q| {
            let serving_at = q.history.iter().rev().find(|e| e.1 <= t0).map_or(0, |e| e.0);
            let assigned_at = q.arrivals.iter().rev().find(|e| e.0 <= t0).map_or(0, |e| e.1);
            let expired_upto = serving_at.min(assigned_at);
            WaitingFacts {
                counters: q.counters,
                claimed_total: q.claimed_total,
                expired_upto,
                claimed_upto: q.claimed_upto(expired_upto),
            }
        })
    }

    fn revoked(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.with_queue(queue, move |q| {
            q.revoked.retain(|_, exp| *exp > now);
            q.revoked.keys().cloned().collect()
        })
    }

    fn assign_prequeue(
        &self,
        queue: u32,
        replay: Option<ReplayKey>,
    ) -> BoxFuture<'_, StoreResult<PreQueued>> {
        self.with_queue(queue, move |q| {
            if q.drawn.is_some() {
                return PreQueued::Drawn;
            }
            if let Some(k) = replay
                && !q.replay.entry(k.bucket()).or_default().insert(k.fingerprint)
            {
                return PreQueued::Replayed;
            }
            q.prequeue += 1;
            PreQueued::Arrival(q.prequeue)
        })
    }

    fn draw(&self, queue: u32) -> BoxFuture<'_, StoreResult<(u64, u64)>> {
        self.with_queue(queue, |q| {
            if let Some(d) = q.drawn {
                return d;
            }
            let d = (q.counters.assigned, q.prequeue);
            q.counters.assigned += q.prequeue;
            q.drawn = Some(d);
            d
        })
    }

    fn drawn(&self, queue: u32) -> BoxFuture<'_, StoreResult<Option<(u64, u64)>>> {
        self.with_queue(queue, |q| q.drawn)
    }

    fn init_meta(
        &self,
        queue: u32,
        name: &'static str,
        value: String,
    ) -> BoxFuture<'_, StoreResult<String>> {
        self.with_queue(queue, move |q| q.meta.entry(name).or_insert(value).clone())
    }

    fn get_meta(
        &self,
        queue: u32,
        name: &'static str,
    ) -> BoxFuture<'_, StoreResult<Option<String>>> {
        self.with_queue(queue, move |q| q.meta.get(name).cloned())
    }

    fn put_meta(
        &self,
        queue: u32,
        name: &'static str,
        value: String,
    ) -> BoxFuture<'_, StoreResult<()>> {
        self.with_queue(queue, move |q| {
            q.meta.insert(name, value);
        })
    }

    fn apply_tick(
        &self,
        queue: u32,
        tick: u64,
        by: u64,
        ctl: String,
        now: u64,
        keep_secs: u64,
    ) -> BoxFuture<'_, StoreResult<Option<u64>>> {
        self.with_queue(queue, move |q| {
            if q.ctl_tick.is_some_and(|t| t >= tick) {
                return None;
            }
            q.ctl_tick = Some(tick);
            q.meta.insert("ctl", ctl);
            q.counters.serving += by;
            if by > 0 {
                q.history.push((q.counters.serving, now));
                compact(&mut q.history, |e| e.1, now.saturating_sub(keep_secs));
            }
            Some(q.counters.serving)
        })
    }

    fn secrets_or_init(&self, fresh: StoredSecrets) -> BoxFuture<'_, StoreResult<StoredSecrets>> {
        self.with(move |inner| inner.secrets.get_or_insert(fresh).clone())
    }

    fn add_pause(&self, queue: u32, from: u64, to: u64) -> BoxFuture<'_, StoreResult<()>> {
        self.with_queue(queue, move |q| {
            q.pauses = shared::place::add_pause(&q.pauses, from, to, super::PAUSES_KEPT);
        })
    }

    fn pauses(&self, queue: u32) -> BoxFuture<'_, StoreResult<Vec<(u64, u64)>>> {
        self.with_queue(queue, |q| q.pauses.clone())
    }

    fn secrets(&self) -> BoxFuture<'_, StoreResult<Option<StoredSecrets>>> {
        self.with(|inner| inner.secrets.clone())
    }

    fn put_secrets(&self, secrets: StoredSecrets) -> BoxFuture<'_, StoreResult<()>> {
        self.with(move |inner| inner.secrets = Some(secrets))
    }
}

impl MemoryStore {
    /// Forgets everything, as a Redis `FLUSHALL` would (for tests of data loss).
    pub fn flush_all(&self) {
        if let Ok(mut g) = self.inner.lock() {
            *g = Inner::default();
        }
    }
}
