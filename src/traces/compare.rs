//! Two traces side by side: what each mode's trace holds, counted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use super::model::Trace;
use super::render::{duration, tree};

/// What one trace holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The trace id.
    pub trace_id: String,
    /// Spans in all.
    pub spans: usize,
    /// Spans made by Envoy (sidecars and gateways).
    pub sidecar_spans: usize,
    /// Spans made by the applications.
    pub application_spans: usize,
    /// Spans per service and kind.
    pub per_service_kind: BTreeMap<String, BTreeMap<String, usize>>,
    /// The longest chain of nested spans.
    pub depth: usize,
    /// First start to last end, nanoseconds.
    pub duration_ns: u64,
    /// Spans whose parent is not in the trace.
    pub orphans: usize,
    /// Spans with an error status.
    pub errors: usize,
}

impl Summary {
    /// Counts `trace`.
    pub fn of(trace: &Trace) -> Self {
        let sidecar_spans = trace.spans.iter().filter(|s| s.is_sidecar()).count();
        let mut per_service_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for span in &trace.spans {
            *per_service_kind
                .entry(span.service.clone())
                .or_default()
                .entry(span.kind.as_str().to_owned())
                .or_default() += 1;
        }
        Self {
            trace_id: trace.id.clone(),
            spans: trace.spans.len(),
            sidecar_spans,
            application_spans: trace.spans.len() - sidecar_spans,
            per_service_kind,
            depth: trace.depth(),
            duration_ns: trace.duration(),
            orphans: trace.orphans().len(),
            errors: trace.spans.iter().filter(|s| s.error).count(),
        }
    }
}

/// The comparison as a table, then both trees.
pub fn table(a: &Trace, b: &Trace) -> String {
    let (sa, sb) = (Summary::of(a), Summary::of(b));
    let mut rows: Vec<(String, String, String)> = vec![
        ("trace".into(), sa.trace_id.clone(), sb.trace_id.clone()),
        ("spans".into(), sa.spans.to_string(), sb.spans.to_string()),
        ("  sidecar (Envoy)".into(), sa.sidecar_spans.to_string(), sb.sidecar_spans.to_string()),
        ("  application".into(), sa.application_spans.to_string(), sb.application_spans.to_string()),
        ("depth".into(), sa.depth.to_string(), sb.depth.to_string()),
        ("duration".into(), duration(sa.duration_ns), duration(sb.duration_ns)),
        ("orphans".into(), sa.orphans.to_string(), sb.orphans.to_string()),
        ("errors".into(), sa.errors.to_string(), sb.errors.to_string()),
        (String::new(), String::new(), String::new()),
        ("spans per service and kind".into(), String::new(), String::new()),
    ];
    let services: BTreeSet<&String> = sa.per_service_kind.keys().chain(sb.per_service_kind.keys()).collect();
    for service in services {
        let kinds: BTreeSet<&String> = [&sa, &sb]
            .iter()
            .filter_map(|s| s.per_service_kind.get(service))
            .flat_map(BTreeMap::keys)
            .collect();
        for kind in kinds {
            let count =
                |s: &Summary| s.per_service_kind.get(service).and_then(|k| k.get(kind)).copied().unwrap_or(0);
            rows.push((format!("  {service} {kind}"), count(&sa).to_string(), count(&sb).to_string()));
        }
    }
    let first = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let second = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0).max(1);
    let mut out = format!("{:first$}  {:<second$}  B\n", "", "A");
    for (label, left, right) in rows {
        let line = format!("{label:first$}  {left:<second$}  {right}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let _ = write!(out, "\nA: {}\nB: {}", tree(a), tree(b));
    out
}

/// The comparison as JSON: `{"a": summary, "b": summary}`.
pub fn json(a: &Trace, b: &Trace) -> serde_json::Value {
    serde_json::json!({"a": Summary::of(a), "b": Summary::of(b)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::model::Kind;
    use crate::traces::model::tests::span;

    fn proxy(mut s: crate::traces::model::Span) -> crate::traces::model::Span {
        s.attributes.insert("component".into(), "proxy".into());
        s
    }

    #[test]
    fn sidecar_and_application_spans_are_told_apart_and_counted() {
        let propagate = Trace::group(vec![
            proxy(span(
                "productpage.bookinfo-propagate",
                Kind::Server,
                "productpage:9080/*",
                "1",
                None,
                0,
                10,
            )),
            proxy(span(
                "productpage.bookinfo-propagate",
                Kind::Client,
                "details:9080/*",
                "2",
                Some("1"),
                1,
                4,
            )),
            proxy(span("details.bookinfo-propagate", Kind::Server, "details:9080/*", "3", Some("2"), 2, 3)),
        ])
        .remove(0);
        let otel = Trace::group(vec![
            proxy(span("productpage.bookinfo-otel", Kind::Server, "productpage:9080/*", "1", None, 0, 10)),
            span("productpage", Kind::Server, "GET /productpage", "a", Some("1"), 1, 9),
            span("productpage", Kind::Client, "GET", "b", Some("a"), 2, 5),
            proxy(span("productpage.bookinfo-otel", Kind::Client, "details:9080/*", "2", Some("b"), 2, 5)),
            proxy(span("details.bookinfo-otel", Kind::Server, "details:9080/*", "3", Some("2"), 3, 4)),
            span("details", Kind::Server, "GET /details/{id}", "c", Some("3"), 3, 4),
            span("ratings", Kind::Server, "GET /ratings/{id}", "d", Some("lost"), 6, 7),
        ])
        .remove(0);
        let (a, b) = (Summary::of(&propagate), Summary::of(&otel));
        assert_eq!((a.spans, a.sidecar_spans, a.application_spans, a.depth, a.orphans), (3, 3, 0, 3, 0));
        assert_eq!((b.spans, b.sidecar_spans, b.application_spans, b.depth, b.orphans), (7, 3, 4, 6, 1));
        assert_eq!(b.per_service_kind["productpage"]["CLIENT"], 1);
        let text = table(&propagate, &otel);
        assert!(text.contains("  sidecar (Envoy)"), "{text}");
        assert!(
            text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["application", "0", "4"]),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["details", "SERVER", "0", "1"]),
            "{text}"
        );
        assert!(text.contains("\nA: trace ") && text.contains("\nB: trace "));
        let value = json(&propagate, &otel);
        assert_eq!(value["b"]["application_spans"], 4);
        assert_eq!(value["a"]["orphans"], 0);
    }
}
