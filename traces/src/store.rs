//! The trace store: spans by trace, in memory bounded by bytes.
//!
//! Spans are counted as they are added (the span, its strings, its attributes; each process's
//! resource once). Past the budget the least recently updated traces go first; a trace can hold
//! at most [`Limits::spans_per_trace`] spans and half the budget, and what arrives past that is
//! counted, not kept. Traces whose spans have not yet been handed out (to the terminal and the
//! file) are handed out when they fall quiet, or when they are evicted, whichever comes first,
//! so pressure never loses a trace silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::compare::Summary;
use crate::model::{Resource, Span, TraceId};
use crate::trace::{Dedup, INDEX_BYTES, Trace};

/// How much the store may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of spans in all.
    pub bytes: usize,
    /// Spans of one trace.
    pub spans_per_trace: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { bytes: 16 * 1024 * 1024, spans_per_trace: 10_000 }
    }
}

/// Resources shared across batches at most; a resource larger than this is not shared.
const SHARED_RESOURCES: usize = 256;
const SHARED_RESOURCE_BYTES: usize = 4096;

/// What the store has seen and done, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Spans received.
    pub spans_received: u64,
    /// Spans received twice (same trace, span id and service), not kept twice.
    pub duplicates: u64,
    /// Spans past a trace's cap, not kept.
    pub dropped: u64,
    /// Traces evicted to stay within the budget.
    pub evicted_traces: u64,
    /// Evicted traces never handed out, the hand-off being full.
    pub lost_traces: u64,
    /// Traces held now.
    pub traces: usize,
    /// Spans held now.
    pub spans: usize,
    /// Bytes held now.
    pub bytes: usize,
    /// The budget.
    pub limit: usize,
}

#[derive(Debug)]
struct Entry {
    trace: Trace,
    seen: Dedup,
    /// Its summary, while no span has been added since.
    summary: Option<Arc<Summary>>,
    bytes: usize,
    /// Position in [`Store::by_update`].
    seq: u64,
    updated: Instant,
    /// `spans[..handed_out]` were handed out already.
    handed_out: usize,
    /// The earliest start among its spans.
    start: u64,
}

/// Spans by trace.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    traces: HashMap<TraceId, Entry>,
    /// Every trace by its last update, oldest first: the eviction order.
    by_update: BTreeMap<u64, TraceId>,
    /// Traces with spans not handed out yet, by last update.
    pending: BTreeMap<u64, TraceId>,
    next_seq: u64,
    resources: Vec<Arc<Resource>>,
    bytes: usize,
    /// Evicted traces waiting to be handed out, and their bytes.
    handoff: Vec<Handout>,
    handoff_bytes: usize,
    stats: Stats,
}

/// Spans of a trace handed out of the store, to be shown and written.
#[derive(Debug, Clone, PartialEq)]
pub struct Handout {
    /// The trace with the spans not handed out before.
    pub trace: Trace,
    /// Some of the trace was handed out before: these spans came late.
    pub late: bool,
}

impl Store {
    /// An empty store within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            traces: HashMap::new(),
            by_update: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_seq: 0,
            resources: Vec::new(),
            bytes: 0,
            handoff: Vec::new(),
            handoff_bytes: 0,
            stats: Stats::default(),
        }
    }

    /// Adds `spans` (any traces, any order), evicting the least recently updated traces past
    /// the budget.
    pub fn add(&mut self, spans: Vec<Span>, now: Instant) {
        self.stats.spans_received += spans.len() as u64;
        let trace_cap = self.limits.bytes / 2;
        for mut span in spans {
            let resource_bytes = self.share(&mut span);
            // The span, its share of the index, and its shared pointer.
            let bytes = span.bytes() + resource_bytes + INDEX_BYTES + 24;
            let trace_id = span.trace_id;
            let seq = self.next_seq;
            let entry = self.traces.entry(trace_id).or_insert_with(|| Entry {
                trace: Trace::empty(trace_id),
                seen: Dedup::default(),
                summary: None,
                bytes: 0,
                seq,
                updated: now,
                handed_out: 0,
                start: u64::MAX,
            });
            if entry.trace.spans.len() >= self.limits.spans_per_trace || entry.bytes + bytes > trace_cap {
                entry.trace.dropped += 1;
                entry.summary = None;
                self.stats.dropped += 1;
                // A trace that only ever overflowed holds nothing: do not keep it around.
                if entry.trace.spans.is_empty() {
                    self.traces.remove(&trace_id);
                }
                continue;
            }
            if !entry.seen.admit(&span) {
                self.stats.duplicates += 1;
                continue;
            }
            let start = span.start;
            entry.trace.spans.push(Arc::new(span));
            entry.summary = None;
            entry.bytes += bytes;
            entry.start = entry.start.min(start);
            self.bytes += bytes;
            // Move the trace to the young end of both orders.
            self.by_update.remove(&entry.seq);
            self.pending.remove(&entry.seq);
            entry.seq = seq;
            entry.updated = now;
            self.by_update.insert(seq, trace_id);
            self.pending.insert(seq, trace_id);
            self.next_seq += 1;
        }
        self.make_room();
    }

    /// Points `span` at a shared copy of its resource; returns the bytes to charge the span for
    /// its resource (0 when shared: shared resources are charged once, when first seen).
    fn share(&mut self, span: &mut Span) -> usize {
        if let Some(shared) =
            self.resources.iter().find(|r| Arc::ptr_eq(r, &span.resource) || ***r == *span.resource)
        {
            span.resource = shared.clone();
            return 0;
        }
        let bytes = span.resource.bytes();
        if self.resources.len() < SHARED_RESOURCES && bytes <= SHARED_RESOURCE_BYTES {
            self.resources.push(span.resource.clone());
            self.bytes += bytes;
            return 0;
        }
        bytes
    }

    /// Evicts the least recently updated traces until the budget holds.
    fn make_room(&mut self) {
        while self.bytes > self.limits.bytes {
            let Some((seq, id)) = self.by_update.pop_first() else { break };
            self.pending.remove(&seq);
            let Some(entry) = self.traces.remove(&id) else { continue };
            self.bytes -= entry.bytes;
            self.stats.evicted_traces += 1;
            if entry.handed_out == entry.trace.spans.len() {
                continue;
            }
            if self.handoff_bytes + entry.bytes > self.limits.bytes / 4 {
                self.stats.lost_traces += 1;
                continue;
            }
            self.handoff_bytes += entry.bytes;
            let late = entry.handed_out > 0;
            let mut trace = entry.trace;
            trace.spans.drain(..entry.handed_out);
            self.handoff.push(Handout { trace, late });
        }
    }

    /// The spans not handed out yet of the traces evicted since the last call, then of every
    /// trace that received none for `quiet` (of every trace with `None`), oldest first; they
    /// count as handed out from now on.
    pub fn take_quiet(&mut self, now: Instant, quiet: Option<Duration>) -> Vec<Handout> {
        let mut quiet_traces = std::mem::take(&mut self.handoff);
        self.handoff_bytes = 0;
        while let Some((&seq, &id)) = self.pending.first_key_value() {
            let Some(entry) = self.traces.get_mut(&id) else {
                self.pending.remove(&seq);
                continue;
            };
            if quiet.is_some_and(|q| now.saturating_duration_since(entry.updated) < q) {
                break;
            }
            self.pending.remove(&seq);
            let spans = entry.trace.spans[entry.handed_out..].to_vec();
            let late = entry.handed_out > 0;
            entry.handed_out = entry.trace.spans.len();
            quiet_traces.push(Handout { trace: Trace { id, spans, dropped: entry.trace.dropped }, late });
        }
        quiet_traces
    }

    /// Trace `id`.
    pub fn get(&self, id: &TraceId) -> Option<&Trace> {
        self.traces.get(id).map(|e| &e.trace)
    }

    /// Every trace for which `keep` holds, newest first (by first start), at most `limit`.
    pub fn find(&self, limit: usize, keep: impl Fn(&Trace) -> bool) -> Vec<&Trace> {
        self.newest().filter(|e| keep(&e.trace)).take(limit).map(|e| &e.trace).collect()
    }

    /// The summaries of the newest `limit` traces for which `keep` holds; each summary is
    /// computed once, until its trace gets another span.
    pub fn summaries(&mut self, limit: usize, keep: impl Fn(&Trace) -> bool) -> Vec<Arc<Summary>> {
        let ids: Vec<TraceId> =
            self.newest().filter(|e| keep(&e.trace)).take(limit).map(|e| e.trace.id).collect();
        ids.iter()
            .filter_map(|id| {
                let entry = self.traces.get_mut(id)?;
                Some(entry.summary.get_or_insert_with(|| Arc::new(Summary::of(&entry.trace))).clone())
            })
            .collect()
    }

    /// Every entry, newest first (by first start).
    fn newest(&self) -> impl Iterator<Item = &Entry> {
        let mut order: Vec<&Entry> = self.traces.values().collect();
        order.sort_unstable_by_key(|e| std::cmp::Reverse((e.start, e.trace.id)));
        order.into_iter()
    }

    /// Every service with a span in the store, sorted.
    pub fn services(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for entry in self.traces.values() {
            names.extend(entry.trace.spans.iter().map(|s| s.service()));
        }
        names.into_iter().map(str::to_owned).collect()
    }

    /// Counts.
    pub fn stats(&self) -> Stats {
        Stats {
            traces: self.traces.len(),
            spans: self.traces.values().map(|e| e.trace.spans.len()).sum(),
            bytes: self.bytes,
            limit: self.limits.bytes,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::span;
    use crate::model::{Kind, TraceId};

    fn of_trace(n: u8, spans: std::ops::Range<u64>) -> Vec<Span> {
        spans
            .map(|i| {
                let mut s = span("svc", Kind::Internal, "work", i + 1, None, i, i + 1);
                s.trace_id = TraceId([n.max(1); 16]);
                s
            })
            .collect()
    }

    #[test]
    fn quiet_traces_are_handed_out_once_and_late_spans_again() {
        let t0 = Instant::now();
        let mut store = Store::new(Limits::default());
        store.add(of_trace(1, 0..3), t0);
        assert!(store.take_quiet(t0 + Duration::from_millis(100), Some(Duration::from_secs(1))).is_empty());
        let quiet = store.take_quiet(t0 + Duration::from_secs(2), Some(Duration::from_secs(1)));
        assert_eq!(quiet.iter().map(|h| (h.trace.spans.len(), h.late)).collect::<Vec<_>>(), [(3, false)]);
        assert!(store.take_quiet(t0 + Duration::from_secs(3), None).is_empty(), "handed out once");
        store.add(of_trace(1, 3..4), t0 + Duration::from_secs(3));
        let late = store.take_quiet(t0 + Duration::from_secs(3), None);
        assert_eq!((late[0].trace.spans.len(), late[0].late), (1, true), "only the late span");
        assert_eq!(store.get(&TraceId([1; 16])).unwrap().spans.len(), 4, "the store keeps them all");
    }

    #[test]
    fn duplicates_are_counted_not_kept() {
        let mut store = Store::new(Limits::default());
        store.add(of_trace(1, 0..5), Instant::now());
        store.add(of_trace(1, 0..5), Instant::now());
        let stats = store.stats();
        assert_eq!((stats.spans, stats.duplicates, stats.spans_received), (5, 5, 10));
    }

    #[test]
    fn the_budget_holds_and_evicted_traces_are_handed_out_first() {
        let limits = Limits { bytes: 64 * 1024, spans_per_trace: 10_000 };
        let mut store = Store::new(limits);
        let mut handed = 0;
        for n in 1..=200u8 {
            store.add(of_trace(n, 0..20), Instant::now());
            assert!(store.stats().bytes <= limits.bytes, "{:?}", store.stats());
            if n % 2 == 0 {
                handed += store
                    .take_quiet(Instant::now(), Some(Duration::from_secs(60)))
                    .iter()
                    .map(|h| h.trace.spans.len())
                    .sum::<usize>();
            }
        }
        let stats = store.stats();
        assert!(stats.evicted_traces > 0 && stats.traces < 200, "{stats:?}");
        assert_eq!(stats.lost_traces, 0);
        assert_eq!(handed + stats.spans, 200 * 20, "every span is either held or handed out");
        assert!(store.get(&TraceId([200; 16])).is_some(), "the newest stays");
        assert!(store.get(&TraceId([1; 16])).is_none(), "the oldest went");
    }

    #[test]
    fn one_trace_is_capped_in_spans_and_in_bytes() {
        let mut store = Store::new(Limits { bytes: 1024 * 1024, spans_per_trace: 100 });
        store.add(of_trace(1, 0..1000), Instant::now());
        let trace = store.get(&TraceId([1; 16])).unwrap();
        assert_eq!((trace.spans.len(), trace.dropped), (100, 900));

        let mut store = Store::new(Limits { bytes: 64 * 1024, spans_per_trace: 1_000_000 });
        for chunk in 0..100 {
            store.add(of_trace(1, chunk * 100..(chunk + 1) * 100), Instant::now());
        }
        let stats = store.stats();
        assert!(stats.bytes <= 32 * 1024 + 4096 && stats.dropped > 0, "{stats:?}");
    }

    #[test]
    fn finding_is_newest_first_and_filtered() {
        let mut store = Store::new(Limits::default());
        for n in 1..=5 {
            store.add(of_trace(n, u64::from(n) * 10..u64::from(n) * 10 + 2), Instant::now());
        }
        let found = store.find(2, |_| true);
        assert_eq!(found.iter().map(|t| t.id.0[0]).collect::<Vec<_>>(), [5, 4]);
        assert!(store.find(10, |t| t.has_service("other")).is_empty());
        assert_eq!(store.services().into_iter().collect::<Vec<_>>(), ["svc"]);
    }
}
