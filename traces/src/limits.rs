//! What one span may hold, as the OpenTelemetry SDKs' attribute limits bound it: at most
//! [`ATTRIBUTES`] attributes and [`TEXT`] bytes of text (its name, then its attributes' keys
//! and values in order). A string that does not fit is cut to what is left, at a character
//! boundary, and ends in `…`; attributes past either limit are dropped. A resource is bounded
//! the same way. Both are counted, so that nothing is cut unseen.
//!
//! The bound is what lets every span be shown, written as a line of the trace file a reader
//! takes (JSON escapes a byte into six at most), and held within the store's budget.

use std::sync::Arc;

use crate::model::{Attribute, Resource, Span, Value};

/// Attributes kept of a span or a resource (the SDKs' default `OTEL_ATTRIBUTE_COUNT_LIMIT`).
pub const ATTRIBUTES: usize = 128;
/// Bytes of text kept of a span or a resource.
pub const TEXT: usize = 64 * 1024;
/// What ends a string that was cut.
const MARK: &str = "…";

/// What bounding spans took off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cut {
    /// Strings (names, keys, values) cut short.
    pub values: u64,
    /// Attributes dropped.
    pub attributes: u64,
}

impl Cut {
    /// Whether nothing was taken off.
    pub fn is_empty(&self) -> bool {
        *self == Cut::default()
    }
}

impl std::ops::AddAssign for Cut {
    fn add_assign(&mut self, other: Cut) {
        self.values += other.values;
        self.attributes += other.attributes;
    }
}

/// Bounds every span of `spans` and each resource they share (once per resource).
pub fn apply(spans: &mut [Span]) -> Cut {
    let mut cut = Cut::default();
    // Resources already looked at: the one each span pointed to, and what it points to now.
    let mut resources: Vec<(Arc<Resource>, Arc<Resource>)> = Vec::new();
    for span in spans.iter_mut() {
        let seen = resources.iter().find(|(old, _)| Arc::ptr_eq(old, &span.resource));
        let resource = match seen {
            Some((_, bounded)) => bounded.clone(),
            None => {
                let bounded = bound_resource(&span.resource, &mut cut);
                resources.push((span.resource.clone(), bounded.clone()));
                bounded
            }
        };
        span.resource = resource;
        let mut left = TEXT;
        if let Some(name) = cut_text(&span.name, &mut left, &mut cut) {
            span.name = name;
        }
        if let Some(attributes) = bound(&span.attributes, left, &mut cut) {
            span.attributes = attributes;
        }
    }
    cut
}

/// `resource` bounded: itself when it fits.
fn bound_resource(resource: &Arc<Resource>, cut: &mut Cut) -> Arc<Resource> {
    match bound(&resource.attributes, TEXT, cut) {
        None => resource.clone(),
        Some(attributes) => Arc::new(Resource::from_attributes(attributes.into_vec())),
    }
}

/// `attributes` within `left` bytes of text and [`ATTRIBUTES`]; `None` when they fit already
/// (the common case copies nothing).
fn bound(attributes: &[Attribute], mut left: usize, cut: &mut Cut) -> Option<Box<[Attribute]>> {
    let text: usize = attributes.iter().map(|a| a.key.len() + a.value.as_str().map_or(0, str::len)).sum();
    if attributes.len() <= ATTRIBUTES && text <= left {
        return None;
    }
    let mut kept = Vec::with_capacity(attributes.len().min(ATTRIBUTES));
    for attribute in attributes {
        let value_len = attribute.value.as_str().map_or(0, str::len);
        if attribute.key.len() + value_len <= left && kept.len() < ATTRIBUTES {
            left -= attribute.key.len() + value_len;
            kept.push(attribute.clone());
            continue;
        }
        // A key is never cut (a cut key names nothing): its value is, when there is room left
        // for the key and a marked value.
        let Value::Str(text) = &attribute.value else {
            cut.attributes += 1;
            continue;
        };
        if kept.len() == ATTRIBUTES || attribute.key.len() + MARK.len() > left {
            cut.attributes += 1;
            continue;
        }
        left -= attribute.key.len();
        let value = cut_text(text, &mut left, cut).unwrap_or_else(|| text.clone());
        kept.push(Attribute { key: attribute.key.clone(), value: Value::Str(value) });
    }
    Some(kept.into_boxed_slice())
}

/// `text` cut to the `left` bytes of text there are (at least the mark's), and taken from
/// them; `None` when it fits whole.
fn cut_text(text: &str, left: &mut usize, cut: &mut Cut) -> Option<Box<str>> {
    if text.len() <= *left {
        *left -= text.len();
        return None;
    }
    cut.values += 1;
    let mut end = left.saturating_sub(MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let short = format!("{}{MARK}", &text[..end]);
    *left -= short.len();
    Some(short.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::model::tests::{span, with};

    fn text_of(span: &Span) -> usize {
        span.name.len()
            + span
                .attributes
                .iter()
                .map(|a| a.key.len() + a.value.as_str().map_or(0, str::len))
                .sum::<usize>()
    }

    #[test]
    fn spans_that_fit_are_left_as_they_are() {
        let mut spans = vec![with(span("a", Kind::Server, "GET /", 1, None, 0, 1), &[("k", "v")])];
        let before = spans.clone();
        assert!(apply(&mut spans).is_empty());
        assert_eq!(spans, before);
        assert!(Arc::ptr_eq(&spans[0].resource, &before[0].resource), "the resource is not copied");
    }

    #[test]
    fn a_long_value_is_cut_to_the_text_left_at_a_character_boundary_and_marked() {
        let long = "é".repeat(3 << 20);
        let mut spans =
            vec![with(span("a", Kind::Server, "GET /", 1, None, 0, 1), &[("k", &long), ("after", "x")])];
        let cut = apply(&mut spans);
        assert_eq!(cut, Cut { values: 1, attributes: 1 }, "the value cut, nothing left for the next");
        let value = spans[0].attributes[0].value.as_str().unwrap();
        assert!(value.ends_with('…') && value.starts_with("éé"), "{}", &value[value.len() - 8..]);
        assert!(text_of(&spans[0]) <= TEXT && text_of(&spans[0]) > TEXT - 8, "{}", text_of(&spans[0]));
    }

    #[test]
    fn past_the_count_attributes_are_dropped_and_names_and_resources_are_bounded_too() {
        let pairs: Vec<(String, String)> = (0..200).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let long_name = "n".repeat(TEXT + 10);
        let mut one = with(span("a", Kind::Server, &long_name, 1, None, 0, 1), &pairs);
        let resource = Arc::new(Resource::from_attributes(vec![
            Attribute::new("service.name", "a"),
            Attribute::new("big", "r".repeat(TEXT * 2).as_str()),
        ]));
        one.resource = resource.clone();
        let mut two = span("a", Kind::Server, "GET /", 2, None, 0, 1);
        two.resource = resource;
        let mut spans = vec![one, two];
        let cut = apply(&mut spans);
        // The name takes all the text: every attribute of the span goes; the resource's value is
        // cut once for both spans.
        assert_eq!(cut, Cut { values: 2, attributes: 200 });
        assert_eq!(spans[0].name.len(), TEXT - MARK.len() + MARK.len());
        assert!(spans[0].attributes.is_empty());
        assert!(Arc::ptr_eq(&spans[0].resource, &spans[1].resource), "still one resource");
        assert_eq!(spans[1].service(), "a");
        let mut many = vec![with(span("a", Kind::Server, "GET /", 1, None, 0, 1), &pairs)];
        assert_eq!(apply(&mut many), Cut { values: 0, attributes: 200 - ATTRIBUTES as u64 });
        assert_eq!(many[0].attributes.len(), ATTRIBUTES);
    }
}
