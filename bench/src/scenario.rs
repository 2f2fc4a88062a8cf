//! The scenarios: enqueue storm, status, memory with token issue, and surge (the edge's are in
//! `edge`); each measures its baselines in the same run and returns plain numbers for the
//! report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::load::{self, Call, Outcome, Plan};
use crate::procs::{ADMIN_KEY, Baseline, Coordinator, Redis};

/// Sizes of a run; the smoke run shrinks every one of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knobs {
    /// Measured seconds per closed-loop run.
    pub secs: f64,
    /// Unrecorded warm-up seconds before each run.
    pub warmup: f64,
    /// Repetitions of each comparison (targets interleaved); the median is reported.
    pub rounds: usize,
    /// Concurrent connections of the storm and status scenarios.
    pub concurrency: Vec<usize>,
    /// Enqueues of the memory scenario.
    pub enqueues: u64,
    /// Sessions (tokens claimed) of the memory scenario.
    pub sessions: u64,
    /// Length of the surge, seconds.
    pub surge_secs: f64,
    /// Coordinator binary.
    pub coordinator: PathBuf,
    /// Whether this is the CI smoke run.
    #[serde(default)]
    pub smoke: bool,
    /// Whether the harness, not the coordinator, admits during the surge.
    #[serde(default)]
    pub surge_by_harness: bool,
}

/// One measured target at one concurrency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// What was measured.
    pub target: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// The median run (by requests per second).
    pub outcome: Outcome,
    /// Requests per second of every round, for the spread.
    pub rounds_rps: Vec<f64>,
    /// CPU time of the server process per answered request, over all rounds, microseconds.
    /// Less sensitive than rates to other work on the machine.
    #[serde(default)]
    pub server_cpu_us: f64,
    /// CPU time of redis-server per answered request, microseconds.
    #[serde(default)]
    pub redis_cpu_us: f64,
    /// CPU time of the load generator per answered request, microseconds.
    #[serde(default)]
    pub client_cpu_us: f64,
}

/// `redis-benchmark` on the same Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisBench {
    /// Clients (`-c`).
    pub clients: usize,
    /// Requests (`-n`).
    pub requests: u64,
    /// The exact command line.
    pub command: String,
    /// Calls per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// A comparison of targets at several concurrencies.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Compare {
    /// Every (target, concurrency) median.
    pub rows: Vec<Row>,
    /// `redis-benchmark` rows, when the scenario has them.
    pub redis_bench: Vec<RedisBench>,
    /// The same targets loaded by `wrk` (a lighter client), when installed.
    #[serde(default)]
    pub wrk: Vec<WrkRow>,
}

/// One `wrk` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrkRow {
    /// What was measured.
    pub target: String,
    /// Connections (`-c`).
    pub clients: usize,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Non-2xx answers plus socket errors.
    pub failures: u64,
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
fn wrk(
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

impl Compare {
    /// The row of `target` at `c`.
    pub fn get(&self, target: &str, c: usize) -> Option<&Row> {
        self.rows.iter().find(|r| r.target == target && r.concurrency == c)
    }
}

/// The memory scenario's numbers.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Memory {
    /// Visitors enqueued.
    pub enqueues: u64,
    /// Tokens claimed.
    pub sessions: u64,
    /// `used_memory` with the queue created and nothing enqueued.
    pub before: u64,
    /// After the enqueues.
    pub after_enqueue: u64,
    /// After the serving increment and the token claims.
    pub after_sessions: u64,
    /// `MEMORY USAGE` of each queue key at the end.
    pub keys: Vec<(String, u64)>,
    /// The enqueue run (1,024 connections, count-bounded).
    pub enqueue: Outcome,
    /// The token claim run (64 connections, count-bounded).
    pub claim: Outcome,
    /// Bare axum at the claim run's concurrency, measured right after.
    pub claim_baseline: Outcome,
    /// Positions seen twice, or never, among `1..=enqueues`.
    pub position_faults: u64,
    /// CPU per enqueue of the coordinator and of redis-server, microseconds.
    #[serde(default)]
    pub enqueue_cpu_us: (f64, f64),
    /// CPU per token claim of the coordinator and of redis-server, microseconds.
    #[serde(default)]
    pub claim_cpu_us: (f64, f64),
}

/// Everything a run measured, written as JSON and rendered by `report`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Results {
    /// Machine and date.
    pub machine: Option<Machine>,
    /// Sizes used.
    pub knobs: Option<Knobs>,
    /// Enqueue storm.
    pub storm: Option<Compare>,
    /// Status at the coordinator.
    pub status: Option<Compare>,
    /// Memory and token issue.
    pub memory: Option<Memory>,
    /// Surge.
    pub surge: Option<crate::surge::Surge>,
    /// The edge worker in workerd: status, protected pass-through, sync staleness.
    #[serde(default)]
    pub edge: Option<crate::edge::Edge>,
}

/// Where a run happened.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// UTC date and time of the run.
    pub date: String,
    /// `redis-server --version`.
    pub redis: String,
    /// Git commit of the tree measured.
    pub commit: String,
    /// 1-minute load average when the run started (other work on the machine).
    pub load_avg: String,
}

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
}

impl Env {
    /// Starts everything on loopback.
    pub fn start(knobs: &Knobs) -> anyhow::Result<Self> {
        let redis = Redis::start();
        let coord = crate::procs::start_coordinator(&knobs.coordinator, &redis.url())?;
        let axum = Baseline::start("serve-axum", &[])?;
        let onecall = Baseline::start("serve-redis", &["--redis-url".into(), redis.url()])?;
        eprintln!(
            "pids: redis {} coordinator {} bare-axum {} one-call {} (attach perf to these)",
            redis.pid(),
            coord.guard.pid(),
            axum.guard.pid(),
            onecall.guard.pid()
        );
        Ok(Env { redis, coord, axum, onecall })
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

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Runs every target once per round at `c` (interleaved, so drift hits all alike) and keeps
/// each target's median round.
async fn compare(
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
        for (k, (name, addr, pid, make)) in targets.iter().enumerate() {
            let plan = Plan {
                addr: *addr,
                connections: c,
                warmup: secs(knobs.warmup),
                duration: Some(secs(knobs.secs)),
                max_requests: None,
                rate: None,
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
fn redis_benchmark(redis: &Redis, clients: usize, requests: u64) -> anyhow::Result<RedisBench> {
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

/// Enqueue storm: `assign_queue_pos` against bare axum, the one-call handler and
/// `redis-benchmark`, at each concurrency.
pub async fn storm(env: &Env, knobs: &Knobs) -> anyhow::Result<Compare> {
    create_queue(&env.coord, "storm", "").await?;
    let body = "queue_id=storm";
    let targets = [
        ("bare axum", env.axum.addr, env.axum.guard.pid(), Call::form("/assign_queue_pos", body)),
        (
            "one redis call",
            env.onecall.addr,
            env.onecall.guard.pid(),
            Call::form("/assign_queue_pos", body),
        ),
        (
            "coordinator",
            env.coord.public,
            env.coord.guard.pid(),
            Call::form("/assign_queue_pos", body),
        ),
    ];
    let mut out = Compare::default();
    for &c in &knobs.concurrency {
        out.rows.extend(compare(knobs, c, env.redis.pid(), &targets).await?);
        let n = ((knobs.secs * 60_000.0) as u64).max(1000);
        let rb = tokio::task::block_in_place(|| redis_benchmark(&env.redis, c, n))?;
        eprintln!("  c={c} redis-benchmark evalsha: {:.0}/s", rb.rps);
        out.redis_bench.push(rb);
        let has_wrk = std::process::Command::new("wrk").arg("--version").output().is_ok();
        if has_wrk && !knobs.smoke {
            for (name, addr, _, call) in &targets {
                let w = tokio::task::block_in_place(|| wrk(name, *addr, c, knobs.secs, call))?;
                eprintln!("  c={c} wrk {name}: {:.0} req/s p99 {:.2} ms", w.rps, w.p99_ms);
                out.wrk.push(w);
            }
        }
    }
    Ok(out)
}

/// Status at the coordinator: `serving_pos` against bare axum.
pub async fn status(env: &Env, knobs: &Knobs) -> anyhow::Result<Compare> {
    create_queue(&env.coord, "status", "").await?;
    increment_serving(&env.coord, "status", 7).await?;
    let targets = [
        ("bare axum", env.axum.addr, env.axum.guard.pid(), Call::get("/serving_pos/status")),
        ("coordinator", env.coord.public, env.coord.guard.pid(), Call::get("/serving_pos/status")),
    ];
    let mut out = Compare::default();
    for &c in &knobs.concurrency {
        out.rows.extend(compare(knobs, c, env.redis.pid(), &targets).await?);
        if !knobs.smoke && std::process::Command::new("wrk").arg("--version").output().is_ok() {
            for (name, addr, _, call) in &targets {
                let w = tokio::task::block_in_place(|| wrk(name, *addr, c, knobs.secs, call))?;
                eprintln!("  c={c} wrk {name}: {:.0} req/s p99 {:.2} ms", w.rps, w.p99_ms);
                out.wrk.push(w);
            }
        }
    }
    Ok(out)
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

/// Memory per queued visitor and per session, with the enqueue and token-issue rates, on a
/// Redis and coordinator of its own (so nothing else is counted).
pub async fn memory(env: &Env, knobs: &Knobs) -> anyhow::Result<Memory> {
    let redis = Redis::start();
    let coord = crate::procs::start_coordinator(&knobs.coordinator, &redis.url())?;
    eprintln!("  memory pids: redis {} coordinator {}", redis.pid(), coord.guard.pid());
    let id = create_queue(&coord, "mem", "").await?;
    // Let the coordinator's registry refresh settle, then take the baseline.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = redis.used_memory();
    let n = knobs.enqueues;
    let k = knobs.sessions.min(n);
    let seen = Arc::new(Seen::new(n));
    let tickets: Arc<Mutex<Vec<Option<String>>>> =
        Arc::new(Mutex::new(vec![None; usize::try_from(k)? + 1]));
    let inspect = {
        let seen = seen.clone();
        let tickets = tickets.clone();
        Arc::new(move |_i: u64, status: hyper::StatusCode, body: &bytes::Bytes, _t0, _t1| {
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
            if a.position <= k
                && let Ok(mut t) = tickets.lock()
                && let Some(slot) = usize::try_from(a.position).ok().and_then(|p| t.get_mut(p))
            {
                *slot = Some(a.request_id);
            }
        }) as load::Inspect
    };
    eprintln!("  enqueueing {n} visitors over 1024 connections");
    let cpu = || {
        (
            crate::procs::cpu_secs(coord.guard.pid()).unwrap_or(0.0),
            crate::procs::cpu_secs(redis.pid()).unwrap_or(0.0),
        )
    };
    let per = |a: (f64, f64), b: (f64, f64), n: u64| {
        (1e6 * (b.0 - a.0) / n.max(1) as f64, 1e6 * (b.1 - a.1) / n.max(1) as f64)
    };
    let c0 = cpu();
    let enqueue = load::run(Plan {
        addr: coord.public,
        connections: 1024,
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(n),
        rate: None,
        make: Arc::new(|_| Some(Call::form("/assign_queue_pos", "queue_id=mem"))),
        inspect: Some(inspect),
    })
    .await?;
    eprintln!(
        "  enqueue: {:.0}/s p50 {:.2} ms p99 {:.2} ms failures {}",
        enqueue.rps,
        enqueue.p50_ms,
        enqueue.p99_ms,
        enqueue.failures()
    );
    let enqueue_cpu_us = per(c0, cpu(), enqueue.ok);
    let after_enqueue = redis.used_memory();
    let position_faults = seen.dups.load(Ordering::Relaxed)
        + seen.out_of_range.load(Ordering::Relaxed)
        + seen.missing(n);
    increment_serving(&coord, "mem", k).await?;
    let tickets: Arc<Vec<String>> = Arc::new(
        std::mem::take(&mut *tickets.lock().map_err(|_| anyhow::anyhow!("ticket lock poisoned"))?)
            .into_iter()
            .skip(1)
            .map(Option::unwrap_or_default)
            .collect(),
    );
    eprintln!("  claiming {k} tokens over 64 connections");
    let c1 = cpu();
    let claim = load::run(Plan {
        addr: coord.public,
        connections: 64,
        warmup: Duration::ZERO,
        duration: None,
        max_requests: Some(k),
        rate: None,
        make: Arc::new(move |i| {
            let t = tickets.get(usize::try_from(i).ok()?)?;
            Some(Call::form("/generate_token", format!("queue_id=mem&request_id={t}")))
        }),
        inspect: None,
    })
    .await?;
    eprintln!(
        "  claim: {:.0}/s p50 {:.2} ms p99 {:.2} ms failures {}",
        claim.rps,
        claim.p50_ms,
        claim.p99_ms,
        claim.failures()
    );
    let claim_cpu_us = per(c1, cpu(), claim.ok);
    let after_sessions = redis.used_memory();
    let mut keys = Vec::new();
    for what in ["ctr", "srv", "claimed", "nclaimed", "sess", "sinfo", "rev", "hist", "arr"] {
        let key = format!("aq:{{q{id}}}:{what}");
        let u = redis.key_usage(&key);
        keys.push((key, u));
    }
    drop(coord);
    drop(redis);
    let claim_baseline = load::run(Plan::fixed(
        env.axum.addr,
        64,
        secs(knobs.warmup),
        secs(claim.secs.clamp(0.5, knobs.secs)),
        Call::form("/generate_token", "queue_id=mem&request_id=x"),
    ))
    .await?;
    Ok(Memory {
        enqueues: n,
        sessions: k,
        before,
        after_enqueue,
        after_sessions,
        keys,
        enqueue,
        claim,
        claim_baseline,
        position_faults,
        enqueue_cpu_us,
        claim_cpu_us,
    })
}
