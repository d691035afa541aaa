//! The headers a request carries on to the services it calls, in both tracing modes.
//!
//! Bookinfo's services forward a fixed allowlist of tracing and application headers from each
//! inbound request onto every outbound call made while serving it. That is what lets the mesh's
//! sidecars join their spans into one trace, and what lets routing rules deeper in the graph
//! match on values set at the edge. The list never grows to "all headers": `x-envoy-*`, `host`,
//! hop-by-hop and content headers belong to one hop only.
//!
//! - [`TracingMode::Propagate`]: the allowlist is copied verbatim; the sidecars make the trace.
//! - [`TracingMode::Otel`]: the headers of the configured propagators ([`Propagators`]:
//!   W3C trace context, B3, W3C baggage, Jaeger) are extracted into an OpenTelemetry context and
//!   injected afresh for each outbound call's span; the rest of the allowlist is still copied.

mod b3;
pub mod baggage;
mod carriers;
mod jaeger;
mod propagators;
mod w3c;

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

pub use self::carriers::{HeaderExtractor, HeaderInjector};
pub use self::propagators::{PropagatorKind, Propagators};

/// `BOOKINFO_TRACING`: the tracing mode of a service, `propagate`, `otel` (the default) or
/// `none`.
pub const BOOKINFO_TRACING: &str = "BOOKINFO_TRACING";

/// How a service takes part in traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TracingMode {
    /// Forward the tracing headers only; no OpenTelemetry SDK, no spans: the mesh's sidecars
    /// make the trace.
    Propagate,
    /// Instrument with OpenTelemetry: the application's spans nest inside the sidecars'.
    #[default]
    Otel,
    /// Forward no tracing header at all (the rest of the allowlist still goes): the
    /// counter-example, where a mesh trace falls apart at every hop. Never a default.
    None,
}

impl TracingMode {
    /// `propagate`, `otel` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            TracingMode::Propagate => "propagate",
            TracingMode::Otel => "otel",
            TracingMode::None => "none",
        }
    }
}

impl fmt::Display for TracingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TracingMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "propagate" => Ok(TracingMode::Propagate),
            "otel" => Ok(TracingMode::Otel),
            "none" => Ok(TracingMode::None),
            other => Err(format!("unknown tracing mode {other:?}: expected propagate, otel or none")),
        }
    }
}

/// `end-user`: the logged-in user, set by productpage from its session and matched by Istio's
/// VirtualService samples.
pub const END_USER: HeaderName = HeaderName::from_static("end-user");

/// `baggage`: W3C baggage, which also carries the signed-in user to routing rules.
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// `x-request-id`: Envoy's request id, shared by every hop of one request.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers copied from an inbound request onto its outbound calls, in this order.
///
/// The union of what the original services forward (Istio's "Distributed Tracing" overview and
/// FAQ over the releases) plus W3C `baggage`.
pub const FORWARDED_HEADERS: [HeaderName; 22] = [
    X_REQUEST_ID,
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("b3"),
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-parentspanid"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("x-ot-span-context"),
    HeaderName::from_static("x-cloud-trace-context"),
    HeaderName::from_static("grpc-trace-bin"),
    HeaderName::from_static("sw8"),
    HeaderName::from_static("x-datadog-trace-id"),
    HeaderName::from_static("x-datadog-parent-id"),
    HeaderName::from_static("x-datadog-sampling-priority"),
    BAGGAGE,
    END_USER,
    HeaderName::from_static("user-agent"),
    HeaderName::from_static("cookie"),
    HeaderName::from_static("authorization"),
    HeaderName::from_static("jwt"),
];

/// [`FORWARDED_HEADERS`] as a place to borrow names from (each use of a `const` is a copy).
static ALLOWLIST: [HeaderName; 22] = FORWARDED_HEADERS;

/// Where the trace contexts sit in the allowlist, `traceparent` to
/// `x-datadog-sampling-priority`: `none` forwards none of them.
const TRACE_CONTEXT: RangeInclusive<usize> = 1..=15;

/// Of those, the ones `otel` mode can write itself (W3C trace context and B3, `traceparent` to
/// `x-b3-flags`): it never forwards them as received, even those its propagators do not
/// write. Each call is a new span, so a received context would be stale, and the next hop
/// could take its parent from it.
const WRITABLE_CONTEXT: RangeInclusive<usize> = 1..=8;

/// Jaeger's header, which `otel` mode writes when asked; never forwarded as received.
static UBER_TRACE_ID: HeaderName = HeaderName::from_static(jaeger::UBER_TRACE_ID);

/// Whether `name` carries a trace context (of any tracer the allowlist knows).
pub fn carries_trace_context(name: &HeaderName) -> bool {
    allowlisted(name.as_str()).is_some_and(|index| TRACE_CONTEXT.contains(&index))
}

/// Whether `name` carries a trace context that `otel` mode's propagators can write.
pub fn writable_trace_context(name: &HeaderName) -> bool {
    allowlisted(name.as_str()).is_some_and(|index| WRITABLE_CONTEXT.contains(&index))
}

/// The name of a header this crate knows (the allowlist and Jaeger's), without parsing it.
fn known_name(name: &str) -> Option<&'static HeaderName> {
    match allowlisted(name) {
        Some(index) => Some(&ALLOWLIST[index]),
        None => (name == jaeger::UBER_TRACE_ID).then_some(&UBER_TRACE_ID),
    }
}

/// The place of `name` in [`FORWARDED_HEADERS`], if it is there.
fn allowlisted(name: &str) -> Option<usize> {
    let index = match name {
        "x-request-id" => 0,
        "traceparent" => 1,
        "tracestate" => 2,
        "b3" => 3,
        "x-b3-traceid" => 4,
        "x-b3-spanid" => 5,
        "x-b3-parentspanid" => 6,
        "x-b3-sampled" => 7,
        "x-b3-flags" => 8,
        "x-ot-span-context" => 9,
        "x-cloud-trace-context" => 10,
        "grpc-trace-bin" => 11,
        "sw8" => 12,
        "x-datadog-trace-id" => 13,
        "x-datadog-parent-id" => 14,
        "x-datadog-sampling-priority" => 15,
        "baggage" => 16,
        "end-user" => 17,
        "user-agent" => 18,
        "cookie" => 19,
        "authorization" => 20,
        "jwt" => 21,
        _ => return None,
    };
    Some(index)
}

/// The allowlisted headers of one inbound request, ready to be sent on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ForwardedHeaders {
    /// Copies the allowlisted headers of `inbound`; a header sent several times keeps every
    /// value, in order.
    pub fn capture(inbound: &HeaderMap) -> Self {
        Self::capture_except(inbound, |_| false)
    }

    /// Copies the allowlisted headers of `inbound` but those `skip` selects (the ones the
    /// OpenTelemetry propagators write afresh).
    pub fn capture_except(inbound: &HeaderMap, skip: impl Fn(&HeaderName) -> bool) -> Self {
        // One pass over what came in (looking each allowlisted name up would hash it, for 22
        // names of which a request carries a few), then the allowlist's order; the sort is
        // stable, so repeated headers keep theirs.
        let mut headers: Vec<(usize, HeaderName, HeaderValue)> = inbound
            .iter()
            .filter_map(|(name, value)| {
                let index = allowlisted(name.as_str()).filter(|_| !skip(name))?;
                Some((index, name.clone(), value.clone()))
            })
            .collect();
        headers.sort_by_key(|(index, _, _)| *index);
        Self { headers: headers.into_iter().map(|(_, name, value)| (name, value)).collect() }
    }

    /// Replaces every value of `name` with `value` (or removes it for `None`).
    pub fn set(&mut self, name: &HeaderName, value: Option<HeaderValue>) {
        let position = self.headers.iter().position(|(n, _)| n == name);
        self.headers.retain(|(n, _)| n != name);
        if let Some(value) = value {
            let at = position.unwrap_or(self.headers.len()).min(self.headers.len());
            self.headers.insert(at, (name.clone(), value));
        }
    }

    /// Every value of `name`, in order.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).filter_map(|(_, v)| v.to_str().ok())
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Every header, in the order it will be sent.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers.iter().map(|(n, v)| (n, v))
    }

    /// Whether nothing will be forwarded.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_allowlisted_headers_are_captured() {
        let inbound = map(&[
            ("x-request-id", "abc"),
            ("x-envoy-attempt-count", "1"),
            ("host", "productpage:9080"),
            ("connection", "keep-alive"),
            ("content-length", "0"),
            ("x-b3-sampled", "1"),
        ]);
        let names: Vec<_> = ForwardedHeaders::capture(&inbound)
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
            .collect();
        assert_eq!(names, ["x-request-id=abc", "x-b3-sampled=1"]);
    }

    #[test]
    fn headers_owned_by_propagators_can_be_left_out() {
        let inbound = map(&[("x-request-id", "abc"), ("traceparent", "00-x"), ("end-user", "jason")]);
        let captured = ForwardedHeaders::capture_except(&inbound, |name| name == "traceparent");
        let names: Vec<_> = captured.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-request-id", "end-user"]);
    }

    #[test]
    fn the_allowlist_index_follows_the_allowlist() {
        for (index, name) in FORWARDED_HEADERS.iter().enumerate() {
            assert_eq!(allowlisted(name.as_str()), Some(index), "{name}");
        }
        assert_eq!(allowlisted("x-envoy-attempt-count"), None);
    }

    #[test]
    fn tracing_headers_are_recognised_by_their_text() {
        for name in [
            "traceparent",
            "tracestate",
            "baggage",
            "b3",
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-parentspanid",
            "x-b3-sampled",
            "x-b3-flags",
            "uber-trace-id",
        ] {
            assert_eq!(known_name(name).map(HeaderName::as_str), Some(name));
        }
        assert_eq!(known_name("x-unknown"), None);
    }

    #[test]
    fn the_trace_context_ranges_name_the_tracers_headers() {
        let names = |range: RangeInclusive<usize>| {
            ALLOWLIST[range].iter().map(HeaderName::as_str).collect::<Vec<_>>()
        };
        assert_eq!(names(TRACE_CONTEXT).first(), Some(&"traceparent"));
        assert_eq!(names(TRACE_CONTEXT).last(), Some(&"x-datadog-sampling-priority"));
        assert_eq!(
            names(WRITABLE_CONTEXT),
            [
                "traceparent",
                "tracestate",
                "b3",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-parentspanid",
                "x-b3-sampled",
                "x-b3-flags"
            ]
        );
        assert!(carries_trace_context(&HeaderName::from_static("sw8")));
        assert!(!carries_trace_context(&HeaderName::from_static("baggage")));
        assert!(!writable_trace_context(&HeaderName::from_static("sw8")));
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("otel".parse::<TracingMode>(), Ok(TracingMode::Otel));
        assert_eq!("propagate".parse::<TracingMode>(), Ok(TracingMode::Propagate));
        assert!("zipkin".parse::<TracingMode>().unwrap_err().contains("propagate, otel or none"));
        assert_eq!("OTEL".parse::<TracingMode>(), Ok(TracingMode::Otel));
        assert_eq!("none".parse::<TracingMode>(), Ok(TracingMode::None));
        assert_eq!(TracingMode::default().to_string(), "otel");
    }

    #[test]
    fn repeated_headers_keep_every_value_in_order() {
        let inbound = map(&[("baggage", "a=1"), ("cookie", "c=3"), ("baggage", "b=2")]);
        let captured = ForwardedHeaders::capture(&inbound);
        let values: Vec<_> = captured.iter().map(|(_, v)| v.to_str().unwrap()).collect();
        assert_eq!(values, ["a=1", "b=2", "c=3"]);
    }

    #[test]
    fn set_replaces_every_value_or_removes_the_header() {
        let mut captured = ForwardedHeaders::capture(&map(&[
            ("x-request-id", "r"),
            ("end-user", "mallory"),
            ("end-user", "eve"),
        ]));
        captured.set(&END_USER, Some(HeaderValue::from_static("jason")));
        assert_eq!(captured.get(&END_USER).unwrap(), "jason");
        assert_eq!(captured.iter().count(), 2);
        captured.set(&END_USER, None);
        assert_eq!(captured.get(&END_USER), None);
        assert!(!captured.is_empty());
    }
}
