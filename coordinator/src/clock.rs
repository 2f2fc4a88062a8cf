//! Wall-clock time for the coordinator: the system clock, or one tests set or drive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time; settable in tests so expiry and admission run without waiting.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock.
    System,
    /// A settable clock, unix milliseconds.
    Manual(Arc<AtomicU64>),
    /// Follows tokio's clock from a unix-ms base (with `tokio::time::pause` it jumps with
    /// `advance`, so the admission controller's ticks and time agree in tests).
    Tokio {
        /// Unix milliseconds at `start`.
        base_ms: u64,
        /// The tokio instant that corresponds to `base_ms`.
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// Now, unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => {
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
            }
            Clock::Manual(t) => t.load(Ordering::SeqCst),
            Clock::Tokio { base_ms, start } => base_ms + start.elapsed().as_millis() as u64,
        }
    }

    /// Now, unix seconds.
    pub fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
}
