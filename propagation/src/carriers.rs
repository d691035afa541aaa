//! OpenTelemetry carriers over a request's [`Headers`].
//!
//! `opentelemetry-http` ships carriers for the `http` 1.x types; actix-web 4 and awc 3 are built
//! on `http` 0.2, so these small adapters take their place, over any map lent as [`Headers`].
//! They run on every hop and every call, so none parses a header name (the tracing headers'
//! names are known in advance, see `known_name`), and the values of a call's tracing headers
//! are written into one buffer and cut into header values from it ([`HeaderValues`]): one
//! allocation for all of them rather than one each.

use std::ops::Range;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

use crate::headers::{Headers, HeadersMut};
use crate::known_name;

/// Reads propagation headers from an inbound request.
pub struct HeaderExtractor<'a, H>(pub &'a H);

impl<H: Headers> Extractor for HeaderExtractor<'_, H> {
    /// The first value of `key`, if it is visible ASCII; only the headers this crate knows are
    /// read (its propagators ask for no other).
    fn get(&self, key: &str) -> Option<&str> {
        self.0.first(known_name(key)?).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.entries().map(|(name, _)| name.as_str()).collect()
    }

    /// Every value of `key`, in order (several `baggage` headers make one list).
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> =
            self.0.values(known_name(key)?).filter_map(|value| value.to_str().ok()).collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes propagation headers onto an outbound request.
pub struct HeaderInjector<'a, H>(pub &'a mut H);

impl<H: HeadersMut> Injector for HeaderInjector<'_, H> {
    /// Sets `key`, replacing any value. Empty values (the W3C propagator always writes a
    /// `tracestate`, empty or not) and values that are not valid headers are left out.
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        let name = match known_name(key) {
            Some(name) => name.clone(),
            None => match HeaderName::try_from(key) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            self.0.set(name, value);
        }
    }
}

/// Most tracing headers one call carries: traceparent, tracestate, b3, three x-b3-* and
/// uber-trace-id.
const MOST_VALUES: usize = 8;

/// The values of a call's tracing headers (the baggage aside), written one after the other
/// into one buffer, then cut into header values that share it.
pub struct HeaderValues {
    text: Vec<u8>,
    /// `(header, where its value is in text)`; the first `len` are set.
    values: [(&'static HeaderName, Range<usize>); MOST_VALUES],
    len: usize,
}

impl Default for HeaderValues {
    fn default() -> Self {
        // Past `len`, a placeholder never read.
        let unset = &crate::KNOWN_HEADERS[0].0;
        Self { text: Vec::with_capacity(192), values: std::array::from_fn(|_| (unset, 0..0)), len: 0 }
    }
}

impl HeaderValues {
    /// Adds the value of `name` (a tracing header), which `write` writes.
    ///
    /// # Panics
    /// In debug builds, for a name that is not a tracing header or one value too many.
    pub fn push(&mut self, name: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.text.len();
        write(&mut self.text);
        let Some(header) = known_name(name) else {
            debug_assert!(false, "{name} is not a tracing header");
            return;
        };
        if let Some(slot) = self.values.get_mut(self.len) {
            *slot = (header, start..self.text.len());
            self.len += 1;
        }
    }

    /// Sets every value on `headers`, replacing what was there; empty values are left out.
    pub fn into_headers(self, headers: &mut impl HeadersMut) {
        let text = Bytes::from(self.text);
        for (header, range) in &self.values[..self.len] {
            if range.is_empty() {
                continue;
            }
            if let Ok(value) = HeaderValue::from_maybe_shared(text.slice(range.clone())) {
                headers.set((*header).clone(), value);
            }
        }
    }

    /// Hands every value to `injector`, for the `TextMapPropagator` interface.
    pub fn into_injector(self, injector: &mut dyn Injector) {
        for (header, range) in &self.values[..self.len] {
            let value = String::from_utf8_lossy(&self.text[range.clone()]).into_owned();
            injector.set(header.as_str(), value);
        }
    }
}

/// Appends `bytes` as lower-case hex.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xf)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

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
    fn the_extractor_reads_the_first_value_or_all() {
        let mut headers = HeaderMap::new();
        headers.append(HeaderName::from_static("baggage"), HeaderValue::from_static("a=1"));
        headers.append(HeaderName::from_static("baggage"), HeaderValue::from_static("b=2"));
        headers.append(HeaderName::from_static("cookie"), HeaderValue::from_static("c=3"));
        headers.append(HeaderName::from_static("b3"), HeaderValue::from_bytes(b"\xff").unwrap());
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get("baggage"), Some("a=1"));
        assert_eq!(extractor.get_all("baggage"), Some(vec!["a=1", "b=2"]));
        assert_eq!(extractor.get("cookie"), Some("c=3"));
        assert_eq!(extractor.get("b3"), None, "only visible ASCII");
    }

    #[test]
    fn values_share_one_buffer_and_empty_ones_are_left_out() {
        let mut values = HeaderValues::default();
        values.push("traceparent", |out| out.extend_from_slice(b"00-abc"));
        values.push("tracestate", |_| {});
        values.push("x-b3-sampled", |out| out.push(b'1'));
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-b3-sampled"), HeaderValue::from_static("0"));
        values.into_headers(&mut headers);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.get("traceparent").unwrap(), "00-abc");
        assert_eq!(headers.get("x-b3-sampled").unwrap(), "1", "replaced");
    }
}
