//! Counts every HTTP answer by listener, route template and status class
//! (`anteroom_http_requests_total`): a tower layer around each router's routes.
//!
//! Why not `axum::middleware::from_fn`: that clones the middleware's state, boxes the inner
//! service and boxes the future for every request. On the enqueue storm at 1,024 clients the
//! metrics-on binary spent about 4.6 µs more CPU per request than the same binary with
//! metrics off (ABBA pairs, `BENCHMARKS.md`); this layer wraps the inner future in place and
//! costs one `Arc` clone, one route lookup and one atomic add per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::metrics::{Listener, Metrics};

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
        let route = req.extensions().get::<MatchedPath>().cloned();
        Counted {
            inner: self.inner.call(req),
            count: Some((self.metrics.clone(), self.listener, route)),
        }
    }
}

pin_project! {
    /// The inner answer, counted when it is ready.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        // Taken when counted.
        count: Option<(Arc<Metrics>, Listener, Option<MatchedPath>)>,
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
        if let (Ok(resp), Some((metrics, listener, route))) = (&out, this.count.take()) {
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            metrics.http(listener, route, resp.status().as_u16());
        }
        Poll::Ready(out)
    }
}
