//! What every service does around each request: in `otel` mode a SERVER span, child of the
//! caller's context; in both modes one access-log line.
//!
//! The span follows the stable HTTP semantic conventions: named `{method} {route}` (just the
//! method when no route matched), with `http.request.method`, `url.path`, `url.scheme`,
//! `http.route`, `server.address`, `server.port`, `user_agent.original` and
//! `http.response.status_code`; a 5xx answer marks it as an error (a 4xx is the client's).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Data;
use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::propagation::X_REQUEST_ID;
use crate::telemetry::Tracing;

/// The middleware itself, for `actix_web::middleware::from_fn`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let route = req.match_pattern().map(|pattern| route_template(&pattern));
    let request_id = header(&req, X_REQUEST_ID.as_str()).unwrap_or("-").to_owned();
    let tracing = req.app_data::<Data<Tracing>>().map(|t| t.get_ref().clone());

    let (response, ids) = match tracing.as_ref().and_then(Tracing::propagators) {
        None => (next.call(req).await, None),
        Some(propagators) => {
            let span = server_span(&req, route.as_deref(), &request_id);
            // The edge rule has already been applied to these headers (see `edge::rule`).
            let parent = propagators.extract(req.headers());
            // Before the span starts: a parent set later would be refused.
            let _ = span.set_parent(parent);
            let ids = ids(&span);
            let response = next.call(req).instrument(span.clone()).await;
            record_status(&span, status_of(&response));
            (response, ids)
        }
    };

    let status = status_of(&response).as_u16();
    let latency_ms = format_args!("{:.1}", start.elapsed().as_secs_f64() * 1000.0);
    let route = route.as_deref().unwrap_or("-");
    match ids {
        Some((trace_id, span_id)) => {
            // Field values are only evaluated when the access log is on: the ids are formatted
            // then, as strings (so quoted like the other fields).
            tracing::info!(
                target: "access",
                %method, route, path, status, latency_ms, request_id,
                trace_id = trace_id.to_string(),
                span_id = span_id.to_string(),
            );
        }
        None => tracing::info!(target: "access", %method, route, path, status, latency_ms, request_id),
    }
    response
}

fn server_span(req: &ServiceRequest, route: Option<&str>, request_id: &str) -> tracing::Span {
    let method = req.method().as_str();
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let info = req.connection_info();
    let (address, port) = split_host(info.host());
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = Empty,
        url.path = req.path(),
        url.scheme = info.scheme(),
        server.address = address,
        server.port = port,
        user_agent.original = header(req, "user-agent"),
        "http.request.header.x-request-id" = Empty,
        "error.type" = Empty,
    );
    if request_id != "-" {
        span.record("http.request.header.x-request-id", request_id);
    }
    span
}

/// Records the answer's status; a server error (5xx) marks the span as failed.
fn record_status(span: &tracing::Span, status: StatusCode) {
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", status.as_str());
    }
}

fn status_of<B>(response: &Result<ServiceResponse<B>, actix_web::Error>) -> StatusCode {
    match response {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    }
}

/// The span's trace and span ids, for the access log (absent when nothing records spans).
/// Kept as ids, not text: they are only formatted if the access log is written.
fn ids(span: &tracing::Span) -> Option<(TraceId, SpanId)> {
    let cx = span.context();
    let span_ref = cx.span();
    let context = span_ref.span_context();
    context.is_valid().then(|| (context.trace_id(), context.span_id()))
}

fn header<'a>(req: &'a ServiceRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|value| value.to_str().ok())
}

/// `host:port` into the address and, when present and numeric, the port.
fn split_host(host: &str) -> (&str, Option<i64>) {
    match host.rsplit_once(':') {
        // An IPv6 literal without a port ends in `]`, not in digits.
        Some((address, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (address, port.parse().ok())
        }
        _ => (host, None),
    }
}

/// A route pattern as the semantic conventions want it: `/details/{id:.*}` becomes
/// `/details/{id}`.
pub fn route_template(pattern: &str) -> String {
    let mut template = String::with_capacity(pattern.len());
    let mut in_regex = false;
    let mut depth = 0;
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if !in_regex {
                    template.push(c);
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    in_regex = false;
                    template.push(c);
                }
            }
            ':' if depth == 1 => in_regex = true,
            _ if !in_regex => template.push(c),
            _ => {}
        }
    }
    template
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_templates_lose_their_regexes() {
        assert_eq!(route_template("/details/{id:.*}"), "/details/{id}");
        assert_eq!(route_template("/reviews/{id}"), "/reviews/{id}");
        assert_eq!(route_template("/a/{n:[0-9]{2}}/b"), "/a/{n}/b");
        assert_eq!(route_template("/health"), "/health");
    }

    #[test]
    fn hosts_split_into_address_and_port() {
        assert_eq!(split_host("reviews:9080"), ("reviews", Some(9080)));
        assert_eq!(split_host("productpage"), ("productpage", None));
        assert_eq!(split_host("[::1]:9080"), ("[::1]", Some(9080)));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
    }
}
