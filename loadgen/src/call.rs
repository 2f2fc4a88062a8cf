//! One request and one connection: what to send ([`Call`]), opening a keep-alive HTTP/1.1
//! connection, sending on it, and one-off calls for setup.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;

/// One request to send.
#[derive(Debug, Clone)]
pub struct Call {
    /// GET or POST.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// A form body (`application/x-www-form-urlencoded`), or JSON when `json` is set.
    pub body: Option<String>,
    /// Whether `body` is JSON rather than a form.
    pub json: bool,
    /// Bearer key for the private API.
    pub bearer: Option<String>,
    /// More headers (a rehearsal signs the edge's client header for an edge-only coordinator).
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Call {
            method: Method::GET,
            path: path.into(),
            body: None,
            json: false,
            bearer: None,
            headers: Vec::new(),
        }
    }

    /// A POST of a form.
    pub fn form(path: impl Into<String>, body: impl Into<String>) -> Self {
        Call {
            method: Method::POST,
            path: path.into(),
            body: Some(body.into()),
            json: false,
            bearer: None,
            headers: Vec::new(),
        }
    }

    /// A POST of a JSON body.
    pub fn json(path: impl Into<String>, body: impl Into<String>) -> Self {
        Call { json: true, ..Call::form(path, body) }
    }

    /// Adds the private API's bearer key.
    pub fn bearer(mut self, key: &str) -> Self {
        self.bearer = Some(key.to_string());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn build(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header(header::HOST, "127.0.0.1");
        if let Some(key) = &self.bearer {
            b = b.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        for (name, value) in &self.headers {
            b = b.header(name.as_str(), value.as_str());
        }
        let body = match &self.body {
            Some(s) => {
                let ct = if self.json {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                };
                b = b.header(header::CONTENT_TYPE, ct);
                Bytes::from(s.clone())
            }
            None => Bytes::new(),
        };
        Ok(b.body(Full::new(body))?)
    }
}

/// The request side of one keep-alive HTTP/1.1 connection.
pub type Sender = SendRequest<Full<Bytes>>;

/// Opens one keep-alive connection.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream =
        tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request on a connection and reads the whole body.
pub async fn send(sender: &mut Sender, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let resp = sender.send_request(call.build()?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One request on a fresh connection (setup and admin calls).
pub async fn once(addr: SocketAddr, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
    let mut s = connect(addr).await?;
    let fut = send(&mut s, call);
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .with_context(|| format!("{} {} timed out", call.method, call.path))?
}

/// Like [`once`], but fails unless the answer is 2xx; returns the body as JSON.
pub async fn once_ok(addr: SocketAddr, call: &Call) -> anyhow::Result<serde_json::Value> {
    let (status, body) = once(addr, call).await?;
    anyhow::ensure!(
        status.is_success(),
        "{} {} answered {status}: {}",
        call.method,
        call.path,
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}
