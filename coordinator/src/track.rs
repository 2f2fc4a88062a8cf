//! Counts every HTTP answer by listener, route template and status class
//! (`anteroom_http_requests_total`): a tower layer around each router's routes.
//!
//! Why not `axum::middleware::from_fn`: that clones the middleware's state, boxes the inner
//! service and boxes the future for every request. This layer wraps the inner future in place:
//! it looks the route's counters up in the calling thread's cache (no lock), keeps them (one
//! `Arc` clone) and adds one when the answer is ready.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::metrics::{ClassCounters, Listener, Metrics, count_answer};

/// The layer: counts the answers of the service it wraps.
#[derive(Debug, Clone)]
pub struct TrackLayer {
    metrics: Arc<Metrics>,
    listener: Listener,
}

impl TrackLayer {
    /// Counts into `metrics`, labelled with `listener`.
    pub fn new(metrics: Arc<Metrics>, listener: Listener) -> Self {
        TrackLayer { metrics, listener }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner, metrics: self.metrics.clone(), listener: self.listener }
    }
}

/// A service whose answers are counted.
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
    listener: Listener,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
        let counters = self.metrics.route_counters(self.listener, route);
        Counted { inner: self.inner.call(req), count: Some(counters) }
    }
}

pin_project! {
    /// The inner answer, counted when it is ready.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        // Taken when counted.
        count: Option<ClassCounters>,
    }
}

impl<F> std::fmt::Debug for Counted<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").finish_non_exhaustive()
    }
}

impl<F, E> Future for Counted<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(counters)) = (&out, this.count.take()) {
            count_answer(&counters, resp.status().as_u16());
        }
        Poll::Ready(out)
    }
}
