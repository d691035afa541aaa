//! `/api/v1/products...`: the JSON API of Istio's `swagger.yaml`. Upstream answers are passed
//! on re-serialised the way the original writes JSON; a failed call answers the upstream's
//! status (or 500) with the original's error message.

use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use bookinfo_common::respond;
use bookinfo_common::{RequestContext, Upstream};
use serde::Serialize;
use serde_json::json;

use crate::backend::Backend;
use crate::page::{DETAILS_UNAVAILABLE, REVIEWS_UNAVAILABLE};
use crate::product::PRODUCTS;
use crate::pyjson;

/// Returned when ratings fails.
pub const RATINGS_UNAVAILABLE: &str = "Sorry, product ratings are currently unavailable for this book.";

/// `GET /api/v1/products`.
pub async fn products() -> HttpResponse {
    respond(StatusCode::OK, &PRODUCTS)
}

/// `GET /api/v1/products/{id}`: the book's details.
pub async fn product(req: HttpRequest, ctx: RequestContext, backend: Data<Backend>) -> HttpResponse {
    proxy(Upstream::Details, &req, &ctx, &backend).await
}

/// `GET /api/v1/products/{id}/reviews`.
pub async fn reviews(req: HttpRequest, ctx: RequestContext, backend: Data<Backend>) -> HttpResponse {
    proxy(Upstream::Reviews, &req, &ctx, &backend).await
}

/// `GET /api/v1/products/{id}/ratings`.
pub async fn ratings(req: HttpRequest, ctx: RequestContext, backend: Data<Backend>) -> HttpResponse {
    proxy(Upstream::Ratings, &req, &ctx, &backend).await
}

/// Asks `upstream` about the product and answers what it said.
async fn proxy(
    upstream: Upstream,
    req: &HttpRequest,
    ctx: &RequestContext,
    backend: &Backend,
) -> HttpResponse {
    let id = product_id(req);
    let (result, unavailable) = match upstream {
        Upstream::Details => (backend.details(ctx, id).await, DETAILS_UNAVAILABLE),
        Upstream::Reviews => (backend.reviews(ctx, id).await, REVIEWS_UNAVAILABLE),
        Upstream::Ratings | Upstream::Books => (backend.ratings(ctx, id).await, RATINGS_UNAVAILABLE),
    };
    match result {
        Ok(value) => respond(StatusCode::OK, &value),
        Err(err) => respond(err.status(), &json!({ "error": unavailable })),
    }
}

/// The id segment exactly as received, so it reaches the upstream unchanged (as the original
/// passes it on): `/api/v1/products/{id}...` is segment 4.
fn product_id(req: &HttpRequest) -> &str {
    req.uri().path().split('/').nth(4).unwrap_or_default()
}

fn respond(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    respond::serialised(status, pyjson::to_string(body))
}
