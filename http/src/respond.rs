//! Small response builders the services share.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

/// A compact JSON body with `Content-Type: application/json`, as the originals send.
pub fn json(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    serialised(status, serde_json::to_string(body))
}

/// A JSON answer from a service's own serialiser (productpage writes JSON the way Python does):
/// the body, or a logged 500 when serialising failed.
pub fn serialised(status: StatusCode, body: serde_json::Result<String>) -> HttpResponse {
    match body {
        Ok(body) => json_text(status, body),
        Err(err) => {
            // Only a non-string map key can fail here; the services never build one.
            tracing::error!(error = %err, "cannot serialise a response");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// A body that is already JSON text (reviews writes its answer byte for byte as the original).
pub fn json_text(status: StatusCode, body: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).content_type("application/json").body(body.into())
}
