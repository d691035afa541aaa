//! Listeners (`config.listener.v3.Listener`), each with one HTTP connection manager and its
//! HTTP filters.

use std::time::Duration;

use serde::Serialize;

use super::{Address, Extension, ExtensionConfig, RouteConfiguration, Tracing, proto};

/// A listener: where a proxy takes connections, and what it does with them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    /// Its name (unique in the bootstrap).
    pub name: String,
    /// Where it listens.
    pub address: Address,
    /// What runs on its connections.
    pub filter_chains: Vec<FilterChain>,
    /// Which way its traffic goes, as Istio marks its listeners.
    pub traffic_direction: TrafficDirection,
}

impl Listener {
    /// The tracing of its HTTP connection manager, if it has one.
    pub fn tracing_mut(&mut self) -> Option<&mut Tracing> {
        self.filter_chains.iter_mut().flat_map(|c| c.filters.iter_mut()).find_map(|f| match f {
            NetworkFilter::Http(manager) => Some(&mut manager.0.tracing),
            NetworkFilter::Tcp(_) => None,
        })
    }
}

/// `config.core.v3.TrafficDirection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrafficDirection {
    /// Into the pod: a sidecar's listener in front of its application.
    Inbound,
    /// Out of the pod (or through the gateway).
    Outbound,
}

/// `config.listener.v3.FilterChain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterChain {
    /// Its network filters: an HTTP connection manager, or a TCP proxy, alone.
    pub filters: Vec<NetworkFilter>,
}

/// A network filter: what a listener does with a connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NetworkFilter {
    /// HTTP: routes, filters and spans.
    Http(Box<Extension<HttpConnectionManager>>),
    /// Bytes, to one cluster: no request is seen, so no span is made.
    Tcp(Extension<TcpProxy>),
}

/// The TCP proxy (`envoy.filters.network.tcp_proxy`), as Istio writes it for a port whose
/// protocol is TCP (a Service port named `tcp`, such as the database's 3306).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcpProxy {
    /// Prefix of its statistics: Istio gives the cluster's name.
    pub stat_prefix: String,
    /// Where connections go.
    pub cluster: String,
}

impl ExtensionConfig for TcpProxy {
    const NAME: &'static str = "envoy.filters.network.tcp_proxy";
    const TYPE: &'static str = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
}

/// The HTTP connection manager (`envoy.filters.network.http_connection_manager`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpConnectionManager {
    /// Prefix of its statistics.
    pub stat_prefix: String,
    /// Which HTTP versions it speaks.
    pub codec_type: CodecType,
    /// Whether it sets `x-request-id` where a request has none (and, at the edge, replaces the
    /// client's).
    pub generate_request_id: bool,
    /// Whether the client is the connection's peer, not what `x-forwarded-for` says: then the
    /// request is an edge request (its `x-request-id` and `x-envoy-*` headers are not trusted)
    /// and the peer is appended to `x-forwarded-for`.
    pub use_remote_address: bool,
    /// Its spans.
    pub tracing: Tracing,
    /// Its routes.
    pub route_config: RouteConfiguration,
    /// Its HTTP filters, in order, the router last.
    pub http_filters: Vec<HttpFilter>,
}

impl ExtensionConfig for HttpConnectionManager {
    const NAME: &'static str = "envoy.filters.network.http_connection_manager";
    const TYPE: &'static str =
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
}

/// `HttpConnectionManager.CodecType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CodecType {
    /// HTTP/1.1 or HTTP/2, as the client speaks.
    Auto,
}

/// An HTTP filter.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HttpFilter {
    /// Fault injection, configured by each route.
    Fault(Extension<HttpFault>),
    /// Cross-origin resource sharing, configured by each route.
    Cors(Extension<Cors>),
    /// The router, which sends the request on.
    Router(Extension<Router>),
}

/// The router filter: no settings of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Router;

impl ExtensionConfig for Router {
    const NAME: &'static str = "envoy.filters.http.router";
    const TYPE: &'static str = "envoy.extensions.filters.http.router.v3.Router";
}

/// The CORS filter: no settings of its own (a route's policy says what it allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cors;

impl ExtensionConfig for Cors {
    const NAME: &'static str = "envoy.filters.http.cors";
    const TYPE: &'static str = "envoy.extensions.filters.http.cors.v3.Cors";
}

/// The fault filter's configuration: a delay, an abort, both or (on a listener, so that the
/// routes can carry their own) neither.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HttpFault {
    /// Wait before sending the request on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Answer instead of sending the request on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
}

impl ExtensionConfig for HttpFault {
    const NAME: &'static str = "envoy.filters.http.fault";
    const TYPE: &'static str = "envoy.extensions.filters.http.fault.v3.HTTPFault";
}

/// `extensions.filters.common.fault.v3.FaultDelay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultDelay {
    /// How long.
    #[serde(serialize_with = "proto::duration")]
    pub fixed_delay: Duration,
    /// For which share of requests.
    pub percentage: FractionalPercent,
}

/// `extensions.filters.http.fault.v3.FaultAbort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultAbort {
    /// The status answered.
    pub http_status: u16,
    /// For which share of requests.
    pub percentage: FractionalPercent,
}

/// `type.v3.FractionalPercent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FractionalPercent {
    /// The share, in `denominator`s.
    pub numerator: u64,
    /// What the numerator counts.
    pub denominator: DenominatorType,
}

/// `FractionalPercent.DenominatorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DenominatorType {
    /// Millionths (as Istio writes its percentages).
    Million,
}
