//! The `ExportTraceServiceRequest` protobuf, written straight from the SDK's span data.
//!
//! Each message is written in two passes: its length (`*_len`), which the enclosing message
//! needs first, then its bytes. Field numbers are those of opentelemetry-proto's .proto files.
//! The two passes are held to each other in every build ([`EncodeError`]). The tests decode
//! what is written with `opentelemetry-proto`'s types and compare it with that crate's own
//! conversion of the same spans.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

/// The encoder's two passes disagree: the sizes it counted are not the bytes it wrote. Never
/// expected; a batch for which it happens is dropped rather than sent corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the OTLP encoder counted {counted} bytes and wrote {written}: the batch is dropped")]
pub struct EncodeError {
    /// What the first pass counted.
    pub counted: usize,
    /// What the second pass wrote.
    pub written: usize,
}

/// A `Resource` message of `resource`'s attributes, and its schema URL.
pub(crate) fn resource(resource: &Resource) -> (Vec<u8>, String) {
    let mut encoded = Vec::new();
    let attributes: Vec<(&Key, &Value)> = resource.iter().collect();
    for (key, value) in &attributes {
        key_value(&mut encoded, 1, key.as_str(), value);
    }
    (encoded, resource.schema_url().map(str::to_owned).unwrap_or_default())
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn tag_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

/// A length-delimited field of `len` bytes: its whole size.
fn delimited_len(field: u32, len: usize) -> usize {
    tag_len(field) + varint_len(len as u64) + len
}

fn put_delimited(out: &mut Vec<u8>, field: u32, len: usize) {
    put_tag(out, field, DELIMITED);
    put_varint(out, len as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_delimited(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

/// A string or bytes field, left out when empty (proto3's default).
fn optional_bytes_len(field: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() { 0 } else { delimited_len(field, bytes.len()) }
}

fn put_optional_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(out, field, bytes);
    }
}

/// A varint field, left out when zero.
fn optional_varint_len(field: u32, value: u64) -> usize {
    if value == 0 { 0 } else { tag_len(field) + varint_len(value) }
}

fn put_optional_varint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_tag(out, field, VARINT);
        put_varint(out, value);
    }
}

fn fixed64_len(field: u32, value: u64) -> usize {
    if value == 0 { 0 } else { tag_len(field) + 8 }
}

fn put_fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_tag(out, field, FIXED64);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

// --- common.proto: AnyValue, KeyValue, InstrumentationScope ---

fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Bool(_) | Value::I64(_) | Value::F64(_) | Value::Array(_) => None,
        // A kind of value newer than this code: as text.
        other => Some(other.as_str()),
    }
}

/// The body of an `AnyValue`: exactly one of its fields, even when it holds the default.
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => tag_len(2) + 1,
        Value::I64(n) => tag_len(3) + varint_len(*n as u64),
        Value::F64(_) => tag_len(4) + 8,
        Value::Array(array) => delimited_len(5, array_len(array)),
        other => delimited_len(1, text(other).map_or(0, |s| s.len())),
    }
}

fn put_any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => {
            put_tag(out, 2, VARINT);
            out.push(u8::from(*b));
        }
        Value::I64(n) => {
            put_tag(out, 3, VARINT);
            put_varint(out, *n as u64);
        }
        Value::F64(f) => {
            put_tag(out, 4, FIXED64);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(array) => {
            put_delimited(out, 5, array_len(array));
            put_array(out, array);
        }
        other => put_bytes(out, 1, text(other).unwrap_or_default().as_bytes()),
    }
}

/// The values of an array, each an `AnyValue` (field 1 of `ArrayValue`).
fn array_values(array: &Array) -> Vec<Value> {
    match array {
        Array::Bool(values) => values.iter().map(|v| Value::Bool(*v)).collect(),
        Array::I64(values) => values.iter().map(|v| Value::I64(*v)).collect(),
        Array::F64(values) => values.iter().map(|v| Value::F64(*v)).collect(),
        Array::String(values) => values.iter().map(|v| Value::String(v.clone())).collect(),
        other => vec![Value::String(other.to_string().into())],
    }
}

fn array_len(array: &Array) -> usize {
    array_values(array).iter().map(|v| delimited_len(1, any_value_len(v))).sum()
}

fn put_array(out: &mut Vec<u8>, array: &Array) {
    for value in array_values(array) {
        put_delimited(out, 1, any_value_len(&value));
        put_any_value(out, &value);
    }
}

fn key_value_body_len(key: &str, value: &Value) -> usize {
    optional_bytes_len(1, key.as_bytes()) + delimited_len(2, any_value_len(value))
}

fn key_value_len(field: u32, key: &str, value: &Value) -> usize {
    delimited_len(field, key_value_body_len(key, value))
}

fn key_value(out: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let value_len = any_value_len(value);
    put_delimited(out, field, optional_bytes_len(1, key.as_bytes()) + delimited_len(2, value_len));
    put_optional_bytes(out, 1, key.as_bytes());
    put_delimited(out, 2, value_len);
    put_any_value(out, value);
}

fn attributes_len(field: u32, attributes: &[KeyValue]) -> usize {
    attributes.iter().map(|kv| key_value_len(field, kv.key.as_str(), &kv.value)).sum()
}

fn put_attributes(out: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        key_value(out, field, kv.key.as_str(), &kv.value);
    }
}

fn scope_len(scope: &InstrumentationScope) -> usize {
    optional_bytes_len(1, scope.name().as_bytes())
        + optional_bytes_len(2, scope.version().unwrap_or_default().as_bytes())
        + scope.attributes().map(|kv| key_value_len(3, kv.key.as_str(), &kv.value)).sum::<usize>()
}

fn put_scope(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_optional_bytes(out, 1, scope.name().as_bytes());
    put_optional_bytes(out, 2, scope.version().unwrap_or_default().as_bytes());
    for kv in scope.attributes() {
        key_value(out, 3, kv.key.as_str(), &kv.value);
    }
}

// --- trace.proto: Span, ScopeSpans, ResourceSpans ---

/// `SpanFlags`: the sampled flag, and whether the parent is known to be remote. The other bits
/// of the low byte are W3C's; the B3 propagator keeps its debug and deferred marks there, which
/// are no collector's business.
fn span_flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    const HAS_IS_REMOTE: u32 = 0x100;
    const IS_REMOTE: u32 = 0x200;
    let sampled = trace_flags & opentelemetry::trace::TraceFlags::SAMPLED.to_u8();
    u32::from(sampled) | HAS_IS_REMOTE | if parent_is_remote { IS_REMOTE } else { 0 }
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `Status`: the code, and the message of an error.
fn status(status: &Status) -> (u64, &str) {
    match status {
        Status::Unset => (0, ""),
        Status::Ok => (1, ""),
        Status::Error { description } => (2, description.as_ref()),
    }
}

fn status_len(status: &Status) -> usize {
    let (code, message) = self::status(status);
    optional_bytes_len(2, message.as_bytes()) + optional_varint_len(3, code)
}

fn event_len(event: &opentelemetry::trace::Event) -> usize {
    fixed64_len(1, nanos(event.timestamp))
        + optional_bytes_len(2, event.name.as_bytes())
        + attributes_len(3, &event.attributes)
        + optional_varint_len(4, u64::from(event.dropped_attributes_count))
}

fn link_len(link: &opentelemetry::trace::Link) -> usize {
    let context = &link.span_context;
    delimited_len(1, 16)
        + delimited_len(2, 8)
        + optional_bytes_len(3, context.trace_state().header().as_bytes())
        + attributes_len(4, &link.attributes)
        + optional_varint_len(5, u64::from(link.dropped_attributes_count))
        + tag_len(6)
        + 4
}

fn span_len(span: &SpanData) -> usize {
    let state = span.span_context.trace_state().header();
    let parent = if span.parent_span_id == opentelemetry::trace::SpanId::INVALID { 0 } else { 8 };
    delimited_len(1, 16)
        + delimited_len(2, 8)
        + optional_bytes_len(3, state.as_bytes())
        + if parent > 0 { delimited_len(4, parent) } else { 0 }
        + optional_bytes_len(5, span.name.as_bytes())
        + tag_len(6)
        + varint_len(kind(&span.span_kind))
        + fixed64_len(7, nanos(span.start_time))
        + fixed64_len(8, nanos(span.end_time))
        + attributes_len(9, &span.attributes)
        + optional_varint_len(10, u64::from(span.dropped_attributes_count))
        + span.events.iter().map(|e| delimited_len(11, event_len(e))).sum::<usize>()
        + optional_varint_len(12, u64::from(span.events.dropped_count))
        + span.links.iter().map(|l| delimited_len(13, link_len(l))).sum::<usize>()
        + optional_varint_len(14, u64::from(span.links.dropped_count))
        + delimited_len(15, status_len(&span.status))
        + tag_len(16)
        + 4
}

fn put_span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    put_bytes(out, 1, &context.trace_id().to_bytes());
    put_bytes(out, 2, &context.span_id().to_bytes());
    put_optional_bytes(out, 3, context.trace_state().header().as_bytes());
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        put_bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    put_optional_bytes(out, 5, span.name.as_bytes());
    // The kind is written even when unspecified would do: it never is here.
    put_tag(out, 6, VARINT);
    put_varint(out, kind(&span.span_kind));
    put_fixed64(out, 7, nanos(span.start_time));
    put_fixed64(out, 8, nanos(span.end_time));
    put_attributes(out, 9, &span.attributes);
    put_optional_varint(out, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        put_delimited(out, 11, event_len(event));
        put_fixed64(out, 1, nanos(event.timestamp));
        put_optional_bytes(out, 2, event.name.as_bytes());
        put_attributes(out, 3, &event.attributes);
        put_optional_varint(out, 4, u64::from(event.dropped_attributes_count));
    }
    put_optional_varint(out, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        let context = &link.span_context;
        put_delimited(out, 13, link_len(link));
        put_bytes(out, 1, &context.trace_id().to_bytes());
        put_bytes(out, 2, &context.span_id().to_bytes());
        put_optional_bytes(out, 3, context.trace_state().header().as_bytes());
        put_attributes(out, 4, &link.attributes);
        put_optional_varint(out, 5, u64::from(link.dropped_attributes_count));
        put_tag(out, 6, FIXED32);
        out.extend_from_slice(&span_flags(context.is_remote(), context.trace_flags().to_u8()).to_le_bytes());
    }
    put_optional_varint(out, 14, u64::from(span.links.dropped_count));
    // Always there, as opentelemetry-proto writes it, even when unset.
    let (code, message) = status(&span.status);
    put_delimited(out, 15, status_len(&span.status));
    put_optional_bytes(out, 2, message.as_bytes());
    put_optional_varint(out, 3, code);
    put_tag(out, 16, FIXED32);
    let flags = span_flags(span.parent_span_is_remote, context.trace_flags().to_u8());
    out.extend_from_slice(&flags.to_le_bytes());
}

/// An `ExportTraceServiceRequest` of `spans`, from `resource` (the encoded `Resource` and its
/// schema URL): one `ResourceSpans`, one `ScopeSpans` per scope, in order of first appearance.
///
/// # Errors
/// [`EncodeError`] when a span's bytes or the message's are not the size counted for them
/// (checked in every build: a wrong length prefix would make the whole batch unreadable).
pub(crate) fn encode(resource: &(Vec<u8>, String), spans: &[SpanData]) -> Result<Vec<u8>, EncodeError> {
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    for span in spans {
        if !scopes.contains(&&span.instrumentation_scope) {
            scopes.push(&span.instrumentation_scope);
        }
    }
    let lengths: Vec<usize> = spans.iter().map(span_len).collect();
    let scope_spans: Vec<usize> = scopes
        .iter()
        .map(|scope| {
            let spans_len: usize = spans
                .iter()
                .zip(&lengths)
                .filter(|(span, _)| &span.instrumentation_scope == *scope)
                .map(|(_, len)| delimited_len(2, *len))
                .sum();
            delimited_len(1, scope_len(scope))
                + spans_len
                + optional_bytes_len(3, scope.schema_url().unwrap_or_default().as_bytes())
        })
        .collect();
    let (resource, schema_url) = resource;
    let resource_spans = delimited_len(1, resource.len())
        + scope_spans.iter().map(|len| delimited_len(2, *len)).sum::<usize>()
        + optional_bytes_len(3, schema_url.as_bytes());

    let total = delimited_len(1, resource_spans);
    let mut out = Vec::with_capacity(total);
    put_delimited(&mut out, 1, resource_spans);
    put_bytes(&mut out, 1, resource);
    for (scope, len) in scopes.iter().zip(&scope_spans) {
        put_delimited(&mut out, 2, *len);
        put_delimited(&mut out, 1, scope_len(scope));
        put_scope(&mut out, scope);
        for (span, len) in spans.iter().zip(&lengths) {
            if &span.instrumentation_scope == *scope {
                put_delimited(&mut out, 2, *len);
                let start = out.len();
                put_span(&mut out, span);
                agree(*len, out.len() - start)?;
            }
        }
        put_optional_bytes(&mut out, 3, scope.schema_url().unwrap_or_default().as_bytes());
    }
    put_optional_bytes(&mut out, 3, schema_url.as_bytes());
    agree(total, out.len())?;
    Ok(out)
}

/// Whether `written` bytes are the `counted` ones.
fn agree(counted: usize, written: usize) -> Result<(), EncodeError> {
    if counted == written { Ok(()) } else { Err(EncodeError { counted, written }) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;

    fn context(trace: u128, span: u64, flags: u8, state: &str) -> SpanContext {
        let state = state.parse().unwrap_or(TraceState::NONE);
        SpanContext::new(TraceId::from(trace), SpanId::from(span), TraceFlags::new(flags), true, state)
    }

    fn span(name: &'static str, kind: SpanKind, parent: u64, scope: &InstrumentationScope) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_795_751_799_123_456_789);
        SpanData {
            span_context: context(0x80f1_98ee_5634_3ba8_64fe_8b2a_57d3_eff7, 0xe457_b5a2_e4d8_6bd1, 1, ""),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent == 7,
            span_kind: kind,
            name: name.into(),
            start_time: start,
            end_time: start + Duration::from_micros(1234),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.response.status_code", 200),
                KeyValue::new("negative", -5),
                KeyValue::new("ratio", 0.25),
                KeyValue::new("cached", false),
                KeyValue::new("empty", ""),
                KeyValue::new("url.full", String::from("http://127.0.0.1:9081/details/0")),
            ],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    }

    /// Spans of every shape: kinds, statuses, events, links, arrays, trace state, two scopes.
    pub(crate) fn spans() -> Vec<SpanData> {
        let bookinfo = InstrumentationScope::builder("bookinfo").build();
        let other = InstrumentationScope::builder("other")
            .with_version("1.2")
            .with_schema_url("https://opentelemetry.io/schemas/1.42.0")
            .with_attributes([KeyValue::new("scope.attr", 3)])
            .build();
        let mut server = span("GET /productpage", SpanKind::Server, 7, &bookinfo);
        server.span_context = context(1, 2, 1, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
        server.status = Status::error("");
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "upstream call failed",
            UNIX_EPOCH + Duration::from_secs(1),
            vec![KeyValue::new("level", "WARN"), KeyValue::new("error", "details answered 503")],
            1,
        ));
        events.dropped_count = 2;
        server.events = events;
        let mut client = span("GET", SpanKind::Client, 2, &other);
        client.status = Status::error("timed out");
        client.dropped_attributes_count = 3;
        client
            .attributes
            .push(KeyValue::new("list", Value::Array(Array::String(vec!["a".into(), "b".into()]))));
        client.attributes.push(KeyValue::new("numbers", Value::Array(Array::I64(vec![1, -2]))));
        let mut links = SpanLinks::default();
        links.links.push(Link::new(context(9, 8, 0, "a=b"), vec![KeyValue::new("why", "retry")], 1));
        links.dropped_count = 1;
        client.links = links;
        let mut render = span("render productpage", SpanKind::Internal, 2, &bookinfo);
        render.status = Status::Ok;
        render.span_context = context(1, 3, 5, "");
        vec![server, client, render, span("root", SpanKind::Producer, 0, &bookinfo)]
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "productpage"),
                KeyValue::new("service.version", "v1"),
            ])
            .with_schema_url([], "https://opentelemetry.io/schemas/1.42.0")
            .build()
    }

    #[test]
    fn what_is_written_decodes_to_what_opentelemetry_proto_makes_of_the_same_spans() {
        // One resource for both: its attributes iterate in the order of its own hash map.
        let resource = resource();
        let written = encode(&super::resource(&resource), &spans()).unwrap();
        let decoded = ExportTraceServiceRequest::decode(written.as_slice()).unwrap();
        let mut expected = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans(),
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        // Of the trace flags, only the sampled bit goes out (B3's debug mark stays home).
        let sampled_only = |flags: &mut u32| *flags &= !0xfe;
        for span in
            expected.resource_spans.iter_mut().flat_map(|r| &mut r.scope_spans).flat_map(|s| &mut s.spans)
        {
            sampled_only(&mut span.flags);
            span.links.iter_mut().for_each(|link| sampled_only(&mut link.flags));
        }
        assert_eq!(decoded, expected);
        // Nothing more than prost writes either.
        assert_eq!(written.len(), expected.encoded_len());
    }

    #[test]
    fn a_batch_of_one_scope_is_one_scope_spans() {
        let mut only: Vec<SpanData> = spans();
        only.retain(|s| s.instrumentation_scope.name() == "bookinfo");
        let decoded = ExportTraceServiceRequest::decode(
            encode(&(Vec::new(), String::new()), &only).unwrap().as_slice(),
        )
        .unwrap();
        assert_eq!(decoded.resource_spans.len(), 1);
        assert_eq!(decoded.resource_spans[0].scope_spans.len(), 1);
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), only.len());
    }

    #[test]
    fn sizes_and_bytes_that_disagree_are_an_error_not_a_body() {
        assert_eq!(agree(7, 7), Ok(()));
        let err = agree(7, 9).unwrap_err();
        assert_eq!(err, EncodeError { counted: 7, written: 9 });
        assert!(err.to_string().contains("dropped"));
    }
}
