//! Group commit for `assign_queue_pos`: one task per queue stores whatever arrived while the
//! previous batch was being stored, in one atomic script, then answers every caller.
//!
//! There is no timer: on an idle queue the first caller is stored at once; under load the
//! batch grows by itself to the arrival rate times one store round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::recovery::{Faults, Floors};
use crate::store::{Counters, ReplayKey, Store, StoreError};

/// Why a caller got no place.
#[derive(Debug, thiserror::Error)]
pub enum NotPlaced {
    /// The store failed; nobody in the batch got a place.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller's proof-of-work nonce was used before.
    #[error("proof-of-work challenge was already used")]
    Replayed,
}

/// A stored place: its position and entry time (unix seconds).
pub type Placed = Result<(u64, u64), NotPlaced>;

/// One waiting caller.
struct Pending {
    reply: oneshot::Sender<Placed>,
    /// History kept by the store for this queue (position expiry window plus margin).
    keep_secs: u64,
    /// The caller's proof-of-work nonce, if the queue asks for one.
    replay: Option<ReplayKey>,
}

/// The per-queue batchers, created on first use.
#[allow(missing_debug_implementations, reason = "holds channels and a trait object")]
pub struct Batchers {
    /// What every batcher task needs, shared.
    ctx: Arc<Ctx>,
    max_batch: usize,
    queues: Mutex<HashMap<u32, mpsc::UnboundedSender<Pending>>>,
}

/// What a batcher task needs.
struct Ctx {
    store: Arc<dyn Store>,
    clock: Clock,
    /// The counters this process has seen: the store must not hand out below them.
    floors: Arc<Floors>,
    faults: Arc<Faults>,
}

impl Batchers {
    /// No batchers yet; they start with the first enqueue of each queue.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        max_batch: usize,
        floors: Arc<Floors>,
        faults: Arc<Faults>,
    ) -> Self {
        let ctx = Arc::new(Ctx { store, clock, floors, faults });
        Batchers { ctx, max_batch, queues: Mutex::new(HashMap::new()) }
    }

    /// Assigns the next position of `queue`, answered once it is stored.
    pub async fn assign(&self, queue: u32, keep_secs: u64, replay: Option<ReplayKey>) -> Placed {
        let (reply, rx) = oneshot::channel();
        let tx = {
            let mut map = match self.queues.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.entry(queue)
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run(queue, rx, self.ctx.clone(), self.max_batch));
                    tx
                })
                .clone()
        };
        let stopped = || NotPlaced::Store(StoreError::Unavailable("batcher stopped".into()));
        if tx.send(Pending { reply, keep_secs, replay }).is_err() {
            return Err(stopped());
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops the batcher of a deleted queue (pending callers are still answered).
    pub fn forget(&self, queue: u32) {
        let mut map = match self.queues.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.remove(&queue);
    }
}

async fn run(
    queue: u32,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    ctx: Arc<Ctx>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(64);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let now = ctx.clock.now();
        let keep = batch.iter().map(|p| p.keep_secs).max().unwrap_or(0);
        let keys: Vec<Option<ReplayKey>> = batch.iter().map(|p| p.replay).collect();
        let floor = ctx.floors.floor(queue);
        match ctx.store.assign(queue, keys, now, keep, floor).await {
            Ok(done) => {
                if let Some((found, to)) = done.raised {
                    tracing::error!(
                        queue,
                        found,
                        floor = floor.assigned,
                        raised_to = to,
                        "the store lost enqueues (its counter went back): raised it past every \
                         position this process has seen"
                    );
                    Faults::count(&ctx.faults.counters_raised);
                }
                ctx.floors.saw(queue, Counters { assigned: done.last, serving: 0 });
                let accepted = (batch.len() - done.replayed.len()) as u64;
                let mut next = done.last + 1 - accepted;
                for (i, p) in batch.drain(..).enumerate() {
                    if done.replayed.contains(&i) {
                        let _ = p.reply.send(Err(NotPlaced::Replayed));
                    } else {
                        let _ = p.reply.send(Ok((next, now)));
                        next += 1;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(queue, size = batch.len(), cause = %e, "enqueue batch failed");
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(StoreError::Unavailable(e.to_string()).into()));
                }
            }
        }
    }
}
