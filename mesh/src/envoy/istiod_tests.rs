//! The bootstraps held to what istiod writes, field by field. Each test names the istiod source
//! its rule comes from: file (under `pilot/pkg/networking/` unless it says otherwise), function
//! and line in the snapshot of istio/istio the rules were read from (commit 86c9f01f).

use serde_json::{Value, json};

use super::tests::{GATEWAY, hcm, listener, mesh, routing};
use super::*;

/// A VirtualService of `rules` (YAML of its `http`, indented by two) for `hosts`, bound to
/// `gateways` (none: the mesh).
fn virtual_service(name: &str, hosts: &str, gateways: &str, rules: &str) -> String {
    let gateways = if gateways.is_empty() { String::new() } else { format!("  gateways: [{gateways}]\n") };
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}}}\nspec:\n  hosts: [{hosts}]\n{gateways}  http:\n{rules}"
    )
}

/// k8s/istio/gateway.yaml's Gateway alone, without its VirtualService.
fn sample_gateway() -> &'static str {
    GATEWAY.split("\n---\n").next().unwrap()
}

/// The gateway's route configuration (its first listener's), with `files`.
fn gateway_routes(files: &[&str]) -> Value {
    let mesh = mesh(&["default"], Tracer::Zipkin, routing(files));
    hcm(&mesh.gateway()["static_resources"]["listeners"][0])["route_config"].clone()
}

/// Every connection manager of every proxy of a namespace: the gateway's, then each sidecar's.
fn every_manager(mesh: &Mesh) -> Vec<(String, Value)> {
    let mut managers = Vec::new();
    let mut add = |proxy: &str, bootstrap: Value| {
        for l in bootstrap["static_resources"]["listeners"].as_array().unwrap() {
            managers.push((format!("{proxy} {}", l["name"]), hcm(l).clone()));
        }
    };
    add("gateway", mesh.gateway());
    let ns = &mesh.namespaces[0];
    for w in &ns.workloads {
        add(&w.pod, mesh.sidecar(ns, w));
    }
    managers
}

const ABORT_418: &str = "  - match: [{uri: {exact: /productpage}}]\n    route: [{destination: {host: productpage}}]\n    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n";

/// listener_builder.go, buildHTTPConnectionManager, 512 (`xdsfilters.Fault, xdsfilters.Cors`)
/// and 546-549 (the router last): on every listener, sidecars' inbound and outbound and the
/// gateway's; the two empty (xds/filters/filters.go, `Fault` and `Cors`, 105-116).
#[test]
fn every_connection_manager_has_the_fault_and_cors_filters_before_the_router() {
    let gateway = virtual_service("productpage-fault", "\"*\"", "bookinfo-gateway", ABORT_418);
    let mesh = mesh(&["default"], Tracer::Zipkin, routing(&[sample_gateway(), &gateway]));
    let managers = every_manager(&mesh);
    assert_eq!(managers.len(), 1 + 6 + 3 + 3, "the gateway's, and each sidecar's inbound and outbound");
    for (name, manager) in managers {
        assert_eq!(
            manager["http_filters"],
            json!([
                {"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                {"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
                {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
            ]),
            "{name}"
        );
    }
}

/// route/route.go, TranslateRoute, 559-564, and TranslateFault, 1383-1435: a gateway-bound
/// rule's fault rides on its route, for the gateway's fault filter; percentages in millionths
/// (translatePercentToFractionalPercent, 1368: `uint32(p.Value * 10000)`, cut, not rounded).
#[test]
fn a_fault_of_a_rule_bound_to_the_gateway_is_on_the_gateways_route() {
    let gateway = virtual_service("productpage-fault", "\"*\"", "bookinfo-gateway", ABORT_418);
    let config = gateway_routes(&[sample_gateway(), &gateway]);
    let route = &config["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["match"]["path"], "/productpage");
    assert_eq!(
        route["typed_per_filter_config"],
        json!({"envoy.filters.http.fault": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "abort": {"http_status": 418, "percentage": {"numerator": 1_000_000, "denominator": "MILLION"}},
        }})
    );
}

/// gateway.go, createGatewayHTTPFilterChainOpts, 687: the gateway uses the remote address
/// (listener_builder.go, buildHTTPConnectionManager, 424-428, writes it either way); the
/// sidecars do not (listener_inbound.go, buildSidecarInboundHTTPOpts, 821; listener.go,
/// buildSidecarOutboundHTTPListenerOpts, 779, and features/xds.go, 48-52:
/// PILOT_SIDECAR_USE_REMOTE_ADDRESS, false). Every proxy generates request ids (util/
/// proxy_headers.go, 55: Envoy's default).
#[test]
fn the_gateway_uses_the_remote_address_and_the_sidecars_do_not() {
    let mesh = mesh(&["default"], Tracer::Zipkin, Routing::default());
    for (name, manager) in every_manager(&mesh) {
        let gateway = name.starts_with("gateway");
        assert_eq!(manager["use_remote_address"], gateway, "{name}");
        assert_eq!(manager["generate_request_id"], true, "{name}");
    }
}

/// route/route.go, BuildDefaultHTTPInboundRoute, 1294-1310: the inbound route has no timeout
/// and no stream limit, and retries as route/retry/retry.go, ConvertInboundPolicy, gives by
/// default (65-68: twice, on `reset-before-request`, 42; no host predicate). The outbound
/// default is DefaultPolicy (retry.go, 49-54).
#[test]
fn the_inbound_route_has_no_deadline_and_retries_requests_reset_before_the_application() {
    let mesh = mesh(&["default"], Tracer::Zipkin, Routing::default());
    let ns = &mesh.namespaces[0];
    let details = mesh.sidecar(ns, &ns.workloads[1]);
    let route = &hcm(listener(&details, "INBOUND", 0))["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(
        route["route"],
        json!({
            "cluster": "inbound|9080||",
            "timeout": "0s",
            "max_stream_duration": {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"},
            "retry_policy": {"retry_on": "reset-before-request", "num_retries": 2},
        })
    );
    assert_eq!(route["name"], "default");
    assert_eq!(route["decorator"]["operation"], "details.default.svc.cluster.local:9080/*");

    let productpage = mesh.sidecar(ns, &ns.workloads[0]);
    let route = &hcm(listener(&productpage, "OUTBOUND", 0))["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(
        route["route"]["retry_policy"],
        json!({
            "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
            "num_retries": 2,
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
            "host_selection_retry_max_attempts": "5",
        })
    );
    assert!(route["route"].get("max_stream_duration").is_none());
}
