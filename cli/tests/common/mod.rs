//! The CLI tests' stack: a real `redis-server` on a free loopback port (the workspace's test
//! kit) and the coordinator in this process on loopback sockets, until `stop` (or drop).
#![allow(dead_code, clippy::unwrap_used, reason = "shared by several test binaries")]

use std::net::SocketAddr;

use anteroom_cli::admin::AdminArgs;
use clap::Parser as _;
use testkit::Redis;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The coordinator's bootstrap admin key in these tests.
pub const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";

/// Redis and a coordinator over it.
pub struct Stack {
    _redis: Redis,
    /// The public listener.
    pub public: SocketAddr,
    /// The private listener.
    pub admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Stack {
    /// Starts Redis and a coordinator; with `edge_key` (64 hex) it is edge-only, as deployed,
    /// without it the public API answers direct calls.
    pub async fn start(edge_key: Option<&str>) -> Stack {
        let redis = Redis::start();
        let url = redis.url();
        let mut args = vec![
            "coordinator",
            "--admin-key",
            ADMIN_KEY,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--redis-url",
            &url,
        ];
        if let Some(k) = edge_key {
            args.extend(["--edge-key", k]);
        }
        let cfg = coordinator::Config::try_parse_from(args).unwrap();
        cfg.validate().unwrap();
        let store = coordinator::open_store(&cfg).await.unwrap();
        let state =
            coordinator::start(&cfg, store, coordinator::state::Clock::System).await.unwrap();
        let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let limits = coordinator::Limits::default();
            coordinator::run(public, admin, state, limits, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Stack {
            _redis: redis,
            public: public_addr,
            admin: admin_addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Where the private API is, with the admin key.
    pub fn admin_args(&self) -> AdminArgs {
        AdminArgs { admin_url: format!("http://{}", self.admin), admin_key: Some(ADMIN_KEY.into()) }
    }

    /// Stops the coordinator and waits for it.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop.take();
    }
}
