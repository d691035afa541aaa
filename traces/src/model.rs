//! Spans as the store keeps them: compact (binary ids, boxed strings, one shared resource per
//! process), whatever wire format they arrived in (OTLP protobuf or JSON, Zipkin v2 JSON).

use std::fmt;
use std::sync::Arc;

/// A 128-bit trace id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A 64-bit span id (never zero: zero means "no span" on every wire format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

impl TraceId {
    /// From 32 hex digits, or 16 (a 64-bit Zipkin/B3 id, left-padded with zeros). `None` for
    /// anything else and for the all-zero id.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        match text.len() {
            32 => decode_hex(text, &mut bytes)?,
            16 => decode_hex(text, &mut bytes[8..])?,
            _ => return None,
        }
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    /// From 16 raw bytes (OTLP protobuf); `None` for another length or all zeros.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        (bytes != [0; 16]).then_some(Self(bytes))
    }
}

impl SpanId {
    /// From 16 hex digits; `None` for anything else and for zero.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 8];
        if text.len() != 16 {
            return None;
        }
        decode_hex(text, &mut bytes)?;
        Self::from_u64(u64::from_be_bytes(bytes))
    }

    /// From 8 raw bytes (OTLP protobuf); `None` for another length or zero.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; 8] = bytes.try_into().ok()?;
        Self::from_u64(u64::from_be_bytes(bytes))
    }

    fn from_u64(id: u64) -> Option<Self> {
        (id != 0).then_some(Self(id))
    }
}

fn decode_hex(text: &str, out: &mut [u8]) -> Option<()> {
    let digits = text.as_bytes();
    for (i, byte) in out.iter_mut().enumerate() {
        let high = (digits.get(2 * i)?.to_ascii_lowercase() as char).to_digit(16)?;
        let low = (digits.get(2 * i + 1)?.to_ascii_lowercase() as char).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(())
}

/// Lower-case hex of `bytes` into `out` (twice as long); a table, not the formatter, as every
/// span written to a file or an answer has two or three ids.
fn hex_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    std::str::from_utf8(out).unwrap_or_default()
}

impl TraceId {
    /// The id as 32 hex digits, in `buffer`.
    pub fn hex<'a>(&self, buffer: &'a mut [u8; 32]) -> &'a str {
        hex_into(&self.0, buffer)
    }
}

impl SpanId {
    /// The id as 16 hex digits, in `buffer`.
    pub fn hex<'a>(&self, buffer: &'a mut [u8; 16]) -> &'a str {
        hex_into(&self.0.to_be_bytes(), buffer)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex(&mut [0; 32]))
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hex(&mut [0; 16]))
    }
}

/// A span's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Inbound request.
    Server,
    /// Outbound call.
    Client,
    /// Work inside a service.
    Internal,
    /// Message sent.
    Producer,
    /// Message received.
    Consumer,
    /// Not said.
    Unspecified,
}

impl Kind {
    /// From OTLP's enum number (`1` internal, `2` server, `3` client, ...).
    pub fn from_otlp(kind: i64) -> Self {
        match kind {
            1 => Kind::Internal,
            2 => Kind::Server,
            3 => Kind::Client,
            4 => Kind::Producer,
            5 => Kind::Consumer,
            _ => Kind::Unspecified,
        }
    }

    /// OTLP's enum number.
    pub fn to_otlp(self) -> i64 {
        match self {
            Kind::Unspecified => 0,
            Kind::Internal => 1,
            Kind::Server => 2,
            Kind::Client => 3,
            Kind::Producer => 4,
            Kind::Consumer => 5,
        }
    }

    /// From a name: `SERVER`, `SPAN_KIND_SERVER`, `server` (Zipkin, OTLP JSON, Jaeger).
    pub fn from_name(name: &str) -> Self {
        let name = name.strip_prefix("SPAN_KIND_").unwrap_or(name);
        match name.to_ascii_uppercase().as_str() {
            "SERVER" => Kind::Server,
            "CLIENT" => Kind::Client,
            "INTERNAL" => Kind::Internal,
            "PRODUCER" => Kind::Producer,
            "CONSUMER" => Kind::Consumer,
            _ => Kind::Unspecified,
        }
    }

    /// `SERVER`, `CLIENT`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "SERVER",
            Kind::Client => "CLIENT",
            Kind::Internal => "INTERNAL",
            Kind::Producer => "PRODUCER",
            Kind::Consumer => "CONSUMER",
            Kind::Unspecified => "UNSPECIFIED",
        }
    }
}

/// An attribute value, typed as it arrived (arrays and maps are kept as text).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(Box<str>),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A flag.
    Bool(bool),
}

impl Value {
    /// The text, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(text) => allocation(text.len()),
            _ => 0,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => f.write_str(text),
            Value::Int(n) => write!(f, "{n}"),
            Value::Double(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Str(text.into())
    }
}

/// A key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The key, such as `http.response.status_code`.
    pub key: Box<str>,
    /// The value.
    pub value: Value,
}

impl Attribute {
    /// `key = value`.
    pub fn new(key: &str, value: impl Into<Value>) -> Self {
        Self { key: key.into(), value: value.into() }
    }
}

/// The value of `key` among `attributes`.
pub fn lookup<'a>(attributes: &'a [Attribute], key: &str) -> Option<&'a Value> {
    attributes.iter().find(|a| &*a.key == key).map(|a| &a.value)
}

/// The process that made a span: `service.name` and the rest of its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// `service.name` (Zipkin: `localEndpoint.serviceName`); `unknown` when absent.
    pub service: Box<str>,
    /// Every resource attribute, `service.name` included.
    pub attributes: Box<[Attribute]>,
}

impl Resource {
    /// A resource of `service` alone.
    pub fn named(service: &str) -> Self {
        Self { service: service.into(), attributes: Box::new([Attribute::new("service.name", service)]) }
    }

    /// A resource made of `attributes`; its service is their `service.name`.
    pub fn from_attributes(attributes: Vec<Attribute>) -> Self {
        let service = lookup(&attributes, "service.name")
            .map(ToString::to_string)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        Self { service: service.into(), attributes: attributes.into_boxed_slice() }
    }

    /// Bytes held, roughly: what the store counts against its budget.
    pub fn bytes(&self) -> usize {
        size_of::<Self>() + allocation(self.service.len()) + attributes_bytes(&self.attributes)
    }

    /// `service.version`, if any.
    pub fn version(&self) -> Option<&Value> {
        lookup(&self.attributes, "service.version")
    }
}

fn attributes_bytes(attributes: &[Attribute]) -> usize {
    allocation(size_of_val(attributes))
        + attributes.iter().map(|a| allocation(a.key.len()) + a.value.heap_bytes()).sum::<usize>()
}

/// What an allocation of `len` bytes takes from a typical allocator: a header, 16-byte
/// granules, 32 bytes at least (nothing when empty, since empty boxes do not allocate).
fn allocation(len: usize) -> usize {
    if len == 0 { 0 } else { (len + 8).div_ceil(16).max(2) * 16 }
}

/// One span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Its trace.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for a root.
    pub parent: Option<SpanId>,
    /// Its name.
    pub name: Box<str>,
    /// Its kind.
    pub kind: Kind,
    /// Start, nanoseconds since the epoch.
    pub start: u64,
    /// End, nanoseconds since the epoch.
    pub end: u64,
    /// Its status is an error (OTLP status code 2; Zipkin's `error` tag).
    pub error: bool,
    /// The process that made it, shared by the spans of one batch.
    pub resource: Arc<Resource>,
    /// Its attributes (Zipkin: tags).
    pub attributes: Box<[Attribute]>,
}

impl Span {
    /// Duration in nanoseconds (0 when the clock went backwards).
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// `service.name` of its process.
    pub fn service(&self) -> &str {
        &self.resource.service
    }

    /// The value of attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        lookup(&self.attributes, key)
    }

    /// The database system this span says it talks to (`mysql`): OpenTelemetry's
    /// `db.system.name`, or `db.system` of the conventions before it.
    pub fn database_system(&self) -> Option<&str> {
        let text = |key: &str| self.attribute(key).and_then(Value::as_str).filter(|t| !t.is_empty());
        text("db.system.name").or_else(|| text("db.system"))
    }

    /// Whether Envoy (an Istio sidecar, gateway or waypoint) made this span rather than an application:
    /// Envoy tags its spans `component=proxy` and with its `upstream_cluster` and `node_id`.
    pub fn is_sidecar(&self) -> bool {
        self.attribute("component").and_then(Value::as_str) == Some("proxy")
            || self.attribute("upstream_cluster").is_some()
            || self.attribute("node_id").is_some()
    }

    /// Bytes held by the span itself (its shared resource not included): what the store counts.
    pub fn bytes(&self) -> usize {
        size_of::<Self>() + allocation(self.name.len()) + attributes_bytes(&self.attributes)
    }
}

impl AsRef<Span> for Span {
    fn as_ref(&self) -> &Span {
        self
    }
}

/// The workload a service name stands for: `productpage.bookinfo-otel` (a sidecar's
/// `<app>.<namespace>`) and `productpage` (an application's) are both `productpage`.
pub fn workload(service: &str) -> &str {
    service.split('.').next().unwrap_or(service)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span for tests: `id` and `parent` as small numbers, times in milliseconds.
    pub fn span(
        service: &str,
        kind: Kind,
        name: &str,
        id: u64,
        parent: Option<u64>,
        start_ms: u64,
        end_ms: u64,
    ) -> Span {
        Span {
            trace_id: TraceId([0x7e; 16]),
            span_id: SpanId(id),
            parent: parent.map(SpanId),
            name: name.into(),
            kind,
            start: start_ms * 1_000_000,
            end: end_ms * 1_000_000,
            error: false,
            resource: Arc::new(Resource::named(service)),
            attributes: Box::new([]),
        }
    }

    /// `span` with attributes added.
    pub fn with(mut span: Span, attributes: &[(&str, &str)]) -> Span {
        let mut all = span.attributes.into_vec();
        all.extend(attributes.iter().map(|(k, v)| Attribute::new(k, *v)));
        span.attributes = all.into_boxed_slice();
        span
    }

    #[test]
    fn ids_read_hex_of_both_widths_and_refuse_zero_and_garbage() {
        let id = TraceId::from_hex("80F198EE56343BA864FE8B2A57D3EFF7").unwrap();
        assert_eq!(id.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(
            TraceId::from_hex("64fe8b2a57d3eff7").unwrap().to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
        assert_eq!(SpanId::from_hex("e457b5a2e4d86bd1").unwrap().to_string(), "e457b5a2e4d86bd1");
        for bad in ["", "0000000000000000", "e457b5a2e4d86bdz", "e457b5a2e4d86b", "é457b5a2e4d86bd"] {
            assert_eq!(SpanId::from_hex(bad), None, "{bad}");
        }
        assert_eq!(TraceId::from_hex(&"0".repeat(32)), None);
        assert_eq!(SpanId::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 1]), Some(SpanId(1)));
        assert_eq!(SpanId::from_bytes(&[1; 7]), None);
    }

    #[test]
    fn envoy_spans_are_recognised_by_their_tags() {
        let plain = span(
            "productpage.default",
            Kind::Server,
            "productpage.default.svc.cluster.local:9080/*",
            1,
            None,
            0,
            1,
        );
        assert!(!plain.is_sidecar());
        assert!(with(plain.clone(), &[("component", "proxy")]).is_sidecar());
        assert!(with(plain, &[("upstream_cluster", "outbound|9080||details")]).is_sidecar());
    }

    #[test]
    fn workloads_drop_the_namespace() {
        assert_eq!(workload("productpage.bookinfo-otel"), "productpage");
        assert_eq!(workload("ratings"), "ratings");
    }
}
