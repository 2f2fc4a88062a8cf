//! The one per-isolate context, built from the environment on the isolate's first request
//! and handed to every handler (as `AppState` is in the coordinator): the deployment's
//! settings with `EDGE_KEY` and `TICKET_KEYS` parsed, the synced-state cache, the token cache,
//! the runtime's crypto, the poll jitter and the page assets. Vars and secrets do not change
//! within an isolate, so nothing reads the environment again.

use std::cell::RefCell;
use std::rc::Rc;

use shared::ticket::TicketKey;
use worker::Env;

use crate::coordinator::Coordinator;
use crate::http::{EdgeError, EdgeResult};
use crate::page::{Assets, Pages};
use crate::store::Synced;
use crate::tokens::TokenCache;
use crate::visit::Jitter;
use crate::webcrypto::Crypto;

/// Default route prefix when the `PREFIX` var is absent.
const DEFAULT_PREFIX: &str = "/anteroom";
/// KV binding name.
const KV: &str = "ANTEROOM_KV";

/// Everything a handler needs, once per isolate.
#[derive(Debug)]
pub struct Ctx {
    /// Route prefix, without a trailing `/`; may be empty (the contract's exact paths).
    pub prefix: String,
    /// `ORIGIN_URL`: where admitted visitors go (none: the request's own URL, the origin
    /// behind a Cloudflare route).
    pub origin_url: Option<String>,
    /// `UNSYNCED_FAIL_OPEN = "true"`: with nothing synced at all, let everyone through.
    pub unsynced_fail_open: bool,
    /// `EDGE_KEY`, parsed (or why it could not be).
    edge_key: Result<[u8; 32], String>,
    /// `TICKET_KEYS`, parsed (or why they could not be).
    ticket_keys: Result<Vec<TicketKey>, String>,
    /// The coordinator's address and the edge key.
    pub coordinator: Coordinator,
    /// Synced state: pulled, through the PoP's cache, and from KV.
    pub synced: Synced,
    /// Tokens checked in this isolate.
    pub tokens: TokenCache,
    /// The runtime's Ed25519.
    pub crypto: Crypto,
    /// Jitter of poll intervals.
    pub jitter: Jitter,
    /// The waiting-room pages and assets.
    pub pages: Pages,
}

thread_local! {
    /// The isolate's context: the only per-isolate state of the worker.
    static CTX: RefCell<Option<Rc<Ctx>>> = const { RefCell::new(None) };
}

/// A var or secret, `None` when absent or empty.
fn var(env: &Env, name: &str) -> Option<String> {
    let v =
        env.var(name).map(|v| v.to_string()).or_else(|_| env.secret(name).map(|s| s.to_string()));
    v.ok().filter(|s| !s.trim().is_empty())
}

impl Ctx {
    /// The isolate's context, built from `env` on first use.
    pub fn get(env: &Env) -> Rc<Ctx> {
        if let Some(c) = CTX.with_borrow(Clone::clone) {
            return c;
        }
        let c = Rc::new(Ctx::build(env));
        CTX.with_borrow_mut(|slot| *slot = Some(c.clone()));
        c
    }

    fn build(env: &Env) -> Ctx {
        // Not `var`: an empty PREFIX is meaningful (the contract's exact paths).
        let prefix =
            env.var("PREFIX").map_or_else(|_| DEFAULT_PREFIX.to_owned(), |v| v.to_string());
        let prefix = prefix.trim_end_matches('/').to_owned();
        let edge_key =
            var(env, "EDGE_KEY").ok_or_else(|| "EDGE_KEY is not set".to_owned()).and_then(|k| {
                shared::hex::decode32(k.trim())
                    .ok_or_else(|| "EDGE_KEY must be 64 hex characters".to_owned())
            });
        let ticket_keys = var(env, "TICKET_KEYS")
            .ok_or_else(|| "TICKET_KEYS is not set".to_owned())
            .and_then(|t| shared::ticket::parse_keys(&t).map_err(|e| format!("TICKET_KEYS: {e}")));
        let coordinator =
            Coordinator { url: var(env, "COORDINATOR_URL"), key: edge_key.as_ref().ok().copied() };
        // Pulls are on whenever they can be; `STATE_PULL = "off"` keeps to KV and pushes.
        let pulls = coordinator.can_pull() && var(env, "STATE_PULL").as_deref() != Some("off");
        Ctx {
            synced: Synced::new(env.kv(KV).ok(), pulls.then(|| coordinator.clone())),
            coordinator,
            origin_url: var(env, "ORIGIN_URL"),
            unsynced_fail_open: var(env, "UNSYNCED_FAIL_OPEN").as_deref() == Some("true"),
            edge_key,
            ticket_keys,
            tokens: TokenCache::default(),
            crypto: Crypto::default(),
            jitter: Jitter::default(),
            pages: Pages { prefix: prefix.clone(), assets: Assets::new() },
            prefix,
        }
    }

    /// The 32-byte `EDGE_KEY`.
    pub fn edge_key(&self) -> EdgeResult<[u8; 32]> {
        self.edge_key.clone().map_err(EdgeError::Internal)
    }

    /// The ticket keys of `TICKET_KEYS`.
    pub fn ticket_keys(&self) -> EdgeResult<&[TicketKey]> {
        self.ticket_keys.as_deref().map_err(|e| EdgeError::Internal(e.clone()))
    }
}
