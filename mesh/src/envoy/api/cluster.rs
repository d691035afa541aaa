//! Clusters (`config.cluster.v3.Cluster`): static ones, their endpoints listed in the bootstrap.

use std::time::Duration;

use serde::Serialize;

use super::{Address, proto};

/// A cluster of static endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// Its name, which routes refer to.
    pub name: String,
    /// How its endpoints are found.
    #[serde(rename = "type")]
    pub discovery: DiscoveryType,
    /// How long a connection may take to open.
    #[serde(serialize_with = "proto::duration")]
    pub connect_timeout: Duration,
    /// How an endpoint is picked.
    pub lb_policy: LbPolicy,
    /// Its endpoints.
    pub load_assignment: ClusterLoadAssignment,
}

/// `Cluster.DiscoveryType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiscoveryType {
    /// The endpoints listed in the configuration.
    Static,
}

/// `Cluster.LbPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LbPolicy {
    /// In turn.
    RoundRobin,
    /// To the endpoint with the fewest requests in flight (Istio's default).
    LeastRequest,
    /// At random.
    Random,
}

/// `config.endpoint.v3.ClusterLoadAssignment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterLoadAssignment {
    /// The cluster it is for.
    pub cluster_name: String,
    /// The endpoints, by locality (here one).
    pub endpoints: Vec<LocalityLbEndpoints>,
}

/// `config.endpoint.v3.LocalityLbEndpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalityLbEndpoints {
    /// The endpoints.
    pub lb_endpoints: Vec<LbEndpoint>,
}

/// `config.endpoint.v3.LbEndpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbEndpoint {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// What the proxy knows of it (a waypoint's: the workload behind it, for its span tags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<EndpointMetadata>,
}

/// `config.core.v3.Metadata` of an endpoint: values by namespace, such as `istio`, which
/// `%UPSTREAM_METADATA(istio:workload)%` reads once the endpoint is picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointMetadata {
    /// Namespace to keys to values.
    pub filter_metadata: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

/// `config.endpoint.v3.Endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Where it listens.
    pub address: Address,
}
