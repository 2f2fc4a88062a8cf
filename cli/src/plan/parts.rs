//! The load a plan puts on each part, second by second from the simulation and priced with
//! the bench's measured figures: the edge (pages, challenges, enqueues, polls, claims), the
//! coordinator (enqueues and claims, the CPU they take, the processes that needs), Redis
//! (calls, CPU, memory), the state sync and KV, each region's share; and every limit's
//! utilization at its peak, to say which one binds first.

use serde::Serialize;

use super::measured::Measured;
use super::profile::{Profile, Stage};
use super::recommend::{Bound, Recommendation};
use super::sim::Timeline;
use super::traffic::Second;

/// Share of a core a coordinator process should stay under at the peak.
pub const PROCESS_BUSY: f64 = 0.7;
/// Coordinator processes never fewer than this: one can fail (the fault suite runs two).
pub const MIN_PROCESSES: u64 = 2;
/// Redis calls per second a queue makes whatever its traffic: the controller's lease, state,
/// counters and fenced write each tick, the publisher's and the status cache's reads.
pub const REDIS_CALLS_IDLE: f64 = 10.0;

/// Seconds over which the busiest load is averaged: the simulation follows each second's
/// arrivals as a few representative pages, whose polls and claims are lumpy second by second
/// but right over a few poll intervals.
pub const WINDOW: usize = 10;

/// The mean of the [`WINDOW`] seconds ending at each second (fewer at the start).
pub fn windowed(v: &[f64]) -> Vec<f64> {
    let mut sum = 0.0;
    (0..v.len())
        .map(|t| {
            sum += v[t];
            if t >= WINDOW {
                sum -= v[t - WINDOW];
            }
            sum / (t + 1).min(WINDOW) as f64
        })
        .collect()
}

/// The busiest [`WINDOW`] seconds' mean.
fn peak(v: &[f64]) -> f64 {
    windowed(v).into_iter().fold(0.0, f64::max)
}

/// Edge requests per second, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EdgeLoad {
    /// Waiting-room pages (one per new visitor, bots included).
    pub pages: f64,
    /// Proof-of-work challenges (one per new visitor while proof-of-work is on).
    pub challenges: f64,
    /// Enqueues passed on to the coordinator.
    pub enqueues: f64,
    /// Status polls, answered at the edge.
    pub polls: f64,
    /// Token claims passed on to the coordinator.
    pub claims: f64,
    /// All of them.
    pub total: f64,
}

/// The coordinator's share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CoordinatorLoad {
    /// Enqueues per second over the busiest ten seconds.
    pub enqueues_per_sec: f64,
    /// Token claims per second over the busiest ten seconds.
    pub claims_per_sec: f64,
    /// Cores busy over the busiest ten seconds.
    pub cores: f64,
    /// Processes to run: one core each at most [`PROCESS_BUSY`] busy, at least
    /// [`MIN_PROCESSES`].
    pub processes: u64,
}

/// Redis's share (one queue's keys share one hash slot, so one core serves them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RedisLoad {
    /// Calls per second over the busiest ten seconds (enqueues counted one each: group commit only
    /// lowers that).
    pub calls_per_sec: f64,
    /// Share of its one core busy over the busiest ten seconds.
    pub core_share: f64,
    /// Memory at its largest, bytes.
    pub memory_bytes: f64,
}

/// The state sync to the edge and Workers KV.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SyncLoad {
    /// Sync POSTs (each one KV write) over the simulated sale.
    pub writes_over_sale: f64,
    /// Writes per day at the sale's pace (one a second while the queue changes).
    pub writes_per_day_busy: f64,
    /// Writes per day of an unchanged queue (one per publish interval).
    pub writes_per_day_idle: f64,
    /// KV reads per day of one busy isolate (it rereads the state each second).
    pub reads_per_day_per_isolate: f64,
}

/// One region's share of the edge's busiest ten seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionLoad {
    /// The region.
    pub name: String,
    /// Its share of the visitors.
    pub share: f64,
    /// Edge requests per second.
    pub edge_rps: f64,
    /// Enqueues per second sent on to the coordinator.
    pub enqueues_per_sec: f64,
    /// What an enqueue or a claim from there adds in network round trip, milliseconds.
    pub rtt_ms: Option<f64>,
}

/// How close one limit comes to being reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Utilization {
    /// What the limit is.
    pub part: String,
    /// Its load at the peak as a share of the limit.
    pub peak: f64,
    /// What was compared with what.
    pub basis: String,
}

/// Every part's load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loads {
    /// Requests the profile states at its busiest second (without a waiting room).
    pub stated_rps: f64,
    /// The edge over its busiest ten seconds (their mean).
    pub edge: EdgeLoad,
    /// When those ten seconds start, seconds from the start.
    pub edge_peak_at_secs: u64,
    /// The coordinator.
    pub coordinator: CoordinatorLoad,
    /// Redis.
    pub redis: RedisLoad,
    /// State sync and KV.
    pub sync: SyncLoad,
    /// The regions.
    pub regions: Vec<RegionLoad>,
    /// Every limit, the closest first.
    pub limits: Vec<Utilization>,
}

/// Edge requests of second `t`.
pub fn edge_at(arrivals: &[Second], tl: &Timeline, pow_on: bool, t: usize) -> EdgeLoad {
    let s = arrivals.get(t).copied().unwrap_or_default();
    let pages = s.humans + s.bots;
    let mut e = EdgeLoad {
        pages,
        challenges: if pow_on { pages } else { 0.0 },
        enqueues: tl.arrivals.get(t).copied().unwrap_or(0.0),
        polls: tl.polls[t],
        claims: tl.claims[t],
        total: 0.0,
    };
    e.total = e.pages + e.challenges + e.enqueues + e.polls + e.claims;
    e
}

/// Every part's load over a simulated sale.
pub fn loads(
    p: &Profile,
    arrivals: &[Second],
    rec: &Recommendation,
    tl: &Timeline,
    m: &Measured,
) -> Loads {
    let pow_on = rec.pow.difficulty > 0;
    let per_sec: Vec<EdgeLoad> =
        (0..tl.line.len()).map(|t| edge_at(arrivals, tl, pow_on, t)).collect();
    let totals = windowed(&per_sec.iter().map(|e| e.total).collect::<Vec<_>>());
    let end = (0..totals.len()).max_by(|&a, &b| totals[a].total_cmp(&totals[b])).unwrap_or(0);
    let from = (end + 1).saturating_sub(WINDOW);
    let edge = mean_of(&per_sec[from..=end.min(per_sec.len().saturating_sub(1))]);
    let edge_t = from;
    let coordinator = coordinator(tl, m);
    let redis = redis(tl, m);
    let mut limits = stage_limits(p, rec, tl);
    limits.push(Utilization {
        part: "Redis (one core per queue)".into(),
        peak: redis.core_share,
        basis: format!(
            "{:.1} µs per enqueue and {:.1} µs per claim",
            m.enqueue_redis_us, m.claim_redis_us
        ),
    });
    limits.push(Utilization {
        part: format!("coordinator ({} processes of one core)", coordinator.processes),
        peak: coordinator.cores / coordinator.processes as f64,
        basis: format!(
            "{:.1} µs per enqueue and {:.1} µs per claim",
            m.enqueue_cpu_us, m.claim_cpu_us
        ),
    });
    limits.sort_by(|a, b| b.peak.total_cmp(&a.peak));
    Loads {
        stated_rps: arrivals.iter().map(|s| s.requests).fold(0.0, f64::max),
        edge,
        edge_peak_at_secs: edge_t as u64,
        coordinator,
        redis,
        sync: sync(tl, m),
        regions: regions(p, &edge),
        limits,
    }
}

/// The mean of several seconds' edge loads.
fn mean_of(loads: &[EdgeLoad]) -> EdgeLoad {
    let n = loads.len().max(1) as f64;
    let sum = |f: fn(&EdgeLoad) -> f64| loads.iter().map(f).sum::<f64>() / n;
    EdgeLoad {
        pages: sum(|e| e.pages),
        challenges: sum(|e| e.challenges),
        enqueues: sum(|e| e.enqueues),
        polls: sum(|e| e.polls),
        claims: sum(|e| e.claims),
        total: sum(|e| e.total),
    }
}

fn coordinator(tl: &Timeline, m: &Measured) -> CoordinatorLoad {
    let per_sec: Vec<f64> = (0..tl.line.len())
        .map(|t| (tl.arrivals[t] * m.enqueue_cpu_us + tl.claims[t] * m.claim_cpu_us) / 1e6)
        .collect();
    let cores = peak(&per_sec);
    CoordinatorLoad {
        enqueues_per_sec: peak(&tl.arrivals),
        claims_per_sec: peak(&tl.claims),
        cores,
        processes: ((cores / PROCESS_BUSY).ceil() as u64).max(MIN_PROCESSES),
    }
}

fn redis(tl: &Timeline, m: &Measured) -> RedisLoad {
    let len = tl.line.len();
    let calls: Vec<f64> = (0..len)
        .map(|t| REDIS_CALLS_IDLE + tl.arrivals[t] + 2.0 * tl.claims[t] + tl.session_ends[t])
        .collect();
    let core: Vec<f64> = (0..len)
        .map(|t| (tl.arrivals[t] * m.enqueue_redis_us + tl.claims[t] * m.claim_redis_us) / 1e6)
        .collect();
    let mut places = 0.0;
    let mut memory = 0.0f64;
    for t in 0..len {
        places += tl.arrivals[t];
        let bytes = m.bytes_base + places * m.bytes_per_place + tl.active[t] * m.bytes_per_session;
        memory = memory.max(bytes);
    }
    RedisLoad { calls_per_sec: peak(&calls), core_share: peak(&core), memory_bytes: memory }
}

fn sync(tl: &Timeline, m: &Measured) -> SyncLoad {
    let changed =
        (0..tl.line.len()).filter(|&t| tl.arrivals[t] > 0.0 || tl.admitted[t] > 0.0).count();
    let quiet = tl.line.len() - changed;
    SyncLoad {
        writes_over_sale: changed as f64 + quiet as f64 / m.publish_secs,
        writes_per_day_busy: 86_400.0,
        writes_per_day_idle: 86_400.0 / m.publish_secs,
        reads_per_day_per_isolate: 86_400.0,
    }
}

fn regions(p: &Profile, edge: &EdgeLoad) -> Vec<RegionLoad> {
    p.traffic
        .regions
        .iter()
        .map(|r| RegionLoad {
            name: r.name.clone(),
            share: r.share,
            edge_rps: edge.total * r.share,
            enqueues_per_sec: edge.enqueues * r.share,
            rtt_ms: r.rtt_ms,
        })
        .collect()
}

/// Each stage's peak utilization: admissions (everyone admitted might come) against its
/// rate, or open sessions against a session cap.
fn stage_limits(p: &Profile, rec: &Recommendation, tl: &Timeline) -> Vec<Utilization> {
    let peak_admitted = tl.admitted.iter().copied().fold(0.0, f64::max);
    let peak_sessions = tl.active.iter().copied().fold(0.0, f64::max);
    p.downstream
        .iter()
        .zip(&rec.stages)
        .map(|(s, l)| {
            let (peak, basis) = match l.bound {
                Bound::SessionCap => (
                    peak_sessions * s.per_visitor / s.concurrency.unwrap_or(f64::INFINITY),
                    "open sessions against its concurrency".to_string(),
                ),
                _ => (
                    peak_admitted / l.visitors_per_sec,
                    format!("admissions in a tick against {:.1} visitors/s", l.visitors_per_sec),
                ),
            };
            Utilization { part: stage_name(s), peak, basis }
        })
        .collect()
}

fn stage_name(s: &Stage) -> String {
    format!("downstream: {}", s.name)
}
