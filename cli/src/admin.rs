//! The coordinator's private (operator) API as the command line reaches it: where it is and
//! the key (flags or `ANTEROOM_ADMIN_URL` / `ANTEROOM_ADMIN_KEY`), and the calls commands make.
//! Every refusal becomes an error naming the call, the status and the API's own message.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::wire::{ErrorBody, QueueConfig, QueueStatus};

pub use crate::failure::Refusal;

/// Where the private API is and the operator's key; flattened into every command that needs
/// them, so they read the same flags and variables.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The coordinator's private API (its admin listener).
    #[arg(long, env = "ANTEROOM_ADMIN_URL", default_value = "http://127.0.0.1:8081")]
    pub admin_url: String,
    /// The operator's bearer key.
    #[arg(long, env = "ANTEROOM_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

/// A client of one coordinator's private API.
#[derive(Debug, Clone)]
pub struct Admin {
    client: reqwest::Client,
    base: String,
    key: String,
}

/// Per-call time limit: a private API that does not answer within it is reported, not waited
/// for.
const TIMEOUT: Duration = Duration::from_secs(15);

impl Admin {
    /// A client for `args`; an error when the key is missing or the URL is not http(s).
    pub fn new(args: &AdminArgs) -> anyhow::Result<Admin> {
        let Some(key) = args.admin_key.clone().filter(|k| !k.is_empty()) else {
            return Err(crate::failure::Usage(
                "the private API needs the operator key: set ANTEROOM_ADMIN_KEY or --admin-key"
                    .into(),
            )
            .into());
        };
        let base = args.admin_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--admin-url must start with http:// or https:// (got {base:?})");
        }
        let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        Ok(Admin { client, base, key })
    }

    /// `POST /api/queue`: creates a queue from a body the API accepts.
    pub async fn create_queue(&self, body: &serde_json::Value) -> anyhow::Result<QueueConfig> {
        let req = self.client.post(self.url("/api/queue")).json(body);
        self.send(req, "create the queue").await
    }

    /// `GET /api/queue/{queue_id}/status`.
    pub async fn status(&self, queue_id: &str) -> anyhow::Result<QueueStatus> {
        let req = self.client.get(self.url(&format!("/api/queue/{queue_id}/status")));
        self.send(req, "read the queue's status").await
    }

    /// `DELETE /api/queue/{id}`.
    pub async fn delete_queue(&self, id: u32) -> anyhow::Result<()> {
        let req = self.client.delete(self.url(&format!("/api/queue/{id}")));
        self.send::<serde_json::Value>(req, "delete the queue").await.map(|_| ())
    }

    /// `POST /api/queue/update_token_status` with status 1: the origin's "checkout completed".
    pub async fn end_session(&self, queue_id: &str, request_id: &str) -> anyhow::Result<()> {
        let form = [("queue_id", queue_id), ("request_id", request_id), ("status", "1")];
        let req = self.client.post(self.url("/api/queue/update_token_status")).form(&form);
        self.send::<serde_json::Value>(req, "end a session").await.map(|_| ())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends with the key; a non-2xx answer becomes an error with the API's code and message.
    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<T> {
        let resp = req
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("could not {what}: {} did not answer", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("could not {what}"))?;
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
            return Err(Refusal {
                what: what.to_string(),
                status: status.as_u16(),
                body,
                raw: String::from_utf8_lossy(&bytes).into_owned(),
            }
            .into());
        }
        let body = if bytes.is_empty() { b"null".as_slice() } else { &bytes };
        serde_json::from_slice(body).with_context(|| format!("could not {what}: unexpected answer"))
    }
}

/// The private API calls of the operator commands (queue, switches, rate, advance, message,
/// keys, audit, report, watch).
impl Admin {
    /// `GET path` as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> anyhow::Result<T> {
        self.send(self.client.get(self.url(path)), what).await
    }

    /// `GET path` as text (the report's HTML).
    pub async fn get_text(&self, path: &str, what: &str) -> anyhow::Result<String> {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("could not {what}: {} did not answer", self.base))?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("could not {what}"))?;
        if !status.is_success() {
            let body = serde_json::from_str::<ErrorBody>(&text).ok();
            return Err(
                Refusal { what: what.into(), status: status.as_u16(), body, raw: text }.into()
            );
        }
        Ok(text)
    }

    /// `method path` with a JSON body.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &impl Serialize,
        what: &str,
    ) -> anyhow::Result<T> {
        self.send(self.client.request(method, self.url(path)).json(body), what).await
    }

    /// `POST path` with a form body.
    pub async fn form<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, &str)],
        what: &str,
    ) -> anyhow::Result<T> {
        self.send(self.client.post(self.url(path)).form(form), what).await
    }

    /// `POST path` without a body.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, what: &str) -> anyhow::Result<T> {
        self.send(self.client.post(self.url(path)), what).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str, what: &str) -> anyhow::Result<()> {
        self.send::<serde_json::Value>(self.client.delete(self.url(path)), what).await.map(|_| ())
    }

    /// The queue named by its slug or its numeric id (`GET /api/queues`); a [`Refusal`] with
    /// status 404 when there is none, as the API answers an unknown id.
    pub async fn find_queue(&self, name: &str) -> anyhow::Result<QueueConfig> {
        let all: Vec<QueueConfig> = self.get("/api/queues", "list the queues").await?;
        all.into_iter()
            .find(|q| q.queue_id == name || name.parse::<u32>().is_ok_and(|id| id == q.id))
            .ok_or_else(|| {
                Refusal {
                    what: format!("find queue {name:?}"),
                    status: 404,
                    body: Some(
                        shared::error::ErrorCode::QueueNotFound
                            .body("no queue with this slug or id"),
                    ),
                    raw: String::new(),
                }
                .into()
            })
    }

    /// `GET /api/queue/{queue_id}/live`.
    pub async fn live(&self, queue_id: &str) -> anyhow::Result<shared::wire::QueueLive> {
        self.get(&format!("/api/queue/{queue_id}/live"), "read the queue").await
    }

    /// `PUT /api/queue` with `fields` for queue `id`.
    pub async fn update(
        &self,
        id: u32,
        mut fields: serde_json::Map<String, serde_json::Value>,
        what: &str,
    ) -> anyhow::Result<QueueConfig> {
        fields.insert("id".into(), id.into());
        self.json(reqwest::Method::PUT, "/api/queue", &fields, what).await
    }
}
