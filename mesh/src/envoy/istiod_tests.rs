//! The bootstraps held to what istiod writes, field by field. Each test names the istiod source
//! its rule comes from: file (under `pilot/pkg/networking/` unless it says otherwise), function
//! and line in the snapshot of istio/istio the rules were read from (commit 86c9f01f).

use serde_json::{Value, json};

use super::tests::{DESTINATION_RULES, GATEWAY, hcm, listener, mesh, routing};
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

/// The routes of productpage's sidecar's listener for reviews, with `files`.
fn to_reviews(files: &[&str]) -> Vec<Value> {
    let mesh = mesh(&["default"], Tracer::Zipkin, routing(files));
    let ns = &mesh.namespaces[0];
    let productpage = mesh.sidecar(ns, &ns.workloads[0]);
    hcm(listener(&productpage, "OUTBOUND", 1))["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap()
        .clone()
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

    let third = "  - route: [{destination: {host: reviews, subset: v1}}]\n    fault: {delay: {fixedDelay: 1s, percentage: {value: 0.57}}}\n";
    let routes = to_reviews(&[DESTINATION_RULES, &virtual_service("reviews", "reviews", "", third)]);
    let fault = &routes[0]["typed_per_filter_config"]["envoy.filters.http.fault"];
    assert_eq!(fault["delay"]["percentage"]["numerator"], 5_699, "0.57 * 10000 is 5699.99...");
}

/// route/route.go, applyHTTPRouteDestination, 686-703: a rule of several destinations gets
/// weighted clusters, those of weight 0 left out even when one remains; GetRouteOperation,
/// 1283-1290, names a route of weighted clusters `<VirtualService>:<listener port><path>`.
#[test]
fn a_weighted_rule_that_leaves_one_destination_keeps_its_weighted_clusters() {
    let rule = "  - route:\n    - destination: {host: reviews, subset: v2}\n      weight: 100\n    - destination: {host: reviews, subset: v3}\n      weight: 0\n";
    let routes = to_reviews(&[DESTINATION_RULES, &virtual_service("reviews", "reviews", "", rule)]);
    let action = &routes[0]["route"];
    assert!(action.get("cluster").is_none(), "{action}");
    assert_eq!(
        action["weighted_clusters"],
        json!({"clusters": [{"name": "outbound|9080|v2|reviews.default.svc.cluster.local", "weight": 100}]})
    );
    assert_eq!(routes[0]["decorator"], json!({"operation": "reviews:9080/*"}));
}

/// route/route.go, GetRouteOperation, 1267-1291: a route's one cluster gives
/// `<host>:<cluster's port><path>` (1288), several give `<VirtualService>:<listener's
/// port><path>` (1290); the path is an exact path, a prefix and `*`, or the regex (1268-1280).
/// At the gateway the listener's port is the Gateway server's (gateway.go,
/// buildGatewayHTTPRouteConfig, 438: `port`): 8080 in the sample Gateway.
#[test]
fn decorators_are_named_as_get_route_operation_names_them() {
    let fqdn = "reviews.default.svc.cluster.local";
    let rules = "  - match: [{uri: {exact: /reviews/0}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n  - match: [{uri: {prefix: /reviews}, headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match: [{uri: {regex: '/reviews/[0-9]+'}}]\n    route:\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n    - destination: {host: reviews, subset: v3}\n      weight: 50\n  - match: [{headers: {end-user: {exact: eve}}}]\n    route:\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n    - destination: {host: reviews, subset: v3}\n      weight: 50\n  - route: [{destination: {host: reviews, subset: v3}}]\n";
    let routes = to_reviews(&[DESTINATION_RULES, &virtual_service("reviews-by-path", "reviews", "", rules)]);
    let operations: Vec<&str> =
        routes.iter().map(|r| r["decorator"]["operation"].as_str().unwrap()).collect();
    assert_eq!(
        operations,
        [
            format!("{fqdn}:9080/reviews/0"),
            format!("{fqdn}:9080/reviews*"),
            "reviews-by-path:9080/reviews/[0-9]+".to_owned(),
            "reviews-by-path:9080/*".to_owned(),
            format!("{fqdn}:9080/*"),
        ]
    );

    let split = "  - match: [{uri: {exact: /productpage}}]\n    route:\n    - destination: {host: productpage, subset: v1}\n      weight: 90\n    - destination: {host: productpage, subset: v2}\n      weight: 10\n  - match: [{uri: {prefix: /static}}]\n    route: [{destination: {host: productpage}}]\n";
    let config =
        gateway_routes(&[sample_gateway(), &virtual_service("bookinfo", "\"*\"", "bookinfo-gateway", split)]);
    let routes = config["virtual_hosts"][0]["routes"].as_array().unwrap();
    assert_eq!(routes[0]["decorator"]["operation"], "bookinfo:8080/productpage");
    assert_eq!(routes[1]["decorator"]["operation"], "productpage.default.svc.cluster.local:9080/static*");

    // A Gateway on another port names its weighted routes after that port.
    let on_80 = sample_gateway().replace("number: 8080", "number: 80");
    let config = gateway_routes(&[&on_80, &virtual_service("bookinfo", "\"*\"", "bookinfo-gateway", split)]);
    assert_eq!(config["virtual_hosts"][0]["routes"][0]["decorator"]["operation"], "bookinfo:80/productpage");
    assert_eq!((&config["name"], &config["virtual_hosts"][0]["name"]), (&json!("http.80"), &json!("*:80")));
}

/// route/route.go, TranslateRoute, 488-491: a route is named after its rule, and its match's
/// name after a dot, the rule's name empty or not.
#[test]
fn a_route_is_named_after_its_rule_and_its_match() {
    let rules = "  - name: named\n    match: [{name: exact, uri: {exact: /reviews/0}}, {uri: {exact: /reviews/1}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n  - match: [{name: m, uri: {exact: /reviews/2}}, {uri: {exact: /reviews/3}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v3}}]\n";
    let routes = to_reviews(&[DESTINATION_RULES, &virtual_service("reviews", "reviews", "", rules)]);
    let names: Vec<Option<&str>> = routes.iter().map(|r| r["name"].as_str()).collect();
    assert_eq!(names, [Some("named.exact"), Some("named"), Some(".m"), None, None]);
    // An unnamed rule's named match is still named for its host's cluster (GetRouteOperation).
    assert_eq!(routes[2]["decorator"]["operation"], "reviews.default.svc.cluster.local:9080/reviews/2");
}

/// route/route.go, TranslateRouteMatch: no match is every path with the case left to Envoy
/// (1059-1062); a match's headers are sorted by name (1090-1092) and its method comes after
/// them (1116-1119), the path case sensitive (1114).
#[test]
fn matches_are_translated_as_translate_route_match_does() {
    let rules = "  - match: [{method: {exact: GET}, headers: {end-user: {exact: jason}, baggage: {prefix: user}}, withoutHeaders: {x-skip: {}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n";
    let routes = to_reviews(&[DESTINATION_RULES, &virtual_service("reviews", "reviews", "", rules)]);
    assert_eq!(
        routes[0]["match"],
        json!({
            "case_sensitive": true,
            "prefix": "/",
            "headers": [
                {"name": "baggage", "string_match": {"prefix": "user"}},
                {"name": "end-user", "string_match": {"exact": "jason"}},
                {"name": "x-skip", "present_match": true, "invert_match": true},
                {"name": ":method", "string_match": {"exact": "GET"}},
            ],
        })
    );
    assert_eq!(routes[1]["match"], json!({"prefix": "/"}));
}

/// route/route.go, BuildHTTPRoutesForVirtualService, 415-436: a VirtualService's rules after a
/// rule of no match, or a match of every path, are never reached and not written; at the
/// gateway, catch-all routes go after the others (gateway.go, 569, route.go, SortVHostRoutes,
/// 1616-1627).
#[test]
fn routes_after_a_catch_all_are_left_out_and_the_gateways_catch_alls_go_last() {
    let rules = "  - match: [{uri: {exact: /reviews/0}}, {uri: {prefix: /}}, {uri: {exact: /reviews/1}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n";
    let routes = to_reviews(&[DESTINATION_RULES, &virtual_service("reviews", "reviews", "", rules)]);
    let paths: Vec<&Value> = routes.iter().map(|r| &r["match"]).collect();
    assert_eq!(
        paths,
        [
            &json!({"case_sensitive": true, "path": "/reviews/0"}),
            &json!({"case_sensitive": true, "prefix": "/"})
        ]
    );

    let everything = virtual_service(
        "everything",
        "\"*\"",
        "bookinfo-gateway",
        "  - route: [{destination: {host: productpage, subset: v1}}]\n",
    );
    let pages = virtual_service(
        "pages",
        "\"*\"",
        "bookinfo-gateway",
        "  - match: [{uri: {exact: /productpage}}]\n    route: [{destination: {host: productpage}}]\n",
    );
    let config = gateway_routes(&[sample_gateway(), &everything, &pages]);
    let routes = config["virtual_hosts"][0]["routes"].as_array().unwrap();
    let paths: Vec<(&Value, &Value)> =
        routes.iter().map(|r| (&r["match"]["path"], &r["match"]["prefix"])).collect();
    assert_eq!(paths, [(&json!("/productpage"), &Value::Null), (&Value::Null, &json!("/"))]);
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

/// gateway.go, buildGatewayHTTPRouteConfig: a virtual host per host named `<host>:<server
/// port>` (519, util.go, DomainName), its one domain the host (520), counting attempts (524,
/// util/proxy_headers.go, 53); sorted by name (574); the route configuration `http.<port>`,
/// deaf to the `Host`'s port (581). The sidecars' outbound virtual hosts count attempts too
/// (httproute.go, 339 and 466), the inbound one does not (httproute.go,
/// buildSidecarInboundHTTPRouteConfig, 143-147).
#[test]
fn the_gateways_virtual_hosts_are_named_for_the_servers_port_and_count_attempts() {
    let config = gateway_routes(&[GATEWAY]);
    assert_eq!(config["name"], "http.8080");
    assert_eq!(config["ignore_port_in_host_matching"], true);
    let host = &config["virtual_hosts"][0];
    assert_eq!(
        (&host["name"], &host["domains"], &host["include_request_attempt_count"]),
        (&json!("*:8080"), &json!(["*"]), &json!(true))
    );
    assert_eq!(gateway_routes(&[])["virtual_hosts"][0]["name"], "*:8080", "as the sample Gateway");

    let two = mesh(&["bookinfo-propagate", "bookinfo-otel"], Tracer::Zipkin, Routing::default());
    let by_host = hcm(&two.gateway()["static_resources"]["listeners"][0])["route_config"].clone();
    let hosts: Vec<(&Value, &Value, &Value)> = by_host["virtual_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (&h["name"], &h["domains"], &h["include_request_attempt_count"]))
        .collect();
    assert_eq!(
        hosts,
        [
            (&json!("otel.bookinfo.local:8080"), &json!(["otel.bookinfo.local"]), &json!(true)),
            (&json!("propagate.bookinfo.local:8080"), &json!(["propagate.bookinfo.local"]), &json!(true)),
        ]
    );
    assert_eq!(by_host["ignore_port_in_host_matching"], true);

    let ns = &two.namespaces[0];
    let reviews = two.sidecar(ns, &ns.workloads[3]);
    let outbound = &hcm(listener(&reviews, "OUTBOUND", 0))["route_config"]["virtual_hosts"][0];
    assert_eq!(outbound["include_request_attempt_count"], true);
    let inbound = &hcm(listener(&reviews, "INBOUND", 0))["route_config"]["virtual_hosts"][0];
    assert!(inbound.get("include_request_attempt_count").is_none(), "{inbound}");
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

/// tracing.go, configureCustomTags, 741 and 758-760: Istio's tags, the dry-run policy tags
/// among them (optionalPolicyTags, 574-579; dryRunPolicyTraceTag, 547-572: the RBAC filter's
/// request metadata, security/authz/model/model.go, 30-33), sorted by name with the
/// Telemetry's.
#[test]
fn every_proxy_tags_its_spans_as_istio_does_dry_run_policies_included() {
    let mesh = mesh(&["default"], Tracer::Zipkin, Routing::default());
    for (name, manager) in every_manager(&mesh) {
        let tags = manager["tracing"]["custom_tags"].as_array().unwrap();
        let names: Vec<&str> = tags.iter().map(|t| t["tag"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "baggage",
                "istio.authorization.dry_run.allow_policy.name",
                "istio.authorization.dry_run.allow_policy.result",
                "istio.authorization.dry_run.deny_policy.name",
                "istio.authorization.dry_run.deny_policy.result",
                "istio.canonical_revision",
                "istio.canonical_service",
                "istio.cluster_id",
                "istio.mesh_id",
                "istio.namespace",
            ],
            "{name}"
        );
        let metadata = |key: &str| json!({"kind": {"request": {}}, "metadata_key": {"key": "envoy.filters.http.rbac", "path": [{"key": key}]}});
        assert_eq!(tags[1]["metadata"], metadata("istio_dry_run_allow_shadow_effective_policy_id"), "{name}");
        assert_eq!(tags[2]["metadata"], metadata("istio_dry_run_allow_shadow_engine_result"), "{name}");
        assert_eq!(tags[3]["metadata"], metadata("istio_dry_run_deny_shadow_effective_policy_id"), "{name}");
        assert_eq!(tags[4]["metadata"], metadata("istio_dry_run_deny_shadow_engine_result"), "{name}");
    }
}
