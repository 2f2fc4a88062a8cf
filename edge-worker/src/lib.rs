//! Anteroom's edge worker: the Cloudflare Worker in front of the protected origin. This file
//! is the entry point and the router, nothing else; no module imports it.
//!
//! Routes, under the `PREFIX` var (default `/anteroom`; empty gives the seed's exact paths):
//! `POST /assign_queue_pos`, `GET /queue_pos/{q}/{r}`, `GET /serving_pos/{q}`,
//! `GET /waiting_num/{q}`, `POST /generate_token`, `GET /pow/challenge`,
//! `POST /__anteroom/sync`, `GET /__anteroom/room` (`api`), `GET /__anteroom/assets/*`
//! (`page`), `POST /__anteroom/join` and `/__anteroom/claim` (the forms of the page without
//! JavaScript, `gate`). Every other path is a protected path (`gate`).
//!
//! Modules, top down: `api` and `gate` (handlers) → `visit` (the visitor model and poll
//! policy), `coordinator` (talking to the coordinator), `tokens` (token checks), `page`
//! (rendering) → `store` (synced state), `forms` (forms and cookies), `webcrypto` → `http`
//! (errors and responses). `context` holds the one per-isolate context they are handed.

mod api;
mod context;
mod coordinator;
mod forms;
mod gate;
mod http;
mod page;
mod pop;
mod store;
mod tokens;
mod visit;
mod webcrypto;

use std::rc::Rc;

use shared::error::ErrorCode;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{Env, Method, Request, web_sys, worker_sys};

use crate::context::Ctx;
use crate::http::{Answer, EdgeError, EdgeResult};
use crate::store::Loaded;

/// Entry point for every request the worker's route covers (in place of `#[event(fetch)]`,
/// whose export is always a `Promise`). A status poll whose state the isolate holds fresh,
/// the most frequent request of a sale, is answered at once with a `Response`; everything
/// else gets a `Promise` of one.
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, _ctx: worker_sys::Context) -> wasm_bindgen::JsValue {
    let ctx = Ctx::get(&env);
    let url = req.url();
    if !ctx.synced.pop.has_base() {
        ctx.synced.pop.set_base(http::ReqUrl::origin(&url));
    }
    if let Some(poll) = Poll::of(&ctx, &req, &url)
        && let Some(state) = ctx.synced.queue_state_now(poll.queue_id)
    {
        return respond(state.and_then(|s| poll.answer(&ctx, &s))).into();
    }
    future_to_promise(async move { Ok(handle(ctx, req, url).await.into()) }).into()
}

/// What `fetch` does when it has to wait: a poll whose state needs a pull or a KV read, or
/// any other route.
async fn handle(ctx: Rc<Ctx>, req: web_sys::Request, url: String) -> web_sys::Response {
    if let Some(poll) = Poll::of(&ctx, &req, &url) {
        let answer = match ctx.synced.queue_state(poll.queue_id).await {
            Ok(s) => poll.answer(&ctx, &s),
            Err(e) => Err(e),
        };
        return respond(answer);
    }
    match route(&ctx, Request::from(req)).await {
        Ok(resp) => resp.into(),
        Err(e) => e.into_response().into(),
    }
}

/// A `GET` of `queue_pos`, `serving_pos` or `waiting_num` under the prefix, read from the raw
/// `web_sys::Request` with two calls into JavaScript (its URL and method); the `worker`
/// crate's request would also fetch the headers and `cf` objects.
struct Poll<'a> {
    queue_id: &'a str,
    /// The `request_id` of a `queue_pos`; `None` for the others.
    request_id: Option<&'a str>,
    /// `serving_pos` (else `waiting_num`) when there is no `request_id`.
    serving: bool,
}

impl<'a> Poll<'a> {
    fn of(ctx: &Ctx, req: &web_sys::Request, url: &'a str) -> Option<Self> {
        let rest = http::ReqUrl::path(url).strip_prefix(ctx.prefix.as_str())?.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let (first, queue_id, third) = (parts.next()?, parts.next()?, parts.next());
        if parts.next().is_some() || req.method() != "GET" {
            return None;
        }
        let (request_id, serving) = match (first, third) {
            ("queue_pos", Some(r)) => (Some(r), false),
            ("serving_pos", None) => (None, true),
            ("waiting_num", None) => (None, false),
            _ => return None,
        };
        Some(Poll { queue_id, request_id, serving })
    }

    fn answer(&self, ctx: &Ctx, s: &Loaded) -> EdgeResult<Answer> {
        Ok(match self.request_id {
            Some(r) => api::queue_pos(ctx, s, r)?,
            None if self.serving => api::serving_pos(ctx, s),
            None => api::waiting_num(ctx, s),
        })
    }
}

/// `answer` as a `web_sys::Response`; an error as its JSON answer.
fn respond(answer: EdgeResult<Answer>) -> web_sys::Response {
    let resp = answer.and_then(|a| a.into_web().map_err(|e| EdgeError::Internal(format!("{e:?}"))));
    resp.unwrap_or_else(|e| e.into_response().into())
}

async fn route(ctx: &Ctx, req: Request) -> EdgeResult {
    let path = req.path();
    let Some(rest) = path.strip_prefix(ctx.prefix.as_str()).filter(|r| r.starts_with('/')) else {
        return gate::protected(ctx, req).await;
    };
    let method = req.method();
    let segments: Vec<&str> = rest[1..].split('/').collect();
    let allow = |want: Method| -> EdgeResult<()> {
        if method == want || (want == Method::Get && method == Method::Head) {
            Ok(())
        } else {
            Err(EdgeError::with(ErrorCode::MethodNotAllowed, format!("use {want}")))
        }
    };
    match segments.as_slice() {
        ["assign_queue_pos"] => {
            allow(Method::Post)?;
            api::assign_queue_pos(ctx, req).await
        }
        ["generate_token"] => {
            allow(Method::Post)?;
            api::generate_token(ctx, req).await
        }
        // Reached for HEAD (a GET is answered by `poll`).
        ["queue_pos", q, r] => {
            allow(Method::Get)?;
            api::queue_pos(ctx, &*ctx.synced.queue_state(q).await?, r)?.into_response()
        }
        ["serving_pos", q] => {
            allow(Method::Get)?;
            api::serving_pos(ctx, &*ctx.synced.queue_state(q).await?).into_response()
        }
        ["waiting_num", q] => {
            allow(Method::Get)?;
            api::waiting_num(ctx, &*ctx.synced.queue_state(q).await?).into_response()
        }
        ["pow", "challenge"] => {
            allow(Method::Get)?;
            api::challenge(ctx, &req).await
        }
        ["__anteroom", "sync"] => {
            allow(Method::Post)?;
            api::sync(ctx, req).await
        }
        ["__anteroom", "room"] => {
            allow(Method::Get)?;
            api::room_page(ctx, &req).await
        }
        ["__anteroom", "join"] => {
            allow(Method::Post)?;
            gate::join(ctx, req).await
        }
        ["__anteroom", "claim"] => {
            allow(Method::Post)?;
            gate::claim(ctx, req).await
        }
        ["__anteroom", "assets", name] => {
            allow(Method::Get)?;
            ctx.pages.assets.serve(name)
        }
        // With an empty prefix every other path belongs to the protected site.
        _ if ctx.prefix.is_empty() => gate::protected(ctx, req).await,
        _ => Err(EdgeError::with(ErrorCode::NotFound, "no such waiting-room route")),
    }
}
