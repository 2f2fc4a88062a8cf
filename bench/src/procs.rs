//! The processes a run starts on loopback: `redis-server`, the coordinator binary and this
//! binary's own baseline servers; each is killed when its guard drops.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Bearer key the harness gives the coordinators it starts.
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789";

pub use testkit::{Guard, Redis, free_addr, http_get_status, redis_raw};

fn wait_healthy(guard: &mut Guard, addrs: &[SocketAddr]) -> anyhow::Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if addrs.iter().all(|a| http_get_status(*a, "/healthz") == Some(200)) {
            return Ok(true);
        }
        if let Some(st) = guard.child.try_wait()? {
            anyhow::bail!("{} exited early: {st}", guard.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(false)
}

/// A coordinator process (the real binary, `testkit::Coordinator`) on loopback, on Redis.
pub type Coordinator = testkit::Coordinator;

/// Starts `bin` against `redis_url` with the harness's admin key.
pub fn start_coordinator(bin: &Path, redis_url: &str) -> anyhow::Result<Coordinator> {
    start_coordinator_with(bin, redis_url, &[])
}

/// Starts `bin` against `redis_url` with extra `ANTEROOM_*` settings.
pub fn start_coordinator_with(
    bin: &Path,
    redis_url: &str,
    env: &[(&str, String)],
) -> anyhow::Result<Coordinator> {
    ensure_built(bin)?;
    Ok(testkit::Coordinator::start(bin, &coordinator_env(redis_url, env)))
}

/// Starts `bin` on the given addresses with extra `ANTEROOM_*` settings (the edge scenario
/// must name the coordinator's address to the worker before starting it); `None` if it did not
/// become healthy (e.g. the port was taken meanwhile).
pub fn start_coordinator_at(
    bin: &Path,
    redis_url: &str,
    public: SocketAddr,
    admin: SocketAddr,
    env: &[(&str, String)],
) -> anyhow::Result<Option<Coordinator>> {
    ensure_built(bin)?;
    Ok(testkit::Coordinator::start_at(bin, public, admin, &coordinator_env(redis_url, env)))
}

fn ensure_built(bin: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p coordinator)",
        bin.display()
    );
    Ok(())
}

fn coordinator_env<'a>(redis_url: &str, env: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut all = vec![
        ("ANTEROOM_ADMIN_KEY", ADMIN_KEY.to_string()),
        ("ANTEROOM_REDIS_URL", redis_url.to_string()),
    ];
    all.extend(env.iter().cloned());
    all
}

/// One of this binary's baseline servers, run as its own process like the coordinator.
#[derive(Debug)]
pub struct Baseline {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The process.
    pub guard: Guard,
}

impl Baseline {
    /// Starts `bench <sub> --listen ADDR [extra…]`.
    pub fn start(sub: &str, extra: &[String]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        for _ in 0..5 {
            let addr = free_addr();
            let child = Command::new(&exe)
                .arg(sub)
                .arg("--listen")
                .arg(addr.to_string())
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()?;
            let mut guard = Guard { child, name: sub.to_string() };
            if wait_healthy(&mut guard, &[addr])? {
                return Ok(Baseline { addr, guard });
            }
        }
        anyhow::bail!("baseline {sub} did not start")
    }
}

/// CPU time (user + system) a process has used so far, in seconds; `None` if it is gone.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A worker served by workerd under Miniflare (`node bench/edge/serve.mjs`) on a loopback
/// port. Node runs in a process group of its own, so workerd (its child) goes down with it
/// even if node does not stop it.
#[derive(Debug)]
pub struct Workerd {
    /// Where workerd listens (HTTP/1.1).
    pub addr: SocketAddr,
    /// The counting proxy the worker's `COORDINATOR_URL` points at, when it has one.
    pub counter: Option<SocketAddr>,
    /// The workerd process (where the worker's CPU time is spent).
    pub workerd_pid: u32,
    /// The node process (Miniflare; not on the request path).
    child: Child,
}

/// The first child of `parent` whose command name starts with `comm`.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(')?.1;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        (ppid == parent && name.starts_with(comm)).then_some(pid)
    })
}

impl Workerd {
    /// Starts `node bench/edge/serve.mjs <which>` from `root` with `env` and waits until it
    /// serves (at most 60 s).
    pub fn start(root: &Path, which: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        use std::io::BufRead as _;
        use std::os::unix::process::CommandExt as _;
        let script = root.join("bench/edge/serve.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(which)
            .current_dir(root)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .context("node must be installed (and `npm ci` run) to serve the worker")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let label = format!("{which} worker");
        // The first line says where it serves; the worker's own logs follow (keep draining
        // them, or a full pipe would stall node).
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for l in lines.map_while(Result::ok) {
                eprintln!("  [{label}] {l}");
            }
        });
        let mut me = Workerd {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            counter: None,
            workerd_pid: 0,
            child,
        };
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(l))) => l,
            _ => anyhow::bail!("{} did not start serving the {which} worker", script.display()),
        };
        #[derive(serde::Deserialize)]
        struct Ready {
            url: String,
            counter: Option<String>,
        }
        let ready: Ready = serde_json::from_str(&line)
            .with_context(|| format!("serve.mjs printed {line:?}, not its address"))?;
        me.addr = ready
            .url
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("bad address {}", ready.url))?;
        me.counter = ready.counter.map(|c| c.parse()).transpose()?;
        me.workerd_pid = child_named(me.child.id(), "workerd")
            .context("workerd is not a child of the node process")?;
        Ok(me)
    }

    /// The node process's id.
    pub fn node_pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        // Ask node to dispose Miniflare (it stops workerd), then make sure of it.
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
