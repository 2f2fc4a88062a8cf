//! The coordinator binary: config, tracing, bind, run.

use clap::Parser as _;
use coordinator::Config;
use coordinator::state::Clock;
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
    coordinator::spawn(&cfg, Clock::System).await?.until(shutdown_signal()).await?;
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
