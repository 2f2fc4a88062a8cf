//! The one test kit of the workspace: real `redis-server` processes (single, and a 3-master
//! cluster) and coordinator processes on free loopback ports, each killed and reaped when its
//! guard drops; free ports; polling until a condition holds; raw Redis commands. Standard
//! library only, so any crate's tests (and the bench) can use it.
#![allow(clippy::unwrap_used, reason = "test harness: a failure here is a failed test")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A loopback address nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `secs`.
pub fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory named after `tag`, this process and a counter.
    pub fn new(tag: &str) -> Self {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("anteroom-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct Guard {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Guard {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it now (as a crash would) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends one inline command to a Redis port and returns the raw reply (reading a bulk reply
/// until all of it has arrived).
pub fn redis_raw(port: u16, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = s.read(&mut buf)?;
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some(rest) = text.strip_prefix('$')
            && let Some((len, _)) = rest.split_once("\r\n")
        {
            let len: i64 = len.trim().parse().unwrap_or(-1);
            let whole = usize::try_from(len).map_or(0, |l| l + 2) + 3 + len.to_string().len();
            if out.len() >= whole || n == 0 {
                break;
            }
            continue;
        }
        if n == 0 || text.ends_with("\r\n") {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A real redis-server on a free loopback port, without persistence unless `extra` asks.
#[derive(Debug)]
pub struct Redis {
    /// Its port.
    pub port: u16,
    guard: Guard,
    dir: TempDir,
    extra: Vec<String>,
}

impl Redis {
    /// Starts one (retrying on another port if the first is taken meanwhile).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        for _ in 0..5 {
            if let Some(r) = Self::start_on(free_port(), extra) {
                return r;
            }
        }
        panic!("could not start redis-server");
    }

    /// Starts one on `port`; `None` if it did not come up.
    pub fn start_on(port: u16, extra: &[&str]) -> Option<Self> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let dir = TempDir::new("redis");
        let guard = Self::spawn(port, &dir.0, &extra);
        let mut r = Redis { port, guard, dir, extra };
        r.wait_up().then_some(r)
    }

    fn spawn(port: u16, dir: &Path, extra: &[String]) -> Guard {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--maxclients", "10000", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        Guard { child, name: "redis-server".into() }
    }

    fn wait_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_raw(self.port, "PING").is_ok_and(|s| s.starts_with("+PONG")) {
                return true;
            }
            if let Ok(Some(_)) = self.guard.child.try_wait() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Kills the server (as a crash would) but keeps its directory.
    pub fn kill(&mut self) {
        self.guard.kill();
    }

    /// Starts it again on the same port and directory (data persists with `--appendonly yes`).
    pub fn restart(&mut self) {
        self.kill();
        self.guard = Self::spawn(self.port, &self.dir.0, &self.extra);
        assert!(self.wait_up(), "redis did not restart");
    }

    /// One field of `INFO`, as an integer.
    pub fn info_u64(&self, section: &str, field: &str) -> Option<u64> {
        let info = redis_raw(self.port, &format!("INFO {section}")).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
    }

    /// `used_memory` from `INFO memory`.
    pub fn used_memory(&self) -> u64 {
        self.info_u64("memory", "used_memory").unwrap()
    }

    /// `MEMORY USAGE key` (0 when the key does not exist).
    pub fn key_usage(&self, key: &str) -> u64 {
        redis_raw(self.port, &format!("MEMORY USAGE {key} SAMPLES 0"))
            .ok()
            .and_then(|r| r.trim().strip_prefix(':').and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    }
}

/// A real 3-master Redis Cluster on loopback.
#[derive(Debug)]
pub struct Cluster {
    /// Its nodes.
    pub nodes: Vec<Redis>,
}

impl Cluster {
    /// Starts three nodes and joins them (`redis-cli --cluster create`).
    pub fn start() -> Self {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::start_with(&["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for n in &nodes {
            wait_for("cluster state ok", 20, || {
                redis_raw(n.port, "CLUSTER INFO")
                    .ok()
                    .filter(|s| s.contains("cluster_state:ok"))
                    .map(|_| ())
            });
        }
        Cluster { nodes }
    }

    /// Its nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }
}

/// Status of a plain GET, or `None` if nothing answers.
pub fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// A coordinator process (the real binary) on loopback, killed on drop.
#[derive(Debug)]
pub struct Coordinator {
    /// Public API.
    pub public: SocketAddr,
    /// Private API.
    pub admin: SocketAddr,
    /// The process.
    pub guard: Guard,
}

impl Coordinator {
    /// Starts `bin` on free ports with `env` (`ANTEROOM_*`; the listeners are set here),
    /// retrying on other ports; panics if it never becomes healthy.
    pub fn start(bin: &Path, env: &[(&str, String)]) -> Self {
        for _ in 0..5 {
            if let Some(c) = Self::start_at(bin, free_addr(), free_addr(), env) {
                return c;
            }
        }
        panic!("coordinator process did not start");
    }

    /// Starts `bin` on the given addresses; `None` if it did not become healthy (e.g. a port
    /// was taken meanwhile).
    pub fn start_at(
        bin: &Path,
        public: SocketAddr,
        admin: SocketAddr,
        env: &[(&str, String)],
    ) -> Option<Self> {
        assert!(bin.exists(), "{} not found: build it first", bin.display());
        let child = Command::new(bin)
            .env("ANTEROOM_LISTEN", public.to_string())
            .env("ANTEROOM_ADMIN_LISTEN", admin.to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut guard = Guard { child, name: "coordinator".into() };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if [public, admin].iter().all(|a| http_get_status(*a, "/healthz") == Some(200)) {
                return Some(Coordinator { public, admin, guard });
            }
            if let Ok(Some(_)) = guard.child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops it with SIGTERM (graceful) and waits.
    pub fn stop(mut self) {
        let pid = self.guard.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.guard.child.wait();
    }
}
