//! Bookinfo's ratings service: star ratings per product, with the original's fault modes.
//!
//! `GET /ratings/{id}` answers `{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}`;
//! `POST /ratings/{id}` stores other ratings in memory; `GET /health` reports health.
//! `SERVICE_VERSION` selects the original's modes (`v-faulty`, `v-delayed`, `v-unavailable`,
//! `v-unhealthy`; see [`faults`]); `v2` with `DB_TYPE=mysql` reads the ratings from MySQL
//! ([`mysql`]), with the original's answers when the database cannot be reached or queried.
#![forbid(unsafe_code)]

pub mod faults;
pub mod mysql;
pub mod product_id;
pub mod store;

use std::time::Instant;

use actix_web::http::{StatusCode, header};
use actix_web::web::{self, Bytes, Data, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use bookinfo_config::{self as config, ConfigError, Source};
use bookinfo_http::middleware::HEALTH;
use bookinfo_http::respond::json as json_response;
use bookinfo_http::server::get_or_head;
use bookinfo_http::{Tracing, Upstreams};
use bookinfo_wire::ratings::Ratings;
use serde_json::{Value, json};

use crate::faults::{Mode, Read};
use crate::mysql::{Connections, MysqlConfig, ReadError};
use crate::store::Store;

/// How the ratings service behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `SERVICE_VERSION` value (default `v1`).
    pub version: String,
    /// The database of `v2` (`DB_TYPE=mysql`, `MYSQL_DB_*`).
    pub mysql: Option<MysqlConfig>,
}

impl Config {
    /// Reads `SERVICE_VERSION` and, for `v2`, its database ([`MysqlConfig::from_source`]).
    ///
    /// # Errors
    /// For `v2`, a database other than MySQL (the original's MongoDB) or a `MYSQL_DB_PORT` that
    /// is not a port.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let version = source.string_or(config::SERVICE_VERSION, "v1");
        let mysql = match Mode::from_version(&version) {
            Mode::Database => Some(MysqlConfig::from_source(source)?),
            _ => None,
        };
        Ok(Self { version, mysql })
    }

    /// The behaviour `version` selects.
    pub fn mode(&self) -> Mode {
        Mode::from_version(&self.version)
    }
}

/// Largest body a `POST` may have: the stars of a few reviewers fit in far less.
pub const MAX_POST: usize = 4096;
/// Most reviewers one `POST` may rate.
pub const MAX_REVIEWERS: usize = 16;
/// Longest reviewer name.
pub const MAX_REVIEWER: usize = 64;

/// Whether `ratings` is what a ratings store holds: an object of at most [`MAX_REVIEWERS`]
/// reviewers (non-empty names of at most [`MAX_REVIEWER`] bytes), each rated with whole stars
/// from 1 to 5. Anything else (`-1`, `1.5`, `"5"`, `1e23`) would hide or garble a reviewer's
/// stars for every reader.
pub fn valid_ratings(ratings: &Value) -> bool {
    ratings.as_object().is_some_and(|reviewers| {
        !reviewers.is_empty()
            && reviewers.len() <= MAX_REVIEWERS
            && reviewers.iter().all(|(name, stars)| {
                !name.is_empty()
                    && name.len() <= MAX_REVIEWER
                    && stars.as_u64().is_some_and(|n| (1..=5).contains(&n))
            })
    })
}

/// Shared state of every worker.
struct State {
    mode: Mode,
    started: Instant,
    store: Store,
}

/// The service's name.
pub use bookinfo_wire::ratings::NAME;

/// Ratings calls no other service.
///
/// # Errors
/// None; the signature matches the other services.
pub fn upstreams(_source: &(impl Source + ?Sized)) -> Result<Upstreams, ConfigError> {
    Ok(Upstreams::default())
}

/// The service's routes and state, for [`bookinfo_http::server::run`].
pub fn configure(config: &Config) -> impl Fn(&mut ServiceConfig) + Send + Clone + 'static {
    let mode = config.mode();
    let mysql = config.mysql.clone().filter(|_| mode == Mode::Database);
    let state = Data::new(State { mode, started: Instant::now(), store: Store::default() });
    move |cfg: &mut ServiceConfig| {
        // Called once per worker, on its runtime: the worker's own connections.
        if let Some(mysql) = &mysql {
            cfg.app_data(Data::new(Connections::new(mysql)));
        }
        // A larger body is refused (413) before it is read.
        cfg.app_data(state.clone())
            .app_data(web::PayloadConfig::new(MAX_POST))
            .service(web::resource(HEALTH).route(web::get().to(health)).default_service(web::to(not_found)))
            .service(
                web::resource("/ratings/{id:.*}")
                    .route(get_or_head().to(get_ratings))
                    .route(web::post().to(post_ratings))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found));
    }
}

async fn health(state: Data<State>) -> HttpResponse {
    if state.mode.healthy(state.started.elapsed()) {
        json_response(StatusCode::OK, &json!({"status": "Ratings is healthy"}))
    } else {
        json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"status": "Ratings is not healthy"}))
    }
}

async fn get_ratings(req: HttpRequest, state: Data<State>) -> HttpResponse {
    let Some(id) = product_id(&req) else {
        return invalid_id();
    };
    match state.mode.read(state.started.elapsed(), rand::random::<f64>()) {
        Read::Answer => {}
        Read::After(delay) => actix_web::rt::time::sleep(delay).await,
        Read::Unavailable => {
            return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"error": "Service unavailable"}));
        }
        Read::Database => return from_database(&req, id).await,
    }
    let answer = match state.store.get(id) {
        Some(ratings) => Ratings { id, ratings },
        None => Ratings::defaults(id),
    };
    json_response(StatusCode::OK, &answer)
}

/// The ratings from the database, or the original's answer to each failure.
async fn from_database(req: &HttpRequest, id: i64) -> HttpResponse {
    let connections = req.app_data::<Data<Connections>>();
    let tracing = req.app_data::<Data<Tracing>>().map_or(&Tracing::None, |t| t.get_ref());
    let read = match connections {
        Some(connections) => connections.first_two(tracing).await,
        None => return connect_error(),
    };
    match read {
        Ok([first, second]) => json_response(
            StatusCode::OK,
            &Ratings { id, ratings: json!({"Reviewer1": first, "Reviewer2": second}) },
        ),
        Err(err @ ReadError::Connect(_)) => {
            tracing::warn!(error = %err, "ratings database");
            connect_error()
        }
        Err(err @ ReadError::Select(_)) => {
            tracing::warn!(error = %err, "ratings database");
            json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": "could not perform select"}))
        }
    }
}

/// The original ends the response without writing a status or a header when it cannot
/// connect: a 200 with no content type, whose body callers find no ratings in.
fn connect_error() -> HttpResponse {
    HttpResponse::Ok().body(r#"{"error":"could not connect to ratings database"}"#)
}

async fn post_ratings(req: HttpRequest, body: Bytes, state: Data<State>) -> HttpResponse {
    let Some(id) = product_id(&req) else {
        return invalid_id();
    };
    let invalid =
        || json_response(StatusCode::BAD_REQUEST, &json!({"error": "please provide valid ratings JSON"}));
    // The original's order: the JSON, then the version, then (here) what the JSON holds.
    let Ok(ratings) = serde_json::from_slice::<Value>(&body) else {
        return invalid();
    };
    if state.mode == Mode::Database {
        return json_response(
            StatusCode::NOT_IMPLEMENTED,
            &json!({"error": "Post not implemented for database backed ratings"}),
        );
    }
    if !valid_ratings(&ratings) {
        return invalid();
    }
    state.store.put(id, ratings.clone());
    json_response(StatusCode::OK, &Ratings { id, ratings })
}

fn product_id(req: &HttpRequest) -> Option<i64> {
    let target = req.uri().path_and_query().map_or("", |pq| pq.as_str());
    product_id::from_target(target)
}

fn invalid_id() -> HttpResponse {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": "please provide numeric product ID"}))
}

/// The original answers unknown paths with 404 and an empty body, without a content type.
async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "GET, HEAD, POST")).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_stars_from_one_to_five_of_a_few_named_reviewers_are_ratings() {
        for good in [json!({"Reviewer1": 1, "Reviewer2": 5}), json!({"Someone": 3})] {
            assert!(valid_ratings(&good), "{good}");
        }
        let many: serde_json::Map<String, Value> =
            (0..=MAX_REVIEWERS).map(|i| (format!("r{i}"), json!(3))).collect();
        for bad in [
            json!({"Reviewer1": -1}),
            json!({"Reviewer1": 0}),
            json!({"Reviewer1": 6}),
            json!({"Reviewer1": 1.5}),
            json!({"Reviewer1": 5.0}),
            json!({"Reviewer1": "5"}),
            json!({"Reviewer1": 1e23}),
            json!({"Reviewer1": null}),
            json!({"": 3}),
            json!({"x".repeat(MAX_REVIEWER + 1): 3}),
            json!({}),
            json!([0, 0, 0]),
            json!(5),
            Value::Object(many),
        ] {
            assert!(!valid_ratings(&bad), "{bad}");
        }
    }
}
