//! Gateway API HTTPRoutes against their VirtualService twins: Istio's own
//! samples/bookinfo/gateway-api files and those of k8s/gateway-api/ give the in-app router
//! the same decisions and the Envoy rendering the same clusters and weights.

use std::path::Path;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::tests::{DESTINATION_RULES, mesh, routing};
use super::*;
use crate::model::{Condition, Matcher};

const DR_ALL: &str = include_str!("../testdata/istio-networking/destination-rule-all.yaml");
const VS_ALL_V1: &str = include_str!("../testdata/istio-networking/virtual-service-all-v1.yaml");
const VS_50_V3: &str = include_str!("../testdata/istio-networking/virtual-service-reviews-50-v3.yaml");
const VS_90_10: &str = include_str!("../testdata/istio-networking/virtual-service-reviews-90-10.yaml");
const VS_V3: &str = include_str!("../testdata/istio-networking/virtual-service-reviews-v3.yaml");
const VS_GATEWAY: &str = include_str!("../testdata/istio-networking/bookinfo-gateway.yaml");
const ROUTE_ALL_V1: &str = include_str!("../testdata/istio-gateway-api/route-all-v1.yaml");
const ROUTE_50_V3: &str = include_str!("../testdata/istio-gateway-api/route-reviews-50-v3.yaml");
const ROUTE_90_10: &str = include_str!("../testdata/istio-gateway-api/route-reviews-90-10.yaml");
const ROUTE_V1: &str = include_str!("../testdata/istio-gateway-api/route-reviews-v1.yaml");
const ROUTE_V3: &str = include_str!("../testdata/istio-gateway-api/route-reviews-v3.yaml");
pub(super) const ROUTE_GATEWAY: &str = include_str!("../testdata/istio-gateway-api/bookinfo-gateway.yaml");
const VS_BAGGAGE: &str = include_str!("../../../k8s/istio/virtual-service-reviews-baggage.yaml");
const VS_REVIEWS_V2: &str = include_str!("../../../k8s/istio/virtual-service-reviews-v2.yaml");
pub(super) const ROUTE_BAGGAGE: &str =
    include_str!("../../../k8s/gateway-api/httproute-reviews-baggage.yaml");
pub(super) const ROUTE_REVIEWS_V2: &str = include_str!("../../../k8s/gateway-api/httproute-reviews-v2.yaml");

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn error(text: &str) -> String {
    Routing::parse(&[(Path::new("bad.yaml"), text)]).unwrap_err().to_string()
}

/// A request: method, path, headers.
type Request = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The requests of the tables: paths, methods and baggage the rules tell apart.
const REQUESTS: [Request; 7] = [
    ("GET", "/reviews/0", &[]),
    ("GET", "/reviews/0", &[("baggage", "user=jason")]),
    ("GET", "/reviews/0", &[("baggage", "team=a , user = jason;p")]),
    ("GET", "/reviews/0", &[("baggage", "canary=v3")]),
    ("GET", "/reviews/0", &[("baggage", "user=jason2,canary=v33")]),
    ("POST", "/health", &[("end-user", "jason")]),
    ("GET", "/ratings/0?x=1", &[("baggage", "xuser=jason")]),
];

/// Every decision of `routing` for each service, request and a hundred evenly spread draws:
/// equal tables mean equal version distributions.
fn decisions(routing: &Routing, services: &[&str]) -> Vec<String> {
    let mut table = Vec::new();
    for service in services {
        for (method, path, pairs) in REQUESTS {
            let headers = headers(pairs);
            for i in 0..100 {
                let draw = (f64::from(i) + 0.5) / 100.0;
                let decision = routing.decide(service, method, path, &headers, &mut || draw);
                table.push(format!("{service} {method} {path} {pairs:?} {i}: {decision:?}"));
            }
        }
    }
    table
}

/// Every route of every proxy's bootstrap: the clusters it sends to, with their weights, and
/// its timeout.
fn rendered(routing: Routing) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(routes)) = map.get("routes") {
                    for route in routes {
                        let action = &route["route"];
                        let clusters = match action["weighted_clusters"]["clusters"].as_array() {
                            Some(weighted) => weighted
                                .iter()
                                .map(|c| format!("{} {}", c["name"].as_str().unwrap_or("?"), c["weight"]))
                                .collect(),
                            None => vec![action["cluster"].as_str().unwrap_or("?").to_owned()],
                        };
                        out.push(format!("{} timeout {}", clusters.join(", "), action["timeout"]));
                    }
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mesh = mesh(&["default"], Tracer::Otel, routing);
    let mut out = Vec::new();
    for ns in &mesh.namespaces {
        for workload in &ns.workloads {
            walk(&mesh.sidecar(ns, workload), &mut out);
        }
    }
    walk(&mesh.gateway(), &mut out);
    out
}

#[test]
fn istios_gateway_api_samples_route_as_their_virtual_service_twins() {
    let reviews_v1 = VS_ALL_V1.split("---").find(|d| d.contains("name: reviews")).unwrap();
    let twins: [(&str, &str, &[&str]); 5] = [
        ("route-all-v1", VS_ALL_V1, &["productpage", "reviews", "ratings", "details"]),
        ("route-reviews-50-v3", VS_50_V3, &["reviews"]),
        ("route-reviews-90-10", VS_90_10, &["reviews"]),
        ("route-reviews-v1", reviews_v1, &["reviews"]),
        ("route-reviews-v3", VS_V3, &["reviews"]),
    ];
    let routes = [ROUTE_ALL_V1, ROUTE_50_V3, ROUTE_90_10, ROUTE_V1, ROUTE_V3];
    for ((name, virtual_service, services), route) in twins.into_iter().zip(routes) {
        let ours = routing(&[DR_ALL, route]);
        let theirs = routing(&[DR_ALL, virtual_service]);
        assert!(ours.warnings.is_empty(), "{name}: {:?}", ours.warnings);
        assert_eq!(
            ours.services.keys().collect::<Vec<_>>(),
            theirs.services.keys().collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(decisions(&ours, services), decisions(&theirs, services), "{name}");
        assert_eq!(rendered(ours), rendered(theirs), "{name}");
    }
    // The split itself, as Envoy weighs it and by the draws: 90 of a hundred to v1.
    let weighted = "outbound|9080|v1|reviews.default.svc.cluster.local 90, outbound|9080|v2|reviews.default.svc.cluster.local 10 ";
    assert!(rendered(routing(&[DR_ALL, ROUTE_90_10])).iter().any(|r| r.starts_with(weighted)));
    let table = decisions(&routing(&[DR_ALL, ROUTE_90_10]), &["reviews"]);
    assert_eq!(table.iter().filter(|d| d.contains("version: Some(\"v1\")")).count(), 90 * REQUESTS.len());
}

#[test]
fn the_bookinfo_gateway_sample_renders_the_gateway_routes_of_its_twin() {
    let ours = routing(&[DR_ALL, ROUTE_GATEWAY]);
    let theirs = routing(&[DR_ALL, VS_GATEWAY]);
    assert!(ours.services.is_empty());
    assert_eq!(ours.gateway.len(), 5, "a rule per match");
    assert_eq!(ours.gateway[0].hosts, ["*"]);
    // Listener port 80 names the routes, as the Istio Gateway's 8080 does its own.
    assert_eq!((ours.gateway[0].port, theirs.gateway[0].port), (80, 8080));
    let clusters = |routing: Routing| {
        let mut routes = rendered(routing);
        routes.sort();
        routes
    };
    assert_eq!(clusters(ours.clone()), clusters(theirs));
    // Exact paths first (longest first), then prefixes, longest first.
    let paths: Vec<String> = ours
        .gateway
        .iter()
        .map(|g| match &g.rule.matches[0].conditions[0] {
            Condition::Uri(Matcher::Exact(path)) => path.clone(),
            Condition::Uri(Matcher::Regex { source, .. }) => source.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, ["/productpage", "/logout", "/login", r"/api/v1/products(/.*)?", r"/static(/.*)?"]);
}

#[test]
fn the_baggage_httproute_routes_jason_to_v2_as_its_virtual_service_twin() {
    for (route, virtual_service) in [(ROUTE_BAGGAGE, VS_BAGGAGE), (ROUTE_REVIEWS_V2, VS_REVIEWS_V2)] {
        let ours = routing(&[DESTINATION_RULES, route]);
        let theirs = routing(&[DESTINATION_RULES, virtual_service]);
        assert!(ours.warnings.is_empty(), "{:?}", ours.warnings);
        assert_eq!(decisions(&ours, &["reviews", "ratings"]), decisions(&theirs, &["reviews", "ratings"]));
        assert_eq!(rendered(ours), rendered(theirs));
    }
    let version = |routing: &Routing, baggage: &str| {
        let headers = headers(&[("baggage", baggage)]);
        routing.decide("reviews", "GET", "/reviews/0", &headers, &mut || 0.5).version
    };
    // Without a DestinationRule too: `reviews-v2` is the subset of version v2 either way.
    for routing in [routing(&[DESTINATION_RULES, ROUTE_BAGGAGE]), routing(&[ROUTE_BAGGAGE])] {
        assert_eq!(version(&routing, "user=jason").as_deref(), Some("v2"));
        assert_eq!(version(&routing, "team=x, user=jason;p=1").as_deref(), Some("v2"));
        assert_eq!(version(&routing, "canary=v3").as_deref(), Some("v3"));
        assert_eq!(version(&routing, "user=jason2").as_deref(), Some("v1"));
        assert_eq!(version(&routing, "").as_deref(), Some("v1"));
        assert_eq!(routing.routed_users(), ["jason"]);
    }
    let alone = routing(&[ROUTE_BAGGAGE]);
    assert_eq!(alone.version_of("reviews", "v3"), Some("v3"));
    assert!(
        cluster_names(&rendered_sidecar(alone))
            .contains(&"outbound|9080|v2|reviews.default.svc.cluster.local".to_owned())
    );
}

fn rendered_sidecar(routing: Routing) -> Value {
    let mesh = mesh(&["default"], Tracer::Otel, routing);
    let ns = &mesh.namespaces[0];
    mesh.sidecar(ns, &ns.workloads[0])
}

fn cluster_names(bootstrap: &Value) -> Vec<String> {
    let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
    clusters.iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

const HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{kind: Service, name: reviews}]\n  rules:\n";

fn weights(backends: &str) -> Vec<u32> {
    let routing = routing(&[&format!("{HEAD}  - backendRefs: {backends}")]);
    routing.services["reviews"][0].destinations.iter().map(|d| d.weight).collect()
}

#[test]
fn relative_weights_become_percentages_by_the_largest_remainder() {
    assert_eq!(weights("[{name: reviews-v1, weight: 9}, {name: reviews-v2, weight: 1}]"), [90, 10]);
    assert_eq!(weights("[{name: reviews-v1, weight: 1}, {name: reviews-v2, weight: 2}]"), [33, 67]);
    assert_eq!(weights("[{name: reviews-v1}, {name: reviews-v2}, {name: reviews-v3}]"), [34, 33, 33]);
    assert_eq!(weights("[{name: reviews-v1, weight: 0}, {name: reviews-v2, weight: 7}]"), [0, 100]);
    assert_eq!(weights("[{name: reviews-v1, weight: 1}, {name: reviews-v2, weight: 1000000}]"), [0, 100]);
    assert_eq!(weights("[{name: reviews}]"), [100]);
    let routing = routing(&[&format!("{HEAD}  - backendRefs: [{{name: reviews}}, {{name: ratings-v1}}]")]);
    let destinations = &routing.services["reviews"][0].destinations;
    assert_eq!((destinations[0].host.as_str(), destinations[0].subset.as_deref()), ("reviews", None));
    assert_eq!((destinations[1].host.as_str(), destinations[1].subset.as_deref()), ("ratings", Some("v1")));
}

#[test]
fn rules_are_tried_by_precedence_paths_by_segment() {
    let text = format!(
        "{HEAD}  - backendRefs: [{{name: reviews-v1}}]\n  - matches: [{{path: {{type: PathPrefix, value: /reviews/}}}}]\n    backendRefs: [{{name: reviews-v2}}]\n    timeouts: {{request: 500ms}}\n  - matches: [{{method: POST, headers: [{{name: End-User, value: jason}}]}}]\n    backendRefs: [{{name: reviews-v3}}]\n"
    );
    let routing = routing(&[&text]);
    let decide = |method: &str, path: &str, pairs: &[(&'static str, &str)]| {
        routing.decide("reviews", method, path, &headers(pairs), &mut || 0.5)
    };
    let v2 = decide("GET", "/reviews/0", &[]);
    assert_eq!(
        (v2.version.as_deref(), v2.timeout),
        (Some("v2"), Some(std::time::Duration::from_millis(500)))
    );
    assert_eq!(decide("GET", "/reviews", &[]).version.as_deref(), Some("v2"));
    assert_eq!(
        decide("GET", "/reviewsx", &[]).version.as_deref(),
        Some("v1"),
        "a prefix matches whole segments"
    );
    assert_eq!(decide("POST", "/x", &[("end-user", "jason")]).version.as_deref(), Some("v3"));
    assert_eq!(decide("GET", "/x", &[("end-user", "jason")]).version.as_deref(), Some("v1"));
    assert_eq!(decide("POST", "/x", &[]).version.as_deref(), Some("v1"));
    let exact = format!(
        "{HEAD}  - matches: [{{path: {{type: RegularExpression, value: '/reviews/[0-9]+'}}}}]\n    backendRefs: [{{name: reviews-v3}}]\n  - matches: [{{path: {{type: Exact, value: /reviews/0}}}}]\n    backendRefs: [{{name: reviews-v2}}]\n"
    );
    let routing = super::tests::routing(&[&exact]);
    let decide = |path: &str| routing.decide("reviews", "GET", path, &HeaderMap::new(), &mut || 0.5);
    assert_eq!(decide("/reviews/0").version.as_deref(), Some("v2"));
    assert_eq!(decide("/reviews/1").version.as_deref(), Some("v3"));
    assert_eq!(decide("/other").refusal.map(|s| s.as_u16()), Some(404));
}

#[test]
fn a_request_header_modifier_edits_the_request_in_both_routers() {
    let text = format!(
        "{HEAD}  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n        set: [{{name: X-Canary, value: '1'}}]\n        add: [{{name: x-team, value: books}}]\n        remove: [x-drop]\n    backendRefs: [{{name: reviews-v2}}]\n"
    );
    let routing = routing(&[&text]);
    let decision = routing.decide("reviews", "GET", "/reviews/0", &HeaderMap::new(), &mut || 0.5);
    let mut sent = headers(&[("x-canary", "0"), ("x-team", "a"), ("x-drop", "1"), ("x-keep", "1")]);
    crate::sidecar::apply(&decision.request_headers, &mut sent);
    let values = |name: &str| sent.get_all(name).map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(values("x-canary"), ["1"]);
    assert_eq!(values("x-team"), ["a", "books"]);
    assert!(values("x-drop").is_empty());
    assert_eq!(values("x-keep"), ["1"]);
    let bootstrap = rendered_sidecar(routing);
    let mut found = Vec::new();
    find_routes(&bootstrap, &mut found);
    let route =
        found.iter().find(|r| r.get("request_headers_to_add").is_some()).expect("a route with headers");
    assert_eq!(
        route["request_headers_to_add"],
        serde_json::json!([
            {"header": {"key": "x-canary", "value": "1"}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"},
            {"header": {"key": "x-team", "value": "books"}, "append_action": "APPEND_IF_EXISTS_OR_ADD"},
        ])
    );
    assert_eq!(route["request_headers_to_remove"], serde_json::json!(["x-drop"]));
}

fn find_routes(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(routes)) = map.get("routes") {
                out.extend(routes.iter().cloned());
            }
            map.values().for_each(|v| find_routes(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| find_routes(v, out)),
        _ => {}
    }
}

#[test]
fn what_the_routers_do_not_take_is_an_error_naming_the_field_and_the_file() {
    let rule = |body: &str| error(&format!("{HEAD}  - {body}\n"));
    let cases = [
        (
            rule(
                "backendRefs: [{name: reviews-v1}]\n    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301}}]",
            ),
            "bad.yaml: HTTPRoute r, rules[0].filters[0]: type RequestRedirect: not supported by the local routing (of the filters it takes RequestHeaderModifier)",
        ),
        (
            rule(
                "backendRefs: [{name: reviews-v1}]\n    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: b}], remove: [x-a]}}]",
            ),
            "rules[0].filters[0].requestHeaderModifier.remove[0]: name: x-a (each header once",
        ),
        (
            rule(
                "backendRefs: [{name: reviews-v1}]\n    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: 'a b', value: c}]}}]",
            ),
            "rules[0].filters[0].requestHeaderModifier.add[0]: name: \"a b\" is not a header name",
        ),
        (
            rule(
                "backendRefs: [{name: reviews-v1}]\n    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {append: []}}]",
            ),
            "rules[0].filters[0].requestHeaderModifier: `append` is not supported",
        ),
        (
            rule("matches: [{queryParams: [{name: a, value: b}]}]\n    backendRefs: [{name: reviews-v1}]"),
            "HTTPRoute r, rules[0].matches[0]: `queryParams` is not supported by the local routing (it takes path, headers and method)",
        ),
        (
            rule("backendRefs: [{name: reviews-v1}]\n    timeouts: {backendRequest: 1s}"),
            "rules[0].timeouts: `backendRequest` is not supported",
        ),
        (
            rule("backendRefs: [{name: reviews-v1}]\n    retry: {attempts: 2}"),
            "rules[0]: `retry` is not supported",
        ),
        (
            rule("backendRefs: [{name: reviews-v1, namespace: other}]"),
            "rules[0].backendRefs[0]: `namespace` is not supported",
        ),
        (
            rule("backendRefs: [{name: reviews-v1, weight: -1}]"),
            "rules[0].backendRefs[0]: weight: -1 (0 to 1000000)",
        ),
        (rule("backendRefs: [{name: reviews-v1, weight: 0}]"), "rules[0].backendRefs: every weight is 0"),
        (rule("backendRefs: [{name: reviews-v1, port: 80}]"), "rules[0].backendRefs[0]: port: 80"),
        (rule("matches: []\n    backendRefs: []"), "rules[0].backendRefs: no backend"),
        (
            rule(
                "matches: [{headers: [{name: baggage, type: RegularExpression, value: '(?=x)'}]}]\n    backendRefs: [{name: reviews-v1}]",
            ),
            "rules[0].matches[0].headers[0].value: \"(?=x)\"",
        ),
        (
            rule("matches: [{path: {type: Prefix, value: /}}]\n    backendRefs: [{name: reviews-v1}]"),
            "rules[0].matches[0].path: type: Prefix (Exact, PathPrefix or RegularExpression)",
        ),
        (
            rule(
                "matches: [{headers: [{name: a, type: Prefix, value: b}]}]\n    backendRefs: [{name: reviews-v1}]",
            ),
            "rules[0].matches[0].headers[0]: type: Prefix (Exact or RegularExpression)",
        ),
        (
            rule("backendRefs: [{name: reviews-v1}]\n    timeouts: {request: soon}"),
            "rules[0].timeouts.request:",
        ),
        (
            error(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: nowhere}]\n  rules: [{backendRefs: [{name: productpage}]}]",
            ),
            "HTTPRoute r, parentRefs[0]: name: Gateway nowhere is defined in none of the files",
        ),
        (
            error(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{kind: Service, name: reviews, namespace: x}]\n  rules: [{backendRefs: [{name: reviews}]}]",
            ),
            "parentRefs[0]: `namespace` is not supported",
        ),
        (
            error(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules: [{backendRefs: [{name: reviews}]}]",
            ),
            "HTTPRoute r: parentRefs: none",
        ),
        (
            error(
                "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}",
            ),
            "document 1: apiVersion gateway.networking.k8s.io/v1alpha2 is not one taken here",
        ),
        (
            error("apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\nspec: {}"),
            "document 1: GRPCRoute (gateway.networking.k8s.io/v1) is not supported",
        ),
        (
            error(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  gatewayClassName: istio\n  listeners: [{name: https, port: 443, protocol: HTTPS}]",
            ),
            "Gateway g, listeners[0]: protocol: HTTPS",
        ),
    ];
    for (error, expected) in cases {
        assert!(error.contains(expected), "{error}\n  should contain: {expected}");
        assert!(error.starts_with("bad.yaml: "), "{error}");
    }
}
