//! Log events on spans: an event logged while a request is served, outside any of the
//! application's `tracing` spans, becomes an event of the request's span (the SERVER span,
//! which is made with the SDK directly and so is not a `tracing` span the bridge could put it
//! on). Events inside a `tracing` span are the bridge's, as before.

use std::fmt;

use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer;
use tracing_subscriber::registry::LookupSpan;

/// The layer.
pub struct OnCurrentSpan;

impl<S> tracing_subscriber::Layer<S> for OnCurrentSpan
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: layer::Context<'_, S>) {
        if event.parent().is_some() || (event.is_contextual() && ctx.lookup_current().is_some()) {
            return;
        }
        Context::map_current(|cx| {
            let span = cx.span();
            if !span.is_recording() {
                return;
            }
            let meta = event.metadata();
            let mut fields = Fields {
                name: None,
                attributes: vec![
                    KeyValue::new("level", meta.level().as_str()),
                    KeyValue::new("target", meta.target()),
                ],
            };
            event.record(&mut fields);
            // An error logged marks the span failed, as the bridge does.
            if *meta.level() == Level::ERROR {
                span.set_status(Status::error(""));
            }
            span.add_event(fields.name.unwrap_or_else(|| meta.name().to_owned()), fields.attributes);
        });
    }
}

/// An event's message (its name on the span) and its other fields (attributes).
struct Fields {
    name: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_owned()),
            name => self.attributes.push(KeyValue::new(name, value.to_owned())),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push(KeyValue::new(field.name(), i64::try_from(value).unwrap_or(i64::MAX)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.name = Some(format!("{value:?}")),
            name => self.attributes.push(KeyValue::new(name, format!("{value:?}"))),
        }
    }
}
