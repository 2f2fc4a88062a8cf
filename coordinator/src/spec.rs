//! The OpenAPI documents of the two listeners, generated from the code: each route is
//! registered through `utoipa_axum::routes!`, which reads the handler's `#[utoipa::path]`
//! (method, path, parameters, bodies, answers) and adds it to the router and to the document
//! in one step, so a route cannot be served without being documented or documented without
//! being served (`tests/openapi.rs` checks both ways, and that no route is added any other
//! way). Each listener serves its own document at `/openapi.json`.

use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};

/// The listener's OpenAPI document (on the private listener it needs an admin key).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses((status = 200, description = "this listener's OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json(Extension(doc): Extension<Arc<OpenApi>>) -> Json<OpenApi> {
    Json((*doc).clone())
}

/// Names the document; the private one says every call needs a bearer key.
pub fn finish(mut doc: OpenApi, title: &str, bearer: bool) -> OpenApi {
    doc.info = utoipa::openapi::Info::new(title.to_string(), env!("CARGO_PKG_VERSION").to_string());
    doc.info.description = Some(
        "Errors are always JSON {\"error\": code, \"message\": text}; codes in docs/api.md.".into(),
    );
    if bearer {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
    doc
}
