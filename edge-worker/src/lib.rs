//! Anteroom's edge worker (skeleton): the Cloudflare Worker that fronts the protected origin.

use worker::{Context, Env, Request, Response, Result, event};

/// Entry point for every request the worker's route covers.
#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    Response::ok("anteroom edge")
}
