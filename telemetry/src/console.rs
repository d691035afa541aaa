//! `OTEL_TRACES_EXPORTER=console`: one line per finished span on standard output, for a look
//! without a collector.

use std::fmt::Write as _;
use std::io::Write as _;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Writes spans as `span <service> <kind> "<name>" trace=… span=… parent=… <ms>ms status=… k=v…`.
#[derive(Debug, Default)]
pub struct ConsoleExporter {
    service: String,
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut out = String::new();
        for span in batch {
            out.push_str(&line(&self.service, &span));
            out.push('\n');
        }
        // Standard output going away is no reason to fail the service.
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.service = resource
            .get(&opentelemetry::Key::from_static_str("service.name"))
            .map(|v| v.to_string())
            .unwrap_or_default();
    }
}

fn line(service: &str, span: &SpanData) -> String {
    let kind = match span.span_kind {
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Internal => "INTERNAL",
    };
    let millis = span.end_time.duration_since(span.start_time).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let status = match &span.status {
        Status::Unset => "unset",
        Status::Ok => "ok",
        Status::Error { .. } => "error",
    };
    let mut line = format!(
        "span {service} {kind} {:?} trace={} span={} parent={} {millis:.1}ms status={status}",
        span.name,
        span.span_context.trace_id(),
        span.span_context.span_id(),
        span.parent_span_id,
    );
    for attribute in &span.attributes {
        let _ = write!(line, " {}={}", attribute.key, attribute.value);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    #[test]
    fn a_span_is_one_readable_line() {
        let start = SystemTime::UNIX_EPOCH;
        let span = SpanData {
            span_context: SpanContext::new(
                TraceId::from_hex("80f198ee56343ba864fe8b2a57d3eff7").unwrap(),
                SpanId::from_hex("e457b5a2e4d86bd1").unwrap(),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from_hex("00000000000000aa").unwrap(),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: "GET /reviews/{id}".into(),
            start_time: start,
            end_time: start + Duration::from_millis(12),
            attributes: vec![KeyValue::new("http.response.status_code", 200)],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        };
        assert_eq!(
            line("reviews", &span),
            "span reviews SERVER \"GET /reviews/{id}\" trace=80f198ee56343ba864fe8b2a57d3eff7 \
             span=e457b5a2e4d86bd1 parent=00000000000000aa 12.0ms status=unset http.response.status_code=200"
        );
    }
}
