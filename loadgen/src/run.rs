//! A run: N keep-alive connections sending a plan's calls, closed loop or open loop on a
//! schedule, bounded by a duration and/or a request count, latency in an HDR histogram.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::StatusCode;

use crate::call::{Call, Sender, connect, send};
use crate::outcome::Outcome;

/// Makes the `i`-th request of a run (`None`: no more work for this run).
pub type MakeCall = Arc<dyn Fn(u64) -> Option<Call> + Send + Sync>;

/// Sees every response of the measured window: request index, status, body, send time, end.
pub type Inspect = Arc<dyn Fn(u64, StatusCode, &Bytes, Instant, Instant) + Send + Sync>;

/// Open loop: when the `j`-th request of the run is due, counted from its start (`None`: the
/// schedule has no `j`-th request). Connection `k` of `n` sends requests `k`, `k + n`, ...
pub type Schedule = Arc<dyn Fn(u64) -> Option<Duration> + Send + Sync>;

/// A schedule of `rate` requests per second, evenly spaced (none for a rate that is not
/// above zero).
pub fn steady(rate: f64) -> Schedule {
    Arc::new(move |j| {
        (rate.is_finite() && rate > 0.0).then(|| Duration::from_secs_f64(j as f64 / rate))
    })
}

/// How to load a target.
#[derive(Clone)]
#[allow(missing_debug_implementations, reason = "holds closures that make and inspect calls")]
pub struct Plan {
    /// Where to send.
    pub addr: SocketAddr,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Unrecorded lead-in, so connection setup and cold caches do not count.
    pub warmup: Duration,
    /// Length of the measured window (`None`: until `max_requests` are done).
    pub duration: Option<Duration>,
    /// Upper bound on requests in the measured window.
    pub max_requests: Option<u64>,
    /// Open loop: when each request is due (latency counted from the scheduled time, so a
    /// stalled server is not hidden); a connection stops when the schedule runs out.
    /// `None`: closed loop.
    pub schedule: Option<Schedule>,
    /// The requests.
    pub make: MakeCall,
    /// Optional response hook.
    pub inspect: Option<Inspect>,
}

impl Plan {
    /// A closed-loop plan sending the same call for `duration` after `warmup`.
    pub fn fixed(
        addr: SocketAddr,
        connections: usize,
        warmup: Duration,
        duration: Duration,
        call: Call,
    ) -> Self {
        Plan {
            addr,
            connections,
            warmup,
            duration: Some(duration),
            max_requests: None,
            schedule: None,
            make: Arc::new(move |_| Some(call.clone())),
            inspect: None,
        }
    }
}

/// Largest latency the histograms track, microseconds (larger ones saturate).
const HIST_MAX_US: u64 = 120_000_000;

/// Per-connection tallies, merged at the end.
struct Tally {
    ok: u64,
    warm: u64,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    hist: Histogram<u64>,
    last_end: Option<Instant>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Tally {
            ok: 0,
            warm: 0,
            statuses: BTreeMap::new(),
            errors: 0,
            hist: Histogram::new_with_bounds(1, HIST_MAX_US, 2)?,
            last_end: None,
        })
    }
}

/// Per-request time limit inside a run; a request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a plan to completion and returns what it measured.
pub async fn run(plan: Plan) -> anyhow::Result<Outcome> {
    let senders = open_all(plan.addr, plan.connections).await?;
    let begin = Instant::now();
    let window_start = begin + plan.warmup;
    let window_end = plan.duration.map(|d| window_start + d);
    let shared = Arc::new(Shared {
        plan,
        seq: AtomicU64::new(0),
        done: AtomicBool::new(false),
        begin,
        window_start,
        window_end,
    });
    let mut set = tokio::task::JoinSet::new();
    for (k, sender) in senders.into_iter().enumerate() {
        set.spawn(drive(shared.clone(), k, sender));
    }
    let mut tallies = Vec::with_capacity(shared.plan.connections);
    while let Some(r) = set.join_next().await {
        tallies.push(r??);
    }
    summarize(&shared, tallies)
}

/// Opens every connection of a run first (128 at a time, so the accept backlog never
/// overflows).
async fn open_all(addr: SocketAddr, connections: usize) -> anyhow::Result<Vec<Sender>> {
    let mut senders = Vec::with_capacity(connections);
    for chunk in 0..connections.div_ceil(128) {
        let n = (connections - chunk * 128).min(128);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            set.spawn(async move { connect(addr).await });
        }
        while let Some(r) = set.join_next().await {
            senders.push(r??);
        }
    }
    Ok(senders)
}

/// What every connection of a run shares: the plan, the clock and the request counter.
struct Shared {
    plan: Plan,
    /// Index of the next request of the measured window.
    seq: AtomicU64,
    /// Set when the plan has no more work (its count reached, or `make` gave `None`).
    done: AtomicBool,
    /// When the run began (the open-loop schedule starts here).
    begin: Instant,
    /// End of the warm-up.
    window_start: Instant,
    /// End of the measured window, when it is bounded in time.
    window_end: Option<Instant>,
}

impl Shared {
    /// The index of a request sent now: the next one of the window, `u64::MAX` during the
    /// warm-up, or `None` once the plan's request count is reached (which ends the run).
    fn index(&self, in_window: bool) -> Option<u64> {
        if !in_window {
            // Warm-up calls reuse index 0's shape; nobody inspects them.
            return Some(u64::MAX);
        }
        let i = self.seq.fetch_add(1, Ordering::Relaxed);
        if self.plan.max_requests.is_some_and(|m| i >= m) {
            self.done.store(true, Ordering::Relaxed);
            return None;
        }
        Some(i)
    }
}

/// One connection of a run: its sender (reopened after a failure), schedule and tally.
struct Conn {
    shared: Arc<Shared>,
    sender: Option<Sender>,
    tally: Tally,
    /// Open loop: the schedule's index of this connection's next request.
    slot: u64,
    /// Requests made so far (the index given to `make` for warm-up calls).
    sent: u64,
}

/// Sends on the `k`-th connection until the window ends or the plan runs out of work.
async fn drive(shared: Arc<Shared>, k: usize, sender: Sender) -> anyhow::Result<Tally> {
    let mut conn =
        Conn { shared, sender: Some(sender), tally: Tally::new()?, slot: k as u64, sent: 0 };
    let sh = conn.shared.clone();
    loop {
        if sh.done.load(Ordering::Relaxed) {
            break;
        }
        let scheduled = match conn.pace().await {
            Due::Now => None,
            Due::At(at) => Some(at),
            Due::Never => break,
        };
        let now = Instant::now();
        if sh.window_end.is_some_and(|e| now >= e) {
            break;
        }
        let in_window = now >= sh.window_start;
        let Some(i) = sh.index(in_window) else {
            break;
        };
        let Some(call) = (sh.plan.make)(if in_window { i } else { conn.sent }) else {
            if in_window {
                sh.done.store(true, Ordering::Relaxed);
            }
            break;
        };
        conn.sent += 1;
        let t0 = scheduled.map_or(now, |at| at.min(now));
        let Some(s) = conn.connected(in_window).await else {
            continue;
        };
        let r = tokio::time::timeout(REQUEST_TIMEOUT, send(s, &call)).await;
        let end = Instant::now();
        let answer = match r {
            Ok(Ok(answer)) => Some(answer),
            _ => None,
        };
        if in_window {
            conn.record(i, answer, t0, end);
        } else {
            conn.warm(answer.is_some());
        }
    }
    Ok(conn.tally)
}

/// When a connection's next request goes out.
enum Due {
    /// Closed loop: at once.
    Now,
    /// Open loop: at its scheduled time, which has come.
    At(Instant),
    /// Open loop: the schedule has no more requests for this connection.
    Never,
}

impl Conn {
    /// Open loop: waits until this connection's next request is due.
    async fn pace(&mut self) -> Due {
        let Some(schedule) = &self.shared.plan.schedule else {
            return Due::Now;
        };
        let Some(offset) = schedule(self.slot) else {
            return Due::Never;
        };
        self.slot += self.shared.plan.connections as u64;
        let at = self.shared.begin + offset;
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        Due::At(at)
    }

    /// The sender, reconnecting after a failure; `None` (after a short pause, with an error
    /// counted inside the window) when the connection cannot be opened.
    async fn connected(&mut self, in_window: bool) -> Option<&mut Sender> {
        if self.sender.is_none() {
            match connect(self.shared.plan.addr).await {
                Ok(s) => self.sender = Some(s),
                Err(_) => {
                    if in_window {
                        self.tally.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    return None;
                }
            }
        }
        self.sender.as_mut()
    }

    /// Counts a warm-up answer; a failed one drops the connection.
    fn warm(&mut self, answered: bool) {
        if answered {
            self.tally.warm += 1;
        } else {
            self.sender = None;
        }
    }

    /// Records the `i`-th answer of the window (`None`: a transport error or a timeout,
    /// which drops the connection) and shows it to the plan's hook.
    fn record(&mut self, i: u64, answer: Option<(StatusCode, Bytes)>, t0: Instant, end: Instant) {
        let Some((status, body)) = answer else {
            self.tally.errors += 1;
            self.sender = None;
            return;
        };
        let tally = &mut self.tally;
        if status.is_success() {
            tally.ok += 1;
        } else {
            *tally.statuses.entry(status.as_u16()).or_default() += 1;
        }
        let us = end.saturating_duration_since(t0).as_micros();
        tally.hist.saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
        tally.last_end = Some(end);
        if let Some(f) = &self.shared.plan.inspect {
            f(i, status, &body, t0, end);
        }
    }
}

/// Merges the connections' tallies into what the run measured.
fn summarize(sh: &Shared, tallies: Vec<Tally>) -> anyhow::Result<Outcome> {
    let mut out = Outcome { connections: sh.plan.connections, ..Outcome::default() };
    let mut hist = Histogram::<u64>::new_with_bounds(1, HIST_MAX_US, 2)?;
    let mut last_end = sh.window_start;
    for t in tallies {
        out.ok += t.ok;
        out.warm_ok += t.warm;
        out.errors += t.errors;
        for (k, v) in t.statuses {
            *out.statuses.entry(k).or_default() += v;
        }
        hist.add(&t.hist)?;
        if let Some(e) = t.last_end {
            last_end = last_end.max(e);
        }
    }
    let secs = match (sh.window_end, sh.plan.max_requests) {
        (Some(e), _) if !sh.done.load(Ordering::Relaxed) => e - sh.window_start,
        _ => last_end.saturating_duration_since(sh.window_start),
    }
    .as_secs_f64()
    .max(1e-6);
    out.secs = secs;
    out.rps = out.ok as f64 / secs;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    out.p50_ms = ms(0.5);
    out.p99_ms = ms(0.99);
    out.max_ms = hist.max() as f64 / 1000.0;
    Ok(out)
}
