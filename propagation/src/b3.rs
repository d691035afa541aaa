//! B3 (Zipkin) propagation: the single `b3` header and the `x-b3-*` headers Envoy's Zipkin
//! tracer reads and writes.
//!
//! Reading accepts both forms, whatever form is written, as the `opentelemetry-propagator-b3`
//! crate does, with the B3 specification's own rules where the crate departs from them: the
//! debug flag (`b3: {ids}-d`, `x-b3-flags: 1`) makes a trace sampled (the crate sets a flag of
//! its own without the sampled bit, so a parent-based sampler would drop a trace its caller
//! forced), and `x-b3-sampled` may be spelt `true` or `false`, as some tracers send it. Writing
//! is the crate's: 32-digit trace ids, `x-b3-flags: 1` instead of `x-b3-sampled` for a debug
//! trace, no sampling decision for a deferred one. It is written out here because it runs on
//! every hop and the crate allocates several strings each time it reads or writes.

use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::carriers::{HeaderValues, push_hex};

/// The debug flag (the crate's bit, kept so that a debug trace is passed on as one).
const DEBUG: TraceFlags = TraceFlags::new(0x04);
/// No sampling decision was sent: not sampled here, and none is passed on.
const DEFERRED: TraceFlags = TraceFlags::new(0x02);

const SINGLE: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

static SINGLE_FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [SINGLE.to_owned()]);
static MULTI_FIELDS: LazyLock<[String; 4]> =
    LazyLock::new(|| [TRACE_ID, SPAN_ID, SAMPLED, FLAGS].map(str::to_owned));

/// Which form is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B3Encoding {
    /// The single `b3` header.
    Single,
    /// The `x-b3-*` headers.
    Multiple,
}

/// B3 propagation writing `encoding`, reading both forms.
#[derive(Debug, Clone, Copy)]
pub struct B3 {
    encoding: B3Encoding,
}

impl B3 {
    /// Writes the single `b3` header, or the `x-b3-*` headers.
    pub fn new(encoding: B3Encoding) -> Self {
        Self { encoding }
    }
}

/// Writes the headers of `encoding` for `context`.
pub(super) fn write(encoding: B3Encoding, context: &SpanContext, values: &mut HeaderValues) {
    let flags = context.trace_flags();
    // A sampled span says so, whatever its parent left undecided: a deferred decision stays
    // deferred only while nothing has sampled the trace.
    let decision = if flags & DEBUG == DEBUG {
        Some("d")
    } else if context.is_sampled() {
        Some("1")
    } else if flags & DEFERRED == DEFERRED {
        None
    } else {
        Some("0")
    };
    if !context.is_valid() {
        // No trace to continue: only the decision goes on.
        let sampled: &[u8] = if context.is_sampled() { b"1" } else { b"0" };
        let name = if encoding == B3Encoding::Single { SINGLE } else { SAMPLED };
        values.push(name, |out| out.extend_from_slice(sampled));
        return;
    }
    let trace_id = context.trace_id().to_bytes();
    let span_id = context.span_id().to_bytes();
    match encoding {
        B3Encoding::Single => values.push(SINGLE, |out| {
            push_hex(out, &trace_id);
            out.push(b'-');
            push_hex(out, &span_id);
            if let Some(decision) = decision {
                out.push(b'-');
                out.extend_from_slice(decision.as_bytes());
            }
        }),
        B3Encoding::Multiple => {
            values.push(TRACE_ID, |out| push_hex(out, &trace_id));
            values.push(SPAN_ID, |out| push_hex(out, &span_id));
            match decision {
                Some("d") => values.push(FLAGS, |out| out.push(b'1')),
                Some(decision) => values.push(SAMPLED, |out| out.extend_from_slice(decision.as_bytes())),
                None => {}
            }
        }
    }
}

impl TextMapPropagator for B3 {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let mut values = HeaderValues::default();
        write(self.encoding, cx.span().span_context(), &mut values);
        values.into_injector(injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        // An invalid single header falls back to the multi headers.
        match extractor.get(SINGLE).and_then(single).or_else(|| multiple(extractor)) {
            Some(context) => cx.with_remote_span_context(context),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        match self.encoding {
            B3Encoding::Single => FieldIter::new(SINGLE_FIELDS.as_slice()),
            B3Encoding::Multiple => FieldIter::new(MULTI_FIELDS.as_slice()),
        }
    }
}

/// `{trace-id}-{span-id}[-{sampling}[-{parent-span-id}]]`.
fn single(value: &str) -> Option<SpanContext> {
    // Every dash separates: `{T}-{S}-` has an empty decision, which is no decision at all.
    let mut parts = value.split('-');
    let trace = trace_id(parts.next()?)?;
    let span = span_id(parts.next()?)?;
    let flags = match parts.next() {
        None => DEFERRED,
        Some(decision) => sampling(decision)?,
    };
    if let Some(parent) = parts.next() {
        span_id(parent)?;
    }
    if parts.next().is_some() {
        return None;
    }
    remote(trace, span, flags)
}

/// `x-b3-traceid`, `x-b3-spanid`, then `x-b3-flags: 1` (debug) or `x-b3-sampled`; no decision
/// at all is a deferred one.
fn multiple(extractor: &dyn Extractor) -> Option<SpanContext> {
    let trace = trace_id(extractor.get(TRACE_ID)?)?;
    let span = span_id(extractor.get(SPAN_ID)?)?;
    let flags = if extractor.get(FLAGS) == Some("1") {
        DEBUG | TraceFlags::SAMPLED
    } else {
        match extractor.get(SAMPLED) {
            None => DEFERRED,
            Some(decision) => sampling(decision)?,
        }
    };
    remote(trace, span, flags)
}

/// A sampling decision: `1`/`true`, `0`/`false`, or `d` (debug, which samples).
fn sampling(decision: &str) -> Option<TraceFlags> {
    match decision {
        "1" | "true" => Some(TraceFlags::SAMPLED),
        "0" | "false" => Some(TraceFlags::default()),
        "d" => Some(DEBUG | TraceFlags::SAMPLED),
        _ => None,
    }
}

fn remote(trace_id: TraceId, span_id: SpanId, flags: TraceFlags) -> Option<SpanContext> {
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::NONE);
    context.is_valid().then_some(context)
}

/// 16 or 32 lower-case hex digits (a 64-bit id is left-padded to 128 bits).
fn trace_id(text: &str) -> Option<TraceId> {
    ((text.len() == 16 || text.len() == 32) && lower_hex(text)).then(|| TraceId::from_hex(text).ok())?
}

/// 16 lower-case hex digits.
fn span_id(text: &str) -> Option<SpanId> {
    (text.len() == 16 && lower_hex(text)).then(|| SpanId::from_hex(text).ok())?
}

fn lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn extract(pairs: &[(&str, &str)]) -> SpanContext {
        let carrier: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        let cx = B3::new(B3Encoding::Multiple).extract_with_context(&Context::new(), &carrier);
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
    fn reads_what_the_crate_reads() {
        use opentelemetry_propagator_b3::{B3Encoding as Crate, Propagator};
        let crate_reads = |pairs: &[(&str, &str)]| {
            let carrier: HashMap<String, String> =
                pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            let cx = Propagator::with_encoding(Crate::SingleAndMultiHeader)
                .extract_with_context(&Context::new(), &carrier);
            cx.span().span_context().clone()
        };
        let short = "a3ce929d0e0e4736";
        for pairs in [
            vec![("b3", format!("{T}-{S}-1"))],
            vec![("b3", format!("{T}-{S}-0"))],
            vec![("b3", format!("{T}-{S}"))],
            vec![("b3", format!("{short}-{S}-1"))],
            vec![("b3", format!("{T}-{S}-1-{S}"))],
            vec![("b3", format!("{T}-{S}-1-x"))],
            vec![("b3", format!("{T}-{S}-1-{S}-{S}"))],
            vec![("b3", "garbage".to_owned()), ("x-b3-traceid", T.into()), ("x-b3-spanid", S.into())],
            vec![("x-b3-traceid", T.into()), ("x-b3-spanid", S.into()), ("x-b3-sampled", "1".into())],
            vec![("x-b3-traceid", short.into()), ("x-b3-spanid", S.into()), ("x-b3-sampled", "0".into())],
            vec![("x-b3-traceid", T.to_uppercase()), ("x-b3-spanid", S.into())],
            vec![("x-b3-traceid", T.into()), ("x-b3-spanid", S.into()), ("x-b3-sampled", "2".into())],
        ] {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(extract(&pairs), crate_reads(&pairs), "{pairs:?}");
        }
    }

    #[test]
    fn writes_what_the_crate_writes() {
        use opentelemetry_propagator_b3::{B3Encoding as Crate, Propagator};
        for (flags, encoding, theirs) in [
            (TraceFlags::SAMPLED, B3Encoding::Multiple, Crate::MultipleHeader),
            (TraceFlags::default(), B3Encoding::Multiple, Crate::MultipleHeader),
            (DEBUG | TraceFlags::SAMPLED, B3Encoding::Multiple, Crate::MultipleHeader),
            (DEFERRED, B3Encoding::Multiple, Crate::MultipleHeader),
            (TraceFlags::SAMPLED, B3Encoding::Single, Crate::SingleHeader),
            (DEBUG | TraceFlags::SAMPLED, B3Encoding::Single, Crate::SingleHeader),
            (DEFERRED, B3Encoding::Single, Crate::SingleHeader),
        ] {
            let context = SpanContext::new(
                TraceId::from_hex(T).unwrap(),
                SpanId::from_hex(S).unwrap(),
                flags,
                true,
                TraceState::NONE,
            );
            let cx = Context::new().with_remote_span_context(context);
            let (mut ours, mut expected) = (HashMap::<String, String>::new(), HashMap::new());
            B3::new(encoding).inject_context(&cx, &mut ours);
            Propagator::with_encoding(theirs).inject_context(&cx, &mut expected);
            if encoding == B3Encoding::Single {
                // The crate writes the multi headers too when asked for the single one.
                expected.retain(|name, _| name == "b3");
            }
            assert_eq!(ours, expected, "{flags:?} {encoding:?}");
        }
    }

    #[test]
    fn a_sampled_span_under_a_deferred_decision_says_sampled() {
        // What the SDK hands a child of a deferred parent when its own sampler samples.
        let context = SpanContext::new(
            TraceId::from_hex(T).unwrap(),
            SpanId::from_hex(S).unwrap(),
            DEFERRED | TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        );
        let cx = Context::new().with_remote_span_context(context);
        for (encoding, name, value) in [
            (B3Encoding::Multiple, "x-b3-sampled", "1".to_owned()),
            (B3Encoding::Single, "b3", format!("{T}-{S}-1")),
        ] {
            let mut headers = HashMap::<String, String>::new();
            B3::new(encoding).inject_context(&cx, &mut headers);
            assert_eq!(headers.get(name), Some(&value), "{encoding:?}");
        }
    }

    #[test]
    fn malformed_b3_gives_no_context() {
        for bad in [
            "",
            "x",
            &format!("{T}-zz-1"),
            &"a".repeat(10_000),
            &format!("{}-{S}-1", "0".repeat(32)),
            &format!("{T}-{S}-"),
            &format!("{T}-{S}-1-"),
        ] {
            assert!(!extract(&[("b3", bad)]).is_valid(), "{bad:.40}");
        }
    }
}
