//! Anteroom's benchmark harness: baseline servers, scenarios against a real Redis, the
//! coordinator binary and the edge worker in workerd, and the `BENCHMARKS.md` report. Load
//! stays on loopback and every run is bounded in time and count.

mod baseline;
mod edge;
mod harness;
mod procs;
mod report;
mod results;
mod scenario;
mod surge;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use harness::Env;
use results::{Knobs, Results};

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Anteroom benchmark harness")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    Storm,
    Status,
    Memory,
    Surge,
    Edge,
    All,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the bare-axum baseline (a constant answer).
    ServeAxum {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Serve the one-Redis-call baseline (EVALSHA of an INCR script per request).
    ServeRedis {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        redis_url: String,
    },
    /// Load one address with GET or a form POST and print what was measured (calibration).
    Load {
        /// Target address.
        #[arg(long)]
        addr: SocketAddr,
        /// Path to request.
        #[arg(long, default_value = "/")]
        path: String,
        /// Form body; POST when given.
        #[arg(long)]
        form: Option<String>,
        /// Connections.
        #[arg(short, long, default_value_t = 64)]
        connections: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Run scenarios and merge their numbers into a results file.
    Run {
        /// Which scenario (`all` runs every one).
        scenario: Scenario,
        /// Results file (JSON), updated in place.
        #[arg(long, default_value = "target/bench/results.json")]
        out: PathBuf,
        /// Coordinator binary.
        #[arg(long, default_value = "target/release/coordinator")]
        coordinator: PathBuf,
        /// Seconds-long sizes for CI; fails unless the numbers are sane.
        #[arg(long)]
        smoke: bool,
        /// Measured seconds per run.
        #[arg(long, default_value_t = 8.0)]
        secs: f64,
        /// Rounds per comparison (median reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Enqueues of the memory scenario.
        #[arg(long, default_value_t = 1_000_000)]
        enqueues: u64,
        /// Surge: the harness moves the serving position instead of the coordinator's
        /// admission controller.
        #[arg(long)]
        surge_by_harness: bool,
        /// Surge length, seconds.
        #[arg(long, default_value_t = 60.0)]
        surge_secs: f64,
        /// The storm also loads the coordinator with metrics off (`ANTEROOM_METRICS=false`),
        /// interleaved in the same rounds, and reports the cost of metrics.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        metrics_cost: bool,
    },
    /// Render results into BENCHMARKS.md (between its markers) and SVG plots.
    Report {
        #[arg(long, default_value = "target/bench/results.json")]
        results: PathBuf,
        #[arg(long, default_value = "BENCHMARKS.md")]
        markdown: PathBuf,
        /// Folder of the SVG plots.
        #[arg(long, default_value = "docs")]
        svg_dir: PathBuf,
    },
}

/// The same allocator as the coordinator (mimalloc), so the baseline servers measured next
/// to it are not handicapped by glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.cmd {
        Cmd::ServeAxum { listen } => rt.block_on(baseline::serve_axum(listen)),
        Cmd::ServeRedis { listen, redis_url } => {
            rt.block_on(baseline::serve_redis(listen, &redis_url))
        }
        Cmd::Load { addr, path, form, connections, secs } => {
            calibrate(&rt, addr, path, form, connections, secs)
        }
        Cmd::Run {
            scenario,
            out,
            coordinator,
            smoke,
            secs,
            rounds,
            enqueues,
            surge_secs,
            surge_by_harness,
            metrics_cost,
        } => {
            let knobs = if smoke {
                Knobs { metrics_cost, ..smoke_knobs(coordinator, surge_by_harness) }
            } else {
                Knobs {
                    secs,
                    warmup: 1.0,
                    rounds,
                    concurrency: vec![64, 1024],
                    enqueues,
                    sessions: enqueues / 10,
                    surge_secs,
                    coordinator,
                    smoke: false,
                    surge_by_harness,
                    metrics_cost,
                }
            };
            run_and_check(&rt, scenario, &knobs, &out)
        }
        Cmd::Report { results, markdown, svg_dir } => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("read {}", results.display()))?;
            let r: Results = serde_json::from_str(&text)?;
            report::write(&r, &markdown, &svg_dir)
        }
    }
}

/// `bench load`: loads one address with GET or a form POST and prints what was measured.
fn calibrate(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    path: String,
    form: Option<String>,
    connections: usize,
    secs: f64,
) -> anyhow::Result<()> {
    let call = match form {
        Some(f) => loadgen::Call::form(path, f),
        None => loadgen::Call::get(path),
    };
    let plan = loadgen::Plan::fixed(
        addr,
        connections,
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs_f64(secs),
        call,
    );
    let o = rt.block_on(loadgen::run(plan))?;
    println!("{}", serde_json::to_string(&o)?);
    Ok(())
}

/// The seconds-long sizes of the CI smoke run.
fn smoke_knobs(coordinator: PathBuf, surge_by_harness: bool) -> Knobs {
    Knobs {
        secs: 1.0,
        warmup: 0.2,
        rounds: 1,
        concurrency: vec![16, 128],
        enqueues: 20_000,
        sessions: 2_000,
        surge_secs: 3.0,
        coordinator,
        smoke: true,
        surge_by_harness,
        metrics_cost: true,
    }
}

/// `bench run`: runs the scenarios (stopped by SIGINT or SIGTERM) and, in a smoke run, fails
/// unless the numbers are sane.
fn run_and_check(
    rt: &tokio::runtime::Runtime,
    scenario: Scenario,
    knobs: &Knobs,
    out: &PathBuf,
) -> anyhow::Result<()> {
    // On SIGINT or SIGTERM the run's future is dropped, and with it every guard of
    // the processes it started (Redis, coordinators, baselines, workerd).
    let results = rt.block_on(async {
        tokio::select! {
            r = run(scenario, knobs, out) => r,
            s = interrupted() => anyhow::bail!("stopped by {s}"),
        }
    })?;
    if knobs.smoke {
        let problems = report::smoke_problems(&results);
        if !problems.is_empty() {
            for p in &problems {
                eprintln!("smoke: {p}");
            }
            anyhow::bail!("{} smoke check(s) failed", problems.len());
        }
        eprintln!("smoke: all checks passed");
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let on_term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = on_term => "SIGTERM",
    }
}

fn load_results(path: &PathBuf) -> Results {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save(path: &PathBuf, r: &Results) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(r)?)?;
    Ok(())
}

async fn run(scenario: Scenario, knobs: &Knobs, out: &PathBuf) -> anyhow::Result<Results> {
    let mut r = load_results(out);
    let now = harness::machine();
    r.machine = Some(match r.machine.take() {
        // A single scenario merged into earlier results: keep the run's record, note the re-run.
        Some(mut m) if scenario != Scenario::All => {
            m.date =
                format!("{} ({scenario:?} re-run {} at commit {})", m.date, now.date, now.commit);
            m
        }
        _ => now,
    });
    r.knobs = Some(knobs.clone());
    let env = tokio::task::block_in_place(|| Env::start(knobs))?;
    let all = scenario == Scenario::All;
    if all || scenario == Scenario::Storm {
        eprintln!("== enqueue storm");
        r.storm = Some(scenario::storm(&env, knobs).await?);
        save(out, &r)?;
    }
    if all || scenario == Scenario::Status {
        eprintln!("== status at the coordinator");
        r.status = Some(scenario::status(&env, knobs).await?);
        save(out, &r)?;
    }
    if all || scenario == Scenario::Memory {
        eprintln!("== memory and token issue");
        r.memory = Some(scenario::memory(&env, knobs).await?);
        save(out, &r)?;
    }
    if all || scenario == Scenario::Surge {
        eprintln!("== surge");
        // Scale by bare axum at the highest concurrency of this run's storm, or measure it.
        let c = knobs.concurrency.iter().copied().max().unwrap_or(64);
        let bare = match r.storm.as_ref().and_then(|s| s.get("bare axum", c)) {
            Some(row) => row.outcome.rps,
            None => {
                let plan = loadgen::Plan::fixed(
                    env.axum.addr,
                    c,
                    std::time::Duration::from_secs_f64(knobs.warmup),
                    std::time::Duration::from_secs_f64(knobs.secs),
                    loadgen::Call::form("/assign_queue_pos", "queue_id=surge"),
                );
                loadgen::run(plan).await?.rps
            }
        };
        let s = surge::surge(&env, knobs, bare, !knobs.surge_by_harness).await?;
        eprintln!(
            "  surge: offered {:.0}/s, arrivals {:.0}/s (p99 {:.1} ms), polls {:.0}/s, admitted {}, clean {}",
            s.offered_rps,
            s.arrivals.rps,
            s.arrivals.p99_ms,
            s.polls.rps,
            s.admitted,
            s.clean()
        );
        r.surge = Some(s);
        save(out, &r)?;
    }
    if all || scenario == Scenario::Edge {
        eprintln!("== edge (the worker in workerd)");
        r.edge = Some(edge::edge(&env, knobs).await?);
        save(out, &r)?;
    }
    drop(env);
    Ok(r)
}
