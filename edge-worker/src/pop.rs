//! The PoP's cache: the Cache API, shared by the isolates of one Cloudflare location (not
//! replicated to others), where a pulled answer waits for the other isolates with the time it
//! was pulled. It only saves pulls: any failure here is logged and treated as a miss.
//!
//! The Cache API works on a custom domain only (on `*.workers.dev` and in previews its
//! operations do nothing): there every isolate pulls for itself, which the coordinator's own
//! snapshot cache absorbs.

use std::cell::OnceCell;

use worker::{Cache, Response};

/// Header on a cached entry: when the edge pulled it, unix ms by the edge's clock.
const PULLED_AT: &str = "x-anteroom-pulled-at";
/// How long the PoP keeps an entry, seconds: far beyond `FRESH_MS`, so an isolate that starts
/// while the coordinator is unreachable still finds the last pull (newer than KV's copy).
const KEEP_SECS: u32 = 300;

/// The Cache API, opened on first use, keyed under the first origin this isolate served.
#[derive(Debug, Default)]
pub struct PopCache {
    cache: OnceCell<Cache>,
    base: OnceCell<String>,
}

impl PopCache {
    /// Whether entries have a key base yet.
    pub fn has_base(&self) -> bool {
        self.base.get().is_some()
    }

    /// Keys entries under `origin` (`https://host`), a host of the worker's own zone, once.
    pub fn set_base(&self, origin: &str) {
        let _ = self.base.set(format!("{origin}/__anteroom/pop/"));
    }

    fn key(&self, what: &str) -> Option<String> {
        self.base.get().map(|b| format!("{b}{what}"))
    }

    fn cache(&self) -> &Cache {
        self.cache.get_or_init(Cache::default)
    }

    /// The entry `what` (e.g. `state/shop`) and when it was pulled, if the PoP has it.
    pub async fn get(&self, what: &str) -> Option<(Vec<u8>, u64)> {
        let key = self.key(what)?;
        let mut resp = match self.cache().get(key.as_str(), false).await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                worker::console_warn!("pop cache read failed: {e}");
                return None;
            }
        };
        let at: u64 = resp.headers().get(PULLED_AT).ok().flatten()?.parse().ok()?;
        Some((resp.bytes().await.ok()?, at))
    }

    /// Stores `body` as the entry `what`, pulled at `pulled_at`.
    pub async fn put(&self, what: &str, body: &[u8], pulled_at: u64) {
        let Some(key) = self.key(what) else { return };
        let put = async {
            let mut resp = Response::from_bytes(body.to_vec())?;
            let h = resp.headers_mut();
            h.set("cache-control", &format!("max-age={KEEP_SECS}"))?;
            h.set(PULLED_AT, &pulled_at.to_string())?;
            self.cache().put(key.as_str(), resp).await
        };
        if let Err(e) = put.await {
            worker::console_warn!("pop cache write failed: {e}");
        }
    }
}
