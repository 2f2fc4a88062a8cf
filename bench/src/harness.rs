//! The running machinery shared by the scenarios: the environment (Redis, the coordinator
//! and the baseline servers), queue setup through the private API, interleaved comparisons
//! with CPU accounting, `redis-benchmark` and `wrk` runs, and the position bookkeeping of
//! enqueue runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::procs::{ADMIN_KEY, Baseline, Coordinator, Redis};
use crate::results::{Knobs, Machine, Outcome, RedisBench, Row, WrkRow};
use loadgen::{self as load, Call, Plan};

fn cmd_out(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Describes this machine.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        date: cmd_out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        redis: cmd_out("redis-server", &["--version"]),
        commit: cmd_out("git", &["rev-parse", "--short", "HEAD"]),
        load_avg: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string(),
    }
}

/// Redis, a coordinator on it, and both baseline servers.
#[derive(Debug)]
pub struct Env {
    /// The Redis everything shares.
    pub redis: Redis,
    /// The coordinator under test.
    pub coord: Coordinator,
    /// Bare axum.
    pub axum: Baseline,
    /// Axum with one Redis script call per request.
    pub onecall: Baseline,
    /// The same coordinator binary with metrics off (`Knobs::metrics_cost`).
    pub coord_off: Option<Coordinator>,
}

impl Env {
    /// Starts everything on loopback.
    pub fn start(knobs: &Knobs) -> anyhow::Result<Self> {
        let redis = Redis::start();
        let coord = crate::procs::start_coordinator(&knobs.coordinator, &redis.url())?;
        let axum = Baseline::start("serve-axum", &[])?;
        let onecall = Baseline::start("serve-redis", &["--redis-url".into(), redis.url()])?;
        let coord_off = if knobs.metrics_cost {
            let off = [("ANTEROOM_METRICS", "false".to_string())];
            Some(crate::procs::start_coordinator_with(&knobs.coordinator, &redis.url(), &off)?)
        } else {
            None
        };
        eprintln!(
            "pids: redis {} coordinator {} bare-axum {} one-call {} (attach perf to these)",
            redis.pid(),
            coord.guard.pid(),
            axum.guard.pid(),
            onecall.guard.pid()
        );
        Ok(Env { redis, coord, axum, onecall, coord_off })
    }
}

/// Creates a queue through the private API and returns its numeric id.
pub async fn create_queue(coord: &Coordinator, slug: &str, extra: &str) -> anyhow::Result<u64> {
    let body = format!(r#"{{"queue_id":"{slug}"{extra}}}"#);
    let v = load::once_ok(coord.admin, &Call::json("/api/queue", body).bearer(ADMIN_KEY)).await?;
    v.get("id").and_then(serde_json::Value::as_u64).context("create queue: no id in the answer")
}

/// Moves the serving position of `slug` by `by`; returns the new serving position.
pub async fn increment_serving(coord: &Coordinator, slug: &str, by: u64) -> anyhow::Result<u64> {
    let call = Call::form(
        "/api/queue/increment_serving_position",
        format!("queue_id={slug}&increment_by={by}"),
    )
    .bearer(ADMIN_KEY);
    let v = load::once_ok(coord.admin, &call).await?;
    v.get("serving_pos")
        .and_then(serde_json::Value::as_u64)
        .context("increment: no serving_pos in the answer")
}

/// `s` seconds as a [`Duration`].
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Runs every target once per round at `c` (interleaved, so drift hits all alike; each round
/// starts one target later, so no target is always the one run first after a pause) and keeps
/// each target's median round.
pub async fn compare(
    knobs: &Knobs,
    c: usize,
    redis_pid: u32,
    targets: &[(&str, std::net::SocketAddr, u32, Call)],
) -> anyhow::Result<Vec<Row>> {
    let targets: Vec<_> = targets
        .iter()
        .map(|(name, addr, pid, call)| {
            let call = call.clone();
            let make: load::MakeCall = Arc::new(move |_| Some(call.clone()));
            (*name, *addr, *pid, make)
        })
        .collect();
    compare_made(knobs, c, redis_pid, &targets).await
}

/// [`compare`] with requests made per call (e.g. a fresh token each time); `pid` is the
/// process whose CPU time counts as the server's.
pub async fn compare_made(
    knobs: &Knobs,
    c: usize,
    redis_pid: u32,
    targets: &[(&str, std::net::SocketAddr, u32, load::MakeCall)],
) -> anyhow::Result<Vec<Row>> {
    let mut runs: Vec<Vec<Outcome>> = vec![Vec::new(); targets.len()];
    // CPU seconds of (server, redis, this client) and requests answered, per target.
    let mut cpu = vec![[0.0f64; 4]; targets.len()];
    let me = std::process::id();
    let sample = |pid: u32| crate::procs::cpu_secs(pid).unwrap_or(0.0);
    for round in 0..knobs.rounds {
        for step in 0..targets.len() {
            let k = (round + step) % targets.len();
            let (name, addr, pid, make) = &targets[k];
            let plan = Plan {
                addr: *addr,
                connections: c,
                warmup: secs(knobs.warmup),
                duration: Some(secs(knobs.secs)),
                max_requests: None,
                schedule: None,
                make: make.clone(),
                inspect: None,
            };
            let before = [sample(*pid), sample(redis_pid), sample(me)];
            let o = load::run(plan).await?;
            let after = [sample(*pid), sample(redis_pid), sample(me)];
            for i in 0..3 {
                cpu[k][i] += after[i] - before[i];
            }
            cpu[k][3] += (o.ok + o.warm_ok) as f64;
            eprintln!(
                "  round {round} c={c} {name}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms failures {} server CPU {:.1} us/req",
                o.rps,
                o.p50_ms,
                o.p99_ms,
                o.failures(),
                1e6 * (after[0] - before[0]) / (o.ok + o.warm_ok).max(1) as f64
            );
            runs[k].push(o);
        }
    }
    Ok(targets
        .iter()
        .zip(runs)
        .zip(cpu)
        .map(|(((name, _, _, _), mut rs), cpu)| {
            let rounds_rps = rs.iter().map(|o| o.rps).collect();
            rs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            let outcome = rs.swap_remove(rs.len() / 2);
            let per = |x: f64| 1e6 * x / cpu[3].max(1.0);
            Row {
                target: (*name).to_string(),
                concurrency: c,
                outcome,
                rounds_rps,
                server_cpu_us: per(cpu[0]),
                redis_cpu_us: per(cpu[1]),
                client_cpu_us: per(cpu[2]),
            }
        })
        .collect())
}

/// Runs `redis-benchmark` EVALSHA (unpipelined) against `redis` with `clients` clients.
pub fn redis_benchmark(redis: &Redis, clients: usize, requests: u64) -> anyhow::Result<RedisBench> {
    let sha = crate::procs::redis_raw(
        redis.port,
        &format!("SCRIPT LOAD \"{}\"", crate::baseline::INCR_SCRIPT),
    )?;
    let sha = sha.lines().nth(1).context("SCRIPT LOAD gave no sha")?.trim().to_string();
    let port = redis.port.to_string();
    let (c, n) = (clients.to_string(), requests.to_string());
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-n",
        &n,
        "-c",
        &c,
        "--csv",
        "evalsha",
        &sha,
        "1",
        "bench:rb",
    ];
    let out = std::process::Command::new("redis-benchmark")
        .args(args)
        .output()
        .context("redis-benchmark must be installed (apt-get install redis-tools)")?;
    anyhow::ensure!(out.status.success(), "redis-benchmark failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rfind(|l| l.starts_with("\"evalsha"))
        .context("redis-benchmark printed no result")?;
    let f: Vec<f64> =
        line.split(',').rev().take(7).map(|s| s.trim_matches('"').parse().unwrap_or(0.0)).collect();
    // Reversed: max, p99, p95, p50, min, avg, rps.
    anyhow::ensure!(f.len() == 7, "unexpected redis-benchmark output: {line}");
    Ok(RedisBench {
        clients,
        requests,
        command: format!("redis-benchmark {}", args.join(" ")).replace(&sha, "<sha>"),
        rps: f[6],
        p50_ms: f[3],
        p99_ms: f[1],
    })
}

fn wrk_ms(v: &str) -> f64 {
    let num = |suffix: &str| v.strip_suffix(suffix).and_then(|n| n.parse::<f64>().ok());
    num("us")
        .map(|n| n / 1000.0)
        .or_else(|| num("ms"))
        .or_else(|| num("s").map(|n| n * 1000.0))
        .unwrap_or(0.0)
}

/// Loads one target with `wrk` (two threads, like the load generator's two workers).
pub fn wrk(
    target: &str,
    addr: std::net::SocketAddr,
    clients: usize,
    secs: f64,
    call: &Call,
) -> anyhow::Result<WrkRow> {
    let dir = std::env::temp_dir().join(format!("anteroom-wrk-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("req.lua");
    let mut lua = format!("wrk.method = \"{}\"\n", call.method);
    if let Some(b) = &call.body {
        lua.push_str(&format!(
            "wrk.body = \"{b}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
        ));
    }
    std::fs::write(&script, lua)?;
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c", &clients.to_string(), "-d", &format!("{}s", secs.ceil().max(1.0))])
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}{}", call.path))
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(out.status.success(), "wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut row = WrkRow {
        target: target.to_string(),
        clients,
        rps: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        failures: 0,
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Requests/sec:", v] => row.rps = v.parse().unwrap_or(0.0),
            ["50%", v] => row.p50_ms = wrk_ms(v),
            ["99%", v] => row.p99_ms = wrk_ms(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => row.failures += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                row.failures += rest
                    .iter()
                    .filter_map(|t| t.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    Ok(row)
}

/// A position bitmap shared by response hooks: counts first sightings and repeats.
pub struct Seen {
    words: Vec<AtomicU64>,
    /// Positions answered twice.
    pub dups: AtomicU64,
    /// Positions outside `1..=capacity`.
    pub out_of_range: AtomicU64,
}

impl Seen {
    /// Room for positions `1..=n`.
    pub fn new(n: u64) -> Self {
        Seen {
            words: (0..n.div_ceil(64) + 1).map(|_| AtomicU64::new(0)).collect(),
            dups: AtomicU64::new(0),
            out_of_range: AtomicU64::new(0),
        }
    }

    /// Records one answered position.
    pub fn mark(&self, p: u64) {
        let w = usize::try_from(p / 64).unwrap_or(usize::MAX);
        match self.words.get(w) {
            Some(a) if p > 0 => {
                let bit = 1u64 << (p % 64);
                if a.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                    self.dups.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                self.out_of_range.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Positions in `1..=n` never seen.
    pub fn missing(&self, n: u64) -> u64 {
        (1..=n)
            .filter(|p| {
                let w = usize::try_from(p / 64).unwrap_or(usize::MAX);
                self.words
                    .get(w)
                    .is_none_or(|a| a.load(Ordering::Relaxed) & (1u64 << (p % 64)) == 0)
            })
            .count() as u64
    }
}

/// Ticket slots by position (index 0 unused), filled from enqueue answers.
pub type Tickets = Arc<Mutex<Vec<Option<String>>>>;

/// The answer to `assign_queue_pos`.
#[derive(Deserialize)]
struct Assigned {
    request_id: String,
    position: u64,
}

/// A response hook for enqueue runs: marks each answered position in `seen` (an unreadable
/// answer counts as out of range) and keeps its ticket in `tickets` when the slot exists;
/// with `upto`, only positions up to it are looked up.
pub fn record_assigned(seen: Arc<Seen>, tickets: Tickets, upto: Option<u64>) -> load::Inspect {
    Arc::new(move |_i: u64, status: hyper::StatusCode, body: &bytes::Bytes, _t0, _t1| {
        if !status.is_success() {
            return;
        }
        let Ok(a) = serde_json::from_slice::<Assigned>(body) else {
            seen.out_of_range.fetch_add(1, Ordering::Relaxed);
            return;
        };
        seen.mark(a.position);
        if upto.is_none_or(|k| a.position <= k)
            && let Ok(mut t) = tickets.lock()
            && let Some(slot) = usize::try_from(a.position).ok().and_then(|p| t.get_mut(p))
        {
            *slot = Some(a.request_id);
        }
    })
}
