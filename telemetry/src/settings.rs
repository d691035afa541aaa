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
        let mut warnings = Vec::new();
        let mut warn = |name: &str, value: &str, used: &str| {
            warnings.push(format!("{name}={value:?} is not valid; using {used}"));
        };

        let mut flag = |name: &str| match source.get(name) {
            None => false,
            Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
            Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
            Some(v) => {
                warn(name, &v, "false");
                false
            }
        };
        let sdk_disabled = flag(OTEL_SDK_DISABLED);
        let fetch_spans = flag(BOOKINFO_FETCH_SPANS);

        let propagators = match source.get(OTEL_PROPAGATORS) {
            None => PropagatorKind::DEFAULT.to_vec(),
            Some(list) => {
                let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
                let mut kinds = Vec::new();
                for name in &names {
                    match name.parse::<PropagatorKind>().ok() {
                        Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                        Some(_) => {}
                        None if *name == "none" => {}
                        None => warn(OTEL_PROPAGATORS, name, "the others"),
                    }
                }
                if kinds.is_empty() && !names.contains(&"none") {
                    warn(OTEL_PROPAGATORS, &list, "tracecontext,baggage,b3multi");
                    kinds = PropagatorKind::DEFAULT.to_vec();
                }
                kinds
            }
        };

        let exporters = match source.get(OTEL_TRACES_EXPORTER) {
            None => vec![ExporterKind::Otlp],
            Some(list) => {
                let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
                let mut kinds = Vec::new();
                for name in &names {
                    let kind = match *name {
                        "otlp" => ExporterKind::Otlp,
                        // `logging` is the old name of `console`.
                        "console" | "logging" => ExporterKind::Console,
                        "none" => continue,
                        other => {
                            warn(OTEL_TRACES_EXPORTER, other, "the others");
                            continue;
                        }
                    };
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                if kinds.is_empty() && !names.contains(&"none") {
                    warn(OTEL_TRACES_EXPORTER, &list, "otlp");
                    kinds.push(ExporterKind::Otlp);
                }
                kinds
            }
        };

        let protocol =
            match first_set(source, [OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL]) {
                None => Protocol::HttpProtobuf,
                Some((_, v)) if v.trim() == "grpc" => Protocol::Grpc,
                Some((_, v)) if v.trim() == "http/protobuf" => Protocol::HttpProtobuf,
                Some((name, v)) => {
                    warn(name, &v, "http/protobuf (http/json is not supported)");
                    Protocol::HttpProtobuf
                }
            };

        let default_endpoint = match protocol {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318/v1/traces",
        };
        let endpoint =
            match (source.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), source.get(OTEL_EXPORTER_OTLP_ENDPOINT)) {
                (Some(url), _) if is_url(&url) => url,
                (Some(url), _) => {
                    warn(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, &url, default_endpoint);
                    default_endpoint.to_owned()
                }
                (None, Some(url)) if is_url(&url) => match protocol {
                    Protocol::Grpc => url,
                    // The signal path is appended to the base URL, per the specification.
                    Protocol::HttpProtobuf => format!("{}/v1/traces", url.trim_end_matches('/')),
                },
                (None, Some(url)) => {
                    warn(OTEL_EXPORTER_OTLP_ENDPOINT, &url, default_endpoint);
                    default_endpoint.to_owned()
                }
                (None, None) => default_endpoint.to_owned(),
            };

        let headers = match first_set(source, [OTEL_EXPORTER_OTLP_TRACES_HEADERS, OTEL_EXPORTER_OTLP_HEADERS])
        {
            None => Vec::new(),
            Some((name, list)) => headers(&list).unwrap_or_else(|| {
                warn(name, "(not shown: it may hold a secret)", "no headers");
                Vec::new()
            }),
        };
        let gzip = match first_set(
            source,
            [OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, OTEL_EXPORTER_OTLP_COMPRESSION],
        ) {
            None => false,
            Some((_, v)) if v.trim() == "gzip" => true,
            Some((_, v)) if v.trim() == "none" => false,
            Some((name, v)) => {
                warn(name, &v, "none");
                false
            }
        };

        let mut millis = |name: &str, default: Duration| match source.get(name) {
            None => default,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) => Duration::from_millis(ms),
                Err(_) => {
                    warn(name, &v, &format!("{}ms", default.as_millis()));
                    default
                }
            },
        };
        let otlp_timeout = [OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT]
            .into_iter()
            .find(|name| source.get(name).is_some())
            .map_or(Duration::from_secs(10), |name| millis(name, Duration::from_secs(10)));
        // The SDK's batch processor thread ignores OTEL_BSP_EXPORT_TIMEOUT; the exporter's own
        // deadline enforces it instead.
        let export_timeout = otlp_timeout.min(millis(OTEL_BSP_EXPORT_TIMEOUT, Duration::from_secs(30)));
        let scheduled_delay = millis(OTEL_BSP_SCHEDULE_DELAY, Duration::from_secs(5));

        let mut count = |name: &str, default: usize| match source.get(name) {
            None => default,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    warn(name, &v, &default.to_string());
                    default
                }
            },
        };
        let max_queue_size = count(OTEL_BSP_MAX_QUEUE_SIZE, 2048);
        let max_export_batch_size = count(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512).min(max_queue_size);

        let sampler = sampler(source, &mut warn);

        // As the specification asks, a value that does not decode is discarded whole.
        let resource_attributes = match source.get(OTEL_RESOURCE_ATTRIBUTES) {
            None => Vec::new(),
            Some(list) => key_values(&list).unwrap_or_else(|| {
                warn(OTEL_RESOURCE_ATTRIBUTES, &list, "no attributes");
                Vec::new()
            }),
        };

        Settings {
            sdk_disabled,
            service_name: source.get(OTEL_SERVICE_NAME),
            resource_attributes,
            propagators,
            exporters,
            protocol,
            endpoint,
            export_timeout,
            headers,
            gzip,
            sampler,
            batch: Batch { max_queue_size, scheduled_delay, max_export_batch_size },
            baggage_attributes: source
                .string_or(BOOKINFO_BAGGAGE_ATTRIBUTES, "user")
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(str::to_owned)
                .collect(),
            fetch_spans,
            warnings,
        }
    }
}

fn sampler(source: &(impl Source + ?Sized), warn: &mut impl FnMut(&str, &str, &str)) -> SamplerKind {
    let ratio = |warn: &mut dyn FnMut(&str, &str, &str)| match source.get(OTEL_TRACES_SAMPLER_ARG) {
        None => 1.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                warn(OTEL_TRACES_SAMPLER_ARG, &v, "1.0");
                1.0
            }
        },
    };
    match source.get(OTEL_TRACES_SAMPLER).as_deref().map(str::trim) {
        None | Some("parentbased_always_on") => SamplerKind::ParentBasedAlwaysOn,
        Some("always_on") => SamplerKind::AlwaysOn,
        Some("always_off") => SamplerKind::AlwaysOff,
        Some("traceidratio") => SamplerKind::TraceIdRatio(ratio(warn)),
        Some("parentbased_always_off") => SamplerKind::ParentBasedAlwaysOff,
        Some("parentbased_traceidratio") => SamplerKind::ParentBasedTraceIdRatio(ratio(warn)),
        Some(other) => {
            warn(OTEL_TRACES_SAMPLER, other, "parentbased_always_on");
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

/// `key=value,key=value` with percent-encoded values, as the specification writes exporter
/// headers; `None` when an entry is not a valid header.
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
