//! The bootstrap (`config.bootstrap.v3.Bootstrap`): who the proxy is, its admin interface, its
//! runtime, its overload manager and its static listeners and clusters.

use serde::Serialize;

use super::{Address, Cluster, Extension, ExtensionConfig, Listener};

/// A proxy's whole configuration, as `envoy -c` reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Who the proxy is.
    pub node: Node,
    /// Its admin interface.
    pub admin: Admin,
    /// Its runtime settings.
    pub layered_runtime: LayeredRuntime,
    /// Its resource limits.
    pub overload_manager: OverloadManager,
    /// Its listeners and clusters.
    pub static_resources: StaticResources,
}

/// `config.core.v3.Node`: the proxy's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// Istio's node id: `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`.
    pub id: String,
    /// The service cluster: the service name its spans carry.
    pub cluster: String,
    /// What istiod tells a proxy about its pod.
    pub metadata: NodeMetadata,
}

/// The node's metadata, under the keys Istio's proxies carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeMetadata {
    /// The pod's namespace.
    #[serde(rename = "NAMESPACE")]
    pub namespace: String,
    /// The pod's labels.
    #[serde(rename = "LABELS")]
    pub labels: Labels,
}

/// The labels that tell Bookinfo's pods apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// The `app` label.
    pub app: String,
    /// The `version` label.
    pub version: String,
}

/// `config.bootstrap.v3.Admin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    /// Where the admin interface listens.
    pub address: Address,
}

/// `config.bootstrap.v3.LayeredRuntime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayeredRuntime {
    /// The layers, the later overriding the earlier.
    pub layers: Vec<RuntimeLayer>,
}

/// `config.bootstrap.v3.RuntimeLayer`: here a static one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeLayer {
    /// The layer's name.
    pub name: String,
    /// Its runtime keys.
    pub static_layer: StaticLayer,
}

/// The runtime keys set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticLayer {
    /// How long the Zipkin tracer holds spans before sending them.
    #[serde(rename = "tracing.zipkin.flush_interval_ms")]
    pub zipkin_flush_interval_ms: u64,
    /// How long the OpenTelemetry tracer holds spans before sending them.
    #[serde(rename = "tracing.opentelemetry.flush_interval_ms")]
    pub opentelemetry_flush_interval_ms: u64,
    /// The largest RE2 program a route's regex may compile to (Envoy's default is 100).
    #[serde(rename = "re2.max_program_size.error_level")]
    pub re2_max_program_size_error_level: u64,
}

/// `config.overload.v3.OverloadManager`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverloadManager {
    /// The resources watched.
    pub resource_monitors: Vec<Extension<DownstreamConnectionsConfig>>,
}

/// The global limit of downstream connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DownstreamConnectionsConfig {
    /// Connections accepted at most, across all listeners.
    pub max_active_downstream_connections: u64,
}

impl ExtensionConfig for DownstreamConnectionsConfig {
    const NAME: &'static str = "envoy.resource_monitors.global_downstream_max_connections";
    const TYPE: &'static str =
        "envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig";
}

/// `config.bootstrap.v3.Bootstrap.StaticResources`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaticResources {
    /// The listeners.
    pub listeners: Vec<Listener>,
    /// The clusters.
    pub clusters: Vec<Cluster>,
}
