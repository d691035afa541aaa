//! Spans grouped into traces, and a trace's tree: who is whose child, in start order.
//!
//! Everything here is linear (hash maps and one sort per child list) and iterative, so hostile
//! shapes cost what their size costs: a 50 000-span trace, a 20 000-deep chain, duplicates,
//! spans whose parents form a cycle (shown once each, marked, never lost).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::model::{Span, SpanId, TraceId};

/// The spans of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The trace id.
    pub id: TraceId,
    /// Its spans, in arrival order; shared, so that handing a trace out copies no span.
    pub spans: Vec<Arc<Span>>,
    /// Spans that arrived past the store's per-trace cap and were not kept.
    pub dropped: u64,
}

/// The spans already in a trace, to keep a span that arrives twice (the same trace read from
/// two sources, a retried export) once.
#[derive(Debug, Default)]
pub struct Dedup(HashSet<(SpanId, u64)>);

/// Bytes a [`Dedup`] spends per span, roughly.
pub const INDEX_BYTES: usize = 32;

impl Dedup {
    /// Whether `span` is new (no span with its id and service was admitted before); it counts
    /// as seen from now on.
    pub fn admit(&mut self, span: &Span) -> bool {
        // Two services may reuse a span id; their names are told apart by a hash.
        let mut hasher = DefaultHasher::new();
        span.service().hash(&mut hasher);
        self.0.insert((span.span_id, hasher.finish()))
    }
}

impl Trace {
    /// Groups `spans` by trace, in order of each trace's first start; a span seen twice (the
    /// same trace read from two sources) is kept once.
    pub fn group(spans: impl IntoIterator<Item = Span>) -> Vec<Trace> {
        let mut sets: HashMap<TraceId, (Trace, Dedup)> = HashMap::new();
        for span in spans {
            let (trace, seen) =
                sets.entry(span.trace_id).or_insert_with(|| (Trace::empty(span.trace_id), Dedup::default()));
            if seen.admit(&span) {
                trace.spans.push(Arc::new(span));
            }
        }
        let mut traces: Vec<Trace> = sets.into_values().map(|(trace, _)| trace).collect();
        traces.sort_by_key(|t| (t.start(), t.id));
        traces
    }

    /// A trace `id` with no spans yet.
    pub fn empty(id: TraceId) -> Self {
        Self { id, spans: Vec::new(), dropped: 0 }
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
        self.spans.iter().any(|s| s.service() == service)
    }

    /// Services, sorted.
    pub fn services(&self) -> BTreeSet<&str> {
        self.spans.iter().map(|s| s.service()).collect()
    }

    /// Whether it is only a `/health` poll (`bookinfo up` polls every service at start): not
    /// worth showing.
    pub fn is_health_check(&self) -> bool {
        only_health_checks(&self.spans)
    }

    /// The tree of its spans.
    pub fn tree(&self) -> Tree<'_> {
        Tree::new(self)
    }
}

/// Whether every span of `spans` serves a `/health` poll (so does none at all).
pub fn only_health_checks(spans: &[Arc<Span>]) -> bool {
    spans.iter().all(|s| s.attribute("http.route").and_then(|r| r.as_str()) == Some("/health"))
}

/// Why a span is drawn as a root although it names a parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detached {
    /// Its parent is not in the trace (lost, not sampled, or not yet arrived).
    ParentMissing(SpanId),
    /// Its parents lead back to itself (hostile or broken data).
    Cycle,
}

/// One line of a drawn tree: a span and how deep it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Index of the span in [`Trace::spans`].
    pub span: usize,
    /// 0 for a root.
    pub depth: usize,
    /// Set on a root that is one only because its parent is missing or in a cycle.
    pub detached: Option<Detached>,
}

/// A depth-first walk down the children lists, with an explicit stack: a 20 000-deep chain
/// must not overflow the thread's.
struct Walk<'c> {
    children: &'c Children,
    visited: Vec<bool>,
    rows: Vec<Row>,
    depth: usize,
}

impl Walk<'_> {
    fn from(&mut self, start: usize, detached: Option<Detached>) {
        let mut stack = vec![(start, 0usize, detached)];
        while let Some((span, level, detached)) = stack.pop() {
            if std::mem::replace(&mut self.visited[span], true) {
                continue;
            }
            self.depth = self.depth.max(level + 1);
            self.rows.push(Row { span, depth: level, detached });
            stack.extend(self.children.of(span).iter().rev().map(|&c| (c as usize, level + 1, None)));
        }
    }
}

/// Every span's children, in one flat list: those of span `i` are
/// `order[offsets[i]..offsets[i + 1]]` (two allocations, whatever the trace).
struct Children {
    offsets: Vec<u32>,
    order: Vec<u32>,
}

impl Children {
    fn new(parent: &[Option<u32>], by_start: impl Fn(&u32, &u32) -> std::cmp::Ordering) -> Self {
        let mut offsets = vec![0u32; parent.len() + 1];
        for p in parent.iter().flatten() {
            offsets[*p as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut next = offsets.clone();
        let mut order = vec![0u32; offsets[parent.len()] as usize];
        for (child, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                order[next[*p as usize] as usize] = child as u32;
                next[*p as usize] += 1;
            }
        }
        for i in 0..parent.len() {
            order[offsets[i] as usize..offsets[i + 1] as usize].sort_by(&by_start);
        }
        Self { offsets, order }
    }

    fn of(&self, span: usize) -> &[u32] {
        &self.order[self.offsets[span] as usize..self.offsets[span + 1] as usize]
    }
}

/// A trace's spans arranged as a tree: every span once, children after their parent in start
/// order, roots (and detached spans) in start order.
#[derive(Debug)]
pub struct Tree<'a> {
    trace: &'a Trace,
    parent: Vec<Option<u32>>,
    rows: Vec<Row>,
    depth: usize,
    orphans: usize,
}

impl<'a> Tree<'a> {
    fn new(trace: &'a Trace) -> Self {
        let spans = &trace.spans;
        let mut index: HashMap<SpanId, u32> = HashMap::with_capacity(spans.len());
        for (i, span) in spans.iter().enumerate() {
            index.entry(span.span_id).or_insert(i as u32);
        }
        let parent: Vec<Option<u32>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| s.parent.and_then(|p| index.get(&p).copied()).filter(|&p| p as usize != i))
            .collect();
        drop(index);
        let key = |i: usize| (spans[i].start, spans[i].span_id);
        let children = Children::new(&parent, |a, b| key(*a as usize).cmp(&key(*b as usize)));
        let mut roots: Vec<usize> = (0..spans.len()).filter(|&i| parent[i].is_none()).collect();
        roots.sort_by_key(|&i| key(i));
        let self_parent = |i: usize| spans[i].parent == Some(spans[i].span_id);
        let orphans = roots.iter().filter(|&&i| spans[i].parent.is_some() && !self_parent(i)).count();

        let mut walk = Walk {
            children: &children,
            visited: vec![false; spans.len()],
            rows: Vec::with_capacity(spans.len()),
            depth: 0,
        };
        for &root in &roots {
            let detached = match spans[root].parent {
                Some(_) if self_parent(root) => Some(Detached::Cycle),
                parent => parent.map(Detached::ParentMissing),
            };
            walk.from(root, detached);
        }
        // What no root reaches hangs in a cycle: shown from its earliest span, marked.
        if walk.rows.len() < spans.len() {
            let mut rest: Vec<usize> = (0..spans.len()).filter(|&i| !walk.visited[i]).collect();
            rest.sort_by_key(|&i| key(i));
            for span in rest {
                if !walk.visited[span] {
                    walk.from(span, Some(Detached::Cycle));
                }
            }
        }
        let Walk { rows, depth, .. } = walk;
        Self { trace, parent, rows, depth, orphans }
    }

    /// The trace.
    pub fn trace(&self) -> &'a Trace {
        self.trace
    }

    /// The index of span `span`'s parent, when it is in the trace.
    pub fn parent(&self, span: usize) -> Option<usize> {
        self.parent.get(span).copied().flatten().map(|p| p as usize)
    }

    /// Every span, in drawing order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The longest root-to-leaf chain of spans (a lone root is 1).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Spans that name a parent which is not in the trace.
    pub fn orphans(&self) -> usize {
        self.orphans
    }

    /// Roots in the usual sense: spans with no parent or a missing one.
    pub fn roots(&self) -> impl Iterator<Item = &'a Span> + '_ {
        self.rows
            .iter()
            .filter(|r| r.depth == 0 && r.detached != Some(Detached::Cycle))
            .map(|r| &*self.trace.spans[r.span])
    }

    /// The span on top: the first root (the earliest), or the first span drawn.
    pub fn root(&self) -> Option<&'a Span> {
        self.rows.first().map(|r| &*self.trace.spans[r.span])
    }

    /// At most `max_rows` rows, none deeper than `max_depth`; also how many are left out.
    pub fn visible(&self, max_rows: usize, max_depth: usize) -> (Vec<Row>, usize) {
        let shown: Vec<Row> =
            self.rows.iter().filter(|r| r.depth < max_depth).take(max_rows).copied().collect();
        let hidden = self.rows.len() - shown.len();
        (shown, hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::model::tests::span;

    fn ids(tree: &Tree<'_>) -> Vec<(u64, usize)> {
        tree.rows().iter().map(|r| (tree.trace().spans[r.span].span_id.0, r.depth)).collect()
    }

    #[test]
    fn roots_orphans_depth_and_duplicates() {
        let spans = vec![
            span("a", Kind::Server, "GET /", 1, None, 0, 10),
            span("a", Kind::Client, "GET", 2, Some(1), 1, 9),
            span("b", Kind::Server, "GET /b", 3, Some(2), 2, 8),
            span("b", Kind::Server, "GET /b", 3, Some(2), 2, 8),
            span("c", Kind::Server, "GET /c", 4, Some(99), 3, 4),
        ];
        let traces = Trace::group(spans);
        assert_eq!(traces.len(), 1);
        let trace = &traces[0];
        assert_eq!(trace.spans.len(), 4, "the duplicate is dropped");
        let tree = trace.tree();
        assert_eq!(ids(&tree), [(1, 0), (2, 1), (3, 2), (4, 0)]);
        assert_eq!(tree.rows()[3].detached, Some(Detached::ParentMissing(SpanId(99))));
        assert_eq!((tree.orphans(), tree.depth()), (1, 3));
        assert_eq!(trace.duration(), 10_000_000);
    }

    #[test]
    fn children_come_in_start_order() {
        let trace = &Trace::group(vec![
            span("a", Kind::Server, "root", 1, None, 0, 10),
            span("a", Kind::Client, "late", 2, Some(1), 5, 6),
            span("a", Kind::Client, "early", 3, Some(1), 1, 2),
        ])[0];
        assert_eq!(ids(&trace.tree()), [(1, 0), (3, 1), (2, 1)]);
    }

    #[test]
    fn spans_in_a_cycle_are_shown_once_and_marked() {
        let trace = &Trace::group(vec![
            span("a", Kind::Server, "root", 1, None, 0, 10),
            span("a", Kind::Server, "x", 2, Some(3), 1, 2),
            span("a", Kind::Server, "y", 3, Some(2), 2, 3),
            span("a", Kind::Server, "self", 4, Some(4), 3, 4),
        ])[0];
        let tree = trace.tree();
        assert_eq!(ids(&tree), [(1, 0), (4, 0), (2, 0), (3, 1)]);
        assert_eq!(tree.rows()[2].detached, Some(Detached::Cycle));
        assert_eq!(tree.rows()[1].detached, Some(Detached::Cycle), "its own parent");
        assert_eq!((tree.roots().count(), tree.orphans()), (1, 0));
    }

    #[test]
    fn a_deep_chain_and_a_wide_trace_take_linear_time() {
        let chain: Vec<Span> = (1..=20_000)
            .map(|i| span("a", Kind::Internal, "step", i, (i > 1).then(|| i - 1), i, i + 1))
            .collect();
        let started = std::time::Instant::now();
        let trace = &Trace::group(chain)[0];
        let tree = trace.tree();
        assert_eq!((tree.depth(), tree.rows().len()), (20_000, 20_000));
        let (shown, hidden) = tree.visible(100, 40);
        assert_eq!((shown.len(), hidden), (40, 19_960));

        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());

        let wide: Vec<Span> = std::iter::once(span("a", Kind::Server, "root", 1, None, 0, 10))
            .chain((2..=50_001).map(|i| span("a", Kind::Client, "call", i, Some(1), i % 7, 9)))
            .collect();
        let started = std::time::Instant::now();
        let trace = &Trace::group(wide)[0];
        assert_eq!(trace.tree().rows().len(), 50_001);
        let text = crate::render::tree(trace, crate::render::Options::default());
        assert!(
            text.ends_with("… 49801 more spans not drawn (deeper than 40 levels, or past 200 rows)\n"),
            "{text}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    }
}
