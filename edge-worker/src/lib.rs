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
use worker::{Context, Env, Method, Request, Response, event};

use crate::context::Ctx;
use crate::http::{EdgeError, EdgeResult};

/// Entry point for every request the worker's route covers.
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let ctx = Ctx::get(&env);
    Ok(match route(&ctx, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    })
}

async fn route(ctx: &Ctx, req: Request) -> EdgeResult {
    if !ctx.synced.pop.has_base() {
        ctx.synced.pop.set_base(&http::ReqUrl::origin(&req));
    }
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
        ["queue_pos", q, r] => {
            allow(Method::Get)?;
            api::queue_pos(ctx, q, r).await
        }
        ["serving_pos", q] => {
            allow(Method::Get)?;
            api::serving_pos(ctx, q).await
        }
        ["waiting_num", q] => {
            allow(Method::Get)?;
            api::waiting_num(ctx, q).await
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
