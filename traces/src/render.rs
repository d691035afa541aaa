//! A trace as text: an indented tree, one line per span with its service, kind, name and
//! duration, and a waterfall bar placing it within the trace.
//!
//! ```text
//! trace 80f198ee56343ba864fe8b2a57d3eff7  8.4ms  11 spans  details, productpage, ratings, reviews
//! productpage SERVER GET /productpage           8.4ms  |##############################|
//!   productpage CLIENT GET                      6.1ms  | ######################       |
//! ```
//!
//! What reaches a terminal is escaped first: span names and attributes come from the network.
//! Output is bounded whatever the trace: rows past [`Options::max_rows`] or deeper than
//! [`Options::max_depth`] are counted on a last line, never drawn.

use std::fmt::Write;

use crate::model::{Attribute, Span};
use crate::trace::{Detached, Row, Trace};

/// Width of the waterfall bar, in characters.
pub const BAR: usize = 30;
/// Longest label before it is cut.
const LABEL: usize = 100;

/// What the markers after a span's name mean.
pub const LEGEND: &str = "legend: ~ made by Envoy (sidecar, gateway or waypoint)   ! failed   \
(parent … missing) its parent never arrived   (cycle) its parents loop back to it";

/// How much of a trace to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Rows drawn at most.
    pub max_rows: usize,
    /// Spans nested deeper than this are not drawn.
    pub max_depth: usize,
    /// Draw each span's attributes (and its service's version) under it.
    pub attributes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { max_rows: 200, max_depth: 40, attributes: false }
    }
}

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

/// `text` safe for a terminal: control characters (escape sequences included) and the
/// characters that reorder text on screen are written as `\u{..}` escapes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let reorders =
            matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || reorders {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The trace as an indented tree with a waterfall, within `options`.
pub fn tree(trace: &Trace, options: Options) -> String {
    let tree = trace.tree();
    let services: Vec<String> = trace.services().into_iter().map(escape).collect();
    let mut out = format!(
        "trace {}  {}  {} spans  {}\n",
        trace.id,
        duration(trace.duration()),
        trace.spans.len(),
        services.join(", ")
    );
    let (rows, hidden) = tree.visible(options.max_rows, options.max_depth);
    let labels: Vec<String> = rows.iter().map(|row| label(&trace.spans[row.span], row)).collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let (start, total) = (trace.start(), trace.duration());
    for (row, label) in rows.iter().zip(labels) {
        let span = &trace.spans[row.span];
        let pad = width - label.chars().count();
        let _ = writeln!(
            out,
            "{label}{:pad$}  {:>8}  |{}|",
            "",
            duration(span.duration()),
            bar(start, total, span)
        );
        if options.attributes {
            let _ = writeln!(out, "{}{}", "  ".repeat(row.depth + 2), attributes(span));
        }
    }
    if hidden > 0 {
        let _ = writeln!(
            out,
            "… {hidden} more spans not drawn (deeper than {} levels, or past {} rows)",
            options.max_depth, options.max_rows
        );
    }
    if trace.dropped > 0 {
        let _ =
            writeln!(out, "… {} more spans arrived past the store's cap and were not kept", trace.dropped);
    }
    out
}

fn label(span: &Span, row: &Row) -> String {
    let prefix = format!("{}{} {} ", "  ".repeat(row.depth), escape(span.service()), span.kind.as_str());
    let mut suffix = String::new();
    if span.is_sidecar() {
        suffix.push_str(" ~");
    }
    if span.error {
        suffix.push_str(" !");
    }
    match row.detached {
        Some(Detached::ParentMissing(parent)) => {
            let _ = write!(suffix, " (parent {parent} missing)");
        }
        Some(Detached::Cycle) => suffix.push_str(" (cycle)"),
        None => {}
    }
    // Long names (Envoy's are whole host names) are cut; the notes after them are kept.
    let name = escape(&span.name);
    let room = LABEL.saturating_sub(prefix.chars().count() + suffix.chars().count()).max(12);
    let name = if name.chars().count() > room {
        name.chars().take(room - 1).collect::<String>() + "…"
    } else {
        name
    };
    format!("{prefix}{name}{suffix}")
}

/// `key=value` for each attribute, the service's version first.
fn attributes(span: &Span) -> String {
    let version =
        span.resource.version().map(|v| Attribute { key: "service.version".into(), value: v.clone() });
    let all: Vec<String> = version
        .iter()
        .chain(span.attributes.iter())
        .map(|a| format!("{}={}", escape(&a.key), escape(&a.value.to_string())))
        .collect();
    if all.is_empty() { "(no attributes)".to_owned() } else { all.join(" ") }
}

/// `#` where the span runs within the trace; a skewed clock never draws outside the bar.
fn bar(trace_start: u64, total: u64, span: &Span) -> String {
    let total = total.max(1) as f64;
    let from = ((span.start.saturating_sub(trace_start) as f64 / total) * BAR as f64).floor() as usize;
    let from = from.min(BAR - 1);
    let length = ((span.duration() as f64 / total) * BAR as f64).round() as usize;
    let length = length.clamp(1, BAR - from);
    format!("{}{}{}", " ".repeat(from), "#".repeat(length), " ".repeat(BAR - from - length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::model::tests::{span, with};

    #[test]
    fn a_tree_with_bars_and_an_orphan() {
        let trace = &Trace::group(vec![
            span("productpage", Kind::Server, "GET /productpage", 1, None, 0, 10),
            span("productpage", Kind::Client, "GET", 2, Some(1), 0, 5),
            span("details", Kind::Server, "GET /details/{id}", 3, Some(2), 1, 4),
            span("ratings", Kind::Server, "GET /ratings/{id}", 4, Some(0xdead), 5, 10),
        ])[0];
        let text = tree(trace, Options::default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0]
                .starts_with(&format!("trace {}  10.0ms  4 spans  details, productpage, ratings", trace.id))
        );
        assert!(lines[1].starts_with("productpage SERVER GET /productpage "));
        assert!(lines[1].ends_with("|##############################|"), "{}", lines[1]);
        assert!(lines[2].starts_with("  productpage CLIENT GET "));
        assert!(lines[2].ends_with("|###############               |"), "{}", lines[2]);
        assert!(lines[3].starts_with("    details SERVER GET /details/{id}"));
        assert!(lines[3].ends_with("|   #########                  |"), "{}", lines[3]);
        assert!(lines[4].starts_with("ratings SERVER GET /ratings/{id} (parent 000000000000dead missing)"));
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn skewed_clocks_stay_inside_the_bar() {
        let trace = &Trace::group(vec![
            span("a", Kind::Server, "root", 1, None, 100, 200),
            // Starts "before" its parent and ends after it: another host's clock.
            span("b", Kind::Server, "skewed", 2, Some(1), 50, 400),
            span("c", Kind::Server, "backwards", 3, Some(1), 300, 250),
        ])[0];
        for line in tree(trace, Options::default()).lines().skip(1) {
            let bar = line.rsplit('|').nth(1).unwrap();
            assert_eq!(bar.chars().count(), BAR, "{line}");
            assert!(bar.contains('#'), "{line}");
        }
    }

    #[test]
    fn terminal_escapes_in_names_and_attributes_are_made_harmless() {
        let evil = with(
            span("a\x1b[2J", Kind::Server, "GET /\x1b]0;owned\x07\u{202e}x", 1, None, 0, 1),
            &[("k\n", "v\r")],
        );
        let text = tree(&Trace::group(vec![evil])[0], Options { attributes: true, ..Options::default() });
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("a\\u{1b}[2J SERVER GET /\\u{1b}]0;owned\\u{7}\\u{202e}x"), "{text}");
        assert!(text.contains("k\\u{a}=v\\u{d}"), "{text}");
    }

    #[test]
    fn markers_and_attributes_are_drawn() {
        let mut failed = with(
            span("productpage.default", Kind::Client, "reviews:9080/*", 1, None, 0, 2),
            &[("component", "proxy"), ("http.status_code", "503")],
        );
        failed.error = true;
        let text = tree(&Trace::group(vec![failed])[0], Options { attributes: true, ..Options::default() });
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("productpage.default CLIENT reviews:9080/* ~ !  "), "{text}");
        assert_eq!(lines[2], "    component=proxy http.status_code=503");
    }

    #[test]
    fn huge_traces_draw_a_bounded_tree_quickly() {
        let chain: Vec<Span> = (1..=20_000)
            .map(|i| span("a", Kind::Internal, "step", i, (i > 1).then(|| i - 1), i, i + 1))
            .collect();
        let started = std::time::Instant::now();
        let text = tree(&Trace::group(chain)[0], Options::default());
        assert!(text.len() < 20_000, "{} bytes", text.len());
        assert!(
            text.ends_with("… 19960 more spans not drawn (deeper than 40 levels, or past 200 rows)\n"),
            "{text}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(350_000), "350µs");
        assert_eq!(duration(8_400_000), "8.4ms");
        assert_eq!(duration(1_200_000_000), "1.20s");
    }
}
