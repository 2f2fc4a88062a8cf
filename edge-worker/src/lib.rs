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

use shared::error::ErrorCode;
use worker::{Context, Env, Method, Request, event, web_sys};

use crate::context::Ctx;
use crate::http::{EdgeError, EdgeResult};

/// Entry point for every request the worker's route covers. Status polls, the most frequent
/// requests of a sale, are answered from the raw `web_sys::Request` (`poll`); everything else
/// goes through the router with the `worker` crate's request.
#[event(fetch)]
async fn fetch(
    req: web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    let ctx = Ctx::get(&env);
    let url = req.url();
    if !ctx.synced.pop.has_base() {
        ctx.synced.pop.set_base(http::ReqUrl::origin(&url));
    }
    if let Some(answer) = poll(&ctx, &req, &url).await {
        return Ok(answer);
    }
    Ok(match route(&ctx, Request::from(req)).await {
        Ok(resp) => resp.into(),
        Err(e) => e.into_response().into(),
    })
}

/// A `GET` of `queue_pos`, `serving_pos` or `waiting_num` under the prefix, answered with two
/// calls into JavaScript for the request (its URL and method) and a few for the response; the
/// `worker` crate's request would also fetch the headers and `cf` objects. `None`: not a poll.
async fn poll(ctx: &Ctx, req: &web_sys::Request, url: &str) -> Option<web_sys::Response> {
    let rest = http::ReqUrl::path(url).strip_prefix(ctx.prefix.as_str())?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (first, second, third, more) = (parts.next()?, parts.next()?, parts.next(), parts.next());
    if more.is_some() || req.method() != "GET" {
        return None;
    }
    let answer = match (first, third) {
        ("queue_pos", Some(r)) => api::queue_pos(ctx, second, r).await,
        ("serving_pos", None) => api::serving_pos(ctx, second).await,
        ("waiting_num", None) => api::waiting_num(ctx, second).await,
        _ => return None,
    };
    let resp = match answer {
        Ok(a) => a.into_web().map_err(|e| EdgeError::Internal(format!("{e:?}"))),
        Err(e) => Err(e),
    };
    Some(resp.unwrap_or_else(|e| e.into_response().into()))
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
            api::queue_pos(ctx, q, r).await?.into_response()
        }
        ["serving_pos", q] => {
            allow(Method::Get)?;
            api::serving_pos(ctx, q).await?.into_response()
        }
        ["waiting_num", q] => {
            allow(Method::Get)?;
            api::waiting_num(ctx, q).await?.into_response()
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
