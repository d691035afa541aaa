//! W3C trace context, read strictly.
//!
//! The SDK's propagator parses `traceparent` fields as numbers without checking their length,
//! so `00-1-1-01` or a 30-digit trace id would continue a trace. The specification says such a
//! header is ignored (and `tracestate` with it); here the shape is checked first, and a header
//! of the right shape is read at fixed places, with no splitting (the SDK's propagator also
//! allocates on every call, and this runs on every hop).

use std::str::FromStr;
use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::carriers::{HeaderValues, push_hex};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

static FIELDS: LazyLock<[String; 2]> = LazyLock::new(|| [TRACEPARENT.to_owned(), TRACESTATE.to_owned()]);

/// `traceparent` and `tracestate`, per W3C Trace Context level 1.
#[derive(Debug, Default, Clone, Copy)]
pub struct W3cTraceContext;

/// Writes `traceparent` (and a `tracestate` that is not empty) for `context`.
pub(super) fn write(context: &SpanContext, values: &mut HeaderValues) {
    if !context.is_valid() {
        return;
    }
    values.push(TRACEPARENT, |out| {
        out.extend_from_slice(b"00-");
        push_hex(out, &context.trace_id().to_bytes());
        out.push(b'-');
        push_hex(out, &context.span_id().to_bytes());
        out.extend_from_slice(if context.is_sampled() { b"-01" } else { b"-00" });
    });
    if *context.trace_state() != TraceState::NONE {
        values.push(TRACESTATE, |out| out.extend_from_slice(context.trace_state().header().as_bytes()));
    }
}

impl TextMapPropagator for W3cTraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut values = HeaderValues::default();
        write(cx.span().span_context(), &mut values);
        values.into_injector(injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(value) = extractor.get(TRACEPARENT).map(str::trim).filter(|v| well_formed(v)) else {
            return cx.clone();
        };
        let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
            TraceId::from_hex(&value[3..35]),
            SpanId::from_hex(&value[36..52]),
            u8::from_str_radix(&value[53..55], 16),
        ) else {
            return cx.clone();
        };
        let state = match extractor.get(TRACESTATE) {
            Some(state) => TraceState::from_str(state).unwrap_or_default(),
            None => TraceState::NONE,
        };
        let flags = TraceFlags::new(flags) & TraceFlags::SAMPLED;
        let context = SpanContext::new(trace_id, span_id, flags, true, state);
        if context.is_valid() { cx.with_remote_span_context(context) } else { cx.clone() }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
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
    // By bytes: a character of several bytes may straddle the version's two.
    let version_ok = match bytes.get(..2) {
        Some(b"00") => bytes.len() == 55,
        Some(b"ff") => false,
        _ => bytes.len() == 55 || bytes.get(55) == Some(&b'-'),
    };
    shape && version_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use std::collections::HashMap;

    fn carrier(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn context_of(cx: &Context) -> SpanContext {
        cx.span().span_context().clone()
    }

    #[test]
    fn reads_and_writes_what_the_sdk_does_for_well_formed_headers() {
        let sdk = TraceContextPropagator::new();
        for (traceparent, tracestate) in [
            ("00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01", None),
            (
                "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-00",
                Some("congo=t61rcWkgMzE,rojo=00f067"),
            ),
            ("00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-03", None),
            ("01-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01-extra", None),
        ] {
            let mut pairs = vec![("traceparent", traceparent)];
            pairs.extend(tracestate.map(|s| ("tracestate", s)));
            let carrier = carrier(&pairs);
            let ours = W3cTraceContext.extract_with_context(&Context::new(), &carrier);
            let theirs = sdk.extract_with_context(&Context::new(), &carrier);
            assert_eq!(context_of(&ours), context_of(&theirs), "{traceparent}");
            let (mut written, mut expected) = (HashMap::new(), HashMap::new());
            W3cTraceContext.inject_context(&ours, &mut written);
            sdk.inject_context(&theirs, &mut expected);
            expected.retain(|_, v: &mut String| !v.is_empty());
            assert_eq!(written, expected, "{traceparent}");
        }
    }

    #[test]
    fn a_malformed_traceparent_is_ignored_with_its_tracestate() {
        let carrier = carrier(&[("traceparent", "00-1-1-01"), ("tracestate", "a=b")]);
        let cx = W3cTraceContext.extract_with_context(&Context::new(), &carrier);
        assert!(!context_of(&cx).is_valid());
        let zero = carrier_of_zero();
        assert!(!context_of(&W3cTraceContext.extract_with_context(&Context::new(), &zero)).is_valid());
    }

    fn carrier_of_zero() -> HashMap<String, String> {
        carrier(&[("traceparent", "00-00000000000000000000000000000000-e457b5a2e4d86bd1-01")])
    }

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
            "0é-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
