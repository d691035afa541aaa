//! Process-wide telemetry: logs in every mode, and in `otel` mode the OpenTelemetry tracer
//! provider that exports the process's spans.
//!
//! [`Setup::read`] reads the standard `OTEL_*` variables ([`settings`]); [`init`] installs the
//! log subscriber (with the OpenTelemetry layer in `otel` mode) and returns a [`Telemetry`]
//! guard that owns the provider until [`Telemetry::shutdown`] flushes it. Its tracer is what
//! the HTTP crate makes the request and call spans with; the application's own `tracing` spans
//! reach the same provider through the tracing-opentelemetry bridge installed here.
//!
//! Export never holds a request up: spans are queued to the SDK's batch processor, which runs
//! on a thread of its own; a full queue drops spans (counted, and logged at shutdown) rather
//! than growing.

mod baggage_attributes;
pub mod console;
mod events;
pub mod otlp;
pub mod settings;

use std::io::{self, IsTerminal};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanExporter,
};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use self::baggage_attributes::BaggageAttributes;
use self::console::ConsoleExporter;
use self::settings::{ExporterKind, HttpExporter, Protocol, SamplerKind, Settings};
use bookinfo_config::Source;
use bookinfo_propagation::{PropagatorKind, TracingMode};
use opentelemetry_sdk::trace::SdkTracer;

/// Longest a shutdown waits for the last spans to be exported.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Who a process is: its resource's `service.name` and `service.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `productpage`, `details`, `reviews` or `ratings` (`OTEL_SERVICE_NAME` wins).
    pub service: &'static str,
    /// `v1`, `v2`, `v3`, ...
    pub version: String,
}

/// What `otel` mode makes the spans of requests and calls with.
#[derive(Debug, Clone)]
pub struct Spans {
    /// The tracer; the application's own `tracing` spans share its scope, through the bridge.
    pub tracer: SdkTracer,
    /// `OTEL_PROPAGATORS`, in order.
    pub propagators: Vec<PropagatorKind>,
    /// `BOOKINFO_FETCH_SPANS`.
    pub fetch_spans: bool,
}

/// Owns the process's tracer provider (and the gRPC exporter's runtime) until shutdown.
pub struct Telemetry {
    spans: Option<Spans>,
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Telemetry {
    /// What the request and call spans are made with, when spans are made (`otel` mode, the
    /// SDK not disabled).
    pub fn spans(&self) -> Option<&Spans> {
        self.spans.as_ref()
    }

    /// Exports the spans still queued, waiting at most [`SHUTDOWN_TIMEOUT`].
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocking here would stall the server's own runtime thread, which the gRPC
            // exporter may need; a blocking task leaves it free.
            let shutdown =
                tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
            match shutdown.await {
                Ok(Ok(())) => tracing::info!("spans flushed"),
                Ok(Err(err)) => tracing::warn!(error = %err, "spans may be lost at shutdown"),
                Err(err) => tracing::warn!(error = %err, "span shutdown did not finish"),
            }
        }
        if let Some(runtime) = self.runtime {
            runtime.shutdown_background();
        }
    }
}

/// `RUST_LOG`: the log filter (default `info`).
pub const RUST_LOG: &str = "RUST_LOG";

/// What [`init`] starts from, read before anything starts: the tracing mode, `RUST_LOG`, and in
/// `otel` mode (only: the other modes use none of them) the `OTEL_*` settings.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The tracing mode.
    pub mode: TracingMode,
    /// The `OTEL_*` settings, in `otel` mode.
    pub settings: Option<Settings>,
    /// `RUST_LOG`, if set.
    pub log_filter: Option<String>,
}

impl Setup {
    /// Reads what `mode` uses from `source`.
    pub fn read(mode: TracingMode, source: &(impl Source + ?Sized)) -> Self {
        let settings = (mode == TracingMode::Otel).then(|| Settings::from_source(source));
        Self { mode, settings, log_filter: source.get(RUST_LOG) }
    }
}

/// Sets up logging and, in `otel` mode, the tracer provider of `identity`. Invalid values were
/// replaced by defaults when read; they are logged here as warnings. Nothing here stops the
/// service.
pub fn init(identity: &Identity, setup: &Setup) -> Telemetry {
    let (mode, settings) = (setup.mode, setup.settings.as_ref().filter(|s| !s.sdk_disabled));
    let mut warnings = setup.settings.as_ref().map(|s| s.warnings.clone()).unwrap_or_default();
    let (provider, runtime) = match settings {
        Some(settings) if mode == TracingMode::Otel => provider(identity, settings, &mut warnings),
        _ => (None, None),
    };
    install_subscriber(provider.as_ref(), setup.log_filter.as_deref());

    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    let spans = match (provider.as_ref(), settings) {
        (Some(provider), Some(settings)) => {
            let propagators: Vec<_> = settings.propagators.iter().map(|kind| kind.as_str()).collect();
            let exporters: Vec<_> = settings
                .exporters
                .iter()
                .map(|kind| match kind {
                    ExporterKind::Otlp => format!("otlp {:?} {}", settings.protocol, settings.endpoint),
                    ExporterKind::Console => "console".to_owned(),
                })
                .collect();
            tracing::info!(
                service = identity.service,
                version = %identity.version,
                propagators = %propagators.join(","),
                exporters = %if exporters.is_empty() { "none".to_owned() } else { exporters.join(", ") },
                sampler = ?settings.sampler,
                fetch_spans = settings.fetch_spans,
                "tracing: otel"
            );
            Some(Spans {
                tracer: tracer(provider),
                propagators: settings.propagators.clone(),
                fetch_spans: settings.fetch_spans,
            })
        }
        _ if mode == TracingMode::None => {
            tracing::info!("tracing: none (no trace context is forwarded, no spans)");
            None
        }
        _ => {
            if mode == TracingMode::Otel {
                tracing::info!(
                    "tracing: propagate (OTEL_SDK_DISABLED=true: headers are forwarded, no spans)"
                );
            } else {
                tracing::info!("tracing: propagate (headers are forwarded, no spans)");
            }
            None
        }
    };
    Telemetry { spans, provider, runtime }
}

/// The tracer of this project's spans: the request's and the calls' (made directly) and the
/// application's own (through the bridge) share its scope.
fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::SdkTracer {
    provider.tracer("bookinfo")
}

fn provider(
    identity: &Identity,
    settings: &Settings,
    warnings: &mut Vec<String>,
) -> (Option<SdkTracerProvider>, Option<tokio::runtime::Runtime>) {
    // Built from the settings, not the SDK's detectors, which would read the process
    // environment behind the configuration's back. The name: OTEL_SERVICE_NAME, else
    // OTEL_RESOURCE_ATTRIBUTES' service.name, else the service's own, as the specification orders.
    let attribute = |key: &str| settings.resource_attributes.iter().find(|(k, _)| k == key);
    let service_name = (settings.service_name.clone())
        .or_else(|| attribute("service.name").map(|(_, v)| v.clone()))
        .unwrap_or_else(|| identity.service.to_owned());
    let resource = Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes(
            settings.resource_attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        )
        .with_attribute(KeyValue::new("service.version", identity.version.clone()))
        .with_service_name(service_name);
    let mut runtime = None;
    let mut exports = Vec::new();
    for kind in &settings.exporters {
        match kind {
            ExporterKind::Console => exports.push(batch(ConsoleExporter::default(), settings)),
            ExporterKind::Otlp
                if settings.protocol == Protocol::HttpProtobuf
                    && settings.http_exporter == HttpExporter::Stock =>
            {
                match stock_http(settings) {
                    Ok(exporter) => exports.push(batch(exporter, settings)),
                    Err(err) => warnings.push(format!("spans are not exported: {err}")),
                }
            }
            ExporterKind::Otlp if settings.protocol == Protocol::HttpProtobuf => {
                let exporter = otlp::HttpExporter::new(
                    &settings.endpoint,
                    settings.export_timeout,
                    &settings.headers,
                    settings.gzip,
                );
                match exporter {
                    Ok(exporter) => exports.push(batch(exporter, settings)),
                    Err(err) => warnings.push(format!("spans are not exported: {err}")),
                }
            }
            ExporterKind::Otlp => match grpc(settings, &mut runtime) {
                Ok(exporter) => exports.push(batch(exporter, settings)),
                Err(err) => warnings.push(format!("spans are not exported: {err}")),
            },
        }
    }
    // One processor: the SDK hands each of several a copy of every span that ends.
    let processor = BaggageAttributes::new(settings.baggage_attributes.clone(), exports);
    let builder = SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_sampler(sampler(settings.sampler))
        .with_span_processor(processor);
    (Some(builder.build()), runtime)
}

/// `opentelemetry-otlp`'s own OTLP/HTTP exporter (`BOOKINFO_OTLP_HTTP_EXPORTER=opentelemetry-otlp`),
/// for measuring what [`otlp::HttpExporter`] saves: the same endpoint, deadline and headers, no
/// compression. Its blocking client starts a runtime of its own, which may not be started
/// inside the server's async context: it is built on a thread of its own.
fn stock_http(settings: &Settings) -> Result<opentelemetry_otlp::SpanExporter, otlp::SetupError> {
    let (endpoint, timeout) = (settings.endpoint.clone(), settings.export_timeout);
    let headers: std::collections::HashMap<String, String> = settings.headers.iter().cloned().collect();
    let build = move || {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.as_str())
            .with_timeout(timeout)
            .with_headers(headers)
            .build()
            .map_err(|source| otlp::SetupError::Otlp { endpoint, source })
    };
    std::thread::spawn(build).join().map_err(|_| otlp::SetupError::Thread)?
}

/// The OTLP/gRPC exporter (OTLP/HTTP is [`otlp::HttpExporter`]). gRPC's client needs a Tokio
/// runtime that keeps running while it exports and at shutdown; a small one of its own serves,
/// apart from the server's.
fn grpc(
    settings: &Settings,
    runtime: &mut Option<tokio::runtime::Runtime>,
) -> Result<opentelemetry_otlp::SpanExporter, otlp::SetupError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-grpc")
        .enable_all()
        .build()
        .map_err(otlp::SetupError::Runtime)?;
    let built = {
        let _entered = rt.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&settings.endpoint)
            .with_timeout(settings.export_timeout)
            .build()
    };
    *runtime = Some(rt);
    built.map_err(|source| otlp::SetupError::Otlp { endpoint: settings.endpoint.clone(), source })
}

fn batch(exporter: impl SpanExporter + 'static, settings: &Settings) -> BatchSpanProcessor {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(settings.batch.max_queue_size)
        .with_max_export_batch_size(settings.batch.max_export_batch_size)
        .with_scheduled_delay(settings.batch.scheduled_delay)
        .build();
    BatchSpanProcessor::builder(exporter).with_batch_config(config).build()
}

fn sampler(kind: SamplerKind) -> Sampler {
    match kind {
        SamplerKind::AlwaysOn => Sampler::AlwaysOn,
        SamplerKind::AlwaysOff => Sampler::AlwaysOff,
        SamplerKind::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
        SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerKind::ParentBasedTraceIdRatio(ratio) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
    }
}

/// Logs to standard output, filtered by `rust_log` (default `info`); in `otel` mode the spans
/// of this project's crates also go to the tracer provider (never the SDK's, the exporter's
/// or the HTTP stack's own events, which would feed back into export).
fn install_subscriber(provider: Option<&SdkTracerProvider>, rust_log: Option<&str>) {
    let filter = log_filter(rust_log);
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(true)
        .with_ansi(io::stdout().is_terminal())
        .with_filter(filter);
    let otel = provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer(provider))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            // Spans find their parents through the tracing span tree; putting each entered
            // span's context in OpenTelemetry's thread-local on every poll only costs time.
            .with_context_activation(false)
            .with_filter(ours())
    });
    // Events outside any `tracing` span go to the request's span, as the bridge does inside one.
    let events = provider.map(|_| events::OnCurrentSpan.with_filter(ours()));
    // A second call (tests) finds a subscriber installed already; the first one stays.
    let _ = tracing_subscriber::registry().with(fmt).with(otel).with(events).try_init();
}

/// This project's own spans and events, which alone become OpenTelemetry data.
fn ours() -> Targets {
    Targets::new().with_target("bookinfo", Level::INFO)
}

/// Where actix-http reports each request it cannot parse, at ERROR level. The client gets its
/// 400; the log only hears of it when asked for debug, or else any client could flood it.
const PARSE_ERRORS: &str = "actix_http::h1::dispatcher";

/// `RUST_LOG`'s filter (`info` when unset or invalid), quiet about malformed requests unless it
/// asks for `debug` or more everywhere, or names actix-http itself.
fn log_filter(rust_log: Option<&str>) -> EnvFilter {
    let spec = rust_log.unwrap_or("info");
    let filter = EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let verbose =
        spec.split(',').any(|d| matches!(d.trim().to_ascii_lowercase().as_str(), "debug" | "trace"));
    if verbose || spec.contains("actix_http") {
        return filter;
    }
    match format!("{PARSE_ERRORS}=off").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Logging only, filtered by `RUST_LOG` of the process, for programs and tests that trace
/// nothing.
pub fn init_logging() {
    install_subscriber(None, bookinfo_config::Env.get(RUST_LOG).as_deref());
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_sdk::trace::SpanExporter as _;
    use prost::Message;

    use super::*;
    use crate::otlp::encode::tests::spans;
    use crate::otlp::tests::collector;

    #[test]
    fn the_stock_http_exporter_sends_what_ours_sends() {
        let (url, collector) = collector(&["HTTP/1.1 200 OK"]);
        let settings = Settings {
            endpoint: url,
            export_timeout: Duration::from_secs(5),
            http_exporter: HttpExporter::Stock,
            ..Settings::from_source(&[("BOOKINFO_OTLP_HTTP_EXPORTER", "opentelemetry-otlp")])
        };
        let exporter = stock_http(&settings).unwrap();
        // As the batch processor's own thread does it: outside any async runtime, which the
        // blocking client may not run in.
        let mut export = std::pin::pin!(exporter.export(spans()));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let result = loop {
            if let std::task::Poll::Ready(result) = export.as_mut().poll(&mut cx) {
                break result;
            }
            std::thread::yield_now();
        };
        result.unwrap();
        let seen = collector.join().unwrap();
        assert_eq!(seen.len(), 1);
        let (head, body) = &seen[0];
        assert!(head.contains("content-type: application/x-protobuf"), "{head}");
        let theirs = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let ours = ExportTraceServiceRequest::decode(
            otlp::encode::encode(&(Vec::new(), String::new()), &spans()).unwrap().as_slice(),
        )
        .unwrap();
        let names = |request: &ExportTraceServiceRequest| -> Vec<String> {
            let spans = request.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
            spans.map(|span| span.name.clone()).collect()
        };
        assert_eq!(names(&theirs), names(&ours));
        assert!(!names(&ours).is_empty());
    }
}
