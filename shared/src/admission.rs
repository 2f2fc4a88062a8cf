//! Admission control: how far a queue's serving position advances on each coordinator tick.
//!
//! Everything here is a pure function of its arguments. The coordinator loads a queue's
//! [`AdmissionConfig`] and [`ControllerState`] from Redis, calls [`tick`] with the current
//! time and the queue's counters, advances the serving position by [`TickDecision::admit`]
//! and stores the state back. The control laws and the reasoning for their defaults are
//! written up in `docs/admission.md`.
//!
//! The time between two ticks is taken from the state (`now_ms` minus the previous tick's
//! `now_ms`), not passed in: applying the same tick twice (same `now_ms`) admits nobody the
//! second time, which makes a retried or duplicated tick harmless.

use serde::{Deserialize, Serialize};

/// Longest interval one tick accounts for, milliseconds.
///
/// After a stall (a coordinator restart, a lost lease) the next tick does not admit the
/// visitors of the whole gap at once: it counts at most this much time.
pub const MAX_TICK_MS: u64 = 5_000;

/// How a queue decides whom to let in: the strategy and its parameters, plus the operator's
/// pause and drain switches. Set through the private API, changeable while the queue runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionConfig {
    /// The strategy.
    pub policy: AdmissionPolicy,
    /// Admit nobody until resumed; the strategy's state is kept as it is.
    #[serde(default)]
    pub paused: bool,
    /// Admit nobody any more and let the running sessions finish (end of a sale).
    #[serde(default)]
    pub draining: bool,
}

/// A queue's admission strategy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdmissionPolicy {
    /// No automatic admission: the operator advances the serving position by hand.
    Manual,
    /// A token bucket: `rate_per_sec` visitors per second on average, at most `burst` more
    /// at once after a quiet spell.
    FixedRate {
        /// Average admissions per second; fractions carry over (0.5 admits one every 2 s).
        rate_per_sec: f64,
        /// Bucket size: how many unused admissions may pile up while the line is empty.
        #[serde(default)]
        burst: u32,
        /// Optional session cap, as in [`AdmissionPolicy::Capacity`].
        #[serde(default)]
        max_active: Option<u32>,
    },
    /// Keep active sessions (plus admitted visitors who have not claimed yet) at most
    /// `max_active`: a slot frees when a session completes, is abandoned or expires.
    Capacity {
        /// The most sessions the origin may hold at once.
        max_active: u32,
    },
    /// The rate follows the origin's reported health (latency, errors, in-flight work).
    Health(HealthPolicy),
}

/// Parameters of the health-driven law (see `docs/admission.md` for the formulas).
///
/// Only `max_rate` and `target_latency_ms` are required; every other field has a default
/// chosen in the doc.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthPolicy {
    /// Ceiling on the rate, visitors per second; the operator's hard limit.
    pub max_rate: f64,
    /// Floor on the rate, so the line never stops entirely while the origin struggles.
    #[serde(default = "defaults::min_rate")]
    pub min_rate: f64,
    /// Rate when the strategy starts; default a tenth of `max_rate` (but at least `min_rate`).
    #[serde(default)]
    pub initial_rate: Option<f64>,
    /// Latency the origin should stay under, milliseconds, compared with the percentile the
    /// origin reports (p95 recommended).
    pub target_latency_ms: f64,
    /// Highest tolerated share of failed requests, 0..1.
    #[serde(default = "defaults::max_error_rate")]
    pub max_error_rate: f64,
    /// Highest tolerated in-flight work at the origin, if it reports it.
    #[serde(default)]
    pub max_in_flight: Option<u64>,
    /// Optional session cap, as in [`AdmissionPolicy::Capacity`].
    #[serde(default)]
    pub max_active: Option<u32>,
    /// Multiplicative increase per second while healthy and far below the last congestion
    /// point ($\alpha$).
    #[serde(default = "defaults::increase")]
    pub increase: f64,
    /// Additive increase per second near the last congestion point, as a share of it
    /// ($\gamma$).
    #[serde(default = "defaults::probe")]
    pub probe: f64,
    /// Where probing starts, as a share of the last congestion point ($\theta$).
    #[serde(default = "defaults::probe_band")]
    pub probe_band: f64,
    /// Multiplicative decrease on an unhealthy reading ($\beta$).
    #[serde(default = "defaults::decrease")]
    pub decrease: f64,
    /// The last congestion point is forgotten once the rate exceeds it by this share
    /// ($\delta$): the origin has grown, so the fast increase resumes.
    #[serde(default = "defaults::forget_margin")]
    pub forget_margin: f64,
    /// After a cut, readings taken within this time still describe the old rate and cause
    /// no further cut. Set it to the origin's measurement window.
    #[serde(default = "defaults::settle_ms")]
    pub settle_ms: u64,
    /// A reading older than this is stale: the rate holds, and after twice this long
    /// without a fresh reading it decays by `decrease` once per `stale_after_ms`.
    #[serde(default = "defaults::stale_after_ms")]
    pub stale_after_ms: u64,
}

/// Defaults of [`HealthPolicy`]; the reasoning is in `docs/admission.md`.
pub mod defaults {
    /// $r_{min}$, visitors per second.
    pub fn min_rate() -> f64 {
        0.2
    }
    /// $E^*$.
    pub fn max_error_rate() -> f64 {
        0.01
    }
    /// $\alpha$: +10% per second.
    pub fn increase() -> f64 {
        0.10
    }
    /// $\gamma$: +1% of the congestion point per second.
    pub fn probe() -> f64 {
        0.01
    }
    /// $\theta$.
    pub fn probe_band() -> f64 {
        0.95
    }
    /// $\beta$.
    pub fn decrease() -> f64 {
        0.8
    }
    /// $\delta$.
    pub fn forget_margin() -> f64 {
        0.05
    }
    /// Two ticks of one second.
    pub fn settle_ms() -> u64 {
        2_000
    }
    /// Five ticks of one second.
    pub fn stale_after_ms() -> u64 {
        5_000
    }
}

impl HealthPolicy {
    /// A policy with every optional field at its default.
    pub fn new(max_rate: f64, target_latency_ms: f64) -> HealthPolicy {
        HealthPolicy {
            max_rate,
            min_rate: defaults::min_rate(),
            initial_rate: None,
            target_latency_ms,
            max_error_rate: defaults::max_error_rate(),
            max_in_flight: None,
            max_active: None,
            increase: defaults::increase(),
            probe: defaults::probe(),
            probe_band: defaults::probe_band(),
            decrease: defaults::decrease(),
            forget_margin: defaults::forget_margin(),
            settle_ms: defaults::settle_ms(),
            stale_after_ms: defaults::stale_after_ms(),
        }
    }

    /// The rate the law starts from, inside `[min_rate, max_rate]`.
    pub fn start_rate(&self) -> f64 {
        // max/min rather than clamp: never panics, even on a policy that skipped validation.
        self.initial_rate.unwrap_or(self.max_rate / 10.0).min(self.max_rate).max(self.min_rate)
    }

    /// Whether a reading crosses a target.
    pub fn is_unhealthy(&self, reading: &HealthReading) -> bool {
        reading.latency_ms > self.target_latency_ms
            || reading.error_rate > self.max_error_rate
            || self.max_in_flight.zip(reading.in_flight).is_some_and(|(max, now)| now > max)
    }
}

/// Why a policy was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl core::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {}", self.field, self.reason)
    }
}

impl std::error::Error for PolicyError {}

fn check(ok: bool, field: &'static str, reason: &'static str) -> Result<(), PolicyError> {
    if ok { Ok(()) } else { Err(PolicyError { field, reason }) }
}

/// Largest rate accepted, visitors per second: far above any origin, small enough that
/// `rate * MAX_TICK_MS` stays exact in an `f64` and fits a `u64`.
pub const MAX_RATE: f64 = 1e9;

fn rate_ok(x: f64) -> bool {
    x.is_finite() && (0.0..=MAX_RATE).contains(&x)
}

impl AdmissionPolicy {
    /// Checks the parameters; the private API calls this before storing a policy.
    pub fn validate(&self) -> Result<(), PolicyError> {
        match self {
            AdmissionPolicy::Manual | AdmissionPolicy::Capacity { .. } => Ok(()),
            AdmissionPolicy::FixedRate { rate_per_sec, .. } => {
                check(rate_ok(*rate_per_sec), "rate_per_sec", "must be a number between 0 and 1e9")
            }
            AdmissionPolicy::Health(h) => {
                check(
                    rate_ok(h.max_rate) && h.max_rate > 0.0,
                    "max_rate",
                    "must be a number above 0 and at most 1e9",
                )?;
                check(
                    rate_ok(h.min_rate) && h.min_rate > 0.0 && h.min_rate <= h.max_rate,
                    "min_rate",
                    "must be a number above 0 and at most max_rate",
                )?;
                check(
                    h.initial_rate.is_none_or(rate_ok),
                    "initial_rate",
                    "must be a number between 0 and 1e9",
                )?;
                check(
                    h.target_latency_ms.is_finite() && h.target_latency_ms > 0.0,
                    "target_latency_ms",
                    "must be a number above 0",
                )?;
                check(
                    (0.0..=1.0).contains(&h.max_error_rate),
                    "max_error_rate",
                    "must be between 0 and 1",
                )?;
                check((0.0..=10.0).contains(&h.increase), "increase", "must be between 0 and 10")?;
                check((0.0..=1.0).contains(&h.probe), "probe", "must be between 0 and 1")?;
                check(
                    h.probe_band > 0.0 && h.probe_band <= 1.0,
                    "probe_band",
                    "must be above 0 and at most 1",
                )?;
                check(
                    h.decrease > 0.0 && h.decrease < 1.0,
                    "decrease",
                    "must be strictly between 0 and 1",
                )?;
                check(
                    (0.0..=10.0).contains(&h.forget_margin),
                    "forget_margin",
                    "must be between 0 and 10",
                )?;
                check(h.stale_after_ms > 0, "stale_after_ms", "must be above 0")
            }
        }
    }

    /// The session cap the strategy enforces, if any.
    pub fn max_active(&self) -> Option<u32> {
        match self {
            AdmissionPolicy::Manual => None,
            AdmissionPolicy::FixedRate { max_active, .. } => *max_active,
            AdmissionPolicy::Capacity { max_active } => Some(*max_active),
            AdmissionPolicy::Health(h) => h.max_active,
        }
    }
}

/// One telemetry sample from the origin, pushed to the private API or polled.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HealthReading {
    /// The latency percentile the origin measures (p95 recommended), milliseconds.
    pub latency_ms: f64,
    /// Share of failed requests over the same window, 0..1.
    pub error_rate: f64,
    /// Requests or sessions in progress at the origin, if it knows.
    #[serde(default)]
    pub in_flight: Option<u64>,
    /// When the sample was taken (or received), unix milliseconds: old samples are stale.
    pub at_ms: u64,
}

impl HealthReading {
    fn is_valid(&self) -> bool {
        self.latency_ms.is_finite()
            && self.latency_ms >= 0.0
            && self.error_rate.is_finite()
            && self.error_rate >= 0.0
    }
}

/// What the controller remembers between ticks; stored per queue (JSON in Redis).
///
/// Start a queue with `ControllerState::default()`. Every field has a serde default, so
/// state written by an older version still loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControllerState {
    /// `now_ms` of the last tick; the next tick accounts for the time since.
    pub last_tick_ms: Option<u64>,
    /// Admissions earned but not used yet: the fraction that makes 0.5/s admit one visitor
    /// every 2 s, and for a fixed rate the bucket's tokens.
    pub credit: f64,
    /// Whether the last tick admitted fewer than the strategy allowed (short line, session
    /// cap). The health law does not raise the rate on such a tick: a rate that was not used
    /// says nothing about what the origin can take.
    pub demand_limited: bool,
    /// The health law's memory, present while the strategy is [`AdmissionPolicy::Health`].
    pub health: Option<HealthState>,
}

/// The health law's memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthState {
    /// Current rate $r$, visitors per second.
    pub rate: f64,
    /// Rate at the last congestion signal ($c$), while it is still believed.
    pub ceiling: Option<f64>,
    /// When the rate was last cut, so a slow telemetry window causes one cut, not several.
    pub last_cut_ms: Option<u64>,
    /// `at_ms` of the newest valid reading seen, to measure staleness when none arrives.
    pub last_reading_ms: Option<u64>,
    /// When the strategy started, the staleness reference before any reading arrived.
    pub since_ms: u64,
}

/// The queue's counters at the time of a tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TickInputs {
    /// Current time, unix milliseconds.
    pub now_ms: u64,
    /// The serving position: every position up to it may claim a token.
    pub serving_pos: u64,
    /// The highest position handed out; the serving position never passes it.
    pub assigned: u64,
    /// Sessions issued and neither completed, abandoned nor expired.
    pub active_sessions: u64,
    /// Positions the serving position has passed whose holders have neither claimed a token
    /// nor expired. They count against a session cap: each may claim at any moment.
    pub unclaimed_passed: u64,
    /// The newest health reading, if any.
    pub health: Option<HealthReading>,
}

/// Why a tick admitted what it did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The strategy's rate (or, for a capacity strategy, nothing held it back).
    Rate,
    /// Everyone assigned a position has been admitted.
    Line,
    /// The session cap is reached.
    Capacity,
    /// Manual strategy.
    Manual,
    /// Paused by the operator.
    Paused,
    /// Draining.
    Draining,
}

/// How the health law judged the origin on this tick.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthVerdict {
    /// A fresh reading within all targets.
    Healthy,
    /// A fresh reading over a target.
    Unhealthy,
    /// No reading, or none newer than `stale_after_ms`.
    Stale,
}

/// What one tick decided.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TickDecision {
    /// How far to advance the serving position.
    pub admit: u64,
    /// The time this tick accounted for, milliseconds (0 on the first tick, at most
    /// [`MAX_TICK_MS`]): feed it with `admit` to `eta::RateEstimate::update`, paused ticks
    /// included, so the measured rate falls during a pause.
    pub dt_ms: u64,
    /// The strategy's current rate, visitors per second (`None` for manual and capacity).
    pub rate: Option<f64>,
    /// What bounded `admit`.
    pub limited_by: Limit,
    /// The health law's verdict, for a health strategy that is running.
    pub health: Option<HealthVerdict>,
}

/// Runs one tick: updates `state` and says how far to advance the serving position.
///
/// `admit` never exceeds `assigned - serving_pos`, nor, with a session cap, `max_active`
/// minus active sessions minus unclaimed admitted positions.
pub fn tick(
    config: &AdmissionConfig,
    state: &mut ControllerState,
    inputs: &TickInputs,
) -> TickDecision {
    let now = inputs.now_ms;
    let dt_ms = state.last_tick_ms.map_or(0, |last| now.saturating_sub(last).min(MAX_TICK_MS));
    state.last_tick_ms = Some(state.last_tick_ms.map_or(now, |last| last.max(now)));
    let dt = dt_ms as f64 / 1000.0;
    let line = inputs.assigned.saturating_sub(inputs.serving_pos);
    let cap_room = config.policy.max_active().map(|max| {
        u64::from(max)
            .saturating_sub(inputs.active_sessions.saturating_add(inputs.unclaimed_passed))
    });

    let policy = &config.policy;
    if !matches!(policy, AdmissionPolicy::Health(_)) {
        state.health = None;
    }
    let mut decision =
        TickDecision { admit: 0, dt_ms, rate: None, limited_by: Limit::Rate, health: None };

    let held = if config.draining {
        Some(Limit::Draining)
    } else if config.paused {
        Some(Limit::Paused)
    } else {
        None
    };
    if let Some(limit) = held {
        // Frozen: no credit accrues and the health law neither rises nor falls, so resuming
        // continues where the queue stopped instead of with a burst.
        decision.limited_by = limit;
        decision.rate = match policy {
            AdmissionPolicy::FixedRate { rate_per_sec, .. } => Some(*rate_per_sec),
            AdmissionPolicy::Health(h) => {
                state.health.as_ref().map(|s| s.rate).or(Some(h.start_rate()))
            }
            _ => None,
        };
        return decision;
    }

    // How many whole admissions the strategy allows, and how much credit may carry over.
    let (allowed, carry_cap) = match policy {
        AdmissionPolicy::Manual => {
            state.credit = 0.0;
            state.demand_limited = false;
            decision.limited_by = Limit::Manual;
            return decision;
        }
        AdmissionPolicy::Capacity { .. } => {
            state.credit = 0.0;
            (u64::MAX, 0.0)
        }
        AdmissionPolicy::FixedRate { rate_per_sec, burst, .. } => {
            decision.rate = Some(*rate_per_sec);
            state.credit += rate_per_sec * dt;
            (whole(state.credit), f64::from(*burst).max(1.0))
        }
        AdmissionPolicy::Health(h) => {
            let (rate, verdict) = health_step(h, state, inputs.health, now, dt);
            decision.rate = Some(rate);
            decision.health = Some(verdict);
            state.credit += rate * dt;
            (whole(state.credit), 1.0)
        }
    };

    let room = cap_room.map_or(line, |cap| cap.min(line));
    let mut admit = allowed;
    if line < admit {
        admit = line;
        decision.limited_by = Limit::Line;
    }
    if let Some(room) = cap_room
        && room < admit
    {
        admit = room;
        decision.limited_by = Limit::Capacity;
    }
    // Something other than the rate bounds admission (or nobody is waiting): a higher rate
    // would not have been used.
    state.demand_limited = room <= allowed;
    let credit = state.credit - admit as f64;
    state.credit = if credit.is_finite() { credit.clamp(0.0, carry_cap) } else { 0.0 };
    decision.admit = admit;
    decision
}

/// The whole part of a non-negative credit, saturating.
fn whole(credit: f64) -> u64 {
    // `as` saturates and maps NaN to 0.
    credit.floor() as u64
}

/// One step of the health law; returns the new rate and the verdict.
fn health_step(
    h: &HealthPolicy,
    state: &mut ControllerState,
    reading: Option<HealthReading>,
    now: u64,
    dt: f64,
) -> (f64, HealthVerdict) {
    let demand_limited = state.demand_limited;
    let s = state.health.get_or_insert_with(|| HealthState {
        rate: h.start_rate(),
        ceiling: None,
        last_cut_ms: None,
        last_reading_ms: None,
        since_ms: now,
    });
    // A reading stamped in the future (a clock ahead of ours) counts as taken now, so it
    // cannot skip the settle window.
    let reading = reading
        .filter(HealthReading::is_valid)
        .map(|r| HealthReading { at_ms: r.at_ms.min(now), ..r });
    if let Some(r) = reading {
        s.last_reading_ms = Some(s.last_reading_ms.map_or(r.at_ms, |t| t.max(r.at_ms)));
    }
    let fresh = reading.filter(|r| now.saturating_sub(r.at_ms) <= h.stale_after_ms);
    let settled = |at: u64, last_cut: Option<u64>, settle: u64| {
        last_cut.is_none_or(|cut| at >= cut.saturating_add(settle))
    };
    let verdict = match fresh {
        Some(r) if h.is_unhealthy(&r) => {
            // One cut per congestion episode: readings inside the settle window still
            // describe the rate before the cut.
            if settled(r.at_ms, s.last_cut_ms, h.settle_ms) {
                s.ceiling = Some(s.rate);
                s.rate *= h.decrease;
                s.last_cut_ms = Some(now);
            }
            HealthVerdict::Unhealthy
        }
        Some(r) => {
            // Raise only on a reading taken after the last cut, and only if the last tick
            // used the whole rate.
            if settled(r.at_ms, s.last_cut_ms, 1) && !demand_limited {
                s.rate = increase(h, s, dt);
            }
            HealthVerdict::Healthy
        }
        None => {
            // Hold; after twice the stale limit without news, decay once per stale limit.
            let last_news = s.last_reading_ms.unwrap_or(s.since_ms);
            if now.saturating_sub(last_news) > 2 * h.stale_after_ms
                && settled(now, s.last_cut_ms, h.stale_after_ms)
            {
                s.rate *= h.decrease;
                s.last_cut_ms = Some(now);
            }
            HealthVerdict::Stale
        }
    };
    if !s.rate.is_finite() {
        s.rate = h.start_rate();
    }
    s.rate = s.rate.min(h.max_rate).max(h.min_rate);
    (s.rate, verdict)
}

/// The healthy-tick increase: fast and multiplicative far below the last congestion point,
/// slow and additive near it, fast again once the rate is well past it.
fn increase(h: &HealthPolicy, s: &mut HealthState, dt: f64) -> f64 {
    let r = s.rate;
    let next = match s.ceiling {
        None => r * (1.0 + h.increase).powf(dt),
        Some(c) => {
            let band = h.probe_band * c;
            if r < band {
                (r * (1.0 + h.increase).powf(dt)).min(band)
            } else {
                r + h.probe * c * dt
            }
        }
    };
    if s.ceiling.is_some_and(|c| next > c * (1.0 + h.forget_margin)) {
        s.ceiling = None;
    }
    next
}

/// A simulated origin and a closed loop around [`tick`], for the tests of this crate (the
/// plot in `docs/admission.md` was drawn from the same loop). Test-only: nothing ships it.
#[cfg(test)]
pub(crate) mod sim {
    use super::{
        AdmissionConfig, AdmissionPolicy, ControllerState, HealthPolicy, HealthReading, TickInputs,
        tick,
    };

    /// An origin whose latency is flat up to a knee rate and rises steeply above it.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct KneeOrigin {
        /// $R^*$, admissions per second the origin absorbs without slowing down.
        pub knee: f64,
        /// Latency at or below the knee, milliseconds.
        pub base_latency_ms: f64,
        /// How many times `base_latency_ms` the latency grows per unit of relative excess:
        /// latency $= b\,(1 + s\,(R/R^* - 1))$ above the knee.
        pub steepness: f64,
    }

    impl KneeOrigin {
        /// Latency at an admission rate.
        pub fn latency_ms(&self, rate: f64) -> f64 {
            if rate <= self.knee {
                self.base_latency_ms
            } else {
                self.base_latency_ms * (1.0 + self.steepness * (rate / self.knee - 1.0))
            }
        }
    }

    /// One second of a simulated run.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct TracePoint {
        /// Seconds since the start; this point's tick runs at `t` seconds.
        pub t: u64,
        /// The knee in force during this second.
        pub knee: f64,
        /// The controller's rate after the tick.
        pub rate: f64,
        /// Visitors admitted by the tick.
        pub admitted: u64,
        /// Latency the origin reported to this tick (caused by the previous second).
        pub latency_ms: f64,
        /// Active sessions after the tick's admissions claimed theirs.
        pub active: u64,
    }

    /// Runs the health law against a [`KneeOrigin`] for `secs` one-second ticks.
    ///
    /// The line is never empty; every admitted visitor claims at once and holds a session
    /// for `session_secs`. The reading given to the tick at second $t$ is the latency caused
    /// by the admissions of second $t-1$, taken at $t$. `knee_at(t)` lets the origin change.
    pub fn knee_run(
        policy: &HealthPolicy,
        origin: KneeOrigin,
        knee_at: &dyn Fn(u64) -> f64,
        secs: u64,
        session_secs: u64,
    ) -> Vec<TracePoint> {
        let config = AdmissionConfig {
            policy: AdmissionPolicy::Health(policy.clone()),
            paused: false,
            draining: false,
        };
        let mut state = ControllerState::default();
        let mut serving = 0u64;
        let mut admitted_at: Vec<u64> = Vec::with_capacity(secs as usize + 1);
        let mut last_admitted = 0u64;
        let mut trace = Vec::with_capacity(secs as usize + 1);
        for t in 0..=secs {
            let knee = knee_at(t);
            let origin = KneeOrigin { knee, ..origin };
            let latency_ms = origin.latency_ms(last_admitted as f64);
            let active = active_at(&admitted_at, t, session_secs);
            let now_ms = 1_000_000 + t * 1000;
            let decision = tick(
                &config,
                &mut state,
                &TickInputs {
                    now_ms,
                    serving_pos: serving,
                    assigned: u64::MAX / 2,
                    active_sessions: active,
                    unclaimed_passed: 0,
                    health: (t > 0).then_some(HealthReading {
                        latency_ms,
                        error_rate: 0.0,
                        in_flight: None,
                        at_ms: now_ms,
                    }),
                },
            );
            serving += decision.admit;
            admitted_at.push(decision.admit);
            last_admitted = decision.admit;
            trace.push(TracePoint {
                t,
                knee,
                rate: decision.rate.unwrap_or(0.0),
                admitted: decision.admit,
                latency_ms,
                active: active + decision.admit,
            });
        }
        trace
    }

    /// Sessions still running at second `t`: those admitted in the last `session_secs`
    /// seconds, excluding second `t` itself.
    fn active_at(admitted_at: &[u64], t: u64, session_secs: u64) -> u64 {
        let from = t.saturating_sub(session_secs) as usize;
        admitted_at.get(from..).map_or(0, |s| s.iter().sum())
    }

    /// Mean admissions per second over the `window` seconds ending at second `end`
    /// (inclusive).
    pub fn mean_rate(trace: &[TracePoint], end: u64, window: u64) -> f64 {
        let from = end + 1 - window.min(end + 1);
        let sum: u64 = trace.iter().filter(|p| p.t >= from && p.t <= end).map(|p| p.admitted).sum();
        sum as f64 / (end + 1 - from) as f64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::sim::{KneeOrigin, TracePoint, knee_run, mean_rate};
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_700_000_000_000;

    fn config(policy: AdmissionPolicy) -> AdmissionConfig {
        AdmissionConfig { policy, paused: false, draining: false }
    }

    fn inputs(now_ms: u64, serving_pos: u64, assigned: u64, active: u64) -> TickInputs {
        TickInputs {
            now_ms,
            serving_pos,
            assigned,
            active_sessions: active,
            unclaimed_passed: 0,
            health: None,
        }
    }

    fn fixed(rate_per_sec: f64, burst: u32) -> AdmissionPolicy {
        AdmissionPolicy::FixedRate { rate_per_sec, burst, max_active: None }
    }

    /// Runs ticks every `step_ms` against a long line; returns the admissions per tick.
    fn run(config: &AdmissionConfig, step_ms: u64, ticks: usize) -> Vec<u64> {
        let mut state = ControllerState::default();
        let mut serving = 0;
        (0..=ticks)
            .map(|i| {
                let d =
                    tick(config, &mut state, &inputs(T0 + i as u64 * step_ms, serving, 1 << 40, 0));
                serving += d.admit;
                d.admit
            })
            .skip(1)
            .collect()
    }

    #[test]
    fn fixed_rate_admits_rate_times_time_with_fractions_carried() {
        // (rate, burst, tick ms, ticks, admissions per tick)
        let table: &[(f64, u32, u64, usize, &[u64])] = &[
            (0.5, 0, 1000, 6, &[0, 1, 0, 1, 0, 1]),
            (2.0, 0, 1000, 3, &[2, 2, 2]),
            (2.5, 5, 1000, 4, &[2, 3, 2, 3]),
            (1.0, 0, 250, 8, &[0, 0, 0, 1, 0, 0, 0, 1]),
            (0.0, 10, 1000, 3, &[0, 0, 0]),
            (100.0, 1, 1000, 2, &[100, 100]),
        ];
        for &(rate, burst, step, ticks, expected) in table {
            let got = run(&config(fixed(rate, burst)), step, ticks);
            assert_eq!(got, expected, "rate {rate} burst {burst} step {step}");
        }
    }

    #[test]
    fn fixed_rate_burst_builds_up_while_the_line_is_empty() {
        let c = config(fixed(1.0, 5));
        let mut state = ControllerState::default();
        // 20 s with nobody waiting: the bucket fills to 5, not 20.
        for i in 0..=20 {
            let d = tick(&c, &mut state, &inputs(T0 + i * 1000, 0, 0, 0));
            assert_eq!(d.admit, 0);
        }
        assert_eq!(state.credit, 5.0);
        // 100 visitors arrive: 5 from the bucket plus the second's 1.
        let d = tick(&c, &mut state, &inputs(T0 + 21_000, 0, 100, 0));
        assert_eq!(d.admit, 6);
        let d = tick(&c, &mut state, &inputs(T0 + 22_000, 6, 100, 0));
        assert_eq!(d.admit, 1);
    }

    #[test]
    fn never_admits_past_the_last_assigned_position() {
        let table = [
            (fixed(1000.0, 0), 10, 13, 3, Limit::Line),
            (fixed(1000.0, 0), 13, 13, 0, Limit::Line),
            (fixed(1000.0, 0), 20, 13, 0, Limit::Line),
            (AdmissionPolicy::Capacity { max_active: 100 }, 10, 12, 2, Limit::Line),
            (AdmissionPolicy::Health(HealthPolicy::new(500.0, 100.0)), 0, 7, 7, Limit::Line),
        ];
        for (policy, serving, assigned, expected, limit) in table {
            let c = config(policy);
            let mut state = ControllerState::default();
            tick(&c, &mut state, &inputs(T0, serving, assigned, 0));
            let d = tick(&c, &mut state, &inputs(T0 + 1000, serving, assigned, 0));
            assert_eq!((d.admit, d.limited_by), (expected, limit), "{c:?}");
        }
    }

    #[test]
    fn capacity_fills_free_slots_counting_unclaimed_admissions() {
        // (max_active, active, unclaimed, line, expected)
        let table = [
            (100, 0, 0, 1000, 100),
            (100, 60, 0, 1000, 40),
            (100, 60, 30, 1000, 10),
            (100, 60, 40, 1000, 0),
            (100, 100, 0, 1000, 0),
            (100, 150, 0, 1000, 0),
            (100, 10, 5, 20, 20),
            (0, 0, 0, 1000, 0),
        ];
        for (max_active, active, unclaimed, line, expected) in table {
            let c = config(AdmissionPolicy::Capacity { max_active });
            let mut state = ControllerState::default();
            let d = tick(
                &c,
                &mut state,
                &TickInputs { unclaimed_passed: unclaimed, ..inputs(T0, 0, line, active) },
            );
            assert_eq!(d.admit, expected, "max {max_active} active {active} unclaimed {unclaimed}");
        }
    }

    #[test]
    fn manual_pause_and_drain_admit_nobody() {
        let base = fixed(10.0, 0);
        let cases = [
            (config(AdmissionPolicy::Manual), Limit::Manual),
            (AdmissionConfig { paused: true, ..config(base.clone()) }, Limit::Paused),
            (
                AdmissionConfig {
                    draining: true,
                    ..config(AdmissionPolicy::Capacity { max_active: 5 })
                },
                Limit::Draining,
            ),
        ];
        for (c, limit) in cases {
            let mut state = ControllerState::default();
            for i in 0..5 {
                let d = tick(&c, &mut state, &inputs(T0 + i * 1000, 0, 100, 0));
                assert_eq!((d.admit, d.limited_by), (0, limit));
            }
        }
    }

    #[test]
    fn resuming_after_a_pause_continues_without_a_burst() {
        let running = config(fixed(1.0, 50));
        let paused = AdmissionConfig { paused: true, ..running.clone() };
        let mut state = ControllerState::default();
        tick(&running, &mut state, &inputs(T0, 0, 1000, 0));
        for i in 1..=60 {
            tick(&paused, &mut state, &inputs(T0 + i * 1000, 0, 1000, 0));
        }
        let d = tick(&running, &mut state, &inputs(T0 + 61_000, 0, 1000, 0));
        assert_eq!(d.admit, 1);
    }

    #[test]
    fn a_repeated_or_older_tick_admits_nobody() {
        let c = config(fixed(10.0, 0));
        let mut state = ControllerState::default();
        tick(&c, &mut state, &inputs(T0, 0, 1000, 0));
        assert_eq!(tick(&c, &mut state, &inputs(T0 + 1000, 0, 1000, 0)).admit, 10);
        assert_eq!(tick(&c, &mut state, &inputs(T0 + 1000, 10, 1000, 0)).admit, 0);
        assert_eq!(tick(&c, &mut state, &inputs(T0 + 500, 10, 1000, 0)).admit, 0);
        assert_eq!(tick(&c, &mut state, &inputs(T0 + 2000, 10, 1000, 0)).admit, 10);
    }

    #[test]
    fn the_decision_reports_the_time_it_accounted_for() {
        let running = config(fixed(10.0, 0));
        let paused = AdmissionConfig { paused: true, ..running.clone() };
        let mut state = ControllerState::default();
        // (config, now offset, expected dt_ms)
        let table = [
            (&running, 0, 0),
            (&running, 1000, 1000),
            (&paused, 2500, 1500),
            (&running, 2500, 0),
            (&running, 100_000, MAX_TICK_MS),
        ];
        for (c, at, dt) in table {
            let d = tick(c, &mut state, &inputs(T0 + at, 0, 1000, 0));
            assert_eq!(d.dt_ms, dt, "at {at}");
        }
    }

    #[test]
    fn a_reading_from_the_future_cannot_skip_the_settle_window() {
        let p = HealthPolicy { initial_rate: Some(50.0), ..HealthPolicy::new(100.0, 200.0) };
        let c = config(AdmissionPolicy::Health(p));
        let mut state = ControllerState::default();
        let mut rates = Vec::new();
        for s in 0..4 {
            let mut i = with_health(T0 + s * 1000, 500.0, 0.0);
            // The origin's clock is a minute ahead.
            i.health.as_mut().unwrap().at_ms += 60_000;
            rates.push(tick(&c, &mut state, &i).rate.unwrap());
        }
        // Cut at 0 s, held at 1 s (inside the 2 s settle window), cut again at 2 s.
        assert_close(&rates, &[40.0, 40.0, 32.0, 32.0]);
    }

    #[test]
    fn a_long_gap_counts_as_max_tick() {
        let c = config(fixed(10.0, 0));
        let mut state = ControllerState::default();
        tick(&c, &mut state, &inputs(T0, 0, 1 << 30, 0));
        let d = tick(&c, &mut state, &inputs(T0 + 3_600_000, 0, 1 << 30, 0));
        assert_eq!(d.admit, 10 * MAX_TICK_MS / 1000);
    }

    #[test]
    fn policies_round_trip_through_json() {
        let table = [
            (r#"{"policy":{"strategy":"manual"}}"#, config(AdmissionPolicy::Manual)),
            (
                r#"{"policy":{"strategy":"fixed_rate","rate_per_sec":2.5,"burst":10},"paused":true}"#,
                AdmissionConfig {
                    paused: true,
                    ..config(AdmissionPolicy::FixedRate {
                        rate_per_sec: 2.5,
                        burst: 10,
                        max_active: None,
                    })
                },
            ),
            (
                r#"{"policy":{"strategy":"capacity","max_active":300},"draining":true}"#,
                AdmissionConfig {
                    draining: true,
                    ..config(AdmissionPolicy::Capacity { max_active: 300 })
                },
            ),
            (
                r#"{"policy":{"strategy":"health","max_rate":200,"target_latency_ms":250}}"#,
                config(AdmissionPolicy::Health(HealthPolicy::new(200.0, 250.0))),
            ),
        ];
        for (json, expected) in table {
            let parsed: AdmissionConfig = serde_json::from_str(json).unwrap();
            assert_eq!(parsed, expected, "{json}");
            let again: AdmissionConfig =
                serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
            assert_eq!(again, expected);
        }
        for bad in [
            r#"{"policy":{"strategy":"fastest"}}"#,
            r#"{"policy":{"strategy":"capacity"}}"#,
            r#"{"policy":{"strategy":"manual"},"pasued":true}"#,
            r#"{"policy":{"strategy":"capacity","max_active":3,"max_actve":4}}"#,
            r#"{"policy":{"strategy":"fixed_rate","rate_per_sec":1,"brust":4}}"#,
            r#"{"policy":{"strategy":"health","max_rate":200,"target_latency_ms":250,"decrese":0.5}}"#,
        ] {
            assert!(serde_json::from_str::<AdmissionConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut h = HealthPolicy::new(100.0, 200.0);
        assert_eq!(AdmissionPolicy::Health(h.clone()).validate(), Ok(()));
        h.min_rate = 150.0;
        let err = AdmissionPolicy::Health(h).validate().unwrap_err();
        assert_eq!(err.field, "min_rate");
        assert_eq!(err.to_string(), "min_rate must be a number above 0 and at most max_rate");
        for (policy, field) in [
            (fixed(f64::NAN, 0), "rate_per_sec"),
            (fixed(-1.0, 0), "rate_per_sec"),
            (fixed(f64::INFINITY, 0), "rate_per_sec"),
            (AdmissionPolicy::Health(HealthPolicy::new(0.0, 100.0)), "max_rate"),
            (AdmissionPolicy::Health(HealthPolicy::new(10.0, 0.0)), "target_latency_ms"),
            (
                AdmissionPolicy::Health(HealthPolicy {
                    decrease: 1.0,
                    ..HealthPolicy::new(10.0, 100.0)
                }),
                "decrease",
            ),
        ] {
            assert_eq!(policy.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn the_state_survives_json() {
        let c = config(AdmissionPolicy::Health(HealthPolicy::new(100.0, 100.0)));
        let mut state = ControllerState::default();
        for i in 0..5 {
            tick(&c, &mut state, &with_health(T0 + i * 1000, 10.0, 0.0));
        }
        let text = serde_json::to_string(&state).unwrap();
        let back: ControllerState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, state);
        assert_eq!(
            serde_json::from_str::<ControllerState>("{}").unwrap(),
            ControllerState::default()
        );
    }

    fn with_health(now_ms: u64, latency_ms: f64, error_rate: f64) -> TickInputs {
        TickInputs {
            health: Some(HealthReading { latency_ms, error_rate, in_flight: None, at_ms: now_ms }),
            ..inputs(now_ms, 0, 1 << 40, 0)
        }
    }

    /// Runs the health law over fresh readings, one per second; returns the rates.
    fn health_rates(
        policy: &HealthPolicy,
        state: &mut ControllerState,
        from_s: u64,
        readings: &[(f64, f64)],
    ) -> Vec<f64> {
        let c = config(AdmissionPolicy::Health(policy.clone()));
        readings
            .iter()
            .enumerate()
            .map(|(i, &(lat, err))| {
                tick(&c, state, &with_health(T0 + (from_s + i as u64) * 1000, lat, err))
                    .rate
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn health_law_steps() {
        let p = HealthPolicy { initial_rate: Some(10.0), ..HealthPolicy::new(100.0, 200.0) };
        let mut state = ControllerState::default();
        let ok = (50.0, 0.0);
        let slow = (500.0, 0.0);
        let failing = (50.0, 0.05);
        // Start at 10, +10%/s while healthy (the first tick has no elapsed time).
        let r = health_rates(&p, &mut state, 0, &[ok, ok, ok]);
        assert_close(&r, &[10.0, 11.0, 12.1]);
        // A slow reading cuts by 20% and remembers 12.1 as the congestion point; the next
        // one falls inside the settle window and holds; the one after cuts again.
        let r = health_rates(&p, &mut state, 3, &[slow, slow, failing]);
        assert_close(&r, &[9.68, 9.68, 7.744]);
        assert_close(&[state.health.as_ref().unwrap().ceiling.unwrap()], &[9.68]);
        // Healthy again: fast up to 95% of 9.68, then +1% of it per second.
        let r = health_rates(&p, &mut state, 6, &[ok, ok, ok]);
        assert_close(&r, &[8.5184, 9.196, 9.2928]);
    }

    fn assert_close(got: &[f64], expected: &[f64]) {
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-9, "got {got:?}, expected {expected:?}");
        }
    }

    #[test]
    fn stale_health_holds_then_decays() {
        let p = HealthPolicy { initial_rate: Some(50.0), ..HealthPolicy::new(100.0, 200.0) };
        let c = config(AdmissionPolicy::Health(p.clone()));
        let mut state = ControllerState::default();
        let mut rates = Vec::new();
        // A healthy reading at 0, then the origin goes silent.
        let d = tick(&c, &mut state, &with_health(T0, 50.0, 0.0));
        assert_eq!(d.health, Some(HealthVerdict::Healthy));
        for s in 1..=26 {
            let mut i = with_health(T0 + s * 1000, 50.0, 0.0);
            i.health.as_mut().unwrap().at_ms = T0;
            let d = tick(&c, &mut state, &i);
            if s > 5 {
                assert_eq!(d.health, Some(HealthVerdict::Stale));
            }
            rates.push(d.rate.unwrap());
        }
        // Within 5 s the old reading still counts as fresh and healthy, and the rate grows;
        // then it holds; past 10 s it decays by 20% every 5 s.
        assert!(rates[4] > 50.0);
        let held = rates[4];
        assert!(rates[5..10].iter().all(|&r| r == held), "{rates:?}");
        assert!((rates[10] - held * 0.8).abs() < 1e-9, "{rates:?}");
        assert!(rates[11..15].iter().all(|&r| r == rates[10]), "{rates:?}");
        assert!((rates[15] - held * 0.64).abs() < 1e-9, "{rates:?}");
        // Without any reading ever, the same rule counts from the strategy's start.
        let mut state = ControllerState::default();
        for s in 0..=10 {
            let d = tick(&c, &mut state, &inputs(T0 + s * 1000, 0, 1 << 30, 0));
            assert_eq!(d.rate, Some(50.0));
        }
        let d = tick(&c, &mut state, &inputs(T0 + 11_000, 0, 1 << 30, 0));
        assert_eq!(d.rate, Some(40.0));
    }

    #[test]
    fn invalid_readings_are_ignored() {
        let p = HealthPolicy::new(100.0, 200.0);
        let c = config(AdmissionPolicy::Health(p));
        let mut state = ControllerState::default();
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let d = tick(&c, &mut state, &with_health(T0, bad, 0.0));
            assert_eq!(d.health, Some(HealthVerdict::Stale));
            let d = tick(&c, &mut state, &with_health(T0, 10.0, bad));
            assert_eq!(d.health, Some(HealthVerdict::Stale));
        }
    }

    #[test]
    fn in_flight_over_its_limit_is_unhealthy() {
        let p = HealthPolicy { max_in_flight: Some(100), ..HealthPolicy::new(100.0, 200.0) };
        let reading =
            |in_flight| HealthReading { latency_ms: 10.0, error_rate: 0.0, in_flight, at_ms: 0 };
        assert!(!p.is_unhealthy(&reading(None)));
        assert!(!p.is_unhealthy(&reading(Some(100))));
        assert!(p.is_unhealthy(&reading(Some(101))));
    }

    #[test]
    fn the_rate_does_not_grow_while_the_line_is_short() {
        let p = HealthPolicy { initial_rate: Some(10.0), ..HealthPolicy::new(100.0, 200.0) };
        let c = config(AdmissionPolicy::Health(p));
        let mut state = ControllerState::default();
        for s in 0..30 {
            let mut i = with_health(T0 + s * 1000, 10.0, 0.0);
            i.assigned = 3;
            i.serving_pos = 3;
            tick(&c, &mut state, &i);
        }
        assert_eq!(state.health.unwrap().rate, 10.0);
    }

    // ---- convergence against a knee --------------------------------------------------

    fn knee_policy() -> HealthPolicy {
        HealthPolicy { initial_rate: Some(10.0), ..HealthPolicy::new(1000.0, 100.0) }
    }

    const ORIGIN: KneeOrigin = KneeOrigin { knee: 100.0, base_latency_ms: 50.0, steepness: 50.0 };

    fn print_trace(trace: &[TracePoint]) {
        for p in trace {
            println!(
                "t={:>3} knee={:>5.0} rate={:>7.2} admitted={:>4} latency={:>7.1} active={}",
                p.t, p.knee, p.rate, p.admitted, p.latency_ms, p.active
            );
        }
    }

    #[test]
    fn converges_below_the_knee_and_recovers_when_it_rises() {
        let r = 100.0;
        // Knee 100/s; the origin grows to 150/s at 120 s.
        let knee = |t: u64| if t < 120 { r } else { 1.5 * r };
        let trace = knee_run(&knee_policy(), ORIGIN, &knee, 240, 30);
        print_trace(&trace);
        for end in 60..120 {
            let m = mean_rate(&trace, end, 10);
            assert!((0.8 * r..=r).contains(&m), "10 s mean {m} at {end} s");
        }
        let m = mean_rate(&trace, 119, 10);
        println!("10 s mean at 119 s: {m:.1} (knee {r})");
        let worst = (60..120).map(|e| mean_rate(&trace, e, 10)).fold(f64::MAX, f64::min);
        println!("lowest 10 s mean between 60 and 120 s: {worst:.1}");
        // Recovered within 60 s of the origin growing.
        for end in 180..=240 {
            let m = mean_rate(&trace, end, 10);
            assert!((0.8 * 1.5 * r..=1.5 * r).contains(&m), "10 s mean {m} at {end} s");
        }
        println!("10 s mean at 240 s: {:.1} (knee {})", mean_rate(&trace, 240, 10), 1.5 * r);
    }

    #[test]
    fn backs_off_when_the_origin_degrades_and_comes_back() {
        let r = 100.0;
        // The origin loses most of its capacity between 60 and 120 s.
        let knee = |t: u64| if (60..120).contains(&t) { 0.3 * r } else { r };
        let trace = knee_run(&knee_policy(), ORIGIN, &knee, 240, 30);
        for end in 90..120 {
            let m = mean_rate(&trace, end, 10);
            assert!((0.8 * 0.3 * r..=0.3 * r).contains(&m), "10 s mean {m} at {end} s");
        }
        for end in 180..=240 {
            let m = mean_rate(&trace, end, 10);
            assert!((0.8 * r..=r).contains(&m), "10 s mean {m} at {end} s");
        }
    }

    #[test]
    fn a_session_cap_bounds_the_health_law() {
        let p = HealthPolicy { max_active: Some(1500), ..knee_policy() };
        // 30 s sessions at the knee would need 3000 slots: the cap binds.
        let trace = knee_run(&p, ORIGIN, &|_| 100.0, 180, 30);
        assert!(trace.iter().all(|p| p.active <= 1500));
        let m = mean_rate(&trace, 180, 30);
        assert!((45.0..=55.0).contains(&m), "{m}");
    }

    // ---- properties ------------------------------------------------------------------

    fn health_policy() -> impl Strategy<Value = HealthPolicy> {
        (
            1.0f64..1000.0,
            0.001f64..1.0,
            proptest::option::of(0.0f64..2000.0),
            proptest::option::of(0u32..5000),
            0.05f64..1.0,
            0.1f64..0.95,
            0u64..5000,
        )
            .prop_map(
                |(max_rate, min_share, initial_rate, max_active, increase, decrease, settle_ms)| {
                    HealthPolicy {
                        min_rate: max_rate * min_share,
                        initial_rate,
                        max_active,
                        increase,
                        decrease,
                        settle_ms,
                        ..HealthPolicy::new(max_rate, 200.0)
                    }
                },
            )
    }

    /// One tick's worth of arbitrary inputs: elapsed ms, latency, errors, reading age,
    /// new arrivals, sessions ending, unclaimed.
    fn step() -> impl Strategy<Value = (u64, f64, f64, Option<u64>, u64, u64, u64)> {
        (
            0u64..3000,
            0.0f64..1000.0,
            0.0f64..0.1,
            proptest::option::of(0u64..20_000),
            0u64..500,
            0u64..300,
            0u64..50,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn health_rate_stays_within_bounds_and_admits_within_caps(
            p in health_policy(),
            steps in proptest::collection::vec(step(), 1..80),
        ) {
            let c = config(AdmissionPolicy::Health(p.clone()));
            let mut state = ControllerState::default();
            let (mut now, mut serving, mut assigned, mut active) = (T0, 0u64, 0u64, 0u64);
            for (dt, lat, err, age, arrivals, ended, unclaimed) in steps {
                now += dt;
                assigned += arrivals;
                active = active.saturating_sub(ended);
                let i = TickInputs {
                    now_ms: now,
                    serving_pos: serving,
                    assigned,
                    active_sessions: active,
                    unclaimed_passed: unclaimed,
                    health: age.map(|a| HealthReading { latency_ms: lat, error_rate: err, in_flight: None, at_ms: now.saturating_sub(a) }),
                };
                let d = tick(&c, &mut state, &i);
                let rate = d.rate.unwrap();
                prop_assert!(rate <= p.max_rate && rate >= p.min_rate);
                prop_assert!(serving + d.admit <= assigned);
                if let Some(max) = p.max_active {
                    prop_assert!(active + unclaimed + d.admit <= u64::from(max).max(active + unclaimed));
                }
                // Never more than the rate allows over the tick, plus the carried fraction.
                prop_assert!(d.admit as f64 <= rate * (dt.min(MAX_TICK_MS) as f64 / 1000.0) + 1.0);
                serving += d.admit;
                active += d.admit;
            }
        }

        #[test]
        fn health_rate_falls_while_unhealthy_and_recovers_when_healthy(
            p in health_policy(),
            warmup in proptest::collection::vec((50.0f64..400.0, 1u64..3000), 0..30),
            bad in 1usize..20,
        ) {
            let p = HealthPolicy { max_active: None, ..p };
            let c = config(AdmissionPolicy::Health(p.clone()));
            let mut state = ControllerState::default();
            let mut now = T0;
            for (lat, dt) in warmup {
                now += dt;
                tick(&c, &mut state, &with_health(now, lat, 0.0));
            }
            let before = state.health.as_ref().map_or(p.start_rate(), |s| s.rate);
            // Unhealthy readings, spaced so that each is past the settle window.
            let spacing = p.settle_ms.max(1000);
            let mut rate = before;
            for _ in 0..bad {
                now += spacing;
                rate = tick(&c, &mut state, &with_health(now, 1000.0, 0.5)).rate.unwrap();
            }
            let expected = (before * p.decrease.powi(bad as i32)).max(p.min_rate);
            prop_assert!((rate - expected).abs() <= 1e-9 * before.max(1.0), "{rate} vs {expected}");
            prop_assert!(rate < before || before <= p.min_rate);
            // Healthy again, with a long line: the rate climbs back to the maximum.
            let mut last = rate;
            for _ in 0..2000 {
                now += 1000;
                let r = tick(&c, &mut state, &with_health(now, 10.0, 0.0)).rate.unwrap();
                prop_assert!(r >= last);
                last = r;
                if r >= p.max_rate { break; }
            }
            prop_assert!(last >= p.max_rate, "stuck at {last} below {}", p.max_rate);
        }

        #[test]
        fn fixed_rate_admits_rate_times_time_within_the_burst(
            rate in 0.0f64..200.0,
            burst in 0u32..50,
            steps in proptest::collection::vec(1u64..MAX_TICK_MS, 1..100),
            from in 0usize..100,
            len in 1usize..100,
        ) {
            let c = config(fixed(rate, burst));
            let mut state = ControllerState::default();
            let mut now = T0;
            let mut serving = 0;
            let mut times = vec![now];
            let mut admits = vec![0];
            tick(&c, &mut state, &inputs(now, 0, 1 << 40, 0));
            for dt in steps {
                now += dt;
                let d = tick(&c, &mut state, &inputs(now, serving, 1 << 40, 0));
                serving += d.admit;
                times.push(now);
                admits.push(d.admit);
            }
            // Any window of ticks (a, b]: r·T − 1 < admitted ≤ r·T + burst.
            let a = from.min(times.len() - 1);
            let b = (a + len).min(times.len() - 1);
            let admitted: u64 = admits[a + 1..=b].iter().sum();
            let budget = rate * (times[b] - times[a]) as f64 / 1000.0;
            prop_assert!(admitted as f64 <= budget + f64::from(burst.max(1)) + 1e-6, "{admitted} vs {budget}");
            prop_assert!(admitted as f64 > budget - 1.0 - 1e-6, "{admitted} vs {budget}");
        }

        #[test]
        fn capacity_never_lets_active_exceed_the_cap(
            max_active in 0u32..500,
            steps in proptest::collection::vec((0u64..200, 0u64..100, 0u64..100), 1..100),
        ) {
            let c = config(AdmissionPolicy::Capacity { max_active });
            let mut state = ControllerState::default();
            let (mut now, mut serving, mut assigned) = (T0, 0u64, 0u64);
            // Admitted visitors first wait unclaimed, then claim; sessions end at random.
            let (mut unclaimed, mut active) = (0u64, 0u64);
            for (arrivals, claims, ends) in steps {
                now += 1000;
                assigned += arrivals;
                let claimed = claims.min(unclaimed);
                unclaimed -= claimed;
                active = active.saturating_sub(ends) + claimed;
                let d = tick(&c, &mut state, &TickInputs {
                    now_ms: now,
                    serving_pos: serving,
                    assigned,
                    active_sessions: active,
                    unclaimed_passed: unclaimed,
                    health: None,
                });
                serving += d.admit;
                unclaimed += d.admit;
                prop_assert!(active + unclaimed <= u64::from(max_active));
                prop_assert!(serving <= assigned);
            }
        }
    }
}
