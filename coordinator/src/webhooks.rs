//! Events to webhooks: operator-configured endpoints (stored in the registry, reloaded every
//! second) receive `token_generated`, `session_updated`, `serving_position_advanced` and
//! `queue_metrics` as JSON POSTs signed per the Standard Webhooks spec:
//!
//! - `webhook-id`: the event's id (the same on every retry, so receivers can drop repeats);
//! - `webhook-timestamp`: unix seconds of the attempt;
//! - `webhook-signature`: `v1,` and the base64 HMAC-SHA256, keyed with the bytes of the
//!   endpoint's secret (`whsec_<base64>`), of `<id>.<timestamp>.<body>`.
//!
//! Delivery never slows the caller: [`Webhooks::emit`] serializes the event and puts it in a
//! bounded buffer without waiting; a full buffer drops the event and counts it
//! (`anteroom_webhook_dropped_total`). One task takes events from the buffer and delivers each
//! to every endpoint that wants it, at most [`IN_FLIGHT`] deliveries at once, each retried
//! with exponential backoff ([`FIRST_RETRY`] doubling, [`ATTEMPTS`] attempts, one to two
//! minutes) until a 2xx: at least once while the process holds the event. An event held by a
//! process that stops is lost (the buffer is memory).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use shared::wire::{EventData, WebhookEvent};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::metrics::Metrics;
use crate::store::{RecordKind, Store, StoreResult};

/// Deliveries in flight at once (each may be waiting out a backoff).
pub const IN_FLIGHT: usize = 64;
/// Attempts per event and endpoint.
pub const ATTEMPTS: u32 = 9;
/// Wait before the first retry; it doubles after each failure (0.25 s .. 32 s: 63.75 s of
/// waiting over the [`ATTEMPTS`], plus up to 5 s per attempt).
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Time limit of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// The event types, as `type` and the endpoints' filters name them.
pub const EVENT_TYPES: [&str; 4] =
    ["token_generated", "session_updated", "serving_position_advanced", "queue_metrics"];

/// An endpoint as stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWebhook {
    /// Its id.
    pub id: String,
    /// Where events go.
    pub url: String,
    /// `whsec_<base64>`.
    pub secret: String,
    /// Event types sent; empty: all.
    pub events: Vec<String>,
    /// Queue slugs whose events are sent; empty: all.
    pub queues: Vec<String>,
    /// When it was added, unix ms.
    pub created_at: u64,
}

/// An endpoint ready to deliver to.
#[derive(Debug)]
struct Endpoint {
    url: String,
    /// The decoded secret.
    key: Vec<u8>,
    events: Vec<String>,
    queues: Vec<String>,
}

impl Endpoint {
    fn wants(&self, kind: &str, queue: &str) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| e == kind))
            && (self.queues.is_empty() || self.queues.iter().any(|q| q == queue))
    }
}

/// One event waiting for delivery.
#[derive(Debug)]
struct Pending {
    id: String,
    kind: &'static str,
    queue: String,
    body: Arc<Vec<u8>>,
}

/// The type name of an event.
pub fn kind_of(event: &EventData) -> &'static str {
    match event {
        EventData::TokenGenerated(_) => EVENT_TYPES[0],
        EventData::SessionUpdated(_) => EVENT_TYPES[1],
        EventData::ServingPositionAdvanced(_) => EVENT_TYPES[2],
        EventData::QueueMetrics(_) => EVENT_TYPES[3],
    }
}

/// A fresh signing secret: `whsec_` and the base64 of 24 random bytes.
pub fn fresh_secret() -> String {
    format!("whsec_{}", STANDARD.encode(&crate::keys::random32()[..24]))
}

/// The bytes an endpoint's secret signs with; `None` if it is not `whsec_<base64>`.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok().filter(|k| !k.is_empty())
}

/// `webhook-signature` of `body` sent as message `id` at unix second `ts`.
pub fn sign(key: &[u8], id: &str, ts: u64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Unix seconds as RFC 3339, UTC.
pub fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The webhook side of a coordinator process.
pub struct Webhooks {
    tx: mpsc::Sender<Pending>,
    /// Taken by [`Webhooks::run`].
    rx: Mutex<Option<mpsc::Receiver<Pending>>>,
    endpoints: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    /// A buffer of `capacity` events.
    pub fn new(capacity: usize, metrics: Option<Arc<Metrics>>) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Webhooks { tx, rx: Mutex::new(Some(rx)), endpoints: RwLock::default(), metrics }
    }

    fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        match self.endpoints.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Queues an event of `queue` that happened at unix second `at`, unless no endpoint
    /// wants it; never waits.
    pub fn emit(&self, queue: &str, at: u64, event: EventData) {
        let kind = kind_of(&event);
        if !self.endpoints().iter().any(|e| e.wants(kind, queue)) {
            return;
        }
        let body = WebhookEvent { timestamp: rfc3339(at), event };
        let Ok(body) = serde_json::to_vec(&body) else { return };
        let id = format!("msg_{}", shared::hex::encode(&crate::keys::random32()[..12]));
        let pending = Pending { id, kind, queue: queue.to_string(), body: Arc::new(body) };
        match self.tx.try_send(pending) {
            Ok(()) => self.count(|m| m.webhook_event(kind)),
            Err(_) => {
                tracing::warn!(kind, "webhook buffer full: event dropped");
                self.count(|m| m.webhook_dropped());
            }
        }
    }

    fn count(&self, f: impl FnOnce(&Metrics)) {
        if let Some(m) = &self.metrics {
            f(m);
        }
    }

    /// Reloads the endpoints from the store.
    pub async fn reload(&self, store: &dyn Store) -> StoreResult<()> {
        let mut all = Vec::new();
        for json in store.records(RecordKind::Webhook).await? {
            let Ok(w) = serde_json::from_str::<StoredWebhook>(&json) else { continue };
            let Some(key) = secret_key(&w.secret) else { continue };
            all.push(Arc::new(Endpoint { url: w.url, key, events: w.events, queues: w.queues }));
        }
        match self.endpoints.write() {
            Ok(mut g) => *g = Arc::new(all),
            Err(p) => *p.into_inner() = Arc::new(all),
        }
        Ok(())
    }

    /// Delivers buffered events until `stop` fires.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let rx = match self.rx.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(mut rx) = rx else { return };
        let Ok(client) = reqwest::Client::builder().timeout(POST_TIMEOUT).build() else {
            tracing::error!("webhooks disabled: no http client");
            return;
        };
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let event = tokio::select! {
                e = rx.recv() => match e { Some(e) => Arc::new(e), None => return },
                _ = stop.changed() => return,
            };
            for ep in self.endpoints().iter().filter(|e| e.wants(event.kind, &event.queue)) {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let (me, ep, event, client) =
                    (self.clone(), ep.clone(), event.clone(), client.clone());
                tokio::spawn(async move {
                    me.deliver(&client, &ep, &event).await;
                    drop(slot);
                });
            }
        }
    }

    /// POSTs one event to one endpoint until it answers 2xx or the attempts run out.
    async fn deliver(&self, client: &reqwest::Client, ep: &Endpoint, event: &Pending) {
        let mut wait = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            let ts = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let sent = client
                .post(&ep.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", &event.id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sign(&ep.key, &event.id, ts, &event.body))
                .body(event.body.as_ref().clone())
                .send()
                .await;
            if sent.as_ref().is_ok_and(|r| r.status().is_success()) {
                self.count(|m| m.webhook_delivery("delivered"));
                return;
            }
            let last = attempt == ATTEMPTS;
            self.count(|m| m.webhook_delivery(if last { "gave_up" } else { "failed" }));
            if last {
                tracing::warn!(kind = event.kind, id = %event.id, "webhook delivery gave up");
                return;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks spec's reference libraries.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(secret_key("nope"), None);
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
