//! The ticket-shop binary: config, tracing, bind, run.

use clap::Parser as _;
use ticket_shop::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cfg = Config::parse();
    let listen = cfg.listen;
    let state = ticket_shop::build(cfg)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        queue = %state.config().queue_id,
        report_health = state.config().report_health,
        "ticket shop listening"
    );
    ticket_shop::run(listener, state, shutdown_signal()).await?;
    tracing::info!("ticket shop stopped");
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
