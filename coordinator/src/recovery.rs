//! What a coordinator process remembers so that a store which forgets (a Redis restart
//! without the last second of its AOF, a failover, a `FLUSHALL`) cannot make it hand out a
//! position twice, move the serving position back, or silently re-key: the highest counters
//! it has seen per queue, and counts of the faults it found (for the operator's health view).
//!
//! Floors: every process tracks, per queue, the highest position handed out and the highest
//! serving position it has seen (its own writes and every read). A counter found below its
//! floor lost writes; it is raised to the floor plus a gap before anything else is handed out
//! (inside the enqueue script, and once a second by the upkeep loop). The gap covers positions
//! other processes handed out in the loss window that this one never saw: four times the
//! highest one-second growth of the counter seen in the last [`SAMPLES`] seconds, at least
//! [`MIN_GAP`]. With AOF `everysec` Redis loses at most about two seconds of writes, so the
//! gap is twice what could be lost at the highest rate seen. Positions in the gap are holes:
//! nobody holds them, they count as waiting until the serving position passes them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{Counters, Floor};

/// Smallest gap left above a floor when a lost counter is raised.
pub const MIN_GAP: u64 = 1000;
/// One-second samples of the counter kept per queue for the gap.
pub const SAMPLES: usize = 10;

/// What this process has seen of one queue.
#[derive(Debug, Default)]
struct Mark {
    assigned: u64,
    serving: u64,
    /// `(unix second, assigned)`, oldest first, at most [`SAMPLES`].
    samples: VecDeque<(u64, u64)>,
}

/// Per-queue floors of this process.
#[derive(Debug, Default)]
pub struct Floors {
    marks: Mutex<HashMap<u32, Mark>>,
}

impl Floors {
    fn with<T>(&self, queue: u32, f: impl FnOnce(&mut Mark) -> T) -> T {
        let mut g = match self.marks.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(g.entry(queue).or_default())
    }

    /// Records counters seen (read or written); returns the serving position never to
    /// answer below.
    pub fn saw(&self, queue: u32, c: Counters) -> u64 {
        self.with(queue, |m| {
            m.assigned = m.assigned.max(c.assigned);
            m.serving = m.serving.max(c.serving);
            m.serving
        })
    }

    /// Records a once-a-second sample of the assigned counter (for the gap).
    pub fn sample(&self, queue: u32, now_secs: u64, assigned: u64) {
        self.with(queue, |m| {
            if m.samples.back().is_some_and(|&(t, _)| t >= now_secs) {
                return;
            }
            m.samples.push_back((now_secs, assigned));
            while m.samples.len() > SAMPLES {
                m.samples.pop_front();
            }
        });
    }

    /// The floor of a queue: what the store must not be below.
    pub fn floor(&self, queue: u32) -> Floor {
        self.with(queue, |m| {
            let fastest = m
                .samples
                .iter()
                .zip(m.samples.iter().skip(1))
                .map(|(&(t0, a0), &(t1, a1))| a1.saturating_sub(a0) / (t1 - t0).max(1))
                .max()
                .unwrap_or(0);
            Floor {
                assigned: m.assigned,
                serving: m.serving,
                gap: MIN_GAP.max(fastest.saturating_mul(4)),
            }
        })
    }

    /// Forgets a deleted queue.
    pub fn forget(&self, queue: u32) {
        let mut g = match self.marks.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.remove(&queue);
    }
}

/// Faults this process found, counted since it started.
#[derive(Debug, Default)]
pub struct Faults {
    /// Queues that vanished from the registry without an operator deleting them.
    pub queues_lost: AtomicU64,
    /// Times the key ring was missing from the store and was written back from memory.
    pub keys_restored: AtomicU64,
    /// Times a queue counter was found below what this process had seen, and raised.
    pub counters_raised: AtomicU64,
}

impl Faults {
    /// Counts one fault.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, for the health view.
    pub fn snapshot(&self) -> shared::wire::FaultCounts {
        shared::wire::FaultCounts {
            queues_lost: self.queues_lost.load(Ordering::Relaxed),
            keys_restored: self.keys_restored.load(Ordering::Relaxed),
            counters_raised: self.counters_raised.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_is_four_times_the_fastest_second_seen_and_at_least_the_minimum() {
        let f = Floors::default();
        assert_eq!(f.floor(1), Floor { assigned: 0, serving: 0, gap: MIN_GAP });
        f.saw(1, Counters { assigned: 10, serving: 3 });
        f.saw(1, Counters { assigned: 7, serving: 1 });
        assert_eq!((f.floor(1).assigned, f.floor(1).serving), (10, 3), "floors only rise");
        for (t, a) in [(100, 0), (101, 500), (102, 3_500), (104, 4_000)] {
            f.sample(1, t, a);
        }
        assert_eq!(f.floor(1).gap, 12_000, "3,000 in one second, times four");
        for t in 105..120 {
            f.sample(1, t, 4_000);
        }
        assert_eq!(f.floor(1).gap, MIN_GAP, "only the last {SAMPLES} seconds count");
    }
}
