//! The headers a request carries on to the services it calls, in every tracing mode, and the
//! trace context and baggage in them.
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
//! - [`TracingMode::None`]: no trace context at all.
//!
//! Headers in, context out: no HTTP server or client here, and no SDK. An HTTP stack hands its
//! header maps in through [`Headers`] and [`HeadersMut`]; the names and values are the `http`
//! crate's, which actix-web and awc use.

mod b3;
pub mod baggage;
mod carriers;
pub mod edge;
mod headers;
mod jaeger;
mod propagators;
mod w3c;

pub use http::header::{HeaderName, HeaderValue};

pub use self::carriers::{HeaderExtractor, HeaderInjector};
pub use self::headers::{Headers, HeadersMut};
pub use self::propagators::{PropagatorKind, Propagators};

/// `BOOKINFO_TRACING`: the tracing mode of a service, `propagate`, `otel` (the default) or
/// `none`.
pub const BOOKINFO_TRACING: &str = "BOOKINFO_TRACING";

/// How a service takes part in traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

bookinfo_config::named!(TracingMode, "tracing mode", {
    Propagate => "propagate",
    Otel => "otel",
    None => "none",
});

/// What a known header is, which decides what each tracing mode does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Envoy's request id, shared by every hop of one request: always forwarded.
    RequestId,
    /// A trace context `otel` mode writes itself (W3C trace context, B3): forwarded by
    /// `propagate`; in `otel` never forwarded as received, even when its propagators do not
    /// write it (each call is a new span, so a received context would be stale, and the next
    /// hop could take its parent from it); dropped by `none`.
    OwnContext,
    /// Another tracer's context (OpenTracing, Cloud Trace, gRPC, SkyWalking, Datadog):
    /// forwarded, except by `none`.
    ForeignContext,
    /// W3C baggage: forwarded in every mode (`otel` writes it afresh when it propagates it).
    Baggage,
    /// What the application itself reads (the user, the agent, cookies, credentials): always
    /// forwarded.
    Application,
    /// Jaeger's `uber-trace-id`: `otel` writes it when asked; not on Istio's list, so never
    /// forwarded as received.
    Jaeger,
}

impl Class {
    /// Whether it is on the allowlist of forwarded headers.
    pub fn forwarded(self) -> bool {
        self != Class::Jaeger
    }

    /// Whether it carries a trace context, of any tracer.
    pub fn is_trace_context(self) -> bool {
        matches!(self, Class::OwnContext | Class::ForeignContext | Class::Jaeger)
    }
}

/// The one table of known headers: from it come the allowlist ([`FORWARDED_HEADERS`], in this
/// order), each header's [`Class`], and the names the carriers look up without parsing.
macro_rules! known_headers {
    ($($name:literal => $class:ident,)+) => {
        /// Every header this crate knows, with its class, in the order forwarded headers go.
        pub static KNOWN_HEADERS: [(HeaderName, Class); [$($name),+].len()] =
            [$((HeaderName::from_static($name), Class::$class)),+];

        /// The place of `name` in [`KNOWN_HEADERS`], if it is there (no hashing: a request
        /// carries a few of these names).
        fn position(name: &str) -> Option<usize> {
            [$($name),+].iter().position(|known| *known == name)
        }
    };
}

// The union of what the original services forward (Istio's "Distributed Tracing" overview and
// FAQ over the releases), plus W3C `baggage`; then Jaeger's.
known_headers! {
    "x-request-id" => RequestId,
    "traceparent" => OwnContext,
    "tracestate" => OwnContext,
    "b3" => OwnContext,
    "x-b3-traceid" => OwnContext,
    "x-b3-spanid" => OwnContext,
    "x-b3-parentspanid" => OwnContext,
    "x-b3-sampled" => OwnContext,
    "x-b3-flags" => OwnContext,
    "x-ot-span-context" => ForeignContext,
    "x-cloud-trace-context" => ForeignContext,
    "grpc-trace-bin" => ForeignContext,
    "sw8" => ForeignContext,
    "x-datadog-trace-id" => ForeignContext,
    "x-datadog-parent-id" => ForeignContext,
    "x-datadog-sampling-priority" => ForeignContext,
    "baggage" => Baggage,
    "end-user" => Application,
    "user-agent" => Application,
    "cookie" => Application,
    "authorization" => Application,
    "jwt" => Application,
    "uber-trace-id" => Jaeger,
}

/// `x-request-id`: Envoy's request id, shared by every hop of one request.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `baggage`: W3C baggage, which also carries the signed-in user to routing rules.
pub const BAGGAGE: HeaderName = HeaderName::from_static("baggage");
/// `end-user`: the logged-in user, set by productpage from its session and matched by Istio's
/// VirtualService samples.
pub const END_USER: HeaderName = HeaderName::from_static("end-user");

/// The headers copied from an inbound request onto its outbound calls, in order: the
/// forwarded rows of [`KNOWN_HEADERS`].
pub fn forwarded_headers() -> impl Iterator<Item = &'static HeaderName> {
    KNOWN_HEADERS.iter().filter(|(_, class)| class.forwarded()).map(|(name, _)| name)
}

/// The class of `name`, if this crate knows it.
pub fn class_of(name: &str) -> Option<Class> {
    position(name).map(|at| KNOWN_HEADERS[at].1)
}

/// The name of a header this crate knows, without parsing it.
fn known_name(name: &str) -> Option<&'static HeaderName> {
    position(name).map(|at| &KNOWN_HEADERS[at].0)
}

/// Whether `name` carries a trace context (of any tracer the table knows).
pub fn carries_trace_context(name: &HeaderName) -> bool {
    class_of(name.as_str()).is_some_and(Class::is_trace_context)
}

/// Whether `name` carries a trace context that `otel` mode's propagators can write.
pub fn writable_trace_context(name: &HeaderName) -> bool {
    class_of(name.as_str()).is_some_and(|class| matches!(class, Class::OwnContext | Class::Jaeger))
}

/// The allowlisted headers of one inbound request, ready to be sent on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ForwardedHeaders {
    /// Copies the allowlisted headers of `inbound`; a header sent several times keeps every
    /// value, in order.
    pub fn capture(inbound: &impl Headers) -> Self {
        Self::capture_except(inbound, |_| false)
    }

    /// Copies the allowlisted headers of `inbound` but those `skip` selects (the ones the
    /// OpenTelemetry propagators write afresh).
    pub fn capture_except(inbound: &impl Headers, skip: impl Fn(&HeaderName) -> bool) -> Self {
        // One pass over what came in (looking each allowlisted name up would hash it, for 22
        // names of which a request carries a few), then the table's order; the sort is stable,
        // so repeated headers keep theirs.
        let mut headers: Vec<(usize, HeaderName, HeaderValue)> = inbound
            .entries()
            .filter_map(|(name, value)| {
                let at =
                    position(name.as_str()).filter(|at| KNOWN_HEADERS[*at].1.forwarded() && !skip(name))?;
                Some((at, name.clone(), value.clone()))
            })
            .collect();
        headers.sort_by_key(|(at, _, _)| *at);
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
    use http::HeaderMap;

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
    fn the_allowlist_is_istios_list_and_baggage_in_order() {
        let names: Vec<&str> = forwarded_headers().map(HeaderName::as_str).collect();
        assert_eq!(names.len(), 22);
        assert_eq!(names.first(), Some(&"x-request-id"));
        assert_eq!(names.last(), Some(&"jwt"));
        assert!(!names.contains(&"uber-trace-id"), "Jaeger's is written, never forwarded as received");
        for (at, (name, _)) in KNOWN_HEADERS.iter().enumerate() {
            assert_eq!(position(name.as_str()), Some(at), "{name}");
        }
        assert_eq!(position("x-envoy-attempt-count"), None);
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
    fn the_classes_say_what_each_mode_does() {
        let own: Vec<&str> =
            KNOWN_HEADERS.iter().filter(|(_, c)| *c == Class::OwnContext).map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            own,
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
        assert!(carries_trace_context(&HeaderName::from_static("x-datadog-sampling-priority")));
        assert!(!carries_trace_context(&BAGGAGE));
        assert!(!carries_trace_context(&X_REQUEST_ID));
        assert!(!writable_trace_context(&HeaderName::from_static("sw8")));
        assert!(writable_trace_context(&HeaderName::from_static("x-b3-flags")));
    }

    #[test]
    fn modes_parse_and_print() {
        assert_eq!("otel".parse::<TracingMode>(), Ok(TracingMode::Otel));
        assert_eq!("propagate".parse::<TracingMode>(), Ok(TracingMode::Propagate));
        assert!("zipkin".parse::<TracingMode>().unwrap_err().to_string().contains("propagate, otel, none"));
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
