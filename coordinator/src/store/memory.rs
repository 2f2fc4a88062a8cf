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
    Assigned, AuditFrom, Claim, ClaimWaits, Counters, Created, Ended, Floor, MinuteSample, Outcome,
    PlaceFacts, PreQueued, QueueStats, Raised, RecordKind, ReplayKey, Session, Store, StoreError,
    StoreResult, StoredSecrets, Tombstone, WAIT_BUCKETS, WaitCounts, WaitingFacts,
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
    /// Sessions completed, abandoned, expired.
    ended: [u64; 3],
    /// Wait histograms (joining to served, joining to claimed).
    waits: Option<Box<WaitCounts>>,
    /// Minute samples by minute.
    minutes: BTreeMap<u64, MinuteSample>,
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

    /// The live session of a place: one past its expiry is not live, though it stays until
    /// swept.
    fn live(&self, pos: u64, now: u64) -> Option<Session> {
        self.sessions.get(&pos).copied().filter(|s| s.exp > now)
    }

    fn live_count(&self, now: u64) -> u64 {
        self.by_expiry.range((now + 1, 0)..).count() as u64
    }

    fn facts(&self, t0: u64) -> WaitingFacts {
        let serving_at = self.history.iter().rev().find(|e| e.1 <= t0).map_or(0, |e| e.0);
        let assigned_at = self.arrivals.iter().rev().find(|e| e.0 <= t0).map_or(0, |e| e.1);
        let expired_upto = serving_at.min(assigned_at);
        WaitingFacts {
            counters: self.counters,
            claimed_total: self.claimed_total,
            expired_upto,
            claimed_upto: self.claimed_upto(expired_upto),
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
    /// Admin keys and webhooks by kind, then name.
    records: HashMap<&'static str, BTreeMap<String, String>>,
    /// Audit entries `((ms, seq), json)`, oldest first.
    audit: std::collections::VecDeque<((u64, u64), String)>,
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::AdminKey => "adminkeys",
        RecordKind::Webhook => "webhooks",
        RecordKind::ConsoleSession => "consolesessions",
    }
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
        waits: ClaimWaits,
    ) -> BoxFuture<'_, StoreResult<Claim>> {
        self.with_queue(queue, move |q| {
            if q.is_claimed(position) {
                return match q.live(position, now) {
                    Some(s) => Claim::Existing(s),
                    None => Claim::Ended,
                };
            }
            let active = q.live_count(now);
            if max_active > 0 && active >= max_active {
                return Claim::Full { active };
            }
            let s = Session { iat: now, exp: now + validity };
            q.set_claimed(position);
            q.sessions.insert(position, s);
            q.by_expiry.insert((s.exp, position));
            let w = q.waits.get_or_insert_with(|| {
                Box::new(WaitCounts {
                    served: vec![0; WAIT_BUCKETS],
                    claimed: vec![0; WAIT_BUCKETS],
                })
            });
            w.served[usize::from(waits.served).min(WAIT_BUCKETS - 1)] += 1;
            w.claimed[usize::from(waits.claimed).min(WAIT_BUCKETS - 1)] += 1;
            Claim::Issued(s)
        })
    }

    fn end_session(
        &self,
        queue: u32,
        position: u64,
        jti: String,
        now: u64,
        outcome: Outcome,
    ) -> BoxFuture<'_, StoreResult<Ended>> {
        self.with_queue(queue, move |q| {
            if !q.is_claimed(position) {
                return Ended::NeverClaimed;
            }
            let Some(s) = q.live(position, now) else { return Ended::Already };
            q.sessions.remove(&position);
            q.by_expiry.remove(&(s.exp, position));
            // Revoked as long as a verifier could still accept the token.
            q.revoked.insert(jti, s.exp + shared::token::LEEWAY_SECS as u64);
            q.ended[outcome as usize] += 1;
            Ended::Now
        })
    }

    fn sweep_expired(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<Vec<u64>>> {
        self.with_queue(queue, move |q| {
            let mut dead = Vec::new();
            while let Some(&(exp, pos)) = q.by_expiry.first() {
                if exp > now || dead.len() >= 1000 {
                    break;
                }
                q.by_expiry.pop_first();
                q.sessions.remove(&pos);
                dead.push(pos);
            }
            q.ended[2] += dead.len() as u64;
            dead
        })
    }

    fn stats(&self, queue: u32, now: u64, t0: u64) -> BoxFuture<'_, StoreResult<QueueStats>> {
        self.with_queue(queue, move |q| QueueStats {
            facts: q.facts(t0),
            active: q.live_count(now),
            completed: q.ended[0],
            abandoned: q.ended[1],
            expired: q.ended[2],
        })
    }

    fn wait_counts(&self, queue: u32) -> BoxFuture<'_, StoreResult<WaitCounts>> {
        self.with_queue(queue, |q| match &q.waits {
            Some(w) => (**w).clone(),
            None => WaitCounts { served: vec![0; WAIT_BUCKETS], claimed: vec![0; WAIT_BUCKETS] },
        })
    }

    fn record_minute(
        &self,
        queue: u32,
        sample: MinuteSample,
        keep: u64,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        self.with_queue(queue, move |q| {
            if q.minutes.contains_key(&sample.minute) {
                return false;
            }
            q.minutes.insert(sample.minute, sample);
            q.minutes.retain(|m, _| *m + keep >= sample.minute);
            true
        })
    }

    fn minutes(&self, queue: u32, from: u64) -> BoxFuture<'_, StoreResult<Vec<MinuteSample>>> {
        self.with_queue(queue, move |q| q.minutes.range(from..).map(|(_, s)| *s).collect())
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
            q.live(position, now)?;
            let s = q.sessions.get_mut(&position)?;
            let exp = (s.exp + by).min(s.iat + cap).max(s.exp);
            q.by_expiry.remove(&(s.exp, position));
            s.exp = exp;
            q.by_expiry.insert((exp, position));
            Some(*s)
        })
    }

    fn active_sessions(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<u64>> {
        self.with_queue(queue, move |q| q.live_count(now))
    }

    fn waiting_facts(&self, queue: u32, t0: u64) -> BoxFuture<'_, StoreResult<WaitingFacts>> {
        self.with_queue(queue, move |q| q.facts(t0))
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

    fn records(&self, kind: RecordKind) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        self.with(move |inner| {
            inner
                .records
                .get(kind_name(kind))
                .map(|m| m.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    fn add_record(
        &self,
        kind: RecordKind,
        name: String,
        json: String,
    ) -> BoxFuture<'_, StoreResult<bool>> {
        self.with(move |inner| {
            let m = inner.records.entry(kind_name(kind)).or_default();
            if m.contains_key(&name) {
                return false;
            }
            m.insert(name, json);
            true
        })
    }

    fn remove_record(&self, kind: RecordKind, name: String) -> BoxFuture<'_, StoreResult<bool>> {
        self.with(move |inner| {
            inner.records.get_mut(kind_name(kind)).is_some_and(|m| m.remove(&name).is_some())
        })
    }

    fn append_audit(
        &self,
        json: String,
        now_ms: u64,
        keep: u64,
    ) -> BoxFuture<'_, StoreResult<String>> {
        self.with(move |inner| {
            // Ids as Redis streams make them: the time, or the last id's time with the next
            // sequence number when the clock has not moved past it.
            let id = match inner.audit.back() {
                Some(&((ms, seq), _)) if ms >= now_ms => (ms, seq + 1),
                _ => (now_ms, 0),
            };
            inner.audit.push_back((id, json));
            while inner.audit.len() as u64 > keep {
                inner.audit.pop_front();
            }
            format!("{}-{}", id.0, id.1)
        })
    }

    fn audit_page(
        &self,
        from: AuditFrom,
        count: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>> {
        self.with(move |inner| {
            let start = (from.ms, from.seq);
            inner
                .audit
                .iter()
                .filter(|(id, _)| if from.exclusive { *id > start } else { *id >= start })
                .take(count)
                .map(|((ms, seq), json)| (format!("{ms}-{seq}"), json.clone()))
                .collect()
        })
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
