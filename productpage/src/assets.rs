//! The page's static files, built into the binary so the one image needs nothing beside it and
//! the page works offline.

use std::hash::{DefaultHasher, Hash, Hasher};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 2] = [
    Asset {
        path: "css/bookinfo.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/css/bookinfo.css"),
    },
    Asset { path: "img/izzy.png", content_type: "image/png", body: include_bytes!("../static/img/izzy.png") },
];

/// `GET /static/{path}`: the file, revalidated on every use (`no-cache`, as the original) with
/// an `ETag` so revalidation costs a 304.
pub async fn serve(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path.as_str()) else {
        return crate::not_found().await;
    };
    let etag = etag(asset.body);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response.insert_header((header::ETAG, etag.clone())).insert_header((header::CACHE_CONTROL, "no-cache"));
    if fresh { response.finish() } else { response.content_type(asset.content_type).body(asset.body) }
}

/// A strong validator from the content (stable for one build, which is all a cache needs).
fn etag(body: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}
