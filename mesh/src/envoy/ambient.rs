//! Istio's ambient data plane: no sidecars; a node's ztunnel carries the pods' connections (L4
//! only: it makes no span and reads no header), and a namespace's waypoint, an Envoy, takes the
//! L7 part: routing, and one span per request.
//!
//! The waypoint follows istiod 1.32 (`pilot/pkg/networking/core/listener_waypoint.go`,
//! `tracing.go`):
//! - one HTTP chain per service, its route configuration named `inbound-vip|9080|http|<fqdn>`
//!   with one virtual host `inbound|http|9080`; without a rule for the service, Istio's default
//!   outbound route to the whole service (spans named `<fqdn>:9080/*`); with rules (a VirtualService for the
//!   service's host, an HTTPRoute whose parent is the Service), their routes, subsets as
//!   `inbound-vip|9080|http/<subset>|<fqdn>`;
//! - traffic direction inbound, so its spans are SERVER spans, and no upstream span of its own
//!   (only a gateway spawns one);
//! - its node's cluster, `waypoint.<namespace>`, names its spans under every provider ("the
//!   span's service must identify the producer of the span"): Istio 1.28-1.29 named them after
//!   the destination under the OpenTelemetry provider, 1.30 went back;
//! - Istio's tags with `istio.canonical_service: waypoint`, and the peers' `istio.source_*`
//!   and `istio.destination_*` tags (`buildWaypointSourceTags`).
//!
//! Istio reads the peers from the metadata ztunnel sends over HBONE; here, each calling
//! workload reaches the waypoint on a listener of its own, whose source tags are literals, and
//! the destination's are read from the picked endpoint's metadata. The waypoint reaches the
//! applications directly (Istio goes through the destination node's ztunnel: no span either).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::Value;

use super::api::{
    self, Bootstrap, CustomTag, EndpointMetadata, LbEndpoint, Listener, TagValue, TrafficDirection,
};
use super::{
    CLUSTER_ID, Identity, Mesh, Namespace, Side, fqdn, json, lb_endpoint, routes, static_cluster,
    tcp_listener,
};

/// Istio's data planes: a sidecar beside every pod, or ambient (ztunnel, and waypoints where
/// applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataPlane {
    /// An Envoy sidecar in every pod: two spans per hop.
    #[default]
    Sidecar,
    /// No sidecar: ztunnel (no span) and, where applied, a waypoint (one span per request).
    Ambient,
}

bookinfo_config::named!(DataPlane, "data plane", { Sidecar => "sidecar", Ambient => "ambient" });

/// Which waypoint an ambient namespace has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaypointScope {
    /// None, as Istio starts: no L7 routing and no span inside the mesh.
    #[default]
    None,
    /// One for every service of the namespace (`istio.io/use-waypoint` on the namespace).
    Namespace,
}

bookinfo_config::named!(WaypointScope, "waypoint", { None => "none", Namespace => "namespace" });

/// A namespace's waypoint: one Envoy for every service of the namespace (`istio.io/use-waypoint`
/// on the namespace, a `Gateway` of class `istio-waypoint`).
#[derive(Debug, Clone)]
pub struct Waypoint {
    /// The namespace it serves.
    pub namespace: String,
    /// Where each calling workload reaches each service through it.
    pub listeners: Vec<WaypointListener>,
    /// Its admin interface.
    pub admin: SocketAddr,
}

/// One (caller, service) pair's way into the waypoint.
#[derive(Debug, Clone)]
pub struct WaypointListener {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The calling workload's pod (in this namespace).
    pub source: String,
    /// The service called.
    pub service: String,
}

/// The node's ztunnel, played by an Envoy of TCP proxies: each calling workload's connections
/// to a service, passed on as bytes, no span, no header read.
#[derive(Debug, Clone)]
pub struct Ztunnel {
    /// Its tunnels.
    pub tunnels: Vec<Tunnel>,
    /// Its admin interface.
    pub admin: SocketAddr,
}

/// One calling workload's way to one service.
#[derive(Debug, Clone)]
pub struct Tunnel {
    /// Its name, unique in the ztunnel: `up` writes `<namespace>/<caller pod>→<fqdn>:<port>`.
    pub name: String,
    /// Where the caller connects.
    pub addr: SocketAddr,
    /// Where connections go (one picked per connection, as ztunnel does): the service's pods,
    /// or the waypoint's listener for this caller and service.
    pub endpoints: Vec<SocketAddr>,
}

/// The name of a waypoint's cluster for `service` (and `subset`) in `namespace`:
/// `inbound-vip|9080|http/v2|reviews.default.svc.cluster.local` (model.BuildSubsetKey with
/// portToSubset's `http[/subset]`).
pub fn waypoint_cluster(service: &str, subset: Option<&str>, namespace: &str) -> String {
    let subset = subset.map_or_else(|| "http".to_owned(), |s| format!("http/{s}"));
    format!("inbound-vip|{}|{subset}|{}", super::SERVICE_PORT, fqdn(service, namespace))
}

/// The waypoint's name, as `istioctl waypoint apply` names it.
pub const WAYPOINT: &str = "waypoint";

impl Mesh {
    /// The bootstrap of the waypoint of `waypoint.namespace`, as JSON.
    pub fn waypoint(&self, waypoint: &Waypoint) -> Value {
        json(&self.waypoint_bootstrap(waypoint))
    }

    /// The bootstrap of the ztunnel, as JSON.
    pub fn ztunnel(&self, ztunnel: &Ztunnel) -> Value {
        json(&self.ztunnel_bootstrap(ztunnel))
    }

    /// The bootstrap of a namespace's waypoint.
    pub fn waypoint_bootstrap(&self, waypoint: &Waypoint) -> Bootstrap {
        let ns = waypoint.namespace.as_str();
        let identity = Identity {
            node_id: format!("waypoint~127.0.0.1~{WAYPOINT}.{ns}~{ns}.svc.cluster.local"),
            cluster: format!("{WAYPOINT}.{ns}"),
            app: WAYPOINT.to_owned(),
            // Istio's waypoint template labels its pod canonical-revision `latest`.
            version: "latest".to_owned(),
            namespace: ns.to_owned(),
        };
        let namespace = self.namespaces.iter().find(|n| n.name == ns);
        let mut listeners: Vec<Listener> = Vec::new();
        let mut services: Vec<&str> = Vec::new();
        for listener in &waypoint.listeners {
            let source = namespace.and_then(|n| n.workloads.iter().find(|w| w.pod == listener.source));
            let mut built = self.listener(
                &format!("waypoint_{}_{}", listener.source, listener.addr),
                listener.addr,
                Side::Waypoint,
                &identity,
                routes::waypoint(&self.routing, &listener.service, ns),
            );
            if let Some(tracing) = built.tracing_mut() {
                tracing.custom_tags.extend(peer_tags(source.map(Peer::of), ns));
                tracing.custom_tags.sort_by(|a, b| a.tag.cmp(&b.tag));
            }
            listeners.push(built);
            if !services.contains(&listener.service.as_str()) {
                services.push(&listener.service);
            }
        }
        let mut clusters = Vec::new();
        if let Some(namespace) = namespace {
            for service in services {
                clusters.extend(self.waypoint_clusters(namespace, service));
            }
        }
        self.bootstrap(&identity, waypoint.admin, listeners, clusters)
    }

    /// The bootstrap of the ztunnel: TCP proxies only.
    pub fn ztunnel_bootstrap(&self, ztunnel: &Ztunnel) -> Bootstrap {
        let identity = Identity {
            node_id: "ztunnel~127.0.0.1~ztunnel.istio-system~istio-system.svc.cluster.local".to_owned(),
            cluster: "ztunnel.istio-system".to_owned(),
            app: "ztunnel".to_owned(),
            version: "latest".to_owned(),
            namespace: "istio-system".to_owned(),
        };
        let mut listeners = Vec::new();
        let mut clusters = Vec::new();
        for tunnel in &ztunnel.tunnels {
            listeners.push(tcp_listener(&tunnel.name, tunnel.addr, TrafficDirection::Outbound, &tunnel.name));
            let mut cluster = static_cluster(&tunnel.name, &tunnel.endpoints, None);
            // ztunnel picks a backend per connection, at random.
            cluster.lb_policy = api::LbPolicy::Random;
            clusters.push(cluster);
        }
        self.bootstrap(&identity, ztunnel.admin, listeners, clusters)
    }

    /// The waypoint's clusters of `service`: the whole service and each subset, their endpoints
    /// the applications themselves, each with the workload behind it.
    fn waypoint_clusters(&self, namespace: &Namespace, service: &str) -> Vec<api::Cluster> {
        self.subset_clusters(namespace, service, waypoint_cluster, |pod| LbEndpoint {
            metadata: Some(Peer::of(pod).metadata(&namespace.name)),
            ..lb_endpoint(pod.app_addr)
        })
    }
}

/// The fields of Istio's `WorkloadMetadataObject` the waypoint tags, as `FIELD:` names them.
const FIELDS: [&str; 9] =
    ["workload", "namespace", "cluster", "service", "revision", "app", "version", "type", "name"];

/// A workload as the waypoint's peer tags describe it (Istio's `WorkloadMetadataObject`).
struct Peer<'a> {
    app: &'a str,
    version: &'a str,
    pod: &'a str,
}

impl<'a> Peer<'a> {
    fn of(workload: &'a super::Workload) -> Self {
        Self { app: &workload.app, version: &workload.version, pod: &workload.pod }
    }

    /// The value of each of [`FIELDS`]: the Deployment is `<app>-<version>`, as Istio's
    /// bookinfo.yaml names them.
    fn values(&self, namespace: &str) -> [String; 9] {
        [
            format!("{}-{}", self.app, self.version),
            namespace.to_owned(),
            CLUSTER_ID.to_owned(),
            self.app.to_owned(),
            self.version.to_owned(),
            self.app.to_owned(),
            self.version.to_owned(),
            "deployment".to_owned(),
            self.pod.to_owned(),
        ]
    }

    /// The endpoint metadata the destination tags read.
    fn metadata(&self, namespace: &str) -> EndpointMetadata {
        let fields = FIELDS.into_iter().map(str::to_owned).zip(self.values(namespace)).collect();
        EndpointMetadata { filter_metadata: BTreeMap::from([("istio".to_owned(), fields)]) }
    }
}

/// The tag of each field: `workload` → `istio.source_workload`, `service` →
/// `istio.source_canonical_service` (tracing.go, buildWaypointSourceTags).
fn tag_name(side: &str, field: &str) -> String {
    let field = match field {
        "cluster" => "cluster_id",
        "service" => "canonical_service",
        "revision" => "canonical_revision",
        "version" => "app_version",
        "type" => "workload_type",
        "name" => "instance_name",
        other => other,
    };
    format!("istio.{side}_{field}")
}

/// The waypoint's peer tags: the caller's as literals (its listener is its own), the
/// destination's read from the endpoint picked.
fn peer_tags(source: Option<Peer<'_>>, namespace: &str) -> Vec<CustomTag> {
    let mut tags = Vec::new();
    if let Some(source) = source {
        for (field, value) in FIELDS.into_iter().zip(source.values(namespace)) {
            tags.push(CustomTag { tag: tag_name("source", field), value: TagValue::Literal { value } });
        }
    }
    for field in FIELDS {
        tags.push(CustomTag {
            tag: tag_name("destination", field),
            value: TagValue::Value(format!("%UPSTREAM_METADATA(istio:{field})%")),
        });
    }
    tags
}
