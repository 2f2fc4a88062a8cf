//! The simulation behind a plan, one second per step, with the product's own parts:
//!
//! - the admission tick, `shared::admission::tick`, once a second as the coordinator runs it,
//!   with the line, the active sessions and the unclaimed places it would see;
//! - the rate estimate and ETA band, `shared::eta`, fed with every tick's admissions;
//! - the visitors' pages, polling at `shared::poll::next_poll_ms` for their distance to the
//!   front, which decides when an admitted visitor learns of their turn, claims it and starts
//!   a session (and so what a session cap and the edge see).
//!
//! Arrivals within a second are spread evenly over it, the serving position jumps at each
//! tick, and every position's wait is the time from its arrival to the tick that passes it.
//! The line is the mean over each second of positions given minus the serving position, so
//! its integral and the waits are the same area (Little's law holds by construction, which
//! the tests check). Each second's arrivals are followed as [`REPS`] representative pages.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Serialize;
use shared::admission::{AdmissionConfig, ControllerState, Limit, TickInputs, tick};
use shared::eta::{EtaBand, RateEstimate, eta};
use shared::poll::next_poll_ms;

use super::spread::Spread;

/// Representative pages per second of arrivals (fewer when the run is long, see
/// [`reps_for`]).
pub const REPS: usize = 32;
/// Budget of simulated polls, which bounds the planner's run time on long waits.
const POLL_BUDGET: f64 = 2e7;
/// Arbitrary unix time of the first tick: the law only uses differences.
const T0_MS: u64 = 1_000_000_000;

/// One second's arrivals as the simulation needs them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cohort {
    /// Places handed out.
    pub places: f64,
    /// Of them, the holders who will claim their turn.
    pub claimers: f64,
    /// Of them, the pages that poll while waiting (a visitor who leaves stops).
    pub pollers: f64,
}

/// The queue as configured, and how long to run.
#[derive(Debug, Clone)]
pub struct Setup<'a> {
    /// Admission strategy, as the queue would store it.
    pub admission: &'a AdmissionConfig,
    /// Unclaimed places expire this long after the serving position passes them, seconds.
    pub expiry_secs: u64,
    /// Equally likely session lengths, seconds.
    pub sessions: &'a [f64],
    /// How late the edge sees a new serving position, seconds.
    pub sync_lag_secs: f64,
    /// The run stops here if the line has not emptied.
    pub horizon_secs: u64,
    /// Representative pages per second of arrivals.
    pub reps: usize,
}

/// The line at its longest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Peak {
    /// When, seconds from the start.
    pub at_secs: u64,
    /// Positions waiting.
    pub line: f64,
    /// The ETA band the back of the line was shown then.
    pub eta_shown: Option<EtaBand>,
    /// How long the back of the line then actually waited, seconds.
    pub back_waited_secs: Option<f64>,
}

/// What happened, second by second, and the distributions over visitors.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Places handed out during each second.
    pub arrivals: Vec<f64>,
    /// Positions admitted by the tick at the start of each second.
    pub admitted: Vec<f64>,
    /// Mean positions waiting during each second.
    pub line: Vec<f64>,
    /// Active sessions at each tick.
    pub active: Vec<f64>,
    /// Passed but unclaimed places at each tick.
    pub unclaimed: Vec<f64>,
    /// Status polls during each second.
    pub polls: Vec<f64>,
    /// Token claims during each second.
    pub claims: Vec<f64>,
    /// Sessions ending (completed, abandoned or expired) during each second.
    pub session_ends: Vec<f64>,
    /// The measured admission rate after each tick (`shared::eta::RateEstimate`).
    pub rate_estimate: Vec<f64>,
    /// Wait of every position: arrival to the tick that passes it.
    pub waits: Spread,
    /// Time from being passed to the page learning it (claimers only).
    pub learn: Spread,
    /// First tick after the last arrival with nobody waiting, if within the horizon.
    pub empty_at: Option<u64>,
    /// The line at its longest.
    pub peak: Peak,
    /// Ticks by what bounded them.
    pub limited_by: BTreeMap<String, u64>,
}

/// How many representative pages per second of arrivals keep the run within the poll
/// budget, for a line expected to take `drain_secs` to serve.
pub fn reps_for(cohorts: usize, drain_secs: f64) -> usize {
    let polls_each = drain_secs / 30.0 + 4.0;
    ((POLL_BUDGET / (cohorts.max(1) as f64 * polls_each)) as usize).clamp(1, REPS)
}

/// A representative page: a slice of one second's arrivals at one position.
#[derive(Debug, Clone, Copy)]
struct Page {
    position: f64,
    seed: u32,
    pollers: f64,
    claimers: f64,
    /// When it last polled (or joined), seconds: the visitors it stands for poll at phases
    /// spread over each interval, so its polls are counted spread over it.
    last: f64,
}

/// Runs the simulation.
pub fn run(cohorts: &[Cohort], setup: &Setup<'_>) -> Timeline {
    let mut sim = Sim::new(cohorts, setup);
    for t in 0..=setup.horizon_secs {
        sim.second(t);
        if sim.done(t) {
            break;
        }
    }
    sim.finish()
}

/// The state of a run.
struct Sim<'a> {
    cohorts: &'a [Cohort],
    setup: &'a Setup<'a>,
    /// Positions given before each second: `assigned[c]` at the tick of second `c`.
    assigned: Vec<f64>,
    /// The serving position after each tick.
    serving: Vec<u64>,
    pages: Vec<Page>,
    /// Due polls: (time in µs, page).
    due: BinaryHeap<Reverse<(u64, usize)>>,
    state: ControllerState,
    estimate: RateEstimate,
    /// Sessions ending during each second.
    ends: Vec<f64>,
    /// Dead places (never claimed) expiring at each second.
    expiring: Vec<f64>,
    claimed: f64,
    ended: f64,
    expired: f64,
    /// The cohort the next served position belongs to.
    walk: usize,
    out: Timeline,
}

impl<'a> Sim<'a> {
    fn new(cohorts: &'a [Cohort], setup: &'a Setup<'a>) -> Self {
        let mut assigned = Vec::with_capacity(cohorts.len() + 1);
        let mut sum = 0.0;
        assigned.push(0.0);
        for c in cohorts {
            sum += c.places;
            assigned.push(sum.round());
        }
        Sim {
            cohorts,
            setup,
            assigned,
            serving: Vec::new(),
            pages: Vec::new(),
            due: BinaryHeap::new(),
            state: ControllerState::default(),
            estimate: RateEstimate::default(),
            ends: Vec::new(),
            expiring: Vec::new(),
            claimed: 0.0,
            ended: 0.0,
            expired: 0.0,
            walk: 0,
            out: Timeline::default(),
        }
    }

    /// Positions given by time `t` (seconds, any real): linear within each second.
    fn assigned_at(&self, t: f64) -> f64 {
        let last = self.assigned.len() - 1;
        let c = (t.max(0.0).floor() as usize).min(last);
        if c == last {
            return self.assigned[last];
        }
        self.assigned[c] + (self.assigned[c + 1] - self.assigned[c]) * (t - c as f64)
    }

    /// The serving position the edge shows at time `t`.
    fn serving_seen(&self, t: f64) -> u64 {
        let at = t - self.setup.sync_lag_secs;
        if at < 0.0 { 0 } else { self.serving.get(at.floor() as usize).copied().unwrap_or(0) }
    }

    /// One second: the pages of the previous second's arrivals start, every poll before
    /// the tick runs, then the tick at `t`.
    fn second(&mut self, t: u64) {
        if t > 0 {
            self.join(t as usize - 1);
        }
        self.polls_before(t);
        self.tick(t);
    }

    /// Creates the representative pages of cohort `c` and schedules their first polls.
    fn join(&mut self, c: usize) {
        let Some(cohort) = self.cohorts.get(c) else { return };
        let n = self.assigned[c + 1] - self.assigned[c];
        if n <= 0.0 || cohort.places <= 0.0 {
            return;
        }
        let reps = self.setup.reps.max(1);
        for j in 0..reps {
            let frac = (j as f64 + 0.5) / reps as f64;
            let page = Page {
                position: self.assigned[c] + frac * n,
                seed: (c as u32).wrapping_mul(0x9E37_79B9) ^ (frac * f64::from(u32::MAX)) as u32,
                pollers: n * cohort.pollers / cohort.places / reps as f64,
                claimers: n * cohort.claimers / cohort.places / reps as f64,
                last: 0.0,
            };
            self.pages.push(page);
            self.schedule(self.pages.len() - 1, c as f64 + frac);
        }
    }

    /// Schedules page `i`'s next poll after one at `now` (seconds).
    fn schedule(&mut self, i: usize, now: f64) {
        self.pages[i].last = now;
        let p = self.pages[i];
        let ahead = (p.position - self.serving_seen(now) as f64).max(0.0).ceil() as u64;
        let at = now + next_poll_ms(Some(ahead), p.seed) as f64 / 1000.0;
        self.due.push(Reverse(((at * 1e6) as u64, i)));
    }

    /// Runs every poll due before `t`.
    fn polls_before(&mut self, t: u64) {
        while let Some(&Reverse((us, i))) = self.due.peek() {
            if us >= t * 1_000_000 {
                break;
            }
            self.due.pop();
            let now = us as f64 / 1e6;
            let p = self.pages[i];
            spread(&mut self.out.polls, p.last, now, p.pollers);
            if (self.serving_seen(now) as f64) < p.position {
                self.schedule(i, now);
            } else {
                self.learn(p, now);
            }
        }
    }

    /// A page learned of its turn at `now`: its claimers claim and start sessions.
    fn learn(&mut self, p: Page, now: f64) {
        if p.claimers <= 0.0 {
            return;
        }
        let passed = self.serving.partition_point(|&s| (s as f64) < p.position) as f64;
        // The visitors it stands for poll at every phase of its interval: they learn over one
        // interval from the moment the edge shows their turn.
        let from = passed + self.setup.sync_lag_secs;
        let to = from + (now - p.last);
        self.out.learn.add(p.claimers, from - passed, to - passed);
        spread(&mut self.out.claims, from, to, p.claimers);
        self.claimed += p.claimers;
        let share = p.claimers / self.setup.sessions.len().max(1) as f64;
        for &len in self.setup.sessions {
            add(&mut self.ends, (now + len) as usize, share);
        }
    }

    /// The tick at `t`, with the counters the coordinator would read.
    fn tick(&mut self, t: u64) {
        let ti = t as usize;
        if ti > 0 {
            self.ended += self.ends.get(ti - 1).copied().unwrap_or(0.0);
        }
        self.expired += self.expiring.get(ti).copied().unwrap_or(0.0);
        let serving = self.serving.last().copied().unwrap_or(0);
        let assigned = self.assigned[ti.min(self.assigned.len() - 1)] as u64;
        let active = (self.claimed - self.ended).max(0.0);
        let unclaimed = (serving as f64 - self.claimed - self.expired).max(0.0);
        let inputs = TickInputs {
            now_ms: T0_MS + t * 1000,
            serving_pos: serving,
            assigned,
            active_sessions: active.round() as u64,
            unclaimed_passed: unclaimed.round() as u64,
            health: None,
        };
        let d = tick(self.setup.admission, &mut self.state, &inputs);
        self.estimate.update(d.admit, d.dt_ms);
        *self.out.limited_by.entry(limit_name(d.limited_by).to_string()).or_default() += 1;
        let now = serving + d.admit;
        self.serving.push(now);
        self.pass(serving as f64, now as f64, t);
        self.record(t, d.admit as f64, active, unclaimed);
    }

    /// Positions `(from, to]` are passed by the tick at `t`: their waits, and the expiry of
    /// the places nobody will claim.
    fn pass(&mut self, from: f64, to: f64, t: u64) {
        let mut a = from;
        let mut dead = 0.0;
        while a < to && self.walk < self.cohorts.len() {
            let c = self.walk;
            let (lo, hi) = (self.assigned[c], self.assigned[c + 1]);
            if hi <= a {
                self.walk += 1;
                continue;
            }
            let b = to.min(hi);
            let n = hi - lo;
            let arrival = |x: f64| c as f64 + (x - lo) / n;
            self.out.waits.add(b - a, t as f64 - arrival(b), t as f64 - arrival(a));
            let k = &self.cohorts[c];
            dead += (b - a) * (1.0 - k.claimers / k.places.max(f64::MIN_POSITIVE));
            a = b;
        }
        add(&mut self.expiring, t as usize + self.setup.expiry_secs as usize, dead);
    }

    /// Appends the tick's numbers, and the line over the second that follows it.
    fn record(&mut self, t: u64, admitted: f64, active: f64, unclaimed: f64) {
        let ti = t as usize;
        let serving = self.serving[ti] as f64;
        let arrivals =
            self.cohorts.get(ti).map_or(0.0, |_| self.assigned[ti + 1] - self.assigned[ti]);
        let mean_given = (self.assigned_at(t as f64) + self.assigned_at(t as f64 + 1.0)) / 2.0;
        self.out.arrivals.push(arrivals);
        self.out.admitted.push(admitted);
        self.out.line.push(mean_given - serving);
        self.out.active.push(active);
        self.out.unclaimed.push(unclaimed);
        self.out.rate_estimate.push(self.estimate.rate);
        let waiting = self.assigned_at(t as f64) - serving;
        if waiting > self.out.peak.line {
            let eta_shown = eta(&self.estimate, waiting as u64);
            self.out.peak = Peak { at_secs: t, line: waiting, eta_shown, back_waited_secs: None };
        }
        if self.out.empty_at.is_none() && ti >= self.cohorts.len() && waiting <= 0.0 {
            self.out.empty_at = Some(t);
        }
    }

    /// Whether nothing is left to happen: every arrival in, served, and every page told.
    fn done(&self, t: u64) -> bool {
        t as usize >= self.cohorts.len() && self.out.empty_at.is_some() && self.due.is_empty()
    }

    fn finish(mut self) -> Timeline {
        let len = self.out.line.len();
        self.out.polls.resize(len, 0.0);
        self.out.claims.resize(len, 0.0);
        self.out.session_ends = std::mem::take(&mut self.ends);
        self.out.session_ends.resize(len, 0.0);
        let back = self.assigned_at(self.out.peak.at_secs as f64);
        let served = self.serving.partition_point(|&s| (s as f64) < back);
        if served < self.serving.len() && self.out.peak.line > 0.0 {
            self.out.peak.back_waited_secs = Some(served as f64 - self.out.peak.at_secs as f64);
        }
        self.out
    }
}

/// Adds `x` at index `i`, growing the vector.
fn add(v: &mut Vec<f64>, i: usize, x: f64) {
    if v.len() <= i {
        v.resize(i + 1, 0.0);
    }
    v[i] += x;
}

/// Adds `x` spread evenly over the seconds `[from, to)` (at `from` when they are equal).
fn spread(v: &mut Vec<f64>, from: f64, to: f64, x: f64) {
    if to - from < 1e-9 {
        add(v, from as usize, x);
        return;
    }
    let mut t = from;
    while t < to {
        let end = (t.floor() + 1.0).min(to);
        add(v, t as usize, x * (end - t) / (to - from));
        t = end;
    }
}

/// The JSON name of a tick's limit.
fn limit_name(l: Limit) -> &'static str {
    match l {
        Limit::Rate => "rate",
        Limit::Line => "line",
        Limit::Capacity => "session_cap",
        Limit::Manual => "manual",
        Limit::Paused => "paused",
        Limit::Draining => "draining",
    }
}
