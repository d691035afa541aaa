//! Baggage members on spans: `baggage.user=jason` on every span of a request routed for jason.
//! Done once here, as spans start, rather than in each handler.

use std::time::Duration;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::Span as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Copies the chosen baggage members of a span's parent context onto the span.
#[derive(Debug)]
pub struct BaggageAttributes {
    keys: Vec<(String, String)>,
}

impl BaggageAttributes {
    /// Records members `keys` as `baggage.<key>`.
    pub fn new(keys: Vec<String>) -> Self {
        Self { keys: keys.into_iter().map(|key| (format!("baggage.{key}"), key)).collect() }
    }
}

impl SpanProcessor for BaggageAttributes {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let baggage = cx.baggage();
        for (attribute, key) in &self.keys {
            if let Some(value) = baggage.get(key.as_str()) {
                span.set_attribute(KeyValue::new(attribute.clone(), value.to_string()));
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
