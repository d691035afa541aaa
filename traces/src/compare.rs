//! What a trace holds, counted, and two traces side by side: in all, per service and kind, and
//! hop by hop (which spans each tracing approach has on each call of the graph).
//!
//! The terminal (`bookinfo traces compare`) and the web viewer both show these numbers; they
//! are computed here only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};

use serde::Serialize;

use crate::model::{Kind, Span, Value, workload};
use crate::render::{Options, duration, escape, tree};
use crate::trace::{Trace, Tree};

/// What one trace holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The trace id.
    pub trace_id: String,
    /// The top span: `service kind name`.
    pub root: String,
    /// Services with a span in it, sorted.
    pub services: Vec<String>,
    /// Spans in all.
    pub spans: usize,
    /// Spans made by Envoy (sidecars and gateways).
    pub sidecar_spans: usize,
    /// Spans made by the applications.
    pub application_spans: usize,
    /// Calls to a database (CLIENT spans with `db.system.name`): only an application makes
    /// them, as a sidecar proxies a database's protocol as plain TCP.
    pub database_spans: usize,
    /// Spans per service and kind.
    pub per_service_kind: BTreeMap<String, BTreeMap<String, usize>>,
    /// The longest chain of nested spans.
    pub depth: usize,
    /// First start to last end, nanoseconds.
    pub duration_ns: u64,
    /// First start, nanoseconds since the epoch.
    pub start_ns: u64,
    /// Spans whose parent is not in the trace.
    pub orphans: usize,
    /// Spans with an error status.
    pub errors: usize,
    /// Spans that arrived past the store's cap, not kept.
    pub dropped: u64,
    /// Which reviews version served the request, when the trace says.
    pub reviews_version: Option<String>,
}

impl Summary {
    /// Counts `trace`.
    pub fn of(trace: &Trace) -> Self {
        Self::of_tree(&trace.tree())
    }

    /// Counts the trace of `tree`.
    pub fn of_tree(tree: &Tree<'_>) -> Self {
        let trace = tree.trace();
        let sidecar_spans = trace.spans.iter().filter(|s| s.is_sidecar()).count();
        let mut per_service_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for span in &trace.spans {
            *per_service_kind
                .entry(span.service().to_owned())
                .or_default()
                .entry(span.kind.as_str().to_owned())
                .or_default() += 1;
        }
        Self {
            trace_id: trace.id.to_string(),
            root: tree
                .root()
                .map(|s| format!("{} {} {}", s.service(), s.kind.as_str(), s.name))
                .unwrap_or_default(),
            services: trace.services().into_iter().map(str::to_owned).collect(),
            spans: trace.spans.len(),
            sidecar_spans,
            application_spans: trace.spans.len() - sidecar_spans,
            database_spans: trace.spans.iter().filter(|s| database(s).is_some()).count(),
            per_service_kind,
            depth: tree.depth(),
            duration_ns: trace.duration(),
            start_ns: trace.start(),
            orphans: tree.orphans(),
            errors: trace.spans.iter().filter(|s| s.error).count(),
            dropped: trace.dropped,
            reviews_version: reviews_version(trace),
        }
    }
}

/// The version of reviews a trace went through: an application span's `service.version`, a
/// sidecar's `istio.canonical_revision`, a waypoint's `istio.destination_canonical_revision`,
/// or the subset of the cluster a proxy called.
pub fn reviews_version(trace: &Trace) -> Option<String> {
    let text = |v: Option<&Value>| v.map(ToString::to_string).filter(|v| !v.is_empty());
    let mut found = BTreeSet::new();
    for span in &trace.spans {
        if workload(span.service()) == "reviews" {
            found.extend(text(span.resource.version()));
            found.extend(text(span.attribute("istio.canonical_revision")));
        }
        if span.attribute("istio.destination_canonical_service").and_then(Value::as_str) == Some("reviews") {
            found.extend(text(span.attribute("istio.destination_canonical_revision")));
        }
        if let Some(cluster) = span.attribute("upstream_cluster").and_then(Value::as_str) {
            // outbound|9080|v2|reviews.bookinfo-otel.svc.cluster.local, or a waypoint's
            // inbound-vip|9080|http/v2|reviews.default.svc.cluster.local
            let parts: Vec<&str> = cluster.split('|').collect();
            if let [_, _, subset, host] = parts[..]
                && workload(host) == "reviews"
            {
                let subset = subset.strip_prefix("http/").unwrap_or(subset);
                if !subset.is_empty() && subset != "http" {
                    found.insert(subset.to_owned());
                }
            }
        }
    }
    (!found.is_empty()).then(|| found.into_iter().collect::<Vec<_>>().join("+"))
}

/// One call of the graph, or the work inside a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Hop {
    /// The caller's workload; `client` for the request from outside.
    pub from: String,
    /// The callee's workload (the same as `from` for work inside a service).
    pub to: String,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "inside {}", self.from)
        } else {
            write!(f, "{} → {}", self.from, self.to)
        }
    }
}

/// One span as a hop lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopSpan {
    /// Its index in the trace's spans.
    pub span: usize,
    /// The workload that made it.
    pub workload: String,
    /// Made by Envoy.
    pub sidecar: bool,
    /// `SERVER`, `CLIENT`, ...
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

impl fmt::Display for HopSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let maker = if self.sidecar { "envoy" } else { "app" };
        write!(f, "{} {maker} {}", escape(&self.workload), self.kind)
    }
}

/// The spans of a trace on each hop, hops in order of their first span.
pub fn hops(tree: &Tree<'_>) -> Vec<(Hop, Vec<HopSpan>)> {
    let spans = &tree.trace().spans;
    let mut hops: Vec<(Hop, u64, Vec<HopSpan>)> = Vec::new();
    for row in tree.rows() {
        let span = &spans[row.span];
        let hop = hop_of(tree, row.span);
        let entry = HopSpan {
            span: row.span,
            workload: workload(span.service()).to_owned(),
            sidecar: span.is_sidecar(),
            kind: span.kind.as_str(),
            name: span.name.to_string(),
        };
        match hops.iter_mut().find(|(h, _, _)| *h == hop) {
            Some((_, first, list)) => {
                *first = (*first).min(span.start);
                list.push(entry);
            }
            None => hops.push((hop, span.start, vec![entry])),
        }
    }
    hops.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    hops.into_iter()
        .map(|(hop, _, mut list)| {
            list.sort_by_key(|s| spans[s.span].start);
            (hop, list)
        })
        .collect()
}

fn hop_of(tree: &Tree<'_>, index: usize) -> Hop {
    let spans = &tree.trace().spans;
    let span = &spans[index];
    let own = workload(span.service()).to_owned();
    match span.kind {
        Kind::Client | Kind::Producer => {
            let to = callee(span).or_else(|| {
                // The callee's inbound span, where the call has none of its own.
                tree.rows()
                    .iter()
                    .find(|r| tree.parent(r.span) == Some(index))
                    .map(|r| workload(spans[r.span].service()).to_owned())
            });
            Hop { from: own.clone(), to: to.unwrap_or(own) }
        }
        Kind::Server | Kind::Consumer => {
            // The caller: the nearest ancestor made by another workload.
            let mut at = tree.parent(index);
            let mut from = None;
            let mut steps = 0;
            while let Some(parent) = at {
                let theirs = workload(spans[parent].service());
                if theirs != own {
                    from = Some(theirs.to_owned());
                    break;
                }
                steps += 1;
                if steps > spans.len() {
                    break;
                }
                at = tree.parent(parent);
            }
            Hop { from: from.unwrap_or_else(|| "client".to_owned()), to: own }
        }
        Kind::Internal | Kind::Unspecified => Hop { from: own.clone(), to: own },
    }
}

/// The database a CLIENT span calls, by its system (`mysql`).
pub fn database(span: &Span) -> Option<&str> {
    (span.kind == Kind::Client).then(|| span.database_system()).flatten()
}

/// Who a CLIENT span calls: Envoy's `upstream_cluster`, a database, or the application's
/// `peer.service`.
fn callee(span: &Span) -> Option<String> {
    if let Some(system) = database(span) {
        return Some(system.to_owned());
    }
    if let Some(cluster) = span.attribute("upstream_cluster").and_then(Value::as_str) {
        // outbound|9080|v2|reviews.ns.svc.cluster.local, or inbound|9080|| (the app itself).
        let host = cluster.rsplit('|').next().filter(|h| !h.is_empty())?;
        return Some(workload(host).to_owned());
    }
    span.attribute("peer.service").map(|v| workload(&v.to_string()).to_owned())
}

/// The comparison as a table, then the hops, then both trees.
pub fn table(a: &Trace, b: &Trace) -> String {
    let (ta, tb) = (a.tree(), b.tree());
    let (sa, sb) = (Summary::of_tree(&ta), Summary::of_tree(&tb));
    let version = |s: &Summary| s.reviews_version.clone().unwrap_or_else(|| "-".to_owned());
    let mut rows: Vec<(String, String, String)> = vec![
        ("trace".into(), sa.trace_id.clone(), sb.trace_id.clone()),
        ("reviews version".into(), version(&sa), version(&sb)),
        ("spans".into(), sa.spans.to_string(), sb.spans.to_string()),
        ("  sidecar (Envoy)".into(), sa.sidecar_spans.to_string(), sb.sidecar_spans.to_string()),
        ("  application".into(), sa.application_spans.to_string(), sb.application_spans.to_string()),
        ("  of them database calls".into(), sa.database_spans.to_string(), sb.database_spans.to_string()),
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
            rows.push((
                format!("  {} {kind}", escape(service)),
                count(&sa).to_string(),
                count(&sb).to_string(),
            ));
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
    out.push_str("\nhop by hop\n");
    for (hop, left, right) in side_by_side(&ta, &tb) {
        let list = |spans: &[HopSpan]| {
            if spans.is_empty() {
                "-".to_owned()
            } else {
                spans.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            }
        };
        let _ =
            writeln!(out, "  {}\n    A: {}\n    B: {}", escape(&hop.to_string()), list(&left), list(&right));
    }
    if let Some(note) = database_note(&sa, &sb) {
        let _ = writeln!(out, "\n{note}");
    }
    let options = Options::default();
    let _ = write!(out, "\nA: {}\nB: {}", tree(a, options), tree(b, options));
    out
}

/// Why one trace has database spans and the other none, in one line, when that is so.
pub fn database_note(a: &Summary, b: &Summary) -> Option<String> {
    let (with, without) = match (a.database_spans, b.database_spans) {
        (0, 0) => return None,
        (_, 0) => ("A", "B"),
        (0, _) => ("B", "A"),
        _ => return None,
    };
    Some(format!(
        "{with} has the database calls and {without} none: the sidecars proxy the database's protocol as plain TCP, \
         which has no requests to make spans of; only the application's own tracing sees its queries"
    ))
}

/// The hops of both traces, matched: A's order first, then hops only B has.
pub fn side_by_side(a: &Tree<'_>, b: &Tree<'_>) -> Vec<(Hop, Vec<HopSpan>, Vec<HopSpan>)> {
    let (mut ha, mut hb) = (hops(a), hops(b));
    let mut out: Vec<(Hop, Vec<HopSpan>, Vec<HopSpan>)> = Vec::new();
    for (hop, spans) in ha.drain(..) {
        let theirs = hb.iter().position(|(h, _)| *h == hop).map(|i| hb.remove(i).1).unwrap_or_default();
        out.push((hop, spans, theirs));
    }
    out.extend(hb.into_iter().map(|(hop, spans)| (hop, Vec::new(), spans)));
    out
}

/// The comparison as JSON: `{"a": summary, "b": summary, "hops": [...]}`.
pub fn json(a: &Trace, b: &Trace) -> serde_json::Value {
    let (ta, tb) = (a.tree(), b.tree());
    let hops: Vec<serde_json::Value> = side_by_side(&ta, &tb)
        .into_iter()
        .map(|(hop, left, right)| serde_json::json!({"hop": hop.to_string(), "from": hop.from, "to": hop.to, "a": left, "b": right}))
        .collect();
    let (sa, sb) = (Summary::of_tree(&ta), Summary::of_tree(&tb));
    let note = database_note(&sa, &sb);
    serde_json::json!({"a": sa, "b": sb, "hops": hops, "database_note": note})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{span, with};

    fn proxy(s: Span) -> Span {
        with(s, &[("component", "proxy")])
    }

    fn traces() -> (Trace, Trace) {
        let propagate = Trace::group(vec![
            proxy(span("productpage.bookinfo-propagate", Kind::Server, "productpage:9080/*", 1, None, 0, 10)),
            with(
                proxy(span(
                    "productpage.bookinfo-propagate",
                    Kind::Client,
                    "reviews:9080/*",
                    2,
                    Some(1),
                    1,
                    4,
                )),
                &[("upstream_cluster", "outbound|9080|v2|reviews.bookinfo-propagate.svc.cluster.local")],
            ),
            proxy(span("reviews.bookinfo-propagate", Kind::Server, "reviews:9080/*", 3, Some(2), 2, 3)),
        ])
        .remove(0);
        let otel = Trace::group(vec![
            proxy(span("productpage.bookinfo-otel", Kind::Server, "productpage:9080/*", 1, None, 0, 10)),
            span("productpage", Kind::Server, "GET /productpage", 10, Some(1), 1, 9),
            with(
                span("productpage", Kind::Client, "GET", 11, Some(10), 2, 5),
                &[("peer.service", "reviews")],
            ),
            with(
                proxy(span("productpage.bookinfo-otel", Kind::Client, "reviews:9080/*", 2, Some(11), 2, 5)),
                &[("upstream_cluster", "outbound|9080||reviews.bookinfo-otel.svc.cluster.local")],
            ),
            proxy(span("reviews.bookinfo-otel", Kind::Server, "reviews:9080/*", 3, Some(2), 3, 4)),
            span("reviews", Kind::Server, "GET /reviews/{id}", 12, Some(3), 3, 4),
            span("productpage", Kind::Internal, "render", 13, Some(10), 6, 7),
            span("ratings", Kind::Server, "GET /ratings/{id}", 14, Some(0xbad), 8, 9),
        ])
        .remove(0);
        (propagate, otel)
    }

    #[test]
    fn sidecar_and_application_spans_are_told_apart_and_counted() {
        let (propagate, otel) = traces();
        let (a, b) = (Summary::of(&propagate), Summary::of(&otel));
        assert_eq!((a.spans, a.sidecar_spans, a.application_spans, a.depth, a.orphans), (3, 3, 0, 3, 0));
        assert_eq!((b.spans, b.sidecar_spans, b.application_spans, b.depth, b.orphans), (8, 3, 5, 6, 1));
        assert_eq!(b.per_service_kind["productpage"]["CLIENT"], 1);
        assert_eq!(a.root, "productpage.bookinfo-propagate SERVER productpage:9080/*");
        let text = table(&propagate, &otel);
        let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert!(text.lines().any(|l| words(l) == ["application", "0", "5"]), "{text}");
        assert!(text.lines().any(|l| words(l) == ["reviews", "SERVER", "0", "1"]), "{text}");
        assert!(text.contains("\nA: trace ") && text.contains("\nB: trace "));
        let value = json(&propagate, &otel);
        assert_eq!(value["b"]["application_spans"], 5);
        assert_eq!(value["a"]["orphans"], 0);
    }

    #[test]
    fn hops_list_what_each_approach_has_on_each_call() {
        let (propagate, otel) = traces();
        let (ta, tb) = (propagate.tree(), otel.tree());
        let matched = side_by_side(&ta, &tb);
        let names: Vec<String> = matched.iter().map(|(h, _, _)| h.to_string()).collect();
        assert_eq!(
            names,
            ["client → productpage", "productpage → reviews", "inside productpage", "client → ratings"]
        );
        let (_, a, b) = &matched[1];
        let shown = |list: &[HopSpan]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown(a), ["productpage envoy CLIENT", "reviews envoy SERVER"]);
        assert_eq!(
            shown(b),
            [
                "productpage app CLIENT",
                "productpage envoy CLIENT",
                "reviews envoy SERVER",
                "reviews app SERVER"
            ]
        );
        let text = table(&propagate, &otel);
        assert!(
            text.contains("  productpage → reviews\n    A: productpage envoy CLIENT, reviews envoy SERVER\n"),
            "{text}"
        );
        assert!(text.contains("  inside productpage\n    A: -\n    B: productpage app INTERNAL\n"), "{text}");
    }

    #[test]
    fn a_database_call_is_a_hop_only_the_application_sees_and_the_comparison_says_why() {
        let (propagate, mut otel) = traces();
        let mut spans: Vec<Span> = otel.spans.iter().map(|s| Span::clone(s)).collect();
        spans.push(with(
            span("ratings", Kind::Client, "SELECT ratings", 15, Some(14), 8, 9),
            &[("db.system.name", "mysql"), ("db.namespace", "test"), ("server.port", "3306")],
        ));
        otel = Trace::group(spans).remove(0);
        let (a, b) = (Summary::of(&propagate), Summary::of(&otel));
        assert_eq!((a.database_spans, b.database_spans), (0, 1));
        let hops = side_by_side(&propagate.tree(), &otel.tree());
        let (_, left, right) = hops.iter().find(|(h, _, _)| h.to_string() == "ratings → mysql").unwrap();
        assert!(left.is_empty());
        assert_eq!(right.iter().map(ToString::to_string).collect::<Vec<_>>(), ["ratings app CLIENT"]);
        let text = table(&propagate, &otel);
        let note = text.lines().find(|l| l.starts_with("B has the database calls and A none")).expect(&text);
        assert!(note.contains("plain TCP"), "{note}");
        assert!(table(&propagate, &propagate).lines().all(|l| !l.contains("database calls and")));
        assert_eq!(
            json(&otel, &propagate)["database_note"].as_str().map(|n| n.starts_with("A has")),
            Some(true)
        );
        // An INTERNAL span with the attribute is not a call.
        let internal =
            with(span("ratings", Kind::Internal, "x", 1, None, 0, 1), &[("db.system.name", "mysql")]);
        assert_eq!(database(&internal), None);
    }

    #[test]
    fn the_reviews_version_comes_from_any_witness() {
        let (propagate, otel) = traces();
        assert_eq!(reviews_version(&propagate).as_deref(), Some("v2"), "the subset called");
        assert_eq!(reviews_version(&otel), None, "no subset, no version");
        let mut app = span("reviews", Kind::Server, "GET /reviews/{id}", 1, None, 0, 1);
        app.resource = std::sync::Arc::new(crate::model::Resource::from_attributes(vec![
            crate::model::Attribute::new("service.name", "reviews"),
            crate::model::Attribute::new("service.version", "v3"),
        ]));
        assert_eq!(reviews_version(&Trace::group(vec![app]).remove(0)).as_deref(), Some("v3"));
        let sidecar =
            with(span("reviews.ns", Kind::Server, "x", 1, None, 0, 1), &[("istio.canonical_revision", "v1")]);
        assert_eq!(reviews_version(&Trace::group(vec![sidecar]).remove(0)).as_deref(), Some("v1"));
        // A waypoint's span is the waypoint's, and says where it sent the call.
        let waypoint = with(
            span("waypoint.default", Kind::Server, "reviews.default.svc.cluster.local:9080/*", 1, None, 0, 1),
            &[
                ("istio.canonical_revision", "latest"),
                ("istio.destination_canonical_service", "reviews"),
                ("istio.destination_canonical_revision", "v3"),
            ],
        );
        assert_eq!(reviews_version(&Trace::group(vec![waypoint]).remove(0)).as_deref(), Some("v3"));
        let routed = with(
            span("waypoint.default", Kind::Server, "x", 1, None, 0, 1),
            &[("upstream_cluster", "inbound-vip|9080|http/v2|reviews.default.svc.cluster.local")],
        );
        assert_eq!(reviews_version(&Trace::group(vec![routed]).remove(0)).as_deref(), Some("v2"));
        let whole = with(
            span("waypoint.default", Kind::Server, "x", 1, None, 0, 1),
            &[("upstream_cluster", "inbound-vip|9080|http|reviews.default.svc.cluster.local")],
        );
        assert_eq!(reviews_version(&Trace::group(vec![whole]).remove(0)), None, "the whole service");
    }
}
