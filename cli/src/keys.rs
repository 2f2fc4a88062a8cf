//! `anteroom keys list | add NAME | revoke NAME | rotate`: named admin keys (the bootstrap key
//! manages them; a new key is shown once, only its digest is stored) and the token signing
//! key's rotation.

use shared::token::Jwks;
use shared::wire::{AdminKeyView, NewAdminKey};

use crate::out::{Common, table, utc};

/// `anteroom keys ...`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// The keys subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The named admin keys (never the keys themselves).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Add a named admin key; it is printed once, keep it.
    #[command(after_help = "Examples:\n  anteroom keys add ops-alice")]
    Add {
        /// Its name, `[a-z0-9_-]{1,32}`: audit entries name it.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a named admin key (and its console sessions), everywhere within a second.
    Revoke {
        /// Its name.
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Rotate the token signing key (the old one stays in the JWKS until its tokens expire).
    Rotate {
        #[command(flatten)]
        common: Common,
    },
}

/// Runs a keys subcommand.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::List { common } => {
            let keys: Vec<AdminKeyView> =
                common.admin()?.get("/api/admin_keys", "list the keys").await?;
            common.print(&keys, |ks| {
                if ks.is_empty() {
                    return "no named keys (the bootstrap key is configured, not listed)".into();
                }
                let rows: Vec<Vec<String>> = ks
                    .iter()
                    .map(|k| vec![k.name.clone(), utc(k.created_at), k.created_by.clone()])
                    .collect();
                table(&["NAME", "ADDED", "BY"], &rows)
            })
        }
        Command::Add { name, common } => {
            let body = serde_json::json!({ "name": name });
            let k: NewAdminKey = common
                .admin()?
                .json(reqwest::Method::POST, "/api/admin_keys", &body, "add the key")
                .await?;
            common.print(&k, |k| format!("added {}; its key (shown this once):\n{}", k.name, k.key))
        }
        Command::Revoke { name, common } => {
            common.admin()?.delete(&format!("/api/admin_keys/{name}"), "revoke the key").await?;
            common.print(&serde_json::json!({ "revoked": name }), |_| format!("revoked {name}"))
        }
        Command::Rotate { common } => {
            let jwks: Jwks =
                common.admin()?.post("/api/keys/rotate", "rotate the signing key").await?;
            common.print(&jwks, |j| {
                let kids: Vec<String> = j.keys.iter().map(|k| k.kid.clone()).collect();
                format!("rotated; the JWKS now holds {}", kids.join(", "))
            })
        }
    }
}
