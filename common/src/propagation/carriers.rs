//! OpenTelemetry carriers over `actix-web`'s header map.
//!
//! `opentelemetry-http` ships carriers for the `http` 1.x types; actix-web 4 and awc 3 are built
//! on `http` 0.2, so these two small adapters take their place.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// Reads propagation headers from an inbound request.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    /// The first value of `key`, if it is visible ASCII.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    /// Every value of `key`, in order (several `baggage` headers make one list).
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self.0.get_all(key).filter_map(|value| value.to_str().ok()).collect();
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
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
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
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.get("traceparent").unwrap(), "00-abc");
    }

    #[test]
    fn the_extractor_reads_the_first_value() {
        let mut headers = HeaderMap::new();
        headers.append(HeaderName::from_static("baggage"), HeaderValue::from_static("a=1"));
        headers.append(HeaderName::from_static("baggage"), HeaderValue::from_static("b=2"));
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get("baggage"), Some("a=1"));
        assert_eq!(extractor.keys(), ["baggage"]);
    }
}
