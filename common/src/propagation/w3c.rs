//! W3C trace context, read strictly.
//!
//! The SDK's propagator parses `traceparent` fields as numbers without checking their length,
//! so `00-1-1-01` or a 30-digit trace id would continue a trace. The specification says such a
//! header is ignored (and `tracestate` with it); this wrapper checks the shape first.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// `traceparent` and `tracestate`, per W3C Trace Context level 1.
#[derive(Debug, Default)]
pub struct W3cTraceContext(TraceContextPropagator);

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.0.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get("traceparent") {
            Some(value) if well_formed(value.trim()) => self.0.extract_with_context(cx, extractor),
            _ => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
    }
}

/// `version-traceid-parentid-flags`: 2, 32, 16 and 2 lower-case hex digits; version `ff` is
/// invalid; version `00` has nothing more, later versions may add fields after a `-`.
fn well_formed(value: &str) -> bool {
    let bytes = value.as_bytes();
    let hex = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)))
    };
    let dashes = [2, 35, 52].iter().all(|&at| bytes.get(at) == Some(&b'-'));
    let shape = dashes && hex(0..2) && hex(3..35) && hex(36..52) && hex(53..55);
    let version_ok = match &value[..2.min(value.len())] {
        "00" => bytes.len() == 55,
        "ff" => false,
        _ => bytes.len() == 55 || bytes.get(55) == Some(&b'-'),
    };
    shape && version_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_pass() {
        let good = "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01";
        assert!(well_formed(good));
        assert!(well_formed("01-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01-extra"));
        for bad in [
            "",
            "00-1-1-01",
            "00-80f198ee56343ba864fe8b2a57d3ef-e457b5a2e4d86bd1-01",
            "00-80F198EE56343BA864FE8B2A57D3EFF7-e457b5a2e4d86bd1-01",
            "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01-extra",
            "ff-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
            "00_80f198ee56343ba864fe8b2a57d3eff7_e457b5a2e4d86bd1_01",
            "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0g",
            "é0-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
