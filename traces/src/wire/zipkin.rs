//! Zipkin v2 JSON in: what Envoy's Zipkin tracer (Istio's `zipkin` providers) posts to
//! `/api/v2/spans`. `localEndpoint.serviceName` (Envoy's `node.cluster`, `<app>.<namespace>`)
//! becomes the span's service; tags become attributes; a tag named `error` marks a failure.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::model::{Attribute, Kind, Resource, Span, SpanId, TraceId, Value};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    trace_id: String,
    id: String,
    parent_id: Option<String>,
    #[serde(default)]
    name: String,
    kind: Option<String>,
    /// Microseconds since the epoch.
    timestamp: Option<u64>,
    /// Microseconds.
    duration: Option<u64>,
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    tags: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    service_name: Option<String>,
}

/// The spans of a Zipkin v2 JSON body (a list of spans); spans with unusable ids are skipped.
///
/// # Errors
/// A body that is not a JSON list of Zipkin spans.
pub fn from_json(body: &[u8]) -> Result<Vec<Span>, serde_json::Error> {
    let list: Vec<ZipkinSpan> = serde_json::from_slice(body)?;
    let mut resources: HashMap<String, Arc<Resource>> = HashMap::new();
    Ok(list
        .into_iter()
        .filter_map(|span| {
            let trace_id = TraceId::from_hex(&span.trace_id)?;
            let span_id = SpanId::from_hex(&span.id)?;
            let service =
                span.local_endpoint.and_then(|e| e.service_name).unwrap_or_else(|| "unknown".into());
            let resource = resources
                .entry(service)
                .or_insert_with_key(|service| Arc::new(Resource::named(service)))
                .clone();
            let start = span.timestamp.unwrap_or_default().saturating_mul(1000);
            let mut tags: Vec<(String, String)> = span.tags.into_iter().collect();
            tags.sort_unstable();
            let error = tags.iter().any(|(key, _)| key == "error");
            Some(Span {
                trace_id,
                span_id,
                parent: span.parent_id.as_deref().and_then(SpanId::from_hex),
                name: span.name.into_boxed_str(),
                kind: span.kind.as_deref().map_or(Kind::Unspecified, Kind::from_name),
                start,
                end: start.saturating_add(span.duration.unwrap_or_default().saturating_mul(1000)),
                error,
                resource,
                attributes: tags
                    .into_iter()
                    .map(|(key, value)| Attribute {
                        key: key.into_boxed_str(),
                        value: Value::Str(value.into_boxed_str()),
                    })
                    .collect(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_spans_read_with_their_service_tags_and_times() {
        let body = br#"[{"traceId":"80f198ee56343ba864fe8b2a57d3eff7","id":"e457b5a2e4d86bd1","parentId":"05e3ac9a4f6e3b90",
            "name":"details.default.svc.cluster.local:9080/*","kind":"CLIENT","timestamp":1795433848658585,"duration":1200,
            "localEndpoint":{"serviceName":"productpage.default","ipv4":"127.0.0.1"},
            "tags":{"component":"proxy","upstream_cluster":"outbound|9080||details.default.svc.cluster.local","error":"true"}},
            {"traceId":"64fe8b2a57d3eff7","id":"0000000000000002","name":"x"},
            {"traceId":"nope","id":"0000000000000003"}]"#;
        let spans = from_json(body).unwrap();
        assert_eq!(spans.len(), 2, "the span with an unusable trace id is skipped");
        let span = &spans[0];
        assert_eq!(
            (span.service(), span.kind, span.duration()),
            ("productpage.default", Kind::Client, 1_200_000)
        );
        assert_eq!(span.start, 1_795_433_848_658_585_000);
        assert_eq!(span.parent.map(|p| p.to_string()).as_deref(), Some("05e3ac9a4f6e3b90"));
        assert!(span.is_sidecar() && span.error);
        assert_eq!(spans[1].trace_id.to_string(), "000000000000000064fe8b2a57d3eff7");
        assert_eq!((spans[1].service(), spans[1].parent), ("unknown", None));
    }

    #[test]
    fn bodies_that_are_not_zipkin_lists_are_errors() {
        for body in [&b"{}"[..], b"", b"[1]", b"[{\"id\": \"1\"}]"] {
            assert!(from_json(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
