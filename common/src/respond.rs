//! Small response builders the services share.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

/// A compact JSON body with `Content-Type: application/json`, as the originals send.
pub fn json(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(body) => HttpResponse::build(status).content_type("application/json").body(body),
        Err(err) => {
            // Only a non-string map key can fail here; the services never build one.
            tracing::error!(error = %err, "cannot serialise a response");
            HttpResponse::InternalServerError().finish()
        }
    }
}
