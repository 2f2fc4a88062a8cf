//! A plan's report: everything it answers in one serializable value, written as JSON and
//! rendered as HTML and text from the same data.

use std::collections::BTreeMap;

use serde::Serialize;
use shared::eta::EtaBand;

use super::measured::Measured;
use super::parts::{Loads, edge_at};
use super::profile::Profile;
use super::recommend::Recommendation;
use super::sim::Timeline;
use super::spread::Summary;
use super::traffic::Second;
use super::units::time_step;

/// Points of a committed chart at most: a week at a point per 14 minutes, a spike per second.
const MAX_POINTS: usize = 720;
/// Bins of the wait histogram.
const WAIT_BINS: usize = 60;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// What wrote it.
    pub generated_by: String,
    /// The profile as read.
    pub profile: Profile,
    /// The queue configuration and why.
    pub recommendation: Recommendation,
    /// What the sale looks like under it.
    pub outcome: Outcome,
    /// Every part's load and which limit binds first.
    pub loads: Loads,
    /// The measured figures the loads are priced with.
    pub measured: Measured,
    /// Time series for the charts.
    pub series: Series,
    /// How long visitors wait, binned.
    pub wait_histogram: Histogram,
}

/// What the sale looks like.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Places handed out.
    pub places: f64,
    /// Of them, held by bots.
    pub bot_places: f64,
    /// Bots that wanted a place but whose cores could not pay for one.
    pub bots_priced_out: f64,
    /// New visitors per second at the busiest second.
    pub peak_new_visitors_per_sec: f64,
    /// Positions waiting at the longest.
    pub line_peak: f64,
    /// When, seconds from the start.
    pub line_peak_at_secs: u64,
    /// The ETA band the back of the line was shown then.
    pub eta_at_peak: Option<EtaBand>,
    /// What the back of the line then actually waited, seconds.
    pub back_of_line_waited_secs: Option<f64>,
    /// Time from arrival to one's turn, over every position, seconds.
    pub waits: Summary,
    /// Time from one's turn to the page learning it (claimers), seconds.
    pub learn: Summary,
    /// When the line is empty after the last arrival, seconds from the start.
    pub empty_at_secs: Option<u64>,
    /// Mean admissions per second while anyone waited.
    pub admission_rate: f64,
    /// Controller ticks by what bounded them.
    pub ticks_limited_by: BTreeMap<String, u64>,
    /// Little's law over the sale: arrival rate × mean wait against the mean line.
    pub little: Little,
}

/// Little's law, L = λW, over the time until the line empties.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Little {
    /// Seconds considered.
    pub secs: f64,
    /// λ: places per second.
    pub arrival_rate: f64,
    /// W: mean wait, seconds.
    pub mean_wait_secs: f64,
    /// L: mean positions waiting.
    pub mean_line: f64,
}

/// Time series, each point the mean over `step_secs` seconds from `t_secs`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Series {
    /// Seconds per point.
    pub step_secs: usize,
    /// Start of each point, seconds.
    pub t_secs: Vec<f64>,
    /// Places handed out per second.
    pub arrivals: Vec<f64>,
    /// Admissions per second.
    pub admitted: Vec<f64>,
    /// Positions waiting.
    pub line: Vec<f64>,
    /// Open sessions.
    pub active: Vec<f64>,
    /// Edge requests per second.
    pub edge_rps: Vec<f64>,
    /// Status polls per second (at the edge).
    pub polls: Vec<f64>,
    /// Token claims per second.
    pub claims: Vec<f64>,
    /// The tightest downstream stage, visitors per second.
    pub limit_per_sec: f64,
}

/// A histogram of waits.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Histogram {
    /// Width of a bin, seconds.
    pub bin_secs: f64,
    /// Positions per bin.
    pub counts: Vec<f64>,
}

/// The report of a simulated sale.
pub fn build(
    profile: &Profile,
    arrivals: &[Second],
    rec: Recommendation,
    tl: &Timeline,
    loads: Loads,
    measured: Measured,
) -> PlanReport {
    let series = series(arrivals, &rec, tl);
    let max_wait = tl.waits.max();
    let bin_secs = time_step(max_wait / WAIT_BINS as f64);
    PlanReport {
        generated_by: format!("anteroom plan {}", env!("CARGO_PKG_VERSION")),
        profile: profile.clone(),
        outcome: outcome(arrivals, tl),
        recommendation: rec,
        loads,
        measured,
        series,
        wait_histogram: Histogram {
            bin_secs,
            counts: tl.waits.histogram(bin_secs, (max_wait / bin_secs).ceil().max(1.0) as usize),
        },
    }
}

fn outcome(arrivals: &[Second], tl: &Timeline) -> Outcome {
    let sum = |f: fn(&Second) -> f64| arrivals.iter().map(f).sum::<f64>();
    let busy = (0..tl.line.len()).filter(|&t| tl.line[t] > 0.0 || tl.admitted[t] > 0.0).count();
    Outcome {
        places: tl.arrivals.iter().sum(),
        bot_places: sum(|s| s.bot_places),
        bots_priced_out: sum(|s| s.bots - s.bot_places),
        peak_new_visitors_per_sec: arrivals.iter().map(|s| s.humans + s.bots).fold(0.0, f64::max),
        line_peak: tl.peak.line,
        line_peak_at_secs: tl.peak.at_secs,
        eta_at_peak: tl.peak.eta_shown,
        back_of_line_waited_secs: tl.peak.back_waited_secs,
        waits: tl.waits.summary(),
        learn: tl.learn.summary(),
        empty_at_secs: tl.empty_at,
        admission_rate: tl.admitted.iter().sum::<f64>() / busy.max(1) as f64,
        ticks_limited_by: tl.limited_by.clone(),
        little: little(tl),
    }
}

/// Little's law's three numbers over the seconds until the line emptied.
pub fn little(tl: &Timeline) -> Little {
    let secs = tl.empty_at.unwrap_or(tl.line.len() as u64).max(1) as usize;
    let places: f64 = tl.arrivals[..secs.min(tl.arrivals.len())].iter().sum();
    Little {
        secs: secs as f64,
        arrival_rate: places / secs as f64,
        mean_wait_secs: tl.waits.mean(),
        mean_line: tl.line[..secs.min(tl.line.len())].iter().sum::<f64>() / secs as f64,
    }
}

fn series(arrivals: &[Second], rec: &Recommendation, tl: &Timeline) -> Series {
    let len = tl.line.len();
    let step = len.div_ceil(MAX_POINTS).max(1);
    let pow_on = rec.pow.difficulty > 0;
    let edge: Vec<f64> = (0..len).map(|t| edge_at(arrivals, tl, pow_on, t).total).collect();
    let mean = |v: &[f64]| -> Vec<f64> {
        v.chunks(step).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()
    };
    Series {
        step_secs: step,
        t_secs: (0..len).step_by(step).map(|t| t as f64).collect(),
        arrivals: mean(&tl.arrivals),
        admitted: mean(&tl.admitted),
        line: mean(&tl.line),
        active: mean(&tl.active),
        edge_rps: mean(&edge),
        polls: mean(&tl.polls),
        claims: mean(&tl.claims),
        limit_per_sec: rec.tightest().visitors_per_sec,
    }
}
