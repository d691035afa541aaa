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
use bookinfo_config::{ConfigError, Source};
use bookinfo_http::middleware::HEALTH;
use bookinfo_http::respond::json as json_response;
use bookinfo_http::upstream::check_base;
use bookinfo_http::{RequestContext, Upstream, Upstreams};
use serde_json::json;

use crate::book::{Book, EXTERNAL_ISBN, LookupError, from_google_books};

/// The service's name.
pub use bookinfo_wire::details::NAME;

/// The one service details calls, outside the mesh (details v2 only): the Google Books API.
pub const BOOKS: Upstream = Upstream::named("books");

/// `DO_NOT_ENCRYPT`: `true` makes details v2 call the Google Books API in plain HTTP on port 80,
/// leaving TLS to the mesh (Istio's `bookinfo-details-v2.yaml` sets it).
pub const DO_NOT_ENCRYPT: &str = "DO_NOT_ENCRYPT";
/// `BOOKINFO_BOOKS_URL`: overrides the Google Books API address (a local stand-in, say).
pub const BOOKS_URL: &str = "BOOKINFO_BOOKS_URL";

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

/// What details calls: with the external book service, the Google Books API, at
/// `https://www.googleapis.com` unless `DO_NOT_ENCRYPT=true` (plain HTTP on port 80, the
/// sidecar originating TLS, as the original) or `BOOKINFO_BOOKS_URL` says otherwise.
///
/// # Errors
/// A `BOOKINFO_BOOKS_URL` that is not an `http://host:port` address.
pub fn upstreams(config: &Config, source: &(impl Source + ?Sized)) -> Result<Upstreams, ConfigError> {
    if !config.external_book_service {
        return Ok(Upstreams::default());
    }
    let base = match source.get(BOOKS_URL) {
        Some(url) => {
            let url = url.trim_end_matches('/').to_owned();
            check_base(BOOKS_URL, &url)?;
            url
        }
        None if source.get(DO_NOT_ENCRYPT).as_deref() == Some("true") => {
            "http://www.googleapis.com:80".to_owned()
        }
        None => "https://www.googleapis.com:443".to_owned(),
    };
    Ok(Upstreams::default().with_external(BOOKS, base))
}

/// The service's routes and state, for [`bookinfo_http::server::run`].
pub fn configure(config: &Config) -> impl Fn(&mut ServiceConfig) + Send + Clone + 'static {
    let config = Data::new(config.clone());
    move |cfg: &mut ServiceConfig| {
        // WEBrick mounts match whole path segments and serve every method alike.
        cfg.app_data(config.clone())
            .route(HEALTH, web::route().to(health))
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
        .get(BOOKS, "/books/v1/volumes?q=isbn:{isbn}", EXTERNAL_ISBN)
        .timeout(EXTERNAL_TIMEOUT)
        .send()
        .await?;
    from_google_books(id, &reply.body)
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/html; charset=utf-8")
        .body("<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body><h1>Not Found</h1></body></html>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_books_api_is_https_unless_told_not_to_encrypt() {
        let external = Config { external_book_service: true };
        let books = |source: &[(&str, &str)]| {
            let upstreams = upstreams(&external, source).unwrap();
            upstreams.endpoint(BOOKS).unwrap().base().to_owned()
        };
        assert_eq!(books(&[]), "https://www.googleapis.com:443");
        assert_eq!(books(&[("DO_NOT_ENCRYPT", "true")]), "http://www.googleapis.com:80");
        assert_eq!(books(&[("BOOKINFO_BOOKS_URL", "http://127.0.0.1:1234/")]), "http://127.0.0.1:1234");
        let v1 = upstreams(&Config::default(), &[("BOOKINFO_BOOKS_URL", "nonsense")]).unwrap();
        assert_eq!(v1.iter().count(), 0, "details v1 calls nothing");
    }
}
