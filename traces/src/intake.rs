//! The receivers: OTLP/HTTP (`POST /v1/traces`, protobuf or JSON) and Zipkin v2
//! (`POST /api/v2/spans`, JSON), gzip or plain. A body past the limit gets 413 (gzip is
//! inflated no further than the limit); one that does not decode gets 400 and is logged at
//! debug level only, since a client can send any number of them.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, Bytes, Data, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use crate::sink::Shared;
use crate::wire::{self, DecodeError, Format};

/// The receivers' routes.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/v1/traces", web::post().to(otlp)).route("/api/v2/spans", web::post().to(zipkin));
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// A content type or encoding not taken here.
    #[error("{0}")]
    Unsupported(String),
    /// A body that does not decode, or inflates too far.
    #[error(transparent)]
    Body(#[from] DecodeError),
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        match self {
            Refused::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::Body(DecodeError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Body(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // A client can send any number of these: debug level, not an error of ours.
        tracing::debug!(error = %self, "trace intake: body refused");
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

async fn otlp(req: HttpRequest, body: Bytes, shared: Data<Shared>) -> Result<HttpResponse, Refused> {
    let json = content_type(req.headers()).starts_with("application/json");
    let format = if json { Format::OtlpJson } else { Format::OtlpProtobuf };
    receive(&req, &body, format, &shared)?;
    Ok(if json {
        HttpResponse::Ok().content_type("application/json").body("{}")
    } else {
        HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .body(ExportTraceServiceResponse::default().encode_to_vec())
    })
}

async fn zipkin(req: HttpRequest, body: Bytes, shared: Data<Shared>) -> Result<HttpResponse, Refused> {
    let kind = content_type(req.headers());
    if !(kind.is_empty() || kind.starts_with("application/json")) {
        return Err(Refused::Unsupported("only Zipkin v2 JSON (application/json) is taken here".into()));
    }
    receive(&req, &body, Format::ZipkinJson, &shared)?;
    // What a Zipkin server answers.
    Ok(HttpResponse::Accepted().finish())
}

fn content_type(headers: &HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase()
}

/// Inflates, decodes and stores one body.
fn receive(req: &HttpRequest, body: &[u8], format: Format, shared: &Shared) -> Result<(), Refused> {
    let encoding = req.headers().get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let inflated;
    let body = match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => body,
        "gzip" | "x-gzip" => {
            inflated = wire::gunzip(body, shared.body_limit)?;
            &inflated
        }
        other => return Err(Refused::Unsupported(format!("content encoding {other:?} is not taken here"))),
    };
    let spans = wire::decode(format, body)?;
    shared.store().add(spans, Instant::now());
    Ok(())
}
