//! The CLI tests' stack: a real `redis-server` on a free loopback port (the workspace's test
//! kit) and the coordinator in this process on loopback sockets, until `stop` (or drop).
#![allow(dead_code, clippy::unwrap_used, reason = "shared by several test binaries")]

use std::net::SocketAddr;

use anteroom_cli::admin::AdminArgs;
use clap::Parser as _;
use testkit::Redis;

/// The coordinator's bootstrap admin key in these tests.
pub const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";

/// Redis and a coordinator over it.
pub struct Stack {
    /// The coordinator, stopped (on drop too) before Redis goes.
    running: Option<coordinator::Running>,
    _redis: Redis,
    /// The public listener.
    pub public: SocketAddr,
    /// The private listener.
    pub admin: SocketAddr,
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
        let running = coordinator::spawn(&cfg, coordinator::state::Clock::System).await.unwrap();
        Stack {
            _redis: redis,
            public: running.public,
            admin: running.admin,
            running: Some(running),
        }
    }

    /// Where the private API is, with the admin key.
    pub fn admin_args(&self) -> AdminArgs {
        AdminArgs { admin_url: format!("http://{}", self.admin), admin_key: Some(ADMIN_KEY.into()) }
    }

    /// Stops the coordinator and waits for it.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
    }
}
