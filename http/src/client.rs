//! The outbound HTTP client every service calls its upstreams through.
//!
//! Handlers take a [`RequestContext`] (an `actix-web` extractor) and call
//! `ctx.get(REVIEWS, "/reviews/{id}", id).timeout(..).send().await`. The context carries the
//! inbound request's forwarded headers, so every outbound call sends them on without the
//! handler knowing which headers matter.
//!
//! Bookinfo's rule for a call is kept here: it succeeds only on HTTP 200; anything else (another
//! status, a timeout, a refused connection) is an [`UpstreamError`] that keeps the status, so a
//! caller can answer with it.
//!
//! In `otel` mode each attempt is a CLIENT span, child of the span the handler is in, and the
//! propagators write its context (`traceparent`, `x-b3-*`, `baggage`, ...) onto the call, so the
//! next sidecar's span becomes its child. The semantic conventions are followed: named after the
//! method and the path's template (`GET /reviews/{id}`), with `url.template`, `url.full`,
//! `server.address`, `server.port` and `http.response.status_code`; any failure, a 4xx
//! included, marks it as an error.

use std::cell::Cell;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::{Bytes, Data};
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use awc::error::{PayloadError, SendRequestError};
use bookinfo_propagation::{ForwardedHeaders, carries_trace_context, writable_trace_context};
use futures_util::future::LocalBoxFuture;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::headers::{Read, Write};
use crate::routing::{Answer, Outbound, Router, Transport};
use crate::spans::{Tracing, current_parent};
use crate::upstream::{Upstream, Upstreams};

/// Largest upstream body read; Bookinfo's bodies are well under a kilobyte.
const MAX_BODY: usize = 1024 * 1024;

/// Timeout used when a call does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// One HTTP client per worker thread (`awc::Client` is not `Send`), with its connection pool,
/// the upstream addresses, the tracing mode and the local routing rules.
pub struct UpstreamClient {
    http: awc::Client,
    upstreams: Arc<Upstreams>,
    tracing: Tracing,
    routes: Option<Arc<dyn Router>>,
}

impl UpstreamClient {
    /// A client for `upstreams`, tracing calls as `tracing` says and routing them by `routes`
    /// (Istio rules, for the local stack). Connections are pooled and reused across requests.
    pub fn new(upstreams: Arc<Upstreams>, tracing: Tracing, routes: Option<Arc<dyn Router>>) -> Self {
        let http = awc::Client::builder()
            // Only forwarded headers go out: no awc `User-Agent` or `Date` of our own.
            .no_default_headers()
            // Each call has its own deadline, covering connect, headers and body.
            .disable_timeout()
            // A redirect would carry cookie and authorization to another host; Bookinfo never
            // redirects between services, so a 3xx is a failed call like any non-200.
            .disable_redirects()
            .finish();
        Self { http, upstreams, tracing, routes }
    }

    /// The upstream addresses this client calls.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }
}

/// What a handler calls upstreams through: the worker's client plus the inbound request's
/// forwarded headers.
pub struct RequestContext {
    client: Data<UpstreamClient>,
    forwarded: ForwardedHeaders,
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_http_request(req))
    }
}

impl RequestContext {
    /// The context of `req`.
    ///
    /// # Errors
    /// When the application was built without an [`UpstreamClient`] (a wiring mistake).
    pub fn from_http_request(req: &HttpRequest) -> Result<Self, actix_web::Error> {
        let client = req
            .app_data::<Data<UpstreamClient>>()
            .cloned()
            .ok_or_else(|| actix_web::error::ErrorInternalServerError("no upstream client configured"))?;
        // In otel mode the propagators write their headers afresh for every call, and no
        // received context of a format it can write goes on stale; `none` forwards no context.
        // The edge rule, where there is one, has already been applied to the inbound headers.
        let forwarded = match &client.tracing {
            Tracing::Propagate => ForwardedHeaders::capture(&Read(req.headers())),
            // With no propagator at all (`OTEL_PROPAGATORS=none`) nothing is written, so what was
            // received goes on, as in propagate mode.
            Tracing::Otel(otel) => ForwardedHeaders::capture_except(&Read(req.headers()), |name| {
                let propagators = otel.propagators();
                propagators.owns(name) || (!propagators.kinds().is_empty() && writable_trace_context(name))
            }),
            Tracing::None => ForwardedHeaders::capture_except(&Read(req.headers()), carries_trace_context),
        };
        Ok(Self { client, forwarded })
    }

    /// The headers every outbound call of this request carries.
    pub fn forwarded(&self) -> &ForwardedHeaders {
        &self.forwarded
    }

    /// An INTERNAL span to wrap one of the handler's fetches in (`fetch details`), in `otel`
    /// mode with `BOOKINFO_FETCH_SPANS=true`; otherwise no span, at no cost. The fetch's CLIENT
    /// spans are its children.
    pub fn fetch_span(&self, name: &'static str) -> tracing::Span {
        match self.client.tracing.otel() {
            Some(otel) if otel.fetch_spans() => tracing::info_span!("fetch", otel.name = name),
            _ => tracing::Span::none(),
        }
    }

    /// A `GET` on `upstream` of `template`, a path of its API with one `{...}` part (such as
    /// `/details/{id}`), that part replaced by `value` as it is. The template names the call's
    /// span (`GET /details/{id}`): a name of few values, whatever the ids.
    pub fn get(&self, upstream: Upstream, template: &'static str, value: &str) -> Call<'_> {
        Call {
            ctx: self,
            upstream,
            template,
            path: fill(template, value),
            timeout: DEFAULT_TIMEOUT,
            attempts: 1,
            headers: Vec::new(),
        }
    }
}

/// One outbound call, built by [`RequestContext::get`].
#[must_use = "a call does nothing until `send` is awaited"]
pub struct Call<'a> {
    ctx: &'a RequestContext,
    upstream: Upstream,
    template: &'static str,
    path: String,
    timeout: Duration,
    attempts: u32,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Call<'_> {
    /// Deadline of each attempt: connecting, the response head and the body together.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times to try before giving up (at least once). Every failure is retried at
    /// once, as the original productpage does for reviews.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Adds a header of this call only, such as `Accept`.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Sends the call, retrying as configured.
    ///
    /// # Errors
    /// The last attempt's failure: a status other than 200, a timeout, a connection or body
    /// error.
    pub async fn send(self) -> Result<Reply, UpstreamError> {
        let mut attempt = 1;
        loop {
            match self.attempt().await {
                Ok(reply) => return Ok(reply),
                Err(err) if attempt < self.attempts => {
                    tracing::debug!(upstream = %self.upstream, attempt, error = %err, "retrying");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn attempt(&self) -> Result<Reply, UpstreamError> {
        let upstream = self.upstream;
        let client = &self.ctx.client;
        let mut headers = HeaderMap::new();
        for (name, value) in self.ctx.forwarded.iter().chain(self.headers.iter().map(|(n, v)| (n, v))) {
            headers.append(name.clone(), value.clone());
        }
        let span = client.tracing.otel().map(|otel| {
            // Room for what is known later (where the call goes, how it ended): no regrowth.
            let mut attributes = Vec::with_capacity(8);
            attributes.push(KeyValue::new("http.request.method", "GET"));
            attributes.push(KeyValue::new("peer.service", upstream.name()));
            attributes.push(KeyValue::new("url.template", self.template));
            // Semantic conventions: a client span is named after its method and, when there is
            // one, its URL's template.
            let cx =
                otel.start(format!("GET {}", self.template), SpanKind::Client, attributes, &current_parent());
            otel.propagators().inject(&cx, &mut Write(&mut headers));
            cx
        });
        let pods = Pods { call: self, span: span.as_ref(), first: Cell::new(true) };
        // Local routing sees the call as a sidecar would: with every header it carries.
        let routed = match &client.routes {
            Some(router) => {
                let call = Outbound { upstream, method: "GET", path: &self.path, headers };
                router.route(call, &pods)
            }
            None => pods.send(None, headers),
        };
        // The caller's deadline covers the whole call: the routing's waits and tries, the body.
        let answer = actix_web::rt::time::timeout(self.timeout, routed)
            .await
            .unwrap_or(Err(UpstreamError::Timeout { upstream, timeout: self.timeout }));
        let result = match answer {
            Ok(reply) if reply.status == StatusCode::OK => Ok(reply),
            Ok(reply) => Err(UpstreamError::Status { upstream, status: reply.status }),
            Err(err) => Err(err),
        };
        if let Some(span) = &span {
            end(span, &result);
        }
        result
    }
}

/// The pods of one call's upstream, as the client reaches them: what a [`Router`] sends tries
/// through. The first try records where it went on the call's span.
struct Pods<'a, 'c> {
    call: &'a Call<'c>,
    span: Option<&'a Context>,
    first: Cell<bool>,
}

impl Transport for Pods<'_, '_> {
    fn has_version(&self, version: &str) -> bool {
        let endpoint = self.call.ctx.client.upstreams.endpoint(self.call.upstream);
        endpoint.is_some_and(|endpoint| endpoint.choose(Some(version)).is_some())
    }

    fn send(&self, version: Option<&str>, headers: HeaderMap) -> LocalBoxFuture<'_, Answer> {
        let version = version.map(str::to_owned);
        Box::pin(async move { self.try_once(version.as_deref(), headers).await })
    }
}

impl Pods<'_, '_> {
    async fn try_once(&self, version: Option<&str>, headers: HeaderMap) -> Answer {
        let call = self.call;
        let upstream = call.upstream;
        let client = &call.ctx.client;
        let base = client.upstreams.endpoint(upstream).and_then(|endpoint| endpoint.choose(version));
        let Some(base) = base else {
            // Nowhere to send it: what a sidecar answers for a version with no pods.
            return Ok(Reply { upstream, status: StatusCode::SERVICE_UNAVAILABLE, body: Bytes::new() });
        };
        let url = format!("{base}{}", call.path);
        let mut request = client.http.get(&url);
        // The call's headers go as they are: the client adds none of its own.
        *request.headers_mut() = headers;
        if let (Some(cx), true) = (self.span, self.first.replace(false)) {
            let uri = request.get_uri();
            let address = uri.host().map(|host| KeyValue::new("server.address", host.to_owned()));
            let port = uri.port_u16().map(|port| KeyValue::new("server.port", i64::from(port)));
            // The request holds its own URI: the text moves into the attribute.
            let place = [Some(KeyValue::new("url.full", url)), address, port];
            cx.span().set_attributes(place.into_iter().flatten());
        }
        let mut response =
            request.send().await.map_err(|source| UpstreamError::Connect { upstream, source })?;
        let status = response.status();
        let body = response
            .body()
            .limit(MAX_BODY)
            .await
            .map_err(|source| UpstreamError::Body { upstream, source })?;
        Ok(Reply { upstream, status, body })
    }
}

/// `template` with its one `{...}` part replaced by `value` (`template` itself if it has none).
fn fill(template: &str, value: &str) -> String {
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}{value}{}", &template[..open], &template[close + 1..])
        }
        _ => template.to_owned(),
    }
}

/// Records the status and ends the span; any failure (for a client, a 4xx too) marks it failed.
fn end(cx: &Context, result: &Result<Reply, UpstreamError>) {
    let span = cx.span();
    let status = match result {
        Ok(reply) => Some(reply.status),
        Err(UpstreamError::Status { status, .. }) => Some(*status),
        Err(_) => None,
    };
    let error_type = match result {
        Ok(_) => None,
        Err(UpstreamError::Status { status, .. }) => {
            (status.is_client_error() || status.is_server_error()).then(|| status.as_str().to_owned())
        }
        Err(UpstreamError::Timeout { .. }) => Some("timeout".to_owned()),
        Err(UpstreamError::Connect { .. }) => Some("connect".to_owned()),
        Err(UpstreamError::Body { .. }) => Some("body".to_owned()),
        Err(UpstreamError::Decode { .. }) => Some("decode".to_owned()),
    };
    let status = status.map(|s| KeyValue::new("http.response.status_code", i64::from(s.as_u16())));
    if error_type.is_some() {
        span.set_status(Status::error(""));
    }
    let error_type = error_type.map(|e| KeyValue::new("error.type", e));
    span.set_attributes([status, error_type].into_iter().flatten());
    span.end();
}

/// A successful (HTTP 200) upstream answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Who answered.
    pub upstream: Upstream,
    /// Always 200; kept for logging.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body parsed as a `T`: the type the upstream writes.
    ///
    /// # Errors
    /// [`UpstreamError::Decode`] when the body is not that JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, UpstreamError> {
        serde_json::from_slice(&self.body)
            .map_err(|source| UpstreamError::Decode { upstream: self.upstream, source })
    }
}

/// Why an upstream call failed. Each variant keeps what caused it, so a caller can tell
/// failures apart by type.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered, with a status other than 200.
    #[error("{upstream} answered {status}")]
    Status {
        /// Who answered.
        upstream: Upstream,
        /// What it answered.
        status: StatusCode,
    },
    /// No complete answer within the deadline.
    #[error("{upstream} did not answer within {timeout:?}")]
    Timeout {
        /// Who was called.
        upstream: Upstream,
        /// The deadline.
        timeout: Duration,
    },
    /// The request could not be sent (refused connection, DNS failure, reset).
    #[error("cannot reach {upstream}: {source}")]
    Connect {
        /// Who was called.
        upstream: Upstream,
        /// The transport error.
        source: SendRequestError,
    },
    /// The response body could not be read.
    #[error("cannot read the answer of {upstream}: {source}")]
    Body {
        /// Who answered.
        upstream: Upstream,
        /// The transport error.
        source: PayloadError,
    },
    /// The body is not the JSON the upstream writes.
    #[error("invalid answer from {upstream}: {source}")]
    Decode {
        /// Who answered.
        upstream: Upstream,
        /// What does not fit.
        source: serde_json::Error,
    },
}

impl UpstreamError {
    /// The status a caller passes on: the upstream's own, or 500 when there was none (as the
    /// original productpage does).
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Status { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The upstream that failed.
    pub fn upstream(&self) -> Upstream {
        match self {
            UpstreamError::Status { upstream, .. }
            | UpstreamError::Timeout { upstream, .. }
            | UpstreamError::Connect { upstream, .. }
            | UpstreamError::Body { upstream, .. }
            | UpstreamError::Decode { upstream, .. } => *upstream,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVIEWS: Upstream = Upstream::named("reviews");

    #[test]
    fn a_template_is_filled_with_its_value_as_it_is() {
        assert_eq!(fill("/details/{id}", "0"), "/details/0");
        assert_eq!(
            fill("/books/v1/volumes?q=isbn:{isbn}", "0486424618"),
            "/books/v1/volumes?q=isbn:0486424618"
        );
        assert_eq!(fill("/reviews/{id}/x", "a%2Fb"), "/reviews/a%2Fb/x");
        assert_eq!(fill("/health", "0"), "/health");
    }

    #[test]
    fn a_body_of_another_shape_is_a_decode_error_that_keeps_its_cause() {
        let reply =
            Reply { upstream: REVIEWS, status: StatusCode::OK, body: Bytes::from_static(b"{\"error\": 1}") };
        let err = reply.json::<Vec<u8>>().unwrap_err();
        assert!(
            matches!(&err, UpstreamError::Decode { upstream: REVIEWS, source } if source.is_data()),
            "{err:?}"
        );
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause =
            std::error::Error::source(&err).and_then(|cause| cause.downcast_ref::<serde_json::Error>());
        assert!(cause.is_some(), "the cause is reachable by type");
    }
}
