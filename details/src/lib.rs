//! Bookinfo's details service: the details of a book.
//!
//! `/details/{id}` answers the book record for any numeric id (any method, as the original's
//! WEBrick mount does); `/health` reports health. With `ENABLE_EXTERNAL_BOOK_SERVICE=true`
//! (details v2) the record comes from the Google Books API instead.
#![forbid(unsafe_code)]

pub mod book;
pub mod product_id;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use bookinfo_common::config::{ConfigError, Source};
use bookinfo_common::respond::json as json_response;
use bookinfo_common::{RequestContext, Upstream};
use serde_json::json;

use crate::book::{Book, EXTERNAL_ISBN, LookupError};

/// `ENABLE_EXTERNAL_BOOK_SERVICE`: exactly `true` makes details look books up in the Google
/// Books API (details v2).
pub const ENABLE_EXTERNAL_BOOK_SERVICE: &str = "ENABLE_EXTERNAL_BOOK_SERVICE";

/// Read timeout of the Google Books lookup, as in the original.
pub const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How the details service behaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Look books up in the Google Books API.
    pub external_book_service: bool,
}

impl Config {
    /// Reads `ENABLE_EXTERNAL_BOOK_SERVICE`.
    ///
    /// # Errors
    /// None today; the signature matches the other services.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        Ok(Self {
            external_book_service: source.get(ENABLE_EXTERNAL_BOOK_SERVICE).as_deref() == Some("true"),
        })
    }
}

/// The service's routes and state, for [`bookinfo_common::server::run`].
pub fn configure(config: &Config) -> impl Fn(&mut ServiceConfig) + Send + Clone + 'static {
    let config = Data::new(config.clone());
    move |cfg: &mut ServiceConfig| {
        // WEBrick mounts match whole path segments and serve every method alike.
        cfg.app_data(config.clone())
            .route("/health", web::route().to(health))
            .route("/health/{rest:.*}", web::route().to(health))
            .route("/details", web::route().to(details))
            .route("/details/{id:.*}", web::route().to(details))
            .default_service(web::to(not_found));
    }
}

async fn health() -> HttpResponse {
    json_response(StatusCode::OK, &json!({"status": "Details is healthy"}))
}

async fn details(
    req: HttpRequest,
    ctx: RequestContext,
    config: Data<Config>,
) -> Result<HttpResponse, LookupError> {
    let Some(id) = product_id::from_path(req.uri().path()) else {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "please provide numeric product id"}),
        ));
    };
    if !config.external_book_service {
        return Ok(json_response(StatusCode::OK, &Book::comedy_of_errors(id)));
    }
    let book = fetch_external(&ctx, id).await?;
    Ok(json_response(StatusCode::OK, &book))
}

#[tracing::instrument(name = "fetch book", skip_all)]
async fn fetch_external(ctx: &RequestContext, id: i64) -> Result<Book, LookupError> {
    let reply = ctx
        .get(Upstream::Books, format!("/books/v1/volumes?q=isbn:{EXTERNAL_ISBN}"))
        .timeout(EXTERNAL_TIMEOUT)
        .send()
        .await?;
    Book::from_google_books(id, &reply.body)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body("<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>\n")
}
