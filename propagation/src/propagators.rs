//! The composite of OpenTelemetry propagators a service reads and writes, from
//! `OTEL_PROPAGATORS`.

use http::header::HeaderName;
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};

use opentelemetry::propagation::TextMapPropagator;

use super::b3::{self, B3, B3Encoding};
use super::baggage::BaggagePropagator;
use super::carriers::{HeaderExtractor, HeaderInjector, HeaderValues};
use super::headers::{Headers, HeadersMut};
use super::jaeger::{self, JaegerPropagator, UBER_TRACE_ID};
use super::w3c::{self, W3cTraceContext};

static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// One entry of `OTEL_PROPAGATORS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropagatorKind {
    /// `tracecontext`: W3C `traceparent` and `tracestate`.
    TraceContext,
    /// `baggage`: W3C `baggage`.
    Baggage,
    /// `b3`: the single `b3` header (both forms are read).
    B3,
    /// `b3multi`: the `x-b3-*` headers Envoy's Zipkin tracer reads (both forms are read).
    B3Multi,
    /// `jaeger`: `uber-trace-id`.
    Jaeger,
}

impl PropagatorKind {
    /// This project's default: what Istio's OpenTelemetry provider (W3C) and its Zipkin
    /// provider (B3 multi) read, and baggage.
    pub const DEFAULT: [PropagatorKind; 3] =
        [PropagatorKind::TraceContext, PropagatorKind::Baggage, PropagatorKind::B3Multi];

    /// Every header this propagator reads or writes: they are written afresh for each outbound
    /// call, never copied from the inbound request.
    fn headers(self) -> &'static [&'static str] {
        const B3_HEADERS: &[&str] =
            &["b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"];
        match self {
            PropagatorKind::TraceContext => &["traceparent", "tracestate"],
            PropagatorKind::Baggage => &["baggage"],
            PropagatorKind::B3 | PropagatorKind::B3Multi => B3_HEADERS,
            PropagatorKind::Jaeger => &[UBER_TRACE_ID],
        }
    }

    fn propagator(self) -> Box<dyn TextMapPropagator + Send + Sync> {
        match self {
            PropagatorKind::TraceContext => Box::new(W3cTraceContext),
            PropagatorKind::Baggage => Box::new(BaggagePropagator),
            PropagatorKind::B3 => Box::new(B3::new(B3Encoding::Single)),
            PropagatorKind::B3Multi => Box::new(B3::new(B3Encoding::Multiple)),
            PropagatorKind::Jaeger => Box::new(JaegerPropagator),
        }
    }
}

bookinfo_config::named!(PropagatorKind, "propagator", {
    TraceContext => "tracecontext",
    Baggage => "baggage",
    B3 => "b3",
    B3Multi => "b3multi",
    Jaeger => "jaeger",
});

/// The configured propagators, read in order (the last one that finds a context wins) and all
/// written.
pub struct Propagators {
    /// The kinds that read a span context, last first.
    span_readers: Vec<Box<dyn TextMapPropagator + Send + Sync>>,
    /// The kinds that read something else (baggage), in order.
    other_readers: Vec<Box<dyn TextMapPropagator + Send + Sync>>,
    kinds: Vec<PropagatorKind>,
    /// Every header the kinds read or write, once each.
    owned: Vec<&'static str>,
}

impl Propagators {
    /// A composite of `kinds`; none reads and writes nothing.
    pub fn new(kinds: &[PropagatorKind]) -> Self {
        let mut owned: Vec<&'static str> = Vec::new();
        for header in kinds.iter().flat_map(|kind| kind.headers()) {
            if !owned.contains(header) {
                owned.push(header);
            }
        }
        let reads_span = |kind: &&PropagatorKind| **kind != PropagatorKind::Baggage;
        Self {
            span_readers: kinds.iter().rev().filter(reads_span).map(|kind| kind.propagator()).collect(),
            other_readers: kinds.iter().filter(|k| !reads_span(k)).map(|kind| kind.propagator()).collect(),
            kinds: kinds.to_vec(),
            owned,
        }
    }

    /// The kinds, in order.
    pub fn kinds(&self) -> &[PropagatorKind] {
        &self.kinds
    }

    /// The context of an inbound request: remote span and baggage, or an empty context when
    /// its headers hold none (or hold garbage).
    pub fn extract(&self, headers: &impl Headers) -> Context {
        let extractor = HeaderExtractor(headers);
        // The last kind that finds a span context wins: reading from the last one and stopping
        // at the first found gives the same context as reading all in order, and a request
        // carrying both W3C and B3 (as every hop of this stack sends) is parsed once.
        let empty = Context::new();
        let mut cx = self
            .span_readers
            .iter()
            .map(|reader| reader.extract_with_context(&empty, &extractor))
            .find(|cx| cx.span().span_context().is_valid())
            .unwrap_or(empty);
        if headers.first(&TRACESTATE).is_some() {
            cx = self.with_w3c_trace_state(cx, &extractor);
        }
        for reader in &self.other_readers {
            cx = reader.extract_with_context(&cx, &extractor);
        }
        cx
    }

    /// `cx` with the W3C `tracestate`, when another format won with the same span: B3 carries
    /// no trace state, and W3C asks that vendors' entries travel on.
    fn with_w3c_trace_state(&self, cx: Context, extractor: &HeaderExtractor<'_, impl Headers>) -> Context {
        let context = cx.span().span_context().clone();
        if !self.kinds.contains(&PropagatorKind::TraceContext) || context.trace_state() != &TraceState::NONE {
            return cx;
        }
        let w3c = W3cTraceContext.extract_with_context(&Context::new(), extractor);
        let w3c = w3c.span().span_context().clone();
        if w3c.trace_id() != context.trace_id() || w3c.span_id() != context.span_id() {
            return cx;
        }
        let merged = SpanContext::new(
            context.trace_id(),
            context.span_id(),
            context.trace_flags(),
            true,
            w3c.trace_state().clone(),
        );
        cx.with_remote_span_context(merged)
    }

    /// Writes `cx` onto an outbound request's headers.
    pub fn inject(&self, cx: &Context, headers: &mut impl HeadersMut) {
        // What the composite would write, with every span-context header's value cut from one
        // buffer; baggage goes through its propagator.
        let span = cx.span();
        let context = span.span_context();
        let mut values = HeaderValues::default();
        for kind in &self.kinds {
            match kind {
                PropagatorKind::TraceContext => w3c::write(context, &mut values),
                PropagatorKind::B3 => b3::write(B3Encoding::Single, context, &mut values),
                PropagatorKind::B3Multi => b3::write(B3Encoding::Multiple, context, &mut values),
                PropagatorKind::Jaeger => jaeger::write(context, &mut values),
                PropagatorKind::Baggage => {}
            }
        }
        values.into_headers(headers);
        if self.kinds.contains(&PropagatorKind::Baggage) {
            BaggagePropagator.inject_context(cx, &mut HeaderInjector(headers));
        }
    }

    /// Whether `name` is written by these propagators (and so not copied from the inbound
    /// request).
    pub fn owns(&self, name: &HeaderName) -> bool {
        self.owned.contains(&name.as_str())
    }
}

impl std::fmt::Debug for Propagators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kinds.iter().map(|k| k.as_str())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderMap, HeaderValue};
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapCompositePropagator;
    use opentelemetry::trace::TraceContextExt;

    const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const SPAN: &str = "e457b5a2e4d86bd1";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn round_trip(kinds: &[PropagatorKind], inbound: &[(&'static str, &str)]) -> HeaderMap {
        let propagators = Propagators::new(kinds);
        let cx = propagators.extract(&headers(inbound));
        let mut out = HeaderMap::new();
        propagators.inject(&cx, &mut out);
        out
    }

    #[test]
    fn envoy_b3_becomes_traceparent_and_b3_and_baggage_is_kept() {
        let out = round_trip(
            &PropagatorKind::DEFAULT,
            &[
                ("x-b3-traceid", TRACE),
                ("x-b3-spanid", SPAN),
                ("x-b3-sampled", "1"),
                ("baggage", "user=jason"),
            ],
        );
        assert_eq!(out.get("traceparent").unwrap(), &format!("00-{TRACE}-{SPAN}-01"));
        assert_eq!(out.get("x-b3-traceid").unwrap(), TRACE);
        assert_eq!(out.get("x-b3-spanid").unwrap(), SPAN);
        assert_eq!(out.get("x-b3-sampled").unwrap(), "1");
        assert_eq!(out.get("baggage").unwrap(), "user=jason");
        assert!(out.get("tracestate").is_none(), "no empty tracestate");
    }

    #[test]
    fn w3c_only_input_is_read_and_an_unsampled_decision_passes_on() {
        let out = round_trip(&PropagatorKind::DEFAULT, &[("traceparent", &format!("00-{TRACE}-{SPAN}-00"))]);
        assert_eq!(out.get("traceparent").unwrap(), &format!("00-{TRACE}-{SPAN}-00"));
        assert_eq!(out.get("x-b3-sampled").unwrap(), "0");
    }

    #[test]
    fn b3_single_writes_one_header_and_jaeger_its_own() {
        let inbound = [("b3", &*format!("{TRACE}-{SPAN}-1"))];
        let single = round_trip(&[PropagatorKind::B3], &inbound);
        assert_eq!(single.get("b3").unwrap(), &format!("{TRACE}-{SPAN}-1"));
        assert!(single.get("x-b3-traceid").is_none());
        let jaeger = round_trip(&[PropagatorKind::B3, PropagatorKind::Jaeger], &inbound);
        assert_eq!(jaeger.get("uber-trace-id").unwrap(), &format!("{TRACE}:{SPAN}:0:1"));
    }

    #[test]
    fn garbage_gives_an_empty_context() {
        let propagators = Propagators::new(&PropagatorKind::DEFAULT);
        for (name, value) in [
            ("traceparent", "00-00000000000000000000000000000000-e457b5a2e4d86bd1-01"),
            ("traceparent", "00-xyz-e457b5a2e4d86bd1-01"),
            ("traceparent", "00-80f198ee56343ba864fe8b2a57d3eff7-0000000000000000-01"),
            ("traceparent", "garbage"),
            ("traceparent", "00-80f198ee56343ba864fe8b2a57d3ef-e457b5a2e4d86bd1-01"),
            ("x-b3-traceid", "80f198ee56343ba8"),
        ] {
            let cx = propagators.extract(&headers(&[(name, value)]));
            assert!(!cx.span().span_context().is_valid(), "{name}: {value}");
        }
        let huge = "a".repeat(10_000);
        let cx = propagators.extract(&headers(&[("b3", &huge), ("baggage", &huge)]));
        assert!(!cx.span().span_context().is_valid());
        assert_eq!(cx.baggage().len(), 0, "over-long baggage is dropped");
    }

    #[test]
    fn the_last_kind_with_a_context_wins_and_baggage_is_read_beside_it() {
        let other_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let inbound = [
            ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
            ("x-b3-traceid", other_trace.to_owned()),
            ("x-b3-spanid", SPAN.to_owned()),
            ("x-b3-sampled", "0".to_owned()),
            ("baggage", "user=jason".to_owned()),
        ];
        let inbound: Vec<(&'static str, &str)> = inbound.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for (kinds, winner) in [
            (
                vec![PropagatorKind::TraceContext, PropagatorKind::Baggage, PropagatorKind::B3Multi],
                other_trace,
            ),
            (vec![PropagatorKind::B3Multi, PropagatorKind::Baggage, PropagatorKind::TraceContext], TRACE),
            (vec![PropagatorKind::Baggage, PropagatorKind::TraceContext], TRACE),
        ] {
            let propagators = Propagators::new(&kinds);
            let cx = propagators.extract(&headers(&inbound));
            assert_eq!(cx.span().span_context().trace_id().to_string(), winner, "{kinds:?}");
            assert_eq!(cx.baggage().get("user").map(|v| v.as_str().to_owned()).as_deref(), Some("jason"));
            // The same as the SDK's composite reading every kind in order.
            let all = TextMapCompositePropagator::new(kinds.iter().map(|k| k.propagator()).collect());
            let expected = all.extract_with_context(&Context::new(), &HeaderExtractor(&headers(&inbound)));
            assert_eq!(cx.span().span_context(), expected.span().span_context(), "{kinds:?}");
        }
        // A malformed last kind does not hide a good earlier one.
        let cx = Propagators::new(&PropagatorKind::DEFAULT)
            .extract(&headers(&[("traceparent", &format!("00-{TRACE}-{SPAN}-01")), ("x-b3-traceid", "zz")]));
        assert_eq!(cx.span().span_context().trace_id().to_string(), TRACE);
    }

    #[test]
    fn tracestate_travels_on_when_b3_names_the_same_span() {
        let state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
        let inbound = [
            ("traceparent", format!("00-{TRACE}-{SPAN}-01")),
            ("tracestate", state.to_owned()),
            ("x-b3-traceid", TRACE.to_owned()),
            ("x-b3-spanid", SPAN.to_owned()),
            ("x-b3-sampled", "1".to_owned()),
        ];
        let inbound: Vec<(&'static str, &str)> = inbound.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = round_trip(&PropagatorKind::DEFAULT, &inbound);
        assert_eq!(out.get("tracestate").unwrap(), state);
        // Another span in B3 wins without the W3C state, which belongs to a span it is not.
        let mut other = inbound.clone();
        other[3] = ("x-b3-spanid", "00f067aa0ba902b7");
        assert!(round_trip(&PropagatorKind::DEFAULT, &other).get("tracestate").is_none());
    }

    #[test]
    fn the_headers_written_are_the_composites() {
        let all = [
            PropagatorKind::TraceContext,
            PropagatorKind::Baggage,
            PropagatorKind::B3,
            PropagatorKind::B3Multi,
            PropagatorKind::Jaeger,
        ];
        for (flags, state) in [("01", ""), ("00", "rojo=00f067aa0ba902b7")] {
            let mut inbound =
                vec![("traceparent", format!("00-{TRACE}-{SPAN}-{flags}")), ("baggage", "a=1".into())];
            if !state.is_empty() {
                inbound.push(("tracestate", state.to_owned()));
            }
            let inbound: Vec<(&'static str, &str)> = inbound.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let propagators = Propagators::new(&all);
            let cx = propagators.extract(&headers(&inbound));
            let mut ours = HeaderMap::new();
            propagators.inject(&cx, &mut ours);
            let mut composite = HeaderMap::new();
            let each = TextMapCompositePropagator::new(all.iter().map(|k| k.propagator()).collect());
            each.inject_context(&cx, &mut HeaderInjector(&mut composite));
            let sorted = |map: &HeaderMap| {
                let mut pairs: Vec<(String, String)> =
                    map.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned())).collect();
                pairs.sort();
                pairs
            };
            assert_eq!(sorted(&ours), sorted(&composite));
            assert_eq!(ours.len(), if state.is_empty() { 7 } else { 8 }, "{ours:?}");
        }
    }

    #[test]
    fn ownership_follows_the_configured_kinds() {
        let default = Propagators::new(&PropagatorKind::DEFAULT);
        for owned in ["traceparent", "tracestate", "baggage", "b3", "x-b3-parentspanid", "x-b3-flags"] {
            assert!(default.owns(&HeaderName::from_static(owned)), "{owned}");
        }
        assert!(!default.owns(&HeaderName::from_static("x-request-id")));
        let none = Propagators::new(&[]);
        assert!(!none.owns(&HeaderName::from_static("traceparent")));
        let mut out = HeaderMap::new();
        none.inject(&none.extract(&headers(&[("traceparent", &format!("00-{TRACE}-{SPAN}-01"))])), &mut out);
        assert!(out.is_empty());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use http::header::{HeaderMap, HeaderValue};
    use opentelemetry::trace::TraceContextExt;
    use proptest::prelude::*;

    const FIELDS: [&str; 10] = [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-flags",
        "baggage",
        "uber-trace-id",
        "x-b3-parentspanid",
    ];

    proptest! {
        /// Any values in any tracing header: extraction and injection never panic, and what is
        /// written is well-formed.
        #[test]
        fn hostile_tracing_headers_never_panic(values in proptest::collection::vec((0..FIELDS.len(), "[ -~]{0,200}"), 0..8)) {
            let mut inbound = HeaderMap::new();
            for (field, value) in &values {
                if let Ok(value) = HeaderValue::from_str(value) {
                    inbound.append(HeaderName::from_static(FIELDS[*field]), value);
                }
            }
            let all = [PropagatorKind::TraceContext, PropagatorKind::Baggage, PropagatorKind::B3, PropagatorKind::B3Multi, PropagatorKind::Jaeger];
            let propagators = Propagators::new(&all);
            let cx = propagators.extract(&inbound);
            let mut out = HeaderMap::new();
            propagators.inject(&cx, &mut out);
            if let Some(traceparent) = out.get("traceparent") {
                let text = traceparent.to_str().unwrap();
                prop_assert_eq!(text.len(), 55);
                prop_assert!(cx.span().span_context().is_valid());
            }
        }

        /// A well-formed traceparent is always continued, with its ids.
        #[test]
        fn well_formed_traceparents_are_continued(trace in "[0-9a-f]{32}", span in "[0-9a-f]{16}", sampled in any::<bool>()) {
            prop_assume!(trace.bytes().any(|b| b != b'0') && span.bytes().any(|b| b != b'0'));
            let flags = if sampled { "01" } else { "00" };
            let mut inbound = HeaderMap::new();
            inbound.insert(HeaderName::from_static("traceparent"), HeaderValue::from_str(&format!("00-{trace}-{span}-{flags}")).unwrap());
            let cx = Propagators::new(&PropagatorKind::DEFAULT).extract(&inbound);
            let span_ref = cx.span();
            let context = span_ref.span_context();
            prop_assert_eq!(context.trace_id().to_string(), trace);
            prop_assert_eq!(context.span_id().to_string(), span);
            prop_assert_eq!(context.is_sampled(), sampled);
        }
    }
}
