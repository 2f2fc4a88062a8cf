//! The results schema: what a run measured, written as JSON (docs/bench-results.json) by
//! `bench run` and read back by the report. Plain data with a few accessors; it names no other
//! module of the harness.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The storm's target name for the coordinator with metrics off.
pub const METRICS_OFF: &str = "coordinator, metrics off";

/// Slack of the edge's staleness target before freshness pulls (results without `bound_ms`),
/// milliseconds.
pub const SLACK_MS: u64 = 300;

pub use loadgen::Outcome;

/// Sizes of a run; the smoke run shrinks every one of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knobs {
    /// Measured seconds per closed-loop run.
    pub secs: f64,
    /// Unrecorded warm-up seconds before each run.
    pub warmup: f64,
    /// Repetitions of each comparison (targets interleaved); the median is reported.
    pub rounds: usize,
    /// Concurrent connections of the storm and status scenarios.
    pub concurrency: Vec<usize>,
    /// Enqueues of the memory scenario.
    pub enqueues: u64,
    /// Sessions (tokens claimed) of the memory scenario.
    pub sessions: u64,
    /// Length of the surge, seconds.
    pub surge_secs: f64,
    /// Coordinator binary.
    pub coordinator: PathBuf,
    /// Whether this is the CI smoke run.
    #[serde(default)]
    pub smoke: bool,
    /// Whether the harness, not the coordinator, admits during the surge.
    #[serde(default)]
    pub surge_by_harness: bool,
    /// Whether the storm also loads a coordinator with metrics off (`ANTEROOM_METRICS=false`)
    /// on the same Redis, interleaved with the one with metrics on: the cost of metrics.
    #[serde(default)]
    pub metrics_cost: bool,
}

/// One measured target at one concurrency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// What was measured.
    pub target: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// The median run (by requests per second).
    pub outcome: Outcome,
    /// Requests per second of every round, for the spread.
    pub rounds_rps: Vec<f64>,
    /// CPU time of the server process per answered request, over all rounds, microseconds.
    /// Less sensitive than rates to other work on the machine.
    #[serde(default)]
    pub server_cpu_us: f64,
    /// CPU time of redis-server per answered request, microseconds.
    #[serde(default)]
    pub redis_cpu_us: f64,
    /// CPU time of the load generator per answered request, microseconds.
    #[serde(default)]
    pub client_cpu_us: f64,
}

/// `redis-benchmark` on the same Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisBench {
    /// Clients (`-c`).
    pub clients: usize,
    /// Requests (`-n`).
    pub requests: u64,
    /// The exact command line.
    pub command: String,
    /// Calls per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// A comparison of targets at several concurrencies.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Compare {
    /// Every (target, concurrency) median.
    pub rows: Vec<Row>,
    /// `redis-benchmark` rows, when the scenario has them.
    pub redis_bench: Vec<RedisBench>,
    /// The same targets loaded by `wrk` (a lighter client), when installed.
    #[serde(default)]
    pub wrk: Vec<WrkRow>,
}

impl Compare {
    /// The row of `target` at `c`.
    pub fn get(&self, target: &str, c: usize) -> Option<&Row> {
        self.rows.iter().find(|r| r.target == target && r.concurrency == c)
    }
}

/// One `wrk` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrkRow {
    /// What was measured.
    pub target: String,
    /// Connections (`-c`).
    pub clients: usize,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Non-2xx answers plus socket errors.
    pub failures: u64,
}

/// The memory scenario's numbers.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Memory {
    /// Visitors enqueued.
    pub enqueues: u64,
    /// Tokens claimed.
    pub sessions: u64,
    /// `used_memory` with the queue created and nothing enqueued.
    pub before: u64,
    /// After the enqueues.
    pub after_enqueue: u64,
    /// After the serving increment and the token claims.
    pub after_sessions: u64,
    /// `MEMORY USAGE` of each queue key at the end.
    pub keys: Vec<(String, u64)>,
    /// The enqueue run (1,024 connections, count-bounded).
    pub enqueue: Outcome,
    /// The token claim run (64 connections, count-bounded).
    pub claim: Outcome,
    /// Bare axum at the claim run's concurrency, measured right after.
    pub claim_baseline: Outcome,
    /// Positions seen twice, or never, among `1..=enqueues`.
    pub position_faults: u64,
    /// CPU per enqueue of the coordinator and of redis-server, microseconds.
    #[serde(default)]
    pub enqueue_cpu_us: (f64, f64),
    /// CPU per token claim of the coordinator and of redis-server, microseconds.
    #[serde(default)]
    pub claim_cpu_us: (f64, f64),
}

/// Everything a run measured, written as JSON and rendered by `report`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Results {
    /// Machine and date.
    pub machine: Option<Machine>,
    /// Sizes used.
    pub knobs: Option<Knobs>,
    /// Enqueue storm.
    pub storm: Option<Compare>,
    /// Status at the coordinator.
    pub status: Option<Compare>,
    /// Memory and token issue.
    pub memory: Option<Memory>,
    /// Surge.
    pub surge: Option<Surge>,
    /// The edge worker in workerd: status, protected pass-through, sync staleness.
    #[serde(default)]
    pub edge: Option<Edge>,
}

/// Where a run happened.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// UTC date and time of the run.
    pub date: String,
    /// `redis-server --version`.
    pub redis: String,
    /// Git commit of the tree measured.
    pub commit: String,
    /// 1-minute load average when the run started (other work on the machine).
    pub load_avg: String,
}

/// What the surge measured and checked.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Surge {
    /// Bare axum requests per second this run scales by.
    pub bare_rps: f64,
    /// Scale factor s = bare ÷ 500,000.
    pub scale: f64,
    /// Offered requests per second (arrivals plus polls).
    pub offered_rps: f64,
    /// Admissions per second.
    pub capacity: f64,
    /// Seconds of load.
    pub secs: f64,
    /// `assign_queue_pos` (half the offered load).
    pub arrivals: Outcome,
    /// `serving_pos` polls (the other half).
    pub polls: Outcome,
    /// Tokens issued.
    pub admitted: u64,
    /// Token claims that failed (non-2xx for an admitted position).
    pub token_failures: u64,
    /// Probes for the position right after the serving one that were wrongly granted.
    pub early_grants: u64,
    /// Probes made.
    pub probes: u64,
    /// Positions answered twice.
    pub dup_positions: u64,
    /// Positions in `1..=max` never answered.
    pub missing_positions: u64,
    /// Poll pairs where a later poll saw a smaller serving position.
    pub serving_decreases: u64,
    /// The largest such drop, in positions.
    #[serde(default)]
    pub serving_drop: u64,
    /// Largest `active_token_num` seen.
    pub max_active: u64,
    /// The cap on open sessions: capacity × checkout, rounded up; the harness admits no one
    /// while this many sessions are open.
    pub cap: u64,
    /// Samples above the cap.
    pub active_over_cap: u64,
    /// Final serving position.
    pub serving: u64,
    /// Whether the coordinator's own admission controller admitted (fixed rate with a session
    /// cap) rather than the harness.
    #[serde(default)]
    pub by_coordinator: bool,
    /// Claims answered 202 because the session cap was full (claimed again later).
    #[serde(default)]
    pub deferred: u64,
    /// Windows of at least 1 s in which the serving position grew faster than capacity
    /// (allowing one controller tick of slack).
    #[serde(default)]
    pub rate_violations: u64,
}

impl Surge {
    /// Whether both streams were answered at (nearly) the offered rate.
    pub fn sustained(&self) -> bool {
        let half = self.offered_rps / 2.0;
        self.arrivals.rps >= 0.95 * half && self.polls.rps >= 0.95 * half
    }

    /// Whether every invariant held and nothing failed.
    pub fn clean(&self) -> bool {
        self.arrivals.failures() == 0
            && self.polls.failures() == 0
            && self.token_failures == 0
            && self.early_grants == 0
            && self.dup_positions == 0
            && self.missing_positions == 0
            && self.serving_decreases == 0
            && self.active_over_cap == 0
            && self.rate_violations == 0
    }
}

/// What the edge scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Edge {
    /// UTC date of this scenario's run (it may be merged into an older run's results).
    pub date: String,
    /// Git commit measured.
    pub commit: String,
    /// 1-minute load average when it started.
    pub load_avg: String,
    /// Keep-alive connections of the closed-loop runs.
    pub concurrency: usize,
    /// Status polls: trivial worker, `serving_pos`, `queue_pos`. Server CPU is workerd's.
    pub status: Compare,
    /// Protected pass-through: bypass path, cached token, fresh tokens. Server CPU is
    /// workerd's; the origin (bare axum) is not counted.
    pub pass: Compare,
    /// Status polls sent to the worker (warm-up included).
    pub polls: u64,
    /// Requests the worker sent to the coordinator during those polls.
    pub coordinator_requests: u64,
    /// Requests the worker sent to the coordinator during the whole scenario after setup
    /// (status, pass-through and staleness).
    pub coordinator_requests_total: u64,
    /// CPU of the node process (Miniflare, not on the request path) per request over the
    /// closed-loop runs, microseconds: shows that node does not serve the requests.
    pub node_cpu_us: f64,
    /// Milliseconds from a serving-position change at the coordinator (just before the
    /// private API call) to the worker first answering the new position, one per change.
    pub staleness_ms: Vec<f64>,
    /// The coordinator's publish interval, milliseconds.
    pub publish_ms: u64,
    /// The worker's isolate cache TTL, milliseconds.
    pub cache_ms: u64,
    /// The staleness bound the worker keeps with pulls (`shared::pull::STALENESS_BOUND_MS`);
    /// 0 in results from before pulls.
    #[serde(default)]
    pub bound_ms: u64,
    /// Freshness pulls the worker made during the status polls, and over how many seconds.
    #[serde(default)]
    pub pulls: u64,
    #[serde(default)]
    pub pull_secs: f64,
}

impl Edge {
    /// Percentile `q` (0..=1) of the staleness samples, nearest rank.
    pub fn staleness(&self, q: f64) -> f64 {
        let mut s = self.staleness_ms.clone();
        if s.is_empty() {
            return 0.0;
        }
        s.sort_by(f64::total_cmp);
        let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
        s[rank - 1]
    }

    /// The staleness target: p99 at most the pull bound (before pulls: publish interval +
    /// isolate cache TTL + 0.3 s).
    pub fn staleness_target_ms(&self) -> f64 {
        if self.bound_ms > 0 {
            self.bound_ms as f64
        } else {
            (self.publish_ms + self.cache_ms + SLACK_MS) as f64
        }
    }
}
