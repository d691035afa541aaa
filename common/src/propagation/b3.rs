//! B3 (Zipkin) propagation: the `opentelemetry-propagator-b3` crate, with a debug rule on top.
//!
//! The crate reads the debug flag (`b3: {ids}-d`, `x-b3-flags: 1`) into a trace flag of its own
//! without the "sampled" bit, so a parent-based sampler would drop a trace its caller forced.
//! Here a debug context is also sampled, as the B3 specification means it to be. Reading
//! accepts both the single and the multi-header forms, whatever form is written. The crate
//! also writes the multi headers when asked for the single one only; that is held back here.
//!
//! The specification (and some tracers) also sends `x-b3-sampled: true` or `false`; the crate
//! takes `true` only when it writes the multi headers alone, so reading both forms would refuse
//! it and start a new trace. Here both words read as `1` and `0` in every case.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags};
use opentelemetry_propagator_b3::{B3Encoding, Propagator};

/// The crate's debug trace flag.
const DEBUG: TraceFlags = TraceFlags::new(0x04);

/// B3 propagation writing `encoding`.
#[derive(Debug)]
pub struct B3 {
    write: Propagator,
    read: Propagator,
    single_only: bool,
}

impl B3 {
    /// Writes the single `b3` header, or the `x-b3-*` headers.
    pub fn new(encoding: B3Encoding) -> Self {
        Self {
            single_only: matches!(encoding, B3Encoding::SingleHeader),
            write: Propagator::with_encoding(encoding),
            read: Propagator::with_encoding(B3Encoding::SingleAndMultiHeader),
        }
    }
}

/// `x-b3-sampled`, as the crate reads it.
const SAMPLED: &str = "x-b3-sampled";

/// Reads `x-b3-sampled: true`/`false` as `1`/`0`; everything else as it is.
struct SampledWords<'a>(&'a dyn Extractor);

impl Extractor for SampledWords<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key);
        if !key.eq_ignore_ascii_case(SAMPLED) {
            return value;
        }
        match value {
            Some("true") => Some("1"),
            Some("false") => Some("0"),
            other => other,
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        self.0.get_all(key)
    }
}

/// Passes on the `b3` header only.
struct SingleOnly<'a>(&'a mut dyn Injector);

impl Injector for SingleOnly<'_> {
    fn set(&mut self, key: &str, value: String) {
        if key == "b3" {
            self.0.set(key, value);
        }
    }
}

impl TextMapPropagator for B3 {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if self.single_only {
            self.write.inject_context(cx, &mut SingleOnly(injector));
        } else {
            self.write.inject_context(cx, injector);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let extracted = self.read.extract_with_context(cx, &SampledWords(extractor));
        let read = extracted.span().span_context().clone();
        if read.is_remote() && read.trace_flags() & DEBUG == DEBUG && !read.is_sampled() {
            let flags = read.trace_flags() | TraceFlags::SAMPLED;
            let sampled =
                SpanContext::new(read.trace_id(), read.span_id(), flags, true, read.trace_state().clone());
            return cx.with_remote_span_context(sampled);
        }
        extracted
    }

    fn fields(&self) -> FieldIter<'_> {
        self.write.fields()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(pairs: &[(&str, &str)]) -> SpanContext {
        let carrier: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let cx = B3::new(B3Encoding::MultipleHeader).extract_with_context(&Context::new(), &carrier);
        let span = cx.span();
        span.span_context().clone()
    }

    const T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const S: &str = "e457b5a2e4d86bd1";

    #[test]
    fn the_debug_flag_keeps_the_trace_sampled_in_both_forms() {
        assert!(extract(&[("b3", &format!("{T}-{S}-d"))]).is_sampled());
        assert!(extract(&[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-flags", "1")]).is_sampled());
    }

    #[test]
    fn sampling_decisions_are_read_as_sent() {
        assert!(extract(&[("b3", &format!("{T}-{S}-1"))]).is_sampled());
        let unsampled = extract(&[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "0")]);
        assert!(unsampled.is_valid() && !unsampled.is_sampled());
    }

    #[test]
    fn sampled_may_be_spelt_true_or_false() {
        let sampled = extract(&[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "true")]);
        assert!(sampled.is_valid() && sampled.is_sampled());
        assert_eq!(sampled.trace_id().to_string(), T);
        let unsampled = extract(&[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "false")]);
        assert!(unsampled.is_valid() && !unsampled.is_sampled());
        assert!(!extract(&[("x-b3-traceid", T), ("x-b3-spanid", S), ("x-b3-sampled", "yes")]).is_valid());
    }

    #[test]
    fn malformed_b3_gives_no_context() {
        for bad in ["", "x", &format!("{T}-zz-1"), &"a".repeat(10_000), &format!("{}-{S}-1", "0".repeat(32))]
        {
            assert!(!extract(&[("b3", bad)]).is_valid(), "{bad:.40}");
        }
    }
}
