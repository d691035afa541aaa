//! Envoy, configured as istiod configures Istio's sidecars and ingress gateway: one static
//! bootstrap per proxy, rendered from the [`Mesh`] (who runs where) and the [`Routing`].
//!
//! The shape follows what istiod pushes, so the spans are Istio's: node `cluster` is
//! `<app>.<namespace>` (the Zipkin service name), the inbound listener routes to
//! `inbound|9080||` with the decorator `<app>.<namespace>.svc.cluster.local:9080/*`, the
//! outbound routes go to `outbound|9080|<subset>|<fqdn>` clusters with Istio's default retry
//! policy and no timeout, `x-request-id` is generated at the edge, and every span carries the
//! `istio.*` literal tags. One outbound listener per upstream stands in for Istio's single
//! `0.0.0.0:9080` listener with a virtual host per service: the applications are pointed at
//! them through their `*_HOSTNAME`/`*_SERVICE_PORT` variables.
//!
//! A bootstrap is built of [`api`]'s types, which spell Envoy's fields; [`Mesh::sidecar`] and
//! [`Mesh::gateway`] give it as the JSON `bookinfo up --mesh` writes.

mod ambient;
pub mod api;
mod routes;
mod tracing;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use self::api::{
    Address, Admin, Bootstrap, ClusterLoadAssignment, CodecType, Cors, DiscoveryType,
    DownstreamConnectionsConfig, Endpoint, Extension, FilterChain, HttpConnectionManager, HttpFault,
    HttpFilter, Labels, LayeredRuntime, LbEndpoint, LbPolicy, Listener, LocalityLbEndpoints, NetworkFilter,
    Node, NodeMetadata, OverloadManager, RouteConfiguration, Router, RuntimeLayer, StaticLayer,
    StaticResources, TcpProxy, TrafficDirection,
};
use crate::model::{LoadBalancer, Routing};

pub use self::ambient::{
    DataPlane, Tunnel, WAYPOINT, Waypoint, WaypointListener, WaypointScope, Ztunnel, waypoint_cluster,
};
pub use self::tracing::Tracer;

/// The port every Bookinfo service serves in the mesh.
pub const SERVICE_PORT: u16 = 9080;
/// Istio's mesh id and cluster id, as the `istio.*` span tags carry them.
const MESH_ID: &str = "cluster.local";
const CLUSTER_ID: &str = "Kubernetes";

/// Everything the proxies need to know: who runs where, and where spans go.
#[derive(Debug, Clone)]
pub struct Mesh {
    /// The namespaces, each with its workloads.
    pub namespaces: Vec<Namespace>,
    /// The ingress gateway.
    pub gateway: Gateway,
    /// Which tracer the proxies use.
    pub tracer: Tracer,
    /// Where Zipkin spans go (`POST /api/v2/spans`).
    pub zipkin: SocketAddr,
    /// Where OTLP spans go (`POST /v1/traces`).
    pub otlp: SocketAddr,
    /// Share of requests traced at the edge, 0-100 (Istio's `randomSamplingPercentage`).
    pub sampling: f64,
    /// How long a proxy may hold spans before sending them.
    pub flush: Duration,
    /// The routing files, applied in every namespace.
    pub routing: Routing,
}

/// One namespace of the application.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Its name, such as `default` or `bookinfo-otel`.
    pub name: String,
    /// Its workloads (pods).
    pub workloads: Vec<Workload>,
}

/// One pod: an application and its sidecar.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The `app` label: `productpage`, `details`, `reviews`, `ratings`.
    pub app: String,
    /// The `version` label: `v1`, `v2`, ...
    pub version: String,
    /// The pod's name, such as `reviews-v2`.
    pub pod: String,
    /// Where the sidecar takes the pod's inbound traffic.
    pub inbound: SocketAddr,
    /// Where the application itself listens (its sidecar's `inbound|9080||`).
    pub app_addr: SocketAddr,
    /// The sidecar's listener for each service the application calls.
    pub outbound: Vec<(String, SocketAddr)>,
    /// The sidecar's listener for each TCP service the application reaches (the database).
    pub tcp_outbound: Vec<TcpUpstream>,
    /// What the application speaks on its port.
    pub protocol: Protocol,
    /// The sidecar's admin interface.
    pub admin: SocketAddr,
}

/// What an application speaks on its port, as Istio tells it from the Service's port name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP on 9080 (`http`): routed and traced.
    Http,
    /// Plain TCP on this port (`tcp`): proxied as bytes, so no sidecar span.
    Tcp(u16),
}

/// A TCP service an application reaches through its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpUpstream {
    /// The service (`mysqldb`).
    pub service: String,
    /// Its port in the mesh (3306).
    pub port: u16,
    /// The sidecar's listener for it.
    pub listener: SocketAddr,
}

/// The ingress gateway.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Its listeners.
    pub listeners: Vec<GatewayListener>,
    /// Its admin interface.
    pub admin: SocketAddr,
}

/// One listener of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayListener {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it serves: a namespace's productpage for any host, or each namespace for its host
    /// (`<namespace without "bookinfo-">.bookinfo.local`).
    pub serves: GatewayServes,
}

/// What a gateway listener serves.
#[derive(Debug, Clone)]
pub enum GatewayServes {
    /// This namespace's productpage, as the routing files' gateway rules say (every path to
    /// productpage without them).
    Namespace(String),
    /// Every namespace, each for the host [`host_of`] names.
    ByHost,
}

/// The host a namespace is served as by host: `bookinfo-otel` → `otel.bookinfo.local`.
pub fn host_of(namespace: &str) -> String {
    format!("{}.bookinfo.local", namespace.strip_prefix("bookinfo-").unwrap_or(namespace))
}

/// A service's name in the mesh: `reviews.default.svc.cluster.local`.
pub fn fqdn(service: &str, namespace: &str) -> String {
    format!("{service}.{namespace}.svc.cluster.local")
}

/// Istio's name of a cluster: `outbound|9080|v2|reviews.default.svc.cluster.local`.
pub fn outbound_cluster(service: &str, subset: Option<&str>, namespace: &str) -> String {
    outbound_cluster_on(SERVICE_PORT, service, subset, namespace)
}

/// Istio's name of a cluster on `port`: `outbound|3306||mysqldb.default.svc.cluster.local`.
pub fn outbound_cluster_on(port: u16, service: &str, subset: Option<&str>, namespace: &str) -> String {
    format!("outbound|{port}|{}|{}", subset.unwrap_or_default(), fqdn(service, namespace))
}

const INBOUND_CLUSTER: &str = "inbound|9080||";
const ZIPKIN_CLUSTER: &str = "zipkin";
const OTLP_CLUSTER: &str = "opentelemetry-collector";

/// How long a cluster's connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Mesh {
    /// The bootstrap of `workload`'s sidecar in `namespace`, as JSON.
    pub fn sidecar(&self, namespace: &Namespace, workload: &Workload) -> Value {
        json(&self.sidecar_bootstrap(namespace, workload))
    }

    /// The bootstrap of the ingress gateway, as JSON.
    pub fn gateway(&self) -> Value {
        json(&self.gateway_bootstrap())
    }

    /// The bootstrap of `workload`'s sidecar in `namespace`.
    pub fn sidecar_bootstrap(&self, namespace: &Namespace, workload: &Workload) -> Bootstrap {
        let ns = namespace.name.as_str();
        let identity = Identity {
            node_id: format!("sidecar~127.0.0.1~{}.{ns}~{ns}.svc.cluster.local", workload.pod),
            cluster: format!("{}.{ns}", workload.app),
            app: workload.app.clone(),
            version: workload.version.clone(),
            namespace: ns.to_owned(),
        };
        let inbound_name = format!("inbound_{}", workload.inbound);
        let (mut listeners, mut clusters) = match workload.protocol {
            Protocol::Http => (
                vec![self.listener(
                    &inbound_name,
                    workload.inbound,
                    Side::Inbound,
                    &identity,
                    routes::inbound(&workload.app, ns),
                )],
                vec![static_cluster(INBOUND_CLUSTER, &[workload.app_addr], None)],
            ),
            // listener_inbound.go: a TCP port's filter chain is a tcp_proxy to `inbound|<port>||`.
            Protocol::Tcp(port) => {
                let cluster = format!("inbound|{port}||");
                (
                    vec![tcp_listener(&inbound_name, workload.inbound, TrafficDirection::Inbound, &cluster)],
                    vec![static_cluster(&cluster, &[workload.app_addr], None)],
                )
            }
        };
        for upstream in &workload.tcp_outbound {
            let cluster = outbound_cluster_on(upstream.port, &upstream.service, None, ns);
            let name = format!("outbound_{}_{}", upstream.service, upstream.listener);
            listeners.push(tcp_listener(&name, upstream.listener, TrafficDirection::Outbound, &cluster));
            let endpoints: Vec<SocketAddr> =
                namespace.workloads.iter().filter(|w| w.app == upstream.service).map(|w| w.inbound).collect();
            clusters.push(static_cluster(&cluster, &endpoints, None));
        }
        for (service, addr) in &workload.outbound {
            let routes = routes::outbound(&self.routing, service, ns);
            listeners.push(self.listener(
                &format!("outbound_{service}_{addr}"),
                *addr,
                Side::Outbound,
                &identity,
                routes,
            ));
            clusters.extend(self.service_clusters(namespace, service));
        }
        self.bootstrap(&identity, workload.admin, listeners, clusters)
    }

    /// The bootstrap of the ingress gateway.
    pub fn gateway_bootstrap(&self) -> Bootstrap {
        let identity = Identity {
            node_id: "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"
                .to_owned(),
            cluster: "istio-ingressgateway.istio-system".to_owned(),
            app: "istio-ingressgateway".to_owned(),
            version: "latest".to_owned(),
            namespace: "istio-system".to_owned(),
        };
        let mut listeners = Vec::new();
        for listener in &self.gateway.listeners {
            let routes = match &listener.serves {
                GatewayServes::Namespace(ns) => routes::gateway(&self.routing, ns),
                GatewayServes::ByHost => {
                    routes::gateway_by_host(self.namespaces.iter().map(|n| n.name.as_str()))
                }
            };
            listeners.push(self.listener(
                &format!("gateway_{}", listener.addr),
                listener.addr,
                Side::Gateway,
                &identity,
                routes,
            ));
        }
        let mut clusters = Vec::new();
        for namespace in &self.namespaces {
            clusters.extend(self.service_clusters(namespace, "productpage"));
        }
        self.bootstrap(&identity, self.gateway.admin, listeners, clusters)
    }

    /// The clusters of `service` in `namespace`: the whole service, and each subset the
    /// DestinationRules define (those of a version no pod has are empty: Envoy answers 503).
    fn service_clusters(&self, namespace: &Namespace, service: &str) -> Vec<api::Cluster> {
        self.subset_clusters(namespace, service, outbound_cluster, |w| lb_endpoint(w.inbound))
    }

    /// The clusters of `service` in `namespace`, named by `name(service, subset, namespace)`:
    /// the whole service, then each subset the DestinationRules define, with `endpoint` of
    /// each pod that has the subset's version (none: Envoy answers 503).
    fn subset_clusters(
        &self,
        namespace: &Namespace,
        service: &str,
        name: fn(&str, Option<&str>, &str) -> String,
        endpoint: impl Fn(&Workload) -> LbEndpoint,
    ) -> Vec<api::Cluster> {
        let balancer = self.routing.load_balancers.get(service).copied();
        let cluster = |subset: Option<&str>, version: Option<&str>| {
            let endpoints = namespace
                .workloads
                .iter()
                .filter(|w| w.app == service && version.is_none_or(|v| w.version == v))
                .map(&endpoint)
                .collect();
            cluster_of(&name(service, subset, &namespace.name), endpoints, balancer)
        };
        let subsets = self.routing.subsets.get(service).into_iter().flatten();
        std::iter::once(cluster(None, None))
            .chain(subsets.map(|(subset, version)| cluster(Some(subset), Some(version))))
            .collect()
    }

    fn listener(
        &self,
        name: &str,
        addr: SocketAddr,
        side: Side,
        identity: &Identity,
        route_config: RouteConfiguration,
    ) -> Listener {
        // listener_builder.go, buildHTTPConnectionManager: on every listener, the fault and
        // CORS filters (empty: a route carries its own fault or policy) before the router.
        let http_filters = vec![
            HttpFilter::Fault(Extension(HttpFault::default())),
            HttpFilter::Cors(Extension(Cors)),
            HttpFilter::Router(Extension(Router)),
        ];
        let manager = HttpConnectionManager {
            stat_prefix: name.to_owned(),
            codec_type: CodecType::Auto,
            generate_request_id: true,
            // gateway.go, createGatewayHTTPFilterChainOpts: the gateway is the edge, so it
            // trusts no client's `x-request-id` and appends the client to `x-forwarded-for`.
            // The sidecars do neither (listener_inbound.go, buildSidecarInboundHTTPOpts;
            // listener.go, buildSidecarOutboundHTTPListenerOpts: PILOT_SIDECAR_USE_REMOTE_ADDRESS,
            // off).
            use_remote_address: side == Side::Gateway,
            tracing: self.tracing(identity, side == Side::Gateway),
            route_config,
            http_filters,
        };
        Listener {
            name: name.to_owned(),
            address: addr.into(),
            filter_chains: vec![FilterChain {
                filters: vec![NetworkFilter::Http(Box::new(Extension(manager)))],
            }],
            traffic_direction: match side {
                Side::Inbound | Side::Waypoint => TrafficDirection::Inbound,
                Side::Outbound | Side::Gateway => TrafficDirection::Outbound,
            },
        }
    }

    fn bootstrap(
        &self,
        identity: &Identity,
        admin: SocketAddr,
        listeners: Vec<Listener>,
        mut clusters: Vec<api::Cluster>,
    ) -> Bootstrap {
        clusters.push(self.collector_cluster());
        let flush = u64::try_from(self.flush.as_millis()).unwrap_or(u64::MAX).max(1);
        Bootstrap {
            node: Node {
                id: identity.node_id.clone(),
                cluster: identity.cluster.clone(),
                metadata: NodeMetadata {
                    namespace: identity.namespace.clone(),
                    labels: Labels { app: identity.app.clone(), version: identity.version.clone() },
                },
            },
            admin: Admin { address: admin.into() },
            layered_runtime: LayeredRuntime {
                layers: vec![RuntimeLayer {
                    name: "bookinfo".to_owned(),
                    // Spans reach the store soon after the request, not five seconds later.
                    static_layer: StaticLayer {
                        zipkin_flush_interval_ms: flush,
                        opentelemetry_flush_interval_ms: flush,
                        // As istiod's bootstrap (pkg/bootstrap/config.go): the size the routes'
                        // regexes are held to when they are read.
                        re2_max_program_size_error_level: crate::model::re2::MAX_PROGRAM_SIZE,
                    },
                }],
            },
            // Without a connection limit Envoy warns at start; this one is never reached here.
            overload_manager: OverloadManager {
                resource_monitors: vec![Extension(DownstreamConnectionsConfig {
                    max_active_downstream_connections: 50_000,
                })],
            },
            static_resources: StaticResources { listeners, clusters },
        }
    }

    fn collector_cluster(&self) -> api::Cluster {
        match self.tracer {
            Tracer::Otel => static_cluster(OTLP_CLUSTER, &[self.otlp], None),
            Tracer::Zipkin | Tracer::ZipkinW3c => static_cluster(ZIPKIN_CLUSTER, &[self.zipkin], None),
        }
    }
}

/// Which of a proxy's listeners: that decides its direction, its filters and its spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A sidecar's, in front of its application.
    Inbound,
    /// A sidecar's, for one service its application calls.
    Outbound,
    /// The gateway's: the edge, which spawns a span of its own for the upstream, as Istio's
    /// gateways do.
    Gateway,
    /// A waypoint's: inbound, as istiod marks its `main_internal` listener, so its one span per
    /// request is a SERVER span.
    Waypoint,
}

/// Who a proxy is, for its node and its span tags.
struct Identity {
    node_id: String,
    cluster: String,
    app: String,
    version: String,
    namespace: String,
}

/// A bootstrap as JSON. Serialising it cannot fail: every map in it is keyed by strings and no
/// `Serialize` of [`api`] errs of its own (were it to, Envoy would refuse the `null`).
fn json(bootstrap: &Bootstrap) -> Value {
    serde_json::to_value(bootstrap).unwrap_or_default()
}

/// A listener that proxies bytes to `cluster`: Istio's for a TCP port, which makes no span
/// (tcp_proxy has no tracing: a connection is not a request).
fn tcp_listener(name: &str, addr: SocketAddr, direction: TrafficDirection, cluster: &str) -> Listener {
    let proxy = TcpProxy { stat_prefix: cluster.to_owned(), cluster: cluster.to_owned() };
    Listener {
        name: name.to_owned(),
        address: addr.into(),
        filter_chains: vec![FilterChain { filters: vec![NetworkFilter::Tcp(Extension(proxy))] }],
        traffic_direction: direction,
    }
}

fn static_cluster(name: &str, endpoints: &[SocketAddr], balancer: Option<LoadBalancer>) -> api::Cluster {
    cluster_of(name, endpoints.iter().map(|addr| lb_endpoint(*addr)).collect(), balancer)
}

/// An endpoint at `addr`, with nothing said of it.
fn lb_endpoint(addr: SocketAddr) -> LbEndpoint {
    LbEndpoint { endpoint: Endpoint { address: Address::from(addr) }, metadata: None }
}

/// A static cluster of `lb_endpoints`, balanced as `balancer` says (Istio's least request by
/// default).
fn cluster_of(name: &str, lb_endpoints: Vec<LbEndpoint>, balancer: Option<LoadBalancer>) -> api::Cluster {
    let lb_policy = match balancer {
        Some(LoadBalancer::RoundRobin) => LbPolicy::RoundRobin,
        Some(LoadBalancer::Random) => LbPolicy::Random,
        // Istio's default.
        Some(LoadBalancer::LeastRequest) | None => LbPolicy::LeastRequest,
    };
    api::Cluster {
        name: name.to_owned(),
        discovery: DiscoveryType::Static,
        connect_timeout: CONNECT_TIMEOUT,
        lb_policy,
        load_assignment: ClusterLoadAssignment {
            cluster_name: name.to_owned(),
            endpoints: vec![LocalityLbEndpoints { lb_endpoints }],
        },
    }
}

#[cfg(test)]
mod ambient_tests;
#[cfg(test)]
mod gateway_api_tests;
#[cfg(test)]
mod istiod_tests;
#[cfg(test)]
mod tests;
