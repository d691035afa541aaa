//! Baggage members on spans: `baggage.user=jason` on every span of a request routed for jason.
//! Done once here, as spans start, rather than in each handler.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, Key, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Copies the chosen baggage members of a span's parent context onto the span.
#[derive(Debug)]
pub struct BaggageAttributes {
    /// `(baggage.<key>, key)`; the attribute names are shared, not copied, by every span.
    keys: Vec<(Key, String)>,
}

impl BaggageAttributes {
    /// Records members `keys` as `baggage.<key>`.
    pub fn new(keys: Vec<String>) -> Self {
        let keys = keys.into_iter().map(|key| (Key::from(Arc::<str>::from(format!("baggage.{key}"))), key));
        Self { keys: keys.collect() }
    }
}

impl SpanProcessor for BaggageAttributes {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let baggage = cx.baggage();
        for (attribute, key) in &self.keys {
            if let Some(value) = baggage.get(key.as_str()) {
                span.set_attribute(KeyValue::new(attribute.clone(), value.clone()));
            }
        }
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}
