//! The figures a plan prices its load with, read from the bench's last saved run
//! (`docs/bench-results.json`, built into the binary), so a new bench run updates every plan:
//! CPU per enqueue and per token claim at the coordinator and in Redis, Redis bytes per queued
//! visitor and per session, and how late the edge sees a change.

use serde::{Deserialize, Serialize};

/// The bench's saved results, as committed.
const RESULTS: &str = include_str!("../../../docs/bench-results.json");

/// What the planner takes from the bench.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// Coordinator CPU per enqueue (1,024 connections, group commit), microseconds.
    pub enqueue_cpu_us: f64,
    /// Redis CPU per enqueue, microseconds.
    pub enqueue_redis_us: f64,
    /// Coordinator CPU per token claim (a new session), microseconds.
    pub claim_cpu_us: f64,
    /// Redis CPU per token claim, microseconds.
    pub claim_redis_us: f64,
    /// Redis memory per queued visitor, bytes.
    pub bytes_per_place: f64,
    /// Redis memory per active session, bytes.
    pub bytes_per_session: f64,
    /// Redis memory of an empty deployment (key ring, scripts, the queue), bytes.
    pub bytes_base: f64,
    /// Mean time until the edge answers a new serving position, seconds.
    pub sync_lag_secs: f64,
    /// The publisher's longest interval between publishes of an unchanged queue, seconds.
    pub publish_secs: f64,
    /// When and where the figures were measured.
    pub measured: String,
}

#[derive(Deserialize)]
struct Results {
    machine: Machine,
    memory: Memory,
    edge: Edge,
}

#[derive(Deserialize)]
struct Machine {
    cores: u32,
    cpu: String,
    date: String,
}

#[derive(Deserialize)]
struct Memory {
    enqueues: f64,
    sessions: f64,
    before: f64,
    after_enqueue: f64,
    after_sessions: f64,
    enqueue_cpu_us: [f64; 2],
    claim_cpu_us: [f64; 2],
}

#[derive(Deserialize)]
struct Edge {
    staleness_ms: Vec<f64>,
    publish_ms: f64,
}

impl Measured {
    /// The figures of the committed bench run.
    pub fn committed() -> anyhow::Result<Measured> {
        let r: Results = serde_json::from_str(RESULTS)
            .map_err(|e| anyhow::anyhow!("docs/bench-results.json is unreadable: {e}"))?;
        let m = &r.memory;
        let lag = r.edge.staleness_ms.iter().sum::<f64>() / r.edge.staleness_ms.len().max(1) as f64;
        let when = format!(
            "{} cores ({}), bench run of {}",
            r.machine.cores, r.machine.cpu, r.machine.date
        );
        Ok(Measured {
            enqueue_cpu_us: m.enqueue_cpu_us[0],
            enqueue_redis_us: m.enqueue_cpu_us[1],
            claim_cpu_us: m.claim_cpu_us[0],
            claim_redis_us: m.claim_cpu_us[1],
            bytes_per_place: (m.after_enqueue - m.before) / m.enqueues.max(1.0),
            bytes_per_session: (m.after_sessions - m.after_enqueue) / m.sessions.max(1.0),
            bytes_base: m.before,
            sync_lag_secs: lag / 1000.0,
            publish_secs: r.edge.publish_ms / 1000.0,
            measured: when,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BENCHMARKS.md as committed: the plans must be priced with the figures it quotes.
    const BENCHMARKS: &str = include_str!("../../../BENCHMARKS.md");

    /// The table row of BENCHMARKS.md that starts with `start`, split into its cells.
    fn row(start: &str) -> Vec<String> {
        let line = BENCHMARKS.lines().find(|l| l.starts_with(start));
        let line = line.unwrap_or_else(|| panic!("no row starting {start:?} in BENCHMARKS.md"));
        line.split('|').map(|c| c.trim().to_string()).collect()
    }

    #[test]
    fn the_committed_figures_are_the_ones_benchmarks_md_quotes() {
        let m = Measured::committed().unwrap_or_else(|e| panic!("{e}"));
        let place = format!("**{:.3} B per queued visitor**", m.bytes_per_place);
        let session = format!("**{:.1} B per active session**", m.bytes_per_session);
        assert!(BENCHMARKS.contains(&place), "BENCHMARKS.md does not say {place}: {m:?}");
        assert!(BENCHMARKS.contains(&session), "BENCHMARKS.md does not say {session}: {m:?}");
        // The memory scenario's rows: coordinator, then Redis, CPU µs per call (cells 6 and 7).
        let enqueue = row("| 1000000 × `assign_queue_pos`");
        let claim = row("| 100000 × `generate_token`");
        assert_eq!(enqueue[6], format!("{:.1}", m.enqueue_cpu_us), "{enqueue:?} {m:?}");
        assert_eq!(enqueue[7], format!("{:.1}", m.enqueue_redis_us), "{enqueue:?} {m:?}");
        assert_eq!(claim[6], format!("{:.1}", m.claim_cpu_us), "{claim:?} {m:?}");
        assert_eq!(claim[7], format!("{:.1}", m.claim_redis_us), "{claim:?} {m:?}");
        assert!(m.sync_lag_secs > 0.0 && m.sync_lag_secs < 3.3);
    }
}
