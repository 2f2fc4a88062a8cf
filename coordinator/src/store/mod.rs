//! Storage: one trait, two implementations (Redis, and in-memory for a single node).
//!
//! The trait speaks in queue facts (counters, places, sessions), not in Redis commands, so
//! every multi-step change is one atomic operation in either implementation. Decisions that
//! need no atomicity (has a place expired? is it the visitor's turn?) are made by the caller
//! from the facts returned, with the pure helpers of `shared::place` and `shared::sync`.
//!
//! Position expiry needs two time series per queue: per second, the last position handed out
//! (arrivals); per serving change, the new serving position and its time (serving history).
//! Both are monotone, so "when did serving reach p" and "what were serving and assigned at t"
//! are range queries. Entries older than `keep_secs` are compacted into the newest of them, so
//! a query for an older time sees a floor value: a place that old has expired under any expiry
//! setting up to `keep_secs`. This state grows with time (one entry per second at most), not
//! with the number of visitors.
//!
//! The conformance suite in `tests/conformance.rs` runs the same assertions against both.

pub mod memory;
pub mod redis;

use futures::future::BoxFuture;
use shared::wire::QueueConfig;

/// A storage failure. Only `Unavailable` is expected in operation (Redis down or failing
/// over); it becomes a 503 with `Retry-After`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backing store cannot be reached or did not answer in time.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store answered something this code does not understand (a bug or a foreign key).
    #[error("storage returned unexpected data: {0}")]
    Corrupt(String),
}

/// Result of a storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A random queue id in `1..2^31` (JSON-safe everywhere, never 0).
pub fn random_queue_id() -> u32 {
    rand::random_range(1..(1u32 << 31))
}

/// Outcome of creating a queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Stored with a fresh id.
    Ok(Box<QueueConfig>),
    /// Another queue already has this slug.
    SlugTaken,
}

/// A proof-of-work nonce to remember until its challenge expires (the replay set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    /// First 8 bytes of the challenge nonce. A fresh nonce is wrongly refused only if it
    /// collides with one of the n nonces remembered: probability n / 2^64.
    pub fingerprint: [u8; 8],
    /// The challenge's expiry, unix seconds; it is remembered until the end of that minute.
    pub expires_at: u64,
}

impl ReplayKey {
    /// The minute bucket the nonce is kept in.
    pub fn bucket(&self) -> u64 {
        self.expires_at / 60
    }
}

/// Outcome of a group-commit batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assigned {
    /// The last position handed out (the batch's accepted callers hold the positions just
    /// before it, in order).
    pub last: u64,
    /// Indexes (in the batch) of callers refused as replays.
    pub replayed: Vec<usize>,
    /// The counter was found below the caller's floor (the store lost writes) and raised
    /// before this batch: `(found, raised to)`.
    pub raised: Option<(u64, u64)>,
}

/// The lowest values a queue's counters may have, as one coordinator process saw them: a
/// counter below its floor lost writes (a Redis restart without the last second of its AOF,
/// a failover), so positions it would hand out again may sit in live tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Floor {
    /// Highest position this process has seen handed out.
    pub assigned: u64,
    /// Highest serving position this process has seen.
    pub serving: u64,
    /// How far beyond `assigned` a lost counter is raised: room for positions other
    /// processes handed out in the loss window that this one never saw.
    pub gap: u64,
}

/// A repair of a queue's counters found below a floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// Counters as found.
    pub found: Counters,
    /// Counters after the repair.
    pub now: Counters,
}

/// A queue deleted by an operator: the explicit act the edge needs before it forgets a queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tombstone {
    /// The deleted queue's id.
    pub id: u32,
    /// Its slug.
    pub queue_id: String,
    /// When it was deleted, unix seconds.
    pub deleted_at: u64,
}

/// Pause intervals kept per queue (merged intervals: a paused minute is one).
pub const PAUSES_KEPT: usize = 64;

/// How long a tombstone is kept, seconds: the publisher announces it in every batch meanwhile,
/// so an edge that missed one batch still hears of it.
pub const TOMBSTONE_SECS: u64 = 86_400;

/// Outcome of a pre-queue arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreQueued {
    /// The arrival index handed out (1, 2, ...).
    Arrival(u64),
    /// The proof-of-work nonce was used before; nothing handed out.
    Replayed,
    /// The draw has happened; nothing handed out, the nonce not consumed.
    Drawn,
}

/// A queue's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Highest position handed out (positions are 1..=assigned).
    pub assigned: u64,
    /// Serving position: places up to here may claim a token.
    pub serving: u64,
}

/// What the store knows about one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaceFacts {
    /// The queue's counters at the time of the read.
    pub counters: Counters,
    /// When the serving position first reached this place (unix seconds), if it has.
    pub passed_at: Option<u64>,
    /// Whether a token was ever issued for this place.
    pub claimed: bool,
}

/// An admitted visitor's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Issued at, unix seconds.
    pub iat: u64,
    /// Expires at, unix seconds.
    pub exp: u64,
}

/// Outcome of claiming a token for a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A new session was opened.
    Issued(Session),
    /// The place already holds this live session; the same one is returned.
    Existing(Session),
    /// The place's session was completed, abandoned or has expired.
    Ended,
    /// `max_active` sessions are live; try again later.
    Full {
        /// Live sessions counted.
        active: u64,
    },
}

/// Outcome of ending a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The live session was ended now.
    Now,
    /// It had already ended (idempotent repeat, or expired).
    Already,
    /// No token was ever issued for this place.
    NeverClaimed,
}

/// Facts needed to count the waiting visitors at time `t0 = now - position_expiry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitingFacts {
    /// Current counters.
    pub counters: Counters,
    /// Places claimed so far (tokens ever issued).
    pub claimed_total: u64,
    /// `min(serving at t0, assigned at t0)`: every unclaimed place up to here has expired.
    pub expired_upto: u64,
    /// Claimed places among `1..=expired_upto`.
    pub claimed_upto: u64,
}

impl WaitingFacts {
    /// Visitors waiting: assigned, not holding a token, not expired.
    pub fn waiting(&self) -> u64 {
        shared::place::waiting(
            self.counters.assigned,
            self.claimed_total,
            self.expired_upto,
            self.claimed_upto,
        )
    }
}

/// How a session ended when the origin or an operator ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// COMPLETED (status 1).
    Completed,
    /// ABANDONED (status 2).
    Abandoned,
}

impl Outcome {
    /// The name used in metrics, events and the report.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Abandoned => "abandoned",
        }
    }
}

/// A queue's facts for metrics and the report, read in one atomic step. The totals live in
/// the store, so they survive a coordinator restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Counters and the facts behind the waiting count.
    pub facts: WaitingFacts,
    /// Live sessions.
    pub active: u64,
    /// Sessions ended as COMPLETED.
    pub completed: u64,
    /// Sessions ended as ABANDONED.
    pub abandoned: u64,
    /// Sessions that reached their expiry (counted when swept).
    pub expired: u64,
}

impl QueueStats {
    /// Places the serving position has passed that hold a visitor.
    pub fn admitted(&self) -> u64 {
        self.facts.counters.serving.min(self.facts.counters.assigned)
    }

    /// Served places that expired without a token ever being claimed.
    pub fn unclaimed_expired(&self) -> u64 {
        self.facts.expired_upto.saturating_sub(self.facts.claimed_upto)
    }
}

/// Buckets of the two wait histograms a claim adds to (`report::wait_bucket`): from joining
/// to being served, and from joining to claiming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClaimWaits {
    /// Bucket of the wait until the serving position passed the place.
    pub served: u8,
    /// Bucket of the wait until the claim.
    pub claimed: u8,
}

/// Buckets per wait histogram; a bucket index is below this.
pub const WAIT_BUCKETS: usize = 128;

/// Counts per bucket of the two wait histograms of a queue (claimed sessions only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WaitCounts {
    /// Joining to being served, [`WAIT_BUCKETS`] counts.
    pub served: Vec<u64>,
    /// Joining to claiming, [`WAIT_BUCKETS`] counts.
    pub claimed: Vec<u64>,
}

/// A queue's state at the start of one minute: the report's raw data, one per queue-minute
/// (about 120 bytes in Redis, measured in `tests/observe.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MinuteSample {
    /// Unix minute (unix seconds / 60) the sample opens.
    pub minute: u64,
    /// Positions handed out.
    pub assigned: u64,
    /// Serving position.
    pub serving: u64,
    /// Tokens ever issued.
    pub claimed: u64,
    /// Sessions completed.
    pub completed: u64,
    /// Sessions abandoned.
    pub abandoned: u64,
    /// Sessions expired.
    pub expired: u64,
    /// Served places expired without a claim.
    pub unclaimed_expired: u64,
    /// Visitors waiting.
    pub waiting: u64,
    /// Live sessions.
    pub active: u64,
    /// The admission-rate estimate then (what the ETA bands were computed from).
    pub estimate: shared::eta::RateEstimate,
}

impl MinuteSample {
    /// The compact text form kept in Redis: numbers separated by commas.
    pub fn encode(&self) -> String {
        let e = &self.estimate;
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.minute,
            self.assigned,
            self.serving,
            self.claimed,
            self.completed,
            self.abandoned,
            self.expired,
            self.unclaimed_expired,
            self.waiting,
            self.active,
            e.rate,
            e.var,
            e.observed_ms
        )
    }

    /// Reads [`MinuteSample::encode`]'s form.
    pub fn decode(text: &str) -> Option<MinuteSample> {
        let f: Vec<&str> = text.split(',').collect();
        let [m, a, s, c, co, ab, ex, ux, w, act, rate, var, obs] = f[..] else { return None };
        let n = |v: &str| v.parse::<u64>().ok();
        Some(MinuteSample {
            minute: n(m)?,
            assigned: n(a)?,
            serving: n(s)?,
            claimed: n(c)?,
            completed: n(co)?,
            abandoned: n(ab)?,
            expired: n(ex)?,
            unclaimed_expired: n(ux)?,
            waiting: n(w)?,
            active: n(act)?,
            estimate: shared::eta::RateEstimate {
                rate: rate.parse().ok()?,
                var: var.parse().ok()?,
                observed_ms: n(obs)?,
            },
        })
    }

    /// The sample of `stats` at `minute`, with the estimate of that moment.
    pub fn of(minute: u64, s: &QueueStats, estimate: shared::eta::RateEstimate) -> Self {
        MinuteSample {
            minute,
            assigned: s.facts.counters.assigned,
            serving: s.facts.counters.serving,
            claimed: s.facts.claimed_total,
            completed: s.completed,
            abandoned: s.abandoned,
            expired: s.expired,
            unclaimed_expired: s.unclaimed_expired(),
            waiting: s.facts.waiting(),
            active: s.active,
            estimate,
        }
    }
}

/// Named records kept in the registry, shared by every process: admin keys (their digests,
/// never the keys), webhook endpoints and console sessions (their digests, never the ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Named admin keys: name → JSON with the key's SHA-256.
    AdminKey,
    /// Webhook endpoints: id → JSON with the URL and signing secret.
    Webhook,
    /// Console sessions: SHA-256 of the session id → JSON with the key's name and digest
    /// and the expiry.
    ConsoleSession,
}

/// Where an audit page starts: a stream id `ms-seq`, exclusive (a cursor from the last
/// page), or inclusive (a time, `ms-0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditFrom {
    /// Milliseconds part of the id.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
    /// Whether the entry with exactly this id is left out.
    pub exclusive: bool,
}

/// Persisted secrets, shared by every coordinator process on one store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredSecrets {
    /// Ed25519 seeds, hex; the first signs, the rest stay in the JWKS until `retire_after`.
    pub signing: Vec<StoredSigningKey>,
    /// Ticket MAC keys in `parse_keys` form; the first signs.
    pub ticket_keys: String,
}

/// One signing key in the persisted key ring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredSigningKey {
    /// 32-byte Ed25519 seed, hex.
    pub seed_hex: String,
    /// Unix seconds after which this key is dropped from the JWKS (0 = current key).
    pub retire_after: u64,
    /// Unix seconds from which this key signs (it is in the JWKS before, so every process
    /// and every edge knows it by then); 0 = at once.
    #[serde(default)]
    pub active_from: u64,
}

/// Told of every Redis round trip: what the metrics count (`metrics` implements it; the
/// store names no layer above it).
pub trait Observer: Send + Sync {
    /// One command (`EVALSHA` for a script) answered, or failed, after `took`.
    fn redis_command(&self, command: &'static str, took: std::time::Duration, ok: bool);
}

/// The storage operations of Anteroom. Every method is one atomic step.
pub trait Store: Send + Sync + 'static {
    /// `"redis"`, `"redis-cluster"` or `"memory"`, for logs and `/readyz`.
    fn kind(&self) -> &'static str;
    /// Reports every round trip to `observer` from now on (the first observer set stays);
    /// a store without round trips ignores it.
    fn set_observer(&self, observer: std::sync::Arc<dyn Observer>) {
        let _ = observer;
    }
    /// Checks the store answers.
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>>;

    /// Creates a queue with a fresh id, unless the slug is taken. Ids are drawn at random
    /// from `1..2^31` and checked against every id the store remembers, so an id is not
    /// reused even after the store lost everything (a collision with a forgotten id has
    /// probability at most one in two billion per forgotten queue).
    fn create_queue(&self, cfg: QueueConfig) -> BoxFuture<'_, StoreResult<Created>>;
    /// Replaces a queue's settings; `false` if the id does not exist.
    fn update_queue(&self, cfg: QueueConfig) -> BoxFuture<'_, StoreResult<bool>>;
    /// Every queue.
    fn list_queues(&self) -> BoxFuture<'_, StoreResult<Vec<QueueConfig>>>;
    /// Deletes a queue and all its state and leaves a [`Tombstone`]; `false` if it did not
    /// exist. `known` is the queue's config when the caller still knows a queue the store
    /// lost: a tombstone is then left for it all the same.
    fn delete_queue(
        &self,
        id: u32,
        known: Option<QueueConfig>,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Tombstones of queues deleted at or after `since` (unix seconds).
    fn tombstones(&self, since: u64) -> BoxFuture<'_, StoreResult<Vec<Tombstone>>>;

    /// Hands out consecutive positions at `now` to the batch's callers, in order, except
    /// those whose proof-of-work nonce was already used (refused, no position). History
    /// older than `keep_secs` is compacted (see the module docs). A counter below
    /// `floor.assigned` is first raised to `floor.assigned + floor.gap`.
    fn assign(
        &self,
        queue: u32,
        batch: Vec<Option<ReplayKey>>,
        now: u64,
        keep_secs: u64,
        floor: Floor,
    ) -> BoxFuture<'_, StoreResult<Assigned>>;
    /// Raises counters found below `floor` (assigned to `floor.assigned + floor.gap`, serving
    /// to `floor.serving`); `None` when nothing was below.
    fn raise_counters(
        &self,
        queue: u32,
        floor: Floor,
    ) -> BoxFuture<'_, StoreResult<Option<Raised>>>;
    /// The newest `limit` serving history entries `(serving, unix second)`, oldest first.
    fn serving_history(
        &self,
        queue: u32,
        limit: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<(u64, u64)>>>;
    /// The next state version of a queue: strictly increasing across processes, and at
    /// least `now_ms`, so versions keep rising even after the store lost its counter.
    fn next_version(&self, queue: u32, now_ms: u64) -> BoxFuture<'_, StoreResult<u64>>;
    /// Takes or renews the lease `name` of a queue for `owner` for `ttl_ms`; `false` when
    /// another owner holds it.
    fn lease(
        &self,
        queue: u32,
        name: &'static str,
        owner: String,
        ttl_ms: u64,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Current counters.
    fn counters(&self, queue: u32) -> BoxFuture<'_, StoreResult<Counters>>;
    /// Advances the serving position by `by` at `now`; returns the new one.
    fn increment_serving(
        &self,
        queue: u32,
        by: u64,
        now: u64,
        keep_secs: u64,
    ) -> BoxFuture<'_, StoreResult<u64>>;
    /// Facts about one place.
    fn place(&self, queue: u32, position: u64) -> BoxFuture<'_, StoreResult<PlaceFacts>>;
    /// Opens (or returns the existing) session for a place the caller has checked is due and
    /// not expired. `max_active = 0` means no cap.
    /// A new session adds `waits` to the queue's wait histograms.
    fn claim(
        &self,
        queue: u32,
        position: u64,
        now: u64,
        validity: u64,
        max_active: u64,
        waits: ClaimWaits,
    ) -> BoxFuture<'_, StoreResult<Claim>>;
    /// Ends a place's live session as `outcome` (counted) and records its `jti` as revoked
    /// until its token is refused anyway: its expiry plus the verifiers' leeway
    /// (`shared::token::LEEWAY_SECS`). A session past its expiry is left to
    /// [`Store::sweep_expired`] (`Already`).
    fn end_session(
        &self,
        queue: u32,
        position: u64,
        jti: String,
        now: u64,
        outcome: Outcome,
    ) -> BoxFuture<'_, StoreResult<Ended>>;
    /// Removes up to 1,000 sessions past their expiry at `now`, counts them as expired and
    /// returns their positions: each expired session is returned to exactly one caller.
    fn sweep_expired(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<Vec<u64>>>;
    /// The queue's facts and totals at `now` (`t0` as for [`Store::waiting_facts`]).
    fn stats(&self, queue: u32, now: u64, t0: u64) -> BoxFuture<'_, StoreResult<QueueStats>>;
    /// The queue's wait histograms.
    fn wait_counts(&self, queue: u32) -> BoxFuture<'_, StoreResult<WaitCounts>>;
    /// Stores the sample of a minute unless one is stored for it (`false` then), and drops
    /// samples older than `keep` minutes before it.
    fn record_minute(
        &self,
        queue: u32,
        sample: MinuteSample,
        keep: u64,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// The stored minute samples from minute `from` on, oldest first.
    fn minutes(&self, queue: u32, from: u64) -> BoxFuture<'_, StoreResult<Vec<MinuteSample>>>;
    /// Moves a live session's expiry to `min(exp + by, iat + cap)` (never earlier); `None`
    /// when the place holds no live session.
    fn extend_session(
        &self,
        queue: u32,
        position: u64,
        by: u64,
        cap: u64,
        now: u64,
    ) -> BoxFuture<'_, StoreResult<Option<Session>>>;
    /// Live sessions at `now`.
    fn active_sessions(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<u64>>;
    /// Facts for the waiting count; `t0` is `now - position_expiry` (or 0 when expiry is off).
    fn waiting_facts(&self, queue: u32, t0: u64) -> BoxFuture<'_, StoreResult<WaitingFacts>>;
    /// Every revoked, not yet expired session id (`jti`) at `now`, in no particular order.
    /// They stay refused at the edge until their tokens expire, however many there are.
    fn revoked(&self, queue: u32, now: u64) -> BoxFuture<'_, StoreResult<Vec<String>>>;

    /// Hands out the next pre-queue arrival index, unless the caller's proof-of-work nonce
    /// was used before (the same replay set as [`Store::assign`], so one solution buys one
    /// place whichever path it takes), or the draw has happened (the caller then enqueues in
    /// FIFO order instead, its nonce still unused).
    fn assign_prequeue(
        &self,
        queue: u32,
        replay: Option<ReplayKey>,
    ) -> BoxFuture<'_, StoreResult<PreQueued>>;
    /// Freezes the pre-queue (once; later calls return the same): `(base, count)` where
    /// `base` is the number of places handed out before and `count` the pre-queue arrivals,
    /// which take places `base + 1 ..= base + count`. FIFO positions continue after them.
    fn draw(&self, queue: u32) -> BoxFuture<'_, StoreResult<(u64, u64)>>;
    /// The draw, if it happened.
    fn drawn(&self, queue: u32) -> BoxFuture<'_, StoreResult<Option<(u64, u64)>>>;
    /// Sets a per-queue value unless it is set; returns the value that is set.
    fn init_meta(
        &self,
        queue: u32,
        name: &'static str,
        value: String,
    ) -> BoxFuture<'_, StoreResult<String>>;
    /// A small per-queue value (controller state, last health reading), if set.
    fn get_meta(
        &self,
        queue: u32,
        name: &'static str,
    ) -> BoxFuture<'_, StoreResult<Option<String>>>;
    /// Sets a small per-queue value.
    fn put_meta(
        &self,
        queue: u32,
        name: &'static str,
        value: String,
    ) -> BoxFuture<'_, StoreResult<()>>;
    /// Applies one controller tick exactly once: if no tick `tick` or later was applied,
    /// advances the serving position by `by`, stores `ctl` (the controller's state) and
    /// returns the new serving position; otherwise changes nothing and returns `None`. This
    /// fences a second process that computed the same tick.
    fn apply_tick(
        &self,
        queue: u32,
        tick: u64,
        by: u64,
        ctl: String,
        now: u64,
        keep_secs: u64,
    ) -> BoxFuture<'_, StoreResult<Option<u64>>>;

    /// Adds `[from, to)` to the queue's pauses (seconds its expiry clock stood still; see
    /// `shared::place`), merged with what it touches, the newest [`PAUSES_KEPT`] kept.
    fn add_pause(&self, queue: u32, from: u64, to: u64) -> BoxFuture<'_, StoreResult<()>>;
    /// The queue's pauses, oldest first.
    fn pauses(&self, queue: u32) -> BoxFuture<'_, StoreResult<Vec<(u64, u64)>>>;

    /// Every record of a kind, as stored (JSON).
    fn records(&self, kind: RecordKind) -> BoxFuture<'_, StoreResult<Vec<String>>>;
    /// Stores a record under `name` unless the name is taken (`false` then).
    fn add_record(
        &self,
        kind: RecordKind,
        name: String,
        json: String,
    ) -> BoxFuture<'_, StoreResult<bool>>;
    /// Removes a record; `false` if there was none.
    fn remove_record(&self, kind: RecordKind, name: String) -> BoxFuture<'_, StoreResult<bool>>;
    /// Appends an audit entry at `now_ms`, keeping about the newest `keep`; returns its id
    /// (`ms-seq`, increasing).
    fn append_audit(
        &self,
        json: String,
        now_ms: u64,
        keep: u64,
    ) -> BoxFuture<'_, StoreResult<String>>;
    /// Up to `count` audit entries from `from` on, oldest first: `(id, json)`.
    fn audit_page(
        &self,
        from: AuditFrom,
        count: usize,
    ) -> BoxFuture<'_, StoreResult<Vec<(String, String)>>>;

    /// Returns the stored secrets, storing `fresh` first if there are none (first start).
    fn secrets_or_init(&self, fresh: StoredSecrets) -> BoxFuture<'_, StoreResult<StoredSecrets>>;
    /// The stored secrets, if any.
    fn secrets(&self) -> BoxFuture<'_, StoreResult<Option<StoredSecrets>>>;
    /// Replaces the stored secrets (key rotation).
    fn put_secrets(&self, secrets: StoredSecrets) -> BoxFuture<'_, StoreResult<()>>;
}
