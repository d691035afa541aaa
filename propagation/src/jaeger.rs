//! The Jaeger `uber-trace-id` propagator (`OTEL_PROPAGATORS=jaeger`). The Jaeger format is
//! deprecated and the crate that carried it has no release for the OpenTelemetry version used
//! here, so it is written out: `{trace-id}:{span-id}:{parent-span-id}:{flags}`, hex.

use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::carriers::{HeaderValues, push_hex};

/// The Jaeger header.
pub const UBER_TRACE_ID: &str = "uber-trace-id";

static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [UBER_TRACE_ID.to_owned()]);

/// Reads and writes `uber-trace-id`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JaegerPropagator;

/// Writes `uber-trace-id` for `context`.
pub(super) fn write(context: &SpanContext, values: &mut HeaderValues) {
    if context.is_valid() {
        values.push(UBER_TRACE_ID, |out| {
            push_hex(out, &context.trace_id().to_bytes());
            out.push(b':');
            push_hex(out, &context.span_id().to_bytes());
            out.extend_from_slice(if context.is_sampled() { b":0:1" } else { b":0:0" });
        });
    }
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut values = HeaderValues::default();
        write(cx.span().span_context(), &mut values);
        values.into_injector(injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get(UBER_TRACE_ID).and_then(parse) {
            Some(context) => cx.with_remote_span_context(context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

/// A remote span context from an `uber-trace-id` value (`:` may come URL-encoded as `%3A`).
fn parse(value: &str) -> Option<SpanContext> {
    let value = value.replace("%3A", ":").replace("%3a", ":");
    let [trace_id, span_id, _parent, flags] = value.split(':').collect::<Vec<_>>()[..] else {
        return None;
    };
    let hex = |text: &str, max: usize| {
        (!text.is_empty() && text.len() <= max && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("{text:0>max$}"))
    };
    let trace_id = TraceId::from_hex(&hex(trace_id, 32)?).ok()?;
    let span_id = SpanId::from_hex(&hex(span_id, 16)?).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    // Bit 1 is "sampled", bit 2 "debug" (which implies sampled).
    let flags = if flags & 0b11 != 0 { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(value: &str) -> Option<SpanContext> {
        let carrier = HashMap::from([(UBER_TRACE_ID.to_owned(), value.to_owned())]);
        let cx = JaegerPropagator.extract_with_context(&Context::new(), &carrier);
        let span = cx.span();
        let context = span.span_context();
        context.is_valid().then(|| context.clone())
    }

    #[test]
    fn reads_full_short_and_encoded_ids() {
        let full = extract("80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:0:1").unwrap();
        assert_eq!(full.trace_id().to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert!(full.is_sampled() && full.is_remote());
        let short = extract("64fe8b2a57d3eff7%3Ae457b5a2e4d86bd1%3A0%3A0").unwrap();
        assert_eq!(short.trace_id().to_string(), "000000000000000064fe8b2a57d3eff7");
        assert!(!short.is_sampled());
        assert!(extract("a:b:0:2").unwrap().is_sampled(), "debug implies sampled");
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in ["", "x:y:0:1", "0:0:0:1", "a:b:0", "a:b:0:1:2", "a:b:0:zz", &"f".repeat(33)] {
            assert!(extract(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let read = extract("80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:0:1").unwrap();
        let mut carrier = HashMap::new();
        JaegerPropagator.inject_context(&Context::new().with_remote_span_context(read), &mut carrier);
        assert_eq!(carrier[UBER_TRACE_ID], "80f198ee56343ba864fe8b2a57d3eff7:e457b5a2e4d86bd1:0:1");
    }
}
