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

mod routes;
mod tracing;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::model::{LoadBalancer, Routing};

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
    /// The sidecar's admin interface.
    pub admin: SocketAddr,
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
    format!("outbound|{SERVICE_PORT}|{}|{}", subset.unwrap_or_default(), fqdn(service, namespace))
}

const INBOUND_CLUSTER: &str = "inbound|9080||";
const ZIPKIN_CLUSTER: &str = "zipkin";
const OTLP_CLUSTER: &str = "opentelemetry-collector";

impl Mesh {
    /// The bootstrap of `workload`'s sidecar in `namespace`.
    pub fn sidecar(&self, namespace: &Namespace, workload: &Workload) -> Value {
        let ns = namespace.name.as_str();
        let identity = Identity {
            node_id: format!("sidecar~127.0.0.1~{}.{ns}~{ns}.svc.cluster.local", workload.pod),
            cluster: format!("{}.{ns}", workload.app),
            app: workload.app.clone(),
            version: workload.version.clone(),
            namespace: ns.to_owned(),
        };
        let inbound_routes = json!({
            "name": INBOUND_CLUSTER,
            "validate_clusters": false,
            "virtual_hosts": [{
                "name": "inbound|http|9080",
                "domains": ["*"],
                "routes": [{
                    "name": "default",
                    "match": {"prefix": "/"},
                    "route": {"cluster": INBOUND_CLUSTER, "timeout": "0s"},
                    "decorator": {"operation": format!("{}:{SERVICE_PORT}/*", fqdn(&workload.app, ns))},
                }],
            }],
        });
        let mut listeners = vec![self.listener(
            &format!("inbound_{}", workload.inbound),
            workload.inbound,
            Some("INBOUND"),
            &identity,
            inbound_routes,
            false,
            false,
        )];
        let mut clusters = vec![static_cluster(INBOUND_CLUSTER, &[workload.app_addr], None)];
        for (service, addr) in &workload.outbound {
            let routes = routes::outbound(&self.routing, service, ns);
            listeners.push(self.listener(
                &format!("outbound_{service}_{addr}"),
                *addr,
                Some("OUTBOUND"),
                &identity,
                routes,
                true,
                false,
            ));
            clusters.extend(self.service_clusters(namespace, service));
        }
        self.bootstrap(&identity, workload.admin, listeners, clusters)
    }

    /// The bootstrap of the ingress gateway.
    pub fn gateway(&self) -> Value {
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
                Some("OUTBOUND"),
                &identity,
                routes,
                false,
                true,
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
    fn service_clusters(&self, namespace: &Namespace, service: &str) -> Vec<Value> {
        let endpoints = |version: Option<&str>| -> Vec<SocketAddr> {
            namespace
                .workloads
                .iter()
                .filter(|w| w.app == service && version.is_none_or(|v| w.version == v))
                .map(|w| w.inbound)
                .collect()
        };
        let balancer = self.routing.load_balancers.get(service).copied();
        let mut clusters = vec![static_cluster(
            &outbound_cluster(service, None, &namespace.name),
            &endpoints(None),
            balancer,
        )];
        for (subset, version) in self.routing.subsets.get(service).into_iter().flatten() {
            let name = outbound_cluster(service, Some(subset), &namespace.name);
            clusters.push(static_cluster(&name, &endpoints(Some(version)), balancer));
        }
        clusters
    }

    #[allow(clippy::too_many_arguments)]
    fn listener(
        &self,
        name: &str,
        addr: SocketAddr,
        direction: Option<&str>,
        identity: &Identity,
        route_config: Value,
        faults: bool,
        gateway: bool,
    ) -> Value {
        let mut filters = Vec::new();
        if faults {
            // Empty, so that routes can carry their own faults.
            filters.push(json!({"name": "envoy.filters.http.fault", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}));
        }
        filters.push(json!({"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
        let mut listener = json!({
            "name": name,
            "address": socket_address(addr),
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": name,
                    "codec_type": "AUTO",
                    "generate_request_id": true,
                    "tracing": self.tracing(identity, gateway),
                    "route_config": route_config,
                    "http_filters": filters,
                },
            }]}],
        });
        if let Some(direction) = direction {
            listener["traffic_direction"] = json!(direction);
        }
        listener
    }

    fn bootstrap(
        &self,
        identity: &Identity,
        admin: SocketAddr,
        listeners: Vec<Value>,
        mut clusters: Vec<Value>,
    ) -> Value {
        clusters.push(self.collector_cluster());
        let flush = u64::try_from(self.flush.as_millis()).unwrap_or(u64::MAX).max(1);
        json!({
            "node": {
                "id": identity.node_id,
                "cluster": identity.cluster,
                "metadata": {"NAMESPACE": identity.namespace, "LABELS": {"app": identity.app, "version": identity.version}},
            },
            "admin": {"address": socket_address(admin)},
            "layered_runtime": {"layers": [{"name": "bookinfo", "static_layer": {
                // Spans reach the store soon after the request, not five seconds later.
                "tracing.zipkin.flush_interval_ms": flush,
                "tracing.opentelemetry.flush_interval_ms": flush,
            }}]},
            // Without a connection limit Envoy warns at start; this one is never reached here.
            "overload_manager": {"resource_monitors": [{
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": 50_000,
                },
            }]},
            "static_resources": {"listeners": listeners, "clusters": clusters},
        })
    }

    fn collector_cluster(&self) -> Value {
        match self.tracer {
            Tracer::Otel => static_cluster(OTLP_CLUSTER, &[self.otlp], None),
            Tracer::Zipkin | Tracer::ZipkinW3c => static_cluster(ZIPKIN_CLUSTER, &[self.zipkin], None),
        }
    }
}

/// Who a proxy is, for its node and its span tags.
struct Identity {
    node_id: String,
    cluster: String,
    app: String,
    version: String,
    namespace: String,
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

fn static_cluster(name: &str, endpoints: &[SocketAddr], balancer: Option<LoadBalancer>) -> Value {
    let lb_policy = match balancer {
        Some(LoadBalancer::RoundRobin) => "ROUND_ROBIN",
        Some(LoadBalancer::Random) => "RANDOM",
        // Istio's default.
        Some(LoadBalancer::LeastRequest) | None => "LEAST_REQUEST",
    };
    let lb_endpoints: Vec<Value> =
        endpoints.iter().map(|addr| json!({"endpoint": {"address": socket_address(*addr)}})).collect();
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "10s",
        "lb_policy": lb_policy,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}]},
    })
}

#[cfg(test)]
mod tests;
