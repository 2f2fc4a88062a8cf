//! `anteroom plan --rehearse`: the profile replayed, scaled down, against a running
//! coordinator (and its Redis), so the plan is checked, not trusted.
//!
//! The scaled profile is planned like any other; that plan is the prediction. A rehearsal
//! queue is created with its configuration (proof-of-work off: no edge issues challenges),
//! the load generator enqueues the predicted places open loop on the predicted schedule,
//! starting just after one of the coordinator's admission ticks, and the crowd
//! ([`crowd`]) plays the pages, the claims and the origin while sampling the queue. What is
//! exercised: the coordinator's public API (enqueue, token claim), its private API (queue
//! create and delete, status, session ends), its admission controller and Redis. Not the
//! edge (pages, proof-of-work, the status polls themselves) nor a real origin.

pub mod crowd;
pub mod scale;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde::Serialize;
use shared::wire::AssignResponse;

use super::planner::{self, Planned};
use super::profile::Profile;
use super::spread::{Spread, Summary};
use super::traffic;
use super::units::{count, secs};
use crate::admin::Admin;
use crowd::{Crowd, Joined, Roles};

/// The most places a rehearsal may enqueue: beyond it, lower `--scale`.
pub const MAX_PLACES: f64 = 200_000.0;
/// Places per second at the busiest second when `--scale` is left to the planner.
pub const AUTO_PEAK: f64 = 500.0;

/// How to rehearse.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The coordinator's public API the rehearsal's visitors use (host:port, plain HTTP).
    #[arg(long, env = "ANTEROOM_PUBLIC_ADDR", default_value = "127.0.0.1:8080")]
    pub public_addr: SocketAddr,
    /// Size of the crowd against the profile's (rates, concurrencies, the bots' cores); by
    /// default the busiest second brings 500 places.
    #[arg(long)]
    pub scale: Option<f64>,
    /// Time runs this many times faster (durations and sessions divided, rates multiplied).
    #[arg(long, default_value_t = 1.0)]
    pub speedup: f64,
    /// The edge key (64 hex), to sign the edge's client header for an edge-only coordinator.
    #[arg(long, env = "ANTEROOM_EDGE_KEY", hide_env_values = true)]
    pub edge_key: Option<String>,
}

/// Predicted against measured, at one time.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LinePoint {
    /// When the sample was taken, seconds from the start (rehearsal time).
    pub t_secs: f64,
    /// Positions waiting, predicted.
    pub predicted: f64,
    /// Positions waiting, measured (a status sample).
    pub measured: f64,
}

/// What a rehearsal found.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    /// The rehearsal queue (deleted afterwards).
    pub queue_id: String,
    /// Crowd scale.
    pub scale: f64,
    /// Time compression.
    pub speedup: f64,
    /// Which parts it exercised.
    pub exercised: String,
    /// Places enqueued.
    pub places: u64,
    /// The enqueues as the load generator measured them.
    pub enqueues: loadgen::Outcome,
    /// Claims and session ends.
    pub crowd: crowd::Tally,
    /// Whether the line emptied before the deadline.
    pub complete: bool,
    /// Time to be served, predicted (rehearsal time).
    pub predicted_waits: Summary,
    /// Time to be served, measured.
    pub measured_waits: Summary,
    /// Longest line, predicted.
    pub predicted_line_peak: f64,
    /// Longest line, measured.
    pub measured_line_peak: f64,
    /// Line empty, predicted, seconds.
    pub predicted_empty_at: Option<f64>,
    /// Line empty, measured, seconds.
    pub measured_empty_at: Option<f64>,
    /// The line over time.
    pub line: Vec<LinePoint>,
}

const EXERCISED: &str = "coordinator public API (assign_queue_pos open loop, generate_token), private API (queue create and delete, status every 100 ms, update_token_status as the origin), the admission controller, Redis; not the edge (proof-of-work off, status polls computed, not sent) nor an origin";

/// Rehearses `profile` against the coordinator of `admin`.
pub async fn rehearse(
    profile: &Profile,
    args: &Options,
    admin: &Admin,
) -> anyhow::Result<Rehearsal> {
    ensure!(args.speedup.is_finite() && args.speedup > 0.0, "--speedup must be above 0");
    let requests = traffic::requests(&profile.traffic.curve)?;
    let peak = requests.iter().copied().fold(0.0, f64::max) * profile.traffic.new_visitor_share;
    let scale = args.scale.unwrap_or((AUTO_PEAK / (peak * args.speedup)).min(1.0));
    ensure!(scale.is_finite() && scale > 0.0, "--scale must be above 0");
    let queue_id = slug(&profile.name);
    let small = scale::profile(profile, scale, args.speedup, &queue_id);
    small.validate().context("the scaled profile")?;
    let small_requests = scale::requests(&requests, scale, args.speedup);
    let planned = planner::plan_with(&small, &small_requests)?;
    let places = planned.timeline.arrivals.iter().sum::<f64>();
    ensure!(places <= MAX_PLACES, "the rehearsal would enqueue {places:.0} places; lower --scale");
    let mut body = planned.report.recommendation.queue.clone();
    body["pow_difficulty"] = 0.into();
    let q = admin.create_queue(&body).await?;
    let run = replay(&small, &small_requests, &planned, args, admin, &queue_id).await;
    let deleted = admin.delete_queue(q.id).await;
    let (enqueues, m) = run?;
    deleted?;
    crowd::check(&m.tally)?;
    ensure!(
        enqueues.failures() == 0,
        "{} enqueues failed during the rehearsal: {:?}",
        enqueues.failures(),
        enqueues.statuses
    );
    Ok(compare(&planned, queue_id, scale, args.speedup, enqueues, m))
}

/// A rehearsal queue's slug: the profile's name (cut to fit) and a number from the clock.
fn slug(name: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000);
    let head: String = name.chars().take(21).collect();
    format!("{head}-r{n}")
}

/// Enqueues on the plan's schedule and runs the crowd until the line is empty.
async fn replay(
    small: &Profile,
    small_requests: &[f64],
    planned: &Planned,
    args: &Options,
    admin: &Admin,
    queue_id: &str,
) -> anyhow::Result<(loadgen::Outcome, crowd::Measurement)> {
    let roles = roles(small, small_requests, planned);
    let expected = roles.assigned.last().copied().unwrap_or(0.0) as u64;
    let deadline =
        planned.report.outcome.empty_at_secs.unwrap_or(planned.timeline.line.len() as u64) as f64
            * 1.5
            + 30.0;
    after_a_tick(admin, queue_id).await?;
    let start = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let plan = enqueue_plan(args, queue_id, &roles.assigned, tx, start)?;
    let load = tokio::spawn(loadgen::run(plan));
    let crowd =
        Crowd::new(start, roles, admin.clone(), queue_id.to_string(), claimer(args, queue_id)?);
    let m = crowd.run(rx, expected, deadline).await?;
    let enqueues = load.await.context("the load generator stopped")??;
    Ok((enqueues, m))
}

/// Who claims and how long sessions last, as the plan of the scaled profile assumed.
fn roles(small: &Profile, small_requests: &[f64], planned: &Planned) -> Roles {
    let rec = &planned.report.recommendation;
    let arrivals = traffic::arrivals(small, small_requests, rec.pow.bot_places_cap);
    let cohorts = planner::cohorts(small, &arrivals);
    let mut assigned = vec![0.0];
    let mut sum = 0.0;
    for c in &cohorts {
        sum += c.places;
        assigned.push(sum.round());
    }
    Roles {
        assigned,
        claim_share: cohorts.iter().map(|c| c.claimers / c.places.max(f64::MIN_POSITIVE)).collect(),
        sessions: small.visitors.session.points(f64::from(rec.token_validity_secs)),
        lag: planned.report.measured.sync_lag_secs,
    }
}

/// Waits for the coordinator's second admission tick on the new queue (the first accounts
/// for no time), so the arrivals start in phase with the simulation's ticks. If the first
/// one was missed, the phase is left to chance.
async fn after_a_tick(admin: &Admin, queue_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if admin.status(queue_id).await?.last_decision.is_some_and(|d| d.dt_ms > 0) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the coordinator's admission controller did not tick for {queue_id} within 15 s")
}

/// The open-loop enqueues: place `j` at the moment the plan's cumulative arrivals pass it.
fn enqueue_plan(
    args: &Options,
    queue_id: &str,
    assigned: &[f64],
    tx: tokio::sync::mpsc::UnboundedSender<Joined>,
    start: Instant,
) -> anyhow::Result<loadgen::Plan> {
    let total = assigned.last().copied().unwrap_or(0.0);
    let cum = assigned.to_vec();
    let schedule: loadgen::Schedule = Arc::new(move |j| {
        let x = j as f64 + 0.5;
        (x < total).then(|| {
            let c = cum.partition_point(|&a| a <= x).saturating_sub(1);
            let frac = (x - cum[c]) / (cum[c + 1] - cum[c]);
            Duration::from_secs_f64(c as f64 + frac)
        })
    });
    let key = EdgeKey::of(args)?;
    let form = format!("queue_id={queue_id}");
    let make: loadgen::MakeCall = Arc::new(move |_| {
        let call = loadgen::Call::form("/assign_queue_pos", form.clone());
        Some(match key.header() {
            Some((name, value)) => call.header(name, value),
            None => call,
        })
    });
    let inspect: loadgen::Inspect = Arc::new(move |_, status, body, _, end| {
        let answer =
            serde_json::from_slice::<AssignResponse>(body).ok().filter(|_| status.is_success());
        if let Some((a, position)) = answer.and_then(|a| a.position.map(|p| (a, p))) {
            let at = end.saturating_duration_since(start).as_secs_f64();
            let _ = tx.send(Joined { position, request_id: a.request_id, at });
        }
    });
    let peak = assigned.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Ok(loadgen::Plan {
        addr: args.public_addr,
        connections: ((peak / 50.0).ceil() as usize).clamp(4, 64),
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(total as u64),
        schedule: Some(schedule),
        make,
        inspect: Some(inspect),
    })
}

/// The edge key, when the coordinator is edge-only: calls then carry the edge's signed
/// client header.
#[derive(Clone, Copy)]
struct EdgeKey(Option<[u8; 32]>);

impl EdgeKey {
    fn of(args: &Options) -> anyhow::Result<EdgeKey> {
        let key = args.edge_key.as_deref().map(shared::hex::decode32);
        match key {
            Some(None) => bail!("--edge-key must be 64 hex characters"),
            Some(k) => Ok(EdgeKey(k)),
            None => Ok(EdgeKey(None)),
        }
    }

    /// The header to add, signed now.
    fn header(&self) -> Option<(&'static str, String)> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let ms = now.map_or(0, |d| d.as_millis() as u64);
        self.0
            .map(|k| (shared::sync::CLIENT_HEADER, shared::sync::sign_client(&k, "127.0.0.1", ms)))
    }
}

/// The token claim a visitor sends, as a request ready to go.
fn claimer(args: &Options, queue_id: &str) -> anyhow::Result<crowd::Claim> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
    let key = EdgeKey::of(args)?;
    let url = format!("http://{}/generate_token", args.public_addr);
    let q = queue_id.to_string();
    Ok(Box::new(move |rid: &str| {
        let req = client.post(&url).form(&[("queue_id", q.as_str()), ("request_id", rid)]);
        match key.header() {
            Some((name, value)) => req.header(name, value),
            None => req,
        }
    }))
}

/// The predicted line at any time: positions given (spread evenly over each second) minus
/// the serving position after the last tick.
struct PredictedLine {
    /// Positions given before each second.
    given: Vec<f64>,
    /// Serving position after each tick.
    serving: Vec<f64>,
}

impl PredictedLine {
    fn of(tl: &super::sim::Timeline) -> Self {
        let sums = |v: &[f64], first: bool| {
            let mut acc = 0.0;
            let mut out: Vec<f64> = v
                .iter()
                .map(|x| {
                    acc += x;
                    acc
                })
                .collect();
            if first {
                out.insert(0, 0.0);
            }
            out
        };
        PredictedLine { given: sums(&tl.arrivals, true), serving: sums(&tl.admitted, false) }
    }

    fn at(&self, t: f64) -> f64 {
        let i = (t.max(0.0).floor() as usize).min(self.serving.len().saturating_sub(1));
        let given = match (self.given.get(i), self.given.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (t - i as f64).clamp(0.0, 1.0),
            _ => self.given.last().copied().unwrap_or(0.0),
        };
        (given - self.serving.get(i).copied().unwrap_or(0.0)).max(0.0)
    }

    /// The longest it gets: just before a tick.
    fn peak(&self) -> f64 {
        (0..self.serving.len()).map(|i| self.at(i as f64 + 1.0 - 1e-9)).fold(0.0, f64::max)
    }
}

/// Predicted against measured.
fn compare(
    planned: &Planned,
    queue_id: String,
    scale: f64,
    speedup: f64,
    enqueues: loadgen::Outcome,
    m: crowd::Measurement,
) -> Rehearsal {
    let tl = &planned.timeline;
    let predicted = PredictedLine::of(tl);
    let mut measured = Spread::default();
    for &w in &m.waits {
        measured.add(1.0, w, w);
    }
    let expected = tl.arrivals.iter().sum::<f64>() as u64;
    let waiting = |s: &crowd::Sample| s.assigned.saturating_sub(s.serving) as f64;
    let measured_empty_at =
        m.samples.iter().find(|s| s.serving >= expected && s.assigned >= expected).map(|s| s.t);
    let end = measured_empty_at.unwrap_or(m.samples.last().map_or(0.0, |s| s.t));
    let line = (1..=12)
        .map(|k| {
            let t = end * k as f64 / 12.0;
            let i = m.samples.partition_point(|s| s.t <= t).saturating_sub(1);
            let (t, measured) = m.samples.get(i).map_or((t, 0.0), |s| (s.t, waiting(s)));
            LinePoint { t_secs: t, predicted: predicted.at(t), measured }
        })
        .collect();
    Rehearsal {
        queue_id,
        scale,
        speedup,
        exercised: EXERCISED.into(),
        places: enqueues.ok,
        enqueues,
        crowd: m.tally,
        complete: m.complete,
        predicted_waits: tl.waits.summary(),
        measured_waits: measured.summary(),
        predicted_line_peak: predicted.peak(),
        measured_line_peak: m.samples.iter().map(waiting).fold(0.0, f64::max),
        predicted_empty_at: tl.empty_at.map(|t| t as f64),
        measured_empty_at,
        line,
    }
}

impl Rehearsal {
    /// Predicted and measured side by side.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Rehearsal at scale {} and {}x speed (queue {}, deleted after); times are rehearsal time:",
            self.scale, self.speedup, self.queue_id
        );
        let _ = writeln!(
            s,
            "  {} places enqueued open loop, {} tokens claimed, {} sessions ended by the origin{}",
            count(self.places as f64),
            count(self.crowd.claims as f64),
            count(self.crowd.sessions_ended as f64),
            if self.complete { "" } else { "; NOT COMPLETE: the line did not empty in time" }
        );
        let _ = writeln!(s, "  exercised: {}", self.exercised);
        let _ = writeln!(s, "  {:<24}{:>14}{:>14}{:>10}", "", "predicted", "measured", "diff");
        let (p, m) = (&self.predicted_waits, &self.measured_waits);
        for (name, a, b) in [
            ("wait p50", p.p50, m.p50),
            ("wait p90", p.p90, m.p90),
            ("wait p99", p.p99, m.p99),
            ("wait, the last", p.max, m.max),
        ] {
            let _ = writeln!(s, "  {name:<24}{:>14}{:>14}{:>10}", secs_1(a), secs_1(b), diff(a, b));
        }
        let _ = writeln!(
            s,
            "  {:<24}{:>14}{:>14}{:>10}",
            "line at its longest",
            count(self.predicted_line_peak),
            count(self.measured_line_peak),
            diff(self.predicted_line_peak, self.measured_line_peak)
        );
        let (pe, me) = (
            self.predicted_empty_at.unwrap_or(f64::NAN),
            self.measured_empty_at.unwrap_or(f64::NAN),
        );
        let _ = writeln!(
            s,
            "  {:<24}{:>14}{:>14}{:>10}",
            "line empty at",
            secs_1(pe),
            secs_1(me),
            diff(pe, me)
        );
        for l in &self.line {
            let _ = writeln!(
                s,
                "  {:<24}{:>14}{:>14}",
                format!("line at {}", secs(l.t_secs)),
                count(l.predicted),
                count(l.measured)
            );
        }
        s
    }
}

fn secs_1(x: f64) -> String {
    if x.is_finite() { format!("{x:.1} s") } else { "-".into() }
}

fn diff(predicted: f64, measured: f64) -> String {
    if predicted.abs() < 1e-9 || !measured.is_finite() || !predicted.is_finite() {
        return "-".into();
    }
    format!("{:+.1}%", (measured - predicted) / predicted * 100.0)
}
