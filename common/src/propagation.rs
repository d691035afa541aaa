//! The headers a request carries on to the services it calls.
//!
//! Bookinfo's services forward a fixed allowlist of tracing and application headers from each
//! inbound request onto every outbound call made while serving it. That is what lets the mesh's
//! sidecars join their spans into one trace, and what lets routing rules deeper in the graph
//! match on values set at the edge. The list never grows to "all headers": `x-envoy-*`, `host`,
//! hop-by-hop and content headers belong to one hop only.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

/// `end-user`: the logged-in user, set by productpage from its session and matched by Istio's
/// VirtualService samples.
pub const END_USER: HeaderName = HeaderName::from_static("end-user");

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
    HeaderName::from_static("baggage"),
    END_USER,
    HeaderName::from_static("user-agent"),
    HeaderName::from_static("cookie"),
    HeaderName::from_static("authorization"),
    HeaderName::from_static("jwt"),
];

/// The allowlisted headers of one inbound request, ready to be sent on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ForwardedHeaders {
    /// Copies the allowlisted headers of `inbound`; a header sent several times keeps every
    /// value, in order.
    pub fn capture(inbound: &HeaderMap) -> Self {
        let headers = FORWARDED_HEADERS
            .iter()
            .flat_map(|name| inbound.get_all(name).map(move |value| (name.clone(), value.clone())))
            .collect();
        Self { headers }
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
