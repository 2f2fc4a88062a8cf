//! The load generator: N keep-alive HTTP/1.1 connections (hyper), closed or open loop,
//! bounded by a duration and/or a request count, latency in an HDR histogram.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

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
}

impl Call {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Call { method: Method::GET, path: path.into(), body: None, json: false, bearer: None }
    }

    /// A POST of a form.
    pub fn form(path: impl Into<String>, body: impl Into<String>) -> Self {
        Call {
            method: Method::POST,
            path: path.into(),
            body: Some(body.into()),
            json: false,
            bearer: None,
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

    fn build(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header(header::HOST, "127.0.0.1");
        if let Some(key) = &self.bearer {
            b = b.header(header::AUTHORIZATION, format!("Bearer {key}"));
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

/// Makes the `i`-th request of a run (`None`: no more work for this run).
pub type MakeCall = Arc<dyn Fn(u64) -> Option<Call> + Send + Sync>;

/// Sees every response of the measured window: request index, status, body, send time, end.
pub type Inspect = Arc<dyn Fn(u64, StatusCode, &Bytes, Instant, Instant) + Send + Sync>;

/// How to load a target.
#[derive(Clone)]
#[allow(missing_debug_implementations, reason = "holds closures that make and inspect calls")]
pub struct Plan {
    /// Where to send.
    pub addr: SocketAddr,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Unrecorded lead-in, so connection setup and cold caches do not count.
    pub warmup: Duration,
    /// Length of the measured window (`None`: until `max_requests` are done).
    pub duration: Option<Duration>,
    /// Upper bound on requests in the measured window.
    pub max_requests: Option<u64>,
    /// Open loop: total requests per second on a fixed schedule (latency counted from the
    /// scheduled time, so a stalled server is not hidden). `None`: closed loop.
    pub rate: Option<f64>,
    /// The requests.
    pub make: MakeCall,
    /// Optional response hook.
    pub inspect: Option<Inspect>,
}

impl Plan {
    /// A closed-loop plan sending the same call for `duration` after `warmup`.
    pub fn fixed(
        addr: SocketAddr,
        connections: usize,
        warmup: Duration,
        duration: Duration,
        call: Call,
    ) -> Self {
        Plan {
            addr,
            connections,
            warmup,
            duration: Some(duration),
            max_requests: None,
            rate: None,
            make: Arc::new(move |_| Some(call.clone())),
            inspect: None,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Outcome {
    /// Connections used.
    pub connections: usize,
    /// 2xx responses in the window.
    pub ok: u64,
    /// Answers during the warm-up (not in the rates; CPU per request counts them).
    #[serde(default)]
    pub warm_ok: u64,
    /// Other statuses in the window, by code.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport errors (connect, reset, timeout).
    pub errors: u64,
    /// Length of the measured window, seconds.
    pub secs: f64,
    /// 2xx responses per second.
    pub rps: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Largest latency, milliseconds.
    pub max_ms: f64,
}

impl Outcome {
    /// Responses that were not 2xx, plus transport errors.
    pub fn failures(&self) -> u64 {
        self.errors + self.statuses.values().sum::<u64>()
    }
}

/// Largest latency the histograms track, microseconds (larger ones saturate).
const HIST_MAX_US: u64 = 120_000_000;

/// Per-connection tallies, merged at the end.
struct Tally {
    ok: u64,
    warm: u64,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    hist: Histogram<u64>,
    last_end: Option<Instant>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Tally {
            ok: 0,
            warm: 0,
            statuses: BTreeMap::new(),
            errors: 0,
            hist: Histogram::new_with_bounds(1, HIST_MAX_US, 2)?,
            last_end: None,
        })
    }
}

/// Opens one keep-alive connection.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
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
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    call: &Call,
) -> anyhow::Result<(StatusCode, Bytes)> {
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

/// Per-request time limit inside a run; a request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a plan to completion and returns what it measured.
pub async fn run(plan: Plan) -> anyhow::Result<Outcome> {
    let plan = Arc::new(plan);
    // Open every connection first (a few at a time, so the accept backlog never overflows).
    let mut senders = Vec::with_capacity(plan.connections);
    for chunk in 0..plan.connections.div_ceil(128) {
        let n = (plan.connections - chunk * 128).min(128);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let addr = plan.addr;
            set.spawn(async move { connect(addr).await });
        }
        while let Some(r) = set.join_next().await {
            senders.push(r??);
        }
    }
    let seq = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let begin = Instant::now();
    let window_start = begin + plan.warmup;
    let window_end = plan.duration.map(|d| window_start + d);
    let tallies = Arc::new(Mutex::new(Vec::new()));
    let mut set = tokio::task::JoinSet::new();
    let n_conn = plan.connections;
    for (k, sender) in senders.into_iter().enumerate() {
        let plan = plan.clone();
        let seq = seq.clone();
        let done = done.clone();
        let tallies = tallies.clone();
        set.spawn(async move {
            let mut tally = Tally::new()?;
            let mut sender = Some(sender);
            let per_conn = plan.rate.map(|r| r / n_conn as f64);
            let mut next_at =
                per_conn.map(|r| begin + Duration::from_secs_f64(k as f64 / (r * n_conn as f64)));
            let mut sent: u64 = 0;
            loop {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let mut scheduled = None;
                if let (Some(at), Some(r)) = (next_at, per_conn) {
                    let now = Instant::now();
                    if at > now {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    scheduled = Some(at);
                    next_at = Some(at + Duration::from_secs_f64(1.0 / r));
                }
                let now = Instant::now();
                if window_end.is_some_and(|e| now >= e) {
                    break;
                }
                let in_window = now >= window_start;
                let i = if in_window {
                    let i = seq.fetch_add(1, Ordering::Relaxed);
                    if plan.max_requests.is_some_and(|m| i >= m) {
                        done.store(true, Ordering::Relaxed);
                        break;
                    }
                    i
                } else {
                    // Warm-up calls reuse index 0's shape; nobody inspects them.
                    u64::MAX
                };
                let Some(call) = (plan.make)(if in_window { i } else { sent }) else {
                    if in_window {
                        done.store(true, Ordering::Relaxed);
                    }
                    break;
                };
                sent += 1;
                let t0 = scheduled.map_or(now, |at| at.min(now));
                let s = match sender.as_mut() {
                    Some(s) => s,
                    None => match connect(plan.addr).await {
                        Ok(s) => sender.insert(s),
                        Err(_) => {
                            if in_window {
                                tally.errors += 1;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let r = tokio::time::timeout(REQUEST_TIMEOUT, send(s, &call)).await;
                let end = Instant::now();
                if !in_window {
                    if matches!(r, Ok(Ok(_))) {
                        tally.warm += 1;
                    } else {
                        sender = None;
                    }
                    continue;
                }
                match r {
                    Ok(Ok((status, body))) => {
                        if status.is_success() {
                            tally.ok += 1;
                        } else {
                            *tally.statuses.entry(status.as_u16()).or_default() += 1;
                        }
                        let us = end.saturating_duration_since(t0).as_micros();
                        tally.hist.saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
                        tally.last_end = Some(end);
                        if let Some(f) = &plan.inspect {
                            f(i, status, &body, t0, end);
                        }
                    }
                    _ => {
                        tally.errors += 1;
                        sender = None;
                    }
                }
            }
            tallies.lock().map_err(|_| anyhow::anyhow!("tally lock poisoned"))?.push(tally);
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let tallies =
        std::mem::take(&mut *tallies.lock().map_err(|_| anyhow::anyhow!("tally lock poisoned"))?);
    let mut out = Outcome { connections: plan.connections, ..Outcome::default() };
    let mut hist = Histogram::<u64>::new_with_bounds(1, HIST_MAX_US, 2)?;
    let mut last_end = window_start;
    for t in tallies {
        out.ok += t.ok;
        out.warm_ok += t.warm;
        out.errors += t.errors;
        for (k, v) in t.statuses {
            *out.statuses.entry(k).or_default() += v;
        }
        hist.add(&t.hist)?;
        if let Some(e) = t.last_end {
            last_end = last_end.max(e);
        }
    }
    let secs = match (window_end, plan.max_requests) {
        (Some(e), _) if !done.load(Ordering::Relaxed) => e - window_start,
        _ => last_end.saturating_duration_since(window_start),
    }
    .as_secs_f64()
    .max(1e-6);
    out.secs = secs;
    out.rps = out.ok as f64 / secs;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    out.p50_ms = ms(0.5);
    out.p99_ms = ms(0.99);
    out.max_ms = hist.max() as f64 / 1000.0;
    Ok(out)
}
