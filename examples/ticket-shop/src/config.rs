//! The shop's configuration from flags and `SHOP_*` environment variables.
//!
//! There is deliberately no place for the coordinator's operator (admin) key: the shop only
//! ever holds the origin key, which can end sessions and report health, nothing else.

use std::net::SocketAddr;
use std::str::FromStr;

use clap::Parser;
use clap::builder::BoolishValueParser;

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

/// Shop settings. Every flag also reads a `SHOP_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticket-shop", version, about = "Anteroom demo origin: a protected ticket shop")]
pub struct Config {
    /// Address the shop listens on (the edge worker proxies admitted visitors here).
    #[arg(long, env = "SHOP_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Slug of the queue protecting the shop: tokens must carry it as `aud`.
    #[arg(long, env = "SHOP_QUEUE_ID")]
    pub queue_id: String,
    /// Expected `iss` of tokens (the coordinator's `ANTEROOM_ISSUER`).
    #[arg(long, env = "SHOP_ISSUER", default_value = "anteroom")]
    pub issuer: String,
    /// The coordinator's public API, where the JWKS is fetched from.
    #[arg(long, env = "SHOP_COORDINATOR_PUBLIC", default_value = "http://127.0.0.1:8080")]
    pub coordinator_public: String,
    /// The coordinator's private API, for ending sessions and reporting health.
    #[arg(long, env = "SHOP_COORDINATOR_ADMIN", default_value = "http://127.0.0.1:8081")]
    pub coordinator_admin: String,
    /// The coordinator's `ANTEROOM_ORIGIN_KEY` (never the operator key).
    #[arg(long, env = "SHOP_ORIGIN_KEY", hide_env_values = true)]
    pub origin_key: Secret,
    /// Report health telemetry (p95 latency, error rate, in-flight) to the coordinator.
    #[arg(
        long,
        env = "SHOP_REPORT_HEALTH",
        default_value = "false",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub report_health: bool,
    /// How often health telemetry is reported, milliseconds.
    #[arg(long, env = "SHOP_HEALTH_INTERVAL_MS", default_value_t = 2000)]
    pub health_interval_ms: u64,
    /// Least time between two JWKS fetches triggered by an unknown `kid`, milliseconds.
    #[arg(long, env = "SHOP_JWKS_REFETCH_MS", default_value_t = 5000)]
    pub jwks_refetch_ms: u64,
    /// Public URL of the protected site (through the edge), linked from the refusal page.
    #[arg(long, env = "SHOP_JOIN_URL")]
    pub join_url: Option<String>,
}

impl Config {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        let q = &self.queue_id;
        let slug = (1..=32).contains(&q.len())
            && q.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !slug {
            return Err("queue id must match [a-z0-9_-]{1,32}".into());
        }
        if self.origin_key.0.len() < 16 {
            return Err("origin key must be at least 16 characters".into());
        }
        for (name, url) in [
            ("coordinator public url", &self.coordinator_public),
            ("coordinator admin url", &self.coordinator_admin),
        ] {
            let u = reqwest::Url::parse(url).map_err(|_| format!("{name} is not a url"))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(format!("{name} must be http or https"));
            }
        }
        if let Some(j) = &self.join_url {
            let u = reqwest::Url::parse(j).map_err(|_| "join url is not a url".to_string())?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err("join url must be http or https".into());
            }
        }
        if self.health_interval_ms < 100 {
            return Err("health interval must be at least 100 ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config, clap::Error> {
        let mut args =
            vec!["ticket-shop", "--queue-id", "demo", "--origin-key", "origin-key-0123456789"];
        args.extend_from_slice(extra);
        Config::try_parse_from(args)
    }

    #[test]
    fn defaults_and_validation() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000");
        assert_eq!(c.issuer, "anteroom");
        assert!(!c.report_health);
        assert!(c.validate().is_ok());
        assert!(format!("{c:?}").contains("Secret(***)"));
        assert!(!format!("{c:?}").contains("origin-key-0123456789"));
        assert!(parse(&["--report-health"]).unwrap().report_health);
        assert!(parse(&["--report-health", "1"]).unwrap().report_health);
        assert!(!parse(&["--report-health", "0"]).unwrap().report_health);
        let bad: [fn(&mut Config); 5] = [
            |c| c.queue_id = "Not A Slug".into(),
            |c| c.origin_key = Secret("short".into()),
            |c| c.coordinator_admin = "ftp://x".into(),
            |c| c.coordinator_public = "nope".into(),
            |c| c.join_url = Some("javascript:alert(1)".into()),
        ];
        for (i, spoil) in bad.iter().enumerate() {
            let mut c = parse(&[]).unwrap();
            spoil(&mut c);
            assert!(c.validate().is_err(), "case {i}");
        }
    }

    #[test]
    fn there_is_no_admin_key_setting() {
        assert!(parse(&["--admin-key", "test-admin-key-0123456789"]).is_err());
    }
}
