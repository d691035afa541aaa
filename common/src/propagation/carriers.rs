//! OpenTelemetry carriers over `actix-web`'s header map.
//!
//! `opentelemetry-http` ships carriers for the `http` 1.x types; actix-web 4 and awc 3 are built
//! on `http` 0.2, so these two small adapters take their place. Both run on every hop, so
//! neither parses a header name: the extractor reads the request's tracing headers in one pass
//! (a lookup by name would hash and parse it, for each of a dozen names the propagators ask
//! for, most of them absent), the injector writes names known in advance.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// Every header a propagator of this crate reads or writes.
static TRACING_HEADERS: [HeaderName; 10] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("baggage"),
    HeaderName::from_static("b3"),
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-parentspanid"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("uber-trace-id"),
];

/// The place of `name` in [`TRACING_HEADERS`] (a match on the text: cheaper than comparing
/// names one by one).
fn tracing_header(name: &str) -> Option<usize> {
    let index = match name {
        "traceparent" => 0,
        "tracestate" => 1,
        "baggage" => 2,
        "b3" => 3,
        "x-b3-traceid" => 4,
        "x-b3-spanid" => 5,
        "x-b3-parentspanid" => 6,
        "x-b3-sampled" => 7,
        "x-b3-flags" => 8,
        "uber-trace-id" => 9,
        _ => return None,
    };
    Some(index)
}

/// The tracing headers of an inbound request, for the propagators to read.
pub struct HeaderExtractor<'a> {
    /// `(name, value)` of each tracing header, in the request's order; visible ASCII only.
    found: Vec<(&'a str, &'a str)>,
}

impl<'a> HeaderExtractor<'a> {
    /// Reads the tracing headers of `headers`.
    pub fn new(headers: &'a HeaderMap) -> Self {
        let found = headers
            .iter()
            .filter(|(name, _)| tracing_header(name.as_str()).is_some())
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        Self { found }
    }

    /// Whether the request has no tracing header at all.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

impl Extractor for HeaderExtractor<'_> {
    /// The first value of `key`, if it is visible ASCII.
    fn get(&self, key: &str) -> Option<&str> {
        self.found.iter().find(|(name, _)| *name == key).map(|(_, value)| *value)
    }

    fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for (name, _) in &self.found {
            if !keys.contains(name) {
                keys.push(name);
            }
        }
        keys
    }

    /// Every value of `key`, in order (several `baggage` headers make one list).
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self.found.iter().filter(|(name, _)| *name == key).map(|(_, v)| *v).collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes propagation headers onto an outbound request.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    /// Sets `key`, replacing any value. Empty values (the W3C propagator always writes a
    /// `tracestate`, empty or not) and values that are not valid headers are left out.
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        let name = match tracing_header(key) {
            Some(index) => TRACING_HEADERS[index].clone(),
            None => match HeaderName::try_from(key) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_injector_skips_empty_and_invalid_values() {
        let mut headers = HeaderMap::new();
        let mut injector = HeaderInjector(&mut headers);
        injector.set("tracestate", String::new());
        injector.set("traceparent", "00-abc".into());
        injector.set("x-bad", "line\nbreak".into());
        injector.set("bad name", "x".into());
        injector.set("x-other", "fine".into());
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.get("traceparent").unwrap(), "00-abc");
        assert_eq!(headers.get("x-other").unwrap(), "fine");
    }

    #[test]
    fn tracing_headers_are_recognised_by_their_text() {
        for (index, name) in TRACING_HEADERS.iter().enumerate() {
            assert_eq!(tracing_header(name.as_str()), Some(index), "{name}");
        }
        assert_eq!(tracing_header("x-request-id"), None);
    }

    #[test]
    fn the_extractor_reads_tracing_headers_first_value_first() {
        let mut headers = HeaderMap::new();
        headers.append(HeaderName::from_static("baggage"), HeaderValue::from_static("a=1"));
        headers.append(HeaderName::from_static("baggage"), HeaderValue::from_static("b=2"));
        headers.append(HeaderName::from_static("cookie"), HeaderValue::from_static("c=3"));
        headers.append(HeaderName::from_static("b3"), HeaderValue::from_bytes(b"\xff").unwrap());
        let extractor = HeaderExtractor::new(&headers);
        assert_eq!(extractor.get("baggage"), Some("a=1"));
        assert_eq!(extractor.get_all("baggage"), Some(vec!["a=1", "b=2"]));
        assert_eq!(extractor.keys(), ["baggage"], "only tracing headers, and only visible ASCII");
        assert_eq!(extractor.get("cookie"), None);
        assert_eq!(extractor.get("b3"), None);
    }
}
