//! The spans `otel` mode makes around every request and every outbound call, made with the
//! OpenTelemetry SDK's API directly.
//!
//! A SERVER or CLIENT span is made on every hop, so its cost is the mode's cost: through
//! `tracing` and the tracing-opentelemetry bridge each one also went through the subscriber's
//! registry, the log layer's field formatting and the bridge's builder, several times the
//! SDK's own work. The application's own spans (`render productpage`, and the INTERNAL fetch
//! spans when `BOOKINFO_FETCH_SPANS` asks for them) are `tracing` spans still, through the
//! bridge: they nest under the request's span because the middleware makes its context the
//! current OpenTelemetry context while the handler runs.

use std::borrow::Cow;
use std::sync::Arc;

use bookinfo_propagation::{PropagatorKind, Propagators, TracingMode};
use opentelemetry::trace::{SpanBuilder, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How this process takes part in traces, per request.
#[derive(Debug, Clone)]
pub enum Tracing {
    /// Copy the forwarded headers verbatim; no spans.
    Propagate,
    /// Extract with, and inject through, the propagators; a span per request and per call.
    Otel(Arc<Otel>),
    /// Forward no trace context at all; no spans.
    None,
}

impl Tracing {
    /// `mode`, with spans made by `tracer` (in `otel` mode; without a tracer, the SDK being
    /// off, `otel` only forwards, as `propagate` does), contexts read and written by
    /// `propagators`, an INTERNAL span around each fetch when `fetch_spans`.
    pub fn new(
        mode: TracingMode,
        tracer: Option<SdkTracer>,
        propagators: &[PropagatorKind],
        fetch_spans: bool,
    ) -> Self {
        match (mode, tracer) {
            (TracingMode::Otel, Some(tracer)) => {
                Tracing::Otel(Arc::new(Otel::new(Propagators::new(propagators), tracer, fetch_spans)))
            }
            (TracingMode::None, _) => Tracing::None,
            _ => Tracing::Propagate,
        }
    }

    /// The mode in effect.
    pub fn mode(&self) -> TracingMode {
        match self {
            Tracing::Propagate => TracingMode::Propagate,
            Tracing::Otel(_) => TracingMode::Otel,
            Tracing::None => TracingMode::None,
        }
    }

    /// The propagators, in `otel` mode.
    pub fn propagators(&self) -> Option<&Propagators> {
        self.otel().map(Otel::propagators)
    }

    /// The spans to make, in `otel` mode.
    pub fn otel(&self) -> Option<&Otel> {
        match self {
            Tracing::Otel(otel) => Some(otel),
            Tracing::Propagate | Tracing::None => None,
        }
    }
}

/// What `otel` mode needs per request: the propagators, the tracer, and which spans to make.
#[derive(Debug)]
pub struct Otel {
    propagators: Propagators,
    tracer: SdkTracer,
    fetch_spans: bool,
}

impl Otel {
    /// Spans of `tracer`, contexts read and written by `propagators`; `fetch_spans` adds an
    /// INTERNAL span around each upstream fetch.
    pub fn new(propagators: Propagators, tracer: SdkTracer, fetch_spans: bool) -> Self {
        Self { propagators, tracer, fetch_spans }
    }

    /// The propagators.
    pub fn propagators(&self) -> &Propagators {
        &self.propagators
    }

    /// Whether each upstream fetch gets an INTERNAL span of its own.
    pub fn fetch_spans(&self) -> bool {
        self.fetch_spans
    }

    /// Starts a span of `kind`, child of `parent` (sampled as the sampler says), and returns
    /// `parent` with it: the context its children and the headers of a call are made from.
    pub fn start(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> Context {
        let builder = SpanBuilder::from_name(name).with_kind(kind).with_attributes(attributes);
        parent.with_span(self.tracer.build_with_context(builder, parent))
    }
}

/// The context a span started now is the child of: the innermost of the application's
/// `tracing` spans (an INTERNAL span, through the bridge), or else the request's own span,
/// which the middleware keeps current while the handler runs.
pub fn current_parent() -> Context {
    let span = tracing::Span::current();
    if span.is_none() {
        return Context::current();
    }
    let cx = span.context();
    // A `tracing` span the bridge does not see (filtered out) has no context of its own.
    if cx.span().span_context().is_valid() { cx } else { Context::current() }
}
