//! Baggage members on spans: `baggage.user=jason` on every span of a request routed for jason.
//! Done once here, as spans start, rather than in each handler.
//!
//! It is also the provider's only span processor, handing finished spans on to the export
//! processors: the SDK gives each of several processors a copy of every span that ends, which
//! for a processor that only looks at spans starting would be a copy made for nothing.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, Key, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Copies the chosen baggage members of a span's parent context onto the span, then passes
/// every span on to the export processors.
#[derive(Debug)]
pub struct BaggageAttributes<P> {
    /// `(baggage.<key>, key)`; the attribute names are shared, not copied, by every span.
    keys: Vec<(Key, String)>,
    exports: Vec<P>,
}

impl<P: SpanProcessor> BaggageAttributes<P> {
    /// Records members `keys` as `baggage.<key>`; finished spans go to `exports`.
    pub fn new(keys: Vec<String>, exports: Vec<P>) -> Self {
        let keys = keys.into_iter().map(|key| (Key::from(Arc::<str>::from(format!("baggage.{key}"))), key));
        Self { keys: keys.collect(), exports }
    }
}

impl<P: SpanProcessor> SpanProcessor for BaggageAttributes<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let baggage = cx.baggage();
        for (attribute, key) in &self.keys {
            if let Some(value) = baggage.get(key.as_str()) {
                span.set_attribute(KeyValue::new(attribute.clone(), value.clone()));
            }
        }
        for export in &self.exports {
            export.on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        // The last one takes the span itself; the others (a second exporter) a copy.
        if let Some((last, others)) = self.exports.split_last() {
            for export in others {
                export.on_end(span.clone());
            }
            last.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        collect(self.exports.iter().map(SpanProcessor::force_flush))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        collect(self.exports.iter().map(|export| export.shutdown_with_timeout(timeout)))
    }

    fn set_resource(&mut self, resource: &Resource) {
        for export in &mut self.exports {
            export.set_resource(resource);
        }
    }
}

/// Every processor is asked, whatever the others answer; the first failure is reported.
fn collect(results: impl Iterator<Item = OTelSdkResult>) -> OTelSdkResult {
    let failures: Vec<OTelSdkError> = results.filter_map(Result::err).collect();
    failures.into_iter().next().map_or(Ok(()), Err)
}
