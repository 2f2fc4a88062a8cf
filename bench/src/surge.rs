//! The surge: the seed's first profile scaled to this machine, open loop, with the history
//! recorded and checked (positions unique and contiguous, admission in position order,
//! serving never decreasing, active sessions never above the cap).
//!
//! By default the coordinator's own admission controller admits; with `--surge-by-harness`
//! the harness plays the controller instead: every tick it ends the sessions whose fixed checkout time is over, moves the
//! serving position towards `capacity × elapsed` without letting open sessions exceed the cap,
//! and claims the newly admitted tokens in position order.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Env, Seen, Tickets, create_queue, increment_serving, record_assigned};
use crate::procs::{ADMIN_KEY, Coordinator};
use crate::results::{Knobs, Surge};
use loadgen::{self as load, Call, Plan};

/// Requests per second of the seed's first profile.
pub const SEED_RPS: f64 = 500_000.0;
/// Checkouts per second of the seed's first profile.
pub const SEED_CAPACITY: f64 = 2_500.0;
/// Length of a checkout: the harness ends each session this long after its token.
const CHECKOUT: Duration = Duration::from_secs(2);
/// Admission tick.
const TICK: Duration = Duration::from_millis(100);

/// Sends calls concurrently (at most 64 at a time, one connection each) and returns each
/// answer's status in order (`None`: no answer).
async fn all_at_once(
    addr: std::net::SocketAddr,
    calls: Vec<Call>,
) -> Vec<Option<hyper::StatusCode>> {
    let mut out = Vec::with_capacity(calls.len());
    for chunk in calls.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for (i, call) in chunk.iter().cloned().enumerate() {
            set.spawn(async move { (i, load::once(addr, &call).await.ok().map(|r| r.0)) });
        }
        let mut got = vec![None; chunk.len()];
        while let Some(r) = set.join_next().await {
            if let Ok((i, st)) = r {
                got[i] = st;
            }
        }
        out.extend(got);
    }
    out
}

/// Counts windows of at least 1 s where serving grew by more than capacity × (window + 1 s)
/// + 1 (the controller ticks once a second, the harness samples every 100 ms).
fn rate_violations(history: &[(f64, u64)], capacity: f64) -> u64 {
    let mut bad = 0;
    let mut j = 0;
    for (i, &(t, s)) in history.iter().enumerate() {
        j = j.max(i);
        while j < history.len() && history[j].0 < t + 1.0 {
            j += 1;
        }
        if let Some(&(t2, s2)) = history.get(j)
            && s2.saturating_sub(s) as f64 > capacity * (t2 - t + 1.0) + 1.0
        {
            bad += 1;
        }
    }
    bad
}

/// Counts poll pairs (a ended before b began) where b saw less than a, and the largest drop.
fn decreases(mut polls: Vec<(Instant, Instant, u64)>) -> (u64, u64) {
    let mut by_end: Vec<(Instant, u64)> = polls.iter().map(|p| (p.1, p.2)).collect();
    by_end.sort_by_key(|p| p.0);
    polls.sort_by_key(|p| p.0);
    let (mut j, mut max, mut bad, mut worst) = (0, 0, 0, 0);
    for (start, _, v) in polls {
        while j < by_end.len() && by_end[j].0 < start {
            max = max.max(by_end[j].1);
            j += 1;
        }
        if v < max {
            bad += 1;
            worst = worst.max(max - v);
        }
    }
    (bad, worst)
}

/// Runs the surge against the environment's coordinator.
pub async fn surge(
    env: &Env,
    knobs: &Knobs,
    bare_rps: f64,
    by_coordinator: bool,
) -> anyhow::Result<Surge> {
    let z = Sizes::new(knobs, bare_rps);
    create_queue(&env.coord, "surge", &z.queue_settings(by_coordinator)).await?;
    let seen = Arc::new(Seen::new(z.max_pos));
    let tickets: Tickets = Arc::new(Mutex::new(vec![None; z.admit_max + 2]));
    let polls_log: PollLog = Arc::new(Mutex::new(Vec::new()));
    let arrivals = arrivals(env, &z, record_assigned(seen.clone(), tickets.clone(), None));
    let polls = polls(env, &z, polls_log.clone());
    let a = tokio::spawn(load::run(arrivals));
    let p = tokio::spawn(load::run(polls));

    // The admission controller the coordinator does not have yet.
    let mut ctl = Controller::start(&env.coord, z, by_coordinator, bare_rps, tickets).await?;
    while ctl.start.elapsed().as_secs_f64() < z.secs {
        ctl.tick().await?;
    }
    let mut out = ctl.result();
    out.arrivals = a.await??;
    out.polls = p.await??;
    let assigned = out.arrivals.ok;
    out.dup_positions =
        seen.dups.load(Ordering::Relaxed) + seen.out_of_range.load(Ordering::Relaxed);
    out.missing_positions = seen.missing(assigned);
    let log = std::mem::take(
        &mut *polls_log.lock().map_err(|_| anyhow::anyhow!("poll log lock poisoned"))?,
    );
    (out.serving_decreases, out.serving_drop) = decreases(log);
    Ok(out)
}

/// Every `serving_pos` poll answered: when it was sent, when it ended, what it said.
type PollLog = Arc<Mutex<Vec<(Instant, Instant, u64)>>>;

/// The surge's sizes, all scaled from the bare-axum rate.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Scale factor s = bare ÷ 500,000.
    scale: f64,
    /// Offered requests per second (arrivals plus polls).
    offered: f64,
    /// Admissions per second.
    capacity: f64,
    /// Seconds of load.
    secs: f64,
    /// The cap on open sessions: capacity × checkout, rounded up.
    cap: u64,
    /// Upper bound on the arrivals (and so on the positions given).
    max_pos: u64,
    /// Upper bound on admissions over the run (the ticket slots).
    admit_max: usize,
    /// Connections of each stream.
    conns: usize,
}

impl Sizes {
    /// The sizes for a machine whose bare axum serves `bare_rps`.
    fn new(knobs: &Knobs, bare_rps: f64) -> Self {
        let scale = bare_rps / SEED_RPS;
        let offered = SEED_RPS * scale;
        let capacity = SEED_CAPACITY * scale;
        let secs = knobs.surge_secs;
        Sizes {
            scale,
            offered,
            capacity,
            secs,
            cap: (capacity * CHECKOUT.as_secs_f64()).ceil() as u64,
            max_pos: (offered * secs) as u64 + 1,
            admit_max: (capacity * (secs + 5.0)) as usize + 16,
            conns: if knobs.secs < 2.0 { 64 } else { 512 },
        }
    }

    /// The queue's settings after its id: the token validity and, when the coordinator
    /// admits, its fixed-rate controller with the session cap.
    fn queue_settings(&self, by_coordinator: bool) -> String {
        let (capacity, cap) = (self.capacity, self.cap);
        let admission = if by_coordinator {
            format!(
                r#","enable_queue_position_expiry":true,"position_expiry_second":600,"admission":{{"policy":{{"strategy":"fixed_rate","rate_per_sec":{capacity:.3},"burst":0,"max_active":{cap}}}}}"#
            )
        } else {
            String::new()
        };
        format!(r#","token_validity_second":60{admission}"#)
    }
}

/// Half the offered load: `assign_queue_pos`, open loop, each answer shown to `inspect`.
fn arrivals(env: &Env, z: &Sizes, inspect: load::Inspect) -> Plan {
    Plan {
        addr: env.coord.public,
        connections: z.conns,
        warmup: Duration::ZERO,
        duration: Some(Duration::from_secs_f64(z.secs)),
        max_requests: Some(z.max_pos),
        schedule: Some(load::steady(z.offered / 2.0)),
        make: Arc::new(|_| Some(Call::form("/assign_queue_pos", "queue_id=surge"))),
        inspect: Some(inspect),
    }
}

/// The other half: `serving_pos` polls, open loop, each answer logged with its times.
fn polls(env: &Env, z: &Sizes, log: PollLog) -> Plan {
    Plan {
        addr: env.coord.public,
        connections: z.conns,
        warmup: Duration::ZERO,
        duration: Some(Duration::from_secs_f64(z.secs)),
        max_requests: Some(z.max_pos),
        schedule: Some(load::steady(z.offered / 2.0)),
        make: Arc::new(|_| Some(Call::get("/serving_pos/surge"))),
        inspect: Some(Arc::new(move |_i, status, body, t0, t1| {
            if !status.is_success() {
                return;
            }
            let v = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("position").and_then(serde_json::Value::as_u64));
            if let (Some(v), Ok(mut l)) = (v, log.lock()) {
                l.push((t0, t1, v));
            }
        })),
    }
}

/// The harness's side of the surge, once per tick: it ends the sessions whose checkout is
/// over, admits (or follows the coordinator's admissions) and claims the tokens in position
/// order, probes that nobody further back is admitted, and samples the open sessions.
struct Controller<'a> {
    coord: &'a Coordinator,
    z: Sizes,
    by_coordinator: bool,
    tickets: Tickets,
    /// When the load started.
    start: Instant,
    /// What is counted along the way.
    out: Surge,
    /// The serving position up to which the harness has admitted.
    serving: u64,
    /// (seconds since start, serving position) as the harness saw or set it.
    history: Vec<(f64, u64)>,
    /// Positions whose token the harness holds, so a retried range is not claimed twice.
    done: HashSet<u64>,
    /// The coordinator's serving position as last read (coordinator mode).
    coord_serving: u64,
    /// Open sessions: when each one's checkout is over, and its position.
    ending: VecDeque<(Instant, u64)>,
    /// The keep-alive connection of the probes.
    public: load::Sender,
}

impl<'a> Controller<'a> {
    /// Starts the clock and opens the probes' connection.
    async fn start(
        coord: &'a Coordinator,
        z: Sizes,
        by_coordinator: bool,
        bare_rps: f64,
        tickets: Tickets,
    ) -> anyhow::Result<Self> {
        let start = Instant::now();
        let out = Surge {
            bare_rps,
            scale: z.scale,
            offered_rps: z.offered,
            capacity: z.capacity,
            secs: z.secs,
            cap: z.cap,
            by_coordinator,
            ..Surge::default()
        };
        let public = load::connect(coord.public).await?;
        Ok(Controller {
            coord,
            z,
            by_coordinator,
            tickets,
            start,
            out,
            serving: 0,
            history: Vec::new(),
            done: HashSet::new(),
            coord_serving: 0,
            ending: VecDeque::new(),
            public,
        })
    }

    /// The ticket of place `p`, once its arrival has been answered.
    fn ticket(&self, p: u64) -> Option<String> {
        self.tickets.lock().ok().and_then(|t| t.get(usize::try_from(p).ok()?).cloned().flatten())
    }

    /// One tick of the controller.
    async fn tick(&mut self) -> anyhow::Result<()> {
        tokio::time::sleep(TICK).await;
        let elapsed = self.start.elapsed().as_secs_f64().min(self.z.secs);
        self.end_sessions().await;
        let target = self.target(elapsed).await?;
        self.admit(target).await?;
        self.probe().await;
        self.sample_active().await;
        Ok(())
    }

    /// Ends the sessions whose checkout is over (`update_token_status` 1).
    async fn end_sessions(&mut self) {
        let mut due = Vec::new();
        while self.ending.front().is_some_and(|e| e.0 <= Instant::now()) {
            let Some((_, pos)) = self.ending.pop_front() else {
                break;
            };
            due.push(pos);
        }
        let calls: Vec<Call> = due
            .iter()
            .filter_map(|p| self.ticket(*p))
            .map(|t| {
                Call::form(
                    "/api/queue/update_token_status",
                    format!("queue_id=surge&request_id={t}&status=1"),
                )
                .bearer(ADMIN_KEY)
            })
            .collect();
        for r in all_at_once(self.coord.admin, calls).await {
            if !r.is_some_and(|st| st.is_success()) {
                self.out.token_failures += 1;
            }
        }
    }

    /// Where to serve up to this tick, before looking at the tickets held.
    async fn target(&mut self, elapsed: f64) -> anyhow::Result<u64> {
        // Serve only places whose tickets the harness holds (arrived and answered).
        // Admit at the capacity rate, and never more than the cap of open sessions.
        let room = self.out.cap.saturating_sub(self.ending.len() as u64);
        let admit_max = self.z.admit_max as u64;
        if !self.by_coordinator {
            let at_rate = (self.z.capacity * elapsed) as u64;
            return Ok(at_rate.min(admit_max).min(self.serving + room));
        }
        // The coordinator admits; follow its serving position and claim up to it.
        let (st, body) = load::once(self.coord.public, &Call::get("/serving_pos/surge")).await?;
        let seen_serving = if st.is_success() {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("position").and_then(serde_json::Value::as_u64))
                .unwrap_or(0)
        } else {
            0
        };
        self.history.push((self.start.elapsed().as_secs_f64(), seen_serving));
        self.coord_serving = seen_serving;
        Ok(seen_serving.min(admit_max))
    }

    /// Serves up to `target`, lowered to the last place whose ticket the harness holds: moves
    /// the serving position (harness mode) and claims the new places' tokens.
    async fn admit(&mut self, mut target: u64) -> anyhow::Result<()> {
        while target > self.serving && self.ticket(target).is_none() {
            target -= 1;
        }
        if target <= self.serving {
            return Ok(());
        }
        if !self.by_coordinator {
            let s = increment_serving(self.coord, "surge", target - self.serving).await?;
            anyhow::ensure!(s == target, "serving moved by someone else: {s} != {target}");
            self.history.push((self.start.elapsed().as_secs_f64(), s));
        }
        let claimed_upto = self.claim(target).await;
        self.serving = if self.by_coordinator { claimed_upto } else { target };
        Ok(())
    }

    /// Claims the tokens of places `serving + 1..=target` not held yet, in position order;
    /// returns the last place claimed before the first one that was not.
    async fn claim(&mut self, target: u64) -> u64 {
        let mut admitted = Vec::new();
        let mut calls = Vec::new();
        for pos in self.serving + 1..=target {
            if self.done.contains(&pos) {
                continue;
            }
            match self.ticket(pos) {
                Some(t) => {
                    admitted.push(pos);
                    calls.push(Call::form(
                        "/generate_token",
                        format!("queue_id=surge&request_id={t}"),
                    ));
                }
                None => self.out.token_failures += 1,
            }
        }
        let answers = all_at_once(self.coord.public, calls).await;
        let mut claimed_upto = self.serving;
        let mut blocked = false;
        for (pos, r) in admitted.iter().zip(answers) {
            if r == Some(hyper::StatusCode::OK) {
                self.done.insert(*pos);
                self.out.admitted += 1;
                self.ending.push_back((Instant::now() + CHECKOUT, *pos));
                if !blocked {
                    claimed_upto = *pos;
                }
            } else if self.by_coordinator && r == Some(hyper::StatusCode::ACCEPTED) {
                // Admitted but the session cap is full: claim again next tick.
                self.out.deferred += 1;
                blocked = true;
            } else {
                self.out.token_failures += 1;
                blocked = true;
            }
        }
        claimed_upto
    }

    /// Probe: the place right after the serving one must still be queued (202).
    async fn probe(&mut self) {
        // In coordinator mode the controller may admit between a read and the probe, so probe
        // beyond two of its ticks.
        let probe = if self.by_coordinator {
            self.coord_serving + (2.0 * self.z.capacity).ceil() as u64 + 1
        } else {
            self.serving + 1
        };
        if let Some(t) = self.ticket(probe) {
            let call = Call::form("/generate_token", format!("queue_id=surge&request_id={t}"));
            self.out.probes += 1;
            if let Ok((st, _)) = load::send(&mut self.public, &call).await
                && st == hyper::StatusCode::OK
            {
                self.out.early_grants += 1;
            }
        }
    }

    /// Samples the open sessions (`active_token_num`) against the cap.
    async fn sample_active(&mut self) {
        let call = Call::get("/api/queue/surge/active_token_num").bearer(ADMIN_KEY);
        if let Ok((st, body)) = load::once(self.coord.admin, &call).await
            && st.is_success()
            && let Some(n) = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("active_num").and_then(serde_json::Value::as_u64))
        {
            self.out.max_active = self.out.max_active.max(n);
            if n > self.out.cap {
                self.out.active_over_cap += 1;
            }
        }
    }

    /// What the controller counted, with the final serving position and the rate check of
    /// its history.
    fn result(&self) -> Surge {
        let mut out = self.out.clone();
        out.serving = self.serving;
        out.rate_violations = rate_violations(&self.history, self.z.capacity);
        out
    }
}
