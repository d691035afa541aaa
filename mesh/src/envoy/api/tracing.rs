//! The connection manager's tracing (`HttpConnectionManager.Tracing`) and the two tracers it
//! can carry: Zipkin and OpenTelemetry.

use std::time::Duration;

use serde::Serialize;

use super::{Extension, ExtensionConfig, proto};

/// `HttpConnectionManager.Tracing`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tracing {
    /// Share of requests traced when the client asks to (`x-client-trace-id`).
    pub client_sampling: Percent,
    /// Share of requests traced when no one has decided yet.
    pub random_sampling: Percent,
    /// Share of the traced requests whose spans are kept.
    pub overall_sampling: Percent,
    /// Tags added to every span.
    pub custom_tags: Vec<CustomTag>,
    /// The tracer.
    pub provider: TracingProvider,
    /// Whether the router makes a span of its own for the upstream request (Istio's gateways
    /// do; left out, the sidecars' choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spawn_upstream_span: Option<bool>,
}

/// `type.v3.Percent`: 0-100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percent {
    /// The share.
    pub value: f64,
}

/// `type.tracing.v3.CustomTag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomTag {
    /// The tag's name.
    pub tag: String,
    /// Where its value comes from.
    #[serde(flatten)]
    pub value: TagValue,
}

/// Where a custom tag's value comes from (`CustomTag.type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TagValue {
    /// Written in the configuration.
    Literal {
        /// The value.
        value: String,
    },
    /// A request header.
    RequestHeader {
        /// The header.
        name: String,
    },
    /// A value of the request's dynamic metadata, which a filter may set (no tag when none
    /// did).
    Metadata {
        /// Whose metadata: the request's.
        kind: MetadataKind,
        /// Where in it.
        metadata_key: MetadataKey,
    },
    /// A formatter string, such as `%UPSTREAM_METADATA(istio:workload)%`, rendered when the
    /// span ends (Istio's waypoint tags).
    Value(String),
}

/// `type.metadata.v3.MetadataKind`: whose metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataKind {
    /// The request's.
    Request {},
}

/// `type.metadata.v3.MetadataKey`: a filter's namespace of metadata and a path in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetadataKey {
    /// The filter's namespace, such as `envoy.filters.http.rbac`.
    pub key: String,
    /// The keys down to the value.
    pub path: Vec<PathSegment>,
}

/// `MetadataKey.PathSegment`: one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathSegment {
    /// The key.
    pub key: String,
}

/// The tracer (`Tracing.provider`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TracingProvider {
    /// Envoy's Zipkin tracer.
    Zipkin(Extension<ZipkinConfig>),
    /// Envoy's OpenTelemetry tracer.
    OpenTelemetry(Extension<OpenTelemetryConfig>),
}

/// `config.trace.v3.ZipkinConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZipkinConfig {
    /// Where spans go.
    pub collector_service: HttpService,
    /// In which format.
    pub collector_endpoint_version: CollectorEndpointVersion,
    /// Whether trace ids are 128 bits long (as W3C's), not 64.
    pub trace_id_128bit: bool,
    /// Whether the client and server of a hop share one span (Istio's proxies do not).
    pub shared_span_context: bool,
    /// Which headers carry the context besides B3 (left out: B3 alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_context_option: Option<TraceContextOption>,
}

impl ExtensionConfig for ZipkinConfig {
    const NAME: &'static str = "envoy.tracers.zipkin";
    const TYPE: &'static str = "envoy.config.trace.v3.ZipkinConfig";
}

/// `ZipkinConfig.CollectorEndpointVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CollectorEndpointVersion {
    /// Zipkin v2 JSON.
    HttpJson,
}

/// `ZipkinConfig.TraceContextOption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceContextOption {
    /// Read B3, then W3C trace context; write both.
    UseB3WithW3cPropagation,
}

/// `config.trace.v3.OpenTelemetryConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenTelemetryConfig {
    /// Where spans go, as OTLP/HTTP.
    pub http_service: HttpService,
    /// The `service.name` of the spans.
    pub service_name: String,
}

impl ExtensionConfig for OpenTelemetryConfig {
    const NAME: &'static str = "envoy.tracers.opentelemetry";
    const TYPE: &'static str = "envoy.config.trace.v3.OpenTelemetryConfig";
}

/// `config.core.v3.HttpService`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpService {
    /// Where, and through which cluster.
    pub http_uri: HttpUri,
}

/// `config.core.v3.HttpUri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpUri {
    /// The URL.
    pub uri: String,
    /// The cluster the requests go through.
    pub cluster: String,
    /// A request's deadline.
    #[serde(serialize_with = "proto::duration")]
    pub timeout: Duration,
}
