//! OTLP in and out: protobuf (what the services export), JSON (what the trace file holds and
//! what Jaeger's `/api/v3` answers), both read leniently. Ids come hex-encoded (the OTLP
//! specification) or base64-encoded (the plain protobuf JSON mapping some backends use);
//! numbers come as JSON numbers or strings; keys in camelCase or snake_case.

use std::sync::Arc;

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use prost::Message;
use prost::encoding::{self, DecodeContext, WireType};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value as Json;

use super::DecodeError;
use crate::model::{Attribute, Kind, Resource, Span, SpanId, TraceId, Value};

/// The spans of a protobuf export request (`body`); spans with unusable ids are skipped.
///
/// Decoded a span at a time: the request is never held decoded as a whole, which for small
/// spans would take several times the body on top of the spans made of it.
///
/// # Errors
/// A body that is not protobuf of an export request.
pub fn from_proto(body: &[u8]) -> Result<Vec<Span>, DecodeError> {
    // Counted first (no allocation), so that the list takes what the spans need, not the
    // double a growing list may.
    let mut count = 0;
    for_each_message(body, |tag, resource_spans| {
        if tag == 1 {
            for_each_message(resource_spans, |tag, scope| {
                if tag == 2 {
                    for_each_message(scope, |tag, _| {
                        count += usize::from(tag == 2);
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    let mut spans = Vec::with_capacity(count);
    for_each_message(body, |tag, resource_spans| {
        // ExportTraceServiceRequest.resource_spans
        if tag == 1 {
            add_resource_spans(resource_spans, &mut spans)?;
        }
        Ok(())
    })?;
    Ok(spans)
}

/// The spans of one `ResourceSpans`, added to `spans`.
fn add_resource_spans(body: &[u8], spans: &mut Vec<Span>) -> Result<(), DecodeError> {
    // Fields may come in any order: the resource is read before the spans that share it.
    let mut resource = ProtoResource::default();
    let mut scopes = Vec::new();
    for_each_message(body, |tag, field| {
        match tag {
            1 => resource.merge(field)?,
            2 => scopes.push(field),
            _ => {}
        }
        Ok(())
    })?;
    let resource = Arc::new(Resource::from_attributes(proto_attributes(resource.attributes)));
    for scope in scopes {
        for_each_message(scope, |tag, span| {
            // ScopeSpans.spans
            if tag == 2 {
                spans.extend(proto_span(ProtoSpan::decode(span)?, &resource));
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Calls `visit` with the tag and bytes of each length-delimited field of message `body`,
/// skipping the others.
fn for_each_message<'a>(
    mut body: &'a [u8],
    mut visit: impl FnMut(u32, &'a [u8]) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    while !body.is_empty() {
        let (tag, wire_type) = encoding::decode_key(&mut body)?;
        if wire_type != WireType::LengthDelimited {
            encoding::skip_field(wire_type, tag, &mut body, DecodeContext::default())?;
            continue;
        }
        let length = usize::try_from(encoding::decode_varint(&mut body)?).unwrap_or(usize::MAX);
        if length > body.len() {
            return Err(DecodeError::Truncated);
        }
        let (field, rest) = body.split_at(length);
        visit(tag, field)?;
        body = rest;
    }
    Ok(())
}

/// A span of protobuf, with the resource of its batch; `None` with unusable ids.
fn proto_span(span: ProtoSpan, resource: &Arc<Resource>) -> Option<Span> {
    Some(Span {
        trace_id: TraceId::from_bytes(&span.trace_id)?,
        span_id: SpanId::from_bytes(&span.span_id)?,
        parent: SpanId::from_bytes(&span.parent_span_id),
        name: span.name.into_boxed_str(),
        kind: Kind::from_otlp(i64::from(span.kind)),
        start: span.start_time_unix_nano,
        end: span.end_time_unix_nano,
        error: span.status.is_some_and(|s| s.code == 2),
        resource: resource.clone(),
        attributes: proto_attributes(span.attributes).into_boxed_slice(),
    })
}

fn proto_attributes(attributes: Vec<KeyValue>) -> Vec<Attribute> {
    attributes
        .into_iter()
        .map(|kv| Attribute { key: kv.key.into_boxed_str(), value: proto_value(kv.value) })
        .collect()
}

fn proto_value(value: Option<AnyValue>) -> Value {
    match value.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => Value::Str(s.into_boxed_str()),
        Some(any_value::Value::IntValue(i)) => Value::Int(i),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(d),
        Some(any_value::Value::ArrayValue(array)) => {
            let items: Vec<String> =
                array.values.into_iter().map(|v| proto_value(Some(v)).to_string()).collect();
            Value::Str(format!("[{}]", items.join(",")).into_boxed_str())
        }
        Some(other) => Value::Str(format!("{other:?}").into_boxed_str()),
        None => Value::Str(Box::default()),
    }
}

/// The spans of an OTLP JSON document: an export request (`resourceSpans`), Jaeger's
/// `{"result": {...}}` wrapper, or Tempo's `batches`. Spans with unusable ids are skipped.
pub fn from_json(document: &Json) -> Vec<Span> {
    let body = document.get("result").unwrap_or(document);
    let mut spans = Vec::new();
    for resource_spans in list(body, &["resourceSpans", "resource_spans", "batches"]) {
        let attributes = field(resource_spans, &["resource"]).map(json_attributes).unwrap_or_default();
        let resource = Arc::new(Resource::from_attributes(attributes));
        for scope in list(resource_spans, &["scopeSpans", "scope_spans", "instrumentationLibrarySpans"]) {
            spans.extend(list(scope, &["spans"]).filter_map(|span| json_span(span, &resource)));
        }
    }
    spans
}

fn field<'a>(value: &'a Json, names: &[&str]) -> Option<&'a Json> {
    names.iter().find_map(|name| value.get(*name))
}

fn list<'a>(value: &'a Json, names: &[&str]) -> impl Iterator<Item = &'a Json> {
    field(value, names).and_then(Json::as_array).into_iter().flatten()
}

fn json_span(span: &Json, resource: &Arc<Resource>) -> Option<Span> {
    let text = |names: &[&str]| field(span, names).and_then(Json::as_str);
    let number = |names: &[&str]| match field(span, names) {
        Some(Json::Number(n)) => n.as_u64(),
        Some(Json::String(s)) => s.parse().ok(),
        _ => None,
    };
    let kind = match field(span, &["kind"]) {
        Some(Json::Number(n)) => Kind::from_otlp(n.as_i64().unwrap_or_default()),
        Some(Json::String(s)) => match s.parse::<i64>() {
            Ok(n) => Kind::from_otlp(n),
            Err(_) => Kind::from_name(s),
        },
        _ => Kind::Unspecified,
    };
    let error = field(span, &["status"]).and_then(|s| s.get("code")).is_some_and(|code| {
        code.as_i64() == Some(2) || code.as_str().is_some_and(|c| c == "STATUS_CODE_ERROR" || c == "2")
    });
    Some(Span {
        trace_id: text(&["traceId", "trace_id"]).and_then(trace_id)?,
        span_id: text(&["spanId", "span_id"]).and_then(span_id)?,
        parent: text(&["parentSpanId", "parent_span_id"]).and_then(span_id),
        name: text(&["name"]).unwrap_or_default().into(),
        kind,
        start: number(&["startTimeUnixNano", "start_time_unix_nano"]).unwrap_or_default(),
        end: number(&["endTimeUnixNano", "end_time_unix_nano"]).unwrap_or_default(),
        error,
        resource: resource.clone(),
        attributes: json_attributes(span).into_boxed_slice(),
    })
}

/// A trace id from hex or base64.
fn trace_id(text: &str) -> Option<TraceId> {
    TraceId::from_hex(text).or_else(|| TraceId::from_bytes(&base64(text)?))
}

/// A span id from hex or base64.
fn span_id(text: &str) -> Option<SpanId> {
    SpanId::from_hex(text).or_else(|| SpanId::from_bytes(&base64(text)?))
}

fn base64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// `attributes: [{key, value: {stringValue: ...}}]`.
fn json_attributes(holder: &Json) -> Vec<Attribute> {
    list(holder, &["attributes"])
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?;
            Some(Attribute {
                key: key.into(),
                value: kv.get("value").map_or(Value::Str(Box::default()), json_value),
            })
        })
        .collect()
}

fn json_value(value: &Json) -> Value {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return Value::Str(value.to_string().into_boxed_str());
    };
    let as_i64 = |v: &Json| v.as_i64().or_else(|| v.as_str()?.parse().ok());
    match (kind.as_str(), inner) {
        ("stringValue" | "string_value", Json::String(s)) => Value::Str(s.as_str().into()),
        ("intValue" | "int_value", v) if as_i64(v).is_some() => Value::Int(as_i64(v).unwrap_or_default()),
        ("boolValue" | "bool_value", Json::Bool(b)) => Value::Bool(*b),
        ("doubleValue" | "double_value", Json::Number(n)) if n.as_f64().is_some() => {
            Value::Double(n.as_f64().unwrap_or_default())
        }
        ("arrayValue" | "array_value", Json::Object(array)) => {
            let items = array.get("values").and_then(Json::as_array).into_iter().flatten();
            let text: Vec<String> = items.map(|v| json_value(v).to_string()).collect();
            Value::Str(format!("[{}]", text.join(",")).into_boxed_str())
        }
        (_, Json::String(s)) => Value::Str(s.as_str().into()),
        (_, other) => Value::Str(other.to_string().into_boxed_str()),
    }
}

/// Spans as one OTLP JSON export request (hex ids, typed values), one resource per process.
pub fn to_json<'a, S: AsRef<Span> + 'a>(spans: impl IntoIterator<Item = &'a S>) -> Json {
    serde_json::to_value(Export::of(spans)).unwrap_or_default()
}

/// [`to_json`] written straight to bytes, with no JSON tree in between (a trace of 50 000
/// spans would make one of hundreds of megabytes).
pub fn to_json_bytes<'a, S: AsRef<Span> + 'a>(spans: impl IntoIterator<Item = &'a S>) -> Vec<u8> {
    serde_json::to_vec(&Export::of(spans)).unwrap_or_default()
}

/// An OTLP JSON export request over borrowed spans.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Export<'a> {
    resource_spans: Vec<ResourceSpansJson<'a>>,
}

impl<'a> Export<'a> {
    /// `spans`, grouped by the process that made them (in first-seen order).
    pub fn of<S: AsRef<Span> + 'a>(spans: impl IntoIterator<Item = &'a S>) -> Self {
        let mut groups: Vec<ResourceSpansJson<'a>> = Vec::new();
        for span in spans {
            let span = span.as_ref();
            let resource = &span.resource;
            match groups
                .iter_mut()
                .find(|g| Arc::ptr_eq(g.resource.0, resource) || *g.resource.0 == *resource)
            {
                Some(group) => group.scope_spans[0].spans.push(SpanJson(span)),
                None => groups.push(ResourceSpansJson {
                    resource: ResourceJson(resource),
                    scope_spans: [ScopeSpansJson {
                        scope: ScopeJson { name: "bookinfo" },
                        spans: vec![SpanJson(span)],
                    }],
                }),
            }
        }
        Self { resource_spans: groups }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpansJson<'a> {
    resource: ResourceJson<'a>,
    scope_spans: [ScopeSpansJson<'a>; 1],
}

struct ResourceJson<'a>(&'a Arc<Resource>);

impl Serialize for ResourceJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("attributes", &AttributesJson(&self.0.attributes))?;
        map.end()
    }
}

#[derive(Serialize)]
struct ScopeSpansJson<'a> {
    scope: ScopeJson,
    spans: Vec<SpanJson<'a>>,
}

#[derive(Serialize)]
struct ScopeJson {
    name: &'static str,
}

struct SpanJson<'a>(&'a Span);

/// `n` in decimal, in `buffer`.
fn decimal(mut n: u64, buffer: &mut [u8; 20]) -> &str {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buffer[at..]).unwrap_or_default()
}

impl Serialize for SpanJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let span = self.0;
        let mut map = serializer.serialize_map(None)?;
        // Ids and times are written from buffers on the stack: every span of every finished
        // trace is written to the run's file.
        map.serialize_entry("traceId", span.trace_id.hex(&mut [0; 32]))?;
        map.serialize_entry("spanId", span.span_id.hex(&mut [0; 16]))?;
        if let Some(parent) = span.parent {
            map.serialize_entry("parentSpanId", parent.hex(&mut [0; 16]))?;
        }
        map.serialize_entry("name", &*span.name)?;
        map.serialize_entry("kind", &span.kind.to_otlp())?;
        // The protobuf JSON mapping writes 64-bit integers as strings.
        map.serialize_entry("startTimeUnixNano", decimal(span.start, &mut [0; 20]))?;
        map.serialize_entry("endTimeUnixNano", decimal(span.end, &mut [0; 20]))?;
        map.serialize_entry("attributes", &AttributesJson(&span.attributes))?;
        map.serialize_entry("status", &StatusJson { code: if span.error { 2 } else { 0 } })?;
        map.end()
    }
}

#[derive(Serialize)]
struct StatusJson {
    code: u8,
}

/// Attributes as OTLP JSON key-values.
pub struct AttributesJson<'a>(pub &'a [Attribute]);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for attribute in self.0 {
            seq.serialize_element(&KeyValueJson {
                key: &attribute.key,
                value: ValueJson::of(&attribute.value),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct KeyValueJson<'a> {
    key: &'a str,
    value: ValueJson<'a>,
}

#[derive(Serialize)]
enum ValueJson<'a> {
    #[serde(rename = "stringValue")]
    Str(&'a str),
    #[serde(rename = "intValue")]
    Int(String),
    #[serde(rename = "doubleValue")]
    Double(f64),
    #[serde(rename = "boolValue")]
    Bool(bool),
}

impl<'a> ValueJson<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Str(s) => ValueJson::Str(s),
            Value::Int(i) => ValueJson::Int(i.to_string()),
            Value::Double(d) => ValueJson::Double(*d),
            Value::Bool(b) => ValueJson::Bool(*b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use serde_json::json;

    #[test]
    fn times_are_written_in_decimal_and_ids_in_hex() {
        assert_eq!(decimal(0, &mut [0; 20]), "0");
        assert_eq!(decimal(1_795_751_799_123_456_789, &mut [0; 20]), "1795751799123456789");
        assert_eq!(decimal(u64::MAX, &mut [0; 20]), u64::MAX.to_string());
        let trace = crate::model::TraceId::from_hex("00f067aa0ba902b780f198ee56343ba8").unwrap();
        assert_eq!(trace.to_string(), "00f067aa0ba902b780f198ee56343ba8");
        let span = crate::model::SpanId::from_hex("00000000000000a1").unwrap();
        assert_eq!(span.to_string(), "00000000000000a1");
    }

    #[test]
    fn reads_hex_and_base64_ids_strings_and_numbers_and_both_key_styles() {
        let document = json!({"result": {"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "reviews"}},
                                        {"key": "service.version", "value": {"stringValue": "v2"}}]},
            "scopeSpans": [{"spans": [
                {"traceId": "80F198EE56343BA864FE8B2A57D3EFF7", "spanId": "e457b5a2e4d86bd1", "parentSpanId": "",
                 "name": "GET /reviews/{id}", "kind": 2, "startTimeUnixNano": "1000", "endTimeUnixNano": 3000,
                 "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}],
                 "status": {"code": "STATUS_CODE_ERROR"}},
                {"trace_id": "gPGY7lY0O6hk/osqV9Pv9w==", "span_id": "5Fe1ouTYa9E=", "parent_span_id": "AAAAAAAAAAE=",
                 "name": "fetch ratings", "kind": "SPAN_KIND_INTERNAL"},
                {"traceId": "not an id", "spanId": "x"}
            ]}]
        }]}});
        let spans = from_json(&document);
        assert_eq!(spans.len(), 2, "the unreadable span is skipped");
        assert_eq!(spans[0].trace_id.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!((spans[0].parent, spans[0].kind, spans[0].duration()), (None, Kind::Server, 2000));
        assert_eq!(spans[0].attribute("http.response.status_code"), Some(&Value::Int(200)));
        assert!(spans[0].error);
        assert_eq!(spans[1].trace_id, spans[0].trace_id);
        assert_eq!(spans[1].span_id.to_string(), "e457b5a2e4d86bd1");
        assert_eq!((spans[1].parent, spans[1].kind), (Some(SpanId(1)), Kind::Internal));
        assert_eq!((spans[1].service(), spans[1].resource.version()), ("reviews", Some(&Value::from("v2"))));
    }

    #[test]
    fn json_written_reads_back_the_same() {
        let document = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
            "scopeSpans": [{"spans": [{"traceId": "0".repeat(31) + "1", "spanId": "0000000000000002", "parentSpanId": "0000000000000003",
            "name": "n", "kind": 3, "startTimeUnixNano": "5", "endTimeUnixNano": "9",
            "attributes": [{"key": "k", "value": {"stringValue": "v"}}, {"key": "n", "value": {"intValue": 7}},
                           {"key": "b", "value": {"boolValue": true}}, {"key": "d", "value": {"doubleValue": 0.5}}]}]}]}]});
        let spans = from_json(&document);
        assert_eq!(spans.len(), 1);
        assert_eq!(from_json(&to_json(&spans)), spans);
    }

    #[test]
    fn protobuf_requests_read_like_json() {
        use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};
        let attribute = |key: &str, value| KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        };
        let span = |id: u8| ProtoSpan {
            trace_id: vec![id; 16],
            span_id: vec![id; 8],
            parent_span_id: vec![],
            name: "GET /details/{id}".into(),
            kind: 2,
            attributes: vec![attribute("http.response.status_code", any_value::Value::IntValue(200))],
            ..ProtoSpan::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(ProtoResource {
                    attributes: vec![attribute(
                        "service.name",
                        any_value::Value::StringValue("details".into()),
                    )],
                    ..ProtoResource::default()
                }),
                scope_spans: vec![ScopeSpans { spans: vec![span(1), span(0)], ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            }],
        };
        let body = request.encode_to_vec();
        let spans = from_proto(&body).unwrap();
        assert!(matches!(from_proto(&body[..body.len() - 3]), Err(DecodeError::Truncated)));
        assert_eq!(spans.len(), 1, "an all-zero id is no id");
        assert_eq!((spans[0].service(), spans[0].kind), ("details", Kind::Server));
        assert_eq!(spans[0].attribute("http.response.status_code"), Some(&Value::Int(200)));
    }

    #[test]
    fn empty_and_foreign_documents_give_no_spans() {
        for document in [json!({}), json!({"result": {}}), json!([1, 2]), json!({"resourceSpans": "x"})] {
            assert!(from_json(&document).is_empty(), "{document}");
        }
    }
}
