//! The web viewer: one page and its script and style, built into the binary (it works offline,
//! with no CDN). The page draws what the viewer API computes; it computes nothing itself.
//!
//! Span names and attributes come from the network, so the script only ever sets them as text;
//! the Content-Security-Policy allows this origin's script and style and nothing inline, so
//! even a mistake there could not run injected script.

use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpResponse, Responder};

const PAGE: &str = include_str!("viewer/index.html");
const SCRIPT: &str = include_str!("viewer/viewer.js");
const STYLE: &str = include_str!("viewer/viewer.css");

/// The viewer's routes: the page (under `/`, `/trace/...`, `/compare` and `/graph`, so every
/// view has a URL of its own) and its assets.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/index.html", web::get().to(page))
        .route("/trace/{reference}", web::get().to(page))
        .route("/compare", web::get().to(page))
        .route("/graph", web::get().to(page))
        .route("/static/viewer.js", web::get().to(|| asset("text/javascript; charset=utf-8", SCRIPT)))
        .route("/static/viewer.css", web::get().to(|| asset("text/css; charset=utf-8", STYLE)));
}

async fn page() -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' data:"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

async fn asset(content_type: &'static str, body: &'static str) -> impl Responder {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
