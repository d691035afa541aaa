//! `/api/v1/products...`: the JSON API of Istio's `swagger.yaml`. Upstream answers are read
//! into the types details and reviews write (ratings' is passed on as it came) and passed on
//! re-serialised the way the original writes JSON; a failed call ([`Unavailable`]) answers the
//! upstream's status (or 500) with the original's error message.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use bookinfo_http::respond;
use bookinfo_http::{RequestContext, UpstreamError};
use serde::Serialize;
use serde_json::json;

use crate::backend::Backend;
use crate::page::{DETAILS_UNAVAILABLE, REVIEWS_UNAVAILABLE};
use crate::product::PRODUCTS;
use crate::pyjson;

/// Returned when ratings fails.
pub const RATINGS_UNAVAILABLE: &str = "Sorry, product ratings are currently unavailable for this book.";

/// A failed upstream call, answered as the original does: the upstream's status (500 when
/// there was none) and `{"error": <message>}`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Unavailable {
    /// What the client is told.
    message: &'static str,
    /// Why.
    source: UpstreamError,
}

impl ResponseError for Unavailable {
    fn status_code(&self) -> StatusCode {
        self.source.status()
    }

    fn error_response(&self) -> HttpResponse {
        respond(self.status_code(), &json!({ "error": self.message }))
    }
}

/// `GET /api/v1/products`.
pub async fn products() -> HttpResponse {
    respond(StatusCode::OK, &PRODUCTS)
}

/// `GET /api/v1/products/{id}`: the book's details.
///
/// # Errors
/// [`Unavailable`] when details fails.
pub async fn product(
    req: HttpRequest,
    ctx: RequestContext,
    backend: Data<Backend>,
) -> Result<HttpResponse, Unavailable> {
    answer(backend.details(&ctx, product_id(&req)).await, DETAILS_UNAVAILABLE)
}

/// `GET /api/v1/products/{id}/reviews`.
///
/// # Errors
/// [`Unavailable`] when reviews fails.
pub async fn reviews(
    req: HttpRequest,
    ctx: RequestContext,
    backend: Data<Backend>,
) -> Result<HttpResponse, Unavailable> {
    answer(backend.reviews(&ctx, product_id(&req)).await, REVIEWS_UNAVAILABLE)
}

/// `GET /api/v1/products/{id}/ratings`.
///
/// # Errors
/// [`Unavailable`] when ratings fails.
pub async fn ratings(
    req: HttpRequest,
    ctx: RequestContext,
    backend: Data<Backend>,
) -> Result<HttpResponse, Unavailable> {
    answer(backend.ratings(&ctx, product_id(&req)).await, RATINGS_UNAVAILABLE)
}

/// What the upstream said, written the original's way, or why it could not say it.
fn answer(
    result: Result<impl Serialize, UpstreamError>,
    message: &'static str,
) -> Result<HttpResponse, Unavailable> {
    result.map(|body| respond(StatusCode::OK, &body)).map_err(|source| Unavailable { message, source })
}

/// The id segment exactly as received, so it reaches the upstream unchanged (as the original
/// passes it on): `/api/v1/products/{id}...` is segment 4.
fn product_id(req: &HttpRequest) -> &str {
    req.uri().path().split('/').nth(4).unwrap_or_default()
}

fn respond(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    respond::serialised(status, pyjson::to_string(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DETAILS, REVIEWS};
    use actix_web::body::MessageBody;

    #[test]
    fn a_failed_call_answers_the_upstreams_status_or_500_with_the_message() {
        let refused = Unavailable {
            message: REVIEWS_UNAVAILABLE,
            source: UpstreamError::Status { upstream: REVIEWS, status: StatusCode::SERVICE_UNAVAILABLE },
        };
        assert_eq!(refused.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let response = refused.error_response();
        let body = response.into_body().try_into_bytes().unwrap();
        assert_eq!(body, format!(r#"{{"error": "{REVIEWS_UNAVAILABLE}"}}"#));
        let garbled = serde_json::from_str::<u8>("x").unwrap_err();
        let decode = Unavailable {
            message: DETAILS_UNAVAILABLE,
            source: UpstreamError::Decode { upstream: DETAILS, source: garbled },
        };
        assert_eq!(decode.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(std::error::Error::source(&decode).is_some_and(|s| s.is::<UpstreamError>()));
    }
}
