//! The surge: the seed's first profile scaled to this machine, open loop, with the history
//! recorded and checked (positions unique and contiguous, admission in position order,
//! serving never decreasing, active sessions never above the cap).
//!
//! Until the coordinator admits by itself (issue 4), the harness plays the admission
//! controller: every tick it ends the sessions whose fixed checkout time is over, moves the
//! serving position towards `capacity × elapsed` without letting open sessions exceed the cap,
//! and claims the newly admitted tokens in position order.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::load::{self, Call, Outcome, Plan};
use crate::procs::ADMIN_KEY;
use crate::scenario::{Env, Knobs, Seen, create_queue, increment_serving};

/// Requests per second of the seed's first profile.
pub const SEED_RPS: f64 = 500_000.0;
/// Checkouts per second of the seed's first profile.
pub const SEED_CAPACITY: f64 = 2_500.0;
/// Length of a checkout: the harness ends each session this long after its token.
const CHECKOUT: Duration = Duration::from_secs(2);
/// Admission tick.
const TICK: Duration = Duration::from_millis(100);

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
    let scale = bare_rps / SEED_RPS;
    let offered = SEED_RPS * scale;
    let capacity = SEED_CAPACITY * scale;
    let secs = knobs.surge_secs;
    let cap = (capacity * CHECKOUT.as_secs_f64()).ceil() as u64;
    let admission = if by_coordinator {
        format!(
            r#","enable_queue_position_expiry":true,"position_expiry_second":600,"admission":{{"policy":{{"strategy":"fixed_rate","rate_per_sec":{capacity:.3},"burst":0,"max_active":{cap}}}}}"#
        )
    } else {
        String::new()
    };
    create_queue(&env.coord, "surge", &format!(r#","token_validity_second":60{admission}"#))
        .await?;
    let max_pos = (offered * secs) as u64 + 1;
    let admit_max = (capacity * (secs + 5.0)) as usize + 16;
    let seen = Arc::new(Seen::new(max_pos));
    let tickets: Arc<Mutex<Vec<Option<String>>>> = Arc::new(Mutex::new(vec![None; admit_max + 2]));
    let polls_log: Arc<Mutex<Vec<(Instant, Instant, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let conns = if knobs.secs < 2.0 { 64 } else { 512 };
    let arrivals = {
        let seen = seen.clone();
        let tickets = tickets.clone();
        Plan {
            addr: env.coord.public,
            connections: conns,
            warmup: Duration::ZERO,
            duration: Some(Duration::from_secs_f64(secs)),
            max_requests: Some(max_pos),
            rate: Some(offered / 2.0),
            make: Arc::new(|_| Some(Call::form("/assign_queue_pos", "queue_id=surge"))),
            inspect: Some(Arc::new(move |_i, status, body, _t0, _t1| {
                if !status.is_success() {
                    return;
                }
                #[derive(Deserialize)]
                struct Assigned {
                    request_id: String,
                    position: u64,
                }
                let Ok(a) = serde_json::from_slice::<Assigned>(body) else {
                    seen.out_of_range.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                seen.mark(a.position);
                if let Ok(mut t) = tickets.lock()
                    && let Some(slot) = usize::try_from(a.position).ok().and_then(|p| t.get_mut(p))
                {
                    *slot = Some(a.request_id);
                }
            })),
        }
    };
    let polls = {
        let log = polls_log.clone();
        Plan {
            addr: env.coord.public,
            connections: conns,
            warmup: Duration::ZERO,
            duration: Some(Duration::from_secs_f64(secs)),
            max_requests: Some(max_pos),
            rate: Some(offered / 2.0),
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
    };
    let a = tokio::spawn(load::run(arrivals));
    let p = tokio::spawn(load::run(polls));

    // The admission controller the coordinator does not have yet.
    let start = Instant::now();
    let mut out = Surge {
        bare_rps,
        scale,
        offered_rps: offered,
        capacity,
        secs,
        cap,
        by_coordinator,
        ..Surge::default()
    };
    let coord = &env.coord;
    let mut serving = 0u64;
    // (seconds since start, serving position) as the harness saw or set it.
    let mut history: Vec<(f64, u64)> = Vec::new();
    // Positions whose token the harness holds, so a retried range is not claimed twice.
    let mut done = std::collections::HashSet::new();
    // The coordinator's serving position as last read (coordinator mode).
    let mut coord_serving = 0u64;
    let mut ending: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut public = load::connect(coord.public).await?;
    let ticket = |p: u64| -> Option<String> {
        tickets.lock().ok().and_then(|t| t.get(usize::try_from(p).ok()?).cloned().flatten())
    };
    while start.elapsed().as_secs_f64() < secs {
        tokio::time::sleep(TICK).await;
        let elapsed = start.elapsed().as_secs_f64().min(secs);
        // End the sessions whose checkout is over.
        let mut due = Vec::new();
        while ending.front().is_some_and(|e| e.0 <= Instant::now()) {
            let Some((_, pos)) = ending.pop_front() else {
                break;
            };
            due.push(pos);
        }
        let calls: Vec<Call> = due
            .iter()
            .filter_map(|p| ticket(*p))
            .map(|t| {
                Call::form(
                    "/api/queue/update_token_status",
                    format!("queue_id=surge&request_id={t}&status=1"),
                )
                .bearer(ADMIN_KEY)
            })
            .collect();
        for r in all_at_once(coord.admin, calls).await {
            if !r.is_some_and(|st| st.is_success()) {
                out.token_failures += 1;
            }
        }
        // Serve only places whose tickets the harness holds (arrived and answered).
        // Admit at the capacity rate, and never more than the cap of open sessions.
        let room = out.cap.saturating_sub(ending.len() as u64);
        let mut target = if by_coordinator {
            // The coordinator admits; follow its serving position and claim up to it.
            let (st, body) = load::once(coord.public, &Call::get("/serving_pos/surge")).await?;
            let seen_serving = if st.is_success() {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("position").and_then(serde_json::Value::as_u64))
                    .unwrap_or(0)
            } else {
                0
            };
            history.push((start.elapsed().as_secs_f64(), seen_serving));
            coord_serving = seen_serving;
            seen_serving.min(admit_max as u64)
        } else {
            ((capacity * elapsed) as u64).min(admit_max as u64).min(serving + room)
        };
        while target > serving && ticket(target).is_none() {
            target -= 1;
        }
        if target > serving {
            if !by_coordinator {
                let s = increment_serving(coord, "surge", target - serving).await?;
                anyhow::ensure!(s == target, "serving moved by someone else: {s} != {target}");
                history.push((start.elapsed().as_secs_f64(), s));
            }
            let mut admitted = Vec::new();
            let mut calls = Vec::new();
            for pos in serving + 1..=target {
                if done.contains(&pos) {
                    continue;
                }
                match ticket(pos) {
                    Some(t) => {
                        admitted.push(pos);
                        calls.push(Call::form(
                            "/generate_token",
                            format!("queue_id=surge&request_id={t}"),
                        ));
                    }
                    None => out.token_failures += 1,
                }
            }
            let answers = all_at_once(coord.public, calls).await;
            let mut claimed_upto = serving;
            let mut blocked = false;
            for (pos, r) in admitted.iter().zip(answers) {
                if r == Some(hyper::StatusCode::OK) {
                    done.insert(*pos);
                    out.admitted += 1;
                    ending.push_back((Instant::now() + CHECKOUT, *pos));
                    if !blocked {
                        claimed_upto = *pos;
                    }
                } else if by_coordinator && r == Some(hyper::StatusCode::ACCEPTED) {
                    // Admitted but the session cap is full: claim again next tick.
                    out.deferred += 1;
                    blocked = true;
                } else {
                    out.token_failures += 1;
                    blocked = true;
                }
            }
            if by_coordinator {
                target = claimed_upto;
            }
            serving = target;
        }
        // Probe: the place right after the serving one must still be queued (202).
        // In coordinator mode the controller may admit between a read and the probe, so probe
        // beyond two of its ticks.
        let probe = if by_coordinator {
            coord_serving + (2.0 * capacity).ceil() as u64 + 1
        } else {
            serving + 1
        };
        if let Some(t) = ticket(probe) {
            let call = Call::form("/generate_token", format!("queue_id=surge&request_id={t}"));
            out.probes += 1;
            if let Ok((st, _)) = load::send(&mut public, &call).await
                && st == hyper::StatusCode::OK
            {
                out.early_grants += 1;
            }
        }
        let call = Call::get("/api/queue/surge/active_token_num").bearer(ADMIN_KEY);
        if let Ok((st, body)) = load::once(coord.admin, &call).await
            && st.is_success()
            && let Some(n) = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("active_num").and_then(serde_json::Value::as_u64))
        {
            out.max_active = out.max_active.max(n);
            if n > out.cap {
                out.active_over_cap += 1;
            }
        }
    }
    out.serving = serving;
    out.rate_violations = rate_violations(&history, capacity);
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
