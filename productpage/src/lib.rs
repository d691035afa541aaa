//! Bookinfo's productpage: the web page and JSON API in front of details, reviews and ratings.
//!
//! `/productpage` shows the book with its details and reviews, asking both services at once;
//! it answers 200 whatever fails, with an error section in place of what is missing. Sign-in
//! keeps a user name in a signed cookie, sent upstream as `end-user`. `/api/v1/products...` is the
//! API of Istio's `swagger.yaml`; `/metrics` counts upstream results for Prometheus.
#![forbid(unsafe_code)]

pub mod api;
pub mod assets;
pub mod backend;
pub mod metrics;
pub mod page;
pub mod product;
pub mod pyjson;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, header};
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use bookinfo_config::{ConfigError, Source};
use bookinfo_http::edge::Edge;
use bookinfo_http::middleware::HEALTH;
use bookinfo_http::server::get_or_head;
use bookinfo_http::{Upstream, Upstreams};
use bookinfo_wire::{details, ratings, reviews};

use crate::backend::Backend;
use crate::metrics::Metrics;
use crate::session::{RoutedUsers, SessionKey};

/// The service's name.
pub const NAME: &str = "productpage";

/// details, which productpage calls for the book.
pub const DETAILS: Upstream = Upstream::named(details::NAME);
/// reviews, which productpage calls for the reviews.
pub const REVIEWS: Upstream = Upstream::named(reviews::NAME);
/// ratings, which productpage's API calls.
pub const RATINGS: Upstream = Upstream::named(ratings::NAME);

/// `FLOOD_FACTOR`: extra reviews calls per page view (the original's `productpage-v-flooding`).
pub const FLOOD_FACTOR: &str = "FLOOD_FACTOR";
/// `BOOKINFO_DETAILS_TIMEOUT`: deadline of the call to details (default 3 s).
pub const DETAILS_TIMEOUT: &str = "BOOKINFO_DETAILS_TIMEOUT";
/// `BOOKINFO_REVIEWS_TIMEOUT`: deadline of each attempt on reviews (default 3 s).
pub const REVIEWS_TIMEOUT: &str = "BOOKINFO_REVIEWS_TIMEOUT";
/// `BOOKINFO_REVIEWS_ATTEMPTS`: how often reviews is tried (default 2, the original's
/// deliberate retry).
pub const REVIEWS_ATTEMPTS: &str = "BOOKINFO_REVIEWS_ATTEMPTS";

/// How productpage calls its upstreams and signs its sessions.
#[derive(Debug, Clone)]
pub struct Config {
    /// Deadline of the details call (3 s).
    pub details_timeout: Duration,
    /// Deadline of each reviews attempt (3 s).
    pub reviews_timeout: Duration,
    /// Attempts on reviews (2).
    pub reviews_attempts: u32,
    /// Deadline of the ratings call of the API (3 s).
    pub ratings_timeout: Duration,
    /// Extra reviews calls per page view (0).
    pub flood_factor: u32,
    /// Signs the session cookie (random unless `BOOKINFO_SESSION_KEY` is set).
    pub session_key: SessionKey,
    /// Whom the sign-in form suggests (`BOOKINFO_ROUTED_USERS`; nobody by default).
    pub routed_users: RoutedUsers,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            details_timeout: Duration::from_secs(3),
            reviews_timeout: Duration::from_secs(3),
            reviews_attempts: 2,
            ratings_timeout: Duration::from_secs(3),
            flood_factor: 0,
            session_key: SessionKey::random(),
            routed_users: RoutedUsers::default(),
        }
    }
}

impl Config {
    /// Reads `BOOKINFO_DETAILS_TIMEOUT`, `BOOKINFO_REVIEWS_TIMEOUT`, `BOOKINFO_REVIEWS_ATTEMPTS`,
    /// `BOOKINFO_RATINGS_TIMEOUT`, `FLOOD_FACTOR`, `BOOKINFO_SESSION_KEY` and
    /// `BOOKINFO_ROUTED_USERS`.
    ///
    /// # Errors
    /// A value that is not a duration or a count, a session key that is too short, a routed
    /// user's name that is too long.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            details_timeout: source.duration_or(DETAILS_TIMEOUT, default.details_timeout)?,
            reviews_timeout: source.duration_or(REVIEWS_TIMEOUT, default.reviews_timeout)?,
            reviews_attempts: source
                .parse_or(REVIEWS_ATTEMPTS, default.reviews_attempts, "a number of attempts from 1")?
                .max(1),
            ratings_timeout: source.duration_or(ratings::TIMEOUT, default.ratings_timeout)?,
            flood_factor: source.parse_or(FLOOD_FACTOR, default.flood_factor, "a number of calls")?,
            session_key: SessionKey::from_source(source)?,
            routed_users: RoutedUsers::from_source(source)?,
        })
    }
}

/// Where details, reviews and ratings live.
///
/// # Errors
/// An address that cannot be used.
pub fn upstreams(source: &(impl Source + ?Sized)) -> Result<Upstreams, ConfigError> {
    Upstreams::from_source(&[DETAILS, REVIEWS, RATINGS], source)
}

/// The service's routes and state, for [`bookinfo_http::server::run`].
pub fn configure(config: &Config) -> impl Fn(&mut ServiceConfig) + Send + Clone + 'static {
    let backend = Data::new(Backend::new(config.clone(), Arc::new(Metrics::default())));
    let edge = Data::new(Edge::new(session::user_of));
    let session_key = Data::new(config.session_key.clone());
    let routed_users = Data::new(config.routed_users.clone());
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(backend.clone())
            .app_data(edge.clone())
            .app_data(session_key.clone())
            .app_data(routed_users.clone())
            .service(read_only("/", page::index))
            .service(read_only("/index.html", page::index))
            .service(read_only(HEALTH, health))
            .service(read_only("/productpage", page::product_page))
            .service(read_only("/logout", session::logout))
            .service(
                web::resource("/login")
                    .route(web::post().to(session::login))
                    .default_service(web::to(|req: HttpRequest| refuse(req, "OPTIONS, POST"))),
            )
            .service(read_only("/api/v1/products", api::products))
            .service(read_only("/api/v1/products/{id}", api::product))
            .service(read_only("/api/v1/products/{id}/reviews", api::reviews))
            .service(read_only("/api/v1/products/{id}/ratings", api::ratings))
            .service(read_only("/metrics", metrics))
            .service(read_only("/static/{path:.*}", assets::serve))
            .default_service(web::to(not_found));
    }
}

/// A resource answering `GET` and `HEAD`, and 405 (or the allowed methods for `OPTIONS`)
/// otherwise, as Flask does.
fn read_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(get_or_head().to(handler))
        .default_service(web::to(|req: HttpRequest| refuse(req, "GET, HEAD, OPTIONS")))
}

async fn refuse(req: HttpRequest, allow: &'static str) -> HttpResponse {
    let mut response =
        if req.method() == Method::OPTIONS { HttpResponse::Ok() } else { HttpResponse::MethodNotAllowed() };
    response.insert_header((header::ALLOW, allow)).finish()
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body("Product page is healthy")
}

async fn metrics(backend: Data<Backend>) -> HttpResponse {
    HttpResponse::Ok().content_type(metrics::CONTENT_TYPE).body(backend.metrics().render())
}

/// 404 with a short HTML page, as Flask answers unknown paths.
pub(crate) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().content_type("text/html; charset=utf-8").body(
        "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n\
         <p>The requested URL was not found on the server.</p>\n",
    )
}
