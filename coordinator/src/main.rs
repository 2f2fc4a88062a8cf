//! The coordinator binary: config, tracing, bind, run.

use clap::Parser as _;
use coordinator::state::Clock;
use coordinator::{Config, Limits};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's allocator: the allocator was 13-18% of the coordinator's CPU
/// in the enqueue and status profiles (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cfg = Config::parse();
    cfg.validate().map_err(anyhow::Error::msg)?;
    let store = coordinator::open_store(&cfg).await?;
    let state = coordinator::start(&cfg, store.clone(), Clock::System).await?;
    let public = tokio::net::TcpListener::bind(cfg.listen).await?;
    let admin = tokio::net::TcpListener::bind(cfg.admin_listen).await?;
    tracing::info!(
        public = %public.local_addr()?,
        admin = %admin.local_addr()?,
        store = store.kind(),
        "coordinator listening"
    );
    let limits = Limits {
        timeout: std::time::Duration::from_millis(cfg.request_timeout_ms),
        concurrency: cfg.concurrency_limit,
    };
    coordinator::run(public, admin, state, limits, shutdown_signal()).await?;
    tracing::info!("coordinator stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
