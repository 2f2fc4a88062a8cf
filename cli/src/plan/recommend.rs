//! The queue configuration a plan recommends: each downstream stage's limit in visitors, the
//! tightest one, the admission strategy and its numbers under it, position expiry, token
//! validity, and the proof-of-work difficulty for the stated bots with what it costs a human.
//! The result is the body of `POST /api/queue`, built from the API's own types.

use anyhow::{bail, ensure};
use serde::Serialize;
use shared::admission::{AdmissionConfig, AdmissionPolicy};
use shared::wire::QueueInput;

use super::profile::{Profile, Stage};
use super::traffic::Second;

/// What bounds a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Its rate.
    Rate,
    /// Its concurrency, each unit held for `hold_secs` (Little's law makes it a rate).
    HeldConcurrency,
    /// Its concurrency, held for whole sessions: a cap on sessions at once.
    SessionCap,
}

/// One stage's limit, in visitors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLimit {
    /// The stage's name.
    pub name: String,
    /// Visitors per second it takes: its rate, or its concurrency through Little's law.
    pub visitors_per_sec: f64,
    /// Sessions it takes at once, when its concurrency is held for whole sessions.
    pub session_cap: Option<f64>,
    /// Which of its numbers gives `visitors_per_sec`.
    pub bound: Bound,
}

impl StageLimit {
    /// The stage's limit for visitors whose sessions last `mean_session` seconds on average.
    pub fn of(s: &Stage, mean_session: f64) -> StageLimit {
        let pv = s.per_visitor;
        let mut best = StageLimit {
            name: s.name.clone(),
            visitors_per_sec: f64::INFINITY,
            session_cap: None,
            bound: Bound::Rate,
        };
        let mut offer = |rate: f64, bound: Bound| {
            if rate < best.visitors_per_sec {
                best.visitors_per_sec = rate;
                best.bound = bound;
            }
        };
        if let Some(r) = s.rate_per_sec {
            offer(r / pv, Bound::Rate);
        }
        match (s.concurrency, s.hold_secs) {
            (Some(c), Some(h)) => offer(c / (pv * h), Bound::HeldConcurrency),
            (Some(c), None) => {
                best.session_cap = Some(c / pv);
                offer(c / pv / mean_session, Bound::SessionCap);
            }
            (None, _) => {}
        }
        best
    }
}

/// Attempts per second of a visitor's browser solving proof-of-work: Chromium with 4x CPU
/// throttling standing in for a phone (`shared::pow::MAX_DIFFICULTY`'s measurement, about
/// 400,000/s).
pub const HUMAN_HASHES_PER_SEC: f64 = 400_000.0;

/// Highest difficulty the planner considers when saying what holding the bots would take
/// (a median solve of about three days on a phone).
const MAX_SOLVABLE: u8 = 40;

/// The proof-of-work the plan asks for, and what it costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowChoice {
    /// Leading zero bits (0: off).
    pub difficulty: u8,
    /// A visitor's median solve, seconds.
    pub human_median_secs: f64,
    /// A visitor's 90th percentile solve, seconds.
    pub human_p90_secs: f64,
    /// CPU seconds one place costs a bot core on average.
    pub bot_core_secs_per_place: f64,
    /// The most places per second the bots' cores can pay for, when their cores are known.
    pub bot_places_cap: Option<f64>,
    /// When the visitor's budget is too small to hold the bots to their share: the least
    /// difficulty that would, and a visitor's median solve at it, seconds.
    pub needed: Option<(u8, f64)>,
}

impl PowChoice {
    /// Difficulty `d` for a profile's bots.
    fn at(p: &Profile, d: u8) -> PowChoice {
        let attempts = 2f64.powi(i32::from(d));
        let on = d > 0;
        PowChoice {
            difficulty: d,
            human_median_secs: std::f64::consts::LN_2 * attempts / HUMAN_HASHES_PER_SEC,
            human_p90_secs: std::f64::consts::LN_10 * attempts / HUMAN_HASHES_PER_SEC,
            bot_core_secs_per_place: attempts / p.pow.bot_hashes_per_core_sec,
            bot_places_cap: p
                .pow
                .bot_cores
                .filter(|_| on)
                .map(|cores| cores * p.pow.bot_hashes_per_core_sec / attempts),
            needed: None,
        }
    }

    /// The least difficulty that holds the bots to `max_bot_share` of the places at the
    /// peak, no more than a visitor's budget allows; off without bots. Without the bots'
    /// cores nothing can be held, so the budget's difficulty prices each place.
    pub fn choose(p: &Profile, peak: &Second) -> PowChoice {
        if p.traffic.bot_share == 0.0 {
            return PowChoice::at(p, 0);
        }
        let affordable = (0..=shared::pow::MAX_DIFFICULTY)
            .rev()
            .find(|&d| PowChoice::at(p, d).human_median_secs <= p.pow.max_human_secs)
            .unwrap_or(0);
        let share = p.pow.max_bot_share;
        let allowed =
            if share >= 1.0 { f64::INFINITY } else { peak.humans * share / (1.0 - share) };
        if peak.bots <= allowed {
            return PowChoice::at(p, 0);
        }
        if p.pow.bot_cores.is_none() {
            return PowChoice::at(p, affordable);
        }
        let holds = |d: u8| PowChoice::at(p, d).bot_places_cap.is_some_and(|c| c <= allowed);
        let needed = (1..=MAX_SOLVABLE).find(|&d| holds(d));
        match needed {
            Some(d) if d <= affordable => PowChoice::at(p, d),
            _ => PowChoice {
                needed: needed.map(|d| (d, PowChoice::at(p, d).human_median_secs)),
                ..PowChoice::at(p, affordable)
            },
        }
    }
}

/// What the plan recommends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// Every stage's limit, in the profile's order.
    pub stages: Vec<StageLimit>,
    /// Index of the tightest stage.
    pub binding: usize,
    /// The admission strategy.
    pub policy: AdmissionPolicy,
    /// Unclaimed places expire after this, seconds.
    pub position_expiry_secs: u32,
    /// Access tokens (sessions) last this long, seconds.
    pub token_validity_secs: u32,
    /// Proof-of-work.
    pub pow: PowChoice,
    /// The body of `POST /api/queue` (what `anteroom queue create` and `--apply` send).
    pub queue: serde_json::Value,
}

impl Recommendation {
    /// The tightest stage.
    pub fn tightest(&self) -> &StageLimit {
        &self.stages[self.binding]
    }

    /// Visitors per second the strategy lets in with a long line: its rate, or its session
    /// cap over the time each admitted place holds a slot (Little's law), whichever is lower.
    pub fn effective_rate(&self, hold_secs: f64) -> f64 {
        let by_cap = self
            .policy
            .max_active()
            .map_or(f64::INFINITY, |m| f64::from(m) / hold_secs.max(f64::MIN_POSITIVE));
        match self.policy {
            AdmissionPolicy::FixedRate { rate_per_sec, .. } => rate_per_sec.min(by_cap),
            _ => by_cap,
        }
    }
}

/// Token validity: the 99th percentile session, rounded up to a minute (a minute to a day),
/// so all but the longest sessions end before their token does.
pub fn token_validity(p: &Profile) -> u32 {
    let p99 = p.visitors.session.quantile(0.99);
    ((p99 / 60.0).ceil() * 60.0).clamp(60.0, 86_400.0) as u32
}

/// The recommendation for a (validated) profile whose busiest second is `peak`.
pub fn recommend(p: &Profile, peak: &Second, mean_session: f64) -> anyhow::Result<Recommendation> {
    let stages: Vec<StageLimit> =
        p.downstream.iter().map(|s| StageLimit::of(s, mean_session)).collect();
    let binding = (0..stages.len())
        .min_by(|&a, &b| stages[a].visitors_per_sec.total_cmp(&stages[b].visitors_per_sec))
        .unwrap_or(0);
    let policy = policy(p, &stages)?;
    policy.validate().map_err(|e| anyhow::anyhow!("the planned policy is refused: {e}"))?;
    let position_expiry_secs = if policy.max_active().is_some() {
        // A cap counts unclaimed places: expire them as early as hidden tabs allow.
        u32::try_from(shared::poll::min_position_expiry_secs()).unwrap_or(u32::MAX)
    } else {
        shared::wire::QueueConfig::with_defaults("q").position_expiry_second
    };
    let token_validity_secs = token_validity(p);
    let pow = PowChoice::choose(p, peak);
    let queue = queue_body(p, &policy, position_expiry_secs, token_validity_secs, pow.difficulty);
    Ok(Recommendation {
        stages,
        binding,
        policy,
        position_expiry_secs,
        token_validity_secs,
        pow,
        queue,
    })
}

/// A fixed rate under the tightest rate (with the session cap if a stage caps sessions), or,
/// when only session caps bind, the capacity strategy.
fn policy(p: &Profile, stages: &[StageLimit]) -> anyhow::Result<AdmissionPolicy> {
    let h = p.admission.headroom;
    let cap = stages.iter().filter_map(|s| s.session_cap).min_by(f64::total_cmp);
    let max_active = match cap.map(|c| (c * h).floor()) {
        Some(m) if m < 1.0 => bail!("the tightest session cap leaves no room for one visitor"),
        Some(m) => Some(m.min(f64::from(u32::MAX)) as u32),
        None => None,
    };
    let rate = stages
        .iter()
        .filter(|s| s.bound != Bound::SessionCap)
        .map(|s| s.visitors_per_sec)
        .min_by(f64::total_cmp);
    let Some(limit) = rate else {
        let max_active = max_active.unwrap_or(1);
        return Ok(AdmissionPolicy::Capacity { max_active });
    };
    // The token bucket may admit one more than its rate in a tick after a quiet one (its
    // carried credit): below two a second that one is within the limit only over time.
    let mut r = limit * h;
    if limit >= 2.0 {
        r = r.min(limit - 1.0);
    }
    let rate_per_sec = (r * 1000.0).floor() / 1000.0;
    ensure!(rate_per_sec > 0.0, "the tightest stage takes under 0.001 visitors a second");
    Ok(AdmissionPolicy::FixedRate { rate_per_sec, burst: 0, max_active })
}

/// The `POST /api/queue` body: a `QueueInput` (the type the API reads) without its unset
/// fields.
fn queue_body(
    p: &Profile,
    policy: &AdmissionPolicy,
    expiry: u32,
    validity: u32,
    difficulty: u8,
) -> serde_json::Value {
    let input = QueueInput {
        queue_id: Some(p.name.clone()),
        token_validity_second: Some(validity),
        enable_queue_position_expiry: Some(true),
        position_expiry_second: Some(expiry),
        paths: (!p.queue.paths.is_empty()).then(|| p.queue.paths.clone()),
        pow_difficulty: Some(difficulty),
        admission: Some(Some(AdmissionConfig {
            policy: policy.clone(),
            paused: false,
            draining: false,
        })),
        ..QueueInput::default()
    };
    let mut v = serde_json::to_value(input).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, x| !x.is_null());
    }
    v
}
