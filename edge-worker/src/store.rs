//! Synced state: what the coordinator published, kept in Workers KV and read through a
//! per-isolate cache ([`Synced`], owned by the isolate context), and how a sync batch is
//! applied to it.
//!
//! KV layout (namespace bound as `ANTEROOM_KV`):
//! - `state/<queue_id>`: the latest [`EdgeState`] JSON of a queue;
//! - `index`: an [`EdgeIndex`], the queues' configs, for path-to-queue mapping.
//!
//! Each isolate caches what it read for [`CACHE_MS`] and never goes back to a state older
//! than one it has seen (KV replicas can briefly answer with an older value).
//!
//! A slug's state is replaced only by a newer one of the same queue (higher `version`) or by
//! a queue created later under the slug (higher `created_at`: a delete and re-create whose
//! removal notice was lost or is still on its way); it is removed only by a removal naming its
//! id. A queue missing from a batch is never taken as removed, so a coordinator whose store
//! lost everything cannot open the site.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ed25519_compact::PublicKey;
use shared::error::ErrorCode;
use shared::sync::{Applied, EdgeIndex, EdgeQueue, EdgeState, FORMAT, SyncAnswer, SyncBatch};
use worker::KvStore;

use crate::http::{EdgeError, EdgeResult, now_ms};

/// How long an isolate trusts what it read from KV, milliseconds.
pub const CACHE_MS: u64 = 1_000;
/// KV key of the queue index.
const INDEX_KEY: &str = "index";

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

struct Slot<T> {
    value: Option<Rc<T>>,
    fetched_ms: u64,
}

/// The synced state of this isolate: the KV namespace and what was read from it lately.
pub struct Synced {
    /// The `ANTEROOM_KV` binding, if the deployment has it.
    kv: Option<KvStore>,
    states: RefCell<HashMap<String, Slot<Loaded>>>,
    index: RefCell<Option<Slot<Index>>>,
}

impl std::fmt::Debug for Synced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Synced").field("kv", &self.kv.is_some()).finish_non_exhaustive()
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

/// A refused KV write (e.g. more than one write per second to a key): the publisher should
/// retry shortly, so 503 + `Retry-After` rather than a 500.
fn kv_write_failed(e: worker::KvError) -> EdgeError {
    worker::console_error!("kv write failed: {e}");
    EdgeError::new(ErrorCode::KvWriteFailed).retry_after(1)
}

impl Synced {
    /// Nothing read yet, over `kv`.
    pub fn new(kv: Option<KvStore>) -> Self {
        Synced { kv, states: RefCell::new(HashMap::new()), index: RefCell::new(None) }
    }

    fn kv(&self) -> EdgeResult<&KvStore> {
        self.kv.as_ref().ok_or_else(|| EdgeError::Internal("kv binding ANTEROOM_KV missing".into()))
    }

    async fn read_state(&self, queue_id: &str) -> EdgeResult<Option<EdgeState>> {
        let Some(text) = self.kv()?.get(&state_key(queue_id)).text().await? else {
            return Ok(None);
        };
        match serde_json::from_str::<EdgeState>(&text) {
            Ok(s) if s.format == FORMAT => Ok(Some(s)),
            Ok(s) => {
                worker::console_warn!("state/{queue_id} has unknown format {}", s.format);
                Ok(None)
            }
            Err(e) => Err(EdgeError::Internal(format!("state/{queue_id} does not parse: {e}"))),
        }
    }

    /// Remembers `state` unless a newer one is held; returns what is held.
    fn remember(&self, queue_id: &str, state: Option<EdgeState>, now: u64) -> Option<Rc<Loaded>> {
        let mut m = self.states.borrow_mut();
        let slot = m.entry(queue_id.to_owned()).or_insert(Slot { value: None, fetched_ms: 0 });
        slot.fetched_ms = now;
        match state {
            // A queue that vanished from KV was removed on purpose (a removal naming its id).
            None => slot.value = None,
            Some(s) if slot.value.as_ref().is_none_or(|old| supersedes(&s, &old.state)) => {
                slot.value = Some(Rc::new(Loaded::new(s)));
            }
            Some(_) => {}
        }
        slot.value.clone()
    }

    /// The synced state of `queue_id`, from the cache when fresh, else from KV. Only queues
    /// in the index are looked up, so made-up slugs cost neither a KV read nor a cache entry.
    pub async fn state(&self, queue_id: &str) -> EdgeResult<Option<Rc<Loaded>>> {
        if !shared::valid_slug(queue_id) || !self.index().await?.is_some_and(|i| i.knows(queue_id))
        {
            return Ok(None);
        }
        let now = now_ms();
        let cached = self
            .states
            .borrow()
            .get(queue_id)
            .filter(|s| now.saturating_sub(s.fetched_ms) < CACHE_MS)
            .map(|s| s.value.clone());
        if let Some(v) = cached {
            return Ok(v);
        }
        let fresh = self.read_state(queue_id).await?;
        Ok(self.remember(queue_id, fresh, now))
    }

    /// The queue index, from the cache when fresh, else from KV. `None`: never synced.
    pub async fn index(&self) -> EdgeResult<Option<Rc<Index>>> {
        let now = now_ms();
        let cached = self
            .index
            .borrow()
            .as_ref()
            .filter(|s| now.saturating_sub(s.fetched_ms) < CACHE_MS)
            .map(|s| s.value.clone());
        if let Some(v) = cached {
            return Ok(v);
        }
        let text = self.kv()?.get(INDEX_KEY).text().await?;
        let value = match text {
            None => None,
            Some(t) => Some(Rc::new(Index::new(
                serde_json::from_str::<EdgeIndex>(&t)
                    .map_err(|e| EdgeError::Internal(format!("index does not parse: {e}")))?,
                now,
            ))),
        };
        *self.index.borrow_mut() = Some(Slot { value: value.clone(), fetched_ms: now });
        Ok(value)
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
            self.remember(q, Some(s.clone()), now);
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
            entry.mode = shared::wire::QueueMode::Closed;
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
            answer.removed.push(r.clone());
        }
        index.queues.retain(|e| !released(e, now));
        let after =
            serde_json::to_string(&index).map_err(|e| EdgeError::Internal(e.to_string()))?;
        if after != before {
            kv.put(INDEX_KEY, after)?.execute().await.map_err(kv_write_failed)?;
        }
        *self.index.borrow_mut() =
            Some(Slot { value: Some(Rc::new(Index::new(index, now))), fetched_ms: now });
        Ok(answer)
    }
}
