//! A trace as text: an indented tree, one line per span with its service, kind, name and
//! duration, and a waterfall bar placing it within the trace.
//!
//! ```text
//! trace 80f198ee56343ba864fe8b2a57d3eff7  8.4ms  11 spans  details, productpage, ratings, reviews
//! productpage SERVER GET /productpage           8.4ms  |##############################|
//!   productpage INTERNAL fetch details          6.1ms  | ######################       |
//! ```

use std::collections::BTreeSet;
use std::fmt::Write;

use super::model::{Span, Trace};

/// Width of the waterfall bar, in characters.
const BAR: usize = 30;
/// Longest label before it is cut.
const LABEL: usize = 100;

/// `1.20s`, `8.4ms`, `350µs`.
pub fn duration(nanos: u64) -> String {
    let nanos = nanos as f64;
    if nanos >= 1e9 {
        format!("{:.2}s", nanos / 1e9)
    } else if nanos >= 1e6 {
        format!("{:.1}ms", nanos / 1e6)
    } else {
        format!("{:.0}µs", nanos / 1e3)
    }
}

/// The trace as an indented tree with a waterfall.
pub fn tree(trace: &Trace) -> String {
    let services: Vec<&str> = trace.services().into_iter().collect();
    let mut out = format!(
        "trace {}  {}  {} spans  {}\n",
        trace.id,
        duration(trace.duration()),
        trace.spans.len(),
        services.join(", ")
    );
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    for root in trace.roots() {
        walk(trace, root, 0, &mut seen, &mut lines);
    }
    let width = lines.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    for (label, span) in lines {
        let pad = width - label.chars().count();
        let _ = writeln!(out, "{label}{:pad$}  {:>8}  |{}|", "", duration(span.duration()), bar(trace, span));
    }
    out
}

fn walk<'a>(
    trace: &'a Trace,
    span: &'a Span,
    depth: usize,
    seen: &mut BTreeSet<&'a str>,
    lines: &mut Vec<(String, &'a Span)>,
) {
    // Hostile data may hold cycles; each span is shown once.
    if !seen.insert(span.span_id.as_str()) {
        return;
    }
    let prefix = format!("{}{} {} ", "  ".repeat(depth), span.service, span.kind.as_str());
    let mut suffix = String::new();
    if span.error {
        suffix.push_str(" !");
    }
    if depth == 0
        && let Some(parent) = &span.parent
    {
        let _ = write!(suffix, " (parent {parent} missing)");
    }
    // Long names (Envoy's are whole host names) are cut; the notes after them are kept.
    let room = LABEL.saturating_sub(prefix.chars().count() + suffix.chars().count()).max(12);
    let name = if span.name.chars().count() > room {
        span.name.chars().take(room - 1).collect::<String>() + "…"
    } else {
        span.name.clone()
    };
    lines.push((format!("{prefix}{name}{suffix}"), span));
    for child in trace.children(&span.span_id) {
        walk(trace, child, depth + 1, seen, lines);
    }
}

/// `#` where the span runs within the trace; a skewed clock never draws outside the bar.
fn bar(trace: &Trace, span: &Span) -> String {
    let total = trace.duration().max(1) as f64;
    let from = ((span.start.saturating_sub(trace.start()) as f64 / total) * BAR as f64).floor() as usize;
    let from = from.min(BAR - 1);
    let length = ((span.duration() as f64 / total) * BAR as f64).round() as usize;
    let length = length.clamp(1, BAR - from);
    format!("{}{}{}", " ".repeat(from), "#".repeat(length), " ".repeat(BAR - from - length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::model::Kind;
    use crate::traces::model::tests::span;

    #[test]
    fn a_tree_with_bars_and_an_orphan() {
        let trace = &Trace::group(vec![
            span("productpage", Kind::Server, "GET /productpage", "1", None, 0, 10),
            span("productpage", Kind::Client, "GET", "2", Some("1"), 0, 5),
            span("details", Kind::Server, "GET /details/{id}", "3", Some("2"), 1, 4),
            span("ratings", Kind::Server, "GET /ratings/{id}", "4", Some("gone"), 5, 10),
        ])[0];
        let text = tree(trace);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(&format!(
            "trace {}  10.0ms  4 spans  details, productpage, ratings",
            "t".repeat(32)
        )));
        assert!(lines[1].starts_with("productpage SERVER GET /productpage "));
        assert!(lines[1].ends_with("|##############################|"), "{}", lines[1]);
        assert!(lines[2].starts_with("  productpage CLIENT GET "));
        assert!(lines[2].ends_with("|###############               |"), "{}", lines[2]);
        assert!(lines[3].starts_with("    details SERVER GET /details/{id}"));
        assert!(lines[3].ends_with("|   #########                  |"), "{}", lines[3]);
        assert!(lines[4].starts_with("ratings SERVER GET /ratings/{id} (parent gone missing)"));
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn skewed_clocks_stay_inside_the_bar() {
        let trace = &Trace::group(vec![
            span("a", Kind::Server, "root", "1", None, 100, 200),
            // Starts "before" its parent and ends after it: another host's clock.
            span("b", Kind::Server, "skewed", "2", Some("1"), 50, 400),
            span("c", Kind::Server, "backwards", "3", Some("1"), 300, 250),
        ])[0];
        for line in tree(trace).lines().skip(1) {
            let bar = line.rsplit('|').nth(1).unwrap();
            assert_eq!(bar.chars().count(), BAR, "{line}");
            assert!(bar.contains('#'), "{line}");
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(350_000), "350µs");
        assert_eq!(duration(8_400_000), "8.4ms");
        assert_eq!(duration(1_200_000_000), "1.20s");
    }
}
