//! The trace store: spans by trace, in memory bounded by bytes.
//!
//! Spans are counted as they are added (the span, its strings and attributes, its place in its
//! trace; each trace's own bookkeeping; each process's resource once). A trace keeps at most
//! [`Limits::spans_per_trace`] spans and half the budget; what arrives past that is counted,
//! never kept, and still counts as the trace's activity: a trace is finished once no span of it
//! has arrived for a while, kept or not.
//!
//! Nothing taken is lost unseen. Each trace is handed out to be shown once, when it falls
//! quiet, and its spans to be written (to the run's file) then, or earlier when the traces
//! with spans not yet written pin more than half the budget. Only traces whose spans are all
//! written are evicted, least recently updated first; so the store takes spans only while those
//! it cannot evict leave room for them ([`Store::offer`] refuses the rest, to be sent again),
//! and an evicted trace that was never shown is counted.

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
/// What a trace's own bookkeeping takes, whatever its spans, roughly: its entry and its slot in
/// the index, its places in the orders below, its span list and its duplicate index (a store
/// of one-span traces is mostly this).
const TRACE_BYTES: usize = 448;
/// What a span's place in its trace takes: its shared pointer and its share of the index.
const SPAN_REF_BYTES: usize = INDEX_BYTES + 24;

/// What the store has seen and done, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Spans taken (offers refused not included: they come again).
    pub spans_received: u64,
    /// Spans received twice (same trace, span id and service), not kept twice.
    pub duplicates: u64,
    /// Spans past a trace's cap, counted and not kept.
    pub dropped: u64,
    /// Traces that reached their cap.
    pub capped_traces: u64,
    /// Traces evicted to stay within the budget (all their spans written).
    pub evicted_traces: u64,
    /// Of those, traces evicted before they fell quiet and were shown.
    pub unshown_traces: u64,
    /// Traces held now.
    pub traces: usize,
    /// Spans held now.
    pub spans: usize,
    /// Bytes held now.
    pub bytes: usize,
    /// Bytes held now by traces with spans not yet written (they cannot be evicted).
    pub unwritten: usize,
    /// The budget.
    pub limit: usize,
}

/// Why the store does not take spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Traces with spans not yet written leave too little room now; it is made as they are
    /// written, so the same spans can be offered again shortly.
    Full {
        /// Bytes the spans need.
        needed: usize,
        /// Bytes there are now.
        room: usize,
    },
    /// The spans need more than the whole budget: they can never be taken together.
    TooLarge {
        /// The budget.
        limit: usize,
    },
}

/// What the store did with spans it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Added {
    /// Spans kept.
    pub kept: u64,
    /// Spans it held already.
    pub duplicates: u64,
    /// Spans past their trace's cap: counted, not kept.
    pub dropped: u64,
}

/// A trace handed out of the store: spans to write, and the trace to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Handout {
    /// The trace's spans not handed out to be written before, in arrival order.
    pub write: Vec<Arc<Span>>,
    /// The whole trace as held, the one time it is handed out to be shown.
    pub show: Option<Trace>,
}

#[derive(Debug)]
struct Entry {
    trace: Trace,
    seen: Dedup,
    /// Its summary, while no span has been added since.
    summary: Option<Arc<Summary>>,
    bytes: usize,
    /// Its key in the orders: its last update.
    seq: u64,
    updated: Instant,
    /// `spans[..written]` were handed out to be written.
    written: usize,
    /// It was handed out to be shown.
    shown: bool,
    /// The earliest start among its spans.
    start: u64,
}

impl Entry {
    fn new(id: TraceId, seq: u64, now: Instant) -> Self {
        Self {
            trace: Trace::empty(id),
            seen: Dedup::default(),
            summary: None,
            bytes: TRACE_BYTES,
            seq,
            updated: now,
            written: 0,
            shown: false,
            start: u64::MAX,
        }
    }

    /// Some of its spans are not written yet: it cannot be evicted.
    fn pinned(&self) -> bool {
        self.written < self.trace.spans.len()
    }
}

/// The traces in the orders hand-outs and evictions follow, each by its last update: every
/// trace is in exactly one of `evictable` and `unwritten`, and in `pending` until it is shown
/// and written.
#[derive(Debug, Default)]
struct Orders {
    /// All spans written: the eviction order.
    evictable: BTreeMap<u64, TraceId>,
    /// Spans not written yet: the order they are written in early, under pressure.
    unwritten: BTreeMap<u64, TraceId>,
    /// To be handed out when quiet: not shown yet, or spans not written yet.
    pending: BTreeMap<u64, TraceId>,
}

impl Orders {
    fn remove(&mut self, seq: u64) {
        self.evictable.remove(&seq);
        self.unwritten.remove(&seq);
        self.pending.remove(&seq);
    }

    fn insert(&mut self, id: TraceId, entry: &Entry) {
        if entry.pinned() {
            self.unwritten.insert(entry.seq, id);
        } else {
            self.evictable.insert(entry.seq, id);
        }
        if !entry.shown || entry.pinned() {
            self.pending.insert(entry.seq, id);
        }
    }
}

/// Spans by trace.
#[derive(Debug)]
pub struct Store {
    limits: Limits,
    /// Boxed: the table grows by doubling, and a half-empty table of whole entries would take
    /// several times what the entries do.
    traces: HashMap<TraceId, Box<Entry>>,
    orders: Orders,
    next_seq: u64,
    resources: Vec<Arc<Resource>>,
    resource_bytes: usize,
    bytes: usize,
    /// Bytes of the traces with spans not yet written.
    pinned: usize,
    spans: usize,
    /// Writing early until the pinned bytes are down to a quarter of the budget.
    pressed: bool,
    /// What it holds was written and shown before it came (a saved file).
    saved: bool,
    stats: Stats,
}

impl Store {
    /// An empty store within `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            traces: HashMap::new(),
            orders: Orders::default(),
            next_seq: 0,
            resources: Vec::new(),
            resource_bytes: 0,
            bytes: 0,
            pinned: 0,
            spans: 0,
            pressed: false,
            saved: false,
            stats: Stats::default(),
        }
    }

    /// An empty store for spans read back from a file: they count as written and shown
    /// already, and the least recently added go as the budget needs.
    pub fn for_saved(limits: Limits) -> Self {
        Self { saved: true, ..Self::new(limits) }
    }

    /// Takes `spans` if the traces that cannot be evicted leave room for them (evicting the
    /// least recently updated of the others); otherwise takes none of them.
    ///
    /// # Errors
    /// [`Refusal::Full`] for now, [`Refusal::TooLarge`] for good.
    pub fn offer(&mut self, spans: Vec<Span>, now: Instant) -> Result<Added, Refusal> {
        let limit = self.limits.bytes.saturating_sub(self.resource_bytes);
        let needed = self.cost(&spans, limit);
        if needed > limit {
            return Err(Refusal::TooLarge { limit: self.limits.bytes });
        }
        let room = limit.saturating_sub(self.pinned);
        if needed > room {
            return Err(Refusal::Full { needed, room });
        }
        Ok(self.add(spans, now))
    }

    /// The bytes `spans` would pin: theirs, those of new traces' bookkeeping, and those of
    /// written traces they would add to (an overestimate where resources are concerned); or
    /// the first count past `most`, when they need more (the count stops there, and so does
    /// what it holds for a body of many small traces).
    fn cost(&self, spans: &[Span], most: usize) -> usize {
        // Per trace: spans and bytes it would hold, and whether it would pin bytes not pinned now.
        let mut planned: HashMap<TraceId, (usize, usize, bool)> = HashMap::new();
        let mut resources: Vec<*const Resource> = Vec::new();
        let cap = self.limits.bytes / 2;
        let mut needed = 0;
        for span in spans {
            let (count, bytes, pinning) =
                planned.entry(span.trace_id).or_insert_with(|| match self.traces.get(&span.trace_id) {
                    Some(entry) => (entry.trace.spans.len(), entry.bytes, !entry.pinned()),
                    None => (0, TRACE_BYTES, true),
                });
            let mut cost = span.bytes() + SPAN_REF_BYTES;
            if !self.resources.iter().any(|r| Arc::ptr_eq(r, &span.resource) || **r == *span.resource) {
                let first = !resources.contains(&Arc::as_ptr(&span.resource));
                if first || span.resource.bytes() > SHARED_RESOURCE_BYTES {
                    cost += span.resource.bytes();
                    resources.push(Arc::as_ptr(&span.resource));
                }
            }
            if *count >= self.limits.spans_per_trace || *bytes + cost > cap {
                continue;
            }
            if std::mem::take(pinning) {
                needed += *bytes;
            }
            *count += 1;
            *bytes += cost;
            needed += cost;
            if needed > most {
                break;
            }
        }
        needed
    }

    /// Adds `spans` (any traces, any order) whatever room there is, then evicts the least
    /// recently updated traces with every span written until the budget holds. The receivers
    /// [`offer`](Self::offer) spans instead; this is for saved spans and tests.
    pub fn add(&mut self, spans: Vec<Span>, now: Instant) -> Added {
        let mut added = Added::default();
        self.stats.spans_received += spans.len() as u64;
        let cap = self.limits.bytes / 2;
        for mut span in spans {
            let resource_bytes = self.share(&mut span);
            let cost = span.bytes() + resource_bytes + SPAN_REF_BYTES;
            let id = span.trace_id;
            let seq = self.next_seq;
            self.next_seq += 1;
            let Some(entry) = self.traces.get_mut(&id) else {
                if TRACE_BYTES + cost > cap {
                    // Past the cap from its first span: nothing to keep, nothing to keep it for.
                    added.dropped += 1;
                    self.stats.dropped += 1;
                    self.stats.capped_traces += 1;
                    continue;
                }
                let mut entry = Box::new(Entry::new(id, seq, now));
                entry.seen.admit(&span);
                self.traces.insert(id, entry);
                self.bytes += TRACE_BYTES;
                self.keep(id, span, cost, seq, now, &mut added);
                continue;
            };
            if entry.trace.spans.len() >= self.limits.spans_per_trace || entry.bytes + cost > cap {
                if entry.trace.dropped == 0 {
                    self.stats.capped_traces += 1;
                }
                entry.trace.dropped += 1;
                entry.summary = None;
                added.dropped += 1;
                self.stats.dropped += 1;
                // Still its activity: the trace is not finished while its spans come.
                self.touch(id, seq, now);
                continue;
            }
            if !entry.seen.admit(&span) {
                added.duplicates += 1;
                self.stats.duplicates += 1;
                continue;
            }
            self.keep(id, span, cost, seq, now, &mut added);
        }
        self.make_room();
        added
    }

    /// Keeps `span`, new to trace `id` (which is held), costing `cost` bytes.
    fn keep(&mut self, id: TraceId, span: Span, cost: usize, seq: u64, now: Instant, added: &mut Added) {
        let Some(entry) = self.traces.get_mut(&id) else { return };
        let was_pinned = entry.pinned();
        entry.start = entry.start.min(span.start);
        entry.trace.spans.push(Arc::new(span));
        entry.summary = None;
        entry.bytes += cost;
        if self.saved {
            (entry.written, entry.shown) = (entry.trace.spans.len(), true);
        } else if was_pinned {
            self.pinned += cost;
        } else {
            self.pinned += entry.bytes;
        }
        self.bytes += cost;
        self.spans += 1;
        added.kept += 1;
        self.touch(id, seq, now);
    }

    /// Moves trace `id` to the young end of its orders, as updated at `now`.
    fn touch(&mut self, id: TraceId, seq: u64, now: Instant) {
        let Some(entry) = self.traces.get_mut(&id) else { return };
        self.orders.remove(entry.seq);
        entry.seq = seq;
        entry.updated = now;
        self.orders.insert(id, entry);
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
            self.resource_bytes += bytes;
            self.bytes += bytes;
            return 0;
        }
        bytes
    }

    /// Evicts the least recently updated traces with every span written until the budget
    /// holds (or none is left to evict).
    fn make_room(&mut self) {
        while self.bytes > self.limits.bytes {
            let Some((seq, id)) = self.orders.evictable.pop_first() else { break };
            let Some(entry) = self.traces.remove(&id) else { continue };
            if self.orders.pending.remove(&seq).is_some() && !entry.trace.is_health_check() {
                self.stats.unshown_traces += 1;
            }
            self.bytes -= entry.bytes;
            self.spans -= entry.trace.spans.len();
            self.stats.evicted_traces += 1;
        }
    }

    /// Hand-outs of about `max_bytes` at most: first each trace that received no span (kept or
    /// not) for `quiet` (every trace, with `None`), oldest first, with its spans not written
    /// yet and, the first time, the whole trace to show; then, while the traces with spans not
    /// written pin more than half the budget (until down to a quarter), the spans of the oldest
    /// of them, to be written early (the trace is shown when it falls quiet). What is handed out
    /// counts as written and shown from now on.
    pub fn take(&mut self, now: Instant, quiet: Option<Duration>, max_bytes: usize) -> Vec<Handout> {
        let mut handouts = Vec::new();
        let mut taken = 0;
        while taken < max_bytes {
            let Some((&seq, &id)) = self.orders.pending.first_key_value() else { break };
            let Some(entry) = self.traces.get_mut(&id) else {
                self.orders.pending.remove(&seq);
                continue;
            };
            if quiet.is_some_and(|q| now.saturating_duration_since(entry.updated) < q) {
                break;
            }
            self.orders.remove(seq);
            let show = (!std::mem::replace(&mut entry.shown, true)).then(|| entry.trace.clone());
            let write = Self::hand_out(entry, &mut self.pinned);
            taken +=
                show.as_ref().map_or(0, |_| entry.bytes) + write.iter().map(|s| s.bytes()).sum::<usize>();
            self.orders.insert(id, entry);
            handouts.push(Handout { write, show });
        }
        let pinned = |store: &Self| store.pinned + store.resource_bytes;
        self.pressed =
            pinned(self) > self.limits.bytes / 2 || (self.pressed && pinned(self) > self.limits.bytes / 4);
        while self.pressed && taken < max_bytes {
            let Some((&seq, &id)) = self.orders.unwritten.first_key_value() else { break };
            let Some(entry) = self.traces.get_mut(&id) else {
                self.orders.unwritten.remove(&seq);
                continue;
            };
            self.orders.remove(seq);
            let write = Self::hand_out(entry, &mut self.pinned);
            taken += write.iter().map(|s| s.bytes()).sum::<usize>();
            self.orders.insert(id, entry);
            handouts.push(Handout { write, show: None });
            self.pressed = pinned(self) > self.limits.bytes / 4;
        }
        handouts
    }

    /// The spans of `entry` not handed out to be written before; they count as written now.
    fn hand_out(entry: &mut Entry, pinned: &mut usize) -> Vec<Arc<Span>> {
        if !entry.pinned() {
            return Vec::new();
        }
        *pinned -= entry.bytes;
        let write = entry.trace.spans[entry.written..].to_vec();
        entry.written = entry.trace.spans.len();
        write
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
        let mut order: Vec<&Entry> = self.traces.values().map(|e| &**e).collect();
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
            spans: self.spans,
            bytes: self.bytes,
            unwritten: self.pinned,
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

    const SECOND: Option<Duration> = Some(Duration::from_secs(1));

    /// (spans written, shown) per hand-out.
    fn shape(handouts: &[Handout]) -> Vec<(usize, bool)> {
        handouts.iter().map(|h| (h.write.len(), h.show.is_some())).collect()
    }

    #[test]
    fn quiet_traces_are_shown_once_and_late_spans_written_again() {
        let t0 = Instant::now();
        let mut store = Store::new(Limits::default());
        store.add(of_trace(1, 0..3), t0);
        assert!(store.take(t0 + Duration::from_millis(100), SECOND, usize::MAX).is_empty());
        let quiet = store.take(t0 + Duration::from_secs(2), SECOND, usize::MAX);
        assert_eq!(shape(&quiet), [(3, true)]);
        assert_eq!(quiet[0].show.as_ref().unwrap().spans.len(), 3);
        assert!(store.take(t0 + Duration::from_secs(3), None, usize::MAX).is_empty(), "handed out once");
        store.add(of_trace(1, 3..4), t0 + Duration::from_secs(3));
        let late = store.take(t0 + Duration::from_secs(3), None, usize::MAX);
        assert_eq!(shape(&late), [(1, false)], "only the late span, to write");
        assert_eq!(store.get(&TraceId([1; 16])).unwrap().spans.len(), 4, "the store keeps them all");
    }

    #[test]
    fn duplicates_are_counted_not_kept() {
        let mut store = Store::new(Limits::default());
        store.add(of_trace(1, 0..5), Instant::now());
        let again = store.add(of_trace(1, 0..5), Instant::now());
        assert_eq!(again, Added { kept: 0, duplicates: 5, dropped: 0 });
        let stats = store.stats();
        assert_eq!((stats.spans, stats.duplicates, stats.spans_received), (5, 5, 10));
    }

    #[test]
    fn only_written_traces_are_evicted_and_a_full_store_refuses_until_it_writes() {
        let limits = Limits { bytes: 64 * 1024, spans_per_trace: 10_000 };
        let mut store = Store::new(limits);
        let now = Instant::now();
        let mut offered = 0;
        let refusal = loop {
            offered += 1;
            match store.offer(of_trace(offered, 0..20), now) {
                Ok(added) => assert_eq!(added.kept, 20),
                Err(refusal) => break refusal,
            }
            assert!(offered < 200, "never full: {:?}", store.stats());
        };
        assert!(matches!(refusal, Refusal::Full { .. }), "{refusal:?}");
        let stats = store.stats();
        assert_eq!(
            (stats.evicted_traces, stats.traces),
            (0, usize::from(offered) - 1),
            "nothing unwritten goes"
        );
        assert!(
            stats.bytes <= limits.bytes && stats.unwritten == stats.bytes - store.resource_bytes,
            "{stats:?}"
        );
        // Writing them (here: under pressure, not yet quiet) makes room; the next offer evicts.
        let early = store.take(now, SECOND, usize::MAX);
        assert!(!early.is_empty() && early.iter().all(|h| h.show.is_none()), "written, not shown yet");
        assert!(store.stats().unwritten <= limits.bytes / 4, "{:?}", store.stats());
        for n in offered..offered + 20 {
            store.offer(of_trace(n, 0..20), now).unwrap();
            assert!(store.stats().bytes <= limits.bytes, "{:?}", store.stats());
            store.take(now, SECOND, usize::MAX);
        }
        let stats = store.stats();
        assert!(stats.evicted_traces > 0 && stats.unshown_traces == stats.evicted_traces, "{stats:?}");
        assert!(store.get(&TraceId([1; 16])).is_none(), "the oldest went");
        // Those left are shown once quiet, with nothing left to write.
        let quiet = store.take(now + Duration::from_secs(2), SECOND, usize::MAX);
        assert!(quiet.iter().all(|h| h.show.is_some()) && quiet.len() == stats.traces, "{:?}", shape(&quiet));
        // One trace is capped at half the budget; a thousand of them are not.
        let many: Vec<Span> = (0..1000u16)
            .flat_map(|n| {
                let mut s = of_trace(1, 0..1);
                s[0].trace_id = TraceId([
                    n.to_be_bytes()[0],
                    n.to_be_bytes()[1],
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                    7,
                ]);
                s
            })
            .collect();
        let too_large = store.offer(many, now);
        assert!(matches!(too_large, Err(Refusal::TooLarge { .. })), "{too_large:?}");

        // `add` takes whatever it is given, and still never evicts what is not written.
        let mut store = Store::new(limits);
        for n in 1..=100 {
            store.add(of_trace(n, 0..20), now);
        }
        let stats = store.stats();
        assert!(stats.evicted_traces == 0 && stats.traces == 100 && stats.bytes > limits.bytes, "{stats:?}");
    }

    #[test]
    fn hand_outs_come_in_pieces_of_bounded_size() {
        let mut store = Store::new(Limits::default());
        for n in 1..=100 {
            store.add(of_trace(n, 0..10), Instant::now());
        }
        let first = store.take(Instant::now(), None, 8 * 1024);
        assert!(!first.is_empty() && first.len() < 100, "{}", first.len());
        let mut all = first.len();
        loop {
            let more = store.take(Instant::now(), None, 8 * 1024);
            if more.is_empty() {
                break;
            }
            all += more.len();
        }
        assert_eq!(all, 100);
    }

    #[test]
    fn spans_past_the_cap_are_counted_and_keep_their_trace_from_being_finished() {
        let t0 = Instant::now();
        let mut store = Store::new(Limits { bytes: 1024 * 1024, spans_per_trace: 100 });
        let added = store.add(of_trace(1, 0..1000), t0);
        assert_eq!(added, Added { kept: 100, duplicates: 0, dropped: 900 });
        // Spans past the cap go on coming: the trace is not quiet, whatever it keeps.
        for second in 1..5 {
            let now = t0 + Duration::from_millis(900 * second);
            store.add(of_trace(1, 1000 * second..1000 * second + 1000), now);
            assert!(store.take(now, SECOND, usize::MAX).is_empty(), "shown {second}s into the stream");
        }
        let quiet = store.take(t0 + Duration::from_secs(10), SECOND, usize::MAX);
        let shown = quiet[0].show.as_ref().unwrap();
        assert_eq!((shown.spans.len(), shown.dropped), (100, 4900));
        assert_eq!((store.stats().dropped, store.stats().capped_traces), (4900, 1));

        let mut store = Store::new(Limits { bytes: 64 * 1024, spans_per_trace: 1_000_000 });
        for chunk in 0..100 {
            store.add(of_trace(1, chunk * 100..(chunk + 1) * 100), Instant::now());
        }
        let stats = store.stats();
        assert!(stats.bytes <= 32 * 1024 + 4096 && stats.dropped > 0, "{stats:?}");
    }

    #[test]
    fn a_saved_store_keeps_the_latest_within_its_budget() {
        let limits = Limits { bytes: 64 * 1024, spans_per_trace: 10_000 };
        let mut store = Store::for_saved(limits);
        for n in 1..=200 {
            store.add(of_trace(n, 0..20), Instant::now());
            assert!(store.stats().bytes <= limits.bytes);
        }
        assert!(store.get(&TraceId([200; 16])).is_some() && store.get(&TraceId([1; 16])).is_none());
        assert!(store.take(Instant::now(), None, usize::MAX).is_empty(), "nothing to show or write again");
        assert_eq!(store.stats().unshown_traces, 0);
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
