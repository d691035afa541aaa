//! Traces as `bookinfo traces` reads them: spans flattened out of OTLP, each with its service.

use std::collections::{BTreeMap, BTreeSet};

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

/// One span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits.
    pub span_id: String,
    /// The parent's span id; `None` for a root.
    pub parent: Option<String>,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// `service.name` of its resource.
    pub service: String,
    /// Start, nanoseconds since the epoch.
    pub start: u64,
    /// End, nanoseconds since the epoch.
    pub end: u64,
    /// Attributes, as text.
    pub attributes: BTreeMap<String, String>,
    /// Its status is an error.
    pub error: bool,
}

impl Span {
    /// Duration in nanoseconds (0 when the clock went backwards).
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether Envoy (an Istio sidecar or gateway) made this span rather than an application:
    /// Envoy tags its spans `component=proxy` and with its `upstream_cluster` and `node_id`.
    pub fn is_sidecar(&self) -> bool {
        self.attributes.get("component").is_some_and(|c| c == "proxy")
            || self.attributes.contains_key("upstream_cluster")
            || self.attributes.contains_key("node_id")
    }
}

/// The spans of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The trace id.
    pub id: String,
    /// Its spans, in no particular order.
    pub spans: Vec<Span>,
}

impl Trace {
    /// Groups `spans` by trace, in order of each trace's first start; a span seen twice (the
    /// same trace read from two sources) is kept once.
    pub fn group(spans: impl IntoIterator<Item = Span>) -> Vec<Trace> {
        let mut traces: BTreeMap<String, Vec<Span>> = BTreeMap::new();
        for span in spans {
            let list = traces.entry(span.trace_id.clone()).or_default();
            if !list.iter().any(|s| s.span_id == span.span_id && s.service == span.service) {
                list.push(span);
            }
        }
        let mut traces: Vec<Trace> = traces.into_iter().map(|(id, spans)| Trace { id, spans }).collect();
        traces.sort_by_key(Trace::start);
        traces
    }

    /// The earliest start.
    pub fn start(&self) -> u64 {
        self.spans.iter().map(|s| s.start).min().unwrap_or_default()
    }

    /// The latest end.
    pub fn end(&self) -> u64 {
        self.spans.iter().map(|s| s.end).max().unwrap_or_default()
    }

    /// From the first start to the last end, in nanoseconds.
    pub fn duration(&self) -> u64 {
        self.end().saturating_sub(self.start())
    }

    /// Whether a span of `service` is in it.
    pub fn has_service(&self, service: &str) -> bool {
        self.spans.iter().any(|s| s.service == service)
    }

    /// Services, sorted.
    pub fn services(&self) -> BTreeSet<&str> {
        self.spans.iter().map(|s| s.service.as_str()).collect()
    }

    /// Spans whose parent is not in the trace (roots included: they have none).
    pub fn roots(&self) -> Vec<&Span> {
        let ids: BTreeSet<&str> = self.spans.iter().map(|s| s.span_id.as_str()).collect();
        let mut roots: Vec<&Span> =
            self.spans.iter().filter(|s| s.parent.as_deref().is_none_or(|p| !ids.contains(p))).collect();
        roots.sort_by_key(|s| (s.start, s.span_id.clone()));
        roots
    }

    /// Spans that name a parent which is not in the trace.
    pub fn orphans(&self) -> Vec<&Span> {
        self.roots().into_iter().filter(|s| s.parent.is_some()).collect()
    }

    /// The children of `span_id`, by start.
    pub fn children(&self, span_id: &str) -> Vec<&Span> {
        let mut children: Vec<&Span> =
            self.spans.iter().filter(|s| s.parent.as_deref() == Some(span_id)).collect();
        children.sort_by_key(|s| (s.start, s.span_id.clone()));
        children
    }

    /// The longest root-to-leaf chain of spans (a lone root is 1).
    pub fn depth(&self) -> usize {
        fn depth(trace: &Trace, span: &Span, seen: &mut BTreeSet<String>) -> usize {
            // A cycle in hostile data must not recurse forever.
            if !seen.insert(span.span_id.clone()) {
                return 0;
            }
            1 + trace.children(&span.span_id).iter().map(|c| depth(trace, c, seen)).max().unwrap_or(0)
        }
        let mut seen = BTreeSet::new();
        self.roots().iter().map(|root| depth(self, root, &mut seen)).max().unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span for tests: `id`, `parent`, times in milliseconds.
    pub fn span(
        service: &str,
        kind: Kind,
        name: &str,
        id: &str,
        parent: Option<&str>,
        start_ms: u64,
        end_ms: u64,
    ) -> Span {
        Span {
            trace_id: "t".repeat(32),
            span_id: id.to_owned(),
            parent: parent.map(str::to_owned),
            name: name.to_owned(),
            kind,
            service: service.to_owned(),
            start: start_ms * 1_000_000,
            end: end_ms * 1_000_000,
            attributes: BTreeMap::new(),
            error: false,
        }
    }

    #[test]
    fn roots_orphans_depth_and_duplicates() {
        let spans = vec![
            span("a", Kind::Server, "GET /", "1", None, 0, 10),
            span("a", Kind::Client, "GET", "2", Some("1"), 1, 9),
            span("b", Kind::Server, "GET /b", "3", Some("2"), 2, 8),
            span("b", Kind::Server, "GET /b", "3", Some("2"), 2, 8),
            span("c", Kind::Server, "GET /c", "4", Some("missing"), 3, 4),
        ];
        let traces = Trace::group(spans);
        assert_eq!(traces.len(), 1);
        let trace = &traces[0];
        assert_eq!(trace.spans.len(), 4, "the duplicate is dropped");
        assert_eq!(trace.roots().iter().map(|s| s.span_id.as_str()).collect::<Vec<_>>(), ["1", "4"]);
        assert_eq!(trace.orphans().len(), 1);
        assert_eq!(trace.depth(), 3);
        assert_eq!(trace.duration(), 10_000_000);
    }

    #[test]
    fn cycles_in_hostile_data_end() {
        let spans = vec![
            span("a", Kind::Server, "x", "1", Some("2"), 0, 1),
            span("a", Kind::Server, "y", "2", Some("1"), 0, 1),
        ];
        let trace = &Trace::group(spans)[0];
        assert!(trace.roots().is_empty());
        assert_eq!(trace.depth(), 0);
    }

    #[test]
    fn envoy_spans_are_recognised_by_their_tags() {
        let mut envoy = span(
            "productpage.default",
            Kind::Server,
            "productpage.default.svc.cluster.local:9080/*",
            "1",
            None,
            0,
            1,
        );
        assert!(!envoy.is_sidecar());
        envoy.attributes.insert("component".into(), "proxy".into());
        assert!(envoy.is_sidecar());
        let mut other = span("x", Kind::Client, "GET", "2", None, 0, 1);
        other.attributes.insert("upstream_cluster".into(), "outbound|9080||details".into());
        assert!(other.is_sidecar());
    }
}
