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
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceContextExt, TraceId};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};

use bookinfo_propagation::X_REQUEST_ID;

use crate::headers::Read;
use crate::spans::{Otel, Tracing};

/// Every service's health check, which probes call.
pub const HEALTH: &str = "/health";

/// The middleware itself, for `actix_web::middleware::from_fn`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let route = req.match_pattern().map(|pattern| route_template(&pattern));
    let request_id = header(&req, &X_REQUEST_ID).unwrap_or("-").to_owned();
    let tracing = req.app_data::<Data<Tracing>>().map(|t| t.get_ref().clone());

    // A health probe starts no trace (a kubelet's would add one every few seconds per pod); one
    // that comes within a trace is part of it.
    let traced = tracing
        .as_ref()
        .and_then(Tracing::otel)
        .map(|otel| (otel, otel.propagators().extract(&Read(req.headers()))));
    let traced = traced
        .filter(|(_, parent)| route.as_deref() != Some(HEALTH) || parent.span().span_context().is_valid());
    let (response, ids) = match traced {
        None => (next.call(req).await, None),
        Some((otel, parent)) => {
            let cx = server_span(otel, &req, &parent, route.as_deref(), &request_id);
            let ids = ids(&cx);
            // The handler runs with the request's span current: the application's own spans
            // and the calls' spans are its children, its log events its events.
            let response = next.call(req).with_context(cx.clone()).await;
            end(&cx, status_of(&response));
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

/// The SERVER span of `req`, child of the caller's context (the edge rule has already been
/// applied to the headers it is read from, see `edge::rule`); returns the context holding it.
fn server_span(
    otel: &Otel,
    req: &ServiceRequest,
    parent: &Context,
    route: Option<&str>,
    request_id: &str,
) -> Context {
    // Semantic conventions: a method outside the known set is `_OTHER` (its text kept apart)
    // and names the span `HTTP`, so clients cannot mint span names.
    let known = known_method(req.method());
    let method = known.unwrap_or("HTTP");
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let (host, scheme) = host_and_scheme(req);
    let (address, port) = split_host(&host);
    // Room for the status and the error type, set at the end: no regrowth.
    let mut attributes = Vec::with_capacity(10);
    attributes.push(KeyValue::new("http.request.method", known.unwrap_or("_OTHER")));
    if known.is_none() {
        attributes.push(KeyValue::new("http.request.method_original", req.method().as_str().to_owned()));
    }
    if let Some(route) = route {
        attributes.push(KeyValue::new("http.route", route.to_owned()));
    }
    attributes.push(KeyValue::new("url.path", req.path().to_owned()));
    if !req.query_string().is_empty() {
        attributes.push(KeyValue::new("url.query", req.query_string().to_owned()));
    }
    attributes.push(KeyValue::new("url.scheme", static_or_owned(&scheme, &["http", "https"])));
    attributes.push(KeyValue::new("server.address", address.to_owned()));
    if let Some(port) = port {
        attributes.push(KeyValue::new("server.port", port));
    }
    if let Some(agent) = header(req, &header::USER_AGENT) {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    if request_id != "-" {
        // Header attributes are string arrays: a header may come more than once.
        let values = Array::String(vec![StringValue::from(request_id.to_owned())]);
        attributes.push(KeyValue::new("http.request.header.x-request-id", Value::Array(values)));
    }
    otel.start(name, SpanKind::Server, attributes, parent)
}

/// The host (with its port, if any) and scheme the request was sent to, as actix-web's
/// `ConnectionInfo` resolves them (`X-Forwarded-Host`/`-Proto`, `Host`, the server's own)
/// without building one, which also formats the peer's address, for nothing here; with a
/// `Forwarded` header, actix-web reads it.
fn host_and_scheme(req: &ServiceRequest) -> (String, String) {
    if req.headers().contains_key(header::FORWARDED) {
        let info = req.connection_info();
        return (info.host().to_owned(), info.scheme().to_owned());
    }
    let first = |name| header(req, name).and_then(|v| v.split(',').next()).map(str::trim);
    let scheme = first(&X_FORWARDED_PROTO)
        .or_else(|| req.uri().scheme_str())
        .unwrap_or(if req.app_config().secure() { "https" } else { "http" });
    let host = first(&X_FORWARDED_HOST)
        .or_else(|| header(req, &header::HOST))
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_else(|| req.app_config().host());
    (host.to_owned(), scheme.to_owned())
}

/// Records the answer's status and ends the span; a server error (5xx) marks it as failed.
fn end(cx: &Context, status: StatusCode) {
    let span = cx.span();
    let code = KeyValue::new("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(Status::error(""));
        span.set_attributes([code, KeyValue::new("error.type", status.as_str().to_owned())]);
    } else {
        span.set_attribute(code);
    }
    span.end();
}

/// The method, when it is one of HTTP's (RFC 9110 and PATCH), as the conventions list them.
fn known_method(method: &Method) -> Option<&'static str> {
    const KNOWN: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
    KNOWN.iter().find(|known| **known == method.as_str()).copied()
}

/// `text` as a value, borrowed from `known` when it is one of them.
fn static_or_owned(text: &str, known: &[&'static str]) -> Value {
    match known.iter().find(|k| **k == text) {
        Some(known) => Value::from(*known),
        None => Value::from(text.to_owned()),
    }
}

fn status_of<B>(response: &Result<ServiceResponse<B>, actix_web::Error>) -> StatusCode {
    match response {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    }
}

/// The span's trace and span ids, for the access log. Kept as ids, not text: they are only
/// formatted if the access log is written.
fn ids(cx: &Context) -> Option<(TraceId, SpanId)> {
    let span_ref = cx.span();
    let context = span_ref.span_context();
    context.is_valid().then(|| (context.trace_id(), context.span_id()))
}

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

fn header<'a>(req: &'a ServiceRequest, name: &HeaderName) -> Option<&'a str> {
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
