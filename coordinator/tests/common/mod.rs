//! Test harness: real `redis-server` processes on free loopback ports (single and cluster),
//! and coordinators started in-process or as separate processes.
#![allow(dead_code, clippy::unwrap_used, reason = "shared by several test binaries")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use coordinator::state::{AppState, Clock};
use coordinator::store::Store;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const ORIGIN_KEY: &str = "test-origin-key-0123456789";
/// The edge key of test coordinators, and its bytes.
pub const EDGE_KEY: &str = "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5";
pub const EDGE_KEY_BYTES: [u8; 32] = [0xa5; 32];

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
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

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` until it returns `Some`, or panics after `secs`.
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

/// Sends one inline command to a Redis port and returns the raw reply.
pub fn redis_raw(port: u16, cmd: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
    let mut buf = vec![0u8; 65536];
    let n = s.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A real redis-server on a free loopback port, killed on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
    dir: TempDir,
    extra: Vec<String>,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Option<Self> {
        Self::spawn(port, TempDir::new("redis"), extra.iter().map(|s| s.to_string()).collect())
    }

    fn spawn(port: u16, dir: TempDir, extra: Vec<String>) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir.0)
            .args(&extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        let mut r = Redis { port, child, dir, extra };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_raw(port, "PING").is_some_and(|s| s.starts_with("+PONG")) {
                return Some(r);
            }
            if let Ok(Some(_)) = r.child.try_wait() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn start_with(extra: &[&str]) -> Self {
        for _ in 0..5 {
            if let Some(r) = Self::start_on(free_port(), extra) {
                return r;
            }
        }
        panic!("could not start redis-server");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Bytes used, from `INFO memory`.
    pub fn used_memory(&self) -> u64 {
        let info = redis_raw(self.port, "INFO memory").unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    /// Kills the server (as a crash would) but keeps its directory.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and directory (data persists with `--appendonly yes`).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(&self.dir.0)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = child;
        let port = self.port;
        wait_for("redis restart", 10, || {
            redis_raw(port, "PING").filter(|s| s.starts_with("+PONG")).map(|_| ())
        });
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real 3-master Redis Cluster on loopback.
pub struct Cluster {
    pub nodes: Vec<Redis>,
}

impl Cluster {
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
                    .filter(|s| s.contains("cluster_state:ok"))
                    .map(|_| ())
            });
        }
        Cluster { nodes }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }
}

/// A coordinator config for tests.
pub fn config(redis_url: Option<String>) -> coordinator::Config {
    config_with(redis_url, &["--edge-only", "false"])
}

/// A coordinator config for tests, with more flags.
pub fn config_with(redis_url: Option<String>, extra: &[&str]) -> coordinator::Config {
    use clap::Parser as _;
    let mut args = vec![
        "coordinator".to_string(),
        "--admin-key".into(),
        ADMIN_KEY.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
        "--edge-key".into(),
        EDGE_KEY.into(),
        "--origin-key".into(),
        ORIGIN_KEY.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    if let Some(u) = redis_url {
        args.push("--redis-url".into());
        args.push(u);
    }
    coordinator::Config::try_parse_from(args).unwrap()
}

/// State over a given store, with a manual clock (milliseconds) starting at `t0` seconds.
/// Public calls need no edge header (the tests call as the edge would).
pub async fn state_with(
    store: Arc<dyn Store>,
    t0: u64,
) -> (AppState, Arc<std::sync::atomic::AtomicU64>) {
    state_with_config(store, t0, &config(None)).await
}

/// State over a given store and config, with a manual clock starting at `t0` seconds.
pub async fn state_with_config(
    store: Arc<dyn Store>,
    t0: u64,
    cfg: &coordinator::Config,
) -> (AppState, Arc<std::sync::atomic::AtomicU64>) {
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(t0 * 1000));
    let state = coordinator::start(cfg, store, Clock::Manual(clock.clone())).await.unwrap();
    (state, clock)
}

/// A coordinator running as its own process (the real binary), killed on drop.
pub struct Process {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    child: Child,
}

impl Process {
    pub fn start(envs: &[(&str, String)]) -> Self {
        for _ in 0..5 {
            let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_coordinator"));
            cmd.env("ANTEROOM_LISTEN", public.to_string())
                .env("ANTEROOM_ADMIN_LISTEN", admin.to_string())
                .env("ANTEROOM_ADMIN_KEY", ADMIN_KEY)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            for (k, v) in envs {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut up = false;
            while Instant::now() < deadline {
                if http_get_status(admin, "/healthz") == Some(200)
                    && http_get_status(public, "/healthz") == Some(200)
                {
                    up = true;
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return Process { public, admin, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("coordinator process did not start");
    }

    /// Stops it with SIGTERM (graceful) and waits.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
