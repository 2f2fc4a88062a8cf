//! Synced state: what the coordinator published, where the edge gets it, and how a sync
//! batch is applied to it. [`Synced`] is owned by the isolate context.
//!
//! Sources, freshest first (`shared::pull` has the bounds):
//! 1. what this isolate holds, while fresh ([`FRESH_MS`] after it was pulled);
//! 2. the PoP's cache (`crate::pop`), where any isolate of this location put its last pull;
//! 3. a pull from the coordinator (`GET /edge/state/{queue_id}`, `GET /edge/index`), one at a
//!    time per queue per isolate (other requests answer from what is held meanwhile), at most
//!    one try per [`FRESH_MS`] while it fails;
//! 4. Workers KV, the durable copy the sync endpoint writes (eventually consistent: another
//!    location may read it a minute late), for when the coordinator cannot be reached or the
//!    deployment does not pull (`STATE_PULL = "off"`). Every answer says how old its state is
//!    (`x-anteroom-age-ms`).
//!
//! KV layout (namespace bound as `ANTEROOM_KV`):
//! - `state/<queue_id>`: the latest [`EdgeState`] JSON of a queue;
//! - `index`: an [`EdgeIndex`], the queues' configs, for path-to-queue mapping.
//!
//! A slug's state is replaced only by a newer one of the same queue (higher `version`) or by
//! a queue created later under the slug (higher `created_at`: a delete and re-create whose
//! removal notice was lost or is still on its way); it is removed only by a removal naming its
//! id. A queue missing from a batch or a pulled index is never taken as removed, so a
//! coordinator whose store lost everything cannot open the site.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ed25519_compact::PublicKey;
use shared::error::ErrorCode;
use shared::pull::{FRESH_MS, INDEX_PATH, STATE_PATH};
use shared::sync::{Applied, EdgeIndex, EdgeQueue, EdgeState, FORMAT, SyncAnswer, SyncBatch};
use shared::wire::QueueMode;
use worker::KvStore;

use crate::coordinator::{Coordinator, PullError};
use crate::http::{EdgeError, EdgeResult, now_ms};
use crate::pop::PopCache;

/// How long an isolate trusts what it read from KV when it does not pull, milliseconds.
pub const CACHE_MS: u64 = 1_000;
/// How often an isolate that pulls reads KV's index anyway, milliseconds: KV's copy only fills
/// in queues the coordinator does not list (after a loss of its data).
const KV_FILL_MS: u64 = 10_000;
/// KV key of the queue index.
const INDEX_KEY: &str = "index";
/// How long an isolate answers from what it holds, without looking anywhere, after a refresh
/// that brought nothing fresh (the coordinator unreachable or slow, the next pull not due),
/// milliseconds. Without it every request of that second looked in the PoP's cache and found
/// the same stale entry: under load, each poll then cost a Cache API lookup and waited for
/// it. Adds at most this to how late a recovered coordinator's state is seen.
const RECHECK_MS: u64 = 100;

/// A synced state with what the hot paths derive from it once.
#[derive(Debug)]
pub struct Loaded {
    pub state: EdgeState,
    /// Token keys by `kid`.
    pub keys: HashMap<String, PublicKey>,
}

impl Loaded {
    fn new(state: EdgeState) -> Self {
        let keys = state
            .jwks
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.kid.clone(), shared::token::public_key_from_jwk(jwk)?)))
            .collect();
        Loaded { state, keys }
    }

    /// `resp`, an answer computed from this state, with the state's age (ms, by the
    /// coordinator's stamp) in `x-anteroom-age-ms`.
    pub fn stamp(&self, mut resp: worker::Response) -> EdgeResult {
        resp.headers_mut().set(shared::pull::AGE_HEADER, &self.age_ms().to_string())?;
        Ok(resp)
    }

    /// How old this state is, ms, by the coordinator's stamp.
    pub fn age_ms(&self) -> u64 {
        now_ms().saturating_sub(self.state.published_at_ms)
    }

    /// Whether the session `jti` names has ended (or `jti` names no session of this queue).
    pub fn revoked(&self, jti: &str) -> bool {
        shared::positions::position_of_jti(jti, self.state.queue.id)
            .is_none_or(|p| self.state.revoked.contains(p))
    }
}

/// The queue index with each queue's patterns prepared for matching (once per read, not
/// per request).
#[derive(Debug)]
pub struct Index {
    /// Every synced queue's config and its compiled `paths`/`bypass`.
    pub matchers: Vec<(EdgeQueue, shared::path::Patterns)>,
}

impl Index {
    /// The index as it stands at `now` (unix ms): removed queues past their hold are gone.
    fn new(index: EdgeIndex, now: u64) -> Self {
        Index {
            matchers: index
                .queues
                .into_iter()
                .filter(|q| !released(q, now))
                .map(|q| {
                    let p = q.patterns();
                    (q, p)
                })
                .collect(),
        }
    }

    /// Whether a live queue (not one being removed) with this slug is in the index.
    pub fn knows(&self, queue_id: &str) -> bool {
        self.matchers.iter().any(|(q, _)| q.queue_id == queue_id && q.removed_at == 0)
    }
}

/// Whether a removed queue's hold is over at `now`.
fn released(q: &EdgeQueue, now: u64) -> bool {
    q.removed_at != 0 && q.removed_at + shared::sync::REMOVAL_HOLD_MS <= now
}

/// What an isolate holds of one synced value, and when to look again.
struct Slot<T> {
    value: Option<Rc<T>>,
    /// Until when `value` answers without looking anywhere (edge clock, unix ms).
    fresh_until: u64,
    /// No pull before this (after a failed one).
    retry_at: u64,
    /// A pull is under way in this isolate: other requests answer from `value` meanwhile.
    pulling: bool,
    /// When KV was last read for it.
    kv_read_at: u64,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { value: None, fresh_until: 0, retry_at: 0, pulling: false, kv_read_at: 0 }
    }
}

impl<T> Slot<T> {
    /// Whether to read KV now: nothing held yet, or not read for `every` ms.
    fn kv_due(&self, now: u64, every: u64) -> bool {
        self.kv_read_at == 0 || now.saturating_sub(self.kv_read_at) >= every
    }

    /// After a refresh that brought nothing fresh: what is held answers for [`RECHECK_MS`]
    /// (its age says how old it is). Nothing held: the next request looks again.
    fn hold_a_while(&mut self, now: u64) {
        if self.value.is_some() {
            self.fresh_until = self.fresh_until.max(now + RECHECK_MS);
        }
    }
}

/// The index's two sources and what the isolate built from them.
#[derive(Default)]
struct IndexSlot {
    /// The last index pulled from the coordinator.
    pulled: Option<EdgeIndex>,
    /// The last index read from KV.
    kv: Option<EdgeIndex>,
    slot: Slot<Index>,
}

/// The synced state of this isolate: pulled from the coordinator (through the PoP's cache)
/// and read from KV, and what was got lately.
pub struct Synced {
    /// The `ANTEROOM_KV` binding, if the deployment has it.
    kv: Option<KvStore>,
    /// Where pulls go; `None` when this edge does not pull (`STATE_PULL = "off"`, or no
    /// coordinator address).
    coordinator: Option<Coordinator>,
    /// The PoP's cache of pulled answers.
    pub pop: PopCache,
    states: RefCell<HashMap<String, Slot<Loaded>>>,
    index: RefCell<IndexSlot>,
}

impl std::fmt::Debug for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synced")
            .field("kv", &self.kv.is_some())
            .field("pull", &self.coordinator.is_some())
            .finish_non_exhaustive()
    }
}

fn state_key(queue_id: &str) -> String {
    format!("state/{queue_id}")
}

/// Whether `new` supersedes `old` for one slug: a later state of the same queue, or a queue
/// created later under the slug.
pub fn supersedes(new: &EdgeState, old: &EdgeState) -> bool {
    if new.queue.id == old.queue.id {
        new.version > old.version
    } else {
        new.queue.created_at > old.queue.created_at
    }
}

/// `new` as it replaces `old`, or `None` when `old` stays. With `monotone` (an edge that
/// pulls), the counters of one queue never go back: two coordinator processes answering pulls
/// may stamp snapshots read a moment apart out of order, and the serving position a visitor
/// saw must not fall. (Pushes come from one publisher at a time, in order.)
fn merged(new: EdgeState, old: Option<&EdgeState>, monotone: bool) -> Option<EdgeState> {
    match old {
        None => Some(new),
        Some(old) if supersedes(&new, old) => {
            let mut new = new;
            if monotone && new.queue.id == old.queue.id {
                new.serving_pos = new.serving_pos.max(old.serving_pos);
                new.assigned = new.assigned.max(old.assigned);
            }
            Some(new)
        }
        Some(_) => None,
    }
}

/// A state of a known format from JSON text, or `None` (logged).
fn parse_state(queue_id: &str, text: &[u8]) -> Option<EdgeState> {
    match serde_json::from_slice::<EdgeState>(text) {
        Ok(s) if s.format == FORMAT && s.queue.queue_id == queue_id => Some(s),
        Ok(s) => {
            worker::console_warn!("state of {queue_id}: format {} or slug differs", s.format);
            None
        }
        Err(e) => {
            worker::console_error!("state of {queue_id} does not parse: {e}");
            None
        }
    }
}

/// `entry` holding `known`'s paths closed: a pulled deletion names a queue by id only.
fn hold(entry: &mut EdgeQueue, known: &EdgeQueue) {
    if entry.removed_at != 0 && entry.paths.is_empty() && entry.id == known.id {
        let removed_at = entry.removed_at;
        *entry = EdgeQueue { mode: QueueMode::Closed, removed_at, ..known.clone() };
    }
}

/// The index the edge goes by: the pulled one (fresh) with what only KV knows filled in. A
/// queue is never dropped for being absent from the coordinator's answer (a coordinator whose
/// store lost everything must not open the site): only a deletion naming its id removes it.
pub fn merge_index(pulled: Option<&EdgeIndex>, kv: Option<&EdgeIndex>) -> EdgeIndex {
    let mut out = pulled.cloned().unwrap_or_default();
    for e in kv.map(|k| k.queues.as_slice()).unwrap_or_default() {
        match out.queues.iter_mut().find(|x| x.queue_id == e.queue_id) {
            None => out.queues.push(e.clone()),
            Some(x) if x.id == e.id => {
                hold(x, e);
                if e.removed_at != 0 && x.removed_at == 0 {
                    x.removed_at = e.removed_at;
                    x.mode = QueueMode::Closed;
                }
            }
            Some(x) if e.created_at > x.created_at => *x = e.clone(),
            Some(_) => {}
        }
    }
    out
}

/// A refused KV write (e.g. more than one write per second to a key): the publisher should
/// retry shortly, so 503 + `Retry-After` rather than a 500.
fn kv_write_failed(e: worker::KvError) -> EdgeError {
    worker::console_error!("kv write failed: {e}");
    EdgeError::new(ErrorCode::KvWriteFailed).retry_after(1)
}

impl Synced {
    /// Nothing read yet, over `kv`, pulling from `coordinator` when given.
    pub fn new(kv: Option<KvStore>, coordinator: Option<Coordinator>) -> Self {
        Synced {
            kv,
            coordinator,
            pop: PopCache::default(),
            states: RefCell::new(HashMap::new()),
            index: RefCell::new(IndexSlot::default()),
        }
    }

    fn kv(&self) -> EdgeResult<&KvStore> {
        self.kv.as_ref().ok_or_else(|| EdgeError::Internal("kv binding ANTEROOM_KV missing".into()))
    }

    async fn read_state(&self, queue_id: &str) -> EdgeResult<Option<EdgeState>> {
        let Some(text) = self.kv()?.get(&state_key(queue_id)).bytes().await? else {
            return Ok(None);
        };
        Ok(parse_state(queue_id, &text))
    }

    fn with_slot<T>(&self, queue_id: &str, f: impl FnOnce(&mut Slot<Loaded>) -> T) -> T {
        f(self.states.borrow_mut().entry(queue_id.to_owned()).or_default())
    }

    /// Holds `state` unless a newer one is held, fresh until `fresh_until` at least.
    fn adopt(&self, queue_id: &str, state: EdgeState, fresh_until: u64) {
        let monotone = self.coordinator.is_some();
        self.with_slot(queue_id, |slot| {
            if let Some(s) = merged(state, slot.value.as_ref().map(|l| &l.state), monotone) {
                slot.value = Some(Rc::new(Loaded::new(s)));
            }
            slot.fresh_until = slot.fresh_until.max(fresh_until);
        });
    }

    /// What KV answered for `queue_id` at `now`.
    fn adopt_kv(&self, queue_id: &str, state: Option<EdgeState>, now: u64) {
        let pulls = self.coordinator.is_some();
        self.with_slot(queue_id, |slot| {
            slot.kv_read_at = now;
            if !pulls {
                slot.fresh_until = now + CACHE_MS;
            }
            match state {
                // Without pulls, a queue that vanished from KV was removed on purpose (a
                // removal naming its id). With pulls KV may simply lag behind.
                None if !pulls => slot.value = None,
                None => {}
                Some(s) => {
                    if let Some(s) = merged(s, slot.value.as_ref().map(|l| &l.state), pulls) {
                        slot.value = Some(Rc::new(Loaded::new(s)));
                    }
                }
            }
        });
    }

    /// The coordinator lost the queue: what is held is its last state, marked so.
    fn mark_lost(&self, queue_id: &str) {
        self.with_slot(queue_id, |slot| {
            if let Some(l) = slot.value.as_ref().filter(|l| !l.state.lost) {
                slot.value =
                    Some(Rc::new(Loaded::new(EdgeState { lost: true, ..l.state.clone() })));
            }
        });
    }

    /// The synced state of `queue_id`: held while fresh; else from the PoP's cache or a pull
    /// from the coordinator; else (coordinator unreachable, or no pulls) from KV. Only queues
    /// in the index are looked up, so made-up slugs cost neither a read nor a cache entry.
    pub async fn state(&self, queue_id: &str) -> EdgeResult<Option<Rc<Loaded>>> {
        if !shared::valid_slug(queue_id) || !self.index().await?.is_some_and(|i| i.knows(queue_id))
        {
            return Ok(None);
        }
        let now = now_ms();
        let (value, fresh, pulling, retry_at) = self
            .with_slot(queue_id, |s| (s.value.clone(), now < s.fresh_until, s.pulling, s.retry_at));
        if fresh || (pulling && value.is_some()) {
            return Ok(value);
        }
        if self.refresh_state(queue_id, now, retry_at).await {
            return Ok(self.with_slot(queue_id, |s| s.value.clone()));
        }
        // No fresh pull: KV, as often as an edge that does not pull reads it.
        if self.with_slot(queue_id, |s| s.value.is_none() || s.kv_due(now, CACHE_MS)) {
            let kv = self.read_state(queue_id).await?;
            self.adopt_kv(queue_id, kv, now);
        }
        Ok(self.with_slot(queue_id, |s| {
            s.hold_a_while(now_ms());
            s.value.clone()
        }))
    }

    /// Brings `queue_id`'s state from the PoP's cache or a pull; `true` when what is held is
    /// fresh afterwards. Marked as under way from the start, so the other requests of this
    /// isolate answer from what is held meanwhile instead of pulling too.
    async fn refresh_state(&self, queue_id: &str, now: u64, retry_at: u64) -> bool {
        let Some(coordinator) = &self.coordinator else { return false };
        self.with_slot(queue_id, |s| s.pulling = true);
        let fresh = self.pull_state(coordinator, queue_id, now, retry_at).await;
        self.with_slot(queue_id, |s| s.pulling = false);
        fresh
    }

    async fn pull_state(&self, c: &Coordinator, queue_id: &str, now: u64, retry_at: u64) -> bool {
        let what = state_key(queue_id);
        if let Some((body, at)) = self.pop.get(&what).await {
            if let Some(s) = parse_state(queue_id, &body) {
                self.adopt(queue_id, s, at + FRESH_MS);
            }
            if now < at + FRESH_MS {
                return true;
            }
        }
        if now < retry_at {
            return false;
        }
        let got = c.pull(&format!("{STATE_PATH}{queue_id}")).await;
        let at = now_ms();
        self.with_slot(queue_id, |s| s.retry_at = at + FRESH_MS);
        match got {
            Ok(body) => match parse_state(queue_id, &body) {
                Some(s) => {
                    self.adopt(queue_id, s, at + FRESH_MS);
                    self.pop.put(&what, &body, at).await;
                    true
                }
                None => false,
            },
            Err(PullError::Lost) => {
                self.mark_lost(queue_id);
                false
            }
            Err(PullError::Failed(why)) => {
                worker::console_warn!("pull of {queue_id} failed: {why}");
                false
            }
        }
    }

    async fn read_index(&self) -> EdgeResult<Option<EdgeIndex>> {
        match self.kv()?.get(INDEX_KEY).text().await? {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| EdgeError::Internal(format!("index does not parse: {e}"))),
        }
    }

    /// Rebuilds the index the isolate goes by from its two sources.
    fn rebuild_index(slot: &mut IndexSlot, now: u64) {
        if slot.pulled.is_none() && slot.kv.is_none() {
            slot.slot.value = None;
            return;
        }
        let merged = merge_index(slot.pulled.as_ref(), slot.kv.as_ref());
        slot.slot.value = Some(Rc::new(Index::new(merged, now)));
    }

    /// Holds a pulled index unless an older one (a pulled deletion keeps the paths the
    /// previous index had for that id, so they are held closed).
    fn adopt_pulled_index(&self, mut index: EdgeIndex, fresh_until: u64, now: u64) {
        let mut slot = self.index.borrow_mut();
        if slot.pulled.as_ref().is_some_and(|old| old.version > index.version) {
            return;
        }
        if let Some(old) = &slot.pulled {
            for e in &mut index.queues {
                if let Some(known) = old.queues.iter().find(|o| o.id == e.id) {
                    hold(e, known);
                }
            }
        }
        slot.pulled = Some(index);
        slot.slot.fresh_until = slot.slot.fresh_until.max(fresh_until);
        Self::rebuild_index(&mut slot, now);
    }

    /// The queue index: held while fresh; else from the PoP's cache or a pull, with KV's
    /// copy read on first use and now and then to fill in queues the coordinator does not
    /// list; KV alone when the coordinator is unreachable or pulls are off. `None`: never
    /// synced.
    pub async fn index(&self) -> EdgeResult<Option<Rc<Index>>> {
        let now = now_ms();
        let (value, fresh, pulling, retry_at, kv_never) = {
            let i = self.index.borrow();
            let s = &i.slot;
            (s.value.clone(), now < s.fresh_until, s.pulling, s.retry_at, s.kv_read_at == 0)
        };
        if fresh || (pulling && value.is_some()) {
            return Ok(value);
        }
        let pulled = self.refresh_index(now, retry_at).await;
        let every = if pulled { KV_FILL_MS } else { CACHE_MS };
        if kv_never || self.index.borrow().slot.kv_due(now, every) {
            let kv = self.read_index().await?;
            let mut slot = self.index.borrow_mut();
            slot.kv = kv;
            slot.slot.kv_read_at = now;
            if self.coordinator.is_none() {
                slot.slot.fresh_until = now + CACHE_MS;
            }
            Self::rebuild_index(&mut slot, now);
        }
        let mut slot = self.index.borrow_mut();
        if !pulled {
            slot.slot.hold_a_while(now_ms());
        }
        Ok(slot.slot.value.clone())
    }

    /// Brings the index from the PoP's cache or a pull; `true` when it is fresh afterwards
    /// (under way from the start, as for states).
    async fn refresh_index(&self, now: u64, retry_at: u64) -> bool {
        let Some(coordinator) = &self.coordinator else { return false };
        self.index.borrow_mut().slot.pulling = true;
        let fresh = self.pull_index(coordinator, now, retry_at).await;
        self.index.borrow_mut().slot.pulling = false;
        fresh
    }

    async fn pull_index(&self, c: &Coordinator, now: u64, retry_at: u64) -> bool {
        const WHAT: &str = "index";
        let parse = |b: &[u8]| serde_json::from_slice::<EdgeIndex>(b).ok();
        if let Some((body, at)) = self.pop.get(WHAT).await {
            if let Some(i) = parse(&body) {
                self.adopt_pulled_index(i, at + FRESH_MS, now);
            }
            if now < at + FRESH_MS {
                return true;
            }
        }
        if now < retry_at {
            return false;
        }
        let got = c.pull(INDEX_PATH).await;
        let at = now_ms();
        self.index.borrow_mut().slot.retry_at = at + FRESH_MS;
        match got.map(|b| (parse(&b), b)) {
            Ok((Some(i), body)) => {
                self.adopt_pulled_index(i, at + FRESH_MS, at);
                self.pop.put(WHAT, &body, at).await;
                true
            }
            Ok((None, _)) => false,
            Err(e) => {
                worker::console_warn!("pull of the index failed: {e:?}");
                false
            }
        }
    }

    /// The state of a queue named by a public request: 400 `unknown_queue` for a slug the
    /// index does not know, 503 `not_synced` for one without a state yet, 503 `queue_lost`
    /// for a queue the coordinator lost.
    pub async fn queue_state(&self, queue_id: &str) -> EdgeResult<Rc<Loaded>> {
        let known =
            shared::valid_slug(queue_id) && self.index().await?.is_some_and(|i| i.knows(queue_id));
        if !known {
            return Err(EdgeError::new(ErrorCode::UnknownQueue));
        }
        match self.state(queue_id).await? {
            Some(s) if s.state.lost => Err(EdgeError::new(ErrorCode::QueueLost)),
            Some(s) => Ok(s),
            None => Err(EdgeError::new(ErrorCode::NotSynced)),
        }
    }

    /// `queue_state` when it needs no waiting, the common case of a status poll: the index and
    /// the queue's state are held and fresh, or being refreshed by another request of this
    /// isolate. `None`: ask `queue_state`, which may pull or read KV.
    pub fn queue_state_now(&self, queue_id: &str) -> Option<EdgeResult<Rc<Loaded>>> {
        let now = now_ms();
        let index = {
            let i = self.index.borrow();
            (now < i.slot.fresh_until || i.slot.pulling).then(|| i.slot.value.clone())??
        };
        if !shared::valid_slug(queue_id) || !index.knows(queue_id) {
            return Some(Err(EdgeError::new(ErrorCode::UnknownQueue)));
        }
        let states = self.states.borrow();
        let slot = states.get(queue_id)?;
        let s = (now < slot.fresh_until || slot.pulling).then(|| slot.value.clone())??;
        Some(if s.state.lost { Err(EdgeError::new(ErrorCode::QueueLost)) } else { Ok(s) })
    }

    /// Applies a sync batch whose MAC was checked: writes what supersedes KV's, holds removed
    /// queues closed, rewrites the index when a config changed.
    pub async fn apply(&self, batch: &SyncBatch) -> EdgeResult<SyncAnswer> {
        for s in &batch.states {
            if s.format != FORMAT || !shared::valid_slug(&s.queue.queue_id) {
                return Err(EdgeError::with(
                    ErrorCode::InvalidParameter,
                    "unknown format or bad queue_id",
                ));
            }
        }
        let kv = self.kv()?;
        let now = now_ms();
        let mut answer = SyncAnswer::default();
        let mut index = match kv.get(INDEX_KEY).text().await? {
            Some(t) => serde_json::from_str::<EdgeIndex>(&t).unwrap_or_default(),
            None => EdgeIndex::default(),
        };
        let before = serde_json::to_string(&index).unwrap_or_default();
        for s in &batch.states {
            let q = s.queue.queue_id.as_str();
            let stored = self.read_state(q).await.ok().flatten();
            // A late state of a queue being removed does not bring it back.
            let removed = index
                .queues
                .iter()
                .any(|e| e.queue_id == q && e.id == s.queue.id && e.removed_at != 0);
            if removed || stored.as_ref().is_some_and(|old| !supersedes(s, old)) {
                answer.ignored.push(Applied { queue_id: q.to_owned(), version: s.version });
                continue;
            }
            let text = serde_json::to_string(s).map_err(|e| EdgeError::Internal(e.to_string()))?;
            kv.put(&state_key(q), text)?.execute().await.map_err(kv_write_failed)?;
            self.adopt(q, s.clone(), now + FRESH_MS);
            match index.queues.iter_mut().find(|e| e.queue_id == q) {
                Some(e) => *e = s.queue.clone(),
                None => index.queues.push(s.queue.clone()),
            }
            answer.applied.push(Applied { queue_id: q.to_owned(), version: s.version });
        }
        for r in &batch.removed {
            let q = r.queue_id.as_str();
            // Only the queue the removal names: a queue re-created under the slug stays.
            let names_it = |e: &EdgeQueue| e.queue_id == q && e.id == r.id;
            let Some(entry) = index.queues.iter_mut().find(|e| names_it(e)) else { continue };
            if !shared::valid_slug(q) || entry.removed_at != 0 {
                continue; // a repeated notice: the hold runs from the first
            }
            // Held closed for REMOVAL_HOLD_MS, then released (see `Index::new`).
            entry.mode = QueueMode::Closed;
            entry.removed_at = now;
            if self.read_state(q).await.ok().flatten().is_some_and(|s| s.queue.id == r.id) {
                kv.delete(&state_key(q)).await?;
            }
            let mut states = self.states.borrow_mut();
            if states
                .get(q)
                .and_then(|s| s.value.as_ref())
                .is_some_and(|l| l.state.queue.id == r.id)
            {
                states.remove(q);
            }
            drop(states);
            answer.removed.push(r.clone());
        }
        index.queues.retain(|e| !released(e, now));
        let after =
            serde_json::to_string(&index).map_err(|e| EdgeError::Internal(e.to_string()))?;
        if after != before {
            kv.put(INDEX_KEY, after)?.execute().await.map_err(kv_write_failed)?;
        }
        let mut slot = self.index.borrow_mut();
        slot.kv = Some(index);
        slot.slot.kv_read_at = now;
        Self::rebuild_index(&mut slot, now);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn queue(id: u32, slug: &str, created_at: u64) -> EdgeQueue {
        let mut q = EdgeQueue::removed(id, slug.into(), 0);
        q.removed_at = 0;
        q.mode = QueueMode::Queue;
        q.paths = vec![format!("/{slug}")];
        q.created_at = created_at;
        q
    }

    fn index(queues: Vec<EdgeQueue>, version: u64) -> EdgeIndex {
        EdgeIndex { queues, version }
    }

    /// After a refresh that brought nothing fresh, what is held answers for `RECHECK_MS`
    /// (never shortened); with nothing held, the next request looks again.
    #[test]
    fn an_unsuccessful_refresh_holds_what_is_there_briefly() {
        let mut empty: Slot<u32> = Slot::default();
        empty.hold_a_while(5_000);
        assert_eq!(empty.fresh_until, 0);
        let mut held = Slot { value: Some(Rc::new(7)), ..Slot::default() };
        held.hold_a_while(5_000);
        assert_eq!(held.fresh_until, 5_000 + RECHECK_MS);
        held.fresh_until = 9_000;
        held.hold_a_while(5_000);
        assert_eq!(held.fresh_until, 9_000);
    }

    #[test]
    fn a_queue_only_kv_knows_is_kept_and_a_deletion_holds_the_paths_kv_knows() {
        let shop = queue(1, "shop", 10);
        let lost = queue(2, "lost", 10);
        // The coordinator lists shop only (it lost `lost`): KV's copy fills it in.
        let pulled = index(vec![shop.clone()], 5);
        let kv = index(vec![shop.clone(), lost.clone()], 0);
        let m = merge_index(Some(&pulled), Some(&kv));
        assert_eq!(m.queues, vec![shop.clone(), lost.clone()]);
        // A pulled deletion names the id only; KV's entry gives the paths to hold closed.
        let gone = EdgeQueue::removed(1, "shop".into(), 99);
        let m = merge_index(Some(&index(vec![gone], 6)), Some(&kv));
        let held = &m.queues[0];
        assert_eq!((held.id, held.mode, held.removed_at), (1, QueueMode::Closed, 99));
        assert_eq!(held.paths, shop.paths);
    }

    #[test]
    fn kv_never_undoes_what_the_pull_says_but_a_removal_or_a_newer_queue_wins() {
        let old = queue(1, "shop", 10);
        let closed = EdgeQueue { mode: QueueMode::Closed, ..old.clone() };
        // Pulled says closed, KV still says queue: closed stands.
        let m =
            merge_index(Some(&index(vec![closed.clone()], 5)), Some(&index(vec![old.clone()], 0)));
        assert_eq!(m.queues, vec![closed.clone()]);
        // KV saw a removal of the same id through a push: it holds.
        let removed_kv = EdgeQueue { removed_at: 7, ..old.clone() };
        let m = merge_index(Some(&index(vec![old.clone()], 5)), Some(&index(vec![removed_kv], 0)));
        assert_eq!((m.queues[0].removed_at, m.queues[0].mode), (7, QueueMode::Closed));
        // KV knows a queue re-created under the slug later than the pulled one: it wins.
        let newer = queue(3, "shop", 20);
        let m =
            merge_index(Some(&index(vec![old.clone()], 5)), Some(&index(vec![newer.clone()], 0)));
        assert_eq!(m.queues, vec![newer]);
        // Without a pull, KV alone.
        assert_eq!(merge_index(None, Some(&index(vec![old.clone()], 0))).queues, vec![old]);
    }

    fn state(id: u32, version: u64, serving: u64, created_at: u64) -> EdgeState {
        let mut s: EdgeState = serde_json::from_value(serde_json::json!({
            "format": FORMAT, "version": version, "published_at_ms": version, "issuer": "i",
            "queue": {"id": id, "queue_id": "shop", "created_at": created_at},
            "serving_pos": serving, "assigned": serving + 10, "waiting_num": 0, "active_num": 0,
            "jwks": {"keys": []}
        }))
        .unwrap();
        s.serving_pos = serving;
        s
    }

    #[test]
    fn a_pulled_state_never_moves_the_counters_back_and_an_older_one_is_ignored() {
        let held = state(1, 10, 50, 1);
        // A later snapshot read a moment earlier by another process: counters stay.
        let later = merged(state(1, 11, 40, 1), Some(&held), true).unwrap();
        assert_eq!((later.version, later.serving_pos, later.assigned), (11, 50, 60));
        // From the one publisher (no pulls), as it came.
        let pushed = merged(state(1, 11, 40, 1), Some(&held), false).unwrap();
        assert_eq!(pushed.serving_pos, 40);
        assert_eq!(merged(state(1, 9, 70, 1), Some(&held), true), None);
        // Another queue under the slug: by creation time, counters its own.
        let recreated = merged(state(2, 1, 0, 2), Some(&held), true).unwrap();
        assert_eq!((recreated.queue.id, recreated.serving_pos), (2, 0));
        assert_eq!(merged(state(3, 99, 0, 0), Some(&held), true), None);
    }
}
