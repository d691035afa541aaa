//! The standard OpenTelemetry variables, read once at start.
//!
//! The Rust SDK reads some of these itself and ignores others (`OTEL_SDK_DISABLED`,
//! `OTEL_PROPAGATORS`, `OTEL_TRACES_EXPORTER`); all are read here, in one place, and handed to
//! the SDK explicitly. An invalid value never stops a service: it is reported as a warning and
//! the specification's default (or this project's, where it has one) is used.

use std::time::Duration;

use bookinfo_config::Source;
use bookinfo_propagation::PropagatorKind;
use http::Uri;

/// `OTEL_SDK_DISABLED`: `true` turns the SDK off (the service then only forwards headers).
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// `OTEL_SERVICE_NAME`: overrides the service name.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs, comma-separated (values percent-encoded),
/// added to the resource, such as the pod's name and namespace.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// `OTEL_PROPAGATORS`: `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `none`.
pub const OTEL_PROPAGATORS: &str = "OTEL_PROPAGATORS";
/// `OTEL_TRACES_EXPORTER`: `otlp`, `console`, `none`.
pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio`, `parentbased_*`.
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// `OTEL_TRACES_SAMPLER_ARG`: the ratio of the `traceidratio` samplers.
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: collector base URL.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: trace endpoint URL, used as given.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: the same, for traces only.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: export deadline in milliseconds.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`: the same, for traces only.
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs, comma-separated (values percent-encoded),
/// sent with every export, such as a collector's token.
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`: the same, for traces only.
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none` (OTLP/HTTP).
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`: the same, for traces only.
pub const OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
/// `OTEL_BSP_SCHEDULE_DELAY`: milliseconds between two exports.
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
/// `OTEL_BSP_EXPORT_TIMEOUT`: longest an export may take, in milliseconds.
pub const OTEL_BSP_EXPORT_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";
/// `OTEL_BSP_MAX_QUEUE_SIZE`: spans kept waiting for export; more are dropped.
pub const OTEL_BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export.
pub const OTEL_BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
/// `BOOKINFO_BAGGAGE_ATTRIBUTES`: baggage members copied onto every span as `baggage.<key>`
/// (default `user`), so a trace shows why it was routed as it was.
pub const BOOKINFO_BAGGAGE_ATTRIBUTES: &str = "BOOKINFO_BAGGAGE_ATTRIBUTES";
/// `BOOKINFO_OTLP_HTTP_EXPORTER`: `bookinfo` (the default: this project's encoder, see
/// [`crate::otlp`]) or `opentelemetry-otlp` (that crate's own exporter, for comparison).
pub const BOOKINFO_OTLP_HTTP_EXPORTER: &str = "BOOKINFO_OTLP_HTTP_EXPORTER";
/// `BOOKINFO_FETCH_SPANS`: `true` adds an INTERNAL span around each of a handler's upstream
/// fetches (`fetch details`, `fetch reviews`, `fetch ratings`). Off by default: each holds
/// one CLIENT span (two when productpage retries reviews) and says nothing the CLIENT span
/// does not, at the cost of a span.
pub const BOOKINFO_FETCH_SPANS: &str = "BOOKINFO_FETCH_SPANS";

/// Where spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    /// OTLP to a collector.
    Otlp,
    /// One line per span on standard output.
    Console,
}

/// Which OTLP/HTTP exporter sends the spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpExporter {
    /// This project's: the protobuf written straight from the SDK's span data.
    #[default]
    Own,
    /// `opentelemetry-otlp`'s, through `opentelemetry-proto`'s types (no compression).
    Stock,
}

bookinfo_config::named!(HttpExporter, "OTLP/HTTP exporter", { Own => "bookinfo", Stock => "opentelemetry-otlp" });

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC, port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, port 4318.
    HttpProtobuf,
}

/// Which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// A share of traces, by trace id.
    TraceIdRatio(f64),
    /// The caller's decision; every new trace. The default: the mesh decides.
    ParentBasedAlwaysOn,
    /// The caller's decision; no new trace.
    ParentBasedAlwaysOff,
    /// The caller's decision; a share of new traces.
    ParentBasedTraceIdRatio(f64),
}

/// The batch span processor's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Spans waiting at most; beyond, new spans are dropped (and counted).
    pub max_queue_size: usize,
    /// Time between two exports.
    pub scheduled_delay: Duration,
    /// Spans per export.
    pub max_export_batch_size: usize,
}

/// Every OpenTelemetry setting of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `OTEL_SDK_DISABLED=true`.
    pub sdk_disabled: bool,
    /// `OTEL_SERVICE_NAME`, if set.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// Propagators, in order; empty for `none`.
    pub propagators: Vec<PropagatorKind>,
    /// Exporters; empty for `none`.
    pub exporters: Vec<ExporterKind>,
    /// OTLP transport.
    pub protocol: Protocol,
    /// Which OTLP/HTTP exporter.
    pub http_exporter: HttpExporter,
    /// OTLP trace endpoint (full URL for HTTP, base URL for gRPC).
    pub endpoint: String,
    /// Deadline of one export.
    pub export_timeout: Duration,
    /// Headers sent with every OTLP/HTTP export (the gRPC exporter reads the variables itself).
    pub headers: Vec<(String, String)>,
    /// Whether OTLP/HTTP bodies are gzip-compressed.
    pub gzip: bool,
    /// Sampler.
    pub sampler: SamplerKind,
    /// Batch limits.
    pub batch: Batch,
    /// Baggage members recorded on spans.
    pub baggage_attributes: Vec<String>,
    /// An INTERNAL span around each upstream fetch (`BOOKINFO_FETCH_SPANS`).
    pub fetch_spans: bool,
    /// What was invalid and replaced by a default, one sentence each.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Reads every `OTEL_*` variable above from `source`.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Self {
        let warnings = &mut Warnings::default();
        let protocol = protocol(source, warnings);
        let export_timeout = export_timeout(source, warnings);
        Settings {
            sdk_disabled: flag(source, OTEL_SDK_DISABLED, warnings),
            service_name: source.get(OTEL_SERVICE_NAME),
            resource_attributes: resource_attributes(source, warnings),
            propagators: propagators(source, warnings),
            exporters: exporters(source, warnings),
            protocol,
            http_exporter: http_exporter(source, warnings),
            endpoint: endpoint(source, protocol, warnings),
            export_timeout,
            headers: export_headers(source, warnings),
            gzip: gzip(source, warnings),
            sampler: sampler(source, warnings),
            batch: batch(source, warnings),
            baggage_attributes: source
                .string_or(BOOKINFO_BAGGAGE_ATTRIBUTES, "user")
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned)
                .collect(),
            fetch_spans: flag(source, BOOKINFO_FETCH_SPANS, warnings),
            warnings: std::mem::take(&mut warnings.0),
        }
    }
}

/// The values that were invalid, each replaced by a default, one sentence each.
#[derive(Default)]
struct Warnings(Vec<String>);

impl Warnings {
    /// `name=value` is not valid; `used` is used instead.
    fn invalid(&mut self, name: &str, value: &str, used: &str) {
        self.0.push(format!("{name}={value:?} is not valid; using {used}"));
    }
}

/// A `true`/`false` variable (any letter case), false when unset.
fn flag(source: &(impl Source + ?Sized), name: &str, warnings: &mut Warnings) -> bool {
    match source.get(name) {
        None => false,
        Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
        Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
        Some(v) => {
            warnings.invalid(name, &v, "false");
            false
        }
    }
}

/// A list of names (`OTEL_PROPAGATORS`, `OTEL_TRACES_EXPORTER`): each one `kind` knows, once,
/// in order; `none` alone is the empty list; an unknown name is reported and left out; a list
/// of unknown names only gives `default`.
fn kinds<T: PartialEq + Clone>(
    source: &(impl Source + ?Sized),
    name: &str,
    default: &[T],
    (kind, name_of): (impl Fn(&str) -> Option<T>, impl Fn(&T) -> &'static str),
    warnings: &mut Warnings,
) -> Vec<T> {
    let Some(list) = source.get(name) else { return default.to_vec() };
    let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let mut kinds = Vec::new();
    for entry in &names {
        match kind(entry) {
            Some(found) if !kinds.contains(&found) => kinds.push(found),
            Some(_) => {}
            None if *entry == "none" => {}
            None => warnings.invalid(name, entry, "the others"),
        }
    }
    if kinds.is_empty() && !names.contains(&"none") {
        let used: Vec<&str> = default.iter().map(name_of).collect();
        warnings.invalid(name, &list, &used.join(","));
        return default.to_vec();
    }
    kinds
}

fn propagators(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Vec<PropagatorKind> {
    let named = (|name: &str| name.parse().ok(), |kind: &PropagatorKind| kind.as_str());
    kinds(source, OTEL_PROPAGATORS, &PropagatorKind::DEFAULT, named, warnings)
}

fn exporters(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Vec<ExporterKind> {
    let kind = |name: &str| match name {
        "otlp" => Some(ExporterKind::Otlp),
        // `logging` is the old name of `console`.
        "console" | "logging" => Some(ExporterKind::Console),
        _ => None,
    };
    let name_of = |kind: &ExporterKind| match kind {
        ExporterKind::Otlp => "otlp",
        ExporterKind::Console => "console",
    };
    kinds(source, OTEL_TRACES_EXPORTER, &[ExporterKind::Otlp], (kind, name_of), warnings)
}

fn protocol(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Protocol {
    match first_set(source, [OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL]) {
        None => Protocol::HttpProtobuf,
        Some((_, v)) if v.trim() == "grpc" => Protocol::Grpc,
        Some((_, v)) if v.trim() == "http/protobuf" => Protocol::HttpProtobuf,
        Some((name, v)) => {
            warnings.invalid(name, &v, "http/protobuf (http/json is not supported)");
            Protocol::HttpProtobuf
        }
    }
}

fn http_exporter(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> HttpExporter {
    match source.get(BOOKINFO_OTLP_HTTP_EXPORTER) {
        None => HttpExporter::Own,
        Some(v) => v.parse().unwrap_or_else(|_| {
            warnings.invalid(BOOKINFO_OTLP_HTTP_EXPORTER, &v, "bookinfo");
            HttpExporter::Own
        }),
    }
}

/// The trace endpoint: `_TRACES_ENDPOINT` as given, else the base endpoint with the signal's
/// path (HTTP), else the protocol's default.
fn endpoint(source: &(impl Source + ?Sized), protocol: Protocol, warnings: &mut Warnings) -> String {
    let default_endpoint = match protocol {
        Protocol::Grpc => "http://localhost:4317",
        Protocol::HttpProtobuf => "http://localhost:4318/v1/traces",
    };
    match (source.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), source.get(OTEL_EXPORTER_OTLP_ENDPOINT)) {
        (Some(url), _) if is_url(&url) => url,
        (Some(url), _) => {
            warnings.invalid(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, &url, default_endpoint);
            default_endpoint.to_owned()
        }
        (None, Some(url)) if is_url(&url) => match protocol {
            Protocol::Grpc => url,
            // The signal path is appended to the base URL, per the specification.
            Protocol::HttpProtobuf => format!("{}/v1/traces", url.trim_end_matches('/')),
        },
        (None, Some(url)) => {
            warnings.invalid(OTEL_EXPORTER_OTLP_ENDPOINT, &url, default_endpoint);
            default_endpoint.to_owned()
        }
        (None, None) => default_endpoint.to_owned(),
    }
}

fn export_headers(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Vec<(String, String)> {
    match first_set(source, [OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_HEADERS]) {
        None => Vec::new(),
        Some((name, list)) => headers(&list).unwrap_or_else(|| {
            warnings.invalid(name, "(not shown: it may hold a secret)", "no headers");
            Vec::new()
        }),
    }
}

fn gzip(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> bool {
    match first_set(source, [OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, OTEL_EXPORTER_OTLP_COMPRESSION]) {
        None => false,
        Some((_, v)) if v.trim() == "gzip" => true,
        Some((_, v)) if v.trim() == "none" => false,
        Some((name, v)) => {
            warnings.invalid(name, &v, "none");
            false
        }
    }
}

/// Milliseconds in `name`, or `default`.
fn millis(
    source: &(impl Source + ?Sized),
    name: &str,
    default: Duration,
    warnings: &mut Warnings,
) -> Duration {
    match source.get(name) {
        None => default,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => {
                warnings.invalid(name, &v, &format!("{}ms", default.as_millis()));
                default
            }
        },
    }
}

/// The deadline of one export: the OTLP timeout, within `OTEL_BSP_EXPORT_TIMEOUT`.
fn export_timeout(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Duration {
    let otlp_timeout = [OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT]
        .into_iter()
        .find(|name| source.get(name).is_some())
        .map_or(Duration::from_secs(10), |name| millis(source, name, Duration::from_secs(10), warnings));
    // The SDK's batch processor thread ignores OTEL_BSP_EXPORT_TIMEOUT; the exporter's own
    // deadline enforces it instead.
    otlp_timeout.min(millis(source, OTEL_BSP_EXPORT_TIMEOUT, Duration::from_secs(30), warnings))
}

fn batch(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Batch {
    let mut count = |name: &str, default: usize| match source.get(name) {
        None => default,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                warnings.invalid(name, &v, &default.to_string());
                default
            }
        },
    };
    let max_queue_size = count(OTEL_BSP_MAX_QUEUE_SIZE, 2048);
    let max_export_batch_size = count(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512).min(max_queue_size);
    let scheduled_delay = millis(source, OTEL_BSP_SCHEDULE_DELAY, Duration::from_secs(5), warnings);
    Batch { max_queue_size, scheduled_delay, max_export_batch_size }
}

/// As the specification asks, a value that does not decode is discarded whole.
fn resource_attributes(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> Vec<(String, String)> {
    match source.get(OTEL_RESOURCE_ATTRIBUTES) {
        None => Vec::new(),
        Some(list) => key_values(&list).unwrap_or_else(|| {
            warnings.invalid(OTEL_RESOURCE_ATTRIBUTES, &list, "no attributes");
            Vec::new()
        }),
    }
}

fn sampler(source: &(impl Source + ?Sized), warnings: &mut Warnings) -> SamplerKind {
    let ratio = |warnings: &mut Warnings| match source.get(OTEL_TRACES_SAMPLER_ARG) {
        None => 1.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                warnings.invalid(OTEL_TRACES_SAMPLER_ARG, &v, "1.0");
                1.0
            }
        },
    };
    match source.get(OTEL_TRACES_SAMPLER).as_deref().map(str::trim) {
        None | Some("parentbased_always_on") => SamplerKind::ParentBasedAlwaysOn,
        Some("always_on") => SamplerKind::AlwaysOn,
        Some("always_off") => SamplerKind::AlwaysOff,
        Some("traceidratio") => SamplerKind::TraceIdRatio(ratio(warnings)),
        Some("parentbased_always_off") => SamplerKind::ParentBasedAlwaysOff,
        Some("parentbased_traceidratio") => SamplerKind::ParentBasedTraceIdRatio(ratio(warnings)),
        Some(other) => {
            warnings.invalid(OTEL_TRACES_SAMPLER, other, "parentbased_always_on");
            SamplerKind::ParentBasedAlwaysOn
        }
    }
}

/// The first of `names` that is set, with its value.
fn first_set<const N: usize>(
    source: &(impl Source + ?Sized),
    names: [&'static str; N],
) -> Option<(&'static str, String)> {
    names.into_iter().find_map(|name| source.get(name).map(|value| (name, value)))
}

/// `key=value` pairs, comma-separated, values percent-encoded (the format of
/// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`); `None` if any entry is not one
/// or does not decode.
fn key_values(list: &str) -> Option<Vec<(String, String)>> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (key, value) = entry.split_once('=')?;
            let key = key.trim();
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8().ok()?;
            (!key.is_empty()).then(|| (key.to_owned(), value.into_owned()))
        })
        .collect()
}

/// The export headers of `list`; `None` when an entry is not a valid header.
fn headers(list: &str) -> Option<Vec<(String, String)>> {
    let pairs = key_values(list)?;
    let valid = pairs.iter().all(|(key, value)| {
        http::header::HeaderName::try_from(key.as_str()).is_ok()
            && http::header::HeaderValue::try_from(value.as_str()).is_ok()
    });
    valid.then_some(pairs)
}

fn is_url(text: &str) -> bool {
    text.parse::<Uri>()
        .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_source(pairs)
    }

    #[test]
    fn defaults_follow_the_specification_and_the_project() {
        let s = settings(&[]);
        assert!(!s.sdk_disabled);
        assert_eq!(s.propagators, PropagatorKind::DEFAULT);
        assert_eq!(s.exporters, [ExporterKind::Otlp]);
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(s.sampler, SamplerKind::ParentBasedAlwaysOn);
        assert_eq!(s.export_timeout, Duration::from_secs(10));
        assert_eq!(
            s.batch,
            Batch {
                max_queue_size: 2048,
                scheduled_delay: Duration::from_secs(5),
                max_export_batch_size: 512
            }
        );
        assert_eq!(s.baggage_attributes, ["user"]);
        assert!(!s.fetch_spans, "no INTERNAL span around a fetch unless asked");
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn fetch_spans_are_switched_on_by_true() {
        assert!(settings(&[(BOOKINFO_FETCH_SPANS, "true")]).fetch_spans);
        let bad = settings(&[(BOOKINFO_FETCH_SPANS, "1")]);
        assert!(!bad.fetch_spans);
        assert_eq!(bad.warnings, [r#"BOOKINFO_FETCH_SPANS="1" is not valid; using false"#]);
    }

    #[test]
    fn baggage_attributes_are_a_list() {
        let s = settings(&[(BOOKINFO_BAGGAGE_ATTRIBUTES, "user, canary,")]);
        assert_eq!(s.baggage_attributes, ["user", "canary"]);
    }

    #[test]
    fn sdk_disabled_reads_true_and_false_in_any_case() {
        assert!(settings(&[(OTEL_SDK_DISABLED, "TRUE")]).sdk_disabled);
        assert!(!settings(&[(OTEL_SDK_DISABLED, "false")]).sdk_disabled);
        let bad = settings(&[(OTEL_SDK_DISABLED, "yes")]);
        assert!(!bad.sdk_disabled);
        assert_eq!(bad.warnings, [r#"OTEL_SDK_DISABLED="yes" is not valid; using false"#]);
    }

    #[test]
    fn propagators_are_read_in_order_and_unknown_ones_reported() {
        let s = settings(&[(OTEL_PROPAGATORS, "b3, jaeger,xray,b3")]);
        assert_eq!(s.propagators, [PropagatorKind::B3, PropagatorKind::Jaeger]);
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("xray"));
        assert!(settings(&[(OTEL_PROPAGATORS, "none")]).propagators.is_empty());
        let all_bad = settings(&[(OTEL_PROPAGATORS, "ottrace")]);
        assert_eq!(all_bad.propagators, PropagatorKind::DEFAULT);
    }

    #[test]
    fn exporters_are_otlp_console_or_none() {
        assert_eq!(settings(&[(OTEL_TRACES_EXPORTER, "console")]).exporters, [ExporterKind::Console]);
        assert_eq!(
            settings(&[(OTEL_TRACES_EXPORTER, "otlp,logging")]).exporters,
            [ExporterKind::Otlp, ExporterKind::Console]
        );
        assert!(settings(&[(OTEL_TRACES_EXPORTER, "none")]).exporters.is_empty());
        let zipkin = settings(&[(OTEL_TRACES_EXPORTER, "zipkin")]);
        assert_eq!(zipkin.exporters, [ExporterKind::Otlp]);
        assert_eq!(zipkin.warnings.len(), 2);
    }

    #[test]
    fn endpoints_follow_the_specification_per_protocol() {
        let http = settings(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://jaeger-collector.istio-system:4318/")]);
        assert_eq!(http.endpoint, "http://jaeger-collector.istio-system:4318/v1/traces");
        let grpc = settings(&[
            (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://jaeger-collector.istio-system:4317"),
        ]);
        assert_eq!(
            (grpc.protocol, grpc.endpoint.as_str()),
            (Protocol::Grpc, "http://jaeger-collector.istio-system:4317")
        );
        assert_eq!(settings(&[(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")]).endpoint, "http://localhost:4317");
        let signal = settings(&[
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://a:4318"),
            (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://b:9999/custom"),
        ]);
        assert_eq!(signal.endpoint, "http://b:9999/custom");
        let traces_protocol = settings(&[
            (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "http/protobuf"),
        ]);
        assert_eq!(traces_protocol.protocol, Protocol::HttpProtobuf);
    }

    #[test]
    fn invalid_endpoints_and_protocols_fall_back_with_a_warning() {
        let s = settings(&[
            (OTEL_EXPORTER_OTLP_ENDPOINT, "not a url"),
            (OTEL_EXPORTER_OTLP_PROTOCOL, "http/json"),
        ]);
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
    }

    #[test]
    fn a_list_of_unknown_names_falls_back_to_the_default_and_says_which() {
        let s = settings(&[("OTEL_PROPAGATORS", "xray"), ("OTEL_TRACES_EXPORTER", "zipkin,jaeger")]);
        assert_eq!(s.propagators, PropagatorKind::DEFAULT);
        assert_eq!(s.exporters, [ExporterKind::Otlp]);
        assert!(
            s.warnings
                .iter()
                .any(|w| w == r#"OTEL_PROPAGATORS="xray" is not valid; using tracecontext,baggage,b3multi"#),
            "{:?}",
            s.warnings
        );
        assert!(
            s.warnings
                .iter()
                .any(|w| w == r#"OTEL_TRACES_EXPORTER="zipkin,jaeger" is not valid; using otlp"#),
            "{:?}",
            s.warnings
        );
        let s = settings(&[("BOOKINFO_OTLP_HTTP_EXPORTER", "OpenTelemetry-OTLP")]);
        assert_eq!(s.http_exporter, HttpExporter::Stock);
        assert!(settings(&[("BOOKINFO_OTLP_HTTP_EXPORTER", "fast")]).warnings[0].ends_with("using bookinfo"));
    }

    #[test]
    fn resource_attributes_are_decoded_and_a_bad_list_is_discarded_whole() {
        let s = settings(&[("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=p-1, team=a%2Cb,service.version=v9")]);
        let expected = [("k8s.pod.name", "p-1"), ("team", "a,b"), ("service.version", "v9")];
        assert_eq!(s.resource_attributes, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);

        let s = settings(&[("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=p-1,=nameless")]);
        assert!(s.resource_attributes.is_empty());
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with("OTEL_RESOURCE_ATTRIBUTES="), "{:?}", s.warnings);
    }

    #[test]
    fn export_headers_are_decoded_and_compression_is_gzip_or_none() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc, x-tenant = bookinfo"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]);
        let expected = [("authorization", "Bearer abc"), ("x-tenant", "bookinfo")];
        assert_eq!(s.headers, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
        assert!(s.gzip);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);

        // The traces-only variables win; a bad list or compression is reported, never leaked.
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "token=s3cret,no-equals-sign"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"),
        ]);
        assert!(s.headers.is_empty() && !s.gzip);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].starts_with("OTEL_EXPORTER_OTLP_TRACES_HEADERS="), "{:?}", s.warnings);
        assert!(!s.warnings[0].contains("s3cret"));
        assert!(s.warnings[1].starts_with("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=\"zstd\""));
        assert!(!settings(&[]).gzip && settings(&[]).headers.is_empty());
    }

    #[test]
    fn samplers_and_their_ratio() {
        assert_eq!(settings(&[(OTEL_TRACES_SAMPLER, "always_off")]).sampler, SamplerKind::AlwaysOff);
        assert_eq!(
            settings(&[(OTEL_TRACES_SAMPLER, "parentbased_traceidratio"), (OTEL_TRACES_SAMPLER_ARG, "0.25")])
                .sampler,
            SamplerKind::ParentBasedTraceIdRatio(0.25)
        );
        let bad_ratio = settings(&[(OTEL_TRACES_SAMPLER, "traceidratio"), (OTEL_TRACES_SAMPLER_ARG, "2")]);
        assert_eq!(bad_ratio.sampler, SamplerKind::TraceIdRatio(1.0));
        assert_eq!(bad_ratio.warnings.len(), 1);
        let unknown = settings(&[(OTEL_TRACES_SAMPLER, "jaeger_remote")]);
        assert_eq!(unknown.sampler, SamplerKind::ParentBasedAlwaysOn);
        assert_eq!(unknown.warnings.len(), 1);
    }

    #[test]
    fn batch_limits_and_timeouts() {
        let s = settings(&[
            (OTEL_BSP_MAX_QUEUE_SIZE, "100"),
            (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "500"),
            (OTEL_BSP_SCHEDULE_DELAY, "250"),
            (OTEL_EXPORTER_OTLP_TIMEOUT, "2000"),
            (OTEL_BSP_EXPORT_TIMEOUT, "1500"),
        ]);
        assert_eq!(
            s.batch,
            Batch {
                max_queue_size: 100,
                scheduled_delay: Duration::from_millis(250),
                max_export_batch_size: 100
            }
        );
        assert_eq!(s.export_timeout, Duration::from_millis(1500));
        let bad = settings(&[(OTEL_BSP_MAX_QUEUE_SIZE, "-1"), (OTEL_BSP_SCHEDULE_DELAY, "5s")]);
        assert_eq!(bad.batch.max_queue_size, 2048);
        assert_eq!(bad.batch.scheduled_delay, Duration::from_secs(5));
        assert_eq!(bad.warnings.len(), 2);
    }
}
