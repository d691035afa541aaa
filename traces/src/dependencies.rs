//! The service graph: who calls whom, how often, and how often it failed, read off the stored
//! traces as Jaeger's System Architecture view and Istio's old servicegraph draw it.
//!
//! The rule is Jaeger's (its in-memory store and its Spark job count the same way): a span
//! whose parent belongs to another node is one call from the parent's node to its own. So a
//! CLIENT span and the SERVER span under it count once, not twice. Two refinements:
//! - Nodes are workloads ([`workload`]), not raw service names: a sidecar's
//!   `productpage.default` and the application's `productpage` are one node, so the spans a
//!   sidecar and its application nest inside each other are no calls.
//! - A CLIENT span nothing answered in the trace still names where it went, when it can: a
//!   database (`db.system.name`, or the older `db.system`), a peer (`peer.service`), or an
//!   Envoy upstream (`upstream_cluster`). A database makes no spans of its own, so this is the
//!   only way it becomes a node; an unreachable service is the other case.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::model::{Kind, Span, SpanId, Value, workload};
use crate::trace::Trace;

/// One edge of the graph, in the shape of Jaeger's `DependencyLink` plus a count of failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The calling node.
    pub parent: String,
    /// The called node.
    pub child: String,
    /// Calls seen.
    pub call_count: u64,
    /// Calls that failed: the called side's span is an error or answered 5xx (not in Jaeger's
    /// link, which has no such field).
    pub error_count: u64,
}

/// The links of `traces`, those whose first span starts in `since..=until` (nanoseconds since
/// the epoch), sorted by parent then child.
pub fn links<'a>(traces: impl IntoIterator<Item = &'a Trace>, since: u64, until: u64) -> Vec<Link> {
    let mut counts: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for trace in traces {
        if trace.spans.is_empty() || !(since..=until).contains(&trace.start()) || trace.is_health_check() {
            continue;
        }
        for (parent, child, failed) in calls(&trace.spans) {
            let count = counts.entry((parent.to_owned(), child.to_owned())).or_default();
            count.0 += 1;
            count.1 += u64::from(failed);
        }
    }
    counts
        .into_iter()
        .map(|((parent, child), (call_count, error_count))| Link { parent, child, call_count, error_count })
        .collect()
}

/// Every call in one trace's spans: caller node, called node, and whether it failed.
fn calls(spans: &[Arc<Span>]) -> Vec<(&str, &str, bool)> {
    let mut index: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        index.entry(span.span_id).or_insert(i);
    }
    let parent: Vec<Option<usize>> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| s.parent.and_then(|p| index.get(&p).copied()).filter(|&p| p != i))
        .collect();
    // A CLIENT span is answered when a child of it is another node's, or is a CLIENT span of
    // its own node carrying the call on (the application's call, then its sidecar's).
    let mut answered = vec![false; spans.len()];
    let mut calls = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        let Some(p) = parent[i] else { continue };
        let (from, to) = (workload(spans[p].service()), workload(span.service()));
        if from != to {
            answered[p] = true;
            calls.push((from, to, failed(span)));
        } else if span.kind == Kind::Client {
            answered[p] = true;
        }
    }
    for (i, span) in spans.iter().enumerate() {
        if span.kind == Kind::Client && !answered[i] {
            let from = workload(span.service());
            if let Some(to) = peer(span).filter(|to| *to != from) {
                calls.push((from, to, failed(span)));
            }
        }
    }
    calls
}

/// The node an unanswered CLIENT span called, from what it says of its peer.
fn peer(span: &Span) -> Option<&str> {
    let text = |key: &str| span.attribute(key).and_then(Value::as_str).filter(|t| !t.is_empty());
    if let Some(system) = span.database_system() {
        return Some(system);
    }
    if let Some(service) = text("peer.service") {
        return Some(workload(service));
    }
    // `outbound|9080|v1|details.default.svc.cluster.local`: the host, as a workload.
    let cluster = text("upstream_cluster")?;
    let host = cluster.strip_prefix("outbound|")?.rsplit('|').next()?;
    Some(workload(host)).filter(|h| !h.is_empty())
}

/// Whether a span says its call failed: an error status, or a 5xx answer (the current
/// attribute, or Envoy's and the older conventions' `http.status_code`, as a number or text).
fn failed(span: &Span) -> bool {
    let status = |key: &str| match span.attribute(key)? {
        Value::Int(code) => Some(*code),
        Value::Str(text) => text.parse().ok(),
        _ => None,
    };
    span.error
        || status("http.response.status_code")
            .or_else(|| status("http.status_code"))
            .is_some_and(|c| c >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{span, with};
    use crate::model::{Attribute, Kind::*};

    fn trace(spans: Vec<Span>) -> Trace {
        Trace::group(spans).pop().unwrap()
    }

    fn link(parent: &str, child: &str, call_count: u64, error_count: u64) -> Link {
        Link { parent: parent.into(), child: child.into(), call_count, error_count }
    }

    fn all(traces: &[Trace]) -> Vec<Link> {
        links(traces, 0, u64::MAX)
    }

    #[test]
    fn a_client_and_server_pair_across_services_is_one_call() {
        let page = trace(vec![
            span("productpage", Server, "GET /productpage", 1, None, 0, 10),
            span("productpage", Internal, "render", 2, Some(1), 1, 9),
            span("productpage", Client, "GET /details/{id}", 3, Some(2), 2, 5),
            span("details", Server, "GET /details/{id}", 4, Some(3), 3, 4),
        ]);
        assert_eq!(all(&[page]), vec![link("productpage", "details", 1, 0)]);
    }

    #[test]
    fn a_sidecar_pair_is_one_call_and_nesting_inside_a_sidecar_is_none() {
        // otel under the mesh: gateway, then each workload's sidecar around its application.
        let page = trace(vec![
            span("istio-ingressgateway.istio-system", Server, "productpage:9080/*", 1, None, 0, 20),
            with(
                span("istio-ingressgateway.istio-system", Client, "router", 2, Some(1), 0, 20),
                &[("upstream_cluster", "outbound|9080||productpage.default.svc.cluster.local")],
            ),
            span("productpage.default", Server, "productpage:9080/*", 3, Some(2), 1, 19),
            span("productpage", Server, "GET /productpage", 4, Some(3), 1, 18),
            with(
                span("productpage", Client, "GET /details/{id}", 5, Some(4), 2, 9),
                &[("peer.service", "details")],
            ),
            with(
                span("productpage.default", Client, "details:9080/*", 6, Some(5), 2, 9),
                &[("upstream_cluster", "outbound|9080||details.default.svc.cluster.local")],
            ),
            span("details.default", Server, "details:9080/*", 7, Some(6), 3, 8),
            span("details", Server, "GET /details/{id}", 8, Some(7), 3, 7),
        ]);
        assert_eq!(
            all(&[page]),
            vec![link("istio-ingressgateway", "productpage", 1, 0), link("productpage", "details", 1, 0)]
        );
    }

    #[test]
    fn a_database_call_makes_a_database_node() {
        let rating = trace(vec![
            span("reviews", Client, "GET /ratings/{id}", 1, None, 0, 10),
            span("ratings", Server, "GET /ratings/{id}", 2, Some(1), 1, 9),
            with(
                span("ratings", Client, "SELECT test.ratings", 3, Some(2), 2, 8),
                &[("db.system.name", "mysql"), ("server.address", "127.0.0.1"), ("db.namespace", "test")],
            ),
            with(span("ratings", Client, "SELECT", 4, Some(2), 8, 9), &[("db.system", "mariadb")]),
        ]);
        assert_eq!(
            all(&[rating]),
            vec![
                link("ratings", "mariadb", 1, 0),
                link("ratings", "mysql", 1, 0),
                link("reviews", "ratings", 1, 0)
            ]
        );
    }

    #[test]
    fn an_error_or_5xx_child_counts_an_error() {
        let mut failed = span("ratings", Server, "GET /ratings/{id}", 2, Some(1), 1, 2);
        failed.error = true;
        let mut answered_503 = span("ratings", Server, "GET /ratings/{id}", 4, Some(3), 3, 4);
        answered_503.attributes =
            Box::new([Attribute { key: "http.response.status_code".into(), value: Value::Int(503) }]);
        let envoy_500 = with(
            span("ratings.default", Server, "ratings:9080/*", 6, Some(5), 5, 6),
            &[("http.status_code", "500")],
        );
        let fine = with(
            span("ratings", Server, "GET /ratings/{id}", 8, Some(7), 7, 8),
            &[("http.status_code", "404")],
        );
        let spans = vec![
            span("reviews", Client, "GET", 1, None, 0, 9),
            failed,
            span("reviews", Client, "GET", 3, None, 0, 9),
            answered_503,
            span("reviews.default", Client, "ratings:9080/*", 5, None, 0, 9),
            envoy_500,
            span("reviews", Client, "GET", 7, None, 0, 9),
            fine,
        ];
        assert_eq!(all(&[trace(spans)]), vec![link("reviews", "ratings", 4, 3)]);
    }

    #[test]
    fn an_unanswered_call_counts_toward_its_peer() {
        // details is down: productpage's CLIENT span has no child and failed.
        let mut call = with(
            span("productpage", Client, "GET /details/{id}", 2, Some(1), 1, 2),
            &[("peer.service", "details")],
        );
        call.error = true;
        let page = trace(vec![span("productpage", Server, "GET /productpage", 1, None, 0, 3), call]);
        assert_eq!(all(&[page]), vec![link("productpage", "details", 1, 1)]);
    }

    #[test]
    fn only_traces_starting_in_the_window_count() {
        let at = |ms: u64, id: u8| {
            let mut spans = vec![
                span("productpage", Client, "GET", 1, None, ms, ms + 2),
                span("details", Server, "GET", 2, Some(1), ms, ms + 1),
            ];
            for s in &mut spans {
                s.trace_id.0 = [id; 16];
            }
            trace(spans)
        };
        let traces = [at(1_000, 1), at(5_000, 2), at(9_000, 3)];
        let window = links(&traces, 4_000 * 1_000_000, 9_000 * 1_000_000);
        assert_eq!(window, vec![link("productpage", "details", 2, 0)]);
        assert!(links(&traces, 10_000 * 1_000_000, u64::MAX).is_empty());
    }

    #[test]
    fn links_serialize_as_jaegers_with_an_error_count() {
        let json = serde_json::to_value(link("productpage", "details", 3, 1)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"parent": "productpage", "child": "details", "callCount": 3, "errorCount": 1})
        );
    }
}
