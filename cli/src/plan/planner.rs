//! The planner: a validated profile in, the recommendation, the simulated sale and the
//! report out. The steps are the other modules' (arrivals, recommendation, simulation, loads,
//! report); this one only sequences them.

use anyhow::bail;
use shared::admission::AdmissionConfig;

use super::measured::Measured;
use super::profile::{MAX_SECS, Profile};
use super::report::{self, PlanReport};
use super::sim::{self, Cohort, Setup, Timeline};
use super::traffic::{self, Second};
use super::{parts, recommend};

/// A planned sale: the report and the simulation it came from.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Everything the plan answers.
    pub report: PlanReport,
    /// Second by second.
    pub timeline: Timeline,
}

/// Plans a sale.
pub fn plan(profile: &Profile) -> anyhow::Result<Planned> {
    profile.validate()?;
    plan_with(profile, &traffic::requests(&profile.traffic.curve)?)
}

/// Plans a (validated) profile with `requests` per second in place of its curve's.
pub fn plan_with(profile: &Profile, requests: &[f64]) -> anyhow::Result<Planned> {
    let measured = Measured::committed()?;
    let unpriced = traffic::arrivals(profile, requests, None);
    let peak = unpriced
        .iter()
        .copied()
        .max_by(|a, b| (a.humans + a.bots).total_cmp(&(b.humans + b.bots)))
        .unwrap_or_default();
    let sessions = profile.visitors.session.points(f64::from(recommend::token_validity(profile)));
    let mean_session = sessions.iter().sum::<f64>() / sessions.len().max(1) as f64;
    let rec = recommend::recommend(profile, &peak, mean_session)?;
    let arrivals = traffic::arrivals(profile, requests, rec.pow.bot_places_cap);
    let cohorts = cohorts(profile, &arrivals);
    let drain = drain_secs(&cohorts, &rec, mean_session)?;
    // The horizon also covers the cap's slots held by places nobody claims.
    let held = drain_secs(&cohorts, &rec, slot_hold_secs(&cohorts, &rec, mean_session))?;
    let admission = AdmissionConfig { policy: rec.policy.clone(), paused: false, draining: false };
    let setup = Setup {
        admission: &admission,
        expiry_secs: u64::from(rec.position_expiry_secs),
        sessions: &sessions,
        sync_lag_secs: measured.sync_lag_secs,
        horizon_secs: (cohorts.len() as f64 + 2.0 * drain.max(held) + 3600.0) as u64,
        reps: sim::reps_for(cohorts.len(), drain),
    };
    let timeline = sim::run(&cohorts, &setup);
    let loads = parts::loads(profile, &arrivals, &rec, &timeline, &measured);
    let report = report::build(profile, &arrivals, rec, &timeline, loads, measured);
    Ok(Planned { report, timeline })
}

/// Each second's places, claimers and polling pages: bots claim and poll; of the humans,
/// those who leave while waiting never claim and poll, on average, half their wait.
pub(crate) fn cohorts(p: &Profile, arrivals: &[Second]) -> Vec<Cohort> {
    let v = &p.visitors;
    let stay = 1.0 - v.abandon_while_waiting;
    arrivals
        .iter()
        .map(|s| Cohort {
            places: s.places(),
            claimers: s.bot_places + s.humans * stay * (1.0 - v.abandon_after_admission),
            pollers: s.bot_places + s.humans * (1.0 - v.abandon_while_waiting / 2.0),
        })
        .collect()
}

/// How long, on average, a session cap's slot stays taken per place admitted: a claimer's
/// session, or a place nobody claims until it expires (the cap counts those too). With a
/// small cap and visitors who leave, a horizon made from sessions alone ended before the line
/// did, and the plan then set the waits of the places served so far against the whole line.
fn slot_hold_secs(cohorts: &[Cohort], rec: &recommend::Recommendation, mean_session: f64) -> f64 {
    let places: f64 = cohorts.iter().map(|c| c.places).sum();
    let claimers: f64 = cohorts.iter().map(|c| c.claimers).sum();
    let claim = (claimers / places.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0);
    claim * mean_session + (1.0 - claim) * f64::from(rec.position_expiry_secs)
}

/// How long the whole line takes to serve at the planned rate, a cap's slot being held
/// `hold_secs` per place; an error past a week.
fn drain_secs(
    cohorts: &[Cohort],
    rec: &recommend::Recommendation,
    hold_secs: f64,
) -> anyhow::Result<f64> {
    let places: f64 = cohorts.iter().map(|c| c.places).sum();
    let rate = rec.effective_rate(hold_secs);
    let secs = places / rate;
    if secs > MAX_SECS {
        bail!(
            "at {rate:.1} visitors/s the {places:.0} places take {:.1} days to serve; the planner simulates at most 7 days",
            secs / 86_400.0
        );
    }
    Ok(secs)
}
