//! The ambient data plane's bootstraps: the waypoint as istiod 1.32 configures one
//! (listener_waypoint.go, tracing.go), and the ztunnel's TCP proxies.

use serde_json::Value;

use super::tests::{DESTINATION_RULES, hcm, listener, mesh, routing};
use super::*;

/// The layout `up --mesh ambient --waypoint namespace` gives: each workload's calls through
/// the ztunnel to the waypoint of its namespace (ports counted from 40000).
pub(super) fn ambient(mesh: &Mesh) -> (Vec<Waypoint>, Ztunnel) {
    let mut port = 40_000;
    let mut next = || {
        port += 1;
        SocketAddr::from(([127, 0, 0, 1], port))
    };
    let mut waypoints = Vec::new();
    let mut tunnels = Vec::new();
    for ns in &mesh.namespaces {
        let mut listeners = Vec::new();
        for workload in &ns.workloads {
            for (service, _) in &workload.outbound {
                let addr = next();
                listeners.push(WaypointListener {
                    addr,
                    source: workload.pod.clone(),
                    service: service.clone(),
                });
                tunnels.push(Tunnel {
                    name: format!("{}→{}:9080", workload.pod, fqdn(service, &ns.name)),
                    addr: next(),
                    endpoints: vec![addr],
                });
            }
        }
        waypoints.push(Waypoint { namespace: ns.name.clone(), listeners, admin: next() });
    }
    (waypoints, Ztunnel { tunnels, admin: next() })
}

fn tag<'a>(manager: &'a Value, name: &str) -> &'a Value {
    let tags = manager["tracing"]["custom_tags"].as_array().unwrap();
    tags.iter().find(|t| t["tag"] == name).unwrap_or_else(|| panic!("no tag {name}: {tags:?}"))
}

#[test]
fn the_waypoint_is_named_tagged_and_makes_one_server_span_per_request() {
    for tracer in [Tracer::Zipkin, Tracer::Otel] {
        let mesh = mesh(&["default"], tracer, Routing::default());
        let (waypoints, _) = ambient(&mesh);
        let bootstrap = mesh.waypoint(&waypoints[0]);
        assert_eq!(bootstrap["node"]["cluster"], "waypoint.default");
        assert_eq!(bootstrap["node"]["id"], "waypoint~127.0.0.1~waypoint.default~default.svc.cluster.local");
        // productpage's call to details: the first listener.
        let details = hcm(listener(&bootstrap, "INBOUND", 0));
        let config = &details["route_config"];
        assert_eq!(config["name"], "inbound-vip|9080|http|details.default.svc.cluster.local");
        assert_eq!(config["virtual_hosts"][0]["name"], "inbound|http|9080");
        let route = &config["virtual_hosts"][0]["routes"][0];
        assert_eq!(route["route"]["cluster"], "inbound-vip|9080|http|details.default.svc.cluster.local");
        assert_eq!(route["decorator"]["operation"], "details.default.svc.cluster.local:9080/*");
        assert!(details["tracing"].get("spawn_upstream_span").is_none(), "one span per request");
        assert_eq!(details["use_remote_address"], false);
        // tracing.go: the span's service is the proxy's, under every provider (Istio 1.30 on).
        if tracer == Tracer::Otel {
            assert_eq!(details["tracing"]["provider"]["typed_config"]["service_name"], "waypoint.default");
        }
        assert_eq!(tag(details, "istio.canonical_service")["literal"]["value"], "waypoint");
        assert_eq!(tag(details, "istio.canonical_revision")["literal"]["value"], "latest");
        assert_eq!(tag(details, "istio.source_workload")["literal"]["value"], "productpage-v1");
        assert_eq!(tag(details, "istio.source_canonical_service")["literal"]["value"], "productpage");
        assert_eq!(
            tag(details, "istio.destination_workload")["value"],
            "%UPSTREAM_METADATA(istio:workload)%"
        );
        assert_eq!(
            tag(details, "istio.destination_app_version")["value"],
            "%UPSTREAM_METADATA(istio:version)%"
        );
        let names: Vec<&str> = details["tracing"]["custom_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tag"].as_str().unwrap())
            .collect();
        assert!(names.is_sorted(), "tracing.go sorts the tags by name: {names:?}");
        // reviews-v2's call to ratings carries reviews-v2 as its source.
        let from_reviews = bootstrap["static_resources"]["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"].as_str().unwrap().starts_with("waypoint_reviews-v2_"))
            .unwrap();
        assert_eq!(tag(hcm(from_reviews), "istio.source_workload")["literal"]["value"], "reviews-v2");
        // The endpoints say who they are, for the destination tags.
        let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
        let reviews = clusters
            .iter()
            .find(|c| c["name"] == "inbound-vip|9080|http|reviews.default.svc.cluster.local")
            .unwrap();
        let endpoints = reviews["load_assignment"]["endpoints"][0]["lb_endpoints"].as_array().unwrap();
        let workloads: Vec<&str> = endpoints
            .iter()
            .map(|e| e["metadata"]["filter_metadata"]["istio"]["workload"].as_str().unwrap())
            .collect();
        assert_eq!(workloads, ["reviews-v1", "reviews-v2", "reviews-v3"]);
    }
}

#[test]
fn the_waypoint_routes_by_the_rules_bound_to_the_service_to_its_own_subset_clusters() {
    let reviews_v2 = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}, weight: 50}, {destination: {host: reviews, subset: v3}, weight: 50}]\n";
    let mesh = mesh(&["default"], Tracer::Zipkin, routing(&[DESTINATION_RULES, reviews_v2]));
    let (waypoints, _) = ambient(&mesh);
    let bootstrap = mesh.waypoint(&waypoints[0]);
    let reviews = bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(hcm)
        .find(|m| m["route_config"]["name"] == "inbound-vip|9080|http|reviews.default.svc.cluster.local")
        .unwrap();
    let routes = reviews["route_config"]["virtual_hosts"][0]["routes"].as_array().unwrap();
    assert_eq!(routes[0]["route"]["cluster"], "inbound-vip|9080|http/v2|reviews.default.svc.cluster.local");
    assert_eq!(routes[0]["decorator"]["operation"], "reviews.default.svc.cluster.local:9080/*");
    let weighted = routes[1]["route"]["weighted_clusters"]["clusters"].as_array().unwrap();
    let names: Vec<&str> = weighted.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "inbound-vip|9080|http/v1|reviews.default.svc.cluster.local",
            "inbound-vip|9080|http/v3|reviews.default.svc.cluster.local"
        ]
    );
    assert_eq!(routes[1]["decorator"]["operation"], "reviews:9080/*", "named after the VirtualService");
    let clusters: Vec<&str> = bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for subset in ["v1", "v2", "v3"] {
        assert!(
            clusters.contains(
                &format!("inbound-vip|9080|http/{subset}|reviews.default.svc.cluster.local").as_str()
            )
        );
    }
    // ratings has no rule: Istio's default outbound route (retries on another pod), not the
    // sidecar's inbound one.
    let ratings = bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(hcm)
        .find(|m| m["route_config"]["name"] == "inbound-vip|9080|http|ratings.default.svc.cluster.local")
        .unwrap();
    let route = &ratings["route_config"]["virtual_hosts"][0]["routes"][0];
    let retry = &route["route"]["retry_policy"];
    assert_eq!(
        retry["retry_on"],
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
    );
    assert_eq!(retry["num_retries"], 2);
    assert_eq!(retry["retry_host_predicate"][0]["name"], "envoy.retry_host_predicates.previous_hosts");
    assert!(route["route"].get("max_stream_duration").is_none(), "{route}");
}

#[test]
fn the_ztunnel_only_passes_bytes_on() {
    let mesh = mesh(&["default"], Tracer::Otel, Routing::default());
    let (waypoints, ztunnel) = ambient(&mesh);
    let bootstrap = mesh.ztunnel(&ztunnel);
    let listeners = bootstrap["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), waypoints[0].listeners.len());
    for listener in listeners {
        let filters = listener["filter_chains"][0]["filters"].as_array().unwrap();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0]["name"], "envoy.filters.network.tcp_proxy", "no HTTP, so no span");
    }
    // Each tunnel goes to the waypoint's listener for its caller and service, a pod picked per
    // connection at random.
    let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
    let into_waypoint: Vec<u64> = waypoints[0].listeners.iter().map(|l| u64::from(l.addr.port())).collect();
    for listener in listeners {
        let tunnel = clusters.iter().find(|c| c["name"] == listener["name"]).unwrap();
        assert_eq!(tunnel["lb_policy"], "RANDOM");
        let endpoints = tunnel["load_assignment"]["endpoints"][0]["lb_endpoints"].as_array().unwrap();
        let ports: Vec<u64> = endpoints
            .iter()
            .map(|e| e["endpoint"]["address"]["socket_address"]["port_value"].as_u64().unwrap())
            .collect();
        assert!(ports.len() == 1 && into_waypoint.contains(&ports[0]), "{ports:?} not a waypoint listener");
    }
}
