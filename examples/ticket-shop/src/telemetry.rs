//! Health telemetry: what the shop measures of its own requests, and the loop that reports
//! it to the coordinator (which the `health` admission strategy steers by).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Latency samples kept per window; later ones overwrite the oldest.
const MAX_SAMPLES: usize = 16_384;

/// One report: p95 latency of the window, its error share, requests in flight now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// 95th percentile of the window's latencies, milliseconds (0 with no requests).
    pub latency_ms: f64,
    /// Share of the window's requests answered with a 5xx, 0..=1.
    pub error_rate: f64,
    /// Requests being handled right now.
    pub in_flight: u64,
}

#[derive(Debug, Default)]
struct Window {
    latencies_ms: Vec<f64>,
    total: u64,
    errors: u64,
}

/// Request measurements since the last report.
#[derive(Debug, Default)]
pub struct Meter {
    window: Mutex<Window>,
    in_flight: AtomicU64,
}

/// Counts a request in flight until dropped (also when the request is cancelled).
#[derive(Debug)]
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Meter {
    /// Marks a request as started.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Records a finished request.
    pub fn record(&self, latency: Duration, server_error: bool) {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = latency.as_secs_f64() * 1000.0;
        if w.latencies_ms.len() < MAX_SAMPLES {
            w.latencies_ms.push(ms);
        } else {
            let i = (w.total % MAX_SAMPLES as u64) as usize;
            w.latencies_ms[i] = ms;
        }
        w.total += 1;
        w.errors += u64::from(server_error);
    }

    /// The reading of the window so far, starting a new window.
    pub fn take(&self) -> Reading {
        let mut w =
            std::mem::take(&mut *self.window.lock().unwrap_or_else(PoisonError::into_inner));
        let error_rate = if w.total == 0 { 0.0 } else { w.errors as f64 / w.total as f64 };
        Reading {
            latency_ms: p95(&mut w.latencies_ms),
            error_rate,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// Nearest-rank 95th percentile; 0 for no samples.
pub fn p95(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let rank = (samples.len() * 95).div_ceil(100).max(1) - 1;
    let (_, v, _) = samples.select_nth_unstable_by(rank, f64::total_cmp);
    *v
}

/// Where and how readings are sent.
#[derive(Debug, Clone)]
pub struct Reporter {
    /// Shared HTTP client (timeouts set).
    pub client: reqwest::Client,
    /// `{coordinator_admin}/api/queue/{queue_id}/health`.
    pub url: String,
    /// The origin key.
    pub key: String,
    /// Time between reports.
    pub interval: Duration,
}

impl Reporter {
    /// Reports one reading per interval until `stop` fires.
    pub async fn run(
        self,
        meter: std::sync::Arc<Meter>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let r = meter.take();
            let body = serde_json::json!({
                "latency_ms": r.latency_ms,
                "error_rate": r.error_rate,
                "in_flight": r.in_flight,
            });
            let sent = self.client.post(&self.url).bearer_auth(&self.key).json(&body).send().await;
            match sent.map(|resp| resp.status()) {
                Ok(s) if s.is_success() => {
                    tracing::debug!(
                        latency_ms = r.latency_ms,
                        error_rate = r.error_rate,
                        "health reported"
                    );
                }
                Ok(s) => tracing::warn!(status = %s, "health report refused"),
                Err(e) => tracing::warn!(cause = %e, "health report failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(samples: &[f64], expected: f64) {
        let mut s = samples.to_vec();
        assert_eq!(p95(&mut s), expected, "{samples:?}");
    }

    #[test]
    fn p95_nearest_rank() {
        check(&[], 0.0);
        check(&[7.0], 7.0);
        check(&[3.0, 1.0], 3.0);
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        check(&hundred, 95.0);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        check(&twenty, 19.0);
    }

    #[test]
    fn window_counts_errors_and_resets() {
        let m = Meter::default();
        {
            let _a = m.start();
            let _b = m.start();
            assert_eq!(m.take().in_flight, 2);
        }
        for i in 0..10 {
            m.record(Duration::from_millis(10 * (i + 1)), i < 2);
        }
        let r = m.take();
        assert_eq!(r, Reading { latency_ms: 100.0, error_rate: 0.2, in_flight: 0 });
        assert_eq!(m.take(), Reading { latency_ms: 0.0, error_rate: 0.0, in_flight: 0 });
    }

    #[test]
    fn window_is_bounded() {
        let m = Meter::default();
        for _ in 0..(MAX_SAMPLES + 10) {
            m.record(Duration::from_millis(1), false);
        }
        assert_eq!(m.window.lock().map(|w| w.latencies_ms.len()).unwrap_or(0), MAX_SAMPLES);
        assert_eq!(m.take().error_rate, 0.0);
    }
}
