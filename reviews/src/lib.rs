//! Bookinfo's reviews service: two reviews of a book, with star ratings in v2 and v3.
//!
//! `GET /reviews/{id}` answers the reviews; v2 and v3 (`ENABLE_RATINGS=true`) ask ratings for
//! each reviewer's stars and show them in `STAR_COLOR`. `GET /health` reports health. The three
//! versions are one code base ([`ReviewsVersion`] gives each its defaults).
#![forbid(unsafe_code)]

pub mod body;
pub mod version;

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{HttpResponse, http::StatusCode};
use bookinfo_config::{self as config, ConfigError, Source, java_bool};
use bookinfo_http::middleware::HEALTH;
use bookinfo_http::respond::json_text;
use bookinfo_http::server::get_or_head;
use bookinfo_http::{RequestContext, Upstream, Upstreams};
use bookinfo_wire::ratings::{self, Ratings};
use tracing::Instrument;

use crate::body::{Origin, Stars};
pub use crate::version::ReviewsVersion;

/// `ENABLE_RATINGS`: `true` (any letter case) shows ratings (v2, v3).
pub const ENABLE_RATINGS: &str = "ENABLE_RATINGS";
/// `STAR_COLOR`: the colour of the stars (`black` for v2, `red` for v3); it also picks the
/// ratings timeout.
pub const STAR_COLOR: &str = "STAR_COLOR";
/// `CLUSTER_NAME`: reported as `clustername` (the string `null` when unset, as the original).
pub const CLUSTER_NAME: &str = "CLUSTER_NAME";

/// How the reviews service behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Ask ratings and show stars.
    pub enable_ratings: bool,
    /// Star colour.
    pub star_color: String,
    /// Pod and cluster names reported with every answer.
    pub origin: Origin,
    /// Deadline of the call to ratings.
    pub ratings_timeout: Duration,
}

impl Config {
    /// Reads `ENABLE_RATINGS`, `STAR_COLOR`, `HOSTNAME`, `CLUSTER_NAME` and
    /// `BOOKINFO_RATINGS_TIMEOUT`; unset ones take `defaults`' image defaults.
    ///
    /// # Errors
    /// An invalid timeout.
    pub fn from_source(
        source: &(impl Source + ?Sized),
        defaults: ReviewsVersion,
    ) -> Result<Self, ConfigError> {
        let enable_ratings = match source.get(ENABLE_RATINGS) {
            Some(value) => java_bool(Some(&value)),
            None => defaults.enable_ratings(),
        };
        let star_color = source.string_or(STAR_COLOR, defaults.star_color());
        // The original waits 10 s for ratings with black stars (v2), 2.5 s otherwise (v3).
        let default_timeout =
            if star_color == "black" { Duration::from_secs(10) } else { Duration::from_millis(2500) };
        Ok(Self {
            enable_ratings,
            ratings_timeout: source.duration_or(ratings::TIMEOUT, default_timeout)?,
            origin: Origin {
                podname: source.get(config::HOSTNAME).unwrap_or_else(system_hostname),
                clustername: source.string_or(CLUSTER_NAME, "null"),
            },
            star_color,
        })
    }

    /// The version these settings amount to.
    pub fn version(&self) -> ReviewsVersion {
        ReviewsVersion::of(self.enable_ratings, &self.star_color)
    }
}

fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "null".to_owned())
}

/// The service's name.
pub use bookinfo_wire::reviews::NAME;

/// ratings, which reviews v2 and v3 call.
pub const RATINGS: Upstream = Upstream::named(ratings::NAME);

/// Where ratings lives.
///
/// # Errors
/// An address that cannot be used.
pub fn upstreams(source: &(impl Source + ?Sized)) -> Result<Upstreams, ConfigError> {
    Upstreams::from_source(&[RATINGS], source)
}

/// The service's routes and state, for [`bookinfo_http::server::run`].
pub fn configure(config: &Config) -> impl Fn(&mut ServiceConfig) + Send + Clone + 'static {
    let config = Data::new(config.clone());
    move |cfg: &mut ServiceConfig| {
        cfg.app_data(config.clone())
            .service(
                web::resource(HEALTH)
                    .route(get_or_head().to(health))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/reviews/{id}")
                    .route(get_or_head().to(reviews))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found));
    }
}

async fn health() -> HttpResponse {
    json_text(StatusCode::OK, r#"{"status": "Reviews is healthy"}"#)
}

async fn reviews(id: web::Path<String>, ctx: RequestContext, config: Data<Config>) -> HttpResponse {
    // JAX-RS answers 404 when the id does not convert to a Java int.
    let Some(id) = java_int(&id) else {
        return not_found().await;
    };
    let stars = if config.enable_ratings {
        let fetch = fetch_stars(&ctx, id, config.ratings_timeout);
        Some(fetch.instrument(ctx.fetch_span("fetch ratings")).await)
    } else {
        None
    };
    let ratings = stars.as_ref().map(|stars| (stars, config.star_color.as_str()));
    json_text(StatusCode::OK, body::render(id, &config.origin, ratings))
}

/// Each reviewer's stars from ratings; every failure makes both unavailable, as in the
/// original, and the reviews are still served.
async fn fetch_stars(ctx: &RequestContext, id: i32, timeout: Duration) -> [Stars; 2] {
    let call = ctx
        .get(RATINGS, "/ratings/{id}", &id.to_string())
        .header(header::ACCEPT, HeaderValue::from_static("application/json"))
        .timeout(timeout);
    match call.send().await {
        Ok(reply) => stars_of(&reply.body),
        Err(err) => {
            tracing::warn!(error = %err, "ratings unavailable");
            [Stars::Unavailable; 2]
        }
    }
}

/// Reads `ratings.Reviewer1` and `ratings.Reviewer2`; a missing or non-integer value (or the
/// original's `-1` sentinel), or an answer that is not ratings', makes that reviewer's rating
/// unavailable.
fn stars_of(body: &[u8]) -> [Stars; 2] {
    let answer: Option<Ratings> = serde_json::from_slice(body).ok();
    body::REVIEWS.map(|(reviewer, _)| match answer.as_ref().and_then(|a| a.stars(reviewer)) {
        Some(n) => Stars::Count(n),
        None => Stars::Unavailable,
    })
}

/// Java's `Integer.parseInt`: an optional sign and decimal digits, within `i32`.
fn java_int(text: &str) -> Option<i32> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "GET, HEAD")).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_java_ints() {
        assert_eq!(java_int("0"), Some(0));
        assert_eq!(java_int("007"), Some(7));
        assert_eq!(java_int("+5"), Some(5));
        assert_eq!(java_int("-5"), Some(-5));
        assert_eq!(java_int("2147483647"), Some(i32::MAX));
        for bad in ["", "+", "abc", "1.5", " 1", "2147483648", "0x10"] {
            assert_eq!(java_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stars_come_per_reviewer_and_missing_ones_are_unavailable() {
        assert_eq!(
            stars_of(br#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#),
            [Stars::Count(5), Stars::Count(4)]
        );
        assert_eq!(stars_of(br#"{"ratings":{"Reviewer2":"x"}}"#), [Stars::Unavailable, Stars::Unavailable]);
        assert_eq!(stars_of(br#"{"ratings":{"Reviewer1":0}}"#), [Stars::Count(0), Stars::Unavailable]);
        assert_eq!(
            stars_of(br#"{"error":"could not connect to ratings database"}"#),
            [Stars::Unavailable; 2]
        );
        assert_eq!(stars_of(b"not json"), [Stars::Unavailable; 2]);
    }

    #[test]
    fn versions_give_the_image_defaults_and_env_overrides_them() {
        let none: [(&str, &str); 0] = [];
        let v1 = Config::from_source(&none, ReviewsVersion::V1).unwrap();
        assert!(!v1.enable_ratings);
        assert_eq!(v1.version(), ReviewsVersion::V1);
        let v3 = Config::from_source(&none, ReviewsVersion::V3).unwrap();
        assert_eq!((v3.star_color.as_str(), v3.ratings_timeout), ("red", Duration::from_millis(2500)));
        let v2 = Config::from_source(
            &[("ENABLE_RATINGS", "TRUE"), ("HOSTNAME", "reviews-v2-x")],
            ReviewsVersion::V1,
        )
        .unwrap();
        assert_eq!(v2.version(), ReviewsVersion::V2);
        assert_eq!(v2.ratings_timeout, Duration::from_secs(10));
        assert_eq!(v2.origin.podname, "reviews-v2-x");
        assert_eq!(v2.origin.clustername, "null");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_an_int_or_none(text in ".{0,40}") {
            let _ = java_int(&text);
        }

        #[test]
        fn every_int_reads_back(n in any::<i32>()) {
            prop_assert_eq!(java_int(&n.to_string()), Some(n));
        }

        #[test]
        fn any_ratings_answer_gives_two_ratings(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(stars_of(&body).len(), 2);
        }
    }
}
