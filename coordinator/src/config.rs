//! Configuration from CLI flags and environment variables.

use std::net::SocketAddr;
use std::str::FromStr;

use std::time::Duration;

use clap::Parser;

/// A secret value: parsed like a string, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Coordinator settings. Every flag also reads an `ANTEROOM_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "coordinator", version, about = "Anteroom coordinator")]
pub struct Config {
    /// Public API address (visitors and edges).
    #[arg(long, env = "ANTEROOM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Private (operator) API address; keep it off the public network.
    #[arg(long, env = "ANTEROOM_ADMIN_LISTEN", default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Bearer key for the private API (at least 16 characters).
    #[arg(long, env = "ANTEROOM_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Secret,
    /// Bearer key for the protected origin (at least 16 characters): it may only end
    /// sessions (`update_token_status`) and report health telemetry, nothing else.
    #[arg(long, env = "ANTEROOM_ORIGIN_KEY", hide_env_values = true)]
    pub origin_key: Option<Secret>,
    /// Redis URL, e.g. `redis://127.0.0.1:6379/0`. Without it (and without a cluster), the
    /// coordinator runs on an in-memory store: single node, nothing survives a restart.
    #[arg(long, env = "ANTEROOM_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes, comma-separated URLs (instead of `--redis-url`).
    #[arg(long, env = "ANTEROOM_REDIS_CLUSTER", value_delimiter = ',')]
    pub redis_cluster: Vec<String>,
    /// Replicas that must acknowledge each write before it is answered (Redis `WAIT`).
    #[arg(long, env = "ANTEROOM_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,
    /// Ticket MAC keys, `<id>:<64 hex>[,…]`, first one signs. Default: generated once and
    /// persisted in the store.
    #[arg(long, env = "ANTEROOM_TICKET_KEYS", hide_env_values = true)]
    pub ticket_keys: Option<Secret>,
    /// Ed25519 signing seed, 64 hex. Default: generated once and persisted in the store.
    #[arg(long, env = "ANTEROOM_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<Secret>,
    /// Secret shared with the edge worker (64 hex): MACs of the sync channel, of the client
    /// IP header and of proof-of-work challenges. Required for proof-of-work and publishing.
    #[arg(long, env = "ANTEROOM_EDGE_KEY", hide_env_values = true)]
    pub edge_key: Option<Secret>,
    /// Accept public calls only from the edge: a call without a valid MAC'd client header
    /// (`x-anteroom-client`, signed with the edge key) is refused with 403, except the JWKS,
    /// the pre-queue record and the health checks. Default: on whenever an edge key is set.
    #[arg(long, env = "ANTEROOM_EDGE_ONLY")]
    pub edge_only: Option<bool>,
    /// The edge worker's sync endpoint, e.g. `https://shop.example/anteroom/__anteroom/sync`.
    /// Without it nothing is published.
    #[arg(long, env = "ANTEROOM_EDGE_SYNC_URL")]
    pub edge_sync_url: Option<String>,
    /// Publish each queue's state at least this often, milliseconds (changes are published
    /// sooner, but never more than once per second per queue: the KV write limit).
    #[arg(long, env = "ANTEROOM_PUBLISH_INTERVAL_MS", default_value_t = 2000)]
    pub publish_interval_ms: u64,
    /// `iss` of issued tokens.
    #[arg(long, env = "ANTEROOM_ISSUER", default_value = "anteroom")]
    pub issuer: String,
    /// Per-request time limit, milliseconds.
    #[arg(long, env = "ANTEROOM_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// Requests handled at once per listener before new ones are shed with 503.
    #[arg(long, env = "ANTEROOM_CONCURRENCY_LIMIT", default_value_t = 8192)]
    pub concurrency_limit: usize,
    /// Largest group-commit batch of `assign_queue_pos`.
    #[arg(long, env = "ANTEROOM_MAX_BATCH", default_value_t = 4096)]
    pub max_batch: usize,
    /// Prometheus metrics (`GET /metrics` on the private listener). `false` records nothing
    /// and answers 404 there (the bench's "metrics off" baseline).
    #[arg(long, env = "ANTEROOM_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,
    /// A bearer key (at least 16 characters) that may read `/metrics` and nothing else, for
    /// the Prometheus server; admin keys may read it too.
    #[arg(long, env = "ANTEROOM_METRICS_KEY", hide_env_values = true)]
    pub metrics_key: Option<Secret>,
    /// Audit entries kept (about; the oldest are trimmed).
    #[arg(long, env = "ANTEROOM_AUDIT_KEEP", default_value_t = 100_000)]
    pub audit_keep: u64,
    /// Minutes of per-minute report samples kept per queue (2880: two days).
    #[arg(long, env = "ANTEROOM_REPORT_MINUTES", default_value_t = 2880)]
    pub report_minutes: u64,
    /// Webhook events held in memory for delivery; beyond it new events are dropped and
    /// counted (`anteroom_webhook_dropped_total`).
    #[arg(long, env = "ANTEROOM_WEBHOOK_BUFFER", default_value_t = 10_000)]
    pub webhook_buffer: usize,
    /// The operator console at `/console` on the private listener.
    #[arg(long, env = "ANTEROOM_CONSOLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub console: bool,
    /// Mark the console's session cookie `Secure`: set it when operators reach the private
    /// listener over https (a TLS proxy in front of it); browsers then send it over https only.
    #[arg(long, env = "ANTEROOM_CONSOLE_SECURE_COOKIE", default_value_t = false, action = clap::ArgAction::Set)]
    pub console_secure_cookie: bool,
    /// How long a console session lasts, seconds (default 12 hours).
    #[arg(long, env = "ANTEROOM_CONSOLE_SESSION_SECS", default_value_t = 43_200)]
    pub console_session_secs: u64,
}

impl Config {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.admin_key.0.len() < 16 {
            return Err("admin key must be at least 16 characters".into());
        }
        if self.origin_key.as_ref().is_some_and(|k| k.0.len() < 16 || *k == self.admin_key) {
            return Err(
                "origin key must be at least 16 characters and differ from the admin key".into()
            );
        }
        if self.metrics_key.as_ref().is_some_and(|k| {
            k.0.len() < 16 || *k == self.admin_key || Some(k) == self.origin_key.as_ref()
        }) {
            return Err("metrics key must be at least 16 characters and differ from the admin \
                        and origin keys"
                .into());
        }
        if self.audit_keep == 0 || self.report_minutes == 0 || self.webhook_buffer == 0 {
            return Err("audit keep, report minutes and webhook buffer must be positive".into());
        }
        if self.redis_url.is_some() && !self.redis_cluster.is_empty() {
            return Err("give either a redis url or redis cluster nodes, not both".into());
        }
        if let Some(k) = &self.edge_key {
            shared::hex::decode32(k.0.trim()).ok_or("edge key must be 64 hex characters")?;
        }
        if self.edge_only == Some(true) && self.edge_key.is_none() {
            return Err("edge-only mode needs an edge key".into());
        }
        if self.edge_sync_url.is_some() && self.edge_key.is_none() {
            return Err("publishing to the edge needs an edge key".into());
        }
        if self.publish_interval_ms < 1000 {
            return Err("publish interval must be at least 1000 ms (the KV write limit)".into());
        }
        if !(60..=7 * 86_400).contains(&self.console_session_secs) {
            return Err("console session must last 60 s to 7 days".into());
        }
        if self.max_batch == 0 || self.concurrency_limit == 0 {
            return Err("max batch and concurrency limit must be positive".into());
        }
        Ok(())
    }
}

/// Settings of the publisher.
#[derive(Clone)]
pub struct PublishConfig {
    /// The worker's sync endpoint.
    pub url: String,
    /// Shared secret with the edge.
    pub key: [u8; 32],
    /// Longest time between two publishes of a queue.
    pub interval: Duration,
}

impl std::fmt::Debug for PublishConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishConfig").field("url", &self.url).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn check(extra: &[&str], ok: bool) {
        let mut args = vec!["coordinator", "--admin-key", "admin-key-0123456789"];
        args.extend_from_slice(extra);
        let cfg = Config::try_parse_from(&args).unwrap();
        assert_eq!(cfg.validate().is_ok(), ok, "{extra:?}");
    }

    #[test]
    fn the_keys_are_long_and_tell_their_holders_apart() {
        let origin = ["--origin-key", "origin-key-0123456789"];
        check(&origin, true);
        check(&["--metrics-key", "metrics-key-0123456789"], true);
        check(&["--metrics-key", "short"], false);
        check(&["--metrics-key", "admin-key-0123456789"], false);
        // The same key for the origin and Prometheus would be taken for the origin's alone.
        check(&[&origin[..], &["--metrics-key", "origin-key-0123456789"]].concat(), false);
        check(&["--audit-keep", "0"], false);
    }
}
