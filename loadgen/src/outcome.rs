//! What a run measured: the one result type of the load generator, saved as JSON by the bench
//! (`docs/bench-results.json`) and printed by the rehearsal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a run measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Outcome {
    /// Connections used.
    pub connections: usize,
    /// 2xx responses in the window.
    pub ok: u64,
    /// Answers during the warm-up (not in the rates; CPU per request counts them).
    #[serde(default)]
    pub warm_ok: u64,
    /// Other statuses in the window, by code.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors (connect, reset, timeout).
    pub errors: u64,
    /// Length of the measured window, seconds.
    pub secs: f64,
    /// 2xx responses per second.
    pub rps: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Largest latency, milliseconds.
    pub max_ms: f64,
}

impl Outcome {
    /// Responses that were not 2xx, plus transport errors.
    pub fn failures(&self) -> u64 {
        self.errors + self.statuses.values().sum::<u64>()
    }
}
