//! OTLP in and out: protobuf (what the services export), JSON (what the trace file holds and
//! what Jaeger's `/api/v3` answers), both read leniently. Ids come hex-encoded (the OTLP
//! specification) or base64-encoded (the plain protobuf JSON mapping some backends use);
//! numbers come as JSON numbers or strings; keys in camelCase or snake_case.

use std::collections::BTreeMap;

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Value, json};

use super::model::{Kind, Span};

/// The spans of an OTLP JSON document: an export request (`resourceSpans`), Jaeger's
/// `{"result": {...}}` wrapper, or Tempo's `batches`. Spans with unreadable ids are skipped.
pub fn from_json(document: &Value) -> Vec<Span> {
    let body = document.get("result").unwrap_or(document);
    let mut spans = Vec::new();
    for resource_spans in list(body, &["resourceSpans", "resource_spans", "batches"]) {
        let resource = field(resource_spans, &["resource"]).map_or_else(BTreeMap::new, attributes);
        let service = resource.get("service.name").cloned().unwrap_or_else(|| "unknown".to_owned());
        for scope in list(resource_spans, &["scopeSpans", "scope_spans", "instrumentationLibrarySpans"]) {
            for span in list(scope, &["spans"]) {
                if let Some(span) = json_span(span, &service) {
                    spans.push(span);
                }
            }
        }
    }
    spans
}

fn field<'a>(value: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| value.get(*name))
}

fn list<'a>(value: &'a Value, names: &[&str]) -> impl Iterator<Item = &'a Value> {
    field(value, names).and_then(Value::as_array).into_iter().flatten()
}

fn json_span(span: &Value, service: &str) -> Option<Span> {
    let id = |names: &[&str], len: usize| {
        field(span, names).and_then(Value::as_str).and_then(|text| decode_id(text, len))
    };
    let number = |names: &[&str]| match field(span, names) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let kind = match field(span, &["kind"]) {
        Some(Value::Number(n)) => Kind::from_otlp(n.as_i64().unwrap_or_default()),
        Some(Value::String(s)) => match s.trim_start_matches("SPAN_KIND_") {
            "SERVER" => Kind::Server,
            "CLIENT" => Kind::Client,
            "INTERNAL" => Kind::Internal,
            "PRODUCER" => Kind::Producer,
            "CONSUMER" => Kind::Consumer,
            other => Kind::from_otlp(other.parse().unwrap_or_default()),
        },
        _ => Kind::Unspecified,
    };
    let error = field(span, &["status"]).and_then(|s| s.get("code")).is_some_and(|code| {
        code.as_i64() == Some(2) || code.as_str().is_some_and(|c| c == "STATUS_CODE_ERROR" || c == "2")
    });
    Some(Span {
        trace_id: id(&["traceId", "trace_id"], 16)?,
        span_id: id(&["spanId", "span_id"], 8)?,
        parent: id(&["parentSpanId", "parent_span_id"], 8).filter(|p| p.bytes().any(|b| b != b'0')),
        name: field(span, &["name"]).and_then(Value::as_str).unwrap_or_default().to_owned(),
        kind,
        service: service.to_owned(),
        start: number(&["startTimeUnixNano", "start_time_unix_nano"]).unwrap_or_default(),
        end: number(&["endTimeUnixNano", "end_time_unix_nano"]).unwrap_or_default(),
        attributes: attributes(span),
        error,
    })
}

/// An id of `len` bytes as lower-case hex, from hex or base64.
fn decode_id(text: &str, len: usize) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    if text.len() == len * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(text.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    (bytes.len() == len).then(|| hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `attributes: [{key, value: {stringValue: ...}}]` as text.
fn attributes(holder: &Value) -> BTreeMap<String, String> {
    list(holder, &["attributes"])
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
            Some((key, kv.get("value").map(any_text).unwrap_or_default()))
        })
        .collect()
}

fn any_text(value: &Value) -> String {
    let Some(object) = value.as_object() else { return value.to_string() };
    match object.iter().next() {
        Some((_, Value::String(s))) => s.clone(),
        Some((_, Value::Object(inner))) if inner.contains_key("values") => {
            let values = inner.get("values").and_then(Value::as_array).into_iter().flatten();
            format!("[{}]", values.map(any_text).collect::<Vec<_>>().join(","))
        }
        Some((_, other)) => other.to_string(),
        None => String::new(),
    }
}

/// The spans of a protobuf export request.
pub fn from_proto(request: ExportTraceServiceRequest) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| proto_attributes(&r.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_else(|| "unknown".to_owned());
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                if span.trace_id.len() != 16 || span.span_id.len() != 8 {
                    continue;
                }
                let parent = (span.parent_span_id.len() == 8 && span.parent_span_id.iter().any(|b| *b != 0))
                    .then(|| hex(&span.parent_span_id));
                spans.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent,
                    name: span.name,
                    kind: Kind::from_otlp(i64::from(span.kind)),
                    service: service.clone(),
                    start: span.start_time_unix_nano,
                    end: span.end_time_unix_nano,
                    attributes: proto_attributes(&span.attributes),
                    error: span.status.is_some_and(|s| s.code == 2),
                });
            }
        }
    }
    spans
}

fn proto_attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map(proto_text).unwrap_or_default()))
        .collect()
}

fn proto_text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(array)) => {
            format!("[{}]", array.values.iter().map(proto_text).collect::<Vec<_>>().join(","))
        }
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Spans as one OTLP JSON export request (hex ids), one resource per service.
pub fn to_json(spans: &[Span]) -> Value {
    let mut by_service: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
    for span in spans {
        by_service.entry(span.service.as_str()).or_default().push(span);
    }
    let resource_spans: Vec<Value> = by_service
        .into_iter()
        .map(|(service, spans)| {
            json!({
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [{"scope": {"name": "bookinfo"}, "spans": spans.iter().map(|s| span_json(s)).collect::<Vec<_>>()}],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

fn span_json(span: &Span) -> Value {
    let mut value = json!({
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": span.kind.to_otlp(),
        "startTimeUnixNano": span.start.to_string(),
        "endTimeUnixNano": span.end.to_string(),
        "attributes": span.attributes.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect::<Vec<_>>(),
        "status": {"code": if span.error { 2 } else { 0 }},
    });
    if let Some(parent) = &span.parent {
        value["parentSpanId"] = json!(parent);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hex_and_base64_ids_strings_and_numbers_and_both_key_styles() {
        let document = json!({"result": {"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "reviews"}}]},
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
        assert_eq!(spans[0].trace_id, "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(
            (spans[0].parent.as_deref(), spans[0].kind, spans[0].duration()),
            (None, Kind::Server, 2000)
        );
        assert_eq!(spans[0].attributes["http.response.status_code"], "200");
        assert!(spans[0].error);
        assert_eq!(spans[1].trace_id, "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(spans[1].span_id, "e457b5a2e4d86bd1");
        assert_eq!((spans[1].parent.as_deref(), spans[1].kind), (Some("0000000000000001"), Kind::Internal));
        assert_eq!(spans[1].service, "reviews");
    }

    #[test]
    fn json_written_reads_back_the_same() {
        let document = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
            "scopeSpans": [{"spans": [{"traceId": "0".repeat(31) + "1", "spanId": "0000000000000002", "parentSpanId": "0000000000000003",
            "name": "n", "kind": 3, "startTimeUnixNano": "5", "endTimeUnixNano": "9",
            "attributes": [{"key": "k", "value": {"stringValue": "v"}}]}]}]}]});
        let spans = from_json(&document);
        assert_eq!(from_json(&to_json(&spans)), spans);
    }

    #[test]
    fn empty_and_foreign_documents_give_no_spans() {
        for document in [json!({}), json!({"result": {}}), json!([1, 2]), json!({"resourceSpans": "x"})] {
            assert!(from_json(&document).is_empty(), "{document}");
        }
    }
}
