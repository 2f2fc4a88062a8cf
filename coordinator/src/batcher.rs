//! Group commit for `assign_queue_pos`: one task per queue stores whatever arrived while the
//! previous batch was being stored, in one atomic script, then answers every caller.
//!
//! There is no timer: on an idle queue the first caller is stored at once; under load the
//! batch grows by itself to the arrival rate times one store round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::state::Clock;
use crate::store::{Store, StoreError};

/// A stored place: its position and entry time (unix seconds).
pub type Placed = Result<(u64, u64), StoreError>;

/// One waiting caller.
struct Pending {
    reply: oneshot::Sender<Placed>,
    /// History kept by the store for this queue (position expiry window plus margin).
    keep_secs: u64,
}

/// The per-queue batchers, created on first use.
#[allow(
    missing_debug_implementations,
    reason = "holds channels and a trait object"
)]
pub struct Batchers {
    store: Arc<dyn Store>,
    clock: Clock,
    max_batch: usize,
    queues: Mutex<HashMap<u32, mpsc::UnboundedSender<Pending>>>,
}

impl Batchers {
    /// No batchers yet; they start with the first enqueue of each queue.
    pub fn new(store: Arc<dyn Store>, clock: Clock, max_batch: usize) -> Self {
        Batchers {
            store,
            clock,
            max_batch,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Assigns the next position of `queue`, answered once it is stored.
    pub async fn assign(&self, queue: u32, keep_secs: u64) -> Placed {
        let (reply, rx) = oneshot::channel();
        let tx = {
            let mut map = match self.queues.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.entry(queue)
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(run(
                        queue,
                        rx,
                        self.store.clone(),
                        self.clock.clone(),
                        self.max_batch,
                    ));
                    tx
                })
                .clone()
        };
        if tx.send(Pending { reply, keep_secs }).is_err() {
            return Err(StoreError::Unavailable("batcher stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("batcher stopped".into())))
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
    store: Arc<dyn Store>,
    clock: Clock,
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
        let n = batch.len() as u64;
        let now = clock.now();
        let keep = batch.iter().map(|p| p.keep_secs).max().unwrap_or(0);
        match store.assign(queue, n, now, keep).await {
            Ok(last) => {
                let first_pos = last + 1 - n;
                for (i, p) in batch.drain(..).enumerate() {
                    let _ = p.reply.send(Ok((first_pos + i as u64, now)));
                }
            }
            Err(e) => {
                tracing::warn!(queue, size = n, cause = %e, "enqueue batch failed");
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
    }
}
